// LruCache: the in-process Cache -- N shards, each a mutex, a hash map and an LRU list,
// bounded in bytes. Only its tests construct it today: the server's viewing caches are
// HistoryCache and SummaryCache (docs/queue-and-cache.md).
//
// Each item is charged key size + value size + kLruEntryOverheadBytes; a shard holds at most
// capacity_bytes / shards, and storing past that evicts its least recently used items (a
// read or a store makes an item most recent). An item larger than one shard's budget is not
// kept (the Set succeeds and the key then misses, as a cache may forget anything). Expiry is
// exact against the Clock: an expired item is a miss and is dropped when met.
//
// Metrics (registry in the options): strata_cache_hits_total{cache},
// strata_cache_misses_total{cache}, strata_cache_evictions_total{cache} (items pushed out
// for room, not expired ones).
//
// Thread safety: every method is thread-safe; operations on different shards do not contend.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/store/cache.h"

namespace strata::store {

// Bookkeeping bytes charged per item on top of its key and value (list node, map entry,
// strings' headers).
inline constexpr size_t kLruEntryOverheadBytes = 96;

struct LruCacheOptions {
  // Bytes of every item together (see the charge above). Must be > 0. Default 64 MiB.
  size_t capacity_bytes = size_t{64} << 20;
  // Independent shards (locks), 1..1024. Default 16.
  int shards = 16;
  // Decides expiry. Must outlive the cache. nullptr = SystemClock::Default().
  Clock* clock = nullptr;
  // Where hit/miss/eviction counters go. nullptr = MetricsRegistry::Default().
  MetricsRegistry* metrics = nullptr;
  // The `cache` label of the metrics, e.g. "viewing". [a-z0-9_]+. Default "default".
  std::string name = "default";
};

class LruCache final : public Cache {
 public:
  static absl::StatusOr<std::unique_ptr<LruCache>> Create(LruCacheOptions options = {});
  ~LruCache() override;

  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  absl::StatusOr<std::string> Get(std::string_view key) override;
  absl::StatusOr<CacheItem> Gets(std::string_view key) override;
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      std::span<const std::string> keys) override;
  absl::Status Set(std::string_view key, std::string_view value, Millis ttl_ms = 0) override;
  absl::Status Add(std::string_view key, std::string_view value, Millis ttl_ms = 0) override;
  absl::Status CompareAndSet(std::string_view key, std::string_view value, uint64_t cas,
                             Millis ttl_ms = 0) override;
  absl::Status Delete(std::string_view key) override;

  // Bytes charged by the items held now (including expired ones not yet dropped).
  size_t ChargedBytes() const;
  size_t ItemCount() const;

 private:
  class Shard;
  enum class StoreMode { kSet, kAdd, kCas };

  LruCache(LruCacheOptions options, Clock* clock, MetricsRegistry* metrics);
  Shard& ShardFor(std::string_view key) const;
  absl::StatusOr<CacheItem> Lookup(std::string_view key);
  absl::Status Store(StoreMode mode, std::string_view key, std::string_view value, uint64_t cas,
                     Millis ttl_ms);

  const LruCacheOptions options_;
  Clock* const clock_;
  Counter* hits_;
  Counter* misses_;
  Counter* evictions_;
  std::atomic<uint64_t> next_cas_{1};  // CAS tokens, unique across shards
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace strata::store
