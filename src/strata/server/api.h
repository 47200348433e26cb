// The HTTP API v1 (docs/api.md): routes requests to the services, maps errors to HTTP
// statuses in one place (StatusToHttp), and records per-route request counts and latency.
// Handle() is thread-safe; it runs on the HTTP server's I/O threads.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "strata/assets/asset_service.h"
#include "strata/auth/audit_log.h"
#include "strata/auth/authenticator.h"
#include "strata/auth/key_store.h"
#include "strata/base/metrics.h"
#include "strata/base/thread_pool.h"
#include "strata/gc/collector.h"
#include "strata/http/http_server.h"
#include "strata/media/media_service.h"
#include "strata/reprocess/job_runner.h"
#include "strata/scrub/scrubber.h"
#include "strata/server/access.h"
#include "strata/server/admin_jobs.h"
#include "strata/viewing/viewing_service.h"

namespace strata::server {

// The HTTP status for an error status, and the JSON error code.
int StatusToHttp(const absl::Status& status);
std::string StatusCodeName(const absl::Status& status);
http::Response ErrorResponse(const absl::Status& status);
// A response with `status` and a JSON body.
http::Response Json(int status, std::string body);
// 405 naming the method: "method: DELETE is not allowed on this path".
http::Response MethodNotAllowed(std::string_view method);
// A non-negative (ParseUint) or signed (ParseInt) decimal path segment or query value,
// all of `s`.
bool ParseUint(std::string_view s, uint64_t* out);
// Every (name, value) of a raw query string, url-decoded, in order.
std::vector<std::pair<std::string, std::string>> QueryPairs(std::string_view query);
bool ParseInt(std::string_view s, int64_t* out);

// Backpressure of DeferToPool: how many io threads may wait for a pool at once. One io thread
// is always left to answer what needs no pool (/healthz, /metrics, small reads): a request
// that would be the next to wait is refused instead (503, Retry-After). Thread-safe.
class IoWaitGate {
 public:
  // `max_waiting`: io threads that may wait at once (the server passes its io threads - 1;
  // 0 = none may: a backlog always answers 503).
  IoWaitGate(int max_waiting, Counter* waits, Counter* refused)
      : max_waiting_(max_waiting), waits_(waits), refused_(refused) {}
  bool TryEnter();
  void Leave() { waiting_.fetch_sub(1, std::memory_order_acq_rel); }
  void set_max_waiting(int n) { max_waiting_.store(n, std::memory_order_relaxed); }
  int max_waiting() const { return max_waiting_.load(std::memory_order_relaxed); }
  Counter* waits() const { return waits_; }
  Counter* refused() const { return refused_; }

 private:
  std::atomic<int> max_waiting_;
  std::atomic<int> waiting_{0};
  Counter* waits_;    // may be null
  Counter* refused_;  // may be null
};

// Runs `work` on `pool` without holding the calling io thread: returns a deferred Response
// (http::Response::defer) that replies with work's result. When `max_queued` tasks already
// wait in the pool, it instead waits for its own task and returns the result itself: the io
// thread then stops reading new requests, so a flood of large bodies cannot pile up in memory
// behind a busy pool. With a `gate`, it waits only if the gate admits one more waiting io
// thread (counted in gate->waits()); else it answers 503 with Retry-After: 1 and an error
// naming `what` (counted in gate->refused()) without running `work`.
http::Response DeferToPool(ThreadPool* pool, size_t max_queued,
                           std::function<http::Response()> work, IoWaitGate* gate = nullptr,
                           std::string_view what = "request");

// Operations the API needs from the deployment's wiring, not from a service.
// Where the bytes of the data directory are, for the table report.
struct StoreFigures {
  uint64_t data_dir_bytes = 0;  // every file under --data-dir (WAL, tables, queue, blobs, ...)
  uint64_t wal_bytes = 0;       // RocksDB write-ahead log files still live
  uint64_t sst_bytes = 0;       // RocksDB table files
  uint64_t memtable_bytes = 0;  // in memory, not yet in table files (their data is in the WAL)
};

struct AdminHooks {
  // For /healthz: are the backends usable? Must answer at once (it runs on an io thread and
  // /healthz never waits): read flags, never wait for a lock a writer may hold.
  std::function<absl::Status()> health;
  // POST /v1/admin/compact: full compaction (runs as an admin job, on the jobs' threads).
  std::function<absl::Status()> compact;
  std::function<StoreFigures()> store;    // the table report's "store" object (may be null)
  // POST /v1/admin/backup?name=N: an online, consistent backup named N; answers where it is.
  std::function<absl::StatusOr<std::string>(const std::string& name)> backup;
};

// Who may call the API and where its audit records go (docs/api.md, "Authentication").
struct AccessControl {
  // Checks keys; null = every request is the anonymous principal (tests that build an Api
  // directly). With one, requests need a key as soon as the store holds any.
  auth::Authenticator* authenticator = nullptr;
  // Behind /v1/admin/keys; null = those routes answer 404.
  auth::KeyStore* keys = nullptr;
  // Where admin actions and hard deletes are recorded, and /v1/admin/audit reads; null = not
  // recorded (and /v1/admin/audit answers 404).
  auth::AuditLog* audit = nullptr;
};

class Api {
 public:
  // `media` may be null (its routes then answer 404).
  Api(viewing::ViewingService* viewing, media::MediaService* media, MetricsRegistry* metrics,
      AdminHooks admin);
  http::Response Handle(const http::Request& request);
  // The lifecycle collectors behind /v1/gc/... and /v1/archive/... (either may be null: its
  // routes then answer 404). Call before serving.
  void SetLifecycle(gc::Collector* gc, gc::Collector* archive) {
    gc_ = gc;
    archive_ = archive;
  }

  // The asset service behind /v1/assets/... and /v1/asset-types/... (null: 404). Call
  // before serving.
  void SetAssets(assets::AssetService* assets) { assets_ = assets; }
  // The job runner behind /v1/reprocess/... (null: 404). Call before serving.
  void SetReprocess(reprocess::JobRunner* runner) { reprocess_ = runner; }
  // The scrub behind /v1/admin/scrub (null: 404), and its rate (0: passes cannot run, so
  // POST /v1/admin/scrub:run answers 409). Call before serving.
  void SetScrub(scrub::Scrubber* scrub, uint64_t rate_bytes_per_s) {
    scrub_ = scrub;
    scrub_rate_bytes_per_s_ = rate_bytes_per_s;
  }
  // The names (host names or IP literals, no port) a request's Host may carry; also what a
  // state-changing request's Origin must name. Others get 421 (Host: DNS rebinding) or 403
  // (Origin: cross-site requests from a browser). Empty = any (the default, for tests that
  // build an Api directly; the server always sets them). Call before serving.
  void SetAllowedHosts(std::vector<std::string> hosts) { allowed_hosts_ = std::move(hosts); }
  // No io thread may wait for a backed-up pool: the HTTP server runs one event loop per io
  // thread and a connection stays on its thread, so a waiting thread would stall every
  // connection on it, /healthz included. A request that finds its pool backed up is answered
  // 503 (Retry-After) instead. Unset (tests that build an Api directly): any number may
  // wait. Call before serving.
  void RefuseWhenBackedUp() { io_waits_->set_max_waiting(0); }
  // The admin jobs (compactions, table reports) behind /v1/admin/jobs.
  AdminJobs* jobs() { return jobs_.get(); }
  // 421 or 403 for a request the allowed hosts refuse; nullopt for one they admit.
  std::optional<http::Response> CheckOrigin(const http::Request& request) const;

  // Authentication and the audit log. Call before serving.
  void SetAccessControl(AccessControl access) { access_ = access; }
  // Whether `request` may go on: nullopt when it may (its principal in *who: a key, or
  // anonymous while authentication is off); else the answer -- 401 (no key, or a malformed,
  // unknown or revoked one), 403 (the key lacks the scope `access` names) or 503 (the key
  // store cannot be read) -- with *who set when the key was valid.
  std::optional<http::Response> Authorize(const http::Request& request, const RouteAccess& access,
                                          auth::Principal* who);

  // The StreamingRoute::open of `PUT /v1/buckets/...`: an object PUT streams its body into
  // the blob store; anything else (a bucket PUT) takes the whole-body path.
  http::StreamStart OpenObjectStream(const http::Request& head);

 private:
  class ObjectSink;
  http::StreamStart StartObjectUpload(const http::Request& head, bool record_metrics);
  // An audited request's record, filled before it is routed and finished with its answer.
  struct PendingAudit {
    std::string key, action, target, detail;
  };
  PendingAudit StartAudit(const auth::Principal& who, const RouteAccess& access,
                          const http::Request& request) const;
  void FinishAudit(PendingAudit pending, const http::Response& response);
  // /v1/admin/keys[/{id}] and /v1/admin/audit.
  http::Response RouteAccessAdmin(const http::Request& request,
                                  const std::vector<std::string_view>& parts,
                                  const auth::Principal& who, std::string* route);
  // Counts a request in the per-route metrics.
  void Record(const std::string& route, const std::string& method, int status, double seconds);
  http::Response Route(const http::Request& request, const auth::Principal& who,
                       std::string* route);
  http::Response RouteMedia(const http::Request& request,
                            const std::vector<std::string_view>& parts, std::string* route);
  http::Response PutBucket(std::string_view bucket, const http::Request& request);
  http::Response GetBucket(std::string_view bucket);
  http::Response ListObjects(std::string_view bucket, const http::Request& request);
  http::Response GetObject(std::string_view bucket, const std::string& key,
                           const http::Request& request, bool head);
  http::Response DeleteObject(std::string_view bucket, const std::string& key);
  http::Response RestoreObject(std::string_view bucket, const std::string& key);
  http::Response PutObjectWhole(const http::Request& request);
  // Backlog limits for DeferToPool: ingest batches and bulk pages leave the io thread; a
  // request that finds its pool backed up is refused (503, see RefuseWhenBackedUp). A
  // connection has one request in flight, so the backlog is at most the connections
  // writing: 64 takes the 40-connection mix bench's preload (which reached 16 waiting) with
  // room, while bounding the bodies held (~100 KB per 500 events, up to max_body_bytes);
  // a bulk page request is a few hundred bytes until its pool thread builds the page, so
  // its limit only guards against a runaway backlog.
  static constexpr size_t kMaxQueuedIngest = 64;
  static constexpr size_t kMaxQueuedBulkReads = 256;
  // Shared by the ingest and bulk pools (created in the constructor).
  std::unique_ptr<IoWaitGate> io_waits_;
  http::Response PostEvents(const http::Request& request);
  http::Response Ingest(const http::Request& request);
  http::Response GetViewing(uint64_t member, const http::Request& request);
  // Reads and renders one history page (GetViewing after validation).
  http::Response HistoryPageResponse(uint64_t member, const viewing::HistoryQuery& q);
  http::Response GetSummary(uint64_t member);
  http::Response GetLanguages(uint64_t member);
  http::Response DeleteMember(uint64_t member);
  // GET: the report, run as an admin job (joining one that runs) and answered when it is
  // done; POST: starts that job, answered 202 with the job.
  http::Response ViewingTables(const http::Request& request);
  // The table report's JSON (the job's work).
  absl::StatusOr<std::string> ViewingTablesJson(const AdminJobs::ReportProgress& progress);
  http::Response RollUp(uint64_t member, const http::Request& request);
  http::Response Rotate(uint64_t member);
  http::Response RotationStatus();
  http::Response Compact(const http::Request& request);
  http::Response Backup(const http::Request& request);
  http::Response CompactStatus();
  // GET /v1/admin/jobs and /v1/admin/jobs/{id}.
  http::Response RouteJobs(const http::Request& request, const std::vector<std::string_view>& parts,
                           std::string* route);
  // A deferred response answered once job `id` is done: 200 with the job, or the job's error.
  http::Response AwaitJob(const std::string& id);
  http::Response RouteAssets(const http::Request& request,
                             const std::vector<std::string_view>& parts, std::string* route);
  http::Response RouteReprocess(const http::Request& request,
                                const std::vector<std::string_view>& parts, std::string* route);
  http::Response RouteLifecycle(const http::Request& request,
                                const std::vector<std::string_view>& parts, std::string* route);
  // GET /v1/admin/scrub, or POST /v1/admin/scrub:run when `run` (scrub_api.cc).
  http::Response RouteScrub(const http::Request& request, bool run, std::string* route);

  viewing::ViewingService* viewing_;
  media::MediaService* media_;
  // Ingest batches are parsed and written here, at a lower CPU priority than reads, and
  // deferred (the io thread goes on serving reads), so a burst of large writes neither
  // occupies the io threads nor stretches read latency.
  std::unique_ptr<ThreadPool> ingest_pool_;
  // Bulk reads (history pages of more than kBulkReadLimit records) run here, deferred and
  // slightly below normal priority, so the small "recent" reads that dominate traffic
  // always find a free io thread and preempt them.
  static constexpr uint64_t kBulkReadLimit = 100;
  std::unique_ptr<ThreadPool> bulk_pool_;
  MetricsRegistry* metrics_;
  // Request metrics looked up once per (route, method, status) and kept (Record). Per Api,
  // not static: the pointers belong to metrics_.
  struct RequestMetricKey {
    std::string route, method;
    int code;
    bool operator==(const RequestMetricKey&) const = default;
  };
  struct RequestMetricKeyHash {
    size_t operator()(const RequestMetricKey& k) const {
      return std::hash<std::string>()(k.route) ^ (std::hash<std::string>()(k.method) << 1) ^
             static_cast<size_t>(k.code);
    }
  };
  std::mutex request_metrics_mu_;
  std::unordered_map<RequestMetricKey, std::pair<Counter*, Histogram*>, RequestMetricKeyHash>
      request_metrics_;
  AdminHooks admin_;
  gc::Collector* gc_ = nullptr;
  gc::Collector* archive_ = nullptr;
  assets::AssetService* assets_ = nullptr;
  reprocess::JobRunner* reprocess_ = nullptr;
  scrub::Scrubber* scrub_ = nullptr;
  uint64_t scrub_rate_bytes_per_s_ = 0;
  std::vector<std::string> allowed_hosts_;
  AccessControl access_;
  // Long admin work (compactions, table reports) runs as jobs on their own threads, never on
  // an io thread: four concurrent compactions once held four io threads and stalled the
  // server. Last member: its threads are joined first.
  std::unique_ptr<AdminJobs> jobs_;
};

}  // namespace strata::server
