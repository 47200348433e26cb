// Order-preserving byte encodings of indexed JSON values (docs/assets.md, "Index keys").
// For two scalars a, b of the same JSON kind, Encode(a) < Encode(b) bytewise exactly when
// a < b (numbers by value, strings bytewise by UTF-8), and no encoding is a proper prefix of
// another, so an asset id can follow it in a clustering key.
//
//   null     0x05
//   false    0x10      true 0x11
//   number   0x20 + 8 bytes: the IEEE-754 double, sign bit flipped for >= 0, all bits
//            flipped for < 0 (-0 is encoded as +0). Integers beyond 2^53 lose precision:
//            reads re-check the payload, so they may only cost extra candidates.
//   string   0x30 + the bytes with 0x00 escaped as 0x00 0xFF, then 0x00 0x01. Strings
//            longer than kMaxIndexedStringBytes are indexed by that prefix (re-checked too).
// Objects and arrays are not indexed.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "strata/assets/json.h"

namespace strata::assets {

inline constexpr size_t kMaxIndexedStringBytes = 512;
inline constexpr char kIndexTagNull = 0x05;
inline constexpr char kIndexTagFalse = 0x10;
inline constexpr char kIndexTagTrue = 0x11;
inline constexpr char kIndexTagNumber = 0x20;
inline constexpr char kIndexTagString = 0x30;

// The encoding of a scalar, or nullopt for objects and arrays.
std::optional<std::string> EncodeIndexValue(const JsonValue& value);
void AppendIndexNumber(std::string* out, double d);
// The string tag and escaped bytes of (the indexed prefix of) `s`, without the terminator:
// every encoded string starting with `s` starts with this.
void AppendIndexStringPrefix(std::string* out, std::string_view s);
// Decodes one encoded value from the front of `*in` (consuming it). For tests and fuzzing.
std::optional<JsonValue> DecodeIndexValue(std::string_view* in);
// The smallest string greater than every string that starts with `prefix` ("" when there is
// none: `prefix` is all 0xFF).
std::string PrefixSuccessor(std::string_view prefix);

}  // namespace strata::assets
