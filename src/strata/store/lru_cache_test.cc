#include "strata/store/lru_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "strata/store/cache_conformance.h"

namespace strata::store {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Cache> MakeLru(ManualClock* clock, int shards) {
  LruCacheOptions options;
  options.clock = clock;
  options.metrics = nullptr;  // the process registry: the suite does not read metrics
  options.shards = shards;
  options.capacity_bytes = size_t{32} << 20;
  absl::StatusOr<std::unique_ptr<LruCache>> cache = LruCache::Create(options);
  if (!cache.ok()) {
    ADD_FAILURE() << cache.status();
    return nullptr;
  }
  return std::move(*cache);
}

INSTANTIATE_CACHE_CONFORMANCE(Lru, false, [](ManualClock* clock) { return MakeLru(clock, 16); });
// One shard: every operation contends on one lock.
INSTANTIATE_CACHE_CONFORMANCE(LruOneShard, false,
                              [](ManualClock* clock) { return MakeLru(clock, 1); });

class LruCacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<LruCache> Make(size_t capacity, int shards = 1) {
    LruCacheOptions options;
    options.clock = &clock_;
    options.metrics = &metrics_;
    options.capacity_bytes = capacity;
    options.shards = shards;
    options.name = "test";
    absl::StatusOr<std::unique_ptr<LruCache>> cache = LruCache::Create(options);
    EXPECT_TRUE(cache.ok()) << cache.status();
    return cache.ok() ? std::move(*cache) : nullptr;
  }
  std::string Metric(const std::string& name) {
    const std::string text = metrics_.RenderPrometheus();
    const std::string prefix = name + "{cache=\"test\"} ";
    size_t at = text.find(prefix);
    if (at == std::string::npos) return "<absent>";
    return text.substr(at + prefix.size(), text.find('\n', at) - at - prefix.size());
  }

  ManualClock clock_;
  MetricsRegistry metrics_;
};

TEST_F(LruCacheTest, CreateRejectsBadOptions) {
  LruCacheOptions options;
  options.capacity_bytes = 0;
  EXPECT_THAT(LruCache::Create(options).status().ToString(), HasSubstr("capacity_bytes"));
  options = {};
  options.shards = 0;
  EXPECT_THAT(LruCache::Create(options).status().ToString(), HasSubstr("shards"));
  options.shards = 1025;
  EXPECT_THAT(LruCache::Create(options).status().ToString(), HasSubstr("shards"));
  options = {};
  options.name = "Bad Name";
  EXPECT_THAT(LruCache::Create(options).status().ToString(), HasSubstr("name"));
}

TEST_F(LruCacheTest, EvictsLeastRecentlyUsedWithinTheByteBudget) {
  // Room for exactly four items of this size.
  const std::string value(100, 'v');
  const size_t charge = 2 + value.size() + kLruEntryOverheadBytes;  // keys "k0".."k9"
  std::unique_ptr<LruCache> cache = Make(4 * charge);
  ASSERT_NE(cache, nullptr);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(cache->Set("k" + std::to_string(i), value).ok());
  EXPECT_EQ(cache->ItemCount(), 4u);
  EXPECT_EQ(cache->ChargedBytes(), 4 * charge);
  ASSERT_TRUE(cache->Get("k0").ok());  // k0 is now the most recent; k1 the least
  ASSERT_TRUE(cache->Set("k4", value).ok());
  EXPECT_TRUE(absl::IsNotFound(cache->Get("k1").status()));
  EXPECT_TRUE(cache->Get("k0").ok());
  EXPECT_TRUE(cache->Get("k4").ok());
  EXPECT_EQ(Metric("strata_cache_evictions_total"), "1");
  for (int i = 5; i < 10; ++i) ASSERT_TRUE(cache->Set("k" + std::to_string(i), value).ok());
  EXPECT_EQ(cache->ItemCount(), 4u);
  EXPECT_LE(cache->ChargedBytes(), 4 * charge);
  EXPECT_EQ(Metric("strata_cache_evictions_total"), "6");
  // Replacing an item re-charges it rather than adding a second charge.
  ASSERT_TRUE(cache->Set("k9", "small").ok());
  EXPECT_EQ(cache->ItemCount(), 4u);
  EXPECT_EQ(cache->ChargedBytes(), 3 * charge + 2 + 5 + kLruEntryOverheadBytes);
}

TEST_F(LruCacheTest, ItemsLargerThanAShardAreNotKept) {
  std::unique_ptr<LruCache> cache = Make(1000);
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(cache->Set("big", "old").ok());
  EXPECT_TRUE(cache->Set("big", std::string(2000, 'x')).ok());
  EXPECT_TRUE(absl::IsNotFound(cache->Get("big").status())) << "not the old value either";
  EXPECT_EQ(cache->ChargedBytes(), 0u);
}

TEST_F(LruCacheTest, ExpiredItemsAreDroppedWithoutCountingAsEvictions) {
  const std::string value(100, 'v');
  const size_t charge = 2 + value.size() + kLruEntryOverheadBytes;
  std::unique_ptr<LruCache> cache = Make(2 * charge);
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(cache->Set("k0", value, 10).ok());
  ASSERT_TRUE(cache->Set("k1", value, 10).ok());
  clock_.Advance(10);
  ASSERT_TRUE(cache->Set("k2", value).ok());
  ASSERT_TRUE(cache->Set("k3", value).ok());
  EXPECT_EQ(Metric("strata_cache_evictions_total"), "0");
  EXPECT_EQ(cache->ItemCount(), 2u);
}

TEST_F(LruCacheTest, CountsHitsAndMisses) {
  std::unique_ptr<LruCache> cache = Make(1 << 20, 4);
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(cache->Set("a", "1").ok());
  ASSERT_TRUE(cache->Get("a").ok());
  ASSERT_TRUE(cache->Gets("a").ok());
  EXPECT_FALSE(cache->Get("b").ok());
  ASSERT_TRUE(cache->MultiGet(std::vector<std::string>{"a", "b", "c"}).ok());
  EXPECT_EQ(Metric("strata_cache_hits_total"), "3");
  EXPECT_EQ(Metric("strata_cache_misses_total"), "3");
}

}  // namespace
}  // namespace strata::store
