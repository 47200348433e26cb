// Row keys, lock stripes and segment-writing steps shared by the viewing service's files
// (roll-ups in viewing_rollup.cc, tier rotation in viewing_tiers.cc, reads in
// viewing_service.cc) and its components. Not part of the service's API.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "strata/base/coding.h"
#include "strata/base/metrics.h"
#include "strata/base/status.h"
#include "strata/store/row_store.h"
#include "strata/viewing/codec.h"
#include "strata/viewing/segment_plan.h"
#include "strata/viewing/segments.h"
#include "strata/viewing/viewing_service.h"

namespace strata::viewing::internal {

inline constexpr char kMetaKey[] = "m";

// Per-member locks and maps are striped: kLockStripes of them, the member's stripe being the
// top 12 bits of a multiplicative hash.
inline constexpr size_t kLockStripes = 4096;
inline size_t StripeOf(MemberId member) { return (member * 0x9E3779B97F4A7C15ull) >> 52; }

// A member lock held exclusively (a roll-up's or rotation's commit), timed: the time it was
// held is observed in `held` once it is released. Readers of the member (and of the other
// members of its stripe) wait that long.
class TimedExclusiveLock {
 public:
  TimedExclusiveLock(std::shared_mutex& mu, Histogram* held)
      : lock_(mu), held_(held), start_(std::chrono::steady_clock::now()) {}
  ~TimedExclusiveLock() {
    lock_.unlock();
    held_->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  TimedExclusiveLock(const TimedExclusiveLock&) = delete;
  TimedExclusiveLock& operator=(const TimedExclusiveLock&) = delete;

 private:
  std::unique_lock<std::shared_mutex> lock_;
  Histogram* held_;
  std::chrono::steady_clock::time_point start_;
};

inline std::string MemberKey(MemberId member) {
  std::string k;
  coding::PutFixed64BE(&k, member);
  return k;
}

// "s" + segment id (8 bytes BE): a member's segments sort by id, and ids at or above the
// metadata's next_segment_id (leftovers of a crashed roll-up) are one range delete.
inline std::string SegmentKey(uint64_t id) {
  std::string k = "s";
  coding::PutFixed64BE(&k, id);
  return k;
}

// Appends to *out the events of one member and kind that decide its live rows: for each
// playback (PlaybackKey) the one with the highest event_time, ties going to the later one in
// `events` (arrival order), in PlaybackKey order. Writing only these with PutIfNewer leaves
// every row as writing all of `events` would (last writer wins by event_time), with one
// memtable entry per playback instead of one per event. Leaves out's earlier elements alone.
void CoalescePlaybacks(std::span<const ViewingRecord* const> events,
                       std::vector<const ViewingRecord*>* out);

// Calls visit(clustering key, record) for each live row of the member whose started_at is
// >= live_from (INT64_MIN: all, INT64_MAX: none) and whose clustering key is < end_key
// (empty: no bound), in key order, page by page.
inline absl::Status ScanLiveRows(
    store::Table* live, MemberId member, Kind kind, Millis live_from,
    const std::function<absl::Status(std::string&& key, ViewingRecord&& record)>& visit,
    std::string end_key = "") {
  if (live_from == INT64_MAX) return absl::OkStatus();
  store::ScanOptions scan;
  if (live_from != INT64_MIN) scan.start = LiveClusteringKey(live_from, "");
  scan.end = std::move(end_key);
  const std::string partition = MemberKey(member);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(store::ScanPage page, live->Scan(partition, scan));
    for (auto& row : page.rows) {
      ViewingRecord r;
      r.member = member;
      r.kind = kind;
      STRATA_RETURN_IF_ERROR(ParseLiveClusteringKey(row.clustering, &r.started_at, &r.session));
      STRATA_RETURN_IF_ERROR(DecodeLiveValue(row.value, &r));
      STRATA_RETURN_IF_ERROR(visit(std::move(row.clustering), std::move(r)));
    }
    if (page.next_cursor.empty()) return absl::OkStatus();
    scan.cursor = std::move(page.next_cursor);
  }
}

// Writes a plan's fresh segments, after clearing what a crashed earlier attempt may have
// left: segments with ids >= the committed next_segment_id (unreferenced) and the committed
// version's garbage list. Leftovers are found with a scan and point-deleted: a range delete
// per roll-up would leave thousands of range tombstones in the memtable, which every read
// must fragment.
inline absl::Status WritePlannedSegments(store::Table* table, const std::string& partition,
                                  const HistoryMeta& old_meta, const SegmentPlan& plan) {
  store::WriteBatch writes;
  store::ScanOptions leftovers;
  leftovers.start = SegmentKey(old_meta.next_segment_id);
  leftovers.end = "t";
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(store::ScanPage page, table->Scan(partition, leftovers));
    for (auto& row : page.rows) writes.Delete(std::move(row.clustering));
    if (page.next_cursor.empty()) break;
    leftovers.cursor = std::move(page.next_cursor);
  }
  for (uint64_t id : old_meta.garbage) writes.Delete(SegmentKey(id));
  for (size_t k = 0; k < plan.fresh.size(); ++k) {
    writes.Put(SegmentKey(plan.meta.segments[plan.fresh_slot[k]].id), plan.fresh[k].bytes,
               plan.expire_at);
  }
  if (writes.empty()) return absl::OkStatus();
  return table->Apply(partition, writes);
}

inline absl::Status DeleteSegments(store::Table* table, const std::string& partition,
                            const std::vector<uint64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  store::WriteBatch garbage;
  for (uint64_t id : ids) garbage.Delete(SegmentKey(id));
  return table->Apply(partition, garbage);
}

// The committed version a plan describes, as the cache holds it (fresh segments' bytes
// moved in; kept segments not loaded stay null and are read on demand).
inline std::shared_ptr<const CompressedHistory> CommittedHistory(SegmentPlan&& plan) {
  auto committed = std::make_shared<CompressedHistory>();
  committed->meta = std::move(plan.meta);
  for (size_t k = 0; k < plan.fresh.size(); ++k) {
    plan.bytes[plan.fresh_slot[k]] =
        std::make_shared<const std::string>(std::move(plan.fresh[k].bytes));
  }
  committed->segments = std::move(plan.bytes);
  for (const auto& b : committed->segments) {
    if (b) committed->bytes += b->size();
  }
  return committed;
}

}  // namespace strata::viewing::internal

namespace strata::viewing {

// One data-type shard (plays or previews) of the recent tier.
struct ViewingService::Shard {
  int index;
  Kind kind;
  store::Table* live = nullptr;
  store::Table* compressed = nullptr;
  Millis ttl_ms = 0;
  // Approximate live rows per member, to decide when to queue a roll-up.
  struct LiveCount {
    uint64_t rows = 0;
    uint64_t trigger_at = 0;
    // No live row of the member starts before this: scans of its live rows seek here,
    // skipping the tombstones that earlier roll-ups left. INT64_MIN = unknown (after a
    // restart): scan from the start. Only ever lowered by writes; set by roll-ups.
    Millis live_from = INT64_MIN;
    // The least started_at written since the last MarkLiveWrites (INT64_MAX: none): what a
    // roll-up or rotation, which read the live rows after marking, may not have seen.
    Millis written_min = INT64_MAX;
    // Clock time of the oldest live write no roll-up has covered yet (0: none): once it is
    // rollup_max_live_age_ms old the member is rolled up whatever its live row count.
    Millis unrolled_since = 0;
  };
  std::mutex counts_mu;
  std::unordered_map<MemberId, LiveCount> counts;
};

}  // namespace strata::viewing
