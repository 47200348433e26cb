// TableReporter: members, records and bytes of every table of the viewing service, by row
// kind, for operators (GET /v1/admin/viewing/tables, `strata viewing tables`) and the
// benchmark. It scans whole tables: expensive, never on a hot path.
//
// Thread-safe: it only reads the tables (row-store scans), and holds no state but their
// pointers. The figures are not a snapshot: rows written during a scan may or may not count.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/store/row_store.h"

namespace strata::viewing {

// Rows of one kind in a table and their logical size (before the row store's own block
// compression; blobs and summaries are already zstd-compressed by the codec).
struct RowKindReport {
  uint64_t rows = 0;
  uint64_t key_bytes = 0;    // partition + clustering key
  uint64_t value_bytes = 0;
};

// Per-table figures for operators and the benchmark.
struct TableReport {
  std::string table;
  std::string tier;  // "recent", "past" or "historical"
  uint64_t members = 0;
  uint64_t records = 0;
  uint64_t disk_bytes = 0;
  // By row kind: "live" (a live record), "meta" (a compressed history's metadata row),
  // "segment" (a chunk of compressed records), "state" (a tier's state row with its
  // summary), "current" / "change" (language preferences). docs/viewing.md has the layout.
  std::map<std::string, RowKindReport> rows;
};

class TableReporter {
 public:
  // The viewing service's tables by role (docs/viewing.md, "Tables"); they must outlive the
  // reporter.
  struct Tables {
    // Per data-type shard (plays, previews): its recent tier's live and compressed tables.
    std::vector<std::pair<store::Table*, store::Table*>> recent;
    store::Table* past = nullptr;        // plays_past_compressed
    store::Table* historical = nullptr;  // plays_historical
    store::Table* languages = nullptr;

    // Every table: each shard's live then compressed table, past, historical, languages.
    std::vector<store::Table*> All() const;
  };
  explicit TableReporter(Tables tables) : tables_(std::move(tables)) {}

  const Tables& tables() const { return tables_; }

  // One report per table, in the order of Tables::All. "records" counts live rows, the
  // records a compressed table's metadata rows list, the plays the historical summaries stand
  // for, and stored language changes. `progress` (may be null) is called after each table
  // with the tables done and the total.
  using Progress = std::function<void(size_t done, size_t total)>;
  absl::StatusOr<std::vector<TableReport>> Report(const Progress& progress = nullptr) const;

 private:
  // The kind of a row of `table` in TableReport::rows.
  std::string RowKind(const store::Table* table, std::string_view clustering) const;

  const Tables tables_;
};

}  // namespace strata::viewing
