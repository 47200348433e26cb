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
