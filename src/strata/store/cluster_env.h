// For tests of the distributed backends: where the throwaway cluster that CTest started
// (scripts/cluster.sh, fixture `cluster`) listens.
//
// ClusterSetting("CEPH_CONF") answers, in order: the process environment; else the line
// `export CEPH_CONF=...` of the file that $STRATA_CLUSTER_ENV names (scripts/cluster.sh writes
// it); else nullopt. A test run by CTest always has the file, so a missing setting there is a
// failure of the cluster's start, not a reason to skip; a test binary run by hand without a
// cluster skips (see ClusterMissing).
#pragma once

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

namespace strata::store {

inline std::optional<std::string> ClusterSetting(const std::string& name) {
  if (const char* v = std::getenv(name.c_str()); v != nullptr && *v != '\0') return v;
  const char* file = std::getenv("STRATA_CLUSTER_ENV");
  if (file == nullptr) return std::nullopt;
  std::ifstream in(file);
  std::string line;
  const std::string prefix = "export " + name + "=";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return std::nullopt;
}

// "" when the cluster's setting `name` is known. Otherwise why not: for GTEST_SKIP when no
// cluster was asked for (no STRATA_CLUSTER_ENV), and for a failure when CTest asked for one
// and it is not there.
inline std::string ClusterMissing(const std::string& name) {
  if (ClusterSetting(name)) return "";
  if (std::getenv("STRATA_CLUSTER_ENV") == nullptr) {
    return name + " unknown: run under ctest (fixture `cluster`), or start one with "
                  "`bash scripts/cluster.sh start DIR` and set STRATA_CLUSTER_ENV=DIR/env";
  }
  return name + " missing from " + std::string(std::getenv("STRATA_CLUSTER_ENV")) +
         ": the cluster did not start (see build/cluster/log)";
}

}  // namespace strata::store
