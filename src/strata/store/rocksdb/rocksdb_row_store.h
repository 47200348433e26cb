// RocksRowStore: the embedded RowStore, on RocksDB (see docs/row-store.md for the on-disk
// encoding and the tuning of each table profile).
//
// One column family per table, tuned by the table's profile; one block cache shared by all
// tables; expiry checked on every read and dropped by a compaction filter; PutIfNewer as a
// merge operator; RowStore::Write as one RocksDB WriteBatch; snapshots as RocksDB snapshots.
//
// Durability: every acknowledged write is in the write-ahead log (in the OS page cache) before
// the call returns, so it survives a crash of the process (kill -9). Against power loss it is
// durable after the next WAL fsync: at once with SyncPolicy::kPerBatch, within
// `sync_interval_ms` with SyncPolicy::kPeriodic, or after RowStore::Sync().
//
// Thread safety: every method is thread-safe. Tables and snapshots must not outlive the store.
// RocksDB headers are private to this folder: nothing here exposes them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/store/row_store.h"

namespace strata::store {

struct RocksRowStoreOptions {
  // When the write-ahead log is fsynced.
  enum class SyncPolicy {
    // A background thread fsyncs the WAL every `sync_interval_ms` (like Cassandra's periodic
    // commit log): a power loss may lose up to that much acknowledged data; a process crash
    // loses nothing. Writes do not wait for the disk.
    kPeriodic,
    // Every write call fsyncs before returning (WriteOptions::sync): nothing acknowledged is
    // ever lost, at the cost of one fsync per call (batch writes through RowStore::Write).
    kPerBatch,
  };

  // Directory of the database; created (with its parents) if missing. Required.
  std::string path;

  // Bytes of the one LRU block cache shared by every table (data, index and filter blocks).
  // Default 256 MiB. RocksDB's 8 MiB default reads about 4x slower on this workload.
  size_t block_cache_bytes = size_t{256} << 20;
  // The cache is split into 2^block_cache_shard_bits shards, each with its own lock and its
  // own share of the capacity; a block larger than one shard's share is dropped as soon as
  // its reader lets go of it. -1 = RocksDB's choice (shards of at least 512 KiB, at most 64:
  // 4 MiB each at 256 MiB). 0-8 allowed.
  int block_cache_shard_bits = -1;

  // Where the index and filter blocks of kDocument tables (assets) live. Universal
  // compaction keeps a sorted run of the whole table in one SST file, whose full bloom
  // filter and index are megabytes (more at 10M rows) and can be bigger than a cache shard.
  // With kCache a quarter to half of the 1M-asset bench runs re-read the largest file's
  // filter block on every search (twice the CPU, p99 48 ms to 4 s); with kPinned none of
  // ten did (docs/benchmark-log.md, "Asset search: the filter block pinned").
  enum class DocumentMetadata {
    // In the block cache, like other tables' (pinned only for flushed files).
    kCache,
    // In the block cache, pinned for every file while the file lives (charged to the cache;
    // a block bigger than its shard holds that shard over its share). The default.
    kPinned,
    // In the table reader's memory, read once when the file is opened; outside the cache's
    // budget (about 1.25 bytes per key of filter plus the index).
    kTableReader,
  };
  DocumentMetadata document_metadata = DocumentMetadata::kPinned;

  // See SyncPolicy. Default kPeriodic.
  SyncPolicy sync_policy = SyncPolicy::kPeriodic;
  // Milliseconds between WAL fsyncs under kPeriodic (ignored under kPerBatch). Must be > 0.
  // Default 100 ms.
  int64_t sync_interval_ms = 100;

  // Clock that decides expiry, on reads and in compaction. Must outlive the store.
  // Default nullptr = SystemClock::Default().
  Clock* clock = nullptr;

  // Bytes of one memtable of a kLive table: smaller, so flushes are frequent and L0 stays
  // small for point reads. Default 32 MiB.
  size_t live_write_buffer_bytes = size_t{32} << 20;
  // Bytes of one memtable of a kCompressed or kIndex table. Default 64 MiB.
  size_t write_buffer_bytes = size_t{64} << 20;
  // Cap on memtable bytes across all tables; when reached, the largest memtable is flushed.
  // 0 = no cap. Default 512 MiB.
  size_t total_write_buffer_bytes = size_t{512} << 20;
  // Cap on the write-ahead log's bytes on disk. A log file can be deleted only once every
  // table with data in it has flushed that data; a table written rarely (a queue, language
  // changes) would otherwise keep every log since its last flush alive (408 MB of logs
  // against 61 MB of tables were seen). Past the cap, RocksDB flushes the tables that hold
  // the oldest log. 0 = RocksDB's default (4 x the memtable budget). Default 32 MiB.
  uint64_t max_wal_bytes = uint64_t{32} << 20;
  // After this many milliseconds without a write, if the live write-ahead log holds at least
  // idle_flush_min_wal_bytes, every table's memtable is flushed so the log files can go: an
  // idle server's disk then holds its tables and an empty log, not a log of everything
  // since the last flush. Then every table that has grown by an eighth since it was last
  // compacted this way, or whose entries are a tenth deletions, is compacted whole: rolled-up
  // live rows and chunks rotated away are tombstones above the bytes they delete, which
  // compaction triggered by writes would not reach (rocksdb_row_store.cc, MaybeFlushIdle).
  // 0 = never. Defaults 10 s and 1 MiB.
  int64_t idle_flush_ms = 10'000;
  uint64_t idle_flush_min_wal_bytes = uint64_t{1} << 20;
  // Backstop for max_wal_bytes. RocksDB enforces that cap by flushing the tables that hold
  // the oldest log file, and then not again until that file is gone; if that flush does not
  // free it, the log grows without bound while writes go on. RocksDB 7.8 can strand an
  // immutable memtable of a rarely written table (min_write_buffer_number_to_merge 2: a
  // flush request lost while an older one of the same table was queued), and then it does:
  // 0.5-1.2 GB of log against the 32 MiB cap in bulk loads, the one caught holding
  // `lifecycle_runs` (docs/benchmark-log.md). The store checks every second: past this
  // many bytes of live log, it flushes every table with unflushed rows and logs which
  // tables those were (once a minute at most).
  // -1 = 4 x max_wal_bytes (off when max_wal_bytes is 0); 0 = off. Default -1.
  int64_t wal_backstop_bytes = -1;
  // Tests only: called on the maintenance thread right before an idle flush.
  std::function<void()> before_idle_maintenance_for_testing;
  // Target bytes of one SST file of a kCompressed table (kLive and kIndex use 64 MiB).
  // Default 256 MiB.
  uint64_t compressed_target_file_bytes = uint64_t{256} << 20;

  // Background threads for flushes and compactions together. Default 2 (the machine size
  // Strata is tested on); raise on larger machines.
  int max_background_jobs = 2;
  // Bloom filter bits per key for point lookups (about 1% false positives at 10).
  // 0 = no bloom filters. Default 10.
  int bloom_bits_per_key = 10;
  // Values of a kDocument table of at least this many bytes (the row's encoded value) go to
  // blob files (RocksDB's integrated BlobDB), uncompressed; the table's SST files keep the
  // keys, small values and a reference to each blob. Compaction then merges keys only, never
  // rewriting a document again (except blob garbage collection, which moves live blobs out of
  // the oldest quarter of blob files as compaction passes them), and a point read costs one
  // read of the document's own bytes, without decompressing a block around it. Expired rows
  // in blob files are hidden from reads but not dropped by compaction (the expiry filter
  // would have to read every blob); they go when the row is deleted or overwritten.
  // 0 = documents stay inside the SST files (LZ4 blocks). Changing it affects new writes
  // only: both kinds of files stay readable. Default 512.
  uint64_t document_blob_min_bytes = 512;
  // Blob garbage collection of a kDocument table (compactions move the live documents out of
  // the oldest quarter of its blob files, so files that hold overwritten or deleted
  // documents can go) runs only while at least this share of the table's blob bytes is
  // garbage, and stops again below half of it; the store checks every few seconds. A bulk
  // load has no garbage, and collecting then only copied live documents: in a 3M-asset load
  // compactions rewrote 0.6-0.8 GB of the 3.45 GB of documents for nothing. 0 = always on
  // (RocksDB's own behaviour). 0..1, default 0.2.
  double document_blob_gc_min_garbage = 0.2;
  // After RocksDB found the disk full (a write, flush or compaction failed with ENOSPC),
  // writes are refused; every 2 s the store checks the free space under `path`, and once it
  // is at least this much (and at least the memtables' bytes, which resuming flushes),
  // resumes writes (DB::Resume) without a restart. Default 64 MiB.
  uint64_t resume_min_free_bytes = uint64_t{64} << 20;
};

using SyncPolicy = RocksRowStoreOptions::SyncPolicy;

// Backend health numbers, for metrics and /healthz. A snapshot; cheap to take.
struct RocksHealth {
  uint64_t pending_compaction_bytes = 0;  // bytes compaction must rewrite to settle, all tables
  uint64_t running_compactions = 0;
  uint64_t running_flushes = 0;
  bool write_stalled = false;             // writes are being delayed or stopped
  uint64_t total_sst_bytes = 0;           // bytes of all SST files, all tables (incl. obsolete)
  uint64_t live_sst_bytes = 0;            // bytes of the SST files of the current version
  uint64_t memtable_bytes = 0;            // bytes in memtables, all tables
  uint64_t live_blob_bytes = 0;           // bytes of the blob files of the current version
  uint64_t wal_bytes = 0;                 // bytes of the write-ahead log files still live
  uint64_t wal_files = 0;                 // number of those files
  uint64_t background_errors = 0;         // accumulated background (flush/compaction) errors
  uint64_t unresolved_background_errors = 0;  // of them, since writes last resumed
  uint64_t resumes = 0;                   // times writes resumed after the disk had been full
  uint64_t wal_sync_failures = 0;         // failed periodic WAL fsyncs since Open
  uint64_t wal_syncs = 0;                 // completed WAL fsync rounds since Open
  double wal_sync_running_seconds = 0;    // how long the WAL fsync under way has taken (0: none)
  // Non-empty when the store refuses writes (a failed WAL fsync or write): why, for /healthz.
  std::string writes_refused;
  uint64_t idle_flushes = 0;              // flushes of every table after writes went idle
  uint64_t idle_compactions = 0;          // tables compacted whole while writes were idle
  uint64_t wal_backstop_flushes = 0;      // flushes of every table past wal_backstop_bytes
  uint64_t stamped_checks = 0;  // write conditions that skipped their read (a read stamp held)
  uint64_t blob_garbage_bytes = 0;        // garbage in the live blob files, all tables
  uint64_t blob_gc_tables = 0;            // tables whose blob garbage collection is on now
};

struct RocksTableInfo {
  std::string name;
  TableProfile profile;  // the stored profile, which decides the tuning
};

class RocksRowStore final : public RowStore {
 public:
  // Opens (creating if missing) the database at options.path, with every table it holds.
  // InvalidArgument for bad options; Unavailable if the database is locked by another
  // process or the disk fails; Internal for corruption.
  static absl::StatusOr<std::unique_ptr<RocksRowStore>> Open(const RocksRowStoreOptions& options);

  // Stops the sync and maintenance threads, flushes and fsyncs the WAL, and closes the database.
  ~RocksRowStore() override;

  RocksRowStore(const RocksRowStore&) = delete;
  RocksRowStore& operator=(const RocksRowStore&) = delete;

  // A table keeps the profile it was created with (it is stored in the column family's
  // name); opening it with another profile returns the existing table unchanged.
  absl::StatusOr<Table*> OpenTable(const TableOptions& options) override;
  absl::Status Write(std::span<const PartitionWrite> writes) override;
  // Write is atomic across its batches, so it keeps the order's guarantee.
  absl::Status WriteInOrder(std::span<const PartitionWrite> writes) override {
    return Write(writes);
  }
  absl::StatusOr<std::unique_ptr<Snapshot>> NewSnapshot() override;
  absl::Status Sync() override;

  // Every table of the database, sorted by name.
  std::vector<RocksTableInfo> ListTables() const;
  RocksHealth Health() const;

  // The neutral view of Health() (RowStore's optional capabilities): unhealthy with
  // background errors; load 1 while writes stall, else 0; pending compaction as the
  // background debt; WAL, live SST and memtable bytes.
  BackendHealth CheckHealth() const override;
  // strata_rocksdb_wal_bytes, _memtable_bytes, _idle_compactions, _pending_compaction_bytes.
  void ExportMetrics(MetricsRegistry* metrics) override;
  bool SupportsCompaction() const override { return true; }
  absl::Status Compact() override { return CompactAll(); }
  // RocksDB's checkpoint: SST files hard-linked, the WAL copied, so it costs little space.
  absl::Status Checkpoint(const std::string& dir) override;

  // Flushes and fully compacts every table: expired rows are dropped, merge operands folded.
  // Slow on big databases; for operators and tests.
  absl::Status CompactAll();

  // For tests: flushes every table's memtables to files (no compaction asked for).
  absl::Status FlushForTesting();
  // For tests: the maintenance thread's periodic check of the document tables' blob garbage, now
  // (RocksRowStoreOptions::document_blob_gc_min_garbage).
  void SwitchBlobGcForTesting();
  // For tests: the number of entries stored for `table` as RocksDB sees them, including
  // expired rows that compaction has not dropped yet. NotFound for an unknown table.
  absl::StatusOr<uint64_t> CountRawEntriesForTesting(std::string_view table);
  // For tests: a one-line summary of the tuning of `table`'s column family, e.g.
  // "profile=live compaction=level compression=lz4 write_buffer=33554432 ...".
  absl::StatusOr<std::string> DescribeTuningForTesting(std::string_view table);

 private:
  struct Impl;
  explicit RocksRowStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::store
