#include "strata/base/thread_pool.h"

#include <sys/utsname.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace strata {
namespace {

// The calling thread's EEVDF slice in nanoseconds, from /proc (-1 if not shown).
long long CurrentSliceNanos() {
  std::ifstream in("/proc/thread-self/sched");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("se.slice", 0) == 0) return std::stoll(line.substr(line.find(':') + 1));
  }
  return -1;
}

// Custom slices for normal threads came with Linux 6.12.
bool KernelHasCustomSlices() {
  utsname u{};
  if (::uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 12);
}

TEST(ThreadPoolTest, RunsTasksAndReturnsResults) {
  ThreadPool pool(2, 0, "strata-test");
  std::atomic<int> sum{0};
  std::vector<std::future<int>> results;
  for (int i = 1; i <= 100; ++i) {
    results.push_back(pool.Submit([i, &sum] {
      sum += i;
      return i * 2;
    }));
  }
  int doubled = 0;
  for (auto& f : results) doubled += f.get();
  EXPECT_EQ(sum.load(), 5050);
  EXPECT_EQ(doubled, 10100);
}

TEST(ThreadPoolTest, QueuedCountsTasksNotYetStarted) {
  ThreadPool pool(1, 0, "strata-test");
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  auto first = pool.Submit([&started, gate] {
    started.set_value();
    gate.wait();
  });
  started.get_future().wait();  // the only worker is busy
  EXPECT_EQ(pool.queued(), 0u);
  auto second = pool.Submit([] {});
  auto third = pool.Submit([] {});
  EXPECT_EQ(pool.queued(), 2u);
  release.set_value();
  first.get();
  second.get();
  third.get();
  EXPECT_EQ(pool.queued(), 0u);
}

TEST(ThreadPoolTest, WorkersTakeTheRequestedSliceAndNice) {
  if (!KernelHasCustomSlices() || CurrentSliceNanos() < 0) {
    GTEST_SKIP() << "kernel without per-thread slices (Linux < 6.12) or no se.slice in /proc";
  }
  const long long default_slice = CurrentSliceNanos();
  ThreadPool pool(1, /*nice_increment=*/2, "strata-test", /*slice_us=*/250);
  auto [slice, nice] = pool.Submit([] {
                              return std::pair<long long, int>(CurrentSliceNanos(),
                                                               ThreadPool::CurrentNice());
                            }).get();
  EXPECT_EQ(slice, 250'000);
  EXPECT_EQ(nice, ThreadPool::CurrentNice() + 2);  // the slice call kept the nice value
  ThreadPool plain(1, 0, "strata-test");
  EXPECT_EQ(plain.Submit([] { return CurrentSliceNanos(); }).get(), default_slice);
}

}  // namespace
}  // namespace strata
