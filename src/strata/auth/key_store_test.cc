#include "strata/auth/key_store.h"

#include <gtest/gtest.h>

#include "strata/store/memory_row_store.h"

namespace strata::auth {
namespace {

class KeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = KeyStore::Open(&rows_, &clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    keys_ = std::move(*s);
  }
  ManualClock clock_{1'765'000'000'000};
  store::MemoryRowStore rows_{&clock_};
  std::unique_ptr<KeyStore> keys_;
};

TEST_F(KeyStoreTest, StoresOnlyTheHashOfTheSecret) {
  EXPECT_FALSE(*keys_->AnyKey());
  absl::StatusOr<NewKey> k =
      keys_->Create("ingest", Scopes::Of({Scope::kViewingWrite}), "offline-cli");
  ASSERT_TRUE(k.ok()) << k.status();
  absl::StatusOr<Token> token = ParseToken(k->token);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->id, k->record.id);
  EXPECT_TRUE(*keys_->AnyKey());

  // The stored row holds the hash, never the secret itself.
  absl::StatusOr<std::string> raw = keys_->table()->Get("keys", k->record.id);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->find(token->secret), std::string::npos);

  absl::StatusOr<KeyRecord> got = keys_->Get(k->record.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(HashesEqual(got->hash, HashSecret(token->secret)));
  EXPECT_EQ(got->name, "ingest");
  EXPECT_EQ(got->scopes, Scopes::Of({Scope::kViewingWrite}));
  EXPECT_EQ(got->created_at, 1'765'000'000'000);
  EXPECT_EQ(got->created_by, "offline-cli");
  EXPECT_TRUE(got->active());
}

TEST_F(KeyStoreTest, RefusesBadInput) {
  EXPECT_EQ(keys_->Create("x", Scopes(), "t").status().message(),
            "scopes: a key needs at least one scope");
  EXPECT_EQ(
      keys_->Create(std::string(65, 'n'), Scopes::Of({Scope::kAdmin}), "t").status().message(),
      "name: at most 64 characters");
  EXPECT_EQ(keys_->Create("a\nb", Scopes::Of({Scope::kAdmin}), "t").status().message(),
            "name: only printable ASCII characters");
  EXPECT_TRUE(absl::IsInvalidArgument(keys_->Get("nothex").status()));
  EXPECT_EQ(keys_->Get("0123456789abcdef").status().message(), "key: no key 0123456789abcdef");
  EXPECT_TRUE(absl::IsNotFound(keys_->Revoke("0123456789abcdef").status()));
  EXPECT_FALSE(*keys_->AnyKey());
}

TEST_F(KeyStoreTest, RevokedKeysStayListedAndKeepAuthenticationOn) {
  absl::StatusOr<NewKey> a = keys_->Create("a", Scopes::Of({Scope::kAdmin}), "t");
  absl::StatusOr<NewKey> b = keys_->Create("b", Scopes::Of({Scope::kObjectsRead}), "t");
  ASSERT_TRUE(a.ok() && b.ok());
  clock_.Advance(5);
  absl::StatusOr<KeyRecord> revoked = keys_->Revoke(a->record.id);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->revoked_at, 1'765'000'000'005);
  clock_.Advance(5);
  // Idempotent: the first revocation time stays.
  EXPECT_EQ(keys_->Revoke(a->record.id)->revoked_at, 1'765'000'000'005);
  absl::StatusOr<std::vector<KeyRecord>> all = keys_->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  int active = 0;
  for (const KeyRecord& r : *all) active += r.active() ? 1 : 0;
  EXPECT_EQ(active, 1);
  ASSERT_TRUE(keys_->Revoke(b->record.id).ok());
  EXPECT_TRUE(*keys_->AnyKey());
}

TEST_F(KeyStoreTest, AnIdInUseIsNeverHandedOutAgain) {
  // A random source that repeats itself: the second key's first id collides with the first
  // key's, and the compare-and-set makes it draw again.
  int calls = 0;
  RandomSource repeating = [&](std::span<uint8_t> out) {
    const uint8_t fill = calls < 4 ? 1 : 2;  // id+secret, id+secret (same), then different
    ++calls;
    for (uint8_t& b : out) b = fill;
    return absl::OkStatus();
  };
  auto s = KeyStore::Open(&rows_, &clock_, repeating);
  ASSERT_TRUE(s.ok());
  absl::StatusOr<NewKey> first = (*s)->Create("first", Scopes::Of({Scope::kAdmin}), "t");
  absl::StatusOr<NewKey> second = (*s)->Create("second", Scopes::Of({Scope::kAdmin}), "t");
  ASSERT_TRUE(first.ok() && second.ok()) << second.status();
  EXPECT_NE(first->record.id, second->record.id);
  EXPECT_EQ((*s)->Get(first->record.id)->name, "first");
}

TEST(KeyRecordTest, RoundTripsAndRefusesDamagedRows) {
  KeyRecord r;
  r.id = "00112233445566ff";
  r.name = "n";
  r.scopes = Scopes::Of({Scope::kAssetsRead, Scope::kMetricsRead});
  r.hash = HashSecret("s");
  r.created_at = 7;
  r.revoked_at = 9;
  r.created_by = "abc";
  const std::string v = EncodeKeyRecord(r);
  EXPECT_EQ(static_cast<uint8_t>(v[0]), 1);  // version byte
  absl::StatusOr<KeyRecord> back = DecodeKeyRecord(r.id, v);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, "n");
  EXPECT_EQ(back->scopes, r.scopes);
  EXPECT_TRUE(HashesEqual(back->hash, r.hash));
  EXPECT_EQ(back->revoked_at, 9);
  EXPECT_EQ(back->created_by, "abc");
  for (size_t n = 0; n < v.size(); ++n) {
    EXPECT_TRUE(absl::IsDataLoss(DecodeKeyRecord(r.id, v.substr(0, n)).status())) << n;
  }
  EXPECT_TRUE(absl::IsDataLoss(DecodeKeyRecord(r.id, v + "x").status()));
  std::string v2 = v;
  v2[0] = 2;
  EXPECT_EQ(DecodeKeyRecord(r.id, v2).status().message(),
            "key 00112233445566ff: unknown row version 2");
}

}  // namespace
}  // namespace strata::auth
