// Encodings of the lifecycle collector's rows and queue messages (specified in docs/gc.md).
// Every value starts with a format version byte (1); decoders refuse other versions and
// trailing bytes (DataLoss). Pure; thread-safe.
//
// Tables:
//   lifecycle_runs   partition = task name ("gc", "archive"), clustering u64be(run id) -> RunRecord
//   lifecycle_audit  partition = task name "/" day ("gc/2026-11-25", the UTC day the run started):
//     "a" bucket 0x00 key 0x00 u64be(generation) -> AuditEntry (one per object processed)
//     "t" bucket 0x00 reason                     -> Totals (objects and bytes of that day)
//     "r" u64be(run id)                           -> Totals (of that run)
//   An audit entry and the totals it adds to are written in one atomic batch, only if the
//   entry is absent: a redelivered work item never counts twice.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"

namespace strata::gc {

// One object (or one replaced generation's bytes) to process: a queue message.
struct WorkItem {
  // kOrphan: an upload row older than the orphan age (bytes no object row will name).
  enum class Kind : uint8_t { kObject = 0, kSuperseded = 1, kOrphan = 2 };
  Kind kind = Kind::kObject;
  std::string reason;  // "expired", "deleted", "superseded", "orphan", "age", ...
  uint64_t run_id = 0;
  std::string day;  // the run's audit day, "YYYY-MM-DD"
  std::string bucket;
  std::string key;
  uint64_t generation = 0;
  std::string blob;
  uint64_t size = 0;
  uint32_t parts = 0;
  std::string storage_class;
};

std::string EncodeWorkItem(const WorkItem& item);
absl::StatusOr<WorkItem> DecodeWorkItem(std::string_view in);

enum class RunState : uint8_t {
  kMarking = 0,     // taking the snapshot, exporting it, computing the work list
  kPublishing = 1,  // putting the work list on the queue
  kSweeping = 2,    // workers are processing the published items
  kDone = 3,
  kFailed = 4,
};
std::string_view RunStateName(RunState s);

// The orphan-blob scan of a run (task gc; docs/gc.md, "Orphan blobs").
enum class OrphanScanState : uint8_t {
  kOff = 0,  // not part of this run (another task, the scan turned off, old records)
  kRunning = 1,
  kDone = 2,
  kInterrupted = 3,  // the server stopped or restarted during it; the next run scans again
  kFailed = 4,       // listing failed (`error` says why)
};
std::string_view OrphanScanStateName(OrphanScanState s);

struct RunRecord {
  uint64_t id = 0;
  bool dry_run = false;
  Millis as_of = 0;  // eligibility is computed as of this time
  RunState state = RunState::kMarking;
  Millis started_at = 0;
  Millis marked_at = 0;    // 0 until the work list is computed
  Millis finished_at = 0;  // 0 until done or failed
  uint64_t scanned = 0;    // object rows in the snapshot
  uint64_t eligible = 0;   // items in the work list
  uint64_t eligible_bytes = 0;
  uint64_t expired = 0;         // work list items by reason (the GC's reasons; archive: "age"
  uint64_t deleted_marked = 0;  // counts in `expired`)
  uint64_t superseded = 0;
  uint64_t orphans = 0;  // abandoned uploads (encoded last, optional: older records lack it)
  uint64_t published = 0;
  uint64_t processed = 0;  // items whose effect was recorded (exact; from the audit totals)
  uint64_t processed_bytes = 0;
  uint64_t skipped = 0;  // items no longer eligible when re-checked (restored, re-written)
  uint64_t errors = 0;
  std::string day;
  std::string export_path;  // directory of this run's export files ("" = none)
  std::string error;        // last error, if any
  // The orphan-blob scan (encoded after `orphans`, optional: older records lack it). A dry
  // run counts what it would collect (found) and collects nothing.
  OrphanScanState orphan_scan = OrphanScanState::kOff;
  uint64_t blobs_listed = 0;
  uint64_t orphan_blobs = 0;  // no row names them, older than the grace
  uint64_t orphan_blob_bytes = 0;
  uint64_t orphan_blobs_collected = 0;
  uint64_t orphan_blob_bytes_collected = 0;
  uint64_t orphan_blobs_young = 0;  // no row names them, younger than the grace: left alone
};

std::string EncodeRunRecord(const RunRecord& run);
absl::StatusOr<RunRecord> DecodeRunRecord(std::string_view in);

struct AuditEntry {
  uint64_t size = 0;
  std::string reason;
  Millis time = 0;
  uint64_t run_id = 0;
};
std::string EncodeAuditEntry(const AuditEntry& e);
absl::StatusOr<AuditEntry> DecodeAuditEntry(std::string_view in);

struct Totals {
  uint64_t objects = 0;
  uint64_t bytes = 0;
};
std::string EncodeTotals(const Totals& t);
absl::StatusOr<Totals> DecodeTotals(std::string_view in);

std::string AuditClustering(std::string_view bucket, std::string_view key, uint64_t generation);
std::string DayTotalsClustering(std::string_view bucket, std::string_view reason);
std::string RunTotalsClustering(uint64_t run_id);
std::string AuditPartition(std::string_view task, std::string_view day);

// "YYYY-MM-DD" of a time (UTC), and back (midnight UTC of the day).
std::string DayOf(Millis t);
absl::StatusOr<Millis> DayStart(std::string_view day);

}  // namespace strata::gc
