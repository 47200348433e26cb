#include "strata/assets/where.h"

#include <charconv>
#include <cmath>

namespace strata::assets {
namespace {

absl::Status Bad(std::string_view condition, std::string_view what) {
  return absl::InvalidArgumentError("where \"" + std::string(condition) +
                                    "\": " + std::string(what));
}

// A JSON number literal, all of `s`.
bool ParseNumber(std::string_view s, JsonValue* out) {
  if (s.empty()) return false;
  int64_t i = 0;
  auto [iend, iec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (iec == std::errc() && iend == s.data() + s.size()) {
    *out = JsonValue::Int(i);
    return true;
  }
  double d = 0;
  auto [dend, dec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (dec == std::errc() && dend == s.data() + s.size() && std::isfinite(d)) {
    *out = JsonValue::Double(d);
    return true;
  }
  return false;
}

int Compare(const JsonValue& a, const JsonValue& b) {
  if (a.is_number()) {
    if (a.kind() == JsonValue::Kind::kInt && b.kind() == JsonValue::Kind::kInt) {
      return a.int_value() < b.int_value() ? -1 : a.int_value() > b.int_value() ? 1 : 0;
    }
    return a.number() < b.number() ? -1 : a.number() > b.number() ? 1 : 0;
  }
  if (a.is_string())
    return a.string_value().compare(b.string_value()) < 0 ? -1
           : a.string_value() == b.string_value()         ? 0
                                                          : 1;
  if (a.kind() == JsonValue::Kind::kBool) return int(a.bool_value()) - int(b.bool_value());
  return 0;  // null == null
}

bool SameKind(const JsonValue& a, const JsonValue& b) {
  if (a.is_number() && b.is_number()) return true;
  return a.kind() == b.kind();
}

}  // namespace

std::string_view WhereOpText(WhereOp op) {
  switch (op) {
    case WhereOp::kEq:
      return "=";
    case WhereOp::kLt:
      return "<";
    case WhereOp::kLe:
      return "<=";
    case WhereOp::kGt:
      return ">";
    case WhereOp::kGe:
      return ">=";
    case WhereOp::kPrefix:
      return "^=";
  }
  return "?";
}

absl::StatusOr<WhereCondition> ParseWhere(std::string_view condition) {
  if (condition.size() > 4096) return Bad(condition.substr(0, 64), "longer than 4096 bytes");
  size_t p = 0;
  for (; p < condition.size(); ++p) {
    const char c = condition[p];
    if (c == '=' || c == '<' || c == '>') break;
    if (c == '^' && p + 1 < condition.size() && condition[p + 1] == '=') break;
  }
  if (p == condition.size()) {
    return Bad(condition, "no operator (use =, <, <=, >, >= or ^=)");
  }
  WhereCondition out;
  out.pointer = std::string(condition.substr(0, p));
  if (out.pointer.empty()) return Bad(condition, "needs a JSON pointer before the operator");
  absl::StatusOr<std::vector<std::string>> tokens = ParsePointer(out.pointer, "where");
  if (!tokens.ok()) return tokens.status();
  out.tokens = std::move(*tokens);
  size_t len = 1;
  const char c = condition[p];
  const bool eq_follows = p + 1 < condition.size() && condition[p + 1] == '=';
  if (c == '=') {
    out.op = WhereOp::kEq;
  } else if (c == '^') {
    out.op = WhereOp::kPrefix;
    len = 2;
  } else if (c == '<') {
    out.op = eq_follows ? WhereOp::kLe : WhereOp::kLt;
    len = eq_follows ? 2 : 1;
  } else {
    out.op = eq_follows ? WhereOp::kGe : WhereOp::kGt;
    len = eq_follows ? 2 : 1;
  }
  out.text = std::string(condition.substr(p + len));
  return out;
}

absl::Status BindWhere(const Schema& schema, WhereCondition* c) {
  const std::string display = c->pointer + std::string(WhereOpText(c->op)) + c->text;
  const unsigned types = schema.TypesAt(c->tokens);
  if (c->op == WhereOp::kPrefix) {
    if (!(types & Schema::kString)) {
      return Bad(display, "^= needs a string field; " + c->pointer + " is not one");
    }
    c->value = JsonValue::String(c->text);
    return absl::OkStatus();
  }
  JsonValue number;
  const bool is_number = ParseNumber(c->text, &number);
  if (types != Schema::kAny) {
    if (types & (Schema::kNumber | Schema::kInteger)) {
      if (is_number) {
        c->value = std::move(number);
        return absl::OkStatus();
      }
      if (!(types & (Schema::kString | Schema::kBoolean))) {
        return Bad(display, "value must be a number (the schema says so for " + c->pointer + ")");
      }
    }
    if (types & Schema::kBoolean) {
      if (c->text == "true" || c->text == "false") {
        c->value = JsonValue::Bool(c->text == "true");
        return absl::OkStatus();
      }
      if (!(types & Schema::kString)) {
        return Bad(display, "value must be true or false");
      }
    }
    if (types & Schema::kString) {
      c->value = JsonValue::String(c->text);
      return absl::OkStatus();
    }
    if (types & Schema::kNull && c->text == "null") {
      c->value = JsonValue::Null();
      return absl::OkStatus();
    }
    return Bad(display, c->pointer + " is not a scalar in the schema; only scalars are indexed");
  }
  // Untyped: the text decides.
  if (is_number) {
    c->value = std::move(number);
  } else if (c->text == "true" || c->text == "false") {
    c->value = JsonValue::Bool(c->text == "true");
  } else if (c->text == "null") {
    c->value = JsonValue::Null();
  } else if (c->text.size() >= 2 && c->text.front() == '"' && c->text.back() == '"') {
    absl::StatusOr<JsonValue> s = ParseJson(c->text, "where", 1);
    if (!s.ok() || !s->is_string()) return Bad(display, "malformed quoted string");
    c->value = std::move(*s);
  } else {
    c->value = JsonValue::String(c->text);
  }
  if (c->op != WhereOp::kEq && !c->value.is_number() && !c->value.is_string()) {
    return Bad(display, "<, <=, >, >= need a number or a string");
  }
  return absl::OkStatus();
}

bool MatchesWhere(const WhereCondition& c, const JsonValue& payload) {
  return MatchesWhereValue(c, Resolve(payload, c.tokens));
}

bool MatchesWhereValue(const WhereCondition& c, const JsonValue* v) {
  if (v == nullptr) return false;
  if (c.op == WhereOp::kPrefix) {
    return v->is_string() &&
           v->string_value().compare(0, c.value.string_value().size(), c.value.string_value()) ==
               0 &&
           v->string_value().size() >= c.value.string_value().size();
  }
  if (!SameKind(*v, c.value)) return false;
  const int cmp = Compare(*v, c.value);
  switch (c.op) {
    case WhereOp::kEq:
      return cmp == 0;
    case WhereOp::kLt:
      return cmp < 0;
    case WhereOp::kLe:
      return cmp <= 0;
    case WhereOp::kGt:
      return cmp > 0;
    case WhereOp::kGe:
      return cmp >= 0;
    case WhereOp::kPrefix:
      return false;
  }
  return false;
}

}  // namespace strata::assets
