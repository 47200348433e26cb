// MemoryRowStore: an in-memory RowStore (std::map based) for unit tests of service logic.
//
// It implements the whole contract of row_store.h, including expiry (against the injected
// Clock), PutIfNewer, snapshots and full-table scans, and passes the row-store conformance
// suite. Nothing is persisted: "durable" means "until the object is destroyed", and Sync()
// does nothing.
//
// Thread safety: every method is thread-safe; one mutex serialises all tables, which is
// plenty for tests. NewSnapshot copies every table, so keep snapshots to small data sets.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "strata/base/clock.h"
#include "strata/store/row_store.h"

namespace strata::store {

class MemoryTable;

class MemoryRowStore final : public RowStore {
 public:
  // `clock` decides expiry; it must outlive the store. nullptr = SystemClock::Default().
  explicit MemoryRowStore(Clock* clock = nullptr);
  ~MemoryRowStore() override;

  MemoryRowStore(const MemoryRowStore&) = delete;
  MemoryRowStore& operator=(const MemoryRowStore&) = delete;

  absl::StatusOr<Table*> OpenTable(const TableOptions& options) override;
  absl::Status Write(std::span<const PartitionWrite> writes) override;
  // Write is atomic across its batches, so it keeps the order's guarantee.
  absl::Status WriteInOrder(std::span<const PartitionWrite> writes) override {
    return Write(writes);
  }
  absl::StatusOr<std::unique_ptr<Snapshot>> NewSnapshot() override;
  absl::Status Sync() override { return absl::OkStatus(); }

 private:
  friend class MemoryTable;

  Clock* const clock_;
  std::mutex mu_;  // guards tables_ and the contents of every table
  std::map<std::string, std::unique_ptr<MemoryTable>, std::less<>> tables_;
};

}  // namespace strata::store
