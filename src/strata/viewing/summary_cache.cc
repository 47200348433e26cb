#include "strata/viewing/summary_cache.h"

namespace strata::viewing {

SummaryCache::SummaryCache(size_t capacity_bytes, MetricsRegistry* metrics)
    : capacity_per_shard_(std::max<size_t>(capacity_bytes / kShards, 1)),
      generations_(new uint64_t[kStripes]()) {
  hits_ = metrics->GetCounter("strata_viewing_summary_cache_hits_total",
                              "Summary cache lookups answered from memory");
  misses_ = metrics->GetCounter("strata_viewing_summary_cache_misses_total",
                                "Summary cache lookups that read the past and historical tiers");
  metrics->AddGauge("strata_viewing_summary_cache_bytes", "Bytes held by the summary cache",
                    [this] {
                      return std::vector<std::pair<std::string, double>>{
                          {"", static_cast<double>(bytes())}};
                    });
}

std::shared_ptr<const StableSummary> SummaryCache::Get(uint64_t member, uint64_t* generation) {
  const size_t stripe = StripeOf(member);
  Shard& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(member);
  if (it == s.map.end()) {
    *generation = generations_[stripe];
    misses_->Inc();
    return nullptr;
  }
  s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
  hits_->Inc();
  return it->second.entry;
}

void SummaryCache::FillIfUnchanged(uint64_t member, uint64_t generation,
                                   std::shared_ptr<const StableSummary> entry) {
  const size_t stripe = StripeOf(member);
  Shard& s = ShardOf(stripe);
  const size_t bytes = EntryBytes(*entry);
  std::lock_guard<std::mutex> lock(s.mu);
  if (generations_[stripe] != generation || bytes > capacity_per_shard_) return;
  auto [it, inserted] = s.map.try_emplace(member);
  if (inserted) {
    s.lru.push_front(member);
    it->second.lru = s.lru.begin();
  } else {
    s.bytes -= it->second.bytes;
    s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
  }
  it->second.entry = std::move(entry);
  it->second.recent = nullptr;  // built against the old entry's boundaries
  it->second.bytes = bytes;
  s.bytes += bytes;
  EvictLocked(s, 0);
}

void SummaryCache::EvictLocked(Shard& s, size_t keep) {
  while (s.bytes > capacity_per_shard_ && s.lru.size() > keep) {
    auto victim = s.map.find(s.lru.back());
    s.bytes -= victim->second.bytes;
    s.map.erase(victim);
    s.lru.pop_back();
  }
}

std::shared_ptr<const RecentSummary> SummaryCache::GetRecent(uint64_t member) {
  Shard& s = ShardOf(StripeOf(member));
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(member);
  return it == s.map.end() ? nullptr : it->second.recent;
}

void SummaryCache::PutRecent(uint64_t member, std::shared_ptr<const RecentSummary> recent) {
  const size_t bytes = RecentBytes(recent.get());
  Shard& s = ShardOf(StripeOf(member));
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(member);
  if (it == s.map.end()) return;
  const size_t old_bytes = RecentBytes(it->second.recent.get());
  it->second.recent = std::move(recent);
  it->second.bytes += bytes - old_bytes;
  s.bytes += bytes - old_bytes;
  s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
  EvictLocked(s, 1);
}

bool SummaryCache::Contains(uint64_t member) const {
  const Shard& s = shards_[StripeOf(member) % kShards];
  std::lock_guard<std::mutex> lock(s.mu);
  return s.map.count(member) != 0;
}

void SummaryCache::Refresh(uint64_t member, std::shared_ptr<const StableSummary> stable,
                           std::shared_ptr<const RecentSummary> recent) {
  const size_t stripe = StripeOf(member);
  Shard& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  ++generations_[stripe];
  auto it = s.map.find(member);
  if (it == s.map.end()) return;
  const size_t bytes = EntryBytes(*stable) + RecentBytes(recent.get());
  s.bytes -= it->second.bytes;
  it->second.entry = std::move(stable);
  it->second.recent = std::move(recent);
  it->second.bytes = bytes;
  s.bytes += bytes;
  EvictLocked(s, 1);
}

void SummaryCache::Invalidate(uint64_t member) {
  const size_t stripe = StripeOf(member);
  Shard& s = ShardOf(stripe);
  std::lock_guard<std::mutex> lock(s.mu);
  ++generations_[stripe];
  auto it = s.map.find(member);
  if (it == s.map.end()) return;
  s.bytes -= it->second.bytes;
  s.lru.erase(it->second.lru);
  s.map.erase(it);
}

size_t SummaryCache::Clear() {
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

size_t SummaryCache::bytes() const {
  size_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mu);
    total += s.bytes;
  }
  return total;
}

}  // namespace strata::viewing
