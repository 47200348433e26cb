#include "strata/reprocess/job.h"

#include <gtest/gtest.h>

namespace strata::reprocess {
namespace {

std::string Error(std::string_view body) {
  absl::StatusOr<JobSpec> s = ParseJobSpec(body);
  return s.ok() ? "ok" : std::string(s.status().message());
}

TEST(JobTest, ParsesAFullSpecAndDefaults) {
  absl::StatusOr<JobSpec> s = ParseJobSpec(R"({"type":"video",
      "select":{"since":1,"until":5,"where":["/format=4k","/d>=600"]},
      "processor":{"kind":"set","path":"/status","value":"ok"},
      "dry_run":{"sample":10},"rate":500.5,"adaptive":true,"concurrency":4,"max_attempts":3})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type, "video");
  EXPECT_EQ(*s->since, 1);
  EXPECT_EQ(*s->until, 5);
  EXPECT_EQ(s->where.size(), 2u);
  EXPECT_EQ(*s->dry_run_sample, 10u);
  EXPECT_EQ(s->rate, 500.5);
  EXPECT_TRUE(s->adaptive);
  EXPECT_EQ(s->concurrency, 4);
  EXPECT_EQ(s->max_attempts, 3);
  absl::StatusOr<JobSpec> d =
      ParseJobSpec(R"({"type":"v","processor":{"kind":"remove","path":"/x"}})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->concurrency, 2);
  EXPECT_EQ(d->max_attempts, 5);
  EXPECT_EQ(d->rate, 0);
  EXPECT_FALSE(d->adaptive);
  EXPECT_FALSE(d->dry_run_sample.has_value());
}

TEST(JobTest, BadSpecsNameTheField) {
  const char* p = R"("processor":{"kind":"remove","path":"/x"})";
  EXPECT_EQ(Error(std::string("{") + p + "}"), "type: required");
  EXPECT_EQ(Error(R"({"type":"v"})"), "processor: required");
  EXPECT_EQ(Error(std::string(R"({"type":"v","select":{"since":"x"},)") + p + "}"),
            "select/since: must be an integer 0..9223372036854775807");
  EXPECT_EQ(Error(std::string(R"({"type":"v","select":{"where":["/a"]},)") + p + "}"),
            "select/where/0: where \"/a\": no operator (use =, <, <=, >, >= or ^=)");
  EXPECT_EQ(Error(std::string(R"({"type":"v","select":{"since":5,"until":5},)") + p + "}"),
            "select/since: must be before select/until");
  EXPECT_EQ(Error(std::string(R"({"type":"v","concurrency":0,)") + p + "}"),
            "concurrency: must be an integer 1..64");
  EXPECT_EQ(Error(std::string(R"({"type":"v","dry_run":{"sample":0},)") + p + "}"),
            "dry_run/sample: must be an integer 1..1000");
  EXPECT_EQ(Error(std::string(R"({"type":"v","rate":-1,)") + p + "}"),
            "rate: must be a number of assets per second >= 0 (0 = unlimited)");
  EXPECT_EQ(Error(std::string(R"({"type":"v","adaptive":1,)") + p + "}"),
            "adaptive: must be true or false");
  EXPECT_EQ(Error(R"({"type":"v","processor":{"kind":"set"}})"),
            "processor/path: required: a JSON pointer such as \"/status\"");
  EXPECT_EQ(Error(std::string(R"({"type":"v","colour":1,)") + p + "}").substr(0, 22),
            "colour: unknown field ");
}

TEST(JobTest, StatesMoveOnlyAlongTheirTransitions) {
  EXPECT_TRUE(CheckTransition(JobState::kPlanning, JobState::kRunning).ok());
  EXPECT_TRUE(CheckTransition(JobState::kRunning, JobState::kPaused).ok());
  EXPECT_TRUE(CheckTransition(JobState::kPaused, JobState::kRunning).ok());
  EXPECT_TRUE(CheckTransition(JobState::kPaused, JobState::kCancelled).ok());
  EXPECT_TRUE(CheckTransition(JobState::kRunning, JobState::kSucceeded).ok());
  EXPECT_EQ(CheckTransition(JobState::kCancelled, JobState::kRunning).message(),
            "state: a cancelled job cannot become running");
  EXPECT_FALSE(CheckTransition(JobState::kSucceeded, JobState::kPaused).ok());
  EXPECT_FALSE(CheckTransition(JobState::kPaused, JobState::kSucceeded).ok());
  EXPECT_FALSE(CheckTransition(JobState::kPlanning, JobState::kPaused).ok());
  EXPECT_TRUE(IsFinal(JobState::kFailed));
  EXPECT_FALSE(IsFinal(JobState::kPaused));
}

TEST(JobTest, RecordRoundTrips) {
  JobRecord job;
  job.id = 42;
  job.spec = *ParseJobSpec(R"({"type":"video","select":{"where":["/f=\"x\""]},
      "processor":{"kind":"map","path":"/f","table":{"a":1}},"rate":100,"adaptive":true})");
  job.state = JobState::kPaused;
  job.counts = {10, 8, 5, 3, 2, 1, 1};
  job.created_at = 1'765'000'000'000;
  job.updated_at = 1'765'000'001'000;
  job.error = "quote \" here";
  const std::string stored = EncodeJobRecord(job);
  absl::StatusOr<JobRecord> back = DecodeJobRecord(stored);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(EncodeJobRecord(*back), stored);
  EXPECT_EQ(back->state, JobState::kPaused);
  EXPECT_EQ(back->counts.conflicts_retried, 2u);
  EXPECT_EQ(back->spec.where[0], "/f=\"x\"");
  EXPECT_TRUE(back->spec.adaptive);
  EXPECT_EQ(back->error, job.error);
  EXPECT_FALSE(DecodeJobRecord("").ok());
  EXPECT_FALSE(DecodeJobRecord("\x01{}").ok());
}

}  // namespace
}  // namespace strata::reprocess
