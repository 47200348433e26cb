#include "bench/object_bench.h"

#include <gtest/gtest.h>

#include <sstream>

namespace strata::bench {
namespace {

TEST(ObjectBenchTest, ParsesDeleteLatencyFromMetrics) {
  const std::string metrics =
      "strata_http_request_seconds_bucket{route=\"/v1/buckets/{bucket}/objects/{key}\","
      "method=\"DELETE\",le=\"0.0005\"} 80\n"
      "strata_http_request_seconds_bucket{route=\"/v1/buckets/{bucket}/objects/{key}\","
      "method=\"DELETE\",le=\"0.001\"} 95\n"
      "strata_http_request_seconds_bucket{route=\"/v1/buckets/{bucket}/objects/{key}\","
      "method=\"GET\",le=\"0.001\"} 7\n"
      "strata_http_request_seconds_count{route=\"/v1/buckets/{bucket}/objects/{key}\","
      "method=\"DELETE\"} 100\n"
      "strata_http_request_seconds_count{route=\"/v1/buckets/{bucket}/objects/{key}\","
      "method=\"PUT\"} 5\n";
  uint64_t within = 0, total = 0;
  internal::ParseDeleteLatency(metrics, &within, &total);
  EXPECT_EQ(within, 95u);
  EXPECT_EQ(total, 100u);
}

TEST(ObjectBenchTest, BadOptionsAndUnreachableServer) {
  std::ostringstream out;
  ObjectBenchOptions o;
  o.connections = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(RunObjectBench(o, out).status()));
  o = {};
  o.server = "http://127.0.0.1:1";
  o.timeout_ms = 500;
  EXPECT_TRUE(absl::IsUnavailable(RunObjectBench(o, out).status()));
}

}  // namespace
}  // namespace strata::bench
