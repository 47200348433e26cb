// Where-conditions of an asset search: `where=/ptr<op>value`, ANDed (docs/assets.md).
//   ops: =  <  <=  >  >=  ^= (prefix, strings only)
// The pointer is everything before the first operator character ('=', '<', '>', or '^'
// followed by '='): pointers containing those characters cannot be searched.
// The value is typed by the schema's declared type at the pointer: integer/number -> a JSON
// number (400 if it does not parse), boolean -> true/false, string -> the text as is. Where
// the schema does not say: a JSON number, true, false or null as such, a "quoted" JSON string
// as that string, anything else as a plain string.
//
// Errors: InvalidArgument starting with "where", naming the condition.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/assets/json.h"
#include "strata/assets/schema.h"

namespace strata::assets {

enum class WhereOp { kEq, kLt, kLe, kGt, kGe, kPrefix };

struct WhereCondition {
  std::string pointer;              // as written, e.g. "/format"
  std::vector<std::string> tokens;  // parsed pointer
  WhereOp op = WhereOp::kEq;
  std::string text;  // the value as written (url-decoded)
  JsonValue value;   // typed, see above
};

// Splits one condition into pointer, operator and text (no typing yet).
absl::StatusOr<WhereCondition> ParseWhere(std::string_view condition);
// Types the condition's value with the schema (see the header comment).
absl::Status BindWhere(const Schema& schema, WhereCondition* condition);
// Does the payload satisfy the condition? A missing value, or one of another JSON kind
// (a string against a number), never does.
bool MatchesWhere(const WhereCondition& condition, const JsonValue& payload);
// The same for the value at the condition's pointer (nullptr: missing).
bool MatchesWhereValue(const WhereCondition& condition, const JsonValue* value);
std::string_view WhereOpText(WhereOp op);

}  // namespace strata::assets
