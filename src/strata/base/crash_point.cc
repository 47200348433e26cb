#include "strata/base/crash_point.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace strata {

std::string_view ArmedCrashPoint() {
  static const std::string armed = [] {
    const char* v = std::getenv("STRATA_CRASH_AT");
    return std::string(v ? v : "");
  }();
  return armed;
}

void MaybeCrash(std::string_view name) {
  if (ArmedCrashPoint() == name) _exit(kCrashPointExitCode);
}

}  // namespace strata
