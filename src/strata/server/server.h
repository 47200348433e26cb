// `strata serve`: wires a deployment together (the backends that config.backends names --
// by default the embedded RocksDB row store, local blob store, embedded queue and in-process
// caches, see backends.h -- the services and the HTTP API) and runs until SIGINT/SIGTERM. Every option has a default; docs/configuration.md
// lists them with the command-line flags and config-file keys that set them. SIGHUP reloads
// the TLS certificate and key (http::Server::ReloadTls).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "strata/http/http_server.h"
#include "strata/server/backends.h"
#include "strata/viewing/viewing_service.h"

namespace strata::server {

struct ServerConfig {
  // Request handlers run on the HTTP threads and may block on storage and per-member locks
  // (ingest batches wait for the ingest pool), and each connection stays on the thread it
  // was dealt to, so a request waits for whatever its thread's other connections are doing.
  // Default 8: on 2 cores with a client pool of 8 connections (the compare bench), 8 threads
  // gave read p99 6.9-8.8 ms against 9.2-24.8 ms with 4 (11 runs); the 40-connection mix
  // was about the same (docs/benchmark-log.md, "HTTP threads for few connections").
  ServerConfig() { http.threads = 8; }

  // Directory holding all data (RocksDB under <data_dir>/rows). Default "./data".
  std::string data_dir = "./data";
  // Which engine backs each storage interface ([rows], [blobs], [queue], [cache]).
  BackendConfig backends;
  http::ServerOptions http;
  // RocksDB block cache shared by all tables, bytes. Default 256 MiB.
  size_t block_cache_bytes = 256ull << 20;
  // RocksDB: rows of document tables (assets) of at least this many bytes are kept in blob
  // files, 0 = inside the SST files (RocksRowStoreOptions::document_blob_min_bytes).
  uint64_t document_blob_min_bytes = 512;
  // RocksDB: blob garbage collection of document tables runs while at least this share of
  // their blob bytes is garbage (RocksRowStoreOptions::document_blob_gc_min_garbage).
  double document_blob_gc_min_garbage = 0.2;
  // RocksDB block cache shards, 2^bits; -1 = RocksDB's choice
  // (RocksRowStoreOptions::block_cache_shard_bits).
  int block_cache_shard_bits = -1;
  // Where the assets table's index and filter blocks live: "cache", "pinned" or "reader"
  // (RocksRowStoreOptions::document_metadata).
  std::string document_metadata = "pinned";
  // "periodic" (default; fsync the write-ahead log every sync_interval_ms) or "batch"
  // (fsync before acknowledging each write). Either way an acknowledged write survives
  // kill -9 of the server; "batch" also survives power loss.
  std::string sync = "periodic";
  int sync_interval_ms = 100;
  // Cap on the write-ahead log's bytes on disk (RocksRowStoreOptions::max_wal_bytes): past
  // it, the tables holding the oldest log are flushed so it can be deleted. Default 32 MiB
  // (64 MiB left 84 bytes a record on disk right after the compare bench's 2.36M events,
  // mostly log and memtables; 32 MiB left 40).
  uint64_t max_wal_bytes = uint64_t{32} << 20;
  // Free bytes the data directory's file system needs before writes refused on a full disk
  // resume by themselves (RocksRowStoreOptions::resume_min_free_bytes). Default 64 MiB.
  uint64_t disk_resume_min_free_bytes = uint64_t{64} << 20;
  // Cap on RocksDB's memtables across all tables, bytes (the largest is flushed when
  // reached). Default 512 MiB.
  uint64_t memtable_budget_bytes = uint64_t{512} << 20;
  viewing::ViewingOptions viewing;
  // Time slice, in microseconds, that the threads answering requests (HTTP io threads,
  // viewing read threads) ask the kernel for (Linux 6.12+ EEVDF; older kernels ignore it).
  // The default slice is ~1.4 ms on 2 cores, and a thread woken by a request waited up to
  // that long behind an ingest or bulk-read thread; with a shorter slice it preempts them.
  // 0 = the kernel's default. Default 100 (the kernel's minimum). Overrides
  // http.thread_slice_us and viewing.read_thread_slice_us.
  int request_slice_us = 100;
  // Media objects: bytes of one blob part (objects larger than this are stored as several
  // part files under <data_dir>/blobs). Default 64 MiB.
  uint64_t blob_part_bytes = uint64_t{64} << 20;
  // Objects of at most this many bytes keep their bytes as a row of the row store
  // (blob::InlineBlobStore) instead of a file: one log append to write, one tombstone to
  // delete. 0 = every new object is a file (inline ones written before stay readable). At
  // most blob_part_bytes. Default 16 KiB.
  uint64_t blob_inline_max_bytes = 16 * 1024;
  // Largest object a PUT accepts (streamed; never held in memory), bytes; larger get 413.
  // Default 5 GiB.
  uint64_t max_object_bytes = uint64_t{5} << 30;
  // Lifecycle collector (docs/gc.md). Daily GC run at this UTC time ("HH:MM"; "" = only on
  // demand). Default "03:00".
  std::string gc_daily_at = "03:00";
  // Sweep workers: gc_min_workers (default 1) plus one per gc_backlog_per_worker queued items
  // (default 2000), at most gc_max_workers (default 0 = half the cores, at least
  // gc_min_workers; 4 when rows are on RADOS or bytes on S3, where a worker waits on round
  // trips rather than the CPU; the sweep topic has 16 partitions).
  int gc_min_workers = 1;
  int gc_max_workers = 0;
  uint64_t gc_backlog_per_worker = 2000;
  // Items per sweep batch (one directory fsync and one queue commit each). Default 64.
  int gc_sweep_batch = 64;
  // AIMD throttle of the sweep, items/s: start, floor, ceiling, and the step added per healthy
  // 500 ms interval. Defaults 1000, 20, 50000, 250.
  double gc_initial_rate = 1000;
  double gc_min_rate = 20;
  double gc_max_rate = 50000;
  double gc_rate_step = 250;
  // The sweep backs off when object GET/PUT p99 exceeds this factor x its idle p99
  // (default 2.0), or RocksDB's pending compaction exceeds gc_max_pending_compaction_bytes
  // (default 256 MiB), or writes stall. The p99 is the server's own (request in to reply
  // out), so a client sees a smaller ratio: measured, 2.0 here kept client p99 within
  // 1.40-1.49x and 1.3 within 1.29x at half the sweep speed (docs/benchmark-log.md).
  double gc_latency_factor = 2.0;
  // Object p99 below this is healthy whatever its baseline (a histogram bucket's width of
  // noise). Default 0.25 ms: a small object's PUT takes ~0.25 ms at p99 when it is inline.
  double gc_latency_floor_ms = 0.25;
  // Upload rows older than this are abandoned uploads (a crash or a dropped stream between
  // the bytes and the metadata): the GC deletes their bytes. Default one day.
  Millis gc_orphan_age_ms = 86'400'000;
  // Each GC run also lists the blob store and deletes the blobs no row names that are older
  // than gc_orphan_age_ms (bytes whose upload row a power loss took). Default true.
  bool gc_orphan_blob_scan = true;
  uint64_t gc_max_pending_compaction_bytes = uint64_t{256} << 20;
  // The scrub (docs/media.md, "Scrub"): every object's bytes are read back and checked
  // against the stored checksums at most this many bytes per second (0 = no scrub), one
  // pass every scrub_interval_ms. Defaults 16 MiB/s, 7 days.
  uint64_t scrub_rate_bytes = uint64_t{16} << 20;
  Millis scrub_interval_ms = 7LL * 86'400'000;
  // Export each run's snapshot as NDJSON under <data_dir>/lifecycle-export. Default true.
  bool gc_export = true;
  // Names a request's Host (and a state-changing request's Origin) may carry, besides
  // localhost, 127.0.0.1, ::1, the bound address and the machine's host name; "*" = any.
  std::vector<std::string> allowed_hosts;
  // Start on a non-loopback address although no API key exists, i.e. serve every request
  // without authentication. Default false: such a start is refused, naming `strata key
  // create --admin`. It never turns authentication off: once a key exists every request
  // needs one, whatever this says (docs/api.md, "Authentication").
  bool insecure_no_auth = false;
  // Days an audit record is kept (admin actions and hard deletes; docs/operations.md, "Audit
  // log"). Default 90.
  int audit_retention_days = 90;
  size_t gc_export_keep_runs = 30;  // exports kept per task (0 = all)
  // Archival: objects older than this move to archive_class (0 = off, the default), daily at
  // archive_daily_at ("" = only on demand). Defaults "cold", "04:00".
  Millis archive_after_ms = 0;
  std::string archive_class = "cold";
  std::string archive_daily_at = "04:00";
  // Assets (docs/assets.md): largest payload in bytes (default 256 KiB; larger get 413),
  // deepest payload nesting (default 32 levels), most assets in one batch create (default
  // 1000, at most 10000), previous versions kept when a type does not say (default 10).
  uint64_t asset_max_payload_bytes = 256 * 1024;
  int asset_max_depth = 32;
  uint64_t asset_max_batch = 1000;
  uint32_t asset_keep_versions = 10;
  // Nice increment of reprocessing jobs' threads (0-19; default 0: request priority). While
  // one holds the row store's write lock it runs at request priority (ScopedPriorityBoost).
  int reprocess_nice = 0;
  // Events a reprocessing worker takes per poll: one read and one write per bucket, one count
  // update and one offset commit each (--reprocess-batch).
  int reprocess_batch = 100;
  // Most assets a reprocessing job writes in one compare-and-set batch
  // (--reprocess-write-assets; AssetOptions::max_process_write).
  uint64_t reprocess_write_assets = 25;
  // "debug", "info", "warn", "error". Default "info".
  std::string log_level = "info";
};

// Runs the server until `stop` becomes true or a SIGINT/SIGTERM arrives. If `port_out` is
// non-null it receives the bound port once serving (useful with port 0).
absl::Status Serve(const ServerConfig& config, std::atomic<bool>* stop = nullptr,
                   std::atomic<int>* port_out = nullptr);

}  // namespace strata::server
