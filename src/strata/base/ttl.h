// Time to live: the one rule for when something stamped at a time with a TTL has expired, used
// by every table and object that carries a TTL (viewing records and chunks, language changes,
// media objects). Pure functions; thread-safe.
//
// The rule: a TTL of 0 (or less) means "never expires"; otherwise the thing expires at
// `stamped_at + ttl_ms` and is expired from that instant on (the boundary is expired). Callers
// keep `stamped_at + ttl_ms` within int64 (times are validated to years 0..~9999 and TTLs are
// durations of days: the sum is far from the limit).
#pragma once

#include "strata/base/clock.h"

namespace strata {

// True if something stamped at `stamped_at` with `ttl_ms` has expired at `now`.
constexpr bool TtlExpired(Millis stamped_at, Millis ttl_ms, Millis now) {
  return ttl_ms > 0 && stamped_at + ttl_ms <= now;
}

// The instant it expires, as stores take it: 0 = never (ttl_ms <= 0).
constexpr Millis TtlExpiresAt(Millis stamped_at, Millis ttl_ms) {
  return ttl_ms > 0 ? stamped_at + ttl_ms : 0;
}

}  // namespace strata
