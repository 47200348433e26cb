// Structured logging: one line per event, `ts=... level=... msg="..." key=value ...`
// (logfmt), written to stderr through spdlog. Thread-safe.
//
//   STRATA_LOG_INFO("rollup done", "member", member, "records", n);
#pragma once

#include <spdlog/spdlog.h>

#include <sstream>
#include <string>
#include <string_view>

namespace strata::log {

// Sets the minimum level: "debug", "info", "warn" or "error".
void Init(std::string_view level);

namespace internal {
inline void AppendValue(std::string* out, std::string_view v) {
  bool quote = v.empty() || v.find_first_of(" \"=") != std::string_view::npos;
  if (!quote) {
    out->append(v);
    return;
  }
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}
inline void AppendValue(std::string* out, const std::string& v) {
  AppendValue(out, std::string_view(v));
}
inline void AppendValue(std::string* out, const char* v) { AppendValue(out, std::string_view(v)); }
template <typename T>
void AppendValue(std::string* out, const T& v) {
  std::ostringstream s;
  s << v;
  out->append(s.str());
}
inline void AppendFields(std::string*) {}
template <typename K, typename V, typename... Rest>
void AppendFields(std::string* out, const K& key, const V& value, const Rest&... rest) {
  out->push_back(' ');
  out->append(key);
  out->push_back('=');
  AppendValue(out, value);
  AppendFields(out, rest...);
}
template <typename... Fields>
std::string Format(std::string_view msg, const Fields&... fields) {
  std::string out = "msg=";
  AppendValue(&out, msg);
  AppendFields(&out, fields...);
  return out;
}
}  // namespace internal

}  // namespace strata::log

#define STRATA_LOG_(lvl, msg, ...) \
  ::spdlog::log(lvl, "{}", ::strata::log::internal::Format(msg __VA_OPT__(, ) __VA_ARGS__))
#define STRATA_LOG_DEBUG(msg, ...) STRATA_LOG_(::spdlog::level::debug, msg, __VA_ARGS__)
#define STRATA_LOG_INFO(msg, ...) STRATA_LOG_(::spdlog::level::info, msg, __VA_ARGS__)
#define STRATA_LOG_WARN(msg, ...) STRATA_LOG_(::spdlog::level::warn, msg, __VA_ARGS__)
#define STRATA_LOG_ERROR(msg, ...) STRATA_LOG_(::spdlog::level::err, msg, __VA_ARGS__)
