#include "strata/viewing/segments.h"

#include <algorithm>

#include "strata/base/coding.h"
#include "strata/base/status.h"
#include "strata/viewing/codec.h"

namespace strata::viewing {

uint64_t HistoryMeta::records() const {
  uint64_t n = 0;
  for (const auto& s : segments) n += s.records;
  return n;
}

void EncodeSegments(std::span<const ViewingRecord> records, size_t per_segment, int zstd_level,
                    std::vector<Segment>* out, const RunAll* run_all) {
  per_segment = std::max<size_t>(per_segment, 1);
  std::vector<std::span<const ViewingRecord>> parts;
  size_t begin = 0;
  while (begin < records.size()) {
    size_t end = std::min(begin + per_segment, records.size());
    // Do not split a run of equal started_at values across segments.
    while (end < records.size() && records[end].started_at == records[end - 1].started_at) ++end;
    parts.push_back(records.subspan(begin, end - begin));
    begin = end;
  }
  const size_t first = out->size();
  out->resize(first + parts.size());
  auto encode = [&](size_t k) {
    const std::span<const ViewingRecord> part = parts[k];
    Segment& seg = (*out)[first + k];
    seg.first_started_at = part.front().started_at;
    seg.last_started_at = part.back().started_at;
    seg.max_event_time = part.front().event_time;
    for (const auto& r : part) seg.max_event_time = std::max(seg.max_event_time, r.event_time);
    seg.records = part.size();
    seg.bytes = EncodeHistory(part, zstd_level);
  };
  if (run_all && *run_all && parts.size() >= kParallelEncodeFrom) {
    std::vector<std::function<void()>> tasks;
    tasks.reserve(parts.size());
    for (size_t k = 0; k < parts.size(); ++k) tasks.push_back([&encode, k] { encode(k); });
    (*run_all)(tasks);
  } else {
    for (size_t k = 0; k < parts.size(); ++k) encode(k);
  }
}

std::string EncodeMeta(const HistoryMeta& m) {
  std::string out;
  out.reserve(16 + m.segments.size() * 24 + m.garbage.size() * 3);
  out.push_back(static_cast<char>(kHistoryMetaFormatV1));
  coding::PutVarint64(&out, m.version);
  coding::PutVarint64(&out, m.next_segment_id);
  coding::PutVarint64(&out, m.segments.size());
  for (const auto& s : m.segments) {
    coding::PutVarint64(&out, s.id);
    coding::PutVarint64(&out, coding::ZigZag(s.first_started_at));
    coding::PutVarint64(&out, static_cast<uint64_t>(s.last_started_at - s.first_started_at));
    coding::PutVarint64(&out, coding::ZigZag(s.max_event_time - s.last_started_at));
    coding::PutVarint64(&out, s.records);
    coding::PutVarint64(&out, s.bytes);
    coding::PutFixed64BE(&out, s.checksum);
  }
  coding::PutVarint64(&out, m.garbage.size());
  for (uint64_t id : m.garbage) coding::PutVarint64(&out, id);
  return out;
}

absl::StatusOr<HistoryMeta> DecodeMeta(std::string_view in) {
  auto corrupt = [] { return absl::DataLossError("compressed history metadata: corrupt"); };
  if (in.empty()) return corrupt();
  if (static_cast<uint8_t>(in[0]) != kHistoryMetaFormatV1) {
    return absl::DataLossError("compressed history metadata: unknown format version " +
                               std::to_string(static_cast<uint8_t>(in[0])));
  }
  in.remove_prefix(1);
  HistoryMeta m;
  uint64_t n;
  if (!coding::GetVarint64(&in, &m.version) || !coding::GetVarint64(&in, &m.next_segment_id) ||
      !coding::GetVarint64(&in, &n) || n > kMaxSegments || n > in.size()) {
    return corrupt();
  }
  m.segments.resize(n);
  Millis prev_last = 0;
  for (uint64_t i = 0; i < n; ++i) {
    SegmentRef& s = m.segments[i];
    uint64_t first, span, max_delta;
    if (!coding::GetVarint64(&in, &s.id) || !coding::GetVarint64(&in, &first) ||
        !coding::GetVarint64(&in, &span) || !coding::GetVarint64(&in, &max_delta) ||
        !coding::GetVarint64(&in, &s.records) || !coding::GetVarint64(&in, &s.bytes) ||
        !coding::GetFixed64BE(&in, &s.checksum)) {
      return corrupt();
    }
    s.first_started_at = coding::UnZigZag(first);
    if (span > static_cast<uint64_t>(INT64_MAX) ||
        __builtin_add_overflow(s.first_started_at, static_cast<Millis>(span),
                               &s.last_started_at) ||
        __builtin_add_overflow(s.last_started_at, coding::UnZigZag(max_delta),
                               &s.max_event_time)) {
      return corrupt();
    }
    if (s.records == 0 || s.id >= m.next_segment_id ||
        (i > 0 && s.first_started_at <= prev_last)) {
      return corrupt();
    }
    prev_last = s.last_started_at;
  }
  uint64_t g;
  if (!coding::GetVarint64(&in, &g) || g > kMaxSegments || g > in.size()) return corrupt();
  m.garbage.resize(g);
  for (uint64_t i = 0; i < g; ++i) {
    if (!coding::GetVarint64(&in, &m.garbage[i])) return corrupt();
  }
  if (!in.empty()) return corrupt();
  return m;
}

absl::StatusOr<std::vector<ViewingRecord>> DecodeSegment(const CompressedHistory& h, size_t i,
                                                         MemberId member, Kind kind) {
  STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> part,
                          DecodeHistory(*h.segments[i], member, kind));
  if (part.size() != h.meta.segments[i].records) {
    return absl::DataLossError("compressed history: segment record count mismatch");
  }
  return part;
}

absl::StatusOr<std::vector<ViewingRecord>> DecodeNewest(
    std::string_view bytes, MemberId member, Kind kind, uint64_t expected, size_t want,
    const std::function<bool(const ViewingRecord&)>& qualifies) {
  auto mismatch = [] {
    return absl::DataLossError("compressed history: segment record count mismatch");
  };
  size_t total = 0;
  if (want < expected) {
    STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> tail,
                            DecodeHistory(bytes, member, kind, want, &total));
    if (total != expected) return mismatch();
    if (static_cast<size_t>(std::count_if(tail.begin(), tail.end(), qualifies)) >= want) {
      return tail;
    }
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> all,
                          DecodeHistory(bytes, member, kind, SIZE_MAX, &total));
  if (total != expected) return mismatch();
  return all;
}

absl::StatusOr<std::vector<ViewingRecord>> DecodeAllSegments(const CompressedHistory& h,
                                                             MemberId member, Kind kind) {
  std::vector<ViewingRecord> out;
  out.reserve(std::min<uint64_t>(h.meta.records(), kMaxRecordsPerBlob));
  for (size_t i = 0; i < h.segments.size(); ++i) {
    STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> part, DecodeSegment(h, i, member, kind));
    for (auto& r : part) out.push_back(std::move(r));
  }
  return out;
}

}  // namespace strata::viewing
