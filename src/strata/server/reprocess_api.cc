// The reprocessing routes of the HTTP API (docs/api.md, "Reprocessing"): submit, list and
// read jobs, pause/resume/cancel, dead letters.
#include <string>
#include <vector>

#include "strata/reprocess/job_runner.h"
#include "strata/server/api.h"
#include "strata/server/json_writer.h"

namespace strata::server {
namespace {

// The stored job JSON plus its processing rate (assets/s since it was created, while it was
// running or paused) and an estimate of the time left, ms (null when unknown).
std::string JobJson(const reprocess::JobRecord& job) {
  std::string body = reprocess::EncodeJobRecord(job).substr(1);
  body.pop_back();
  const double seconds = static_cast<double>(job.updated_at - job.created_at) / 1000.0;
  const double rate = seconds > 0 ? static_cast<double>(job.counts.processed) / seconds : 0;
  JsonWriter w;
  w.Double(rate);
  body += ",\"rate\":" + w.Take() + ",\"eta_ms\":";
  const uint64_t done = job.counts.processed + job.counts.dead_lettered;
  if (job.state == reprocess::JobState::kRunning && rate > 0 && job.planned &&
      job.counts.selected >= done) {
    body += std::to_string(
        static_cast<int64_t>(static_cast<double>(job.counts.selected - done) / rate * 1000));
  } else {
    body += "null";
  }
  body += "}";
  return body;
}

}  // namespace

http::Response Api::RouteReprocess(const http::Request& request,
                                   const std::vector<std::string_view>& parts, std::string* route) {
  const std::string& method = request.method;
  auto method_not_allowed = [&method] { return MethodNotAllowed(method); };
  if (reprocess_ == nullptr) {
    return Json(404, ErrorBody("not_found", "reprocess: not served by this node"));
  }
  if (parts.size() == 3 && parts[2] == "progress") {
    // The dashboard's view: each job's state, counts, rate and ETA, without its spec (which
    // may name webhook URLs and query values), readable with metrics:read.
    *route = "/v1/reprocess/progress";
    if (method != "GET") return method_not_allowed();
    uint64_t limit = 20;
    if (auto v = http::QueryParam(request.query, "limit"); v) {
      if (!ParseUint(*v, &limit) || limit < 1 || limit > 1000) {
        return ErrorResponse(absl::InvalidArgumentError("limit: must be 1..1000"));
      }
    }
    absl::StatusOr<std::vector<reprocess::JobRecord>> jobs = reprocess_->jobs()->List(limit);
    if (!jobs.ok()) return ErrorResponse(jobs.status());
    std::string body = "{\"jobs\":[";
    for (size_t i = 0; i < jobs->size(); ++i) {
      reprocess::JobRecord job = std::move((*jobs)[i]);
      // The spec without what it may hold of the data: the processor's kind only, no where.
      assets::JsonValue processor = assets::JsonValue::Object();
      if (const assets::JsonValue* kind = job.spec.processor.Find("kind")) {
        processor.Set("kind", *kind);
      }
      job.spec.processor = std::move(processor);
      job.spec.where.clear();
      if (i > 0) body.push_back(',');
      body += JobJson(job);
    }
    body += "]}";
    return Json(200, std::move(body));
  }
  if (parts[2] != "jobs") return Json(404, ErrorBody("not_found", "path: no route for " + request.path));
  if (parts.size() == 3) {
    *route = "/v1/reprocess/jobs";
    if (method == "POST") {
      absl::StatusOr<reprocess::JobSpec> spec = reprocess::ParseJobSpec(request.body);
      if (!spec.ok()) return ErrorResponse(spec.status());
      if (spec->dry_run_sample) {
        absl::StatusOr<std::vector<reprocess::DryRunItem>> items = reprocess_->DryRun(*spec);
        if (!items.ok()) return ErrorResponse(items.status());
        JsonWriter w;
        w.BeginObject().PlainKey("dry_run").Bool(true).PlainKey("sample").BeginArray();
        for (const reprocess::DryRunItem& item : *items) {
          w.BeginObject().PlainKey("id").String(item.id).PlainKey("outcome").String(item.outcome);
          w.PlainKey("before").Raw(item.before).PlainKey("after");
          if (item.after.empty()) {
            w.Null();
          } else {
            w.Raw(item.after);
          }
          w.PlainKey("error");
          if (item.error.empty()) {
            w.Null();
          } else {
            w.String(item.error);
          }
          w.EndObject();
        }
        w.EndArray().EndObject();
        return Json(200, w.Take());
      }
      absl::StatusOr<reprocess::JobRecord> job = reprocess_->Submit(request.body);
      if (!job.ok()) return ErrorResponse(job.status());
      return Json(201, JobJson(*job));
    }
    if (method != "GET") return method_not_allowed();
    uint64_t limit = 100, before = 0;
    if (auto v = http::QueryParam(request.query, "limit"); v) {
      if (!ParseUint(*v, &limit) || limit < 1 || limit > 1000) {
        return ErrorResponse(absl::InvalidArgumentError("limit: must be 1..1000"));
      }
    }
    if (auto v = http::QueryParam(request.query, "before"); v && !ParseUint(*v, &before)) {
      return ErrorResponse(absl::InvalidArgumentError("before: must be a job id"));
    }
    absl::StatusOr<std::vector<reprocess::JobRecord>> jobs =
        reprocess_->jobs()->List(limit, before);
    if (!jobs.ok()) return ErrorResponse(jobs.status());
    std::string body = "{\"jobs\":[";
    for (size_t i = 0; i < jobs->size(); ++i) {
      if (i > 0) body.push_back(',');
      body += JobJson((*jobs)[i]);
    }
    body += "]}";
    return Json(200, std::move(body));
  }
  std::string_view id_part = parts[3];
  std::string_view action;
  if (const size_t colon = id_part.find(':'); colon != std::string_view::npos) {
    action = id_part.substr(colon + 1);
    id_part = id_part.substr(0, colon);
  }
  uint64_t id = 0;
  if (!ParseUint(id_part, &id) || id == 0) {
    *route = "/v1/reprocess/jobs/{id}";
    return ErrorResponse(absl::InvalidArgumentError("id: must be a job id (a positive integer)"));
  }
  if (parts.size() == 4 && !action.empty()) {
    *route = "/v1/reprocess/jobs/{id}:" + std::string(action);
    if (method != "POST") return method_not_allowed();
    absl::StatusOr<reprocess::JobRecord> job;
    if (action == "pause") {
      job = reprocess_->Pause(id);
    } else if (action == "resume") {
      job = reprocess_->Resume(id);
    } else if (action == "cancel") {
      job = reprocess_->Cancel(id);
    } else {
      *route = "/v1/reprocess/jobs/{id}:action";
      return ErrorResponse(absl::InvalidArgumentError(
          "path: unknown action \"" + std::string(action) + "\" (pause, resume, cancel)"));
    }
    if (!job.ok()) return ErrorResponse(job.status());
    return Json(200, JobJson(*job));
  }
  if (parts.size() == 4) {
    *route = "/v1/reprocess/jobs/{id}";
    if (method != "GET") return method_not_allowed();
    absl::StatusOr<reprocess::JobRecord> job = reprocess_->jobs()->Get(id);
    if (!job.ok()) return ErrorResponse(job.status());
    return Json(200, JobJson(*job));
  }
  if (parts.size() == 5 && parts[4] == "dead-letters:retry") {
    *route = "/v1/reprocess/jobs/{id}/dead-letters:retry";
    if (method != "POST") return method_not_allowed();
    absl::StatusOr<reprocess::JobRecord> job = reprocess_->RetryDeadLetters(id);
    if (!job.ok()) return ErrorResponse(job.status());
    return Json(200, JobJson(*job));
  }
  if (parts.size() == 5 && parts[4] == "dead-letters") {
    *route = "/v1/reprocess/jobs/{id}/dead-letters";
    if (method != "GET") return method_not_allowed();
    uint64_t limit = 100;
    if (auto v = http::QueryParam(request.query, "limit"); v) {
      if (!ParseUint(*v, &limit) || limit < 1 || limit > 1000) {
        return ErrorResponse(absl::InvalidArgumentError("limit: must be 1..1000"));
      }
    }
    std::string after = http::QueryParam(request.query, "after").value_or("");
    absl::StatusOr<reprocess::JobRecord> job = reprocess_->jobs()->Get(id);
    if (!job.ok()) return ErrorResponse(job.status());
    absl::StatusOr<std::vector<std::string>> dead =
        reprocess_->jobs()->DeadLetters(id, limit, after);
    if (!dead.ok()) return ErrorResponse(dead.status());
    std::string body = "{\"dead_letters\":[";
    for (size_t i = 0; i < dead->size(); ++i) {
      if (i > 0) body.push_back(',');
      body += (*dead)[i];
    }
    body += "]}";
    return Json(200, std::move(body));
  }
  return Json(404, ErrorBody("not_found", "path: no route for " + request.path));
}

}  // namespace strata::server
