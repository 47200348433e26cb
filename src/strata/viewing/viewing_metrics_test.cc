#include "strata/viewing/viewing_metrics.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace strata::viewing {
namespace {

// The names and labels operators' dashboards and docs/operations.md rely on.
TEST(ViewingMetrics, RegistersEveryCounterAndHistogramUnderItsName) {
  MetricsRegistry registry;
  ViewingMetrics m = ViewingMetrics::Register(&registry);
  const std::set<const void*> distinct = {
      m.ingested[0], m.ingested[1], m.dropped_previews, m.dropped_expired,
      m.language_changes, m.language_unchanged, m.read_seconds_hit, m.read_seconds_miss,
      m.past_prefetches, m.past_prefetch_used, m.segment_summaries_built,
      m.segment_summaries_reused, m.rollups, m.rollup_records, m.rollup_errors,
      m.rollup_seconds, m.rotations, m.rotation_errors, m.moved_to_past,
      m.folded_to_historical, m.late_dropped, m.rotation_seconds};
  EXPECT_EQ(distinct.size(), 22u) << "every metric is its own";
  EXPECT_FALSE(distinct.count(nullptr));

  const std::string text = registry.RenderPrometheus();
  for (const char* line : {
           "strata_viewing_records_ingested_total{kind=\"play\"} 0",
           "strata_viewing_records_ingested_total{kind=\"preview\"} 0",
           "strata_viewing_filter_dropped_total{filter=\"short_preview\"} 0",
           "strata_viewing_filter_dropped_total{filter=\"expired_on_arrival\"} 0",
           "strata_viewing_filter_dropped_total{filter=\"language_unchanged\"} 0",
           "strata_viewing_filter_dropped_total{filter=\"older_than_summary\"} 0",
           "strata_viewing_language_changes_total 0",
           "strata_viewing_segment_summaries_total{source=\"decoded\"} 0",
           "strata_viewing_segment_summaries_total{source=\"reused\"} 0",
           "strata_viewing_rollups_total 0",
           "strata_viewing_rollup_live_rows_total 0",
           "strata_viewing_rollup_errors_total 0",
           "strata_viewing_rollup_seconds_count 0",
           "strata_viewing_rotations_total 0",
           "strata_viewing_rotation_errors_total 0",
           "strata_viewing_read_seconds_count{cache=\"hit\"} 0",
           "strata_viewing_read_seconds_count{cache=\"miss\"} 0",
           "strata_viewing_past_prefetches_total 0",
           "strata_viewing_past_prefetches_used_total 0",
           "strata_viewing_rotated_records_total{to=\"past\"} 0",
           "strata_viewing_rotated_records_total{to=\"historical\"} 0",
           "strata_viewing_rotation_seconds_count 0",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST(ViewingMetrics, RegisteringAgainFindsTheSameMetrics) {
  // A service reopened on the same registry (tests, restarts in one process) counts on.
  MetricsRegistry registry;
  ViewingMetrics a = ViewingMetrics::Register(&registry);
  a.rollups->Inc(3);
  ViewingMetrics b = ViewingMetrics::Register(&registry);
  EXPECT_EQ(a.rollups, b.rollups);
  EXPECT_EQ(b.rollups->Value(), 3u);
  EXPECT_EQ(a.read_seconds_miss, b.read_seconds_miss);
}

}  // namespace
}  // namespace strata::viewing
