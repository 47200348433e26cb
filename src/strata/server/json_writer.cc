#include "strata/server/json_writer.h"

#include <cmath>
#include <cstdio>

#include "strata/base/utf8.h"

namespace strata::server {

JsonWriter& JsonWriter::Double(double v) {
  Sep();
  if (!std::isfinite(v)) {
    out_ += "null";
    return *this;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  out_ += buf;
  return *this;
}

void JsonWriter::AppendString(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out_.push_back('"');
  size_t run = 0;  // start of the pending run of characters that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') continue;
    if (c >= 0x80) {
      // JSON text is UTF-8 (RFC 8259): a well-formed sequence is copied, any other byte (a
      // client's path or header echoed in an error) becomes U+FFFD.
      if (const size_t n = Utf8SequenceLength(s, i); n > 0) {
        i += n - 1;
        continue;
      }
      out_.append(s.data() + run, i - run);
      run = i + 1;
      out_ += kUtf8Replacement;
      continue;
    }
    out_.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out_ += "\\\""; break;
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\r': out_ += "\\r"; break;
      case '\t': out_ += "\\t"; break;
      default:
        out_ += "\\u00";
        out_.push_back(kHex[(c >> 4) & 0xf]);
        out_.push_back(kHex[c & 0xf]);
    }
  }
  out_.append(s.data() + run, s.size() - run);
  out_.push_back('"');
}

std::string ErrorBody(std::string_view code, std::string_view message) {
  JsonWriter w;
  w.BeginObject().Key("error").BeginObject();
  w.Key("code").String(code).Key("message").String(message);
  w.EndObject().EndObject();
  return w.Take();
}

}  // namespace strata::server
