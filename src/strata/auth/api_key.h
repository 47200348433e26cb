// API keys: their scopes, the token format, and how a secret is hashed and compared. Pure
// functions and value types; every function is thread-safe.
//
// A token is `strata_<id>_<secret>`: `id` is 16 lower-case hex digits (64 random bits), the
// key's public name and the row store's lookup key; `secret` is 64 lower-case hex digits (256
// random bits). Only SHA-256(secret) is stored. A plain, unsalted hash is enough because the
// secret is random and long: there is nothing to guess from a dictionary, and a salt or a slow
// hash (bcrypt, argon2) would only cost CPU on every request. Comparisons of hashes take the
// same time whatever bytes differ.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strata::auth {

// What a key may do (docs/api.md, "Authentication"). `admin` allows everything; no other scope
// implies another (`viewing:write` does not allow reads).
enum class Scope : uint32_t {
  kViewingRead = 1u << 0,
  kViewingWrite = 1u << 1,
  kObjectsRead = 1u << 2,
  kObjectsWrite = 1u << 3,
  kAssetsRead = 1u << 4,
  kAssetsWrite = 1u << 5,
  kMetricsRead = 1u << 6,
  kAdmin = 1u << 7,
};

// "viewing:read", "objects:write", "admin", ...
std::string_view ScopeName(Scope scope);
// InvalidArgument "scopes: unknown scope 'x' (expected ...)" for a name that is not a scope.
absl::StatusOr<Scope> ParseScope(std::string_view name);

// A set of scopes.
class Scopes {
 public:
  Scopes() = default;
  static Scopes Of(std::initializer_list<Scope> scopes);
  static Scopes FromBits(uint32_t bits) { return Scopes(bits); }
  // A comma-separated list ("viewing:read,objects:write"); spaces around names are ignored,
  // an empty list is the empty set. InvalidArgument naming the first unknown scope.
  static absl::StatusOr<Scopes> Parse(std::string_view list);

  void Add(Scope s) { bits_ |= static_cast<uint32_t>(s); }
  bool Has(Scope s) const { return (bits_ & static_cast<uint32_t>(s)) != 0; }
  // Whether a request that needs `needed` may go on: the scope is held, or admin is.
  bool Allows(Scope needed) const { return Has(needed) || Has(Scope::kAdmin); }
  bool empty() const { return bits_ == 0; }
  uint32_t bits() const { return bits_; }
  // Names in a fixed order (the enum's).
  std::vector<std::string_view> Names() const;
  // Names joined by ',' ("" for none).
  std::string ToString() const;
  bool operator==(const Scopes&) const = default;

 private:
  explicit Scopes(uint32_t bits) : bits_(bits) {}
  uint32_t bits_ = 0;
};

inline constexpr size_t kKeyIdHexDigits = 16;
inline constexpr size_t kSecretHexDigits = 64;
inline constexpr std::string_view kTokenPrefix = "strata_";

struct Token {
  std::string id;      // 16 lower-case hex digits
  std::string secret;  // 64 lower-case hex digits
};

// Splits a token into id and secret. InvalidArgument whose message says what is wrong with it
// ("token: expected strata_<16 hex>_<64 hex>"), never echoing the secret.
absl::StatusOr<Token> ParseToken(std::string_view token);
// `strata_<id>_<secret>`.
std::string FormatToken(const Token& token);
// Whether `id` is 16 lower-case hex digits (ids in paths and CLI arguments are checked with it).
bool IsKeyId(std::string_view id);

using SecretHash = std::array<uint8_t, 32>;

// SHA-256 of the secret's text (OpenSSL).
SecretHash HashSecret(std::string_view secret);
// Compares in time independent of where the hashes differ (CRYPTO_memcmp).
bool HashesEqual(const SecretHash& a, const SecretHash& b);

// Fills its argument with random bytes. Injectable so tests get fixed ids and secrets.
using RandomSource = std::function<absl::Status(std::span<uint8_t> out)>;
// The operating system's CSPRNG through OpenSSL's RAND_bytes; Internal if it fails.
RandomSource SystemRandom();
// A new token: 8 random bytes of id and 32 of secret, hex-encoded.
absl::StatusOr<Token> NewToken(const RandomSource& random);

// The token a request carries in its Authorization header value: `Bearer <token>`, or, when
// `allow_basic`, HTTP Basic credentials whose password is the token (the user name is
// ignored: browsers can send Basic, not Bearer, and the dashboard is opened in one).
// nullopt when the value is empty (no credentials); Unauthenticated naming the problem for a
// value that is neither.
absl::StatusOr<std::optional<std::string>> TokenFromAuthorization(std::string_view value,
                                                                  bool allow_basic);

}  // namespace strata::auth
