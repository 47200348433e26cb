#include "strata/cli/server_commands.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "strata/auth/audit_log.h"
#include "strata/base/log.h"
#include "strata/cli/call.h"
#include "strata/server/backends.h"

namespace strata::cli {

int RunServe(const server::ServerConfig& config) {
  log::Init(config.log_level);
  absl::Status s = server::Serve(config);
  if (!s.ok()) {
    std::cerr << "strata serve: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

namespace {

// The string value after the first "key":" in a JSON text (the job's own fields come first).
std::string StringField(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return "";
  const size_t end = json.find('"', at + needle.size());
  return json.substr(at + needle.size(), end - at - needle.size());
}

}  // namespace

int RunAdminJob(const std::string& server_url, const std::string& method, const std::string& target,
                bool wait) {
  if (!wait) return Call(server_url, method, target);
  std::optional<http::Client> client = ClientFor(server_url);
  if (!client) return 2;
  auto r = client->Request(method, target, "", "application/json", {});
  if (!r.ok()) {
    PrintTransportError(server_url, r.status());
    return 1;
  }
  if (r->status != 202) {
    std::cout << r->body << "\n";
    return r->status / 100 == 2 ? 0 : 1;
  }
  const std::string id = StringField(r->body, "id");
  if (id.empty()) {
    std::cerr << "strata: no job id in the answer: " << r->body << "\n";
    return 1;
  }
  // Polls: a long job never holds one HTTP request open (a proxy's timeout, a restart).
  for (;;) {
    auto job = client->Request("GET", "/v1/admin/jobs/" + id, "", "", {});
    if (!job.ok()) {
      PrintTransportError(server_url, job.status());
      return 1;
    }
    if (job->status != 200) {
      std::cerr << "strata: " << job->body << "\n";
      return 1;
    }
    const std::string state = StringField(job->body, "state");
    if (state == "succeeded" || state == "failed") {
      std::cout << job->body << "\n";
      return state == "succeeded" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int AdminCompact(const std::string& server_url, bool wait) {
  return RunAdminJob(server_url, "POST", "/v1/admin/compact", wait);
}

int AdminJobs(const std::string& server_url, const std::string& id) {
  if (id.empty()) return Call(server_url, "GET", "/v1/admin/jobs");
  return Call(server_url, "GET", "/v1/admin/jobs/" + id);
}

int AdminScrub(const std::string& server_url, bool run) {
  if (run) return Call(server_url, "POST", "/v1/admin/scrub:run");
  return Call(server_url, "GET", "/v1/admin/scrub");
}

int BackupCreate(const std::string& server_url, const std::string& name) {
  std::string encoded;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') {
      encoded += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", static_cast<unsigned char>(c));
      encoded += buf;
    }
  }
  return Call(server_url, "POST", "/v1/admin/backup?name=" + encoded);
}

int BackupRestore(const std::string& backup_dir, const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(fs::path(backup_dir) / "STRATA_BACKUP", ec)) {
    std::cerr << "strata backup restore: " << backup_dir
              << " is not a complete backup (no STRATA_BACKUP marker)\n";
    return 1;
  }
  if (fs::exists(data_dir, ec) && !fs::is_empty(data_dir, ec)) {
    std::cerr << "strata backup restore: data-dir: " << data_dir
              << " exists and is not empty; restore into a new directory\n";
    return 1;
  }
  fs::create_directories(data_dir, ec);
  // Rows: a copy (RocksDB appends to its log and manifest, which must not be the backup's).
  fs::copy(fs::path(backup_dir) / "rows", fs::path(data_dir) / "rows", fs::copy_options::recursive,
           ec);
  if (ec) {
    std::cerr << "strata backup restore: copy rows: " << ec.message() << "\n";
    return 1;
  }
  // Blobs: write-once files, so hard links are safe; a copy across filesystems.
  const fs::path blobs_from = fs::path(backup_dir) / "blobs";
  const fs::path blobs_to = fs::path(data_dir) / "blobs";
  if (fs::exists(blobs_from, ec)) {
    fs::copy(blobs_from, blobs_to,
             fs::copy_options::recursive | fs::copy_options::create_hard_links, ec);
    if (ec) {
      ec.clear();
      fs::remove_all(blobs_to, ec);
      fs::copy(blobs_from, blobs_to, fs::copy_options::recursive, ec);
    }
    if (ec) {
      std::cerr << "strata backup restore: copy blobs: " << ec.message() << "\n";
      return 1;
    }
  }
  // The restored store's audit log says where its data came from (key "offline-cli").
  // Failing to record it does not undo the restore: a warning says so.
  server::ServerConfig restored;
  restored.data_dir = data_dir;
  log::Init("warn");
  absl::Status audited = [&]() -> absl::Status {
    absl::StatusOr<std::unique_ptr<store::RowStore>> rows = server::OpenRowStore(restored);
    if (!rows.ok()) return rows.status();
    absl::StatusOr<std::unique_ptr<auth::AuditLog>> audit =
        auth::AuditLog::Open(rows->get(), SystemClock::Default());
    if (!audit.ok()) return audit.status();
    auth::AuditRecord r;
    r.key = "offline-cli";
    r.action = "backup.restore";
    r.target = backup_dir;
    r.result = "ok";
    if (absl::Status s = (*audit)->Append(std::move(r)); !s.ok()) return s;
    return (*rows)->Sync();
  }();
  if (!audited.ok()) {
    std::cerr << "strata backup restore: warning: audit record not stored: " << audited.message()
              << "\n";
  }
  std::cout << "{\"restored\":\"" << data_dir << "\"}\n";
  return 0;
}

int AdminDropCaches(const std::string& server_url) {
  return Call(server_url, "POST", "/v1/admin/viewing/caches:drop");
}

int BenchViewing(const bench::ViewingBenchOptions& options) {
  auto report = bench::RunViewingBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench viewing: " << report.status().ToString() << "\n";
    return 1;
  }
  return 0;
}

int BenchCompare(const bench::CompareOptions& options) {
  auto report = bench::RunCompareBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench viewing: " << report.status().ToString() << "\n";
    return 1;
  }
  return report->passed ? 0 : 1;
}

int BenchAssets(const bench::AssetBenchOptions& options) {
  auto report = bench::RunAssetBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench assets: " << report.status().ToString() << "\n";
    return 1;
  }
  return report->passed ? 0 : 1;
}

int BenchConnections(const bench::ConnectionsBenchOptions& options) {
  auto report = bench::RunConnectionsBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench connections: " << report.status().ToString() << "\n";
    return 1;
  }
  return report->passed ? 0 : 1;
}

int BenchReprocess(const bench::ReprocessBenchOptions& options) {
  auto report = bench::RunReprocessBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench reprocess: " << report.status().ToString() << "\n";
    return 1;
  }
  return report->passed ? 0 : 1;
}

int BenchGc(const bench::GcBenchOptions& options) {
  auto report = bench::RunGcBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench gc: " << report.status().ToString() << "\n";
    return 1;
  }
  return report->deleted == report->eligible ? 0 : 1;
}

int BenchObjects(const bench::ObjectBenchOptions& options) {
  auto report = bench::RunObjectBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench objects: " << report.status().ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace strata::cli
