#include "strata/assets/schema.h"

#include <cmath>
#include <set>

namespace strata::assets {
namespace {

absl::Status SchemaError(std::string_view field, const std::string& pointer,
                         std::string_view what) {
  return absl::InvalidArgumentError(std::string(field) + " " + (pointer.empty() ? "/" : pointer) +
                                    ": " + std::string(what));
}

absl::StatusOr<unsigned> TypeBit(const JsonValue& v, std::string_view field,
                                 const std::string& at) {
  if (v.is_string()) {
    const std::string& s = v.string_value();
    if (s == "object") return Schema::kObject;
    if (s == "string") return Schema::kString;
    if (s == "integer") return Schema::kInteger;
    if (s == "number") return Schema::kNumber | Schema::kInteger;
    if (s == "boolean") return Schema::kBoolean;
    if (s == "array") return Schema::kArray;
    if (s == "null") return Schema::kNull;
  }
  return SchemaError(field, at,
                     "must be one of \"object\", \"string\", \"integer\", \"number\", "
                     "\"boolean\", \"array\", \"null\"");
}

bool IsInteger(const JsonValue& v) {
  if (v.kind() == JsonValue::Kind::kInt) return true;
  if (v.kind() != JsonValue::Kind::kDouble) return false;
  const double d = v.number();
  return std::isfinite(d) && std::floor(d) == d;
}

std::string TypeName(const JsonValue& v) {
  switch (v.kind()) {
    case JsonValue::Kind::kNull:
      return "null";
    case JsonValue::Kind::kBool:
      return "boolean";
    case JsonValue::Kind::kInt:
      return "integer";
    case JsonValue::Kind::kDouble:
      return IsInteger(v) ? "integer" : "number";
    case JsonValue::Kind::kString:
      return "string";
    case JsonValue::Kind::kArray:
      return "array";
    case JsonValue::Kind::kObject:
      return "object";
  }
  return "?";
}

std::string TypesText(unsigned types) {
  std::string out;
  auto add = [&](unsigned bit, const char* name) {
    if (!(types & bit)) return;
    if (!out.empty()) out += " or ";
    out += name;
  };
  add(Schema::kObject, "object");
  add(Schema::kArray, "array");
  add(Schema::kString, "string");
  if (types & Schema::kNumber) {
    add(Schema::kNumber, "number");
  } else {
    add(Schema::kInteger, "integer");
  }
  add(Schema::kBoolean, "boolean");
  add(Schema::kNull, "null");
  return out;
}

// A bound as the schema author likely wrote it: 1, not 1.0.
std::string BoundText(double d) {
  if (std::floor(d) == d && std::fabs(d) < 9e15) {
    return JsonValue::Int(static_cast<int64_t>(d)).Serialize();
  }
  return JsonValue::Double(d).Serialize();
}

}  // namespace

absl::StatusOr<Schema> Schema::Parse(const JsonValue& doc, std::string_view field, int max_depth) {
  struct Parser {
    std::string_view field;
    int max_depth;
    absl::StatusOr<std::shared_ptr<Schema>> Run(const JsonValue& v, const std::string& at,
                                                int depth) {
      if (depth > max_depth) {
        return SchemaError(field, at, "nested deeper than " + std::to_string(max_depth));
      }
      if (!v.is_object()) return SchemaError(field, at, "must be an object");
      auto s = std::make_shared<Schema>();
      for (const JsonValue::Member& m : v.members()) {
        const std::string here = AppendPointerToken(at, m.first);
        const JsonValue& x = m.second;
        if (m.first == "type") {
          if (x.is_array()) {
            if (x.items().empty()) return SchemaError(field, here, "must not be empty");
            s->types_ = 0;
            for (size_t i = 0; i < x.items().size(); ++i) {
              absl::StatusOr<unsigned> bit =
                  TypeBit(x.items()[i], field, here + "/" + std::to_string(i));
              if (!bit.ok()) return bit.status();
              s->types_ |= *bit;
            }
          } else {
            absl::StatusOr<unsigned> bit = TypeBit(x, field, here);
            if (!bit.ok()) return bit.status();
            s->types_ = *bit;
          }
        } else if (m.first == "properties") {
          if (!x.is_object()) return SchemaError(field, here, "must be an object");
          for (const JsonValue::Member& p : x.members()) {
            absl::StatusOr<std::shared_ptr<Schema>> child =
                Run(p.second, AppendPointerToken(here, p.first), depth + 1);
            if (!child.ok()) return child.status();
            s->properties_.emplace(p.first, std::move(*child));
          }
        } else if (m.first == "required") {
          if (!x.is_array()) return SchemaError(field, here, "must be an array of strings");
          std::set<std::string> seen;
          for (const JsonValue& r : x.items()) {
            if (!r.is_string()) return SchemaError(field, here, "must be an array of strings");
            if (!seen.insert(r.string_value()).second) {
              return SchemaError(field, here, "repeats \"" + r.string_value() + "\"");
            }
            s->required_.push_back(r.string_value());
          }
        } else if (m.first == "enum") {
          if (!x.is_array() || x.items().empty()) {
            return SchemaError(field, here, "must be a non-empty array");
          }
          s->enum_ = x.items();
        } else if (m.first == "minimum" || m.first == "maximum") {
          if (!x.is_number()) return SchemaError(field, here, "must be a number");
          (m.first == "minimum" ? s->minimum_ : s->maximum_) = x.number();
        } else if (m.first == "maxLength") {
          if (!IsInteger(x) || x.number() < 0) {
            return SchemaError(field, here, "must be a non-negative integer");
          }
          s->max_length_ = static_cast<uint64_t>(x.number());
        } else if (m.first == "items") {
          absl::StatusOr<std::shared_ptr<Schema>> child = Run(x, here, depth + 1);
          if (!child.ok()) return child.status();
          s->items_ = std::move(*child);
        } else if (m.first == "additionalProperties") {
          if (x.kind() != JsonValue::Kind::kBool) {
            return SchemaError(field, here, "must be true or false");
          }
          s->additional_properties_ = x.bool_value();
        } else if (m.first == "description" || m.first == "title" || m.first == "$schema" ||
                   m.first == "$id" || m.first == "default" || m.first == "examples") {
          // Annotations: no effect on validation.
        } else {
          return SchemaError(field, here,
                             "unsupported keyword (supported: type, properties, "
                             "required, enum, minimum, maximum, maxLength, "
                             "items, additionalProperties)");
        }
      }
      if (s->minimum_ && s->maximum_ && *s->minimum_ > *s->maximum_) {
        return SchemaError(field, at + "/minimum", "is greater than maximum");
      }
      for (const std::string& r : s->required_) {
        if (!s->additional_properties_ && !s->properties_.count(r)) {
          return SchemaError(field, at + "/required",
                             "\"" + r + "\" is required but not allowed by properties");
        }
      }
      return s;
    }
  };
  Parser parser{field, max_depth};
  absl::StatusOr<std::shared_ptr<Schema>> root = parser.Run(doc, "", 0);
  if (!root.ok()) return root.status();
  return std::move(**root);
}

absl::Status Schema::Validate(const JsonValue& value, std::string_view field) const {
  return ValidateAt(value, Path{}, field);
}

std::string Schema::Path::Render() const {
  if (parent == nullptr) return "";
  std::string out = parent->Render();
  return key != nullptr ? AppendPointerToken(out, *key) : out + "/" + std::to_string(index);
}

absl::Status Schema::ValidateAt(const JsonValue& v, const Path& path,
                                std::string_view field) const {
  auto fail = [&](std::string_view rule, const std::string& what) {
    const std::string pointer = path.Render();
    return absl::InvalidArgumentError(std::string(field) + " " + (pointer.empty() ? "/" : pointer) +
                                      ": " + std::string(rule) + ": " + what);
  };
  unsigned bit = 0;
  switch (v.kind()) {
    case JsonValue::Kind::kNull:
      bit = kNull;
      break;
    case JsonValue::Kind::kBool:
      bit = kBoolean;
      break;
    case JsonValue::Kind::kInt:
    case JsonValue::Kind::kDouble:
      bit = IsInteger(v) ? (kInteger | kNumber) : kNumber;
      break;
    case JsonValue::Kind::kString:
      bit = kString;
      break;
    case JsonValue::Kind::kArray:
      bit = kArray;
      break;
    case JsonValue::Kind::kObject:
      bit = kObject;
      break;
  }
  if (!(types_ & bit)) {
    return fail("type", "must be " + TypesText(types_) + ", not " + TypeName(v));
  }
  if (enum_) {
    bool found = false;
    for (const JsonValue& e : *enum_) found = found || e == v;
    if (!found) return fail("enum", "must be one of the listed values");
  }
  if (v.is_number()) {
    if (minimum_ && v.number() < *minimum_) {
      return fail("minimum", "must be >= " + BoundText(*minimum_));
    }
    if (maximum_ && v.number() > *maximum_) {
      return fail("maximum", "must be <= " + BoundText(*maximum_));
    }
  }
  if (v.is_string() && max_length_ && v.string_value().size() > *max_length_) {
    return fail("maxLength", "longer than " + std::to_string(*max_length_) + " bytes");
  }
  if (v.is_array() && items_) {
    for (size_t i = 0; i < v.items().size(); ++i) {
      absl::Status s = items_->ValidateAt(v.items()[i], Path{&path, nullptr, i}, field);
      if (!s.ok()) return s;
    }
  }
  if (v.is_object()) {
    for (const std::string& r : required_) {
      if (v.Find(r) == nullptr) {
        return fail("required", "missing property \"" + r + "\"");
      }
    }
    for (const JsonValue::Member& m : v.members()) {
      auto it = properties_.find(m.first);
      if (it == properties_.end()) {
        if (!additional_properties_) {
          const Path here{&path, &m.first, 0};
          const std::string pointer = here.Render();
          return absl::InvalidArgumentError(std::string(field) + " " + pointer +
                                            ": additionalProperties: property not allowed");
        }
        continue;
      }
      absl::Status s = it->second->ValidateAt(m.second, Path{&path, &m.first, 0}, field);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

unsigned Schema::TypesAt(const std::vector<std::string>& tokens) const {
  const Schema* at = this;
  for (const std::string& t : tokens) {
    if (at->types_ & kObject) {
      auto it = at->properties_.find(t);
      if (it != at->properties_.end()) {
        at = it->second.get();
        continue;
      }
    }
    if ((at->types_ & kArray) && at->items_) {
      at = at->items_.get();
      continue;
    }
    return kAny;
  }
  return at->types_;
}

}  // namespace strata::assets
