#include "bench/pg_client.h"

#include <cstring>
#include <string>
#include <vector>

#include "bench/viewing_workload.h"
#include "gtest/gtest.h"

namespace strata::bench {
namespace {

ViewingEvent Event(uint64_t member, Millis started_at, uint64_t session, Millis event_time) {
  ViewingEvent e;
  e.member = member;
  e.title = 80'000'001;
  e.session = session;
  e.started_at = started_at;
  e.event_time = event_time;
  e.position_ms = event_time - started_at;
  e.watched_ms = event_time - started_at;
  e.device = "roku";
  e.country = "US";
  e.content_lang = "en";
  e.audio_lang = "en";
  return e;
}

// The values of a PgBatch, row by row.
std::vector<std::vector<std::string>> Rows(const PgBatch& b) {
  std::vector<std::vector<std::string>> rows;
  const char* p = b.values.data();
  const char* end = p + b.values.size();
  while (p < end) {
    if (rows.empty() || rows.back().size() == kPgColumns) rows.emplace_back();
    rows.back().emplace_back(p);
    p += std::strlen(p) + 1;
  }
  return rows;
}

TEST(PgBatchTest, MergesAKeysEventsIntoTheNewestAndSortsByKey) {
  std::vector<ViewingEvent> events = {
      Event(9, 1000, 1, 2000), Event(3, 5000, 7, 6000),
      Event(9, 1000, 1, 4000),  // an update of the first: wins
      Event(9, 1000, 1, 3000),  // late, older: loses
      Event(3, 4000, 6, 4500),
  };
  events[4].preview = true;
  events[4].subtitle_lang = "";
  const PgBatch b = MakePgBatch(events);
  EXPECT_EQ(b.events, 5u);
  ASSERT_EQ(b.rows, 3u);
  const auto rows = Rows(b);
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& r : rows) ASSERT_EQ(r.size(), static_cast<size_t>(kPgColumns));
  // Sorted by (member, kind, started_at, session): member 3's play, member 3's preview, 9.
  EXPECT_EQ(rows[0][0], "3");
  EXPECT_EQ(rows[0][1], "0");
  EXPECT_EQ(rows[1][0], "3");
  EXPECT_EQ(rows[1][1], "1");
  EXPECT_EQ(rows[1][12], "");  // subtitles off: an empty string, as Strata answers
  EXPECT_EQ(rows[2][0], "9");
  EXPECT_EQ(rows[2][2], "1000");
  EXPECT_EQ(rows[2][3], "1");
  EXPECT_EQ(rows[2][5], "4000");  // the greatest event_time
  EXPECT_EQ(rows[2][7], "3000");  // its watched_ms
  EXPECT_EQ(rows[2][8], "roku");
  EXPECT_EQ(MakePgBatch({}).rows, 0u);
}

}  // namespace
}  // namespace strata::bench
