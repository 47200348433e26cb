// `strata bench objects`: drives a running Strata server's media object API over HTTP and
// reports throughput and latency percentiles per operation.
//
// Phases (each closed-loop over `connections` keep-alive connections, one thread each):
//   1. PUT /v1/buckets/{bucket} (a fresh bucket per run).
//   2. put-small: `small_count` objects of `small_bytes`; get-small: each read back once.
//   3. put-large: `large_count` objects of `large_bytes` (stored as several parts when larger
//      than the server's --blob-part-bytes); get-large: each read back once.
//   4. delete under load: `load_connections` threads keep PUTting and GETting small objects
//      of other keys while `connections` threads soft-delete the small objects of phase 2;
//      the DELETE latency is the figure of interest (goal: p99 <= 1 ms server-side).
//   5. The server-side share of this run's DELETEs answered within 1 ms: the difference of
//      the strata_http_request_seconds histogram of the object route (GET /metrics) across
//      the delete phase.
// Latency is measured per request from send to the end of the response (client side, so it
// includes HTTP and the loopback). MB/s counts object bytes.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::bench {

struct ObjectBenchOptions {
  // Base URL of the server. Default "http://127.0.0.1:8080".
  std::string server = "http://127.0.0.1:8080";
  // Concurrent connections of each phase (one thread each). Default 4.
  int connections = 4;
  // Connections that keep writing and reading during the delete phase. Default 2.
  int load_connections = 2;
  // Small objects: count and size in bytes (they are also the objects the delete phase
  // deletes). Defaults 10000 and 16 KiB.
  int small_count = 10'000;
  uint64_t small_bytes = 16 << 10;
  // Large objects: count and size in bytes. Defaults 16 and 32 MiB.
  int large_count = 16;
  uint64_t large_bytes = uint64_t{32} << 20;
  // Client timeout per wait, in milliseconds. Default 60000.
  int timeout_ms = 60'000;
};

struct ObjectOpReport {
  std::string name;
  uint64_t count = 0;
  uint64_t errors = 0;  // non-2xx answers plus transport failures
  double seconds = 0;
  double per_second = 0;
  double mb_per_second = 0;  // object bytes (MiB) per second
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
};

struct ObjectBenchReport {
  std::vector<ObjectOpReport> ops;
  // Server side, from /metrics across the delete phase: DELETEs of the object route answered
  // within 1 ms, and all.
  uint64_t server_deletes_within_1ms = 0;
  uint64_t server_deletes = 0;
};

// InvalidArgument for bad options (naming the option); Unavailable if the server cannot be
// reached at the start. Request failures during the run are counted, not returned.
absl::StatusOr<ObjectBenchReport> RunObjectBench(const ObjectBenchOptions& options,
                                                 std::ostream& out);

namespace internal {
// Sums the `le="0.001"` bucket and the _count of strata_http_request_seconds for DELETE on
// the object route, from a /metrics text.
void ParseDeleteLatency(std::string_view metrics, uint64_t* within_1ms, uint64_t* total);
}  // namespace internal

}  // namespace strata::bench
