// The `strata key ...` commands: API keys managed offline, on the data directory (or the
// distributed row store) itself -- how the first admin key is made, before any key exists to
// call the server with (docs/operations.md, "API keys"). On the embedded store the server
// must be stopped (RocksDB allows one process); on RADOS they may run beside the servers,
// which see a change within 1 s. Each command writes an audit record (key "offline-cli").
// No CLI11 here: cli.cc fills the arguments.
#pragma once

#include <string>

#include "strata/server/server.h"

namespace strata::cli {

struct KeyArgs {
  // The store to open: data_dir and backends.rows (the other fields are unused).
  server::ServerConfig store;
  std::string scopes;  // create: comma-separated scope names
  bool admin = false;  // create: adds the admin scope
  std::string name;    // create: a label
  std::string id;      // revoke
};

// Prints the new key as JSON, its token included: the only time it is shown.
int KeyCreate(const KeyArgs& args);
// Prints {"keys": [...]}: every key, active and revoked, never a secret.
int KeyList(const KeyArgs& args);
// Revokes the key; prints it.
int KeyRevoke(const KeyArgs& args);

}  // namespace strata::cli
