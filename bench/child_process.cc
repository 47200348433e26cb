#include "bench/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

namespace strata::bench {
namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// The fields after the ")" that ends the command name in /proc/PID/stat (the name may hold
// spaces and parentheses), or "" when the process is gone.
std::string StatFields(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return "";
  const size_t close = line.rfind(')');
  return close == std::string::npos ? "" : line.substr(close + 2);
}

// pid -> parent pid of every process visible in /proc.
std::map<pid_t, pid_t> Parents() {
  std::map<pid_t, pid_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    std::istringstream fields(StatFields(pid));
    std::string state;
    pid_t ppid = 0;
    if (fields >> state >> ppid) out[pid] = ppid;
  }
  return out;
}

// `root` and its descendants (empty when root is gone).
std::vector<pid_t> Tree(pid_t root) {
  const std::map<pid_t, pid_t> parents = Parents();
  if (parents.count(root) == 0) return {};
  std::multimap<pid_t, pid_t> children;
  for (auto [pid, ppid] : parents) children.emplace(ppid, pid);
  std::vector<pid_t> out = {root};
  for (size_t i = 0; i < out.size(); ++i) {
    auto [lo, hi] = children.equal_range(out[i]);
    for (auto it = lo; it != hi; ++it) out.push_back(it->second);
  }
  return out;
}

// Whether any process belongs to process group `pgid`.
// Whether any process is in the group; with `live_only`, any that has not finished exiting
// (zombies have: they hold nothing).
bool GroupHasMembers(pid_t pgid, bool live_only = false) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::istringstream fields(StatFields(static_cast<pid_t>(std::stol(name))));
    std::string state;
    pid_t ppid = 0, pgrp = 0;
    if (fields >> state >> ppid >> pgrp && pgrp == pgid && !(live_only && state == "Z")) {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(const ChildSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("argv: empty");
  const int log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return absl::InternalError(Errno(("open " + spec.log_path).c_str()));
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int exec_error[2];  // the child reports a failed exec through it
  if (null_fd < 0 || pipe2(exec_error, O_CLOEXEC) != 0) {
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return absl::InternalError(Errno("open /dev/null or pipe"));
  }
  // Everything the child uses is built before the fork: after it, the child of this
  // multi-threaded process may only make async-signal-safe calls.
  std::vector<std::string> argv_storage = spec.argv;
  std::vector<std::string> env_storage = spec.env;
  std::vector<char*> argv;
  std::vector<char*> envp;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    close(null_fd);
    close(exec_error[0]);
    close(exec_error[1]);
    return absl::InternalError(Errno("fork"));
  }
  if (pid == 0) {
    setpgid(0, 0);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    signal(SIGPIPE, SIG_DFL);  // an ignored signal would stay ignored across exec
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    int err = 0;
    if (spec.gid >= 0 && (setgroups(0, nullptr) != 0 || setgid(spec.gid) != 0)) err = errno;
    if (err == 0 && spec.uid >= 0 && setuid(spec.uid) != 0) err = errno;
    // After the user change, which clears the parent-death signal.
    if (err == 0 && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) err = errno;
    if (err == 0 && getppid() != parent) _exit(127);  // the bench died already
    if (err == 0) {
      execve(argv[0], argv.data(), envp.data());
      err = errno;
    }
    (void)!write(exec_error[1], &err, sizeof(err));
    _exit(127);
  }
  setpgid(pid, pid);  // also here, so a kill of the group right away cannot miss it
  close(log_fd);
  close(null_fd);
  close(exec_error[1]);
  int err = 0;
  ssize_t n;
  do {
    n = read(exec_error[0], &err, sizeof(err));
  } while (n < 0 && errno == EINTR);
  close(exec_error[0]);
  std::unique_ptr<ChildProcess> child(new ChildProcess(pid));
  if (n == static_cast<ssize_t>(sizeof(err))) {
    child->Kill();
    return absl::InternalError("cannot execute " + spec.argv[0] + ": " + std::strerror(err));
  }
  return child;
}

ChildProcess::~ChildProcess() {
  if (!reaped_) Kill();
}

bool ChildProcess::Running() {
  if (reaped_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    reaped_ = true;
    status_ = status;
    return false;
  }
  return true;
}

std::string ChildProcess::ExitDescription() const {
  if (!reaped_) return "still running";
  if (WIFSIGNALED(status_)) {
    const char* name = strsignal(WTERMSIG(status_));
    return "signal " + std::to_string(WTERMSIG(status_)) + " (" + (name ? name : "?") + ")";
  }
  if (WIFEXITED(status_)) return "exit code " + std::to_string(WEXITSTATUS(status_));
  return "status " + std::to_string(status_);
}

absl::StatusOr<int> ChildProcess::Wait(double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError("process " + std::to_string(pid_) + " still runs");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

absl::Status ChildProcess::Stop(int signal, double timeout_s) {
  absl::Status result = absl::OkStatus();
  if (Running()) {
    kill(pid_, signal);
    if (!Wait(timeout_s).ok()) {
      result = absl::DeadlineExceededError("process " + std::to_string(pid_) + " ignored signal " +
                                           std::to_string(signal) + " for " +
                                           std::to_string(timeout_s) + " s; killed");
    }
  }
  Kill();  // the leader if it still runs, and whatever is left of its group
  return result;
}

void ChildProcess::Kill() {
  // The group: the process and what it forked. Once the leader is reaped its id may be
  // reused, so the group is signalled then only while members of it are seen (a process
  // group id is not handed out again while the group has members).
  if (!reaped_ || GroupHasMembers(pid_)) kill(-pid_, SIGKILL);
  if (!reaped_) {
    int status = 0;
    pid_t r;
    do {
      r = waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    reaped_ = true;
    status_ = status;
  }
  // The leader is reaped, but the rest of the group (PostgreSQL's backends) may still be
  // exiting, holding what a restart needs (PostgreSQL refuses to start while a killed
  // backend is still attached to the old shared memory): wait for them, a bounded while.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (GroupHasMembers(pid_, /*live_only=*/true) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

absl::Status WaitUntilReady(ChildProcess* child, const std::string& what, const std::string& log,
                            double timeout_s, const std::function<bool()>& ready) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%g", timeout_s);
  while (!ready()) {
    if (!child->Running()) {
      return absl::UnavailableError(what + " exited while starting (" + child->ExitDescription() +
                                    "; see " + log + ")");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(what + " did not answer within " + seconds +
                                         " s (see " + log + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::OkStatus();
}

absl::Status RunToCompletion(const ChildSpec& spec, double timeout_s) {
  auto child = ChildProcess::Start(spec);
  if (!child.ok()) return child.status();
  auto status = (*child)->Wait(timeout_s);
  if (!status.ok()) {
    (*child)->Kill();
    return absl::InternalError(spec.argv[0] + " did not finish within " +
                               std::to_string(timeout_s) + " s (see " + spec.log_path + ")");
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError(spec.argv[0] + " failed (wait status " + std::to_string(*status) +
                               "; see " + spec.log_path + ")");
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ProcessTreePssBytes(pid_t root) {
  const std::vector<pid_t> tree = Tree(root);
  if (tree.empty()) return absl::NotFoundError("process " + std::to_string(root) + " is gone");
  uint64_t kib = 0;
  for (pid_t pid : tree) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Pss:", 0) == 0) {
        kib += std::strtoull(line.c_str() + 4, nullptr, 10);
        break;
      }
    }
  }
  return kib * 1024;
}

absl::StatusOr<double> ProcessTreeCpuSeconds(pid_t root) {
  const std::vector<pid_t> tree = Tree(root);
  if (tree.empty()) return absl::NotFoundError("process " + std::to_string(root) + " is gone");
  const double ticks_per_s = static_cast<double>(sysconf(_SC_CLK_TCK));
  uint64_t ticks = 0;
  for (pid_t pid : tree) {
    // Fields after the name: state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt
    // cmajflt utime(14) stime cutime cstime.
    std::istringstream fields(StatFields(pid));
    std::string skip;
    for (int i = 3; i < 14 && (fields >> skip); ++i) {
    }
    uint64_t utime = 0, stime = 0, cutime = 0, cstime = 0;
    if (fields >> utime >> stime >> cutime >> cstime) ticks += utime + stime + cutime + cstime;
  }
  return static_cast<double>(ticks) / ticks_per_s;
}

namespace {

// The first line of /proc/PID/cmdline with NULs as spaces ("" when gone).
std::string CommandLine(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& ch : s) {
    if (ch == '\0') ch = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// What a process does, from its command line: "postgres: checkpointer", and every
// connection backend ("postgres: USER DB 127.0.0.1(PORT) STATE") as "postgres: backend".
std::string ProcessRole(pid_t pid, const std::string& thread_name) {
  const std::string cmd = CommandLine(pid);
  if (cmd.rfind("postgres: ", 0) != 0) return thread_name;
  if (cmd.find("127.0.0.1") != std::string::npos || cmd.find("[local]") != std::string::npos) {
    return "postgres: backend";
  }
  return cmd;
}

std::string ThreadName(pid_t pid, const std::string& tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + tid + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace

std::map<std::string, double> ThreadCpuSecondsByRole(pid_t root) {
  std::map<std::string, double> out;
  const double ticks_per_s = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (pid_t pid : Tree(root)) {
    const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    std::error_code ec;
    std::vector<std::string> tids;
    for (const auto& entry : std::filesystem::directory_iterator(task_dir, ec)) {
      tids.push_back(entry.path().filename().string());
    }
    for (const std::string& tid : tids) {
      std::ifstream in(task_dir + "/" + tid + "/stat");
      std::string line;
      if (!std::getline(in, line)) continue;
      const size_t close = line.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream fields(line.substr(close + 2));
      std::string skip;
      for (int i = 3; i < 14 && (fields >> skip); ++i) {
      }
      uint64_t utime = 0, stime = 0;
      if (!(fields >> utime >> stime)) continue;
      std::string role = ThreadName(pid, tid);
      if (tids.size() == 1) role = ProcessRole(pid, role);
      out[role] += static_cast<double>(utime + stime) / ticks_per_s;
    }
  }
  return out;
}

MachineCpu MachineCpuSeconds() {
  MachineCpu out;
  const double ticks_per_s = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream in("/proc/stat");
  std::string cpu;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) {
    out.busy = static_cast<double>(user + nice + system + irq + softirq + steal) / ticks_per_s;
    out.interrupts = static_cast<double>(irq + softirq) / ticks_per_s;
  }
  constexpr pid_t kKthreadd = 2;
  uint64_t ticks = 0;
  for (auto [pid, ppid] : Parents()) {
    if (pid != kKthreadd && ppid != kKthreadd) continue;
    std::istringstream fields(StatFields(pid));
    std::string skip;
    for (int i = 3; i < 14 && (fields >> skip); ++i) {
    }
    uint64_t utime = 0, stime = 0;
    if (fields >> utime >> stime) ticks += utime + stime;
  }
  out.kernel_threads = static_cast<double>(ticks) / ticks_per_s;
  return out;
}

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

DirectoryBytes MeasureDirectory(const std::string& dir, std::string_view suffix) {
  DirectoryBytes out;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(
      dir, std::filesystem::directory_options::skip_permission_denied, ec);
  for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec) || fec) continue;
    const uint64_t size = it->file_size(fec);
    if (fec) continue;  // deleted meanwhile
    out.total += size;
    ++out.files;
    const std::string name = it->path().filename().string();
    if (!suffix.empty() && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.matching += size;
    }
  }
  return out;
}

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(Errno("socket"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string err = Errno("bind 127.0.0.1:0");
    close(fd);
    return absl::InternalError(err);
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace strata::bench
