// Encodings of viewing records, specified byte by byte in docs/formats.md.
//
// * Live row: one record as the value of a LIVE table row. The member, kind, started_at and
//   session live in the row's partition and clustering keys, so the value holds the rest.
// * History blob: many records of one member and kind in a columnar form (delta/varint
//   times, dictionaries for small strings) compressed with zstd, with a leading format
//   version byte. It is what COMPRESSED tables store (possibly split into chunks).
//
// Decoders treat their input as untrusted: corrupt or truncated bytes give a DataLoss or
// InvalidArgument status, never a crash, an unbounded allocation or undefined behaviour.
// All functions are thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/viewing/record.h"

namespace strata::viewing {

inline constexpr uint8_t kHistoryFormatV1 = 1;
// Upper bound on records in one blob, checked by the decoder before allocating.
inline constexpr uint64_t kMaxRecordsPerBlob = 10'000'000;

// Clustering key of a live row: ordered int64 started_at, then the session bytes.
std::string LiveClusteringKey(Millis started_at, std::string_view session);
absl::Status ParseLiveClusteringKey(std::string_view key, Millis* started_at,
                                    std::string* session);

// Value of a live row (everything but member, kind, started_at, session).
std::string EncodeLiveValue(const ViewingRecord& r);
// Fills the fields of *r that EncodeLiveValue stored; leaves the identity fields alone.
absl::Status DecodeLiveValue(std::string_view value, ViewingRecord* r);

// Encodes the records of one member and kind. `records` must be sorted by PlaybackKey and
// hold no two records with the same key. zstd_level: 1..19.
std::string EncodeHistory(std::span<const ViewingRecord> records, int zstd_level = 3);
// Decodes a blob written by EncodeHistory; `member` and `kind` fill those fields.
absl::StatusOr<std::vector<ViewingRecord>> DecodeHistory(std::string_view blob, MemberId member,
                                                         Kind kind);

}  // namespace strata::viewing
