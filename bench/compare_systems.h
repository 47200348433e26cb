// The systems `strata bench viewing --mode compare` measures (compare_bench.h), behind one
// interface, and the pre-generated workload they are given. Internal to the bench.
//
// A System owns its server process (child_process.h) and the request payloads built from the
// workload; Connections are its clients, one per bench thread. StrataSystem runs `strata
// serve` and talks HTTP; PostgresSystem runs initdb and postgres and talks libpq
// (pg_client.h).
//
// Thread safety: a System's methods are called from the bench's main thread (servers must be
// started from a thread that outlives them, child_process.h), except that Connections, each
// used by one thread, read its payloads concurrently during a phase; the counters
// (accepted, dropped, rejected) are atomic.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/compare_bench.h"
#include "bench/history_workload.h"
#include "bench/viewing_workload.h"

namespace strata::bench::compare {

// The workload, generated once before any server starts; every system gets the same.
struct Workload {
  Millis t0 = 0;  // wall time the generation started; phase 1 ends an hour before it
  std::vector<std::vector<ViewingEvent>> batches;  // phase 1's, then phase 2's (due order)
  size_t phase1_batches = 0;
  size_t phase2_batches = 0;
  uint64_t phase1_events = 0;
  uint64_t phase2_events = 0;
  std::vector<uint64_t> reads;   // phase 2's reads, in arrival order
  std::vector<uint64_t> warmup;  // warm-up reads, warmup_reads per read connection
  std::unique_ptr<HistoryOracle> oracle;
  HistoryWorkload::Counts counts;
  uint64_t busiest_events = 0;  // events of the busiest member
  uint64_t median_events = 0;   // events of the median member (all members)
  uint64_t active_members = 0;  // members with at least one event
};

// One client connection to a system, used by one thread at a time. Codes are HTTP-like:
// 200 = done; anything else an error (0 = transport failure).
class Connection {
 public:
  virtual ~Connection() = default;
  // Sends payload `batch` of the system's current payloads.
  virtual int Write(size_t batch) = 0;
  // Reads the newest plays of `member`; *rows = records returned.
  virtual int Read(uint64_t member, size_t* rows) = 0;
  // The same, parsed, for the oracle.
  virtual absl::Status NewestPlays(uint64_t member, std::vector<StoredPlay>* out) = 0;

  // What the last failed Write or Read answered.
  std::string last_error;
};

struct SizeFigures {
  uint64_t bytes = 0;
  uint64_t wal = 0;
};

class System {
 public:
  virtual ~System() = default;
  virtual std::string name() const = 0;
  // Builds the request payloads of every batch of `w` (before Start: untimed).
  virtual void BuildPayloads(const Workload& w, std::ostream& out) = 0;
  virtual void DropPayloads() = 0;
  // Starts the server in a fresh directory and waits until it answers.
  virtual absl::Status Start() = 0;
  // SIGKILL to the server's process tree (a crash).
  virtual void Crash() = 0;
  // Starts it again on the same directory after a crash; waits until it answers.
  virtual absl::Status Restart() = 0;
  // SIGTERM, then SIGKILL after a timeout.
  virtual absl::Status Stop() = 0;
  virtual pid_t pid() const = 0;
  virtual absl::StatusOr<std::unique_ptr<Connection>> Connect() = 0;
  // Disk bytes per the comparison's rules, and the WAL's part of them (or of what is not
  // counted, for PostgreSQL).
  virtual absl::StatusOr<SizeFigures> Size() = 0;
  // Distinct records the system holds, from the oracle's counts.
  virtual uint64_t Records(const HistoryOracle& oracle) const = 0;
  // The same, counted by the system (0 = not available).
  virtual uint64_t CountRecords() { return 0; }
  // Lines describing the configuration, once started.
  virtual std::vector<std::string> Settings() = 0;
  // How the newest-plays read is executed (after loading), or "".
  virtual std::string ReadPlan(uint64_t member) { return ""; }
  // Untimed preparation after the history load; a line saying what it did, or "".
  virtual std::string AfterLoad() { return ""; }
  // One line of the server's own counters that explain its behaviour (background work
  // pending, maintenance done), or "".
  virtual std::string Diagnostics() { return ""; }
  // The server's log file (its stdout and stderr), to show when something went wrong.
  virtual std::string log_path() const = 0;

  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> rejected{0};
};

// Strata: `<strata_binary> serve --data-dir <root>/strata --port P --log-level warn
// <strata_args...>`, output in <root>/strata.log.
std::unique_ptr<System> MakeStrataSystem(const CompareOptions& options, const std::string& root);
// PostgreSQL: initdb and postgres from options.pg_bin_dir (as options.pg_user when the bench
// runs as root), data in <root>/pg/data, output in <root>/postgres.log and <root>/initdb.log;
// the table of pg_client.h.
std::unique_ptr<System> MakePostgresSystem(const CompareOptions& options, const std::string& root);

}  // namespace strata::bench::compare
