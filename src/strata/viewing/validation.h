// Input validation of viewing records: every check names the offending field, so the API can
// answer 400 with a message a client can act on. Thread-safe (pure functions).
#pragma once

#include "absl/status/status.h"
#include "strata/viewing/record.h"

namespace strata::viewing {

// Latest accepted time: year 2200. Earlier than 0 (1970) is rejected too.
inline constexpr Millis kMaxTimeMillis = 7'258'118'400'000;
// Longest accepted position or watched duration: 30 days.
inline constexpr int64_t kMaxDurationMillis = 30LL * 24 * 3600 * 1000;

// InvalidArgument with a message that starts with the field name, e.g.
// "started_at: must be between 0 and 7258118400000 (ms since epoch)".
absl::Status ValidateRecord(const ViewingRecord& r);

}  // namespace strata::viewing
