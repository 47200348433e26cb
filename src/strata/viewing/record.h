// The viewing-history record: one playback of one member.
//
// (member, kind, started_at, session) identifies a playback. Later events of the same
// playback (progress, pause, stop) carry a later event_time and replace the earlier state:
// the event with the greatest event_time wins, whatever order events arrive in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "strata/base/clock.h"

namespace strata::viewing {

using MemberId = uint64_t;
using TitleId = uint64_t;

enum class Kind : uint8_t { kPlay = 0, kPreview = 1 };

inline std::string_view KindName(Kind k) { return k == Kind::kPlay ? "play" : "preview"; }

// Limits enforced on input (see docs/api.md).
inline constexpr size_t kMaxSessionBytes = 64;
inline constexpr size_t kMaxShortStringBytes = 16;  // device, country and language codes

struct ViewingRecord {
  MemberId member = 0;
  Kind kind = Kind::kPlay;
  TitleId title = 0;
  std::string session;
  Millis started_at = 0;
  Millis event_time = 0;
  int64_t position_ms = 0;
  int64_t watched_ms = 0;
  std::string device;
  std::string country;
  std::string content_lang;
  std::string audio_lang;
  std::string subtitle_lang;

  bool operator==(const ViewingRecord&) const = default;
};

// The identity of a playback within one member and kind: records sort by it ascending.
inline auto PlaybackKey(const ViewingRecord& r) {
  return std::tie(r.started_at, r.session);
}

// A member's audio and subtitle choice for titles in one content language, as of event_time.
struct LanguagePreference {
  std::string content_lang;
  std::string audio_lang;
  std::string subtitle_lang;
  Millis event_time = 0;
};

}  // namespace strata::viewing
