#include "strata/server/file_limit.h"

#include "gtest/gtest.h"

namespace strata::server {
namespace {

TEST(FileLimitTest, RaisesTheSoftLimitToTheHardOne) {
  FileLimitPlan p = PlanFileLimit(1024, 524288, 1024);
  EXPECT_EQ(p.raise_to, 524288u);
  EXPECT_EQ(p.warning, "");
  // Already there: nothing to do.
  p = PlanFileLimit(524288, 524288, 1024);
  EXPECT_EQ(p.raise_to, 0u);
  EXPECT_EQ(p.warning, "");
  // An unlimited hard limit is capped at the kernel's usual fs.nr_open.
  p = PlanFileLimit(1024, UINT64_MAX, 1024);
  EXPECT_EQ(p.raise_to, kUnlimitedFileDescriptors);
}

TEST(FileLimitTest, WarnsWhenEvenTheHardLimitIsTooLowForMaxConnections) {
  FileLimitPlan p = PlanFileLimit(1024, 4096, 10'000);
  EXPECT_EQ(p.raise_to, 4096u);
  EXPECT_NE(p.warning.find("max_connections: 10000 connections need about 11024"),
            std::string::npos)
      << p.warning;
  EXPECT_NE(p.warning.find("open-file limit is 4096"), std::string::npos) << p.warning;
  // No connection limit: nothing to compare with.
  EXPECT_EQ(PlanFileLimit(1024, 1024, 0).warning, "");
  // The default 1024 connections under a soft and hard limit of 1024: warned.
  EXPECT_NE(PlanFileLimit(1024, 1024, 1024).warning, "");
}

}  // namespace
}  // namespace strata::server
