// libFuzzer target for what clients send the authenticator (built and run by scripts/fuzz.sh
// auth; docs/testing.md): Authorization header values (TokenFromAuthorization: Bearer, HTTP
// Basic with its base64), API key tokens (ParseToken) and scope lists (Scopes::Parse, as
// `strata key create --scopes` and POST /v1/admin/keys take them).
//
// Promises checked: an error is Unauthenticated (header) or InvalidArgument (token, scopes)
// and names its field ("authorization: ", "scopes: "); a token error is one fixed sentence,
// echoing nothing of the token (it may hold a secret); an accepted token re-formats to exactly
// its input; an accepted Bearer credential is the trimmed rest of the value; Basic credentials
// built from any user (without ':') and password give back that password; a parsed scope
// list re-parses from its own ToString() to the same set.
//
// The first input byte picks the target; the rest is its input. With
// STRATA_AUTH_FUZZ_WRITE_SEEDS=<dir> in the environment the binary writes a seed corpus into
// <dir> and exits.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "strata/auth/api_key.h"

namespace strata::auth {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "auth_fuzz: %s\n", what);
  std::abort();
}

bool StartsWith(const absl::Status& s, std::string_view prefix) {
  const std::string message(s.message());
  return message.compare(0, prefix.size(), prefix) == 0;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                       static_cast<uint8_t>(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (const size_t rest = in.size() - i; rest > 0) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void FuzzAuthorization(std::string_view value, bool allow_basic) {
  auto token = TokenFromAuthorization(value, allow_basic);
  if (!token.ok()) {
    if (!absl::IsUnauthenticated(token.status())) Fail("a header error is not Unauthenticated");
    if (!StartsWith(token.status(), "authorization: ")) {
      Fail("a header error names no field");
    }
    return;
  }
  if (!token->has_value()) {
    if (!TrimSpaces(value).empty()) Fail("credentials in a non-empty value were ignored");
    return;
  }
  if ((*token)->empty()) Fail("an empty credential was accepted");
  const std::string_view trimmed = TrimSpaces(value);
  if (trimmed.size() > 7 && (trimmed[0] == 'B' || trimmed[0] == 'b') &&
      (trimmed[1] == 'e' || trimmed[1] == 'E')) {
    // Bearer: the credential is the trimmed rest of the value.
    if (!trimmed.ends_with(**token)) Fail("a Bearer credential is not the value's end");
  }
}

void FuzzBasicRoundTrip(std::string_view in) {
  const size_t split = in.empty() ? 0 : static_cast<uint8_t>(in[0]) % (in.size() + 1);
  std::string user(in.substr(0, split));
  for (char& c : user) {
    if (c == ':') c = '_';
  }
  const std::string password(in.substr(std::min(split + 1, in.size())));
  const std::string header = "Basic " + Base64(user + ":" + password);
  auto token = TokenFromAuthorization(header, /*allow_basic=*/true);
  if (password.empty()) {  // no key: refused, naming the header
    if (token.ok() || !StartsWith(token.status(), "authorization: ")) {
      Fail("Basic credentials with an empty password were not refused");
    }
    return;
  }
  if (!token.ok() || !token->has_value() || **token != password) {
    Fail("Basic credentials did not give back their password");
  }
  auto refused = TokenFromAuthorization(header, /*allow_basic=*/false);
  if (refused.ok()) Fail("Basic credentials were accepted where only Bearer is");
}

void FuzzToken(std::string_view in) {
  auto token = ParseToken(in);
  if (!token.ok()) {
    if (!absl::IsInvalidArgument(token.status())) Fail("a token error is not InvalidArgument");
    // Nothing of the token is echoed (it may hold a secret): the error is the same sentence
    // whatever was sent.
    static const std::string kMalformed(ParseToken("").status().message());
    if (token.status().message() != kMalformed) Fail("a token error depends on the token");
    return;
  }
  if (FormatToken(*token) != in) Fail("an accepted token does not re-format to itself");
  if (!IsKeyId(token->id) || token->secret.size() != kSecretHexDigits) {
    Fail("an accepted token has a bad id or secret");
  }
}

void FuzzScopes(std::string_view in) {
  auto scopes = Scopes::Parse(in);
  if (!scopes.ok()) {
    if (!StartsWith(scopes.status(), "scopes: ")) Fail("a scopes error names no field");
    return;
  }
  auto again = Scopes::Parse(scopes->ToString());
  if (!again.ok() || !(*again == *scopes)) Fail("scopes do not re-parse from their text");
}

void FuzzOne(std::string_view data) {
  if (data.empty()) return;
  const uint8_t target = static_cast<uint8_t>(data[0]);
  const std::string_view in = data.substr(1);
  switch (target % 5) {
    case 0:
      FuzzAuthorization(in, /*allow_basic=*/false);
      break;
    case 1:
      FuzzAuthorization(in, /*allow_basic=*/true);
      break;
    case 2:
      FuzzBasicRoundTrip(in);
      break;
    case 3:
      FuzzToken(in);
      break;
    case 4:
      FuzzScopes(in);
      break;
  }
}

void WriteSeed(const std::string& dir, const std::string& name, char target,
               std::string_view bytes) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.put(target);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) Fail("cannot write seed");
}

void WriteSeeds(const std::string& dir) {
  const std::string token =
      "strata_0123456789abcdef_" + std::string(64, 'a').replace(10, 5, "01234");
  WriteSeed(dir, "bearer", 0, "Bearer " + token);
  WriteSeed(dir, "bearer-lower-spaces", 0, "  bearer\t" + token + "  ");
  WriteSeed(dir, "bearer-alone", 0, "Bearer");
  WriteSeed(dir, "basic", 1, "Basic " + Base64("user:" + token));
  WriteSeed(dir, "basic-no-colon", 1, "Basic " + Base64("nocolon"));
  WriteSeed(dir, "basic-round-trip", 2, std::string("\x04user:pass", 10));
  WriteSeed(dir, "token", 3, token);
  WriteSeed(dir, "token-short", 3, "strata_abc_def");
  WriteSeed(dir, "scopes", 4, "viewing:read, objects:write,admin");
  WriteSeed(dir, "scopes-unknown", 4, "viewing:read,root");
}

}  // namespace
}  // namespace strata::auth

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (const char* dir = std::getenv("STRATA_AUTH_FUZZ_WRITE_SEEDS")) {
    strata::auth::WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  strata::auth::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
