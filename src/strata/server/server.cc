#include "strata/server/server.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>
#include <vector>

#include "strata/base/log.h"
#include "strata/base/metrics.h"
#include "strata/base/status.h"
#include "strata/blob/local/local_blob_store.h"
#include "strata/media/media_service.h"
#include "strata/server/api.h"
#include "strata/store/embedded_queue.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"

namespace strata::server {
namespace {

std::atomic<bool> g_signalled{false};
void OnSignal(int) { g_signalled.store(true); }

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

void RegisterProcessMetrics(MetricsRegistry* metrics, store::RocksRowStore* rows,
                            std::vector<store::Table*> tables) {
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
  metrics->AddGauge("strata_table_approximate_rows", "Rows in a table (RocksDB estimate)",
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
  metrics->AddGauge("strata_rocksdb_pending_compaction_bytes",
                    "Estimated bytes compaction still has to rewrite", [rows] {
                      return std::vector<std::pair<std::string, double>>{
                          {"", static_cast<double>(rows->Health().pending_compaction_bytes)}};
                    });
}

}  // namespace

absl::Status Serve(const ServerConfig& config, std::atomic<bool>* stop,
                   std::atomic<int>* port_out) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError("data_dir: cannot create " + config.data_dir + ": " +
                                      ec.message());
  }
  store::RocksRowStoreOptions row_options;
  row_options.path = config.data_dir + "/rows";
  row_options.block_cache_bytes = config.block_cache_bytes;
  if (config.sync == "periodic") {
    row_options.sync_policy = store::RocksRowStoreOptions::SyncPolicy::kPeriodic;
  } else if (config.sync == "batch") {
    row_options.sync_policy = store::RocksRowStoreOptions::SyncPolicy::kPerBatch;
  } else {
    return absl::InvalidArgumentError("sync: must be \"periodic\" or \"batch\"");
  }
  if (config.sync_interval_ms < 1) {
    return absl::InvalidArgumentError("sync_interval_ms: must be at least 1");
  }
  row_options.sync_interval_ms = config.sync_interval_ms;
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<store::RocksRowStore> rows,
                          store::RocksRowStore::Open(row_options));
  MetricsRegistry* metrics = MetricsRegistry::Default();
  // Work queues (rotation tasks; later GC and reprocessing) live in the same RocksDB.
  store::EmbeddedQueueOptions queue_options;
  queue_options.metrics = metrics;
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<store::EmbeddedQueue> queue,
                          store::EmbeddedQueue::Open(rows.get(), queue_options));
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<viewing::ViewingService> viewing,
                          viewing::ViewingService::Open(rows.get(), SystemClock::Default(),
                                                        config.viewing, metrics, queue.get()));
  blob::LocalBlobStoreOptions blob_options;
  blob_options.root = config.data_dir + "/blobs";
  blob_options.part_bytes = config.blob_part_bytes;
  if (config.blob_part_bytes < 4096) {
    return absl::InvalidArgumentError("blob_part_bytes: must be at least 4096");
  }
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<blob::LocalBlobStore> blobs,
                          blob::LocalBlobStore::Open(blob_options));
  STRATA_ASSIGN_OR_RETURN(
      std::unique_ptr<media::MediaService> media,
      media::MediaService::Open(rows.get(), blobs.get(), SystemClock::Default(), metrics));
  std::vector<store::Table*> tables = viewing->tables();
  tables.push_back(media->buckets_table());
  tables.push_back(media->objects_table());
  RegisterProcessMetrics(metrics, rows.get(), std::move(tables));

  store::RocksRowStore* rows_ptr = rows.get();
  AdminHooks admin;
  admin.health = [rows_ptr]() -> absl::Status {
    store::RocksHealth h = rows_ptr->Health();
    if (h.background_errors > 0) {
      return absl::UnavailableError("row store: background errors (see the server log)");
    }
    return absl::OkStatus();
  };
  admin.compact = [rows_ptr] { return rows_ptr->CompactAll(); };
  Api api(viewing.get(), media.get(), metrics, std::move(admin));
  http::ServerOptions http_options = config.http;
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
  STRATA_LOG_INFO("strata serving", "address", config.http.address, "port", http_server.port(),
                  "data_dir", config.data_dir, "sync", config.sync);

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  while (!g_signalled.load() && !(stop && stop->load())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  STRATA_LOG_INFO("strata stopping");
  http_server.Stop();
  viewing.reset();
  queue.reset();
  media.reset();
  blobs.reset();
  absl::Status sync = rows->Sync();
  rows.reset();
  STRATA_LOG_INFO("strata stopped");
  return sync;
}

}  // namespace strata::server
