// What each request of the HTTP API needs before it is routed: the scope its route requires
// and, for admin actions and hard deletes, the name under which it is audited (docs/api.md,
// "Authentication", has the table). Kept apart from the router so the whole policy is one
// function with one test; a path it does not know needs `admin` (deny by default), so a new
// route is never open by accident. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "strata/auth/api_key.h"
#include "strata/auth/key_store.h"

namespace strata::server {

struct RouteAccess {
  // The scope a key needs; nullopt = open to anyone (only /healthz).
  std::optional<auth::Scope> scope;
  // The audit action ("member.erase", "admin.backup", "gc.run", "key.revoke", ...); "" = not
  // audited.
  std::string action;
  // Whether HTTP Basic credentials (password = the key) are accepted: only on GET and HEAD,
  // which change nothing, so the ambient credentials a browser keeps for the dashboard
  // cannot be replayed by another site into a change (the Origin check covers the rest).
  bool allow_basic = false;
};

RouteAccess ClassifyRequest(std::string_view method, std::string_view path);

// Whether `address` (an IP literal or "localhost") only accepts connections from this machine:
// 127.0.0.0/8, ::1, ::ffff:127.x.y.z. 0.0.0.0 and :: (every interface) are not.
bool IsLoopbackAddress(std::string_view address);

// A key as the API and `strata key` print it: {"id", "name", "scopes": [...], "created_at",
// "created_by", "revoked_at": ms|null} plus "token" when `token` is given (only at creation:
// it is shown once).
std::string KeyRecordJson(const auth::KeyRecord& key, const std::string* token);

}  // namespace strata::server
