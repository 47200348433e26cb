// Roll-ups (docs/viewing.md, "Roll-up"): what triggers them (live-row counts per member,
// kept as writes are acknowledged, and the age of the oldest write no roll-up has covered,
// checked by the age thread), their queue and background workers, and the roll-up of
// one member: phase A plans and writes the new chunks without blocking the member, phase B
// commits under the member's exclusive lock. Part of ViewingService (viewing_service.h);
// rotations (viewing_tiers.cc) reuse the live-row bookkeeping and LoadForRewrite.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "strata/base/coding.h"
#include "strata/base/crash_point.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"
#include "strata/viewing/codec.h"
#include "strata/viewing/segment_plan.h"
#include "strata/viewing/viewing_internal.h"
#include "strata/viewing/viewing_service.h"

namespace strata::viewing {

using internal::CommittedHistory;
using internal::kMetaKey;
using internal::MemberKey;
using internal::ScanLiveRows;
using internal::SegmentKey;
using internal::StripeOf;
using internal::TimedExclusiveLock;
using internal::WritePlannedSegments;

// ---------------------------------------------------------------------------------------
// Triggers

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

uint64_t ViewingService::RollupThreshold(uint64_t compressed_records) const {
  const auto grown = static_cast<uint64_t>(options_.rollup_growth_fraction *
                                           static_cast<double>(compressed_records));
  // The minimum wins over the cap (tests set a huge minimum to roll up only on demand).
  return std::max<uint64_t>(options_.rollup_min_live_rows,
                            std::min<uint64_t>(grown, options_.rollup_max_live_rows));
}


// ---------------------------------------------------------------------------------------
// Queue and workers

void ViewingService::EnqueueRollup(Shard& shard, MemberId member, bool by_age) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (by_age) {
      queued_by_age_[shard.index].insert(member);
      if (!queued_[shard.index].insert(member).second) return;
      queue_.emplace_back(shard.index, member);
    } else {
      if (!queued_urgent_[shard.index].insert(member).second) return;
      queued_[shard.index].insert(member);
      urgent_queue_.emplace_back(shard.index, member);
    }
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
  ThreadPool::LowerCurrentThreadPriority(options_.background_nice);
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
  ThreadPool::LowerCurrentThreadPriority(options_.background_nice);
  for (;;) {
    std::pair<int, MemberId> task;
    bool by_age = false;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock,
                     [this] { return stopping_ || !urgent_queue_.empty() || !queue_.empty(); });
      if (stopping_) return;
      std::deque<std::pair<int, MemberId>>& from = urgent_queue_.empty() ? queue_ : urgent_queue_;
      task = from.front();
      from.pop_front();
      // An aged entry whose member already rolled up through an urgent entry: stale.
      if (queued_[task.first].erase(task.second) == 0) {
        if (queue_.empty() && urgent_queue_.empty() && running_rollups_ == 0) {
          idle_cv_.notify_all();
        }
        continue;
      }
      queued_urgent_[task.first].erase(task.second);
      by_age = queued_by_age_[task.first].erase(task.second) > 0;
      ++running_rollups_;
    }
    Shard& shard = *shards_[task.first];
    absl::Status s = RollUpMember(shard, task.second, /*force=*/by_age);
    if (!s.ok()) {
      metrics_.rollup_errors->Inc();
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
  idle_cv_.wait(
      lock, [this] { return urgent_queue_.empty() && queue_.empty() && running_rollups_ == 0; });
}

absl::Status ViewingService::RollUp(MemberId member, Kind kind) {
  return RollUpMember(ShardFor(kind), member, /*force=*/true);
}

absl::Status ViewingService::RollUpMember(Shard& shard, MemberId member, bool force) {
  // One roll-up per member at a time (erasure and rotation take this lock too).
  std::lock_guard<std::mutex> rollup_lock(rollup_locks_[StripeOf(member)]);
  return RollUpLocked(shard, member, force);
}

// ---------------------------------------------------------------------------------------
// One member's roll-up

absl::StatusOr<CachedHistory> ViewingService::LoadForRewrite(Shard& shard, MemberId member,
                                                             Millis live_before,
                                                             uint64_t* write_seq) {
  CachedHistory current;
  std::shared_lock<std::shared_mutex> lock(MemberLock(member));
  // Mark, then read the write sequence, then scan: a write that bumps the sequence later
  // may not be in the scan, and its started_at is in the mark.
  MarkLiveWrites(shard, member);
  *write_seq = write_seq_[StripeOf(member)].load(std::memory_order_acquire);
  const Millis live_from = LiveFrom(shard, member);
  STRATA_ASSIGN_OR_RETURN(current, LoadFromStore(shard, member, /*newest_segments=*/0,
                                                 live_from >= live_before ? INT64_MAX
                                                                          : live_from,
                                                 /*parallel=*/false));
  if (current.compressed) {
    auto cached = cache_->PeekCompressed(shard.index, member);
    if (cached && cached->meta.version == current.compressed->meta.version) {
      current.compressed = std::move(cached);
    }
  }
  return current;
}

SegmentPlanInput ViewingService::PlanInput(MemberId member, Kind kind, Millis ttl_ms,
                                           Millis now, size_t segment_records) const {
  SegmentPlanInput in;
  in.member = member;
  in.kind = kind;
  in.ttl_ms = ttl_ms;
  in.now = now;
  in.segment_records = segment_records;
  in.zstd_level = options_.zstd_level;
  if (run_all_) in.run_all = &run_all_;
  return in;
}

absl::Status ViewingService::RollUpLocked(Shard& shard, MemberId member, bool force) {
  const auto start = std::chrono::steady_clock::now();
  const std::string partition = MemberKey(member);

  // Phase A, under the shared member lock only while reading: writes and reads go on while
  // the new segments are encoded and written (they are unreferenced until the commit).
  // The committed chunks are read only where live rows fall (or taken from the cache).
  uint64_t write_seq = 0;
  STRATA_ASSIGN_OR_RETURN(CachedHistory current,
                          LoadForRewrite(shard, member, /*live_before=*/INT64_MAX, &write_seq));
  const HistoryMeta old_meta = current.compressed ? current.compressed->meta : HistoryMeta{};
  const uint64_t threshold = RollupThreshold(old_meta.records());
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
  SegmentPlanInput plan_in = PlanInput(member, shard.kind, shard.ttl_ms, clock_->NowMillis(),
                                       options_.segment_records);
  plan_in.current = current.compressed.get();
  plan_in.segment_bytes = [&](size_t i) -> absl::StatusOr<std::shared_ptr<const std::string>> {
    if (current.compressed->segments[i]) return current.compressed->segments[i];
    return ReadSegment(shard, member, current.compressed->meta.segments[i]);
  };
  plan_in.updates = live;
  STRATA_ASSIGN_OR_RETURN(SegmentPlan plan, PlanSegments(plan_in));

  // 1. The new segments (unreferenced until the commit).
  STRATA_RETURN_IF_ERROR(WritePlannedSegments(shard.compressed, partition, old_meta, plan));
  STRATA_CRASH_POINT("rollup.after_chunks");
  if (rollup_hook_) rollup_hook_();

  STRATA_ASSIGN_OR_RETURN(const uint64_t rolled,
                          CommitRollup(shard, member, std::move(plan), live, write_seq));
  metrics_.rollups->Inc();
  metrics_.rollup_records->Inc(rolled);
  metrics_.rollup_seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ViewingService::CommitRollup(Shard& shard, MemberId member,
                                                      SegmentPlan plan,
                                                      const std::vector<ViewingRecord>& live,
                                                      uint64_t write_seq) {
  const std::string partition = MemberKey(member);
  // Phase B, under the exclusive member lock: commit, deleting what the commit makes
  // redundant in the same write. Live rows a write changed since phase A read them stay live (the newer event
  // wins on reads); unchanged ones are now held by the committed segments.
  ScopedPriorityBoost boost;  // requests wait for this section: run it at normal priority
  TimedExclusiveLock lock(MemberLock(member), metrics_.lock_held_rollup);
  store::WriteBatch live_deletes;
  std::vector<Millis> survivors;  // started_at of rolled rows a write changed meanwhile
  STRATA_RETURN_IF_ERROR(
      UnchangedLiveRows(shard, member, live, write_seq, &live_deletes, &survivors));

  // 2. The metadata row (the commit point), the deletes of the chunks it replaced (no reader
  // can reach them once it is committed: the exclusive lock keeps out readers of the old
  // version) and the deletes of the live rows the new version holds, in one write across
  // the two tables, in that order (WriteInOrder; atomic on RocksDB): readers of the member wait for this lock, and every store write
  // waits for the write slot behind ingest batches (a hot member's phase B held the lock
  // 5-7 ms with three writes).
  const uint64_t total_records = plan.meta.records();
  const uint64_t rolled = live_deletes.size();
  {
    std::vector<store::PartitionWrite> commit;
    commit.push_back({shard.compressed, partition, {}});
    commit[0].batch.Put(kMetaKey, EncodeMeta(plan.meta), plan.expire_at);
    for (uint64_t id : plan.replaced) commit[0].batch.Delete(SegmentKey(id));
    if (!live_deletes.empty()) commit.push_back({shard.live, partition, std::move(live_deletes)});
    STRATA_RETURN_IF_ERROR(store_->WriteInOrder(commit));
  }
  STRATA_CRASH_POINT("rollup.after_commit");
  bool nothing_live = false;
  {
    // Under the exclusive lock: no write is between its store write and its count.
    std::lock_guard<std::mutex> counts_lock(shard.counts_mu);
    auto& c = shard.counts[member];
    nothing_live = c.written_min == INT64_MAX && survivors.empty();
    c.rows -= std::min<uint64_t>(c.rows, rolled);
    // What is left live: rows a write changed, and rows written since phase A's mark.
    c.live_from = c.written_min;
    for (Millis t : survivors) c.live_from = std::min(c.live_from, t);
    c.trigger_at = RollupThreshold(total_records);
    c.unrolled_since = nothing_live ? 0 : clock_->NowMillis();
  }
  // The cached entry keeps the live records no rolled-up version covers. With none left
  // (the same bookkeeping a cache miss trusts to scan live rows from), a member not in the
  // cache gets the committed version: its next read hits.
  cache_->CommitLiveMove(shard.index, member, CommittedHistory(std::move(plan)), live,
                         /*install_if_absent=*/nothing_live);
  // Shared cache: entries of the old version name chunks this commit deleted.
  STRATA_RETURN_IF_ERROR(InvalidateShared(member, {shard.index}));
  return rolled;
}

}  // namespace strata::viewing
