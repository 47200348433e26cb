#include "strata/server/admin_jobs.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "strata/base/log.h"

namespace strata::server {

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
  }
  return "unknown";
}

AdminJobs::AdminJobs(Clock* clock, Options options)
    : clock_(clock),
      options_(options),
      started_at_(clock->NowMillis()),
      pool_(std::make_unique<ThreadPool>(std::max(options.threads, 1), options.nice,
                                         "strata-jobs")) {}

AdminJobs::~AdminJobs() { pool_.reset(); }

absl::StatusOr<AdminJobs::Started> AdminJobs::Start(std::string kind, Work work,
                                                    IfActive if_active) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
      const AdminJob& j = (*it)->job;
      if (j.kind != kind || j.done()) continue;
      if (if_active == IfActive::kJoin) return Started{j, true};
      return absl::FailedPreconditionError(
          absl::StrCat(kind, ": job ", j.id, " is already ", std::string(JobStateName(j.state)),
                       " (GET /v1/admin/jobs/", j.id, " shows it)"));
    }
    entry = std::make_shared<Entry>();
    entry->job.id = absl::StrCat("j", started_at_, "-", next_seq_++);
    entry->job.kind = std::move(kind);
    entry->job.created_at = clock_->NowMillis();
    jobs_.push_back(entry);
  }
  STRATA_LOG_INFO("admin job queued", "job", entry->job.id, "kind", entry->job.kind);
  AdminJob copy = entry->job;
  (void)pool_->Submit([this, entry, work = std::move(work)] { Run(entry, work); });
  return Started{std::move(copy), false};
}

void AdminJobs::Run(const std::shared_ptr<Entry>& entry, const Work& work) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    entry->job.state = JobState::kRunning;
    entry->job.started_at = clock_->NowMillis();
  }
  ReportProgress progress = [this, entry](const JobProgress& p) {
    std::lock_guard<std::mutex> lock(mu_);
    entry->job.progress = p;
  };
  absl::StatusOr<std::string> result = work(progress);
  std::vector<std::function<void(const AdminJob&)>> waiters;
  AdminJob done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    AdminJob& j = entry->job;
    j.finished_at = clock_->NowMillis();
    if (result.ok()) {
      j.state = JobState::kSucceeded;
      j.result_json = std::move(*result);
    } else {
      j.state = JobState::kFailed;
      j.error = result.status();
    }
    bool counted = false;
    for (auto& [k, n] : finished_by_kind_) {
      if (k == j.kind) {
        ++n;
        counted = true;
      }
    }
    if (!counted) finished_by_kind_.emplace_back(j.kind, 1);
    waiters.swap(entry->waiters);
    done = j;
    finished_order_.push_back(entry);
    TrimLocked();
  }
  if (done.state == JobState::kSucceeded) {
    STRATA_LOG_INFO("admin job succeeded", "job", done.id, "kind", done.kind, "ms",
                    done.finished_at - done.started_at);
  } else {
    STRATA_LOG_WARN("admin job failed", "job", done.id, "kind", done.kind, "error",
                    done.error.ToString());
  }
  for (auto& w : waiters) w(done);
}

void AdminJobs::TrimLocked() {
  // The earliest finished go first (not the earliest created: a long job that just finished
  // stays visible to whoever follows it).
  while (finished_order_.size() > options_.history) {
    const std::shared_ptr<Entry> oldest = finished_order_.front();
    finished_order_.pop_front();
    jobs_.erase(std::find(jobs_.begin(), jobs_.end(), oldest));
  }
}

std::shared_ptr<AdminJobs::Entry> AdminJobs::FindLocked(std::string_view id) const {
  for (const auto& e : jobs_) {
    if (e->job.id == id) return e;
  }
  return nullptr;
}

absl::Status AdminJobs::NoSuchJob(std::string_view id) const {
  return absl::NotFoundError(
      absl::StrCat("id: no job ", std::string(id),
                   " (jobs are kept in memory since the server started: the active ones "
                   "and the last ",
                   options_.history, " finished)"));
}

absl::StatusOr<AdminJob> AdminJobs::Get(std::string_view id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Entry> e = FindLocked(id);
  if (e == nullptr) return NoSuchJob(id);
  return e->job;
}

std::vector<AdminJob> AdminJobs::List(std::string_view kind, size_t limit) const {
  std::vector<AdminJob> active, finished;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
    const AdminJob& j = (*it)->job;
    if (!kind.empty() && j.kind != kind) continue;
    (j.done() ? finished : active).push_back(j);
  }
  active.insert(active.end(), std::make_move_iterator(finished.begin()),
                std::make_move_iterator(finished.end()));
  if (active.size() > limit) active.resize(limit);
  return active;
}

std::optional<AdminJob> AdminJobs::Latest(std::string_view kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
    if ((*it)->job.kind == kind) return (*it)->job;
  }
  return std::nullopt;
}

absl::Status AdminJobs::WhenDone(std::string_view id, std::function<void(const AdminJob&)> done) {
  AdminJob finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<Entry> e = FindLocked(id);
    if (e == nullptr) return NoSuchJob(id);
    if (!e->job.done()) {
      e->waiters.push_back(std::move(done));
      return absl::OkStatus();
    }
    finished = e->job;
  }
  done(finished);
  return absl::OkStatus();
}

uint64_t AdminJobs::finished(std::string_view kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, n] : finished_by_kind_) {
    if (k == kind) return n;
  }
  return 0;
}

}  // namespace strata::server
