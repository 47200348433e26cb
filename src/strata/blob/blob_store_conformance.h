// The blob-store conformance suite: GoogleTest tests every BlobStore implementation must pass
// unchanged (local files now, S3 later). A backend's test instantiates it with a factory that
// returns a fresh, empty store whose part size is `part_bytes` (the suite uses small parts to
// exercise multi-part blobs):
//
//   INSTANTIATE_BLOB_STORE_CONFORMANCE(Local, [](uint64_t part_bytes) { ... });
//
// The store is destroyed at the end of each test; a backend that needs cleanup (a temporary
// directory, a bucket) does it in the returned store's destructor. A factory that has no
// server to run against calls GTEST_SKIP() (from a void helper) and returns nullptr. No
// timing assertions.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "strata/blob/blob_store.h"

namespace strata::blob::testing {

using BlobStoreFactory = std::function<std::unique_ptr<BlobStore>(uint64_t part_bytes)>;

// What a store may leave out of the contract, where the contract allows it.
struct BlobStoreTraits {
  // Whether every blob's BlobInfo::modified_ms is set. false: some blobs may answer 0 (the
  // inline store's rows keep no time); a time that is set must still be right.
  bool every_blob_has_modified_time = true;
};

struct BlobStoreConformanceParam {
  std::string name;
  BlobStoreFactory factory;
  BlobStoreTraits traits;
};

// Defined beside the tests, so using it pulls the suite's registrations out of the library.
BlobStoreConformanceParam MakeBlobStoreConformanceParam(std::string name, BlobStoreFactory factory,
                                                        BlobStoreTraits traits = {});

class BlobStoreConformanceTest : public ::testing::TestWithParam<BlobStoreConformanceParam> {
 protected:
  static constexpr uint64_t kPartBytes = 4096;
  void SetUp() override;
  void TearDown() override { store_.reset(); }

  std::unique_ptr<BlobStore> store_;
};

}  // namespace strata::blob::testing

#define INSTANTIATE_BLOB_STORE_CONFORMANCE(prefix, ...) \
  INSTANTIATE_BLOB_STORE_CONFORMANCE_WITH_TRAITS(       \
      prefix, ::strata::blob::testing::BlobStoreTraits{}, __VA_ARGS__)

// The same for a store that leaves out what BlobStoreTraits allows.
#define INSTANTIATE_BLOB_STORE_CONFORMANCE_WITH_TRAITS(prefix, traits, ...)                  \
  using ::strata::blob::testing::BlobStoreConformanceTest;                                   \
  INSTANTIATE_TEST_SUITE_P(                                                                  \
      prefix, BlobStoreConformanceTest,                                                      \
      ::testing::Values(::strata::blob::testing::MakeBlobStoreConformanceParam(              \
          #prefix, (__VA_ARGS__), (traits))),                                                \
      [](const ::testing::TestParamInfo<::strata::blob::testing::BlobStoreConformanceParam>& \
             info) { return info.param.name; })
