#include "strata/cli/reprocess_commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <thread>

#include "strata/cli/call.h"
#include "strata/http/http_client.h"

namespace strata::cli {
namespace {

// The number after "\"key\":" in a flat JSON text (the job's counters), or nullopt.
std::optional<double> NumberAfter(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return std::nullopt;
  try {
    return std::stod(json.substr(at + needle.size(), 32));
  } catch (...) {
    return std::nullopt;
  }
}

std::string StringAfter(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return "";
  const size_t end = json.find('"', at + needle.size());
  return json.substr(at + needle.size(), end - at - needle.size());
}

// GET of a job; the body, or nullopt with the error printed.
std::optional<std::string> FetchJob(const ReprocessArgs& a, uint64_t id) {
  std::optional<http::Client> client = ClientFor(a.server_url);
  if (!client) return std::nullopt;
  auto r = client->Request("GET", "/v1/reprocess/jobs/" + std::to_string(id), "", "", {});
  if (!r.ok()) {
    PrintTransportError(a.server_url, r.status());
    return std::nullopt;
  }
  if (r->status != 200) {
    std::cerr << "strata: " << r->body << "\n";
    return std::nullopt;
  }
  return r->body;
}

}  // namespace

std::string ProgressLine(const std::string& job) {
  const double selected = NumberAfter(job, "selected").value_or(0);
  const double processed = NumberAfter(job, "processed").value_or(0);
  const double dead = NumberAfter(job, "dead_lettered").value_or(0);
  const double changed = NumberAfter(job, "changed").value_or(0);
  const double rate = NumberAfter(job, "rate").value_or(0);
  const double done = processed + dead;
  const double fraction = selected > 0 ? std::min(1.0, done / selected) : 0;
  const int width = 20;
  const int filled = static_cast<int>(fraction * width);
  std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
  char line[256];
  std::snprintf(line, sizeof(line),
                "%s %3.0f%% %.0f/%.0f processed, %.0f changed, %.0f dead, %.0f/s %s", bar.c_str(),
                fraction * 100, done, selected, changed, dead, rate,
                StringAfter(job, "state").c_str());
  return line;
}

int ReprocessStart(const ReprocessArgs& a) {
  std::string body = a.data;
  if (body.empty()) {
    const std::string path = a.file.empty() ? "-" : a.file;
    if (path == "-") {
      body.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        std::cerr << "strata: job: cannot read " << path << "\n";
        return 2;
      }
      std::ostringstream s;
      s << in.rdbuf();
      body = s.str();
    }
  }
  if (!a.wait) return Call(a.server_url, "POST", "/v1/reprocess/jobs", body);
  std::optional<http::Client> client = ClientFor(a.server_url);
  if (!client) return 2;
  auto r = client->Request("POST", "/v1/reprocess/jobs", body, "application/json", {});
  if (!r.ok()) {
    PrintTransportError(a.server_url, r.status());
    return 1;
  }
  if (r->status != 201) {
    std::cout << r->body << "\n";
    return 1;
  }
  const uint64_t id = static_cast<uint64_t>(NumberAfter(r->body, "id").value_or(0));
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  for (;;) {
    std::optional<std::string> job = FetchJob(a, id);
    if (!job) return 1;
    const std::string state = StringAfter(*job, "state");
    const bool final = state == "succeeded" || state == "failed" || state == "cancelled";
    if (tty) std::cerr << "\r" << ProgressLine(*job) << std::flush;
    if (final) {
      if (tty) std::cerr << "\n";
      std::cout << *job << "\n";
      return state == "succeeded" ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int ReprocessStatus(const ReprocessArgs& a) {
  std::optional<std::string> job = FetchJob(a, a.id);
  if (!job) return 1;
  if (::isatty(STDERR_FILENO) == 1) std::cerr << ProgressLine(*job) << "\n";
  std::cout << *job << "\n";
  return 0;
}

int ReprocessList(const ReprocessArgs& a) {
  return Call(a.server_url, "GET", "/v1/reprocess/jobs?limit=" + std::to_string(a.limit));
}

int ReprocessAction(const ReprocessArgs& a, const std::string& action) {
  return Call(a.server_url, "POST", "/v1/reprocess/jobs/" + std::to_string(a.id) + ":" + action);
}

int ReprocessDeadLetters(const ReprocessArgs& a) {
  if (a.retry) {
    return Call(a.server_url, "POST",
                "/v1/reprocess/jobs/" + std::to_string(a.id) + "/dead-letters:retry");
  }
  std::string target = "/v1/reprocess/jobs/" + std::to_string(a.id) +
                       "/dead-letters?limit=" + std::to_string(a.limit);
  if (!a.after.empty()) target += "&after=" + http::UrlEncode(a.after);
  return Call(a.server_url, "GET", target);
}

}  // namespace strata::cli
