// The small demo dataset that `strata demo load` posts to a server: a few members with plays,
// previews and a language change, deterministic, with times relative to `now_ms`.
#pragma once

#include <cstdint>
#include <string>

namespace strata::cli {

// NDJSON events (one per line) for members 1..members.
std::string DemoEvents(uint64_t members, int64_t now_ms);

}  // namespace strata::cli
