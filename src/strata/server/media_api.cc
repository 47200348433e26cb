// The media routes of the HTTP API (docs/api.md): buckets, objects (streamed PUT, ranged GET,
// HEAD, soft DELETE, :restore), listing and metadata search.
#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "strata/base/log.h"
#include "strata/media/checksums.h"
#include "strata/media/validation.h"
#include "strata/server/api.h"
#include "strata/server/json_writer.h"
#include "strata/server/media_json.h"

namespace strata::server {
namespace {

constexpr char kObjectRoute[] = "/v1/buckets/{bucket}/objects/{key}";
constexpr std::string_view kMetaHeader = "x-strata-meta-";
constexpr std::string_view kRestoreSuffix = ":restore";
// Objects up to this size are read into the reply at once; larger ones stream out in
// pieces of this size, so a GET never holds more than one piece of a large object.
constexpr size_t kStreamPieceBytes = 256 << 10;

// The object key of a path "/v1/buckets/{bucket}/objects/{key...}": everything after the
// fourth '/', percent-decoded ('/' inside the key is literal).
struct ObjectPath {
  std::string bucket;
  std::string key;
};
std::optional<absl::StatusOr<ObjectPath>> SplitObjectPath(std::string_view path) {
  constexpr std::string_view kPrefix = "/v1/buckets/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view rest = path.substr(kPrefix.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view bucket = rest.substr(0, slash);
  rest.remove_prefix(slash + 1);
  constexpr std::string_view kObjects = "objects/";
  if (rest.substr(0, kObjects.size()) != kObjects || rest.size() == kObjects.size()) {
    return std::nullopt;
  }
  rest.remove_prefix(kObjects.size());
  absl::StatusOr<std::string> b = DecodePathSegment(bucket, "bucket");
  if (!b.ok()) return absl::StatusOr<ObjectPath>(b.status());
  absl::StatusOr<std::string> k = DecodePathSegment(rest, "key");
  if (!k.ok()) return absl::StatusOr<ObjectPath>(k.status());
  return absl::StatusOr<ObjectPath>(ObjectPath{std::move(*b), std::move(*k)});
}

absl::StatusOr<media::PutObjectOptions> OptionsFromHeaders(const http::Request& r) {
  media::PutObjectOptions o;
  if (std::string_view ct = r.Header("content-type"); !ct.empty()) o.content_type = ct;
  for (const auto& [name, value] : r.headers) {
    if (name.size() > kMetaHeader.size() && name.compare(0, kMetaHeader.size(), kMetaHeader) == 0) {
      o.meta.emplace_back(name.substr(kMetaHeader.size()), value);
    }
  }
  if (std::string_view ttl = r.Header("x-strata-ttl"); !ttl.empty()) {
    absl::StatusOr<Millis> ms = media::ParseDuration(ttl, "x-strata-ttl");
    if (!ms.ok()) return ms.status();
    o.ttl_ms = *ms;
  }
  o.wrapped_key = std::string(r.Header("x-strata-wrapped-key"));
  return o;
}

http::Response ObjectResponse(const media::ObjectInfo& info) {
  JsonWriter w;
  AppendObjectJson(info, &w);
  return Json(200, w.Take());
}

}  // namespace

bool IsActiveContentType(std::string_view content_type) {
  // The media type without parameters, trimmed and lower-cased.
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  std::string lower(t);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static constexpr std::string_view kActive[] = {
      "text/html",       "application/xhtml+xml",  "image/svg+xml",         "text/xml",
      "application/xml", "text/javascript",        "application/javascript", "text/ecmascript",
      "application/ecmascript", "text/xsl",        "application/pdf"};
  for (std::string_view a : kActive) {
    if (lower == a) return true;
  }
  return false;
}

namespace {

// Object metadata as reply headers (GET and HEAD).
void AddObjectHeaders(const media::ObjectRow& row, http::Response* r) {
  r->content_type = row.content_type;
  auto& h = r->headers;
  // A stored page or script served on the API's (and dashboard's) origin would run there
  // with its rights: active types are downloads, never rendered.
  if (IsActiveContentType(row.content_type)) h.emplace_back("Content-Disposition", "attachment");
  h.emplace_back("Accept-Ranges", "bytes");
  h.emplace_back("ETag", "\"" + media::Hex(row.md5) + "\"");
  h.emplace_back("x-strata-sha1", media::Hex(row.sha1));
  h.emplace_back("x-strata-md5", media::Hex(row.md5));
  h.emplace_back("x-strata-xxh3", media::Hex64(row.xxh3));
  h.emplace_back("x-strata-generation", std::to_string(row.generation));
  h.emplace_back("x-strata-created-at", std::to_string(row.created_at));
  h.emplace_back("x-strata-storage-class", row.storage_class);
  for (const auto& [k, v] : row.meta) h.emplace_back(std::string(kMetaHeader) + k, v);
}

}  // namespace

// Streams one object PUT into the media service; records the request's metrics at the end.
class Api::ObjectSink final : public http::BodySink {
 public:
  // `api` == nullptr: the caller records the request's metrics itself. `start`: when the
  // request's head was read, before BeginPut (its row read, blob-name check and upload row
  // are part of the PUT the client waits for, and of what the GC throttle must see).
  ObjectSink(Api* api, std::unique_ptr<media::Upload> upload,
             std::chrono::steady_clock::time_point start)
      : api_(api), upload_(std::move(upload)), start_(start) {}

  ~ObjectSink() override {
    if (!finished_) Done(499);  // abandoned: client gone or over the size limit
  }

  std::optional<http::Response> Append(std::string_view piece) override {
    absl::Status s = upload_->Append(piece);
    if (s.ok()) return std::nullopt;
    http::Response r = ErrorResponse(s);
    Done(r.status);
    return r;
  }

  http::Response Finish() override {
    absl::StatusOr<media::ObjectInfo> info = upload_->Commit();
    http::Response r = info.ok() ? ObjectResponse(*info) : ErrorResponse(info.status());
    Done(r.status);
    return r;
  }

 private:
  void Done(int status) {
    if (finished_) return;
    finished_ = true;
    if (api_ == nullptr) return;
    api_->Record(kObjectRoute, "PUT", status,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

  Api* api_;
  std::unique_ptr<media::Upload> upload_;
  std::chrono::steady_clock::time_point start_;
  bool finished_ = false;
};

http::StreamStart Api::OpenObjectStream(const http::Request& head) {
  // A streamed PUT never reaches Handle: the same Host/Origin and key checks run here, before
  // a byte of the body is read.
  std::optional<http::Response> refused = CheckOrigin(head);
  if (!refused) {
    auth::Principal who;
    refused = Authorize(head, ClassifyRequest(head.method, head.path), &who);
  }
  if (refused) {
    Record("unmatched", head.method, refused->status, 0);
    http::StreamStart start;
    start.response = std::move(refused);
    return start;
  }
  return StartObjectUpload(head, /*record_metrics=*/true);
}

http::StreamStart Api::StartObjectUpload(const http::Request& head, bool record_metrics) {
  const auto began = std::chrono::steady_clock::now();
  http::StreamStart start;
  auto path = SplitObjectPath(head.path);
  if (!path || media_ == nullptr) return start;  // not an object: the whole-body path
  auto fail = [&](const absl::Status& s) {
    start.response = ErrorResponse(s);
    if (record_metrics) {
      Record(kObjectRoute, "PUT", start.response->status,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
    }
    return std::move(start);
  };
  if (!path->ok()) return fail(path->status());
  absl::StatusOr<media::PutObjectOptions> options = OptionsFromHeaders(head);
  if (!options.ok()) return fail(options.status());
  auto upload = media_->BeginPut((*path)->bucket, (*path)->key, std::move(*options));
  if (!upload.ok()) return fail(upload.status());
  start.sink =
      std::make_unique<ObjectSink>(record_metrics ? this : nullptr, std::move(*upload), began);
  return start;
}

// A PUT that reached Handle with its whole body (not through the streaming route, e.g. from
// tests): the same upload, fed in one piece; Handle records the metrics.
http::Response Api::PutObjectWhole(const http::Request& request) {
  http::StreamStart start = StartObjectUpload(request, /*record_metrics=*/false);
  if (start.response) return std::move(*start.response);
  if (!start.sink) return ErrorResponse(absl::NotFoundError("path: no route"));
  if (auto stop = start.sink->Append(request.body)) return std::move(*stop);
  return start.sink->Finish();
}

http::Response Api::RouteMedia(const http::Request& request,
                               const std::vector<std::string_view>& parts, std::string* route) {
  const std::string& method = request.method;
  auto method_not_allowed = [&method] { return MethodNotAllowed(method); };
  if (media_ == nullptr) {
    return Json(404, ErrorBody("not_found", "path: media objects are not enabled"));
  }
  if (parts.size() == 3) {
    *route = "/v1/buckets/{bucket}";
    absl::StatusOr<std::string> bucket = DecodePathSegment(parts[2], "bucket");
    if (!bucket.ok()) return ErrorResponse(bucket.status());
    if (method == "PUT") return PutBucket(*bucket, request);
    if (method == "GET") return GetBucket(*bucket);
    return method_not_allowed();
  }
  if (parts.size() == 4 && parts[3] == "objects") {
    *route = "/v1/buckets/{bucket}/objects";
    if (method != "GET") return method_not_allowed();
    absl::StatusOr<std::string> bucket = DecodePathSegment(parts[2], "bucket");
    if (!bucket.ok()) return ErrorResponse(bucket.status());
    return ListObjects(*bucket, request);
  }
  auto path = SplitObjectPath(request.path);
  if (!path) return Json(404, ErrorBody("not_found", "path: no route for " + request.path));
  *route = kObjectRoute;
  if (!path->ok()) return ErrorResponse(path->status());
  const std::string& bucket = (*path)->bucket;
  std::string key = (*path)->key;
  if (method == "POST") {
    if (key.size() <= kRestoreSuffix.size() ||
        key.compare(key.size() - kRestoreSuffix.size(), kRestoreSuffix.size(), kRestoreSuffix) !=
            0) {
      return method_not_allowed();
    }
    *route = "/v1/buckets/{bucket}/objects/{key}:restore";
    key.resize(key.size() - kRestoreSuffix.size());
    return RestoreObject(bucket, key);
  }
  if (method == "GET") return GetObject(bucket, key, request, /*head=*/false);
  if (method == "HEAD") return GetObject(bucket, key, request, /*head=*/true);
  if (method == "DELETE") return DeleteObject(bucket, key);
  if (method == "PUT") return PutObjectWhole(request);
  return method_not_allowed();
}

http::Response Api::PutBucket(std::string_view bucket, const http::Request& request) {
  absl::StatusOr<media::BucketPolicy> policy = ParseBucketPolicy(request.body);
  if (!policy.ok()) return ErrorResponse(policy.status());
  absl::StatusOr<media::Bucket> b = media_->PutBucket(bucket, *policy);
  if (!b.ok()) return ErrorResponse(b.status());
  JsonWriter w;
  AppendBucketJson(*b, &w);
  return Json(200, w.Take());
}

http::Response Api::GetBucket(std::string_view bucket) {
  absl::StatusOr<media::Bucket> b = media_->GetBucket(bucket);
  if (!b.ok()) return ErrorResponse(b.status());
  JsonWriter w;
  AppendBucketJson(*b, &w);
  return Json(200, w.Take());
}

http::Response Api::ListObjects(std::string_view bucket, const http::Request& request) {
  media::ListQuery q;
  // Keys are UTF-8 (ValidateObjectKey), so a prefix or start key that is not cannot match:
  // say so instead of answering an empty page.
  if (auto v = http::QueryParam(request.query, "prefix")) q.prefix = *v;
  if (auto v = http::QueryParam(request.query, "after")) q.after = *v;
  if (!media::IsValidUtf8(q.prefix)) {
    return ErrorResponse(absl::InvalidArgumentError("prefix: must be valid UTF-8"));
  }
  if (!media::IsValidUtf8(q.after)) {
    return ErrorResponse(absl::InvalidArgumentError("after: must be valid UTF-8"));
  }
  if (auto v = http::QueryParam(request.query, "deleted")) {
    if (*v != "true" && *v != "false") {
      return ErrorResponse(absl::InvalidArgumentError("deleted: must be true or false"));
    }
    q.deleted = *v == "true";
  }
  if (auto v = http::QueryParam(request.query, "limit")) {
    // Digits only: strtoull took " 10", "+10" and "-0" too.
    uint64_t n = 0;
    if (!ParseUint(*v, &n) || n < 1 || n > 1000) {
      return ErrorResponse(absl::InvalidArgumentError("limit: must be between 1 and 1000"));
    }
    q.limit = n;
  }
  // A search filter: one `meta.<key>=<value>` parameter.
  std::optional<std::pair<std::string, std::string>> filter;
  for (size_t pos = 0; pos <= request.query.size();) {
    size_t amp = request.query.find('&', pos);
    if (amp == std::string::npos) amp = request.query.size();
    std::string_view param(request.query.data() + pos, amp - pos);
    pos = amp + 1;
    if (param.substr(0, 5) != "meta.") continue;
    size_t eq = param.find('=');
    std::string name = http::UrlDecode(
        param.substr(5, eq == std::string_view::npos ? std::string_view::npos : eq - 5));
    std::string value = eq == std::string_view::npos ? "" : http::UrlDecode(param.substr(eq + 1));
    if (filter) {
      return ErrorResponse(
          absl::InvalidArgumentError("meta: only one meta.<key>=<value> filter per request"));
    }
    filter.emplace(std::move(name), std::move(value));
  }
  // A page may scan far more rows than it lists (deleted objects, a search's misses): on the
  // bulk pool, not on an io thread.
  auto page_response = [this, bucket = std::string(bucket), q, filter]() -> http::Response {
    absl::StatusOr<media::ObjectPage> page =
        filter ? media_->Search(bucket, filter->first, filter->second, q) : media_->List(bucket, q);
    if (!page.ok()) return ErrorResponse(page.status());
    JsonWriter w;
    w.BeginObject().Key("objects").BeginArray();
    for (const media::ObjectInfo& o : page->objects) AppendObjectJson(o, &w);
    w.EndArray().Key("next_after");
    if (page->next_after.empty()) {
      w.Null();
    } else {
      w.String(page->next_after);
    }
    w.EndObject();
    return Json(200, w.Take());
  };
  return DeferToPool(bulk_pool_.get(), kMaxQueuedBulkReads, std::move(page_response),
                     io_waits_.get(), "objects");
}

http::Response Api::GetObject(std::string_view bucket, const std::string& key,
                              const http::Request& request, bool head) {
  absl::StatusOr<media::OpenedObject> opened = media_->OpenForRead(bucket, key);
  if (!opened.ok()) return ErrorResponse(opened.status());
  const media::ObjectRow& row = opened->info.row;
  const uint64_t size = opened->reader->size();
  http::Response r;
  ByteRange range{0, size};
  if (std::string_view h = request.Header("range"); !h.empty()) {
    absl::StatusOr<ByteRange> parsed = ParseRange(h, size);
    if (absl::IsOutOfRange(parsed.status())) {
      r = Json(416, ErrorBody("range_not_satisfiable", std::string(parsed.status().message())));
      r.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
      return r;
    }
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    range = *parsed;
    r.status = 206;
    r.headers.emplace_back(
        "Content-Range",
        absl::StrCat("bytes ", range.first, "-", range.first + range.length - 1, "/", size));
  }
  AddObjectHeaders(row, &r);
  if (head) {
    r.headers.emplace_back("Content-Length", std::to_string(range.length));
    return r;
  }
  // A read of the whole object is checked against the stored XXH3 (a range cannot be: the
  // checksum covers the whole object; the background scrub covers what ranges skip).
  const bool whole = range.first == 0 && range.length == size;
  if (range.length <= kStreamPieceBytes) {
    absl::Status s = opened->reader->ReadAt(range.first, range.length, &r.body);
    if (!s.ok()) return ErrorResponse(s);
    if (whole) {
      media::Xxh3Stream xxh3;
      xxh3.Update(r.body);
      if (xxh3.Digest() != row.xxh3) {
        return ErrorResponse(media_->ChecksumMismatch(bucket, key, row, xxh3.Digest()));
      }
    }
    media_->RecordBytesOut(r.body.size());
    return r;
  }
  // Large: stream it out piece by piece, from the reader opened above (so a concurrent
  // rewrite or delete does not change the bytes mid-reply). The status line is sent
  // before the bytes are read, so a mismatch found at the end cannot become a 500: the
  // last piece is withheld and the connection aborted, and the client sees a short body
  // (an error for any HTTP client), never a complete reply with bad bytes.
  r.stream_length = range.length;
  auto reader = std::shared_ptr<blob::BlobReader>(std::move(opened->reader));
  auto xxh3 = whole ? std::make_shared<media::Xxh3Stream>() : nullptr;
  uint64_t next = range.first;
  uint64_t remaining = range.length;
  media::MediaService* media = media_;
  r.stream = [reader, xxh3, next, remaining, media, bucket = std::string(bucket), key,
              row](std::string* out) mutable -> absl::Status {
    size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, kStreamPieceBytes));
    const size_t before = out->size();
    if (absl::Status s = reader->ReadAt(next, n, out); !s.ok()) return s;
    next += n;
    remaining -= n;
    if (xxh3 != nullptr) {
      xxh3->Update(std::string_view(*out).substr(before));
      if (remaining == 0 && xxh3->Digest() != row.xxh3) {
        return media->ChecksumMismatch(bucket, key, row, xxh3->Digest());
      }
    }
    media->RecordBytesOut(n);
    return absl::OkStatus();
  };
  return r;
}

http::Response Api::DeleteObject(std::string_view bucket, const std::string& key) {
  absl::StatusOr<media::ObjectInfo> info = media_->Delete(bucket, key);
  if (!info.ok()) return ErrorResponse(info.status());
  JsonWriter w;
  w.BeginObject();
  w.Key("bucket").String(info->bucket).Key("key").String(info->key);
  w.Key("deleted_at").Int(info->row.deleted_at);
  w.Key("restorable_until").Int(info->row.deleted_at + info->row.grace_ms);
  w.EndObject();
  return Json(200, w.Take());
}

http::Response Api::RestoreObject(std::string_view bucket, const std::string& key) {
  absl::StatusOr<media::ObjectInfo> info = media_->Restore(bucket, key);
  if (!info.ok()) return ErrorResponse(info.status());
  return ObjectResponse(*info);
}

}  // namespace strata::server
