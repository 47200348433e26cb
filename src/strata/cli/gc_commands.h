// The `strata gc ...` commands: runs of the lifecycle collector (garbage collection, or
// archival with --task archive) on a running server (docs/gc.md). Each function runs one
// parsed command and returns the process exit code (see call.h). No CLI11 here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace strata::cli {

struct GcArgs {
  std::string server_url = "http://127.0.0.1:8080";
  std::string task = "gc";        // gc or archive: the lifecycle task addressed
  bool dry_run = false;           // run
  bool no_wait = false;           // run: print the started run and return
  std::optional<int64_t> as_of;   // run: eligibility as of this time (ms since the epoch)
  uint64_t run_id = 0;            // show
  int days = 7;                   // stats
  int limit = 20;                 // runs
};

// Starts a run and, unless no_wait, polls it until it is done or failed and prints its final
// record. Exit code 0 when the run is done (or, with no_wait, was accepted).
int GcRun(const GcArgs& args);
int GcShow(const GcArgs& args);
int GcRuns(const GcArgs& args);
int GcStats(const GcArgs& args);
int GcStatus(const GcArgs& args);

}  // namespace strata::cli
