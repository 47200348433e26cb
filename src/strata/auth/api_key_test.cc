#include "strata/auth/api_key.h"

#include <gtest/gtest.h>

namespace strata::auth {
namespace {

TEST(ScopesTest, ParsesAListAndNamesTheUnknownScope) {
  absl::StatusOr<Scopes> s = Scopes::Parse("viewing:read, objects:write,,");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->Has(Scope::kViewingRead));
  EXPECT_TRUE(s->Has(Scope::kObjectsWrite));
  EXPECT_FALSE(s->Has(Scope::kObjectsRead));
  EXPECT_EQ(s->ToString(), "viewing:read,objects:write");
  EXPECT_TRUE(Scopes::Parse("")->empty());

  absl::StatusOr<Scopes> bad = Scopes::Parse("viewing:read,objects:delete");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_EQ(bad.status().message().substr(0, 38), "scopes: unknown scope 'objects:delete'");
}

TEST(ScopesTest, EveryScopeRoundTripsByName) {
  for (Scope s :
       {Scope::kViewingRead, Scope::kViewingWrite, Scope::kObjectsRead, Scope::kObjectsWrite,
        Scope::kAssetsRead, Scope::kAssetsWrite, Scope::kMetricsRead, Scope::kAdmin}) {
    absl::StatusOr<Scope> back = ParseScope(ScopeName(s));
    ASSERT_TRUE(back.ok()) << ScopeName(s);
    EXPECT_EQ(*back, s);
  }
}

TEST(ScopesTest, AdminAllowsEverythingAndNothingElseImpliesAnother) {
  const Scopes admin = Scopes::Of({Scope::kAdmin});
  EXPECT_TRUE(admin.Allows(Scope::kViewingWrite));
  EXPECT_TRUE(admin.Allows(Scope::kMetricsRead));
  const Scopes writer = Scopes::Of({Scope::kViewingWrite});
  EXPECT_TRUE(writer.Allows(Scope::kViewingWrite));
  EXPECT_FALSE(writer.Allows(Scope::kViewingRead));
  EXPECT_FALSE(writer.Allows(Scope::kAdmin));
  EXPECT_FALSE(Scopes().Allows(Scope::kObjectsRead));
}

TEST(TokenTest, FormatsAndParses) {
  const Token t{"0123456789abcdef", std::string(64, 'a')};
  const std::string text = FormatToken(t);
  EXPECT_EQ(text, "strata_0123456789abcdef_" + std::string(64, 'a'));
  absl::StatusOr<Token> back = ParseToken(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, t.id);
  EXPECT_EQ(back->secret, t.secret);
}

TEST(TokenTest, RefusesMalformedTokensWithoutEchoingThem) {
  const std::string secret(64, 'b');
  for (const std::string& bad : {
           std::string(""),
           std::string("strata_"),
           "strat_0123456789abcdef_" + secret,
           "strata_0123456789abcde_" + secret + "b",   // short id
           "strata_0123456789ABCDEF_" + secret,        // upper case
           "strata_0123456789abcdef-" + secret,        // wrong separator
           "strata_0123456789abcdef_" + secret + "0",  // long secret
           "strata_0123456789abcdef_" + secret.substr(1) + "g",
       }) {
    absl::StatusOr<Token> t = ParseToken(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(t.status())) << bad;
    if (bad.size() > 20) {
      EXPECT_EQ(t.status().message().find(bad.substr(bad.size() - 20)), std::string::npos);
    }
  }
  EXPECT_TRUE(IsKeyId("0123456789abcdef"));
  EXPECT_FALSE(IsKeyId("0123456789abcdeF"));
  EXPECT_FALSE(IsKeyId("../../etc/passwd"));
}

TEST(TokenTest, NewTokensUseTheRandomSource) {
  uint8_t next = 0;
  RandomSource counting = [&](std::span<uint8_t> out) {
    for (uint8_t& b : out) b = next++;
    return absl::OkStatus();
  };
  absl::StatusOr<Token> t = NewToken(counting);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->id, "0001020304050607");
  EXPECT_EQ(t->secret.substr(0, 8), "08090a0b");
  EXPECT_EQ(t->secret.size(), 64u);

  RandomSource broken = [](std::span<uint8_t>) { return absl::InternalError("no entropy"); };
  EXPECT_FALSE(NewToken(broken).ok());

  absl::StatusOr<Token> a = NewToken(SystemRandom());
  absl::StatusOr<Token> b = NewToken(SystemRandom());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->secret, b->secret);
  EXPECT_TRUE(ParseToken(FormatToken(*a)).ok());
}

TEST(HashTest, IsSha256AndComparesEqualOnlyForTheSameSecret) {
  // FIPS 180-2's test vector: SHA-256("abc").
  const SecretHash h = HashSecret("abc");
  const uint8_t expected[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                              0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                              0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  EXPECT_TRUE(std::equal(h.begin(), h.end(), std::begin(expected)));
  EXPECT_TRUE(HashesEqual(HashSecret("abc"), h));
  EXPECT_FALSE(HashesEqual(HashSecret("abd"), h));
  SecretHash last_bit = h;
  last_bit[31] ^= 1;
  EXPECT_FALSE(HashesEqual(last_bit, h));
}

TEST(AuthorizationHeaderTest, TakesBearerAndOptionallyBasic) {
  auto token = [](std::string_view v, bool basic) { return TokenFromAuthorization(v, basic); };
  EXPECT_EQ(token("", false)->has_value(), false);
  EXPECT_EQ(token("Bearer abc", false)->value(), "abc");
  EXPECT_EQ(token("bearer   abc  ", false)->value(), "abc");
  EXPECT_TRUE(absl::IsUnauthenticated(token("Bearer ", false).status()));
  EXPECT_TRUE(absl::IsUnauthenticated(token("Token abc", false).status()));
  // "user:pass" -> dXNlcjpwYXNz; the password is the token, the user name is ignored.
  EXPECT_EQ(token("Basic dXNlcjpwYXNz", true)->value(), "pass");
  EXPECT_EQ(token("Basic OnBhc3M=", true)->value(), "pass");  // ":pass"
  absl::StatusOr<std::optional<std::string>> refused = token("Basic dXNlcjpwYXNz", false);
  EXPECT_TRUE(absl::IsUnauthenticated(refused.status()));
  EXPECT_NE(refused.status().message().find("GET and HEAD"), std::string_view::npos);
  EXPECT_TRUE(absl::IsUnauthenticated(token("Basic !!!!", true).status()));
  EXPECT_TRUE(absl::IsUnauthenticated(token("Basic dXNlcg==", true).status()));  // no colon
  EXPECT_TRUE(absl::IsUnauthenticated(token("Basic dXN=lcg=", true).status()));
  EXPECT_EQ(token("bearer\tabc", false)->value(), "abc");
}

// A scheme sent without credentials is named as such (it used to be "unsupported scheme",
// since the value is trimmed before the scheme is read).
TEST(AuthorizationHeaderTest, SchemeAloneSaysWhatIsMissing) {
  auto message = [](std::string_view v, bool basic) {
    return std::string(TokenFromAuthorization(v, basic).status().message());
  };
  EXPECT_EQ(message("Bearer", false), "authorization: empty Bearer token");
  EXPECT_EQ(message("BEARER   ", false), "authorization: empty Bearer token");
  EXPECT_EQ(message("Basic", true), "authorization: malformed Basic credentials");
  EXPECT_EQ(message("Basic ", true), "authorization: malformed Basic credentials");
  EXPECT_NE(message("Basic", false).find("only on GET"), std::string::npos);
  EXPECT_NE(message("Bearer:abc", false).find("unsupported scheme"), std::string::npos);
  EXPECT_NE(message("Bearerabc", false).find("unsupported scheme"), std::string::npos);
  // "user:" (an empty password, which is where the key goes) and ":" carry no key: found by
  // the auth fuzzer, which saw an empty credential accepted.
  EXPECT_EQ(message("Basic dXNlcjo=", true),
            "authorization: Basic credentials with an empty password (the password is the API "
            "key)");
  EXPECT_TRUE(absl::IsUnauthenticated(TokenFromAuthorization("Basic Og==", true).status()));
}

}  // namespace
}  // namespace strata::auth
