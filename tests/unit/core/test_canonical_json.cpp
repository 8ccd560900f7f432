#include <catch2/catch.hpp>

#include <string>

#include "avps/core/canonical_json.hpp"

using avps::ErrorCode;
using avps::core::parse_json;

// Found by fuzzing (tests/fuzz): nlohmann refuses a number that overflows a double with
// out_of_range 406, not parse_error, and parse_json let it escape: one "1e999" in a model's
// answer, a provider's reply, avps.json or a JSON face ended the command with an uncaught
// exception.
TEST_CASE("parse_json refuses a number too large for a double as an error, not an exception", "[core][json][fuzz]") {
  for (const std::string text : {"1e999", "[1, -9e999]", R"({"usage": {"prompt_tokens": 68888888888E444444}})"}) {
    INFO(text);
    avps::Result<nlohmann::json> parsed = parse_json(text, "reply");
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code == ErrorCode::invalid_argument);
    CHECK_THAT(parsed.error().message, Catch::StartsWith("reply: invalid JSON"));
    CHECK_THAT(parsed.error().message, Catch::Contains("number overflow"));
  }
  CHECK(parse_json("1e308", "reply").ok());
}

TEST_CASE("parse_json names the byte of a syntax error", "[core][json]") {
  avps::Result<nlohmann::json> parsed = parse_json("{\"a\": }", "avps.json");
  REQUIRE_FALSE(parsed.ok());
  CHECK_THAT(parsed.error().message, Catch::StartsWith("avps.json: invalid JSON at byte 7"));
}
