// Row encodings of the media service (specified byte by byte in docs/media.md). Every value
// starts with a format version byte (1), so rows written now stay readable. Decoders never
// read past their input and return DataLoss for malformed rows. Pure; thread-safe.
//
// Tables:
//   media_buckets   partition = bucket name, clustering "b"         -> BucketRow
//   media_objects   partition = bucket name (one atomic batch per object change), rows:
//     "o" key                         -> ObjectRow (the current generation of the key)
//     "i" meta_key 0x00 value 0x00 key -> u64 BE generation (search index entry)
//     "g" key 0x00 u64 BE generation  -> SupersededRow (a replaced generation whose bytes
//                                        the garbage collector must delete)
//     "u" key 0x00 u64 BE generation  -> UploadRow (an upload in progress: written before
//                                        its bytes, removed by the batch that commits the
//                                        object row; one left behind names orphan bytes)
// Keys, metadata keys and values never contain 0x00 (validation.h), so the separators keep
// the index sorted by (meta key, value, object key).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/ttl.h"

namespace strata::media {

struct BucketPolicy {
  Millis ttl_ms = 0;                   // 0 = objects never expire
  Millis grace_ms = 7LL * 86'400'000;  // soft-deleted objects are restorable this long
  std::string storage_class = "hot";
};

struct BucketRow {
  BucketPolicy policy;
  Millis created_at = 0;
  Millis updated_at = 0;
};

struct ObjectRow {
  uint64_t generation = 0;  // unique per write of a key, increasing; part of the blob name
  Millis created_at = 0;
  Millis ttl_ms = 0;      // effective TTL from created_at (object override or bucket's); 0 = none
  Millis deleted_at = 0;  // soft-delete marker time; 0 = live
  Millis grace_ms = 0;    // restorable until deleted_at + grace_ms (set with the marker)
  uint64_t size = 0;
  uint32_t parts = 0;
  std::string storage_class;
  std::string blob;  // blob-store name of the bytes
  std::string sha1;  // 20 raw bytes
  std::string md5;   // 16 raw bytes
  uint64_t xxh3 = 0;
  std::string content_type;
  std::string wrapped_key;                                // opaque; empty = none
  std::vector<std::pair<std::string, std::string>> meta;  // sorted by key, unique keys

  Millis expires_at() const { return TtlExpiresAt(created_at, ttl_ms); }
  // Soft-deleted and no longer restorable at `t`: the garbage collector may remove it.
  bool GracePassed(Millis t) const { return deleted_at != 0 && deleted_at + grace_ms <= t; }
  // Past its TTL at `t` (invisible, not restorable): the garbage collector may remove it.
  bool Expired(Millis t) const { return TtlExpired(created_at, ttl_ms, t); }
};

struct SupersededRow {
  std::string blob;
  uint64_t size = 0;
  uint32_t parts = 0;
  std::string storage_class;
  Millis superseded_at = 0;
};

// An upload whose object row is not committed yet. The batch that commits the object row
// deletes it; an upload abandoned by a crash, a failed metadata write or a dropped stream
// leaves it behind, and the garbage collector claims it (turning it into a SupersededRow)
// once it is older than its orphan age.
struct UploadRow {
  std::string blob;
  std::string storage_class;
  Millis started_at = 0;
};

inline constexpr char kBucketClustering[] = "b";

std::string EncodeBucketRow(const BucketRow& row);
absl::StatusOr<BucketRow> DecodeBucketRow(std::string_view in);

std::string EncodeObjectRow(const ObjectRow& row);
absl::StatusOr<ObjectRow> DecodeObjectRow(std::string_view in);

std::string EncodeSupersededRow(const SupersededRow& row);
absl::StatusOr<SupersededRow> DecodeSupersededRow(std::string_view in);

std::string EncodeUploadRow(const UploadRow& row);
absl::StatusOr<UploadRow> DecodeUploadRow(std::string_view in);

std::string ObjectClustering(std::string_view key);
std::string IndexClustering(std::string_view meta_key, std::string_view value,
                            std::string_view key);
// The prefix of every index entry for (meta_key, value).
std::string IndexPrefix(std::string_view meta_key, std::string_view value);
std::string SupersededClustering(std::string_view key, uint64_t generation);
std::string UploadClustering(std::string_view key, uint64_t generation);
// Splits a "g" or "u" clustering key (tag, key, 0x00, u64 BE generation); false if malformed.
bool ParseGenerationClustering(std::string_view clustering, std::string* key,
                               uint64_t* generation);

// The smallest string greater than every string starting with `prefix` ("" if none).
std::string PrefixEnd(std::string_view prefix);

// Blob names of object bytes: "<storage class>/<bucket>/<key>@<generation, 16 hex digits>".
// The generation makes every write of a key a new name (blob names are write-once), and
// since a generation is at least the upload's start in microseconds (MediaService), a name
// also tells when its upload began, at the latest.
std::string BlobName(std::string_view storage_class, std::string_view bucket, std::string_view key,
                     uint64_t generation);
struct BlobNameParts {
  std::string storage_class;
  std::string bucket;
  std::string key;
  uint64_t generation = 0;
};
// The inverse of BlobName; false for a name it cannot have made (a storage class, bucket or
// key that breaks validation.h's rules, or no "@" + 16 lower-case hex digits at the end).
// Keys may hold '/' and '@': the bucket ends at the second '/', the key at the last '@'.
bool ParseBlobName(std::string_view name, BlobNameParts* out);

}  // namespace strata::media
