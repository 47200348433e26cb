// The AIMD throttle: additive increase while healthy, multiplicative decrease on slow or
// loaded intervals, per-signal idle baselines, the hold after a latency cut, batch tokens.
#include "strata/base/aimd_throttle.h"

#include <gtest/gtest.h>

#include <chrono>

namespace strata {
namespace {

TEST(AimdThrottleTest, AdditiveIncreaseMultiplicativeDecrease) {
  ThrottleOptions o;
  o.initial_rate = 1000;
  o.additive_step = 100;
  o.decrease_factor = 0.5;
  o.latency_factor = 1.5;
  o.latency_floor_ms = 0.5;
  o.latency_hold_steps = 0;
  AimdThrottle t(o);
  LoadSample idle;
  idle.p99_ms = {2.0, 10.0};  // GET, PUT
  t.Update(idle, /*sweeping=*/false);
  EXPECT_DOUBLE_EQ(t.baseline_p99_ms(0), 2.0);
  EXPECT_DOUBLE_EQ(t.baseline_p99_ms(1), 10.0);
  LoadSample ok;
  ok.p99_ms = {2.9, 14.0};  // each < 1.5 x its own baseline
  EXPECT_DOUBLE_EQ(t.Update(ok, true), 1100);
  LoadSample slow;
  slow.p99_ms = {3.1, 5.0};  // GET regressed, though below PUT's p99
  EXPECT_DOUBLE_EQ(t.Update(slow, true), 550);
  LoadSample no_data;
  no_data.p99_ms = {-1, -1};
  EXPECT_DOUBLE_EQ(t.Update(no_data, true), 650);
  LoadSample compaction;
  compaction.pending_compaction_bytes = o.max_pending_compaction_bytes + 1;
  EXPECT_DOUBLE_EQ(t.Update(compaction, true), 325);
  LoadSample stalled;
  stalled.write_stalled = true;
  for (int i = 0; i < 20; ++i) t.Update(stalled, true);
  EXPECT_DOUBLE_EQ(t.rate(), o.min_rate);
  EXPECT_EQ(t.latency_cuts(), 1u);
  EXPECT_EQ(t.load_cuts(), 21u);
}

TEST(AimdThrottleTest, ALatencyCutHoldsWhileTheWindowStillShowsTheOldRate) {
  ThrottleOptions o;
  o.initial_rate = 1600;
  o.additive_step = 100;
  o.decrease_factor = 0.5;
  o.latency_factor = 1.5;
  o.latency_floor_ms = 0.5;
  o.latency_hold_steps = 2;
  AimdThrottle t(o);
  LoadSample idle;
  idle.p99_ms = {2.0};
  t.Update(idle, false);
  LoadSample slow;
  slow.p99_ms = {4.0};
  EXPECT_DOUBLE_EQ(t.Update(slow, true), 800);  // cut
  EXPECT_DOUBLE_EQ(t.Update(slow, true), 800);  // held
  EXPECT_DOUBLE_EQ(t.Update(slow, true), 800);  // held
  EXPECT_DOUBLE_EQ(t.Update(slow, true), 400);  // still slow with a fresh window: cut
  LoadSample ok;
  ok.p99_ms = {2.5};
  EXPECT_DOUBLE_EQ(t.Update(ok, true), 500);  // healthy: grows, and ends the hold
  EXPECT_DOUBLE_EQ(t.Update(slow, true), 250);
  // Store load is never held.
  LoadSample stalled;
  stalled.p99_ms = {4.0};
  stalled.write_stalled = true;
  EXPECT_DOUBLE_EQ(t.Update(stalled, true), 125);
  EXPECT_EQ(t.latency_cuts(), 4u);
  EXPECT_EQ(t.latency_holds(), 2u);
}

TEST(AimdThrottleTest, ABatchTakesItsSlotsFromTheNextCaller) {
  ThrottleOptions o;
  o.initial_rate = 100;  // 10 ms a slot
  o.min_rate = 1;
  AimdThrottle t(o);
  // The first batch of 30 starts at once (its first slot is due); the next caller waits
  // for the 30 slots (300 ms) the batch took.
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(t.Acquire(30));
  ASSERT_TRUE(t.Acquire(1));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  t.Cancel();
  EXPECT_FALSE(t.Acquire(5));
}

}  // namespace
}  // namespace strata
