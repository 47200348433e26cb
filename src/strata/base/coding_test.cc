#include "strata/base/coding.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace strata::coding {
namespace {

TEST(Coding, VarintRoundTripsBoundaries) {
  std::vector<uint64_t> values = {0, 1, 127, 128, 16383, 16384, uint64_t{1} << 35,
                                  std::numeric_limits<uint64_t>::max()};
  std::string buf;
  for (uint64_t v : values) PutVarint64(&buf, v);
  std::string_view in = buf;
  for (uint64_t v : values) {
    uint64_t got = 0;
    ASSERT_TRUE(GetVarint64(&in, &got));
    EXPECT_EQ(got, v);
  }
  EXPECT_TRUE(in.empty());
}

// The bytes are part of every on-disk format (docs/formats.md): pin them, not just the round
// trip.
TEST(Coding, VarintBytesAreLeb128) {
  const std::pair<uint64_t, std::string> cases[] = {
      {0, std::string(1, '\0')},
      {1, "\x01"},
      {127, "\x7f"},
      {128, "\x80\x01"},
      {300, "\xac\x02"},
      {16383, "\xff\x7f"},
      {16384, "\x80\x80\x01"},
      {uint64_t{1} << 63, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"},
      {std::numeric_limits<uint64_t>::max(), "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"},
  };
  for (const auto& [v, bytes] : cases) {
    std::string out = "prefix";
    PutVarint64(&out, v);
    EXPECT_EQ(out, "prefix" + bytes) << v;
  }
}

TEST(Coding, VarintLengthMatchesTheBytesWritten) {
  std::vector<uint64_t> values = {0, std::numeric_limits<uint64_t>::max()};
  for (int bits = 1; bits < 64; ++bits) {
    values.push_back((uint64_t{1} << bits) - 1);  // the largest of each width
    values.push_back(uint64_t{1} << bits);        // the smallest of the next
  }
  std::mt19937_64 rng(11);
  for (int i = 0; i < 1000; ++i) values.push_back(rng() >> (rng() % 64));
  for (uint64_t v : values) {
    std::string out;
    PutVarint64(&out, v);
    EXPECT_EQ(VarintLength64(v), out.size()) << v;
  }
  EXPECT_EQ(VarintLength64(0), 1u);
  EXPECT_EQ(VarintLength64(127), 1u);
  EXPECT_EQ(VarintLength64(128), 2u);
  EXPECT_EQ(VarintLength64(std::numeric_limits<uint64_t>::max()), 10u);
}

TEST(Coding, VarintRejectsTruncatedAndOverlong) {
  std::string buf;
  PutVarint64(&buf, std::numeric_limits<uint64_t>::max());
  for (size_t n = 0; n < buf.size(); ++n) {
    std::string_view in(buf.data(), n);
    uint64_t v;
    EXPECT_FALSE(GetVarint64(&in, &v)) << n;
  }
  std::string overlong(11, '\xff');
  std::string_view in = overlong;
  uint64_t v;
  EXPECT_FALSE(GetVarint64(&in, &v));
}

TEST(Coding, OrderedInt64SortsLikeNumbers) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    int64_t a = static_cast<int64_t>(rng()), b = static_cast<int64_t>(rng());
    std::string ea, eb;
    PutOrderedInt64(&ea, a);
    PutOrderedInt64(&eb, b);
    EXPECT_EQ(a < b, ea < eb);
    std::string_view in = ea;
    int64_t back;
    ASSERT_TRUE(GetOrderedInt64(&in, &back));
    EXPECT_EQ(back, a);
  }
}

TEST(Coding, ZigZagRoundTrips) {
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(UnZigZag(ZigZag(v)), v);
  }
  EXPECT_EQ(ZigZag(-1), 1u);
  EXPECT_EQ(ZigZag(1), 2u);
}

TEST(Coding, LengthPrefixedRejectsShortInput) {
  std::string buf;
  PutLengthPrefixed(&buf, "hello");
  std::string_view in(buf.data(), buf.size() - 1);
  std::string_view s;
  EXPECT_FALSE(GetLengthPrefixed(&in, &s));
  in = buf;
  ASSERT_TRUE(GetLengthPrefixed(&in, &s));
  EXPECT_EQ(s, "hello");
}

}  // namespace
}  // namespace strata::coding
