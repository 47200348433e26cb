// A minimal, fast JSON writer for API responses: appends to a std::string, escapes strings
// per RFC 8259. The caller is responsible for structure (commas are handled by the writer).
// Not thread-safe (one writer per response).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::server {

class JsonWriter {
 public:
  JsonWriter() { out_.reserve(256); }
  JsonWriter& BeginObject() { Sep(); out_.push_back('{'); first_ = true; return *this; }
  JsonWriter& EndObject() { out_.push_back('}'); first_ = false; return *this; }
  JsonWriter& BeginArray() { Sep(); out_.push_back('['); first_ = true; return *this; }
  JsonWriter& EndArray() { out_.push_back(']'); first_ = false; return *this; }
  JsonWriter& Key(std::string_view k) {
    Sep();
    AppendString(k);
    out_.push_back(':');
    first_ = true;  // the value that follows needs no comma
    return *this;
  }
  // A key the caller knows needs no escaping (a literal of letters, digits and '_'): appended
  // as is, which saves the escape scan on the hot per-record keys.
  JsonWriter& PlainKey(std::string_view k) {
    Sep();
    out_.push_back('"');
    out_.append(k);
    out_.append("\":", 2);
    first_ = true;
    return *this;
  }
  JsonWriter& String(std::string_view v) { Sep(); AppendString(v); return *this; }
  // A value that is already JSON text (e.g. a stored payload), appended as is.
  JsonWriter& Raw(std::string_view json) { Sep(); out_.append(json); return *this; }
  JsonWriter& Int(int64_t v) { Sep(); AppendNumber(v); return *this; }
  JsonWriter& Uint(uint64_t v) { Sep(); AppendNumber(v); return *this; }
  // Grows the buffer once for a response of about `bytes` (e.g. records x their typical size).
  void Reserve(size_t bytes) { out_.reserve(bytes); }
  JsonWriter& Double(double v);
  JsonWriter& Bool(bool v) { Sep(); out_ += v ? "true" : "false"; return *this; }
  JsonWriter& Null() { Sep(); out_ += "null"; return *this; }

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Sep() {
    if (!first_) out_.push_back(',');
    first_ = false;
  }
  void AppendString(std::string_view s);
  template <typename T>
  void AppendNumber(T v) {
    char buf[24];  // 20 digits and a sign at most
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out_.append(buf, static_cast<size_t>(end - buf));
  }

  std::string out_;
  bool first_ = true;
};

// {"error":{"code":code,"message":message}}
std::string ErrorBody(std::string_view code, std::string_view message);

}  // namespace strata::server
