#include "bench/connections_bench.h"

#include <cmath>
#include <string>

#include "gtest/gtest.h"

namespace strata::bench::internal {
namespace {

constexpr char kMetrics[] =
    "strata_http_request_seconds_bucket{route=\"/v1/buckets/{bucket}/objects/{key}\","
    "method=\"PUT\",le=\"0.001\"} 7\n"
    "strata_http_request_seconds_bucket{route=\"/v1/buckets/{bucket}/objects/{key}\","
    "method=\"GET\",le=\"0.0005\"} 90\n"
    "strata_http_request_seconds_bucket{route=\"/v1/buckets/{bucket}/objects/{key}\","
    "method=\"GET\",le=\"0.001\"} 98\n"
    "strata_http_request_seconds_bucket{route=\"/v1/buckets/{bucket}/objects/{key}\","
    "method=\"GET\",le=\"+Inf\"} 100\n";

TEST(ConnectionsBenchTest, ServerSideQuantileOfObjectGets) {
  auto after = ObjectGetBuckets(kMetrics);
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[0].first, 0.0005);
  EXPECT_EQ(after[1].second, 98u);
  EXPECT_TRUE(std::isinf(after[2].first));
  // 100 GETs: the 50th within the first bucket, the 95th in (0.5, 1] ms, the 99th in +Inf
  // (reported as its lower bound).
  EXPECT_NEAR(QuantileMs({}, after, 0.5), 0.5 * 50 / 90, 1e-9);
  EXPECT_NEAR(QuantileMs({}, after, 0.95), 0.5 + 0.5 * 5 / 8, 1e-9);
  EXPECT_NEAR(QuantileMs({}, after, 0.99), 1.0, 1e-9);
  // Between two scrapes: only the difference counts.
  auto before = after;
  for (auto& b : before) b.second = 80;
  EXPECT_NEAR(QuantileMs(before, after, 0.5), 0.5 * 10 / 10, 1e-9);
  EXPECT_EQ(QuantileMs(after, after, 0.99), -1);  // nothing between them
  EXPECT_EQ(QuantileMs({}, {}, 0.99), -1);
}

}  // namespace
}  // namespace strata::bench::internal
