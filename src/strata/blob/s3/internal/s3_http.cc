#include "strata/blob/s3/internal/s3_http.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <pugixml.hpp>
#include <thread>

namespace strata::blob::s3_internal {

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string UriDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> params) {
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    out += UriEncode(name, false);
    out.push_back('=');
    out += UriEncode(value, false);
  }
  return out;
}

std::string HttpResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

namespace {

std::string ErrorField(const std::string& body, const char* field) {
  if (body.empty()) return "";
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size())) return "";
  return doc.child("Error").child(field).text().as_string();
}

}  // namespace

std::string HttpResponse::ErrorCode() const { return ErrorField(body, "Code"); }
std::string HttpResponse::ErrorMessage() const { return ErrorField(body, "Message"); }

struct S3Http::Handle {
  CURL* easy = nullptr;
  ~Handle() {
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

namespace {

std::once_flag curl_init_once;

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t WriteHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (after a 100 Continue)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  (*headers)[name] = std::string(value);
  return size * n;
}

struct UploadCursor {
  std::string_view rest;
};

// Called by curl on a connection (new or reused) just before it sends a request: asks the
// kernel to acknowledge the answer's first segments at once. An S3 server that writes an
// answer's headers and body separately with Nagle's algorithm on -- radosgw's default (its
// beast frontend's tcp_nodelay is off) -- holds the body back until the headers are
// acknowledged, and Linux delays that ACK by up to 40 ms on a connection in interactive
// (ping-pong) mode, as a reused one is: every small GET answer took ~40 ms more.
int AckAnswersAtOnce(void* easy, char*, char*, int, int) {
  curl_socket_t sock = CURL_SOCKET_BAD;
  if (curl_easy_getinfo(static_cast<CURL*>(easy), CURLINFO_ACTIVESOCKET, &sock) == CURLE_OK &&
      sock != CURL_SOCKET_BAD) {
    int one = 1;
    (void)::setsockopt(sock, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
  }
  return CURL_PREREQFUNC_OK;
}

size_t ReadBody(char* buffer, size_t size, size_t n, void* user) {
  auto* cursor = static_cast<UploadCursor*>(user);
  size_t take = std::min(size * n, cursor->rest.size());
  std::memcpy(buffer, cursor->rest.data(), take);
  cursor->rest.remove_prefix(take);
  return take;
}

bool RetryableCurl(CURLcode code) {
  switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
      return false;
    default:
      return true;
  }
}

bool RetryableResponse(const HttpResponse& r) {
  if (r.status == 500 || r.status == 502 || r.status == 503 || r.status == 504) return true;
  if (r.status == 400 || r.status == 503) {
    std::string code = r.ErrorCode();
    return code == "RequestTimeout" || code == "SlowDown";
  }
  return false;
}

}  // namespace

S3Http::S3Http(std::string endpoint, std::string region, std::string access_key,
               std::string secret_key, HttpTimeouts timeouts, RetryPolicy retry,
               size_t max_idle_handles)
    : endpoint_(endpoint.substr(0, endpoint.find_last_not_of('/') + 1)),
      sigv4_("aws:amz:" + region + ":s3"),
      userpwd_(access_key + ":" + secret_key),
      timeouts_(timeouts),
      retry_(retry),
      max_idle_handles_(max_idle_handles),
      rng_(std::random_device{}()) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

S3Http::~S3Http() = default;

uint64_t S3Http::retries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return retries_;
}

uint64_t S3Http::connections_opened() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connections_opened_;
}

std::unique_ptr<S3Http::Handle> S3Http::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Handle> h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->easy = curl_easy_init();
  return h;
}

void S3Http::Release(std::unique_ptr<Handle> handle) {
  // curl_easy_reset clears the options but keeps the handle's open connections.
  curl_easy_reset(handle->easy);
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < max_idle_handles_) idle_.push_back(std::move(handle));
}

int64_t S3Http::BackoffMs(int attempt) {
  int64_t cap = retry_.initial_backoff_ms;
  for (int i = 1; i < attempt && cap < retry_.max_backoff_ms; ++i) cap *= 2;
  cap = std::min(cap, retry_.max_backoff_ms);
  std::lock_guard<std::mutex> lock(mu_);
  ++retries_;
  // Full jitter: uniform in [0, cap], so clients that failed together do not retry together.
  return static_cast<int64_t>(rng_() % static_cast<uint64_t>(cap + 1));
}

absl::StatusOr<HttpResponse> S3Http::Once(Handle* handle, const HttpRequest& request) {
  CURL* easy = handle->easy;
  if (easy == nullptr) return absl::InternalError("curl_easy_init failed");
  std::string url = endpoint_ + request.path;
  if (!request.query.empty()) url += "?" + request.query;

  HttpResponse response;
  UploadCursor cursor{request.body};
  curl_slist* headers = nullptr;
  // curl's SigV4 needs the payload hash header (radosgw rejects the signature without it);
  // the payload itself is protected by TCP/TLS and, for uploads, by the ETag check.
  headers = curl_slist_append(headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  // No "Expect:" header to switch 100-continue off: curl 7.88 signs the empty header it then
  // does not send, and the server rejects the signature.
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }

  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(easy, CURLOPT_USERPWD, userpwd_.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeouts_.connect_ms));
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, static_cast<long>(timeouts_.low_speed_seconds));
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, AckAnswersAtOnce);
  curl_easy_setopt(easy, CURLOPT_PREREQDATA, easy);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, WriteHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &response.headers);

  if (request.method == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT") {
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(easy, CURLOPT_READDATA, &cursor);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else if (request.method == "POST") {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  } else if (request.method != "GET") {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error);
  CURLcode code = curl_easy_perform(easy);
  curl_slist_free_all(headers);
  if (code != CURLE_OK) {
    std::string why = error[0] != '\0' ? error : curl_easy_strerror(code);
    absl::Status s = absl::UnavailableError("S3 endpoint " + endpoint_ + ": " + request.method +
                                            " failed: " + why);
    if (!RetryableCurl(code)) s = absl::InvalidArgumentError(s.message());
    return s;
  }
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
  long connects = 0;
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
  if (connects > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    connections_opened_ += static_cast<uint64_t>(connects);
  }
  return response;
}

absl::StatusOr<HttpResponse> S3Http::Do(const HttpRequest& request) {
  absl::StatusOr<HttpResponse> result;
  for (int attempt = 1;; ++attempt) {
    std::unique_ptr<Handle> handle = Acquire();
    result = Once(handle.get(), request);
    if (result.ok()) {
      Release(std::move(handle));
    }  // else: drop the handle and its possibly broken connection
    bool retry = result.ok() ? RetryableResponse(*result) : absl::IsUnavailable(result.status());
    if (!retry || attempt >= retry_.max_attempts) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(BackoffMs(attempt)));
  }
  if (!result.ok() && absl::IsUnavailable(result.status())) {
    return absl::UnavailableError(std::string(result.status().message()) + " (after " +
                                  std::to_string(retry_.max_attempts) + " attempts)");
  }
  return result;
}

}  // namespace strata::blob::s3_internal
