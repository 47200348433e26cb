#include "bench/history_workload.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace strata::bench {
namespace {

constexpr Millis kNow = 1'700'000'000'000;  // a fixed "now" makes generation repeatable
constexpr Millis kDay = 86'400'000;

using Key = std::tuple<uint64_t, bool, Millis, uint64_t>;
Key KeyOf(const ViewingEvent& e) { return {e.member, e.preview, e.started_at, e.session}; }

// `n` events replayed over the 700 days before kNow, as the compare bench's phase 1 does.
std::vector<ViewingEvent> History(HistoryWorkload& w, size_t n) {
  std::vector<ViewingEvent> out;
  const Millis begin = kNow - 700 * kDay;
  const double step = static_cast<double>(700 * kDay) / static_cast<double>(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(w.Next(begin + static_cast<Millis>(step * static_cast<double>(i + 1))));
  }
  return out;
}

bool SameEvent(const ViewingEvent& a, const ViewingEvent& b) {
  return KeyOf(a) == KeyOf(b) && a.title == b.title && a.event_time == b.event_time &&
         a.position_ms == b.position_ms && a.watched_ms == b.watched_ms && a.device == b.device &&
         a.country == b.country && a.content_lang == b.content_lang &&
         a.audio_lang == b.audio_lang && a.subtitle_lang == b.subtitle_lang;
}

TEST(HistoryWorkloadTest, DeterministicForASeed) {
  HistoryWorkload a(HistoryWorkloadOptions{}), b(HistoryWorkloadOptions{});
  const auto ea = History(a, 20'000), eb = History(b, 20'000);
  for (size_t i = 0; i < ea.size(); ++i) ASSERT_TRUE(SameEvent(ea[i], eb[i])) << i;
  HistoryWorkloadOptions other;
  other.seed = 2;
  HistoryWorkload c(other);
  const auto ec = History(c, 100);
  EXPECT_FALSE(std::equal(ec.begin(), ec.end(), ea.begin(), SameEvent));
}

TEST(HistoryWorkloadTest, TheBusiestMemberMakesAboutATenthOfTheEvents) {
  // Zipf(1.0) over 20,000 members: rank 1 has 1/H(20000) = 9.5% of the draws, the median
  // member (rank 10,000) 1/10,000 of that.
  HistoryWorkload w(HistoryWorkloadOptions{});
  constexpr size_t kEvents = 400'000;
  std::map<uint64_t, uint64_t> per_member;
  for (const ViewingEvent& e : History(w, kEvents)) ++per_member[e.member];
  std::vector<uint64_t> counts;
  for (auto [m, n] : per_member) counts.push_back(n);
  counts.resize(20'000, 0);  // members never drawn
  std::sort(counts.rbegin(), counts.rend());
  double harmonic = 0;
  for (int k = 1; k <= 20'000; ++k) harmonic += 1.0 / k;
  EXPECT_NEAR(static_cast<double>(counts[0]) / kEvents, 1 / harmonic, 0.006);
  EXPECT_EQ(per_member[w.MemberForRank(1)], counts[0]);
  // The median member: ~1/10,000 of the busiest (4 events here, ~19 in the bench's 2M).
  EXPECT_GE(counts[10'000], 1u);
  EXPECT_LT(counts[10'000], counts[0] / 1000);
}

TEST(HistoryWorkloadTest, EventsAreValidAndPlaybacksMoveForward) {
  HistoryWorkload w(HistoryWorkloadOptions{});
  const auto events = History(w, 100'000);
  std::map<uint64_t, Millis> last_start;
  std::set<Key> keys;
  for (const ViewingEvent& e : events) {
    ASSERT_GE(e.member, 1u);
    ASSERT_LE(e.member, 20'000u);
    ASSERT_GE(e.event_time, e.started_at);
    ASSERT_GE(e.watched_ms, 0);
    ASSERT_GE(e.position_ms, 0);
    ASSERT_GE(e.started_at, kNow - 700 * kDay - 3 * 3'600'000);  // history + longest playback
    ASSERT_FALSE(e.device.empty());
    ASSERT_FALSE(e.country.empty());
    ASSERT_FALSE(e.content_lang.empty());
    ASSERT_FALSE(e.audio_lang.empty());
    if (keys.insert(KeyOf(e)).second) {
      // A new playback: after every earlier one of its member (started_at orders them).
      ASSERT_FALSE(e.update);
      ASSERT_GT(e.started_at, last_start[e.member]);
      last_start[e.member] = e.started_at;
    } else {
      ASSERT_TRUE(e.update);
    }
  }
  const auto& c = w.counts();
  EXPECT_EQ(c.plays + c.previews, keys.size());
  EXPECT_NEAR(static_cast<double>(c.previews) / (c.plays + c.previews), 0.15, 0.01);
  EXPECT_NEAR(static_cast<double>(c.updates) / events.size(), 0.30, 0.02);
  EXPECT_NEAR(static_cast<double>(c.late) / events.size(), 0.03, 0.005);
}

TEST(HistoryWorkloadTest, LateEventsAreOlderThanWhatWasSentAndLose) {
  HistoryWorkload w(HistoryWorkloadOptions{});
  const auto events = History(w, 100'000);
  std::map<Key, ViewingEvent> newest;  // by event_time, as sent so far
  uint64_t late = 0, older = 0, updates = 0;
  for (const ViewingEvent& e : events) {
    auto it = newest.find(KeyOf(e));
    if (it == newest.end()) {
      newest.emplace(KeyOf(e), e);
      continue;
    }
    if (e.event_time > it->second.event_time) {
      ++updates;  // a progress update: later, and more watched
      EXPECT_GE(e.watched_ms, it->second.watched_ms);
      it->second = e;
    } else {
      ++late;
      if (e.event_time < it->second.event_time) {
        ++older;
        EXPECT_LE(e.watched_ms, it->second.watched_ms);
      } else {
        EXPECT_TRUE(SameEvent(e, it->second)) << "a tie must be an exact duplicate";
      }
    }
  }
  EXPECT_EQ(late, w.counts().late);
  EXPECT_EQ(updates, w.counts().updates);
  EXPECT_GT(older, late * 9 / 10);  // mostly genuinely older states, a few duplicates
}

TEST(HistoryOracleTest, LastWriterWinsByEventTimeWhateverTheOrder) {
  HistoryWorkload w(HistoryWorkloadOptions{});
  auto events = History(w, 50'000);
  const std::vector<uint64_t> members = {w.MemberForRank(1), w.MemberForRank(2),
                                         w.MemberForRank(300)};
  HistoryOracleOptions o;
  o.members = members;
  HistoryOracle in_order(o), shuffled(o);
  for (const auto& e : events) in_order.Observe(e, kNow);
  Rng rng(7);
  for (size_t i = events.size() - 1; i > 0; --i) std::swap(events[i], events[rng.Next() % (i + 1)]);
  for (const auto& e : events) shuffled.Observe(e, kNow);
  // The expectation computed directly: per key, the greatest event_time.
  std::map<Key, ViewingEvent> best;
  for (const auto& e : events) {
    auto [it, inserted] = best.emplace(KeyOf(e), e);
    if (!inserted && e.event_time > it->second.event_time) it->second = e;
  }
  for (uint64_t m : members) {
    std::vector<ViewingEvent> want;
    for (auto it = best.rbegin(); it != best.rend(); ++it) {
      if (std::get<0>(it->first) == m && !std::get<1>(it->first) && want.size() < 50) {
        want.push_back(it->second);
      }
    }
    std::sort(want.begin(), want.end(),
              [](const auto& a, const auto& b) { return a.started_at > b.started_at; });
    const auto got = in_order.NewestPlays(m, 50);
    ASSERT_EQ(got.size(), want.size()) << m;
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_TRUE(SameEvent(got[i], want[i])) << m << " " << i;
    const auto got2 = shuffled.NewestPlays(m, 50);
    ASSERT_EQ(got2.size(), got.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(SameEvent(got2[i], got[i]));
  }
  EXPECT_TRUE(in_order.NewestPlays(999'999, 50).empty());  // not sampled
  EXPECT_EQ(in_order.play_keys(), w.counts().plays);
  EXPECT_EQ(in_order.preview_keys(), w.counts().previews);
}

TEST(HistoryOracleTest, CountsWhatStrataKeepsOfPreviews) {
  HistoryOracle oracle(HistoryOracleOptions{});
  ViewingEvent p;
  p.member = 1;
  p.preview = true;
  p.session = 1;
  p.started_at = kNow - 1000;
  p.event_time = kNow - 500;
  p.watched_ms = 3000;  // too short for Strata
  oracle.Observe(p, kNow);
  EXPECT_EQ(oracle.preview_keys(), 1u);
  EXPECT_EQ(oracle.strata_preview_keys(), 0u);
  p.watched_ms = 6000;  // a later update long enough: stored
  oracle.Observe(p, kNow);
  EXPECT_EQ(oracle.strata_preview_keys(), 1u);
  ViewingEvent old = p;
  old.session = 2;
  old.started_at = kNow - 40 * kDay;
  old.event_time = kNow - 40 * kDay + 10'000;  // past the 30-day preview TTL
  oracle.Observe(old, kNow);
  EXPECT_EQ(oracle.preview_keys(), 2u);
  EXPECT_EQ(oracle.strata_preview_keys(), 1u);
  ViewingEvent play = p;
  play.preview = false;
  oracle.Observe(play, kNow);
  oracle.Observe(play, kNow);
  EXPECT_EQ(oracle.play_keys(), 1u);
}

TEST(CompareNewestPlaysTest, NamesTheFirstDifference) {
  ViewingEvent e;
  e.member = 7;
  e.title = 80'000'001;
  e.session = 42;
  e.started_at = 1000;
  e.event_time = 2000;
  e.position_ms = 5;
  e.watched_ms = 5;
  e.device = "roku";
  e.country = "US";
  e.content_lang = "en";
  e.audio_lang = "en";
  StoredPlay s;
  s.member = 7;
  s.title = 80'000'001;
  s.session = "42";
  s.started_at = 1000;
  s.event_time = 2000;
  s.position_ms = 5;
  s.watched_ms = 5;
  s.device = "roku";
  s.country = "US";
  s.content_lang = "en";
  s.audio_lang = "en";
  EXPECT_EQ(CompareNewestPlays({e}, {s}), "");
  s.watched_ms = 4;
  EXPECT_EQ(CompareNewestPlays({e}, {s}),
            "record 1 (started_at 1000): watched_ms: want \"5\", got \"4\"");
  s.watched_ms = 5;
  s.subtitle_lang = "fr";
  EXPECT_NE(CompareNewestPlays({e}, {s}).find("subtitle_lang"), std::string::npos);
  s.subtitle_lang = "";
  EXPECT_EQ(CompareNewestPlays({e, e}, {s}), "1 records, want 2");
}

TEST(OracleMembersTest, BusiestZipfAndColdMembersDistinctAndRepeatable) {
  HistoryWorkload w(HistoryWorkloadOptions{});
  const auto a = OracleMembers(w, 200, 1);
  const auto b = OracleMembers(w, 200, 1);
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 200u);
  EXPECT_EQ(std::set<uint64_t>(a.begin(), a.end()).size(), 200u);
  EXPECT_EQ(a[0], w.MemberForRank(1));
  std::set<uint64_t> cold;
  for (uint64_t rank = 10'001; rank <= 20'000; ++rank) cold.insert(w.MemberForRank(rank));
  const auto cold_sampled =
      std::count_if(a.begin(), a.end(), [&](uint64_t m) { return cold.count(m); });
  EXPECT_GE(cold_sampled, 40);  // the last quarter, and some of the Zipf draws
  HistoryWorkloadOptions small;
  small.members = 10;
  EXPECT_EQ(OracleMembers(HistoryWorkload(small), 200, 1).size(), 10u);
}

}  // namespace
}  // namespace strata::bench
