// A BlobStore that keeps small blobs as rows of a row-store table and passes the rest to
// another BlobStore (on the embedded deployment: the local files).
//
// Why: a small object on local files costs a file, an inode, a directory entry and two
// fsyncs to write (each one a file-system journal commit), and a rename plus a directory
// fsync to delete. At a million 1 KiB objects that is what a PUT waits on while the garbage
// collector sweeps, and what bounds the sweep (docs/benchmark-log.md). As a row, a small blob is
// one write-ahead-log append to write and one tombstone to delete. Object stores do the same
// (MinIO keeps objects below 128 KiB inside their metadata file).
//
// How: a writer buffers up to `max_inline_bytes`; a blob that ends within it is committed as
// one row (clustering key = its name, in one partition); one that grows past it is streamed
// into a writer of the base store from then on (so at most `max_inline_bytes` is ever held in
// memory). Reads, Stat, Delete and List look at both; a name lives in exactly one of them.
//
// Inline blobs have no modified time (BlobInfo::modified_ms is 0 for them): the row is the
// bytes alone, and the service that names them knows when it wrote them (the media service
// puts the upload's start time in the name, as its generation).
//
// The BlobStore contract holds, with one difference in durability: an inline blob is as
// durable as the row store's writes (kill -9: always; power loss: per the row store's sync
// policy, `--sync batch` syncs each commit). The object rows that name blobs are in the same
// row store with the same policy, so an object is no less durable than before.
//
// Thread-safe. Write-once names across both stores are enforced by a striped lock around
// each commit (this process is the only writer of its embedded stores).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "strata/base/metrics.h"
#include "strata/blob/blob_store.h"
#include "strata/store/row_store.h"

namespace strata::blob {

struct InlineBlobStoreOptions {
  // Blobs of at most this many bytes are rows. Must not exceed the base store's part size
  // (an inline blob is one part). 0: no new blob is inline, but those written before (with
  // a larger limit) are still read, listed and deleted. Default 16 KiB.
  uint64_t max_inline_bytes = 16 * 1024;
  // The table holding inline blobs ("blob_inline" by default).
  std::string table = "blob_inline";
  // Names starting with one of these always go to the base store, whatever their size (the
  // server lists its archive class: archived bytes leave the row store for their own
  // directory, as archival means to).
  std::vector<std::string> never_inline_prefixes;
};

class InlineBlobStore final : public BlobStore {
 public:
  // `rows` and `base` must outlive the store; `metrics` may be null.
  static absl::StatusOr<std::unique_ptr<InlineBlobStore>> Open(store::RowStore* rows,
                                                               BlobStore* base,
                                                               InlineBlobStoreOptions options,
                                                               MetricsRegistry* metrics = nullptr);

  absl::StatusOr<std::unique_ptr<BlobWriter>> NewWriter(std::string_view name) override;
  absl::StatusOr<std::unique_ptr<BlobReader>> NewReader(std::string_view name) override;
  absl::StatusOr<BlobInfo> Stat(std::string_view name) override;
  absl::Status Delete(std::string_view name) override;
  // Inline blobs go in one row-store batch; the others in one DeleteMany of the base store.
  absl::Status DeleteMany(std::span<const std::string> names) override;
  // Which names are rows is one MultiGet; those go in one row-store batch (one status for
  // all of them), the others in one DeleteEach of the base store (a status each).
  std::vector<absl::Status> DeleteEach(std::span<const std::string> names) override;
  // The base store's checkpoint (inline blobs are rows: the row store's checkpoint has them).
  absl::Status Checkpoint(const std::string& dir) override { return base_->Checkpoint(dir); }
  // Holds back every Delete/DeleteMany until the returned lock is released: a backup takes
  // it around the row store's checkpoint and this store's, so no bytes a checkpointed row
  // names are deleted before they are linked.
  std::unique_lock<std::shared_mutex> BlockDeletes() {
    return std::unique_lock<std::shared_mutex>(deletes_gate_);
  }
  absl::StatusOr<ListPage> List(std::string_view prefix, std::string_view after,
                                size_t limit) override;

  store::Table* table() const { return table_; }
  // Whether a blob of this name may be kept inline (see never_inline_prefixes).
  bool MayInline(std::string_view name) const;
  uint64_t max_inline_bytes() const { return options_.max_inline_bytes; }

 private:
  friend class InlineBlobWriter;
  InlineBlobStore(BlobStore* base, InlineBlobStoreOptions options)
      : base_(base), options_(std::move(options)) {}

  std::mutex& NameLock(std::string_view name);
  // Commits a buffered blob as a row (AlreadyExists if the name exists in either store).
  absl::Status CommitInline(std::string_view name, std::string_view data);
  // Commits a spilled writer of the base store, under the same lock and check.
  absl::Status CommitSpilled(std::string_view name, BlobWriter* writer);

  BlobStore* base_;
  InlineBlobStoreOptions options_;
  store::Table* table_ = nullptr;
  std::array<std::mutex, 64> name_locks_;
  std::shared_mutex deletes_gate_;  // shared by deletes, exclusive for a backup
  Counter* inline_commits_ = nullptr;
  Counter* spilled_commits_ = nullptr;
};

}  // namespace strata::blob
