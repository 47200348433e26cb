#include "strata/assets/rows.h"

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
