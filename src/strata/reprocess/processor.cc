#include "strata/reprocess/processor.h"

#include <charconv>
#include <optional>

#include "strata/base/status.h"
#include "strata/reprocess/internal/processors.h"

namespace strata::reprocess {

using assets::JsonValue;

namespace internal {

absl::Status SpecError(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError("processor/" + std::string(field) + ": " + std::string(what));
}

absl::Status OnlyFields(const JsonValue& spec, std::initializer_list<std::string_view> known) {
  for (const JsonValue::Member& m : spec.members()) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || m.first == k;
    if (!ok) return SpecError(m.first, "unknown field for this kind");
  }
  return absl::OkStatus();
}

}  // namespace internal

namespace {

using internal::OnlyFields;
using internal::SpecError;

// The spec's pointer field, parsed; the whole document ("") is refused.
absl::StatusOr<std::pair<std::string, std::vector<std::string>>> PointerField(
    const JsonValue& spec, std::string_view field) {
  const JsonValue* v = spec.Find(field);
  if (v == nullptr || !v->is_string() || v->string_value().empty()) {
    return SpecError(field, "required: a JSON pointer such as \"/status\"");
  }
  STRATA_ASSIGN_OR_RETURN(
      std::vector<std::string> tokens,
      assets::ParsePointer(v->string_value(), "processor/" + std::string(field)));
  return std::make_pair(v->string_value(), std::move(tokens));
}

bool ArrayIndex(const std::string& token, size_t size, size_t* index) {
  if (token.empty() || (token.size() > 1 && token[0] == '0')) return false;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), *index);
  return ec == std::errc() && end == token.data() + token.size() && *index < size;
}

// The parent of the value at `tokens` (creating missing objects when `create`), or nullptr.
JsonValue* Parent(JsonValue* root, const std::vector<std::string>& tokens, bool create) {
  JsonValue* at = root;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (at->is_object()) {
      JsonValue* next = at->MutableFind(t);
      if (next == nullptr) {
        if (!create) return nullptr;
        at->Set(t, JsonValue::Object());
        next = at->MutableFind(t);
      }
      at = next;
    } else if (at->is_array()) {
      size_t index = 0;
      if (!ArrayIndex(t, at->items().size(), &index)) return nullptr;
      at = &at->mutable_items()[index];
    } else {
      return nullptr;
    }
  }
  return at;
}

class SetProcessor final : public Processor {
 public:
  SetProcessor(std::string pointer, std::vector<std::string> tokens, JsonValue value)
      : pointer_(std::move(pointer)), tokens_(std::move(tokens)), value_(std::move(value)) {}
  bool Batchable() const override { return true; }
  absl::StatusOr<Outcome> Apply(const AssetInfo&, JsonValue* payload) const override {
    const JsonValue* current = assets::Resolve(*payload, tokens_);
    if (current != nullptr && *current == value_ && current->kind() == value_.kind()) {
      return Outcome::kUnchanged;
    }
    STRATA_RETURN_IF_ERROR(SetAt(payload, tokens_, value_, pointer_));
    return Outcome::kChanged;
  }

 private:
  std::string pointer_;
  std::vector<std::string> tokens_;
  JsonValue value_;
};

class RemoveProcessor final : public Processor {
 public:
  explicit RemoveProcessor(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}
  bool Batchable() const override { return true; }
  absl::StatusOr<Outcome> Apply(const AssetInfo&, JsonValue* payload) const override {
    return RemoveAt(payload, tokens_) ? Outcome::kChanged : Outcome::kUnchanged;
  }

 private:
  std::vector<std::string> tokens_;
};

class MoveProcessor final : public Processor {
 public:
  MoveProcessor(bool keep_source, std::vector<std::string> from, std::string to_pointer,
                std::vector<std::string> to)
      : keep_source_(keep_source),
        from_(std::move(from)),
        to_pointer_(std::move(to_pointer)),
        to_(std::move(to)) {}
  bool Batchable() const override { return true; }
  absl::StatusOr<Outcome> Apply(const AssetInfo&, JsonValue* payload) const override {
    const JsonValue* source = assets::Resolve(*payload, from_);
    if (source == nullptr) return Outcome::kUnchanged;
    if (assets::Resolve(*payload, to_) != nullptr) {
      return absl::InvalidArgumentError(std::string(keep_source_ ? "copy" : "rename") + ": " +
                                        to_pointer_ + " exists");
    }
    JsonValue value = *source;
    if (!keep_source_) RemoveAt(payload, from_);
    STRATA_RETURN_IF_ERROR(SetAt(payload, to_, std::move(value), to_pointer_));
    return Outcome::kChanged;
  }

 private:
  bool keep_source_;
  std::vector<std::string> from_;
  std::string to_pointer_;
  std::vector<std::string> to_;
};

class MapProcessor final : public Processor {
 public:
  MapProcessor(std::string pointer, std::vector<std::string> tokens, JsonValue table,
               std::optional<JsonValue> fallback)
      : pointer_(std::move(pointer)),
        tokens_(std::move(tokens)),
        table_(std::move(table)),
        fallback_(std::move(fallback)) {}
  bool Batchable() const override { return true; }
  absl::StatusOr<Outcome> Apply(const AssetInfo&, JsonValue* payload) const override {
    const JsonValue* current = assets::Resolve(*payload, tokens_);
    if (current == nullptr || !current->is_string()) return Outcome::kUnchanged;
    const JsonValue* mapped = table_.Find(current->string_value());
    if (mapped == nullptr) {
      if (!fallback_) return Outcome::kUnchanged;
      mapped = &*fallback_;
    }
    if (*mapped == *current && mapped->kind() == current->kind()) return Outcome::kUnchanged;
    STRATA_RETURN_IF_ERROR(SetAt(payload, tokens_, *mapped, pointer_));
    return Outcome::kChanged;
  }

 private:
  std::string pointer_;
  std::vector<std::string> tokens_;
  JsonValue table_;
  std::optional<JsonValue> fallback_;
};

class ValidateProcessor final : public Processor {
 public:
  explicit ValidateProcessor(std::optional<assets::Schema> schema) : schema_(std::move(schema)) {}
  bool Batchable() const override { return true; }
  absl::StatusOr<Outcome> Apply(const AssetInfo&, JsonValue* payload) const override {
    if (!schema_) return absl::InternalError("validate: no schema to validate against");
    STRATA_RETURN_IF_ERROR(schema_->Validate(*payload));
    return Outcome::kUnchanged;
  }

 private:
  std::optional<assets::Schema> schema_;
};

}  // namespace

absl::Status SetAt(JsonValue* root, const std::vector<std::string>& tokens, JsonValue value,
                   const std::string& pointer) {
  if (tokens.empty()) {
    *root = std::move(value);
    return absl::OkStatus();
  }
  JsonValue* parent = Parent(root, tokens, /*create=*/true);
  if (parent == nullptr) {
    return absl::InvalidArgumentError("set " + pointer + ": a parent is not an object");
  }
  const std::string& last = tokens.back();
  if (parent->is_object()) {
    parent->Set(last, std::move(value));
    return absl::OkStatus();
  }
  if (parent->is_array()) {
    if (last == "-") {
      parent->mutable_items().push_back(std::move(value));
      return absl::OkStatus();
    }
    size_t index = 0;
    if (!ArrayIndex(last, parent->items().size(), &index)) {
      return absl::InvalidArgumentError("set " + pointer + ": no such array element");
    }
    parent->mutable_items()[index] = std::move(value);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("set " + pointer + ": the parent is a scalar");
}

bool RemoveAt(JsonValue* root, const std::vector<std::string>& tokens) {
  if (tokens.empty()) return false;
  JsonValue* parent = Parent(root, tokens, /*create=*/false);
  if (parent == nullptr) return false;
  const std::string& last = tokens.back();
  if (parent->is_object()) {
    if (parent->Find(last) == nullptr) return false;
    parent->Remove(last);
    return true;
  }
  if (parent->is_array()) {
    size_t index = 0;
    if (!ArrayIndex(last, parent->items().size(), &index)) return false;
    parent->mutable_items().erase(parent->mutable_items().begin() +
                                  static_cast<std::ptrdiff_t>(index));
    return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<Processor>> MakeProcessor(const JsonValue& spec,
                                                         const ProcessorEnv& env) {
  if (!spec.is_object()) return absl::InvalidArgumentError("processor: must be an object");
  const JsonValue* kind = spec.Find("kind");
  if (kind == nullptr || !kind->is_string()) {
    return SpecError("kind",
                     "required: set, remove, rename, copy, map, validate, reindex, export or "
                     "webhook");
  }
  const std::string& k = kind->string_value();
  if (k == "set") {
    STRATA_RETURN_IF_ERROR(OnlyFields(spec, {"kind", "path", "value"}));
    STRATA_ASSIGN_OR_RETURN(auto path, PointerField(spec, "path"));
    const JsonValue* value = spec.Find("value");
    if (value == nullptr) return SpecError("value", "required (null is a value)");
    return std::unique_ptr<Processor>(
        new SetProcessor(std::move(path.first), std::move(path.second), *value));
  }
  if (k == "remove") {
    STRATA_RETURN_IF_ERROR(OnlyFields(spec, {"kind", "path"}));
    STRATA_ASSIGN_OR_RETURN(auto path, PointerField(spec, "path"));
    return std::unique_ptr<Processor>(new RemoveProcessor(std::move(path.second)));
  }
  if (k == "rename" || k == "copy") {
    STRATA_RETURN_IF_ERROR(OnlyFields(spec, {"kind", "from", "to"}));
    STRATA_ASSIGN_OR_RETURN(auto from, PointerField(spec, "from"));
    STRATA_ASSIGN_OR_RETURN(auto to, PointerField(spec, "to"));
    if (from.first == to.first) return SpecError("to", "must differ from \"from\"");
    if (to.first.compare(0, from.first.size() + 1, from.first + "/") == 0) {
      return SpecError("to", "must not be inside \"from\"");
    }
    return std::unique_ptr<Processor>(new MoveProcessor(k == "copy", std::move(from.second),
                                                        std::move(to.first), std::move(to.second)));
  }
  if (k == "map") {
    STRATA_RETURN_IF_ERROR(OnlyFields(spec, {"kind", "path", "table", "default"}));
    STRATA_ASSIGN_OR_RETURN(auto path, PointerField(spec, "path"));
    const JsonValue* table = spec.Find("table");
    if (table == nullptr || !table->is_object() || table->members().empty()) {
      return SpecError("table", "required: a non-empty object of string -> value");
    }
    std::optional<JsonValue> fallback;
    if (const JsonValue* d = spec.Find("default")) fallback = *d;
    return std::unique_ptr<Processor>(new MapProcessor(
        std::move(path.first), std::move(path.second), *table, std::move(fallback)));
  }
  if (k == "validate") {
    STRATA_RETURN_IF_ERROR(OnlyFields(spec, {"kind", "schema_version"}));
    std::optional<uint32_t> version;
    if (const JsonValue* v = spec.Find("schema_version")) {
      if (v->kind() != JsonValue::Kind::kInt || v->int_value() < 1 || v->int_value() > UINT32_MAX) {
        return SpecError("schema_version", "must be a type version (an integer >= 1)");
      }
      version = static_cast<uint32_t>(v->int_value());
    }
    if (!env.schema) return std::unique_ptr<Processor>(new ValidateProcessor(std::nullopt));
    absl::StatusOr<assets::Schema> schema = env.schema(version);
    if (!schema.ok()) return SpecError("schema_version", std::string(schema.status().message()));
    return std::unique_ptr<Processor>(new ValidateProcessor(std::move(*schema)));
  }
  if (k == "reindex") return internal::MakeReindexProcessor(spec, env.type);
  if (k == "export") return internal::MakeExportProcessor(spec);
  if (k == "webhook") return internal::MakeWebhookProcessor(spec);
  return SpecError("kind", "\"" + k +
                               "\" is not a processor (set, remove, rename, copy, map, validate, "
                               "reindex, export, webhook)");
}

}  // namespace strata::reprocess
