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

http::Request Req(std::string method, std::string target) {
  http::Request r;
  r.method = std::move(method);
  r.target = target;
  const size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  return r;
}

// A full compaction runs on the admin thread: the io thread gets a deferred answer at once
// (or 202 with ?wait=false), a second one while it runs gets 409, and GET reports it.
TEST(AdminCompactTest, RunsOffTheIoThreadOneAtATime) {
  MetricsRegistry metrics;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::atomic<int> calls{0};
  AdminHooks hooks;
  hooks.compact = [&calls, gate] {
    ++calls;
    gate.wait();
    return absl::OkStatus();
  };
  Api api(nullptr, nullptr, &metrics, hooks);

  http::Response started = api.Handle(Req("POST", "/v1/admin/compact?wait=false"));
  EXPECT_EQ(started.status, 202);
  EXPECT_EQ(api.Handle(Req("POST", "/v1/admin/compact")).status, 409);
  http::Response status = api.Handle(Req("GET", "/v1/admin/compact"));
  EXPECT_NE(status.body.find(R"("running":true)"), std::string::npos) << status.body;
  EXPECT_EQ(api.Handle(Req("POST", "/v1/admin/compact?wait=maybe")).status, 400);
  release.set_value();
  for (int i = 0; i < 200; ++i) {
    status = api.Handle(Req("GET", "/v1/admin/compact"));
    if (status.body.find(R"("running":false)") != std::string::npos) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_NE(status.body.find(R"("running":false,"runs":1)"), std::string::npos) << status.body;

  http::Response waited = api.Handle(Req("POST", "/v1/admin/compact"));
  ASSERT_TRUE(waited.defer) << "the io thread must not run the compaction";
  std::promise<http::Response> replied;
  waited.defer([&replied](http::Response out) { replied.set_value(std::move(out)); });
  http::Response out = replied.get_future().get();
  EXPECT_EQ(out.status, 200);
  EXPECT_NE(out.body.find(R"("compacted":true)"), std::string::npos) << out.body;
  EXPECT_EQ(calls.load(), 2);
}

}  // namespace
}  // namespace strata::server
