#include "strata/assets/json.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
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

// Where Convert is, as a chain of frames on the stack: the pointer text is only built for an
// error (building it for every member was a tenth of parsing a payload).
struct Path {
  const Path* parent = nullptr;
  std::string_view key;  // an object member's name, or
  size_t index = 0;      // an array item's index
  bool is_index = false;

  std::string Render() const {
    std::string out = parent == nullptr ? std::string() : parent->Render();
    if (parent == nullptr) return out;  // the root
    return is_index ? out + "/" + std::to_string(index) : AppendPointerToken(out, key);
  }
};

// Objects with up to this many members find repeated keys by comparing with the earlier ones;
// larger objects use a hash set.
constexpr size_t kLinearKeyCheck = 16;

absl::Status Convert(simdjson::dom::element in, std::string_view field, const Path& at, int depth,
                     int max_depth, JsonValue* out) {
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
        return Bad(field, at.Render(),
                   "nested deeper than " + std::to_string(max_depth) + " levels");
      }
      simdjson::dom::array array;
      if (in.get_array().get(array) != simdjson::SUCCESS)
        return Bad(field, at.Render(), "bad array");
      std::vector<JsonValue> items;
      items.reserve(array.size());
      Path child{&at, {}, 0, true};
      for (simdjson::dom::element e : array) {
        items.emplace_back();
        absl::Status s = Convert(e, field, child, depth + 1, max_depth, &items.back());
        if (!s.ok()) return s;
        ++child.index;
      }
      *out = JsonValue::Array(std::move(items));
      return absl::OkStatus();
    }
    case simdjson::dom::element_type::OBJECT: {
      if (depth >= max_depth) {
        return Bad(field, at.Render(),
                   "nested deeper than " + std::to_string(max_depth) + " levels");
      }
      simdjson::dom::object object;
      if (in.get_object().get(object) != simdjson::SUCCESS) {
        return Bad(field, at.Render(), "bad object");
      }
      std::vector<JsonValue::Member> members;
      const size_t n = object.size();
      members.reserve(n);
      std::unordered_set<std::string_view> seen;
      for (simdjson::dom::key_value_pair kv : object) {
        bool repeated = false;
        if (n <= kLinearKeyCheck) {
          for (const JsonValue::Member& m : members) repeated = repeated || m.first == kv.key;
        } else {
          repeated = !seen.insert(kv.key).second;
        }
        if (repeated) return Bad(field, AppendPointerToken(at.Render(), kv.key), "repeated key");
        members.emplace_back(std::string(kv.key), JsonValue());
        const Path child{&at, kv.key, 0, false};
        absl::Status s =
            Convert(kv.value, field, child, depth + 1, max_depth, &members.back().second);
        if (!s.ok()) return s;
      }
      *out = JsonValue::Object(std::move(members));
      return absl::OkStatus();
    }
  }
  return Bad(field, at.Render(), "unsupported JSON value");
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
  const Path top;
  absl::Status s = Convert(root, field, top, 0, max_depth, &out);
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

namespace {

// Whether any of the 8 bytes of `w` is below 0x20, '"' or '\\' (bytes >= 0x80, UTF-8, are
// not): the classic "has a zero byte" bit tricks, exact for each of the three tests.
bool MayNeedEscape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](uint64_t v) { return ((v - kOnes) & ~v & kHigh) != 0; };
  const bool below_space = ((w - kOnes * 0x20) & ~w & kHigh) != 0;
  return below_space || has_zero(w ^ (kOnes * '"')) || has_zero(w ^ (kOnes * '\\'));
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of characters that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    // Skip 8 plain bytes at a time (payload strings rarely need an escape).
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (MayNeedEscape(w)) break;
      i += 8;
    }
    if (i >= s.size()) break;
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
