#include "strata/auth/key_store.h"

#include <cstring>

#include "strata/base/coding.h"
#include "strata/base/status.h"

namespace strata::auth {
namespace {

constexpr char kPartition[] = "keys";
constexpr uint8_t kRowVersion = 1;
constexpr size_t kMaxNameBytes = 64;
// Ids are 64 random bits: a collision is already unlikely; the compare-and-set makes it
// harmless, and a few retries make it invisible.
constexpr int kCreateAttempts = 8;

absl::Status ValidateName(std::string_view name) {
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError("name: at most 64 characters");
  }
  for (char c : name) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError("name: only printable ASCII characters");
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeKeyRecord(const KeyRecord& r) {
  std::string out;
  out.push_back(static_cast<char>(kRowVersion));
  coding::PutLengthPrefixed(&out, r.name);
  coding::PutFixed32BE(&out, r.scopes.bits());
  out.append(reinterpret_cast<const char*>(r.hash.data()), r.hash.size());
  coding::PutOrderedInt64(&out, r.created_at);
  coding::PutOrderedInt64(&out, r.revoked_at);
  coding::PutLengthPrefixed(&out, r.created_by);
  return out;
}

absl::StatusOr<KeyRecord> DecodeKeyRecord(std::string_view id, std::string_view in) {
  const absl::Status bad = absl::DataLossError("key " + std::string(id) + ": malformed row");
  if (in.empty()) return bad;
  if (static_cast<uint8_t>(in[0]) != kRowVersion) {
    return absl::DataLossError("key " + std::string(id) + ": unknown row version " +
                               std::to_string(static_cast<uint8_t>(in[0])));
  }
  in.remove_prefix(1);
  KeyRecord r;
  r.id = std::string(id);
  std::string_view name, created_by;
  uint32_t bits = 0;
  if (!coding::GetLengthPrefixed(&in, &name) || !coding::GetFixed32BE(&in, &bits) ||
      in.size() < r.hash.size()) {
    return bad;
  }
  std::memcpy(r.hash.data(), in.data(), r.hash.size());
  in.remove_prefix(r.hash.size());
  if (!coding::GetOrderedInt64(&in, &r.created_at) ||
      !coding::GetOrderedInt64(&in, &r.revoked_at) ||
      !coding::GetLengthPrefixed(&in, &created_by) || !in.empty()) {
    return bad;
  }
  r.name = std::string(name);
  r.scopes = Scopes::FromBits(bits);
  r.created_by = std::string(created_by);
  return r;
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(store::RowStore* rows, Clock* clock,
                                                         RandomSource random) {
  STRATA_ASSIGN_OR_RETURN(store::Table * table,
                          rows->OpenTable({"api_keys", store::TableProfile::kLive}));
  if (!random) random = SystemRandom();
  return std::unique_ptr<KeyStore>(new KeyStore(table, clock, std::move(random)));
}

absl::StatusOr<NewKey> KeyStore::Create(std::string_view name, Scopes scopes,
                                        std::string_view created_by) {
  STRATA_RETURN_IF_ERROR(ValidateName(name));
  if (scopes.empty()) {
    return absl::InvalidArgumentError("scopes: a key needs at least one scope");
  }
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    STRATA_ASSIGN_OR_RETURN(Token token, NewToken(random_));
    KeyRecord r;
    r.id = token.id;
    r.name = std::string(name);
    r.scopes = scopes;
    r.hash = HashSecret(token.secret);
    r.created_at = clock_->NowMillis();
    r.created_by = std::string(created_by);
    store::WriteBatch batch;
    batch.Expect(r.id, std::nullopt);  // a new id, never someone else's key
    batch.Put(r.id, EncodeKeyRecord(r));
    absl::Status s = table_->Apply(kPartition, batch);
    if (absl::IsFailedPrecondition(s)) continue;
    STRATA_RETURN_IF_ERROR(s);
    return NewKey{std::move(r), FormatToken(token)};
  }
  return absl::InternalError("key: could not find an unused id (is the random source broken?)");
}

absl::StatusOr<KeyRecord> KeyStore::Get(std::string_view id) {
  if (!IsKeyId(id)) {
    return absl::InvalidArgumentError("id: a key id is 16 lower-case hex digits");
  }
  absl::StatusOr<std::string> raw = table_->Get(kPartition, id);
  if (absl::IsNotFound(raw.status())) {
    return absl::NotFoundError("key: no key " + std::string(id));
  }
  if (!raw.ok()) return raw.status();
  return DecodeKeyRecord(id, *raw);
}

absl::StatusOr<std::vector<KeyRecord>> KeyStore::List() {
  std::vector<KeyRecord> out;
  store::ScanOptions scan;
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(store::ScanPage page, table_->Scan(kPartition, scan));
    for (const store::Row& row : page.rows) {
      STRATA_ASSIGN_OR_RETURN(KeyRecord r, DecodeKeyRecord(row.clustering, row.value));
      out.push_back(std::move(r));
    }
    if (page.next_cursor.empty()) break;
    scan.cursor = std::move(page.next_cursor);
  }
  return out;
}

absl::StatusOr<KeyRecord> KeyStore::Revoke(std::string_view id) {
  // Compare-and-set on the row, so a revocation is never undone by a concurrent write of the
  // same row (there is none today, but the row is the unit of change).
  if (!IsKeyId(id)) {
    return absl::InvalidArgumentError("id: a key id is 16 lower-case hex digits");
  }
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    absl::StatusOr<std::string> raw = table_->Get(kPartition, id);
    if (absl::IsNotFound(raw.status())) {
      return absl::NotFoundError("key: no key " + std::string(id));
    }
    if (!raw.ok()) return raw.status();
    STRATA_ASSIGN_OR_RETURN(KeyRecord r, DecodeKeyRecord(id, *raw));
    if (!r.active()) return r;
    r.revoked_at = clock_->NowMillis();
    store::WriteBatch batch;
    batch.Expect(std::string(id), *raw);
    batch.Put(std::string(id), EncodeKeyRecord(r));
    absl::Status s = table_->Apply(kPartition, batch);
    if (absl::IsFailedPrecondition(s)) continue;
    STRATA_RETURN_IF_ERROR(s);
    return r;
  }
  return absl::AbortedError("key: too many concurrent changes, try again");
}

absl::StatusOr<bool> KeyStore::AnyKey() {
  store::ScanOptions scan;
  scan.limit = 1;
  STRATA_ASSIGN_OR_RETURN(store::ScanPage page, table_->Scan(kPartition, scan));
  return !page.rows.empty();
}

}  // namespace strata::auth
