#include "strata/assets/index_key.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace strata::assets {
namespace {

std::string Enc(const JsonValue& v) { return *EncodeIndexValue(v); }

TEST(IndexKeyTest, NumbersSortByValue) {
  const std::vector<double> sorted = {-1e300, -1000.5, -1, -0.25, 0,   1e-9, 0.5,
                                      1,      2,       10, 599,   600, 1e15, 1e300};
  for (size_t i = 1; i < sorted.size(); ++i) {
    EXPECT_LT(Enc(JsonValue::Double(sorted[i - 1])), Enc(JsonValue::Double(sorted[i])))
        << sorted[i - 1] << " vs " << sorted[i];
  }
  EXPECT_EQ(Enc(JsonValue::Double(-0.0)), Enc(JsonValue::Int(0)));
  EXPECT_EQ(Enc(JsonValue::Int(600)), Enc(JsonValue::Double(600.0)));
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> dist(-1e6, 1e6);
  for (int i = 0; i < 10000; ++i) {
    const double a = dist(rng), b = dist(rng);
    ASSERT_EQ(a < b, Enc(JsonValue::Double(a)) < Enc(JsonValue::Double(b))) << a << " " << b;
  }
}

TEST(IndexKeyTest, StringsSortBytewiseAndNoneIsAPrefixOfAnother) {
  const std::vector<std::string> sorted = {"",
                                           std::string("\0", 1),
                                           std::string("\0\0", 2),
                                           "a",
                                           std::string("a\0", 2),
                                           "a\x01",
                                           "ab",
                                           "b",
                                           "\xff",
                                           "\xff\xff"};
  for (size_t i = 1; i < sorted.size(); ++i) {
    const std::string a = Enc(JsonValue::String(sorted[i - 1]));
    const std::string b = Enc(JsonValue::String(sorted[i]));
    EXPECT_LT(a, b) << i;
    EXPECT_NE(b.compare(0, a.size(), a), 0) << "prefix at " << i;
  }
  // A prefix query's bound covers exactly the strings that start with it.
  std::string p;
  AppendIndexStringPrefix(&p, "ab");
  const std::string end = PrefixSuccessor(p);
  for (const char* s : {"ab", "abc", "ab\xff"}) {
    const std::string e = Enc(JsonValue::String(s));
    EXPECT_TRUE(e >= p && e < end) << s;
  }
  for (const char* s : {"a", "ac", "b", "aa\xff"}) {
    const std::string e = Enc(JsonValue::String(s));
    EXPECT_FALSE(e >= p && e < end) << s;
  }
}

TEST(IndexKeyTest, KindsDoNotInterleaveAndDecodeRoundTrips) {
  EXPECT_LT(Enc(JsonValue::Null()), Enc(JsonValue::Bool(false)));
  EXPECT_LT(Enc(JsonValue::Bool(true)), Enc(JsonValue::Double(-1e308)));
  EXPECT_LT(Enc(JsonValue::Double(1e308)), Enc(JsonValue::String("")));
  EXPECT_FALSE(EncodeIndexValue(JsonValue::Array()).has_value());
  EXPECT_FALSE(EncodeIndexValue(JsonValue::Object()).has_value());
  for (const JsonValue& v : {JsonValue::Null(), JsonValue::Bool(true), JsonValue::Double(-2.5),
                             JsonValue::String(std::string("x\0y", 3))}) {
    std::string e = Enc(v) + "tail";
    std::string_view in(e);
    std::optional<JsonValue> back = DecodeIndexValue(&in);
    ASSERT_TRUE(back.has_value());
    EXPECT_TRUE(*back == v);
    EXPECT_EQ(in, "tail");
  }
  // Long strings are indexed by their prefix.
  const std::string long_a(kMaxIndexedStringBytes + 10, 'a');
  EXPECT_EQ(Enc(JsonValue::String(long_a)),
            Enc(JsonValue::String(long_a.substr(0, kMaxIndexedStringBytes))));
}

TEST(IndexKeyTest, PrefixSuccessor) {
  EXPECT_EQ(PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(PrefixSuccessor(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixSuccessor("\xff\xff"), "");
}

}  // namespace
}  // namespace strata::assets
