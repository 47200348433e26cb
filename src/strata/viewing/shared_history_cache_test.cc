// SharedHistoryCache and the viewing service over a shared cache, with the in-process
// LruCache standing in for memcached (tests/viewing_shared_cache_test.cc runs the same
// scenarios against a real memcached, and the memcached-down case).
#include "strata/viewing/shared_history_cache.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include "strata/store/lru_cache.h"
#include "strata/viewing/codec.h"
#include "strata/viewing/segments.h"
#include "strata/viewing/shared_cache_scenarios.h"

namespace strata::viewing {
namespace {

std::unique_ptr<store::LruCache> NewCache() {
  auto c = store::LruCache::Create();
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

TEST(SharedHistoryCache, TwoServicesWriteOnOneReadOnTheOther) {
  auto cache = NewCache();
  testing::WriteOnOneReadOnTheOther(cache.get());
}

TEST(SharedHistoryCache, RacingFillIsNeverServed) {
  auto cache = NewCache();
  testing::RacingFillIsNeverServed(cache.get());
}

TEST(SharedHistoryCache, EntryRoundTripsLiveRowsAndLoadedChunks) {
  std::vector<ViewingRecord> records;
  for (int i = 0; i < 40; ++i) {
    records.push_back(testing::SharedPlay(9, testing::kSharedT0 + i * 1000,
                                          "s" + std::to_string(i), testing::kSharedT0 + i * 1000 + 500));
  }
  std::vector<Segment> segments;
  EncodeSegments(std::span<const ViewingRecord>(records.data(), 30), 10, 3, &segments);
  ASSERT_EQ(segments.size(), 3u);
  auto compressed = std::make_shared<CompressedHistory>();
  compressed->meta.version = 4;
  compressed->meta.next_segment_id = 3;
  for (size_t i = 0; i < segments.size(); ++i) {
    SegmentRef ref;
    ref.id = i;
    ref.first_started_at = segments[i].first_started_at;
    ref.last_started_at = segments[i].last_started_at;
    ref.max_event_time = segments[i].max_event_time;
    ref.records = segments[i].records;
    ref.bytes = segments[i].bytes.size();
    ref.checksum = XXH3_64bits(segments[i].bytes.data(), segments[i].bytes.size());
    compressed->meta.segments.push_back(ref);
  }
  // Only the newest chunk loaded, as after a miss that loads few.
  compressed->segments = {nullptr, nullptr,
                          std::make_shared<const std::string>(segments[2].bytes)};
  CachedHistory h;
  h.compressed = compressed;
  h.live = std::make_shared<std::vector<ViewingRecord>>(records.begin() + 30, records.end());

  const std::string bytes = SharedHistoryCache::EncodeEntry(h);
  auto back = SharedHistoryCache::DecodeEntry(bytes, 9, Kind::kPlay);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->compressed);
  EXPECT_EQ(back->compressed->meta.version, 4u);
  ASSERT_EQ(back->compressed->segments.size(), 3u);
  EXPECT_FALSE(back->compressed->segments[0]);
  ASSERT_TRUE(back->compressed->segments[2]);
  EXPECT_EQ(*back->compressed->segments[2], segments[2].bytes);
  ASSERT_EQ(back->Live().size(), 10u);
  EXPECT_EQ(back->Live()[3].session, "s33");
  EXPECT_EQ(back->Live()[3].event_time, records[33].event_time);
  EXPECT_EQ(back->Live()[3].device, "tv");

  // A flipped byte in a chunk fails its checksum; a cut entry is malformed; neither decodes.
  std::string corrupt = bytes;
  const size_t chunk_at = bytes.find(segments[2].bytes);
  ASSERT_NE(chunk_at, std::string::npos);
  corrupt[chunk_at + segments[2].bytes.size() / 2] ^= 0x5a;
  EXPECT_FALSE(SharedHistoryCache::DecodeEntry(corrupt, 9, Kind::kPlay).ok());
  EXPECT_FALSE(SharedHistoryCache::DecodeEntry(bytes.substr(0, bytes.size() - 3), 9,
                                               Kind::kPlay).ok());
  EXPECT_FALSE(SharedHistoryCache::DecodeEntry("", 9, Kind::kPlay).ok());
}

TEST(SharedHistoryCache, KeysNameTheVersionToken) {
  EXPECT_EQ(SharedHistoryCache::EntryKey("d1", 1, 42, "00ff"), "strata:vh1:d1:1:42:00ff");
  // Two deployments (two row stores) over one cache get different ids.
  ManualClock clock(testing::kSharedT0);
  store::MemoryRowStore rows1(&clock), rows2(&clock);
  MetricsRegistry metrics;
  auto cache = NewCache();
  auto one = SharedHistoryCache::Open(cache.get(), &rows1, &metrics, 0);
  auto again = SharedHistoryCache::Open(cache.get(), &rows1, &metrics, 0);
  auto two = SharedHistoryCache::Open(cache.get(), &rows2, &metrics, 0);
  ASSERT_TRUE(one.ok() && again.ok() && two.ok());
  EXPECT_EQ((*one)->deployment(), (*again)->deployment());
  EXPECT_NE((*one)->deployment(), (*two)->deployment());
}

}  // namespace
}  // namespace strata::viewing
