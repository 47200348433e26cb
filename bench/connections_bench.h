// `strata bench connections`: does a crowd of idle and slow-drip connections slow a normal
// client down? (issue 13: "10,000 idle connections and 100 slow-drip connections do not change
// the p99 of a normal client's requests by more than 1.5x".)
//
// Each run has two phases on one server, with the same normal client: `quiet` (nothing else
// connected), then `loaded` (idle_connections TCP connections that never send a byte, plus
// slow_connections object uploads that announce slow_upload_bytes and send one byte every
// drip_interval_ms, reopened whenever the server cuts one). The normal client sends `requests`
// small object GETs at `rate` per second, open loop (one arrival schedule taken by the next free
// of client_connections keep-alive connections), latency counted from each request's intended
// send time (load_driver.h), after warmup_requests untimed GETs per connection. The report is
// each run's p99 loaded / p99 quiet and the median over the runs; CPU of other processes per
// phase says how noisy the machine was.
//
// The server is started by the bench (`strata serve` plus strata_args, --max-connections set
// to hold the crowd) unless `server` names a running one. The bench raises its own open-file
// limit to the hard limit; it needs about idle_connections + slow_connections descriptors, and
// so does the server.
//
// Thread safety: RunConnectionsBench is called from one thread; it starts its own.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load_driver.h"

namespace strata::bench {

struct ConnectionsBenchOptions {
  // A running server's URL, or "" to start one. Default "".
  std::string server;
  // The Strata executable for a started server ("/proc/self/exe" = this one) and extra
  // `serve` arguments. Defaults "/proc/self/exe", none.
  std::string strata_binary = "/proc/self/exe";
  std::vector<std::string> strata_args;
  // Parent of the started server's temporary directory ("" = $TMPDIR or /tmp); keep it after.
  std::string work_dir;
  bool keep_dirs = false;

  // The crowd of the loaded phase. Defaults 10,000 idle connections, 100 slow uploads of
  // 1 MiB each dripping one byte every 1000 ms.
  int idle_connections = 10'000;
  int slow_connections = 100;
  uint64_t slow_upload_bytes = 1 << 20;
  int drip_interval_ms = 1000;

  // The normal client: requests per phase, their rate (per second), connections, untimed
  // warm-up requests per connection, size of the object it reads. Defaults 2000, 500, 4, 100,
  // 1024 bytes.
  int requests = 2000;
  double rate = 500;
  int client_connections = 4;
  int warmup_requests = 100;
  int object_bytes = 1024;

  // Runs (each a quiet and a loaded phase). Default 3.
  int runs = 3;
  // Seconds between opening the crowd and measuring, so the server has accepted it. Default 2.
  double settle_s = 2;
  // Client timeout per wait, ms. Default 10000.
  int timeout_ms = 10'000;
  // Time slice of the client's threads (ThreadPool::SetCurrentThreadSlice); 0 = the kernel's
  // default. Default 100 us, as the other benches.
  int client_slice_us = 100;
  // The goal: loaded p99 at most this times the quiet p99 (median of the runs). Default 1.5.
  double goal_ratio = 1.5;
};

struct ConnectionsPhase {
  std::string name;           // "quiet" or "loaded"
  OpReport client;            // the normal client's GETs
  double server_p99_ms = -1;  // the same GETs' p99 in the server (/metrics; -1 if unknown)
  uint64_t late = 0;          // sent more than kLateAfter after their due time
  uint64_t unsent = 0;        // fell due but the phase ended first
  double seconds = 0;         // of the measured part
  int idle_open = 0;          // idle connections still open at the end (loaded)
  uint64_t slow_cuts = 0;     // slow uploads the server ended (answered or closed) meanwhile
  uint64_t slow_bytes = 0;    // bytes the slow uploads dripped meanwhile
  // CPU seconds over the measured part: the server's process tree (-1 when not started
  // here), the bench, and everything else on the machine (other processes, kernel threads,
  // interrupts).
  double server_cpu_s = -1;
  double bench_cpu_s = 0;
  double other_cpu_s = 0;
  int64_t server_fds = -1;        // open descriptors of the started server at the end (-1: unknown)
  int64_t server_pss_bytes = -1;  // the started server's PSS at the end (-1: unknown)
};

struct ConnectionsRun {
  ConnectionsPhase quiet;
  ConnectionsPhase loaded;
  double p99_ratio = 0;  // loaded / quiet
};

struct ConnectionsReport {
  std::vector<ConnectionsRun> runs;
  double median_ratio = 0;
  bool goal_met = false;
  // Every GET of the normal client answered 200 and the crowd was fully open.
  bool passed = false;
};

absl::StatusOr<ConnectionsReport> RunConnectionsBench(const ConnectionsBenchOptions& options,
                                                      std::ostream& out);

namespace internal {

// The cumulative buckets of strata_http_request_seconds for object GETs in a /metrics text:
// (upper bound in seconds, +inf for the last; count at or below it), in the text's order.
std::vector<std::pair<double, uint64_t>> ObjectGetBuckets(std::string_view metrics);
// The q-quantile, in ms, of the requests counted between two such scrapes, interpolated
// linearly inside its bucket (the last, open bucket counts as its lower bound); -1 when none.
double QuantileMs(const std::vector<std::pair<double, uint64_t>>& before,
                  const std::vector<std::pair<double, uint64_t>>& after, double q);

}  // namespace internal

}  // namespace strata::bench
