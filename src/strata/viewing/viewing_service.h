// The viewing-history service: ingest, reads, summaries, language preferences and member
// erasure over the row-store interface. See docs/viewing.md for the data path.
//
// Data-type shards: plays, previews and language preferences live in separate tables, each
// with its own TTL. Plays and previews are stored LIVE + COMPRESSED:
//   <shard>_recent_live        partition = member (8 bytes BE), clustering = LiveClusteringKey,
//                              value = EncodeLiveValue; written with PutIfNewer(event_time),
//                              so the latest event of a playback wins in any arrival order.
//   <shard>_recent_compressed  partition = member; row "m" = metadata listing the chunks
//                              (the commit point), rows "s"+id = chunks ("segments"), each an
//                              independently decodable EncodeHistory blob (segments.h).
// When a member's live rows pass the roll-up threshold, a background worker merges them into
// a new compressed version: new chunks first, then the metadata row (commit), then the
// replaced chunks and the rolled-up live rows are deleted. A crash at any step leaves every
// acknowledged record readable exactly once (readers merge live and compressed by playback).
//
// The class is implemented across files (README.md in this folder has the map):
// viewing_service.cc (opening, ingest, reads, erasure), viewing_rollup.cc (roll-up triggers,
// queue and workers), viewing_tiers.cc (age tiers: rotation, past-tier reads, summaries). It
// owns the components with a state of their own: LanguagePreferences, TableReporter,
// ViewingMetrics, HistoryCache and SummaryCache.
//
// Concurrency: every method is thread-safe. Per member, writes and reads share a striped
// reader/writer lock; a roll-up encodes and writes its new chunks without it and takes it
// exclusively only to commit and delete, deleting only live rows no write has changed since
// it read them. (These locks are per process: a distributed deployment routes a member's
// roll-ups to one node.)
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/base/thread_pool.h"
#include "strata/store/cache.h"
#include "strata/store/queue.h"
#include "strata/store/row_store.h"
#include "strata/viewing/history_cache.h"
#include "strata/viewing/language_preferences.h"
#include "strata/viewing/record.h"
#include "strata/viewing/segment_plan.h"
#include "strata/viewing/segments.h"
#include "strata/viewing/shared_history_cache.h"
#include "strata/viewing/summary.h"
#include "strata/viewing/summary_cache.h"
#include "strata/viewing/table_report.h"
#include "strata/viewing/viewing_metrics.h"

namespace strata::viewing {

struct ViewingOptions {
  // Previews with watched_ms below this are not stored (counted as dropped). Default 5000 ms.
  int64_t min_preview_watched_ms = 5000;
  // Time to live of records, counted from event_time; 0 = kept until the age tiers move
  // them. Defaults: plays 0 (kept), previews 30 days, language changes 180 days.
  Millis play_ttl_ms = 0;
  Millis preview_ttl_ms = 30LL * 24 * 3600 * 1000;
  Millis language_ttl_ms = 180LL * 24 * 3600 * 1000;
  // A member's live rows of one kind are rolled up into a compressed version once there are
  // at least rollup_growth_fraction * compressed records of them, capped at
  // rollup_max_live_rows, but never fewer than rollup_min_live_rows. Defaults: 256 rows, 0.02, 2048
  // rows. (Measured: 256 costs ~10% less CPU per ingested event than 64, with no worse read
  // latency. The cap bounds what every read of a long history merges: before it, a member
  // with 500k records kept up to 10k live rows, which each of its reads copied and merged;
  // a roll-up rewrites only the chunks it touches, so the cap costs little. See
  // docs/benchmark-log.md.)
  size_t rollup_min_live_rows = 256;
  double rollup_growth_fraction = 0.02;
  size_t rollup_max_live_rows = 2048;
  // A member's live rows are also rolled up, whatever their number, once the oldest of them
  // was written this long ago (0 = by count only). Live rows cost ~50 bytes a record on disk
  // against ~6-12 compressed; without an age trigger the rows of members below
  // rollup_min_live_rows (most members: activity is Zipf-skewed) stayed live forever.
  // Default 15 s: a member's burst of activity becomes one roll-up. The check runs every
  // second (and the live tables are scanned once at start, for rows written before it).
  Millis rollup_max_live_age_ms = 15'000;
  // Events whose started_at or event_time lies more than this far ahead of the service's
  // clock are rejected (a client clock years ahead would otherwise pin a playback's newest
  // state, since the latest event_time wins, and keep records from ever expiring).
  // Default 1 hour; a negative value accepts any time.
  Millis max_future_skew_ms = 3'600'000;
  // Compressed histories are stored in chunks ("segments") of at most this many records
  // (about 5 KiB), each independently decodable and stored as its own row: recent reads
  // decode only the newest chunk, roll-ups rewrite only the chunks they touch. Default 512.
  size_t segment_records = 512;
  // The same for the past tier (plays between recent_age_ms and historical_age_ms old, most
  // of a long history). Its chunks are written by rotations, read by older pages and
  // summaries on a cache miss, and never by recent reads, so they can be larger: on
  // millisecond-random data 2048-record chunks take ~8% fewer bytes than 512-record ones
  // (HistorySize in codec_test.cc; docs/benchmark-log.md). Default 2048.
  size_t past_segment_records = 2048;
  // zstd level of compressed blobs (1..19). Default 3.
  int zstd_level = 3;
  // Background roll-up worker threads. Default 1.
  int rollup_threads = 1;
  // Memory budget of the history cache (compressed blobs + live deltas). Default 256 MiB.
  // Unused with a shared cache (see ViewingService::Open).
  size_t cache_bytes = 256ull << 20;
  // With a shared cache: how long an entry may stay in it, ms (entries of old versions are
  // garbage until memcached evicts or expires them). Default 1 hour; 0 = no expiry.
  Millis shared_cache_ttl_ms = 3'600'000;
  // Threads that read chunks and tables in parallel on a cache miss. Default 2.
  int read_threads = 2;
  // Time slice of the read threads, microseconds (ThreadPool::SetCurrentThreadSlice; 0 =
  // the kernel's default). Default 0; `strata serve` sets --request-slice-us.
  int read_thread_slice_us = 0;
  // Nice value of the background threads (roll-ups, the age trigger, rotations, sweeps and
  // the encode pool): they yield the 2 cores to requests, and take the CPU the requests
  // leave. Where a request can wait for them (a member's exclusive lock, the store's write
  // slot) they run at normal priority (ScopedPriorityBoost). Default 5 (rotations and the
  // encode pool were at 10 before this option). 19 was tried and is worse: a thread that gets ~1.5% of a busy core can be
  // preempted while it holds a lock that requests need (the history cache's, RocksDB's),
  // and they wait for it -- the compare bench's read p99 went from 11.8 ms to 487 ms with a
  // roll-up backlog in phase 2 (docs/benchmark-log.md).
  int background_nice = 5;
  // Background threads (low CPU priority) that encode the chunks of a large roll-up or
  // rotation in parallel with the worker that runs it (from 4 chunks, ~2,000 records, on).
  // 0 = the worker encodes alone. Default 2.
  int encode_threads = 2;

  // Age tiers of plays (docs/viewing.md, "Age tiers"). Plays that started more than
  // recent_age_ms ago move from the recent tier to the past tier; plays that started more
  // than historical_age_ms ago are folded into the historical tier's per-title summary and
  // their details dropped. Defaults: 7 days, 730 days.
  Millis recent_age_ms = 7LL * 24 * 3600 * 1000;
  Millis historical_age_ms = 730LL * 24 * 3600 * 1000;
  // A member is queued for rotation once its oldest record in a tier is this much older
  // than the tier's boundary, so rotations come in batches (about one per member per
  // slack), not on every read. Default 1 day.
  Millis rotation_slack_ms = 24LL * 3600 * 1000;
  // Background rotation workers, and the most member rotations they start per second
  // together (0 = unthrottled). Defaults: 1 thread, 200 per second.
  int rotation_threads = 1;
  double rotation_max_per_s = 200;
  // A sweep over the recent and past tiers queues every member due for a rotation, so data
  // nobody reads still moves; it runs this often (0 = only when an operator asks).
  // Default 6 hours.
  Millis rotation_sweep_interval_ms = 6LL * 3600 * 1000;
  // Memory budget of the summary cache. Default 64 MiB.
  size_t summary_cache_bytes = 64ull << 20;
  // The past tier's state row stores a per-title summary of the past records only when
  // there are at least this many of them (0 = always). A summary costs ~15-20 bytes per
  // title; a member whose past is small spends that on a few hundred records (2.4 bytes per
  // past record in the tiers bench), while summarising those records on a summary-cache miss
  // decodes one chunk (~80 ns per record). Default 1024.
  size_t past_summary_min_records = 1024;
};

// Progress of the rotation machinery, for operators.
struct RotationStatus {
  uint64_t queued = 0;             // members waiting for a rotation
  uint64_t running = 0;            // rotations in progress
  uint64_t rotated_members = 0;    // rotations done since start
  uint64_t moved_to_past = 0;      // records moved recent -> past since start
  uint64_t folded_to_historical = 0;  // records folded into summaries since start
  bool sweep_running = false;
  uint64_t sweep_scanned = 0;      // members the current (or last) sweep looked at
  uint64_t sweep_queued = 0;       // of which queued for rotation
};

struct IngestResult {
  uint64_t accepted = 0;  // stored (or already stored: retries are idempotent)
  uint64_t dropped = 0;   // chosen not to store by the write filters (short previews)
};

struct HistoryQuery {
  Kind kind = Kind::kPlay;
  Millis since = 0;                 // started_at >= since
  Millis until = INT64_MAX;         // started_at < until
  size_t limit = 100;               // 1..1000
  std::string cursor;               // from a previous page's next_cursor
};

struct HistoryPage {
  std::vector<ViewingRecord> records;  // newest started_at first
  std::string next_cursor;             // empty = no more
  // Plays only: detailed records start here; older plays exist only in the summary
  // (INT64_MIN: nothing has been summarised).
  Millis detail_from = INT64_MIN;
};

struct MemberSummary {
  std::vector<TitleSummary> titles;  // newest last_at first
  // Plays before this are in the summary but no longer in detail (INT64_MIN: none).
  Millis detail_from = INT64_MIN;
};

class ViewingService {
 public:
  // Opens the service's tables in `store`. `store` and `clock` must outlive the service.
  // Rotation tasks go through `queue` (topic "viewing.rotation", group "viewing-rotation"),
  // which must outlive the service too: durable, so queued rotations survive a restart and
  // an interrupted one is redelivered. Without a queue (unit tests) they are queued in
  // memory.
  // `shared_cache` (memcached; null = the in-process caches): several services over one
  // row store share it for member histories, and none serves a history older than a write
  // another acknowledged (SharedHistoryCache: version tokens in the row store). With it the
  // in-process history and summary caches are off (they would go stale after another
  // server's write), reads scan a member's live rows whole (this process cannot know what
  // others wrote), and every write batch writes the touched members' tokens. Must outlive
  // the service.
  static absl::StatusOr<std::unique_ptr<ViewingService>> Open(
      store::RowStore* store, Clock* clock, const ViewingOptions& options,
      MetricsRegistry* metrics, store::Queue* queue = nullptr,
      store::Cache* shared_cache = nullptr);
  static constexpr char kRotationTopic[] = "viewing.rotation";
  static constexpr char kRotationGroup[] = "viewing-rotation";
  static constexpr int kRotationPartitions = 8;
  ~ViewingService();

  // Stores valid records. Each record must have passed ValidateRecord. On error nothing is
  // acknowledged (the caller may retry the whole batch: it is idempotent).
  absl::StatusOr<IngestResult> Ingest(std::span<const ViewingRecord> records);
  // The latest started_at / event_time an event may carry now (max_future_skew_ms ahead of
  // the service's clock; INT64_MAX when the check is off). Input parsers reject later ones.
  Millis LatestAcceptedTime() const {
    return options_.max_future_skew_ms < 0 ? INT64_MAX
                                           : clock_->NowMillis() + options_.max_future_skew_ms;
  }

  absl::StatusOr<HistoryPage> ReadHistory(MemberId member, const HistoryQuery& query);
  absl::StatusOr<MemberSummary> Summary(MemberId member);
  // The member's language preferences (LanguagePreferences::Read).
  absl::StatusOr<LanguageHistory> Languages(MemberId member) {
    return languages_->Read(member);
  }

  // Erases every record of the member in every table and cache.
  absl::Status EraseMember(MemberId member);

  // Rolls the member's live rows of `kind` into a new compressed version now, whatever the
  // threshold (used by operators and tests). No-op when there are no live rows.
  absl::Status RollUp(MemberId member, Kind kind);
  // Blocks until the roll-up queue is empty and no roll-up runs (tests, benchmarks).
  void WaitForRollups();
  // Queues a roll-up of every member whose oldest unrolled live write is at least
  // rollup_max_live_age_ms old by the service's clock; returns how many it queued. A
  // background thread calls it every second; tests call it after moving their clock.
  size_t QueueAgedRollups();

  // Rotates the member's plays between the age tiers now (recent -> past -> historical),
  // whatever the slack. Used by workers, operators and tests.
  absl::Status Rotate(MemberId member);
  // Queues every member with plays in the recent or past tier for a rotation check, in the
  // background (progress in RotationStatus). No-op if a sweep is running.
  void StartRotationSweep();
  // Blocks until no rotation is queued or running and no sweep runs (tests, benchmarks).
  void WaitForRotations();
  RotationStatus rotation_status();
  // Empties the history and summary caches (operators measuring cold reads); returns the
  // entries dropped from each.
  std::pair<size_t, size_t> DropCaches() { return {cache_->Clear(), summary_cache_->Clear()}; }

  // Tests: called by a roll-up between writing its new chunks and taking the member lock to
  // commit, where concurrent writes may land. Set before use; not thread-safe.
  void SetRollupHookForTesting(std::function<void()> hook) { rollup_hook_ = std::move(hook); }

  // Scans the tables (expensive: for operators, not for hot paths). See TableReporter.
  // `progress` (may be null): after each table, the tables done and the total.
  absl::StatusOr<std::vector<TableReport>> Report(
      const TableReporter::Progress& progress = nullptr) {
    return reporter_->Report(progress);
  }

  const HistoryCache& cache() const { return *cache_; }
  // Null unless opened with a shared cache.
  const SharedHistoryCache* shared_cache() const { return shared_.get(); }
  const SummaryCache& summary_cache() const { return *summary_cache_; }
  // Every table the service uses, for size metrics.
  std::vector<store::Table*> tables() const { return reporter_->tables().All(); }

 private:
  struct Shard;
  struct PastTier;  // below, with the age tiers
  ViewingService(store::RowStore* store, Clock* clock, const ViewingOptions& options,
                 MetricsRegistry* metrics);

  // Opening (viewing_service.cc): Init runs the four steps below in their order.
  absl::Status Init();
  // Opens every table, each shard's first (docs/viewing.md, "Tables").
  absl::Status OpenTables();
  // Registers the counters and histograms (metrics_) and the gauges over the service's state.
  void RegisterMetrics();
  // The components over the opened tables: language preferences and the table reporter.
  void CreateComponents();
  // Roll-up and rotation workers, the rotation publisher and the sweep timer.
  void StartBackgroundThreads();
  void SweepTimerLoop();

  Shard& ShardFor(Kind kind) { return *shards_[static_cast<size_t>(kind)]; }
  std::shared_mutex& MemberLock(MemberId member);

  // Reads (viewing_service.cc).
  //
  // Reads the member's live rows and committed compressed history of one shard from the
  // store (live rows and chunks in parallel).
  // Without segments, the compressed history holds the metadata and null segment bytes.
  // Loads the live rows and the compressed metadata, and the bytes of the newest
  // `newest_segments` chunks (the others stay null and are read when needed).
  // `live_from`: live rows start at or after it (LiveFrom); INT64_MAX = none.
  // `parallel`: read the live rows and chunks on the read pool, in parallel (requests);
  // false reads them one after another on the calling thread (background roll-ups and
  // rotations: on the pool, their reads queued ahead of requests' cache misses and ran at
  // the requests' priority).
  absl::StatusOr<CachedHistory> LoadFromStore(Shard& shard, MemberId member,
                                              size_t newest_segments,
                                              Millis live_from = INT64_MIN,
                                              bool parallel = true);
  // Decodes chunk i, from the cached bytes or, when not loaded, from the store. With
  // `qualifies`, only its newest records until `want` of them qualify (DecodeNewest).
  absl::StatusOr<std::vector<ViewingRecord>> DecodeChunk(
      Shard& shard, MemberId member, const CompressedHistory& h, size_t i,
      size_t want = SIZE_MAX, const std::function<bool(const ViewingRecord&)>& qualifies = {});
  // Chunks a cache miss loads: enough for recent reads; older ones are read on demand.
  static constexpr size_t kSegmentsLoadedOnMiss = 2;
  // Reads one chunk and checks its size and checksum against the metadata. Null (not an
  // error) when the chunk's records have all expired and its row is gone.
  absl::StatusOr<std::shared_ptr<const std::string>> ReadSegment(Shard& shard, MemberId member,
                                                                 const SegmentRef& ref);
  absl::StatusOr<std::shared_ptr<const std::string>> ReadSegment(store::Table* table,
                                                                 Millis ttl_ms, MemberId member,
                                                                 const SegmentRef& ref);
  // Returns the member's history in a shard, from the cache or (filling it) the store.
  // Caller holds the member lock (shared or exclusive). `on_miss`, if set, runs on a cache
  // miss before the store is read (ReadHistory starts its past-tier prefetch there).
  absl::StatusOr<CachedHistory> GetHistory(Shard& shard, MemberId member,
                                           const std::function<void()>& on_miss = {});
  // The member's cached history of a shard; queues a roll-up when the live backlog is over
  // the threshold. Caller holds the member's shared lock. `on_miss` as for GetHistory.
  absl::StatusOr<CachedHistory> ReadEntry(Shard& shard, MemberId member,
                                          const std::function<void()>& on_miss = {});
  // ReadHistory's steps (viewing_service.cc defines PageFilter).
  struct PageFilter;
  // The records of the recent tier that can hold the page, ascending by playback: the
  // newest chunks that alone hold limit + 1 records passing `filter`, merged with the live
  // records that can reach the page (TrimToPageReach). `recent_floor`: plays started before
  // it belong to the past tier.
  absl::StatusOr<std::vector<ViewingRecord>> RecentCandidates(Shard& shard, MemberId member,
                                                              const CachedHistory& h,
                                                              const HistoryQuery& query,
                                                              Millis recent_floor,
                                                              const PageFilter& filter);
  // Cuts *records (decoded, sorted, unique) and `live` (arrival order, repeats possible) below
  // the newest limit + 1 qualifying recent records of either side, which bound the page.
  // Returns the live rows to merge: `live` itself, or the ones kept, copied to *newest_live.
  static std::span<const ViewingRecord> TrimToPageReach(std::span<const ViewingRecord> live,
                                                        const HistoryQuery& query,
                                                        Millis recent_floor,
                                                        const PageFilter& filter,
                                                        std::vector<ViewingRecord>* records,
                                                        std::vector<ViewingRecord>* newest_live);
  // For plays: merges into *records the past tier's candidates when the recent tier alone
  // cannot fill the page (sets filter->detail_from and page->detail_from), using the
  // prefetch if one was started. Caller holds the member's shared lock.
  absl::Status AddPastToPage(MemberId member, const HistoryQuery& query, Millis recent_floor,
                             Millis before,
                             std::future<absl::StatusOr<PastTier>>& prefetch,
                             PageFilter* filter, std::vector<ViewingRecord>* records,
                             HistoryPage* page);
  // The page: the newest `query.limit` of `records` (ascending) that pass `filter`, moved
  // out, and the cursor of the next page if there is one.
  static void FillPage(std::vector<ViewingRecord>& records, const HistoryQuery& query,
                       const PageFilter& filter, HistoryPage* page);

  // Roll-ups (viewing_rollup.cc).
  absl::Status RollUpMember(Shard& shard, MemberId member, bool force);
  // RollUpMember with the member's roll-up lock already held.
  absl::Status RollUpLocked(Shard& shard, MemberId member, bool force);
  // The committed version a roll-up or rotation rewrites, read under the member's shared
  // lock: the live rows from LiveFrom (none if they start at or after `live_before`), the
  // compressed metadata (chunks not loaded, or the cache's loaded ones when it holds the
  // same version). Marks live writes first and sets *write_seq for UnchangedLiveRows.
  absl::StatusOr<CachedHistory> LoadForRewrite(Shard& shard, MemberId member,
                                               Millis live_before, uint64_t* write_seq);
  // A plan input with the service's encoding options: `segment_records` records a chunk.
  SegmentPlanInput PlanInput(MemberId member, Kind kind, Millis ttl_ms, Millis now,
                             size_t segment_records) const;
  // Roll-up phase B, under the member's exclusive lock: commits `plan` (written by phase A
  // from the live rows `live`) and deletes the chunks it replaced in one batch, deletes the
  // live rows no write has changed since, and settles the member's live count. Returns the
  // live rows deleted.
  absl::StatusOr<uint64_t> CommitRollup(Shard& shard, MemberId member, SegmentPlan plan,
                                        const std::vector<ViewingRecord>& live,
                                        uint64_t write_seq);

  // Age tiers (viewing_tiers.cc).
  struct PastTier {
    // Null: no past version. Segments not loaded, except those a prefetch read.
    std::shared_ptr<CompressedHistory> history;
    PastState state;  // left empty by LoadPast(member, /*with_state=*/false)
  };
  // The past tier's committed history (segments not loaded) and, if `with_state`, its state
  // (the rotation watermark and summary: reads of records do not need it); empty if none.
  absl::StatusOr<PastTier> LoadPast(MemberId member, bool with_state = true);
  // For a read that reaches the past tier while its recent tier is read from the store: the
  // past tier's metadata and the bytes of its newest chunks that can hold the page's plays
  // (started in [since, before), `limit` + 1 of them), read in parallel with the recent tier.
  // Caller holds the member's shared lock until the result is used.
  absl::StatusOr<PastTier> PrefetchPast(MemberId member, size_t limit, Millis since,
                                        Millis before);
  absl::StatusOr<HistoricalState> LoadHistorical(MemberId member);
  absl::StatusOr<std::shared_ptr<const StableSummary>> GetStableSummary(MemberId member);
  // The summary cache's stable entry for committed historical and past states that agree
  // (past.summary_from == hist.until, past.meta_version == the past tier's version).
  static std::shared_ptr<const StableSummary> BuildStableSummary(const HistoricalState& hist,
                                                                 const PastState& past);
  // Past-tier records of the member with started_at in [from, until), ascending.
  absl::StatusOr<std::vector<ViewingRecord>> PastRecords(MemberId member, const PastTier& past,
                                                        Millis from, Millis until);
  // Merges into *records (recent plays, sorted and unique) the newest past-tier plays that
  // satisfy `qualifies` -- enough for a page of `limit` -- and sets *detail_from to the
  // start of the detailed history. Qualifying plays started in [since, before).
  // Caller holds the member's shared lock.
  // `prefetched`: the past tier as PrefetchPast read it under the same lock, or null.
  absl::Status AddPastCandidates(MemberId member, size_t limit, Millis since, Millis before,
                                 const std::function<bool(const ViewingRecord&)>& qualifies,
                                 std::vector<ViewingRecord>* records, Millis* detail_from,
                                 const PastTier* prefetched = nullptr);
  // A plan input for a plays history of the member with the service's encoding options.
  // `past`: the plan writes the past tier's chunks (past_segment_records per chunk).
  SegmentPlanInput PlayPlanInput(MemberId member, Millis ttl_ms, Millis now, bool past) const;
  // The past tier's state row for a version with `meta`: with its summary, or without one
  // when the version holds fewer than past_summary_min_records records.
  std::string EncodeStoredPastState(const PastState& state, const HistoryMeta& meta) const;
  absl::Status RotateRecentToPast(MemberId member, Millis cutoff);
  absl::Status RotatePastToHistorical(MemberId member, Millis cutoff);
  // Queues a rotation when the oldest records of a tier are past its boundary plus slack.
  // True if it queued the member (false: not due, or already queued).
  bool MaybeQueueRotation(MemberId member, Millis oldest_recent, Millis oldest_past);
  bool QueueRotation(MemberId member);
  void RotationWorker(int index);
  void RotationPublisher();
  // Throttle: waits until the next rotation may start. False when stopping.
  bool AwaitRotationSlot();
  // Runs one rotation task (a failure is logged and counted, and retried by a later trigger).
  // `counted`: the caller already counted it in running_rotations_.
  void RunRotation(MemberId member, bool counted = false);
  // Members queued in the durable queue and not yet processed (its backlog).
  uint64_t RotationBacklog();
  void SweepForRotation();

  // Roll-up triggers (viewing_rollup.cc).
  //
  // Counts acknowledged live writes of a member; true when a roll-up is due.
  bool NoteLiveWrites(Shard& shard, MemberId member,
                      std::span<const ViewingRecord* const> records);
  // The started_at before which the member has no live rows (INT64_MIN = unknown).
  Millis LiveFrom(Shard& shard, MemberId member);
  // Starts tracking the least started_at written from now on (LiveCount::written_min). Call
  // before reading write_seq_ and the live rows.
  void MarkLiveWrites(Shard& shard, MemberId member);
  // Of `read` (live rows read after MarkLiveWrites and write_seq_ == write_seq; sorted,
  // unique), adds to *deletes those still stored unchanged, and to *survivors (by started_at)
  // the ones a write changed since. Point reads only when a write intervened; caller holds
  // the member's exclusive lock.
  absl::Status UnchangedLiveRows(Shard& shard, MemberId member,
                                 const std::vector<ViewingRecord>& read, uint64_t write_seq,
                                 store::WriteBatch* deletes, std::vector<Millis>* survivors);
  // Live rows that trigger a roll-up of a member with this many compressed records.
  uint64_t RollupThreshold(uint64_t compressed_records) const;
  // `by_age`: roll up whatever the live row count (QueueAgedRollups).
  void EnqueueRollup(Shard& shard, MemberId member, bool by_age = false);
  void RollupWorker();
  // The age trigger's thread: counts the live rows already stored (rows written before
  // this start have no count), then calls QueueAgedRollups every second.
  void AgedRollupLoop();
  absl::Status CountStoredLiveRows(Shard& shard);

  store::RowStore* store_;
  Clock* clock_;
  ViewingOptions options_;
  MetricsRegistry* registry_;
  ViewingMetrics metrics_;  // registered by Init
  std::unique_ptr<Shard> shards_[2];
  std::unique_ptr<HistoryCache> cache_;
  std::unique_ptr<SummaryCache> summary_cache_;
  // Set with a shared cache: GetHistory reads it instead of cache_ (which stays empty).
  std::unique_ptr<SharedHistoryCache> shared_;
  // New shared-cache tokens for the member's history in each shard index of `shard_indexes`
  // (no-op without a shared cache). Call after the store acknowledged the change.
  absl::Status InvalidateShared(MemberId member, std::initializer_list<int> shard_indexes);
  std::unique_ptr<LanguagePreferences> languages_;  // created by Init
  std::unique_ptr<TableReporter> reporter_;         // created by Init
  store::Queue* task_queue_ = nullptr;  // rotation tasks; null = in memory
  store::Table* languages_table_ = nullptr;
  store::Table* past_ = nullptr;        // plays_past_compressed
  store::Table* historical_ = nullptr;  // plays_historical

  // Rotation queue: members, deduplicated; workers throttled to rotation_max_per_s.
  std::mutex rotation_mu_;
  std::condition_variable rotation_cv_;
  std::condition_variable rotation_idle_cv_;
  std::deque<MemberId> rotation_queue_;
  std::unordered_set<MemberId> rotation_queued_;
  int running_rotations_ = 0;
  bool rotation_stopping_ = false;
  double next_rotation_at_ = 0;  // throttle: seconds on the steady clock
  std::vector<std::thread> rotation_workers_;
  // Triggers waiting to be published to the durable queue: reads only note a member here (a
  // write on the read path would put a store write into read latency); the publisher thread
  // publishes them in batches. A trigger lost in a crash before publication is only a hint:
  // the next read or sweep triggers again.
  std::vector<MemberId> rotation_unpublished_;
  size_t rotation_publishing_ = 0;  // taken by the publisher, not yet in the queue
  std::thread rotation_publisher_;
  std::thread sweep_thread_;
  std::thread sweep_timer_;
  std::atomic<bool> sweep_running_{false};
  std::atomic<uint64_t> sweep_scanned_{0};
  std::atomic<uint64_t> sweep_queued_{0};

  // Per member stripe (internal::StripeOf, internal::kLockStripes of them).
  std::unique_ptr<std::shared_mutex[]> member_locks_;
  // One roll-up (or erasure) per member at a time, per stripe.
  std::unique_ptr<std::mutex[]> rollup_locks_;
  // Bumped, per stripe, by every acknowledged write while it holds the shared member lock:
  // a roll-up that sees it unchanged between its phases knows no write intervened.
  std::unique_ptr<std::atomic<uint64_t>[]> write_seq_;
  std::unique_ptr<ThreadPool> read_pool_;
  // Encodes chunks for roll-ups and rotations (null with encode_threads 0); run_all_ hands
  // it a plan's encodings, running one share on the calling thread.
  std::unique_ptr<ThreadPool> encode_pool_;
  RunAll run_all_;

  // Roll-up queues: (shard index, member), deduplicated by queued_. Members over their
  // live-row threshold (count-triggered) wait in urgent_queue_, which the workers drain
  // first; aged roll-ups wait in queue_. Count-triggered roll-ups bound a member's live
  // rows (and so the live partition's size); with a slow row store (RADOS) tens of
  // thousands of aged roll-ups can be queued, and a busy member behind them in one FIFO
  // gathered 200k live rows. A member queued by age that crosses its threshold gets an
  // urgent entry too; its aged entry is then stale (not in queued_) and skipped.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable idle_cv_;
  std::deque<std::pair<int, MemberId>> urgent_queue_;
  std::deque<std::pair<int, MemberId>> queue_;
  std::unordered_set<uint64_t> queued_[2];
  std::unordered_set<uint64_t> queued_urgent_[2];  // of queued_, those in urgent_queue_
  std::unordered_set<uint64_t> queued_by_age_[2];  // of queued_, those to roll up whatever count
  std::thread aged_rollup_thread_;
  std::condition_variable aged_cv_;  // wakes aged_rollup_thread_ to stop (with queue_mu_)
  int running_rollups_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::function<void()> rollup_hook_;
};

}  // namespace strata::viewing
