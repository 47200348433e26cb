// The `strata bucket ...` and `strata object ...` commands: requests to a running server's
// media API (docs/media.md). Each command function runs one parsed command and returns the
// process exit code (see call.h). No CLI11 here: cli.cc fills the arguments.
#pragma once

#include <string>
#include <vector>

namespace strata::cli {

struct BucketArgs {
  std::string server_url = "http://127.0.0.1:8080";
  std::string bucket;
  std::string ttl;             // put: empty = no TTL (JSON null)
  std::string grace = "7d";    // put
  std::string storage_class = "hot";  // put
};

int BucketPut(const BucketArgs& args);
int BucketGet(const BucketArgs& args);

// The body of PUT /v1/buckets/{bucket}: {"ttl":<ttl or null>,"grace":...,"storage_class":...},
// each value a JSON string escaped per RFC 8259, so the server gets the string typed and names
// the field when it is bad (a quote in a value must not break the JSON or add a field).
// Empty ttl = null.
std::string BucketPolicyJson(const std::string& ttl, const std::string& grace,
                             const std::string& storage_class);

struct ObjectArgs {
  std::string server_url = "http://127.0.0.1:8080";
  std::string bucket;
  std::string key;
  std::string file = "-";  // put: the file to upload; get: output file, "-" = stdout
  std::string content_type = "application/octet-stream";  // put
  std::vector<std::string> metas;  // put: user metadata, key=value each
  std::string ttl;                 // put: overrides the bucket's TTL (empty = keep it)
  std::string range;               // get: a Range header value
  bool show_headers = false;       // get: reply headers to stderr
  // list:
  std::string prefix, after, meta_filter;
  int list_limit = 100;
  bool list_deleted = false;
};

int ObjectPut(const ObjectArgs& args);
int ObjectGet(const ObjectArgs& args);
int ObjectHead(const ObjectArgs& args);
int ObjectDelete(const ObjectArgs& args);
int ObjectRestore(const ObjectArgs& args);
int ObjectList(const ObjectArgs& args);

// The path of an object: /v1/buckets/{bucket}/objects/{key}, the bucket and each
// '/'-separated segment of the key percent-encoded (the slashes stay).
std::string ObjectTarget(const std::string& bucket, const std::string& key);

}  // namespace strata::cli
