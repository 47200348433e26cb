#include "strata/base/aimd_throttle.h"

#include <algorithm>

namespace strata {

AimdThrottle::AimdThrottle(ThrottleOptions options)
    : options_(options),
      rate_(std::clamp(options.initial_rate, options.min_rate, options.max_rate)),
      next_slot_(Clock::now()) {}

bool AimdThrottle::Acquire(uint64_t n) {
  if (n == 0) n = 1;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (cancelled_) return false;
    const Clock::time_point now = Clock::now();
    // At most a tenth of a second of unused slots accumulates (a small burst).
    const auto interval =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate_));
    const Clock::time_point earliest = now - std::chrono::milliseconds(100);
    if (next_slot_ < earliest) next_slot_ = earliest;
    if (next_slot_ <= now) {
      next_slot_ += interval * static_cast<int64_t>(n);
      return true;
    }
    cv_.wait_until(lock, next_slot_);
  }
}

double AimdThrottle::Update(const LoadSample& sample, bool sweeping) {
  std::lock_guard<std::mutex> lock(mu_);
  if (baselines_.size() < sample.p99_ms.size()) baselines_.resize(sample.p99_ms.size(), 0);
  if (!sweeping) {
    for (size_t i = 0; i < sample.p99_ms.size(); ++i) {
      const double v = sample.p99_ms[i];
      if (v < 0) continue;
      baselines_[i] = baselines_[i] == 0 ? v : 0.8 * baselines_[i] + 0.2 * v;
    }
    return rate_;
  }
  bool slow = false;
  for (size_t i = 0; i < sample.p99_ms.size(); ++i) {
    const double limit =
        std::max(options_.latency_floor_ms, options_.latency_factor * baselines_[i]);
    if (sample.p99_ms[i] >= 0 && sample.p99_ms[i] > limit) slow = true;
  }
  const bool loaded = sample.write_stalled ||
                      sample.pending_compaction_bytes > options_.max_pending_compaction_bytes;
  if (slow && !loaded && hold_left_ > 0) {
    // The window still holds the intervals before the last cut took effect.
    --hold_left_;
    ++latency_holds_;
  } else if (slow || loaded) {
    rate_ = std::max(options_.min_rate, rate_ * options_.decrease_factor);
    if (slow) {
      ++latency_cuts_;
      hold_left_ = options_.latency_hold_steps;
    }
    if (loaded) ++load_cuts_;
  } else {
    hold_left_ = 0;
    rate_ = std::min(options_.max_rate, rate_ + options_.additive_step);
  }
  cv_.notify_all();
  return rate_;
}

void AimdThrottle::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  cv_.notify_all();
}

double AimdThrottle::rate() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rate_;
}

double AimdThrottle::baseline_p99_ms(size_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  return i < baselines_.size() ? baselines_[i] : 0;
}

uint64_t AimdThrottle::latency_cuts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return latency_cuts_;
}

uint64_t AimdThrottle::latency_holds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return latency_holds_;
}

uint64_t AimdThrottle::load_cuts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return load_cuts_;
}

}  // namespace strata
