// The blob-store interface: named, immutable byte objects ("blobs"), written once by a
// streaming writer, read by byte ranges, listed by name prefix, deleted whole.
//
// Contracts common to every implementation (local files, rows + files, S3):
//  * Names are 1..1024 bytes of '/'-separated components; no component is empty, "." or
//    "..", and no byte is NUL or '\\'. Other names give InvalidArgument naming "name".
//  * Names are write-once: committing a name that already exists gives AlreadyExists and
//    leaves the existing blob unchanged. Callers that rewrite an object use a new name (the
//    media service puts the object's generation in it), so a reader or the garbage collector
//    never sees an object change under it.
//  * A blob larger than the store's part size is stored as several parts; that is invisible
//    to readers (ReadAt crosses parts) except through BlobInfo::parts.
//  * Atomic visibility: until BlobWriter::Commit returns OK, no read or list sees the blob;
//    after it, every read and list does. A crash before Commit returns leaves nothing
//    visible (implementations clean up their temporary data on open). After Commit returns
//    OK the bytes are durable against a crash of the process and of the machine.
//  * Delete removes every part; deleting an absent blob is OK (idempotent, for the GC).
//  * Errors are values: NotFound for an absent blob, OutOfRange for a read past the end,
//    InvalidArgument for bad arguments, Internal / Unavailable for I/O failures.
//  * Every method of BlobStore is thread-safe. A BlobWriter or BlobReader is used by one
//    thread at a time. A reader opened before a Delete keeps reading the old bytes, for as
//    long as the store keeps them: local files until the reader is closed; S3 on a versioned
//    bucket until the noncurrent version expires (a lifecycle rule, days). S3 on an
//    unversioned bucket is the documented exception: such a reader never sees other bytes
//    but gets NotFound after the Delete (s3/s3_blob_store.h). Services must not rely on more
//    than that: the media service deletes bytes only through the garbage collector, a grace
//    period after the soft delete that ended every read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strata::blob {

inline constexpr size_t kMaxNameBytes = 1024;
inline constexpr size_t kMaxListLimit = 1000;

// Streams one blob in. Destroying a writer without a successful Commit aborts it: whatever
// was written is removed and nothing becomes visible.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  // Appends bytes. The writer holds at most one part's worth of buffers, never the blob.
  virtual absl::Status Append(std::string_view data) = 0;
  // Makes the blob durable and visible under its name. At most once; after a failure the
  // writer is aborted. AlreadyExists if the name was committed meanwhile.
  virtual absl::Status Commit() = 0;
  // Bytes appended so far.
  virtual uint64_t size() const = 0;
  // Parts the blob has so far (1 for an empty blob).
  virtual uint32_t parts() const = 0;
};

// Reads one committed blob; sees the bytes as they were when it was opened.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual uint64_t size() const = 0;
  // Appends min(n, size() - offset) bytes starting at `offset` to *out. OutOfRange if
  // offset > size() (offset == size() reads nothing).
  virtual absl::Status ReadAt(uint64_t offset, size_t n, std::string* out) = 0;
};

struct BlobInfo {
  std::string name;
  uint64_t size = 0;
  uint32_t parts = 0;
  // When the store last wrote the blob's bytes, ms since the Unix epoch by the store's own
  // clock (local files: the mtime of the file or of the directory of parts; S3: LastModified),
  // or 0 where the store keeps no such time (the inline store's rows). Filled by List and
  // Stat. A lower bound of the commit time and an upper bound of the first byte's, nothing
  // more: S3 may date a multipart blob from its first part, a local blob of several parts
  // dates from when its last part began. The garbage collector's orphan scan reads it as
  // "how long ago the writer of this blob was at work" (docs/gc.md, "Orphan blobs").
  int64_t modified_ms = 0;
};

struct ListPage {
  std::vector<BlobInfo> blobs;  // sorted by name (bytewise)
  // When non-empty, more names follow: pass it as `after` to continue.
  std::string next_after;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // Starts writing `name`. InvalidArgument for a bad name. The name's existence is checked
  // at Commit (AlreadyExists), not here.
  virtual absl::StatusOr<std::unique_ptr<BlobWriter>> NewWriter(std::string_view name) = 0;
  // NotFound if no blob has that name.
  virtual absl::StatusOr<std::unique_ptr<BlobReader>> NewReader(std::string_view name) = 0;
  // Size and parts of a blob; NotFound if absent.
  virtual absl::StatusOr<BlobInfo> Stat(std::string_view name) = 0;
  // Removes every part of the blob. OK if absent.
  virtual absl::Status Delete(std::string_view name) = 0;
  // Removes several blobs, each as Delete does (all-or-nothing per blob, OK if absent).
  // Every name is validated before anything is removed. When it returns OK all of them are
  // gone durably; on an error some may be gone and others not. Stores make the batch cheap
  // (the local store syncs each directory once, not once per blob; S3 has DeleteObjects):
  // it is the garbage collector's sweep path. The default calls Delete for each name.
  virtual absl::Status DeleteMany(std::span<const std::string> names);
  // DeleteMany with one status per name, in the order given: OK when that blob is gone
  // durably (or was absent), else why not -- that blob is left as it was or gone, and a
  // later call may remove it. A failure of one name does not stop the others (an invalid
  // name gets InvalidArgument, the rest are still deleted), so a caller can keep, for the
  // next attempt, exactly the work whose bytes remain: the garbage collector's sweep does.
  // S3 reports a DeleteObjects failure per key (AccessDenied, InternalError, ...); the
  // default calls DeleteMany on the valid names and, if that fails, Delete on each of them.
  virtual std::vector<absl::Status> DeleteEach(std::span<const std::string> names);
  // Blobs whose name starts with `prefix` and sorts after `after` (exclusive; "" = from the
  // start), at most `limit` (1..kMaxListLimit) of them, with size, parts and modified time.
  // Paging through a whole store this way sees every blob that exists for the whole walk
  // exactly once; one committed or deleted meanwhile may or may not be seen.
  virtual absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                        size_t limit) = 0;

  // Copies every committed blob into `dir` (a new directory) for `strata backup`: the local
  // store hard-links its files (blobs are write-once, so a link is a frozen copy). The caller
  // keeps deletions out while it runs. Unimplemented where the service has its own backups
  // (S3: bucket versioning and replication).
  virtual absl::Status Checkpoint(const std::string& dir) {
    return absl::UnimplementedError("backup: this blob store has no checkpoint (use the "
                                    "object store's own backup tools)");
  }

  // Convenience: reads [offset, offset + n) of a blob in one call.
  absl::StatusOr<std::string> Read(std::string_view name, uint64_t offset, size_t n);
  // Convenience: writes a whole blob from memory (tests, small blobs).
  absl::Status Put(std::string_view name, std::string_view data);
};

// The name rules of the contract above; every implementation calls it.
absl::Status ValidateBlobName(std::string_view name);

}  // namespace strata::blob
