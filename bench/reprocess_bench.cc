#include "bench/reprocess_bench.h"

#include <signal.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "bench/child_process.h"
#include "bench/run_support.h"
#include "bench/viewing_workload.h"
#include "strata/base/status.h"
#include "strata/base/thread_pool.h"
#include "strata/http/http_client.h"

extern char** environ;

namespace strata::bench {
namespace {

constexpr double kStartTimeoutS = 120;
constexpr double kStopTimeoutS = 60;
constexpr const char* kType = "bench";
constexpr const char* kJobValue = "bench-job";
constexpr double kGoalJobPerS = 50'000;
constexpr double kGoalP99Ratio = 1.5;
constexpr const char* kFormats[] = {"sd", "hd", "fhd", "4k"};

std::string HttpError(const absl::StatusOr<http::ClientResponse>& r) {
  if (!r.ok()) return r.status().ToString();
  return "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300);
}

std::string TypeDefinition() {
  return R"({"schema":{"type":"object","required":["show_id","format","duration_s"],)"
         R"("properties":{"show_id":{"type":"integer","minimum":1},)"
         R"("format":{"type":"string","enum":["sd","hd","fhd","4k"]},)"
         R"("duration_s":{"type":"integer","minimum":0,"maximum":86400},)"
         R"("title":{"type":"string","maxLength":200},)"
         R"("description":{"type":"string","maxLength":4096},)"
         R"("bench_n":{"type":"integer","minimum":0},"reprocessed":{"type":"string"}}},)"
         R"("indexed":["/show_id","/format","/duration_s"],"bucket":"day"})";
}

// Distinct create bodies (JSON arrays of `batch` payloads), cycled over the run.
std::vector<std::string> BuildBodies(const ReprocessBenchOptions& o, size_t distinct) {
  Rng rng(Mix64(o.seed));
  std::vector<std::string> words;
  for (int i = 0; i < 120; ++i) {
    std::string w;
    const int n = 3 + static_cast<int>(rng.Next() % 7);
    for (int j = 0; j < n; ++j) w.push_back(static_cast<char>('a' + rng.Next() % 26));
    words.push_back(std::move(w));
  }
  auto text = [&](size_t max) {
    std::string s;
    while (s.size() < max) {
      if (!s.empty()) s.push_back(' ');
      s += words[rng.Next() % words.size()];
    }
    s.resize(max);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  };
  const uint64_t shows = std::max<uint64_t>(1, o.assets / 200);
  std::vector<std::string> bodies;
  for (size_t d = 0; d < distinct; ++d) {
    std::string b = "[";
    for (int i = 0; i < o.batch_size; ++i) {
      if (i > 0) b.push_back(',');
      std::string p = "{\"show_id\":" + std::to_string(1 + rng.Next() % shows) +
                      ",\"format\":\"" + kFormats[rng.Next() % std::size(kFormats)] +
                      "\",\"duration_s\":" + std::to_string(60 + rng.Next() % 7200) +
                      ",\"title\":\"" + text(40) + "\",\"description\":\"";
      const size_t want = static_cast<size_t>(o.payload_bytes);
      p += text(want > p.size() + 18 ? want - p.size() - 2 : 16);
      p += "\"}";
      b += p;
    }
    b.push_back(']');
    bodies.push_back(std::move(b));
  }
  return bodies;
}

// The server: started, killed and restarted on the same directory and port.
class Server {
 public:
  Server(const ReprocessBenchOptions& o, const std::string& root)
      : o_(o), data_dir_(root + "/strata"), log_(root + "/strata.log") {}
  ~Server() { (void)Stop(); }

  absl::Status Start() {
    if (port_ == 0) {
      STRATA_ASSIGN_OR_RETURN(port_, FreeLoopbackPort());
    }
    ChildSpec spec;
    spec.argv = {o_.strata_binary, "serve", "--data-dir", data_dir_, "--port",
                 std::to_string(port_)};
    const bool sets_log_level =
        std::any_of(o_.strata_args.begin(), o_.strata_args.end(),
                    [](const std::string& a) { return a.rfind("--log-level", 0) == 0; });
    if (!sets_log_level) spec.argv.insert(spec.argv.end(), {"--log-level", "warn"});
    spec.argv.insert(spec.argv.end(), o_.strata_args.begin(), o_.strata_args.end());
    for (char** e = environ; *e != nullptr; ++e) spec.env.emplace_back(*e);
    spec.log_path = log_;
    STRATA_ASSIGN_OR_RETURN(child_, ChildProcess::Start(spec));
    return WaitUntilReady(child_.get(), "strata", log_, kStartTimeoutS, [&] {
      http::Client c = NewClient("127.0.0.1", port(), 1000);
      auto r = c.Request("GET", "/healthz");
      return r.ok() && r->status == 200;
    });
  }
  void Kill() {
    if (child_) child_->Kill();
    child_.reset();
  }
  absl::Status Stop() {
    if (!child_) return absl::OkStatus();
    absl::Status s = child_->Stop(SIGTERM, kStopTimeoutS);
    child_.reset();
    return s;
  }
  uint16_t port() const { return static_cast<uint16_t>(port_); }
  pid_t pid() const { return child_ ? child_->pid() : 0; }
  const std::string& log() const { return log_; }

 private:
  const ReprocessBenchOptions& o_;
  const std::string data_dir_;
  const std::string log_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

// Per asset: the PATCHes sent and acknowledged (the oracle), and whether one is in flight.
struct Oracle {
  explicit Oracle(size_t n) : sent(n), acked(n), last_acked(n), busy(n) {}
  std::vector<uint32_t> sent;        // writes sent (= the last write number)
  std::vector<uint32_t> acked;       // writes acknowledged (2xx)
  std::vector<uint32_t> last_acked;  // the number of the last acknowledged write
  std::vector<std::atomic<uint8_t>> busy;
};

struct LoadStats {
  OpStats get, patch;
  uint64_t late = 0;
};

// The open-loop load until `end` or `*stop`: one arrival schedule at reads + writes per
// second, each arrival a GET or a PATCH (drawn from its number) of a uniformly drawn asset,
// taken by the next free of the connections.
class Load {
 public:
  Load(const ReprocessBenchOptions& o, const std::vector<std::string>& ids, Oracle* oracle,
       uint16_t port, uint64_t salt)
      : o_(o), ids_(ids), oracle_(oracle), port_(port), salt_(salt) {}

  // Runs the load on its threads from `start` (returns at once).
  void Begin(SteadyClock::time_point start, SteadyClock::time_point end) {
    end_ = end;
    schedule_ = std::make_unique<ArrivalSchedule>(start, end, o_.reads_per_s + o_.writes_per_s);
    stats_.assign(static_cast<size_t>(o_.load_connections), LoadStats{});
    for (int c = 0; c < o_.load_connections; ++c) {
      threads_.emplace_back([this, c] { Connection(static_cast<size_t>(c)); });
    }
  }
  // Waits for the end given to Begin, then End().
  LoadStats Finish() {
    std::this_thread::sleep_until(end_);
    return End();
  }
  // Stops taking arrivals and waits for the requests in flight.
  LoadStats End() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
    threads_.clear();
    LoadStats all;
    for (const LoadStats& s : stats_) {
      all.get.Merge(s.get);
      all.patch.Merge(s.patch);
      all.late += s.late;
    }
    return all;
  }

 private:
  void Connection(size_t c) {
    if (o_.client_slice_us > 0) ThreadPool::SetCurrentThreadSlice(o_.client_slice_us);
    http::Client client = NewClient("127.0.0.1", port_, o_.timeout_ms);
    const std::string prefix = std::string("/v1/assets/") + kType + "/";
    const double write_share = o_.writes_per_s / (o_.reads_per_s + o_.writes_per_s);
    const size_t n = ids_.size();
    LoadStats& st = stats_[c];
    while (!stop_.load(std::memory_order_relaxed)) {
      SteadyClock::time_point due;
      uint64_t k = 0;
      const ArrivalSchedule::Take take = schedule_->Next(&due, &k);
      if (take == ArrivalSchedule::Take::kDone) return;
      if (take == ArrivalSchedule::Take::kUnsent) continue;
      if (SleepUntilDue(due)) ++st.late;
      if (stop_.load(std::memory_order_relaxed)) return;
      const uint64_t r = Mix64(salt_ ^ (k * 0x9E3779B97F4A7C15ULL));
      const bool write = static_cast<double>(r >> 11) * 0x1.0p-53 < write_share;
      size_t i = static_cast<size_t>(Mix64(r) % n);
      if (!write) {
        auto resp = client.Request("GET", prefix + ids_[i]);
        st.get.Add(resp.ok() ? resp->status : 0, MicrosSince(due));
        if (!resp.ok()) client.Close();
        continue;
      }
      // One write of an asset in flight at a time, so write numbers are applied in order.
      while (oracle_->busy[i].exchange(1, std::memory_order_acquire) != 0) i = (i + 1) % n;
      const uint32_t number = ++oracle_->sent[i];
      auto resp = client.Request("PATCH", prefix + ids_[i],
                                 "{\"bench_n\":" + std::to_string(number) + "}");
      const int status = resp.ok() ? resp->status : 0;
      if (status >= 200 && status < 300) {
        ++oracle_->acked[i];
        oracle_->last_acked[i] = number;
      }
      oracle_->busy[i].store(0, std::memory_order_release);
      st.patch.Add(status, MicrosSince(due));
      if (!resp.ok()) client.Close();
    }
  }

  const ReprocessBenchOptions& o_;
  const std::vector<std::string>& ids_;
  Oracle* oracle_;
  const uint16_t port_;
  const uint64_t salt_;
  SteadyClock::time_point end_;
  std::unique_ptr<ArrivalSchedule> schedule_;
  std::vector<LoadStats> stats_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
};

// Creates every asset; the ids in creation order per request.
absl::Status CreateAll(const ReprocessBenchOptions& o, uint16_t port,
                       std::vector<std::string>* ids, ReprocessBenchReport* report,
                       std::ostream& out) {
  const size_t batches = static_cast<size_t>((o.assets + o.batch_size - 1) / o.batch_size);
  const std::vector<std::string> bodies = BuildBodies(o, std::min<size_t>(batches, 64));
  std::string tail;  // the last, shorter batch
  const uint64_t last = o.assets - static_cast<uint64_t>(batches - 1) * o.batch_size;
  if (last != static_cast<uint64_t>(o.batch_size)) {
    simdjson::dom::parser parser;
    simdjson::dom::array items;
    if (parser.parse(bodies[(batches - 1) % bodies.size()]).get_array().get(items) !=
        simdjson::SUCCESS) {
      return absl::InternalError("bench: could not re-read its own batch");
    }
    tail = "[";
    uint64_t k = 0;
    for (simdjson::dom::element e : items) {
      if (k++ == last) break;
      if (k > 1) tail.push_back(',');
      tail += simdjson::minify(e);
    }
    tail.push_back(']');
  }
  std::vector<std::vector<std::string>> got(batches);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> errors{0};
  std::mutex error_mu;
  std::string first_error;
  const auto t0 = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < o.create_connections; ++c) {
    threads.emplace_back([&] {
      if (o.client_slice_us > 0) ThreadPool::SetCurrentThreadSlice(o.client_slice_us);
      http::Client client = NewClient("127.0.0.1", port, o.timeout_ms);
      simdjson::dom::parser parser;
      const std::string path = std::string("/v1/assets/") + kType + ":batch";
      for (size_t b = next.fetch_add(1); b < batches; b = next.fetch_add(1)) {
        const std::string& body =
            b + 1 == batches && !tail.empty() ? tail : bodies[b % bodies.size()];
        auto r = client.Request("POST", path, body);
        simdjson::dom::array array;
        if (!r.ok() || r->status != 200 ||
            parser.parse(r->body).at_key("ids").get_array().get(array) != simdjson::SUCCESS) {
          ++errors;
          std::lock_guard<std::mutex> lock(error_mu);
          if (first_error.empty()) first_error = HttpError(r);
          continue;
        }
        for (simdjson::dom::element e : array) {
          std::string_view id;
          if (e.get_string().get(id) == simdjson::SUCCESS) got[b].emplace_back(id);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  report->create_s = SecondsSince(t0);
  ids->reserve(o.assets);
  for (auto& g : got) {
    for (auto& id : g) ids->push_back(std::move(id));
  }
  report->created = ids->size();
  out << "create: " << Thousands(report->created) << " assets in " << Fmt("%.1f", report->create_s)
      << " s (" << Thousands(static_cast<uint64_t>(report->created / report->create_s))
      << " assets/s, batches of " << o.batch_size << " on " << o.create_connections
      << " connections)\n"
      << std::flush;
  if (errors.load() > 0 || report->created != o.assets) {
    return absl::InternalError("create: " + std::to_string(errors.load()) +
                               " batches failed, " + std::to_string(report->created) + " of " +
                               std::to_string(o.assets) + " created; first error: " + first_error);
  }
  return absl::OkStatus();
}

uint64_t UintAt(const simdjson::simdjson_result<simdjson::dom::element>& e, const char* key) {
  uint64_t v = 0;
  if (e.at_key(key).get_uint64().get(v) != simdjson::SUCCESS) return 0;
  return v;
}

std::string Latency(const OpReport& r) {
  return Thousands(r.count) + " requests, p50 " + Fmt("%.2f", r.p50_ms) + " ms, p99 " +
         Fmt("%.2f", r.p99_ms) + " ms, p99.9 " + Fmt("%.2f", r.p999_ms) + " ms, max " +
         Fmt("%.1f", r.max_ms) + " ms, " + Thousands(r.errors) + " errors";
}

// What the server saw between two /metrics pages: how long writes waited for and held the
// row store's write slot (the load's PATCHes queue there behind the job's batches), and the
// asset route's own handling time (the rest of a request's latency is the connection's
// queue and the network). Empty when a page lacks the series (other row stores).
std::string ServerSide(const std::string& before, const std::string& after) {
  auto p = [&](std::string_view name, std::string_view labels) -> std::optional<std::string> {
    auto b = HistogramBuckets(before, name, labels);
    auto a = HistogramBuckets(after, name, labels);
    if (!a) return std::nullopt;
    const Histogram::Buckets d = b ? BucketsSince(*b, *a) : *a;
    uint64_t n = 0;
    for (uint64_t c : d) n += c;
    return Fmt("%.2f", Histogram::Quantile(d, 0.99) * 1e3) + " / " +
           Fmt("%.2f", Histogram::Quantile(d, 0.999) * 1e3) + " ms (" + Thousands(n) + ")";
  };
  std::string out;
  const auto wait = p("strata_rocksdb_write_wait_seconds", "");
  const auto hold = p("strata_rocksdb_write_hold_seconds", "");
  const std::string route = "route=\"/v1/assets/{type}/{id}\",method=";
  const auto get = p("strata_http_request_seconds", route + "\"GET\"");
  const auto patch = p("strata_http_request_seconds", route + "\"PATCH\"");
  if (wait && hold) out += "write slot wait p99 / p99.9 " + *wait + ", held " + *hold;
  if (get && patch) {
    out += std::string(out.empty() ? "" : "; ") + "handled GET " + *get + ", PATCH " + *patch;
  }
  return out;
}

void PrintStatuses(const OpReport& r, std::ostream& out) {
  if (r.errors == 0) return;
  out << "    " << r.name << " answers:";
  for (const auto& [status, n] : r.statuses) out << " " << status << "=" << n;
  out << "\n";
}

}  // namespace

absl::Status ValidateReprocessOptions(const ReprocessBenchOptions& o) {
  if (o.assets < 1 || o.assets > 100'000'000) {
    return absl::InvalidArgumentError("--assets: must be 1..100000000");
  }
  if (o.batch_size < 1 || o.batch_size > 10'000) {
    return absl::InvalidArgumentError("--batch: must be 1..10000");
  }
  if (o.payload_bytes < 200 || o.payload_bytes > 4000) {
    return absl::InvalidArgumentError("--payload-bytes: must be 200..4000");
  }
  if (o.create_connections < 1 || o.create_connections > 256) {
    return absl::InvalidArgumentError("--create-connections: must be 1..256");
  }
  if (!(o.reads_per_s >= 0) || o.reads_per_s > 1e6) {
    return absl::InvalidArgumentError("--reads-per-s: must be 0..1000000");
  }
  if (!(o.writes_per_s >= 0) || o.writes_per_s > 1e6) {
    return absl::InvalidArgumentError("--writes-per-s: must be 0..1000000");
  }
  if (o.reads_per_s + o.writes_per_s <= 0) {
    return absl::InvalidArgumentError("--reads-per-s, --writes-per-s: one must be > 0");
  }
  if (o.load_connections < 1 || o.load_connections > 256) {
    return absl::InvalidArgumentError("--load-connections: must be 1..256");
  }
  if (!(o.settle_s >= 0) || o.settle_s > 3600) {
    return absl::InvalidArgumentError("--settle-seconds: must be 0..3600");
  }
  if (!(o.warmup_s >= 0) || o.warmup_s > 3600) {
    return absl::InvalidArgumentError("--warmup-seconds: must be 0..3600");
  }
  if (!(o.idle_s > 0) || o.idle_s > 3600) {
    return absl::InvalidArgumentError("--idle-seconds: must be > 0 and <= 3600");
  }
  if (o.job_concurrency < 1 || o.job_concurrency > 64) {
    return absl::InvalidArgumentError("--job-concurrency: must be 1..64");
  }
  if (!(o.job_rate >= 0) || o.job_rate > 1e9) {
    return absl::InvalidArgumentError("--job-rate: must be 0 (unlimited)..1000000000");
  }
  if (!(o.kill_at >= 0) || o.kill_at >= 1) {
    return absl::InvalidArgumentError("--kill-at: must be 0 (never) or between 0 and 1");
  }
  if (!(o.max_job_s > 0)) return absl::InvalidArgumentError("--max-job-seconds: must be > 0");
  if (o.client_slice_us < 0 || o.client_slice_us > 100000) {
    return absl::InvalidArgumentError("--client-slice-us: must be 0..100000");
  }
  return CheckStrataArgs(o.strata_args, "--strata-arg");
}

absl::StatusOr<ReprocessBenchReport> RunReprocessBench(const ReprocessBenchOptions& o,
                                                       std::ostream& out) {
  STRATA_RETURN_IF_ERROR(ValidateReprocessOptions(o));
  STRATA_ASSIGN_OR_RETURN(auto dir, WorkDir::Create(o.work_dir, o.keep_dirs, "strata-reprocess"));
  out << "strata bench reprocess\n"
      << "command: " << CommandLine() << "\n"
      << "machine: " << Machine(dir->path()) << "\n"
      << std::flush;
  ReprocessBenchReport report;
  Server server(o, dir->path());
  STRATA_RETURN_IF_ERROR(server.Start());
  http::Client control = NewClient("127.0.0.1", server.port(), o.timeout_ms);
  {
    auto r = control.Request("PUT", std::string("/v1/asset-types/") + kType, TypeDefinition());
    if (!r.ok() || r->status != 200) {
      return absl::InternalError("PUT /v1/asset-types/bench: " + HttpError(r));
    }
  }
  std::vector<std::string> ids;
  STRATA_RETURN_IF_ERROR(CreateAll(o, server.port(), &ids, &report, out));
  Oracle oracle(ids.size());

  // Settle: the idle figure is the settled store's (a store still compacting the creates
  // would make "idle" slow and every ratio against it look better than it is).
  if (o.settle_s > 0) {
    const auto t0 = SteadyClock::now();
    std::optional<double> debt, running;
    for (;;) {
      if (auto m = control.Request("GET", "/metrics"); m.ok() && m->status == 200) {
        debt = MetricValue(m->body, "strata_rocksdb_pending_compaction_bytes");
        const std::optional<double> compactions =
            MetricValue(m->body, "strata_rocksdb_running_compactions");
        const std::optional<double> flushes =
            MetricValue(m->body, "strata_rocksdb_running_flushes");
        running = compactions && flushes ? std::optional<double>(*compactions + *flushes)
                                         : std::nullopt;
      }
      const double waited = std::chrono::duration<double>(SteadyClock::now() - t0).count();
      const bool settled = debt && *debt <= 0 && running && *running <= 0;
      // Only a row store that reports these can be waited for (the distributed ones don't).
      if (settled || !debt || !running || waited >= o.settle_s) {
        out << "settle: " << Fmt("%.1f", waited) << " s, compaction debt "
            << (debt ? Thousands(static_cast<uint64_t>(*debt)) + " bytes" : "not reported")
            << ", flushes and compactions running "
            << (running ? Thousands(static_cast<uint64_t>(*running)) : std::string("not reported"))
            << (debt && running && !settled ? " (gave up waiting)" : "") << "\n"
            << std::flush;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }

  // Warm-up, then idle.
  auto seconds = [](double s) {
    return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s));
  };
  out << "load: " << Fmt("%.0f", o.reads_per_s) << " GET/s + " << Fmt("%.0f", o.writes_per_s)
      << " PATCH/s (open loop, " << o.load_connections << " connections)\n"
      << std::flush;
  if (o.warmup_s > 0) {
    Load warm(o, ids, &oracle, server.port(), o.seed ^ 0x1111);
    const auto start = SteadyClock::now() + std::chrono::milliseconds(20);
    warm.Begin(start, start + seconds(o.warmup_s));
    (void)warm.Finish();
  }
  auto scrape = [&control]() -> std::string {
    auto m = control.Request("GET", "/metrics");
    return m.ok() && m->status == 200 ? m->body : std::string();
  };
  const std::string idle_metrics = scrape();
  {
    Load idle(o, ids, &oracle, server.port(), o.seed ^ 0x2222);
    const auto start = SteadyClock::now() + std::chrono::milliseconds(20);
    idle.Begin(start, start + seconds(o.idle_s));
    LoadStats s = idle.Finish();
    OpStats all = s.get;
    all.Merge(s.patch);
    report.idle_get = MakeOpReport("GET", s.get, o.idle_s);
    report.idle_patch = MakeOpReport("PATCH", s.patch, o.idle_s);
    report.idle_all = MakeOpReport("all", all, o.idle_s);
    report.idle_late = s.late;
  }
  out << "idle (" << Fmt("%.0f", o.idle_s) << " s):\n"
      << "  GET   " << Latency(report.idle_get) << "\n"
      << "  PATCH " << Latency(report.idle_patch) << "\n"
      << "  all   " << Latency(report.idle_all) << "; " << Thousands(report.idle_late)
      << " late\n"
      << std::flush;
  PrintStatuses(report.idle_get, out);
  PrintStatuses(report.idle_patch, out);
  const std::string job_metrics = scrape();
  if (std::string server_side = ServerSide(idle_metrics, job_metrics); !server_side.empty()) {
    out << "  server: " << server_side << "\n" << std::flush;
  }

  // The job, with the load running.
  Load load(o, ids, &oracle, server.port(), o.seed ^ 0x3333);
  const auto load_start = SteadyClock::now() + std::chrono::milliseconds(20);
  load.Begin(load_start, load_start + seconds(o.max_job_s + 120));
  std::this_thread::sleep_until(load_start);
  const std::string job_body =
      std::string("{\"type\":\"") + kType +
      "\",\"processor\":{\"kind\":\"set\",\"path\":\"/reprocessed\",\"value\":\"" + kJobValue +
      "\"},\"concurrency\":" + std::to_string(o.job_concurrency) +
      (o.job_rate > 0 ? ",\"rate\":" + Fmt("%.0f", o.job_rate) : std::string()) +
      (o.job_adaptive ? ",\"adaptive\":true" : "") + "}";
  // The server's CPU by thread over the job: the job's workers, the load's HTTP threads,
  // RocksDB's flushes (rocksdb:high) and compactions (rocksdb:low). Sampled at every poll
  // while the job runs (its worker threads exit when it ends), the last sample kept.
  const std::map<std::string, double> roles0 = ThreadCpuSecondsByRole(server.pid());
  std::map<std::string, double> roles1;
  uint64_t processed_at_roles1 = 0;
  const auto job_t0 = SteadyClock::now();
  auto submitted = control.Request("POST", "/v1/reprocess/jobs", job_body);
  simdjson::dom::parser parser;
  uint64_t job_id = 0;
  if (!submitted.ok() || submitted->status != 201 ||
      parser.parse(submitted->body).at_key("id").get_uint64().get(job_id) != simdjson::SUCCESS) {
    (void)load.End();
    return absl::InternalError("POST /v1/reprocess/jobs: " + HttpError(submitted));
  }
  out << "job " << job_id << ": " << job_body << "\n" << std::flush;
  std::string final_body;
  std::vector<std::pair<double, double>> kill_windows;  // (from, to) seconds after the POST
  double last_print = 0;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const double now_s = SecondsSince(job_t0);
    if (now_s > o.max_job_s) break;
    auto r = control.Request("GET", "/v1/reprocess/jobs/" + std::to_string(job_id));
    if (!r.ok() || r->status != 200) {
      control.Close();
      continue;
    }
    simdjson::dom::element job;
    if (parser.parse(r->body).get(job) != simdjson::SUCCESS) continue;
    std::string_view state;
    if (job.at_key("state").get_string().get(state) != simdjson::SUCCESS) state = "";
    const uint64_t processed = UintAt(job.at_key("counts"), "processed");
    const uint64_t selected = UintAt(job.at_key("counts"), "selected");
    if (state == "succeeded" || state == "failed" || state == "cancelled") {
      report.job_s = now_s;
      final_body = r->body;
      break;
    }
    if (state == "running" && report.kills == 0) {
      roles1 = ThreadCpuSecondsByRole(server.pid());
      processed_at_roles1 = processed;
    }
    if (now_s - last_print >= 5) {
      out << "  " << Fmt("%.0f", now_s) << " s: " << state << ", " << Thousands(processed)
          << " of " << Thousands(selected) << " processed";
      // The server's adaptive rate for jobs, and its decisions so far.
      if (auto m = control.Request("GET", "/metrics"); m.ok() && m->status == 200) {
        const std::optional<double> rate = MetricValue(m->body, "strata_reprocess_throttle_rate");
        const std::optional<double> lat = MetricValue(
            m->body, "strata_reprocess_throttle_decisions{decision=\"latency_cut\"}");
        const std::optional<double> load = MetricValue(
            m->body, "strata_reprocess_throttle_decisions{decision=\"load_cut\"}");
        if (rate && o.job_adaptive) {
          out << "; adaptive rate " << Thousands(static_cast<uint64_t>(*rate)) << "/s ("
              << Fmt("%.0f", lat.value_or(0)) << " latency cuts, " << Fmt("%.0f", load.value_or(0))
              << " store-load cuts)";
        }
      }
      out << "\n" << std::flush;
      last_print = now_s;
    }
    if (o.kill_at > 0 && report.kills == 0 && state == "running" &&
        static_cast<double>(processed) >= o.kill_at * static_cast<double>(o.assets)) {
      out << "  " << Fmt("%.1f", now_s) << " s: kill -9 at " << Thousands(processed)
          << " processed\n"
          << std::flush;
      const auto k0 = SteadyClock::now();
      server.Kill();
      ++report.kills;
      STRATA_RETURN_IF_ERROR(server.Start());
      report.restart_s = SecondsSince(k0);
      kill_windows.emplace_back(now_s, SecondsSince(job_t0));
      control.Close();
      out << "  restarted in " << Fmt("%.1f", report.restart_s) << " s\n" << std::flush;
    }
  }
  std::vector<std::pair<std::string, double>> job_cpu;  // role, CPU seconds while running
  if (report.kills == 0) {
    for (const auto& [role, seconds] : roles1) {
      const auto before = roles0.find(role);
      const double used = seconds - (before == roles0.end() ? 0.0 : before->second);
      if (used > 0) job_cpu.emplace_back(role, used);
    }
    std::sort(job_cpu.begin(), job_cpu.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
  }
  LoadStats during = load.End();
  const double load_s = SecondsSince(load_start);
  {
    OpStats all = during.get;
    all.Merge(during.patch);
    report.job_get = MakeOpReport("GET", during.get, load_s);
    report.job_patch = MakeOpReport("PATCH", during.patch, load_s);
    report.job_all = MakeOpReport("all", all, load_s);
    report.job_late = during.late;
  }
  if (final_body.empty()) {
    report.job_state = "not final after --max-job-seconds";
  } else {
    simdjson::dom::element job;
    if (parser.parse(final_body).get(job) == simdjson::SUCCESS) {
      std::string_view state;
      if (job.at_key("state").get_string().get(state) != simdjson::SUCCESS) state = "";
      report.job_state = std::string(state);
      auto c = job.at_key("counts");
      report.selected = UintAt(c, "selected");
      report.processed = UintAt(c, "processed");
      report.changed = UintAt(c, "changed");
      report.unchanged = UintAt(c, "unchanged");
      report.conflicts_retried = UintAt(c, "conflicts_retried");
      report.failed = UintAt(c, "failed");
      report.dead_lettered = UintAt(c, "dead_lettered");
    }
  }
  // Assets/s over the selection: every asset, as the oracle checks (the job's `selected`
  // can count a page twice after a crash during planning).
  report.job_per_s = report.job_s > 0 ? static_cast<double>(report.created) / report.job_s : 0;
  out << "job: " << report.job_state << ", " << Thousands(report.created) << " assets in "
      << Fmt("%.1f", report.job_s) << " s from the POST: "
      << Thousands(static_cast<uint64_t>(report.job_per_s)) << " assets/s\n"
      << "  counts: selected " << Thousands(report.selected) << ", processed "
      << Thousands(report.processed) << ", changed " << Thousands(report.changed)
      << ", unchanged " << Thousands(report.unchanged) << ", conflicts retried "
      << Thousands(report.conflicts_retried) << ", failed " << Thousands(report.failed)
      << ", dead-lettered " << Thousands(report.dead_lettered) << "\n";
  if (!job_cpu.empty() && processed_at_roles1 > 0) {
    // Per asset processed by the last sample, the load's share included (threads that
    // exited meanwhile are missing; the largest roles are what matters).
    double total = 0;
    for (const auto& [role, seconds] : job_cpu) total += seconds;
    const double per_asset = 1e6 / static_cast<double>(processed_at_roles1);
    out << "  server CPU over the job: " << Fmt("%.1f", total * per_asset)
        << " us per asset, by thread:";
    for (size_t i = 0; i < job_cpu.size() && i < 8; ++i) {
      out << (i == 0 ? " " : ", ") << job_cpu[i].first << " "
          << Fmt("%.1f", job_cpu[i].second * per_asset);
    }
    out << "\n";
  }
  out << "during the job (" << Fmt("%.1f", load_s) << " s"
      << (report.kills > 0 ? ", including the kill and restart" : "") << "):\n"
      << "  GET   " << Latency(report.job_get) << "\n"
      << "  PATCH " << Latency(report.job_patch) << "\n"
      << "  all   " << Latency(report.job_all) << "; " << Thousands(report.job_late)
      << " late\n"
      << std::flush;
  PrintStatuses(report.job_get, out);
  PrintStatuses(report.job_patch, out);
  if (report.kills == 0) {  // a restarted server's histograms start again
    if (std::string server_side = ServerSide(job_metrics, scrape()); !server_side.empty()) {
      out << "  server: " << server_side << "\n" << std::flush;
    }
  }

  // The oracle: every asset read back.
  const auto o0 = SteadyClock::now();
  std::unordered_map<std::string_view, uint32_t> index;
  index.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) index.emplace(ids[i], static_cast<uint32_t>(i));
  std::vector<uint8_t> seen(ids.size(), 0);
  std::string cursor;
  bool read_failed = false;
  std::string read_error;
  uint64_t examples = 0;
  auto example = [&](const std::string& line) {
    if (examples++ < 5) out << "  oracle: " << line << "\n";
  };
  for (;;) {
    std::string target = std::string("/v1/assets/") + kType + "?limit=1000";
    if (!cursor.empty()) target += "&cursor=" + http::UrlEncode(cursor);
    auto r = control.Request("GET", target);
    simdjson::dom::element page;
    simdjson::dom::array assets;
    if (!r.ok() || r->status != 200 || parser.parse(r->body).get(page) != simdjson::SUCCESS ||
        page.at_key("assets").get_array().get(assets) != simdjson::SUCCESS) {
      read_failed = true;
      read_error = HttpError(r);
      break;
    }
    for (simdjson::dom::element a : assets) {
      ++report.read_back;
      std::string_view id;
      if (a.at_key("id").get_string().get(id) != simdjson::SUCCESS) id = "";
      auto it = index.find(id);
      if (it == index.end()) {
        ++report.unknown;
        continue;
      }
      const uint32_t i = it->second;
      if (seen[i]++ > 0) {
        ++report.duplicates;
        continue;
      }
      uint64_t version = 0;
      if (a.at_key("version").get_uint64().get(version) != simdjson::SUCCESS) version = 0;
      auto payload = a.at_key("payload");
      std::string_view mark;
      if (payload.at_key("reprocessed").get_string().get(mark) != simdjson::SUCCESS ||
          mark != kJobValue) {
        ++report.not_processed;
        example(std::string(id) + ": /reprocessed not set by the job");
      }
      const uint64_t n = UintAt(payload, "bench_n");
      if (n < oracle.last_acked[i] || n > oracle.sent[i]) {
        ++report.lost_updates;
        example(std::string(id) + ": bench_n " + std::to_string(n) + ", last acknowledged " +
                std::to_string(oracle.last_acked[i]) + ", sent " +
                std::to_string(oracle.sent[i]));
      }
      if (version < 2 + static_cast<uint64_t>(oracle.acked[i]) ||
          version > 2 + static_cast<uint64_t>(oracle.sent[i])) {
        ++report.bad_versions;
        example(std::string(id) + ": version " + std::to_string(version) + ", expected " +
                std::to_string(2 + oracle.acked[i]) + ".." + std::to_string(2 + oracle.sent[i]) +
                " (create + job + writes)");
      }
    }
    std::string_view next;
    if (page.at_key("next_cursor").get_string().get(next) != simdjson::SUCCESS || next.empty()) {
      break;
    }
    cursor = std::string(next);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (seen[i] == 0) ++report.missing;
    if (oracle.sent[i] > 0) ++report.written_assets;
    report.writes_acked += oracle.acked[i];
    report.writes_unacked += oracle.sent[i] - oracle.acked[i];
  }
  report.oracle_passed = !read_failed && report.missing == 0 && report.duplicates == 0 &&
                         report.unknown == 0 && report.not_processed == 0 &&
                         report.lost_updates == 0 && report.bad_versions == 0 &&
                         report.read_back == ids.size();
  out << "oracle (" << Fmt("%.1f", SecondsSince(o0)) << " s): "
      << (report.oracle_passed ? "PASS" : "FAIL") << ": " << Thousands(report.read_back)
      << " assets read back, " << Thousands(report.missing) << " missing, "
      << Thousands(report.duplicates) << " twice, " << Thousands(report.unknown)
      << " unknown; /reprocessed missing on " << Thousands(report.not_processed) << "; "
      << Thousands(report.written_assets) << " assets written by the load ("
      << Thousands(report.writes_acked) << " writes acknowledged, "
      << Thousands(report.writes_unacked) << " not), lost updates "
      << Thousands(report.lost_updates) << "; versions not create + 1 job write + the writes: "
      << Thousands(report.bad_versions) << "\n";
  if (read_failed) out << "  oracle: reading back failed: " << read_error << "\n";

  // The verdicts.
  const double ratio =
      report.idle_all.p99_ms > 0 ? report.job_all.p99_ms / report.idle_all.p99_ms : 0;
  const double get_ratio =
      report.idle_get.p99_ms > 0 ? report.job_get.p99_ms / report.idle_get.p99_ms : 0;
  const double patch_ratio =
      report.idle_patch.p99_ms > 0 ? report.job_patch.p99_ms / report.idle_patch.p99_ms : 0;
  out << "\nsummary\n"
      << "  job: " << Thousands(static_cast<uint64_t>(report.job_per_s))
      << " assets/s (goal >= " << Thousands(static_cast<uint64_t>(kGoalJobPerS)) << "): "
      << (report.job_per_s >= kGoalJobPerS ? "met" : "NOT met") << "\n"
      << "  load p99 during the job / idle: all " << Fmt("%.2f", report.job_all.p99_ms) << " / "
      << Fmt("%.2f", report.idle_all.p99_ms) << " ms = x" << Fmt("%.2f", ratio) << " (GET x"
      << Fmt("%.2f", get_ratio) << ", PATCH x" << Fmt("%.2f", patch_ratio) << "; goal <= x"
      << Fmt("%.1f", kGoalP99Ratio) << "): "
      << (report.kills > 0 ? "not judged (the server was killed)"
                           : (ratio > 0 && ratio <= kGoalP99Ratio ? "met" : "NOT met"))
      << "\n"
      << "  p50 during / idle: x"
      << Fmt("%.2f", report.idle_all.p50_ms > 0 ? report.job_all.p50_ms / report.idle_all.p50_ms
                                                : 0)
      << "; p99.9 during / idle: x"
      << Fmt("%.2f", report.idle_all.p999_ms > 0
                         ? report.job_all.p999_ms / report.idle_all.p999_ms
                         : 0)
      << "\n"
      << "  oracle (no lost update, every asset processed exactly once in effect): "
      << (report.oracle_passed ? "PASS" : "FAIL") << "\n";
  if (report.kills > 0) {
    out << "  kill -9 at " << Fmt("%.0f", 100 * o.kill_at) << "% processed, restart "
        << Fmt("%.1f", report.restart_s) << " s; the job "
        << (report.job_state == "succeeded" ? "resumed and succeeded" : "did NOT succeed")
        << "\n";
  }
  // Load errors are expected only while the server is down (kill mode).
  const bool load_clean = report.kills > 0 || (report.job_all.errors == 0 &&
                                               report.idle_all.errors == 0);
  report.passed = report.job_state == "succeeded" && report.oracle_passed && load_clean;
  out << "result: " << (report.passed ? "PASS" : "FAIL") << "\n";
  if (o.keep_dirs) out << "data kept in " << dir->path() << " (server log " << server.log() << ")\n";
  (void)server.Stop();
  return report;
}

}  // namespace strata::bench
