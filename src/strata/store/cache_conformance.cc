#include "strata/store/cache_conformance.h"

#include <gmock/gmock.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

namespace strata::store::testing {

CacheConformanceParam MakeCacheConformanceParam(std::string name, bool real_clock,
                                                CacheFactory factory, CacheSkipCheck skip_check) {
  return CacheConformanceParam{std::move(name), real_clock, std::move(factory),
                               std::move(skip_check)};
}

void CacheConformanceTest::SetUp() {
  if (GetParam().skip_check) {
    const std::string reason = GetParam().skip_check();
    if (!reason.empty()) GTEST_SKIP() << reason;
  }
  cache_ = GetParam().factory(&clock_);
  ASSERT_NE(cache_, nullptr) << "factory returned no cache";
}

void CacheConformanceTest::TearDown() { cache_.reset(); }

void CacheConformanceTest::AdvanceTime(Millis ms) {
  clock_.Advance(ms);
  if (GetParam().real_clock) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

constexpr char kMiss[] = "<miss>";

std::string GetOr(Cache* cache, std::string_view key) {
  absl::StatusOr<std::string> value = cache->Get(key);
  if (value.ok()) return *value;
  if (absl::IsNotFound(value.status())) return kMiss;
  return "<error " + value.status().ToString() + ">";
}

void ExpectInvalid(const absl::Status& status, const std::string& field) {
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(field + ":")) << status;
}

TEST_P(CacheConformanceTest, SetGetOverwriteDelete) {
  EXPECT_EQ(GetOr(cache_.get(), "member:1"), kMiss);
  ASSERT_TRUE(cache_->Set("member:1", "v1").ok());
  EXPECT_EQ(GetOr(cache_.get(), "member:1"), "v1");
  ASSERT_TRUE(cache_->Set("member:1", "v2").ok());
  EXPECT_EQ(GetOr(cache_.get(), "member:1"), "v2");
  ASSERT_TRUE(cache_->Set("member:2", "other").ok());
  ASSERT_TRUE(cache_->Delete("member:1").ok());
  EXPECT_EQ(GetOr(cache_.get(), "member:1"), kMiss);
  EXPECT_EQ(GetOr(cache_.get(), "member:2"), "other");
  EXPECT_TRUE(cache_->Delete("member:1").ok()) << "deleting an absent key is OK";
  EXPECT_TRUE(cache_->Delete("never-set").ok());
}

TEST_P(CacheConformanceTest, ValuesAreBinarySafeUpToTheLimit) {
  const std::string binary("\0\r\nEND\r\n\xff\x01", 11);
  ASSERT_TRUE(cache_->Set("bin", binary).ok());
  EXPECT_EQ(GetOr(cache_.get(), "bin"), binary);
  ASSERT_TRUE(cache_->Set("empty", "").ok());
  EXPECT_EQ(GetOr(cache_.get(), "empty"), "");
  std::string big(kMaxCacheValueBytes, 'x');
  big[12345] = '\0';
  ASSERT_TRUE(cache_->Set("big", big).ok());
  EXPECT_EQ(GetOr(cache_.get(), "big"), big);
  const std::string longest_key(kMaxCacheKeyBytes, 'k');
  ASSERT_TRUE(cache_->Set(longest_key, "long").ok());
  EXPECT_EQ(GetOr(cache_.get(), longest_key), "long");
  EXPECT_EQ(GetOr(cache_.get(), std::string(kMaxCacheKeyBytes - 1, 'k')), kMiss);
}

TEST_P(CacheConformanceTest, MultiGetKeepsOrderAndMarksMisses) {
  ASSERT_TRUE(cache_->Set("a", "1").ok());
  ASSERT_TRUE(cache_->Set("c", "3").ok());
  std::vector<std::string> keys = {"a", "b", "c", "a", "zz"};
  absl::StatusOr<std::vector<std::optional<std::string>>> got = cache_->MultiGet(keys);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got,
              ElementsAre(Optional(std::string("1")), std::nullopt, Optional(std::string("3")),
                          Optional(std::string("1")), std::nullopt));
  absl::StatusOr<std::vector<std::optional<std::string>>> none =
      cache_->MultiGet(std::span<const std::string>());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  // Many keys at once (a whole page of members).
  std::vector<std::string> many;
  for (int i = 0; i < 300; ++i) {
    many.push_back("m" + std::to_string(i));
    if (i % 3 == 0) {
      ASSERT_TRUE(cache_->Set(many.back(), "v" + std::to_string(i)).ok());
    }
  }
  got = cache_->MultiGet(many);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), many.size());
  for (int i = 0; i < 300; ++i) {
    if (i % 3 == 0) {
      EXPECT_THAT((*got)[i], Optional("v" + std::to_string(i))) << i;
    } else {
      EXPECT_EQ((*got)[i], std::nullopt) << i;
    }
  }
}

TEST_P(CacheConformanceTest, MultiGetOfTheMostKeysAtTheLongestLength) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < kMaxMultiGetKeys; ++i) {
    std::string key(kMaxCacheKeyBytes, 'k');
    const std::string suffix = std::to_string(i);
    key.replace(key.size() - suffix.size(), suffix.size(), suffix);
    keys.push_back(std::move(key));
    if (i % 2 == 1) {
      ASSERT_TRUE(cache_->Set(keys.back(), suffix).ok());
    }
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> got = cache_->MultiGet(keys);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), keys.size());
  size_t hits = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i % 2 == 1) {
      EXPECT_THAT((*got)[i], Optional(std::to_string(i))) << i;
      hits += (*got)[i].has_value();
    } else {
      EXPECT_EQ((*got)[i], std::nullopt) << i;
    }
  }
  EXPECT_EQ(hits, kMaxMultiGetKeys / 2);
}

TEST_P(CacheConformanceTest, TtlExpiresItems) {
  ASSERT_TRUE(cache_->Set("short", "s", 3000).ok());
  ASSERT_TRUE(cache_->Set("forever", "f").ok());
  ASSERT_TRUE(cache_->Set("reset", "r", 3000).ok());
  ASSERT_TRUE(cache_->Set("reset", "r2").ok());  // a Set without TTL clears the old one
  EXPECT_EQ(GetOr(cache_.get(), "short"), "s");
  if (!GetParam().real_clock) {
    AdvanceTime(2999);
    EXPECT_EQ(GetOr(cache_.get(), "short"), "s");
    AdvanceTime(1);
    EXPECT_EQ(GetOr(cache_.get(), "short"), kMiss) << "exact expiry against the clock";
  } else {
    // Second resolution: at most a second late.
    AdvanceTime(4200);
    EXPECT_EQ(GetOr(cache_.get(), "short"), kMiss);
  }
  EXPECT_EQ(GetOr(cache_.get(), "forever"), "f");
  EXPECT_EQ(GetOr(cache_.get(), "reset"), "r2");
  absl::StatusOr<std::vector<std::optional<std::string>>> got =
      cache_->MultiGet(std::vector<std::string>{"short", "forever"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre(std::nullopt, Optional(std::string("f"))));
  EXPECT_TRUE(absl::IsNotFound(cache_->Gets("short").status()));
  // An expired item is absent for Add and CompareAndSet too.
  EXPECT_TRUE(cache_->Add("short", "again").ok());
  EXPECT_EQ(GetOr(cache_.get(), "short"), "again");
}

TEST_P(CacheConformanceTest, CompareAndSetDetectsEveryInterveningWrite) {
  ASSERT_TRUE(cache_->Set("doc", "v1").ok());
  absl::StatusOr<CacheItem> read = cache_->Gets("doc");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->value, "v1");
  EXPECT_NE(read->cas, 0u);
  ASSERT_TRUE(cache_->CompareAndSet("doc", "v2", read->cas).ok());
  EXPECT_EQ(GetOr(cache_.get(), "doc"), "v2");
  // The token is used up: the item was stored again.
  absl::Status stale = cache_->CompareAndSet("doc", "v3", read->cas);
  EXPECT_TRUE(absl::IsFailedPrecondition(stale)) << stale;
  EXPECT_EQ(GetOr(cache_.get(), "doc"), "v2");

  absl::StatusOr<CacheItem> second = cache_->Gets("doc");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->cas, read->cas);
  ASSERT_TRUE(cache_->Set("doc", "overwritten").ok());  // someone else's write
  stale = cache_->CompareAndSet("doc", "mine", second->cas);
  EXPECT_TRUE(absl::IsFailedPrecondition(stale)) << stale;
  EXPECT_EQ(GetOr(cache_.get(), "doc"), "overwritten");

  absl::StatusOr<CacheItem> third = cache_->Gets("doc");
  ASSERT_TRUE(third.ok()) << third.status();
  ASSERT_TRUE(cache_->Delete("doc").ok());
  absl::Status gone = cache_->CompareAndSet("doc", "mine", third->cas);
  EXPECT_TRUE(absl::IsNotFound(gone)) << gone;
  EXPECT_EQ(GetOr(cache_.get(), "doc"), kMiss);
  gone = cache_->CompareAndSet("never", "x", 12345);
  EXPECT_TRUE(absl::IsNotFound(gone)) << gone;
  // A CAS write may carry a TTL.
  ASSERT_TRUE(cache_->Set("doc", "v").ok());
  absl::StatusOr<CacheItem> fourth = cache_->Gets("doc");
  ASSERT_TRUE(fourth.ok());
  ASSERT_TRUE(cache_->CompareAndSet("doc", "ttl", fourth->cas, 3000).ok());
  AdvanceTime(GetParam().real_clock ? 4200 : 3000);
  EXPECT_EQ(GetOr(cache_.get(), "doc"), kMiss);
}

TEST_P(CacheConformanceTest, AddStoresOnlyAbsentKeys) {
  ASSERT_TRUE(cache_->Add("lock", "owner1", 60'000).ok());
  absl::Status second = cache_->Add("lock", "owner2");
  EXPECT_TRUE(absl::IsAlreadyExists(second)) << second;
  EXPECT_EQ(GetOr(cache_.get(), "lock"), "owner1");
  ASSERT_TRUE(cache_->Delete("lock").ok());
  EXPECT_TRUE(cache_->Add("lock", "owner2").ok());
  EXPECT_EQ(GetOr(cache_.get(), "lock"), "owner2");
}

TEST_P(CacheConformanceTest, BadInputIsInvalidArgumentNamingTheField) {
  ExpectInvalid(cache_->Get("").status(), "key");
  ExpectInvalid(cache_->Get(std::string(kMaxCacheKeyBytes + 1, 'k')).status(), "key");
  ExpectInvalid(cache_->Get("has space").status(), "key");
  ExpectInvalid(cache_->Get("new\nline").status(), "key");
  ExpectInvalid(cache_->Get(std::string("nul\0", 4)).status(), "key");
  ExpectInvalid(cache_->Get("del\x7f").status(), "key");
  ExpectInvalid(cache_->Get("caf\xc3\xa9").status(), "key");
  ExpectInvalid(cache_->Gets("a b").status(), "key");
  ExpectInvalid(cache_->Set("a b", "v"), "key");
  ExpectInvalid(cache_->Set("k", std::string(kMaxCacheValueBytes + 1, 'v')), "value");
  ExpectInvalid(cache_->Set("k", "v", -1), "ttl_ms");
  ExpectInvalid(cache_->Add("", "v"), "key");
  ExpectInvalid(cache_->Add("k", "v", -5), "ttl_ms");
  ExpectInvalid(cache_->CompareAndSet("k", "v", 1, -1), "ttl_ms");
  ExpectInvalid(cache_->Delete(""), "key");
  ExpectInvalid(cache_->MultiGet(std::vector<std::string>{"ok", "not ok"}).status(), "keys[1]");
  ExpectInvalid(cache_->MultiGet(std::vector<std::string>(kMaxMultiGetKeys + 1, "k")).status(),
                "keys");
  EXPECT_EQ(GetOr(cache_.get(), "k"), kMiss) << "nothing was stored";
}

// Read-modify-write through Gets + CompareAndSet from several threads loses no update.
TEST_P(CacheConformanceTest, ConcurrentCasIncrementsLoseNoUpdate) {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 50;
  ASSERT_TRUE(cache_->Set("counter", "0").ok());
  std::atomic<int> errors{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        bool done = false;
        for (int attempt = 0; attempt < 100000 && !done; ++attempt) {
          absl::StatusOr<CacheItem> item = cache_->Gets("counter");
          if (!item.ok()) {
            ++errors;
            return;
          }
          const std::string next = std::to_string(std::stoi(item->value) + 1);
          absl::Status s = cache_->CompareAndSet("counter", next, item->cas);
          if (s.ok()) {
            done = true;
          } else if (absl::IsFailedPrecondition(s)) {
            ++conflicts;
          } else {
            ++errors;
            return;
          }
        }
        if (!done) {
          ++errors;
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(GetOr(cache_.get(), "counter"), std::to_string(kThreads * kIncrements));
  RecordProperty("cas_conflicts", conflicts.load());
}

TEST_P(CacheConformanceTest, ConcurrentWritersOfDistinctKeys) {
  constexpr int kThreads = 4;
  constexpr int kKeys = 200;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kKeys; ++i) {
        const std::string key = "t" + std::to_string(t) + ":" + std::to_string(i);
        if (!cache_->Set(key, key + "=v").ok()) ++errors;
        if (GetOr(cache_.get(), key) != key + "=v") ++errors;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    std::vector<std::string> keys;
    for (int i = 0; i < kKeys; ++i)
      keys.push_back("t" + std::to_string(t) + ":" + std::to_string(i));
    absl::StatusOr<std::vector<std::optional<std::string>>> got = cache_->MultiGet(keys);
    ASSERT_TRUE(got.ok()) << got.status();
    for (int i = 0; i < kKeys; ++i) EXPECT_THAT((*got)[i], Optional(keys[i] + "=v"));
  }
}

}  // namespace
}  // namespace strata::store::testing
