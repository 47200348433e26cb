// The segmented history container: a member's compressed history as a list of independently
// decodable segments, each an EncodeHistory blob of a contiguous started_at range, with a
// small index in front (format in docs/formats.md, "Segmented history container").
//
// Why: a read of the newest N records decodes only the newest segment(s), and a roll-up
// re-encodes only the segments that live rows fall into, copying the others byte for byte,
// so both cost O(segment) instead of O(history) for long histories.
//
// Segments never share a started_at value, so every started_at belongs to exactly one
// segment's range [first_started_at, next segment's first_started_at). Pure functions,
// thread-safe; parsing treats its input as untrusted.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/viewing/record.h"

namespace strata::viewing {

inline constexpr uint8_t kSegmentedFormatV1 = 1;
inline constexpr uint64_t kMaxSegments = 1'000'000;

struct Segment {
  Millis first_started_at = 0;
  Millis last_started_at = 0;
  Millis max_event_time = 0;  // for dropping wholly expired segments
  uint64_t records = 0;
  std::string bytes;  // EncodeHistory blob
};

// A parsed view of a container; `bytes` of each segment point into the container.
struct SegmentView {
  Millis first_started_at = 0;
  Millis last_started_at = 0;
  Millis max_event_time = 0;
  uint64_t records = 0;
  std::string_view bytes;
};

// Splits `records` (sorted by PlaybackKey, unique) into segments of at most `per_segment`
// records -- more only when one started_at value has more records than that -- and encodes
// each. Appends to *out.
void EncodeSegments(std::span<const ViewingRecord> records, size_t per_segment, int zstd_level,
                    std::vector<Segment>* out);

std::string BuildContainer(std::span<const Segment> segments);
absl::StatusOr<std::vector<SegmentView>> ParseContainer(std::string_view container);

// Decodes every segment into one ascending vector.
absl::StatusOr<std::vector<ViewingRecord>> DecodeAllSegments(std::span<const SegmentView> segs,
                                                             MemberId member, Kind kind);

}  // namespace strata::viewing
