// UTF-8 well-formedness (RFC 3629), for text that leaves the server as JSON: object keys are
// checked with it, and the JSON writers replace what is not UTF-8 so a reply that echoes a
// client's bytes (a path, a header, a query parameter) stays valid JSON. Pure, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace strata {

// The length (1..4) of the well-formed UTF-8 sequence that starts at s[i], or 0 when the bytes
// there are not one: a stray continuation byte, 0xF8..0xFF, a sequence cut short, an overlong
// form, a UTF-16 surrogate (U+D800..U+DFFF) or a code point past U+10FFFF. Requires i < s.size().
inline size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 1, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 2, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 3, cp = c & 0x07;
  } else {
    return 0;
  }
  if (n >= s.size() - i) return 0;  // cut short
  for (size_t k = 1; k <= n; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  return n + 1;
}

// Whether all of `s` is well-formed UTF-8.
inline bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// The replacement for a byte that is not part of well-formed UTF-8 (U+FFFD, as UTF-8).
inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";

}  // namespace strata
