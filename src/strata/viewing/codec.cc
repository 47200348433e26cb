// Encodings of viewing records; the byte layouts are specified in docs/formats.md.
//
// Arithmetic on times and durations that the formats store as differences is done modulo 2^64
// (through uint64_t), so every int64 value round-trips and no input can cause signed overflow.
#include "strata/viewing/codec.h"

#include <zstd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <charconv>
#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "strata/base/coding.h"
#include "strata/base/status.h"

namespace strata::viewing {
namespace {

using coding::PutVarint64;
using coding::UnZigZag;
using coding::VarintLength64;
using coding::ZigZag;

// ---------------------------------------------------------------------------------------------
// Shared helpers.

inline int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
inline int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

inline void PutByte(std::string* out, uint8_t b) { out->push_back(static_cast<char>(b)); }

// Error messages. (Debian's Abseil has its own string_view, which absl::StrCat insists on.)
inline void AppendPiece(std::string* s, std::string_view v) { s->append(v); }
inline void AppendPiece(std::string* s, const char* v) { s->append(v); }
template <std::integral T>
void AppendPiece(std::string* s, T v) {
  s->append(std::to_string(v));
}
template <typename... Args>
std::string Cat(const Args&... args) {
  std::string s;
  (AppendPiece(&s, args), ...);
  return s;
}

// Decimal sessions that the history payload stores as numbers: canonical (no sign, no leading
// zero except "0" itself) and at most UINT64_MAX - 1, so that value + 1 fits in a tag.
bool ParseNumericSession(std::string_view s, uint64_t* value) {
  if (s.empty() || s.size() > 20 || (s[0] == '0' && s.size() > 1)) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(v, uint64_t{10}, &v) ||
        __builtin_add_overflow(v, static_cast<uint64_t>(c - '0'), &v)) {
      return false;
    }
  }
  if (v == std::numeric_limits<uint64_t>::max()) return false;
  *value = v;
  return true;
}

// Formats v into buf (at least 20 bytes) and returns the digits.
std::string_view FormatDecimal(uint64_t v, char* buf) {
  const char* end = std::to_chars(buf, buf + 20, v).ptr;
  return std::string_view(buf, static_cast<size_t>(end - buf));
}

// A bounds-checked cursor over untrusted bytes. Every getter returns false, leaving the
// output unspecified, when the input is truncated or malformed.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Varint(uint64_t* v) { return coding::GetVarint64(&in_, v); }
  bool Byte(uint8_t* b) {
    if (in_.empty()) return false;
    *b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  // A length-prefixed string of at most max_len bytes.
  bool String(size_t max_len, std::string_view* s) {
    uint64_t n;
    if (!Varint(&n) || n > max_len || n > in_.size()) return false;
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool Bytes(size_t n, std::string_view* s) {
    if (n > in_.size()) return false;
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

// ---------------------------------------------------------------------------------------------
// Live value.

constexpr size_t kLiveStringCount = 5;

std::array<const std::string*, kLiveStringCount> ShortStrings(const ViewingRecord& r) {
  return {&r.device, &r.country, &r.content_lang, &r.audio_lang, &r.subtitle_lang};
}
std::array<std::string*, kLiveStringCount> ShortStrings(ViewingRecord* r) {
  return {&r->device, &r->country, &r->content_lang, &r->audio_lang, &r->subtitle_lang};
}
constexpr std::array<std::string_view, kLiveStringCount> kShortStringNames = {
    "device", "country", "content_lang", "audio_lang", "subtitle_lang"};

absl::Status LiveCorrupt(std::string_view what) {
  return absl::DataLossError(Cat("live value: ", what));
}

// ---------------------------------------------------------------------------------------------
// History payload (V1), columns in this order:
//   count, started_at, session, title, watched_ms, position_ms, event_time,
//   device, country, content_lang, audio_lang, subtitle_lang.

// Each record costs at least one byte in each of the started_at and session columns (and a bit
// or more in others); used to bound the declared count by the input size before allocating.
constexpr uint64_t kMinPayloadBytesPerRecord = 2;

// Segments of the payload shorter than this are not given a zstd block of their own.
constexpr size_t kMinFlushBytes = 256;

constexpr uint8_t kMaxScaleExponent = 3;
constexpr std::array<int64_t, kMaxScaleExponent + 1> kPow10 = {1, 10, 100, 1000};

enum SessionMode : uint8_t { kSessionAbsolute = 0, kSessionDelta = 1 };
enum PositionPredictor : uint8_t { kPositionRaw = 0, kPositionMinusWatched = 1 };
enum WatchedPredictor : uint8_t { kWatchedRaw = 0 };
enum EventPredictor : uint8_t { kEventMinusStarted = 0, kEventMinusStartedAndWatched = 1 };

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError(Cat("history blob: ", what));
}
absl::Status CorruptColumn(std::string_view column) {
  return absl::DataLossError(Cat("history blob: truncated or malformed ", column, " column"));
}

// The largest exponent e <= kMaxScaleExponent such that every value is a multiple of 10^e.
template <typename T>
uint8_t ChooseScale(const std::vector<T>& values) {
  uint8_t e = kMaxScaleExponent;
  for (size_t i = 0; i < values.size() && e > 0; ++i) {
    while (e > 0 && values[i] % static_cast<T>(kPow10[e]) != 0) --e;
  }
  return e;
}

// Numeric columns are stored as byte planes: a width byte w (1..8), then byte 0 of every value,
// then byte 1 of every value, and so on. Each plane is a separate stretch of similar bytes, so
// zstd codes it with its own statistics (see EncodeHistory); varints would mix the random low
// bytes and the nearly constant high bytes of a value in one stream.
template <typename T>
void PutPlanes(std::string* out, const std::vector<T>& values, std::vector<size_t>* segments) {
  uint64_t all = 0;
  for (T v : values) all |= v;
  const size_t width = std::max<size_t>(1, (std::bit_width(all) + 7) / 8);
  PutByte(out, static_cast<uint8_t>(width));
  const size_t n = values.size();
  size_t pos = out->size();
  out->resize(pos + width * n);
  char* p = out->data();
  for (size_t k = 0; k < width; ++k) {
    const int shift = static_cast<int>(8 * k);
    for (size_t i = 0; i < n; ++i) p[pos + i] = static_cast<char>(uint64_t{values[i]} >> shift);
    pos += n;
    if (segments != nullptr) segments->push_back(pos);
  }
}

absl::Status GetPlanes(Reader* in, size_t n, std::string_view name, std::vector<uint64_t>* values) {
  uint8_t width;
  if (!in->Byte(&width)) return CorruptColumn(name);
  if (width < 1 || width > 8) return Corrupt(Cat("bad width ", width, " in ", name, " column"));
  std::string_view planes;
  if (n > in->remaining() / width || !in->Bytes(width * n, &planes)) return CorruptColumn(name);
  values->assign(n, 0);
  uint64_t* v = values->data();
  for (size_t k = 0; k < width; ++k) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(planes.data()) + k * n;
    const int shift = static_cast<int>(8 * k);
    for (size_t i = 0; i < n; ++i) v[i] |= static_cast<uint64_t>(p[i]) << shift;
  }
  return absl::OkStatus();
}

// Small values packed `bits` (1, 2, 4 or 8) to a byte, least significant bits first:
// ceil(n * bits / 8) bytes. zstd's literal coder spends at least a bit per byte, so packing
// is what lets a column of skewed small symbols cost less than a bit per record.
template <int kBits, typename T>
void PutPackedBits(unsigned char* p, const std::vector<T>& values) {
  constexpr size_t kPerByte = 8 / kBits;
  const size_t n = values.size();
  for (size_t i = 0; i < n; ++i) {
    p[i / kPerByte] |= static_cast<unsigned char>(values[i] << ((i % kPerByte) * kBits));
  }
}

template <typename T>
void PutPacked(std::string* out, const std::vector<T>& values, int bits) {
  const size_t pos = out->size();
  out->resize(pos + (values.size() * bits + 7) / 8, '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(out->data() + pos);
  switch (bits) {
    case 1:
      return PutPackedBits<1>(p, values);
    case 2:
      return PutPackedBits<2>(p, values);
    case 4:
      return PutPackedBits<4>(p, values);
    default:
      return PutPackedBits<8>(p, values);
  }
}

template <int kBits>
void GetPackedBits(const unsigned char* p, size_t n, uint32_t* values) {
  constexpr size_t kPerByte = 8 / kBits;
  constexpr unsigned kMask = (1u << kBits) - 1;
  for (size_t i = 0; i < n; ++i) values[i] = (p[i / kPerByte] >> ((i % kPerByte) * kBits)) & kMask;
}

bool GetPacked(Reader* in, size_t n, int bits, std::vector<uint32_t>* values) {
  std::string_view bytes;
  if (n > in->remaining() * (8 / bits) || !in->Bytes((n * bits + 7) / 8, &bytes)) return false;
  values->resize(n);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
  switch (bits) {
    case 1:
      GetPackedBits<1>(p, n, values->data());
      break;
    case 2:
      GetPackedBits<2>(p, n, values->data());
      break;
    case 4:
      GetPackedBits<4>(p, n, values->data());
      break;
    default:
      GetPackedBits<8>(p, n, values->data());
      break;
  }
  return true;
}

int PackedBits(size_t distinct) {
  return distinct <= 2 ? 1 : distinct <= 4 ? 2 : distinct <= 16 ? 4 : 8;
}

// A signed column after its predictor: predictor byte, scale byte, flags byte, then the
// values v = residual / 10^scale, zigzag-coded if flag kSigned is set (else all are >= 0):
//   dense (no kSparse flag): the planes of all n values;
//   kSparse: a packed bitmap (1 = v is not 0), then the planes of the values that are not 0.
// Sparse pays for "is it 0" once instead of once per plane; plain (non-zigzag) values keep
// the top plane free of the sign bit.
enum ColumnFlags : uint8_t { kSparse = 1, kSigned = 2 };
constexpr uint8_t kAllColumnFlags = kSparse | kSigned;

// A column's residuals in stored form, with the choices that go in its header.
struct CodedColumn {
  uint8_t scale = 0;
  uint8_t flags = 0;
  uint64_t cost = 0;  // total significant bits: a proxy for the compressed size
  std::vector<uint64_t> values;
};

template <int64_t kDiv>
void ScaleValues(const std::vector<int64_t>& residuals, bool zigzag, CodedColumn* c) {
  const size_t n = residuals.size();
  c->values.resize(n);
  uint64_t cost = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t q = residuals[i] / kDiv;
    const uint64_t v = zigzag ? ZigZag(q) : static_cast<uint64_t>(q);
    c->values[i] = v;
    cost += std::bit_width(v);
  }
  c->cost = cost;
}

void CodeColumn(const std::vector<int64_t>& residuals, CodedColumn* c) {
  c->scale = ChooseScale(residuals);
  const bool zigzag =
      std::any_of(residuals.begin(), residuals.end(), [](int64_t r) { return r < 0; });
  switch (c->scale) {
    case 0:
      ScaleValues<1>(residuals, zigzag, c);
      break;
    case 1:
      ScaleValues<10>(residuals, zigzag, c);
      break;
    case 2:
      ScaleValues<100>(residuals, zigzag, c);
      break;
    default:
      ScaleValues<1000>(residuals, zigzag, c);
      break;
  }
  const size_t zeros = static_cast<size_t>(std::count(c->values.begin(), c->values.end(), 0u));
  uint64_t all = 0;
  for (uint64_t v : c->values) all |= v;
  c->flags = zigzag ? kSigned : 0;
  if (zeros >= residuals.size() / 8 && all > 0xff) c->flags |= kSparse;
}

void PutCodedColumn(std::string* out, uint8_t predictor, CodedColumn* c,
                    std::vector<size_t>* segments) {
  PutByte(out, predictor);
  PutByte(out, c->scale);
  PutByte(out, c->flags);
  if ((c->flags & kSparse) == 0) {
    PutPlanes(out, c->values, segments);
    return;
  }
  std::vector<uint8_t> nonzero(c->values.size());
  for (size_t i = 0; i < c->values.size(); ++i) nonzero[i] = c->values[i] != 0;
  PutPacked(out, nonzero, 1);
  if (segments != nullptr) segments->push_back(out->size());
  std::erase(c->values, 0);
  PutPlanes(out, c->values, segments);
}

// Writes the candidate with the lower cost; a tie goes to the first.
void PutBestColumn(std::string* out, uint8_t predictor_a, CodedColumn* a, uint8_t predictor_b,
                   CodedColumn* b, std::vector<size_t>* segments) {
  if (b->cost < a->cost) {
    PutCodedColumn(out, predictor_b, b, segments);
  } else {
    PutCodedColumn(out, predictor_a, a, segments);
  }
}

// Reads a column written by PutCodedColumn into *values (residuals, before the
// caller undoes the predictor).
absl::Status GetCodedColumn(Reader* in, size_t n, std::string_view name, uint8_t max_predictor,
                            uint8_t* predictor, std::vector<uint64_t>* scratch,
                            std::vector<int64_t>* values) {
  uint8_t scale, flags;
  if (!in->Byte(predictor) || !in->Byte(&scale) || !in->Byte(&flags)) {
    return CorruptColumn(name);
  }
  if (*predictor > max_predictor) {
    return Corrupt(Cat("unknown predictor ", *predictor, " in ", name, " column"));
  }
  if (scale > kMaxScaleExponent) {
    return Corrupt(Cat("unknown scale ", scale, " in ", name, " column"));
  }
  if ((flags & ~kAllColumnFlags) != 0) {
    return Corrupt(Cat("unknown flags ", flags, " in ", name, " column"));
  }
  const bool sparse = (flags & kSparse) != 0;
  std::vector<uint32_t> nonzero;
  if (sparse && !GetPacked(in, n, 1, &nonzero)) return CorruptColumn(name);
  const size_t stored =
      sparse ? static_cast<size_t>(std::count(nonzero.begin(), nonzero.end(), 1u)) : n;
  STRATA_RETURN_IF_ERROR(GetPlanes(in, stored, name, scratch));
  const int64_t mul = kPow10[scale];
  values->resize(n);
  for (size_t i = 0, j = 0; i < n; ++i) {
    uint64_t v = 0;
    if (!sparse) {
      v = (*scratch)[i];
    } else if (nonzero[i] != 0) {
      v = (*scratch)[j++];
    }
    // Without kSigned a value above INT64_MAX reads as negative: never written, but harmless.
    const int64_t q = (flags & kSigned) ? UnZigZag(v) : static_cast<int64_t>(v);
    if (__builtin_mul_overflow(q, mul, &(*values)[i])) {
      return Corrupt(Cat("scaled value overflows in ", name, " column"));
    }
  }
  return absl::OkStatus();
}

// Dictionary of distinct values in first-appearance order, and each record's index into it.
// Lookups scan linearly while the dictionary is small (the common case: a few devices or
// languages), then switch to a hash map.
template <typename T>
class DictionaryBuilder {
 public:
  explicit DictionaryBuilder(size_t n) { indexes_.reserve(n); }

  // Returns true if v is new to the dictionary.
  bool Add(const T& v) {
    if (!values_.empty() && values_[last_] == v) {
      indexes_.push_back(last_);
      return false;
    }
    uint32_t idx;
    bool added = false;
    if (map_.empty()) {
      auto it = std::find(values_.begin(), values_.end(), v);
      idx = static_cast<uint32_t>(it - values_.begin());
      if (it == values_.end()) {
        added = true;
        values_.push_back(v);
        if (values_.size() > kLinearLimit) {
          map_.reserve(2 * kLinearLimit);
          for (uint32_t i = 0; i < values_.size(); ++i) map_.emplace(values_[i], i);
        }
      }
    } else {
      auto [it, inserted] = map_.emplace(v, static_cast<uint32_t>(values_.size()));
      if (inserted) values_.push_back(v);
      added = inserted;
      idx = it->second;
    }
    last_ = idx;
    indexes_.push_back(idx);
    return added;
  }

  const std::vector<T>& values() const { return values_; }
  const std::vector<uint32_t>& indexes() const { return indexes_; }
  std::vector<uint32_t> TakeIndexes() { return std::move(indexes_); }

 private:
  static constexpr size_t kLinearLimit = 8;
  std::vector<T> values_;
  std::vector<uint32_t> indexes_;
  absl::flat_hash_map<T, uint32_t> map_;
  uint32_t last_ = 0;
};

// Indexes follow the dictionary only when it has two or more entries (with one, every record
// uses entry 0): packed PackedBits(d) to a byte when d <= 256, else as planes.
void PutIndexes(std::string* out, size_t dict_size, const std::vector<uint32_t>& indexes,
                std::vector<size_t>* segments) {
  if (dict_size < 2) return;
  if (dict_size <= 256) {
    PutPacked(out, indexes, PackedBits(dict_size));
    if (segments != nullptr) segments->push_back(out->size());
  } else {
    PutPlanes(out, indexes, segments);
  }
}

absl::Status GetIndexes(Reader* in, size_t n, size_t dict_size, std::string_view name,
                        std::vector<uint64_t>* scratch, std::vector<uint32_t>* indexes) {
  if (n > 0 && dict_size == 0) return Corrupt(Cat("empty ", name, " dictionary"));
  if (dict_size < 2) return absl::OkStatus();  // all 0, read as indexes->empty()
  if (dict_size <= 256) {
    if (!GetPacked(in, n, PackedBits(dict_size), indexes)) return CorruptColumn(name);
  } else {
    STRATA_RETURN_IF_ERROR(GetPlanes(in, n, name, scratch));
    indexes->resize(n);
    for (size_t i = 0; i < n; ++i) {
      // Out-of-range values are caught below; the cast only has to keep them out of range.
      (*indexes)[i] = static_cast<uint32_t>(std::min<uint64_t>((*scratch)[i], dict_size));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if ((*indexes)[i] >= dict_size) {
      return Corrupt(Cat("dictionary index ", (*indexes)[i], " out of range in ", name, " column"));
    }
  }
  return absl::OkStatus();
}

absl::Status GetDictionarySize(Reader* in, size_t n, std::string_view name, size_t* size) {
  uint64_t d;
  if (!in->Varint(&d)) return CorruptColumn(name);
  // Every entry takes at least one byte, and a dictionary never outgrows its records.
  if (d > n || d > in->remaining()) {
    return Corrupt(Cat("implausible ", name, " dictionary size ", d));
  }
  *size = static_cast<size_t>(d);
  return absl::OkStatus();
}

// A string of at most 16 bytes as a key: compared and hashed as two words, which is much
// cheaper than memcmp on the dictionary's hot path. Injective for a given length (the loads
// below cover every byte), which is all a key needs.
struct ShortKey {
  uint64_t lo = 0;
  uint64_t hi = 0;
  uint64_t len = 0;

  static ShortKey From(std::string_view s) {
    ShortKey k;
    const char* p = s.data();
    const size_t n = s.size();
    k.len = n;
    if (n >= 8) {  // two 8-byte loads, overlapping when n < 16
      std::memcpy(&k.lo, p, 8);
      std::memcpy(&k.hi, p + n - 8, 8);
    } else if (n >= 4) {  // two 4-byte loads
      uint32_t a, b;
      std::memcpy(&a, p, 4);
      std::memcpy(&b, p + n - 4, 4);
      k.lo = (uint64_t{a} << 32) | b;
    } else if (n > 0) {
      k.lo = (uint64_t{static_cast<unsigned char>(p[0])} << 16) |
             (uint64_t{static_cast<unsigned char>(p[n / 2])} << 8) |
             static_cast<unsigned char>(p[n - 1]);
    }
    return k;
  }
  bool operator==(const ShortKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const ShortKey& k) {
    return H::combine(std::move(h), k.lo, k.hi, k.len);
  }
};

template <typename Get>
void PutStringColumn(std::string* out, std::span<const ViewingRecord> records, Get get,
                     std::vector<size_t>* segments) {
  std::vector<std::string_view> texts;  // the dictionary, in index order
  std::vector<uint32_t> indexes;
  const bool short_strings = std::all_of(records.begin(), records.end(), [&](const auto& r) {
    return std::string_view(get(r)).size() <= 16;
  });
  if (short_strings) {
    DictionaryBuilder<ShortKey> dict(records.size());
    for (const ViewingRecord& r : records) {
      if (dict.Add(ShortKey::From(get(r)))) texts.push_back(get(r));
    }
    indexes = dict.TakeIndexes();
  } else {
    // Strings over the limit (a broken precondition: DecodeHistory will refuse the blob).
    DictionaryBuilder<std::string_view> dict(records.size());
    for (const ViewingRecord& r : records) dict.Add(get(r));
    texts = dict.values();
    indexes = dict.TakeIndexes();
  }
  PutVarint64(out, texts.size());
  for (std::string_view s : texts) coding::PutLengthPrefixed(out, s);
  if (segments != nullptr) segments->push_back(out->size());
  PutIndexes(out, texts.size(), indexes, segments);
}

// One session entry: a tag, 0 for "length-prefixed bytes follow", otherwise a number.
struct SessionEntry {
  std::string_view text;  // when !numeric: the bytes, pointing into the payload
  uint64_t number = 0;    // when numeric
  bool numeric = false;
};

void PutSessionColumn(std::string* out, std::span<const ViewingRecord> records) {
  // Numbers of the numeric sessions; UINT64_MAX (never numeric) marks the others.
  constexpr uint64_t kNotNumeric = std::numeric_limits<uint64_t>::max();
  std::vector<uint64_t> numbers(records.size());
  size_t absolute_bytes = 0;
  size_t delta_bytes = 0;
  uint64_t prev = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string& s = records[i].session;
    const size_t string_bytes = 1 + VarintLength64(s.size()) + s.size();
    uint64_t v;
    if (!ParseNumericSession(s, &v)) {
      numbers[i] = kNotNumeric;
      absolute_bytes += string_bytes;
      delta_bytes += string_bytes;
      continue;
    }
    numbers[i] = v;
    absolute_bytes += VarintLength64(v + 1);
    const uint64_t zz = ZigZag(static_cast<int64_t>(v - prev));
    if (zz == kNotNumeric) {
      delta_bytes += string_bytes;  // written as bytes in delta mode; prev stays
    } else {
      delta_bytes += VarintLength64(zz + 1);
      prev = v;
    }
  }
  const SessionMode mode = delta_bytes <= absolute_bytes ? kSessionDelta : kSessionAbsolute;
  PutByte(out, mode);
  prev = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const uint64_t v = numbers[i];
    if (v != kNotNumeric) {
      if (mode == kSessionAbsolute) {
        PutVarint64(out, v + 1);
        continue;
      }
      const uint64_t zz = ZigZag(static_cast<int64_t>(v - prev));
      if (zz != kNotNumeric) {
        PutVarint64(out, zz + 1);
        prev = v;
        continue;
      }
    }
    PutVarint64(out, 0);
    coding::PutLengthPrefixed(out, records[i].session);
  }
}

absl::Status GetSessionColumn(Reader* in, size_t n, std::vector<SessionEntry>* entries) {
  uint8_t mode;
  if (!in->Byte(&mode)) return CorruptColumn("session");
  if (mode != kSessionAbsolute && mode != kSessionDelta) {
    return Corrupt(Cat("unknown session mode ", mode));
  }
  if (n > in->remaining()) return CorruptColumn("session");
  entries->resize(n);
  uint64_t prev = 0;
  for (size_t i = 0; i < n; ++i) {
    SessionEntry& e = (*entries)[i];
    uint64_t tag;
    if (!in->Varint(&tag)) return CorruptColumn("session");
    if (tag == 0) {
      if (!in->String(kMaxSessionBytes, &e.text)) return CorruptColumn("session");
      continue;
    }
    e.numeric = true;
    if (mode == kSessionAbsolute) {
      e.number = tag - 1;
    } else {
      e.number = prev + static_cast<uint64_t>(UnZigZag(tag - 1));
      prev = e.number;
    }
  }
  return absl::OkStatus();
}

std::string_view SessionText(const SessionEntry& e, char* buf) {
  return e.numeric ? FormatDecimal(e.number, buf) : e.text;
}

// The columns of a payload, parsed and validated before any record is built, so that a
// malformed payload costs memory in proportion to what was actually parsed.
struct Columns {
  uint64_t n = 0;
  std::vector<int64_t> started_at;
  std::vector<SessionEntry> sessions;
  std::vector<uint64_t> titles;
  std::vector<uint32_t> title_indexes;  // empty when titles.size() < 2
  std::vector<int64_t> watched, position, event_time;
  struct Strings {
    std::vector<std::string_view> dict;
    std::vector<uint32_t> indexes;  // empty when dict.size() < 2
  };
  std::array<Strings, kLiveStringCount> strings;
};

absl::Status ParsePayload(std::string_view payload, Columns* c) {
  Reader in(payload);
  if (!in.Varint(&c->n)) return Corrupt("missing record count");
  if (c->n > kMaxRecordsPerBlob) return Corrupt(Cat("record count ", c->n, " too large"));
  if (c->n > in.remaining() / kMinPayloadBytesPerRecord) {
    return Corrupt(Cat("record count ", c->n, " exceeds what ", in.remaining(), " bytes can hold"));
  }
  const size_t n = static_cast<size_t>(c->n);

  // started_at: scale byte, zigzag(first) if n > 0, then the planes of the n - 1
  // non-negative deltas / 10^scale.
  uint8_t scale;
  if (!in.Byte(&scale)) return CorruptColumn("started_at");
  if (scale > kMaxScaleExponent) return Corrupt(Cat("unknown started_at scale ", scale));
  c->started_at.resize(n);
  std::vector<uint64_t> scratch;
  if (n > 0) {
    uint64_t first;
    if (!in.Varint(&first)) return CorruptColumn("started_at");
    c->started_at[0] = UnZigZag(first);
  }
  STRATA_RETURN_IF_ERROR(GetPlanes(&in, n > 0 ? n - 1 : 0, "started_at", &scratch));
  for (size_t i = 1; i < n; ++i) {
    uint64_t delta;
    const int64_t prev = c->started_at[i - 1];
    const uint64_t headroom =
        static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - static_cast<uint64_t>(prev);
    if (__builtin_mul_overflow(scratch[i - 1], static_cast<uint64_t>(kPow10[scale]), &delta) ||
        delta > headroom) {
      return Corrupt("started_at overflows");
    }
    c->started_at[i] = WrapAdd(prev, static_cast<int64_t>(delta));
  }

  STRATA_RETURN_IF_ERROR(GetSessionColumn(&in, n, &c->sessions));
  // Records must be strictly ascending by (started_at, session): started_at never decreases
  // by construction, so only equal times need their sessions compared.
  for (size_t i = 1; i < n; ++i) {
    if (c->started_at[i] != c->started_at[i - 1]) continue;
    char a[20], b[20];
    if (!(SessionText(c->sessions[i - 1], a) < SessionText(c->sessions[i], b))) {
      return Corrupt(Cat("records ", i - 1, " and ", i, " out of order"));
    }
  }

  size_t d;
  STRATA_RETURN_IF_ERROR(GetDictionarySize(&in, n, "title", &d));
  c->titles.resize(d);
  for (size_t i = 0; i < d; ++i) {
    if (!in.Varint(&c->titles[i])) return CorruptColumn("title");
  }
  STRATA_RETURN_IF_ERROR(GetIndexes(&in, n, d, "title", &scratch, &c->title_indexes));

  uint8_t predictor;
  STRATA_RETURN_IF_ERROR(
      GetCodedColumn(&in, n, "watched_ms", kWatchedRaw, &predictor, &scratch, &c->watched));

  STRATA_RETURN_IF_ERROR(GetCodedColumn(&in, n, "position_ms", kPositionMinusWatched, &predictor,
                                        &scratch, &c->position));
  if (predictor == kPositionMinusWatched) {
    for (size_t i = 0; i < n; ++i) c->position[i] = WrapAdd(c->position[i], c->watched[i]);
  }

  STRATA_RETURN_IF_ERROR(GetCodedColumn(&in, n, "event_time", kEventMinusStartedAndWatched,
                                        &predictor, &scratch, &c->event_time));
  for (size_t i = 0; i < n; ++i) {
    int64_t base = c->started_at[i];
    if (predictor == kEventMinusStartedAndWatched) base = WrapAdd(base, c->watched[i]);
    c->event_time[i] = WrapAdd(c->event_time[i], base);
  }

  for (size_t k = 0; k < kLiveStringCount; ++k) {
    const std::string_view name = kShortStringNames[k];
    Columns::Strings& col = c->strings[k];
    STRATA_RETURN_IF_ERROR(GetDictionarySize(&in, n, name, &d));
    col.dict.resize(d);
    for (size_t i = 0; i < d; ++i) {
      if (!in.String(kMaxShortStringBytes, &col.dict[i])) return CorruptColumn(name);
    }
    STRATA_RETURN_IF_ERROR(GetIndexes(&in, n, d, name, &scratch, &col.indexes));
  }

  if (in.remaining() != 0) {
    return Corrupt(Cat(in.remaining(), " trailing bytes after the last column"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// zstd contexts, one per thread and reused: creating them costs more than a small blob.

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
  return cctx.get();
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  return dctx.get();
}

// An upper bound on what a zstd frame's blocks can decompress to, read from the block headers
// alone (RFC 8878, 3.1.1.2): raw and RLE blocks state their output size, and a compressed
// block yields at most Block_Maximum_Size <= 128 KiB. Lets the decoder refuse a frame whose
// declared content size its blocks cannot hold before allocating that much. `frame` must have
// passed ZSTD_findFrameCompressedSize; returns 0 if the headers do not parse.
uint64_t FrameOutputBound(std::string_view frame) {
  constexpr uint64_t kMaxBlockBytes = 128 << 10;
  auto byte = [&](size_t i) { return static_cast<uint8_t>(frame[i]); };
  if (frame.size() < 5) return 0;
  const uint8_t descriptor = byte(4);
  const bool single_segment = (descriptor & 0x20) != 0;
  const int fcs_flag = descriptor >> 6;
  const int dict_id_flag = descriptor & 0x03;
  size_t pos = 5;
  if (!single_segment) pos += 1;  // Window_Descriptor
  pos += dict_id_flag == 3 ? 4 : static_cast<size_t>(dict_id_flag);
  pos += fcs_flag == 0 ? (single_segment ? 1 : 0) : (size_t{1} << fcs_flag);
  uint64_t bound = 0;
  for (;;) {
    if (pos + 3 > frame.size()) return 0;
    const uint32_t header =
        byte(pos) | (uint32_t{byte(pos + 1)} << 8) | (uint32_t{byte(pos + 2)} << 16);
    pos += 3;
    const uint32_t size = header >> 3;
    switch ((header >> 1) & 3) {
      case 0:  // raw
        bound += size;
        pos += size;
        break;
      case 1:  // RLE: one byte repeated `size` times
        bound += size;
        pos += 1;
        break;
      case 2:  // compressed
        bound += kMaxBlockBytes;
        pos += size;
        break;
      default:
        return 0;
    }
    if ((header & 1) != 0) return bound;  // Last_Block
  }
}

[[noreturn]] void ZstdFatal(const char* what, size_t code) {
  std::fprintf(stderr, "strata codec: %s: %s\n", what, ZSTD_getErrorName(code));
  std::abort();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Live rows.

std::string LiveClusteringKey(Millis started_at, std::string_view session) {
  std::string key;
  key.reserve(8 + session.size());
  coding::PutOrderedInt64(&key, started_at);
  key.append(session);
  return key;
}

absl::Status ParseLiveClusteringKey(std::string_view key, Millis* started_at,
                                    std::string* session) {
  int64_t t;
  if (!coding::GetOrderedInt64(&key, &t)) {
    return absl::DataLossError(Cat("live clustering key: ", key.size(), " bytes, need at least 8"));
  }
  if (key.size() > kMaxSessionBytes) {
    return absl::DataLossError(
        Cat("live clustering key: session of ", key.size(), " bytes exceeds ", kMaxSessionBytes));
  }
  *started_at = t;
  session->assign(key);
  return absl::OkStatus();
}

std::string EncodeLiveValue(const ViewingRecord& r) {
  std::string out;
  out.reserve(40 + r.device.size() + r.country.size() + r.content_lang.size() +
              r.audio_lang.size() + r.subtitle_lang.size());
  PutByte(&out, kLiveFormatV1);
  PutVarint64(&out, r.title);
  PutVarint64(&out, ZigZag(WrapSub(r.event_time, r.started_at)));
  PutVarint64(&out, ZigZag(r.position_ms));
  PutVarint64(&out, ZigZag(r.watched_ms));
  for (const std::string* s : ShortStrings(r)) coding::PutLengthPrefixed(&out, *s);
  return out;
}

absl::Status DecodeLiveValue(std::string_view value, ViewingRecord* r) {
  Reader in(value);
  uint8_t version;
  if (!in.Byte(&version)) return LiveCorrupt("empty");
  if (version != kLiveFormatV1) {
    return LiveCorrupt(Cat("unknown format version ", version));
  }
  uint64_t title, event_delta, position, watched;
  if (!in.Varint(&title)) return LiveCorrupt("bad title");
  if (!in.Varint(&event_delta)) return LiveCorrupt("bad event_time");
  if (!in.Varint(&position)) return LiveCorrupt("bad position_ms");
  if (!in.Varint(&watched)) return LiveCorrupt("bad watched_ms");
  std::array<std::string_view, kLiveStringCount> strings;
  for (size_t k = 0; k < kLiveStringCount; ++k) {
    if (!in.String(kMaxShortStringBytes, &strings[k])) {
      return LiveCorrupt(Cat("bad ", kShortStringNames[k]));
    }
  }
  if (in.remaining() != 0) {
    return LiveCorrupt(Cat(in.remaining(), " trailing bytes"));
  }
  r->title = title;
  r->event_time = WrapAdd(r->started_at, UnZigZag(event_delta));
  r->position_ms = UnZigZag(position);
  r->watched_ms = UnZigZag(watched);
  auto fields = ShortStrings(r);
  for (size_t k = 0; k < kLiveStringCount; ++k) fields[k]->assign(strings[k]);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// History blobs.

absl::Status ValidateForEncoding(std::span<const ViewingRecord> records) {
  for (size_t i = 0; i < records.size(); ++i) {
    const ViewingRecord& r = records[i];
    if (r.session.size() > kMaxSessionBytes) {
      return absl::InvalidArgumentError(
          Cat("record ", i, ": session longer than ", kMaxSessionBytes, " bytes"));
    }
    const auto strings = ShortStrings(r);
    for (size_t k = 0; k < kLiveStringCount; ++k) {
      if (strings[k]->size() > kMaxShortStringBytes) {
        return absl::InvalidArgumentError(Cat("record ", i, ": ", kShortStringNames[k],
                                              " longer than ", kMaxShortStringBytes, " bytes"));
      }
    }
    if (i > 0 && !(PlaybackKey(records[i - 1]) < PlaybackKey(r))) {
      return absl::InvalidArgumentError(Cat(
          "records ", i - 1, " and ", i, " are not strictly ascending by (started_at, session)"));
    }
  }
  if (records.size() > kMaxRecordsPerBlob) {
    return absl::InvalidArgumentError(
        Cat(records.size(), " records exceed the limit of ", kMaxRecordsPerBlob));
  }
  return absl::OkStatus();
}

namespace internal {

std::string EncodeHistoryPayload(std::span<const ViewingRecord> records,
                                 std::vector<size_t>* segments) {
  const size_t n = records.size();
  std::string out;
  out.reserve(64 + n * 24);
  auto end_segment = [&] {
    if (segments != nullptr) segments->push_back(out.size());
  };
  PutVarint64(&out, n);
  std::vector<uint64_t> scratch;

  // started_at.
  {
    scratch.resize(n > 0 ? n - 1 : 0);
    for (size_t i = 1; i < n; ++i) {
      scratch[i - 1] = static_cast<uint64_t>(records[i].started_at) -
                       static_cast<uint64_t>(records[i - 1].started_at);
    }
    const uint8_t scale = ChooseScale(scratch);
    PutByte(&out, scale);
    if (n > 0) PutVarint64(&out, ZigZag(records[0].started_at));
    const uint64_t div = static_cast<uint64_t>(kPow10[scale]);
    for (uint64_t& d : scratch) d /= div;
    PutPlanes(&out, scratch, segments);
  }

  PutSessionColumn(&out, records);
  end_segment();

  {
    DictionaryBuilder<uint64_t> titles(n);
    for (const ViewingRecord& r : records) titles.Add(r.title);
    PutVarint64(&out, titles.values().size());
    for (uint64_t t : titles.values()) PutVarint64(&out, t);
    end_segment();
    PutIndexes(&out, titles.values().size(), titles.indexes(), segments);
  }

  // Numeric columns: for each, the predictor whose residuals are smallest.
  std::vector<int64_t> residuals(n);
  CodedColumn a, b;
  for (size_t i = 0; i < n; ++i) residuals[i] = records[i].watched_ms;
  CodeColumn(residuals, &a);
  PutCodedColumn(&out, kWatchedRaw, &a, segments);

  for (size_t i = 0; i < n; ++i) residuals[i] = records[i].position_ms;
  CodeColumn(residuals, &a);
  for (size_t i = 0; i < n; ++i) {
    residuals[i] = WrapSub(records[i].position_ms, records[i].watched_ms);
  }
  CodeColumn(residuals, &b);
  PutBestColumn(&out, kPositionRaw, &a, kPositionMinusWatched, &b, segments);

  for (size_t i = 0; i < n; ++i)
    residuals[i] = WrapSub(records[i].event_time, records[i].started_at);
  CodeColumn(residuals, &a);
  for (size_t i = 0; i < n; ++i) residuals[i] = WrapSub(residuals[i], records[i].watched_ms);
  CodeColumn(residuals, &b);
  PutBestColumn(&out, kEventMinusStarted, &a, kEventMinusStartedAndWatched, &b, segments);

  PutStringColumn(
      &out, records, [](const ViewingRecord& r) -> std::string_view { return r.device; }, segments);
  PutStringColumn(
      &out, records, [](const ViewingRecord& r) -> std::string_view { return r.country; },
      segments);
  PutStringColumn(
      &out, records, [](const ViewingRecord& r) -> std::string_view { return r.content_lang; },
      segments);
  PutStringColumn(
      &out, records, [](const ViewingRecord& r) -> std::string_view { return r.audio_lang; },
      segments);
  PutStringColumn(
      &out, records, [](const ViewingRecord& r) -> std::string_view { return r.subtitle_lang; },
      segments);
  return out;
}

absl::StatusOr<std::vector<ViewingRecord>> DecodeHistoryPayload(std::string_view payload,
                                                                MemberId member, Kind kind,
                                                                size_t newest, size_t* total) {
  Columns c;
  STRATA_RETURN_IF_ERROR(ParsePayload(payload, &c));
  const size_t n = static_cast<size_t>(c.n);
  if (total != nullptr) *total = n;
  const size_t from = n - std::min(n, newest);
  std::vector<ViewingRecord> out(n - from);
  char buf[20];
  for (size_t i = from; i < n; ++i) {
    ViewingRecord& r = out[i - from];
    r.member = member;
    r.kind = kind;
    r.started_at = c.started_at[i];
    r.session.assign(SessionText(c.sessions[i], buf));
    r.title = c.title_indexes.empty() ? c.titles[0] : c.titles[c.title_indexes[i]];
    r.watched_ms = c.watched[i];
    r.position_ms = c.position[i];
    r.event_time = c.event_time[i];
    auto fields = ShortStrings(&r);
    for (size_t k = 0; k < kLiveStringCount; ++k) {
      const Columns::Strings& col = c.strings[k];
      fields[k]->assign(col.indexes.empty() ? col.dict[0] : col.dict[col.indexes[i]]);
    }
  }
  return out;
}

}  // namespace internal

std::string EncodeHistory(std::span<const ViewingRecord> records, int zstd_level) {
  assert(ValidateForEncoding(records).ok());
  std::vector<size_t> segments;
  const std::string payload = internal::EncodeHistoryPayload(records, &segments);
  std::string out(1 + ZSTD_compressBound(payload.size()) + 64 + 8 * segments.size(), '\0');
  out[0] = static_cast<char>(kHistoryFormatV1);
  ZSTD_CCtx* cctx = ThreadCCtx();
  if (cctx == nullptr) ZstdFatal("ZSTD_createCCtx", 0);
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  size_t rc = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, std::clamp(zstd_level, 1, 19));
  if (ZSTD_isError(rc)) ZstdFatal("compression level", rc);
  rc = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  if (ZSTD_isError(rc)) ZstdFatal("checksum flag", rc);
  // The frame header carries the content size, which the decoder requires.
  rc = ZSTD_CCtx_setPledgedSrcSize(cctx, payload.size());
  if (ZSTD_isError(rc)) ZstdFatal("pledged size", rc);
  // Flushing at the end of a column (or plane) ends the zstd block there, so the next column
  // gets its own literal and sequence statistics instead of a blend of unlike bytes. Columns
  // too short to pay for a block header of their own stay with the next one.
  ZSTD_outBuffer dst{out.data() + 1, out.size() - 1, 0};
  size_t begin = 0;
  auto feed = [&](size_t end, ZSTD_EndDirective mode) {
    ZSTD_inBuffer src{payload.data() + begin, end - begin, 0};
    for (;;) {
      const size_t left = ZSTD_compressStream2(cctx, &dst, &src, mode);
      if (ZSTD_isError(left)) ZstdFatal("ZSTD_compressStream2", left);
      if (left == 0) break;       // all of src is in a finished block (flush) or frame (end)
      if (dst.pos == dst.size) {  // not expected with the bound above, but cheap to handle
        out.resize(2 * out.size());
        dst.dst = out.data() + 1;
        dst.size = out.size() - 1;
      }
    }
    begin = end;
  };
  for (size_t end : segments) {
    if (end - begin >= kMinFlushBytes && end < payload.size()) feed(end, ZSTD_e_flush);
  }
  feed(payload.size(), ZSTD_e_end);
  out.resize(1 + dst.pos);
  return out;
}

absl::StatusOr<std::vector<ViewingRecord>> DecodeHistory(std::string_view blob, MemberId member,
                                                         Kind kind, size_t newest, size_t* total) {
  if (blob.empty()) return Corrupt("empty");
  const uint8_t version = static_cast<uint8_t>(blob[0]);
  if (version != kHistoryFormatV1) {
    return Corrupt(Cat("unknown format version ", version));
  }
  const std::string_view frame = blob.substr(1);
  // A plain zstd frame (not a skippable one) with a content checksum: RFC 8878, magic number
  // then the frame header descriptor, whose bit 2 is Content_Checksum_flag.
  uint32_t magic = 0;
  for (size_t i = 0; i < 4 && i < frame.size(); ++i) {
    magic |= static_cast<uint32_t>(static_cast<uint8_t>(frame[i])) << (8 * i);
  }
  if (frame.size() < 5 || magic != ZSTD_MAGICNUMBER) return Corrupt("not a zstd frame");
  if ((static_cast<uint8_t>(frame[4]) & 0x04) == 0) return Corrupt("zstd frame has no checksum");

  const unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) return Corrupt("bad zstd frame header");
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) return Corrupt("zstd frame does not declare its size");
  if (size > kMaxHistoryPayloadBytes) {
    return Corrupt(
        Cat("declared payload size ", size, " exceeds the limit of ", kMaxHistoryPayloadBytes));
  }
  const size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size)) {
    return Corrupt(Cat("zstd frame: ", ZSTD_getErrorName(frame_size)));
  }
  if (frame_size != frame.size()) {
    return Corrupt(Cat(frame.size() - frame_size, " trailing bytes after the zstd frame"));
  }
  if (size == 0) return Corrupt("empty payload");
  if (const uint64_t bound = FrameOutputBound(frame); size > bound) {
    return Corrupt(Cat("declared payload size ", size, " exceeds the ", bound,
                       " bytes the zstd blocks can hold"));
  }

  ZSTD_DCtx* dctx = ThreadDCtx();
  if (dctx == nullptr) return absl::ResourceExhaustedError("ZSTD_createDCtx failed");
  // Left uninitialised: only the pages that zstd actually fills are ever touched.
  std::unique_ptr<char[]> payload(new (std::nothrow) char[size]);
  if (payload == nullptr) {
    return absl::ResourceExhaustedError(Cat("history blob: cannot allocate ", size));
  }
  const size_t got = ZSTD_decompressDCtx(dctx, payload.get(), size, frame.data(), frame.size());
  if (ZSTD_isError(got)) return Corrupt(Cat("zstd: ", ZSTD_getErrorName(got)));
  if (got != size) return Corrupt("payload shorter than declared");
  return internal::DecodeHistoryPayload(std::string_view(payload.get(), got), member, kind,
                                        newest, total);
}

// ---------------------------------------------------------------------------------------------
// Language-preference values and history cursors

std::string EncodeLanguageValue(const LanguagePreference& p) {
  std::string out(1, '\x01');
  coding::PutLengthPrefixed(&out, p.audio_lang);
  coding::PutLengthPrefixed(&out, p.subtitle_lang);
  coding::PutVarint64(&out, static_cast<uint64_t>(p.event_time));
  return out;
}
absl::Status DecodeLanguageValue(std::string_view in, LanguagePreference* p) {
  std::string_view audio, subtitle;
  uint64_t t;
  if (in.empty() || in[0] != '\x01') return absl::DataLossError("language row: bad format");
  in.remove_prefix(1);
  if (!coding::GetLengthPrefixed(&in, &audio) || !coding::GetLengthPrefixed(&in, &subtitle) ||
      !coding::GetVarint64(&in, &t) || !in.empty()) {
    return absl::DataLossError("language row: corrupt");
  }
  p->audio_lang = std::string(audio);
  p->subtitle_lang = std::string(subtitle);
  p->event_time = static_cast<Millis>(t);
  return absl::OkStatus();
}

std::string EncodeCursor(Millis started_at, std::string_view session) {
  std::string raw;
  coding::PutOrderedInt64(&raw, started_at);
  raw.append(session);
  return absl::BytesToHexString(raw);
}

absl::Status DecodeCursor(std::string_view cursor, Millis* started_at, std::string* session) {
  if (cursor.size() < 18 || cursor.size() % 2 != 0 ||
      cursor.size() > 2 * (8 + kMaxSessionBytes) ||
      cursor.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return absl::InvalidArgumentError("cursor: not a cursor returned by this API");
  }
  std::string raw = absl::HexStringToBytes(absl::string_view(cursor.data(), cursor.size()));
  std::string_view in = raw;
  if (!coding::GetOrderedInt64(&in, started_at)) {
    return absl::InvalidArgumentError("cursor: not a cursor returned by this API");
  }
  *session = std::string(in);
  return absl::OkStatus();
}

}  // namespace strata::viewing
