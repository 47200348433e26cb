// Runs reprocessing jobs: plans each job's selection into one queue event per asset, then
// processes the events with workers while production reads and writes go on.
//
// Data path of a job (docs/assets.md, "Reprocessing"):
//  * Planning pages through the selection with AssetService::List (bucket walk, or the index
//    with `where`; newest first; assets created after planning began are not selected) and
//    publishes each page's ids to the job's topic "reprocess.job-<id>" (`concurrency`
//    partitions, keyed by asset id), then records the page's cursor in the job row. A crash
//    between the two republishes that page: harmless (below), though `selected` then counts
//    those assets twice.
//  * Workers: one per partition, in the consumer group "reprocess-job-<id>". Each event is
//    one AssetService::ProcessOnce: the processor's result and the job's mark are written in
//    one compare-and-set batch, so a redelivered event does nothing and a concurrent
//    production write is re-read and re-processed, never overwritten. Processor and schema
//    errors go straight to the dead letters; other errors are retried up to `max_attempts`.
//    After each polled batch a worker adds its counts to the job row, then commits its
//    offset: a crash in between redelivers the batch, which counts nothing again (a crash
//    before the counts are added loses those counts; the effects are not lost).
//  * The job succeeds when planning is done and no partition has a backlog.
//  * Pause (workers stop polling), resume and cancel change the job row; workers read it
//    every `state_poll_ms`. On Open, jobs found planning, running or paused are resumed from
//    their row and committed offsets.
//  * Processors with hooks (processor.h): Begin before the workers start (export opens its
//    file), Committed after each asset's step took effect (export appends it), Finish
//    before the job is marked succeeded (reindex marks its indexes ready, export renames its
//    file); RebuildsIndex makes each step rewrite the asset's index entries (reindex).
//  * Adaptive rate: a job whose spec has `adaptive` (off by default) takes one token per asset
//    from the runner's AIMD throttle (base/aimd_throttle.h), shared by every such job: every
//    `control_interval_ms` the runner feeds it `load_probe`'s sample (the online asset
//    requests' p99 over the last few intervals, the store's compaction debt and write
//    stalls). The rate grows while the online p99 stays within `throttle.latency_factor` x
//    its idle p99 (learned while no job works) and the store keeps up, and is halved when
//    not. Without a load_probe (tests, tools) jobs are not paced by it. The spec's `rate`
//    caps a job either way. Known limit (why it is not the default): the idle p99 is
//    learned before the job; when the job's own writes leave the store slower for good
//    (more files, colder caches), the online p99 never returns under 1.3x of it and the
//    rate stays at its minimum (docs/assets.md, "Adaptive rate").
//  * Retries: errors other than InvalidArgument/OutOfRange (a webhook's 5xx or timeout) are
//    tried again after an exponential backoff with jitter, up to max_attempts, then dead-
//    lettered. RetryDeadLetters puts dead letters back on the queue.
//
// Dry runs (DryRun) write nothing and store no job.
//
// Metrics (the registry given to Open, if any): strata_reprocess_job_assets{job,state,count}
// -- each counter of the jobs that are not final and of the 20 newest, read from their rows
// when /metrics is rendered; strata_reprocess_throttle_rate (the adaptive rate, assets/s) and
// strata_reprocess_throttle_decisions{decision} (cuts for latency or store load, holds).
//
// Thread safety: every method is thread-safe. Destroying the runner stops its threads
// (jobs stay as they are, to be resumed by the next Open).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/assets/asset_service.h"
#include "strata/base/aimd_throttle.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/reprocess/job_store.h"
#include "strata/store/queue.h"

namespace strata::reprocess {

struct JobRunnerOptions {
  // Assets selected per planning page. Default 1000.
  size_t plan_page = 1000;
  // Longest a worker waits in one Poll, ms (wall time). Default 200.
  Millis poll_wait_ms = 200;
  // Events a worker takes per Poll (one count update and one commit each). Default 100.
  int poll_batch = 100;
  // How often workers re-read the job's state (pause, cancel), ms. Default 200.
  Millis state_poll_ms = 200;
  // How long a job's marks outlive it on the assets, ms. Default 30 days.
  Millis mark_ttl_ms = 30LL * 24 * 3600 * 1000;
  // Backoff between tries of one asset (an error other than a processor, schema or size
  // error: a webhook's 5xx or timeout, a busy store): retry_base_ms doubled per try, at most
  // retry_max_ms, of which a random half (equal jitter). Defaults 100 ms and 10 s.
  Millis retry_base_ms = 100;
  Millis retry_max_ms = 10'000;
  // Nice increment of the job threads (planning and workers); 0 = request priority. While
  // a worker holds the row store's write lock it runs at normal priority again.
  int worker_nice = 0;
  // Seeds the jitter (tests); 0 = random.
  uint64_t jitter_seed = 0;
  // Where `export` jobs write their files (the server: <data dir>/exports). Empty = export
  // jobs fail at their start.
  std::string export_dir;
  // The adaptive rate (header comment): the online load and the store's health, sampled
  // every control_interval_ms. Null = adaptive jobs are not paced by load.
  std::function<LoadSample()> load_probe;
  // Whether the row store is stalling writes now (RocksDB delays or stops every write while
  // its flushes and compactions catch up). Every job, adaptive or not, waits before a batch
  // while it is, for at most stall_wait_max_ms per batch (so a job always progresses): the
  // store's writes are serialised, so a production write queues behind each delayed job
  // batch, and the job's own writes are what the store is catching up on. Unset: no wait.
  std::function<bool()> store_stalled;
  Millis stall_wait_max_ms = 2000;
  // How long a "not stalling" answer of store_stalled is trusted before it is asked again,
  // ms. Workers ask before every batch; RocksDB's answer (its whole health: WAL file list,
  // every table's properties) cost ~10% of a job thread's CPU asked that often, and a stall
  // lasts seconds. While the store stalls, it is asked at every step of the wait. Default 50.
  Millis stall_check_interval_ms = 50;
  Millis control_interval_ms = 500;
  ThrottleOptions throttle = DefaultJobThrottle();
  // A job starts at 2,000 assets/s and gains 500/s per healthy interval (1,000/s a second at
  // the default interval); it never goes below 100/s. Latency and store limits are the
  // GC sweep's (1.3 x idle p99, at least 1 ms; 256 MiB of pending compaction).
  static ThrottleOptions DefaultJobThrottle() {
    ThrottleOptions t;
    t.initial_rate = 2000;
    t.min_rate = 100;
    t.max_rate = 1e6;
    t.additive_step = 500;
    return t;
  }
};

// One asset of a dry run: what the processor would make of it.
struct DryRunItem {
  std::string id;
  std::string outcome;  // "changed", "unchanged" or "error"
  std::string before;   // the payload (JSON)
  std::string after;    // the payload it would get (JSON; empty unless changed)
  std::string error;    // the processor's or the schema's error (outcome "error")
};

class JobRunner {
 public:
  // Resumes every job found planning, running or paused. All pointers must outlive the
  // runner.
  static absl::StatusOr<std::unique_ptr<JobRunner>> Open(assets::AssetService* assets,
                                                         store::Queue* queue, JobStore* jobs,
                                                         Clock* clock,
                                                         JobRunnerOptions options = {},
                                                         MetricsRegistry* metrics = nullptr);
  ~JobRunner();

  // POST /v1/reprocess/jobs: parses the spec, checks the type exists, stores the job and
  // starts it.
  absl::StatusOr<JobRecord> Submit(std::string_view body);
  // A dry run (the spec's `dry_run.sample`): the processor applied to copies of the first
  // `sample` assets of the selection, validated against the type's schema; nothing is
  // written and no job is stored.
  absl::StatusOr<std::vector<DryRunItem>> DryRun(const JobSpec& spec);
  absl::StatusOr<JobRecord> Pause(uint64_t id);
  absl::StatusOr<JobRecord> Resume(uint64_t id);
  absl::StatusOr<JobRecord> Cancel(uint64_t id);
  // POST /v1/reprocess/jobs/{id}/dead-letters:retry: puts every dead letter's asset back on
  // the job's queue, then counts them out of dead_lettered (a succeeded job runs again) and
  // removes the dead letters that no worker has replaced meanwhile. FailedPrecondition for
  // a planning, cancelled or failed job, and for processors whose jobs cannot take them
  // back (export). Answers the job as it is after the counts.
  absl::StatusOr<JobRecord> RetryDeadLetters(uint64_t id);
  JobStore* jobs() const { return jobs_; }
  const JobRunnerOptions& options() const { return options_; }

  static std::string TopicFor(uint64_t id);
  static std::string GroupFor(uint64_t id);

 private:
  struct Running;
  struct GaugeLink;
  std::vector<std::pair<std::string, double>> JobGauge();
  JobRunner(assets::AssetService* assets, store::Queue* queue, JobStore* jobs, Clock* clock,
            JobRunnerOptions options);
  // `resumed`: the job was not submitted by this process (Open, Resume, a retry).
  void Start(uint64_t id, bool resumed);
  void Run(Running* run);
  absl::Status Plan(Running* run, JobRecord job);
  void Work(Running* run, int partition);
  // Every event is processed: the processor's Finish, then succeeded (or failed).
  void Finish(Running* run);
  // Sleeps before try `attempt` + 1 (returns early when the runner stops).
  void Backoff(int attempt, std::mt19937_64* random);
  // Waits for the rate limit (assets/s, 0 = none).
  void Pace(Running* run);
  // Waits for `n` tokens of the adaptive rate (a job whose spec is adaptive, with a load
  // probe); false when the runner stops meanwhile.
  bool PaceAdaptive(const Running* run, size_t n);
  void ControlLoop();

  assets::AssetService* const assets_;
  store::Queue* const queue_;
  JobStore* const jobs_;
  Clock* const clock_;
  const JobRunnerOptions options_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<Running>> running_;  // guarded by mu_
  std::shared_ptr<GaugeLink> gauge_link_;
  // The adaptive rate (null without a load probe), its control thread, and when an adaptive
  // job last took tokens (steady-clock ns): the control step counts an interval as busy
  // when a job worked in it, and otherwise lets it teach the idle baseline.
  std::unique_ptr<AimdThrottle> throttle_;
  std::thread control_;
  std::mutex control_mu_;
  std::condition_variable control_cv_;
  std::atomic<int64_t> last_adaptive_work_ns_{0};
  std::atomic<uint64_t> stall_wait_ms_{0};  // total ms workers waited for a stalling store
  // When store_stalled last answered "not stalling" (steady-clock ns; 0 = never).
  std::atomic<int64_t> unstalled_at_ns_{0};
  // Waits (bounded) while the store stalls writes; false if the runner stops meanwhile.
  bool YieldToStalls();
};

}  // namespace strata::reprocess
