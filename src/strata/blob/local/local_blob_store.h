// LocalBlobStore: the embedded BlobStore, on files in one directory (see docs/media.md for
// the layout). Implements the whole contract of blob_store.h.
//
// Layout under `root`:
//   <c1>/<c2>/.../<cN>~obj                                  a committed one-part blob (a file)
//   <c1>/<c2>/.../<cN>~obj/part-000000, part-000001, ...   a committed blob of several parts
//   ~tmp/<random>, ~tmp/<random>.d/part-...                 a blob being written
// Each '/'-separated component of a name is escaped ('%', '~', control bytes and a leading
// '.' are written %XX; an escaped component is at most 240 bytes), so '~' never appears in an
// escaped component and "~obj" / "~tmp" cannot collide with a name. Every part but the last holds
// exactly `part_bytes` bytes.
//
// Write path: the first part is written to a fresh file under ~tmp; if a second part starts,
// the parts move into a fresh directory. Commit fsyncs every part (and the directory, if any),
// renames the file or directory into place with RENAME_NOREPLACE (the commit point: a rename
// is atomic) and fsyncs the parent. A one-part blob as a plain file costs one inode, one
// fsync and one directory entry less than a directory of one part (the common small object). Delete renames the object
// directory in place from "<c>~obj" to "<c>~del" (atomic, and a same-directory rename avoids
// the filesystem-wide lock that cross-directory renames take) before removing it, so a crash
// in the middle of a delete never leaves a partial blob visible; a "~del" directory left by a
// crash is invisible and removed when the name is deleted again (the GC redelivers).
// DeleteMany renames a whole batch, then fsyncs each parent directory once. Open removes
// whatever a crashed writer left under ~tmp.
// Empty namespace directories are left in place (removing them would race with commits).
//
// Thread safety: as blob_store.h. One LocalBlobStore per root directory at a time (Open
// clears ~tmp, which would break another live store's writers).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "strata/blob/blob_store.h"

namespace strata::blob {

struct LocalBlobStoreOptions {
  // Directory holding the blobs; created (with parents) if missing. Required.
  std::string root;
  // Bytes of one part: a blob larger than this is stored as several part files. Must be
  // >= 4096. Default 64 MiB.
  uint64_t part_bytes = uint64_t{64} << 20;
  // fsync parts and directories at Commit (durable against power loss). Default true; only
  // tests that do not care about power loss turn it off.
  bool sync = true;
};

class LocalBlobStore final : public BlobStore {
 public:
  // InvalidArgument for bad options; Internal if the directory cannot be created.
  static absl::StatusOr<std::unique_ptr<LocalBlobStore>> Open(const LocalBlobStoreOptions& options);

  absl::StatusOr<std::unique_ptr<BlobWriter>> NewWriter(std::string_view name) override;
  absl::StatusOr<std::unique_ptr<BlobReader>> NewReader(std::string_view name) override;
  absl::StatusOr<BlobInfo> Stat(std::string_view name) override;
  absl::Status Delete(std::string_view name) override;
  absl::Status DeleteMany(std::span<const std::string> names) override;
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                size_t limit) override;

  absl::Status Checkpoint(const std::string& dir) override;

  const LocalBlobStoreOptions& options() const { return options_; }
  // The directory of a committed blob (for tests and operators). InvalidArgument for a bad
  // name.
  absl::StatusOr<std::string> PathOf(std::string_view name) const;

 private:
  explicit LocalBlobStore(LocalBlobStoreOptions options) : options_(std::move(options)) {}
  std::string NewTempPath();

  LocalBlobStoreOptions options_;
};

}  // namespace strata::blob
