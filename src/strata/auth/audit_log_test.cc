#include "strata/auth/audit_log.h"

#include <gtest/gtest.h>

#include "strata/store/memory_row_store.h"

namespace strata::auth {
namespace {

constexpr Millis kDay = 86'400'000;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = AuditLog::Open(&rows_, &clock_, {.retention_ms = 3 * kDay}, &metrics_);
    ASSERT_TRUE(s.ok()) << s.status();
    log_ = std::move(*s);
  }
  AuditRecord Record(std::string action, std::string target = "t") {
    AuditRecord r;
    r.key = "00112233445566ff";
    r.action = std::move(action);
    r.target = std::move(target);
    r.result = "ok";
    r.status = 200;
    return r;
  }
  ManualClock clock_{1'765'000'000'000};
  store::MemoryRowStore rows_{&clock_};
  MetricsRegistry metrics_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditLogTest, ListsNewestFirstAcrossDays) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(log_->Append(Record("a" + std::to_string(i))).ok());
    clock_.Advance(kDay / 2);  // two records a day: the list crosses partitions
  }
  absl::StatusOr<std::vector<AuditRecord>> all = log_->Recent(100);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[0].action, "a4");
  EXPECT_EQ((*all)[4].action, "a0");
  EXPECT_EQ((*all)[4].time, 1'765'000'000'000);
  EXPECT_EQ((*all)[0].key, "00112233445566ff");
  EXPECT_EQ((*all)[0].status, 200);
  absl::StatusOr<std::vector<AuditRecord>> two = log_->Recent(2);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].action, "a3");
  EXPECT_TRUE(absl::IsInvalidArgument(log_->Recent(0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(log_->Recent(1001).status()));
  EXPECT_NE(metrics_.RenderPrometheus().find("strata_audit_records_total 5"), std::string::npos);
}

TEST_F(AuditLogTest, RecordsOfTheSameMillisecondAreAllKeptInOrder) {
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(log_->Append(Record("r" + std::to_string(i))).ok());
  absl::StatusOr<std::vector<AuditRecord>> all = log_->Recent(1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ((*all)[49 - i].action, "r" + std::to_string(i));
}

TEST_F(AuditLogTest, RecordsExpireAfterTheRetention) {
  ASSERT_TRUE(log_->Append(Record("old")).ok());
  clock_.Advance(2 * kDay);
  ASSERT_TRUE(log_->Append(Record("new")).ok());
  EXPECT_EQ(log_->Recent(10)->size(), 2u);
  clock_.Advance(kDay);  // "old" is 3 days old now
  absl::StatusOr<std::vector<AuditRecord>> left = log_->Recent(10);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].action, "new");
}

TEST_F(AuditLogTest, LongFieldsAreCutAndAFailedStoreIsCounted) {
  AuditRecord r = Record("x", std::string(5000, 't'));
  r.detail = std::string(5000, 'd');
  ASSERT_TRUE(log_->Append(r).ok());
  absl::StatusOr<std::vector<AuditRecord>> got = log_->Recent(1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)[0].target.size(), 1024u);
  EXPECT_EQ((*got)[0].detail.size(), 512u);

  RandomSource broken = [](std::span<uint8_t>) { return absl::InternalError("no entropy"); };
  auto failing = AuditLog::Open(&rows_, &clock_, {}, &metrics_, broken);
  ASSERT_TRUE(failing.ok());
  EXPECT_FALSE((*failing)->Append(Record("y")).ok());
  EXPECT_NE(metrics_.RenderPrometheus().find("strata_audit_write_errors_total 1"),
            std::string::npos);
}

TEST(AuditRecordTest, RoundTrips) {
  AuditRecord r{123, "anonymous", "member.erase", "/v1/members/7", "error", 503, "why"};
  absl::StatusOr<AuditRecord> back = DecodeAuditRecord(EncodeAuditRecord(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->time, 123);
  EXPECT_EQ(back->key, "anonymous");
  EXPECT_EQ(back->target, "/v1/members/7");
  EXPECT_EQ(back->result, "error");
  EXPECT_EQ(back->status, 503);
  EXPECT_EQ(back->detail, "why");
  EXPECT_TRUE(absl::IsDataLoss(DecodeAuditRecord("").status()));
  EXPECT_TRUE(absl::IsDataLoss(DecodeAuditRecord(EncodeAuditRecord(r) + "!").status()));
}

}  // namespace
}  // namespace strata::auth
