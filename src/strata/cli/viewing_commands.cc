#include "strata/cli/viewing_commands.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "strata/base/clock.h"
#include "strata/cli/call.h"
#include "strata/cli/demo_data.h"
#include "strata/http/http_client.h"

namespace strata::cli {
namespace {

std::string MemberPath(uint64_t member) { return "/v1/members/" + std::to_string(member); }

std::string KindQuery(const ViewingArgs& args) { return "kind=" + http::UrlEncode(args.kind); }

}  // namespace

int ViewingHistory(const ViewingArgs& args) {
  std::string target = MemberPath(args.member) + "/viewing?" + KindQuery(args) +
                       "&limit=" + std::to_string(args.limit);
  if (!args.since.empty()) target += "&since=" + http::UrlEncode(args.since);
  if (!args.until.empty()) target += "&until=" + http::UrlEncode(args.until);
  if (!args.cursor.empty()) target += "&cursor=" + http::UrlEncode(args.cursor);
  return Call(args.server_url, "GET", target);
}

int ViewingSummary(const ViewingArgs& args) {
  return Call(args.server_url, "GET", MemberPath(args.member) + "/summary");
}

int ViewingLanguages(const ViewingArgs& args) {
  return Call(args.server_url, "GET", MemberPath(args.member) + "/languages");
}

int ViewingRotate(const ViewingArgs& args) {
  return Call(args.server_url, "POST", MemberPath(args.member) + ":rotate");
}

int ViewingRotation(const ViewingArgs& args) {
  if (args.sweep) return Call(args.server_url, "POST", "/v1/admin/viewing/rotation:sweep");
  return Call(args.server_url, "GET", "/v1/admin/viewing/rotation");
}

int ViewingRollup(const ViewingArgs& args) {
  return Call(args.server_url, "POST", MemberPath(args.member) + ":rollup?" + KindQuery(args));
}

int ViewingTables(const ViewingArgs& args) {
  return Call(args.server_url, "GET", "/v1/admin/viewing/tables");
}

int ViewingIngest(const ViewingArgs& args) {
  std::stringstream body;
  if (args.ingest_file == "-") {
    body << std::cin.rdbuf();
  } else {
    std::ifstream in(args.ingest_file);
    if (!in) {
      std::cerr << "strata: file: cannot open " << args.ingest_file << "\n";
      return 2;
    }
    body << in.rdbuf();
  }
  return Call(args.server_url, "POST", "/v1/viewing/events", body.str(), "application/x-ndjson");
}

int MemberDelete(const std::string& server_url, uint64_t member) {
  return Call(server_url, "DELETE", MemberPath(member));
}

int DemoLoad(const std::string& server_url, uint64_t members) {
  return Call(server_url, "POST", "/v1/viewing/events",
              DemoEvents(members, SystemClock::Default()->NowMillis()), "application/x-ndjson");
}

}  // namespace strata::cli
