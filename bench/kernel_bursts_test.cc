#include "bench/kernel_bursts.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"

namespace strata::bench {
namespace {

using std::chrono::milliseconds;

TEST(KernelBurstsTest, BusySamplesCloserThanTheGapFormOneBurst) {
  const auto t0 = SteadyClock::now();
  auto at = [&](int ms) { return t0 + milliseconds(ms); };
  const std::vector<SteadyClock::time_point> busy = {at(0),   at(4),   at(8),  at(27),
                                                     at(100), at(119), at(300)};
  const std::vector<uint64_t> ns = {1, 2, 3, 4, 10, 20, 100};
  const auto bursts = GroupBursts(busy, ns, milliseconds(20));
  ASSERT_EQ(bursts.size(), 3u);
  EXPECT_EQ(bursts[0].start, at(0));
  EXPECT_EQ(bursts[0].end, at(27));  // 19 ms after 8: joins
  EXPECT_EQ(bursts[0].cpu_ns, 10u);
  EXPECT_EQ(bursts[1].start, at(100));
  EXPECT_EQ(bursts[1].end, at(119));
  EXPECT_EQ(bursts[1].cpu_ns, 30u);
  EXPECT_EQ(bursts[2].start, at(300));
  EXPECT_EQ(bursts[2].end, at(300));
  EXPECT_TRUE(GroupBursts({}, {}, milliseconds(20)).empty());
}

TEST(KernelBurstsTest, AnIntervalOverlapsABurstWidenedByTheMargin) {
  const auto t0 = SteadyClock::now();
  auto at = [&](int ms) { return t0 + milliseconds(ms); };
  const std::vector<KernelBurst> bursts = {{at(100), at(120), 1}, {at(600), at(610), 1}};
  const milliseconds m(10);
  EXPECT_FALSE(OverlapsBurst(bursts, at(0), at(89), m));    // ends before 100 - 10
  EXPECT_TRUE(OverlapsBurst(bursts, at(0), at(90), m));     // touches the widened start
  EXPECT_TRUE(OverlapsBurst(bursts, at(105), at(106), m));  // inside
  EXPECT_TRUE(OverlapsBurst(bursts, at(50), at(700), m));   // spans both
  EXPECT_TRUE(OverlapsBurst(bursts, at(130), at(131), m));  // within the widened end
  EXPECT_FALSE(OverlapsBurst(bursts, at(131), at(400), m));
  EXPECT_TRUE(OverlapsBurst(bursts, at(400), at(595), m));  // reaches the second's margin
  EXPECT_FALSE(OverlapsBurst(bursts, at(621), at(900), m));
  EXPECT_FALSE(OverlapsBurst({}, at(0), at(900), m));
}

TEST(KernelBurstsTest, ShareCountsTheSlowRequestsThatMetABurst) {
  const auto t0 = SteadyClock::now();
  auto at = [&](int ms) { return t0 + milliseconds(ms); };
  const std::vector<KernelBurst> bursts = {{at(1000), at(1020), 5'000'000}};
  std::vector<TimedRequest> requests;
  // 200 quick requests far from the burst (1 ms each), 3 slow ones inside it (15 ms), one
  // slow one far from it (12 ms), and a failed one inside it (ignored).
  for (int i = 0; i < 200; ++i) requests.push_back({at(2000 + i), at(2001 + i), true});
  for (int i = 0; i < 3; ++i) requests.push_back({at(1000 + i), at(1015 + i), true});
  requests.push_back({at(5000), at(5012), true});
  requests.push_back({at(1005), at(1006), false});
  const BurstShare share = ShareOfBursts(bursts, 5'000'000, requests, /*p99_ms=*/10);
  EXPECT_TRUE(share.watched);
  EXPECT_EQ(share.bursts, 1u);
  EXPECT_DOUBLE_EQ(share.cpu_s, 0.005);
  EXPECT_EQ(share.requests, 204u);
  EXPECT_EQ(share.in_bursts, 3u);
  EXPECT_EQ(share.slow, 4u);
  EXPECT_EQ(share.slow_in_bursts, 3u);
  // The others: 200 at 1 ms and one at 12 ms.
  EXPECT_NEAR(share.p99_outside_ms, 1.0, 0.1);
  EXPECT_NEAR(share.p999_outside_ms, 12.0, 0.5);
  EXPECT_NEAR(share.p99_inside_ms, 15.0, 0.5);  // the three slow ones
  const std::string line = DescribeShare(share, "reads");
  EXPECT_NE(line.find("ran in 1 bursts (0.01 s of CPU); reads overlapping one: 3 of 204 "
                      "(their p99 15."),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("ms), 3 of the 4 at or over p99; the other reads' p99 / p99.9 1.0"),
            std::string::npos)
      << line;
}

TEST(KernelBurstsTest, FindsThisProcessByItsName) {
  std::ifstream comm("/proc/self/comm");
  std::string name;
  ASSERT_TRUE(std::getline(comm, name));
  const auto pids = FindThreadsNamed(name.substr(0, 6));
  EXPECT_NE(std::find(pids.begin(), pids.end(), getpid()), pids.end());
  EXPECT_TRUE(FindThreadsNamed("no-such-thread-name-here").empty());
}

// A thread of this process that alternates 30 ms of CPU with 150 ms asleep, three times,
// watched through its /proc/<tid>/schedstat as a kernel thread would be.
TEST(KernelBurstsTest, WatchSeesAThreadsBurstsOfCpu) {
  pid_t tid = 0;
  std::atomic<bool> ready{false}, go{false};
  std::thread worker([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    ready = true;
    while (!go) std::this_thread::sleep_for(milliseconds(1));
    for (int i = 0; i < 3; ++i) {
      timespec a{}, b{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
      do {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
      } while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 30'000'000L);
      std::this_thread::sleep_for(milliseconds(150));
    }
  });
  while (!ready) std::this_thread::sleep_for(milliseconds(1));
  KernelBurstWatch watch({tid});
  ASSERT_TRUE(watch.watching());
  watch.Start();
  std::this_thread::sleep_for(milliseconds(20));
  go = true;
  worker.join();
  watch.Stop();
  // Three bursts; a spin the scheduler interrupts for longer than the gap splits in two.
  EXPECT_GE(watch.bursts().size(), 3u);
  EXPECT_LE(watch.bursts().size(), 9u);
  EXPECT_GE(watch.cpu_ns(), 85'000'000u);
  uint64_t in_bursts = 0;
  for (const auto& b : watch.bursts()) {
    EXPECT_LE(b.start, b.end);
    in_bursts += b.cpu_ns;
  }
  EXPECT_EQ(in_bursts, watch.cpu_ns());
  // Nothing to watch: no thread, no bursts.
  KernelBurstWatch none({});
  none.Start();
  none.Stop();
  EXPECT_FALSE(none.watching());
  EXPECT_TRUE(none.bursts().empty());
}

}  // namespace
}  // namespace strata::bench
