#include "strata/store/rocksdb/rocksdb_row_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <dirent.h>
#include <sys/statvfs.h>
#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdarg>
#include <cstdio>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <utility>

#include "strata/base/coding.h"
#include "strata/base/metrics.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"
#include "strata/store/rocksdb/crc32c.h"

namespace strata::store {
namespace rocksdb_internal {

// Microseconds on the steady clock (the running WAL sync's start and age).
int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The number of a write-ahead log file from its name (RocksDB names them NNNNNN.log beside
// the SSTs), or nullopt for any other file.
std::optional<uint64_t> WalFileNumber(std::string_view name) {
  if (name.size() <= 4 || name.substr(name.size() - 4) != ".log") return std::nullopt;
  const std::string_view digits = name.substr(0, name.size() - 4);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t number = 0;
  for (char c : digits) number = number * 10 + static_cast<uint64_t>(c - '0');
  return number;
}

// How often the maintenance thread checks whether a full disk has room again
// (Core::TryResume).
constexpr std::chrono::seconds kResumeCheckInterval{2};
// How often the maintenance thread looks at the document tables' blob garbage
// (Core::SwitchBlobGc).
constexpr std::chrono::seconds kBlobGcCheckInterval{5};
// How often the maintenance thread compares the live write-ahead log with
// wal_backstop_bytes, and the least time between two of its flushes (one flush of every
// table takes a few seconds in a bulk load).
constexpr std::chrono::seconds kWalBackstopCheckInterval{1};
constexpr std::chrono::seconds kWalBackstopMinGap{10};

constexpr const char* kSyncFailedMessage =
    "write: a WAL fsync failed, so recent writes may not be durable; writes are refused "
    "until the server is restarted (check the disk, then restart)";

// ---------------------------------------------------------------------------------------
// Status mapping: the one place where rocksdb::Status becomes absl::Status.

absl::Status ToStatus(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return absl::NotFoundError(message);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() ||
      s.IsShutdownInProgress()) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

// ---------------------------------------------------------------------------------------
// Key encoding (docs/row-store.md, "Keys"):
//
//   key = partition length (2 bytes, big-endian) | partition | clustering
//
// All rows of a partition share the prefix `length | partition`, so they are contiguous and
// ordered by clustering key (bytewise). Two different prefixes are never prefixes of one
// another (equal lengths and different bytes, or different length fields), so no partition's
// key range overlaps another's even when one partition key is a prefix of another.

constexpr size_t kPartitionLengthBytes = 2;

void AppendPartitionPrefix(std::string* out, std::string_view partition) {
  out->push_back(static_cast<char>((partition.size() >> 8) & 0xff));
  out->push_back(static_cast<char>(partition.size() & 0xff));
  out->append(partition);
}

std::string PartitionPrefix(std::string_view partition) {
  std::string prefix;
  prefix.reserve(kPartitionLengthBytes + partition.size());
  AppendPartitionPrefix(&prefix, partition);
  return prefix;
}

// The smallest key greater than every key that starts with `prefix`. Never empty for a
// partition prefix: its first byte is at most 0x04.
std::string PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<uint8_t>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
  return prefix;
}

bool DecodeKey(std::string_view key, std::string_view* partition, std::string_view* clustering) {
  if (key.size() < kPartitionLengthBytes) return false;
  const size_t length =
      (size_t{static_cast<uint8_t>(key[0])} << 8) | static_cast<uint8_t>(key[1]);
  if (key.size() < kPartitionLengthBytes + length) return false;
  *partition = key.substr(kPartitionLengthBytes, length);
  *clustering = key.substr(kPartitionLengthBytes + length);
  return true;
}

// ---------------------------------------------------------------------------------------
// Value encoding (docs/row-store.md, "Values"):
//
//   value = format (1 byte, 0x01) | flags (1 byte) | [expire_at: 8 bytes BE, if flags & 1]
//           | [version: 8 bytes BE, if flags & 2] | payload
//
// PutIfNewer rows carry a version; rows with an expiry carry expire_at (ms since epoch).

constexpr char kValueFormatV1 = '\x01';
constexpr uint8_t kFlagExpiry = 0x01;
constexpr uint8_t kFlagVersion = 0x02;
constexpr uint8_t kKnownFlags = kFlagExpiry | kFlagVersion;

void EncodeValue(std::string* out, std::string_view payload, Millis expire_at, bool has_version,
                 uint64_t version) {
  out->clear();
  const uint8_t flags = (expire_at != 0 ? kFlagExpiry : 0) | (has_version ? kFlagVersion : 0);
  out->push_back(kValueFormatV1);
  out->push_back(static_cast<char>(flags));
  if (flags & kFlagExpiry) coding::PutFixed64BE(out, static_cast<uint64_t>(expire_at));
  if (flags & kFlagVersion) coding::PutFixed64BE(out, version);
  out->append(payload);
}

struct DecodedValue {
  Millis expire_at = 0;  // 0 = never
  uint64_t version = 0;  // 0 for rows without a version
  std::string_view payload;
};

bool DecodeValue(std::string_view in, DecodedValue* out) {
  if (in.size() < 2 || in[0] != kValueFormatV1) return false;
  const uint8_t flags = static_cast<uint8_t>(in[1]);
  if ((flags & ~kKnownFlags) != 0) return false;
  in.remove_prefix(2);
  out->expire_at = 0;
  out->version = 0;
  if (flags & kFlagExpiry) {
    uint64_t expire_at;
    if (!coding::GetFixed64BE(&in, &expire_at)) return false;
    out->expire_at = static_cast<Millis>(expire_at);
  }
  if ((flags & kFlagVersion) && !coding::GetFixed64BE(&in, &out->version)) return false;
  out->payload = in;
  return true;
}

bool Expired(const DecodedValue& value, Millis now) {
  return value.expire_at != 0 && value.expire_at <= now;
}

std::string_view View(const rocksdb::Slice& slice) { return slice.ToStringView(); }

// Cursors: a format byte, then the last returned clustering key (Scan) or the last returned
// raw key (ScanRange). The byte keeps the cursor of an empty key non-empty.
constexpr char kCursorFormat = '\x01';

std::string MakeCursor(std::string_view last) {
  std::string cursor;
  cursor.reserve(1 + last.size());
  cursor.push_back(kCursorFormat);
  cursor.append(last);
  return cursor;
}

absl::StatusOr<std::string_view> ParseCursor(std::string_view cursor) {
  if (cursor.empty() || cursor[0] != kCursorFormat ||
      cursor.size() > 1 + kPartitionLengthBytes + kMaxPartitionKeySize + kMaxClusteringKeySize) {
    return absl::InvalidArgumentError("cursor: not a cursor of this store");
  }
  return cursor.substr(1);
}

// ---------------------------------------------------------------------------------------
// PutIfNewer: a merge operator that keeps the operand (or base value) with the highest
// version; ties go to the later write. A Delete or DeleteRange ends the merge chain, so it
// resets the row. Operands are complete encoded values, so the result is always one of them.

class MaxVersionMergeOperator final : public rocksdb::MergeOperator {
 public:
  const char* Name() const override { return "strata.MaxVersion"; }

  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    const rocksdb::Slice* best = nullptr;
    uint64_t best_version = 0;
    DecodedValue decoded;
    if (in.existing_value != nullptr) {
      if (!DecodeValue(View(*in.existing_value), &decoded)) return false;
      best = in.existing_value;
      best_version = decoded.version;
    }
    for (const rocksdb::Slice& operand : in.operand_list) {
      if (!DecodeValue(View(operand), &decoded)) return false;
      if (best == nullptr || decoded.version >= best_version) {
        best = &operand;
        best_version = decoded.version;
      }
    }
    if (best == nullptr) return false;
    out->existing_operand = *best;
    return true;
  }

  bool PartialMergeMulti(const rocksdb::Slice& /*key*/,
                         const std::deque<rocksdb::Slice>& operands, std::string* new_value,
                         rocksdb::Logger* /*logger*/) const override {
    const rocksdb::Slice* best = nullptr;
    uint64_t best_version = 0;
    DecodedValue decoded;
    for (const rocksdb::Slice& operand : operands) {
      if (!DecodeValue(View(operand), &decoded)) return false;
      if (best == nullptr || decoded.version >= best_version) {
        best = &operand;
        best_version = decoded.version;
      }
    }
    if (best == nullptr) return false;
    new_value->assign(best->data(), best->size());
    return true;
  }
};

// Drops expired rows during compaction (reads check expiry too: compaction comes late).
// Merge operands are kept: dropping an expired high version early could let a lower one win.
// RocksDB's own log goes to Strata's log (stderr, logfmt) instead of a LOG file in the data
// directory: one stream for operators, and nothing to append to a full disk -- Debian's
// assertion-enabled RocksDB aborts when its LOG writer, having failed once with ENOSPC, is
// written again. RocksDB's chatty INFO lines are logged at debug level.
class StrataRocksLogger final : public rocksdb::Logger {
 public:
  StrataRocksLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    char buf[2048];
    vsnprintf(buf, sizeof(buf), format, ap);
    switch (level) {
      case rocksdb::InfoLogLevel::DEBUG_LEVEL:
      case rocksdb::InfoLogLevel::INFO_LEVEL:
      case rocksdb::InfoLogLevel::HEADER_LEVEL:
        STRATA_LOG_DEBUG("rocksdb", "detail", std::string_view(buf));
        break;
      case rocksdb::InfoLogLevel::WARN_LEVEL:
        STRATA_LOG_WARN("rocksdb", "detail", std::string_view(buf));
        break;
      default:
        STRATA_LOG_ERROR("rocksdb", "detail", std::string_view(buf));
        break;
    }
  }
};

class ExpiryCompactionFilter final : public rocksdb::CompactionFilter {
 public:
  explicit ExpiryCompactionFilter(const Clock* clock) : clock_(clock) {}
  const char* Name() const override { return "strata.Expiry"; }

  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    DecodedValue decoded;
    if (!DecodeValue(View(value), &decoded)) return false;  // keep what we do not understand
    return Expired(decoded, clock_->NowMillis());
  }

  // A value in a blob file (a kDocument table's large rows) is kept without being read:
  // deciding on its expiry would read every blob in every compaction. Reads still hide it
  // once expired (RocksRowStoreOptions::document_blob_min_bytes).
  Decision FilterBlobByKey(int /*level*/, const rocksdb::Slice& /*key*/,
                           std::string* /*new_value*/,
                           std::string* /*skip_until*/) const override {
    return Decision::kKeep;
  }

 private:
  const Clock* clock_;
};

// ---------------------------------------------------------------------------------------
// Column family names: "<table>.<profile>", so reopening knows each table's tuning before
// the column families are opened. Table names are [a-z0-9_]+, so the '.' is unambiguous.

const char* ProfileName(TableProfile profile) {
  switch (profile) {
    case TableProfile::kLive:
      return "live";
    case TableProfile::kCompressed:
      return "compressed";
    case TableProfile::kIndex:
      return "index";
    case TableProfile::kDocument:
      return "document";
  }
  return "live";
}

bool ParseColumnFamilyName(std::string_view cf_name, std::string* table, TableProfile* profile) {
  const size_t dot = cf_name.rfind('.');
  if (dot == std::string_view::npos) return false;
  std::string_view name = cf_name.substr(0, dot);
  std::string_view suffix = cf_name.substr(dot + 1);
  if (!ValidateTableName(name).ok()) return false;
  if (suffix == "live") {
    *profile = TableProfile::kLive;
  } else if (suffix == "compressed") {
    *profile = TableProfile::kCompressed;
  } else if (suffix == "index") {
    *profile = TableProfile::kIndex;
  } else if (suffix == "document") {
    *profile = TableProfile::kDocument;
  } else {
    return false;
  }
  table->assign(name);
  return true;
}

// Marks a database as Strata's and records its format (docs/row-store.md).
constexpr char kFormatKey[] = "strata.row_store.format";
constexpr char kFormatVersion[] = "1";

class Core;

class RocksTable final : public Table {
 public:
  RocksTable(Core* core, std::string name, TableProfile profile, rocksdb::ColumnFamilyHandle* cf)
      : core_(core), name_(std::move(name)), profile_(profile), cf_(cf) {}

  const std::string& name() const override { return name_; }
  TableProfile profile() const { return profile_; }
  rocksdb::ColumnFamilyHandle* cf() const { return cf_; }
  const Core* core() const { return core_; }
  // SST bytes right after the table was last compacted whole while idle (at open: its size
  // then, so a restart alone does not rewrite every table).
  uint64_t settled_bytes() const { return settled_bytes_.load(std::memory_order_relaxed); }
  // TableOptions::append_only, as given by the latest OpenTable of this process.
  bool append_only() const { return append_only_.load(std::memory_order_relaxed); }
  void set_append_only(bool a) { append_only_.store(a, std::memory_order_relaxed); }
  // Whether the table's blob garbage collection is on now (kDocument tables; SwitchBlobGc).
  bool blob_gc_on() const { return blob_gc_on_.load(std::memory_order_relaxed); }
  void set_blob_gc_on(bool on) { blob_gc_on_.store(on, std::memory_order_relaxed); }
  void set_settled_bytes(uint64_t b) {
    settled_bytes_.store(b, std::memory_order_relaxed);
    range_deleted_bytes_.store(0, std::memory_order_relaxed);
  }
  // Approximate bytes (files and memtables) of the ranges deleted since then: a range
  // tombstone is one deletion in the files' properties however many rows it covers, so the
  // idle settle counts these instead (an export's marks, an erased member, queue trims).
  uint64_t range_deleted_bytes() const {
    return range_deleted_bytes_.load(std::memory_order_relaxed);
  }
  // Adds what the batch's range deletes cover to range_deleted_bytes, after the batch was
  // committed to this table. An estimate from the key ranges of files and memtables; no row
  // is read. Batches without a range delete cost a pass over their ops.
  void NoteRangeDeletes(std::string_view partition, const WriteBatch& batch) const;

  absl::StatusOr<std::string> Get(std::string_view partition, std::string_view clustering,
                                  const ReadOptions& options) override;
  std::vector<absl::StatusOr<std::string>> MultiGet(std::span<const RowKey> keys,
                                                    const ReadOptions& options) override;
  absl::Status Put(std::string_view partition, std::string_view clustering,
                   std::string_view value, Millis expire_at) override;
  absl::Status Delete(std::string_view partition, std::string_view clustering) override;
  absl::Status DeleteRange(std::string_view partition, std::string_view start,
                           std::string_view end) override;
  absl::Status Apply(std::string_view partition, const WriteBatch& batch) override;
  absl::StatusOr<ScanPage> Scan(std::string_view partition, const ScanOptions& options,
                                const ReadOptions& read_options) override;
  absl::StatusOr<std::vector<KeyRange>> SplitRanges(int n) override;
  absl::StatusOr<TableScanPage> ScanRange(const KeyRange& range, size_t limit,
                                          std::string_view cursor,
                                          const ReadOptions& options) override;
  absl::StatusOr<TableStats> Stats() override;

 private:
  Core* const core_;
  const std::string name_;
  const TableProfile profile_;
  rocksdb::ColumnFamilyHandle* const cf_;  // owned by Core
  std::atomic<uint64_t> settled_bytes_{0};
  std::atomic<bool> blob_gc_on_{false};
  std::atomic<bool> append_only_{false};
  mutable std::atomic<uint64_t> range_deleted_bytes_{0};  // see NoteRangeDeletes
  std::atomic<bool> stamps_on_{false};  // Core::EnableStamps done for this table
  // The sequence a stamped read takes before it reads (Core::ReadStampFor), once the store
  // notes this table's written keys.
  rocksdb::SequenceNumber StampSequence();
};

class RocksSnapshot final : public Snapshot {
 public:
  RocksSnapshot(const Core* core, rocksdb::DB* db, const rocksdb::Snapshot* snapshot)
      : core_(core), db_(db), snapshot_(snapshot) {}
  ~RocksSnapshot() override { db_->ReleaseSnapshot(snapshot_); }
  const Core* core() const { return core_; }
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  const Core* core_;
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

// Reusable buffers for encoding one write batch without per-op allocations.
struct EncodeScratch {
  std::string prefix;
  std::string key;
  std::string value;
  std::string end;
  std::vector<uint32_t> order;  // the ops' order in the RocksDB batch (AppendToBatch)
};

// Everything behind RocksRowStore.
class Core {
 public:
  explicit Core(const RocksRowStoreOptions& options)
      : options_(options),
        clock_(options.clock != nullptr ? options.clock : SystemClock::Default()),
        cache_(rocksdb::NewLRUCache(options.block_cache_bytes, options.block_cache_shard_bits)),
        merge_operator_(std::make_shared<MaxVersionMergeOperator>()),
        compaction_filter_(std::make_unique<ExpiryCompactionFilter>(clock_)) {
    for (rocksdb::CompressionType type : rocksdb::GetSupportedCompressions()) {
      if (type == rocksdb::kLZ4Compression) lz4_supported_ = true;
      if (type == rocksdb::kZSTD) zstd_supported_ = true;
    }
    write_options_.sync = options.sync_policy == SyncPolicy::kPerBatch;
  }

  ~Core() { Close(); }

  absl::Status Open();
  void Close();

  Millis Now() const { return clock_->NowMillis(); }
  rocksdb::DB* db() const { return db_.get(); }

  absl::StatusOr<Table*> OpenTable(const TableOptions& options);
  std::vector<RocksTableInfo> ListTables() const;
  RocksTable* FindTable(std::string_view name) const;

  // Appends one partition's validated batch to `out`.
  absl::Status AppendToBatch(rocksdb::ColumnFamilyHandle* cf, std::string_view partition,
                             const WriteBatch& batch, rocksdb::WriteBatch* out,
                             EncodeScratch* scratch) const;
  // A WriteBatch condition resolved to a column family and a full key.
  struct Check {
    rocksdb::ColumnFamilyHandle* cf;
    std::string key;
    const std::optional<std::string>* value;
    ReadStamp stamp = 0;  // the caller's read of `value` (ReadStampFor), 0 = none
  };
  // The stamp of a row read at sequence `seq` (taken before the read, no snapshot): the
  // sequence itself when the answer cannot change without a write (the row was absent, or
  // present with no expiry), else 0 (an expiring row can change by the clock alone).
  static ReadStamp ReadStampFor(rocksdb::SequenceNumber seq, bool found, Millis expire_at) {
    return found && expire_at != 0 ? 0 : seq;
  }
  // From the call on, the column family's written keys are noted (NoteWritten), so its
  // reads can be stamped: writes of tables nobody stamps skip the hashing. Under write_mu_:
  // no write is under way, so every write with a later sequence notes its keys.
  void EnableStamps(uint32_t cf_id) {
    std::lock_guard<std::mutex> write_lock(write_mu_);
    if (cf_id >= stamped_cf_.size()) stamped_cf_.resize(cf_id + 1, 0);
    stamped_cf_[cf_id] = 1;
  }
  // Writes `batch` under the write lock, after checking `checks` under the same lock (so a
  // check and the write are atomic against every other write of the store).
  absl::Status Commit(rocksdb::WriteBatch* batch, const std::vector<Check>& checks = {});
  absl::Status Write(std::span<const PartitionWrite> writes);
  static void AddChecks(rocksdb::ColumnFamilyHandle* cf, std::string_view partition,
                        const WriteBatch& batch, std::vector<Check>* checks);

  // Points `ro` at the snapshot of `options`, if any.
  absl::Status UseSnapshot(const ReadOptions& options, rocksdb::ReadOptions* ro) const;
  absl::StatusOr<std::unique_ptr<Snapshot>> NewSnapshot();
  absl::Status Sync();
  // Makes every write acknowledged before the call durable without RocksDB's SyncWAL:
  // fdatasync of the WAL files through descriptors of its own (every acknowledged write is
  // already in them: manual_wal_flush is off), and of the directory once a new WAL file
  // appears. It takes no lock that writers take, so writes go on during the fsync, and it
  // never touches RocksDB's log writer, which aborts in Debian's assertion-enabled build
  // when synced after a failed append (see write_mu_).
  absl::Status SyncWalFiles();
  // SyncWalFiles; after a failure, counts it and refuses writes until a restart.
  absl::Status SyncWalOrRefuseWrites();
  RocksHealth Health() const;
  absl::Status CompactAll();
  absl::Status CheckpointTo(const std::string& dir);

  rocksdb::ColumnFamilyOptions ColumnFamilyOptionsFor(TableProfile profile) const;
  // The default column family, every table's and every foreign one's.
  std::vector<rocksdb::ColumnFamilyHandle*> AllHandles() const;
  // Turns each kDocument table's blob garbage collection on when its blob files hold at
  // least document_blob_gc_min_garbage of garbage, off below half of it (the maintenance
  // thread, every kBlobGcCheckInterval).
  void SwitchBlobGc();

 private:
  rocksdb::DBOptions MakeDBOptions() const;
  // The periodic WAL fsync (SyncPolicy::kPeriodic; returns at once otherwise).
  void SyncLoop();
  // Idle flushes and compactions, the WAL backstop, blob GC switching, resuming writes.
  void MaintenanceLoop();
  // A failed write that TryResume may clear: the disk was full, and nothing else failed.
  bool ResumableFailure() const {
    return no_space_.load(std::memory_order_acquire) &&
           !other_write_failure_.load(std::memory_order_acquire);
  }
  // If the disk has room again after RocksDB found it full, resumes writes (no_space_).
  void TryResume();
  // Flushes every table when the WAL holds enough to be worth it (idle_flush_ms).
  void MaybeFlushIdle();
  // Flushes `handles` and waits, up to `limit`, until none has an immutable memtable left:
  // DB::Flush's own wait can last for ever in RocksDB 7.8 when a flush request of the table
  // is lost (see wal_backstop_bytes), so it polls instead, asking again every 2 s (which also
  // flushes a stranded memtable). False on an error, after `limit`, or when closing.
  bool FlushPolling(const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                    std::chrono::milliseconds limit);
  // Flushes every table with unflushed rows when the live WAL passes the backstop
  // (wal_backstop_bytes), and says which tables held them. Returns whether it flushed.
  bool MaybeFlushOversizedWal();
  // The backstop in bytes (wal_backstop_bytes resolved); 0 = off.
  uint64_t WalBackstopBytes() const;
  // Bytes and number of the live WAL files; false if RocksDB could not list them.
  bool LiveWal(uint64_t* bytes, uint64_t* files) const;
  // The same, and the oldest file's number, from a listing of the directory (NNNNNN.log
  // files), without RocksDB.
  bool WalFilesOnDisk(uint64_t* bytes, uint64_t* files, uint64_t* oldest) const;
  // Whether a table of this profile has blob garbage collection on from the start.
  bool BlobGcAlwaysOn(TableProfile profile) const {
    return profile == TableProfile::kDocument && options_.document_blob_min_bytes > 0 &&
           options_.document_blob_gc_min_garbage == 0;
  }
  // Whether an idle table holding sst_bytes has enough dead bytes to be compacted whole.
  bool WorthSettling(RocksTable* table, uint64_t sst_bytes) const;
  static constexpr uint64_t kMinSettleBytes = uint64_t{64} << 10;

  const RocksRowStoreOptions options_;
  Clock* const clock_;
  friend class NoSpaceListener;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::MergeOperator> merge_operator_;
  std::unique_ptr<ExpiryCompactionFilter> compaction_filter_;  // outlives db_
  bool lz4_supported_ = false;
  bool zstd_supported_ = false;
  rocksdb::WriteOptions write_options_;

  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;       // metadata only
  std::vector<rocksdb::ColumnFamilyHandle*> foreign_cfs_;  // CFs that are not Strata tables

  mutable std::mutex tables_mu_;
  std::map<std::string, std::unique_ptr<RocksTable>, std::less<>> tables_;

  // SyncWalFiles' state: WAL files numbered below wal_sync_floor_ were complete and synced
  // at an earlier call (RocksDB appends only to the newest); descriptors by file number;
  // the newest file number whose directory entry has been synced.
  std::mutex wal_sync_mu_;
  uint64_t wal_sync_floor_ = 0;
  uint64_t wal_dir_synced_through_ = 0;
  std::map<uint64_t, int> wal_fds_;
  std::atomic<uint64_t> wal_syncs_{0};
  std::atomic<int64_t> wal_sync_started_us_{0};  // steady clock; 0 while no sync runs

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool stop_sync_ = false;  // guarded by sync_mu_
  std::thread sync_thread_;
  std::thread maintenance_thread_;  // MaintenanceLoop
  std::atomic<uint64_t> unsynced_writes_{0};
  std::atomic<uint64_t> wal_sync_failures_{0};
  std::atomic<uint64_t> writes_{0};        // successful writes since Open (idle detection)
  std::atomic<uint64_t> idle_flushes_{0};
  std::atomic<uint64_t> idle_compactions_{0};
  std::atomic<uint64_t> wal_backstop_flushes_{0};
  // Set when a write failed (e.g. ENOSPC while appending to the WAL). RocksDB then refuses
  // further writes, and syncing its failed WAL writer trips an assertion in Debian's build
  // (WritableFileWriter::AssertFalseAndGetStatusForPrevError), so no WAL sync is attempted
  // after it; what was acknowledged before the failure is already in the OS page cache.
  std::atomic<bool> write_failed_{false};
  // Set when RocksDB reported that the disk is full (a failed write, flush or compaction:
  // NoSpaceListener and Commit). While set, the maintenance thread checks the free space
  // every kResumeCheckInterval and, once there is room, calls DB::Resume (TryResume): RocksDB
  // flushes every memtable to new files and starts a new WAL, and writes are accepted again
  // without a restart. Any other failed write (write_failed_ with other_write_failure_)
  // still needs a restart: a disk that returns EIO is not retried.
  std::atomic<bool> no_space_{false};
  std::atomic<bool> other_write_failure_{false};
  std::atomic<uint64_t> resumes_{0};             // successful DB::Resume calls since Open
  std::atomic<uint64_t> background_errors_resolved_{0};  // the counter at the last resume
  std::chrono::steady_clock::time_point last_backstop_warning_{};  // the maintenance thread's
  std::chrono::steady_clock::time_point last_resume_attempt_{};  // the maintenance thread's
  std::chrono::steady_clock::time_point last_resume_warning_{};  // the maintenance thread's
  // Set when a periodic WAL fsync failed: writes are refused from then on (see SyncLoop).
  std::atomic<bool> sync_failed_{false};
  // Serialises DB::Write calls. After one writer's WAL append fails, a concurrent writer
  // that already passed RocksDB's error check appends to the failed WAL writer, which
  // aborts the process in Debian's assertion-enabled build; one writer at a time means the
  // next writer sees write_failed_ first. (RocksDB batches concurrent writers into one
  // group anyway, so little is lost.)
  std::mutex write_mu_;
  // What lets a condition with a read stamp skip its point read (Commit): for each of
  // kWrittenSlots hash slots of (column family, key), the sequence number of the last write
  // of the store to a key in that slot; per column family, its last range delete's; and
  // range_written_seq_, a floor for every key (a failed write, a resume). A stamp S still
  // holds if none of them is above S: no write touched the key after the read at S.
  // A slot shared by several keys only sends a check back to its point read. Guarded by
  // write_mu_; opened_seq_ (the sequence at Open) bounds stamps from an earlier Open.
  static constexpr size_t kWrittenSlots = size_t{1} << 16;
  std::vector<rocksdb::SequenceNumber> written_seq_ =
      std::vector<rocksdb::SequenceNumber>(kWrittenSlots, 0);
  std::vector<rocksdb::SequenceNumber> range_deleted_seq_;  // by column family id
  std::vector<char> stamped_cf_;  // by column family id: 1 = keys noted (EnableStamps)
  rocksdb::SequenceNumber range_written_seq_ = 0;
  rocksdb::SequenceNumber RangeDeletedSeq(uint32_t cf_id) const {
    return cf_id < range_deleted_seq_.size() ? range_deleted_seq_[cf_id] : 0;
  }
  rocksdb::SequenceNumber opened_seq_ = 0;
  static constexpr rocksdb::SequenceNumber kMaxSequenceNumber =
      std::numeric_limits<rocksdb::SequenceNumber>::max();
  std::atomic<uint64_t> stamped_checks_{0};  // conditions that needed no read (a metric)
  static size_t WrittenSlot(uint32_t cf_id, std::string_view key) {
    const uint64_t h =
        std::hash<std::string_view>{}(key) ^ (uint64_t{cf_id} * 0x9E3779B97F4A7C15);
    return static_cast<size_t>((h ^ (h >> 29)) & (kWrittenSlots - 1));
  }
  // Notes the keys of `batch`, just written up to sequence `seq` (under write_mu_).
  void NoteWritten(rocksdb::WriteBatch* batch, rocksdb::SequenceNumber seq);

 public:
  // How long writes waited for write_mu_ and held it (ExportMetrics sets them; null until
  // then). A request's write waits out whatever write holds the slot: a reprocessing job's
  // batch, a roll-up, a GC step.
  std::atomic<Histogram*> write_wait_{nullptr};
  std::atomic<Histogram*> write_hold_{nullptr};
};

// ---------------------------------------------------------------------------------------
// Tuning per profile (docs/row-store.md, "Tuning").

// Notes a full disk however RocksDB met it (a WAL append, a flush, a compaction), so the
// maintenance thread knows to try DB::Resume once there is room (Core::TryResume).
class NoSpaceListener final : public rocksdb::EventListener {
 public:
  explicit NoSpaceListener(Core* core) : core_(core) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason,
                         rocksdb::Status* error) override {
    if (error != nullptr && error->IsNoSpace()) {
      if (!core_->no_space_.exchange(true, std::memory_order_acq_rel)) {
        STRATA_LOG_ERROR("rocksdb: the disk is full; writes are refused until it has room",
                         "path", core_->options_.path, "reason", static_cast<int>(reason),
                         "error", error->ToString());
      }
    }
  }

 private:
  Core* const core_;
};

rocksdb::DBOptions Core::MakeDBOptions() const {
  rocksdb::DBOptions db;
  db.listeners.push_back(std::make_shared<NoSpaceListener>(const_cast<Core*>(this)));
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.max_background_jobs = options_.max_background_jobs;
  db.db_write_buffer_size = options_.total_write_buffer_bytes;
  db.bytes_per_sync = 1 << 20;  // smooth SST writeback instead of one big flush at the end
  db.max_total_wal_size = options_.max_wal_bytes;
  db.info_log = std::make_shared<StrataRocksLogger>();
  // manual_wal_flush stays false: every write reaches the OS before it is acknowledged,
  // which is what makes acknowledged writes survive kill -9.
  return db;
}

// Share of deletions at which a flushed live-table file is compacted right away.
constexpr double kLiveCompactDeletionRatio = 0.3;
// The collector's sliding window (entries) and the deletions within it that would also
// trigger: one more than the window, so the window trigger never fires.
constexpr size_t kLiveDeletionWindow = 128;
constexpr size_t kLiveDeletionWindowTriggerOff = kLiveDeletionWindow + 1;

rocksdb::ColumnFamilyOptions Core::ColumnFamilyOptionsFor(TableProfile profile) const {
  rocksdb::ColumnFamilyOptions cf;
  cf.merge_operator = merge_operator_;
  cf.compaction_filter = compaction_filter_.get();

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache_;
  table.cache_index_and_filter_blocks = true;  // one memory budget: the shared cache
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;
  if (options_.bloom_bits_per_key > 0) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(options_.bloom_bits_per_key));
  }
  const rocksdb::CompressionType light =
      lz4_supported_ ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;

  switch (profile) {
    case TableProfile::kLive:
      // Small rows, many writes and point reads: small memtables and an eager L0 trigger
      // keep few files to probe per Get; hash index inside data blocks and memtable blooms
      // make point lookups cheap; LZ4 costs little CPU.
      cf.write_buffer_size = options_.live_write_buffer_bytes;
      cf.max_write_buffer_number = 4;
      // Flush two memtables together: a live row and the roll-up's delete of it often sit
      // in consecutive memtables, and then only the tombstone reaches L0 (ingest: 6.3-6.6
      // us of server CPU per event instead of 6.6-7.4, docs/benchmark-log.md).
      cf.min_write_buffer_number_to_merge = 2;
      cf.compaction_style = rocksdb::kCompactionStyleLevel;
      cf.level0_file_num_compaction_trigger = 2;
      cf.target_file_size_base = uint64_t{64} << 20;
      cf.max_bytes_for_level_base = uint64_t{256} << 20;
      cf.level_compaction_dynamic_level_bytes = true;
      cf.compression = light;
      cf.memtable_whole_key_filtering = true;
      cf.memtable_prefix_bloom_size_ratio = 0.02;
      table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
      table.data_block_hash_table_util_ratio = 0.75;
      // A flushed file whose entries are at least 30% deletions is compacted at once into
      // the level below, where the rows it deletes are. Roll-ups delete the live rows they
      // fold into chunks; with one such file in L0 (under the trigger of 2) the deleted rows
      // stayed on disk until the next flush, and whether the bench measured before or after
      // it moved the viewing bench's bytes per record right after its run between ~39 and
      // ~55 (docs/benchmark-log.md). Ingest-only files (few deletions) keep the normal
      // trigger. The window trigger is off (more deletions than the window holds entries):
      // only the file's whole ratio counts.
      cf.table_properties_collector_factories.push_back(
          rocksdb::NewCompactOnDeletionCollectorFactory(
              kLiveDeletionWindow, kLiveDeletionWindowTriggerOff, kLiveCompactDeletionRatio));
      break;
    case TableProfile::kCompressed:
      // Large values that are already zstd: compressing again wastes CPU. Universal
      // compaction with a high run trigger rewrites the big values rarely; large files and
      // blocks suit large values.
      cf.write_buffer_size = options_.write_buffer_bytes;
      cf.compaction_style = rocksdb::kCompactionStyleUniversal;
      cf.level0_file_num_compaction_trigger = 8;
      cf.level0_slowdown_writes_trigger = 24;
      cf.level0_stop_writes_trigger = 40;
      // Every roll-up rewrites a member's newest chunk, so old chunk versions pile up in the
      // newer sorted runs: 200% let a settled recent-tier table hold 2.2x its live bytes
      // (15.9 MB on disk for 7.2 MB of rows after a 2-million-event run); 50% bounds it at
      // 1.5x for a little more compaction work.
      cf.compaction_options_universal.max_size_amplification_percent = 50;
      cf.target_file_size_base = options_.compressed_target_file_bytes;
      cf.compression = rocksdb::kNoCompression;
      cf.bottommost_compression = rocksdb::kNoCompression;
      table.block_size = 64 << 10;
      break;
    case TableProfile::kIndex:
      // Small rows read by scans: RocksDB's level defaults, LZ4.
      cf.write_buffer_size = options_.write_buffer_bytes;
      cf.compaction_style = rocksdb::kCompactionStyleLevel;
      // Except the write-stall triggers. These tables are small and some are written with
      // every batch of a busy one (the queue's offsets): each time the WAL passes
      // max_wal_bytes RocksDB flushes them for a file of a few KiB, and while the one
      // compaction thread works through a big table's compaction their L0 files pile up.
      // At the default 20 they stalled every write of the store (all tables) for seconds in
      // a reprocessing job under load (docs/benchmark-log.md); tiny files cost a read only
      // a few filter probes.
      cf.level0_slowdown_writes_trigger = 64;
      cf.level0_stop_writes_trigger = 96;
      cf.target_file_size_base = uint64_t{64} << 20;
      cf.level_compaction_dynamic_level_bytes = true;
      cf.compression = light;
      cf.bottommost_compression = zstd_supported_ ? rocksdb::kZSTD : light;
      break;
    case TableProfile::kDocument:
      // Rows of ~1 KiB written in bulk, time-ordered (newest first), with index rows of
      // random values in the same partition. Every flush then spans the partition's whole
      // key range, so levelled compaction rewrote all of a partition's older rows on each
      // L0 compaction (quadratic in the partition's size); universal compaction merges
      // sorted runs of similar size instead (write amplification ~ log of the data size).
      // LZ4 throughout: without compression a 400k-asset load cost more CPU, not less (twice
      // the bytes through flushes, compactions, the page cache and the disk).
      // Memtables as live tables' (flushed two at a time): one of write_buffer_bytes (64 MiB,
      // above max_wal_bytes) kept write-ahead logs alive after their data was flushed -- in a
      // 200k-asset load 61% of the data directory was log.
      cf.write_buffer_size = options_.live_write_buffer_bytes;
      cf.max_write_buffer_number = 4;
      cf.min_write_buffer_number_to_merge = 2;
      cf.compaction_style = rocksdb::kCompactionStyleUniversal;
      // 8 sorted runs before compacting, not 4: after a bulk load the table holds four or
      // five large runs, and with a trigger of 4 every later flush (~0.7 MiB of keys, the
      // documents being in blob files) was merged at once into the newest of them, which
      // was rewritten whole on each flush until size amplification merged everything (a
      // 1M-asset reprocessing job compacted ~20M records for ~2M flushed). With 8, new
      // flushes merge among themselves first (sizes doubling). Searches pay a few more
      // filter probes (pinned); docs/benchmark-log.md has the runs.
      cf.level0_file_num_compaction_trigger = 8;
      cf.level0_slowdown_writes_trigger = 24;
      cf.level0_stop_writes_trigger = 40;
      cf.target_file_size_base = uint64_t{64} << 20;
      cf.compression = light;
      cf.memtable_whole_key_filtering = true;
      // A memtable bloom sized for these rows: a 32 MiB memtable holds ~110k of them (a
      // ~1 KiB document and its index entries: ~290 bytes a key on average), and 0.4% of it is
      // ~10 bits a key (~1% false positives). The live tables' 2% gave ~50 bits a key: a
      // 640 KiB array per memtable that missed the CPU cache on every insert (86% of
      // MemTable::Add's own time, ~3.5% of the create CPU in a profile; docs/benchmark-log.md).
      cf.memtable_prefix_bloom_size_ratio = 0.004;
      table.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
      table.data_block_hash_table_util_ratio = 0.75;
      // Not prepopulate_block_cache: copying every flushed block into the cache was half of
      // the flush threads' CPU in a bulk load (~15% of the server's create CPU), for blocks
      // that the load's own later flushes evicted and its compactions replaced.
      if (options_.document_blob_min_bytes > 0) {
        // Documents in blob files, written once by the flush: a search's rows are random
        // ones, each a cache miss; reading the ~1 KiB document alone instead of
        // decompressing the 4 KiB block around it cut a search's server CPU (1.56-1.65 ms
        // instead of 1.99-2.57 ms per 100 rows) and left the SST files small enough for
        // the block cache (docs/benchmark-log.md, "Assets: documents in blob files").
        // Uncompressed: with LZ4 per blob the searches cost 1.65-3.25 ms and varied more,
        // for 15% fewer bytes on disk.
        cf.enable_blob_files = true;
        cf.min_blob_size = options_.document_blob_min_bytes;
        cf.blob_compression_type = rocksdb::kNoCompression;
        // Updates and deletes leave garbage; collecting it copies live documents, so it is
        // on only while there is enough garbage to gain from (SwitchBlobGc).
        cf.enable_blob_garbage_collection = options_.document_blob_gc_min_garbage == 0;
      }
      switch (options_.document_metadata) {
        case RocksRowStoreOptions::DocumentMetadata::kCache:
          break;
        case RocksRowStoreOptions::DocumentMetadata::kPinned:
          table.metadata_cache_options.unpartitioned_pinning = rocksdb::PinningTier::kAll;
          break;
        case RocksRowStoreOptions::DocumentMetadata::kTableReader:
          table.cache_index_and_filter_blocks = false;
          break;
      }
      break;
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

// ---------------------------------------------------------------------------------------
// Open / close

absl::Status Core::Open() {
  const rocksdb::DBOptions db_options = MakeDBOptions();
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, options_.path, &names);
  if (!s.ok()) {
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::path(options_.path) / "CURRENT", ec)) {
      return ToStatus(s, "list column families of " + options_.path);
    }
    names = {rocksdb::kDefaultColumnFamilyName};  // a new database
  }

  struct Planned {
    bool is_table = false;
    std::string table;
    TableProfile profile = TableProfile::kIndex;
  };
  std::vector<Planned> planned(names.size());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != rocksdb::kDefaultColumnFamilyName) {
      planned[i].is_table = ParseColumnFamilyName(names[i], &planned[i].table, &planned[i].profile);
    }
    descriptors.emplace_back(names[i], ColumnFamilyOptionsFor(planned[i].profile));
  }

  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  s = rocksdb::DB::Open(db_options, options_.path, descriptors, &handles, &raw);
  if (!s.ok()) return ToStatus(s, "open " + options_.path);
  db_.reset(raw);
  // Compactions (the LOW pool) run at a lower CPU priority, so they yield to the online
  // path; flushes (HIGH pool) keep normal priority so memtables never back up into stalls.
  (void)db_options.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW,
                                                   rocksdb::CpuPriority::kLow);
  for (size_t i = 0; i < handles.size(); ++i) {
    if (names[i] == rocksdb::kDefaultColumnFamilyName) {
      default_cf_ = handles[i];
    } else if (planned[i].is_table) {
      auto table =
          std::make_unique<RocksTable>(this, planned[i].table, planned[i].profile, handles[i]);
      uint64_t sst_bytes = 0;
      if (db_->GetIntProperty(handles[i], "rocksdb.live-sst-files-size", &sst_bytes)) {
        table->set_settled_bytes(sst_bytes);
      }
      table->set_blob_gc_on(BlobGcAlwaysOn(planned[i].profile));
      tables_.emplace(planned[i].table, std::move(table));
    } else {
      foreign_cfs_.push_back(handles[i]);
    }
  }

  std::string format;
  s = db_->Get(rocksdb::ReadOptions(), default_cf_, kFormatKey, &format);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions sync_write;
    sync_write.sync = true;
    STRATA_RETURN_IF_ERROR(
        ToStatus(db_->Put(sync_write, default_cf_, kFormatKey, kFormatVersion), "write format"));
  } else if (!s.ok()) {
    return ToStatus(s, "read format");
  } else if (format != kFormatVersion) {
    return absl::FailedPreconditionError("row store format '" + format + "' of " +
                                         options_.path + " is not supported");
  }
  opened_seq_ = db_->GetLatestSequenceNumber();

  // The periodic WAL fsync (SyncPolicy::kPeriodic) on one thread; on another, always, the
  // store's upkeep: idle flushes and compactions, the WAL backstop, blob GC switching, and
  // resuming writes after a full disk.
  sync_thread_ = std::thread([this] { SyncLoop(); });
  maintenance_thread_ = std::thread([this] { MaintenanceLoop(); });
  return absl::OkStatus();
}

void Core::Close() {
  {
    std::lock_guard lock(sync_mu_);
    stop_sync_ = true;
  }
  sync_cv_.notify_all();
  // An idle compaction under way (CompactRange) gives up rather than finish a whole table.
  if (db_ != nullptr && maintenance_thread_.joinable()) db_->DisableManualCompaction();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (maintenance_thread_.joinable()) maintenance_thread_.join();
  {
    std::lock_guard<std::mutex> lock(wal_sync_mu_);
    for (const auto& [number, fd] : wal_fds_) close(fd);
    wal_fds_.clear();
  }
  if (db_ == nullptr) return;
  if (write_failed_.load()) {
    // Skip the WAL sync (see write_failed_).
  } else if (rocksdb::Status s = db_->FlushWAL(/*sync=*/true); !s.ok()) {
    STRATA_LOG_WARN("rocksdb: WAL sync at close failed", "path", options_.path, "error",
                    s.ToString());
  }
  for (rocksdb::ColumnFamilyHandle* handle : AllHandles()) {
    rocksdb::Status s = db_->DestroyColumnFamilyHandle(handle);
    if (!s.ok()) STRATA_LOG_WARN("rocksdb: destroying handle failed", "error", s.ToString());
  }
  tables_.clear();
  foreign_cfs_.clear();
  default_cf_ = nullptr;
  if (rocksdb::Status s = db_->Close(); !s.ok()) {
    STRATA_LOG_WARN("rocksdb: close failed", "path", options_.path, "error", s.ToString());
  }
  db_.reset();
}

void Core::SyncLoop() {
  // The periodic WAL fsync only: the maintenance below runs on its own thread, so that a
  // long idle compaction (tens of seconds for a large table) or a flush that waits cannot
  // hold back the fsync of writes acknowledged meanwhile (sync_interval_ms is the promise).
  if (options_.sync_policy != SyncPolicy::kPeriodic) return;
  const auto interval = std::chrono::milliseconds(options_.sync_interval_ms);
  std::unique_lock lock(sync_mu_);
  while (!stop_sync_) {
    sync_cv_.wait_for(lock, interval, [this] { return stop_sync_; });
    if (stop_sync_) break;
    if (unsynced_writes_.exchange(0, std::memory_order_relaxed) == 0) continue;
    if (sync_failed_.load(std::memory_order_acquire)) continue;
    lock.unlock();
    // Not under the writers' lock: writers go on while the WAL is fsynced (a sync under it
    // held every write of the store for the fsync's duration). Also after a failed write:
    // what was acknowledged before it is in the WAL file, and syncing it is still right.
    (void)SyncWalOrRefuseWrites();
    lock.lock();
  }
}

void Core::MaintenanceLoop() {
  const auto interval = std::chrono::milliseconds(
      options_.idle_flush_ms > 0 ? std::min<int64_t>(options_.idle_flush_ms, 1000) : 1000);
  uint64_t seen_writes = writes_.load(std::memory_order_relaxed);
  auto last_write_seen = std::chrono::steady_clock::now();
  auto last_blob_gc_check = std::chrono::steady_clock::time_point{};
  const uint64_t backstop = WalBackstopBytes();
  auto last_backstop_check = std::chrono::steady_clock::now();
  auto last_backstop_flush = std::chrono::steady_clock::time_point{};
  std::unique_lock lock(sync_mu_);
  while (!stop_sync_) {
    sync_cv_.wait_for(lock, interval, [this] { return stop_sync_; });
    if (stop_sync_) break;
    lock.unlock();
    if (options_.document_blob_gc_min_garbage > 0 &&
        std::chrono::steady_clock::now() - last_blob_gc_check >= kBlobGcCheckInterval) {
      last_blob_gc_check = std::chrono::steady_clock::now();
      SwitchBlobGc();
    }
    if (backstop > 0 && std::chrono::steady_clock::now() - last_backstop_check >=
                            kWalBackstopCheckInterval) {
      const auto now = std::chrono::steady_clock::now();
      last_backstop_check = now;
      if (now - last_backstop_flush >= kWalBackstopMinGap && MaybeFlushOversizedWal()) {
        last_backstop_flush = now;
      }
    }
    if (no_space_.load(std::memory_order_acquire) &&
        std::chrono::steady_clock::now() - last_resume_attempt_ >= kResumeCheckInterval) {
      TryResume();
    }
    if (options_.idle_flush_ms > 0) {
      const auto now = std::chrono::steady_clock::now();
      const uint64_t writes = writes_.load(std::memory_order_relaxed);
      if (writes != seen_writes) {
        seen_writes = writes;
        last_write_seen = now;
      } else if (now - last_write_seen >= std::chrono::milliseconds(options_.idle_flush_ms) &&
                 !write_failed_.load(std::memory_order_acquire)) {
        if (options_.before_idle_maintenance_for_testing) {
          options_.before_idle_maintenance_for_testing();
        }
        MaybeFlushIdle();
        last_write_seen = now;  // checked again an idle period later
      }
    }
    lock.lock();
  }
}

void Core::SwitchBlobGc() {
  // SetOptions writes an OPTIONS file: not while the store refuses writes (a full disk).
  if (write_failed_.load(std::memory_order_acquire) || no_space_.load(std::memory_order_acquire) ||
      sync_failed_.load(std::memory_order_acquire)) {
    return;
  }
  std::vector<RocksTable*> tables;
  {
    std::lock_guard lock(tables_mu_);
    for (const auto& [name, table] : tables_) {
      if (table->profile() == TableProfile::kDocument) tables.push_back(table.get());
    }
  }
  const double on_at = options_.document_blob_gc_min_garbage;
  for (RocksTable* table : tables) {
    uint64_t live = 0, garbage = 0;
    if (!db_->GetIntProperty(table->cf(), "rocksdb.live-blob-file-size", &live) ||
        !db_->GetIntProperty(table->cf(), "rocksdb.live-blob-file-garbage-size", &garbage) ||
        live == 0) {
      continue;
    }
    const double share = static_cast<double>(garbage) / static_cast<double>(live);
    const bool on = table->blob_gc_on();
    const bool want = share >= (on ? on_at / 2 : on_at);  // hysteresis: on at x, off below x/2
    if (want == on) continue;
    rocksdb::Status set = db_->SetOptions(
        table->cf(), {{"enable_blob_garbage_collection", on ? "false" : "true"}});
    if (!set.ok()) {
      STRATA_LOG_WARN("rocksdb: cannot switch blob garbage collection", "table", table->name(),
                      "error", set.ToString());
      continue;
    }
    table->set_blob_gc_on(!on);
    STRATA_LOG_INFO(on ? "rocksdb: blob garbage collection off, little garbage left"
                       : "rocksdb: blob garbage collection on",
                    "table", table->name(), "blob_bytes", live, "garbage_bytes", garbage,
                    "garbage_share", share);
  }
}

void Core::TryResume() {
  last_resume_attempt_ = std::chrono::steady_clock::now();
  if (other_write_failure_.load(std::memory_order_acquire)) return;  // needs a restart
  struct statvfs fs;
  if (statvfs(options_.path.c_str(), &fs) != 0) return;
  const uint64_t free_bytes = uint64_t{fs.f_bavail} * fs.f_frsize;
  // Resuming flushes every memtable: ask for room for all of it (its files are smaller,
  // being compressed) and for the floor, so a resume is not tried on a disk that would
  // fill again at once.
  uint64_t memtable_bytes = 0;
  (void)db_->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &memtable_bytes);
  const uint64_t wanted = std::max(options_.resume_min_free_bytes, memtable_bytes);
  auto warn_now = [this] {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_resume_warning_ < std::chrono::minutes(1)) return false;
    last_resume_warning_ = now;
    return true;
  };
  if (free_bytes < wanted) {
    if (warn_now()) {
      STRATA_LOG_WARN("rocksdb: the disk is still full; writes stay refused", "path",
                      options_.path, "free_bytes", free_bytes, "needed_bytes", wanted);
    }
    return;
  }
  rocksdb::Status s;
  {
    // No writer in flight: the next one sees the outcome.
    std::lock_guard<std::mutex> write_lock(write_mu_);
    s = db_->Resume();
    if (s.ok()) {
      range_written_seq_ = db_->GetLatestSequenceNumber() + 1;  // stamps after this hold
      uint64_t errors = 0;
      db_->GetIntProperty("rocksdb.background-errors", &errors);
      background_errors_resolved_.store(errors, std::memory_order_relaxed);
      no_space_.store(false, std::memory_order_release);
      write_failed_.store(false, std::memory_order_release);
    }
  }
  if (s.ok()) {
    resumes_.fetch_add(1, std::memory_order_relaxed);
    STRATA_LOG_INFO("rocksdb: the disk has room again; writes resumed", "path", options_.path,
                    "free_bytes", free_bytes);
  } else if (warn_now()) {
    STRATA_LOG_WARN("rocksdb: resuming writes failed; trying again", "path", options_.path,
                    "free_bytes", free_bytes, "error", s.ToString());
  }
}

bool Core::LiveWal(uint64_t* bytes, uint64_t* files) const {
  *bytes = *files = 0;
  rocksdb::VectorLogPtr logs;
  if (!db_->GetSortedWalFiles(logs).ok()) return false;
  for (const auto& log : logs) {
    if (log->Type() != rocksdb::kAliveLogFile) continue;
    *bytes += log->SizeFileBytes();
    ++*files;
  }
  return true;
}

bool Core::WalFilesOnDisk(uint64_t* bytes, uint64_t* files, uint64_t* oldest) const {
  *bytes = *files = *oldest = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.path, ec)) {
    const std::optional<uint64_t> number = WalFileNumber(entry.path().filename().string());
    if (!number) continue;
    std::error_code size_ec;
    const uintmax_t size = entry.file_size(size_ec);
    if (size_ec) continue;  // deleted since the listing
    *bytes += size;
    if (*files == 0 || *number < *oldest) *oldest = *number;
    ++*files;
  }
  return !ec;
}

uint64_t Core::WalBackstopBytes() const {
  if (options_.wal_backstop_bytes >= 0) return static_cast<uint64_t>(options_.wal_backstop_bytes);
  return 4 * options_.max_wal_bytes;
}

bool Core::MaybeFlushOversizedWal() {
  // Not while the store refuses writes: TryResume's Resume flushes, and a flush now would
  // fail the same way.
  if (write_failed_.load(std::memory_order_acquire) || no_space_.load(std::memory_order_acquire) ||
      sync_failed_.load(std::memory_order_acquire)) {
    return false;
  }
  // A directory listing, not GetSortedWalFiles: that one disables file deletions around its
  // scan, and re-enabling them rescans the directory for obsolete files, every second. Log
  // files that are obsolete but not yet deleted count too (briefly, and only upward).
  uint64_t wal_bytes = 0, wal_files = 0, oldest = 0;
  if (!WalFilesOnDisk(&wal_bytes, &wal_files, &oldest) || wal_bytes <= WalBackstopBytes()) {
    return false;
  }
  // The tables with rows in memtables (what keeps log files alive), for the log: RocksDB
  // does not say which of them holds the oldest file, but the one whose flush never comes
  // shows as a small active memtable and a pending or absent flush.
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::string holders;
  for (rocksdb::ColumnFamilyHandle* handle : AllHandles()) {
    uint64_t active = 0, immutable = 0, flush_pending = 0;
    db_->GetIntProperty(handle, "rocksdb.cur-size-active-mem-table", &active);
    db_->GetIntProperty(handle, "rocksdb.num-immutable-mem-table", &immutable);
    db_->GetIntProperty(handle, "rocksdb.mem-table-flush-pending", &flush_pending);
    uint64_t entries = 0;
    db_->GetIntProperty(handle, "rocksdb.num-entries-active-mem-table", &entries);
    if (entries == 0 && immutable == 0) continue;
    handles.push_back(handle);
    if (!holders.empty()) holders += ' ';
    holders += handle->GetName() + ":" + std::to_string(entries) + "rows/" +
               std::to_string(active) + "B/" + std::to_string(immutable) + "imm" +
               (flush_pending != 0 ? "/pending" : "");
  }
  const auto now = std::chrono::steady_clock::now();
  if (now - last_backstop_warning_ >= std::chrono::minutes(1)) {
    last_backstop_warning_ = now;
    STRATA_LOG_WARN("rocksdb: the write-ahead log outgrew its cap; flushing every table with "
                    "unflushed rows",
                    "path", options_.path, "wal_bytes", wal_bytes, "wal_files", wal_files,
                    "backstop_bytes", WalBackstopBytes(), "oldest_log", oldest, "tables",
                    holders);
  }
  if (handles.empty()) return false;
  rocksdb::FlushOptions flush;
  flush.wait = false;  // the maintenance thread goes on; the flushes run on the background threads
  flush.allow_write_stall = true;
  if (rocksdb::Status s = db_->Flush(flush, handles); !s.ok()) {
    STRATA_LOG_WARN("rocksdb: backstop flush failed", "path", options_.path, "error",
                    s.ToString());
    return false;
  }
  wal_backstop_flushes_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Core::FlushPolling(const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                        std::chrono::milliseconds limit) {
  rocksdb::FlushOptions flush;
  flush.wait = false;
  flush.allow_write_stall = true;  // idle: nothing to stall
  const auto start = std::chrono::steady_clock::now();
  auto requested = start - std::chrono::hours(1);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now - requested >= std::chrono::seconds(2)) {
      requested = now;
      if (rocksdb::Status s = db_->Flush(flush, handles); !s.ok()) {
        STRATA_LOG_WARN("rocksdb: idle flush failed", "path", options_.path, "error",
                        s.ToString());
        return false;
      }
    }
    bool done = true;
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      uint64_t immutable = 0;
      if (db_->GetIntProperty(handle, "rocksdb.num-immutable-mem-table", &immutable) &&
          immutable > 0) {
        done = false;
        break;
      }
    }
    if (done) return true;
    if (now - start >= limit) {
      STRATA_LOG_WARN("rocksdb: idle flush did not finish in time; trying again later", "path",
                      options_.path, "seconds",
                      std::chrono::duration_cast<std::chrono::seconds>(limit).count());
      return false;
    }
    {
      std::unique_lock lock(sync_mu_);
      if (sync_cv_.wait_for(lock, std::chrono::milliseconds(20), [this] { return stop_sync_; })) {
        return false;  // closing
      }
    }
  }
}

void Core::MaybeFlushIdle() {
  uint64_t wal_bytes = 0, wal_files = 0;
  if (!LiveWal(&wal_bytes, &wal_files)) return;
  if (wal_bytes >= options_.idle_flush_min_wal_bytes) {
    if (!FlushPolling(AllHandles(), std::chrono::seconds(60))) return;
    idle_flushes_.fetch_add(1, std::memory_order_relaxed);
  }
  // Then settle the tables that carry dead bytes. Live tables: rows that were rolled up are
  // tombstones in a fresh L0 file above the rows they delete, and with fewer L0 files than
  // the trigger nothing would ever bring them together. Compressed tables: universal
  // compaction bounds space amplification by comparing its sorted runs' sizes, which sees
  // neither the chunks that a later small tombstone deletes (a rotation to the past tier)
  // nor the old versions inside its largest run; after a 2-million-event run the settled
  // recent tier held 21.8 MB of files for 7.2 MB of rows. A table is compacted whole when
  // it has grown by an eighth since it was last settled (new versions of rows: roll-ups
  // rewrite a member's newest chunk) or a tenth of its entries are deletions. Idle time
  // only, once per idle period, so requests never wait for it.
  std::vector<RocksTable*> tables;
  {
    std::lock_guard lock(tables_mu_);
    for (const auto& [name, table] : tables_) tables.push_back(table.get());
  }
  int settled = 0;
  for (RocksTable* table : tables) {
    uint64_t sst_bytes = 0;
    if (!db_->GetIntProperty(table->cf(), "rocksdb.live-sst-files-size", &sst_bytes)) continue;
    if (!WorthSettling(table, sst_bytes)) continue;
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    if (rocksdb::Status c = db_->CompactRange(compact, table->cf(), nullptr, nullptr); !c.ok()) {
      STRATA_LOG_WARN("rocksdb: idle compaction failed", "path", options_.path, "table",
                      table->name(), "error", c.ToString());
      continue;
    }
    uint64_t after = 0;
    db_->GetIntProperty(table->cf(), "rocksdb.live-sst-files-size", &after);
    table->set_settled_bytes(after);
    idle_compactions_.fetch_add(1, std::memory_order_relaxed);
    ++settled;
    STRATA_LOG_INFO("rocksdb: writes idle, compacted a table whole", "path", options_.path,
                    "table", table->name(), "bytes_before", sst_bytes, "bytes_after", after);
  }
  if (wal_bytes >= options_.idle_flush_min_wal_bytes || settled > 0) {
    STRATA_LOG_INFO("rocksdb: writes idle, flushed every table so the log can be deleted",
                    "path", options_.path, "wal_bytes", wal_bytes, "tables_compacted", settled);
  }
}

bool Core::WorthSettling(RocksTable* table, uint64_t sst_bytes) const {
  const uint64_t settled = table->settled_bytes();
  // Ranges deleted since (each one tombstone, which the deletion count below cannot see):
  // settled once they cover a tenth of the table's files. No size floor: a document table's
  // files hold keys and blob references only, while the blobs the range held may be large.
  const uint64_t range_deleted = table->range_deleted_bytes();
  if (range_deleted > 0 && range_deleted * 10 >= sst_bytes) return true;
  if (sst_bytes < kMinSettleBytes || sst_bytes == settled) return false;  // nothing new
  // Growth means new versions of rows in live and compressed tables; document and
  // append-only tables grow by new rows (a bulk load, a queue's new messages, would be
  // rewritten whole after it, for nothing), so only their deletions count.
  if (table->profile() != TableProfile::kDocument && !table->append_only() &&
      sst_bytes >= settled + std::max<uint64_t>(kMinSettleBytes, settled / 8)) {
    return true;
  }
  rocksdb::TablePropertiesCollection props;
  if (!db_->GetPropertiesOfAllTables(table->cf(), &props).ok()) return false;
  uint64_t entries = 0;
  uint64_t deletions = 0;
  for (const auto& [file, p] : props) {
    entries += p->num_entries;
    deletions += p->num_deletions + p->num_range_deletions;
  }
  return entries > 0 && deletions * 10 >= entries;
}

std::vector<rocksdb::ColumnFamilyHandle*> Core::AllHandles() const {
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  if (default_cf_ != nullptr) handles.push_back(default_cf_);
  {
    std::lock_guard lock(tables_mu_);
    for (const auto& [name, table] : tables_) handles.push_back(table->cf());
  }
  handles.insert(handles.end(), foreign_cfs_.begin(), foreign_cfs_.end());
  return handles;
}

// ---------------------------------------------------------------------------------------
// Tables, writes, snapshots

absl::StatusOr<Table*> Core::OpenTable(const TableOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidateTableName(options.name));
  std::lock_guard lock(tables_mu_);
  if (auto it = tables_.find(options.name); it != tables_.end()) {
    it->second->set_append_only(options.append_only);
    return it->second.get();
  }
  const std::string cf_name = options.name + "." + ProfileName(options.profile);
  rocksdb::ColumnFamilyHandle* handle = nullptr;
  STRATA_RETURN_IF_ERROR(ToStatus(
      db_->CreateColumnFamily(ColumnFamilyOptionsFor(options.profile), cf_name, &handle),
      "create table " + options.name));
  auto table = std::make_unique<RocksTable>(this, options.name, options.profile, handle);
  table->set_blob_gc_on(BlobGcAlwaysOn(options.profile));
  table->set_append_only(options.append_only);
  Table* result = table.get();
  tables_.emplace(options.name, std::move(table));
  return result;
}

std::vector<RocksTableInfo> Core::ListTables() const {
  std::lock_guard lock(tables_mu_);
  std::vector<RocksTableInfo> infos;
  for (const auto& [name, table] : tables_) infos.push_back(RocksTableInfo{name, table->profile()});
  return infos;
}

RocksTable* Core::FindTable(std::string_view name) const {
  std::lock_guard lock(tables_mu_);
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : it->second.get();
}

absl::Status Core::AppendToBatch(rocksdb::ColumnFamilyHandle* cf, std::string_view partition,
                                 const WriteBatch& batch, rocksdb::WriteBatch* out,
                                 EncodeScratch* scratch) const {
  scratch->prefix.clear();
  AppendPartitionPrefix(&scratch->prefix, partition);
  // The ops go in in key order: the memtable's skip list starts each insert from where the
  // last one went (RocksDB's splice) and recomputes only the levels that do not bracket the
  // new key, so neighbours insert with a few comparisons where a key far from the last one
  // descends every level (cache misses mostly). A job's batch interleaves each asset's row,
  // history and mark, three distant ranges; sorted, each range's keys are neighbours
  // (docs/benchmark-log.md, "Batches in key order"). The sort is stable, so a key's ops
  // keep their order; a batch with a range delete keeps its order (the delete's place among
  // the point writes decides what it removes).
  const std::vector<WriteBatch::Op>& ops = batch.ops();
  bool in_order = true;
  bool has_range_delete = false;
  for (size_t i = 0; i < ops.size(); ++i) {
    has_range_delete |= ops[i].type == WriteBatch::OpType::kDeleteRange;
    if (i > 0 && ops[i].key < ops[i - 1].key) in_order = false;
  }
  std::vector<uint32_t>& order = scratch->order;
  order.resize(ops.size());
  std::iota(order.begin(), order.end(), 0u);
  if (!in_order && !has_range_delete) {
    std::stable_sort(order.begin(), order.end(),
                     [&ops](uint32_t a, uint32_t b) { return ops[a].key < ops[b].key; });
  }
  for (const uint32_t index : order) {
    const WriteBatch::Op& op = ops[index];
    rocksdb::Status s;
    if (op.type == WriteBatch::OpType::kPut) {
      // Key and value go into the batch in parts (partition prefix + clustering key; value
      // header + value): the value, often a kilobyte or more, is copied once, not twice.
      EncodeValue(&scratch->value, "", op.expire_at, /*has_version=*/false, 0);
      const rocksdb::Slice key_parts[2] = {scratch->prefix, op.key};
      const rocksdb::Slice value_parts[2] = {scratch->value, op.value};
      s = out->Put(cf, rocksdb::SliceParts(key_parts, 2), rocksdb::SliceParts(value_parts, 2));
      if (!s.ok()) return ToStatus(s, "write batch");
      continue;
    }
    scratch->key.assign(scratch->prefix);
    scratch->key.append(op.key);
    switch (op.type) {
      case WriteBatch::OpType::kPut:
        break;  // above
      case WriteBatch::OpType::kPutIfNewer:
        EncodeValue(&scratch->value, op.value, op.expire_at, /*has_version=*/true, op.version);
        s = out->Merge(cf, scratch->key, scratch->value);
        break;
      case WriteBatch::OpType::kDelete:
        s = out->Delete(cf, scratch->key);
        break;
      case WriteBatch::OpType::kDeleteRange:
        if (op.value.empty()) {
          scratch->end = PrefixSuccessor(scratch->prefix);
        } else {
          scratch->end.assign(scratch->prefix);
          scratch->end.append(op.value);
        }
        if (scratch->key < scratch->end) s = out->DeleteRange(cf, scratch->key, scratch->end);
        break;
    }
    if (!s.ok()) return ToStatus(s, "write batch");
  }
  return absl::OkStatus();
}

void Core::AddChecks(rocksdb::ColumnFamilyHandle* cf, std::string_view partition,
                     const WriteBatch& batch, std::vector<Check>* checks) {
  for (const WriteBatch::Condition& c : batch.conditions()) {
    std::string key = PartitionPrefix(partition);
    key.append(c.key);
    checks->push_back(Check{cf, std::move(key), &c.value, c.stamp});
  }
}

absl::Status Core::Commit(rocksdb::WriteBatch* batch, const std::vector<Check>& checks) {
  if (batch->Count() == 0 && checks.empty()) return absl::OkStatus();
  // Background (niced) writers run at normal priority while they hold the write slot.
  ScopedPriorityBoost boost;
  Histogram* const wait_histogram = write_wait_.load(std::memory_order_relaxed);
  const auto asked = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> write_lock(write_mu_);
  struct HeldFor {  // observes the hold on every return below (before the unlock)
    Histogram* histogram;
    std::chrono::steady_clock::time_point since;
    ~HeldFor() {
      if (histogram != nullptr) {
        histogram->Observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count());
      }
    }
  } held{write_hold_.load(std::memory_order_relaxed), std::chrono::steady_clock::now()};
  if (wait_histogram != nullptr) {
    wait_histogram->Observe(std::chrono::duration<double>(held.since - asked).count());
  }
  if (write_failed_.load(std::memory_order_acquire)) {
    if (ResumableFailure()) {
      return absl::UnavailableError(
          "write: the disk under the data directory is full; writes are refused until it "
          "has room again (checked every " + std::to_string(kResumeCheckInterval.count()) +
          " s, no restart needed)");
    }
    return absl::UnavailableError("write: the row store failed an earlier write; restart the "
                                  "server once the cause is fixed");
  }
  if (sync_failed_.load(std::memory_order_acquire)) {
    return absl::UnavailableError(kSyncFailedMessage);
  }
  if (!checks.empty()) {
    // Every write of the store holds write_mu_, so no write lands between these reads and
    // the write below.
    // A check whose stamp still holds (no write to its key since the caller's read, which
    // answered the expected value) needs no read. The rest: one batched MultiGet for all of
    // them, since a job's batch checks thousands of rows while every other writer waits for
    // this lock.
    std::vector<const Check*> reread;
    reread.reserve(checks.size());
    for (const Check& check : checks) {
      const uint32_t cf_id = check.cf->GetID();
      if (check.stamp == 0 || check.stamp < opened_seq_ || range_written_seq_ > check.stamp ||
          RangeDeletedSeq(cf_id) > check.stamp ||
          written_seq_[WrittenSlot(cf_id, check.key)] > check.stamp) {
        reread.push_back(&check);
      }
    }
    stamped_checks_.fetch_add(checks.size() - reread.size(), std::memory_order_relaxed);
    const Millis now = Now();
    const size_t n = reread.size();
    std::vector<rocksdb::ColumnFamilyHandle*> cfs(n);
    std::vector<rocksdb::Slice> keys(n);
    for (size_t i = 0; i < n; ++i) {
      cfs[i] = reread[i]->cf;
      keys[i] = reread[i]->key;
    }
    std::vector<rocksdb::PinnableSlice> values(n);
    std::vector<rocksdb::Status> statuses(n);
    if (n > 0) {
      db_->MultiGet(rocksdb::ReadOptions(), n, cfs.data(), keys.data(), values.data(),
                    statuses.data());
    }
    for (size_t i = 0; i < n; ++i) {
      const Check& check = *reread[i];
      const rocksdb::PinnableSlice& current = values[i];
      const rocksdb::Status& s = statuses[i];
      std::optional<std::string_view> found;
      DecodedValue decoded;
      if (s.ok()) {
        if (!DecodeValue(View(current), &decoded)) {
          return absl::InternalError("condition: corrupt row value");
        }
        if (!Expired(decoded, now)) found = decoded.payload;
      } else if (!s.IsNotFound()) {
        return ToStatus(s, "condition");
      }
      const bool holds = check.value->has_value()
                             ? (found.has_value() && *found == **check.value)
                             : !found.has_value();
      if (!holds) return absl::FailedPreconditionError("condition: the row has changed");
    }
    if (batch->Count() == 0) return absl::OkStatus();
  }
  rocksdb::Status written = db_->Write(write_options_, batch);
  if (!written.ok()) {
    // Whatever of it took effect is unknown: no stamp holds from here (TryResume resets).
    range_written_seq_ = kMaxSequenceNumber;
    if (written.IsIOError()) {
      if (written.IsNoSpace()) {
        no_space_.store(true, std::memory_order_release);
      } else {
        other_write_failure_.store(true, std::memory_order_release);
      }
      if (!write_failed_.exchange(true)) {
        STRATA_LOG_ERROR(written.IsNoSpace()
                             ? "rocksdb: write failed, the disk is full; refusing writes until "
                               "it has room"
                             : "rocksdb: write failed; refusing writes until restart",
                         "path", options_.path, "error", written.ToString());
      }
    }
    return ToStatus(written, "write");
  }
  NoteWritten(batch, db_->GetLatestSequenceNumber());
  unsynced_writes_.fetch_add(1, std::memory_order_relaxed);
  writes_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

void Core::NoteWritten(rocksdb::WriteBatch* batch, rocksdb::SequenceNumber seq) {
  // Every record type the store writes is named here; anything else (Iterate fails on a
  // record a Handler does not take) counts as a range delete: every stamp is re-read.
  class Noter final : public rocksdb::WriteBatch::Handler {
   public:
    Noter(Core* core, rocksdb::SequenceNumber seq) : core_(core), seq_(seq) {}
    rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key,
                          const rocksdb::Slice&) override {
      return Note(cf, key);
    }
    rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
      return Note(cf, key);
    }
    rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
      return Note(cf, key);
    }
    rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& key,
                            const rocksdb::Slice&) override {
      return Note(cf, key);
    }
    rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice&,
                                  const rocksdb::Slice&) override {
      if (cf >= core_->range_deleted_seq_.size()) core_->range_deleted_seq_.resize(cf + 1, 0);
      core_->range_deleted_seq_[cf] = seq_;
      return rocksdb::Status::OK();
    }

   private:
    rocksdb::Status Note(uint32_t cf, const rocksdb::Slice& key) {
      if (cf < core_->stamped_cf_.size() && core_->stamped_cf_[cf] != 0) {
        core_->written_seq_[WrittenSlot(cf, key.ToStringView())] = seq_;
      }
      return rocksdb::Status::OK();
    }
    Core* core_;
    rocksdb::SequenceNumber seq_;
  } noter(this, seq);
  if (!batch->Iterate(&noter).ok()) range_written_seq_ = seq;
}

absl::Status Core::Write(std::span<const PartitionWrite> writes) {
  size_t bytes = 64;
  for (const PartitionWrite& write : writes) {
    const auto* table = dynamic_cast<const RocksTable*>(write.table);
    if (table == nullptr || table->core() != this) {
      return absl::InvalidArgumentError("table: not a table of this store");
    }
    STRATA_RETURN_IF_ERROR(ValidatePartitionKey(write.partition));
    STRATA_RETURN_IF_ERROR(ValidateWriteBatch(write.batch));
    for (const WriteBatch::Op& op : write.batch.ops()) {
      bytes += 48 + write.partition.size() + op.key.size() + op.value.size();
    }
  }
  rocksdb::WriteBatch batch(bytes);
  EncodeScratch scratch;
  std::vector<Check> checks;
  for (const PartitionWrite& write : writes) {
    rocksdb::ColumnFamilyHandle* cf = static_cast<const RocksTable*>(write.table)->cf();
    STRATA_RETURN_IF_ERROR(AppendToBatch(cf, write.partition, write.batch, &batch, &scratch));
    AddChecks(cf, write.partition, write.batch, &checks);
  }
  STRATA_RETURN_IF_ERROR(Commit(&batch, checks));
  for (const PartitionWrite& write : writes) {
    static_cast<const RocksTable*>(write.table)->NoteRangeDeletes(write.partition, write.batch);
  }
  return absl::OkStatus();
}

absl::Status Core::UseSnapshot(const ReadOptions& options, rocksdb::ReadOptions* ro) const {
  if (options.snapshot == nullptr) return absl::OkStatus();
  const auto* snapshot = dynamic_cast<const RocksSnapshot*>(options.snapshot);
  if (snapshot == nullptr || snapshot->core() != this) {
    return absl::InvalidArgumentError("snapshot: not a snapshot of this store");
  }
  ro->snapshot = snapshot->get();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Snapshot>> Core::NewSnapshot() {
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  if (snapshot == nullptr) return absl::InternalError("rocksdb: snapshots are not supported");
  return std::unique_ptr<Snapshot>(std::make_unique<RocksSnapshot>(this, db_.get(), snapshot));
}

absl::Status Core::Sync() {
  if (write_failed_.load(std::memory_order_acquire)) {
    return absl::UnavailableError("sync WAL: skipped after a failed write");
  }
  if (sync_failed_.load(std::memory_order_acquire)) {
    return absl::UnavailableError(kSyncFailedMessage);
  }
  return SyncWalOrRefuseWrites();
}

absl::Status Core::SyncWalOrRefuseWrites() {
  absl::Status s = SyncWalFiles();
  if (!s.ok()) {
    // Writes acknowledged since the last good sync may not be on disk, and after a failed
    // fsync the kernel may have dropped the dirty pages, so a retry that succeeds proves
    // nothing. Like PostgreSQL (data_sync_retry = off), stop acknowledging writes and
    // report unhealthy until a restart recovers from the WAL.
    wal_sync_failures_.fetch_add(1, std::memory_order_relaxed);
    if (!sync_failed_.exchange(true, std::memory_order_acq_rel)) {
      STRATA_LOG_ERROR("rocksdb: WAL fsync failed; refusing writes until restart", "path",
                       options_.path, "error", s.ToString());
    }
  }
  return s;
}

absl::Status Core::SyncWalFiles() {
  std::lock_guard<std::mutex> lock(wal_sync_mu_);
  wal_sync_started_us_.store(SteadyMicros(), std::memory_order_relaxed);
  struct Done {
    std::atomic<int64_t>* started;
    ~Done() { started->store(0, std::memory_order_relaxed); }
  } done{&wal_sync_started_us_};
  // The WAL files now in the directory (RocksDB names them NNNNNN.log beside the SSTs). A
  // write acknowledged before this listing is in one of them, or in a file already deleted,
  // which RocksDB does only once the memtables it backed are flushed and synced.
  std::vector<uint64_t> numbers;
  {
    DIR* dir = opendir(options_.path.c_str());
    if (dir == nullptr) {
      return absl::UnavailableError("sync WAL: cannot list " + options_.path + ": " +
                                 std::strerror(errno));
    }
    while (const dirent* entry = readdir(dir)) {
      const std::optional<uint64_t> number = WalFileNumber(entry->d_name);
      if (number && *number >= wal_sync_floor_) numbers.push_back(*number);
    }
    closedir(dir);
  }
  std::sort(numbers.begin(), numbers.end());
  for (uint64_t number : numbers) {
    auto it = wal_fds_.find(number);
    if (it == wal_fds_.end()) {
      char name[32];
      std::snprintf(name, sizeof(name), "/%06llu.log", static_cast<unsigned long long>(number));
      const int fd = open((options_.path + name).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT) continue;  // flushed and deleted since the listing
        return absl::UnavailableError(std::string("sync WAL: open ") + name + ": " +
                                   std::strerror(errno));
      }
      it = wal_fds_.emplace(number, fd).first;
    }
    if (fdatasync(it->second) != 0) {
      return absl::UnavailableError(std::string("sync WAL: fdatasync: ") + std::strerror(errno));
    }
  }
  if (!numbers.empty() && numbers.back() > wal_dir_synced_through_) {
    // A WAL file created since the last call: its directory entry must be durable too.
    const int dir_fd = open(options_.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync(dir_fd) != 0) {
      const int err = errno;
      if (dir_fd >= 0) close(dir_fd);
      return absl::UnavailableError(std::string("sync WAL: fsync of the directory: ") +
                                 std::strerror(err));
    }
    close(dir_fd);
    wal_dir_synced_through_ = numbers.back();
  }
  wal_syncs_.fetch_add(1, std::memory_order_relaxed);
  // RocksDB appends only to the newest file: older ones are complete, and synced now.
  if (!numbers.empty()) wal_sync_floor_ = numbers.back();
  for (auto it = wal_fds_.begin(); it != wal_fds_.end() && it->first < wal_sync_floor_;) {
    close(it->second);
    it = wal_fds_.erase(it);
  }
  return absl::OkStatus();
}

RocksHealth Core::Health() const {
  RocksHealth health;
  auto db_property = [&](const char* name) {
    uint64_t value = 0;
    return db_->GetIntProperty(name, &value) ? value : 0;
  };
  health.running_compactions = db_property("rocksdb.num-running-compactions");
  health.running_flushes = db_property("rocksdb.num-running-flushes");
  health.background_errors = db_property("rocksdb.background-errors");
  health.write_stalled = db_property("rocksdb.is-write-stopped") != 0 ||
                         db_property("rocksdb.actual-delayed-write-rate") != 0;
  for (rocksdb::ColumnFamilyHandle* cf : AllHandles()) {
    uint64_t value = 0;
    if (db_->GetIntProperty(cf, "rocksdb.estimate-pending-compaction-bytes", &value)) {
      health.pending_compaction_bytes += value;
    }
    if (db_->GetIntProperty(cf, "rocksdb.total-sst-files-size", &value)) {
      health.total_sst_bytes += value;
    }
    if (db_->GetIntProperty(cf, "rocksdb.live-sst-files-size", &value)) {
      health.live_sst_bytes += value;
    }
    if (db_->GetIntProperty(cf, "rocksdb.cur-size-all-mem-tables", &value)) {
      health.memtable_bytes += value;
    }
    if (db_->GetIntProperty(cf, "rocksdb.live-blob-file-size", &value)) {
      health.live_blob_bytes += value;
    }
    if (db_->GetIntProperty(cf, "rocksdb.live-blob-file-garbage-size", &value)) {
      health.blob_garbage_bytes += value;
    }
  }
  {
    std::lock_guard lock(tables_mu_);
    for (const auto& [name, table] : tables_) health.blob_gc_tables += table->blob_gc_on();
  }
  health.wal_sync_failures = wal_sync_failures_.load(std::memory_order_relaxed);
  health.wal_syncs = wal_syncs_.load(std::memory_order_relaxed);
  if (const int64_t started = wal_sync_started_us_.load(std::memory_order_relaxed); started > 0) {
    health.wal_sync_running_seconds = std::max<int64_t>(0, SteadyMicros() - started) / 1e6;
  }
  if (sync_failed_.load(std::memory_order_acquire)) {
    health.writes_refused = kSyncFailedMessage;
  } else if (write_failed_.load(std::memory_order_acquire) ||
             no_space_.load(std::memory_order_acquire)) {
    health.writes_refused =
        ResumableFailure()
            ? "the disk under the data directory is full; writes resume by themselves once "
              "it has room"
            : "a write to the row store failed; restart once the cause is fixed";
  }
  health.resumes = resumes_.load(std::memory_order_relaxed);
  health.unresolved_background_errors =
      health.background_errors -
      std::min(health.background_errors,
               background_errors_resolved_.load(std::memory_order_relaxed));
  health.idle_flushes = idle_flushes_.load(std::memory_order_relaxed);
  health.idle_compactions = idle_compactions_.load(std::memory_order_relaxed);
  health.wal_backstop_flushes = wal_backstop_flushes_.load(std::memory_order_relaxed);
  health.stamped_checks = stamped_checks_.load(std::memory_order_relaxed);
  (void)LiveWal(&health.wal_bytes, &health.wal_files);
  return health;
}

absl::Status Core::CheckpointTo(const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  STRATA_RETURN_IF_ERROR(ToStatus(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // log_size_for_flush 0: the memtables are flushed first, so the copy needs no WAL replay
  // beyond what is copied, and every acknowledged write is in it.
  return ToStatus(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0), "checkpoint");
}

absl::Status Core::CompactAll() {
  for (rocksdb::ColumnFamilyHandle* cf : AllHandles()) {
    STRATA_RETURN_IF_ERROR(ToStatus(db_->Flush(rocksdb::FlushOptions(), cf), "flush"));
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    STRATA_RETURN_IF_ERROR(
        ToStatus(db_->CompactRange(compact, cf, nullptr, nullptr), "compact range"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// RocksTable

rocksdb::SequenceNumber RocksTable::StampSequence() {
  if (!stamps_on_.load(std::memory_order_acquire)) {
    core_->EnableStamps(cf_->GetID());
    stamps_on_.store(true, std::memory_order_release);
  }
  return core_->db()->GetLatestSequenceNumber();
}

absl::StatusOr<std::string> RocksTable::Get(std::string_view partition,
                                            std::string_view clustering,
                                            const ReadOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
  STRATA_RETURN_IF_ERROR(ValidateClusteringKey(clustering));
  rocksdb::ReadOptions ro;
  STRATA_RETURN_IF_ERROR(core_->UseSnapshot(options, &ro));
  std::string key = PartitionPrefix(partition);
  key.append(clustering);
  // None under a snapshot.
  const bool stamp = options.stamps != nullptr && options.snapshot == nullptr;
  const rocksdb::SequenceNumber seq = stamp ? StampSequence() : 0;
  rocksdb::PinnableSlice value;
  rocksdb::Status s = core_->db()->Get(ro, cf_, key, &value);
  if (s.IsNotFound()) {
    if (stamp) options.stamps->assign(1, core_->ReadStampFor(seq, false, 0));
    return absl::NotFoundError("row not found");
  }
  STRATA_RETURN_IF_ERROR(ToStatus(s, "get"));
  DecodedValue decoded;
  if (!DecodeValue(View(value), &decoded)) {
    return absl::InternalError("corrupt row value in table " + name_);
  }
  if (stamp) options.stamps->assign(1, core_->ReadStampFor(seq, true, decoded.expire_at));
  if (Expired(decoded, core_->Now())) return absl::NotFoundError("row not found");
  return std::string(decoded.payload);
}

// One DB::MultiGet: RocksDB sorts the keys and shares the index, filter and data block
// lookups of keys that fall in the same blocks (a search's rows of one partition mostly do).
std::vector<absl::StatusOr<std::string>> RocksTable::MultiGet(std::span<const RowKey> keys,
                                                              const ReadOptions& options) {
  const size_t n = keys.size();
  std::vector<absl::StatusOr<std::string>> out(n);
  rocksdb::ReadOptions ro;
  if (absl::Status s = core_->UseSnapshot(options, &ro); !s.ok()) {
    out.assign(n, s);
    return out;
  }
  std::vector<std::string> full_keys;
  std::vector<rocksdb::Slice> slices;
  std::vector<size_t> asked;  // index in `keys` of each valid key
  full_keys.reserve(n);
  slices.reserve(n);
  asked.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    absl::Status valid = ValidatePartitionKey(keys[i].partition);
    if (valid.ok()) valid = ValidateClusteringKey(keys[i].clustering);
    if (!valid.ok()) {
      out[i] = valid;
      continue;
    }
    std::string& key = full_keys.emplace_back();
    key.reserve(kPartitionLengthBytes + keys[i].partition.size() + keys[i].clustering.size());
    AppendPartitionPrefix(&key, keys[i].partition);
    key.append(keys[i].clustering);
    asked.push_back(i);
  }
  for (const std::string& key : full_keys) slices.emplace_back(key);
  std::vector<rocksdb::PinnableSlice> values(slices.size());
  std::vector<rocksdb::Status> statuses(slices.size());
  // None under a snapshot.
  const bool stamp = options.stamps != nullptr && options.snapshot == nullptr;
  const rocksdb::SequenceNumber seq = stamp ? StampSequence() : 0;
  if (stamp) options.stamps->assign(n, 0);
  if (!slices.empty()) {
    core_->db()->MultiGet(ro, cf_, slices.size(), slices.data(), values.data(), statuses.data());
  }
  const Millis now = core_->Now();
  for (size_t j = 0; j < asked.size(); ++j) {
    absl::StatusOr<std::string>& result = out[asked[j]];
    if (statuses[j].IsNotFound()) {
      if (stamp) (*options.stamps)[asked[j]] = core_->ReadStampFor(seq, false, 0);
      result = absl::NotFoundError("row not found");
      continue;
    }
    if (!statuses[j].ok()) {
      result = ToStatus(statuses[j], "get");
      continue;
    }
    DecodedValue decoded;
    if (!DecodeValue(View(values[j]), &decoded)) {
      result = absl::InternalError("corrupt row value in table " + name_);
      continue;
    }
    if (stamp) (*options.stamps)[asked[j]] = core_->ReadStampFor(seq, true, decoded.expire_at);
    if (Expired(decoded, now)) {
      result = absl::NotFoundError("row not found");
    } else {
      result = std::string(decoded.payload);
    }
  }
  return out;
}

absl::Status RocksTable::Put(std::string_view partition, std::string_view clustering,
                             std::string_view value, Millis expire_at) {
  STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
  STRATA_RETURN_IF_ERROR(ValidateClusteringKey(clustering));
  std::string key = PartitionPrefix(partition);
  key.append(clustering);
  std::string encoded;
  encoded.reserve(2 + 8 + value.size());
  EncodeValue(&encoded, value, expire_at, /*has_version=*/false, 0);
  rocksdb::WriteBatch batch(key.size() + encoded.size() + 32);
  STRATA_RETURN_IF_ERROR(ToStatus(batch.Put(cf_, key, encoded), "put"));
  return core_->Commit(&batch);
}

absl::Status RocksTable::Delete(std::string_view partition, std::string_view clustering) {
  STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
  STRATA_RETURN_IF_ERROR(ValidateClusteringKey(clustering));
  std::string key = PartitionPrefix(partition);
  key.append(clustering);
  rocksdb::WriteBatch batch;
  STRATA_RETURN_IF_ERROR(ToStatus(batch.Delete(cf_, key), "delete"));
  return core_->Commit(&batch);
}

absl::Status RocksTable::DeleteRange(std::string_view partition, std::string_view start,
                                     std::string_view end) {
  WriteBatch batch;
  batch.DeleteRange(std::string(start), std::string(end));
  return Apply(partition, batch);
}

void RocksTable::NoteRangeDeletes(std::string_view partition, const WriteBatch& batch) const {
  rocksdb::SizeApproximationOptions approx;
  approx.include_memtables = true;
  approx.include_files = true;
  std::string prefix;
  for (const WriteBatch::Op& op : batch.ops()) {
    if (op.type != WriteBatch::OpType::kDeleteRange) continue;
    if (prefix.empty()) prefix = PartitionPrefix(partition);
    const std::string lo = prefix + op.key;
    const std::string hi = op.value.empty() ? PrefixSuccessor(prefix) : prefix + op.value;
    if (lo >= hi) continue;  // an empty range (RocksDB asserts start <= end)
    const rocksdb::Range range(lo, hi);
    uint64_t bytes = 0;
    if (core_->db()->GetApproximateSizes(approx, cf_, &range, 1, &bytes).ok()) {
      range_deleted_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    }
  }
}

absl::Status RocksTable::Apply(std::string_view partition, const WriteBatch& batch) {
  STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
  STRATA_RETURN_IF_ERROR(ValidateWriteBatch(batch));
  rocksdb::WriteBatch out;
  EncodeScratch scratch;
  STRATA_RETURN_IF_ERROR(core_->AppendToBatch(cf_, partition, batch, &out, &scratch));
  std::vector<Core::Check> checks;
  Core::AddChecks(cf_, partition, batch, &checks);
  STRATA_RETURN_IF_ERROR(core_->Commit(&out, checks));
  NoteRangeDeletes(partition, batch);
  return absl::OkStatus();
}

absl::StatusOr<ScanPage> RocksTable::Scan(std::string_view partition, const ScanOptions& options,
                                          const ReadOptions& read_options) {
  STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
  STRATA_RETURN_IF_ERROR(ValidateScanOptions(options));
  const std::string prefix = PartitionPrefix(partition);
  std::string lower = prefix + options.start;
  std::string upper =
      options.end.empty() ? PrefixSuccessor(prefix) : prefix + options.end;
  if (!options.cursor.empty()) {
    STRATA_ASSIGN_OR_RETURN(std::string_view last, ParseCursor(options.cursor));
    std::string resume = prefix;
    resume.append(last);
    if (!options.reverse) {
      resume.push_back('\0');  // the smallest key after `last`
      if (resume > lower) lower = std::move(resume);
    } else if (resume < upper) {
      upper = std::move(resume);
    }
  }
  ScanPage page;
  if (!(lower < upper)) return page;

  rocksdb::ReadOptions ro;
  STRATA_RETURN_IF_ERROR(core_->UseSnapshot(read_options, &ro));
  const rocksdb::Slice lower_bound(lower);
  const rocksdb::Slice upper_bound(upper);
  ro.iterate_lower_bound = &lower_bound;
  ro.iterate_upper_bound = &upper_bound;
  ro.total_order_seek = true;
  std::unique_ptr<rocksdb::Iterator> it(core_->db()->NewIterator(ro, cf_));
  const Millis now = core_->Now();
  if (options.reverse) {
    it->SeekToLast();
  } else {
    it->Seek(lower_bound);
  }
  DecodedValue decoded;
  page.rows.reserve(std::min<size_t>(options.limit, 64));
  for (; it->Valid(); options.reverse ? it->Prev() : it->Next()) {
    if (!DecodeValue(View(it->value()), &decoded)) {
      return absl::InternalError("corrupt row value in table " + name_);
    }
    if (Expired(decoded, now)) continue;
    if (page.rows.size() == options.limit) {  // one more live row exists: not done
      page.next_cursor = MakeCursor(page.rows.back().clustering);
      break;
    }
    page.rows.push_back(
        Row{std::string(View(it->key()).substr(prefix.size())), std::string(decoded.payload)});
  }
  STRATA_RETURN_IF_ERROR(ToStatus(it->status(), "scan"));
  return page;
}

absl::StatusOr<std::vector<KeyRange>> RocksTable::SplitRanges(int n) {
  if (n < 1) return absl::InvalidArgumentError("n: must be >= 1");
  std::vector<KeyRange> ranges;
  if (n == 1) {
    ranges.push_back(KeyRange{"", ""});
    return ranges;
  }
  // Candidate boundaries are partition prefixes (so no partition is split between ranges)
  // with a weight. Big tables: the first partition of each SST file, weighted by file size.
  // Small tables (fewer files than ranges, or data still in memtables): the partitions
  // themselves, found by seeking from one partition to the next, weighted equally.
  std::map<std::string, uint64_t> candidates;
  rocksdb::ColumnFamilyMetaData meta;
  core_->db()->GetColumnFamilyMetaData(cf_, &meta);
  for (const rocksdb::LevelMetaData& level : meta.levels) {
    for (const rocksdb::SstFileMetaData& file : level.files) {
      std::string_view partition, clustering;
      if (DecodeKey(file.smallestkey, &partition, &clustering)) {
        candidates[PartitionPrefix(partition)] += std::max<uint64_t>(file.size, 1);
      }
    }
  }
  if (candidates.size() < static_cast<size_t>(n)) {
    constexpr size_t kMaxSampledPartitions = 4096;
    std::map<std::string, uint64_t> sampled;
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(core_->db()->NewIterator(ro, cf_));
    for (it->SeekToFirst(); it->Valid() && sampled.size() < kMaxSampledPartitions;) {
      std::string_view partition, clustering;
      if (!DecodeKey(View(it->key()), &partition, &clustering)) {
        return absl::InternalError("corrupt key in table " + name_);
      }
      std::string prefix = PartitionPrefix(partition);
      it->Seek(PrefixSuccessor(prefix));
      sampled.emplace(std::move(prefix), 1);
    }
    STRATA_RETURN_IF_ERROR(ToStatus(it->status(), "split ranges"));
    // A complete partition list is exact; a truncated one only covers the table's start, so
    // then the (few) file boundaries are the better guide if there are any.
    const bool complete = !it->Valid();
    if (complete || candidates.size() < 2) candidates = std::move(sampled);
  }

  uint64_t total = 0;
  for (const auto& [prefix, weight] : candidates) total += weight;
  std::string begin;
  uint64_t before = 0;  // weight of the candidates before the current one
  int next = 1;         // index of the next boundary to place
  bool first = true;
  for (const auto& [prefix, weight] : candidates) {
    // A boundary goes before the first candidate at or past the next n-th of the weight.
    if (!first && next < n &&
        static_cast<long double>(before) >=
            static_cast<long double>(total) * next / static_cast<long double>(n)) {
      ranges.push_back(KeyRange{begin, prefix});
      begin = prefix;
      while (next < n && static_cast<long double>(before) >=
                             static_cast<long double>(total) * next / static_cast<long double>(n)) {
        ++next;
      }
    }
    first = false;
    before += weight;
  }
  ranges.push_back(KeyRange{begin, ""});
  return ranges;
}

absl::StatusOr<TableScanPage> RocksTable::ScanRange(const KeyRange& range, size_t limit,
                                                    std::string_view cursor,
                                                    const ReadOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidatePageLimit(limit));
  std::string lower = range.begin;
  if (!cursor.empty()) {
    STRATA_ASSIGN_OR_RETURN(std::string_view last, ParseCursor(cursor));
    std::string resume(last);
    resume.push_back('\0');
    if (resume > lower) lower = std::move(resume);
  }
  TableScanPage page;
  if (!range.end.empty() && !(lower < range.end)) return page;

  rocksdb::ReadOptions ro;
  STRATA_RETURN_IF_ERROR(core_->UseSnapshot(options, &ro));
  const rocksdb::Slice lower_bound(lower);
  const rocksdb::Slice upper_bound(range.end);
  ro.iterate_lower_bound = &lower_bound;
  if (!range.end.empty()) ro.iterate_upper_bound = &upper_bound;
  ro.total_order_seek = true;
  ro.fill_cache = false;  // a full-table scan must not evict the online working set
  std::unique_ptr<rocksdb::Iterator> it(core_->db()->NewIterator(ro, cf_));
  const Millis now = core_->Now();
  DecodedValue decoded;
  std::string last_key;
  for (it->Seek(lower_bound); it->Valid(); it->Next()) {
    if (!DecodeValue(View(it->value()), &decoded)) {
      return absl::InternalError("corrupt row value in table " + name_);
    }
    if (Expired(decoded, now)) continue;
    if (page.rows.size() == limit) {
      page.next_cursor = MakeCursor(last_key);
      break;
    }
    std::string_view partition, clustering;
    if (!DecodeKey(View(it->key()), &partition, &clustering)) {
      return absl::InternalError("corrupt key in table " + name_);
    }
    last_key.assign(View(it->key()));
    page.rows.push_back(TableRow{std::string(partition), std::string(clustering),
                                 std::string(decoded.payload)});
  }
  STRATA_RETURN_IF_ERROR(ToStatus(it->status(), "scan range"));
  return page;
}

absl::StatusOr<TableStats> RocksTable::Stats() {
  TableStats stats;
  uint64_t value = 0;
  if (core_->db()->GetIntProperty(cf_, "rocksdb.estimate-num-keys", &value)) {
    stats.approximate_rows = value;
  }
  if (core_->db()->GetIntProperty(cf_, "rocksdb.live-sst-files-size", &value)) {
    stats.disk_bytes += value;
  }
  if (core_->db()->GetIntProperty(cf_, "rocksdb.live-blob-file-size", &value)) {
    stats.disk_bytes += value;  // documents in blob files (kDocument)
  }
  if (core_->db()->GetIntProperty(cf_, "rocksdb.cur-size-all-mem-tables", &value)) {
    stats.disk_bytes += value;  // not yet on disk as SST, but in the WAL and soon flushed
  }
  return stats;
}

}  // namespace rocksdb_internal

// ---------------------------------------------------------------------------------------
// RocksRowStore

struct RocksRowStore::Impl {
  explicit Impl(const RocksRowStoreOptions& options) : core(options) {}
  rocksdb_internal::Core core;
};

RocksRowStore::RocksRowStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RocksRowStore::~RocksRowStore() = default;

absl::StatusOr<std::unique_ptr<RocksRowStore>> RocksRowStore::Open(
    const RocksRowStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("path: required");
  if (options.sync_policy == SyncPolicy::kPeriodic && options.sync_interval_ms <= 0) {
    return absl::InvalidArgumentError("sync_interval_ms: must be > 0");
  }
  if (options.max_background_jobs < 1) {
    return absl::InvalidArgumentError("max_background_jobs: must be >= 1");
  }
  if (options.bloom_bits_per_key < 0) {
    return absl::InvalidArgumentError("bloom_bits_per_key: must be >= 0");
  }
  if (!(options.document_blob_gc_min_garbage >= 0 && options.document_blob_gc_min_garbage <= 1)) {
    return absl::InvalidArgumentError("document_blob_gc_min_garbage: must be 0..1");
  }
  if (options.block_cache_shard_bits < -1 || options.block_cache_shard_bits > 8) {
    return absl::InvalidArgumentError("block_cache_shard_bits: must be -1 (automatic) or 0-8");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return absl::UnavailableError("path: cannot create " + options.path + ": " + ec.message());
  }
  auto impl = std::make_unique<Impl>(options);
  STRATA_RETURN_IF_ERROR(impl->core.Open());
  static const bool crc_logged = [] {  // once per process, after a MANIFEST write
    STRATA_LOG_INFO("rocksdb: CRC32C of logs and blob files", "implementation",
                    rocksdb_internal::Crc32cImplementation());
    return true;
  }();
  (void)crc_logged;
  return std::unique_ptr<RocksRowStore>(new RocksRowStore(std::move(impl)));
}

absl::StatusOr<Table*> RocksRowStore::OpenTable(const TableOptions& options) {
  return impl_->core.OpenTable(options);
}

absl::Status RocksRowStore::Write(std::span<const PartitionWrite> writes) {
  return impl_->core.Write(writes);
}

absl::StatusOr<std::unique_ptr<Snapshot>> RocksRowStore::NewSnapshot() {
  return impl_->core.NewSnapshot();
}

absl::Status RocksRowStore::Sync() { return impl_->core.Sync(); }

std::vector<RocksTableInfo> RocksRowStore::ListTables() const {
  return impl_->core.ListTables();
}

RocksHealth RocksRowStore::Health() const { return impl_->core.Health(); }

absl::Status RocksRowStore::CompactAll() { return impl_->core.CompactAll(); }

absl::Status RocksRowStore::Checkpoint(const std::string& dir) {
  return impl_->core.CheckpointTo(dir);
}

BackendHealth RocksRowStore::CheckHealth() const {
  const RocksHealth h = Health();
  BackendHealth out;
  if (!h.writes_refused.empty()) {
    out.healthy = false;
    out.detail = "row store: " + h.writes_refused;
  } else if (h.unresolved_background_errors > 0) {
    out.healthy = false;
    out.detail = "row store: background errors (see the server log)";
  }
  out.load = h.write_stalled || !h.writes_refused.empty() ? 1.0 : 0.0;
  out.pending_background_bytes = h.pending_compaction_bytes;
  out.log_bytes = h.wal_bytes;
  out.table_bytes = h.live_sst_bytes + h.live_blob_bytes;
  out.memory_bytes = h.memtable_bytes;
  return out;
}

void RocksRowStore::ExportMetrics(MetricsRegistry* metrics) {
  using Samples = std::vector<std::pair<std::string, double>>;
  impl_->core.write_wait_.store(
      metrics->GetHistogram("strata_rocksdb_write_wait_seconds",
                            "Time writes waited for the row store's write slot (one write "
                            "at a time: conditions checked, then applied)"));
  impl_->core.write_hold_.store(
      metrics->GetHistogram("strata_rocksdb_write_hold_seconds",
                            "Time writes held the row store's write slot (condition reads "
                            "and the RocksDB write)"));
  auto gauge = [this, metrics](const char* name, const char* help,
                               uint64_t RocksHealth::*field) {
    metrics->AddGauge(name, help, [this, field] {
      return Samples{{"", static_cast<double>(Health().*field)}};
    });
  };
  gauge("strata_rocksdb_wal_bytes",
        "Bytes of the write-ahead log files still live (bounded by --max-wal-bytes)",
        &RocksHealth::wal_bytes);
  gauge("strata_rocksdb_memtable_bytes", "Bytes in RocksDB's memtables, all tables",
        &RocksHealth::memtable_bytes);
  gauge("strata_rocksdb_wal_backstop_flushes_total",
        "Flushes of every table because the write-ahead log passed its backstop "
        "(4 x --max-wal-bytes); should stay 0",
        &RocksHealth::wal_backstop_flushes);
  gauge("strata_rocksdb_stamped_checks_total",
        "Write conditions checked without a read: the caller's read stamp showed no write "
        "to the row since (a counter)",
        &RocksHealth::stamped_checks);
  gauge("strata_rocksdb_idle_compactions",
        "Tables compacted whole while writes were idle, since start (a counter)",
        &RocksHealth::idle_compactions);
  gauge("strata_rocksdb_wal_sync_failures_total",
        "Failed WAL fsyncs since start; after one, writes are refused (503) until a restart",
        &RocksHealth::wal_sync_failures);
  gauge("strata_rocksdb_disk_full_resumes_total",
        "Times writes resumed by themselves after the disk had been full (a counter)",
        &RocksHealth::resumes);
  gauge("strata_rocksdb_wal_syncs_total",
        "WAL fsync rounds completed since start (periodic, and Sync calls such as an object "
        "PUT's; a counter)",
        &RocksHealth::wal_syncs);
  metrics->AddGauge("strata_rocksdb_wal_sync_running_seconds",
                    "How long the WAL fsync under way has taken, 0 when none runs (writes go on "
                    "meanwhile; with --sync periodic they are acknowledged before it ends)",
                    [this] {
                      return Samples{{"", Health().wal_sync_running_seconds}};
                    });
  gauge("strata_rocksdb_blob_garbage_bytes",
        "Bytes of overwritten or deleted documents still in blob files, all tables",
        &RocksHealth::blob_garbage_bytes);
  gauge("strata_rocksdb_blob_gc_tables",
        "Tables whose blob garbage collection is on now (--document-blob-gc-min-garbage)",
        &RocksHealth::blob_gc_tables);
  gauge("strata_rocksdb_running_compactions", "Compactions running now, all tables",
        &RocksHealth::running_compactions);
  gauge("strata_rocksdb_running_flushes", "Memtable flushes running now, all tables",
        &RocksHealth::running_flushes);
  gauge("strata_rocksdb_pending_compaction_bytes",
        "Estimated bytes compaction still has to rewrite", &RocksHealth::pending_compaction_bytes);
}

void RocksRowStore::SwitchBlobGcForTesting() { impl_->core.SwitchBlobGc(); }

absl::Status RocksRowStore::FlushForTesting() {
  rocksdb::FlushOptions flush;
  flush.allow_write_stall = true;
  return rocksdb_internal::ToStatus(impl_->core.db()->Flush(flush, impl_->core.AllHandles()),
                                    "flush");
}

absl::StatusOr<uint64_t> RocksRowStore::CountRawEntriesForTesting(std::string_view table) {
  rocksdb_internal::RocksTable* t = impl_->core.FindTable(table);
  if (t == nullptr) return absl::NotFoundError("table not found: " + std::string(table));
  rocksdb::ReadOptions ro;
  ro.total_order_seek = true;
  std::unique_ptr<rocksdb::Iterator> it(impl_->core.db()->NewIterator(ro, t->cf()));
  uint64_t count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  STRATA_RETURN_IF_ERROR(rocksdb_internal::ToStatus(it->status(), "count"));
  return count;
}

absl::StatusOr<std::string> RocksRowStore::DescribeTuningForTesting(std::string_view table) {
  rocksdb_internal::RocksTable* t = impl_->core.FindTable(table);
  if (t == nullptr) return absl::NotFoundError("table not found: " + std::string(table));
  const rocksdb::Options options = impl_->core.db()->GetOptions(t->cf());
  auto compression = [](rocksdb::CompressionType type) -> std::string {
    switch (type) {
      case rocksdb::kNoCompression:
        return "none";
      case rocksdb::kLZ4Compression:
        return "lz4";
      default:
        return "other";
    }
  };
  std::string out = "profile=";
  out += rocksdb_internal::ProfileName(t->profile());
  out += " compaction=";
  out += options.compaction_style == rocksdb::kCompactionStyleUniversal ? "universal" : "level";
  out += " compression=" + compression(options.compression);
  out += " write_buffer=" + std::to_string(options.write_buffer_size);
  out += " l0_trigger=" + std::to_string(options.level0_file_num_compaction_trigger);
  out += " target_file=" + std::to_string(options.target_file_size_base);
  out += " blob_min=";
  out += options.enable_blob_files ? std::to_string(options.min_blob_size) : "off";
  out += " blob_gc=";
  out += options.enable_blob_garbage_collection ? "on" : "off";
  const auto* table_options =
      options.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
  out += " metadata=";
  if (table_options == nullptr) {
    out += "unknown";
  } else if (!table_options->cache_index_and_filter_blocks) {
    out += "reader";
  } else if (table_options->metadata_cache_options.unpartitioned_pinning ==
             rocksdb::PinningTier::kAll) {
    out += "pinned";
  } else {
    out += "cache";
  }
  out += " merge_operator=";
  out += options.merge_operator ? options.merge_operator->Name() : "none";
  out += " compaction_filter=";
  out += options.compaction_filter != nullptr ? options.compaction_filter->Name() : "none";
  return out;
}

}  // namespace strata::store
