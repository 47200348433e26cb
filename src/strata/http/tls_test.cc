// The HTTP server over TLS: the same connection logic as plain HTTP (keep-alive, streamed
// bodies, deferred replies, timeouts, the connection limit, Stop), TLS 1.2+ only, and
// certificate reloads that leave open connections alone. The client is OpenSSL used
// directly, with blocking sockets that time out after 5 s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "strata/base/metrics.h"
#include "strata/http/http_client.h"
#include "strata/http/http_server.h"

namespace strata::http {
namespace {

using namespace std::chrono_literals;

// A self-signed P-256 certificate and its key, as PEM files, and the certificate's DER (to
// tell which one a server presents).
struct TestCert {
  std::string cert_file;
  std::string key_file;
  std::string der;
};

TestCert MakeCert(const std::string& dir, const std::string& name, long serial) {
  TestCert out{dir + "/" + name + ".crt", dir + "/" + name + ".key", ""};
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, subject);
  X509_sign(cert, key, EVP_sha256());
  FILE* f = std::fopen(out.cert_file.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(out.key_file.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  unsigned char* der = nullptr;
  int n = i2d_X509(cert, &der);
  out.der.assign(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

// A blocking TLS client on one connection. It does not verify the server (the tests compare
// the certificate it presents instead).
class TlsClient {
 public:
  // `version`: 0 = any the client allows, else exactly that one (e.g. TLS1_1_VERSION).
  explicit TlsClient(uint16_t port, int version = 0) {
    // OpenSSL writes with write(2): a server that closed first must not kill the test.
    std::signal(SIGPIPE, SIG_IGN);
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (version != 0) {
      SSL_CTX_set_security_level(ctx_, 0);  // lets the client offer TLS 1.0/1.1 at all
      SSL_CTX_set_min_proto_version(ctx_, version);
      SSL_CTX_set_max_proto_version(ctx_, version);
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    connected_ = SSL_connect(ssl_) == 1;
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool connected() const { return connected_; }

  std::string PeerCertificate() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return "";
    unsigned char* der = nullptr;
    int n = i2d_X509(cert, &der);
    std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
    OPENSSL_free(der);
    X509_free(cert);
    return out;
  }

  bool Send(const std::string& bytes) {
    return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }

  // One response with a Content-Length: its status line, headers and body; "" if the
  // connection ended (or 5 s passed) first.
  std::string ReadResponse() {
    while (pending_.find("\r\n\r\n") == std::string::npos) {
      if (!ReadMore()) return "";
    }
    const size_t head_end = pending_.find("\r\n\r\n") + 4;
    size_t length = 0;
    const size_t at = pending_.find("Content-Length: ");
    if (at != std::string::npos && at < head_end) length = std::stoul(pending_.substr(at + 16));
    while (pending_.size() < head_end + length) {
      if (!ReadMore()) return "";
    }
    std::string out = pending_.substr(0, head_end + length);
    pending_.erase(0, head_end + length);
    return out;
  }

  // Whether the server ends the connection within 5 s: true for its close_notify or a TCP
  // close; false for data, or for nothing (the receive timeout).
  bool ServerCloses() {
    char buf[4096];
    errno = 0;
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n > 0) return false;
    int err = SSL_get_error(ssl_, n);
    return err != SSL_ERROR_WANT_READ && !(err == SSL_ERROR_SYSCALL && errno == EAGAIN);
  }

  // Whether the server's close_notify arrives (a clean end, not a truncation).
  bool ServerSendsCloseNotify() {
    char buf[4096];
    int n = SSL_read(ssl_, buf, sizeof(buf));
    return n == 0 && SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN;
  }

 private:
  bool ReadMore() {
    char buf[65536];
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

std::string Get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

// Counts a streamed body's bytes.
class ByteCountingSink final : public BodySink {
 public:
  std::optional<Response> Append(std::string_view piece) override {
    bytes_ += piece.size();
    return std::nullopt;
  }
  Response Finish() override {
    return Response{200, "text/plain", "streamed " + std::to_string(bytes_)};
  }

 private:
  size_t bytes_ = 0;
};

class HttpTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/strata_http_tls_XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    a_ = MakeCert(dir_, "a", 1);
    b_ = MakeCert(dir_, "b", 2);
    cert_file_ = dir_ + "/server.crt";
    key_file_ = dir_ + "/server.key";
    Serve(a_);
  }
  void TearDown() override {
    if (server_) server_->Stop();
    std::filesystem::remove_all(dir_);
  }

  // Puts `cert` where the server reads its certificate and key.
  void Serve(const TestCert& cert) {
    std::filesystem::copy_file(cert.cert_file, cert_file_,
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(cert.key_file, key_file_,
                               std::filesystem::copy_options::overwrite_existing);
  }

  void StartServer(const std::function<void(ServerOptions*)>& change = nullptr) {
    ServerOptions options;
    options.port = 0;
    options.tls_port = 0;
    options.tls_cert_file = cert_file_;
    options.tls_key_file = key_file_;
    options.metrics = &metrics_;
    StreamingRoute route;
    route.method = "PUT";
    route.path_prefix = "/stream/";
    route.max_body_bytes = 8 << 20;
    route.open = [](const Request&) {
      StreamStart start;
      start.sink = std::make_unique<ByteCountingSink>();
      return start;
    };
    options.streaming_routes.push_back(route);
    if (change) change(&options);
    server_ = std::make_unique<Server>(options, [](const Request& req) {
      if (req.path == "/defer") {
        Response r;
        r.defer = [](Reply reply) {
          std::thread([reply = std::move(reply)] {
            std::this_thread::sleep_for(20ms);
            reply(Response{200, "text/plain", "deferred"});
          }).detach();
        };
        return r;
      }
      return Response{200, "text/plain", req.method + " " + req.path};
    });
    absl::Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_NE(server_->tls_port(), 0);
  }

  uint64_t Count(const std::string& name, const std::string& labels = "") {
    return metrics_.GetCounter(name, "", labels)->Value();
  }

  std::string dir_;
  TestCert a_, b_;
  std::string cert_file_, key_file_;
  MetricsRegistry metrics_;
  std::unique_ptr<Server> server_;
};

TEST_F(HttpTlsTest, KeepAliveStreamedBodiesAndDeferredRepliesWorkAsOverPlainHttp) {
  StartServer();
  TlsClient client(server_->tls_port());
  ASSERT_TRUE(client.connected());
  EXPECT_EQ(client.PeerCertificate(), a_.der);
  ASSERT_TRUE(client.Send(Get("/one")));
  std::string r = client.ReadResponse();
  EXPECT_EQ(r.substr(0, 12), "HTTP/1.1 200") << r;
  EXPECT_NE(r.find("GET /one"), std::string::npos) << r;
  const std::string body(3 << 20, 'x');
  ASSERT_TRUE(client.Send("PUT /stream/up HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body));
  r = client.ReadResponse();
  EXPECT_NE(r.find("streamed 3145728"), std::string::npos) << r.substr(0, 300);
  ASSERT_TRUE(client.Send(Get("/defer")));
  r = client.ReadResponse();
  EXPECT_NE(r.find("deferred"), std::string::npos) << r;
  // Still the same connection; `Connection: close` ends it with a close_notify.
  ASSERT_TRUE(client.Send("GET /last HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  r = client.ReadResponse();
  EXPECT_NE(r.find("GET /last"), std::string::npos) << r;
  EXPECT_TRUE(client.ServerSendsCloseNotify());
  // Plain HTTP is served beside it.
  Client plain("127.0.0.1", server_->port());
  auto p = plain.Request("GET", "/plain");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->body, "GET /plain");
}

TEST_F(HttpTlsTest, AnErrorAnswerIsFollowedByACloseNotify) {
  StartServer([](ServerOptions* o) { o->max_header_bytes = 1024; });
  TlsClient client(server_->tls_port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n"));
  std::string r = client.ReadResponse();
  EXPECT_EQ(r.substr(0, 12), "HTTP/1.1 400") << r;
  EXPECT_NE(r.find("request header exceeds 1024 bytes"), std::string::npos) << r;
  EXPECT_TRUE(client.ServerSendsCloseNotify());
}

TEST_F(HttpTlsTest, IdleTimeoutAndConnectionLimitApply) {
  StartServer([](ServerOptions* o) { o->idle_timeout_ms = 300; });
  TlsClient idle(server_->tls_port());  // idle after its handshake
  ASSERT_TRUE(idle.connected());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(idle.ServerCloses());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  server_->Stop();

  // The limit on its own server: with the 300 ms idle timeout, a slow machine could close a
  // held connection before the extra one arrives. Closed connections leave the count
  // asynchronously: retry until two are held.
  StartServer([](ServerOptions* o) { o->max_connections = 2; });
  std::unique_ptr<TlsClient> held[2];
  for (int attempt = 0; attempt < 100; ++attempt) {
    held[0] = std::make_unique<TlsClient>(server_->tls_port());
    held[1] = std::make_unique<TlsClient>(server_->tls_port());
    if (held[0]->connected() && held[1]->connected()) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(held[0]->connected() && held[1]->connected());
  TlsClient extra(server_->tls_port());
  EXPECT_FALSE(extra.connected());  // closed without a handshake
  EXPECT_GE(Count("strata_http_refused_total", "reason=\"connection_limit\""), 1u);
}

TEST_F(HttpTlsTest, OnlyTls12AndLaterAreServed) {
  StartServer();
  TlsClient old(server_->tls_port(), TLS1_1_VERSION);
  EXPECT_FALSE(old.connected());
  TlsClient tls12(server_->tls_port(), TLS1_2_VERSION);
  EXPECT_TRUE(tls12.connected());
  TlsClient tls13(server_->tls_port(), TLS1_3_VERSION);
  EXPECT_TRUE(tls13.connected());
  // The failure is counted once the server has seen it.
  for (int i = 0; i < 100 && Count("strata_tls_handshake_failures_total") == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GE(Count("strata_tls_handshake_failures_total"), 1u);
}

TEST_F(HttpTlsTest, ReloadServesTheNewCertificateToNewConnectionsOnly) {
  StartServer();
  TlsClient before(server_->tls_port());
  ASSERT_TRUE(before.connected());
  EXPECT_EQ(before.PeerCertificate(), a_.der);

  Serve(b_);
  ASSERT_TRUE(server_->ReloadTls().ok());
  EXPECT_EQ(Count("strata_tls_reloads_total", "result=\"ok\""), 1u);
  TlsClient after(server_->tls_port());
  ASSERT_TRUE(after.connected());
  EXPECT_EQ(after.PeerCertificate(), b_.der);
  ASSERT_TRUE(before.Send(Get("/still")));  // the open connection goes on, with A
  EXPECT_NE(before.ReadResponse().find("GET /still"), std::string::npos);

  // A failed reload keeps B and says which file is wrong.
  std::FILE* f = std::fopen(cert_file_.c_str(), "w");
  std::fputs("garbage\n", f);
  std::fclose(f);
  absl::Status s = server_->ReloadTls();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("tls_cert"), std::string::npos) << s;
  std::filesystem::copy_file(a_.cert_file, cert_file_,
                             std::filesystem::copy_options::overwrite_existing);
  s = server_->ReloadTls();  // A's certificate with B's key
  EXPECT_NE(s.message().find("is not the key of the certificate"), std::string::npos) << s;
  EXPECT_EQ(Count("strata_tls_reloads_total", "result=\"error\""), 2u);
  TlsClient later(server_->tls_port());
  ASSERT_TRUE(later.connected());
  EXPECT_EQ(later.PeerCertificate(), b_.der);
}

TEST_F(HttpTlsTest, TlsOnlyAndStopClosesIdleTlsConnections) {
  StartServer([](ServerOptions* o) { o->plain_http = false; });
  EXPECT_EQ(server_->port(), 0);
  TlsClient idle(server_->tls_port());
  ASSERT_TRUE(idle.connected());
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // not the 10 s stop grace
}

TEST(HttpTlsOptionsTest, BadSettingsAreRefusedAtStart) {
  auto start = [](const std::function<void(ServerOptions*)>& change) {
    ServerOptions options;
    options.port = 0;
    options.tls_port = 0;
    change(&options);
    Server server(options, [](const Request&) { return Response{}; });
    return server.Start();
  };
  absl::Status s = start([](ServerOptions* o) { o->tls_cert_file = "/nonexistent.crt"; });
  EXPECT_NE(s.message().find("tls_key: required"), std::string::npos) << s;
  s = start([](ServerOptions* o) {
    o->tls_cert_file = "/nonexistent.crt";
    o->tls_key_file = "/nonexistent.key";
  });
  EXPECT_NE(s.message().find("tls_cert: cannot read '/nonexistent.crt'"), std::string::npos) << s;
  s = start([](ServerOptions* o) { o->plain_http = false; });
  EXPECT_NE(s.message().find("plain_http"), std::string::npos) << s;
  Server idle(ServerOptions{}, [](const Request&) { return Response{}; });
  EXPECT_TRUE(absl::IsFailedPrecondition(idle.ReloadTls()));
}

}  // namespace
}  // namespace strata::http
