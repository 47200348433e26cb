#include "strata/reprocess/job_store.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "strata/store/memory_row_store.h"

namespace strata::reprocess {
namespace {

JobSpec Spec() {
  return *ParseJobSpec(R"({"type":"video","processor":{"kind":"remove","path":"/x"}})");
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = JobStore::Open(&rows_, &clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    jobs_ = std::move(*s);
  }
  ManualClock clock_{1'765'000'000'000};
  store::MemoryRowStore rows_{&clock_};
  std::unique_ptr<JobStore> jobs_;
};

TEST_F(JobStoreTest, CreatesGetsAndListsNewestFirst) {
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<JobRecord> j = jobs_->Create(Spec());
    ASSERT_TRUE(j.ok()) << j.status();
    EXPECT_EQ(j->id, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(j->state, JobState::kPlanning);
  }
  EXPECT_EQ(jobs_->Get(3)->spec.type, "video");
  EXPECT_EQ(jobs_->Get(9).status().message(), "job: no job 9");
  std::vector<uint64_t> ids;
  absl::StatusOr<std::vector<JobRecord>> newest = jobs_->List(3);
  ASSERT_TRUE(newest.ok());
  for (const JobRecord& j : *newest) ids.push_back(j.id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{5, 4, 3}));
  ids.clear();
  absl::StatusOr<std::vector<JobRecord>> older = jobs_->List(10, 3);
  ASSERT_TRUE(older.ok());
  for (const JobRecord& j : *older) ids.push_back(j.id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{2, 1}));
}

TEST_F(JobStoreTest, TransitionsAreCheckedAndCountsAdd) {
  const uint64_t id = jobs_->Create(Spec())->id;
  clock_.Advance(10);
  absl::StatusOr<JobRecord> j = jobs_->Transition(id, JobState::kRunning);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->updated_at, 1'765'000'000'010);
  EXPECT_TRUE(jobs_->Transition(id, JobState::kPaused).ok());
  EXPECT_TRUE(jobs_->Transition(id, JobState::kCancelled).ok());
  EXPECT_EQ(jobs_->Transition(id, JobState::kRunning).status().message(),
            "state: a cancelled job cannot become running");
  EXPECT_EQ(jobs_->Get(id)->state, JobState::kCancelled);
  JobCounts d;
  d.processed = 3;
  d.changed = 2;
  d.unchanged = 1;
  ASSERT_TRUE(jobs_->AddCounts(id, d).ok());
  ASSERT_TRUE(jobs_->AddCounts(id, d).ok());
  EXPECT_EQ(jobs_->Get(id)->counts.processed, 6u);
  EXPECT_EQ(jobs_->Get(id)->counts.unchanged, 2u);
}

// Concurrent creators get distinct ids and concurrent counters lose no addition: both rest
// on compare-and-set, not on a lock in this process.
TEST_F(JobStoreTest, ConcurrentCreatesAndCountsLoseNothing) {
  const uint64_t id = jobs_->Create(Spec())->id;
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> made(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      JobCounts one;
      one.processed = 1;
      for (int i = 0; i < 50; ++i) {
        absl::StatusOr<JobRecord> j = jobs_->Create(Spec());
        ASSERT_TRUE(j.ok()) << j.status();
        made[t].push_back(j->id);
        ASSERT_TRUE(jobs_->AddCounts(id, one).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> all;
  for (const auto& m : made) all.insert(m.begin(), m.end());
  EXPECT_EQ(all.size(), 200u);
  EXPECT_EQ(*all.begin(), 2u);
  EXPECT_EQ(*all.rbegin(), 201u);
  EXPECT_EQ(jobs_->Get(id)->counts.processed, 200u);
}

}  // namespace
}  // namespace strata::reprocess
