#include "strata/viewing/validation.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace strata::viewing {
namespace {

absl::Status CheckTime(const char* field, Millis t) {
  if (t < 0 || t > kMaxTimeMillis) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be between 0 and ", kMaxTimeMillis, " (ms since epoch)"));
  }
  return absl::OkStatus();
}

absl::Status CheckDuration(const char* field, int64_t v) {
  if (v < 0 || v > kMaxDurationMillis) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be between 0 and ", kMaxDurationMillis, " ms"));
  }
  return absl::OkStatus();
}

absl::Status CheckCode(const char* field, const std::string& s) {
  if (s.size() > kMaxShortStringBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": longer than ", kMaxShortStringBytes, " bytes"));
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": contains a control character"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRecord(const ViewingRecord& r) {
  if (r.member == 0) return absl::InvalidArgumentError("member: must be a positive integer");
  if (r.kind != Kind::kPlay && r.kind != Kind::kPreview) {
    return absl::InvalidArgumentError("kind: must be \"play\" or \"preview\"");
  }
  if (r.session.empty() || r.session.size() > kMaxSessionBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("session: must be 1 to ", kMaxSessionBytes, " bytes"));
  }
  for (unsigned char c : r.session) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("session: contains a control character");
    }
  }
  if (absl::Status s = CheckTime("started_at", r.started_at); !s.ok()) return s;
  if (absl::Status s = CheckTime("event_time", r.event_time); !s.ok()) return s;
  if (r.event_time < r.started_at) {
    return absl::InvalidArgumentError("event_time: must not be before started_at");
  }
  if (absl::Status s = CheckDuration("position_ms", r.position_ms); !s.ok()) return s;
  if (absl::Status s = CheckDuration("watched_ms", r.watched_ms); !s.ok()) return s;
  if (absl::Status s = CheckCode("device", r.device); !s.ok()) return s;
  if (absl::Status s = CheckCode("country", r.country); !s.ok()) return s;
  if (absl::Status s = CheckCode("content_lang", r.content_lang); !s.ok()) return s;
  if (absl::Status s = CheckCode("audio_lang", r.audio_lang); !s.ok()) return s;
  if (absl::Status s = CheckCode("subtitle_lang", r.subtitle_lang); !s.ok()) return s;
  return absl::OkStatus();
}

}  // namespace strata::viewing
