// strata_library_bench: Strata's own JSON writer and metrics registry next to the libraries a
// reviewer would reach for instead (RapidJSON's Writer, prometheus-cpp), on the work the
// server does with them: a page of 50 viewing records written as JSON, a counter and a
// latency histogram updated per request from one and two threads, and /metrics rendered
// for a registry of the server's size. docs/architecture.md ("Hand-written or library")
// reads the figures; run:
//
//   build/bench/strata_library_bench --benchmark_repetitions=3
//
// Google Benchmark (Debian libbenchmark-dev) times each case; this is a measurement, not a
// test: nothing here asserts a speed.
#include <benchmark/benchmark.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <vector>

#include "strata/base/metrics.h"
#include "strata/server/json_writer.h"

namespace {

// One viewing record as the history API returns it (the field set of server/viewing_json.cc).
struct Record {
  uint64_t member;
  int64_t started_at, event_time, position_ms, watched_ms;
  uint64_t session, title;
  std::string device, country, content_lang, audio_lang, subtitle_lang;
};

std::vector<Record> Page() {
  std::vector<Record> page;
  for (int i = 0; i < 50; ++i) {
    page.push_back(Record{123456789, 1780000000000 + i * 3'600'000, 1780000060000 + i * 3'600'000,
                          1'234'567 + i, 2'345'678 + i, 987654321u + i, 40'000u + i, "tv", "US",
                          "en", "en", i % 3 == 0 ? "fr" : ""});
  }
  return page;
}

void StrataJsonPage(benchmark::State& state) {
  const std::vector<Record> page = Page();
  size_t bytes = 0;
  for (auto _ : state) {
    strata::server::JsonWriter w;
    w.Reserve(page.size() * 320);
    w.BeginObject().PlainKey("records").BeginArray();
    for (const Record& r : page) {
      w.BeginObject();
      w.PlainKey("member").Uint(r.member).PlainKey("kind").String("play");
      w.PlainKey("title").Uint(r.title).PlainKey("session").Uint(r.session);
      w.PlainKey("started_at").Int(r.started_at).PlainKey("event_time").Int(r.event_time);
      w.PlainKey("position_ms").Int(r.position_ms).PlainKey("watched_ms").Int(r.watched_ms);
      w.PlainKey("device").String(r.device).PlainKey("country").String(r.country);
      w.PlainKey("content_lang").String(r.content_lang);
      w.PlainKey("audio_lang").String(r.audio_lang);
      w.PlainKey("subtitle_lang").String(r.subtitle_lang);
      w.EndObject();
    }
    w.EndArray().EndObject();
    std::string out = w.Take();
    bytes += out.size();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(StrataJsonPage);

// RapidJSON's Writer; with kWriteValidateEncodingFlag it checks UTF-8 as Strata's does, but it
// then fails the whole document on a bad byte (Strata writes U+FFFD and goes on).
template <unsigned kFlags>
void RapidJsonPage(benchmark::State& state) {
  const std::vector<Record> page = Page();
  size_t bytes = 0;
  for (auto _ : state) {
    rapidjson::StringBuffer buffer(nullptr, page.size() * 320);
    rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                      rapidjson::CrtAllocator, kFlags>
        w(buffer);
    w.StartObject();
    w.Key("records");
    w.StartArray();
    auto str = [&](const std::string& s) {
      w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    };
    for (const Record& r : page) {
      w.StartObject();
      w.Key("member"), w.Uint64(r.member), w.Key("kind"), w.String("play");
      w.Key("title"), w.Uint64(r.title), w.Key("session"), w.Uint64(r.session);
      w.Key("started_at"), w.Int64(r.started_at), w.Key("event_time"), w.Int64(r.event_time);
      w.Key("position_ms"), w.Int64(r.position_ms), w.Key("watched_ms"), w.Int64(r.watched_ms);
      w.Key("device"), str(r.device), w.Key("country"), str(r.country);
      w.Key("content_lang"), str(r.content_lang);
      w.Key("audio_lang"), str(r.audio_lang);
      w.Key("subtitle_lang"), str(r.subtitle_lang);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    // The copy into a std::string the HTTP layer sends (Strata's writer builds one directly).
    std::string out(buffer.GetString(), buffer.GetSize());
    bytes += out.size();
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(RapidJsonPage<rapidjson::kWriteDefaultFlags>)->Name("RapidJsonPage");
BENCHMARK(RapidJsonPage<rapidjson::kWriteValidateEncodingFlag>)->Name("RapidJsonPageValidated");

// ---- Metrics: the per-request updates (a route's counter and latency histogram) ----------

strata::MetricsRegistry* StrataRegistry() {
  static auto* registry = new strata::MetricsRegistry();
  return registry;
}

void StrataCounterInc(benchmark::State& state) {
  static strata::Counter* c =
      StrataRegistry()->GetCounter("bench_requests_total", "requests", "route=\"/x\"");
  for (auto _ : state) c->Inc();
}
BENCHMARK(StrataCounterInc)->Threads(1)->Threads(2);

void StrataHistogramObserve(benchmark::State& state) {
  static strata::Histogram* h =
      StrataRegistry()->GetHistogram("bench_seconds", "latency", "route=\"/x\"");
  double v = 0.0001;
  for (auto _ : state) {
    h->Observe(v);
    v = v < 0.05 ? v * 1.7 : 0.0001;
  }
}
BENCHMARK(StrataHistogramObserve)->Threads(1)->Threads(2);

prometheus::Registry& PromRegistry() {
  static auto* registry = new prometheus::Registry();
  return *registry;
}

// The bucket bounds Strata's histograms use, so both do the same search.
prometheus::Histogram::BucketBoundaries Bounds() {
  return prometheus::Histogram::BucketBoundaries(strata::Histogram::kBounds.begin(),
                                                 strata::Histogram::kBounds.end());
}

void PromCounterInc(benchmark::State& state) {
  static prometheus::Counter& c = prometheus::BuildCounter()
                                      .Name("bench_requests_total")
                                      .Help("requests")
                                      .Register(PromRegistry())
                                      .Add({{"route", "/x"}});
  for (auto _ : state) c.Increment();
}
BENCHMARK(PromCounterInc)->Threads(1)->Threads(2);

void PromHistogramObserve(benchmark::State& state) {
  static prometheus::Histogram& h = prometheus::BuildHistogram()
                                        .Name("bench_seconds")
                                        .Help("latency")
                                        .Register(PromRegistry())
                                        .Add({{"route", "/x"}}, Bounds());
  double v = 0.0001;
  for (auto _ : state) {
    h.Observe(v);
    v = v < 0.05 ? v * 1.7 : 0.0001;
  }
}
BENCHMARK(PromHistogramObserve)->Threads(1)->Threads(2);

// ---- /metrics: 40 routes x 6 status codes of counters and 40 histograms -------------------

constexpr int kRoutes = 40;
const int kCodes[] = {200, 201, 204, 400, 404, 500};

void StrataRender(benchmark::State& state) {
  strata::MetricsRegistry registry;
  for (int r = 0; r < kRoutes; ++r) {
    const std::string route = "route=\"/v1/route" + std::to_string(r) + "\"";
    for (int code : kCodes) {
      registry
          .GetCounter("strata_http_requests_total", "requests",
                      route + ",code=\"" + std::to_string(code) + "\"")
          ->Inc(static_cast<uint64_t>(r * code));
    }
    registry.GetHistogram("strata_http_request_seconds", "latency", route)->Observe(0.001 * r);
  }
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = registry.RenderPrometheus();
    bytes += text.size();
    benchmark::DoNotOptimize(text);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(StrataRender);

void PromRender(benchmark::State& state) {
  prometheus::Registry registry;
  auto& requests = prometheus::BuildCounter()
                       .Name("strata_http_requests_total")
                       .Help("requests")
                       .Register(registry);
  auto& latency = prometheus::BuildHistogram()
                      .Name("strata_http_request_seconds")
                      .Help("latency")
                      .Register(registry);
  for (int r = 0; r < kRoutes; ++r) {
    const std::string route = "/v1/route" + std::to_string(r);
    for (int code : kCodes) {
      requests.Add({{"route", route}, {"code", std::to_string(code)}}).Increment(r * code);
    }
    latency.Add({{"route", route}}, Bounds()).Observe(0.001 * r);
  }
  const prometheus::TextSerializer serializer;
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = serializer.Serialize(registry.Collect());
    bytes += text.size();
    benchmark::DoNotOptimize(text);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(PromRender);

}  // namespace

BENCHMARK_MAIN();
