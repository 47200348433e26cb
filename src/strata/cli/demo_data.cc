#include "strata/cli/demo_data.h"

#include <random>

#include "absl/strings/str_cat.h"

namespace strata::cli {

std::string DemoEvents(uint64_t members, int64_t now_ms) {
  static const char* kDevices[] = {"tv", "phone", "tablet", "web"};
  static const char* kCountries[] = {"US", "BR", "FR", "JP"};
  static const char* kLangs[] = {"en", "pt", "fr", "ja"};
  std::mt19937_64 rng(42);
  std::string out;
  const int64_t kHour = 3600'000;
  for (uint64_t m = 1; m <= members; ++m) {
    const char* lang = kLangs[m % 4];
    const char* country = kCountries[m % 4];
    int64_t started = now_ms - (m == 1 ? 600 : 60) * 24 * kHour + static_cast<int64_t>(m) * kHour;
    // Member 1 gets a longer history, so its live rows are rolled up into compressed chunks.
    int plays = m == 1 ? 400 : 20 + static_cast<int>(rng() % 30);
    for (int i = 0; i < plays; ++i) {
      started += kHour * static_cast<int64_t>(6 + rng() % (m == 1 ? 50 : 30));
      if (started >= now_ms) break;
      int64_t watched = static_cast<int64_t>(60 + rng() % 5400) * 1000;
      bool preview = rng() % 5 == 0;
      if (preview) watched = static_cast<int64_t>(1 + rng() % 90) * 1000;
      // Switch the member's audio to English halfway through, to show a language change.
      const char* audio = i < plays / 2 ? lang : "en";
      absl::StrAppend(&out, "{\"member\":", m, ",\"kind\":\"", preview ? "preview" : "play",
                      "\",\"title\":", 1000 + rng() % 40, ",\"session\":\"", i + 1,
                      "\",\"started_at\":", started, ",\"event_time\":", started + watched,
                      ",\"position_ms\":", watched, ",\"watched_ms\":", watched,
                      ",\"device\":\"", kDevices[rng() % 4], "\",\"country\":\"", country,
                      "\",\"content_lang\":\"", lang, "\",\"audio_lang\":\"", audio,
                      "\",\"subtitle_lang\":\"", audio == lang ? "" : lang, "\"}\n");
    }
  }
  return out;
}

}  // namespace strata::cli
