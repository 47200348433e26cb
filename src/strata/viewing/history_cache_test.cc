#include "strata/viewing/history_cache.h"

#include <gtest/gtest.h>

#include <random>

namespace strata::viewing {
namespace {

ViewingRecord Rec(Millis started, std::string session, Millis event_time) {
  ViewingRecord r;
  r.member = 1;
  r.started_at = started;
  r.session = std::move(session);
  r.event_time = event_time;
  return r;
}

TEST(MergeRecord, LaterEventTimeWinsAndKeysStaySorted) {
  std::vector<ViewingRecord> v;
  MergeRecord(&v, Rec(20, "a", 25));
  MergeRecord(&v, Rec(10, "a", 15));
  MergeRecord(&v, Rec(20, "a", 22));  // older event of the same playback: ignored
  MergeRecord(&v, Rec(10, "a", 19));  // newer: replaces
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].started_at, 10);
  EXPECT_EQ(v[0].event_time, 19);
  EXPECT_EQ(v[1].event_time, 25);
}

TEST(HistoryCache, FillIsDroppedWhenAWriteRacedWithTheLoad) {
  MetricsRegistry metrics;
  HistoryCache cache(1 << 20, &metrics);
  uint64_t gen = 0;
  EXPECT_FALSE(cache.Get(0, 5, &gen).has_value());
  // A write lands while the miss is loading from the store.
  ViewingRecord rec = Rec(1, "s", 2);
  std::vector<const ViewingRecord*> w = {&rec};
  cache.MergeWrites(0, 5, w);
  cache.FillIfUnchanged(0, 5, gen, CachedHistory{});
  uint64_t gen2 = 0;
  EXPECT_FALSE(cache.Get(0, 5, &gen2).has_value()) << "stale fill must not be cached";
  cache.FillIfUnchanged(0, 5, gen2, CachedHistory{});
  auto hit = cache.Get(0, 5, &gen2);
  ASSERT_TRUE(hit.has_value());
  // Writes after the fill merge into the entry.
  cache.MergeWrites(0, 5, w);
  hit = cache.Get(0, 5, &gen2);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->Live().size(), 1u);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(cache.misses(), 2u);
}

TEST(HistoryCache, StaysWithinItsByteBudget) {
  MetricsRegistry metrics;
  const size_t budget = 64 * 1024;
  HistoryCache cache(budget, &metrics);
  for (uint64_t m = 1; m <= 2000; ++m) {
    uint64_t gen;
    (void)cache.Get(1, m, &gen);
    CachedHistory h;
    auto c = std::make_shared<CompressedHistory>();
    c->bytes = 500;
    h.compressed = c;
    cache.FillIfUnchanged(1, m, gen, h);
  }
  EXPECT_LE(cache.bytes(), budget);
  EXPECT_GT(cache.entries(), 0u);
  EXPECT_LT(cache.entries(), 2000u);
}

// A roll-up that left nothing live installs its committed version for a member the cache
// does not hold, up to half the budget; without the flag it only updates present entries.
TEST(HistoryCache, CommitLiveMoveInstallsAbsentEntriesUpToHalfTheBudget) {
  MetricsRegistry metrics;
  const size_t budget = 64 * 1024;
  HistoryCache cache(budget, &metrics);
  auto version = [] {
    auto c = std::make_shared<CompressedHistory>();
    c->bytes = 500;
    return c;
  };
  uint64_t gen = 0;
  cache.CommitLiveMove(0, 1, version(), {});
  EXPECT_FALSE(cache.Get(0, 1, &gen).has_value()) << "not asked to install";
  cache.CommitLiveMove(0, 1, version(), {}, /*install_if_absent=*/true);
  auto hit = cache.Get(0, 1, &gen);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->compressed->bytes, 500u);
  EXPECT_TRUE(hit->Live().empty());

  for (uint64_t m = 2; m <= 2000; ++m) cache.CommitLiveMove(0, m, version(), {}, true);
  EXPECT_LE(cache.bytes(), budget / 2 + budget / 8);  // each shard stops near its half
  EXPECT_GT(cache.entries(), 1u);
  EXPECT_LT(cache.entries(), 1999u);
  EXPECT_NE(metrics.RenderPrometheus().find("strata_viewing_cache_evictions_total 0\n"),
            std::string::npos)
      << "installs never push out what reads brought in";
}

TEST(HistoryCache, EraseDropsTheEntry) {
  MetricsRegistry metrics;
  HistoryCache cache(1 << 20, &metrics);
  cache.Replace(0, 9, CachedHistory{});
  uint64_t gen;
  EXPECT_TRUE(cache.Get(0, 9, &gen).has_value());
  cache.Erase(0, 9);
  EXPECT_FALSE(cache.Get(0, 9, &gen).has_value());
}

}  // namespace
}  // namespace strata::viewing

namespace strata::viewing {
namespace {

TEST(MergeRecords, MatchesOneByOneMerging) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 50; ++round) {
    std::vector<ViewingRecord> base, one_by_one, updates;
    for (int i = 0; i < 30; ++i) MergeRecord(&base, Rec(rng() % 40, std::to_string(rng() % 2), rng() % 100));
    one_by_one = base;
    for (int i = 0; i < 25; ++i) updates.push_back(Rec(rng() % 40, std::to_string(rng() % 2), rng() % 100));
    for (const auto& u : updates) MergeRecord(&one_by_one, u);
    MergeRecords(&base, updates);
    ASSERT_EQ(base.size(), one_by_one.size());
    for (size_t i = 0; i < base.size(); ++i) {
      EXPECT_EQ(PlaybackKey(base[i]), PlaybackKey(one_by_one[i]));
      EXPECT_EQ(base[i].event_time, one_by_one[i].event_time);
    }
  }
}

}  // namespace
}  // namespace strata::viewing
