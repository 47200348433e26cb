// Test scenarios of the viewing service with a shared history cache (SharedHistoryCache),
// run against any store::Cache: the in-process LruCache in shared_history_cache_test.cc, a
// real memcached in tests/viewing_shared_cache_test.cc. Test-only (GoogleTest).
//
// TwoServers: two ViewingService instances -- two `strata serve` processes in miniature --
// over one row store and one cache, each with its own metrics. What one writes, the other
// must read, whatever the cache held before.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "strata/base/clock.h"
#include "strata/base/metrics.h"
#include "strata/store/cache.h"
#include "strata/store/memory_row_store.h"
#include "strata/viewing/viewing_service.h"

namespace strata::viewing::testing {

inline constexpr Millis kSharedT0 = 1'700'000'000'000;

inline ViewingRecord SharedPlay(MemberId m, Millis started, std::string session,
                                Millis event_time, TitleId title = 1) {
  ViewingRecord r;
  r.member = m;
  r.kind = Kind::kPlay;
  r.title = title;
  r.session = std::move(session);
  r.started_at = started;
  r.event_time = event_time;
  r.position_ms = event_time - started;
  r.watched_ms = event_time - started;
  r.device = "tv";
  r.country = "US";
  r.content_lang = "en";
  r.audio_lang = "en";
  return r;
}

inline uint64_t CounterValue(MetricsRegistry& m, const std::string& name) {
  return m.GetCounter(name, "")->Value();
}

struct TwoServers {
  ManualClock clock{kSharedT0 + 3'600'000};
  store::MemoryRowStore rows{&clock};
  MetricsRegistry metrics_a, metrics_b;
  std::unique_ptr<ViewingService> a, b;

  // Roll-ups only on demand, so the test decides when the compressed version changes.
  void Open(store::Cache* cache) {
    ViewingOptions options;
    options.rollup_min_live_rows = 1'000'000;
    options.rollup_max_live_rows = 1'000'000;
    options.rollup_max_live_age_ms = 0;
    auto sa = ViewingService::Open(&rows, &clock, options, &metrics_a, nullptr, cache);
    ASSERT_TRUE(sa.ok()) << sa.status();
    auto sb = ViewingService::Open(&rows, &clock, options, &metrics_b, nullptr, cache);
    ASSERT_TRUE(sb.ok()) << sb.status();
    a = std::move(*sa);
    b = std::move(*sb);
  }

  static std::vector<ViewingRecord> Read(ViewingService& s, MemberId m) {
    HistoryQuery q;
    q.limit = 1000;
    auto page = s.ReadHistory(m, q);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->records : std::vector<ViewingRecord>{};
  }

  static void Ingest(ViewingService& s, std::vector<ViewingRecord> records) {
    auto r = s.Ingest(records);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->accepted, records.size());
  }
};

// Write on A, read on B, again and again: every read on B shows every write acknowledged on
// A before it, across fills, hits, a roll-up and an erasure -- and B's reads do hit the
// shared cache when nothing changed.
inline void WriteOnOneReadOnTheOther(store::Cache* cache) {
  TwoServers t;
  ASSERT_NO_FATAL_FAILURE(t.Open(cache));
  const MemberId m = 4242;
  const Millis s1 = kSharedT0 - 60'000;
  TwoServers::Ingest(*t.a, {SharedPlay(m, s1, "one", s1 + 1'000)});
  auto seen = TwoServers::Read(*t.b, m);  // a miss on B: fills the shared cache
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].position_ms, 1'000);
  const uint64_t b_hits = CounterValue(t.metrics_b, "strata_viewing_shared_cache_hits_total");
  seen = TwoServers::Read(*t.a, m);  // A reads B's fill
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(CounterValue(t.metrics_a, "strata_viewing_shared_cache_hits_total"), 1u);
  seen = TwoServers::Read(*t.b, m);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(CounterValue(t.metrics_b, "strata_viewing_shared_cache_hits_total"), b_hits + 1);

  // A later event of the same playback (progress) on A: B must see the new position, not
  // the cached one.
  TwoServers::Ingest(*t.a, {SharedPlay(m, s1, "one", s1 + 9'000)});
  seen = TwoServers::Read(*t.b, m);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].position_ms, 9'000);

  // A new playback on B, read on A (A's cached view was filled before it).
  TwoServers::Ingest(*t.b, {SharedPlay(m, s1 + 5'000, "two", s1 + 6'000, 2)});
  seen = TwoServers::Read(*t.a, m);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].session, "two");  // newest first
  EXPECT_EQ(seen[1].position_ms, 9'000);

  // A roll-up on A moves the live rows into a compressed version (and deletes them): B
  // must not read the old entry, whose live rows and chunks are gone.
  ASSERT_TRUE(t.a->RollUp(m, Kind::kPlay).ok());
  seen = TwoServers::Read(*t.b, m);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].position_ms, 9'000);
  TwoServers::Ingest(*t.a, {SharedPlay(m, s1, "one", s1 + 20'000)});
  seen = TwoServers::Read(*t.b, m);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].position_ms, 20'000);

  // Erased on B: A reads nothing.
  ASSERT_TRUE(t.b->EraseMember(m).ok());
  EXPECT_TRUE(TwoServers::Read(*t.a, m).empty());
  EXPECT_EQ(t.a->cache().entries(), 0u);  // the in-process cache stays out of the way
  EXPECT_EQ(CounterValue(t.metrics_a, "strata_viewing_shared_cache_errors_total"), 0u);
}

// A fill that raced with a write (loaded before it, stored after it) lands under the token
// it read before the load, which the write replaced: no reader ever gets it.
inline void RacingFillIsNeverServed(store::Cache* cache) {
  TwoServers t;
  ASSERT_NO_FATAL_FAILURE(t.Open(cache));
  MetricsRegistry metrics;
  auto side = SharedHistoryCache::Open(cache, &t.rows, &metrics, 0);
  ASSERT_TRUE(side.ok()) << side.status();
  const MemberId m = 77;
  const Millis s1 = kSharedT0 - 60'000;
  TwoServers::Ingest(*t.a, {SharedPlay(m, s1, "one", s1 + 1'000)});
  // A reader's first half: the token, then (a miss) its load from the store.
  auto before = (*side)->Get(0, m, Kind::kPlay);
  ASSERT_TRUE(before.ok()) << before.status();
  auto stale = std::make_shared<std::vector<ViewingRecord>>();
  stale->push_back(SharedPlay(m, s1, "one", s1 + 1'000));
  CachedHistory stale_entry;
  stale_entry.live = stale;
  // The write lands and is acknowledged; then the slow reader stores what it loaded.
  TwoServers::Ingest(*t.a, {SharedPlay(m, s1, "one", s1 + 50'000)});
  (*side)->Fill(0, m, before->token, stale_entry);
  auto seen = TwoServers::Read(*t.b, m);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].position_ms, 50'000);
}

}  // namespace strata::viewing::testing
