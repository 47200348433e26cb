// Open-loop pacing and per-operation latency statistics, shared by the load generators of
// `strata bench` (viewing_bench.cc, compare_bench.cc).
//
// Pacing. With a target rate, request i of connection `index` out of `of` connections that
// share the rate is due at start + (index / of + i) * of / rate: each connection keeps its
// own schedule (wrk2 style), staggered evenly within one interval. An ArrivalSchedule is one
// schedule shared by several connections, each arrival taken by whichever connection is
// free first (independent users served by a connection pool). Latency counts from the due
// time, not from the actual send, so a stall counts against every request queued behind it
// (no coordinated omission).
//
// Statistics. OpStats counts one operation's outcomes and latencies on one thread (not
// thread-safe: one per thread, Merge() them at the end); MakeOpReport turns it into the
// percentiles a report prints. Everything else here is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "bench/latency_histogram.h"
#include "strata/http/http_client.h"

namespace strata::bench {

using SteadyClock = std::chrono::steady_clock;

// A paced request sent more than this after its due time is "late": no connection was free,
// or the client itself was not scheduled. Its wait is part of its latency either way.
inline constexpr std::chrono::milliseconds kLateAfter{1};

// Due time of request `i` of connection `index` (0-based) out of `of`, at `rate` requests per
// second over all of them. Requires rate > 0, 0 <= index < of.
SteadyClock::time_point Due(SteadyClock::time_point start, double rate, int index, int of,
                            uint64_t i);
// How many requests of that connection, from the i-th on, fall due before `end`.
uint64_t CountDue(SteadyClock::time_point start, double rate, int index, int of, uint64_t i,
                  SteadyClock::time_point end);
// Microseconds from t0 to now (0 if t0 is in the future).
uint64_t MicrosSince(SteadyClock::time_point t0);
// Seconds from t0 to now.
double SecondsSince(SteadyClock::time_point t0);
// Sleeps until `due`; true when the caller woke more than kLateAfter after it.
bool SleepUntilDue(SteadyClock::time_point due);

// One arrival schedule (`rate` per second from `start`, none at or after `end`) shared by
// several connections: each arrival is taken exactly once. Thread-safe.
class ArrivalSchedule {
 public:
  enum class Take {
    kSend,    // *due is set: wait for it, then send
    kUnsent,  // the arrival fell due before the end but was taken after it: count, take next
    kDone,    // no arrival is left before the end
  };
  ArrivalSchedule(SteadyClock::time_point start, SteadyClock::time_point end, double rate)
      : start_(start), end_(end), rate_(rate) {}
  // With `arrival`, also the arrival's number (0, 1, ... in due order).
  Take Next(SteadyClock::time_point* due, uint64_t* arrival = nullptr);
  // Arrivals taken so far (kSend and kUnsent).
  uint64_t taken() const { return next_.load(std::memory_order_relaxed); }

 private:
  const SteadyClock::time_point start_;
  const SteadyClock::time_point end_;
  const double rate_;
  std::atomic<uint64_t> next_{0};
};

// Outcomes of one operation on one thread. `status` is an HTTP status, or any code where
// 200..299 means success; 0 = transport failure (counted, latency not recorded).
struct OpStats {
  LatencyHistogram micros;
  std::map<int, uint64_t> statuses;
  uint64_t count = 0;
  uint64_t errors = 0;

  void Add(int status, uint64_t latency_us) {
    ++count;
    ++statuses[status];
    if (status < 200 || status >= 300) ++errors;
    if (status != 0) micros.Record(latency_us);
  }
  void Merge(const OpStats& o) {
    micros.Merge(o.micros);
    for (auto [s, n] : o.statuses) statuses[s] += n;
    count += o.count;
    errors += o.errors;
  }
};

// Latency in milliseconds; counts are of completed requests (errors included, transport
// failures counted under status 0).
struct OpReport {
  std::string name;
  uint64_t count = 0;
  uint64_t errors = 0;  // non-2xx answers plus transport failures
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  double max_ms = 0;
  double mean_ms = 0;
  std::map<int, uint64_t> statuses;  // HTTP status (0 = transport error) -> count
};

// `seconds` is the phase's length, for the rate (0 leaves per_second at 0).
OpReport MakeOpReport(std::string name, const OpStats& s, double seconds);

// The environment variable holding the API key the bench sends (as the operator commands do).
inline constexpr const char* kApiKeyVariable = "STRATA_API_KEY";
// "Bearer <key>" when STRATA_API_KEY is set and not empty, else "". Read once per call.
std::string AuthorizationFromEnvironment();
// A client for host:port (http::Client) that sends `Authorization: Bearer $STRATA_API_KEY`
// with every request when the variable is set: every load generator connects through it, so
// a server with API keys can be measured (a key with the scopes the workload needs; a server
// without keys ignores the header).
http::Client NewClient(const std::string& host, uint16_t port, int timeout_ms);

// printf-style formatting of one double ("%.2f").
std::string Fmt(const char* format, double v);
// 1234567 -> "1,234,567".
std::string Thousands(uint64_t v);
// Bytes as MiB with one decimal: 1572864 -> "1.5".
std::string MiB(uint64_t bytes);

}  // namespace strata::bench
