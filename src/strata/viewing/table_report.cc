#include "strata/viewing/table_report.h"

#include <functional>

#include "strata/base/status.h"
#include "strata/viewing/language_preferences.h"
#include "strata/viewing/segments.h"
#include "strata/viewing/summary.h"
#include "strata/viewing/viewing_internal.h"

namespace strata::viewing {
namespace {

using internal::kMetaKey;

// Adds to a table's report what one row says about records.
using RecordCounter = std::function<absl::Status(const store::TableRow&, TableReport*)>;

// A compressed table: its metadata rows list the records its chunks hold.
absl::Status CountMetaRecords(const store::TableRow& row, TableReport* r) {
  if (row.clustering == kMetaKey) {
    STRATA_ASSIGN_OR_RETURN(HistoryMeta meta, DecodeMeta(row.value));
    r->records += meta.records();
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<store::Table*> TableReporter::Tables::All() const {
  std::vector<store::Table*> out;
  for (const auto& [live, compressed] : recent) {
    out.push_back(live);
    out.push_back(compressed);
  }
  out.push_back(past);
  out.push_back(historical);
  out.push_back(languages);
  return out;
}

std::string TableReporter::RowKind(const store::Table* table,
                                   std::string_view clustering) const {
  if (table == tables_.languages) {
    return LanguagePreferences::IsChangeRow(clustering) ? "change" : "current";
  }
  if (table == tables_.historical) return "state";
  for (const auto& [live, compressed] : tables_.recent) {
    if (table == live) return "live";
  }
  if (clustering == kMetaKey) return "meta";
  if (!clustering.empty() && clustering[0] == 's') return "segment";
  return "state";  // the past tier's "p" row
}

absl::StatusOr<std::vector<TableReport>> TableReporter::Report(const Progress& progress) const {
  std::vector<TableReport> out;
  const size_t total = tables_.All().size();
  auto scan_table = [&](store::Table* table, const RecordCounter& count) -> absl::Status {
    TableReport rep;
    rep.table = table->name();
    rep.tier = table == tables_.past         ? "past"
               : table == tables_.historical ? "historical"
                                             : "recent";
    STRATA_ASSIGN_OR_RETURN(auto ranges, table->SplitRanges(1));
    std::string last_partition;
    bool any = false;
    for (const auto& range : ranges) {
      std::string cursor;
      do {
        STRATA_ASSIGN_OR_RETURN(auto page,
                                table->ScanRange(range, store::kMaxPageRows, cursor));
        for (const auto& row : page.rows) {
          if (!any || row.partition != last_partition) {
            ++rep.members;
            last_partition = row.partition;
            any = true;
          }
          RowKindReport& kind = rep.rows[RowKind(table, row.clustering)];
          ++kind.rows;
          kind.key_bytes += row.partition.size() + row.clustering.size();
          kind.value_bytes += row.value.size();
          STRATA_RETURN_IF_ERROR(count(row, &rep));
        }
        cursor = std::move(page.next_cursor);
      } while (!cursor.empty());
    }
    STRATA_ASSIGN_OR_RETURN(store::TableStats stats, table->Stats());
    rep.disk_bytes = stats.disk_bytes;
    out.push_back(std::move(rep));
    if (progress) progress(out.size(), total);
    return absl::OkStatus();
  };
  for (const auto& [live, compressed] : tables_.recent) {
    STRATA_RETURN_IF_ERROR(scan_table(live, [](const store::TableRow&, TableReport* r) {
      ++r->records;
      return absl::OkStatus();
    }));
    STRATA_RETURN_IF_ERROR(scan_table(compressed, CountMetaRecords));
  }
  STRATA_RETURN_IF_ERROR(scan_table(tables_.past, CountMetaRecords));
  // Historical: "records" counts the plays its summaries stand for.
  STRATA_RETURN_IF_ERROR(
      scan_table(tables_.historical, [](const store::TableRow& row, TableReport* r) {
        STRATA_ASSIGN_OR_RETURN(HistoricalState state, DecodeHistoricalState(row.value));
        for (const auto& t : state.summary) r->records += t.plays;
        return absl::OkStatus();
      }));
  STRATA_RETURN_IF_ERROR(
      scan_table(tables_.languages, [](const store::TableRow& row, TableReport* r) {
        if (LanguagePreferences::IsChangeRow(row.clustering)) ++r->records;
        return absl::OkStatus();
      }));
  return out;
}

}  // namespace strata::viewing
