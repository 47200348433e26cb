// The cache interface: a byte-string key/value cache with TTL, compare-and-set and
// multi-get -- memcached's model, so it maps 1:1 onto memcached (libmemcached, the engine
// behind EVCache) and onto the in-process sharded LRU of the embedded deployment.
//
// Contracts common to all methods:
//  * A cache may forget any item at any time (eviction, a server restart): every read can
//    miss, and callers must be able to rebuild a value from the row store. Nothing here is
//    durable.
//  * Keys are 1..250 bytes of printable ASCII without spaces (0x21..0x7e), memcached's rule;
//    values are at most kMaxCacheValueBytes of arbitrary bytes. Otherwise InvalidArgument,
//    naming the field ("key", "keys[3]", "value", "ttl_ms").
//  * ttl_ms > 0 makes an item expire that many milliseconds after it is stored; 0 = no
//    expiry. Backends with second resolution (memcached) round up to whole seconds and may
//    expire an item up to one second early or late; the in-process cache is exact against
//    its Clock. An expired item reads as a miss.
//  * CAS tokens (from Gets) change whenever the item is stored again; CompareAndSet stores
//    only if the item still carries the token, which makes read-modify-write safe between
//    servers (no lost update).
//  * Errors are values: NotFound for a miss, FailedPrecondition for a lost CAS race,
//    AlreadyExists for Add over an existing item, Unavailable when a remote server cannot be
//    reached. Nothing throws.
//  * Every method is thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"

namespace strata::store {

inline constexpr size_t kMaxCacheKeyBytes = 250;
// memcached's default item limit is 1 MiB including its item header; this leaves room.
inline constexpr size_t kMaxCacheValueBytes = 1'000'000;
// Most keys one MultiGet may ask for.
inline constexpr size_t kMaxMultiGetKeys = 1000;

struct CacheItem {
  std::string value;
  uint64_t cas = 0;  // token for CompareAndSet; never 0 for a stored item
};

class Cache {
 public:
  virtual ~Cache() = default;

  // The value, or NotFound on a miss.
  virtual absl::StatusOr<std::string> Get(std::string_view key) = 0;
  // The value with its CAS token, or NotFound on a miss.
  virtual absl::StatusOr<CacheItem> Gets(std::string_view key) = 0;
  // For each key (in order; repeats allowed), its value or nullopt on a miss.
  // 0..kMaxMultiGetKeys keys. When only some of several servers answer, keys of the others
  // read as misses (best effort); Unavailable when the request fails as a whole.
  virtual absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      std::span<const std::string> keys) = 0;

  // Stores the value, replacing any previous one.
  virtual absl::Status Set(std::string_view key, std::string_view value, Millis ttl_ms = 0) = 0;
  // Stores the value only if the key holds no item: AlreadyExists otherwise.
  virtual absl::Status Add(std::string_view key, std::string_view value, Millis ttl_ms = 0) = 0;
  // Stores the value only if the item still has `cas` (from Gets): OK when stored,
  // FailedPrecondition when it was stored again since, NotFound when it is gone.
  virtual absl::Status CompareAndSet(std::string_view key, std::string_view value, uint64_t cas,
                                     Millis ttl_ms = 0) = 0;
  // Removes the item; removing an absent key is OK.
  virtual absl::Status Delete(std::string_view key) = 0;
};

// Argument checks shared by every backend. `field` names the key in messages ("key",
// "keys[3]").
absl::Status ValidateCacheKey(std::string_view key, std::string_view field = "key");
absl::Status ValidateCacheWrite(std::string_view key, std::string_view value, Millis ttl_ms);
absl::Status ValidateMultiGet(std::span<const std::string> keys);

}  // namespace strata::store
