#include "strata/media/media_service.h"

#include <algorithm>
#include <functional>

#include "strata/base/coding.h"
#include "strata/base/crash_point.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/media/checksums.h"
#include "strata/media/validation.h"

namespace strata::media {
namespace {

absl::Status NoBucket(std::string_view bucket) {
  return absl::NotFoundError("bucket: no bucket named '" + std::string(bucket) + "'");
}
absl::Status NoObject(std::string_view bucket, std::string_view key) {
  return absl::NotFoundError("key: no object '" + std::string(key) + "' in bucket '" +
                             std::string(bucket) + "'");
}

std::string GenerationValue(uint64_t generation) {
  std::string v;
  coding::PutFixed64BE(&v, generation);
  return v;
}

absl::Status ValidateOptions(PutObjectOptions* o) {
  if (o->content_type.empty()) o->content_type = "application/octet-stream";
  if (o->content_type.size() > kMaxContentTypeBytes) {
    return absl::InvalidArgumentError("content-type: longer than 256 bytes");
  }
  for (char c : o->content_type) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError("content-type: must be printable ASCII");
    }
  }
  if (o->wrapped_key.size() > kMaxWrappedKeyBytes) {
    return absl::InvalidArgumentError("wrapped_key: longer than 4096 bytes");
  }
  if (o->ttl_ms && *o->ttl_ms < 0) return absl::InvalidArgumentError("ttl: must be >= 0");
  if (o->meta.size() > kMaxMetaEntries) {
    return absl::InvalidArgumentError("meta: at most 32 entries");
  }
  std::sort(o->meta.begin(), o->meta.end());
  for (size_t i = 0; i < o->meta.size(); ++i) {
    const auto& [k, v] = o->meta[i];
    STRATA_RETURN_IF_ERROR(ValidateMetaKey(k));
    STRATA_RETURN_IF_ERROR(ValidateMetaValue(k, v));
    if (i > 0 && o->meta[i - 1].first == k) {
      return absl::InvalidArgumentError("meta." + k + ": given more than once");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Upload::Append(std::string_view data) {
  if (done_) return absl::FailedPreconditionError("upload: already committed");
  hasher_.Update(data);
  return writer_->Append(data);
}

Upload::~Upload() {
  if (!done_ && service_ != nullptr) {
    (void)service_->objects_->Delete(bucket_, UploadClustering(key_, row_.generation));
  }
}

absl::StatusOr<ObjectInfo> Upload::Commit() {
  if (done_) return absl::FailedPreconditionError("upload: already committed");
  done_ = true;
  return service_->CommitUpload(this);
}

absl::StatusOr<std::unique_ptr<MediaService>> MediaService::Open(store::RowStore* rows,
                                                                 blob::BlobStore* blobs,
                                                                 Clock* clock,
                                                                 MetricsRegistry* metrics) {
  std::unique_ptr<MediaService> s(new MediaService(rows, blobs, clock));
  STRATA_ASSIGN_OR_RETURN(s->buckets_,
                          rows->OpenTable({"media_buckets", store::TableProfile::kLive}));
  STRATA_ASSIGN_OR_RETURN(s->objects_,
                          rows->OpenTable({"media_objects", store::TableProfile::kLive}));
  s->puts_ = metrics->GetCounter("strata_media_object_puts_total", "Objects written");
  s->gets_ = metrics->GetCounter("strata_media_object_gets_total", "Objects opened for reading");
  s->deletes_ = metrics->GetCounter("strata_media_object_deletes_total", "Objects soft-deleted");
  s->restores_ = metrics->GetCounter("strata_media_object_restores_total", "Objects restored");
  s->bytes_in_ = metrics->GetCounter("strata_media_bytes_in_total", "Object bytes written");
  s->bytes_out_ = metrics->GetCounter("strata_media_bytes_out_total", "Object bytes sent");
  s->checksum_mismatches_ = metrics->GetCounter(
      "strata_media_checksum_mismatches_total",
      "Whole-object reads whose bytes did not match the stored XXH3 (answered 500 / aborted)");
  return s;
}

absl::Status MediaService::ChecksumMismatch(std::string_view bucket, std::string_view key,
                                            const ObjectRow& row, uint64_t read_xxh3) {
  checksum_mismatches_->Inc();
  STRATA_LOG_ERROR("media: object bytes do not match their checksum", "bucket", bucket, "key",
                   key, "generation", row.generation, "blob", row.blob, "stored_xxh3",
                   Hex64(row.xxh3), "read_xxh3", Hex64(read_xxh3));
  return absl::InternalError("object: its bytes do not match the stored checksum (xxh3 " +
                             Hex64(row.xxh3) + ", read " + Hex64(read_xxh3) +
                             "); the stored copy is damaged");
}

absl::StatusOr<Bucket> MediaService::PutBucket(std::string_view name, const BucketPolicy& policy) {
  STRATA_RETURN_IF_ERROR(ValidateBucketName(name));
  STRATA_RETURN_IF_ERROR(ValidateStorageClass(policy.storage_class));
  if (policy.ttl_ms < 0) return absl::InvalidArgumentError("ttl: must be >= 0");
  if (policy.grace_ms < 0) return absl::InvalidArgumentError("grace: must be >= 0");
  std::lock_guard<std::mutex> lock(KeyLock(name, ""));
  const Millis now = clock_->NowMillis();
  BucketRow row;
  absl::StatusOr<std::string> old = buckets_->Get(name, kBucketClustering);
  if (old.ok()) {
    STRATA_ASSIGN_OR_RETURN(row, DecodeBucketRow(*old));
  } else if (absl::IsNotFound(old.status())) {
    row.created_at = now;
  } else {
    return old.status();
  }
  row.policy = policy;
  row.updated_at = now;
  STRATA_RETURN_IF_ERROR(buckets_->Put(name, kBucketClustering, EncodeBucketRow(row)));
  return Bucket{std::string(name), row.policy, row.created_at, row.updated_at};
}

absl::StatusOr<Bucket> MediaService::GetBucket(std::string_view name) {
  STRATA_RETURN_IF_ERROR(ValidateBucketName(name));
  absl::StatusOr<std::string> v = buckets_->Get(name, kBucketClustering);
  if (absl::IsNotFound(v.status())) return NoBucket(name);
  if (!v.ok()) return v.status();
  STRATA_ASSIGN_OR_RETURN(BucketRow row, DecodeBucketRow(*v));
  return Bucket{std::string(name), row.policy, row.created_at, row.updated_at};
}

absl::StatusOr<std::unique_ptr<Upload>> MediaService::BeginPut(std::string_view bucket,
                                                               std::string_view key,
                                                               PutObjectOptions options) {
  STRATA_RETURN_IF_ERROR(ValidateBucketName(bucket));
  STRATA_RETURN_IF_ERROR(ValidateObjectKey(key));
  STRATA_RETURN_IF_ERROR(ValidateOptions(&options));
  STRATA_ASSIGN_OR_RETURN(Bucket b, GetBucket(bucket));
  std::unique_ptr<Upload> up(new Upload());
  up->service_ = this;
  up->bucket_ = std::string(bucket);
  up->key_ = std::string(key);
  ObjectRow& row = up->row_;
  // A generation above the key's current one, and whose blob name is free: after a restart
  // the clock may not have moved past the generations written before (or left as orphans by
  // a crash), and blob names are write-once.
  uint64_t at_least = 0;
  absl::StatusOr<ObjectRow> current = ReadRow(bucket, key);
  if (current.ok()) {
    at_least = current->generation + 1;
  } else if (!absl::IsNotFound(current.status())) {
    return current.status();
  }
  for (;;) {
    row.generation = NextGeneration(at_least);
    row.blob = BlobName(b.policy.storage_class, up->bucket_, up->key_, row.generation);
    absl::StatusOr<blob::BlobInfo> taken = blobs_->Stat(row.blob);
    if (absl::IsNotFound(taken.status())) break;
    if (absl::IsInvalidArgument(taken.status())) {
      return absl::InvalidArgumentError("key: not storable by the blob store (" +
                                        std::string(taken.status().message()) + ")");
    }
    if (!taken.ok()) return taken.status();
    at_least = row.generation + 1;
  }
  row.ttl_ms = options.ttl_ms.value_or(b.policy.ttl_ms);
  row.grace_ms = b.policy.grace_ms;
  row.storage_class = b.policy.storage_class;
  row.content_type = std::move(options.content_type);
  row.wrapped_key = std::move(options.wrapped_key);
  row.meta = std::move(options.meta);
  absl::StatusOr<std::unique_ptr<blob::BlobWriter>> writer = blobs_->NewWriter(row.blob);
  if (absl::IsInvalidArgument(writer.status())) {
    return absl::InvalidArgumentError("key: not storable by the blob store (" +
                                      std::string(writer.status().message()) + ")");
  }
  if (!writer.ok()) return writer.status();
  // The upload row goes first: whatever happens to this upload from here on, a row names
  // its bytes until the commit batch (or the GC) removes it.
  STRATA_RETURN_IF_ERROR(objects_->Put(
      bucket, UploadClustering(key, row.generation),
      EncodeUploadRow({row.blob, row.storage_class, clock_->NowMillis()})));
  up->writer_ = std::move(*writer);
  return up;
}

absl::StatusOr<ObjectInfo> MediaService::CommitUpload(Upload* up) {
  // 1. The bytes: durable and visible in the blob store before any row names them.
  // (A failure leaves the upload row: the GC removes it and whatever bytes it names.)
  STRATA_RETURN_IF_ERROR(up->writer_->Commit());
  STRATA_CRASH_POINT("media.put.after_bytes");
  Digests d = up->hasher_.Finish();
  ObjectRow& row = up->row_;
  row.size = up->writer_->size();
  row.parts = up->writer_->parts();
  row.sha1 = std::move(d.sha1);
  row.md5 = std::move(d.md5);
  row.xxh3 = d.xxh3;

  // 2. The metadata, in one batch of the bucket's partition.
  std::lock_guard<std::mutex> lock(KeyLock(up->bucket_, up->key_));
  const std::string upload_row = UploadClustering(up->key_, row.generation);
  absl::StatusOr<std::string> pending = objects_->Get(up->bucket_, upload_row);
  if (absl::IsNotFound(pending.status())) {
    // The GC claimed this upload as abandoned (older than its orphan age), maybe before
    // these bytes were committed: remove them, or leave a superseded row for the next run.
    if (!blobs_->Delete(row.blob).ok()) {
      (void)objects_->Put(up->bucket_, SupersededClustering(up->key_, row.generation),
                          EncodeSupersededRow({row.blob, row.size, row.parts, row.storage_class,
                                               clock_->NowMillis()}));
    }
    return absl::AbortedError("upload: abandoned (older than the collector's orphan age); "
                              "send the object again");
  }
  if (!pending.ok()) return pending.status();
  const Millis now = clock_->NowMillis();
  row.created_at = now;
  std::optional<ObjectRow> old;
  absl::StatusOr<ObjectRow> existing = ReadRow(up->bucket_, up->key_);
  if (existing.ok()) {
    old = std::move(*existing);
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  store::WriteBatch batch;
  batch.Delete(upload_row);
  // Two uploads of one key raced: the higher generation wins, whatever the commit order, so
  // generations of a key only grow; the loser's bytes are superseded at once.
  const bool lost = old && old->generation > row.generation;
  if (old) {
    const ObjectRow& replaced = lost ? row : *old;
    batch.Put(SupersededClustering(up->key_, replaced.generation),
              EncodeSupersededRow(
                  {replaced.blob, replaced.size, replaced.parts, replaced.storage_class, now}));
  }
  if (!lost) {
    if (old) {
      for (const auto& [k, v] : old->meta) batch.Delete(IndexClustering(k, v, up->key_));
    }
    for (const auto& [k, v] : row.meta) {
      batch.Put(IndexClustering(k, v, up->key_), GenerationValue(row.generation));
    }
    batch.Put(ObjectClustering(up->key_), EncodeObjectRow(row));
  }
  absl::Status s = objects_->Apply(up->bucket_, batch);
  if (!s.ok()) {
    // The upload row still names the bytes: the GC collects them once it is old enough.
    return s;
  }
  STRATA_CRASH_POINT("media.put.after_metadata");
  puts_->Inc();
  bytes_in_->Inc(row.size);
  return ObjectInfo{up->bucket_, up->key_, row};
}

absl::StatusOr<ObjectRow> MediaService::ReadRow(std::string_view bucket, std::string_view key) {
  absl::StatusOr<std::string> v = objects_->Get(bucket, ObjectClustering(key));
  if (absl::IsNotFound(v.status())) return NoObject(bucket, key);
  if (!v.ok()) return v.status();
  return DecodeObjectRow(*v);
}

bool MediaService::Visible(const ObjectRow& row, Millis now) const {
  return row.deleted_at == 0 && (row.expires_at() == 0 || now < row.expires_at());
}

bool MediaService::Restorable(const ObjectRow& row, Millis now) const {
  return row.deleted_at != 0 && now < row.deleted_at + row.grace_ms &&
         (row.expires_at() == 0 || now < row.expires_at());
}

absl::StatusOr<ObjectInfo> MediaService::Head(std::string_view bucket, std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateBucketName(bucket));
  STRATA_RETURN_IF_ERROR(ValidateObjectKey(key));
  STRATA_ASSIGN_OR_RETURN(ObjectRow row, ReadRow(bucket, key));
  if (!Visible(row, clock_->NowMillis())) return NoObject(bucket, key);
  return ObjectInfo{std::string(bucket), std::string(key), std::move(row)};
}

absl::StatusOr<OpenedObject> MediaService::OpenForRead(std::string_view bucket,
                                                       std::string_view key) {
  STRATA_ASSIGN_OR_RETURN(ObjectInfo info, Head(bucket, key));
  absl::StatusOr<std::unique_ptr<blob::BlobReader>> reader = blobs_->NewReader(info.row.blob);
  if (absl::IsNotFound(reader.status())) {
    // Only a hard delete (the GC) removes committed bytes; it got here between our reads.
    return NoObject(bucket, key);
  }
  if (!reader.ok()) return reader.status();
  gets_->Inc();
  return OpenedObject{std::move(info), std::move(*reader)};
}

absl::StatusOr<ObjectInfo> MediaService::Delete(std::string_view bucket, std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateBucketName(bucket));
  STRATA_RETURN_IF_ERROR(ValidateObjectKey(key));
  std::lock_guard<std::mutex> lock(KeyLock(bucket, key));
  STRATA_ASSIGN_OR_RETURN(ObjectRow row, ReadRow(bucket, key));
  const Millis now = clock_->NowMillis();
  if (!Visible(row, now)) return NoObject(bucket, key);
  row.deleted_at = now;
  STRATA_RETURN_IF_ERROR(objects_->Put(bucket, ObjectClustering(key), EncodeObjectRow(row)));
  STRATA_CRASH_POINT("media.delete.after_marker");
  deletes_->Inc();
  return ObjectInfo{std::string(bucket), std::string(key), std::move(row)};
}

absl::StatusOr<ObjectInfo> MediaService::Restore(std::string_view bucket, std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateBucketName(bucket));
  STRATA_RETURN_IF_ERROR(ValidateObjectKey(key));
  std::lock_guard<std::mutex> lock(KeyLock(bucket, key));
  STRATA_ASSIGN_OR_RETURN(ObjectRow row, ReadRow(bucket, key));
  const Millis now = clock_->NowMillis();
  if (row.expires_at() != 0 && now >= row.expires_at()) return NoObject(bucket, key);
  if (row.deleted_at == 0) {
    return absl::FailedPreconditionError("key: object '" + std::string(key) + "' is not deleted");
  }
  if (now >= row.deleted_at + row.grace_ms) {
    return absl::NotFoundError("key: the grace period of '" + std::string(key) +
                               "' has ended; it can no longer be restored");
  }
  row.deleted_at = 0;
  STRATA_RETURN_IF_ERROR(objects_->Put(bucket, ObjectClustering(key), EncodeObjectRow(row)));
  restores_->Inc();
  return ObjectInfo{std::string(bucket), std::string(key), std::move(row)};
}

absl::StatusOr<ObjectPage> MediaService::List(std::string_view bucket, const ListQuery& query) {
  return ScanVisible(bucket, query, "", "", /*search=*/false);
}

absl::StatusOr<ObjectPage> MediaService::Search(std::string_view bucket, std::string_view meta_key,
                                                std::string_view value, const ListQuery& query) {
  STRATA_RETURN_IF_ERROR(ValidateMetaKey(meta_key));
  STRATA_RETURN_IF_ERROR(ValidateMetaValue(meta_key, value));
  return ScanVisible(bucket, query, meta_key, value, /*search=*/true);
}

absl::StatusOr<ObjectPage> MediaService::ScanVisible(std::string_view bucket,
                                                     const ListQuery& query,
                                                     std::string_view meta_key,
                                                     std::string_view value, bool search) {
  STRATA_RETURN_IF_ERROR(ValidateBucketName(bucket));
  if (query.limit < 1 || query.limit > 1000) {
    return absl::InvalidArgumentError("limit: must be 1..1000");
  }
  if (query.prefix.size() > kMaxKeyBytes) return absl::InvalidArgumentError("prefix: too long");
  if (query.after.size() > kMaxKeyBytes) return absl::InvalidArgumentError("after: too long");
  STRATA_RETURN_IF_ERROR(GetBucket(bucket).status());
  const std::string base = search ? IndexPrefix(meta_key, value) : std::string("o");
  store::ScanOptions scan;
  scan.start = base + query.prefix;
  scan.end = PrefixEnd(scan.start);
  if (!query.after.empty()) {
    std::string after = base + query.after;
    after.push_back('\0');
    scan.start = std::max(scan.start, after);
  }
  scan.limit = std::min<size_t>(store::kMaxPageRows, query.limit + 1);
  const Millis now = clock_->NowMillis();
  ObjectPage page;
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(store::ScanPage rows, objects_->Scan(bucket, scan));
    for (size_t i = 0; i < rows.rows.size(); ++i) {
      if (page.objects.size() == query.limit) {
        page.next_after = page.objects.back().key;
        return page;
      }
      const store::Row& r = rows.rows[i];
      std::string key = r.clustering.substr(base.size());
      ObjectRow row;
      if (search) {
        // An index entry is a hint: the object must still be this generation, live, and
        // still carry the value (entries of replaced generations are removed on rewrite, but
        // a GC may not have removed a deleted object's entries yet).
        std::string_view gen_bytes = r.value;
        uint64_t generation = 0;
        if (!coding::GetFixed64BE(&gen_bytes, &generation)) continue;
        absl::StatusOr<ObjectRow> current = ReadRow(bucket, key);
        if (absl::IsNotFound(current.status())) continue;
        if (!current.ok()) return current.status();
        if (current->generation != generation) continue;
        row = std::move(*current);
      } else {
        STRATA_ASSIGN_OR_RETURN(row, DecodeObjectRow(r.value));
      }
      if (query.deleted ? !Restorable(row, now) : !Visible(row, now)) continue;
      page.objects.push_back(ObjectInfo{std::string(bucket), std::move(key), std::move(row)});
    }
    if (rows.next_cursor.empty()) return page;
    scan.cursor = rows.next_cursor;
  }
}

absl::StatusOr<ObjectRow> MediaService::RowAtGeneration(std::string_view bucket,
                                                        std::string_view key,
                                                        uint64_t generation) {
  std::lock_guard<std::mutex> lock(KeyLock(bucket, key));
  STRATA_ASSIGN_OR_RETURN(ObjectRow row, ReadRow(bucket, key));
  if (row.generation != generation) {
    return absl::FailedPreconditionError("generation: '" + std::string(key) +
                                         "' was re-written");
  }
  return row;
}

std::vector<absl::StatusOr<MediaService::StoredRow>> MediaService::RowsAtGenerations(
    std::span<const ObjectRef> objects) {
  std::vector<std::string> clusterings;
  clusterings.reserve(objects.size());
  for (const ObjectRef& o : objects) clusterings.push_back(ObjectClustering(o.key));
  std::vector<store::RowKey> keys;
  keys.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) keys.push_back({objects[i].bucket, clusterings[i]});
  std::vector<absl::StatusOr<std::string>> values = objects_->MultiGet(keys);
  std::vector<absl::StatusOr<StoredRow>> out;
  out.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    const ObjectRef& o = objects[i];
    if (absl::IsNotFound(values[i].status())) {
      out.push_back(NoObject(o.bucket, o.key));
      continue;
    }
    if (!values[i].ok()) {
      out.push_back(values[i].status());
      continue;
    }
    absl::StatusOr<ObjectRow> row = DecodeObjectRow(*values[i]);
    if (!row.ok()) {
      out.push_back(row.status());
      continue;
    }
    if (row->generation != o.generation) {
      out.push_back(absl::FailedPreconditionError("generation: '" + std::string(o.key) +
                                                  "' was re-written"));
      continue;
    }
    out.push_back(StoredRow{std::move(*row), std::move(*values[i])});
  }
  return out;
}

absl::Status MediaService::DeleteObjectRowsIfUnchanged(std::string_view bucket,
                                                       std::span<const std::string_view> keys,
                                                       std::span<const StoredRow* const> rows) {
  if (keys.size() != rows.size()) {
    return absl::InvalidArgumentError("rows: one row per key");
  }
  if (keys.empty()) return absl::OkStatus();
  store::WriteBatch batch;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string clustering = ObjectClustering(keys[i]);
    batch.Expect(clustering, rows[i]->encoded);
    for (const auto& [k, v] : rows[i]->row.meta) batch.Delete(IndexClustering(k, v, keys[i]));
    batch.Delete(clustering);
  }
  // The keys' lock stripes, each once, in ascending order (every other path takes one).
  std::vector<size_t> stripes;
  stripes.reserve(keys.size());
  for (std::string_view key : keys) stripes.push_back(KeyStripe(bucket, key));
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(stripes.size());
  for (size_t stripe : stripes) locks.emplace_back(key_locks_[stripe]);
  return objects_->Apply(bucket, batch);
}

absl::Status MediaService::DeleteSupersededRows(
    std::string_view bucket, std::span<const std::pair<std::string_view, uint64_t>> rows) {
  if (rows.empty()) return absl::OkStatus();
  store::WriteBatch batch;
  for (const auto& [key, generation] : rows) batch.Delete(SupersededClustering(key, generation));
  return objects_->Apply(bucket, batch);
}

absl::Status MediaService::DeleteIndexEntries(std::string_view bucket, std::string_view key,
                                              uint64_t generation) {
  std::lock_guard<std::mutex> lock(KeyLock(bucket, key));
  absl::StatusOr<ObjectRow> row = ReadRow(bucket, key);
  if (absl::IsNotFound(row.status())) return absl::OkStatus();
  if (!row.ok()) return row.status();
  if (row->generation != generation || row->meta.empty()) return absl::OkStatus();
  store::WriteBatch batch;
  for (const auto& [k, v] : row->meta) batch.Delete(IndexClustering(k, v, key));
  return objects_->Apply(bucket, batch);
}

absl::Status MediaService::DeleteObjectRow(std::string_view bucket, std::string_view key,
                                           uint64_t generation) {
  std::lock_guard<std::mutex> lock(KeyLock(bucket, key));
  absl::StatusOr<ObjectRow> row = ReadRow(bucket, key);
  if (absl::IsNotFound(row.status())) return absl::OkStatus();
  if (!row.ok()) return row.status();
  if (row->generation != generation) return absl::OkStatus();
  return objects_->Delete(bucket, ObjectClustering(key));
}

absl::Status MediaService::DeleteSupersededRow(std::string_view bucket, std::string_view key,
                                               uint64_t generation) {
  return objects_->Delete(bucket, SupersededClustering(key, generation));
}

absl::StatusOr<SupersededRow> MediaService::GetSupersededRow(std::string_view bucket,
                                                             std::string_view key,
                                                             uint64_t generation) {
  STRATA_ASSIGN_OR_RETURN(std::string v,
                          objects_->Get(bucket, SupersededClustering(key, generation)));
  return DecodeSupersededRow(v);
}

absl::StatusOr<SupersededRow> MediaService::AbandonUpload(std::string_view bucket,
                                                          std::string_view key,
                                                          uint64_t generation,
                                                          Millis started_before) {
  std::lock_guard<std::mutex> lock(KeyLock(bucket, key));
  const std::string clustering = UploadClustering(key, generation);
  absl::StatusOr<std::string> v = objects_->Get(bucket, clustering);
  if (absl::IsNotFound(v.status())) {
    return absl::NotFoundError("upload: no pending upload of '" + std::string(key) + "'");
  }
  if (!v.ok()) return v.status();
  STRATA_ASSIGN_OR_RETURN(UploadRow upload, DecodeUploadRow(*v));
  if (upload.started_at >= started_before) {
    return absl::FailedPreconditionError("upload: '" + std::string(key) + "' is still recent");
  }
  SupersededRow claimed;
  claimed.blob = upload.blob;
  claimed.storage_class = upload.storage_class;
  claimed.superseded_at = clock_->NowMillis();
  absl::StatusOr<blob::BlobInfo> info = blobs_->Stat(upload.blob);
  if (info.ok()) {
    claimed.size = info->size;
    claimed.parts = info->parts;
  } else if (!absl::IsNotFound(info.status())) {
    return info.status();
  }
  store::WriteBatch batch;
  batch.Delete(clustering);
  batch.Put(SupersededClustering(key, generation), EncodeSupersededRow(claimed));
  STRATA_RETURN_IF_ERROR(objects_->Apply(bucket, batch));
  return claimed;
}

absl::Status MediaService::MoveObjectBytes(std::string_view bucket, std::string_view key,
                                           uint64_t generation, std::string_view storage_class,
                                           std::string_view blob) {
  std::lock_guard<std::mutex> lock(KeyLock(bucket, key));
  STRATA_ASSIGN_OR_RETURN(ObjectRow row, ReadRow(bucket, key));
  if (row.generation != generation) {
    return absl::FailedPreconditionError("generation: '" + std::string(key) +
                                         "' was re-written");
  }
  // The caller deletes the old bytes next, durably: the new pointer must be durable first,
  // or a power loss in between leaves a live row pointing at deleted bytes. (Also when an
  // earlier delivery already moved it: that write may not have been synced either.)
  if (row.blob == blob) return rows_->Sync();
  // Never point a row the garbage collector may already be deleting at new bytes: they
  // would outlive it. (Both conditions only ever become true, and the GC checks them first.)
  const Millis now = clock_->NowMillis();
  if (row.GracePassed(now) || row.Expired(now)) {
    return absl::FailedPreconditionError("key: '" + std::string(key) +
                                         "' is being garbage collected");
  }
  // The orphan scan deletes bytes no row names under this lock; a row that is to name a
  // copy checks here, under the same lock, that the copy is still there.
  absl::StatusOr<blob::BlobInfo> copy = blobs_->Stat(blob);
  if (absl::IsNotFound(copy.status())) {
    return absl::AbortedError("blob: the copy " + std::string(blob) +
                              " was deleted before the row named it (collected as an orphan); "
                              "copy it again");
  }
  if (!copy.ok()) return copy.status();
  row.storage_class = std::string(storage_class);
  row.blob = std::string(blob);
  STRATA_RETURN_IF_ERROR(objects_->Put(bucket, ObjectClustering(key), EncodeObjectRow(row)));
  return rows_->Sync();
}

absl::StatusOr<bool> MediaService::ReferencedLocked(std::string_view bucket, std::string_view key,
                                                    uint64_t generation, std::string_view blob) {
  absl::StatusOr<ObjectRow> row = ReadRow(bucket, key);
  if (row.ok()) {
    if (row->blob == blob) return true;
  } else if (!absl::IsNotFound(row.status())) {
    return row.status();
  }
  absl::StatusOr<std::string> v = objects_->Get(bucket, SupersededClustering(key, generation));
  if (v.ok()) {
    STRATA_ASSIGN_OR_RETURN(SupersededRow superseded, DecodeSupersededRow(*v));
    if (superseded.blob == blob) return true;
  } else if (!absl::IsNotFound(v.status())) {
    return v.status();
  }
  v = objects_->Get(bucket, UploadClustering(key, generation));
  if (v.ok()) {
    STRATA_ASSIGN_OR_RETURN(UploadRow upload, DecodeUploadRow(*v));
    if (upload.blob == blob) return true;
  } else if (!absl::IsNotFound(v.status())) {
    return v.status();
  }
  return false;
}

absl::StatusOr<bool> MediaService::BlobReferenced(std::string_view bucket, std::string_view key,
                                                  uint64_t generation, std::string_view blob) {
  std::lock_guard<std::mutex> lock(KeyLock(bucket, key));
  return ReferencedLocked(bucket, key, generation, blob);
}

absl::StatusOr<bool> MediaService::DeleteUnreferencedBlob(std::string_view bucket,
                                                          std::string_view key, uint64_t generation,
                                                          std::string_view blob) {
  std::lock_guard<std::mutex> lock(KeyLock(bucket, key));
  STRATA_ASSIGN_OR_RETURN(bool referenced, ReferencedLocked(bucket, key, generation, blob));
  if (referenced) return false;
  STRATA_RETURN_IF_ERROR(rows_->Sync());
  STRATA_RETURN_IF_ERROR(blobs_->Delete(blob));
  return true;
}

uint64_t MediaService::NextGeneration(uint64_t at_least) {
  uint64_t candidate =
      std::max<uint64_t>(static_cast<uint64_t>(clock_->NowMillis()) * 1000, at_least);
  uint64_t last = last_generation_.load(std::memory_order_relaxed);
  for (;;) {
    uint64_t next = std::max(candidate, last + 1);
    if (last_generation_.compare_exchange_weak(last, next, std::memory_order_relaxed)) {
      return next;
    }
  }
}

size_t MediaService::KeyStripe(std::string_view bucket, std::string_view key) const {
  size_t h = std::hash<std::string_view>()(bucket) * 31 + std::hash<std::string_view>()(key);
  return h % key_locks_.size();
}

std::mutex& MediaService::KeyLock(std::string_view bucket, std::string_view key) {
  return key_locks_[KeyStripe(bucket, key)];
}

}  // namespace strata::media
