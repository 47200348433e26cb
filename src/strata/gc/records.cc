#include "strata/gc/records.h"

#include <cstdio>

#include "strata/base/coding.h"

namespace strata::gc {
namespace {

constexpr char kVersion = 0x01;

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError(std::string(what) + ": malformed");
}

bool GetVersion(std::string_view* in) {
  if (in->empty() || (*in)[0] != kVersion) return false;
  in->remove_prefix(1);
  return true;
}

// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t year = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(year + (*m <= 2));
}

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

std::string EncodeWorkItem(const WorkItem& item) {
  std::string out(1, kVersion);
  out.push_back(static_cast<char>(item.kind));
  coding::PutLengthPrefixed(&out, item.reason);
  coding::PutVarint64(&out, item.run_id);
  coding::PutLengthPrefixed(&out, item.day);
  coding::PutLengthPrefixed(&out, item.bucket);
  coding::PutLengthPrefixed(&out, item.key);
  coding::PutFixed64BE(&out, item.generation);
  coding::PutLengthPrefixed(&out, item.blob);
  coding::PutVarint64(&out, item.size);
  coding::PutVarint64(&out, item.parts);
  coding::PutLengthPrefixed(&out, item.storage_class);
  return out;
}

absl::StatusOr<WorkItem> DecodeWorkItem(std::string_view in) {
  WorkItem item;
  uint64_t parts = 0;
  if (!GetVersion(&in) || in.empty() || static_cast<uint8_t>(in[0]) > 2) {
    return Corrupt("work item");
  }
  item.kind = static_cast<WorkItem::Kind>(in[0]);
  in.remove_prefix(1);
  if (!coding::GetLengthPrefixed(&in, &item.reason) || !coding::GetVarint64(&in, &item.run_id) ||
      !coding::GetLengthPrefixed(&in, &item.day) || !coding::GetLengthPrefixed(&in, &item.bucket) ||
      !coding::GetLengthPrefixed(&in, &item.key) || !coding::GetFixed64BE(&in, &item.generation) ||
      !coding::GetLengthPrefixed(&in, &item.blob) || !coding::GetVarint64(&in, &item.size) ||
      !coding::GetVarint64(&in, &parts) || !coding::GetLengthPrefixed(&in, &item.storage_class) ||
      !in.empty()) {
    return Corrupt("work item");
  }
  item.parts = static_cast<uint32_t>(parts);
  return item;
}

std::string_view RunStateName(RunState s) {
  switch (s) {
    case RunState::kMarking:
      return "marking";
    case RunState::kPublishing:
      return "publishing";
    case RunState::kSweeping:
      return "sweeping";
    case RunState::kDone:
      return "done";
    case RunState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string_view OrphanScanStateName(OrphanScanState s) {
  switch (s) {
    case OrphanScanState::kOff:
      return "off";
    case OrphanScanState::kRunning:
      return "running";
    case OrphanScanState::kDone:
      return "done";
    case OrphanScanState::kInterrupted:
      return "interrupted";
    case OrphanScanState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string EncodeRunRecord(const RunRecord& r) {
  std::string out(1, kVersion);
  coding::PutVarint64(&out, r.id);
  out.push_back(r.dry_run ? 1 : 0);
  coding::PutZigZag64(&out, r.as_of);
  out.push_back(static_cast<char>(r.state));
  coding::PutZigZag64(&out, r.started_at);
  coding::PutZigZag64(&out, r.marked_at);
  coding::PutZigZag64(&out, r.finished_at);
  for (uint64_t v :
       {r.scanned, r.eligible, r.eligible_bytes, r.expired, r.deleted_marked, r.superseded,
        r.published, r.processed, r.processed_bytes, r.skipped, r.errors}) {
    coding::PutVarint64(&out, v);
  }
  coding::PutLengthPrefixed(&out, r.day);
  coding::PutLengthPrefixed(&out, r.export_path);
  coding::PutLengthPrefixed(&out, r.error);
  coding::PutVarint64(&out, r.orphans);
  out.push_back(static_cast<char>(r.orphan_scan));
  for (uint64_t v : {r.blobs_listed, r.orphan_blobs, r.orphan_blob_bytes, r.orphan_blobs_collected,
                     r.orphan_blob_bytes_collected, r.orphan_blobs_young}) {
    coding::PutVarint64(&out, v);
  }
  return out;
}

absl::StatusOr<RunRecord> DecodeRunRecord(std::string_view in) {
  RunRecord r;
  if (!GetVersion(&in) || !coding::GetVarint64(&in, &r.id) || in.empty()) {
    return Corrupt("run record");
  }
  r.dry_run = in[0] != 0;
  in.remove_prefix(1);
  if (!coding::GetZigZag64(&in, &r.as_of) || in.empty() || static_cast<uint8_t>(in[0]) > 4) {
    return Corrupt("run record");
  }
  r.state = static_cast<RunState>(in[0]);
  in.remove_prefix(1);
  if (!coding::GetZigZag64(&in, &r.started_at) || !coding::GetZigZag64(&in, &r.marked_at) ||
      !coding::GetZigZag64(&in, &r.finished_at)) {
    return Corrupt("run record");
  }
  for (uint64_t* v :
       {&r.scanned, &r.eligible, &r.eligible_bytes, &r.expired, &r.deleted_marked, &r.superseded,
        &r.published, &r.processed, &r.processed_bytes, &r.skipped, &r.errors}) {
    if (!coding::GetVarint64(&in, v)) return Corrupt("run record");
  }
  if (!coding::GetLengthPrefixed(&in, &r.day) || !coding::GetLengthPrefixed(&in, &r.export_path) ||
      !coding::GetLengthPrefixed(&in, &r.error) ||
      (!in.empty() && !coding::GetVarint64(&in, &r.orphans))) {
    return Corrupt("run record");
  }
  // The orphan-blob scan's fields, all or none (records written before it have none).
  if (!in.empty()) {
    if (static_cast<uint8_t>(in[0]) > static_cast<uint8_t>(OrphanScanState::kFailed)) {
      return Corrupt("run record");
    }
    r.orphan_scan = static_cast<OrphanScanState>(in[0]);
    in.remove_prefix(1);
    for (uint64_t* v :
         {&r.blobs_listed, &r.orphan_blobs, &r.orphan_blob_bytes, &r.orphan_blobs_collected,
          &r.orphan_blob_bytes_collected, &r.orphan_blobs_young}) {
      if (!coding::GetVarint64(&in, v)) return Corrupt("run record");
    }
  }
  if (!in.empty()) return Corrupt("run record");
  return r;
}

std::string EncodeAuditEntry(const AuditEntry& e) {
  std::string out(1, kVersion);
  coding::PutVarint64(&out, e.size);
  coding::PutLengthPrefixed(&out, e.reason);
  coding::PutZigZag64(&out, e.time);
  coding::PutVarint64(&out, e.run_id);
  return out;
}

absl::StatusOr<AuditEntry> DecodeAuditEntry(std::string_view in) {
  AuditEntry e;
  if (!GetVersion(&in) || !coding::GetVarint64(&in, &e.size) ||
      !coding::GetLengthPrefixed(&in, &e.reason) || !coding::GetZigZag64(&in, &e.time) ||
      !coding::GetVarint64(&in, &e.run_id) || !in.empty()) {
    return Corrupt("audit entry");
  }
  return e;
}

std::string EncodeTotals(const Totals& t) {
  std::string out(1, kVersion);
  coding::PutVarint64(&out, t.objects);
  coding::PutVarint64(&out, t.bytes);
  return out;
}

absl::StatusOr<Totals> DecodeTotals(std::string_view in) {
  Totals t;
  if (!GetVersion(&in) || !coding::GetVarint64(&in, &t.objects) ||
      !coding::GetVarint64(&in, &t.bytes) || !in.empty()) {
    return Corrupt("totals");
  }
  return t;
}

std::string AuditClustering(std::string_view bucket, std::string_view key, uint64_t generation) {
  std::string out = "a";
  out.append(bucket);
  out.push_back('\0');
  out.append(key);
  out.push_back('\0');
  coding::PutFixed64BE(&out, generation);
  return out;
}

std::string DayTotalsClustering(std::string_view bucket, std::string_view reason) {
  std::string out = "t";
  out.append(bucket);
  out.push_back('\0');
  out.append(reason);
  return out;
}

std::string RunTotalsClustering(uint64_t run_id) {
  std::string out = "r";
  coding::PutFixed64BE(&out, run_id);
  return out;
}

std::string AuditPartition(std::string_view task, std::string_view day) {
  std::string out(task);
  out.push_back('/');
  out.append(day);
  return out;
}

std::string DayOf(Millis t) {
  int64_t days = t / 86'400'000;
  if (t < 0 && t % 86'400'000 != 0) --days;
  int y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02u", y, m, d);
  return buf;
}

absl::StatusOr<Millis> DayStart(std::string_view day) {
  int y = 0;
  unsigned m = 0, d = 0;
  if (day.size() != 10 || std::sscanf(std::string(day).c_str(), "%4d-%2u-%2u", &y, &m, &d) != 3 ||
      m < 1 || m > 12 || d < 1 || d > 31) {
    return absl::InvalidArgumentError("day: must be YYYY-MM-DD");
  }
  return DaysFromCivil(y, m, d) * 86'400'000;
}

}  // namespace strata::gc
