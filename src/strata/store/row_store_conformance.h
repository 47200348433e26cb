// The row-store conformance suite: one set of GoogleTest tests that every RowStore backend
// must pass unchanged (memory, RocksDB, Ceph RADOS). Snapshots are optional: the snapshot
// test skips on a backend whose NewSnapshot answers Unimplemented.
//
// A backend's test file instantiates it with a factory that returns a fresh, empty store
// whose expiry decisions follow the given ManualClock (the clock outlives the store):
//
//   INSTANTIATE_ROW_STORE_CONFORMANCE(Memory, [](strata::ManualClock* clock) {
//     return std::make_unique<strata::store::MemoryRowStore>(clock);
//   });
//
// The factory is called once per test; the store is destroyed at the end of that test, so a
// backend that needs cleanup (a temporary directory, a RADOS pool) does it in the returned
// store's destructor. Tests only use the RowStore interface and make no timing assertions.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "strata/base/clock.h"
#include "strata/store/row_store.h"

namespace strata::store::testing {

using RowStoreFactory = std::function<std::unique_ptr<RowStore>(ManualClock* clock)>;

struct RowStoreConformanceParam {
  std::string name;
  RowStoreFactory factory;
};

// Builds the parameter of an instantiation. Defined beside the tests, so that using it pulls
// the suite's object file (and its test registrations) out of the static library.
RowStoreConformanceParam MakeRowStoreConformanceParam(std::string name, RowStoreFactory factory);

class RowStoreConformanceTest : public ::testing::TestWithParam<RowStoreConformanceParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Opens (creating) a table of the store under test; fails the test on error.
  Table* OpenTable(const std::string& name, TableProfile profile = TableProfile::kLive);

  ManualClock clock_;  // declared first: it outlives store_
  std::unique_ptr<RowStore> store_;
};

}  // namespace strata::store::testing

// Instantiates the whole suite for one backend, at namespace scope (outside
// strata::store::testing). `prefix` names the instantiation in test names
// (<prefix>/RowStoreConformanceTest.<Test>/<prefix>); the rest is a RowStoreFactory expression
// (variadic, so a lambda with commas needs no extra parentheses). GoogleTest pastes the suite
// name into identifiers, hence the using-declaration instead of a qualified name.
#define INSTANTIATE_ROW_STORE_CONFORMANCE(prefix, ...)                                      \
  using ::strata::store::testing::RowStoreConformanceTest;                                 \
  INSTANTIATE_TEST_SUITE_P(                                                                 \
      prefix, RowStoreConformanceTest,                                                      \
      ::testing::Values(                                                                    \
          ::strata::store::testing::MakeRowStoreConformanceParam(#prefix, (__VA_ARGS__))),  \
      [](const ::testing::TestParamInfo<::strata::store::testing::RowStoreConformanceParam>& \
             info) { return info.param.name; })
