// Logic tests of the viewing service over the in-memory row store. The same service runs on
// RocksDB in tests/viewing_crash_test.cc and the end-to-end tests.
#include "strata/viewing/viewing_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "strata/store/memory_row_store.h"
#include "strata/viewing/viewing_internal.h"

namespace strata::viewing {
namespace {

constexpr Millis kT0 = 1'700'000'000'000;

ViewingRecord Play(MemberId m, Millis started, std::string session, Millis event_time,
                   TitleId title = 1) {
  ViewingRecord r;
  r.member = m;
  r.kind = Kind::kPlay;
  r.title = title;
  r.session = std::move(session);
  r.started_at = started;
  r.event_time = event_time;
  r.position_ms = (event_time - started);
  r.watched_ms = (event_time - started);
  r.device = "tv";
  r.country = "US";
  r.content_lang = "en";
  r.audio_lang = "en";
  return r;
}

class ViewingServiceTest : public ::testing::Test {
 protected:
  void Open(ViewingOptions options = {}) {
    service_.reset();
    if (!store_) store_ = std::make_unique<store::MemoryRowStore>(&clock_);
    auto s = ViewingService::Open(store_.get(), &clock_, options, &metrics_);
    ASSERT_TRUE(s.ok()) << s.status();
    service_ = std::move(*s);
  }
  std::vector<ViewingRecord> ReadAll(MemberId m, Kind kind = Kind::kPlay) {
    std::vector<ViewingRecord> all;
    HistoryQuery q;
    q.kind = kind;
    q.limit = 7;  // small pages exercise the cursor
    for (;;) {
      auto page = service_->ReadHistory(m, q);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (auto& r : page->records) all.push_back(r);
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    return all;
  }

  // Records in one table, from the service's report (0 if the report fails: that fails too).
  uint64_t Records(const std::string& table) {
    auto report = service_->Report();
    EXPECT_TRUE(report.ok()) << report.status();
    if (!report.ok()) return 0;
    for (const auto& t : *report) {
      if (t.table == table) return t.records;
    }
    ADD_FAILURE() << "no table " << table;
    return 0;
  }

  ManualClock clock_{kT0 + 3600'000};
  MetricsRegistry metrics_;
  std::unique_ptr<store::RowStore> store_;
  std::unique_ptr<ViewingService> service_;
};

TEST_F(ViewingServiceTest, LatestEventWinsInAnyArrivalOrderAndRetriesAreIdempotent) {
  Open();
  std::vector<ViewingRecord> events = {Play(1, kT0, "s1", kT0 + 3000),
                                       Play(1, kT0, "s1", kT0 + 1000),
                                       Play(1, kT0, "s1", kT0 + 2000)};
  ASSERT_TRUE(service_->Ingest(events).ok());
  ASSERT_TRUE(service_->Ingest(events).ok());  // retry of the same batch
  auto all = ReadAll(1);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].event_time, kT0 + 3000);
  EXPECT_EQ(all[0].position_ms, 3000);
}

TEST(CoalescePlaybacksTest, KeepsTheLatestEventOfEachPlaybackInKeyOrder) {
  std::vector<ViewingRecord> events = {
      Play(1, kT0 + 5, "b", kT0 + 10),  // 0
      Play(1, kT0, "a", kT0 + 30),      // 1: latest of (kT0, "a")
      Play(1, kT0 + 5, "b", kT0 + 20),  // 2: latest of (kT0 + 5, "b")
      Play(1, kT0, "a", kT0 + 20),      // 3
      Play(1, kT0, "c", kT0 + 7),       // 4: tied with 5, arrived first
      Play(1, kT0, "c", kT0 + 7),       // 5: tied, arrived later: kept
  };
  events[4].position_ms = 1;
  events[5].position_ms = 2;
  std::vector<const ViewingRecord*> in;
  for (const auto& e : events) in.push_back(&e);
  const ViewingRecord other = Play(9, 0, "z", 1);
  std::vector<const ViewingRecord*> out = {&other};
  internal::CoalescePlaybacks(in, &out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], &other);  // earlier elements untouched
  EXPECT_EQ(out[1], &events[1]);
  EXPECT_EQ(out[2], &events[5]);
  EXPECT_EQ(out[3], &events[2]);
}

// Coalescing a batch's events per playback must not change what is stored, read or counted:
// every event is accepted, the latest wins whatever the arrival order (within and across
// batches), and a superseded event's language choice still reaches the language filter.
TEST_F(ViewingServiceTest, EventsOfOnePlaybackInOneBatchAreAllAppliedAndCounted) {
  Open();
  std::mt19937 rng(7);
  std::map<std::pair<Millis, std::string>, Millis> latest;  // oracle: playback -> event_time
  for (int batch = 0; batch < 20; ++batch) {
    std::vector<ViewingRecord> events;
    for (int k = 0; k < 50; ++k) {
      Millis started = kT0 + static_cast<Millis>(rng() % 8) * 1000;
      std::string session = "s" + std::to_string(rng() % 3);
      Millis event_time = started + static_cast<Millis>(rng() % 500);
      events.push_back(Play(5, started, session, event_time));
      Millis& l = latest[{started, session}];
      l = std::max(l, event_time);
    }
    auto result = service_->Ingest(events);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->accepted, events.size());
  }
  auto all = ReadAll(5);
  ASSERT_EQ(all.size(), latest.size());
  for (const auto& r : all) {
    EXPECT_EQ(r.event_time, (latest[{r.started_at, r.session}])) << r.session;
    EXPECT_EQ(r.position_ms, r.event_time - r.started_at);
  }

  // One playback, three events in one batch; the middle one (by event time) switches audio.
  ViewingRecord a = Play(6, kT0, "p", kT0 + 100);
  ViewingRecord b = Play(6, kT0, "p", kT0 + 200);
  b.audio_lang = "fr";
  ViewingRecord c = Play(6, kT0, "p", kT0 + 300);
  c.audio_lang = "fr";
  std::vector<ViewingRecord> batch = {c, a, b};
  ASSERT_TRUE(service_->Ingest(batch).ok());
  auto langs = service_->Languages(6);
  ASSERT_TRUE(langs.ok()) << langs.status();
  ASSERT_EQ(langs->changes.size(), 2u);  // en at +100, fr at +200
  EXPECT_EQ(langs->changes[0].audio_lang, "fr");
  EXPECT_EQ(langs->changes[0].event_time, kT0 + 200);
  auto six = ReadAll(6);
  ASSERT_EQ(six.size(), 1u);
  EXPECT_EQ(six[0].event_time, kT0 + 300);
}

TEST_F(ViewingServiceTest, NewestFirstWithCursorPagingAndTimeFilter) {
  Open();
  std::vector<ViewingRecord> events;
  for (int i = 0; i < 30; ++i) events.push_back(Play(2, kT0 + i * 1000, "s", kT0 + i * 1000 + 5));
  ASSERT_TRUE(service_->Ingest(events).ok());
  auto all = ReadAll(2);
  ASSERT_EQ(all.size(), 30u);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GT(all[i - 1].started_at, all[i].started_at);

  HistoryQuery q;
  q.since = kT0 + 10'000;
  q.until = kT0 + 20'000;
  q.limit = 100;
  auto page = service_->ReadHistory(2, q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 10u);
  EXPECT_EQ(page->records.front().started_at, kT0 + 19'000);
  EXPECT_EQ(page->records.back().started_at, kT0 + 10'000);
  EXPECT_TRUE(page->next_cursor.empty());

  q.cursor = "zz-not-a-cursor";
  auto bad = service_->ReadHistory(2, q);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("cursor"), std::string::npos);
  q.cursor.clear();
  q.limit = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(service_->ReadHistory(2, q).status()));
}

TEST_F(ViewingServiceTest, ShortPreviewsAreDroppedAndPreviewsExpire) {
  ViewingOptions options;
  options.min_preview_watched_ms = 5000;
  options.preview_ttl_ms = 24 * 3600'000;
  Open(options);
  ViewingRecord short_preview = Play(3, kT0, "p1", kT0 + 100);
  short_preview.kind = Kind::kPreview;
  short_preview.watched_ms = 1000;
  ViewingRecord long_preview = short_preview;
  long_preview.session = "p2";
  long_preview.watched_ms = 9000;
  std::vector<ViewingRecord> events = {short_preview, long_preview};
  auto result = service_->Ingest(events);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->accepted, 1u);
  EXPECT_EQ(result->dropped, 1u);
  EXPECT_EQ(ReadAll(3, Kind::kPreview).size(), 1u);
  EXPECT_EQ(ReadAll(3, Kind::kPlay).size(), 0u);
  clock_.Set(long_preview.event_time + options.preview_ttl_ms);
  EXPECT_EQ(ReadAll(3, Kind::kPreview).size(), 0u) << "expired previews are not served";
}

TEST_F(ViewingServiceTest, LanguagePreferenceStoredOnlyWhenItChanges) {
  Open();
  std::vector<ViewingRecord> events;
  for (int i = 0; i < 5; ++i) events.push_back(Play(4, kT0 + i, std::to_string(i), kT0 + i));
  ViewingRecord changed = Play(4, kT0 + 10, "x", kT0 + 10);
  changed.audio_lang = "fr";
  changed.subtitle_lang = "en";
  events.push_back(changed);
  ASSERT_TRUE(service_->Ingest(events).ok());
  // Same preference again in a later batch: no new change.
  std::vector<ViewingRecord> again = {Play(4, kT0 + 20, "y", kT0 + 20)};
  again[0].audio_lang = "fr";
  again[0].subtitle_lang = "en";
  ASSERT_TRUE(service_->Ingest(again).ok());
  auto langs = service_->Languages(4);
  ASSERT_TRUE(langs.ok());
  ASSERT_EQ(langs->current.size(), 1u);
  EXPECT_EQ(langs->current[0].content_lang, "en");
  EXPECT_EQ(langs->current[0].audio_lang, "fr");
  ASSERT_EQ(langs->changes.size(), 2u);
  EXPECT_EQ(langs->changes[0].audio_lang, "fr");  // newest first
  EXPECT_EQ(langs->changes[1].audio_lang, "en");

  // A restarted service (empty comparison cache) still compares with the stored current.
  Open();
  ASSERT_TRUE(service_->Ingest(again).ok());
  EXPECT_EQ(service_->Languages(4)->changes.size(), 2u);
}

TEST_F(ViewingServiceTest, RollUpKeepsEveryRecordExactlyOnceAcrossChunks) {
  ViewingOptions options;
  options.rollup_min_live_rows = 50;
  options.segment_records = 16;  // and many segments
  Open(options);
  std::map<std::pair<Millis, std::string>, Millis> oracle;
  std::mt19937_64 rng(3);
  for (int batch = 0; batch < 20; ++batch) {
    std::vector<ViewingRecord> events;
    for (int i = 0; i < 40; ++i) {
      Millis started = kT0 + static_cast<Millis>(rng() % 5000) * 1000;
      std::string session = std::to_string(rng() % 3);
      Millis event_time = started + static_cast<Millis>(rng() % 100000);
      events.push_back(Play(5, started, session, event_time, rng() % 50));
      auto& best = oracle[{started, session}];
      best = std::max(best, event_time);
    }
    ASSERT_TRUE(service_->Ingest(events).ok());
  }
  service_->WaitForRollups();
  ASSERT_TRUE(service_->RollUp(5, Kind::kPlay).ok());
  auto all = ReadAll(5);
  ASSERT_EQ(all.size(), oracle.size());
  for (const auto& r : all) EXPECT_EQ(r.event_time, (oracle[{r.started_at, r.session}]));
  EXPECT_EQ(Records("plays_recent_live"), 0u);
  EXPECT_EQ(Records("plays_recent_compressed"), oracle.size());

  // An update of a rolled-up playback wins; a stale one does not.
  ViewingRecord first = all.back();
  std::vector<ViewingRecord> update = {Play(5, first.started_at, first.session,
                                            first.event_time + 1, 999)};
  std::vector<ViewingRecord> stale = {Play(5, first.started_at, first.session,
                                           first.event_time - 1, 111)};
  ASSERT_TRUE(service_->Ingest(update).ok());
  ASSERT_TRUE(service_->Ingest(stale).ok());
  for (int pass = 0; pass < 2; ++pass) {
    auto again = ReadAll(5);
    ASSERT_EQ(again.size(), oracle.size());
    EXPECT_EQ(again.back().title, 999u);
    ASSERT_TRUE(service_->RollUp(5, Kind::kPlay).ok());
  }
}

// The growth fraction would let a long history keep ever more live rows (each read merges
// them); rollup_max_live_rows caps the trigger. Fraction 1.0 here: after a roll-up of 100
// records, 40 new live rows stay live without the cap and are rolled up with a cap of 30.
TEST_F(ViewingServiceTest, RollupMaxLiveRowsCapsTheGrowthFraction) {
  for (size_t cap : {size_t{1'000'000}, size_t{30}}) {
    SCOPED_TRACE(cap);
    store_.reset();
    ViewingOptions options;
    options.rollup_min_live_rows = 10;
    options.rollup_growth_fraction = 1.0;
    options.rollup_max_live_rows = cap;
    Open(options);
    auto plays = [](int from, int count) {
      std::vector<ViewingRecord> events;
      for (int i = from; i < from + count; ++i) {
        events.push_back(Play(9, kT0 + i * 1000, "s", kT0 + i * 1000 + 500));
      }
      return events;
    };
    ASSERT_TRUE(service_->Ingest(plays(0, 100)).ok());
    service_->WaitForRollups();
    ASSERT_TRUE(service_->RollUp(9, Kind::kPlay).ok());
    ASSERT_TRUE(service_->Ingest(plays(100, 40)).ok());
    service_->WaitForRollups();
    const uint64_t live = Records("plays_recent_live");
    const uint64_t compressed = Records("plays_recent_compressed");
    if (cap == 30) {
      EXPECT_EQ(live, 0u);
      EXPECT_EQ(compressed, 140u);
    } else {
      EXPECT_EQ(live, 40u);
      EXPECT_EQ(compressed, 100u);
    }
    EXPECT_EQ(ReadAll(9).size(), 140u);
  }
}

// Members below the count trigger (most of them, under Zipf activity) are rolled up once
// their oldest live write is rollup_max_live_age_ms old; rows written later wait for their
// own age. After a restart the stored live rows are counted and age from the restart.
TEST_F(ViewingServiceTest, LiveRowsBelowTheCountTriggerRollUpByAge) {
  ViewingOptions options;
  options.rollup_min_live_rows = 1000;  // never reached here
  options.rollup_max_live_age_ms = 60'000;
  Open(options);
  auto plays = [](int from, int count) {
    std::vector<ViewingRecord> events;
    for (int i = from; i < from + count; ++i) {
      events.push_back(Play(4, kT0 + i * 1000, "s", kT0 + i * 1000 + 500));
    }
    return events;
  };
  ASSERT_TRUE(service_->Ingest(plays(0, 3)).ok());
  clock_.Advance(59'999);
  EXPECT_EQ(service_->QueueAgedRollups(), 0u);
  service_->WaitForRollups();
  EXPECT_EQ(Records("plays_recent_live"), 3u);

  clock_.Advance(1);
  service_->QueueAgedRollups();  // or the service's own thread did it already
  service_->WaitForRollups();
  EXPECT_EQ(Records("plays_recent_live"), 0u);
  EXPECT_EQ(Records("plays_recent_compressed"), 3u);
  EXPECT_EQ(service_->QueueAgedRollups(), 0u);  // nothing live: nothing ages

  // New rows age from their own write.
  ASSERT_TRUE(service_->Ingest(plays(3, 2)).ok());
  clock_.Advance(30'000);
  EXPECT_EQ(service_->QueueAgedRollups(), 0u);
  EXPECT_EQ(Records("plays_recent_live"), 2u);

  // A restart forgets the counts; the stored rows are counted again and age from then.
  service_.reset();
  Open(options);
  for (int i = 0; i < 200 && Records("plays_recent_live") != 0; ++i) {
    // The start-up count runs on the service's thread: until it has, nothing is due.
    clock_.Advance(60'000);
    service_->QueueAgedRollups();
    service_->WaitForRollups();
    if (Records("plays_recent_live") != 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  EXPECT_EQ(Records("plays_recent_live"), 0u);
  EXPECT_EQ(Records("plays_recent_compressed"), 5u);
  EXPECT_EQ(ReadAll(4).size(), 5u);
}

TEST_F(ViewingServiceTest, ReadsFromTheStoreMatchReadsFromTheCache) {
  ViewingOptions options;
  options.rollup_min_live_rows = 10;
  Open(options);
  std::vector<ViewingRecord> events;
  for (int i = 0; i < 35; ++i) events.push_back(Play(6, kT0 + i * 10, "s", kT0 + i * 10 + 1));
  ASSERT_TRUE(service_->Ingest(events).ok());
  service_->WaitForRollups();
  auto cached = ReadAll(6);
  uint64_t hits = service_->cache().hits();
  auto cached_again = ReadAll(6);
  EXPECT_GT(service_->cache().hits(), hits);
  Open(options);  // cold cache: everything read from the store
  auto cold = ReadAll(6);
  EXPECT_EQ(cached, cold);
  EXPECT_EQ(cached, cached_again);
  EXPECT_EQ(cold.size(), 35u);
}

TEST_F(ViewingServiceTest, PagesMatchABruteForceOracleAcrossSegments) {
  ViewingOptions options;
  options.rollup_min_live_rows = 40;
  options.segment_records = 8;
  Open(options);
  std::mt19937_64 rng(9);
  std::map<std::pair<Millis, std::string>, Millis> oracle;
  for (int batch = 0; batch < 12; ++batch) {
    std::vector<ViewingRecord> events;
    for (int i = 0; i < 25; ++i) {
      Millis started = kT0 + static_cast<Millis>(rng() % 400) * 1000;
      std::string session = std::to_string(rng() % 3);
      Millis event_time = started + static_cast<Millis>(rng() % 1000);
      events.push_back(Play(12, started, session, event_time));
      auto& best = oracle[{started, session}];
      best = std::max(best, event_time);
    }
    ASSERT_TRUE(service_->Ingest(events).ok());
    if (batch % 4 == 3) {
      ASSERT_TRUE(service_->RollUp(12, Kind::kPlay).ok());
    }
  }
  // Leave some live rows (updates of old playbacks too) on top of the segments.
  for (int query = 0; query < 40; ++query) {
    HistoryQuery q;
    q.limit = 1 + rng() % 30;
    if (query % 2 == 0) {  // odd queries: the whole history, as "newest N" reads ask
      q.since = kT0 + static_cast<Millis>(rng() % 200) * 1000;
      q.until = q.since + static_cast<Millis>(rng() % 300) * 1000;
    }
    std::vector<std::pair<Millis, std::string>> want;
    for (auto it = oracle.rbegin(); it != oracle.rend(); ++it) {
      if (it->first.first >= q.since && it->first.first < q.until) want.push_back(it->first);
    }
    std::vector<std::pair<Millis, std::string>> got;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = service_->ReadHistory(12, q);
      ASSERT_TRUE(page.ok()) << page.status();
      for (const auto& r : page->records) {
        got.emplace_back(r.started_at, r.session);
        EXPECT_EQ(r.event_time, (oracle[{r.started_at, r.session}]));
      }
      if (page->next_cursor.empty()) break;
      q.cursor = page->next_cursor;
    }
    EXPECT_EQ(got, want) << "query " << query;
  }
}

TEST_F(ViewingServiceTest, WritesDuringARollUpAreNotLost) {
  ViewingOptions options;
  options.rollup_min_live_rows = 1000;
  options.segment_records = 4;
  Open(options);
  std::vector<ViewingRecord> events;
  for (int i = 0; i < 20; ++i) events.push_back(Play(13, kT0 + i * 100, "s", kT0 + i * 100 + 1));
  ASSERT_TRUE(service_->Ingest(events).ok());
  // While the roll-up has encoded the 20 live rows but not committed: update one of them,
  // send a stale event for another, and add a new playback.
  service_->SetRollupHookForTesting([&] {
    std::vector<ViewingRecord> racing = {Play(13, kT0 + 500, "s", kT0 + 9999, 42),
                                         Play(13, kT0 + 600, "s", kT0 + 600, 43),
                                         Play(13, kT0 + 5000, "new", kT0 + 5001, 44)};
    ASSERT_TRUE(service_->Ingest(racing).ok());
  });
  ASSERT_TRUE(service_->RollUp(13, Kind::kPlay).ok());
  service_->SetRollupHookForTesting(nullptr);
  // The roll-up deleted every rolled row the race left alone, the newest (kT0 + 1900)
  // included; what stays live is the updated playback and the new one.
  EXPECT_EQ(Records("plays_recent_live"), 2u);
  for (int pass = 0; pass < 3; ++pass) {  // cache, cold store, after the next roll-up
    auto all = ReadAll(13);
    ASSERT_EQ(all.size(), 21u) << "pass " << pass;
    std::map<Millis, ViewingRecord> by_start;
    for (const auto& r : all) by_start[r.started_at] = r;
    EXPECT_EQ(by_start[kT0 + 500].event_time, kT0 + 9999) << "the racing update wins";
    EXPECT_EQ(by_start[kT0 + 500].title, 42u);
    EXPECT_EQ(by_start[kT0 + 600].event_time, kT0 + 601) << "the stale event loses";
    EXPECT_EQ(by_start[kT0 + 5000].title, 44u);
    if (pass == 0) Open(options);
    if (pass == 1) {
      ASSERT_TRUE(service_->RollUp(13, Kind::kPlay).ok());
    }
  }
  auto report = service_->Report();
  ASSERT_TRUE(report.ok());
  for (const auto& t : *report) {
    if (t.table == "plays_recent_live") {
      EXPECT_EQ(t.records, 0u);
    }
  }
}

TEST_F(ViewingServiceTest, LateUpdatesOfOldPlaybacksAreReadAfterARollUp) {
  ViewingOptions options;
  options.rollup_min_live_rows = 1000;
  options.cache_bytes = 1;  // nothing fits: every read goes to the store
  Open(options);
  std::vector<ViewingRecord> events;
  for (int i = 0; i < 30; ++i) events.push_back(Play(14, kT0 + i * 100, "s", kT0 + i * 100 + 1));
  ASSERT_TRUE(service_->Ingest(events).ok());
  ASSERT_TRUE(service_->RollUp(14, Kind::kPlay).ok());
  // After the roll-up the member has no live rows; a progress event for the oldest playback
  // lands before every row the roll-up deleted.
  std::vector<ViewingRecord> late = {Play(14, kT0, "s", kT0 + 777, 99)};
  ASSERT_TRUE(service_->Ingest(late).ok());
  auto all = ReadAll(14);
  ASSERT_EQ(all.size(), 30u);
  EXPECT_EQ(all.back().started_at, kT0);
  EXPECT_EQ(all.back().event_time, kT0 + 777);
  EXPECT_EQ(all.back().title, 99u);
  ASSERT_TRUE(service_->RollUp(14, Kind::kPlay).ok());
  EXPECT_EQ(ReadAll(14).back().event_time, kT0 + 777);
}

TEST_F(ViewingServiceTest, ExpiredChunksStillListedInTheMetadataReadAsEmpty) {
  ViewingOptions options;
  options.preview_ttl_ms = 24 * 3600'000;
  options.rollup_min_live_rows = 1000;
  options.segment_records = 4;
  options.cache_bytes = 1;  // read from the store every time
  Open(options);
  auto preview = [](Millis started, std::string session) {
    ViewingRecord r = Play(15, started, std::move(session), started + 10);
    r.kind = Kind::kPreview;
    r.watched_ms = 60'000;
    return r;
  };
  const Millis day = 24 * 3600'000;
  clock_.Set(kT0 + 1000);
  std::vector<ViewingRecord> old_ones;
  for (int i = 0; i < 8; ++i) old_ones.push_back(preview(kT0 + i, "old" + std::to_string(i)));
  ASSERT_TRUE(service_->Ingest(old_ones).ok());
  ASSERT_TRUE(service_->RollUp(15, Kind::kPreview).ok());  // two chunks of old previews
  clock_.Set(kT0 + day / 2);
  std::vector<ViewingRecord> new_ones;
  for (int i = 0; i < 4; ++i) new_ones.push_back(preview(kT0 + day / 2 + i, "new" + std::to_string(i)));
  ASSERT_TRUE(service_->Ingest(new_ones).ok());
  // The new previews fall into the newest chunk: the oldest chunk is kept as it was, with
  // the expiry of the first version.
  ASSERT_TRUE(service_->RollUp(15, Kind::kPreview).ok());
  // The oldest chunk's row expires; the metadata still lists it until the next roll-up.
  clock_.Set(kT0 + day + 100);
  auto all = ReadAll(15, Kind::kPreview);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all.back().session, "new0");
  std::vector<ViewingRecord> more = {preview(kT0 + day + 50, "more")};
  ASSERT_TRUE(service_->Ingest(more).ok());
  ASSERT_TRUE(service_->RollUp(15, Kind::kPreview).ok());
  EXPECT_EQ(ReadAll(15, Kind::kPreview).size(), 5u);
}

TEST_F(ViewingServiceTest, SummaryAggregatesPerTitle) {
  Open();
  std::vector<ViewingRecord> events = {Play(7, kT0, "a", kT0 + 100, 1),
                                       Play(7, kT0 + 1000, "b", kT0 + 1300, 1),
                                       Play(7, kT0 + 2000, "c", kT0 + 2050, 2)};
  ASSERT_TRUE(service_->Ingest(events).ok());
  auto summary = service_->Summary(7);
  ASSERT_TRUE(summary.ok());
  ASSERT_EQ(summary->titles.size(), 2u);
  EXPECT_EQ(summary->titles[0].title, 2u);  // most recently watched first
  const TitleSummary& t1 = summary->titles[1];
  EXPECT_EQ(t1.plays, 2u);
  EXPECT_EQ(t1.watched_ms, 400);
  EXPECT_EQ(t1.first_at, kT0);
  EXPECT_EQ(t1.last_at, kT0 + 1000);
  EXPECT_EQ(t1.position_ms, 300);
}

TEST_F(ViewingServiceTest, EraseRemovesTheMemberEverywhere) {
  ViewingOptions options;
  options.rollup_min_live_rows = 5;
  Open(options);
  std::vector<ViewingRecord> events;
  for (int i = 0; i < 12; ++i) events.push_back(Play(8, kT0 + i, "s", kT0 + i));
  ViewingRecord preview = Play(8, kT0, "p", kT0 + 10);
  preview.kind = Kind::kPreview;
  preview.watched_ms = 60000;
  events.push_back(preview);
  events.push_back(Play(9, kT0, "other", kT0));
  ASSERT_TRUE(service_->Ingest(events).ok());
  service_->WaitForRollups();
  ASSERT_FALSE(ReadAll(8).empty());  // warms the cache
  ASSERT_TRUE(service_->EraseMember(8).ok());
  EXPECT_TRUE(ReadAll(8).empty());
  EXPECT_TRUE(ReadAll(8, Kind::kPreview).empty());
  EXPECT_TRUE(service_->Languages(8)->current.empty());
  EXPECT_EQ(ReadAll(9).size(), 1u) << "other members are untouched";
  Open(options);
  EXPECT_TRUE(ReadAll(8).empty());
}

TEST_F(ViewingServiceTest, ConcurrentReadsNeverMissAnAcknowledgedWrite) {
  ViewingOptions options;
  options.rollup_min_live_rows = 16;
  options.cache_bytes = 64 * 1024;  // small: misses, fills and evictions race with writes
  Open(options);
  constexpr int kMembers = 8;
  constexpr int kWrites = 300;
  std::atomic<int> acked[kMembers] = {};
  std::atomic<bool> failed{false};
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) {
      std::vector<ViewingRecord> batch;
      for (int m = 0; m < kMembers; ++m) {
        batch.push_back(Play(100 + m, kT0 + i * 1000, "s", kT0 + i * 1000 + 1));
      }
      if (!service_->Ingest(batch).ok()) failed = true;
      for (int m = 0; m < kMembers; ++m) acked[m].store(i + 1);
    }
  });
  std::thread reader([&] {
    HistoryQuery q;
    q.limit = 1000;
    for (int i = 0; i < 400 && !failed; ++i) {
      int m = i % kMembers;
      int before = acked[m].load();
      auto page = service_->ReadHistory(100 + m, q);
      if (!page.ok() || static_cast<int>(page->records.size()) < before) failed = true;
    }
  });
  writer.join();
  reader.join();
  EXPECT_FALSE(failed.load());
  service_->WaitForRollups();
  for (int m = 0; m < kMembers; ++m) EXPECT_EQ(ReadAll(100 + m).size(), size_t{kWrites});
}

}  // namespace
}  // namespace strata::viewing
