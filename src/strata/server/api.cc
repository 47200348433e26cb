#include "strata/server/api.h"

#include <charconv>
#include <chrono>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/server/json_writer.h"
#include "strata/server/viewing_json.h"

namespace strata::server {
namespace {


absl::StatusOr<viewing::Kind> ParseKind(const std::optional<std::string>& v) {
  if (!v || *v == "play") return viewing::Kind::kPlay;
  if (*v == "preview") return viewing::Kind::kPreview;
  return absl::InvalidArgumentError("kind: must be \"play\" or \"preview\"");
}

}  // namespace

http::Response Json(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http::Response MethodNotAllowed(std::string_view method) {
  // Methods are tokens (the parser refuses other bytes) of any length: the message shows 32.
  std::string shown(method.substr(0, 32));
  if (method.size() > 32) shown += "...";
  return Json(405,
              ErrorBody("method_not_allowed", "method: " + shown + " is not allowed on this path"));
}

// Every (name, value) of a raw query string, url-decoded, in order.
std::vector<std::pair<std::string, std::string>> QueryPairs(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    out.emplace_back(http::UrlDecode(pair.substr(0, eq)),
                     eq == std::string_view::npos ? "" : http::UrlDecode(pair.substr(eq + 1)));
  }
  return out;
}

bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool ParseInt(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

int StatusToHttp(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return 503;
    case absl::StatusCode::kUnimplemented: return 501;
    default: return 500;
  }
}

std::string StatusCodeName(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return "invalid_argument";
    case absl::StatusCode::kNotFound: return "not_found";
    case absl::StatusCode::kAlreadyExists: return "already_exists";
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted: return "conflict";
    case absl::StatusCode::kResourceExhausted: return "throttled";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return "unavailable";
    case absl::StatusCode::kUnimplemented: return "not_implemented";
    case absl::StatusCode::kDataLoss: return "data_loss";
    default: return "internal";
  }
}

http::Response ErrorResponse(const absl::Status& s) {
  int code = StatusToHttp(s);
  if (code >= 500) STRATA_LOG_ERROR("request failed", "error", s.ToString());
  return Json(code, ErrorBody(StatusCodeName(s), std::string(s.message())));
}

Api::Api(viewing::ViewingService* viewing, media::MediaService* media, MetricsRegistry* metrics,
         AdminHooks admin)
    : viewing_(viewing),
      media_(media),
      ingest_pool_(std::make_unique<ThreadPool>(2, /*nice_increment=*/3, "strata-ingest")),
      bulk_pool_(std::make_unique<ThreadPool>(2, /*nice_increment=*/2, "strata-bulkread")),
      metrics_(metrics),
      admin_(std::move(admin)),
      jobs_(std::make_unique<AdminJobs>(SystemClock::Default(), AdminJobs::Options{})) {
  io_waits_ = std::make_unique<IoWaitGate>(
      std::numeric_limits<int>::max(),
      metrics_->GetCounter(
          "strata_http_deferred_waits_total",
          "Ingest batches and bulk pages whose HTTP thread waited for them because their pool "
          "already had a backlog (0 in a server: it refuses them instead)"),
      metrics_->GetCounter("strata_http_overload_refusals_total",
                           "Requests answered 503 because their pool had a backlog (overload)"));
}

namespace {

// The host of a Host header value or an Origin's authority, lower-cased, without the port
// and without IPv6 brackets ("[::1]:80" -> "::1", "Example.com:80" -> "example.com").
std::string HostName(std::string_view authority) {
  std::string_view h = authority;
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    h = close == std::string_view::npos ? h.substr(1) : h.substr(1, close - 1);
  } else if (const size_t colon = h.rfind(':'); colon != std::string_view::npos &&
                                                 h.find(':') == colon) {
    h = h.substr(0, colon);  // one colon: a port (more: a bare IPv6 literal)
  }
  std::string out(h);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ChangesState(std::string_view method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

}  // namespace

std::optional<http::Response> Api::CheckOrigin(const http::Request& request) const {
  // RFC 9112 3.2: a request with more than one Host field, or an HTTP/1.1 request without
  // one, is a 400. Two Hosts could also be read differently by a proxy in front.
  const size_t hosts = std::count_if(request.headers.begin(), request.headers.end(),
                                     [](const auto& h) { return h.first == "host"; });
  if (hosts > 1) {
    return http::Response{
        400, "application/json",
        http::JsonErrorBody("invalid_argument", "host: more than one Host header")};
  }
  if (allowed_hosts_.empty()) return std::nullopt;
  if (hosts == 0) {
    return http::Response{
        400, "application/json",
        http::JsonErrorBody("invalid_argument",
                            "host: required (send the server's name in a Host header)")};
  }
  auto allowed = [&](const std::string& name) {
    return std::find(allowed_hosts_.begin(), allowed_hosts_.end(), name) != allowed_hosts_.end();
  };
  const std::string host = HostName(request.Header("host"));
  if (!allowed(host)) {
    return http::Response{421, "application/json",
                          http::JsonErrorBody("misdirected",
                                              "host: '" + host +
                                                  "' is not a name of this server "
                                                  "(--allowed-hosts)")};
  }
  if (!ChangesState(request.method)) return std::nullopt;
  const std::string_view origin = request.Header("origin");
  if (origin.empty()) return std::nullopt;  // not a browser's cross-site request
  const size_t scheme = origin.find("://");
  const std::string origin_host =
      scheme == std::string_view::npos ? std::string() : HostName(origin.substr(scheme + 3));
  if (!allowed(origin_host)) {
    return http::Response{403, "application/json",
                          http::JsonErrorBody("forbidden",
                                              "origin: a page from '" + std::string(origin) +
                                                  "' may not change this server's state")};
  }
  return std::nullopt;
}

http::Response Api::Handle(const http::Request& request) {
  const auto start = std::chrono::steady_clock::now();
  std::string route = "unmatched";
  std::optional<http::Response> refused;
  if (request.path.empty() || request.path.front() != '/') {
    // "healthz" was served as "/healthz", "http://other.example/v1/..." answered as a path of
    // this server: only origin-form targets ("/v1/...") are routed.
    refused = Json(
        400, ErrorBody("invalid_argument", "path: the request target must start with '/', got '" +
                                               request.path.substr(0, 64) + "'"));
  } else {
    refused = CheckOrigin(request);
  }
  if (refused) {
    Record(route, request.method, refused->status,
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return std::move(*refused);
  }
  const RouteAccess access = ClassifyRequest(request.method, request.path);
  auth::Principal who;
  if (std::optional<http::Response> refused = Authorize(request, access, &who)) {
    // A valid key refused an audited action is recorded (someone tried); requests without a
    // valid key are not: anyone can send those, and they would flood the log.
    if (!access.action.empty() && refused->status == 403) {
      FinishAudit(StartAudit(who, access, request), *refused);
    }
    Record(route, request.method, refused->status,
           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return std::move(*refused);
  }
  std::optional<PendingAudit> audit;
  if (!access.action.empty()) audit = StartAudit(who, access, request);
  http::Response response = Route(request, who, &route);
  if (response.defer) {
    // Recorded (and audited) when the deferred reply is given.
    response.defer = [this, start, route = std::move(route), method = request.method,
                      audit = std::move(audit),
                      defer = std::move(response.defer)](http::Reply reply) {
      defer([this, start, route, method, audit, reply = std::move(reply)](http::Response r) {
        if (audit) FinishAudit(*audit, r);
        Record(route, method, r.status,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        reply(std::move(r));
      });
    };
    return response;
  }
  if (audit) FinishAudit(std::move(*audit), response);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Record(route, request.method, response.status, seconds);
  return response;
}

bool IoWaitGate::TryEnter() {
  const int limit = max_waiting_.load(std::memory_order_relaxed);
  int n = waiting_.load(std::memory_order_relaxed);
  do {
    if (n >= limit) return false;
  } while (!waiting_.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel));
  return true;
}

http::Response DeferToPool(ThreadPool* pool, size_t max_queued,
                           std::function<http::Response()> work, IoWaitGate* gate,
                           std::string_view what) {
  if (pool->queued() >= max_queued) {
    const size_t queued = pool->queued();
    if (gate != nullptr && !gate->TryEnter()) {
      // Waiting here too would leave no io thread for /healthz and other short requests.
      if (gate->refused() != nullptr) gate->refused()->Inc();
      http::Response r = ErrorResponse(absl::UnavailableError(
          absl::StrCat(std::string(what), ": the server is overloaded (", queued,
                       " waiting in its pool); not applied, retry")));
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    if (gate != nullptr && gate->waits() != nullptr) gate->waits()->Inc();
    http::Response r = pool->Submit(std::move(work)).get();
    if (gate != nullptr) gate->Leave();
    return r;
  }
  http::Response r;
  r.defer = [pool, work = std::move(work)](http::Reply reply) mutable {
    // The future is not kept: the reply is the result (a Reply dropped uncalled, e.g. on
    // an exception, answers 500).
    (void)pool->Submit([work = std::move(work), reply = std::move(reply)] { reply(work()); });
  };
  return r;
}

void Api::Record(const std::string& route, const std::string& raw_method, int status,
                 double seconds) {
  // Methods become metric labels: only the standard ones, so made-up methods from clients
  // cannot add series without bound (50 invented methods once added 1,000 lines).
  static const std::string kOther = "other";
  static constexpr std::string_view kKnown[] = {"GET",  "HEAD",   "POST",   "PUT",
                                                "PATCH", "DELETE", "OPTIONS"};
  const std::string& method =
      std::find(std::begin(kKnown), std::end(kKnown), raw_method) != std::end(kKnown)
          ? raw_method
          : kOther;
  // Metric pointers are looked up once per (route, method, code) and kept.
  std::pair<Counter*, Histogram*> m;
  {
    std::lock_guard<std::mutex> lock(request_metrics_mu_);
    auto& slot = request_metrics_[RequestMetricKey{route, method, status}];
    if (!slot.first) {
      slot.first = metrics_->GetCounter(
          "strata_http_requests_total", "HTTP requests by route, method and status",
          absl::StrCat("route=\"", route, "\",method=\"", method, "\",code=\"", status, "\""));
      slot.second = metrics_->GetHistogram(
          "strata_http_request_seconds", "HTTP request latency by route",
          absl::StrCat("route=\"", route, "\",method=\"", method, "\""));
    }
    m = slot;
  }
  m.first->Inc();
  m.second->Observe(seconds);
}

http::Response Api::Route(const http::Request& request, const auth::Principal& who,
                          std::string* route) {
  const std::string& method = request.method;
  std::vector<std::string_view> parts;
  for (size_t pos = 0; pos < request.path.size();) {
    size_t end = request.path.find('/', pos);
    if (end == std::string::npos) end = request.path.size();
    if (end > pos) parts.emplace_back(request.path.data() + pos, end - pos);
    pos = end + 1;
  }
  auto method_not_allowed = [&method] { return MethodNotAllowed(method); };

  if (parts.size() == 1 && parts[0] == "healthz") {
    *route = "/healthz";
    if (method != "GET" && method != "HEAD") return method_not_allowed();
    absl::Status s = admin_.health ? admin_.health() : absl::OkStatus();
    if (!s.ok()) return ErrorResponse(absl::UnavailableError(std::string(s.message())));
    return Json(200, "{\"status\":\"ok\"}");
  }
  if (parts.size() == 1 && parts[0] == "metrics") {
    *route = "/metrics";
    if (method != "GET" && method != "HEAD") return method_not_allowed();
    http::Response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_->RenderPrometheus();
    return r;
  }
  if (parts.size() >= 2 && parts[0] == "v1") {
    if (parts.size() == 3 && parts[1] == "viewing" && parts[2] == "events") {
      *route = "/v1/viewing/events";
      if (method != "POST") return method_not_allowed();
      return PostEvents(request);
    }
    if (parts[1] == "members" && parts.size() >= 3) {
      uint64_t member = 0;
      std::string_view member_part = parts[2];
      std::string_view action;
      if (parts.size() == 3) {
        size_t colon = member_part.find(':');
        if (colon != std::string_view::npos) {
          action = member_part.substr(colon + 1);
          member_part = member_part.substr(0, colon);
        }
      }
      if (!ParseUint(member_part, &member) || member == 0) {
        *route = "/v1/members/{member}";
        return ErrorResponse(absl::InvalidArgumentError("member: must be a positive integer"));
      }
      if (parts.size() == 3 && action.empty()) {
        *route = "/v1/members/{member}";
        if (method != "DELETE") return method_not_allowed();
        return DeleteMember(member);
      }
      if (parts.size() == 3 && action == "rollup") {
        *route = "/v1/members/{member}:rollup";
        if (method != "POST") return method_not_allowed();
        return RollUp(member, request);
      }
      if (parts.size() == 3 && action == "rotate") {
        *route = "/v1/members/{member}:rotate";
        if (method != "POST") return method_not_allowed();
        return Rotate(member);
      }
      if (parts.size() == 4 && parts[3] == "viewing") {
        *route = "/v1/members/{member}/viewing";
        if (method != "GET") return method_not_allowed();
        return GetViewing(member, request);
      }
      if (parts.size() == 4 && parts[3] == "summary") {
        *route = "/v1/members/{member}/summary";
        if (method != "GET") return method_not_allowed();
        return GetSummary(member);
      }
      if (parts.size() == 4 && parts[3] == "languages") {
        *route = "/v1/members/{member}/languages";
        if (method != "GET") return method_not_allowed();
        return GetLanguages(member);
      }
    }
    if (parts.size() >= 3 && parts[1] == "admin" && (parts[2] == "keys" || parts[2] == "audit")) {
      return RouteAccessAdmin(request, parts, who, route);
    }
    if (parts.size() == 3 && parts[1] == "admin" && parts[2] == "backup") {
      *route = "/v1/admin/backup";
      if (method != "POST") return method_not_allowed();
      return Backup(request);
    }
    if (parts.size() == 3 && parts[1] == "admin" &&
        (parts[2] == "scrub" || parts[2] == "scrub:run")) {
      return RouteScrub(request, parts[2] == "scrub:run", route);
    }
    if (parts.size() >= 3 && parts[1] == "admin" && parts[2] == "jobs") {
      return RouteJobs(request, parts, route);
    }
    if (parts.size() == 3 && parts[1] == "admin" && parts[2] == "compact") {
      *route = "/v1/admin/compact";
      if (method == "GET") return CompactStatus();
      if (method != "POST") return method_not_allowed();
      return Compact(request);
    }
    if (parts.size() == 4 && parts[1] == "admin" && parts[2] == "viewing" &&
        parts[3] == "tables") {
      *route = "/v1/admin/viewing/tables";
      if (method != "GET" && method != "POST") return method_not_allowed();
      return ViewingTables(request);
    }
    if (parts.size() == 4 && parts[1] == "admin" && parts[2] == "viewing" &&
        parts[3] == "rotation") {
      *route = "/v1/admin/viewing/rotation";
      if (method != "GET") return method_not_allowed();
      return RotationStatus();
    }
    if (parts.size() == 4 && parts[1] == "admin" && parts[2] == "viewing" &&
        parts[3] == "caches:drop") {
      *route = "/v1/admin/viewing/caches:drop";
      if (method != "POST") return method_not_allowed();
      const auto [history, summary] = viewing_->DropCaches();
      STRATA_LOG_INFO("viewing caches dropped", "history_entries", history, "summary_entries",
                      summary);
      JsonWriter w;
      w.BeginObject().Key("history_entries").Uint(history).Key("summary_entries").Uint(summary);
      w.EndObject();
      return Json(200, w.Take());
    }
    if (parts.size() == 4 && parts[1] == "admin" && parts[2] == "viewing" &&
        parts[3] == "rotation:sweep") {
      *route = "/v1/admin/viewing/rotation:sweep";
      if (method != "POST") return method_not_allowed();
      viewing_->StartRotationSweep();
      http::Response r = RotationStatus();
      r.status = 202;
      return r;
    }
  }
  if (parts.size() >= 3 && parts[0] == "v1" && parts[1] == "buckets") {
    return RouteMedia(request, parts, route);
  }
  if (parts.size() >= 3 && parts[0] == "v1" &&
      (parts[1] == "assets" || parts[1] == "asset-types")) {
    return RouteAssets(request, parts, route);
  }
  if (parts.size() >= 3 && parts[0] == "v1" && parts[1] == "reprocess" &&
      (parts[2] == "jobs" || parts[2] == "progress")) {
    return RouteReprocess(request, parts, route);
  }
  if ((parts.size() == 1 && parts[0] == "dashboard") ||
      (parts.size() >= 3 && parts[0] == "v1" && (parts[1] == "gc" || parts[1] == "archive"))) {
    return RouteLifecycle(request, parts, route);
  }
  return Json(404, ErrorBody("not_found", "path: no route for " + request.path));
}

http::Response Api::PostEvents(const http::Request& request) {
  // The request is copied (its body is ~100 KB for 500 events, a few microseconds): the
  // io thread's copy ends with this call.
  return DeferToPool(
      ingest_pool_.get(), kMaxQueuedIngest, [this, request] { return Ingest(request); },
      io_waits_.get(), "events");
}

http::Response Api::Ingest(const http::Request& request) {
  auto parsed = ParseViewingEvents(request.body, viewing_->LatestAcceptedTime());
  if (!parsed.ok()) return ErrorResponse(parsed.status());
  viewing::IngestResult result;
  if (!parsed->valid.empty()) {
    auto r = viewing_->Ingest(parsed->valid);
    if (!r.ok()) return ErrorResponse(r.status());
    result = *r;
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("accepted").Uint(result.accepted);
  w.Key("dropped").Uint(result.dropped);
  w.Key("rejected").BeginArray();
  for (const auto& rej : parsed->rejected) {
    w.BeginObject().Key("index").Uint(rej.index).Key("error").String(rej.error).EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Json(200, w.Take());
}

http::Response Api::GetViewing(uint64_t member, const http::Request& request) {
  viewing::HistoryQuery q;
  auto kind = ParseKind(http::QueryParam(request.query, "kind"));
  if (!kind.ok()) return ErrorResponse(kind.status());
  q.kind = *kind;
  if (auto v = http::QueryParam(request.query, "since")) {
    if (!ParseInt(*v, &q.since) || q.since < 0) {
      return ErrorResponse(absl::InvalidArgumentError("since: must be a time in ms >= 0"));
    }
  }
  if (auto v = http::QueryParam(request.query, "until")) {
    if (!ParseInt(*v, &q.until) || q.until < 0) {
      return ErrorResponse(absl::InvalidArgumentError("until: must be a time in ms >= 0"));
    }
  }
  if (auto v = http::QueryParam(request.query, "limit")) {
    uint64_t limit;
    if (!ParseUint(*v, &limit) || limit < 1 || limit > 1000) {
      return ErrorResponse(absl::InvalidArgumentError("limit: must be between 1 and 1000"));
    }
    q.limit = limit;
  }
  if (auto v = http::QueryParam(request.query, "cursor")) q.cursor = *v;
  if (q.limit > kBulkReadLimit) {
    return DeferToPool(
        bulk_pool_.get(), kMaxQueuedBulkReads,
        [this, member, q] { return HistoryPageResponse(member, q); }, io_waits_.get(), "viewing");
  }
  return HistoryPageResponse(member, q);
}

http::Response Api::HistoryPageResponse(uint64_t member, const viewing::HistoryQuery& q) {
  auto page = viewing_->ReadHistory(member, q);
  if (!page.ok()) return ErrorResponse(page.status());
  JsonWriter w;
  w.Reserve(64 + page->records.size() * 320);  // a record is ~250-300 bytes of JSON
  w.BeginObject().Key("records").BeginArray();
  for (const auto& r : page->records) AppendRecordJson(r, &w);
  w.EndArray().Key("next_cursor");
  if (page->next_cursor.empty()) {
    w.Null();
  } else {
    w.String(page->next_cursor);
  }
  if (page->detail_from != INT64_MIN) {
    // The page reached the age where only summaries are kept: older plays are in the summary.
    w.Key("detail_from").Int(page->detail_from);
  }
  w.EndObject();
  return Json(200, w.Take());
}

http::Response Api::GetSummary(uint64_t member) {
  auto summary = viewing_->Summary(member);
  if (!summary.ok()) return ErrorResponse(summary.status());
  JsonWriter w;
  w.BeginObject().Key("member").Uint(member).Key("titles").BeginArray();
  for (const auto& t : summary->titles) {
    w.BeginObject();
    w.Key("title").Uint(t.title).Key("plays").Uint(t.plays).Key("watched_ms").Int(t.watched_ms);
    w.Key("first_at").Int(t.first_at).Key("last_at").Int(t.last_at);
    w.Key("position_ms").Int(t.position_ms);
    w.EndObject();
  }
  w.EndArray();
  // Plays that started before detail_from are counted here but no longer kept in detail.
  w.Key("detail_from");
  if (summary->detail_from == INT64_MIN) {
    w.Null();
  } else {
    w.Int(summary->detail_from);
  }
  w.EndObject();
  return Json(200, w.Take());
}

http::Response Api::GetLanguages(uint64_t member) {
  auto langs = viewing_->Languages(member);
  if (!langs.ok()) return ErrorResponse(langs.status());
  JsonWriter w;
  w.BeginObject().Key("current").BeginObject();
  for (const auto& p : langs->current) {
    w.Key(p.content_lang).BeginObject();
    w.Key("audio_lang").String(p.audio_lang).Key("subtitle_lang").String(p.subtitle_lang);
    w.Key("since").Int(p.event_time);
    w.EndObject();
  }
  w.EndObject().Key("changes").BeginArray();
  for (const auto& p : langs->changes) {
    w.BeginObject();
    w.Key("content_lang").String(p.content_lang).Key("audio_lang").String(p.audio_lang);
    w.Key("subtitle_lang").String(p.subtitle_lang).Key("event_time").Int(p.event_time);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return Json(200, w.Take());
}

http::Response Api::DeleteMember(uint64_t member) {
  absl::Status s = viewing_->EraseMember(member);
  if (!s.ok()) return ErrorResponse(s);
  return Json(200, absl::StrCat("{\"erased\":", member, "}"));
}

http::Response Api::RollUp(uint64_t member, const http::Request& request) {
  auto kind = ParseKind(http::QueryParam(request.query, "kind"));
  if (!kind.ok()) return ErrorResponse(kind.status());
  absl::Status s = viewing_->RollUp(member, *kind);
  if (!s.ok()) return ErrorResponse(s);
  return Json(200, "{\"rolled_up\":true}");
}

http::Response Api::Rotate(uint64_t member) {
  absl::Status s = viewing_->Rotate(member);
  if (!s.ok()) return ErrorResponse(s);
  return Json(200, "{\"rotated\":true}");
}

http::Response Api::Backup(const http::Request& request) {
  if (!admin_.backup) {
    return ErrorResponse(absl::UnimplementedError("backup: not available on this deployment"));
  }
  std::string name(http::QueryParam(request.query, "name").value_or(""));
  if (name.empty() || name.size() > 100 || name[0] == '.' ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
          std::string::npos) {
    return ErrorResponse(absl::InvalidArgumentError(
        "name: must be 1..100 characters of [A-Za-z0-9._-], not starting with '.'"));
  }
  // Off the io threads: a checkpoint flushes the memtables and links every file.
  return DeferToPool(bulk_pool_.get(), kMaxQueuedBulkReads,
                     [backup = admin_.backup, name]() -> http::Response {
                       const auto start = std::chrono::steady_clock::now();
                       absl::StatusOr<std::string> dir = backup(name);
                       if (!dir.ok()) return ErrorResponse(dir.status());
                       const double seconds = std::chrono::duration<double>(
                                                  std::chrono::steady_clock::now() - start)
                                                  .count();
                       JsonWriter w;
                       w.BeginObject().Key("name").String(name).Key("dir").String(*dir);
                       w.Key("seconds").Double(seconds).EndObject();
                       return Json(200, w.Take());
                     },
                     nullptr);
}

namespace {

// A job as JSON (docs/api.md, "Admin jobs").
void AppendJob(const AdminJob& j, JsonWriter* w) {
  w->BeginObject();
  w->Key("id").String(j.id).Key("kind").String(j.kind);
  w->Key("state").String(JobStateName(j.state));
  w->Key("created_at").Int(j.created_at);
  w->Key("started_at");
  j.started_at == 0 ? w->Null() : w->Int(j.started_at);
  w->Key("finished_at");
  j.finished_at == 0 ? w->Null() : w->Int(j.finished_at);
  w->Key("progress");
  if (j.progress.total == 0) {
    w->Null();
  } else {
    w->BeginObject().Key("done").Uint(j.progress.done).Key("total").Uint(j.progress.total);
    w->Key("unit").String(j.progress.unit).EndObject();
  }
  w->Key("result");
  if (j.state == JobState::kSucceeded && !j.result_json.empty()) {
    w->Raw(j.result_json);
  } else {
    w->Null();
  }
  w->Key("error");
  if (j.state == JobState::kFailed) {
    w->BeginObject().Key("code").String(StatusCodeName(j.error));
    w->Key("message").String(std::string(j.error.message())).EndObject();
  } else {
    w->Null();
  }
  w->EndObject();
}

std::string JobJson(const AdminJob& j) {
  JsonWriter w;
  AppendJob(j, &w);
  return w.Take();
}

// 202 with the job and where to follow it.
http::Response JobAccepted(const AdminJob& j) {
  http::Response r = Json(202, JobJson(j));
  r.headers.emplace_back("Location", "/v1/admin/jobs/" + j.id);
  return r;
}

// A finished job as an answer: 200 with the job, or its error.
http::Response FinishedJobResponse(const AdminJob& j) {
  if (j.state == JobState::kFailed) return ErrorResponse(j.error);
  return Json(200, JobJson(j));
}

absl::StatusOr<bool> ParseWait(const http::Request& request) {
  std::optional<std::string> v = http::QueryParam(request.query, "wait");
  if (!v) return false;
  if (*v != "true" && *v != "false") {
    return absl::InvalidArgumentError("wait: must be true or false");
  }
  return *v == "true";
}

}  // namespace

http::Response Api::AwaitJob(const std::string& id) {
  http::Response r;
  r.defer = [jobs = jobs_.get(), id](http::Reply reply) {
    // Answered from the job's thread when it finishes (at once if it has); the io thread goes
    // back to other requests meanwhile.
    absl::Status s =
        jobs->WhenDone(id, [reply](const AdminJob& j) mutable { reply(FinishedJobResponse(j)); });
    if (!s.ok()) reply(ErrorResponse(s));
  };
  return r;
}

http::Response Api::Compact(const http::Request& request) {
  if (!admin_.compact) {
    return ErrorResponse(absl::UnimplementedError(
        "compact: the row store backend has no manual compaction (it compacts on its own)"));
  }
  absl::StatusOr<bool> wait = ParseWait(request);
  if (!wait.ok()) return ErrorResponse(wait.status());
  absl::StatusOr<AdminJobs::Started> started = jobs_->Start(
      "compact",
      [compact = admin_.compact](const AdminJobs::ReportProgress&) -> absl::StatusOr<std::string> {
        const auto start = std::chrono::steady_clock::now();
        STRATA_RETURN_IF_ERROR(compact());
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return absl::StrCat("{\"compacted\":true,\"seconds\":", seconds, "}");
      },
      AdminJobs::IfActive::kRefuse);
  if (!started.ok()) return ErrorResponse(started.status());
  if (*wait) return AwaitJob(started->job.id);
  return JobAccepted(started->job);
}

http::Response Api::CompactStatus() {
  // The compaction jobs as the registry knows them (the running or the latest one).
  const std::optional<AdminJob> latest = jobs_->Latest("compact");
  std::optional<AdminJob> last_done;
  for (const AdminJob& j : jobs_->List("compact", 1000)) {
    if (j.done()) {
      last_done = j;
      break;
    }
  }
  JsonWriter w;
  w.BeginObject();
  w.Key("running").Bool(latest && !latest->done());
  w.Key("runs").Uint(jobs_->finished("compact"));
  w.Key("started_at").Int(latest ? latest->started_at : 0);
  w.Key("last_seconds")
      .Double(last_done ? static_cast<double>(last_done->finished_at - last_done->started_at) / 1e3
                        : 0.0);
  w.Key("last_error");
  if (last_done && last_done->state == JobState::kFailed) {
    w.String(last_done->error.ToString());
  } else {
    w.Null();
  }
  w.Key("job");
  if (latest) {
    AppendJob(*latest, &w);
  } else {
    w.Null();
  }
  w.EndObject();
  return Json(200, w.Take());
}

http::Response Api::RouteJobs(const http::Request& request,
                              const std::vector<std::string_view>& parts, std::string* route) {
  if (parts.size() == 3) {
    *route = "/v1/admin/jobs";
    if (request.method != "GET") return MethodNotAllowed(request.method);
    uint64_t limit = 20;
    std::string kind;
    for (const auto& [name, value] : QueryPairs(request.query)) {
      if (name == "limit") {
        if (!ParseUint(value, &limit) || limit < 1 || limit > 1000) {
          return ErrorResponse(absl::InvalidArgumentError("limit: must be 1..1000"));
        }
      } else if (name == "kind") {
        if (value != "compact" && value != "viewing_tables") {
          return ErrorResponse(
              absl::InvalidArgumentError("kind: must be compact or viewing_tables"));
        }
        kind = value;
      } else {
        return ErrorResponse(absl::InvalidArgumentError("query: unknown parameter \"" + name +
                                                        "\" (known: kind, limit)"));
      }
    }
    JsonWriter w;
    w.BeginObject().Key("jobs").BeginArray();
    for (const AdminJob& j : jobs_->List(kind, limit)) AppendJob(j, &w);
    w.EndArray().EndObject();
    return Json(200, w.Take());
  }
  *route = "/v1/admin/jobs/{id}";
  if (parts.size() != 4) {
    return Json(404, ErrorBody("not_found", "path: no route for " + request.path));
  }
  if (request.method != "GET") return MethodNotAllowed(request.method);
  const std::string_view id = parts[3];
  if (id.empty() || id.size() > 64 ||
      id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string_view::npos) {
    return ErrorResponse(
        absl::InvalidArgumentError("id: not a job id (GET /v1/admin/jobs lists them)"));
  }
  absl::StatusOr<bool> wait = ParseWait(request);
  if (!wait.ok()) return ErrorResponse(wait.status());
  absl::StatusOr<AdminJob> job = jobs_->Get(id);
  if (!job.ok()) return ErrorResponse(job.status());
  if (*wait && !job->done()) return AwaitJob(job->id);
  return Json(200, JobJson(*job));
}

http::Response Api::RotationStatus() {
  const viewing::RotationStatus st = viewing_->rotation_status();
  JsonWriter w;
  w.BeginObject();
  w.Key("queued").Uint(st.queued).Key("running").Uint(st.running);
  w.Key("rotated_members").Uint(st.rotated_members);
  w.Key("moved_to_past").Uint(st.moved_to_past);
  w.Key("folded_to_historical").Uint(st.folded_to_historical);
  w.Key("sweep").BeginObject();
  w.Key("running").Bool(st.sweep_running).Key("scanned_members").Uint(st.sweep_scanned);
  w.Key("queued_members").Uint(st.sweep_queued).EndObject();
  w.Key("summary_cache").BeginObject();
  w.Key("hits").Uint(viewing_->summary_cache().hits());
  w.Key("misses").Uint(viewing_->summary_cache().misses()).EndObject();
  w.EndObject();
  return Json(200, w.Take());
}

http::Response Api::ViewingTables(const http::Request& request) {
  // The report scans every viewing table: a job, never on an io thread. Requests while one
  // runs share it.
  absl::StatusOr<AdminJobs::Started> started = jobs_->Start(
      "viewing_tables",
      [this](const AdminJobs::ReportProgress& progress) { return ViewingTablesJson(progress); },
      AdminJobs::IfActive::kJoin);
  if (!started.ok()) return ErrorResponse(started.status());
  if (request.method == "POST") return JobAccepted(started->job);
  // GET: the report itself, as before jobs existed, once the job is done.
  http::Response r;
  r.defer = [jobs = jobs_.get(), id = started->job.id](http::Reply reply) {
    absl::Status s = jobs->WhenDone(id, [reply](const AdminJob& j) mutable {
      reply(j.state == JobState::kFailed ? ErrorResponse(j.error) : Json(200, j.result_json));
    });
    if (!s.ok()) reply(ErrorResponse(s));
  };
  return r;
}

absl::StatusOr<std::string> Api::ViewingTablesJson(const AdminJobs::ReportProgress& progress) {
  auto report = viewing_->Report([&progress](size_t done, size_t total) {
    progress(JobProgress{done, total, "tables"});
  });
  if (!report.ok()) return report.status();
  JsonWriter w;
  w.BeginObject();
  // The honest size: the whole data directory over every viewing record stored, whatever
  // table, log or queue the bytes are in (per-table figures below leave the WAL out).
  uint64_t records = 0;
  for (const auto& t : *report) {
    if (t.tier != "historical") records += t.records;
  }
  w.Key("records").Uint(records);
  if (admin_.store) {
    const StoreFigures f = admin_.store();
    w.Key("store").BeginObject();
    w.Key("data_dir_bytes").Uint(f.data_dir_bytes).Key("wal_bytes").Uint(f.wal_bytes);
    w.Key("sst_bytes").Uint(f.sst_bytes).Key("memtable_bytes").Uint(f.memtable_bytes);
    w.EndObject();
    w.Key("data_dir_bytes_per_record");
    if (records > 0) {
      w.Double(static_cast<double>(f.data_dir_bytes) / static_cast<double>(records));
    } else {
      w.Null();
    }
  }
  w.Key("tables").BeginArray();
  for (const auto& t : *report) {
    w.BeginObject();
    w.Key("table").String(t.table).Key("tier").String(t.tier).Key("members").Uint(t.members);
    w.Key("records").Uint(t.records).Key("disk_bytes").Uint(t.disk_bytes);
    w.Key("bytes_per_record");
    if (t.records > 0) {
      w.Double(static_cast<double>(t.disk_bytes) / static_cast<double>(t.records));
    } else {
      w.Null();
    }
    w.Key("rows").BeginObject();
    for (const auto& [kind, rows] : t.rows) {
      w.Key(kind).BeginObject();
      w.Key("rows").Uint(rows.rows).Key("key_bytes").Uint(rows.key_bytes);
      w.Key("value_bytes").Uint(rows.value_bytes).EndObject();
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray().EndObject();
  return w.Take();
}

}  // namespace strata::server
