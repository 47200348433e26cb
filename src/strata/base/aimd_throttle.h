// The adaptive rate of background work that shares the machine with online requests (the
// lifecycle collector's sweep, reprocessing jobs): AIMD (additive increase, multiplicative
// decrease), as TCP does for congestion. Every control interval the owner feeds one
// LoadSample of the online path (e.g. object GET/PUT p99 over the interval) and of the store
// (pending compaction bytes, write stalls); the rate grows by a fixed step while both are
// healthy and is cut by a factor as soon as either is not. Workers take one token per work
// item (Acquire, or Acquire(n) for a batch of n).
//
// "Healthy latency" is relative to the online path's own idle p99: a baseline learned (as an
// EWMA) from intervals when no sweep runs, so the throttle aims at "p99 within
// `latency_factor` x idle", whatever the machine. Below `latency_floor_ms` p99 is ignored
// (noise of a histogram with coarse buckets).
//
// Thread-safe. Time for the token bucket is the steady clock (tests drive Update directly).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace strata {

struct ThrottleOptions {
  double initial_rate = 1000;     // items per second at start
  double min_rate = 20;           // never below (the sweep always progresses)
  double max_rate = 50000;        // never above
  double additive_step = 250;     // items/s added per healthy interval
  double decrease_factor = 0.5;   // rate *= this on an unhealthy interval
  double latency_factor = 1.3;    // online p99 above this x idle baseline = unhealthy
  double latency_floor_ms = 1.0;  // p99 below this is always healthy
  // After a cut for latency, this many more slow intervals hold the rate instead of cutting
  // again: the load probe's p99 covers a window of several intervals (4 in the server), so
  // it stays high for a while after the cut took effect. Without the hold, one slow burst
  // cut the rate 16-fold (measured: swings between ~6,000 and ~300 items/s). Default 3.
  int latency_hold_steps = 3;
  // Pending compaction above this many bytes, or a write stall, = unhealthy. Default 256 MiB.
  uint64_t max_pending_compaction_bytes = uint64_t{256} << 20;
};

struct LoadSample {
  // p99 of each online signal (e.g. object GET, object PUT), in ms; a negative value = no
  // data this interval. Each signal has its own idle baseline: a mixed p99 would let the
  // slower route hide a regression of the faster one.
  std::vector<double> p99_ms;
  uint64_t pending_compaction_bytes = 0;
  bool write_stalled = false;
};

class AimdThrottle {
 public:
  explicit AimdThrottle(ThrottleOptions options);

  // Blocks until the next item may start at the current rate; returns false at once if
  // Cancel was called.
  bool Acquire() { return Acquire(1); }
  // The same for a batch of `n` items: it may start once its first slot is due, and the
  // next caller waits for the batch's n slots (n = 0 is taken as 1).
  bool Acquire(uint64_t n);
  // One control step. `sweeping`: the background work was running during the sample's
  // interval (else the sample teaches the idle baseline). Returns the new rate.
  double Update(const LoadSample& sample, bool sweeping);
  void Cancel();

  double rate() const;
  // The idle baseline of signal `i` (0 = none learned yet).
  double baseline_p99_ms(size_t i = 0) const;
  // Intervals cut for latency / for store load since construction.
  uint64_t latency_cuts() const;
  // Slow intervals that held the rate instead of cutting it (see latency_hold_steps).
  uint64_t latency_holds() const;
  uint64_t load_cuts() const;

 private:
  using Clock = std::chrono::steady_clock;
  ThrottleOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  double rate_;
  std::vector<double> baselines_;
  Clock::time_point next_slot_;
  bool cancelled_ = false;
  uint64_t latency_cuts_ = 0;
  uint64_t latency_holds_ = 0;
  uint64_t load_cuts_ = 0;
  int hold_left_ = 0;  // slow intervals still to hold after the last latency cut
};

}  // namespace strata
