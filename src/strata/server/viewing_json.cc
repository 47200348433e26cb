#include "strata/server/viewing_json.h"

#include <simdjson.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "strata/server/json_writer.h"
#include "strata/viewing/validation.h"

namespace strata::server {
namespace {

using simdjson::ondemand::object;
using simdjson::ondemand::value;

std::string TypeError(std::string_view field, const char* expected) {
  return std::string(field) + ": must be " + expected;
}

// Parses one event object into *r; returns "" or an error naming the field.
std::string ParseEvent(object obj, viewing::ViewingRecord* r) {
  bool has_member = false, has_kind = false, has_title = false, has_session = false,
       has_started = false, has_event_time = false;
  auto get_uint = [](value v, std::string_view field, uint64_t* out) -> std::string {
    if (v.get_uint64().get(*out) != simdjson::SUCCESS) {
      return TypeError(field, "a non-negative integer");
    }
    return "";
  };
  auto get_int = [](value v, std::string_view field, int64_t* out) -> std::string {
    if (v.get_int64().get(*out) != simdjson::SUCCESS) return TypeError(field, "an integer");
    return "";
  };
  auto get_string = [](value v, std::string_view field, std::string* out) -> std::string {
    std::string_view s;
    const simdjson::error_code e = v.get_string().get(s);
    if (e == simdjson::STRING_ERROR) {
      // A string, but not a valid one: "must be a string" would mislead.
      return std::string(field) +
             ": not a valid JSON string (a bad escape, or a lone UTF-16 surrogate such as "
             "\\ud800)";
    }
    if (e != simdjson::SUCCESS) return TypeError(field, "a string");
    out->assign(s);
    return "";
  };
  for (auto field_result : obj) {
    simdjson::ondemand::field field;
    if (std::move(field_result).get(field) != simdjson::SUCCESS) {
      return "body: invalid JSON object";
    }
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return "body: invalid field name";
    value v = field.value();
    std::string err;
    if (key == "member") {
      err = get_uint(v, key, &r->member);
      has_member = true;
    } else if (key == "kind") {
      std::string kind;
      err = get_string(v, key, &kind);
      if (err.empty()) {
        if (kind == "play") {
          r->kind = viewing::Kind::kPlay;
        } else if (kind == "preview") {
          r->kind = viewing::Kind::kPreview;
        } else {
          err = "kind: must be \"play\" or \"preview\"";
        }
      }
      has_kind = true;
    } else if (key == "title") {
      err = get_uint(v, key, &r->title);
      has_title = true;
    } else if (key == "session") {
      err = get_string(v, key, &r->session);
      has_session = true;
    } else if (key == "started_at") {
      err = get_int(v, key, &r->started_at);
      has_started = true;
    } else if (key == "event_time") {
      err = get_int(v, key, &r->event_time);
      has_event_time = true;
    } else if (key == "position_ms") {
      err = get_int(v, key, &r->position_ms);
    } else if (key == "watched_ms") {
      err = get_int(v, key, &r->watched_ms);
    } else if (key == "device") {
      err = get_string(v, key, &r->device);
    } else if (key == "country") {
      err = get_string(v, key, &r->country);
    } else if (key == "content_lang") {
      err = get_string(v, key, &r->content_lang);
    } else if (key == "audio_lang") {
      err = get_string(v, key, &r->audio_lang);
    } else if (key == "subtitle_lang") {
      err = get_string(v, key, &r->subtitle_lang);
    }  // unknown fields are ignored, so newer clients can send more
    if (!err.empty()) return err;
  }
  if (!has_member) return "member: required";
  if (!has_kind) return "kind: required";
  if (!has_title) return "title: required";
  if (!has_session) return "session: required";
  if (!has_started) return "started_at: required";
  if (!has_event_time) return "event_time: required";
  absl::Status s = viewing::ValidateRecord(*r);
  if (!s.ok()) return std::string(s.message());
  return "";
}

// "" unless the event's times are after `latest`.
std::string FutureError(const viewing::ViewingRecord& r, Millis latest) {
  if (r.started_at <= latest && r.event_time <= latest) return "";
  return absl::StrCat(r.started_at > latest ? "started_at" : "event_time",
                      ": more than the allowed skew (--max-future-skew-ms) ahead of the "
                      "server's clock; latest accepted now: ",
                      latest);
}

void Consume(value v, size_t index, Millis latest, ParsedEvents* out) {
  object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) {
    out->rejected.push_back({index, "event: must be a JSON object"});
    return;
  }
  viewing::ViewingRecord r;
  std::string err = ParseEvent(obj, &r);
  if (err.empty()) err = FutureError(r, latest);
  if (err.empty()) {
    out->valid.push_back(std::move(r));
  } else {
    out->rejected.push_back({index, std::move(err)});
  }
}

}  // namespace

absl::StatusOr<ParsedEvents> ParseViewingEvents(std::string_view body, Millis latest) {
  size_t start = body.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) {
    return absl::InvalidArgumentError("body: empty; expected a JSON array or NDJSON events");
  }
  ParsedEvents out;
  // ~200 bytes an event in practice: one allocation of the result instead of ~10 doublings.
  out.valid.reserve(std::min<size_t>(body.size() / 128 + 1, kMaxEventsPerBatch));
  // The parser keeps its buffers (~5 bytes per body byte) between calls on one thread,
  // instead of allocating and faulting them in for every batch; bodies far above a usual
  // batch get a parser of their own, so a thread holds at most ~5x kReusedParserBytes.
  constexpr size_t kReusedParserBytes = size_t{1} << 20;
  thread_local simdjson::ondemand::parser reused_parser;
  std::optional<simdjson::ondemand::parser> own_parser;
  if (body.size() > kReusedParserBytes) own_parser.emplace();
  simdjson::ondemand::parser& parser = own_parser ? *own_parser : reused_parser;
  simdjson::padded_string padded(body);
  if (body[start] == '[') {
    simdjson::ondemand::document doc;
    simdjson::ondemand::array array;
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS ||
        doc.get_array().get(array) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("body: invalid JSON");
    }
    size_t index = 0;
    for (auto element : array) {
      value v;
      if (std::move(element).get(v) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(absl::StrCat("body: invalid JSON at event ", index));
      }
      if (index >= kMaxEventsPerBatch) {
        return absl::InvalidArgumentError(
            absl::StrCat("body: more than ", kMaxEventsPerBatch, " events"));
      }
      Consume(v, index++, latest, &out);
      // An error inside an object leaves the iterator unusable: stop with a clear error.
      if (!out.rejected.empty() && out.rejected.back().index == index - 1 &&
          out.rejected.back().error.rfind("body:", 0) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("body: invalid JSON at event ", index - 1));
      }
    }
    // The on-demand parser reads no further than the array (past the last token the location
    // is OUT_OF_BOUNDS): '[...] []' and '[...] x' were accepted.
    if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
      return absl::InvalidArgumentError("body: unexpected content after the JSON array");
    }
    return out;
  }
  // NDJSON: one object per line.
  size_t index = 0;
  size_t json_lines = 0;  // lines that parsed as JSON at all
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    std::string_view line = body.substr(pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (index >= kMaxEventsPerBatch) {
      return absl::InvalidArgumentError(
          absl::StrCat("body: more than ", kMaxEventsPerBatch, " events"));
    }
    simdjson::padded_string padded_line(line);
    simdjson::ondemand::document doc;
    if (parser.iterate(padded_line).get(doc) != simdjson::SUCCESS) {
      out.rejected.push_back({index++, "event: invalid JSON"});
      continue;
    }
    object obj;
    if (doc.get_object().get(obj) != simdjson::SUCCESS) {
      out.rejected.push_back({index++, "event: must be a JSON object"});
      continue;
    }
    viewing::ViewingRecord r;
    std::string err = ParseEvent(obj, &r);
    if (err.rfind("body:", 0) == 0) {
      err = "event: invalid JSON";
    } else {
      ++json_lines;
    }
    // One event per line: '{...} {...}' on a line kept the first and dropped the rest.
    if (err.empty() && doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
      err = "event: unexpected content after the JSON object";
    }
    if (err.empty()) err = FutureError(r, latest);
    if (err.empty()) {
      out.valid.push_back(std::move(r));
    } else {
      out.rejected.push_back({index, std::move(err)});
    }
    ++index;
  }
  if (index == 0) return absl::InvalidArgumentError("body: no events");
  if (json_lines == 0) {
    return absl::InvalidArgumentError("body: invalid JSON; expected a JSON array or NDJSON");
  }
  return out;
}

void AppendRecordJson(const viewing::ViewingRecord& r, JsonWriter* w) {
  w->BeginObject();
  w->PlainKey("member").Uint(r.member);
  w->PlainKey("kind").String(viewing::KindName(r.kind));
  w->PlainKey("title").Uint(r.title);
  w->PlainKey("session").String(r.session);
  w->PlainKey("started_at").Int(r.started_at);
  w->PlainKey("event_time").Int(r.event_time);
  w->PlainKey("position_ms").Int(r.position_ms);
  w->PlainKey("watched_ms").Int(r.watched_ms);
  w->PlainKey("device").String(r.device);
  w->PlainKey("country").String(r.country);
  w->PlainKey("content_lang").String(r.content_lang);
  w->PlainKey("audio_lang").String(r.audio_lang);
  w->PlainKey("subtitle_lang").String(r.subtitle_lang);
  w->EndObject();
}

}  // namespace strata::server
