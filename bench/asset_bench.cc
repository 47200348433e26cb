#include "bench/asset_bench.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>

#include "bench/child_process.h"
#include "bench/load_driver.h"
#include "bench/pg_client.h"
#include "bench/run_support.h"
#include "bench/viewing_bench_internal.h"
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
constexpr double kBusyMachineShare = 0.25;
constexpr const char* kFormats[] = {"sd", "hd", "fhd", "4k"};

// Issue 15's goals.
constexpr double kGoalCreatePerS = 100'000;
constexpr double kGoalCreateVsPg = 2.0;
constexpr double kGoalSearchP99Ms = 2.0;
constexpr double kGoalPageIdsPerS = 1'000'000;

// ---- The workload ----------------------------------------------------------------------------

struct AssetWorkload {
  uint64_t shows = 1;
  size_t batches = 0;                              // of the run
  std::vector<std::vector<std::string>> payloads;  // distinct batches of payload JSON texts
  std::vector<uint64_t> searches;                  // show ids, in arrival order
  std::vector<uint64_t> warmup;                    // warmup_searches per connection
  uint64_t payload_bytes = 0;                      // total of the distinct payloads
  uint64_t distinct_payloads = 0;

  // Payloads of the run's batch b.
  size_t Size(size_t b, const AssetBenchOptions& o) const {
    const uint64_t first = static_cast<uint64_t>(b) * o.batch_size;
    return static_cast<size_t>(std::min<uint64_t>(o.batch_size, o.assets - first));
  }
  const std::vector<std::string>& Distinct(size_t b) const { return payloads[b % payloads.size()]; }
};

// ~120 pseudo-words of 3-9 letters: filler text that compresses like prose, not like zeros.
std::vector<std::string> Words(Rng& rng) {
  std::vector<std::string> words;
  for (int i = 0; i < 120; ++i) {
    std::string w;
    const int n = 3 + static_cast<int>(rng.Next() % 7);
    for (int j = 0; j < n; ++j) w.push_back(static_cast<char>('a' + rng.Next() % 26));
    words.push_back(std::move(w));
  }
  return words;
}

std::string Payload(Rng& rng, const std::vector<std::string>& words, uint64_t shows,
                    int target_bytes) {
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
  std::string p = "{\"show_id\":" + std::to_string(1 + rng.Next() % shows) + ",\"format\":\"" +
                  kFormats[rng.Next() % std::size(kFormats)] +
                  "\",\"duration_s\":" + std::to_string(60 + rng.Next() % 7200) +
                  ",\"season\":" + std::to_string(1 + rng.Next() % 12) +
                  ",\"episode\":" + std::to_string(1 + rng.Next() % 24) + ",\"title\":\"" +
                  text(40) + "\",\"language\":\"" + (rng.Chance(0.6) ? "en" : "fr") +
                  "\",\"rating\":" + std::to_string(rng.Next() % 100) + ".5,\"tags\":[\"" +
                  text(12) + "\",\"" + text(12) + "\",\"" + text(12) + "\"],\"description\":\"";
  const size_t tail = 2;  // "}
  const size_t want = static_cast<size_t>(target_bytes);
  p += text(want > p.size() + tail + 16 ? want - p.size() - tail : 16);
  p += "\"}";
  return p;
}

AssetWorkload Generate(const AssetBenchOptions& o, std::ostream& out) {
  const auto t0 = SteadyClock::now();
  AssetWorkload w;
  Rng rng(Mix64(o.seed));
  const std::vector<std::string> words = Words(rng);
  w.shows = std::max<uint64_t>(1, o.assets / o.assets_per_show);
  w.batches = static_cast<size_t>((o.assets + o.batch_size - 1) / o.batch_size);
  const size_t distinct = std::min<size_t>(w.batches, static_cast<size_t>(o.distinct_batches));
  w.payloads.resize(distinct);
  for (size_t d = 0; d < distinct; ++d) {
    w.payloads[d].reserve(static_cast<size_t>(o.batch_size));
    for (int i = 0; i < o.batch_size; ++i) {
      w.payloads[d].push_back(Payload(rng, words, w.shows, o.payload_bytes));
      w.payload_bytes += w.payloads[d].back().size();
      ++w.distinct_payloads;
    }
  }
  Rng reads(Mix64(o.seed ^ 0x5EA4C));
  w.searches.resize(static_cast<size_t>(std::ceil(o.search_rate * o.search_s)) + 1);
  for (auto& s : w.searches) s = 1 + reads.Next() % w.shows;
  w.warmup.resize(static_cast<size_t>(o.search_connections) * o.warmup_searches);
  for (auto& s : w.warmup) s = 1 + reads.Next() % w.shows;
  out << "workload: " << Thousands(o.assets) << " assets in " << Thousands(w.batches)
      << " batches of " << o.batch_size << " (" << Thousands(w.distinct_payloads)
      << " distinct payloads, mean "
      << Fmt("%.0f",
             static_cast<double>(w.payload_bytes) / std::max<uint64_t>(w.distinct_payloads, 1))
      << " bytes, cycled); " << Thousands(w.shows) << " shows (~" << o.assets_per_show
      << " assets each); " << Thousands(w.searches.size()) << " searches; generated in "
      << Fmt("%.1f", SecondsSince(t0)) << " s\n";
  return w;
}

// RFC 9562 version 7 text ids for PostgreSQL rows, made by the bench (PostgreSQL 15 has no
// generator): 48-bit milliseconds, then a process-wide counter, then random bits. Unique in
// the run; time-ordered like Strata's.
class IdMaker {
 public:
  std::string Next() {
    const uint64_t ms =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    const uint64_t seq = counter_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t hi = (ms << 16) | 0x7000 | ((seq >> 30) & 0xFFF);
    const uint64_t lo =
        0x8000000000000000ULL | ((seq & 0x3FFFFFFF) << 32) | (Mix64(seq) & 0xFFFFFFFFULL);
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                  static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                  static_cast<unsigned>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
    return buf;
  }

 private:
  std::atomic<uint64_t> counter_{0};
};

// ---- The systems -----------------------------------------------------------------------------

// One client connection, used by one thread. Codes: 200 = done; else an error (0 = transport).
class AssetConnection {
 public:
  virtual ~AssetConnection() = default;
  // Creates the run's batch `b`; *created and *rejected from the answer.
  virtual int Create(size_t b, uint64_t* created, uint64_t* rejected) = 0;
  // The newest search_limit assets of `show`; *rows = assets returned.
  virtual int Search(uint64_t show, size_t* rows) = 0;
  // One page after `cursor` ("" = the first); *rows = assets, *next = the next cursor ("" =
  // none).
  virtual int Page(const std::string& cursor, size_t* rows, std::string* next) = 0;
  std::string last_error;
};

class AssetSystem {
 public:
  virtual ~AssetSystem() = default;
  virtual std::string name() const = 0;
  virtual void BuildPayloads(const AssetWorkload& w, std::ostream& out) = 0;
  virtual void DropPayloads() = 0;
  // Starts the server in a fresh directory, waits until it answers, and defines the type or
  // table.
  virtual absl::Status Start() = 0;
  virtual absl::Status Stop() = 0;
  virtual pid_t pid() const = 0;
  virtual absl::StatusOr<std::unique_ptr<AssetConnection>> Connect() = 0;
  // Bytes on disk per the comparison's rules, and the WAL's (see AssetSystemRun).
  virtual absl::StatusOr<std::pair<uint64_t, uint64_t>> Size() = 0;
  virtual std::vector<std::string> Settings() = 0;
  // Untimed work after the load; a line saying what, or "".
  virtual std::string AfterLoad() { return ""; }
  // How the search is executed, or "".
  virtual std::string SearchPlan(uint64_t show) { return ""; }
  // Background work still under way as the search phase starts (it shares the CPU with
  // the searches), or "".
  virtual std::string BackgroundWork() { return ""; }
  virtual std::string log_path() const = 0;
};

std::string HttpError(const absl::StatusOr<http::ClientResponse>& r) {
  if (!r.ok()) return r.status().ToString();
  return "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300);
}

// The type definition: the three indexed fields, typed, and the rest of the payload.
std::string TypeDefinition() {
  return R"({"schema":{"type":"object","required":["show_id","format","duration_s"],)"
         R"("properties":{"show_id":{"type":"integer","minimum":1},)"
         R"("format":{"type":"string","enum":["sd","hd","fhd","4k"]},)"
         R"("duration_s":{"type":"integer","minimum":0,"maximum":86400},)"
         R"("season":{"type":"integer"},"episode":{"type":"integer"},)"
         R"("title":{"type":"string","maxLength":200},"language":{"type":"string"},)"
         R"("rating":{"type":"number"},"tags":{"type":"array","items":{"type":"string"}},)"
         R"("description":{"type":"string","maxLength":4096}}},)"
         R"("indexed":["/show_id","/format","/duration_s"],"bucket":"day"})";
}

// The value of the last `"next_cursor":"..."` of a page (it ends the answer), or "".
std::string PageCursor(std::string_view body) {
  constexpr std::string_view kKey = "\"next_cursor\":\"";
  const size_t at = body.rfind(kKey);
  if (at == std::string_view::npos) return "";
  const size_t from = at + kKey.size();
  const size_t end = body.find('"', from);
  if (end == std::string_view::npos) return "";
  return std::string(body.substr(from, end - from));
}

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// ---- Strata ----

class StrataAssets final : public AssetSystem {
 public:
  StrataAssets(const AssetBenchOptions& o, const std::string& root)
      : o_(o), data_dir_(root + "/strata"), log_(root + "/strata.log") {}
  std::string name() const override { return "Strata"; }
  std::string log_path() const override { return log_; }

  void BuildPayloads(const AssetWorkload& w, std::ostream& out) override {
    const auto t0 = SteadyClock::now();
    auto body = [](const std::vector<std::string>& payloads, size_t n) {
      std::string b = "[";
      for (size_t i = 0; i < n; ++i) {
        if (i > 0) b.push_back(',');
        b += payloads[i];
      }
      b.push_back(']');
      return b;
    };
    bodies_.clear();
    uint64_t bytes = 0;
    for (const auto& p : w.payloads) {
      bodies_.push_back(body(p, p.size()));
      bytes += bodies_.back().size();
    }
    batches_ = w.batches;
    const size_t last = w.Size(w.batches - 1, o_);
    tail_ = body(w.Distinct(w.batches - 1), last);
    out << "payloads: " << bodies_.size() << " JSON array bodies, " << MiB(bytes)
        << " MiB, built in " << Fmt("%.1f", SecondsSince(t0)) << " s\n";
  }
  void DropPayloads() override {
    std::vector<std::string>().swap(bodies_);
    tail_.clear();
  }
  const std::string& Body(size_t b) const {
    return b + 1 == batches_ ? tail_ : bodies_[b % bodies_.size()];
  }

  absl::Status Start() override {
    STRATA_ASSIGN_OR_RETURN(port_, FreeLoopbackPort());
    ChildSpec spec;
    spec.argv = {o_.strata_binary, "serve",  "--data-dir",
                 data_dir_,        "--port", std::to_string(port_)};
    // --log-level warn unless a --strata-arg sets it (debug logs RocksDB's flushes and
    // compactions, for looking into a run).
    if (!SetsLogLevel()) spec.argv.insert(spec.argv.end(), {"--log-level", "warn"});
    spec.argv.insert(spec.argv.end(), o_.strata_args.begin(), o_.strata_args.end());
    for (char** e = environ; *e != nullptr; ++e) spec.env.emplace_back(*e);
    spec.log_path = log_;
    STRATA_ASSIGN_OR_RETURN(child_, ChildProcess::Start(spec));
    STRATA_RETURN_IF_ERROR(WaitUntilReady(child_.get(), "Strata", log_, kStartTimeoutS, [&] {
      http::Client c = NewClient("127.0.0.1", port(), 1000);
      auto r = c.Request("GET", "/healthz");
      return r.ok() && r->status == 200;
    }));
    http::Client c = NewClient("127.0.0.1", port(), o_.timeout_ms);
    auto r = c.Request("PUT", std::string("/v1/asset-types/") + kType, TypeDefinition());
    if (!r.ok() || r->status != 200) {
      return absl::InternalError("PUT /v1/asset-types/" + std::string(kType) + ": " + HttpError(r));
    }
    return absl::OkStatus();
  }
  absl::Status Stop() override {
    if (!child_) return absl::OkStatus();
    absl::Status s = child_->Stop(SIGTERM, kStopTimeoutS);
    child_.reset();
    return s;
  }
  pid_t pid() const override { return child_ ? child_->pid() : -1; }
  absl::StatusOr<std::unique_ptr<AssetConnection>> Connect() override;
  absl::StatusOr<std::pair<uint64_t, uint64_t>> Size() override {
    return std::make_pair(MeasureDirectory(data_dir_, "").total,
                          MeasureDirectory(data_dir_ + "/rows", ".log").matching);
  }
  std::vector<std::string> Settings() override {
    std::string args;
    for (const auto& a : o_.strata_args) args += " " + a;
    return {"server: " + o_.strata_binary + " serve --data-dir " + data_dir_ + " --port " +
                std::to_string(port_) + (SetsLogLevel() ? "" : " --log-level warn") + args,
            "type: PUT /v1/asset-types/bench, indexed /show_id /format /duration_s, bucket day",
            "durability: the server's --sync setting (default periodic: the WAL is fsynced every "
            "100 ms; PostgreSQL syncs each commit)"};
  }

  std::string AfterLoad() override {
    if (!o_.settle) return "";
    const auto t0 = SteadyClock::now();
    http::Client c = NewClient("127.0.0.1", port(), 600'000);
    auto r = c.Request("POST", "/v1/admin/compact?wait=true");
    if (!r.ok() || r->status != 200) {
      return "POST /v1/admin/compact?wait=true failed: " + HttpError(r);
    }
    return "POST /v1/admin/compact after the load (untimed, --settle): " +
           Fmt("%.1f", SecondsSince(t0)) + " s";
  }

  std::string BackgroundWork() override {
    http::Client c = NewClient("127.0.0.1", port(), 10'000);
    auto r = c.Request("GET", "/metrics");
    if (!r.ok() || r->status != 200) return "";
    const std::optional<double> debt =
        MetricValue(r->body, "strata_rocksdb_pending_compaction_bytes");
    const std::optional<double> running =
        MetricValue(r->body, "strata_rocksdb_running_compactions");
    if (!debt || !running) return "";
    return "compaction debt " + Fmt("%.1f", *debt / (1 << 20)) + " MiB, " + Fmt("%.0f", *running) +
           " compactions running (the load's; they share the CPU with "
           "the searches unless --settle compacts first)";
  }

  uint16_t port() const { return static_cast<uint16_t>(port_); }
  const AssetBenchOptions& options() const { return o_; }

 private:
  bool SetsLogLevel() const {
    return std::any_of(o_.strata_args.begin(), o_.strata_args.end(),
                       [](const std::string& a) { return a.rfind("--log-level", 0) == 0; });
  }

  const AssetBenchOptions& o_;
  const std::string data_dir_;
  const std::string log_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::vector<std::string> bodies_;
  std::string tail_;
  size_t batches_ = 0;
};

class StrataAssetConnection final : public AssetConnection {
 public:
  explicit StrataAssetConnection(StrataAssets* sys)
      : sys_(sys), client_(NewClient("127.0.0.1", sys->port(), sys->options().timeout_ms)) {
    batch_path_ = std::string("/v1/assets/") + kType + ":batch";
    list_path_ = std::string("/v1/assets/") + kType;
    limit_ = std::to_string(sys->options().search_limit);
    page_limit_ = std::to_string(sys->options().page_limit);
    ids_only_ = sys->options().page_fields == "id";
    if (ids_only_) page_limit_ += "&fields=id";
  }

  int Create(size_t b, uint64_t* created, uint64_t* rejected) override {
    auto r = client_.Request("POST", batch_path_, sys_->Body(b));
    if (!r.ok() || r->status != 200) {
      last_error = HttpError(r);
      return r.ok() ? r->status : 0;
    }
    *created = internal::JsonUint(r->body, "created").value_or(0);
    *rejected = internal::CountOccurrences(r->body, "\"index\"");
    return 200;
  }
  int Search(uint64_t show, size_t* rows) override {
    auto r = client_.Request(
        "GET", list_path_ + "?where=" + PercentEncode("/show_id=" + std::to_string(show)) +
                   "&limit=" + limit_);
    if (!r.ok() || r->status != 200) {
      last_error = HttpError(r);
      return r.ok() ? r->status : 0;
    }
    *rows = internal::CountOccurrences(r->body, "\"schema_version\"");
    return 200;
  }
  int Page(const std::string& cursor, size_t* rows, std::string* next) override {
    std::string target = list_path_ + "?limit=" + page_limit_;
    if (!cursor.empty()) target += "&cursor=" + PercentEncode(cursor);
    auto r = client_.Request("GET", target);
    if (!r.ok() || r->status != 200) {
      last_error = HttpError(r);
      return r.ok() ? r->status : 0;
    }
    *rows = internal::CountOccurrences(r->body, ids_only_ ? "\"id\"" : "\"schema_version\"");
    *next = PageCursor(r->body);
    return 200;
  }

 private:
  StrataAssets* sys_;
  http::Client client_;
  std::string batch_path_, list_path_, limit_, page_limit_;
  bool ids_only_ = false;
};

absl::StatusOr<std::unique_ptr<AssetConnection>> StrataAssets::Connect() {
  return std::unique_ptr<AssetConnection>(new StrataAssetConnection(this));
}

// ---- PostgreSQL ----

class PostgresAssets final : public AssetSystem {
 public:
  PostgresAssets(const AssetBenchOptions& o, const std::string& root)
      : o_(o),
        root_(root),
        pg_dir_(root + "/pg"),
        data_dir_(root + "/pg/data"),
        log_(root + "/postgres.log") {}
  std::string name() const override { return "PostgreSQL"; }
  std::string log_path() const override { return log_; }

  // The payloads are the same texts; each INSERT's parameters are pointers into them (and
  // ids made at send time), so nothing needs building.
  void BuildPayloads(const AssetWorkload& w, std::ostream& out) override {
    w_ = &w;
    out << "payloads: the workload's JSON texts as INSERT parameters (ids made at send time)\n";
  }
  void DropPayloads() override {}

  absl::Status Start() override {
    if (geteuid() == 0) {
      struct passwd* pw = getpwnam(o_.pg_user.c_str());
      if (pw == nullptr) {
        return absl::FailedPreconditionError("pg_user: no user \"" + o_.pg_user +
                                             "\" to run PostgreSQL as (the bench runs as root)");
      }
      uid_ = static_cast<int>(pw->pw_uid);
      gid_ = static_cast<int>(pw->pw_gid);
    }
    std::error_code ec;
    std::filesystem::create_directories(pg_dir_, ec);
    if (ec) return absl::InternalError("mkdir " + pg_dir_ + ": " + ec.message());
    if (uid_ >= 0 && chown(pg_dir_.c_str(), uid_, gid_) != 0) {
      return absl::InternalError("chown " + pg_dir_ + " to " + o_.pg_user);
    }
    ChildSpec initdb = Spec(o_.pg_bin_dir + "/initdb", root_ + "/initdb.log");
    initdb.argv.insert(initdb.argv.end(), {"-D", data_dir_, "-U", kUser, "--auth=trust",
                                           "--encoding=UTF8", "--locale=C", "--no-sync"});
    STRATA_RETURN_IF_ERROR(RunToCompletion(initdb, kStartTimeoutS));
    STRATA_ASSIGN_OR_RETURN(port_, FreeLoopbackPort());
    ChildSpec spec = Spec(o_.pg_bin_dir + "/postgres", log_);
    spec.argv.insert(spec.argv.end(),
                     {"-D", data_dir_, "-c", "listen_addresses=127.0.0.1", "-c",
                      "port=" + std::to_string(port_), "-c", "unix_socket_directories=" + pg_dir_,
                      "-c", "shared_buffers=" + o_.pg_shared_buffers, "-c", "fsync=on"});
    STRATA_ASSIGN_OR_RETURN(child_, ChildProcess::Start(spec));
    STRATA_RETURN_IF_ERROR(WaitUntilReady(child_.get(), "PostgreSQL", log_, kStartTimeoutS, [&] {
      auto c = PgConnection::Connect(ConnInfo());
      if (!c.ok()) return false;
      admin_ = std::move(*c);
      return true;
    }));
    return admin_->Exec(
        "CREATE TABLE assets (id uuid PRIMARY KEY, version integer NOT NULL DEFAULT 1, "
        "created_at bigint NOT NULL, updated_at bigint NOT NULL, payload jsonb NOT NULL); "
        "CREATE INDEX assets_show_id ON assets (((payload->>'show_id')::bigint), id); "
        "CREATE INDEX assets_format ON assets ((payload->>'format'), id); "
        "CREATE INDEX assets_duration_s ON assets (((payload->>'duration_s')::bigint), id)");
  }
  absl::Status Stop() override {
    admin_.reset();
    if (!child_) return absl::OkStatus();
    absl::Status s = child_->Stop(SIGTERM, kStopTimeoutS);
    child_.reset();
    return s;
  }
  pid_t pid() const override { return child_ ? child_->pid() : -1; }
  absl::StatusOr<std::unique_ptr<AssetConnection>> Connect() override;
  absl::StatusOr<std::pair<uint64_t, uint64_t>> Size() override {
    STRATA_RETURN_IF_ERROR(admin_->Exec("VACUUM assets"));
    STRATA_RETURN_IF_ERROR(admin_->Exec("CHECKPOINT"));
    STRATA_ASSIGN_OR_RETURN(auto rows, admin_->Query("SELECT pg_total_relation_size('assets')"));
    const uint64_t bytes = rows.empty() ? 0 : std::strtoull(rows[0][0].c_str(), nullptr, 10);
    return std::make_pair(bytes, MeasureDirectory(data_dir_ + "/pg_wal", "").total);
  }
  std::vector<std::string> Settings() override {
    std::vector<std::string> lines = {
        "server: " + o_.pg_bin_dir + "/postgres -D " + data_dir_ +
            " -c listen_addresses=127.0.0.1 -c port=" + std::to_string(port_) +
            " -c shared_buffers=" + o_.pg_shared_buffers + " -c fsync=on (initdb --locale=C" +
            (uid_ >= 0 ? ", run as user " + o_.pg_user : "") + ")",
        "table: assets(id uuid primary key, version, created_at, updated_at, payload jsonb); "
        "indexes on ((payload->>'show_id')::bigint, id), (payload->>'format', id), "
        "((payload->>'duration_s')::bigint, id); no schema check",
        "durability: synchronous_commit=on, fsync=on: each batch's commit waits for its WAL"};
    auto rows = admin_->Query(
        "SELECT name || '=' || setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
        "('server_version', 'shared_buffers', 'synchronous_commit', 'max_wal_size', "
        "'wal_compression', 'work_mem') ORDER BY name");
    std::string s = "settings:";
    if (rows.ok()) {
      for (const auto& r : *rows) s += " " + r[0];
    }
    lines.push_back(s);
    return lines;
  }
  std::string AfterLoad() override {
    const auto t0 = SteadyClock::now();
    const std::string sql = o_.settle ? "VACUUM ANALYZE assets" : "ANALYZE assets";
    absl::Status s = admin_->Exec(sql);
    return s.ok() ? sql + " after the load (untimed" + (o_.settle ? ", --settle" : "") +
                        "): " + Fmt("%.1f", SecondsSince(t0)) + " s"
                  : sql + " failed: " + s.ToString();
  }
  std::string SearchPlan(uint64_t show) override {
    auto rows = admin_->Query("EXPLAIN (COSTS OFF) " + SearchSql(std::to_string(show)));
    if (!rows.ok()) return "";
    std::string plan;
    for (const auto& r : *rows) {
      std::string line = r[0];
      line.erase(0, line.find_first_not_of(" ->"));
      plan += (plan.empty() ? "" : " -> ") + line;
    }
    return plan;
  }

  std::string SearchSql(const std::string& param) const {
    return "SELECT id, payload FROM assets WHERE (payload->>'show_id')::bigint = " + param +
           " ORDER BY id DESC LIMIT " + std::to_string(o_.search_limit);
  }
  std::string ConnInfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + kUser +
           " dbname=postgres connect_timeout=10";
  }
  const AssetWorkload& workload() const { return *w_; }
  const AssetBenchOptions& options() const { return o_; }
  IdMaker& ids() { return ids_; }

 private:
  static constexpr const char* kUser = "strata_bench";
  ChildSpec Spec(const std::string& program, const std::string& log) const {
    ChildSpec spec;
    spec.argv = {program};
    spec.env = {"PATH=/usr/bin:/bin", "LC_ALL=C"};
    spec.log_path = log;
    spec.uid = uid_;
    spec.gid = gid_;
    return spec;
  }

  const AssetBenchOptions& o_;
  const std::string root_, pg_dir_, data_dir_, log_;
  int uid_ = -1, gid_ = -1, port_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::unique_ptr<PgConnection> admin_;
  const AssetWorkload* w_ = nullptr;
  IdMaker ids_;
};

class PostgresAssetConnection final : public AssetConnection {
 public:
  PostgresAssetConnection(PostgresAssets* sys, std::unique_ptr<PgConnection> conn)
      : sys_(sys), conn_(std::move(conn)) {}

  absl::Status Prepare() {
    STRATA_RETURN_IF_ERROR(conn_->Prepare("search", sys_->SearchSql("$1")));
    const std::string limit = std::to_string(sys_->options().page_limit);
    const std::string columns = sys_->options().page_fields == "id" ? "id" : "id, payload";
    STRATA_RETURN_IF_ERROR(conn_->Prepare(
        "page_first", "SELECT " + columns + " FROM assets ORDER BY id DESC LIMIT " + limit));
    return conn_->Prepare(
        "page", "SELECT " + columns + " FROM assets WHERE id < $1 ORDER BY id DESC LIMIT " + limit);
  }

  int Create(size_t b, uint64_t* created, uint64_t* rejected) override {
    const AssetWorkload& w = sys_->workload();
    const size_t n = w.Size(b, sys_->options());
    const std::vector<std::string>& payloads = w.Distinct(b);
    if (n >= prepared_.size()) prepared_.resize(n + 1, false);
    const std::string name = "ins" + std::to_string(n);
    if (!prepared_[n]) {
      std::string sql = "INSERT INTO assets (id, created_at, updated_at, payload) VALUES ";
      for (size_t i = 0; i < n; ++i) {
        sql += (i == 0 ? "($" : ",($") + std::to_string(3 * i + 1) + "::uuid,$" +
               std::to_string(3 * i + 2) + "::bigint,$" + std::to_string(3 * i + 2) + "::bigint,$" +
               std::to_string(3 * i + 3) + "::jsonb)";
      }
      if (absl::Status s = conn_->Prepare(name, sql); !s.ok()) {
        last_error = s.ToString();
        return 500;
      }
      prepared_[n] = true;
    }
    ids_.resize(n);
    const std::string now = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    params_.clear();
    for (size_t i = 0; i < n; ++i) {
      ids_[i] = sys_->ids().Next();
      params_.push_back(ids_[i].c_str());
      params_.push_back(now.c_str());
      params_.push_back(payloads[i].c_str());
    }
    auto r = conn_->ExecPrepared(name, params_);
    if (!r.ok()) {
      last_error = r.status().ToString();
      return 500;
    }
    *created = n;
    *rejected = 0;
    return 200;
  }
  int Search(uint64_t show, size_t* rows) override {
    const std::string v = std::to_string(show);
    auto r = conn_->ExecPrepared("search", {v.c_str()});
    if (!r.ok()) {
      last_error = r.status().ToString();
      return 500;
    }
    *rows = *r;
    return 200;
  }
  int Page(const std::string& cursor, size_t* rows, std::string* next) override {
    next->clear();
    auto r = cursor.empty() ? conn_->ExecPrepared("page_first", {}, next)
                            : conn_->ExecPrepared("page", {cursor.c_str()}, next);
    if (!r.ok()) {
      last_error = r.status().ToString();
      return 500;
    }
    *rows = *r;
    if (*r < static_cast<size_t>(sys_->options().page_limit)) next->clear();
    return 200;
  }

 private:
  PostgresAssets* sys_;
  std::unique_ptr<PgConnection> conn_;
  std::vector<bool> prepared_;
  std::vector<std::string> ids_;
  std::vector<const char*> params_;
};

absl::StatusOr<std::unique_ptr<AssetConnection>> PostgresAssets::Connect() {
  STRATA_ASSIGN_OR_RETURN(auto conn, PgConnection::Connect(ConnInfo()));
  auto c = std::make_unique<PostgresAssetConnection>(this, std::move(conn));
  STRATA_RETURN_IF_ERROR(c->Prepare());
  return std::unique_ptr<AssetConnection>(std::move(c));
}

// ---- Measurement -----------------------------------------------------------------------------

// CPU seconds so far: the server's tree, the bench, the machine (busy, kernel threads and
// interrupts); differences over a phase say who worked.
struct Cpu {
  double server = -1;
  double bench = 0;
  MachineCpu machine;
};
Cpu TakeCpu(const AssetSystem& sys) {
  auto s = ProcessTreeCpuSeconds(sys.pid());
  return Cpu{s.ok() ? *s : -1, SelfCpuSeconds(), MachineCpuSeconds()};
}
// (server, bench, others) over [a, b]; -1 where unknown.
std::tuple<double, double, double> CpuBetween(const Cpu& a, const Cpu& b) {
  const double bench = b.bench - a.bench;
  if (a.server < 0 || b.server < a.server) return {-1, bench, -1};
  const double server = b.server - a.server;
  const double kernel = (b.machine.kernel_threads - a.machine.kernel_threads) +
                        (b.machine.interrupts - a.machine.interrupts);
  const double others = std::max(0.0, (b.machine.busy - a.machine.busy) - server - bench - kernel);
  return {server, bench, others};
}

std::string FirstError(const std::vector<std::unique_ptr<AssetConnection>>& conns) {
  for (const auto& c : conns) {
    if (!c->last_error.empty()) return c->last_error;
  }
  return "";
}

void PrintLogTail(const std::string& path, std::ostream& out) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (lines.size() > 20) lines.erase(lines.begin());
  }
  if (lines.empty()) return;
  out << "last lines of " << path << ":\n";
  for (const auto& line : lines) out << "  | " << line << "\n";
}

absl::StatusOr<std::vector<std::unique_ptr<AssetConnection>>> Connections(AssetSystem& sys, int n) {
  std::vector<std::unique_ptr<AssetConnection>> out;
  for (int i = 0; i < n; ++i) {
    STRATA_ASSIGN_OR_RETURN(auto c, sys.Connect());
    out.push_back(std::move(c));
  }
  return out;
}

// ---- One system ------------------------------------------------------------------------------

void RunCreate(AssetSystem& sys, const AssetWorkload& w, const AssetBenchOptions& o,
               std::vector<std::unique_ptr<AssetConnection>>& conns, AssetSystemRun* run) {
  std::atomic<size_t> next{0};
  std::vector<OpStats> stats(conns.size());
  std::vector<uint64_t> created(conns.size(), 0), rejected(conns.size(), 0);
  const Cpu cpu0 = TakeCpu(sys);
  const auto t0 = SteadyClock::now();
  std::vector<std::thread> threads;
  for (size_t c = 0; c < conns.size(); ++c) {
    threads.emplace_back([&, c] {
      if (o.client_slice_us > 0) ThreadPool::SetCurrentThreadSlice(o.client_slice_us);
      for (size_t b = next.fetch_add(1); b < w.batches; b = next.fetch_add(1)) {
        const auto sent = SteadyClock::now();
        uint64_t n = 0, bad = 0;
        const int code = conns[c]->Create(b, &n, &bad);
        stats[c].Add(code, MicrosSince(sent));
        created[c] += n;
        rejected[c] += bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  run->create_s = SecondsSince(t0);
  std::tie(run->create_cpu_s, run->create_bench_cpu_s, run->create_others_cpu_s) =
      CpuBetween(cpu0, TakeCpu(sys));
  OpStats all;
  for (size_t c = 0; c < conns.size(); ++c) {
    all.Merge(stats[c]);
    run->created += created[c];
    run->rejected += rejected[c];
  }
  run->create_batch = MakeOpReport("create batch", all, run->create_s);
  run->create_per_s = run->create_s > 0 ? static_cast<double>(run->created) / run->create_s : 0;
}

void RunSearch(AssetSystem& sys, const AssetWorkload& w, const AssetBenchOptions& o,
               std::vector<std::unique_ptr<AssetConnection>>& conns, AssetSystemRun* run) {
  {
    std::vector<std::thread> threads;
    for (size_t c = 0; c < conns.size(); ++c) {
      threads.emplace_back([&, c] {
        size_t rows = 0;
        for (int i = 0; i < o.warmup_searches; ++i) {
          (void)conns[c]->Search(w.warmup[c * o.warmup_searches + i], &rows);
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  for (auto& c : conns) c->last_error.clear();
  std::vector<OpStats> stats(conns.size());
  std::vector<uint64_t> late(conns.size(), 0), unsent(conns.size(), 0), rows(conns.size(), 0),
      short_answers(conns.size(), 0);
  const Cpu cpu0 = TakeCpu(sys);
  const auto start = SteadyClock::now() + std::chrono::milliseconds(20);
  const auto end = start + std::chrono::duration_cast<SteadyClock::duration>(
                               std::chrono::duration<double>(o.search_s));
  ArrivalSchedule arrivals(start, end, o.search_rate);
  std::vector<std::vector<TimedRequest>> timed(conns.size());
  for (auto& v : timed) v.reserve(1 << 14);
  KernelBurstWatch kernel(FindThreadsNamed(kKernelThreadPrefix));
  kernel.Start();
  std::vector<std::thread> threads;
  for (size_t c = 0; c < conns.size(); ++c) {
    threads.emplace_back([&, c] {
      if (o.client_slice_us > 0) ThreadPool::SetCurrentThreadSlice(o.client_slice_us);
      for (;;) {
        SteadyClock::time_point due;
        uint64_t n = 0;
        const ArrivalSchedule::Take take = arrivals.Next(&due, &n);
        if (take == ArrivalSchedule::Take::kDone) return;
        if (take == ArrivalSchedule::Take::kUnsent) {
          ++unsent[c];
          continue;
        }
        if (SleepUntilDue(due)) ++late[c];
        size_t got = 0;
        const int code = conns[c]->Search(w.searches[n % w.searches.size()], &got);
        stats[c].Add(code, MicrosSince(due));
        timed[c].push_back({due, SteadyClock::now(), code >= 200 && code < 300});
        rows[c] += got;
        if (code == 200 && got < static_cast<size_t>(o.search_limit)) ++short_answers[c];
      }
    });
  }
  for (auto& t : threads) t.join();
  run->search_s = SecondsSince(start);
  kernel.Stop();
  double bench = 0;
  std::tie(run->search_cpu_s, bench, run->search_others_cpu_s) = CpuBetween(cpu0, TakeCpu(sys));
  OpStats all;
  uint64_t total_rows = 0;
  for (size_t c = 0; c < conns.size(); ++c) {
    all.Merge(stats[c]);
    run->late_searches += late[c];
    run->unsent_searches += unsent[c];
    run->short_searches += short_answers[c];
    total_rows += rows[c];
  }
  run->search = MakeOpReport("search", all, run->search_s);
  if (kernel.watching()) {
    std::vector<TimedRequest> searches;
    for (const auto& v : timed) searches.insert(searches.end(), v.begin(), v.end());
    run->search_bursts =
        ShareOfBursts(kernel.bursts(), kernel.cpu_ns(), searches, run->search.p99_ms);
  }
  const uint64_t ok = run->search.count - run->search.errors;
  run->rows_per_search = ok > 0 ? static_cast<double>(total_rows) / ok : 0;
}

void RunPaging(AssetSystem& sys, AssetConnection& conn, AssetSystemRun* run) {
  OpStats stats;
  const Cpu cpu0 = TakeCpu(sys);
  const auto t0 = SteadyClock::now();
  std::string cursor, next;
  for (;;) {
    size_t rows = 0;
    const auto sent = SteadyClock::now();
    const int code = conn.Page(cursor, &rows, &next);
    stats.Add(code, MicrosSince(sent));
    if (code != 200) {
      ++run->page_errors;
      break;
    }
    ++run->pages;
    run->paged_ids += rows;
    if (next.empty() || rows == 0) break;
    cursor = next;
  }
  run->page_s = SecondsSince(t0);
  double bench = 0;
  std::tie(run->page_cpu_s, bench, run->page_others_cpu_s) = CpuBetween(cpu0, TakeCpu(sys));
  run->page = MakeOpReport("page", stats, run->page_s);
  run->page_ids_per_s = run->page_s > 0 ? static_cast<double>(run->paged_ids) / run->page_s : 0;
}

AssetSystemRun RunSystem(AssetSystem& sys, const AssetWorkload& w, const AssetBenchOptions& o,
                         std::ostream& out) {
  AssetSystemRun run;
  run.name = sys.name();
  const std::string& name = run.name;
  auto fail = [&](const absl::Status& s) {
    run.error = s.ToString();
    out << name << ": ERROR: " << run.error << "\n";
    (void)sys.Stop();
    PrintLogTail(sys.log_path(), out);
    out << std::flush;
    return run;
  };
  out << "\n== " << name << " ==\n" << std::flush;
  sys.BuildPayloads(w, out);
  if (absl::Status s = sys.Start(); !s.ok()) return fail(s);
  run.settings = sys.Settings();
  for (const auto& line : run.settings) out << line << "\n";
  auto writers = Connections(sys, o.write_connections);
  if (!writers.ok()) return fail(writers.status());
  PeakPssSampler pss(sys.pid(), o.pss_interval_s);

  out << name << ": create: " << Thousands(o.assets) << " assets in batches of " << o.batch_size
      << " on " << o.write_connections << " connections, closed loop ...\n"
      << std::flush;
  RunCreate(sys, w, o, *writers, &run);
  out << name << ": create: " << Thousands(run.created) << " assets in "
      << Fmt("%.1f", run.create_s) << " s = " << Fmt("%.0f", run.create_per_s)
      << " assets/s; batch p50 " << Fmt("%.1f", run.create_batch.p50_ms) << " / p99 "
      << Fmt("%.1f", run.create_batch.p99_ms) << " ms; errors " << run.create_batch.errors
      << ", rejected " << run.rejected << "; CPU: server " << Fmt("%.1f", run.create_cpu_s)
      << " s, bench " << Fmt("%.1f", run.create_bench_cpu_s) << " s, other processes "
      << Fmt("%.1f", run.create_others_cpu_s) << " s\n";
  if (const std::string e = FirstError(*writers); !e.empty()) {
    run.first_error = e;
    out << name << ": create: first error: " << e << "\n";
  }
  writers->clear();
  sys.DropPayloads();
  const Cpu before_settle = TakeCpu(sys);
  if (std::string line = sys.AfterLoad(); !line.empty()) {
    const double settle_cpu_s = std::get<0>(CpuBetween(before_settle, TakeCpu(sys)));
    if (settle_cpu_s >= 0) line += " (server CPU " + Fmt("%.1f", settle_cpu_s) + " s)";
    out << name << ": " << line << "\n";
    run.settings.push_back(line);
  }
  if (const std::string plan = sys.SearchPlan(w.searches.front()); !plan.empty()) {
    run.settings.push_back("search plan: " + plan);
    out << name << ": search plan: " << plan << "\n";
  }

  if (const std::string work = sys.BackgroundWork(); !work.empty()) {
    run.settings.push_back("at the search phase's start: " + work);
    out << name << ": at the search phase's start: " << work << "\n";
  }
  auto searchers = Connections(sys, o.search_connections);
  if (!searchers.ok()) return fail(searchers.status());
  out << name << ": search: " << Fmt("%.0f", o.search_rate) << "/s for " << Fmt("%.0f", o.search_s)
      << " s on " << o.search_connections << " connections (after " << o.warmup_searches
      << " warm-up searches each), newest " << o.search_limit << " of a show, open loop ...\n"
      << std::flush;
  RunSearch(sys, w, o, *searchers, &run);
  out << name << ": search: p50 " << Fmt("%.2f", run.search.p50_ms) << " / p99 "
      << Fmt("%.2f", run.search.p99_ms) << " / p99.9 " << Fmt("%.2f", run.search.p999_ms)
      << " / max " << Fmt("%.2f", run.search.max_ms) << " ms (" << Thousands(run.search.count)
      << " searches, avg " << Fmt("%.1f", run.rows_per_search) << " assets, " << run.short_searches
      << " short, " << run.search.errors << " errors, " << run.late_searches << " late, "
      << run.unsent_searches << " unsent); server CPU "
      << Fmt("%.0f", run.search_s > 0 ? 100 * run.search_cpu_s / run.search_s : 0)
      << "% of a core ("
      << Fmt("%.0f", run.search.count > run.search.errors
                         ? 1e6 * run.search_cpu_s /
                               static_cast<double>(run.search.count - run.search.errors)
                         : 0)
      << " us per search)\n";
  if (run.search_bursts.watched) {
    out << name << ": search: " << DescribeShare(run.search_bursts, "searches") << "\n";
  }
  if (const std::string e = FirstError(*searchers); !e.empty()) {
    if (run.first_error.empty()) run.first_error = e;
    out << name << ": search: an error: " << e << "\n";
  }

  out << name << ": paging: every asset, " << o.page_limit << " per page, newest first, "
      << (o.page_fields == "id" ? "ids only" : "whole assets") << " ...\n"
      << std::flush;
  RunPaging(sys, *(*searchers)[0], &run);
  out << name << ": paging: " << Thousands(run.paged_ids) << " ids in " << Thousands(run.pages)
      << " pages, " << Fmt("%.1f", run.page_s) << " s = " << Fmt("%.0f", run.page_ids_per_s)
      << " ids/s; page p50 " << Fmt("%.1f", run.page.p50_ms) << " / p99 "
      << Fmt("%.1f", run.page.p99_ms) << " ms; errors " << run.page_errors << "; server CPU "
      << Fmt("%.1f", run.page_cpu_s) << " s\n";
  if (run.page_errors > 0) {
    const std::string e = FirstError(*searchers);
    out << name << ": paging: error: " << e << "\n";
    if (run.first_error.empty()) run.first_error = e;
  }
  searchers->clear();
  run.peak_pss = pss.Stop();

  auto size = sys.Size();
  if (!size.ok()) return fail(size.status());
  std::tie(run.bytes, run.wal_bytes) = *size;
  out << name << ": " << MiB(run.bytes) << " MiB on disk = "
      << Fmt("%.0f", static_cast<double>(run.bytes) / std::max<uint64_t>(run.created, 1))
      << " bytes/asset; peak PSS " << MiB(run.peak_pss) << " MiB (" << pss.samples()
      << " samples)\n";
  if (absl::Status s = sys.Stop(); !s.ok()) out << name << ": stop: " << s.ToString() << "\n";
  run.completed = true;
  return run;
}

absl::Status Validate(const AssetBenchOptions& o) {
  if (o.peer != "postgres" && o.peer != "none") {
    return absl::InvalidArgumentError("peer: must be \"postgres\" or \"none\"");
  }
  if (o.order != "strata-first" && o.order != "postgres-first") {
    return absl::InvalidArgumentError("order: must be \"strata-first\" or \"postgres-first\"");
  }
  if (o.assets < 1) return absl::InvalidArgumentError("assets: must be >= 1");
  if (o.batch_size < 1 || o.batch_size > 10000) {
    return absl::InvalidArgumentError(
        "batch: must be 1..10000 (PostgreSQL takes at most 65535 parameters per statement)");
  }
  if (o.payload_bytes < 200 || o.payload_bytes > 65536) {
    return absl::InvalidArgumentError("payload_bytes: must be 200..65536");
  }
  if (o.assets_per_show < 1) return absl::InvalidArgumentError("assets_per_show: must be >= 1");
  if (o.distinct_batches < 1) return absl::InvalidArgumentError("distinct_batches: must be >= 1");
  if (o.write_connections < 1 || o.write_connections > 256 || o.search_connections < 1 ||
      o.search_connections > 256) {
    return absl::InvalidArgumentError("connections: must be 1..256");
  }
  if (!(o.search_rate > 0) || !(o.search_s > 0)) {
    return absl::InvalidArgumentError("search_rate, search_seconds: must be > 0");
  }
  if (o.warmup_searches < 0) return absl::InvalidArgumentError("warmup_searches: must be >= 0");
  if (o.page_fields != "id" && o.page_fields != "all") {
    return absl::InvalidArgumentError("page_fields: must be \"id\" or \"all\"");
  }
  if (o.search_limit < 1 || o.search_limit > 1000 || o.page_limit < 1 || o.page_limit > 1000) {
    return absl::InvalidArgumentError("search_limit, page_limit: must be 1..1000");
  }
  if (!(o.pss_interval_s > 0)) return absl::InvalidArgumentError("pss_interval_s: must be > 0");
  if (o.client_slice_us < 0 || o.client_slice_us > 100000) {
    return absl::InvalidArgumentError("client_slice_us: must be 0..100000");
  }
  return CheckStrataArgs(o.strata_args, "strata_args");
}

}  // namespace

absl::StatusOr<AssetBenchReport> RunAssetBench(const AssetBenchOptions& options,
                                               std::ostream& out) {
  STRATA_RETURN_IF_ERROR(Validate(options));
  if (options.peer == "postgres") {
    for (const char* tool : {"/initdb", "/postgres"}) {
      if (access((options.pg_bin_dir + tool).c_str(), X_OK) != 0) {
        return absl::FailedPreconditionError("pg_bin_dir: no " + options.pg_bin_dir + tool +
                                             " (install postgresql-15), or run with --peer none");
      }
    }
  }
  STRATA_ASSIGN_OR_RETURN(auto dir,
                          WorkDir::Create(options.work_dir, options.keep_dirs, "strata-assets"));
  out << "strata bench assets: Strata vs "
      << (options.peer == "postgres" ? "PostgreSQL 15" : "nothing (--peer none)") << "\n"
      << "command: " << CommandLine() << "\n"
      << "machine: " << Machine(dir->path()) << "\n"
      << std::flush;
  const AssetWorkload w = Generate(options, out);
  std::vector<std::unique_ptr<AssetSystem>> systems;
  systems.push_back(std::make_unique<StrataAssets>(options, dir->path()));
  if (options.peer == "postgres") {
    auto pg = std::make_unique<PostgresAssets>(options, dir->path());
    if (options.order == "postgres-first") {
      systems.insert(systems.begin(), std::move(pg));
    } else {
      systems.push_back(std::move(pg));
    }
  }
  AssetBenchReport report;
  for (auto& sys : systems) report.systems.push_back(RunSystem(*sys, w, options, out));
  systems.clear();
  report.passed = true;
  for (const auto& r : report.systems) {
    report.passed = report.passed && r.completed && r.create_batch.errors == 0 && r.rejected == 0 &&
                    r.created == options.assets && r.search.errors == 0 && r.page_errors == 0 &&
                    r.paged_ids == r.created;
  }
  if (options.keep_dirs) out << "\ndata kept in " << dir->path() << "\n";
  PrintAssetTable(options, report, out);
  return report;
}

void PrintAssetTable(const AssetBenchOptions& o, const AssetBenchReport& report,
                     std::ostream& out) {
  const AssetSystemRun* s = nullptr;
  const AssetSystemRun* p = nullptr;
  for (const auto& r : report.systems) (r.name == "Strata" ? s : p) = &r;
  struct Row {
    std::string label, strata, pg, ratio, better;
  };
  std::vector<Row> rows;
  using Get = std::function<double(const AssetSystemRun&)>;
  auto value = [](const AssetSystemRun* r, const Get& f) -> std::optional<double> {
    if (r == nullptr || r->create_s <= 0) return std::nullopt;
    const double v = f(*r);
    if (v < 0) return std::nullopt;
    return v;
  };
  auto add = [&](const std::string& label, const Get& f, const char* fmt, bool higher_better,
                 bool thousands = false) {
    auto sv = value(s, f), pv = value(p, f);
    auto cell = [&](std::optional<double> v) -> std::string {
      if (!v) return "-";
      return thousands ? Thousands(static_cast<uint64_t>(std::llround(*v))) : Fmt(fmt, *v);
    };
    Row r{label, cell(sv), cell(pv), "", higher_better ? "higher" : "lower"};
    if (sv && pv && *pv > 0) r.ratio = Fmt("%.2fx", *sv / *pv);
    rows.push_back(std::move(r));
  };
  auto text = [&](const std::string& label,
                  const std::function<std::string(const AssetSystemRun&)>& f) {
    rows.push_back(Row{label, s ? f(*s) : "-", p ? f(*p) : "-", "", ""});
  };
  add(
      "create assets/s (closed loop)", [](const auto& r) { return r.create_per_s; }, "%.0f", true,
      true);
  add(
      "create batch p50 ms", [](const auto& r) { return r.create_batch.p50_ms; }, "%.1f", false);
  add(
      "create batch p99 ms", [](const auto& r) { return r.create_batch.p99_ms; }, "%.1f", false);
  add(
      "create: server CPU us/asset",
      [](const auto& r) {
        return r.create_cpu_s >= 0 && r.created > 0 ? 1e6 * r.create_cpu_s / r.created : -1.0;
      },
      "%.2f", false);
  add(
      "search p50 ms (open loop)", [](const auto& r) { return r.search.p50_ms; }, "%.2f", false);
  add(
      "search p99 ms", [](const auto& r) { return r.search.p99_ms; }, "%.2f", false);
  add(
      "search p99.9 ms", [](const auto& r) { return r.search.p999_ms; }, "%.2f", false);
  add(
      "search max ms", [](const auto& r) { return r.search.max_ms; }, "%.2f", false);
  if ((s != nullptr && s->search_bursts.watched) || (p != nullptr && p->search_bursts.watched)) {
    text("  searches >= p99 in kdamond bursts (3)", [](const AssetSystemRun& r) {
      return r.search_bursts.watched ? Thousands(r.search_bursts.slow_in_bursts) + " of " +
                                           Thousands(r.search_bursts.slow)
                                     : std::string("-");
    });
    add(
        "  search p99 ms, the searches outside (3)",
        [](const auto& r) {
          return r.search_bursts.watched ? r.search_bursts.p99_outside_ms : -1.0;
        },
        "%.2f", false);
    add(
        "  search p99.9 ms, the searches outside (3)",
        [](const auto& r) {
          return r.search_bursts.watched ? r.search_bursts.p999_outside_ms : -1.0;
        },
        "%.2f", false);
  }
  add(
      "search: assets per answer", [](const auto& r) { return r.rows_per_search; }, "%.1f", true);
  rows.back().ratio.clear();
  rows.back().better.clear();
  add(
      "search: server CPU, % of a core",
      [](const auto& r) {
        return r.search_cpu_s >= 0 && r.search_s > 0 ? 100 * r.search_cpu_s / r.search_s : -1.0;
      },
      "%.0f%%", false);
  add(
      "search: server CPU us/search",
      [](const auto& r) {
        const uint64_t ok = r.search.count - r.search.errors;
        return r.search_cpu_s >= 0 && ok > 0 ? 1e6 * r.search_cpu_s / ok : -1.0;
      },
      "%.0f", false);
  text("search: late>1ms / unsent / errors", [](const AssetSystemRun& r) {
    return Thousands(r.late_searches) + " / " + Thousands(r.unsent_searches) + " / " +
           Thousands(r.search.errors);
  });
  add(
      "paging ids/s (limit " + std::to_string(o.page_limit) + ", " +
          (o.page_fields == "id" ? "ids only" : "whole assets") + ", 1 conn)",
      [](const auto& r) { return r.page_ids_per_s; }, "%.0f", true, true);
  add(
      "paging: page p50 ms", [](const auto& r) { return r.page.p50_ms; }, "%.1f", false);
  add(
      "paging: server CPU us/1000 ids",
      [](const auto& r) {
        return r.page_cpu_s >= 0 && r.paged_ids > 0 ? 1e9 * r.page_cpu_s / r.paged_ids : -1.0;
      },
      "%.0f", false);
  text("paging: ids seen / assets created", [](const AssetSystemRun& r) {
    return Thousands(r.paged_ids) + " / " + Thousands(r.created);
  });
  add(
      "disk bytes/asset (1)",
      [](const auto& r) {
        return r.bytes > 0 && r.created > 0 ? static_cast<double>(r.bytes) / r.created : -1.0;
      },
      "%.0f", false);
  text("  WAL: Strata's share; PG's pg_wal (2)", [](const AssetSystemRun& r) {
    if (r.bytes == 0) return std::string("-");
    return r.name == "Strata" ? Fmt("%.0f%%", 100.0 * r.wal_bytes / r.bytes)
                              : MiB(r.wal_bytes) + " MiB";
  });
  add(
      "peak PSS MiB (server process tree)",
      [](const auto& r) { return r.peak_pss > 0 ? r.peak_pss / 1048576.0 : -1.0; }, "%.0f", false);

  out << "\n== strata bench assets: Strata vs "
      << (o.peer == "postgres" ? "PostgreSQL 15" : "(no peer)") << ", " << Thousands(o.assets)
      << " assets, one after the other ==\n";
  char line[320];
  std::snprintf(line, sizeof(line), "%-44s  %21s  %21s  %9s  %s\n", "", "Strata",
                o.peer == "postgres" ? "PostgreSQL" : "-", "Strata/PG", "better");
  out << line;
  for (const auto& r : rows) {
    std::snprintf(line, sizeof(line), "%-44s  %21s  %21s  %9s  %s\n", r.label.c_str(),
                  r.strata.c_str(), r.pg.c_str(), r.ratio.c_str(), r.better.c_str());
    out << line;
  }
  out << "(1) Strata: every file of its data directory (WAL, SSTs, queue); PostgreSQL: "
         "pg_total_relation_size\n    (table, TOAST, the primary key and the three indexes) "
         "after VACUUM and CHECKPOINT.\n"
         "(2) not counted in PostgreSQL's bytes/asset.\n";
  if ((s != nullptr && s->search_bursts.watched) || (p != nullptr && p->search_bursts.watched)) {
    out << "(3) kdamond: the kernel's DAMON memory monitor, which this machine runs; a search "
           "overlaps one of its\n    bursts when its due-to-answer interval meets the burst +-"
        << kBurstMargin.count()
        << " ms (bench/kernel_bursts.h). The rows above count every search.\n";
  }
  // The issue's goals, against this run.
  if (s != nullptr && s->completed) {
    auto verdict = [](bool met) { return met ? "met" : "NOT met"; };
    out << "goals (issue 15; the search and paging goals are stated at 10M assets, this run has "
        << Thousands(o.assets) << "):\n";
    out << "  create >= 100,000 assets/s: " << Fmt("%.0f", s->create_per_s) << " "
        << verdict(s->create_per_s >= kGoalCreatePerS) << "\n";
    if (p != nullptr && p->completed && p->create_per_s > 0) {
      const double r = s->create_per_s / p->create_per_s;
      out << "  create >= 2x PostgreSQL: " << Fmt("%.2fx", r) << " "
          << verdict(r >= kGoalCreateVsPg) << "\n";
    }
    out << "  search p99 <= 2 ms: " << Fmt("%.2f", s->search.p99_ms) << " ms "
        << verdict(s->search.p99_ms <= kGoalSearchP99Ms) << "\n";
    if (p != nullptr && p->completed) {
      out << "  search p99 <= PostgreSQL's: " << Fmt("%.2f", s->search.p99_ms) << " vs "
          << Fmt("%.2f", p->search.p99_ms) << " ms "
          << verdict(s->search.p99_ms <= p->search.p99_ms) << "\n";
    }
    out << "  paging >= 1,000,000 ids/s: " << Fmt("%.0f", s->page_ids_per_s) << " "
        << verdict(s->page_ids_per_s >= kGoalPageIdsPerS) << "\n";
  }
  for (const AssetSystemRun* r : {s, p}) {
    if (r == nullptr) continue;
    out << r->name << ":\n";
    for (const auto& l : r->settings) out << "    " << l << "\n";
    if (!r->first_error.empty()) out << "    first request error: " << r->first_error << "\n";
    if (!r->completed) out << "    run did not complete: " << r->error << "\n";
    for (auto [phase, others, secs] : {std::tuple{"create", r->create_others_cpu_s, r->create_s},
                                       std::tuple{"search", r->search_others_cpu_s, r->search_s},
                                       std::tuple{"paging", r->page_others_cpu_s, r->page_s}}) {
      if (secs > 0 && others / secs > kBusyMachineShare) {
        out << "WARNING: other processes used " << Fmt("%.0f", 100 * others / secs)
            << "% of a core during " << r->name << "'s " << phase << " phase: its figures "
            << "measure that load too.\n";
      }
    }
  }
  out << "result: " << (report.passed ? "PASS" : "FAIL")
      << " (every system created every asset without errors, answered every search and paged "
         "exactly the assets created)\n";
}

}  // namespace strata::bench
