// Background jobs for long admin work (a full compaction, the viewing table report): each
// runs on the registry's own threads, never on an HTTP io thread, and is visible by id with
// its state, progress and result (GET /v1/admin/jobs/{id}, docs/api.md "Admin jobs").
//
// Jobs live in memory only: a restart forgets them (and stops none: the pool's destructor
// waits for running and queued jobs). Ids carry the registry's start time, so an id from
// before a restart is never reused; it answers NotFound. The last `history` finished jobs are
// kept (oldest dropped first); queued and running jobs are always kept.
//
// Thread-safe. The work functions run on the registry's threads; `clock` must outlive it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"
#include "strata/base/thread_pool.h"

namespace strata::server {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed };
// "queued", "running", "succeeded", "failed".
std::string_view JobStateName(JobState state);

// What a job reports while it runs: `done` of `total` units (`unit` names them: "tables").
// total == 0 = no progress known (a RocksDB manual compaction reports none).
struct JobProgress {
  uint64_t done = 0;
  uint64_t total = 0;
  std::string unit;
};

// A job as seen at one moment (a copy: it does not change under the caller).
struct AdminJob {
  std::string id;    // e.g. "j1765012345678-3": the registry's start (ms) and a sequence number
  std::string kind;  // "compact", "viewing_tables"
  JobState state = JobState::kQueued;
  Millis created_at = 0;
  Millis started_at = 0;   // 0 while queued
  Millis finished_at = 0;  // 0 until it finished
  JobProgress progress;
  std::string result_json;  // once succeeded: one JSON value (an object), what the work returned
  absl::Status error;       // once failed
  bool done() const { return state == JobState::kSucceeded || state == JobState::kFailed; }
};

class AdminJobs {
 public:
  struct Options {
    // Jobs that run at once; more wait in order. Default 2: a compaction does not hold up a
    // table report (and at most one of each kind runs: see IfActive).
    int threads = 2;
    // Finished jobs kept for GET /v1/admin/jobs, newest first. Default 100.
    size_t history = 100;
    // Nice increment of the job threads. Default 0 (a compaction's I/O, not its CPU, counts).
    int nice = 0;
  };

  // Hands the work its progress: set it as often as convenient (cheap, thread-safe).
  using ReportProgress = std::function<void(const JobProgress&)>;
  // The work of a job: a JSON value (its result) or an error.
  using Work = std::function<absl::StatusOr<std::string>(const ReportProgress&)>;

  // What Start does when a job of the same kind is queued or running.
  enum class IfActive {
    kRefuse,  // FailedPrecondition naming the active job (a second compaction is no use)
    kJoin,    // answer the active job instead of starting one (a report: same result)
  };

  struct Started {
    AdminJob job;
    bool joined = false;  // an active job was answered instead of a new one (kJoin)
  };

  AdminJobs(Clock* clock, Options options);
  ~AdminJobs();  // waits for running and queued jobs

  absl::StatusOr<Started> Start(std::string kind, Work work, IfActive if_active);

  // NotFound (naming the id) for an unknown id or one dropped from the history.
  absl::StatusOr<AdminJob> Get(std::string_view id) const;
  // Newest first: active jobs, then finished ones; of `kind` only when not empty; at most
  // `limit`.
  std::vector<AdminJob> List(std::string_view kind, size_t limit) const;
  // The newest job of `kind`, if any is known.
  std::optional<AdminJob> Latest(std::string_view kind) const;

  // Calls `done` with the finished job: at once (on the caller's thread) if it has finished,
  // else on the job's thread when it does. NotFound as Get.
  absl::Status WhenDone(std::string_view id, std::function<void(const AdminJob&)> done);

  // Finished jobs of `kind` since the registry started (history or not).
  uint64_t finished(std::string_view kind) const;

 private:
  struct Entry {
    AdminJob job;
    std::vector<std::function<void(const AdminJob&)>> waiters;
  };
  void Run(const std::shared_ptr<Entry>& entry, const Work& work);
  std::shared_ptr<Entry> FindLocked(std::string_view id) const;
  void TrimLocked();
  absl::Status NoSuchJob(std::string_view id) const;

  Clock* clock_;
  const Options options_;
  const Millis started_at_;
  mutable std::mutex mu_;
  uint64_t next_seq_ = 1;
  // Oldest first; active and finished mixed (trimmed of the oldest finished).
  std::deque<std::shared_ptr<Entry>> jobs_;
  // The finished ones of jobs_, in the order they finished (trimmed from the front).
  std::deque<std::shared_ptr<Entry>> finished_order_;
  std::vector<std::pair<std::string, uint64_t>> finished_by_kind_;
  // Last: destroyed first, so its threads are joined before the state they use goes.
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace strata::server
