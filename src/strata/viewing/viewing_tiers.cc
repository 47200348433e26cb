// Age tiers of plays: recent -> past -> historical rotation, the rotation queue and sweep,
// and the reads that stitch tiers (docs/viewing.md, "Age tiers").
//
// Tables (partition = member):
//   plays_recent_live / plays_recent_compressed   the recent tier (viewing_service.cc)
//   plays_past_compressed   "m" = HistoryMeta, "s"+id = segments (as the recent compressed
//                           table), "p" = PastState (rotation watermark and the summary of
//                           the past records), written in one batch with "m"
//   plays_historical        "m" = HistoricalState (per-title summary of every play that
//                           started before `until`)
//
// Invariants that make every step crash-safe and every playback count once:
//   - A rotation writes the destination's new version and commits it before it commits the
//     source's new version without the moved records; between the two, records exist in
//     both tiers, and readers merge them by playback (the later event wins).
//   - Summaries stitch by time: historical covers started_at < H (its `until`), the past
//     tier's summary covers the past records >= H (when it was built with the same H),
//     recent records >= R (the past tier's rotated_until) are added on the fly, and recent
//     records in [H, R) -- late arrivals or leftovers of an interrupted rotation -- replace
//     their past version exactly (same playback) or are added if they have none.
//   - Both commits of a rotation happen under the member's exclusive lock, and readers that
//     combine tiers hold the shared lock, so no reader sees half a rotation.
#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <unordered_map>
#include <thread>

#include "strata/base/coding.h"
#include "strata/base/crash_point.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/base/ttl.h"
#include "strata/viewing/codec.h"
#include "strata/viewing/segment_plan.h"
#include "strata/viewing/viewing_internal.h"
#include "strata/viewing/viewing_service.h"

namespace strata::viewing {
namespace {

using internal::CommittedHistory;
using internal::DeleteSegments;
using internal::kMetaKey;
using internal::TimedExclusiveLock;
using internal::MemberKey;
using internal::ScanLiveRows;
using internal::StripeOf;
using internal::WritePlannedSegments;

constexpr char kPastStateKey[] = "p";

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::StatusOr<ViewingService::PastTier> ViewingService::LoadPast(MemberId member,
                                                                  bool with_state) {
  PastTier past;
  const std::string partition = MemberKey(member);
  auto meta_row = past_->Get(partition, kMetaKey);
  if (absl::IsNotFound(meta_row.status())) return past;
  STRATA_RETURN_IF_ERROR(meta_row.status());
  auto history = std::make_shared<CompressedHistory>();
  STRATA_ASSIGN_OR_RETURN(history->meta, DecodeMeta(*meta_row));
  history->segments.resize(history->meta.segments.size());
  if (with_state) {
    STRATA_ASSIGN_OR_RETURN(std::string state_row, past_->Get(partition, kPastStateKey));
    STRATA_ASSIGN_OR_RETURN(past.state, DecodePastState(state_row));
  }
  past.history = std::move(history);
  return past;
}

absl::StatusOr<ViewingService::PastTier> ViewingService::PrefetchPast(MemberId member,
                                                                      size_t limit,
                                                                      Millis since,
                                                                      Millis before) {
  STRATA_ASSIGN_OR_RETURN(PastTier past, LoadPast(member, /*with_state=*/false));
  if (!past.history) return past;
  // The chunks AddPastCandidates would read first: newest in range, until they hold more than
  // `limit` records (it may stop earlier, when detail_from or its filter says so, or read on
  // when the filter drops records: it reads what it misses itself).
  const auto& refs = past.history->meta.segments;
  const Millis ttl = ShardFor(Kind::kPlay).ttl_ms;
  uint64_t records = 0;
  for (size_t i = refs.size(); i-- > 0 && records <= limit;) {
    if (refs[i].first_started_at >= before) continue;
    if (refs[i].last_started_at < since) break;
    STRATA_ASSIGN_OR_RETURN(past.history->segments[i], ReadSegment(past_, ttl, member, refs[i]));
    records += refs[i].records;
  }
  return past;
}

absl::StatusOr<HistoricalState> ViewingService::LoadHistorical(MemberId member) {
  auto row = historical_->Get(MemberKey(member), kMetaKey);
  if (absl::IsNotFound(row.status())) return HistoricalState{};
  STRATA_RETURN_IF_ERROR(row.status());
  return DecodeHistoricalState(*row);
}

absl::StatusOr<std::vector<ViewingRecord>> ViewingService::PastRecords(MemberId member,
                                                                      const PastTier& past,
                                                                      Millis from,
                                                                      Millis until) {
  std::vector<ViewingRecord> out;
  if (!past.history) return out;
  const auto& refs = past.history->meta.segments;
  std::vector<size_t> wanted;
  for (size_t i = 0; i < refs.size(); ++i) {
    const Millis next_first = i + 1 < refs.size() ? refs[i + 1].first_started_at : INT64_MAX;
    if (refs[i].first_started_at < until && next_first > from && refs[i].last_started_at >= from) {
      wanted.push_back(i);
    }
  }
  // Chunks in parallel (the last on this thread), then decoded in order.
  std::vector<absl::StatusOr<std::shared_ptr<const std::string>>> bytes(wanted.size(), nullptr);
  std::vector<std::future<void>> futures;
  const Millis ttl = ShardFor(Kind::kPlay).ttl_ms;
  for (size_t k = 0; k + 1 < wanted.size(); ++k) {
    futures.push_back(read_pool_->Submit(
        [&, k] { bytes[k] = ReadSegment(past_, ttl, member, refs[wanted[k]]); }));
  }
  if (!wanted.empty()) bytes.back() = ReadSegment(past_, ttl, member, refs[wanted.back()]);
  for (auto& f : futures) f.get();
  for (size_t k = 0; k < wanted.size(); ++k) {
    STRATA_RETURN_IF_ERROR(bytes[k].status());
    if (!*bytes[k]) continue;  // expired and gone
    STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> part,
                            DecodeHistory(**bytes[k], member, Kind::kPlay));
    if (part.size() != refs[wanted[k]].records) {
      return absl::DataLossError("past tier: segment record count mismatch");
    }
    for (auto& r : part) {
      if (r.started_at >= from && r.started_at < until) out.push_back(std::move(r));
    }
  }
  return out;
}

absl::Status ViewingService::AddPastCandidates(
    MemberId member, size_t limit, Millis since, Millis before,
    const std::function<bool(const ViewingRecord&)>& qualifies,
    std::vector<ViewingRecord>* records, Millis* detail_from, const PastTier* prefetched) {
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const StableSummary> stable, GetStableSummary(member));
  *detail_from = stable->historical_until;
  PastTier past;
  if (prefetched) {
    past = *prefetched;
  } else {
    STRATA_ASSIGN_OR_RETURN(past, LoadPast(member, /*with_state=*/false));
  }
  if (!past.history || past.history->meta.segments.empty()) return absl::OkStatus();
  const auto& refs = past.history->meta.segments;
  MaybeQueueRotation(member, INT64_MAX, refs.front().first_started_at);
  // Newest chunks first, until they alone hold limit + 1 qualifying plays (chunks cover
  // disjoint started_at ranges, as in the recent tier).
  const Millis ttl = ShardFor(Kind::kPlay).ttl_ms;
  std::vector<std::vector<ViewingRecord>> decoded;  // newest chunk first
  size_t found = 0;
  for (size_t i = refs.size(); i-- > 0 && found <= limit;) {
    if (refs[i].first_started_at >= before) continue;
    if (refs[i].last_started_at < std::max(since, *detail_from)) break;
    std::shared_ptr<const std::string> bytes = past.history->segments[i];  // prefetched
    if (!bytes) {
      STRATA_ASSIGN_OR_RETURN(bytes, ReadSegment(past_, ttl, member, refs[i]));
    }
    if (!bytes) continue;
    STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> part,
                            DecodeNewest(*bytes, member, Kind::kPlay, refs[i].records,
                                         limit + 1 - found, qualifies));
    found += std::count_if(part.begin(), part.end(), qualifies);
    decoded.push_back(std::move(part));
  }
  std::vector<ViewingRecord> merged;
  for (auto it = decoded.rbegin(); it != decoded.rend(); ++it) {
    for (auto& r : *it) merged.push_back(std::move(r));
  }
  // Recent versions win over past ones of the same playback when they are later.
  MergeRecords(&merged, *records);
  *records = std::move(merged);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Rotation

std::string ViewingService::EncodeStoredPastState(const PastState& state,
                                                  const HistoryMeta& meta) const {
  if (meta.records() >= options_.past_summary_min_records) {
    return EncodePastState(state, options_.zstd_level);
  }
  PastState without_summary;
  without_summary.rotated_until = state.rotated_until;
  without_summary.summary_from = state.summary_from;
  without_summary.meta_version = 0;  // no summary: readers summarise the records
  return EncodePastState(without_summary, options_.zstd_level);
}

SegmentPlanInput ViewingService::PlayPlanInput(MemberId member, Millis ttl_ms, Millis now,
                                               bool past) const {
  return PlanInput(member, Kind::kPlay, ttl_ms, now,
                   past ? options_.past_segment_records : options_.segment_records);
}

absl::Status ViewingService::Rotate(MemberId member) {
  const auto start = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> rollup_lock(rollup_locks_[StripeOf(member)]);
  const Millis now = clock_->NowMillis();
  STRATA_RETURN_IF_ERROR(RotateRecentToPast(member, now - options_.recent_age_ms));
  STRATA_RETURN_IF_ERROR(RotatePastToHistorical(member, now - options_.historical_age_ms));
  metrics_.rotations->Inc();
  metrics_.rotation_seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return absl::OkStatus();
}

absl::Status ViewingService::RotateRecentToPast(MemberId member, Millis cutoff) {
  Shard& shard = ShardFor(Kind::kPlay);
  const std::string partition = MemberKey(member);
  const Millis now = clock_->NowMillis();
  // The caller holds the roll-up lock: the recent compressed version and the past tier
  // cannot change under us; only live rows can. Live rows older than the cutoff move too
  // (no roll-up first): they are deleted after the commits if no write changed them.
  uint64_t write_seq = 0;
  STRATA_ASSIGN_OR_RETURN(CachedHistory recent,
                          LoadForRewrite(shard, member, /*live_before=*/cutoff, &write_seq));
  std::vector<ViewingRecord> old_live;  // sorted, unique (from the store)
  for (auto& r : recent.Live()) {
    if (r.started_at < cutoff) old_live.push_back(std::move(r));
  }
  const bool compressed_due = recent.compressed && !recent.compressed->meta.segments.empty() &&
                              recent.compressed->meta.segments.front().first_started_at < cutoff;
  if (!compressed_due && old_live.empty()) return absl::OkStatus();
  const std::shared_ptr<const CompressedHistory> recent_version =
      recent.compressed ? recent.compressed : std::make_shared<const CompressedHistory>();

  SegmentPlanInput recent_in = PlayPlanInput(member, shard.ttl_ms, now, /*past=*/false);
  recent_in.current = recent_version.get();
  recent_in.segment_bytes = [&](size_t i) {
    return ReadSegment(shard, member, recent_version->meta.segments[i]);
  };
  recent_in.drop_before = cutoff;
  recent_in.collect_removed = true;
  // A member whose summary is cached is being read: summarise the version that stays in
  // the recent tier now, so the summary cache can be refreshed at the commit.
  SummaryBuilder recent_summary;
  const bool refresh_summary = summary_cache_->Contains(member);
  if (refresh_summary) recent_in.summarize = &recent_summary;
  STRATA_ASSIGN_OR_RETURN(SegmentPlan recent_plan, PlanSegments(recent_in));
  std::vector<ViewingRecord> moved = std::move(recent_plan.removed);
  MergeRecords(&moved, old_live);  // a live row is a later event of its playback
  std::erase_if(moved, [&](const ViewingRecord& r) {
    return TtlExpired(r.event_time, shard.ttl_ms, now);
  });

  STRATA_ASSIGN_OR_RETURN(PastTier past, LoadPast(member));
  STRATA_ASSIGN_OR_RETURN(HistoricalState hist, LoadHistorical(member));
  // Plays older than the summarised range arrived too late for their detail to be kept;
  // they would double count (their playback may already be summarised), so they go.
  const size_t before = moved.size();
  std::erase_if(moved, [&](const ViewingRecord& r) { return r.started_at < hist.until; });
  metrics_.late_dropped->Inc(before - moved.size());

  SummaryBuilder past_summary;
  SegmentPlanInput past_in = PlayPlanInput(member, shard.ttl_ms, now, /*past=*/true);
  past_in.current = past.history.get();
  past_in.segment_bytes = [&](size_t i) {
    return ReadSegment(past_, shard.ttl_ms, member, past.history->meta.segments[i]);
  };
  past_in.updates = moved;
  // Records the historical tier already summarises (left by an interrupted rotation) go.
  past_in.drop_before = hist.until;
  past_in.summarize = &past_summary;
  STRATA_ASSIGN_OR_RETURN(SegmentPlan past_plan, PlanSegments(past_in));
  PastState state;
  state.rotated_until = std::max(past.state.rotated_until, cutoff);
  state.summary_from = hist.until;
  state.meta_version = past_plan.meta.version;
  state.summary = past_summary.ByTitle();
  // The summary cache's entries for the state about to be committed (see Refresh).
  std::shared_ptr<const StableSummary> stable;
  std::shared_ptr<const RecentSummary> recent_part;
  if (refresh_summary) {
    stable = BuildStableSummary(hist, state);
    if (state.rotated_until == cutoff && hist.until <= cutoff) {
      // Every record the recent tier keeps started at or after the cutoff (= R): none is
      // late, none is below H.
      auto part = std::make_shared<RecentSummary>();
      part->version = recent_plan.changed ? recent_plan.meta.version : recent_version->meta.version;
      part->historical_until = hist.until;
      part->rotated_until = state.rotated_until;
      part->titles = recent_summary.ByTitle();
      recent_part = std::move(part);
    }
  }

  const HistoryMeta old_past_meta = past.history ? past.history->meta : HistoryMeta{};
  STRATA_RETURN_IF_ERROR(WritePlannedSegments(past_, partition, old_past_meta, past_plan));
  STRATA_CRASH_POINT("rotate.past_chunks_written");
  STRATA_RETURN_IF_ERROR(WritePlannedSegments(shard.compressed, partition,
                                              recent_version->meta, recent_plan));
  STRATA_CRASH_POINT("rotate.recent_chunks_written");
  const std::vector<uint64_t> recent_replaced = recent_plan.replaced;
  {
    ScopedPriorityBoost boost;  // requests wait for this section
    TimedExclusiveLock lock(MemberLock(member), metrics_.lock_held_rotation);
    // One write across the three tables, in this order (WriteInOrder; atomic on RocksDB):
    // the destination (the past tier's new version and state), then the source (the recent
    // tier's version without the moved records), then the deletes of the moved live rows, unless a write changed them since they were read (the newer event stays live
    // and moves with the next rotation). Requests for the member wait for this lock, and
    // every store write waits for the write slot behind ingest batches: one wait, not three.
    store::WriteBatch live_deletes;
    std::vector<Millis> survivors;
    STRATA_RETURN_IF_ERROR(
        UnchangedLiveRows(shard, member, old_live, write_seq, &live_deletes, &survivors));
    const uint64_t live_moved = live_deletes.size();
    std::vector<store::PartitionWrite> commit;
    commit.push_back({past_, partition, {}});
    commit.back().batch.Put(kMetaKey, EncodeMeta(past_plan.meta), past_plan.expire_at);
    commit.back().batch.Put(kPastStateKey, EncodeStoredPastState(state, past_plan.meta), 0);
    if (recent_plan.changed) {
      commit.push_back({shard.compressed, partition, {}});
      commit.back().batch.Put(kMetaKey, EncodeMeta(recent_plan.meta), recent_plan.expire_at);
    }
    if (!live_deletes.empty()) {
      commit.push_back({shard.live, partition, std::move(live_deletes)});
    }
    STRATA_RETURN_IF_ERROR(store_->WriteInOrder(commit));
    STRATA_CRASH_POINT("rotate.committed");
    bool nothing_live = false;
    if (old_live.empty()) {
      std::lock_guard<std::mutex> counts_lock(shard.counts_mu);
      auto known = shard.counts.find(member);
      nothing_live = known != shard.counts.end() && known->second.live_from == INT64_MAX &&
                     known->second.written_min == INT64_MAX;
    } else {
      std::lock_guard<std::mutex> counts_lock(shard.counts_mu);
      auto& c = shard.counts[member];
      c.rows -= std::min<uint64_t>(c.rows, live_moved);
      // Left live: rows not moved (started at or after the cutoff), moved rows a write
      // changed meanwhile, and rows written since the mark.
      Millis from = c.written_min;
      for (Millis t : survivors) from = std::min(from, t);
      for (const auto& r : recent.Live()) {
        if (r.started_at >= cutoff) {
          from = std::min(from, r.started_at);
          break;  // sorted
        }
      }
      c.live_from = from;
      nothing_live = from == INT64_MAX;
    }
    // The cached entry: the new compressed version, without the live records moved out. A
    // member the cache does not hold gets it when nothing is left live (as after a roll-up).
    std::shared_ptr<const CompressedHistory> committed =
        recent_plan.changed ? CommittedHistory(std::move(recent_plan)) : nullptr;
    cache_->CommitLiveMove(shard.index, member, committed, old_live,
                           /*install_if_absent=*/nothing_live);
    if (refresh_summary) {
      summary_cache_->Refresh(member, std::move(stable), std::move(recent_part));
    } else {
      summary_cache_->Invalidate(member);
    }
    // Shared cache: before the replaced chunks go, so no server keeps reading the old
    // version from the cache once they are deleted.
    STRATA_RETURN_IF_ERROR(InvalidateShared(member, {shard.index}));
  }
  STRATA_RETURN_IF_ERROR(DeleteSegments(past_, partition, past_plan.replaced));
  STRATA_RETURN_IF_ERROR(DeleteSegments(shard.compressed, partition, recent_replaced));
  STRATA_CRASH_POINT("rotate.garbage_deleted");
  metrics_.moved_to_past->Inc(moved.size());
  return absl::OkStatus();
}

absl::Status ViewingService::RotatePastToHistorical(MemberId member, Millis cutoff) {
  const std::string partition = MemberKey(member);
  const Millis ttl = ShardFor(Kind::kPlay).ttl_ms;
  STRATA_ASSIGN_OR_RETURN(PastTier past, LoadPast(member));
  if (!past.history || past.history->meta.segments.empty() ||
      past.history->meta.segments.front().first_started_at >= cutoff) {
    return absl::OkStatus();
  }
  STRATA_ASSIGN_OR_RETURN(HistoricalState hist, LoadHistorical(member));
  const Millis until = std::max(hist.until, cutoff);

  SummaryBuilder past_summary;
  SegmentPlanInput in = PlayPlanInput(member, ttl, clock_->NowMillis(), /*past=*/true);
  in.current = past.history.get();
  in.segment_bytes = [&](size_t i) {
    return ReadSegment(past_, ttl, member, past.history->meta.segments[i]);
  };
  in.drop_before = until;
  in.collect_removed = true;
  in.summarize = &past_summary;
  STRATA_ASSIGN_OR_RETURN(SegmentPlan plan, PlanSegments(in));

  // Fold the records the summary does not cover yet; those before hist.until were folded
  // by an earlier rotation that was interrupted before it committed the past tier.
  SummaryBuilder folded(hist.summary);
  uint64_t folded_count = 0;
  for (const auto& r : plan.removed) {
    if (r.started_at < hist.until) continue;
    folded.Add(r);
    ++folded_count;
  }
  HistoricalState next{hist.version + 1, until, folded.ByTitle()};
  PastState state = past.state;
  state.summary_from = until;
  state.meta_version = plan.meta.version;
  state.summary = past_summary.ByTitle();
  std::shared_ptr<const StableSummary> stable;
  if (summary_cache_->Contains(member)) stable = BuildStableSummary(next, state);

  STRATA_RETURN_IF_ERROR(WritePlannedSegments(past_, partition, past.history->meta, plan));
  STRATA_CRASH_POINT("rotate.historical.past_chunks_written");
  {
    ScopedPriorityBoost boost;  // requests wait for this section
    TimedExclusiveLock lock(MemberLock(member), metrics_.lock_held_rotation);
    STRATA_RETURN_IF_ERROR(historical_->Put(partition, kMetaKey,
                                            EncodeHistoricalState(next, options_.zstd_level), 0));
    STRATA_CRASH_POINT("rotate.historical_committed");
    store::WriteBatch commit;
    commit.Put(kMetaKey, EncodeMeta(plan.meta), plan.expire_at);
    commit.Put(kPastStateKey, EncodeStoredPastState(state, plan.meta), 0);
    STRATA_RETURN_IF_ERROR(past_->Apply(partition, commit));
    STRATA_CRASH_POINT("rotate.historical.past_committed");
    if (stable) {
      // The recent tier did not change; its summary stays valid under the new boundary H
      // when it held no late records (those in [H, R) are the only ones H can affect).
      std::shared_ptr<const RecentSummary> recent = summary_cache_->GetRecent(member);
      if (recent && recent->late.empty() && recent->rotated_until == state.rotated_until &&
          recent->historical_until <= until && until <= recent->rotated_until) {
        auto moved = std::make_shared<RecentSummary>(*recent);
        moved->historical_until = until;
        recent = std::move(moved);
      } else {
        recent = nullptr;
      }
      summary_cache_->Refresh(member, std::move(stable), std::move(recent));
    } else {
      summary_cache_->Invalidate(member);
    }
  }
  STRATA_RETURN_IF_ERROR(DeleteSegments(past_, partition, plan.replaced));
  STRATA_CRASH_POINT("rotate.historical.garbage_deleted");
  metrics_.folded_to_historical->Inc(folded_count);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Queue, workers and sweep

bool ViewingService::MaybeQueueRotation(MemberId member, Millis oldest_recent,
                                        Millis oldest_past) {
  const Millis now = clock_->NowMillis();
  const Millis slack = options_.rotation_slack_ms;
  if (oldest_recent < now - options_.recent_age_ms - slack ||
      oldest_past < now - options_.historical_age_ms - slack) {
    return QueueRotation(member);
  }
  return false;
}

bool ViewingService::QueueRotation(MemberId member) {
  {
    std::lock_guard<std::mutex> lock(rotation_mu_);
    // Deduplicated in memory: a member is queued once until a worker takes it.
    if (rotation_stopping_ || !rotation_queued_.insert(member).second) return false;
    if (task_queue_) {
      rotation_unpublished_.push_back(member);
    } else {
      rotation_queue_.push_back(member);
    }
  }
  // All: the publisher, the workers and the sweep timer wait on this condition variable.
  rotation_cv_.notify_all();
  return true;
}

void ViewingService::RotationPublisher() {
  ThreadPool::NameCurrentThread("strata-rotpub");
  std::vector<MemberId> batch;
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(rotation_mu_);
      rotation_cv_.wait(lock,
                        [this] { return rotation_stopping_ || !rotation_unpublished_.empty(); });
      stopping = rotation_stopping_;
      batch.swap(rotation_unpublished_);
      rotation_publishing_ = batch.size();
    }
    for (size_t begin = 0; begin < batch.size(); begin += 1000) {
      const size_t end = std::min(batch.size(), begin + 1000);
      std::vector<store::PublishMessage> messages;
      messages.reserve(end - begin);
      for (size_t i = begin; i < end; ++i) {
        std::string value;
        coding::PutFixed64BE(&value, batch[i]);
        messages.push_back({std::to_string(batch[i]), std::move(value)});
      }
      auto published = task_queue_->Publish(kRotationTopic, messages);
      if (!published.ok()) {
        metrics_.rotation_errors->Inc();
        STRATA_LOG_WARN("rotations not queued", "members", end - begin, "error",
                        published.status().ToString());
        std::lock_guard<std::mutex> lock(rotation_mu_);
        for (size_t i = begin; i < end; ++i) rotation_queued_.erase(batch[i]);
      }
    }
    batch.clear();
    {
      std::lock_guard<std::mutex> lock(rotation_mu_);
      rotation_publishing_ = 0;
    }
    rotation_idle_cv_.notify_all();
    if (stopping) return;  // what was noted before the stop is published
  }
}

bool ViewingService::AwaitRotationSlot() {
  std::unique_lock<std::mutex> lock(rotation_mu_);
  if (rotation_stopping_) return false;
  // Start at most rotation_max_per_s rotations per second, all workers together.
  if (options_.rotation_max_per_s > 0) {
    const double now = SteadySeconds();
    const double at = std::max(now, next_rotation_at_);
    next_rotation_at_ = at + 1.0 / options_.rotation_max_per_s;
    if (at > now) {
      rotation_cv_.wait_for(lock, std::chrono::duration<double>(at - now),
                            [this] { return rotation_stopping_; });
    }
  }
  return !rotation_stopping_;
}

void ViewingService::RunRotation(MemberId member, bool counted) {
  {
    std::lock_guard<std::mutex> lock(rotation_mu_);
    // Taken: a trigger from now on queues the member again.
    rotation_queued_.erase(member);
    if (!counted) ++running_rotations_;
  }
  absl::Status s = Rotate(member);
  if (!s.ok()) {
    metrics_.rotation_errors->Inc();
    STRATA_LOG_WARN("rotation failed", "member", member, "error", s.ToString());
  }
  {
    std::lock_guard<std::mutex> lock(rotation_mu_);
    --running_rotations_;
  }
  rotation_idle_cv_.notify_all();
}

void ViewingService::RotationWorker(int index) {
  ThreadPool::NameCurrentThread("strata-rotate");
  ThreadPool::LowerCurrentThreadPriority(options_.background_nice);
  if (task_queue_) {
    // This worker's share of the topic's partitions (one consumer per partition).
    const int workers = std::max(options_.rotation_threads, 1);
    store::PollRequest poll;
    poll.group = kRotationGroup;
    poll.topic = kRotationTopic;
    for (int p = index; p < kRotationPartitions; p += workers) poll.partitions.push_back(p);
    if (poll.partitions.empty()) return;
    poll.max_messages = 32;
    poll.wait_ms = 200;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(rotation_mu_);
        if (rotation_stopping_) return;
      }
      auto messages = task_queue_->Poll(poll);
      if (!messages.ok()) {
        STRATA_LOG_WARN("rotation queue poll failed", "error", messages.status().ToString());
        std::unique_lock<std::mutex> lock(rotation_mu_);
        rotation_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return rotation_stopping_; });
        continue;
      }
      // One commit per partition per batch (a crash redoes at most a batch: rotations are
      // idempotent). A failed rotation is retried by the next trigger, not redelivered.
      std::map<int, uint64_t> done;  // partition -> next offset
      bool stopping = false;
      for (const store::Message& m : *messages) {
        std::string_view v = m.value;
        uint64_t member = 0;
        if (coding::GetFixed64BE(&v, &member)) {
          if (!AwaitRotationSlot()) {
            stopping = true;  // the rest stays uncommitted: redelivered after a restart
            break;
          }
          RunRotation(member);
        }
        done[m.partition] = m.offset + 1;
      }
      for (const auto& [partition, next] : done) {
        absl::Status c = task_queue_->Commit(kRotationGroup, kRotationTopic, partition, next);
        if (!c.ok()) STRATA_LOG_WARN("rotation queue commit failed", "error", c.ToString());
      }
      if (stopping) return;
    }
  }
  for (;;) {
    MemberId member;
    {
      std::unique_lock<std::mutex> lock(rotation_mu_);
      rotation_cv_.wait(lock, [this] { return rotation_stopping_ || !rotation_queue_.empty(); });
      if (rotation_stopping_) return;
      member = rotation_queue_.front();
      rotation_queue_.pop_front();
      // Counted as running from the pop: WaitForRotations must never find the member
      // neither queued nor running (it returned early about one run in 70 of a test).
      ++running_rotations_;
    }
    if (!AwaitRotationSlot()) {
      {
        std::lock_guard<std::mutex> lock(rotation_mu_);
        --running_rotations_;
      }
      rotation_idle_cv_.notify_all();
      return;
    }
    RunRotation(member, /*counted=*/true);
  }
}

uint64_t ViewingService::RotationBacklog() {
  uint64_t unpublished = 0;
  {
    std::lock_guard<std::mutex> lock(rotation_mu_);
    if (!task_queue_) return rotation_queue_.size();
    unpublished = rotation_unpublished_.size() + rotation_publishing_;
  }
  auto lag = task_queue_->Lag(kRotationGroup, kRotationTopic);
  if (!lag.ok()) return 0;
  uint64_t backlog = unpublished;
  for (const auto& p : *lag) backlog += p.backlog;
  return backlog;
}

void ViewingService::StartRotationSweep() {
  bool expected = false;
  if (!sweep_running_.compare_exchange_strong(expected, true)) return;
  std::lock_guard<std::mutex> lock(rotation_mu_);
  if (rotation_stopping_) {
    sweep_running_ = false;
    return;
  }
  if (sweep_thread_.joinable()) sweep_thread_.join();  // the previous sweep has finished
  sweep_thread_ = std::thread([this] {
    ThreadPool::NameCurrentThread("strata-sweep");
    ThreadPool::LowerCurrentThreadPriority(options_.background_nice);
    SweepForRotation();
    sweep_running_ = false;
    rotation_idle_cv_.notify_all();
  });
}

void ViewingService::SweepForRotation() {
  sweep_scanned_ = 0;
  sweep_queued_ = 0;
  const auto start = std::chrono::steady_clock::now();
  // The oldest record per member in each tier: the first live row of a partition (rows
  // sort by started_at) and the first segment of a compressed version.
  struct Oldest {
    Millis recent = INT64_MAX;
    Millis past = INT64_MAX;
  };
  auto scan = [&](store::Table* table, bool is_live, bool is_past,
                  std::unordered_map<MemberId, Oldest>* oldest) -> absl::Status {
    STRATA_ASSIGN_OR_RETURN(auto ranges, table->SplitRanges(1));
    for (const auto& range : ranges) {
      std::string cursor;
      do {
        {
          std::lock_guard<std::mutex> lock(rotation_mu_);
          if (rotation_stopping_) return absl::CancelledError("stopping");
        }
        STRATA_ASSIGN_OR_RETURN(auto page, table->ScanRange(range, store::kMaxPageRows, cursor));
        for (const auto& row : page.rows) {
          std::string_view p = row.partition;
          uint64_t member;
          if (!coding::GetFixed64BE(&p, &member)) continue;
          Millis first = INT64_MAX;
          if (is_live) {
            std::string session;
            if (!ParseLiveClusteringKey(row.clustering, &first, &session).ok()) continue;
          } else if (row.clustering == kMetaKey) {
            auto meta = DecodeMeta(row.value);
            if (!meta.ok() || meta->segments.empty()) continue;
            first = meta->segments.front().first_started_at;
          } else {
            continue;
          }
          Oldest& o = (*oldest)[member];
          Millis& slot = is_past ? o.past : o.recent;
          slot = std::min(slot, first);
        }
        cursor = std::move(page.next_cursor);
      } while (!cursor.empty());
    }
    return absl::OkStatus();
  };
  std::unordered_map<MemberId, Oldest> oldest;
  Shard& plays = ShardFor(Kind::kPlay);
  absl::Status s = scan(plays.live, true, false, &oldest);
  if (s.ok()) s = scan(plays.compressed, false, false, &oldest);
  if (s.ok()) s = scan(past_, false, true, &oldest);
  if (!s.ok()) {
    if (!absl::IsCancelled(s)) STRATA_LOG_WARN("rotation sweep failed", "error", s.ToString());
    return;
  }
  for (const auto& [member, o] : oldest) {
    ++sweep_scanned_;
    if (MaybeQueueRotation(member, o.recent, o.past)) ++sweep_queued_;
  }
  STRATA_LOG_INFO("rotation sweep done", "members", sweep_scanned_.load(), "queued",
                  sweep_queued_.load(), "seconds",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void ViewingService::WaitForRotations() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(rotation_mu_);
      rotation_idle_cv_.wait(lock, [this] {
        return rotation_queue_.empty() && running_rotations_ == 0 && !sweep_running_;
      });
    }
    // The durable queue's backlog: poll it (tests and benchmarks only).
    if (RotationBacklog() == 0) {
      std::lock_guard<std::mutex> lock(rotation_mu_);
      if (running_rotations_ == 0 && !sweep_running_) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

RotationStatus ViewingService::rotation_status() {
  RotationStatus st;
  st.queued = RotationBacklog();
  {
    std::lock_guard<std::mutex> lock(rotation_mu_);
    st.running = static_cast<uint64_t>(running_rotations_);
  }
  st.rotated_members = metrics_.rotations->Value();
  st.moved_to_past = metrics_.moved_to_past->Value();
  st.folded_to_historical = metrics_.folded_to_historical->Value();
  st.sweep_running = sweep_running_;
  st.sweep_scanned = sweep_scanned_;
  st.sweep_queued = sweep_queued_;
  return st;
}

// ---------------------------------------------------------------------------------------
// Summaries

std::shared_ptr<const StableSummary> ViewingService::BuildStableSummary(
    const HistoricalState& hist, const PastState& past) {
  auto entry = std::make_shared<StableSummary>();
  entry->historical_until = hist.until;
  entry->rotated_until = past.rotated_until;
  SummaryBuilder builder(hist.summary);
  builder.Merge(past.summary);
  entry->titles = builder.ByTitle();
  return entry;
}

absl::StatusOr<std::shared_ptr<const StableSummary>> ViewingService::GetStableSummary(
    MemberId member) {
  uint64_t generation = 0;
  if (auto hit = summary_cache_->Get(member, &generation)) return hit;
  STRATA_ASSIGN_OR_RETURN(HistoricalState hist, LoadHistorical(member));
  STRATA_ASSIGN_OR_RETURN(PastTier past, LoadPast(member));
  SummaryBuilder builder(hist.summary);
  auto entry = std::make_shared<StableSummary>();
  entry->historical_until = hist.until;
  if (past.history) {
    entry->rotated_until = past.state.rotated_until;
    if (past.state.summary_from == hist.until &&
        past.state.meta_version == past.history->meta.version) {
      builder.Merge(past.state.summary);
    } else {
      // No summary is stored (a small past tier: past_summary_min_records), or a rotation
      // to the historical tier was interrupted between its commits: summarise the past
      // records the historical tier does not cover.
      STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> records,
                              PastRecords(member, past, hist.until, INT64_MAX));
      for (const auto& r : records) builder.Add(r);
    }
    if (!past.history->meta.segments.empty()) {
      MaybeQueueRotation(member, INT64_MAX, past.history->meta.segments.front().first_started_at);
    }
  }
  entry->titles = builder.ByTitle();
  summary_cache_->FillIfUnchanged(member, generation, entry);
  return std::shared_ptr<const StableSummary>(std::move(entry));
}

absl::StatusOr<MemberSummary> ViewingService::Summary(MemberId member) {
  Shard& shard = ShardFor(Kind::kPlay);
  const Millis now = clock_->NowMillis();
  auto expired = [&](const ViewingRecord& r) {
    return TtlExpired(r.event_time, shard.ttl_ms, now);
  };
  // Shared: no rotation or roll-up commits while the tiers are combined.
  std::shared_lock<std::shared_mutex> lock(MemberLock(member));
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const StableSummary> stable, GetStableSummary(member));
  const Millis H = stable->historical_until, R = stable->rotated_until;
  STRATA_ASSIGN_OR_RETURN(CachedHistory h, ReadEntry(shard, member));
  const uint64_t version = h.compressed ? h.compressed->meta.version : 0;

  // The recent tier's compressed version, summarised once per version (not per read). Once
  // a member has an entry, its next versions are summarised per segment: a new version
  // decodes only the segments its roll-up rewrote (a hot member's roll-ups touch its newest
  // segment) and reuses the previous summaries of the others. A first read (no entry) keeps
  // the one-pass path: most members are read far less often than they are rolled up.
  std::shared_ptr<const RecentSummary> recent = summary_cache_->GetRecent(member);
  if (!recent || recent->version != version || recent->historical_until != H ||
      recent->rotated_until != R) {
    const bool per_segment = recent != nullptr;
    std::unordered_map<uint64_t, std::shared_ptr<const SegmentSummary>> reusable;
    if (recent && recent->historical_until == H && recent->rotated_until == R) {
      for (const auto& s : recent->segments) reusable.emplace(s->id, s);
    }
    auto built = std::make_shared<RecentSummary>();
    built->version = version;
    built->historical_until = H;
    built->rotated_until = R;
    SummaryBuilder b;
    // Records of one decoded segment: those in [H, R) to `late`, the rest to `into`.
    auto summarise = [&](std::vector<ViewingRecord>& part, SummaryBuilder& into,
                         std::vector<ViewingRecord>* late) {
      for (auto& r : part) {
        if (expired(r) || r.started_at < H) continue;
        if (r.started_at < R) {
          late->push_back(std::move(r));
        } else {
          into.Add(r);
        }
      }
    };
    if (h.compressed) {
      const auto& refs = h.compressed->meta.segments;
      for (size_t i = 0; i < h.compressed->segments.size() && i < refs.size(); ++i) {
        auto it = reusable.find(refs[i].id);
        if (it != reusable.end() && it->second->checksum == refs[i].checksum) {
          const std::shared_ptr<const SegmentSummary>& seg = it->second;
          b.Merge(seg->titles);
          built->late.insert(built->late.end(), seg->late.begin(), seg->late.end());
          built->segments.push_back(seg);
          metrics_.segment_summaries_reused->Inc();
          continue;
        }
        STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> part,
                                DecodeChunk(shard, member, *h.compressed, i));
        metrics_.segment_summaries_built->Inc();
        if (!per_segment) {
          summarise(part, b, &built->late);
          continue;
        }
        auto fresh = std::make_shared<SegmentSummary>();
        fresh->id = refs[i].id;
        fresh->checksum = refs[i].checksum;
        SummaryBuilder sb;
        summarise(part, sb, &fresh->late);
        fresh->titles = sb.ByTitle();
        b.Merge(fresh->titles);
        built->late.insert(built->late.end(), fresh->late.begin(), fresh->late.end());
        built->segments.push_back(std::move(fresh));
      }
    }
    built->titles = b.ByTitle();
    recent = built;
    summary_cache_->PutRecent(member, std::move(built));
  }
  SummaryBuilder builder(stable->titles);
  builder.Merge(recent->titles);

  // Records in [H, R), by playback: late arrivals and leftovers of an interrupted rotation.
  std::map<std::pair<Millis, std::string>, ViewingRecord> late;
  for (const auto& r : recent->late) late[{r.started_at, r.session}] = r;

  // Live rows: the latest event per playback, replacing the compressed version it updates.
  std::vector<ViewingRecord> live;
  MergeRecords(&live, h.Live());
  std::map<size_t, std::vector<ViewingRecord>> decoded;  // compressed chunks, by index
  for (const ViewingRecord& l : live) {
    if (expired(l) || l.started_at < H) continue;
    const ViewingRecord* old = nullptr;
    if (h.compressed && !h.compressed->meta.segments.empty()) {
      const auto& refs = h.compressed->meta.segments;
      // The chunk whose started_at range holds l (chunks never share a started_at).
      auto it = std::upper_bound(refs.begin(), refs.end(), l.started_at,
                                 [](Millis t, const SegmentRef& ref) {
                                   return t < ref.first_started_at;
                                 });
      if (it != refs.begin() && l.started_at <= std::prev(it)->last_started_at) {
        const size_t i = static_cast<size_t>(std::prev(it) - refs.begin());
        auto d = decoded.find(i);
        if (d == decoded.end()) {
          STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> part,
                                  DecodeChunk(shard, member, *h.compressed, i));
          d = decoded.emplace(i, std::move(part)).first;
        }
        auto pos = std::lower_bound(d->second.begin(), d->second.end(), l,
                                    [](const ViewingRecord& a, const ViewingRecord& b) {
                                      return PlaybackKey(a) < PlaybackKey(b);
                                    });
        if (pos != d->second.end() && PlaybackKey(*pos) == PlaybackKey(l) && !expired(*pos)) {
          old = &*pos;
        }
      }
    }
    if (old && l.event_time < old->event_time) continue;  // the compressed version is newer
    if (l.started_at < R) {
      late[{l.started_at, l.session}] = l;  // replaces a compressed late version, if any
    } else if (old) {
      builder.Replace(*old, l);
    } else {
      builder.Add(l);
    }
  }

  if (!late.empty()) {
    STRATA_ASSIGN_OR_RETURN(PastTier past, LoadPast(member, /*with_state=*/false));
    STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> in_past,
                            PastRecords(member, past, late.begin()->first.first,
                                        late.rbegin()->first.first + 1));
    for (const auto& [key, r] : late) {
      auto it = std::lower_bound(in_past.begin(), in_past.end(), r,
                                 [](const ViewingRecord& a, const ViewingRecord& b) {
                                   return PlaybackKey(a) < PlaybackKey(b);
                                 });
      if (it != in_past.end() && PlaybackKey(*it) == PlaybackKey(r)) {
        if (r.event_time > it->event_time) builder.Replace(*it, r);
      } else {
        builder.Add(r);
      }
    }
    QueueRotation(member);  // they belong in the past tier
  }
  MemberSummary out;
  out.titles = builder.ByRecency();
  out.detail_from = H;
  return out;
}

}  // namespace strata::viewing
