// The audit log: who did what to what, when, and how it ended -- for every admin action and
// every hard delete (docs/operations.md, "Audit log"). Records are rows of the row-store
// table `audit_log`, so they survive restarts and are shared by every node of a distributed
// deployment; each is also written to the server's log (msg=audit).
//
// Layout: partition = "d" + be32(UTC day number), clustering = ordered be64(time ms) +
// be32(this AuditLog's sequence number) + 4 random bytes (records of one millisecond keep
// their order on one node, and several nodes never collide), value: docs/operations.md,
// "Audit log". Each row expires `retention_ms` after its time (the row
// store's per-row expiry), which bounds the table.
//
// Thread safety: every method is thread-safe. The RowStore, Clock and MetricsRegistry must
// outlive it.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/auth/api_key.h"
#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/store/row_store.h"

namespace strata::auth {

struct AuditRecord {
  Millis time = 0;     // ms since the epoch; Append fills 0 with the clock's now
  std::string
      key;  // the key id, or "anonymous" (auth off), "scheduler", "collector", "offline-cli"
  std::string action;  // e.g. "member.erase", "admin.backup", "gc.run", "key.revoke"
  std::string target;  // what it acted on: a path, a key id, a run id
  // "ok", "denied" (the key lacked the scope) or "error".
  std::string result;
  int status = 0;      // the HTTP status answered, 0 outside HTTP
  std::string detail;  // error message, or extra facts ("dry_run=true"); may be ""
};

struct AuditLogOptions {
  // How long a record is kept, ms. Default 90 days.
  Millis retention_ms = Millis{90} * 86'400'000;
};

class AuditLog {
 public:
  // Opens (creating) the table. `metrics` may be null; `random` defaults to SystemRandom().
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(store::RowStore* rows, Clock* clock,
                                                        AuditLogOptions options = {},
                                                        MetricsRegistry* metrics = nullptr,
                                                        RandomSource random = nullptr);

  // Stores the record durably (against a crash of the process, like every acknowledged write)
  // and logs it. A failure is returned, logged as an error and counted
  // (strata_audit_write_errors_total); callers report it but do not undo the action.
  absl::Status Append(AuditRecord record);
  // The newest records first, at most `limit` (1..1000), within the retention.
  absl::StatusOr<std::vector<AuditRecord>> Recent(size_t limit);

  Millis retention_ms() const { return options_.retention_ms; }

 private:
  AuditLog(store::Table* table, Clock* clock, AuditLogOptions options, RandomSource random,
           Counter* written, Counter* errors)
      : table_(table),
        clock_(clock),
        options_(options),
        random_(std::move(random)),
        written_(written),
        errors_(errors) {}

  store::Table* const table_;
  Clock* const clock_;
  const AuditLogOptions options_;
  const RandomSource random_;
  Counter* const written_;  // may be null
  Counter* const errors_;   // may be null
  std::atomic<uint32_t> sequence_{0};
};

// The row value of a record (exposed for tests; docs/operations.md, "Audit log").
std::string EncodeAuditRecord(const AuditRecord& record);
absl::StatusOr<AuditRecord> DecodeAuditRecord(std::string_view value);

}  // namespace strata::auth
