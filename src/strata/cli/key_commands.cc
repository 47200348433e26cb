#include "strata/cli/key_commands.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "strata/auth/audit_log.h"
#include "strata/auth/key_store.h"
#include "strata/base/log.h"
#include "strata/server/access.h"
#include "strata/server/backends.h"

namespace strata::cli {
namespace {

constexpr char kPrincipal[] = "offline-cli";

struct OpenedStore {
  std::unique_ptr<store::RowStore> rows;
  std::unique_ptr<auth::KeyStore> keys;
  std::unique_ptr<auth::AuditLog> audit;
};

int Fail(const std::string& command, const absl::Status& s) {
  std::cerr << "strata key " << command << ": " << s.message() << "\n";
  return 1;
}

absl::StatusOr<OpenedStore> Open(const KeyArgs& args) {
  // Log lines (the store's warnings) go to stderr: stdout carries only the JSON answer.
  log::Init("warn");
  const server::ServerConfig& config = args.store;
  if (config.backends.rows.backend == "rocksdb") {
    std::error_code ec;
    std::filesystem::create_directories(config.data_dir, ec);
    if (ec) {
      return absl::InvalidArgumentError("data-dir: cannot create " + config.data_dir + ": " +
                                        ec.message());
    }
  }
  OpenedStore out;
  absl::StatusOr<std::unique_ptr<store::RowStore>> rows = server::OpenRowStore(config);
  if (!rows.ok()) {
    std::string message(rows.status().message());
    if (config.backends.rows.backend == "rocksdb") {
      message +=
          " (is `strata serve` running on this data directory? Stop it first, or manage keys "
          "through POST/GET/DELETE /v1/admin/keys with an admin key)";
    }
    return absl::Status(rows.status().code(), message);
  }
  out.rows = std::move(*rows);
  absl::StatusOr<std::unique_ptr<auth::KeyStore>> keys =
      auth::KeyStore::Open(out.rows.get(), SystemClock::Default());
  if (!keys.ok()) return keys.status();
  out.keys = std::move(*keys);
  auth::AuditLogOptions audit_options;
  audit_options.retention_ms = Millis{std::max(1, config.audit_retention_days)} * 86'400'000;
  absl::StatusOr<std::unique_ptr<auth::AuditLog>> audit =
      auth::AuditLog::Open(out.rows.get(), SystemClock::Default(), audit_options);
  if (!audit.ok()) return audit.status();
  out.audit = std::move(*audit);
  return out;
}

void Audit(auth::AuditLog* audit, std::string action, std::string target, const absl::Status& s) {
  auth::AuditRecord r;
  r.key = kPrincipal;
  r.action = std::move(action);
  r.target = std::move(target);
  r.result = s.ok() ? "ok" : "error";
  r.detail = s.ok() ? "" : s.ToString();
  if (absl::Status a = audit->Append(std::move(r)); !a.ok()) {
    std::cerr << "strata key: warning: audit record not stored: " << a.message() << "\n";
  }
}

// Makes what was written durable before the command reports success (the embedded store
// syncs its log periodically otherwise).
int SyncOrFail(const std::string& command, store::RowStore* rows) {
  if (absl::Status s = rows->Sync(); !s.ok()) return Fail(command, s);
  return 0;
}

}  // namespace

int KeyCreate(const KeyArgs& args) {
  absl::StatusOr<auth::Scopes> scopes = auth::Scopes::Parse(args.scopes);
  if (!scopes.ok()) return Fail("create", scopes.status());
  if (args.admin) scopes->Add(auth::Scope::kAdmin);
  if (scopes->empty()) {
    return Fail("create",
                absl::InvalidArgumentError(
                    "scopes: give --scopes (e.g. viewing:read,objects:write) or --admin"));
  }
  absl::StatusOr<OpenedStore> store = Open(args);
  if (!store.ok()) return Fail("create", store.status());
  absl::StatusOr<auth::NewKey> key = store->keys->Create(args.name, *scopes, kPrincipal);
  Audit(store->audit.get(), "key.create", key.ok() ? key->record.id : args.name, key.status());
  if (!key.ok()) return Fail("create", key.status());
  if (int rc = SyncOrFail("create", store->rows.get()); rc != 0) return rc;
  std::cout << server::KeyRecordJson(key->record, &key->token) << "\n";
  std::cerr << "strata key create: the token above is shown only this once (only its hash is "
               "stored); keep it in a secret store. Clients send it as 'Authorization: Bearer "
               "<token>'; the strata CLI reads it from STRATA_API_KEY.\n";
  return 0;
}

int KeyList(const KeyArgs& args) {
  absl::StatusOr<OpenedStore> store = Open(args);
  if (!store.ok()) return Fail("list", store.status());
  absl::StatusOr<std::vector<auth::KeyRecord>> keys = store->keys->List();
  if (!keys.ok()) return Fail("list", keys.status());
  std::string out = "{\"keys\":[";
  for (size_t i = 0; i < keys->size(); ++i) {
    if (i > 0) out += ",";
    out += server::KeyRecordJson((*keys)[i], nullptr);
  }
  std::cout << out << "]}\n";
  return 0;
}

int KeyRevoke(const KeyArgs& args) {
  absl::StatusOr<OpenedStore> store = Open(args);
  if (!store.ok()) return Fail("revoke", store.status());
  absl::StatusOr<auth::KeyRecord> key = store->keys->Revoke(args.id);
  Audit(store->audit.get(), "key.revoke", args.id, key.status());
  if (!key.ok()) return Fail("revoke", key.status());
  if (int rc = SyncOrFail("revoke", store->rows.get()); rc != 0) return rc;
  std::cout << server::KeyRecordJson(*key, nullptr) << "\n";
  return 0;
}

}  // namespace strata::cli
