#include "strata/gc/collector.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "strata/base/coding.h"
#include "strata/base/crash_point.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"
#include "strata/gc/export.h"
#include "strata/media/checksums.h"

namespace strata::gc {
namespace {

constexpr int kPublishBatch = 1000;
// The day totals' reason for blobs collected by the orphan scan.
constexpr char kOrphanBlobReason[] = "orphan_blob";
constexpr int kProcessAttempts = 3;

std::string RunClustering(uint64_t id) {
  std::string out;
  coding::PutFixed64BE(&out, id);
  return out;
}

// Minutes after midnight of "HH:MM", or -1.
int ParseDailyAt(std::string_view s) {
  int h = 0, m = 0;
  if (s.size() != 5 || s[2] != ':' || std::sscanf(std::string(s).c_str(), "%2d:%2d", &h, &m) != 2 ||
      h < 0 || h > 23 || m < 0 || m > 59) {
    return -1;
  }
  return h * 60 + m;
}

absl::StatusOr<Totals> GetTotals(store::Table* t, std::string_view partition,
                                 std::string_view clustering) {
  absl::StatusOr<std::string> v = t->Get(partition, clustering);
  if (absl::IsNotFound(v.status())) return Totals{};
  if (!v.ok()) return v.status();
  return DecodeTotals(*v);
}

}  // namespace

Collector::Collector(store::RowStore* rows, store::Queue* queue, media::MediaService* media,
                     LifecycleTask* task, Clock* clock, CollectorOptions options)
    : rows_(rows),
      queue_(queue),
      media_(media),
      task_(task),
      clock_(clock),
      options_(std::move(options)),
      throttle_(options_.throttle) {}

absl::StatusOr<std::unique_ptr<Collector>> Collector::Open(
    store::RowStore* rows, store::Queue* queue, media::MediaService* media, LifecycleTask* task,
    Clock* clock, MetricsRegistry* metrics, CollectorOptions options) {
  if (options.topic_partitions < 1 || options.topic_partitions > 256) {
    return absl::InvalidArgumentError("topic_partitions: must be 1..256");
  }
  if (options.max_workers == 0) {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    options.max_workers = std::max(options.min_workers, cores / 2);
  }
  if (options.min_workers < 1 || options.max_workers < options.min_workers ||
      options.max_workers > 64) {
    return absl::InvalidArgumentError("workers: need 1 <= min_workers <= max_workers <= 64");
  }
  if (options.sweep_batch < 1 || options.sweep_batch > 10000) {
    return absl::InvalidArgumentError("sweep_batch: must be 1..10000");
  }
  if (options.backlog_per_worker < 1) {
    return absl::InvalidArgumentError("backlog_per_worker: must be at least 1");
  }
  if (options.scan_ranges < 1 || options.scan_ranges > 64) {
    return absl::InvalidArgumentError("scan_ranges: must be 1..64");
  }
  if (!options.daily_at.empty() && ParseDailyAt(options.daily_at) < 0) {
    return absl::InvalidArgumentError("daily_at: must be HH:MM (UTC)");
  }
  if (options.control_interval_ms < 10) {
    return absl::InvalidArgumentError("control_interval_ms: must be at least 10");
  }
  if (options.throttle.min_rate <= 0 || options.throttle.max_rate < options.throttle.min_rate) {
    return absl::InvalidArgumentError("throttle: need 0 < min_rate <= max_rate");
  }
  std::unique_ptr<Collector> c(new Collector(rows, queue, media, task, clock, std::move(options)));
  STRATA_ASSIGN_OR_RETURN(c->runs_,
                          rows->OpenTable({"lifecycle_runs", store::TableProfile::kLive}));
  STRATA_ASSIGN_OR_RETURN(c->audit_,
                          rows->OpenTable({"lifecycle_audit", store::TableProfile::kLive}));
  store::TopicOptions topic;
  topic.name = c->topic();
  topic.partitions = c->options_.topic_partitions;
  topic.retention_ms = 0;
  STRATA_RETURN_IF_ERROR(queue->CreateTopic(topic));
  store::ScanOptions last;
  last.reverse = true;
  last.limit = 1;
  STRATA_ASSIGN_OR_RETURN(store::ScanPage page, c->runs_->Scan(task->name(), last));
  if (!page.rows.empty()) {
    STRATA_ASSIGN_OR_RETURN(RunRecord r, DecodeRunRecord(page.rows[0].value));
    c->next_run_id_ = r.id + 1;
  }
  for (int p = 0; p < c->options_.topic_partitions; ++p) {
    c->partition_mu_.push_back(std::make_unique<std::mutex>());
  }
  const std::string labels = "task=\"" + std::string(task->name()) + "\"";
  c->processed_objects_ = metrics->GetCounter(
      "strata_lifecycle_objects_total",
      "Objects hard-deleted (task gc) or archived (task archive), by task", labels);
  c->processed_bytes_ = metrics->GetCounter("strata_lifecycle_bytes_total",
                                            "Bytes of the objects counted in "
                                            "strata_lifecycle_objects_total",
                                            labels);
  c->skipped_total_ = metrics->GetCounter(
      "strata_lifecycle_skipped_total",
      "Work items no longer eligible when re-checked (restored, re-written)", labels);
  c->errors_total_ =
      metrics->GetCounter("strata_lifecycle_errors_total", "Work items that failed", labels);
  c->runs_total_ = metrics->GetCounter("strata_lifecycle_runs_total", "Runs started", labels);
  if (task->ScansOrphanBlobs()) {
    c->orphan_blobs_total_ = metrics->GetCounter(
        "strata_lifecycle_orphan_blobs_total",
        "Blobs that no row named, older than the orphan age, deleted by the orphan scan", labels);
    c->orphan_blob_bytes_total_ = metrics->GetCounter(
        "strata_lifecycle_orphan_blob_bytes_total",
        "Bytes of the blobs counted in strata_lifecycle_orphan_blobs_total", labels);
    c->blobs_listed_total_ = metrics->GetCounter("strata_lifecycle_blobs_listed_total",
                                                 "Blobs listed by orphan scans", labels);
  }
  Collector* self = c.get();
  metrics->AddGauge("strata_lifecycle_backlog", "Work items published but not yet processed",
                    [self, labels] {
                      return std::vector<std::pair<std::string, double>>{
                          {labels, static_cast<double>(self->Backlog())}};
                    });
  metrics->AddGauge(
      "strata_lifecycle_throttle_rate", "Current sweep rate limit, items/s", [self, labels] {
        return std::vector<std::pair<std::string, double>>{{labels, self->ThrottleRate()}};
      });
  metrics->AddGauge(
      "strata_lifecycle_throttle_decisions",
      "Throttle steps since start that cut the rate (latency, store load) or held it after a "
      "latency cut",
      [self, labels] {
        const AimdThrottle& t = self->throttle_;
        return std::vector<std::pair<std::string, double>>{
            {labels + ",decision=\"latency_cut\"", static_cast<double>(t.latency_cuts())},
            {labels + ",decision=\"load_cut\"", static_cast<double>(t.load_cuts())},
            {labels + ",decision=\"hold\"", static_cast<double>(t.latency_holds())}};
      });
  metrics->AddGauge("strata_lifecycle_throttle_baseline_p99_seconds",
                    "Idle p99 of each online signal the throttle compares against (server: 0 = object GET, 1 = object PUT)",
                    [self, labels] {
                      const AimdThrottle& t = self->throttle_;
                      std::vector<std::pair<std::string, double>> v;
                      for (size_t i = 0; i < 2; ++i) {
                        v.emplace_back(labels + ",signal=\"" + std::to_string(i) + "\"",
                                       t.baseline_p99_ms(i) / 1000.0);
                      }
                      return v;
                    });
  metrics->AddGauge("strata_lifecycle_workers", "Sweep workers currently active", [self, labels] {
    return std::vector<std::pair<std::string, double>>{
        {labels, static_cast<double>(self->Workers())}};
  });
  return c;
}

Collector::~Collector() { Stop(); }

absl::Status Collector::Start() {
  STRATA_ASSIGN_OR_RETURN(std::vector<RunRecord> latest, ListRuns(1));
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return absl::OkStatus();
  // Messages a previous process polled but did not commit are delivered again.
  STRATA_RETURN_IF_ERROR(queue_->Rewind(group(), topic()));
  if (!latest.empty()) {
    RunRecord run = latest[0];
    if (run.state == RunState::kMarking) {
      run.state = RunState::kFailed;
      run.finished_at = clock_->NowMillis();
      run.error = "interrupted while marking (restart); nothing was published";
      STRATA_RETURN_IF_ERROR(SaveRun(run));
    } else if (run.state == RunState::kPublishing || run.state == RunState::kSweeping) {
      if (run.state == RunState::kPublishing) {
        run.error =
            "interrupted while publishing (restart): the items not published are "
            "found again by the next run";
      }
      run.state = RunState::kSweeping;
      if (run.orphan_scan == OrphanScanState::kRunning) {
        run.orphan_scan = OrphanScanState::kInterrupted;  // the next run scans again
      }
      STRATA_RETURN_IF_ERROR(SaveRun(run));
      active_ = run;
      sweeping_ = true;
      STRATA_LOG_INFO("lifecycle run resumed", "task", task_->name(), "run", run.id);
    }
  }
  started_ = true;
  desired_workers_ = options_.min_workers;
  for (int i = 0; i < options_.max_workers; ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
  control_thread_ = std::thread([this] { ControlLoop(); });
  return absl::OkStatus();
}

void Collector::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  throttle_.Cancel();
  if (run_thread_.joinable()) run_thread_.join();
  if (control_thread_.joinable()) control_thread_.join();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

absl::Status Collector::SaveRun(const RunRecord& run) {
  return runs_->Put(task_->name(), RunClustering(run.id), EncodeRunRecord(run));
}

absl::StatusOr<RunRecord> Collector::StartRun(const RunRequest& request) {
  const Millis now = clock_->NowMillis();
  if (request.as_of && *request.as_of > now && !request.dry_run) {
    return absl::InvalidArgumentError(
        "as_of: a time in the future is only allowed with dry_run (a forecast)");
  }
  if (request.as_of && *request.as_of < 0) {
    return absl::InvalidArgumentError("as_of: must be >= 0");
  }
  std::thread previous;
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("collector: stopping");
  if (active_) {
    return absl::FailedPreconditionError("run: run " + std::to_string(active_->id) + " is still " +
                                         std::string(RunStateName(active_->state)));
  }
  RunRecord run;
  run.id = next_run_id_++;
  run.dry_run = request.dry_run;
  run.as_of = request.as_of.value_or(now);
  run.started_at = now;
  run.day = DayOf(now);
  STRATA_RETURN_IF_ERROR(SaveRun(run));
  runs_total_->Inc();
  active_ = run;
  skipped_ = 0;
  errors_ = 0;
  // The previous run thread is finishing, but maybe not yet done: the control loop may have
  // finished its sweep while it scanned for orphans, and its last step (FinishSweepIfDrained)
  // takes mu_. It only ever acts on a sweeping run once drained -- which this new one is
  // not while it marks -- so it is joined outside the lock.
  previous = std::move(run_thread_);
  run_thread_ = std::thread([this, run] { RunThread(run); });
  lock.unlock();
  if (previous.joinable()) previous.join();
  return run;
}

absl::StatusOr<RunRecord> Collector::RunAndWait(const RunRequest& request, int64_t timeout_ms) {
  STRATA_ASSIGN_OR_RETURN(RunRecord run, StartRun(request));
  return WaitRun(run.id, timeout_ms);
}

absl::StatusOr<RunRecord> Collector::WaitRun(uint64_t id, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(RunRecord run, GetRun(id));
    if (run.state == RunState::kDone || run.state == RunState::kFailed ||
        std::chrono::steady_clock::now() >= deadline) {
      return run;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

void Collector::RunThread(RunRecord run) {
  ThreadPool::NameCurrentThread("strata-lc-mark");
  ThreadPool::LowerCurrentThreadPriority(options_.worker_nice);
  const bool scan = ScansOrphanBlobs();
  ReferencedBlobs referenced;
  absl::Status s;
  {
    std::vector<WorkItem> work;
    s = Mark(&run, &work, scan ? &referenced : nullptr);
    if (s.ok() && !run.dry_run) {
      run.state = RunState::kPublishing;
      s = SaveRun(run);
      if (s.ok()) s = Publish(&run, work);
    }
  }
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    run.state = RunState::kFailed;
    run.error = s.ToString();
    run.finished_at = clock_->NowMillis();
    STRATA_LOG_WARN("lifecycle run failed", "task", task_->name(), "run", run.id, "error",
                    run.error);
    absl::Status saved = SaveRun(run);
    if (!saved.ok()) STRATA_LOG_WARN("lifecycle run not saved", "error", saved.ToString());
    active_.reset();
    sweeping_ = false;
    cv_.notify_all();
    return;
  }
  {
    // A real run sweeps from here (workers may have started during the publish); this
    // thread scans for orphan blobs meanwhile. The run is done once both have finished
    // (FinishSweepIfDrained). A dry run's forecast includes the scan's counts.
    std::lock_guard<std::mutex> lock(mu_);
    if (!run.dry_run) run.state = RunState::kSweeping;
    if (scan) run.orphan_scan = OrphanScanState::kRunning;
    orphan_scanning_ = scan;
    active_ = run;
    sweeping_ = !run.dry_run;
    absl::Status saved = SaveRun(run);
    if (!saved.ok()) STRATA_LOG_WARN("lifecycle run not saved", "error", saved.ToString());
  }
  cv_.notify_all();
  if (scan) ScanOrphans(&referenced);
  if (!run.dry_run) {
    FinishSweepIfDrained();  // at once when nothing was published
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  active_->state = RunState::kDone;
  active_->finished_at = clock_->NowMillis();
  absl::Status saved = SaveRun(*active_);
  if (!saved.ok()) STRATA_LOG_WARN("lifecycle run not saved", "error", saved.ToString());
  active_.reset();
  cv_.notify_all();
}

void Collector::ScanOrphans(const ReferencedBlobs* referenced) {
  RunRecord run;
  {
    std::lock_guard<std::mutex> lock(mu_);
    run = *active_;
  }
  OrphanScanOptions options;
  options.min_age_ms = task_->OrphanAgeMs();
  options.as_of = run.as_of;
  options.dry_run = run.dry_run;
  OrphanScanHooks hooks;
  hooks.acquire = [this] { return throttle_.Acquire(); };
  hooks.collected = [this, &run](const CollectedOrphan& c) {
    orphan_blobs_total_->Inc();
    orphan_blob_bytes_total_->Inc(c.size);
    // The audit of this hard delete: one log line per blob, the day's totals (reason
    // "orphan_blob", so GET /v1/gc/stats and the dashboard count the bytes freed), and the
    // server's audit log (options_.orphan_audit).
    STRATA_LOG_WARN("gc: collected an orphan blob (no row named it)", "task", task_->name(), "run",
                    run.id, "blob", c.blob, "bucket", c.name.bucket, "key", c.name.key,
                    "generation", c.name.generation, "bytes", c.size, "age_ms", c.age_ms,
                    "modified_ms", c.modified_ms);
    absl::Status s = RecordOrphanBlob(run.day, c);
    if (!s.ok()) STRATA_LOG_WARN("gc: orphan blob not counted", "error", s.ToString());
    if (options_.orphan_audit) options_.orphan_audit(run.id, c);
  };
  uint64_t listed_before = 0;
  hooks.progress = [this, &listed_before](const OrphanScanCounts& c) {
    blobs_listed_total_->Inc(c.listed - listed_before);
    listed_before = c.listed;
    std::lock_guard<std::mutex> lock(mu_);
    CopyOrphanCounts(c, &*active_);
    absl::Status s = SaveRun(*active_);
    if (!s.ok()) STRATA_LOG_WARN("lifecycle run not saved", "error", s.ToString());
  };
  absl::StatusOr<OrphanScanCounts> counts = ScanOrphanBlobs(media_, referenced, options, hooks);
  std::lock_guard<std::mutex> lock(mu_);
  RunRecord& r = *active_;
  if (counts.ok()) {
    blobs_listed_total_->Inc(counts->listed - listed_before);
    CopyOrphanCounts(*counts, &r);
    r.orphan_scan = OrphanScanState::kDone;
    r.errors += counts->errors;
    STRATA_LOG_INFO("gc: orphan scan done", "task", task_->name(), "run", r.id, "listed",
                    counts->listed, "found", counts->found, "collected", counts->collected, "bytes",
                    counts->collected_bytes, "young", counts->young, "errors", counts->errors,
                    "dry_run", r.dry_run);
    if (counts->foreign > 0) {
      STRATA_LOG_WARN("gc: blobs named unlike media objects were left alone", "task", task_->name(),
                      "run", r.id, "blobs", counts->foreign);
    }
  } else if (absl::IsCancelled(counts.status())) {
    r.orphan_scan = OrphanScanState::kInterrupted;
  } else {
    r.orphan_scan = OrphanScanState::kFailed;
    r.error = "orphan scan: " + counts.status().ToString();
    STRATA_LOG_WARN("gc: orphan scan failed (the next run scans again)", "task", task_->name(),
                    "run", r.id, "error", r.error);
  }
  orphan_scanning_ = false;
  absl::Status saved = SaveRun(r);
  if (!saved.ok()) STRATA_LOG_WARN("lifecycle run not saved", "error", saved.ToString());
}

void Collector::CopyOrphanCounts(const OrphanScanCounts& c, RunRecord* r) {
  r->blobs_listed = c.listed;
  r->orphan_blobs = c.found;
  r->orphan_blob_bytes = c.found_bytes;
  r->orphan_blobs_collected = c.collected;
  r->orphan_blob_bytes_collected = c.collected_bytes;
  r->orphan_blobs_young = c.young;
}

absl::Status Collector::RecordOrphanBlob(const std::string& day, const CollectedOrphan& c) {
  const std::string partition = AuditPartition(task_->name(), day);
  const std::string key = DayTotalsClustering(c.name.bucket, kOrphanBlobReason);
  std::lock_guard<std::mutex> lock(record_mu_);
  STRATA_ASSIGN_OR_RETURN(Totals day_totals, GetTotals(audit_, partition, key));
  day_totals.objects += 1;
  day_totals.bytes += c.size;
  return audit_->Put(partition, key, EncodeTotals(day_totals));
}

bool Collector::ScansOrphanBlobs() const {
  return options_.scan_orphan_blobs && task_->ScansOrphanBlobs() && task_->OrphanAgeMs() > 0;
}

absl::Status Collector::Mark(RunRecord* run, std::vector<WorkItem>* work,
                             ReferencedBlobs* referenced) {
  // A consistent snapshot where the backend has one (RocksDB, memory). Without one (RADOS:
  // Unimplemented) the mark reads the latest rows: the export is then not a point-in-time
  // view and the work list may name an object that changed during the scan. That is safe
  // because a sweep worker re-checks each item's eligibility on the live row before every
  // delete step (docs/gc.md, "Mark consistency per backend").
  std::unique_ptr<store::Snapshot> snapshot;
  if (absl::StatusOr<std::unique_ptr<store::Snapshot>> taken = rows_->NewSnapshot(); taken.ok()) {
    snapshot = std::move(*taken);
  } else if (absl::IsUnimplemented(taken.status())) {
    STRATA_LOG_INFO("mark reads the latest rows: the row store has no snapshots", "task",
                    task_->name(), "run", run->id);
  } else {
    return taken.status();
  }
  const store::ReadOptions read{snapshot.get()};
  std::unique_ptr<Exporter> exporter;
  if (!options_.export_dir.empty()) {
    STRATA_ASSIGN_OR_RETURN(
        exporter, Exporter::Create(options_.export_dir, task_->name(), run->day, run->id));
    run->export_path = exporter->root();
  }
  // Buckets (small): exported for joins in the analytic table; eligibility uses the rows'
  // own ttl/grace (fixed when each object was written).
  STRATA_ASSIGN_OR_RETURN(std::vector<store::KeyRange> bucket_ranges,
                          media_->buckets_table()->SplitRanges(1));
  for (const store::KeyRange& range : bucket_ranges) {
    std::string cursor;
    do {
      STRATA_ASSIGN_OR_RETURN(
          store::TableScanPage page,
          media_->buckets_table()->ScanRange(range, store::kMaxPageRows, cursor, read));
      for (const store::TableRow& r : page.rows) {
        STRATA_ASSIGN_OR_RETURN(media::BucketRow b, media::DecodeBucketRow(r.value));
        if (exporter) exporter->Bucket(r.partition, b);
      }
      cursor = page.next_cursor;
    } while (!cursor.empty());
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<store::KeyRange> ranges,
                          media_->objects_table()->SplitRanges(options_.scan_ranges));
  struct RangeResult {
    absl::Status status;
    std::vector<WorkItem> work;
    uint64_t scanned = 0;
    ReferencedBlobs referenced;  // blobs the range's rows name (for the orphan scan)
  };
  const bool collect_referenced = referenced != nullptr;
  std::vector<RangeResult> results(ranges.size());
  std::vector<ExportPart*> parts(ranges.size(), nullptr);
  for (size_t i = 0; exporter && i < ranges.size(); ++i) parts[i] = exporter->Part(i);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ranges.size(); ++i) {
    threads.emplace_back([&, i] {
      ThreadPool::LowerCurrentThreadPriority(options_.worker_nice);
      RangeResult& out = results[i];
      ExportPart* part = parts[i];
      std::string cursor;
      do {
        absl::StatusOr<store::TableScanPage> page =
            media_->objects_table()->ScanRange(ranges[i], store::kMaxPageRows, cursor, read);
        if (!page.ok()) {
          out.status = page.status();
          return;
        }
        for (const store::TableRow& r : page->rows) {
          if (r.clustering.empty()) continue;
          WorkItem item;
          item.run_id = run->id;
          item.day = run->day;
          item.bucket = r.partition;
          if (r.clustering[0] == 'o') {
            absl::StatusOr<media::ObjectRow> row = media::DecodeObjectRow(r.value);
            if (!row.ok()) {
              out.status = row.status();
              return;
            }
            ++out.scanned;
            if (collect_referenced) out.referenced.Add(row->blob);
            item.key = r.clustering.substr(1);
            std::string_view reason = task_->Eligible(*row, run->as_of);
            if (part) part->Object(item.bucket, item.key, *row);
            if (reason.empty()) continue;
            item.kind = WorkItem::Kind::kObject;
            item.reason = std::string(reason);
            item.generation = row->generation;
            item.blob = row->blob;
            item.size = row->size;
            item.parts = row->parts;
            item.storage_class = row->storage_class;
          } else if (r.clustering[0] == 'g') {
            // "g" key 0x00 u64be(generation)
            if (!media::ParseGenerationClustering(r.clustering, &item.key, &item.generation)) {
              continue;
            }
            absl::StatusOr<media::SupersededRow> row = media::DecodeSupersededRow(r.value);
            if (!row.ok()) {
              out.status = row.status();
              return;
            }
            if (collect_referenced) out.referenced.Add(row->blob);
            if (part) part->Superseded(item.bucket, item.key, item.generation, *row);
            if (!task_->WantsSuperseded()) continue;
            item.kind = WorkItem::Kind::kSuperseded;
            item.reason = "superseded";
            item.blob = row->blob;
            item.size = row->size;
            item.parts = row->parts;
            item.storage_class = row->storage_class;
          } else if (r.clustering[0] == 'u') {
            // An upload row: abandoned once older than the task's orphan age.
            const Millis orphan_age = task_->OrphanAgeMs();
            if (orphan_age <= 0 && !collect_referenced) continue;
            if (!media::ParseGenerationClustering(r.clustering, &item.key, &item.generation)) {
              continue;
            }
            absl::StatusOr<media::UploadRow> row = media::DecodeUploadRow(r.value);
            if (!row.ok()) {
              out.status = row.status();
              return;
            }
            if (collect_referenced) out.referenced.Add(row->blob);
            if (orphan_age <= 0) continue;
            if (row->started_at > run->as_of - orphan_age) continue;  // may still commit
            item.kind = WorkItem::Kind::kOrphan;
            item.reason = "orphan";
            item.blob = row->blob;
            item.storage_class = row->storage_class;
            // Rare: the size comes from the blob store (0 if no bytes were committed).
            absl::StatusOr<blob::BlobInfo> info = media_->blobs()->Stat(row->blob);
            if (info.ok()) {
              item.size = info->size;
              item.parts = info->parts;
            }
          } else {
            continue;  // index entries: derived from the object rows
          }
          if (part) part->Work(item, run->as_of);
          out.work.push_back(std::move(item));
        }
        cursor = page->next_cursor;
      } while (!cursor.empty());
    });
  }
  for (std::thread& t : threads) t.join();
  snapshot.reset();
  for (RangeResult& r : results) {
    STRATA_RETURN_IF_ERROR(r.status);
    run->scanned += r.scanned;
    if (collect_referenced) referenced->Merge(std::move(r.referenced));
    for (WorkItem& item : r.work) {
      run->eligible_bytes += item.size;
      if (item.kind == WorkItem::Kind::kSuperseded) {
        ++run->superseded;
      } else if (item.kind == WorkItem::Kind::kOrphan) {
        ++run->orphans;
      } else if (item.reason == "deleted") {
        ++run->deleted_marked;
      } else {
        ++run->expired;
      }
      work->push_back(std::move(item));
    }
  }
  run->eligible = work->size();
  if (collect_referenced) referenced->Seal();
  if (exporter) {
    STRATA_RETURN_IF_ERROR(exporter->Finish());
    absl::StatusOr<size_t> pruned =
        PruneExports(options_.export_dir, task_->name(), options_.export_keep_runs);
    if (!pruned.ok()) {
      STRATA_LOG_WARN("gc: pruning old exports failed", "task", task_->name(), "error",
                      pruned.status().ToString());
    } else if (*pruned > 0) {
      STRATA_LOG_INFO("gc: deleted the export files of old runs", "task", task_->name(),
                      "files", *pruned, "kept_runs", options_.export_keep_runs);
    }
  }
  run->marked_at = clock_->NowMillis();
  STRATA_LOG_INFO("lifecycle mark done", "task", task_->name(), "run", run->id, "scanned",
                  run->scanned, "eligible", run->eligible, "as_of", run->as_of);
  return absl::OkStatus();
}

absl::Status Collector::Publish(RunRecord* run, const std::vector<WorkItem>& work) {
  std::vector<store::PublishMessage> batch;
  for (size_t i = 0; i < work.size(); ++i) {
    store::PublishMessage m;
    m.key = work[i].bucket + "/" + work[i].key;
    m.value = EncodeWorkItem(work[i]);
    batch.push_back(std::move(m));
    if (batch.size() == kPublishBatch || i + 1 == work.size()) {
      STRATA_RETURN_IF_ERROR(queue_->Publish(topic(), batch).status());
      run->published += batch.size();
      batch.clear();
      STRATA_RETURN_IF_ERROR(SaveRun(*run));
      STRATA_CRASH_POINT("lifecycle.publish.after_batch");
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_ = *run;
        // Workers may start on what is published while the rest is still being published.
        sweeping_ = true;
      }
    }
  }
  return absl::OkStatus();
}

void Collector::WorkerLoop(int index) {
  ThreadPool::NameCurrentThread("strata-lc-sweep");
  ThreadPool::LowerCurrentThreadPriority(options_.worker_nice);
  const int partitions = options_.topic_partitions;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;
      if (index >= desired_workers_.load()) {
        cv_.wait_for(lock, std::chrono::milliseconds(200));
        continue;
      }
    }
    bool any = false;
    for (int i = 0; i < partitions; ++i) {
      const int p = (index + i) % partitions;
      std::unique_lock<std::mutex> owner(*partition_mu_[p], std::try_to_lock);
      if (!owner.owns_lock()) continue;
      store::PollRequest poll;
      poll.group = group();
      poll.topic = topic();
      poll.partitions = {p};
      poll.max_messages = options_.sweep_batch;
      absl::StatusOr<std::vector<store::Message>> messages = queue_->Poll(poll);
      if (!messages.ok()) {
        STRATA_LOG_WARN("lifecycle poll failed", "error", messages.status().ToString());
        continue;
      }
      // One commit per polled batch (a crash redelivers at most the batch: every step is
      // idempotent and the audit counts once).
      size_t admitted = 0;
      for (; admitted < messages->size(); ++admitted) {
        if (!throttle_.Acquire()) break;  // stopping: the rest is redelivered on restart
      }
      ProcessMessages(std::span<const store::Message>(messages->data(), admitted));
      if (admitted > 0) {
        const uint64_t done = (*messages)[admitted - 1].offset + 1;
        STRATA_CRASH_POINT("lifecycle.sweep.before_commit");
        absl::Status c = queue_->Commit(group(), topic(), p, done);
        if (!c.ok()) STRATA_LOG_WARN("lifecycle commit failed", "error", c.ToString());
      }
      any = any || !messages->empty();
    }
    if (!any) {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;
      cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
  }
}

void Collector::ProcessMessages(std::span<const store::Message> messages) {
  std::vector<WorkItem> items;
  items.reserve(messages.size());
  for (const store::Message& m : messages) {
    absl::StatusOr<WorkItem> item = DecodeWorkItem(m.value);
    if (!item.ok()) {
      ++errors_;
      errors_total_->Inc();
      STRATA_LOG_WARN("lifecycle: undecodable work item", "error", item.status().ToString());
      continue;
    }
    items.push_back(std::move(*item));
  }
  if (items.empty()) return;
  const Millis now = clock_->NowMillis();
  std::vector<ProcessContext> ctxs(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const WorkItem* item = &items[i];
    ctxs[i].now = now;
    ctxs[i].record = [this, item, now] { return Record(*item, now); };
    ctxs[i].recorded = [this, item] { return Recorded(*item); };
  }
  BatchContext batch;
  if (options_.batch_records) {
    batch.record = [this, &items, now](std::span<const size_t> indices) {
      return RecordMany(items, indices, now);
    };
  }
  std::vector<absl::StatusOr<Outcome>> outcomes = task_->ProcessBatch(items, ctxs, batch);
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StatusOr<Outcome>& outcome = outcomes[i];
    // A failed item is retried alone (every step is idempotent), with a growing pause.
    for (int attempt = 1; !outcome.ok() && attempt < kProcessAttempts; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20 << attempt));
      outcome = task_->Process(items[i], ctxs[i]);
    }
    if (!outcome.ok()) {
      // The item stays eligible: the next run finds it again.
      ++errors_;
      errors_total_->Inc();
      STRATA_LOG_WARN("lifecycle item failed", "task", task_->name(), "bucket", items[i].bucket,
                      "key", items[i].key, "error", outcome.status().ToString());
    } else if (*outcome == Outcome::kSkipped) {
      ++skipped_;
      skipped_total_->Inc();
    }
  }
}

absl::StatusOr<bool> Collector::Recorded(const WorkItem& item) {
  absl::StatusOr<std::string> v =
      audit_->Get(AuditPartition(task_->name(), item.day),
                  AuditClustering(item.bucket, item.key, item.generation));
  if (absl::IsNotFound(v.status())) return false;
  if (!v.ok()) return v.status();
  return true;
}

absl::Status Collector::Record(const WorkItem& item, Millis now) {
  const std::string partition = AuditPartition(task_->name(), item.day);
  const std::string entry = AuditClustering(item.bucket, item.key, item.generation);
  std::lock_guard<std::mutex> lock(record_mu_);
  absl::StatusOr<std::string> existing = audit_->Get(partition, entry);
  if (existing.ok()) return absl::OkStatus();  // a redelivery: counted already
  if (!absl::IsNotFound(existing.status())) return existing.status();
  const std::string day_key = DayTotalsClustering(item.bucket, item.reason);
  const std::string run_key = RunTotalsClustering(item.run_id);
  STRATA_ASSIGN_OR_RETURN(Totals day, GetTotals(audit_, partition, day_key));
  STRATA_ASSIGN_OR_RETURN(Totals run, GetTotals(audit_, partition, run_key));
  day.objects += 1;
  day.bytes += item.size;
  run.objects += 1;
  run.bytes += item.size;
  store::WriteBatch batch;
  batch.Put(entry, EncodeAuditEntry({item.size, item.reason, now, item.run_id}));
  batch.Put(day_key, EncodeTotals(day));
  batch.Put(run_key, EncodeTotals(run));
  STRATA_RETURN_IF_ERROR(audit_->Apply(partition, batch));
  processed_objects_->Inc();
  processed_bytes_->Inc(item.size);
  STRATA_CRASH_POINT("lifecycle.sweep.after_record");
  return absl::OkStatus();
}

std::vector<absl::Status> Collector::RecordMany(std::span<const WorkItem> items,
                                                std::span<const size_t> indices, Millis now) {
  std::vector<absl::Status> out(indices.size());
  // By audit partition (task, day): one read of every row involved and one write each.
  std::map<std::string, std::vector<size_t>> by_partition;  // -> positions in `indices`
  for (size_t j = 0; j < indices.size(); ++j) {
    by_partition[AuditPartition(task_->name(), items[indices[j]].day)].push_back(j);
  }
  bool wrote = false;
  std::lock_guard<std::mutex> lock(record_mu_);
  for (const auto& [partition, positions] : by_partition) {
    // Rows read: each item's entry, then each distinct day and run totals row.
    std::vector<std::string> entries;
    std::map<std::string, Totals> totals;  // clustering -> value, filled below
    for (size_t j : positions) {
      const WorkItem& item = items[indices[j]];
      entries.push_back(AuditClustering(item.bucket, item.key, item.generation));
      totals.emplace(DayTotalsClustering(item.bucket, item.reason), Totals{});
      totals.emplace(RunTotalsClustering(item.run_id), Totals{});
    }
    std::vector<store::RowKey> keys;
    for (const std::string& e : entries) keys.push_back({partition, e});
    for (const auto& [clustering, t] : totals) keys.push_back({partition, clustering});
    std::vector<absl::StatusOr<std::string>> read = audit_->MultiGet(keys);
    absl::Status failed;
    for (const absl::StatusOr<std::string>& r : read) {
      if (!r.ok() && !absl::IsNotFound(r.status())) failed = r.status();
    }
    size_t k = entries.size();
    for (auto& [clustering, t] : totals) {
      const absl::StatusOr<std::string>& r = read[k++];
      if (!failed.ok() || !r.ok()) continue;
      absl::StatusOr<Totals> decoded = DecodeTotals(*r);
      if (decoded.ok()) {
        t = *decoded;
      } else {
        failed = decoded.status();
      }
    }
    if (!failed.ok()) {
      for (size_t j : positions) out[j] = failed;
      continue;
    }
    // New decisions only: an entry that exists is a redelivery, counted already (also an
    // item twice in one batch counts once).
    store::WriteBatch batch;
    std::set<std::string_view> fresh;
    uint64_t objects = 0, bytes = 0;
    for (size_t p = 0; p < positions.size(); ++p) {
      if (read[p].ok() || !fresh.insert(entries[p]).second) continue;
      const WorkItem& item = items[indices[positions[p]]];
      for (const std::string& key :
           {DayTotalsClustering(item.bucket, item.reason), RunTotalsClustering(item.run_id)}) {
        Totals& t = totals[key];
        t.objects += 1;
        t.bytes += item.size;
      }
      batch.Put(entries[p], EncodeAuditEntry({item.size, item.reason, now, item.run_id}));
      objects += 1;
      bytes += item.size;
    }
    if (batch.empty()) continue;
    for (const auto& [clustering, t] : totals) batch.Put(clustering, EncodeTotals(t));
    absl::Status s = audit_->Apply(partition, batch);
    if (!s.ok()) {
      for (size_t j : positions) out[j] = s;
      continue;
    }
    processed_objects_->Inc(objects);
    processed_bytes_->Inc(bytes);
    wrote = true;
  }
  if (wrote) STRATA_CRASH_POINT("lifecycle.sweep.after_record");
  return out;
}

uint64_t Collector::Backlog() {
  absl::StatusOr<std::vector<store::PartitionLag>> lag = queue_->Lag(group(), topic());
  if (!lag.ok()) return 0;
  uint64_t total = 0;
  for (const store::PartitionLag& l : *lag) total += l.backlog;
  return total;
}

void Collector::ControlLoop() {
  ThreadPool::NameCurrentThread("strata-lc-ctl");
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(options_.control_interval_ms),
                       [this] { return stopping_; })) {
        return;
      }
    }
    ControlStep();
  }
}

void Collector::ControlStep() {
  const uint64_t backlog = Backlog();
  const bool busy = sweeping_.load() || orphan_scanning_.load() || backlog > 0;
  LoadSample sample;
  if (options_.load_probe) sample = options_.load_probe();
  throttle_.Update(sample, busy);
  const uint64_t extra = backlog / options_.backlog_per_worker;
  desired_workers_ = static_cast<int>(
      std::min<uint64_t>(options_.max_workers, options_.min_workers + (busy ? extra : 0)));
  cv_.notify_all();
  FinishSweepIfDrained();
  MaybeStartScheduled();
}

void Collector::FinishSweepIfDrained() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!active_ || active_->state != RunState::kSweeping || !sweeping_) return;
  RunRecord& run = *active_;
  run.skipped += skipped_.exchange(0);
  run.errors += errors_.exchange(0);
  absl::StatusOr<Totals> totals =
      GetTotals(audit_, AuditPartition(task_->name(), run.day), RunTotalsClustering(run.id));
  if (totals.ok()) {
    run.processed = totals->objects;
    run.processed_bytes = totals->bytes;
  }
  const bool drained = Backlog() == 0 && !orphan_scanning_;
  if (drained) {
    run.state = RunState::kDone;
    run.finished_at = clock_->NowMillis();
  }
  absl::Status s = SaveRun(run);
  if (!s.ok()) STRATA_LOG_WARN("lifecycle run not saved", "error", s.ToString());
  if (drained) {
    STRATA_LOG_INFO("lifecycle run done", "task", task_->name(), "run", run.id, "processed",
                    run.processed, "bytes", run.processed_bytes, "skipped", run.skipped, "errors",
                    run.errors);
    active_.reset();
    sweeping_ = false;
    cv_.notify_all();
  }
}

void Collector::MaybeStartScheduled() {
  if (options_.daily_at.empty()) return;
  const Millis now = clock_->NowMillis();
  const std::string day = DayOf(now);
  absl::StatusOr<Millis> start = DayStart(day);
  if (!start.ok()) return;
  const Millis due = *start + static_cast<Millis>(ParseDailyAt(options_.daily_at)) * 60'000;
  if (now < due) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (last_scheduled_day_ == day) return;
    last_scheduled_day_ = day;
  }
  // After a restart: a run (not a dry run) started since today's due time counts.
  absl::StatusOr<std::vector<RunRecord>> recent = ListRuns(20);
  if (recent.ok()) {
    for (const RunRecord& r : *recent) {
      if (!r.dry_run && r.started_at >= due) return;
    }
  }
  absl::StatusOr<RunRecord> run = StartRun({});
  if (run.ok()) {
    STRATA_LOG_INFO("lifecycle scheduled run started", "task", task_->name(), "run", run->id);
  } else {
    STRATA_LOG_WARN("lifecycle scheduled run not started", "task", task_->name(), "error",
                    run.status().ToString());
  }
  if (options_.on_scheduled_run) options_.on_scheduled_run(run);
}

absl::StatusOr<RunRecord> Collector::GetRun(uint64_t id) {
  absl::StatusOr<std::string> v = runs_->Get(task_->name(), RunClustering(id));
  if (absl::IsNotFound(v.status())) {
    return absl::NotFoundError("id: no " + std::string(task_->name()) + " run " +
                               std::to_string(id));
  }
  if (!v.ok()) return v.status();
  return DecodeRunRecord(*v);
}

absl::StatusOr<std::vector<RunRecord>> Collector::ListRuns(size_t limit) {
  store::ScanOptions scan;
  scan.reverse = true;
  scan.limit = std::clamp<size_t>(limit, 1, store::kMaxPageRows);
  STRATA_ASSIGN_OR_RETURN(store::ScanPage page, runs_->Scan(task_->name(), scan));
  std::vector<RunRecord> out;
  for (const store::Row& r : page.rows) {
    STRATA_ASSIGN_OR_RETURN(RunRecord run, DecodeRunRecord(r.value));
    out.push_back(std::move(run));
  }
  return out;
}

absl::StatusOr<std::vector<DayTotals>> Collector::Stats(int days) {
  if (days < 1 || days > 366) return absl::InvalidArgumentError("days: must be 1..366");
  const Millis now = clock_->NowMillis();
  std::vector<DayTotals> out;
  for (int i = days - 1; i >= 0; --i) {
    DayTotals d;
    d.day = DayOf(now - static_cast<Millis>(i) * 86'400'000);
    store::ScanOptions scan;
    scan.start = "t";
    scan.end = "u";
    const std::string partition = AuditPartition(task_->name(), d.day);
    do {
      STRATA_ASSIGN_OR_RETURN(store::ScanPage page, audit_->Scan(partition, scan));
      for (const store::Row& r : page.rows) {
        STRATA_ASSIGN_OR_RETURN(Totals t, DecodeTotals(r.value));
        const size_t sep = r.clustering.find('\0');
        if (sep == std::string::npos) continue;
        d.objects += t.objects;
        d.bytes += t.bytes;
        d.by_bucket_reason.push_back(
            {r.clustering.substr(1, sep - 1), r.clustering.substr(sep + 1), t.objects, t.bytes});
      }
      scan.cursor = page.next_cursor;
    } while (!scan.cursor.empty());
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace strata::gc
