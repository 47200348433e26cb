// Blocking HTTP/1.1 client: non-blocking POSIX socket + poll() for the timeouts.
#include "strata/http/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "strata/base/status.h"
#include "strata/http/internal/ascii.h"

namespace strata::http {
namespace {

constexpr size_t kMaxLineBytes = 64 << 10;
constexpr size_t kReadChunk = 64 << 10;

using internal::EqualsIgnoreCase;
using internal::LowerAscii;

bool ContainsTokenIgnoreCase(std::string_view value, std::string_view token) {
  std::string lower(value);
  for (char& c : lower) c = LowerAscii(c);
  return lower.find(token) != std::string::npos;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Waits until `fd` is ready for `events`; DeadlineExceeded after timeout_ms.
absl::Status WaitFor(int fd, short events, int timeout_ms, const char* what) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r > 0) return absl::OkStatus();
    if (r == 0) {
      return absl::DeadlineExceededError(std::string("timed out after ") +
                                         std::to_string(timeout_ms) + " ms " + what);
    }
    if (errno != EINTR) return absl::UnavailableError(Errno("poll"));
  }
}

}  // namespace

std::string_view ClientResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

Client::Client(std::string host, uint16_t port, int timeout_ms)
    : host_(std::move(host)), port_(port), timeout_ms_(timeout_ms) {}

Client::~Client() { Close(); }

Client::Client(Client&& other) noexcept
    : host_(std::move(other.host_)),
      port_(other.port_),
      timeout_ms_(other.timeout_ms_),
      fd_(other.fd_),
      connects_(other.connects_),
      buf_(std::move(other.buf_)),
      pos_(other.pos_),
      end_(other.end_),
      received_(other.received_),
      default_headers_(std::move(other.default_headers_)) {
  other.fd_ = -1;
  other.pos_ = other.end_ = 0;
}

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    Close();
    host_ = std::move(other.host_);
    port_ = other.port_;
    timeout_ms_ = other.timeout_ms_;
    fd_ = other.fd_;
    connects_ = other.connects_;
    buf_ = std::move(other.buf_);
    pos_ = other.pos_;
    end_ = other.end_;
    received_ = other.received_;
    default_headers_ = std::move(other.default_headers_);
    other.fd_ = -1;
    other.pos_ = other.end_ = 0;
  }
  return *this;
}

void Client::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pos_ = end_ = 0;
}

absl::Status Client::Connect() {
  Close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* addrs = nullptr;
  std::string service = std::to_string(port_);
  int rc = ::getaddrinfo(host_.c_str(), service.c_str(), &hints, &addrs);
  if (rc != 0) {
    return absl::UnavailableError("resolve " + host_ + ": " + ::gai_strerror(rc));
  }
  absl::Status last = absl::UnavailableError("no address for " + host_);
  for (addrinfo* a = addrs; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last = absl::UnavailableError(Errno("socket"));
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    absl::Status s;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        s = absl::UnavailableError(Errno("connect") + " (" + host_ + ":" + service + ")");
      } else {
        s = WaitFor(fd, POLLOUT, timeout_ms_, "connecting");
        if (s.ok()) {
          int err = 0;
          socklen_t len = sizeof(err);
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) {
            s = absl::UnavailableError(std::string("connect: ") + std::strerror(err) + " (" +
                                       host_ + ":" + service + ")");
          }
        }
      }
    }
    if (s.ok()) {
      ::freeaddrinfo(addrs);
      fd_ = fd;
      ++connects_;
      return absl::OkStatus();
    }
    ::close(fd);
    last = s;
  }
  ::freeaddrinfo(addrs);
  return last;
}

bool Client::PeerClosed() {
  // Bytes nobody asked for (e.g. a 408 before the server hung up) also mean "start over".
  if (pos_ < end_) return true;
  char c;
  ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return !(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  return true;  // 0 = orderly close; > 0 = unsolicited data
}

absl::Status Client::SendAll(std::string_view head, std::string_view body) {
  iovec iov[2] = {{const_cast<char*>(head.data()), head.size()},
                  {const_cast<char*>(body.data()), body.size()}};
  int iovcnt = body.empty() ? 1 : 2;
  iovec* v = iov;
  while (iovcnt > 0) {
    msghdr msg{};
    msg.msg_iov = v;
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        STRATA_RETURN_IF_ERROR(WaitFor(fd_, POLLOUT, timeout_ms_, "sending the request"));
        continue;
      }
      return absl::UnavailableError(Errno("send"));
    }
    auto left = static_cast<size_t>(n);
    while (iovcnt > 0 && left >= v->iov_len) {
      left -= v->iov_len;
      ++v;
      --iovcnt;
    }
    if (iovcnt > 0) {
      v->iov_base = static_cast<char*>(v->iov_base) + left;
      v->iov_len -= left;
    }
  }
  return absl::OkStatus();
}

absl::Status Client::ReadMore(bool* eof) {
  *eof = false;
  if (pos_ == end_) pos_ = end_ = 0;
  if (end_ == buf_.size()) {
    if (pos_ > 0) {
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    if (end_ + kReadChunk / 4 > buf_.size()) buf_.resize(std::max(kReadChunk, buf_.size() * 2));
  }
  for (;;) {
    ssize_t n = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
    if (n > 0) {
      end_ += static_cast<size_t>(n);
      received_ += static_cast<uint64_t>(n);
      return absl::OkStatus();
    }
    if (n == 0) {
      *eof = true;
      return absl::OkStatus();
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      STRATA_RETURN_IF_ERROR(WaitFor(fd_, POLLIN, timeout_ms_, "waiting for the response"));
      continue;
    }
    return absl::UnavailableError(Errno("recv"));
  }
}

absl::Status Client::Fill(size_t n, bool* eof) {
  *eof = false;
  if (end_ - pos_ < n && buf_.size() - pos_ < n) {
    // Make room for the whole body at once instead of doubling repeatedly.
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
    buf_.resize(n + kReadChunk);
  }
  while (end_ - pos_ < n) {
    STRATA_RETURN_IF_ERROR(ReadMore(eof));
    if (*eof) return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status Client::ReadLine(std::string_view* line) {
  size_t scanned = pos_;
  for (;;) {
    std::string_view have(buf_.data() + scanned, end_ - scanned);
    size_t nl = have.find('\n');
    if (nl != std::string_view::npos) {
      size_t stop = scanned + nl;
      size_t len = stop - pos_;
      if (len > 0 && buf_[stop - 1] == '\r') --len;
      *line = std::string_view(buf_.data() + pos_, len);
      pos_ = stop + 1;
      return absl::OkStatus();
    }
    if (end_ - pos_ > kMaxLineBytes) {
      return absl::InternalError("malformed HTTP response: line longer than 64 KiB");
    }
    size_t offset = end_ - pos_;
    bool eof = false;
    STRATA_RETURN_IF_ERROR(ReadMore(&eof));
    if (eof) return absl::UnavailableError("connection closed by the server");
    scanned = pos_ + offset;  // ReadMore may have moved the unread bytes to the front
  }
}

absl::Status Client::ReadResponse(bool head_request, ClientResponse* out, bool* got_bytes,
                                  bool* keep_alive) {
  const uint64_t received_before = received_;
  *got_bytes = pos_ < end_;
  auto note_progress = [&] { *got_bytes = *got_bytes || received_ != received_before; };
  auto malformed = [](std::string_view why) {
    return absl::InternalError("malformed HTTP response: " + std::string(why));
  };

  bool chunked = false;
  bool has_length = false;
  uint64_t length = 0;
  for (;;) {  // loops over 1xx interim responses
    std::string_view line;
    absl::Status s = ReadLine(&line);
    note_progress();
    STRATA_RETURN_IF_ERROR(s);
    // "HTTP/1.1 200 OK"
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
      return malformed("bad status line");
    }
    *keep_alive = line[7] != '0';
    int status = 0;
    auto [ptr, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
    if (ec != std::errc() || ptr != line.data() + 12 || status < 100 || status > 999) {
      return malformed("bad status code");
    }
    out->status = status;
    out->headers.clear();
    chunked = false;
    has_length = false;
    for (;;) {
      STRATA_RETURN_IF_ERROR(ReadLine(&line));
      if (line.empty()) break;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) return malformed("bad header line");
      std::string name(line.substr(0, colon));
      for (char& c : name) c = LowerAscii(c);
      std::string_view value = Trim(line.substr(colon + 1));
      if (name == "content-length") {
        auto [p, e] = std::from_chars(value.data(), value.data() + value.size(), length);
        if (e != std::errc() || p != value.data() + value.size()) {
          return malformed("bad Content-Length");
        }
        has_length = true;
      } else if (name == "transfer-encoding") {
        chunked = ContainsTokenIgnoreCase(value, "chunked");
      } else if (name == "connection") {
        if (ContainsTokenIgnoreCase(value, "close")) *keep_alive = false;
        if (ContainsTokenIgnoreCase(value, "keep-alive")) *keep_alive = true;
      }
      out->headers.emplace_back(std::move(name), std::string(value));
    }
    if (status >= 200 || status == 101) break;
  }

  out->body.clear();
  const int status = out->status;
  if (head_request || status == 204 || status == 304 || (status >= 100 && status < 200)) {
    return absl::OkStatus();
  }
  bool eof = false;
  if (chunked) {
    for (;;) {
      std::string_view line;
      STRATA_RETURN_IF_ERROR(ReadLine(&line));
      line = line.substr(0, line.find(';'));
      line = Trim(line);
      uint64_t size = 0;
      auto [p, e] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
      if (e != std::errc() || p != line.data() + line.size()) return malformed("bad chunk size");
      if (size == 0) {
        do {  // trailer fields, up to the empty line
          STRATA_RETURN_IF_ERROR(ReadLine(&line));
        } while (!line.empty());
        return absl::OkStatus();
      }
      STRATA_RETURN_IF_ERROR(Fill(size + 2, &eof));
      if (eof) return absl::UnavailableError("connection closed in the middle of a chunk");
      out->body.append(buf_.data() + pos_, size);
      if (buf_[pos_ + size] != '\r' || buf_[pos_ + size + 1] != '\n') {
        return malformed("chunk not followed by CRLF");
      }
      pos_ += size + 2;
    }
  }
  if (has_length) {
    STRATA_RETURN_IF_ERROR(Fill(length, &eof));
    if (eof) return absl::UnavailableError("connection closed in the middle of the body");
    out->body.assign(buf_.data() + pos_, length);
    pos_ += length;
    return absl::OkStatus();
  }
  // No length: the body runs to the end of the connection.
  *keep_alive = false;
  for (;;) {
    out->body.append(buf_.data() + pos_, end_ - pos_);
    pos_ = end_;
    STRATA_RETURN_IF_ERROR(ReadMore(&eof));
    if (eof) return absl::OkStatus();
  }
}

absl::StatusOr<ClientResponse> Client::Request(std::string_view method, std::string_view target,
                                               std::string_view body,
                                               std::string_view content_type) {
  static const std::vector<std::pair<std::string, std::string>> kNoHeaders;
  return Request(method, target, body, content_type, kNoHeaders);
}

absl::StatusOr<ClientResponse> Client::Request(
    std::string_view method, std::string_view target, std::string_view body,
    std::string_view content_type,
    const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  head_.clear();
  head_.append(method);
  head_.push_back(' ');
  head_.append(target.empty() ? std::string_view("/") : target);
  head_.append(" HTTP/1.1\r\nHost: ");
  if (host_.find(':') != std::string::npos) {
    head_.append("[").append(host_).append("]");
  } else {
    head_.append(host_);
  }
  head_.push_back(':');
  head_.append(std::to_string(port_));
  head_.append("\r\n");
  bool bodiless_method = method == "GET" || method == "HEAD" || method == "DELETE";
  if (!body.empty() || !bodiless_method) {
    if (!content_type.empty()) {
      head_.append("Content-Type: ").append(content_type).append("\r\n");
    }
    head_.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  for (const auto& [name, value] : extra_headers) {
    head_.append(name).append(": ").append(value).append("\r\n");
  }
  for (const auto& [name, value] : default_headers_) {
    head_.append(name).append(": ").append(value).append("\r\n");
  }
  head_.append("\r\n");
  const bool head_request = method == "HEAD";

  for (int attempt = 0;; ++attempt) {
    bool reused = fd_ >= 0;
    if (reused && PeerClosed()) {
      Close();
      reused = false;
    }
    if (fd_ < 0) STRATA_RETURN_IF_ERROR(Connect());
    absl::Status s = SendAll(head_, body);
    if (!s.ok()) {
      Close();
      if (reused && attempt == 0 && !absl::IsDeadlineExceeded(s)) continue;
      return s;
    }
    ClientResponse response;
    bool got_bytes = false;
    bool keep_alive = true;
    s = ReadResponse(head_request, &response, &got_bytes, &keep_alive);
    if (!s.ok()) {
      Close();
      // The server closed a reused connection before answering: it never saw the request
      // (or dropped it unanswered), so sending it once more is what every client does.
      if (reused && attempt == 0 && !got_bytes && absl::IsUnavailable(s)) continue;
      return s;
    }
    if (!keep_alive) Close();
    return response;
  }
}

absl::StatusOr<Endpoint> ParseUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError("url: " + std::string(why) + ": '" + std::string(url) + "'");
  };
  std::string_view s = url;
  if (s.substr(0, 7) == "http://") {
    s.remove_prefix(7);
  } else if (s.find("://") != std::string_view::npos) {
    return bad("only http:// is supported");
  }
  s = s.substr(0, s.find('/'));
  if (s.empty()) return bad("no host");
  Endpoint ep;
  ep.port = 80;
  std::string_view port;
  if (s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return bad("unterminated '['");
    ep.host = std::string(s.substr(1, close - 1));
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("junk after ']'");
      port = rest.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else {
    size_t colon = s.find(':');
    if (colon != std::string_view::npos && s.find(':', colon + 1) != std::string_view::npos) {
      return bad("IPv6 addresses need brackets");
    }
    ep.host = std::string(s.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = s.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
  }
  if (ep.host.empty()) return bad("no host");
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, e] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (e != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      return bad("port must be 1..65535");
    }
    ep.port = static_cast<uint16_t>(value);
  }
  return ep;
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace strata::http
