#include "strata/assets/asset_service.h"

#include <algorithm>
#include <cmath>
#include <span>
#include <unordered_set>

#include "strata/assets/index_key.h"
#include "strata/base/coding.h"
#include "strata/base/crash_point.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"

namespace strata::assets {
namespace {

constexpr char kTypeRowFormatV1 = 1;
constexpr int kMaxWriteAttempts = 16;
constexpr size_t kMaxListLimit = 1000;

absl::Status ValidateTypeName(std::string_view type) {
  if (type.empty() || type.size() > 64) {
    return absl::InvalidArgumentError("type: must be 1..64 characters of [A-Za-z0-9_-]");
  }
  for (char c : type) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-')) {
      return absl::InvalidArgumentError("type: must be 1..64 characters of [A-Za-z0-9_-]");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AssetId> ParseId(std::string_view id) {
  std::optional<AssetId> parsed = AssetId::Parse(id);
  if (!parsed) {
    return absl::InvalidArgumentError("id: \"" + std::string(id.substr(0, 64)) +
                                      "\" is not a UUIDv7 asset id");
  }
  return *parsed;
}

std::string_view BucketName(BucketUnit unit) { return unit == BucketUnit::kDay ? "day" : "month"; }

absl::Status NoAsset(std::string_view type, const AssetId& id) {
  return absl::NotFoundError("asset: no asset " + id.ToString() + " of type " + std::string(type));
}

bool IsConditionFailure(const absl::Status& s) { return absl::IsFailedPrecondition(s); }

// A stored asset as an update reads it: the row, and its bytes, which the update's
// compare-and-set expects unchanged. NotFound naming the asset, DataLoss on a corrupt row,
// FailedPrecondition when `if_match` names another version.
struct StoredAsset {
  std::string raw;
  AssetRow row;
  store::ReadStamp stamp = 0;  // the read's (WriteBatch::Expect), 0 = none
};
absl::StatusOr<StoredAsset> ReadForUpdate(store::Table* assets, const std::string& partition,
                                          const std::string& key, std::string_view type,
                                          const AssetId& id, std::optional<uint32_t> if_match) {
  std::vector<store::ReadStamp> stamps;
  store::ReadOptions read_options;
  read_options.stamps = &stamps;
  absl::StatusOr<std::string> raw = assets->Get(partition, key, read_options);
  if (absl::IsNotFound(raw.status())) return NoAsset(type, id);
  if (!raw.ok()) return raw.status();
  std::optional<AssetRow> row = DecodeAssetRow(*raw);
  if (!row) return absl::DataLossError("asset " + id.ToString() + ": corrupt row");
  if (if_match && row->version != *if_match) {
    return absl::FailedPreconditionError("If-Match: the asset is at version " +
                                         std::to_string(row->version) + ", not " +
                                         std::to_string(*if_match));
  }
  return StoredAsset{std::move(*raw), std::move(*row), store::StampAt(stamps, 0)};
}

uint64_t Fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Parses a stored type definition (the JSON written by AssetType::ToJson).
absl::StatusOr<std::shared_ptr<AssetType>> ParseTypeJson(std::string_view json) {
  STRATA_ASSIGN_OR_RETURN(JsonValue doc, ParseJson(json, "stored type", 64));
  auto t = std::make_shared<AssetType>();
  auto need = [&](std::string_view key) -> absl::StatusOr<const JsonValue*> {
    const JsonValue* v = doc.Find(key);
    if (v == nullptr) return absl::DataLossError("stored type: lacks " + std::string(key));
    return v;
  };
  STRATA_ASSIGN_OR_RETURN(const JsonValue* name, need("name"));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* version, need("version"));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* schema, need("schema"));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* indexes, need("indexes"));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* bucket, need("bucket"));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* keep, need("keep_versions"));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* created, need("created_at"));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* updated, need("updated_at"));
  STRATA_ASSIGN_OR_RETURN(const JsonValue* next_index, need("next_index_id"));
  t->name = name->string_value();
  t->version = static_cast<uint32_t>(version->int_value());
  t->schema_doc = *schema;
  STRATA_ASSIGN_OR_RETURN(t->schema, Schema::Parse(*schema, "stored schema", 64));
  for (const JsonValue& i : indexes->items()) {
    IndexDef def;
    const JsonValue* p = i.Find("pointer");
    const JsonValue* id = i.Find("id");
    const JsonValue* ready = i.Find("ready");
    if (p == nullptr || id == nullptr || ready == nullptr) {
      return absl::DataLossError("stored type: bad index");
    }
    def.pointer = p->string_value();
    STRATA_ASSIGN_OR_RETURN(def.tokens, ParsePointer(def.pointer, "stored index"));
    def.id = static_cast<uint16_t>(id->int_value());
    def.ready = ready->bool_value();
    t->indexes.push_back(std::move(def));
  }
  t->bucket = bucket->string_value() == "month" ? BucketUnit::kMonth : BucketUnit::kDay;
  t->keep_versions = static_cast<uint32_t>(keep->int_value());
  t->created_at = created->int_value();
  t->updated_at = updated->int_value();
  t->next_index_id = static_cast<uint16_t>(next_index->int_value());
  return t;
}

// |integers| below this are exact as doubles (index values are doubles).
constexpr int64_t kExactDoubleLimit = int64_t{1} << 53;

struct BoundCondition {
  const WhereCondition* condition;
  uint16_t index_id;
  bool exact_value;  // the condition's value is exact as a double
};

// Whether a row satisfies every condition. Each is decided on the row's own index entry for
// its pointer when that entry holds the value exactly -- a number within +-2^53, a string
// shorter than the indexed prefix, a boolean, null -- and otherwise on the payload, parsed
// once (a missing or non-scalar value has no entry; an entry of a long string or a big
// integer is rounded). Index ids are never reused and each stands for one pointer, so an
// entry is the value of this row's payload at that pointer.
absl::StatusOr<bool> MatchesAll(const std::vector<BoundCondition>& conditions,
                                const AssetRow& row) {
  std::optional<JsonValue> payload;
  for (const BoundCondition& b : conditions) {
    std::optional<JsonValue> value;
    if (b.exact_value) {
      for (const std::string& e : row.index_entries) {
        if (e.size() < 3 || static_cast<uint8_t>(e[0]) != (b.index_id >> 8) ||
            static_cast<uint8_t>(e[1]) != (b.index_id & 0xff)) {
          continue;
        }
        std::string_view encoded(e);
        encoded.remove_prefix(2);
        value = DecodeIndexValue(&encoded);
        if (value &&
            ((value->is_number() &&
              std::fabs(value->number()) >= static_cast<double>(kExactDoubleLimit)) ||
             (value->is_string() && value->string_value().size() >= kMaxIndexedStringBytes))) {
          value.reset();  // possibly rounded or cut: ask the payload
        }
        break;
      }
    }
    bool match;
    if (value) {
      match = MatchesWhereValue(*b.condition, &*value);
    } else {
      if (!payload) {
        STRATA_ASSIGN_OR_RETURN(payload, ParseJson(row.payload, "stored payload", 1024));
      }
      match = MatchesWhere(*b.condition, *payload);
    }
    if (!match) return false;
  }
  return true;
}

}  // namespace

std::string AssetType::ToJson() const {
  std::string out = "{\"name\":";
  AppendJsonString(&out, name);
  out += ",\"version\":" + std::to_string(version) + ",\"schema\":";
  schema_doc.AppendTo(&out);
  out += ",\"indexed\":[";
  for (size_t i = 0; i < indexes.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(&out, indexes[i].pointer);
  }
  out += "],\"indexes\":[";
  for (size_t i = 0; i < indexes.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += "{\"pointer\":";
    AppendJsonString(&out, indexes[i].pointer);
    out += ",\"id\":" + std::to_string(indexes[i].id) +
           ",\"ready\":" + (indexes[i].ready ? "true" : "false") + "}";
  }
  out += "],\"bucket\":\"" + std::string(BucketName(bucket)) +
         "\",\"keep_versions\":" + std::to_string(keep_versions) +
         ",\"created_at\":" + std::to_string(created_at) +
         ",\"updated_at\":" + std::to_string(updated_at) +
         ",\"next_index_id\":" + std::to_string(next_index_id) + "}";
  return out;
}

AssetService::AssetService(store::RowStore* rows, store::Queue* queue, Clock* clock,
                           MetricsRegistry* metrics, AssetOptions options)
    : rows_(rows), queue_(queue), clock_(clock), options_(options), ids_(clock, options.id_seed) {
  auto counter = [&](const char* name, const char* help, const std::string& labels = "") {
    return metrics->GetCounter(name, help, labels);
  };
  const char* writes_help = "Asset writes acknowledged, by operation";
  creates_ = counter("strata_assets_writes_total", writes_help, "op=\"create\"");
  updates_ = counter("strata_assets_writes_total", writes_help, "op=\"update\"");
  deletes_ = counter("strata_assets_writes_total", writes_help, "op=\"delete\"");
  conflicts_ = counter("strata_assets_write_conflicts_total",
                       "Asset writes whose compare-and-set found the row changed (retried, "
                       "or 412 under If-Match)");
  rejected_ =
      counter("strata_assets_rejected_total", "Asset payloads refused by their type's schema");
  published_ = counter("strata_assets_changes_published_total",
                       "Change events published to the per-type topics");
  publish_failures_ = counter("strata_assets_publish_failures_total",
                              "Outbox forwards that failed and were left for a retry");
  examined_ = counter("strata_assets_search_examined_total",
                      "Index entries examined by searches (candidates before re-checks)");
}

absl::StatusOr<std::unique_ptr<AssetService>> AssetService::Open(store::RowStore* rows,
                                                                 store::Queue* queue, Clock* clock,
                                                                 MetricsRegistry* metrics,
                                                                 AssetOptions options) {
  if (rows == nullptr || queue == nullptr || clock == nullptr || metrics == nullptr) {
    return absl::InvalidArgumentError("AssetService: rows, queue, clock and metrics needed");
  }
  if (options.max_batch < 1 || options.max_batch > store::kMaxPublishBatch) {
    return absl::InvalidArgumentError("max_batch: must be 1..10000");
  }
  if (options.max_depth < 1 || options.max_depth > 256) {
    return absl::InvalidArgumentError("max_depth: must be 1..256");
  }
  std::unique_ptr<AssetService> service(new AssetService(rows, queue, clock, metrics, options));
  STRATA_RETURN_IF_ERROR(service->Init());
  return service;
}

absl::Status AssetService::Init() {
  STRATA_ASSIGN_OR_RETURN(types_, rows_->OpenTable({"asset_types", store::TableProfile::kLive}));
  // kDocument: a store created before that profile existed keeps the assets table's live
  // tuning (a table keeps its profile).
  STRATA_ASSIGN_OR_RETURN(assets_, rows_->OpenTable({"assets", store::TableProfile::kDocument}));
  STRATA_RETURN_IF_ERROR(RecoverOutboxes());
  if (options_.max_queued_forwards > 0) forwarder_ = std::thread([this] { ForwardLoop(); });
  return absl::OkStatus();
}

std::string AssetService::TopicFor(std::string_view type) {
  return "assets." + std::string(type) + ".changes";
}

std::mutex& AssetService::StripeFor(const AssetId& id) {
  return stripes_[Fnv1a(id.view()) % stripes_.size()];
}

// ---------------------------------------------------------------------------------------
// Types

absl::StatusOr<std::shared_ptr<const AssetType>> AssetService::LoadType(std::string_view type) {
  STRATA_RETURN_IF_ERROR(ValidateTypeName(type));
  absl::StatusOr<std::string> raw = types_->Get(type, "");
  if (absl::IsNotFound(raw.status())) {
    return absl::NotFoundError("type: no asset type \"" + std::string(type) + "\"");
  }
  if (!raw.ok()) return raw.status();
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = type_cache_.find(type);
    if (it != type_cache_.end() && it->second.first == *raw) return it->second.second;
  }
  if (raw->empty() || (*raw)[0] != kTypeRowFormatV1) {
    return absl::DataLossError("type " + std::string(type) + ": unknown row format");
  }
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<AssetType> parsed,
                          ParseTypeJson(std::string_view(*raw).substr(1)));
  std::shared_ptr<const AssetType> result = std::move(parsed);
  std::lock_guard<std::mutex> lock(cache_mu_);
  type_cache_[std::string(type)] = {std::move(*raw), result};
  return result;
}

absl::StatusOr<std::shared_ptr<const AssetType>> AssetService::PutType(std::string_view type,
                                                                       std::string_view body) {
  STRATA_RETURN_IF_ERROR(ValidateTypeName(type));
  if (body.size() > options_.max_schema_bytes + 16 * 1024) {
    return absl::OutOfRangeError("body: larger than " +
                                 std::to_string(options_.max_schema_bytes + 16 * 1024) + " bytes");
  }
  STRATA_ASSIGN_OR_RETURN(JsonValue doc,
                          ParseJson(body, "body", options_.max_schema_depth * 2 + 4));
  if (!doc.is_object()) return absl::InvalidArgumentError("body: must be a JSON object");
  const JsonValue* schema_doc = nullptr;
  std::vector<std::string> indexed;
  std::optional<BucketUnit> bucket;
  std::optional<uint32_t> keep;
  for (const JsonValue::Member& m : doc.members()) {
    if (m.first == "schema") {
      schema_doc = &m.second;
    } else if (m.first == "indexed") {
      if (!m.second.is_array()) {
        return absl::InvalidArgumentError("indexed: must be an array of JSON pointers");
      }
      for (size_t i = 0; i < m.second.items().size(); ++i) {
        const JsonValue& p = m.second.items()[i];
        const std::string field = "indexed/" + std::to_string(i);
        if (!p.is_string() || p.string_value().empty()) {
          return absl::InvalidArgumentError(field + ": must be a JSON pointer such as \"/a\"");
        }
        STRATA_RETURN_IF_ERROR(ParsePointer(p.string_value(), field).status());
        if (p.string_value().size() > 256) {
          return absl::InvalidArgumentError(field + ": longer than 256 bytes");
        }
        if (std::find(indexed.begin(), indexed.end(), p.string_value()) != indexed.end()) {
          return absl::InvalidArgumentError(field + ": repeats " + p.string_value());
        }
        indexed.push_back(p.string_value());
      }
      if (indexed.size() > options_.max_indexed) {
        return absl::InvalidArgumentError("indexed: more than " +
                                          std::to_string(options_.max_indexed) + " pointers");
      }
    } else if (m.first == "bucket") {
      if (m.second.is_string() && m.second.string_value() == "day") {
        bucket = BucketUnit::kDay;
      } else if (m.second.is_string() && m.second.string_value() == "month") {
        bucket = BucketUnit::kMonth;
      } else {
        return absl::InvalidArgumentError("bucket: must be \"day\" or \"month\"");
      }
    } else if (m.first == "keep_versions") {
      if (m.second.kind() != JsonValue::Kind::kInt || m.second.int_value() < 0 ||
          m.second.int_value() > 1000) {
        return absl::InvalidArgumentError("keep_versions: must be an integer 0..1000");
      }
      keep = static_cast<uint32_t>(m.second.int_value());
    } else {
      return absl::InvalidArgumentError(m.first +
                                        ": unknown field (known: schema, indexed, "
                                        "bucket, keep_versions)");
    }
  }
  if (schema_doc == nullptr) return absl::InvalidArgumentError("schema: required");
  if (schema_doc->Serialize().size() > options_.max_schema_bytes) {
    return absl::InvalidArgumentError("schema: larger than " +
                                      std::to_string(options_.max_schema_bytes) + " bytes");
  }
  STRATA_ASSIGN_OR_RETURN(Schema schema,
                          Schema::Parse(*schema_doc, "schema", options_.max_schema_depth));
  for (size_t i = 0; i < indexed.size(); ++i) {
    STRATA_ASSIGN_OR_RETURN(std::vector<std::string> tokens, ParsePointer(indexed[i], "indexed"));
    const unsigned types = schema.TypesAt(tokens);
    if (types != Schema::kAny && !(types & ~(Schema::kObject | Schema::kArray))) {
      return absl::InvalidArgumentError("indexed/" + std::to_string(i) + ": " + indexed[i] +
                                        " is an object or array in the schema; only scalar "
                                        "values are indexed");
    }
  }
  // Topic first: an asset written right after the type must find it.
  STRATA_RETURN_IF_ERROR(queue_->CreateTopic(store::TopicOptions{TopicFor(type), 1}));

  for (int attempt = 0; attempt < kMaxWriteAttempts; ++attempt) {
    absl::StatusOr<std::string> head = types_->Get(type, "");
    if (!head.ok() && !absl::IsNotFound(head.status())) return head.status();
    std::shared_ptr<AssetType> old;
    if (head.ok()) {
      if (head->empty() || (*head)[0] != kTypeRowFormatV1) {
        return absl::DataLossError("type " + std::string(type) + ": unknown row format");
      }
      STRATA_ASSIGN_OR_RETURN(old, ParseTypeJson(std::string_view(*head).substr(1)));
    }
    if (old && bucket && *bucket != old->bucket) {
      return absl::InvalidArgumentError(
          "bucket: cannot change from " + std::string(BucketName(old->bucket)) + " to " +
          std::string(BucketName(*bucket)) + " once the type exists (rows are partitioned by it)");
    }
    // Does the type have assets? New indexes are then not ready until backfilled.
    bool has_assets = false;
    if (old) {
      store::ScanOptions probe;
      probe.start = std::string(1, kBucketPrefix);
      probe.end = std::string(1, kBucketPrefix + 1);
      probe.limit = 1;
      STRATA_ASSIGN_OR_RETURN(store::ScanPage page, types_->Scan(type, probe));
      has_assets = !page.rows.empty();
    }
    auto next = std::make_shared<AssetType>();
    next->name = std::string(type);
    next->schema_doc = *schema_doc;
    next->schema = schema;
    next->bucket = old ? old->bucket : bucket.value_or(BucketUnit::kDay);
    next->keep_versions = keep.value_or(old ? old->keep_versions : options_.default_keep_versions);
    next->next_index_id = old ? old->next_index_id : 1;
    for (const std::string& p : indexed) {
      IndexDef def;
      def.pointer = p;
      def.tokens = *ParsePointer(p, "indexed");
      const IndexDef* existing = nullptr;
      if (old) {
        for (const IndexDef& d : old->indexes) {
          if (d.pointer == p) existing = &d;
        }
      }
      if (existing != nullptr) {
        def.id = existing->id;
        def.ready = existing->ready;
      } else {
        if (next->next_index_id == UINT16_MAX) {
          return absl::ResourceExhaustedError("indexed: this type has used up its index ids");
        }
        def.id = next->next_index_id++;
        def.ready = !has_assets;
      }
      next->indexes.push_back(std::move(def));
    }
    const Millis now = clock_->NowMillis();
    if (old) {
      bool same = old->schema_doc == next->schema_doc &&
                  old->keep_versions == next->keep_versions &&
                  old->indexes.size() == next->indexes.size();
      for (size_t i = 0; same && i < old->indexes.size(); ++i) {
        same = old->indexes[i].pointer == next->indexes[i].pointer;
      }
      if (same) return std::shared_ptr<const AssetType>(old);
      next->version = old->version + 1;
      next->created_at = old->created_at;
    } else {
      next->version = 1;
      next->created_at = now;
    }
    next->updated_at = now;
    std::string row(1, kTypeRowFormatV1);
    row += next->ToJson();
    store::WriteBatch batch;
    batch.Expect("", head.ok() ? std::optional<std::string>(*head) : std::nullopt);
    batch.Put("", row);
    batch.Put(TypeVersionKey(next->version), row);
    absl::Status s = types_->Apply(type, batch);
    if (IsConditionFailure(s)) {
      conflicts_->Inc();
      continue;
    }
    STRATA_RETURN_IF_ERROR(s);
    return std::shared_ptr<const AssetType>(std::move(next));
  }
  return absl::AbortedError("type: too many concurrent changes, try again");
}

absl::StatusOr<TypeWithHistory> AssetService::GetType(std::string_view type) {
  TypeWithHistory out;
  STRATA_ASSIGN_OR_RETURN(out.current, LoadType(type));
  store::ScanOptions options;
  options.start = std::string(1, kTypeVersionPrefix);
  options.end = std::string(1, kTypeVersionPrefix + 1);
  options.reverse = true;
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(store::ScanPage page, types_->Scan(type, options));
    for (store::Row& row : page.rows) {
      if (!row.value.empty() && row.value[0] == kTypeRowFormatV1) {
        out.history_json.push_back(row.value.substr(1));
      }
    }
    if (page.next_cursor.empty()) break;
    options.cursor = std::move(page.next_cursor);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Writes

absl::StatusOr<JsonValue> AssetService::ParsePayload(std::string_view text) const {
  if (text.size() > options_.max_payload_bytes) {
    return absl::OutOfRangeError("payload: larger than " +
                                 std::to_string(options_.max_payload_bytes) + " bytes");
  }
  STRATA_ASSIGN_OR_RETURN(JsonValue payload, ParseJson(text, "payload", options_.max_depth));
  if (!payload.is_object()) return absl::InvalidArgumentError("payload: must be a JSON object");
  return payload;
}

std::vector<std::string> AssetService::IndexEntries(const AssetType& type,
                                                    const JsonValue& payload) const {
  std::vector<std::string> entries;
  entries.reserve(type.indexes.size() + 1);
  entries.push_back(IndexEntry(kEveryAssetIndex, ""));
  for (const IndexDef& def : type.indexes) {
    const JsonValue* v = Resolve(payload, def.tokens);
    if (v == nullptr) continue;
    std::optional<std::string> encoded = EncodeIndexValue(*v);
    if (!encoded) continue;
    entries.push_back(IndexEntry(def.id, *encoded));
  }
  return entries;
}

absl::Status AssetService::EnsureBucket(const AssetType& type, Millis bucket) {
  std::string key = type.name + "/" + std::to_string(bucket);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (known_buckets_.count(key)) return absl::OkStatus();
  }
  // Written before the assets that go into it, so the directory never lacks a bucket that
  // has assets (it may name an empty one, if the asset write then fails). Its value says
  // that every asset of the bucket has an index-0 entry (this process writes one for each).
  STRATA_RETURN_IF_ERROR(types_->Put(type.name, BucketDirectoryKey(bucket), kBucketListedByIndex));
  std::lock_guard<std::mutex> lock(cache_mu_);
  known_buckets_.insert(std::move(key));
  return absl::OkStatus();
}

absl::Status AssetService::PublishOutbox(const std::string& type, const std::string& partition,
                                         const std::string& outbox_key,
                                         const std::vector<store::PublishMessage>& messages) {
  // The last (usually the only) publish removes the outbox row with it: on the embedded
  // queue in the same write (a request's update costs two writes of the store, not three);
  // on others just after (a crash in between publishes the events again: at least once).
  if (messages.empty()) return assets_->Delete(partition, outbox_key);
  store::PartitionWrite remove_outbox{assets_, partition, store::WriteBatch()};
  remove_outbox.batch.Delete(outbox_key);
  const std::string topic = TopicFor(type);
  for (size_t at = 0; at < messages.size(); at += store::kMaxPublishBatch) {
    const size_t n = std::min(store::kMaxPublishBatch, messages.size() - at);
    const std::span<const store::PublishMessage> part(&messages[at], n);
    const bool last = at + n == messages.size();
    STRATA_RETURN_IF_ERROR((last ? queue_->PublishThen(topic, part, remove_outbox)
                                 : queue_->Publish(topic, part))
                               .status());
  }
  return absl::OkStatus();
}

void AssetService::Forward(const std::string& type, const std::string& partition,
                           const std::string& outbox_key, const std::vector<std::string>& events) {
  if (options_.max_queued_forwards > 0) {
    std::unique_lock<std::mutex> lock(forward_mu_);
    // A full queue makes the writer wait for room (backpressure), never jump the queue: the
    // feed keeps write order, so one asset's events stay in version order.
    forward_idle_cv_.wait(lock, [&] {
      return forward_stop_ || forwards_.size() < options_.max_queued_forwards;
    });
    if (!forward_stop_) {
      forwards_.push_back({type, partition, outbox_key, events});
      ++forwards_queued_;
      forward_cv_.notify_one();
      return;
    }
  }
  ForwardNow(type, partition, outbox_key, events);
}

void AssetService::ForwardLoop() {
  ThreadPool::NameCurrentThread("strata-assetfwd");
  std::unique_lock<std::mutex> lock(forward_mu_);
  for (;;) {
    forward_cv_.wait(lock, [&] { return forward_stop_ || !forwards_.empty(); });
    if (forwards_.empty()) return;  // stopping, and everything published
    PendingForward next = std::move(forwards_.front());
    forwards_.pop_front();
    lock.unlock();
    ForwardNow(next.type, next.partition, next.outbox_key, next.events);
    lock.lock();
    ++forwards_done_;
    forward_idle_cv_.notify_all();
  }
}

void AssetService::FlushChanges() {
  // Those queued before this call only (FIFO): a steady stream of writes does not hold it.
  std::unique_lock<std::mutex> lock(forward_mu_);
  const uint64_t target = forwards_queued_;
  forward_idle_cv_.wait(lock, [&] { return forwards_done_ >= target; });
}

AssetService::~AssetService() {
  {
    std::lock_guard<std::mutex> lock(forward_mu_);
    forward_stop_ = true;
  }
  forward_cv_.notify_all();
  forward_idle_cv_.notify_all();
  if (forwarder_.joinable()) forwarder_.join();
}

void AssetService::ForwardNow(const std::string& type, const std::string& partition,
                              const std::string& outbox_key,
                              const std::vector<std::string>& events) {
  // The batch is durable; its events wait in the outbox row (Open publishes them if the
  // process dies here).
  STRATA_CRASH_POINT("assets.before_publish");
  std::vector<store::PublishMessage> messages;
  messages.reserve(events.size());
  for (const std::string& e : events) messages.push_back({"", e, 0});
  absl::Status s = PublishOutbox(type, partition, outbox_key, messages);
  if (!s.ok()) {
    publish_failures_->Inc();
    STRATA_LOG_WARN("assets: change events left in the outbox for a retry", "partition", partition,
                    "error", s.ToString());
    std::lock_guard<std::mutex> lock(cache_mu_);
    pending_outbox_partitions_.insert(partition);
    has_pending_.store(true);
    return;
  }
  published_->Inc(events.size());
  if (has_pending_.load(std::memory_order_relaxed)) RetryPending();
}

absl::Status AssetService::FlushPartition(const std::string& partition) {
  const std::string type = partition.substr(0, partition.find('/'));
  store::ScanOptions options;
  options.start = std::string(1, kOutboxPrefix);
  options.end = std::string(1, kOutboxPrefix + 1);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(store::ScanPage page, assets_->Scan(partition, options));
    for (const store::Row& row : page.rows) {
      std::optional<std::vector<std::string>> events = DecodeOutbox(row.value);
      if (!events) return absl::DataLossError("assets: corrupt outbox row in " + partition);
      std::vector<store::PublishMessage> messages;
      for (std::string& e : *events) messages.push_back({"", std::move(e), 0});
      STRATA_RETURN_IF_ERROR(PublishOutbox(type, partition, row.clustering, messages));
      published_->Inc(messages.size());
    }
    if (page.next_cursor.empty()) return absl::OkStatus();
    options.cursor = std::move(page.next_cursor);
  }
}

void AssetService::RetryPending() {
  std::set<std::string> pending;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    pending.swap(pending_outbox_partitions_);
    has_pending_.store(false);
  }
  for (const std::string& partition : pending) {
    absl::Status s = FlushPartition(partition);
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(cache_mu_);
      pending_outbox_partitions_.insert(partition);
      has_pending_.store(true);
    }
  }
}

absl::Status AssetService::RecoverOutboxes() {
  // Every type's head row, then its bucket directory: the partitions that may hold outbox
  // rows. Types are few; buckets are days or months.
  STRATA_ASSIGN_OR_RETURN(std::vector<store::KeyRange> ranges, types_->SplitRanges(1));
  std::vector<std::string> partitions;
  std::map<std::string, BucketUnit> units;
  for (const store::KeyRange& range : ranges) {
    std::string cursor;
    for (;;) {
      STRATA_ASSIGN_OR_RETURN(store::TableScanPage page,
                              types_->ScanRange(range, store::kMaxPageRows, cursor));
      for (const store::TableRow& row : page.rows) {
        if (row.clustering.empty()) {
          absl::StatusOr<std::shared_ptr<const AssetType>> t = LoadType(row.partition);
          if (t.ok()) units[row.partition] = (*t)->bucket;
        } else if (row.clustering[0] == kBucketPrefix && row.clustering.size() == 9) {
          auto unit = units.find(row.partition);
          if (unit == units.end()) continue;
          std::string_view k(row.clustering);
          k.remove_prefix(1);
          uint64_t start = 0;
          coding::GetFixed64BE(&k, &start);
          partitions.push_back(
              BucketPartition(row.partition, unit->second, static_cast<Millis>(start)));
          std::lock_guard<std::mutex> lock(cache_mu_);
          known_buckets_.insert(row.partition + "/" + std::to_string(start));
        }
      }
      if (page.next_cursor.empty()) break;
      cursor = std::move(page.next_cursor);
    }
  }
  for (const std::string& partition : partitions) {
    STRATA_RETURN_IF_ERROR(FlushPartition(partition));
  }
  return absl::OkStatus();
}

absl::StatusOr<Asset> AssetService::Create(std::string_view type_name,
                                           std::string_view payload_text) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  STRATA_ASSIGN_OR_RETURN(JsonValue payload, ParsePayload(payload_text));
  if (absl::Status s = type->schema.Validate(payload); !s.ok()) {
    rejected_->Inc();
    return s;
  }
  Asset asset;
  asset.type = type->name;
  asset.row.payload = payload.Serialize();
  if (asset.row.payload.size() > options_.max_payload_bytes) {
    return absl::OutOfRangeError("payload: larger than " +
                                 std::to_string(options_.max_payload_bytes) + " bytes");
  }
  asset.id = ids_.Next();
  asset.row.version = 1;
  asset.row.schema_version = type->version;
  asset.row.created_at = asset.id.time();
  asset.row.updated_at = asset.row.created_at;
  asset.row.index_entries = IndexEntries(*type, payload);
  const Millis bucket = BucketStart(type->bucket, asset.id.time());
  STRATA_RETURN_IF_ERROR(EnsureBucket(*type, bucket));
  const std::string partition = BucketPartition(type->name, type->bucket, bucket);
  store::WriteBatch batch;
  batch.Put(AssetKey(asset.id), EncodeAssetRow(asset.row));
  for (const std::string& e : asset.row.index_entries) {
    batch.Put(IndexKeyFromEntry(e, asset.id), "");
  }
  std::vector<std::string> events = {
      EncodeChangeEvent({type->name, asset.id, 1, ChangeOp::kCreate, asset.row.created_at})};
  const std::string outbox_key = OutboxKey(asset.id, 1);
  batch.Put(outbox_key, EncodeOutbox(events));
  STRATA_RETURN_IF_ERROR(assets_->Apply(partition, batch));
  creates_->Inc();
  Forward(type->name, partition, outbox_key, events);
  return asset;
}

absl::StatusOr<BatchResult> AssetService::CreateBatch(std::string_view type_name,
                                                      std::string_view body) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  STRATA_ASSIGN_OR_RETURN(JsonValue doc, ParseJson(body, "body", options_.max_depth + 1));
  if (!doc.is_array()) {
    return absl::InvalidArgumentError("body: must be a JSON array of payloads");
  }
  if (doc.items().size() > options_.max_batch) {
    return absl::InvalidArgumentError("body: more than " + std::to_string(options_.max_batch) +
                                      " assets in one batch");
  }
  BatchResult result;
  result.schema_version = type->version;
  result.ids.resize(doc.items().size());
  // Validate first, then take ids for the valid ones and encode each row straight into its
  // final buffer: header, then the payload serialised after it (no copy of the payload).
  std::vector<size_t> checked;
  checked.reserve(doc.items().size());
  for (size_t i = 0; i < doc.items().size(); ++i) {
    const JsonValue& payload = doc.items()[i];
    if (!payload.is_object()) {
      result.rejected.emplace_back(i, "payload[" + std::to_string(i) + "]: must be a JSON object");
      continue;
    }
    if (absl::Status s = type->schema.Validate(payload, "payload[" + std::to_string(i) + "]");
        !s.ok()) {
      result.rejected.emplace_back(i, std::string(s.message()));
      continue;
    }
    checked.push_back(i);
  }
  struct Pending {
    size_t index;
    AssetId id;
    std::vector<std::string> index_entries;
    std::string row;  // the encoded asset row
  };
  std::vector<Pending> valid;
  valid.reserve(checked.size());
  std::vector<AssetId> fresh_ids(checked.size());
  ids_.NextMany(fresh_ids.size(), fresh_ids.data());
  for (size_t k = 0; k < checked.size(); ++k) {
    const size_t i = checked[k];
    const JsonValue& payload = doc.items()[i];
    Pending p;
    p.index = i;
    p.id = fresh_ids[k];
    AssetRow header;
    header.version = 1;
    header.schema_version = type->version;
    header.created_at = p.id.time();
    header.updated_at = header.created_at;
    header.index_entries = IndexEntries(*type, payload);
    p.row.reserve(1024 + 64);
    AppendAssetRowHeader(header, &p.row);
    const size_t header_bytes = p.row.size();
    payload.AppendTo(&p.row);
    if (p.row.size() - header_bytes > options_.max_payload_bytes) {
      // Its id stays unused: ids only need to be unique and increasing.
      result.rejected.emplace_back(i, "payload[" + std::to_string(i) + "]: larger than " +
                                          std::to_string(options_.max_payload_bytes) + " bytes");
      continue;
    }
    p.index_entries = std::move(header.index_entries);
    valid.push_back(std::move(p));
  }
  std::sort(result.rejected.begin(), result.rejected.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  rejected_->Inc(result.rejected.size());
  if (valid.empty()) return result;
  std::vector<AssetId> ids(valid.size());
  for (size_t k = 0; k < valid.size(); ++k) ids[k] = valid[k].id;
  // Group by bucket (a batch straddles two only around midnight or a month's end).
  std::map<Millis, std::vector<size_t>> by_bucket;
  for (size_t k = 0; k < valid.size(); ++k) {
    by_bucket[BucketStart(type->bucket, ids[k].time())].push_back(k);
  }
  std::vector<store::PartitionWrite> writes;
  std::vector<std::vector<std::string>> events(by_bucket.size());
  std::vector<std::string> outbox_keys;
  size_t group = 0;
  for (const auto& [bucket, members] : by_bucket) {
    STRATA_RETURN_IF_ERROR(EnsureBucket(*type, bucket));
    store::PartitionWrite w;
    w.table = assets_;
    w.partition = BucketPartition(type->name, type->bucket, bucket);
    // The batch's keys in ascending order: the rows (ids ascend, so their inverted keys
    // descend: newest first), then the index entries sorted, then the outbox row. RocksDB
    // inserts a batch into its memtable in batch order, and a key just after the previous
    // one is found from where that one went instead of by a search from the top of the
    // skip list (that search was a tenth of the create CPU).
    std::vector<std::string> index_keys;
    index_keys.reserve(members.size() * (type->indexes.size() + 1));
    for (auto it = members.rbegin(); it != members.rend(); ++it) {
      const size_t k = *it;
      w.batch.Put(AssetKey(ids[k]), std::move(valid[k].row));
      for (const std::string& e : valid[k].index_entries) {
        index_keys.push_back(IndexKeyFromEntry(e, ids[k]));
      }
    }
    std::sort(index_keys.begin(), index_keys.end());
    for (std::string& key : index_keys) w.batch.Put(std::move(key), "");
    for (size_t k : members) {
      events[group].push_back(
          EncodeChangeEvent({type->name, ids[k], 1, ChangeOp::kCreate, ids[k].time()}));
    }
    outbox_keys.push_back(OutboxKey(ids[members.front()], 1));
    w.batch.Put(outbox_keys.back(), EncodeOutbox(events[group]));
    writes.push_back(std::move(w));
    ++group;
  }
  STRATA_RETURN_IF_ERROR(rows_->Write(writes));
  creates_->Inc(valid.size());
  for (size_t g = 0; g < writes.size(); ++g) {
    Forward(type->name, writes[g].partition, outbox_keys[g], events[g]);
  }
  for (size_t k = 0; k < valid.size(); ++k) result.ids[valid[k].index] = ids[k];
  result.created_at = ids.front().time();
  return result;
}

absl::StatusOr<Asset> AssetService::Get(std::string_view type_name, std::string_view id_text) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  STRATA_ASSIGN_OR_RETURN(AssetId id, ParseId(id_text));
  const std::string partition =
      BucketPartition(type->name, type->bucket, BucketStart(type->bucket, id.time()));
  absl::StatusOr<std::string> raw = assets_->Get(partition, AssetKey(id));
  if (absl::IsNotFound(raw.status())) return NoAsset(type->name, id);
  if (!raw.ok()) return raw.status();
  std::optional<AssetRow> row = DecodeAssetRow(*raw);
  if (!row) return absl::DataLossError("asset " + id.ToString() + ": corrupt row");
  return Asset{type->name, id, std::move(*row)};
}

absl::StatusOr<Asset> AssetService::Replace(std::string_view type, std::string_view id,
                                            std::string_view payload,
                                            std::optional<uint32_t> if_match) {
  return Update(type, id, payload, if_match, UpdateKind::kReplace);
}

absl::StatusOr<Asset> AssetService::Patch(std::string_view type, std::string_view id,
                                          std::string_view patch,
                                          std::optional<uint32_t> if_match) {
  return Update(type, id, patch, if_match, UpdateKind::kPatch);
}

absl::StatusOr<Asset> AssetService::Update(std::string_view type_name, std::string_view id_text,
                                           std::string_view body, std::optional<uint32_t> if_match,
                                           UpdateKind kind) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  STRATA_ASSIGN_OR_RETURN(AssetId id, ParseId(id_text));
  JsonValue input;
  if (kind == UpdateKind::kReplace) {
    STRATA_ASSIGN_OR_RETURN(input, ParsePayload(body));
  } else {
    if (body.size() > options_.max_payload_bytes) {
      return absl::OutOfRangeError("patch: larger than " +
                                   std::to_string(options_.max_payload_bytes) + " bytes");
    }
    STRATA_ASSIGN_OR_RETURN(input, ParseJson(body, "patch", options_.max_depth));
  }
  Transform transform = [&](const AssetRow& old, JsonValue* next) -> absl::StatusOr<bool> {
    if (kind == UpdateKind::kReplace) {
      *next = input;
      return true;
    }
    STRATA_ASSIGN_OR_RETURN(*next, ParseJson(old.payload, "stored payload", 1024));
    MergePatch(next, input);
    if (!next->is_object()) return absl::InvalidArgumentError("patch: must leave an object");
    return true;
  };
  std::lock_guard<std::mutex> stripe(StripeFor(id));  // fewer retries; not for correctness
  STRATA_ASSIGN_OR_RETURN(Mutation m, Mutate(*type, id, transform, if_match, nullptr));
  return std::move(m.asset);
}

absl::StatusOr<ProcessResult> AssetService::ProcessOnce(
    std::string_view type_name, std::string_view id_text, const JobMark& mark,
    const std::function<absl::StatusOr<bool>(const AssetRow& row, JsonValue* payload)>& fn,
    bool rebuild_index) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  STRATA_ASSIGN_OR_RETURN(AssetId id, ParseId(id_text));
  Transform transform = [&](const AssetRow& old, JsonValue* next) -> absl::StatusOr<bool> {
    STRATA_ASSIGN_OR_RETURN(*next, ParseJson(old.payload, "stored payload", 1024));
    STRATA_ASSIGN_OR_RETURN(bool changed, fn(old, next));
    if (changed && !next->is_object()) {
      return absl::InvalidArgumentError("processor: must leave an object");
    }
    return changed;
  };
  // No stripe lock: a job's processor must never hold up production writes; conflicts are
  // handled by the compare-and-set (and counted).
  absl::StatusOr<Mutation> m = Mutate(*type, id, transform, std::nullopt, &mark, rebuild_index);
  if (absl::IsNotFound(m.status())) return ProcessResult{ProcessResult::Kind::kGone, 0, 0};
  if (!m.ok()) return m.status();
  return ProcessResult{m->kind, m->asset.row.version, m->conflicts};
}

absl::StatusOr<ProcessManyResult> AssetService::ProcessMany(std::string_view type_name,
                                                            std::span<const std::string> ids,
                                                            const JobMark& mark,
                                                            const ProcessManyFn& fn) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  ProcessManyResult out;
  out.results.assign(ids.size(), absl::InternalError("not processed"));
  struct Item {
    size_t index;
    AssetId id;
    std::string key;
    std::string mark_key;
  };
  // By partition (a job's assets mostly share a few buckets), each id once.
  std::map<std::string, std::vector<Item>> groups;
  std::unordered_set<std::string_view> seen;
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::StatusOr<AssetId> id = ParseId(ids[i]);
    if (!id.ok()) {
      out.results[i] = id.status();
      continue;
    }
    if (!seen.insert(ids[i]).second) {
      out.results[i] = ProcessResult{ProcessResult::Kind::kAlreadyDone, 0, 0};
      continue;
    }
    groups[BucketPartition(type->name, type->bucket, BucketStart(type->bucket, id->time()))]
        .push_back(Item{i, *id, AssetKey(*id), JobMarkKey(mark.job_id, *id)});
  }
  // Each partition's items in chunks of max_process_write: one read and one write each.
  std::vector<std::pair<const std::string*, std::span<const Item>>> chunks;
  const size_t chunk_size = std::max<size_t>(1, options_.max_process_write);
  for (const auto& [partition, all] : groups) {
    for (size_t at = 0; at < all.size(); at += chunk_size) {
      chunks.emplace_back(&partition, std::span<const Item>(all).subspan(
                                          at, std::min(chunk_size, all.size() - at)));
    }
  }
  for (const auto& [partition_ptr, items] : chunks) {
    const std::string& partition = *partition_ptr;
    std::vector<store::RowKey> keys;
    keys.reserve(2 * items.size());
    for (const Item& item : items) {
      keys.push_back({partition, item.key});
      keys.push_back({partition, item.mark_key});
    }
    // With read stamps, the write's conditions need not read these rows again (RocksDB).
    std::vector<store::ReadStamp> stamps;
    store::ReadOptions read_options;
    read_options.stamps = &stamps;
    std::vector<absl::StatusOr<std::string>> got = assets_->MultiGet(keys, read_options);
    store::WriteBatch batch;
    std::vector<std::pair<const Item*, ProcessResult>> pending;  // written by the batch
    std::vector<std::string> events;
    std::string outbox_key;
    for (size_t k = 0; k < items.size(); ++k) {
      const Item& item = items[k];
      absl::StatusOr<std::string>& raw = got[2 * k];
      const absl::StatusOr<std::string>& done = got[2 * k + 1];
      if (absl::IsNotFound(raw.status())) {
        out.results[item.index] = ProcessResult{ProcessResult::Kind::kGone, 0, 0};
        continue;
      }
      if (!raw.ok()) {
        out.results[item.index] = raw.status();
        continue;
      }
      std::optional<AssetRow> row = DecodeAssetRow(*raw);
      if (!row) {
        out.results[item.index] =
            absl::DataLossError("asset " + item.id.ToString() + ": corrupt row");
        continue;
      }
      if (done.ok()) {
        out.results[item.index] =
            ProcessResult{ProcessResult::Kind::kAlreadyDone, row->version, 0};
        continue;
      }
      if (!absl::IsNotFound(done.status())) {
        out.results[item.index] = done.status();
        continue;
      }
      absl::StatusOr<JsonValue> next = ParseJson(row->payload, "stored payload", 1024);
      if (!next.ok()) {
        out.results[item.index] = next.status();
        continue;
      }
      absl::StatusOr<bool> changed = fn(item.index, *row, &*next);
      if (changed.ok() && *changed && !next->is_object()) {
        changed = absl::InvalidArgumentError("processor: must leave an object");
      }
      if (!changed.ok()) {
        out.results[item.index] = changed.status();
        continue;
      }
      const store::ReadStamp row_stamp = store::StampAt(stamps, 2 * k);
      const store::ReadStamp mark_stamp = store::StampAt(stamps, 2 * k + 1);
      if (!*changed) {
        batch.Expect(item.mark_key, std::nullopt, mark_stamp);
        batch.Put(item.mark_key, mark.keep_row ? *raw : std::string(), mark.expire_at);
        batch.Expect(item.key, std::move(*raw), row_stamp);
        pending.emplace_back(&item, ProcessResult{ProcessResult::Kind::kUnchanged, row->version, 0});
        continue;
      }
      absl::StatusOr<AssetRow> written = AppendNewVersion(*type, item.id, *row, *next, &batch);
      if (!written.ok()) {
        out.results[item.index] = written.status();
        continue;
      }
      batch.Expect(item.key, std::move(*raw), row_stamp);
      batch.Expect(item.mark_key, std::nullopt, mark_stamp);
      batch.Put(item.mark_key, mark.keep_row ? EncodeAssetRow(*written) : std::string(),
                mark.expire_at);
      events.push_back(EncodeChangeEvent(
          {type->name, item.id, written->version, ChangeOp::kUpdate, written->updated_at}));
      if (outbox_key.empty()) outbox_key = OutboxKey(item.id, written->version);
      pending.emplace_back(&item, ProcessResult{ProcessResult::Kind::kChanged, written->version, 0});
    }
    if (pending.empty()) continue;
    if (!events.empty()) batch.Put(outbox_key, EncodeOutbox(events));
    absl::Status s = assets_->Apply(partition, batch);
    if (IsConditionFailure(s)) {
      // Someone wrote one of these assets (or its mark) since the read: redo them one by
      // one, each re-read and re-processed, so that nobody's write is overwritten.
      conflicts_->Inc();
      ++out.batch_conflicts;
      for (const auto& [item, unused] : pending) {
        const size_t index = item->index;
        Transform transform = [&](const AssetRow& old, JsonValue* next) -> absl::StatusOr<bool> {
          STRATA_ASSIGN_OR_RETURN(*next, ParseJson(old.payload, "stored payload", 1024));
          STRATA_ASSIGN_OR_RETURN(bool changed, fn(index, old, next));
          if (changed && !next->is_object()) {
            return absl::InvalidArgumentError("processor: must leave an object");
          }
          return changed;
        };
        absl::StatusOr<Mutation> m = Mutate(*type, item->id, transform, std::nullopt, &mark);
        if (absl::IsNotFound(m.status())) {
          out.results[index] = ProcessResult{ProcessResult::Kind::kGone, 0, 0};
        } else if (!m.ok()) {
          out.results[index] = m.status();
        } else {
          out.results[index] = ProcessResult{m->kind, m->asset.row.version, m->conflicts};
        }
      }
      continue;
    }
    if (!s.ok()) {
      for (const auto& [item, unused] : pending) out.results[item->index] = s;
      continue;
    }
    updates_->Inc(events.size());
    for (auto& [item, result] : pending) out.results[item->index] = result;
    if (!events.empty()) Forward(type->name, partition, outbox_key, events);
  }
  return out;
}

absl::StatusOr<AssetRow> AssetService::AppendNewVersion(const AssetType& type, const AssetId& id,
                                                        const AssetRow& old, const JsonValue& next,
                                                        store::WriteBatch* batch) {
  if (absl::Status s = type.schema.Validate(next); !s.ok()) {
    rejected_->Inc();
    return s;
  }
  AssetRow row;
  row.version = old.version + 1;
  row.schema_version = type.version;
  row.created_at = old.created_at;
  row.updated_at = std::max(clock_->NowMillis(), old.updated_at);
  row.payload = next.Serialize();
  if (row.payload.size() > options_.max_payload_bytes) {
    return absl::OutOfRangeError("payload: larger than " +
                                 std::to_string(options_.max_payload_bytes) + " bytes");
  }
  row.index_entries = IndexEntries(type, next);
  const std::string key = AssetKey(id);
  batch->Put(key, EncodeAssetRow(row));
  std::unordered_set<std::string_view> fresh(row.index_entries.begin(), row.index_entries.end());
  std::unordered_set<std::string_view> stale(old.index_entries.begin(), old.index_entries.end());
  for (const std::string& e : old.index_entries) {
    if (!fresh.count(e)) batch->Delete(IndexKeyFromEntry(e, id));
  }
  for (const std::string& e : row.index_entries) {
    if (!stale.count(e)) batch->Put(IndexKeyFromEntry(e, id), "");
  }
  if (type.keep_versions > 0) {
    AssetRow previous = old;
    previous.index_entries.clear();
    // Mostly a delta against the version written next to it (rows.h, EncodeHistoryRow).
    batch->Put(HistoryKey(id, old.version), EncodeHistoryRow(previous, row.payload));
    if (old.version > type.keep_versions) {
      batch->Delete(HistoryKey(id, old.version - type.keep_versions));
    }
  }
  return row;
}

absl::StatusOr<ProcessResult> AssetService::RebuildIndex(std::string_view type_name,
                                                         std::string_view id_text) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  STRATA_ASSIGN_OR_RETURN(AssetId id, ParseId(id_text));
  Transform unchanged = [](const AssetRow&, JsonValue*) -> absl::StatusOr<bool> { return false; };
  absl::StatusOr<Mutation> m =
      Mutate(*type, id, unchanged, std::nullopt, nullptr, /*rebuild_index=*/true);
  if (absl::IsNotFound(m.status())) return ProcessResult{ProcessResult::Kind::kGone, 0, 0};
  if (!m.ok()) return m.status();
  return ProcessResult{m->kind, m->asset.row.version, m->conflicts};
}

absl::Status AssetService::MarkIndexesReady(
    std::string_view type, const std::vector<std::pair<std::string, uint16_t>>& indexes) {
  STRATA_RETURN_IF_ERROR(ValidateTypeName(type));
  for (int attempt = 0; attempt < kMaxWriteAttempts; ++attempt) {
    absl::StatusOr<std::string> head = types_->Get(type, "");
    if (absl::IsNotFound(head.status())) {
      return absl::NotFoundError("type: no asset type \"" + std::string(type) + "\"");
    }
    if (!head.ok()) return head.status();
    if (head->empty() || (*head)[0] != kTypeRowFormatV1) {
      return absl::DataLossError("type " + std::string(type) + ": unknown row format");
    }
    STRATA_ASSIGN_OR_RETURN(std::shared_ptr<AssetType> t,
                            ParseTypeJson(std::string_view(*head).substr(1)));
    bool changed = false;
    for (IndexDef& def : t->indexes) {
      for (const auto& [pointer, index_id] : indexes) {
        if (!def.ready && def.pointer == pointer && def.id == index_id) {
          def.ready = true;
          changed = true;
        }
      }
    }
    if (!changed) return absl::OkStatus();
    std::string row(1, kTypeRowFormatV1);
    row += t->ToJson();
    store::WriteBatch batch;
    batch.Expect("", *head);
    batch.Put("", row);
    batch.Put(TypeVersionKey(t->version), row);
    absl::Status s = types_->Apply(type, batch);
    if (IsConditionFailure(s)) {
      conflicts_->Inc();
      continue;
    }
    return s;
  }
  return absl::AbortedError("type: too many concurrent changes, try again");
}

absl::StatusOr<AssetService::Mutation> AssetService::Mutate(const AssetType& type,
                                                            const AssetId& id,
                                                            const Transform& transform,
                                                            std::optional<uint32_t> if_match,
                                                            const JobMark* mark,
                                                            bool rebuild_index) {
  const std::string partition =
      BucketPartition(type.name, type.bucket, BucketStart(type.bucket, id.time()));
  const std::string key = AssetKey(id);
  const std::string mark_key = mark != nullptr ? JobMarkKey(mark->job_id, id) : "";
  Mutation out;
  for (int attempt = 0; attempt < kMaxWriteAttempts; ++attempt) {
    STRATA_ASSIGN_OR_RETURN(StoredAsset stored,
                            ReadForUpdate(assets_, partition, key, type.name, id, if_match));
    if (mark != nullptr) {
      absl::StatusOr<std::string> done = assets_->Get(partition, mark_key);
      if (done.ok()) {
        out.kind = ProcessResult::Kind::kAlreadyDone;
        out.asset = Asset{type.name, id, std::move(stored.row)};
        return out;
      }
      if (!absl::IsNotFound(done.status())) return done.status();
    }
    JsonValue next;
    STRATA_ASSIGN_OR_RETURN(bool changed, transform(stored.row, &next));
    store::WriteBatch batch;
    batch.Expect(key, stored.raw, stored.stamp);
    if (mark != nullptr) {
      // The job's mark goes in with the effect: a redelivered event finds it and does
      // nothing, so each asset is processed once in effect whatever the queue redelivers.
      // With keep_row it holds the row as committed (set below once that is known).
      batch.Expect(mark_key, std::nullopt);
    }
    if (!changed) {
      out.kind = ProcessResult::Kind::kUnchanged;
      out.asset = Asset{type.name, id, stored.row};
      if (rebuild_index) {
        // Entries from the stored payload (the transform may have left `next` anything).
        STRATA_ASSIGN_OR_RETURN(JsonValue payload,
                                ParseJson(stored.row.payload, "stored payload", 1024));
        std::vector<std::string> entries = IndexEntries(type, payload);
        std::vector<std::string> sorted_new = entries;
        std::vector<std::string> sorted_old = stored.row.index_entries;
        std::sort(sorted_new.begin(), sorted_new.end());
        std::sort(sorted_old.begin(), sorted_old.end());
        if (sorted_new != sorted_old) {
          std::unordered_set<std::string_view> fresh(entries.begin(), entries.end());
          std::unordered_set<std::string_view> stale(stored.row.index_entries.begin(),
                                                     stored.row.index_entries.end());
          for (const std::string& e : stored.row.index_entries) {
            if (!fresh.count(e)) batch.Delete(IndexKeyFromEntry(e, id));
          }
          for (const std::string& e : entries) {
            if (!stale.count(e)) batch.Put(IndexKeyFromEntry(e, id), "");
          }
          // Same version, payload and times: only the list of keys to remove next changes.
          out.asset.row.index_entries = std::move(entries);
          batch.Put(key, EncodeAssetRow(out.asset.row));
          out.kind = ProcessResult::Kind::kChanged;
        }
      }
      if (mark == nullptr && out.kind == ProcessResult::Kind::kUnchanged) return out;
      if (mark != nullptr) {
        batch.Put(mark_key,
                  !mark->keep_row                                   ? std::string()
                  : out.kind == ProcessResult::Kind::kUnchanged ? stored.raw
                                                                    : EncodeAssetRow(out.asset.row),
                  mark->expire_at);
      }
      absl::Status s = assets_->Apply(partition, batch);
      if (IsConditionFailure(s)) {
        conflicts_->Inc();
        ++out.conflicts;
        continue;
      }
      STRATA_RETURN_IF_ERROR(s);
      return out;
    }
    STRATA_ASSIGN_OR_RETURN(AssetRow row, AppendNewVersion(type, id, stored.row, next, &batch));
    if (mark != nullptr) {
      batch.Put(mark_key, mark->keep_row ? EncodeAssetRow(row) : std::string(), mark->expire_at);
    }
    std::vector<std::string> events = {
        EncodeChangeEvent({type.name, id, row.version, ChangeOp::kUpdate, row.updated_at})};
    const std::string outbox_key = OutboxKey(id, row.version);
    batch.Put(outbox_key, EncodeOutbox(events));
    absl::Status s = assets_->Apply(partition, batch);
    if (IsConditionFailure(s)) {
      conflicts_->Inc();
      ++out.conflicts;
      continue;  // re-read: under If-Match this answers 412 with the new version
    }
    STRATA_RETURN_IF_ERROR(s);
    updates_->Inc();
    Forward(type.name, partition, outbox_key, events);
    out.kind = ProcessResult::Kind::kChanged;
    out.asset = Asset{type.name, id, std::move(row)};
    return out;
  }
  return absl::AbortedError("asset: too many concurrent updates, try again");
}

absl::Status AssetService::Delete(std::string_view type_name, std::string_view id_text,
                                  std::optional<uint32_t> if_match) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  STRATA_ASSIGN_OR_RETURN(AssetId id, ParseId(id_text));
  const std::string partition =
      BucketPartition(type->name, type->bucket, BucketStart(type->bucket, id.time()));
  const std::string key = AssetKey(id);
  std::lock_guard<std::mutex> stripe(StripeFor(id));
  for (int attempt = 0; attempt < kMaxWriteAttempts; ++attempt) {
    STRATA_ASSIGN_OR_RETURN(StoredAsset stored,
                            ReadForUpdate(assets_, partition, key, type->name, id, if_match));
    store::WriteBatch batch;
    batch.Expect(key, stored.raw, stored.stamp);
    batch.Delete(key);
    for (const std::string& e : stored.row.index_entries) batch.Delete(IndexKeyFromEntry(e, id));
    // The kept versions, found by a scan and deleted one by one (no range tombstone, which
    // RocksDB would have to check on every later read of the partition). The condition
    // above makes the batch fail if an update added one since this scan.
    store::ScanOptions history;
    history.start = HistoryPrefix(id);
    history.end = PrefixSuccessor(history.start);
    for (;;) {
      STRATA_ASSIGN_OR_RETURN(store::ScanPage page, assets_->Scan(partition, history));
      for (store::Row& r : page.rows) batch.Delete(std::move(r.clustering));
      if (page.next_cursor.empty()) break;
      history.cursor = std::move(page.next_cursor);
    }
    const uint32_t version = stored.row.version + 1;
    std::vector<std::string> events = {
        EncodeChangeEvent({type->name, id, version, ChangeOp::kDelete, clock_->NowMillis()})};
    const std::string outbox_key = OutboxKey(id, version);
    batch.Put(outbox_key, EncodeOutbox(events));
    absl::Status s = assets_->Apply(partition, batch);
    if (IsConditionFailure(s)) {
      conflicts_->Inc();
      continue;
    }
    STRATA_RETURN_IF_ERROR(s);
    deletes_->Inc();
    Forward(type->name, partition, outbox_key, events);
    return absl::OkStatus();
  }
  return absl::AbortedError("asset: too many concurrent updates, try again");
}

absl::StatusOr<std::vector<AssetRow>> AssetService::Versions(std::string_view type_name,
                                                             std::string_view id_text) {
  STRATA_ASSIGN_OR_RETURN(Asset current, Get(type_name, id_text));
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  std::vector<AssetRow> out;
  out.push_back(std::move(current.row));
  const std::string partition =
      BucketPartition(type->name, type->bucket, BucketStart(type->bucket, current.id.time()));
  store::ScanOptions options;
  options.start = HistoryPrefix(current.id);
  options.end = PrefixSuccessor(options.start);
  options.reverse = true;
  options.limit = std::clamp<size_t>(type->keep_versions, 1, store::kMaxPageRows);
  if (type->keep_versions == 0) return out;
  STRATA_ASSIGN_OR_RETURN(store::ScanPage page, assets_->Scan(partition, options));
  for (const store::Row& r : page.rows) {
    // A delta row is rebuilt from the version after it, which must be the one listed last:
    // the listing stops at a gap (left by a keep_versions lowered, or 0, for a while).
    std::optional<AssetRow> header = DecodeHistoryHeader(r.value);
    if (!header) return absl::DataLossError("asset " + current.id.ToString() + ": corrupt version");
    if (IsHistoryDelta(r.value) && header->version + 1 != out.back().version) break;
    std::optional<AssetRow> row = DecodeHistoryRow(r.value, out.back().payload);
    if (!row) return absl::DataLossError("asset " + current.id.ToString() + ": corrupt version");
    // Only versions that are no more than keep_versions behind (a lowered keep_versions
    // leaves older rows until the asset is deleted).
    if (row->version + type->keep_versions < out.front().version) break;
    out.push_back(std::move(*row));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Reads: pages and search

absl::StatusOr<AssetPage> AssetService::List(std::string_view type_name, const ListQuery& query) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  if (query.limit < 1 || query.limit > kMaxListLimit) {
    return absl::InvalidArgumentError("limit: must be 1..1000");
  }
  if ((query.since && *query.since < 0) || (query.until && *query.until < 0)) {
    return absl::InvalidArgumentError(
        std::string(query.since && *query.since < 0 ? "since" : "until") +
        ": must be >= 0 (milliseconds since the epoch)");
  }
  if (query.since && query.until && *query.since >= *query.until) {
    return absl::InvalidArgumentError("since: must be before until");
  }
  if (query.where.empty()) return ListAll(*type, query);
  STRATA_ASSIGN_OR_RETURN(AssetPage page, Search(*type, query));
  if (query.ids_only) {
    // A search reads the rows anyway (to check its conditions); it answers their ids.
    for (const Asset& a : page.assets) page.ids.push_back(a.id);
    page.assets.clear();
  }
  return page;
}

namespace {

struct Bucket {
  Millis start = 0;
  bool listed_by_index = false;  // every asset has its index-0 entry (rows.h)
};

// Walks a type's bucket directory newest first, from the bucket holding `from` (inclusive)
// down to the bucket holding `down_to` (inclusive; nullopt = the oldest).
class BucketWalk {
 public:
  BucketWalk(store::Table* types, std::string type, std::optional<Millis> from)
      : types_(types), type_(std::move(type)) {
    options_.start = std::string(1, kBucketPrefix);
    options_.end =
        from ? BucketDirectoryKey(*from) + std::string(1, '\0') : std::string(1, kBucketPrefix + 1);
    options_.reverse = true;
    options_.limit = 64;
  }
  // The next bucket, or nullopt at the end.
  absl::StatusOr<std::optional<Bucket>> Next() {
    while (at_ >= page_.size()) {
      if (done_) return std::optional<Bucket>();
      STRATA_ASSIGN_OR_RETURN(store::ScanPage page, types_->Scan(type_, options_));
      page_.clear();
      for (const store::Row& r : page.rows) {
        std::string_view k(r.clustering);
        k.remove_prefix(1);
        uint64_t start = 0;
        if (k.size() == 8 && coding::GetFixed64BE(&k, &start)) {
          page_.push_back(Bucket{static_cast<Millis>(start), r.value == kBucketListedByIndex});
        }
      }
      at_ = 0;
      done_ = page.next_cursor.empty();
      options_.cursor = std::move(page.next_cursor);
    }
    return std::optional<Bucket>(page_[at_++]);
  }

 private:
  store::Table* types_;
  std::string type_;
  store::ScanOptions options_;
  std::vector<Bucket> page_;
  size_t at_ = 0;
  bool done_ = false;
};

}  // namespace

absl::StatusOr<AssetPage> AssetService::ListAll(const AssetType& type, const ListQuery& query) {
  // Ids in [lower, upper): since gives lower (inclusive); until and the cursor give upper.
  std::optional<AssetId> upper;
  if (!query.cursor.empty()) {
    std::optional<ListCursor> c = DecodeListCursor(query.cursor);
    if (!c) return absl::InvalidArgumentError("cursor: malformed (pass next_cursor as given)");
    upper = c->last;
  }
  if (query.until) {
    const AssetId u = AssetId::MinForTime(*query.until);
    if (!upper || u < *upper) upper = u;
  }
  std::optional<Millis> from;
  if (upper) from = BucketStart(type.bucket, upper->time());
  AssetPage out;
  auto count = [&] { return query.ids_only ? out.ids.size() : out.assets.size(); };
  BucketWalk walk(types_, type.name, from);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(std::optional<Bucket> bucket, walk.Next());
    if (!bucket) break;
    if (query.since && bucket->start < BucketStart(type.bucket, *query.since)) break;
    const std::string partition = BucketPartition(type.name, type.bucket, bucket->start);
    // Ids alone come from index 0 ("i" 0 0 + ~id: the same order and bounds as the rows'
    // "a" + ~id), which holds no payloads; whole assets, and ids of a bucket made before
    // index 0, from the rows.
    const bool by_index = query.ids_only && bucket->listed_by_index;
    const std::string key_prefix = by_index ? IndexPrefix(kEveryAssetIndex) : "a";
    auto bound = [&](const AssetId& id) {
      std::string k = key_prefix;
      k.append(AssetKeyAfter(id), 1);  // ~id + "\0"
      return k;
    };
    store::ScanOptions options;
    options.start = upper ? bound(*upper) : key_prefix;
    // bound(MinForTime(since)) bounds ids >= MinForTime(since): their inverted keys are <= the
    // inverted bound.
    options.end =
        query.since ? bound(AssetId::MinForTime(*query.since)) : PrefixSuccessor(key_prefix);
    for (;;) {
      if (options.start >= options.end) break;
      options.limit = std::min(store::kMaxPageRows, query.limit - count());
      STRATA_ASSIGN_OR_RETURN(store::ScanPage page, assets_->Scan(partition, options));
      for (store::Row& r : page.rows) {
        std::optional<AssetId> id =
            by_index ? AssetIdFromIndexKey(r.clustering) : AssetIdFromKey(r.clustering);
        if (!id) return absl::DataLossError("assets: corrupt row key in " + partition);
        if (query.ids_only) {
          out.ids.push_back(*id);
          continue;
        }
        std::optional<AssetRow> row = DecodeOwnedAssetRow(std::move(r.value));
        if (!row) return absl::DataLossError("assets: corrupt row in " + partition);
        out.assets.push_back(Asset{type.name, *id, std::move(*row)});
      }
      if (count() == query.limit) {
        out.next_cursor =
            EncodeListCursor({query.ids_only ? out.ids.back() : out.assets.back().id});
        return out;
      }
      if (page.next_cursor.empty()) break;
      options.cursor = std::move(page.next_cursor);
    }
  }
  return out;
}

absl::StatusOr<AssetPage> AssetService::Search(const AssetType& type, const ListQuery& query) {
  std::vector<WhereCondition> conditions;
  uint64_t hash = Fnv1a(type.name);
  for (const std::string& w : query.where) {
    STRATA_ASSIGN_OR_RETURN(WhereCondition c, ParseWhere(w));
    STRATA_RETURN_IF_ERROR(BindWhere(type.schema, &c));
    const IndexDef* index = nullptr;
    for (const IndexDef& d : type.indexes) {
      if (d.pointer == c.pointer) index = &d;
    }
    if (index == nullptr) {
      std::string known;
      for (const IndexDef& d : type.indexes) known += (known.empty() ? "" : ", ") + d.pointer;
      return absl::InvalidArgumentError("where: " + c.pointer + " is not indexed in type " +
                                        type.name +
                                        " (indexed: " + (known.empty() ? "none" : known) + ")");
    }
    if (!index->ready) {
      return absl::FailedPreconditionError(
          "where: the index on " + c.pointer +
          " was added after assets existed and is not built yet (a reindex job builds it)");
    }
    hash = Fnv1a(w, Fnv1a("\n", hash));
    conditions.push_back(std::move(c));
  }
  if (conditions.size() > 16) return absl::InvalidArgumentError("where: more than 16 conditions");
  hash = Fnv1a(
      std::to_string(query.since.value_or(-1)) + "/" + std::to_string(query.until.value_or(-1)),
      hash);
  // The driving condition: the first equality, else the first condition. Every condition on
  // its pointer narrows the scanned range; all conditions are re-checked on the payload.
  size_t drive = 0;
  for (size_t i = 0; i < conditions.size(); ++i) {
    if (conditions[i].op == WhereOp::kEq) {
      drive = i;
      break;
    }
  }
  const std::string& pointer = conditions[drive].pointer;
  uint16_t index_id = 0;
  for (const IndexDef& d : type.indexes) {
    if (d.pointer == pointer) index_id = d.id;
  }
  const std::string prefix = IndexPrefix(index_id);
  std::string lo, hi;
  // An empty bound leaves that side as it is (the kind's range below always sets both).
  auto narrow = [&](std::string new_lo, std::string new_hi) {
    if (!new_lo.empty() && (lo.empty() || new_lo > lo)) lo = std::move(new_lo);
    if (!new_hi.empty() && (hi.empty() || new_hi < hi)) hi = std::move(new_hi);
  };
  for (const WhereCondition& c : conditions) {
    if (c.pointer != pointer) continue;
    // The kind's whole range first: a number condition never scans strings.
    char tag = kIndexTagString;
    if (c.value.is_number()) tag = kIndexTagNumber;
    if (c.value.kind() == JsonValue::Kind::kBool) tag = kIndexTagFalse;
    if (c.value.is_null()) tag = kIndexTagNull;
    const char tag_end = tag == kIndexTagFalse ? kIndexTagTrue + 1 : tag + 1;
    narrow(prefix + std::string(1, tag), prefix + std::string(1, tag_end));
    if (c.op == WhereOp::kPrefix) {
      std::string p = prefix;
      AppendIndexStringPrefix(&p, c.value.string_value());
      narrow(p, PrefixSuccessor(p));
      continue;
    }
    const std::string enc = prefix + *EncodeIndexValue(c.value);
    // Strings longer than the indexed prefix compare as their prefix: keep bounds inclusive.
    const bool truncated =
        c.value.is_string() && c.value.string_value().size() > kMaxIndexedStringBytes;
    switch (c.op) {
      case WhereOp::kEq:
        narrow(enc, PrefixSuccessor(enc));
        break;
      case WhereOp::kGe:
        narrow(enc, "");
        break;
      case WhereOp::kGt:
        narrow(truncated ? enc : PrefixSuccessor(enc), "");
        break;
      case WhereOp::kLe:
        narrow("", PrefixSuccessor(enc));
        break;
      case WhereOp::kLt:
        narrow("", truncated ? PrefixSuccessor(enc) : enc);
        break;
      case WhereOp::kPrefix:
        break;
    }
  }
  AssetPage out;
  if (lo >= hi) return out;

  std::optional<SearchCursor> cursor;
  if (!query.cursor.empty()) {
    cursor = DecodeSearchCursor(query.cursor);
    if (!cursor) return absl::InvalidArgumentError("cursor: malformed (pass next_cursor as given)");
    if (cursor->query_hash != hash) {
      return absl::InvalidArgumentError(
          "cursor: belongs to another query (same type, where, "
          "since and until needed)");
    }
  }
  std::optional<Millis> from;
  if (cursor) {
    from = cursor->bucket;
  } else if (query.until) {
    from = BucketStart(type.bucket, *query.until - 1);
  }
  // Each condition with its index id and whether its value compares exactly as a double.
  std::vector<BoundCondition> bound;
  for (const WhereCondition& c : conditions) {
    BoundCondition b{&c, 0, true};
    for (const IndexDef& d : type.indexes) {
      if (d.pointer == c.pointer) b.index_id = d.id;
    }
    b.exact_value =
        !(c.value.kind() == JsonValue::Kind::kInt &&
          (c.value.int_value() >= kExactDoubleLimit || c.value.int_value() <= -kExactDoubleLimit));
    bound.push_back(b);
  }

  // The candidates are examined in index order, one by one as far as the result goes (so the
  // page stops, and its cursor points, where a one-at-a-time walk would stop), but their rows
  // are read in batches of as many as the page still needs: one MultiGet, not a Get each.
  size_t examined = 0;
  std::vector<std::string> asset_keys;
  std::vector<size_t> asset_rows;  // index into the scan page of each asset key
  std::vector<store::RowKey> row_keys;
  BucketWalk walk(types_, type.name, from);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(std::optional<Bucket> next_bucket, walk.Next());
    if (!next_bucket) break;
    const Millis bucket = next_bucket->start;
    if (query.since && bucket < BucketStart(type.bucket, *query.since)) break;
    const std::string partition = BucketPartition(type.name, type.bucket, bucket);
    store::ScanOptions options;
    options.start = lo;
    options.end = hi;
    if (cursor && cursor->bucket == bucket) {
      std::string resume = cursor->last_key;
      resume.push_back('\0');
      if (resume > options.start) options.start = std::move(resume);
    }
    for (;;) {
      if (options.start >= options.end) break;
      options.limit = store::kMaxPageRows;
      STRATA_ASSIGN_OR_RETURN(store::ScanPage page, assets_->Scan(partition, options));
      std::vector<AssetId> ids(page.rows.size());
      for (size_t i = 0; i < page.rows.size(); ++i) {
        std::optional<AssetId> id = AssetIdFromIndexKey(page.rows[i].clustering);
        if (!id) return absl::DataLossError("assets: corrupt index key in " + partition);
        ids[i] = *id;
      }
      size_t at = 0;
      while (at < page.rows.size()) {
        // The next stretch: no longer than the answer still needs (if every candidate in it
        // matched, the page would be full at its end) nor than the examination limit allows.
        const size_t n = std::min({page.rows.size() - at, query.limit - out.assets.size(),
                                   options_.max_examined_per_page - examined});
        asset_keys.clear();
        asset_rows.clear();
        for (size_t i = at; i < at + n; ++i) {
          const Millis t = ids[i].time();
          if ((query.since && t < *query.since) || (query.until && t >= *query.until)) continue;
          asset_keys.push_back(AssetKey(ids[i]));
          asset_rows.push_back(i);
        }
        row_keys.clear();
        for (const std::string& k : asset_keys) row_keys.push_back({partition, k});
        std::vector<absl::StatusOr<std::string>> raws = assets_->MultiGet(row_keys);
        size_t next_raw = 0;
        for (size_t i = at; i < at + n; ++i) {
          ++examined;
          if (next_raw < asset_rows.size() && asset_rows[next_raw] == i) {
            absl::StatusOr<std::string>& raw = raws[next_raw++];
            if (raw.ok()) {
              std::optional<AssetRow> row = DecodeOwnedAssetRow(std::move(*raw));
              if (!row) return absl::DataLossError("asset " + ids[i].ToString() + ": corrupt row");
              STRATA_ASSIGN_OR_RETURN(bool match, MatchesAll(bound, *row));
              if (match) out.assets.push_back(Asset{type.name, ids[i], std::move(*row)});
            } else if (!absl::IsNotFound(raw.status())) {
              return raw.status();
            }
          }
          if (out.assets.size() == query.limit || examined >= options_.max_examined_per_page) {
            examined_->Inc(examined);
            out.next_cursor = EncodeSearchCursor({hash, bucket, page.rows[i].clustering});
            return out;
          }
        }
        at += n;
      }
      if (page.next_cursor.empty()) break;
      options.cursor = std::move(page.next_cursor);
    }
  }
  examined_->Inc(examined);
  return out;
}

// ---------------------------------------------------------------------------------------
// What a job recorded in its marks

namespace {

// Calls `fn` with the partition of every bucket of the type, newest first.
absl::Status ForEachBucketPartition(store::Table* types, const AssetType& type,
                                    const std::function<absl::Status(const std::string&)>& fn) {
  BucketWalk walk(types, type.name, std::nullopt);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(std::optional<Bucket> bucket, walk.Next());
    if (!bucket) return absl::OkStatus();
    STRATA_RETURN_IF_ERROR(fn(BucketPartition(type.name, type.bucket, bucket->start)));
  }
}

}  // namespace

absl::Status AssetService::ScanJobRows(
    std::string_view type_name, uint64_t job_id,
    const std::function<absl::Status(const AssetId& id, const AssetRow& row)>& fn) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  const std::string prefix = JobMarkPrefix(job_id);
  return ForEachBucketPartition(types_, *type, [&](const std::string& partition) -> absl::Status {
    store::ScanOptions options;
    options.start = prefix;
    options.end = PrefixSuccessor(prefix);
    options.limit = store::kMaxPageRows;
    for (;;) {
      STRATA_ASSIGN_OR_RETURN(store::ScanPage page, assets_->Scan(partition, options));
      for (const store::Row& r : page.rows) {
        std::optional<AssetId> id = AssetIdFromJobMarkKey(r.clustering);
        if (!id) return absl::DataLossError("assets: corrupt job mark key in " + partition);
        std::optional<AssetRow> row = DecodeAssetRow(r.value);
        if (!row) {
          return absl::DataLossError("asset " + id->ToString() + ": job " +
                                     std::to_string(job_id) +
                                     "'s mark holds no row (was the job run without keep_row?)");
        }
        STRATA_RETURN_IF_ERROR(fn(*id, *row));
      }
      if (page.next_cursor.empty()) return absl::OkStatus();
      options.cursor = std::move(page.next_cursor);
    }
  });
}

absl::Status AssetService::DeleteJobMarks(std::string_view type_name, uint64_t job_id) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  const std::string prefix = JobMarkPrefix(job_id);
  return ForEachBucketPartition(types_, *type, [&](const std::string& partition) {
    return assets_->DeleteRange(partition, prefix, PrefixSuccessor(prefix));
  });
}

// ---------------------------------------------------------------------------------------
// Change feed

absl::StatusOr<std::vector<ChangeRecord>> AssetService::Changes(std::string_view type_name,
                                                                std::optional<uint64_t> after,
                                                                int limit) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const AssetType> type, LoadType(type_name));
  if (limit < 1 || limit > 1000) return absl::InvalidArgumentError("limit: must be 1..1000");
  if (after && *after == UINT64_MAX) return std::vector<ChangeRecord>{};
  FlushChanges();  // a client that wrote, then reads the feed, finds its write's event
  STRATA_ASSIGN_OR_RETURN(std::vector<store::Message> messages,
                          queue_->Read(TopicFor(type->name), 0, after ? *after + 1 : 0, limit));
  std::vector<ChangeRecord> out;
  out.reserve(messages.size());
  for (store::Message& m : messages) out.push_back({m.offset, std::move(m.value)});
  return out;
}

}  // namespace strata::assets
