#include "bench/compare_bench.h"

#include <sstream>
#include <string>
#include <vector>

#include "bench/compare_bench_internal.h"
#include "bench/history_workload.h"
#include "bench/viewing_workload.h"
#include "gtest/gtest.h"

namespace strata::bench {
namespace {

ViewingEvent Event(uint64_t member, Millis started_at, uint64_t session, Millis event_time) {
  ViewingEvent e;
  e.member = member;
  e.title = 80'000'001;
  e.session = session;
  e.started_at = started_at;
  e.event_time = event_time;
  e.position_ms = event_time - started_at;
  e.watched_ms = event_time - started_at;
  e.device = "roku";
  e.country = "US";
  e.content_lang = "en";
  e.audio_lang = "en";
  return e;
}

TEST(ParseHistoryRecordsTest, ReadsTheApisRecords) {
  ViewingEvent e = Event(12, 1'700'000'000'000, 77, 1'700'000'060'000);
  e.subtitle_lang = "fr";
  std::string body = "{\"records\": [";
  AppendEventJson(e, &body);  // the API's own field names
  body +=
      ", {\"member\":12,\"kind\":\"play\",\"title\":5,\"session\":\"a\\\"b\\\\c\\u0041\","
      "\"started_at\":1,\"event_time\":2,\"position_ms\":0,\"watched_ms\":0,\"device\":\"\","
      "\"country\":\"\",\"content_lang\":\"\",\"audio_lang\":\"\",\"subtitle_lang\":\"\","
      "\"extra\":{\"nested\":[1,\"]\"]},\"flag\":true,\"none\":null}";
  body += "], \"next_cursor\": \"xyz\"}";
  std::vector<StoredPlay> out;
  bool detail_from = true;
  ASSERT_TRUE(internal::ParseHistoryRecords(body, &out, &detail_from));
  EXPECT_FALSE(detail_from);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(CompareNewestPlays({e}, {out[0]}), "");
  EXPECT_EQ(out[1].session, "a\"b\\cA");
  EXPECT_EQ(out[1].title, 5u);
  EXPECT_EQ(out[1].event_time, 2);

  ASSERT_TRUE(internal::ParseHistoryRecords(
      "{\"records\":[],\"next_cursor\":null,\"detail_from\":5}", &out, &detail_from));
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(detail_from);
  EXPECT_FALSE(internal::ParseHistoryRecords("{\"error\":{}}", &out, &detail_from));
  EXPECT_FALSE(internal::ParseHistoryRecords("{\"records\":[{\"member\":1,", &out, &detail_from));
  EXPECT_FALSE(internal::ParseHistoryRecords("{\"records\":[{\"member\":x}]}", &out, &detail_from));
}

TEST(FlagValueTest, BothFormsAndTheLastWins) {
  const std::vector<std::string> args = {"--sync", "batch", "--min-preview-ms=1000",
                                         "--sync-interval-ms=5", "--sync=periodic"};
  EXPECT_EQ(internal::FlagValue(args, "--sync"), "periodic");
  EXPECT_EQ(internal::FlagValue(args, "--min-preview-ms"), "1000");
  EXPECT_EQ(internal::FlagValue(args, "--sync-interval-ms"), "5");
  EXPECT_EQ(internal::FlagValue(args, "--preview-ttl-ms"), std::nullopt);
  EXPECT_EQ(internal::FlagValue({"--sync"}, "--sync"), std::nullopt);
}

TEST(CompareOptionsTest, BadOptionsNameTheOption) {
  auto check = [](auto change, const char* field) {
    CompareOptions o;
    change(o);
    std::ostringstream out;
    auto r = RunCompareBench(o, out);
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status();
  };
  check([](CompareOptions& o) { o.peer = "mysql"; }, "peer");
  check([](CompareOptions& o) { o.order = "random"; }, "order");
  check([](CompareOptions& o) { o.history_days = 800; }, "history_days");
  check([](CompareOptions& o) { o.batch_size = 10'000; }, "batch");
  check([](CompareOptions& o) { o.members = 0; }, "members");
  check([](CompareOptions& o) { o.read_connections = 0; }, "read_connections");
  check([](CompareOptions& o) { o.strata_args = {"--port=1"}; }, "strata_args");
  check([](CompareOptions& o) { o.idle_s = -1; }, "idle");
}

}  // namespace
}  // namespace strata::bench
