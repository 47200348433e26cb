#include "bench/run_support.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "bench/child_process.h"
#include "bench/load_driver.h"

namespace strata::bench {

absl::StatusOr<std::unique_ptr<WorkDir>> WorkDir::Create(const std::string& parent, bool keep,
                                                         const std::string& prefix) {
  std::string base = parent;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  std::string pattern = base + "/" + prefix + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError("work_dir: cannot create a directory under " + base);
  }
  // Traversable by the postgres user (its own directory inside is private to it).
  chmod(pattern.c_str(), 0755);
  return std::unique_ptr<WorkDir>(new WorkDir(pattern, keep));
}

WorkDir::~WorkDir() {
  if (keep_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

uint64_t PeakPssSampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  return peak_;
}

void PeakPssSampler::Loop() {
  // Each sample costs the kernel a walk of the processes' page tables (~5 ms of CPU for
  // Strata, 18-36 ms for PostgreSQL's dozen processes and 1 GB of shared buffers,
  // measured): 10 nice levels below the bench (and the servers it started), at most 19,
  // the servers' threads go first. Under full load samples come less often.
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, 0);  // this thread's (Linux)
  if (errno == 0) {
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), std::min(19, nice + 10));
  }
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    const double cpu0 = ThreadCpuSeconds();
    auto pss = ProcessTreePssBytes(pid_);
    const double took = ThreadCpuSeconds() - cpu0;
    lock.lock();
    if (pss.ok()) {
      peak_ = std::max(peak_, *pss);
      ++samples_;
      sampling_s_ += took;
    }
    cv_.wait_for(lock, std::chrono::duration<double>(interval_), [&] { return stop_; });
  }
}

std::string CommandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    std::string arg = all.substr(start, end - start);
    if (!out.empty()) out += ' ';
    if (arg.empty() || arg.find_first_of(" \t'\"$") != std::string::npos) {
      out += "'" + arg + "'";
    } else {
      out += arg;
    }
    start = end + 1;
  }
  return out;
}

std::string Machine(const std::string& dir) {
  std::string mem = "?";
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemTotal:", 0) == 0) {
      mem = Fmt("%.1f", std::strtod(line.c_str() + 9, nullptr) / 1048576.0) + " GiB";
      break;
    }
  }
  struct utsname u {};
  uname(&u);
  std::string fs = "?";
  struct statfs sf {};
  if (statfs(dir.c_str(), &sf) == 0) {
    switch (static_cast<unsigned long>(sf.f_type)) {
      case 0xEF53:
        fs = "ext4";
        break;
      case 0x01021994:
        fs = "tmpfs";
        break;
      case 0x58465342:
        fs = "xfs";
        break;
      case 0x9123683E:
        fs = "btrfs";
        break;
      case 0x794c7630:
        fs = "overlayfs";
        break;
      default: {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "0x%lx", static_cast<unsigned long>(sf.f_type));
        fs = buf;
      }
    }
  }
  std::string load = "?";
  std::ifstream loadavg("/proc/loadavg");
  std::getline(loadavg, load);
  load = load.substr(0, load.find(' ', load.find(' ', load.find(' ') + 1) + 1));
  return "nproc " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + ", memory " + mem +
         ", kernel " + u.sysname + " " + u.release + " " + u.machine + ", load average " + load +
         " at start; data under " + dir + " (" + fs + ")";
}

std::optional<double> MetricValue(std::string_view page, std::string_view series) {
  size_t at = 0;
  while (at < page.size()) {
    size_t end = page.find('\n', at);
    if (end == std::string_view::npos) end = page.size();
    const std::string_view line = page.substr(at, end - at);
    at = end + 1;
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      const std::string value(line.substr(series.size() + 1));
      char* parsed_to = nullptr;
      const double v = std::strtod(value.c_str(), &parsed_to);
      if (parsed_to != value.c_str()) return v;
    }
  }
  return std::nullopt;
}

std::optional<Histogram::Buckets> HistogramBuckets(std::string_view page, std::string_view name,
                                                   std::string_view labels) {
  const std::string prefix =
      std::string(name) + "_bucket{" + std::string(labels) + (labels.empty() ? "" : ",") + "le=\"";
  Histogram::Buckets out{};
  size_t found = 0;
  uint64_t previous = 0;
  size_t at = 0;
  while (at < page.size() && found < out.size()) {
    size_t end = page.find('\n', at);
    if (end == std::string_view::npos) end = page.size();
    const std::string_view line = page.substr(at, end - at);
    at = end + 1;
    if (line.substr(0, std::min(line.size(), prefix.size())) != prefix) continue;
    const size_t space = line.rfind(' ');
    if (space == std::string_view::npos) return std::nullopt;
    const uint64_t cumulative = std::strtoull(std::string(line.substr(space + 1)).c_str(), nullptr, 10);
    out[found++] = cumulative >= previous ? cumulative - previous : 0;  // rendered in bound order
    previous = cumulative;
  }
  if (found != out.size()) return std::nullopt;
  return out;
}

Histogram::Buckets BucketsSince(const Histogram::Buckets& before, const Histogram::Buckets& after) {
  Histogram::Buckets out{};
  bool restarted = false;
  for (size_t i = 0; i < out.size(); ++i) restarted = restarted || after[i] < before[i];
  for (size_t i = 0; i < out.size(); ++i) out[i] = restarted ? after[i] : after[i] - before[i];
  return out;
}

absl::Status CheckStrataArgs(const std::vector<std::string>& args, std::string_view field) {
  for (const std::string& a : args) {
    if (a.rfind("--data-dir", 0) == 0 || a.rfind("--port", 0) == 0) {
      return absl::InvalidArgumentError(std::string(field) +
                                        ": the bench sets --data-dir and --port");
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::bench
