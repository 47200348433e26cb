#include "strata/gc/lifecycle_task.h"

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
    std::span<const WorkItem> items, std::span<const ProcessContext> ctxs) {
  std::vector<absl::StatusOr<Outcome>> results;
  results.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) results.push_back(Process(items[i], ctxs[i]));
  return results;
}

absl::StatusOr<Outcome> HardDeleteTask::Process(const WorkItem& item, const ProcessContext& ctx) {
  return ProcessBatch(std::span<const WorkItem>(&item, 1),
                      std::span<const ProcessContext>(&ctx, 1))[0];
}

std::vector<absl::StatusOr<Outcome>> HardDeleteTask::ProcessBatch(
    std::span<const WorkItem> items, std::span<const ProcessContext> ctxs) {
  // What remains to do for an item once its decision is recorded.
  enum class Rest {
    kNone,            // result already final
    kBytes,           // bytes only (the row went in an earlier delivery)
    kSupersededRow,   // bytes, then the superseded row
    kObject,          // bytes, then index entries, then the object row
  };
  std::vector<absl::StatusOr<Outcome>> results(items.size(), absl::UnknownError("not run"));
  std::vector<Rest> rest(items.size(), Rest::kNone);
  std::vector<std::string> blobs;

  // 1. Re-check each item against the online row (same generation, still eligible now), and
  // record the decision before anything irreversible. Eligibility of one generation only
  // ever becomes true (restore is refused past grace or TTL, and a rewrite makes a new
  // generation), so a check that passes here holds for the steps below.
  for (size_t i = 0; i < items.size(); ++i) {
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
          absl::StatusOr<bool> recorded = ctx.recorded();
          if (!recorded.ok()) {
            results[i] = recorded.status();
          } else if (!*recorded) {
            results[i] = Outcome::kSkipped;
          } else {
            blobs.push_back(item.blob);
            rest[i] = Rest::kBytes;
          }
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
      if (absl::Status s = ctx.record(); !s.ok()) {
        results[i] = s;
        continue;
      }
      blobs.push_back(item.blob);
      rest[i] = Rest::kSupersededRow;
      continue;
    }
    absl::StatusOr<media::ObjectRow> row =
        media_->RowAtGeneration(item.bucket, item.key, item.generation);
    if (absl::IsNotFound(row.status()) || absl::IsFailedPrecondition(row.status())) {
      // Gone (removed by an earlier delivery of this item: the row goes last) or re-written
      // since the mark. If this item's deletion was decided before (a crash, then possibly
      // the rewrite), finish it: its bytes are this generation's.
      absl::StatusOr<bool> recorded = ctx.recorded();
      if (!recorded.ok()) {
        results[i] = recorded.status();
        continue;
      }
      if (!*recorded) {
        results[i] = Outcome::kSkipped;
        continue;
      }
      blobs.push_back(item.blob);
      rest[i] = absl::IsNotFound(row.status()) ? Rest::kBytes : Rest::kSupersededRow;
      continue;
    }
    if (!row.ok()) {
      results[i] = row.status();
      continue;
    }
    if (Eligible(*row, ctx.now).empty()) {  // restored meanwhile
      results[i] = Outcome::kSkipped;
      continue;
    }
    if (absl::Status s = ctx.record(); !s.ok()) {
      results[i] = s;
      continue;
    }
    // The row may name other bytes than the mark saw if archival moved them: both go.
    blobs.push_back(row->blob);
    if (row->blob != item.blob) blobs.push_back(item.blob);
    rest[i] = Rest::kObject;
  }

  // 2. Bytes, every part of every blob of the batch, durable together. First the rows the
  // decisions rest on must be durable: the mark and the re-check read the latest rows, which
  // under periodic sync may include an acknowledged write (a rewrite, a soft delete) not yet
  // on disk; deleting bytes for it and then losing it to a power cut would leave a row that
  // names deleted bytes. One fsync per batch.
  if (!blobs.empty()) {
    absl::Status s = media_->SyncRows();
    if (s.ok()) s = media_->blobs()->DeleteMany(blobs);
    if (!s.ok()) {
      for (size_t i = 0; i < items.size(); ++i) {
        if (rest[i] != Rest::kNone) results[i] = s;  // retried alone by the collector
      }
      return results;
    }
  }
  STRATA_CRASH_POINT("gc.sweep.after_bytes");

  // 3. Index entries, then 4. metadata rows.
  for (size_t i = 0; i < items.size(); ++i) {
    if (rest[i] != Rest::kObject) continue;
    absl::Status s = media_->DeleteIndexEntries(items[i].bucket, items[i].key, items[i].generation);
    if (!s.ok()) {
      results[i] = s;
      rest[i] = Rest::kNone;
    }
  }
  STRATA_CRASH_POINT("gc.sweep.after_index");
  for (size_t i = 0; i < items.size(); ++i) {
    const WorkItem& item = items[i];
    absl::Status s;
    switch (rest[i]) {
      case Rest::kNone:
        continue;
      case Rest::kBytes:
        break;
      case Rest::kSupersededRow:
        s = media_->DeleteSupersededRow(item.bucket, item.key, item.generation);
        break;
      case Rest::kObject:
        s = media_->DeleteObjectRow(item.bucket, item.key, item.generation);
        break;
    }
    if (s.ok()) {
      results[i] = Outcome::kDone;
    } else {
      results[i] = s;
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
