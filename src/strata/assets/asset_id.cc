#include "strata/assets/asset_id.h"

namespace strata::assets {
namespace {

constexpr uint64_t kCounterBits = 42;
constexpr uint64_t kCounterMax = (uint64_t{1} << kCounterBits) - 1;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Millis AssetId::time() const {
  uint64_t t = 0;
  for (int i = 0; i < 6; ++i) t = (t << 8) | bytes[i];
  return static_cast<Millis>(t);
}

std::string AssetId::ToString() const {
  std::string out(36, '\0');
  Format(out.data());
  return out;
}

void AssetId::Format(char out[36]) const {
  static const char kHex[] = "0123456789abcdef";
  size_t at = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[at++] = '-';
    out[at++] = kHex[bytes[i] >> 4];
    out[at++] = kHex[bytes[i] & 15];
  }
}

std::optional<AssetId> AssetId::FromBytes(std::string_view b) {
  if (b.size() != 16) return std::nullopt;
  AssetId id;
  for (int i = 0; i < 16; ++i) id.bytes[i] = static_cast<uint8_t>(b[i]);
  return id;
}

std::optional<AssetId> AssetId::Parse(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  AssetId id;
  int byte = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    const int hi = HexDigit(text[i]);
    const int lo = HexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes[byte++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  if ((id.bytes[6] >> 4) != 7 || (id.bytes[8] >> 6) != 2) return std::nullopt;
  return id;
}

AssetId AssetId::MinForTime(Millis t) {
  AssetId id;
  const uint64_t ts = t < 0 ? 0 : static_cast<uint64_t>(t) & ((uint64_t{1} << 48) - 1);
  for (int i = 0; i < 6; ++i) id.bytes[i] = static_cast<uint8_t>(ts >> (40 - 8 * i));
  return id;
}

AssetIdGenerator::AssetIdGenerator(Clock* clock, uint64_t seed)
    : clock_(clock), random_(seed != 0 ? seed : std::random_device{}()) {}

AssetId AssetIdGenerator::Next() {
  std::lock_guard<std::mutex> lock(mu_);
  return NextLocked();
}

void AssetIdGenerator::NextMany(size_t n, AssetId* out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < n; ++i) out[i] = NextLocked();
}

AssetId AssetIdGenerator::NextLocked() {
  const Millis now = clock_->NowMillis();
  if (now > last_ms_) {
    last_ms_ = now;
    counter_ = random_() & (kCounterMax >> 1);  // top bit 0: room to count before overflow
  } else if (counter_ == kCounterMax) {
    ++last_ms_;  // counter exhausted (or clock behind): borrow the next millisecond
    counter_ = random_() & (kCounterMax >> 1);
  } else {
    ++counter_;
  }
  const uint64_t ts = static_cast<uint64_t>(last_ms_) & ((uint64_t{1} << 48) - 1);
  const uint64_t counter_high = counter_ >> 30;        // 12 bits
  const uint64_t counter_low = counter_ & 0x3FFFFFFF;  // 30 bits
  const uint64_t hi = ts << 16 | uint64_t{7} << 12 | counter_high;
  const uint64_t lo = uint64_t{2} << 62 | counter_low << 32 | (random_() & 0xFFFFFFFF);
  AssetId id;
  for (int i = 0; i < 8; ++i) {
    id.bytes[i] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    id.bytes[8 + i] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  return id;
}

}  // namespace strata::assets
