#include "strata/assets/asset_id.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace strata::assets {
namespace {

TEST(AssetIdTest, LayoutIsVersion7WithTheTimestamp) {
  ManualClock clock(1'765'000'000'123);
  AssetIdGenerator gen(&clock, 42);
  const AssetId id = gen.Next();
  EXPECT_EQ(id.time(), 1'765'000'000'123);
  EXPECT_EQ(id.bytes[6] >> 4, 7);  // version
  EXPECT_EQ(id.bytes[8] >> 6, 2);  // variant 10
  const std::string text = id.ToString();
  ASSERT_EQ(text.size(), 36u);
  EXPECT_EQ(text[14], '7');
  std::optional<AssetId> back = AssetId::Parse(text);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, id);
  EXPECT_FALSE(AssetId::Parse("00000000-0000-4000-8000-000000000000").has_value());  // v4
  EXPECT_FALSE(AssetId::Parse(text.substr(1)).has_value());
  EXPECT_FALSE(AssetId::Parse("zz" + text.substr(2)).has_value());
}

TEST(AssetIdTest, MonotonicWithinOneMillisecondAndAcrossAClockGoingBack) {
  ManualClock clock(1'765'000'000'000);
  AssetIdGenerator gen(&clock, 7);
  std::vector<AssetId> ids;
  for (int i = 0; i < 10000; ++i) ids.push_back(gen.Next());  // one millisecond
  clock.Advance(1);
  for (int i = 0; i < 100; ++i) ids.push_back(gen.Next());
  clock.Advance(-50);  // the clock goes back
  for (int i = 0; i < 100; ++i) ids.push_back(gen.Next());
  for (size_t i = 1; i < ids.size(); ++i) {
    ASSERT_LT(ids[i - 1], ids[i]) << i;
    ASSERT_LT(ids[i - 1].ToString(), ids[i].ToString()) << i;  // text sorts the same way
  }
  EXPECT_EQ(ids.front().time(), 1'765'000'000'000);
  EXPECT_EQ(ids[10000].time(), 1'765'000'000'001);
  EXPECT_EQ(ids.back().time(), 1'765'000'000'001);  // never behind the last id
}

TEST(AssetIdTest, ConcurrentGeneratorsGiveDistinctIncreasingIds) {
  SystemClock clock;
  AssetIdGenerator gen(&clock);
  std::vector<std::vector<AssetId>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& out : per_thread) {
    threads.emplace_back([&gen, &out] {
      for (int i = 0; i < 5000; ++i) out.push_back(gen.Next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<AssetId> all;
  for (const auto& out : per_thread) {
    for (size_t i = 1; i < out.size(); ++i) ASSERT_LT(out[i - 1], out[i]);
    all.insert(out.begin(), out.end());
  }
  EXPECT_EQ(all.size(), 20000u);
}

TEST(AssetIdTest, MinForTimeBoundsEveryIdOfThatMillisecond) {
  ManualClock clock(1'765'000'000'000);
  AssetIdGenerator gen(&clock);
  const AssetId a = gen.Next();
  EXPECT_LE(AssetId::MinForTime(a.time()), a);
  EXPECT_LT(a, AssetId::MinForTime(a.time() + 1));
}

}  // namespace
}  // namespace strata::assets
