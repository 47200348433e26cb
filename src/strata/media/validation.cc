#include "strata/media/validation.h"

#include <charconv>

#include "strata/base/utf8.h"

namespace strata::media {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

absl::Status ValidateBucketName(std::string_view b) {
  auto bad = [] {
    return absl::InvalidArgumentError(
        "bucket: must be 3..63 characters of a-z, 0-9, '.' and '-', starting and ending with "
        "a letter or digit, without \"..\"");
  };
  if (b.size() < 3 || b.size() > 63) return bad();
  if (!IsLowerAlnum(b.front()) || !IsLowerAlnum(b.back())) return bad();
  for (char c : b) {
    if (!IsLowerAlnum(c) && c != '.' && c != '-') return bad();
  }
  if (b.find("..") != std::string_view::npos) return bad();
  return absl::OkStatus();
}

bool IsValidUtf8(std::string_view s) { return strata::IsValidUtf8(s); }

absl::Status ValidateObjectKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError("key: must be 1..1024 bytes");
  }
  if (!IsValidUtf8(key)) {
    // Listings, exports and the S3-style XML carry keys as text: a key that is not UTF-8
    // would break every one of them.
    return absl::InvalidArgumentError("key: must be valid UTF-8");
  }
  for (char ch : key) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      return absl::InvalidArgumentError("key: must not contain control characters or '\\'");
    }
  }
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view seg = key.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return absl::InvalidArgumentError(
          "key: '/'-separated segments must not be empty, \".\" or \"..\"");
    }
    if (seg.size() > kMaxKeySegmentBytes) {
      return absl::InvalidArgumentError("key: a '/'-separated segment is longer than 200 bytes");
    }
    start = end + 1;
  }
  return absl::OkStatus();
}

absl::Status ValidateStorageClass(std::string_view sc) {
  bool ok = !sc.empty() && sc.size() <= 32;
  for (char c : sc) ok = ok && (IsLowerAlnum(c) || c == '_' || c == '-');
  if (!ok) {
    return absl::InvalidArgumentError("storage_class: must be 1..32 characters of [a-z0-9_-]");
  }
  return absl::OkStatus();
}

absl::Status ValidateMetaKey(std::string_view k) {
  bool ok = !k.empty() && k.size() <= kMaxMetaKeyBytes;
  for (char c : k) ok = ok && (IsLowerAlnum(c) || c == '_' || c == '-');
  if (!ok) {
    return absl::InvalidArgumentError("meta: keys must be 1..64 characters of [a-z0-9_-], got '" +
                                      std::string(k.substr(0, 80)) + "'");
  }
  return absl::OkStatus();
}

absl::Status ValidateMetaValue(std::string_view k, std::string_view v) {
  bool ok = v.size() <= kMaxMetaValueBytes;
  for (char c : v) ok = ok && c >= 0x20 && c <= 0x7e;
  if (!ok) {
    return absl::InvalidArgumentError("meta." + std::string(k) +
                                      ": must be 0..256 bytes of printable ASCII");
  }
  return absl::OkStatus();
}

absl::StatusOr<Millis> ParseDuration(std::string_view text, std::string_view field) {
  auto bad = [&] {
    return absl::InvalidArgumentError(std::string(field) +
                                      ": must be a duration like \"30d\", \"12h\", \"90m\" or "
                                      "\"3600s\" (at most 100 years)");
  };
  if (text == "0") return Millis{0};
  if (text.size() < 2) return bad();
  Millis unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1000;
      break;
    case 'm':
      unit = 60'000;
      break;
    case 'h':
      unit = 3'600'000;
      break;
    case 'd':
      unit = 86'400'000;
      break;
    default:
      return bad();
  }
  std::string_view digits = text.substr(0, text.size() - 1);
  uint64_t n = 0;
  if (digits.size() > 12 || digits.front() == '+' || digits.front() == '-') return bad();
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return bad();
  constexpr Millis kMax = 100LL * 365 * 86'400'000;
  if (n > static_cast<uint64_t>(kMax / unit)) return bad();
  return static_cast<Millis>(n) * unit;
}

std::string FormatDuration(Millis ms) {
  if (ms == 0) return "0";
  if (ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace strata::media
