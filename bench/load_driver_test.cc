#include "bench/load_driver.h"

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "gtest/gtest.h"
#include "strata/http/http_server.h"

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

namespace strata::bench {
namespace {

// Every load generator connects through NewClient, so a server with API keys can be measured:
// the key comes from STRATA_API_KEY (as for the operator commands), never from a flag.
TEST(NewClientTest, SendsTheApiKeyFromTheEnvironment) {
  http::ServerOptions options;
  options.port = 0;
  http::Server server(options, [](const http::Request& r) {
    return http::Response{200, "text/plain", std::string(r.Header("authorization"))};
  });
  ASSERT_TRUE(server.Start().ok());
  ASSERT_EQ(::setenv(kApiKeyVariable, "strata_0123456789abcdef_secret", 1), 0);
  http::Client with_key = NewClient("127.0.0.1", server.port(), 5000);
  ASSERT_EQ(::unsetenv(kApiKeyVariable), 0);
  http::Client without_key = NewClient("127.0.0.1", server.port(), 5000);
  auto r = with_key.Request("GET", "/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "Bearer strata_0123456789abcdef_secret");
  r = without_key.Request("GET", "/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "");
  ASSERT_EQ(::setenv(kApiKeyVariable, "", 1), 0);  // empty: no header either
  EXPECT_EQ(AuthorizationFromEnvironment(), "");
  ASSERT_EQ(::unsetenv(kApiKeyVariable), 0);
  server.Stop();
}

}  // namespace
}  // namespace strata::bench
