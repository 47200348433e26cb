// ASCII case helpers for HTTP field names (RFC 9110: case-insensitive), shared by the
// server, the client and the request accessors. Pure, thread-safe.
#pragma once

#include <string_view>

namespace strata::http::internal {

inline char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

}  // namespace strata::http::internal
