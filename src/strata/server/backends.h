// The deployment's storage backends, chosen by name in the config ([rows], [blobs], [queue],
// [cache]; docs/configuration.md) and opened in one place. Services see only the four
// interfaces (store::RowStore, blob::BlobStore, store::Queue, store::Cache); which engine is
// behind each is decided here and nowhere else.
//
//   [rows]  backend = "rocksdb" (default) | "rados"   ceph_conf, pool_prefix
//   [blobs] backend = "local"   (default) | "s3"      endpoint, bucket, region,
//                                                     credentials_file (or the environment)
//   [queue] backend = "embedded" (default) | "kafka"  brokers
//   [cache] backend = "memory"  (default) | "memcached"  servers
//
// Not thread-safe; called once at start.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/metrics.h"
#include "strata/blob/blob_store.h"
#include "strata/store/cache.h"
#include "strata/store/queue.h"
#include "strata/store/row_store.h"

namespace strata::server {

struct ServerConfig;

struct RowsBackendConfig {
  // "rocksdb" (embedded, under <data_dir>/rows) or "rados" (Ceph RADOS omap).
  std::string backend = "rocksdb";
  // rados: the Ceph client configuration (monitors, keyring). Default /etc/ceph/ceph.conf.
  std::string ceph_conf = "/etc/ceph/ceph.conf";
  // rados: prefix of the pools, one per table family ("<prefix>_<family>"). Default "strata".
  std::string pool_prefix = "strata";
  // rados: how many shard objects hold a new table's partitions when its writes spread over
  // many small partitions (live tables, languages, cache tokens): one operation per shard
  // object touched per ingest batch, so fewer shards = fewer operations per batch but more
  // keys per object and fewer OSDs sharing the load. Fixed per table at its creation.
  // 1..65536. Default 64.
  uint32_t live_shards = 64;
};

struct BlobsBackendConfig {
  // "local" (files under <data_dir>/blobs) or "s3" (any S3 API).
  std::string backend = "local";
  // s3: the service's URL ("http://127.0.0.1:7480", "https://s3.eu-west-1.amazonaws.com")
  // and the bucket that holds every object's bytes. Both required for s3.
  std::string endpoint;
  std::string bucket;
  // s3: the SigV4 signing region. Default "us-east-1" (what radosgw and MinIO accept).
  std::string region = "us-east-1";
  // s3: a file holding `access_key = ...` and `secret_key = ...` lines (the AWS names
  // aws_access_key_id / aws_secret_access_key are accepted too). "" = take the keys from the
  // environment (STRATA_S3_ACCESS_KEY / STRATA_S3_SECRET_KEY, else AWS_ACCESS_KEY_ID /
  // AWS_SECRET_ACCESS_KEY). Secrets are never taken from the command line.
  std::string credentials_file;
  // s3: create the bucket at start when it does not exist, with versioning on (the local
  // demo, tests). Default off: a production bucket is made by its operator, with versioning
  // and lifecycle rules (src/strata/blob/s3/README.md).
  bool create_bucket = false;
  // s3: whether a bucket created by `create_bucket` gets versioning (default on). On: a reader
  // opened before a delete keeps reading its version; a delete leaves a noncurrent version
  // and a delete marker, which the bucket's lifecycle rule expires. Off: a delete removes the
  // bytes at once (a reader of a deleted object gets NotFound) and costs radosgw less: the GC
  // sweep went ~2.9x and object PUTs ~1.8x faster in docs/benchmark-log.md ("Versioned and
  // unversioned buckets"). A bucket that exists is used as it is either way.
  bool versioning = true;
};

struct QueueBackendConfig {
  // "embedded" (durable topics in the row store) or "kafka".
  std::string backend = "embedded";
  // kafka: bootstrap brokers, "host:port" each. Required for kafka.
  std::vector<std::string> brokers;
  // kafka: prepended to every topic name, so several deployments (or test servers) can share
  // one Kafka cluster. Default "".
  std::string topic_prefix;
};

struct CacheBackendConfig {
  // "memory" (in-process caches, one per server) or "memcached" (shared by every server:
  // the viewing history cache lives there, docs/viewing.md "Shared cache").
  std::string backend = "memory";
  // memcached: "host:port" of every server (consistent hashing over them). Required.
  std::vector<std::string> servers;
};

struct BackendConfig {
  RowsBackendConfig rows;
  BlobsBackendConfig blobs;
  QueueBackendConfig queue;
  CacheBackendConfig cache;
};

// InvalidArgument naming the key ("rows.backend", "blobs.endpoint", "cache.servers") for an
// unknown backend name or a missing setting the chosen backend requires.
absl::Status ValidateBackendConfig(const BackendConfig& config);

struct S3Credentials {
  std::string access_key;
  std::string secret_key;
};
// The S3 keys: from blobs.credentials_file when set, else from the environment (`getenv`,
// injectable for tests). InvalidArgument naming the file or the variables when none are found.
absl::StatusOr<S3Credentials> ResolveS3Credentials(
    const BlobsBackendConfig& blobs,
    const std::function<const char*(const char*)>& getenv = nullptr);

// The opened backends. Members are destroyed in reverse order: the queue (which may live in
// the row store) and the blob and cache clients before the row store.
struct Backends {
  std::unique_ptr<store::RowStore> rows;
  // Null with cache backend "memory": services keep their in-process caches.
  std::unique_ptr<store::Cache> cache;
  // The object bytes (the server puts blob::InlineBlobStore in front for small objects).
  std::unique_ptr<blob::BlobStore> files;
  std::unique_ptr<store::Queue> queue;
  // "rows=rocksdb blobs=local queue=embedded cache=memory", for the start-up log.
  std::string Describe() const { return description; }
  std::string description;
};

// Only the row store that config.backends.rows names (offline commands such as `strata key`
// need nothing else). Errors as OpenBackends.
absl::StatusOr<std::unique_ptr<store::RowStore>> OpenRowStore(const ServerConfig& config);

// Validates config.backends and opens each backend. A backend that cannot be opened or
// reached is an error naming it ("cache backend \"memcached\": server 127.0.0.1:1
// unreachable: ..."); one not compiled into this binary is Unimplemented, naming it.
absl::StatusOr<Backends> OpenBackends(const ServerConfig& config, MetricsRegistry* metrics);

}  // namespace strata::server
