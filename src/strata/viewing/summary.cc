#include "strata/viewing/summary.h"

#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "strata/base/coding.h"
#include "strata/base/status.h"

namespace strata::viewing {

void SummaryBuilder::Add(const ViewingRecord& r) {
  auto [it, inserted] = titles_.try_emplace(r.title);
  TitleSummary& s = it->second;
  if (inserted) {
    s.title = r.title;
    s.first_at = r.started_at;
    s.last_at = r.started_at;
    s.position_ms = r.position_ms;
  } else {
    s.first_at = std::min(s.first_at, r.started_at);
    if (r.started_at >= s.last_at) {
      s.last_at = r.started_at;
      s.position_ms = r.position_ms;
    }
  }
  ++s.plays;
  s.watched_ms += r.watched_ms;
}

void SummaryBuilder::Replace(const ViewingRecord& old_version, const ViewingRecord& new_version) {
  auto it = titles_.find(old_version.title);
  if (it == titles_.end()) {  // not counted after all: count the new version
    Add(new_version);
    return;
  }
  TitleSummary& s = it->second;
  if (old_version.title != new_version.title) {
    s.watched_ms -= old_version.watched_ms;
    if (--s.plays == 0) titles_.erase(it);
    Add(new_version);
    return;
  }
  s.watched_ms += new_version.watched_ms - old_version.watched_ms;
  if (new_version.started_at >= s.last_at) {
    s.last_at = new_version.started_at;
    s.position_ms = new_version.position_ms;
  }
}

void SummaryBuilder::Merge(std::span<const TitleSummary> other) {
  for (const TitleSummary& o : other) {
    auto [it, inserted] = titles_.try_emplace(o.title, o);
    if (inserted) continue;
    TitleSummary& s = it->second;
    s.plays += o.plays;
    s.watched_ms += o.watched_ms;
    s.first_at = std::min(s.first_at, o.first_at);
    if (o.last_at >= s.last_at) {
      s.last_at = o.last_at;
      s.position_ms = o.position_ms;
    }
  }
}

std::vector<TitleSummary> SummaryBuilder::ByTitle() const {
  std::vector<TitleSummary> out;
  out.reserve(titles_.size());
  for (const auto& [title, s] : titles_) out.push_back(s);
  std::sort(out.begin(), out.end(),
            [](const TitleSummary& a, const TitleSummary& b) { return a.title < b.title; });
  return out;
}

std::vector<TitleSummary> SummaryBuilder::ByRecency() const {
  std::vector<TitleSummary> out = ByTitle();
  std::stable_sort(out.begin(), out.end(), [](const TitleSummary& a, const TitleSummary& b) {
    return a.last_at > b.last_at;
  });
  return out;
}

// Blob: version byte, then one zstd frame holding the columnar payload:
//   varint n; then six columns of n varints each, in title order:
//   title delta (from the previous title; the first from 0), plays, zigzag watched_ms,
//   zigzag first_at delta (from the previous entry's first_at; the first from 0),
//   zigzag (last_at - first_at), zigzag position_ms.
std::string EncodeSummary(std::span<const TitleSummary> titles, int zstd_level) {
  std::vector<TitleSummary> sorted(titles.begin(), titles.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const TitleSummary& a, const TitleSummary& b) { return a.title < b.title; });
  std::string payload;
  coding::PutVarint64(&payload, sorted.size());
  TitleId prev_title = 0;
  for (const auto& s : sorted) {
    coding::PutVarint64(&payload, s.title - prev_title);
    prev_title = s.title;
  }
  for (const auto& s : sorted) coding::PutVarint64(&payload, s.plays);
  for (const auto& s : sorted) coding::PutVarint64(&payload, coding::ZigZag(s.watched_ms));
  Millis prev_first = 0;
  for (const auto& s : sorted) {
    coding::PutVarint64(&payload, coding::ZigZag(static_cast<int64_t>(
                                      static_cast<uint64_t>(s.first_at) -
                                      static_cast<uint64_t>(prev_first))));
    prev_first = s.first_at;
  }
  for (const auto& s : sorted) {
    coding::PutVarint64(&payload, coding::ZigZag(static_cast<int64_t>(
                                      static_cast<uint64_t>(s.last_at) -
                                      static_cast<uint64_t>(s.first_at))));
  }
  for (const auto& s : sorted) coding::PutVarint64(&payload, coding::ZigZag(s.position_ms));

  std::string out(1, static_cast<char>(kSummaryFormatV1));
  const size_t bound = ZSTD_compressBound(payload.size());
  out.resize(1 + bound);
  const size_t n = ZSTD_compress(out.data() + 1, bound, payload.data(), payload.size(),
                                 std::clamp(zstd_level, 1, 19));
  // Compression into a buffer of ZSTD_compressBound bytes cannot fail.
  out.resize(ZSTD_isError(n) ? 1 : 1 + n);
  return out;
}

absl::StatusOr<std::vector<TitleSummary>> DecodeSummary(std::string_view blob) {
  auto corrupt = [](std::string_view what) {
    return absl::DataLossError(std::string("summary blob: ") + std::string(what));
  };
  if (blob.empty()) return corrupt("empty");
  if (static_cast<uint8_t>(blob[0]) != kSummaryFormatV1) return corrupt("unknown format version");
  blob.remove_prefix(1);
  const unsigned long long size = ZSTD_getFrameContentSize(blob.data(), blob.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return corrupt("bad zstd frame");
  }
  // Six varints of at most 10 bytes per title, plus the count.
  if (size > 10 + 60 * kMaxSummaryTitles) return corrupt("declared size too large");
  std::string payload(size, '\0');
  const size_t got = ZSTD_decompress(payload.data(), payload.size(), blob.data(), blob.size());
  if (ZSTD_isError(got) || got != size) return corrupt("zstd frame does not decompress");

  std::string_view in = payload;
  uint64_t n = 0;
  if (!coding::GetVarint64(&in, &n)) return corrupt("truncated count");
  // Every title takes at least six bytes.
  if (n > kMaxSummaryTitles || n > in.size() / 6) return corrupt("count exceeds payload");
  std::vector<TitleSummary> out(n);
  uint64_t v = 0;
  TitleId title = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (!coding::GetVarint64(&in, &v)) return corrupt("truncated title column");
    // Strictly ascending: a zero step repeats a title, and a step past UINT64_MAX would
    // wrap to a smaller one.
    if ((i > 0 && v == 0) || v > UINT64_MAX - title) return corrupt("titles not ascending");
    title += v;
    out[i].title = title;
  }
  for (auto& s : out) {
    if (!coding::GetVarint64(&in, &s.plays)) return corrupt("truncated plays column");
  }
  for (auto& s : out) {
    if (!coding::GetVarint64(&in, &v)) return corrupt("truncated watched column");
    s.watched_ms = coding::UnZigZag(v);
  }
  uint64_t first = 0;
  for (auto& s : out) {
    if (!coding::GetVarint64(&in, &v)) return corrupt("truncated first_at column");
    first += static_cast<uint64_t>(coding::UnZigZag(v));
    s.first_at = static_cast<Millis>(first);
  }
  for (auto& s : out) {
    if (!coding::GetVarint64(&in, &v)) return corrupt("truncated last_at column");
    s.last_at = static_cast<Millis>(static_cast<uint64_t>(s.first_at) +
                                    static_cast<uint64_t>(coding::UnZigZag(v)));
  }
  for (auto& s : out) {
    if (!coding::GetVarint64(&in, &v)) return corrupt("truncated position column");
    s.position_ms = coding::UnZigZag(v);
  }
  if (!in.empty()) return corrupt("trailing bytes");
  return out;
}

// Past state: version byte, zigzag varints rotated_until, summary_from, varint
// meta_version, then a summary blob (the rest of the value).
std::string EncodePastState(const PastState& s, int zstd_level) {
  std::string out(1, static_cast<char>(kTierStateFormatV1));
  coding::PutVarint64(&out, coding::ZigZag(s.rotated_until));
  coding::PutVarint64(&out, coding::ZigZag(s.summary_from));
  coding::PutVarint64(&out, s.meta_version);
  out += EncodeSummary(s.summary, zstd_level);
  return out;
}

absl::StatusOr<PastState> DecodePastState(std::string_view in) {
  PastState s;
  uint64_t a, b;
  if (in.empty() || static_cast<uint8_t>(in[0]) != kTierStateFormatV1) {
    return absl::DataLossError("past tier state: unknown format version");
  }
  in.remove_prefix(1);
  if (!coding::GetVarint64(&in, &a) || !coding::GetVarint64(&in, &b) ||
      !coding::GetVarint64(&in, &s.meta_version)) {
    return absl::DataLossError("past tier state: truncated");
  }
  s.rotated_until = coding::UnZigZag(a);
  s.summary_from = coding::UnZigZag(b);
  STRATA_ASSIGN_OR_RETURN(s.summary, DecodeSummary(in));
  return s;
}

// Historical state: version byte, varint version, zigzag varint until, then a summary blob.
std::string EncodeHistoricalState(const HistoricalState& s, int zstd_level) {
  std::string out(1, static_cast<char>(kTierStateFormatV1));
  coding::PutVarint64(&out, s.version);
  coding::PutVarint64(&out, coding::ZigZag(s.until));
  out += EncodeSummary(s.summary, zstd_level);
  return out;
}

absl::StatusOr<HistoricalState> DecodeHistoricalState(std::string_view in) {
  HistoricalState s;
  uint64_t until;
  if (in.empty() || static_cast<uint8_t>(in[0]) != kTierStateFormatV1) {
    return absl::DataLossError("historical tier state: unknown format version");
  }
  in.remove_prefix(1);
  if (!coding::GetVarint64(&in, &s.version) || !coding::GetVarint64(&in, &until)) {
    return absl::DataLossError("historical tier state: truncated");
  }
  s.until = coding::UnZigZag(until);
  STRATA_ASSIGN_OR_RETURN(s.summary, DecodeSummary(in));
  return s;
}

}  // namespace strata::viewing
