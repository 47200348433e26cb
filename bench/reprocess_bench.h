// `strata bench reprocess`: issue 15's reprocessing goals as a measurement, against a Strata
// server the bench starts itself (docs/benchmarks.md, bench/README.md).
//
// Phases:
//   1. Create `assets` assets of ~`payload_bytes` (type "bench": /show_id, /format,
//      /duration_s indexed) through `POST /v1/assets/bench:batch` on `create_connections`
//      connections; the ids are kept.
//   2. Settle (up to `settle_s`: the creates' compaction debt drained), warm-up (`warmup_s`,
//      not measured), then idle (`idle_s`): an open-loop load of
//      `reads_per_s` GETs and `writes_per_s` PATCHes of uniformly drawn existing assets, on
//      one arrival schedule taken by the next free of `load_connections` connections;
//      latency counts from each request's intended send time (load_driver.h).
//   3. Job: the same load goes on while `POST /v1/reprocess/jobs` runs a `set` of
//      /reprocessed over every asset (`job_concurrency` workers); the job is polled every
//      100 ms until it is final. Assets/s = selected / (POST -> final state seen). With
//      `kill_at` > 0 the server is killed with SIGKILL once the job has processed that share
//      of its selection, and restarted on the same directory and port; the job resumes.
//   4. Oracle: every asset is read back (pages of whole assets). A PATCH writes /bench_n =
//      the asset's write number (1, 2, ...; one write of an asset in flight at a time), so a
//      write that was acknowledged must be there (bench_n >= the last acknowledged number:
//      no lost update), the job's /reprocessed must be set on every asset, and the version
//      must be 1 (create) + 1 (the job, exactly once in effect) + the writes that took
//      effect (between those acknowledged and those sent).
//
// Thread safety: RunReprocessBench starts the server from the calling thread, which must
// outlive it (child_process.h); call it from the main thread.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load_driver.h"

namespace strata::bench {

struct ReprocessBenchOptions {
  // Assets created and reprocessed. Default 1,000,000.
  uint64_t assets = 1'000'000;
  // Assets per create request (1..10000). Default 1000.
  int batch_size = 1000;
  // Approximate payload size, bytes (>= 200). Default 1024.
  int payload_bytes = 1024;
  // Connections of the create phase. Default 4.
  int create_connections = 4;
  // The open-loop load: GETs and PATCHes per second, and the connections that serve it.
  // Defaults 2000, 500, 8.
  double reads_per_s = 2000;
  double writes_per_s = 500;
  int load_connections = 8;
  // Before the warm-up, wait (at most this many seconds) until the server's row store has no
  // compaction debt left from the creates and no flush or compaction running
  // (`strata_rocksdb_pending_compaction_bytes`, `_running_compactions`, `_running_flushes`
  // all 0), so "idle" is a settled store's, not one still compacting. 0 = do not wait.
  // Default 300.
  double settle_s = 300;
  // Seconds of unmeasured load, then of the idle measurement. Defaults 5, 20.
  double warmup_s = 5;
  double idle_s = 20;
  // The job's workers (its `concurrency`, 1..64). Default 2 (the API's default).
  int job_concurrency = 2;
  // The job's `rate` (assets/s; 0 = unlimited). A rate also makes the workers take each
  // asset on its own (ProcessOnce), not a polled batch at once (docs/assets.md). Default 0.
  double job_rate = 0;
  // The job's `adaptive` (slow down while the online asset requests slow down or the store
  // falls behind; docs/assets.md, "Adaptive rate"). Default false (the API's default).
  bool job_adaptive = false;
  // Kill -9 the server once the job has processed this share of its selection (0 = never;
  // 0 < kill_at < 1), then restart it. Default 0.
  double kill_at = 0;
  // Give up waiting for the job after this many seconds. Default 1800.
  double max_job_s = 1800;
  uint64_t seed = 1;

  // The server: executable ("/proc/self/exe" = this one), extra `serve` arguments, parent of
  // the temporary data directory ("" = $TMPDIR or /tmp), and whether to keep it.
  std::string strata_binary = "/proc/self/exe";
  std::vector<std::string> strata_args;
  std::string work_dir;
  bool keep_dirs = false;
  // Time slice of the bench's connection threads, us (0 = the kernel's default). Default 100.
  int client_slice_us = 100;
  // Client timeout per request, ms. Default 30000.
  int timeout_ms = 30'000;
};

struct ReprocessBenchReport {
  uint64_t created = 0;
  double create_s = 0;
  // The load: idle, and while the job ran (GET, PATCH, and both together).
  OpReport idle_get, idle_patch, idle_all;
  OpReport job_get, job_patch, job_all;
  uint64_t idle_late = 0, job_late = 0;
  // The job, as its final record says.
  std::string job_state;
  uint64_t selected = 0, processed = 0, changed = 0, unchanged = 0, conflicts_retried = 0,
           failed = 0, dead_lettered = 0;
  double job_s = 0;  // POST -> final state seen
  double job_per_s = 0;
  int kills = 0;
  double restart_s = 0;  // kill -> the restarted server answered
  // The oracle.
  uint64_t read_back = 0, missing = 0, duplicates = 0, unknown = 0;
  uint64_t not_processed = 0;   // /reprocessed absent or wrong
  uint64_t lost_updates = 0;    // bench_n below the last acknowledged write
  uint64_t bad_versions = 0;    // version outside [2 + acked writes, 2 + sent writes]
  uint64_t written_assets = 0;  // assets the load wrote at least once
  uint64_t writes_acked = 0, writes_unacked = 0;
  bool oracle_passed = false;
  bool passed = false;  // job succeeded, oracle passed, no load errors outside a restart
};

// InvalidArgument for bad options (naming the flag); Unavailable/Internal when the server
// cannot be started or the job not submitted. Failures of the job or the oracle are in the
// report (passed false).
absl::StatusOr<ReprocessBenchReport> RunReprocessBench(const ReprocessBenchOptions& options,
                                                       std::ostream& out);

// Checks the options; InvalidArgument naming the flag (`--reads-per-s: ...`).
absl::Status ValidateReprocessOptions(const ReprocessBenchOptions& options);

}  // namespace strata::bench
