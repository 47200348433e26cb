// An embeddable HTTP/1.1 server: a thin, fast transport that hands every complete request
// to one `Handler` and writes back the `Response` it returns. Routing, JSON and error
// mapping live in the caller (src/strata/server); this file knows nothing of them.
//
// Behaviour:
//   - HTTP/1.1 keep-alive (HTTP/1.0 when the client asks for it), TCP_NODELAY.
//   - The handler runs on one of the server's io threads, once per request, with the whole
//     body already read. Handlers may block briefly (storage I/O); a handler that blocks for
//     long holds one of `threads` io threads and delays other connections. Long work is
//     deferred instead (Response::defer): the io thread goes back to other connections and
//     the reply is sent when the work is done.
//   - A body larger than `max_body_bytes` is refused with 413 and a JSON error body before
//     the body is read (the Content-Length is checked as soon as the header arrives).
//     Malformed HTTP gets 400 and the connection is closed.
//   - Idle keep-alive connections are closed after `idle_timeout_ms`.
//   - Bounded per connection: the request header (`max_header_bytes`, 400 above), the chunk
//     extensions of one body (`max_chunk_extension_bytes`, 400 above; the read buffer is
//     capped, so one endless chunk line cannot grow memory), and the pace of a streamed
//     body (`min_upload_bytes_per_second`, 408 below it).
//   - Optional TLS (ServerOptions::tls_cert_file) on a port of its own, beside plain HTTP or
//     instead of it; every feature above works the same over both. ReloadTls() swaps the
//     certificate for new handshakes without touching open connections.
//   - A handler that throws gets the client a 500 JSON error; the server keeps running.
//   - Opt-in streaming (ServerOptions::streaming_routes): for a request whose method and path
//     prefix match a StreamingRoute, the route's `open` sees the header first and may return
//     a BodySink that is fed the body in pieces as it arrives (never the whole body in
//     memory), with the route's own size limit. Every other request takes the whole-body
//     path above, unchanged. A Response may also stream its body out (Response::stream).
//
// Thread safety: Start/Stop/port/tls_port may be called from any thread, but not
// concurrently with each other. ReloadTls may be called from any thread at any time after
// Start. The handler is called concurrently from up to `threads` threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace strata {
class MetricsRegistry;
}  // namespace strata

namespace strata::http {

struct Request {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // the request target as sent: path plus optional "?query"
  std::string path;    // target up to (not including) '?', not url-decoded
  std::string query;   // raw query string after '?', not url-decoded; empty if none
  std::string body;
  // Header fields in arrival order; names are lower-case, values as sent.
  std::vector<std::pair<std::string, std::string>> headers;

  // The value of the first header field named `name` (case-insensitive), or "" if absent.
  std::string_view Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";  // omitted from the reply when empty
  std::string body;
  // Extra header fields. Content-Length and Connection are set by the server; a
  // Content-Length given here is only honoured for HEAD requests (size of the GET body).
  std::vector<std::pair<std::string, std::string>> headers;
  // Optional streamed body, for large replies (e.g. an object read by ranges): when set,
  // `body` is ignored and the reply carries exactly `stream_length` bytes (as its
  // Content-Length), produced by calling `stream` repeatedly on the io thread; each call
  // appends the next piece (a few hundred KiB is sensible) to *out. A non-OK status, an
  // empty piece or more than stream_length bytes aborts the connection (the client sees a
  // short body). For HEAD the function is not called.
  std::function<absl::Status(std::string* out)> stream;
  uint64_t stream_length = 0;
  // Optional deferred reply, for work that should not hold an io thread (a large batch, a
  // long read): when set, every other field is ignored; the server calls `defer` once, on
  // the io thread, with a Reply, and serves other connections meanwhile. The request is
  // answered with the Response later passed to the Reply (from any thread; calls after the
  // first are ignored, and a Reply dropped uncalled answers 500). It cannot defer again.
  // Server::Stop waits until every Reply handed out was called or dropped.
  std::function<void(std::function<void(Response)> reply)> defer;
};

using Reply = std::function<void(Response)>;
using Handler = std::function<Response(const Request&)>;

// Receives one streamed request body, in order, on the connection's io thread (Append may
// block briefly, e.g. on file writes). Destroying a sink before Finish means the request
// was abandoned (client gone, size limit, timeout): the sink must then undo its work.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // A piece of the body. Return nullopt to go on, or a Response to stop: it is sent and the
  // connection closed (the rest of the body is not read).
  virtual std::optional<Response> Append(std::string_view piece) = 0;
  // The whole body has arrived; returns the reply.
  virtual Response Finish() = 0;
};

struct StreamStart {
  std::unique_ptr<BodySink> sink;    // stream the body into this, or
  std::optional<Response> response;  // answer at once without reading the body (e.g. 404);
                                     // neither: handle on the whole-body path
};

struct StreamingRoute {
  std::string method;       // exact, e.g. "PUT"
  std::string path_prefix;  // e.g. "/v1/buckets/"
  // Largest body of a streamed request, bytes; larger ones get 413.
  size_t max_body_bytes = 0;
  // Sees the request without its body (Request::body is empty). Called on the io thread.
  std::function<StreamStart(const Request&)> open;
};

// The largest ServerOptions::max_header_bytes, 64 KiB: Beast keeps a header field's length in
// 16 bits and throws for a value of 65534 bytes or more; within 64 KiB of header, less the
// request line and the field's own name and delimiters, no value gets there.
inline constexpr size_t kMaxHeaderBytes = 65536;

struct ServerOptions {
  // IP address to listen on (IPv4 or IPv6 literal). Default "127.0.0.1" (loopback only).
  std::string address = "127.0.0.1";
  // TCP port; 0 lets the kernel pick a free port (read it back with Server::port()).
  // Default 8080. The port is bound without SO_REUSEPORT: a second server on a used port
  // fails to start instead of silently sharing it.
  uint16_t port = 8080;
  // Number of io threads that run the event loop and the handler. Default 2. Values < 1
  // are treated as 1.
  int threads = 2;
  // Time slice the io threads ask the kernel for, microseconds (Linux 6.12+; see
  // ThreadPool::SetCurrentThreadSlice): shorter than the default, an io thread that wakes
  // for a request preempts background work at once. 0 = the kernel's default. Default 0.
  int thread_slice_us = 0;
  // Largest accepted request body, in bytes. Default 16 MiB. Larger bodies get 413.
  size_t max_body_bytes = 16 << 20;
  // Largest accepted request line plus header fields, in bytes. Default 16 KiB; larger
  // headers get 400. At most kMaxHeaderBytes (Start refuses more). A chunked body's trailer
  // fields are bounded by the read buffer (max(max_header_bytes, max_chunk_extension_bytes) +
  // 64 KiB); one of 64 KiB or more costs its connection (closed without an answer).
  size_t max_header_bytes = 16 << 10;
  // Most bytes of chunk extensions (the `;name=value` after a chunk's size, which the
  // server ignores) in one request body, all chunks together. Default 4 KiB; more get 400.
  // One chunk-size line longer than this is refused once the read buffer's cap (see
  // max_header_bytes) is reached, before it is complete: memory stays bounded.
  size_t max_chunk_extension_bytes = 4 << 10;
  // Slowest accepted pace of a streamed request body (StreamingRoute), bytes per second:
  // the bytes that arrive in each window of upload_rate_window_ms, counted from when the
  // server starts reading the body, must reach this rate, or the upload is abandoned and
  // answered 408. The first window is the grace period. Default 1024 (1 KiB/s); 0 = no
  // minimum (each read then only has idle_timeout_ms). A whole-body request instead has
  // idle_timeout_ms for its header and body together.
  uint64_t min_upload_bytes_per_second = 1024;
  // The window of min_upload_bytes_per_second, milliseconds (> 0). Default 20000.
  int64_t upload_rate_window_ms = 20'000;
  // Milliseconds a connection may stay idle between requests (or take to deliver one
  // request) before the server closes it. Default 60000.
  int64_t idle_timeout_ms = 60'000;
  // Most connections open at once; one more is answered 503 and closed at once, so a
  // client holding many idle connections cannot exhaust the server's file descriptors and
  // memory. Default 1024; 0 = no limit.
  size_t max_connections = 1024;
  // Milliseconds allowed for writing one response to a slow reader. Default 30000.
  int64_t write_timeout_ms = 30'000;
  // Milliseconds Stop() waits for in-flight requests to finish before it closes every
  // connection regardless. Default 10000.
  int64_t stop_grace_ms = 10'000;
  // Requests whose body is streamed to a BodySink instead of read whole. Default none.
  std::vector<StreamingRoute> streaming_routes;

  // Plain HTTP on `address`:`port`. Default true; false needs TLS (tls_cert_file).
  bool plain_http = true;
  // TLS: PEM files of the certificate chain (leaf first) and its private key (unencrypted).
  // Empty (default) = no TLS listener; both or neither. TLS 1.2 and 1.3 only, forward-secret
  // AEAD cipher suites, no renegotiation, no compression. The files are read at Start and
  // again by ReloadTls.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Address and port of the TLS listener. An empty address means `address`. Port 0 lets the
  // kernel pick (read it back with tls_port()). Default 8443. The TLS handshake counts as
  // the first request's header: it must finish within idle_timeout_ms.
  std::string tls_address;
  uint16_t tls_port = 8443;

  // Where the transport counts what it refuses and its TLS events (not owned; must outlive
  // the server). nullptr (default) = not counted. Series: strata_http_refused_total{reason}
  // (header_too_large, chunk_extensions_too_large, min_upload_rate, connection_limit),
  // strata_tls_handshake_failures_total, strata_tls_reloads_total{result} (ok, error) and
  // the gauge strata_tls_certificate_expiry_seconds (notAfter of the certificate in use).
  MetricsRegistry* metrics = nullptr;
};

class Server {
 public:
  Server(ServerOptions options, Handler handler);
  // Calls Stop().
  ~Server();

  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on options.address:options.port (unless plain_http is false) and, with
  // TLS, on tls_address:tls_port, and starts the io threads. Returns InvalidArgument for a
  // bad address, max_header_bytes over kMaxHeaderBytes or a bad TLS setting (naming it: a
  // missing, unreadable or mismatched certificate or key is `tls_cert: ...` / `tls_key:
  // ...`), Unavailable if a port cannot be bound (e.g. it is in use), FailedPrecondition if
  // called twice. A server is started at most once.
  absl::Status Start();

  // The bound port (useful with options.port == 0); 0 before a successful Start() or
  // without plain HTTP.
  uint16_t port() const;
  // The bound TLS port; 0 before a successful Start() or without TLS.
  uint16_t tls_port() const;

  // Reads tls_cert_file and tls_key_file again and uses them for every later handshake;
  // connections already open keep the certificate they were opened with. On error (the
  // message names the file) the certificate in use stays. Counted in
  // strata_tls_reloads_total{result}. FailedPrecondition without TLS or before Start().
  absl::Status ReloadTls();

  // Graceful stop: stops accepting, closes idle connections, lets requests already being
  // handled finish and get their response (with `Connection: close`), then joins the io
  // threads. Connections still busy after stop_grace_ms are closed. Idempotent. Must not
  // be called from a handler (it joins the thread the handler runs on).
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The url-decoded value of the first `name` parameter in a raw query string such as
// "kind=play&limit=50", or nullopt if absent. A parameter without '=' has the value "".
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);

// Decodes %XX escapes and '+' (as a space, the form-encoding rule used in query strings).
// Malformed escapes are kept verbatim.
std::string UrlDecode(std::string_view s);

// A JSON error body in the API's format: {"error":{"code":"...","message":"..."}}.
std::string JsonErrorBody(std::string_view code, std::string_view message);

}  // namespace strata::http
