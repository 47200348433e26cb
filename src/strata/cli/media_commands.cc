#include "strata/cli/media_commands.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <optional>
#include <string_view>
#include <utility>

#include "strata/cli/call.h"
#include "strata/http/http_client.h"
#include "strata/server/json_writer.h"

namespace strata::cli {
namespace {

// A file mapped into memory, so `object put` sends a large file without reading it into a
// buffer first (the kernel pages it in as the socket takes it).
class MappedFile {
 public:
  ~MappedFile() {
    if (data_ != nullptr && size_ > 0) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool Open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd_ < 0 || ::fstat(fd_, &st) != 0) return false;
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return true;
    data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (data_ == MAP_FAILED) {
      data_ = nullptr;
      return false;
    }
    return true;
  }
  std::string_view view() const {
    return data_ == nullptr ? std::string_view()
                            : std::string_view(static_cast<char*>(data_), size_);
  }

 private:
  int fd_ = -1;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// GET/HEAD of an object: the body to stdout or a file, headers to stderr with --headers.
int CallObject(const std::string& url, const std::string& method, const std::string& target,
               const std::string& range, const std::string& out_file, bool show_headers) {
  std::optional<http::Client> client = ClientFor(url);
  if (!client) return 2;
  std::vector<std::pair<std::string, std::string>> headers;
  if (!range.empty()) headers.emplace_back("Range", range);
  auto response = client->Request(method, target, "", "", headers);
  if (!response.ok()) {
    PrintTransportError(url, response.status());
    return 1;
  }
  const bool ok = response->status >= 200 && response->status < 300;
  if (method == "HEAD" || show_headers) {
    std::ostream& out = method == "HEAD" ? std::cout : std::cerr;
    out << "HTTP " << response->status << "\n";
    for (const auto& [name, value] : response->headers) out << name << ": " << value << "\n";
  }
  if (method == "HEAD") return ok ? 0 : 1;
  if (!ok || out_file.empty() || out_file == "-") {
    std::cout.write(response->body.data(), static_cast<std::streamsize>(response->body.size()));
    if (!ok && !response->body.empty() && response->body.back() != '\n') std::cout << "\n";
    return ok ? 0 : 1;
  }
  std::ofstream out(out_file, std::ios::binary);
  out.write(response->body.data(), static_cast<std::streamsize>(response->body.size()));
  if (!out) {
    std::cerr << "strata: output: cannot write " << out_file << "\n";
    return 1;
  }
  return 0;
}

// Splits "key=value" (a non-empty key); false if there is no '=' or the key is empty.
bool SplitKeyValue(const std::string& kv, std::string* key, std::string* value) {
  const size_t eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  *key = kv.substr(0, eq);
  *value = kv.substr(eq + 1);
  return true;
}

std::string BucketPath(const std::string& bucket) {
  return "/v1/buckets/" + http::UrlEncode(bucket);
}

}  // namespace

std::string BucketPolicyJson(const std::string& ttl, const std::string& grace,
                             const std::string& storage_class) {
  server::JsonWriter json;
  json.BeginObject().PlainKey("ttl");
  if (ttl.empty()) {
    json.Null();
  } else {
    json.String(ttl);
  }
  json.PlainKey("grace").String(grace).PlainKey("storage_class").String(storage_class);
  json.EndObject();
  return json.Take();
}

int BucketPut(const BucketArgs& args) {
  return Call(args.server_url, "PUT", BucketPath(args.bucket),
              BucketPolicyJson(args.ttl, args.grace, args.storage_class));
}

int BucketGet(const BucketArgs& args) {
  return Call(args.server_url, "GET", BucketPath(args.bucket));
}

std::string ObjectTarget(const std::string& bucket, const std::string& key) {
  std::string target = BucketPath(bucket) + "/objects/";
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    target += http::UrlEncode(key.substr(start, slash - start));
    if (slash == std::string::npos) break;
    target += "/";
    start = slash + 1;
  }
  return target;
}

int ObjectPut(const ObjectArgs& args) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const std::string& m : args.metas) {
    std::string key, value;
    if (!SplitKeyValue(m, &key, &value)) {
      std::cerr << "strata: --meta: must be key=value, got '" << m << "'\n";
      return 2;
    }
    headers.emplace_back("x-strata-meta-" + key, std::move(value));
  }
  if (!args.ttl.empty()) headers.emplace_back("x-strata-ttl", args.ttl);
  MappedFile file;
  if (!file.Open(args.file)) {
    std::cerr << "strata: file: cannot open " << args.file << "\n";
    return 2;
  }
  // Uploads of large files may wait long on the server's part writes.
  std::optional<http::Client> client = ClientFor(args.server_url, 600'000);
  if (!client) return 2;
  auto response = client->Request("PUT", ObjectTarget(args.bucket, args.key), file.view(),
                                  args.content_type, headers);
  if (!response.ok()) {
    PrintTransportError(args.server_url, response.status());
    return 1;
  }
  std::cout << response->body << "\n";
  return response->status == 200 ? 0 : 1;
}

int ObjectGet(const ObjectArgs& args) {
  return CallObject(args.server_url, "GET", ObjectTarget(args.bucket, args.key), args.range,
                    args.file, args.show_headers);
}

int ObjectHead(const ObjectArgs& args) {
  return CallObject(args.server_url, "HEAD", ObjectTarget(args.bucket, args.key), "", "", true);
}

int ObjectDelete(const ObjectArgs& args) {
  return Call(args.server_url, "DELETE", ObjectTarget(args.bucket, args.key));
}

int ObjectRestore(const ObjectArgs& args) {
  return Call(args.server_url, "POST", ObjectTarget(args.bucket, args.key) + ":restore");
}

int ObjectList(const ObjectArgs& args) {
  std::string target =
      BucketPath(args.bucket) + "/objects?limit=" + std::to_string(args.list_limit);
  if (!args.prefix.empty()) target += "&prefix=" + http::UrlEncode(args.prefix);
  if (!args.after.empty()) target += "&after=" + http::UrlEncode(args.after);
  if (args.list_deleted) target += "&deleted=true";
  if (!args.meta_filter.empty()) {
    std::string key, value;
    if (!SplitKeyValue(args.meta_filter, &key, &value)) {
      std::cerr << "strata: --meta: must be key=value\n";
      return 2;
    }
    target += "&meta." + http::UrlEncode(key) + "=" + http::UrlEncode(value);
  }
  return Call(args.server_url, "GET", target);
}

}  // namespace strata::cli
