#include "strata/viewing/segment_plan.h"

#include <xxhash.h>

#include <algorithm>

#include "strata/base/status.h"
#include "strata/base/ttl.h"
#include "strata/viewing/codec.h"
#include "strata/viewing/history_cache.h"

namespace strata::viewing {

absl::StatusOr<SegmentPlan> PlanSegments(const SegmentPlanInput& in) {
  SegmentPlan plan;
  const HistoryMeta empty_meta;
  const HistoryMeta& old_meta = in.current ? in.current->meta : empty_meta;
  plan.meta.version = old_meta.version + 1;
  plan.meta.next_segment_id = old_meta.next_segment_id;
  auto expired = [&](const ViewingRecord& r) {
    return TtlExpired(r.event_time, in.ttl_ms, in.now);
  };
  auto add_fresh = [&](std::vector<ViewingRecord>& records) {
    std::vector<Segment> encoded;
    EncodeSegments(records, in.segment_records, in.zstd_level, &encoded, in.run_all);
    for (auto& seg : encoded) {
      plan.fresh_slot.push_back(static_cast<int>(plan.meta.segments.size()));
      plan.meta.segments.push_back(SegmentRef{plan.meta.next_segment_id++, seg.first_started_at,
                                              seg.last_started_at, seg.max_event_time,
                                              seg.records, seg.bytes.size(),
                                              XXH3_64bits(seg.bytes.data(), seg.bytes.size())});
      plan.bytes.push_back(nullptr);
      plan.fresh.push_back(std::move(seg));
    }
  };
  auto decode = [&](size_t i) -> absl::StatusOr<std::vector<ViewingRecord>> {
    std::shared_ptr<const std::string> bytes = in.current->segments[i];
    if (!bytes) {
      STRATA_ASSIGN_OR_RETURN(bytes, in.segment_bytes(i));
    }
    std::vector<ViewingRecord> records;  // stays empty when the chunk expired and is gone
    if (bytes) {
      STRATA_ASSIGN_OR_RETURN(records, DecodeHistory(*bytes, in.member, in.kind));
      if (records.size() != old_meta.segments[i].records) {
        return absl::DataLossError("compressed history: segment record count mismatch");
      }
    }
    return records;
  };
  // Splits a touched segment's records into those that stay and those that leave.
  auto settle = [&](std::vector<ViewingRecord>& records) {
    std::erase_if(records, expired);
    auto keep = std::partition_point(records.begin(), records.end(), [&](const ViewingRecord& r) {
      return r.started_at < in.drop_before;
    });
    if (in.collect_removed) {
      for (auto it = records.begin(); it != keep; ++it) plan.removed.push_back(std::move(*it));
    }
    records.erase(records.begin(), keep);
    if (in.summarize) {
      for (const auto& r : records) in.summarize->Add(r);
    }
    add_fresh(records);
  };

  const std::span<const ViewingRecord> updates = in.updates;
  size_t next = 0;
  for (size_t i = 0; i < old_meta.segments.size(); ++i) {
    const SegmentRef& ref = old_meta.segments[i];
    const bool last = i + 1 == old_meta.segments.size();
    size_t end = next;
    while (end < updates.size() &&
           (last || updates[end].started_at < old_meta.segments[i + 1].first_started_at)) {
      ++end;
    }
    std::span<const ViewingRecord> assigned = updates.subspan(next, end - next);
    next = end;
    const bool wholly_expired = TtlExpired(ref.max_event_time, in.ttl_ms, in.now);
    const bool leaves = ref.first_started_at < in.drop_before;
    if (assigned.empty() && !leaves) {
      if (wholly_expired) {
        plan.replaced.push_back(ref.id);
        continue;
      }
      plan.meta.segments.push_back(ref);
      plan.bytes.push_back(in.current->segments[i]);
      if (in.summarize) {
        STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> records, decode(i));
        for (const auto& r : records) {
          if (!expired(r)) in.summarize->Add(r);
        }
      }
      continue;
    }
    plan.replaced.push_back(ref.id);
    if (assigned.empty() && (wholly_expired ||
                             (ref.last_started_at < in.drop_before && !in.collect_removed))) {
      continue;  // leaves whole, unread
    }
    STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> records, decode(i));
    MergeRecords(&records, assigned);
    settle(records);
  }
  if (old_meta.segments.empty() && !updates.empty()) {
    std::vector<ViewingRecord> records(updates.begin(), updates.end());
    settle(records);
  }
  plan.changed = !plan.replaced.empty() || !plan.fresh.empty();
  plan.meta.garbage = plan.replaced;
  if (in.ttl_ms > 0) {
    for (const auto& ref : plan.meta.segments) {
      plan.expire_at = std::max(plan.expire_at, ref.max_event_time + in.ttl_ms);
    }
  }
  return plan;
}

}  // namespace strata::viewing
