// The `strata asset ...` commands: requests to a running server's asset API (docs/assets.md).
// Each command function runs one parsed command and returns the process exit code (call.h).
// No CLI11 here: cli.cc fills the arguments.
#pragma once

#include <string>
#include <vector>

namespace strata::cli {

struct AssetArgs {
  std::string server_url = "http://127.0.0.1:8080";
  std::string type;
  std::string id;
  // type put: the schema document's file ("-" = stdin), indexed pointers, bucket, keep.
  std::string schema_file;
  std::vector<std::string> indexed;
  std::string bucket;      // "" = the server's default (day) or the type's
  int keep_versions = -1;  // -1 = the server's default or the type's
  // create / replace / patch: the payload, inline (--data) or from a file ("-" = stdin).
  std::string data;
  std::string file;
  bool patch = false;  // update: a JSON merge patch instead of a replacement
  bool batch = false;  // create: the input is a JSON array of payloads (:batch)
  int if_match = 0;    // update / delete: the version read (0 = no If-Match)
  // list:
  int limit = 100;
  long long since = -1, until = -1;
  std::string cursor;
  std::vector<std::string> where;
  // changes:
  long long after = -1;
};

int AssetTypePut(const AssetArgs& args);
int AssetTypeGet(const AssetArgs& args);
int AssetCreate(const AssetArgs& args);
int AssetGet(const AssetArgs& args);
int AssetUpdate(const AssetArgs& args);
int AssetDelete(const AssetArgs& args);
int AssetVersions(const AssetArgs& args);
int AssetList(const AssetArgs& args);
int AssetChanges(const AssetArgs& args);

// The body of PUT /v1/asset-types/{type}: the schema text as given (the server validates
// it and names what is wrong), the pointers as JSON strings, bucket and keep_versions if set.
std::string AssetTypeJson(const std::string& schema, const std::vector<std::string>& indexed,
                          const std::string& bucket, int keep_versions);
// GET /v1/assets/{type}?... with each where-condition percent-encoded.
std::string AssetListTarget(const AssetArgs& args);

}  // namespace strata::cli
