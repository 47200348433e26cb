// libFuzzer target for the asset codecs and parsers (built and run by scripts/fuzz.sh assets).
//
// Every input is offered to each of them:
//  * rows read back from disk: DecodeAssetRow, DecodeHistoryRow (against a base made of the
//    input's second half) and DecodeOutbox -- what they accept must encode and decode again
//    to the same value;
//  * index keys: DecodeIndexValue on the input and on its second half -- a decoded value must
//    re-encode to a key that decodes to the same value, and two decoded values of one kind
//    must compare as their encodings do (the order the index relies on);
//  * client input: page cursors (accepted ones re-encode to the same text), where-conditions
//    (parsed and typed against a schema or refused with an error naming "where"; accepted
//    ones are evaluated), asset ids, and JSON payloads (parsed with a depth bound, serialised
//    idempotently, merge-patched, and tried as a schema that then validates the payload).
// Any broken promise aborts, which the fuzzer reports as a crash.
//
// With STRATA_ASSETS_FUZZ_WRITE_SEEDS=<dir> in the environment the binary instead writes a
// seed corpus into <dir> and exits (tests/fuzz/assets_corpus was made so).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "strata/assets/asset_id.h"
#include "strata/assets/index_key.h"
#include "strata/assets/json.h"
#include "strata/assets/rows.h"
#include "strata/assets/schema.h"
#include "strata/assets/where.h"

namespace strata::assets {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "assets_fuzz: %s\n", what);
  std::abort();
}

bool SameRow(const AssetRow& a, const AssetRow& b) {
  return a.version == b.version && a.schema_version == b.schema_version &&
         a.created_at == b.created_at && a.updated_at == b.updated_at &&
         a.index_entries == b.index_entries && a.payload == b.payload;
}

// Same value, numbers compared by bits after -0 -> +0 (NaN only equals NaN).
bool SameIndexValue(const JsonValue& a, const JsonValue& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.number() == 0 ? 0 : a.number();
    const double y = b.number() == 0 ? 0 : b.number();
    return (std::isnan(x) && std::isnan(y)) || x == y;
  }
  return a == b;
}

void CheckIndexValue(std::string_view in) {
  std::string_view rest = in;
  std::optional<JsonValue> v = DecodeIndexValue(&rest);
  if (!v) return;
  std::optional<std::string> again = EncodeIndexValue(*v);
  if (!again) Fail("a decoded index value does not encode");
  std::string_view again_view(*again);
  std::optional<JsonValue> back = DecodeIndexValue(&again_view);
  // Strings are indexed by their first kMaxIndexedStringBytes bytes (the encoder never
  // writes a longer one, but a decoder reads any).
  JsonValue expected = *v;
  if (v->is_string() && v->string_value().size() > kMaxIndexedStringBytes) {
    expected = JsonValue::String(v->string_value().substr(0, kMaxIndexedStringBytes));
  }
  if (!back || !again_view.empty() || !SameIndexValue(expected, *back)) {
    Fail("index value round trip changed the value");
  }
}

int Order(const JsonValue& a, const JsonValue& b) {
  if (a.is_number()) return a.number() < b.number() ? -1 : a.number() > b.number() ? 1 : 0;
  if (a.is_string()) {
    const int c = a.string_value().compare(b.string_value());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.kind() == JsonValue::Kind::kBool) return int(a.bool_value()) - int(b.bool_value());
  return 0;
}

void CheckIndexOrder(std::string_view in) {
  std::string_view first = in.substr(0, in.size() / 2);
  std::string_view second = in.substr(in.size() / 2);
  std::optional<JsonValue> a = DecodeIndexValue(&first);
  std::optional<JsonValue> b = DecodeIndexValue(&second);
  if (!a || !b) return;
  const bool same_kind = (a->is_number() && b->is_number()) || a->kind() == b->kind();
  if (!same_kind) return;
  if (a->is_number() && (std::isnan(a->number()) || std::isnan(b->number()))) return;
  if (a->is_string() && (a->string_value().size() > kMaxIndexedStringBytes ||
                         b->string_value().size() > kMaxIndexedStringBytes)) {
    return;
  }
  const std::string ea = *EncodeIndexValue(*a);
  const std::string eb = *EncodeIndexValue(*b);
  const int by_key = ea < eb ? -1 : ea > eb ? 1 : 0;
  if (by_key != Order(*a, *b)) Fail("index keys do not sort as their values");
}

void CheckRows(std::string_view in) {
  if (std::optional<AssetRow> row = DecodeAssetRow(in)) {
    std::optional<AssetRow> back = DecodeAssetRow(EncodeAssetRow(*row));
    if (!back || !SameRow(*row, *back)) Fail("asset row round trip changed the row");
  }
  // A history row against a base of the input's own tail: a delta must never read past the
  // base, and what it decodes to must encode (delta or whole) and decode back the same.
  const std::string_view base = in.substr(in.size() / 2);
  (void)DecodeHistoryHeader(in);
  if (std::optional<AssetRow> row = DecodeHistoryRow(in, base)) {
    std::optional<AssetRow> back = DecodeHistoryRow(EncodeHistoryRow(*row, base), base);
    if (!back || !SameRow(*row, *back)) Fail("history row round trip changed the row");
  }
  if (std::optional<std::vector<std::string>> events = DecodeOutbox(in)) {
    if (DecodeOutbox(EncodeOutbox(*events)) != events) Fail("outbox round trip changed it");
  }
}

void CheckCursors(std::string_view in) {
  if (std::optional<ListCursor> c = DecodeListCursor(in)) {
    if (EncodeListCursor(*c) != in) Fail("list cursor does not re-encode to itself");
  }
  if (std::optional<SearchCursor> c = DecodeSearchCursor(in)) {
    if (EncodeSearchCursor(*c) != in) Fail("search cursor does not re-encode to itself");
  }
  if (std::optional<AssetId> id = AssetId::Parse(in)) {
    std::string lower(in);
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (id->ToString() != lower) Fail("asset id does not print as parsed");
  }
}

const Schema& TypedSchema() {
  static const Schema schema =
      *Schema::Parse(*ParseJson(R"({"type":"object","properties":{"n":{"type":"integer"},
        "s":{"type":"string"},"b":{"type":"boolean"},"x":{"type":["number","string"]}}})",
                                "seed"));
  return schema;
}

void CheckWhere(std::string_view in) {
  absl::StatusOr<WhereCondition> c = ParseWhere(in);
  if (!c.ok()) {
    if (c.status().message().substr(0, 5) != "where") Fail("where error does not name where");
    return;
  }
  static const JsonValue payload =
      *ParseJson(R"({"n":5,"s":"abc","b":true,"x":1.5,"a":[1,{"k":"v"}]})", "seed");
  for (const Schema* schema : {&TypedSchema(), static_cast<const Schema*>(nullptr)}) {
    WhereCondition bound = *c;
    Schema any;
    absl::Status s = BindWhere(schema ? *schema : any, &bound);
    if (!s.ok()) {
      if (s.message().substr(0, 5) != "where") Fail("bind error does not name where");
      continue;
    }
    (void)MatchesWhere(bound, payload);
    if (bound.op != WhereOp::kPrefix) {
      if (!EncodeIndexValue(bound.value)) Fail("a bound where value is not indexable");
    }
  }
}

void CheckJson(std::string_view in) {
  absl::StatusOr<JsonValue> doc = ParseJson(in, "payload", 8);
  if (!doc.ok()) {
    if (doc.status().message().substr(0, 7) != "payload") Fail("JSON error does not name it");
    return;
  }
  const std::string once = doc->Serialize();
  absl::StatusOr<JsonValue> again = ParseJson(once, "payload", 8);
  if (!again.ok()) Fail("serialised JSON does not parse");
  if (again->Serialize() != once) Fail("serialisation is not idempotent");
  JsonValue patched = *doc;
  MergePatch(&patched, *doc);
  (void)patched.Serialize();
  absl::StatusOr<Schema> schema = Schema::Parse(*doc, "schema", 8);
  if (schema.ok()) {
    (void)schema->Validate(*doc);
  } else if (schema.status().message().substr(0, 6) != "schema") {
    Fail("schema error does not name the schema");
  }
  (void)TypedSchema().Validate(*doc);
}

void FuzzOne(std::string_view in) {
  CheckRows(in);
  CheckIndexValue(in);
  if (in.size() >= 2) CheckIndexValue(in.substr(1));
  CheckIndexOrder(in);
  CheckCursors(in);
  CheckWhere(in);
  CheckJson(in);
}

void WriteSeed(const std::string& dir, const std::string& name, std::string_view bytes) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void WriteSeeds(const std::string& dir) {
  ManualClock clock(1'765'000'000'000);
  AssetIdGenerator gen(&clock, 1);
  const AssetId id = gen.Next();
  AssetRow row;
  row.version = 3;
  row.schema_version = 2;
  row.created_at = 1'765'000'000'000;
  row.updated_at = 1'765'000'100'000;
  row.index_entries = {IndexEntry(1, *EncodeIndexValue(JsonValue::String("4k"))),
                       IndexEntry(2, *EncodeIndexValue(JsonValue::Int(600)))};
  row.payload = R"({"show_id":7,"format":"4k","duration_s":600})";
  WriteSeed(dir, "asset-row", EncodeAssetRow(row));
  WriteSeed(dir, "outbox",
            EncodeOutbox({EncodeChangeEvent({"video", id, 1, ChangeOp::kCreate, 1}),
                          EncodeChangeEvent({"video", id, 2, ChangeOp::kDelete, 2})}));
  WriteSeed(dir, "index-string", *EncodeIndexValue(JsonValue::String(std::string("a\0b", 3))));
  WriteSeed(dir, "index-numbers",
            *EncodeIndexValue(JsonValue::Double(-2.5)) + *EncodeIndexValue(JsonValue::Int(600)));
  WriteSeed(
      dir, "index-strings",
      *EncodeIndexValue(JsonValue::String("ab")) + *EncodeIndexValue(JsonValue::String("abc")));
  WriteSeed(dir, "list-cursor", EncodeListCursor({id}));
  WriteSeed(dir, "search-cursor",
            EncodeSearchCursor({42, 1'764'979'200'000, IndexKey(1, "\x30x\x00\x01", id)}));
  WriteSeed(dir, "id", id.ToString());
  WriteSeed(dir, "where-eq", "/format=4k");
  WriteSeed(dir, "where-range", "/n>=600");
  WriteSeed(dir, "where-prefix", "/s^=ab");
  WriteSeed(dir, "where-quoted", "/x=\"1.5\"");
  WriteSeed(dir, "payload", R"({"show_id":7,"format":"4k","tags":["a","b"],"crew":{"lead":null},
    "duration_s":600.5,"live":false})");
  WriteSeed(dir, "schema", R"({"type":"object","required":["a"],"properties":{"a":{"type":
    "integer","minimum":1,"maximum":9},"b":{"type":"array","items":{"type":"string",
    "maxLength":3,"enum":["x","yy"]}}},"additionalProperties":false})");
}

}  // namespace
}  // namespace strata::assets

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("STRATA_ASSETS_FUZZ_WRITE_SEEDS")) {
    strata::assets::WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  strata::assets::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
