#include "bench/viewing_workload.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <numeric>

namespace strata::bench {
namespace {

constexpr Millis kSecond = 1000;
constexpr Millis kMinute = 60 * kSecond;
constexpr Millis kHour = 60 * kMinute;
constexpr Millis kDay = 24 * kHour;
// New playbacks of one member start 1 to 7 hours apart (mean 4 h).
constexpr Millis kMinGap = 1 * kHour;
constexpr Millis kMaxGap = 7 * kHour;
constexpr Millis kMeanGap = (kMinGap + kMaxGap) / 2;
constexpr Millis kMaxPause = 2 * kMinute;  // between the end of watching and event_time
constexpr uint64_t kFirstTitleId = 80'000'000;
constexpr uint64_t kFavourites = 64;  // size of each member's favourite-title set

constexpr std::array<std::string_view, 9> kLanguages = {"en", "es", "pt", "ko", "ja",
                                                        "fr", "de", "hi", "it"};
// Share (percent) of the catalogue per original language, same order as kLanguages.
constexpr std::array<int, 9> kTitleLanguageWeights = {50, 12, 5, 8, 8, 5, 5, 4, 3};

struct Country {
  std::string_view code;
  int weight;    // percent of members
  int language;  // index into kLanguages
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

constexpr std::array<std::string_view, 14> kDevices = {
    "tv_samsung", "tv_lg",         "roku", "fire_tv",    "apple_tv",   "chromecast", "ps5", "xbox",
    "ios_phone",  "android_phone", "ipad", "web_chrome", "web_safari", "windows_app"};

template <size_t N>
int PickWeighted(const std::array<int, N>& weights, uint64_t h) {
  int total = std::accumulate(weights.begin(), weights.end(), 0);
  int x = static_cast<int>(h % static_cast<uint64_t>(total));
  for (size_t i = 0; i < N; ++i) {
    if (x < weights[i]) return static_cast<int>(i);
    x -= weights[i];
  }
  return 0;
}

int PickCountry(uint64_t h) {
  std::array<int, kCountries.size()> weights{};
  for (size_t i = 0; i < kCountries.size(); ++i) weights[i] = kCountries[i].weight;
  return PickWeighted(weights, h);
}

std::string_view TitleLanguage(uint64_t title) {
  return kLanguages[PickWeighted(kTitleLanguageWeights, Mix64(title ^ 0x5bd1e995))];
}

// log1p(x)/x, accurate near 0.
double Helper1(double x) {
  if (std::abs(x) > 1e-8) return std::log1p(x) / x;
  return 1 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}
// expm1(x)/x, accurate near 0.
double Helper2(double x) {
  if (std::abs(x) > 1e-8) return std::expm1(x) / x;
  return 1 + x * 0.5 * (1 + x * (1.0 / 3.0) * (1 + 0.25 * x));
}

void AppendUint(uint64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}
void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}
void AppendString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

}  // namespace

uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// ---- ZipfSampler --------------------------------------------------------------------------

ZipfSampler::ZipfSampler(uint64_t n, double s) : n_(std::max<uint64_t>(n, 1)), s_(s) {
  h_integral_x1_ = H(1.5) - 1.0;
  h_integral_n_ = H(static_cast<double>(n_) + 0.5);
  threshold_ = 2.0 - HInverse(H(2.5) - h(2.0));
}

double ZipfSampler::H(double x) const {
  double log_x = std::log(x);
  return Helper2((1.0 - s_) * log_x) * log_x;
}

double ZipfSampler::HInverse(double x) const {
  double t = x * (1.0 - s_);
  if (t < -1.0) t = -1.0;  // guards rounding at the edge of the domain
  return std::exp(Helper1(t) * x);
}

double ZipfSampler::h(double x) const { return std::exp(-s_ * std::log(x)); }

uint64_t ZipfSampler::Sample(Rng& rng) const {
  for (;;) {
    // Uniform over (H(1.5) - 1, H(n + 0.5)]: the area under the hat function.
    double u = h_integral_n_ + rng.Uniform() * (h_integral_x1_ - h_integral_n_);
    double x = HInverse(u);
    double kd = std::floor(x + 0.5);
    uint64_t k = kd < 1.0 ? 1 : (kd > static_cast<double>(n_) ? n_ : static_cast<uint64_t>(kd));
    double kf = static_cast<double>(k);
    if (kf - x <= threshold_ || u >= H(kf + 0.5) - h(kf)) return k;
  }
}

// ---- ViewingWorkload ------------------------------------------------------------------------

ViewingWorkload::ViewingWorkload(WorkloadOptions options)
    : options_(options),
      rng_(Mix64(options.seed)),
      member_zipf_(std::max<uint64_t>(options.members, 1), options.zipf_s),
      title_zipf_(std::max<uint64_t>(options.titles, 1), 0.9),
      favourite_zipf_(kFavourites, 1.0) {
  options_.members = std::max<uint64_t>(options_.members, 1);
  options_.titles = std::max<uint64_t>(options_.titles, 1);
  // A multiplier coprime with `members` makes rank -> id a bijection that scatters the
  // hottest members over the id (and key) space.
  uint64_t n = options_.members;
  uint64_t m = std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(n) * 0.6180339887));
  while (std::gcd(m, n) != 1) ++m;
  member_multiplier_ = m;
  members_.reserve(std::min<uint64_t>(n, 1 << 20));
}

uint64_t ViewingWorkload::MemberForRank(uint64_t rank) const {
  unsigned __int128 r = rank - 1;
  return static_cast<uint64_t>((r * member_multiplier_) % options_.members) + 1;
}

uint64_t ViewingWorkload::TitleForRank(uint64_t rank) const { return kFirstTitleId + rank; }

uint64_t ViewingWorkload::FavouriteTitle(uint64_t member) {
  uint64_t j = favourite_zipf_.Sample(rng_);
  // The member's j-th favourite: a fixed draw from the catalogue's popularity.
  Rng fav(Mix64(options_.seed * 0x2545F4914F6CDD1DULL ^ (member << 7) ^ j));
  return TitleForRank(title_zipf_.Sample(fav));
}

ViewingWorkload::MemberState& ViewingWorkload::State(uint64_t member, Millis now_ms) {
  auto [it, inserted] = members_.try_emplace(member);
  MemberState& st = it->second;
  if (inserted) {
    // Sticky traits come from a hash of (seed, member): they do not depend on the order in
    // which members are first drawn.
    uint64_t h = Mix64(options_.seed ^ Mix64(member));
    st.country = static_cast<uint8_t>(PickCountry(h));
    st.device = static_cast<uint8_t>((h >> 8) % kDevices.size());
    st.original_audio = ((h >> 16) & 3) == 0;
    st.audio = static_cast<uint8_t>(kCountries[st.country].language);
    st.subtitle =
        ((h >> 20) % 10) < 6 ? int8_t{-1} : static_cast<int8_t>(kCountries[st.country].language);
    Rng r(h);
    st.last_started_at = now_ms - static_cast<Millis>(r.Between(7 * kDay, 42 * kDay));
    st.last_event_time = st.last_started_at;
    st.next_session = r.Between(1, 5000);
  }
  return st;
}

ViewingEvent ViewingWorkload::NewPlayback(uint64_t member, MemberState& st, Millis now_ms) {
  ViewingEvent e;
  e.member = member;
  e.preview = rng_.Chance(options_.preview_fraction);
  if (e.preview) {
    e.title = TitleForRank(title_zipf_.Sample(rng_));
    // Autoplay previews: many are skipped within seconds.
    uint64_t seconds = rng_.Chance(0.55) ? rng_.Between(0, 4) : rng_.Between(5, 59);
    e.watched_ms = static_cast<int64_t>(seconds * 1000 + rng_.Between(0, 999));
    e.position_ms = e.watched_ms;
  } else {
    e.title = FavouriteTitle(member);
    double u = rng_.Uniform();
    uint64_t seconds = 60 + static_cast<uint64_t>(u * u * 7140);  // 1 min .. 2 h, mostly short
    e.watched_ms = static_cast<int64_t>(seconds * 1000 + rng_.Between(0, 999));
    int64_t resume_from =
        rng_.Chance(0.3) ? static_cast<int64_t>(rng_.Between(60, 3600) * 1000) : 0;
    e.position_ms = resume_from + e.watched_ms;
  }
  Millis pause = static_cast<Millis>(rng_.Between(0, kMaxPause));
  Millis started =
      st.last_started_at +
      std::max<Millis>(1, static_cast<Millis>(static_cast<double>(rng_.Between(kMinGap, kMaxGap)) *
                                              st.gap_scale));
  // A member drawn more often than real people watch catches up with `now`: squeeze the
  // playback so it still ends by `now` (started_at stays strictly increasing).
  started = std::min(started, now_ms - e.watched_ms - pause);
  if (started <= st.last_started_at) started = st.last_started_at + 1;
  if (started + e.watched_ms + pause > now_ms) {
    int64_t room = std::max<int64_t>(0, now_ms - started);
    pause = std::min(pause, room);
    int64_t resume_from = e.position_ms - e.watched_ms;
    e.watched_ms = std::min<int64_t>(e.watched_ms, room - pause);
    e.position_ms = resume_from + e.watched_ms;
  }
  e.started_at = started;
  e.event_time = started + e.watched_ms + pause;
  e.session = st.next_session++;

  // Language preferences change now and then (the server stores only the changes).
  if (rng_.Chance(0.02)) st.original_audio = !st.original_audio;
  if (rng_.Chance(0.02)) {
    st.subtitle =
        st.subtitle < 0 ? static_cast<int8_t>(kCountries[st.country].language) : int8_t{-1};
  }
  e.device = rng_.Chance(0.75) ? kDevices[st.device] : kDevices[rng_.Next() % kDevices.size()];
  e.country = kCountries[st.country].code;
  e.content_lang = TitleLanguage(e.title);
  e.audio_lang = st.original_audio ? e.content_lang : kLanguages[st.audio];
  e.subtitle_lang = st.subtitle < 0 ? std::string_view() : kLanguages[st.subtitle];

  st.last_started_at = e.started_at;
  st.last_event_time = e.event_time;
  st.last = e;
  st.has_last = true;
  return e;
}

ViewingEvent ViewingWorkload::Update(MemberState& st, Millis now_ms) {
  ViewingEvent e = st.last;
  e.update = true;
  Millis delta = e.preview ? static_cast<Millis>(rng_.Between(1 * kSecond, 30 * kSecond))
                           : static_cast<Millis>(rng_.Between(30 * kSecond, 15 * kMinute));
  Millis t = st.last_event_time + delta;
  if (t > now_ms) t = std::max(now_ms, st.last_event_time + 1);
  Millis moved = t - st.last_event_time;
  auto watched = static_cast<int64_t>(static_cast<double>(moved) * (0.7 + 0.3 * rng_.Uniform()));
  e.watched_ms += watched;
  e.position_ms += watched;
  e.event_time = t;
  st.last_event_time = t;
  st.last = e;
  return e;
}

void ViewingWorkload::NextEvents(size_t n, Millis now_ms, std::vector<ViewingEvent>* out) {
  out->reserve(out->size() + n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t member = SampleMember(rng_);
    if (rng_.Chance(options_.update_fraction)) {
      // A progress update needs a playback to update: members seen for the first time have
      // none, so look for an active member (a few draws; the hot ones all qualify).
      MemberState* st = &State(member, now_ms);
      for (int tries = 0; !st->has_last && tries < 8; ++tries) {
        member = SampleMember(rng_);
        st = &State(member, now_ms);
      }
      out->push_back(st->has_last ? Update(*st, now_ms) : NewPlayback(member, *st, now_ms));
    } else {
      out->push_back(NewPlayback(member, State(member, now_ms), now_ms));
    }
  }
}

void ViewingWorkload::PlanPreload(uint64_t members, Millis now_ms) {
  PlanPreload(1, members, 10'000, 12'000, 0, now_ms);
}

void ViewingWorkload::PlanPreload(uint64_t first_rank, uint64_t members, uint64_t min_plays,
                                  uint64_t max_plays, Millis span_ms, Millis now_ms) {
  first_rank = std::max<uint64_t>(first_rank, 1);
  members = first_rank > options_.members
                ? 0
                : std::min(members, options_.members - first_rank + 1);
  preload_members_.clear();
  preload_targets_.clear();
  preload_index_ = 0;
  preload_plays_done_ = 0;
  preload_plays_planned_ = 0;
  for (uint64_t rank = first_rank; rank < first_rank + members; ++rank) {
    uint64_t member = MemberForRank(rank);
    uint64_t plays = rng_.Between(min_plays, std::max(min_plays, max_plays));
    preload_members_.push_back(member);
    preload_targets_.push_back(plays);
    preload_plays_planned_ += plays;
    // Start far enough back that the whole history ends about now: years, for 10k plays.
    MemberState& st = State(member, now_ms);
    // (5% and two days of slack: the random gaps must not add up past `now`.)
    auto playbacks = static_cast<double>(plays) / (1.0 - options_.preview_fraction);
    const double natural = playbacks * static_cast<double>(kMeanGap) * 1.05;
    if (span_ms > 0) st.gap_scale = static_cast<double>(span_ms) / natural;
    st.last_started_at =
        now_ms - static_cast<Millis>(natural * st.gap_scale) - 2 * kDay;
    st.last_event_time = st.last_started_at;
  }
}

void ViewingWorkload::ResumeMembers(uint64_t first_rank, uint64_t members, Millis now_ms) {
  for (uint64_t rank = first_rank; rank < first_rank + members && rank <= options_.members;
       ++rank) {
    MemberState& st = State(MemberForRank(rank), now_ms);
    st.gap_scale = 1.0;
    st.last_started_at = std::max(st.last_started_at, now_ms - kDay);
    st.last_event_time = std::max(st.last_event_time, st.last_started_at);
  }
}

bool ViewingWorkload::NextPreloadEvents(size_t n, Millis now_ms, std::vector<ViewingEvent>* out) {
  size_t produced = 0;
  while (produced < n && preload_index_ < preload_members_.size()) {
    uint64_t member = preload_members_[preload_index_];
    ViewingEvent e = NewPlayback(member, State(member, now_ms), now_ms);
    out->push_back(e);
    ++produced;
    if (!e.preview && ++preload_plays_done_ >= preload_targets_[preload_index_]) {
      ++preload_index_;
      preload_plays_done_ = 0;
    }
  }
  return produced > 0;
}

// ---- JSON -------------------------------------------------------------------------------------

void AppendEventJson(const ViewingEvent& e, std::string* out) {
  out->append("{\"member\":");
  AppendUint(e.member, out);
  out->append(e.preview ? ",\"kind\":\"preview\",\"title\":" : ",\"kind\":\"play\",\"title\":");
  AppendUint(e.title, out);
  out->append(",\"session\":\"");
  AppendUint(e.session, out);
  out->append("\",\"started_at\":");
  AppendInt(e.started_at, out);
  out->append(",\"event_time\":");
  AppendInt(e.event_time, out);
  out->append(",\"position_ms\":");
  AppendInt(e.position_ms, out);
  out->append(",\"watched_ms\":");
  AppendInt(e.watched_ms, out);
  out->append(",\"device\":");
  AppendString(e.device, out);
  out->append(",\"country\":");
  AppendString(e.country, out);
  out->append(",\"content_lang\":");
  AppendString(e.content_lang, out);
  out->append(",\"audio_lang\":");
  AppendString(e.audio_lang, out);
  out->append(",\"subtitle_lang\":");
  AppendString(e.subtitle_lang, out);
  out->push_back('}');
}

void AppendBatchJson(const std::vector<ViewingEvent>& events, std::string* out) {
  out->reserve(out->size() + events.size() * 300 + 2);
  out->push_back('[');
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendEventJson(events[i], out);
  }
  out->push_back(']');
}

}  // namespace strata::bench
