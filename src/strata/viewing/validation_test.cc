#include "strata/viewing/validation.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace strata::viewing {
namespace {

ViewingRecord Valid() {
  ViewingRecord r;
  r.member = 1;
  r.title = 7;
  r.session = "42";
  r.started_at = 1'700'000'000'000;
  r.event_time = r.started_at + 1000;
  r.device = "tv";
  r.country = "US";
  r.content_lang = "en";
  r.audio_lang = "en";
  return r;
}

TEST(Validation, AcceptsAValidRecord) { EXPECT_TRUE(ValidateRecord(Valid()).ok()); }

TEST(Validation, EveryErrorNamesItsField) {
  struct Case {
    std::string field;
    std::function<void(ViewingRecord&)> mutate;
  };
  std::vector<Case> cases = {
      {"member", [](ViewingRecord& r) { r.member = 0; }},
      {"session", [](ViewingRecord& r) { r.session = ""; }},
      {"session", [](ViewingRecord& r) { r.session = std::string(65, 'x'); }},
      {"session", [](ViewingRecord& r) { r.session = "a\nb"; }},
      {"started_at", [](ViewingRecord& r) { r.started_at = -1; }},
      {"started_at", [](ViewingRecord& r) { r.started_at = kMaxTimeMillis + 1; }},
      {"event_time", [](ViewingRecord& r) { r.event_time = r.started_at - 1; }},
      {"position_ms", [](ViewingRecord& r) { r.position_ms = -5; }},
      {"watched_ms", [](ViewingRecord& r) { r.watched_ms = kMaxDurationMillis + 1; }},
      {"device", [](ViewingRecord& r) { r.device = std::string(17, 'd'); }},
      {"country", [](ViewingRecord& r) { r.country = std::string(1, '\x01'); }},
      {"content_lang", [](ViewingRecord& r) { r.content_lang = std::string(40, 'l'); }},
      {"audio_lang", [](ViewingRecord& r) { r.audio_lang = std::string(40, 'l'); }},
      {"subtitle_lang", [](ViewingRecord& r) { r.subtitle_lang = std::string(40, 'l'); }},
  };
  for (const auto& c : cases) {
    ViewingRecord r = Valid();
    c.mutate(r);
    absl::Status s = ValidateRecord(r);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.field;
    EXPECT_EQ(std::string(s.message()).rfind(c.field + ":", 0), 0u) << s.message();
  }
}

}  // namespace
}  // namespace strata::viewing
