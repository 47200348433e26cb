// `strata bench gc`: the garbage collector against a running Strata server, over HTTP.
//
// Phases:
//   1. load: a fresh bucket; `objects` small objects of `object_bytes` over `connections`
//      connections, `eligible_fraction` of them with a 1 s TTL (they expire at once).
//   2. idle: `online_rate` requests/s (half GET of live objects, half PUT of new keys in a
//      second bucket), paced (open loop), for `idle_seconds`: p99 without a sweep.
//   3. sweep: POST /v1/gc/runs, the same online load until the run is done: p99 with the
//      sweep running, the time to collect everything (start -> done, and the sweep alone:
//      marked_at -> finished_at from the run record), and items/s.
//   4. after: the same online load for `after_seconds` once the run is done — the control: p99
//      of the store in its post-load, post-sweep state with no sweep running.
// The figures of interest: sweep seconds for 400k eligible objects (goal < 120 s on 2 cores)
// and p99 during the sweep / p99 idle (goal <= 1.5).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"

namespace strata::bench {

struct GcBenchOptions {
  std::string server = "http://127.0.0.1:8080";
  uint64_t objects = 1'000'000;    // default 1M
  double eligible_fraction = 0.4;  // expire at once
  uint64_t object_bytes = 1024;    // small objects
  int connections = 4;             // load phase
  double online_rate = 400;        // online requests/s during idle and sweep
  double idle_seconds = 10;
  double after_seconds = 10;  // 0 = skip the after phase
  int timeout_ms = 60'000;
  double max_sweep_seconds = 1800;  // give up waiting after this
};

struct GcBenchReport {
  uint64_t objects = 0;
  uint64_t eligible = 0;
  uint64_t deleted = 0;
  uint64_t errors = 0;
  double load_seconds = 0;
  double run_seconds = 0;    // POST -> done (mark + publish + sweep)
  double mark_seconds = 0;   // started_at -> marked_at
  double sweep_seconds = 0;  // marked_at -> finished_at
  double idle_get_p99_ms = 0, idle_put_p99_ms = 0;
  double sweep_get_p99_ms = 0, sweep_put_p99_ms = 0;
  double after_get_p99_ms = 0, after_put_p99_ms = 0;
  // The sweep window split at the run's marked_at: mark (+ export) vs the sweep proper.
  double mark_get_p99_ms = 0, mark_put_p99_ms = 0;
  double sweep_only_get_p99_ms = 0, sweep_only_put_p99_ms = 0;
  uint64_t idle_requests = 0, sweep_requests = 0, after_requests = 0, online_errors = 0;
};

absl::StatusOr<GcBenchReport> RunGcBench(const GcBenchOptions& options, std::ostream& out);

}  // namespace strata::bench
