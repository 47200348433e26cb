#include "strata/viewing/segments.h"

#include <algorithm>

#include "strata/base/coding.h"
#include "strata/base/status.h"
#include "strata/viewing/codec.h"

namespace strata::viewing {

void EncodeSegments(std::span<const ViewingRecord> records, size_t per_segment, int zstd_level,
                    std::vector<Segment>* out) {
  per_segment = std::max<size_t>(per_segment, 1);
  size_t begin = 0;
  while (begin < records.size()) {
    size_t end = std::min(begin + per_segment, records.size());
    // Do not split a run of equal started_at values across segments.
    while (end < records.size() && records[end].started_at == records[end - 1].started_at) ++end;
    std::span<const ViewingRecord> part = records.subspan(begin, end - begin);
    Segment seg;
    seg.first_started_at = part.front().started_at;
    seg.last_started_at = part.back().started_at;
    seg.max_event_time = 0;
    for (const auto& r : part) seg.max_event_time = std::max(seg.max_event_time, r.event_time);
    seg.records = part.size();
    seg.bytes = EncodeHistory(part, zstd_level);
    out->push_back(std::move(seg));
    begin = end;
  }
}

std::string BuildContainer(std::span<const Segment> segments) {
  size_t total = 16;
  for (const auto& s : segments) total += s.bytes.size() + 24;
  std::string out;
  out.reserve(total);
  out.push_back(static_cast<char>(kSegmentedFormatV1));
  coding::PutVarint64(&out, segments.size());
  for (const auto& s : segments) {
    coding::PutVarint64(&out, coding::ZigZag(s.first_started_at));
    coding::PutVarint64(&out, static_cast<uint64_t>(s.last_started_at - s.first_started_at));
    coding::PutVarint64(&out, coding::ZigZag(s.max_event_time - s.last_started_at));
    coding::PutVarint64(&out, s.records);
    coding::PutVarint64(&out, s.bytes.size());
  }
  for (const auto& s : segments) out.append(s.bytes);
  return out;
}

absl::StatusOr<std::vector<SegmentView>> ParseContainer(std::string_view in) {
  auto corrupt = [] { return absl::DataLossError("segmented history: corrupt index"); };
  if (in.empty()) return corrupt();
  if (static_cast<uint8_t>(in[0]) != kSegmentedFormatV1) {
    return absl::DataLossError("segmented history: unknown format version " +
                               std::to_string(static_cast<uint8_t>(in[0])));
  }
  in.remove_prefix(1);
  uint64_t n;
  if (!coding::GetVarint64(&in, &n) || n > kMaxSegments || n > in.size()) return corrupt();
  std::vector<SegmentView> segs(n);
  std::vector<uint64_t> sizes(n);
  uint64_t total = 0;
  Millis prev_last = INT64_MIN;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t first, span, max_delta, records, size;
    if (!coding::GetVarint64(&in, &first) || !coding::GetVarint64(&in, &span) ||
        !coding::GetVarint64(&in, &max_delta) || !coding::GetVarint64(&in, &records) ||
        !coding::GetVarint64(&in, &size)) {
      return corrupt();
    }
    SegmentView& s = segs[i];
    s.first_started_at = coding::UnZigZag(first);
    if (span > static_cast<uint64_t>(INT64_MAX) ||
        __builtin_add_overflow(s.first_started_at, static_cast<Millis>(span),
                               &s.last_started_at) ||
        __builtin_add_overflow(s.last_started_at, coding::UnZigZag(max_delta),
                               &s.max_event_time)) {
      return corrupt();
    }
    s.records = records;
    if (records == 0 || (i > 0 && s.first_started_at <= prev_last)) return corrupt();
    prev_last = s.last_started_at;
    sizes[i] = size;
    total += size;
    if (total > in.size()) return corrupt();
  }
  if (total != in.size()) return corrupt();
  for (uint64_t i = 0; i < n; ++i) {
    segs[i].bytes = in.substr(0, sizes[i]);
    in.remove_prefix(sizes[i]);
  }
  return segs;
}

absl::StatusOr<std::vector<ViewingRecord>> DecodeAllSegments(std::span<const SegmentView> segs,
                                                             MemberId member, Kind kind) {
  std::vector<ViewingRecord> out;
  uint64_t total = 0;
  for (const auto& s : segs) total += s.records;
  out.reserve(std::min<uint64_t>(total, kMaxRecordsPerBlob));
  for (const auto& s : segs) {
    STRATA_ASSIGN_OR_RETURN(std::vector<ViewingRecord> part, DecodeHistory(s.bytes, member, kind));
    if (part.size() != s.records) {
      return absl::DataLossError("segmented history: record count mismatch");
    }
    for (auto& r : part) out.push_back(std::move(r));
  }
  return out;
}

}  // namespace strata::viewing
