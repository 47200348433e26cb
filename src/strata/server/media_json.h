// JSON <-> media buckets and objects for the HTTP API (docs/api.md, docs/media.md), and the
// HTTP details of objects: Range headers and metadata headers. Thread-safe (each call uses its
// own parser). Every error is InvalidArgument naming the field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "strata/media/media_service.h"

namespace strata::server {

class JsonWriter;

// Body of PUT /v1/buckets/{bucket}: {"ttl": "30d"|null, "grace": "7d", "storage_class": "hot"}.
// Missing fields take the defaults of media::BucketPolicy; unknown fields are an error.
absl::StatusOr<media::BucketPolicy> ParseBucketPolicy(std::string_view body);

void AppendBucketJson(const media::Bucket& bucket, JsonWriter* w);
void AppendObjectJson(const media::ObjectInfo& info, JsonWriter* w);
// Whether a stored object of this Content-Type would be active content in a browser (HTML,
// SVG, XML, scripts, PDF): such objects are served with `Content-Disposition: attachment`.
bool IsActiveContentType(std::string_view content_type);

// A byte range of an object, resolved against its size: [first, first + length).
struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};

// Parses a Range header ("bytes=0-99", "bytes=100-", "bytes=-50") against `size`.
// InvalidArgument ("range: ...") for malformed or multiple ranges; OutOfRange when the
// range cannot be satisfied (the API answers 416).
absl::StatusOr<ByteRange> ParseRange(std::string_view header, uint64_t size);

// Percent-decodes a path segment ('+' stays '+'). InvalidArgument naming `field` for a bad
// escape.
absl::StatusOr<std::string> DecodePathSegment(std::string_view s, std::string_view field);

}  // namespace strata::server
