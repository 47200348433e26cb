#include "strata/server/file_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "strata/base/log.h"

namespace strata::server {

FileLimitPlan PlanFileLimit(uint64_t soft, uint64_t hard, uint64_t max_connections) {
  FileLimitPlan plan;
  const uint64_t ceiling = hard == UINT64_MAX ? kUnlimitedFileDescriptors : hard;
  if (soft < ceiling) plan.raise_to = ceiling;
  const uint64_t after = plan.raise_to > 0 ? plan.raise_to : soft;
  if (max_connections > 0 && after < max_connections + kReservedFileDescriptors) {
    plan.warning = "max_connections: " + std::to_string(max_connections) +
                   " connections need about " +
                   std::to_string(max_connections + kReservedFileDescriptors) +
                   " file descriptors, but the open-file limit is " + std::to_string(after) +
                   " (hard limit " + (hard == UINT64_MAX ? "unlimited" : std::to_string(hard)) +
                   "): connections past it are refused when accept() fails with EMFILE. Raise "
                   "the hard limit (ulimit -Hn, LimitNOFILE= in a systemd unit) or lower "
                   "--max-connections";
  }
  return plan;
}

uint64_t RaiseFileLimit(uint64_t max_connections) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    STRATA_LOG_WARN("getrlimit(RLIMIT_NOFILE) failed", "error", std::strerror(errno));
    return 0;
  }
  const uint64_t soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
  const uint64_t hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : rl.rlim_max;
  FileLimitPlan plan = PlanFileLimit(soft, hard, max_connections);
  uint64_t in_force = soft;
  if (plan.raise_to > 0) {
    rlimit raised = rl;
    raised.rlim_cur = static_cast<rlim_t>(plan.raise_to);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      in_force = plan.raise_to;
      STRATA_LOG_INFO("raised the open-file limit to the hard limit", "from", soft, "to",
                      plan.raise_to);
    } else {
      STRATA_LOG_WARN("could not raise the open-file limit", "soft", soft, "to", plan.raise_to,
                      "error", std::strerror(errno));
      plan = PlanFileLimit(soft, soft, max_connections);  // the warning for what stays
    }
  }
  if (!plan.warning.empty()) STRATA_LOG_WARN(plan.warning);
  return in_force;
}

}  // namespace strata::server
