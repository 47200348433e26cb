#include "bench/compare_systems.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <thread>
#include <utility>

#include "bench/child_process.h"
#include "bench/compare_bench_internal.h"
#include "bench/load_driver.h"
#include "bench/pg_client.h"
#include "bench/viewing_bench_internal.h"
#include "strata/base/status.h"
#include "strata/http/http_client.h"

extern char** environ;

namespace strata::bench::compare {
namespace {

constexpr std::string_view kEventsPath = "/v1/viewing/events";
constexpr double kStopTimeoutS = 60;
constexpr double kStartTimeoutS = 120;

// The sum of the samples of metric `name` (a name, or a name with its labels) in a
// Prometheus text page; nullopt when it has none.
std::optional<uint64_t> MetricSum(std::string_view page, std::string_view name) {
  double sum = 0;
  bool found = false;
  for (size_t at = page.find(name); at != std::string_view::npos; at = page.find(name, at + 1)) {
    if (at > 0 && page[at - 1] != '\n') continue;
    const size_t end = at + name.size();
    if (end >= page.size() || (page[end] != ' ' && page[end] != '{')) continue;
    const size_t eol = page.find('\n', end);
    const size_t space = page.rfind(' ', eol);
    if (space == std::string_view::npos || space < end) continue;
    sum += std::strtod(std::string(page.substr(space + 1, eol - space - 1)).c_str(), nullptr);
    found = true;
  }
  if (!found) return std::nullopt;
  return static_cast<uint64_t>(sum);
}

// The last `bytes` of a log file ("" when unreadable).
std::string LogTail(const std::string& path, size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}


// ---- Strata ----

class StrataSystem final : public System {
 public:
  StrataSystem(const CompareOptions& o, const std::string& root)
      : o_(o), data_dir_(root + "/strata"), log_(root + "/strata.log") {}

  std::string name() const override { return "Strata"; }
  std::string log_path() const override { return log_; }

  void BuildPayloads(const Workload& w, std::ostream& out) override {
    const auto t0 = SteadyClock::now();
    bodies_.resize(w.batches.size());
    size_t bytes = 0;
    for (size_t i = 0; i < w.batches.size(); ++i) {
      AppendBatchJson(w.batches[i], &bodies_[i]);
      bytes += bodies_[i].size();
    }
    out << "payloads: " << Thousands(bodies_.size()) << " JSON bodies, " << MiB(bytes)
        << " MiB, built in " << Fmt("%.1f", SecondsSince(t0)) << " s\n";
  }
  void DropPayloads() override { std::vector<std::string>().swap(bodies_); }

  absl::Status Start() override { return Launch(); }
  absl::Status Restart() override { return Launch(); }
  void Crash() override {
    if (child_) child_->Kill();
  }
  absl::Status Stop() override {
    if (!child_) return absl::OkStatus();
    absl::Status s = child_->Stop(SIGTERM, kStopTimeoutS);
    child_.reset();
    return s;
  }
  pid_t pid() const override { return child_ ? child_->pid() : -1; }

  absl::StatusOr<std::unique_ptr<Connection>> Connect() override;

  absl::StatusOr<SizeFigures> Size() override {
    SizeFigures f;
    f.bytes = MeasureDirectory(data_dir_, "").total;
    f.wal = MeasureDirectory(data_dir_ + "/rows", ".log").matching;
    return f;
  }
  uint64_t Records(const HistoryOracle& oracle) const override {
    return oracle.play_keys() + oracle.strata_preview_keys();
  }
  std::vector<std::string> Settings() override {
    std::string args;
    for (const auto& a : o_.strata_args) args += " " + a;
    const std::string sync = internal::FlagValue(o_.strata_args, "--sync").value_or("periodic");
    std::string interval =
        internal::FlagValue(o_.strata_args, "--sync-interval-ms").value_or("100");
    std::error_code ec;
    const auto binary = std::filesystem::read_symlink(o_.strata_binary, ec);
    return {"server: " + (ec ? o_.strata_binary : binary.string()) + " serve --data-dir " +
                data_dir_ + " --port " + std::to_string(port_) + " --log-level warn" + args,
            "durability: --sync " + sync +
                (sync == "batch" ? " (the WAL is fsynced before each write is acknowledged)"
                                 : " (the WAL is fsynced every " + interval +
                                       " ms: an acknowledged write survives a crash of the "
                                       "server, not a power loss within that interval)")};
  }

  std::string Diagnostics() override {
    http::Client c = NewClient("127.0.0.1", static_cast<uint16_t>(port_), o_.timeout_ms);
    auto r = c.Request("GET", "/metrics");
    if (!r.ok() || r->status != 200) return "";
    auto m = [&](std::string_view name) { return Thousands(MetricSum(r->body, name).value_or(0)); };
    std::string line =
        "roll-ups " + m("strata_viewing_rollups_total") + " (backlog " +
        m("strata_viewing_rollup_backlog") + "), rotations " + m("strata_viewing_rotations_total") +
        " (backlog " + m("strata_viewing_rotation_backlog") + "; " +
        m("strata_viewing_rotated_records_total{to=\"past\"}") +
        " plays moved to the past tier); history cache " + m("strata_viewing_cache_hits_total") +
        " hits, " + m("strata_viewing_cache_misses_total") + " misses; RocksDB";
    // (Servers before 2026-12 have no memtable and WAL gauges.)
    for (auto [label, name] :
         {std::pair{" memtables", "strata_rocksdb_memtable_bytes"},
          std::pair{" WAL", "strata_rocksdb_wal_bytes"},
          std::pair{" compaction pending", "strata_rocksdb_pending_compaction_bytes"}}) {
      if (auto v = MetricSum(r->body, name)) line += std::string(label) + " " + MiB(*v) + " MiB";
    }
    // Where the disk is: each table's bytes (strata_table_disk_bytes: SSTs and memtables),
    // largest first.
    {
      constexpr std::string_view kPrefix = "strata_table_disk_bytes{table=\"";
      std::vector<std::pair<double, std::string>> tables;
      for (size_t at = r->body.find(kPrefix); at != std::string::npos;
           at = r->body.find(kPrefix, at + 1)) {
        if (at > 0 && r->body[at - 1] != '\n') continue;
        const size_t name_end = r->body.find('"', at + kPrefix.size());
        const size_t line_end = r->body.find('\n', at);
        if (name_end == std::string::npos || name_end + 3 > line_end) continue;
        tables.emplace_back(
            std::strtod(r->body.substr(name_end + 3, line_end - name_end - 3).c_str(), nullptr),
            r->body.substr(at + kPrefix.size(), name_end - at - kPrefix.size()));
      }
      std::sort(tables.rbegin(), tables.rend());
      if (!tables.empty()) line += "; MiB by table:";
      for (size_t i = 0; i < tables.size() && i < 8; ++i) {
        line += (i == 0 ? " " : ", ") + tables[i].second + " " + MiB(tables[i].first);
      }
    }
    // The server's own time for the history reads (handler start to answer, every read so
    // far, warm-ups included): a slow read the server answered fast waited before it ran
    // (for a connection's io thread or a core), not inside the store.
    // Split by the history cache: a miss reads the store and decodes chunks.
    auto slow = [&](const std::string& prefix, const std::string& what) {
      const auto all = MetricSum(r->body, prefix + "+Inf\"}");
      if (!all || *all == 0) return;
      line += "; " + what + " over 2.5 / 5 / 10 ms:";
      const char* bounds[] = {"0.0025", "0.005", "0.01"};
      for (size_t i = 0; i < std::size(bounds); ++i) {
        const uint64_t under = MetricSum(r->body, prefix + bounds[i] + "\"}").value_or(0);
        line += (i == 0 ? " " : " / ") + Thousands(*all - under);
      }
      line += " of " + Thousands(*all);
    };
    slow("strata_http_request_seconds_bucket{route=\"/v1/members/{member}/viewing\","
         "method=\"GET\",le=\"",
         "reads inside the server");
    slow("strata_viewing_read_seconds_bucket{cache=\"hit\",le=\"", "of them cache hits");
    slow("strata_viewing_read_seconds_bucket{cache=\"miss\",le=\"", "cache misses");
    // Reads wait for a member's lock while a roll-up or rotation commits (exclusive).
    slow("strata_viewing_member_lock_wait_seconds_bucket{op=\"read\",le=\"",
         "reads waiting for their member lock");
    slow("strata_viewing_member_lock_held_seconds_bucket{by=\"rollup\",le=\"",
         "roll-up commits holding it");
    slow("strata_viewing_member_lock_held_seconds_bucket{by=\"rotation\",le=\"",
         "rotation commits holding it");
    return line;
  }

  const std::string& body(size_t i) const { return bodies_[i]; }
  uint16_t port() const { return static_cast<uint16_t>(port_); }
  int timeout_ms() const { return o_.timeout_ms; }
  int read_limit() const { return o_.read_limit; }

 private:
  absl::Status Launch() {
    // A fresh port each time: the restarted server must not wait for the old one's socket.
    STRATA_ASSIGN_OR_RETURN(port_, FreeLoopbackPort());
    ChildSpec spec;
    spec.argv = {o_.strata_binary,      "serve",       "--data-dir", data_dir_, "--port",
                 std::to_string(port_), "--log-level", "warn"};
    spec.argv.insert(spec.argv.end(), o_.strata_args.begin(), o_.strata_args.end());
    for (char** e = environ; *e != nullptr; ++e) spec.env.emplace_back(*e);
    spec.log_path = log_;
    STRATA_ASSIGN_OR_RETURN(child_, ChildProcess::Start(spec));
    return WaitUntilReady(child_.get(), "Strata", log_, kStartTimeoutS, [&] {
      http::Client c = NewClient("127.0.0.1", static_cast<uint16_t>(port_), 1000);
      auto r = c.Request("GET", "/healthz");
      return r.ok() && r->status == 200;
    });
  }

  const CompareOptions& o_;
  const std::string data_dir_;
  const std::string log_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::vector<std::string> bodies_;
};

class StrataConnection final : public Connection {
 public:
  explicit StrataConnection(StrataSystem* sys)
      : sys_(sys), client_(NewClient("127.0.0.1", sys->port(), sys->timeout_ms())) {
    limit_ = std::to_string(sys->read_limit());
  }

  int Write(size_t batch) override {
    auto r = client_.Request("POST", kEventsPath, sys_->body(batch));
    if (!r.ok()) {
      last_error = r.status().ToString();
      return 0;
    }
    if (r->status != 200)
      last_error = "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200);
    if (r->status == 200) {
      sys_->accepted.fetch_add(internal::JsonUint(r->body, "accepted").value_or(0),
                               std::memory_order_relaxed);
      sys_->dropped.fetch_add(internal::JsonUint(r->body, "dropped").value_or(0),
                              std::memory_order_relaxed);
      sys_->rejected.fetch_add(internal::CountOccurrences(r->body, "\"index\""),
                               std::memory_order_relaxed);
    }
    return r->status;
  }

  int Read(uint64_t member, size_t* rows) override {
    auto r = client_.Request("GET", Target(member));
    if (!r.ok()) {
      last_error = r.status().ToString();
      return 0;
    }
    if (r->status != 200)
      last_error = "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200);
    *rows = internal::CountOccurrences(r->body, "\"session\"");
    return r->status;
  }

  absl::Status NewestPlays(uint64_t member, std::vector<StoredPlay>* out) override {
    auto r = client_.Request("GET", Target(member));
    if (!r.ok()) return r.status();
    if (r->status != 200) {
      return absl::InternalError("HTTP " + std::to_string(r->status) + ": " +
                                 r->body.substr(0, 200));
    }
    bool detail_from = false;
    if (!internal::ParseHistoryRecords(r->body, out, &detail_from)) {
      return absl::InternalError("unreadable answer: " + r->body.substr(0, 200));
    }
    if (detail_from) {
      return absl::InternalError("the answer has detail_from: plays were folded into summaries");
    }
    return absl::OkStatus();
  }

 private:
  std::string Target(uint64_t member) const {
    return "/v1/members/" + std::to_string(member) + "/viewing?kind=play&limit=" + limit_;
  }

  StrataSystem* sys_;
  http::Client client_;
  std::string limit_;
};

absl::StatusOr<std::unique_ptr<Connection>> StrataSystem::Connect() {
  return std::unique_ptr<Connection>(new StrataConnection(this));
}

// ---- PostgreSQL ----

class PostgresSystem final : public System {
 public:
  PostgresSystem(const CompareOptions& o, const std::string& root)
      : o_(o),
        root_(root),
        pg_dir_(root + "/pg"),
        data_dir_(root + "/pg/data"),
        log_(root + "/postgres.log") {}

  std::string name() const override { return "PostgreSQL"; }
  std::string log_path() const override { return log_; }

  void BuildPayloads(const Workload& w, std::ostream& out) override {
    const auto t0 = SteadyClock::now();
    batches_.resize(w.batches.size());
    uint64_t events = 0;
    rows_ = 0;
    for (size_t i = 0; i < w.batches.size(); ++i) {
      batches_[i] = MakePgBatch(w.batches[i]);
      events += batches_[i].events;
      rows_ += batches_[i].rows;
    }
    out << "payloads: " << Thousands(batches_.size()) << " upsert parameter sets, "
        << Thousands(rows_) << " rows for " << Thousands(events)
        << " events (a batch's events with the same key merged: PostgreSQL cannot update a row "
           "twice in one command), built in "
        << Fmt("%.1f", SecondsSince(t0)) << " s\n";
  }
  void DropPayloads() override { std::vector<PgBatch>().swap(batches_); }

  absl::Status Start() override {
    if (geteuid() == 0) {
      // postgres refuses to run as root: run it as the (Debian package's) postgres user.
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
    // --no-sync: initdb's own files only; the server runs with fsync on.
    initdb.argv.insert(initdb.argv.end(), {"-D", data_dir_, "-U", kUser, "--auth=trust",
                                           "--encoding=UTF8", "--locale=C", "--no-sync"});
    STRATA_RETURN_IF_ERROR(RunToCompletion(initdb, kStartTimeoutS));
    STRATA_RETURN_IF_ERROR(Launch());
    return admin_->Exec(kPgCreateViewingTable);
  }
  void Crash() override {
    admin_.reset();
    if (child_) child_->Kill();
  }
  absl::Status Restart() override {
    // Once in a CI run (874 tests on 2 cores) the postmaster started right after the kill
    // exited at once; its log was gone with the temporary directory. What it reports is kept
    // (the log's tail) and the start is tried again, up to three times, a second apart: a
    // user restarting a crashed PostgreSQL would do the same.
    std::string first_failure;
    for (int attempt = 1;; ++attempt) {
      absl::Status s = Launch();
      if (s.ok() || !absl::IsUnavailable(s) || attempt == 3) {
        if (!s.ok() && !first_failure.empty()) {
          return absl::Status(
              s.code(), std::string(s.message()) + "; the first attempt's log: " + first_failure);
        }
        return s;
      }
      if (first_failure.empty()) first_failure = LogTail(log_, 800);
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  absl::Status Stop() override {
    admin_.reset();
    if (!child_) return absl::OkStatus();
    // SIGTERM is PostgreSQL's "smart" shutdown: it waits for clients, and there are none now.
    absl::Status s = child_->Stop(SIGTERM, kStopTimeoutS);
    child_.reset();
    return s;
  }
  pid_t pid() const override { return child_ ? child_->pid() : -1; }

  absl::StatusOr<std::unique_ptr<Connection>> Connect() override;

  absl::StatusOr<SizeFigures> Size() override {
    STRATA_RETURN_IF_ERROR(admin_->Exec("VACUUM viewing"));
    STRATA_RETURN_IF_ERROR(admin_->Exec("CHECKPOINT"));
    STRATA_ASSIGN_OR_RETURN(auto rows, admin_->Query("SELECT pg_total_relation_size('viewing')"));
    SizeFigures f;
    f.bytes = rows.empty() ? 0 : std::strtoull(rows[0][0].c_str(), nullptr, 10);
    f.wal = MeasureDirectory(data_dir_ + "/pg_wal", "").total;  // not counted; reported
    return f;
  }
  uint64_t Records(const HistoryOracle& oracle) const override {
    return oracle.play_keys() + oracle.preview_keys();
  }
  uint64_t CountRecords() override {
    auto rows = admin_->Query("SELECT count(*) FROM viewing");
    return rows.ok() && !rows->empty() ? std::strtoull((*rows)[0][0].c_str(), nullptr, 10) : 0;
  }
  std::vector<std::string> Settings() override {
    std::vector<std::string> lines = {
        "server: " + o_.pg_bin_dir + "/postgres -D " + data_dir_ +
        " -c listen_addresses=127.0.0.1 -c port=" + std::to_string(port_) +
        " -c shared_buffers=" + o_.pg_shared_buffers + " -c fsync=on (initdb --locale=C" +
        (uid_ >= 0 ? ", run as user " + o_.pg_user : "") + ")"};
    auto rows = admin_->Query(
        "SELECT name || '=' || setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
        "('server_version', 'shared_buffers', 'fsync', 'synchronous_commit', "
        "'full_page_writes', 'wal_level', 'max_wal_size', 'checkpoint_timeout', "
        "'wal_compression', 'autovacuum', 'work_mem', 'effective_cache_size') ORDER BY name");
    std::string s = "settings:";
    if (rows.ok()) {
      for (const auto& r : *rows) s += " " + r[0];
    }
    lines.push_back(s + " (8kB units where no unit is shown: shared_buffers counts 8kB pages)");
    lines.push_back(
        "durability: synchronous_commit=on, fsync=on: each batch's commit waits for its WAL "
        "to reach the disk");
    return lines;
  }
  std::string AfterLoad() override {
    // The planner needs statistics to pick the primary key's index for the newest plays of
    // a busy member; autovacuum gathers them within a minute or so of a bulk load, this
    // run's phases are shorter than that.
    const auto t0 = SteadyClock::now();
    absl::Status s = admin_->Exec("ANALYZE viewing");
    return s.ok() ? "ANALYZE viewing after the history load (untimed; autovacuum would do it "
                    "in time): " +
                        Fmt("%.1f", SecondsSince(t0)) + " s"
                  : "ANALYZE failed: " + s.ToString();
  }
  std::string Diagnostics() override {
    auto bg = admin_->Query(
        "SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_backend "
        "FROM pg_stat_bgwriter");
    auto t = admin_->Query(
        "SELECT n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count "
        "FROM pg_stat_user_tables WHERE relname = 'viewing'");
    if (!bg.ok() || !t.ok() || bg->empty() || t->empty()) return "";
    const auto& b = (*bg)[0];
    const auto& v = (*t)[0];
    return "checkpoints " + b[0] + " timed + " + b[1] + " requested (" + b[2] +
           " buffers written by checkpoints, " + b[3] + " by backends); table: " + v[0] +
           " live and " + v[1] + " dead tuples, autovacuum ran " + v[2] + "x, autoanalyze " + v[3] +
           "x";
  }
  std::string ReadPlan(uint64_t member) override {
    // The plan of the very statement the reads execute.
    if (!admin_->NewestPlays(member, o_.read_limit, nullptr).ok()) return "";
    auto rows = admin_->Query("EXPLAIN (COSTS OFF) EXECUTE newest(" + std::to_string(member) + ")");
    if (!rows.ok()) return "";
    std::string plan;
    for (const auto& r : *rows) {
      std::string line = r[0];
      line.erase(0, line.find_first_not_of(" ->"));
      plan += (plan.empty() ? "" : " -> ") + line;
    }
    return plan;
  }

  const PgBatch& batch(size_t i) const { return batches_[i]; }
  std::string ConnInfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + kUser +
           " dbname=postgres connect_timeout=10";
  }
  int read_limit() const { return o_.read_limit; }
  uint64_t rows() const { return rows_; }

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

  absl::Status Launch() {
    admin_.reset();
    STRATA_ASSIGN_OR_RETURN(port_, FreeLoopbackPort());
    ChildSpec spec = Spec(o_.pg_bin_dir + "/postgres", log_);
    spec.argv.insert(spec.argv.end(),
                     {"-D", data_dir_, "-c", "listen_addresses=127.0.0.1", "-c",
                      "port=" + std::to_string(port_), "-c", "unix_socket_directories=" + pg_dir_,
                      "-c", "shared_buffers=" + o_.pg_shared_buffers, "-c", "fsync=on"});
    STRATA_ASSIGN_OR_RETURN(child_, ChildProcess::Start(spec));
    return WaitUntilReady(child_.get(), "PostgreSQL", log_, kStartTimeoutS, [&] {
      auto c = PgConnection::Connect(ConnInfo());
      if (!c.ok()) return false;
      admin_ = std::move(*c);
      return true;
    });
  }

  const CompareOptions& o_;
  const std::string root_;
  const std::string pg_dir_;
  const std::string data_dir_;
  const std::string log_;
  int uid_ = -1;
  int gid_ = -1;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::unique_ptr<PgConnection> admin_;
  std::vector<PgBatch> batches_;
  uint64_t rows_ = 0;
};

class PostgresConnection final : public Connection {
 public:
  PostgresConnection(PostgresSystem* sys, std::unique_ptr<PgConnection> conn)
      : sys_(sys), conn_(std::move(conn)) {}

  int Write(size_t batch) override {
    absl::Status s = conn_->Upsert(sys_->batch(batch));
    if (s.ok()) return 200;
    last_error = s.ToString();
    return 500;
  }

  int Read(uint64_t member, size_t* rows) override {
    auto n = conn_->NewestPlays(member, sys_->read_limit(), nullptr);
    if (!n.ok()) {
      last_error = n.status().ToString();
      return 500;
    }
    *rows = *n;
    return 200;
  }

  absl::Status NewestPlays(uint64_t member, std::vector<StoredPlay>* out) override {
    return conn_->NewestPlays(member, sys_->read_limit(), out).status();
  }

 private:
  PostgresSystem* sys_;
  std::unique_ptr<PgConnection> conn_;
};

absl::StatusOr<std::unique_ptr<Connection>> PostgresSystem::Connect() {
  STRATA_ASSIGN_OR_RETURN(auto conn, PgConnection::Connect(ConnInfo()));
  return std::unique_ptr<Connection>(new PostgresConnection(this, std::move(conn)));
}

}  // namespace

std::unique_ptr<System> MakeStrataSystem(const CompareOptions& options, const std::string& root) {
  return std::make_unique<StrataSystem>(options, root);
}

std::unique_ptr<System> MakePostgresSystem(const CompareOptions& options, const std::string& root) {
  return std::make_unique<PostgresSystem>(options, root);
}

}  // namespace strata::bench::compare
