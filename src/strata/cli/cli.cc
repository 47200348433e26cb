// The `strata` command line, built with CLI11. CLI11 is confined to this file (each file that
// includes it takes ~16 s of CPU to compile): here the command tree is declared, one Add*
// function per command group filling that group's argument struct; the commands themselves
// live in files without CLI11 (viewing_commands, media_commands, gc_commands,
// server_commands).
#include "strata/cli/cli.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "strata/cli/asset_commands.h"
#include "strata/cli/gc_commands.h"
#include "strata/cli/key_commands.h"
#include "strata/cli/media_commands.h"
#include "strata/cli/reprocess_commands.h"
#include "strata/cli/server_commands.h"
#include "strata/cli/viewing_commands.h"

namespace strata::cli {
namespace {

// A leaf command and what runs it once the command line has been parsed.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};
using Commands = std::vector<Command>;

// What the commands of the groups that have no argument struct of their own read.
struct MemberArgs {
  std::string server_url = "http://127.0.0.1:8080";
  uint64_t member = 0;
};
struct ServerArgs {
  std::string server_url = "http://127.0.0.1:8080";
  std::string backup_name, backup_dir, restore_data_dir;  // strata backup ...
  bool scrub_run = false;                                 // strata admin scrub --run
  bool no_wait = false;                                   // strata admin compact --no-wait
  std::string job_id;                                     // strata admin jobs [ID]
};
struct DemoArgs {
  std::string server_url = "http://127.0.0.1:8080";
  uint64_t members = 20;
};
struct BenchArgs {
  bench::ViewingBenchOptions viewing;
  bench::CompareOptions compare;  // --mode compare (its own defaults)
  bool no_settle = false;
  bool no_compact = false;
  bench::GcBenchOptions gc;
  bench::ObjectBenchOptions objects;
  bench::AssetBenchOptions assets;
  bench::ConnectionsBenchOptions connections;
  bench::ReprocessBenchOptions reprocess;
};

void AddServerOption(CLI::App* cmd, std::string* server_url) {
  cmd->add_option("--server", *server_url, "Server URL")->capture_default_str();
}

// CLI11 reads config files at the top level; `strata serve --config F` is moved there
// (`strata --config F serve`), where the file's [serve] section holds serve's options.
std::vector<std::string> HoistConfigFlag(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      std::vector<std::string> flag = {args[i], args[i + 1]};
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
      args.insert(args.begin() + 1, flag.begin(), flag.end());
      break;
    }
    if (args[i].rfind("--config=", 0) == 0) {
      std::string flag = args[i];
      args.erase(args.begin() + static_cast<long>(i));
      args.insert(args.begin() + 1, flag);
      break;
    }
  }
  return args;
}

// The config file's backend sections ([rows], [blobs], [queue], [cache]; keys as in the
// issue and docs/configuration.md, `ceph_conf` or `ceph-conf`) are read as serve's options
// `--<section>-<key>`: CLI11 would take a section for a subcommand of that name.
class StrataConfigFormat : public CLI::ConfigTOML {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::vector<CLI::ConfigItem> items = CLI::ConfigTOML::from_config(input);
    std::vector<CLI::ConfigItem> out;
    for (CLI::ConfigItem& item : items) {
      if (item.parents.size() == 1 && IsBackendSection(item.parents[0])) {
        if (item.name == "++" || item.name == "--") continue;  // section open/close marks
        std::string name = item.parents[0] + "-" + item.name;
        for (char& ch : name) {
          if (ch == '_') ch = '-';
        }
        item.name = name;
        item.parents = {"serve"};
      }
      out.push_back(std::move(item));
    }
    return out;
  }

 private:
  static bool IsBackendSection(const std::string& s) {
    return s == "rows" || s == "blobs" || s == "queue" || s == "cache";
  }
};

// serve's backend choice (server/backends.h). Secrets have no flag: S3 keys come from the
// environment or --blobs-credentials-file.
void AddBackendOptions(CLI::App* serve, server::BackendConfig* b) {
  serve->add_option("--rows-backend", b->rows.backend,
                    "Row store: rocksdb (embedded) or rados (Ceph)")
      ->capture_default_str();
  serve->add_option("--rows-ceph-conf", b->rows.ceph_conf, "rados: Ceph client config file")
      ->capture_default_str();
  serve->add_option("--rows-pool-prefix", b->rows.pool_prefix,
                    "rados: prefix of the pools (one per table family)")
      ->capture_default_str();
  serve->add_option("--rows-live-shards", b->rows.live_shards,
                    "rados: shard objects of a new table written over many small partitions "
                    "(fixed at the table's creation)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  serve->add_option("--blobs-backend", b->blobs.backend,
                    "Object bytes: local (files under --data-dir) or s3")
      ->capture_default_str();
  serve->add_option("--blobs-endpoint", b->blobs.endpoint, "s3: service URL (http[s]://...)");
  serve->add_option("--blobs-bucket", b->blobs.bucket, "s3: bucket holding the bytes");
  serve->add_option("--blobs-region", b->blobs.region, "s3: signing region")
      ->capture_default_str();
  serve->add_option("--blobs-credentials-file", b->blobs.credentials_file,
                    "s3: file with access_key/secret_key lines (default: the environment's "
                    "STRATA_S3_ACCESS_KEY/STRATA_S3_SECRET_KEY or AWS_ACCESS_KEY_ID/"
                    "AWS_SECRET_ACCESS_KEY)");
  serve->add_flag("--blobs-create-bucket", b->blobs.create_bucket,
                  "s3: create the bucket at start if it does not exist");
  serve->add_option("--blobs-versioning", b->blobs.versioning,
                    "s3: a bucket that --blobs-create-bucket makes gets versioning (readers "
                    "survive deletes); false: deletes remove the bytes at once (faster on "
                    "radosgw). An existing bucket is used as it is")
      ->capture_default_str();
  serve->add_option("--queue-backend", b->queue.backend,
                    "Work queues: embedded (in the row store) or kafka")
      ->capture_default_str();
  serve->add_option("--queue-brokers", b->queue.brokers, "kafka: bootstrap brokers, host:port")
      ->delimiter(',');
  serve->add_option("--queue-topic-prefix", b->queue.topic_prefix,
                    "kafka: prefix of every topic name (deployments sharing one cluster)");
  serve->add_option("--cache-backend", b->cache.backend,
                    "Caches: memory (per process) or memcached (shared by every server)")
      ->capture_default_str();
  serve->add_option("--cache-servers", b->cache.servers, "memcached: servers, host:port")
      ->delimiter(',');
}

// serve's options: every field of the server's configuration, with its default.
void AddServeOptions(CLI::App* serve, server::ServerConfig* c) {
  serve->add_option("--data-dir", c->data_dir, "Directory for all data")->capture_default_str();
  AddBackendOptions(serve, &c->backends);
  serve->add_option("--address", c->http.address, "Address to listen on")->capture_default_str();
  serve->add_option("--allowed-hosts", c->allowed_hosts,
                    "Host names clients use for this server, besides localhost, 127.0.0.1, "
                    "::1, the --address and the machine's name (\"*\" = any); other Host "
                    "headers get 421, other Origins of state-changing requests 403");
  serve->add_flag("--insecure-no-auth", c->insecure_no_auth,
                  "Start on a non-loopback --address although no API key exists, serving "
                  "every request unauthenticated (once a key exists, keys are always required)");
  serve->add_option("--audit-retention-days", c->audit_retention_days,
                    "Days audit records (admin actions, hard deletes) are kept")
      ->check(CLI::Range(1, 36500))
      ->capture_default_str();
  serve->add_option("--port", c->http.port, "TCP port (0 = pick a free one)")
      ->capture_default_str();
  serve->add_option("--plain-http", c->http.plain_http,
                    "Serve plain HTTP on --port (false: TLS only, needs --tls-cert)")
      ->capture_default_str();
  serve->add_option("--tls-cert", c->http.tls_cert_file,
                    "PEM certificate chain (leaf first) to serve TLS on --tls-port; reread on "
                    "SIGHUP");
  serve->add_option("--tls-key", c->http.tls_key_file,
                    "PEM private key (unencrypted) of --tls-cert; reread on SIGHUP");
  serve->add_option("--tls-port", c->http.tls_port, "TLS port (0 = pick a free one)")
      ->capture_default_str();
  serve->add_option("--tls-address", c->http.tls_address,
                    "Address of the TLS listener (default: --address)");
  serve->add_option("--http-threads", c->http.threads, "HTTP I/O threads")->capture_default_str();
  serve->add_option("--request-slice-us", c->request_slice_us,
                    "Time slice (us) of the threads answering requests, so they preempt "
                    "background work (Linux 6.12+; 0 = kernel default)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  serve->add_option("--idle-timeout-ms", c->http.idle_timeout_ms,
                    "Close a connection idle this long between requests, or this slow to "
                    "deliver one request's header")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve->add_option("--write-timeout-ms", c->http.write_timeout_ms,
                    "Close a connection whose reader takes longer than this for one response")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve->add_option("--max-header-bytes", c->http.max_header_bytes,
                    "Largest request line plus headers; larger get 400")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve->add_option("--max-chunk-extension-bytes", c->http.max_chunk_extension_bytes,
                    "Most bytes of chunk extensions in one request body; more get 400")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve->add_option("--min-upload-bytes-per-second", c->http.min_upload_bytes_per_second,
                    "Slowest pace of an object upload, over each --upload-rate-window-ms; "
                    "slower ones get 408 (0 = no minimum)")
      ->capture_default_str();
  serve->add_option("--upload-rate-window-ms", c->http.upload_rate_window_ms,
                    "Window of --min-upload-bytes-per-second (the first is the grace period)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve->add_option("--max-connections", c->http.max_connections,
                    "Open connections at most; more are answered 503 and closed (0 = no limit)")
      ->capture_default_str();
  serve->add_option("--max-body-bytes", c->http.max_body_bytes,
                    "Largest accepted request body; larger get 413")
      ->capture_default_str();
  serve->add_option("--block-cache-bytes", c->block_cache_bytes, "RocksDB block cache size")
      ->capture_default_str();
  serve->add_option("--document-blob-min-bytes", c->document_blob_min_bytes,
                    "RocksDB: asset rows of at least this many bytes go to blob files (0 = "
                    "inside the SST files)")
      ->capture_default_str();
  serve->add_option("--document-blob-gc-min-garbage", c->document_blob_gc_min_garbage,
                    "RocksDB: collect the asset table's blob garbage only while at least this "
                    "share of its blob bytes is garbage, until half of it (0 = always)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  serve->add_option("--block-cache-shard-bits", c->block_cache_shard_bits,
                    "RocksDB block cache shards, 2^N (-1 = RocksDB's choice by size)")
      ->check(CLI::Range(-1, 8))
      ->capture_default_str();
  serve->add_option("--document-metadata", c->document_metadata,
                    "RocksDB: where the asset table's index and filter blocks live: cache, "
                    "pinned (in the cache, pinned) or reader (table reader memory)")
      ->check(CLI::IsMember({"cache", "pinned", "reader"}))
      ->capture_default_str();
  serve->add_option("--sync", c->sync, "WAL fsync policy: periodic or batch")
      ->check(CLI::IsMember({"periodic", "batch"}))
      ->capture_default_str();
  serve->add_option("--sync-interval-ms", c->sync_interval_ms, "Periodic fsync interval")
      ->capture_default_str();
  serve->add_option("--max-wal-bytes", c->max_wal_bytes,
                    "Cap on write-ahead log bytes; past it the tables pinning the oldest log "
                    "are flushed (0 = RocksDB's default, 4x the memtable budget)")
      ->capture_default_str();
  serve->add_option("--disk-resume-min-free-bytes", c->disk_resume_min_free_bytes,
                    "After the disk filled, writes resume by themselves once its file system "
                    "has this many bytes free (and room for the memtables)")
      ->capture_default_str();
  serve->add_option("--memtable-budget-bytes", c->memtable_budget_bytes,
                    "Cap on RocksDB memtable bytes across all tables")
      ->capture_default_str();
  auto& v = c->viewing;
  serve->add_option("--min-preview-ms", v.min_preview_watched_ms,
                    "Previews watched less than this are not stored")
      ->capture_default_str();
  serve->add_option("--play-ttl-ms", v.play_ttl_ms, "Time to live of plays (0 = keep)")
      ->capture_default_str();
  serve->add_option("--preview-ttl-ms", v.preview_ttl_ms, "Time to live of previews")
      ->capture_default_str();
  serve->add_option("--language-ttl-ms", v.language_ttl_ms,
                    "Time to live of stored language changes")
      ->capture_default_str();
  serve->add_option("--rollup-min-live-rows", v.rollup_min_live_rows,
                    "Live rows per member that trigger a roll-up")
      ->capture_default_str();
  serve->add_option("--rollup-growth-fraction", v.rollup_growth_fraction,
                    "Roll up once live rows reach this fraction of the compressed records")
      ->capture_default_str();
  serve->add_option("--rollup-max-live-rows", v.rollup_max_live_rows,
                    "Live rows per member that always trigger a roll-up (caps the fraction)")
      ->capture_default_str();
  serve->add_option("--rollup-max-live-age-ms", v.rollup_max_live_age_ms,
                    "Roll a member's live rows up, whatever their number, once the oldest was "
                    "written this long ago (0 = by count only)")
      ->capture_default_str();
  serve->add_option("--max-future-skew-ms", v.max_future_skew_ms,
                    "Reject events whose started_at or event_time is this far ahead of the "
                    "server's clock (negative = accept any time)")
      ->capture_default_str();
  serve->add_option("--rollup-threads", v.rollup_threads, "Background roll-up workers")
      ->capture_default_str();
  serve->add_option("--segment-records", v.segment_records,
                    "Records per compressed chunk (segment), each decodable alone")
      ->capture_default_str();
  serve->add_option("--past-segment-records", v.past_segment_records,
                    "Records per compressed chunk of the past tier")
      ->capture_default_str();
  serve->add_option("--zstd-level", v.zstd_level, "zstd level of compressed blobs (1-19)")
      ->capture_default_str();
  serve->add_option("--cache-bytes", v.cache_bytes, "History cache budget")
      ->capture_default_str();
  serve->add_option("--read-threads", v.read_threads, "Threads for parallel reads on a miss")
      ->capture_default_str();
  serve->add_option("--background-nice", v.background_nice,
                    "Nice value of roll-up, rotation, sweep and encode threads (they take the "
                    "CPU requests leave; 0-19)")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  serve->add_option("--encode-threads", v.encode_threads,
                    "Background threads encoding large roll-ups and rotations in parallel "
                    "(0 = none)")
      ->capture_default_str();
  serve->add_option("--recent-age-ms", v.recent_age_ms,
                    "Plays older than this move from the recent to the past tier")
      ->capture_default_str();
  serve->add_option("--historical-age-ms", v.historical_age_ms,
                    "Plays older than this are folded into the historical summary")
      ->capture_default_str();
  serve->add_option("--past-summary-min-records", v.past_summary_min_records,
                    "Store a member's past-tier summary from this many past plays (0 = always)")
      ->capture_default_str();
  serve->add_option("--rotation-slack-ms", v.rotation_slack_ms,
                    "Rotate a member once its oldest play is this far past a tier boundary")
      ->capture_default_str();
  serve->add_option("--rotation-threads", v.rotation_threads, "Background rotation workers")
      ->capture_default_str();
  serve->add_option("--rotation-max-per-s", v.rotation_max_per_s,
                    "Most member rotations started per second (0 = unthrottled)")
      ->capture_default_str();
  serve->add_option("--rotation-sweep-interval-ms", v.rotation_sweep_interval_ms,
                    "Sweep for members due a rotation this often (0 = on demand only)")
      ->capture_default_str();
  serve->add_option("--summary-cache-bytes", v.summary_cache_bytes, "Summary cache budget")
      ->capture_default_str();
  serve->add_option("--blob-part-bytes", c->blob_part_bytes,
                    "Bytes of one part file of an object (larger objects get several)")
      ->capture_default_str();
  serve->add_option("--blob-inline-max-bytes", c->blob_inline_max_bytes,
                    "Objects up to this size keep their bytes in the row store, not a file "
                    "(0 = all files)")
      ->capture_default_str();
  serve->add_option("--max-object-bytes", c->max_object_bytes,
                    "Largest object a PUT accepts (streamed); larger get 413")
      ->capture_default_str();
  serve->add_option("--gc-daily-at", c->gc_daily_at,
                    "Daily GC run at this UTC time, HH:MM (\"\" = on demand only)")
      ->capture_default_str();
  serve->add_option("--gc-min-workers", c->gc_min_workers, "Sweep workers at least")
      ->capture_default_str();
  serve->add_option("--gc-max-workers", c->gc_max_workers,
                    "Sweep workers at most (0 = half the cores, at least --gc-min-workers; 4 with "
                    "rows on RADOS or bytes on S3)")
      ->capture_default_str();
  serve->add_option("--gc-backlog-per-worker", c->gc_backlog_per_worker,
                    "One more sweep worker per this many queued items")
      ->capture_default_str();
  serve->add_option("--gc-sweep-batch", c->gc_sweep_batch,
                    "Items per sweep batch: one directory fsync and one queue commit each")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  serve->add_option("--gc-initial-rate", c->gc_initial_rate, "Sweep rate at start, items/s")
      ->capture_default_str();
  serve->add_option("--gc-min-rate", c->gc_min_rate, "Sweep rate floor, items/s")
      ->capture_default_str();
  serve->add_option("--gc-max-rate", c->gc_max_rate, "Sweep rate ceiling, items/s")
      ->capture_default_str();
  serve->add_option("--gc-rate-step", c->gc_rate_step,
                    "Items/s added to the sweep rate per healthy 500 ms interval")
      ->capture_default_str();
  serve->add_option("--gc-latency-factor", c->gc_latency_factor,
                    "Back off when object GET/PUT p99 exceeds this x its idle p99")
      ->capture_default_str();
  serve->add_option("--gc-latency-floor-ms", c->gc_latency_floor_ms,
                    "Object p99 below this never slows the sweep (noise floor)")
      ->capture_default_str();
  serve->add_option("--gc-orphan-age-ms", c->gc_orphan_age_ms,
                    "Uploads not committed after this long are abandoned; the GC deletes their "
                    "bytes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve
      ->add_option("--gc-orphan-blob-scan", c->gc_orphan_blob_scan,
                   "Each GC run lists the blob store and deletes blobs no row names that are "
                   "older than --gc-orphan-age-ms")
      ->capture_default_str();
  serve->add_option("--gc-max-pending-compaction-bytes", c->gc_max_pending_compaction_bytes,
                    "Back off above this RocksDB compaction debt")
      ->capture_default_str();
  serve
      ->add_option("--scrub-rate-bytes", c->scrub_rate_bytes,
                   "Read every object back and check its stored checksums at most this many "
                   "bytes per second (0 = no scrub)")
      ->capture_default_str();
  serve
      ->add_option("--scrub-interval-ms", c->scrub_interval_ms,
                   "A scrub pass starts this long after the previous one started")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve->add_option("--gc-export", c->gc_export,
                    "Export each run's snapshot as NDJSON under <data-dir>/lifecycle-export")
      ->capture_default_str();
  serve->add_option("--gc-export-keep-runs", c->gc_export_keep_runs,
                    "Runs (dry runs too) whose exports are kept per task; older ones are "
                    "deleted (0 = keep all)")
      ->capture_default_str();
  serve->add_option("--archive-after-ms", c->archive_after_ms,
                    "Move objects older than this to --archive-class (0 = off)")
      ->capture_default_str();
  serve->add_option("--archive-class", c->archive_class, "Storage class archival moves to")
      ->capture_default_str();
  serve->add_option("--archive-daily-at", c->archive_daily_at,
                    "Daily archival run at this UTC time, HH:MM")
      ->capture_default_str();
  serve->add_option("--asset-max-payload-bytes", c->asset_max_payload_bytes,
                    "Largest asset payload, bytes; larger get 413")
      ->check(CLI::Range(uint64_t{2}, uint64_t{16} << 20))
      ->capture_default_str();
  serve->add_option("--asset-max-depth", c->asset_max_depth, "Deepest asset payload nesting")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  serve->add_option("--asset-max-batch", c->asset_max_batch,
                    "Most assets in one POST /v1/assets/{type}:batch")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  serve->add_option("--asset-keep-versions", c->asset_keep_versions,
                    "Previous versions kept per asset when its type does not say")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  serve->add_option("--reprocess-nice", c->reprocess_nice,
                    "Nice increment of reprocessing jobs' threads (0-19; 0: request priority)")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  serve->add_option("--reprocess-batch", c->reprocess_batch,
                    "Events a reprocessing worker takes per poll (one read and one write per "
                    "bucket, one count update and one offset commit per poll)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  serve->add_option("--reprocess-write-assets", c->reprocess_write_assets,
                    "Most assets a reprocessing job writes in one batch (requests' writes "
                    "wait for the batch being written)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  serve->add_option("--log-level", c->log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
}

void AddServeCommand(CLI::App& app, server::ServerConfig* config, Commands* commands) {
  CLI::App* serve = app.add_subcommand("serve", "Run the server (embedded deployment)");
  AddServeOptions(serve, config);
  commands->push_back({serve, [config] { return RunServe(*config); }});
}

// Viewing-history operator commands.
void AddViewingCommands(CLI::App& app, ViewingArgs* a, Commands* commands) {
  CLI::App* viewing = app.add_subcommand("viewing", "Read and manage viewing history");
  viewing->require_subcommand(1);
  CLI::App* history = viewing->add_subcommand("history", "A member's history, newest first");
  history->add_option("member", a->member, "Member id")->required();
  history->add_option("--kind", a->kind, "play or preview")->capture_default_str();
  history->add_option("--since", a->since, "Earliest started_at (ms)");
  history->add_option("--until", a->until, "started_at before this (ms)");
  history->add_option("--limit", a->limit, "Records per page (1-1000)")->capture_default_str();
  history->add_option("--cursor", a->cursor, "next_cursor of the previous page");
  AddServerOption(history, &a->server_url);
  commands->push_back({history, [a] { return ViewingHistory(*a); }});
  CLI::App* summary = viewing->add_subcommand("summary", "Per-title summary of a member");
  summary->add_option("member", a->member, "Member id")->required();
  AddServerOption(summary, &a->server_url);
  commands->push_back({summary, [a] { return ViewingSummary(*a); }});
  CLI::App* languages = viewing->add_subcommand("languages", "Language preferences of a member");
  languages->add_option("member", a->member, "Member id")->required();
  AddServerOption(languages, &a->server_url);
  commands->push_back({languages, [a] { return ViewingLanguages(*a); }});
  CLI::App* rotate = viewing->add_subcommand(
      "rotate", "Rotate a member's plays between the age tiers now");
  rotate->add_option("member", a->member, "Member id")->required();
  AddServerOption(rotate, &a->server_url);
  commands->push_back({rotate, [a] { return ViewingRotate(*a); }});
  CLI::App* rotation = viewing->add_subcommand(
      "rotation", "Rotation progress; --sweep starts a sweep over every member");
  rotation->add_flag("--sweep", a->sweep, "Start a sweep that queues every member due a rotation");
  AddServerOption(rotation, &a->server_url);
  commands->push_back({rotation, [a] { return ViewingRotation(*a); }});
  CLI::App* rollup = viewing->add_subcommand("rollup", "Roll a member's live rows up now");
  rollup->add_option("member", a->member, "Member id")->required();
  rollup->add_option("--kind", a->kind, "play or preview")->capture_default_str();
  AddServerOption(rollup, &a->server_url);
  commands->push_back({rollup, [a] { return ViewingRollup(*a); }});
  CLI::App* tables = viewing->add_subcommand("tables", "Members, records and bytes per table");
  AddServerOption(tables, &a->server_url);
  commands->push_back({tables, [a] { return ViewingTables(*a); }});
  CLI::App* ingest = viewing->add_subcommand("ingest", "Post NDJSON events from a file or stdin");
  ingest->add_option("file", a->ingest_file, "NDJSON file, - for stdin")->capture_default_str();
  AddServerOption(ingest, &a->server_url);
  commands->push_back({ingest, [a] { return ViewingIngest(*a); }});
}

void AddMemberCommands(CLI::App& app, MemberArgs* a, Commands* commands) {
  CLI::App* member = app.add_subcommand("member", "Member-wide operations");
  member->require_subcommand(1);
  CLI::App* erase = member->add_subcommand("delete", "Erase a member everywhere");
  erase->add_option("member", a->member, "Member id")->required();
  AddServerOption(erase, &a->server_url);
  commands->push_back({erase, [a] { return MemberDelete(a->server_url, a->member); }});
}

void AddAdminCommands(CLI::App& app, ServerArgs* a, Commands* commands) {
  CLI::App* admin = app.add_subcommand("admin", "Operator actions on the store");
  admin->require_subcommand(1);
  CLI::App* compact = admin->add_subcommand(
      "compact", "Compact every table now: a background job, followed until it finishes");
  compact->add_flag("--no-wait", a->no_wait, "Print the started job and return at once");
  AddServerOption(compact, &a->server_url);
  commands->push_back({compact, [a] { return AdminCompact(a->server_url, !a->no_wait); }});
  CLI::App* jobs = admin->add_subcommand(
      "jobs", "Admin jobs (compactions, table reports): the recent ones, or one by id");
  jobs->add_option("id", a->job_id, "A job id (j...-N); none lists the recent jobs");
  AddServerOption(jobs, &a->server_url);
  commands->push_back({jobs, [a] { return AdminJobs(a->server_url, a->job_id); }});
  CLI::App* backup = app.add_subcommand("backup", "Online backups of the embedded store");
  backup->require_subcommand(1);
  CLI::App* create = backup->add_subcommand(
      "create", "Back up the running server into <data-dir>/backups/NAME (consistent, online)");
  create->add_option("name", a->backup_name, "Backup name, [A-Za-z0-9._-]")->required();
  AddServerOption(create, &a->server_url);
  commands->push_back({create, [a] { return BackupCreate(a->server_url, a->backup_name); }});
  CLI::App* restore = backup->add_subcommand(
      "restore", "Restore a backup into a new data directory (offline: no server on it)");
  restore->add_option("backup_dir", a->backup_dir, "The backup's directory")->required();
  restore->add_option("--data-dir", a->restore_data_dir, "The new data directory")->required();
  commands->push_back(
      {restore, [a] { return BackupRestore(a->backup_dir, a->restore_data_dir); }});
  CLI::App* drop_caches = admin->add_subcommand(
      "drop-caches", "Empty the viewing history and summary caches (cold-read measurements)");
  AddServerOption(drop_caches, &a->server_url);
  commands->push_back({drop_caches, [a] { return AdminDropCaches(a->server_url); }});
  CLI::App* scrub =
      admin->add_subcommand("scrub", "The scrub's report: passes, position, objects found damaged");
  scrub->add_flag("--run", a->scrub_run, "Start a scrub pass now (409 while one runs)");
  AddServerOption(scrub, &a->server_url);
  commands->push_back({scrub, [a] { return AdminScrub(a->server_url, a->scrub_run); }});
}

// API keys, offline on the store (the server stopped, on the embedded deployment).
void AddKeyCommands(CLI::App& app, KeyArgs* a, Commands* commands) {
  CLI::App* key = app.add_subcommand(
      "key", "API keys, managed offline on the data directory (stop the server first)");
  key->require_subcommand(1);
  auto add_store = [a](CLI::App* cmd) {
    cmd->add_option("--data-dir", a->store.data_dir, "The server's data directory")
        ->capture_default_str();
    cmd->add_option("--rows-backend", a->store.backends.rows.backend,
                    "Row store: rocksdb (embedded) or rados (Ceph)")
        ->capture_default_str();
    cmd->add_option("--rows-ceph-conf", a->store.backends.rows.ceph_conf,
                    "rados: Ceph client config file")
        ->capture_default_str();
    cmd->add_option("--rows-pool-prefix", a->store.backends.rows.pool_prefix,
                    "rados: prefix of the pools")
        ->capture_default_str();
  };
  CLI::App* create = key->add_subcommand(
      "create", "Create a key and print its token (shown only this once)");
  create->add_option("--scopes", a->scopes,
                     "Comma-separated: viewing:read, viewing:write, objects:read, objects:write, "
                     "assets:read, assets:write, metrics:read, admin");
  create->add_flag("--admin", a->admin, "Add the admin scope (allows everything)");
  create->add_option("--name", a->name, "A label for the key (who or what uses it)");
  add_store(create);
  commands->push_back({create, [a] { return KeyCreate(*a); }});
  CLI::App* list = key->add_subcommand("list", "List every key (active and revoked), no secrets");
  add_store(list);
  commands->push_back({list, [a] { return KeyList(*a); }});
  CLI::App* revoke = key->add_subcommand("revoke", "Revoke a key (it stays listed)");
  revoke->add_option("id", a->id, "The key's id (16 hex digits)")->required();
  add_store(revoke);
  commands->push_back({revoke, [a] { return KeyRevoke(*a); }});
}

// Media buckets and their lifecycle policy.
void AddBucketCommands(CLI::App& app, BucketArgs* a, Commands* commands) {
  CLI::App* bucket = app.add_subcommand("bucket", "Media buckets and their lifecycle policy");
  bucket->require_subcommand(1);
  CLI::App* put = bucket->add_subcommand("put", "Create a bucket or set its policy");
  put->add_option("bucket", a->bucket, "Bucket name")->required();
  put->add_option("--ttl", a->ttl, "Objects expire this long after creation (e.g. 30d)");
  put->add_option("--grace", a->grace, "Deleted objects are restorable this long")
      ->capture_default_str();
  put->add_option("--storage-class", a->storage_class, "Storage class of new objects")
      ->capture_default_str();
  AddServerOption(put, &a->server_url);
  commands->push_back({put, [a] { return BucketPut(*a); }});
  CLI::App* get = bucket->add_subcommand("get", "A bucket's policy");
  get->add_option("bucket", a->bucket, "Bucket name")->required();
  AddServerOption(get, &a->server_url);
  commands->push_back({get, [a] { return BucketGet(*a); }});
}

// Assets (docs/assets.md).
void AddAssetCommands(CLI::App& app, AssetArgs* a, Commands* commands) {
  CLI::App* asset = app.add_subcommand("asset", "Asset types and assets");
  asset->require_subcommand(1);
  CLI::App* type = asset->add_subcommand("type", "Asset types (schema, indexed pointers)");
  type->require_subcommand(1);
  CLI::App* type_put = type->add_subcommand("put", "Create an asset type or a new version");
  type_put->add_option("type", a->type, "Type name")->required();
  type_put->add_option("--schema", a->schema_file, "JSON Schema file (- = stdin)")->required();
  type_put->add_option("--indexed", a->indexed, "JSON pointer to index (repeatable)");
  type_put->add_option("--bucket", a->bucket, "Creation-time bucket: day or month")
      ->check(CLI::IsMember({"day", "month"}));
  type_put->add_option("--keep-versions", a->keep_versions, "Previous versions kept per asset")
      ->check(CLI::Range(0, 1000));
  AddServerOption(type_put, &a->server_url);
  commands->push_back({type_put, [a] { return AssetTypePut(*a); }});
  CLI::App* type_get = type->add_subcommand("get", "An asset type and its history");
  type_get->add_option("type", a->type, "Type name")->required();
  AddServerOption(type_get, &a->server_url);
  commands->push_back({type_get, [a] { return AssetTypeGet(*a); }});

  auto add_input = [a](CLI::App* cmd) {
    cmd->add_option("--data", a->data, "The JSON inline");
    cmd->add_option("-f,--file", a->file, "Read the JSON from this file (- = stdin, default)");
  };
  CLI::App* create = asset->add_subcommand("create", "Create an asset (or many with --batch)");
  create->add_option("type", a->type, "Type name")->required();
  add_input(create);
  create->add_flag("--batch", a->batch, "The input is a JSON array of payloads");
  AddServerOption(create, &a->server_url);
  commands->push_back({create, [a] { return AssetCreate(*a); }});
  auto add_asset = [a](CLI::App* cmd) {
    cmd->add_option("type", a->type, "Type name")->required();
    cmd->add_option("id", a->id, "Asset id (UUIDv7)")->required();
    AddServerOption(cmd, &a->server_url);
  };
  CLI::App* get = asset->add_subcommand("get", "An asset (its ETag is its version)");
  add_asset(get);
  commands->push_back({get, [a] { return AssetGet(*a); }});
  CLI::App* update = asset->add_subcommand("update", "Replace an asset's payload (or patch it)");
  add_asset(update);
  add_input(update);
  update->add_flag("--patch", a->patch, "Apply the input as a JSON merge patch (RFC 7396)");
  update->add_option("--if-match", a->if_match, "Only if the asset is at this version");
  commands->push_back({update, [a] { return AssetUpdate(*a); }});
  CLI::App* del = asset->add_subcommand("delete", "Delete an asset");
  add_asset(del);
  del->add_option("--if-match", a->if_match, "Only if the asset is at this version");
  commands->push_back({del, [a] { return AssetDelete(*a); }});
  CLI::App* versions = asset->add_subcommand("versions", "An asset's kept versions");
  add_asset(versions);
  commands->push_back({versions, [a] { return AssetVersions(*a); }});
  auto add_list = [a](CLI::App* cmd) {
    cmd->add_option("type", a->type, "Type name")->required();
    cmd->add_option("--limit", a->limit, "Assets per page (1-1000)")->capture_default_str();
    cmd->add_option("--since", a->since, "Created at or after (ms)");
    cmd->add_option("--until", a->until, "Created before (ms)");
    cmd->add_option("--cursor", a->cursor, "next_cursor of the previous page");
    cmd->add_option("--where", a->where,
                    "Condition on an indexed pointer, e.g. /format=4k or /duration_s>=600 "
                    "(repeatable: AND)");
    AddServerOption(cmd, &a->server_url);
  };
  CLI::App* list = asset->add_subcommand("list", "Assets of a type, newest first");
  add_list(list);
  commands->push_back({list, [a] { return AssetList(*a); }});
  CLI::App* search = asset->add_subcommand("search", "Assets matching --where conditions");
  add_list(search);
  search->get_option("--where")->required();
  commands->push_back({search, [a] { return AssetList(*a); }});
  CLI::App* changes = asset->add_subcommand("changes", "A type's change feed");
  changes->add_option("type", a->type, "Type name")->required();
  changes->add_option("--after", a->after, "Events after this offset");
  changes->add_option("--limit", a->limit, "Events (1-1000)")->capture_default_str();
  AddServerOption(changes, &a->server_url);
  commands->push_back({changes, [a] { return AssetChanges(*a); }});
}

// Reprocessing jobs (docs/assets.md, "Reprocessing").
void AddReprocessCommands(CLI::App& app, ReprocessArgs* a, Commands* commands) {
  CLI::App* reprocess = app.add_subcommand("reprocess", "Reprocessing jobs over assets");
  reprocess->require_subcommand(1);
  CLI::App* start = reprocess->add_subcommand("start", "Start a job (body: docs/api.md)");
  start->add_option("--data", a->data, "The job's JSON inline");
  start->add_option("-f,--file", a->file, "Read the job's JSON from this file (- = stdin)");
  start->add_flag("--wait", a->wait, "Follow the job to its end (progress on a terminal)");
  AddServerOption(start, &a->server_url);
  commands->push_back({start, [a] { return ReprocessStart(*a); }});
  CLI::App* status = reprocess->add_subcommand("status", "A job's state, counts, rate, ETA");
  status->add_option("id", a->id, "Job id")->required();
  AddServerOption(status, &a->server_url);
  commands->push_back({status, [a] { return ReprocessStatus(*a); }});
  CLI::App* list = reprocess->add_subcommand("list", "Jobs, newest first");
  list->add_option("--limit", a->limit, "Jobs (1-1000)")->capture_default_str();
  AddServerOption(list, &a->server_url);
  commands->push_back({list, [a] { return ReprocessList(*a); }});
  for (const char* action : {"pause", "resume", "cancel"}) {
    CLI::App* cmd = reprocess->add_subcommand(action, std::string(action) + " a job");
    cmd->add_option("id", a->id, "Job id")->required();
    AddServerOption(cmd, &a->server_url);
    commands->push_back({cmd, [a, action] { return ReprocessAction(*a, action); }});
  }
  CLI::App* dead = reprocess->add_subcommand("dead-letters", "Assets a job could not process");
  dead->add_option("id", a->id, "Job id")->required();
  dead->add_option("--limit", a->limit, "Entries (1-1000)")->capture_default_str();
  dead->add_option("--after", a->after, "Start after this asset id");
  dead->add_flag("--retry", a->retry,
                 "Put every dead letter back on the job's queue (a succeeded job runs again)");
  AddServerOption(dead, &a->server_url);
  commands->push_back({dead, [a] { return ReprocessDeadLetters(*a); }});
}

// Media objects.
void AddObjectCommands(CLI::App& app, ObjectArgs* a, Commands* commands) {
  CLI::App* object = app.add_subcommand("object", "Media objects");
  object->require_subcommand(1);
  auto add_object = [a](CLI::App* cmd) {
    cmd->add_option("bucket", a->bucket, "Bucket name")->required();
    cmd->add_option("key", a->key, "Object key")->required();
    AddServerOption(cmd, &a->server_url);
  };
  CLI::App* put = object->add_subcommand("put", "Upload a file as an object");
  add_object(put);
  put->add_option("file", a->file, "File to upload")->required();
  put->add_option("--content-type", a->content_type, "Content type")->capture_default_str();
  put->add_option("--meta", a->metas, "User metadata key=value (repeatable)");
  put->add_option("--ttl", a->ttl, "Overrides the bucket's TTL (e.g. 15d, 0 = never)");
  commands->push_back({put, [a] { return ObjectPut(*a); }});
  CLI::App* get = object->add_subcommand("get", "Download an object");
  add_object(get);
  get->add_option("-o,--output", a->file, "Output file, - for stdout")->capture_default_str();
  get->add_option("--range", a->range, "Byte range, e.g. bytes=0-1023");
  get->add_flag("--headers", a->show_headers, "Print the reply headers to stderr");
  commands->push_back({get, [a] { return ObjectGet(*a); }});
  CLI::App* head = object->add_subcommand("head", "An object's metadata headers");
  add_object(head);
  commands->push_back({head, [a] { return ObjectHead(*a); }});
  CLI::App* del = object->add_subcommand("delete", "Soft-delete an object");
  add_object(del);
  commands->push_back({del, [a] { return ObjectDelete(*a); }});
  CLI::App* restore =
      object->add_subcommand("restore", "Restore a soft-deleted object (grace period)");
  add_object(restore);
  commands->push_back({restore, [a] { return ObjectRestore(*a); }});
  CLI::App* list = object->add_subcommand("list", "List or search a bucket's objects");
  list->add_option("bucket", a->bucket, "Bucket name")->required();
  list->add_option("--prefix", a->prefix, "Key prefix");
  list->add_option("--after", a->after, "Start after this key (next_after)");
  list->add_option("--limit", a->list_limit, "Objects per page (1-1000)")->capture_default_str();
  list->add_option("--meta", a->meta_filter, "Search: only objects with metadata key=value");
  list->add_flag("--deleted", a->list_deleted,
                 "List soft-deleted objects that can still be restored");
  AddServerOption(list, &a->server_url);
  commands->push_back({list, [a] { return ObjectList(*a); }});
}

// The lifecycle collector (garbage collection; --task archive for archival).
void AddGcCommands(CLI::App& app, GcArgs* a, Commands* commands) {
  CLI::App* gc = app.add_subcommand("gc", "Garbage collection (and archival) runs");
  gc->require_subcommand(1);
  auto add_task = [a](CLI::App* cmd) {
    AddServerOption(cmd, &a->server_url);
    cmd->add_option("--task", a->task, "gc or archive")
        ->check(CLI::IsMember({"gc", "archive"}))
        ->capture_default_str();
  };
  CLI::App* run = gc->add_subcommand("run", "Start a run and wait for it to finish");
  run->add_flag("--dry-run", a->dry_run, "Mark only: export and count, delete nothing");
  run->add_option("--as-of", a->as_of,
                  "Eligibility as of this time, ms since the epoch (future: dry runs only)");
  run->add_flag("--no-wait", a->no_wait, "Print the started run and return");
  add_task(run);
  commands->push_back({run, [a] { return GcRun(*a); }});
  CLI::App* show = gc->add_subcommand("show", "A run's record");
  show->add_option("id", a->run_id, "Run id")->required();
  add_task(show);
  commands->push_back({show, [a] { return GcShow(*a); }});
  CLI::App* runs = gc->add_subcommand("runs", "The latest runs, newest first");
  runs->add_option("--limit", a->limit, "How many")->capture_default_str();
  add_task(runs);
  commands->push_back({runs, [a] { return GcRuns(*a); }});
  CLI::App* stats = gc->add_subcommand("stats", "Objects and bytes per day");
  stats->add_option("--days", a->days, "Days up to today")->capture_default_str();
  add_task(stats);
  commands->push_back({stats, [a] { return GcStats(*a); }});
  CLI::App* status = gc->add_subcommand("status", "Backlog, throttle rate, workers");
  add_task(status);
  commands->push_back({status, [a] { return GcStatus(*a); }});
}

void AddDemoCommands(CLI::App& app, DemoArgs* a, Commands* commands) {
  CLI::App* demo = app.add_subcommand("demo", "Demo data");
  demo->require_subcommand(1);
  CLI::App* load = demo->add_subcommand("load", "Post the small demo dataset");
  load->add_option("--members", a->members, "Members to create")->capture_default_str();
  AddServerOption(load, &a->server_url);
  commands->push_back({load, [a] { return DemoLoad(a->server_url, a->members); }});
}

void AddBenchCommands(CLI::App& app, BenchArgs* a, Commands* commands) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks against a running server");
  bench->require_subcommand(1);
  bench::ViewingBenchOptions& bo = a->viewing;
  CLI::App* bench_viewing = bench->add_subcommand("viewing", "Viewing-history load generator");
  bench_viewing->add_option("--server", bo.server, "Server URL")->capture_default_str();
  bench_viewing->add_option("--mode", bo.mode,
                            "ingest, mix, tiers, or compare (Strata vs PostgreSQL 15, both "
                            "started by the bench; bench/README.md)")
      ->check(CLI::IsMember({"ingest", "mix", "tiers", "compare"}))
      ->capture_default_str();
  bench_viewing->add_option("--members", bo.members, "Distinct members")->capture_default_str();
  bench_viewing->add_option("--zipf", bo.zipf_s, "Zipf exponent of member activity")
      ->capture_default_str();
  bench_viewing->add_option("--connections", bo.connections, "Concurrent connections")
      ->capture_default_str();
  bench_viewing->add_option("--duration", bo.duration_s, "Timed phase, seconds")
      ->capture_default_str();
  bench_viewing->add_option("--events-per-s", bo.target_events_per_s,
                            "Target write rate (0 = as fast as possible)")
      ->capture_default_str();
  bench_viewing->add_option("--reads-per-s", bo.target_reads_per_s, "Target read rate (mix)")
      ->capture_default_str();
  bench_viewing->add_option("--batch", bo.batch_size, "Events per POST")->capture_default_str();
  bench_viewing->add_option("--heavy-members", bo.preload_heavy_members,
                            "Members preloaded with 10k+ records")
      ->capture_default_str();
  bench_viewing->add_option("--seed", bo.seed, "Workload seed")->capture_default_str();
  bench_viewing->add_option("--history-members", bo.history_members,
                            "tiers mode: members given a long history, per load phase")
      ->capture_default_str();
  bench_viewing->add_option("--history-plays", bo.history_plays,
                            "tiers mode: plays per long history")
      ->capture_default_str();
  bench_viewing->add_option("--history-years", bo.history_years,
                            "tiers mode: years a long history spans")
      ->capture_default_str();
  bench_viewing->add_option("--rotation-members", bo.rotation_members,
                            "tiers mode: members whose plays just aged out of the recent tier")
      ->capture_default_str();
  bench_viewing->add_option("--rotation-plays", bo.rotation_plays,
                            "tiers mode: aged plays per such member")
      ->capture_default_str();
  bench_viewing->add_option("--warmup", bo.warmup_s,
                            "tiers mode: seconds of unmeasured mix before the baseline")
      ->capture_default_str();
  bench_viewing->add_option("--client-slice-us", bo.client_slice_us,
                            "Time slice (us) of the bench's connection threads, so waiting on "
                            "the server's threads does not count as latency (0 = kernel default)")
      ->capture_default_str();
  bench_viewing->add_option("--read-dispatch", bo.read_dispatch,
                            "Paced reads: \"pool\" (one arrival schedule, next free reader "
                            "connection) or \"connection\" (a schedule per connection)")
      ->capture_default_str();
  bench_viewing->add_option("--write-connections", bo.write_connections,
                            "Writer connections in mix mode (0 = 3/8 of --connections)")
      ->capture_default_str();
  bench_viewing->add_option("--pregenerate", bo.pregenerate_events,
                            "Build this many events' request bodies before the timed phase "
                            "(0 = build each batch just before sending it)")
      ->capture_default_str();
  bench_viewing->add_option("--miss-passes", bo.miss_passes,
                            "tiers mode: passes of cache-miss summary reads (caches dropped "
                            "between passes)")
      ->capture_default_str();
  bench_viewing->add_option("--after", bo.after_s,
                            "tiers mode: seconds of the mix after the rotation is done, the "
                            "control phase (0 = skip)")
      ->capture_default_str();
  bool& no_settle = a->no_settle;
  bench_viewing->add_flag("--no-settle", no_settle,
                          "Tiers mode: start the rotation phase right after loading its data, "
                          "without compacting first");
  bool& no_compact = a->no_compact;
  bench_viewing->add_flag("--no-compact", no_compact,
                          "Measure bytes per record without compacting first");
  // Compare mode: its own defaults (bench/compare_bench.h); the shared flags above override
  // them only when given.
  bench::CompareOptions& co = a->compare;
  bench_viewing->add_option("--peer", co.peer, "compare mode: postgres, or none (Strata only)")
      ->check(CLI::IsMember({"postgres", "none"}))
      ->capture_default_str();
  bench_viewing->add_option("--order", co.order, "compare mode: strata-first or postgres-first")
      ->check(CLI::IsMember({"strata-first", "postgres-first"}))
      ->capture_default_str();
  bench_viewing->add_option("--strata-arg", co.strata_args,
                            "compare mode: extra `serve` argument for Strata (repeatable, "
                            "e.g. --strata-arg=--sync=batch)");
  bench_viewing->add_option("--events", co.events, "compare mode: phase-1 events")
      ->capture_default_str();
  bench_viewing->add_option("--titles", co.titles, "compare mode: title catalogue size")
      ->capture_default_str();
  bench_viewing->add_option("--history-days", co.history_days,
                            "compare mode: days the phase-1 history spans (at most 725)")
      ->capture_default_str();
  bench_viewing->add_option("--read-connections", co.read_connections,
                            "compare mode: phase-2 read connections")
      ->capture_default_str();
  bench_viewing->add_option("--warmup-reads", co.warmup_reads,
                            "compare mode: untimed reads per read connection before phase 2")
      ->capture_default_str();
  bench_viewing->add_option("--oracle-members", co.oracle_members,
                            "compare mode: members whose newest plays are checked")
      ->capture_default_str();
  bench_viewing->add_option("--idle", co.idle_s,
                            "compare mode: idle seconds after phase 2 before disk is measured "
                            "again")
      ->capture_default_str();
  bench_viewing->add_option("--pg-bin", co.pg_bin_dir, "compare mode: PostgreSQL's bin directory")
      ->capture_default_str();
  bench_viewing->add_option("--pg-shared-buffers", co.pg_shared_buffers,
                            "compare mode: PostgreSQL shared_buffers")
      ->capture_default_str();
  bench_viewing->add_option("--work-dir", co.work_dir,
                            "compare mode: parent of the temporary data directory "
                            "(default $TMPDIR or /tmp)");
  bench_viewing->add_flag("--keep-dirs", co.keep_dirs,
                          "compare mode: keep the servers' data directory at the end");
  bench_viewing->add_option("--trace", co.trace_path,
                            "compare mode: write every phase-2 request (due, sent and answered "
                            "times) to this file");

  commands->push_back({bench_viewing, [a, bench_viewing] {
    if (a->viewing.mode == "compare") {
      auto given = [&](const char* flag) { return bench_viewing->count(flag) > 0; };
      bench::CompareOptions& co = a->compare;
      if (given("--members")) co.members = a->viewing.members;
      if (given("--zipf")) co.zipf_s = a->viewing.zipf_s;
      if (given("--seed")) co.seed = a->viewing.seed;
      if (given("--batch")) co.batch_size = a->viewing.batch_size;
      if (given("--duration")) co.phase2_s = a->viewing.duration_s;
      if (given("--events-per-s")) co.events_per_s = a->viewing.target_events_per_s;
      if (given("--reads-per-s")) co.reads_per_s = a->viewing.target_reads_per_s;
      if (given("--write-connections")) co.write_connections = a->viewing.write_connections;
      if (given("--client-slice-us")) co.client_slice_us = a->viewing.client_slice_us;
      return BenchCompare(co);
    }
    a->viewing.compact_before_sizes = !a->no_compact;
    a->viewing.settle_before_rotation = !a->no_settle;
    return BenchViewing(a->viewing);
  }});

  bench::ObjectBenchOptions& ob = a->objects;
  bench::GcBenchOptions& gb = a->gc;
  CLI::App* bench_gc = bench->add_subcommand(
      "gc", "Garbage collection: load N objects (40% expiring), time the sweep, online p99");
  bench_gc->add_option("--server", gb.server, "Server URL")->capture_default_str();
  bench_gc->add_option("--objects", gb.objects, "Objects to load")->capture_default_str();
  bench_gc->add_option("--eligible-fraction", gb.eligible_fraction,
                       "Share of the objects that expire at once")
      ->capture_default_str();
  bench_gc->add_option("--object-bytes", gb.object_bytes, "Size of an object")
      ->capture_default_str();
  bench_gc->add_option("--connections", gb.connections, "Connections of the load phase")
      ->capture_default_str();
  bench_gc->add_option("--online-rate", gb.online_rate,
                       "Online GET+PUT requests/s measured idle and during the sweep")
      ->capture_default_str();
  bench_gc->add_option("--idle-seconds", gb.idle_seconds, "Length of the idle measurement")
      ->capture_default_str();
  bench_gc->add_option("--after-seconds", gb.after_seconds,
                       "Length of the control measurement after the run (0 = none)")
      ->capture_default_str();
  CLI::App* bench_objects =
      bench->add_subcommand("objects", "Media objects: PUT/GET throughput, DELETE under load");
  bench_objects->add_option("--server", ob.server, "Server URL")->capture_default_str();
  bench_objects->add_option("--connections", ob.connections, "Concurrent connections")
      ->capture_default_str();
  bench_objects->add_option("--load-connections", ob.load_connections,
                            "Connections writing and reading during the delete phase")
      ->capture_default_str();
  bench_objects->add_option("--small-count", ob.small_count, "Small objects")
      ->capture_default_str();
  bench_objects->add_option("--small-bytes", ob.small_bytes, "Size of a small object")
      ->capture_default_str();
  bench_objects->add_option("--large-count", ob.large_count, "Large objects")
      ->capture_default_str();
  bench_objects->add_option("--large-bytes", ob.large_bytes, "Size of a large object")
      ->capture_default_str();

  bench::AssetBenchOptions& ab = a->assets;
  CLI::App* bench_assets = bench->add_subcommand(
      "assets",
      "Asset service vs PostgreSQL 15 (both started by the bench): create, search, paging");
  bench_assets->add_option("--peer", ab.peer, "postgres, or none (Strata only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"postgres", "none"}));
  bench_assets->add_option("--order", ab.order, "strata-first or postgres-first")
      ->capture_default_str()
      ->check(CLI::IsMember({"strata-first", "postgres-first"}));
  bench_assets->add_option("--assets", ab.assets, "Assets to create")->capture_default_str();
  bench_assets->add_option("--batch", ab.batch_size, "Assets per create request")
      ->capture_default_str();
  bench_assets->add_option("--payload-bytes", ab.payload_bytes, "Approximate payload size")
      ->capture_default_str();
  bench_assets->add_option("--assets-per-show", ab.assets_per_show,
                           "Assets per /show_id value (a search finds about this many)")
      ->capture_default_str();
  bench_assets->add_option("--distinct-batches", ab.distinct_batches,
                           "Distinct pre-built batches, cycled")
      ->capture_default_str();
  bench_assets->add_option("--seed", ab.seed, "Workload seed")->capture_default_str();
  bench_assets->add_option("--write-connections", ab.write_connections,
                           "Connections of the create phase")
      ->capture_default_str();
  bench_assets->add_option("--search-rate", ab.search_rate, "Searches per second (open loop)")
      ->capture_default_str();
  bench_assets->add_option("--search-seconds", ab.search_s, "Length of the search phase")
      ->capture_default_str();
  bench_assets->add_option("--search-connections", ab.search_connections,
                           "Connections of the search phase")
      ->capture_default_str();
  bench_assets->add_option("--warmup-searches", ab.warmup_searches,
                           "Untimed searches per connection before the search phase")
      ->capture_default_str();
  bench_assets->add_option("--search-limit", ab.search_limit, "Assets per search")
      ->capture_default_str();
  bench_assets->add_flag("--settle", ab.settle,
                         "After the load, untimed: compact Strata, VACUUM ANALYZE PostgreSQL");
  bench_assets->add_option("--page-limit", ab.page_limit, "Assets per page when paging")
      ->capture_default_str();
  bench_assets
      ->add_option("--page-fields", ab.page_fields,
                   "What paging reads: id (ids only: Strata fields=id, PostgreSQL SELECT id) "
                   "or all (whole assets)")
      ->check(CLI::IsMember({"id", "all"}))
      ->capture_default_str();
  bench_assets->add_option("--strata-arg", ab.strata_args,
                           "Extra `serve` argument for Strata (repeatable, --strata-arg=--x=y)");
  bench_assets->add_option("--pg-bin", ab.pg_bin_dir, "PostgreSQL's bin directory")
      ->capture_default_str();
  bench_assets->add_option("--pg-shared-buffers", ab.pg_shared_buffers,
                           "PostgreSQL shared_buffers")
      ->capture_default_str();
  bench_assets->add_option("--work-dir", ab.work_dir,
                           "Parent of the temporary data directory (default $TMPDIR or /tmp)");
  bench_assets->add_flag("--keep-dirs", ab.keep_dirs, "Keep the servers' data directory");
  bench_assets->add_option("--client-slice-us", ab.client_slice_us,
                           "Time slice of the bench's connection threads (0 = kernel default)")
      ->capture_default_str();

  bench::ConnectionsBenchOptions& cb = a->connections;
  CLI::App* bench_conn = bench->add_subcommand(
      "connections",
      "A normal client's p99 with and without idle and slow-drip connections "
      "(bench/connections_bench.h; starts its own server unless --server is given)");
  bench_conn->add_option("--server", cb.server, "A running server's URL (default: start one)");
  bench_conn->add_option("--idle", cb.idle_connections, "Idle connections of the loaded phase")
      ->capture_default_str();
  bench_conn->add_option("--slow", cb.slow_connections, "Slow-drip uploads of the loaded phase")
      ->capture_default_str();
  bench_conn->add_option("--slow-upload-bytes", cb.slow_upload_bytes,
                         "Content-Length each slow upload announces")
      ->capture_default_str();
  bench_conn->add_option("--drip-interval-ms", cb.drip_interval_ms,
                         "One byte per slow upload every this many ms")
      ->capture_default_str();
  bench_conn->add_option("--requests", cb.requests, "Normal client's GETs per phase")
      ->capture_default_str();
  bench_conn->add_option("--rate", cb.rate, "Normal client's GETs per second (open loop)")
      ->capture_default_str();
  bench_conn->add_option("--client-connections", cb.client_connections,
                         "Normal client's keep-alive connections")
      ->capture_default_str();
  bench_conn->add_option("--warmup-requests", cb.warmup_requests,
                         "Untimed GETs per client connection before each phase")
      ->capture_default_str();
  bench_conn->add_option("--object-bytes", cb.object_bytes, "Size of the object the client reads")
      ->capture_default_str();
  bench_conn->add_option("--runs", cb.runs, "Runs, each a quiet and a loaded phase")
      ->capture_default_str();
  bench_conn->add_option("--settle", cb.settle_s, "Seconds between opening the crowd and measuring")
      ->capture_default_str();
  bench_conn->add_option("--strata-arg", cb.strata_args,
                         "Extra argument of the started `strata serve` (repeatable)");
  bench_conn->add_option("--work-dir", cb.work_dir,
                         "Parent of the started server's data directory (default $TMPDIR or /tmp)");
  bench_conn->add_flag("--keep-dirs", cb.keep_dirs, "Keep the started server's data directory");
  bench_conn->add_option("--client-slice-us", cb.client_slice_us,
                         "Time slice of the client's threads (0 = kernel default)")
      ->capture_default_str();
  commands->push_back({bench_conn, [a] { return BenchConnections(a->connections); }});

  bench::ReprocessBenchOptions& rb = a->reprocess;
  CLI::App* bench_rp = bench->add_subcommand(
      "reprocess",
      "A `set` reprocessing job over every asset under an open-loop GET+PATCH load: assets/s, "
      "the load's p99 during the job vs idle, an oracle of lost updates and exactly-once "
      "effects; --kill-at kills the server mid-job (bench/reprocess_bench.h)");
  bench_rp->add_option("--assets", rb.assets, "Assets to create and reprocess")
      ->capture_default_str();
  bench_rp->add_option("--batch", rb.batch_size, "Assets per create request")
      ->capture_default_str();
  bench_rp->add_option("--payload-bytes", rb.payload_bytes, "Approximate payload size")
      ->capture_default_str();
  bench_rp->add_option("--create-connections", rb.create_connections,
                       "Connections of the create phase")
      ->capture_default_str();
  bench_rp->add_option("--reads-per-s", rb.reads_per_s, "Load: GETs per second (open loop)")
      ->capture_default_str();
  bench_rp->add_option("--writes-per-s", rb.writes_per_s, "Load: PATCHes per second (open loop)")
      ->capture_default_str();
  bench_rp->add_option("--load-connections", rb.load_connections,
                       "Load: connections taking the arrivals")
      ->capture_default_str();
  bench_rp->add_option("--settle-seconds", rb.settle_s,
                       "Wait at most this long for the creates' compaction debt to drain "
                       "before the warm-up (0 = do not wait)")
      ->capture_default_str();
  bench_rp->add_option("--warmup-seconds", rb.warmup_s, "Load before the idle measurement")
      ->capture_default_str();
  bench_rp->add_option("--idle-seconds", rb.idle_s, "Length of the idle measurement")
      ->capture_default_str();
  bench_rp->add_option("--job-concurrency", rb.job_concurrency, "The job's workers (1..64)")
      ->capture_default_str();
  bench_rp->add_option("--job-rate", rb.job_rate,
                       "The job's rate limit, assets/s (0 = none; a rate processes assets one "
                       "by one)")
      ->capture_default_str();
  bench_rp->add_option("--job-adaptive", rb.job_adaptive,
                       "The job's adaptive rate: true, or false (the API's default: as fast as "
                       "the workers go)")
      ->capture_default_str();
  bench_rp->add_option("--kill-at", rb.kill_at,
                       "kill -9 the server once the job processed this share (0 = never)")
      ->capture_default_str();
  bench_rp->add_option("--max-job-seconds", rb.max_job_s, "Give up waiting for the job after")
      ->capture_default_str();
  bench_rp->add_option("--seed", rb.seed, "Workload seed")->capture_default_str();
  bench_rp->add_option("--strata-arg", rb.strata_args,
                       "Extra `serve` argument (repeatable, --strata-arg=--x=y)");
  bench_rp->add_option("--work-dir", rb.work_dir,
                       "Parent of the temporary data directory (default $TMPDIR or /tmp)");
  bench_rp->add_flag("--keep-dirs", rb.keep_dirs, "Keep the server's data directory");
  bench_rp->add_option("--client-slice-us", rb.client_slice_us,
                       "Time slice of the bench's connection threads (0 = kernel default)")
      ->capture_default_str();
  commands->push_back({bench_rp, [a] { return BenchReprocess(a->reprocess); }});

  commands->push_back({bench_assets, [a] { return BenchAssets(a->assets); }});
  commands->push_back({bench_gc, [a] { return BenchGc(a->gc); }});
  commands->push_back({bench_objects, [a] { return BenchObjects(a->objects); }});
}

}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{"strata: storage for viewing history, media objects and asset metadata"};
  app.require_subcommand(1);
  app.config_formatter(std::make_shared<StrataConfigFormat>());
  app.set_config("--config", "",
                 "Read options from this TOML/INI file: a [serve] section whose keys are the "
                 "flag names (e.g. port = 8081), and [rows], [blobs], [queue], [cache] "
                 "sections (e.g. [cache] backend = \"memcached\"); also accepted after `serve`");
  app.allow_config_extras(false);  // a misspelt key is an error, not silently ignored

  // Each group's arguments, filled while parsing and read by the command that runs.
  server::ServerConfig serve;
  ViewingArgs viewing;
  MemberArgs member;
  ServerArgs admin;
  KeyArgs key;
  BucketArgs bucket;
  ObjectArgs object;
  AssetArgs asset;
  ReprocessArgs reprocess;
  GcArgs gc;
  DemoArgs demo;
  BenchArgs bench;
  Commands commands;
  AddServeCommand(app, &serve, &commands);
  AddViewingCommands(app, &viewing, &commands);
  AddMemberCommands(app, &member, &commands);
  AddAdminCommands(app, &admin, &commands);
  AddKeyCommands(app, &key, &commands);
  AddBucketCommands(app, &bucket, &commands);
  AddObjectCommands(app, &object, &commands);
  AddAssetCommands(app, &asset, &commands);
  AddReprocessCommands(app, &reprocess, &commands);
  AddGcCommands(app, &gc, &commands);
  AddDemoCommands(app, &demo, &commands);
  AddBenchCommands(app, &bench, &commands);

  std::vector<std::string> args = HoistConfigFlag(argc, argv);
  std::vector<char*> arg_ptrs;
  for (auto& a : args) arg_ptrs.push_back(a.data());
  CLI11_PARSE(app, static_cast<int>(arg_ptrs.size()), arg_ptrs.data());

  // require_subcommand(1) at every level: exactly one leaf command was parsed.
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  return 0;
}

}  // namespace strata::cli
