// The viewing-history workload of `strata bench viewing`: a deterministic generator of
// realistic playback events, and the JSON writer for POST /v1/viewing/events.
//
// Realism, in short: members are drawn Zipf(s) over [1, members] (rank r maps to a
// scrambled member id, so hot members are spread over the key space); each member has a
// sticky country, device, audio and subtitle preference (the preferences change now and
// then, which exercises the server's language-delta filter); ~85% of new playbacks are
// plays of a title from the member's own small Zipf set of favourites out of ~5000 titles,
// ~15% are previews of globally popular titles, often only a few seconds long (so the
// server's short-preview filter drops some); ~30% of events are progress updates of the
// member's most recent playback (same started_at and session, later event_time, more
// watched time). Playbacks of one member start a few hours apart and move forward in time;
// nothing is ever later than `now_ms`, except by a millisecond or so for members that are
// drawn thousands of times (started_at stays strictly increasing per member).
//
// Determinism: the sequence of events depends only on the options (seed included) and on
// the `now_ms` values passed in. Not thread-safe: callers serialise access.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::bench {

using Millis = int64_t;

// SplitMix64: tiny, fast, and the same on every platform (unlike std:: distributions).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [lo, hi] (inclusive); requires lo <= hi.
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Next() % (hi - lo + 1); }
  bool Chance(double p) { return Uniform() < p; }

 private:
  uint64_t state_;
};

// A 64-bit mixing function (SplitMix64's finaliser): derives stable per-entity randomness.
uint64_t Mix64(uint64_t x);

// Samples k in [1, n] with P(k) proportional to k^-s, in O(1) time and memory, by
// rejection-inversion (Hörmann & Derflinger, 1996). Requires n >= 1 and s > 0.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double s);
  uint64_t Sample(Rng& rng) const;
  uint64_t n() const { return n_; }

 private:
  double H(double x) const;         // integral of x^-s, shifted so H is finite at s == 1
  double HInverse(double x) const;  // inverse of H
  double h(double x) const;         // x^-s

  uint64_t n_;
  double s_;
  double h_integral_x1_;
  double h_integral_n_;
  double threshold_;
};

// One event of POST /v1/viewing/events. String fields point into static tables.
struct ViewingEvent {
  uint64_t member = 0;
  bool preview = false;
  uint64_t title = 0;
  uint64_t session = 0;  // sent as a decimal string
  Millis started_at = 0;
  Millis event_time = 0;
  int64_t position_ms = 0;
  int64_t watched_ms = 0;
  std::string_view device;
  std::string_view country;
  std::string_view content_lang;
  std::string_view audio_lang;
  std::string_view subtitle_lang;  // "" = subtitles off
  bool update = false;             // a progress update of an earlier playback (not sent; for stats)
};

struct WorkloadOptions {
  // Members are ids in [1, members]. Default 50000.
  uint64_t members = 50'000;
  // Zipf exponent of member activity (and of reads). Default 1.1.
  double zipf_s = 1.1;
  uint64_t seed = 1;
  // Size of the title catalogue. Default 5000.
  uint64_t titles = 5'000;
  // Fraction of new playbacks that are previews. Default 0.15.
  double preview_fraction = 0.15;
  // Fraction of events that update the member's latest playback. Default 0.30.
  double update_fraction = 0.30;
};

class ViewingWorkload {
 public:
  explicit ViewingWorkload(WorkloadOptions options);

  // Appends `n` events of Zipf-drawn members as of wall time `now_ms`.
  void NextEvents(size_t n, Millis now_ms, std::vector<ViewingEvent>* out);

  // Preload of long histories: `members` of the hottest members (ranks 1..members) each
  // get between 10000 and 12000 plays (plus the usual share of previews), spread back
  // over the years before `now_ms`, as new playbacks only. Call once, then drain with
  // NextPreloadEvents.
  void PlanPreload(uint64_t members, Millis now_ms);
  // The general form: members of ranks [first_rank, first_rank + members) get between
  // min_plays and max_plays plays each; with span_ms > 0 their playbacks are spread evenly
  // over the span_ms before now_ms (time-compressed: gaps shrink so the history fits),
  // otherwise at the usual 1-7 hour gaps.
  void PlanPreload(uint64_t first_rank, uint64_t members, uint64_t min_plays,
                   uint64_t max_plays, Millis span_ms, Millis now_ms);
  // After a preload: members of ranks [first_rank, first_rank + members) continue at the
  // usual pace from no earlier than a day before now_ms.
  void ResumeMembers(uint64_t first_rank, uint64_t members, Millis now_ms);
  // Appends up to `n` preload events; returns false once the preload is exhausted.
  bool NextPreloadEvents(size_t n, Millis now_ms, std::vector<ViewingEvent>* out);
  // Total events the planned preload will produce is not known up front (previews are
  // random); this is the number of plays it will produce.
  uint64_t preload_plays_planned() const { return preload_plays_planned_; }

  // The member id of activity rank `rank` (1 = hottest); a bijection of [1, members].
  uint64_t MemberForRank(uint64_t rank) const;
  // A Zipf-drawn member, with the caller's generator (readers have their own).
  uint64_t SampleMember(Rng& rng) const { return MemberForRank(member_zipf_.Sample(rng)); }

  const WorkloadOptions& options() const { return options_; }
  size_t members_touched() const { return members_.size(); }

 private:
  struct MemberState {
    Millis last_started_at = 0;
    Millis last_event_time = 0;
    uint64_t next_session = 0;
    bool has_last = false;
    ViewingEvent last;  // the most recent playback's latest state
    uint8_t country = 0;
    uint8_t device = 0;
    uint8_t audio = 0;     // index into the language table
    int8_t subtitle = -1;  // -1 = off
    bool original_audio = false;
    double gap_scale = 1.0;  // < 1 for time-compressed preloads
  };

  MemberState& State(uint64_t member, Millis now_ms);
  ViewingEvent NewPlayback(uint64_t member, MemberState& st, Millis now_ms);
  ViewingEvent Update(MemberState& st, Millis now_ms);
  uint64_t FavouriteTitle(uint64_t member);
  uint64_t TitleForRank(uint64_t rank) const;

  WorkloadOptions options_;
  Rng rng_;
  ZipfSampler member_zipf_;
  ZipfSampler title_zipf_;      // global popularity (previews, and favourite sets)
  ZipfSampler favourite_zipf_;  // within a member's favourites
  uint64_t member_multiplier_ = 1;
  std::unordered_map<uint64_t, MemberState> members_;

  // Preload cursor.
  std::vector<uint64_t> preload_members_;
  std::vector<uint64_t> preload_targets_;
  size_t preload_index_ = 0;
  uint64_t preload_plays_done_ = 0;
  uint64_t preload_plays_planned_ = 0;
};

// Appends one event as a JSON object with exactly the API's field names.
void AppendEventJson(const ViewingEvent& e, std::string* out);
// Appends a JSON array of events.
void AppendBatchJson(const std::vector<ViewingEvent>& events, std::string* out);

}  // namespace strata::bench
