#include "strata/server/access.h"

#include <arpa/inet.h>

#include <cstring>
#include <vector>

namespace strata::server {
namespace {

using auth::Scope;

bool IsRead(std::string_view method) { return method == "GET" || method == "HEAD"; }

RouteAccess Needs(Scope scope, std::string action = "") {
  RouteAccess a;
  a.scope = scope;
  a.action = std::move(action);
  return a;
}

// The action name of a state-changing request under /v1/admin/ (parts[2...]).
std::string AdminAction(std::string_view method, const std::vector<std::string_view>& parts) {
  const size_t n = parts.size();
  if (n >= 3 && parts[2] == "keys") {
    if (n == 3 && method == "POST") return "key.create";
    if (n == 4 && method == "DELETE") return "key.revoke";
    return "key.other";
  }
  if (n == 3 && parts[2] == "backup") return "admin.backup";
  if (n == 3 && parts[2] == "compact") return "admin.compact";
  if (n == 3 && parts[2] == "scrub:run") return "admin.scrub";
  if (n == 4 && parts[2] == "viewing" && parts[3] == "caches:drop") return "admin.caches_drop";
  if (n == 4 && parts[2] == "viewing" && parts[3] == "tables") return "admin.viewing_tables";
  if (n == 4 && parts[2] == "viewing" && parts[3] == "rotation:sweep") {
    return "admin.rotation_sweep";
  }
  // Unknown paths get one fixed name: a client's made-up path never becomes an action.
  return "admin.other";
}

}  // namespace

RouteAccess ClassifyRequest(std::string_view method, std::string_view path) {
  std::vector<std::string_view> parts;
  for (size_t pos = 0; pos < path.size();) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) parts.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  const bool read = IsRead(method);
  RouteAccess access = [&]() -> RouteAccess {
    const size_t n = parts.size();
    if (n == 1 && parts[0] == "healthz") return RouteAccess{};
    if (n == 1 && (parts[0] == "metrics" || parts[0] == "dashboard")) {
      return Needs(Scope::kMetricsRead);
    }
    if (n < 2 || parts[0] != "v1") return Needs(Scope::kAdmin);
    const std::string_view family = parts[1];
    if (family == "viewing") return Needs(read ? Scope::kViewingRead : Scope::kViewingWrite);
    if (family == "members") {
      if (n == 3 && parts[2].find(':') != std::string_view::npos) {
        // :rollup, :rotate: operator actions on a member's storage, not on its data.
        const std::string_view verb = parts[2].substr(parts[2].find(':') + 1);
        if (read) return Needs(Scope::kAdmin);
        return Needs(Scope::kAdmin, verb == "rollup"   ? "member.rollup"
                                    : verb == "rotate" ? "member.rotate"
                                                       : "member.other");
      }
      if (n == 3 && method == "DELETE") return Needs(Scope::kViewingWrite, "member.erase");
      return Needs(read ? Scope::kViewingRead : Scope::kViewingWrite);
    }
    if (family == "buckets") return Needs(read ? Scope::kObjectsRead : Scope::kObjectsWrite);
    if (family == "reprocess" && n == 3 && parts[2] == "progress" && read) {
      // Jobs' states and counts without their specs: monitoring (the dashboard reads it).
      return Needs(Scope::kMetricsRead);
    }
    if (family == "assets" || family == "asset-types" || family == "reprocess") {
      if (family == "assets" && n == 4 && method == "DELETE") {
        return Needs(Scope::kAssetsWrite, "asset.delete");
      }
      return Needs(read ? Scope::kAssetsRead : Scope::kAssetsWrite);
    }
    if (family == "gc" || family == "archive") {
      // Reading runs and stats is monitoring (the dashboard reads them); starting a run is
      // an admin action.
      if (read) return Needs(Scope::kMetricsRead);
      if (n == 3 && parts[2] == "runs" && method == "POST") {
        return Needs(Scope::kAdmin, std::string(family) + ".run");
      }
      return Needs(Scope::kAdmin, std::string(family) + ".other");
    }
    if (family == "admin") {
      if (read) return Needs(Scope::kAdmin);
      return Needs(Scope::kAdmin, AdminAction(method, parts));
    }
    return Needs(Scope::kAdmin);
  }();
  access.allow_basic = read;
  return access;
}

bool IsLoopbackAddress(std::string_view address) {
  if (address == "localhost") return true;
  const std::string a(address);
  in_addr v4{};
  if (inet_pton(AF_INET, a.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, a.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace strata::server
