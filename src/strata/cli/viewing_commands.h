// The `strata viewing ...`, `strata member ...` and `strata demo ...` commands: requests to a
// running server's viewing-history API (docs/api.md). Each function runs one parsed command
// and returns the process exit code (see call.h). No CLI11 here: cli.cc fills the arguments.
#pragma once

#include <cstdint>
#include <string>

namespace strata::cli {

// Arguments of the viewing commands (each command reads the ones it declares in cli.cc).
struct ViewingArgs {
  std::string server_url = "http://127.0.0.1:8080";
  uint64_t member = 0;
  std::string kind = "play";          // history, rollup: play or preview
  std::string since, until, cursor;   // history: passed through as given
  int limit = 50;                     // history: records per page
  bool sweep = false;                 // rotation: start a sweep instead of showing progress
  std::string ingest_file = "-";      // ingest: NDJSON file, "-" = stdin
};

int ViewingHistory(const ViewingArgs& args);
int ViewingSummary(const ViewingArgs& args);
int ViewingLanguages(const ViewingArgs& args);
int ViewingRotate(const ViewingArgs& args);
int ViewingRotation(const ViewingArgs& args);
int ViewingRollup(const ViewingArgs& args);
int ViewingTables(const ViewingArgs& args);
int ViewingIngest(const ViewingArgs& args);

// `strata member delete`: erases the member everywhere.
int MemberDelete(const std::string& server_url, uint64_t member);

// `strata demo load`: posts the demo dataset (demo_data.h) for `members` members.
int DemoLoad(const std::string& server_url, uint64_t members);

}  // namespace strata::cli
