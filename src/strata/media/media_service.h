// The media object service: buckets with a lifecycle policy, objects (bytes in the blob store,
// metadata in the row store), a search index on user metadata, soft delete and restore.
// See docs/media.md for the data path and the row formats (rows.h).
//
// Write path of an object (PUT): BeginPut validates and opens a blob writer under a fresh
// name "<storage class>/<bucket>/<key>@<generation hex>"; Upload::Append streams bytes into
// it while hashing (SHA-1, MD5, XXH3-64); Upload::Commit makes the bytes durable and visible
// in the blob store FIRST, then writes the metadata in one atomic single-partition batch (the
// object row, its index entries, the removal of the previous generation's index entries, and
// a "superseded" row for the previous generation's bytes). Before any byte is written,
// BeginPut records the upload in an upload row ("u", rows.h) that the commit batch deletes,
// so a crash between the two, a failed metadata write or an abandoned stream leaves a row
// that names the orphan bytes: the garbage collector claims uploads older than its orphan
// age (AbandonUpload) and deletes their bytes. A claimed upload can no longer commit
// (Aborted), so the collector never deletes bytes a row names. Readers never see half an
// object: the row only ever names committed blobs.
//
// Soft delete writes the marker into the object row (one row, one partition): GET/HEAD/list
// answer NotFound at once; Restore clears it until deleted_at + grace. An object whose TTL
// has passed (created_at + ttl) is likewise invisible and cannot be restored. Nothing is
// removed physically here: that is the garbage collector's job (rows keep what it needs).
//
// Thread safety: every method is thread-safe. Changes of one object (commit, delete, restore)
// are serialised by a striped per-key lock (per process; a distributed deployment would use
// a conditional write instead).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/blob/blob_store.h"
#include "strata/media/checksums.h"
#include "strata/media/rows.h"
#include "strata/store/row_store.h"

namespace strata::media {

struct Bucket {
  std::string name;
  BucketPolicy policy;
  Millis created_at = 0;
  Millis updated_at = 0;
};

// An object's metadata as the API shows it.
struct ObjectInfo {
  std::string bucket;
  std::string key;
  ObjectRow row;
};

struct PutObjectOptions {
  std::string content_type = "application/octet-stream";
  // User metadata (x-strata-meta-<key>: value); keys unique.
  std::vector<std::pair<std::string, std::string>> meta;
  // Overrides the bucket's TTL for this object (0 = never expires).
  std::optional<Millis> ttl_ms;
  // Opaque wrapped encryption key, stored as given (<= 4 KiB).
  std::string wrapped_key;
};

struct ListQuery {
  std::string prefix;
  std::string after;   // exclusive: the last key of the previous page
  size_t limit = 100;  // 1..1000
  // false: live objects. true: soft-deleted objects that can still be restored (within
  // their grace period and TTL), e.g. to find what to restore.
  bool deleted = false;
};

struct ObjectPage {
  std::vector<ObjectInfo> objects;
  std::string next_after;  // empty = no more
};

class MediaService;

// One object being written. Not thread-safe; destroying it without Commit abandons it
// (nothing becomes visible).
class Upload {
 public:
  absl::Status Append(std::string_view data);
  // Durable bytes first, then the metadata batch. Returns the stored metadata.
  absl::StatusOr<ObjectInfo> Commit();
  uint64_t size() const { return writer_->size(); }

 private:
  friend class MediaService;
  Upload() = default;
 public:
  // An upload never committed drops its upload row (best effort; the GC claims it
  // otherwise); the writer's destructor removes its temporary bytes.
  ~Upload();

 private:

  MediaService* service_ = nullptr;
  std::string bucket_;
  std::string key_;
  ObjectRow row_;
  std::unique_ptr<blob::BlobWriter> writer_;
  ObjectHasher hasher_;
  bool done_ = false;
};

// An object opened for reading: its metadata and a reader of exactly that generation's
// bytes (which keeps working if the object is deleted or rewritten meanwhile).
struct OpenedObject {
  ObjectInfo info;
  std::unique_ptr<blob::BlobReader> reader;
};

class MediaService {
 public:
  // Opens the service's tables. `rows`, `blobs`, `clock` and `metrics` must outlive it.
  static absl::StatusOr<std::unique_ptr<MediaService>> Open(store::RowStore* rows,
                                                            blob::BlobStore* blobs, Clock* clock,
                                                            MetricsRegistry* metrics);

  // Creates the bucket, or updates its policy (created_at is kept). New objects use the new
  // policy; existing objects keep the TTL and storage class they were written with.
  absl::StatusOr<Bucket> PutBucket(std::string_view name, const BucketPolicy& policy);
  // NotFound if the bucket does not exist.
  absl::StatusOr<Bucket> GetBucket(std::string_view name);

  // InvalidArgument (naming the field) for a bad key or options; NotFound for a missing
  // bucket (checked before any byte is read).
  absl::StatusOr<std::unique_ptr<Upload>> BeginPut(std::string_view bucket, std::string_view key,
                                                   PutObjectOptions options);
  // Metadata of a live object; NotFound if absent, soft-deleted or expired.
  absl::StatusOr<ObjectInfo> Head(std::string_view bucket, std::string_view key);
  absl::StatusOr<OpenedObject> OpenForRead(std::string_view bucket, std::string_view key);
  // Soft delete: writes the marker. NotFound if absent, already deleted or expired. Returns
  // the row with the marker (deleted_at, grace_ms).
  absl::StatusOr<ObjectInfo> Delete(std::string_view bucket, std::string_view key);
  // Clears the marker. NotFound if absent, expired or past its grace period;
  // FailedPrecondition if the object is not deleted.
  absl::StatusOr<ObjectInfo> Restore(std::string_view bucket, std::string_view key);
  // Live objects (or restorable soft-deleted ones, see ListQuery::deleted) in key order.
  absl::StatusOr<ObjectPage> List(std::string_view bucket, const ListQuery& query);
  // Live objects whose metadata `meta_key` equals `value` (and whose key starts with
  // query.prefix), in key order.
  absl::StatusOr<ObjectPage> Search(std::string_view bucket, std::string_view meta_key,
                                    std::string_view value, const ListQuery& query);

  // --- For lifecycle tasks (src/strata/gc). Each call is idempotent and takes the key's lock,
  // so it is ordered against Commit, Delete and Restore of the same key.

  // The object row of `key` if its generation is `generation`: NotFound if the key has no
  // row, FailedPrecondition if the key now holds another generation (it was re-written).
  absl::StatusOr<ObjectRow> RowAtGeneration(std::string_view bucket, std::string_view key,
                                            uint64_t generation);
  // The batched forms of the calls above, for the collector's sweep: on RADOS each row read
  // or write is a network round trip, so a batch of items costs one MultiGet and one write
  // per bucket instead of a few round trips per item.
  struct ObjectRef {
    std::string_view bucket;
    std::string_view key;
    uint64_t generation = 0;
  };
  // An object row as read, with its stored bytes (what a conditional removal compares).
  struct StoredRow {
    ObjectRow row;
    std::string encoded;
  };
  // RowAtGeneration for each object, with one MultiGet: result i answers objects[i] as
  // RowAtGeneration would. Reads without the keys' locks: a row is read atomically, and the
  // collector's decision rests only on what, once true of a generation, stays true
  // (eligibility), never on a change being absent.
  std::vector<absl::StatusOr<StoredRow>> RowsAtGenerations(std::span<const ObjectRef> objects);
  // For objects of one bucket, as read by RowsAtGenerations: removes each one's index entries
  // and object row in one atomic write of the bucket's partition, on condition that every row
  // still holds exactly `rows[i].encoded` (a compare-and-set, store-enforced), under the keys'
  // locks (ordered against Commit, Delete and Restore as the one-item calls are).
  // FailedPrecondition with nothing removed if any row changed meanwhile (a rewrite): then
  // go item by item (DeleteIndexEntries, DeleteObjectRow), which handle that case.
  absl::Status DeleteObjectRowsIfUnchanged(std::string_view bucket,
                                           std::span<const std::string_view> keys,
                                           std::span<const StoredRow* const> rows);
  // DeleteSupersededRow for several generations of one bucket, in one write.
  absl::Status DeleteSupersededRows(std::string_view bucket,
                                    std::span<const std::pair<std::string_view, uint64_t>> rows);

  // Removes the search index entries of the row `key`@`generation` (its user metadata).
  // OK and a no-op when the key holds no row or another generation (a rewrite already
  // replaced the entries in its own batch).
  absl::Status DeleteIndexEntries(std::string_view bucket, std::string_view key,
                                  uint64_t generation);
  // Removes the object row if it still holds `generation`; OK if absent or re-written.
  absl::Status DeleteObjectRow(std::string_view bucket, std::string_view key,
                               uint64_t generation);
  // The superseded row of `key`@`generation`; NotFound if absent.
  absl::StatusOr<SupersededRow> GetSupersededRow(std::string_view bucket, std::string_view key,
                                                 uint64_t generation);
  // Removes the superseded row of `key`@`generation`; OK if absent.
  absl::Status DeleteSupersededRow(std::string_view bucket, std::string_view key,
                                   uint64_t generation);
  // The garbage collector's claim on an abandoned upload: under the key's lock, if the
  // upload row of `key`@`generation` exists and started before `started_before`, replaces it
  // with a superseded row naming its bytes (size and parts from the blob store; 0 if no
  // bytes were committed), in one batch. From then on that upload cannot commit (Aborted)
  // and its bytes are collected like a replaced generation's. NotFound if there is no such
  // upload row (committed, cleaned up, or claimed before); FailedPrecondition if younger.
  absl::StatusOr<SupersededRow> AbandonUpload(std::string_view bucket, std::string_view key,
                                              uint64_t generation, Millis started_before);
  // Makes every row write acknowledged so far durable (RowStore::Sync): for a caller about to
  // delete bytes durably because of what it read (the collector's sweep), so that a power
  // cut cannot bring back a row that names them.
  absl::Status SyncRows() { return rows_->Sync(); }
  // Points the row `key`@`generation` at bytes already copied to `blob` in `storage_class`
  // (archival), and makes that durable (RowStore::Sync) before returning, since the caller
  // deletes the old bytes next. FailedPrecondition if the key holds another generation or
  // the row is eligible for garbage collection (soft-deleted past grace, or expired);
  // NotFound if absent.
  // Aborted (nothing changed; copy again) if `blob` no longer exists: the row may only come
  // to name bytes that exist, checked under the key's lock (see DeleteUnreferencedBlob).
  absl::Status MoveObjectBytes(std::string_view bucket, std::string_view key,
                               uint64_t generation, std::string_view storage_class,
                               std::string_view blob);

  // --- For the collector's orphan-blob scan (src/strata/gc/orphan_scan.h): bytes that no
  // row names, left by a power loss that took their upload row (docs/gc.md).

  // Whether a row names `blob`, whose name says it holds `key`@`generation` of `bucket`
  // (ParseBlobName): the key's object row (whatever its generation: archival keeps the
  // generation and changes the name), or the superseded or upload row of that generation.
  // No other row names object bytes. Under the key's lock.
  absl::StatusOr<bool> BlobReferenced(std::string_view bucket, std::string_view key,
                                      uint64_t generation, std::string_view blob);
  // Deletes `blob` if no row names it (as BlobReferenced), checked and deleted under the
  // key's lock: true when deleted (or already absent), false when a row names it (nothing
  // done). Safe against writers because a row only ever comes to name a blob (a) before the
  // blob exists -- the upload row, written by BeginPut before any byte, under a name no
  // existing blob has -- or (b) under the key's lock after checking that the blob exists
  // (MoveObjectBytes). So once this finds no row, none can appear until the bytes are gone.
  // The rows it read are made durable (RowStore::Sync) before the delete, as the sweep does:
  // a power cut must not bring back a row naming them.
  absl::StatusOr<bool> DeleteUnreferencedBlob(std::string_view bucket, std::string_view key,
                                              uint64_t generation, std::string_view blob);
  blob::BlobStore* blobs() const { return blobs_; }
  Clock* clock() const { return clock_; }

  // Counts bytes sent to clients (the API streams them out).
  void RecordBytesOut(uint64_t n) { bytes_out_->Inc(n); }
  // The bytes of `key` read back do not match its stored XXH3: counts it, logs it as an
  // error, and returns the Internal status to answer with (never silently bad bytes).
  absl::Status ChecksumMismatch(std::string_view bucket, std::string_view key,
                                const ObjectRow& row, uint64_t read_xxh3);

  store::Table* objects_table() const { return objects_; }
  store::Table* buckets_table() const { return buckets_; }

 private:
  friend class Upload;
  MediaService(store::RowStore* rows, blob::BlobStore* blobs, Clock* clock)
      : rows_(rows), blobs_(blobs), clock_(clock) {}

  absl::StatusOr<ObjectInfo> CommitUpload(Upload* upload);
  absl::StatusOr<ObjectRow> ReadRow(std::string_view bucket, std::string_view key);
  // BlobReferenced without taking the key's lock (the caller holds it).
  absl::StatusOr<bool> ReferencedLocked(std::string_view bucket, std::string_view key,
                                        uint64_t generation, std::string_view blob);
  bool Visible(const ObjectRow& row, Millis now) const;
  bool Restorable(const ObjectRow& row, Millis now) const;
  uint64_t NextGeneration(uint64_t at_least);
  size_t KeyStripe(std::string_view bucket, std::string_view key) const;
  std::mutex& KeyLock(std::string_view bucket, std::string_view key);
  absl::StatusOr<ObjectPage> ScanVisible(std::string_view bucket, const ListQuery& query,
                                         std::string_view meta_key, std::string_view value,
                                         bool search);

  store::RowStore* rows_;
  blob::BlobStore* blobs_;
  Clock* clock_;
  store::Table* buckets_ = nullptr;
  store::Table* objects_ = nullptr;
  std::atomic<uint64_t> last_generation_{0};
  std::array<std::mutex, 256> key_locks_;

  Counter* puts_ = nullptr;
  Counter* gets_ = nullptr;
  Counter* deletes_ = nullptr;
  Counter* restores_ = nullptr;
  Counter* bytes_in_ = nullptr;
  Counter* bytes_out_ = nullptr;
  Counter* checksum_mismatches_ = nullptr;
};

}  // namespace strata::media
