// The lifecycle collector: a daily (and on-demand) mark-and-sweep cycle over the media
// objects, generic over a LifecycleTask (the garbage collector, archival). See docs/gc.md.
//
// A run:
//  1. Mark: takes a consistent snapshot of the row store (RowStore::NewSnapshot; never the
//     online read path; on a backend without snapshots, RADOS, the latest rows: the sweep's
//     re-check keeps that safe), scans media_buckets and media_objects through it (SplitRanges +
//     ScanRange), exports every bucket, object and superseded row to NDJSON files partitioned
//     by day (<export_dir>/<task>/<table>/dt=YYYY-MM-DD/run-<id>.ndjson, schema in
//     <export_dir>/<task>/_schema.json), and computes the work list: the rows the task finds
//     eligible as of `as_of` (default: now), with the reason; written as the `worklist` table.
//     A dry run stops here: its counts are the forecast for `as_of`.
//  2. Publish: the work list goes to the queue topic "lifecycle.<task>" (keyed by bucket/key).
//  3. Sweep: a pool of workers (min..max, growing with the backlog) polls the topic, takes a
//     throttle token per item and calls LifecycleTask::Process, then commits. At-least-once
//     delivery + idempotent steps + an audit written at most once per item = a crash at any
//     point resumes without losing or repeating a deletion's effect.
//  4. The run is done when its backlog is empty; counts come from the audit totals.
// One run at a time per collector: StartRun answers FailedPrecondition while one is active.
//
// Thread-safe. Owns its threads (workers, the control loop, the run thread); Stop or the
// destructor joins them. `rows`, `queue`, `media`, `task`, `clock` and `metrics` must outlive it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/gc/lifecycle_task.h"
#include "strata/gc/orphan_scan.h"
#include "strata/gc/records.h"
#include "strata/base/aimd_throttle.h"
#include "strata/media/media_service.h"
#include "strata/store/queue.h"
#include "strata/store/row_store.h"

namespace strata::gc {

struct CollectorOptions {
  // Directory of the analytic export; "" = no export files (the work list is still computed).
  std::string export_dir;
  // Runs whose export files are kept (per task, newest by run id; dry runs count); older
  // ones are deleted after each export. 0 = keep all. Default 30.
  size_t export_keep_runs = 30;
  // Partitions of the sweep topic (fixed once created; bounds the useful workers). Default 16.
  int topic_partitions = 16;
  // Sweep workers: at least `min_workers` (default 1), one more per `backlog_per_worker`
  // queued items (default 2000), at most `max_workers` (0, the default: half the machine's
  // cores, at least min_workers). A worker deletes a polled batch's bytes with one directory
  // sync, so it is CPU-bound, not waiting on the disk; more workers than half the cores
  // contend on the directories' locks with the online PUTs. Measured on 2 cores (100k
  // objects, 40k eligible, throttle off): 1 worker 3,805 items/s with PUT p99 x1.17 of
  // idle; 2 workers 4,850 items/s, x1.64; 8 workers 5,383 items/s, x4.40.
  int min_workers = 1;
  int max_workers = 0;
  // Items a worker takes per poll and runs through each step together: one blob-store
  // DeleteMany (one directory fsync per directory) and one queue commit per batch. Every
  // forced journal commit of the sweep is one an online PUT's fsync may have to wait behind;
  // a crash redelivers at most a batch (every step is idempotent). Default 64: at 1M objects
  // batches of 1024 did not lower PUT p99 during the sweep (x2.54 vs x2.98 idle) and the
  // coarser steps kept the throttle near its floor (943 s vs 294 s; docs/benchmark-log.md).
  int sweep_batch = 64;
  uint64_t backlog_per_worker = 2000;
  // Record a polled batch's decisions together (BatchContext::record: one read and one write
  // per audit partition) instead of four operations per item, for a row store where every
  // operation is a network round trip (RADOS). Off by default: on RocksDB one write per item
  // measured better for online PUT p99 (docs/gc.md, "Batches").
  bool batch_records = false;
  // Parallel ranges of the mark scan. Default 2.
  int scan_ranges = 2;
  // Daily schedule: "HH:MM" (UTC) starts a run each day at that time; "" = none (default).
  std::string daily_at;
  // Wall-clock milliseconds between control steps (throttle, pool size, run completion).
  int control_interval_ms = 500;
  // Nice increment of the sweep workers (lower CPU priority than requests). Default 10.
  int worker_nice = 10;
  // Whether runs of a task that asks for it (the GC) also scan the blob store for bytes no
  // row names and collect those older than the task's orphan age (orphan_scan.h; docs/gc.md,
  // "Orphan blobs"). Default true.
  bool scan_orphan_blobs = true;
  // Called for each orphan blob collected, after the delete (run id, what was deleted): the
  // server writes its audit record (gc.orphan_blob). May be null (the log line and the day
  // totals remain).
  std::function<void(uint64_t run_id, const CollectedOrphan&)> orphan_audit;
  ThrottleOptions throttle;
  // Sampled every control step to drive the throttle; nullptr = no signal (the rate then
  // only grows, up to throttle.max_rate).
  std::function<LoadSample()> load_probe;
  // Told of every run the daily schedule starts (or fails to start), for the audit log: runs
  // started through StartRun are audited by their caller. Called on the control thread; may
  // be null.
  std::function<void(const absl::StatusOr<RunRecord>& run)> on_scheduled_run;
};

struct RunRequest {
  bool dry_run = false;
  std::optional<Millis> as_of;  // default: now. Only dry runs may look into the future.
};

struct DayTotals {
  std::string day;  // "YYYY-MM-DD"
  uint64_t objects = 0;
  uint64_t bytes = 0;
  struct Row {
    std::string bucket;
    std::string reason;
    uint64_t objects = 0;
    uint64_t bytes = 0;
  };
  std::vector<Row> by_bucket_reason;
};

class Collector {
 public:
  static absl::StatusOr<std::unique_ptr<Collector>> Open(store::RowStore* rows, store::Queue* queue,
                                                         media::MediaService* media,
                                                         LifecycleTask* task, Clock* clock,
                                                         MetricsRegistry* metrics,
                                                         CollectorOptions options);
  ~Collector();

  // Starts the workers, the control loop and the schedule, and resumes an interrupted run
  // (one found in state marking is marked failed: nothing was published; publishing or
  // sweeping continue with what the queue holds).
  absl::Status Start();
  void Stop();

  // Starts a run in the background and returns its record (state marking).
  // FailedPrecondition if a run is active; InvalidArgument for a future as_of without dry_run.
  absl::StatusOr<RunRecord> StartRun(const RunRequest& request);
  // Starts a run and waits until it is done or failed (or `timeout_ms` of wall time passed:
  // the record as it is then).
  absl::StatusOr<RunRecord> RunAndWait(const RunRequest& request, int64_t timeout_ms);
  absl::StatusOr<RunRecord> WaitRun(uint64_t id, int64_t timeout_ms);

  // NotFound for an unknown id.
  absl::StatusOr<RunRecord> GetRun(uint64_t id);
  // The latest runs, newest first.
  absl::StatusOr<std::vector<RunRecord>> ListRuns(size_t limit);
  // Objects and bytes processed per UTC day, the last `days` days up to today, oldest first.
  absl::StatusOr<std::vector<DayTotals>> Stats(int days);
  // Items published but not yet processed.
  uint64_t Backlog();
  double ThrottleRate() const { return throttle_.rate(); }
  int Workers() const { return desired_workers_.load(); }
  const LifecycleTask* task() const { return task_; }

  // One control step now (tests; the control loop calls it every interval).
  void ControlStep();

 private:
  Collector(store::RowStore* rows, store::Queue* queue, media::MediaService* media,
            LifecycleTask* task, Clock* clock, CollectorOptions options);

  void RunThread(RunRecord run);
  // `referenced` (null: not collected) receives the blob names the rows name, sealed.
  absl::Status Mark(RunRecord* run, std::vector<WorkItem>* work, ReferencedBlobs* referenced);
  bool ScansOrphanBlobs() const;
  // The run's orphan-blob scan, on the run thread, while the sweep runs; keeps active_'s
  // counts up to date.
  void ScanOrphans(const ReferencedBlobs* referenced);
  static void CopyOrphanCounts(const OrphanScanCounts& counts, RunRecord* run);
  // Adds a collected orphan blob to its day's totals (reason "orphan_blob").
  absl::Status RecordOrphanBlob(const std::string& day, const CollectedOrphan& orphan);
  absl::Status Publish(RunRecord* run, const std::vector<WorkItem>& work);
  absl::Status SaveRun(const RunRecord& run);
  void WorkerLoop(int index);
  void ControlLoop();
  // Runs one polled batch through the task (ProcessBatch), retrying failed items alone.
  void ProcessMessages(std::span<const store::Message> messages);
  absl::Status Record(const WorkItem& item, Millis now);
  // Record for items[indices[j]] of one batch: one MultiGet and one write per audit
  // partition; one status per index.
  std::vector<absl::Status> RecordMany(std::span<const WorkItem> items,
                                       std::span<const size_t> indices, Millis now);
  absl::StatusOr<bool> Recorded(const WorkItem& item);
  void FinishSweepIfDrained();
  void MaybeStartScheduled();
  std::string topic() const { return "lifecycle." + std::string(task_->name()); }
  std::string group() const { return "lifecycle." + std::string(task_->name()) + ".sweep"; }

  store::RowStore* rows_;
  store::Queue* queue_;
  media::MediaService* media_;
  LifecycleTask* task_;
  Clock* clock_;
  CollectorOptions options_;
  store::Table* runs_ = nullptr;
  store::Table* audit_ = nullptr;
  AimdThrottle throttle_;

  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  uint64_t next_run_id_ = 1;
  std::optional<RunRecord> active_;  // the run being marked, published or swept
  std::string last_scheduled_day_;
  std::thread run_thread_;
  std::thread control_thread_;
  std::vector<std::thread> workers_;

  std::mutex record_mu_;                                   // serialises audit read-check-writes
  std::vector<std::unique_ptr<std::mutex>> partition_mu_;  // one consumer per partition
  std::atomic<int> desired_workers_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<bool> sweeping_{false};
  std::atomic<bool> orphan_scanning_{false};  // the run thread is in ScanOrphans

  Counter* processed_objects_ = nullptr;
  Counter* processed_bytes_ = nullptr;
  Counter* skipped_total_ = nullptr;
  Counter* errors_total_ = nullptr;
  Counter* runs_total_ = nullptr;
  Counter* orphan_blobs_total_ = nullptr;  // these three: tasks that scan for orphan blobs
  Counter* orphan_blob_bytes_total_ = nullptr;
  Counter* blobs_listed_total_ = nullptr;
};

}  // namespace strata::gc
