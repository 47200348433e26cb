// Age tiers: rotation recent -> past -> historical, stitched reads and summaries, checked
// against an oracle that keeps the latest event of every playback. Crash safety of each
// rotation step on RocksDB is in tests/viewing_crash_test.cc.
#include <gtest/gtest.h>

#include <map>
#include <cstdlib>
#include <iostream>
#include <random>

#include "absl/strings/escaping.h"
#include "strata/base/coding.h"
#include "strata/store/embedded_queue.h"
#include "strata/store/memory_row_store.h"
#include "strata/viewing/viewing_internal.h"
#include "strata/viewing/viewing_service.h"

namespace strata::viewing {
namespace {

constexpr Millis kDay = 24LL * 3600 * 1000;
constexpr Millis kNow0 = 1'700'000'000'000;

using Oracle = std::map<std::pair<Millis, std::string>, ViewingRecord>;

ViewingRecord Play(MemberId m, Millis started, std::string session, Millis event_time,
                   TitleId title) {
  ViewingRecord r;
  r.member = m;
  r.kind = Kind::kPlay;
  r.title = title;
  r.session = std::move(session);
  r.started_at = started;
  r.event_time = event_time;
  r.position_ms = event_time - started;
  r.watched_ms = (event_time - started) / 2;
  r.device = "tv";
  r.country = "US";
  r.content_lang = "en";
  r.audio_lang = "en";
  return r;
}

void Note(Oracle* oracle, const ViewingRecord& r) {
  auto [it, inserted] = oracle->try_emplace({r.started_at, r.session}, r);
  if (!inserted && r.event_time >= it->second.event_time) it->second = r;
}

std::vector<TitleSummary> OracleSummary(const Oracle& oracle) {
  SummaryBuilder b;
  for (const auto& [key, r] : oracle) b.Add(r);
  return b.ByTitle();
}

std::vector<TitleSummary> SortedByTitle(std::vector<TitleSummary> v) {
  std::sort(v.begin(), v.end(),
            [](const TitleSummary& a, const TitleSummary& b) { return a.title < b.title; });
  return v;
}

class ViewingTiersTest : public ::testing::Test {
 protected:
  void Open(size_t rollup_min_live_rows = 16) {
    service_.reset();
    if (!store_) store_ = std::make_unique<store::MemoryRowStore>(&clock_);
    options_.recent_age_ms = 10 * kDay;
    options_.historical_age_ms = 100 * kDay;
    options_.rotation_slack_ms = kDay;
    options_.rotation_max_per_s = 0;
    options_.rollup_min_live_rows = rollup_min_live_rows;
    options_.segment_records = 32;
    options_.past_segment_records = 24;  // chunks are re-cut as plays move between tiers
    // Members with small pasts summarise them on a read, larger ones store the summary.
    options_.past_summary_min_records = 20;
    auto s = ViewingService::Open(store_.get(), &clock_, options_, &metrics_);
    ASSERT_TRUE(s.ok()) << s.status();
    service_ = std::move(*s);
  }
  std::vector<ViewingRecord> ReadAll(MemberId m, Millis since = 0, Millis* detail_from = nullptr) {
    std::vector<ViewingRecord> all;
    HistoryQuery q;
    q.since = since;
    q.limit = 13;  // small pages exercise the cursor across tiers
    for (int pages = 0; pages < 10'000; ++pages) {
      auto page = service_->ReadHistory(m, q);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      if (detail_from && page->detail_from != INT64_MIN) *detail_from = page->detail_from;
      for (auto& r : page->records) all.push_back(r);
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    return all;
  }
  // Detailed reads return the oracle's plays that started at or after `from`, newest first.
  void ExpectDetail(MemberId m, const Oracle& oracle, Millis from) {
    std::vector<ViewingRecord> expected;
    for (auto it = oracle.rbegin(); it != oracle.rend(); ++it) {
      if (it->second.started_at >= from) expected.push_back(it->second);
    }
    auto got = ReadAll(m);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], expected[i]) << "record " << i;
    }
  }
  void ExpectSummary(MemberId m, const Oracle& oracle) {
    auto summary = service_->Summary(m);
    ASSERT_TRUE(summary.ok()) << summary.status();
    auto got = SortedByTitle(summary->titles);
    auto want = OracleSummary(oracle);
    EXPECT_EQ(got, want);
    if (getenv("DEBUG_TIERS") && got != want) {
      for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
        if (got[i] == want[i]) continue;
        std::cerr << "title " << want[i].title << " got " << got[i] << " want " << want[i]
                  << " detail_from " << summary->detail_from << " now " << clock_.NowMillis()
                  << " late_dropped "
                  << metrics_.GetCounter("strata_viewing_filter_dropped_total", "",
                                         "filter=\"older_than_summary\"")->Value()
                  << " rotations " << service_->rotation_status().rotated_members << "\n";
        auto detail = ReadAll(m);
        for (const auto& [k, r] : oracle) {
          if (r.title != want[i].title) continue;
          bool in_detail = false;
          for (const auto& d : detail) in_detail |= d == r;
          std::cerr << "  oracle started " << r.started_at << " s " << r.session << " ev "
                    << r.event_time << " w " << r.watched_ms << " in_detail " << in_detail
                    << "\n";
        }
        break;
      }
    }
  }
  uint64_t Records(const std::string& table) {
    auto report = service_->Report();
    EXPECT_TRUE(report.ok());
    for (const auto& t : *report) {
      if (t.table == table) return t.records;
    }
    ADD_FAILURE() << "no table " << table;
    return 0;
  }

  ManualClock clock_{kNow0};
  MetricsRegistry metrics_;
  ViewingOptions options_;
  std::unique_ptr<store::RowStore> store_;
  std::unique_ptr<ViewingService> service_;
};

// 300 plays over 200 days, with updates: after a rotation, the recent tier holds the last
// 10 days, the past tier days 10-100, the historical summary the rest.
TEST_F(ViewingTiersTest, RotationMovesPlaysByAgeAndReadsStitchTiers) {
  Open();
  std::mt19937_64 rng(5);
  Oracle oracle;
  std::vector<ViewingRecord> batch;
  for (int i = 0; i < 300; ++i) {
    const Millis started = kNow0 - static_cast<Millis>(rng() % (200 * kDay));
    auto r = Play(1, started, std::to_string(rng() % 2), started + 1000 + rng() % 3'600'000,
                  rng() % 25);
    batch.push_back(r);
    if (rng() % 3 == 0) {  // a later event of the same playback
      r.event_time += 60'000;
      r.position_ms += 60'000;
      r.watched_ms += 30'000;
      batch.push_back(r);
    }
  }
  for (const auto& r : batch) Note(&oracle, r);
  ASSERT_TRUE(service_->Ingest(batch).ok());
  ExpectSummary(1, oracle);  // before any rotation: all recent

  ASSERT_TRUE(service_->Rotate(1).ok());
  const Millis recent_cut = kNow0 - 10 * kDay, historical_cut = kNow0 - 100 * kDay;
  uint64_t in_recent = 0, in_past = 0, summarised = 0;
  for (const auto& [key, r] : oracle) {
    if (r.started_at >= recent_cut) {
      ++in_recent;
    } else if (r.started_at >= historical_cut) {
      ++in_past;
    } else {
      ++summarised;
    }
  }
  ASSERT_GT(in_recent, 0u);
  ASSERT_GT(in_past, 0u);
  ASSERT_GT(summarised, 0u);
  EXPECT_EQ(Records("plays_recent_compressed") + Records("plays_recent_live"), in_recent);
  EXPECT_EQ(Records("plays_past_compressed"), in_past);
  EXPECT_EQ(Records("plays_historical"), summarised);

  Millis detail_from = INT64_MIN;
  ReadAll(1, 0, &detail_from);
  EXPECT_EQ(detail_from, historical_cut);
  ExpectDetail(1, oracle, historical_cut);
  ExpectSummary(1, oracle);
  auto summary = service_->Summary(1);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->detail_from, historical_cut);

  // A read of the last few days alone does not need the past tier.
  const auto recent_only = ReadAll(1, kNow0 - 5 * kDay);
  for (const auto& r : recent_only) EXPECT_GE(r.started_at, kNow0 - 5 * kDay);

  // Rotating again changes nothing.
  ASSERT_TRUE(service_->Rotate(1).ok());
  ExpectDetail(1, oracle, historical_cut);
  ExpectSummary(1, oracle);
}

// A read that reaches the past tier while the member's recent tier is not cached reads the
// past tier in parallel (PrefetchPast); with a cache too small to hold anything, every page
// does, and the pages equal those read through the cache.
TEST_F(ViewingTiersTest, UncachedReadsPrefetchThePastTierAndMatchCachedReads) {
  Open();
  std::mt19937_64 rng(9);
  std::vector<ViewingRecord> batch;
  for (int i = 0; i < 300; ++i) {
    const Millis started = kNow0 - static_cast<Millis>(rng() % (200 * kDay));
    batch.push_back(Play(1, started, std::to_string(rng() % 2), started + 1000, rng() % 25));
  }
  ASSERT_TRUE(service_->Ingest(batch).ok());
  ASSERT_TRUE(service_->Rotate(1).ok());
  ASSERT_GT(Records("plays_past_compressed"), 13u);  // several pages come from the past tier
  Millis cached_from = INT64_MIN;
  const auto cached = ReadAll(1, 0, &cached_from);

  options_.cache_bytes = 1;
  Open();
  Counter* started = metrics_.GetCounter("strata_viewing_past_prefetches_total", "", "");
  Counter* used = metrics_.GetCounter("strata_viewing_past_prefetches_used_total", "", "");
  const uint64_t started0 = started->Value(), used0 = used->Value();
  Millis uncached_from = INT64_MIN;
  const auto uncached = ReadAll(1, 0, &uncached_from);
  EXPECT_EQ(uncached, cached);
  EXPECT_EQ(uncached_from, cached_from);
  EXPECT_GT(started->Value(), started0);
  EXPECT_GT(used->Value(), used0);
  EXPECT_LE(used->Value() - used0, started->Value() - started0);

  // The last few days alone never reach the past tier: no prefetch.
  const uint64_t started1 = started->Value();
  ReadAll(1, kNow0 - 5 * kDay);
  EXPECT_EQ(started->Value(), started1);
}

// DropCaches empties both caches: the next reads miss and give the same answers.
TEST_F(ViewingTiersTest, DroppedCachesRefillWithTheSameAnswers) {
  Open();
  std::vector<ViewingRecord> batch;
  for (int i = 0; i < 60; ++i) {
    const Millis started = kNow0 - static_cast<Millis>(i) * 4 * kDay;
    batch.push_back(Play(4, started, "s", started + 1000, i % 5));
  }
  ASSERT_TRUE(service_->Ingest(batch).ok());
  ASSERT_TRUE(service_->Rotate(4).ok());
  auto summary = service_->Summary(4);
  ASSERT_TRUE(summary.ok());
  const auto detail = ReadAll(4);
  Counter* misses = metrics_.GetCounter("strata_viewing_summary_cache_misses_total", "", "");
  const uint64_t misses0 = misses->Value();
  const auto [history, summaries] = service_->DropCaches();
  EXPECT_GT(history, 0u);
  EXPECT_EQ(summaries, 1u);
  auto again = service_->Summary(4);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(misses->Value(), misses0 + 1);
  EXPECT_EQ(SortedByTitle(again->titles), SortedByTitle(summary->titles));
  EXPECT_EQ(ReadAll(4), detail);
  EXPECT_EQ(service_->DropCaches().second, 1u);  // the read filled it again
}

// Late events for playbacks already in the past tier (updates and new ones) count once,
// before and after the next rotation, and detailed reads show their latest version.
TEST_F(ViewingTiersTest, LateEventsForPastPlaybacksCountOnce) {
  Open();
  Oracle oracle;
  std::vector<ViewingRecord> batch;
  for (int i = 0; i < 60; ++i) {
    const Millis started = kNow0 - 50 * kDay + i * 3600'000;
    batch.push_back(Play(2, started, "a", started + 600'000, i % 7));
  }
  for (int i = 0; i < 20; ++i) {
    const Millis started = kNow0 - 2 * kDay + i * 3600'000;
    batch.push_back(Play(2, started, "a", started + 600'000, i % 7));
  }
  for (const auto& r : batch) Note(&oracle, r);
  ASSERT_TRUE(service_->Ingest(batch).ok());
  ASSERT_TRUE(service_->Rotate(2).ok());
  ASSERT_EQ(Records("plays_past_compressed"), 60u);
  ExpectSummary(2, oracle);

  // An update of a past playback, and a new playback 40 days old, arrive late.
  std::vector<ViewingRecord> late = {batch[3], Play(2, kNow0 - 40 * kDay, "z", kNow0, 99)};
  late[0].event_time += 3600'000;
  late[0].watched_ms += 1'000'000;
  late[0].position_ms += 1'000'000;
  for (const auto& r : late) Note(&oracle, r);
  ASSERT_TRUE(service_->Ingest(late).ok());
  ExpectSummary(2, oracle);
  ExpectDetail(2, oracle, INT64_MIN);
  // An older event of a past playback changes nothing.
  auto stale = batch[5];
  stale.event_time -= 1000;
  stale.watched_ms = 1;
  ASSERT_TRUE(service_->Ingest({&stale, 1}).ok());
  ExpectSummary(2, oracle);

  service_->WaitForRotations();  // the summary read queued a rotation for the late plays
  ExpectSummary(2, oracle);
  ExpectDetail(2, oracle, INT64_MIN);
  EXPECT_EQ(Records("plays_past_compressed"), 61u);
  EXPECT_EQ(Records("plays_recent_compressed") + Records("plays_recent_live"), 20u);
}

// Months of activity with the clock moving forward: rotations at every step, reads and
// summaries always match the oracle.
TEST_F(ViewingTiersTest, RandomisedRotationsOverTimeMatchTheOracle) {
  Open();
  std::mt19937_64 rng(11);
  Oracle oracle;
  Millis detail_floor = INT64_MIN;  // historical cut of the last rotation
  for (int step = 0; step < 12; ++step) {
    const Millis now = clock_.NowMillis();
    std::vector<ViewingRecord> batch;
    for (int i = 0; i < 80; ++i) {
      // Mostly recent plays, some late ones within the detailed range.
      Millis started = now - static_cast<Millis>(rng() % (3 * kDay));
      if (rng() % 5 == 0 && detail_floor != INT64_MIN) {
        // Never older than what a rotation at this clock may have summarised already (a
        // background one may have run since the last explicit one): such late plays are
        // dropped by design.
        const Millis floor = std::max(detail_floor, now - options_.historical_age_ms);
        started = floor + static_cast<Millis>(rng() % (now - floor));
      }
      if (rng() % 4 == 0 && !oracle.empty()) {  // an update of an existing playback
        auto it = oracle.lower_bound({started, ""});
        if (it != oracle.end() &&
            it->second.started_at >= std::max(detail_floor, now - options_.historical_age_ms)) {
          auto r = it->second;
          r.event_time += 1 + static_cast<Millis>(rng() % 100'000);
          r.watched_ms += 500;
          batch.push_back(r);
          continue;
        }
      }
      batch.push_back(Play(3, started, std::to_string(rng() % 3),
                           started + 1 + static_cast<Millis>(rng() % 3'600'000), rng() % 40));
    }
    for (const auto& r : batch) Note(&oracle, r);
    ASSERT_TRUE(service_->Ingest(batch).ok());
    SCOPED_TRACE("step " + std::to_string(step));
    {
      SCOPED_TRACE("after ingest");
      ExpectSummary(3, oracle);
    }
    ASSERT_TRUE(service_->Rotate(3).ok());
    detail_floor = std::max(detail_floor, clock_.NowMillis() - options_.historical_age_ms);
    ExpectSummary(3, oracle);
    ExpectDetail(3, oracle, detail_floor);
    clock_.Advance(15 * kDay);
  }
  EXPECT_GT(Records("plays_historical"), 0u);
  EXPECT_GT(Records("plays_past_compressed"), 0u);
}

// Summaries reuse the summary of the recent compressed version and add live rows: updates
// of compressed playbacks must replace, not add to, what they update.
TEST_F(ViewingTiersTest, SummaryOfLiveUpdatesToCompressedPlaybacksMatchesTheOracle) {
  // Roll-ups only when the test asks: whether a summary read finds per-segment summaries to
  // reuse must not depend on when background roll-ups happen to run (it made this test fail
  // about one run in ten).
  Open(/*rollup_min_live_rows=*/1'000'000);
  std::mt19937_64 rng(3);
  Oracle oracle;
  for (int step = 0; step < 40; ++step) {
    std::vector<ViewingRecord> batch;
    for (int i = 0; i < 10; ++i) {
      if (!oracle.empty() && rng() % 2 == 0) {  // update an existing playback (any age)
        auto it = oracle.begin();
        std::advance(it, static_cast<long>(rng() % oracle.size()));
        auto r = it->second;
        r.event_time += 1 + static_cast<Millis>(rng() % 5000);
        r.watched_ms += 700;
        r.position_ms += 700;
        batch.push_back(r);
      } else {
        const Millis started = kNow0 - static_cast<Millis>(rng() % (5 * kDay));
        batch.push_back(Play(6, started, std::to_string(rng() % 4),
                             started + 1 + static_cast<Millis>(rng() % 100'000), rng() % 6));
      }
    }
    for (const auto& r : batch) Note(&oracle, r);
    ASSERT_TRUE(service_->Ingest(batch).ok());
    ExpectSummary(6, oracle);
    if (step % 3 == 2) {
      ASSERT_TRUE(service_->RollUp(6, Kind::kPlay).ok());
      ExpectSummary(6, oracle);
    }
  }
  // Both ways of summarising a segment ran: decoding it, and reusing the previous version's
  // summary of a segment the roll-up did not rewrite (the checks above cover both).
  const std::string m = metrics_.RenderPrometheus();
  auto count = [&](const std::string& source) {
    const std::string key =
        "strata_viewing_segment_summaries_total{source=\"" + source + "\"} ";
    const size_t at = m.find(key);
    return at == std::string::npos ? 0.0 : std::stod(m.substr(at + key.size()));
  };
  EXPECT_GT(count("decoded"), 0) << m;
  EXPECT_GT(count("reused"), 0) << m;
}

TEST_F(ViewingTiersTest, SummaryCacheServesRepeatReadsAndRotationRefreshesIt) {
  Open();
  Oracle oracle;
  std::vector<ViewingRecord> batch;
  for (int i = 0; i < 40; ++i) {
    const Millis started = kNow0 - 30 * kDay + i * kDay / 2;
    batch.push_back(Play(4, started, "s", started + 1000, i % 5));
  }
  for (const auto& r : batch) Note(&oracle, r);
  ASSERT_TRUE(service_->Ingest(batch).ok());
  ASSERT_TRUE(service_->Rotate(4).ok());
  const uint64_t misses0 = service_->summary_cache().misses();
  ExpectSummary(4, oracle);
  const uint64_t hits0 = service_->summary_cache().hits();
  ExpectSummary(4, oracle);
  ExpectSummary(4, oracle);
  EXPECT_EQ(service_->summary_cache().misses(), misses0 + 1);
  EXPECT_EQ(service_->summary_cache().hits(), hits0 + 2);
  // New plays do not invalidate it (they are added from the recent tier on read).
  auto fresh = Play(4, kNow0 - 1000, "n", kNow0, 77);
  Note(&oracle, fresh);
  ASSERT_TRUE(service_->Ingest({&fresh, 1}).ok());
  ExpectSummary(4, oracle);
  EXPECT_EQ(service_->summary_cache().misses(), misses0 + 1);
  // A rotation of a cached member refreshes its entries with the summaries it built: the
  // next read is still a hit, and still exact (recent -> past, then past -> historical).
  clock_.Advance(20 * kDay);
  ASSERT_TRUE(service_->Rotate(4).ok());
  ExpectSummary(4, oracle);
  EXPECT_EQ(service_->summary_cache().misses(), misses0 + 1);
  clock_.Advance(800 * kDay);
  ASSERT_TRUE(service_->Rotate(4).ok());
  ExpectSummary(4, oracle);
  EXPECT_EQ(service_->summary_cache().misses(), misses0 + 1);
  // A member nobody read is not added by its rotation (sweeps do not evict read members).
  auto other = Play(5, kNow0 - 30 * kDay, "s", kNow0 - 30 * kDay + 1000, 3);
  ASSERT_TRUE(service_->Ingest({&other, 1}).ok());
  ASSERT_TRUE(service_->Rotate(5).ok());
  EXPECT_FALSE(service_->summary_cache().Contains(5));
}

TEST_F(ViewingTiersTest, ReadsQueueRotationsAndTheSweepFindsMembersNobodyReads) {
  Open();
  std::vector<ViewingRecord> batch;
  for (MemberId m = 10; m < 20; ++m) {
    for (int i = 0; i < 5; ++i) {
      const Millis started = kNow0 - 30 * kDay + i * 3600'000;
      batch.push_back(Play(m, started, "s", started + 1000, 1));
    }
  }
  ASSERT_TRUE(service_->Ingest(batch).ok());
  service_->WaitForRollups();
  // A read of member 10 finds plays past the recent tier's age: it queues a rotation.
  ReadAll(10, kNow0 - kDay);
  service_->WaitForRotations();
  EXPECT_EQ(Records("plays_past_compressed"), 5u);
  EXPECT_GE(service_->rotation_status().rotated_members, 1u);
  // The sweep finds the other nine.
  service_->StartRotationSweep();
  service_->WaitForRotations();
  EXPECT_EQ(Records("plays_past_compressed"), 50u);
  EXPECT_EQ(Records("plays_recent_compressed") + Records("plays_recent_live"), 0u);
  const RotationStatus st = service_->rotation_status();
  EXPECT_EQ(st.sweep_scanned, 10u);  // member 10 is in the past tier now
  EXPECT_EQ(st.sweep_queued, 9u);
  EXPECT_EQ(st.moved_to_past, 50u);
  // A second sweep finds nothing to do.
  service_->StartRotationSweep();
  service_->WaitForRotations();
  EXPECT_EQ(service_->rotation_status().sweep_queued, 0u);
}

TEST_F(ViewingTiersTest, EraseRemovesEveryTier) {
  Open();
  std::vector<ViewingRecord> batch;
  for (int i = 0; i < 30; ++i) {
    const Millis started = kNow0 - 150 * kDay + i * 5 * kDay;
    batch.push_back(Play(5, started, "s", started + 1000, i));
  }
  ASSERT_TRUE(service_->Ingest(batch).ok());
  ASSERT_TRUE(service_->Rotate(5).ok());
  ASSERT_GT(Records("plays_historical"), 0u);
  ASSERT_TRUE(service_->EraseMember(5).ok());
  EXPECT_TRUE(ReadAll(5).empty());
  auto summary = service_->Summary(5);
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->titles.empty());
  EXPECT_EQ(Records("plays_historical"), 0u);
  EXPECT_EQ(Records("plays_past_compressed"), 0u);
}

// The report breaks each table down by row kind: after a rotation of one member with plays in
// every tier, and two language changes, each kind is counted once per row it has.
TEST_F(ViewingTiersTest, ReportCountsRowsByKind) {
  Open();
  std::vector<ViewingRecord> batch;
  for (int i = 0; i < 40; ++i) {
    const Millis started = kNow0 - 150 * kDay + i * 4 * kDay;  // 150 days ago .. 6 days ago
    batch.push_back(Play(6, started, "s", started + 1000, i));
  }
  batch.push_back(Play(6, kNow0 - kDay, "live", kNow0 - kDay + 5, 77));
  ViewingRecord lang = Play(6, kNow0 - 2 * kDay, "l1", kNow0 - 2 * kDay, 78);
  ASSERT_TRUE(service_->Ingest(batch).ok());
  ASSERT_TRUE(service_->Rotate(6).ok());
  lang.audio_lang = "de";
  ASSERT_TRUE(service_->Ingest({&lang, 1}).ok());
  auto report = service_->Report();
  ASSERT_TRUE(report.ok()) << report.status();
  std::map<std::string, std::map<std::string, RowKindReport>> by_table;
  for (const auto& t : *report) by_table[t.table] = t.rows;
  auto kinds = [&](const std::string& table) {
    std::map<std::string, uint64_t> out;
    for (const auto& [kind, rows] : by_table[table]) {
      // An 8-byte member partition; "m" and "p" are one byte, "s" + id nine.
      const uint64_t clustering = kind == "meta" || kind == "state" ? 1 : kind == "segment" ? 9 : 0;
      if (clustering > 0) {
        EXPECT_EQ(rows.key_bytes, rows.rows * (8 + clustering)) << table << " " << kind;
      } else {
        EXPECT_GT(rows.key_bytes, rows.rows * 8) << table << " " << kind;
      }
      EXPECT_GT(rows.value_bytes, 0u) << table << " " << kind;
      out[kind] = rows.rows;
    }
    return out;
  };
  // Past: one metadata row, one state row, and segments of at most 32 records.
  auto past = kinds("plays_past_compressed");
  EXPECT_EQ(past["meta"], 1u);
  EXPECT_EQ(past["state"], 1u);
  EXPECT_GE(past["segment"], 1u);
  EXPECT_EQ(past.size(), 3u);
  EXPECT_EQ(kinds("plays_historical"), (std::map<std::string, uint64_t>{{"state", 1}}));
  // The two newest plays (1 and 6 days ago) are live rows in the recent tier.
  EXPECT_EQ(kinds("plays_recent_live")["live"], Records("plays_recent_live"));
  EXPECT_GT(Records("plays_recent_live"), 0u);
  auto languages = kinds("languages");
  EXPECT_GE(languages["current"], 1u);
  EXPECT_GE(languages["change"], 1u);
}

// The past tier cuts its chunks at past_segment_records (24 here), the recent tier at
// segment_records (32).
TEST_F(ViewingTiersTest, PastChunksHoldPastSegmentRecords) {
  Open();
  std::vector<ViewingRecord> batch;
  for (int i = 0; i < 100; ++i) {  // 90 days ago .. 11 days ago: all past after a rotation
    const Millis started = kNow0 - 90 * kDay + i * (79 * kDay / 100);
    batch.push_back(Play(8, started, "s", started + 1000, i % 7));
  }
  for (int i = 0; i < 40; ++i) {  // recent
    const Millis started = kNow0 - 5 * kDay + i * 1000;
    batch.push_back(Play(8, started, "r", started + 10, i % 7));
  }
  ASSERT_TRUE(service_->Ingest(batch).ok());
  ASSERT_TRUE(service_->RollUp(8, Kind::kPlay).ok());
  ASSERT_TRUE(service_->Rotate(8).ok());
  ASSERT_EQ(Records("plays_past_compressed"), 100u);
  auto report = service_->Report();
  ASSERT_TRUE(report.ok()) << report.status();
  for (const auto& t : *report) {
    if (t.table == "plays_past_compressed") {
      EXPECT_EQ(t.rows.at("segment").rows, 5u);  // 100 records, 24 per chunk
    }
    if (t.table == "plays_recent_compressed") {
      EXPECT_EQ(t.rows.at("segment").rows, 2u);  // 40 records, 32 per chunk
    }
  }
  EXPECT_EQ(ReadAll(8).size(), 140u);
}

// A past tier of fewer than past_summary_min_records (20) plays stores no summary in its state
// row, and summary reads summarise its plays; from 20 on, the summary is stored. Either way
// the summary matches the oracle, from a cold cache too.
TEST_F(ViewingTiersTest, SmallPastsStoreNoSummaryAndReadsSummariseThem) {
  Open();
  store::Table* past = *store_->OpenTable({"plays_past_compressed",
                                           store::TableProfile::kCompressed});
  auto stored_state = [&] {
    auto row = past->Get(internal::MemberKey(9), "p");
    EXPECT_TRUE(row.ok()) << row.status();
    auto state = DecodePastState(row.ok() ? *row : "");
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? *state : PastState{};
  };
  Oracle oracle;
  auto add_past_plays = [&](int n, int first) {
    std::vector<ViewingRecord> batch;
    for (int i = first; i < first + n; ++i) {  // 60 .. 30 days ago
      const Millis started = kNow0 - 60 * kDay + i * kDay / 2;
      batch.push_back(Play(9, started, "p", started + 5000, 100 + i % 4));
    }
    for (const auto& r : batch) Note(&oracle, r);
    ASSERT_TRUE(service_->Ingest(batch).ok());
    ASSERT_TRUE(service_->Rotate(9).ok());
  };
  add_past_plays(12, 0);
  ASSERT_EQ(Records("plays_past_compressed"), 12u);
  PastState small = stored_state();
  EXPECT_EQ(small.meta_version, 0u);
  EXPECT_TRUE(small.summary.empty());
  ExpectSummary(9, oracle);
  Open();  // cold caches
  ExpectSummary(9, oracle);

  add_past_plays(12, 12);
  ASSERT_EQ(Records("plays_past_compressed"), 24u);
  PastState large = stored_state();
  EXPECT_GT(large.meta_version, 0u);
  uint64_t plays = 0;
  for (const auto& t : large.summary) plays += t.plays;
  EXPECT_EQ(plays, 24u);
  ExpectSummary(9, oracle);
  Open();
  ExpectSummary(9, oracle);
}

// Rotation tasks on the durable queue: a task queued by an earlier process (that then died,
// with or without having taken it) is carried out after a restart.
TEST_F(ViewingTiersTest, QueuedRotationsSurviveARestartAndUntakenOnesAreRedelivered) {
  Open();
  std::vector<ViewingRecord> batch;
  for (MemberId m = 30; m < 33; ++m) {
    for (int i = 0; i < 4; ++i) {
      const Millis started = kNow0 - 40 * kDay + i * 3600'000;
      batch.push_back(Play(m, started, "s", started + 1000, 1));
    }
  }
  ASSERT_TRUE(service_->Ingest(batch).ok());
  service_.reset();  // the "earlier process" is gone; its data stays in store_

  store::EmbeddedQueueOptions qo;
  qo.clock = &clock_;
  qo.metrics = &metrics_;
  qo.retention_interval_ms = 0;
  auto queue = store::EmbeddedQueue::Open(store_.get(), qo);
  ASSERT_TRUE(queue.ok()) << queue.status();
  ASSERT_TRUE((*queue)->CreateTopic({ViewingService::kRotationTopic,
                                     ViewingService::kRotationPartitions}).ok());
  auto task = [](MemberId m) {
    std::string v;
    coding::PutFixed64BE(&v, m);
    return store::PublishMessage{std::to_string(m), v};
  };
  std::vector<store::PublishMessage> tasks = {task(30), task(31), task(32)};
  ASSERT_TRUE((*queue)->Publish(ViewingService::kRotationTopic, tasks).ok());
  // A worker of the earlier process took every task but committed none, then died.
  store::PollRequest poll;
  poll.group = ViewingService::kRotationGroup;
  poll.topic = ViewingService::kRotationTopic;
  for (int p = 0; p < ViewingService::kRotationPartitions; ++p) poll.partitions.push_back(p);
  poll.max_messages = 100;
  auto taken = (*queue)->Poll(poll);
  ASSERT_TRUE(taken.ok());
  ASSERT_EQ(taken->size(), 3u);
  queue->reset();

  // Restart: a new queue over the same store redelivers; the service carries them out.
  auto reopened = store::EmbeddedQueue::Open(store_.get(), qo);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  auto s = ViewingService::Open(store_.get(), &clock_, options_, &metrics_, reopened->get());
  ASSERT_TRUE(s.ok()) << s.status();
  service_ = std::move(*s);
  service_->WaitForRotations();
  EXPECT_EQ(Records("plays_past_compressed"), 12u);
  EXPECT_EQ(service_->rotation_status().queued, 0u);
  auto lag = (*reopened)->Lag(ViewingService::kRotationGroup, ViewingService::kRotationTopic);
  ASSERT_TRUE(lag.ok());
  for (const auto& p : *lag) EXPECT_EQ(p.backlog, 0u) << "partition " << p.partition;
  // New triggers go through the queue too.
  auto late = Play(33, kNow0 - 20 * kDay, "x", kNow0 - 20 * kDay + 5, 2);
  ASSERT_TRUE(service_->Ingest({&late, 1}).ok());
  ReadAll(33, kNow0 - kDay);
  service_->WaitForRotations();
  EXPECT_EQ(Records("plays_past_compressed"), 13u);
  service_.reset();  // before the queue it uses
}

TEST(SummaryEncoding, RoundTripsAndRejectsCorruption) {
  std::vector<TitleSummary> titles = {{5, 3, 1000, kNow0 - 5, kNow0, 7},
                                      {1, 1, 0, -10, -10, 0},
                                      {900'000'000'000, 2, 123456789, kNow0, kNow0 + 9, -1}};
  std::string blob = EncodeSummary(titles);
  auto back = DecodeSummary(blob);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, SortedByTitle(titles));
  for (size_t cut = 0; cut < blob.size(); ++cut) {
    EXPECT_FALSE(DecodeSummary(blob.substr(0, cut)).ok()) << cut;
  }
  blob[0] = 9;
  EXPECT_FALSE(DecodeSummary(blob).ok());
  PastState p{kNow0, kNow0 - 7, 4, titles};
  auto p2 = DecodePastState(EncodePastState(p));
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->rotated_until, kNow0);
  EXPECT_EQ(p2->summary_from, kNow0 - 7);
  EXPECT_EQ(p2->meta_version, 4u);
  EXPECT_EQ(p2->summary, SortedByTitle(titles));
}

// Found by scripts/fuzz.sh codec: a historical state whose summary's title column steps from
// 3 by 2^64-8 (wrapping to 2^64-5) and then by 40 (wrapping to 35). The decoder used to accept
// the unsorted titles, so re-encoding (which sorts) changed the summary.
TEST(SummaryEncoding, RejectsATitleColumnThatWrapsPastUint64Max) {
  std::string wrapped;
  ASSERT_TRUE(absl::Base64Unescape(
      "AQOA0M+6hWABKLUv/SA5yQEAAwP4//////////8BKIDTDgCA0coIgJDMva9iiZDMva9iioD09pBdgJBywEoAgKC3"
      "h+kFCgBvJZYB",
      &wrapped));
  auto state = DecodeHistoricalState(wrapped);
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.status().message().find("titles not ascending"), std::string_view::npos)
      << state.status();

  // The largest title is still fine, as the only one and after a smaller one.
  for (const auto& titles : {std::vector<TitleSummary>{{UINT64_MAX, 1, 5, 10, 20, 5}},
                             std::vector<TitleSummary>{{3, 1, 5, 10, 20, 5},
                                                       {UINT64_MAX, 2, 6, 11, 21, 6}}}) {
    auto back = DecodeSummary(EncodeSummary(titles));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, titles);
  }
}

}  // namespace
}  // namespace strata::viewing
