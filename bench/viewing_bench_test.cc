#include "bench/viewing_bench.h"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "bench/latency_histogram.h"
#include "bench/viewing_bench_internal.h"
#include "bench/viewing_workload.h"
#include "gtest/gtest.h"
#include "strata/http/http_server.h"

namespace strata::bench {
namespace {

constexpr Millis kNow = 1'700'000'000'000;  // a fixed "now" makes generation repeatable

std::string GenerateJson(uint64_t seed, size_t events) {
  WorkloadOptions o;
  o.seed = seed;
  ViewingWorkload w(o);
  std::vector<ViewingEvent> batch;
  std::string json;
  for (size_t done = 0; done < events; done += 500) {
    batch.clear();
    w.NextEvents(500, kNow + static_cast<Millis>(done), &batch);
    AppendBatchJson(batch, &json);
  }
  return json;
}

TEST(ZipfSamplerTest, MatchesTheDistributionForSmallN) {
  constexpr uint64_t kN = 10;
  constexpr double kS = 1.1;
  ZipfSampler zipf(kN, kS);
  Rng rng(42);
  std::vector<uint64_t> counts(kN + 1, 0);
  constexpr int kSamples = 400'000;
  for (int i = 0; i < kSamples; ++i) {
    uint64_t k = zipf.Sample(rng);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, kN);
    ++counts[k];
  }
  double norm = 0;
  for (uint64_t k = 1; k <= kN; ++k) norm += std::pow(static_cast<double>(k), -kS);
  for (uint64_t k = 1; k <= kN; ++k) {
    double expected = std::pow(static_cast<double>(k), -kS) / norm;
    double got = static_cast<double>(counts[k]) / kSamples;
    EXPECT_NEAR(got, expected, 0.01 * expected + 0.002) << "k=" << k;
  }
}

TEST(ZipfSamplerTest, SkewForLargeNAndEdgeCases) {
  ZipfSampler zipf(50'000, 1.1);
  Rng rng(7);
  constexpr int kSamples = 200'000;
  uint64_t top1 = 0, top500 = 0;
  for (int i = 0; i < kSamples; ++i) {
    uint64_t k = zipf.Sample(rng);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, 50'000u);
    top1 += k == 1;
    top500 += k <= 500;
  }
  // P(1) = 1 / sum(k^-1.1) ~ 0.137 for n = 50000; the top 1% of members get most events.
  EXPECT_NEAR(static_cast<double>(top1) / kSamples, 0.137, 0.01);
  EXPECT_GT(static_cast<double>(top500) / kSamples, 0.6);

  ZipfSampler one(1, 1.1);
  ZipfSampler harmonic(100, 1.0);  // s == 1 goes through the series expansions
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(one.Sample(rng), 1u);
    uint64_t k = harmonic.Sample(rng);
    EXPECT_GE(k, 1u);
    EXPECT_LE(k, 100u);
  }
}

TEST(ViewingWorkloadTest, DeterministicForASeed) {
  std::string a = GenerateJson(1, 5000);
  std::string b = GenerateJson(1, 5000);
  std::string c = GenerateJson(2, 5000);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(ViewingWorkloadTest, MemberRanksAreABijection) {
  for (uint64_t n : std::vector<uint64_t>{1, 2, 10, 997, 1000, 4096}) {
    WorkloadOptions o;
    o.members = n;
    ViewingWorkload w(o);
    std::set<uint64_t> seen;
    for (uint64_t r = 1; r <= n; ++r) {
      uint64_t m = w.MemberForRank(r);
      ASSERT_GE(m, 1u);
      ASSERT_LE(m, n);
      seen.insert(m);
    }
    EXPECT_EQ(seen.size(), n);
  }
}

TEST(ViewingWorkloadTest, MembersAreSkewed) {
  WorkloadOptions o;
  ViewingWorkload w(o);
  std::vector<ViewingEvent> events;
  w.NextEvents(50'000, kNow, &events);
  std::map<uint64_t, uint64_t> per_member;
  for (const auto& e : events) ++per_member[e.member];
  uint64_t hottest = 0;
  for (auto [m, n] : per_member) hottest = std::max(hottest, n);
  EXPECT_EQ(per_member.count(w.MemberForRank(1)), 1u);
  EXPECT_EQ(per_member[w.MemberForRank(1)], hottest);
  EXPECT_GT(hottest, 5000u);            // ~13.7% of events
  EXPECT_GT(per_member.size(), 5000u);  // and a long tail of distinct members
}

TEST(ViewingWorkloadTest, EveryEventIsValidJsonWithAllFields) {
  WorkloadOptions o;
  ViewingWorkload w(o);
  std::vector<ViewingEvent> events;
  w.NextEvents(20'000, kNow, &events);
  std::string json;
  AppendBatchJson(events, &json);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS);
  simdjson::dom::array array;
  ASSERT_EQ(doc.get_array().get(array), simdjson::SUCCESS);
  ASSERT_EQ(array.size(), events.size());

  const std::set<std::string> kFields = {"member",       "kind",       "title",        "session",
                                         "started_at",   "event_time", "position_ms",  "watched_ms",
                                         "device",       "country",    "content_lang", "audio_lang",
                                         "subtitle_lang"};
  size_t previews = 0, short_previews = 0, updates = 0, empty_subtitles = 0;
  for (simdjson::dom::element e : array) {
    simdjson::dom::object obj;
    ASSERT_EQ(e.get_object().get(obj), simdjson::SUCCESS);
    std::set<std::string> keys;
    for (auto field : obj) keys.insert(std::string(field.key));
    ASSERT_EQ(keys, kFields);

    uint64_t member, title;
    int64_t started_at, event_time, position_ms, watched_ms;
    std::string_view kind, session;
    ASSERT_EQ(obj["member"].get_uint64().get(member), simdjson::SUCCESS);
    ASSERT_EQ(obj["title"].get_uint64().get(title), simdjson::SUCCESS);
    ASSERT_EQ(obj["started_at"].get_int64().get(started_at), simdjson::SUCCESS);
    ASSERT_EQ(obj["event_time"].get_int64().get(event_time), simdjson::SUCCESS);
    ASSERT_EQ(obj["position_ms"].get_int64().get(position_ms), simdjson::SUCCESS);
    ASSERT_EQ(obj["watched_ms"].get_int64().get(watched_ms), simdjson::SUCCESS);
    ASSERT_EQ(obj["kind"].get_string().get(kind), simdjson::SUCCESS);
    ASSERT_EQ(obj["session"].get_string().get(session), simdjson::SUCCESS);
    EXPECT_GE(member, 1u);
    EXPECT_LE(member, o.members);
    EXPECT_TRUE(kind == "play" || kind == "preview") << kind;
    EXPECT_FALSE(session.empty());
    EXPECT_LE(session.size(), 64u);
    EXPECT_TRUE(std::all_of(session.begin(), session.end(), ::isdigit)) << session;
    EXPECT_GT(started_at, kNow - 50LL * 24 * 3600 * 1000);
    EXPECT_GE(event_time, started_at + watched_ms);
    EXPECT_LE(event_time, kNow + 60'000);  // only the hottest member may drift, by ms
    EXPECT_GE(position_ms, watched_ms);
    EXPECT_GE(watched_ms, 0);
    for (const char* f : {"device", "country", "content_lang", "audio_lang", "subtitle_lang"}) {
      std::string_view v;
      ASSERT_EQ(obj[f].get_string().get(v), simdjson::SUCCESS) << f;
      EXPECT_LE(v.size(), 16u) << f;
      if (std::string_view(f) != "subtitle_lang") {
        EXPECT_FALSE(v.empty()) << f;
      } else if (v.empty()) {
        ++empty_subtitles;
      }
    }
    if (kind == "preview") {
      ++previews;
      short_previews += watched_ms < 5000;
    }
  }
  for (const auto& e : events) updates += e.update;
  double n = static_cast<double>(events.size());
  EXPECT_NEAR(updates / n, 0.30, 0.03);
  EXPECT_NEAR(previews / n, 0.15, 0.03);
  EXPECT_GT(short_previews, previews / 4);  // some fall under a short-preview threshold
  EXPECT_GT(empty_subtitles, 0u);
  EXPECT_LT(empty_subtitles, events.size());
}

TEST(ViewingWorkloadTest, PlaybacksMoveForwardAndUpdatesRepeatTheIdentity) {
  WorkloadOptions o;
  o.members = 100;
  ViewingWorkload w(o);
  std::vector<ViewingEvent> events;
  Millis now = kNow;
  for (int i = 0; i < 50; ++i, now += 60'000) w.NextEvents(100, now, &events);
  struct Last {
    ViewingEvent e;
    bool any = false;
  };
  std::map<uint64_t, Last> last;
  for (const auto& e : events) {
    Last& l = last[e.member];
    if (l.any) {
      if (e.update) {
        EXPECT_EQ(e.started_at, l.e.started_at);
        EXPECT_EQ(e.session, l.e.session);
        EXPECT_EQ(e.preview, l.e.preview);
        EXPECT_EQ(e.title, l.e.title);
        EXPECT_GT(e.event_time, l.e.event_time);
        EXPECT_GE(e.watched_ms, l.e.watched_ms);
      } else {
        EXPECT_GT(e.started_at, l.e.started_at);
        EXPECT_EQ(e.session, l.e.session + 1);
      }
    } else {
      EXPECT_FALSE(e.update);
    }
    l.e = e;
    l.any = true;
  }
}

TEST(ViewingWorkloadTest, PreloadGivesLongHistories) {
  WorkloadOptions o;
  ViewingWorkload w(o);
  w.PlanPreload(3, kNow);
  std::map<uint64_t, uint64_t> plays;
  std::map<uint64_t, Millis> first, latest;
  std::vector<ViewingEvent> batch;
  while (true) {
    batch.clear();
    if (!w.NextPreloadEvents(500, kNow, &batch)) break;
    for (const auto& e : batch) {
      EXPECT_FALSE(e.update);
      if (!e.preview) ++plays[e.member];
      if (!first.count(e.member)) first[e.member] = e.started_at;
      latest[e.member] = e.started_at;
      EXPECT_LE(e.event_time, kNow);
    }
  }
  ASSERT_EQ(plays.size(), 3u);
  EXPECT_EQ(w.preload_plays_planned(),
            plays[w.MemberForRank(1)] + plays[w.MemberForRank(2)] + plays[w.MemberForRank(3)]);
  for (auto [member, n] : plays) {
    EXPECT_GE(n, 10'000u);
    EXPECT_LE(n, 12'000u);
    EXPECT_GT(latest[member] - first[member], 365LL * 24 * 3600 * 1000);  // years of history
  }
}

TEST(LatencyHistogramTest, BucketsRoundTrip) {
  for (uint64_t v :
       std::vector<uint64_t>{0, 1, 127, 128, 129, 1000, 123456789, uint64_t{1} << 40, UINT64_MAX}) {
    size_t i = LatencyHistogram::BucketIndex(v);
    EXPECT_GE(LatencyHistogram::BucketUpperBound(i), v);
    if (i > 0) {
      EXPECT_LT(LatencyHistogram::BucketUpperBound(i - 1), v);
    }
  }
  for (uint64_t v = 0; v < 128; ++v) {
    EXPECT_EQ(LatencyHistogram::BucketUpperBound(LatencyHistogram::BucketIndex(v)), v);
  }
}

TEST(LatencyHistogramTest, PercentilesMatchSortedValuesWithinPrecision) {
  LatencyHistogram a, b;
  std::vector<uint64_t> values;
  Rng rng(3);
  for (int i = 0; i < 100'000; ++i) {
    // Log-normal-ish latencies from ~50 us to ~1 s.
    auto v = static_cast<uint64_t>(std::exp(4 + 10 * rng.Uniform() * rng.Uniform()));
    values.push_back(v);
    (i % 2 ? a : b).Record(v);
  }
  a.Merge(b);
  std::sort(values.begin(), values.end());
  EXPECT_EQ(a.count(), values.size());
  EXPECT_EQ(a.min(), values.front());
  EXPECT_EQ(a.max(), values.back());
  for (double p : {0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    size_t rank =
        std::max<size_t>(1, static_cast<size_t>(std::ceil(p / 100.0 * values.size() - 1e-9)));
    uint64_t exact = values[rank - 1];
    uint64_t got = a.Percentile(p);
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(static_cast<double>(got), exact * (1.0 + 1.0 / 64) + 1) << "p" << p;
  }
}

TEST(LatencyHistogramTest, SmallAndEmpty) {
  LatencyHistogram h;
  EXPECT_EQ(h.Percentile(99), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(99.9), 100u);
  EXPECT_EQ(h.Percentile(100), 100u);
  EXPECT_EQ(h.Percentile(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(BenchInternalTest, ScrapesResponses) {
  using namespace internal;
  EXPECT_EQ(JsonUint(R"({"accepted": 498,"dropped":2,"rejected":[]})", "accepted"), 498u);
  EXPECT_EQ(JsonUint(R"({"accepted":498,"dropped":2})", "dropped"), 2u);
  EXPECT_EQ(JsonUint(R"({"accepted":498})", "dropped"), std::nullopt);
  EXPECT_EQ(NextCursor(R"({"records":[],"next_cursor":null})"), std::nullopt);
  EXPECT_EQ(NextCursor(R"({"records":[{"session":"1"}],"next_cursor":"abc\/d="})"), "abc/d=");
  EXPECT_EQ(NextCursor(R"({"records":[]})"), std::nullopt);
  EXPECT_EQ(CountOccurrences(R"([{"session":"1"},{"session":"2"}])", "\"session\""), 2u);
  EXPECT_TRUE(KeepMetricLine("strata_table_disk_bytes{table=\"play_live\"} 123"));
  EXPECT_TRUE(KeepMetricLine("strata_process_peak_rss_bytes 1e+06"));
  EXPECT_TRUE(KeepMetricLine("process_cpu_seconds_total 3"));
  EXPECT_FALSE(KeepMetricLine("# HELP strata_table_disk_bytes x"));
  EXPECT_FALSE(KeepMetricLine("strata_http_requests_total 5"));
}

TEST(RunViewingBenchTest, RejectsBadOptions) {
  std::ostringstream out;
  ViewingBenchOptions o;
  o.mode = "nope";
  EXPECT_TRUE(absl::IsInvalidArgument(RunViewingBench(o, out).status()));
  o = {};
  o.connections = 1;  // mix needs a writer and a reader
  EXPECT_TRUE(absl::IsInvalidArgument(RunViewingBench(o, out).status()));
  o = {};
  o.server = "https://x";
  EXPECT_TRUE(absl::IsInvalidArgument(RunViewingBench(o, out).status()));
}

// A stand-in for the Strata server that answers the bench's requests in the API's shapes.
class FakeServer {
 public:
  FakeServer() {
    http::ServerOptions options;
    options.port = 0;
    server_ = std::make_unique<http::Server>(options,
                                             [this](const http::Request& r) { return Handle(r); });
    EXPECT_TRUE(server_->Start().ok());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> cursor_pages{0};

 private:
  http::Response Handle(const http::Request& r) {
    http::Response out;
    if (r.path == "/healthz") {
      out.body = "{\"ok\":true}";
    } else if (r.path == "/v1/viewing/events" && r.method == "POST") {
      uint64_t n = internal::CountOccurrences(r.body, "\"member\"");
      events += n;
      out.body = "{\"accepted\":" + std::to_string(n - n / 10) +
                 ",\"dropped\":" + std::to_string(n / 10) + ",\"rejected\":[]}";
    } else if (r.path.find("/viewing") != std::string::npos && r.method == "GET") {
      bool paged = http::QueryParam(r.query, "cursor").has_value();
      cursor_pages += paged;
      std::string records = "[{\"session\":\"1\"},{\"session\":\"2\"}]";
      out.body = "{\"records\":" + records +
                 ",\"next_cursor\":" + (paged ? std::string("null") : std::string("\"c/1\"")) + "}";
    } else if (r.path == "/metrics") {
      out.content_type = "text/plain";
      out.body =
          "# HELP strata_table_disk_bytes d\n"
          "strata_table_disk_bytes{table=\"play_live\"} 4000\n"
          "strata_table_records{table=\"play_live\"} 100\n"
          "strata_process_peak_rss_bytes 123456\n"
          "strata_http_requests_total 1\n";
    } else {
      out.status = 404;
      out.body = http::JsonErrorBody("not_found", r.path);
    }
    return out;
  }

  std::unique_ptr<http::Server> server_;
};

// The shape GET /v1/admin/viewing/tables answers with (api.cc), nested row kinds included.
TEST(ParseTableReportTest, ReadsTablesAndTheirRowKinds) {
  const std::string body =
      R"({"tables":[{"table":"plays_past_compressed","tier":"past","members":2,"records":100,)"
      R"("disk_bytes":1300,"bytes_per_record":13,"rows":{"meta":{"rows":2,"key_bytes":18,)"
      R"("value_bytes":82},"segment":{"rows":3,"key_bytes":51,"value_bytes":1049},)"
      R"("state":{"rows":2,"key_bytes":18,"value_bytes":30}}},)"
      R"({"table":"previews_recent_compressed","tier":"recent","members":0,"records":0,)"
      R"("disk_bytes":2048,"bytes_per_record":null,"rows":{}},)"
      R"({"table":"odd \"name\" {x}","records":5,"disk_bytes":50,"rows":{"live":{"rows":5,)"
      R"("key_bytes":40,"value_bytes":160}}}]})";
  auto tables = internal::ParseTableReport(body);
  ASSERT_EQ(tables.size(), 3u);
  EXPECT_EQ(tables[0].table, "plays_past_compressed");
  EXPECT_EQ(tables[0].records, 100u);
  EXPECT_EQ(tables[0].disk_bytes, 1300u);
  EXPECT_EQ(tables[0].row_bytes,
            (std::map<std::string, uint64_t>{{"meta", 100}, {"segment", 1100}, {"state", 48}}));
  EXPECT_EQ(tables[1].table, "previews_recent_compressed");
  EXPECT_EQ(tables[1].records, 0u);
  EXPECT_EQ(tables[1].disk_bytes, 2048u);
  EXPECT_TRUE(tables[1].row_bytes.empty());
  EXPECT_EQ(tables[2].records, 5u);
  EXPECT_EQ(tables[2].row_bytes, (std::map<std::string, uint64_t>{{"live", 200}}));
  // Truncated or unrelated answers give what could be read, never a crash.
  for (size_t cut = 0; cut < body.size(); cut += 7) {
    EXPECT_LE(internal::ParseTableReport(body.substr(0, cut)).size(), 3u);
  }
  EXPECT_TRUE(internal::ParseTableReport(R"({"error":"not_found"})").empty());
}

TEST(ParseTableReportTest, ReadsTheWholeDataDirectoryFigure) {
  EXPECT_DOUBLE_EQ(internal::ParseDataDirBytesPerRecord(
                       R"({"records":10,"store":{"data_dir_bytes":205},"data_dir_bytes_per_record":20.5,"tables":[]})"),
                   20.5);
  EXPECT_LT(internal::ParseDataDirBytesPerRecord(R"({"data_dir_bytes_per_record":null})"), 0);
  EXPECT_LT(internal::ParseDataDirBytesPerRecord(R"({"tables":[]})"), 0);
  EXPECT_LT(internal::ParseDataDirBytesPerRecord(R"({"data_dir_bytes_per_record":)"), 0);
}

TEST(RunViewingBenchTest, RunsAgainstAFakeServer) {
  FakeServer fake;
  ViewingBenchOptions o;
  o.server = fake.url();
  o.members = 1000;
  o.connections = 4;
  o.duration_s = 1.0;
  o.target_events_per_s = 9000;  // => 1000 reads/s
  o.preload_heavy_members = 1;
  std::ostringstream out;
  auto report = RunViewingBench(o, out);
  ASSERT_TRUE(report.ok()) << report.status();
  SCOPED_TRACE(out.str());
  EXPECT_TRUE(report->open_loop);
  EXPECT_EQ(report->write_connections, 2);
  EXPECT_EQ(report->read_connections, 2);
  EXPECT_GE(report->preload_events, 10'000u);
  EXPECT_EQ(report->preload_batch.errors, 0u);
  EXPECT_GT(report->ingest_batch.count, 0u);
  EXPECT_EQ(report->ingest_batch.errors, 0u);
  EXPECT_EQ(report->events_sent, report->ingest_batch.count * 500);
  EXPECT_EQ(report->events_accepted + report->events_dropped, report->events_sent);
  EXPECT_GT(report->recent_read.count, 0u);
  EXPECT_EQ(report->recent_read.errors, 0u);
  EXPECT_DOUBLE_EQ(report->records_per_recent_read, 2.0);
  EXPECT_EQ(report->history_page.errors, 0u);
  // Every full-history read follows the cursor once (the fake's second page ends it).
  EXPECT_EQ(report->history_page.count, 2 * report->history_reads);
  EXPECT_EQ(fake.cursor_pages.load(), report->history_reads);
  EXPECT_EQ(fake.events.load(), report->preload_events + report->events_sent);
  ASSERT_EQ(report->server_metrics.size(), 3u);
  EXPECT_EQ(report->server_metrics[2], "strata_process_peak_rss_bytes 123456");
  ASSERT_EQ(report->bytes_per_record.count("play_live"), 1u);
  EXPECT_DOUBLE_EQ(report->bytes_per_record.at("play_live"), 40.0);
  EXPECT_NE(out.str().find("ingest batch (POST)"), std::string::npos);
  EXPECT_NE(out.str().find("no coordinated omission"), std::string::npos);
}

}  // namespace
}  // namespace strata::bench
