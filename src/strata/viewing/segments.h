// Segmented compressed histories: a member's compressed history is a list of independently
// decodable segments (chunks), each an EncodeHistory blob of a contiguous started_at range
// stored as its own row, plus one metadata row that lists them -- the commit point.
// Formats in docs/formats.md ("Compressed history: metadata and segments").
//
// Why segments: a read of the newest N records decodes only the newest segment(s); a roll-up
// re-encodes and writes only the segments its live rows fall into, keeping the others as
// they are, so reads and roll-ups cost O(segment), not O(history), for long histories.
//
// Segments never share a started_at value, so each started_at belongs to exactly one
// segment's range [first_started_at, next segment's first_started_at). Functions are pure
// and thread-safe; decoders treat their input as untrusted.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/viewing/record.h"

namespace strata::viewing {

inline constexpr uint8_t kHistoryMetaFormatV1 = 1;
inline constexpr uint64_t kMaxSegments = 1'000'000;

// A freshly encoded segment.
struct Segment {
  Millis first_started_at = 0;
  Millis last_started_at = 0;
  Millis max_event_time = 0;  // lets roll-ups drop wholly expired segments unread
  uint64_t records = 0;
  std::string bytes;  // EncodeHistory blob
};

// A segment as the metadata row lists it.
struct SegmentRef {
  uint64_t id = 0;  // row key suffix; ids are never reused within a partition
  Millis first_started_at = 0;
  Millis last_started_at = 0;
  Millis max_event_time = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t checksum = 0;  // XXH3-64 of the segment bytes
};

struct HistoryMeta {
  uint64_t version = 0;          // +1 per roll-up
  uint64_t next_segment_id = 0;  // ids >= this are unreferenced leftovers of a crash
  std::vector<SegmentRef> segments;  // ascending started_at ranges
  // Segments the previous roll-up replaced; deleted after the commit and, should a crash
  // interrupt that, again by the next roll-up.
  std::vector<uint64_t> garbage;

  uint64_t records() const;
};

// The committed compressed history of one member and kind, as held by the cache: the
// metadata and every segment's bytes (compressed; shared between cache versions).
struct CompressedHistory {
  HistoryMeta meta;
  std::vector<std::shared_ptr<const std::string>> segments;  // parallel to meta.segments
  size_t bytes = 0;
};

// Runs independent tasks, possibly concurrently; returns once every one has run.
using RunAll = std::function<void(std::vector<std::function<void()>>& tasks)>;
// From this many segments on, EncodeSegments hands them to its RunAll.
inline constexpr size_t kParallelEncodeFrom = 4;

// Splits `records` (sorted by PlaybackKey, unique) into segments of at most `per_segment`
// records -- more only when one started_at value has more records than that -- and encodes
// each. Appends to *out. With `run_all` set and at least kParallelEncodeFrom segments, the
// segments are encoded through it (e.g. on a thread pool); the output is the same.
void EncodeSegments(std::span<const ViewingRecord> records, size_t per_segment, int zstd_level,
                    std::vector<Segment>* out, const RunAll* run_all = nullptr);

std::string EncodeMeta(const HistoryMeta& meta);
absl::StatusOr<HistoryMeta> DecodeMeta(std::string_view in);

// Decodes segment i, checking its record count.
absl::StatusOr<std::vector<ViewingRecord>> DecodeSegment(const CompressedHistory& h, size_t i,
                                                         MemberId member, Kind kind);
// Decodes the newest records of one segment (`bytes`, holding `expected` records by its
// metadata: DataLoss otherwise) until `want` of them pass `qualifies`: first the newest
// `want` records, then, if fewer than `want` of those qualify, all of them. Ascending, like
// DecodeSegment; a page of the newest 50 then builds ~51 records of a 2,048-record chunk.
absl::StatusOr<std::vector<ViewingRecord>> DecodeNewest(
    std::string_view bytes, MemberId member, Kind kind, uint64_t expected, size_t want,
    const std::function<bool(const ViewingRecord&)>& qualifies);
// Decodes every segment into one ascending vector.
absl::StatusOr<std::vector<ViewingRecord>> DecodeAllSegments(const CompressedHistory& h,
                                                             MemberId member, Kind kind);

}  // namespace strata::viewing
