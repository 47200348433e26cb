// The garbage collector's orphan-blob scan (docs/gc.md, "Orphan blobs"): lists every blob of
// the blob store (BlobStore::List, so it runs on local files and S3 alike), and collects the
// ones that no row names and that are older than a grace period.
//
// Where such blobs come from: an upload writes its upload row before any byte, so a crash
// leaves a row that names its bytes and the sweep collects them (task gc, reason "orphan").
// A power loss can take that row with it -- under the default periodic WAL sync the last
// --sync-interval-ms of row writes are lost, but blob commits are fsynced -- and then nothing
// names the bytes. So can a crashed archival that copied bytes and never pointed the row at
// them, if the key was rewritten since.
//
// Why deleting them is safe against writers (each point is tested):
//  * The decision is MediaService::DeleteUnreferencedBlob: under the key's lock, no object,
//    superseded or upload row names the blob, and a row only ever comes to name a blob
//    before the blob exists (the upload row) or under that lock after checking the blob
//    exists (archival's repoint). The rows read are synced before the delete.
//  * The grace (`min_age_ms`, the task's orphan age: one day by default) is a second line:
//    a blob younger than it is never deleted, whatever the rows say. It must exceed the
//    longest window in which a writer's bytes exist before a row names them: none for an
//    upload (its upload row is written first and replaced by the object row in one batch),
//    the copy-then-repoint of archival (the time to copy one object), and whatever a future
//    writer or a second process on the same stores might do that the lock does not see.
//  * A blob's age is the smaller of what the store says (BlobInfo::modified_ms) and what its
//    name says (the generation is at least the upload's start, in microseconds): an archival
//    copy has an old generation but a fresh time; an inline blob has only its name. Either
//    one can only make a blob look younger than it is, never older.
//  * Names the media service cannot have made (ParseBlobName) are never touched.
//
// The mark's snapshot gives a prefilter (ReferencedBlobs) so that only blobs no row named at
// the mark are checked against the live rows. Thread-compatible: one scan per call.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/blob/blob_store.h"
#include "strata/media/media_service.h"
#include "strata/media/rows.h"

namespace strata::gc {

// The blob names the rows of the mark named, as 64-bit hashes (8 bytes a row). A hit means
// "named at the mark": the blob is skipped without a live check -- a hash collision
// (about n^2 / 2^65 for n rows) at worst leaves an orphan to a later run. A miss costs one
// live check. Fill from any number of instances (Merge), then Seal before Contains.
class ReferencedBlobs {
 public:
  void Add(std::string_view blob);
  void Merge(ReferencedBlobs&& other);
  void Seal();
  bool Contains(std::string_view blob) const;
  size_t size() const { return hashes_.size(); }

 private:
  std::vector<uint64_t> hashes_;
};

struct OrphanScanOptions {
  // Blobs no row names are collected once older than this, ms (the grace; see above). The
  // collector passes the task's orphan age (--gc-orphan-age-ms, default one day).
  Millis min_age_ms = 86'400'000;
  // Ages are measured at this time (the run's as_of).
  Millis as_of = 0;
  // Count, delete nothing (a dry run's forecast).
  bool dry_run = false;
  // Names per BlobStore::List call, 1..1000. Default 1000.
  size_t page_size = 1000;
};

struct OrphanScanCounts {
  uint64_t listed = 0;  // blobs listed
  uint64_t found = 0;   // no row names them and older than the grace
  uint64_t found_bytes = 0;
  uint64_t collected = 0;  // of those, deleted (always 0 in a dry run)
  uint64_t collected_bytes = 0;
  uint64_t young = 0;    // no row names them but younger than the grace: left alone
  uint64_t foreign = 0;  // names the media service does not make: left alone
  uint64_t errors = 0;   // checks or deletes that failed (found again next run)
};

// One collected orphan, for the log line and the audit hook.
struct CollectedOrphan {
  std::string blob;
  media::BlobNameParts name;
  uint64_t size = 0;
  Millis modified_ms = 0;  // the store's time (0: it keeps none)
  Millis age_ms = 0;       // as judged (OrphanAge)
};

struct OrphanScanHooks {
  // Blocks until the next unit of work may start: one per listed page and one per live
  // check (the collector passes its sweep throttle). false = stop now (the scan answers
  // Cancelled). Required.
  std::function<bool()> acquire;
  // After each orphan is deleted. The collector logs it, counts it and has its audit record
  // written (CollectorOptions::orphan_audit). May be null.
  std::function<void(const CollectedOrphan&)> collected;
  // After each page, with the counts so far. May be null.
  std::function<void(const OrphanScanCounts&)> progress;
};

// How old a blob is as of `as_of`, ms: the smaller of the age the store reports and the one
// its generation implies (see above). Negative for a time in the future.
Millis OrphanAge(const blob::BlobInfo& info, uint64_t generation, Millis as_of);

// One pass over every blob of media->blobs(). `referenced` (may be null: every blob is
// checked live) must be sealed. Errors of single blobs are counted and the pass goes on; a
// failed listing ends it with that error. Cancelled when hooks.acquire says stop.
absl::StatusOr<OrphanScanCounts> ScanOrphanBlobs(media::MediaService* media,
                                                 const ReferencedBlobs* referenced,
                                                 const OrphanScanOptions& options,
                                                 const OrphanScanHooks& hooks);

}  // namespace strata::gc
