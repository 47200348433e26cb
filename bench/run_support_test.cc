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

// Histograms read back from a page the registry rendered: buckets by series (labels
// matched exactly), the difference of two pages, and the quantile of that difference.
TEST(RunSupportTest, HistogramBucketsReadTheRenderedPageBack) {
  MetricsRegistry registry;
  Histogram* wait = registry.GetHistogram("x_seconds", "help");
  Histogram* get = registry.GetHistogram("y_seconds", "help", "route=\"/a\",method=\"GET\"");
  Histogram* put = registry.GetHistogram("y_seconds", "help", "route=\"/a\",method=\"PUT\"");
  for (int i = 0; i < 10; ++i) wait->Observe(0.0003);  // the (0.25, 0.5] ms bucket
  get->Observe(0.002);
  const std::string before = registry.RenderPrometheus();
  for (int i = 0; i < 100; ++i) wait->Observe(0.004);  // (2.5, 5] ms
  put->Observe(20.0);                                   // above the last bound
  const std::string after = registry.RenderPrometheus();

  std::optional<Histogram::Buckets> b = HistogramBuckets(before, "x_seconds");
  std::optional<Histogram::Buckets> a = HistogramBuckets(after, "x_seconds");
  ASSERT_TRUE(b && a);
  EXPECT_EQ((*b)[3], 10u);
  EXPECT_EQ((*a)[3], 10u);
  EXPECT_EQ((*a)[6], 100u);
  const Histogram::Buckets d = BucketsSince(*b, *a);
  EXPECT_EQ(d[3], 0u);
  EXPECT_EQ(d[6], 100u);
  EXPECT_GT(Histogram::Quantile(d, 0.99), 0.0025);
  EXPECT_LE(Histogram::Quantile(d, 0.99), 0.005);

  std::optional<Histogram::Buckets> g =
      HistogramBuckets(after, "y_seconds", "route=\"/a\",method=\"GET\"");
  std::optional<Histogram::Buckets> p =
      HistogramBuckets(after, "y_seconds", "route=\"/a\",method=\"PUT\"");
  ASSERT_TRUE(g && p);
  EXPECT_EQ((*g)[5], 1u);             // (1, 2.5] ms
  EXPECT_EQ((*p)[p->size() - 1], 1u);  // +Inf
  EXPECT_EQ(HistogramBuckets(after, "y_seconds"), std::nullopt);  // labels must match
  EXPECT_EQ(HistogramBuckets(after, "z_seconds"), std::nullopt);
  // A series that restarted (a new server process): the new page's counts.
  EXPECT_EQ(BucketsSince(*a, *b), *b);
}

}  // namespace
}  // namespace strata::bench
