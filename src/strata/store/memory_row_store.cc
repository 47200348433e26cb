#include "strata/store/memory_row_store.h"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

#include "strata/base/coding.h"
#include "strata/base/status.h"

namespace strata::store {
namespace {

// Cursors are opaque to callers. Both kinds start with a format byte so that an empty
// clustering key still gives a non-empty cursor.
constexpr char kCursorFormat = '\x01';

struct Cell {
  std::string value;
  Millis expire_at = 0;  // 0 = never
  uint64_t version = 0;  // PutIfNewer version; 0 for plain Put
};

using Cells = std::map<std::string, Cell, std::less<>>;
using Partitions = std::map<std::string, Cells, std::less<>>;

bool Expired(const Cell& cell, Millis now) { return cell.expire_at != 0 && cell.expire_at <= now; }

std::string RowCursor(std::string_view clustering) {
  std::string cursor(1, kCursorFormat);
  cursor.append(clustering);
  return cursor;
}

absl::StatusOr<std::string_view> DecodeRowCursor(std::string_view cursor) {
  if (cursor.empty() || cursor[0] != kCursorFormat) {
    return absl::InvalidArgumentError("cursor: not a cursor of this store");
  }
  return cursor.substr(1);
}

// Table cursor: format byte, varint partition length, partition, clustering.
std::string TableCursor(std::string_view partition, std::string_view clustering) {
  std::string cursor(1, kCursorFormat);
  coding::PutLengthPrefixed(&cursor, partition);
  cursor.append(clustering);
  return cursor;
}

absl::Status DecodeTableCursor(std::string_view cursor, std::string_view* partition,
                               std::string_view* clustering) {
  if (cursor.empty() || cursor[0] != kCursorFormat) {
    return absl::InvalidArgumentError("cursor: not a cursor of this store");
  }
  cursor.remove_prefix(1);
  if (!coding::GetLengthPrefixed(&cursor, partition)) {
    return absl::InvalidArgumentError("cursor: truncated");
  }
  *clustering = cursor;
  return absl::OkStatus();
}

class MemorySnapshot final : public Snapshot {
 public:
  MemorySnapshot(const MemoryRowStore* owner,
                 std::map<const MemoryTable*, Partitions> tables)
      : owner_(owner), tables_(std::move(tables)) {}

  const MemoryRowStore* owner() const { return owner_; }
  // The table's data as of the snapshot; empty for tables created after it.
  const Partitions& Data(const MemoryTable* table) const {
    static const Partitions* const kEmpty = new Partitions();
    auto it = tables_.find(table);
    return it == tables_.end() ? *kEmpty : it->second;
  }

 private:
  const MemoryRowStore* owner_;
  std::map<const MemoryTable*, Partitions> tables_;
};

}  // namespace

class MemoryTable final : public Table {
 public:
  MemoryTable(MemoryRowStore* store, std::string name) : store_(store), name_(std::move(name)) {}

  const std::string& name() const override { return name_; }

  absl::StatusOr<std::string> Get(std::string_view partition, std::string_view clustering,
                                  const ReadOptions& options) override {
    STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
    STRATA_RETURN_IF_ERROR(ValidateClusteringKey(clustering));
    std::lock_guard lock(store_->mu_);
    STRATA_ASSIGN_OR_RETURN(const Partitions* data, DataFor(options));
    auto pit = data->find(partition);
    if (pit != data->end()) {
      auto cit = pit->second.find(clustering);
      if (cit != pit->second.end() && !Expired(cit->second, Now())) return cit->second.value;
    }
    return absl::NotFoundError("row not found");
  }

  absl::Status Put(std::string_view partition, std::string_view clustering,
                   std::string_view value, Millis expire_at) override {
    WriteBatch batch;
    batch.Put(std::string(clustering), std::string(value), expire_at);
    return Apply(partition, batch);
  }

  absl::Status Delete(std::string_view partition, std::string_view clustering) override {
    WriteBatch batch;
    batch.Delete(std::string(clustering));
    return Apply(partition, batch);
  }

  absl::Status DeleteRange(std::string_view partition, std::string_view start,
                           std::string_view end) override {
    WriteBatch batch;
    batch.DeleteRange(std::string(start), std::string(end));
    return Apply(partition, batch);
  }

  absl::Status Apply(std::string_view partition, const WriteBatch& batch) override {
    STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
    STRATA_RETURN_IF_ERROR(ValidateWriteBatch(batch));
    std::lock_guard lock(store_->mu_);
    STRATA_RETURN_IF_ERROR(CheckLocked(partition, batch));
    ApplyLocked(partition, batch);
    return absl::OkStatus();
  }

  absl::StatusOr<ScanPage> Scan(std::string_view partition, const ScanOptions& options,
                                const ReadOptions& read_options) override {
    STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
    STRATA_RETURN_IF_ERROR(ValidateScanOptions(options));
    std::optional<std::string_view> after;  // the last row of the previous page
    if (!options.cursor.empty()) {
      STRATA_ASSIGN_OR_RETURN(after, DecodeRowCursor(options.cursor));
    }
    std::lock_guard lock(store_->mu_);
    STRATA_ASSIGN_OR_RETURN(const Partitions* data, DataFor(read_options));
    ScanPage page;
    auto pit = data->find(partition);
    if (pit == data->end()) return page;
    const Cells& cells = pit->second;
    const Millis now = Now();

    // [lo, hi) is the range of rows the scan may still return.
    Cells::const_iterator lo = cells.lower_bound(options.start);
    Cells::const_iterator hi =
        options.end.empty() ? cells.end() : cells.lower_bound(options.end);
    if (after.has_value()) {
      if (!options.reverse) {
        if (*after >= options.start) lo = cells.upper_bound(*after);
      } else if (options.end.empty() || *after < options.end) {
        hi = cells.lower_bound(*after);
      }
    }
    if (lo == cells.end() || (hi != cells.end() && !(lo->first < hi->first))) return page;

    auto take = [&](const Cells::value_type& entry) {
      if (Expired(entry.second, now)) return true;
      if (page.rows.size() == options.limit) {
        page.next_cursor = RowCursor(page.rows.back().clustering);
        return false;
      }
      page.rows.push_back(Row{entry.first, entry.second.value});
      return true;
    };
    if (!options.reverse) {
      for (auto it = lo; it != hi; ++it) {
        if (!take(*it)) break;
      }
    } else {
      for (auto it = hi; it != lo;) {
        --it;
        if (!take(*it)) break;
      }
    }
    return page;
  }

  absl::StatusOr<std::vector<KeyRange>> SplitRanges(int n) override {
    if (n < 1) return absl::InvalidArgumentError("n: must be >= 1");
    std::lock_guard lock(store_->mu_);
    std::vector<KeyRange> ranges;
    const size_t parts = partitions_.size();
    const size_t k = std::min<size_t>(static_cast<size_t>(n), std::max<size_t>(parts, 1));
    // Ranges are [begin, end) over raw partition keys; boundaries fall on partitions, so a
    // partition is never split between two ranges.
    std::string begin;
    auto it = partitions_.begin();
    size_t index = 0;
    for (size_t i = 1; i < k; ++i) {
      const size_t target = i * parts / k;
      while (index < target) {
        ++it;
        ++index;
      }
      ranges.push_back(KeyRange{begin, it->first});
      begin = it->first;
    }
    ranges.push_back(KeyRange{begin, ""});
    return ranges;
  }

  absl::StatusOr<TableScanPage> ScanRange(const KeyRange& range, size_t limit,
                                          std::string_view cursor,
                                          const ReadOptions& options) override {
    STRATA_RETURN_IF_ERROR(ValidatePageLimit(limit));
    std::string_view after_partition;
    std::string_view after_clustering;
    const bool resume = !cursor.empty();
    if (resume) {
      STRATA_RETURN_IF_ERROR(DecodeTableCursor(cursor, &after_partition, &after_clustering));
    }
    std::lock_guard lock(store_->mu_);
    STRATA_ASSIGN_OR_RETURN(const Partitions* data, DataFor(options));
    const Millis now = Now();
    TableScanPage page;
    std::string_view first = range.begin;
    if (resume && after_partition > first) first = after_partition;
    for (auto pit = data->lower_bound(first); pit != data->end(); ++pit) {
      if (!range.end.empty() && pit->first >= range.end) break;
      auto cit = pit->second.begin();
      if (resume && pit->first == after_partition) cit = pit->second.upper_bound(after_clustering);
      for (; cit != pit->second.end(); ++cit) {
        if (Expired(cit->second, now)) continue;
        if (page.rows.size() == limit) {
          page.next_cursor = TableCursor(page.rows.back().partition, page.rows.back().clustering);
          return page;
        }
        page.rows.push_back(TableRow{pit->first, cit->first, cit->second.value});
      }
    }
    return page;
  }

  absl::StatusOr<TableStats> Stats() override {
    std::lock_guard lock(store_->mu_);
    const Millis now = Now();
    TableStats stats;
    for (const auto& [partition, cells] : partitions_) {
      for (const auto& [clustering, cell] : cells) {
        if (Expired(cell, now)) continue;
        ++stats.approximate_rows;
        stats.disk_bytes += partition.size() + clustering.size() + cell.value.size();
      }
    }
    return stats;
  }

  // The batch's conditions (WriteBatch::Expect); the caller holds store_->mu_.
  absl::Status CheckLocked(std::string_view partition, const WriteBatch& batch) const {
    if (batch.conditions().empty()) return absl::OkStatus();
    auto pit = partitions_.find(partition);
    const Millis now = Now();
    for (const WriteBatch::Condition& c : batch.conditions()) {
      const Cell* cell = nullptr;
      if (pit != partitions_.end()) {
        auto cit = pit->second.find(c.key);
        if (cit != pit->second.end() && !Expired(cit->second, now)) cell = &cit->second;
      }
      const bool holds = c.value.has_value() ? (cell != nullptr && cell->value == *c.value)
                                             : cell == nullptr;
      if (!holds) return absl::FailedPreconditionError("condition: the row has changed");
    }
    return absl::OkStatus();
  }

  // Applies a validated batch; the caller holds store_->mu_.
  void ApplyLocked(std::string_view partition, const WriteBatch& batch) {
    if (batch.empty()) return;
    auto pit = partitions_.find(partition);
    if (pit == partitions_.end()) pit = partitions_.emplace(partition, Cells()).first;
    Cells& cells = pit->second;
    const Millis now = Now();
    for (const WriteBatch::Op& op : batch.ops()) {
      switch (op.type) {
        case WriteBatch::OpType::kPut:
          cells.insert_or_assign(op.key, Cell{op.value, op.expire_at, 0});
          break;
        case WriteBatch::OpType::kPutIfNewer: {
          auto it = cells.find(op.key);
          // An expired row counts as absent: other backends may already have removed it.
          // Ties go to the later write.
          if (it == cells.end() || Expired(it->second, now) || it->second.version <= op.version) {
            cells.insert_or_assign(op.key, Cell{op.value, op.expire_at, op.version});
          }
          break;
        }
        case WriteBatch::OpType::kDelete:
          cells.erase(op.key);
          break;
        case WriteBatch::OpType::kDeleteRange: {
          auto first = cells.lower_bound(op.key);
          auto last = op.value.empty() ? cells.end() : cells.lower_bound(op.value);
          if (op.value.empty() || op.key < op.value) cells.erase(first, last);
          break;
        }
      }
    }
    if (cells.empty()) partitions_.erase(pit);
  }

  // The caller holds store_->mu_.
  Partitions CopyLocked() const { return partitions_; }

 private:
  Millis Now() const { return store_->clock_->NowMillis(); }

  // The data a read sees: the live maps, or the snapshot's copy. The caller holds the lock.
  absl::StatusOr<const Partitions*> DataFor(const ReadOptions& options) const {
    if (options.snapshot == nullptr) return &partitions_;
    const auto* snapshot = dynamic_cast<const MemorySnapshot*>(options.snapshot);
    if (snapshot == nullptr || snapshot->owner() != store_) {
      return absl::InvalidArgumentError("snapshot: not a snapshot of this store");
    }
    return &snapshot->Data(this);
  }

  MemoryRowStore* const store_;
  const std::string name_;
  Partitions partitions_;  // guarded by store_->mu_; partitions are never left empty
};

MemoryRowStore::MemoryRowStore(Clock* clock)
    : clock_(clock != nullptr ? clock : SystemClock::Default()) {}

MemoryRowStore::~MemoryRowStore() = default;

absl::StatusOr<Table*> MemoryRowStore::OpenTable(const TableOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateTableName(options.name));
  std::lock_guard lock(mu_);
  auto it = tables_.find(options.name);
  if (it == tables_.end()) {
    it = tables_.emplace(options.name, std::make_unique<MemoryTable>(this, options.name)).first;
  }
  return it->second.get();
}

absl::Status MemoryRowStore::Write(std::span<const PartitionWrite> writes) {
  std::vector<MemoryTable*> tables;
  tables.reserve(writes.size());
  for (const PartitionWrite& write : writes) {
    auto* table = dynamic_cast<MemoryTable*>(write.table);
    if (table == nullptr) return absl::InvalidArgumentError("table: not a table of this store");
    STRATA_RETURN_IF_ERROR(ValidatePartitionKey(write.partition));
    STRATA_RETURN_IF_ERROR(ValidateWriteBatch(write.batch));
    tables.push_back(table);
  }
  std::lock_guard lock(mu_);
  for (MemoryTable* table : tables) {
    auto it = tables_.find(table->name());
    if (it == tables_.end() || it->second.get() != table) {
      return absl::InvalidArgumentError("table: not a table of this store");
    }
  }
  for (size_t i = 0; i < writes.size(); ++i) {
    STRATA_RETURN_IF_ERROR(tables[i]->CheckLocked(writes[i].partition, writes[i].batch));
  }
  for (size_t i = 0; i < writes.size(); ++i) {
    tables[i]->ApplyLocked(writes[i].partition, writes[i].batch);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Snapshot>> MemoryRowStore::NewSnapshot() {
  std::lock_guard lock(mu_);
  std::map<const MemoryTable*, Partitions> copy;
  for (const auto& [name, table] : tables_) copy.emplace(table.get(), table->CopyLocked());
  return std::unique_ptr<Snapshot>(std::make_unique<MemorySnapshot>(this, std::move(copy)));
}

}  // namespace strata::store
