// Row layout of the asset service (docs/assets.md, "Rows" has it byte by byte).
//
// Table `asset_types`, partition = the type name:
//   ""                           the current type definition (JSON text, format byte first)
//   "v" + be32(version)          every definition, for GET's history
//   "b" + be64(bucket start ms)  a bucket that has (or had) assets: the bucket directory
// Table `assets`, partition = "<type>/d<yyyymmdd>" or "<type>/m<yyyymm>" (the creation-time
// bucket, UTC), so one partition holds one type's assets of one day or month:
//   "a" + ~id (16 bytes, inverted)              the asset row (ascending = newest first)
//   "h" + id + be32(version)                    a previous version of the asset
//   "i" + be16(index id) + value + ~id          an index entry (index_key.h), value ""
//   "i" 0x00 0x00 + ~id                         index 0: one per asset, for id listings
//   "o" + id + be32(version)                    outbox: change events not yet on the queue
//   "j" + be64(job id) + id                     a reprocessing job's mark, value ""
// Everything one write changes lives in one partition, so one atomic batch covers the row,
// its index entries, its history and its change events.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/assets/asset_id.h"
#include "strata/base/clock.h"

namespace strata::assets {

enum class BucketUnit { kDay, kMonth };

// The start (ms, UTC) of the bucket holding time `t`, and of the bucket before one that
// starts at `start`.
Millis BucketStart(BucketUnit unit, Millis t);
Millis PreviousBucketStart(BucketUnit unit, Millis start);
// "<type>/d20261206" or "<type>/m202612".
std::string BucketPartition(std::string_view type, BucketUnit unit, Millis start);

// Clustering keys.
inline constexpr char kAssetPrefix = 'a';
inline constexpr char kHistoryPrefix = 'h';
inline constexpr char kIndexPrefix = 'i';
inline constexpr char kOutboxPrefix = 'o';
inline constexpr char kJobMarkPrefix = 'j';
inline constexpr char kTypeVersionPrefix = 'v';
inline constexpr char kBucketPrefix = 'b';
std::string AssetKey(const AssetId& id);
std::optional<AssetId> AssetIdFromKey(std::string_view key);  // "a" + ~id
std::string HistoryKey(const AssetId& id, uint32_t version);
std::string HistoryPrefix(const AssetId& id);
// Index id 0 is no pointer's: its entry, "i" 0x00 0x00 + ~id with no value, exists for
// every asset (in buckets that say so, below), so ids can be listed without reading rows.
inline constexpr uint16_t kEveryAssetIndex = 0;
// The value of a bucket directory row ("b" + start) whose every asset has its index-0
// entry. A bucket made before index 0 existed has the value "" and is listed from its rows.
inline constexpr std::string_view kBucketListedByIndex = "\x01";
// The index entry prefix of one index ("i" + be16(index id)).
std::string IndexPrefix(uint16_t index_id);
// An index entry of an asset row: be16(index id) + encoded value (no prefix, no id).
std::string IndexEntry(uint16_t index_id, std::string_view encoded_value);
// The index key of an entry: "i" + entry + ~id.
std::string IndexKeyFromEntry(std::string_view entry, const AssetId& id);
// IndexKeyFromEntry(IndexEntry(index_id, encoded_value), id).
std::string IndexKey(uint16_t index_id, std::string_view encoded_value, const AssetId& id);
// "a" + ~id as the scan bound just after it: every asset key of an older id (< id) is >= it.
std::string AssetKeyAfter(const AssetId& id);
// The id at the end of an index entry key.
std::optional<AssetId> AssetIdFromIndexKey(std::string_view key);
std::string OutboxKey(const AssetId& id, uint32_t version);
std::string JobMarkKey(uint64_t job_id, const AssetId& id);
// "j" + be64(job id): every mark of one job in a bucket starts with it.
std::string JobMarkPrefix(uint64_t job_id);
// The id at the end of a job mark key (nullopt if `key` is not one).
std::optional<AssetId> AssetIdFromJobMarkKey(std::string_view key);
std::string TypeVersionKey(uint32_t version);
std::string BucketDirectoryKey(Millis start);

// The asset row.
struct AssetRow {
  uint32_t version = 0;
  uint32_t schema_version = 0;
  Millis created_at = 0;
  Millis updated_at = 0;
  // Index entry suffixes written for this version (index id + encoded value, without the
  // id): exactly what the next update or the delete must remove.
  std::vector<std::string> index_entries;
  std::string payload;  // compact JSON
};
inline constexpr char kAssetRowFormatV1 = 1;
std::string EncodeAssetRow(const AssetRow& row);
// EncodeAssetRow without the payload, appended to `out` (the payload goes after it).
void AppendAssetRowHeader(const AssetRow& row, std::string* out);
std::optional<AssetRow> DecodeAssetRow(std::string_view in);
// The same, keeping the payload in `in`'s buffer (no copy of it).
std::optional<AssetRow> DecodeOwnedAssetRow(std::string&& in);
// Every field but the payload; `*in` is left at the payload.
std::optional<AssetRow> DecodeAssetRowHeader(std::string_view* in);

// A kept previous version (an "h" row), written in the same batch as the version after it.
// Usually that next version differs from it in one stretch of its JSON text (a processor's
// `set`, a client's PATCH of one field): then the row is the header of the asset row with
// format byte kHistoryDeltaFormat, varint p, varint s, and the bytes of the previous payload
// between its first p and last s bytes, which it shares with the next version's payload. A
// payload with less in common is kept whole (the asset row format). Byte-exact either way.
inline constexpr char kHistoryDeltaFormat = 2;
std::string EncodeHistoryRow(const AssetRow& previous, std::string_view next_payload);
// Whether a history row needs the payload of the version after it to be decoded.
bool IsHistoryDelta(std::string_view in);
// Every field of a history row but the payload (either format).
std::optional<AssetRow> DecodeHistoryHeader(std::string_view in);
// The row, its payload rebuilt from `next_payload` (the payload of version + 1) when it is a
// delta; nullopt if corrupt, or if the delta does not fit `next_payload`.
std::optional<AssetRow> DecodeHistoryRow(std::string_view in, std::string_view next_payload);

// A change event (what the change feed carries; JSON on the queue).
enum class ChangeOp { kCreate, kUpdate, kDelete };
std::string_view ChangeOpName(ChangeOp op);
struct ChangeEvent {
  std::string type;
  AssetId id;
  uint32_t version = 0;
  ChangeOp op = ChangeOp::kCreate;
  Millis time = 0;
};
std::string EncodeChangeEvent(const ChangeEvent& event);  // one JSON object
// The outbox row: events, length-prefixed, format byte first.
std::string EncodeOutbox(const std::vector<std::string>& encoded_events);
std::optional<std::vector<std::string>> DecodeOutbox(std::string_view in);

// Page cursors (opaque to clients: lower-case hex of the bytes below).
//   list:   0x01 + id(16)                                   next page: ids < id
//   search: 0x02 + be64(query hash) + be64(bucket) + last index key
struct ListCursor {
  AssetId last;
};
struct SearchCursor {
  uint64_t query_hash = 0;
  Millis bucket = 0;
  std::string last_key;
};
std::string EncodeListCursor(const ListCursor& c);
std::string EncodeSearchCursor(const SearchCursor& c);
// nullopt for a malformed cursor (or one of the other kind).
std::optional<ListCursor> DecodeListCursor(std::string_view text);
std::optional<SearchCursor> DecodeSearchCursor(std::string_view text);

}  // namespace strata::assets
