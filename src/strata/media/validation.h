// Input rules of the media API: bucket names, object keys, durations, storage classes and
// user metadata. Every error is InvalidArgument with a message that names the field.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "strata/base/clock.h"

namespace strata::media {

inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr size_t kMaxKeySegmentBytes = 200;
inline constexpr size_t kMaxMetaEntries = 32;
inline constexpr size_t kMaxMetaKeyBytes = 64;
inline constexpr size_t kMaxMetaValueBytes = 256;
inline constexpr size_t kMaxContentTypeBytes = 256;
inline constexpr size_t kMaxWrappedKeyBytes = 4096;

// 3..63 characters of [a-z0-9.-], starting and ending with a letter or digit, no "..".
absl::Status ValidateBucketName(std::string_view bucket);
// 1..1024 bytes of UTF-8; no control bytes (< 0x20, 0x7f) and no '\\'; '/'-separated segments of
// 1..200 bytes that are not "." or "..".
absl::Status ValidateObjectKey(std::string_view key);
// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points
// past U+10FFFF).
bool IsValidUtf8(std::string_view s);
// 1..32 characters of [a-z0-9_-].
absl::Status ValidateStorageClass(std::string_view storage_class);
// Metadata keys: 1..64 characters of [a-z0-9_-] (HTTP header names arrive lower-cased);
// values: 0..256 bytes of printable ASCII (0x20..0x7e).
absl::Status ValidateMetaKey(std::string_view key);
absl::Status ValidateMetaValue(std::string_view key, std::string_view value);

// "30d", "12h", "90m", "3600s" (a positive integer and one unit; "0" alone is zero) into
// milliseconds. `field` names the input in errors. At most 100 years.
absl::StatusOr<Millis> ParseDuration(std::string_view text, std::string_view field);
// The inverse for display: the largest unit that divides exactly ("30d", "36h", "0").
std::string FormatDuration(Millis ms);

}  // namespace strata::media
