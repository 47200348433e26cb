#include "bench/connections_bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "bench/child_process.h"
#include "bench/run_support.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"
#include "strata/http/http_client.h"

extern char** environ;

namespace strata::bench {
namespace {

constexpr double kStartTimeoutS = 120;
constexpr double kStopTimeoutS = 60;
constexpr const char* kBucket = "bench-conn";
constexpr const char* kObject = "/v1/buckets/bench-conn/objects/small";
constexpr double kBusyMachineShare = 0.25;

// The bench holds a descriptor per connection: raise its own soft limit to the hard one.
uint64_t RaiseOwnFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (rlim_t{1} << 20) : rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}

// A blocking TCP connection to 127.0.0.1:port, or -1 (errno set).
int Connect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Whether the peer has closed (or reset) `fd`, or sent something (an answer before closing).
bool PeerSpokeOrClosed(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

// Open descriptors of process `pid` (its /proc/PID/fd entries), -1 if unreadable.
int64_t OpenDescriptors(pid_t pid) {
  std::error_code ec;
  int64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

std::string HttpError(const absl::StatusOr<http::ClientResponse>& r) {
  if (!r.ok()) return r.status().ToString();
  return "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300);
}

// The idle crowd: connections that never send a byte.
class IdleCrowd {
 public:
  ~IdleCrowd() { Close(); }
  // Opens n connections; the first failure is returned (e.g. EMFILE), keeping what opened.
  absl::Status Open(uint16_t port, int n) {
    fds_.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const int fd = Connect(port);
      if (fd < 0) {
        return absl::UnavailableError("idle connection " + std::to_string(i) + ": " +
                                      std::strerror(errno));
      }
      fds_.push_back(fd);
    }
    return absl::OkStatus();
  }
  // Connections the server has not closed (nor answered).
  int StillOpen() const {
    int open = 0;
    for (int fd : fds_) open += PeerSpokeOrClosed(fd) ? 0 : 1;
    return open;
  }
  void Close() {
    for (int fd : fds_) ::close(fd);
    fds_.clear();
  }

 private:
  std::vector<int> fds_;
};

// The slow crowd: object uploads dripping one byte per interval, each reopened when the server
// ends it (a 408 or a close), on one thread.
class SlowCrowd {
 public:
  SlowCrowd(uint16_t port, const ConnectionsBenchOptions& o) : port_(port), o_(o) {
    const std::string auth = AuthorizationFromEnvironment();
    auth_line_ = auth.empty() ? "" : "Authorization: " + auth + "\r\n";
  }
  ~SlowCrowd() { Stop(); }

  absl::Status Start() {
    if (o_.slow_connections == 0) return absl::OkStatus();  // no crowd, no thread
    slots_.resize(static_cast<size_t>(o_.slow_connections));
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (!Reopen(i)) {
        Stop();
        return absl::UnavailableError("slow connection: " + std::string(std::strerror(errno)));
      }
    }
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    for (Slot& s : slots_) {
      if (s.fd >= 0) ::close(s.fd);
      s.fd = -1;
    }
  }
  uint64_t cuts() const { return cuts_.load(); }
  uint64_t bytes() const { return bytes_.load(); }

 private:
  struct Slot {
    int fd = -1;
    uint64_t sent = 0;  // body bytes so far
    uint64_t upload = 0;
  };

  bool Reopen(size_t i) {
    Slot& s = slots_[i];
    if (s.fd >= 0) ::close(s.fd);
    s.fd = Connect(port_);
    if (s.fd < 0) return false;
    s.sent = 0;
    const std::string head = "PUT /v1/buckets/" + std::string(kBucket) + "/objects/drip-" +
                             std::to_string(i) + "-" + std::to_string(s.upload++) +
                             " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) + "\r\n" +
                             auth_line_ + "Content-Type: application/octet-stream\r\n" +
                             "Content-Length: " + std::to_string(o_.slow_upload_bytes) + "\r\n\r\n";
    return ::send(s.fd, head.data(), head.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(head.size());
  }

  void Loop() {
    // One byte per connection per interval, spread evenly over the interval.
    const auto step = std::chrono::microseconds(
        std::max<int64_t>(1, int64_t{o_.drip_interval_ms} * 1000 /
                                 std::max<int64_t>(1, static_cast<int64_t>(slots_.size()))));
    auto next = SteadyClock::now();
    size_t i = 0;
    while (!stop_.load()) {
      next += step;
      std::this_thread::sleep_until(next);
      const size_t at = i;
      i = (i + 1) % slots_.size();
      Slot& s = slots_[at];
      const bool ended = s.fd < 0 || PeerSpokeOrClosed(s.fd) ||
                         s.sent + 1 >= o_.slow_upload_bytes ||
                         ::send(s.fd, "x", 1, MSG_NOSIGNAL) != 1;
      if (ended) {
        ++cuts_;
        (void)Reopen(at);
        continue;
      }
      ++s.sent;
      ++bytes_;
    }
  }

  const uint16_t port_;
  const ConnectionsBenchOptions& o_;
  std::string auth_line_;
  std::vector<Slot> slots_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> cuts_{0};
  std::atomic<uint64_t> bytes_{0};
  std::thread thread_;
};

// The normal client: warm-up, then `requests` GETs on one arrival schedule.
struct ClientResult {
  OpStats stats;
  uint64_t late = 0;
  uint64_t unsent = 0;
  double seconds = 0;
};

ClientResult RunClient(const http::Endpoint& ep, const ConnectionsBenchOptions& o) {
  const int n = std::max(1, o.client_connections);
  std::vector<http::Client> clients;
  for (int c = 0; c < n; ++c) clients.push_back(NewClient(ep.host, ep.port, o.timeout_ms));
  // Warm-up, untimed, on every connection (opens them, fills the caches).
  {
    std::vector<std::thread> threads;
    for (int c = 0; c < n; ++c) {
      threads.emplace_back([&, c] {
        for (int i = 0; i < o.warmup_requests; ++i) (void)clients[c].Request("GET", kObject);
      });
    }
    for (auto& t : threads) t.join();
  }
  const auto start = SteadyClock::now() + std::chrono::milliseconds(50);
  const auto end = start + std::chrono::duration_cast<SteadyClock::duration>(
                               std::chrono::duration<double>(o.requests / o.rate));
  ArrivalSchedule schedule(start, end, o.rate);
  std::vector<ClientResult> parts(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int c = 0; c < n; ++c) {
    threads.emplace_back([&, c] {
      if (o.client_slice_us > 0) ThreadPool::SetCurrentThreadSlice(o.client_slice_us);
      ClientResult& mine = parts[static_cast<size_t>(c)];
      for (;;) {
        SteadyClock::time_point due;
        const ArrivalSchedule::Take take = schedule.Next(&due);
        if (take == ArrivalSchedule::Take::kDone) break;
        if (take == ArrivalSchedule::Take::kUnsent) {
          ++mine.unsent;
          continue;
        }
        if (SleepUntilDue(due)) ++mine.late;
        auto r = clients[c].Request("GET", kObject);
        const int status = r.ok() ? r->status : 0;
        // A 200 with the wrong number of bytes is an error too (status 1: not an HTTP code).
        const bool whole = status != 200 || r->body.size() == static_cast<size_t>(o.object_bytes);
        mine.stats.Add(whole ? status : 1, MicrosSince(due));
      }
    });
  }
  for (auto& t : threads) t.join();
  ClientResult out;
  for (const ClientResult& p : parts) {
    out.stats.Merge(p.stats);
    out.late += p.late;
    out.unsent += p.unsent;
  }
  out.seconds = SecondsSince(start);
  return out;
}

class Server {
 public:
  explicit Server(const ConnectionsBenchOptions& o) : o_(o) {}
  ~Server() { (void)Stop(); }

  absl::Status Start(std::ostream& out) {
    if (!o_.server.empty()) {
      STRATA_ASSIGN_OR_RETURN(endpoint_, http::ParseUrl(o_.server));
      out << "server: " << o_.server << " (running; its CPU and descriptors are not measured)\n";
      return absl::OkStatus();
    }
    STRATA_ASSIGN_OR_RETURN(dir_, WorkDir::Create(o_.work_dir, o_.keep_dirs, "strata-conn"));
    STRATA_ASSIGN_OR_RETURN(int port, FreeLoopbackPort());
    endpoint_ = http::Endpoint{"127.0.0.1", static_cast<uint16_t>(port)};
    const std::string log = dir_->path() + "/server.log";
    ChildSpec spec;
    spec.argv = {o_.strata_binary,     "serve",       "--data-dir", dir_->path() + "/d", "--port",
                 std::to_string(port), "--log-level", "warn"};
    const bool has_limit = std::find(o_.strata_args.begin(), o_.strata_args.end(),
                                     "--max-connections") != o_.strata_args.end();
    if (!has_limit) {
      // The crowd, the client and room for the bench's own set-up requests.
      spec.argv.push_back("--max-connections");
      spec.argv.push_back(
          std::to_string(o_.idle_connections + o_.slow_connections + o_.client_connections + 64));
    }
    spec.argv.insert(spec.argv.end(), o_.strata_args.begin(), o_.strata_args.end());
    for (char** e = environ; *e != nullptr; ++e) spec.env.emplace_back(*e);
    spec.log_path = log;
    STRATA_ASSIGN_OR_RETURN(child_, ChildProcess::Start(spec));
    STRATA_RETURN_IF_ERROR(WaitUntilReady(child_.get(), "the server", log, kStartTimeoutS, [&] {
      http::Client c = NewClient(endpoint_.host, endpoint_.port, 1000);
      auto r = c.Request("GET", "/healthz");
      return r.ok() && r->status == 200;
    }));
    std::string args;
    for (const std::string& a : spec.argv) args += (args.empty() ? "" : " ") + a;
    out << "server: " << args << "\n";
    return absl::OkStatus();
  }

  absl::Status Stop() {
    if (!child_) return absl::OkStatus();
    absl::Status s = child_->Stop(SIGTERM, kStopTimeoutS);
    child_.reset();
    return s;
  }

  const http::Endpoint& endpoint() const { return endpoint_; }
  pid_t pid() const { return child_ ? child_->pid() : -1; }
  std::string dir() const { return dir_ ? dir_->path() : "."; }

 private:
  const ConnectionsBenchOptions& o_;
  http::Endpoint endpoint_;
  std::unique_ptr<WorkDir> dir_;
  std::unique_ptr<ChildProcess> child_;
};

std::vector<std::pair<double, uint64_t>> ScrapeObjectGets(const Server& server,
                                                          const ConnectionsBenchOptions& o);

// Runs the normal client with CPU accounting around it.
ConnectionsPhase MeasurePhase(const std::string& name, const Server& server,
                              const ConnectionsBenchOptions& o) {
  ConnectionsPhase phase;
  phase.name = name;
  const auto gets0 = ScrapeObjectGets(server, o);
  const MachineCpu machine0 = MachineCpuSeconds();
  const double self0 = SelfCpuSeconds();
  const absl::StatusOr<double> server0 =
      server.pid() > 0 ? ProcessTreeCpuSeconds(server.pid()) : absl::StatusOr<double>(-1.0);
  ClientResult r = RunClient(server.endpoint(), o);
  const MachineCpu machine1 = MachineCpuSeconds();
  phase.bench_cpu_s = SelfCpuSeconds() - self0;
  if (server.pid() > 0) {
    absl::StatusOr<double> server1 = ProcessTreeCpuSeconds(server.pid());
    if (server0.ok() && server1.ok()) phase.server_cpu_s = *server1 - *server0;
    phase.server_fds = OpenDescriptors(server.pid());
    absl::StatusOr<uint64_t> pss = ProcessTreePssBytes(server.pid());
    if (pss.ok()) phase.server_pss_bytes = static_cast<int64_t>(*pss);
  }
  phase.other_cpu_s = std::max(
      0.0, (machine1.busy - machine0.busy) - phase.bench_cpu_s - std::max(0.0, phase.server_cpu_s));
  phase.client = MakeOpReport(name, r.stats, r.seconds);
  // Includes the warm-up GETs: the same requests, a few percent more of them.
  phase.server_p99_ms = internal::QuantileMs(gets0, ScrapeObjectGets(server, o), 0.99);
  phase.late = r.late;
  phase.unsent = r.unsent;
  phase.seconds = r.seconds;
  return phase;
}

std::vector<std::pair<double, uint64_t>> ScrapeObjectGets(const Server& server,
                                                          const ConnectionsBenchOptions& o) {
  http::Client c = NewClient(server.endpoint().host, server.endpoint().port, o.timeout_ms);
  auto r = c.Request("GET", "/metrics");
  if (!r.ok() || r->status != 200) return {};
  return internal::ObjectGetBuckets(r->body);
}

void PrintPhase(const ConnectionsPhase& p, std::ostream& out) {
  out << "  " << p.name << (p.name.size() < 6 ? std::string(6 - p.name.size(), ' ') : "")
      << "  p50 " << Fmt("%6.2f", p.client.p50_ms) << "  p99 " << Fmt("%6.2f", p.client.p99_ms)
      << "  p99.9 " << Fmt("%6.2f", p.client.p999_ms) << "  max " << Fmt("%7.2f", p.client.max_ms)
      << " ms (server side p99 "
      << (p.server_p99_ms < 0 ? std::string("-") : Fmt("%.2f", p.server_p99_ms)) << ");  "
      << p.client.count << " GETs, " << p.client.errors << " errors, " << p.late << " late, "
      << p.unsent << " unsent;  CPU s: server "
      << (p.server_cpu_s < 0 ? std::string("-") : Fmt("%.2f", p.server_cpu_s)) << ", bench "
      << Fmt("%.2f", p.bench_cpu_s) << ", other " << Fmt("%.2f", p.other_cpu_s) << " ("
      << Fmt("%.0f", p.seconds > 0 ? 100 * p.other_cpu_s / p.seconds : 0) << "% of a core)";
  if (p.server_fds >= 0) out << ";  server fds " << p.server_fds;
  if (p.server_pss_bytes >= 0) {
    out << ", PSS " << MiB(static_cast<uint64_t>(p.server_pss_bytes)) << " MiB";
  }
  if (p.name == "loaded") {
    out << ";  idle open " << p.idle_open << ", slow cuts " << p.slow_cuts << ", slow bytes "
        << p.slow_bytes;
  }
  out << "\n";
}

}  // namespace

namespace internal {

std::vector<std::pair<double, uint64_t>> ObjectGetBuckets(std::string_view metrics) {
  constexpr std::string_view kPrefix =
      "strata_http_request_seconds_bucket{route=\"/v1/buckets/{bucket}/objects/{key}\","
      "method=\"GET\",le=\"";
  std::vector<std::pair<double, uint64_t>> out;
  for (size_t pos = 0; pos < metrics.size();) {
    size_t end = metrics.find('\n', pos);
    if (end == std::string_view::npos) end = metrics.size();
    const std::string_view line = metrics.substr(pos, end - pos);
    pos = end + 1;
    if (line.substr(0, kPrefix.size()) != kPrefix) continue;
    const std::string_view rest = line.substr(kPrefix.size());
    const size_t quote = rest.find('"');
    const size_t space = rest.rfind(' ');
    if (quote == std::string_view::npos || space == std::string_view::npos) continue;
    const std::string le(rest.substr(0, quote));
    const double bound =
        le == "+Inf" ? std::numeric_limits<double>::infinity() : std::strtod(le.c_str(), nullptr);
    out.emplace_back(bound,
                     std::strtoull(std::string(rest.substr(space + 1)).c_str(), nullptr, 10));
  }
  return out;
}

double QuantileMs(const std::vector<std::pair<double, uint64_t>>& before,
                  const std::vector<std::pair<double, uint64_t>>& after, double q) {
  if (after.empty() || (!before.empty() && before.size() != after.size())) return -1;
  auto count = [&](size_t i) {
    return after[i].second - (before.empty() ? 0 : std::min(before[i].second, after[i].second));
  };
  const uint64_t total = count(after.size() - 1);
  if (total == 0) return -1;
  const double rank = q * static_cast<double>(total);
  uint64_t below = 0;
  double lower = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    const uint64_t at = count(i);
    if (static_cast<double>(at) >= rank) {
      if (std::isinf(after[i].first)) return lower * 1000;
      const double in_bucket = static_cast<double>(at - below);
      const double frac = in_bucket > 0 ? (rank - static_cast<double>(below)) / in_bucket : 1;
      return (lower + frac * (after[i].first - lower)) * 1000;
    }
    below = at;
    lower = after[i].first;
  }
  return lower * 1000;
}

}  // namespace internal

absl::StatusOr<ConnectionsReport> RunConnectionsBench(const ConnectionsBenchOptions& o,
                                                      std::ostream& out) {
  if (o.requests < 1 || o.rate <= 0 || o.runs < 1 || o.idle_connections < 0 ||
      o.slow_connections < 0 || o.client_connections < 1 || o.drip_interval_ms < 1) {
    return absl::InvalidArgumentError(
        "options: requests, rate, runs and client connections must be positive, the crowd "
        "not negative, the drip interval at least 1 ms");
  }
  const uint64_t fd_limit = RaiseOwnFileLimit();
  const uint64_t needed =
      static_cast<uint64_t>(o.idle_connections) + o.slow_connections + o.client_connections + 64;
  if (fd_limit < needed) {
    return absl::FailedPreconditionError(
        "the bench's open-file limit is " + std::to_string(fd_limit) + ", it needs about " +
        std::to_string(needed) + " (raise the hard limit: ulimit -Hn)");
  }
  Server server(o);
  STRATA_RETURN_IF_ERROR(server.Start(out));
  out << "command: " << CommandLine() << "\n"
      << "machine: " << Machine(server.dir()) << "\n"
      << "client: " << o.requests << " GETs of a " << o.object_bytes << "-byte object at " << o.rate
      << "/s per phase, open loop on " << o.client_connections
      << " keep-alive connections (latency from the intended send time), after "
      << o.warmup_requests << " untimed GETs each\n"
      << "loaded: + " << o.idle_connections << " idle connections (never send a byte) + "
      << o.slow_connections << " object uploads announcing " << o.slow_upload_bytes
      << " bytes and dripping 1 byte every " << o.drip_interval_ms
      << " ms (reopened when the server ends one), opened " << o.settle_s
      << " s before measuring\n";

  const http::Endpoint& ep = server.endpoint();
  {
    http::Client c = NewClient(ep.host, ep.port, o.timeout_ms);
    auto r = c.Request("PUT", std::string("/v1/buckets/") + kBucket, "{}");
    if (!r.ok() || r->status != 200) return absl::InternalError("PUT bucket: " + HttpError(r));
    r = c.Request("PUT", kObject, std::string(static_cast<size_t>(o.object_bytes), 'o'),
                  "application/octet-stream");
    if (!r.ok() || r->status != 200) return absl::InternalError("PUT object: " + HttpError(r));
  }

  ConnectionsReport report;
  bool crowd_ok = true;
  for (int run = 0; run < o.runs; ++run) {
    ConnectionsRun result;
    result.quiet = MeasurePhase("quiet", server, o);
    {
      IdleCrowd idle;
      absl::Status opened = idle.Open(ep.port, o.idle_connections);
      SlowCrowd slow(ep.port, o);
      if (opened.ok()) opened = slow.Start();
      if (!opened.ok()) return opened;
      std::this_thread::sleep_for(std::chrono::duration<double>(o.settle_s));
      const uint64_t cuts0 = slow.cuts();
      const uint64_t bytes0 = slow.bytes();
      result.loaded = MeasurePhase("loaded", server, o);
      result.loaded.slow_cuts = slow.cuts() - cuts0;
      result.loaded.slow_bytes = slow.bytes() - bytes0;
      result.loaded.idle_open = idle.StillOpen();
      if (result.loaded.idle_open < o.idle_connections) crowd_ok = false;
      slow.Stop();
      idle.Close();
    }
    result.p99_ratio = result.quiet.client.p99_ms > 0
                           ? result.loaded.client.p99_ms / result.quiet.client.p99_ms
                           : 0;
    out << "run " << run + 1 << ":\n";
    PrintPhase(result.quiet, out);
    PrintPhase(result.loaded, out);
    out << "  p99 loaded / quiet: " << Fmt("%.2f", result.p99_ratio) << "\n";
    out.flush();
    report.runs.push_back(std::move(result));
    // Let the server finish closing the crowd before the next quiet phase.
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::vector<double> ratios;
  bool errors = false;
  for (const ConnectionsRun& r : report.runs) {
    ratios.push_back(r.p99_ratio);
    errors = errors || r.quiet.client.errors > 0 || r.loaded.client.errors > 0;
  }
  std::sort(ratios.begin(), ratios.end());
  report.median_ratio = ratios[ratios.size() / 2];
  report.goal_met = report.median_ratio <= o.goal_ratio;
  report.passed = !errors && crowd_ok;
  out << "median p99 ratio over " << report.runs.size()
      << " runs: " << Fmt("%.2f", report.median_ratio) << " (goal <= " << Fmt("%.1f", o.goal_ratio)
      << "): " << (report.goal_met ? "met" : "NOT met") << "\n";
  if (!crowd_ok) out << "WARNING: idle connections were closed by the server during a phase\n";
  for (const ConnectionsRun& r : report.runs) {
    for (const ConnectionsPhase* p : {&r.quiet, &r.loaded}) {
      if (p->seconds > 0 && p->other_cpu_s / p->seconds > kBusyMachineShare) {
        out << "WARNING: other processes used " << Fmt("%.0f", 100 * p->other_cpu_s / p->seconds)
            << "% of a core during a " << p->name << " phase: its figures are noisy\n";
      }
    }
  }
  STRATA_RETURN_IF_ERROR(server.Stop());
  return report;
}

}  // namespace strata::bench
