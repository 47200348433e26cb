#include "strata/blob/s3/s3_blob_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <pugixml.hpp>
#include <random>

#include "strata/base/log.h"
#include "strata/base/status.h"
#include "strata/blob/s3/internal/s3_http.h"

namespace strata::blob {

using s3_internal::CanonicalQuery;
using s3_internal::HttpRequest;
using s3_internal::HttpResponse;
using s3_internal::UriDecode;
using s3_internal::UriEncode;

// ---------------------------------------------------------------------------------------------
// Credentials

absl::StatusOr<S3Credentials> S3CredentialsFromEnvironment() {
  auto get = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v == nullptr ? "" : v;
  };
  S3Credentials c{get("STRATA_S3_ACCESS_KEY"), get("STRATA_S3_SECRET_KEY")};
  if (!c.access_key.empty() && !c.secret_key.empty()) return c;
  c = S3Credentials{get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")};
  if (!c.access_key.empty() && !c.secret_key.empty()) return c;
  return absl::NotFoundError(
      "S3 credentials: set STRATA_S3_ACCESS_KEY and STRATA_S3_SECRET_KEY (or "
      "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or give a credentials file");
}

absl::StatusOr<S3Credentials> S3CredentialsFromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("S3 credentials file " + path + ": cannot be read");
  auto trim = [](std::string s) {
    size_t b = s.find_first_not_of(" \t\r");
    size_t e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  S3Credentials c;
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (!c.access_key.empty() && !c.secret_key.empty()) break;  // first complete section
      c = S3Credentials{};
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string name = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (name == "access_key" || name == "aws_access_key_id") c.access_key = value;
    if (name == "secret_key" || name == "aws_secret_access_key") c.secret_key = value;
  }
  if (c.access_key.empty() || c.secret_key.empty()) {
    return absl::InvalidArgumentError("S3 credentials file " + path +
                                      ": needs access_key and secret_key lines");
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Helpers

namespace {

std::string RandomHex(size_t chars) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(chars, '0');
  for (char& c : s) c = kHex[rng() & 15];
  return s;
}

std::string Base64Md5(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, md, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// XML 1.0 cannot carry most control characters, even escaped.
bool XmlSafe(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 && u != '\t' && u != '\n' && u != '\r';
  });
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// A multipart object's ETag is "<hash>-<parts>"; a single PUT's has no suffix.
uint32_t PartsFromEtag(const std::string& etag) {
  std::string e = Unquote(etag);
  size_t dash = e.rfind('-');
  if (dash == std::string::npos) return 1;
  unsigned long n = std::strtoul(e.c_str() + dash + 1, nullptr, 10);
  return n == 0 ? 1 : static_cast<uint32_t>(n);
}

// "2026-12-06T05:14:21.539Z" -> milliseconds since the epoch; 0 when unparsable.
Millis ParseIsoTime(const std::string& s) {
  int y, mo, d, h, mi, sec;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec) != 6) return 0;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  Millis ms = static_cast<Millis>(timegm(&tm)) * 1000;
  size_t dot = s.find('.');
  if (dot != std::string::npos) {
    int frac = std::atoi(s.substr(dot + 1, 3).c_str());
    ms += frac;
  }
  return ms;
}

// "Wed, 21 Oct 2015 07:28:00 GMT" (an HTTP date, RFC 9110) -> milliseconds since the epoch;
// 0 when unparsable.
Millis ParseHttpTime(const std::string& s) {
  std::tm tm{};
  const char* end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) return 0;
  return static_cast<Millis>(timegm(&tm)) * 1000;
}

bool ValidBucketName(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  return std::all_of(b.begin(), b.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Impl

struct S3BlobStore::Impl {
  Impl(S3BlobStoreOptions o)
      : options(std::move(o)),
        http(options.endpoint, options.region, options.credentials.access_key,
             options.credentials.secret_key,
             s3_internal::HttpTimeouts{options.connect_timeout_ms, options.low_speed_seconds},
             s3_internal::RetryPolicy{options.max_attempts, options.initial_backoff_ms,
                                      options.max_backoff_ms},
             options.max_idle_connections),
        bucket_path("/" + options.bucket) {}

  std::string KeyPath(std::string_view name) const {
    return bucket_path + "/" + UriEncode(name, /*keep_slash=*/true);
  }

  // The status of an S3 answer that was not the one wanted.
  absl::Status ErrorOf(const HttpResponse& r, std::string_view op, std::string_view name) const {
    std::string code = r.ErrorCode();
    std::string what = "S3 " + std::string(op) + " " + options.bucket + "/" + std::string(name) +
                       ": HTTP " + std::to_string(r.status);
    if (!code.empty()) what += " " + code;
    std::string message = r.ErrorMessage();
    if (!message.empty()) what += " (" + message + ")";
    if (r.status >= 500 || code == "SlowDown") {
      return absl::UnavailableError(what + " from " + options.endpoint + " after " +
                                    std::to_string(options.max_attempts) + " attempts");
    }
    if (r.status == 403) {
      return absl::PermissionDeniedError(
          what +
          ": S3 rejected the request; check the credentials (STRATA_S3_ACCESS_KEY / "
          "STRATA_S3_SECRET_KEY or the credentials file) and the bucket's policy");
    }
    if (r.status == 404) return absl::NotFoundError(what);
    if (r.status == 416) return absl::OutOfRangeError(what);
    if (r.status == 412) return absl::FailedPreconditionError(what);
    return absl::InternalError(what);
  }

  absl::StatusOr<HttpResponse> Do(std::string method, std::string path, std::string query = "",
                                  std::vector<std::pair<std::string, std::string>> headers = {},
                                  std::string_view body = {}) {
    HttpRequest req{std::move(method), std::move(path), std::move(query), std::move(headers), body};
    return http.Do(req);
  }

  struct Head {
    uint64_t size = 0;
    std::string etag;
    std::string version_id;
    std::string writer;
    Millis modified = 0;  // Last-Modified (whole seconds), 0 if absent
  };
  // nullopt when absent.
  absl::StatusOr<std::optional<Head>> HeadObject(std::string_view name) {
    STRATA_ASSIGN_OR_RETURN(HttpResponse r, Do("HEAD", KeyPath(name)));
    if (r.status == 404) return std::optional<Head>();
    if (r.status != 200) return ErrorOf(r, "HEAD", name);
    Head h;
    h.size = std::strtoull(r.Header("content-length").c_str(), nullptr, 10);
    h.etag = r.Header("etag");
    h.version_id = r.Header("x-amz-version-id");
    h.writer = r.Header("x-amz-meta-strata-writer");
    h.modified = ParseHttpTime(r.Header("last-modified"));
    return std::optional<Head>(std::move(h));
  }

  absl::Status AbortUpload(std::string_view name, const std::string& upload_id) {
    STRATA_ASSIGN_OR_RETURN(HttpResponse r,
                            Do("DELETE", KeyPath(name), CanonicalQuery({{"uploadId", upload_id}})));
    if (r.status == 204 || r.status == 200 || r.status == 404) return absl::OkStatus();
    return ErrorOf(r, "AbortMultipartUpload", name);
  }

  // Versioned bucket, after our version `version_id` of `name` was written: first writer
  // wins. OK if ours is the oldest version since the last delete marker; otherwise removes
  // ours and answers AlreadyExists.
  absl::Status ResolveVersions(std::string_view name, const std::string& version_id) {
    if (version_id.empty()) return absl::OkStatus();
    STRATA_ASSIGN_OR_RETURN(HttpResponse r, Do("GET", bucket_path,
                                               CanonicalQuery({{"versions", ""},
                                                               {"prefix", std::string(name)},
                                                               {"encoding-type", "url"},
                                                               {"max-keys", "1000"}})));
    if (r.status != 200) return ErrorOf(r, "ListObjectVersions", name);
    pugi::xml_document doc;
    if (!doc.load_buffer(r.body.data(), r.body.size())) {
      return absl::InternalError("S3 ListObjectVersions: unparsable answer");
    }
    std::string winner;
    bool ours_seen = false;
    for (pugi::xml_node n : doc.child("ListVersionsResult").children()) {
      std::string_view kind = n.name();
      if (kind != "Version" && kind != "DeleteMarker") continue;
      if (UriDecode(n.child("Key").text().as_string()) != name) continue;
      if (kind == "DeleteMarker") break;  // versions are listed newest first
      std::string id = n.child("VersionId").text().as_string();
      if (id == version_id) ours_seen = true;
      winner = id;
    }
    // Not among the live versions: a Delete came after our write; the write itself won.
    if (!ours_seen || winner == version_id) return absl::OkStatus();
    STRATA_ASSIGN_OR_RETURN(
        HttpResponse d, Do("DELETE", KeyPath(name), CanonicalQuery({{"versionId", version_id}})));
    if (d.status != 204 && d.status != 200 && d.status != 404) {
      return ErrorOf(d, "DELETE version", name);
    }
    return absl::AlreadyExistsError("blob " + std::string(name) + " already exists");
  }

  // The status of one <Error> of a DeleteObjects answer (NoSuchKey counts as deleted).
  absl::Status DeleteErrorOf(const std::string& key, const std::string& code,
                             const std::string& message) const {
    if (code == "NoSuchKey" || code == "NoSuchVersion") return absl::OkStatus();
    std::string what =
        "S3 DeleteObjects " + options.bucket + "/" + key + ": " + code + " (" + message + ")";
    if (code == "AccessDenied") return absl::PermissionDeniedError(what);
    if (code == "SlowDown" || code == "InternalError" || code == "ServiceUnavailable") {
      return absl::UnavailableError(what);
    }
    return absl::InternalError(what);
  }

  // One DeleteObjects request (at most 1000 keys, each with an optional version id): one
  // status per key, in order. S3 answers per key (Quiet mode lists only the failures); a
  // failure of the request itself (transport, HTTP status, unparsable answer) is every key's.
  std::vector<absl::Status> DeleteObjectsBatch(
      std::span<const std::pair<std::string, std::string>> keys) {
    std::string body =
        "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>";
    for (const auto& [key, version] : keys) {
      body += "<Object><Key>" + XmlEscape(key) + "</Key>";
      if (!version.empty()) body += "<VersionId>" + XmlEscape(version) + "</VersionId>";
      body += "</Object>";
    }
    body += "</Delete>";
    auto all = [&keys](absl::Status s) { return std::vector<absl::Status>(keys.size(), s); };
    // radosgw (like AWS) requires an integrity header on this call: Content-MD5 of the body.
    absl::StatusOr<HttpResponse> r =
        Do("POST", bucket_path, CanonicalQuery({{"delete", ""}}),
           {{"Content-MD5", Base64Md5(body)}, {"Content-Type", "application/xml"}}, body);
    if (!r.ok()) return all(r.status());
    if (r->status != 200) return all(ErrorOf(*r, "DeleteObjects", keys.front().first));
    pugi::xml_document doc;
    if (!doc.load_buffer(r->body.data(), r->body.size())) {
      return all(absl::InternalError("S3 DeleteObjects: unparsable answer"));
    }
    pugi::xml_node result = doc.child("DeleteResult");
    if (!result) {  // e.g. an <Error> document inside a 200
      if (r->status == 200) r->status = 500;
      return all(ErrorOf(*r, "DeleteObjects", keys.front().first));
    }
    std::vector<absl::Status> out(keys.size());
    std::multimap<std::string, pugi::xml_node> errors;
    for (pugi::xml_node e : result.children("Error")) {
      errors.emplace(e.child("Key").text().as_string(), e);
    }
    if (errors.empty()) return out;
    for (size_t i = 0; i < keys.size(); ++i) {
      auto [b, e] = errors.equal_range(keys[i].first);
      for (auto it = b; it != e; ++it) {
        const std::string version = it->second.child("VersionId").text().as_string();
        if (!version.empty() && version != keys[i].second) continue;
        out[i] = DeleteErrorOf(keys[i].first, it->second.child("Code").text().as_string(),
                               it->second.child("Message").text().as_string());
        break;
      }
    }
    return out;
  }

  // DeleteObjectsBatch's first failure, or OK.
  absl::Status DeleteObjectsBatchAll(std::span<const std::pair<std::string, std::string>> keys) {
    for (absl::Status& s : DeleteObjectsBatch(keys)) {
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  S3BlobStoreOptions options;
  s3_internal::S3Http http;
  const std::string bucket_path;
  bool versioned = false;
};

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

class S3Writer final : public BlobWriter {
 public:
  S3Writer(S3BlobStore::Impl* s, std::string name)
      : s_(s), name_(std::move(name)), token_(RandomHex(16)) {
    buffer_.reserve(static_cast<size_t>(std::min<uint64_t>(s_->options.part_bytes, 1 << 20)));
  }

  ~S3Writer() override {
    if (!upload_id_.empty() && !committed_) {
      absl::Status st = s_->AbortUpload(name_, upload_id_);
      if (!st.ok()) {
        // Invisible either way; Open's age rule (or a lifecycle rule) removes it later.
        STRATA_LOG_WARN("s3: could not abort an upload", "name", name_, "error", st.ToString());
      }
    }
  }

  absl::Status Append(std::string_view data) override {
    if (done_) return absl::FailedPreconditionError("writer: already committed or failed");
    const size_t part = static_cast<size_t>(s_->options.part_bytes);
    while (!data.empty()) {
      // A full buffer becomes a part only once more bytes follow, so a blob of exactly one
      // part size stays a single PUT.
      if (buffer_.size() == part) {
        absl::Status st = FlushPart();
        if (!st.ok()) return Fail(st);
      }
      size_t take = std::min(data.size(), part - buffer_.size());
      buffer_.append(data.substr(0, take));
      data.remove_prefix(take);
      size_ += take;
    }
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    if (done_) return absl::FailedPreconditionError("writer: already committed or failed");
    done_ = true;
    absl::Status st = upload_id_.empty() ? PutSingle() : CompleteMultipart();
    if (!st.ok()) return Fail(st);
    committed_ = true;
    return absl::OkStatus();
  }

  uint64_t size() const override { return size_; }
  // The uploaded parts, plus the buffered one (also for an empty blob). After a multipart
  // Commit the last part is among the uploaded ones and the buffer is empty.
  uint32_t parts() const override {
    const bool last_uploaded = buffer_.empty() && !etags_.empty();
    return static_cast<uint32_t>(etags_.size()) + (last_uploaded ? 0 : 1);
  }

 private:
  absl::Status Fail(absl::Status st) {
    done_ = true;
    if (!upload_id_.empty()) {
      absl::Status abort = s_->AbortUpload(name_, upload_id_);
      if (abort.ok()) upload_id_.clear();
    }
    buffer_.clear();
    buffer_.shrink_to_fit();
    return st;
  }

  std::vector<std::pair<std::string, std::string>> ObjectHeaders() const {
    return {{"Content-Type", "application/octet-stream"}, {"x-amz-meta-strata-writer", token_}};
  }

  absl::Status FlushPart() {
    if (upload_id_.empty()) {
      STRATA_ASSIGN_OR_RETURN(
          HttpResponse r,
          s_->Do("POST", s_->KeyPath(name_), CanonicalQuery({{"uploads", ""}}), ObjectHeaders()));
      if (r.status != 200) return s_->ErrorOf(r, "CreateMultipartUpload", name_);
      pugi::xml_document doc;
      doc.load_buffer(r.body.data(), r.body.size());
      upload_id_ = doc.child("InitiateMultipartUploadResult").child("UploadId").text().as_string();
      if (upload_id_.empty()) return absl::InternalError("S3 CreateMultipartUpload: no UploadId");
    }
    const std::string number = std::to_string(etags_.size() + 1);
    STRATA_ASSIGN_OR_RETURN(
        HttpResponse r,
        s_->Do("PUT", s_->KeyPath(name_),
               CanonicalQuery({{"partNumber", number}, {"uploadId", upload_id_}}), {}, buffer_));
    if (r.status != 200) return s_->ErrorOf(r, "UploadPart " + number, name_);
    etags_.push_back(r.Header("etag"));
    buffer_.clear();
    return absl::OkStatus();
  }

  absl::Status ExistsCheck() {
    STRATA_ASSIGN_OR_RETURN(std::optional<S3BlobStore::Impl::Head> head, s_->HeadObject(name_));
    if (head) return absl::AlreadyExistsError("blob " + name_ + " already exists");
    return absl::OkStatus();
  }

  // After a 412 or NoSuchUpload: did an earlier attempt of this very request (whose answer
  // was lost, then retried) already write the object?
  absl::StatusOr<bool> WrittenByUs(std::string* version_id) {
    STRATA_ASSIGN_OR_RETURN(std::optional<S3BlobStore::Impl::Head> head, s_->HeadObject(name_));
    if (!head || head->writer != token_) return false;
    *version_id = head->version_id;
    return true;
  }

  absl::Status PutSingle() {
    if (s_->versioned) STRATA_RETURN_IF_ERROR(ExistsCheck());
    auto headers = ObjectHeaders();
    headers.emplace_back("If-None-Match", "*");
    STRATA_ASSIGN_OR_RETURN(HttpResponse r,
                            s_->Do("PUT", s_->KeyPath(name_), "", std::move(headers), buffer_));
    std::string version_id = r.Header("x-amz-version-id");
    if (r.status == 412) {
      STRATA_ASSIGN_OR_RETURN(bool ours, WrittenByUs(&version_id));
      if (!ours) return absl::AlreadyExistsError("blob " + name_ + " already exists");
    } else if (r.status != 200) {
      return s_->ErrorOf(r, "PUT", name_);
    }
    buffer_.clear();
    if (s_->versioned) return s_->ResolveVersions(name_, version_id);
    return absl::OkStatus();
  }

  absl::Status CompleteMultipart() {
    STRATA_RETURN_IF_ERROR(FlushPart());  // the last part, never empty
    STRATA_RETURN_IF_ERROR(ExistsCheck());
    std::string body =
        "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    for (size_t i = 0; i < etags_.size(); ++i) {
      body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
              XmlEscape(etags_[i]) + "</ETag></Part>";
    }
    body += "</CompleteMultipartUpload>";
    STRATA_ASSIGN_OR_RETURN(
        HttpResponse r,
        s_->Do("POST", s_->KeyPath(name_), CanonicalQuery({{"uploadId", upload_id_}}),
               {{"Content-Type", "application/xml"}, {"If-None-Match", "*"}}, body));
    std::string version_id = r.Header("x-amz-version-id");
    // S3 may answer 200 and still fail the Complete, with an <Error> body.
    const bool failed = r.status != 200 || !r.ErrorCode().empty();
    if (failed && (r.status == 412 || r.status == 404)) {
      STRATA_ASSIGN_OR_RETURN(bool ours, WrittenByUs(&version_id));
      if (!ours) {
        if (r.status == 412) return absl::AlreadyExistsError("blob " + name_ + " already exists");
        return s_->ErrorOf(r, "CompleteMultipartUpload", name_);
      }
    } else if (failed) {
      if (r.status == 200) r.status = 500;  // an error inside a 200: treat as the server's
      return s_->ErrorOf(r, "CompleteMultipartUpload", name_);
    }
    upload_id_.clear();  // completed: nothing to abort any more
    if (s_->versioned) return s_->ResolveVersions(name_, version_id);
    return absl::OkStatus();
  }

  S3BlobStore::Impl* s_;
  const std::string name_;
  const std::string token_;  // x-amz-meta-strata-writer: recognises our own retried write
  std::string buffer_;
  uint64_t size_ = 0;
  std::string upload_id_;
  std::vector<std::string> etags_;  // of the parts uploaded so far
  bool done_ = false;
  bool committed_ = false;
};

// ---------------------------------------------------------------------------------------------
// Reader

class S3Reader final : public BlobReader {
 public:
  S3Reader(S3BlobStore::Impl* s, std::string name, S3BlobStore::Impl::Head head)
      : s_(s), name_(std::move(name)), head_(std::move(head)) {}

  uint64_t size() const override { return head_.size; }

  absl::Status ReadAt(uint64_t offset, size_t n, std::string* out) override {
    if (offset > head_.size) {
      return absl::OutOfRangeError("offset " + std::to_string(offset) + " is past the end (" +
                                   std::to_string(head_.size) + ")");
    }
    n = static_cast<size_t>(std::min<uint64_t>(n, head_.size - offset));
    if (n == 0) return absl::OkStatus();
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + n - 1)}};
    std::string query;
    // Pin what was opened: the version on a versioned bucket, else the ETag.
    if (s_->versioned && !head_.version_id.empty()) {
      query = CanonicalQuery({{"versionId", head_.version_id}});
    } else {
      headers.emplace_back("If-Match", head_.etag);
    }
    STRATA_ASSIGN_OR_RETURN(HttpResponse r,
                            s_->Do("GET", s_->KeyPath(name_), query, std::move(headers)));
    if (r.status == 404 || r.status == 412) {
      return absl::NotFoundError("blob " + name_ + " was deleted or replaced after it was opened");
    }
    if (r.status != 206 && r.status != 200) return s_->ErrorOf(r, "GET", name_);
    std::string_view got = r.body;
    if (r.status == 200) got = got.substr(std::min<size_t>(got.size(), offset));
    if (got.size() < n) {
      return absl::InternalError("S3 GET " + name_ + ": short answer (" +
                                 std::to_string(got.size()) + " of " + std::to_string(n) +
                                 " bytes)");
    }
    out->append(got.substr(0, n));
    return absl::OkStatus();
  }

 private:
  S3BlobStore::Impl* s_;
  const std::string name_;
  const S3BlobStore::Impl::Head head_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Store

S3BlobStore::S3BlobStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
S3BlobStore::~S3BlobStore() = default;

bool S3BlobStore::versioned() const { return impl_->versioned; }
const std::string& S3BlobStore::bucket() const { return impl_->options.bucket; }
uint64_t S3BlobStore::retries() const { return impl_->http.retries(); }
uint64_t S3BlobStore::connections_opened() const { return impl_->http.connections_opened(); }

absl::StatusOr<std::unique_ptr<S3BlobStore>> S3BlobStore::Open(S3BlobStoreOptions o) {
  if (o.endpoint.rfind("http://", 0) != 0 && o.endpoint.rfind("https://", 0) != 0) {
    return absl::InvalidArgumentError("endpoint: must start with http:// or https://");
  }
  if (!ValidBucketName(o.bucket)) {
    return absl::InvalidArgumentError("bucket: must be 3..63 characters of [a-z0-9.-]");
  }
  if (o.credentials.access_key.empty() || o.credentials.secret_key.empty()) {
    return absl::InvalidArgumentError("credentials: access key and secret key are required");
  }
  if (o.part_bytes < 4096 || o.part_bytes > (5ull << 30)) {
    return absl::InvalidArgumentError("part_bytes: must be 4096 .. 5 GiB");
  }
  if (o.max_attempts < 1) return absl::InvalidArgumentError("max_attempts: must be >= 1");
  if (o.region.empty()) return absl::InvalidArgumentError("region: must not be empty");
  auto impl = std::make_unique<Impl>(std::move(o));
  Impl* s = impl.get();
  const std::string versioning = CanonicalQuery({{"versioning", ""}});

  STRATA_ASSIGN_OR_RETURN(HttpResponse r, s->Do("GET", s->bucket_path, versioning));
  if (r.status == 404 && s->options.create_bucket) {
    STRATA_ASSIGN_OR_RETURN(HttpResponse c, s->Do("PUT", s->bucket_path));
    if (c.status != 200 && c.ErrorCode() != "BucketAlreadyOwnedByYou") {
      return s->ErrorOf(c, "CreateBucket", "");
    }
    STRATA_ASSIGN_OR_RETURN(r, s->Do("GET", s->bucket_path, versioning));
  }
  if (r.status == 404) {
    return absl::NotFoundError("S3 bucket " + s->options.bucket + " does not exist at " +
                               s->options.endpoint);
  }
  if (r.status != 200) return s->ErrorOf(r, "GetBucketVersioning", "");
  pugi::xml_document doc;
  doc.load_buffer(r.body.data(), r.body.size());
  std::string status = doc.child("VersioningConfiguration").child("Status").text().as_string();
  if (status != "Enabled" && s->options.enable_versioning) {
    const std::string body =
        "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Status>Enabled</Status></VersioningConfiguration>";
    STRATA_ASSIGN_OR_RETURN(HttpResponse v, s->Do("PUT", s->bucket_path, versioning,
                                                  {{"Content-Type", "application/xml"}}, body));
    if (v.status != 200) return s->ErrorOf(v, "PutBucketVersioning", "");
    status = "Enabled";
  }
  s->versioned = status == "Enabled";

  std::unique_ptr<S3BlobStore> store(new S3BlobStore(std::move(impl)));
  if (s->options.abort_uploads_older_than_ms > 0) {
    const Clock* clock = s->options.clock ? s->options.clock : SystemClock::Default();
    absl::StatusOr<size_t> aborted =
        store->AbortIncompleteUploads(clock->NowMillis() - s->options.abort_uploads_older_than_ms);
    if (!aborted.ok()) return aborted.status();
    if (*aborted > 0) {
      STRATA_LOG_INFO("s3: aborted stale incomplete uploads", "bucket", s->options.bucket, "count",
                      std::to_string(*aborted));
    }
  }
  return store;
}

absl::StatusOr<std::unique_ptr<BlobWriter>> S3BlobStore::NewWriter(std::string_view name) {
  STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  return std::unique_ptr<BlobWriter>(new S3Writer(impl_.get(), std::string(name)));
}

absl::StatusOr<std::unique_ptr<BlobReader>> S3BlobStore::NewReader(std::string_view name) {
  STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  STRATA_ASSIGN_OR_RETURN(std::optional<Impl::Head> head, impl_->HeadObject(name));
  if (!head) return absl::NotFoundError("blob " + std::string(name) + " not found");
  return std::unique_ptr<BlobReader>(new S3Reader(impl_.get(), std::string(name), *head));
}

absl::StatusOr<BlobInfo> S3BlobStore::Stat(std::string_view name) {
  STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  STRATA_ASSIGN_OR_RETURN(std::optional<Impl::Head> head, impl_->HeadObject(name));
  if (!head) return absl::NotFoundError("blob " + std::string(name) + " not found");
  return BlobInfo{std::string(name), head->size, PartsFromEtag(head->etag), head->modified};
}

absl::Status S3BlobStore::Delete(std::string_view name) {
  STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  STRATA_ASSIGN_OR_RETURN(HttpResponse r, impl_->Do("DELETE", impl_->KeyPath(name)));
  if (r.status == 204 || r.status == 200 || r.status == 404) return absl::OkStatus();
  return impl_->ErrorOf(r, "DELETE", name);
}

absl::Status S3BlobStore::DeleteMany(std::span<const std::string> names) {
  for (const std::string& name : names) STRATA_RETURN_IF_ERROR(ValidateBlobName(name));
  for (absl::Status& s : DeleteEach(names)) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

std::vector<absl::Status> S3BlobStore::DeleteEach(std::span<const std::string> names) {
  std::vector<absl::Status> out(names.size());
  std::vector<std::pair<std::string, std::string>> batch;
  std::vector<size_t> where;
  auto flush = [&] {
    std::vector<absl::Status> got = impl_->DeleteObjectsBatch(batch);
    for (size_t j = 0; j < got.size(); ++j) out[where[j]] = std::move(got[j]);
    batch.clear();
    where.clear();
  };
  for (size_t i = 0; i < names.size(); ++i) {
    out[i] = ValidateBlobName(names[i]);
    if (!out[i].ok()) continue;
    if (!XmlSafe(names[i])) {  // not expressible in the XML body: a DELETE of its own
      out[i] = Delete(names[i]);
      continue;
    }
    batch.emplace_back(names[i], "");
    where.push_back(i);
    if (batch.size() == 1000) flush();
  }
  if (!batch.empty()) flush();
  return out;
}

absl::StatusOr<ListPage> S3BlobStore::List(std::string_view prefix, std::string_view after,
                                           size_t limit) {
  if (limit < 1 || limit > kMaxListLimit) {
    return absl::InvalidArgumentError("limit: must be 1..1000");
  }
  ListPage page;
  std::string token;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> params = {
        {"list-type", "2"}, {"max-keys", std::to_string(limit)}, {"encoding-type", "url"}};
    if (!prefix.empty()) params.emplace_back("prefix", std::string(prefix));
    if (!token.empty()) {
      params.emplace_back("continuation-token", token);
    } else if (!after.empty()) {
      params.emplace_back("start-after", std::string(after));
    }
    STRATA_ASSIGN_OR_RETURN(HttpResponse r,
                            impl_->Do("GET", impl_->bucket_path, CanonicalQuery(params)));
    if (r.status != 200) return impl_->ErrorOf(r, "ListObjectsV2", prefix);
    pugi::xml_document doc;
    if (!doc.load_buffer(r.body.data(), r.body.size())) {
      return absl::InternalError("S3 ListObjectsV2: unparsable answer");
    }
    pugi::xml_node root = doc.child("ListBucketResult");
    for (pugi::xml_node c : root.children("Contents")) {
      BlobInfo info;
      info.name = UriDecode(c.child("Key").text().as_string());
      info.size = c.child("Size").text().as_ullong();
      info.parts = PartsFromEtag(c.child("ETag").text().as_string());
      info.modified_ms = ParseIsoTime(c.child("LastModified").text().as_string());
      page.blobs.push_back(std::move(info));
    }
    const bool truncated = std::string_view(root.child("IsTruncated").text().as_string()) == "true";
    if (truncated && page.blobs.empty()) {
      // An empty but truncated page (S3 may do that): follow the token.
      token = root.child("NextContinuationToken").text().as_string();
      if (!token.empty()) continue;
    }
    if (truncated && !page.blobs.empty()) page.next_after = page.blobs.back().name;
    return page;
  }
}

absl::StatusOr<std::vector<S3IncompleteUpload>> S3BlobStore::ListIncompleteUploads() {
  std::vector<S3IncompleteUpload> out;
  std::string key_marker, id_marker;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> params = {{"uploads", ""},
                                                               {"encoding-type", "url"}};
    if (!key_marker.empty()) params.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) params.emplace_back("upload-id-marker", id_marker);
    STRATA_ASSIGN_OR_RETURN(HttpResponse r,
                            impl_->Do("GET", impl_->bucket_path, CanonicalQuery(params)));
    if (r.status != 200) return impl_->ErrorOf(r, "ListMultipartUploads", "");
    pugi::xml_document doc;
    if (!doc.load_buffer(r.body.data(), r.body.size())) {
      return absl::InternalError("S3 ListMultipartUploads: unparsable answer");
    }
    pugi::xml_node root = doc.child("ListMultipartUploadsResult");
    for (pugi::xml_node u : root.children("Upload")) {
      out.push_back(S3IncompleteUpload{UriDecode(u.child("Key").text().as_string()),
                                       u.child("UploadId").text().as_string(),
                                       ParseIsoTime(u.child("Initiated").text().as_string())});
    }
    if (std::string_view(root.child("IsTruncated").text().as_string()) != "true") return out;
    key_marker = UriDecode(root.child("NextKeyMarker").text().as_string());
    id_marker = root.child("NextUploadIdMarker").text().as_string();
    if (key_marker.empty() && id_marker.empty()) return out;
  }
}

absl::StatusOr<size_t> S3BlobStore::AbortIncompleteUploads(Millis initiated_before) {
  STRATA_ASSIGN_OR_RETURN(std::vector<S3IncompleteUpload> uploads, ListIncompleteUploads());
  size_t aborted = 0;
  for (const S3IncompleteUpload& u : uploads) {
    if (u.initiated >= initiated_before) continue;
    STRATA_RETURN_IF_ERROR(impl_->AbortUpload(u.name, u.upload_id));
    ++aborted;
  }
  return aborted;
}

absl::Status S3BlobStore::DropBucket() {
  for (;;) {
    STRATA_ASSIGN_OR_RETURN(
        HttpResponse r,
        impl_->Do(
            "GET", impl_->bucket_path,
            CanonicalQuery({{"versions", ""}, {"encoding-type", "url"}, {"max-keys", "1000"}})));
    if (r.status == 404) return absl::OkStatus();
    if (r.status != 200) return impl_->ErrorOf(r, "ListObjectVersions", "");
    pugi::xml_document doc;
    if (!doc.load_buffer(r.body.data(), r.body.size())) {
      return absl::InternalError("S3 ListObjectVersions: unparsable answer");
    }
    std::vector<std::pair<std::string, std::string>> batch;
    std::vector<std::pair<std::string, std::string>> unsafe;
    for (pugi::xml_node n : doc.child("ListVersionsResult").children()) {
      std::string_view kind = n.name();
      if (kind != "Version" && kind != "DeleteMarker") continue;
      std::pair<std::string, std::string> key{UriDecode(n.child("Key").text().as_string()),
                                              n.child("VersionId").text().as_string()};
      (XmlSafe(key.first) ? batch : unsafe).push_back(std::move(key));
    }
    if (batch.empty() && unsafe.empty()) break;
    if (!batch.empty()) STRATA_RETURN_IF_ERROR(impl_->DeleteObjectsBatchAll(batch));
    for (const auto& [key, version] : unsafe) {
      std::string query = version.empty() ? "" : CanonicalQuery({{"versionId", version}});
      STRATA_ASSIGN_OR_RETURN(HttpResponse d, impl_->Do("DELETE", impl_->KeyPath(key), query));
      if (d.status != 204 && d.status != 200 && d.status != 404) {
        return impl_->ErrorOf(d, "DELETE version", key);
      }
    }
  }
  STRATA_ASSIGN_OR_RETURN(size_t aborted, AbortIncompleteUploads(INT64_MAX));
  (void)aborted;
  STRATA_ASSIGN_OR_RETURN(HttpResponse r, impl_->Do("DELETE", impl_->bucket_path));
  if (r.status == 204 || r.status == 200 || r.status == 404) return absl::OkStatus();
  return impl_->ErrorOf(r, "DeleteBucket", "");
}

}  // namespace strata::blob
