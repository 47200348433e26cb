// The job runner on the in-memory row store and the embedded queue, with the real asset
// service: jobs reach every selected asset once in effect, count exactly, dead-letter what
// cannot be processed, pause and resume, never overwrite concurrent production writes, and
// resume after the runner is stopped in the middle.
#include "strata/reprocess/job_runner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "strata/store/embedded_queue.h"
#include "strata/store/memory_row_store.h"

namespace strata::reprocess {
namespace {

constexpr char kType[] = R"({"schema":{"type":"object","required":["n","format"],
  "properties":{"n":{"type":"integer"},"format":{"type":"string","enum":["hd","4k"]},
  "status":{"type":"string"}}},"indexed":["/format","/n"]})";

class JobRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::EmbeddedQueueOptions qo;
    qo.metrics = &metrics_;
    qo.retention_interval_ms = 0;
    queue_ = std::move(*store::EmbeddedQueue::Open(&rows_, qo));
    assets_ = std::move(*assets::AssetService::Open(&rows_, queue_.get(), &clock_, &metrics_));
    ASSERT_TRUE(assets_->PutType("video", kType).ok());
    std::string body = "[";
    for (int i = 0; i < 300; ++i) {
      if (i > 0) body += ",";
      body += "{\"n\":" + std::to_string(i) + ",\"format\":\"" + (i % 3 == 0 ? "4k" : "hd") + "\"}";
    }
    body += "]";
    absl::StatusOr<assets::BatchResult> created = assets_->CreateBatch("video", body);
    ASSERT_TRUE(created.ok()) << created.status();
    for (const auto& id : created->ids) ids_.push_back(id->ToString());
    jobs_ = std::move(*JobStore::Open(&rows_, &clock_));
    StartRunner();
  }
  void StartRunner() {
    JobRunnerOptions o;
    o.poll_wait_ms = 20;
    o.state_poll_ms = 20;
    o.plan_page = 64;
    o.poll_batch = 16;
    auto r = JobRunner::Open(assets_.get(), queue_.get(), jobs_.get(), &clock_, o, &metrics_);
    ASSERT_TRUE(r.ok()) << r.status();
    runner_ = std::move(*r);
  }
  void TearDown() override {
    runner_.reset();
    assets_.reset();
    queue_.reset();
  }

  // Waits (up to 60 s of wall time) for the job to reach a final state.
  JobRecord WaitFinal(uint64_t id) {
    for (int i = 0; i < 6000; ++i) {
      absl::StatusOr<JobRecord> j = jobs_->Get(id);
      if (j.ok() && IsFinal(j->state)) return *j;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return *jobs_->Get(id);
  }
  assets::JsonValue Payload(const std::string& id) {
    return *assets::ParseJson(assets_->Get("video", id)->row.payload, "p");
  }

  SystemClock clock_;
  MetricsRegistry metrics_;
  store::MemoryRowStore rows_{&clock_};
  std::unique_ptr<store::EmbeddedQueue> queue_;
  std::unique_ptr<assets::AssetService> assets_;
  std::unique_ptr<JobStore> jobs_;
  std::unique_ptr<JobRunner> runner_;
  std::vector<std::string> ids_;
};

TEST_F(JobRunnerTest, ASetJobReachesEverySelectedAssetOnce) {
  absl::StatusOr<JobRecord> job = runner_->Submit(R"({"type":"video",
      "select":{"where":["/format=4k"]},
      "processor":{"kind":"set","path":"/status","value":"checked"},"concurrency":3})");
  ASSERT_TRUE(job.ok()) << job.status();
  JobRecord done = WaitFinal(job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded) << done.error;
  EXPECT_EQ(done.counts.selected, 100u);
  EXPECT_EQ(done.counts.processed, 100u);
  EXPECT_EQ(done.counts.changed, 100u);
  EXPECT_EQ(done.counts.dead_lettered, 0u);
  EXPECT_NE(metrics_.RenderPrometheus().find("strata_reprocess_job_assets{job=\"1\",state=\""
                                             "succeeded\",count=\"changed\"} 100"),
            std::string::npos);
  for (size_t i = 0; i < ids_.size(); ++i) {
    absl::StatusOr<assets::Asset> a = assets_->Get("video", ids_[i]);
    ASSERT_TRUE(a.ok());
    const bool selected = i % 3 == 0;
    EXPECT_EQ(a->row.version, selected ? 2u : 1u) << i;
    EXPECT_EQ(Payload(ids_[i]).Find("status") != nullptr, selected) << i;
  }
  // The same job again changes nothing.
  job = runner_->Submit(R"({"type":"video","select":{"where":["/format=4k"]},
      "processor":{"kind":"set","path":"/status","value":"checked"}})");
  ASSERT_TRUE(job.ok());
  done = WaitFinal(job->id);
  EXPECT_EQ(done.counts.unchanged, 100u);
  EXPECT_EQ(done.counts.changed, 0u);
}

TEST_F(JobRunnerTest, WhatCannotBeProcessedIsDeadLettered) {
  absl::StatusOr<JobRecord> job = runner_->Submit(R"({"type":"video",
      "select":{"where":["/n<10"]},
      "processor":{"kind":"set","path":"/format","value":"8k"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  JobRecord done = WaitFinal(job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.counts.dead_lettered, 10u);
  absl::StatusOr<std::vector<std::string>> dead = jobs_->DeadLetters(job->id, 100);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 10u);
  EXPECT_NE((*dead)[0].find("payload /format: enum"), std::string::npos) << (*dead)[0];
  for (int i = 0; i < 10; ++i) EXPECT_EQ(assets_->Get("video", ids_[i])->row.version, 1u);
}

// A schema change that existing assets violate is allowed; `validate` finds them.
TEST_F(JobRunnerTest, ValidateFindsAssetsThatViolateANewSchemaVersion) {
  ASSERT_TRUE(assets_
                  ->PutType("video", R"({"schema":{"type":"object","required":["n","format"],
      "properties":{"n":{"type":"integer","maximum":9},"format":{"type":"string",
      "enum":["hd","4k"]},"status":{"type":"string"}}},"indexed":["/format","/n"]})")
                  .ok());
  absl::StatusOr<JobRecord> job =
      runner_->Submit(R"({"type":"video","processor":{"kind":"validate"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  JobRecord done = WaitFinal(job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.counts.dead_lettered, 290u);  // n = 10..299
  EXPECT_EQ(done.counts.unchanged, 10u);
  absl::StatusOr<std::vector<std::string>> dead = jobs_->DeadLetters(job->id, 1);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_NE((*dead)[0].find("payload /n: maximum: must be <= 9"), std::string::npos);
  job = runner_->Submit(R"({"type":"video","processor":{"kind":"validate","schema_version":1}})");
  ASSERT_TRUE(job.ok()) << job.status();
  done = WaitFinal(job->id);
  EXPECT_EQ(done.counts.dead_lettered, 0u);
  EXPECT_EQ(done.counts.unchanged, 300u);
  EXPECT_EQ(
      runner_->Submit(R"({"type":"video","processor":{"kind":"validate","schema_version":5}})")
          .status()
          .message(),
      "processor/schema_version: type video has no version 5");
}

TEST_F(JobRunnerTest, BadJobsAreRefusedBeforeTheyStart) {
  EXPECT_EQ(runner_
                ->Submit(R"({"type":"video","select":{"where":["/status=x"]},
      "processor":{"kind":"remove","path":"/x"}})")
                .status()
                .message()
                .substr(0, 33),
            "where: /status is not indexed in ");
  EXPECT_TRUE(absl::IsNotFound(
      runner_->Submit(R"({"type":"nope","processor":{"kind":"remove","path":"/x"}})").status()));
}

TEST_F(JobRunnerTest, DryRunShowsBeforeAndAfterAndWritesNothing) {
  absl::StatusOr<JobSpec> spec = ParseJobSpec(R"({"type":"video","dry_run":{"sample":4},
      "select":{"where":["/n<6"]},"processor":{"kind":"map","path":"/format",
      "table":{"4k":"hd","hd":"8k"}}})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<std::vector<DryRunItem>> items = runner_->DryRun(*spec);
  ASSERT_TRUE(items.ok()) << items.status();
  ASSERT_EQ(items->size(), 4u);
  // By /n (the driving index), newest first within a value: n = 0, 1, 2, 3. 0 and 3 are 4k
  // (-> hd); 1 and 2 are hd (-> 8k, which the schema's enum refuses).
  EXPECT_EQ((*items)[0].outcome, "changed");
  EXPECT_EQ((*items)[0].before, R"({"n":0,"format":"4k"})");
  EXPECT_EQ((*items)[0].after, R"({"n":0,"format":"hd"})");
  EXPECT_EQ((*items)[1].outcome, "error");
  EXPECT_EQ((*items)[1].error, "payload /format: enum: must be one of the listed values");
  EXPECT_EQ((*items)[1].after, "");
  for (const std::string& id : ids_) EXPECT_EQ(assets_->Get("video", id)->row.version, 1u);
  absl::StatusOr<std::vector<JobRecord>> jobs = jobs_->List(10);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
  EXPECT_EQ(runner_
                ->Submit(R"({"type":"video","dry_run":{"sample":3},
      "processor":{"kind":"remove","path":"/x"}})")
                .status()
                .message(),
            "dry_run: a dry run is not a job (use DryRun)");
}

// Paused, the job makes no progress; resumed, it finishes with exact counts. Production
// writes during the job are never overwritten.
TEST_F(JobRunnerTest, PauseResumeAndConcurrentProductionWrites) {
  absl::StatusOr<JobRecord> job = runner_->Submit(R"({"type":"video",
      "processor":{"kind":"set","path":"/status","value":"done"},"rate":200,"concurrency":2})");
  ASSERT_TRUE(job.ok()) << job.status();
  // Production writes to every tenth asset while the job runs.
  std::thread client([&] {
    for (size_t i = 0; i < ids_.size(); i += 10) {
      absl::StatusOr<assets::Asset> a =
          assets_->Patch("video", ids_[i], R"({"n":-1})", std::nullopt);
      EXPECT_TRUE(a.ok()) << a.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  for (int i = 0; i < 1000 && jobs_->Get(job->id)->counts.processed == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(runner_->Pause(job->id).ok());
  // In-flight batches finish: wait until the count holds still for 300 ms.
  uint64_t at_pause = jobs_->Get(job->id)->counts.processed;
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const uint64_t now = jobs_->Get(job->id)->counts.processed;
    if (now == at_pause) break;
    at_pause = now;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(jobs_->Get(job->id)->counts.processed, at_pause);
  EXPECT_EQ(jobs_->Get(job->id)->state, JobState::kPaused);
  EXPECT_LT(at_pause, 300u);
  ASSERT_TRUE(runner_->Resume(job->id).ok());
  client.join();
  JobRecord done = WaitFinal(job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.counts.processed, 300u);
  EXPECT_EQ(done.counts.changed, 300u);
  for (size_t i = 0; i < ids_.size(); ++i) {
    assets::JsonValue p = Payload(ids_[i]);
    ASSERT_NE(p.Find("status"), nullptr) << i;
    if (i % 10 == 0) {
      EXPECT_EQ(p.Find("n")->int_value(), -1) << i;  // not overwritten
    }
  }
  EXPECT_TRUE(absl::IsFailedPrecondition(runner_->Resume(done.id).status()));
}

// Stopped in the middle (as at a shutdown), the job resumes when a runner opens again, and
// each asset is processed once in effect.
TEST_F(JobRunnerTest, ResumesAfterTheRunnerStops) {
  absl::StatusOr<JobRecord> job = runner_->Submit(R"({"type":"video",
      "processor":{"kind":"set","path":"/status","value":"done"},"rate":300})");
  ASSERT_TRUE(job.ok()) << job.status();
  for (int i = 0; i < 1000 && jobs_->Get(job->id)->counts.processed < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  runner_.reset();
  const JobRecord stopped = *jobs_->Get(job->id);
  EXPECT_FALSE(IsFinal(stopped.state));
  EXPECT_LT(stopped.counts.processed, 300u);
  StartRunner();
  JobRecord done = WaitFinal(job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.counts.changed, 300u);
  for (const std::string& id : ids_) EXPECT_EQ(assets_->Get("video", id)->row.version, 2u);
}

TEST_F(JobRunnerTest, CancelStopsAJob) {
  absl::StatusOr<JobRecord> job = runner_->Submit(R"({"type":"video",
      "processor":{"kind":"set","path":"/status","value":"done"},"rate":200})");
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(runner_->Cancel(job->id).ok());
  JobRecord done = WaitFinal(job->id);
  EXPECT_EQ(done.state, JobState::kCancelled);
  // Workers notice within a state poll (20 ms here) and one message; on a loaded machine
  // that can take longer, so wait (bounded) for the count to settle, then check it stays.
  uint64_t processed = jobs_->Get(job->id)->counts.processed;
  for (int i = 0; i < 40; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const uint64_t now = jobs_->Get(job->id)->counts.processed;
    if (now == processed) break;
    processed = now;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(jobs_->Get(job->id)->counts.processed, processed);
  EXPECT_LT(processed, 300u);
}

}  // namespace
}  // namespace strata::reprocess
