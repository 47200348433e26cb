// Authentication and audit in the HTTP API (docs/api.md, "Authentication"): the check every
// request passes before it is routed, the audit records of admin actions and hard deletes, and
// the routes /v1/admin/keys and /v1/admin/audit.
#include <simdjson.h>

#include <algorithm>

#include "strata/base/log.h"
#include "strata/server/api.h"
#include "strata/server/json_writer.h"

namespace strata::server {
namespace {

constexpr char kRealm[] = "Bearer realm=\"strata\"";

// `error` is the RFC 6750 error code of the challenge ("" = none: no credentials were sent).
http::Response Unauthorized(std::string_view message, const RouteAccess& access,
                            std::string_view error) {
  http::Response r = Json(401, ErrorBody("unauthorized", message));
  std::string challenge = kRealm;
  if (!error.empty()) challenge += ", error=\"" + std::string(error) + "\"";
  r.headers.emplace_back("WWW-Authenticate", std::move(challenge));
  // A browser opening the dashboard (or any GET) prompts for Basic credentials; the key is
  // the password.
  if (access.allow_basic) {
    r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"strata\", charset=\"UTF-8\"");
  }
  return r;
}

http::Response Forbidden(const auth::Principal& who, auth::Scope needed) {
  const std::string scope(auth::ScopeName(needed));
  const std::string held = who.scopes.ToString();
  http::Response r =
      Json(403, ErrorBody("forbidden", "scope: this request needs the '" + scope + "' scope; key " +
                                           who.key_id + " has " + (held.empty() ? "none" : held)));
  r.headers.emplace_back(
      "WWW-Authenticate",
      std::string(kRealm) + ", error=\"insufficient_scope\", scope=\"" + scope + "\"");
  return r;
}

struct NewKeyRequest {
  std::string name;
  auth::Scopes scopes;
};

// {"name": "...", "scopes": ["viewing:read", ...]}; scopes required.
absl::StatusOr<NewKeyRequest> ParseNewKey(std::string_view body) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("body: must be a JSON object {\"name\", \"scopes\"}");
  }
  NewKeyRequest out;
  bool have_scopes = false;
  for (auto field_result : obj) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) != simdjson::SUCCESS ||
        field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("body: invalid JSON object");
    }
    simdjson::ondemand::value v = field.value();
    if (key == "name") {
      std::string_view name;
      if (v.get_string().get(name) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError("name: must be a string");
      }
      out.name = std::string(name);
    } else if (key == "scopes") {
      simdjson::ondemand::array array;
      if (v.get_array().get(array) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError("scopes: must be an array of scope names");
      }
      for (auto element : array) {
        std::string_view name;
        if (element.get_string().get(name) != simdjson::SUCCESS) {
          return absl::InvalidArgumentError("scopes: must be an array of scope names");
        }
        absl::StatusOr<auth::Scope> scope = auth::ParseScope(name);
        if (!scope.ok()) return scope.status();
        out.scopes.Add(*scope);
      }
      have_scopes = true;
    } else {
      return absl::InvalidArgumentError(std::string(key) + ": unknown field");
    }
  }
  // The on-demand parser reads no further than the object (simdjson 3.0 has no at_end(): the
  // location past the last token is OUT_OF_BOUNDS): '{"scopes": [...]} }' was accepted.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return absl::InvalidArgumentError("body: unexpected content after the JSON object");
  }
  if (!have_scopes) return absl::InvalidArgumentError("scopes: required");
  return out;
}

}  // namespace

std::string KeyRecordJson(const auth::KeyRecord& k, const std::string* token) {
  JsonWriter w;
  w.BeginObject();
  w.Key("id").String(k.id).Key("name").String(k.name);
  w.Key("scopes").BeginArray();
  for (std::string_view s : k.scopes.Names()) w.String(s);
  w.EndArray();
  w.Key("created_at").Int(k.created_at).Key("created_by").String(k.created_by);
  w.Key("revoked_at");
  if (k.active()) {
    w.Null();
  } else {
    w.Int(k.revoked_at);
  }
  if (token != nullptr) w.Key("token").String(*token);
  w.EndObject();
  return w.Take();
}

std::optional<http::Response> Api::Authorize(const http::Request& request,
                                             const RouteAccess& access, auth::Principal* who) {
  *who = auth::AnonymousPrincipal();
  if (!access.scope || access_.authenticator == nullptr) return std::nullopt;
  absl::StatusOr<bool> required = access_.authenticator->Required();
  if (!required.ok()) return ErrorResponse(required.status());  // 503: fail closed
  if (!*required) return std::nullopt;
  // One credential per request: with two, which one counts would depend on who reads them (a
  // proxy in front may check the last, this server read the first).
  if (std::count_if(request.headers.begin(), request.headers.end(),
                    [](const auto& h) { return h.first == "authorization"; }) > 1) {
    return Json(400,
                ErrorBody("invalid_argument", "authorization: more than one Authorization header"));
  }
  absl::StatusOr<std::optional<std::string>> token =
      auth::TokenFromAuthorization(request.Header("authorization"), access.allow_basic);
  if (!token.ok())
    return Unauthorized(std::string(token.status().message()), access, "invalid_request");
  if (!token->has_value()) {
    return Unauthorized(
        "authorization: this server requires an API key: send 'Authorization: Bearer <key>'",
        access, "");
  }
  absl::StatusOr<auth::Principal> principal = access_.authenticator->Verify(**token);
  if (!principal.ok()) {
    if (!absl::IsUnauthenticated(principal.status())) return ErrorResponse(principal.status());
    return Unauthorized(std::string(principal.status().message()), access, "invalid_token");
  }
  *who = std::move(*principal);
  if (!who->scopes.Allows(*access.scope)) return Forbidden(*who, *access.scope);
  return std::nullopt;
}

Api::PendingAudit Api::StartAudit(const auth::Principal& who, const RouteAccess& access,
                                  const http::Request& request) const {
  PendingAudit p;
  p.key = who.key_id;
  p.action = access.action;
  p.target = request.path;
  if (!request.query.empty()) p.target += "?" + request.query;
  // A run's request body says what kind of run it was ({"dry_run": true}); other bodies stay
  // out (a key's creation answers its token, which must never be stored).
  if (access.action == "gc.run" || access.action == "archive.run") p.detail = request.body;
  return p;
}

void Api::FinishAudit(PendingAudit p, const http::Response& response) {
  if (access_.audit == nullptr) return;
  auth::AuditRecord r;
  r.key = std::move(p.key);
  r.action = std::move(p.action);
  r.target = std::move(p.target);
  r.status = response.status;
  if (response.status < 400) {
    r.result = "ok";
    r.detail = std::move(p.detail);
  } else {
    r.result = response.status == 401 || response.status == 403 ? "denied" : "error";
    r.detail = response.body;  // the JSON error, naming the problem
  }
  // Append logs and counts a failure itself; the action has happened either way.
  (void)access_.audit->Append(std::move(r));
}

http::Response Api::RouteAccessAdmin(const http::Request& request,
                                     const std::vector<std::string_view>& parts,
                                     const auth::Principal& who, std::string* route) {
  const std::string& method = request.method;
  auto method_not_allowed = [&method] { return MethodNotAllowed(method); };
  if (parts[2] == "audit") {
    *route = "/v1/admin/audit";
    if (parts.size() != 3) return Json(404, ErrorBody("not_found", "path: no such route"));
    if (method != "GET") return method_not_allowed();
    if (access_.audit == nullptr) {
      return Json(404, ErrorBody("not_found", "audit: not kept by this server"));
    }
    uint64_t limit = 100;
    if (auto v = http::QueryParam(request.query, "limit")) {
      if (!ParseUint(*v, &limit) || limit < 1 || limit > 1000) {
        return ErrorResponse(absl::InvalidArgumentError("limit: must be between 1 and 1000"));
      }
    }
    absl::StatusOr<std::vector<auth::AuditRecord>> records = access_.audit->Recent(limit);
    if (!records.ok()) return ErrorResponse(records.status());
    JsonWriter w;
    w.BeginObject().Key("records").BeginArray();
    for (const auth::AuditRecord& r : *records) {
      w.BeginObject();
      w.Key("time").Int(r.time).Key("key").String(r.key).Key("action").String(r.action);
      w.Key("target").String(r.target).Key("result").String(r.result);
      w.Key("status").Int(r.status).Key("detail").String(r.detail);
      w.EndObject();
    }
    w.EndArray().EndObject();
    return Json(200, w.Take());
  }
  // keys
  if (access_.keys == nullptr) {
    return Json(404, ErrorBody("not_found", "keys: not managed by this server"));
  }
  if (parts.size() == 3) {
    *route = "/v1/admin/keys";
    if (method == "GET") {
      absl::StatusOr<std::vector<auth::KeyRecord>> keys = access_.keys->List();
      if (!keys.ok()) return ErrorResponse(keys.status());
      std::string body = "{\"keys\":[";
      for (size_t i = 0; i < keys->size(); ++i) {
        if (i > 0) body += ",";
        body += KeyRecordJson((*keys)[i], nullptr);
      }
      body += "]}";
      return Json(200, std::move(body));
    }
    if (method != "POST") return method_not_allowed();
    absl::StatusOr<NewKeyRequest> req = ParseNewKey(request.body);
    if (!req.ok()) return ErrorResponse(req.status());
    absl::StatusOr<auth::NewKey> key = access_.keys->Create(req->name, req->scopes, who.key_id);
    if (!key.ok()) return ErrorResponse(key.status());
    if (access_.authenticator != nullptr) access_.authenticator->NoteKeyCreated();
    return Json(201, KeyRecordJson(key->record, &key->token));
  }
  if (parts.size() == 4) {
    *route = "/v1/admin/keys/{id}";
    if (method == "GET") {
      absl::StatusOr<auth::KeyRecord> key = access_.keys->Get(parts[3]);
      if (!key.ok()) return ErrorResponse(key.status());
      return Json(200, KeyRecordJson(*key, nullptr));
    }
    if (method != "DELETE") return method_not_allowed();
    absl::StatusOr<auth::KeyRecord> key = access_.keys->Revoke(parts[3]);
    if (!key.ok()) return ErrorResponse(key.status());
    // At once on this node; other nodes within their cache time.
    if (access_.authenticator != nullptr) access_.authenticator->Forget(key->id);
    return Json(200, KeyRecordJson(*key, nullptr));
  }
  return Json(404, ErrorBody("not_found", "path: no route for " + request.path));
}

}  // namespace strata::server
