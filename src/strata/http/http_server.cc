// The HTTP server on Boost.Beast. This is the only translation unit that includes Beast
// and Asio's SSL (it takes ~45 s of CPU to compile); keep it that way.
//
// Structure: one io_context per io thread (`threads` of them), each run by its own thread;
// accepted connections are dealt to them in turn and stay on theirs. A request is then read,
// handled and answered on one thread with no hand-off: with one io_context shared by every
// thread, Asio passed ready handlers between the threads through a condition variable, and
// the futex waits, wake-ups and context switches that cost were a fifth of the io threads'
// CPU in a read-heavy mix. Long work does not run on an io thread (the server's handlers
// defer it to pools), so a connection rarely waits behind another one on its thread. One
// strand per connection still orders its handlers with replies posted from other threads;
// one acceptor per listener (plain HTTP, TLS), each on its own strand of the first context.
// Stop() only posts work onto those strands and then waits for the connections to drain.
//
// Per connection: (TLS: the handshake,) read the header (async_read_header, so an oversize
// Content-Length is refused before any body byte is read, and `Expect: 100-continue` can be
// answered), read the body, call the handler, write the response, repeat while keep-alive.
// Connection holds that logic once for both, over a ByteStream; only the handshake and the
// end of a connection differ.

// clang-format off
// g++ 12 in C++20 mode needs <utility> before the Asio headers.
#include <utility>
// clang-format on

#include "strata/http/http_server.h"
#include "strata/http/internal/ascii.h"

#include "absl/status/statusor.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/optional.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include "strata/base/thread_pool.h"
#include <unordered_map>

#include "strata/base/log.h"
#include "strata/base/metrics.h"

namespace strata::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using beast::error_code;

// How long a connection that is being closed after an error response keeps reading (and
// discarding) what the client still sends, so the client sees the response instead of a
// reset. Bounded in time only.
constexpr auto kLingerTime = std::chrono::seconds(5);
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// Bytes asked of the socket per read (see Connection's constructor).
constexpr size_t kReadBufferBytes = 64 << 10;

using internal::LowerAscii;

bool IsHttpParseError(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

class Connection;

// Counters of what the transport refuses, and of TLS events; null when
// ServerOptions::metrics is.
struct RefusalCounters {
  Counter* header_too_large = nullptr;
  Counter* chunk_extensions_too_large = nullptr;
  Counter* min_upload_rate = nullptr;
  Counter* connection_limit = nullptr;
  Counter* tls_handshake_failures = nullptr;
  Counter* tls_reloads_ok = nullptr;
  Counter* tls_reloads_failed = nullptr;

  void Init(MetricsRegistry* metrics) {
    if (metrics == nullptr) return;
    auto get = [metrics](const char* reason) {
      return metrics->GetCounter("strata_http_refused_total",
                                 "Requests and connections the HTTP transport refused, by reason",
                                 std::string("reason=\"") + reason + "\"");
    };
    header_too_large = get("header_too_large");
    chunk_extensions_too_large = get("chunk_extensions_too_large");
    min_upload_rate = get("min_upload_rate");
    connection_limit = get("connection_limit");
    tls_handshake_failures = metrics->GetCounter(
        "strata_tls_handshake_failures_total",
        "TLS connections closed before their handshake finished (a client speaking plain "
        "HTTP or an old TLS version, a certificate it refused, a timeout)");
    const char* reload_help = "Certificate reloads (SIGHUP), by result";
    tls_reloads_ok = metrics->GetCounter("strata_tls_reloads_total", reload_help, "result=\"ok\"");
    tls_reloads_failed =
        metrics->GetCounter("strata_tls_reloads_total", reload_help, "result=\"error\"");
  }
};

void Count(Counter* counter) {
  if (counter != nullptr) counter->Inc();
}

// State shared by the listener and the connections. Owned by Server::Impl and destroyed
// only after every connection is gone.
struct Shared {
  ServerOptions options;
  Handler handler;
  // Body limit while reading a header: max_body_bytes, or the largest streaming route's
  // limit if larger (the route is only known once the header is in).
  size_t header_body_limit = 0;
  // Cap of a connection's read buffer: the longest unparsed element (a header, a chunk-size
  // line with its extensions, a trailer) plus one read. Beast grows the buffer until the
  // element is complete, so without it one endless chunk extension grows memory unbounded.
  size_t read_buffer_limit = 0;
  RefusalCounters refused;
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable drained;  // signalled when `live` or `deferred` becomes empty
  std::unordered_map<Connection*, std::weak_ptr<Connection>> live;
  size_t deferred = 0;  // Replies handed out and not yet called or dropped
};

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
// A TLS context (certificate, key, settings). Shared: each TLS connection holds the one it
// was accepted with, so a reload can replace the server's without touching open ones.
using TlsContext = std::shared_ptr<net::ssl::context>;

// The notAfter of the context's certificate, seconds since the epoch; 0 if unknown.
int64_t CertificateExpiry(net::ssl::context& context) {
  X509* cert = SSL_CTX_get0_certificate(context.native_handle());
  struct tm tm {};
  if (cert == nullptr || ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

// Builds a server context from PEM files: TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE key
// exchange (forward secrecy) with AEAD ciphers (TLS 1.3's suites are all AEAD: OpenSSL's
// defaults stay); no renegotiation (a client could make the server redo the expensive part
// of a handshake at will), no compression (CRIME). The errors name the file at fault.
absl::StatusOr<TlsContext> LoadTlsContext(const std::string& cert_file,
                                          const std::string& key_file) {
  for (const auto& [name, file] : {std::pair{"tls_cert", &cert_file}, {"tls_key", &key_file}}) {
    if (::access(file->c_str(), R_OK) != 0) {
      return absl::InvalidArgumentError(std::string(name) + ": cannot read '" + *file +
                                        "': " + std::strerror(errno));
    }
  }
  auto context = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  // OpenSSL would prompt on the terminal for the passphrase of an encrypted key, blocking a
  // reload; without one such a key fails to load, with an error naming the file.
  SSL_CTX_set_default_passwd_cb(native, [](char*, int, int, void*) { return 0; });
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native,
                              "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                              "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                              "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) {
    return absl::InternalError("tls: OpenSSL refused the protocol or cipher settings");
  }
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // An idle keep-alive connection hands OpenSSL's record buffers back (tens of KiB each):
  // most open connections are idle.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  error_code ec;
  context->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError("tls_cert: no PEM certificate chain in '" + cert_file +
                                      "': " + ec.message());
  }
  context->use_private_key_file(key_file, net::ssl::context::pem, ec);
  if (ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    return absl::InvalidArgumentError("tls_key: '" + key_file +
                                      "' is not the key of the certificate in '" + cert_file + "'");
  }
  if (ec) {
    return absl::InvalidArgumentError("tls_key: no usable PEM private key in '" + key_file +
                                      "' (unencrypted, matching the certificate): " +
                                      ec.message());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return absl::InvalidArgumentError("tls_key: '" + key_file +
                                      "' is not the key of the certificate in '" + cert_file + "'");
  }
  return context;
}

// The byte stream under a connection: plain TCP, or TLS over TCP. Beast's HTTP algorithms
// run on this one type and Asio's SSL operations on one handler type, so each is compiled
// once: with the connection a template over both stream types, this file took 109 s of CPU
// and 3.3 GB to compile, against 43 s and 1.3 GB this way (46 s and 1.3 GB before TLS).
// The price is one virtual call and one allocation per read or write, next to a system call.
//
// It meets Beast's AsyncReadStream and AsyncWriteStream. Every operation completes on the
// stream's executor (the connection's strand); the TCP layer's timer (Tcp().expires_after)
// bounds them as it bounds a plain tcp_stream's.
class ByteStream {
 public:
  using executor_type = beast::tcp_stream::executor_type;

  explicit ByteStream(tcp::socket&& socket) : plain_(std::in_place, std::move(socket)) {}
  // `context` stays alive as long as the stream (a reload replaces the server's, not this).
  ByteStream(tcp::socket&& socket, TlsContext context)
      : context_(std::move(context)),
        tls_(std::make_unique<TlsStream>(std::move(socket), *context_)) {}

  bool tls() const { return tls_ != nullptr; }
  beast::tcp_stream& Tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
  executor_type get_executor() { return Tcp().get_executor(); }

  // Reads into the first non-empty buffer of `buffers` (Beast passes one: its flat_buffer's);
  // read_some may always read less than offered.
  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    net::mutable_buffer into;
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
         ++it) {
      into = *it;
      if (into.size() > 0) break;
    }
    ReadSome(into, Completion(std::forward<Handler>(handler)));
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    std::vector<net::const_buffer> from;
    for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
         ++it) {
      from.emplace_back(*it);
    }
    WriteSome(std::move(from), Completion(std::forward<Handler>(handler)));
  }

  // TLS only: the server side of the handshake.
  void AsyncHandshake(std::function<void(error_code)> done) {
    tls_->async_handshake(net::ssl::stream_base::server, std::move(done));
  }

  // TLS only: sends a close_notify alert and completes without waiting for the client's
  // (the connection closes anyway, and OpenSSL fails a shutdown that meets application data
  // the client is still sending).
  void AsyncSendCloseNotify(std::function<void(error_code)> done) {
    // Marking the client's close_notify as received makes SSL_shutdown send ours and
    // finish, instead of reading on for the client's.
    SSL* ssl = tls_->native_handle();
    SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
    tls_->async_shutdown(std::move(done));
  }

 private:
  // A move-only completion handler of one read or write, whatever its type.
  class Completion {
   public:
    template <class Handler>
    explicit Completion(Handler&& handler)
        : impl_(std::make_unique<Impl<std::decay_t<Handler>>>(std::forward<Handler>(handler))) {}
    void operator()(error_code ec, size_t bytes) {
      std::unique_ptr<Base> impl = std::move(impl_);  // alive while it runs, invoked once
      impl->Call(ec, bytes);
    }

   private:
    struct Base {
      virtual ~Base() = default;
      virtual void Call(error_code ec, size_t bytes) = 0;
    };
    template <class Handler>
    struct Impl final : Base {
      explicit Impl(Handler&& h) : handler(std::move(h)) {}
      explicit Impl(const Handler& h) : handler(h) {}
      void Call(error_code ec, size_t bytes) override { handler(ec, bytes); }
      Handler handler;
    };
    std::unique_ptr<Base> impl_;
  };

  void ReadSome(net::mutable_buffer into, Completion done) {
    if (tls_) {
      tls_->async_read_some(into, std::move(done));
    } else {
      plain_->async_read_some(into, std::move(done));
    }
  }

  void WriteSome(std::vector<net::const_buffer> from, Completion done) {
    // The buffers are copied by the operations below (a buffer sequence is held by value).
    if (tls_) {
      tls_->async_write_some(from, std::move(done));
    } else {
      plain_->async_write_some(from, std::move(done));
    }
  }

  std::optional<beast::tcp_stream> plain_;  // plain HTTP, or
  TlsContext context_;                      // TLS: its context (before tls_, which uses it)
  std::unique_ptr<TlsStream> tls_;
};

// One client connection: the same request/response logic over plain TCP and TLS.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket&& socket, Shared* shared, TlsContext tls_context)
      : stream_(tls_context ? ByteStream(std::move(socket), std::move(tls_context))
                            : ByteStream(std::move(socket))),
        shared_(shared),
        rate_timer_(stream_.get_executor()) {
    // Beast reads at most the buffer's free capacity per read; the parser moves body bytes
    // out as they come, so an unreserved buffer stays ~1 KiB and a 150 KB body took ~150
    // reads, each a wakeup of an io thread. 64 KiB reads take three.
    buffer_.max_size(shared_->read_buffer_limit);
    buffer_.reserve(kReadBufferBytes);
    // Beast keeps a reference to this callable (set on each parser in turn).
    on_chunk_header_ = [this](std::uint64_t, beast::string_view extensions, error_code& ec) {
      chunk_extension_bytes_ += extensions.size();
      if (chunk_extension_bytes_ > shared_->options.max_chunk_extension_bytes) {
        chunk_extensions_over_ = true;
        ec = bhttp::error::bad_chunk_extension;
      }
    };
  }

  ~Connection() {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->live.erase(this);
    if (shared_->live.empty()) shared_->drained.notify_all();
  }

  void Start() {
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->live.emplace(this, weak_from_this());
    }
    if (stream_.tls()) {
      net::dispatch(stream_.get_executor(),
                    beast::bind_front_handler(&Connection::Handshake, self()));
    } else {
      net::dispatch(stream_.get_executor(),
                    beast::bind_front_handler(&Connection::ReadHeader, self()));
    }
  }

  // The connection's strand; safe to read from any thread (it never changes).
  net::any_io_executor executor() { return stream_.get_executor(); }

  // Posted by Server::Stop onto this connection's strand: closes the connection if it is
  // waiting for a request that has not started to arrive (or in its TLS handshake). Busy
  // connections close after their current response (they see `stopping`).
  void CloseIfIdle() {
    if (state_ == State::kHandshake) return Close();
    if (state_ != State::kReading) return;
    bool request_started =
        buffer_.size() > 0 || (parser_ && parser_->got_some()) || stream_parser_.has_value();
    if (!request_started) Close();
  }

 private:
  enum class State { kHandshake, kReading, kHandling, kWriting, kClosing };

  std::shared_ptr<Connection> self() { return shared_from_this(); }
  // The TCP layer under the stream: its timer (expires_after) and socket.
  beast::tcp_stream& Tcp() { return stream_.Tcp(); }

  // TLS only: the handshake, within the idle timeout (it is the first request's start).
  void Handshake() {
    state_ = State::kHandshake;
    Tcp().expires_after(std::chrono::milliseconds(shared_->options.idle_timeout_ms));
    stream_.AsyncHandshake([self = self()](error_code ec) {
      if (ec) {
        Count(self->shared_->refused.tls_handshake_failures);
        STRATA_LOG_DEBUG("tls handshake failed", "error", ec.message());
        return self->Close();
      }
      self->ReadHeader();
    });
  }

  // Ends this side of the conversation after the last response, then runs `then` on the
  // strand (the connection stays alive until it has run). Over TLS that is a close_notify
  // alert first: the client reads a clean end instead of a truncation.
  void ShutdownSend(std::function<void()> then) {
    if (stream_.tls()) {
      Tcp().expires_after(std::chrono::milliseconds(shared_->options.write_timeout_ms));
      stream_.AsyncSendCloseNotify([self = self(), then = std::move(then)](error_code) {
        error_code ignored;
        self->Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
        then();
      });
    } else {
      error_code ignored;
      Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
      then();
    }
  }

  void ReadHeader() {
    if (shared_->stopping.load(std::memory_order_acquire)) {
      Close();
      return;
    }
    state_ = State::kReading;
    parser_.emplace();
    parser_->on_chunk_header(on_chunk_header_);
    chunk_extension_bytes_ = 0;
    chunk_extensions_over_ = false;
    parser_->body_limit(static_cast<std::uint64_t>(shared_->header_body_limit));
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(shared_->options.max_header_bytes, UINT32_MAX)));
    Tcp().expires_after(std::chrono::milliseconds(shared_->options.idle_timeout_ms));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Connection::OnHeader, self()));
  }

  void OnHeader(error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    if (RefuseTransferCoding()) return;
    if (!shared_->options.streaming_routes.empty() && MaybeStream()) return;
    if (parser_->is_done()) return Handle();
    auto expect = parser_->get()[bhttp::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = self()](error_code ec, size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  // Beast decodes `chunked` only. A request whose Transfer-Encoding does not end in chunked
  // it frames as having no body, so its body's bytes would be read as the next request on
  // the connection: the request-smuggling shape when a proxy in front frames it otherwise
  // (RFC 9112 6.3: answer 400 and close). Other codings before chunked would reach the
  // handler still encoded. Returns true when the request was refused (400, or 501 for a
  // coding this server does not implement) and the connection is closing.
  bool RefuseTransferCoding() {
    const auto& header = parser_->get();
    const size_t fields = header.count(bhttp::field::transfer_encoding);
    if (fields == 0) return false;
    const auto field = header[bhttp::field::transfer_encoding];
    std::string_view value(field.data(), field.size());
    const size_t first = value.find_first_not_of(" \t");
    value = first == std::string_view::npos
                ? std::string_view()
                : value.substr(first, value.find_last_not_of(" \t") - first + 1);
    if (fields == 1 && header.version() >= 11 && internal::EqualsIgnoreCase(value, "chunked")) {
      return false;
    }
    const std::string shown(value.substr(0, 64));
    if (header.version() < 11) {
      SendErrorAndClose(400, "bad_request",
                        "transfer-encoding: not allowed in an HTTP/1.0 request");
    } else if (fields == 1 && parser_->chunked()) {
      SendErrorAndClose(501, "not_implemented",
                        "transfer-encoding: only chunked is supported, got '" + shown + "'");
    } else {
      SendErrorAndClose(
          400, "bad_request",
          "transfer-encoding: a request's codings must be one chunked, got '" + shown + "'");
    }
    return true;
  }

  // The body limit that applies to the request being read: its streaming route's, or
  // max_body_bytes. Only for error messages.
  size_t BodyLimitOfRequest() const {
    if (parser_) {
      const auto& header = parser_->get();
      for (const StreamingRoute& r : shared_->options.streaming_routes) {
        if (header.method_string() == r.method &&
            header.target().substr(0, r.path_prefix.size()) == r.path_prefix) {
          return r.max_body_bytes;
        }
      }
    }
    return shared_->options.max_body_bytes;
  }

  // Streaming request bodies. Returns true if the request was taken over (streamed, or
  // answered at once); false to continue on the whole-body path.
  bool MaybeStream() {
    const auto& header = parser_->get();
    const StreamingRoute* route = nullptr;
    for (const StreamingRoute& r : shared_->options.streaming_routes) {
      if (header.method_string() == r.method &&
          header.target().substr(0, r.path_prefix.size()) == r.path_prefix) {
        route = &r;
        break;
      }
    }
    StreamStart start;
    if (route != nullptr) {
      Request req;
      req.method = std::string(header.method_string());
      req.target = std::string(header.target());
      size_t q = req.target.find('?');
      req.path = req.target.substr(0, q);
      if (q != std::string::npos) req.query = req.target.substr(q + 1);
      for (const auto& field : header) {
        std::string name(field.name_string());
        for (char& c : name) c = LowerAscii(c);
        req.headers.emplace_back(std::move(name), std::string(field.value()));
      }
      try {
        start = route->open(req);
      } catch (const std::exception& e) {
        STRATA_LOG_ERROR("http stream open threw", "target", req.target, "what", e.what());
        start.response =
            Response{500, "application/json", JsonErrorBody("internal", "handler failed")};
      }
    }
    if (start.response) {
      SendAndClose(std::move(*start.response));
      return true;
    }
    if (!start.sink) {
      // The whole-body path, with its own limit (the header was read with the larger one).
      const size_t limit = shared_->options.max_body_bytes;
      if (parser_->content_length() && *parser_->content_length() > limit) {
        SendErrorAndClose(413, "payload_too_large",
                          "request body exceeds " + std::to_string(limit) + " bytes");
        return true;
      }
      parser_->body_limit(static_cast<std::uint64_t>(limit));
      return false;
    }
    if (parser_->content_length() && *parser_->content_length() > route->max_body_bytes) {
      stream_limit_ = route->max_body_bytes;
      OnStreamError(bhttp::error::body_limit);
      return true;
    }
    sink_ = std::move(start.sink);
    stream_limit_ = route->max_body_bytes;
    const bool expect_continue = beast::iequals(header[bhttp::field::expect], "100-continue");
    stream_parser_.emplace(std::move(*parser_));
    parser_.reset();
    stream_parser_->body_limit(static_cast<std::uint64_t>(route->max_body_bytes));
    stream_parser_->on_chunk_header(on_chunk_header_);  // not carried over by the conversion
    if (chunk_.empty()) chunk_.resize(kReadBufferBytes);
    if (expect_continue) {
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = self()](error_code ec, size_t) {
                         if (ec) {
                           self->sink_.reset();
                           return self->Close();
                         }
                         self->StartRateWindow();
                         self->ReadStreamBody();
                       });
      return true;
    }
    StartRateWindow();
    ReadStreamBody();
    return true;
  }

  // The minimum upload rate of a streamed body, over back-to-back windows: each read still
  // has idle_timeout_ms (Beast's stream timer, which closes the socket), but that alone let
  // one byte every 25 s hold a connection for ever. At the end of each window a timer on the
  // connection's strand compares the window's bytes with the minimum; too few cancel the
  // pending read, and OnStreamBody answers 408.
  void StartRateWindow() {
    const ServerOptions& o = shared_->options;
    if (o.min_upload_bytes_per_second == 0 || o.upload_rate_window_ms <= 0) return;
    window_bytes_ = 0;
    const uint64_t window = ++rate_window_;
    rate_timer_.expires_after(std::chrono::milliseconds(o.upload_rate_window_ms));
    rate_timer_.async_wait([self = self(), window](error_code ec) {
      if (ec || window != self->rate_window_ || !self->sink_) return;  // stopped or stale
      const ServerOptions& o = self->shared_->options;
      const uint64_t needed =
          o.min_upload_bytes_per_second * static_cast<uint64_t>(o.upload_rate_window_ms) / 1000;
      if (self->window_bytes_ >= needed) return self->StartRateWindow();
      self->too_slow_ = true;
      error_code ignored;
      self->Tcp().socket().cancel(ignored);
    });
  }

  // Ends the current window: a timer that already fired sees the new window number.
  void StopRateWindow() {
    ++rate_window_;
    rate_timer_.cancel();
  }

  void RefuseSlowBody() {
    const ServerOptions& o = shared_->options;
    const uint64_t rate = window_bytes_ * 1000 / static_cast<uint64_t>(o.upload_rate_window_ms);
    StopRateWindow();
    sink_.reset();  // abandons the upload
    stream_parser_.reset();
    too_slow_ = false;
    Count(shared_->refused.min_upload_rate);
    SendErrorAndClose(408, "request_timeout",
                      "request body: " + std::to_string(rate) + " bytes/s over the last " +
                          std::to_string(o.upload_rate_window_ms) + " ms, below the minimum of " +
                          std::to_string(o.min_upload_bytes_per_second) + " bytes/s");
  }

  void ReadStreamBody() {
    if (stream_parser_->is_done()) return FinishStream();
    auto& body = stream_parser_->get().body();
    body.data = chunk_.data();
    body.size = chunk_.size();
    body.more = true;
    Tcp().expires_after(std::chrono::milliseconds(shared_->options.idle_timeout_ms));
    bhttp::async_read_some(
        stream_, buffer_, *stream_parser_,
        beast::bind_front_handler(&Connection::OnStreamBody, self()));
  }

  void OnStreamBody(error_code ec, size_t) {
    // Before the error check: the cancelled read ends with operation_aborted, or with the
    // bytes it had already got when the window closed.
    if (too_slow_) return RefuseSlowBody();
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return OnStreamError(ec);
    const size_t got = chunk_.size() - stream_parser_->get().body().size;
    window_bytes_ += got;
    if (got > 0) {
      std::optional<Response> stop;
      try {
        stop = sink_->Append(std::string_view(chunk_.data(), got));
      } catch (const std::exception& e) {
        STRATA_LOG_ERROR("http body sink threw", "what", e.what());
        stop = Response{500, "application/json", JsonErrorBody("internal", "handler failed")};
      }
      if (stop) {
        StopRateWindow();
        sink_.reset();
        stream_parser_.reset();
        return SendAndClose(std::move(*stop));
      }
    }
    ReadStreamBody();
  }

  void OnStreamError(const error_code& ec) {
    StopRateWindow();
    sink_.reset();  // abandons the upload
    stream_parser_.reset();
    if (ec == bhttp::error::body_limit) {
      return SendErrorAndClose(413, "payload_too_large",
                               "request body exceeds " + std::to_string(stream_limit_) + " bytes");
    }
    RefuseOrClose(ec, /*header_done=*/true);
  }

  void FinishStream() {
    StopRateWindow();
    state_ = State::kHandling;
    Response out;
    try {
      out = sink_->Finish();
    } catch (const std::exception& e) {
      STRATA_LOG_ERROR("http body sink threw", "what", e.what());
      out = Response{500, "application/json", JsonErrorBody("internal", "handler failed")};
    }
    sink_.reset();
    const auto& msg = stream_parser_->get();
    bool keep_alive = msg.keep_alive() && !shared_->stopping.load(std::memory_order_acquire);
    unsigned version = msg.version();
    stream_parser_.reset();
    Write(std::move(out), version, keep_alive, /*head=*/false);
  }

  // A streamed response body: the header, then the pieces of Response::stream.
  void WriteStreamed(Response out, unsigned version, bool keep_alive, bool head) {
    stream_res_.emplace();
    auto& res = *stream_res_;
    res.version(version);
    res.result(static_cast<unsigned>(out.status));
    if (!out.content_type.empty()) res.set(bhttp::field::content_type, out.content_type);
    res.set("X-Content-Type-Options", "nosniff");  // browsers use the declared type only
    for (auto& [name, value] : out.headers) {
      if (beast::iequals(name, "content-length") || beast::iequals(name, "connection")) continue;
      res.insert(name, value);
    }
    res.keep_alive(keep_alive);
    res.set(bhttp::field::content_length, std::to_string(out.stream_length));
    out_remaining_ = head ? 0 : out.stream_length;
    out_stream_ = std::move(out.stream);
    stream_sr_.emplace(res);
    Tcp().expires_after(std::chrono::milliseconds(shared_->options.write_timeout_ms));
    bhttp::async_write_header(stream_, *stream_sr_,
                              [self = self(), keep_alive](error_code ec, size_t) {
                                if (ec) return self->EndStreamed(keep_alive, ec);
                                self->WriteNextPiece(keep_alive);
                              });
  }

  void WriteNextPiece(bool keep_alive) {
    if (out_remaining_ == 0) return EndStreamed(keep_alive, {});
    out_piece_.clear();
    absl::Status s;
    try {
      s = out_stream_(&out_piece_);
    } catch (const std::exception& e) {
      s = absl::InternalError(e.what());
    }
    if (!s.ok() || out_piece_.empty() || out_piece_.size() > out_remaining_) {
      STRATA_LOG_ERROR("http response stream failed", "error",
                       s.ok() ? std::string("bad piece size") : s.ToString());
      return EndStreamed(keep_alive, net::error::make_error_code(net::error::broken_pipe));
    }
    out_remaining_ -= out_piece_.size();
    Tcp().expires_after(std::chrono::milliseconds(shared_->options.write_timeout_ms));
    net::async_write(stream_, net::buffer(out_piece_),
                     [self = self(), keep_alive](error_code ec, size_t) {
                       if (ec) return self->EndStreamed(keep_alive, ec);
                       self->WriteNextPiece(keep_alive);
                     });
  }

  void EndStreamed(bool keep_alive, error_code ec) {
    stream_sr_.reset();
    stream_res_.reset();
    out_stream_ = nullptr;
    out_piece_.clear();
    out_piece_.shrink_to_fit();
    OnWrite(keep_alive, ec);
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Connection::OnBody, self()));
  }

  void OnBody(error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    Handle();
  }

  void OnReadError(const error_code& ec) {
    if (ec == bhttp::error::body_limit) {
      return SendErrorAndClose(
          413, "payload_too_large",
          "request body exceeds " + std::to_string(BodyLimitOfRequest()) + " bytes");
    }
    RefuseOrClose(ec, parser_ && parser_->is_header_done());
  }

  // A read that failed for anything but the body limit: an answer naming the problem where
  // the client can still read one, else a close. `header_done`: the header was parsed.
  void RefuseOrClose(const error_code& ec, bool header_done) {
    // The read buffer reached its cap with one element still incomplete: before the end of
    // the header, the header is too large; after it, a chunk-size line (its extensions) or
    // the trailer is, told apart by whether the buffered line has ended.
    const bool overflow = ec == bhttp::error::buffer_overflow;
    if (chunk_extensions_over_ || (overflow && header_done && !BufferedLineEnds())) {
      Count(shared_->refused.chunk_extensions_too_large);
      return SendErrorAndClose(400, "bad_request",
                               "chunk extensions: more than " +
                                   std::to_string(shared_->options.max_chunk_extension_bytes) +
                                   " bytes in one request body");
    }
    if (overflow && header_done) {
      Count(shared_->refused.header_too_large);
      return SendErrorAndClose(
          400, "bad_request",
          "request trailer exceeds " + std::to_string(shared_->read_buffer_limit) + " bytes");
    }
    if (ec == bhttp::error::header_limit || overflow) {
      Count(shared_->refused.header_too_large);
      return SendErrorAndClose(
          400, "bad_request",
          "request header exceeds " + std::to_string(shared_->options.max_header_bytes) + " bytes");
    }
    // end_of_stream: the client closed between requests; partial_message: it closed
    // mid-request. Neither can be answered.
    if (IsHttpParseError(ec) && ec != bhttp::error::end_of_stream &&
        ec != bhttp::error::partial_message) {
      return SendErrorAndClose(400, "bad_request", "malformed HTTP request: " + ec.message());
    }
    Close();  // timeout, reset, cancelled by Stop
  }

  void Handle() {
    state_ = State::kHandling;
    bhttp::request<bhttp::string_body> msg = parser_->release();
    parser_.reset();

    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    size_t q = req.target.find('?');
    if (q == std::string::npos) {
      req.path = req.target;
    } else {
      req.path = req.target.substr(0, q);
      req.query = req.target.substr(q + 1);
    }
    req.body = std::move(msg.body());
    for (const auto& field : msg) {
      std::string name(field.name_string());
      for (char& c : name) c = LowerAscii(c);
      req.headers.emplace_back(std::move(name), std::string(field.value()));
    }

    Response out;
    try {
      out = shared_->handler(req);
    } catch (const std::exception& e) {
      STRATA_LOG_ERROR("http handler threw", "method", req.method, "target", req.target, "what",
                       e.what());
      out = Response{500, "application/json", JsonErrorBody("internal", "handler failed")};
    } catch (...) {
      STRATA_LOG_ERROR("http handler threw", "method", req.method, "target", req.target);
      out = Response{500, "application/json", JsonErrorBody("internal", "handler failed")};
    }

    bool keep_alive = msg.keep_alive() && !shared_->stopping.load(std::memory_order_acquire);
    bool head = msg.method() == bhttp::verb::head;
    if (out.defer) return Defer(std::move(out.defer), msg.version(), keep_alive, head);
    Write(std::move(out), msg.version(), keep_alive, head);
  }

  // The state behind one deferred Reply: sends the first Response it is given on the
  // connection's strand, or a 500 if it is destroyed without one.
  class PendingReply {
   public:
    PendingReply(std::shared_ptr<Connection> c, unsigned version, bool keep_alive, bool head)
        : c_(std::move(c)), version_(version), keep_alive_(keep_alive), head_(head) {
      std::lock_guard<std::mutex> lock(c_->shared_->mu);
      ++c_->shared_->deferred;
    }
    ~PendingReply() {
      Send(Response{500, "application/json",
                    JsonErrorBody("internal", "the request's work was dropped")});
      Shared* shared = c_->shared_;
      c_.reset();  // before the count drops: Stop may return (and free Shared) right after
      std::lock_guard<std::mutex> lock(shared->mu);
      if (--shared->deferred == 0) shared->drained.notify_all();
    }
    PendingReply(const PendingReply&) = delete;
    PendingReply& operator=(const PendingReply&) = delete;

    void Send(Response out) {
      if (sent_.exchange(true, std::memory_order_acq_rel)) return;
      out.defer = nullptr;  // a reply cannot defer again
      net::post(c_->executor(), [c = c_, out = std::move(out), version = version_,
                                 keep_alive = keep_alive_, head = head_]() mutable {
        c->Write(std::move(out), version, keep_alive, head);
      });
    }

   private:
    std::shared_ptr<Connection> c_;
    unsigned version_;
    bool keep_alive_;
    bool head_;
    std::atomic<bool> sent_{false};
  };

  void Defer(std::function<void(Reply)> defer, unsigned version, bool keep_alive, bool head) {
    auto pending = std::make_shared<PendingReply>(self(), version, keep_alive, head);
    try {
      defer([pending](Response out) { pending->Send(std::move(out)); });
    } catch (...) {
      STRATA_LOG_ERROR("http deferred handler threw");
      pending->Send(Response{500, "application/json", JsonErrorBody("internal", "handler failed")});
    }
  }

  void Write(Response out, unsigned version, bool keep_alive, bool head) {
    state_ = State::kWriting;
    if (out.status < 100 || out.status > 999) {
      STRATA_LOG_ERROR("http handler returned an invalid status", "status", out.status);
      out = Response{500, "application/json", JsonErrorBody("internal", "invalid status")};
    }
    if (out.stream) return WriteStreamed(std::move(out), version, keep_alive, head);
    res_.emplace();
    auto& res = *res_;
    res.version(version);
    res.result(static_cast<unsigned>(out.status));
    if (!out.content_type.empty()) res.set(bhttp::field::content_type, out.content_type);
    res.set("X-Content-Type-Options", "nosniff");  // browsers use the declared type only
    std::string head_length;
    for (auto& [name, value] : out.headers) {
      if (beast::iequals(name, "content-length")) {
        head_length = value;
        continue;
      }
      if (beast::iequals(name, "connection")) continue;
      res.insert(name, value);
    }
    res.keep_alive(keep_alive);
    unsigned code = static_cast<unsigned>(out.status);
    bool bodiless = (code >= 100 && code < 200) || code == 204 || code == 304;
    if (bodiless) {
      // Beast refuses a body (and Content-Length) on these statuses.
      res.body().clear();
      res.prepare_payload();
    } else if (head) {
      res.set(bhttp::field::content_length,
              head_length.empty() ? std::to_string(out.body.size()) : head_length);
    } else {
      res.body() = std::move(out.body);
      res.prepare_payload();
    }
    Tcp().expires_after(std::chrono::milliseconds(shared_->options.write_timeout_ms));
    bhttp::async_write(stream_, res,
                       [self = self(), keep_alive](error_code ec, size_t) {
                         self->OnWrite(keep_alive, ec);
                       });
  }

  void OnWrite(bool keep_alive, error_code ec) {
    res_.reset();
    if (ec) return Close();
    if (!keep_alive || shared_->stopping.load(std::memory_order_acquire)) {
      return ShutdownSend([this] { Close(); });
    }
    ReadHeader();
  }

  // Answers with an error and closes without reading another request, draining what the
  // client still sends for a while so it can read the answer.
  void SendErrorAndClose(int status, std::string_view code, const std::string& message) {
    SendAndClose(Response{status, "application/json", JsonErrorBody(code, message)});
  }

  void SendAndClose(Response out) {
    state_ = State::kClosing;
    parser_.reset();
    res_.emplace();
    auto& res = *res_;
    res.version(11);
    res.result(static_cast<unsigned>(out.status));
    if (!out.content_type.empty()) res.set(bhttp::field::content_type, out.content_type);
    res.set("X-Content-Type-Options", "nosniff");  // browsers use the declared type only
    for (auto& [name, value] : out.headers) {
      if (beast::iequals(name, "content-length") || beast::iequals(name, "connection")) continue;
      res.insert(name, value);
    }
    res.keep_alive(false);
    res.body() = std::move(out.body);
    res.prepare_payload();
    Tcp().expires_after(std::chrono::milliseconds(shared_->options.write_timeout_ms));
    bhttp::async_write(stream_, res, [self = self()](error_code ec, size_t) {
      self->res_.reset();
      if (ec) return self->Close();
      self->ShutdownSend([c = self.get()] {
        c->Tcp().expires_after(kLingerTime);
        c->Drain();
      });
    });
  }

  // Whether the unparsed bytes in the read buffer hold a line end, after the CRLF that
  // closes the previous chunk's data.
  bool BufferedLineEnds() const {
    const auto data = buffer_.data();
    std::string_view bytes(static_cast<const char*>(data.data()), data.size());
    if (bytes.substr(0, 2) == "\r\n") bytes.remove_prefix(2);
    return bytes.find("\r\n") != std::string_view::npos;
  }

  // Reads and discards what the client still sends, below TLS (ours is closed by then).
  void Drain() {
    buffer_.clear();
    Tcp().async_read_some(buffer_.prepare(64 << 10), [self = self()](error_code ec, size_t) {
      if (ec) return self->Close();
      self->Drain();
    });
  }

  void Close() {
    state_ = State::kClosing;
    StopRateWindow();
    error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().close();
  }

  ByteStream stream_;
  Shared* shared_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  // Chunk extensions of the request being read, bytes, and whether they went over the limit.
  std::function<void(std::uint64_t, beast::string_view, error_code&)> on_chunk_header_;
  size_t chunk_extension_bytes_ = 0;
  bool chunk_extensions_over_ = false;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  State state_ = State::kReading;
  // Streaming request body (StreamingRoute): the converted parser, its buffer and the sink.
  std::optional<bhttp::request_parser<bhttp::buffer_body>> stream_parser_;
  std::string chunk_;
  std::unique_ptr<BodySink> sink_;
  size_t stream_limit_ = 0;
  // Minimum upload rate (StartRateWindow): the timer, the current window's number (a timer
  // whose number is stale does nothing), its bytes so far, and whether it came up short.
  net::steady_timer rate_timer_;
  uint64_t rate_window_ = 0;
  uint64_t window_bytes_ = 0;
  bool too_slow_ = false;
  // Streaming response body (Response::stream).
  std::optional<bhttp::response<bhttp::empty_body>> stream_res_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> stream_sr_;
  std::function<absl::Status(std::string*)> out_stream_;
  std::string out_piece_;
  uint64_t out_remaining_ = 0;
};

}  // namespace

class Server::Impl {
 public:
  Impl(ServerOptions options, Handler handler) {
    shared_.options = std::move(options);
    shared_.handler = std::move(handler);
    shared_.header_body_limit = shared_.options.max_body_bytes;
    for (const StreamingRoute& r : shared_.options.streaming_routes) {
      shared_.header_body_limit = std::max(shared_.header_body_limit, r.max_body_bytes);
    }
    // The chunk-size line's own bytes besides its extensions: a leading CRLF ending the
    // previous chunk, up to 16 hex digits, its CRLF (with room to spare).
    constexpr size_t kChunkLineOverhead = 64;
    shared_.read_buffer_limit =
        std::max(shared_.options.max_header_bytes,
                 shared_.options.max_chunk_extension_bytes + kChunkLineOverhead) +
        kReadBufferBytes;
    shared_.refused.Init(shared_.options.metrics);
  }

  ~Impl() {
    Stop();
    // Destroying the io_context destroys any handler still queued, and with them the
    // connections they own; `shared_` must still be alive then.
    listeners_.clear();
    work_.clear();
    iocs_.clear();
  }

  absl::Status Start() {
    if (started_) return absl::FailedPreconditionError("server already started");
    started_ = true;
    const ServerOptions& o = shared_.options;
    const bool tls = !o.tls_cert_file.empty() || !o.tls_key_file.empty();
    if (tls && o.tls_cert_file.empty()) {
      return absl::InvalidArgumentError("tls_cert: required with tls_key");
    }
    if (tls && o.tls_key_file.empty()) {
      return absl::InvalidArgumentError("tls_key: required with tls_cert");
    }
    if (!o.plain_http && !tls) {
      return absl::InvalidArgumentError(
          "plain_http: cannot be off without TLS (tls_cert and tls_key)");
    }
    if (tls) {
      absl::StatusOr<TlsContext> context = LoadTlsContext(o.tls_cert_file, o.tls_key_file);
      if (!context.ok()) return context.status();
      expiry_->store(CertificateExpiry(**context), std::memory_order_relaxed);
      std::lock_guard<std::mutex> lock(tls_mu_);
      tls_context_ = *std::move(context);
    }
    if (o.max_header_bytes > kMaxHeaderBytes) {
      return absl::InvalidArgumentError("max_header_bytes: must be at most " +
                                        std::to_string(kMaxHeaderBytes) +
                                        " (Beast keeps a header field's length in 16 bits)");
    }
    int threads = std::max(1, o.threads);
    for (int i = 0; i < threads; ++i) {
      // Concurrency hint 1: one thread runs each context (posts from others stay safe).
      iocs_.push_back(std::make_unique<net::io_context>(1));
      // The io threads run until Stop, even with no operation pending (while the acceptors
      // are closed by Stop, a deferred reply may still need to be posted and written).
      work_.push_back(std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(
          iocs_.back()->get_executor()));
    }
    if (o.plain_http) {
      absl::Status s = Listen(/*tls=*/false, "address", o.address, o.port);
      if (!s.ok()) return s;
    }
    if (tls) {
      absl::Status s = Listen(/*tls=*/true, "tls_address",
                              o.tls_address.empty() ? o.address : o.tls_address, o.tls_port);
      if (!s.ok()) {
        listeners_.clear();  // closes the plain one
        return s;
      }
      if (o.metrics != nullptr) {
        o.metrics->AddGauge("strata_tls_certificate_expiry_seconds",
                            "notAfter of the TLS certificate in use, seconds since the epoch",
                            [expiry = expiry_] {
                              return std::vector<std::pair<std::string, double>>{
                                  {"", static_cast<double>(expiry->load())}};
                            });
      }
    }

    for (auto& listener : listeners_) DoAccept(listener.get());
    threads_.reserve(threads);
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, ioc = iocs_[i].get()] {
        (void)pthread_setname_np(pthread_self(), "strata-http");
        if (shared_.options.thread_slice_us > 0) {
          ThreadPool::SetCurrentThreadSlice(shared_.options.thread_slice_us);
        }
        // Beast throws std::length_error out of a read for a header or trailer field of 64 KiB
        // or more (it stores field lengths in 16 bits), and only the read buffer bounds a
        // chunked body's trailer: one such request used to terminate the process. An
        // exception escaping a completion handler unwinds that handler, which drops its
        // connection (closed without an answer); Asio lets run() be entered again after it.
        for (;;) {
          try {
            ioc->run();
            return;
          } catch (const std::exception& e) {
            STRATA_LOG_ERROR("http: a connection failed with an exception and was closed", "what",
                             e.what());
          }
        }
      });
    }
    tls_ready_.store(tls, std::memory_order_release);
    return absl::OkStatus();
  }

  uint16_t port() const { return port_.load(std::memory_order_acquire); }
  uint16_t tls_port() const { return tls_port_.load(std::memory_order_acquire); }

  absl::Status ReloadTls() {
    if (!tls_ready_.load(std::memory_order_acquire)) {
      return absl::FailedPreconditionError("tls: not serving TLS");
    }
    const ServerOptions& o = shared_.options;
    absl::StatusOr<TlsContext> context = LoadTlsContext(o.tls_cert_file, o.tls_key_file);
    if (!context.ok()) {
      Count(shared_.refused.tls_reloads_failed);
      return context.status();
    }
    expiry_->store(CertificateExpiry(**context), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(tls_mu_);
      tls_context_ = *std::move(context);  // the old one lives on in its open connections
    }
    Count(shared_.refused.tls_reloads_ok);
    return absl::OkStatus();
  }

  void Stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    if (threads_.empty()) return;  // Start failed
    shared_.stopping.store(true, std::memory_order_release);
    for (auto& listener : listeners_) {
      net::post(listener->acceptor.get_executor(), [l = listener.get()] {
        error_code ignored;
        l->acceptor.close(ignored);
        l->retry_timer.cancel();
      });
    }
    std::vector<std::shared_ptr<Connection>> live;
    {
      std::lock_guard<std::mutex> lock(shared_.mu);
      for (auto& [ptr, weak] : shared_.live) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
    }
    for (auto& c : live) {
      net::post(c->executor(), [c] { c->CloseIfIdle(); });
    }
    live.clear();
    {
      std::unique_lock<std::mutex> lock(shared_.mu);
      // Deferred work ends on its own threads and posts its reply here: wait for all of it
      // first, so no Reply outlives the server (a Reply holds its connection, which points
      // at Shared); the replies are then in-flight writes like any other.
      shared_.drained.wait(lock, [this] { return shared_.deferred == 0; });
      shared_.drained.wait_for(lock, std::chrono::milliseconds(shared_.options.stop_grace_ms),
                               [this] { return shared_.live.empty(); });
    }
    work_.clear();
    for (auto& ioc : iocs_) ioc->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  // One listening socket; its acceptor and retry timer run on their own strand.
  struct Listener {
    Listener(net::io_context& ioc, bool tls)
        : tls(tls), acceptor(net::make_strand(ioc)), retry_timer(acceptor.get_executor()) {}
    const bool tls;
    tcp::acceptor acceptor;
    net::steady_timer retry_timer;
    std::chrono::steady_clock::time_point last_refusal_log{};  // the acceptor's strand only
  };

  // Binds a listener; `field` names the address option in errors.
  absl::Status Listen(bool tls, const char* field, const std::string& address_text,
                      uint16_t port) {
    error_code ec;
    net::ip::address address = net::ip::make_address(address_text, ec);
    if (ec) {
      return absl::InvalidArgumentError(std::string(field) + ": not an IP address: '" +
                                        address_text + "'");
    }
    auto listener = std::make_unique<Listener>(*iocs_.front(), tls);
    tcp::acceptor& acceptor = listener->acceptor;
    tcp::endpoint endpoint(address, port);
    auto fail = [&](const char* what) {
      error_code ignored;
      acceptor.close(ignored);
      return absl::UnavailableError(std::string(what) + " " + (tls ? "(tls) " : "") +
                                    address_text + ":" + std::to_string(port) + ": " +
                                    ec.message());
    };
    acceptor.open(endpoint.protocol(), ec);
    if (ec) return fail("open");
    // SO_REUSEADDR only lets us rebind over TIME_WAIT leftovers; unlike SO_REUSEPORT it
    // does not let two listeners share the port.
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (ec) return fail("setsockopt");
    acceptor.bind(endpoint, ec);
    if (ec) return fail("bind");
    acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen");
    (tls ? tls_port_ : port_).store(acceptor.local_endpoint(ec).port(), std::memory_order_release);
    listeners_.push_back(std::move(listener));
    return absl::OkStatus();
  }

  void DoAccept(Listener* l) {
    // The next connection's context, in turn.
    net::io_context& ioc = *iocs_[next_context_.fetch_add(1) % iocs_.size()];
    l->acceptor.async_accept(net::make_strand(ioc), [this, l](error_code ec, tcp::socket socket) {
      OnAccept(l, ec, std::move(socket));
    });
  }

  void OnAccept(Listener* l, error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !l->acceptor.is_open()) return;
    if (shared_.stopping.load(std::memory_order_acquire)) return;  // socket closes here
    if (ec) {
      // E.g. out of file descriptors: back off instead of spinning.
      STRATA_LOG_WARN("http accept failed", "error", ec.message());
      l->retry_timer.expires_after(std::chrono::milliseconds(50));
      l->retry_timer.async_wait([this, l](error_code ec) {
        if (!ec && l->acceptor.is_open()) DoAccept(l);
      });
      return;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    size_t open = 0;
    {
      std::lock_guard<std::mutex> lock(shared_.mu);
      open = shared_.live.size();
    }
    if (shared_.options.max_connections > 0 && open >= shared_.options.max_connections) {
      // Over the limit: a short answer, best effort without blocking, then close. A TLS
      // client gets no answer (that would take a handshake, the work the limit saves).
      static const std::string kBusy = [] {
        const std::string body =
            JsonErrorBody("unavailable", "connections: the server's connection limit is reached");
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               "Connection: close\r\nRetry-After: 1\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
      }();
      Count(shared_.refused.connection_limit);
      if (!l->tls) {
        socket.non_blocking(true, ignored);
        socket.write_some(net::buffer(kBusy), ignored);
      }
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      const auto now = std::chrono::steady_clock::now();
      if (now - l->last_refusal_log >= std::chrono::seconds(10)) {
        l->last_refusal_log = now;
        STRATA_LOG_WARN("http: connection refused, limit reached", "max_connections",
                        shared_.options.max_connections);
      }
      DoAccept(l);
      return;
    }
    TlsContext context;  // null: plain HTTP
    if (l->tls) {
      std::lock_guard<std::mutex> lock(tls_mu_);
      context = tls_context_;
    }
    std::make_shared<Connection>(std::move(socket), &shared_, std::move(context))->Start();
    DoAccept(l);
  }

  Shared shared_;
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<uint16_t> port_{0};
  std::atomic<uint16_t> tls_port_{0};
  std::vector<std::unique_ptr<net::io_context>> iocs_;  // one per io thread
  std::vector<std::unique_ptr<net::executor_work_guard<net::io_context::executor_type>>> work_;
  std::atomic<size_t> next_context_{0};  // the context of the next accepted connection
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::thread> threads_;
  // TLS: whether it is served (ReloadTls may run), the context new connections get, and the
  // expiry of its certificate (shared with the metrics gauge, which may outlive the server).
  std::atomic<bool> tls_ready_{false};
  std::mutex tls_mu_;
  TlsContext tls_context_;  // guarded by tls_mu_
  std::shared_ptr<std::atomic<int64_t>> expiry_ = std::make_shared<std::atomic<int64_t>>(0);
};

Server::Server(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() = default;

absl::Status Server::Start() { return impl_->Start(); }

uint16_t Server::port() const { return impl_->port(); }

uint16_t Server::tls_port() const { return impl_->tls_port(); }

absl::Status Server::ReloadTls() { return impl_->ReloadTls(); }

void Server::Stop() { impl_->Stop(); }

}  // namespace strata::http
