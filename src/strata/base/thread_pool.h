// A fixed-size thread pool for fanning out blocking work (parallel reads of tables and
// chunks) and for background work at a lower CPU priority. Submit is thread-safe; the
// destructor finishes queued tasks and joins.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace strata {

class ThreadPool {
 public:
  // `nice_increment` > 0 lowers the workers' CPU priority (Linux per-thread nice), so their
  // work yields to latency-sensitive threads.
  // `name` (at most 15 characters) names the threads for top -H, perf and gdb.
  // `slice_us` > 0 asks for that time slice (SetCurrentThreadSlice), for pools that serve
  // requests.
  explicit ThreadPool(int threads, int nice_increment = 0, const char* name = "strata-pool",
                      int slice_us = 0) {
    for (int i = 0; i < std::max(threads, 1); ++i) {
      workers_.emplace_back([this, nice_increment, name, slice_us] {
        NameCurrentThread(name);
        if (nice_increment > 0) LowerCurrentThreadPriority(nice_increment);
        if (slice_us > 0) SetCurrentThreadSlice(slice_us);
        Run();
      });
    }
  }

  // Names the calling thread (Linux: at most 15 characters are kept).
  static void NameCurrentThread(const char* name) { (void)pthread_setname_np(pthread_self(), name); }

  // Raises the calling thread's nice value by `increment` (best effort).
  static void LowerCurrentThreadPriority(int increment) {
    const int tid = CurrentTid();
    errno = 0;
    int current = ::getpriority(PRIO_PROCESS, tid);
    if (errno == 0 && ::setpriority(PRIO_PROCESS, tid, current + increment) == 0) {
      KnownNice() = ::getpriority(PRIO_PROCESS, tid);  // as clamped by the kernel
    }
  }
  // Asks the kernel to run the calling thread in time slices of `micros` microseconds
  // (Linux 6.12+ EEVDF custom slice, clamped by the kernel to 100 us..100 ms). A thread
  // with a shorter slice than the running one preempts it when it wakes, instead of waiting
  // for the running thread's slice (1.4 ms here by default) to end: for threads that answer
  // requests and then sleep. Keeps the thread's nice value. Best effort: older kernels
  // ignore the slice for normal threads. Returns false if the call failed.
  static bool SetCurrentThreadSlice(int micros) {
    struct {  // the kernel's struct sched_attr (glibc 2.36 has no declaration)
      uint32_t size;
      uint32_t sched_policy;
      uint64_t sched_flags;
      int32_t sched_nice;
      uint32_t sched_priority;
      uint64_t sched_runtime;
      uint64_t sched_deadline;
      uint64_t sched_period;
    } attr{};
    attr.size = sizeof(attr);
    attr.sched_policy = 0;  // SCHED_OTHER
    attr.sched_nice = CurrentNice();
    attr.sched_runtime = static_cast<uint64_t>(micros) * 1000;
    const long tid = ::syscall(SYS_gettid);
    return ::syscall(SYS_sched_setattr, tid, &attr, 0) == 0;
  }
  // The calling thread's nice value (0 when it cannot be read).
  static int CurrentNice() {
    const int tid = CurrentTid();
    errno = 0;
    int current = ::getpriority(PRIO_PROCESS, tid);
    return errno == 0 ? current : 0;
  }
  // The calling thread's kernel thread id, asked once per thread.
  static int CurrentTid() {
    thread_local const int tid = static_cast<int>(::syscall(SYS_gettid));
    return tid;
  }
  // The nice value LowerCurrentThreadPriority gave the calling thread; -1 (unknown) on a
  // thread it never ran on. Lets ScopedPriorityBoost skip a getpriority per section.
  static int& KnownNice() {
    thread_local int nice = -1;
    return nice;
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  template <typename F>
  auto Submit(F&& f) -> std::future<decltype(f())> {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
    std::future<R> result = task->get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.emplace_back([task] { (*task)(); });
    }
    cv_.notify_one();
    return result;
  }

  // Tasks submitted and not yet started.
  size_t queued() const {
    std::lock_guard<std::mutex> lock(mu_);
    return tasks_.size();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// Runs a low-priority (niced) thread at normal priority while it holds something that
// foreground threads wait for -- a member's exclusive lock, the store's write slot -- so a
// background roll-up or rotation that is preempted inside never stalls requests behind it
// (priority inversion). Lowering a nice value needs CAP_SYS_NICE (root) or RLIMIT_NICE;
// without it the boost is skipped and the work simply runs at its lower priority.
// No-op for threads at nice <= 0. Not copyable; restores the nice value on destruction.
class ScopedPriorityBoost {
 public:
  ScopedPriorityBoost() {
    if (depth()++ > 0) return;  // nested: the outermost boost restores
    // Two syscalls per section on a pool thread (the boost and the restore), not four: the
    // roll-up worker runs ~1,000 sections a second under load.
    const int known = ThreadPool::KnownNice();
    const int nice = known >= 0 ? known : ThreadPool::CurrentNice();
    if (nice <= 0) return;
    tid_ = ThreadPool::CurrentTid();
    if (::setpriority(PRIO_PROCESS, tid_, 0) == 0) restore_ = nice;
  }
  ~ScopedPriorityBoost() {
    --depth();
    if (restore_ > 0) (void)::setpriority(PRIO_PROCESS, tid_, restore_);
  }
  ScopedPriorityBoost(const ScopedPriorityBoost&) = delete;
  ScopedPriorityBoost& operator=(const ScopedPriorityBoost&) = delete;

 private:
  static int& depth() {
    thread_local int d = 0;
    return d;
  }
  int tid_ = 0;
  int restore_ = 0;
};

}  // namespace strata
