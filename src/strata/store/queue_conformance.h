// The queue conformance suite: one set of GoogleTest tests that every Queue backend must
// pass unchanged (the embedded queue on memory and on RocksDB, and later Kafka).
//
// A backend's test file instantiates it with a factory of harnesses. A harness owns the
// durable state of one test (a row store, a temporary directory, a broker) and opens Queue
// objects over it; destroying the queue and opening another over the same harness is a
// restart, which the suite uses to check that committed offsets and messages survive and
// that uncommitted messages are delivered again:
//
//   INSTANTIATE_QUEUE_CONFORMANCE(Memory, [] { return std::make_unique<MyHarness>(); });
//
// The factory is called once per test; it may GTEST_SKIP() and return nullptr (a backend
// whose server is not there). Tests use only the Queue interface (plus the given
// ManualClock for publish times, retention and the redelivery timeout) and make no timing
// assertions; the one wall-clock bound (a Poll blocked for a minute must wake on a publish)
// checks the wake-up, not speed.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/store/queue.h"

namespace strata::store::testing {

// The redelivery timeout (ms by the ManualClock) that harnesses must configure.
inline constexpr Millis kConformanceRedeliveryTimeoutMs = 60'000;

class QueueHarness {
 public:
  virtual ~QueueHarness() = default;
  // Opens a queue over this harness's durable state, with publish times, retention and a
  // redelivery timeout of kConformanceRedeliveryTimeoutMs following `clock`, and metrics in
  // `metrics`. The suite destroys the previous queue before opening the next.
  virtual absl::StatusOr<std::unique_ptr<Queue>> Open(ManualClock* clock,
                                                      MetricsRegistry* metrics) = 0;
  // Whether EnforceRetention trims by the contract's rule (every known group committed past
  // a message, and it is older than the retention). Broker-backed queues whose broker trims
  // by age alone (Kafka) answer false, and the two retention tests skip, saying so.
  virtual bool TrimsOnEnforceRetention() const { return true; }
};

using QueueHarnessFactory = std::function<std::unique_ptr<QueueHarness>()>;

struct QueueConformanceParam {
  std::string name;
  QueueHarnessFactory factory;
};

// Test names and failure messages show the backend's name, not the parameter's bytes.
inline void PrintTo(const QueueConformanceParam& param, std::ostream* os) { *os << param.name; }

// Defined beside the tests, so that using it pulls the suite's object file (and its test
// registrations) out of the static library.
QueueConformanceParam MakeQueueConformanceParam(std::string name, QueueHarnessFactory factory);

class QueueConformanceTest : public ::testing::TestWithParam<QueueConformanceParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Destroys the current queue and opens another over the same state; fails the test on
  // error (queue_ is then null).
  void Restart();

  ManualClock clock_;        // declared first: outlives the queue
  MetricsRegistry metrics_;  // likewise
  std::unique_ptr<QueueHarness> harness_;
  std::unique_ptr<Queue> queue_;
};

}  // namespace strata::store::testing

// Instantiates the whole suite for one backend, at namespace scope (outside
// strata::store::testing). `prefix` names the instantiation; the rest is a
// QueueHarnessFactory expression.
#define INSTANTIATE_QUEUE_CONFORMANCE(prefix, ...)                                                \
  using ::strata::store::testing::QueueConformanceTest;                                           \
  INSTANTIATE_TEST_SUITE_P(                                                                       \
      prefix, QueueConformanceTest,                                                               \
      ::testing::Values(                                                                          \
          ::strata::store::testing::MakeQueueConformanceParam(#prefix, (__VA_ARGS__))),           \
      [](const ::testing::TestParamInfo<::strata::store::testing::QueueConformanceParam>& info) { \
        return info.param.name;                                                                   \
      })
