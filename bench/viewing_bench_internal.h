// Helpers of viewing_bench.cc exposed for its tests. Not part of the bench's API.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bench::internal {

// The unsigned integer value of the first `"key": N` in a JSON text, or nullopt.
std::optional<uint64_t> JsonUint(std::string_view body, std::string_view key);
// The `next_cursor` string of a history page, or nullopt when it is null/absent/empty.
std::optional<std::string> NextCursor(std::string_view body);
size_t CountOccurrences(std::string_view body, std::string_view needle);
// Whether a /metrics line is one the report prints.
bool KeepMetricLine(std::string_view line);

// One table of GET /v1/admin/viewing/tables.
struct TableFigures {
  std::string table;
  uint64_t records = 0;
  uint64_t disk_bytes = 0;
  std::map<std::string, uint64_t> row_bytes;  // row kind -> key + value bytes
};
// The tables of that answer, in its order; tables missing records or disk_bytes are left out.
std::vector<TableFigures> ParseTableReport(std::string_view body);
// The answer's top-level "data_dir_bytes_per_record" (the whole data directory over the
// records stored); negative when absent or null.
double ParseDataDirBytesPerRecord(std::string_view body);

}  // namespace strata::bench::internal
