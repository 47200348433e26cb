#include "strata/auth/audit_log.h"

#include <algorithm>
#include <array>

#include "strata/base/coding.h"
#include "strata/base/log.h"
#include "strata/base/status.h"

namespace strata::auth {
namespace {

constexpr uint8_t kRowVersion = 1;
constexpr Millis kDayMs = 86'400'000;
// Details (error messages) are cut here: a record stays small whatever a request carried.
constexpr size_t kMaxDetailBytes = 512;
constexpr size_t kMaxFieldBytes = 1024;

int64_t DayNumber(Millis t) { return t >= 0 ? t / kDayMs : (t - kDayMs + 1) / kDayMs; }

std::string Partition(int64_t day) {
  std::string p = "d";
  coding::PutFixed32BE(&p, static_cast<uint32_t>(day));
  return p;
}

std::string Cut(std::string s, size_t max) {
  if (s.size() > max) s.resize(max);
  return s;
}

}  // namespace

std::string EncodeAuditRecord(const AuditRecord& r) {
  std::string out;
  out.push_back(static_cast<char>(kRowVersion));
  coding::PutOrderedInt64(&out, r.time);
  coding::PutLengthPrefixed(&out, r.key);
  coding::PutLengthPrefixed(&out, r.action);
  coding::PutLengthPrefixed(&out, r.target);
  coding::PutLengthPrefixed(&out, r.result);
  coding::PutVarint64(&out, static_cast<uint64_t>(std::max(r.status, 0)));
  coding::PutLengthPrefixed(&out, r.detail);
  return out;
}

absl::StatusOr<AuditRecord> DecodeAuditRecord(std::string_view in) {
  const absl::Status bad = absl::DataLossError("audit: malformed record");
  if (in.empty()) return bad;
  if (static_cast<uint8_t>(in[0]) != kRowVersion) {
    return absl::DataLossError("audit: unknown record version " +
                               std::to_string(static_cast<uint8_t>(in[0])));
  }
  in.remove_prefix(1);
  AuditRecord r;
  std::string_view key, action, target, result, detail;
  uint64_t status = 0;
  if (!coding::GetOrderedInt64(&in, &r.time) || !coding::GetLengthPrefixed(&in, &key) ||
      !coding::GetLengthPrefixed(&in, &action) || !coding::GetLengthPrefixed(&in, &target) ||
      !coding::GetLengthPrefixed(&in, &result) || !coding::GetVarint64(&in, &status) ||
      status > 999 || !coding::GetLengthPrefixed(&in, &detail) || !in.empty()) {
    return bad;
  }
  r.key = std::string(key);
  r.action = std::string(action);
  r.target = std::string(target);
  r.result = std::string(result);
  r.status = static_cast<int>(status);
  r.detail = std::string(detail);
  return r;
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(store::RowStore* rows, Clock* clock,
                                                         AuditLogOptions options,
                                                         MetricsRegistry* metrics,
                                                         RandomSource random) {
  if (options.retention_ms < kDayMs) {
    return absl::InvalidArgumentError("audit_retention_days: must be at least 1");
  }
  STRATA_ASSIGN_OR_RETURN(store::Table * table,
                          rows->OpenTable({"audit_log", store::TableProfile::kLive}));
  if (!random) random = SystemRandom();
  Counter* written = nullptr;
  Counter* errors = nullptr;
  if (metrics != nullptr) {
    written = metrics->GetCounter("strata_audit_records_total",
                                  "Audit records written (admin actions and hard deletes)");
    errors = metrics->GetCounter(
        "strata_audit_write_errors_total",
        "Audit records that could not be stored (the action happened; see the log)");
  }
  return std::unique_ptr<AuditLog>(
      new AuditLog(table, clock, options, std::move(random), written, errors));
}

absl::Status AuditLog::Append(AuditRecord r) {
  if (r.time == 0) r.time = clock_->NowMillis();
  r.key = Cut(std::move(r.key), kMaxFieldBytes);
  r.action = Cut(std::move(r.action), kMaxFieldBytes);
  r.target = Cut(std::move(r.target), kMaxFieldBytes);
  r.detail = Cut(std::move(r.detail), kMaxDetailBytes);
  // The log line comes first: it is written even when the row store is what failed.
  STRATA_LOG_INFO("audit", "key", r.key, "action", r.action, "target", r.target, "result", r.result,
                  "status", r.status, "detail", r.detail, "time", r.time);
  std::array<uint8_t, 4> nonce;
  absl::Status s = random_(nonce);
  if (s.ok()) {
    std::string clustering;
    coding::PutOrderedInt64(&clustering, r.time);
    coding::PutFixed32BE(&clustering, sequence_.fetch_add(1));
    clustering.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
    s = table_->Put(Partition(DayNumber(r.time)), clustering, EncodeAuditRecord(r),
                    r.time + options_.retention_ms);
  }
  if (!s.ok()) {
    if (errors_ != nullptr) errors_->Inc();
    STRATA_LOG_ERROR("audit record not stored", "key", r.key, "action", r.action, "target",
                     r.target, "error", s.ToString());
    return s;
  }
  if (written_ != nullptr) written_->Inc();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AuditRecord>> AuditLog::Recent(size_t limit) {
  if (limit < 1 || limit > 1000) {
    return absl::InvalidArgumentError("limit: must be between 1 and 1000");
  }
  std::vector<AuditRecord> out;
  const Millis now = clock_->NowMillis();
  // From tomorrow (a node whose clock runs a little ahead may have written there) back to the
  // oldest day the retention keeps.
  const int64_t newest = DayNumber(now) + 1;
  const int64_t oldest = DayNumber(now - options_.retention_ms);
  for (int64_t day = newest; day >= oldest && out.size() < limit; --day) {
    store::ScanOptions scan;
    scan.reverse = true;
    scan.limit = std::min(limit - out.size(), store::kMaxPageRows);
    for (;;) {
      STRATA_ASSIGN_OR_RETURN(store::ScanPage page, table_->Scan(Partition(day), scan));
      for (const store::Row& row : page.rows) {
        STRATA_ASSIGN_OR_RETURN(AuditRecord r, DecodeAuditRecord(row.value));
        out.push_back(std::move(r));
      }
      if (page.next_cursor.empty() || out.size() >= limit) break;
      scan.cursor = std::move(page.next_cursor);
      scan.limit = std::min(limit - out.size(), store::kMaxPageRows);
    }
  }
  return out;
}

}  // namespace strata::auth
