// The lifecycle routes of the HTTP API (docs/api.md): garbage collection runs, stats and
// status under /v1/gc/..., the same for archival under /v1/archive/..., and GET /dashboard.
#include <simdjson.h>

#include <charconv>

#include "strata/server/api.h"
#include "strata/server/dashboard.h"
#include "strata/server/json_writer.h"

namespace strata::server {
namespace {

void OptionalTime(JsonWriter* w, std::string_view key, Millis t) {
  w->Key(key);
  if (t == 0) {
    w->Null();
  } else {
    w->Int(t);
  }
}

void AppendRun(const gc::RunRecord& r, std::string_view task, JsonWriter* w) {
  w->BeginObject();
  w->Key("id").Uint(r.id);
  w->Key("task").String(task);
  w->Key("dry_run").Bool(r.dry_run);
  w->Key("as_of").Int(r.as_of);
  w->Key("state").String(gc::RunStateName(r.state));
  w->Key("started_at").Int(r.started_at);
  OptionalTime(w, "marked_at", r.marked_at);
  OptionalTime(w, "finished_at", r.finished_at);
  w->Key("scanned").Uint(r.scanned);
  w->Key("eligible").Uint(r.eligible);
  w->Key("eligible_bytes").Uint(r.eligible_bytes);
  w->Key("by_reason").BeginObject();
  if (task == "gc") {
    w->Key("expired").Uint(r.expired);
    w->Key("deleted").Uint(r.deleted_marked);
    w->Key("superseded").Uint(r.superseded);
    w->Key("orphans").Uint(r.orphans);
  } else {
    w->Key("age").Uint(r.expired);
  }
  w->EndObject();
  w->Key("published").Uint(r.published);
  w->Key("processed").Uint(r.processed);
  w->Key("processed_bytes").Uint(r.processed_bytes);
  // The GC's names for the same counts.
  w->Key("deleted").Uint(task == "gc" ? r.processed : 0);
  w->Key("deleted_bytes").Uint(task == "gc" ? r.processed_bytes : 0);
  w->Key("skipped").Uint(r.skipped);
  w->Key("errors").Uint(r.errors);
  if (task == "gc") {
    // The orphan-blob scan: bytes no row names (docs/gc.md, "Orphan blobs"). A dry run's
    // `found` is its forecast.
    w->Key("orphan_blobs").BeginObject();
    w->Key("scan").String(gc::OrphanScanStateName(r.orphan_scan));
    w->Key("listed").Uint(r.blobs_listed);
    w->Key("found").Uint(r.orphan_blobs);
    w->Key("found_bytes").Uint(r.orphan_blob_bytes);
    w->Key("collected").Uint(r.orphan_blobs_collected);
    w->Key("collected_bytes").Uint(r.orphan_blob_bytes_collected);
    w->Key("too_young").Uint(r.orphan_blobs_young);
    w->EndObject();
  }
  w->Key("export_path");
  if (r.export_path.empty()) {
    w->Null();
  } else {
    w->String(r.export_path);
  }
  w->Key("error");
  if (r.error.empty()) {
    w->Null();
  } else {
    w->String(r.error);
  }
  w->EndObject();
}

// {"dry_run": bool, "as_of": ms?}; an empty body is a real run as of now.
absl::StatusOr<gc::RunRequest> ParseRunRequest(std::string_view body) {
  gc::RunRequest req;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return req;
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("body: must be a JSON object");
  }
  for (auto field_result : obj) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) != simdjson::SUCCESS ||
        field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("body: invalid JSON object");
    }
    simdjson::ondemand::value v = field.value();
    if (key == "dry_run") {
      if (v.get_bool().get(req.dry_run) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError("dry_run: must be true or false");
      }
    } else if (key == "as_of") {
      bool is_null = false;
      if (v.is_null().get(is_null) == simdjson::SUCCESS && is_null) continue;
      int64_t as_of = 0;
      if (v.get_int64().get(as_of) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError("as_of: must be an integer (ms since the epoch)");
      }
      req.as_of = as_of;
    } else {
      return absl::InvalidArgumentError(std::string(key) + ": unknown field");
    }
  }
  // The on-demand parser reads no further than the object (simdjson 3.0 has no at_end(): the
  // location past the last token is OUT_OF_BOUNDS): '{"dry_run": true} {...}' was accepted.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return absl::InvalidArgumentError("body: unexpected content after the JSON object");
  }
  return req;
}

}  // namespace

http::Response Api::RouteLifecycle(const http::Request& request,
                                   const std::vector<std::string_view>& parts, std::string* route) {
  const std::string& method = request.method;
  auto method_not_allowed = [&method] { return MethodNotAllowed(method); };
  if (parts.size() == 1) {
    *route = "/dashboard";
    if (method != "GET") return method_not_allowed();
    http::Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(DashboardHtml());
    return r;
  }
  const std::string_view task = parts[1];
  gc::Collector* c = task == "gc" ? gc_ : archive_;
  const std::string base = "/v1/" + std::string(task);
  if (c == nullptr) {
    return Json(404, ErrorBody("not_found", "path: " + std::string(task) + " is not enabled"));
  }
  if (parts.size() == 3 && parts[2] == "runs") {
    *route = base + "/runs";
    if (method == "POST") {
      absl::StatusOr<gc::RunRequest> req = ParseRunRequest(request.body);
      if (!req.ok()) return ErrorResponse(req.status());
      absl::StatusOr<gc::RunRecord> run = c->StartRun(*req);
      if (!run.ok()) return ErrorResponse(run.status());
      JsonWriter w;
      AppendRun(*run, task, &w);
      return Json(202, w.Take());
    }
    if (method != "GET") return method_not_allowed();
    uint64_t limit = 20;
    if (auto v = http::QueryParam(request.query, "limit")) {
      if (!ParseUint(*v, &limit) || limit < 1 || limit > 1000) {
        return ErrorResponse(absl::InvalidArgumentError("limit: must be 1..1000"));
      }
    }
    absl::StatusOr<std::vector<gc::RunRecord>> runs = c->ListRuns(limit);
    if (!runs.ok()) return ErrorResponse(runs.status());
    JsonWriter w;
    w.BeginObject().Key("runs").BeginArray();
    for (const gc::RunRecord& r : *runs) AppendRun(r, task, &w);
    w.EndArray().EndObject();
    return Json(200, w.Take());
  }
  if (parts.size() == 4 && parts[2] == "runs") {
    *route = base + "/runs/{id}";
    if (method != "GET") return method_not_allowed();
    uint64_t id = 0;
    if (!ParseUint(parts[3], &id)) {
      return ErrorResponse(absl::InvalidArgumentError("id: must be a run id"));
    }
    absl::StatusOr<gc::RunRecord> run = c->GetRun(id);
    if (!run.ok()) return ErrorResponse(run.status());
    JsonWriter w;
    AppendRun(*run, task, &w);
    return Json(200, w.Take());
  }
  if (parts.size() == 3 && parts[2] == "stats") {
    *route = base + "/stats";
    if (method != "GET") return method_not_allowed();
    uint64_t days = 7;
    if (auto v = http::QueryParam(request.query, "days")) {
      if (!ParseUint(*v, &days) || days < 1 || days > 366) {
        return ErrorResponse(absl::InvalidArgumentError("days: must be 1..366"));
      }
    }
    absl::StatusOr<std::vector<gc::DayTotals>> stats = c->Stats(static_cast<int>(days));
    if (!stats.ok()) return ErrorResponse(stats.status());
    JsonWriter w;
    w.BeginObject().Key("task").String(task).Key("days").BeginArray();
    for (const gc::DayTotals& d : *stats) {
      w.BeginObject();
      w.Key("day").String(d.day);
      w.Key("objects").Uint(d.objects);
      w.Key("bytes").Uint(d.bytes);
      w.Key("by_bucket").BeginArray();
      for (const gc::DayTotals::Row& r : d.by_bucket_reason) {
        w.BeginObject()
            .Key("bucket")
            .String(r.bucket)
            .Key("reason")
            .String(r.reason)
            .Key("objects")
            .Uint(r.objects)
            .Key("bytes")
            .Uint(r.bytes)
            .EndObject();
      }
      w.EndArray().EndObject();
    }
    w.EndArray().EndObject();
    return Json(200, w.Take());
  }
  if (parts.size() == 3 && parts[2] == "status") {
    *route = base + "/status";
    if (method != "GET") return method_not_allowed();
    JsonWriter w;
    w.BeginObject();
    w.Key("task").String(task);
    w.Key("backlog").Uint(c->Backlog());
    w.Key("throttle_rate").Double(c->ThrottleRate());
    w.Key("workers").Int(c->Workers());
    w.EndObject();
    return Json(200, w.Take());
  }
  return Json(404, ErrorBody("not_found", "path: no route for " + request.path));
}

}  // namespace strata::server
