#include "strata/assets/json.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <unordered_set>

namespace strata::assets {
namespace {

absl::Status Bad(std::string_view field, std::string_view pointer, std::string_view what) {
  std::string m(field);
  if (!pointer.empty()) {
    m += " ";
    m += pointer;
  }
  m += ": ";
  m += what;
  return absl::InvalidArgumentError(m);
}

absl::Status Convert(simdjson::dom::element in, std::string_view field, const std::string& at,
                     int depth, int max_depth, JsonValue* out) {
  switch (in.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
      *out = JsonValue::Null();
      return absl::OkStatus();
    case simdjson::dom::element_type::BOOL:
      *out = JsonValue::Bool(bool(in.get_bool().value_unsafe()));
      return absl::OkStatus();
    case simdjson::dom::element_type::INT64:
      *out = JsonValue::Int(in.get_int64().value_unsafe());
      return absl::OkStatus();
    case simdjson::dom::element_type::UINT64:
      *out = JsonValue::Double(static_cast<double>(in.get_uint64().value_unsafe()));
      return absl::OkStatus();
    case simdjson::dom::element_type::DOUBLE:
      *out = JsonValue::Double(in.get_double().value_unsafe());
      return absl::OkStatus();
    case simdjson::dom::element_type::STRING: {
      std::string_view s = in.get_string().value_unsafe();
      *out = JsonValue::String(std::string(s));
      return absl::OkStatus();
    }
    case simdjson::dom::element_type::ARRAY: {
      if (depth >= max_depth) {
        return Bad(field, at, "nested deeper than " + std::to_string(max_depth) + " levels");
      }
      std::vector<JsonValue> items;
      size_t i = 0;
      simdjson::dom::array array;
      if (in.get_array().get(array) != simdjson::SUCCESS) return Bad(field, at, "bad array");
      for (simdjson::dom::element e : array) {
        items.emplace_back();
        std::string child = at + "/" + std::to_string(i++);
        absl::Status s = Convert(e, field, child, depth + 1, max_depth, &items.back());
        if (!s.ok()) return s;
      }
      *out = JsonValue::Array(std::move(items));
      return absl::OkStatus();
    }
    case simdjson::dom::element_type::OBJECT: {
      if (depth >= max_depth) {
        return Bad(field, at, "nested deeper than " + std::to_string(max_depth) + " levels");
      }
      std::vector<JsonValue::Member> members;
      std::unordered_set<std::string_view> seen;
      simdjson::dom::object object;
      if (in.get_object().get(object) != simdjson::SUCCESS) return Bad(field, at, "bad object");
      for (simdjson::dom::key_value_pair kv : object) {
        if (!seen.insert(kv.key).second) {
          return Bad(field, AppendPointerToken(at, kv.key), "repeated key");
        }
        members.emplace_back(std::string(kv.key), JsonValue());
        absl::Status s = Convert(kv.value, field, AppendPointerToken(at, kv.key), depth + 1,
                                 max_depth, &members.back().second);
        if (!s.ok()) return s;
      }
      *out = JsonValue::Object(std::move(members));
      return absl::OkStatus();
    }
  }
  return Bad(field, at, "unsupported JSON value");
}

void AppendDouble(std::string* out, double d) {
  if (!std::isfinite(d)) {
    out->append("null");
    return;
  }
  char buf[32];
  // Shortest round-trip form; from 1e18 on in exponent form, because the shortest form of a
  // large integral double is a bare integer that may not fit 64 bits, which simdjson (and
  // other parsers) refuse to read back.
  auto [end, ec] = std::fabs(d) >= 1e18
                       ? std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific)
                       : std::to_chars(buf, buf + sizeof(buf), d);
  const std::string_view text(buf, static_cast<size_t>(end - buf));
  out->append(text);
  // An integral double keeps a fraction (600.0, -0.0), so it reads back as a double and
  // serialises the same way again.
  if (text.find_first_of(".e") == std::string_view::npos) out->append(".0");
}

}  // namespace

JsonValue JsonValue::Bool(bool b) {
  JsonValue v;
  v.kind_ = Kind::kBool;
  v.bool_ = b;
  return v;
}
JsonValue JsonValue::Int(int64_t i) {
  JsonValue v;
  v.kind_ = Kind::kInt;
  v.int_ = i;
  return v;
}
JsonValue JsonValue::Double(double d) {
  JsonValue v;
  v.kind_ = Kind::kDouble;
  v.double_ = d;
  return v;
}
JsonValue JsonValue::String(std::string s) {
  JsonValue v;
  v.kind_ = Kind::kString;
  v.string_ = std::move(s);
  return v;
}
JsonValue JsonValue::Array(std::vector<JsonValue> items) {
  JsonValue v;
  v.kind_ = Kind::kArray;
  v.items_ = std::move(items);
  return v;
}
JsonValue JsonValue::Object(std::vector<Member> members) {
  JsonValue v;
  v.kind_ = Kind::kObject;
  v.members_ = std::move(members);
  return v;
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  for (const Member& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

JsonValue* JsonValue::MutableFind(std::string_view key) {
  for (Member& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

void JsonValue::Set(std::string key, JsonValue value) {
  if (JsonValue* existing = MutableFind(key)) {
    *existing = std::move(value);
    return;
  }
  members_.emplace_back(std::move(key), std::move(value));
}

void JsonValue::Remove(std::string_view key) {
  for (auto it = members_.begin(); it != members_.end(); ++it) {
    if (it->first == key) {
      members_.erase(it);
      return;
    }
  }
}

std::string JsonValue::Serialize() const {
  std::string out;
  AppendTo(&out);
  return out;
}

void JsonValue::AppendTo(std::string* out) const {
  switch (kind_) {
    case Kind::kNull:
      out->append("null");
      return;
    case Kind::kBool:
      out->append(bool_ ? "true" : "false");
      return;
    case Kind::kInt: {
      char buf[24];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), int_);
      out->append(buf, static_cast<size_t>(end - buf));
      return;
    }
    case Kind::kDouble:
      AppendDouble(out, double_);
      return;
    case Kind::kString:
      AppendJsonString(out, string_);
      return;
    case Kind::kArray: {
      out->push_back('[');
      for (size_t i = 0; i < items_.size(); ++i) {
        if (i > 0) out->push_back(',');
        items_[i].AppendTo(out);
      }
      out->push_back(']');
      return;
    }
    case Kind::kObject: {
      out->push_back('{');
      for (size_t i = 0; i < members_.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendJsonString(out, members_[i].first);
        out->push_back(':');
        members_[i].second.AppendTo(out);
      }
      out->push_back('}');
      return;
    }
  }
}

bool JsonValue::operator==(const JsonValue& o) const {
  if (is_number() && o.is_number()) {
    if (kind_ == Kind::kInt && o.kind_ == Kind::kInt) return int_ == o.int_;
    return number() == o.number();
  }
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kNull:
      return true;
    case Kind::kBool:
      return bool_ == o.bool_;
    case Kind::kString:
      return string_ == o.string_;
    case Kind::kArray:
      return items_ == o.items_;
    case Kind::kObject: {
      if (members_.size() != o.members_.size()) return false;
      for (const Member& m : members_) {
        const JsonValue* other = o.Find(m.first);
        if (other == nullptr || !(*other == m.second)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

absl::StatusOr<JsonValue> ParseJson(std::string_view text, std::string_view field, int max_depth) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::error_code error = parser.parse(text.data(), text.size()).get(root);
  if (error != simdjson::SUCCESS) {
    return Bad(field, "", std::string("invalid JSON (") + simdjson::error_message(error) + ")");
  }
  JsonValue out;
  absl::Status s = Convert(root, field, "", 0, max_depth, &out);
  if (!s.ok()) return s;
  return out;
}

void MergePatch(JsonValue* target, const JsonValue& patch) {
  if (!patch.is_object()) {
    *target = patch;
    return;
  }
  if (!target->is_object()) *target = JsonValue::Object();
  for (const JsonValue::Member& m : patch.members()) {
    if (m.second.is_null()) {
      target->Remove(m.first);
    } else if (JsonValue* existing = target->MutableFind(m.first)) {
      MergePatch(existing, m.second);
    } else {
      JsonValue fresh;
      MergePatch(&fresh, m.second);  // nulls inside a new member are removed too
      target->Set(m.first, std::move(fresh));
    }
  }
}

void AppendJsonString(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of characters that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char u = static_cast<unsigned char>(s[i]);
    if (u >= 0x20 && u != '"' && u != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (u) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
        out->append(esc, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

absl::StatusOr<std::vector<std::string>> ParsePointer(std::string_view pointer,
                                                      std::string_view field) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/') {
    return absl::InvalidArgumentError(std::string(field) + ": JSON pointer \"" +
                                      std::string(pointer) + "\" must start with '/'");
  }
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (pointer[i] == '~') {
      if (i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        token.push_back(pointer[i + 1] == '0' ? '~' : '/');
        ++i;
        continue;
      }
      return absl::InvalidArgumentError(std::string(field) + ": JSON pointer \"" +
                                        std::string(pointer) + "\" has '~' not followed by 0 or 1");
    }
    token.push_back(pointer[i]);
  }
  return tokens;
}

const JsonValue* Resolve(const JsonValue& root, const std::vector<std::string>& tokens) {
  const JsonValue* at = &root;
  for (const std::string& token : tokens) {
    if (at->is_object()) {
      at = at->Find(token);
    } else if (at->is_array()) {
      size_t index = 0;
      auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
      if (ec != std::errc() || end != token.data() + token.size() || token.empty() ||
          (token.size() > 1 && token[0] == '0') || index >= at->items().size()) {
        return nullptr;
      }
      at = &at->items()[index];
    } else {
      return nullptr;
    }
    if (at == nullptr) return nullptr;
  }
  return at;
}

std::string AppendPointerToken(std::string_view pointer, std::string_view token) {
  std::string out(pointer);
  out.push_back('/');
  for (char c : token) {
    if (c == '~') {
      out.append("~0");
    } else if (c == '/') {
      out.append("~1");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace strata::assets
