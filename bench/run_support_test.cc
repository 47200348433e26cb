#include "bench/run_support.h"

#include "gtest/gtest.h"

namespace strata::bench {
namespace {

TEST(RunSupportTest, MetricValueFindsOneSeriesExactly) {
  const std::string page =
      "# HELP strata_reprocess_throttle_rate Adaptive rate\n"
      "# TYPE strata_reprocess_throttle_rate gauge\n"
      "strata_reprocess_throttle_rate 2500\n"
      "strata_reprocess_throttle_decisions{decision=\"latency_cut\"} 3\n"
      "strata_reprocess_throttle_decisions{decision=\"load_cut\"} 1.5e1\n"
      "strata_reprocess_throttle_rate_total 7\n";
  EXPECT_EQ(MetricValue(page, "strata_reprocess_throttle_rate"), 2500);
  EXPECT_EQ(MetricValue(page, "strata_reprocess_throttle_decisions{decision=\"latency_cut\"}"), 3);
  EXPECT_EQ(MetricValue(page, "strata_reprocess_throttle_decisions{decision=\"load_cut\"}"), 15);
  // A prefix of another series' name, a missing series and a value that is no number.
  EXPECT_EQ(MetricValue(page, "strata_reprocess_throttle"), std::nullopt);
  EXPECT_EQ(MetricValue(page, "strata_absent"), std::nullopt);
  EXPECT_EQ(MetricValue("x abc\n", "x"), std::nullopt);
  EXPECT_EQ(MetricValue("x 1", "x"), 1);  // no final newline
}

}  // namespace
}  // namespace strata::bench
