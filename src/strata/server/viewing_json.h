// JSON <-> viewing records for the HTTP API (docs/api.md). Parsing uses simdjson On-Demand;
// the body is untrusted: every problem is reported with the field it concerns.
// Thread-safe (each call uses its own parser).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/viewing/record.h"
#include "strata/viewing/viewing_service.h"

namespace strata::server {

// Most events accepted in one POST.
inline constexpr size_t kMaxEventsPerBatch = 10'000;

struct RejectedEvent {
  size_t index;
  std::string error;  // starts with the field name
};

struct ParsedEvents {
  std::vector<viewing::ViewingRecord> valid;
  std::vector<RejectedEvent> rejected;
};

// Parses a JSON array of event objects, or NDJSON (one object per line). Events with a bad
// field are listed in `rejected` (with their index); a body that is not JSON at all, or has
// too many events, is an InvalidArgument error naming "body".
// Events whose started_at or event_time is after `latest` are rejected, naming the field.
absl::StatusOr<ParsedEvents> ParseViewingEvents(std::string_view body,
                                                Millis latest = INT64_MAX);

void AppendRecordJson(const viewing::ViewingRecord& r, class JsonWriter* w);

}  // namespace strata::server
