// Helpers of viewing_bench.cc exposed for its tests. Not part of the bench's API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::bench::internal {

// The unsigned integer value of the first `"key": N` in a JSON text, or nullopt.
std::optional<uint64_t> JsonUint(std::string_view body, std::string_view key);
// The `next_cursor` string of a history page, or nullopt when it is null/absent/empty.
std::optional<std::string> NextCursor(std::string_view body);
size_t CountOccurrences(std::string_view body, std::string_view needle);
// Whether a /metrics line is one the report prints.
bool KeepMetricLine(std::string_view line);

}  // namespace strata::bench::internal
