#include "strata/auth/api_key.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cctype>
#include <climits>

namespace strata::auth {
namespace {

struct ScopeEntry {
  Scope scope;
  std::string_view name;
};
constexpr ScopeEntry kScopes[] = {
    {Scope::kViewingRead, "viewing:read"}, {Scope::kViewingWrite, "viewing:write"},
    {Scope::kObjectsRead, "objects:read"}, {Scope::kObjectsWrite, "objects:write"},
    {Scope::kAssetsRead, "assets:read"},   {Scope::kAssetsWrite, "assets:write"},
    {Scope::kMetricsRead, "metrics:read"}, {Scope::kAdmin, "admin"},
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void AppendHex(std::span<const uint8_t> bytes, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (uint8_t b : bytes) {
    out->push_back(kDigits[b >> 4]);
    out->push_back(kDigits[b & 0xf]);
  }
}

// Standard base64 (RFC 4648 section 4), padding required as browsers send it; nullopt when
// malformed.
std::optional<std::string> DecodeBase64(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = in[i + j];
      if (c == '=' && last && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[j] = value(c);
      if (v[j] < 0) return std::nullopt;
    }
    const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                       (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out.push_back(static_cast<char>(n >> 16));
    if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}

bool StartsWithIgnoringCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    const char a = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    if (a != prefix[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view ScopeName(Scope scope) {
  for (const ScopeEntry& e : kScopes) {
    if (e.scope == scope) return e.name;
  }
  return "unknown";
}

absl::StatusOr<Scope> ParseScope(std::string_view name) {
  for (const ScopeEntry& e : kScopes) {
    if (e.name == name) return e.scope;
  }
  std::string expected;
  for (const ScopeEntry& e : kScopes) {
    if (!expected.empty()) expected += ", ";
    expected += e.name;
  }
  return absl::InvalidArgumentError("scopes: unknown scope '" + std::string(name) + "' (expected " +
                                    expected + ")");
}

Scopes Scopes::Of(std::initializer_list<Scope> scopes) {
  Scopes s;
  for (Scope x : scopes) s.Add(x);
  return s;
}

absl::StatusOr<Scopes> Scopes::Parse(std::string_view list) {
  Scopes out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view name = Trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (name.empty()) continue;
    absl::StatusOr<Scope> s = ParseScope(name);
    if (!s.ok()) return s.status();
    out.Add(*s);
  }
  return out;
}

std::vector<std::string_view> Scopes::Names() const {
  std::vector<std::string_view> names;
  for (const ScopeEntry& e : kScopes) {
    if (Has(e.scope)) names.push_back(e.name);
  }
  return names;
}

std::string Scopes::ToString() const {
  std::string out;
  for (std::string_view n : Names()) {
    if (!out.empty()) out += ',';
    out += n;
  }
  return out;
}

bool IsKeyId(std::string_view id) { return id.size() == kKeyIdHexDigits && IsLowerHex(id); }

absl::StatusOr<Token> ParseToken(std::string_view token) {
  const absl::Status malformed = absl::InvalidArgumentError(
      "token: not a Strata API key (expected strata_<16 hex digits>_<64 hex digits>)");
  if (token.substr(0, kTokenPrefix.size()) != kTokenPrefix) return malformed;
  token.remove_prefix(kTokenPrefix.size());
  if (token.size() != kKeyIdHexDigits + 1 + kSecretHexDigits || token[kKeyIdHexDigits] != '_') {
    return malformed;
  }
  Token out{std::string(token.substr(0, kKeyIdHexDigits)),
            std::string(token.substr(kKeyIdHexDigits + 1))};
  if (!IsLowerHex(out.id) || !IsLowerHex(out.secret)) return malformed;
  return out;
}

std::string FormatToken(const Token& token) {
  return std::string(kTokenPrefix) + token.id + "_" + token.secret;
}

SecretHash HashSecret(std::string_view secret) {
  SecretHash h;
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), h.data());
  return h;
}

bool HashesEqual(const SecretHash& a, const SecretHash& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

RandomSource SystemRandom() {
  return [](std::span<uint8_t> out) -> absl::Status {
    if (out.size() > static_cast<size_t>(INT_MAX) ||
        RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
      return absl::InternalError("random: the system's random number generator failed");
    }
    return absl::OkStatus();
  };
}

absl::StatusOr<Token> NewToken(const RandomSource& random) {
  std::array<uint8_t, kKeyIdHexDigits / 2> id;
  std::array<uint8_t, kSecretHexDigits / 2> secret;
  if (absl::Status s = random(id); !s.ok()) return s;
  if (absl::Status s = random(secret); !s.ok()) return s;
  Token t;
  AppendHex(id, &t.id);
  AppendHex(secret, &t.secret);
  return t;
}

absl::StatusOr<std::optional<std::string>> TokenFromAuthorization(std::string_view value,
                                                                  bool allow_basic) {
  value = Trim(value);
  if (value.empty()) return std::optional<std::string>();
  // The scheme, then its credentials (empty when the value is the scheme alone: "Bearer").
  const size_t space = value.find_first_of(" \t");
  const std::string_view scheme = value.substr(0, space);
  const std::string_view credentials =
      space == std::string_view::npos ? std::string_view() : Trim(value.substr(space));
  if (scheme.size() == 6 && StartsWithIgnoringCase(scheme, "bearer")) {
    if (credentials.empty()) return absl::UnauthenticatedError("authorization: empty Bearer token");
    return std::optional<std::string>(std::string(credentials));
  }
  if (scheme.size() == 5 && StartsWithIgnoringCase(scheme, "basic")) {
    if (!allow_basic) {
      return absl::UnauthenticatedError(
          "authorization: Basic credentials are accepted only on GET and HEAD requests; send "
          "'Authorization: Bearer <key>'");
    }
    std::optional<std::string> decoded = DecodeBase64(credentials);
    const size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) {
      return absl::UnauthenticatedError("authorization: malformed Basic credentials");
    }
    if (colon + 1 == decoded->size()) {
      return absl::UnauthenticatedError(
          "authorization: Basic credentials with an empty password (the password is the API "
          "key)");
    }
    return std::optional<std::string>(decoded->substr(colon + 1));
  }
  return absl::UnauthenticatedError(
      "authorization: unsupported scheme (send 'Authorization: Bearer <key>')");
}

}  // namespace strata::auth
