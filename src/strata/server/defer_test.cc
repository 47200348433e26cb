#include <chrono>
#include <future>
#include <thread>

#include "gtest/gtest.h"
#include "strata/base/metrics.h"
#include "strata/base/thread_pool.h"
#include "strata/server/api.h"

namespace strata::server {
namespace {

using namespace std::chrono_literals;

http::Response Text(std::string body) { return http::Response{200, "text/plain", std::move(body)}; }

TEST(DeferToPoolTest, HandsTheWorkToThePoolAndRepliesWithItsResult) {
  ThreadPool pool(1, 0, "strata-test");
  http::Response r = DeferToPool(&pool, 4, [] { return Text("from the pool"); });
  ASSERT_TRUE(r.defer);  // the io thread is free at once
  std::promise<http::Response> replied;
  r.defer([&replied](http::Response out) { replied.set_value(std::move(out)); });
  http::Response out = replied.get_future().get();
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(out.body, "from the pool");
}

TEST(DeferToPoolTest, WaitsOnTheCallingThreadWhenThePoolHasABacklog) {
  MetricsRegistry metrics;
  Counter* waits = metrics.GetCounter("test_waits_total", "waits");
  ThreadPool pool(1, 0, "strata-test");
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  auto busy = pool.Submit([&started, gate] {
    started.set_value();
    gate.wait();
  });
  started.get_future().wait();
  auto queued1 = pool.Submit([] {});
  auto queued2 = pool.Submit([] {});
  ASSERT_EQ(pool.queued(), 2u);  // the backlog is at the limit

  auto call = std::async(std::launch::async, [&] {
    return DeferToPool(&pool, 2, [] { return Text("waited"); }, waits);
  });
  // The caller (an io thread) is held until the pool reaches its work.
  EXPECT_EQ(call.wait_for(100ms), std::future_status::timeout);
  release.set_value();
  http::Response r = call.get();
  EXPECT_FALSE(r.defer);  // answered directly, not deferred
  EXPECT_EQ(r.body, "waited");
  EXPECT_EQ(waits->Value(), 1u);
  busy.get();
  queued1.get();
  queued2.get();
}

}  // namespace
}  // namespace strata::server
