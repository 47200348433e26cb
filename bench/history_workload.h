// The workload of `strata bench viewing --mode compare` and its oracle.
//
// HistoryWorkload replays the viewing history of a member population as of a time the
// caller moves forward: give it times spread over two years and it produces two years of
// history; give it the wall clock and it produces today's stream. Realism, in short:
//   - members are drawn Zipf(s) over [1, members] (rank r maps to a scrambled id); with
//     s = 1.0 over 20,000 members the busiest makes ~9.5% of the events, the median member a
//     few dozen events in 2M;
//   - each member has a sticky country (weighted like a global service's audience), a
//     primary device (weighted: TVs and streaming sticks first, then phones, web, tablets;
//     a quarter of playbacks happen on another device), and audio/subtitle habits;
//   - new playbacks (1 - update_fraction - late_fraction of the events) are ~85% plays of a
//     title from the member's own Zipf set of favourites out of `titles`, ~15% previews of
//     globally popular titles, more than half of them skipped within 5 s;
//   - progress updates (update_fraction) re-send the member's latest playback with a later
//     event_time and more watched time (same member, kind, started_at, session); an update
//     or late event drawn for a member without a playback goes to another, active member;
//   - late events (late_fraction) are older states of one of the member's last few
//     playbacks, arriving after a newer state was sent: an event_time between the
//     playback's start and its newest event_time, less watched time (or, when the playback
//     has no older instant, an exact duplicate). A store that keeps the last writer by
//     event_time ignores them; one that keeps the last arrival does not.
// A playback ends by the time it is generated at (started_at + watched + pause <= now),
// except for members drawn so often that their playbacks, one millisecond apart at least,
// run ahead of `now` by a little; started_at is strictly increasing per member, so
// started_at alone orders a member's playbacks.
//
// HistoryOracle watches every event sent and answers, for a sample of members, what a
// correct store returns as their newest plays (last writer wins by event_time, whatever
// order the events arrived in), and how many distinct records each store holds.
//
// Determinism: events depend only on the options and the times passed in. Not thread-safe:
// callers serialise access (the compare bench generates everything on one thread first).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bench/viewing_workload.h"

namespace strata::bench {

struct HistoryWorkloadOptions {
  // Member ids are [1, members]. Default 20000.
  uint64_t members = 20'000;
  // Zipf exponent of member activity. Default 1.0.
  double zipf_s = 1.0;
  // Title catalogue size. Default 50000.
  uint64_t titles = 50'000;
  uint64_t seed = 1;
  // Fraction of new playbacks that are previews. Default 0.15.
  double preview_fraction = 0.15;
  // Fraction of events that update the member's latest playback. Default 0.30.
  double update_fraction = 0.30;
  // Fraction of events that are late, older states of a recent playback. Default 0.03.
  double late_fraction = 0.03;
};

class HistoryWorkload {
 public:
  // How many events of each sort were made so far.
  struct Counts {
    uint64_t plays = 0;     // new play playbacks (new keys)
    uint64_t previews = 0;  // new preview playbacks (new keys)
    uint64_t updates = 0;
    uint64_t late = 0;
  };

  explicit HistoryWorkload(HistoryWorkloadOptions options);

  // One event of a Zipf-drawn member as of `now_ms`; call with non-decreasing times.
  ViewingEvent Next(Millis now_ms);

  // The member id of activity rank `rank` (1 = busiest); a bijection of [1, members].
  uint64_t MemberForRank(uint64_t rank) const;
  // A Zipf-drawn member, with the caller's generator.
  uint64_t SampleMember(Rng& rng) const { return MemberForRank(member_zipf_.Sample(rng)); }

  const HistoryWorkloadOptions& options() const { return options_; }
  const Counts& counts() const { return counts_; }

 private:
  static constexpr int kRecentPlaybacks = 4;  // late events pick among the last 4 playbacks
  struct MemberState {
    Millis last_started_at = 0;
    uint64_t next_session = 0;
    // The newest state sent of the member's last playbacks; recent[newest] is the latest.
    ViewingEvent recent[kRecentPlaybacks];
    int recent_count = 0;
    int newest = 0;
    uint8_t country = 0;
    uint8_t device = 0;
    uint8_t audio = 0;     // index into the language table
    int8_t subtitle = -1;  // -1 = off
    bool original_audio = false;
  };

  MemberState& State(uint64_t member, Millis now_ms);
  ViewingEvent NewPlayback(uint64_t member, MemberState& st, Millis now_ms);
  ViewingEvent Update(MemberState& st, Millis now_ms);
  ViewingEvent Late(MemberState& st);
  uint64_t FavouriteTitle(uint64_t member);

  HistoryWorkloadOptions options_;
  Rng rng_;
  ZipfSampler member_zipf_;
  ZipfSampler title_zipf_;      // global popularity (previews, and favourite sets)
  ZipfSampler favourite_zipf_;  // within a member's favourites
  uint64_t member_multiplier_ = 1;
  std::unordered_map<uint64_t, MemberState> members_;
  Counts counts_;
};

// A play as a store returned it.
struct StoredPlay {
  uint64_t member = 0;
  uint64_t title = 0;
  std::string session;
  int64_t started_at = 0;
  int64_t event_time = 0;
  int64_t position_ms = 0;
  int64_t watched_ms = 0;
  std::string device;
  std::string country;
  std::string content_lang;
  std::string audio_lang;
  std::string subtitle_lang;
};

// Compares a store's answer with the expected newest plays, field by field: "" when they
// are equal, else the first difference, e.g. "record 3 (started_at 17...): watched_ms: want
// 60000, got 1200" or "47 records, want 50".
std::string CompareNewestPlays(const std::vector<ViewingEvent>& want,
                               const std::vector<StoredPlay>& got);

struct HistoryOracleOptions {
  // Members whose plays the oracle keeps in full (others are only counted).
  std::vector<uint64_t> members;
  // Strata's write filters, to count the records it keeps: previews watched less than this
  // are dropped, and so are previews whose event_time is older than the TTL when they
  // arrive. Defaults: Strata's own (5000 ms, 30 days).
  int64_t strata_min_preview_ms = 5000;
  Millis strata_preview_ttl_ms = 30LL * 24 * 3600 * 1000;
};

class HistoryOracle {
 public:
  explicit HistoryOracle(HistoryOracleOptions options);

  // Records one event, sent at wall time `sent_at_ms` (for the preview TTL: the events
  // within minutes of the 30-day edge may be counted on the wrong side of it).
  void Observe(const ViewingEvent& e, Millis sent_at_ms);

  // The newest `limit` plays of a sampled member, newest started_at first, each playback's
  // state with the greatest event_time. Empty for a member not sampled.
  std::vector<ViewingEvent> NewestPlays(uint64_t member, size_t limit) const;

  const std::vector<uint64_t>& members() const { return options_.members; }
  // Distinct (member, kind, started_at, session) keys seen, per kind.
  uint64_t play_keys() const { return play_keys_.size(); }
  uint64_t preview_keys() const { return preview_keys_.size(); }
  // Preview keys Strata stores: those with at least one event that passes its filters.
  uint64_t strata_preview_keys() const { return strata_preview_keys_.size(); }

 private:
  HistoryOracleOptions options_;
  // 64-bit fingerprints of keys (a collision, ~1e-8 likely for millions of keys, would
  // undercount by one).
  std::unordered_set<uint64_t> play_keys_;
  std::unordered_set<uint64_t> preview_keys_;
  std::unordered_set<uint64_t> strata_preview_keys_;
  // Sampled member -> (started_at, session) -> the play's winning state.
  std::unordered_map<uint64_t, std::map<std::pair<Millis, uint64_t>, ViewingEvent>> plays_;
};

// The members an oracle samples: about a tenth of `n` from the busiest ranks, two thirds
// Zipf-drawn (distinct), the rest "cold" ranks from the less active half. Deterministic.
std::vector<uint64_t> OracleMembers(const HistoryWorkload& workload, size_t n, uint64_t seed);

}  // namespace strata::bench
