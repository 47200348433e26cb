#include "bench/gc_bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "bench/latency_histogram.h"
#include "bench/load_driver.h"
#include "strata/http/http_client.h"

namespace strata::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The integer value of "key": in a flat JSON object (the run record), or -1.
int64_t JsonInt(const std::string& body, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  size_t at = body.find(needle);
  if (at == std::string::npos) return -1;
  at += needle.size();
  if (body.compare(at, 4, "null") == 0) return -1;
  return std::strtoll(body.c_str() + at, nullptr, 10);
}

std::string Key(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "o/%09llu", static_cast<unsigned long long>(i));
  return buf;
}

bool Eligible(uint64_t i, double fraction) {
  return static_cast<double>(i % 1000) < fraction * 1000;
}

struct Online {
  LatencyHistogram get_us, put_us;
  uint64_t errors = 0;
  // Every request when `keep_samples`: when it started (wall clock, ms, as the server's run
  // record), its latency and kind, to split the sweep window into mark and sweep and to
  // print a timeline.
  struct Sample {
    int64_t wall_ms;
    uint32_t us;
    bool get;
  };
  bool keep_samples = false;
  std::vector<Sample> samples;
};

int64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// p99 (ms) of the kept samples of one kind started in [from_ms, to_ms); -1 if none.
double P99Between(const Online& o, bool get, int64_t from_ms, int64_t to_ms) {
  LatencyHistogram h;
  for (const Online::Sample& x : o.samples) {
    if (x.get == get && x.wall_ms >= from_ms && x.wall_ms < to_ms) h.Record(x.us);
  }
  return h.count() == 0 ? -1 : h.Percentile(99) / 1000.0;
}

// Paced GETs of live objects and PUTs of new keys at `rate` req/s until `stop`.
void OnlineLoad(const http::Endpoint& ep, const GcBenchOptions& o, const std::string& bucket,
                const std::string& put_bucket, std::atomic<bool>* stop, Online* out,
                uint64_t put_base) {
  http::Client client = NewClient(ep.host, ep.port, o.timeout_ms);
  const std::string body(o.object_bytes, 'p');
  const auto interval = std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(1.0 / o.online_rate));
  auto next = SteadyClock::now();
  uint64_t n = 0;
  while (!stop->load()) {
    std::this_thread::sleep_until(next);
    next += interval;
    const bool get = n % 2 == 0;
    std::string target;
    if (get) {
      // A live (not eligible) object.
      uint64_t i = (n * 7919) % o.objects;
      while (Eligible(i, o.eligible_fraction)) i = (i + 1) % o.objects;
      target = "/v1/buckets/" + bucket + "/objects/" + Key(i);
    } else {
      target = "/v1/buckets/" + put_bucket + "/objects/" + Key(put_base + n);
    }
    const auto t0 = SteadyClock::now();
    const int64_t wall = out->keep_samples ? WallMillis() : 0;
    auto r =
        client.Request(get ? "GET" : "PUT", target, get ? "" : body, "application/octet-stream");
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0).count();
    (get ? out->get_us : out->put_us).Record(static_cast<uint64_t>(us));
    if (out->keep_samples) {
      out->samples.push_back({wall, static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)), get});
    }
    if (!r.ok() || r->status != 200) ++out->errors;
    ++n;
  }
}

}  // namespace

absl::StatusOr<GcBenchReport> RunGcBench(const GcBenchOptions& o, std::ostream& out) {
  if (o.objects < 10) return absl::InvalidArgumentError("objects: must be >= 10");
  if (o.eligible_fraction < 0 || o.eligible_fraction > 1) {
    return absl::InvalidArgumentError("eligible_fraction: must be 0..1");
  }
  if (o.connections < 1) return absl::InvalidArgumentError("connections: must be >= 1");
  if (o.online_rate <= 0) return absl::InvalidArgumentError("online_rate: must be > 0");
  auto ep = http::ParseUrl(o.server);
  if (!ep.ok()) return ep.status();
  http::Client control = NewClient(ep->host, ep->port, o.timeout_ms);
  auto health = control.Request("GET", "/healthz", "", "");
  if (!health.ok()) {
    return absl::UnavailableError("server: " + std::string(health.status().message()));
  }
  const auto stamp = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
  const std::string bucket = "gcbench-" + stamp;
  const std::string put_bucket = "gcbench-online-" + stamp;
  for (const std::string& b : {bucket, put_bucket}) {
    auto r = control.Request("PUT", "/v1/buckets/" + b, "{\"grace\":\"1s\"}", "application/json");
    if (!r.ok() || r->status != 200) {
      return absl::UnavailableError("bucket: could not create " + b);
    }
  }
  GcBenchReport report;
  report.objects = o.objects;
  for (uint64_t i = 0; i < o.objects; ++i) report.eligible += Eligible(i, o.eligible_fraction);
  out << "strata bench gc: " << o.objects << " objects of " << o.object_bytes << " B, "
      << report.eligible << " eligible, bucket " << bucket << "\n";

  // 1. Load.
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> errors{0};
  const std::string body(o.object_bytes, 'x');
  auto t0 = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.connections; ++t) {
    threads.emplace_back([&] {
      http::Client client = NewClient(ep->host, ep->port, o.timeout_ms);
      for (uint64_t i = next.fetch_add(1); i < o.objects; i = next.fetch_add(1)) {
        std::vector<std::pair<std::string, std::string>> headers;
        if (Eligible(i, o.eligible_fraction)) headers.emplace_back("x-strata-ttl", "1s");
        auto r = client.Request("PUT", "/v1/buckets/" + bucket + "/objects/" + Key(i), body,
                                "application/octet-stream", headers);
        if (!r.ok() || r->status != 200) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  threads.clear();
  report.load_seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  report.errors = errors.load();
  out << "  load: " << report.load_seconds << " s ("
      << static_cast<uint64_t>(static_cast<double>(o.objects) / report.load_seconds) << " PUT/s), "
      << report.errors << " errors\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the TTLs pass

  // 2. Idle.
  Online idle;
  std::atomic<bool> stop{false};
  std::thread idle_load(OnlineLoad, *ep, o, bucket, put_bucket, &stop, &idle, 0);
  std::this_thread::sleep_for(std::chrono::duration<double>(o.idle_seconds));
  stop = true;
  idle_load.join();

  // 3. Sweep.
  Online sweep;
  sweep.keep_samples = true;
  stop = false;
  std::thread sweep_load(OnlineLoad, *ep, o, bucket, put_bucket, &stop, &sweep, 1u << 30);
  t0 = SteadyClock::now();
  auto started = control.Request("POST", "/v1/gc/runs", "{\"dry_run\":false}", "application/json");
  if (!started.ok() || started->status != 202) {
    stop = true;
    sweep_load.join();
    return absl::FailedPreconditionError(
        "gc run: could not start: " +
        (started.ok() ? started->body : std::string(started.status().message())));
  }
  const int64_t id = JsonInt(started->body, "id");
  std::string run;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    auto r = control.Request("GET", "/v1/gc/runs/" + std::to_string(id), "", "");
    if (r.ok() && r->status == 200) {
      run = r->body;
      if (run.find("\"state\":\"done\"") != std::string::npos ||
          run.find("\"state\":\"failed\"") != std::string::npos) {
        break;
      }
    }
    if (std::chrono::duration<double>(SteadyClock::now() - t0).count() > o.max_sweep_seconds) {
      break;
    }
  }
  report.run_seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  stop = true;
  sweep_load.join();

  // 4. After: the same load on the same (now larger, swept) store with no sweep running, the
  // control that separates what the sweep costs from what the store's state costs.
  Online after;
  if (o.after_seconds > 0) {
    stop = false;
    std::thread after_load(OnlineLoad, *ep, o, bucket, put_bucket, &stop, &after, 2u << 30);
    std::this_thread::sleep_for(std::chrono::duration<double>(o.after_seconds));
    stop = true;
    after_load.join();
  }
  report.deleted = static_cast<uint64_t>(std::max<int64_t>(0, JsonInt(run, "processed")));
  const int64_t started_at = JsonInt(run, "started_at");
  const int64_t marked_at = JsonInt(run, "marked_at");
  const int64_t finished_at = JsonInt(run, "finished_at");
  if (marked_at > 0) report.mark_seconds = (marked_at - started_at) / 1000.0;
  if (finished_at > 0) report.sweep_seconds = (finished_at - marked_at) / 1000.0;
  if (marked_at > 0 && finished_at > 0) {
    report.mark_get_p99_ms = P99Between(sweep, true, started_at, marked_at);
    report.mark_put_p99_ms = P99Between(sweep, false, started_at, marked_at);
    report.sweep_only_get_p99_ms = P99Between(sweep, true, marked_at, finished_at + 1);
    report.sweep_only_put_p99_ms = P99Between(sweep, false, marked_at, finished_at + 1);
  }
  report.idle_get_p99_ms = idle.get_us.Percentile(99) / 1000.0;
  report.idle_put_p99_ms = idle.put_us.Percentile(99) / 1000.0;
  report.sweep_get_p99_ms = sweep.get_us.Percentile(99) / 1000.0;
  report.sweep_put_p99_ms = sweep.put_us.Percentile(99) / 1000.0;
  report.after_get_p99_ms = after.get_us.Percentile(99) / 1000.0;
  report.after_put_p99_ms = after.put_us.Percentile(99) / 1000.0;
  report.idle_requests = idle.get_us.count() + idle.put_us.count();
  report.sweep_requests = sweep.get_us.count() + sweep.put_us.count();
  report.after_requests = after.get_us.count() + after.put_us.count();
  report.online_errors = idle.errors + sweep.errors + after.errors;

  char line[512];
  std::snprintf(line, sizeof(line),
                "  run %lld: %s\n  collected %llu of %llu eligible in %.1f s (mark %.1f s, "
                "sweep %.1f s, %.0f items/s)\n",
                static_cast<long long>(id),
                run.find("\"state\":\"done\"") != std::string::npos ? "done" : "NOT DONE",
                static_cast<unsigned long long>(report.deleted),
                static_cast<unsigned long long>(report.eligible), report.run_seconds,
                report.mark_seconds, report.sweep_seconds,
                report.sweep_seconds > 0 ? report.deleted / report.sweep_seconds : 0.0);
  out << line;
  std::snprintf(line, sizeof(line),
                "  online p99 (%.0f req/s): GET idle %.2f ms, during sweep %.2f ms (x%.2f); "
                "PUT idle %.2f ms, during sweep %.2f ms (x%.2f); %llu + %llu requests, %llu "
                "errors\n",
                o.online_rate, report.idle_get_p99_ms, report.sweep_get_p99_ms,
                report.idle_get_p99_ms > 0 ? report.sweep_get_p99_ms / report.idle_get_p99_ms : 0,
                report.idle_put_p99_ms, report.sweep_put_p99_ms,
                report.idle_put_p99_ms > 0 ? report.sweep_put_p99_ms / report.idle_put_p99_ms : 0,
                static_cast<unsigned long long>(report.idle_requests),
                static_cast<unsigned long long>(report.sweep_requests),
                static_cast<unsigned long long>(report.online_errors));
  out << line;
  if (marked_at > 0 && finished_at > 0) {
    std::snprintf(line, sizeof(line),
                  "  split by the run record: mark p99 GET %.2f / PUT %.2f ms; sweep alone p99 "
                  "GET %.2f ms (x%.2f idle) / PUT %.2f ms (x%.2f idle)\n",
                  report.mark_get_p99_ms, report.mark_put_p99_ms, report.sweep_only_get_p99_ms,
                  report.idle_get_p99_ms > 0
                      ? report.sweep_only_get_p99_ms / report.idle_get_p99_ms
                      : 0,
                  report.sweep_only_put_p99_ms,
                  report.idle_put_p99_ms > 0
                      ? report.sweep_only_put_p99_ms / report.idle_put_p99_ms
                      : 0);
    out << line;
    // PUT p99 per 10 s from the POST on: where in the run the slow requests were.
    out << "  PUT p99 per 10 s (ms):";
    if (!sweep.samples.empty()) {
      const int64_t first = sweep.samples.front().wall_ms;
      const int64_t last = sweep.samples.back().wall_ms;
      for (int64_t t = first; t <= last; t += 10'000) {
        std::snprintf(line, sizeof(line), " %.2f", P99Between(sweep, false, t, t + 10'000));
        out << line;
      }
    }
    out << "\n";
  }
  if (o.after_seconds > 0) {
    std::snprintf(line, sizeof(line),
                  "  online p99 after the sweep (no sweep running, %llu requests): GET %.2f ms "
                  "(x%.2f idle), PUT %.2f ms (x%.2f idle)\n",
                  static_cast<unsigned long long>(report.after_requests),
                  report.after_get_p99_ms,
                  report.idle_get_p99_ms > 0 ? report.after_get_p99_ms / report.idle_get_p99_ms : 0,
                  report.after_put_p99_ms,
                  report.idle_put_p99_ms > 0 ? report.after_put_p99_ms / report.idle_put_p99_ms : 0);
    out << line;
  }
  return report;
}

}  // namespace strata::bench
