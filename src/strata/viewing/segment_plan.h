// Planning a new version of a segmented compressed history (segments.h): merge updates into
// the segments their started_at falls in, drop records older than a cutoff (collecting them
// when they move to another tier), drop expired records, and re-encode only the segments
// that changed. Roll-ups (live -> compressed) and tier rotations (recent -> past,
// past -> historical) are all this one operation with different inputs.
//
// Pure apart from the segment_bytes callback (which reads segments not already in memory);
// the caller writes the result (fresh segments, then the metadata as the commit point, then
// the replaced segments' deletion).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/viewing/record.h"
#include "strata/viewing/segments.h"
#include "strata/viewing/summary.h"

namespace strata::viewing {

struct SegmentPlanInput {
  MemberId member = 0;
  Kind kind = Kind::kPlay;
  // The committed version (null = none). Its segment bytes may be null (not loaded):
  // segment_bytes(i) is called for those the plan must decode. segment_bytes may return
  // null for a segment whose row has expired and is gone (read as empty).
  const CompressedHistory* current = nullptr;
  std::function<absl::StatusOr<std::shared_ptr<const std::string>>(size_t)> segment_bytes;
  // Records to merge in, sorted and unique by PlaybackKey; the later event_time wins.
  std::span<const ViewingRecord> updates;
  // Records with started_at < drop_before leave the history (INT64_MIN: none).
  Millis drop_before = INT64_MIN;
  // Collect the records that leave (into SegmentPlan::removed). Without it, segments wholly
  // below drop_before are dropped without being read.
  bool collect_removed = false;
  // Records with event_time + ttl_ms <= now are dropped (ttl_ms 0: never; TtlExpired).
  Millis ttl_ms = 0;
  Millis now = 0;
  size_t segment_records = 512;
  int zstd_level = 3;
  // When set, receives every record of the new version (decoding the segments kept as they
  // are, too): used to rebuild the summary kept beside a past-tier history.
  SummaryBuilder* summarize = nullptr;
  // Encodes large sets of new segments concurrently (see EncodeSegments); null: in turn.
  const RunAll* run_all = nullptr;
};

struct SegmentPlan {
  bool changed = false;  // false: the new version would equal the current one
  HistoryMeta meta;      // the new version; meta.garbage = replaced
  // Parallel to meta.segments: the bytes of segments kept as they were (null when not
  // loaded) and, for fresh ones, null until the caller moves fresh[k].bytes in.
  std::vector<std::shared_ptr<const std::string>> bytes;
  std::vector<Segment> fresh;      // new segments, in order
  std::vector<int> fresh_slot;     // their index in meta.segments
  std::vector<uint64_t> replaced;  // ids of the current segments the new version drops
  std::vector<ViewingRecord> removed;  // with collect_removed: ascending by PlaybackKey
  Millis expire_at = 0;  // expiry for the new version's rows (0 = none)
};

absl::StatusOr<SegmentPlan> PlanSegments(const SegmentPlanInput& in);

}  // namespace strata::viewing
