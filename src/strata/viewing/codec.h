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

#include <cstdint>
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
// Upper bound on the decompressed (columnar) size of one blob, checked against the size the
// zstd frame declares before anything is allocated.
inline constexpr uint64_t kMaxHistoryPayloadBytes = uint64_t{256} << 20;
// Format version byte that starts every live value.
inline constexpr uint8_t kLiveFormatV1 = 1;

// Clustering key of a live row: ordered int64 started_at, then the session bytes. Keys sort
// bytewise in PlaybackKey order.
std::string LiveClusteringKey(Millis started_at, std::string_view session);
// DataLoss if the key is shorter than 8 bytes or its session is longer than kMaxSessionBytes.
absl::Status ParseLiveClusteringKey(std::string_view key, Millis* started_at,
                                    std::string* session);

// Value of a live row (everything but member, kind, started_at, session). event_time is stored
// relative to r.started_at. Precondition: the strings are within the limits of record.h
// (ValidateForEncoding), or DecodeLiveValue will refuse the value.
std::string EncodeLiveValue(const ViewingRecord& r);
// Fills the fields of *r that EncodeLiveValue stored; leaves the identity fields alone.
// r->started_at must already hold the row's started_at (from ParseLiveClusteringKey): the
// stored event_time is relative to it. On error *r is left unchanged.
absl::Status DecodeLiveValue(std::string_view value, ViewingRecord* r);

// InvalidArgument naming the first record that EncodeHistory would turn into a blob that
// DecodeHistory refuses: records not strictly ascending by PlaybackKey, or a session, device,
// country or language longer than the limits of record.h. EncodeHistory's precondition.
absl::Status ValidateForEncoding(std::span<const ViewingRecord> records);

// Encodes the records of one member and kind. `records` must be sorted by PlaybackKey and
// hold no two records with the same key. zstd_level: 1..19.
std::string EncodeHistory(std::span<const ViewingRecord> records, int zstd_level = 3);
// Decodes a blob written by EncodeHistory; `member` and `kind` fill those fields. With
// `newest`, only the blob's last `newest` records (the newest by PlaybackKey) are built, and
// *total, if given, receives how many the blob holds: a read that needs the newest 51 of a
// 2,048-record chunk builds 51 records (the columns are decoded whole either way).
absl::StatusOr<std::vector<ViewingRecord>> DecodeHistory(std::string_view blob, MemberId member,
                                                         Kind kind, size_t newest = SIZE_MAX,
                                                         size_t* total = nullptr);

// Value of a language-preference row (current or change; the content language is in the
// key): audio and subtitle language and event_time. DataLoss on a value it did not write.
std::string EncodeLanguageValue(const LanguagePreference& p);
absl::Status DecodeLanguageValue(std::string_view in, LanguagePreference* p);

// Cursor of a history page: opaque to clients (hex of started_at and session).
// InvalidArgument ("cursor: ...") for anything EncodeCursor did not produce.
std::string EncodeCursor(Millis started_at, std::string_view session);
absl::Status DecodeCursor(std::string_view cursor, Millis* started_at, std::string* session);

namespace internal {
// The uncompressed columnar payload inside a V1 blob, exposed for tests, the fuzzer and tools.
// *segments, if given, receives the end offsets of the payload's columns (and planes).
std::string EncodeHistoryPayload(std::span<const ViewingRecord> records,
                                 std::vector<size_t>* segments = nullptr);
absl::StatusOr<std::vector<ViewingRecord>> DecodeHistoryPayload(std::string_view payload,
                                                                MemberId member, Kind kind,
                                                                size_t newest = SIZE_MAX,
                                                                size_t* total = nullptr);
}  // namespace internal

}  // namespace strata::viewing
