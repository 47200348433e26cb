#include "strata/base/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace strata {
namespace {

TEST(Utf8Test, SequenceLengths) {
  EXPECT_EQ(Utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xc3\xa9", 0), 2u);          // é
  EXPECT_EQ(Utf8SequenceLength("\xe2\x82\xac", 0), 3u);      // €
  EXPECT_EQ(Utf8SequenceLength("\xf0\x9f\x8e\xac", 0), 4u);  // 🎬
  EXPECT_EQ(Utf8SequenceLength("\xf4\x8f\xbf\xbf", 0), 4u);  // U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("x\xc3\xa9", 1), 2u);
}

TEST(Utf8Test, WhatIsNotUtf8) {
  for (std::string bad :
       {std::string("\x80"), std::string("\xbf"), std::string("\xff"),
        std::string("\xf8\x88\x80\x80\x80"), std::string("\xc3"), std::string("\xe2\x82"),
        std::string("\xc0\xaf"), std::string("\xe0\x80\xaf"), std::string("\xed\xa0\x80"),
        std::string("\xf4\x90\x80\x80"), std::string("\xc3\x28")}) {
    EXPECT_EQ(Utf8SequenceLength(bad, 0), 0u) << bad.size();
    EXPECT_FALSE(IsValidUtf8(bad));
  }
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("s\xc3\xa9ries/\xe6\x9d\xb1\xe4\xba\xac"));
  EXPECT_FALSE(IsValidUtf8("ok\xe2\x82"));  // cut short at the end
}

}  // namespace
}  // namespace strata
