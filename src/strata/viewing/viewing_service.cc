#include "strata/viewing/viewing_service.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "strata/base/coding.h"
#include "strata/base/crash_point.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"
#include "strata/base/ttl.h"
#include "strata/viewing/codec.h"
#include "strata/viewing/segment_plan.h"
#include "strata/viewing/viewing_internal.h"
#include "strata/viewing/segments.h"

namespace strata::viewing {
namespace {

using internal::kMetaKey;
using internal::ScanLiveRows;
using internal::StripeOf;
using internal::MemberKey;
using internal::SegmentKey;
using internal::WritePlannedSegments;
using internal::DeleteSegments;
using internal::CommittedHistory;

constexpr auto kKeyLess = [](const ViewingRecord& a, const ViewingRecord& b) {
  return PlaybackKey(a) < PlaybackKey(b);
};

}  // namespace

// The current language preference per (member, content language): the comparison point of
// the language write filter. One bounded map per member stripe, guarded by that stripe's
// ViewingService::language_locks_ entry.
struct ViewingService::LanguageCache {
  static constexpr size_t kMaxEntriesPerStripe = 256;
  struct Key {
    MemberId member;
    std::string content_lang;
    bool operator==(const Key&) const = default;
  };
  template <typename H>
  friend H AbslHashValue(H h, const Key& k) {
    return H::combine(std::move(h), k.member, k.content_lang);
  }
  // Open addressing: a lookup touches one group of slots instead of a bucket list and a
  // node (the node map's lookups took ~3.5% of the server's CPU during ingest).
  using Map = absl::flat_hash_map<Key, LanguagePreference>;
  std::unique_ptr<Map[]> stripes{new Map[kLockStripes]};
};

ViewingService::ViewingService(store::RowStore* store, Clock* clock,
                               const ViewingOptions& options, MetricsRegistry* metrics)
    : store_(store),
      clock_(clock),
      options_(options),
      metrics_(metrics),
      cache_(std::make_unique<HistoryCache>(options.cache_bytes, metrics)),
      summary_cache_(std::make_unique<SummaryCache>(options.summary_cache_bytes, metrics)),
      member_locks_(new std::shared_mutex[kLockStripes]),
      language_locks_(new std::mutex[kLockStripes]),
      rollup_locks_(new std::mutex[kLockStripes]),
      write_seq_(new std::atomic<uint64_t>[kLockStripes]()),
      languages_cache_(std::make_unique<LanguageCache>()),
      read_pool_(std::make_unique<ThreadPool>(options.read_threads, 0, "strata-read",
                                              options.read_thread_slice_us)) {
  if (options.encode_threads > 0) {
    encode_pool_ = std::make_unique<ThreadPool>(options.encode_threads, /*nice_increment=*/10,
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
    MetricsRegistry* metrics, store::Queue* queue) {
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
  std::unique_ptr<ViewingService> s(new ViewingService(store, clock, options, metrics));
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
  STRATA_ASSIGN_OR_RETURN(languages_,
                          store_->OpenTable({"languages", store::TableProfile::kIndex}));
  STRATA_ASSIGN_OR_RETURN(past_, store_->OpenTable({"plays_past_compressed",
                                                    store::TableProfile::kCompressed}));
  STRATA_ASSIGN_OR_RETURN(historical_, store_->OpenTable({"plays_historical",
                                                          store::TableProfile::kCompressed}));

  const char* kIngested = "strata_viewing_records_ingested_total";
  ingested_[0] = metrics_->GetCounter(kIngested, "Viewing records stored", "kind=\"play\"");
  ingested_[1] = metrics_->GetCounter(kIngested, "Viewing records stored", "kind=\"preview\"");
  dropped_previews_ = metrics_->GetCounter("strata_viewing_filter_dropped_total",
                                           "Records the write filters chose not to store",
                                           "filter=\"short_preview\"");
  dropped_expired_ = metrics_->GetCounter("strata_viewing_filter_dropped_total",
                                          "Records the write filters chose not to store",
                                          "filter=\"expired_on_arrival\"");
  language_changes_ = metrics_->GetCounter("strata_viewing_language_changes_total",
                                           "Language preference changes stored");
  language_unchanged_ = metrics_->GetCounter(
      "strata_viewing_filter_dropped_total", "Records the write filters chose not to store",
      "filter=\"language_unchanged\"");
  segment_summaries_built_ = metrics_->GetCounter(
      "strata_viewing_segment_summaries_total",
      "Recent-tier segments summarised for a summary read, by whether the previous version's "
      "summary of the same segment was reused or the segment decoded",
      "source=\"decoded\"");
  segment_summaries_reused_ = metrics_->GetCounter(
      "strata_viewing_segment_summaries_total",
      "Recent-tier segments summarised for a summary read, by whether the previous version's "
      "summary of the same segment was reused or the segment decoded",
      "source=\"reused\"");
  rollups_ = metrics_->GetCounter("strata_viewing_rollups_total",
                                  "Roll-ups of live rows into a new compressed version");
  rollup_records_ = metrics_->GetCounter("strata_viewing_rollup_live_rows_total",
                                         "Live rows moved into compressed versions");
  rollup_errors_ = metrics_->GetCounter("strata_viewing_rollup_errors_total",
                                        "Roll-ups that failed (retried on the next trigger)");
  rollup_seconds_ = metrics_->GetHistogram("strata_viewing_rollup_seconds",
                                           "Duration of one member roll-up");
  metrics_->AddGauge("strata_viewing_rollup_backlog", "Members queued for a roll-up", [this] {
    std::lock_guard<std::mutex> lock(queue_mu_);
    return std::vector<std::pair<std::string, double>>{
        {"", static_cast<double>(queue_.size())}};
  });
  metrics_->AddGauge("strata_viewing_cache_bytes", "Bytes held by the history cache", [this] {
    return std::vector<std::pair<std::string, double>>{
        {"", static_cast<double>(cache_->bytes())}};
  });
  rotations_ = metrics_->GetCounter("strata_viewing_rotations_total",
                                    "Member rotations between age tiers");
  rotation_errors_ = metrics_->GetCounter("strata_viewing_rotation_errors_total",
                                          "Rotations that failed (retried on the next trigger)");
  const char* read_help =
      "History reads (one page), by whether the history cache held the member's recent tier";
  read_seconds_hit_ =
      metrics_->GetHistogram("strata_viewing_read_seconds", read_help, "cache=\"hit\"");
  read_seconds_miss_ =
      metrics_->GetHistogram("strata_viewing_read_seconds", read_help, "cache=\"miss\"");
  past_prefetches_ = metrics_->GetCounter(
      "strata_viewing_past_prefetches_total",
      "Reads that read the past tier in parallel with a recent tier not in the cache");
  past_prefetch_used_ = metrics_->GetCounter(
      "strata_viewing_past_prefetches_used_total",
      "Of those, the reads whose page needed the past tier (the others wasted the read)");
  moved_to_past_ = metrics_->GetCounter("strata_viewing_rotated_records_total",
                                        "Records moved between age tiers", "to=\"past\"");
  folded_to_historical_ = metrics_->GetCounter(
      "strata_viewing_rotated_records_total", "Records moved between age tiers",
      "to=\"historical\"");
  late_dropped_ = metrics_->GetCounter(
      "strata_viewing_filter_dropped_total", "Records the write filters chose not to store",
      "filter=\"older_than_summary\"");
  rotation_seconds_ = metrics_->GetHistogram("strata_viewing_rotation_seconds",
                                             "Duration of one member rotation");
  metrics_->AddGauge("strata_viewing_rotation_backlog", "Members queued for a rotation", [this] {
    return std::vector<std::pair<std::string, double>>{
        {"", static_cast<double>(RotationBacklog())}};
  });
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
    sweep_timer_ = std::thread([this] {
      ThreadPool::NameCurrentThread("strata-sweeptimer");
      std::unique_lock<std::mutex> lock(rotation_mu_);
      for (;;) {
        rotation_cv_.wait_for(lock,
                              std::chrono::milliseconds(options_.rotation_sweep_interval_ms),
                              [this] { return rotation_stopping_; });
        if (rotation_stopping_) return;
        lock.unlock();
        StartRotationSweep();
        lock.lock();
      }
    });
  }
  return absl::OkStatus();
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
      dropped_previews_->Inc();
      continue;
    }
    if (TtlExpired(r.event_time, ShardFor(r.kind).ttl_ms, now)) {
      ++result.dropped;
      dropped_expired_->Inc();
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
    size_t begin, end;  // range in `order`
  };
  std::vector<Group> groups;
  std::vector<store::PartitionWrite> writes;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && order[j]->kind == order[i]->kind &&
           order[j]->member == order[i]->member) {
      ++j;
    }
    Shard& shard = ShardFor(order[i]->kind);
    store::PartitionWrite w{shard.live, MemberKey(order[i]->member), {}};
    for (size_t k = i; k < j; ++k) {
      const ViewingRecord& r = *order[k];
      w.batch.PutIfNewer(LiveClusteringKey(r.started_at, r.session),
                         static_cast<uint64_t>(r.event_time), EncodeLiveValue(r),
                         TtlExpiresAt(r.event_time, shard.ttl_ms));
    }
    writes.push_back(std::move(w));
    groups.push_back({&shard, order[i]->member, i, j});
    i = j;
  }

  // Language preferences come from plays: store a change only when it differs.
  std::vector<MemberId> touched_languages;
  for (const Group& g : groups) {
    if (g.shard->kind != Kind::kPlay) continue;
    STRATA_RETURN_IF_ERROR(PlanLanguageChanges(
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
      std::span<const ViewingRecord* const> group(order.data() + g.begin, g.end - g.begin);
      cache_->MergeWrites(g.shard->index, g.member, group);
      // Inside the shared section, so a roll-up's exclusive phase sees every completed
      // write counted (see RollUpMember).
      if (NoteLiveWrites(*g.shard, g.member, group)) rollups_due.emplace_back(g.shard, g.member);
      write_seq_[StripeOf(g.member)].fetch_add(1, std::memory_order_release);
    }
  }
  for (size_t s : stripes) member_locks_[s].unlock_shared();
  for (const auto& [shard, member] : rollups_due) EnqueueRollup(*shard, member);
  if (!write_status.ok()) {
    // The language comparison points may be ahead of the store now: forget them.
    for (MemberId m : touched_languages) ForgetLanguages(m);
    return write_status;
  }

  for (const Group& g : groups) {
    result.accepted += g.end - g.begin;
    ingested_[g.shard->index]->Inc(g.end - g.begin);
  }
  return result;
}

namespace {
std::string CurrentLanguageKey(std::string_view content_lang) {
  std::string k = "c";
  k.append(content_lang);
  return k;
}
// "h" + ordered event_time + content_lang.
std::string LanguageChangeKey(Millis event_time, std::string_view content_lang) {
  std::string k = "h";
  coding::PutOrderedInt64(&k, event_time);
  k.append(content_lang);
  return k;
}
}  // namespace

absl::Status ViewingService::PlanLanguageChanges(
    std::span<const ViewingRecord* const> member_records,
    std::vector<store::PartitionWrite>* writes, std::vector<MemberId>* touched) {
  if (member_records.empty()) return absl::OkStatus();
  const MemberId member = member_records.front()->member;
  std::vector<const ViewingRecord*> by_time(member_records.begin(), member_records.end());
  std::stable_sort(by_time.begin(), by_time.end(), [](const auto* a, const auto* b) {
    return a->event_time < b->event_time;
  });
  store::PartitionWrite w{languages_, MemberKey(member), {}};
  const Millis expire_ttl = options_.language_ttl_ms;
  const size_t stripe = StripeOf(member);
  std::lock_guard<std::mutex> stripe_lock(language_locks_[stripe]);
  LanguageCache::Map& current_prefs = languages_cache_->stripes[stripe];
  // The preference the previous record left for its content language, when known: a member's
  // events in one batch mostly repeat it, and then no lookup is needed.
  const ViewingRecord* same_as = nullptr;
  uint64_t unchanged = 0;
  for (const ViewingRecord* r : by_time) {
    if (r->content_lang.empty()) continue;
    if (same_as && same_as->content_lang == r->content_lang &&
        same_as->audio_lang == r->audio_lang && same_as->subtitle_lang == r->subtitle_lang) {
      ++unchanged;  // equal to the current preference (and not older than what set it)
      continue;
    }
    same_as = nullptr;
    LanguageCache::Key key{member, r->content_lang};
    auto it = current_prefs.find(key);
    if (it == current_prefs.end()) {
      // Not known here (first sight, or after a restart): the stored current preference.
      LanguagePreference stored;
      auto row = languages_->Get(w.partition, CurrentLanguageKey(r->content_lang));
      if (row.ok()) {
        STRATA_RETURN_IF_ERROR(DecodeLanguageValue(*row, &stored));
        if (current_prefs.size() >= LanguageCache::kMaxEntriesPerStripe) {
          current_prefs.clear();  // crude bound; entries are refilled from the store
        }
        it = current_prefs.emplace(key, std::move(stored)).first;
      } else if (!absl::IsNotFound(row.status())) {
        return row.status();
      }
    }
    if (it != current_prefs.end() &&
        (r->event_time <= it->second.event_time ||
         (it->second.audio_lang == r->audio_lang &&
          it->second.subtitle_lang == r->subtitle_lang))) {
      ++unchanged;
      if (it->second.audio_lang == r->audio_lang && it->second.subtitle_lang == r->subtitle_lang) {
        same_as = r;
      }
      continue;
    }
    LanguagePreference next{r->content_lang, r->audio_lang, r->subtitle_lang, r->event_time};
    std::string value = EncodeLanguageValue(next);
    w.batch.PutIfNewer(CurrentLanguageKey(r->content_lang),
                       static_cast<uint64_t>(r->event_time), value);
    w.batch.Put(LanguageChangeKey(r->event_time, r->content_lang), value,
                TtlExpiresAt(r->event_time, expire_ttl));
    language_changes_->Inc();
    same_as = r;
    if (it != current_prefs.end()) {
      it->second = std::move(next);
    } else {
      if (current_prefs.size() >= LanguageCache::kMaxEntriesPerStripe) current_prefs.clear();
      current_prefs.emplace(std::move(key), std::move(next));
    }
  }
  if (unchanged > 0) language_unchanged_->Inc(unchanged);
  if (!w.batch.empty()) {
    writes->push_back(std::move(w));
    touched->push_back(member);
  }
  return absl::OkStatus();
}

void ViewingService::ForgetLanguages(MemberId member) {
  const size_t stripe = StripeOf(member);
  std::lock_guard<std::mutex> lock(language_locks_[stripe]);
  absl::erase_if(languages_cache_->stripes[stripe],
                 [member](const auto& entry) { return entry.first.member == member; });
}

// ---------------------------------------------------------------------------------------
// Roll-up triggering and workers

bool ViewingService::NoteLiveWrites(Shard& shard, MemberId member,
                                    std::span<const ViewingRecord* const> records) {
  Millis min_started = INT64_MAX;
  for (const ViewingRecord* r : records) min_started = std::min(min_started, r->started_at);
  const Millis now = clock_->NowMillis();
  std::lock_guard<std::mutex> lock(shard.counts_mu);
  auto [it, inserted] = shard.counts.try_emplace(member);
  Shard::LiveCount& c = it->second;
  if (inserted) c.trigger_at = options_.rollup_min_live_rows;  // live_from stays "unknown"
  if (c.unrolled_since == 0) c.unrolled_since = now;
  c.live_from = std::min(c.live_from, min_started);
  c.written_min = std::min(c.written_min, min_started);
  c.rows += records.size();
  if (c.rows < c.trigger_at) return false;
  c.rows = 0;  // the worker sets the true figure
  return true;
}

void ViewingService::MarkLiveWrites(Shard& shard, MemberId member) {
  std::lock_guard<std::mutex> lock(shard.counts_mu);
  shard.counts[member].written_min = INT64_MAX;
}

absl::Status ViewingService::UnchangedLiveRows(Shard& shard, MemberId member,
                                               const std::vector<ViewingRecord>& read,
                                               uint64_t write_seq, store::WriteBatch* deletes,
                                               std::vector<Millis>* survivors) {
  const bool unchanged =
      write_seq_[StripeOf(member)].load(std::memory_order_acquire) == write_seq;
  if (unchanged || read.empty()) {
    for (const auto& r : read) deletes->Delete(LiveClusteringKey(r.started_at, r.session));
    return absl::OkStatus();
  }
  // A write touched the member's stripe: which rolled rows still hold the version that was
  // read? One scan of the partition from the first rolled row, merged with `read` (both in
  // clustering order), instead of a point read per row (each probing every memtable and
  // level: ~5% of the server's CPU during ingest). It stops after the last rolled row: the
  // smallest key above it is the key with a zero byte appended.
  size_t i = 0;
  std::string end_key = LiveClusteringKey(read.back().started_at, read.back().session);
  end_key.push_back('\0');
  return ScanLiveRows(
      shard.live, member, shard.kind, read.front().started_at,
      [&](std::string&& key, ViewingRecord&& stored) -> absl::Status {
        // Rolled rows sorting before this one are gone (erased meanwhile): nothing to delete.
        while (i < read.size() && std::tie(read[i].started_at, read[i].session) <
                                      std::tie(stored.started_at, stored.session)) {
          ++i;
        }
        if (i < read.size() && read[i].started_at == stored.started_at &&
            read[i].session == stored.session) {
          if (stored.event_time == read[i].event_time) {
            deletes->Delete(std::move(key));
          } else {
            survivors->push_back(stored.started_at);  // a newer event replaced it
          }
          ++i;
        }
        return absl::OkStatus();
      },
      std::move(end_key));
}

Millis ViewingService::LiveFrom(Shard& shard, MemberId member) {
  std::lock_guard<std::mutex> lock(shard.counts_mu);
  auto it = shard.counts.find(member);
  return it == shard.counts.end() ? INT64_MIN : it->second.live_from;
}

void ViewingService::EnqueueRollup(Shard& shard, MemberId member, bool by_age) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (by_age) queued_by_age_[shard.index].insert(member);
    if (!queued_[shard.index].insert(member).second) return;
    queue_.emplace_back(shard.index, member);
  }
  queue_cv_.notify_one();
}

size_t ViewingService::QueueAgedRollups() {
  if (options_.rollup_max_live_age_ms <= 0) return 0;
  const Millis now = clock_->NowMillis();
  size_t queued = 0;
  for (auto& shard_ptr : shards_) {
    Shard& shard = *shard_ptr;
    std::vector<MemberId> due;
    {
      std::lock_guard<std::mutex> lock(shard.counts_mu);
      for (auto& [member, c] : shard.counts) {
        if (c.unrolled_since != 0 && now - c.unrolled_since >= options_.rollup_max_live_age_ms) {
          // Re-armed: the roll-up clears it, or sets it to now if rows stay live; a failed
          // one is retried an age later.
          c.unrolled_since = now;
          due.push_back(member);
        }
      }
    }
    for (MemberId member : due) EnqueueRollup(shard, member, /*by_age=*/true);
    queued += due.size();
  }
  return queued;
}

absl::Status ViewingService::CountStoredLiveRows(Shard& shard) {
  std::unordered_map<MemberId, uint64_t> rows;
  STRATA_ASSIGN_OR_RETURN(auto ranges, shard.live->SplitRanges(1));
  for (const auto& range : ranges) {
    std::string cursor;
    do {
      {
        std::lock_guard<std::mutex> lock(queue_mu_);
        if (stopping_) return absl::CancelledError("stopping");
      }
      STRATA_ASSIGN_OR_RETURN(auto page, shard.live->ScanRange(range, store::kMaxPageRows, cursor));
      for (const auto& row : page.rows) {
        std::string_view p = row.partition;
        uint64_t member;
        if (coding::GetFixed64BE(&p, &member)) ++rows[member];
      }
      cursor = std::move(page.next_cursor);
    } while (!cursor.empty());
  }
  const Millis now = clock_->NowMillis();
  std::lock_guard<std::mutex> lock(shard.counts_mu);
  for (const auto& [member, n] : rows) {
    auto [it, inserted] = shard.counts.try_emplace(member);
    if (inserted) it->second.trigger_at = options_.rollup_min_live_rows;
    it->second.rows += n;
    if (it->second.unrolled_since == 0) it->second.unrolled_since = now;
  }
  return absl::OkStatus();
}

void ViewingService::AgedRollupLoop() {
  ThreadPool::NameCurrentThread("strata-rollupage");
  ThreadPool::LowerCurrentThreadPriority(5);
  for (auto& shard : shards_) {
    absl::Status s = CountStoredLiveRows(*shard);
    if (absl::IsCancelled(s)) return;
    if (!s.ok()) {
      STRATA_LOG_WARN("counting stored live rows failed; they roll up on their next write",
                      "kind", KindName(shard->kind), "error", s.ToString());
    }
  }
  const auto interval =
      std::chrono::milliseconds(std::min<Millis>(1000, options_.rollup_max_live_age_ms));
  std::unique_lock<std::mutex> lock(queue_mu_);
  while (!stopping_) {
    aged_cv_.wait_for(lock, interval, [this] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    QueueAgedRollups();
    lock.lock();
  }
}

void ViewingService::RollupWorker() {
  // Roll-ups are background work: they yield the CPU to requests.
  ThreadPool::NameCurrentThread("strata-rollup");
  ThreadPool::LowerCurrentThreadPriority(5);
  for (;;) {
    std::pair<int, MemberId> task;
    bool by_age = false;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = queue_.front();
      queue_.pop_front();
      queued_[task.first].erase(task.second);
      by_age = queued_by_age_[task.first].erase(task.second) > 0;
      ++running_rollups_;
    }
    Shard& shard = *shards_[task.first];
    absl::Status s = RollUpMember(shard, task.second, /*force=*/by_age);
    if (!s.ok()) {
      rollup_errors_->Inc();
      STRATA_LOG_WARN("roll-up failed", "member", task.second, "kind", KindName(shard.kind),
                      "error", s.ToString());
    }
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      --running_rollups_;
    }
    idle_cv_.notify_all();
  }
}

void ViewingService::WaitForRollups() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  idle_cv_.wait(lock, [this] { return queue_.empty() && running_rollups_ == 0; });
}

absl::Status ViewingService::RollUp(MemberId member, Kind kind) {
  return RollUpMember(ShardFor(kind), member, /*force=*/true);
}

absl::Status ViewingService::RollUpMember(Shard& shard, MemberId member, bool force) {
  // One roll-up per member at a time (erasure and rotation take this lock too).
  std::lock_guard<std::mutex> rollup_lock(rollup_locks_[StripeOf(member)]);
  return RollUpLocked(shard, member, force);
}

absl::Status ViewingService::RollUpLocked(Shard& shard, MemberId member, bool force) {
  const auto start = std::chrono::steady_clock::now();
  const std::string partition = MemberKey(member);

  // Phase A, under the shared member lock only while reading: writes and reads go on while
  // the new segments are encoded and written (they are unreferenced until the commit).
  // The committed chunks are read only where live rows fall (or taken from the cache).
  CachedHistory current;
  uint64_t write_seq = 0;
  {
    std::shared_lock<std::shared_mutex> lock(MemberLock(member));
    // Mark, then read the write sequence, then scan: a write that bumps the sequence later
    // may not be in the scan, and its started_at is in the mark.
    MarkLiveWrites(shard, member);
    write_seq = write_seq_[StripeOf(member)].load(std::memory_order_acquire);
    STRATA_ASSIGN_OR_RETURN(current, LoadFromStore(shard, member, /*newest_segments=*/0,
                                                   LiveFrom(shard, member)));
    if (current.compressed) {
      auto cached = cache_->PeekCompressed(shard.index, member);
      if (cached && cached->meta.version == current.compressed->meta.version) {
        current.compressed = std::move(cached);
      }
    }
  }
  auto segment_bytes = [&](size_t i) -> absl::StatusOr<std::shared_ptr<const std::string>> {
    if (current.compressed->segments[i]) return current.compressed->segments[i];
    return ReadSegment(shard, member, current.compressed->meta.segments[i]);
  };
  const HistoryMeta old_meta = current.compressed ? current.compressed->meta : HistoryMeta{};
  const uint64_t old_records = old_meta.records();
  const uint64_t threshold = RollupThreshold(old_records);
  {
    std::lock_guard<std::mutex> lock(shard.counts_mu);
    auto& c = shard.counts[member];
    c.trigger_at = threshold;
    c.rows = current.Live().size();
    // Nothing live, and nothing written since this roll-up looked: nothing to age.
    if (current.Live().empty() && c.written_min == INT64_MAX) c.unrolled_since = 0;
  }
  if (current.Live().empty() || (!force && current.Live().size() < threshold)) {
    return absl::OkStatus();
  }

  // Merge the live rows into the segments their started_at falls in; segments no live row
  // touches are kept as they are (wholly expired ones are dropped).
  const std::vector<ViewingRecord>& live = current.Live();  // sorted, unique (from the store)
  SegmentPlanInput plan_in;
  plan_in.member = member;
  plan_in.kind = shard.kind;
  plan_in.current = current.compressed.get();
  plan_in.segment_bytes = segment_bytes;
  plan_in.updates = live;
  plan_in.ttl_ms = shard.ttl_ms;
  plan_in.now = clock_->NowMillis();
  plan_in.segment_records = options_.segment_records;
  plan_in.zstd_level = options_.zstd_level;
  if (run_all_) plan_in.run_all = &run_all_;
  STRATA_ASSIGN_OR_RETURN(SegmentPlan plan, PlanSegments(plan_in));

  // 1. The new segments (unreferenced until the commit).
  STRATA_RETURN_IF_ERROR(
      WritePlannedSegments(shard.compressed, partition, old_meta, plan));
  STRATA_CRASH_POINT("rollup.after_chunks");
  if (rollup_hook_) rollup_hook_();

  // Phase B, under the exclusive member lock: commit, then delete what the commit made
  // redundant. Live rows a write changed since phase A read them stay live (the newer event
  // wins on reads); unchanged ones are now held by the committed segments.
  ScopedPriorityBoost boost;  // requests wait for this section: run it at normal priority
  std::unique_lock<std::shared_mutex> lock(MemberLock(member));
  store::WriteBatch live_deletes;
  std::vector<Millis> survivors;  // started_at of rolled rows a write changed meanwhile
  STRATA_RETURN_IF_ERROR(
      UnchangedLiveRows(shard, member, live, write_seq, &live_deletes, &survivors));

  // 2. The metadata row, the commit point, and in the same atomic partition batch the
  // deletes of the chunks it replaced (no reader can reach them once it is committed: the
  // exclusive lock keeps out readers of the old version). One write, so one wait for the
  // store's write slot fewer while readers of the member wait for this lock.
  const uint64_t total_records = plan.meta.records();
  {
    store::WriteBatch commit;
    commit.Put(kMetaKey, EncodeMeta(plan.meta), plan.expire_at);
    for (uint64_t id : plan.replaced) commit.Delete(SegmentKey(id));
    STRATA_RETURN_IF_ERROR(shard.compressed->Apply(partition, commit));
  }
  STRATA_CRASH_POINT("rollup.after_commit");
  // The cached entry keeps the live records no rolled-up version covers.
  cache_->CommitLiveMove(shard.index, member, CommittedHistory(std::move(plan)), live);

  // 4. The live rows the committed version holds.
  if (!live_deletes.empty()) {
    STRATA_RETURN_IF_ERROR(shard.live->Apply(partition, live_deletes));
  }
  STRATA_CRASH_POINT("rollup.after_live_deleted");
  {
    // Under the exclusive lock: no write is between its store write and its count.
    std::lock_guard<std::mutex> counts_lock(shard.counts_mu);
    auto& c = shard.counts[member];
    c.rows -= std::min<uint64_t>(c.rows, live_deletes.size());
    // What is left live: rows a write changed, and rows written since phase A's mark.
    c.live_from = c.written_min;
    for (Millis t : survivors) c.live_from = std::min(c.live_from, t);
    c.trigger_at = RollupThreshold(total_records);
    c.unrolled_since =
        c.written_min == INT64_MAX && survivors.empty() ? 0 : clock_->NowMillis();
  }
  lock.unlock();
  rollups_->Inc();
  rollup_records_->Inc(live_deletes.size());
  rollup_seconds_->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return absl::OkStatus();
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
    Shard& shard, MemberId member, const CompressedHistory& h, size_t i) {
  if (h.segments[i]) return DecodeSegment(h, i, member, shard.kind);
  // Not cached (a miss loads only the newest chunks): read it from the store.
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const std::string> bytes,
                          ReadSegment(shard, member, h.meta.segments[i]));
  if (!bytes) return std::vector<ViewingRecord>();  // expired and gone
  STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> part,
                          DecodeHistory(*bytes, member, shard.kind));
  if (part.size() != h.meta.segments[i].records) {
    return absl::DataLossError("compressed history: segment record count mismatch");
  }
  return part;
}

absl::StatusOr<CachedHistory> ViewingService::LoadFromStore(Shard& shard, MemberId member,
                                                            size_t newest_segments,
                                                            Millis live_from) {
  const std::string partition = MemberKey(member);
  // Live rows on a pool thread while this thread reads the compressed version.
  auto live_future = read_pool_->Submit([&]() -> absl::StatusOr<std::vector<ViewingRecord>> {
    std::vector<ViewingRecord> live;
    STRATA_RETURN_IF_ERROR(ScanLiveRows(shard.live, member, shard.kind, live_from,
                                        [&](std::string&&, ViewingRecord&& r) {
                                          live.push_back(std::move(r));
                                          return absl::OkStatus();
                                        }));
    return live;  // in clustering order = PlaybackKey order
  });

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
      futures.push_back(read_pool_->Submit(
          [&, i] { segments[i] = ReadSegment(shard, member, refs[i]); }));
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
  auto live = live_future.get();
  STRATA_RETURN_IF_ERROR(compressed_status);
  STRATA_RETURN_IF_ERROR(live.status());
  h.live = std::make_shared<std::vector<ViewingRecord>>(std::move(*live));
  return h;
}

uint64_t ViewingService::RollupThreshold(uint64_t compressed_records) const {
  const auto grown = static_cast<uint64_t>(options_.rollup_growth_fraction *
                                           static_cast<double>(compressed_records));
  // The minimum wins over the cap (tests set a huge minimum to roll up only on demand).
  return std::max<uint64_t>(options_.rollup_min_live_rows,
                            std::min<uint64_t>(grown, options_.rollup_max_live_rows));
}

absl::StatusOr<CachedHistory> ViewingService::GetHistory(
    Shard& shard, MemberId member, const std::function<void()>& on_miss) {
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

absl::StatusOr<HistoryPage> ViewingService::ReadHistory(MemberId member,
                                                        const HistoryQuery& query) {
  if (query.limit < 1 || query.limit > 1000) {
    return absl::InvalidArgumentError("limit: must be between 1 and 1000");
  }
  if (query.since > query.until) {
    return absl::InvalidArgumentError("since: must not be after until");
  }
  const bool has_cursor = !query.cursor.empty();
  ViewingRecord cursor;  // only started_at and session matter
  if (has_cursor) {
    STRATA_RETURN_IF_ERROR(DecodeCursor(query.cursor, &cursor.started_at, &cursor.session));
  }
  Shard& shard = ShardFor(query.kind);
  const Millis now = clock_->NowMillis();
  // Held while chunks not in the cache are read, so no roll-up deletes them meanwhile.
  std::shared_lock<std::shared_mutex> lock(MemberLock(member));
  // Plays before recent_floor are in the past tier (or only in the summary). A query that
  // reaches them reads the past tier in parallel with a recent tier that is not cached (one
  // from the cache costs no store read); whether the page needs the past tier at all is
  // known only once the recent tier is read, so this read may be wasted (cache misses only).
  const Millis recent_floor = now - options_.recent_age_ms;
  const Millis before = has_cursor ? std::min(query.until, cursor.started_at + 1) : query.until;
  std::future<absl::StatusOr<PastTier>> past_prefetch;
  struct WaitOnExit {  // the prefetch never outlives the lock, whatever returns below
    std::future<absl::StatusOr<PastTier>>& f;
    ~WaitOnExit() {
      if (f.valid()) f.wait();
    }
  } wait_prefetch{past_prefetch};
  const bool reaches_past =
      query.kind == Kind::kPlay && query.since < recent_floor && query.since < before;
  struct ObserveOnExit {  // read latency by whether the history cache answered
    ViewingService* self;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    bool missed = false;
    ~ObserveOnExit() {
      (missed ? self->read_seconds_miss_ : self->read_seconds_hit_)
          ->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                        .count());
    }
  } observe{this};
  auto on_miss = [&] {
    observe.missed = true;
    if (!reaches_past) return;
    past_prefetches_->Inc();
    past_prefetch = read_pool_->Submit([this, member, limit = query.limit,
                                        since = query.since, before] {
      return PrefetchPast(member, limit, since, before);
    });
  };
  STRATA_ASSIGN_OR_RETURN(CachedHistory h, ReadEntry(shard, member, on_miss));
  Millis detail_from = INT64_MIN;  // plays: older ones exist only in the summary
  auto qualifies = [&](const ViewingRecord& r) {
    return r.started_at >= query.since && r.started_at < query.until &&
           r.started_at >= detail_from && (!has_cursor || kKeyLess(r, cursor)) &&
           !TtlExpired(r.event_time, shard.ttl_ms, now);
  };

  // Decode segments from the newest down until they alone hold limit + 1 qualifying records:
  // then the page (and whether another follows) cannot depend on older segments, because
  // segments cover disjoint started_at ranges and live rows only add or replace records.
  std::vector<std::vector<ViewingRecord>> decoded;  // newest segment first
  if (h.compressed) {
    const auto& refs = h.compressed->meta.segments;
    size_t found = 0;
    for (size_t i = refs.size(); i-- > 0 && found <= query.limit;) {
      if (refs[i].first_started_at >= query.until) continue;
      if (has_cursor && refs[i].first_started_at > cursor.started_at) continue;
      if (refs[i].last_started_at < query.since) break;
      STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> part,
                              DecodeChunk(shard, member, *h.compressed, i));
      found += std::count_if(part.begin(), part.end(), qualifies);
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
  // Only the newest limit + 1 qualifying records of the union of chunks and live rows can
  // be on the page. If one side alone holds that many (counting only plays of the recent
  // tier, which the past tier and the summary boundary cannot affect), nothing older than
  // its (limit+1)-th can be either, so both sides are cut below the larger of the two
  // bounds before merging: a hot member's read then merges about `limit` of its live rows
  // instead of copying and sorting up to rollup_max_live_rows of them. (Counting either
  // side's own versions is safe: a playback's merged version has the latest event_time, so
  // it qualifies whenever one of its versions does.)
  std::span<const ViewingRecord> live = h.Live();  // arrival order, repeats possible
  std::vector<ViewingRecord> newest_live;
  {
    auto counts = [&](const ViewingRecord& r) {
      return qualifies(r) && (query.kind != Kind::kPlay || r.started_at >= recent_floor);
    };
    std::optional<ViewingRecord> bound;  // records (sorted, unique): the (limit+1)-th newest
    for (size_t i = records.size(), n = 0; i-- > 0;) {
      if (counts(records[i]) && ++n == query.limit + 1) {
        bound = records[i];
        break;
      }
    }
    // Live rows: the (limit+1)-th newest distinct qualifying playback, from a partial sort
    // of the qualifying rows (twice as many as needed, as repeats of a playback count once).
    std::vector<const ViewingRecord*> candidates;
    candidates.reserve(live.size());
    for (const auto& r : live) {
      if (counts(r) && (!bound || !kKeyLess(r, *bound))) candidates.push_back(&r);
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
    if (bound) {
      records.erase(records.begin(),
                    std::lower_bound(records.begin(), records.end(), *bound, kKeyLess));
      for (const auto& r : live) {
        if (!kKeyLess(r, *bound)) newest_live.push_back(r);
      }
      live = newest_live;
    }
  }
  MergeRecords(&records, live);

  HistoryPage page;
  if (query.kind == Kind::kPlay) {
    // The past tier holds only plays that started before now - recent_age: it cannot change
    // the page when the recent tier alone has limit + 1 qualifying plays after that.
    size_t recent_found = 0;
    for (const auto& r : records) {
      if (r.started_at >= recent_floor && qualifies(r)) ++recent_found;
    }
    if (query.since < recent_floor && recent_found <= query.limit) {
      std::optional<absl::StatusOr<PastTier>> prefetched;
      if (past_prefetch.valid()) {
        prefetched = past_prefetch.get();
        past_prefetch_used_->Inc();
      }
      // A failed prefetch is retried by AddPastCandidates itself.
      const PastTier* past = prefetched && prefetched->ok() ? &**prefetched : nullptr;
      STRATA_RETURN_IF_ERROR(AddPastCandidates(member, query.limit, query.since, before,
                                               qualifies, &records, &detail_from, past));
      page.detail_from = detail_from;
    }
  }
  for (auto it = records.rbegin(); it != records.rend(); ++it) {
    if (!qualifies(*it)) {
      if (it->started_at < query.since) break;
      continue;
    }
    if (page.records.size() == query.limit) {
      const ViewingRecord& last = page.records.back();
      page.next_cursor = EncodeCursor(last.started_at, last.session);
      break;
    }
    page.records.push_back(std::move(*it));
  }
  return page;
}

absl::StatusOr<LanguageHistory> ViewingService::Languages(MemberId member) {
  LanguageHistory out;
  store::ScanOptions scan;
  const std::string partition = MemberKey(member);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(store::ScanPage page, languages_->Scan(partition, scan));
    for (const auto& row : page.rows) {
      LanguagePreference p;
      STRATA_RETURN_IF_ERROR(DecodeLanguageValue(row.value, &p));
      if (row.clustering[0] == 'c') {
        p.content_lang = row.clustering.substr(1);
        out.current.push_back(std::move(p));
      } else if (row.clustering[0] == 'h' && row.clustering.size() >= 9) {
        p.content_lang = row.clustering.substr(9);
        out.changes.push_back(std::move(p));
      }
    }
    if (page.next_cursor.empty()) break;
    scan.cursor = std::move(page.next_cursor);
  }
  std::reverse(out.changes.begin(), out.changes.end());
  return out;
}

// ---------------------------------------------------------------------------------------
// Erasure and reports

absl::Status ViewingService::EraseMember(MemberId member) {
  std::lock_guard<std::mutex> rollup_lock(rollup_locks_[StripeOf(member)]);
  std::unique_lock<std::shared_mutex> lock(MemberLock(member));
  std::lock_guard<std::mutex> language_lock(language_locks_[StripeOf(member)]);
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
  STRATA_RETURN_IF_ERROR(languages_->DeleteRange(partition, "", ""));
  {
    // The stripe's language lock is already held (above).
    absl::erase_if(languages_cache_->stripes[StripeOf(member)],
                   [member](const auto& entry) { return entry.first.member == member; });
  }
  STRATA_LOG_INFO("member erased", "member", member);
  return absl::OkStatus();
}

std::string ViewingService::RowKind(const store::Table* table,
                                    std::string_view clustering) const {
  if (table == languages_) {
    return !clustering.empty() && clustering[0] == 'h' ? "change" : "current";
  }
  if (table == historical_) return "state";
  for (const auto& shard : shards_) {
    if (table == shard->live) return "live";
  }
  if (clustering == kMetaKey) return "meta";
  if (!clustering.empty() && clustering[0] == 's') return "segment";
  return "state";  // the past tier's "p" row
}

absl::StatusOr<std::vector<TableReport>> ViewingService::Report() {
  std::vector<TableReport> out;
  auto scan_table = [&](store::Table* table,
                        const std::function<absl::Status(const store::TableRow&, TableReport*)>&
                            count) -> absl::Status {
    TableReport rep;
    rep.table = table->name();
    rep.tier = table == past_ ? "past" : table == historical_ ? "historical" : "recent";
    STRATA_ASSIGN_OR_RETURN(auto ranges, table->SplitRanges(1));
    std::string last_partition;
    bool any = false;
    for (const auto& range : ranges) {
      std::string cursor;
      do {
        STRATA_ASSIGN_OR_RETURN(auto page,
                                table->ScanRange(range, store::kMaxPageRows, cursor));
        for (const auto& row : page.rows) {
          if (!any || row.partition != last_partition) {
            ++rep.members;
            last_partition = row.partition;
            any = true;
          }
          RowKindReport& kind = rep.rows[RowKind(table, row.clustering)];
          ++kind.rows;
          kind.key_bytes += row.partition.size() + row.clustering.size();
          kind.value_bytes += row.value.size();
          STRATA_RETURN_IF_ERROR(count(row, &rep));
        }
        cursor = std::move(page.next_cursor);
      } while (!cursor.empty());
    }
    STRATA_ASSIGN_OR_RETURN(store::TableStats stats, table->Stats());
    rep.disk_bytes = stats.disk_bytes;
    out.push_back(std::move(rep));
    return absl::OkStatus();
  };
  for (auto& shard : shards_) {
    STRATA_RETURN_IF_ERROR(scan_table(shard->live, [](const store::TableRow&, TableReport* r) {
      ++r->records;
      return absl::OkStatus();
    }));
    STRATA_RETURN_IF_ERROR(
        scan_table(shard->compressed, [](const store::TableRow& row, TableReport* r) {
          if (row.clustering == kMetaKey) {
            STRATA_ASSIGN_OR_RETURN(HistoryMeta meta, DecodeMeta(row.value));
            r->records += meta.records();
          }
          return absl::OkStatus();
        }));
  }
  STRATA_RETURN_IF_ERROR(scan_table(past_, [](const store::TableRow& row, TableReport* r) {
    if (row.clustering == kMetaKey) {
      STRATA_ASSIGN_OR_RETURN(HistoryMeta meta, DecodeMeta(row.value));
      r->records += meta.records();
    }
    return absl::OkStatus();
  }));
  // Historical: "records" counts the plays its summaries stand for.
  STRATA_RETURN_IF_ERROR(scan_table(historical_, [](const store::TableRow& row, TableReport* r) {
    STRATA_ASSIGN_OR_RETURN(HistoricalState state, DecodeHistoricalState(row.value));
    for (const auto& t : state.summary) r->records += t.plays;
    return absl::OkStatus();
  }));
  STRATA_RETURN_IF_ERROR(scan_table(languages_, [](const store::TableRow& row, TableReport* r) {
    if (!row.clustering.empty() && row.clustering[0] == 'h') ++r->records;
    return absl::OkStatus();
  }));
  return out;
}

std::vector<store::Table*> ViewingService::tables() const {
  std::vector<store::Table*> out;
  for (const auto& shard : shards_) {
    out.push_back(shard->live);
    out.push_back(shard->compressed);
  }
  out.push_back(past_);
  out.push_back(historical_);
  out.push_back(languages_);
  return out;
}

// ---------------------------------------------------------------------------------------
// Cursors

}  // namespace strata::viewing
