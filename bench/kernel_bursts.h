// Bursts of a machine's own kernel threads during a timed phase, and which requests they
// overlapped: the compare bench's reads (compare_bench.cc) and the asset bench's searches
// (asset_bench.cc).
//
// Why. On the development VM the kernel runs DAMON (`kdamond`, a memory-access monitor the
// host configured with a proactive "pageout" scheme) and is built with preempt=none: every
// ~544 ms kdamond takes 5-16 ms of CPU in a 13-44 ms burst that cannot be preempted, and
// every process on the machine slows down meanwhile. With `--trace` and a perf recording of
// kdamond's context switches, 369 of Strata's 400 slowest reads (and 280 of PostgreSQL's) in
// one run overlapped such a burst (docs/benchmark-log.md, "The read tail is the machine's").
// A user comparing systems on such a machine should see that in the report, not guess it.
//
// How. A thread reads the watched threads' run time (`/proc/<pid>/schedstat`, first field,
// nanoseconds on a CPU; the kernel updates it at context switches and scheduler ticks) every
// millisecond. A sample whose run time grew marks the millisecond busy; busy samples less
// than `kBurstGap` apart form one burst. The cost: one small read per watched thread per
// millisecond, on a thread that otherwise sleeps.
//
// Thread safety: Start and Stop from one thread; the rest is const after Stop.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/load_driver.h"

namespace strata::bench {

// A stretch of time in which a watched kernel thread kept running.
struct KernelBurst {
  SteadyClock::time_point start, end;  // first and last busy sample
  uint64_t cpu_ns = 0;                 // run time the watched threads gained in it
};

// Busy samples closer than this belong to the same burst.
inline constexpr std::chrono::milliseconds kBurstGap{20};
// A request overlaps a burst when its [due, answered] interval meets the burst widened by this
// much on both sides (the sampling and the kernel's accounting are a few ms coarse).
inline constexpr std::chrono::milliseconds kBurstMargin{10};

// The pids of the processes in /proc whose name starts with `prefix` ("kdamond" matches
// kdamond.0, kdamond.1, ...). Kernel threads are listed there, each its own process; the
// other threads of a user process are not. Empty when there are none or /proc cannot be read.
std::vector<pid_t> FindThreadsNamed(const std::string& prefix);

// Groups busy sample times (in order) into bursts: samples less than `gap` apart join.
// `cpu_ns[i]` is the run time gained at sample i.
std::vector<KernelBurst> GroupBursts(const std::vector<SteadyClock::time_point>& busy,
                                     const std::vector<uint64_t>& cpu_ns,
                                     std::chrono::milliseconds gap);

// True when [from, to] meets some burst widened by `margin`. `bursts` in time order.
bool OverlapsBurst(const std::vector<KernelBurst>& bursts, SteadyClock::time_point from,
                   SteadyClock::time_point to, std::chrono::milliseconds margin);

// One timed request: when it was due, when it was answered, and whether it succeeded.
struct TimedRequest {
  SteadyClock::time_point due, done;
  bool ok = false;
};

// How much of a phase's latency tail met the watched threads' bursts.
struct BurstShare {
  bool watched = false;  // some kdamond thread was watched
  uint64_t bursts = 0;
  double cpu_s = 0;        // their run time in the phase
  uint64_t requests = 0;   // successful requests
  uint64_t in_bursts = 0;  // of them, overlapping a burst (kBurstMargin)
  uint64_t slow = 0;       // at or over the phase's p99
  uint64_t slow_in_bursts = 0;
  double p99_inside_ms = 0;                        // the requests overlapping a burst
  double p99_outside_ms = 0, p999_outside_ms = 0;  // the requests not overlapping any
};

// The share of `requests` (failed ones ignored) that met `bursts`; `p99_ms` is the phase's
// p99 over every request (the slow-request threshold).
BurstShare ShareOfBursts(const std::vector<KernelBurst>& bursts, uint64_t cpu_ns,
                         const std::vector<TimedRequest>& requests, double p99_ms);

// "the machine's kdamond (DAMON) ran in N bursts (X s of CPU); <what> overlapping one: A of B
// (their p99 G ms), C of the D at or over p99; the other <what>' p99 / p99.9 E / F ms"
std::string DescribeShare(const BurstShare& share, const std::string& what);

// The kernel threads the benches watch: DAMON's monitors.
inline constexpr const char* kKernelThreadPrefix = "kdamond";

class KernelBurstWatch {
 public:
  // Watches `pids` (none: Start does nothing and bursts() stays empty).
  explicit KernelBurstWatch(std::vector<pid_t> pids) : pids_(std::move(pids)) {}
  ~KernelBurstWatch() { Stop(); }
  KernelBurstWatch(const KernelBurstWatch&) = delete;
  KernelBurstWatch& operator=(const KernelBurstWatch&) = delete;

  void Start();
  void Stop();
  bool watching() const { return !pids_.empty(); }
  const std::vector<KernelBurst>& bursts() const { return bursts_; }
  // The watched threads' run time between Start and Stop.
  uint64_t cpu_ns() const { return total_ns_; }

 private:
  void Loop();

  const std::vector<pid_t> pids_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<KernelBurst> bursts_;
  uint64_t total_ns_ = 0;
};

}  // namespace strata::bench
