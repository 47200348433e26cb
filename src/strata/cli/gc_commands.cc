#include "strata/cli/gc_commands.h"

#include <chrono>
#include <iostream>
#include <thread>

#include "strata/cli/call.h"
#include "strata/http/http_client.h"

namespace strata::cli {
namespace {

std::string LifecyclePath(const GcArgs& args) { return "/v1/" + args.task; }

}  // namespace

int GcRun(const GcArgs& args) {
  const std::string lifecycle = LifecyclePath(args);
  std::optional<http::Client> client = ClientFor(args.server_url);
  if (!client) return 2;
  std::string body = std::string("{\"dry_run\":") + (args.dry_run ? "true" : "false");
  if (args.as_of) body += ",\"as_of\":" + std::to_string(*args.as_of);
  body += "}";
  auto response = client->Request("POST", lifecycle + "/runs", body, "application/json");
  if (!response.ok()) {
    PrintTransportError(args.server_url, response.status());
    return 1;
  }
  if (response->status != 202 || args.no_wait) {
    std::cout << response->body << "\n";
    return response->status == 202 ? 0 : 1;
  }
  const size_t at = response->body.find("\"id\":");
  const std::string id = response->body.substr(at + 5, response->body.find(',', at) - at - 5);
  for (;;) {
    auto run = client->Request("GET", lifecycle + "/runs/" + id, "", "");
    if (!run.ok()) {
      PrintTransportError(args.server_url, run.status());
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

int GcShow(const GcArgs& args) {
  return Call(args.server_url, "GET", LifecyclePath(args) + "/runs/" + std::to_string(args.run_id));
}

int GcRuns(const GcArgs& args) {
  return Call(args.server_url, "GET",
              LifecyclePath(args) + "/runs?limit=" + std::to_string(args.limit));
}

int GcStats(const GcArgs& args) {
  return Call(args.server_url, "GET",
              LifecyclePath(args) + "/stats?days=" + std::to_string(args.days));
}

int GcStatus(const GcArgs& args) {
  return Call(args.server_url, "GET", LifecyclePath(args) + "/status");
}

}  // namespace strata::cli
