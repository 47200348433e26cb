#include "strata/server/server.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <shared_mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "strata/assets/asset_service.h"
#include "strata/auth/audit_log.h"
#include "strata/auth/authenticator.h"
#include "strata/auth/key_store.h"
#include "strata/base/log.h"
#include "strata/base/metrics.h"
#include "strata/base/status.h"
#include "strata/blob/inline/inline_blob_store.h"
#include "strata/gc/collector.h"
#include "strata/media/media_service.h"
#include "strata/reprocess/job_runner.h"
#include "strata/scrub/scrubber.h"
#include "strata/server/access.h"
#include "strata/server/api.h"
#include "strata/server/backends.h"
#include "strata/server/file_limit.h"

// jemalloc's control interface, present when the binary is linked with it (apps/CMakeLists.txt).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp,
                       size_t newlen) __attribute__((weak));

namespace strata::server {
namespace {

// The allocator serving this process's malloc, for the startup log line.
std::string AllocatorName() {
  if (mallctl == nullptr) return "glibc";
  const char* version = nullptr;
  size_t len = sizeof(version);
  if (mallctl("version", &version, &len, nullptr, 0) != 0 || version == nullptr) {
    return "jemalloc";
  }
  return std::string("jemalloc ") + version;
}

std::atomic<bool> g_signalled{false};
void OnSignal(int) { g_signalled.store(true); }
// SIGHUP: reload the TLS certificate and key (the serving loop does it, off the handler).
std::atomic<bool> g_reload{false};
void OnReloadSignal(int) { g_reload.store(true); }

// VmRSS / VmHWM of this process from /proc, in bytes.
double ProcStatusBytes(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, n, key) == 0) return std::stod(line.substr(n + 1)) * 1024.0;
  }
  return 0;
}

// User + system CPU seconds of this process, from /proc/self/stat.
double ProcessCpuSeconds() {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = stat.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> field; ++i) {  // field 3 is the state; 14 utime, 15 stime
    if (i == 14) utime = std::stod(field);
    if (i == 15) {
      stime = std::stod(field);
      break;
    }
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Bytes of every regular file under `dir` (0 for what cannot be read): the disk cost of a
// deployment as an operator's `du` sees it, WAL, queue and exports included.
uint64_t DirectoryBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           dir, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const uint64_t size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

// Process and table gauges; the row store adds its backend's own (RowStore::ExportMetrics).
void RegisterProcessMetrics(MetricsRegistry* metrics, store::RowStore* rows,
                            std::vector<store::Table*> tables, const std::string& data_dir) {
  metrics->AddGauge("strata_data_dir_bytes",
                    "Bytes of every file under --data-dir (WAL, tables, queue, blobs, exports)",
                    [data_dir] {
                      return std::vector<std::pair<std::string, double>>{
                          {"", static_cast<double>(DirectoryBytes(data_dir))}};
                    });
  metrics->AddGauge("strata_process_resident_memory_bytes", "Resident set size", [] {
    return std::vector<std::pair<std::string, double>>{{"", ProcStatusBytes("VmRSS:")}};
  });
  metrics->AddGauge("strata_process_cpu_seconds_total", "CPU seconds used (user + system)", [] {
    return std::vector<std::pair<std::string, double>>{{"", ProcessCpuSeconds()}};
  });
  metrics->AddGauge("strata_process_peak_rss_bytes", "Peak resident set size", [] {
    return std::vector<std::pair<std::string, double>>{{"", ProcStatusBytes("VmHWM:")}};
  });
  metrics->AddGauge("strata_table_disk_bytes", "Bytes a table occupies on disk", [tables] {
    std::vector<std::pair<std::string, double>> out;
    for (store::Table* t : tables) {
      auto s = t->Stats();
      if (s.ok()) out.emplace_back("table=\"" + t->name() + "\"", s->disk_bytes);
    }
    return out;
  });
  metrics->AddGauge("strata_table_approximate_rows", "Rows in a table (backend estimate)",
                    [tables] {
                      std::vector<std::pair<std::string, double>> out;
                      for (store::Table* t : tables) {
                        auto s = t->Stats();
                        if (s.ok()) {
                          out.emplace_back("table=\"" + t->name() + "\"", s->approximate_rows);
                        }
                      }
                      return out;
                    });
  metrics->AddGauge("strata_row_store_load",
                    "Row store backpressure, 0..1 (1 = delaying or refusing writes)", [rows] {
                      return std::vector<std::pair<std::string, double>>{
                          {"", rows->CheckHealth().load}};
                    });
  rows->ExportMetrics(metrics);
}

// The sweep throttle's signal: object GET/PUT p99 over the last control interval (from the
// API's latency histograms) and the row store's load (RowStore::CheckHealth: on RocksDB its
// compaction debt and write stalls; a backend without a load signal reports none). One per collector (it
// keeps the previous histogram counts).
// The Host names the API answers: loopback, the address it is bound to, this machine's host
// name and --allowed-hosts; empty (any) when --allowed-hosts has "*".
std::vector<std::string> AllowedHosts(const ServerConfig& config) {
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
  for (const std::string& h : config.allowed_hosts) {
    if (h == "*") return {};
    std::string lower = h;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    hosts.push_back(lower);
  }
  for (const std::string& address : {config.http.address, config.http.tls_address}) {
    if (!address.empty() && address != "0.0.0.0" && address != "::") hosts.push_back(address);
  }
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0') {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    hosts.push_back(lower);
  }
  return hosts;
}

// Refuses to serve everyone unauthenticated: a non-loopback address needs a key to exist,
// unless the operator said --insecure-no-auth.
absl::Status CheckExposure(const ServerConfig& config, auth::KeyStore* keys) {
  STRATA_ASSIGN_OR_RETURN(bool any_key, keys->AnyKey());
  if (any_key) {
    STRATA_ASSIGN_OR_RETURN(std::vector<auth::KeyRecord> all, keys->List());
    if (std::none_of(all.begin(), all.end(), [](const auth::KeyRecord& k) { return k.active(); })) {
      STRATA_LOG_WARN("every API key is revoked: every request but /healthz will get 401; "
                      "create one with `strata key create --admin` (offline)");
    }
    return absl::OkStatus();
  }
  // Every listener counts: plain HTTP's and, with TLS, the TLS one (on --address by default).
  std::vector<std::pair<std::string, std::string>> listeners;  // (option, address)
  if (config.http.plain_http) listeners.emplace_back("address", config.http.address);
  if (!config.http.tls_cert_file.empty()) {
    listeners.emplace_back("tls_address", config.http.tls_address.empty()
                                              ? config.http.address
                                              : config.http.tls_address);
  }
  auto exposed = std::find_if(listeners.begin(), listeners.end(),
                              [](const auto& l) { return !IsLoopbackAddress(l.second); });
  if (exposed == listeners.end()) return absl::OkStatus();
  if (config.insecure_no_auth) {
    STRATA_LOG_WARN("serving WITHOUT authentication on a non-loopback address "
                    "(--insecure-no-auth): anyone who can reach it can read, change and delete "
                    "everything",
                    "address", exposed->second);
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      exposed->first + ": " + exposed->second +
      " is not a loopback address and no API key exists, so every request would be served "
      "without authentication. Create an admin key first (with the server stopped: strata key "
      "create --admin --data-dir " + config.data_dir +
      "), or pass --insecure-no-auth to serve unauthenticated anyway");
}

// Audits a blob the GC's orphan scan deleted: a hard delete that no request asked for (the
// run that made it names its key, or "scheduler", in its own gc.run record).
void AuditOrphanBlob(auth::AuditLog* audit, uint64_t run_id, const gc::CollectedOrphan& orphan) {
  auth::AuditRecord r;
  r.key = "collector";
  r.action = "gc.orphan_blob";
  r.target = orphan.blob;
  r.result = "ok";
  r.detail = "run " + std::to_string(run_id) + ": no row named it; " + std::to_string(orphan.size) +
             " bytes, " + std::to_string(orphan.age_ms / 1000) + " s old";
  (void)audit->Append(std::move(r));  // a failure is logged and counted by Append
}

// Audits a run the daily schedule started: it has no key behind it.
void AuditScheduledRun(auth::AuditLog* audit, const std::string& action,
                       const absl::StatusOr<gc::RunRecord>& run) {
  auth::AuditRecord r;
  r.key = "scheduler";
  r.action = action;
  r.target = run.ok() ? "run " + std::to_string(run->id) : "run";
  r.result = run.ok() ? "ok" : "error";
  r.detail = run.ok() ? "scheduled" : run.status().ToString();
  (void)audit->Append(std::move(r));  // a failure is logged and counted by Append
}

// The online path's load as background work sees it: each route's p99 (`routes` are
// (route, method) label pairs of strata_http_request_seconds) and the store's health.
std::function<LoadSample()> MakeLoadProbe(
    MetricsRegistry* metrics, store::RowStore* rows,
    const std::vector<std::pair<std::string, std::string>>& routes) {
  constexpr char kName[] = "strata_http_request_seconds";
  constexpr char kHelp[] = "HTTP request latency by route";
  // Each p99 is taken over the last kWindow control steps (2 s at the default interval): one
  // 500 ms interval of a few hundred requests makes a noisy p99.
  constexpr size_t kWindow = 4;
  struct Signal {
    Histogram* histogram;
    Histogram::Buckets previous{};
    std::deque<Histogram::Buckets> deltas;
  };
  auto signals = std::make_shared<std::vector<Signal>>();
  for (const auto& [route, method] : routes) {
    signals->push_back({metrics->GetHistogram(
        kName, kHelp, "route=\"" + route + "\",method=\"" + method + "\"")});
  }
  return [rows, signals] {
    LoadSample s;
    for (Signal& sig : *signals) {
      const Histogram::Buckets now = sig.histogram->BucketCounts();
      Histogram::Buckets step{};
      for (size_t i = 0; i < step.size(); ++i) step[i] = now[i] - sig.previous[i];
      sig.previous = now;
      sig.deltas.push_back(step);
      if (sig.deltas.size() > kWindow) sig.deltas.pop_front();
      Histogram::Buckets window{};
      uint64_t n = 0;
      for (const Histogram::Buckets& d : sig.deltas) {
        for (size_t i = 0; i < window.size(); ++i) {
          window[i] += d[i];
          n += d[i];
        }
      }
      // A p99 of fewer than 20 requests is one slow request: not a signal.
      s.p99_ms.push_back(n >= 20 ? Histogram::Quantile(window, 0.99) * 1000 : -1);
    }
    const store::BackendHealth h = rows->CheckHealth();
    s.pending_compaction_bytes = h.pending_background_bytes;
    s.write_stalled = h.load >= 1.0;
    return s;
  };
}

// The GC sweep's online signals (signal 0 = object GET, 1 = object PUT: the collector's
// baseline gauge names them so).
std::function<LoadSample()> MakeObjectLoadProbe(MetricsRegistry* metrics,
                                                store::RowStore* rows) {
  const std::string route = "/v1/buckets/{bucket}/objects/{key}";
  return MakeLoadProbe(metrics, rows, {{route, "GET"}, {route, "PUT"}});
}

// A reprocessing job's online signals: the asset requests its writes compete with.
std::function<LoadSample()> MakeAssetLoadProbe(MetricsRegistry* metrics,
                                               store::RowStore* rows) {
  const std::string one = "/v1/assets/{type}/{id}";
  const std::string all = "/v1/assets/{type}";
  return MakeLoadProbe(metrics, rows,
                       {{one, "GET"}, {one, "PATCH"}, {one, "PUT"}, {one, "DELETE"},
                        {all, "GET"}, {all, "POST"}, {all + ":batch", "POST"}});
}

// Sweep workers at most when rows or bytes are on a remote store and --gc-max-workers is 0.
constexpr int kRemoteSweepWorkers = 4;

}  // namespace

absl::Status Serve(const ServerConfig& config, std::atomic<bool>* stop,
                   std::atomic<int>* port_out) {
  // Before anything opens files: each connection is a descriptor, and a soft limit of 1024
  // would refuse connections long before --max-connections does.
  RaiseFileLimit(config.http.max_connections);
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError("data_dir: cannot create " + config.data_dir + ": " +
                                      ec.message());
  }
  MetricsRegistry* metrics = MetricsRegistry::Default();
  STRATA_ASSIGN_OR_RETURN(Backends backends, OpenBackends(config, metrics));
  store::RowStore* rows = backends.rows.get();
  store::Queue* queue = backends.queue.get();
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<auth::KeyStore> keys,
                          auth::KeyStore::Open(rows, SystemClock::Default()));
  STRATA_RETURN_IF_ERROR(CheckExposure(config, keys.get()));
  if (config.audit_retention_days < 1) {
    return absl::InvalidArgumentError("audit_retention_days: must be at least 1");
  }
  auth::AuditLogOptions audit_options;
  audit_options.retention_ms = Millis{config.audit_retention_days} * 86'400'000;
  STRATA_ASSIGN_OR_RETURN(
      std::unique_ptr<auth::AuditLog> audit,
      auth::AuditLog::Open(rows, SystemClock::Default(), audit_options, metrics));
  auth::Authenticator authenticator(keys.get(), SystemClock::Default());
  viewing::ViewingOptions viewing_options = config.viewing;
  viewing_options.read_thread_slice_us = config.request_slice_us;
  STRATA_ASSIGN_OR_RETURN(
      std::unique_ptr<viewing::ViewingService> viewing,
      viewing::ViewingService::Open(rows, SystemClock::Default(), viewing_options, metrics,
                                    queue, backends.cache.get()));
  if (config.blob_inline_max_bytes > config.blob_part_bytes) {
    return absl::InvalidArgumentError("blob_inline_max_bytes: must be at most blob_part_bytes");
  }
  // Always in front of the files, even with --blob-inline-max-bytes 0: objects written inline
  // under an earlier setting stay readable and collectable.
  blob::InlineBlobStoreOptions inline_options;
  inline_options.max_inline_bytes = config.blob_inline_max_bytes;
  // Archived objects leave the row store for the archive class's own directory.
  inline_options.never_inline_prefixes = {config.archive_class + "/"};
  STRATA_ASSIGN_OR_RETURN(
      std::unique_ptr<blob::InlineBlobStore> inline_blobs,
      blob::InlineBlobStore::Open(rows, backends.files.get(), inline_options, metrics));
  blob::BlobStore* blobs = inline_blobs.get();
  STRATA_ASSIGN_OR_RETURN(
      std::unique_ptr<media::MediaService> media,
      media::MediaService::Open(rows, blobs, SystemClock::Default(), metrics));
  assets::AssetOptions asset_options;
  asset_options.max_payload_bytes = config.asset_max_payload_bytes;
  asset_options.max_depth = config.asset_max_depth;
  asset_options.max_batch = config.asset_max_batch;
  asset_options.default_keep_versions = config.asset_keep_versions;
  asset_options.max_process_write = config.reprocess_write_assets;
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<assets::AssetService> asset_service,
                          assets::AssetService::Open(rows, queue,
                                                     SystemClock::Default(), metrics,
                                                     asset_options));
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<reprocess::JobStore> job_store,
                          reprocess::JobStore::Open(rows, SystemClock::Default()));
  reprocess::JobRunnerOptions job_options;
  job_options.export_dir = config.data_dir + "/exports";  // export jobs' files (docs/assets.md)
  // Jobs yield to the asset requests they share the store with (docs/assets.md, "Adaptive
  // rate").
  job_options.load_probe = MakeAssetLoadProbe(metrics, rows);
  job_options.worker_nice = config.reprocess_nice;
  job_options.poll_batch = config.reprocess_batch;
  job_options.store_stalled = [rows] { return rows->CheckHealth().load >= 1.0; };
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<reprocess::JobRunner> job_runner,
                          reprocess::JobRunner::Open(asset_service.get(), queue,
                                                     job_store.get(), SystemClock::Default(),
                                                     job_options, metrics));
  std::vector<store::Table*> tables = viewing->tables();
  tables.push_back(asset_service->types_table());
  tables.push_back(asset_service->assets_table());
  tables.push_back(media->buckets_table());
  tables.push_back(media->objects_table());
  tables.push_back(inline_blobs->table());
  RegisterProcessMetrics(metrics, rows, std::move(tables), config.data_dir);

  AdminHooks admin;
  admin.health = [rows]() -> absl::Status {
    const store::BackendHealth h = rows->CheckHealth();
    if (!h.healthy) {
      return absl::UnavailableError(h.detail.empty() ? "row store: unhealthy" : h.detail);
    }
    return absl::OkStatus();
  };
  // Left unset (the endpoint answers 501) when the backend has no manual compaction.
  if (rows->SupportsCompaction()) admin.compact = [rows] { return rows->Compact(); };
  // Backups go to <data-dir>/backups/<name> (the same filesystem: blob files are hard links).
  // Deletes of object bytes wait while it runs, so every byte a checkpointed row names is
  // still there to be linked. Only where both stores have checkpoints (the embedded one).
  admin.backup = [rows, blobs = inline_blobs.get(),
                  root = config.data_dir + "/backups"](
                     const std::string& name) -> absl::StatusOr<std::string> {
    const std::string dir = root + "/" + name;
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    if (ec) return absl::InternalError("backup: create " + root + ": " + ec.message());
    if (std::filesystem::exists(dir, ec)) {
      return absl::AlreadyExistsError("name: backup '" + name + "' exists in " + root);
    }
    std::filesystem::create_directory(dir, ec);
    if (ec) return absl::InternalError("backup: create " + dir + ": " + ec.message());
    absl::Status s;
    {
      std::unique_lock<std::shared_mutex> no_deletes = blobs->BlockDeletes();
      s = rows->Checkpoint(dir + "/rows");
      if (s.ok()) s = blobs->Checkpoint(dir + "/blobs");
    }
    if (s.ok()) {
      std::ofstream marker(dir + "/STRATA_BACKUP");
      marker << "created_at_ms=" << SystemClock::Default()->NowMillis() << "\n";
      marker.close();
      if (!marker) s = absl::InternalError("backup: write " + dir + "/STRATA_BACKUP");
    }
    if (!s.ok()) {
      std::filesystem::remove_all(dir, ec);
      STRATA_LOG_ERROR("backup failed", "name", name, "error", s.ToString());
      return s;
    }
    STRATA_LOG_INFO("backup created", "name", name, "dir", dir);
    return dir;
  };
  admin.store = [rows, data_dir = config.data_dir] {
    const store::BackendHealth h = rows->CheckHealth();
    StoreFigures f;
    f.data_dir_bytes = DirectoryBytes(data_dir);
    f.wal_bytes = h.log_bytes;
    f.sst_bytes = h.table_bytes;
    f.memtable_bytes = h.memory_bytes;
    return f;
  };
  gc::CollectorOptions gc_options;
  gc_options.export_dir = config.gc_export ? config.data_dir + "/lifecycle-export" : "";
  gc_options.export_keep_runs = config.gc_export_keep_runs;
  gc_options.daily_at = config.gc_daily_at;
  gc_options.min_workers = config.gc_min_workers;
  gc_options.max_workers = config.gc_max_workers;
  if (config.gc_max_workers == 0 && (config.backends.rows.backend == "rados" ||
                                     config.backends.blobs.backend == "s3")) {
    // A sweep worker on remote stores mostly waits on round trips (RADOS, S3), not on the
    // CPU: more of them overlap that waiting (docs/benchmark-log.md, "GC sweep on S3").
    gc_options.max_workers = kRemoteSweepWorkers;
  }
  // On RADOS every row operation is a round trip: the sweep reads and writes a batch's rows
  // together (one MultiGet, one write per partition) instead of a few operations per item.
  const bool remote_rows = config.backends.rows.backend == "rados";
  gc_options.batch_records = remote_rows;
  gc_options.backlog_per_worker = config.gc_backlog_per_worker;
  gc_options.sweep_batch = config.gc_sweep_batch;
  gc_options.throttle.initial_rate = config.gc_initial_rate;
  gc_options.throttle.min_rate = config.gc_min_rate;
  gc_options.throttle.max_rate = config.gc_max_rate;
  gc_options.throttle.additive_step = config.gc_rate_step;
  gc_options.throttle.latency_factor = config.gc_latency_factor;
  gc_options.throttle.latency_floor_ms = config.gc_latency_floor_ms;
  gc_options.throttle.max_pending_compaction_bytes = config.gc_max_pending_compaction_bytes;
  gc_options.load_probe = MakeObjectLoadProbe(metrics, rows);
  gc_options.on_scheduled_run = [audit = audit.get()](const absl::StatusOr<gc::RunRecord>& run) {
    AuditScheduledRun(audit, "gc.run", run);
  };
  gc_options.scan_orphan_blobs = config.gc_orphan_blob_scan;
  gc_options.orphan_audit = [audit = audit.get()](uint64_t run_id,
                                                  const gc::CollectedOrphan& orphan) {
    AuditOrphanBlob(audit, run_id, orphan);
  };
  gc::HardDeleteTask gc_task(media.get(), config.gc_orphan_age_ms, /*batch_rows=*/remote_rows);
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<gc::Collector> gc_collector,
                          gc::Collector::Open(rows, queue, media.get(), &gc_task,
                                              SystemClock::Default(), metrics, gc_options));
  std::unique_ptr<gc::ArchiveTask> archive_task;
  std::unique_ptr<gc::Collector> archive_collector;
  if (config.archive_after_ms > 0) {
    archive_task = std::make_unique<gc::ArchiveTask>(media.get(), config.archive_after_ms,
                                                     config.archive_class);
    gc::CollectorOptions archive_options = gc_options;
    archive_options.daily_at = config.archive_daily_at;
    archive_options.load_probe = MakeObjectLoadProbe(metrics, rows);
    archive_options.on_scheduled_run =
        [audit = audit.get()](const absl::StatusOr<gc::RunRecord>& run) {
          AuditScheduledRun(audit, "archive.run", run);
        };
    STRATA_ASSIGN_OR_RETURN(
        archive_collector,
        gc::Collector::Open(rows, queue, media.get(), archive_task.get(),
                            SystemClock::Default(), metrics, archive_options));
  }
  STRATA_RETURN_IF_ERROR(gc_collector->Start());
  if (archive_collector) STRATA_RETURN_IF_ERROR(archive_collector->Start());
  scrub::ScrubOptions scrub_options;
  scrub_options.rate_bytes_per_s = config.scrub_rate_bytes;
  scrub_options.interval_ms = config.scrub_interval_ms;
  STRATA_ASSIGN_OR_RETURN(
      std::unique_ptr<scrub::Scrubber> scrubber,
      scrub::Scrubber::Open(rows, media.get(), SystemClock::Default(), metrics, scrub_options));
  STRATA_RETURN_IF_ERROR(scrubber->Start());

  Api api(viewing.get(), media.get(), metrics, std::move(admin));
  api.SetLifecycle(gc_collector.get(), archive_collector.get());
  api.SetAssets(asset_service.get());
  api.SetReprocess(job_runner.get());
  api.SetScrub(scrubber.get(), config.scrub_rate_bytes);
  api.SetAllowedHosts(AllowedHosts(config));
  api.RefuseWhenBackedUp();
  api.SetAccessControl({&authenticator, keys.get(), audit.get()});
  http::ServerOptions http_options = config.http;
  http_options.thread_slice_us = config.request_slice_us;
  http_options.metrics = metrics;
  http::StreamingRoute object_puts;
  object_puts.method = "PUT";
  object_puts.path_prefix = "/v1/buckets/";
  object_puts.max_body_bytes = config.max_object_bytes;
  object_puts.open = [&api](const http::Request& head) { return api.OpenObjectStream(head); };
  http_options.streaming_routes.push_back(std::move(object_puts));
  http::Server http_server(http_options,
                           [&api](const http::Request& r) { return api.Handle(r); });
  STRATA_RETURN_IF_ERROR(http_server.Start());
  if (port_out) port_out->store(http_server.port());
  absl::StatusOr<bool> auth_required = authenticator.Required();
  STRATA_LOG_INFO("strata serving", "address", config.http.address, "port", http_server.port(),
                  "tls_port", http_server.tls_port(), "data_dir", config.data_dir, "sync",
                  config.sync, "backends", backends.Describe(), "auth",
                  !auth_required.ok() ? "unknown" : *auth_required ? "api-keys" : "off",
                  "allocator", AllocatorName());

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction reload {};
  reload.sa_handler = OnReloadSignal;
  sigaction(SIGHUP, &reload, nullptr);
  while (!g_signalled.load() && !(stop && stop->load())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_reload.exchange(false)) {
      if (http_server.tls_port() == 0) {
        STRATA_LOG_INFO("SIGHUP: nothing to reload (no TLS)");
        continue;
      }
      // A failed reload keeps the certificate in use (strata_tls_reloads_total{result}).
      absl::Status s = http_server.ReloadTls();
      if (s.ok()) {
        STRATA_LOG_INFO("tls certificate reloaded", "cert", config.http.tls_cert_file);
      } else {
        STRATA_LOG_ERROR("tls reload failed, the previous certificate stays", "error",
                         s.ToString());
      }
    }
  }
  STRATA_LOG_INFO("strata stopping");
  http_server.Stop();
  scrubber.reset();
  archive_collector.reset();
  gc_collector.reset();
  viewing.reset();
  job_runner.reset();
  job_store.reset();
  asset_service.reset();
  audit.reset();
  keys.reset();
  backends.queue.reset();
  media.reset();
  inline_blobs.reset();
  backends.files.reset();
  backends.cache.reset();
  absl::Status sync = rows->Sync();
  backends.rows.reset();
  STRATA_LOG_INFO("strata stopped");
  return sync;
}

}  // namespace strata::server
