// Injectable wall clock. Services take a `Clock*` so TTL, rotation and GC logic can be tested
// exactly with ManualClock instead of sleeping. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace strata {

// Milliseconds since the Unix epoch (UTC), the unit of every time in Strata's API.
using Millis = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis NowMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  Millis NowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // A process-wide instance; never destroyed.
  static SystemClock* Default() {
    static SystemClock* clock = new SystemClock();
    return clock;
  }
};

// A clock that only moves when told to.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Millis start = 1'700'000'000'000) : now_(start) {}
  Millis NowMillis() const override { return now_.load(std::memory_order_relaxed); }
  void Set(Millis t) { now_.store(t, std::memory_order_relaxed); }
  void Advance(Millis delta) { now_.fetch_add(delta, std::memory_order_relaxed); }

 private:
  std::atomic<Millis> now_;
};

}  // namespace strata
