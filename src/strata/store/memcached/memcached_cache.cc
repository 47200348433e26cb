#include "strata/store/memcached/memcached_cache.h"

#include <libmemcached-1.0/memcached.h>
#include <libmemcachedutil-1.0/pool.h>

#include <ctime>
#include <map>
#include <utility>

#include "strata/base/status.h"

namespace strata::store {
namespace {

constexpr time_t kMaxRelativeTtlSeconds = 30 * 24 * 3600;  // beyond: absolute Unix time

// memcached's expiration for a TTL in ms: 0 = never; whole seconds, rounded up.
time_t Expiration(Millis ttl_ms) {
  if (ttl_ms <= 0) return 0;
  const time_t seconds = static_cast<time_t>((ttl_ms + 999) / 1000);
  if (seconds > kMaxRelativeTtlSeconds) return std::time(nullptr) + seconds;
  return seconds;
}

absl::Status Unavailable(memcached_st* mc, memcached_return_t rc, std::string_view what) {
  return absl::UnavailableError("memcached " + std::string(what) + ": " +
                                memcached_last_error_message(mc) + " (" +
                                memcached_strerror(mc, rc) + ")");
}

}  // namespace

struct MemcachedCache::Impl {
  memcached_st* master = nullptr;
  memcached_pool_st* pool = nullptr;
  Counter* hits = nullptr;
  Counter* misses = nullptr;

  ~Impl() {
    if (pool != nullptr) memcached_pool_destroy(pool);
    if (master != nullptr) memcached_free(master);
  }

  // A pooled connection, returned on destruction.
  class Connection {
   public:
    explicit Connection(Impl* impl) : impl_(impl) {
      memcached_return_t rc;
      mc_ = memcached_pool_pop(impl_->pool, /*block=*/true, &rc);
    }
    ~Connection() {
      if (mc_ != nullptr) memcached_pool_push(impl_->pool, mc_);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    memcached_st* get() const { return mc_; }

   private:
    Impl* impl_;
    memcached_st* mc_ = nullptr;
  };

  // Fetches every distinct key in one multi-get: key -> item.
  absl::StatusOr<std::map<std::string, CacheItem, std::less<>>> Fetch(
      std::span<const std::string_view> keys) {
    std::map<std::string, CacheItem, std::less<>> found;
    if (keys.empty()) return found;
    Connection conn(this);
    if (conn.get() == nullptr) return absl::UnavailableError("memcached: no connection");
    std::vector<const char*> key_ptrs;
    std::vector<size_t> key_lengths;
    for (std::string_view key : keys) {
      key_ptrs.push_back(key.data());
      key_lengths.push_back(key.size());
    }
    memcached_return_t rc =
        memcached_mget(conn.get(), key_ptrs.data(), key_lengths.data(), keys.size());
    if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_SOME_ERRORS) {
      return Unavailable(conn.get(), rc, "get");
    }
    memcached_result_st result_storage;
    memcached_result_st* result = memcached_result_create(conn.get(), &result_storage);
    if (result == nullptr) return absl::ResourceExhaustedError("memcached: result");
    absl::Status status = absl::OkStatus();
    for (;;) {
      memcached_return_t fetch_rc;
      memcached_result_st* r = memcached_fetch_result(conn.get(), result, &fetch_rc);
      if (r == nullptr) {
        if (fetch_rc != MEMCACHED_END && fetch_rc != MEMCACHED_NOTFOUND &&
            fetch_rc != MEMCACHED_SUCCESS) {
          status = Unavailable(conn.get(), fetch_rc, "get");
        }
        break;
      }
      std::string key(memcached_result_key_value(r), memcached_result_key_length(r));
      CacheItem item;
      item.value.assign(memcached_result_value(r), memcached_result_length(r));
      item.cas = memcached_result_cas(r);
      found[std::move(key)] = std::move(item);
    }
    memcached_result_free(result);
    if (!status.ok()) return status;
    return found;
  }

  absl::StatusOr<CacheItem> GetOne(std::string_view key) {
    STRATA_RETURN_IF_ERROR(ValidateCacheKey(key));
    STRATA_ASSIGN_OR_RETURN(auto found, Fetch(std::span<const std::string_view>(&key, 1)));
    auto it = found.find(key);
    if (it == found.end()) {
      misses->Inc();
      return absl::NotFoundError("cache miss");
    }
    hits->Inc();
    return std::move(it->second);
  }
};

absl::StatusOr<std::unique_ptr<MemcachedCache>> MemcachedCache::Open(
    MemcachedCacheOptions options) {
  if (options.servers.empty()) return absl::InvalidArgumentError("servers: at least one");
  if (options.connections < 1 || options.connections > 256) {
    return absl::InvalidArgumentError("connections: must be 1..256");
  }
  if (options.connect_timeout_ms <= 0) {
    return absl::InvalidArgumentError("connect_timeout_ms: must be > 0");
  }
  if (options.io_timeout_ms <= 0) return absl::InvalidArgumentError("io_timeout_ms: must be > 0");
  bool name_ok = !options.name.empty();
  for (char c : options.name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) name_ok = false;
  }
  if (!name_ok) return absl::InvalidArgumentError("name: must be [a-z0-9_]+");

  auto impl = std::make_unique<Impl>();
  impl->master = memcached_create(nullptr);
  if (impl->master == nullptr) return absl::ResourceExhaustedError("memcached_create failed");
  for (size_t i = 0; i < options.servers.size(); ++i) {
    const std::string& server = options.servers[i];
    const size_t colon = server.rfind(':');
    int port = 0;
    if (colon != std::string::npos && colon > 0 && colon + 1 < server.size() &&
        server.size() - colon - 1 <= 5) {
      port = 0;
      for (size_t k = colon + 1; k < server.size(); ++k) {
        if (server[k] < '0' || server[k] > '9') {
          port = -1;
          break;
        }
        port = port * 10 + (server[k] - '0');
      }
    }
    if (port < 1 || port > 65535) {
      return absl::InvalidArgumentError("servers[" + std::to_string(i) +
                                        "]: must be host:port, got " + server);
    }
    const std::string host = server.substr(0, colon);
    memcached_return_t rc =
        memcached_server_add(impl->master, host.c_str(), static_cast<in_port_t>(port));
    if (rc != MEMCACHED_SUCCESS) {
      return absl::InvalidArgumentError("servers[" + std::to_string(i) +
                                        "]: " + memcached_strerror(impl->master, rc));
    }
  }
  const std::pair<memcached_behavior_t, uint64_t> behaviors[] = {
      {MEMCACHED_BEHAVIOR_KETAMA, 1},  // consistent hashing, libketama-compatible
      {MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1},
      {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
      {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, static_cast<uint64_t>(options.connect_timeout_ms)},
      {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, static_cast<uint64_t>(options.io_timeout_ms)},
      {MEMCACHED_BEHAVIOR_RCV_TIMEOUT, static_cast<uint64_t>(options.io_timeout_ms) * 1000},
      {MEMCACHED_BEHAVIOR_SND_TIMEOUT, static_cast<uint64_t>(options.io_timeout_ms) * 1000},
  };
  for (const auto& [behavior, value] : behaviors) {
    memcached_return_t rc = memcached_behavior_set(impl->master, behavior, value);
    if (rc != MEMCACHED_SUCCESS) {
      return absl::InternalError(std::string("memcached behavior: ") +
                                 memcached_strerror(impl->master, rc));
    }
  }
  impl->pool = memcached_pool_create(impl->master, 1, static_cast<uint32_t>(options.connections));
  if (impl->pool == nullptr) return absl::InternalError("memcached_pool_create failed");
  MetricsRegistry* metrics =
      options.metrics != nullptr ? options.metrics : MetricsRegistry::Default();
  const std::string labels = "cache=\"" + options.name + "\"";
  impl->hits =
      metrics->GetCounter("strata_cache_hits_total", "Cache reads that found the item", labels);
  impl->misses = metrics->GetCounter("strata_cache_misses_total",
                                     "Cache reads that found no live item", labels);
  return std::unique_ptr<MemcachedCache>(new MemcachedCache(std::move(impl)));
}

MemcachedCache::MemcachedCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MemcachedCache::~MemcachedCache() = default;

absl::StatusOr<std::string> MemcachedCache::Get(std::string_view key) {
  STRATA_ASSIGN_OR_RETURN(CacheItem item, impl_->GetOne(key));
  return std::move(item.value);
}

absl::StatusOr<CacheItem> MemcachedCache::Gets(std::string_view key) { return impl_->GetOne(key); }

absl::StatusOr<std::vector<std::optional<std::string>>> MemcachedCache::MultiGet(
    std::span<const std::string> keys) {
  STRATA_RETURN_IF_ERROR(ValidateMultiGet(keys));
  std::vector<std::string_view> distinct;
  {
    std::map<std::string_view, bool> seen;
    for (const std::string& key : keys) {
      if (seen.emplace(key, true).second) distinct.push_back(key);
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto found, impl_->Fetch(distinct));
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (const std::string& key : keys) {
    auto it = found.find(key);
    if (it == found.end()) {
      impl_->misses->Inc();
      out.emplace_back(std::nullopt);
    } else {
      impl_->hits->Inc();
      out.emplace_back(it->second.value);
    }
  }
  return out;
}

absl::Status MemcachedCache::Set(std::string_view key, std::string_view value, Millis ttl_ms) {
  STRATA_RETURN_IF_ERROR(ValidateCacheWrite(key, value, ttl_ms));
  Impl::Connection conn(impl_.get());
  if (conn.get() == nullptr) return absl::UnavailableError("memcached: no connection");
  memcached_return_t rc = memcached_set(conn.get(), key.data(), key.size(), value.data(),
                                        value.size(), Expiration(ttl_ms), 0);
  if (rc == MEMCACHED_SUCCESS) return absl::OkStatus();
  return Unavailable(conn.get(), rc, "set");
}

absl::Status MemcachedCache::Add(std::string_view key, std::string_view value, Millis ttl_ms) {
  STRATA_RETURN_IF_ERROR(ValidateCacheWrite(key, value, ttl_ms));
  Impl::Connection conn(impl_.get());
  if (conn.get() == nullptr) return absl::UnavailableError("memcached: no connection");
  memcached_return_t rc = memcached_add(conn.get(), key.data(), key.size(), value.data(),
                                        value.size(), Expiration(ttl_ms), 0);
  if (rc == MEMCACHED_SUCCESS) return absl::OkStatus();
  if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS) {
    return absl::AlreadyExistsError("key: already cached");
  }
  return Unavailable(conn.get(), rc, "add");
}

absl::Status MemcachedCache::CompareAndSet(std::string_view key, std::string_view value,
                                           uint64_t cas, Millis ttl_ms) {
  STRATA_RETURN_IF_ERROR(ValidateCacheWrite(key, value, ttl_ms));
  Impl::Connection conn(impl_.get());
  if (conn.get() == nullptr) return absl::UnavailableError("memcached: no connection");
  memcached_return_t rc = memcached_cas(conn.get(), key.data(), key.size(), value.data(),
                                        value.size(), Expiration(ttl_ms), 0, cas);
  if (rc == MEMCACHED_SUCCESS) return absl::OkStatus();
  if (rc == MEMCACHED_DATA_EXISTS) {
    return absl::FailedPreconditionError("cas: item changed since read");
  }
  if (rc == MEMCACHED_NOTFOUND) return absl::NotFoundError("key: not cached");
  return Unavailable(conn.get(), rc, "cas");
}

absl::Status MemcachedCache::Delete(std::string_view key) {
  STRATA_RETURN_IF_ERROR(ValidateCacheKey(key));
  Impl::Connection conn(impl_.get());
  if (conn.get() == nullptr) return absl::UnavailableError("memcached: no connection");
  memcached_return_t rc = memcached_delete(conn.get(), key.data(), key.size(), 0);
  if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND) return absl::OkStatus();
  return Unavailable(conn.get(), rc, "delete");
}

}  // namespace strata::store
