#include "strata/auth/authenticator.h"

namespace strata::auth {

Principal AnonymousPrincipal() {
  Principal p;
  p.key_id = std::string(kAnonymous);
  p.scopes = Scopes::Of({Scope::kAdmin});
  return p;
}

Authenticator::Authenticator(KeyStore* keys, Clock* clock, AuthenticatorOptions options)
    : keys_(keys), clock_(clock), options_(options) {}

absl::StatusOr<bool> Authenticator::Required() {
  if (required_.load()) return true;
  const Millis now = clock_->NowMillis();
  if (required_checked_.load() && now - required_checked_at_.load() < options_.cache_ttl_ms) {
    return false;
  }
  // Concurrent callers may each read the store once when the answer expires: a one-row scan,
  // rarer than a lock would be worth.
  absl::StatusOr<bool> any = keys_->AnyKey();
  if (!any.ok()) {
    return absl::UnavailableError("authorization: cannot read the API keys: " +
                                  std::string(any.status().message()));
  }
  if (*any) {
    required_.store(true);
    return true;
  }
  required_checked_at_.store(now);
  required_checked_.store(true);
  return false;
}

absl::StatusOr<std::optional<KeyRecord>> Authenticator::Lookup(const std::string& id) {
  const Millis now = clock_->NowMillis();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(id);
    if (it != cache_.end() && now - it->second.fetched_at < options_.cache_ttl_ms) {
      return it->second.record;
    }
  }
  absl::StatusOr<KeyRecord> got = keys_->Get(id);
  std::optional<KeyRecord> record;
  if (got.ok()) {
    record = std::move(*got);
  } else if (!absl::IsNotFound(got.status())) {
    return absl::UnavailableError("authorization: cannot read API key " + id + ": " +
                                  std::string(got.status().message()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= options_.max_cached_keys && cache_.find(id) == cache_.end()) {
    cache_.clear();
  }
  cache_[id] = Cached{record, now};
  return record;
}

absl::StatusOr<Principal> Authenticator::Verify(std::string_view token) {
  absl::StatusOr<Token> parsed = ParseToken(token);
  if (!parsed.ok()) {
    return absl::UnauthenticatedError(
        "authorization: malformed API key (expected strata_<16 hex digits>_<64 hex digits>)");
  }
  absl::StatusOr<std::optional<KeyRecord>> record = Lookup(parsed->id);
  if (!record.ok()) return record.status();
  // The hash is computed and compared even for an unknown id, so the answer's timing does not
  // tell which ids exist.
  static const SecretHash kNoKey{};
  const SecretHash presented = HashSecret(parsed->secret);
  const bool match = HashesEqual(presented, record->has_value() ? (*record)->hash : kNoKey);
  if (!record->has_value() || !match) {
    return absl::UnauthenticatedError(
        "authorization: invalid API key (unknown key or wrong secret)");
  }
  const KeyRecord& key = **record;
  if (!key.active()) {
    return absl::UnauthenticatedError("authorization: API key " + key.id + " is revoked");
  }
  return Principal{key.id, key.name, key.scopes};
}

void Authenticator::Forget(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(std::string(id));
}

}  // namespace strata::auth
