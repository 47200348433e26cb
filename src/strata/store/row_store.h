// The row-store interface: the Cassandra data model in small.
//
// A RowStore holds named tables. A table holds partitions (identified by a byte string); a
// partition holds rows sorted by clustering key (byte-wise, unsigned). Every operation names
// one partition, and atomicity holds only within a partition, so the interface can be
// implemented on Ceph RADOS omap (one object per partition) as well as on RocksDB.
//
// Contracts common to all methods:
//  * Keys and values are arbitrary bytes. Partition keys are at most 1024 bytes, clustering
//    keys at most 4096 bytes; longer keys give InvalidArgument.
//  * Rows may carry an expiry time (ms since epoch, from the store's Clock). A row whose
//    expiry is <= now is invisible to every read, and is removed physically later (RocksDB:
//    by a compaction filter; RADOS: by reads that see it and a background reaper).
//  * A scan page holds at most kMaxPageRows rows (the RADOS omap page limit).
//  * Errors are values: NotFound for an absent row, InvalidArgument for bad arguments,
//    Unavailable / Internal for backend failures. Nothing throws.
//  * Every method is thread-safe. Table pointers are owned by the RowStore and stay valid
//    until it is destroyed.
//  * A call that returned OK is durable against a crash of the process (kill -9). Durability
//    against power loss depends on the backend's sync policy (see RowStore::Sync).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"

namespace strata {

class MetricsRegistry;

}  // namespace strata

namespace strata::store {

inline constexpr size_t kMaxPageRows = 1024;
inline constexpr size_t kMaxPartitionKeySize = 1024;
inline constexpr size_t kMaxClusteringKeySize = 4096;

// How a table is used; backends tune storage per profile.
enum class TableProfile {
  kLive,        // small rows, frequent writes and point reads: frequent compaction
  kCompressed,  // large, already-compressed blobs, rarely rewritten: rare compaction
  kIndex,       // small rows, read by scans
  // Documents of about a kilobyte written in bulk, with small secondary-index rows beside
  // them in the same partition; read by point lookups, index scans and listings (assets).
  kDocument,
};

struct TableOptions {
  std::string name;  // [a-z0-9_]+, unique within the store
  TableProfile profile = TableProfile::kLive;
  // Whether one write usually touches many small partitions of the table at once (a row or
  // two for each member of an ingest batch). A backend that keeps a partition per object
  // (RADOS) then keeps many partitions in each of a few objects, so a batch costs one
  // operation per object instead of one per partition. Default false: the profile decides
  // (kLive tables are grouped that way already).
  bool spread_writes = false;
  // Whether rows are only ever added, in key order within each partition, and removed by
  // range deletes, never overwritten (a queue's messages). A backend that settles tables
  // while idle then does not take the table's growth for old versions of rows to drop.
  // A hint for the process's lifetime, not stored; default false.
  bool append_only = false;
};

struct Row {
  std::string clustering;
  std::string value;
};

// A row of a full-table scan, which crosses partitions.
struct TableRow {
  std::string partition;
  std::string clustering;
  std::string value;
};

struct ScanOptions {
  // Clustering key bounds: rows with start <= key < end. An empty `end` means "to the end of
  // the partition".
  std::string start;
  std::string end;
  bool reverse = false;  // descending clustering order
  size_t limit = kMaxPageRows;  // 1..kMaxPageRows
  // Opaque cursor from a previous page's next_cursor; empty starts at the beginning.
  std::string cursor;
};

struct ScanPage {
  std::vector<Row> rows;
  // Empty when the scan is complete; otherwise pass it as ScanOptions::cursor.
  std::string next_cursor;
};

struct TableScanPage {
  std::vector<TableRow> rows;
  std::string next_cursor;  // empty when the range is complete
};

// A contiguous range of a table's partitions, for splitting a full-table scan into pieces
// that can run in parallel. The ranges of one SplitRanges call cover the table exactly once.
struct KeyRange {
  std::string begin;  // opaque, backend-specific
  std::string end;    // opaque; empty = unbounded
};

// What a read saw of one row, for a cheaper condition on it (WriteBatch::Expect): opaque,
// backend-specific, valid only in the process and store that gave it; 0 = none.
using ReadStamp = uint64_t;

// Mutations of one partition, applied atomically and in order.
class WriteBatch {
 public:
  enum class OpType { kPut, kPutIfNewer, kDelete, kDeleteRange };
  struct Op {
    OpType type;
    std::string key;    // clustering key, or range start
    std::string value;  // value, or range end for kDeleteRange (empty = to partition end)
    Millis expire_at = 0;  // 0 = never
    uint64_t version = 0;  // kPutIfNewer only
  };

  void Put(std::string clustering, std::string value, Millis expire_at = 0) {
    ops_.push_back({OpType::kPut, std::move(clustering), std::move(value), expire_at, 0});
  }
  // Last-writer-wins by version: after any set of PutIfNewer calls on one row, in any order,
  // the row holds the value with the highest version (ties: any one of the tied values).
  // Rows written this way must only be changed by PutIfNewer or deleted. A conditional
  // write: RocksDB uses a merge operator; RADOS an omap_cmp on the stored version in the
  // same operation (read-then-conditional-write when that guess fails), where an expired
  // row counts as absent.
  void PutIfNewer(std::string clustering, uint64_t version, std::string value,
                  Millis expire_at = 0) {
    ops_.push_back(
        {OpType::kPutIfNewer, std::move(clustering), std::move(value), expire_at, version});
  }
  void Delete(std::string clustering) {
    ops_.push_back({OpType::kDelete, std::move(clustering), "", 0, 0});
  }
  // Deletes rows with start <= key < end; empty end = to the end of the partition.
  void DeleteRange(std::string start, std::string end) {
    ops_.push_back({OpType::kDeleteRange, std::move(start), std::move(end), 0, 0});
  }

  // A condition of the whole batch (compare-and-set): the batch is applied only if, at the
  // moment it is applied, row `clustering` of the batch's partition holds exactly `value`
  // (std::nullopt: the row is absent or expired). If any condition fails, nothing of the
  // batch is applied and Apply answers FailedPrecondition ("condition: ..."); in
  // RowStore::Write a failed condition of any batch applies none of them. The check is
  // atomic with the write against every other write to the same rows, conditional or not
  // (RocksDB: checked under the store's write lock; RADOS: omap_cmp in the same op).
  // Conditions on a row cost one point read each at write time.
  // In RowStore::Write, "none of them" holds fully on backends that write all batches
  // atomically (RocksDB, memory). On RADOS the conditional batches are applied first, one
  // by one, and the others only after all of them succeeded: a failed condition of the first
  // conditional batch applies nothing, but a failure of a later one may leave the earlier
  // conditional batches applied. Put conditions on one batch per call where that matters.
  // `stamp`: what a read of this row through ReadOptions::stamps returned alongside
  // `value` (which must then be exactly that read's answer: its value, or nullopt for
  // NotFound). It lets a backend skip the point read at write time when it can tell that
  // nothing wrote the row since (RocksDB: no write of the store touched the key after the
  // read's sequence number). The condition means the same with or without one; 0 = none.
  void Expect(std::string clustering, std::optional<std::string> value, ReadStamp stamp = 0) {
    conditions_.push_back({std::move(clustering), std::move(value), stamp});
  }
  struct Condition {
    std::string key;
    std::optional<std::string> value;  // nullopt = absent
    ReadStamp stamp = 0;
  };

  const std::vector<Op>& ops() const { return ops_; }
  const std::vector<Condition>& conditions() const { return conditions_; }
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }

 private:
  std::vector<Op> ops_;
  std::vector<Condition> conditions_;
};

// A consistent point-in-time view of every table of a store, for export (e.g. the GC's
// mark phase). Reads through a snapshot see exactly the writes that completed before
// NewSnapshot returned. Release it promptly: it pins old data.
// An optional capability: RowStore::NewSnapshot answers Unimplemented on a backend that has
// none (RADOS: no snapshot spans objects), and callers must then read the latest data.
class Snapshot {
 public:
  virtual ~Snapshot() = default;
};

struct ReadOptions {
  const Snapshot* snapshot = nullptr;  // nullptr = latest
  // Get and MultiGet: when set (to an empty vector), a backend that gives read stamps
  // fills it with one per key, entry i for key i (0: none for that row); one that does not
  // leaves it empty. For WriteBatch::Expect (StampAt reads it).
  std::vector<ReadStamp>* stamps = nullptr;
};

// Entry i of a read's stamps, or 0 (none) when the backend gave none.
inline ReadStamp StampAt(const std::vector<ReadStamp>& stamps, size_t i) {
  return i < stamps.size() ? stamps[i] : 0;
}

// A row's address, for Table::MultiGet.
struct RowKey {
  std::string_view partition;
  std::string_view clustering;
};

struct TableStats {
  uint64_t approximate_rows = 0;
  uint64_t disk_bytes = 0;  // bytes the table occupies on disk, after compression
};

class Table {
 public:
  virtual ~Table() = default;
  virtual const std::string& name() const = 0;

  // NotFound if the row is absent or expired.
  virtual absl::StatusOr<std::string> Get(std::string_view partition,
                                          std::string_view clustering,
                                          const ReadOptions& options = {}) = 0;
  // Reads many rows, of any partitions, at once: result i is keys[i]'s value, NotFound
  // (absent or expired), or an error of that row's read. Where a Get is a network round
  // trip (RADOS) the backend sends them together (one operation per object, all in flight);
  // the default reads them one by one, which is what a local store does anyway.
  virtual std::vector<absl::StatusOr<std::string>> MultiGet(std::span<const RowKey> keys,
                                                            const ReadOptions& options = {}) {
    std::vector<absl::StatusOr<std::string>> out;
    out.reserve(keys.size());
    ReadOptions each = options;
    each.stamps = nullptr;  // none from this default
    for (const RowKey& k : keys) out.push_back(Get(k.partition, k.clustering, each));
    return out;
  }
  virtual absl::Status Put(std::string_view partition, std::string_view clustering,
                           std::string_view value, Millis expire_at = 0) = 0;
  // Deleting an absent row is OK.
  virtual absl::Status Delete(std::string_view partition, std::string_view clustering) = 0;
  // Deletes rows with start <= key < end (empty end = to the partition's end). An empty
  // start and end delete the whole partition.
  virtual absl::Status DeleteRange(std::string_view partition, std::string_view start,
                                   std::string_view end) = 0;
  // Applies every op of the batch atomically: a crash leaves all or none.
  virtual absl::Status Apply(std::string_view partition, const WriteBatch& batch) = 0;

  // Rows of one partition within the bounds, in clustering order (or reverse).
  virtual absl::StatusOr<ScanPage> Scan(std::string_view partition, const ScanOptions& options,
                                        const ReadOptions& read_options = {}) = 0;

  // Splits the whole table into at most `n` (>= 1) ranges for a parallel full-table scan.
  virtual absl::StatusOr<std::vector<KeyRange>> SplitRanges(int n) = 0;
  // One page (at most `limit` rows) of a full-table scan of `range`. Each partition's rows
  // come together (contiguous, in one range only) and in clustering order; the order of the
  // partitions is the backend's: byte order of the partition key on RocksDB and the memory
  // store, hash order on RADOS (object listing). Callers must not rely on partition order
  // (the GC's mark, table reports, roll-up and rotation sweeps, asset recovery do not).
  // Without a snapshot, a partition that exists for the whole scan is seen exactly once;
  // one created or deleted meanwhile may or may not be.
  virtual absl::StatusOr<TableScanPage> ScanRange(const KeyRange& range, size_t limit,
                                                  std::string_view cursor,
                                                  const ReadOptions& options = {}) = 0;

  virtual absl::StatusOr<TableStats> Stats() = 0;
};

// A backend's state as the server and the GC throttle see it, whatever the backend: a
// snapshot, cheap to take (no I/O beyond what the backend already tracks).
struct BackendHealth {
  // False when the backend cannot serve correctly (RocksDB: background errors; a remote
  // backend: its cluster unreachable). /healthz answers 503 with `detail`.
  bool healthy = true;
  // Backpressure, 0..1: 0 = idle, 1 = the backend is delaying or refusing writes now
  // (RocksDB: a write stall). Background work (the GC sweep) backs off at 1.
  double load = 0;
  // Bytes of background work the backend owes (RocksDB: pending compaction); 0 where the
  // backend has no such notion. The GC sweep backs off above its limit.
  uint64_t pending_background_bytes = 0;
  // Bytes on this machine, for the admin table report (0 where not applicable): the
  // write-ahead log, the tables' live files, and what is buffered in memory.
  uint64_t log_bytes = 0;
  uint64_t table_bytes = 0;
  uint64_t memory_bytes = 0;
  std::string detail;  // why not healthy, or "" when healthy
};

// One partition's batch, for RowStore::Write.
struct PartitionWrite {
  Table* table;
  std::string partition;
  WriteBatch batch;
};

class RowStore {
 public:
  virtual ~RowStore() = default;

  // Opens (creating if needed) a table. Returns the same pointer for the same name.
  // Opening an existing table with a different profile keeps the stored profile's tuning
  // only until the next restart; callers should keep profiles stable.
  virtual absl::StatusOr<Table*> OpenTable(const TableOptions& options) = 0;

  // Applies many partitions' batches. Each batch is atomic; across batches there is no
  // atomicity (a failure may leave some applied), so callers retry idempotent batches.
  // Backends apply them together where they can, which is what makes ingest fast.
  virtual absl::Status Write(std::span<const PartitionWrite> writes) = 0;

  // Applies the batches in the order given: each batch is atomic, and when one fails none
  // after it is applied (those before it may be). For a commit that must land before the
  // deletes it makes safe (a roll-up's metadata row, then the live rows it now holds), in
  // one call. The default applies them one by one; a backend that writes them atomically
  // together (RocksDB, the memory store) overrides it with one write.
  virtual absl::Status WriteInOrder(std::span<const PartitionWrite> writes) {
    for (const PartitionWrite& w : writes) {
      if (w.table == nullptr) return absl::InvalidArgumentError("table: must not be null");
      if (absl::Status s = w.table->Apply(w.partition, w.batch); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // A consistent snapshot of every table (see Snapshot). Unimplemented on a backend
  // without one (RADOS); callers then read the latest data and say so.
  virtual absl::StatusOr<std::unique_ptr<Snapshot>> NewSnapshot() = 0;

  // Makes every write acknowledged so far durable against power loss (fsync).
  virtual absl::Status Sync() = 0;

  // Optional capabilities, so the server and the GC work with any backend. The defaults
  // describe a backend with nothing to report: always healthy, no load signal, no
  // backend-specific metrics, no manual compaction.
  //
  // Health and load (see BackendHealth). Thread-safe; called every GC control step and by
  // /healthz, so it must be cheap.
  virtual BackendHealth CheckHealth() const { return {}; }
  // Registers the backend's own gauges (e.g. strata_rocksdb_*) in `metrics`. Called once;
  // the gauges read the store until it is destroyed, so the registry must not be scraped
  // after that (the server stops HTTP first).
  virtual void ExportMetrics(MetricsRegistry* /*metrics*/) {}
  // Whether Compact does anything: the admin endpoint answers 501 when not.
  virtual bool SupportsCompaction() const { return false; }
  // Rewrites every table so expired and deleted rows leave the disk (slow; operators).
  virtual absl::Status Compact() {
    return absl::UnimplementedError("compact: this row store backend has no manual compaction");
  }
  // Writes a consistent, openable copy of every table as of one instant into `dir` (which
  // must not exist), while serving. For `strata backup`; Unimplemented where the backend has
  // its own backups (Ceph: pool snapshots, rbd/rados export).
  virtual absl::Status Checkpoint(const std::string& dir) {
    return absl::UnimplementedError("backup: this row store backend has no checkpoint (use the "
                                    "cluster's own backup tools)");
  }
};

// Argument checks of the contract above, shared by every backend so that they agree on what
// is InvalidArgument and on the messages (each names the offending field).
inline absl::Status ValidateTableName(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError("table name: must be 1..128 characters of [a-z0-9_]");
  }
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return absl::InvalidArgumentError("table name: must be 1..128 characters of [a-z0-9_]");
    }
  }
  return absl::OkStatus();
}

inline absl::Status ValidatePartitionKey(std::string_view partition) {
  if (partition.size() > kMaxPartitionKeySize) {
    return absl::InvalidArgumentError("partition: longer than 1024 bytes");
  }
  return absl::OkStatus();
}

// `field` names the argument in the error message ("clustering", "start", "end", ...).
inline absl::Status ValidateClusteringKey(std::string_view clustering,
                                          std::string_view field = "clustering") {
  if (clustering.size() > kMaxClusteringKeySize) {
    return absl::InvalidArgumentError(std::string(field) + ": longer than 4096 bytes");
  }
  return absl::OkStatus();
}

inline absl::Status ValidatePageLimit(size_t limit) {
  if (limit == 0 || limit > kMaxPageRows) {
    return absl::InvalidArgumentError("limit: must be 1..1024");
  }
  return absl::OkStatus();
}

inline absl::Status ValidateScanOptions(const ScanOptions& options) {
  if (absl::Status s = ValidateClusteringKey(options.start, "start"); !s.ok()) return s;
  if (absl::Status s = ValidateClusteringKey(options.end, "end"); !s.ok()) return s;
  return ValidatePageLimit(options.limit);
}

inline absl::Status ValidateWriteBatch(const WriteBatch& batch) {
  for (const WriteBatch::Condition& c : batch.conditions()) {
    if (absl::Status s = ValidateClusteringKey(c.key, "condition"); !s.ok()) return s;
  }
  for (const WriteBatch::Op& op : batch.ops()) {
    if (absl::Status s = ValidateClusteringKey(op.key); !s.ok()) return s;
    if (op.type == WriteBatch::OpType::kDeleteRange) {
      if (absl::Status s = ValidateClusteringKey(op.value, "end"); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::store
