#include "strata/assets/json.h"

#include <gtest/gtest.h>

namespace strata::assets {
namespace {

JsonValue P(std::string_view text) {
  absl::StatusOr<JsonValue> v = ParseJson(text, "test");
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : JsonValue();
}

TEST(JsonTest, RoundTripKeepsOrderAndKinds) {
  const std::string text =
      R"({"b":1,"a":[true,false,null,-3,2.5,"x\"y\n"],"c":{"d":1e+300,"e":""}})";
  EXPECT_EQ(P(text).Serialize(), text);
  EXPECT_EQ(P("1.0").kind(), JsonValue::Kind::kDouble);
  EXPECT_EQ(P("-7").kind(), JsonValue::Kind::kInt);
  EXPECT_EQ(P("18446744073709551615").kind(), JsonValue::Kind::kDouble);
  EXPECT_EQ(P("\"\\u0001\"").Serialize(), "\"\\u0001\"");
  // Large integral doubles serialise in exponent form, which parses back (found by fuzzing:
  // a bare 22-digit integer does not fit 64 bits and simdjson refuses it).
  EXPECT_EQ(P("[600.0,-0.0,1.5]").Serialize(), "[600.0,-0.0,1.5]");  // doubles stay doubles
  for (const char* big : {"2661620406061520415204.054", "18446744073709551615", "-1e19", "-0.0"}) {
    const std::string once = P(big).Serialize();
    absl::StatusOr<JsonValue> again = ParseJson(once, "test");
    ASSERT_TRUE(again.ok()) << once << ": " << again.status();
    EXPECT_EQ(again->Serialize(), once);
    EXPECT_EQ(again->number(), P(big).number());
  }
}

TEST(JsonTest, RefusesRepeatedKeysDepthAndGarbageNamingWhere) {
  absl::StatusOr<JsonValue> dup = ParseJson(R"({"a":{"b":1,"b":2}})", "payload");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "payload /a/b: repeated key");
  absl::StatusOr<JsonValue> deep = ParseJson("[[[[1]]]]", "payload", 3);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "payload /0/0/0: nested deeper than 3 levels");
  EXPECT_TRUE(ParseJson("[[[1]]]", "payload", 3).ok());
  absl::StatusOr<JsonValue> bad = ParseJson("{\"a\":", "payload");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_EQ(bad.status().message().substr(0, 22), "payload: invalid JSON ");
}

// The examples of RFC 7396, appendix A.
TEST(JsonTest, MergePatchFollowsRfc7396Examples) {
  struct Case {
    const char* target;
    const char* patch;
    const char* result;
  } cases[] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"a":"foo"})", "null", "null"},
      {R"({"a":"foo"})", R"("bar")", R"("bar")"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
  };
  for (const Case& c : cases) {
    JsonValue target = P(c.target);
    MergePatch(&target, P(c.patch));
    EXPECT_EQ(target.Serialize(), c.result) << c.target << " + " << c.patch;
  }
}

TEST(JsonTest, PointersParseEscapeAndResolve) {
  JsonValue doc = P(R"({"a/b":{"m~n":[10,20]},"":1})");
  absl::StatusOr<std::vector<std::string>> t = ParsePointer("/a~1b/m~0n/1", "where");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(Resolve(doc, *t)->int_value(), 20);
  EXPECT_EQ(Resolve(doc, *ParsePointer("/", "x"))->int_value(), 1);
  EXPECT_EQ(Resolve(doc, *ParsePointer("/a~1b/m~0n/01", "x")), nullptr);
  EXPECT_EQ(Resolve(doc, *ParsePointer("/a~1b/m~0n/2", "x")), nullptr);
  EXPECT_EQ(ParsePointer("a", "indexed/0").status().message(),
            "indexed/0: JSON pointer \"a\" must start with '/'");
  EXPECT_FALSE(ParsePointer("/a~2", "x").ok());
  EXPECT_EQ(AppendPointerToken("/x", "a/~b"), "/x/a~1~0b");
}

}  // namespace
}  // namespace strata::assets
