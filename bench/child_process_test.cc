#include "bench/child_process.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "bench/load_driver.h"
#include "gtest/gtest.h"

namespace strata::bench {
namespace {

ChildSpec Shell(const std::string& script, const std::string& log) {
  ChildSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.log_path = log;
  return spec;
}

class ChildProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("strata_child_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    log_ = (dir_ / "log").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Whether a live (not zombie) process is in process group `pgid`.
  static bool GroupAlive(pid_t pgid) {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(entry.path() / "stat");
      std::string line;
      if (!std::getline(in, line) || line.rfind(')') == std::string::npos) continue;
      std::istringstream fields(line.substr(line.rfind(')') + 2));
      std::string state;
      pid_t ppid = 0, pgrp = 0;
      if (fields >> state >> ppid >> pgrp && pgrp == pgid && state != "Z") return true;
    }
    return false;
  }

  std::filesystem::path dir_;
  std::string log_;
};

TEST_F(ChildProcessTest, StopsOnSignalAndLogsOutput) {
  auto child = ChildProcess::Start(Shell("echo started; exec sleep 30", log_));
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE((*child)->Running());
  std::string line;
  for (int i = 0; i < 500 && line.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::ifstream in(log_);
    std::getline(in, line);
  }
  EXPECT_EQ(line, "started");
  auto pss = ProcessTreePssBytes((*child)->pid());
  ASSERT_TRUE(pss.ok()) << pss.status();
  EXPECT_GT(*pss, 0u);
  EXPECT_TRUE(ProcessTreeCpuSeconds((*child)->pid()).ok());
  const auto t0 = SteadyClock::now();
  EXPECT_TRUE((*child)->Stop(SIGTERM, 10).ok());
  EXPECT_LT(SecondsSince(t0), 5);
  EXPECT_FALSE((*child)->Running());
  EXPECT_EQ(ProcessTreePssBytes((*child)->pid()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ChildProcessTest, ThreadCpuByRoleNamesBusyThreads) {
  // A process that burns 0.4 s of CPU in a thread it names, and then sleeps in it.
  auto child = ChildProcess::Start(
      Shell("exec python3 -c 'import ctypes,threading,time\n"
            "def spin():\n"
            "    ctypes.CDLL(None).prctl(15, b\"busy-role\", 0, 0, 0)\n"
            "    while time.thread_time() < 0.4: pass\n"
            "    time.sleep(30)\n"
            "threading.Thread(target=spin, daemon=True).start(); time.sleep(30)'",
            log_));
  ASSERT_TRUE(child.ok()) << child.status();
  std::map<std::string, double> roles;
  for (int i = 0; i < 1000 && roles["busy-role"] < 0.3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    roles = ThreadCpuSecondsByRole((*child)->pid());
  }
  EXPECT_GE(roles["busy-role"], 0.3);
  EXPECT_TRUE((*child)->Stop(SIGKILL, 10).ok());
  EXPECT_TRUE(ThreadCpuSecondsByRole((*child)->pid()).empty());
}

// How a child ended is told in words: what a failed start reports when its log is silent.
TEST_F(ChildProcessTest, ExitDescriptionNamesTheCodeOrTheSignal) {
  auto exits = ChildProcess::Start(Shell("exit 3", log_));
  ASSERT_TRUE(exits.ok()) << exits.status();
  EXPECT_TRUE((*exits)->Wait(10).ok());
  EXPECT_EQ((*exits)->ExitDescription(), "exit code 3");

  auto sleeps = ChildProcess::Start(Shell("exec sleep 60", log_));
  ASSERT_TRUE(sleeps.ok()) << sleeps.status();
  EXPECT_EQ((*sleeps)->ExitDescription(), "still running");
  (*sleeps)->Kill();
  EXPECT_EQ((*sleeps)->ExitDescription().rfind("signal 9 (", 0), 0u) << (*sleeps)->ExitDescription();
}

TEST_F(ChildProcessTest, WaitUntilReadyNamesAnExitAndATimeout) {
  auto exits = ChildProcess::Start(Shell("exit 4", log_));
  ASSERT_TRUE(exits.ok()) << exits.status();
  absl::Status s = WaitUntilReady(exits->get(), "the server", log_, 10, [] { return false; });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("the server exited while starting (exit code 4; see " + log_),
            std::string_view::npos)
      << s;

  auto sleeps = ChildProcess::Start(Shell("exec sleep 60", log_));
  ASSERT_TRUE(sleeps.ok()) << sleeps.status();
  s = WaitUntilReady(sleeps->get(), "the server", log_, 0.2, [] { return false; });
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_NE(s.message().find("did not answer within 0.2 s (see " + log_ + ")"), std::string_view::npos) << s;
  int polls = 0;
  EXPECT_TRUE(WaitUntilReady(sleeps->get(), "the server", log_, 10, [&] { return ++polls == 3; })
                  .ok());
  EXPECT_EQ(polls, 3);
  (*sleeps)->Kill();
}

TEST_F(ChildProcessTest, KillReachesWhatTheChildForkedAndStopFallsBackToIt) {
  // The shell ignores SIGTERM and waits on two background sleeps of its own.
  auto child = ChildProcess::Start(Shell("trap '' TERM; sleep 60 & sleep 60 & wait", log_));
  ASSERT_TRUE(child.ok()) << child.status();
  const pid_t pid = (*child)->pid();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the sleeps start
  absl::Status s = (*child)->Stop(SIGTERM, 0.3);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_FALSE((*child)->Running());
  const auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  while (GroupAlive(pid) && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(GroupAlive(pid)) << "the background sleeps outlived the kill";
}

TEST_F(ChildProcessTest, DestructorKillsARunningChild) {
  pid_t pid;
  {
    auto child = ChildProcess::Start(Shell("exec sleep 60", log_));
    ASSERT_TRUE(child.ok());
    pid = (*child)->pid();
  }
  EXPECT_FALSE(GroupAlive(pid));
}

TEST_F(ChildProcessTest, ReportsWhatCannotRun) {
  ChildSpec missing = Shell("", log_);
  missing.argv = {"/nonexistent/program"};
  auto child = ChildProcess::Start(missing);
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.status().message().find("/nonexistent/program"), std::string::npos);
  EXPECT_EQ(ChildProcess::Start(ChildSpec{}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(RunToCompletion(Shell("exit 0", log_), 10).ok());
  absl::Status failed = RunToCompletion(Shell("exit 3", log_), 10);
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find(log_), std::string::npos);
  EXPECT_FALSE(RunToCompletion(Shell("exec sleep 10", log_), 0.2).ok());
}

TEST_F(ChildProcessTest, MeasuresDirectoriesAndFindsAPort) {
  std::filesystem::create_directories(dir_ / "rows");
  std::ofstream(dir_ / "rows" / "000012.log") << std::string(1000, 'x');
  std::ofstream(dir_ / "rows" / "000013.sst") << std::string(300, 'x');
  std::ofstream(dir_ / "LOG") << std::string(7, 'x');
  const DirectoryBytes all = MeasureDirectory(dir_.string(), ".log");
  EXPECT_EQ(all.total, 1307u);
  EXPECT_EQ(all.matching, 1000u);
  EXPECT_EQ(MeasureDirectory((dir_ / "missing").string(), "").total, 0u);
  auto port = FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  EXPECT_GT(*port, 0);
}

}  // namespace
}  // namespace strata::bench
