// `strata bench viewing`: drives a running Strata server with a realistic viewing-history
// workload over HTTP and reports throughput, latency percentiles, errors, and the
// server's own size and memory metrics.
//
// Phases:
//   1. Probe GET /healthz (fails fast with Unavailable if the server cannot be reached).
//   2. Preload (untimed): the `preload_heavy_members` hottest members get 10k-12k plays
//      each, spread over years, in batches, so long-tailed histories exist.
//   3. Timed phase for `duration_s`: mode "ingest" = POST batches only; mode "mix" =
//      batches and reads in the ratio write_fraction : (1 - write_fraction), counted in
//      events vs reads (0.9 = 9 events written per read). Reads are ~90% "recent"
//      (GET /v1/members/{m}/viewing?kind=play&limit=50) and ~10% "full history"
//      (limit=1000, following next_cursor for up to 3 pages).
//   4. GET /metrics and print the server's strata_table_* / strata_process_* lines and
//      bytes per record.
//
// Pacing: with a target rate, requests arrive open-loop: request i is due at
// start + i / rate, and its latency is measured from that due time, not from when it was
// actually sent, so a server stall counts against every request queued behind it (no
// coordinated omission). Writers each keep their own schedule (wrk2 style). Reads arrive
// on one schedule shared by the reader connections, like independent users served by a
// connection pool: a due read takes the next free connection, so it waits only when every
// reader connection is busy (read_dispatch "pool"); with "connection" each reader keeps its
// own schedule, and a read waits behind a slow read of the same connection even while
// others are idle. With no target (0), connections run closed-loop, as fast as the server
// answers, and latency is measured from the actual send.
//
// One thread and one keep-alive connection per connection; request bodies are generated
// ahead of their due time with a hand-written JSON writer. The generator is shared
// (under a mutex) so per-member state (sessions, times) stays consistent.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load_driver.h"

namespace strata::bench {

struct ViewingBenchOptions {
  // Base URL of the server. Default "http://127.0.0.1:8080".
  std::string server = "http://127.0.0.1:8080";
  // Member ids are drawn from [1, members]. Default 50000.
  uint64_t members = 50000;
  // Zipf exponent of member activity, for writes and reads. Default 1.1.
  double zipf_s = 1.1;
  // Concurrent connections (one thread each). In "mix" mode they are split between
  // writers and readers (see write_connections). Default 8.
  int connections = 8;
  // Length of the timed phase, in seconds. Default 30.
  double duration_s = 30;
  // Events written per second across all writers; 0 = as fast as possible. Default 0.
  uint64_t target_events_per_s = 0;
  // Read operations per second across all readers (a full-history read of several pages
  // counts once); 0 = derived from target_events_per_s and write_fraction, or as fast as
  // the ratio allows when both are 0. Default 0. Ignored in "ingest" mode.
  uint64_t target_reads_per_s = 0;
  // Events per POST /v1/viewing/events request. Default 500.
  int batch_size = 500;
  // In "mix" mode, the share of events among (events + reads): 0.9 = 9 events per read.
  // Used to derive a missing target rate, and to hold the ratio in closed-loop runs.
  double write_fraction = 0.9;
  // "ingest" = only POST batches; "mix" = batches and reads; "tiers" = the time-compressed
  // age-tier run (see RunViewingBench). Default "mix".
  std::string mode = "mix";
  // "tiers" mode: members given a long history per load phase (two phases), plays each,
  // and the years the history spans (event times spread over them). Defaults: 50 members,
  // 20000 plays, 3 years -- 1M plays per phase.
  int history_members = 50;
  uint64_t history_plays = 20'000;
  double history_years = 3;
  // "tiers" mode, second load: `rotation_members` more members (the ranks after the long
  // histories) with `rotation_plays` plays each from the 30 days before the recent tier's
  // boundary (7 days, the server's default), i.e. plays that have just aged out of the
  // recent tier -- what a daily rotation moves. Defaults: 20000 x 50 = 1M plays.
  int rotation_members = 20'000;
  uint64_t rotation_plays = 50;
  // "tiers" mode: warm-up before the baseline, unmeasured, so caches hold the steady state
  // rather than a cold start: this many seconds of Zipf-drawn summary and 90-day reads as
  // fast as the server answers, then as many seconds of the mix. Default 30.
  double warmup_s = 30;
  // Seed of the workload generator. Default 1.
  uint64_t seed = 1;
  // Members given 10k-12k records before the timed phase. Default 20.
  int preload_heavy_members = 20;
  // In "mix" mode, connections that write; 0 = about 3/8 of `connections` (at least 1,
  // leaving at least 1 reader). Default 0.
  int write_connections = 0;
  // How paced reads are spread over the reader connections: "pool" (one arrival schedule,
  // each read on the next free connection) or "connection" (a schedule per connection; the
  // bench's behaviour before 2026-11-26). Default "pool".
  std::string read_dispatch = "pool";
  // Time slice the bench's connection threads ask the kernel for, microseconds (Linux
  // 6.12+; 0 = the kernel's default). The bench shares the machine's cores with the server
  // under test; with the default slice (~1.4 ms on 2 cores) a bench thread due to send, or
  // woken by its answer, waited behind a running server thread, and that wait counted as
  // server latency. Default 100 (the kernel's minimum).
  int client_slice_us = 100;
  // Client timeout per wait, in milliseconds. Default 30000.
  int timeout_ms = 30000;
  // Before measuring bytes per record, ask the server to compact its tables
  // (POST /v1/admin/compact), so the figures are steady-state sizes rather than memtables
  // and not-yet-compacted garbage. Default true.
  bool compact_before_sizes = true;
  // Build the timed phase's request bodies before it starts (this many events; 0 = build
  // each batch just before sending it, the default). Takes the generator's event synthesis
  // and JSON encoding off the 2 cores the server shares during the measurement, which is
  // what an ingest ceiling should measure; the events are the same workload either way. If
  // the run needs more, the rest is built on line (reported).
  uint64_t pregenerate_events = 0;
  // Tiers mode: after loading the histories that the second phase rotates, compact the
  // server's tables (POST /v1/admin/compact) before the phase starts, so the phase measures
  // the rotation and not the flushes and compactions of a million rows written a second
  // earlier (plays that aged out were written days before in a real deployment, like the
  // baseline's). Default true.
  bool settle_before_rotation = true;
  // Tiers mode: seconds of the same mix after the rotation phase, once the rotation is done:
  // the control for what the rotated data costs the reads, as opposed to the rotation's own
  // work (0 = skip). Default 60.
  double after_s = 60;
  // Tiers mode: passes of summary reads on cache miss over the long-history members: the
  // first reads, then, per further pass, the same reads after
  // POST /v1/admin/viewing/caches:drop. Default 3 (150 reads with 50 members).
  int miss_passes = 3;
};

struct BenchReport {
  std::string mode;
  bool open_loop = false;
  double target_events_per_s = 0;  // effective targets (0 = unpaced)
  double target_reads_per_s = 0;
  int write_connections = 0;
  int read_connections = 0;
  bool pooled_reads = true;  // read_dispatch "pool"

  // Preload phase.
  OpReport preload_batch;
  uint64_t preload_events = 0;
  double preload_s = 0;

  // Timed phase.
  double elapsed_s = 0;
  OpReport ingest_batch;  // one POST of `batch_size` events
  OpReport recent_read;   // limit=50
  OpReport history_page;  // each page of a full-history read (limit=1000)
  OpReport months_read;   // "tiers" mode: the last 90 days, limit=100 (recent + past tiers)
  OpReport summary_read;  // "tiers" mode: GET /v1/members/{m}/summary
  uint64_t history_reads = 0;
  uint64_t reads = 0;  // recent reads + full-history reads
  // Open-loop only: requests due before the end of the timed phase that were never sent
  // because the connection was still behind schedule (the server did not keep up).
  uint64_t unsent_batches = 0;
  uint64_t pregenerated_batches = 0;  // bodies built before the timed phase
  uint64_t pregenerated_used = 0;     // of which sent
  uint64_t unsent_reads = 0;
  // Open-loop only: reads sent more than 1 ms after their due time, because no reader
  // connection was free (or the client itself was descheduled). Their wait is part of
  // their latency.
  uint64_t late_reads = 0;
  double reads_per_s = 0;
  uint64_t events_sent = 0;      // in batches that got a 2xx
  uint64_t events_accepted = 0;  // as the server answered
  uint64_t events_dropped = 0;
  uint64_t events_rejected = 0;
  double events_per_s = 0;  // events_sent / elapsed_s
  // CPU seconds the server used during the timed phase (from its
  // strata_process_cpu_seconds_total metric; negative when unavailable).
  double server_cpu_s = -1;
  double records_per_recent_read = 0;
  double records_per_history_page = 0;

  // From GET /metrics after the run: the strata_table_*, strata_process_*,
  // strata_store_bytes_per_record and process_* sample lines, as served.
  bool server_stats_collected = false;  // the fields below were read from the server
  std::vector<std::string> server_metrics;
  // strata_table_disk_bytes / strata_table_records per table label, when both exist.
  std::map<std::string, double> bytes_per_record;
  // Per table and row kind (GET /v1/admin/viewing/tables): the rows' key + value bytes per
  // record, before the row store's own compression.
  std::map<std::string, std::map<std::string, double>> row_bytes_per_record;
  // The whole data directory over every record stored, as the server's table report gives
  // it: the figure a user's `du` would give, which the per-table ones above leave the WAL
  // and queue out of. Negative when the server did not report it.
  double data_dir_bytes_per_record = -1;
};

// "tiers" mode (time-compressed history, exercising rotation and summaries):
//   1. Load `history_members` hot members (ranks 1..N) with `history_plays` plays each,
//      spread over `history_years` years; wait for roll-ups.
//   2. Rotation alone: start a rotation sweep and time it until the backlog drains.
//   3. Summary reads on cache miss: one GET .../summary per loaded member (never read yet).
//   4. Warm-up (see warmup_s), unmeasured, so caches reach their steady state.
//      Baseline: the 9:1 mix for `duration_s`, reads 80% recent (limit 50), 10% months
//      (last 90 days: recent + past tiers), 10% summaries; summary cache hit rate.
//   5. Load another N members (ranks N+1..2N) the same way, then run the same mix while a
//      sweep rotates them; report the rotation's duration and the read p99 against step 4.
//   6. Bytes per record per table and tier (after compaction).
// Runs the benchmark, printing progress and the final report to `out`. Errors:
// InvalidArgument for bad options (the message names the option), Unavailable when the
// server cannot be reached at the start. Request failures during the run are counted in
// the report, not returned.
absl::StatusOr<BenchReport> RunViewingBench(const ViewingBenchOptions& options, std::ostream& out);

// Prints `report` in the human-readable form RunViewingBench uses.
void PrintBenchReport(const BenchReport& report, std::ostream& out);

}  // namespace strata::bench
