#include "strata/server/admin_jobs.h"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "gtest/gtest.h"

namespace strata::server {
namespace {

using namespace std::chrono_literals;

// A job that runs until released, reporting progress first.
struct Gate {
  std::promise<void> release;
  std::shared_future<void> open = release.get_future().share();
  std::promise<void> started;
};

AdminJobs::Work Blocking(Gate* gate, std::string result) {
  return [gate, result](const AdminJobs::ReportProgress& progress) -> absl::StatusOr<std::string> {
    progress(JobProgress{1, 4, "tables"});
    gate->started.set_value();
    gate->open.wait();
    return result;
  };
}

AdminJob WaitDone(AdminJobs* jobs, const std::string& id) {
  auto done = std::make_shared<std::promise<AdminJob>>();
  absl::Status s = jobs->WhenDone(id, [done](const AdminJob& j) { done->set_value(j); });
  EXPECT_TRUE(s.ok()) << s;
  if (!s.ok()) return AdminJob{};
  return done->get_future().get();
}

TEST(AdminJobsTest, AJobGoesFromQueuedToRunningToSucceededWithItsResultAndProgress) {
  ManualClock clock(1'765'000'000'000);
  AdminJobs jobs(&clock, {});
  Gate gate;
  absl::StatusOr<AdminJobs::Started> s =
      jobs.Start("compact", Blocking(&gate, R"({"ok":true})"), AdminJobs::IfActive::kRefuse);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->joined);
  const std::string id = s->job.id;
  EXPECT_EQ(id, "j1765000000000-1");
  EXPECT_EQ(s->job.kind, "compact");
  EXPECT_EQ(s->job.created_at, 1'765'000'000'000);
  gate.started.get_future().wait();
  clock.Advance(5);

  absl::StatusOr<AdminJob> running = jobs.Get(id);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->state, JobState::kRunning);
  EXPECT_EQ(running->started_at, 1'765'000'000'000);
  EXPECT_EQ(running->finished_at, 0);
  EXPECT_EQ(running->progress.done, 1u);
  EXPECT_EQ(running->progress.total, 4u);
  EXPECT_EQ(running->progress.unit, "tables");
  EXPECT_EQ(jobs.finished("compact"), 0u);

  gate.release.set_value();
  AdminJob done = WaitDone(&jobs, id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.result_json, R"({"ok":true})");
  EXPECT_EQ(done.finished_at, 1'765'000'000'005);
  EXPECT_TRUE(done.error.ok());
  EXPECT_EQ(jobs.finished("compact"), 1u);
  EXPECT_EQ(jobs.Get(id)->state, JobState::kSucceeded);
  // Done already: WhenDone answers at once, on the caller's thread.
  bool called = false;
  ASSERT_TRUE(jobs.WhenDone(id, [&called](const AdminJob&) { called = true; }).ok());
  EXPECT_TRUE(called);
}

TEST(AdminJobsTest, AFailedJobKeepsItsError) {
  ManualClock clock;
  AdminJobs jobs(&clock, {});
  auto s = jobs.Start(
      "compact",
      [](const AdminJobs::ReportProgress&) -> absl::StatusOr<std::string> {
        return absl::InternalError("compact range: IO error");
      },
      AdminJobs::IfActive::kRefuse);
  ASSERT_TRUE(s.ok());
  AdminJob done = WaitDone(&jobs, s->job.id);
  EXPECT_EQ(done.state, JobState::kFailed);
  EXPECT_EQ(done.error, absl::InternalError("compact range: IO error"));
  EXPECT_TRUE(done.result_json.empty());
  EXPECT_EQ(JobStateName(done.state), "failed");
}

TEST(AdminJobsTest, OneActiveJobPerKindRefusedOrJoined) {
  ManualClock clock;
  AdminJobs jobs(&clock, {});
  Gate compact, report;
  auto c = jobs.Start("compact", Blocking(&compact, "{}"), AdminJobs::IfActive::kRefuse);
  ASSERT_TRUE(c.ok());
  auto again = jobs.Start("compact", Blocking(&compact, "{}"), AdminJobs::IfActive::kRefuse);
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status())) << again.status();
  EXPECT_NE(again.status().message().find(c->job.id), std::string_view::npos);

  // Another kind runs beside it (two threads by default).
  auto r = jobs.Start("viewing_tables", Blocking(&report, "{\"r\":1}"), AdminJobs::IfActive::kJoin);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->joined);
  report.started.get_future().wait();
  auto joined = jobs.Start("viewing_tables", Blocking(&report, "{}"), AdminJobs::IfActive::kJoin);
  ASSERT_TRUE(joined.ok());
  EXPECT_TRUE(joined->joined);
  EXPECT_EQ(joined->job.id, r->job.id);

  report.release.set_value();
  compact.release.set_value();
  EXPECT_EQ(WaitDone(&jobs, r->job.id).result_json, "{\"r\":1}");
  WaitDone(&jobs, c->job.id);
  // Finished: a new one may start.
  Gate next;
  next.release.set_value();
  auto c2 = jobs.Start("compact", Blocking(&next, "{}"), AdminJobs::IfActive::kRefuse);
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_NE(c2->job.id, c->job.id);
  WaitDone(&jobs, c2->job.id);
}

TEST(AdminJobsTest, TheHistoryKeepsTheLastFinishedJobsNewestFirst) {
  ManualClock clock;
  AdminJobs::Options options;
  options.history = 3;
  AdminJobs jobs(&clock, options);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto s = jobs.Start(
        "compact",
        [i](const AdminJobs::ReportProgress&) -> absl::StatusOr<std::string> {
          return "{\"n\":" + std::to_string(i) + "}";
        },
        AdminJobs::IfActive::kRefuse);
    ASSERT_TRUE(s.ok()) << s.status();
    ids.push_back(s->job.id);
    WaitDone(&jobs, s->job.id);
  }
  std::vector<AdminJob> list = jobs.List("", 100);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].id, ids[4]);
  EXPECT_EQ(list[2].id, ids[2]);
  EXPECT_TRUE(absl::IsNotFound(jobs.Get(ids[0]).status()));
  EXPECT_NE(jobs.Get(ids[0]).status().message().find("id: no job " + ids[0]),
            std::string_view::npos);
  EXPECT_TRUE(absl::IsNotFound(jobs.WhenDone(ids[1], [](const AdminJob&) {})));
  EXPECT_EQ(jobs.finished("compact"), 5u);  // counted beyond the history
  EXPECT_EQ(jobs.List("compact", 2).size(), 2u);
  EXPECT_TRUE(jobs.List("viewing_tables", 100).empty());
  ASSERT_TRUE(jobs.Latest("compact").has_value());
  EXPECT_EQ(jobs.Latest("compact")->id, ids[4]);
  EXPECT_FALSE(jobs.Latest("viewing_tables").has_value());
}

TEST(AdminJobsTest, ActiveJobsAreListedFirstAndNeverTrimmed) {
  ManualClock clock;
  AdminJobs::Options options;
  options.history = 1;
  AdminJobs jobs(&clock, options);
  Gate gate;
  auto active = jobs.Start("compact", Blocking(&gate, "{}"), AdminJobs::IfActive::kRefuse);
  ASSERT_TRUE(active.ok());
  std::string last_report;
  for (int i = 0; i < 3; ++i) {
    auto s = jobs.Start(
        "viewing_tables",
        [](const AdminJobs::ReportProgress&) -> absl::StatusOr<std::string> { return "{}"; },
        AdminJobs::IfActive::kJoin);
    ASSERT_TRUE(s.ok());
    WaitDone(&jobs, s->job.id);
    last_report = s->job.id;
  }
  std::vector<AdminJob> list = jobs.List("", 100);
  ASSERT_EQ(list.size(), 2u);  // the active one and the one finished job kept
  EXPECT_EQ(list[0].id, active->job.id);
  EXPECT_FALSE(list[0].done());
  EXPECT_EQ(list[1].id, last_report);

  // The long job, created first, finishes last: it is the one kept, not trimmed at once.
  gate.release.set_value();
  EXPECT_EQ(WaitDone(&jobs, active->job.id).state, JobState::kSucceeded);
  list = jobs.List("", 100);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id, active->job.id);
}

TEST(AdminJobsTest, IdsFromAnotherStartAreNeverReused) {
  ManualClock clock(1000);
  std::string first;
  {
    AdminJobs jobs(&clock, {});
    auto s = jobs.Start(
        "compact",
        [](const AdminJobs::ReportProgress&) -> absl::StatusOr<std::string> { return "{}"; },
        AdminJobs::IfActive::kRefuse);
    ASSERT_TRUE(s.ok());
    first = s->job.id;
  }  // the destructor waits for the job
  clock.Advance(1);
  AdminJobs restarted(&clock, {});
  EXPECT_TRUE(absl::IsNotFound(restarted.Get(first).status()));
  auto s = restarted.Start(
      "compact",
      [](const AdminJobs::ReportProgress&) -> absl::StatusOr<std::string> { return "{}"; },
      AdminJobs::IfActive::kRefuse);
  ASSERT_TRUE(s.ok());
  EXPECT_NE(s->job.id, first);
  WaitDone(&restarted, s->job.id);
}

}  // namespace
}  // namespace strata::server
