#include "strata/assets/rows.h"

#include <random>

#include <gtest/gtest.h>

#include "strata/assets/index_key.h"

namespace strata::assets {
namespace {

TEST(RowsTest, BucketsAreUtcDaysAndMonths) {
  const Millis t = 1'765'000'000'000;  // 2025-12-06T05:46:40Z
  EXPECT_EQ(BucketPartition("video", BucketUnit::kDay, BucketStart(BucketUnit::kDay, t)),
            "video/d20251206");
  EXPECT_EQ(BucketPartition("video", BucketUnit::kMonth, BucketStart(BucketUnit::kMonth, t)),
            "video/m202512");
  EXPECT_EQ(BucketStart(BucketUnit::kMonth, t), 1'764'547'200'000);  // 2025-12-01
  EXPECT_EQ(PreviousBucketStart(BucketUnit::kMonth, 1'764'547'200'000),
            1'761'955'200'000);  // 2025-11-01
  EXPECT_EQ(
      BucketPartition("v", BucketUnit::kMonth, BucketStart(BucketUnit::kMonth, 1'709'251'199'999)),
      "v/m202402");  // 2024-02-29T23:59:59.999Z, a leap day
}

TEST(RowsTest, HistoryRowsKeepWhatTheNextVersionChangedAndRebuildItExactly) {
  AssetRow previous;
  previous.version = 4;
  previous.schema_version = 2;
  previous.created_at = 1'765'000'000'000;
  previous.updated_at = 1'765'000'000'900;
  const std::string text(600, 'x');
  previous.payload = R"({"show_id":7,"format":"hd","title":")" + text + R"("})";
  // A processor's set: one member appended. The row holds the header and a few bytes.
  const std::string appended =
      previous.payload.substr(0, previous.payload.size() - 1) + R"(,"status":"done"})";
  // A patch of one field in the middle.
  std::string patched = previous.payload;
  patched.replace(patched.find("\"hd\""), 4, "\"4k\"");
  // Nothing in common.
  const std::string other = R"({"show_id":9})";
  for (const std::string& next : {appended, patched, other, std::string(), previous.payload}) {
    const std::string encoded = EncodeHistoryRow(previous, next);
    const bool delta = next.size() > 100;
    EXPECT_EQ(IsHistoryDelta(encoded), delta) << next;
    if (delta) {
      EXPECT_LT(encoded.size(), 40u) << next;
    }
    std::optional<AssetRow> back = DecodeHistoryRow(encoded, next);
    ASSERT_TRUE(back.has_value()) << next;
    EXPECT_EQ(back->payload, previous.payload) << next;
    EXPECT_EQ(back->version, 4u);
    EXPECT_EQ(back->schema_version, 2u);
    EXPECT_EQ(back->created_at, previous.created_at);
    EXPECT_EQ(back->updated_at, previous.updated_at);
    std::optional<AssetRow> header = DecodeHistoryHeader(encoded);
    ASSERT_TRUE(header.has_value());
    EXPECT_EQ(header->version, 4u);
  }
  // A delta given a base it does not fit is refused, not read past.
  const std::string encoded = EncodeHistoryRow(previous, appended);
  ASSERT_TRUE(IsHistoryDelta(encoded));
  EXPECT_FALSE(DecodeHistoryRow(encoded, "{}").has_value());
  EXPECT_FALSE(DecodeHistoryRow(encoded.substr(0, 8), appended).has_value());
  EXPECT_FALSE(DecodeHistoryHeader("\x03").has_value());
  EXPECT_FALSE(DecodeHistoryHeader("").has_value());
}

TEST(RowsTest, HistoryRowsRoundTripOnRandomEdits) {
  std::mt19937_64 rng(7);
  auto random_text = [&](size_t n) {
    std::string s(n, ' ');
    for (char& c : s) c = static_cast<char>('a' + rng() % 3);  // repeats make long matches
    return s;
  };
  for (int i = 0; i < 2000; ++i) {
    AssetRow previous;
    previous.version = 1 + static_cast<uint32_t>(rng() % 100);
    previous.payload = random_text(rng() % 300);
    // The next version: a random stretch replaced by random bytes (possibly none).
    std::string next = previous.payload;
    const size_t at = next.empty() ? 0 : rng() % next.size();
    const size_t cut = std::min<size_t>(next.size() - at, rng() % 40);
    next.replace(at, cut, random_text(rng() % 40));
    const std::string encoded = EncodeHistoryRow(previous, next);
    std::optional<AssetRow> back = DecodeHistoryRow(encoded, next);
    ASSERT_TRUE(back.has_value()) << i;
    ASSERT_EQ(back->payload, previous.payload) << i;
  }
}

TEST(RowsTest, AssetKeysSortNewestFirst) {
  ManualClock clock;
  AssetIdGenerator gen(&clock, 3);
  const AssetId older = gen.Next();
  clock.Advance(5);
  const AssetId newer = gen.Next();
  EXPECT_LT(AssetKey(newer), AssetKey(older));
  EXPECT_EQ(*AssetIdFromKey(AssetKey(older)), older);
  // Bounds: AssetKeyAfter(x) is past x and before every older id.
  EXPECT_GT(AssetKeyAfter(newer), AssetKey(newer));
  EXPECT_LT(AssetKeyAfter(newer), AssetKey(older));
  // Within one index value, newest first too; the id comes back from the key.
  const std::string v = *EncodeIndexValue(JsonValue::String("4k"));
  EXPECT_LT(IndexKey(1, v, newer), IndexKey(1, v, older));
  EXPECT_EQ(*AssetIdFromIndexKey(IndexKey(1, v, older)), older);
}

TEST(RowsTest, AssetRowRoundTripsAndRejectsGarbage) {
  AssetRow row;
  row.version = 7;
  row.schema_version = 2;
  row.created_at = 1'765'000'000'000;
  row.updated_at = 1'765'000'000'500;
  row.index_entries = {IndexEntry(1, "x"), IndexEntry(300, std::string("\0y", 2))};
  row.payload = R"({"a":1})";
  std::optional<AssetRow> back = DecodeAssetRow(EncodeAssetRow(row));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->version, 7u);
  EXPECT_EQ(back->schema_version, 2u);
  EXPECT_EQ(back->created_at, row.created_at);
  EXPECT_EQ(back->updated_at, row.updated_at);
  EXPECT_EQ(back->index_entries, row.index_entries);
  EXPECT_EQ(back->payload, row.payload);
  EXPECT_FALSE(DecodeAssetRow("").has_value());
  EXPECT_FALSE(DecodeAssetRow("\x02xyz").has_value());
  EXPECT_FALSE(DecodeAssetRow("\x01\xff").has_value());
}

TEST(RowsTest, CursorsRoundTripAndRejectTampering) {
  ManualClock clock;
  AssetIdGenerator gen(&clock, 3);
  const AssetId id = gen.Next();
  const std::string list = EncodeListCursor({id});
  EXPECT_EQ(DecodeListCursor(list)->last, id);
  EXPECT_FALSE(DecodeListCursor(list.substr(2)).has_value());
  EXPECT_FALSE(DecodeListCursor("zz" + list.substr(2)).has_value());
  EXPECT_FALSE(DecodeSearchCursor(list).has_value());
  SearchCursor s{0x1234, 1'765'000'000'000, IndexKey(2, "v", id)};
  std::optional<SearchCursor> back = DecodeSearchCursor(EncodeSearchCursor(s));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->query_hash, 0x1234u);
  EXPECT_EQ(back->bucket, s.bucket);
  EXPECT_EQ(back->last_key, s.last_key);
  EXPECT_FALSE(DecodeListCursor(EncodeSearchCursor(s)).has_value());
  EXPECT_FALSE(DecodeSearchCursor("").has_value());
}

TEST(RowsTest, OutboxRoundTrips) {
  std::vector<std::string> events = {"{\"a\":1}", ""};
  EXPECT_EQ(*DecodeOutbox(EncodeOutbox(events)), events);
  EXPECT_FALSE(DecodeOutbox("\x01\x05").has_value());
  EXPECT_FALSE(DecodeOutbox(EncodeOutbox(events) + "x").has_value());
}

}  // namespace
}  // namespace strata::assets
