#include "strata/reprocess/processor.h"

#include <gtest/gtest.h>

#include "strata/assets/asset_service.h"

namespace strata::reprocess {
namespace {

using assets::JsonValue;

JsonValue P(std::string_view text) { return *assets::ParseJson(text, "test"); }

// Applies the processor of `spec` to `payload`: "changed <json>", "unchanged <json>" or the
// error message.
std::string ApplySpec(std::string_view spec, std::string_view payload) {
  absl::StatusOr<std::unique_ptr<Processor>> p = MakeProcessor(P(spec));
  if (!p.ok()) return "spec: " + std::string(p.status().message());
  JsonValue doc = P(payload);
  absl::StatusOr<Outcome> o = (*p)->Apply(AssetInfo{}, &doc);
  if (!o.ok()) return "error: " + std::string(o.status().message());
  return std::string(*o == Outcome::kChanged ? "changed " : "unchanged ") + doc.Serialize();
}

TEST(ProcessorTest, Set) {
  const char* spec = R"({"kind":"set","path":"/status","value":"done"})";
  EXPECT_EQ(ApplySpec(spec, R"({"a":1})"), R"(changed {"a":1,"status":"done"})");
  EXPECT_EQ(ApplySpec(spec, R"({"status":"done"})"), R"(unchanged {"status":"done"})");
  EXPECT_EQ(ApplySpec(R"({"kind":"set","path":"/x/y","value":1})", "{}"),
            R"(changed {"x":{"y":1}})");
  EXPECT_EQ(ApplySpec(R"({"kind":"set","path":"/n","value":1.0})", R"({"n":1})"),
            R"(changed {"n":1.0})");  // the kind counts
  EXPECT_EQ(ApplySpec(R"({"kind":"set","path":"/l/-","value":3})", R"({"l":[1]})"),
            R"(changed {"l":[1,3]})");
  EXPECT_EQ(ApplySpec(R"({"kind":"set","path":"/l/5","value":3})", R"({"l":[1]})"),
            "error: set /l/5: no such array element");
  EXPECT_EQ(ApplySpec(R"({"kind":"set","path":"/s/x","value":3})", R"({"s":"str"})"),
            "error: set /s/x: the parent is a scalar");
}

TEST(ProcessorTest, RemoveRenameCopyMap) {
  EXPECT_EQ(ApplySpec(R"({"kind":"remove","path":"/a"})", R"({"a":1,"b":2})"),
            R"(changed {"b":2})");
  EXPECT_EQ(ApplySpec(R"({"kind":"remove","path":"/z"})", R"({"a":1})"), R"(unchanged {"a":1})");
  EXPECT_EQ(ApplySpec(R"({"kind":"remove","path":"/l/0"})", R"({"l":[1,2]})"),
            R"(changed {"l":[2]})");
  EXPECT_EQ(ApplySpec(R"({"kind":"rename","from":"/a","to":"/b/c"})", R"({"a":[1]})"),
            R"(changed {"b":{"c":[1]}})");
  EXPECT_EQ(ApplySpec(R"({"kind":"rename","from":"/a","to":"/b"})", R"({"a":1,"b":2})"),
            "error: rename: /b exists");
  EXPECT_EQ(ApplySpec(R"({"kind":"copy","from":"/a","to":"/b"})", R"({"a":1})"),
            R"(changed {"a":1,"b":1})");
  EXPECT_EQ(ApplySpec(R"({"kind":"copy","from":"/q","to":"/b"})", R"({"a":1})"),
            R"(unchanged {"a":1})");
  const char* map = R"({"kind":"map","path":"/f","table":{"4K":"4k","UHD":"4k"}})";
  EXPECT_EQ(ApplySpec(map, R"({"f":"UHD"})"), R"(changed {"f":"4k"})");
  EXPECT_EQ(ApplySpec(map, R"({"f":"hd"})"), R"(unchanged {"f":"hd"})");
  EXPECT_EQ(ApplySpec(map, R"({"f":7})"), R"(unchanged {"f":7})");
  EXPECT_EQ(
      ApplySpec(R"({"kind":"map","path":"/f","table":{"a":"b"},"default":null})", R"({"f":"x"})"),
      R"(changed {"f":null})");
}

TEST(ProcessorTest, ValidateReportsViolationsOfTheChosenSchemaVersion) {
  const assets::Schema v1 = *assets::Schema::Parse(P(R"({"required":["a"]})"));
  const assets::Schema v2 = *assets::Schema::Parse(P(R"({"required":["a","b"]})"));
  SchemaLookup lookup = [&](std::optional<uint32_t> version) -> absl::StatusOr<assets::Schema> {
    if (!version || *version == 2) return v2;
    if (*version == 1) return v1;
    return absl::NotFoundError("no version " + std::to_string(*version));
  };
  auto run = [&](std::string_view spec, std::string_view payload) {
    absl::StatusOr<std::unique_ptr<Processor>> p = MakeProcessor(P(spec), ProcessorEnv{lookup, {}});
    if (!p.ok()) return "spec: " + std::string(p.status().message());
    JsonValue doc = P(payload);
    absl::StatusOr<Outcome> o = (*p)->Apply(AssetInfo{}, &doc);
    return o.ok() ? std::string("unchanged") : std::string(o.status().message());
  };
  EXPECT_EQ(run(R"({"kind":"validate"})", R"({"a":1})"),
            "payload /: required: missing property \"b\"");
  EXPECT_EQ(run(R"({"kind":"validate","schema_version":1})", R"({"a":1})"), "unchanged");
  EXPECT_EQ(run(R"({"kind":"validate","schema_version":7})", "{}"),
            "spec: processor/schema_version: no version 7");
  EXPECT_EQ(run(R"({"kind":"validate","schema_version":0})", "{}"),
            "spec: processor/schema_version: must be a type version (an integer >= 1)");
  // Without a lookup (checking a job's spec) it is accepted but does not run.
  absl::StatusOr<std::unique_ptr<Processor>> unbound = MakeProcessor(P(R"({"kind":"validate"})"));
  ASSERT_TRUE(unbound.ok());
  JsonValue doc = P("{}");
  EXPECT_TRUE(absl::IsInternal((*unbound)->Apply(AssetInfo{}, &doc).status()));
}

TEST(ProcessorTest, BadSpecsNameTheField) {
  EXPECT_EQ(ApplySpec(R"({"kind":"sett"})", "{}"),
            "spec: processor/kind: \"sett\" is not a processor (set, remove, rename, copy, map, "
            "validate, reindex, export, webhook)");
  EXPECT_EQ(ApplySpec(R"({"path":"/a"})", "{}"),
            "spec: processor/kind: required: set, remove, rename, copy, map, validate, reindex, "
            "export or webhook");
  EXPECT_EQ(ApplySpec(R"({"kind":"set","path":"a","value":1})", "{}"),
            "spec: processor/path: JSON pointer \"a\" must start with '/'");
  EXPECT_EQ(ApplySpec(R"({"kind":"set","path":"/a"})", "{}"),
            "spec: processor/value: required (null is a value)");
  EXPECT_EQ(ApplySpec(R"({"kind":"remove","path":"/a","value":1})", "{}"),
            "spec: processor/value: unknown field for this kind");
  EXPECT_EQ(ApplySpec(R"({"kind":"rename","from":"/a","to":"/a/b"})", "{}"),
            "spec: processor/to: must not be inside \"from\"");
  EXPECT_EQ(ApplySpec(R"({"kind":"map","path":"/a","table":{}})", "{}"),
            "spec: processor/table: required: a non-empty object of string -> value");
  EXPECT_EQ(ApplySpec("[]", "{}"), "spec: processor: must be an object");
}

TEST(ProcessorTest, BadSpecsOfReindexExportAndWebhookNameTheField) {
  EXPECT_EQ(ApplySpec(R"({"kind":"reindex","pointers":[]})", "{}"),
            "spec: processor/pointers: must be a non-empty array of indexed JSON pointers");
  EXPECT_EQ(ApplySpec(R"({"kind":"reindex","pointers":["/a",3]})", "{}"),
            "spec: processor/pointers/1: must be a JSON pointer string");
  EXPECT_EQ(ApplySpec(R"({"kind":"reindex","pointers":["a"]})", "{}"),
            "spec: processor/pointers/0: JSON pointer \"a\" must start with '/'");
  EXPECT_EQ(ApplySpec(R"({"kind":"reindex","path":"/a"})", "{}"),
            "spec: processor/path: unknown field for this kind");
  EXPECT_EQ(ApplySpec(R"({"kind":"export","format":"csv"})", "{}"),
            "spec: processor/format: must be \"ndjson\" (the default) or \"avro\"");
  EXPECT_EQ(ApplySpec(R"({"kind":"export","name":"x"})", "{}"),
            "spec: processor/name: unknown field for this kind");
  EXPECT_EQ(ApplySpec(R"({"kind":"webhook"})", "{}"),
            "spec: processor/url: required: an http:// URL such as \"http://127.0.0.1:9000/hook\"");
  EXPECT_EQ(ApplySpec(R"({"kind":"webhook","url":"https://example.com/x"})", "{}"),
            "spec: processor/url: must start with http:// (the client speaks no TLS)");
  EXPECT_EQ(ApplySpec(R"({"kind":"webhook","url":"http://:80/x"})", "{}"),
            "spec: processor/url: url: no host: 'http://:80/x'");
  EXPECT_EQ(ApplySpec(R"({"kind":"webhook","url":"http://h:1/x","timeout_ms":0})", "{}"),
            "spec: processor/timeout_ms: must be an integer 1..600000");
  // Processors that do not transform the payload leave it unchanged.
  EXPECT_EQ(ApplySpec(R"({"kind":"export","format":"avro"})", R"({"a":1})"), R"(unchanged {"a":1})");
}

TEST(ProcessorTest, ReindexResolvesItsPointersAgainstTheType) {
  auto type = std::make_shared<assets::AssetType>();
  type->name = "video";
  type->indexes.push_back({"/a", {"a"}, 1, true});
  type->indexes.push_back({"/b", {"b"}, 2, false});
  ProcessorEnv env;
  env.type = [type]() -> absl::StatusOr<std::shared_ptr<const assets::AssetType>> {
    return std::shared_ptr<const assets::AssetType>(type);
  };
  EXPECT_TRUE(MakeProcessor(P(R"({"kind":"reindex"})"), env).ok());
  EXPECT_TRUE(MakeProcessor(P(R"({"kind":"reindex","pointers":["/a"]})"), env).ok());
  absl::StatusOr<std::unique_ptr<Processor>> p =
      MakeProcessor(P(R"({"kind":"reindex","pointers":["/b","/c"]})"), env);
  EXPECT_EQ(p.status().message(), "processor/pointers/1: /c is not indexed in type video");
  absl::StatusOr<std::unique_ptr<Processor>> ok = MakeProcessor(P(R"({"kind":"reindex"})"), env);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE((*ok)->RebuildsIndex());
  EXPECT_FALSE((*ok)->RecordsRows());
  absl::StatusOr<std::unique_ptr<Processor>> ex = MakeProcessor(P(R"({"kind":"export"})"), env);
  ASSERT_TRUE(ex.ok());
  EXPECT_TRUE((*ex)->RecordsRows());
  EXPECT_FALSE((*ex)->CanRetryDeadLetters());
}

}  // namespace
}  // namespace strata::reprocess
