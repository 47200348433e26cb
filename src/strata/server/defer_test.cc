#include <atomic>
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

  IoWaitGate io_gate(1, waits, nullptr);
  auto call = std::async(std::launch::async, [&] {
    return DeferToPool(
        &pool, 2, [] { return Text("waited"); }, &io_gate);
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

// With every io thread but one already waiting for the pool, the next request that would wait
// is answered 503 at once (Retry-After), so one io thread stays free for /healthz.
TEST(DeferToPoolTest, RefusesRatherThanHoldTheLastFreeIoThread) {
  MetricsRegistry metrics;
  Counter* waits = metrics.GetCounter("test_waits_total", "waits");
  Counter* refused = metrics.GetCounter("test_refused_total", "refused");
  IoWaitGate gate(1, waits, refused);  // two io threads: one may wait
  ThreadPool pool(1, 0, "strata-test");
  std::promise<void> release;
  std::shared_future<void> gate_open = release.get_future().share();
  std::promise<void> started;
  auto busy = pool.Submit([&started, gate_open] {
    started.set_value();
    gate_open.wait();
  });
  started.get_future().wait();
  auto queued = pool.Submit([] {});
  ASSERT_EQ(pool.queued(), 1u);  // the backlog is at the limit

  std::atomic<bool> second_ran{false};
  auto first = std::async(std::launch::async, [&] {
    return DeferToPool(
        &pool, 1, [] { return Text("waited"); }, &gate, "events");
  });
  EXPECT_EQ(first.wait_for(100ms), std::future_status::timeout);  // it waits
  http::Response second = DeferToPool(
      &pool, 1,
      [&second_ran] {
        second_ran = true;
        return Text("never");
      },
      &gate, "events");
  EXPECT_FALSE(second.defer);
  EXPECT_EQ(second.status, 503);
  EXPECT_NE(second.body.find("events: the server is overloaded"), std::string::npos) << second.body;
  ASSERT_EQ(second.headers.size(), 1u);
  EXPECT_EQ(second.headers[0].first, "Retry-After");
  EXPECT_EQ(refused->Value(), 1u);

  release.set_value();
  EXPECT_EQ(first.get().body, "waited");
  EXPECT_EQ(waits->Value(), 1u);
  busy.get();
  queued.get();
  EXPECT_FALSE(second_ran.load()) << "a refused request is not applied";
  // The waiter left: the next one may wait again (and the pool is free: deferred).
  http::Response third = DeferToPool(
      &pool, 1, [] { return Text("later"); }, &gate, "events");
  EXPECT_TRUE(third.defer);
}

http::Response Await(http::Response r) {
  if (!r.defer) return r;
  std::promise<http::Response> replied;
  r.defer([&replied](http::Response out) { replied.set_value(std::move(out)); });
  return replied.get_future().get();
}

std::string JobIdOf(const std::string& body) {
  const std::string marker = R"("id":")";
  const size_t at = body.find(marker);
  if (at == std::string::npos) return "";
  const size_t start = at + marker.size();
  return body.substr(start, body.find('"', start) - start);
}

// A full compaction is an admin job: POST answers 202 with the job at once (never running it
// on the io thread), a second POST while it runs gets 409 naming it, GET /v1/admin/jobs/{id}
// follows it, and ?wait=true answers when it is done.
TEST(AdminCompactTest, RunsAsAJobOneAtATime) {
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

  http::Response started = api.Handle(Req("POST", "/v1/admin/compact"));
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_FALSE(started.defer);
  const std::string id = JobIdOf(started.body);
  ASSERT_FALSE(id.empty()) << started.body;
  ASSERT_EQ(started.headers.size(), 1u);
  EXPECT_EQ(started.headers[0].first, "Location");
  EXPECT_EQ(started.headers[0].second, "/v1/admin/jobs/" + id);
  EXPECT_NE(started.body.find(R"("kind":"compact")"), std::string::npos) << started.body;

  http::Response again = api.Handle(Req("POST", "/v1/admin/compact"));
  EXPECT_EQ(again.status, 409);
  EXPECT_NE(again.body.find("compact: job " + id + " is already"), std::string::npos) << again.body;
  http::Response status = api.Handle(Req("GET", "/v1/admin/compact"));
  EXPECT_NE(status.body.find(R"("running":true,"runs":0)"), std::string::npos) << status.body;
  EXPECT_EQ(api.Handle(Req("POST", "/v1/admin/compact?wait=maybe")).status, 400);

  // A waiting GET is deferred until the job ends.
  http::Response waiting = api.Handle(Req("GET", "/v1/admin/jobs/" + id + "?wait=true"));
  ASSERT_TRUE(waiting.defer);
  std::promise<http::Response> replied;
  waiting.defer([&replied](http::Response out) { replied.set_value(std::move(out)); });
  std::future<http::Response> reply = replied.get_future();
  EXPECT_EQ(reply.wait_for(100ms), std::future_status::timeout);
  release.set_value();
  http::Response done = reply.get();
  EXPECT_EQ(done.status, 200);
  EXPECT_NE(done.body.find(R"("state":"succeeded")"), std::string::npos) << done.body;
  EXPECT_NE(done.body.find(R"("result":{"compacted":true,"seconds":)"), std::string::npos)
      << done.body;
  EXPECT_NE(done.body.find(R"("error":null)"), std::string::npos) << done.body;

  http::Response waited = api.Handle(Req("POST", "/v1/admin/compact?wait=true"));
  ASSERT_TRUE(waited.defer) << "the io thread must not run the compaction";
  http::Response out = Await(std::move(waited));
  EXPECT_EQ(out.status, 200);
  EXPECT_NE(out.body.find(R"("compacted":true)"), std::string::npos) << out.body;
  EXPECT_EQ(calls.load(), 2);
  status = api.Handle(Req("GET", "/v1/admin/compact"));
  EXPECT_NE(status.body.find(R"("running":false,"runs":2)"), std::string::npos) << status.body;

  http::Response list = api.Handle(Req("GET", "/v1/admin/jobs?kind=compact"));
  EXPECT_EQ(list.status, 200);
  EXPECT_NE(list.body.find(id), std::string::npos) << list.body;
  EXPECT_EQ(api.Handle(Req("GET", "/v1/admin/jobs?kind=other")).status, 400);
  EXPECT_EQ(api.Handle(Req("GET", "/v1/admin/jobs?limit=0")).status, 400);
  EXPECT_EQ(api.Handle(Req("GET", "/v1/admin/jobs/j1-99")).status, 404);
  EXPECT_EQ(api.Handle(Req("GET", "/v1/admin/jobs/NOT%20AN%20ID")).status, 400);
  EXPECT_EQ(api.Handle(Req("DELETE", "/v1/admin/jobs/" + id)).status, 405);
}

TEST(AdminCompactTest, AFailedCompactionIsAFailedJob) {
  MetricsRegistry metrics;
  AdminHooks hooks;
  hooks.compact = [] { return absl::InternalError("compact range: disk on fire"); };
  Api api(nullptr, nullptr, &metrics, hooks);
  http::Response waited = Await(api.Handle(Req("POST", "/v1/admin/compact?wait=true")));
  EXPECT_EQ(waited.status, 500);
  EXPECT_NE(waited.body.find("disk on fire"), std::string::npos) << waited.body;
  http::Response list = api.Handle(Req("GET", "/v1/admin/jobs"));
  EXPECT_NE(list.body.find(R"("state":"failed")"), std::string::npos) << list.body;
  EXPECT_NE(
      list.body.find(R"("error":{"code":"internal","message":"compact range: disk on fire"})"),
      std::string::npos)
      << list.body;
  http::Response status = api.Handle(Req("GET", "/v1/admin/compact"));
  EXPECT_NE(status.body.find("disk on fire"), std::string::npos) << status.body;
}

}  // namespace
}  // namespace strata::server
