#include "strata/auth/authenticator.h"

#include <gtest/gtest.h>

#include "strata/store/memory_row_store.h"

namespace strata::auth {
namespace {

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = KeyStore::Open(&rows_, &clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    keys_ = std::move(*s);
    // A second store object over the same rows: another node, or the offline CLI.
    auto o = KeyStore::Open(&rows_, &clock_);
    ASSERT_TRUE(o.ok());
    other_node_ = std::move(*o);
    auth_ = std::make_unique<Authenticator>(keys_.get(), &clock_);
  }
  NewKey Create(Scopes scopes, KeyStore* store = nullptr) {
    absl::StatusOr<NewKey> k = (store ? store : keys_.get())->Create("k", scopes, "test");
    EXPECT_TRUE(k.ok()) << k.status();
    return *k;
  }
  ManualClock clock_{1'765'000'000'000};
  store::MemoryRowStore rows_{&clock_};
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<KeyStore> other_node_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AuthenticatorTest, VerifiesAKeyAndItsScopes) {
  const NewKey k = Create(Scopes::Of({Scope::kViewingRead}));
  absl::StatusOr<Principal> p = auth_->Verify(k.token);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->key_id, k.record.id);
  EXPECT_TRUE(p->scopes.Allows(Scope::kViewingRead));
  EXPECT_FALSE(p->scopes.Allows(Scope::kViewingWrite));
}

TEST_F(AuthenticatorTest, RefusesMalformedUnknownAndWrongSecretAlike) {
  const NewKey k = Create(Scopes::Of({Scope::kAdmin}));
  absl::StatusOr<Principal> malformed = auth_->Verify("hunter2");
  EXPECT_TRUE(absl::IsUnauthenticated(malformed.status()));
  EXPECT_NE(malformed.status().message().find("malformed API key"), std::string_view::npos);

  std::string wrong_secret = k.token;
  wrong_secret.back() = wrong_secret.back() == '0' ? '1' : '0';
  std::string unknown_id = k.token;
  unknown_id[7] = unknown_id[7] == '0' ? '1' : '0';
  for (const std::string& t : {wrong_secret, unknown_id}) {
    absl::StatusOr<Principal> p = auth_->Verify(t);
    EXPECT_TRUE(absl::IsUnauthenticated(p.status()));
    EXPECT_EQ(p.status().message(), "authorization: invalid API key (unknown key or wrong secret)");
  }
}

TEST_F(AuthenticatorTest, RevocationHereIsImmediateAndElsewhereWithinTheCacheTime) {
  const NewKey here = Create(Scopes::Of({Scope::kAdmin}));
  const NewKey there = Create(Scopes::Of({Scope::kAdmin}));
  ASSERT_TRUE(auth_->Verify(here.token).ok());
  ASSERT_TRUE(auth_->Verify(there.token).ok());  // both cached now

  ASSERT_TRUE(keys_->Revoke(here.record.id).ok());
  auth_->Forget(here.record.id);
  absl::StatusOr<Principal> p = auth_->Verify(here.token);
  EXPECT_EQ(p.status().message(), "authorization: API key " + here.record.id + " is revoked");

  ASSERT_TRUE(other_node_->Revoke(there.record.id).ok());
  clock_.Advance(999);
  EXPECT_TRUE(auth_->Verify(there.token).ok()) << "still cached: within the documented bound";
  clock_.Advance(1);
  EXPECT_TRUE(absl::IsUnauthenticated(auth_->Verify(there.token).status()));
}

TEST_F(AuthenticatorTest, AKeyCreatedElsewhereIsAcceptedWithinTheCacheTime) {
  Create(Scopes::Of({Scope::kAdmin}));
  const std::string id = "00000000000000aa";
  const std::string token = FormatToken({id, std::string(64, 'c')});
  EXPECT_TRUE(absl::IsUnauthenticated(auth_->Verify(token).status()));  // unknown: cached
  // Write the key under that id directly, as another node would.
  KeyRecord r;
  r.id = id;
  r.scopes = Scopes::Of({Scope::kObjectsRead});
  r.hash = HashSecret(std::string(64, 'c'));
  ASSERT_TRUE(keys_->table()->Put("keys", id, EncodeKeyRecord(r)).ok());
  EXPECT_FALSE(auth_->Verify(token).ok());
  clock_.Advance(1000);
  EXPECT_TRUE(auth_->Verify(token).ok());
}

TEST_F(AuthenticatorTest, IsRequiredOnceAnyKeyExistsEvenIfRevoked) {
  EXPECT_FALSE(*auth_->Required());
  // A first key created by another node turns it on within the cache time.
  const NewKey k = Create(Scopes::Of({Scope::kAdmin}), other_node_.get());
  EXPECT_FALSE(*auth_->Required());
  clock_.Advance(1000);
  EXPECT_TRUE(*auth_->Required());
  ASSERT_TRUE(keys_->Revoke(k.record.id).ok());
  Authenticator fresh(keys_.get(), &clock_);
  EXPECT_TRUE(*fresh.Required());

  store::MemoryRowStore empty(&clock_);
  auto store = KeyStore::Open(&empty, &clock_);
  ASSERT_TRUE(store.ok());
  Authenticator here(store->get(), &clock_);
  EXPECT_FALSE(*here.Required());
  ASSERT_TRUE((*store)->Create("k", Scopes::Of({Scope::kAdmin}), "t").ok());
  here.NoteKeyCreated();
  EXPECT_TRUE(*here.Required());  // at once on the node that created it
}

TEST_F(AuthenticatorTest, TheCacheIsBounded) {
  Authenticator small(keys_.get(), &clock_, {.cache_ttl_ms = 1000, .max_cached_keys = 4});
  const NewKey k = Create(Scopes::Of({Scope::kAdmin}));
  for (int i = 0; i < 100; ++i) {
    char id[17];
    std::snprintf(id, sizeof(id), "%016x", i);
    EXPECT_FALSE(small.Verify(FormatToken({id, std::string(64, 'd')})).ok());
  }
  EXPECT_TRUE(small.Verify(k.token).ok());
}

}  // namespace
}  // namespace strata::auth
