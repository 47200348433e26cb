// Asset ids: UUID version 7 (RFC 9562), which sort by creation time as bytes and as their
// canonical lower-case text, and an id generator that is monotonic within one millisecond
// by the RFC's fixed-length dedicated counter method (section 6.2, method 1).
//
// Layout of the 128 bits (big-endian):
//   48 bits  unix_ts_ms
//    4 bits  version (0111)
//   12 bits  counter, high part   } a 42-bit counter, seeded at random (top bit 0) on each
//    2 bits  variant (10)         } new millisecond and incremented for every further id in
//   30 bits  counter, low part    } the same millisecond
//   32 bits  random
// When the counter would overflow, or the clock goes backwards, the generator moves its
// timestamp forward by one millisecond (RFC 9562 6.2 allows this), so ids from one generator
// are strictly increasing, whatever the clock does.
//
// Thread safety: AssetIdGenerator is thread-safe; AssetId is a value.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "strata/base/clock.h"

namespace strata::assets {

struct AssetId {
  std::array<uint8_t, 16> bytes{};

  // The creation time, milliseconds since the epoch (the top 48 bits).
  Millis time() const;
  // Canonical 8-4-4-4-12 lower-case hex.
  std::string ToString() const;
  // The same 36 characters written to `out` (no terminator, no allocation).
  void Format(char out[36]) const;
  std::string_view view() const {
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  // The 16 bytes, or nullopt for another length.
  static std::optional<AssetId> FromBytes(std::string_view b);
  // Canonical text (case-insensitive hex); nullopt if malformed or not version 7.
  static std::optional<AssetId> Parse(std::string_view text);
  // The smallest possible id of millisecond `t` (timestamp, all other bits 0): every id
  // made at or after `t` is >= it, every id made before is < it. For time-range bounds.
  static AssetId MinForTime(Millis t);

  auto operator<=>(const AssetId&) const = default;
};

class AssetIdGenerator {
 public:
  // `clock` must outlive the generator; `seed` fixes the random bits (tests), 0 = random.
  explicit AssetIdGenerator(Clock* clock, uint64_t seed = 0);

  AssetId Next();
  // `n` consecutive ids under one lock (a batch create).
  void NextMany(size_t n, AssetId* out);

 private:
  AssetId NextLocked();

  Clock* const clock_;
  std::mutex mu_;
  std::mt19937_64 random_;  // guarded by mu_
  Millis last_ms_ = 0;      // guarded by mu_
  uint64_t counter_ = 0;    // 42 bits; guarded by mu_
};

}  // namespace strata::assets
