#include "strata/store/cache.h"

#include <string>

namespace strata::store {

absl::Status ValidateCacheKey(std::string_view key, std::string_view field) {
  bool ok = !key.empty() && key.size() <= kMaxCacheKeyBytes;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) ok = false;
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(std::string(field) +
                                    ": must be 1..250 bytes of printable ASCII without spaces");
}

absl::Status ValidateCacheWrite(std::string_view key, std::string_view value, Millis ttl_ms) {
  if (absl::Status s = ValidateCacheKey(key); !s.ok()) return s;
  if (value.size() > kMaxCacheValueBytes) {
    return absl::InvalidArgumentError("value: larger than 1000000 bytes");
  }
  if (ttl_ms < 0) return absl::InvalidArgumentError("ttl_ms: must be >= 0");
  return absl::OkStatus();
}

absl::Status ValidateMultiGet(std::span<const std::string> keys) {
  if (keys.size() > kMaxMultiGetKeys) {
    return absl::InvalidArgumentError("keys: more than 1000 keys");
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (absl::Status s = ValidateCacheKey(keys[i], "keys[" + std::to_string(i) + "]"); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::store
