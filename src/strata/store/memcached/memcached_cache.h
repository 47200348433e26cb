// MemcachedCache: the Cache of cache.h on memcached servers, through libmemcached (the
// client behind EVCache's C++ users). Keys are spread over the servers by consistent hashing
// (ketama, libketama-compatible MD5 points), so adding or removing a server moves only
// about 1/N of the keys.
//
// Mapping: Get/Gets/MultiGet -> one multi-get ("gets") per call, CAS tokens are memcached's
// 64-bit CAS; Set -> set; Add -> add (NOT_STORED -> AlreadyExists); CompareAndSet -> cas
// (EXISTS -> FailedPrecondition, NOT_FOUND -> NotFound); Delete -> delete (NOT_FOUND is OK).
// TTLs are rounded up to whole seconds (memcached's unit); TTLs above 30 days are sent as
// absolute Unix times, as the protocol requires. Text protocol; request buffering stays off
// (it lost writes in testing, notes/dependencies.md).
//
// Metrics: strata_cache_hits_total{cache}, strata_cache_misses_total{cache} (evictions are
// the servers' own: see `stats` evictions).
//
// Thread safety: every method is thread-safe; calls borrow a connection from a pool of
// `connections` clones and block while all are busy. libmemcached headers are private to
// this folder.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/base/metrics.h"
#include "strata/store/cache.h"

namespace strata::store {

struct MemcachedCacheOptions {
  // "host:port" of every server (IPv4 address or name). At least one. Required.
  std::vector<std::string> servers;
  // Connections (per server) kept for concurrent calls, 1..256. Default 8.
  int connections = 8;
  // Milliseconds to connect, and to wait for a server's answer. Default 500 each.
  int connect_timeout_ms = 500;
  int io_timeout_ms = 500;
  // Where hit/miss counters go. nullptr = MetricsRegistry::Default().
  MetricsRegistry* metrics = nullptr;
  // The `cache` label of the metrics. [a-z0-9_]+. Default "default".
  std::string name = "default";
};

class MemcachedCache final : public Cache {
 public:
  // Validates the options and builds the connection pool. Servers are connected lazily, so
  // an unreachable server shows up as Unavailable from the calls, not here.
  static absl::StatusOr<std::unique_ptr<MemcachedCache>> Open(MemcachedCacheOptions options);
  ~MemcachedCache() override;

  MemcachedCache(const MemcachedCache&) = delete;
  MemcachedCache& operator=(const MemcachedCache&) = delete;

  absl::StatusOr<std::string> Get(std::string_view key) override;
  absl::StatusOr<CacheItem> Gets(std::string_view key) override;
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      std::span<const std::string> keys) override;
  absl::Status Set(std::string_view key, std::string_view value, Millis ttl_ms = 0) override;
  absl::Status Add(std::string_view key, std::string_view value, Millis ttl_ms = 0) override;
  absl::Status CompareAndSet(std::string_view key, std::string_view value, uint64_t cas,
                             Millis ttl_ms = 0) override;
  absl::Status Delete(std::string_view key) override;

 private:
  struct Impl;
  explicit MemcachedCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::store
