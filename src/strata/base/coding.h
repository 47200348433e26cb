// Byte encodings shared by the store and the on-disk formats (see docs/formats.md):
// fixed-width big-endian integers (which sort like the numbers), LEB128 varints and zigzag.
// All functions are pure and thread-safe. Decoders never read past the given input: they
// return false on truncated or overlong input.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::coding {

inline void PutFixed64BE(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, 8);
}

inline void PutFixed32BE(std::string* out, uint32_t v) {
  char buf[4];
  for (int i = 3; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, 4);
}

// Reads 8 bytes from the front of *in and advances it.
inline bool GetFixed64BE(std::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) r = (r << 8) | static_cast<uint8_t>((*in)[i]);
  in->remove_prefix(8);
  *v = r;
  return true;
}

inline bool GetFixed32BE(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r = (r << 8) | static_cast<uint8_t>((*in)[i]);
  in->remove_prefix(4);
  *v = r;
  return true;
}

// Signed 64-bit values in an order-preserving big-endian form (sign bit flipped).
inline void PutOrderedInt64(std::string* out, int64_t v) {
  PutFixed64BE(out, static_cast<uint64_t>(v) ^ (uint64_t{1} << 63));
}
inline bool GetOrderedInt64(std::string_view* in, int64_t* v) {
  uint64_t u;
  if (!GetFixed64BE(in, &u)) return false;
  *v = static_cast<int64_t>(u ^ (uint64_t{1} << 63));
  return true;
}

// LEB128: 7 bits a byte, least significant group first, the high bit set on every byte but
// the last; 1 to 10 bytes. Built in a local buffer and appended once (the columnar history
// codec writes millions of these: one append is cheaper than a push_back per byte).
inline void PutVarint64(std::string* out, uint64_t v) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

// The bytes PutVarint64 writes for v (1 to 10), without writing them.
inline size_t VarintLength64(uint64_t v) { return (std::bit_width(v | 1) + 6) / 7; }

inline bool GetVarint64(std::string_view* in, uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0, i = 0; shift <= 63 && i < static_cast<int>(in->size()); shift += 7, ++i) {
    uint8_t b = static_cast<uint8_t>((*in)[i]);
    if (shift == 63 && b > 1) return false;  // would overflow 64 bits
    r |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      in->remove_prefix(i + 1);
      *v = r;
      return true;
    }
  }
  return false;
}

inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
// A signed value as a zigzag varint (small magnitudes of either sign take few bytes).
inline void PutZigZag64(std::string* out, int64_t v) { PutVarint64(out, ZigZag(v)); }
inline bool GetZigZag64(std::string_view* in, int64_t* v) {
  uint64_t u = 0;
  if (!GetVarint64(in, &u)) return false;
  *v = UnZigZag(u);
  return true;
}

inline void PutLengthPrefixed(std::string* out, std::string_view s) {
  PutVarint64(out, s.size());
  out->append(s);
}
inline bool GetLengthPrefixed(std::string_view* in, std::string_view* s) {
  uint64_t n;
  if (!GetVarint64(in, &n) || n > in->size()) return false;
  *s = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}
inline bool GetLengthPrefixed(std::string_view* in, std::string* s) {
  std::string_view v;
  if (!GetLengthPrefixed(in, &v)) return false;
  s->assign(v);
  return true;
}

}  // namespace strata::coding
