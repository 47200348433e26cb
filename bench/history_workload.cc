#include "bench/history_workload.h"

#include <algorithm>
#include <array>
#include <numeric>
#include <set>
#include <string_view>
#include <type_traits>

namespace strata::bench {
namespace {

constexpr Millis kSecond = 1000;
constexpr Millis kMinute = 60 * kSecond;
constexpr Millis kMaxPause = 2 * kMinute;  // between the end of watching and event_time
constexpr Millis kMaxDelay = 1 * kMinute;  // between event_time and the event's arrival
constexpr uint64_t kFirstTitleId = 80'000'000;
constexpr uint64_t kFavourites = 64;  // size of each member's favourite-title set

constexpr std::array<std::string_view, 9> kLanguages = {"en", "es", "pt", "ko", "ja",
                                                        "fr", "de", "hi", "it"};
// Share (percent) of the catalogue per original language, same order as kLanguages.
constexpr std::array<int, 9> kTitleLanguageWeights = {50, 12, 5, 8, 8, 5, 5, 4, 3};

// Share (percent) of members per country, and the country's language (index into kLanguages).
struct Country {
  std::string_view code;
  int weight;
  int language;
};
constexpr std::array<Country, 12> kCountries = {{{"US", 35, 0},
                                                 {"BR", 10, 2},
                                                 {"GB", 8, 0},
                                                 {"DE", 6, 6},
                                                 {"FR", 6, 5},
                                                 {"IN", 8, 7},
                                                 {"JP", 5, 4},
                                                 {"MX", 7, 1},
                                                 {"CA", 5, 0},
                                                 {"ES", 4, 1},
                                                 {"KR", 3, 3},
                                                 {"IT", 3, 8}}};

// Share (percent) of members whose main device this is: the living-room screens (smart TVs,
// sticks, consoles) first, then phones, browsers, tablets.
struct Device {
  std::string_view name;
  int weight;
};
constexpr std::array<Device, 14> kDevices = {{{"tv_samsung", 14},
                                              {"tv_lg", 9},
                                              {"roku", 10},
                                              {"fire_tv", 8},
                                              {"apple_tv", 4},
                                              {"chromecast", 5},
                                              {"ps5", 3},
                                              {"xbox", 2},
                                              {"android_phone", 13},
                                              {"ios_phone", 11},
                                              {"ipad", 5},
                                              {"web_chrome", 9},
                                              {"web_safari", 3},
                                              {"windows_app", 4}}};

// Index drawn from `weights` by the value `h` (uniform over uint64).
template <typename T, size_t N, typename Weight>
int PickWeighted(const std::array<T, N>& items, Weight weight, uint64_t h) {
  int total = 0;
  for (const T& item : items) total += weight(item);
  int x = static_cast<int>(h % static_cast<uint64_t>(total));
  for (size_t i = 0; i < N; ++i) {
    if (x < weight(items[i])) return static_cast<int>(i);
    x -= weight(items[i]);
  }
  return 0;
}

int PickCountry(uint64_t h) {
  return PickWeighted(
      kCountries, [](const Country& c) { return c.weight; }, h);
}
int PickDevice(uint64_t h) {
  return PickWeighted(
      kDevices, [](const Device& d) { return d.weight; }, h);
}
std::string_view TitleLanguage(uint64_t title) {
  return kLanguages[PickWeighted(
      kTitleLanguageWeights, [](int w) { return w; }, Mix64(title ^ 0x5bd1e995))];
}

uint64_t KeyFingerprint(uint64_t member, bool preview, Millis started_at, uint64_t session) {
  uint64_t h = Mix64(member ^ (preview ? 0x8000000000000000ULL : 0));
  h = Mix64(h ^ static_cast<uint64_t>(started_at));
  return Mix64(h ^ session);
}

}  // namespace

// ---- HistoryWorkload ------------------------------------------------------------------------

HistoryWorkload::HistoryWorkload(HistoryWorkloadOptions options)
    : options_(options),
      rng_(Mix64(options.seed ^ 0x4157'0000'0000ULL)),
      member_zipf_(std::max<uint64_t>(options.members, 1), options.zipf_s),
      title_zipf_(std::max<uint64_t>(options.titles, 1), 0.9),
      favourite_zipf_(kFavourites, 1.0) {
  options_.members = std::max<uint64_t>(options_.members, 1);
  options_.titles = std::max<uint64_t>(options_.titles, 1);
  // A multiplier coprime with `members` makes rank -> id a bijection that scatters the
  // busiest members over the id (and key) space.
  const uint64_t n = options_.members;
  uint64_t m = std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(n) * 0.6180339887));
  while (std::gcd(m, n) != 1) ++m;
  member_multiplier_ = m;
}

uint64_t HistoryWorkload::MemberForRank(uint64_t rank) const {
  unsigned __int128 r = rank - 1;
  return static_cast<uint64_t>((r * member_multiplier_) % options_.members) + 1;
}

uint64_t HistoryWorkload::FavouriteTitle(uint64_t member) {
  const uint64_t j = favourite_zipf_.Sample(rng_);
  // The member's j-th favourite: a fixed draw from the catalogue's popularity.
  Rng fav(Mix64(options_.seed * 0x2545F4914F6CDD1DULL ^ (member << 7) ^ j));
  return kFirstTitleId + title_zipf_.Sample(fav);
}

HistoryWorkload::MemberState& HistoryWorkload::State(uint64_t member, Millis now_ms) {
  auto [it, inserted] = members_.try_emplace(member);
  MemberState& st = it->second;
  if (inserted) {
    // Sticky traits come from a hash of (seed, member), not from the order members appear.
    const uint64_t h = Mix64(options_.seed ^ Mix64(member ^ 0xC0FFEE));
    st.country = static_cast<uint8_t>(PickCountry(h));
    st.device = static_cast<uint8_t>(PickDevice(h >> 8));
    st.original_audio = ((h >> 24) & 3) == 0;
    st.audio = static_cast<uint8_t>(kCountries[st.country].language);
    st.subtitle =
        ((h >> 28) % 10) < 6 ? int8_t{-1} : static_cast<int8_t>(kCountries[st.country].language);
    st.next_session = 1 + (h >> 40) % 5000;
    st.last_started_at = 0;
  }
  (void)now_ms;
  return st;
}

ViewingEvent HistoryWorkload::NewPlayback(uint64_t member, MemberState& st, Millis now_ms) {
  ViewingEvent e;
  e.member = member;
  e.preview = rng_.Chance(options_.preview_fraction);
  if (e.preview) {
    e.title = kFirstTitleId + title_zipf_.Sample(rng_);
    // Autoplay previews: more than half are skipped within seconds.
    const uint64_t seconds = rng_.Chance(0.55) ? rng_.Between(0, 4) : rng_.Between(5, 59);
    e.watched_ms = static_cast<int64_t>(seconds * 1000 + rng_.Between(0, 999));
    e.position_ms = e.watched_ms;
  } else {
    e.title = FavouriteTitle(member);
    const double u = rng_.Uniform();
    const uint64_t seconds = 60 + static_cast<uint64_t>(u * u * 7140);  // 1 min .. 2 h
    e.watched_ms = static_cast<int64_t>(seconds * 1000 + rng_.Between(0, 999));
    const int64_t resume_from =
        rng_.Chance(0.3) ? static_cast<int64_t>(rng_.Between(60, 3600) * 1000) : 0;
    e.position_ms = resume_from + e.watched_ms;
  }
  Millis pause = static_cast<Millis>(rng_.Between(0, kMaxPause));
  const auto delay = static_cast<Millis>(rng_.Between(0, kMaxDelay));
  Millis started = now_ms - delay - pause - e.watched_ms;
  if (started <= st.last_started_at) {
    // A member drawn more often than anyone watches: start right after the last playback
    // and squeeze this one so it still ends by `now` when there is room.
    started = st.last_started_at + 1;
    const int64_t room = std::max<int64_t>(0, now_ms - started);
    pause = std::min(pause, room);
    const int64_t resume_from = e.position_ms - e.watched_ms;
    e.watched_ms = std::min<int64_t>(e.watched_ms, room - pause);
    e.position_ms = resume_from + e.watched_ms;
  }
  e.started_at = started;
  e.event_time = started + e.watched_ms + pause;
  e.session = st.next_session++;

  // Language habits change now and then.
  if (rng_.Chance(0.02)) st.original_audio = !st.original_audio;
  if (rng_.Chance(0.02)) {
    st.subtitle =
        st.subtitle < 0 ? static_cast<int8_t>(kCountries[st.country].language) : int8_t{-1};
  }
  e.device = rng_.Chance(0.75) ? kDevices[st.device].name : kDevices[PickDevice(rng_.Next())].name;
  e.country = kCountries[st.country].code;
  e.content_lang = TitleLanguage(e.title);
  e.audio_lang = st.original_audio ? e.content_lang : kLanguages[st.audio];
  e.subtitle_lang = st.subtitle < 0 ? std::string_view() : kLanguages[st.subtitle];

  st.last_started_at = e.started_at;
  st.newest = st.recent_count == 0 ? 0 : (st.newest + 1) % kRecentPlaybacks;
  st.recent_count = std::min(st.recent_count + 1, kRecentPlaybacks);
  st.recent[st.newest] = e;
  if (e.preview) {
    ++counts_.previews;
  } else {
    ++counts_.plays;
  }
  return e;
}

ViewingEvent HistoryWorkload::Update(MemberState& st, Millis now_ms) {
  ViewingEvent& last = st.recent[st.newest];
  const Millis delta = last.preview ? static_cast<Millis>(rng_.Between(1 * kSecond, 30 * kSecond))
                                    : static_cast<Millis>(rng_.Between(30 * kSecond, 15 * kMinute));
  Millis t = last.event_time + delta;
  if (t > now_ms) t = std::max(now_ms, last.event_time + 1);
  const Millis moved = t - last.event_time;
  const auto watched =
      static_cast<int64_t>(static_cast<double>(moved) * (0.7 + 0.3 * rng_.Uniform()));
  last.watched_ms += watched;
  last.position_ms += watched;
  last.event_time = t;
  ++counts_.updates;
  ViewingEvent e = last;
  e.update = true;
  return e;
}

ViewingEvent HistoryWorkload::Late(MemberState& st) {
  // Mostly the latest playback (whose progress reports race each other), sometimes one of
  // the few before it.
  int back = rng_.Chance(0.6) ? 0 : static_cast<int>(rng_.Between(0, st.recent_count - 1));
  const ViewingEvent& newest_state =
      st.recent[(st.newest - back + kRecentPlaybacks) % kRecentPlaybacks];
  ViewingEvent e = newest_state;
  e.update = true;
  if (newest_state.event_time > newest_state.started_at) {
    // An older instant of the playback: less watched, an earlier position.
    e.event_time = static_cast<Millis>(
        rng_.Between(static_cast<uint64_t>(e.started_at), static_cast<uint64_t>(e.event_time - 1)));
    const int64_t earlier = newest_state.event_time - e.event_time;
    e.watched_ms = std::max<int64_t>(0, e.watched_ms - earlier);
    e.position_ms = std::max<int64_t>(0, e.position_ms - (newest_state.watched_ms - e.watched_ms));
  }
  // (Otherwise an exact duplicate: a retried delivery of the newest state.)
  ++counts_.late;
  return e;
}

ViewingEvent HistoryWorkload::Next(Millis now_ms) {
  uint64_t member = SampleMember(rng_);
  MemberState* st = &State(member, now_ms);
  const double u = rng_.Uniform();
  if (u < options_.late_fraction + options_.update_fraction) {
    // An update needs a playback to update: a member drawn for the first time has none, so
    // look for an active one (a few draws; the busy ones all qualify).
    for (int tries = 0; st->recent_count == 0 && tries < 8; ++tries) {
      member = SampleMember(rng_);
      st = &State(member, now_ms);
    }
    if (st->recent_count > 0) return u < options_.late_fraction ? Late(*st) : Update(*st, now_ms);
  }
  return NewPlayback(member, *st, now_ms);
}

// ---- Oracle ---------------------------------------------------------------------------------

namespace {

template <typename A, typename B>
std::string FieldDiff(const char* field, const A& want, const B& got) {
  std::string out = field;
  out += ": want \"";
  if constexpr (std::is_arithmetic_v<A>) {
    out += std::to_string(want);
  } else {
    out += want;
  }
  out += "\", got \"";
  if constexpr (std::is_arithmetic_v<B>) {
    out += std::to_string(got);
  } else {
    out += got;
  }
  return out + "\"";
}

}  // namespace

std::string CompareNewestPlays(const std::vector<ViewingEvent>& want,
                               const std::vector<StoredPlay>& got) {
  const size_t n = std::min(want.size(), got.size());
  for (size_t i = 0; i < n; ++i) {
    const ViewingEvent& w = want[i];
    const StoredPlay& g = got[i];
    std::string diff;
    const std::string session = std::to_string(w.session);
    if (g.started_at != w.started_at) {
      diff = FieldDiff("started_at", w.started_at, g.started_at);
    } else if (g.session != session) {
      diff = FieldDiff("session", session, g.session);
    } else if (g.member != w.member) {
      diff = FieldDiff("member", w.member, g.member);
    } else if (g.event_time != w.event_time) {
      diff = FieldDiff("event_time", w.event_time, g.event_time);
    } else if (g.title != w.title) {
      diff = FieldDiff("title", w.title, g.title);
    } else if (g.position_ms != w.position_ms) {
      diff = FieldDiff("position_ms", w.position_ms, g.position_ms);
    } else if (g.watched_ms != w.watched_ms) {
      diff = FieldDiff("watched_ms", w.watched_ms, g.watched_ms);
    } else if (g.device != w.device) {
      diff = FieldDiff("device", std::string(w.device), g.device);
    } else if (g.country != w.country) {
      diff = FieldDiff("country", std::string(w.country), g.country);
    } else if (g.content_lang != w.content_lang) {
      diff = FieldDiff("content_lang", std::string(w.content_lang), g.content_lang);
    } else if (g.audio_lang != w.audio_lang) {
      diff = FieldDiff("audio_lang", std::string(w.audio_lang), g.audio_lang);
    } else if (g.subtitle_lang != w.subtitle_lang) {
      diff = FieldDiff("subtitle_lang", std::string(w.subtitle_lang), g.subtitle_lang);
    }
    if (!diff.empty()) {
      return "record " + std::to_string(i + 1) + " (started_at " + std::to_string(w.started_at) +
             "): " + diff;
    }
  }
  if (want.size() != got.size()) {
    return std::to_string(got.size()) + " records, want " + std::to_string(want.size());
  }
  return "";
}

HistoryOracle::HistoryOracle(HistoryOracleOptions options) : options_(std::move(options)) {
  for (uint64_t m : options_.members) plays_[m];
}

void HistoryOracle::Observe(const ViewingEvent& e, Millis sent_at_ms) {
  const uint64_t key = KeyFingerprint(e.member, e.preview, e.started_at, e.session);
  if (e.preview) {
    preview_keys_.insert(key);
    if (e.watched_ms >= options_.strata_min_preview_ms &&
        e.event_time >= sent_at_ms - options_.strata_preview_ttl_ms) {
      strata_preview_keys_.insert(key);
    }
    return;
  }
  play_keys_.insert(key);
  auto member = plays_.find(e.member);
  if (member == plays_.end()) return;
  auto [it, inserted] = member->second.try_emplace({e.started_at, e.session}, e);
  if (!inserted && e.event_time > it->second.event_time) it->second = e;
}

std::vector<ViewingEvent> HistoryOracle::NewestPlays(uint64_t member, size_t limit) const {
  std::vector<ViewingEvent> out;
  auto it = plays_.find(member);
  if (it == plays_.end()) return out;
  for (auto p = it->second.rbegin(); p != it->second.rend() && out.size() < limit; ++p) {
    out.push_back(p->second);
    out.back().update = false;
  }
  return out;
}

std::vector<uint64_t> OracleMembers(const HistoryWorkload& workload, size_t n, uint64_t seed) {
  const uint64_t members = workload.options().members;
  n = std::min<size_t>(n, members);
  std::vector<uint64_t> out;
  std::set<uint64_t> seen;
  auto add = [&](uint64_t rank) {
    const uint64_t m = workload.MemberForRank(rank);
    if (seen.insert(m).second) out.push_back(m);
  };
  const size_t hottest = std::max<size_t>(1, n / 10);
  for (uint64_t rank = 1; rank <= hottest && out.size() < n; ++rank) add(rank);
  Rng rng(Mix64(seed ^ 0x0AC1E));
  const size_t zipf_until = std::max(out.size(), n * 3 / 4);
  for (int tries = 0; out.size() < zipf_until && tries < 100'000; ++tries) {
    const uint64_t m = workload.SampleMember(rng);
    if (seen.insert(m).second) out.push_back(m);
  }
  // Cold members: ranks from the less active half.
  const uint64_t cold_from = members / 2 + 1;
  for (int tries = 0; out.size() < n && tries < 100'000; ++tries) {
    add(rng.Between(cold_from, members));
  }
  // (A sample of nearly every member ends with those not drawn yet.)
  for (uint64_t rank = 1; out.size() < n && rank <= members; ++rank) add(rank);
  return out;
}

}  // namespace strata::bench
