#include "strata/base/metrics.h"

#include <gtest/gtest.h>

namespace strata {
namespace {

TEST(Metrics, CountersAreSharedByNameAndLabels) {
  MetricsRegistry r;
  Counter* a = r.GetCounter("strata_x_total", "help", "route=\"a\"");
  Counter* a2 = r.GetCounter("strata_x_total", "help", "route=\"a\"");
  Counter* b = r.GetCounter("strata_x_total", "help", "route=\"b\"");
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
  a->Inc(3);
  b->Inc();
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE strata_x_total counter"), std::string::npos);
  EXPECT_NE(text.find("strata_x_total{route=\"a\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("strata_x_total{route=\"b\"} 1\n"), std::string::npos);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  MetricsRegistry r;
  Histogram* h = r.GetHistogram("strata_lat_seconds", "help");
  h->Observe(0.00001);  // first bucket
  h->Observe(0.003);    // 5ms bucket
  h->Observe(100);      // +Inf only
  std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("strata_lat_seconds_bucket{le=\"5e-05\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("strata_lat_seconds_bucket{le=\"0.005\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("strata_lat_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("strata_lat_seconds_count 3\n"), std::string::npos);
}

TEST(Metrics, GaugesAreEvaluatedAtRenderTime) {
  MetricsRegistry r;
  double v = 1;
  r.AddGauge("strata_g", "help", [&] {
    return std::vector<std::pair<std::string, double>>{{"t=\"x\"", v}};
  });
  EXPECT_NE(r.RenderPrometheus().find("strata_g{t=\"x\"} 1\n"), std::string::npos);
  v = 2.5;
  EXPECT_NE(r.RenderPrometheus().find("strata_g{t=\"x\"} 2.5\n"), std::string::npos);
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST(Metrics, HistogramQuantileInterpolatesInsideTheBucket) {
  Histogram h;
  EXPECT_EQ(Histogram::Quantile(h.BucketCounts(), 0.99), 0.0);
  for (int i = 0; i < 98; ++i) h.Observe(0.0002);  // (0.0001, 0.00025]
  h.Observe(0.004);                                 // (0.0025, 0.005]
  h.Observe(0.004);
  Histogram::Buckets b = h.BucketCounts();
  EXPECT_EQ(b[2], 98u);
  EXPECT_EQ(b[6], 2u);
  const double p99 = Histogram::Quantile(b, 0.99);
  EXPECT_GT(p99, 0.0025);
  EXPECT_LE(p99, 0.005);
  EXPECT_LE(Histogram::Quantile(b, 0.5), 0.00025);
}

}  // namespace
}  // namespace strata
