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
