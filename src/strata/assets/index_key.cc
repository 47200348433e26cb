#include "strata/assets/index_key.h"

#include <bit>
#include <cstdint>
#include <cstring>

namespace strata::assets {

void AppendIndexNumber(std::string* out, double d) {
  if (d == 0) d = 0;  // -0 -> +0
  uint64_t bits = std::bit_cast<uint64_t>(d);
  bits = (bits & (uint64_t{1} << 63)) ? ~bits : bits | (uint64_t{1} << 63);
  out->push_back(kIndexTagNumber);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(bits >> (56 - 8 * i)));
}

void AppendIndexStringPrefix(std::string* out, std::string_view s) {
  if (s.size() > kMaxIndexedStringBytes) s = s.substr(0, kMaxIndexedStringBytes);
  out->push_back(kIndexTagString);
  for (char c : s) {
    out->push_back(c);
    if (c == '\0') out->push_back('\xff');
  }
}

std::optional<std::string> EncodeIndexValue(const JsonValue& value) {
  std::string out;
  switch (value.kind()) {
    case JsonValue::Kind::kNull:
      out.push_back(kIndexTagNull);
      break;
    case JsonValue::Kind::kBool:
      out.push_back(value.bool_value() ? kIndexTagTrue : kIndexTagFalse);
      break;
    case JsonValue::Kind::kInt:
    case JsonValue::Kind::kDouble:
      AppendIndexNumber(&out, value.number());
      break;
    case JsonValue::Kind::kString:
      AppendIndexStringPrefix(&out, value.string_value());
      out.push_back('\0');
      out.push_back('\x01');
      break;
    default:
      return std::nullopt;
  }
  return out;
}

std::optional<JsonValue> DecodeIndexValue(std::string_view* in) {
  if (in->empty()) return std::nullopt;
  const char tag = (*in)[0];
  in->remove_prefix(1);
  switch (tag) {
    case kIndexTagNull:
      return JsonValue::Null();
    case kIndexTagFalse:
      return JsonValue::Bool(false);
    case kIndexTagTrue:
      return JsonValue::Bool(true);
    case kIndexTagNumber: {
      if (in->size() < 8) return std::nullopt;
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = bits << 8 | static_cast<uint8_t>((*in)[i]);
      in->remove_prefix(8);
      bits = (bits & (uint64_t{1} << 63)) ? bits & ~(uint64_t{1} << 63) : ~bits;
      return JsonValue::Double(std::bit_cast<double>(bits));
    }
    case kIndexTagString: {
      std::string s;
      for (size_t i = 0; i < in->size(); ++i) {
        if ((*in)[i] != '\0') {
          s.push_back((*in)[i]);
          continue;
        }
        if (i + 1 >= in->size()) return std::nullopt;
        if ((*in)[i + 1] == '\xff') {
          s.push_back('\0');
          ++i;
        } else if ((*in)[i + 1] == '\x01') {
          in->remove_prefix(i + 2);
          return JsonValue::String(std::move(s));
        } else {
          return std::nullopt;
        }
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    if (static_cast<uint8_t>(out.back()) != 0xff) {
      out.back() = static_cast<char>(static_cast<uint8_t>(out.back()) + 1);
      return out;
    }
    out.pop_back();
  }
  return out;
}

}  // namespace strata::assets
