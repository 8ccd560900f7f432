// What the engine makes of a model's text answer (src/engine/answer.hpp). The cases marked
// [fuzz] were found by tests/fuzz/fuzz_answers.cpp: each threw a nlohmann exception out of a run.

#include <catch2/catch.hpp>

#include "../src/engine/answer.hpp"

using namespace avps;
using nlohmann::json;

TEST_CASE("a page's answer gives its outputs, more and carry apart", "[engine][answer]") {
  Result<engine::PageAnswer> page =
      engine::read_page_answer(R"({"SCENES": {"rows": [1]}, "more": true, "carry": {"n": 2}})", "story-architect");
  REQUIRE(page.ok());
  CHECK(page->answer == json{{"SCENES", {{"rows", {1}}}}});
  CHECK(page->more);
  CHECK(page->carry == json{{"n", 2}});

  Result<engine::PageAnswer> last = engine::read_page_answer(R"({"rows": []})", "script-breakdown");
  REQUIRE(last.ok());
  CHECK_FALSE(last->more);
  CHECK(last->carry.is_null());
}

TEST_CASE("a page's answer that is not a JSON object is the page's failure", "[engine][answer]") {
  for (const char* text : {"[1, 2]", "\"text\"", "not json", ""}) {
    Result<engine::PageAnswer> page = engine::read_page_answer(text, "script-breakdown");
    REQUIRE_FALSE(page.ok());
    CHECK_THAT(page.error().message, Catch::StartsWith("the output is not a JSON object"));
  }
}

// Given a page whose "more" is not a boolean, when the engine reads it, then the page fails
// with the reason; run_pages used json::value("more", false), which threw type_error 302.
TEST_CASE("a page whose more is not true or false fails instead of throwing", "[engine][answer][fuzz]") {
  for (const char* text : {R"({"more": "yes"})", R"({"more": null})", R"({"more": 1, "rows": []})"}) {
    INFO(text);
    Result<engine::PageAnswer> page = engine::read_page_answer(text, "story-architect");
    REQUIRE_FALSE(page.ok());
    CHECK_THAT(page.error().message, Catch::Contains("\"more\"") && Catch::Contains("not true or false"));
  }
}

TEST_CASE("pages' rows are appended in page order, and other outputs are the last page's", "[engine][answer]") {
  json assembled = json::object();
  REQUIRE(engine::merge_page(assembled, "SCENES", {{"rows", {1, 2}}, {"note", "a"}}).ok());
  REQUIRE(engine::merge_page(assembled, "SCENES", {{"rows", {3}}, {"note", "b"}}).ok());
  REQUIRE(engine::merge_page(assembled, "BEATS", {{"beats", {1}}}).ok());
  REQUIRE(engine::merge_page(assembled, "BEATS", {{"beats", {2}}}).ok());
  CHECK(assembled["SCENES"]["rows"] == json{1, 2, 3});
  CHECK(assembled["BEATS"] == json{{"beats", {2}}});
}

// Given pages whose "rows" are not both lists, when they are merged, then the merge is refused;
// it pushed onto a string (type_error 308) or spread an object's values into the list.
TEST_CASE("pages whose rows are not lists are refused instead of throwing", "[engine][answer][fuzz]") {
  json assembled = json::object();
  REQUIRE(engine::merge_page(assembled, "SCENES", {{"rows", "first"}}).ok());
  Result<void> merged = engine::merge_page(assembled, "SCENES", {{"rows", {1}}});
  REQUIRE_FALSE(merged.ok());
  CHECK_THAT(merged.error().message, Catch::Contains("SCENES \"rows\" is not a list"));

  json lists = {{"SCENES", {{"rows", {1}}}}};
  CHECK_FALSE(engine::merge_page(lists, "SCENES", {{"rows", {{"a", 2}}}}).ok());
  CHECK(lists["SCENES"]["rows"] == json{1});
}

// Given a skill with several model outputs and an answer that is not an object, when the engine
// takes each output's content, then it is null (the schema then fails it); json::value threw.
TEST_CASE("an answer that is not an object has no output of a several-output skill", "[engine][answer][fuzz]") {
  CHECK(engine::output_content(json::array({1}), "BEATS", 2).is_null());
  CHECK(engine::output_content(json("text"), "BEATS", 2).is_null());
  CHECK(engine::output_content(json{{"SCENES", {{"rows", json::array()}}}}, "BEATS", 2).is_null());
  CHECK(engine::output_content(json{{"BEATS", 1}}, "BEATS", 2) == json(1));
  CHECK(engine::output_content(json::array({1}), "BEATS", 1) == json::array({1}));
}
