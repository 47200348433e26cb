#include "strata/server/viewing_json.h"

#include <gtest/gtest.h>

#include "strata/server/api.h"
#include "strata/server/json_writer.h"

namespace strata::server {
namespace {

constexpr char kEvent[] =
    R"({"member":7,"kind":"play","title":70,"session":"s1","started_at":1700000000000,)"
    R"("event_time":1700000060000,"position_ms":60000,"watched_ms":60000,"device":"tv",)"
    R"("country":"US","content_lang":"en","audio_lang":"en","subtitle_lang":""})";

TEST(ViewingJson, ParsesAnArrayAndNdjsonAlike) {
  std::string array = std::string("[") + kEvent + "," + kEvent + "]";
  std::string ndjson = std::string(kEvent) + "\n" + kEvent + "\n";
  for (const std::string& body : {array, ndjson}) {
    auto parsed = ParseViewingEvents(body);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ASSERT_EQ(parsed->valid.size(), 2u);
    EXPECT_TRUE(parsed->rejected.empty());
    const auto& r = parsed->valid[0];
    EXPECT_EQ(r.member, 7u);
    EXPECT_EQ(r.title, 70u);
    EXPECT_EQ(r.session, "s1");
    EXPECT_EQ(r.event_time, 1700000060000);
    EXPECT_EQ(r.device, "tv");
  }
}

TEST(ViewingJson, BadEventsAreRejectedByIndexNamingTheField) {
  std::string body = std::string("[") + kEvent + "," +
                     R"({"member":"x","kind":"play","title":1,"session":"a","started_at":1,"event_time":1},)" +
                     R"({"member":1,"kind":"movie","title":1,"session":"a","started_at":1,"event_time":1},)" +
                     R"({"member":1,"kind":"play","title":1,"started_at":1,"event_time":1},)" +
                     R"({"member":1,"kind":"play","title":1,"session":"a","started_at":-5,"event_time":1},)" +
                     R"(42,)" + kEvent + "]";
  auto parsed = ParseViewingEvents(body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->valid.size(), 2u);
  ASSERT_EQ(parsed->rejected.size(), 5u);
  EXPECT_EQ(parsed->rejected[0].index, 1u);
  EXPECT_EQ(parsed->rejected[0].error.rfind("member:", 0), 0u) << parsed->rejected[0].error;
  EXPECT_EQ(parsed->rejected[1].error.rfind("kind:", 0), 0u);
  EXPECT_EQ(parsed->rejected[2].error, "session: required");
  EXPECT_EQ(parsed->rejected[3].error.rfind("started_at:", 0), 0u);
  EXPECT_EQ(parsed->rejected[4].index, 5u);
  EXPECT_EQ(parsed->rejected[4].error.rfind("event:", 0), 0u);
}

TEST(ViewingJson, GarbageBodiesAreErrorsNamingTheBody) {
  for (std::string body : {"", "   ", "[{\"member\":1,", "{not json", "[1,2", "nul"}) {
    auto parsed = ParseViewingEvents(body);
    if (parsed.ok()) {
      // NDJSON lines that are not JSON are rejected one by one instead.
      EXPECT_FALSE(parsed->rejected.empty()) << body;
      EXPECT_TRUE(parsed->valid.empty());
    } else {
      EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << body;
      EXPECT_EQ(std::string(parsed.status().message()).rfind("body:", 0), 0u) << body;
    }
  }
}

// The on-demand parser stops at the end of the first value: whatever followed it used to be
// ignored ('[...] []' accepted, a second event on an NDJSON line dropped in silence).
TEST(ViewingJson, NothingMayFollowTheBatch) {
  const std::string event =
      R"({"member":1,"kind":"play","title":7,"session":"s","started_at":1000,"event_time":2000})";
  for (const std::string& body :
       std::vector<std::string>{"[] []", "[] x", "[" + event + "] [" + event + "]", "[]]"}) {
    auto parsed = ParseViewingEvents(body);
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << body;
    EXPECT_EQ(std::string(parsed.status().message()).rfind("body:", 0), 0u) << parsed.status();
  }
  EXPECT_TRUE(ParseViewingEvents("[" + event + "] \n").ok());
  auto parsed = ParseViewingEvents(event + " " + event + "\n" + event + "\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->valid.size(), 1u);
  ASSERT_EQ(parsed->rejected.size(), 1u);
  EXPECT_EQ(parsed->rejected[0].index, 0u);
  EXPECT_EQ(parsed->rejected[0].error, "event: unexpected content after the JSON object");
}

// A string with a bad escape used to be rejected as "must be a string".
TEST(ViewingJson, InvalidStringsSayWhy) {
  for (const char* session : {R"("\ud800")", R"("\q")", R"("\udc00x")"}) {
    const std::string body = std::string(R"([{"member":1,"kind":"play","title":7,"session":)") +
                             session + R"(,"started_at":1000,"event_time":2000}])";
    auto parsed = ParseViewingEvents(body);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ASSERT_EQ(parsed->rejected.size(), 1u) << body;
    EXPECT_EQ(parsed->rejected[0].error.rfind("session: not a valid JSON string", 0), 0u)
        << parsed->rejected[0].error;
  }
}

TEST(ViewingJson, TooManyEventsIsAnError) {
  std::string body = "[";
  for (size_t i = 0; i <= kMaxEventsPerBatch; ++i) body += (i ? ",{}" : "{}");
  body += "]";
  auto parsed = ParseViewingEvents(body);
  EXPECT_TRUE(absl::IsInvalidArgument(parsed.status()));
}

TEST(JsonWriter, EscapesStrings) {
  JsonWriter w;
  w.BeginObject().Key("a\"b").String("line\n\x01").Key("n").Int(-3).EndObject();
  EXPECT_EQ(w.str(), "{\"a\\\"b\":\"line\\n\\u0001\",\"n\":-3}");
}

// JSON text is UTF-8: a string that is not (a client's bytes echoed in an error) is written
// with U+FFFD in place of each stray byte; well-formed multibyte text is copied.
TEST(JsonWriter, ReplacesBytesThatAreNotUtf8) {
  JsonWriter w;
  w.BeginArray().String("\xff-caf\xc3\xa9-\xed\xa0\x80-\xf0\x9f\x8e\xac").String("\xc3").EndArray();
  EXPECT_EQ(w.str(),
            "[\"\xef\xbf\xbd-caf\xc3\xa9-\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd-\xf0\x9f\x8e\xac\","
            "\"\xef\xbf\xbd\"]");
  EXPECT_EQ(ErrorBody("query", "query: unknown parameter \"\xff\""),
            "{\"error\":{\"code\":\"query\",\"message\":\"query: unknown parameter "
            "\\\"\xef\xbf\xbd\\\"\"}}");
}

TEST(Api, ErrorCodesMapToHttp) {
  EXPECT_EQ(StatusToHttp(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(StatusToHttp(absl::NotFoundError("x")), 404);
  EXPECT_EQ(StatusToHttp(absl::UnavailableError("x")), 503);
  EXPECT_EQ(StatusToHttp(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(StatusToHttp(absl::InternalError("x")), 500);
}

TEST(JsonWriter, NumbersPlainKeysAndEscapes) {
  JsonWriter w;
  w.Reserve(128);
  w.BeginObject().PlainKey("min").Int(INT64_MIN).PlainKey("max").Uint(UINT64_MAX);
  w.PlainKey("zero").Int(0).Key("a\"b").String("x\ny").EndObject();
  EXPECT_EQ(w.str(), R"({"min":-9223372036854775808,"max":18446744073709551615,"zero":0,)"
                     R"("a\"b":"x\ny"})");
}

// Times past the latest accepted one are rejected per event, naming the field, in both
// body forms; the others in the batch are kept.
TEST(ViewingJson, RejectsTimesTooFarInTheFuture) {
  std::string array = std::string("[") + kEvent + "," + kEvent + "]";
  std::string ndjson = std::string(kEvent) + "\n" + kEvent + "\n";
  for (const std::string& body : {array, ndjson}) {
    auto parsed = ParseViewingEvents(body, 1700000059999);  // between started_at and event_time
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_TRUE(parsed->valid.empty());
    ASSERT_EQ(parsed->rejected.size(), 2u);
    EXPECT_EQ(parsed->rejected[1].index, 1u);
    EXPECT_EQ(parsed->rejected[0].error.rfind("event_time: more than the allowed skew", 0), 0u)
        << parsed->rejected[0].error;
    parsed = ParseViewingEvents(body, 1700000000000 - 1);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed->rejected[0].error.rfind("started_at: ", 0), 0u);
    parsed = ParseViewingEvents(body, 1700000060000);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed->valid.size(), 2u);
  }
}

// A record written by the API parses back into the same event (the JSON round trip).
TEST(JsonWriter, RecordJsonParsesBack) {
  auto parsed = ParseViewingEvents(kEvent);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->valid.size(), 1u);
  JsonWriter w;
  AppendRecordJson(parsed->valid[0], &w);
  auto again = ParseViewingEvents(w.str());
  ASSERT_TRUE(again.ok()) << again.status() << " " << w.str();
  ASSERT_EQ(again->valid.size(), 1u);
  EXPECT_EQ(again->valid[0], parsed->valid[0]);
}

}  // namespace
}  // namespace strata::server
