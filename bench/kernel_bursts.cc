#include "bench/kernel_bursts.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "bench/latency_histogram.h"

namespace strata::bench {
namespace {

// First field of /proc/<pid>/schedstat through an open descriptor; false if unreadable.
bool ReadRunNs(int fd, uint64_t* ns) {
  char buf[128];
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return false;
  buf[n] = '\0';
  char* end = nullptr;
  *ns = std::strtoull(buf, &end, 10);
  return end != buf;
}

}  // namespace

std::vector<pid_t> FindThreadsNamed(const std::string& prefix) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    std::ifstream comm(std::string("/proc/") + e->d_name + "/comm");
    std::string name;
    if (std::getline(comm, name) && name.compare(0, prefix.size(), prefix) == 0) {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(proc);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<KernelBurst> GroupBursts(const std::vector<SteadyClock::time_point>& busy,
                                     const std::vector<uint64_t>& cpu_ns,
                                     std::chrono::milliseconds gap) {
  std::vector<KernelBurst> out;
  for (size_t i = 0; i < busy.size(); ++i) {
    const uint64_t ns = i < cpu_ns.size() ? cpu_ns[i] : 0;
    if (!out.empty() && busy[i] - out.back().end < gap) {
      out.back().end = busy[i];
      out.back().cpu_ns += ns;
    } else {
      out.push_back({busy[i], busy[i], ns});
    }
  }
  return out;
}

bool OverlapsBurst(const std::vector<KernelBurst>& bursts, SteadyClock::time_point from,
                   SteadyClock::time_point to, std::chrono::milliseconds margin) {
  // The first burst that does not end before `from` (bursts are in order and disjoint).
  auto it = std::lower_bound(
      bursts.begin(), bursts.end(), from,
      [&](const KernelBurst& b, SteadyClock::time_point t) { return b.end + margin < t; });
  return it != bursts.end() && it->start - margin <= to;
}

BurstShare ShareOfBursts(const std::vector<KernelBurst>& bursts, uint64_t cpu_ns,
                         const std::vector<TimedRequest>& requests, double p99_ms) {
  BurstShare share;
  share.watched = true;
  share.bursts = bursts.size();
  share.cpu_s = static_cast<double>(cpu_ns) / 1e9;
  LatencyHistogram inside, outside;
  for (const auto& r : requests) {
    if (!r.ok) continue;
    const auto us = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(r.done - r.due).count());
    const bool in = OverlapsBurst(bursts, r.due, r.done, kBurstMargin);
    const bool slow = static_cast<double>(us) >= p99_ms * 1000;
    ++share.requests;
    share.in_bursts += in ? 1 : 0;
    share.slow += slow ? 1 : 0;
    share.slow_in_bursts += in && slow ? 1 : 0;
    (in ? inside : outside).Record(us);
  }
  share.p99_inside_ms = static_cast<double>(inside.Percentile(99)) / 1000.0;
  share.p99_outside_ms = static_cast<double>(outside.Percentile(99)) / 1000.0;
  share.p999_outside_ms = static_cast<double>(outside.Percentile(99.9)) / 1000.0;
  return share;
}

std::string DescribeShare(const BurstShare& s, const std::string& what) {
  return "the machine's kdamond (DAMON) ran in " + std::to_string(s.bursts) + " bursts (" +
         Fmt("%.2f", s.cpu_s) + " s of CPU); " + what +
         " overlapping one: " + Thousands(s.in_bursts) + " of " + Thousands(s.requests) +
         " (their p99 " + Fmt("%.2f", s.p99_inside_ms) + " ms), " + Thousands(s.slow_in_bursts) +
         " of the " + Thousands(s.slow) + " at or over p99; the other " + what + "' p99 / p99.9 " +
         Fmt("%.2f", s.p99_outside_ms) + " / " + Fmt("%.2f", s.p999_outside_ms) + " ms";
}

void KernelBurstWatch::Start() {
  if (pids_.empty() || thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void KernelBurstWatch::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
}

void KernelBurstWatch::Loop() {
  std::vector<int> fds;
  for (pid_t pid : pids_) {
    const int fd = open(("/proc/" + std::to_string(pid) + "/schedstat").c_str(), O_RDONLY);
    if (fd >= 0) fds.push_back(fd);
  }
  auto total = [&] {
    uint64_t sum = 0;
    for (int fd : fds) {
      uint64_t ns = 0;
      if (ReadRunNs(fd, &ns)) sum += ns;
    }
    return sum;
  };
  std::vector<SteadyClock::time_point> busy;
  std::vector<uint64_t> gained;
  busy.reserve(1 << 14);
  gained.reserve(1 << 14);
  const uint64_t first = total();
  uint64_t last = first;
  auto next = SteadyClock::now();
  while (!stop_.load(std::memory_order_relaxed)) {
    next += std::chrono::milliseconds(1);
    std::this_thread::sleep_until(next);
    const auto now = SteadyClock::now();
    if (now - next > std::chrono::milliseconds(5)) next = now;  // fell behind: do not catch up
    const uint64_t ns = total();
    if (ns > last) {
      busy.push_back(now);
      gained.push_back(ns - last);
      last = ns;
    }
  }
  for (int fd : fds) close(fd);
  total_ns_ = last - first;
  bursts_ = GroupBursts(busy, gained, kBurstGap);
}

}  // namespace strata::bench
