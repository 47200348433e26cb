// A small blocking HTTP/1.1 client over POSIX sockets, for the CLI, the benchmark and
// tests. No Beast here on purpose: it compiles fast and adds nothing to the binaries that
// only need a client.
//
// One Client holds one keep-alive connection to one host:port and sends one request at a
// time (no pipelining). If a reused connection turns out to have been closed by the server
// (its idle timeout, a restart) before any byte of the response arrived, the request is
// sent once more on a fresh connection. Responses may use Content-Length, chunked
// transfer coding or close-delimited bodies.
//
// Thread safety: a Client is not thread-safe; use one per thread. Free functions are.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strata::http {

struct ClientResponse {
  int status = 0;
  std::string body;
  // Header fields in arrival order; names lower-case.
  std::vector<std::pair<std::string, std::string>> headers;

  // The first header named `name` (case-insensitive), or "" if absent.
  std::string_view Header(std::string_view name) const;
};

class Client {
 public:
  // Does not connect yet; the first Request() does. `timeout_ms` bounds each wait: the
  // connect, and every stretch of time without progress while sending or receiving (so a
  // large transfer that keeps moving never times out). Default 30000.
  Client(std::string host, uint16_t port, int timeout_ms = 30'000);
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&& other) noexcept;
  Client& operator=(Client&& other) noexcept;

  // Sends one request and reads the whole response. `target` is the path plus optional
  // query ("/v1/members/7/viewing?limit=50"). A Content-Type is sent only with a non-empty
  // body or a method other than GET/HEAD/DELETE. Any HTTP status is a successful result;
  // errors are transport failures: Unavailable (cannot connect, connection lost),
  // DeadlineExceeded (timeout), Internal (malformed response). After an error the
  // connection is closed and the next request reconnects.
  absl::StatusOr<ClientResponse> Request(std::string_view method, std::string_view target,
                                         std::string_view body = "",
                                         std::string_view content_type = "application/json");
  // As above, with extra request header fields (name, value), e.g. {"Range", "bytes=0-9"}.
  absl::StatusOr<ClientResponse> Request(
      std::string_view method, std::string_view target, std::string_view body,
      std::string_view content_type,
      const std::vector<std::pair<std::string, std::string>>& extra_headers);

  // A header field sent with every later request (e.g. {"Authorization", "Bearer ..."}), after
  // the per-request ones.
  void AddDefaultHeader(std::string name, std::string value) {
    default_headers_.emplace_back(std::move(name), std::move(value));
  }

  // Closes the connection if open. The next Request() reconnects.
  void Close();

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  // Number of TCP connections opened so far (to observe keep-alive reuse).
  uint64_t connects() const { return connects_; }

 private:
  absl::Status Connect();
  absl::Status SendAll(std::string_view head, std::string_view body);
  // Reads one response into `out`; `*got_bytes` tells whether any response byte arrived.
  absl::Status ReadResponse(bool head_request, ClientResponse* out, bool* got_bytes,
                            bool* keep_alive);
  // Ensures at least `n` unread bytes in the buffer. False with EOF leaves fewer.
  absl::Status Fill(size_t n, bool* eof);
  absl::Status ReadMore(bool* eof);
  absl::Status ReadLine(std::string_view* line);
  bool PeerClosed();

  std::string host_;
  uint16_t port_;
  int timeout_ms_;
  int fd_ = -1;
  uint64_t connects_ = 0;
  std::string buf_;  // receive buffer; unread bytes are buf_[pos_, end_)
  size_t pos_ = 0;
  size_t end_ = 0;
  uint64_t received_ = 0;  // bytes received over the client's lifetime
  std::string head_;       // request head, reused between requests
  std::vector<std::pair<std::string, std::string>> default_headers_;
};

struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

// Parses "http://host:port", "host:port", "http://[::1]:8080" or "http://host" (port 80);
// a trailing "/" or path is ignored. InvalidArgument (naming the url) otherwise, including
// for "https://" which this client does not speak.
absl::StatusOr<Endpoint> ParseUrl(std::string_view url);

// Percent-encodes everything but unreserved characters (A-Z a-z 0-9 - . _ ~), for building
// query strings and path segments.
std::string UrlEncode(std::string_view s);

}  // namespace strata::http
