#include "strata/assets/where.h"

#include <gtest/gtest.h>

namespace strata::assets {
namespace {

JsonValue P(std::string_view text) { return *ParseJson(text, "test"); }

WhereCondition Bound(std::string_view text, const Schema& schema) {
  absl::StatusOr<WhereCondition> c = ParseWhere(text);
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) return {};
  absl::Status s = BindWhere(schema, &*c);
  EXPECT_TRUE(s.ok()) << s;
  return *c;
}

TEST(WhereTest, SplitsPointerOperatorAndValue) {
  struct Case {
    const char* text;
    const char* pointer;
    WhereOp op;
    const char* value;
  } cases[] = {
      {"/format=4k", "/format", WhereOp::kEq, "4k"},
      {"/d>=600", "/d", WhereOp::kGe, "600"},
      {"/d>600", "/d", WhereOp::kGt, "600"},
      {"/d<=6", "/d", WhereOp::kLe, "6"},
      {"/d<6", "/d", WhereOp::kLt, "6"},
      {"/t^=ab", "/t", WhereOp::kPrefix, "ab"},
      {"/t==x", "/t", WhereOp::kEq, "=x"},
      {"/a^b=c", "/a^b", WhereOp::kEq, "c"},
      {"/e=", "/e", WhereOp::kEq, ""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<WhereCondition> w = ParseWhere(c.text);
    ASSERT_TRUE(w.ok()) << c.text << ": " << w.status();
    EXPECT_EQ(w->pointer, c.pointer) << c.text;
    EXPECT_EQ(w->op, c.op) << c.text;
    EXPECT_EQ(w->text, c.value) << c.text;
  }
  EXPECT_EQ(ParseWhere("/format").status().message(),
            "where \"/format\": no operator (use =, <, <=, >, >= or ^=)");
  EXPECT_EQ(ParseWhere("=4k").status().message(),
            "where \"=4k\": needs a JSON pointer before the operator");
  EXPECT_FALSE(ParseWhere("format=4k").ok());
  EXPECT_FALSE(ParseWhere("/a~9=1").ok());
}

TEST(WhereTest, TheSchemaTypesTheValue) {
  Schema schema = *Schema::Parse(P(R"({"properties":{"n":{"type":"integer"},
      "s":{"type":"string"},"b":{"type":"boolean"}}})"));
  EXPECT_EQ(Bound("/n>=600", schema).value.kind(), JsonValue::Kind::kInt);
  EXPECT_EQ(Bound("/s=600", schema).value.kind(), JsonValue::Kind::kString);
  EXPECT_EQ(Bound("/b=true", schema).value.kind(), JsonValue::Kind::kBool);
  EXPECT_EQ(Bound("/free=1.5", schema).value.kind(), JsonValue::Kind::kDouble);
  EXPECT_EQ(Bound("/free=\"1.5\"", schema).value.string_value(), "1.5");
  EXPECT_EQ(Bound("/free=hello", schema).value.string_value(), "hello");
  WhereCondition c = *ParseWhere("/n=abc");
  EXPECT_EQ(BindWhere(schema, &c).message(),
            "where \"/n=abc\": value must be a number (the schema says so for /n)");
  c = *ParseWhere("/n^=1");
  EXPECT_EQ(BindWhere(schema, &c).message(),
            "where \"/n^=1\": ^= needs a string field; /n is not one");
  c = *ParseWhere("/b=yes");
  EXPECT_EQ(BindWhere(schema, &c).message(), "where \"/b=yes\": value must be true or false");
}

TEST(WhereTest, MatchesComparesWithinOneKind) {
  Schema any;
  JsonValue doc = P(R"({"d":600,"f":"4k","t":"abc","x":{"y":1.5}})");
  EXPECT_TRUE(MatchesWhere(Bound("/d>=600", any), doc));
  EXPECT_FALSE(MatchesWhere(Bound("/d>600", any), doc));
  EXPECT_TRUE(MatchesWhere(Bound("/d=600.0", any), doc));
  EXPECT_TRUE(MatchesWhere(Bound("/f=4k", any), doc));
  EXPECT_FALSE(MatchesWhere(Bound("/f=4K", any), doc));
  EXPECT_TRUE(MatchesWhere(Bound("/t^=ab", any), doc));
  EXPECT_FALSE(MatchesWhere(Bound("/t^=abcd", any), doc));
  EXPECT_TRUE(MatchesWhere(Bound("/x/y<2", any), doc));
  EXPECT_FALSE(MatchesWhere(Bound("/d=\"600\"", any), doc));  // string vs number
  EXPECT_FALSE(MatchesWhere(Bound("/missing=1", any), doc));
}

}  // namespace
}  // namespace strata::assets
