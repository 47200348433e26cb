#include "strata/assets/schema.h"

#include <gtest/gtest.h>

namespace strata::assets {
namespace {

JsonValue P(std::string_view text) { return *ParseJson(text, "test"); }

Schema S(std::string_view text) {
  absl::StatusOr<Schema> s = Schema::Parse(P(text));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : Schema();
}

std::string Violation(const Schema& schema, std::string_view payload) {
  absl::Status s = schema.Validate(P(payload));
  return s.ok() ? "ok" : std::string(s.message());
}

constexpr char kVideo[] = R"({
  "type": "object",
  "required": ["show_id", "format"],
  "properties": {
    "show_id": {"type": "integer", "minimum": 1},
    "format": {"type": "string", "enum": ["hd", "4k"]},
    "duration_s": {"type": "number", "minimum": 0, "maximum": 86400},
    "title": {"type": "string", "maxLength": 5},
    "live": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "crew": {"type": "object", "properties": {"lead": {"type": ["string", "null"]}}}
  }
})";

TEST(SchemaTest, ValidPayloadsPass) {
  Schema s = S(kVideo);
  EXPECT_EQ(Violation(s, R"({"show_id":1,"format":"4k"})"), "ok");
  EXPECT_EQ(Violation(s, R"({"show_id":2.0,"format":"hd","duration_s":1.5,"title":"abcde",
      "live":false,"tags":["a"],"crew":{"lead":null},"extra":{"x":1}})"),
            "ok");
}

TEST(SchemaTest, EachRuleNamesThePointerAndTheRule) {
  Schema s = S(kVideo);
  EXPECT_EQ(Violation(s, R"({"format":"4k"})"),
            "payload /: required: missing property \"show_id\"");
  EXPECT_EQ(Violation(s, R"({"show_id":"1","format":"4k"})"),
            "payload /show_id: type: must be integer, not string");
  EXPECT_EQ(Violation(s, R"({"show_id":1.5,"format":"4k"})"),
            "payload /show_id: type: must be integer, not number");
  EXPECT_EQ(Violation(s, R"({"show_id":0,"format":"4k"})"),
            "payload /show_id: minimum: must be >= 1");
  EXPECT_EQ(Violation(s, R"({"show_id":1,"format":"8k"})"),
            "payload /format: enum: must be one of the listed values");
  EXPECT_EQ(Violation(s, R"({"show_id":1,"format":"hd","duration_s":90000})"),
            "payload /duration_s: maximum: must be <= 86400");
  EXPECT_EQ(Violation(s, R"({"show_id":1,"format":"hd","title":"abcdef"})"),
            "payload /title: maxLength: longer than 5 bytes");
  EXPECT_EQ(Violation(s, R"({"show_id":1,"format":"hd","tags":["a",2]})"),
            "payload /tags/1: type: must be string, not integer");
  EXPECT_EQ(Violation(s, R"({"show_id":1,"format":"hd","crew":{"lead":3}})"),
            "payload /crew/lead: type: must be string or null, not integer");
  EXPECT_EQ(Violation(s, "[]"), "payload /: type: must be object, not array");
  Schema closed = S(R"({"type":"object","properties":{"a~b":{}},"additionalProperties":false})");
  EXPECT_EQ(Violation(closed, R"({"a~b":1,"c/d":2})"),
            "payload /c~1d: additionalProperties: property not allowed");
}

TEST(SchemaTest, BadSchemasNameTheField) {
  auto error = [](std::string_view text) {
    absl::StatusOr<Schema> s = Schema::Parse(P(text));
    return s.ok() ? std::string("ok") : std::string(s.status().message());
  };
  EXPECT_EQ(error(R"({"type":"strin"})"),
            "schema /type: must be one of \"object\", \"string\", \"integer\", \"number\", "
            "\"boolean\", \"array\", \"null\"");
  EXPECT_EQ(error(R"({"properties":{"a":{"minimum":"x"}}})"),
            "schema /properties/a/minimum: must be a number");
  EXPECT_EQ(error(R"({"required":"a"})"), "schema /required: must be an array of strings");
  EXPECT_EQ(error(R"({"enum":[]})"), "schema /enum: must be a non-empty array");
  EXPECT_EQ(error(R"({"maxLength":-1})"), "schema /maxLength: must be a non-negative integer");
  EXPECT_EQ(error(R"({"items":3})"), "schema /items: must be an object");
  EXPECT_EQ(error(R"({"minimum":5,"maximum":4})"), "schema /minimum: is greater than maximum");
  EXPECT_EQ(error(R"({"patternProperties":{}})").substr(0, 43),
            "schema /patternProperties: unsupported keyw");
  EXPECT_EQ(error("[]"), "schema /: must be an object");
  EXPECT_EQ(error(R"({"description":"x","title":"y"})"), "ok");
  absl::StatusOr<Schema> deep =
      Schema::Parse(P(R"({"items":{"items":{"items":{"items":{}}}}})"), "schema", 3);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "schema /items/items/items/items: nested deeper than 3");
}

TEST(SchemaTest, TypesAtWalksPropertiesAndItems) {
  Schema s = S(kVideo);
  EXPECT_EQ(s.TypesAt({"format"}), unsigned{Schema::kString});
  EXPECT_TRUE(s.TypesAt({"duration_s"}) & Schema::kNumber);
  EXPECT_EQ(s.TypesAt({"tags", "0"}), unsigned{Schema::kString});
  EXPECT_EQ(s.TypesAt({"nope"}), unsigned{Schema::kAny});
}

}  // namespace
}  // namespace strata::assets
