#include "strata/cli/cli.h"

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "bench/gc_bench.h"
#include "bench/object_bench.h"
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

// POST <lifecycle>/runs, then (if `wait`) polls the run until it is done or failed and
// prints its final record. Exit code 0 when the run is done.
int RunLifecycle(const std::string& url, const std::string& lifecycle, bool dry_run,
                 std::optional<int64_t> as_of, bool wait) {
  auto endpoint = http::ParseUrl(url);
  if (!endpoint.ok()) {
    std::cerr << "strata: " << endpoint.status().message() << "\n";
    return 2;
  }
  http::Client client(endpoint->host, endpoint->port);
  std::string body = std::string("{\"dry_run\":") + (dry_run ? "true" : "false");
  if (as_of) body += ",\"as_of\":" + std::to_string(*as_of);
  body += "}";
  auto response = client.Request("POST", lifecycle + "/runs", body, "application/json");
  if (!response.ok()) {
    std::cerr << "strata: " << url << ": " << response.status().message() << "\n";
    return 1;
  }
  if (response->status != 202 || !wait) {
    std::cout << response->body << "\n";
    return response->status == 202 ? 0 : 1;
  }
  const size_t at = response->body.find("\"id\":");
  const std::string id = response->body.substr(at + 5, response->body.find(',', at) - at - 5);
  for (;;) {
    auto run = client.Request("GET", lifecycle + "/runs/" + id, "", "");
    if (!run.ok()) {
      std::cerr << "strata: " << url << ": " << run.status().message() << "\n";
      return 1;
    }
    const bool done = run->body.find("\"state\":\"done\"") != std::string::npos;
    const bool failed = run->body.find("\"state\":\"failed\"") != std::string::npos;
    if (run->status != 200 || done || failed) {
      std::cout << run->body << "\n";
      return done ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// A file mapped into memory, so `object put` sends a large file without reading it into a
// buffer first (the kernel pages it in as the socket takes it).
class MappedFile {
 public:
  ~MappedFile() {
    if (data_ != nullptr && size_ > 0) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool Open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd_ < 0 || ::fstat(fd_, &st) != 0) return false;
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return true;
    data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (data_ == MAP_FAILED) {
      data_ = nullptr;
      return false;
    }
    return true;
  }
  std::string_view view() const {
    return data_ == nullptr ? std::string_view() : std::string_view(static_cast<char*>(data_), size_);
  }

 private:
  int fd_ = -1;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// The path of an object: /v1/buckets/{bucket}/objects/{key}, each '/'-separated key segment
// percent-encoded.
std::string ObjectTarget(const std::string& bucket, const std::string& key) {
  std::string target = "/v1/buckets/" + http::UrlEncode(bucket) + "/objects/";
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    target += http::UrlEncode(key.substr(start, slash - start));
    if (slash == std::string::npos) break;
    target += "/";
    start = slash + 1;
  }
  return target;
}

// GET/HEAD of an object: the body to stdout or a file, headers to stderr with --headers.
int CallObject(const std::string& url, const std::string& method, const std::string& target,
               const std::string& range, const std::string& out_file, bool show_headers) {
  auto endpoint = http::ParseUrl(url);
  if (!endpoint.ok()) {
    std::cerr << "strata: " << endpoint.status().message() << "\n";
    return 2;
  }
  http::Client client(endpoint->host, endpoint->port);
  std::vector<std::pair<std::string, std::string>> headers;
  if (!range.empty()) headers.emplace_back("Range", range);
  auto response = client.Request(method, target, "", "", headers);
  if (!response.ok()) {
    std::cerr << "strata: " << url << ": " << response.status().message() << "\n";
    return 1;
  }
  const bool ok = response->status >= 200 && response->status < 300;
  if (method == "HEAD" || show_headers) {
    std::ostream& out = method == "HEAD" ? std::cout : std::cerr;
    out << "HTTP " << response->status << "\n";
    for (const auto& [name, value] : response->headers) out << name << ": " << value << "\n";
  }
  if (method == "HEAD") return ok ? 0 : 1;
  if (!ok || out_file.empty() || out_file == "-") {
    std::cout.write(response->body.data(), static_cast<std::streamsize>(response->body.size()));
    if (!ok && !response->body.empty() && response->body.back() != '\n') std::cout << "\n";
    return ok ? 0 : 1;
  }
  std::ofstream out(out_file, std::ios::binary);
  out.write(response->body.data(), static_cast<std::streamsize>(response->body.size()));
  if (!out) {
    std::cerr << "strata: output: cannot write " << out_file << "\n";
    return 1;
  }
  return 0;
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
  serve->add_option("--request-slice-us", c->request_slice_us,
                    "Time slice (us) of the threads answering requests, so they preempt "
                    "background work (Linux 6.12+; 0 = kernel default)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
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
  serve->add_option("--rollup-max-live-rows", v.rollup_max_live_rows,
                    "Live rows per member that always trigger a roll-up (caps the fraction)")
      ->capture_default_str();
  serve->add_option("--rollup-threads", v.rollup_threads, "Background roll-up workers")
      ->capture_default_str();
  serve->add_option("--segment-records", v.segment_records,
                    "Records per compressed chunk (segment), each decodable alone")
      ->capture_default_str();
  serve->add_option("--past-segment-records", v.past_segment_records,
                    "Records per compressed chunk of the past tier")
      ->capture_default_str();
  serve->add_option("--zstd-level", v.zstd_level, "zstd level of compressed blobs (1-19)")
      ->capture_default_str();
  serve->add_option("--cache-bytes", v.cache_bytes, "History cache budget")
      ->capture_default_str();
  serve->add_option("--read-threads", v.read_threads, "Threads for parallel reads on a miss")
      ->capture_default_str();
  serve->add_option("--encode-threads", v.encode_threads,
                    "Background threads encoding large roll-ups and rotations in parallel "
                    "(0 = none)")
      ->capture_default_str();
  serve->add_option("--recent-age-ms", v.recent_age_ms,
                    "Plays older than this move from the recent to the past tier")
      ->capture_default_str();
  serve->add_option("--historical-age-ms", v.historical_age_ms,
                    "Plays older than this are folded into the historical summary")
      ->capture_default_str();
  serve->add_option("--past-summary-min-records", v.past_summary_min_records,
                    "Store a member's past-tier summary from this many past plays (0 = always)")
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
  serve->add_option("--blob-part-bytes", c->blob_part_bytes,
                    "Bytes of one part file of an object (larger objects get several)")
      ->capture_default_str();
  serve->add_option("--blob-inline-max-bytes", c->blob_inline_max_bytes,
                    "Objects up to this size keep their bytes in the row store, not a file "
                    "(0 = all files)")
      ->capture_default_str();
  serve->add_option("--max-object-bytes", c->max_object_bytes,
                    "Largest object a PUT accepts (streamed); larger get 413")
      ->capture_default_str();
  serve->add_option("--gc-daily-at", c->gc_daily_at,
                    "Daily GC run at this UTC time, HH:MM (\"\" = on demand only)")
      ->capture_default_str();
  serve->add_option("--gc-min-workers", c->gc_min_workers, "Sweep workers at least")
      ->capture_default_str();
  serve->add_option("--gc-max-workers", c->gc_max_workers,
                    "Sweep workers at most (0 = half the cores, at least --gc-min-workers)")
      ->capture_default_str();
  serve->add_option("--gc-backlog-per-worker", c->gc_backlog_per_worker,
                    "One more sweep worker per this many queued items")
      ->capture_default_str();
  serve->add_option("--gc-sweep-batch", c->gc_sweep_batch,
                    "Items per sweep batch: one directory fsync and one queue commit each")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  serve->add_option("--gc-initial-rate", c->gc_initial_rate, "Sweep rate at start, items/s")
      ->capture_default_str();
  serve->add_option("--gc-min-rate", c->gc_min_rate, "Sweep rate floor, items/s")
      ->capture_default_str();
  serve->add_option("--gc-max-rate", c->gc_max_rate, "Sweep rate ceiling, items/s")
      ->capture_default_str();
  serve->add_option("--gc-rate-step", c->gc_rate_step,
                    "Items/s added to the sweep rate per healthy 500 ms interval")
      ->capture_default_str();
  serve->add_option("--gc-latency-factor", c->gc_latency_factor,
                    "Back off when object GET/PUT p99 exceeds this x its idle p99")
      ->capture_default_str();
  serve->add_option("--gc-latency-floor-ms", c->gc_latency_floor_ms,
                    "Object p99 below this never slows the sweep (noise floor)")
      ->capture_default_str();
  serve->add_option("--gc-orphan-age-ms", c->gc_orphan_age_ms,
                    "Uploads not committed after this long are abandoned; the GC deletes their "
                    "bytes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve->add_option("--gc-max-pending-compaction-bytes", c->gc_max_pending_compaction_bytes,
                    "Back off above this RocksDB compaction debt")
      ->capture_default_str();
  serve->add_option("--gc-export", c->gc_export,
                    "Export each run's snapshot as NDJSON under <data-dir>/lifecycle-export")
      ->capture_default_str();
  serve->add_option("--archive-after-ms", c->archive_after_ms,
                    "Move objects older than this to --archive-class (0 = off)")
      ->capture_default_str();
  serve->add_option("--archive-class", c->archive_class, "Storage class archival moves to")
      ->capture_default_str();
  serve->add_option("--archive-daily-at", c->archive_daily_at,
                    "Daily archival run at this UTC time, HH:MM")
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
  CLI::App* drop_caches = admin->add_subcommand(
      "drop-caches", "Empty the viewing history and summary caches (cold-read measurements)");
  add_server(drop_caches);

  // Media buckets and objects.
  CLI::App* bucket_cmd = app.add_subcommand("bucket", "Media buckets and their lifecycle policy");
  bucket_cmd->require_subcommand(1);
  std::string bucket_name, ttl, grace = "7d", storage_class = "hot";
  CLI::App* bucket_put = bucket_cmd->add_subcommand("put", "Create a bucket or set its policy");
  bucket_put->add_option("bucket", bucket_name, "Bucket name")->required();
  bucket_put->add_option("--ttl", ttl, "Objects expire this long after creation (e.g. 30d)");
  bucket_put->add_option("--grace", grace, "Deleted objects are restorable this long")
      ->capture_default_str();
  bucket_put->add_option("--storage-class", storage_class, "Storage class of new objects")
      ->capture_default_str();
  add_server(bucket_put);
  CLI::App* bucket_get = bucket_cmd->add_subcommand("get", "A bucket's policy");
  bucket_get->add_option("bucket", bucket_name, "Bucket name")->required();
  add_server(bucket_get);

  CLI::App* object_cmd = app.add_subcommand("object", "Media objects");
  object_cmd->require_subcommand(1);
  std::string object_key, object_file = "-", content_type = "application/octet-stream";
  std::string range, prefix, after, meta_filter;
  std::vector<std::string> metas;
  bool show_headers = false;
  int list_limit = 100;
  auto add_object = [&](CLI::App* cmd) {
    cmd->add_option("bucket", bucket_name, "Bucket name")->required();
    cmd->add_option("key", object_key, "Object key")->required();
    add_server(cmd);
  };
  CLI::App* object_put = object_cmd->add_subcommand("put", "Upload a file as an object");
  add_object(object_put);
  object_put->add_option("file", object_file, "File to upload")->required();
  object_put->add_option("--content-type", content_type, "Content type")->capture_default_str();
  object_put->add_option("--meta", metas, "User metadata key=value (repeatable)");
  object_put->add_option("--ttl", ttl, "Overrides the bucket's TTL (e.g. 15d, 0 = never)");
  CLI::App* object_get = object_cmd->add_subcommand("get", "Download an object");
  add_object(object_get);
  object_get->add_option("-o,--output", object_file, "Output file, - for stdout")
      ->capture_default_str();
  object_get->add_option("--range", range, "Byte range, e.g. bytes=0-1023");
  object_get->add_flag("--headers", show_headers, "Print the reply headers to stderr");
  CLI::App* object_head = object_cmd->add_subcommand("head", "An object's metadata headers");
  add_object(object_head);
  CLI::App* object_delete = object_cmd->add_subcommand("delete", "Soft-delete an object");
  add_object(object_delete);
  CLI::App* object_restore =
      object_cmd->add_subcommand("restore", "Restore a soft-deleted object (grace period)");
  add_object(object_restore);
  CLI::App* object_list = object_cmd->add_subcommand("list", "List or search a bucket's objects");
  object_list->add_option("bucket", bucket_name, "Bucket name")->required();
  object_list->add_option("--prefix", prefix, "Key prefix");
  object_list->add_option("--after", after, "Start after this key (next_after)");
  object_list->add_option("--limit", list_limit, "Objects per page (1-1000)")
      ->capture_default_str();
  object_list->add_option("--meta", meta_filter, "Search: only objects with metadata key=value");
  bool list_deleted = false;
  object_list->add_flag("--deleted", list_deleted,
                        "List soft-deleted objects that can still be restored");
  add_server(object_list);

  // The lifecycle collector (garbage collection; --task archive for archival).
  CLI::App* gc_cmd = app.add_subcommand("gc", "Garbage collection (and archival) runs");
  gc_cmd->require_subcommand(1);
  std::string gc_task = "gc";
  bool gc_dry_run = false, gc_no_wait = false;
  std::optional<int64_t> gc_as_of;
  uint64_t gc_run_id = 0;
  int gc_days = 7, gc_limit = 20;
  auto add_task = [&](CLI::App* cmd) {
    add_server(cmd);
    cmd->add_option("--task", gc_task, "gc or archive")
        ->check(CLI::IsMember({"gc", "archive"}))
        ->capture_default_str();
  };
  CLI::App* gc_run = gc_cmd->add_subcommand("run", "Start a run and wait for it to finish");
  gc_run->add_flag("--dry-run", gc_dry_run, "Mark only: export and count, delete nothing");
  gc_run->add_option("--as-of", gc_as_of,
                     "Eligibility as of this time, ms since the epoch (future: dry runs only)");
  gc_run->add_flag("--no-wait", gc_no_wait, "Print the started run and return");
  add_task(gc_run);
  CLI::App* gc_show = gc_cmd->add_subcommand("show", "A run's record");
  gc_show->add_option("id", gc_run_id, "Run id")->required();
  add_task(gc_show);
  CLI::App* gc_runs = gc_cmd->add_subcommand("runs", "The latest runs, newest first");
  gc_runs->add_option("--limit", gc_limit, "How many")->capture_default_str();
  add_task(gc_runs);
  CLI::App* gc_stats = gc_cmd->add_subcommand("stats", "Objects and bytes per day");
  gc_stats->add_option("--days", gc_days, "Days up to today")->capture_default_str();
  add_task(gc_stats);
  CLI::App* gc_status = gc_cmd->add_subcommand("status", "Backlog, throttle rate, workers");
  add_task(gc_status);

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
  bench_viewing->add_option("--warmup", bo.warmup_s,
                            "tiers mode: seconds of unmeasured mix before the baseline")
      ->capture_default_str();
  bench_viewing->add_option("--client-slice-us", bo.client_slice_us,
                            "Time slice (us) of the bench's connection threads, so waiting on "
                            "the server's threads does not count as latency (0 = kernel default)")
      ->capture_default_str();
  bench_viewing->add_option("--read-dispatch", bo.read_dispatch,
                            "Paced reads: \"pool\" (one arrival schedule, next free reader "
                            "connection) or \"connection\" (a schedule per connection)")
      ->capture_default_str();
  bench_viewing->add_option("--write-connections", bo.write_connections,
                            "Writer connections in mix mode (0 = 3/8 of --connections)")
      ->capture_default_str();
  bench_viewing->add_option("--pregenerate", bo.pregenerate_events,
                            "Build this many events' request bodies before the timed phase "
                            "(0 = build each batch just before sending it)")
      ->capture_default_str();
  bench_viewing->add_option("--miss-passes", bo.miss_passes,
                            "tiers mode: passes of cache-miss summary reads (caches dropped "
                            "between passes)")
      ->capture_default_str();
  bench_viewing->add_option("--after", bo.after_s,
                            "tiers mode: seconds of the mix after the rotation is done, the "
                            "control phase (0 = skip)")
      ->capture_default_str();
  bool no_settle = false;
  bench_viewing->add_flag("--no-settle", no_settle,
                          "Tiers mode: start the rotation phase right after loading its data, "
                          "without compacting first");
  bool no_compact = false;
  bench_viewing->add_flag("--no-compact", no_compact,
                          "Measure bytes per record without compacting first");

  bench::ObjectBenchOptions ob;
  bench::GcBenchOptions gb;
  CLI::App* bench_gc = bench->add_subcommand(
      "gc", "Garbage collection: load N objects (40% expiring), time the sweep, online p99");
  bench_gc->add_option("--server", gb.server, "Server URL")->capture_default_str();
  bench_gc->add_option("--objects", gb.objects, "Objects to load")->capture_default_str();
  bench_gc->add_option("--eligible-fraction", gb.eligible_fraction,
                       "Share of the objects that expire at once")
      ->capture_default_str();
  bench_gc->add_option("--object-bytes", gb.object_bytes, "Size of an object")
      ->capture_default_str();
  bench_gc->add_option("--connections", gb.connections, "Connections of the load phase")
      ->capture_default_str();
  bench_gc->add_option("--online-rate", gb.online_rate,
                       "Online GET+PUT requests/s measured idle and during the sweep")
      ->capture_default_str();
  bench_gc->add_option("--idle-seconds", gb.idle_seconds, "Length of the idle measurement")
      ->capture_default_str();
  bench_gc->add_option("--after-seconds", gb.after_seconds,
                       "Length of the control measurement after the run (0 = none)")
      ->capture_default_str();
  CLI::App* bench_objects =
      bench->add_subcommand("objects", "Media objects: PUT/GET throughput, DELETE under load");
  bench_objects->add_option("--server", ob.server, "Server URL")->capture_default_str();
  bench_objects->add_option("--connections", ob.connections, "Concurrent connections")
      ->capture_default_str();
  bench_objects->add_option("--load-connections", ob.load_connections,
                            "Connections writing and reading during the delete phase")
      ->capture_default_str();
  bench_objects->add_option("--small-count", ob.small_count, "Small objects")
      ->capture_default_str();
  bench_objects->add_option("--small-bytes", ob.small_bytes, "Size of a small object")
      ->capture_default_str();
  bench_objects->add_option("--large-count", ob.large_count, "Large objects")
      ->capture_default_str();
  bench_objects->add_option("--large-bytes", ob.large_bytes, "Size of a large object")
      ->capture_default_str();

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
  if (bucket_put->parsed()) {
    std::string body = "{\"ttl\":" + (ttl.empty() ? std::string("null") : "\"" + ttl + "\"") +
                       ",\"grace\":\"" + grace + "\",\"storage_class\":\"" + storage_class + "\"}";
    return Call(server_url, "PUT", "/v1/buckets/" + http::UrlEncode(bucket_name), body);
  }
  if (bucket_get->parsed()) {
    return Call(server_url, "GET", "/v1/buckets/" + http::UrlEncode(bucket_name));
  }
  if (object_put->parsed()) {
    std::vector<std::pair<std::string, std::string>> headers;
    for (const std::string& m : metas) {
      size_t eq = m.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "strata: --meta: must be key=value, got '" << m << "'\n";
        return 2;
      }
      headers.emplace_back("x-strata-meta-" + m.substr(0, eq), m.substr(eq + 1));
    }
    if (!ttl.empty()) headers.emplace_back("x-strata-ttl", ttl);
    MappedFile file;
    if (!file.Open(object_file)) {
      std::cerr << "strata: file: cannot open " << object_file << "\n";
      return 2;
    }
    auto endpoint = http::ParseUrl(server_url);
    if (!endpoint.ok()) {
      std::cerr << "strata: " << endpoint.status().message() << "\n";
      return 2;
    }
    http::Client client(endpoint->host, endpoint->port, 600'000);
    auto response = client.Request("PUT", ObjectTarget(bucket_name, object_key), file.view(),
                                   content_type, headers);
    if (!response.ok()) {
      std::cerr << "strata: " << server_url << ": " << response.status().message() << "\n";
      return 1;
    }
    std::cout << response->body << "\n";
    return response->status == 200 ? 0 : 1;
  }
  if (object_get->parsed()) {
    return CallObject(server_url, "GET", ObjectTarget(bucket_name, object_key), range,
                      object_file, show_headers);
  }
  if (object_head->parsed()) {
    return CallObject(server_url, "HEAD", ObjectTarget(bucket_name, object_key), "", "", true);
  }
  if (object_delete->parsed()) {
    return Call(server_url, "DELETE", ObjectTarget(bucket_name, object_key));
  }
  if (object_restore->parsed()) {
    return Call(server_url, "POST", ObjectTarget(bucket_name, object_key) + ":restore");
  }
  if (object_list->parsed()) {
    std::string target = "/v1/buckets/" + http::UrlEncode(bucket_name) +
                         "/objects?limit=" + std::to_string(list_limit);
    if (!prefix.empty()) target += "&prefix=" + http::UrlEncode(prefix);
    if (!after.empty()) target += "&after=" + http::UrlEncode(after);
    if (list_deleted) target += "&deleted=true";
    if (!meta_filter.empty()) {
      size_t eq = meta_filter.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "strata: --meta: must be key=value\n";
        return 2;
      }
      target += "&meta." + http::UrlEncode(meta_filter.substr(0, eq)) + "=" +
                http::UrlEncode(meta_filter.substr(eq + 1));
    }
    return Call(server_url, "GET", target);
  }
  if (demo_load->parsed()) {
    return Call(server_url, "POST", "/v1/viewing/events",
                DemoEvents(demo_members, SystemClock::Default()->NowMillis()),
                "application/x-ndjson");
  }
  if (compact->parsed()) return Call(server_url, "POST", "/v1/admin/compact");
  if (drop_caches->parsed()) {
    return Call(server_url, "POST", "/v1/admin/viewing/caches:drop");
  }
  const std::string lifecycle = "/v1/" + gc_task;
  if (gc_run->parsed()) return RunLifecycle(server_url, lifecycle, gc_dry_run, gc_as_of, !gc_no_wait);
  if (gc_show->parsed()) {
    return Call(server_url, "GET", lifecycle + "/runs/" + std::to_string(gc_run_id));
  }
  if (gc_runs->parsed()) {
    return Call(server_url, "GET", lifecycle + "/runs?limit=" + std::to_string(gc_limit));
  }
  if (gc_stats->parsed()) {
    return Call(server_url, "GET", lifecycle + "/stats?days=" + std::to_string(gc_days));
  }
  if (gc_status->parsed()) return Call(server_url, "GET", lifecycle + "/status");
  if (bench_gc->parsed()) {
    auto report = bench::RunGcBench(gb, std::cout);
    if (!report.ok()) {
      std::cerr << "strata bench gc: " << report.status().ToString() << "\n";
      return 1;
    }
    return report->deleted == report->eligible ? 0 : 1;
  }
  if (bench_objects->parsed()) {
    auto report = bench::RunObjectBench(ob, std::cout);
    if (!report.ok()) {
      std::cerr << "strata bench objects: " << report.status().ToString() << "\n";
      return 1;
    }
    return 0;
  }
  if (bench_viewing->parsed()) {
    bo.compact_before_sizes = !no_compact;
    bo.settle_before_rotation = !no_settle;
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
