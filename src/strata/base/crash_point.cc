#include "strata/base/crash_point.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace strata {

namespace {
std::string& Armed() {
  static std::string* armed = [] {
    const char* v = std::getenv("STRATA_CRASH_AT");
    return new std::string(v ? v : "");
  }();
  return *armed;
}
}  // namespace

std::string_view ArmedCrashPoint() { return Armed(); }

void SetCrashPointForTesting(std::string_view name) { Armed() = std::string(name); }

void MaybeCrash(std::string_view name) {
  if (ArmedCrashPoint() == name) _exit(kCrashPointExitCode);
}

}  // namespace strata
