// Helpers of compare_bench.cc exposed for its tests. Not part of the bench's API.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/history_workload.h"

namespace strata::bench::internal {

// Parses the "records" of a history page (GET /v1/members/{m}/viewing) into *out. False when
// the body is not that shape. *detail_from tells whether the page has "detail_from" (plays
// before it exist only as summaries).
bool ParseHistoryRecords(std::string_view body, std::vector<StoredPlay>* out, bool* detail_from);

// The value of command-line flag `flag` ("--sync") in `args`, given as "--sync=x" or
// "--sync x" (the last one wins), or nullopt.
std::optional<std::string> FlagValue(const std::vector<std::string>& args, std::string_view flag);

}  // namespace strata::bench::internal
