// What the benchmarks that start their own servers share (`strata bench viewing --mode
// compare`, `strata bench assets`): a temporary work directory, a sampler of a process
// tree's peak PSS, and the lines that say how a run was made (command, machine).
//
// Thread safety: a WorkDir or PeakPssSampler is used by one thread (the sampler's own
// thread is internal); the free functions are thread-safe.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/metrics.h"

namespace strata::bench {

// A temporary directory `<parent>/<prefix>-XXXXXX` ("" parent = $TMPDIR or /tmp), mode 0755
// so the postgres user can traverse it; removed with its contents on destruction unless
// `keep`. Internal when it cannot be created.
class WorkDir {
 public:
  static absl::StatusOr<std::unique_ptr<WorkDir>> Create(const std::string& parent, bool keep,
                                                         const std::string& prefix);
  ~WorkDir();
  const std::string& path() const { return path_; }

 private:
  WorkDir(std::string path, bool keep) : path_(std::move(path)), keep_(keep) {}
  std::string path_;
  bool keep_;
};

// Samples the PSS of a process tree (ProcessTreePssBytes) every `interval_s` on its own
// thread, 10 nice levels below the caller, until Stop().
class PeakPssSampler {
 public:
  PeakPssSampler(pid_t pid, double interval_s)
      : pid_(pid), interval_(interval_s), thread_([this] { Loop(); }) {}
  ~PeakPssSampler() { Stop(); }
  // Stops sampling; the peak in bytes.
  uint64_t Stop();
  // After Stop(): samples taken, and the mean CPU time one took (the bench's, on the cores
  // the server uses; mostly the kernel walking the processes' page tables).
  uint64_t samples() const { return samples_; }
  double mean_sample_ms() const { return samples_ > 0 ? 1000 * sampling_s_ / samples_ : 0; }

 private:
  void Loop();

  const pid_t pid_;
  const double interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t peak_ = 0;
  uint64_t samples_ = 0;
  double sampling_s_ = 0;
  std::thread thread_;  // last: starts once the fields above exist
};

// The calling thread's CPU seconds.
double ThreadCpuSeconds();
// This process's command line, shell-quoted where needed.
std::string CommandLine();
// One line on the machine: cores, memory, kernel, load average, and the file system of `dir`.
std::string Machine(const std::string& dir);
// The value of one sample in a Prometheus text page: `series` is the name with its labels
// exactly as the server writes them ("name" or "name{a=\"x\"}"); nullopt if absent.
std::optional<double> MetricValue(std::string_view page, std::string_view series);
// The per-bucket counts (not cumulative) of one histogram series in a Prometheus text page:
// `name` without "_bucket", `labels` as the server writes them without braces and without
// `le` ("" or `a="x",b="y"`); nullopt if the page does not have all of its buckets.
std::optional<Histogram::Buckets> HistogramBuckets(std::string_view page, std::string_view name,
                                                   std::string_view labels = "");
// `after` - `before`, bucket by bucket (a series that restarted from zero: `after`).
Histogram::Buckets BucketsSince(const Histogram::Buckets& before, const Histogram::Buckets& after);
// InvalidArgument naming `field` if an extra `serve` argument sets --data-dir or --port,
// which the benches that start a server set themselves.
absl::Status CheckStrataArgs(const std::vector<std::string>& args, std::string_view field);

}  // namespace strata::bench
