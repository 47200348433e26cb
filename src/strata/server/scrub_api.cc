// The scrub's routes of the HTTP API (docs/api.md): GET /v1/admin/scrub, its report (the
// pass in progress, the last one, the objects marked damaged), and POST /v1/admin/scrub:run.
#include "strata/server/api.h"
#include "strata/server/json_writer.h"

namespace strata::server {
namespace {

// A pass as JSON; `state` (may be null) adds the position a running pass reached.
void AppendPass(const scrub::PassRecord& p, const scrub::ScrubState* state, JsonWriter* w) {
  w->BeginObject();
  w->Key("pass").Uint(p.id);
  w->Key("started_at").Int(p.started_at);
  w->Key("finished_at");
  if (p.finished_at == 0) {
    w->Null();
  } else {
    w->Int(p.finished_at);
  }
  w->Key("objects").Uint(p.objects);
  w->Key("bytes").Uint(p.bytes);
  w->Key("damaged").Uint(p.damaged);
  w->Key("errors").Uint(p.errors);
  w->Key("skipped").Uint(p.skipped);
  if (state != nullptr) {
    w->Key("position").BeginObject();
    w->Key("bucket").String(state->position_bucket);
    w->Key("key").String(state->position_key);
    w->EndObject();
  }
  w->EndObject();
}

}  // namespace

http::Response Api::RouteScrub(const http::Request& request, bool run, std::string* route) {
  *route = run ? "/v1/admin/scrub:run" : "/v1/admin/scrub";
  if (scrub_ == nullptr) {
    return Json(404, ErrorBody("not_found", "path: the scrub is not part of this server"));
  }
  if (run) {
    if (request.method != "POST") {
      return MethodNotAllowed(request.method);
    }
    if (scrub_rate_bytes_per_s_ == 0) {
      return ErrorResponse(
          absl::FailedPreconditionError("scrub: off (--scrub-rate-bytes is 0): no pass can run"));
    }
    absl::StatusOr<scrub::PassRecord> pass = scrub_->RequestPass();
    if (!pass.ok()) return ErrorResponse(pass.status());
    JsonWriter w;
    AppendPass(*pass, nullptr, &w);
    return Json(202, w.Take());
  }
  if (request.method != "GET") {
    return MethodNotAllowed(request.method);
  }
  uint64_t limit = 100;
  if (auto v = http::QueryParam(request.query, "limit")) {
    if (!ParseUint(*v, &limit) || limit < 1 || limit > 1000) {
      return ErrorResponse(absl::InvalidArgumentError("limit: must be 1..1000"));
    }
  }
  absl::StatusOr<scrub::ScrubReport> r = scrub_->Report(limit);
  if (!r.ok()) return ErrorResponse(r.status());
  JsonWriter w;
  w.BeginObject();
  w.Key("rate_bytes_per_s").Uint(r->rate_bytes_per_s);
  w.Key("interval_ms").Int(r->interval_ms);
  w.Key("running").Bool(r->state.current.has_value());
  w.Key("current");
  if (r->state.current) {
    AppendPass(*r->state.current, &r->state, &w);
  } else {
    w.Null();
  }
  w.Key("last");
  if (r->state.last) {
    AppendPass(*r->state.last, nullptr, &w);
  } else {
    w.Null();
  }
  w.Key("next_pass_at");
  if (r->rate_bytes_per_s == 0 || r->state.current) {
    w.Null();
  } else {
    w.Int(r->next_pass_at);
  }
  w.Key("damaged_objects").Uint(r->state.damaged_objects);
  w.Key("damaged").BeginArray();
  for (const scrub::DamageRecord& d : r->damaged) {
    w.BeginObject();
    w.Key("bucket").String(d.bucket);
    w.Key("key").String(d.key);
    w.Key("generation").Uint(d.generation);
    w.Key("blob").String(d.blob);
    w.Key("kind").String(d.kind);
    w.Key("detail").String(d.detail);
    w.Key("size").Uint(d.size);
    w.Key("detected_at").Int(d.detected_at);
    w.Key("last_pass").Uint(d.last_pass);
    w.EndObject();
  }
  w.EndArray();
  w.Key("truncated").Bool(r->truncated);
  w.EndObject();
  return Json(200, w.Take());
}

}  // namespace strata::server
