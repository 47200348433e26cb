#include "strata/gc/lifecycle_task.h"

#include <algorithm>
#include <map>
#include <optional>

#include "strata/base/crash_point.h"
#include "strata/base/status.h"
#include "strata/media/checksums.h"

namespace strata::gc {
namespace {

constexpr size_t kCopyPiece = 1 << 20;

}  // namespace

std::string_view HardDeleteTask::Eligible(const media::ObjectRow& row, Millis as_of) const {
  if (row.GracePassed(as_of)) return "deleted";
  if (row.Expired(as_of)) return "expired";
  return "";
}

std::vector<absl::StatusOr<Outcome>> LifecycleTask::ProcessBatch(
    std::span<const WorkItem> items, std::span<const ProcessContext> ctxs,
    const BatchContext& /*batch*/) {
  std::vector<absl::StatusOr<Outcome>> results;
  results.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) results.push_back(Process(items[i], ctxs[i]));
  return results;
}

absl::StatusOr<Outcome> HardDeleteTask::Process(const WorkItem& item, const ProcessContext& ctx) {
  return ProcessBatch(std::span<const WorkItem>(&item, 1),
                      std::span<const ProcessContext>(&ctx, 1), BatchContext{})[0];
}

std::vector<absl::StatusOr<Outcome>> HardDeleteTask::ProcessBatch(
    std::span<const WorkItem> items, std::span<const ProcessContext> ctxs,
    const BatchContext& batch) {
  // What remains to do for an item once its decision is recorded.
  enum class Rest {
    kNone,            // result already final
    kBytes,           // bytes only (the row went in an earlier delivery)
    kSupersededRow,   // bytes, then the superseded row
    kObject,          // bytes, then index entries, then the object row
  };
  const size_t n = items.size();
  std::vector<absl::StatusOr<Outcome>> results(n, absl::UnknownError("not run"));
  std::vector<Rest> rest(n, Rest::kNone);
  // Per item: the blobs to delete (one, or two when archival moved the bytes), and the row
  // the re-check read (kObject items).
  std::vector<std::vector<std::string>> item_blobs(n);
  std::vector<std::optional<media::MediaService::StoredRow>> rows(n);
  // Items whose decision is to be recorded, and what they go on with once it is.
  std::vector<size_t> to_record;
  std::vector<Rest> after_record(n, Rest::kNone);

  // A redelivered item whose row is gone or re-written: only finish it if its deletion was
  // decided (recorded) before; `then` is what remains.
  auto finish_if_recorded = [&](size_t i, Rest then) {
    absl::StatusOr<bool> recorded = ctxs[i].recorded();
    if (!recorded.ok()) {
      results[i] = recorded.status();
    } else if (!*recorded) {
      results[i] = Outcome::kSkipped;
    } else {
      item_blobs[i].push_back(items[i].blob);
      rest[i] = then;
    }
  };

  // 1. Re-check each item against the online row (same generation, still eligible now), and
  // record the decision before anything irreversible. Eligibility of one generation only
  // ever becomes true (restore is refused past grace or TTL, and a rewrite makes a new
  // generation), so a check that passes here holds for the steps below.
  std::vector<media::MediaService::ObjectRef> refs;
  std::vector<size_t> ref_items;
  for (size_t i = 0; i < n; ++i) {
    const WorkItem& item = items[i];
    const ProcessContext& ctx = ctxs[i];
    if (item.kind == WorkItem::Kind::kOrphan) {
      // Claim the upload (it can no longer commit); then its bytes are a replaced
      // generation's. No upload row: committed or cleaned up -- or claimed by an earlier
      // delivery, whose superseded row is then still there (go on with it).
      absl::StatusOr<media::SupersededRow> claimed = media_->AbandonUpload(
          item.bucket, item.key, item.generation, ctx.now - orphan_age_ms_);
      if (absl::IsNotFound(claimed.status())) {
        claimed = media_->GetSupersededRow(item.bucket, item.key, item.generation);
        if (absl::IsNotFound(claimed.status())) {
          // Committed, cleaned up, or finished by an earlier delivery: only the bytes may
          // remain to delete, if this item's decision was recorded.
          finish_if_recorded(i, Rest::kBytes);
          continue;
        }
      }
      if (absl::IsFailedPrecondition(claimed.status())) {  // younger than the orphan age now
        results[i] = Outcome::kSkipped;
        continue;
      }
      if (!claimed.ok()) {
        results[i] = claimed.status();
        continue;
      }
      STRATA_CRASH_POINT("gc.sweep.orphan_claimed");
    }
    if (item.kind == WorkItem::Kind::kSuperseded || item.kind == WorkItem::Kind::kOrphan) {
      // A replaced generation: no row names these bytes any more (blob names are write-once).
      to_record.push_back(i);
      after_record[i] = Rest::kSupersededRow;
      continue;
    }
    refs.push_back({item.bucket, item.key, item.generation});
    ref_items.push_back(i);
  }
  // The object rows of the batch: one MultiGet (one round trip on RADOS, not one each), or
  // one locked read each.
  std::vector<absl::StatusOr<media::MediaService::StoredRow>> read;
  if (batch_rows_) {
    read = media_->RowsAtGenerations(refs);
  } else {
    for (const media::MediaService::ObjectRef& ref : refs) {
      absl::StatusOr<media::ObjectRow> row =
          media_->RowAtGeneration(ref.bucket, ref.key, ref.generation);
      if (row.ok()) {
        read.push_back(media::MediaService::StoredRow{std::move(*row), ""});
      } else {
        read.push_back(row.status());
      }
    }
  }
  for (size_t j = 0; j < ref_items.size(); ++j) {
    const size_t i = ref_items[j];
    absl::StatusOr<media::MediaService::StoredRow>& row = read[j];
    if (absl::IsNotFound(row.status()) || absl::IsFailedPrecondition(row.status())) {
      // Gone (removed by an earlier delivery of this item: the row goes last) or re-written
      // since the mark. If this item's deletion was decided before (a crash, then possibly
      // the rewrite), finish it: its bytes are this generation's.
      finish_if_recorded(i, absl::IsNotFound(row.status()) ? Rest::kBytes : Rest::kSupersededRow);
      continue;
    }
    if (!row.ok()) {
      results[i] = row.status();
      continue;
    }
    if (Eligible(row->row, ctxs[i].now).empty()) {  // restored meanwhile
      results[i] = Outcome::kSkipped;
      continue;
    }
    rows[i] = std::move(*row);
    to_record.push_back(i);
    after_record[i] = Rest::kObject;
  }
  std::sort(to_record.begin(), to_record.end());
  std::vector<absl::Status> recorded;
  if (batch.record) {
    recorded = batch.record(to_record);
  } else {
    for (size_t i : to_record) recorded.push_back(ctxs[i].record());
  }
  for (size_t j = 0; j < to_record.size(); ++j) {
    const size_t i = to_record[j];
    if (!recorded[j].ok()) {
      results[i] = recorded[j];
      rows[i].reset();
      continue;
    }
    rest[i] = after_record[i];
    if (rest[i] == Rest::kObject) {
      // The row may name other bytes than the mark saw if archival moved them: both go.
      item_blobs[i].push_back(rows[i]->row.blob);
      if (rows[i]->row.blob != items[i].blob) item_blobs[i].push_back(items[i].blob);
    } else {
      item_blobs[i].push_back(items[i].blob);
    }
  }

  // 2. Bytes, every part of every blob of the batch, durable together. First the rows the
  // decisions rest on must be durable: the mark and the re-check read the latest rows, which
  // under periodic sync may include an acknowledged write (a rewrite, a soft delete) not yet
  // on disk; deleting bytes for it and then losing it to a power cut would leave a row that
  // names deleted bytes. One fsync per batch. A blob the store failed to delete stops its
  // item here (its rows stay for a retry or the next run); the others go on.
  std::vector<std::string> blobs;
  std::vector<size_t> blob_items;
  for (size_t i = 0; i < n; ++i) {
    if (rest[i] == Rest::kNone) continue;
    for (std::string& b : item_blobs[i]) {
      blobs.push_back(std::move(b));
      blob_items.push_back(i);
    }
  }
  if (!blobs.empty()) {
    absl::Status synced = media_->SyncRows();
    std::vector<absl::Status> deleted =
        synced.ok() ? media_->blobs()->DeleteEach(blobs)
                    : std::vector<absl::Status>(blobs.size(), synced);
    for (size_t j = 0; j < blobs.size(); ++j) {
      const size_t i = blob_items[j];
      if (deleted[j].ok() || rest[i] == Rest::kNone) continue;
      results[i] = deleted[j];  // retried alone by the collector
      rest[i] = Rest::kNone;
    }
  }
  STRATA_CRASH_POINT("gc.sweep.after_bytes");

  // 3. Index entries and object rows: one conditional write per bucket, applied only if no
  // row changed since the re-check; if one did (a rewrite), item by item. Within the batch,
  // the rows of each bucket in one write.
  std::map<std::string_view, std::vector<size_t>> by_bucket;
  for (size_t i = 0; i < n; ++i) {
    if (rest[i] == Rest::kObject) by_bucket[items[i].bucket].push_back(i);
  }
  for (const auto& [bucket, members] : by_bucket) {
    std::vector<std::string_view> keys;
    std::vector<const media::MediaService::StoredRow*> stored;
    for (size_t i : members) {
      keys.push_back(items[i].key);
      stored.push_back(&*rows[i]);
    }
    absl::Status s = batch_rows_
                         ? media_->DeleteObjectRowsIfUnchanged(bucket, keys, stored)
                         : absl::FailedPreconditionError("one item at a time");
    if (s.ok()) {
      for (size_t i : members) {
        results[i] = Outcome::kDone;
        rest[i] = Rest::kNone;
      }
      continue;
    }
    if (!absl::IsFailedPrecondition(s)) {
      for (size_t i : members) {
        results[i] = s;  // retried alone by the collector
        rest[i] = Rest::kNone;
      }
      continue;
    }
    // A row changed: the one-item steps, which compare generations under the key's lock.
    for (size_t i : members) {
      absl::Status e =
          media_->DeleteIndexEntries(items[i].bucket, items[i].key, items[i].generation);
      if (!e.ok()) {
        results[i] = e;
        rest[i] = Rest::kNone;
      }
    }
  }
  STRATA_CRASH_POINT("gc.sweep.after_index");

  // 4. What remains: object rows of the item-by-item path, superseded rows (one write per
  // bucket), nothing for bytes-only items.
  std::map<std::string_view, std::vector<size_t>> superseded;
  for (size_t i = 0; i < n; ++i) {
    const WorkItem& item = items[i];
    switch (rest[i]) {
      case Rest::kNone:
        continue;
      case Rest::kBytes:
        results[i] = Outcome::kDone;
        break;
      case Rest::kSupersededRow:
        superseded[item.bucket].push_back(i);
        break;
      case Rest::kObject: {
        absl::Status s = media_->DeleteObjectRow(item.bucket, item.key, item.generation);
        if (s.ok()) {
          results[i] = Outcome::kDone;
        } else {
          results[i] = s;
        }
        break;
      }
    }
  }
  for (const auto& [bucket, members] : superseded) {
    std::vector<std::pair<std::string_view, uint64_t>> gens;
    for (size_t i : members) gens.emplace_back(items[i].key, items[i].generation);
    absl::Status s;
    if (batch_rows_) s = media_->DeleteSupersededRows(bucket, gens);
    for (size_t i : members) {
      if (!batch_rows_) s = media_->DeleteSupersededRow(bucket, items[i].key, items[i].generation);
      if (s.ok()) {
        results[i] = Outcome::kDone;
      } else {
        results[i] = s;
      }
    }
  }
  STRATA_CRASH_POINT("gc.sweep.after_row");
  return results;
}

std::string_view ArchiveTask::Eligible(const media::ObjectRow& row, Millis as_of) const {
  if (row.deleted_at != 0 || row.Expired(as_of)) return "";
  if (row.storage_class == to_class_) return "";
  if (row.created_at + min_age_ms_ > as_of) return "";
  return "age";
}

std::string ArchiveTask::TargetBlob(const WorkItem& item) const {
  return media::BlobName(to_class_, item.bucket, item.key, item.generation);
}

absl::StatusOr<Outcome> ArchiveTask::Process(const WorkItem& item, const ProcessContext& ctx) {
  blob::BlobStore* blobs = media_->blobs();
  const std::string target = TargetBlob(item);
  absl::StatusOr<media::ObjectRow> row =
      media_->RowAtGeneration(item.bucket, item.key, item.generation);
  if (absl::IsNotFound(row.status()) || absl::IsFailedPrecondition(row.status())) {
    return Outcome::kSkipped;
  }
  if (!row.ok()) return row.status();
  if (row->blob == target) {
    // Moved by an earlier delivery; finish by removing the old bytes.
    STRATA_RETURN_IF_ERROR(blobs->Delete(item.blob));
    return Outcome::kDone;
  }
  if (Eligible(*row, ctx.now).empty()) return Outcome::kSkipped;
  STRATA_RETURN_IF_ERROR(ctx.record());
  // 1. Copy (skipped if a previous delivery committed the copy: names are write-once).
  absl::StatusOr<blob::BlobInfo> copied = blobs->Stat(target);
  if (absl::IsNotFound(copied.status())) {
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<blob::BlobReader> reader, blobs->NewReader(row->blob));
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<blob::BlobWriter> writer, blobs->NewWriter(target));
    std::string piece;
    for (uint64_t off = 0; off < reader->size(); off += kCopyPiece) {
      piece.clear();
      STRATA_RETURN_IF_ERROR(reader->ReadAt(off, kCopyPiece, &piece));
      STRATA_RETURN_IF_ERROR(writer->Append(piece));
    }
    absl::Status c = writer->Commit();
    if (!c.ok() && !absl::IsAlreadyExists(c)) return c;
  } else if (!copied.ok()) {
    return copied.status();
  }
  STRATA_CRASH_POINT("archive.after_copy");
  // 2. Point the row at the copy (under the key's lock, same generation, not being GC'd).
  absl::Status moved =
      media_->MoveObjectBytes(item.bucket, item.key, item.generation, to_class_, target);
  if (absl::IsFailedPrecondition(moved) || absl::IsNotFound(moved)) {
    STRATA_RETURN_IF_ERROR(blobs->Delete(target));  // re-written or collected meanwhile
    return Outcome::kSkipped;
  }
  STRATA_RETURN_IF_ERROR(moved);
  STRATA_CRASH_POINT("archive.after_move");
  // 3. The old bytes (a reader that opened them keeps its copy).
  STRATA_RETURN_IF_ERROR(blobs->Delete(row->blob));
  return Outcome::kDone;
}

}  // namespace strata::gc
