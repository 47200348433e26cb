// MemcachedCache against real memcached servers, started on 127.0.0.1 at free ports for
// each test and killed after it. Every test skips, saying why, when the memcached binary is
// not installed (apt-get install memcached).
#include "strata/store/memcached/memcached_cache.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "strata/store/cache_conformance.h"

namespace strata::store {
namespace {

using ::testing::HasSubstr;

// The memcached binary: $MEMCACHED if set, else the first `memcached` on $PATH, else "".
std::string MemcachedBinary() {
  if (const char* env = std::getenv("MEMCACHED"); env != nullptr && access(env, X_OK) == 0) {
    return env;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/usr/local/bin";
  size_t begin = 0;
  while (begin <= dirs.size()) {
    size_t end = dirs.find(':', begin);
    if (end == std::string::npos) end = dirs.size();
    const std::string candidate = dirs.substr(begin, end - begin) + "/memcached";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    begin = end + 1;
  }
  return "";
}

std::string SkipWithoutMemcached() {
  return MemcachedBinary().empty()
             ? "memcached binary not found on PATH (apt-get install memcached, or set "
               "MEMCACHED=/path/to/memcached)"
             : "";
}

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool Connectable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// One memcached process on 127.0.0.1, killed (and reaped) on destruction.
class MemcachedServer {
 public:
  MemcachedServer() = default;
  ~MemcachedServer() { Stop(); }
  MemcachedServer(const MemcachedServer&) = delete;
  MemcachedServer& operator=(const MemcachedServer&) = delete;

  // Starts the server at a free port (retrying if another process takes the port first).
  bool Start() {
    const std::string binary = MemcachedBinary();
    if (binary.empty()) return false;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = FreePort();
      if (port_ == 0) continue;
      const std::string port = std::to_string(port_);
      pid_ = fork();
      if (pid_ < 0) return false;
      if (pid_ == 0) {
        // 64 MiB of memory, TCP only, on loopback; -u is required when running as root.
        execl(binary.c_str(), binary.c_str(), "-l", "127.0.0.1", "-p", port.c_str(), "-U", "0",
              "-m", "64", "-t", "2", "-u", "root", static_cast<char*>(nullptr));
        _exit(127);
      }
      for (int i = 0; i < 400; ++i) {  // up to ~10 s for a loaded machine
        if (Connectable(port_)) return true;
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: port taken, or a bad flag
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
      Stop();
    }
    return false;
  }

  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

std::unique_ptr<MemcachedCache> OpenCache(const std::vector<std::string>& servers,
                                          MetricsRegistry* metrics = nullptr) {
  MemcachedCacheOptions options;
  options.servers = servers;
  options.metrics = metrics;
  options.name = "test";
  absl::StatusOr<std::unique_ptr<MemcachedCache>> cache = MemcachedCache::Open(options);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? std::move(*cache) : nullptr;
}

// What the conformance suite gets: a cache over two fresh servers, which it owns.
class CacheOverServers final : public Cache {
 public:
  static std::unique_ptr<Cache> Create(int servers) {
    auto self = std::unique_ptr<CacheOverServers>(new CacheOverServers());
    std::vector<std::string> addresses;
    for (int i = 0; i < servers; ++i) {
      self->servers_.push_back(std::make_unique<MemcachedServer>());
      if (!self->servers_.back()->Start()) {
        ADD_FAILURE() << "cannot start memcached";
        return nullptr;
      }
      addresses.push_back(self->servers_.back()->address());
    }
    self->cache_ = OpenCache(addresses, &self->metrics_);
    if (self->cache_ == nullptr) return nullptr;
    return self;
  }
  ~CacheOverServers() override { cache_.reset(); }  // disconnect before the servers die

  absl::StatusOr<std::string> Get(std::string_view key) override { return cache_->Get(key); }
  absl::StatusOr<CacheItem> Gets(std::string_view key) override { return cache_->Gets(key); }
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      std::span<const std::string> keys) override {
    return cache_->MultiGet(keys);
  }
  absl::Status Set(std::string_view key, std::string_view value, Millis ttl_ms) override {
    return cache_->Set(key, value, ttl_ms);
  }
  absl::Status Add(std::string_view key, std::string_view value, Millis ttl_ms) override {
    return cache_->Add(key, value, ttl_ms);
  }
  absl::Status CompareAndSet(std::string_view key, std::string_view value, uint64_t cas,
                             Millis ttl_ms) override {
    return cache_->CompareAndSet(key, value, cas, ttl_ms);
  }
  absl::Status Delete(std::string_view key) override { return cache_->Delete(key); }

 private:
  CacheOverServers() = default;
  MetricsRegistry metrics_;
  std::vector<std::unique_ptr<MemcachedServer>> servers_;  // before cache_: outlive it
  std::unique_ptr<MemcachedCache> cache_;
};

// Expiry follows memcached's wall clock: the suite sleeps instead of advancing its clock.
INSTANTIATE_CACHE_CONFORMANCE(
    MemcachedTwoServers, true, [](ManualClock*) { return CacheOverServers::Create(2); },
    SkipWithoutMemcached);

class MemcachedCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = SkipWithoutMemcached();
    if (!reason.empty()) GTEST_SKIP() << reason;
  }
};

TEST_F(MemcachedCacheTest, OpenRejectsBadOptions) {
  auto open = [](std::vector<std::string> servers, int connections = 8) {
    MemcachedCacheOptions options;
    options.servers = std::move(servers);
    options.connections = connections;
    return MemcachedCache::Open(options).status();
  };
  EXPECT_THAT(open({}).ToString(), HasSubstr("servers:"));
  EXPECT_THAT(open({"localhost"}).ToString(), HasSubstr("servers[0]:"));
  EXPECT_THAT(open({"127.0.0.1:11211", "h:0"}).ToString(), HasSubstr("servers[1]:"));
  EXPECT_THAT(open({"h:99999"}).ToString(), HasSubstr("servers[0]:"));
  EXPECT_THAT(open({"h:12a"}).ToString(), HasSubstr("servers[0]:"));
  EXPECT_THAT(open({"127.0.0.1:11211"}, 0).ToString(), HasSubstr("connections:"));
  EXPECT_TRUE(open({"127.0.0.1:11211"}).ok());
}

// Consistent hashing: each key lives on exactly one server, keys spread over all of them,
// and dropping a server leaves every other server's keys where they were (modulo hashing
// would move most of them).
TEST_F(MemcachedCacheTest, KetamaSpreadsKeysAndKeepsThemWhenAServerLeaves) {
  MemcachedServer servers[3];
  for (MemcachedServer& s : servers) ASSERT_TRUE(s.Start());
  std::unique_ptr<MemcachedCache> all =
      OpenCache({servers[0].address(), servers[1].address(), servers[2].address()});
  ASSERT_NE(all, nullptr);
  constexpr int kKeys = 300;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back("member:" + std::to_string(i));
    ASSERT_TRUE(all->Set(keys.back(), "v" + std::to_string(i)).ok());
  }
  std::vector<int> home(kKeys, -1);
  for (int s = 0; s < 3; ++s) {
    std::unique_ptr<MemcachedCache> one = OpenCache({servers[s].address()});
    ASSERT_NE(one, nullptr);
    absl::StatusOr<std::vector<std::optional<std::string>>> got = one->MultiGet(keys);
    ASSERT_TRUE(got.ok()) << got.status();
    int held = 0;
    for (int i = 0; i < kKeys; ++i) {
      if (!(*got)[i].has_value()) continue;
      EXPECT_EQ(home[i], -1) << keys[i] << " is on two servers";
      home[i] = s;
      ++held;
    }
    EXPECT_GT(held, kKeys / 10) << "server " << s << " holds too few keys";
  }
  for (int i = 0; i < kKeys; ++i) EXPECT_NE(home[i], -1) << keys[i] << " is on no server";

  std::unique_ptr<MemcachedCache> two = OpenCache({servers[0].address(), servers[1].address()});
  ASSERT_NE(two, nullptr);
  absl::StatusOr<std::vector<std::optional<std::string>>> got = two->MultiGet(keys);
  ASSERT_TRUE(got.ok()) << got.status();
  int kept = 0, moved = 0;
  for (int i = 0; i < kKeys; ++i) {
    if (home[i] == 2) continue;
    if ((*got)[i].has_value()) {
      ++kept;
    } else {
      ++moved;
    }
  }
  EXPECT_EQ(moved, 0) << "keys of the remaining servers must not move (kept " << kept << ")";
}

TEST_F(MemcachedCacheTest, UnreachableServerIsUnavailableNotAMiss) {
  const int port = FreePort();  // nothing listens there
  ASSERT_NE(port, 0);
  std::unique_ptr<MemcachedCache> cache = OpenCache({"127.0.0.1:" + std::to_string(port)});
  ASSERT_NE(cache, nullptr);
  absl::Status set = cache->Set("k", "v");
  EXPECT_TRUE(absl::IsUnavailable(set)) << set;
  absl::StatusOr<std::string> get = cache->Get("k");
  EXPECT_TRUE(absl::IsUnavailable(get.status())) << get.status();
  absl::Status del = cache->Delete("k");
  EXPECT_TRUE(absl::IsUnavailable(del)) << del;
}

TEST_F(MemcachedCacheTest, CountsHitsAndMisses) {
  MemcachedServer server;
  ASSERT_TRUE(server.Start());
  MetricsRegistry metrics;
  std::unique_ptr<MemcachedCache> cache = OpenCache({server.address()}, &metrics);
  ASSERT_NE(cache, nullptr);
  ASSERT_TRUE(cache->Set("a", "1").ok());
  ASSERT_TRUE(cache->Get("a").ok());
  EXPECT_FALSE(cache->Get("b").ok());
  ASSERT_TRUE(cache->MultiGet(std::vector<std::string>{"a", "b", "a"}).ok());
  const std::string text = metrics.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("strata_cache_hits_total{cache=\"test\"} 3"));
  EXPECT_THAT(text, HasSubstr("strata_cache_misses_total{cache=\"test\"} 2"));
}

}  // namespace
}  // namespace strata::store
