#include "strata/cli/asset_commands.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>

#include "strata/cli/call.h"
#include "strata/http/http_client.h"
#include "strata/server/json_writer.h"

namespace strata::cli {
namespace {

// The contents of `path` ("-" = stdin), or nullopt with the reason printed.
std::optional<std::string> ReadInput(const std::string& path, const char* what) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "strata: " << what << ": cannot read " << path << "\n";
    return std::nullopt;
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<std::string> Payload(const AssetArgs& a) {
  if (!a.data.empty()) return a.data;
  return ReadInput(a.file.empty() ? "-" : a.file, "payload");
}

std::string AssetPath(const AssetArgs& a) {
  return "/v1/assets/" + http::UrlEncode(a.type) + "/" + http::UrlEncode(a.id);
}

// One request with an optional If-Match; prints the body (and the ETag to stderr).
int CallWithIfMatch(const AssetArgs& a, const std::string& method, const std::string& target,
                    const std::string& body) {
  std::optional<http::Client> client = ClientFor(a.server_url);
  if (!client) return 2;
  std::vector<std::pair<std::string, std::string>> headers;
  if (a.if_match > 0) headers.emplace_back("If-Match", "\"" + std::to_string(a.if_match) + "\"");
  auto response = client->Request(method, target, body, "application/json", headers);
  if (!response.ok()) {
    PrintTransportError(a.server_url, response.status());
    return 1;
  }
  std::cout << response->body;
  if (!response->body.empty() && response->body.back() != '\n') std::cout << "\n";
  return response->status >= 200 && response->status < 300 ? 0 : 1;
}

}  // namespace

std::string AssetTypeJson(const std::string& schema, const std::vector<std::string>& indexed,
                          const std::string& bucket, int keep_versions) {
  server::JsonWriter w;
  w.BeginArray();
  for (const std::string& p : indexed) w.String(p);
  w.EndArray();
  std::string out = "{\"schema\":" + schema + ",\"indexed\":" + w.Take();
  if (!bucket.empty()) {
    server::JsonWriter b;
    b.String(bucket);
    out += ",\"bucket\":" + b.Take();
  }
  if (keep_versions >= 0) out += ",\"keep_versions\":" + std::to_string(keep_versions);
  out += "}";
  return out;
}

std::string AssetListTarget(const AssetArgs& a) {
  std::string target =
      "/v1/assets/" + http::UrlEncode(a.type) + "?limit=" + std::to_string(a.limit);
  if (a.since >= 0) target += "&since=" + std::to_string(a.since);
  if (a.until >= 0) target += "&until=" + std::to_string(a.until);
  if (!a.cursor.empty()) target += "&cursor=" + http::UrlEncode(a.cursor);
  for (const std::string& w : a.where) target += "&where=" + http::UrlEncode(w);
  return target;
}

int AssetTypePut(const AssetArgs& a) {
  std::optional<std::string> schema = ReadInput(a.schema_file, "schema");
  if (!schema) return 2;
  return Call(a.server_url, "PUT", "/v1/asset-types/" + http::UrlEncode(a.type),
              AssetTypeJson(*schema, a.indexed, a.bucket, a.keep_versions));
}

int AssetTypeGet(const AssetArgs& a) {
  return Call(a.server_url, "GET", "/v1/asset-types/" + http::UrlEncode(a.type));
}

int AssetCreate(const AssetArgs& a) {
  std::optional<std::string> body = Payload(a);
  if (!body) return 2;
  return Call(a.server_url, "POST",
              "/v1/assets/" + http::UrlEncode(a.type) + (a.batch ? ":batch" : ""), *body);
}

int AssetGet(const AssetArgs& a) { return Call(a.server_url, "GET", AssetPath(a)); }

int AssetUpdate(const AssetArgs& a) {
  std::optional<std::string> body = Payload(a);
  if (!body) return 2;
  return CallWithIfMatch(a, a.patch ? "PATCH" : "PUT", AssetPath(a), *body);
}

int AssetDelete(const AssetArgs& a) { return CallWithIfMatch(a, "DELETE", AssetPath(a), ""); }

int AssetVersions(const AssetArgs& a) {
  return Call(a.server_url, "GET", AssetPath(a) + "/versions");
}

int AssetList(const AssetArgs& a) { return Call(a.server_url, "GET", AssetListTarget(a)); }

int AssetChanges(const AssetArgs& a) {
  std::string target =
      "/v1/asset-types/" + http::UrlEncode(a.type) + "/changes?limit=" + std::to_string(a.limit);
  if (a.after >= 0) target += "&after=" + std::to_string(a.after);
  return Call(a.server_url, "GET", target);
}

}  // namespace strata::cli
