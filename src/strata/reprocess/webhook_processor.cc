// The `webhook` processor: Strata POSTs each asset to a URL and the answer decides
// (docs/assets.md, "Webhook"). Request: POST <url> with
// {"type","id","version","payload"} (application/json). Answer:
//   200 with a JSON object  the new payload (unchanged if equal to the old one)
//   204                     unchanged
//   4xx                     InvalidArgument: the asset's dead letter, with the status and
//                           the first 200 bytes of the body as the reason
//   5xx, timeout, no connection, a malformed answer
//                           Unavailable / DeadlineExceeded: the runner retries with
//                           exponential backoff and jitter, up to the job's max_attempts
//   anything else           InvalidArgument (redirects are not followed)
// The client is strata::http::Client (http:// only), one kept-alive connection per worker
// thread at a time, taken from a small pool.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "strata/assets/json.h"
#include "strata/base/status.h"
#include "strata/http/http_client.h"
#include "strata/reprocess/internal/processors.h"

namespace strata::reprocess::internal {
namespace {

using assets::JsonValue;

constexpr size_t kExcerptBytes = 200;

std::string Excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, kExcerptBytes)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 ? ' ' : c);
  }
  if (body.size() > kExcerptBytes) out += "...";
  return out;
}

class WebhookProcessor final : public Processor {
 public:
  WebhookProcessor(http::Endpoint endpoint, std::string target, int timeout_ms)
      : endpoint_(std::move(endpoint)), target_(std::move(target)), timeout_ms_(timeout_ms) {}

  absl::StatusOr<Outcome> Apply(const AssetInfo& asset, JsonValue* payload) const override {
    std::string body = "{\"type\":";
    assets::AppendJsonString(&body, asset.type);
    body += ",\"id\":";
    assets::AppendJsonString(&body, asset.id);
    body += ",\"version\":" + std::to_string(asset.version) + ",\"payload\":";
    payload->AppendTo(&body);
    body += "}";
    std::unique_ptr<http::Client> client = Take();
    absl::StatusOr<http::ClientResponse> r = client->Request("POST", target_, body);
    if (!r.ok()) {
      // Transport failures are worth a retry whatever their code.
      const std::string why = "webhook: " + std::string(r.status().message());
      return absl::IsDeadlineExceeded(r.status()) ? absl::DeadlineExceededError(why)
                                                  : absl::UnavailableError(why);
    }
    Give(std::move(client));
    const std::string status = "webhook: HTTP " + std::to_string(r->status);
    if (r->status == 204) return Outcome::kUnchanged;
    if (r->status == 200) {
      absl::StatusOr<JsonValue> next = assets::ParseJson(r->body, "webhook answer", 64);
      if (!next.ok() || !next->is_object()) {
        return absl::InvalidArgumentError(status + ": the body is not a JSON object: " +
                                          Excerpt(r->body));
      }
      if (*next == *payload) return Outcome::kUnchanged;
      *payload = std::move(*next);
      return Outcome::kChanged;
    }
    if (r->status >= 500 && r->status <= 599) {
      return absl::UnavailableError(status + ": " + Excerpt(r->body));
    }
    if (r->status >= 400 && r->status <= 499) {
      return absl::InvalidArgumentError(status + ": " + Excerpt(r->body));
    }
    return absl::InvalidArgumentError(status +
                                      " is not an answer (200 with a payload, 204, 4xx or 5xx)");
  }

 private:
  std::unique_ptr<http::Client> Take() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.empty()) {
      return std::make_unique<http::Client>(endpoint_.host, endpoint_.port, timeout_ms_);
    }
    std::unique_ptr<http::Client> c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  // A client whose request failed is dropped instead (its connection is suspect).
  void Give(std::unique_ptr<http::Client> c) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < 64) idle_.push_back(std::move(c));
  }

  const http::Endpoint endpoint_;
  const std::string target_;
  const int timeout_ms_;
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<http::Client>> idle_;  // guarded by mu_
};

}  // namespace

absl::StatusOr<std::unique_ptr<Processor>> MakeWebhookProcessor(const JsonValue& spec) {
  STRATA_RETURN_IF_ERROR(OnlyFields(spec, {"kind", "url", "timeout_ms"}));
  const JsonValue* url = spec.Find("url");
  if (url == nullptr || !url->is_string() || url->string_value().empty()) {
    return SpecError("url", "required: an http:// URL such as \"http://127.0.0.1:9000/hook\"");
  }
  const std::string& u = url->string_value();
  if (u.compare(0, 7, "http://") != 0) {
    return SpecError("url", "must start with http:// (the client speaks no TLS)");
  }
  absl::StatusOr<http::Endpoint> endpoint = http::ParseUrl(u);
  if (!endpoint.ok()) return SpecError("url", std::string(endpoint.status().message()));
  const size_t slash = u.find('/', 7);
  std::string target = slash == std::string::npos ? "/" : u.substr(slash);
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return SpecError("url", "the path has a space or a control character");
    }
  }
  int timeout_ms = 10'000;
  if (const JsonValue* t = spec.Find("timeout_ms")) {
    if (t->kind() != JsonValue::Kind::kInt || t->int_value() < 1 || t->int_value() > 600'000) {
      return SpecError("timeout_ms", "must be an integer 1..600000");
    }
    timeout_ms = static_cast<int>(t->int_value());
  }
  return std::unique_ptr<Processor>(
      new WebhookProcessor(std::move(*endpoint), std::move(target), timeout_ms));
}

}  // namespace strata::reprocess::internal
