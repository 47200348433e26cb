#include "bench/viewing_bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>

#include "bench/latency_histogram.h"
#include "bench/load_driver.h"
#include "bench/viewing_bench_internal.h"
#include "bench/viewing_workload.h"
#include "strata/base/thread_pool.h"
#include "strata/http/http_client.h"

namespace strata::bench {

// ---- Response scraping (no JSON library: the bench must stay light) -----------------------

namespace internal {

std::optional<uint64_t> JsonUint(std::string_view body, std::string_view key) {
  std::string needle = "\"" + std::string(key) + "\"";
  size_t at = body.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  size_t i = at + needle.size();
  while (i < body.size() && (body[i] == ' ' || body[i] == ':' || body[i] == '\t')) ++i;
  if (i >= body.size() || body[i] < '0' || body[i] > '9') return std::nullopt;
  uint64_t v = 0;
  while (i < body.size() && body[i] >= '0' && body[i] <= '9') v = v * 10 + (body[i++] - '0');
  return v;
}

namespace {

// The end of the JSON object or array that opens at body[open] (the index just past its
// closing bracket), skipping strings; npos if it does not close.
size_t MatchingClose(std::string_view body, size_t open) {
  int depth = 0;
  for (size_t i = open; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '"') {
      for (++i; i < body.size() && body[i] != '"'; ++i) {
        if (body[i] == '\\') ++i;
      }
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// The string value of the first `"key": "..."` in `object`, or "".
std::string JsonString(std::string_view object, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\"";
  size_t at = object.find(needle);
  if (at == std::string_view::npos) return "";
  size_t q1 = object.find('"', object.find(':', at + needle.size()) + 1);
  size_t q2 = q1 == std::string_view::npos ? q1 : object.find('"', q1 + 1);
  if (q2 == std::string_view::npos) return "";
  return std::string(object.substr(q1 + 1, q2 - q1 - 1));
}

// The "rows" object opening at object[open] -- {"kind": {"rows": n, "key_bytes": k,
// "value_bytes": v}, ...} -- as kind -> k + v. Stops at the first entry it cannot read.
std::map<std::string, uint64_t> RowKindBytes(std::string_view object, size_t open) {
  std::map<std::string, uint64_t> out;
  const size_t end = MatchingClose(object, open);
  if (end == std::string_view::npos) return out;
  for (size_t at = open + 1;;) {
    const size_t q1 = object.find('"', at);
    if (q1 == std::string_view::npos || q1 >= end) break;
    const size_t q2 = object.find('"', q1 + 1);
    const size_t kind_open = q2 == std::string_view::npos ? q2 : object.find('{', q2);
    const size_t kind_close =
        kind_open == std::string_view::npos ? kind_open : MatchingClose(object, kind_open);
    if (kind_close == std::string_view::npos || kind_close > end) break;
    std::string_view kind = object.substr(kind_open, kind_close - kind_open);
    out[std::string(object.substr(q1 + 1, q2 - q1 - 1))] =
        JsonUint(kind, "key_bytes").value_or(0) + JsonUint(kind, "value_bytes").value_or(0);
    at = kind_close;
  }
  return out;
}

}  // namespace

double ParseDataDirBytesPerRecord(std::string_view body) {
  constexpr std::string_view kKey = "\"data_dir_bytes_per_record\":";
  const size_t at = body.find(kKey);
  if (at == std::string_view::npos) return -1;
  const std::string value(body.substr(at + kKey.size(), 32));
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  return end == value.c_str() || v < 0 ? -1 : v;
}

std::vector<TableFigures> ParseTableReport(std::string_view body) {
  std::vector<TableFigures> out;
  size_t at = body.find("\"tables\"");
  if (at == std::string_view::npos) return out;
  size_t i = body.find('[', at);
  const size_t end = i == std::string_view::npos ? i : MatchingClose(body, i);
  if (end == std::string_view::npos) return out;
  for (i = body.find('{', i); i != std::string_view::npos && i < end; i = body.find('{', i)) {
    const size_t close = MatchingClose(body, i);
    if (close == std::string_view::npos || close > end) break;
    std::string_view object = body.substr(i, close - i);
    i = close;
    // The table's own fields come before its nested "rows" object.
    const size_t rows_at = object.find("\"rows\"");
    std::string_view own = object.substr(0, rows_at);
    TableFigures t;
    t.table = JsonString(own, "table");
    auto records = JsonUint(own, "records");
    auto disk = JsonUint(own, "disk_bytes");
    if (t.table.empty() || !records || !disk) continue;
    t.records = *records;
    t.disk_bytes = *disk;
    if (rows_at != std::string_view::npos) {
      const size_t rows_open = object.find('{', rows_at);
      if (rows_open != std::string_view::npos) t.row_bytes = RowKindBytes(object, rows_open);
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::optional<std::string> NextCursor(std::string_view body) {
  constexpr std::string_view kKey = "\"next_cursor\"";
  size_t at = body.rfind(kKey);  // it follows the records
  if (at == std::string_view::npos) return std::nullopt;
  size_t i = at + kKey.size();
  while (i < body.size() && (body[i] == ' ' || body[i] == ':' || body[i] == '\t')) ++i;
  if (i >= body.size() || body[i] != '"') return std::nullopt;  // null
  std::string out;
  for (++i; i < body.size() && body[i] != '"'; ++i) {
    if (body[i] == '\\' && i + 1 < body.size()) ++i;
    out.push_back(body[i]);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

size_t CountOccurrences(std::string_view body, std::string_view needle) {
  size_t n = 0;
  for (size_t at = body.find(needle); at != std::string_view::npos;
       at = body.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

bool KeepMetricLine(std::string_view line) {
  if (line.empty() || line.front() == '#') return false;
  for (std::string_view prefix :
       {"strata_table_", "strata_process_", "strata_store_bytes_per_record", "process_"}) {
    if (line.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

}  // namespace internal

namespace {

using internal::CountOccurrences;
using internal::JsonUint;
using internal::NextCursor;

constexpr std::string_view kEventsPath = "/v1/viewing/events";
constexpr int kRecentLimit = 50;
constexpr int kHistoryLimit = 1000;
constexpr int kMaxHistoryPages = 3;
constexpr double kHistoryReadShare = 0.10;

enum Op {
  kPreloadBatch = 0,
  kIngestBatch,
  kRecentRead,
  kHistoryPage,
  kMonthsRead,
  kSummaryRead,
  kNumOps
};
constexpr int kMonthsLimit = 100;
constexpr Millis kMonthsSpan = 90LL * 24 * 3600 * 1000;

struct ThreadStats {
  OpStats ops[kNumOps];
  uint64_t events_sent = 0;
  uint64_t events_accepted = 0;
  uint64_t events_dropped = 0;
  uint64_t events_rejected = 0;
  uint64_t preload_events = 0;
  uint64_t recent_reads = 0;
  uint64_t history_reads = 0;
  uint64_t other_reads = 0;  // months and summary reads
  uint64_t recent_records = 0;
  uint64_t history_records = 0;
  uint64_t unsent_batches = 0;
  uint64_t unsent_reads = 0;
  uint64_t late_reads = 0;

  void Merge(const ThreadStats& o) {
    for (int i = 0; i < kNumOps; ++i) ops[i].Merge(o.ops[i]);
    events_sent += o.events_sent;
    events_accepted += o.events_accepted;
    events_dropped += o.events_dropped;
    events_rejected += o.events_rejected;
    preload_events += o.preload_events;
    recent_reads += o.recent_reads;
    history_reads += o.history_reads;
    other_reads += o.other_reads;
    recent_records += o.recent_records;
    history_records += o.history_records;
    unsent_batches += o.unsent_batches;
    unsent_reads += o.unsent_reads;
    late_reads += o.late_reads;
  }
};

// What the threads share. The generator is behind `mu`; the counters drive the
// closed-loop read gate and the progress lines.
struct Shared {
  explicit Shared(WorkloadOptions w) : workload(w) {}
  std::mutex mu;
  ViewingWorkload workload;
  std::atomic<uint64_t> events_acked{0};
  std::atomic<uint64_t> reads_started{0};
  // Paced "pool" reads: the current timed phase's arrival schedule.
  std::optional<ArrivalSchedule> read_arrivals;
  std::atomic<uint64_t> reads_done{0};
  std::atomic<uint64_t> errors{0};
  // Bodies built before the timed phase (--pregenerate), taken in order by the writers.
  std::vector<std::string> bodies;
  std::vector<uint32_t> body_events;
  std::atomic<size_t> next_body{0};
};

struct Plan {
  http::Endpoint endpoint;
  int timeout_ms = 30000;
  int batch_size = 500;
  uint64_t seed = 1;
  int writers = 0;
  int readers = 0;
  bool pooled_reads = true;  // paced reads share one arrival schedule
  int client_slice_us = 0;   // connection threads' time slice (0 = kernel default)
  double events_per_s = 0;     // 0 = unpaced
  double reads_per_s = 0;      // 0 = unpaced
  double reads_per_event = 0;  // closed-loop gate; 0 = no gate
  bool compact_before_sizes = true;
  bool settle_before_rotation = true;
  // Shares of read kinds; the rest are "recent" reads.
  double history_share = kHistoryReadShare;
  double months_share = 0;
  double summary_share = 0;
};

Millis WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Ok(int status) { return status >= 200 && status < 300; }

// Sends one batch and accounts for it; returns the HTTP status (0 = transport error).
int PostBatch(http::Client& client, const std::string& body, size_t events,
              SteadyClock::time_point due, Op op, Shared& shared, ThreadStats& ts) {
  auto r = client.Request("POST", kEventsPath, body);
  int status = r.ok() ? r->status : 0;
  ts.ops[op].Add(status, MicrosSince(due));
  if (!Ok(status)) {
    shared.errors.fetch_add(1, std::memory_order_relaxed);
    return status;
  }
  if (op == kPreloadBatch) {
    ts.preload_events += events;
  } else {
    ts.events_sent += events;
    ts.events_accepted += JsonUint(r->body, "accepted").value_or(0);
    ts.events_dropped += JsonUint(r->body, "dropped").value_or(0);
    ts.events_rejected += CountOccurrences(r->body, "\"index\"");
  }
  shared.events_acked.fetch_add(events, std::memory_order_relaxed);
  return status;
}

void PreloadLoop(const Plan& plan, Shared& shared, ThreadStats& ts) {
  http::Client client = NewClient(plan.endpoint.host, plan.endpoint.port, plan.timeout_ms);
  std::vector<ViewingEvent> events;
  std::string body;
  for (;;) {
    events.clear();
    body.clear();
    {
      std::lock_guard<std::mutex> lock(shared.mu);
      if (!shared.workload.NextPreloadEvents(plan.batch_size, WallMillis(), &events)) return;
    }
    AppendBatchJson(events, &body);
    PostBatch(client, body, events.size(), SteadyClock::now(), kPreloadBatch, shared, ts);
  }
}

void WriterLoop(const Plan& plan, int index, SteadyClock::time_point start,
                SteadyClock::time_point end, Shared& shared, ThreadStats& ts) {
  if (plan.client_slice_us > 0) ThreadPool::SetCurrentThreadSlice(plan.client_slice_us);
  http::Client client = NewClient(plan.endpoint.host, plan.endpoint.port, plan.timeout_ms);
  std::vector<ViewingEvent> events;
  std::string body;
  const bool paced = plan.events_per_s > 0;
  const double batches_per_s = plan.events_per_s / plan.batch_size;
  for (uint64_t i = 0;; ++i) {
    SteadyClock::time_point due =
        paced ? Due(start, batches_per_s, index, plan.writers, i) : SteadyClock::now();
    if (due >= end) return;
    if (paced && SteadyClock::now() >= end) {
      // Behind schedule at the end: what was due but never sent shows in the report.
      ts.unsent_batches += CountDue(start, batches_per_s, index, plan.writers, i, end);
      return;
    }
    // Build the body before the due time, so generation never delays the send.
    const std::string* to_send = &body;
    size_t n_events = 0;
    const size_t pre = shared.bodies.empty()
                           ? SIZE_MAX
                           : shared.next_body.fetch_add(1, std::memory_order_relaxed);
    if (pre < shared.bodies.size()) {
      to_send = &shared.bodies[pre];
      n_events = shared.body_events[pre];
    } else {
      events.clear();
      body.clear();
      {
        std::lock_guard<std::mutex> lock(shared.mu);
        shared.workload.NextEvents(plan.batch_size, WallMillis(), &events);
      }
      AppendBatchJson(events, &body);
      n_events = events.size();
    }
    if (paced) {
      std::this_thread::sleep_until(due);
    } else {
      due = SteadyClock::now();
    }
    PostBatch(client, *to_send, n_events, due, kIngestBatch, shared, ts);
  }
}


void ReaderLoop(const Plan& plan, int index, SteadyClock::time_point start,
                SteadyClock::time_point end, Shared& shared, ThreadStats& ts) {
  if (plan.client_slice_us > 0) ThreadPool::SetCurrentThreadSlice(plan.client_slice_us);
  http::Client client = NewClient(plan.endpoint.host, plan.endpoint.port, plan.timeout_ms);
  Rng rng(Mix64(plan.seed ^ (0x7EADE5ULL + static_cast<uint64_t>(index) * 0x9E37ULL)));
  const bool paced = plan.reads_per_s > 0;
  std::string target;
  for (uint64_t i = 0;; ++i) {
    SteadyClock::time_point due;
    if (paced && plan.pooled_reads) {
      // The next arrival of the shared schedule, whichever connection is free first.
      const ArrivalSchedule::Take take = shared.read_arrivals->Next(&due);
      if (take == ArrivalSchedule::Take::kDone) return;
      if (take == ArrivalSchedule::Take::kUnsent) {
        ++ts.unsent_reads;  // each arrival is taken once, so counted once
        continue;
      }
    } else if (paced) {
      due = Due(start, plan.reads_per_s, index, plan.readers, i);
      if (due >= end) return;
      if (SteadyClock::now() >= end) {
        ts.unsent_reads += CountDue(start, plan.reads_per_s, index, plan.readers, i, end);
        return;
      }
    } else {
      // Closed loop: hold the events:reads ratio by waiting for writes to get ahead.
      uint64_t n = shared.reads_started.fetch_add(1, std::memory_order_relaxed) + 1;
      while (plan.reads_per_event > 0 &&
             static_cast<double>(n) >
                 plan.reads_per_event *
                     static_cast<double>(shared.events_acked.load(std::memory_order_relaxed))) {
        if (SteadyClock::now() >= end) return;
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
      due = SteadyClock::now();
      if (due >= end) return;
    }
    // The workload's member sampler is const and safe to share.
    uint64_t member = shared.workload.SampleMember(rng);
    const double u = rng.Uniform();
    const bool history = u < plan.history_share;
    const bool months = !history && u < plan.history_share + plan.months_share;
    const bool summary =
        !history && !months && u < plan.history_share + plan.months_share + plan.summary_share;
    std::string base = "/v1/members/" + std::to_string(member) + "/viewing?kind=play&limit=";
    if (paced) {
      if (SleepUntilDue(due)) ++ts.late_reads;
    }
    if (months || summary) {
      // The last three months (recent + past tiers), or the whole-history summary.
      target = summary ? "/v1/members/" + std::to_string(member) + "/summary"
                       : base + std::to_string(kMonthsLimit) +
                             "&since=" + std::to_string(WallMillis() - kMonthsSpan);
      auto r = client.Request("GET", target);
      int status = r.ok() ? r->status : 0;
      ts.ops[summary ? kSummaryRead : kMonthsRead].Add(status, MicrosSince(due));
      if (!Ok(status)) shared.errors.fetch_add(1, std::memory_order_relaxed);
      ++ts.other_reads;
    } else if (!history) {
      target = base + std::to_string(kRecentLimit);
      auto r = client.Request("GET", target);
      int status = r.ok() ? r->status : 0;
      ts.ops[kRecentRead].Add(status, MicrosSince(due));
      if (Ok(status)) {
        ts.recent_records += CountOccurrences(r->body, "\"session\"");
      } else {
        shared.errors.fetch_add(1, std::memory_order_relaxed);
      }
      ++ts.recent_reads;
    } else {
      target = base + std::to_string(kHistoryLimit);
      SteadyClock::time_point t0 = due;
      for (int page = 0; page < kMaxHistoryPages; ++page) {
        auto r = client.Request("GET", target);
        int status = r.ok() ? r->status : 0;
        ts.ops[kHistoryPage].Add(status, MicrosSince(t0));
        if (!Ok(status)) {
          shared.errors.fetch_add(1, std::memory_order_relaxed);
          break;
        }
        ts.history_records += CountOccurrences(r->body, "\"session\"");
        std::optional<std::string> cursor = NextCursor(r->body);
        if (!cursor) break;
        target = base + std::to_string(kHistoryLimit) + "&cursor=" + http::UrlEncode(*cursor);
        t0 = SteadyClock::now();  // later pages depend on the first: timed from their send
      }
      ++ts.history_reads;
    }
    shared.reads_done.fetch_add(1, std::memory_order_relaxed);
  }
}

void PrintOpRow(const OpReport& r, std::ostream& out) {
  char line[200];
  std::snprintf(line, sizeof(line), "  %-26s %10llu %10.1f %9.2f %9.2f %9.2f %9.2f %7llu\n",
                r.name.c_str(), static_cast<unsigned long long>(r.count), r.per_second, r.p50_ms,
                r.p99_ms, r.p999_ms, r.max_ms, static_cast<unsigned long long>(r.errors));
  out << line;
}

void PrintErrors(const OpReport& r, std::ostream& out) {
  if (r.errors == 0) return;
  out << "  " << r.name << ":";
  for (auto [status, n] : r.statuses) {
    if (status >= 200 && status < 300) continue;
    out << " " << (status == 0 ? std::string("transport") : std::to_string(status)) << " x" << n;
  }
  out << "\n";
}

// The server's strata_process_cpu_seconds_total, or -1.
double ServerCpuSeconds(const Plan& plan) {
  http::Client client = NewClient(plan.endpoint.host, plan.endpoint.port, plan.timeout_ms);
  auto metrics = client.Request("GET", "/metrics");
  if (!metrics.ok() || !Ok(metrics->status)) return -1;
  constexpr std::string_view kName = "\nstrata_process_cpu_seconds_total ";
  size_t at = metrics->body.find(kName);
  if (at == std::string::npos) return -1;
  return std::strtod(metrics->body.c_str() + at + kName.size(), nullptr);
}

// Scrapes the server's size and memory metrics, and per-table bytes/record from the admin
// endpoint when the server has it (otherwise from metrics carrying record counts).
void CollectServerStats(const Plan& plan, BenchReport* report) {
  report->server_stats_collected = true;
  http::Client client = NewClient(plan.endpoint.host, plan.endpoint.port, plan.timeout_ms);
  if (plan.compact_before_sizes) {
    http::Client compactor = NewClient(plan.endpoint.host, plan.endpoint.port, 600'000);
    (void)compactor.Request("POST", "/v1/admin/compact?wait=true", "");
  }
  std::map<std::string, double> disk_bytes;
  std::map<std::string, double> records;
  auto table_label = [](std::string_view line) -> std::string {
    size_t at = line.find("table=\"");
    if (at == std::string_view::npos) return "";
    size_t start = at + 7;
    size_t stop = line.find('"', start);
    return std::string(line.substr(start, stop - start));
  };
  auto metric_value = [](std::string_view line) {
    size_t sp = line.rfind(' ');
    return std::strtod(std::string(line.substr(sp + 1)).c_str(), nullptr);
  };
  auto metrics = client.Request("GET", "/metrics");
  if (metrics.ok() && Ok(metrics->status)) {
    std::string_view body = metrics->body;
    while (!body.empty()) {
      size_t nl = body.find('\n');
      std::string_view line = body.substr(0, nl);
      body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
      if (!internal::KeepMetricLine(line)) continue;
      report->server_metrics.emplace_back(line);
      if (line.substr(0, 24) == "strata_table_disk_bytes{") {
        disk_bytes[table_label(line)] = metric_value(line);
      } else if (line.substr(0, 21) == "strata_table_records{") {
        records[table_label(line)] = metric_value(line);
      }
    }
  }
  // The viewing service's own accounting counts records inside compressed blobs too.
  auto tables = client.Request("GET", "/v1/admin/viewing/tables");
  if (tables.ok() && Ok(tables->status)) {
    report->data_dir_bytes_per_record = internal::ParseDataDirBytesPerRecord(tables->body);
    for (const auto& t : internal::ParseTableReport(tables->body)) {
      records[t.table] = static_cast<double>(t.records);
      disk_bytes[t.table] = static_cast<double>(t.disk_bytes);
      if (t.records == 0) continue;
      for (const auto& [kind, bytes] : t.row_bytes) {
        report->row_bytes_per_record[t.table][kind] =
            static_cast<double>(bytes) / static_cast<double>(t.records);
      }
    }
  }
  for (const auto& [table, bytes] : disk_bytes) {
    auto it = records.find(table);
    if (it != records.end() && it->second > 0) report->bytes_per_record[table] = bytes / it->second;
  }
}

absl::Status Validate(const ViewingBenchOptions& o) {
  if (o.members < 1) return absl::InvalidArgumentError("members: must be >= 1");
  if (!(o.zipf_s > 0) || o.zipf_s > 10) {
    return absl::InvalidArgumentError("zipf_s: must be in (0, 10]");
  }
  if (o.client_slice_us < 0 || o.client_slice_us > 100000) {
    return absl::InvalidArgumentError("client_slice_us: must be 0..100000");
  }
  if (o.connections < 1 || o.connections > 1024) {
    return absl::InvalidArgumentError("connections: must be 1..1024");
  }
  if (!(o.duration_s > 0)) return absl::InvalidArgumentError("duration_s: must be > 0");
  if (o.batch_size < 1 || o.batch_size > 100000) {
    return absl::InvalidArgumentError("batch_size: must be 1..100000");
  }
  if (o.preload_heavy_members < 0) {
    return absl::InvalidArgumentError("preload_heavy_members: must be >= 0");
  }
  if (o.mode != "ingest" && o.mode != "mix" && o.mode != "tiers") {
    return absl::InvalidArgumentError("mode: must be \"ingest\", \"mix\" or \"tiers\"");
  }
  if (o.mode == "tiers") {
    if (o.history_members < 1 || o.rotation_members < 1 ||
        static_cast<uint64_t>(o.history_members) + static_cast<uint64_t>(o.rotation_members) >
            o.members) {
      return absl::InvalidArgumentError(
          "history_members, rotation_members: each >= 1, together at most members");
    }
    if (o.rotation_plays < 1 || o.rotation_plays > 100'000) {
      return absl::InvalidArgumentError("rotation_plays: must be 1..100000");
    }
    if (o.history_plays < 1 || o.history_plays > 1'000'000) {
      return absl::InvalidArgumentError("history_plays: must be 1..1000000");
    }
    if (!(o.history_years > 0) || o.history_years > 50) {
      return absl::InvalidArgumentError("history_years: must be in (0, 50]");
    }
  }
  if (o.mode == "mix" || o.mode == "tiers") {
    if (!(o.write_fraction > 0 && o.write_fraction < 1)) {
      return absl::InvalidArgumentError("write_fraction: must be in (0, 1) in mix mode");
    }
    if (o.connections < 2) {
      return absl::InvalidArgumentError(
          "connections: mix mode needs at least 2 (a writer and a reader)");
    }
    if (o.read_dispatch != "pool" && o.read_dispatch != "connection") {
      return absl::InvalidArgumentError("read_dispatch: must be \"pool\" or \"connection\"");
    }
    if (o.write_connections < 0 || o.write_connections >= o.connections) {
      return absl::InvalidArgumentError("write_connections: must be 0 (auto) or 1..connections-1");
    }
  }
  if (o.timeout_ms < 1) return absl::InvalidArgumentError("timeout_ms: must be >= 1");
  return absl::OkStatus();
}

// "  table: 12.82 (meta 0.13, segment 12.46, state 0.15)", one line per table.
void PrintBytesPerRecord(const BenchReport& r, std::ostream& out) {
  if (r.data_dir_bytes_per_record >= 0) {
    out << "  whole data directory (WAL, tables, queue, everything): "
        << Fmt("%.2f", r.data_dir_bytes_per_record) << " bytes per record\n";
  }
  for (const auto& [table, bpr] : r.bytes_per_record) {
    out << "  " << table << ": " << Fmt("%.2f", bpr);
    auto kinds = r.row_bytes_per_record.find(table);
    if (kinds != r.row_bytes_per_record.end() && !kinds->second.empty()) {
      const char* sep = " (";
      for (const auto& [kind, per] : kinds->second) {
        out << sep << kind << " " << Fmt("%.2f", per);
        sep = ", ";
      }
      out << ")";
    }
    out << "\n";
  }
}

}  // namespace

void PrintBenchReport(const BenchReport& r, std::ostream& out) {
  out << "\n== timed phase: " << r.mode << ", " << Fmt("%.1f", r.elapsed_s) << " s, "
      << r.write_connections << " writer and " << r.read_connections << " reader connections ==\n";
  if (r.open_loop) {
    out << "pacing: open-loop";
    if (r.target_events_per_s > 0) {
      out << " at " << Fmt("%.0f", r.target_events_per_s) << " events/s";
    }
    if (r.target_reads_per_s > 0) {
      out << ", " << Fmt("%.0f", r.target_reads_per_s) << " reads/s"
          << (r.pooled_reads ? " (one schedule, next free reader connection)"
                             : " (a schedule per reader connection)");
    }
    out << ".\n        Latency is measured from each request's intended send time, so time spent\n"
           "        queued behind a slow response counts (no coordinated omission).\n";
  } else {
    out << "pacing: closed-loop (as fast as the server answers).\n"
           "        Latency is measured from the actual send, so it understates what an\n"
           "        open-loop client would see under overload.\n";
  }
  char header[200];
  std::snprintf(header, sizeof(header), "  %-26s %10s %10s %9s %9s %9s %9s %7s\n", "operation",
                "count", "rate/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors");
  out << header;
  if (r.ingest_batch.count > 0) PrintOpRow(r.ingest_batch, out);
  if (r.recent_read.count > 0) PrintOpRow(r.recent_read, out);
  if (r.history_page.count > 0) PrintOpRow(r.history_page, out);
  if (r.months_read.count > 0) PrintOpRow(r.months_read, out);
  if (r.summary_read.count > 0) PrintOpRow(r.summary_read, out);
  out << "events written: " << Thousands(r.events_sent) << " (" << Fmt("%.0f", r.events_per_s)
      << "/s); server accepted " << Thousands(r.events_accepted) << ", dropped "
      << Thousands(r.events_dropped) << " (write filters: short previews), rejected "
      << Thousands(r.events_rejected) << "\n";
  if (r.reads > 0) {
    out << "reads: " << Thousands(r.reads) << " (" << Fmt("%.0f", r.reads_per_s)
        << "/s): " << Thousands(r.recent_read.count) << " recent (limit=" << kRecentLimit
        << ", avg " << Fmt("%.1f", r.records_per_recent_read) << " records), "
        << Thousands(r.history_reads) << " full-history (limit=" << kHistoryLimit << ", "
        << Thousands(r.history_page.count) << " pages, avg "
        << Fmt("%.0f", r.records_per_history_page) << " records/page)\n";
  }
  if (r.server_cpu_s >= 0 && r.elapsed_s > 0) {
    out << "server CPU: " << Fmt("%.1f", r.server_cpu_s) << " s in the timed phase ("
        << Fmt("%.0f", 100 * r.server_cpu_s / r.elapsed_s) << "% of one core)";
    if (r.events_sent > 0 && r.reads == 0) {
      out << ", " << Fmt("%.2f", 1e6 * r.server_cpu_s / static_cast<double>(r.events_sent))
          << " us per event written";
    }
    out << "\n";
  }
  if (r.open_loop && r.late_reads > 0) {
    out << "late reads: " << Thousands(r.late_reads)
        << " reads were sent more than 1 ms after their due time (no reader connection\n"
           "        was free, or the client was descheduled); the wait is in their latency\n";
  }
  if (r.unsent_batches + r.unsent_reads > 0) {
    out << "behind schedule: " << Thousands(r.unsent_batches) << " batches and "
        << Thousands(r.unsent_reads)
        << " reads were due before the end but never sent: the server did not keep up\n"
           "        with the target rates (the achieved rates above are what it sustained)\n";
  }
  if (r.ingest_batch.errors + r.recent_read.errors + r.history_page.errors > 0) {
    out << "errors by status:\n";
    PrintErrors(r.ingest_batch, out);
    PrintErrors(r.recent_read, out);
    PrintErrors(r.history_page, out);
  }
  if (!r.server_stats_collected) return;  // a phase of a longer run
  out << "\n== server after the run ==\n";
  if (r.server_metrics.empty()) {
    out << "  (no strata_table_* / strata_process_* metrics at /metrics)\n";
  }
  for (const auto& line : r.server_metrics) out << "  " << line << "\n";
  if (!r.bytes_per_record.empty()) {
    out << "bytes per record (disk bytes / records, per table; in brackets, per row kind):\n";
    PrintBytesPerRecord(r, out);
  }
}

// Builds `events` worth of batch bodies into shared.bodies (--pregenerate).
void Pregenerate(const Plan& plan, uint64_t events, Shared& shared, std::ostream& out) {
  const auto t0 = SteadyClock::now();
  std::vector<ViewingEvent> batch;
  const uint64_t batches = (events + plan.batch_size - 1) / plan.batch_size;
  shared.bodies.reserve(batches);
  shared.body_events.reserve(batches);
  size_t bytes = 0;
  for (uint64_t i = 0; i < batches; ++i) {
    batch.clear();
    shared.workload.NextEvents(plan.batch_size, WallMillis(), &batch);
    std::string body;
    AppendBatchJson(batch, &body);
    bytes += body.size();
    shared.bodies.push_back(std::move(body));
    shared.body_events.push_back(static_cast<uint32_t>(batch.size()));
  }
  out << "pre-generated " << Thousands(batches) << " request bodies (" << Thousands(events)
      << " events, " << Fmt("%.0f", bytes / 1048576.0) << " MiB) in "
      << Fmt("%.1f", std::chrono::duration<double>(SteadyClock::now() - t0).count()) << " s\n"
      << std::flush;
}

// Runs writers and readers for duration_s and fills the timed-phase fields of *report.
void TimedPhase(const Plan& plan, Shared& shared, double duration_s, std::ostream& out,
                BenchReport* report) {
  out << "running " << report->mode << " for " << duration_s << " s on "
      << plan.writers + plan.readers << " connections ...\n"
      << std::flush;
  int threads_total = plan.writers + plan.readers;
  std::vector<ThreadStats> stats(threads_total);
  const double cpu_before = ServerCpuSeconds(plan);
  auto start = SteadyClock::now() + std::chrono::milliseconds(20);
  auto end = start + std::chrono::duration_cast<SteadyClock::duration>(
                         std::chrono::duration<double>(duration_s));
  // This phase's read schedule starts at its own start.
  shared.read_arrivals.emplace(start, end, plan.reads_per_s > 0 ? plan.reads_per_s : 1);
  std::vector<std::thread> threads;
  for (int i = 0; i < plan.writers; ++i) {
    threads.emplace_back([&, i] { WriterLoop(plan, i, start, end, shared, stats[i]); });
  }
  for (int i = 0; i < plan.readers; ++i) {
    threads.emplace_back(
        [&, i] { ReaderLoop(plan, i, start, end, shared, stats[plan.writers + i]); });
  }
  // Progress every 10 s (or at the end of shorter runs).
  {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread progress([&] {
      std::unique_lock<std::mutex> lock(mu);
      // The shared counters run across phases: count from their values at this one's start.
      uint64_t last_events = shared.events_acked.load(), last_reads = shared.reads_done.load();
      auto last = start;
      for (auto tick = start + std::chrono::seconds(10); tick < end;
           tick += std::chrono::seconds(10)) {
        if (cv.wait_until(lock, tick, [&] { return done; })) return;
        uint64_t ev = shared.events_acked.load(), rd = shared.reads_done.load();
        double dt = std::chrono::duration<double>(tick - last).count();
        out << "  t=" << Fmt("%.0f", std::chrono::duration<double>(tick - start).count())
            << "s  events/s " << Fmt("%.0f", (ev - last_events) / dt) << "  reads/s "
            << Fmt("%.0f", (rd - last_reads) / dt) << "  errors " << shared.errors.load() << "\n"
            << std::flush;
        last_events = ev;
        last_reads = rd;
        last = tick;
      }
    });
    for (auto& t : threads) t.join();
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
    progress.join();
  }
  report->elapsed_s = std::chrono::duration<double>(SteadyClock::now() - start).count();
  const double cpu_after = ServerCpuSeconds(plan);
  if (cpu_before >= 0 && cpu_after >= cpu_before) report->server_cpu_s = cpu_after - cpu_before;

  ThreadStats total;
  for (const auto& s : stats) total.Merge(s);
  const double secs = report->elapsed_s;
  report->ingest_batch = MakeOpReport("ingest batch (POST)", total.ops[kIngestBatch], secs);
  report->recent_read = MakeOpReport("recent read (limit=50)", total.ops[kRecentRead], secs);
  report->history_page = MakeOpReport("history page (limit=1000)", total.ops[kHistoryPage], secs);
  report->months_read = MakeOpReport("months read (90 d)", total.ops[kMonthsRead], secs);
  report->summary_read = MakeOpReport("summary read", total.ops[kSummaryRead], secs);
  report->events_sent = total.events_sent;
  report->events_accepted = total.events_accepted;
  report->events_dropped = total.events_dropped;
  report->events_rejected = total.events_rejected;
  report->events_per_s = secs > 0 ? total.events_sent / secs : 0;
  report->history_reads = total.history_reads;
  report->unsent_batches = total.unsent_batches;
  report->unsent_reads = total.unsent_reads;
  report->late_reads = total.late_reads;
  report->reads = total.recent_reads + total.history_reads + total.other_reads;
  report->reads_per_s = secs > 0 ? report->reads / secs : 0;
  uint64_t ok_recent = report->recent_read.count - report->recent_read.errors;
  uint64_t ok_pages = report->history_page.count - report->history_page.errors;
  report->records_per_recent_read =
      ok_recent > 0 ? static_cast<double>(total.recent_records) / ok_recent : 0;
  report->records_per_history_page =
      ok_pages > 0 ? static_cast<double>(total.history_records) / ok_pages : 0;

}

// ---- "tiers" mode -------------------------------------------------------------------------

std::string GetBody(const Plan& plan, const char* method, const std::string& path) {
  http::Client client = NewClient(plan.endpoint.host, plan.endpoint.port, plan.timeout_ms);
  auto r = client.Request(method, path, "");
  return r.ok() && Ok(r->status) ? r->body : std::string();
}

struct RotationCounters {
  uint64_t moved = 0, folded = 0, rotated = 0, queued = 0, running = 0;
  uint64_t summary_hits = 0, summary_misses = 0;
  bool sweep_running = false;
};

RotationCounters Rotation(const Plan& plan) {
  std::string body = GetBody(plan, "GET", "/v1/admin/viewing/rotation");
  RotationCounters c;
  c.moved = JsonUint(body, "moved_to_past").value_or(0);
  c.folded = JsonUint(body, "folded_to_historical").value_or(0);
  c.rotated = JsonUint(body, "rotated_members").value_or(0);
  c.queued = JsonUint(body, "queued").value_or(0);
  c.running = JsonUint(body, "running").value_or(0);
  c.summary_hits = JsonUint(body, "hits").value_or(0);
  c.summary_misses = JsonUint(body, "misses").value_or(0);
  c.sweep_running = body.find("\"sweep\":{\"running\":true") != std::string::npos;
  return c;
}

// Waits until no rotation is queued or running and no sweep runs (bounded).
bool WaitRotationIdle(const Plan& plan, double max_s) {
  const auto deadline = SteadyClock::now() + std::chrono::duration<double>(max_s);
  while (SteadyClock::now() < deadline) {
    RotationCounters c = Rotation(plan);
    if (!c.sweep_running && c.queued == 0 && c.running == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Waits until the server's roll-up backlog is empty (bounded), so a phase does not measure
// the roll-ups of the previous load.
void WaitRollupsIdle(const Plan& plan, double max_s) {
  const auto deadline = SteadyClock::now() + std::chrono::duration<double>(max_s);
  while (SteadyClock::now() < deadline) {
    std::string body = GetBody(plan, "GET", "/metrics");
    size_t at = body.find("\nstrata_viewing_rollup_backlog ");
    if (at == std::string::npos ||
        std::strtod(body.c_str() + at + 31, nullptr) == 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Loads `members` members from rank `first_rank` with `plays` plays each, spread over the
// `span` before `end` (a time in the past for aged data).
void LoadHistories(int connections, const Plan& plan, Shared& shared, uint64_t first_rank,
                   uint64_t members, uint64_t plays, Millis span, Millis end,
                   std::ostream& out) {
  shared.workload.PlanPreload(first_rank, members, plays, plays, span, end);
  out << "load: members of ranks " << first_rank << ".." << first_rank + members - 1 << ", "
      << Thousands(shared.workload.preload_plays_planned()) << " plays spread over "
      << Fmt("%.0f", static_cast<double>(span) / 86'400'000) << " days ending "
      << Fmt("%.0f", static_cast<double>(WallMillis() - end) / 86'400'000)
      << " days ago (plus previews) ..." << std::flush;
  const int o_connections = connections;
  std::vector<ThreadStats> stats(o_connections);
  auto t0 = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < o_connections; ++i) {
    threads.emplace_back([&, i] { PreloadLoop(plan, shared, stats[i]); });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  ThreadStats total;
  for (const auto& st : stats) total.Merge(st);
  out << " " << Thousands(total.preload_events) << " events in " << Fmt("%.1f", secs) << " s ("
      << Fmt("%.0f", secs > 0 ? total.preload_events / secs : 0) << "/s), errors "
      << total.ops[kPreloadBatch].errors << "\n";
  shared.workload.ResumeMembers(first_rank, members, WallMillis());
  WaitRollupsIdle(plan, 300);
  shared.events_acked.store(0);
}

// Summary reads on a summary-cache miss for the members of ranks first_rank ..
// first_rank + members - 1: `passes` passes over them, the server's viewing caches dropped
// before each pass (but the first, unless drop_first). Prints one line.
void SummaryMissReads(const Plan& plan, Shared& shared, uint64_t first_rank, uint64_t members,
                      int passes, bool drop_first, const std::string& what, std::ostream& out) {
  http::Client client = NewClient(plan.endpoint.host, plan.endpoint.port, plan.timeout_ms);
  OpStats stats;
  uint64_t slowest = 0;
  int slowest_pass = 0;
  uint64_t slowest_us = 0;
  bool dropped = true;
  for (int pass = 1; pass <= std::max(1, passes); ++pass) {
    if (pass > 1 || drop_first) {
      auto d = client.Request("POST", "/v1/admin/viewing/caches:drop", "");
      if (!d.ok() || d->status != 200) {
        dropped = false;
        break;
      }
    }
    for (uint64_t rank = first_rank; rank < first_rank + members; ++rank) {
      const uint64_t member = shared.workload.MemberForRank(rank);
      auto due = SteadyClock::now();
      auto r = client.Request("GET", "/v1/members/" + std::to_string(member) + "/summary");
      const uint64_t us = MicrosSince(due);
      stats.Add(r.ok() ? r->status : 0, us);
      if ((pass == 1 && rank == first_rank) || us > slowest_us) {
        slowest_us = us;
        slowest = rank - first_rank + 1;
        slowest_pass = pass;
      }
    }
  }
  OpReport rep = MakeOpReport("summary read, cache miss", stats, 1);
  out << "summary reads on cache miss (" << what << "): " << rep.count << " reads, p50 "
      << Fmt("%.2f", rep.p50_ms) << " ms, p99 " << Fmt("%.2f", rep.p99_ms) << " ms, max "
      << Fmt("%.2f", rep.max_ms) << " ms (pass " << slowest_pass << ", member " << slowest
      << " of " << members << "), errors " << rep.errors
      << (dropped ? "" : " (could not drop the server's caches)") << "\n";
}

void RunTiers(const ViewingBenchOptions& o, const Plan& plan, Shared& shared, std::ostream& out,
              BenchReport* report) {
  constexpr Millis kDay = 86'400'000;
  constexpr Millis kRecentAge = 7 * kDay;  // the server's default --recent-age-ms
  // 1. Long histories.
  LoadHistories(o.connections, plan, shared, 1, static_cast<uint64_t>(o.history_members),
                o.history_plays,
                static_cast<Millis>(o.history_years * 365.25 * static_cast<double>(kDay)),
                WallMillis(), out);

  // 2. Rotation alone.
  RotationCounters before = Rotation(plan);
  auto t0 = SteadyClock::now();
  (void)GetBody(plan, "POST", "/v1/admin/viewing/rotation:sweep");
  bool idle = WaitRotationIdle(plan, 600);
  double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  RotationCounters after = Rotation(plan);
  out << "rotation alone: " << Thousands(after.moved - before.moved)
      << " plays moved recent->past (" << Thousands(after.folded - before.folded)
      << " of them folded into summaries) for " << Thousands(after.rotated - before.rotated)
      << " members in " << Fmt("%.2f", secs) << " s ("
      << Fmt("%.0f", secs > 0 ? (after.moved - before.moved) / secs : 0) << " plays/s)"
      << (idle ? "" : " -- NOT FINISHED within 600 s") << "\n";

  // 3. Summary reads on cache miss: each loaded member's first read, then (--miss-passes)
  // the same reads again after the server dropped its viewing caches, for more samples
  // than one per member (a p99 of 50 reads is their maximum).
  SummaryMissReads(plan, shared, 1, static_cast<uint64_t>(o.history_members), o.miss_passes,
                   /*drop_first=*/false,
                   Thousands(o.history_plays) + " plays of history each", out);

  // 4. Warm-up, then the baseline mix. Warm-up: the members' reads (summaries and the last
  // 90 days, Zipf-drawn like the mix's) as fast as the server answers, then the mix itself,
  // so the caches hold a steady state: from cold, Zipf(1.1) over 50k members still meets a
  // never-read member in ~5% of reads after ~300k reads.
  if (o.warmup_s > 0) {
    out << "\n-- warm-up: " << o.warmup_s << " s of reads as fast as possible, then "
        << o.warmup_s << " s of the mix; not measured --\n";
    std::atomic<uint64_t> warm_reads{0};
    const auto stop = SteadyClock::now() + std::chrono::duration<double>(o.warmup_s);
    std::vector<std::thread> readers;
    for (int i = 0; i < std::max(2, o.connections / 5); ++i) {
      readers.emplace_back([&, i] {
        http::Client client = NewClient(plan.endpoint.host, plan.endpoint.port, plan.timeout_ms);
        Rng rng(Mix64(o.seed ^ (0x3A3Aull + static_cast<uint64_t>(i))));
        while (SteadyClock::now() < stop) {
          const uint64_t member = shared.workload.SampleMember(rng);
          const std::string m = std::to_string(member);
          (void)client.Request("GET", rng.Chance(0.5)
                                          ? "/v1/members/" + m + "/summary"
                                          : "/v1/members/" + m + "/viewing?kind=play&limit=100" +
                                                "&since=" +
                                                std::to_string(WallMillis() - kMonthsSpan));
          warm_reads.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    for (auto& t : readers) t.join();
    out << "warm-up reads: " << Thousands(warm_reads.load()) << "\n";
    BenchReport warm = *report;
    std::ostringstream quiet;
    TimedPhase(plan, shared, o.warmup_s, quiet, &warm);
  }
  out << "\n-- baseline: the mix with no rotation running --\n";
  RotationCounters c0 = Rotation(plan);
  BenchReport base = *report;
  TimedPhase(plan, shared, o.duration_s, out, &base);
  RotationCounters c1 = Rotation(plan);
  PrintBenchReport(base, out);
  const uint64_t hits = c1.summary_hits - c0.summary_hits;
  const uint64_t misses = c1.summary_misses - c0.summary_misses;
  out << "summary cache during the baseline: " << Thousands(hits) << " hits, "
      << Thousands(misses) << " misses ("
      << Fmt("%.1f", hits + misses > 0 ? 100.0 * hits / (hits + misses) : 0) << "% hits); "
      << Thousands(c1.rotated - c0.rotated) << " rotations ran meanwhile\n";

  // 5. The same mix while another load of histories rotates.
  out << "\n-- the mix while a sweep rotates plays that aged out of the recent tier --\n";
  LoadHistories(o.connections, plan, shared, static_cast<uint64_t>(o.history_members) + 1,
                static_cast<uint64_t>(o.rotation_members), o.rotation_plays, 30 * kDay,
                WallMillis() - kRecentAge - kDay, out);
  if (plan.settle_before_rotation) {
    const auto t0 = SteadyClock::now();
    http::Client compactor = NewClient(plan.endpoint.host, plan.endpoint.port, 600'000);
    auto r = compactor.Request("POST", "/v1/admin/compact?wait=true", "");
    out << "settle: compacted the server's tables in "
        << Fmt("%.1f", std::chrono::duration<double>(SteadyClock::now() - t0).count()) << " s"
        << (r.ok() && r->status / 100 == 2 ? "" : " (compaction request failed)") << "\n";
  }
  before = Rotation(plan);
  std::atomic<double> rotation_s{-1};
  BenchReport during = *report;
  std::thread rotator([&] {
    auto start = SteadyClock::now();
    (void)GetBody(plan, "POST", "/v1/admin/viewing/rotation:sweep");
    if (WaitRotationIdle(plan, o.duration_s)) {
      rotation_s = std::chrono::duration<double>(SteadyClock::now() - start).count();
    }
  });
  TimedPhase(plan, shared, o.duration_s, out, &during);
  rotator.join();
  after = Rotation(plan);
  PrintBenchReport(during, out);
  {
    const uint64_t h = after.summary_hits - before.summary_hits;
    const uint64_t m = after.summary_misses - before.summary_misses;
    out << "summary cache during this phase: " << Thousands(h) << " hits, " << Thousands(m)
        << " misses (" << Fmt("%.1f", h + m > 0 ? 100.0 * h / (h + m) : 0) << "% hits)\n";
  }
  out << "rotation during the mix: " << Thousands(after.moved - before.moved)
      << " plays moved recent->past (" << Thousands(after.folded - before.folded)
      << " folded into summaries), " << Thousands(after.rotated - before.rotated)
      << " member rotations, ";
  if (rotation_s >= 0) {
    out << "done in " << Fmt("%.2f", rotation_s.load()) << " s\n";
  } else {
    out << "NOT finished within the " << o.duration_s << " s mix\n";
  }
  auto ratio = [](const OpReport& a, const OpReport& b) {
    return b.p99_ms > 0 ? a.p99_ms / b.p99_ms : 0;
  };
  auto print_ratios = [&](const char* label, const BenchReport& control) {
    out << "read p99 during rotation / " << label << ": recent "
        << Fmt("%.2f", ratio(during.recent_read, control.recent_read)) << "x, months "
        << Fmt("%.2f", ratio(during.months_read, control.months_read)) << "x, summary "
        << Fmt("%.2f", ratio(during.summary_read, control.summary_read)) << "x\n";
  };
  print_ratios("baseline", base);

  // 6. The control: the same mix on the same data once the rotation is over. The rotation
  // phase's members (Zipf ranks right after the long histories) are read by the mix too, and
  // once rotated their reads of more than the recent tier holds go to the past tier, so the
  // reads cost more than in the baseline whatever the rotation itself costs.
  if (o.after_s > 0) {
    out << "\n-- after: the same mix once the rotation is done (the control) --\n";
    if (!WaitRotationIdle(plan, 600)) out << "(rotation still busy after 600 s)\n";
    BenchReport control = *report;
    TimedPhase(plan, shared, o.after_s, out, &control);
    PrintBenchReport(control, out);
    print_ratios("baseline", base);
    print_ratios("after", control);
  }

  // 7. Summary reads on a cache miss for members whose plays just rotated: their past tiers
  // are small (rotation_plays each), so they store no summary (past_summary_min_records)
  // and a miss summarises their chunk.
  SummaryMissReads(plan, shared, static_cast<uint64_t>(o.history_members) + 1,
                   std::min<uint64_t>(static_cast<uint64_t>(o.rotation_members), 200),
                   o.miss_passes, /*drop_first=*/true,
                   "rotated members, " + Thousands(o.rotation_plays) + " plays each", out);

  // 8. Sizes per tier.
  *report = during;
  CollectServerStats(plan, report);
  out << "\nbytes per record (disk bytes / records; plays_historical: / plays summarised;\n"
         "in brackets, key + value bytes per record of each row kind):\n";
  PrintBytesPerRecord(*report, out);
}

absl::StatusOr<BenchReport> RunViewingBench(const ViewingBenchOptions& options, std::ostream& out) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  auto endpoint = http::ParseUrl(options.server);
  if (!endpoint.ok()) {
    return absl::InvalidArgumentError("server: " + std::string(endpoint.status().message()));
  }

  Plan plan;
  plan.endpoint = *endpoint;
  plan.timeout_ms = options.timeout_ms;
  plan.batch_size = options.batch_size;
  plan.seed = options.seed;
  plan.client_slice_us = options.client_slice_us;
  plan.compact_before_sizes = options.compact_before_sizes;
  plan.settle_before_rotation = options.settle_before_rotation;
  BenchReport report;
  report.mode = options.mode;
  if (options.mode == "tiers") {
    plan.history_share = 0;
    plan.months_share = 0.10;
    plan.summary_share = 0.10;
  }
  if (options.mode == "ingest") {
    plan.writers = options.connections;
    plan.readers = 0;
    plan.events_per_s = static_cast<double>(options.target_events_per_s);
  } else {
    plan.writers = options.write_connections > 0
                       ? options.write_connections
                       : std::clamp(static_cast<int>(std::lround(options.connections * 3 / 8.0)), 1,
                                    options.connections - 1);
    plan.readers = options.connections - plan.writers;
    plan.pooled_reads = options.read_dispatch == "pool";
    double reads_per_event = (1 - options.write_fraction) / options.write_fraction;
    plan.events_per_s = static_cast<double>(options.target_events_per_s);
    plan.reads_per_s = static_cast<double>(options.target_reads_per_s);
    if (plan.events_per_s > 0 && plan.reads_per_s == 0) {
      plan.reads_per_s = plan.events_per_s * reads_per_event;
    } else if (plan.reads_per_s > 0 && plan.events_per_s == 0) {
      plan.events_per_s = plan.reads_per_s / reads_per_event;
    } else if (plan.events_per_s == 0 && plan.reads_per_s == 0) {
      plan.reads_per_event = reads_per_event;
    }
  }
  report.open_loop = plan.events_per_s > 0 || plan.reads_per_s > 0;
  report.target_events_per_s = plan.events_per_s;
  report.target_reads_per_s = plan.reads_per_s;
  report.write_connections = plan.writers;
  report.read_connections = plan.readers;
  report.pooled_reads = plan.pooled_reads;

  {
    http::Client probe = NewClient(plan.endpoint.host, plan.endpoint.port, 5000);
    auto health = probe.Request("GET", "/healthz");
    if (!health.ok()) {
      return absl::UnavailableError("cannot reach " + options.server + ": " +
                                    std::string(health.status().message()));
    }
    if (!Ok(health->status)) {
      out << "warning: GET /healthz answered " << health->status << "\n";
    }
  }

  out << "strata bench viewing: server " << options.server << ", mode " << options.mode
      << ", members " << options.members << ", zipf s=" << options.zipf_s << ", batch "
      << options.batch_size << ", seed " << options.seed << "\n";

  WorkloadOptions wo;
  wo.members = options.members;
  wo.zipf_s = options.zipf_s;
  wo.seed = options.seed;
  Shared shared(wo);

  if (options.mode == "tiers") {
    RunTiers(options, plan, shared, out, &report);
    return report;
  }

  // ---- Preload (untimed) ----
  if (options.preload_heavy_members > 0) {
    shared.workload.PlanPreload(static_cast<uint64_t>(options.preload_heavy_members), WallMillis());
    out << "preload: " << std::min<uint64_t>(options.preload_heavy_members, options.members)
        << " heavy members, " << Thousands(shared.workload.preload_plays_planned())
        << " plays plus previews ..." << std::flush;
    std::vector<ThreadStats> stats(options.connections);
    auto t0 = SteadyClock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < options.connections; ++i) {
      threads.emplace_back([&, i] { PreloadLoop(plan, shared, stats[i]); });
    }
    for (auto& t : threads) t.join();
    report.preload_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    ThreadStats total;
    for (const auto& s : stats) total.Merge(s);
    report.preload_batch =
        MakeOpReport("preload batch (POST)", total.ops[kPreloadBatch], report.preload_s);
    report.preload_events = total.preload_events;
    out << " " << Thousands(report.preload_events) << " events in "
        << Thousands(report.preload_batch.count) << " batches, " << Fmt("%.1f", report.preload_s)
        << " s ("
        << Fmt("%.0f", report.preload_s > 0 ? report.preload_events / report.preload_s : 0)
        << " events/s), p50 " << Fmt("%.1f", report.preload_batch.p50_ms) << " ms, p99 "
        << Fmt("%.1f", report.preload_batch.p99_ms) << " ms, errors " << report.preload_batch.errors
        << "\n";
    PrintErrors(report.preload_batch, out);
    shared.events_acked.store(0);
  }

  if (options.pregenerate_events > 0 && plan.writers > 0) {
    Pregenerate(plan, options.pregenerate_events, shared, out);
  }
  TimedPhase(plan, shared, options.duration_s, out, &report);
  report.pregenerated_batches = shared.bodies.size();
  report.pregenerated_used = std::min(shared.next_body.load(), shared.bodies.size());
  if (report.pregenerated_batches > 0) {
    out << "pre-generated bodies sent: " << Thousands(report.pregenerated_used) << " of "
        << Thousands(report.pregenerated_batches)
        << (report.pregenerated_used == report.pregenerated_batches
                ? " (ran out: the rest were built on line)"
                : "")
        << "\n";
  }

  CollectServerStats(plan, &report);
  PrintBenchReport(report, out);
  return report;
}

}  // namespace strata::bench
