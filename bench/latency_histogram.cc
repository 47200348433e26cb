#include "bench/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace strata::bench {
namespace {

// 128 exact buckets for [0, 128), then 64 buckets per power of two.
constexpr int kSubBits = 6;
constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // 64
constexpr uint64_t kExact = 2 * kSub;               // 128
constexpr size_t kBuckets = kExact + (63 - kSubBits) * kSub;

}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kBuckets, 0) {}

size_t LatencyHistogram::BucketIndex(uint64_t v) {
  if (v < kExact) return static_cast<size_t>(v);
  int msb = 63 - __builtin_clzll(v);  // >= 7
  int shift = msb - kSubBits;         // >= 1
  uint64_t mantissa = v >> shift;     // in [64, 128)
  return static_cast<size_t>(kExact + static_cast<uint64_t>(shift - 1) * kSub + (mantissa - kSub));
}

uint64_t LatencyHistogram::BucketUpperBound(size_t index) {
  if (index < kExact) return index;
  uint64_t i = index - kExact;
  int shift = static_cast<int>(i / kSub) + 1;
  uint64_t mantissa = i % kSub + kSub;
  if (shift + kSubBits + 1 >= 64 && mantissa == 2 * kSub - 1) return UINT64_MAX;
  return ((mantissa + 1) << shift) - 1;
}

void LatencyHistogram::Record(uint64_t value) {
  ++buckets_[BucketIndex(value)];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // The epsilon keeps e.g. 99.9% of 1000 at rank 999 despite floating-point rounding.
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_) - 1e-9));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(BucketUpperBound(i), min_, max_);
  }
  return max_;
}

}  // namespace strata::bench
