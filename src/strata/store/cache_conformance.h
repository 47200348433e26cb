// The cache conformance suite: one set of GoogleTest tests that every Cache backend must
// pass unchanged (the in-process LRU, memcached).
//
//   INSTANTIATE_CACHE_CONFORMANCE(Lru, /*real_clock=*/false, [](strata::ManualClock* clock) {
//     return ...;  // std::unique_ptr<strata::store::Cache> whose expiry follows `clock`
//   });
//
// The factory is called once per test, for a fresh, empty cache of at least 16 MiB; the
// cache is destroyed at the end of the test (a backend that runs servers stops them in its
// destructor). An optional second expression, a CacheSkipCheck, skips every test with its
// message when the environment lacks what the backend needs (a server binary).
//
// With real_clock = true (a backend whose expiry follows wall time, such as memcached) the
// suite sleeps where it would advance the ManualClock, and skips the checks of exact,
// millisecond expiry. No timing assertions.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "strata/base/clock.h"
#include "strata/store/cache.h"

namespace strata::store::testing {

using CacheFactory = std::function<std::unique_ptr<Cache>(ManualClock* clock)>;

// Returns why the backend cannot run here (e.g. "memcached binary not found"), or "" to run.
using CacheSkipCheck = std::function<std::string()>;

struct CacheConformanceParam {
  std::string name;
  bool real_clock = false;
  CacheFactory factory;
  CacheSkipCheck skip_check;  // may be empty
};

// Test names and failure messages show the backend's name, not the parameter's bytes.
inline void PrintTo(const CacheConformanceParam& param, std::ostream* os) { *os << param.name; }

// Defined beside the tests, so that using it pulls the suite's object file out of the
// static library.
CacheConformanceParam MakeCacheConformanceParam(std::string name, bool real_clock,
                                                CacheFactory factory,
                                                CacheSkipCheck skip_check = nullptr);

class CacheConformanceTest : public ::testing::TestWithParam<CacheConformanceParam> {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Advances the ManualClock, and sleeps as long for a real-clock backend.
  void AdvanceTime(Millis ms);

  ManualClock clock_;  // declared first: outlives cache_
  std::unique_ptr<Cache> cache_;
};

}  // namespace strata::store::testing

#define INSTANTIATE_CACHE_CONFORMANCE(prefix, real_clock, ...)                                    \
  using ::strata::store::testing::CacheConformanceTest;                                           \
  INSTANTIATE_TEST_SUITE_P(                                                                       \
      prefix, CacheConformanceTest,                                                               \
      ::testing::Values(                                                                          \
          ::strata::store::testing::MakeCacheConformanceParam(#prefix, real_clock, __VA_ARGS__)), \
      [](const ::testing::TestParamInfo<::strata::store::testing::CacheConformanceParam>& info) { \
        return info.param.name;                                                                   \
      })
