// Named crash points for fault-injection tests (in the spirit of RocksDB's sync points).
//
// STRATA_CRASH_POINT("rollup.after_chunks") kills the process with _exit(86) -- no
// destructors, no flushes, like kill -9 -- when the environment variable STRATA_CRASH_AT
// equals that name. Without the variable, a crash point costs one predictable branch.
// Tests start a child process with the variable set and check what survives a restart.
#pragma once

#include <string>
#include <string_view>

namespace strata {

// Exit code of a process killed at a crash point.
inline constexpr int kCrashPointExitCode = 86;

// Returns the armed crash point name, or "" (read from the environment at start-up).
std::string_view ArmedCrashPoint();
// Arms a crash point from code (tests that fork a child). Call before starting threads.
void SetCrashPointForTesting(std::string_view name);

// A gtest-safe name for a crash point ("rotate.past_committed" -> "rotate_past_committed"),
// for INSTANTIATE_TEST_SUITE_P name generators.
inline std::string CrashPointTestName(std::string name) {
  for (char& c : name) {
    if (c == '.') c = '_';
  }
  return name;
}
// Dies if `name` is the armed crash point.
void MaybeCrash(std::string_view name);

}  // namespace strata

#define STRATA_CRASH_POINT(name)                                       \
  do {                                                                 \
    if (!::strata::ArmedCrashPoint().empty()) ::strata::MaybeCrash(name); \
  } while (0)
