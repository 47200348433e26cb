#include "strata/base/ttl.h"

#include <gtest/gtest.h>

namespace strata {
namespace {

constexpr Millis kStamp = 1'700'000'000'000;
constexpr Millis kDay = 24LL * 3600 * 1000;

TEST(Ttl, ZeroTtlNeverExpires) {
  EXPECT_FALSE(TtlExpired(kStamp, 0, kStamp));
  EXPECT_FALSE(TtlExpired(kStamp, 0, kStamp + 1000 * 365 * kDay));
  EXPECT_FALSE(TtlExpired(0, 0, INT64_MAX));
  EXPECT_EQ(TtlExpiresAt(kStamp, 0), 0);
}

TEST(Ttl, NegativeTtlNeverExpires) {
  EXPECT_FALSE(TtlExpired(kStamp, -1, kStamp + kDay));
  EXPECT_EQ(TtlExpiresAt(kStamp, -1), 0);
}

TEST(Ttl, ExpiredExactlyAtTheBoundary) {
  EXPECT_FALSE(TtlExpired(kStamp, kDay, kStamp + kDay - 1));
  EXPECT_TRUE(TtlExpired(kStamp, kDay, kStamp + kDay));
  EXPECT_TRUE(TtlExpired(kStamp, kDay, kStamp + kDay + 1));
  EXPECT_EQ(TtlExpiresAt(kStamp, kDay), kStamp + kDay);
}

TEST(Ttl, OneMillisecondTtl) {
  EXPECT_FALSE(TtlExpired(kStamp, 1, kStamp));
  EXPECT_TRUE(TtlExpired(kStamp, 1, kStamp + 1));
}

TEST(Ttl, StampedInTheFutureIsNotExpired) {
  // A clock that went back, or an event time ahead of the server's clock.
  EXPECT_FALSE(TtlExpired(kStamp, kDay, kStamp - kDay));
}

TEST(Ttl, EpochAndZeroStamp) {
  EXPECT_TRUE(TtlExpired(0, 1, 1));
  EXPECT_FALSE(TtlExpired(0, 1, 0));
  EXPECT_EQ(TtlExpiresAt(0, 5), 5);
}

static_assert(TtlExpired(10, 5, 15) && !TtlExpired(10, 5, 14) && !TtlExpired(10, 0, 100));

}  // namespace
}  // namespace strata
