#include "strata/blob/inline/inline_blob_store.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "strata/base/status.h"

namespace strata::blob {
namespace {

// Every inline blob is a row of this one partition, clustered by name: a prefix listing is
// one range scan. (The table exists only on the embedded deployment, where a partition is
// just a key prefix of RocksDB.)
constexpr std::string_view kPartition = "b";

// The smallest string greater than every string starting with `prefix` ("" = unbounded).
std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c != 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

class InlineBlobReader final : public BlobReader {
 public:
  explicit InlineBlobReader(std::string data) : data_(std::move(data)) {}
  uint64_t size() const override { return data_.size(); }
  absl::Status ReadAt(uint64_t offset, size_t n, std::string* out) override {
    if (offset > data_.size()) {
      return absl::OutOfRangeError("offset: " + std::to_string(offset) + " is past the end (" +
                                   std::to_string(data_.size()) + " bytes)");
    }
    out->append(std::string_view(data_).substr(static_cast<size_t>(offset), n));
    return absl::OkStatus();
  }

 private:
  const std::string data_;  // the whole blob: at most max_inline_bytes
};

}  // namespace

// Buffers until the blob outgrows max_inline_bytes, then streams into a base-store writer.
class InlineBlobWriter final : public BlobWriter {
 public:
  InlineBlobWriter(InlineBlobStore* store, std::string name)
      : store_(store), name_(std::move(name)), may_inline_(store->MayInline(name_)) {}

  absl::Status Append(std::string_view data) override {
    if (closed_) return absl::FailedPreconditionError("blob writer is closed");
    if (spilled_ == nullptr && may_inline_ &&
        buffer_.size() + data.size() <= store_->max_inline_bytes()) {
      buffer_.append(data);
      return absl::OkStatus();
    }
    if (spilled_ == nullptr) {
      absl::StatusOr<std::unique_ptr<BlobWriter>> w = store_->base_->NewWriter(name_);
      if (!w.ok()) return Fail(w.status());
      spilled_ = std::move(*w);
      if (absl::Status s = spilled_->Append(buffer_); !s.ok()) return Fail(s);
      buffer_.clear();
      buffer_.shrink_to_fit();
    }
    if (absl::Status s = spilled_->Append(data); !s.ok()) return Fail(s);
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    if (closed_) return absl::FailedPreconditionError("blob writer is closed");
    if (spilled_ == nullptr && !may_inline_) {
      // Empty (or never appended to) and never to be inline: an empty base blob.
      absl::StatusOr<std::unique_ptr<BlobWriter>> w = store_->base_->NewWriter(name_);
      if (!w.ok()) return Fail(w.status());
      spilled_ = std::move(*w);
    }
    closed_ = true;
    if (spilled_ != nullptr) return store_->CommitSpilled(name_, spilled_.get());
    return store_->CommitInline(name_, buffer_);
  }

  uint64_t size() const override { return spilled_ ? spilled_->size() : buffer_.size(); }
  uint32_t parts() const override { return spilled_ ? spilled_->parts() : 1; }

 private:
  absl::Status Fail(absl::Status s) {
    closed_ = true;
    spilled_.reset();  // aborts: the base writer removes what it wrote
    return s;
  }

  InlineBlobStore* store_;
  const std::string name_;
  const bool may_inline_;
  std::string buffer_;
  std::unique_ptr<BlobWriter> spilled_;
  bool closed_ = false;
};

absl::StatusOr<std::unique_ptr<InlineBlobStore>> InlineBlobStore::Open(
    store::RowStore* rows, BlobStore* base, InlineBlobStoreOptions options,
    MetricsRegistry* metrics) {
  std::unique_ptr<InlineBlobStore> s(new InlineBlobStore(base, std::move(options)));
  // Written once, deleted once, read by point lookups: rare compaction suits it.
  STRATA_ASSIGN_OR_RETURN(s->table_, rows->OpenTable({s->options_.table,
                                                      store::TableProfile::kCompressed}));
  if (metrics == nullptr) metrics = MetricsRegistry::Default();
  const char* help = "Blobs committed, by where their bytes went (inline rows or the base store)";
  s->inline_commits_ = metrics->GetCounter("strata_blob_commits_total", help, "store=\"inline\"");
  s->spilled_commits_ = metrics->GetCounter("strata_blob_commits_total", help, "store=\"base\"");
  return s;
}

bool InlineBlobStore::MayInline(std::string_view name) const {
  if (options_.max_inline_bytes == 0) return false;
  for (const std::string& p : options_.never_inline_prefixes) {
    if (name.substr(0, p.size()) == p) return false;
  }
  return true;
}

std::mutex& InlineBlobStore::NameLock(std::string_view name) {
  return name_locks_[std::hash<std::string_view>()(name) % name_locks_.size()];
}

absl::Status InlineBlobStore::CommitInline(std::string_view name, std::string_view data) {
  STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  std::lock_guard<std::mutex> lock(NameLock(name));
  absl::StatusOr<std::string> row = table_->Get(kPartition, name);
  if (row.ok()) return absl::AlreadyExistsError("name: a blob with this name exists");
  if (!absl::IsNotFound(row.status())) return row.status();
  // Also checks that the base store could hold the name (its own name rules).
  absl::StatusOr<BlobInfo> there = base_->Stat(name);
  if (there.ok()) return absl::AlreadyExistsError("name: a blob with this name exists");
  if (!absl::IsNotFound(there.status())) return there.status();
  STRATA_RETURN_IF_ERROR(table_->Put(kPartition, name, data));
  inline_commits_->Inc();
  return absl::OkStatus();
}

absl::Status InlineBlobStore::CommitSpilled(std::string_view name, BlobWriter* writer) {
  std::lock_guard<std::mutex> lock(NameLock(name));
  absl::StatusOr<std::string> row = table_->Get(kPartition, name);
  if (row.ok()) return absl::AlreadyExistsError("name: a blob with this name exists");
  if (!absl::IsNotFound(row.status())) return row.status();
  STRATA_RETURN_IF_ERROR(writer->Commit());
  spilled_commits_->Inc();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BlobWriter>> InlineBlobStore::NewWriter(std::string_view name) {
  STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  return std::make_unique<InlineBlobWriter>(this, std::string(name));
}

absl::StatusOr<std::unique_ptr<BlobReader>> InlineBlobStore::NewReader(std::string_view name) {
  STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  absl::StatusOr<std::string> row = table_->Get(kPartition, name);
  if (row.ok()) return std::make_unique<InlineBlobReader>(std::move(*row));
  if (!absl::IsNotFound(row.status())) return row.status();
  return base_->NewReader(name);
}

absl::StatusOr<BlobInfo> InlineBlobStore::Stat(std::string_view name) {
  STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  absl::StatusOr<std::string> row = table_->Get(kPartition, name);
  if (row.ok()) return BlobInfo{std::string(name), row->size(), 1, 0};
  if (!absl::IsNotFound(row.status())) return row.status();
  return base_->Stat(name);
}

absl::Status InlineBlobStore::Delete(std::string_view name) {
  const std::string n(name);
  return DeleteMany(std::span<const std::string>(&n, 1));
}

absl::Status InlineBlobStore::DeleteMany(std::span<const std::string> names) {
  for (const std::string& name : names) STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  for (absl::Status& s : DeleteEach(names)) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

std::vector<absl::Status> InlineBlobStore::DeleteEach(std::span<const std::string> names) {
  std::vector<absl::Status> out(names.size());
  std::shared_lock<std::shared_mutex> gate(deletes_gate_);
  // Which names are rows: one MultiGet (one read per object in flight on RADOS, where a
  // Get each was one round trip per blob of the batch).
  std::vector<store::RowKey> keys;
  std::vector<size_t> where;
  for (size_t i = 0; i < names.size(); ++i) {
    out[i] = ValidateBlobName(names[i]);
    if (!out[i].ok()) continue;
    keys.push_back({kPartition, names[i]});
    where.push_back(i);
  }
  std::vector<absl::StatusOr<std::string>> rows = table_->MultiGet(keys);
  store::WriteBatch batch;
  std::vector<size_t> in_rows;
  std::vector<std::string> elsewhere;
  std::vector<size_t> elsewhere_at;
  for (size_t j = 0; j < rows.size(); ++j) {
    const size_t i = where[j];
    if (rows[j].ok()) {
      batch.Delete(names[i]);
      in_rows.push_back(i);
    } else if (absl::IsNotFound(rows[j].status())) {
      elsewhere.push_back(names[i]);
      elsewhere_at.push_back(i);
    } else {
      out[i] = rows[j].status();
    }
  }
  if (!batch.empty()) {
    absl::Status s = table_->Apply(kPartition, batch);
    for (size_t i : in_rows) out[i] = s;
  }
  if (!elsewhere.empty()) {
    std::vector<absl::Status> got = base_->DeleteEach(elsewhere);
    for (size_t j = 0; j < got.size(); ++j) out[elsewhere_at[j]] = std::move(got[j]);
  }
  return out;
}

absl::StatusOr<ListPage> InlineBlobStore::List(std::string_view prefix, std::string_view after,
                                               size_t limit) {
  if (limit < 1 || limit > kMaxListLimit) {
    return absl::InvalidArgumentError("limit: must be 1.." + std::to_string(kMaxListLimit));
  }
  // Both sources from `after` on, at most `limit` each, merged by name.
  STRATA_ASSIGN_OR_RETURN(ListPage files, base_->List(prefix, after, limit));
  store::ScanOptions scan;
  scan.start = std::string(prefix);
  if (!after.empty()) {
    std::string past(after);
    past.push_back('\0');
    scan.start = std::max(scan.start, past);
  }
  scan.end = PrefixEnd(prefix);
  scan.limit = std::min(limit, store::kMaxPageRows);
  STRATA_ASSIGN_OR_RETURN(store::ScanPage rows, table_->Scan(kPartition, scan));
  const bool rows_more = !rows.next_cursor.empty();
  const bool files_more = !files.next_after.empty();

  ListPage page;
  size_t i = 0, j = 0;
  while (page.blobs.size() < limit && (i < rows.rows.size() || j < files.blobs.size())) {
    const bool take_row =
        j == files.blobs.size() ||
        (i < rows.rows.size() && rows.rows[i].clustering < files.blobs[j].name);
    if (take_row) {
      const store::Row& r = rows.rows[i++];
      // A row keeps no time (modified_ms 0): its value is the blob's bytes, nothing else.
      page.blobs.push_back(BlobInfo{r.clustering, r.value.size(), 1, 0});
    } else {
      page.blobs.push_back(std::move(files.blobs[j++]));
    }
  }
  // More follow if either source has entries this page did not use. A source that filled
  // its page may stop before names of the other source; continuing from the last name
  // returned picks both up again.
  if (i < rows.rows.size() || j < files.blobs.size() || rows_more || files_more) {
    // An empty page that still has more: the base store's page held only blobs deleted
    // while it was read (no row was left to take), so go on after them.
    page.next_after = page.blobs.empty() ? files.next_after : page.blobs.back().name;
  }
  return page;
}

}  // namespace strata::blob
