#include "strata/viewing/history_cache.h"

#include <algorithm>

namespace strata::viewing {

size_t CachedHistory::ApproximateBytes() const {
  size_t n = sizeof(CachedHistory) +
             (compressed ? compressed->bytes + compressed->meta.segments.size() * 64 : 0);
  for (const auto& r : Live()) {
    n += sizeof(ViewingRecord) + (r.session.size() > 15 ? r.session.size() : 0);
  }
  return n;
}

namespace {

// The entry's live records, writable. `*is_private` says whether only the cache can hold
// this vector (it was copied since the cache last handed it to a reader or took it in from
// a caller); if not, it is copied first and readers keep the old one, which is never
// changed once shared -- no reference counts are inspected, so no memory-order subtlety.
// Every vector here was created non-const by make_shared, so the const_cast is sound.
std::vector<ViewingRecord>& MutableLive(CachedHistory& h, bool* is_private) {
  if (!h.live || !*is_private) {
    h.live = h.live ? std::make_shared<std::vector<ViewingRecord>>(*h.live)
                    : std::make_shared<std::vector<ViewingRecord>>();
    *is_private = true;
  }
  return const_cast<std::vector<ViewingRecord>&>(*h.live);
}

}  // namespace

void MergeRecord(std::vector<ViewingRecord>* records, const ViewingRecord& update) {
  auto it = std::lower_bound(
      records->begin(), records->end(), update,
      [](const ViewingRecord& a, const ViewingRecord& b) { return PlaybackKey(a) < PlaybackKey(b); });
  if (it != records->end() && PlaybackKey(*it) == PlaybackKey(update)) {
    if (update.event_time >= it->event_time) *it = update;
    return;
  }
  records->insert(it, update);
}

void MergeRecords(std::vector<ViewingRecord>* records, std::span<const ViewingRecord> updates) {
  if (updates.empty()) return;
  if (updates.size() == 1) {
    MergeRecord(records, updates[0]);
    return;
  }
  // Sort the updates by key, then keep the latest event of each key. Updates that are
  // already sorted with unique keys (a cache entry's live rows, as reads pass them) skip it.
  std::vector<const ViewingRecord*> sorted;
  sorted.reserve(updates.size());
  for (const auto& u : updates) sorted.push_back(&u);
  const bool strictly_sorted =
      std::adjacent_find(updates.begin(), updates.end(),
                         [](const ViewingRecord& a, const ViewingRecord& b) {
                           return !(PlaybackKey(a) < PlaybackKey(b));
                         }) == updates.end();
  if (!strictly_sorted) std::sort(sorted.begin(), sorted.end(), [](const ViewingRecord* a, const ViewingRecord* b) {
    auto ka = PlaybackKey(*a), kb = PlaybackKey(*b);
    if (ka != kb) return ka < kb;
    return a->event_time < b->event_time;
  });
  size_t w = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (w > 0 && PlaybackKey(*sorted[w - 1]) == PlaybackKey(*sorted[i])) {
      sorted[w - 1] = sorted[i];  // later event_time (sorted ascending)
    } else {
      sorted[w++] = sorted[i];
    }
  }
  sorted.resize(w);

  std::vector<ViewingRecord> out;
  out.reserve(records->size() + sorted.size());
  auto it = records->begin();
  for (const ViewingRecord* u : sorted) {
    while (it != records->end() && PlaybackKey(*it) < PlaybackKey(*u)) out.push_back(std::move(*it++));
    if (it != records->end() && PlaybackKey(*it) == PlaybackKey(*u)) {
      out.push_back(u->event_time >= it->event_time ? *u : std::move(*it));
      ++it;
    } else {
      out.push_back(*u);
    }
  }
  while (it != records->end()) out.push_back(std::move(*it++));
  *records = std::move(out);
}

HistoryCache::HistoryCache(size_t capacity_bytes, MetricsRegistry* metrics)
    : capacity_per_shard_(std::max<size_t>(capacity_bytes / kShards, 1)),
      generations_(new uint64_t[kStripes]()) {
  hits_ = metrics->GetCounter("strata_viewing_cache_hits_total",
                              "History cache lookups answered from memory");
  misses_ = metrics->GetCounter("strata_viewing_cache_misses_total",
                                "History cache lookups that read the store");
  evictions_ = metrics->GetCounter("strata_viewing_cache_evictions_total",
                                   "History cache entries evicted to stay within budget");
  write_fills_ = metrics->GetCounter(
      "strata_viewing_cache_write_fills_total",
      "History cache entries installed by a roll-up (not by a read's miss)");
}

std::optional<CachedHistory> HistoryCache::Get(int data_type, uint64_t member,
                                               uint64_t* generation) {
  Key k{data_type, member};
  size_t stripe = StripeOf(k);
  ShardState& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) {
    *generation = generations_[stripe];
    misses_->Inc();
    return std::nullopt;
  }
  s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
  hits_->Inc();
  it->second.live_private = false;  // the reader shares the live vector from now on
  return it->second.history;
}

std::shared_ptr<const CompressedHistory> HistoryCache::PeekCompressed(int data_type,
                                                                     uint64_t member) {
  Key k{data_type, member};
  ShardState& s = ShardOf(StripeOf(k));
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) return nullptr;
  return it->second.history.compressed;
}

void HistoryCache::RemoveLocked(ShardState& s, const Key& k) {
  auto it = s.map.find(k);
  if (it == s.map.end()) return;
  s.bytes -= it->second.bytes;
  s.lru.erase(it->second.lru);
  s.map.erase(it);
}

void HistoryCache::SetSlotLocked(ShardState& s, const Key& k, CachedHistory entry,
                                 bool live_private) {
  RemoveLocked(s, k);
  size_t bytes = entry.ApproximateBytes();
  if (bytes > capacity_per_shard_) return;  // too large to cache at all
  s.lru.push_front(k);
  Slot slot{std::move(entry), bytes, s.lru.begin(), live_private};
  s.map.emplace(k, std::move(slot));
  s.bytes += bytes;
  EvictLocked(s);
}

void HistoryCache::EvictLocked(ShardState& s) {
  while (s.bytes > capacity_per_shard_ && !s.lru.empty()) {
    Key victim = s.lru.back();
    auto it = s.map.find(victim);
    s.bytes -= it->second.bytes;
    s.map.erase(it);
    s.lru.pop_back();
    evictions_->Inc();
  }
}

void HistoryCache::FillIfUnchanged(int data_type, uint64_t member, uint64_t generation,
                                   CachedHistory entry) {
  Key k{data_type, member};
  size_t stripe = StripeOf(k);
  ShardState& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  if (generations_[stripe] != generation) return;
  if (s.map.count(k)) return;
  SetSlotLocked(s, k, std::move(entry));
}

void HistoryCache::MergeWrites(int data_type, uint64_t member,
                               std::span<const ViewingRecord* const> records) {
  Key k{data_type, member};
  size_t stripe = StripeOf(k);
  ShardState& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  ++generations_[stripe];
  auto it = s.map.find(k);
  if (it == s.map.end()) return;
  Slot& slot = it->second;
  size_t added = 0;
  std::vector<ViewingRecord>& live = MutableLive(slot.history, &slot.live_private);
  for (const ViewingRecord* r : records) {
    live.push_back(*r);
    added += sizeof(ViewingRecord);
  }
  slot.bytes += added;
  s.bytes += added;
  s.lru.splice(s.lru.begin(), s.lru, slot.lru);
  EvictLocked(s);
}

void HistoryCache::Replace(int data_type, uint64_t member, CachedHistory entry) {
  Key k{data_type, member};
  size_t stripe = StripeOf(k);
  ShardState& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  ++generations_[stripe];
  SetSlotLocked(s, k, std::move(entry));
}

void HistoryCache::ReplaceCompressed(int data_type, uint64_t member,
                                     std::shared_ptr<const CompressedHistory> compressed) {
  Key k{data_type, member};
  size_t stripe = StripeOf(k);
  ShardState& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  ++generations_[stripe];
  auto it = s.map.find(k);
  if (it == s.map.end()) return;
  CachedHistory entry = std::move(it->second.history);
  entry.compressed = std::move(compressed);
  SetSlotLocked(s, k, std::move(entry), it->second.live_private);
}

void HistoryCache::CommitLiveMove(int data_type, uint64_t member,
                                  std::shared_ptr<const CompressedHistory> compressed,
                                  std::span<const ViewingRecord> moved,
                                  bool install_if_absent) {
  Key k{data_type, member};
  size_t stripe = StripeOf(k);
  ShardState& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  ++generations_[stripe];
  auto it = s.map.find(k);
  if (it == s.map.end()) {
    if (install_if_absent && compressed && s.bytes < capacity_per_shard_ / 2) {
      CachedHistory entry;
      entry.compressed = std::move(compressed);
      SetSlotLocked(s, k, std::move(entry));
      write_fills_->Inc();
    }
    return;
  }
  CachedHistory entry = std::move(it->second.history);
  bool live_private = it->second.live_private;
  if (compressed) entry.compressed = std::move(compressed);
  if (entry.live) std::erase_if(MutableLive(entry, &live_private), [&](const ViewingRecord& r) {
    auto m = std::lower_bound(moved.begin(), moved.end(), r,
                              [](const ViewingRecord& a, const ViewingRecord& b) {
                                return PlaybackKey(a) < PlaybackKey(b);
                              });
    return m != moved.end() && PlaybackKey(*m) == PlaybackKey(r) &&
           r.event_time <= m->event_time;
  });
  SetSlotLocked(s, k, std::move(entry), live_private);
}

void HistoryCache::Erase(int data_type, uint64_t member) {
  Key k{data_type, member};
  size_t stripe = StripeOf(k);
  ShardState& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  ++generations_[stripe];
  RemoveLocked(s, k);
}

size_t HistoryCache::bytes() const {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.bytes;
  }
  return n;
}

size_t HistoryCache::Clear() {
  size_t dropped = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    dropped += s.map.size();
    s.map.clear();
    s.lru.clear();
    s.bytes = 0;
  }
  return dropped;
}

size_t HistoryCache::entries() const {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    n += s.map.size();
  }
  return n;
}

}  // namespace strata::viewing
