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

absl::StatusOr<Outcome> HardDeleteTask::Process(const WorkItem& item, const ProcessContext& ctx) {
  blob::BlobStore* blobs = media_->blobs();
  if (item.kind == WorkItem::Kind::kSuperseded) {
    // A replaced generation: no row names these bytes any more (blob names are write-once).
    STRATA_RETURN_IF_ERROR(ctx.record());
    STRATA_RETURN_IF_ERROR(blobs->Delete(item.blob));
    STRATA_CRASH_POINT("gc.sweep.after_bytes");
    STRATA_RETURN_IF_ERROR(media_->DeleteSupersededRow(item.bucket, item.key, item.generation));
    return Outcome::kDone;
  }
  // Re-check against the online row: same generation, still eligible now. Eligibility of
  // one generation only ever becomes true (restore is refused past grace or TTL, and a
  // rewrite makes a new generation), so a check that passes here holds for the steps below.
  absl::StatusOr<media::ObjectRow> row =
      media_->RowAtGeneration(item.bucket, item.key, item.generation);
  if (absl::IsNotFound(row.status())) {
    // Gone: removed by an earlier delivery of this item (the row goes last) or another run.
    STRATA_ASSIGN_OR_RETURN(bool recorded, ctx.recorded());
    if (recorded) STRATA_RETURN_IF_ERROR(blobs->Delete(item.blob));
    return recorded ? Outcome::kDone : Outcome::kSkipped;
  }
  if (absl::IsFailedPrecondition(row.status())) {
    // Re-written since the mark. If this item's deletion was decided before (a crash, then
    // the rewrite), finish it: its bytes are this generation's, now superseded.
    STRATA_ASSIGN_OR_RETURN(bool recorded, ctx.recorded());
    if (!recorded) return Outcome::kSkipped;
    STRATA_RETURN_IF_ERROR(blobs->Delete(item.blob));
    STRATA_RETURN_IF_ERROR(media_->DeleteSupersededRow(item.bucket, item.key, item.generation));
    return Outcome::kDone;
  }
  if (!row.ok()) return row.status();
  if (Eligible(*row, ctx.now).empty()) return Outcome::kSkipped;  // restored meanwhile
  STRATA_RETURN_IF_ERROR(ctx.record());
  // 1. Bytes, every part (the row may name other bytes than the mark saw if archival moved
  // them: both go).
  STRATA_RETURN_IF_ERROR(blobs->Delete(row->blob));
  if (row->blob != item.blob) STRATA_RETURN_IF_ERROR(blobs->Delete(item.blob));
  STRATA_CRASH_POINT("gc.sweep.after_bytes");
  // 2. Index entries.
  STRATA_RETURN_IF_ERROR(media_->DeleteIndexEntries(item.bucket, item.key, item.generation));
  STRATA_CRASH_POINT("gc.sweep.after_index");
  // 3. Metadata.
  STRATA_RETURN_IF_ERROR(media_->DeleteObjectRow(item.bucket, item.key, item.generation));
  STRATA_CRASH_POINT("gc.sweep.after_row");
  return Outcome::kDone;
}

std::string_view ArchiveTask::Eligible(const media::ObjectRow& row, Millis as_of) const {
  if (row.deleted_at != 0 || row.Expired(as_of)) return "";
  if (row.storage_class == to_class_) return "";
  if (row.created_at + min_age_ms_ > as_of) return "";
  return "age";
}

std::string ArchiveTask::TargetBlob(const WorkItem& item) const {
  return to_class_ + "/" + item.bucket + "/" + item.key + "@" + media::Hex64(item.generation);
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
