// The `strata serve`, `strata admin ...` and `strata bench ...` commands: running the
// embedded server, operator actions on its store, and the benchmarks that load a running
// server. Each function runs one parsed command and returns the process exit code (see
// call.h). No CLI11 here: cli.cc fills the options.
#pragma once

#include <string>

#include "bench/asset_bench.h"
#include "bench/compare_bench.h"
#include "bench/connections_bench.h"
#include "bench/gc_bench.h"
#include "bench/object_bench.h"
#include "bench/reprocess_bench.h"
#include "bench/viewing_bench.h"
#include "strata/server/server.h"

namespace strata::cli {

// Runs the server until it is stopped; 1 (the reason on stderr) if it could not start.
int RunServe(const server::ServerConfig& config);

// Starts an admin job (`method target` answers 202 with it); with `wait`, polls
// GET /v1/admin/jobs/{id} every 500 ms until it finishes and prints the finished job (exit 0
// if it succeeded); without, prints the 202 answer.
int RunAdminJob(const std::string& server_url, const std::string& method, const std::string& target,
                bool wait);
// `strata admin compact [--no-wait]` (a job; waits until every table is compacted unless
// told not to), `strata admin jobs [ID]` and `drop-caches`.
int AdminCompact(const std::string& server_url, bool wait);
int AdminJobs(const std::string& server_url, const std::string& id);
int AdminDropCaches(const std::string& server_url);
// `strata admin scrub [--run]`: the scrub's report (GET /v1/admin/scrub), or start a pass.
int AdminScrub(const std::string& server_url, bool run);

// `strata backup create NAME`: an online backup into the server's <data-dir>/backups/NAME.
int BackupCreate(const std::string& server_url, const std::string& name);
// `strata backup restore BACKUP_DIR --data-dir DIR`, offline: DIR must not exist (or be
// empty); the rows are copied, the blob files hard-linked when on the same filesystem.
int BackupRestore(const std::string& backup_dir, const std::string& data_dir);

// `strata bench viewing`: the viewing-history load generator; its report goes to stdout.
int BenchViewing(const bench::ViewingBenchOptions& options);
// `strata bench viewing --mode compare`: Strata against PostgreSQL (bench/compare_bench.h);
// 0 only if every system ran and passed the oracle checks.
int BenchCompare(const bench::CompareOptions& options);
// `strata bench gc`: 0 only if the sweep deleted every eligible object.
int BenchGc(const bench::GcBenchOptions& options);
// `strata bench objects`.
int BenchObjects(const bench::ObjectBenchOptions& options);
// `strata bench assets`: the asset service against PostgreSQL (bench/asset_bench.h); 0 only
// if every system ran without errors and paged every asset it created.
int BenchAssets(const bench::AssetBenchOptions& options);
// `strata bench connections`: a normal client's p99 with and without a crowd of idle and
// slow-drip connections (bench/connections_bench.h); 0 when every GET succeeded and the crowd
// stayed open (the goal's verdict is printed, not the exit code: the figures are noisy).
int BenchConnections(const bench::ConnectionsBenchOptions& options);
// `strata bench reprocess`: a `set` job over every asset under an open-loop load, optionally
// with a kill -9 (bench/reprocess_bench.h); 0 when the job succeeded, the oracle passed and
// the load saw no errors (the goals' verdicts are printed, not the exit code).
int BenchReprocess(const bench::ReprocessBenchOptions& options);

}  // namespace strata::cli
