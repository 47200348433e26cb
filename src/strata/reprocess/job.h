// The reprocessing job model (issue 15, "Reprocessing"): a job's spec as `POST
// /v1/reprocess/jobs` takes it, its states and the transitions between them, its counters,
// and the stored job record. JobRunner (job_runner.h) runs jobs.
//
// Spec (every field but `type` and `processor` optional):
//   {"type": "video",
//    "select": {"since": ms, "until": ms, "where": ["/format=4k", ...]},
//    "processor": {"kind": "set", ...}         (processor.h)
//    "dry_run": {"sample": N},                  1..1000 assets, before/after, nothing written
//    "rate": per-second limit (> 0, default unlimited = 0),
//    "adaptive": true|false (default false; true: the job also slows down while the online
//                asset requests slow down or the store falls behind; JobRunner, "Adaptive
//                rate"),
//    "concurrency": workers, 1..64 (default 2),
//    "max_attempts": tries per asset before its dead letter, 1..100 (default 5)}
// Errors are InvalidArgument naming the field ("select/since: ...", "processor/path: ...").
//
// States: planning -> running <-> paused; planning|running|paused -> cancelled;
// running -> succeeded | failed. cancelled, succeeded and failed are final, except that
// retrying a succeeded job's dead letters runs it again (JobStore::Requeued).
//
// Thread safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/assets/json.h"
#include "strata/base/clock.h"

namespace strata::reprocess {

struct JobSpec {
  std::string type;
  std::optional<Millis> since;
  std::optional<Millis> until;
  std::vector<std::string> where;
  assets::JsonValue processor;  // validated by MakeProcessor
  std::optional<uint32_t> dry_run_sample;
  double rate = 0;  // assets/s, 0 = unlimited
  bool adaptive = false;
  int concurrency = 2;
  int max_attempts = 5;

  std::string ToJson() const;
};

// Parses and checks a job body (including the processor spec and the where syntax; whether
// the pointers are indexed is the asset service's to say when the job is planned).
absl::StatusOr<JobSpec> ParseJobSpec(std::string_view body);

enum class JobState { kPlanning, kRunning, kPaused, kCancelled, kSucceeded, kFailed };
std::string_view JobStateName(JobState state);
std::optional<JobState> JobStateFromName(std::string_view name);
bool IsFinal(JobState state);
// OK if a job may go from `from` to `to`; FailedPrecondition naming both otherwise (a
// resume of a cancelled job, ...).
absl::Status CheckTransition(JobState from, JobState to);

struct JobCounts {
  uint64_t selected = 0;
  uint64_t processed = 0;
  uint64_t changed = 0;
  uint64_t unchanged = 0;
  uint64_t conflicts_retried = 0;  // a production write came between read and write
  uint64_t failed = 0;             // attempts that failed (retried up to max_attempts)
  uint64_t dead_lettered = 0;        // assets in the dead letters now
  uint64_t dead_letters_retried = 0;  // dead letters put back on the queue (all retries)
};

struct JobRecord {
  uint64_t id = 0;
  JobSpec spec;
  JobState state = JobState::kPlanning;
  JobCounts counts;
  Millis created_at = 0;
  Millis updated_at = 0;
  std::string error;  // why it failed, if it did
  // Planning progress: the selection's page cursor after the last page published, and
  // whether every page was.
  std::string plan_cursor;
  bool planned = false;
};

// The stored form: format byte 0x01 + JSON (a few rows per job, rarely written: JSON keeps
// it readable with the CLI and the dashboard).
std::string EncodeJobRecord(const JobRecord& job);
absl::StatusOr<JobRecord> DecodeJobRecord(std::string_view in);

}  // namespace strata::reprocess
