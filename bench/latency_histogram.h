// A log-bucketed latency histogram in the spirit of HdrHistogram: values (microseconds, or
// any unit) are counted in buckets whose width is at most 1/64 of their lower bound, so a
// percentile read back is at most ~1.6% above the true value, in fixed memory (~30 KB)
// whatever the count. Values below 128 are exact.
//
// Not thread-safe: keep one per thread and Merge() them at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace strata::bench {

class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(uint64_t value);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The value at percentile `p` (0..100): the smallest v such that at least p% of the
  // recorded values are <= v, reported as the upper bound of v's bucket (clamped to the
  // recorded max), so never below the exact answer. 0 when empty.
  uint64_t Percentile(double p) const;

  // Bucket mapping, exposed for tests.
  static size_t BucketIndex(uint64_t value);
  static uint64_t BucketUpperBound(size_t index);

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace strata::bench
