// Checks the API key a request carries, with a short in-process cache so a request costs one
// SHA-256 and a map lookup, not a row-store read.
//
// Authentication is required as soon as any key exists in the KeyStore (keys are revoked,
// never deleted, so it cannot be switched off by revoking them). Until then every request is
// the anonymous principal with every scope: the server only allows that on a loopback address
// (or with --insecure-no-auth), see server/server.h.
//
// Revocation: a key revoked through this Authenticator (Forget) stops working at once here; a
// key revoked elsewhere (another node, or the offline CLI on a shared store) stops working
// within `cache_ttl_ms`. Likewise a key created elsewhere is accepted, and a first key created
// elsewhere turns authentication on, within `cache_ttl_ms`.
//
// Thread safety: every method is thread-safe. The KeyStore and Clock must outlive it.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "strata/auth/api_key.h"
#include "strata/auth/key_store.h"
#include "strata/base/clock.h"

namespace strata::auth {

// Who made a request: a key, or nobody while authentication is off.
struct Principal {
  std::string key_id;    // the key's id, or kAnonymous
  std::string key_name;  // the key's label ("" for anonymous)
  Scopes scopes;         // every scope for anonymous
};

// The principal name of requests made while authentication is off.
inline constexpr std::string_view kAnonymous = "anonymous";
Principal AnonymousPrincipal();

struct AuthenticatorOptions {
  // How long a key read from the store (or its absence) is trusted before it is read again,
  // ms: the bound on how long a key revoked on another node still works here. Default 1000.
  Millis cache_ttl_ms = 1000;
  // Keys (and unknown ids) cached at most; when full the cache is emptied, so a client
  // sending made-up ids cannot grow it. Default 10000.
  size_t max_cached_keys = 10000;
};

class Authenticator {
 public:
  Authenticator(KeyStore* keys, Clock* clock, AuthenticatorOptions options = {});

  // Whether requests must carry a key (some key exists). A "no" is re-read at most every
  // cache_ttl_ms; a "yes" is final. Unavailable when the store cannot say: callers must then
  // refuse the request (fail closed), never let it through.
  absl::StatusOr<bool> Required();

  // The key that `token` names, after checking its secret. Unauthenticated, naming the
  // problem: a malformed token, an unknown id or a wrong secret ("invalid API key": the two
  // are not told apart), a revoked key. Unavailable when the store cannot be read.
  absl::StatusOr<Principal> Verify(std::string_view token);

  // Drops the cached key `id`; call after revoking it through this node.
  void Forget(std::string_view id);
  // Call after creating a key through this node: Required() answers true at once.
  void NoteKeyCreated() { required_.store(true); }

 private:
  struct Cached {
    std::optional<KeyRecord> record;  // nullopt: no such key
    Millis fetched_at = 0;
  };
  absl::StatusOr<std::optional<KeyRecord>> Lookup(const std::string& id);

  KeyStore* const keys_;
  Clock* const clock_;
  const AuthenticatorOptions options_;
  std::atomic<bool> required_{false};
  std::atomic<Millis> required_checked_at_{0};
  std::atomic<bool> required_checked_{false};
  std::mutex mu_;  // guards cache_
  std::unordered_map<std::string, Cached> cache_;
};

}  // namespace strata::auth
