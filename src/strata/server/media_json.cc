#include "strata/server/media_json.h"

#include <simdjson.h>

#include <charconv>

#include "strata/media/checksums.h"
#include "strata/media/validation.h"
#include "strata/server/json_writer.h"

namespace strata::server {

absl::StatusOr<media::BucketPolicy> ParseBucketPolicy(std::string_view body) {
  media::BucketPolicy policy;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return policy;
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("body: must be a JSON object");
  }
  for (auto field_result : obj) {
    simdjson::ondemand::field field;
    std::string_view key;
    if (std::move(field_result).get(field) != simdjson::SUCCESS ||
        field.unescaped_key().get(key) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("body: invalid JSON object");
    }
    simdjson::ondemand::value v = field.value();
    auto duration = [&](Millis* out) -> absl::Status {
      bool is_null = false;
      if (v.is_null().get(is_null) == simdjson::SUCCESS && is_null) {
        *out = 0;
        return absl::OkStatus();
      }
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(std::string(key) +
                                          ": must be a duration string like \"30d\"");
      }
      absl::StatusOr<Millis> ms = media::ParseDuration(s, key);
      if (!ms.ok()) return ms.status();
      *out = *ms;
      return absl::OkStatus();
    };
    if (key == "ttl") {
      if (absl::Status s = duration(&policy.ttl_ms); !s.ok()) return s;
    } else if (key == "grace") {
      if (absl::Status s = duration(&policy.grace_ms); !s.ok()) return s;
    } else if (key == "storage_class") {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError("storage_class: must be a string");
      }
      policy.storage_class = std::string(s);
    } else {
      return absl::InvalidArgumentError(std::string(key) + ": unknown field");
    }
  }
  // The on-demand parser reads no further than the object (simdjson 3.0 has no at_end(): the
  // location past the last token is OUT_OF_BOUNDS): '{"ttl": "1d"} {}' was accepted.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return absl::InvalidArgumentError("body: unexpected content after the JSON object");
  }
  return policy;
}

void AppendBucketJson(const media::Bucket& b, JsonWriter* w) {
  w->BeginObject();
  w->Key("bucket").String(b.name);
  w->Key("ttl");
  if (b.policy.ttl_ms > 0) {
    w->String(media::FormatDuration(b.policy.ttl_ms));
  } else {
    w->Null();
  }
  w->Key("ttl_ms").Int(b.policy.ttl_ms);
  w->Key("grace").String(media::FormatDuration(b.policy.grace_ms));
  w->Key("grace_ms").Int(b.policy.grace_ms);
  w->Key("storage_class").String(b.policy.storage_class);
  w->Key("created_at").Int(b.created_at).Key("updated_at").Int(b.updated_at);
  w->EndObject();
}

void AppendObjectJson(const media::ObjectInfo& info, JsonWriter* w) {
  const media::ObjectRow& r = info.row;
  w->BeginObject();
  w->Key("bucket").String(info.bucket).Key("key").String(info.key);
  w->Key("generation").Uint(r.generation);
  w->Key("size").Uint(r.size).Key("parts").Uint(r.parts);
  w->Key("sha1").String(media::Hex(r.sha1)).Key("md5").String(media::Hex(r.md5));
  w->Key("xxh3").String(media::Hex64(r.xxh3));
  w->Key("content_type").String(r.content_type);
  w->Key("storage_class").String(r.storage_class);
  w->Key("created_at").Int(r.created_at);
  w->Key("ttl_ms").Int(r.ttl_ms);
  w->Key("expires_at");
  if (r.expires_at() > 0) {
    w->Int(r.expires_at());
  } else {
    w->Null();
  }
  w->Key("deleted_at");
  if (r.deleted_at > 0) {
    w->Int(r.deleted_at);
    w->Key("restorable_until").Int(r.deleted_at + r.grace_ms);
  } else {
    w->Null();
  }
  w->Key("meta").BeginObject();
  for (const auto& [k, v] : r.meta) w->Key(k).String(v);
  w->EndObject();
  if (!r.wrapped_key.empty()) w->Key("wrapped_key").String(r.wrapped_key);
  w->EndObject();
}

absl::StatusOr<ByteRange> ParseRange(std::string_view header, uint64_t size) {
  auto bad = [](const char* why) {
    return absl::InvalidArgumentError(std::string("range: ") + why);
  };
  constexpr std::string_view kUnit = "bytes=";
  if (header.substr(0, kUnit.size()) != kUnit) return bad("must start with \"bytes=\"");
  std::string_view spec = header.substr(kUnit.size());
  if (spec.find(',') != std::string_view::npos) return bad("multiple ranges are not supported");
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return bad("must be first-last, first- or -suffix");
  auto number = [](std::string_view s, uint64_t* out) {
    if (s.empty() || s.size() > 19) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  uint64_t first = 0, last = 0;
  auto unsatisfiable = [size] {
    return absl::OutOfRangeError("range: not satisfiable for an object of " + std::to_string(size) +
                                 " bytes");
  };
  if (a.empty()) {  // suffix: the last b bytes
    if (!number(b, &last)) return bad("suffix length must be a number");
    if (last == 0 || size == 0) return unsatisfiable();
    uint64_t n = std::min(last, size);
    return ByteRange{size - n, n};
  }
  if (!number(a, &first)) return bad("first byte must be a number");
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else {
    if (!number(b, &last)) return bad("last byte must be a number");
    if (last < first) return bad("last byte is before the first");
  }
  if (first >= size) return unsatisfiable();
  last = std::min(last, size - 1);
  return ByteRange{first, last - first + 1};
}

absl::StatusOr<std::string> DecodePathSegment(std::string_view s, std::string_view field) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) {
      return absl::InvalidArgumentError(std::string(field) + ": bad %-escape in the path");
    }
    out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
    i += 2;
  }
  return out;
}

}  // namespace strata::server
