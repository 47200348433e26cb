// Process metrics rendered in the Prometheus text exposition format (version 0.0.4).
//
// Counters and histograms are lock-free to update; looking one up by name and labels takes
// a mutex, so hot paths look a metric up once and keep the pointer (pointers stay valid for
// the registry's lifetime). Gauges are callbacks evaluated at render time, so derived state
// such as store sizes is never stored twice. All methods are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace strata {

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Histogram of latencies in seconds with fixed bucket bounds (50us .. 10s).
class Histogram {
 public:
  static constexpr std::array<double, 16> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                     0.0025,  0.005,  0.01,    0.025,  0.05,
                                                     0.1,     0.25,   0.5,     1.0,    2.5,
                                                     10.0};
  void Observe(double seconds);
  uint64_t Count() const { return count_.load(std::memory_order_relaxed); }
  // Observations per bucket (not cumulative); the last bucket holds those above kBounds.back().
  using Buckets = std::array<uint64_t, kBounds.size() + 1>;
  Buckets BucketCounts() const;
  // The q-quantile (0 < q <= 1) of `counts` in seconds, interpolated linearly inside its
  // bucket (the last bucket counts as kBounds.back()); 0 when `counts` is empty.
  static double Quantile(const Buckets& counts, double q);
  // Appends the _bucket/_sum/_count lines for this histogram.
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

class MetricsRegistry {
 public:
  // `labels` is the Prometheus label set without braces, e.g. `route="/v1/x",code="200"`.
  Counter* GetCounter(const std::string& name, const std::string& help,
                      const std::string& labels = "");
  Histogram* GetHistogram(const std::string& name, const std::string& help,
                          const std::string& labels = "");
  // A gauge family computed at render time: the callback returns (labels, value) pairs.
  using GaugeFn = std::function<std::vector<std::pair<std::string, double>>()>;
  void AddGauge(const std::string& name, const std::string& help, GaugeFn fn);

  std::string RenderPrometheus() const;

  // The process-wide registry that /metrics serves.
  static MetricsRegistry* Default();

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
    std::vector<GaugeFn> gauges;
  };
  Family& FamilyLocked(const std::string& name, const std::string& help, const char* type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace strata
