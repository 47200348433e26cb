// The job runner on the in-memory row store and the embedded queue, with the real asset
// service: jobs reach every selected asset once in effect, count exactly, dead-letter what
// cannot be processed, pause and resume, never overwrite concurrent production writes, and
// resume after the runner is stopped in the middle.
#include "strata/reprocess/job_runner.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "strata/http/http_server.h"
#include "strata/reprocess/avro_file.h"
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
  void StartRunner(std::function<LoadSample()> load_probe = nullptr,
                   ThrottleOptions throttle = JobRunnerOptions::DefaultJobThrottle(),
                   std::function<bool()> store_stalled = nullptr, Millis stall_wait_max_ms = 0,
                   Millis stall_check_interval_ms = -1) {
    JobRunnerOptions o;
    o.load_probe = std::move(load_probe);
    o.store_stalled = std::move(store_stalled);
    if (stall_wait_max_ms > 0) o.stall_wait_max_ms = stall_wait_max_ms;
    if (stall_check_interval_ms >= 0) o.stall_check_interval_ms = stall_check_interval_ms;
    o.throttle = throttle;
    o.control_interval_ms = 20;
    o.poll_wait_ms = 20;
    o.state_poll_ms = 20;
    o.plan_page = 64;
    o.poll_batch = 16;
    o.retry_base_ms = 2;
    o.retry_max_ms = 20;
    o.jitter_seed = 7;
    o.export_dir = export_dir_;
    auto r = JobRunner::Open(assets_.get(), queue_.get(), jobs_.get(), &clock_, o, &metrics_);
    ASSERT_TRUE(r.ok()) << r.status();
    runner_ = std::move(*r);
  }
  void TearDown() override {
    runner_.reset();
    assets_.reset();
    queue_.reset();
    std::filesystem::remove_all(export_dir_);
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
  // The marks of an export job (each holds a row).
  int Marks(uint64_t job) {
    int n = 0;
    EXPECT_TRUE(assets_
                    ->ScanJobRows("video", job,
                                  [&](const assets::AssetId&, const assets::AssetRow&) {
                                    ++n;
                                    return absl::OkStatus();
                                  })
                    .ok());
    return n;
  }
  // The same once they are gone or 2 s have passed (Processor::Ended runs after the job's
  // final transition, when its workers have stopped).
  int MarksOnceEnded(uint64_t job) {
    for (int i = 0; i < 200 && Marks(job) > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Marks(job);
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
  std::string export_dir_ = (std::filesystem::temp_directory_path() /
                             ("strata_job_runner_test_" + std::to_string(::getpid())))
                                .string();
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

// The adaptive rate: a loaded store holds an adaptive job at the minimum rate; a job with
// "adaptive": false is not held; a healthy store lets the rate grow.
TEST_F(JobRunnerTest, AnAdaptiveJobSlowsDownWhileTheStoreIsLoaded) {
  auto stalled = std::make_shared<std::atomic<bool>>(true);
  ThrottleOptions t;
  t.initial_rate = 100;
  t.min_rate = 100;
  t.max_rate = 1e6;
  t.additive_step = 100;
  runner_.reset();
  StartRunner(
      [stalled] {
        LoadSample s;
        s.p99_ms = {-1};  // no online requests
        s.write_stalled = stalled->load();
        return s;
      },
      t);
  auto rate_gauge = [this] {
    const std::string page = metrics_.RenderPrometheus();
    const std::string name = "\nstrata_reprocess_throttle_rate ";  // the sample, not # HELP
    const size_t at = page.find(name);
    return at == std::string::npos ? -1.0 : std::stod(page.substr(at + name.size()));
  };
  EXPECT_EQ(rate_gauge(), 100);
  // 300 assets at 100/s: at least ~2.8 s (one batch of 16 may start at once).
  auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<JobRecord> job = runner_->Submit(
      R"({"type":"video","adaptive":true,"processor":{"kind":"set","path":"/status","value":"a"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  JobRecord done = WaitFinal(job->id);
  const double held_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(done.counts.changed, 300u);
  EXPECT_GE(held_s, 2.5);
  EXPECT_EQ(rate_gauge(), 100);
  EXPECT_NE(metrics_.RenderPrometheus().find(
                "strata_reprocess_throttle_decisions{decision=\"load_cut\"} "),
            std::string::npos);
  // Not adaptive (the default; said explicitly here): the same loaded store does not hold it (every asset changed; the
  // throttle's rate does not move, as no adaptive job works).
  job = runner_->Submit(R"({"type":"video","adaptive":false,
      "processor":{"kind":"set","path":"/status","value":"b"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  done = WaitFinal(job->id);
  EXPECT_EQ(done.counts.changed, 300u);
  // The store recovers: the adaptive rate grows while the next job works.
  stalled->store(false);
  job = runner_->Submit(
      R"({"type":"video","adaptive":true,"processor":{"kind":"set","path":"/status","value":"c"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  done = WaitFinal(job->id);
  EXPECT_EQ(done.counts.changed, 300u);
  EXPECT_GT(rate_gauge(), 100);
  for (const std::string& id : ids_) EXPECT_EQ(Payload(id).Find("status")->string_value(), "c");
}

// Every job (adaptive or not) waits before a batch while the store stalls writes, for at
// most stall_wait_max_ms a batch: it resumes once the stall ends, and progresses through a
// stall that never ends.
TEST_F(JobRunnerTest, JobsWaitOutAStallingStoreBoundedly) {
  auto stalled = std::make_shared<std::atomic<bool>>(true);
  runner_.reset();
  StartRunner(nullptr, JobRunnerOptions::DefaultJobThrottle(), [stalled] { return stalled->load(); },
              /*stall_wait_max_ms=*/5000);
  auto waited_s = [this] {
    const std::string page = metrics_.RenderPrometheus();
    const std::string name = "\nstrata_reprocess_stall_wait_seconds ";
    const size_t at = page.find(name);
    return at == std::string::npos ? -1.0 : std::stod(page.substr(at + name.size()));
  };
  EXPECT_EQ(waited_s(), 0);
  absl::StatusOr<JobRecord> job = runner_->Submit(
      R"({"type":"video","processor":{"kind":"set","path":"/status","value":"a"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  absl::StatusOr<JobRecord> during = jobs_->Get(job->id);
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->counts.changed, 0u) << "a batch was written into a stalling store";
  stalled->store(false);
  JobRecord done = WaitFinal(job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.counts.changed, 300u);
  EXPECT_GE(waited_s(), 0.3);

  // A stall that never ends holds each batch for stall_wait_max_ms only.
  stalled->store(true);
  runner_.reset();
  StartRunner(nullptr, JobRunnerOptions::DefaultJobThrottle(), [stalled] { return stalled->load(); },
              /*stall_wait_max_ms=*/20);
  job = runner_->Submit(
      R"({"type":"video","processor":{"kind":"set","path":"/status","value":"b"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  done = WaitFinal(job->id);
  EXPECT_EQ(done.counts.changed, 300u);
  for (const std::string& id : ids_) EXPECT_EQ(Payload(id).Find("status")->string_value(), "b");
}

// A "not stalling" answer is trusted for stall_check_interval_ms: the store's health is not
// computed before every batch (it cost ~10% of a job thread's CPU).
TEST_F(JobRunnerTest, AnUnstalledStoreIsNotAskedBeforeEveryBatch) {
  auto asked = std::make_shared<std::atomic<int>>(0);
  auto probe = [asked] {
    asked->fetch_add(1);
    return false;
  };
  runner_.reset();
  StartRunner(nullptr, JobRunnerOptions::DefaultJobThrottle(), probe, 0,
              /*stall_check_interval_ms=*/60'000);
  absl::StatusOr<JobRecord> job = runner_->Submit(
      R"({"type":"video","processor":{"kind":"set","path":"/status","value":"a"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  JobRecord done = WaitFinal(job->id);
  EXPECT_EQ(done.counts.changed, 300u);
  EXPECT_EQ(asked->load(), 1) << "300 assets in batches of 16, one answer trusted for 60 s";

  // Trusted for 0 ms: asked before every batch (at least 300 / 16 of them).
  asked->store(0);
  runner_.reset();
  StartRunner(nullptr, JobRunnerOptions::DefaultJobThrottle(), probe, 0,
              /*stall_check_interval_ms=*/0);
  job = runner_->Submit(
      R"({"type":"video","processor":{"kind":"set","path":"/status","value":"b"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  done = WaitFinal(job->id);
  EXPECT_EQ(done.counts.changed, 300u);
  EXPECT_GE(asked->load(), 19);
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

// Adding a pointer to `indexed` of a type with assets leaves the index unsearchable (409
// naming the pointer) until a reindex job has written every asset's entry.
TEST_F(JobRunnerTest, ReindexBuildsAnIndexAddedToATypeWithAssets) {
  // Statuses written before the index exists: their assets have no entry for it.
  for (size_t i = 0; i < 30; ++i) {
    ASSERT_TRUE(assets_->Patch("video", ids_[i], i % 2 ? R"({"status":"a"})" : R"({"status":"b"})",
                               std::nullopt)
                    .ok());
  }
  ASSERT_TRUE(assets_
                  ->PutType("video", R"({"schema":{"type":"object","required":["n","format"],
      "properties":{"n":{"type":"integer"},"format":{"type":"string","enum":["hd","4k"]},
      "status":{"type":"string"}}},"indexed":["/format","/n","/status"]})")
                  .ok());
  assets::ListQuery q;
  q.where = {"/status=a"};
  absl::StatusOr<assets::AssetPage> refused = assets_->List("video", q);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_EQ(refused.status().message(),
            "where: the index on /status was added after assets existed and is not built yet "
            "(a reindex job builds it)");
  // A write after the index was added maintains it already.
  ASSERT_TRUE(assets_->Patch("video", ids_[100], R"({"status":"a"})", std::nullopt).ok());
  absl::StatusOr<JobRecord> job = runner_->Submit(
      R"({"type":"video","processor":{"kind":"reindex","pointers":["/status"]}})");
  ASSERT_TRUE(job.ok()) << job.status();
  JobRecord done = WaitFinal(job->id);
  ASSERT_EQ(done.state, JobState::kSucceeded) << done.error;
  EXPECT_EQ(done.counts.processed, 300u);
  EXPECT_EQ(done.counts.changed, 30u);  // the 30 with a status and no entry
  std::set<std::string> want;
  for (size_t i = 1; i < 30; i += 2) want.insert(ids_[i]);
  want.insert(ids_[100]);
  absl::StatusOr<assets::AssetPage> found = assets_->List("video", q);
  ASSERT_TRUE(found.ok()) << found.status();
  std::set<std::string> got;
  for (const assets::Asset& a : found->assets) got.insert(a.id.ToString());
  EXPECT_EQ(got, want);
  for (const std::string& id : ids_) EXPECT_LE(assets_->Get("video", id)->row.version, 2u);
  // A reindex of a pointer that is not indexed is refused naming it.
  EXPECT_EQ(runner_->Submit(R"({"type":"video","processor":{"kind":"reindex","pointers":["/x"]}})")
                .status()
                .message(),
            "processor/pointers/0: /x is not indexed in type video");
}

// Without the job's steps, marking the index ready would make searches miss the assets
// written before it existed: the steps are what builds it.
TEST_F(JobRunnerTest, AnIndexMarkedReadyWithoutItsJobMissesOlderAssets) {
  ASSERT_TRUE(assets_->Patch("video", ids_[0], R"({"status":"a"})", std::nullopt).ok());
  absl::StatusOr<std::shared_ptr<const assets::AssetType>> t =
      assets_->PutType("video", R"({"schema":{"type":"object"},"indexed":["/status"]})");
  ASSERT_TRUE(t.ok());
  ASSERT_FALSE((*t)->indexes[0].ready);
  ASSERT_TRUE(assets_->MarkIndexesReady("video", {{"/status", (*t)->indexes[0].id}}).ok());
  assets::ListQuery q;
  q.where = {"/status=a"};
  absl::StatusOr<assets::AssetPage> found = assets_->List("video", q);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->assets.empty());
  ASSERT_TRUE(assets_->RebuildIndex("video", ids_[0]).ok());
  found = assets_->List("video", q);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->assets.size(), 1u);
  EXPECT_EQ(found->assets[0].id.ToString(), ids_[0]);
}

TEST_F(JobRunnerTest, ExportWritesNdjsonAndAvroFilesOfTheSelection) {
  // A production write before the export: the file holds what each asset is when exported.
  ASSERT_TRUE(assets_->Patch("video", ids_[0], R"({"status":"x"})", std::nullopt).ok());
  absl::StatusOr<JobRecord> nd =
      runner_->Submit(R"({"type":"video","processor":{"kind":"export"},"concurrency":3})");
  ASSERT_TRUE(nd.ok()) << nd.status();
  absl::StatusOr<JobRecord> av = runner_->Submit(
      R"({"type":"video","select":{"where":["/format=4k"]},"processor":{"kind":"export","format":"avro"}})");
  ASSERT_TRUE(av.ok()) << av.status();
  JobRecord nd_done = WaitFinal(nd->id);
  JobRecord av_done = WaitFinal(av->id);
  ASSERT_EQ(nd_done.state, JobState::kSucceeded) << nd_done.error;
  ASSERT_EQ(av_done.state, JobState::kSucceeded) << av_done.error;
  EXPECT_EQ(nd_done.counts.unchanged, 300u);

  const std::string nd_path = export_dir_ + "/job-" + std::to_string(nd->id) + ".ndjson";
  EXPECT_FALSE(std::filesystem::exists(nd_path + ".partial"));
  std::ifstream in(nd_path);
  ASSERT_TRUE(in.good()) << nd_path;
  std::map<std::string, assets::JsonValue> lines;
  size_t line_count = 0;
  for (std::string line; std::getline(in, line);) {
    absl::StatusOr<assets::JsonValue> v = assets::ParseJson(line, "line");
    ASSERT_TRUE(v.ok()) << line;
    lines[v->Find("id")->string_value()] = *v;
    ++line_count;
  }
  ASSERT_EQ(lines.size(), 300u);
  EXPECT_EQ(line_count, 300u);  // none twice
  for (const std::string& id : ids_) {
    ASSERT_TRUE(lines.count(id)) << id;
    const assets::JsonValue& l = lines[id];
    EXPECT_EQ(l.Find("type")->string_value(), "video");
    EXPECT_EQ(*l.Find("payload"), Payload(id)) << id;
    EXPECT_EQ(l.Find("version")->int_value(), id == ids_[0] ? 2 : 1);
    EXPECT_EQ(l.Find("created_at")->int_value(), assets_->Get("video", id)->row.created_at);
  }

  std::string schema;
  absl::StatusOr<std::vector<ExportRecord>> records = ReadAvroExport(
      export_dir_ + "/job-" + std::to_string(av->id) + ".avro", &schema);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 100u);
  std::set<std::string> want, got;
  for (size_t i = 0; i < ids_.size(); i += 3) want.insert(ids_[i]);
  for (const ExportRecord& r : *records) {
    got.insert(r.id);
    EXPECT_EQ(*assets::ParseJson(r.payload, "p"), Payload(r.id));
    EXPECT_EQ(r.schema_version, 1);
  }
  EXPECT_EQ(got, want);
  EXPECT_NE(schema.find("\"name\":\"payload\""), std::string::npos) << schema;
}

// An export interrupted anywhere resumes and writes every selected asset exactly once:
// the runner is stopped mid-job (as kill -9 would leave it: a file half-written under
// .partial, some batches processed), production writes come meanwhile, and a restarted
// runner finishes the job. The file is built from the job's marks, which go once the job
// has succeeded; its dead letters cannot be retried.
TEST_F(JobRunnerTest, AnInterruptedExportResumesAndWritesEachAssetOnce) {
  absl::StatusOr<JobRecord> job = runner_->Submit(
      R"({"type":"video","processor":{"kind":"export"},"rate":600,"concurrency":2})");
  ASSERT_TRUE(job.ok()) << job.status();
  for (int i = 0; i < 500; ++i) {
    absl::StatusOr<JobRecord> j = jobs_->Get(job->id);
    ASSERT_TRUE(j.ok());
    if (j->counts.processed >= 60) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  runner_.reset();  // stops the workers between batches, as a crash would
  absl::StatusOr<JobRecord> mid = jobs_->Get(job->id);
  ASSERT_TRUE(mid.ok());
  ASSERT_EQ(mid->state, JobState::kRunning) << "the job must be interrupted for this test";
  ASSERT_GE(mid->counts.processed, 60u);
  ASSERT_LT(mid->counts.processed, 300u);
  const std::string path = export_dir_ + "/job-" + std::to_string(job->id) + ".ndjson";
  {
    std::ofstream torn(path + ".partial");  // what a crash in the middle of Finish leaves
    torn << "{\"type\":\"video\",\"id\":\"" << ids_[0] << "\",\"ver";
  }
  // Written while the job is down: an asset not yet exported is exported as it is then.
  std::set<std::string> patched;
  for (size_t i = 0; i < ids_.size(); i += 7) {
    ASSERT_TRUE(assets_->Patch("video", ids_[i], R"({"status":"p"})", std::nullopt).ok());
    patched.insert(ids_[i]);
  }
  StartRunner();
  JobRecord done = WaitFinal(job->id);
  ASSERT_EQ(done.state, JobState::kSucceeded) << done.error;
  EXPECT_EQ(done.counts.dead_lettered, 0u);
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::map<std::string, int> seen;
  int patched_before = 0, patched_after = 0;  // patched assets exported before / after
  for (std::string line; std::getline(in, line);) {
    absl::StatusOr<assets::JsonValue> v = assets::ParseJson(line, "line");
    ASSERT_TRUE(v.ok()) << line;
    const std::string id = v->Find("id")->string_value();
    ++seen[id];
    const int64_t version = v->Find("version")->int_value();
    // As exported: before the patch (version 1, no status) or after it (2, "p").
    const assets::JsonValue* status = v->Find("payload")->Find("status");
    if (version == 1) {
      if (patched.count(id)) ++patched_before;
      EXPECT_EQ(status, nullptr) << line;
      EXPECT_EQ(*v->Find("payload")->Find("n"), *Payload(id).Find("n")) << line;
      if (!patched.count(id)) {
        EXPECT_EQ(*v->Find("payload"), Payload(id)) << line;
      }
    } else {
      EXPECT_EQ(version, 2) << line;
      EXPECT_TRUE(patched.count(id)) << line;
      ++patched_after;
      ASSERT_NE(status, nullptr) << line;
      EXPECT_EQ(status->string_value(), "p");
      EXPECT_EQ(*v->Find("payload"), Payload(id)) << line;
    }
  }
  ASSERT_EQ(seen.size(), 300u);
  for (const std::string& id : ids_) EXPECT_EQ(seen[id], 1) << id;
  EXPECT_GT(patched_before, 0);  // the interruption came between exports of patched assets
  EXPECT_GT(patched_after, 0);
  // The marks (and the rows they held) are gone.
  EXPECT_EQ(MarksOnceEnded(job->id), 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(runner_->RetryDeadLetters(job->id).status()));
}

// An export that fails writing its file (here its final name is taken by a directory) or
// is cancelled leaves no file behind, and its marks (with the rows they held) are dropped.
TEST_F(JobRunnerTest, AFailedOrCancelledExportLeavesNoFileAndNoRows) {
  // Job ids are given in order from 1: the first job here is job 1.
  std::filesystem::create_directories(export_dir_ + "/job-1.ndjson");
  absl::StatusOr<JobRecord> job = runner_->Submit(R"({"type":"video","processor":{"kind":"export"}})");
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->id, 1u);
  JobRecord failed = WaitFinal(job->id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_NE(failed.error.find("export: cannot rename"), std::string::npos) << failed.error;
  EXPECT_EQ(failed.counts.processed, 300u);
  EXPECT_FALSE(std::filesystem::exists(export_dir_ + "/job-1.ndjson.partial"));
  EXPECT_EQ(MarksOnceEnded(job->id), 0);

  absl::StatusOr<JobRecord> slow = runner_->Submit(
      R"({"type":"video","processor":{"kind":"export"},"rate":300})");
  ASSERT_TRUE(slow.ok()) << slow.status();
  for (int i = 0; i < 500 && Marks(slow->id) < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(Marks(slow->id), 20);
  ASSERT_TRUE(runner_->Cancel(slow->id).ok());
  EXPECT_EQ(WaitFinal(slow->id).state, JobState::kCancelled);
  EXPECT_EQ(MarksOnceEnded(slow->id), 0);
  EXPECT_FALSE(std::filesystem::exists(export_dir_ + "/job-" + std::to_string(slow->id) + ".ndjson"));
}

// A webhook on 127.0.0.1: 200 = new payload, 204 = unchanged, 4xx = dead letter with the
// status and body, 5xx and timeouts retried with backoff up to max_attempts. Then, with the
// hook fixed, the dead letters are retried and the succeeded job runs again.
TEST_F(JobRunnerTest, WebhookAnswersDecideAndDeadLettersCanBeRetried) {
  std::mutex mu;
  std::map<int64_t, int> calls;  // n -> requests seen
  std::atomic<bool> fixed{false};
  http::ServerOptions so;
  so.address = "127.0.0.1";
  so.port = 0;
  so.threads = 4;
  http::Server hook(so, [&](const http::Request& r) -> http::Response {
    absl::StatusOr<assets::JsonValue> body = assets::ParseJson(r.body, "hook");
    if (!body.ok() || r.path != "/hook" || r.method != "POST") return {400, "text/plain", "bad"};
    assets::JsonValue payload = *body->Find("payload");
    const int64_t n = payload.Find("n")->int_value();
    int call;
    {
      std::lock_guard<std::mutex> lock(mu);
      call = ++calls[n];
    }
    if (!fixed.load()) {
      if (n % 10 == 1) return {422, "text/plain", "n ends in 1\nno"};
      if (n % 10 == 2 && call == 1) return {503, "text/plain", "busy"};
      if (n % 10 == 3) return {500, "text/plain", "broken"};
      if (n == 5 && call == 1) std::this_thread::sleep_for(std::chrono::milliseconds(600));
    }
    if (n % 10 == 4) return {204, "", ""};
    payload.Set("status", assets::JsonValue::String("hooked"));
    payload.Set("id_seen", *body->Find("id"));
    return {200, "application/json", payload.Serialize()};
  });
  ASSERT_TRUE(hook.Start().ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(hook.port()) + "/hook";
  absl::StatusOr<JobRecord> job = runner_->Submit(
      R"({"type":"video","select":{"where":["/n<40"]},"max_attempts":3,"processor":{"kind":"webhook","url":")" +
      url + R"(","timeout_ms":300}})");
  ASSERT_TRUE(job.ok()) << job.status();
  JobRecord done = WaitFinal(job->id);
  ASSERT_EQ(done.state, JobState::kSucceeded) << done.error;
  EXPECT_EQ(done.counts.selected, 40u);
  EXPECT_EQ(done.counts.dead_lettered, 8u);  // n % 10 == 1 or 3
  EXPECT_EQ(done.counts.processed, 32u);
  EXPECT_EQ(done.counts.unchanged, 4u);  // n % 10 == 4
  EXPECT_EQ(done.counts.changed, 28u);
  // 4 x 422 once, 4 x 500 three times, 4 x 503 once, n = 5 timed out once.
  EXPECT_EQ(done.counts.failed, 4u + 12u + 4u + 1u);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(calls[1], 1);
    EXPECT_EQ(calls[3], 3);
    EXPECT_EQ(calls[2], 2);
    EXPECT_EQ(calls[5], 2);
  }
  absl::StatusOr<std::vector<std::string>> dead = jobs_->DeadLetters(job->id, 100);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 8u);
  std::map<std::string, std::string> reasons;
  for (const std::string& d : *dead) {
    assets::JsonValue v = *assets::ParseJson(d, "dead");
    reasons[v.Find("id")->string_value()] =
        v.Find("reason")->string_value() + " #" + std::to_string(v.Find("attempts")->int_value());
  }
  EXPECT_EQ(reasons[ids_[1]], "webhook: HTTP 422: n ends in 1 no #1");
  EXPECT_EQ(reasons[ids_[3]], "webhook: HTTP 500: broken #3");
  for (int n = 0; n < 40; ++n) {
    assets::JsonValue p = Payload(ids_[n]);
    const bool hooked = n % 10 != 1 && n % 10 != 3 && n % 10 != 4;
    EXPECT_EQ(p.Find("status") != nullptr, hooked) << n;
    if (hooked) {
      EXPECT_EQ(p.Find("id_seen")->string_value(), ids_[n]);
    }
  }

  fixed.store(true);
  absl::StatusOr<JobRecord> retried = runner_->RetryDeadLetters(job->id);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->counts.dead_letters_retried, 8u);
  done = WaitFinal(job->id);
  ASSERT_EQ(done.state, JobState::kSucceeded) << done.error;
  EXPECT_EQ(done.counts.dead_lettered, 0u);
  EXPECT_EQ(done.counts.processed, 40u);
  EXPECT_EQ(done.counts.changed, 36u);
  EXPECT_TRUE(jobs_->DeadLetters(job->id, 100)->empty());
  for (int n = 0; n < 40; ++n) {
    EXPECT_EQ(Payload(ids_[n]).Find("status") != nullptr, n % 10 != 4) << n;
  }
  // Nothing left: a second retry changes nothing.
  absl::StatusOr<JobRecord> again = runner_->RetryDeadLetters(job->id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, JobState::kSucceeded);
  EXPECT_EQ(again->counts.dead_letters_retried, 8u);
  hook.Stop();
}

TEST_F(JobRunnerTest, DeadLettersOfACancelledJobAreNotRetried) {
  absl::StatusOr<JobRecord> job = runner_->Submit(R"({"type":"video",
      "processor":{"kind":"set","path":"/status","value":"done"},"rate":50})");
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(runner_->Cancel(job->id).ok());
  EXPECT_EQ(runner_->RetryDeadLetters(job->id).status().message(),
            "dead-letters: job " + std::to_string(job->id) +
                " is cancelled; only a running, paused or succeeded job's dead letters can be "
                "retried");
  EXPECT_TRUE(absl::IsNotFound(runner_->RetryDeadLetters(999).status()));
}

}  // namespace
}  // namespace strata::reprocess
