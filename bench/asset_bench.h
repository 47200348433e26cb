// `strata bench assets`: the asset metadata service (docs/assets.md) against a PostgreSQL 15
// that the bench starts itself, one after the other in the same invocation, on the same
// workload; one side-by-side table with ratios and the goals of issue 15.
//
// The workload is generated before any server starts: `distinct_batches` batches of
// `batch_size` JSON payloads of ~`payload_bytes` each, with three indexed fields (/show_id:
// integer, `assets_per_show` assets per show on average; /format: one of four strings;
// /duration_s: integer) and filler text; the run's batch b is distinct batch b % that many
// (so 10M assets do not need 10 GiB of pre-built requests). For each system in turn:
//   1. Its server starts in a fresh directory under a temporary directory (deleted at the
//      end unless keep_dirs). Strata: `<strata_binary> serve --data-dir DIR --port P
//      --log-level warn <strata_args...>`, then `PUT /v1/asset-types/bench` with the schema
//      and the three indexed pointers. PostgreSQL: initdb and postgres from pg_bin_dir (as
//      pg_user when the bench runs as root), shared_buffers pg_shared_buffers, fsync on;
//      table assets(id uuid primary key, version, created_at, updated_at, payload jsonb)
//      with one expression index per indexed field, each (field, id) as Strata's index
//      entries are (value, id).
//   2. Create, closed loop: `assets` assets in batches over `write_connections` keep-alive
//      connections (Strata `POST /v1/assets/bench:batch`; PostgreSQL one multi-row INSERT
//      per batch, autocommit, UUIDv7 ids made by the bench), as fast as they are answered.
//   3. (Untimed: PostgreSQL ANALYZE; with `settle`, Strata compacts and PostgreSQL VACUUM
//      ANALYZEs.) Search, open loop: `search_rate` searches/s for
//      `search_s` seconds of the newest `search_limit` assets of a uniformly drawn show
//      (Strata `GET /v1/assets/bench?where=/show_id=N&limit=100`; PostgreSQL `WHERE
//      (payload->>'show_id')::bigint = $1 ORDER BY id DESC LIMIT 100`), one arrival schedule
//      taken by the next free of `search_connections` connections, after `warmup_searches`
//      untimed searches per connection. Latency counts from the intended send time.
//   4. Paging, one connection: every asset, newest first, `page_limit` per page with the
//      cursor (PostgreSQL: `WHERE id < $last ORDER BY id DESC LIMIT 1000`), ids only or whole
//      assets (`page_fields`): ids/s, and the count must equal the assets created.
//   5. Peak PSS of the server's process tree through phases 2-4; disk: Strata's whole data
//      directory, PostgreSQL's pg_total_relation_size (table, TOAST, indexes) after VACUUM
//      and CHECKPOINT (pg_wal reported, not counted). Then SIGTERM (SIGKILL after 60 s).
//
// Thread safety: RunAssetBench starts servers from the calling thread, which must outlive
// them (child_process.h); call it from the main thread.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/kernel_bursts.h"
#include "bench/load_driver.h"

namespace strata::bench {

struct AssetBenchOptions {
  // "postgres", or "none" for Strata alone. Default "postgres".
  std::string peer = "postgres";
  // "strata-first" or "postgres-first". Default "strata-first".
  std::string order = "strata-first";

  // Workload. Defaults: 1,000,000 assets, 1000 per batch, ~1024-byte payloads, 200 assets
  // per show (so a search by show finds ~200 and returns 100), 256 distinct batches, seed 1.
  uint64_t assets = 1'000'000;
  int batch_size = 1000;
  int payload_bytes = 1024;
  uint64_t assets_per_show = 200;
  int distinct_batches = 256;
  uint64_t seed = 1;

  // Create: connections. Default 4.
  int write_connections = 4;
  // Search: rate (per second), length (seconds), connections, untimed warm-up searches per
  // connection, assets per search. Defaults 500, 20, 4, 200, 100.
  double search_rate = 500;
  double search_s = 20;
  int search_connections = 4;
  int warmup_searches = 200;
  int search_limit = 100;
  // After the create phase, untimed: compact Strata's tables (`POST /v1/admin/compact`, the
  // time printed) and VACUUM ANALYZE PostgreSQL's table, so search and paging measure the
  // settled stores rather than the compaction debt of the load. Default false: both right
  // after the load (PostgreSQL gets ANALYZE only; its planner needs statistics).
  bool settle = false;
  // Paging: assets per page (1..1000). Default 1000.
  int page_limit = 1000;
  // Paging reads "id" (ids only: Strata `fields=id`, PostgreSQL `SELECT id`) or "all"
  // (whole assets, as before 2026-12-06). Default "id": the goal is ids per second.
  std::string page_fields = "id";
  // Seconds between samples of the servers' memory (PSS). Default 0.2.
  double pss_interval_s = 0.2;

  // Servers (as CompareOptions): the Strata executable ("/proc/self/exe" = this one) and
  // extra `serve` arguments; PostgreSQL's binaries, OS user (when the bench runs as root)
  // and shared_buffers. Defaults "/proc/self/exe", none, Debian's PostgreSQL 15,
  // "postgres", "1GB".
  std::string strata_binary = "/proc/self/exe";
  std::vector<std::string> strata_args;
  std::string pg_bin_dir = "/usr/lib/postgresql/15/bin";
  std::string pg_user = "postgres";
  std::string pg_shared_buffers = "1GB";
  // Parent of the temporary directory ("" = $TMPDIR or /tmp), and whether to keep it.
  std::string work_dir;
  bool keep_dirs = false;

  // Time slice of the bench's connection threads, microseconds (0 = the kernel's default).
  // Default 100.
  int client_slice_us = 100;
  // Client timeout per request, milliseconds. Default 30000.
  int timeout_ms = 30'000;
};

// What one system did. Times in seconds, latencies in the OpReports (ms), sizes in bytes.
struct AssetSystemRun {
  std::string name;
  bool completed = false;
  std::string error;
  std::string first_error;
  std::vector<std::string> settings;

  uint64_t created = 0;
  uint64_t rejected = 0;
  double create_s = 0;
  double create_per_s = 0;
  double create_cpu_s = -1;  // server CPU over the phase (-1 = unknown)
  double create_bench_cpu_s = 0;
  double create_others_cpu_s = -1;
  OpReport create_batch;

  double search_s = 0;
  OpReport search;
  double rows_per_search = 0;
  uint64_t short_searches = 0;  // answered fewer than search_limit assets
  uint64_t late_searches = 0, unsent_searches = 0;
  double search_cpu_s = -1;
  double search_others_cpu_s = -1;
  // The machine's kdamond threads during the search phase and the searches that met their
  // bursts (bench/kernel_bursts.h; the search percentiles count every search).
  BurstShare search_bursts;

  uint64_t paged_ids = 0;
  uint64_t pages = 0;
  double page_s = 0;
  double page_ids_per_s = 0;
  uint64_t page_errors = 0;
  double page_cpu_s = -1;  // server CPU over the phase (-1 = unknown)
  double page_others_cpu_s = -1;
  OpReport page;

  uint64_t bytes = 0;      // on disk, per the comparison's rules
  uint64_t wal_bytes = 0;  // Strata: its share of `bytes`; PostgreSQL: pg_wal, not counted
  uint64_t peak_pss = 0;
};

struct AssetBenchReport {
  std::vector<AssetSystemRun> systems;
  bool passed = false;  // every system completed with no errors and paged every asset
};

// Runs the benchmark, printing progress and the table to `out`. InvalidArgument for bad
// options (naming the option); a system that fails is reported in its run, passed false.
absl::StatusOr<AssetBenchReport> RunAssetBench(const AssetBenchOptions& options, std::ostream& out);

void PrintAssetTable(const AssetBenchOptions& options, const AssetBenchReport& report,
                     std::ostream& out);

}  // namespace strata::bench
