// The `strata reprocess ...` commands: requests to a running server's reprocessing API
// (docs/api.md, "Reprocessing"). Each returns the process exit code (call.h). No CLI11 here:
// cli.cc fills the arguments.
#pragma once

#include <cstdint>
#include <string>

namespace strata::cli {

struct ReprocessArgs {
  std::string server_url = "http://127.0.0.1:8080";
  uint64_t id = 0;
  // start: the job body inline (--data) or from a file ("-" = stdin, the default).
  std::string data;
  std::string file;
  bool wait = false;  // start: follow the job to its end (a progress line on a terminal)
  int limit = 100;    // list, dead-letters
  std::string after;  // dead-letters: asset id to start after
  bool retry = false;  // dead-letters: put them back on the job's queue instead of listing
};

int ReprocessStart(const ReprocessArgs& args);
int ReprocessStatus(const ReprocessArgs& args);
int ReprocessList(const ReprocessArgs& args);
// action: "pause", "resume" or "cancel".
int ReprocessAction(const ReprocessArgs& args, const std::string& action);
int ReprocessDeadLetters(const ReprocessArgs& args);

// "[#####.....]  50% 500/1000 processed, 20 changed, 0 dead, 250/s" for a job's JSON.
std::string ProgressLine(const std::string& job_json);

}  // namespace strata::cli
