// The JSON Schema subset that asset types declare (docs/assets.md, "Schemas"):
//   type        "object" | "string" | "integer" | "number" | "boolean" | "array"
//               (or an array of them; "null" too)
//   properties  {name: schema}          (objects)
//   required    [name, ...]             (objects)
//   enum        [value, ...]            (any type; compared structurally)
//   minimum, maximum                    (numbers, inclusive)
//   maxLength                           (strings, in bytes of UTF-8)
//   items       schema                  (arrays: every element)
//   additionalProperties  false | true  (objects; default true)
//   description, title, $schema, $id, default, examples: accepted and ignored.
// Any other keyword is refused (a typo must not silently weaken validation).
//
// Errors name where: a bad schema is InvalidArgument "schema <pointer>: <what>" (the pointer
// into the schema document); a payload violation is InvalidArgument
// "payload <pointer>: <rule>: <what>" (the pointer into the payload, the keyword that failed).
//
// Thread safety: a Schema is immutable after Parse; Validate is const and thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/assets/json.h"

namespace strata::assets {

class Schema {
 public:
  // Type bits.
  enum : unsigned {
    kNull = 1,
    kBoolean = 2,
    kInteger = 4,
    kNumber = 8,  // includes integers
    kString = 16,
    kArray = 32,
    kObject = 64,
    kAny = 127,
  };

  static absl::StatusOr<Schema> Parse(const JsonValue& schema, std::string_view field = "schema",
                                      int max_depth = 32);

  // OK, or the first violation ("payload /a/0: minimum: ...").
  absl::Status Validate(const JsonValue& value, std::string_view field = "payload") const;

  // The declared type bits of the value at a pointer (walking properties and items), or kAny
  // where the schema does not say. Used to type the values of where-conditions.
  unsigned TypesAt(const std::vector<std::string>& tokens) const;

 private:
  // Where ValidateAt is: frames on the stack, rendered as a pointer only for an error.
  struct Path {
    const Path* parent = nullptr;
    const std::string* key = nullptr;  // an object member's name, or
    size_t index = 0;                  // an array item's index
    std::string Render() const;
  };
  absl::Status ValidateAt(const JsonValue& value, const Path& path, std::string_view field) const;

  unsigned types_ = kAny;
  std::map<std::string, std::shared_ptr<Schema>, std::less<>> properties_;
  std::vector<std::string> required_;
  std::optional<std::vector<JsonValue>> enum_;
  std::optional<double> minimum_;
  std::optional<double> maximum_;
  std::optional<uint64_t> max_length_;
  std::shared_ptr<Schema> items_;
  bool additional_properties_ = true;
};

}  // namespace strata::assets
