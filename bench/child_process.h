// Child processes for benchmarks that start their own servers (`strata bench viewing --mode
// compare`): start a program with its output appended to a log file, optionally as another
// user; stop it (a signal, then SIGKILL to its whole process group after a timeout) or
// crash it (SIGKILL); and measure a process tree (PSS memory, CPU time) and a directory.
//
// Nothing is left behind:
//   - a ChildProcess still running when destroyed is killed (SIGKILL to its process group)
//     and reaped, so an early return or an error path never leaves a server running;
//   - each child leads its own process group, so killing the group also reaches the
//     processes it forked (PostgreSQL's backends), and a terminal's Ctrl-C reaches only the
//     bench;
//   - each child gets SIGKILL when the thread that started it exits (PR_SET_PDEATHSIG), e.g.
//     when the bench itself is killed. Start children from a thread that outlives them (the
//     bench's main thread), or they die with the thread.
//
// Thread safety: a ChildProcess is used by one thread at a time; the free functions are
// thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strata::bench {

struct ChildSpec {
  // argv[0] is the program's path (no PATH lookup). Required.
  std::vector<std::string> argv;
  // The child's whole environment, "NAME=value" each. Default: empty.
  std::vector<std::string> env;
  // stdout and stderr are appended to this file (created if missing). Required.
  std::string log_path;
  // Run as this user and group (the bench must be root); -1 = the bench's own. Default -1.
  int uid = -1;
  int gid = -1;
};

class ChildProcess {
 public:
  // Forks and executes spec.argv. InvalidArgument for an empty argv; Internal when the log
  // cannot be opened, fork fails, or the program cannot be executed (the message says why).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const ChildSpec& spec);
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Whether the process still runs (reaps it if it has exited).
  bool Running();
  // Sends `signal` to the process and waits up to `timeout_s` for it to exit; then, in any
  // case, SIGKILLs whatever is left of its process group. OK when it exited within the
  // timeout (whatever its exit status); DeadlineExceeded when it had to be killed.
  absl::Status Stop(int signal, double timeout_s);
  // SIGKILL to the whole process group (a crash), then reaps the process and waits (up to
  // 10 s) until no other member of the group is still exiting.
  void Kill();
  // Waits up to `timeout_s` for the process to exit; its waitpid status.
  // DeadlineExceeded when it still runs.
  absl::StatusOr<int> Wait(double timeout_s);
  // How the process ended, once Running() has returned false: "exit code N" or "signal N
  // (NAME)"; "still running" before.
  std::string ExitDescription() const;

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool reaped_ = false;
  int status_ = 0;
};

// Polls `ready` every 50 ms until it returns true: OK. Unavailable as soon as `child` has
// exited ("<what> exited while starting (exit code N; see <log>)"), DeadlineExceeded after
// `timeout_s` ("<what> did not answer within N s (see <log>)"). The benches' wait for the
// servers they start.
absl::Status WaitUntilReady(ChildProcess* child, const std::string& what, const std::string& log,
                            double timeout_s, const std::function<bool()>& ready);

// Runs spec to completion (e.g. initdb). OK when it exits with status 0 within
// `timeout_s`; Internal otherwise, naming the log file to read.
absl::Status RunToCompletion(const ChildSpec& spec, double timeout_s);

// Sum of the proportional set size ("Pss:" of /proc/PID/smaps_rollup) of `root` and all its
// descendants, bytes: memory shared between them (PostgreSQL's shared buffers) counts once.
// NotFound when `root` is gone; descendants that exit meanwhile are skipped.
absl::StatusOr<uint64_t> ProcessTreePssBytes(pid_t root);
// User + system CPU seconds of `root` and its live descendants, including the children
// they have reaped (PostgreSQL's finished backends). NotFound when `root` is gone.
absl::StatusOr<double> ProcessTreeCpuSeconds(pid_t root);
// User + system CPU seconds of every live thread of `root` and its descendants, summed by
// role: the thread's name (Strata names its threads: strata-io, strata-ingest, rocksdb:low,
// ...), or for a single-threaded process its command line's role (PostgreSQL's
// "postgres: checkpointer"; its connection backends as "postgres: backend"). Threads that
// have exited are missing, so take differences over a phase. Empty when `root` is gone.
std::map<std::string, double> ThreadCpuSecondsByRole(pid_t root);

// CPU seconds since boot: the whole machine busy (user, nice, system, irq, softirq, steal
// from /proc/stat), of which interrupts (irq, softirq) and kernel threads (children of
// kthreadd: I/O completion, journal commits, writeback -- work a server's fsyncs cause).
// Differences over a phase tell what else ran meanwhile.
struct MachineCpu {
  double busy = 0;
  double interrupts = 0;
  double kernel_threads = 0;
};
MachineCpu MachineCpuSeconds();
// The calling process's own CPU seconds (getrusage: all its threads, not its children).
double SelfCpuSeconds();

// Bytes (file sizes) of the regular files under `dir`, recursively, and of those among
// them whose name ends with `suffix` (e.g. ".log"). Files that vanish during the walk (a
// compaction deleting them) are skipped; a missing `dir` gives zeros.
struct DirectoryBytes {
  uint64_t total = 0;
  uint64_t matching = 0;
  uint64_t files = 0;
};
DirectoryBytes MeasureDirectory(const std::string& dir, std::string_view suffix);

// A TCP port on 127.0.0.1 that was free when asked (bound to port 0, then released).
absl::StatusOr<int> FreeLoopbackPort();

}  // namespace strata::bench
