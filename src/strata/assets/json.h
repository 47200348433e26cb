// A small mutable JSON tree for asset payloads and schemas: parsed with simdjson (json.cc is
// the module's only simdjson user), serialised compactly with object members in their
// original order, merged with RFC 7396 merge patches, addressed with RFC 6901 pointers.
//
// Numbers keep their kind: integers that fit int64 stay exact (kInt), everything else is a
// double (kDouble; integers beyond int64 become doubles too).
//
// Bounds: Parse refuses input deeper than `max_depth` nesting levels and objects with a
// repeated key; errors are InvalidArgument messages that start with `field` (e.g. "payload")
// and name the JSON pointer where it went wrong.
//
// Thread safety: values are plain data; Parse is thread-safe (a parser per thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::assets {

class JsonValue {
 public:
  enum class Kind { kNull, kBool, kInt, kDouble, kString, kArray, kObject };
  using Member = std::pair<std::string, JsonValue>;

  JsonValue() = default;
  static JsonValue Null() { return JsonValue(); }
  static JsonValue Bool(bool b);
  static JsonValue Int(int64_t i);
  static JsonValue Double(double d);
  static JsonValue String(std::string s);
  static JsonValue Array(std::vector<JsonValue> items = {});
  static JsonValue Object(std::vector<Member> members = {});

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kDouble; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool bool_value() const { return bool_; }
  int64_t int_value() const { return int_; }
  // Any number as a double.
  double number() const { return kind_ == Kind::kInt ? static_cast<double>(int_) : double_; }
  const std::string& string_value() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  std::vector<JsonValue>& mutable_items() { return items_; }
  const std::vector<Member>& members() const { return members_; }

  // The member named `key`, or nullptr.
  const JsonValue* Find(std::string_view key) const;
  JsonValue* MutableFind(std::string_view key);
  // Sets (replacing or appending) / removes an object member.
  void Set(std::string key, JsonValue value);
  void Remove(std::string_view key);

  // Compact JSON text (RFC 8259), members in order.
  std::string Serialize() const;
  void AppendTo(std::string* out) const;

  // Structural equality (numbers compare by value: 1 == 1.0).
  bool operator==(const JsonValue& other) const;

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<Member> members_;
};

// Parses one JSON document. `field` starts every error message.
absl::StatusOr<JsonValue> ParseJson(std::string_view text, std::string_view field,
                                    int max_depth = 64);

// Applies an RFC 7396 merge patch to `target` in place.
void MergePatch(JsonValue* target, const JsonValue& patch);

// Appends `s` as a JSON string literal (quoted, escaped).
void AppendJsonString(std::string* out, std::string_view s);

// RFC 6901 JSON pointers, parsed into reference tokens ("" is the whole document).
// InvalidArgument naming `field` for a pointer that does not start with '/' or has a bad
// escape ("~" not followed by 0 or 1).
absl::StatusOr<std::vector<std::string>> ParsePointer(std::string_view pointer,
                                                      std::string_view field);
// The value at `tokens` inside `root`, or nullptr. Array indexes are decimal.
const JsonValue* Resolve(const JsonValue& root, const std::vector<std::string>& tokens);
// Appends one reference token to a pointer string, escaping '~' and '/'.
std::string AppendPointerToken(std::string_view pointer, std::string_view token);

}  // namespace strata::assets
