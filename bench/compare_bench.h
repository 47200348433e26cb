// `strata bench viewing --mode compare`: one realistic viewing-history workload run against
// Strata and against a PostgreSQL 15 that the bench starts itself, one after the other in the
// same invocation (never both at once), on the same data; one side-by-side table with ratios.
//
// The workload (bench/history_workload.h) is generated once, before anything is timed: the
// events of both phases, the read schedule's members, and the oracle's expectations. Then,
// for each system in turn (Strata first unless `order` says otherwise):
//   0. Its request payloads are built from those events (Strata: JSON bodies; PostgreSQL:
//      upsert parameters, duplicate keys of a batch merged) before its server starts, so
//      the generator never competes with a server for the cores.
//   1. Its server starts in a fresh directory under a temporary directory (deleted at the
//      end unless keep_dirs): Strata as `<strata_binary> serve --data-dir DIR --port P
//      <strata_args...>`; PostgreSQL with initdb and postgres from pg_bin_dir (as the
//      `postgres` user when the bench runs as root), listening on 127.0.0.1, shared_buffers
//      `pg_shared_buffers`, fsync on, other settings at their defaults.
//   2. Phase 1, closed loop: `events` events in batches of `batch_size` over
//      `write_connections` keep-alive connections, as fast as they are answered: events/s.
//   3. Phase 2, open loop, `phase2_s` seconds: `events_per_s` events in batches on the write
//      connections (each its own schedule) and `reads_per_s` reads of the newest
//      `read_limit` plays of Zipf-drawn members on `read_connections` other connections
//      (one arrival schedule, next free connection), after `warmup_reads` untimed reads
//      per read connection. Latency counts from each request's intended send time (no
//      coordinated omission); requests sent more than 1 ms late and those never sent are
//      counted. Batches not acknowledged in a phase (unsent, failed) are sent after it,
//      untimed, so every system ends with the same data.
//   4. Memory: the peak PSS of the server's process tree, sampled every `pss_interval_s`
//      through phases 1 and 2.
//   5. Disk, right after phase 2 and again after `idle_s` idle seconds, per record it holds:
//      Strata, every file of its data directory (WAL included; its share reported);
//      PostgreSQL, pg_total_relation_size of the table after VACUUM and CHECKPOINT (its WAL
//      not counted).
//   6. The oracle check (the newest plays of `oracle_members` members, field by field)
//      after phase 2, after the idle wait, and after a kill -9 of the server and a restart
//      on the same directory.
//   7. The server stops: SIGTERM, then SIGKILL of its process group after 60 s.
//
// Thread safety: RunCompareBench starts servers from the calling thread, which must outlive
// them (see child_process.h); call it from the main thread.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/kernel_bursts.h"
#include "bench/load_driver.h"

namespace strata::bench {

struct CompareOptions {
  // The system Strata is compared with: "postgres", or "none" for Strata alone (fast
  // iteration). Default "postgres".
  std::string peer = "postgres";
  // "strata-first" or "postgres-first". Default "strata-first".
  std::string order = "strata-first";

  // Workload (bench/history_workload.h). Defaults: 20,000 members, Zipf s = 1.0, 50,000
  // titles, seed 1, phase-1 events spread over the 700 days before the run (inside Strata's
  // default 730-day boundary past which plays are kept only as per-title summaries, so both
  // systems hold every play in detail).
  uint64_t members = 20'000;
  double zipf_s = 1.0;
  uint64_t titles = 50'000;
  uint64_t seed = 1;
  double history_days = 700;

  // Phase 1: events, and events per request. Defaults 2,000,000 and 500.
  uint64_t events = 2'000'000;
  int batch_size = 500;
  // Connections that write (both phases) and that read (phase 2). Defaults 4 and 4.
  int write_connections = 4;
  int read_connections = 4;
  // Phase 2: length in seconds, target events/s and reads/s, untimed warm-up reads per read
  // connection, plays per read. Defaults 20 s, 18,000, 2,000, 200, 50.
  double phase2_s = 20;
  uint64_t events_per_s = 18'000;
  uint64_t reads_per_s = 2'000;
  int warmup_reads = 200;
  int read_limit = 50;
  // Members whose newest plays the oracle checks (a tenth the busiest, most Zipf-drawn, the
  // rest from the less active half). Default 200.
  int oracle_members = 200;
  // Seconds to wait idle after phase 2 before measuring disk again. Default 60.
  double idle_s = 60;
  // Seconds between samples of the servers' memory (PSS). Default 0.2.
  double pss_interval_s = 0.2;

  // Servers. strata_binary: the Strata executable ("/proc/self/exe" = this one). strata_args:
  // extra `serve` arguments (not --data-dir or --port, which the bench sets).
  std::string strata_binary = "/proc/self/exe";
  std::vector<std::string> strata_args;
  // PostgreSQL: where initdb and postgres are, the OS user they run as when the bench runs
  // as root (postgres refuses root), and shared_buffers. Defaults: Debian's PostgreSQL 15,
  // "postgres", "1GB".
  std::string pg_bin_dir = "/usr/lib/postgresql/15/bin";
  std::string pg_user = "postgres";
  std::string pg_shared_buffers = "1GB";
  // Parent of the temporary directory holding both servers' data ("" = $TMPDIR or /tmp),
  // and whether to keep that directory at the end. Defaults "", false.
  std::string work_dir;
  bool keep_dirs = false;
  // When not empty, every phase-2 request of every system is written to this file, one line
  // each: system, "read" or "write", connection, then microseconds from the phase's start at
  // which it was due, sent and answered, and its status (tab-separated, a header first; a
  // "# <system> phase 2 started at unix time <us>, CLOCK_MONOTONIC <us>" line before each
  // system's, to line it up with logs and `perf record -k CLOCK_MONOTONIC` traces). For
  // finding where a tail is spent: waiting to be sent (no free connection, the client not
  // scheduled) or in flight, and whether slow requests come together. Default "".
  std::string trace_path;

  // Time slice the bench's connection threads ask for, microseconds (0 = the kernel's
  // default; see ViewingBenchOptions::client_slice_us). Default 100.
  int client_slice_us = 100;
  // Client timeout per request, milliseconds. Default 30000.
  int timeout_ms = 30'000;
};

// One oracle check: members read, records compared, and the mismatches (the first few
// described).
struct OracleCheck {
  bool ran = false;
  uint64_t members = 0;
  uint64_t records = 0;
  uint64_t mismatches = 0;  // members whose answer differs (or failed)
  std::vector<std::string> examples;
  bool passed() const { return ran && mismatches == 0; }
};

// What one system did. Sizes in bytes, times in seconds, latencies in the OpReports (ms).
struct SystemRun {
  std::string name;
  bool completed = false;             // every step ran
  std::string error;                  // why not, if not
  std::string first_error;            // the first failed request's answer, if any
  std::vector<std::string> settings;  // lines describing its configuration

  uint64_t phase1_events = 0;
  double phase1_s = 0;
  double phase1_events_per_s = 0;
  double phase1_cpu_s = -1;         // server CPU during the phase (-1 = unknown)
  double phase1_bench_cpu_s = 0;    // the bench's own CPU during the phase
  double phase1_kernel_cpu_s = 0;   // kernel threads and interrupts (I/O the servers cause)
  double phase1_others_cpu_s = -1;  // every other process's on the machine (-1 = unknown)
  OpReport phase1_batch;

  double phase2_s = 0;
  uint64_t phase2_events = 0;
  double phase2_cpu_s = -1;
  double phase2_bench_cpu_s = 0;
  double phase2_kernel_cpu_s = 0;
  double phase2_others_cpu_s = -1;
  // The server's phase-2 CPU seconds by thread role (ThreadCpuSecondsByRole), largest first.
  std::vector<std::pair<std::string, double>> phase2_cpu_by_role;
  OpReport write_batch;
  OpReport read;
  double rows_per_read = 0;
  uint64_t late_reads = 0, unsent_reads = 0;
  uint64_t late_batches = 0, unsent_batches = 0;
  // The machine's kdamond threads during phase 2 and the reads that met their bursts
  // (bench/kernel_bursts.h; a diagnostic: the read percentiles above count every read).
  BurstShare read_bursts;
  uint64_t caught_up_batches = 0;  // sent after a phase (unsent or failed in it)
  uint64_t failed_batches = 0;     // never acknowledged, even after the catch-up
  uint64_t rejected_events = 0;    // events a server refused as invalid (a bench bug)
  uint64_t accepted_events = 0, dropped_events = 0;  // Strata's answers

  uint64_t records = 0;          // distinct records the system holds
  uint64_t counted_records = 0;  // the same, counted by the system itself (0 = not asked)
  uint64_t bytes_after_run = 0, wal_after_run = 0;
  uint64_t bytes_after_idle = 0, wal_after_idle = 0;
  uint64_t peak_pss = 0;
  double restart_s = 0;  // from the restart after kill -9 to the first answer
  OracleCheck after_run, after_idle, after_restart;
  bool oracle_passed() const {
    return after_run.passed() && after_idle.passed() && after_restart.passed();
  }
};

struct CompareReport {
  std::vector<SystemRun> systems;  // in the order they ran
  bool passed = false;             // every system completed and passed every oracle check
};

// Runs the comparison, printing progress and the final table to `out`. InvalidArgument for
// bad options (the message names the option); other errors (a server that cannot start)
// end that system's run and are reported in it, with `passed` false.
absl::StatusOr<CompareReport> RunCompareBench(const CompareOptions& options, std::ostream& out);

// Prints the side-by-side table of a finished comparison.
void PrintCompareTable(const CompareOptions& options, const CompareReport& report,
                       std::ostream& out);

}  // namespace strata::bench
