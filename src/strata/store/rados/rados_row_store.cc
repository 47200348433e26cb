#include "strata/store/rados/rados_row_store.h"

#include <rados/librados.h>

#include <rados/librados.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "strata/base/coding.h"
#include "strata/base/log.h"
#include "strata/base/metrics.h"
#include "strata/base/status.h"

namespace strata::store {
namespace {

// ---------------------------------------------------------------------------------------
// Row values: format byte | version (10 bytes) | expire_at (i64 BE, 0 = never) | value.
// The version comes right after the format byte so that omap_cmp(LT) on the prefix
// `format | version` is "the stored row is older than this version" (or absent: a missing
// key compares as the empty string, which is less than anything).
//
// The OSD compares omap values byte by byte as *signed* chars (Ceph's bufferlist
// comparison), so a byte >= 0x80 sorts below 0x7f. A plain big-endian u64 version then
// orders wrongly whenever the first differing byte crosses 0x80 (with event times as
// versions: often), and an older event overwrote a newer one. The version is therefore ten
// 7-bit groups, most significant first, every byte below 0x80: the same order whether bytes
// compare signed or unsigned. (Format 1, the plain u64, was never released.)

constexpr char kRowFormat = 2;
constexpr size_t kVersionBytes = 10;
constexpr size_t kRowHeaderSize = 1 + kVersionBytes + 8;
// Bigger than every valid clustering key (<= 4096 bytes): the end of an open-ended range.
const std::string& KeyAfterAll() {
  static const std::string* s = new std::string(kMaxClusteringKeySize + 1, '\xff');
  return *s;
}

void PutVersion(std::string* out, uint64_t version) {
  for (int group = kVersionBytes - 1; group >= 0; --group) {
    out->push_back(static_cast<char>((version >> (7 * group)) & 0x7f));
  }
}

bool GetVersion(std::string_view* in, uint64_t* version) {
  if (in->size() < kVersionBytes) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < kVersionBytes; ++i) {
    const auto byte = static_cast<unsigned char>((*in)[i]);
    if (byte >= 0x80) return false;
    v = (v << 7) | byte;
  }
  in->remove_prefix(kVersionBytes);
  *version = v;
  return true;
}

std::string EncodeRow(std::string_view value, uint64_t version, Millis expire_at) {
  std::string out;
  out.reserve(kRowHeaderSize + value.size());
  out.push_back(kRowFormat);
  PutVersion(&out, version);
  coding::PutFixed64BE(&out, static_cast<uint64_t>(expire_at));
  out.append(value);
  return out;
}

std::string VersionPrefix(uint64_t version) {
  std::string out(1, kRowFormat);
  PutVersion(&out, version);
  return out;
}

struct StoredRow {
  uint64_t version = 0;
  Millis expire_at = 0;
  std::string_view value;
};

bool DecodeRow(std::string_view raw, StoredRow* row) {
  if (raw.size() < kRowHeaderSize || raw[0] != kRowFormat) return false;
  raw.remove_prefix(1);
  uint64_t expire = 0;
  if (!GetVersion(&raw, &row->version)) return false;
  coding::GetFixed64BE(&raw, &expire);
  row->expire_at = static_cast<Millis>(expire);
  row->value = raw;
  return true;
}

bool Expired(const StoredRow& row, Millis now) { return row.expire_at != 0 && row.expire_at <= now; }

// A stored value that is live at `now` (decodes, not expired).
bool LiveRow(std::string_view raw, Millis now, StoredRow* row) {
  return DecodeRow(raw, row) && !Expired(*row, now);
}

// ---------------------------------------------------------------------------------------
// Object names. RADOS names are C strings (no NUL) of at most 2048 bytes; partitions are
// up to 1024 arbitrary bytes. Printable partitions keep their bytes after 'r' (readable in
// `rados ls`); others are 'b' + unpadded base64url (at most 1 + 1366 bytes).

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string ObjectName(std::string_view partition) {
  bool printable = true;
  for (char c : partition) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) {
      printable = false;
      break;
    }
  }
  std::string out;
  if (printable) {
    out.reserve(partition.size() + 1);
    out.push_back('r');
    out.append(partition);
    return out;
  }
  out.reserve(2 + partition.size() * 4 / 3);
  out.push_back('b');
  uint32_t acc = 0;
  int bits = 0;
  for (char c : partition) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64Url[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kBase64Url[(acc << (6 - bits)) & 0x3f]);
  return out;
}

bool PartitionOfObject(std::string_view oid, std::string* partition) {
  if (oid.empty()) return false;
  if (oid[0] == 'r') {
    partition->assign(oid.substr(1));
    return true;
  }
  if (oid[0] != 'b') return false;
  partition->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : oid.substr(1)) {
    const char* p = std::strchr(kBase64Url, c);
    if (p == nullptr || c == '\0') return false;
    acc = (acc << 6) | static_cast<uint32_t>(p - kBase64Url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      partition->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Shards. A sharded table of N shards keeps partition p in object `s<ShardOf(p) % N>` (decimal),
// under omap keys `ShardKeyPrefix(p) + clustering`. The prefix (u16 big-endian length, then
// the bytes) is prefix-free: no partition's prefix starts another's, so the keys of one
// partition are exactly those that start with its prefix, one contiguous range in clustering
// order, and [prefix, prefix + KeyAfterAll()) covers it and nothing else. The hash is part
// of the on-disk format: it must never change (FNV-1a, 64 bits).

constexpr uint32_t kMaxShards = 65536;

uint64_t PartitionHash(std::string_view partition) {
  uint64_t h = 14695981039346656037ULL;
  for (char c : partition) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::string ShardKeyPrefix(std::string_view partition) {
  std::string out;
  out.reserve(2 + partition.size());
  out.push_back(static_cast<char>((partition.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(partition.size() & 0xff));
  out.append(partition);
  return out;
}

// Splits a shard object's omap key into partition and clustering key.
bool SplitShardKey(std::string_view key, std::string* partition, std::string* clustering) {
  if (key.size() < 2) return false;
  const size_t n = (static_cast<size_t>(static_cast<unsigned char>(key[0])) << 8) |
                   static_cast<unsigned char>(key[1]);
  if (key.size() < 2 + n) return false;
  partition->assign(key.substr(2, n));
  clustering->assign(key.substr(2 + n));
  return true;
}

// ---------------------------------------------------------------------------------------
// Errors.

absl::Status RadosError(int r, std::string_view what) {
  const int e = r < 0 ? -r : r;
  std::string message = "rados: " + std::string(what) + ": " + std::strerror(e);
  switch (e) {
    case ETIMEDOUT:
    case ENOTCONN:
    case ESHUTDOWN:
    case ECONNREFUSED:
    case ECONNRESET:
    case EAGAIN:
    case EBUSY:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EIO:
      return absl::UnavailableError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    case EINVAL:
    case ENAMETOOLONG:
    case E2BIG:
      return absl::InvalidArgumentError(message);
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Document tables are stored as live ones (the profile tunes RocksDB only): same pool, same
// shard count, catalog entry "live".
const char* ProfileSuffix(TableProfile profile) {
  switch (profile) {
    case TableProfile::kLive:
    case TableProfile::kDocument:
      return "live";
    case TableProfile::kCompressed:
      return "compressed";
    case TableProfile::kIndex:
      return "index";
  }
  return "live";
}

// Catalog entries: `<profile>` (one object per partition, the original format) or
// `<profile> shards=<N>`.
std::string CatalogEntry(TableProfile profile, uint32_t shards) {
  std::string out = ProfileSuffix(profile);
  if (shards > 0) out += " shards=" + std::to_string(shards);
  return out;
}

absl::Status ParseCatalogEntry(std::string_view entry, TableProfile* profile, uint32_t* shards) {
  const size_t space = entry.find(' ');
  const std::string_view name = entry.substr(0, space);
  if (name == "live") {
    *profile = TableProfile::kLive;
  } else if (name == "index") {
    *profile = TableProfile::kIndex;
  } else if (name == "compressed") {
    *profile = TableProfile::kCompressed;
  } else {
    return absl::DataLossError("table catalog: unknown profile \"" + std::string(name) + "\"");
  }
  *shards = 0;
  if (space == std::string_view::npos) return absl::OkStatus();
  std::string_view rest = entry.substr(space + 1);
  constexpr std::string_view kShards = "shards=";
  if (rest.substr(0, kShards.size()) != kShards || rest.size() == kShards.size()) {
    return absl::DataLossError("table catalog: unknown entry \"" + std::string(entry) + "\"");
  }
  uint64_t n = 0;
  for (char c : rest.substr(kShards.size())) {
    if (c < '0' || c > '9' || n > kMaxShards) {
      return absl::DataLossError("table catalog: bad shard count in \"" + std::string(entry) +
                                 "\"");
    }
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n == 0 || n > kMaxShards) {
    return absl::DataLossError("table catalog: bad shard count in \"" + std::string(entry) + "\"");
  }
  *shards = static_cast<uint32_t>(n);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Cursors. Scan: 'S' | last key returned. ScanRange: 'R' | listing position of the batch
// | object in progress | the object after it | has_after | last key returned in it.

constexpr char kScanCursor = 'S';
constexpr char kRangeCursor = 'R';

struct RangeCursor {
  std::string list_pos;
  std::string oid;       // empty: start at list_pos
  std::string next_oid;  // the object listed after `oid`, if any
  bool has_after = false;
  std::string after;
};

std::string EncodeRangeCursor(const RangeCursor& c) {
  std::string out(1, kRangeCursor);
  coding::PutLengthPrefixed(&out, c.list_pos);
  coding::PutLengthPrefixed(&out, c.oid);
  coding::PutLengthPrefixed(&out, c.next_oid);
  out.push_back(c.has_after ? 1 : 0);
  coding::PutLengthPrefixed(&out, c.after);
  return out;
}

absl::StatusOr<RangeCursor> DecodeRangeCursor(std::string_view in) {
  RangeCursor c;
  std::string_view list_pos, oid, next_oid, after;
  if (in.empty() || in[0] != kRangeCursor) {
    return absl::InvalidArgumentError("cursor: not a cursor of this store");
  }
  in.remove_prefix(1);
  if (!coding::GetLengthPrefixed(&in, &list_pos) || !coding::GetLengthPrefixed(&in, &oid) ||
      !coding::GetLengthPrefixed(&in, &next_oid) || in.empty()) {
    return absl::InvalidArgumentError("cursor: truncated");
  }
  c.has_after = in[0] != 0;
  in.remove_prefix(1);
  if (!coding::GetLengthPrefixed(&in, &after)) {
    return absl::InvalidArgumentError("cursor: truncated");
  }
  c.list_pos = list_pos;
  c.oid = oid;
  c.next_oid = next_oid;
  c.after = after;
  return c;
}

// ---------------------------------------------------------------------------------------
// A compiled batch: the omap mutations in order, and the assertions that make it correct.

struct Plan {
  enum class Kind { kSet, kRemove, kRemoveRange, kClear };
  struct Op {
    Kind kind;
    std::string key;
    std::string value;  // kSet: the encoded row; kRemoveRange: the end key
  };
  std::vector<Op> ops;
  // omap_cmp assertions: (key, operand); EQ with "" asserts the row is absent.
  std::vector<std::pair<std::string, std::string>> equal;
  std::vector<std::pair<std::string, std::string>> less;
  bool create_exclusive = false;  // the object was absent when read: still absent
  bool has_set = false;
  bool has_remove = false;

  bool HasAssertions() const { return !equal.empty() || !less.empty(); }
};

// Compiles `batch`. `stored` is nullptr for the optimistic first attempt (every row the
// batch depends on is guessed: a condition's row holds a plain row with the expected value,
// a PutIfNewer row is absent or older); otherwise it holds the rows read (key -> raw bytes;
// a key missing from the map is absent) and the assertions pin exactly those bytes.
// Returns FailedPrecondition when a condition fails on the rows read.
absl::StatusOr<Plan> Compile(const WriteBatch& batch,
                             const std::map<std::string, std::string>* stored, Millis now) {
  Plan plan;
  // Known state of the rows the batch touched or depends on: raw bytes, nullopt = absent.
  std::map<std::string, std::optional<std::string>> known;
  std::set<std::string> pinned;  // keys with an assertion already
  auto stored_value = [&](const std::string& key) -> std::optional<std::string> {
    auto it = stored->find(key);
    if (it == stored->end()) return std::nullopt;
    return it->second;
  };
  auto pin_read = [&](const std::string& key) {
    std::optional<std::string> raw = stored_value(key);
    if (pinned.insert(key).second) plan.equal.emplace_back(key, raw.value_or(""));
    known[key] = raw;
  };

  for (const WriteBatch::Condition& c : batch.conditions()) {
    if (stored == nullptr) {
      std::string operand = c.value ? EncodeRow(*c.value, 0, 0) : std::string();
      plan.equal.emplace_back(c.key, operand);
      pinned.insert(c.key);
      known[c.key] = c.value ? std::optional<std::string>(operand) : std::nullopt;
      continue;
    }
    if (known.count(c.key) == 0) pin_read(c.key);
    const std::optional<std::string>& raw = known[c.key];
    StoredRow row;
    const bool live = raw && LiveRow(*raw, now, &row);
    const bool holds = c.value ? (live && row.value == *c.value) : !live;
    if (!holds) {
      return absl::FailedPreconditionError(
          c.value ? "condition: row does not hold the expected value"
                  : "condition: row exists");
    }
  }

  for (const WriteBatch::Op& op : batch.ops()) {
    switch (op.type) {
      case WriteBatch::OpType::kPut: {
        std::string raw = EncodeRow(op.value, 0, op.expire_at);
        known[op.key] = raw;
        plan.ops.push_back({Plan::Kind::kSet, op.key, std::move(raw)});
        plan.has_set = true;
        break;
      }
      case WriteBatch::OpType::kDelete:
        known[op.key] = std::nullopt;
        plan.ops.push_back({Plan::Kind::kRemove, op.key, ""});
        plan.has_remove = true;
        break;
      case WriteBatch::OpType::kDeleteRange: {
        const std::string& end = op.value;
        if (!end.empty() && op.key >= end) break;  // empty range
        for (auto it = known.lower_bound(op.key);
             it != known.end() && (end.empty() || it->first < end); ++it) {
          it->second = std::nullopt;
        }
        if (op.key.empty() && end.empty()) {
          plan.ops.push_back({Plan::Kind::kClear, "", ""});
        } else {
          plan.ops.push_back(
              {Plan::Kind::kRemoveRange, op.key, end.empty() ? KeyAfterAll() : end});
        }
        plan.has_remove = true;
        break;
      }
      case WriteBatch::OpType::kPutIfNewer: {
        std::string raw = EncodeRow(op.value, op.version, op.expire_at);
        auto it = known.find(op.key);
        if (it == known.end()) {
          if (stored == nullptr) {
            // Guess: the stored row is absent, expired-and-older, or older than this one.
            plan.less.emplace_back(op.key, VersionPrefix(op.version));
            pinned.insert(op.key);
            known[op.key] = raw;
            plan.ops.push_back({Plan::Kind::kSet, op.key, std::move(raw)});
            plan.has_set = true;
            break;
          }
          pin_read(op.key);
          it = known.find(op.key);
        }
        StoredRow current;
        const bool wins = !it->second || !LiveRow(*it->second, now, &current) ||
                          op.version > current.version;
        if (wins) {
          it->second = raw;
          plan.ops.push_back({Plan::Kind::kSet, op.key, std::move(raw)});
          plan.has_set = true;
        }
        break;
      }
    }
  }
  return plan;
}

// The keys whose stored rows a batch depends on (read before a conditional write).
std::set<std::string> DependentKeys(const WriteBatch& batch) {
  std::set<std::string> keys;
  for (const WriteBatch::Condition& c : batch.conditions()) keys.insert(c.key);
  for (const WriteBatch::Op& op : batch.ops()) {
    if (op.type == WriteBatch::OpType::kPutIfNewer) keys.insert(op.key);
  }
  return keys;
}

// Rewrites a plan compiled on clustering keys for a partition stored under `prefix` in a
// shard object: every key is prefixed, and clearing the partition becomes a range delete of
// its key range (omap_clear would clear the other partitions of the object).
void PrefixPlan(const std::string& prefix, Plan* plan) {
  if (prefix.empty()) return;
  for (Plan::Op& op : plan->ops) {
    if (op.kind == Plan::Kind::kClear) {
      op.kind = Plan::Kind::kRemoveRange;
      op.key.clear();
      op.value = KeyAfterAll();
    }
    op.key.insert(0, prefix);
    if (op.kind == Plan::Kind::kRemoveRange) op.value.insert(0, prefix);
  }
  for (auto& [key, operand] : plan->equal) key.insert(0, prefix);
  for (auto& [key, operand] : plan->less) key.insert(0, prefix);
}

// Appends `part` (of another partition of the same object) to `plan`: one operation for both.
void MergePlan(Plan&& part, Plan* plan) {
  for (Plan::Op& op : part.ops) plan->ops.push_back(std::move(op));
  for (auto& e : part.equal) plan->equal.push_back(std::move(e));
  for (auto& l : part.less) plan->less.push_back(std::move(l));
  plan->has_set = plan->has_set || part.has_set;
  plan->has_remove = plan->has_remove || part.has_remove;
}

// A C write operation built from a plan; owns the op and the bytes it points into until
// the operation completes.
class WriteOp {
 public:
  explicit WriteOp(const Plan& plan) : op_(rados_create_write_op()) {
    if (plan.create_exclusive) {
      rados_write_op_create(op_, LIBRADOS_CREATE_EXCLUSIVE, nullptr);
    } else if (plan.has_set && plan.has_remove && !plan.HasAssertions()) {
      // omap removals on a missing object fail with ENOENT; make it exist first (it will
      // after the batch anyway, as the batch also sets rows).
      rados_write_op_create(op_, LIBRADOS_CREATE_IDEMPOTENT, nullptr);
    }
    cmp_results_.resize(plan.equal.size() + plan.less.size());
    size_t r = 0;
    for (const auto& [key, operand] : plan.equal) {
      rados_write_op_omap_cmp2(op_, key.data(), LIBRADOS_CMPXATTR_OP_EQ, operand.data(),
                               key.size(), operand.size(), &cmp_results_[r++]);
    }
    for (const auto& [key, operand] : plan.less) {
      // "stored < operand": the stored bytes are the left-hand side.
      rados_write_op_omap_cmp2(op_, key.data(), LIBRADOS_CMPXATTR_OP_LT, operand.data(),
                               key.size(), operand.size(), &cmp_results_[r++]);
    }
    // Consecutive sets and removals go in one sub-op each (order kept).
    size_t i = 0;
    const std::vector<Plan::Op>& ops = plan.ops;
    while (i < ops.size()) {
      const Plan::Kind kind = ops[i].kind;
      if (kind == Plan::Kind::kSet || kind == Plan::Kind::kRemove) {
        size_t j = i;
        std::vector<const char*> keys, vals;
        std::vector<size_t> key_lens, val_lens;
        std::set<std::string_view> seen;
        // A run of the same kind with distinct keys (a repeated key ends the run: the later
        // value must win, and one omap_set map cannot hold the key twice).
        while (j < ops.size() && ops[j].kind == kind && seen.insert(ops[j].key).second) {
          keys.push_back(ops[j].key.data());
          key_lens.push_back(ops[j].key.size());
          vals.push_back(ops[j].value.data());
          val_lens.push_back(ops[j].value.size());
          ++j;
        }
        if (kind == Plan::Kind::kSet) {
          rados_write_op_omap_set2(op_, keys.data(), vals.data(), key_lens.data(),
                                   val_lens.data(), keys.size());
        } else {
          rados_write_op_omap_rm_keys2(op_, keys.data(), key_lens.data(), keys.size());
        }
        i = j;
      } else if (kind == Plan::Kind::kClear) {
        rados_write_op_omap_clear(op_);
        ++i;
      } else {
        rados_write_op_omap_rm_range2(op_, ops[i].key.data(), ops[i].key.size(),
                                      ops[i].value.data(), ops[i].value.size());
        ++i;
      }
    }
  }
  ~WriteOp() { rados_release_write_op(op_); }
  WriteOp(const WriteOp&) = delete;
  WriteOp& operator=(const WriteOp&) = delete;

  rados_write_op_t get() { return op_; }

 private:
  rados_write_op_t op_;
  std::vector<int> cmp_results_;
};

// An asynchronous write in flight.
struct PendingWrite {
  std::unique_ptr<WriteOp> op;
  rados_completion_t completion = nullptr;
  int Wait() {
    rados_aio_wait_for_complete(completion);
    const int r = rados_aio_get_return_value(completion);
    rados_aio_release(completion);
    completion = nullptr;
    return r;
  }
};

// One omap page read: rows in [lower, ...) (or (lower, ...) when !inclusive), at most
// `max` (+1 when inclusive), with `more` from the OSD.
struct PageRead {
  librados::ObjectReadOperation op;
  std::map<std::string, librados::bufferlist> vals;
  std::map<std::string, librados::bufferlist> first;  // the inclusive lower key, if present
  bool more = false;
  int rval_vals = 0;
  int rval_first = 0;
  librados::AioCompletion* completion = nullptr;

  // `filter`: only keys that start with it (a shard's partition prefix; "" = all).
  void Prepare(const std::string& lower, bool inclusive, size_t max,
               const std::string& filter = std::string()) {
    if (inclusive) op.omap_get_vals_by_keys({lower}, &first, &rval_first);
    op.omap_get_vals2(lower, filter, max, &vals, &more, &rval_vals);
  }
  ~PageRead() {
    if (completion != nullptr) {
      completion->wait_for_complete();
      completion->release();
    }
  }
  // 0, -ENOENT (no object) or an error.
  int Wait() {
    completion->wait_for_complete();
    int r = completion->get_return_value();
    completion->release();
    completion = nullptr;
    if (r == 0 && rval_vals < 0) r = rval_vals;
    if (r == 0 && rval_first < 0) r = rval_first;
    return r;
  }
  // The rows in key order (the inclusive lower key first).
  std::vector<std::pair<std::string, std::string>> Rows() {
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(first.size() + vals.size());
    for (auto& [k, v] : first) out.emplace_back(k, v.to_str());
    for (auto& [k, v] : vals) out.emplace_back(k, v.to_str());
    return out;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------

class RadosTable;
struct WriteJob;

struct RadosRowStore::Impl {
  RadosRowStoreOptions options;
  Clock* clock = nullptr;
  rados_t cluster = nullptr;
  librados::Rados rados;  // a view of `cluster` (never shut down through it)
  rados_ioctx_t catalog_cio = nullptr;
  librados::IoCtx catalog;

  std::mutex mu;
  std::map<std::string, std::unique_ptr<RadosTable>> tables;
  std::set<std::string> pools_created;

  // Asynchronous deletes of expired rows in flight.
  std::mutex reap_mu;
  std::condition_variable reap_cv;
  size_t reaps_in_flight = 0;

  std::thread reaper;
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;

  ~Impl();
  absl::StatusOr<rados_ioctx_t> OpenPool(const std::string& pool);
  absl::StatusOr<Table*> OpenTable(const TableOptions& options);
  absl::Status ApplyOne(RadosTable* table, const std::string& partition, const WriteBatch& batch);
  void RunJobs(std::span<WriteJob> jobs);
  void RunRound(std::vector<WriteJob>& jobs);
  absl::Status Write(std::span<const PartitionWrite> writes);
  void ReapAsync(RadosTable* table, const std::string& oid,
                 std::vector<std::pair<std::string, std::string>> expired);
  void ReaperLoop();
  absl::StatusOr<RadosReapStats> Sweep(size_t max_objects_per_table);
  std::vector<RadosTable*> Tables();
};

class RadosTable final : public Table {
 public:
  RadosTable(RadosRowStore::Impl* store, std::string name, TableProfile profile,
             uint32_t shards, rados_ioctx_t cio)
      : store_(store), name_(std::move(name)), profile_(profile), shards_(shards), cio_(cio) {
    librados::IoCtx::from_rados_ioctx_t(cio_, io_);
  }
  ~RadosTable() override {
    io_.close();
    rados_ioctx_destroy(cio_);
  }

  const std::string& name() const override { return name_; }
  RadosRowStore::Impl* store() const { return store_; }
  rados_ioctx_t cio() const { return cio_; }
  librados::IoCtx& io() { return io_; }
  uint32_t shards() const { return shards_; }

  // Where a partition lives: its object, and the prefix of its omap keys ("" unsharded).
  std::string ObjectOf(std::string_view partition) const {
    if (shards_ == 0) return ObjectName(partition);
    return "s" + std::to_string(PartitionHash(partition) % shards_);
  }
  std::string KeyPrefix(std::string_view partition) const {
    return shards_ == 0 ? std::string() : ShardKeyPrefix(partition);
  }
  // The partition and clustering key of omap key `key` of object `oid`; false for an object
  // or key that is not this table's.
  bool RowOf(const std::string& oid, const std::string& key, std::string* partition,
             std::string* clustering) const {
    if (shards_ == 0) {
      if (!PartitionOfObject(oid, partition)) return false;
      *clustering = key;
      return true;
    }
    return !oid.empty() && oid[0] == 's' && SplitShardKey(key, partition, clustering);
  }

  absl::StatusOr<std::string> Get(std::string_view partition, std::string_view clustering,
                                  const ReadOptions& options) override;
  // One omap read per object touched (a shard object serves all its partitions' keys in one
  // operation), all in flight at once.
  std::vector<absl::StatusOr<std::string>> MultiGet(std::span<const RowKey> keys,
                                                    const ReadOptions& options) override;
  absl::Status Put(std::string_view partition, std::string_view clustering,
                   std::string_view value, Millis expire_at) override {
    WriteBatch batch;
    batch.Put(std::string(clustering), std::string(value), expire_at);
    return Apply(partition, batch);
  }
  absl::Status Delete(std::string_view partition, std::string_view clustering) override {
    WriteBatch batch;
    batch.Delete(std::string(clustering));
    return Apply(partition, batch);
  }
  absl::Status DeleteRange(std::string_view partition, std::string_view start,
                           std::string_view end) override {
    if (absl::Status s = ValidateClusteringKey(start, "start"); !s.ok()) return s;
    if (absl::Status s = ValidateClusteringKey(end, "end"); !s.ok()) return s;
    WriteBatch batch;
    batch.DeleteRange(std::string(start), std::string(end));
    return Apply(partition, batch);
  }
  absl::Status Apply(std::string_view partition, const WriteBatch& batch) override {
    STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
    STRATA_RETURN_IF_ERROR(ValidateWriteBatch(batch));
    return store_->ApplyOne(this, std::string(partition), batch);
  }
  absl::StatusOr<ScanPage> Scan(std::string_view partition, const ScanOptions& options,
                                const ReadOptions& read_options) override;
  absl::StatusOr<std::vector<KeyRange>> SplitRanges(int n) override;
  absl::StatusOr<TableScanPage> ScanRange(const KeyRange& range, size_t limit,
                                          std::string_view cursor,
                                          const ReadOptions& options) override;
  absl::StatusOr<TableStats> Stats() override;

  // Reads one page synchronously. ENOENT is an empty page.
  // `filter`: only keys starting with it ("" = all).
  absl::Status ReadPage(const std::string& oid, const std::string& lower, bool inclusive,
                        size_t max, std::vector<std::pair<std::string, std::string>>* rows,
                        bool* more, const std::string& filter = std::string());
  // Lists up to `count` objects from `from` to `to`; *next is where to go on.
  absl::Status List(const std::string& from, const std::string& to, size_t count,
                    std::vector<std::string>* oids, std::string* next, bool* at_end);

  // Operations sent to the OSDs for this table since start (for /metrics): reads (omap
  // pages, point reads, a conditional write's dependency reads) and writes (one per object
  // per round, retries included), and conditional writes that had to go again because a
  // guess or a condition failed (ECANCELED, EEXIST, ENOENT).
  std::atomic<uint64_t> read_ops{0};
  std::atomic<uint64_t> write_ops{0};
  std::atomic<uint64_t> write_retries{0};

  // Reaper state: where the background sweep resumes in this table's listing.
  std::mutex sweep_mu;
  std::string sweep_pos;

 private:
  absl::Status CheckRead(const ReadOptions& options) const {
    if (options.snapshot != nullptr) {
      return absl::InvalidArgumentError("snapshot: not a snapshot of this store");
    }
    return absl::OkStatus();
  }

  RadosRowStore::Impl* store_;
  std::string name_;
  TableProfile profile_;
  uint32_t shards_;  // 0 = one object per partition
  rados_ioctx_t cio_;
  librados::IoCtx io_;
};

// ---------------------------------------------------------------------------------------
// Store

RadosRowStore::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lock(stop_mu);
    stopping = true;
  }
  stop_cv.notify_all();
  if (reaper.joinable()) reaper.join();
  {
    std::unique_lock<std::mutex> lock(reap_mu);
    reap_cv.wait(lock, [&] { return reaps_in_flight == 0; });
  }
  tables.clear();
  catalog.close();
  if (catalog_cio != nullptr) rados_ioctx_destroy(catalog_cio);
  if (cluster != nullptr) {
    if (options.delete_pools_on_close) {
      for (TableProfile p :
           {TableProfile::kLive, TableProfile::kIndex, TableProfile::kCompressed}) {
        const std::string pool = options.pool_prefix + "." + ProfileSuffix(p);
        if (rados_pool_lookup(cluster, pool.c_str()) >= 0) rados_pool_delete(cluster, pool.c_str());
      }
    }
    rados_shutdown(cluster);
  }
}

absl::StatusOr<rados_ioctx_t> RadosRowStore::Impl::OpenPool(const std::string& pool) {
  int64_t id = rados_pool_lookup(cluster, pool.c_str());
  if (id == -ENOENT) {
    int r = rados_pool_create(cluster, pool.c_str());
    if (r < 0 && r != -EEXIST) return RadosError(r, "creating pool " + pool);
    // Wait for the OSD map that holds the pool, so the first operation finds it.
    (void)rados_wait_for_latest_osdmap(cluster);
  } else if (id < 0) {
    return RadosError(static_cast<int>(id), "looking up pool " + pool);
  }
  rados_ioctx_t cio = nullptr;
  int r = rados_ioctx_create(cluster, pool.c_str(), &cio);
  if (r < 0) return RadosError(r, "opening pool " + pool);
  if (id == -ENOENT) {
    // Tags the pool (a health warning otherwise); harmless if it fails.
    (void)rados_application_enable(cio, "strata", 1);
  }
  return cio;
}

absl::StatusOr<Table*> RadosRowStore::Impl::OpenTable(const TableOptions& table_options) {
  STRATA_RETURN_IF_ERROR(ValidateTableName(table_options.name));
  std::lock_guard<std::mutex> lock(mu);
  auto found = tables.find(table_options.name);
  if (found != tables.end()) return found->second.get();

  // The catalog decides the profile and the shard count: the first OpenTable records them
  // (create-if-absent).
  TableProfile profile = table_options.profile;
  uint32_t wanted_shards = 0;
  if (auto it = options.table_shards.find(table_options.name); it != options.table_shards.end()) {
    wanted_shards = it->second;
  } else if (table_options.spread_writes) {
    wanted_shards = options.live_shards;
  } else {
    switch (profile) {
      case TableProfile::kLive:
      case TableProfile::kDocument:
        wanted_shards = options.live_shards;
        break;
      case TableProfile::kIndex:
        wanted_shards = options.index_shards;
        break;
      case TableProfile::kCompressed:
        wanted_shards = options.compressed_shards;
        break;
    }
  }
  uint32_t shards = wanted_shards;
  bool stored_entry = false;
  {
    std::map<std::string, librados::bufferlist> vals;
    int rval = 0;
    librados::ObjectReadOperation read;
    read.omap_get_vals_by_keys({table_options.name}, &vals, &rval);
    int r = catalog.operate("tables", &read, nullptr);
    if (r < 0 && r != -ENOENT) return RadosError(r, "reading the table catalog");
    if (r == 0 && !vals.empty()) {
      STRATA_RETURN_IF_ERROR(ParseCatalogEntry(vals.begin()->second.to_str(), &profile, &shards));
      stored_entry = true;
    } else {
      // Register the profile unless another node did first (then read theirs).
      Plan plan;
      if (r == -ENOENT) {
        plan.create_exclusive = true;
      } else {
        plan.equal.emplace_back(table_options.name, "");
      }
      plan.ops.push_back({Plan::Kind::kSet, table_options.name, CatalogEntry(profile, shards)});
      plan.has_set = true;
      WriteOp op(plan);
      int w = rados_write_op_operate(op.get(), catalog_cio, "tables", nullptr, 0);
      if (w < 0 && w != -ECANCELED && w != -EEXIST) {
        return RadosError(w, "registering table " + table_options.name);
      }
      if (w < 0) {
        librados::ObjectReadOperation again;
        vals.clear();
        again.omap_get_vals_by_keys({table_options.name}, &vals, &rval);
        r = catalog.operate("tables", &again, nullptr);
        if (r < 0) return RadosError(r, "reading the table catalog");
        if (vals.empty()) return absl::AbortedError("table catalog: changed meanwhile, try again");
        STRATA_RETURN_IF_ERROR(
            ParseCatalogEntry(vals.begin()->second.to_str(), &profile, &shards));
        stored_entry = true;
      }
    }
  }
  if (stored_entry && shards != wanted_shards) {
    // The layout is fixed at creation: another count would look for rows in other objects.
    STRATA_LOG_WARN("rados table keeps its stored shard count", "table", table_options.name,
                    "stored_shards", std::to_string(shards), "option_shards",
                    std::to_string(wanted_shards));
  }
  const std::string pool = options.pool_prefix + "." + ProfileSuffix(profile);
  STRATA_ASSIGN_OR_RETURN(rados_ioctx_t cio, OpenPool(pool));
  rados_ioctx_set_namespace(cio, table_options.name.c_str());
  auto table = std::make_unique<RadosTable>(this, table_options.name, profile, shards, cio);
  Table* out = table.get();
  tables.emplace(table_options.name, std::move(table));
  return out;
}

std::vector<RadosTable*> RadosRowStore::Impl::Tables() {
  std::lock_guard<std::mutex> lock(mu);
  std::vector<RadosTable*> out;
  for (auto& [name, table] : tables) out.push_back(table.get());
  return out;
}

namespace {

// Sends `plan` for `oid` asynchronously.
absl::StatusOr<PendingWrite> Submit(rados_ioctx_t cio, const std::string& oid, const Plan& plan) {
  PendingWrite pending;
  pending.op = std::make_unique<WriteOp>(plan);
  int r = rados_aio_create_completion2(nullptr, nullptr, &pending.completion);
  if (r < 0) return RadosError(r, "creating a completion");
  r = rados_aio_write_op_operate(pending.op->get(), cio, pending.completion, oid.c_str(),
                                 nullptr, 0);
  if (r < 0) {
    rados_aio_release(pending.completion);
    pending.completion = nullptr;
    return RadosError(r, "sending a write");
  }
  return pending;
}

}  // namespace

// One batch on its way through the write path. Every batch starts with an optimistic write
// (kFast: assertions guess the rows it depends on). If the object did not exist (omap_cmp
// on a missing object is ENOENT) the next attempt writes as if every row were absent,
// asserting the object still does not exist (kAbsent: exclusive create). If a guess was
// wrong (ECANCELED) or the object appeared (EEXIST), the rows are read and the write
// asserts exactly the bytes read (kRead), again while they keep changing, up to
// max_conditional_attempts. All batches in one step go concurrently.
struct WriteJob {
  enum class Step { kFast, kAbsent, kRead };
  RadosTable* table;
  std::string oid;
  const WriteBatch* batch;
  std::string prefix;  // of the partition's omap keys in a shard object ("" unsharded)
  Step step = Step::kFast;
  int attempts = 0;
  bool done = false;
  absl::Status status;
};

namespace {

// Reads the rows `batch` depends on. *absent when the object does not exist.
struct DependencyRead {
  librados::ObjectReadOperation op;
  std::map<std::string, librados::bufferlist> vals;
  int rval = 0;
  librados::AioCompletion* completion = nullptr;
  ~DependencyRead() {
    if (completion != nullptr) {
      completion->wait_for_complete();
      completion->release();
    }
  }
};

}  // namespace

void RadosRowStore::Impl::RunJobs(std::span<WriteJob> jobs) {
  for (size_t begin = 0; begin < jobs.size(); begin += options.max_in_flight) {
    std::span<WriteJob> chunk =
        jobs.subspan(begin, std::min(options.max_in_flight, jobs.size() - begin));
    for (;;) {
      // Reads of the jobs at kRead, concurrently.
      std::vector<std::unique_ptr<DependencyRead>> reads(chunk.size());
      for (size_t i = 0; i < chunk.size(); ++i) {
        WriteJob& job = chunk[i];
        if (job.done || job.step != WriteJob::Step::kRead) continue;
        auto read = std::make_unique<DependencyRead>();
        std::set<std::string> keys;
        for (const std::string& k : DependentKeys(*job.batch)) keys.insert(job.prefix + k);
        read->op.omap_get_vals_by_keys(keys, &read->vals, &read->rval);
        read->completion = librados::Rados::aio_create_completion();
        job.table->read_ops.fetch_add(1, std::memory_order_relaxed);
        int r = job.table->io().aio_operate(job.oid, read->completion, &read->op, nullptr);
        if (r < 0) {
          job.done = true;
          job.status = RadosError(r, "reading rows of a conditional write");
          continue;
        }
        reads[i] = std::move(read);
      }
      // Plans and writes, concurrently.
      std::vector<Plan> plans(chunk.size());
      std::vector<std::optional<PendingWrite>> pending(chunk.size());
      bool any = false;
      for (size_t i = 0; i < chunk.size(); ++i) {
        WriteJob& job = chunk[i];
        if (job.done) continue;
        const Millis now = clock->NowMillis();
        absl::StatusOr<Plan> plan;
        bool absent = job.step == WriteJob::Step::kAbsent;
        std::map<std::string, std::string> stored;
        if (job.step == WriteJob::Step::kRead) {
          DependencyRead& read = *reads[i];
          read.completion->wait_for_complete();
          int r = read.completion->get_return_value();
          read.completion->release();
          read.completion = nullptr;
          if (r == 0 && read.rval < 0) r = read.rval;
          if (r == -ENOENT) {
            absent = true;
          } else if (r < 0) {
            job.done = true;
            job.status = RadosError(r, "reading rows of a conditional write");
            continue;
          } else {
            for (auto& [k, v] : read.vals) stored.emplace(k.substr(job.prefix.size()), v.to_str());
          }
        }
        plan = Compile(*job.batch, job.step == WriteJob::Step::kFast ? nullptr : &stored, now);
        if (!plan.ok()) {
          job.done = true;
          job.status = plan.status();
          continue;
        }
        PrefixPlan(job.prefix, &*plan);
        if (absent) {
          // The object is absent: assert it still is, instead of comparing rows.
          plan->equal.clear();
          plan->less.clear();
          plan->create_exclusive = true;
        }
        // Nothing to write (empty ranges; conditions that held on the rows read).
        if (plan->ops.empty() && (!plan->HasAssertions() || job.step != WriteJob::Step::kFast)) {
          job.done = true;
          continue;
        }
        plans[i] = std::move(*plan);
        job.table->write_ops.fetch_add(1, std::memory_order_relaxed);
        absl::StatusOr<PendingWrite> write = Submit(job.table->cio(), job.oid, plans[i]);
        if (!write.ok()) {
          job.done = true;
          job.status = write.status();
          continue;
        }
        pending[i] = std::move(*write);
        any = true;
      }
      if (!any) break;
      for (size_t i = 0; i < chunk.size(); ++i) {
        if (!pending[i]) continue;
        WriteJob& job = chunk[i];
        const Plan& plan = plans[i];
        const int r = pending[i]->Wait();
        ++job.attempts;
        if (r == 0 || (r == -ENOENT && !plan.has_set && !plan.HasAssertions() &&
                       !plan.create_exclusive)) {
          // Done; or removals on an object that does not exist: nothing to remove.
          job.done = true;
          continue;
        }
        const bool retry = r == -ECANCELED || r == -EEXIST || (r == -ENOENT && plan.HasAssertions());
        if (!retry) {
          job.done = true;
          job.status = RadosError(r, "write");
          continue;
        }
        job.table->write_retries.fetch_add(1, std::memory_order_relaxed);
        if (job.attempts >= options.max_conditional_attempts + 1) {
          job.done = true;
          job.status = absl::AbortedError(
              "condition: the rows kept changing during the conditional write, try again");
          continue;
        }
        job.step = job.step == WriteJob::Step::kFast && r == -ENOENT ? WriteJob::Step::kAbsent
                                                                     : WriteJob::Step::kRead;
      }
    }
  }
}

// One round of RowStore::Write (at most one batch per partition, none with conditions). The
// batches of the partitions that share a shard object go in ONE operation, all such
// operations concurrently (at most max_in_flight at once): optimistic first; if the object
// does not exist, once more as an exclusive create; if an omap_cmp guess was wrong (a
// PutIfNewer row already stored), once more after reading every row the operation depends
// on, still as one operation (PutIfNewer rows that lose are left out, the rows read are
// pinned). The combined operation is atomic; if it still does not succeed (a concurrent
// writer changed a pinned row, or the object appeared meanwhile), its batches go again one
// by one through RunJobs, so that one partition never fails another's batch. Another error fails every batch of
// the operation (outcome unknown: all or nothing of it). Unsharded batches and batches alone
// in their object go to RunJobs directly.
void RadosRowStore::Impl::RunRound(std::vector<WriteJob>& jobs) {
  std::map<std::pair<RadosTable*, std::string>, std::vector<size_t>> groups;
  std::vector<WriteJob*> single;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].table->shards() == 0) {
      single.push_back(&jobs[i]);
    } else {
      groups[{jobs[i].table, jobs[i].oid}].push_back(i);
    }
  }
  struct Group {
    const std::vector<size_t>* members;
    bool absent = false;  // the object did not exist: the next attempt creates it
    bool read = false;    // a guess failed: the next attempt reads the rows first
    bool done = false;
  };
  std::vector<Group> combined;
  for (auto& [key, members] : groups) {
    if (members.size() == 1) {
      single.push_back(&jobs[members[0]]);
    } else {
      combined.push_back(Group{&members});
    }
  }
  std::vector<WriteJob> retry;  // batches of combined operations that did not succeed
  std::vector<WriteJob*> retry_of;
  auto fall_back = [&](Group& group) {
    group.done = true;
    for (size_t i : *group.members) {
      retry.push_back(WriteJob{jobs[i].table, jobs[i].oid, jobs[i].batch, jobs[i].prefix});
      retry_of.push_back(&jobs[i]);
    }
  };
  auto fail = [&](Group& group, const absl::Status& status) {
    group.done = true;
    for (size_t i : *group.members) {
      jobs[i].done = true;
      jobs[i].status = status;
    }
  };
  const std::map<std::string, std::string> nothing_stored;
  auto first_table = [&](const Group& group) { return jobs[group.members->front()].table; };
  // Attempts: 0 optimistic (guesses); 1 an exclusive create if the object was missing, or
  // the rows read first if a guess failed (a PutIfNewer row that exists: progress updates
  // of a playback, common), still one operation for the whole object; 2 a create after a
  // read found no object. What is not done then goes one batch at a time (RunJobs).
  for (size_t begin = 0; begin < combined.size(); begin += options.max_in_flight) {
    const size_t end = std::min(combined.size(), begin + options.max_in_flight);
    for (int attempt = 0; attempt < 3; ++attempt) {
      // Reads of the groups that need them, concurrently.
      std::vector<std::unique_ptr<DependencyRead>> reads(end - begin);
      for (size_t g = begin; g < end; ++g) {
        Group& group = combined[g];
        if (group.done || !group.read) continue;
        auto read = std::make_unique<DependencyRead>();
        std::set<std::string> keys;
        for (size_t i : *group.members) {
          for (const std::string& k : DependentKeys(*jobs[i].batch)) keys.insert(jobs[i].prefix + k);
        }
        read->op.omap_get_vals_by_keys(keys, &read->vals, &read->rval);
        read->completion = librados::Rados::aio_create_completion();
        const WriteJob& first = jobs[group.members->front()];
        first.table->read_ops.fetch_add(1, std::memory_order_relaxed);
        if (first.table->io().aio_operate(first.oid, read->completion, &read->op, nullptr) < 0) {
          read->completion->release();
          read->completion = nullptr;
          fall_back(group);
          continue;
        }
        reads[g - begin] = std::move(read);
      }
      std::vector<Plan> plans(end - begin);
      std::vector<std::optional<PendingWrite>> pending(end - begin);
      const Millis now = clock->NowMillis();
      for (size_t g = begin; g < end; ++g) {
        Group& group = combined[g];
        if (group.done) continue;
        // The rows read, per member partition (keys without the partition's prefix).
        std::map<std::string, std::string> stored_all;
        if (group.read) {
          DependencyRead& read = *reads[g - begin];
          read.completion->wait_for_complete();
          int r = read.completion->get_return_value();
          read.completion->release();
          read.completion = nullptr;
          if (r == 0 && read.rval < 0) r = read.rval;
          if (r == -ENOENT) {
            group.read = false;
            group.absent = true;
          } else if (r < 0) {
            fall_back(group);
            continue;
          } else {
            for (auto& [k, v] : read.vals) stored_all.emplace(k, v.to_str());
          }
        }
        Plan& plan = plans[g - begin];
        bool ok = true;
        for (size_t i : *group.members) {
          std::map<std::string, std::string> stored;
          const std::map<std::string, std::string>* stored_ptr = nullptr;
          if (group.absent) {
            stored_ptr = &nothing_stored;
          } else if (group.read) {
            for (auto it = stored_all.lower_bound(jobs[i].prefix);
                 it != stored_all.end() && it->first.starts_with(jobs[i].prefix); ++it) {
              stored.emplace(it->first.substr(jobs[i].prefix.size()), it->second);
            }
            stored_ptr = &stored;
          }
          absl::StatusOr<Plan> part = Compile(*jobs[i].batch, stored_ptr, now);
          if (!part.ok()) {  // not expected: these batches have no conditions
            ok = false;
            break;
          }
          PrefixPlan(jobs[i].prefix, &*part);
          MergePlan(std::move(*part), &plan);
        }
        if (!ok) {
          fall_back(group);
          continue;
        }
        if (group.absent) {
          plan.equal.clear();
          plan.less.clear();
          plan.create_exclusive = true;
        }
        if (plan.ops.empty() && group.read) {
          // Every row lost to a newer stored one: nothing to write.
          group.done = true;
          for (size_t i : *group.members) jobs[i].done = true;
          continue;
        }
        const WriteJob& first = jobs[group.members->front()];
        first.table->write_ops.fetch_add(1, std::memory_order_relaxed);
        absl::StatusOr<PendingWrite> write = Submit(first.table->cio(), first.oid, plan);
        if (!write.ok()) {
          fail(group, write.status());
          continue;
        }
        pending[g - begin] = std::move(*write);
      }
      for (size_t g = begin; g < end; ++g) {
        if (!pending[g - begin]) continue;
        Group& group = combined[g];
        const Plan& plan = plans[g - begin];
        const int r = pending[g - begin]->Wait();
        if (r == 0 || (r == -ENOENT && !plan.has_set && !plan.HasAssertions() &&
                       !plan.create_exclusive)) {
          group.done = true;
          for (size_t i : *group.members) jobs[i].done = true;
        } else if (r == -ENOENT && !group.absent && !group.read) {
          first_table(group)->write_retries.fetch_add(1, std::memory_order_relaxed);
          group.absent = true;
        } else if (r == -ECANCELED && !group.absent && !group.read) {
          first_table(group)->write_retries.fetch_add(1, std::memory_order_relaxed);
          group.read = true;
        } else if (r == -ECANCELED || r == -EEXIST || r == -ENOENT) {
          first_table(group)->write_retries.fetch_add(1, std::memory_order_relaxed);
          fall_back(group);
        } else {
          fail(group, RadosError(r, "write"));
        }
      }
    }
    for (size_t g = begin; g < end; ++g) {
      if (!combined[g].done) fall_back(combined[g]);
    }
  }
  std::vector<WriteJob> rest;
  for (WriteJob* job : single) rest.push_back(*job);
  RunJobs(rest);
  for (size_t i = 0; i < single.size(); ++i) *single[i] = std::move(rest[i]);
  RunJobs(retry);
  for (size_t i = 0; i < retry.size(); ++i) *retry_of[i] = std::move(retry[i]);
}

absl::Status RadosRowStore::Impl::ApplyOne(RadosTable* table, const std::string& partition,
                                           const WriteBatch& batch) {
  if (batch.empty() && batch.conditions().empty()) return absl::OkStatus();
  WriteJob job{table, table->ObjectOf(partition), &batch, table->KeyPrefix(partition)};
  RunJobs(std::span<WriteJob>(&job, 1));
  return job.status;
}

absl::Status RadosRowStore::Impl::Write(std::span<const PartitionWrite> writes) {
  for (const PartitionWrite& w : writes) {
    if (w.table == nullptr) return absl::InvalidArgumentError("table: must not be null");
    auto* t = dynamic_cast<RadosTable*>(w.table);
    if (t == nullptr || t->store() != this) {
      return absl::InvalidArgumentError("table: not a table of this store");
    }
    STRATA_RETURN_IF_ERROR(ValidatePartitionKey(w.partition));
    STRATA_RETURN_IF_ERROR(ValidateWriteBatch(w.batch));
  }
  // Conditional batches first, one by one: a failed condition stops the call before any
  // unconditional batch is applied.
  for (const PartitionWrite& w : writes) {
    if (w.batch.conditions().empty()) continue;
    STRATA_RETURN_IF_ERROR(ApplyOne(static_cast<RadosTable*>(w.table), w.partition, w.batch));
  }
  // The rest in rounds: round k holds the k-th batch of each partition, so a partition's
  // batches apply in order while different partitions go concurrently.
  std::map<std::pair<RadosTable*, std::string>, size_t> seen;
  std::vector<std::vector<WriteJob>> rounds;
  for (const PartitionWrite& w : writes) {
    if (!w.batch.conditions().empty() || w.batch.empty()) continue;
    auto* table = static_cast<RadosTable*>(w.table);
    size_t& n = seen[{table, w.partition}];
    if (rounds.size() <= n) rounds.resize(n + 1);
    rounds[n].push_back(
        WriteJob{table, table->ObjectOf(w.partition), &w.batch, table->KeyPrefix(w.partition)});
    ++n;
  }
  for (std::vector<WriteJob>& round : rounds) {
    RunRound(round);
    // A later round's batch must not apply when an earlier batch of its partition failed;
    // stopping at the first failed round keeps that (callers retry the call).
    for (const WriteJob& job : round) {
      if (!job.status.ok()) return job.status;
    }
  }
  return absl::OkStatus();
}

// Deletes expired rows seen by a read, if they still hold the bytes seen (asynchronous).
void RadosRowStore::Impl::ReapAsync(RadosTable* table, const std::string& oid,
                                    std::vector<std::pair<std::string, std::string>> expired) {
  if (!options.reap_on_read || expired.empty()) return;
  if (expired.size() > 256) expired.resize(256);
  {
    std::lock_guard<std::mutex> lock(reap_mu);
    if (reaps_in_flight >= 64) return;  // the background sweep gets them
    ++reaps_in_flight;
  }
  struct Reap {
    Impl* impl;
    std::unique_ptr<WriteOp> op;
    rados_completion_t completion = nullptr;
  };
  Plan plan;
  for (auto& [key, raw] : expired) {
    plan.equal.emplace_back(key, raw);
    plan.ops.push_back({Plan::Kind::kRemove, key, ""});
  }
  plan.has_remove = true;
  auto* reap = new Reap{this, std::make_unique<WriteOp>(plan)};
  // Runs on librados' finisher thread once the delete completed (or failed: a row rewritten
  // meanwhile, or a lost connection; the background sweep looks again).
  auto done = [](rados_completion_t completion, void* arg) {
    auto* reap = static_cast<Reap*>(arg);
    Impl* impl = reap->impl;
    rados_aio_release(completion);
    delete reap;
    std::lock_guard<std::mutex> lock(impl->reap_mu);
    --impl->reaps_in_flight;
    impl->reap_cv.notify_all();
  };
  auto give_up = [this, reap] {
    delete reap;
    std::lock_guard<std::mutex> lock(reap_mu);
    --reaps_in_flight;
    reap_cv.notify_all();
  };
  if (rados_aio_create_completion2(reap, done, &reap->completion) < 0) {
    give_up();
    return;
  }
  rados_completion_t completion = reap->completion;
  int r = rados_aio_write_op_operate(reap->op->get(), table->cio(), completion, oid.c_str(),
                                     nullptr, 0);
  if (r < 0) {
    rados_aio_release(completion);
    give_up();
  }
}

// ---------------------------------------------------------------------------------------
// Reads

absl::Status RadosTable::ReadPage(const std::string& oid, const std::string& lower,
                                  bool inclusive, size_t max,
                                  std::vector<std::pair<std::string, std::string>>* rows,
                                  bool* more, const std::string& filter) {
  PageRead read;
  read.Prepare(lower, inclusive, max, filter);
  read.completion = librados::Rados::aio_create_completion();
  read_ops.fetch_add(1, std::memory_order_relaxed);
  int r = io_.aio_operate(oid, read.completion, &read.op, nullptr);
  if (r < 0) return RadosError(r, "reading rows");
  r = read.Wait();
  rows->clear();
  *more = false;
  if (r == -ENOENT) return absl::OkStatus();
  if (r < 0) return RadosError(r, "reading rows");
  *rows = read.Rows();
  *more = read.more;
  return absl::OkStatus();
}

absl::StatusOr<std::string> RadosTable::Get(std::string_view partition,
                                            std::string_view clustering,
                                            const ReadOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
  STRATA_RETURN_IF_ERROR(ValidateClusteringKey(clustering));
  STRATA_RETURN_IF_ERROR(CheckRead(options));
  const std::string oid = ObjectOf(partition);
  std::map<std::string, librados::bufferlist> vals;
  int rval = 0;
  librados::ObjectReadOperation read;
  read.omap_get_vals_by_keys({KeyPrefix(partition) + std::string(clustering)}, &vals, &rval);
  read_ops.fetch_add(1, std::memory_order_relaxed);
  int r = io_.operate(oid, &read, nullptr);
  if (r == -ENOENT || (r == 0 && vals.empty())) return absl::NotFoundError("row not found");
  if (r < 0) return RadosError(r, "reading a row");
  const std::string raw = vals.begin()->second.to_str();
  StoredRow row;
  if (!DecodeRow(raw, &row)) return absl::DataLossError("row: unknown value format");
  if (Expired(row, store_->clock->NowMillis())) {
    store_->ReapAsync(this, oid, {{vals.begin()->first, raw}});
    return absl::NotFoundError("row not found");
  }
  return std::string(row.value);
}

std::vector<absl::StatusOr<std::string>> RadosTable::MultiGet(std::span<const RowKey> keys,
                                                              const ReadOptions& options) {
  std::vector<absl::StatusOr<std::string>> out(keys.size(), absl::NotFoundError("row not found"));
  if (absl::Status s = CheckRead(options); !s.ok()) {
    std::fill(out.begin(), out.end(), s);
    return out;
  }
  // Object -> (omap key -> indexes of `keys` asking for it).
  std::map<std::string, std::map<std::string, std::vector<size_t>>> by_object;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (absl::Status s = ValidatePartitionKey(keys[i].partition); !s.ok()) {
      out[i] = s;
      continue;
    }
    if (absl::Status s = ValidateClusteringKey(keys[i].clustering); !s.ok()) {
      out[i] = s;  // as Get answers it
      continue;
    }
    by_object[ObjectOf(keys[i].partition)][KeyPrefix(keys[i].partition) +
                                           std::string(keys[i].clustering)]
        .push_back(i);
  }
  struct ObjectRead {
    const std::string* oid;
    const std::map<std::string, std::vector<size_t>>* wanted;
    DependencyRead read;
  };
  std::vector<std::unique_ptr<ObjectRead>> reads;
  reads.reserve(by_object.size());
  for (const auto& [oid, wanted] : by_object) {
    auto r = std::make_unique<ObjectRead>();
    r->oid = &oid;
    r->wanted = &wanted;
    std::set<std::string> omap_keys;
    for (const auto& [key, unused] : wanted) omap_keys.insert(key);
    r->read.op.omap_get_vals_by_keys(omap_keys, &r->read.vals, &r->read.rval);
    r->read.completion = librados::Rados::aio_create_completion();
    read_ops.fetch_add(1, std::memory_order_relaxed);
    const int rc = io_.aio_operate(oid, r->read.completion, &r->read.op, nullptr);
    if (rc < 0) {
      r->read.completion->release();
      r->read.completion = nullptr;
      for (const auto& [key, indexes] : wanted) {
        for (size_t i : indexes) out[i] = RadosError(rc, "reading rows");
      }
      continue;
    }
    reads.push_back(std::move(r));
  }
  const Millis now = store_->clock->NowMillis();
  for (auto& r : reads) {
    r->read.completion->wait_for_complete();
    int rc = r->read.completion->get_return_value();
    r->read.completion->release();
    r->read.completion = nullptr;
    if (rc == 0 && r->read.rval < 0) rc = r->read.rval;
    if (rc == -ENOENT) continue;  // no object: every row NotFound
    if (rc < 0) {
      for (const auto& [key, indexes] : *r->wanted) {
        for (size_t i : indexes) out[i] = RadosError(rc, "reading rows");
      }
      continue;
    }
    std::vector<std::pair<std::string, std::string>> expired;
    for (auto& [key, bl] : r->read.vals) {
      auto it = r->wanted->find(key);
      if (it == r->wanted->end()) continue;
      std::string raw = bl.to_str();
      StoredRow row;
      absl::StatusOr<std::string> result = absl::NotFoundError("row not found");
      if (!DecodeRow(raw, &row)) {
        result = absl::DataLossError("row: unknown value format");
      } else if (Expired(row, now)) {
        expired.emplace_back(key, std::move(raw));
      } else {
        result = std::string(row.value);
      }
      for (size_t i : it->second) out[i] = result;
    }
    if (!expired.empty()) store_->ReapAsync(this, *r->oid, std::move(expired));
  }
  return out;
}

absl::StatusOr<ScanPage> RadosTable::Scan(std::string_view partition, const ScanOptions& options,
                                          const ReadOptions& read_options) {
  STRATA_RETURN_IF_ERROR(ValidatePartitionKey(partition));
  STRATA_RETURN_IF_ERROR(ValidateScanOptions(options));
  STRATA_RETURN_IF_ERROR(CheckRead(read_options));
  std::optional<std::string> cursor_key;
  if (!options.cursor.empty()) {
    if (options.cursor[0] != kScanCursor) {
      return absl::InvalidArgumentError("cursor: not a cursor of this store");
    }
    cursor_key = options.cursor.substr(1);
  }
  const std::string oid = ObjectOf(partition);
  const std::string prefix = KeyPrefix(partition);
  const Millis now = store_->clock->NowMillis();
  std::vector<std::pair<std::string, std::string>> expired;
  ScanPage page;

  // Bounds: forward [lower, end) with lower exclusive after a cursor; reverse [start, upper)
  // with upper = the cursor (exclusive) or end.
  std::string lower = options.start;
  bool inclusive = true;
  std::string upper = options.end;  // "" = none
  if (cursor_key) {
    if (options.reverse) {
      upper = *cursor_key;
      if (upper.empty()) return page;  // nothing sorts before ""
    } else {
      if (*cursor_key >= lower) {
        lower = *cursor_key;
        inclusive = false;
      }
    }
  }
  if (!upper.empty() && lower >= upper) return page;
  // In a shard object the partition is the key range [prefix, prefix + KeyAfterAll()); the
  // bounds move into it (omap keys below carry the prefix, rows returned do not).
  if (!prefix.empty()) {
    lower.insert(0, prefix);
    upper = upper.empty() ? prefix + KeyAfterAll() : prefix + upper;
  }

  // Reverse keeps the last limit+1 live rows of a forward walk.
  std::deque<Row> tail;
  bool more_forward = false;
  std::vector<std::pair<std::string, std::string>> rows;
  bool more = true;
  size_t max = options.reverse ? kMaxPageRows : std::min(kMaxPageRows, options.limit + 1);
  bool done = false;
  while (!done) {
    STRATA_RETURN_IF_ERROR(ReadPage(oid, lower, inclusive, max, &rows, &more, prefix));
    for (auto& [key, raw] : rows) {
      if ((!upper.empty() && key >= upper) || key.compare(0, prefix.size(), prefix) != 0) {
        done = true;
        break;
      }
      StoredRow row;
      if (!DecodeRow(raw, &row)) return absl::DataLossError("row: unknown value format");
      if (Expired(row, now)) {
        expired.emplace_back(key, raw);
        continue;
      }
      if (options.reverse) {
        tail.push_back(Row{key.substr(prefix.size()), std::string(row.value)});
        if (tail.size() > options.limit + 1) tail.pop_front();
      } else {
        if (page.rows.size() == options.limit) {
          more_forward = true;
          done = true;
          break;
        }
        page.rows.push_back(Row{key.substr(prefix.size()), std::string(row.value)});
      }
    }
    if (done || !more || rows.empty()) break;
    lower = rows.back().first;
    inclusive = false;
    // Expired rows made the page short: read more, up to the cap.
    if (!options.reverse) max = kMaxPageRows;
  }
  if (options.reverse) {
    const bool has_more = tail.size() > options.limit;
    if (has_more) tail.pop_front();
    for (auto it = tail.rbegin(); it != tail.rend(); ++it) page.rows.push_back(std::move(*it));
    if (has_more) page.next_cursor = std::string(1, kScanCursor) + page.rows.back().clustering;
  } else if (more_forward ||
             (page.rows.size() == options.limit && more && !done)) {
    page.next_cursor = std::string(1, kScanCursor) + page.rows.back().clustering;
  }
  store_->ReapAsync(this, oid, std::move(expired));
  return page;
}

absl::Status RadosTable::List(const std::string& from, const std::string& to, size_t count,
                              std::vector<std::string>* oids, std::string* next, bool* at_end) {
  librados::ObjectCursor start, finish, after;
  if (!start.from_str(from) || !finish.from_str(to)) {
    return absl::InvalidArgumentError("range: not a range of this store");
  }
  oids->clear();
  std::vector<librados::ObjectItem> items;
  int r = io_.object_list(start, finish, count, {}, &items, &after);
  if (r < 0) return RadosError(r, "listing objects");
  for (librados::ObjectItem& item : items) oids->push_back(std::move(item.oid));
  *next = after.to_str();
  *at_end = after == finish || !(after < finish);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<KeyRange>> RadosTable::SplitRanges(int n) {
  if (n < 1) return absl::InvalidArgumentError("n: must be >= 1");
  std::vector<KeyRange> ranges;
  const librados::ObjectCursor begin = io_.object_list_begin();
  const librados::ObjectCursor end = io_.object_list_end();
  for (int m = 0; m < n; ++m) {
    librados::ObjectCursor s, e;
    // (slice index, slice count)
    io_.object_list_slice(begin, end, static_cast<size_t>(m), static_cast<size_t>(n), &s, &e);
    ranges.push_back(KeyRange{s.to_str(), e.to_str()});
  }
  return ranges;
}

absl::StatusOr<TableScanPage> RadosTable::ScanRange(const KeyRange& range, size_t limit,
                                                    std::string_view cursor_text,
                                                    const ReadOptions& options) {
  STRATA_RETURN_IF_ERROR(ValidatePageLimit(limit));
  STRATA_RETURN_IF_ERROR(CheckRead(options));
  RangeCursor cursor;
  if (cursor_text.empty()) {
    cursor.list_pos = range.begin;
  } else {
    STRATA_ASSIGN_OR_RETURN(cursor, DecodeRangeCursor(cursor_text));
  }
  const std::string end = range.end.empty() ? io_.object_list_end().to_str() : range.end;
  const Millis now = store_->clock->NowMillis();
  constexpr size_t kListBatch = 32;
  TableScanPage page;
  std::string list_pos = cursor.list_pos;
  bool resuming = !cursor.oid.empty() || !cursor.next_oid.empty();
  for (int guard = 0; guard < 1'000'000; ++guard) {
    std::vector<std::string> oids;
    std::string next;
    bool at_end = false;
    STRATA_RETURN_IF_ERROR(List(list_pos, end, kListBatch, &oids, &next, &at_end));
    size_t first = 0;
    bool first_after = false;  // the first object resumes after cursor.after
    if (resuming) {
      // Skip what the previous page returned: objects before the one in progress.
      for (size_t i = 0; i < oids.size(); ++i) {
        if (oids[i] == cursor.oid) {
          first = i;
          first_after = cursor.has_after;
          break;
        }
        if (!cursor.next_oid.empty() && oids[i] == cursor.next_oid) {
          first = i;
          break;
        }
      }
      resuming = false;
    }
    // Read each object's first page concurrently, then take rows in listing order.
    const size_t max = std::min(kMaxPageRows, limit - page.rows.size() + 1);
    std::vector<std::unique_ptr<PageRead>> reads;
    for (size_t i = first; i < oids.size(); ++i) {
      auto read = std::make_unique<PageRead>();
      const bool after = i == first && first_after;
      read->Prepare(after ? cursor.after : std::string(), !after, max);
      read->completion = librados::Rados::aio_create_completion();
      read_ops.fetch_add(1, std::memory_order_relaxed);
      int r = io_.aio_operate(oids[i], read->completion, &read->op, nullptr);
      if (r < 0) {
        read->completion->release();
        read->completion = nullptr;
        return RadosError(r, "reading rows");
      }
      reads.push_back(std::move(read));
    }
    for (size_t i = first; i < oids.size(); ++i) {
      PageRead& read = *reads[i - first];
      const std::string& oid = oids[i];
      std::string partition, clustering;
      int r = read.Wait();
      if (r == -ENOENT) continue;
      if (r < 0) return RadosError(r, "reading rows");
      std::vector<std::pair<std::string, std::string>> rows = read.Rows();
      bool more = read.more;
      std::vector<std::pair<std::string, std::string>> expired;
      std::optional<std::string> last_returned;
      if (i == first && first_after) last_returned = cursor.after;
      for (;;) {
        for (size_t k = 0; k < rows.size(); ++k) {
          auto& [key, raw] = rows[k];
          StoredRow row;
          if (!DecodeRow(raw, &row)) return absl::DataLossError("row: unknown value format");
          if (Expired(row, now)) {
            expired.emplace_back(key, raw);
            continue;
          }
          if (page.rows.size() == limit) {
            // Full, with more in this object: resume inside it.
            store_->ReapAsync(this, oid, std::move(expired));
            RangeCursor c;
            c.list_pos = list_pos;
            c.oid = oid;
            c.next_oid = i + 1 < oids.size() ? oids[i + 1] : "";
            c.has_after = true;
            c.after = *last_returned;
            page.next_cursor = EncodeRangeCursor(c);
            return page;
          }
          // Keys that are not this table's (not expected) are skipped.
          if (RowOf(oid, key, &partition, &clustering)) {
            page.rows.push_back(TableRow{partition, clustering, std::string(row.value)});
          }
          last_returned = key;
        }
        if (!more || rows.empty()) break;
        std::string lower = rows.back().first;
        STRATA_RETURN_IF_ERROR(ReadPage(oid, lower, false,
                                        std::min(kMaxPageRows, limit - page.rows.size() + 1),
                                        &rows, &more));
      }
      store_->ReapAsync(this, oid, std::move(expired));
      if (page.rows.size() == limit) {
        // Full at the end of this object: resume at the next one.
        RangeCursor c;
        if (i + 1 < oids.size()) {
          c.list_pos = list_pos;
          c.next_oid = oids[i + 1];
        } else if (!at_end) {
          c.list_pos = next;
        } else {
          return page;
        }
        page.next_cursor = EncodeRangeCursor(c);
        return page;
      }
    }
    if (at_end) return page;
    list_pos = next;
  }
  return absl::InternalError("scan range: listing does not end");
}

absl::StatusOr<TableStats> RadosTable::Stats() {
  // Bounded: list up to kMaxList objects; past that, count 4 of 256 slices of the hash space
  // and scale. Rows and bytes come from a sample of up to kSample objects (4 omap pages
  // each), scaled to the object count.
  constexpr size_t kMaxList = 2000;
  constexpr size_t kSample = 64;
  std::vector<std::string> objects;
  uint64_t total_objects = 0;
  {
    std::string pos = io_.object_list_begin().to_str();
    const std::string end = io_.object_list_end().to_str();
    bool at_end = false;
    while (!at_end && objects.size() < kMaxList) {
      std::vector<std::string> oids;
      std::string next;
      STRATA_RETURN_IF_ERROR(List(pos, end, 256, &oids, &next, &at_end));
      objects.insert(objects.end(), oids.begin(), oids.end());
      pos = next;
    }
    if (at_end) {
      total_objects = objects.size();
    } else {
      objects.clear();
      const librados::ObjectCursor begin = io_.object_list_begin();
      const librados::ObjectCursor finish = io_.object_list_end();
      for (size_t m : {0, 64, 128, 192}) {
        librados::ObjectCursor s, e;
        io_.object_list_slice(begin, finish, m, 256, &s, &e);  // slice m of 256
        std::string p = s.to_str();
        bool slice_end = false;
        while (!slice_end) {
          std::vector<std::string> oids;
          std::string next;
          STRATA_RETURN_IF_ERROR(List(p, e.to_str(), 256, &oids, &next, &slice_end));
          objects.insert(objects.end(), oids.begin(), oids.end());
          p = next;
        }
      }
      total_objects = objects.size() * 64;
    }
  }
  if (objects.empty()) return TableStats{};
  const size_t step = std::max<size_t>(1, objects.size() / kSample);
  uint64_t sampled = 0, rows = 0, bytes = 0;
  const Millis now = store_->clock->NowMillis();
  for (size_t i = 0; i < objects.size() && sampled < kSample; i += step) {
    ++sampled;
    std::vector<std::pair<std::string, std::string>> page;
    bool more = false;
    std::string lower;
    bool inclusive = true;
    // A shard object holds many partitions: read more of it (32k rows; beyond that a
    // sharded table's count is low).
    const int max_pages = shards_ == 0 ? 4 : 32;
    for (int p = 0; p < max_pages; ++p) {
      STRATA_RETURN_IF_ERROR(ReadPage(objects[i], lower, inclusive, kMaxPageRows, &page, &more));
      for (auto& [k, v] : page) {
        StoredRow row;
        if (LiveRow(v, now, &row)) ++rows;
        bytes += k.size() + v.size();
      }
      if (!more || page.empty()) break;
      lower = page.back().first;
      inclusive = false;
    }
  }
  TableStats stats;
  stats.approximate_rows = rows * total_objects / sampled;
  stats.disk_bytes = bytes * total_objects / sampled;
  return stats;
}

// ---------------------------------------------------------------------------------------
// Reaper

absl::StatusOr<RadosReapStats> RadosRowStore::Impl::Sweep(size_t max_objects_per_table) {
  RadosReapStats stats;
  for (RadosTable* table : Tables()) {
    std::lock_guard<std::mutex> sweep_lock(table->sweep_mu);
    const std::string end = table->io().object_list_end().to_str();
    if (table->sweep_pos.empty()) table->sweep_pos = table->io().object_list_begin().to_str();
    size_t visited = 0;
    bool at_end = false;
    while (visited < max_objects_per_table && !at_end) {
      std::vector<std::string> oids;
      std::string next;
      STRATA_RETURN_IF_ERROR(table->List(table->sweep_pos, end,
                                         std::min<size_t>(256, max_objects_per_table - visited),
                                         &oids, &next, &at_end));
      for (const std::string& oid : oids) {
        ++visited;
        ++stats.objects_visited;
        // Reads the whole omap (bounded partitions) with the object's version.
        const Millis now = clock->NowMillis();
        std::vector<std::pair<std::string, std::string>> expired;
        size_t keys = 0;
        uint64_t version = 0;
        std::string lower;
        bool inclusive = true;
        bool gone = false;
        for (;;) {
          PageRead read;
          read.Prepare(lower, inclusive, kMaxPageRows);
          read.completion = librados::Rados::aio_create_completion();
          table->read_ops.fetch_add(1, std::memory_order_relaxed);
          int r = table->io().aio_operate(oid, read.completion, &read.op, nullptr);
          if (r < 0) return RadosError(r, "reaper: reading rows");
          read.completion->wait_for_complete();
          if (inclusive) version = read.completion->get_version64();
          r = read.Wait();
          if (r == -ENOENT) {
            gone = true;
            break;
          }
          if (r < 0) return RadosError(r, "reaper: reading rows");
          std::vector<std::pair<std::string, std::string>> rows = read.Rows();
          keys += rows.size();
          for (auto& [k, v] : rows) {
            StoredRow row;
            if (DecodeRow(v, &row) && Expired(row, now)) expired.emplace_back(k, v);
          }
          if (!read.more || rows.empty()) break;
          lower = rows.back().first;
          inclusive = false;
        }
        if (gone) continue;
        if (keys == 0) {
          // No rows: remove the object, unless it changed since it was read.
          rados_write_op_t op = rados_create_write_op();
          rados_write_op_assert_version(op, version);
          rados_write_op_remove(op);
          int r = rados_write_op_operate(op, table->cio(), oid.c_str(), nullptr, 0);
          rados_release_write_op(op);
          if (r == 0) ++stats.objects_removed;
          continue;
        }
        for (size_t b = 0; b < expired.size(); b += 256) {
          Plan plan;
          for (size_t k = b; k < std::min(expired.size(), b + 256); ++k) {
            plan.equal.emplace_back(expired[k].first, expired[k].second);
            plan.ops.push_back({Plan::Kind::kRemove, expired[k].first, ""});
          }
          plan.has_remove = true;
          WriteOp op(plan);
          int r = rados_write_op_operate(op.get(), table->cio(), oid.c_str(), nullptr, 0);
          if (r == 0) stats.rows_removed += plan.ops.size();
          // ECANCELED: a row was rewritten meanwhile; the next sweep looks again.
        }
      }
      table->sweep_pos = at_end ? std::string() : next;
    }
  }
  return stats;
}

void RadosRowStore::Impl::ReaperLoop() {
  std::unique_lock<std::mutex> lock(stop_mu);
  while (!stopping) {
    stop_cv.wait_for(lock, std::chrono::milliseconds(options.reap_interval_ms),
                     [&] { return stopping; });
    if (stopping) return;
    lock.unlock();
    absl::StatusOr<RadosReapStats> stats = Sweep(options.reap_objects_per_pass);
    if (!stats.ok()) {
      STRATA_LOG_WARN("rados reaper pass failed", "error", stats.status().ToString());
    }
    lock.lock();
  }
}

// ---------------------------------------------------------------------------------------

RadosRowStore::RadosRowStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RadosRowStore::~RadosRowStore() = default;

absl::StatusOr<std::unique_ptr<RadosRowStore>> RadosRowStore::Open(
    const RadosRowStoreOptions& options) {
  if (options.pool_prefix.empty()) {
    return absl::InvalidArgumentError("pool_prefix: must not be empty");
  }
  for (char c : options.pool_prefix) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError("pool_prefix: must be characters of [A-Za-z0-9._-]");
    }
  }
  if (options.op_timeout_ms <= 0) {
    return absl::InvalidArgumentError("op_timeout_ms: must be > 0");
  }
  if (options.max_in_flight == 0) {
    return absl::InvalidArgumentError("max_in_flight: must be > 0");
  }
  if (options.max_conditional_attempts < 1) {
    return absl::InvalidArgumentError("max_conditional_attempts: must be >= 1");
  }
  for (auto [field, n] : {std::pair<const char*, uint32_t>{"live_shards", options.live_shards},
                          {"index_shards", options.index_shards},
                          {"compressed_shards", options.compressed_shards}}) {
    if (n > kMaxShards) return absl::InvalidArgumentError(std::string(field) + ": must be 0..65536");
  }
  for (const auto& [name, n] : options.table_shards) {
    if (n > kMaxShards) {
      return absl::InvalidArgumentError("table_shards[" + name + "]: must be 0..65536");
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->clock = options.clock != nullptr ? options.clock : SystemClock::Default();
  const std::string where =
      options.ceph_conf.empty() ? std::string("the default ceph.conf") : options.ceph_conf;
  int r = rados_create2(&impl->cluster, "ceph", options.client_name.c_str(), 0);
  if (r < 0) {
    impl->cluster = nullptr;
    return RadosError(r, "creating a client for " + options.client_name);
  }
  r = rados_conf_read_file(impl->cluster,
                           options.ceph_conf.empty() ? nullptr : options.ceph_conf.c_str());
  if (r < 0) return RadosError(r, "reading " + where);
  const std::string timeout = std::to_string((options.op_timeout_ms + 999) / 1000);
  for (const char* option : {"rados_osd_op_timeout", "rados_mon_op_timeout",
                             "client_mount_timeout"}) {
    r = rados_conf_set(impl->cluster, option, timeout.c_str());
    if (r < 0) return RadosError(r, std::string("setting ") + option);
  }
  r = rados_connect(impl->cluster);
  if (r < 0) {
    absl::Status s = RadosError(r, "connecting to the Ceph cluster of " + where);
    return absl::UnavailableError(s.message());
  }
  librados::Rados::from_rados_t(impl->cluster, impl->rados);
  STRATA_ASSIGN_OR_RETURN(impl->catalog_cio,
                          impl->OpenPool(options.pool_prefix + "." +
                                         ProfileSuffix(TableProfile::kIndex)));
  librados::IoCtx::from_rados_ioctx_t(impl->catalog_cio, impl->catalog);
  if (options.reap_interval_ms > 0) {
    Impl* raw = impl.get();
    impl->reaper = std::thread([raw] { raw->ReaperLoop(); });
  }
  return std::unique_ptr<RadosRowStore>(new RadosRowStore(std::move(impl)));
}

absl::StatusOr<Table*> RadosRowStore::OpenTable(const TableOptions& options) {
  return impl_->OpenTable(options);
}

absl::Status RadosRowStore::Write(std::span<const PartitionWrite> writes) {
  return impl_->Write(writes);
}

absl::StatusOr<std::unique_ptr<Snapshot>> RadosRowStore::NewSnapshot() {
  return absl::UnimplementedError(
      "snapshot: the RADOS row store has no consistent snapshot across objects");
}

absl::Status RadosRowStore::Sync() { return absl::OkStatus(); }

void RadosRowStore::ExportMetrics(MetricsRegistry* metrics) {
  using Samples = std::vector<std::pair<std::string, double>>;
  Impl* impl = impl_.get();
  metrics->AddGauge("strata_rados_operations_total",
                    "Operations sent to the OSDs per table since start (a counter)", [impl] {
                      Samples out;
                      for (RadosTable* t : impl->Tables()) {
                        const std::string table = "table=\"" + t->name() + "\"";
                        out.emplace_back(table + ",op=\"read\"",
                                         static_cast<double>(t->read_ops.load()));
                        out.emplace_back(table + ",op=\"write\"",
                                         static_cast<double>(t->write_ops.load()));
                      }
                      return out;
                    });
  metrics->AddGauge(
      "strata_rados_write_retries_total",
      "Writes sent again because a conditional write's guess or condition failed (a counter)",
      [impl] {
        Samples out;
        for (RadosTable* t : impl->Tables()) {
          out.emplace_back("table=\"" + t->name() + "\"",
                           static_cast<double>(t->write_retries.load()));
        }
        return out;
      });
}

absl::StatusOr<RadosReapStats> RadosRowStore::ReapExpired() {
  // A whole sweep: from the start of every table, to its end.
  for (RadosTable* table : impl_->Tables()) {
    std::lock_guard<std::mutex> lock(table->sweep_mu);
    table->sweep_pos.clear();
  }
  return impl_->Sweep(SIZE_MAX);
}

absl::StatusOr<RadosOmapReport> RadosRowStore::CountOmapKeys(size_t top) {
  RadosOmapReport report;
  // Min-heap on keys holding the `top` largest objects seen so far.
  auto larger = [](const RadosOmapReport::ObjectKeys& a, const RadosOmapReport::ObjectKeys& b) {
    return a.keys > b.keys;
  };
  std::vector<RadosOmapReport::ObjectKeys> heap;
  for (TableProfile profile :
       {TableProfile::kLive, TableProfile::kIndex, TableProfile::kCompressed}) {
    const std::string pool = PoolName(profile);
    if (rados_pool_lookup(impl_->cluster, pool.c_str()) < 0) continue;
    librados::IoCtx list_io;
    int r = impl_->rados.ioctx_create(pool.c_str(), list_io);
    if (r < 0) return RadosError(r, "opening pool " + pool);
    librados::IoCtx read_io;
    read_io.dup(list_io);
    list_io.set_namespace(librados::all_nspaces);
    std::map<std::string, RadosOmapReport::TableKeys> tables;
    try {
      for (librados::NObjectIterator it = list_io.nobjects_begin(); it != list_io.nobjects_end();
           ++it) {
        read_io.set_namespace(it->get_nspace());
        uint64_t keys = 0;
        std::string after;
        bool more = true;
        while (more) {
          std::set<std::string> page;
          int rval = 0;
          librados::ObjectReadOperation op;
          op.omap_get_keys2(after, kMaxPageRows, &page, &more, &rval);
          r = read_io.operate(it->get_oid(), &op, nullptr);
          if (r == -ENOENT) break;  // removed since it was listed
          if (r < 0) return RadosError(r, "reading the omap keys of an object of " + pool);
          if (rval < 0) return RadosError(rval, "reading the omap keys of an object of " + pool);
          keys += page.size();
          if (page.empty()) break;
          after = *page.rbegin();
        }
        RadosOmapReport::TableKeys& t = tables[it->get_nspace()];
        t.pool = pool;
        t.table = it->get_nspace();
        ++t.objects;
        t.keys += keys;
        t.max_keys = std::max(t.max_keys, keys);
        ++report.objects;
        report.keys += keys;
        size_t bucket = 0;
        if (keys > 0) {
          bucket = 1;
          for (uint64_t bound = 10; keys > bound && bucket + 1 < RadosOmapReport::kBuckets;
               bound *= 10) {
            ++bucket;
          }
        }
        ++report.histogram[bucket];
        if (top > 0 && (heap.size() < top || keys > heap.front().keys)) {
          heap.push_back({pool, it->get_nspace(), it->get_oid(), keys});
          std::push_heap(heap.begin(), heap.end(), larger);
          if (heap.size() > top) {
            std::pop_heap(heap.begin(), heap.end(), larger);
            heap.pop_back();
          }
        }
      }
    } catch (const std::exception& e) {
      // The object iterator reports listing errors by throwing.
      return absl::UnavailableError("rados: listing the objects of " + pool + ": " + e.what());
    }
    for (auto& [name, t] : tables) report.tables.push_back(std::move(t));
  }
  std::sort_heap(heap.begin(), heap.end(), larger);
  report.largest = std::move(heap);
  return report;
}

std::string RadosRowStore::PoolName(TableProfile profile) const {
  return impl_->options.pool_prefix + "." + ProfileSuffix(profile);
}

absl::StatusOr<uint32_t> RadosRowStore::ShardsOf(std::string_view table_name) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->tables.find(std::string(table_name));
  if (it == impl_->tables.end()) return absl::NotFoundError("table: not open");
  return it->second->shards();
}

absl::StatusOr<std::vector<std::string>> RadosRowStore::RawKeysForTesting(
    std::string_view table_name, std::string_view partition) {
  RadosTable* table = nullptr;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->tables.find(std::string(table_name));
    if (it == impl_->tables.end()) return absl::NotFoundError("table: not open");
    table = it->second.get();
  }
  std::vector<std::string> keys;
  std::vector<std::pair<std::string, std::string>> rows;
  bool more = true;
  const std::string prefix = table->KeyPrefix(partition);
  std::string lower = prefix;
  bool inclusive = true;
  while (more) {
    STRATA_RETURN_IF_ERROR(table->ReadPage(table->ObjectOf(partition), lower, inclusive,
                                           kMaxPageRows, &rows, &more, prefix));
    for (auto& [k, v] : rows) {
      if (k.compare(0, prefix.size(), prefix) == 0) keys.push_back(k.substr(prefix.size()));
    }
    if (rows.empty()) break;
    lower = rows.back().first;
    inclusive = false;
  }
  return keys;
}

absl::StatusOr<bool> RadosRowStore::ObjectExistsForTesting(std::string_view table_name,
                                                           std::string_view partition) {
  RadosTable* table = nullptr;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->tables.find(std::string(table_name));
    if (it == impl_->tables.end()) return absl::NotFoundError("table: not open");
    table = it->second.get();
  }
  uint64_t size = 0;
  time_t mtime = 0;
  int r = rados_stat(table->cio(), table->ObjectOf(partition).c_str(), &size, &mtime);
  if (r == -ENOENT) return false;
  if (r < 0) return RadosError(r, "stat");
  return true;
}

}  // namespace strata::store
