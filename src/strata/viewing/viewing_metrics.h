// ViewingMetrics: every counter and histogram of the viewing service, registered in one place
// (the names, labels and help texts /metrics shows; docs/operations.md lists them). Gauges,
// which read the service's state when rendered, are added by the service itself.
//
// Holds pointers into a MetricsRegistry, which must outlive it; the metrics themselves are
// lock-free to update from any thread.
#pragma once

#include "strata/base/metrics.h"

namespace strata::viewing {

struct ViewingMetrics {
  // Registers (or finds, if already registered) every metric below in `registry`.
  static ViewingMetrics Register(MetricsRegistry* registry);

  // Ingest.
  Counter* ingested[2] = {};  // by Kind: records stored
  Counter* dropped_previews = nullptr;    // filter="short_preview"
  Counter* dropped_expired = nullptr;     // filter="expired_on_arrival"
  Counter* language_changes = nullptr;    // language preference changes stored
  Counter* language_unchanged = nullptr;  // filter="language_unchanged"
  // Reads.
  Histogram* read_seconds_hit = nullptr;   // a page whose recent tier was in the cache
  Histogram* read_seconds_miss = nullptr;  // ... and one read from the store
  Histogram* read_lock_wait_seconds = nullptr;  // waiting for the member lock (shared)
  Counter* past_prefetches = nullptr;
  Counter* past_prefetch_used = nullptr;
  Counter* segment_summaries_built = nullptr;   // source="decoded"
  Counter* segment_summaries_reused = nullptr;  // source="reused"
  // Roll-ups.
  Counter* rollups = nullptr;
  Counter* rollup_records = nullptr;
  Counter* rollup_errors = nullptr;
  Histogram* rollup_seconds = nullptr;
  // The member lock held exclusively by a roll-up's commit (by="rollup") and by a rotation's
  // (by="rotation"): what a read of that member may wait.
  Histogram* lock_held_rollup = nullptr;
  Histogram* lock_held_rotation = nullptr;
  // Rotations between the age tiers.
  Counter* rotations = nullptr;
  Counter* rotation_errors = nullptr;
  Counter* moved_to_past = nullptr;
  Counter* folded_to_historical = nullptr;
  Counter* late_dropped = nullptr;  // filter="older_than_summary"
  Histogram* rotation_seconds = nullptr;
};

}  // namespace strata::viewing
