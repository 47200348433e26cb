// SummaryCache: per member, the part of the whole-history summary that changes only when
// records rotate between tiers -- the historical tier's summary merged with the past
// tier's -- and the tier boundaries it was built with. A summary read adds the member's
// recent plays (from the history cache) to it; rotations invalidate it. With reads skewed
// towards active members, nearly every summary read is served from memory.
//
// Fills use the same generation check as HistoryCache: Invalidate bumps the member's stripe
// generation, and a fill whose load started before an invalidation is dropped, so a reader
// never caches a summary older than a committed rotation. Bounded by a byte budget with LRU
// eviction per shard. Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "strata/base/metrics.h"
#include "strata/viewing/record.h"
#include "strata/viewing/summary.h"

namespace strata::viewing {

struct StableSummary {
  Millis historical_until = INT64_MIN;  // HistoricalState::until
  Millis rotated_until = INT64_MIN;     // PastState::rotated_until
  std::vector<TitleSummary> titles;     // historical + past, ascending by title
};

// The summary of a member's recent-tier compressed version (it changes only at roll-ups and
// rotations, so reads need not decode it each time). Valid for exactly that version and
// those boundaries; live rows are added by the reader.
// One compressed segment's share of a RecentSummary. A roll-up rewrites only the segments
// it touches (new id; ids are never reused) and keeps the others, so the summary of the next
// version decodes only the new segments and reuses these for the rest.
struct SegmentSummary {
  uint64_t id = 0;        // SegmentRef::id
  uint64_t checksum = 0;  // SegmentRef::checksum
  std::vector<TitleSummary> titles;  // its records from rotated_until on
  std::vector<ViewingRecord> late;   // its records in [historical_until, rotated_until)
};

struct RecentSummary {
  uint64_t version = 0;                 // HistoryMeta::version (0 = no compressed version)
  Millis historical_until = INT64_MIN;  // records before it were ignored
  Millis rotated_until = INT64_MIN;     // records from it on are in `titles`
  std::vector<TitleSummary> titles;
  std::vector<ViewingRecord> late;      // records in [historical_until, rotated_until)
  // Per segment, when built from the segments (empty when built otherwise, e.g. by a
  // rotation's refresh): what the next version's summary may reuse.
  std::vector<std::shared_ptr<const SegmentSummary>> segments;
};

class SummaryCache {
 public:
  SummaryCache(size_t capacity_bytes, MetricsRegistry* metrics);

  // Hit: the entry. Miss: null, and *generation is set for a later FillIfUnchanged.
  std::shared_ptr<const StableSummary> Get(uint64_t member, uint64_t* generation);
  void FillIfUnchanged(uint64_t member, uint64_t generation,
                       std::shared_ptr<const StableSummary> entry);
  void Invalidate(uint64_t member);
  // Drops every entry (an operator's cold-cache test); returns how many there were.
  // Entries hold only committed state, so fills in flight stay valid and are kept.
  size_t Clear();
  // Whether the member has an entry (no hit/miss counted, no LRU change).
  bool Contains(uint64_t member) const;
  // What a rotation calls once its commits are done (under the member's exclusive lock):
  // drops in-flight fills as Invalidate does and, if the member is cached (it is being
  // read), puts the entries the rotation built in place of the old ones, so its next
  // summary read is still a hit instead of a rebuild from the tiers. `recent` may be null
  // (then the next read builds it). Members not cached stay out: a sweep rotating members
  // nobody reads does not evict the ones people do.
  void Refresh(uint64_t member, std::shared_ptr<const StableSummary> stable,
               std::shared_ptr<const RecentSummary> recent);
  // The recent part, kept beside the member's stable entry (null if none); PutRecent is a
  // no-op when the member has no stable entry.
  std::shared_ptr<const RecentSummary> GetRecent(uint64_t member);
  void PutRecent(uint64_t member, std::shared_ptr<const RecentSummary> recent);

  uint64_t hits() const { return hits_->Value(); }
  uint64_t misses() const { return misses_->Value(); }
  size_t bytes() const;

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kStripes = 4096;
  struct Slot {
    std::shared_ptr<const StableSummary> entry;
    std::shared_ptr<const RecentSummary> recent;
    size_t bytes = 0;
    std::list<uint64_t>::iterator lru;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<uint64_t, Slot> map;
    std::list<uint64_t> lru;  // front = most recent
    size_t bytes = 0;
  };
  static size_t EntryBytes(const StableSummary& e) {
    return sizeof(StableSummary) + 64 + e.titles.size() * sizeof(TitleSummary);
  }
  static size_t RecentBytes(const RecentSummary* r) {
    if (r == nullptr) return 0;
    size_t bytes = sizeof(RecentSummary) + r->titles.size() * sizeof(TitleSummary) +
                   r->late.size() * (sizeof(ViewingRecord) + 32);
    // Shared with the versions before and after; counted with each (an overestimate).
    for (const auto& s : r->segments) {
      bytes += sizeof(SegmentSummary) + 16 + s->titles.size() * sizeof(TitleSummary) +
               s->late.size() * (sizeof(ViewingRecord) + 32);
    }
    return bytes;
  }
  // Drops least recently used entries until the shard fits (keeping at least `keep`).
  void EvictLocked(Shard& s, size_t keep);
  static size_t StripeOf(uint64_t member) { return (member * 0x9E3779B97F4A7C15ull) >> 52; }
  Shard& ShardOf(size_t stripe) { return shards_[stripe % kShards]; }

  size_t capacity_per_shard_;
  Shard shards_[kShards];
  std::unique_ptr<uint64_t[]> generations_;  // guarded by the stripe's shard mutex
  Counter* hits_;
  Counter* misses_;
};

}  // namespace strata::viewing
