#include "strata/store/lru_cache.h"

#include <functional>
#include <list>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "strata/base/status.h"

namespace strata::store {

class LruCache::Shard {
 public:
  struct Entry {
    std::string key;
    std::string value;
    Millis expire_at = 0;  // 0 = never
    uint64_t cas = 0;
    size_t charge = 0;
  };

  explicit Shard(size_t capacity) : capacity_(capacity) {}

  std::mutex mu;
  // Most recently used first.
  std::list<Entry> lru;                                               // guarded by mu
  std::unordered_map<std::string, std::list<Entry>::iterator> index;  // guarded by mu
  size_t charged = 0;                                                 // guarded by mu

  size_t capacity() const { return capacity_; }

  // The live entry of `key`, made most recent; expired entries are dropped. Requires mu.
  Entry* FindLocked(std::string_view key, Millis now) {
    auto it = index.find(std::string(key));
    if (it == index.end()) return nullptr;
    if (it->second->expire_at != 0 && it->second->expire_at <= now) {
      EraseLocked(it);
      return nullptr;
    }
    lru.splice(lru.begin(), lru, it->second);
    return &*it->second;
  }

  void EraseLocked(std::unordered_map<std::string, std::list<Entry>::iterator>::iterator it) {
    charged -= it->second->charge;
    lru.erase(it->second);
    index.erase(it);
  }

  void EraseLocked(std::string_view key) {
    auto it = index.find(std::string(key));
    if (it != index.end()) EraseLocked(it);
  }

 private:
  const size_t capacity_;
};

absl::StatusOr<std::unique_ptr<LruCache>> LruCache::Create(LruCacheOptions options) {
  if (options.capacity_bytes == 0) {
    return absl::InvalidArgumentError("capacity_bytes: must be > 0");
  }
  if (options.shards < 1 || options.shards > 1024) {
    return absl::InvalidArgumentError("shards: must be 1..1024");
  }
  bool name_ok = !options.name.empty();
  for (char c : options.name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) name_ok = false;
  }
  if (!name_ok) return absl::InvalidArgumentError("name: must be [a-z0-9_]+");
  Clock* clock = options.clock != nullptr ? options.clock : SystemClock::Default();
  MetricsRegistry* metrics =
      options.metrics != nullptr ? options.metrics : MetricsRegistry::Default();
  return std::unique_ptr<LruCache>(new LruCache(std::move(options), clock, metrics));
}

LruCache::LruCache(LruCacheOptions options, Clock* clock, MetricsRegistry* metrics)
    : options_(std::move(options)), clock_(clock) {
  const std::string labels = "cache=\"" + options_.name + "\"";
  hits_ = metrics->GetCounter("strata_cache_hits_total", "Cache reads that found the item", labels);
  misses_ = metrics->GetCounter("strata_cache_misses_total", "Cache reads that found no live item",
                                labels);
  evictions_ = metrics->GetCounter("strata_cache_evictions_total",
                                   "Cache items pushed out to make room", labels);
  const size_t per_shard = std::max<size_t>(1, options_.capacity_bytes / options_.shards);
  for (int i = 0; i < options_.shards; ++i) shards_.push_back(std::make_unique<Shard>(per_shard));
}

LruCache::~LruCache() = default;

LruCache::Shard& LruCache::ShardFor(std::string_view key) const {
  // Mix the hash so that shard choice does not follow the low bits of similar keys.
  uint64_t h = std::hash<std::string_view>()(key);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return *shards_[h % shards_.size()];
}

absl::StatusOr<CacheItem> LruCache::Lookup(std::string_view key) {
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  Shard::Entry* entry = shard.FindLocked(key, clock_->NowMillis());
  if (entry == nullptr) {
    misses_->Inc();
    return absl::NotFoundError("cache miss");
  }
  hits_->Inc();
  return CacheItem{entry->value, entry->cas};
}

absl::StatusOr<std::string> LruCache::Get(std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateCacheKey(key));
  STRATA_ASSIGN_OR_RETURN(CacheItem item, Lookup(key));
  return std::move(item.value);
}

absl::StatusOr<CacheItem> LruCache::Gets(std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateCacheKey(key));
  return Lookup(key);
}

absl::StatusOr<std::vector<std::optional<std::string>>> LruCache::MultiGet(
    std::span<const std::string> keys) {
  STRATA_RETURN_IF_ERROR(ValidateMultiGet(keys));
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (const std::string& key : keys) {
    absl::StatusOr<CacheItem> item = Lookup(key);
    if (item.ok()) {
      out.emplace_back(std::move(item->value));
    } else {
      out.emplace_back(std::nullopt);
    }
  }
  return out;
}

absl::Status LruCache::Set(std::string_view key, std::string_view value, Millis ttl_ms) {
  return Store(StoreMode::kSet, key, value, 0, ttl_ms);
}

absl::Status LruCache::Add(std::string_view key, std::string_view value, Millis ttl_ms) {
  return Store(StoreMode::kAdd, key, value, 0, ttl_ms);
}

absl::Status LruCache::CompareAndSet(std::string_view key, std::string_view value, uint64_t cas,
                                     Millis ttl_ms) {
  return Store(StoreMode::kCas, key, value, cas, ttl_ms);
}

absl::Status LruCache::Store(StoreMode mode, std::string_view key, std::string_view value,
                             uint64_t cas, Millis ttl_ms) {
  STRATA_RETURN_IF_ERROR(ValidateCacheWrite(key, value, ttl_ms));
  const Millis now = clock_->NowMillis();
  const size_t charge = key.size() + value.size() + kLruEntryOverheadBytes;
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  Shard::Entry* existing = shard.FindLocked(key, now);
  if (mode == StoreMode::kAdd && existing != nullptr) {
    return absl::AlreadyExistsError("key: already cached");
  }
  if (mode == StoreMode::kCas) {
    if (existing == nullptr) return absl::NotFoundError("key: not cached");
    if (existing->cas != cas) return absl::FailedPreconditionError("cas: item changed since read");
  }
  if (existing != nullptr) shard.EraseLocked(key);
  if (charge > shard.capacity()) return absl::OkStatus();  // too big to keep: a miss later
  while (shard.charged + charge > shard.capacity() && !shard.lru.empty()) {
    auto victim = shard.index.find(shard.lru.back().key);
    const bool expired = victim->second->expire_at != 0 && victim->second->expire_at <= now;
    shard.EraseLocked(victim);
    if (!expired) evictions_->Inc();
  }
  shard.lru.push_front(Shard::Entry{std::string(key), std::string(value),
                                    ttl_ms > 0 ? now + ttl_ms : 0,
                                    next_cas_.fetch_add(1, std::memory_order_relaxed), charge});
  shard.index[shard.lru.front().key] = shard.lru.begin();
  shard.charged += charge;
  return absl::OkStatus();
}

absl::Status LruCache::Delete(std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateCacheKey(key));
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  shard.EraseLocked(key);
  return absl::OkStatus();
}

size_t LruCache::ChargedBytes() const {
  size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    total += shard->charged;
  }
  return total;
}

size_t LruCache::ItemCount() const {
  size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard->mu);
    total += shard->index.size();
  }
  return total;
}

}  // namespace strata::store
