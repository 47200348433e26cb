// The asset routes of the HTTP API (docs/api.md, "Assets"): asset types, assets (CRUD with
// ETag/If-Match, versions, batched creates), pages and index search, the change feed.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "strata/assets/asset_service.h"
#include "strata/reprocess/job_runner.h"
#include "strata/server/api.h"
#include "strata/server/json_writer.h"

namespace strata::server {
namespace {

// Errors of the asset routes: a stale If-Match is 412, an oversize payload 413; the rest
// as everywhere else.
http::Response AssetError(const absl::Status& s) {
  if (absl::IsFailedPrecondition(s) && s.message().substr(0, 8) == "If-Match") {
    return Json(412, ErrorBody("precondition_failed", std::string(s.message())));
  }
  if (absl::IsOutOfRange(s)) return Json(413, ErrorBody("too_large", std::string(s.message())));
  return ErrorResponse(s);
}

// If-Match: "N" (or N); "*" or absent = no condition.
absl::StatusOr<std::optional<uint32_t>> IfMatch(const http::Request& r) {
  std::string_view v = r.Header("if-match");
  if (v.empty() || v == "*") return std::optional<uint32_t>();
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  uint64_t version = 0;
  if (!ParseUint(v, &version) || version == 0 || version > UINT32_MAX) {
    return absl::InvalidArgumentError("If-Match: must be an asset version in quotes, like \"3\"");
  }
  return std::optional<uint32_t>(static_cast<uint32_t>(version));
}

void WriteAsset(JsonWriter* w, const assets::Asset& a) {
  char id_text[36];
  a.id.Format(id_text);
  w->BeginObject();
  w->PlainKey("id").String(std::string_view(id_text, sizeof(id_text)));
  w->PlainKey("type").String(a.type);
  w->PlainKey("version").Uint(a.row.version);
  w->PlainKey("schema_version").Uint(a.row.schema_version);
  w->PlainKey("created_at").Int(a.row.created_at);
  w->PlainKey("updated_at").Int(a.row.updated_at);
  w->PlainKey("payload").Raw(a.row.payload);
  w->EndObject();
}

http::Response AssetResponse(int status, const assets::Asset& a) {
  JsonWriter w;
  w.Reserve(a.row.payload.size() + 256);
  WriteAsset(&w, a);
  http::Response r = Json(status, w.Take());
  r.headers.emplace_back("ETag", "\"" + std::to_string(a.row.version) + "\"");
  return r;
}

// `reindex_job`: the job a PUT started to build the indexes it added (absent on GET).
http::Response TypeResponse(const assets::TypeWithHistory& t,
                            std::optional<std::optional<uint64_t>> reindex_job = std::nullopt) {
  std::string body = t.current->ToJson();
  body.pop_back();  // the closing brace
  if (reindex_job) {
    body += ",\"reindex_job\":" + (*reindex_job ? std::to_string(**reindex_job) : "null");
  }
  body += ",\"history\":[";
  for (size_t i = 0; i < t.history_json.size(); ++i) {
    if (i > 0) body.push_back(',');
    body += t.history_json[i];
  }
  body += "]}";
  return Json(200, std::move(body));
}

}  // namespace

http::Response Api::RouteAssets(const http::Request& request,
                                const std::vector<std::string_view>& parts, std::string* route) {
  const std::string& method = request.method;
  auto method_not_allowed = [&method] { return MethodNotAllowed(method); };
  if (assets_ == nullptr) {
    return Json(404, ErrorBody("not_found", "assets: not served by this node"));
  }
  const std::string type(parts[2]);

  if (parts[1] == "asset-types") {
    if (parts.size() == 3) {
      *route = "/v1/asset-types/{type}";
      std::optional<std::optional<uint64_t>> reindex_job;
      if (method == "PUT") {
        // Indexes this PUT adds to a type that has assets are not searchable until a reindex
        // job has built them: start one (docs/assets.md, "Adding an index").
        std::set<uint16_t> known;
        if (absl::StatusOr<assets::TypeWithHistory> before = assets_->GetType(type); before.ok()) {
          for (const assets::IndexDef& d : before->current->indexes) known.insert(d.id);
        }
        absl::StatusOr<std::shared_ptr<const assets::AssetType>> t =
            assets_->PutType(type, request.body);
        if (!t.ok()) return AssetError(t.status());
        std::string pointers;
        for (const assets::IndexDef& d : (*t)->indexes) {
          if (d.ready || known.count(d.id)) continue;
          if (!pointers.empty()) pointers.push_back(',');
          assets::AppendJsonString(&pointers, d.pointer);
        }
        reindex_job.emplace();
        if (!pointers.empty() && reprocess_ != nullptr) {
          std::string job_body = "{\"type\":";
          assets::AppendJsonString(&job_body, type);
          job_body += ",\"processor\":{\"kind\":\"reindex\",\"pointers\":[" + pointers + "]}}";
          absl::StatusOr<reprocess::JobRecord> job = reprocess_->Submit(job_body);
          if (!job.ok()) {
            return ErrorResponse(absl::Status(
                job.status().code(), "type: changed, but its reindex job did not start (start "
                                     "one with processor {\"kind\":\"reindex\"}): " +
                                         std::string(job.status().message())));
          }
          *reindex_job = job->id;
        }
      } else if (method != "GET") {
        return method_not_allowed();
      }
      absl::StatusOr<assets::TypeWithHistory> t = assets_->GetType(type);
      if (!t.ok()) return AssetError(t.status());
      return TypeResponse(*t, reindex_job);
    }
    if (parts.size() == 4 && parts[3] == "changes") {
      *route = "/v1/asset-types/{type}/changes";
      if (method != "GET") return method_not_allowed();
      std::optional<uint64_t> after;
      uint64_t limit = 100;
      for (const auto& [name, value] : QueryPairs(request.query)) {
        uint64_t n = 0;
        if (name == "after") {
          if (!ParseUint(value, &n)) {
            return AssetError(absl::InvalidArgumentError("after: must be an offset (>= 0)"));
          }
          after = n;
        } else if (name == "limit") {
          if (!ParseUint(value, &limit) || limit < 1 || limit > 1000) {
            return AssetError(absl::InvalidArgumentError("limit: must be 1..1000"));
          }
        } else {
          return AssetError(absl::InvalidArgumentError("query: unknown parameter \"" + name +
                                                       "\" (known: after, limit)"));
        }
      }
      absl::StatusOr<std::vector<assets::ChangeRecord>> changes =
          assets_->Changes(type, after, static_cast<int>(limit));
      if (!changes.ok()) return AssetError(changes.status());
      std::string body = "{\"changes\":[";
      for (size_t i = 0; i < changes->size(); ++i) {
        const assets::ChangeRecord& c = (*changes)[i];
        if (i > 0) body.push_back(',');
        body += "{\"offset\":" + std::to_string(c.offset) + ",";
        body.append(c.event_json, 1, std::string::npos);
      }
      body += "],\"next_after\":";
      if (changes->empty()) {
        body += after ? std::to_string(*after) : "null";
      } else {
        body += std::to_string(changes->back().offset);
      }
      body += "}";
      return Json(200, std::move(body));
    }
    return Json(404, ErrorBody("not_found", "path: no route for " + request.path));
  }

  // /v1/assets/...
  if (parts.size() == 3) {
    const size_t colon = type.find(':');
    if (colon != std::string::npos) {
      *route = "/v1/assets/{type}:batch";
      if (type.substr(colon) != ":batch") {
        return AssetError(absl::InvalidArgumentError("path: unknown action " + type.substr(colon)));
      }
      if (method != "POST") return method_not_allowed();
      return DeferToPool(
          ingest_pool_.get(), kMaxQueuedIngest,
          [this, type = type.substr(0, colon), body = request.body]() -> http::Response {
            absl::StatusOr<assets::BatchResult> r = assets_->CreateBatch(type, body);
            if (!r.ok()) return AssetError(r.status());
            JsonWriter w;
            w.Reserve(r->ids.size() * 40 + 128);
            w.BeginObject();
            w.PlainKey("created").Uint(r->ids.size() - r->rejected.size());
            w.PlainKey("schema_version").Uint(r->schema_version);
            w.PlainKey("created_at").Int(r->created_at);
            w.PlainKey("ids").BeginArray();
            for (const std::optional<assets::AssetId>& id : r->ids) {
              if (id) {
                w.String(id->ToString());
              } else {
                w.Null();
              }
            }
            w.EndArray();
            w.PlainKey("rejected").BeginArray();
            for (const auto& [index, error] : r->rejected) {
              w.BeginObject().PlainKey("index").Uint(index).PlainKey("error").String(error);
              w.EndObject();
            }
            w.EndArray().EndObject();
            return Json(200, w.Take());
          },
          io_waits_.get(), "assets");
    }
    *route = "/v1/assets/{type}";
    if (method == "POST") {
      absl::StatusOr<assets::Asset> a = assets_->Create(type, request.body);
      if (!a.ok()) return AssetError(a.status());
      return AssetResponse(201, *a);
    }
    if (method != "GET") return method_not_allowed();
    assets::ListQuery q;
    for (const auto& [name, value] : QueryPairs(request.query)) {
      uint64_t n = 0;
      int64_t t = 0;
      if (name == "limit") {
        if (!ParseUint(value, &n) || n < 1 || n > 1000) {
          return AssetError(absl::InvalidArgumentError("limit: must be 1..1000"));
        }
        q.limit = n;
      } else if (name == "since" || name == "until") {
        if (!ParseInt(value, &t)) {
          return AssetError(
              absl::InvalidArgumentError(name + ": must be milliseconds since the epoch"));
        }
        (name == "since" ? q.since : q.until) = t;
      } else if (name == "cursor") {
        q.cursor = value;
      } else if (name == "where") {
        q.where.push_back(value);
      } else if (name == "fields") {
        if (value != "id") {
          return AssetError(absl::InvalidArgumentError(
              "fields: only \"id\" is supported (omit fields for whole assets)"));
        }
        q.ids_only = true;
      } else {
        return AssetError(absl::InvalidArgumentError("query: unknown parameter \"" + name +
                                                     "\" (known: limit, since, until, cursor, "
                                                     "where, fields)"));
      }
    }
    // A filtered page may scan many rows: on the bulk pool, not on an io thread.
    return DeferToPool(
        bulk_pool_.get(), kMaxQueuedBulkReads,
        [this, type = std::string(type), q]() -> http::Response {
          absl::StatusOr<assets::AssetPage> page = assets_->List(type, q);
          if (!page.ok()) return AssetError(page.status());
          JsonWriter w;
          // One allocation for the whole answer: growing a 100 KB string by doubling copied
          // it and faulted in fresh pages several times per page of assets.
          size_t bytes = 64 + page->next_cursor.size() + page->ids.size() * 48;
          for (const assets::Asset& a : page->assets) bytes += a.row.payload.size() + 192;
          w.Reserve(bytes);
          w.BeginObject().PlainKey("assets").BeginArray();
          for (const assets::Asset& a : page->assets) WriteAsset(&w, a);
          char id_text[36];
          for (const assets::AssetId& id : page->ids) {
            id.Format(id_text);
            w.BeginObject().PlainKey("id").String(std::string_view(id_text, sizeof(id_text)));
            w.EndObject();
          }
          w.EndArray().PlainKey("next_cursor");
          if (page->next_cursor.empty()) {
            w.Null();
          } else {
            w.String(page->next_cursor);
          }
          w.EndObject();
          return Json(200, w.Take());
        },
        io_waits_.get(), "assets");
  }
  const std::string id(parts[3]);
  if (parts.size() == 4) {
    *route = "/v1/assets/{type}/{id}";
    if (method == "GET") {
      absl::StatusOr<assets::Asset> a = assets_->Get(type, id);
      if (!a.ok()) return AssetError(a.status());
      return AssetResponse(200, *a);
    }
    absl::StatusOr<std::optional<uint32_t>> if_match = IfMatch(request);
    if (!if_match.ok()) return AssetError(if_match.status());
    if (method == "PUT" || method == "PATCH") {
      absl::StatusOr<assets::Asset> a = method == "PUT"
                                            ? assets_->Replace(type, id, request.body, *if_match)
                                            : assets_->Patch(type, id, request.body, *if_match);
      if (!a.ok()) return AssetError(a.status());
      return AssetResponse(200, *a);
    }
    if (method == "DELETE") {
      absl::Status s = assets_->Delete(type, id, *if_match);
      if (!s.ok()) return AssetError(s);
      return Json(200, "{\"deleted\":true}");
    }
    return method_not_allowed();
  }
  if (parts.size() == 5 && parts[4] == "versions") {
    *route = "/v1/assets/{type}/{id}/versions";
    if (method != "GET") return method_not_allowed();
    absl::StatusOr<std::vector<assets::AssetRow>> versions = assets_->Versions(type, id);
    if (!versions.ok()) return AssetError(versions.status());
    JsonWriter w;
    w.BeginObject().PlainKey("id").String(id).PlainKey("versions").BeginArray();
    for (const assets::AssetRow& row : *versions) {
      w.BeginObject();
      w.PlainKey("version").Uint(row.version);
      w.PlainKey("schema_version").Uint(row.schema_version);
      w.PlainKey("created_at").Int(row.created_at);
      w.PlainKey("updated_at").Int(row.updated_at);
      w.PlainKey("payload").Raw(row.payload);
      w.EndObject();
    }
    w.EndArray().EndObject();
    return Json(200, w.Take());
  }
  return Json(404, ErrorBody("not_found", "path: no route for " + request.path));
}

}  // namespace strata::server
