// RadosRowStore: the distributed RowStore, on Ceph RADOS (librados). See docs/row-store.md
// ("The RADOS backend") for the object layout, the value format and the cost of each call.
//
// Layout: one RADOS object per (table, partition), rows in its omap (omap key = clustering
// key, omap value = a 17-byte header (format, version, expiry) + the value); or, for a
// sharded table, N objects per table, a partition living in object `s<hash % N>` under the
// omap keys `u16 BE length | partition | clustering` (one contiguous key range each), so that
// RowStore::Write can send the batches of all partitions of one shard object in ONE
// operation. Tables live in
// one pool per table family, chosen by the table's profile: `<pool_prefix>.live`,
// `<pool_prefix>.index`, `<pool_prefix>.compressed`, so each family can get its own pg count,
// replication and device class. Inside a pool each table is a RADOS namespace (its name), so
// listing a table's objects never sees another table's. The catalog (table name -> profile)
// is the object `tables` in the default namespace of `<pool_prefix>.index`.
//
// Atomicity: a WriteBatch is one ObjectWriteOperation on the partition's object. Conditions
// (WriteBatch::Expect) and PutIfNewer are checked by omap_cmp in the same operation: first
// optimistically (the expected bytes are guessed: a plain row, an older version), then, if the
// guess fails, by reading the rows and writing with omap_cmp on exactly the bytes read, retried
// a bounded number of times. RowStore::Write sends the batches of different partitions
// concurrently (aio); batches of one partition go in their order.
//
// Expiry: rows carry their expiry; every read hides expired rows. They are removed (a) lazily,
// when a read sees them (an asynchronous conditional delete: omap_cmp on the exact bytes
// seen, so a row rewritten meanwhile stays), and (b) by a background sweep every
// `reap_interval_ms` that walks at most `reap_objects_per_pass` objects per table and also
// removes objects left with no rows. ReapExpired() runs a whole sweep at once.
//
// Not supported: snapshots (NewSnapshot answers Unimplemented; RADOS has no cross-object
// snapshot). A reverse scan reads the bounds forward (omap iterates forward only): a reverse
// page costs ceil(rows in [start, cursor) / 1024) omap reads. Partitions are bounded by design
// (live rows roll up), which keeps that small.
//
// Durability: a write returns once the OSDs acknowledged it (committed on every replica of
// the placement group); Sync() has nothing to add. Errors: a lost connection or an operation
// past `op_timeout_ms` is Unavailable (its outcome unknown: all or nothing of the batch).
//
// Thread safety: every method is thread-safe. Tables must not outlive the store. librados
// headers are private to this folder: nothing here exposes them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/store/row_store.h"

namespace strata::store {

struct RadosRowStoreOptions {
  // Path of ceph.conf (monitors, keyring). Empty = librados' default search
  // ($CEPH_CONF, /etc/ceph/ceph.conf, ...). Default empty.
  std::string ceph_conf;
  // The cephx user, e.g. "client.admin" or "client.strata". Default "client.admin".
  std::string client_name = "client.admin";
  // Prefix of the pool names (`<prefix>.live`, `.index`, `.compressed`), [A-Za-z0-9._-]+.
  // Missing pools are created with the cluster's default pg count and the application tag
  // `strata`; create them beforehand to choose pg counts, replication or a device class.
  // Default "strata.rows".
  std::string pool_prefix = "strata.rows";

  // Shards: how many RADOS objects hold a new table's partitions. 0 = one object per
  // partition. N > 0 = N shard objects, each holding many partitions, so RowStore::Write
  // sends one operation per shard object touched instead of one per partition (ingest
  // spread over many small partitions). Chosen when a table is first opened and stored in
  // the catalog: a table keeps its stored shard count whatever these say later (see
  // OpenTable). Keys per shard object ~ rows of the table / N: give N >= rows / 100k to
  // keep objects under ~100k omap keys. Defaults: live tables 64 (small rows, bounded by the
  // roll-up), index and compressed tables 0 (large values, or partitions read by scans that
  // gain nothing from sharing an object). 1..65536, or 0.
  uint32_t live_shards = 64;
  uint32_t index_shards = 0;
  uint32_t compressed_shards = 0;
  // Per table name, overrides the profile's count above (e.g. 0 for a live table whose row
  // count is unbounded). Default empty.
  std::map<std::string, uint32_t> table_shards;

  // Clock that decides expiry (reads and the reaper). Must outlive the store.
  // Default nullptr = SystemClock::Default().
  Clock* clock = nullptr;

  // Milliseconds before an OSD or monitor operation (and the first connection) gives up
  // with Unavailable instead of waiting for a dead OSD forever (rados_osd_op_timeout,
  // rados_mon_op_timeout, client_mount_timeout; rounded up to whole seconds). Default 10 s.
  int64_t op_timeout_ms = 10'000;
  // Most operations RowStore::Write keeps in flight at once. Default 128.
  size_t max_in_flight = 128;
  // Read-then-conditional-write attempts of a batch whose conditions or PutIfNewer rows
  // keep changing underneath it, before Aborted. Default 16.
  int max_conditional_attempts = 16;

  // Background reaper: every `reap_interval_ms`, each open table's next
  // `reap_objects_per_pass` objects (in listing order, resuming where the last pass
  // stopped) lose their expired rows, and objects without rows are removed. 0 = no
  // background sweep (reads still remove what they see). Defaults 60 s and 1000.
  int64_t reap_interval_ms = 60'000;
  size_t reap_objects_per_pass = 1000;
  // Reads that see expired rows delete them asynchronously (at most 256 per read).
  // Default true.
  bool reap_on_read = true;

  // Deletes every pool of `pool_prefix` when the store is destroyed. For tests, which use
  // a fresh prefix each; the cluster must allow it (`mon allow pool delete`). Default false.
  bool delete_pools_on_close = false;
};

// What CountOmapKeys found: omap keys per RADOS object over every pool of the store's
// prefix (all namespaces, so tables not open in this process count too, and the catalog).
struct RadosOmapReport {
  struct ObjectKeys {
    std::string pool;
    std::string table;   // the object's namespace ("" = the catalog's)
    std::string object;  // its name (shard objects: "s<N>"; partitions: the raw key bytes)
    uint64_t keys = 0;
  };
  struct TableKeys {
    std::string pool;
    std::string table;
    uint64_t objects = 0;
    uint64_t keys = 0;
    uint64_t max_keys = 0;
  };
  uint64_t objects = 0;
  uint64_t keys = 0;
  // Objects by omap key count: [0] no keys, [1] 1..10, [2] 11..100, ..., [i] up to 10^i,
  // [6] 100,001..1,000,000; the last bucket holds everything larger.
  static constexpr size_t kBuckets = 8;
  uint64_t histogram[kBuckets] = {};
  std::vector<TableKeys> tables;    // by pool, then table
  std::vector<ObjectKeys> largest;  // the `top` largest objects, largest first
};

// What one sweep of the reaper removed.
struct RadosReapStats {
  uint64_t objects_visited = 0;
  uint64_t rows_removed = 0;
  uint64_t objects_removed = 0;  // objects left without rows
};

class RadosRowStore final : public RowStore {
 public:
  // Connects to the cluster and opens (creating if missing) the catalog pool.
  // InvalidArgument for bad options; Unavailable if the cluster cannot be reached within
  // op_timeout_ms (the message names the conf file).
  static absl::StatusOr<std::unique_ptr<RadosRowStore>> Open(const RadosRowStoreOptions& options);

  // Stops the reaper, waits for asynchronous deletes, and disconnects.
  ~RadosRowStore() override;

  RadosRowStore(const RadosRowStore&) = delete;
  RadosRowStore& operator=(const RadosRowStore&) = delete;

  // A table keeps the profile and the shard count it was created with (stored in the
  // catalog): opening it with another profile, or after the shard options changed, returns
  // the existing table, in its original pool and layout (a warning is logged for shards).
  absl::StatusOr<Table*> OpenTable(const TableOptions& options) override;
  // Batches with conditions are applied first, one by one; the others only after all of
  // them succeeded, concurrently (see RowStore::Write).
  absl::Status Write(std::span<const PartitionWrite> writes) override;
  // Unimplemented: RADOS has no snapshot across objects.
  absl::StatusOr<std::unique_ptr<Snapshot>> NewSnapshot() override;
  // OK: every acknowledged write is already committed by the OSDs.
  absl::Status Sync() override;
  // strata_rados_operations_total{table,op="read"|"write"} and
  // strata_rados_write_retries_total{table}: what each table costs the OSDs.
  void ExportMetrics(MetricsRegistry* metrics) override;

  // One whole sweep of the reaper over every open table, now, in the calling thread.
  absl::StatusOr<RadosReapStats> ReapExpired();

  // Lists every object of the pools `<pool_prefix>.live|index|compressed` (missing pools
  // are skipped) and counts each one's omap keys, in pages of at most 1024 (expired rows not
  // yet reaped count: the OSD's view). `top`: how many of the largest objects to name.
  // Reads only; costs one listing per pool and ceil(keys / 1024) + 1 reads per object, in
  // the calling thread (a report for operators and benchmarks, not for a request path).
  absl::StatusOr<RadosOmapReport> CountOmapKeys(size_t top = 10);

  // The pool that holds `profile`'s tables, e.g. "strata.rows.live".
  std::string PoolName(TableProfile profile) const;
  // The stored shard count of an open table (0 = one object per partition); NotFound if
  // the table is not open.
  absl::StatusOr<uint32_t> ShardsOf(std::string_view table) const;

  // For tests: the omap keys stored for a partition, expired rows included (the reaper's
  // view). Empty when the object does not exist.
  absl::StatusOr<std::vector<std::string>> RawKeysForTesting(std::string_view table,
                                                             std::string_view partition);
  // For tests: whether the partition's object (its shard object, when sharded) exists.
  absl::StatusOr<bool> ObjectExistsForTesting(std::string_view table, std::string_view partition);

  struct Impl;

 private:
  explicit RadosRowStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::store
