#include <catch2/catch.hpp>

#include <string>

#include "avps/core/json_schema.hpp"

using namespace avps;
using nlohmann::json;

namespace {

core::JsonSchema compile(const json& schema) {
  return core::JsonSchema::compile(schema, "test.schema.json", ".").value();
}

}  // namespace

// Found by fuzzing (tests/fuzz/fuzz_faces.cpp): valijson counts characters for minLength /
// maxLength by reading the string as UTF-8 and, on a run of more than five continuation bytes,
// indexes past its six-entry table (UBSan: "index 41 out of bounds for type 'const uint32_t[6]'").
// A face is not JSON, so its text reaches the validator as it was typed.
TEST_CASE("text that is not UTF-8 is a schema issue and never reaches the validator", "[core][schema][fuzz]") {
  const core::JsonSchema schema = compile({{"type", "object"},
                                           {"properties", {{"summary", {{"type", "string"}, {"minLength", 1}}}}}});
  const std::string continuation_run = "ok \xc3" + std::string(41, '\x80');
  std::vector<core::SchemaIssue> issues = schema.validate({{"summary", continuation_run}});
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].pointer == "/summary");
  CHECK(issues[0].expected == "UTF-8 text");
  CHECK(issues[0].found == "a byte that is not UTF-8 at offset 5");

  json bad_key = json::object();
  bad_key["x\xff"] = "fine";
  issues = schema.validate(json{{"list", {"a", bad_key}}});
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].pointer == "/list/1");

  CHECK(schema.validate({{"summary", "Mara's café — é ü"}}).empty());
}

// A key rule (patternProperties "^(?!P)" refusing with {"not": {}}) is checked through a
// propertyNames pattern, inline or in a definition reached by $ref. The same rule with one more
// keyword beside "not" is not rewritten, and refuses the same keys: both must give the same
// issues for every instance, valid or not.
TEST_CASE("a key rule gives the same issues whether or not it is checked as a propertyNames pattern",
          "[core][schema]") {
  const json rule = {{"^(?![A-Z]+(_[A-Z]+)*$)", {{"description", "an upper-case key"}, {"not", json::object()}}}};
  const json kept = {{"^(?![A-Z]+(_[A-Z]+)*$)", {{"description", "an upper-case key"}, {"not", json::object()},
                                                  {"examples", json::array()}}}};
  auto schema_with = [](const json& pattern_properties) {
    const json map = {{"type", "object"},
                      {"patternProperties", pattern_properties},
                      {"additionalProperties", {{"type", "integer"}}}};
    return json{{"type", "object"},
                {"definitions", {{"by_key", map}}},
                {"properties", {{"inline", map}, {"referenced", {{"$ref", "#/definitions/by_key"}}}}},
                {"additionalProperties", false}};
  };
  const core::JsonSchema rewritten = compile(schema_with(rule));
  const core::JsonSchema as_written = compile(schema_with(kept));
  for (const json& instance : {json{{"inline", {{"OK", 1}, {"ALSO_OK", 2}}}, {"referenced", {{"FINE", 3}}}},
                               json{{"inline", {{"bad", 1}}}},
                               json{{"referenced", {{"Bad_Key", 1}, {"GOOD", 2}}}},
                               json{{"referenced", {{"GOOD", "not an integer"}}}},
                               json{{"inline", {{"", 1}, {"A__B", 2}, {"AB", "x"}}}},
                               json{{"inline", json::object()}, {"referenced", json::object()}},
                               json{{"other", 1}}}) {
    INFO(instance.dump());
    const std::vector<core::SchemaIssue> a = rewritten.validate(instance);
    const std::vector<core::SchemaIssue> b = as_written.validate(instance);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].to_string() == b[i].to_string());
    }
  }
  CHECK(rewritten.validate(json{{"inline", {{"OK", 1}}}, {"referenced", {{"FINE", 3}}}}).empty());
  const std::vector<core::SchemaIssue> refused = rewritten.validate(json{{"referenced", {{"Bad_Key", 1}}}});
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].pointer == "/referenced/Bad_Key");
  CHECK(refused[0].expected.find("an upper-case key") != std::string::npos);
}
