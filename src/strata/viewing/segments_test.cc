#include "strata/viewing/segments.h"

#include <gtest/gtest.h>

namespace strata::viewing {
namespace {

std::vector<ViewingRecord> Records(int n, int same_every = 1) {
  std::vector<ViewingRecord> out;
  for (int i = 0; i < n; ++i) {
    ViewingRecord r;
    r.member = 3;
    r.started_at = 1'000'000 + (i / same_every) * 1000;
    r.session = std::to_string(i);
    r.event_time = r.started_at + 500 + i;
    r.title = i % 7;
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return PlaybackKey(a) < PlaybackKey(b);
  });
  return out;
}

TEST(Segments, RoundTripAndIndex) {
  auto records = Records(1000);
  std::vector<Segment> segs;
  EncodeSegments(records, 300, 3, &segs);
  ASSERT_EQ(segs.size(), 4u);
  EXPECT_EQ(segs[0].records, 300u);
  EXPECT_EQ(segs[3].records, 100u);
  std::string container = BuildContainer(segs);
  auto views = ParseContainer(container);
  ASSERT_TRUE(views.ok()) << views.status();
  ASSERT_EQ(views->size(), 4u);
  EXPECT_EQ((*views)[1].first_started_at, records[300].started_at);
  EXPECT_EQ((*views)[1].last_started_at, records[599].started_at);
  EXPECT_EQ((*views)[3].max_event_time, records.back().event_time);
  auto all = DecodeAllSegments(*views, 3, Kind::kPlay);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, records);
}

TEST(Segments, EqualStartTimesStayInOneSegment) {
  auto records = Records(100, /*same_every=*/7);
  std::vector<Segment> segs;
  EncodeSegments(records, 10, 3, &segs);
  for (size_t i = 1; i < segs.size(); ++i) {
    EXPECT_LT(segs[i - 1].last_started_at, segs[i].first_started_at);
  }
  uint64_t total = 0;
  for (const auto& s : segs) total += s.records;
  EXPECT_EQ(total, 100u);
}

TEST(Segments, CorruptContainersAreErrorsNotCrashes) {
  std::vector<Segment> segs;
  EncodeSegments(Records(50), 20, 3, &segs);
  std::string container = BuildContainer(segs);
  for (size_t n = 0; n < container.size(); ++n) {
    auto parsed = ParseContainer(std::string_view(container.data(), n));
    EXPECT_FALSE(parsed.ok()) << "truncated to " << n;
  }
  std::string bad_version = container;
  bad_version[0] = 9;
  EXPECT_TRUE(absl::IsDataLoss(ParseContainer(bad_version).status()));
  for (size_t i = 1; i < std::min<size_t>(container.size(), 40); ++i) {
    std::string flipped = container;
    flipped[i] ^= 0x40;
    auto parsed = ParseContainer(flipped);
    if (parsed.ok()) (void)DecodeAllSegments(*parsed, 3, Kind::kPlay);  // must not crash
  }
}

}  // namespace
}  // namespace strata::viewing
