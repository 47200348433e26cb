// The asset metadata service: asset types with versioned JSON schemas, schema-validated and
// versioned JSON assets with UUIDv7 ids, paged by type and creation-time bucket, searched
// through a secondary index written in the same atomic batch as the asset, and a change feed
// per type. docs/assets.md has the data path; rows.h the row layout.
//
// What correctness rests on (row_store.h):
//  * One atomic single-partition batch per write: the asset row, its index entries, the
//    previous version and the change events (an outbox row) live in the asset's bucket
//    partition, so no reader ever sees an index entry without its row or the reverse, and a
//    crash leaves all or nothing.
//  * WriteBatch::Expect (compare-and-set) on the asset row for every update and delete: the
//    batch applies only if the row still holds the bytes that were read. If-Match is this
//    check with the client's version; without If-Match a lost race is retried. The striped
//    in-process lock below only saves retries and keeps one asset's events in version
//    order on one node; it is not needed for correctness.
//  * Type definitions are updated the same way (Expect on the current definition row).
//  * Creates need no condition: ids are unique (UUIDv7 from one generator per process, with
//    74 random-or-counter bits).
//  * Change events are first written to the outbox row inside the batch, then published to
//    the type's queue topic ("assets.<type>.changes", 1 partition) and the outbox row
//    deleted, by the service's forwarder thread in write order (Forward). A crash in between
//    leaves the outbox row; Open publishes what is left. So the feed is at-least-once: an
//    event may appear twice, never not at all.
//
// Thread safety: every method is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/assets/asset_id.h"
#include "strata/assets/json.h"
#include "strata/assets/rows.h"
#include "strata/assets/schema.h"
#include "strata/assets/where.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/store/queue.h"
#include "strata/store/row_store.h"

namespace strata::assets {

struct AssetOptions {
  // Largest payload (compact JSON bytes after parsing), bytes. Default 256 KiB.
  size_t max_payload_bytes = 256 * 1024;
  // Deepest nesting of a payload (objects and arrays), levels. Default 32.
  int max_depth = 32;
  // Largest schema document, bytes, and its nesting in schema levels. Defaults 64 KiB, 16.
  size_t max_schema_bytes = 64 * 1024;
  int max_schema_depth = 16;
  // Most indexed pointers per type. Default 16.
  size_t max_indexed = 16;
  // Most assets in one batch create. Default 1000 (at most store::kMaxPublishBatch).
  size_t max_batch = 1000;
  // Previous versions kept per asset when the type does not say. Default 10; at most 1000.
  uint32_t default_keep_versions = 10;
  // Index entries a search may examine for one page before it returns what it has (with a
  // cursor): bounds the work of a selective condition on a non-selective index. Default 10000.
  size_t max_examined_per_page = 10000;
  // Most assets ProcessMany writes in one compare-and-set batch (a job's poll of a bucket is
  // written in batches of this many). The store applies one write at a time, so a request's
  // write waits out the batch being written: smaller batches, shorter waits, a little more
  // work per asset. Default 25.
  size_t max_process_write = 25;
  // Change events are published from the outbox by a thread of the service, off the
  // writer's path (a request's update answers after its one write; the publish waits for
  // the change feed and the store's write slot on its own). At most this many writes'
  // events wait for it; past that a writer waits for room (backpressure). 0 = every
  // writer publishes its own before it answers. Changes() reads after what is waiting is
  // published, so a client reading the feed sees its own writes. Default 1024.
  size_t max_queued_forwards = 1024;
  // Seeds the id generator's random bits (tests); 0 = random.
  uint64_t id_seed = 0;
};

struct IndexDef {
  std::string pointer;
  std::vector<std::string> tokens;
  uint16_t id = 0;     // index id in keys; never reused within a type
  bool ready = false;  // false: added after assets existed, not yet backfilled
};

struct AssetType {
  std::string name;
  uint32_t version = 0;
  JsonValue schema_doc;
  Schema schema;
  std::vector<IndexDef> indexes;
  BucketUnit bucket = BucketUnit::kDay;
  uint32_t keep_versions = 10;
  Millis created_at = 0;
  Millis updated_at = 0;
  uint16_t next_index_id = 1;

  // The type as stored (and as GET shows it).
  std::string ToJson() const;
};

struct TypeWithHistory {
  std::shared_ptr<const AssetType> current;
  std::vector<std::string> history_json;  // every version's definition, newest first
};

struct Asset {
  std::string type;
  AssetId id;
  AssetRow row;
};

struct ListQuery {
  size_t limit = 100;           // 1..1000
  std::optional<Millis> since;  // creation time >= since
  std::optional<Millis> until;  // creation time < until
  std::string cursor;
  std::vector<std::string> where;  // conditions as written
  // Only the ids are wanted (`fields=id`): the page fills `ids`, not `assets`, and a listing
  // without `where` reads no asset rows (index 0, rows.h).
  bool ids_only = false;
};

struct AssetPage {
  std::vector<Asset> assets;
  std::vector<AssetId> ids;  // instead of `assets` when the query was ids_only
  std::string next_cursor;   // empty at the end
};

struct BatchResult {
  // One per input element, in order: the new id, or nullopt if rejected.
  std::vector<std::optional<AssetId>> ids;
  std::vector<std::pair<size_t, std::string>> rejected;  // (index, error)
  Millis created_at = 0;
  uint32_t schema_version = 0;
};

// Marks an asset as processed by a job, in the same atomic batch as the job's effect.
struct JobMark {
  uint64_t job_id = 0;
  // When the mark expires (ms; 0 = never): after the job can no longer redeliver.
  Millis expire_at = 0;
  // The mark holds the asset's row as committed by this step (else it is empty), so what
  // the job did can be read back exactly once per asset, crash or not (ScanJobRows): the
  // export processor builds its file from these.
  bool keep_row = false;
};

struct ProcessResult {
  enum class Kind {
    kChanged,      // a new version was written (with the mark)
    kUnchanged,    // the processor changed nothing; only the mark was written
    kAlreadyDone,  // the mark was there: an earlier delivery of this event took effect
    kGone,         // the asset no longer exists
  };
  Kind kind = Kind::kUnchanged;
  uint32_t version = 0;  // the asset's version after the call
  int conflicts = 0;     // writes that lost a race with another writer and were redone
};

// What ProcessMany did: one result per id given (in order), and how many of its batches
// lost a race (a condition failed: nothing of that batch was applied and its assets were
// processed one by one instead).
struct ProcessManyResult {
  std::vector<absl::StatusOr<ProcessResult>> results;
  int batch_conflicts = 0;
};

struct ChangeRecord {
  uint64_t offset = 0;
  std::string event_json;
};

class AssetService {
 public:
  // Opens the tables (asset_types, assets) and publishes change events a crash left in
  // outbox rows. The store, queue, clock and metrics must outlive the service.
  static absl::StatusOr<std::unique_ptr<AssetService>> Open(store::RowStore* rows,
                                                            store::Queue* queue, Clock* clock,
                                                            MetricsRegistry* metrics,
                                                            AssetOptions options = {});
  // Publishes the change events still waiting (max_queued_forwards), then stops.
  ~AssetService();

  // PUT /v1/asset-types/{type}: `body` is {"schema", "indexed"?, "bucket"?,
  // "keep_versions"?}. Creates the type (version 1) or a new version; an identical
  // definition changes nothing. "bucket" cannot change once set.
  absl::StatusOr<std::shared_ptr<const AssetType>> PutType(std::string_view type,
                                                           std::string_view body);
  absl::StatusOr<TypeWithHistory> GetType(std::string_view type);

  absl::StatusOr<Asset> Create(std::string_view type, std::string_view payload);
  absl::StatusOr<BatchResult> CreateBatch(std::string_view type, std::string_view body);
  absl::StatusOr<Asset> Get(std::string_view type, std::string_view id);
  // Replace (PUT) or merge-patch (PATCH, RFC 7396). `if_match`: the version the client
  // read; a different current version is FailedPrecondition ("If-Match: ..."), nothing
  // changed.
  absl::StatusOr<Asset> Replace(std::string_view type, std::string_view id,
                                std::string_view payload, std::optional<uint32_t> if_match);
  absl::StatusOr<Asset> Patch(std::string_view type, std::string_view id, std::string_view patch,
                              std::optional<uint32_t> if_match);
  absl::Status Delete(std::string_view type, std::string_view id, std::optional<uint32_t> if_match);
  // One reprocessing step, exactly once in effect per (job, asset): reads the asset, runs
  // `fn` on its payload (true = changed; an error is returned as is, nothing written),
  // validates the result against the type's current schema, and writes the new version
  // together with the job's mark under compare-and-set. A concurrent production write makes
  // the batch fail; the asset is then re-read and `fn` applied again to the new payload
  // (counted in `conflicts`), so a production update is never overwritten. If the mark is
  // already there, nothing is done (kAlreadyDone). Takes no in-process lock.
  // `fn` is given the row read (version, times) with the payload parsed from it. With
  // `rebuild_index`, an asset whose stored index entries differ from what the type's current
  // definition gives its payload gets them rewritten in the same batch (same version, no
  // change event; kChanged even if `fn` changed nothing): the reindex processor.
  absl::StatusOr<ProcessResult> ProcessOnce(
      std::string_view type, std::string_view id, const JobMark& mark,
      const std::function<absl::StatusOr<bool>(const AssetRow& row, JsonValue* payload)>& fn,
      bool rebuild_index = false);
  // Many reprocessing steps of one job at once, each with ProcessOnce's guarantees: the
  // assets of one partition (bucket) are read together (a MultiGet of their rows and job
  // marks, up to max_process_write assets at a time) and their new versions and marks
  // written in ONE compare-and-set batch (every
  // asset's row must be what was read and its mark absent) with one outbox row for their
  // change events. If any condition fails -- a production write came between the read and
  // the write -- nothing of that batch is applied and each of its assets goes through
  // ProcessOnce (re-read, `fn` run again on the new payload): a production update is never
  // overwritten, and a crash leaves each asset's effect and mark together or not at all.
  // An id given twice is processed once (the later one is kAlreadyDone). `fn` gets the
  // index of the id in `ids`. Per-asset errors (bad id, processor, schema, size) are in
  // that asset's result and write nothing for it; the call itself fails only if the type
  // cannot be loaded. No rebuild_index here (reindex goes through ProcessOnce).
  using ProcessManyFn =
      std::function<absl::StatusOr<bool>(size_t index, const AssetRow& row, JsonValue* payload)>;
  absl::StatusOr<ProcessManyResult> ProcessMany(std::string_view type,
                                                std::span<const std::string> ids,
                                                const JobMark& mark, const ProcessManyFn& fn);
  // Calls `fn` with every asset a job marked with keep_row and the row its mark holds (as
  // its step committed it), bucket by bucket from the newest, in id order within a bucket.
  // Stops at, and answers, the first error of `fn`. Marks that expired are not seen.
  absl::Status ScanJobRows(
      std::string_view type, uint64_t job_id,
      const std::function<absl::Status(const AssetId& id, const AssetRow& row)>& fn);
  // Removes every mark of the job (one range delete per bucket of the type): for a job that
  // can no longer be redelivered or retried, whose marks would otherwise live until they
  // expire.
  absl::Status DeleteJobMarks(std::string_view type, uint64_t job_id);
  // Rewrites the asset's index entries from the type's current definition if they differ
  // (kChanged), under compare-and-set, without a job mark; kGone if there is no such asset.
  absl::StatusOr<ProcessResult> RebuildIndex(std::string_view type, std::string_view id);
  // Marks the type's indexes on these (pointer, index id) pairs ready for search, if they
  // are still defined with that id (a pointer removed and added again has a new id and
  // stays not ready). Changes the current definition in place (no new type version).
  absl::Status MarkIndexesReady(std::string_view type,
                                const std::vector<std::pair<std::string, uint16_t>>& indexes);

  // The current version and the kept previous ones, newest first.
  absl::StatusOr<std::vector<AssetRow>> Versions(std::string_view type, std::string_view id);

  // Newest first across buckets; with `where`, through the index (see docs/assets.md for
  // the order of search results).
  absl::StatusOr<AssetPage> List(std::string_view type, const ListQuery& query);

  // Returns once every change event of a write acknowledged before the call was published
  // (or left in its outbox row after a failed publish, for the retry).
  void FlushChanges();
  // The change feed: events with offset > after (all when nullopt), at most `limit`, read
  // after FlushChanges.
  absl::StatusOr<std::vector<ChangeRecord>> Changes(std::string_view type,
                                                    std::optional<uint64_t> after, int limit);

  static std::string TopicFor(std::string_view type);
  store::Table* types_table() const { return types_; }
  store::Table* assets_table() const { return assets_; }
  const AssetOptions& options() const { return options_; }

 private:
  AssetService(store::RowStore* rows, store::Queue* queue, Clock* clock, MetricsRegistry* metrics,
               AssetOptions options);
  absl::Status Init();
  absl::Status RecoverOutboxes();
  absl::StatusOr<std::shared_ptr<const AssetType>> LoadType(std::string_view type);
  absl::StatusOr<JsonValue> ParsePayload(std::string_view text) const;
  // The index entries (index id + encoded value) of a payload, index 0's first.
  std::vector<std::string> IndexEntries(const AssetType& type, const JsonValue& payload) const;
  absl::Status EnsureBucket(const AssetType& type, Millis bucket);
  // Has the outbox row's events published and the row deleted: by the forwarder thread
  // (ForwardLoop), in the order of the calls (a call waits while max_queued_forwards
  // writes wait already), or now when max_queued_forwards is 0. Failures leave the row for
  // a retry.
  void Forward(const std::string& type, const std::string& partition, const std::string& outbox_key,
               const std::vector<std::string>& events);
  void ForwardNow(const std::string& type, const std::string& partition,
                  const std::string& outbox_key, const std::vector<std::string>& events);
  void ForwardLoop();
  // Publishes and deletes every outbox row of a partition.
  absl::Status FlushPartition(const std::string& partition);
  // Publishes an outbox row's events and removes the row (with the last publish:
  // Queue::PublishThen). Forward and FlushPartition.
  absl::Status PublishOutbox(const std::string& type, const std::string& partition,
                             const std::string& outbox_key,
                             const std::vector<store::PublishMessage>& messages);
  void RetryPending();
  // Reads, transforms, validates and writes one asset under compare-and-set, retrying
  // lost races. The transform fills the new payload from the old row; false = unchanged.
  using Transform = std::function<absl::StatusOr<bool>(const AssetRow& old, JsonValue* next)>;
  struct Mutation {
    ProcessResult::Kind kind = ProcessResult::Kind::kUnchanged;
    Asset asset;
    int conflicts = 0;
  };
  absl::StatusOr<Mutation> Mutate(const AssetType& type, const AssetId& id,
                                  const Transform& transform, std::optional<uint32_t> if_match,
                                  const JobMark* mark, bool rebuild_index = false);
  // Validates `next` and appends to `batch` the writes of the asset's next version after
  // `old`: the row, the index entries added and removed, the kept previous version (and the
  // deletion of the one that falls out). The row written; nothing appended on an error.
  absl::StatusOr<AssetRow> AppendNewVersion(const AssetType& type, const AssetId& id,
                                            const AssetRow& old, const JsonValue& next,
                                            store::WriteBatch* batch);
  enum class UpdateKind { kReplace, kPatch };
  absl::StatusOr<Asset> Update(std::string_view type, std::string_view id, std::string_view body,
                               std::optional<uint32_t> if_match, UpdateKind kind);
  absl::StatusOr<AssetPage> ListAll(const AssetType& type, const ListQuery& query);
  absl::StatusOr<AssetPage> Search(const AssetType& type, const ListQuery& query);
  std::mutex& StripeFor(const AssetId& id);

  store::RowStore* const rows_;
  store::Queue* const queue_;
  Clock* const clock_;
  const AssetOptions options_;
  AssetIdGenerator ids_;
  store::Table* types_ = nullptr;
  store::Table* assets_ = nullptr;

  std::mutex cache_mu_;
  // type -> (raw head row, parsed type): a cheap Get per request re-validates it.
  std::map<std::string, std::pair<std::string, std::shared_ptr<const AssetType>>, std::less<>>
      type_cache_;
  std::set<std::string, std::less<>> known_buckets_;  // "<type>/<bucket ms>", guarded
  std::set<std::string> pending_outbox_partitions_;   // guarded by cache_mu_
  std::atomic<bool> has_pending_{false};
  std::array<std::mutex, 64> stripes_;

  // The forwarder (Forward): writes whose events wait to be published, in write order.
  struct PendingForward {
    std::string type;
    std::string partition;
    std::string outbox_key;
    std::vector<std::string> events;
  };
  std::mutex forward_mu_;
  std::condition_variable forward_cv_;       // work arrived, or stopping
  std::condition_variable forward_idle_cv_;  // an item was published (room, or a flush)
  std::deque<PendingForward> forwards_;      // guarded by forward_mu_
  uint64_t forwards_queued_ = 0;             // ever queued (guarded)
  uint64_t forwards_done_ = 0;               // of those, published or failed (guarded)
  bool forward_stop_ = false;                // guarded
  std::thread forwarder_;

  Counter* creates_;
  Counter* updates_;
  Counter* deletes_;
  Counter* conflicts_;
  Counter* rejected_;
  Counter* published_;
  Counter* publish_failures_;
  Counter* examined_;
};

}  // namespace strata::assets
