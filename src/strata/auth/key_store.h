// Where API keys are kept: the row-store table `api_keys`, partition "keys", one row per key
// (clustering = the key's 16-hex-digit id; value: docs/operations.md, "API keys"). Only the
// SHA-256 of a key's secret is stored; the token is handed out once, by Create.
//
// A key is never deleted, only revoked (revoked_at set): its id stays resolvable in the audit
// log, and "some key exists" -- the switch that turns authentication on -- cannot be undone by
// revoking keys (docs/api.md, "Authentication").
//
// Works on any RowStore (RocksDB, RADOS): several servers may share one store; ids are random
// and written with a compare-and-set, so two nodes never hand out the same id.
//
// Thread safety: every method is thread-safe. The RowStore and Clock must outlive it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/auth/api_key.h"
#include "strata/base/clock.h"
#include "strata/store/row_store.h"

namespace strata::auth {

struct KeyRecord {
  std::string id;    // 16 hex digits
  std::string name;  // the operator's label, 0..64 printable ASCII characters
  Scopes scopes;
  SecretHash hash{};
  Millis created_at = 0;
  Millis revoked_at = 0;   // 0 = active
  std::string created_by;  // who created it: a key id, "anonymous" or "offline-cli"
  bool active() const { return revoked_at == 0; }
};

// A key just created: its record and the one copy of its token.
struct NewKey {
  KeyRecord record;
  std::string token;
};

class KeyStore {
 public:
  // Opens (creating) the table. `random` defaults to SystemRandom().
  static absl::StatusOr<std::unique_ptr<KeyStore>> Open(store::RowStore* rows, Clock* clock,
                                                        RandomSource random = nullptr);

  // A new active key. InvalidArgument naming `scopes` when empty, `name` when too long or not
  // printable ASCII.
  absl::StatusOr<NewKey> Create(std::string_view name, Scopes scopes, std::string_view created_by);
  // NotFound ("key: no key <id>") when there is none.
  absl::StatusOr<KeyRecord> Get(std::string_view id);
  // Every key, active and revoked, by id.
  absl::StatusOr<std::vector<KeyRecord>> List();
  // Marks the key revoked (idempotent: a revoked key keeps its first revoked_at) and returns
  // it. NotFound when there is none.
  absl::StatusOr<KeyRecord> Revoke(std::string_view id);
  // Whether any key was ever created (active or revoked): authentication is then required.
  absl::StatusOr<bool> AnyKey();

  store::Table* table() const { return table_; }

 private:
  KeyStore(store::Table* table, Clock* clock, RandomSource random)
      : table_(table), clock_(clock), random_(std::move(random)) {}

  store::Table* const table_;
  Clock* const clock_;
  const RandomSource random_;
};

// The row value of a key (exposed for tests; docs/operations.md, "API keys").
std::string EncodeKeyRecord(const KeyRecord& record);
// DataLoss for a value that is not a key row of a known version.
absl::StatusOr<KeyRecord> DecodeKeyRecord(std::string_view id, std::string_view value);

}  // namespace strata::auth
