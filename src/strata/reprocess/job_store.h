// Where reprocessing jobs are kept: one row per job in the table `reprocess_jobs`
// (partition "jobs", clustering be64(id) -> EncodeJobRecord) and a counter row (clustering
// "" -> varint next id); dead letters in partition "dead/<job id>". Every change is a
// compare-and-set on the job's row (WriteBatch::Expect), so several nodes may change jobs without
// losing a change: ids are unique, state moves only along CheckTransition, and counter additions
// are never lost.
//
// Thread safety: every method is thread-safe. The RowStore and Clock must outlive it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/reprocess/job.h"
#include "strata/store/row_store.h"

namespace strata::reprocess {

class JobStore {
 public:
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(store::RowStore* rows, Clock* clock);

  // Stores a new job (state planning) and returns it with its id (1, 2, 3, ...).
  absl::StatusOr<JobRecord> Create(JobSpec spec);
  // NotFound ("job: no job N") if there is none.
  absl::StatusOr<JobRecord> Get(uint64_t id);
  // Jobs newest first, at most `limit` (1..1000), with ids below `before` (0 = from the
  // newest).
  absl::StatusOr<std::vector<JobRecord>> List(size_t limit, uint64_t before = 0);
  // Moves the job to `to` (FailedPrecondition if CheckTransition refuses), recording
  // `error` when it fails.
  absl::StatusOr<JobRecord> Transition(uint64_t id, JobState to, std::string error = "");
  // Adds `delta` to the job's counters.
  absl::StatusOr<JobRecord> AddCounts(uint64_t id, const JobCounts& delta);
  // Records a published page of the selection: its cursor, `selected` more assets, and
  // whether it was the last page.
  absl::StatusOr<JobRecord> SavePlanProgress(uint64_t id, std::string cursor, uint64_t selected,
                                             bool done);

  // Records that `n` dead letters were put back on the job's queue: dead_lettered goes down
  // by n and dead_letters_retried up; a succeeded job is running again.
  absl::StatusOr<JobRecord> Requeued(uint64_t id, uint64_t n);
  static std::string DeadLetterPartition(uint64_t job_id) {
    return "dead/" + std::to_string(job_id);
  }

  // Dead letters: partition "dead/<job id>", clustering = the asset id, value = JSON
  // {"id", "reason", "attempts", "time"}. A second one for the same asset replaces it.
  absl::Status AddDeadLetter(uint64_t job_id, std::string_view asset_id, std::string_view reason,
                             int attempts);
  // As JSON objects, by asset id, at most `limit` (1..1000), after `after` ("" = first).
  absl::StatusOr<std::vector<std::string>> DeadLetters(uint64_t job_id, size_t limit,
                                                       std::string_view after = "");

  store::Table* table() const { return table_; }

 private:
  JobStore(store::Table* table, Clock* clock) : table_(table), clock_(clock) {}
  // Reads the job, applies `change` to it, and writes it under compare-and-set (retrying).
  absl::StatusOr<JobRecord> Change(uint64_t id,
                                   const std::function<absl::Status(JobRecord*)>& change);

  store::Table* const table_;
  Clock* const clock_;
};

}  // namespace strata::reprocess
