#include "strata/base/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace strata::log {

void Init(std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("strata");
  logger->set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

}  // namespace strata::log
