// An S3 request executor over libcurl, private to blob/s3: SigV4 signing by curl itself
// (CURLOPT_AWS_SIGV4), a pool of easy handles so connections are reused, connect and
// low-speed timeouts, and bounded retries with exponential backoff and full jitter on
// connection errors, 5xx and SlowDown. No curl type appears here; the .cc owns them.
//
// Thread-safe: Do() may be called from any number of threads (each call borrows its own
// handle from the pool).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strata::blob::s3_internal {

// S3's URI encoding (SigV4 "UriEncode"): every byte except A-Z a-z 0-9 - . _ ~ becomes %XX
// (upper-case hex); '/' is kept when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);
// The inverse, for keys that S3 returns with encoding-type=url ('+' decodes to a space).
std::string UriDecode(std::string_view s);

struct HttpTimeouts {
  int64_t connect_ms = 2000;
  // A transfer slower than 1 byte/s for this long is abandoned (a dead or stopped server).
  int64_t low_speed_seconds = 10;
};

struct RetryPolicy {
  int max_attempts = 5;  // per request, the first included
  int64_t initial_backoff_ms = 50;
  int64_t max_backoff_ms = 2000;
};

struct HttpRequest {
  std::string method;  // GET, HEAD, PUT, POST, DELETE
  std::string path;    // already encoded, "/bucket/key"
  // Canonical query: "a=1&b=2", names sorted, values UriEncoded, every name with '='
  // (curl 7.88 signs a bare "?uploads" wrongly; "?uploads=" is equivalent for S3).
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;  // must outlive Do()
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string Header(const std::string& lower_name) const;
  // <Error><Code> of an S3 error body, "" when there is none.
  std::string ErrorCode() const;
  std::string ErrorMessage() const;
};

// Builds a query string from unencoded (name, value) pairs: sorted, encoded, with '='.
std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> params);

class S3Http {
 public:
  S3Http(std::string endpoint, std::string region, std::string access_key, std::string secret_key,
         HttpTimeouts timeouts, RetryPolicy retry, size_t max_idle_handles);
  ~S3Http();
  S3Http(const S3Http&) = delete;
  S3Http& operator=(const S3Http&) = delete;

  // Sends the request, retrying what is retryable. Any HTTP answer that is not retried (or
  // the last one, when retries run out on a 5xx) is returned as a response, whatever its
  // status; only a transport failure on every attempt gives an error: Unavailable, naming
  // the endpoint and curl's reason.
  absl::StatusOr<HttpResponse> Do(const HttpRequest& request);

  // Requests re-sent so far, and TCP connections opened so far (for tests and metrics: with
  // reuse, far fewer connections than requests).
  uint64_t retries() const;
  uint64_t connections_opened() const;
  const std::string& endpoint() const { return endpoint_; }

 private:
  struct Handle;
  std::unique_ptr<Handle> Acquire();
  void Release(std::unique_ptr<Handle> handle);
  absl::StatusOr<HttpResponse> Once(Handle* handle, const HttpRequest& request);
  int64_t BackoffMs(int attempt);

  const std::string endpoint_;
  const std::string sigv4_;
  const std::string userpwd_;
  const HttpTimeouts timeouts_;
  const RetryPolicy retry_;
  const size_t max_idle_handles_;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
  std::mt19937_64 rng_;
  uint64_t retries_ = 0;
  uint64_t connections_opened_ = 0;
};

}  // namespace strata::blob::s3_internal
