#include "strata/viewing/viewing_metrics.h"

namespace strata::viewing {

ViewingMetrics ViewingMetrics::Register(MetricsRegistry* registry) {
  ViewingMetrics m;
  const char* kIngested = "strata_viewing_records_ingested_total";
  m.ingested[0] = registry->GetCounter(kIngested, "Viewing records stored", "kind=\"play\"");
  m.ingested[1] = registry->GetCounter(kIngested, "Viewing records stored", "kind=\"preview\"");
  const char* kDropped = "strata_viewing_filter_dropped_total";
  const char* kDroppedHelp = "Records the write filters chose not to store";
  m.dropped_previews = registry->GetCounter(kDropped, kDroppedHelp, "filter=\"short_preview\"");
  m.dropped_expired =
      registry->GetCounter(kDropped, kDroppedHelp, "filter=\"expired_on_arrival\"");
  m.language_changes = registry->GetCounter("strata_viewing_language_changes_total",
                                            "Language preference changes stored");
  m.language_unchanged =
      registry->GetCounter(kDropped, kDroppedHelp, "filter=\"language_unchanged\"");
  const char* kSegmentSummaries = "strata_viewing_segment_summaries_total";
  const char* kSegmentSummariesHelp =
      "Recent-tier segments summarised for a summary read, by whether the previous version's "
      "summary of the same segment was reused or the segment decoded";
  m.segment_summaries_built =
      registry->GetCounter(kSegmentSummaries, kSegmentSummariesHelp, "source=\"decoded\"");
  m.segment_summaries_reused =
      registry->GetCounter(kSegmentSummaries, kSegmentSummariesHelp, "source=\"reused\"");
  m.rollups = registry->GetCounter("strata_viewing_rollups_total",
                                   "Roll-ups of live rows into a new compressed version");
  m.rollup_records = registry->GetCounter("strata_viewing_rollup_live_rows_total",
                                          "Live rows moved into compressed versions");
  m.rollup_errors = registry->GetCounter("strata_viewing_rollup_errors_total",
                                         "Roll-ups that failed (retried on the next trigger)");
  m.rollup_seconds = registry->GetHistogram("strata_viewing_rollup_seconds",
                                            "Duration of one member roll-up");
  const char* kHeld = "strata_viewing_member_lock_held_seconds";
  const char* kHeldHelp =
      "Time a member lock was held exclusively (reads of the member wait for it), by holder";
  m.lock_held_rollup = registry->GetHistogram(kHeld, kHeldHelp, "by=\"rollup\"");
  m.lock_held_rotation = registry->GetHistogram(kHeld, kHeldHelp, "by=\"rotation\"");
  m.read_lock_wait_seconds = registry->GetHistogram(
      "strata_viewing_member_lock_wait_seconds",
      "Time a history read waited for its member lock (held by a roll-up or rotation commit)",
      "op=\"read\"");
  m.rotations = registry->GetCounter("strata_viewing_rotations_total",
                                     "Member rotations between age tiers");
  m.rotation_errors = registry->GetCounter("strata_viewing_rotation_errors_total",
                                           "Rotations that failed (retried on the next trigger)");
  const char* kReadHelp =
      "History reads (one page), by whether the history cache held the member's recent tier";
  m.read_seconds_hit =
      registry->GetHistogram("strata_viewing_read_seconds", kReadHelp, "cache=\"hit\"");
  m.read_seconds_miss =
      registry->GetHistogram("strata_viewing_read_seconds", kReadHelp, "cache=\"miss\"");
  m.past_prefetches = registry->GetCounter(
      "strata_viewing_past_prefetches_total",
      "Reads that read the past tier in parallel with a recent tier not in the cache");
  m.past_prefetch_used = registry->GetCounter(
      "strata_viewing_past_prefetches_used_total",
      "Of those, the reads whose page needed the past tier (the others wasted the read)");
  const char* kRotated = "strata_viewing_rotated_records_total";
  const char* kRotatedHelp = "Records moved between age tiers";
  m.moved_to_past = registry->GetCounter(kRotated, kRotatedHelp, "to=\"past\"");
  m.folded_to_historical = registry->GetCounter(kRotated, kRotatedHelp, "to=\"historical\"");
  m.late_dropped = registry->GetCounter(kDropped, kDroppedHelp, "filter=\"older_than_summary\"");
  m.rotation_seconds = registry->GetHistogram("strata_viewing_rotation_seconds",
                                              "Duration of one member rotation");
  return m;
}

}  // namespace strata::viewing
