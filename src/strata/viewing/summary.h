// Per-title summaries of plays: what the historical tier stores instead of records, what the
// past tier keeps beside its chunks, and what GET /v1/members/{m}/summary answers.
//
// A summary is a set of per-title aggregates (plays, watched time, first and last start,
// resume position of the latest play). Aggregates of disjoint sets of playbacks combine
// exactly (Merge); replacing one playback by a newer event of the same playback (same
// started_at and session) adjusts them exactly too (Replace), which is how reads stitch tiers
// without counting a playback twice (docs/viewing.md, "Age tiers").
//
// The encoding (docs/formats.md, "Summary blob") is columnar and zstd-compressed with a
// leading format version byte; the decoder treats its input as untrusted.
#pragma once

#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/viewing/record.h"

namespace strata::viewing {

struct TitleSummary {
  TitleId title = 0;
  uint64_t plays = 0;
  int64_t watched_ms = 0;
  Millis first_at = 0;
  Millis last_at = 0;
  int64_t position_ms = 0;  // resume point of the latest play (largest started_at)

  bool operator==(const TitleSummary&) const = default;
};

// For test failure messages.
inline std::ostream& operator<<(std::ostream& os, const TitleSummary& s) {
  return os << "{title " << s.title << " plays " << s.plays << " watched_ms " << s.watched_ms
            << " first_at " << s.first_at << " last_at " << s.last_at << " position_ms "
            << s.position_ms << "}";
}

inline constexpr uint8_t kSummaryFormatV1 = 1;
inline constexpr uint64_t kMaxSummaryTitles = 10'000'000;

// Accumulates per-title aggregates. Not thread-safe.
class SummaryBuilder {
 public:
  SummaryBuilder() = default;
  explicit SummaryBuilder(std::span<const TitleSummary> initial) { Merge(initial); }

  // Counts one playback not counted before.
  void Add(const ViewingRecord& r);
  // Replaces the counted playback `old_version` by `new_version` (same started_at and
  // session, so the same title slot in time): watched time and, if it is the title's latest
  // play, the position change; the play count does not. If the titles differ, this is a
  // remove-and-add that cannot restore first/last exactly for the old title; it keeps its
  // first/last (documented approximation; titles of a playback do not change in practice).
  void Replace(const ViewingRecord& old_version, const ViewingRecord& new_version);
  // Adds aggregates of playbacks disjoint from those already counted.
  void Merge(std::span<const TitleSummary> other);

  bool empty() const { return titles_.empty(); }
  size_t size() const { return titles_.size(); }
  // Ascending by title (the storage order).
  std::vector<TitleSummary> ByTitle() const;
  // Newest last_at first, then ascending title (the API order).
  std::vector<TitleSummary> ByRecency() const;

 private:
  std::unordered_map<TitleId, TitleSummary> titles_;
};

// Encodes aggregates (any order; sorted by title in the blob). zstd_level 1..19.
std::string EncodeSummary(std::span<const TitleSummary> titles, int zstd_level = 3);
// Decodes a blob written by EncodeSummary; ascending by title.
absl::StatusOr<std::vector<TitleSummary>> DecodeSummary(std::string_view blob);

// Row "p" of the past tier's table, written in the same atomic batch as its metadata row "m".
struct PastState {
  // Every record with started_at < rotated_until that reached the recent tier before the
  // last recent -> past rotation has been moved here (INT64_MIN: never rotated).
  Millis rotated_until = INT64_MIN;
  // `summary` aggregates the past records with started_at >= summary_from, as of metadata
  // version `meta_version`. Readers use it only when summary_from equals the historical
  // tier's `until` (otherwise a rotation to the historical tier was interrupted between
  // its two commits and they summarise the past records themselves).
  Millis summary_from = INT64_MIN;
  // 0: no summary is stored (the past tier held fewer than
  // ViewingOptions::past_summary_min_records records); readers summarise the records.
  uint64_t meta_version = 0;
  std::vector<TitleSummary> summary;
};

// Row "m" of the historical tier's table: a member's summary of every play that started
// before `until` (INT64_MIN: none). Detailed records before `until` no longer exist.
struct HistoricalState {
  uint64_t version = 0;
  Millis until = INT64_MIN;
  std::vector<TitleSummary> summary;
};

inline constexpr uint8_t kTierStateFormatV1 = 1;
std::string EncodePastState(const PastState& s, int zstd_level = 3);
absl::StatusOr<PastState> DecodePastState(std::string_view in);
std::string EncodeHistoricalState(const HistoricalState& s, int zstd_level = 3);
absl::StatusOr<HistoricalState> DecodeHistoricalState(std::string_view in);

}  // namespace strata::viewing
