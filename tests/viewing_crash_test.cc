// Crash safety of the live -> compressed roll-up on the real RocksDB store: a child process
// is killed (_exit, no clean-up, like kill -9) at each step of a roll-up; the parent reopens
// the data directory and checks that every acknowledged record is readable exactly once,
// with its latest event, against an oracle -- and that the next roll-up cleans up.
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>

#include "strata/base/crash_point.h"
#include "strata/store/rocksdb/rocksdb_row_store.h"
#include "strata/viewing/summary.h"
#include "strata/viewing/viewing_service.h"

namespace strata {
namespace {

using viewing::Kind;
using viewing::ViewingRecord;

constexpr Millis kT0 = 1'700'000'000'000;
constexpr viewing::MemberId kMember = 77;

using Oracle = std::map<std::pair<Millis, std::string>, Millis>;  // key -> latest event_time

std::vector<ViewingRecord> MakeBatch(std::mt19937_64& rng, Oracle* oracle, int n) {
  std::vector<ViewingRecord> out;
  for (int i = 0; i < n; ++i) {
    ViewingRecord r;
    r.member = kMember;
    r.kind = Kind::kPlay;
    r.title = rng() % 40;
    r.started_at = kT0 + static_cast<Millis>(rng() % 3000) * 60'000;
    r.session = std::to_string(rng() % 2);
    r.event_time = r.started_at + static_cast<Millis>(rng() % 3'600'000);
    r.position_ms = r.event_time - r.started_at;
    r.watched_ms = r.position_ms;
    r.device = "tv";
    r.content_lang = "en";
    r.audio_lang = "en";
    auto& best = (*oracle)[{r.started_at, r.session}];
    best = std::max(best, r.event_time);
    out.push_back(std::move(r));
  }
  return out;
}

struct Opened {
  std::unique_ptr<store::RocksRowStore> rows;
  std::unique_ptr<viewing::ViewingService> service;
};

constexpr Millis kDay = 24LL * 3600 * 1000;

Opened OpenAt(const std::string& dir, MetricsRegistry* metrics, ManualClock* clock,
              bool tiers = false) {
  store::RocksRowStoreOptions o;
  o.path = dir;
  o.clock = clock;
  auto rows = store::RocksRowStore::Open(o);
  if (!rows.ok()) {
    ADD_FAILURE() << rows.status();
    return {};
  }
  viewing::ViewingOptions vo;
  vo.rollup_min_live_rows = 1'000'000;  // only explicit roll-ups in this test
  vo.segment_records = 32;              // many chunks per version
  vo.past_segment_records = 24;         // in the past tier too (another size: chunks re-cut)
  vo.past_summary_min_records = 0;      // the state row always carries a summary
  if (tiers) {
    vo.recent_age_ms = 10 * kDay;
    vo.historical_age_ms = 100 * kDay;
    vo.rotation_max_per_s = 0;
  }
  auto service = viewing::ViewingService::Open(rows->get(), clock, vo, metrics);
  if (!service.ok()) {
    ADD_FAILURE() << service.status();
    return {};
  }
  return {std::move(*rows), std::move(*service)};
}

void ExpectMatchesOracle(viewing::ViewingService* service, const Oracle& oracle) {
  viewing::HistoryQuery q;
  q.limit = 1000;
  std::map<std::pair<Millis, std::string>, Millis> seen;
  size_t total = 0;
  for (;;) {
    auto page = service->ReadHistory(kMember, q);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& r : page->records) {
      ++total;
      seen[{r.started_at, r.session}] = r.event_time;
    }
    if (page->next_cursor.empty()) break;
    q.cursor = page->next_cursor;
  }
  EXPECT_EQ(total, oracle.size()) << "each acknowledged playback exactly once";
  EXPECT_EQ(seen, oracle) << "each playback with its latest event";
}

class RollupCrashTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RollupCrashTest, EveryAcknowledgedRecordSurvivesExactlyOnce) {
  const std::string dir =
      (std::filesystem::temp_directory_path() /
       ("strata_crash_" + std::to_string(getpid()) + "_" + GetParam()))
          .string();
  std::filesystem::remove_all(dir);
  ManualClock clock(kT0 + 400'000'000);
  std::mt19937_64 rng(11);
  Oracle oracle;
  // The oracle is built deterministically in the parent too: same seed, same batches.
  auto batch1 = MakeBatch(rng, &oracle, 400);
  auto batch2 = MakeBatch(rng, &oracle, 150);  // new playbacks and updates of rolled-up ones

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    MetricsRegistry metrics;
    Opened o = OpenAt(dir, &metrics, &clock);
    if (!o.service) _exit(3);
    if (!o.service->Ingest(batch1).ok()) _exit(4);
    if (!o.service->RollUp(kMember, Kind::kPlay).ok()) _exit(5);  // version 1, fully done
    if (!o.service->Ingest(batch2).ok()) _exit(6);                 // acknowledged
    SetCrashPointForTesting(GetParam());
    (void)o.service->RollUp(kMember, Kind::kPlay);  // dies inside
    _exit(7);                                        // crash point not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), kCrashPointExitCode) << "child did not die at the crash point";

  MetricsRegistry metrics;
  Opened o = OpenAt(dir, &metrics, &clock);
  ASSERT_NE(o.service, nullptr);
  ExpectMatchesOracle(o.service.get(), oracle);
  // Recovery: the next roll-up completes and leaves no live rows and one version.
  ASSERT_TRUE(o.service->RollUp(kMember, Kind::kPlay).ok());
  ExpectMatchesOracle(o.service.get(), oracle);
  auto report = o.service->Report();
  ASSERT_TRUE(report.ok());
  for (const auto& t : *report) {
    if (t.table == "plays_recent_live") {
      EXPECT_EQ(t.records, 0u);
    }
    if (t.table == "plays_recent_compressed") {
      EXPECT_EQ(t.records, oracle.size());
    }
  }
  o.service.reset();  // before the store it uses (background rotations may run)
  o.rows.reset();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Steps, RollupCrashTest,
                         ::testing::Values("rollup.after_chunks", "rollup.after_commit"));

// ---------------------------------------------------------------------------------------
// Rotation between age tiers: a kill at each step loses nothing, and summaries never count a
// playback twice.

using FullOracle = std::map<std::pair<Millis, std::string>, ViewingRecord>;

std::vector<ViewingRecord> SpreadBatch(std::mt19937_64& rng, FullOracle* oracle, Millis now,
                                       Millis span, int n) {
  std::vector<ViewingRecord> out;
  for (int i = 0; i < n; ++i) {
    ViewingRecord r;
    const bool update = !oracle->empty() && rng() % 4 == 0;
    if (update) {
      auto it = oracle->lower_bound({now - static_cast<Millis>(rng() % span), ""});
      if (it == oracle->end()) it = std::prev(it);  // (never a summarised playback)
      r = it->second;
      r.event_time += 1 + static_cast<Millis>(rng() % 100'000);
      r.watched_ms += 1000;
    } else {
      r.member = kMember;
      r.kind = Kind::kPlay;
      r.title = rng() % 30;
      r.started_at = now - static_cast<Millis>(rng() % span);
      r.session = std::to_string(rng() % 2);
      r.event_time = r.started_at + static_cast<Millis>(rng() % 3'600'000);
      r.position_ms = r.event_time - r.started_at;
      r.watched_ms = r.position_ms / 2;
      r.device = "tv";
      r.content_lang = "en";
      r.audio_lang = "en";
    }
    auto [it, inserted] = oracle->try_emplace({r.started_at, r.session}, r);
    if (!inserted && r.event_time >= it->second.event_time) it->second = r;
    out.push_back(std::move(r));
  }
  return out;
}

void ExpectTiersMatchOracle(viewing::ViewingService* service, const FullOracle& oracle) {
  // Detail: every playback at or after detail_from, once, with its latest event.
  viewing::HistoryQuery q;
  q.limit = 100;
  std::vector<ViewingRecord> got;
  Millis detail_from = INT64_MIN;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = service->ReadHistory(kMember, q);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->detail_from != INT64_MIN) detail_from = page->detail_from;
    for (auto& r : page->records) got.push_back(std::move(r));
    if (page->next_cursor.empty()) break;
    q.cursor = page->next_cursor;
  }
  std::vector<ViewingRecord> want;
  for (auto it = oracle.rbegin(); it != oracle.rend(); ++it) {
    if (it->second.started_at >= detail_from) want.push_back(it->second);
  }
  EXPECT_EQ(got.size(), want.size()) << "detail_from " << detail_from;
  EXPECT_TRUE(got == want) << "each playback once, latest event";
  // Summary: every playback ever acknowledged, counted once.
  viewing::SummaryBuilder b;
  for (const auto& [key, r] : oracle) b.Add(r);
  auto summary = service->Summary(kMember);
  ASSERT_TRUE(summary.ok()) << summary.status();
  auto titles = summary->titles;
  std::sort(titles.begin(), titles.end(),
            [](const auto& a, const auto& c) { return a.title < c.title; });
  EXPECT_EQ(titles, b.ByTitle());
}

class RotationCrashTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RotationCrashTest, NothingLostNothingCountedTwice) {
  const std::string dir =
      (std::filesystem::temp_directory_path() /
       ("strata_rotate_crash_" + std::to_string(getpid()) + "_" + GetParam()))
          .string();
  std::filesystem::remove_all(dir);
  ManualClock clock(kT0);
  std::mt19937_64 rng(23);
  FullOracle oracle;
  // Built in the parent too: same seed, same batches.
  auto batch1 = SpreadBatch(rng, &oracle, kT0, 300 * kDay, 600);
  auto batch2 = SpreadBatch(rng, &oracle, kT0 + 40 * kDay, 60 * kDay, 200);

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    MetricsRegistry metrics;
    Opened o = OpenAt(dir, &metrics, &clock, /*tiers=*/true);
    if (!o.service) _exit(3);
    if (!o.service->Ingest(batch1).ok()) _exit(4);
    if (!o.service->Rotate(kMember).ok()) _exit(5);  // all three tiers populated
    clock.Advance(40 * kDay);
    // Half of the new events rolled up into compressed chunks, half left live: the crashed
    // rotation moves both kinds.
    const size_t half = batch2.size() / 2;
    if (!o.service->Ingest({batch2.data(), half}).ok()) _exit(6);  // acknowledged
    if (!o.service->RollUp(kMember, Kind::kPlay).ok()) _exit(8);
    if (!o.service->Ingest({batch2.data() + half, batch2.size() - half}).ok()) _exit(6);
    SetCrashPointForTesting(GetParam());
    (void)o.service->Rotate(kMember);  // dies inside
    _exit(7);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), kCrashPointExitCode) << "child did not die at the crash point";

  clock.Advance(40 * kDay);
  MetricsRegistry metrics;
  Opened o = OpenAt(dir, &metrics, &clock, /*tiers=*/true);
  ASSERT_NE(o.service, nullptr);
  ExpectTiersMatchOracle(o.service.get(), oracle);
  // Recovery: the next rotation completes; the tiers hold each playback once.
  ASSERT_TRUE(o.service->Rotate(kMember).ok());
  ExpectTiersMatchOracle(o.service.get(), oracle);
  // Live rows may update compressed playbacks of the recent tier: roll them up, so every
  // tier holds each playback in one row or record.
  ASSERT_TRUE(o.service->RollUp(kMember, Kind::kPlay).ok());
  auto report = o.service->Report();
  ASSERT_TRUE(report.ok());
  uint64_t stored = 0;
  for (const auto& t : *report) {
    if (t.table.rfind("plays_", 0) == 0) stored += t.records;
  }
  std::string tables;
  for (const auto& t : *report) tables += t.table + "=" + std::to_string(t.records) + " ";
  EXPECT_EQ(stored, oracle.size()) << "recent + past records + historical plays: " << tables;
  o.service.reset();  // before the store it uses (background rotations may run)
  o.rows.reset();
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Steps, RotationCrashTest,
    ::testing::Values("rotate.past_chunks_written", "rotate.recent_chunks_written",
                      "rotate.committed",
                      "rotate.garbage_deleted", "rotate.historical.past_chunks_written",
                      "rotate.historical_committed", "rotate.historical.past_committed",
                      "rotate.historical.garbage_deleted"),
    [](const auto& info) { return CrashPointTestName(info.param); });

}  // namespace
}  // namespace strata
