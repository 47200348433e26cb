#include "strata/cli/cli.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/viewing_bench.h"
#include "strata/base/clock.h"
#include "strata/base/log.h"
#include "strata/cli/demo_data.h"
#include "strata/http/http_client.h"
#include "strata/server/server.h"

namespace strata::cli {
namespace {

// Sends one request to the server named by `url` and prints the body; exit code 0 on 2xx.
int Call(const std::string& url, const std::string& method, const std::string& target,
         const std::string& body = "", const std::string& content_type = "application/json") {
  auto endpoint = http::ParseUrl(url);
  if (!endpoint.ok()) {
    std::cerr << "strata: " << endpoint.status().message() << "\n";
    return 2;
  }
  http::Client client(endpoint->host, endpoint->port);
  auto response = client.Request(method, target, body, content_type);
  if (!response.ok()) {
    std::cerr << "strata: " << url << ": " << response.status().message() << "\n";
    return 1;
  }
  std::cout << response->body;
  if (!response->body.empty() && response->body.back() != '\n') std::cout << "\n";
  return response->status >= 200 && response->status < 300 ? 0 : 1;
}

// CLI11 reads config files at the top level; `strata serve --config F` is moved there
// (`strata --config F serve`), where the file's [serve] section holds serve's options.
std::vector<std::string> HoistConfigFlag(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      std::vector<std::string> flag = {args[i], args[i + 1]};
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
      args.insert(args.begin() + 1, flag.begin(), flag.end());
      break;
    }
    if (args[i].rfind("--config=", 0) == 0) {
      std::string flag = args[i];
      args.erase(args.begin() + static_cast<long>(i));
      args.insert(args.begin() + 1, flag);
      break;
    }
  }
  return args;
}

void AddServeOptions(CLI::App* serve, server::ServerConfig* c) {
  serve->add_option("--data-dir", c->data_dir, "Directory for all data")->capture_default_str();
  serve->add_option("--address", c->http.address, "Address to listen on")->capture_default_str();
  serve->add_option("--port", c->http.port, "TCP port (0 = pick a free one)")
      ->capture_default_str();
  serve->add_option("--http-threads", c->http.threads, "HTTP I/O threads")->capture_default_str();
  serve->add_option("--max-body-bytes", c->http.max_body_bytes,
                    "Largest accepted request body; larger get 413")
      ->capture_default_str();
  serve->add_option("--block-cache-bytes", c->block_cache_bytes, "RocksDB block cache size")
      ->capture_default_str();
  serve->add_option("--sync", c->sync, "WAL fsync policy: periodic or batch")
      ->check(CLI::IsMember({"periodic", "batch"}))
      ->capture_default_str();
  serve->add_option("--sync-interval-ms", c->sync_interval_ms, "Periodic fsync interval")
      ->capture_default_str();
  auto& v = c->viewing;
  serve->add_option("--min-preview-ms", v.min_preview_watched_ms,
                    "Previews watched less than this are not stored")
      ->capture_default_str();
  serve->add_option("--play-ttl-ms", v.play_ttl_ms, "Time to live of plays (0 = keep)")
      ->capture_default_str();
  serve->add_option("--preview-ttl-ms", v.preview_ttl_ms, "Time to live of previews")
      ->capture_default_str();
  serve->add_option("--language-ttl-ms", v.language_ttl_ms,
                    "Time to live of stored language changes")
      ->capture_default_str();
  serve->add_option("--rollup-min-live-rows", v.rollup_min_live_rows,
                    "Live rows per member that trigger a roll-up")
      ->capture_default_str();
  serve->add_option("--rollup-growth-fraction", v.rollup_growth_fraction,
                    "Roll up once live rows reach this fraction of the compressed records")
      ->capture_default_str();
  serve->add_option("--rollup-threads", v.rollup_threads, "Background roll-up workers")
      ->capture_default_str();
  serve->add_option("--segment-records", v.segment_records,
                    "Records per compressed chunk (segment), each decodable alone")
      ->capture_default_str();
  serve->add_option("--zstd-level", v.zstd_level, "zstd level of compressed blobs (1-19)")
      ->capture_default_str();
  serve->add_option("--cache-bytes", v.cache_bytes, "History cache budget")
      ->capture_default_str();
  serve->add_option("--read-threads", v.read_threads, "Threads for parallel reads on a miss")
      ->capture_default_str();
  serve->add_option("--recent-age-ms", v.recent_age_ms,
                    "Plays older than this move from the recent to the past tier")
      ->capture_default_str();
  serve->add_option("--historical-age-ms", v.historical_age_ms,
                    "Plays older than this are folded into the historical summary")
      ->capture_default_str();
  serve->add_option("--rotation-slack-ms", v.rotation_slack_ms,
                    "Rotate a member once its oldest play is this far past a tier boundary")
      ->capture_default_str();
  serve->add_option("--rotation-threads", v.rotation_threads, "Background rotation workers")
      ->capture_default_str();
  serve->add_option("--rotation-max-per-s", v.rotation_max_per_s,
                    "Most member rotations started per second (0 = unthrottled)")
      ->capture_default_str();
  serve->add_option("--rotation-sweep-interval-ms", v.rotation_sweep_interval_ms,
                    "Sweep for members due a rotation this often (0 = on demand only)")
      ->capture_default_str();
  serve->add_option("--summary-cache-bytes", v.summary_cache_bytes, "Summary cache budget")
      ->capture_default_str();
  serve->add_option("--log-level", c->log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
}

}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{"strata: storage for viewing history, media objects and asset metadata"};
  app.require_subcommand(1);
  app.set_config("--config", "",
                 "Read options from this TOML/INI file: a [serve] section whose keys are the "
                 "flag names (e.g. port = 8081); also accepted after `serve`");
  app.allow_config_extras(false);  // a misspelt key is an error, not silently ignored
  std::string server_url = "http://127.0.0.1:8080";

  server::ServerConfig config;
  CLI::App* serve = app.add_subcommand("serve", "Run the server (embedded deployment)");
  AddServeOptions(serve, &config);

  auto add_server = [&](CLI::App* cmd) {
    cmd->add_option("--server", server_url, "Server URL")->capture_default_str();
  };

  // Viewing-history operator commands.
  CLI::App* viewing = app.add_subcommand("viewing", "Read and manage viewing history");
  viewing->require_subcommand(1);
  uint64_t member = 0;
  std::string kind = "play";
  std::string since, until, cursor;
  int limit = 50;
  CLI::App* history = viewing->add_subcommand("history", "A member's history, newest first");
  history->add_option("member", member, "Member id")->required();
  history->add_option("--kind", kind, "play or preview")->capture_default_str();
  history->add_option("--since", since, "Earliest started_at (ms)");
  history->add_option("--until", until, "started_at before this (ms)");
  history->add_option("--limit", limit, "Records per page (1-1000)")->capture_default_str();
  history->add_option("--cursor", cursor, "next_cursor of the previous page");
  add_server(history);
  CLI::App* summary = viewing->add_subcommand("summary", "Per-title summary of a member");
  summary->add_option("member", member, "Member id")->required();
  add_server(summary);
  CLI::App* languages = viewing->add_subcommand("languages", "Language preferences of a member");
  languages->add_option("member", member, "Member id")->required();
  add_server(languages);
  CLI::App* rotate = viewing->add_subcommand(
      "rotate", "Rotate a member's plays between the age tiers now");
  rotate->add_option("member", member, "Member id")->required();
  add_server(rotate);
  CLI::App* rotation = viewing->add_subcommand(
      "rotation", "Rotation progress; --sweep starts a sweep over every member");
  bool sweep = false;
  rotation->add_flag("--sweep", sweep, "Start a sweep that queues every member due a rotation");
  add_server(rotation);
  CLI::App* rollup = viewing->add_subcommand("rollup", "Roll a member's live rows up now");
  rollup->add_option("member", member, "Member id")->required();
  rollup->add_option("--kind", kind, "play or preview")->capture_default_str();
  add_server(rollup);
  CLI::App* tables = viewing->add_subcommand("tables", "Members, records and bytes per table");
  add_server(tables);
  std::string ingest_file = "-";
  CLI::App* ingest = viewing->add_subcommand("ingest", "Post NDJSON events from a file or stdin");
  ingest->add_option("file", ingest_file, "NDJSON file, - for stdin")->capture_default_str();
  add_server(ingest);

  CLI::App* member_cmd = app.add_subcommand("member", "Member-wide operations");
  member_cmd->require_subcommand(1);
  CLI::App* erase = member_cmd->add_subcommand("delete", "Erase a member everywhere");
  erase->add_option("member", member, "Member id")->required();
  add_server(erase);

  CLI::App* admin = app.add_subcommand("admin", "Operator actions on the store");
  admin->require_subcommand(1);
  CLI::App* compact = admin->add_subcommand("compact", "Compact every table now (blocks)");
  add_server(compact);

  CLI::App* demo = app.add_subcommand("demo", "Demo data");
  demo->require_subcommand(1);
  uint64_t demo_members = 20;
  CLI::App* demo_load = demo->add_subcommand("load", "Post the small demo dataset");
  demo_load->add_option("--members", demo_members, "Members to create")->capture_default_str();
  add_server(demo_load);

  CLI::App* bench = app.add_subcommand("bench", "Benchmarks against a running server");
  bench->require_subcommand(1);
  bench::ViewingBenchOptions bo;
  CLI::App* bench_viewing = bench->add_subcommand("viewing", "Viewing-history load generator");
  bench_viewing->add_option("--server", bo.server, "Server URL")->capture_default_str();
  bench_viewing->add_option("--mode", bo.mode, "ingest or mix")
      ->check(CLI::IsMember({"ingest", "mix", "tiers"}))
      ->capture_default_str();
  bench_viewing->add_option("--members", bo.members, "Distinct members")->capture_default_str();
  bench_viewing->add_option("--zipf", bo.zipf_s, "Zipf exponent of member activity")
      ->capture_default_str();
  bench_viewing->add_option("--connections", bo.connections, "Concurrent connections")
      ->capture_default_str();
  bench_viewing->add_option("--duration", bo.duration_s, "Timed phase, seconds")
      ->capture_default_str();
  bench_viewing->add_option("--events-per-s", bo.target_events_per_s,
                            "Target write rate (0 = as fast as possible)")
      ->capture_default_str();
  bench_viewing->add_option("--reads-per-s", bo.target_reads_per_s, "Target read rate (mix)")
      ->capture_default_str();
  bench_viewing->add_option("--batch", bo.batch_size, "Events per POST")->capture_default_str();
  bench_viewing->add_option("--heavy-members", bo.preload_heavy_members,
                            "Members preloaded with 10k+ records")
      ->capture_default_str();
  bench_viewing->add_option("--seed", bo.seed, "Workload seed")->capture_default_str();
  bench_viewing->add_option("--history-members", bo.history_members,
                            "tiers mode: members given a long history, per load phase")
      ->capture_default_str();
  bench_viewing->add_option("--history-plays", bo.history_plays,
                            "tiers mode: plays per long history")
      ->capture_default_str();
  bench_viewing->add_option("--history-years", bo.history_years,
                            "tiers mode: years a long history spans")
      ->capture_default_str();
  bench_viewing->add_option("--rotation-members", bo.rotation_members,
                            "tiers mode: members whose plays just aged out of the recent tier")
      ->capture_default_str();
  bench_viewing->add_option("--rotation-plays", bo.rotation_plays,
                            "tiers mode: aged plays per such member")
      ->capture_default_str();
  bench_viewing->add_option("--write-connections", bo.write_connections,
                            "Writer connections in mix mode (0 = 3/8 of --connections)")
      ->capture_default_str();
  bool no_compact = false;
  bench_viewing->add_flag("--no-compact", no_compact,
                          "Measure bytes per record without compacting first");

  std::vector<std::string> args = HoistConfigFlag(argc, argv);
  std::vector<char*> arg_ptrs;
  for (auto& a : args) arg_ptrs.push_back(a.data());
  CLI11_PARSE(app, static_cast<int>(arg_ptrs.size()), arg_ptrs.data());

  if (serve->parsed()) {
    log::Init(config.log_level);
    absl::Status s = server::Serve(config);
    if (!s.ok()) {
      std::cerr << "strata serve: " << s.ToString() << "\n";
      return 1;
    }
    return 0;
  }
  auto kind_query = [&] { return "kind=" + http::UrlEncode(kind); };
  if (history->parsed()) {
    std::string target = "/v1/members/" + std::to_string(member) + "/viewing?" + kind_query() +
                         "&limit=" + std::to_string(limit);
    if (!since.empty()) target += "&since=" + http::UrlEncode(since);
    if (!until.empty()) target += "&until=" + http::UrlEncode(until);
    if (!cursor.empty()) target += "&cursor=" + http::UrlEncode(cursor);
    return Call(server_url, "GET", target);
  }
  if (summary->parsed()) {
    return Call(server_url, "GET", "/v1/members/" + std::to_string(member) + "/summary");
  }
  if (languages->parsed()) {
    return Call(server_url, "GET", "/v1/members/" + std::to_string(member) + "/languages");
  }
  if (rollup->parsed()) {
    return Call(server_url, "POST",
                "/v1/members/" + std::to_string(member) + ":rollup?" + kind_query());
  }
  if (tables->parsed()) return Call(server_url, "GET", "/v1/admin/viewing/tables");
  if (rotate->parsed()) {
    return Call(server_url, "POST", "/v1/members/" + std::to_string(member) + ":rotate");
  }
  if (rotation->parsed()) {
    if (sweep) return Call(server_url, "POST", "/v1/admin/viewing/rotation:sweep");
    return Call(server_url, "GET", "/v1/admin/viewing/rotation");
  }
  if (ingest->parsed()) {
    std::stringstream body;
    if (ingest_file == "-") {
      body << std::cin.rdbuf();
    } else {
      std::ifstream in(ingest_file);
      if (!in) {
        std::cerr << "strata: file: cannot open " << ingest_file << "\n";
        return 2;
      }
      body << in.rdbuf();
    }
    return Call(server_url, "POST", "/v1/viewing/events", body.str(), "application/x-ndjson");
  }
  if (erase->parsed()) {
    return Call(server_url, "DELETE", "/v1/members/" + std::to_string(member));
  }
  if (demo_load->parsed()) {
    return Call(server_url, "POST", "/v1/viewing/events",
                DemoEvents(demo_members, SystemClock::Default()->NowMillis()),
                "application/x-ndjson");
  }
  if (compact->parsed()) return Call(server_url, "POST", "/v1/admin/compact");
  if (bench_viewing->parsed()) {
    bo.compact_before_sizes = !no_compact;
    auto report = bench::RunViewingBench(bo, std::cout);
    if (!report.ok()) {
      std::cerr << "strata bench viewing: " << report.status().ToString() << "\n";
      return 1;
    }
    return 0;
  }
  return 0;
}

}  // namespace strata::cli
