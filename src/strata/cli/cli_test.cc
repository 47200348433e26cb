// Tests of the command line's request building (no server needed: e2e tests run the binary).
#include <gtest/gtest.h>

#include <string>

#include "strata/cli/asset_commands.h"
#include "strata/cli/media_commands.h"

namespace strata::cli {
namespace {

TEST(AssetTypeJson, SchemaAsGivenPointersEscapedOptionalFieldsOnlyWhenSet) {
  EXPECT_EQ(AssetTypeJson(R"({"type":"object"})", {"/a", "/b\"c"}, "", -1),
            R"({"schema":{"type":"object"},"indexed":["/a","/b\"c"]})");
  EXPECT_EQ(AssetTypeJson("{}", {}, "month", 3),
            R"({"schema":{},"indexed":[],"bucket":"month","keep_versions":3})");
}

TEST(AssetListTarget, PercentEncodesConditionsAndCursor) {
  AssetArgs a;
  a.type = "video";
  a.limit = 5;
  a.since = 10;
  a.where = {"/duration_s>=600", "/title^=a&b"};
  a.cursor = "01ab";
  EXPECT_EQ(AssetListTarget(a),
            "/v1/assets/video?limit=5&since=10&cursor=01ab&where=%2Fduration_s%3E%3D600"
            "&where=%2Ftitle%5E%3Da%26b");
}

TEST(BucketPolicyJson, PlainValues) {
  EXPECT_EQ(BucketPolicyJson("60d", "1d", "hot"),
            R"({"ttl":"60d","grace":"1d","storage_class":"hot"})");
}

TEST(BucketPolicyJson, EmptyTtlIsNull) {
  EXPECT_EQ(BucketPolicyJson("", "7d", "hot"),
            R"({"ttl":null,"grace":"7d","storage_class":"hot"})");
}

// A value is whatever the operator typed: it must reach the server as that string (which
// then names the bad field), not break the body's JSON.
TEST(BucketPolicyJson, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(BucketPolicyJson("1\"d", "a\\b", "x\ny\tz"),
            R"({"ttl":"1\"d","grace":"a\\b","storage_class":"x\ny\tz"})");
  EXPECT_EQ(BucketPolicyJson(std::string("\x01", 1), "7d", "hot"),
            R"({"ttl":"\u0001","grace":"7d","storage_class":"hot"})");
  // A quote must not end the string early and smuggle in another field.
  EXPECT_EQ(BucketPolicyJson("", "7d", R"(hot","ttl":"1s)"),
            R"({"ttl":null,"grace":"7d","storage_class":"hot\",\"ttl\":\"1s"})");
}

TEST(ObjectTarget, EncodesEachKeySegmentButKeepsTheSlashes) {
  EXPECT_EQ(ObjectTarget("media", "dir/file name.bin"),
            "/v1/buckets/media/objects/dir/file%20name.bin");
  EXPECT_EQ(ObjectTarget("media", "a/"), "/v1/buckets/media/objects/a/");
  EXPECT_EQ(ObjectTarget("media", "?#"), "/v1/buckets/media/objects/%3F%23");
}

}  // namespace
}  // namespace strata::cli
