#include "strata/reprocess/job_store.h"

#include <algorithm>

#include "strata/assets/json.h"
#include "strata/base/coding.h"
#include "strata/base/status.h"

namespace strata::reprocess {
namespace {

constexpr char kPartition[] = "jobs";
constexpr int kMaxAttempts = 32;

std::string JobKey(uint64_t id) {
  std::string k;
  coding::PutFixed64BE(&k, id);
  return k;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(store::RowStore* rows, Clock* clock) {
  STRATA_ASSIGN_OR_RETURN(store::Table * table,
                          rows->OpenTable({"reprocess_jobs", store::TableProfile::kLive}));
  return std::unique_ptr<JobStore>(new JobStore(table, clock));
}

absl::StatusOr<JobRecord> JobStore::Create(JobSpec spec) {
  JobRecord job;
  job.spec = std::move(spec);
  job.state = JobState::kPlanning;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    absl::StatusOr<std::string> counter = table_->Get(kPartition, "");
    if (!counter.ok() && !absl::IsNotFound(counter.status())) return counter.status();
    uint64_t next = 1;
    if (counter.ok()) {
      std::string_view in(*counter);
      if (!coding::GetVarint64(&in, &next)) return absl::DataLossError("jobs: bad counter row");
    }
    job.id = next;
    job.created_at = job.updated_at = clock_->NowMillis();
    std::string bumped;
    coding::PutVarint64(&bumped, next + 1);
    store::WriteBatch batch;
    batch.Expect("", counter.ok() ? std::optional<std::string>(*counter) : std::nullopt);
    batch.Put("", bumped);
    batch.Put(JobKey(job.id), EncodeJobRecord(job));
    absl::Status s = table_->Apply(kPartition, batch);
    if (absl::IsFailedPrecondition(s)) continue;  // another node took the id
    STRATA_RETURN_IF_ERROR(s);
    return job;
  }
  return absl::AbortedError("job: too many concurrent creations, try again");
}

absl::StatusOr<JobRecord> JobStore::Get(uint64_t id) {
  absl::StatusOr<std::string> raw = table_->Get(kPartition, JobKey(id));
  if (absl::IsNotFound(raw.status())) {
    return absl::NotFoundError("job: no job " + std::to_string(id));
  }
  if (!raw.ok()) return raw.status();
  return DecodeJobRecord(*raw);
}

absl::StatusOr<std::vector<JobRecord>> JobStore::List(size_t limit, uint64_t before) {
  if (limit < 1 || limit > 1000) return absl::InvalidArgumentError("limit: must be 1..1000");
  store::ScanOptions options;
  options.start = JobKey(0);
  options.end = before == 0 ? std::string() : JobKey(before);
  options.reverse = true;
  options.limit = limit;
  STRATA_ASSIGN_OR_RETURN(store::ScanPage page, table_->Scan(kPartition, options));
  std::vector<JobRecord> out;
  for (const store::Row& r : page.rows) {
    STRATA_ASSIGN_OR_RETURN(JobRecord job, DecodeJobRecord(r.value));
    out.push_back(std::move(job));
  }
  return out;
}

absl::StatusOr<JobRecord> JobStore::Change(uint64_t id,
                                           const std::function<absl::Status(JobRecord*)>& change) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    absl::StatusOr<std::string> raw = table_->Get(kPartition, JobKey(id));
    if (absl::IsNotFound(raw.status())) {
      return absl::NotFoundError("job: no job " + std::to_string(id));
    }
    if (!raw.ok()) return raw.status();
    STRATA_ASSIGN_OR_RETURN(JobRecord job, DecodeJobRecord(*raw));
    STRATA_RETURN_IF_ERROR(change(&job));
    job.updated_at = std::max(job.updated_at, clock_->NowMillis());
    store::WriteBatch batch;
    batch.Expect(JobKey(id), *raw);
    batch.Put(JobKey(id), EncodeJobRecord(job));
    absl::Status s = table_->Apply(kPartition, batch);
    if (absl::IsFailedPrecondition(s)) continue;
    STRATA_RETURN_IF_ERROR(s);
    return job;
  }
  return absl::AbortedError("job: too many concurrent changes, try again");
}

absl::StatusOr<JobRecord> JobStore::Transition(uint64_t id, JobState to, std::string error) {
  return Change(id, [&](JobRecord* job) -> absl::Status {
    STRATA_RETURN_IF_ERROR(CheckTransition(job->state, to));
    job->state = to;
    if (!error.empty()) job->error = error;
    return absl::OkStatus();
  });
}

absl::StatusOr<JobRecord> JobStore::AddCounts(uint64_t id, const JobCounts& d) {
  return Change(id, [&](JobRecord* job) -> absl::Status {
    JobCounts& c = job->counts;
    c.selected += d.selected;
    c.processed += d.processed;
    c.changed += d.changed;
    c.unchanged += d.unchanged;
    c.conflicts_retried += d.conflicts_retried;
    c.failed += d.failed;
    c.dead_lettered += d.dead_lettered;
    c.dead_letters_retried += d.dead_letters_retried;
    return absl::OkStatus();
  });
}

absl::StatusOr<JobRecord> JobStore::Requeued(uint64_t id, uint64_t n) {
  return Change(id, [&](JobRecord* job) -> absl::Status {
    if (job->state != JobState::kRunning && job->state != JobState::kPaused &&
        job->state != JobState::kSucceeded) {
      return absl::FailedPreconditionError("dead-letters: job " + std::to_string(id) + " is " +
                                           std::string(JobStateName(job->state)));
    }
    if (job->state == JobState::kSucceeded) job->state = JobState::kRunning;
    job->counts.dead_lettered -= std::min(n, job->counts.dead_lettered);
    job->counts.dead_letters_retried += n;
    return absl::OkStatus();
  });
}

absl::StatusOr<JobRecord> JobStore::SavePlanProgress(uint64_t id, std::string cursor,
                                                     uint64_t selected, bool done) {
  return Change(id, [&](JobRecord* job) -> absl::Status {
    job->plan_cursor = cursor;
    job->counts.selected += selected;
    job->planned = done;
    return absl::OkStatus();
  });
}

absl::Status JobStore::AddDeadLetter(uint64_t job_id, std::string_view asset_id,
                                     std::string_view reason, int attempts) {
  std::string value = "{\"id\":";
  assets::AppendJsonString(&value, asset_id);
  value += ",\"reason\":";
  assets::AppendJsonString(&value, reason);
  value += ",\"attempts\":" + std::to_string(attempts) +
           ",\"time\":" + std::to_string(clock_->NowMillis()) + "}";
  return table_->Put("dead/" + std::to_string(job_id), asset_id, value);
}

absl::StatusOr<std::vector<std::string>> JobStore::DeadLetters(uint64_t job_id, size_t limit,
                                                               std::string_view after) {
  if (limit < 1 || limit > 1000) return absl::InvalidArgumentError("limit: must be 1..1000");
  store::ScanOptions options;
  if (!after.empty()) {
    options.start = std::string(after);
    options.start.push_back('\0');
  }
  options.limit = limit;
  STRATA_ASSIGN_OR_RETURN(store::ScanPage page,
                          table_->Scan("dead/" + std::to_string(job_id), options));
  std::vector<std::string> out;
  for (store::Row& r : page.rows) out.push_back(std::move(r.value));
  return out;
}

}  // namespace strata::reprocess
