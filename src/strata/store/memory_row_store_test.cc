#include "strata/store/memory_row_store.h"

#include <gtest/gtest.h>

#include "strata/store/row_store_conformance.h"

namespace strata::store {
namespace {

INSTANTIATE_ROW_STORE_CONFORMANCE(Memory, [](ManualClock* clock) -> std::unique_ptr<RowStore> {
  return std::make_unique<MemoryRowStore>(clock);
});

TEST(MemoryRowStoreTest, SnapshotsOfOtherStoresAreRejected) {
  ManualClock clock;
  MemoryRowStore a(&clock);
  MemoryRowStore b(&clock);
  absl::StatusOr<Table*> table = a.OpenTable({"t", TableProfile::kLive});
  ASSERT_TRUE(table.ok());
  absl::StatusOr<std::unique_ptr<Snapshot>> snapshot = b.NewSnapshot();
  ASSERT_TRUE(snapshot.ok());
  ReadOptions options;
  options.snapshot = snapshot->get();
  EXPECT_TRUE(absl::IsInvalidArgument((*table)->Get("p", "k", options).status()));
}

}  // namespace
}  // namespace strata::store
