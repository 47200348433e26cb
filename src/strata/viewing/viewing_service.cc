#include "strata/viewing/viewing_service.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <optional>

#include "absl/strings/str_cat.h"
#include "strata/base/coding.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"
#include "strata/base/ttl.h"
#include "strata/viewing/codec.h"
#include "strata/viewing/segment_plan.h"
#include "strata/viewing/segments.h"
#include "strata/viewing/viewing_internal.h"

namespace strata::viewing {
namespace {

using internal::kLockStripes;
using internal::CoalescePlaybacks;
using internal::kMetaKey;
using internal::MemberKey;
using internal::ScanLiveRows;
using internal::SegmentKey;
using internal::StripeOf;

constexpr auto kKeyLess = [](const ViewingRecord& a, const ViewingRecord& b) {
  return PlaybackKey(a) < PlaybackKey(b);
};

// Waits for a future when the scope ends, whatever returns: ReadHistory's past-tier prefetch
// never outlives the member lock it reads under.
template <typename T>
struct WaitOnExit {
  std::future<T>& f;
  ~WaitOnExit() {
    if (f.valid()) f.wait();
  }
};

// Observes a history read's latency when the scope ends, by whether the history cache
// answered.
struct ObserveReadOnExit {
  Histogram* hit;
  Histogram* miss;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  bool missed = false;
  ~ObserveReadOnExit() {
    (missed ? miss : hit)
        ->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                      .count());
  }
};

}  // namespace

namespace internal {

void CoalescePlaybacks(std::span<const ViewingRecord* const> events,
                       std::vector<const ViewingRecord*>* out) {
  const size_t first = out->size();
  out->insert(out->end(), events.begin(), events.end());
  auto begin = out->begin() + static_cast<std::ptrdiff_t>(first);
  // Stable: of events with the same playback and event_time, the later arrival stays last.
  std::stable_sort(begin, out->end(), [](const ViewingRecord* a, const ViewingRecord* b) {
    return std::tie(a->started_at, a->session, a->event_time) <
           std::tie(b->started_at, b->session, b->event_time);
  });
  // Keep the last event of each playback: the highest event_time, ties to the later arrival.
  auto kept = begin;
  for (auto it = begin; it != out->end(); ++it) {
    auto next = it + 1;
    if (next != out->end() && PlaybackKey(**next) == PlaybackKey(**it)) continue;
    *kept++ = *it;
  }
  out->erase(kept, out->end());
}

}  // namespace internal

// ---------------------------------------------------------------------------------------
// Opening

ViewingService::ViewingService(store::RowStore* store, Clock* clock,
                               const ViewingOptions& options, MetricsRegistry* metrics)
    : store_(store),
      clock_(clock),
      options_(options),
      registry_(metrics),
      cache_(std::make_unique<HistoryCache>(options.cache_bytes, metrics)),
      summary_cache_(std::make_unique<SummaryCache>(options.summary_cache_bytes, metrics)),
      member_locks_(new std::shared_mutex[kLockStripes]),
      rollup_locks_(new std::mutex[kLockStripes]),
      write_seq_(new std::atomic<uint64_t>[kLockStripes]()),
      read_pool_(std::make_unique<ThreadPool>(options.read_threads, 0, "strata-read",
                                              options.read_thread_slice_us)) {
  if (options.encode_threads > 0) {
    encode_pool_ = std::make_unique<ThreadPool>(options.encode_threads, /*nice_increment=*/options.background_nice,
                                                "strata-encode");
    run_all_ = [pool = encode_pool_.get()](std::vector<std::function<void()>>& tasks) {
      // All but the first on the pool, the first here; then wait for the pool's share.
      std::vector<std::future<void>> done;
      done.reserve(tasks.size());
      for (size_t i = 1; i < tasks.size(); ++i) done.push_back(pool->Submit(tasks[i]));
      if (!tasks.empty()) tasks[0]();
      for (auto& f : done) f.get();
    };
  }
}

absl::StatusOr<std::unique_ptr<ViewingService>> ViewingService::Open(
    store::RowStore* store, Clock* clock, const ViewingOptions& options,
    MetricsRegistry* metrics, store::Queue* queue, store::Cache* shared_cache) {
  if (options.zstd_level < 1 || options.zstd_level > 19) {
    return absl::InvalidArgumentError("viewing.zstd_level: must be 1..19");
  }
  if (options.segment_records < 1) {
    return absl::InvalidArgumentError("viewing.segment_records: must be at least 1");
  }
  if (options.past_segment_records < 1) {
    return absl::InvalidArgumentError("viewing.past_segment_records: must be at least 1");
  }
  if (options.encode_threads < 0) {
    return absl::InvalidArgumentError("viewing.encode_threads: must not be negative");
  }
  if (options.rollup_min_live_rows < 1) {
    return absl::InvalidArgumentError("viewing.rollup_min_live_rows: must be at least 1");
  }
  if (options.recent_age_ms < 1) {
    return absl::InvalidArgumentError("viewing.recent_age: must be positive");
  }
  if (options.historical_age_ms <= options.recent_age_ms) {
    return absl::InvalidArgumentError(
        "viewing.historical_age: must be longer than viewing.recent_age");
  }
  if (options.rotation_slack_ms < 0 || options.rotation_max_per_s < 0) {
    return absl::InvalidArgumentError(
        "viewing.rotation_slack / viewing.rotation_max_per_s: must not be negative");
  }
  ViewingOptions effective = options;
  if (shared_cache != nullptr) {
    // The in-process caches hold what this process saw; another server's write would leave
    // them stale. A budget of 0 keeps them empty (their fills are refused as too large).
    effective.cache_bytes = 0;
    effective.summary_cache_bytes = 0;
  }
  std::unique_ptr<ViewingService> s(new ViewingService(store, clock, effective, metrics));
  if (shared_cache != nullptr) {
    STRATA_ASSIGN_OR_RETURN(s->shared_, SharedHistoryCache::Open(shared_cache, store, metrics,
                                                                 options.shared_cache_ttl_ms));
  }
  if (queue) {
    auto topic = queue->DescribeTopic(kRotationTopic);
    if (absl::IsNotFound(topic.status())) {
      STRATA_RETURN_IF_ERROR(queue->CreateTopic({kRotationTopic, kRotationPartitions}));
    } else if (!topic.ok()) {
      return topic.status();
    } else if (topic->partitions != kRotationPartitions) {
      return absl::FailedPreconditionError("viewing.rotation topic: unexpected partition count");
    }
    s->task_queue_ = queue;
  }
  STRATA_RETURN_IF_ERROR(s->Init());
  return s;
}

absl::Status ViewingService::Init() {
  STRATA_RETURN_IF_ERROR(OpenTables());
  RegisterMetrics();
  CreateComponents();
  StartBackgroundThreads();
  return absl::OkStatus();
}

absl::Status ViewingService::OpenTables() {
  const struct {
    Kind kind;
    const char* name;
    Millis ttl;
  } kShards[] = {{Kind::kPlay, "plays", options_.play_ttl_ms},
                 {Kind::kPreview, "previews", options_.preview_ttl_ms}};
  for (const auto& def : kShards) {
    auto shard = std::make_unique<Shard>();
    shard->index = static_cast<int>(def.kind);
    shard->kind = def.kind;
    shard->ttl_ms = def.ttl;
    STRATA_ASSIGN_OR_RETURN(shard->live,
                            store_->OpenTable({absl::StrCat(def.name, "_recent_live"),
                                               store::TableProfile::kLive}));
    STRATA_ASSIGN_OR_RETURN(shard->compressed,
                            store_->OpenTable({absl::StrCat(def.name, "_recent_compressed"),
                                               store::TableProfile::kCompressed}));
    shards_[shard->index] = std::move(shard);
  }
  STRATA_ASSIGN_OR_RETURN(languages_table_,
                          store_->OpenTable({"languages", store::TableProfile::kIndex,
                                             /*spread_writes=*/true}));
  STRATA_ASSIGN_OR_RETURN(past_, store_->OpenTable({"plays_past_compressed",
                                                    store::TableProfile::kCompressed}));
  STRATA_ASSIGN_OR_RETURN(historical_, store_->OpenTable({"plays_historical",
                                                          store::TableProfile::kCompressed}));
  return absl::OkStatus();
}

void ViewingService::RegisterMetrics() {
  metrics_ = ViewingMetrics::Register(registry_);
  registry_->AddGauge("strata_viewing_rollup_backlog", "Members queued for a roll-up", [this] {
    std::lock_guard<std::mutex> lock(queue_mu_);
    return std::vector<std::pair<std::string, double>>{
        {"", static_cast<double>(queued_[0].size() + queued_[1].size())}};
  });
  registry_->AddGauge("strata_viewing_cache_bytes", "Bytes held by the history cache", [this] {
    return std::vector<std::pair<std::string, double>>{
        {"", static_cast<double>(cache_->bytes())}};
  });
  registry_->AddGauge("strata_viewing_rotation_backlog", "Members queued for a rotation",
                      [this] {
                        return std::vector<std::pair<std::string, double>>{
                            {"", static_cast<double>(RotationBacklog())}};
                      });
}

void ViewingService::CreateComponents() {
  languages_ = std::make_unique<LanguagePreferences>(languages_table_, options_.language_ttl_ms,
                                                     metrics_.language_changes,
                                                     metrics_.language_unchanged);
  TableReporter::Tables tables;
  for (const auto& shard : shards_) tables.recent.emplace_back(shard->live, shard->compressed);
  tables.past = past_;
  tables.historical = historical_;
  tables.languages = languages_table_;
  reporter_ = std::make_unique<TableReporter>(std::move(tables));
}

void ViewingService::StartBackgroundThreads() {
  for (int i = 0; i < std::max(options_.rollup_threads, 1); ++i) {
    workers_.emplace_back([this] { RollupWorker(); });
  }
  for (int i = 0; i < std::max(options_.rotation_threads, 1); ++i) {
    rotation_workers_.emplace_back([this, i] { RotationWorker(i); });
  }
  if (task_queue_) rotation_publisher_ = std::thread([this] { RotationPublisher(); });
  if (options_.rollup_max_live_age_ms > 0) {
    aged_rollup_thread_ = std::thread([this] { AgedRollupLoop(); });
  }
  if (options_.rotation_sweep_interval_ms > 0) {
    sweep_timer_ = std::thread([this] { SweepTimerLoop(); });
  }
}

void ViewingService::SweepTimerLoop() {
  ThreadPool::NameCurrentThread("strata-sweeptimer");
  std::unique_lock<std::mutex> lock(rotation_mu_);
  for (;;) {
    rotation_cv_.wait_for(lock, std::chrono::milliseconds(options_.rotation_sweep_interval_ms),
                          [this] { return rotation_stopping_; });
    if (rotation_stopping_) return;
    lock.unlock();
    StartRotationSweep();
    lock.lock();
  }
}

ViewingService::~ViewingService() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  aged_cv_.notify_all();
  if (aged_rollup_thread_.joinable()) aged_rollup_thread_.join();
  for (auto& t : workers_) t.join();
  {
    std::lock_guard<std::mutex> lock(rotation_mu_);
    rotation_stopping_ = true;
  }
  rotation_cv_.notify_all();
  for (auto& t : rotation_workers_) t.join();
  if (rotation_publisher_.joinable()) rotation_publisher_.join();
  if (sweep_timer_.joinable()) sweep_timer_.join();
  {
    // StartRotationSweep may be replacing sweep_thread_ under this mutex.
    std::lock_guard<std::mutex> lock(rotation_mu_);
  }
  if (sweep_thread_.joinable()) sweep_thread_.join();
}

std::shared_mutex& ViewingService::MemberLock(MemberId member) {
  return member_locks_[StripeOf(member)];
}

// ---------------------------------------------------------------------------------------
// Ingest

absl::StatusOr<IngestResult> ViewingService::Ingest(std::span<const ViewingRecord> records) {
  IngestResult result;
  const Millis now = clock_->NowMillis();

  // Order by (kind, member) so each member's events form one partition batch.
  std::vector<const ViewingRecord*> order;
  order.reserve(records.size());
  for (const auto& r : records) {
    if (r.kind == Kind::kPreview && r.watched_ms < options_.min_preview_watched_ms) {
      ++result.dropped;
      metrics_.dropped_previews->Inc();
      continue;
    }
    if (TtlExpired(r.event_time, ShardFor(r.kind).ttl_ms, now)) {
      ++result.dropped;
      metrics_.dropped_expired->Inc();
      continue;
    }
    order.push_back(&r);
  }
  std::stable_sort(order.begin(), order.end(), [](const ViewingRecord* a, const ViewingRecord* b) {
    return std::tie(a->kind, a->member) < std::tie(b->kind, b->member);
  });

  struct Group {
    Shard* shard;
    MemberId member;
    size_t begin, end;            // range in `order`: every accepted event of the group
    size_t rows_begin, rows_end;  // range in `rows`: the live rows it writes
  };
  std::vector<Group> groups;
  std::vector<store::PartitionWrite> writes;
  std::vector<const ViewingRecord*> rows;
  rows.reserve(order.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && order[j]->kind == order[i]->kind &&
           order[j]->member == order[i]->member) {
      ++j;
    }
    Shard& shard = ShardFor(order[i]->kind);
    const size_t rows_begin = rows.size();
    CoalescePlaybacks(std::span<const ViewingRecord* const>(order.data() + i, j - i), &rows);
    store::PartitionWrite w{shard.live, MemberKey(order[i]->member), {}};
    for (size_t k = rows_begin; k < rows.size(); ++k) {
      const ViewingRecord& r = *rows[k];
      w.batch.PutIfNewer(LiveClusteringKey(r.started_at, r.session),
                         static_cast<uint64_t>(r.event_time), EncodeLiveValue(r),
                         TtlExpiresAt(r.event_time, shard.ttl_ms));
    }
    writes.push_back(std::move(w));
    groups.push_back({&shard, order[i]->member, i, j, rows_begin, rows.size()});
    i = j;
  }

  // Language preferences come from plays: store a change only when it differs. The
  // comparison points of members not in memory are read first, all at once.
  std::vector<const ViewingRecord*> plays;
  for (const Group& g : groups) {
    if (g.shard->kind != Kind::kPlay) continue;
    plays.insert(plays.end(), order.begin() + g.begin, order.begin() + g.end);
  }
  STRATA_RETURN_IF_ERROR(languages_->Prefetch(plays));
  std::vector<MemberId> touched_languages;
  for (const Group& g : groups) {
    if (g.shard->kind != Kind::kPlay) continue;
    STRATA_RETURN_IF_ERROR(languages_->PlanChanges(
        std::span<const ViewingRecord* const>(order.data() + g.begin, g.end - g.begin),
        &writes, &touched_languages));
  }

  // Shared member locks (sorted stripes, so no deadlock) keep roll-ups out while we write
  // and merge into the cache.
  std::vector<size_t> stripes;
  stripes.reserve(groups.size());
  for (const Group& g : groups) stripes.push_back(StripeOf(g.member));
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  for (size_t s : stripes) member_locks_[s].lock_shared();
  absl::Status write_status = store_->Write(writes);
  std::vector<std::pair<Shard*, MemberId>> rollups_due;
  if (write_status.ok()) {
    for (const Group& g : groups) {
      std::span<const ViewingRecord* const> group(rows.data() + g.rows_begin,
                                                  g.rows_end - g.rows_begin);
      cache_->MergeWrites(g.shard->index, g.member, group);
      // Inside the shared section, so a roll-up's exclusive phase sees every completed
      // write counted (see RollUpMember).
      if (NoteLiveWrites(*g.shard, g.member, group)) rollups_due.emplace_back(g.shard, g.member);
      write_seq_[StripeOf(g.member)].fetch_add(1, std::memory_order_release);
    }
  }
  for (size_t s : stripes) member_locks_[s].unlock_shared();
  for (const auto& [shard, member] : rollups_due) EnqueueRollup(*shard, member);
  if (write_status.ok() && shared_) {
    // Before the acknowledgement: from now on every server reads past its cached entry.
    std::vector<std::pair<int, MemberId>> changed;
    changed.reserve(groups.size());
    for (const Group& g : groups) changed.emplace_back(g.shard->index, g.member);
    write_status = shared_->Invalidate(changed);
  }
  if (!write_status.ok()) {
    // The language comparison points may be ahead of the store now: forget them.
    for (MemberId m : touched_languages) languages_->Forget(m);
    return write_status;
  }

  for (const Group& g : groups) {
    result.accepted += g.end - g.begin;
    metrics_.ingested[g.shard->index]->Inc(g.end - g.begin);
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Reads

absl::StatusOr<std::shared_ptr<const std::string>> ViewingService::ReadSegment(
    Shard& shard, MemberId member, const SegmentRef& ref) {
  return ReadSegment(shard.compressed, shard.ttl_ms, member, ref);
}

absl::StatusOr<std::shared_ptr<const std::string>> ViewingService::ReadSegment(
    store::Table* table, Millis ttl_ms, MemberId member, const SegmentRef& ref) {
  auto row = table->Get(MemberKey(member), SegmentKey(ref.id));
  if (absl::IsNotFound(row.status()) &&
      TtlExpired(ref.max_event_time, ttl_ms, clock_->NowMillis())) {
    // Every record of the chunk has expired and so has its row (chunk rows carry the
    // expiry of the version that wrote them); the next roll-up drops it from the metadata.
    return std::shared_ptr<const std::string>();
  }
  if (!row.ok()) {
    return absl::DataLossError("compressed history of member " + std::to_string(member) +
                               ": segment " + std::to_string(ref.id) +
                               " unreadable: " + row.status().ToString());
  }
  if (row->size() != ref.bytes || XXH3_64bits(row->data(), row->size()) != ref.checksum) {
    return absl::DataLossError("compressed history of member " + std::to_string(member) +
                               ": segment " + std::to_string(ref.id) + " checksum mismatch");
  }
  return std::make_shared<const std::string>(std::move(*row));
}

absl::StatusOr<std::vector<ViewingRecord>> ViewingService::DecodeChunk(
    Shard& shard, MemberId member, const CompressedHistory& h, size_t i, size_t want,
    const std::function<bool(const ViewingRecord&)>& qualifies) {
  std::shared_ptr<const std::string> bytes = h.segments[i];
  if (!bytes) {
    // Not cached (a miss loads only the newest chunks): read it from the store.
    STRATA_ASSIGN_OR_RETURN(bytes, ReadSegment(shard, member, h.meta.segments[i]));
    if (!bytes) return std::vector<ViewingRecord>();  // expired and gone
  }
  if (!qualifies) want = SIZE_MAX;
  return DecodeNewest(*bytes, member, shard.kind, h.meta.segments[i].records, want,
                      qualifies ? qualifies : [](const ViewingRecord&) { return true; });
}

absl::StatusOr<CachedHistory> ViewingService::LoadFromStore(Shard& shard, MemberId member,
                                                            size_t newest_segments,
                                                            Millis live_from, bool parallel) {
  const std::string partition = MemberKey(member);
  auto scan_live = [&]() -> absl::StatusOr<std::vector<ViewingRecord>> {
    std::vector<ViewingRecord> live;
    STRATA_RETURN_IF_ERROR(ScanLiveRows(shard.live, member, shard.kind, live_from,
                                        [&](std::string&&, ViewingRecord&& r) {
                                          live.push_back(std::move(r));
                                          return absl::OkStatus();
                                        }));
    return live;  // in clustering order = PlaybackKey order
  };
  // Live rows on a pool thread while this thread reads the compressed version.
  std::future<absl::StatusOr<std::vector<ViewingRecord>>> live_future;
  if (parallel) live_future = read_pool_->Submit(scan_live);

  CachedHistory h;
  absl::Status compressed_status = [&]() -> absl::Status {
    auto meta_row = shard.compressed->Get(partition, kMetaKey);
    if (absl::IsNotFound(meta_row.status())) return absl::OkStatus();
    STRATA_RETURN_IF_ERROR(meta_row.status());
    auto history = std::make_shared<CompressedHistory>();
    STRATA_ASSIGN_OR_RETURN(history->meta, DecodeMeta(*meta_row));
    const auto& refs = history->meta.segments;
    history->segments.resize(refs.size());
    const size_t first = refs.size() - std::min(newest_segments, refs.size());
    std::vector<absl::StatusOr<std::shared_ptr<const std::string>>> segments(refs.size(),
                                                                            nullptr);
    // Segments are read in parallel; the newest on this thread.
    std::vector<std::future<void>> futures;
    for (size_t i = first; i + 1 < refs.size(); ++i) {
      if (parallel) {
        futures.push_back(read_pool_->Submit(
            [&, i] { segments[i] = ReadSegment(shard, member, refs[i]); }));
      } else {
        segments[i] = ReadSegment(shard, member, refs[i]);
      }
    }
    if (first < refs.size()) segments.back() = ReadSegment(shard, member, refs.back());
    for (auto& f : futures) f.get();
    for (size_t i = first; i < refs.size(); ++i) {
      STRATA_RETURN_IF_ERROR(segments[i].status());
      if (*segments[i]) history->bytes += (*segments[i])->size();
      history->segments[i] = std::move(*segments[i]);
    }
    h.compressed = std::move(history);
    return absl::OkStatus();
  }();
  auto live = parallel ? live_future.get() : scan_live();
  STRATA_RETURN_IF_ERROR(compressed_status);
  STRATA_RETURN_IF_ERROR(live.status());
  h.live = std::make_shared<std::vector<ViewingRecord>>(std::move(*live));
  return h;
}

absl::StatusOr<CachedHistory> ViewingService::GetHistory(
    Shard& shard, MemberId member, const std::function<void()>& on_miss) {
  if (shared_) {
    STRATA_ASSIGN_OR_RETURN(SharedHistoryCache::Lookup found,
                            shared_->Get(shard.index, member, shard.kind));
    if (found.entry) return std::move(*found.entry);
    if (on_miss) on_miss();
    // Every live row: LiveFrom knows only this process's writes.
    STRATA_ASSIGN_OR_RETURN(CachedHistory h,
                            LoadFromStore(shard, member, kSegmentsLoadedOnMiss, INT64_MIN));
    shared_->Fill(shard.index, member, found.token, h);
    return h;
  }
  uint64_t generation = 0;
  if (auto hit = cache_->Get(shard.index, member, &generation)) return std::move(*hit);
  if (on_miss) on_miss();
  STRATA_ASSIGN_OR_RETURN(CachedHistory h,
                          LoadFromStore(shard, member, kSegmentsLoadedOnMiss,
                                        LiveFrom(shard, member)));
  cache_->FillIfUnchanged(shard.index, member, generation, h);
  return h;
}

absl::StatusOr<CachedHistory> ViewingService::ReadEntry(Shard& shard, MemberId member,
                                                        const std::function<void()>& on_miss) {
  STRATA_ASSIGN_OR_RETURN(CachedHistory h, GetHistory(shard, member, on_miss));
  // A live backlog over the threshold (e.g. after a restart lost the counters) queues a
  // roll-up; the worker re-checks the real figures.
  if (h.Live().size() >= RollupThreshold(h.compressed ? h.compressed->meta.records() : 0)) {
    EnqueueRollup(shard, member);
  }
  if (shard.kind == Kind::kPlay) {
    // Records past the recent tier's age queue a rotation (batched by the slack).
    Millis oldest = INT64_MAX;
    if (h.compressed && !h.compressed->meta.segments.empty()) {
      oldest = h.compressed->meta.segments.front().first_started_at;
    }
    for (const auto& r : h.Live()) oldest = std::min(oldest, r.started_at);
    MaybeQueueRotation(member, oldest, INT64_MAX);
  }
  return h;
}

// Which records a history page may show: started in [since, until), not before the detailed
// history (older plays exist only in the summary), after the cursor, and unexpired.
struct ViewingService::PageFilter {
  Millis since;
  Millis until;
  bool has_cursor = false;
  ViewingRecord cursor;  // only started_at and session matter
  Millis ttl_ms = 0;
  Millis now = 0;
  // Plays: detailed records start here, once the past tier has been consulted.
  Millis detail_from = INT64_MIN;

  bool operator()(const ViewingRecord& r) const {
    return r.started_at >= since && r.started_at < until && r.started_at >= detail_from &&
           (!has_cursor || kKeyLess(r, cursor)) && !TtlExpired(r.event_time, ttl_ms, now);
  }
};

absl::StatusOr<HistoryPage> ViewingService::ReadHistory(MemberId member,
                                                        const HistoryQuery& query) {
  if (query.limit < 1 || query.limit > 1000) {
    return absl::InvalidArgumentError("limit: must be between 1 and 1000");
  }
  if (query.since > query.until) {
    return absl::InvalidArgumentError("since: must not be after until");
  }
  PageFilter filter{query.since, query.until};
  filter.has_cursor = !query.cursor.empty();
  if (filter.has_cursor) {
    STRATA_RETURN_IF_ERROR(
        DecodeCursor(query.cursor, &filter.cursor.started_at, &filter.cursor.session));
  }
  Shard& shard = ShardFor(query.kind);
  filter.ttl_ms = shard.ttl_ms;
  filter.now = clock_->NowMillis();
  // Held while chunks not in the cache are read, so no roll-up deletes them meanwhile.
  const auto lock_start = std::chrono::steady_clock::now();
  std::shared_lock<std::shared_mutex> lock(MemberLock(member));
  metrics_.read_lock_wait_seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - lock_start).count());
  // Plays before recent_floor are in the past tier (or only in the summary). A query that
  // reaches them reads the past tier in parallel with a recent tier that is not cached (one
  // from the cache costs no store read); whether the page needs the past tier at all is
  // known only once the recent tier is read, so this read may be wasted (cache misses only).
  const Millis recent_floor = filter.now - options_.recent_age_ms;
  const Millis before =
      filter.has_cursor ? std::min(query.until, filter.cursor.started_at + 1) : query.until;
  std::future<absl::StatusOr<PastTier>> past_prefetch;
  WaitOnExit wait_prefetch{past_prefetch};  // the prefetch never outlives the lock
  const bool reaches_past =
      query.kind == Kind::kPlay && query.since < recent_floor && query.since < before;
  ObserveReadOnExit observe{metrics_.read_seconds_hit, metrics_.read_seconds_miss};
  auto on_miss = [&] {
    observe.missed = true;
    if (!reaches_past) return;
    metrics_.past_prefetches->Inc();
    past_prefetch = read_pool_->Submit([this, member, limit = query.limit,
                                        since = query.since, before] {
      return PrefetchPast(member, limit, since, before);
    });
  };
  STRATA_ASSIGN_OR_RETURN(CachedHistory h, ReadEntry(shard, member, on_miss));
  STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> records,
                          RecentCandidates(shard, member, h, query, recent_floor, filter));
  HistoryPage page;
  if (query.kind == Kind::kPlay) {
    STRATA_RETURN_IF_ERROR(AddPastToPage(member, query, recent_floor, before, past_prefetch,
                                         &filter, &records, &page));
  }
  FillPage(records, query, filter, &page);
  return page;
}

absl::StatusOr<std::vector<ViewingRecord>> ViewingService::RecentCandidates(
    Shard& shard, MemberId member, const CachedHistory& h, const HistoryQuery& query,
    Millis recent_floor, const PageFilter& filter) {
  // Decode segments from the newest down until they alone hold limit + 1 qualifying records:
  // then the page (and whether another follows) cannot depend on older segments, because
  // segments cover disjoint started_at ranges and live rows only add or replace records.
  std::vector<std::vector<ViewingRecord>> decoded;  // newest segment first
  if (h.compressed) {
    const auto& refs = h.compressed->meta.segments;
    size_t found = 0;
    for (size_t i = refs.size(); i-- > 0 && found <= query.limit;) {
      if (refs[i].first_started_at >= query.until) continue;
      if (filter.has_cursor && refs[i].first_started_at > filter.cursor.started_at) continue;
      if (refs[i].last_started_at < query.since) break;
      STRATA_ASSIGN_OR_RETURN(
          std::vector<ViewingRecord> part,
          DecodeChunk(shard, member, *h.compressed, i, query.limit + 1 - found, std::cref(filter)));
      found += std::count_if(part.begin(), part.end(), std::cref(filter));
      decoded.push_back(std::move(part));
    }
  }
  std::vector<ViewingRecord> records;
  if (decoded.size() == 1) {
    records = std::move(decoded.front());
  } else {
    for (auto it = decoded.rbegin(); it != decoded.rend(); ++it) {
      for (auto& r : *it) records.push_back(std::move(r));
    }
  }
  std::vector<ViewingRecord> newest_live;
  const std::span<const ViewingRecord> live =
      TrimToPageReach(h.Live(), query, recent_floor, filter, &records, &newest_live);
  MergeRecords(&records, live);
  return records;
}

std::span<const ViewingRecord> ViewingService::TrimToPageReach(
    std::span<const ViewingRecord> live, const HistoryQuery& query, Millis recent_floor,
    const PageFilter& filter, std::vector<ViewingRecord>* records,
    std::vector<ViewingRecord>* newest_live) {
  // Only the newest limit + 1 qualifying records of the union of chunks and live rows can
  // be on the page. If one side alone holds that many (counting only plays of the recent
  // tier, which the past tier and the summary boundary cannot affect), nothing older than
  // its (limit+1)-th can be either, so both sides are cut below the larger of the two
  // bounds before merging: a hot member's read then merges about `limit` of its live rows
  // instead of copying and sorting up to rollup_max_live_rows of them. (Counting either
  // side's own versions is safe: a playback's merged version has the latest event_time, so
  // it qualifies whenever one of its versions does.)
  auto counts = [&](const ViewingRecord& r) {
    return filter(r) && (query.kind != Kind::kPlay || r.started_at >= recent_floor);
  };
  std::optional<ViewingRecord> bound;  // records (sorted, unique): the (limit+1)-th newest
  for (size_t i = records->size(), n = 0; i-- > 0;) {
    if (counts((*records)[i]) && ++n == query.limit + 1) {
      bound = (*records)[i];
      break;
    }
  }
  // Live rows: the (limit+1)-th newest distinct qualifying playback, from a partial sort
  // of the qualifying rows (twice as many as needed, as repeats of a playback count once).
  // Newest arrivals first: live rows are in arrival order, which mostly follows started_at,
  // so the partial sort's heap fills with the newest rows at once and each older row costs
  // one comparison (in arrival order every row displaced the heap's top: ~4% of the
  // server's CPU in a compare run's phase 2).
  std::vector<const ViewingRecord*> candidates;
  candidates.reserve(live.size());
  for (auto it = live.rbegin(); it != live.rend(); ++it) {
    if (counts(*it) && (!bound || !kKeyLess(*it, *bound))) candidates.push_back(&*it);
  }
  if (candidates.size() > query.limit) {
    auto newer = [](const ViewingRecord* a, const ViewingRecord* b) { return kKeyLess(*b, *a); };
    const size_t take = std::min(candidates.size(), 2 * (query.limit + 1));
    std::partial_sort(candidates.begin(), candidates.begin() + take, candidates.end(), newer);
    size_t distinct = 0;
    for (size_t i = 0; i < take; ++i) {
      if (i == 0 || kKeyLess(*candidates[i], *candidates[i - 1])) ++distinct;
      if (distinct == query.limit + 1) {
        bound = *candidates[i];  // not older than the records' bound: it was filtered by it
        break;
      }
    }
  }
  if (!bound) return live;
  records->erase(records->begin(),
                 std::lower_bound(records->begin(), records->end(), *bound, kKeyLess));
  for (const auto& r : live) {
    if (!kKeyLess(r, *bound)) newest_live->push_back(r);
  }
  return *newest_live;
}

absl::Status ViewingService::AddPastToPage(MemberId member, const HistoryQuery& query,
                                           Millis recent_floor, Millis before,
                                           std::future<absl::StatusOr<PastTier>>& prefetch,
                                           PageFilter* filter,
                                           std::vector<ViewingRecord>* records,
                                           HistoryPage* page) {
  // The past tier holds only plays that started before now - recent_age: it cannot change
  // the page when the recent tier alone has limit + 1 qualifying plays after that.
  size_t recent_found = 0;
  for (const auto& r : *records) {
    if (r.started_at >= recent_floor && (*filter)(r)) ++recent_found;
  }
  if (query.since >= recent_floor || recent_found > query.limit) return absl::OkStatus();
  std::optional<absl::StatusOr<PastTier>> prefetched;
  if (prefetch.valid()) {
    prefetched = prefetch.get();
    metrics_.past_prefetch_used->Inc();
  }
  // A failed prefetch is retried by AddPastCandidates itself.
  const PastTier* past = prefetched && prefetched->ok() ? &**prefetched : nullptr;
  // The filter is passed by reference: AddPastCandidates sets its detail_from first.
  STRATA_RETURN_IF_ERROR(AddPastCandidates(member, query.limit, query.since, before,
                                           std::cref(*filter), records, &filter->detail_from,
                                           past));
  page->detail_from = filter->detail_from;
  return absl::OkStatus();
}

void ViewingService::FillPage(std::vector<ViewingRecord>& records, const HistoryQuery& query,
                              const PageFilter& filter, HistoryPage* page) {
  // Newest first; records below `since` cannot qualify, nor can any older one.
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    if (!filter(*it)) {
      if (it->started_at < query.since) break;
      continue;
    }
    if (page->records.size() == query.limit) {
      const ViewingRecord& last = page->records.back();
      page->next_cursor = EncodeCursor(last.started_at, last.session);
      break;
    }
    page->records.push_back(std::move(*it));
  }
}

absl::Status ViewingService::InvalidateShared(MemberId member,
                                              std::initializer_list<int> shard_indexes) {
  if (!shared_) return absl::OkStatus();
  std::vector<std::pair<int, MemberId>> changed;
  for (int index : shard_indexes) changed.emplace_back(index, member);
  return shared_->Invalidate(changed);
}

// ---------------------------------------------------------------------------------------
// Erasure

absl::Status ViewingService::EraseMember(MemberId member) {
  std::lock_guard<std::mutex> rollup_lock(rollup_locks_[StripeOf(member)]);
  std::unique_lock<std::shared_mutex> lock(MemberLock(member));
  std::unique_lock<std::mutex> language_lock = languages_->LockMember(member);
  const std::string partition = MemberKey(member);
  for (auto& shard : shards_) {
    STRATA_RETURN_IF_ERROR(shard->live->DeleteRange(partition, "", ""));
    STRATA_RETURN_IF_ERROR(shard->compressed->DeleteRange(partition, "", ""));
    cache_->Erase(shard->index, member);
    std::lock_guard<std::mutex> counts_lock(shard->counts_mu);
    shard->counts.erase(member);
  }
  STRATA_RETURN_IF_ERROR(past_->DeleteRange(partition, "", ""));
  STRATA_RETURN_IF_ERROR(historical_->DeleteRange(partition, "", ""));
  summary_cache_->Invalidate(member);
  STRATA_RETURN_IF_ERROR(InvalidateShared(member, {0, 1}));
  STRATA_RETURN_IF_ERROR(languages_->EraseLocked(member));
  STRATA_LOG_INFO("member erased", "member", member);
  return absl::OkStatus();
}

}  // namespace strata::viewing
