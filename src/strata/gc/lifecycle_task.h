// A lifecycle task: what the collector's generic mark/sweep machinery runs. A task says which
// objects are eligible (mark) and what to do with one of them (sweep). Two tasks exist:
// HardDeleteTask (the garbage collector: bytes, then index entries, then metadata) and
// ArchiveTask (moves objects past an age to a colder storage class).
//
// Contract of Process, which is what makes a sweep crash-safe on an at-least-once queue:
//  * It re-checks eligibility against the online row (under the media service's key lock)
//    before anything irreversible, at the current time; an object restored or re-written
//    since the mark is skipped.
//  * It calls `ctx.record()` once it has decided, BEFORE the first irreversible step. The
//    record (audit entry + totals) is written at most once per (bucket, key, generation), so
//    a redelivered item never counts twice; after a recorded decision every remaining step
//    is completed on redelivery, whatever happened to the row meanwhile.
//  * Every step is idempotent, so processing the same item again (after a crash at any
//    point) leaves the same final state.
// Thread-safe: Process is called by several sweep workers at once.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/gc/records.h"
#include "strata/media/media_service.h"

namespace strata::gc {

enum class Outcome {
  kDone,     // the item's effect is complete (and recorded)
  kSkipped,  // not eligible any more (restored, re-written) or already gone
};

struct ProcessContext {
  Millis now = 0;
  // Records the decision (audit entry + totals), idempotently.
  std::function<absl::Status()> record;
  // Whether the decision for this item was recorded already (a redelivery).
  std::function<absl::StatusOr<bool>()> recorded;
};

// What the collector offers a whole polled batch (ProcessBatch).
struct BatchContext {
  // Records the decisions of items[i] for every i in `indices` together, each as
  // ctxs[i].record would (written at most once per item; a redelivered item is not counted
  // again): one status per index, in order. On RADOS this is one read and one write per
  // audit partition instead of four round trips per item. Null: call ctxs[i].record.
  std::function<std::vector<absl::Status>(std::span<const size_t> indices)> record;
};

class LifecycleTask {
 public:
  virtual ~LifecycleTask() = default;
  // "gc", "archive": names the queue topic, the runs and the audit partitions.
  virtual std::string_view name() const = 0;
  // Why an object row is eligible at `as_of` ("expired", "deleted", "age", ...), or "".
  virtual std::string_view Eligible(const media::ObjectRow& row, Millis as_of) const = 0;
  // Whether superseded rows (replaced generations' bytes) are work for this task.
  virtual bool WantsSuperseded() const { return false; }
  // Upload rows older than this are abandoned uploads whose bytes are work for this task
  // (0: not this task's work).
  virtual Millis OrphanAgeMs() const { return 0; }
  // Whether the run also scans the blob store for bytes no row names and collects those
  // older than OrphanAgeMs() (orphan_scan.h).
  virtual bool ScansOrphanBlobs() const { return false; }
  virtual absl::StatusOr<Outcome> Process(const WorkItem& item, const ProcessContext& ctx) = 0;
  // Processes one polled batch: one result per item, in order, each as Process would give
  // it (same contract per item). A task may run each step for the whole batch at once --
  // HardDeleteTask re-checks the batch's rows in one MultiGet, records the decisions in one
  // write (batch.record), deletes the bytes in one BlobStore::DeleteEach and the rows in one
  // write per bucket -- as long as every item still goes through its steps in order. The
  // collector retries a failed item alone with Process. The default calls Process for each.
  virtual std::vector<absl::StatusOr<Outcome>> ProcessBatch(std::span<const WorkItem> items,
                                                            std::span<const ProcessContext> ctxs,
                                                            const BatchContext& batch);
};

// The garbage collector: hard-deletes soft-deleted objects past their grace period, expired
// objects, and the bytes of replaced generations. Steps (crash points in brackets):
//   re-check -> record -> bytes, every part [gc.sweep.after_bytes] -> index entries
//   [gc.sweep.after_index] -> object row [gc.sweep.after_row] -> (queue commit).
// An abandoned upload (an upload row older than the orphan age) is first claimed --
// MediaService::AbandonUpload turns it into a superseded row, after which the upload cannot
// commit -- and then goes the superseded way: record -> bytes -> superseded row. A crash
// between the claim and the record leaves the superseded row for the next run.
// ProcessBatch runs each step for the whole batch before the next step (the crash points
// fire once per batch): re-check every item, record the decisions (with batch.record: one
// write per audit partition), delete all their bytes in one DeleteEach (one directory sync
// per directory on local files, one DeleteObjects on S3), then the index entries, the object
// rows and the superseded rows. With `batch_rows` the re-check is one MultiGet and the rows
// go in one conditional write per bucket (applied only if no row changed since the re-check,
// else item by item).
// An item whose bytes the store failed to delete (DeleteEach reports it alone) stops there:
// its rows stay, so the collector's retries or the next run find it again.
class HardDeleteTask final : public LifecycleTask {
 public:
  static constexpr Millis kDefaultOrphanAgeMs = 86'400'000;
  // `orphan_age_ms`: how old an upload row must be to count as abandoned; longer than any
  // upload may take (default one day).
  // `batch_rows`: re-check a batch's rows with one MultiGet and remove them with one
  // conditional write per bucket (and the superseded rows with one write per bucket), for a
  // row store where every operation is a network round trip (RADOS). Off: one locked read
  // and one write per item and step, which measured better for online PUT p99 on RocksDB
  // (docs/gc.md, "Batches").
  explicit HardDeleteTask(media::MediaService* media, Millis orphan_age_ms = kDefaultOrphanAgeMs,
                          bool batch_rows = false)
      : media_(media), orphan_age_ms_(orphan_age_ms), batch_rows_(batch_rows) {}
  std::string_view name() const override { return "gc"; }
  std::string_view Eligible(const media::ObjectRow& row, Millis as_of) const override;
  bool WantsSuperseded() const override { return true; }
  Millis OrphanAgeMs() const override { return orphan_age_ms_; }
  bool ScansOrphanBlobs() const override { return true; }
  absl::StatusOr<Outcome> Process(const WorkItem& item, const ProcessContext& ctx) override;
  std::vector<absl::StatusOr<Outcome>> ProcessBatch(std::span<const WorkItem> items,
                                                    std::span<const ProcessContext> ctxs,
                                                    const BatchContext& batch) override;

 private:
  media::MediaService* media_;
  Millis orphan_age_ms_;
  bool batch_rows_;
};

// Archival: objects older than `min_age_ms` whose storage class is not `to_class` are copied
// to a blob under `to_class` (on the embedded store: another directory) and the row is
// pointed at it; then the old bytes are removed. Steps: re-check -> record -> copy
// [archive.after_copy] -> point the row [archive.after_move] -> delete the old bytes.
class ArchiveTask final : public LifecycleTask {
 public:
  ArchiveTask(media::MediaService* media, Millis min_age_ms, std::string to_class)
      : media_(media), min_age_ms_(min_age_ms), to_class_(std::move(to_class)) {}
  std::string_view name() const override { return "archive"; }
  std::string_view Eligible(const media::ObjectRow& row, Millis as_of) const override;
  absl::StatusOr<Outcome> Process(const WorkItem& item, const ProcessContext& ctx) override;

 private:
  std::string TargetBlob(const WorkItem& item) const;

  media::MediaService* media_;
  Millis min_age_ms_;
  std::string to_class_;
};

}  // namespace strata::gc
