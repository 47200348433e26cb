#include "strata/cli/server_commands.h"

#include <iostream>

#include "strata/base/log.h"
#include "strata/cli/call.h"

namespace strata::cli {

int RunServe(const server::ServerConfig& config) {
  log::Init(config.log_level);
  absl::Status s = server::Serve(config);
  if (!s.ok()) {
    std::cerr << "strata serve: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

int AdminCompact(const std::string& server_url) {
  return Call(server_url, "POST", "/v1/admin/compact");
}

int AdminDropCaches(const std::string& server_url) {
  return Call(server_url, "POST", "/v1/admin/viewing/caches:drop");
}

int BenchViewing(const bench::ViewingBenchOptions& options) {
  auto report = bench::RunViewingBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench viewing: " << report.status().ToString() << "\n";
    return 1;
  }
  return 0;
}

int BenchCompare(const bench::CompareOptions& options) {
  auto report = bench::RunCompareBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench viewing: " << report.status().ToString() << "\n";
    return 1;
  }
  return report->passed ? 0 : 1;
}

int BenchAssets(const bench::AssetBenchOptions& options) {
  auto report = bench::RunAssetBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench assets: " << report.status().ToString() << "\n";
    return 1;
  }
  return report->passed ? 0 : 1;
}

int BenchGc(const bench::GcBenchOptions& options) {
  auto report = bench::RunGcBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench gc: " << report.status().ToString() << "\n";
    return 1;
  }
  return report->deleted == report->eligible ? 0 : 1;
}

int BenchObjects(const bench::ObjectBenchOptions& options) {
  auto report = bench::RunObjectBench(options, std::cout);
  if (!report.ok()) {
    std::cerr << "strata bench objects: " << report.status().ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace strata::cli
