#include "strata/viewing/segments.h"

#include <gtest/gtest.h>

#include <thread>

#include "strata/viewing/codec.h"

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

CompressedHistory Build(const std::vector<Segment>& segs) {
  CompressedHistory h;
  for (const auto& s : segs) {
    h.meta.segments.push_back(SegmentRef{h.meta.next_segment_id++, s.first_started_at,
                                         s.last_started_at, s.max_event_time, s.records,
                                         s.bytes.size(), 0});
    h.segments.push_back(std::make_shared<std::string>(s.bytes));
  }
  return h;
}

TEST(Segments, SplitAndDecode) {
  auto records = Records(1000);
  std::vector<Segment> segs;
  EncodeSegments(records, 300, 3, &segs);
  ASSERT_EQ(segs.size(), 4u);
  EXPECT_EQ(segs[0].records, 300u);
  EXPECT_EQ(segs[3].records, 100u);
  EXPECT_EQ(segs[1].first_started_at, records[300].started_at);
  EXPECT_EQ(segs[1].last_started_at, records[599].started_at);
  EXPECT_EQ(segs[3].max_event_time, records.back().event_time);
  auto all = DecodeAllSegments(Build(segs), 3, Kind::kPlay);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, records);
}

// DecodeNewest builds the newest records only while enough of them qualify, and the whole
// segment otherwise; a wrong record count is DataLoss either way.
TEST(Segments, DecodeNewestBuildsTheTailUnlessTooFewQualify) {
  const auto records = Records(500);
  const std::string blob = EncodeHistory(records, 3);
  auto any = [](const ViewingRecord&) { return true; };

  auto tail = DecodeNewest(blob, 3, Kind::kPlay, 500, 51, any);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(*tail, std::vector<ViewingRecord>(records.end() - 51, records.end()));

  // Only even titles qualify: the newest 51 hold fewer than 51 of them, so all 500 come back.
  auto even = [](const ViewingRecord& r) { return r.title % 2 == 0; };
  auto all = DecodeNewest(blob, 3, Kind::kPlay, 500, 51, even);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, records);

  auto whole = DecodeNewest(blob, 3, Kind::kPlay, 500, 500, any);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(*whole, records);

  size_t total = 0;
  auto newest3 = DecodeHistory(blob, 3, Kind::kPlay, 3, &total);
  ASSERT_TRUE(newest3.ok());
  EXPECT_EQ(total, 500u);
  EXPECT_EQ(*newest3, std::vector<ViewingRecord>(records.end() - 3, records.end()));

  EXPECT_TRUE(absl::IsDataLoss(DecodeNewest(blob, 3, Kind::kPlay, 499, 51, any).status()));
  EXPECT_TRUE(absl::IsDataLoss(DecodeNewest(blob, 3, Kind::kPlay, 501, 600, any).status()));
}

// Through a RunAll (here: a thread per task), large encodings give the same segments in
// the same order, appended after what *out held; small ones do not use it.
TEST(Segments, ParallelEncodingMatchesSequential) {
  size_t calls = 0, tasks_run = 0;
  RunAll threads = [&](std::vector<std::function<void()>>& tasks) {
    ++calls;
    std::vector<std::thread> running;
    for (auto& t : tasks) running.emplace_back(t);
    for (auto& t : running) t.join();
    tasks_run += tasks.size();
  };
  auto records = Records(2000, /*same_every=*/3);
  std::vector<Segment> sequential, parallel(1);  // one segment already there
  EncodeSegments(records, 128, 3, &sequential);
  EncodeSegments(records, 128, 3, &parallel, &threads);
  ASSERT_GE(sequential.size(), kParallelEncodeFrom);
  EXPECT_EQ(calls, 1u);
  EXPECT_EQ(tasks_run, sequential.size());
  ASSERT_EQ(parallel.size(), sequential.size() + 1);
  for (size_t i = 0; i < sequential.size(); ++i) {
    EXPECT_EQ(parallel[i + 1].bytes, sequential[i].bytes) << i;
    EXPECT_EQ(parallel[i + 1].records, sequential[i].records) << i;
    EXPECT_EQ(parallel[i + 1].first_started_at, sequential[i].first_started_at) << i;
    EXPECT_EQ(parallel[i + 1].max_event_time, sequential[i].max_event_time) << i;
  }
  std::vector<Segment> small;
  EncodeSegments(Records(100), 128, 3, &small, &threads);
  EXPECT_EQ(small.size(), 1u);
  EXPECT_EQ(calls, 1u);  // one segment: encoded in place
}

TEST(Segments, EqualStartTimesStayInOneSegment) {
  auto records = Records(100, /*same_every=*/7);
  std::vector<Segment> segs;
  EncodeSegments(records, 10, 3, &segs);
  uint64_t total = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    total += segs[i].records;
    if (i > 0) {
      EXPECT_LT(segs[i - 1].last_started_at, segs[i].first_started_at);
    }
  }
  EXPECT_EQ(total, 100u);
}

TEST(Segments, MetaRoundTrips) {
  std::vector<Segment> segs;
  EncodeSegments(Records(50), 20, 3, &segs);
  HistoryMeta m = Build(segs).meta;
  m.version = 7;
  m.next_segment_id += 5;
  m.garbage = {1, 2, 99};
  auto back = DecodeMeta(EncodeMeta(m));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->version, 7u);
  EXPECT_EQ(back->records(), 50u);
  EXPECT_EQ(back->garbage, m.garbage);
  ASSERT_EQ(back->segments.size(), m.segments.size());
  EXPECT_EQ(back->segments[1].first_started_at, m.segments[1].first_started_at);
  EXPECT_EQ(back->segments[1].max_event_time, m.segments[1].max_event_time);
}

TEST(Segments, CorruptMetaIsAnErrorNotACrash) {
  std::vector<Segment> segs;
  EncodeSegments(Records(50), 20, 3, &segs);
  std::string meta = EncodeMeta(Build(segs).meta);
  for (size_t n = 0; n < meta.size(); ++n) {
    EXPECT_FALSE(DecodeMeta(std::string_view(meta.data(), n)).ok()) << "truncated to " << n;
  }
  std::string bad_version = meta;
  bad_version[0] = 9;
  EXPECT_TRUE(absl::IsDataLoss(DecodeMeta(bad_version).status()));
  for (size_t i = 1; i < meta.size(); ++i) {
    std::string flipped = meta;
    flipped[i] ^= 0x41;
    (void)DecodeMeta(flipped);  // any result but a crash
  }
}

}  // namespace
}  // namespace strata::viewing
