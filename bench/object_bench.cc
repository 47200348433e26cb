#include "bench/object_bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "bench/latency_histogram.h"
#include "bench/load_driver.h"
#include "strata/http/http_client.h"

namespace strata::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Stats {
  LatencyHistogram micros;
  uint64_t errors = 0;
  uint64_t bytes = 0;
};

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

// Runs `count` operations over `threads` connections; op(client, i, stats) performs op i.
template <typename Op>
ObjectOpReport RunPhase(const std::string& name, const http::Endpoint& ep, int threads, int count,
                        int timeout_ms, Op op) {
  std::atomic<int> next{0};
  std::vector<Stats> stats(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  const auto start = SteadyClock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      http::Client client = NewClient(ep.host, ep.port, timeout_ms);
      for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
        op(client, i, stats[static_cast<size_t>(t)]);
      }
    });
  }
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  Stats total;
  for (const Stats& s : stats) {
    total.micros.Merge(s.micros);
    total.errors += s.errors;
    total.bytes += s.bytes;
  }
  ObjectOpReport r;
  r.name = name;
  r.count = total.micros.count();
  r.errors = total.errors;
  r.seconds = seconds;
  r.per_second = seconds > 0 ? static_cast<double>(r.count) / seconds : 0;
  r.mb_per_second = seconds > 0 ? static_cast<double>(total.bytes) / (1 << 20) / seconds : 0;
  r.p50_ms = total.micros.Percentile(50) / 1000.0;
  r.p99_ms = total.micros.Percentile(99) / 1000.0;
  r.p999_ms = total.micros.Percentile(99.9) / 1000.0;
  r.max_ms = total.micros.max() / 1000.0;
  return r;
}

// One timed request; counts errors (non-2xx or transport) and object bytes moved.
void Timed(http::Client& client, Stats& s, std::string_view method, const std::string& target,
           std::string_view body, uint64_t expect_bytes) {
  const auto t0 = SteadyClock::now();
  auto r = client.Request(method, target, body, "application/octet-stream");
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0);
  s.micros.Record(static_cast<uint64_t>(us.count()));
  if (!r.ok() || r->status < 200 || r->status >= 300) {
    ++s.errors;
    return;
  }
  s.bytes += method == "GET" ? r->body.size() : expect_bytes;
}

void PrintRow(const ObjectOpReport& r, std::ostream& out) {
  char line[220];
  std::snprintf(line, sizeof(line),
                "  %-22s %8llu %8.2f %9.1f %9.1f %9.2f %9.2f %9.2f %9.2f %7llu\n", r.name.c_str(),
                static_cast<unsigned long long>(r.count), r.seconds, r.per_second, r.mb_per_second,
                r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms, static_cast<unsigned long long>(r.errors));
  out << line;
}

}  // namespace

namespace internal {

void ParseDeleteLatency(std::string_view metrics, uint64_t* within_1ms, uint64_t* total) {
  *within_1ms = 0;
  *total = 0;
  constexpr std::string_view kRoute =
      "route=\"/v1/buckets/{bucket}/objects/{key}\",method=\"DELETE\"";
  size_t pos = 0;
  while (pos < metrics.size()) {
    size_t end = metrics.find('\n', pos);
    if (end == std::string_view::npos) end = metrics.size();
    std::string_view line = metrics.substr(pos, end - pos);
    pos = end + 1;
    if (line.find(kRoute) == std::string_view::npos) continue;
    size_t space = line.rfind(' ');
    if (space == std::string_view::npos) continue;
    uint64_t v = std::strtoull(std::string(line.substr(space + 1)).c_str(), nullptr, 10);
    if (line.rfind("strata_http_request_seconds_bucket{", 0) == 0 &&
        line.find("le=\"0.001\"") != std::string_view::npos) {
      *within_1ms += v;
    } else if (line.rfind("strata_http_request_seconds_count{", 0) == 0) {
      *total += v;
    }
  }
}

}  // namespace internal

absl::StatusOr<ObjectBenchReport> RunObjectBench(const ObjectBenchOptions& o, std::ostream& out) {
  if (o.connections < 1) return absl::InvalidArgumentError("connections: must be >= 1");
  if (o.load_connections < 0) return absl::InvalidArgumentError("load_connections: must be >= 0");
  if (o.small_count < 1) return absl::InvalidArgumentError("small_count: must be >= 1");
  if (o.large_count < 0) return absl::InvalidArgumentError("large_count: must be >= 0");
  auto ep = http::ParseUrl(o.server);
  if (!ep.ok()) return ep.status();
  http::Client admin = NewClient(ep->host, ep->port, o.timeout_ms);
  auto health = admin.Request("GET", "/healthz");
  if (!health.ok())
    return absl::UnavailableError("server: " + std::string(health.status().message()));
  const std::string bucket =
      "bench-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
  auto created = admin.Request("PUT", "/v1/buckets/" + bucket,
                               R"({"ttl":"7d","grace":"1d","storage_class":"bench"})");
  if (!created.ok() || created->status != 200) {
    return absl::UnavailableError("bucket: could not create " + bucket);
  }
  const std::string base = "/v1/buckets/" + bucket + "/objects/";
  const std::string small = RandomBytes(o.small_bytes, 1);
  const std::string large = RandomBytes(o.large_bytes, 2);
  auto small_key = [&](int i) { return base + "small/" + std::to_string(i); };
  auto large_key = [&](int i) { return base + "large/" + std::to_string(i); };

  ObjectBenchReport report;
  out << "strata bench objects: bucket " << bucket << ", " << o.connections << " connections\n";
  report.ops.push_back(RunPhase("put-small", *ep, o.connections, o.small_count, o.timeout_ms,
                                [&](http::Client& c, int i, Stats& s) {
                                  Timed(c, s, "PUT", small_key(i), small, small.size());
                                }));
  report.ops.push_back(
      RunPhase("get-small", *ep, o.connections, o.small_count, o.timeout_ms,
               [&](http::Client& c, int i, Stats& s) { Timed(c, s, "GET", small_key(i), "", 0); }));
  if (o.large_count > 0) {
    report.ops.push_back(RunPhase("put-large", *ep, o.connections, o.large_count, o.timeout_ms,
                                  [&](http::Client& c, int i, Stats& s) {
                                    Timed(c, s, "PUT", large_key(i), large, large.size());
                                  }));
    report.ops.push_back(RunPhase(
        "get-large", *ep, o.connections, o.large_count, o.timeout_ms,
        [&](http::Client& c, int i, Stats& s) { Timed(c, s, "GET", large_key(i), "", 0); }));
  }

  // Deletes while other connections keep writing and reading. The server-side figures are
  // the difference of its DELETE histogram across this phase.
  uint64_t within_before = 0, total_before = 0;
  if (auto m = admin.Request("GET", "/metrics"); m.ok()) {
    internal::ParseDeleteLatency(m->body, &within_before, &total_before);
  }
  std::atomic<bool> stop_load{false};
  std::vector<Stats> load_stats(static_cast<size_t>(o.load_connections));
  std::vector<std::thread> load;
  for (int t = 0; t < o.load_connections; ++t) {
    load.emplace_back([&, t] {
      http::Client c = NewClient(ep->host, ep->port, o.timeout_ms);
      for (int i = 0; !stop_load.load(std::memory_order_relaxed); ++i) {
        const std::string key = base + "load/" + std::to_string(t) + "/" + std::to_string(i % 500);
        Timed(c, load_stats[static_cast<size_t>(t)], "PUT", key, small, small.size());
        Timed(c, load_stats[static_cast<size_t>(t)], "GET", key, "", 0);
      }
    });
  }
  // Let the load get going (and its uploads reach the disk) before measuring deletes.
  if (o.load_connections > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
  ObjectOpReport deletes = RunPhase(
      "delete-under-load", *ep, o.connections, o.small_count, o.timeout_ms,
      [&](http::Client& c, int i, Stats& s) { Timed(c, s, "DELETE", small_key(i), "", 0); });
  stop_load.store(true);
  for (auto& t : load) t.join();
  report.ops.push_back(deletes);
  Stats load_total;
  for (const Stats& s : load_stats) {
    load_total.micros.Merge(s.micros);
    load_total.errors += s.errors;
  }

  auto metrics = admin.Request("GET", "/metrics");
  if (metrics.ok()) {
    internal::ParseDeleteLatency(metrics->body, &report.server_deletes_within_1ms,
                                 &report.server_deletes);
    report.server_deletes_within_1ms -= std::min(report.server_deletes_within_1ms, within_before);
    report.server_deletes -= std::min(report.server_deletes, total_before);
  }

  out << "\n  op                        count  seconds     ops/s     MiB/s   p50 ms    p99 ms"
         "   p99.9 ms    max ms  errors\n";
  for (const ObjectOpReport& r : report.ops) PrintRow(r, out);
  char line[200];
  std::snprintf(line, sizeof(line),
                "\n  background load during deletes: %llu requests (PUT+GET of %llu-byte "
                "objects), p99 %.2f ms, %llu errors\n",
                static_cast<unsigned long long>(load_total.micros.count()),
                static_cast<unsigned long long>(o.small_bytes),
                load_total.micros.Percentile(99) / 1000.0,
                static_cast<unsigned long long>(load_total.errors));
  out << line;
  if (report.server_deletes > 0) {
    std::snprintf(line, sizeof(line),
                  "  server side: %llu of %llu DELETEs (%.2f%%) answered within 1 ms "
                  "(server's own latency histogram, this run)\n",
                  static_cast<unsigned long long>(report.server_deletes_within_1ms),
                  static_cast<unsigned long long>(report.server_deletes),
                  100.0 * static_cast<double>(report.server_deletes_within_1ms) /
                      static_cast<double>(report.server_deletes));
    out << line;
  }
  return report;
}

}  // namespace strata::bench
