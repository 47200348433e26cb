#include "strata/server/backends.h"

#include <cstdlib>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/blob/local/local_blob_store.h"
#include "strata/server/server.h"
#include "strata/store/embedded_queue.h"
#include "strata/store/memcached/memcached_cache.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"
#ifdef STRATA_HAVE_RADOS
#include "strata/store/rados/rados_row_store.h"
#endif
#ifdef STRATA_HAVE_KAFKA
#include "strata/store/kafka/kafka_queue.h"
#include "strata/store/kafka/mock_cluster.h"
#endif
#ifdef STRATA_HAVE_S3
#include "strata/blob/s3/s3_blob_store.h"
#endif

// Adding a distributed backend once its folder is merged takes three steps, all local:
//  1. link its library in src/strata/server/CMakeLists.txt (strata_store_rados,
//     strata_blob_s3, strata_store_kafka);
//  2. include its header above;
//  3. replace its NotBuilt(...) line in OpenRows / OpenFiles / OpenQueue below with a call
//     of its Open, built from the config section that ValidateBackendConfig already checks
//     (rows: ceph_conf, pool_prefix; blobs: endpoint, bucket, region and
//     ResolveS3Credentials; queue: brokers), wrapped in Unreachable(...) so a cluster that
//     is down at start names the backend.
// The config keys, flags, validation, docs and `scripts/demo.sh --distributed` already exist.

namespace strata::server {
namespace {

[[maybe_unused]] absl::Status NotBuilt(const char* section, const std::string& backend) {
  return absl::UnimplementedError(absl::StrCat(section, " backend \"", backend,
                                               "\": not built into this binary"));
}

// The same error with the backend named in front, keeping its code (Unavailable stays
// Unavailable).
absl::Status Unreachable(const absl::Status& s, const std::string& what) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

absl::Status UnknownBackend(const char* key, const std::string& name,
                            const char* expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(key, ": unknown backend \"", name, "\" (expected ", expected, ")"));
}

absl::Status Required(const char* key, const char* section, const char* backend) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": required when ", section,
                                                 ".backend is \"", backend, "\""));
}

absl::StatusOr<std::unique_ptr<store::RowStore>> OpenRows(const ServerConfig& config) {
  const RowsBackendConfig& rows = config.backends.rows;
  if (rows.backend == "rados") {
#ifdef STRATA_HAVE_RADOS
    store::RadosRowStoreOptions options;
    options.ceph_conf = rows.ceph_conf;
    options.pool_prefix = rows.pool_prefix;
    options.live_shards = rows.live_shards;
    auto opened = store::RadosRowStore::Open(options);
    if (!opened.ok()) {
      return Unreachable(opened.status(), "rows backend \"rados\" (ceph_conf \"" +
                                              rows.ceph_conf + "\", pools " +
                                              rows.pool_prefix + ".*)");
    }
    return std::unique_ptr<store::RowStore>(std::move(*opened));
#else
    return NotBuilt("rows", rows.backend);
#endif
  }
  store::RocksRowStoreOptions options;
  options.path = config.data_dir + "/rows";
  options.block_cache_bytes = config.block_cache_bytes;
  options.document_blob_min_bytes = config.document_blob_min_bytes;
  options.document_blob_gc_min_garbage = config.document_blob_gc_min_garbage;
  options.block_cache_shard_bits = config.block_cache_shard_bits;
  if (config.document_metadata == "cache") {
    options.document_metadata = store::RocksRowStoreOptions::DocumentMetadata::kCache;
  } else if (config.document_metadata == "pinned") {
    options.document_metadata = store::RocksRowStoreOptions::DocumentMetadata::kPinned;
  } else if (config.document_metadata == "reader") {
    options.document_metadata = store::RocksRowStoreOptions::DocumentMetadata::kTableReader;
  } else {
    return absl::InvalidArgumentError(
        "document_metadata: must be \"cache\", \"pinned\" or \"reader\"");
  }
  if (config.sync == "periodic") {
    options.sync_policy = store::RocksRowStoreOptions::SyncPolicy::kPeriodic;
  } else if (config.sync == "batch") {
    options.sync_policy = store::RocksRowStoreOptions::SyncPolicy::kPerBatch;
  } else {
    return absl::InvalidArgumentError("sync: must be \"periodic\" or \"batch\"");
  }
  if (config.sync_interval_ms < 1) {
    return absl::InvalidArgumentError("sync_interval_ms: must be at least 1");
  }
  options.sync_interval_ms = config.sync_interval_ms;
  options.max_wal_bytes = config.max_wal_bytes;
  options.resume_min_free_bytes = config.disk_resume_min_free_bytes;
  options.total_write_buffer_bytes = config.memtable_budget_bytes;
  auto opened = store::RocksRowStore::Open(options);
  if (!opened.ok()) {
    return Unreachable(opened.status(), "rows backend \"rocksdb\" at " + options.path);
  }
  return std::unique_ptr<store::RowStore>(std::move(*opened));
}

absl::StatusOr<std::unique_ptr<blob::BlobStore>> OpenFiles(const ServerConfig& config,
                                                           MetricsRegistry* /*metrics*/) {
  const BlobsBackendConfig& blobs = config.backends.blobs;
  if (blobs.backend == "s3") {
    // S3: blob::S3BlobStore::Open({blobs.endpoint, blobs.bucket, blobs.region,
    // *ResolveS3Credentials(blobs), config.blob_part_bytes}). The keys are resolved here
    // already, so a missing one is reported before "not built".
    STRATA_ASSIGN_OR_RETURN(S3Credentials credentials, ResolveS3Credentials(blobs));
#ifdef STRATA_HAVE_S3
    blob::S3BlobStoreOptions options;
    options.endpoint = blobs.endpoint;
    options.bucket = blobs.bucket;
    options.region = blobs.region;
    options.credentials.access_key = credentials.access_key;
    options.credentials.secret_key = credentials.secret_key;
    options.create_bucket = blobs.create_bucket;
    options.enable_versioning = blobs.create_bucket && blobs.versioning;
    if (config.blob_part_bytes < 4096) {
      return absl::InvalidArgumentError("blob_part_bytes: must be at least 4096");
    }
    options.part_bytes = config.blob_part_bytes;
    auto opened = blob::S3BlobStore::Open(options);
    if (!opened.ok()) {
      return Unreachable(opened.status(), "blobs backend \"s3\" at " + blobs.endpoint +
                                              " bucket " + blobs.bucket);
    }
    STRATA_LOG_INFO("s3 bucket opened", "bucket", blobs.bucket, "endpoint", blobs.endpoint,
                    "versioning", (*opened)->versioned() ? "enabled" : "off",
                    "deletes", (*opened)->versioned()
                                   ? "leave noncurrent versions for the bucket's lifecycle rule"
                                   : "remove the bytes at once");
    return std::unique_ptr<blob::BlobStore>(std::move(*opened));
#else
    (void)credentials;
    return NotBuilt("blobs", blobs.backend);
#endif
  }
  if (config.blob_part_bytes < 4096) {
    return absl::InvalidArgumentError("blob_part_bytes: must be at least 4096");
  }
  blob::LocalBlobStoreOptions options;
  options.root = config.data_dir + "/blobs";
  options.part_bytes = config.blob_part_bytes;
  auto opened = blob::LocalBlobStore::Open(options);
  if (!opened.ok()) {
    return Unreachable(opened.status(), "blobs backend \"local\" at " + options.root);
  }
  return std::unique_ptr<blob::BlobStore>(std::move(*opened));
}

absl::StatusOr<std::unique_ptr<store::Queue>> OpenQueue(const ServerConfig& config,
                                                        store::RowStore* rows,
                                                        MetricsRegistry* metrics) {
  const QueueBackendConfig& queue = config.backends.queue;
  if (queue.backend == "kafka") {
#ifdef STRATA_HAVE_KAFKA
    store::KafkaQueueOptions options;
    for (const std::string& b : queue.brokers) {
      options.brokers += (options.brokers.empty() ? "" : ",") + b;
    }
    options.metrics = metrics;
    options.topic_prefix = queue.topic_prefix;
    // Kafka brokers create topics through their admin API. The test cluster's broker
    // (librdkafka's mock, strata-kafka-mock: no Kafka broker is packaged in Debian) has none;
    // its control port, named by STRATA_KAFKA_MOCK_CONTROL, stands in for tests and the demo.
    // It must outlive the queue: one per process, kept to the end (it holds an address).
    static std::unique_ptr<store::MockControlAdmin> mock_admin;
    if (const char* control = std::getenv("STRATA_KAFKA_MOCK_CONTROL");
        control != nullptr && *control != '\0') {
      if (!mock_admin) mock_admin = std::make_unique<store::MockControlAdmin>(control);
      options.topic_admin = mock_admin.get();
    }
    auto opened = store::OpenKafkaQueue(options);
    if (!opened.ok()) {
      return Unreachable(opened.status(), "queue backend \"kafka\" at " + options.brokers);
    }
    return std::move(*opened);
#else
    return NotBuilt("queue", queue.backend);
#endif
  }
  // Durable topics in the row store, beside the data they describe.
  store::EmbeddedQueueOptions options;
  options.metrics = metrics;
  auto opened = store::EmbeddedQueue::Open(rows, options);
  if (!opened.ok()) return Unreachable(opened.status(), "queue backend \"embedded\"");
  return std::unique_ptr<store::Queue>(std::move(*opened));
}

absl::StatusOr<std::unique_ptr<store::Cache>> OpenCache(const ServerConfig& config,
                                                        MetricsRegistry* metrics) {
  const CacheBackendConfig& cache = config.backends.cache;
  if (cache.backend != "memcached") return std::unique_ptr<store::Cache>();
  // MemcachedCache connects lazily: ask each server once now, so a wrong address or a server
  // that is down fails the start naming it instead of turning into cache misses later.
  for (const std::string& server : cache.servers) {
    store::MemcachedCacheOptions probe_options;
    probe_options.servers = {server};
    probe_options.connections = 1;
    probe_options.metrics = metrics;
    probe_options.name = "probe";
    auto probe = store::MemcachedCache::Open(probe_options);
    if (!probe.ok()) {
      return Unreachable(probe.status(), "cache backend \"memcached\": server " + server);
    }
    absl::StatusOr<std::string> got = (*probe)->Get("strata:start-probe");
    if (!got.ok() && !absl::IsNotFound(got.status())) {
      return absl::UnavailableError(absl::StrCat("cache backend \"memcached\": server ", server,
                                                 " unreachable: ", got.status().message()));
    }
  }
  store::MemcachedCacheOptions options;
  options.servers = cache.servers;
  options.metrics = metrics;
  options.name = "shared";
  auto opened = store::MemcachedCache::Open(options);
  if (!opened.ok()) return Unreachable(opened.status(), "cache backend \"memcached\"");
  return std::unique_ptr<store::Cache>(std::move(*opened));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// `key = value` lines of a credentials file (blank lines, [sections] and # comments skipped).
std::string FileValue(const std::string& contents, const std::vector<std::string>& names) {
  size_t begin = 0;
  while (begin < contents.size()) {
    size_t end = contents.find('\n', begin);
    if (end == std::string::npos) end = contents.size();
    std::string_view line(contents.data() + begin, end - begin);
    begin = end + 1;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    for (const std::string& name : names) {
      if (key == name) return std::string(value);
    }
  }
  return "";
}

}  // namespace

absl::Status ValidateBackendConfig(const BackendConfig& c) {
  if (c.rows.backend != "rocksdb" && c.rows.backend != "rados") {
    return UnknownBackend("rows.backend", c.rows.backend, "\"rocksdb\" or \"rados\"");
  }
  if (c.rows.backend == "rados") {
    if (c.rows.ceph_conf.empty()) return Required("rows.ceph_conf", "rows", "rados");
    if (c.rows.pool_prefix.empty()) return Required("rows.pool_prefix", "rows", "rados");
  }
  if (c.blobs.backend != "local" && c.blobs.backend != "s3") {
    return UnknownBackend("blobs.backend", c.blobs.backend, "\"local\" or \"s3\"");
  }
  if (c.blobs.backend == "s3") {
    if (c.blobs.endpoint.empty()) return Required("blobs.endpoint", "blobs", "s3");
    if (c.blobs.endpoint.rfind("http://", 0) != 0 && c.blobs.endpoint.rfind("https://", 0) != 0) {
      return absl::InvalidArgumentError("blobs.endpoint: must start with http:// or https://");
    }
    if (c.blobs.bucket.empty()) return Required("blobs.bucket", "blobs", "s3");
    if (c.blobs.region.empty()) return Required("blobs.region", "blobs", "s3");
  }
  if (c.queue.backend != "embedded" && c.queue.backend != "kafka") {
    return UnknownBackend("queue.backend", c.queue.backend, "\"embedded\" or \"kafka\"");
  }
  if (c.queue.backend == "kafka" && c.queue.brokers.empty()) {
    return Required("queue.brokers", "queue", "kafka");
  }
  if (c.cache.backend != "memory" && c.cache.backend != "memcached") {
    return UnknownBackend("cache.backend", c.cache.backend, "\"memory\" or \"memcached\"");
  }
  if (c.cache.backend == "memcached") {
    if (c.cache.servers.empty()) return Required("cache.servers", "cache", "memcached");
    for (size_t i = 0; i < c.cache.servers.size(); ++i) {
      const std::string& s = c.cache.servers[i];
      const size_t colon = s.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == s.size() ||
          s.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cache.servers[", i, "]: \"", s, "\" is not host:port"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<S3Credentials> ResolveS3Credentials(
    const BlobsBackendConfig& blobs, const std::function<const char*(const char*)>& getenv) {
  S3Credentials out;
  if (!blobs.credentials_file.empty()) {
    std::ifstream in(blobs.credentials_file);
    if (!in) {
      return absl::InvalidArgumentError("blobs.credentials_file: cannot read " +
                                        blobs.credentials_file);
    }
    const std::string contents((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    out.access_key = FileValue(contents, {"access_key", "aws_access_key_id"});
    out.secret_key = FileValue(contents, {"secret_key", "aws_secret_access_key"});
    if (out.access_key.empty() || out.secret_key.empty()) {
      return absl::InvalidArgumentError(
          "blobs.credentials_file: " + blobs.credentials_file +
          " must hold access_key = ... and secret_key = ... lines");
    }
    return out;
  }
  auto env = [&](const char* name) -> std::string {
    const char* v = getenv ? getenv(name) : std::getenv(name);
    return v != nullptr ? v : "";
  };
  out.access_key = env("STRATA_S3_ACCESS_KEY");
  out.secret_key = env("STRATA_S3_SECRET_KEY");
  if (out.access_key.empty() || out.secret_key.empty()) {
    out.access_key = env("AWS_ACCESS_KEY_ID");
    out.secret_key = env("AWS_SECRET_ACCESS_KEY");
  }
  if (out.access_key.empty() || out.secret_key.empty()) {
    return absl::InvalidArgumentError(
        "blobs.credentials_file: not set, and neither STRATA_S3_ACCESS_KEY and "
        "STRATA_S3_SECRET_KEY nor AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are in the "
        "environment");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<store::RowStore>> OpenRowStore(const ServerConfig& config) {
  STRATA_RETURN_IF_ERROR(ValidateBackendConfig(config.backends));
  return OpenRows(config);
}

absl::StatusOr<Backends> OpenBackends(const ServerConfig& config, MetricsRegistry* metrics) {
  STRATA_RETURN_IF_ERROR(ValidateBackendConfig(config.backends));
  Backends b;
  STRATA_ASSIGN_OR_RETURN(b.rows, OpenRows(config));
  STRATA_ASSIGN_OR_RETURN(b.cache, OpenCache(config, metrics));
  STRATA_ASSIGN_OR_RETURN(b.files, OpenFiles(config, metrics));
  STRATA_ASSIGN_OR_RETURN(b.queue, OpenQueue(config, b.rows.get(), metrics));
  const BackendConfig& c = config.backends;
  b.description = absl::StrCat("rows=", c.rows.backend, " blobs=", c.blobs.backend,
                               " queue=", c.queue.backend, " cache=", c.cache.backend);
  if (c.cache.backend == "memcached") {
    absl::StrAppend(&b.description, " (", absl::StrJoin(c.cache.servers, ","), ")");
  }
  return b;
}

}  // namespace strata::server
