#include "bench/load_driver.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "gtest/gtest.h"

namespace strata::bench {
namespace {

TEST(ArrivalScheduleTest, EachArrivalIsTakenOnceInDueOrder) {
  const auto start = SteadyClock::now() + std::chrono::hours(1);  // never late here
  ArrivalSchedule s(start, start + std::chrono::seconds(1), 100);
  std::vector<SteadyClock::time_point> dues;
  for (uint64_t i = 0;; ++i) {
    SteadyClock::time_point due;
    uint64_t n = 99;
    const auto take = s.Next(&due, &n);
    if (take == ArrivalSchedule::Take::kDone) break;
    ASSERT_EQ(take, ArrivalSchedule::Take::kSend);
    ASSERT_EQ(n, i);
    dues.push_back(due);
  }
  ASSERT_EQ(dues.size(), 100u);
  EXPECT_EQ(dues.front(), start);
  EXPECT_TRUE(std::is_sorted(dues.begin(), dues.end()));
  // Past its end, the arrivals still due are unsent.
  const auto past = SteadyClock::now() - std::chrono::milliseconds(500);
  ArrivalSchedule late(past, past + std::chrono::seconds(1), 10);
  SteadyClock::time_point due;
  EXPECT_EQ(late.Next(&due), ArrivalSchedule::Take::kSend);  // still before the end
}

}  // namespace
}  // namespace strata::bench
