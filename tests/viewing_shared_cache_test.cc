// The viewing service with its history cache in a real memcached (the distributed
// deployment's shared cache): two services over one row store and the cluster's memcached
// (fixture `cluster`), and one whose private memcached is killed mid-test.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "strata/store/cluster_env.h"
#include "strata/store/memcached/memcached_cache.h"
#include "strata/viewing/shared_cache_scenarios.h"

namespace strata::viewing {
namespace {

using testing::CounterValue;
using testing::kSharedT0;
using testing::SharedPlay;
using testing::TwoServers;

std::unique_ptr<store::MemcachedCache> ClusterCache() {
  store::MemcachedCacheOptions o;
  o.servers = {*store::ClusterSetting("STRATA_MEMCACHED")};
  auto c = store::MemcachedCache::Open(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

#define SKIP_OR_FAIL_WITHOUT_CLUSTER()                                        \
  do {                                                                        \
    const std::string why = store::ClusterMissing("STRATA_MEMCACHED");        \
    if (!why.empty()) {                                                       \
      if (std::getenv("STRATA_CLUSTER_ENV") == nullptr) GTEST_SKIP() << why;  \
      FAIL() << why;                                                          \
    }                                                                         \
  } while (0)

TEST(ViewingSharedCache, TwoServicesOverOneMemcachedNeverReadStale) {
  SKIP_OR_FAIL_WITHOUT_CLUSTER();
  auto cache = ClusterCache();
  ASSERT_TRUE(cache);
  testing::WriteOnOneReadOnTheOther(cache.get());
}

TEST(ViewingSharedCache, RacingFillIsNeverServedFromMemcached) {
  SKIP_OR_FAIL_WITHOUT_CLUSTER();
  auto cache = ClusterCache();
  ASSERT_TRUE(cache);
  testing::RacingFillIsNeverServed(cache.get());
}

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// A memcached of this test's own on a free port (so killing it touches no other test).
class PrivateMemcached {
 public:
  ~PrivateMemcached() { Kill(); }
  bool Start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = FreePort();
      if (port_ == 0) continue;
      const std::string port = std::to_string(port_);
      pid_ = fork();
      if (pid_ < 0) return false;
      if (pid_ == 0) {
        execlp("memcached", "memcached", "-l", "127.0.0.1", "-p", port.c_str(), "-U", "0",
               "-m", "16", "-t", "1", "-u", "root", static_cast<char*>(nullptr));
        _exit(127);
      }
      for (int i = 0; i < 400; ++i) {  // up to ~10 s on a loaded machine
        store::MemcachedCacheOptions o;
        o.servers = {address()};
        o.connections = 1;
        MetricsRegistry probe_metrics;
        o.metrics = &probe_metrics;
        auto c = store::MemcachedCache::Open(o);
        if (c.ok() && absl::IsNotFound((*c)->Get("probe").status())) return true;
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: port taken
          pid_ = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
      Kill();
    }
    return false;
  }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// memcached dies: reads are answered from the row store, correctly, and the errors are
// counted; writes go on (they touch only the row store).
TEST(ViewingSharedCache, MemcachedKilledReadsComeFromTheRowStore) {
  PrivateMemcached server;
  if (!server.Start()) GTEST_SKIP() << "could not start memcached (apt-get install memcached)";
  MetricsRegistry cache_metrics;
  store::MemcachedCacheOptions o;
  o.servers = {server.address()};
  o.metrics = &cache_metrics;
  o.connect_timeout_ms = 200;
  o.io_timeout_ms = 200;
  auto cache = store::MemcachedCache::Open(o);
  ASSERT_TRUE(cache.ok()) << cache.status();
  TwoServers t;
  ASSERT_NO_FATAL_FAILURE(t.Open(cache->get()));
  const MemberId m = 31337;
  const Millis s1 = kSharedT0 - 60'000;
  TwoServers::Ingest(*t.a, {SharedPlay(m, s1, "one", s1 + 1'000)});
  ASSERT_EQ(TwoServers::Read(*t.a, m).size(), 1u);  // fills
  ASSERT_EQ(TwoServers::Read(*t.b, m).size(), 1u);  // hits
  EXPECT_EQ(CounterValue(t.metrics_b, "strata_viewing_shared_cache_hits_total"), 1u);
  EXPECT_EQ(CounterValue(t.metrics_a, "strata_viewing_shared_cache_errors_total"), 0u);

  server.Kill();
  auto seen = TwoServers::Read(*t.b, m);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].position_ms, 1'000);
  TwoServers::Ingest(*t.a, {SharedPlay(m, s1, "one", s1 + 7'000),
                            SharedPlay(m, s1 + 2'000, "two", s1 + 3'000, 2)});
  seen = TwoServers::Read(*t.b, m);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].session, "two");
  EXPECT_EQ(seen[1].position_ms, 7'000);
  // Each read while memcached was down: a get that failed (and a fill that failed).
  EXPECT_GE(CounterValue(t.metrics_b, "strata_viewing_shared_cache_errors_total"), 2u);
  EXPECT_EQ(CounterValue(t.metrics_b, "strata_viewing_shared_cache_hits_total"), 1u);
}

}  // namespace
}  // namespace strata::viewing
