#include "strata/reprocess/job_runner.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <span>

#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"
#include "strata/reprocess/processor.h"

namespace strata::reprocess {

struct JobRunner::Running {
  uint64_t id = 0;
  JobSpec spec;
  JobEnv env;
  std::unique_ptr<Processor> processor;
  std::thread thread;
  std::atomic<bool> finished{false};  // Run returned: the entry may be replaced
  std::mutex pace_mu;
  std::chrono::steady_clock::time_point next_slot{};  // guarded by pace_mu
  std::mutex finish_mu;  // one worker at a time runs Finish and moves the job on
};

JobRunner::JobRunner(assets::AssetService* assets, store::Queue* queue, JobStore* jobs,
                     Clock* clock, JobRunnerOptions options)
    : assets_(assets), queue_(queue), jobs_(jobs), clock_(clock), options_(options) {}

namespace {

// The schema of a type version (nullopt = current), for the `validate` processor, and the
// current type, for `reindex`.
ProcessorEnv LookupFor(assets::AssetService* assets, std::string type) {
  ProcessorEnv env;
  env.type = [assets, type]() -> absl::StatusOr<std::shared_ptr<const assets::AssetType>> {
    STRATA_ASSIGN_OR_RETURN(assets::TypeWithHistory t, assets->GetType(type));
    return t.current;
  };
  env.schema = [assets, type](std::optional<uint32_t> version) -> absl::StatusOr<assets::Schema> {
    STRATA_ASSIGN_OR_RETURN(assets::TypeWithHistory t, assets->GetType(type));
    if (!version || *version == t.current->version) return t.current->schema;
    for (const std::string& json : t.history_json) {
      STRATA_ASSIGN_OR_RETURN(assets::JsonValue doc, assets::ParseJson(json, "stored type", 64));
      const assets::JsonValue* v = doc.Find("version");
      const assets::JsonValue* schema = doc.Find("schema");
      if (v != nullptr && schema != nullptr && v->number() == *version) {
        return assets::Schema::Parse(*schema, "stored schema", 64);
      }
    }
    return absl::NotFoundError("type " + type + " has no version " + std::to_string(*version));
  };
  return env;
}

}  // namespace

struct JobRunner::GaugeLink {
  std::mutex mu;
  JobRunner* runner = nullptr;  // null once the runner is gone
};

std::vector<std::pair<std::string, double>> JobRunner::JobGauge() {
  std::vector<std::pair<std::string, double>> out;
  absl::StatusOr<std::vector<JobRecord>> jobs = jobs_->List(1000);
  if (!jobs.ok()) return out;
  size_t shown = 0;
  for (const JobRecord& job : *jobs) {
    if (IsFinal(job.state) && shown >= 20) continue;
    ++shown;
    const std::string labels = "job=\"" + std::to_string(job.id) + "\",state=\"" +
                               std::string(JobStateName(job.state)) + "\",count=\"";
    const std::pair<const char*, uint64_t> counts[] = {
        {"selected", job.counts.selected},
        {"processed", job.counts.processed},
        {"changed", job.counts.changed},
        {"unchanged", job.counts.unchanged},
        {"conflicts_retried", job.counts.conflicts_retried},
        {"failed", job.counts.failed},
        {"dead_lettered", job.counts.dead_lettered}};
    for (const auto& [name, value] : counts) {
      out.emplace_back(labels + name + "\"", static_cast<double>(value));
    }
  }
  return out;
}

std::string JobRunner::TopicFor(uint64_t id) { return "reprocess.job-" + std::to_string(id); }
std::string JobRunner::GroupFor(uint64_t id) { return "reprocess-job-" + std::to_string(id); }

absl::StatusOr<std::unique_ptr<JobRunner>> JobRunner::Open(assets::AssetService* assets,
                                                           store::Queue* queue, JobStore* jobs,
                                                           Clock* clock, JobRunnerOptions options,
                                                           MetricsRegistry* metrics) {
  std::unique_ptr<JobRunner> runner(new JobRunner(assets, queue, jobs, clock, options));
  if (metrics != nullptr) {
    auto link = std::make_shared<GaugeLink>();
    link->runner = runner.get();
    runner->gauge_link_ = link;
    metrics->AddGauge("strata_reprocess_job_assets",
                      "Reprocessing jobs' counters (assets), per job, state and counter",
                      [link]() -> std::vector<std::pair<std::string, double>> {
                        std::lock_guard<std::mutex> lock(link->mu);
                        if (link->runner == nullptr) return {};
                        return link->runner->JobGauge();
                      });
  }
  if (metrics != nullptr && options.store_stalled) {
    std::shared_ptr<GaugeLink> link = runner->gauge_link_;
    metrics->AddGauge("strata_reprocess_stall_wait_seconds",
                      "Time reprocessing workers waited before a batch while the row store "
                      "stalled writes, since start (a counter)",
                      [link]() -> std::vector<std::pair<std::string, double>> {
                        std::lock_guard<std::mutex> lock(link->mu);
                        if (link->runner == nullptr) return {};
                        return {{"", link->runner->stall_wait_ms_.load() / 1000.0}};
                      });
  }
  if (options.load_probe) {
    runner->throttle_ = std::make_unique<AimdThrottle>(options.throttle);
    if (metrics != nullptr) {
      const AimdThrottle* t = runner->throttle_.get();
      std::shared_ptr<GaugeLink> link = runner->gauge_link_;
      metrics->AddGauge("strata_reprocess_throttle_rate",
                        "Adaptive rate of reprocessing jobs, assets/s (shared by the jobs that "
                        "are adaptive)",
                        [link, t]() -> std::vector<std::pair<std::string, double>> {
                          std::lock_guard<std::mutex> lock(link->mu);
                          if (link->runner == nullptr) return {};
                          return {{"", t->rate()}};
                        });
      metrics->AddGauge(
          "strata_reprocess_throttle_decisions",
          "Control steps since start that cut the jobs' adaptive rate (latency, store load) or "
          "held it after a latency cut",
          [link, t]() -> std::vector<std::pair<std::string, double>> {
            std::lock_guard<std::mutex> lock(link->mu);
            if (link->runner == nullptr) return {};
            return {{"decision=\"latency_cut\"", static_cast<double>(t->latency_cuts())},
                    {"decision=\"load_cut\"", static_cast<double>(t->load_cuts())},
                    {"decision=\"hold\"", static_cast<double>(t->latency_holds())}};
          });
    }
    runner->control_ = std::thread([r = runner.get()] { r->ControlLoop(); });
  }
  uint64_t before = 0;
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(std::vector<JobRecord> page, jobs->List(1000, before));
    for (const JobRecord& job : page) {
      if (!IsFinal(job.state)) runner->Start(job.id, /*resumed=*/true);
    }
    if (page.size() < 1000) break;
    before = page.back().id;
  }
  return runner;
}

JobRunner::~JobRunner() {
  if (gauge_link_) {
    std::lock_guard<std::mutex> lock(gauge_link_->mu);
    gauge_link_->runner = nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(control_mu_);
    stopping_.store(true);
  }
  control_cv_.notify_all();
  if (throttle_) throttle_->Cancel();  // workers waiting for tokens return
  if (control_.joinable()) control_.join();
  std::map<uint64_t, std::unique_ptr<Running>> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running.swap(running_);
  }
  for (auto& [id, run] : running) {
    if (run->thread.joinable()) run->thread.join();
  }
}

absl::StatusOr<JobRecord> JobRunner::Submit(std::string_view body) {
  STRATA_ASSIGN_OR_RETURN(JobSpec spec, ParseJobSpec(body));
  if (spec.dry_run_sample) {
    return absl::InvalidArgumentError("dry_run: a dry run is not a job (use DryRun)");
  }
  // The selection must be valid now (the type exists, where-pointers are indexed and built),
  // not fail later in planning.
  assets::ListQuery probe;
  probe.limit = 1;
  probe.since = spec.since;
  probe.until = spec.until;
  probe.where = spec.where;
  STRATA_RETURN_IF_ERROR(assets_->List(spec.type, probe).status());
  STRATA_RETURN_IF_ERROR(MakeProcessor(spec.processor, LookupFor(assets_, spec.type)).status());
  STRATA_ASSIGN_OR_RETURN(JobRecord job, jobs_->Create(std::move(spec)));
  Start(job.id, /*resumed=*/false);
  return job;
}

absl::StatusOr<std::vector<DryRunItem>> JobRunner::DryRun(const JobSpec& spec) {
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<Processor> processor,
                          MakeProcessor(spec.processor, LookupFor(assets_, spec.type)));
  STRATA_ASSIGN_OR_RETURN(assets::TypeWithHistory type, assets_->GetType(spec.type));
  assets::ListQuery q;
  q.limit = spec.dry_run_sample.value_or(10);
  q.since = spec.since;
  q.until = spec.until;
  q.where = spec.where;
  STRATA_ASSIGN_OR_RETURN(assets::AssetPage page, assets_->List(spec.type, q));
  std::vector<DryRunItem> out;
  for (const assets::Asset& a : page.assets) {
    DryRunItem item;
    item.id = a.id.ToString();
    item.before = a.row.payload;
    STRATA_ASSIGN_OR_RETURN(assets::JsonValue payload,
                            assets::ParseJson(a.row.payload, "stored payload", 1024));
    AssetInfo info{a.type, item.id, a.row.version, a.row.schema_version, a.row.created_at,
                   a.row.updated_at};
    absl::StatusOr<Outcome> o = processor->Apply(info, &payload);
    absl::Status valid =
        o.ok() && *o == Outcome::kChanged ? type.current->schema.Validate(payload) : o.status();
    if (!valid.ok()) {
      item.outcome = "error";
      item.error = std::string(valid.message());
    } else if (*o == Outcome::kChanged) {
      item.outcome = "changed";
      item.after = payload.Serialize();
    } else {
      item.outcome = "unchanged";
    }
    out.push_back(std::move(item));
  }
  return out;
}

absl::StatusOr<JobRecord> JobRunner::Pause(uint64_t id) {
  return jobs_->Transition(id, JobState::kPaused);
}

absl::StatusOr<JobRecord> JobRunner::Resume(uint64_t id) {
  STRATA_ASSIGN_OR_RETURN(JobRecord job, jobs_->Transition(id, JobState::kRunning));
  Start(id, /*resumed=*/true);  // no-op when its threads run here already
  return job;
}

absl::StatusOr<JobRecord> JobRunner::Cancel(uint64_t id) {
  return jobs_->Transition(id, JobState::kCancelled);
}

void JobRunner::Start(uint64_t id, bool resumed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_.load()) return;
  if (auto it = running_.find(id); it != running_.end()) {
    if (!it->second->finished.load()) return;
    // Its threads ended (the job finished here): start afresh (a dead-letter retry).
    if (it->second->thread.joinable()) it->second->thread.join();
    running_.erase(it);
    resumed = true;
  }
  auto run = std::make_unique<Running>();
  run->id = id;
  run->env.resumed = resumed;
  Running* raw = run.get();
  running_[id] = std::move(run);
  raw->thread = std::thread([this, raw] {
    Run(raw);
    raw->finished.store(true);
  });
}

void JobRunner::Run(Running* run) {
  // Named for profiles (it would keep the name of the thread that started it: an HTTP
  // thread's). Niced by --reprocess-nice only (docs/assets.md, "Jobs beside the online load");
  // the workers started below inherit it.
  ThreadPool::NameCurrentThread("strata-reproc");
  if (options_.worker_nice > 0) ThreadPool::LowerCurrentThreadPriority(options_.worker_nice);
  absl::StatusOr<JobRecord> job = jobs_->Get(run->id);
  if (!job.ok()) {
    STRATA_LOG_WARN("reprocess: cannot read job", "job", run->id, "error", job.status().ToString());
    return;
  }
  if (IsFinal(job->state)) return;
  auto fail = [&](const absl::Status& s) {
    STRATA_LOG_WARN("reprocess: job failed", "job", run->id, "error", s.ToString());
    (void)jobs_->Transition(run->id, JobState::kFailed, std::string(s.message()));
    if (run->processor != nullptr) run->processor->Ended(run->env);
  };
  run->spec = job->spec;
  absl::StatusOr<std::unique_ptr<Processor>> processor =
      MakeProcessor(run->spec.processor, LookupFor(assets_, run->spec.type));
  if (!processor.ok()) return fail(processor.status());
  run->processor = std::move(*processor);
  run->env.job_id = run->id;
  run->env.type = run->spec.type;
  run->env.job_created_at = job->created_at;
  run->env.assets = assets_;
  run->env.export_dir = options_.export_dir;
  if (absl::Status begun = run->processor->Begin(run->env); !begun.ok()) return fail(begun);
  absl::Status topic =
      queue_->CreateTopic(store::TopicOptions{TopicFor(run->id), run->spec.concurrency});
  if (!topic.ok()) return fail(topic);
  if (!job->planned) {
    absl::Status planned = Plan(run, *job);
    if (!planned.ok()) return fail(planned);
    if (stopping_.load()) return;
  }
  if (job->state == JobState::kPlanning) {
    // FailedPrecondition: cancelled meanwhile; the workers see it and stop.
    (void)jobs_->Transition(run->id, JobState::kRunning);
  }
  if (run->env.resumed) {
    // Workers of an earlier run here may have polled messages they never committed (they
    // stopped on seeing the job final): deliver from the committed offsets again.
    if (absl::Status s = queue_->Rewind(GroupFor(run->id), TopicFor(run->id)); !s.ok()) {
      return fail(s);
    }
  }
  std::vector<std::thread> workers;
  for (int p = 0; p < run->spec.concurrency; ++p) {
    workers.emplace_back([this, run, p] {
      ThreadPool::NameCurrentThread("strata-reproc");
      Work(run, p);
    });
  }
  for (std::thread& w : workers) w.join();
  if (absl::StatusOr<JobRecord> now = jobs_->Get(run->id); now.ok() && IsFinal(now->state)) {
    run->processor->Ended(run->env);
  }
}

absl::Status JobRunner::Plan(Running* run, JobRecord job) {
  assets::ListQuery q;
  q.limit = options_.plan_page;
  q.since = job.spec.since;
  q.until = job.spec.until;
  q.where = job.spec.where;
  q.cursor = job.plan_cursor;
  q.ids_only = true;  // planning publishes ids: a listing without `where` reads no rows
  const std::string topic = TopicFor(run->id);
  for (;;) {
    if (stopping_.load()) return absl::OkStatus();  // resumed by the next Open
    STRATA_ASSIGN_OR_RETURN(JobRecord now, jobs_->Get(run->id));
    if (IsFinal(now.state)) return absl::OkStatus();
    STRATA_ASSIGN_OR_RETURN(assets::AssetPage page, assets_->List(job.spec.type, q));
    std::vector<store::PublishMessage> messages;
    messages.reserve(page.ids.size());
    for (const assets::AssetId& asset_id : page.ids) {
      std::string id = asset_id.ToString();
      messages.push_back({id, id, store::kAnyPartition});
    }
    for (size_t at = 0; at < messages.size(); at += store::kMaxPublishBatch) {
      const size_t n = std::min(store::kMaxPublishBatch, messages.size() - at);
      STRATA_RETURN_IF_ERROR(
          queue_->Publish(topic, std::span<const store::PublishMessage>(&messages[at], n))
              .status());
    }
    const bool done = page.next_cursor.empty();
    STRATA_RETURN_IF_ERROR(
        jobs_->SavePlanProgress(run->id, page.next_cursor, messages.size(), done).status());
    if (done) return absl::OkStatus();
    q.cursor = std::move(page.next_cursor);
  }
}

void JobRunner::Pace(Running* run) {
  if (run->spec.rate <= 0) return;
  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(1.0 / run->spec.rate));
  std::chrono::steady_clock::time_point slot;
  {
    std::lock_guard<std::mutex> lock(run->pace_mu);
    slot = std::max(std::chrono::steady_clock::now(), run->next_slot);
    run->next_slot = slot + interval;
  }
  std::this_thread::sleep_until(slot);
}

namespace {
int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

bool JobRunner::YieldToStalls() {
  if (!options_.store_stalled) return true;
  const int64_t fresh_ns = options_.stall_check_interval_ms * 1'000'000;
  if (const int64_t at = unstalled_at_ns_.load(std::memory_order_relaxed);
      at != 0 && SteadyNowNs() - at < fresh_ns) {
    return !stopping_.load();
  }
  constexpr Millis kStep = 20;
  for (Millis waited = 0; waited < options_.stall_wait_max_ms; waited += kStep) {
    if (stopping_.load()) return false;
    if (!options_.store_stalled()) {
      unstalled_at_ns_.store(SteadyNowNs(), std::memory_order_relaxed);
      return true;
    }
    unstalled_at_ns_.store(0, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::milliseconds(kStep));
    stall_wait_ms_.fetch_add(kStep, std::memory_order_relaxed);
  }
  return !stopping_.load();
}

bool JobRunner::PaceAdaptive(const Running* run, size_t n) {
  if (!throttle_ || !run->spec.adaptive || n == 0) return true;
  // Noted before and after the wait: a batch of 100 at the minimum rate waits 1 s.
  last_adaptive_work_ns_.store(SteadyNowNs());
  const bool ok = throttle_->Acquire(n);
  last_adaptive_work_ns_.store(SteadyNowNs());
  return ok;
}

void JobRunner::ControlLoop() {
  ThreadPool::NameCurrentThread("strata-reproc-ctl");
  const auto interval = std::chrono::milliseconds(options_.control_interval_ms);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(control_mu_);
      if (control_cv_.wait_for(lock, interval, [this] { return stopping_.load(); })) return;
    }
    // A job that waited for tokens or took some within the last two intervals is working;
    // otherwise the interval's latency is the online path's own (the idle baseline).
    const int64_t last = last_adaptive_work_ns_.load();
    const int64_t window_ns =
        2 * std::chrono::duration_cast<std::chrono::nanoseconds>(interval).count();
    const bool busy = last != 0 && SteadyNowNs() - last < window_ns;
    throttle_->Update(options_.load_probe(), busy);
  }
}

void JobRunner::Finish(Running* run) {
  std::lock_guard<std::mutex> lock(run->finish_mu);
  absl::StatusOr<JobRecord> now = jobs_->Get(run->id);
  if (!now.ok() || now->state != JobState::kRunning) return;  // another worker was first
  absl::Status finished = run->processor->Finish(run->env);
  if (!finished.ok()) {
    STRATA_LOG_WARN("reprocess: job failed", "job", run->id, "error", finished.ToString());
    (void)jobs_->Transition(run->id, JobState::kFailed, std::string(finished.message()));
    return;
  }
  (void)jobs_->Transition(run->id, JobState::kSucceeded);
}

void JobRunner::Backoff(int attempt, std::mt19937_64* random) {
  // Exponential, capped, with "equal jitter": half the delay fixed, half random, so retries
  // of many assets failing together (a webhook down) spread out.
  double delay = static_cast<double>(options_.retry_base_ms);
  for (int i = 1; i < attempt && delay < static_cast<double>(options_.retry_max_ms); ++i) {
    delay *= 2;
  }
  delay = std::min(delay, static_cast<double>(options_.retry_max_ms));
  std::uniform_real_distribution<double> half(0, delay / 2);
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>((delay / 2 + half(*random)) * 1000));
  // In slices, so that stopping the runner does not wait for a long backoff.
  while (!stopping_.load()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        until - now, std::chrono::milliseconds(options_.state_poll_ms)));
  }
}

absl::StatusOr<JobRecord> JobRunner::RetryDeadLetters(uint64_t id) {
  STRATA_ASSIGN_OR_RETURN(JobRecord job, jobs_->Get(id));
  if (job.state != JobState::kRunning && job.state != JobState::kPaused &&
      job.state != JobState::kSucceeded) {
    return absl::FailedPreconditionError("dead-letters: job " + std::to_string(id) + " is " +
                                         std::string(JobStateName(job.state)) +
                                         "; only a running, paused or succeeded job's dead "
                                         "letters can be retried");
  }
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<Processor> processor,
                          MakeProcessor(job.spec.processor, LookupFor(assets_, job.spec.type)));
  if (!processor->CanRetryDeadLetters()) {
    return absl::FailedPreconditionError(
        "dead-letters: this processor's jobs cannot take dead letters back (an export's file "
        "is written once; start a new job for these assets)");
  }
  // A succeeded job's workers stop within a state poll; wait for them, so that the run
  // started below is a fresh one (Start does nothing while they live).
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = running_.find(id);
    if (job.state == JobState::kSucceeded && it != running_.end() &&
        it->second->thread.joinable()) {
      std::thread old = std::move(it->second->thread);
      lock.unlock();
      old.join();
    }
  }
  // 1. The events go back on the job's topic (a crash after this leaves the dead letters
  // listed as well: a second retry does no harm, each asset is processed once in effect).
  const std::string topic = TopicFor(id);
  std::vector<std::pair<std::string, std::string>> letters;  // (asset id, stored value)
  std::string after;
  for (;;) {
    store::ScanOptions options;
    if (!after.empty()) options.start = after + std::string(1, '\0');
    options.limit = 1000;
    STRATA_ASSIGN_OR_RETURN(store::ScanPage page,
                            jobs_->table()->Scan(JobStore::DeadLetterPartition(id), options));
    std::vector<store::PublishMessage> messages;
    for (store::Row& r : page.rows) {
      messages.push_back({r.clustering, r.clustering, store::kAnyPartition});
      letters.emplace_back(r.clustering, std::move(r.value));
    }
    for (size_t at = 0; at < messages.size(); at += store::kMaxPublishBatch) {
      const size_t n = std::min(store::kMaxPublishBatch, messages.size() - at);
      STRATA_RETURN_IF_ERROR(
          queue_->Publish(topic, std::span<const store::PublishMessage>(&messages[at], n))
              .status());
    }
    if (page.rows.size() < 1000 || page.next_cursor.empty()) break;
    after = letters.back().first;
  }
  if (letters.empty()) return job;
  // 2. The counts and the state (a succeeded job runs again), then 3. each dead letter
  // removed unless a worker has meanwhile replaced it with a new failure.
  STRATA_ASSIGN_OR_RETURN(job, jobs_->Requeued(id, letters.size()));
  for (const auto& [asset, value] : letters) {
    store::WriteBatch batch;
    batch.Expect(asset, value);
    batch.Delete(asset);
    absl::Status s = jobs_->table()->Apply(JobStore::DeadLetterPartition(id), batch);
    if (!s.ok() && !absl::IsFailedPrecondition(s)) return s;  // replaced: kept
  }
  Start(id, /*resumed=*/true);  // no-op when its threads run here already
  return job;
}

void JobRunner::Work(Running* run, int partition) {
  const std::string topic = TopicFor(run->id);
  const std::string group = GroupFor(run->id);
  const auto state_every = std::chrono::milliseconds(options_.state_poll_ms);
  auto checked_at = std::chrono::steady_clock::now() - state_every;
  JobState state = JobState::kRunning;
  const bool rebuilds_index = run->processor->RebuildsIndex();
  const bool keep_row = run->processor->RecordsRows();
  // A pure processor without a rate limit takes each polled batch through one ProcessMany
  // (one read and one compare-and-set write per bucket instead of per asset); the events it
  // could not settle (a retryable error) go through the one-by-one path below.
  const bool batched = run->processor->Batchable() && !rebuilds_index && run->spec.rate <= 0;
  std::string last_id;  // the asset of the event being processed one by one
  auto apply = [&](const assets::AssetRow& row, assets::JsonValue* payload) -> absl::StatusOr<bool> {
    AssetInfo info{run->spec.type, last_id, row.version, row.schema_version, row.created_at,
                   row.updated_at};
    STRATA_ASSIGN_OR_RETURN(Outcome o, run->processor->Apply(info, payload));
    return o == Outcome::kChanged;
  };
  std::mt19937_64 jitter(options_.jitter_seed != 0 ? options_.jitter_seed + partition
                                                   : std::random_device{}());
  while (!stopping_.load()) {
    if (std::chrono::steady_clock::now() - checked_at >= state_every) {
      absl::StatusOr<JobRecord> job = jobs_->Get(run->id);
      if (job.ok()) state = job->state;
      checked_at = std::chrono::steady_clock::now();
    }
    if (IsFinal(state)) return;
    if (state != JobState::kRunning) {
      std::this_thread::sleep_for(state_every);
      continue;
    }
    store::PollRequest poll;
    poll.group = group;
    poll.topic = topic;
    poll.partitions = {partition};
    poll.max_messages = options_.poll_batch;
    poll.wait_ms = options_.poll_wait_ms;
    absl::StatusOr<std::vector<store::Message>> messages = queue_->Poll(poll);
    if (!messages.ok()) {
      STRATA_LOG_WARN("reprocess: poll failed", "job", run->id, "error",
                      messages.status().ToString());
      std::this_thread::sleep_for(state_every);
      continue;
    }
    if (messages->empty()) {
      // Done when every event of every partition is committed (planning finished before
      // the workers started). Several workers may see it; one transition wins.
      absl::StatusOr<std::vector<store::PartitionLag>> lag = queue_->Lag(group, topic);
      if (lag.ok() && std::all_of(lag->begin(), lag->end(),
                                  [](const store::PartitionLag& l) { return l.backlog == 0; })) {
        Finish(run);
        checked_at = std::chrono::steady_clock::now() - state_every;
      }
      continue;
    }
    JobCounts delta;
    auto count = [&delta](const assets::ProcessResult& r) {
      delta.conflicts_retried += static_cast<uint64_t>(r.conflicts);
      switch (r.kind) {
        case assets::ProcessResult::Kind::kChanged:
          ++delta.processed;
          ++delta.changed;
          break;
        case assets::ProcessResult::Kind::kUnchanged:
        case assets::ProcessResult::Kind::kGone:
          ++delta.processed;
          ++delta.unchanged;
          break;
        case assets::ProcessResult::Kind::kAlreadyDone:
          break;  // an earlier delivery took effect and was counted
      }
    };
    auto dead_letter = [&](const store::Message& m, const absl::Status& error, int attempts) {
      ++delta.dead_lettered;
      absl::Status dl = jobs_->AddDeadLetter(run->id, m.value, std::string(error.message()),
                                             attempts);
      if (!dl.ok()) {
        STRATA_LOG_WARN("reprocess: dead letter not written", "job", run->id, "error",
                        dl.ToString());
      }
    };
    // Processor, schema and size errors fail the same way every time.
    auto permanent = [](const absl::Status& s) {
      return absl::IsInvalidArgument(s) || absl::IsOutOfRange(s);
    };
    // The adaptive rate's tokens for the whole batch, before any of it is written; and no
    // batch into a store that is stalling writes (bounded wait).
    if (!PaceAdaptive(run, messages->size())) return;  // the runner stops: redelivered later
    if (!YieldToStalls()) return;
    std::vector<char> settled_in_batch;  // per message, when `batched`
    if (batched) {
      std::vector<std::string> ids;
      ids.reserve(messages->size());
      for (const store::Message& m : *messages) ids.push_back(m.value);
      auto fn = [&](size_t index, const assets::AssetRow& row,
                    assets::JsonValue* payload) -> absl::StatusOr<bool> {
        AssetInfo info{run->spec.type, ids[index], row.version, row.schema_version,
                       row.created_at, row.updated_at};
        STRATA_ASSIGN_OR_RETURN(Outcome o, run->processor->Apply(info, payload));
        return o == Outcome::kChanged;
      };
      assets::JobMark mark{run->id, clock_->NowMillis() + options_.mark_ttl_ms, keep_row};
      absl::StatusOr<assets::ProcessManyResult> many =
          assets_->ProcessMany(run->spec.type, ids, mark, fn);
      if (many.ok()) {
        settled_in_batch.assign(messages->size(), 0);
        delta.conflicts_retried += static_cast<uint64_t>(many->batch_conflicts);
        for (size_t j = 0; j < messages->size(); ++j) {
          const absl::StatusOr<assets::ProcessResult>& r = many->results[j];
          if (r.ok()) {
            count(*r);
            settled_in_batch[j] = 1;
          } else if (permanent(r.status())) {
            ++delta.failed;
            dead_letter((*messages)[j], r.status(), 1);
            settled_in_batch[j] = 1;
          }
        }
      }
    }
    // The offset after the last message handled. A cancel (any final state) noticed
    // mid-batch stops here: nothing more of the job is processed. A pause lets the batch
    // finish: the queue would not hand the rest of it out again on resume until its
    // redelivery timeout, and the job could be judged done before that.
    uint64_t next_offset = messages->front().offset;
    for (size_t j = 0; j < messages->size(); ++j) {
      const store::Message& m = (*messages)[j];
      if (!settled_in_batch.empty() && settled_in_batch[j]) {
        next_offset = m.offset + 1;
        continue;
      }
      if (std::chrono::steady_clock::now() - checked_at >= state_every) {
        absl::StatusOr<JobRecord> job = jobs_->Get(run->id);
        if (job.ok()) state = job->state;
        checked_at = std::chrono::steady_clock::now();
        if (IsFinal(state)) break;
      }
      Pace(run);
      last_id = m.value;
      bool settled = false;  // processed, or dead-lettered
      for (int attempt = 1; attempt <= run->spec.max_attempts; ++attempt) {
        assets::JobMark mark{run->id, clock_->NowMillis() + options_.mark_ttl_ms, keep_row};
        absl::StatusOr<assets::ProcessResult> r =
            assets_->ProcessOnce(run->spec.type, m.value, mark, apply, rebuilds_index);
        if (r.ok()) {
          count(*r);
          settled = true;
          break;
        }
        ++delta.failed;
        if (permanent(r.status()) || attempt == run->spec.max_attempts) {
          dead_letter(m, r.status(), attempt);
          settled = true;
          break;
        }
        Backoff(attempt, &jitter);
        if (stopping_.load()) break;
      }
      if (!settled) break;  // stopped in a backoff: the event is redelivered
      next_offset = m.offset + 1;
    }
    absl::Status counted = jobs_->AddCounts(run->id, delta).status();
    if (!counted.ok()) {
      STRATA_LOG_WARN("reprocess: counts not recorded", "job", run->id, "error",
                      counted.ToString());
    }
    if (next_offset == messages->front().offset) continue;  // stopped before the first
    absl::Status committed = queue_->Commit(group, topic, partition, next_offset);
    if (!committed.ok()) {
      STRATA_LOG_WARN("reprocess: commit failed (the batch will be redelivered)", "job", run->id,
                      "error", committed.ToString());
    }
  }
}

}  // namespace strata::reprocess
