// The fake provider (tests/support/fake_provider.hpp) is what the HTTP adapter tests trust: these
// tests hold it to its own contract with requests built by hand, one per provider, sent over
// loopback: well-formed requests are answered in the provider's format, malformed ones are
// refused with a reason and counted, faults fire as often as told.

#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "avps/backends/http_model.hpp"
#include "avps/core/fs.hpp"
#include "support/fake_provider.hpp"

using avps::testing::FakeProvider;
using avps::testing::FakeProviderConfig;
using nlohmann::json;

namespace {

constexpr const char* k_openai_key = "sk-fake-openai";
constexpr const char* k_anthropic_key = "sk-ant-fake";
constexpr const char* k_gemini_key = "fake-gemini-key";

FakeProviderConfig config_for_tests() {
  FakeProviderConfig config;
  config.data_dir = AVPS_SOURCE_DATA_DIR;
  config.project = {{"seed", 7}};
  config.keys = {k_openai_key, k_anthropic_key, k_gemini_key, ""};
  return config;
}

// The user text of a character-lock call about MARIA, as http_model puts it on the wire.
std::string document_text(const std::string& skill = "character-lock") {
  auto brief = avps::core::read_file(std::string(AVPS_SOURCE_DATA_DIR) + "/examples/demo_short_film/brief.md");
  REQUIRE(brief.ok());
  avps::backends::ModelRequest request;
  request.skill = skill;
  request.scope = {{"entity_id", "MARIA"}, {"kind", "CHAR_LOCK"}};
  request.inputs = {{"BRIEF", *brief}};
  request.findings = json::array();
  auto text = avps::backends::request_document(request);
  REQUIRE(text.ok());
  return *text;
}

json closed_schema() {
  return {{"type", "object"},
          {"properties", {{"entity_id", {{"type", "string"}}}}},
          {"required", {"entity_id"}},
          {"additionalProperties", false}};
}

const std::string k_system = "You write character locks.";

json openai_body(const std::string& skill = "character-lock") {
  return {{"model", "gpt-fake"},
          {"messages",
           {{{"role", "system"}, {"content", k_system}},
            {{"role", "user"}, {"content", {{{"type", "text"}, {"text", document_text(skill)}}}}}}},
          {"max_completion_tokens", 8000},
          {"response_format",
           {{"type", "json_schema"},
            {"json_schema", {{"name", "char_lock"}, {"strict", true}, {"schema", closed_schema()}}}}}};
}

json anthropic_body() {
  return {{"model", "claude-fake"},
          {"max_tokens", 8000},
          {"system", {{{"type", "text"}, {"text", k_system}, {"cache_control", {{"type", "ephemeral"}}}}}},
          {"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", document_text()}}}}}}},
          {"tools", {{{"name", "emit_result"}, {"description", "Return the result"}, {"input_schema", closed_schema()}}}},
          {"tool_choice", {{"type", "tool"}, {"name", "emit_result"}}}};
}

json gemini_body() {
  return {{"systemInstruction", {{"parts", {{{"text", k_system}}}}}},
          {"contents", {{{"role", "user"}, {"parts", {{{"text", document_text()}}}}}}},
          {"generationConfig",
           {{"responseMimeType", "application/json"}, {"responseJsonSchema", closed_schema()}, {"maxOutputTokens", 8000}}}};
}

httplib::Result post_openai(FakeProvider& fake, const json& body, const std::string& key = k_openai_key) {
  httplib::Client client("127.0.0.1", fake.port());
  return client.Post("/v1/chat/completions", {{"Authorization", "Bearer " + key}}, body.dump(), "application/json");
}

httplib::Result post_anthropic(FakeProvider& fake, const json& body, bool with_version = true) {
  httplib::Client client("127.0.0.1", fake.port());
  httplib::Headers headers = {{"x-api-key", k_anthropic_key}};
  if (with_version) {
    headers.emplace("anthropic-version", "2023-06-01");
  }
  return client.Post("/v1/messages", headers, body.dump(), "application/json");
}

httplib::Result post_gemini(FakeProvider& fake, const json& body, const std::string& query = "") {
  httplib::Client client("127.0.0.1", fake.port());
  return client.Post("/v1beta/models/gemini-fake:generateContent" + query, {{"x-goog-api-key", k_gemini_key}},
                     body.dump(), "application/json");
}

bool has_reason(const json& stats, const std::string& part) {
  for (const json& reason : stats["invalid_reasons"]) {
    if (reason.get<std::string>().find(part) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("the fake provider answers a well-formed structured-output request of each provider", "[fake_provider]") {
  FakeProvider fake(config_for_tests());
  REQUIRE(fake.start().ok());

  // OpenAI strict json_schema: the JSON answer is the string choices[0].message.content.
  auto openai = post_openai(fake, openai_body());
  REQUIRE(openai);
  INFO(openai->body);
  REQUIRE(openai->status == 200);
  json openai_answer = json::parse(openai->body);
  CHECK(openai_answer["choices"][0]["finish_reason"] == "stop");
  json content = json::parse(openai_answer["choices"][0]["message"]["content"].get<std::string>());
  CHECK(content["entity_id"] == "MARIA");
  CHECK(openai_answer["usage"]["prompt_tokens"] == (openai_body().dump().size() + 3) / 4);
  CHECK(openai_answer["usage"]["prompt_tokens_details"]["cached_tokens"] == 0);

  // Anthropic forced tool: the answer is the tool_use block's input.
  auto anthropic = post_anthropic(fake, anthropic_body());
  REQUIRE(anthropic);
  INFO(anthropic->body);
  REQUIRE(anthropic->status == 200);
  json anthropic_answer = json::parse(anthropic->body);
  CHECK(anthropic_answer["stop_reason"] == "tool_use");
  CHECK(anthropic_answer["content"][0]["type"] == "tool_use");
  CHECK(anthropic_answer["content"][0]["input"]["entity_id"] == "MARIA");

  // Gemini responseJsonSchema: candidates[0].content.parts[0].text.
  auto gemini = post_gemini(fake, gemini_body());
  REQUIRE(gemini);
  INFO(gemini->body);
  REQUIRE(gemini->status == 200);
  json gemini_answer = json::parse(gemini->body);
  CHECK(gemini_answer["candidates"][0]["finishReason"] == "STOP");
  CHECK(json::parse(gemini_answer["candidates"][0]["content"]["parts"][0]["text"].get<std::string>())["entity_id"] ==
        "MARIA");

  json stats = fake.stats();
  CHECK(stats["requests"] == 3);
  CHECK(stats["valid"] == 3);
  CHECK(stats["answered"] == 3);
  CHECK(stats["invalid"] == 0);
  CHECK(stats["by_skill"]["character-lock"]["requests"] == 3);
  // The same document went to three providers.
  CHECK(fake.document_count(document_text()) == 3);
  CHECK(stats["duplicates"] == 0);
}

TEST_CASE("the fake provider refuses a malformed request with HTTP 400 and counts its reason", "[fake_provider]") {
  FakeProvider fake(config_for_tests());
  REQUIRE(fake.start().ok());

  std::optional<httplib::Result> result;
  std::string reason;
  SECTION("a wrong OpenAI key") {
    result.emplace(post_openai(fake, openai_body(), "sk-wrong"));
    reason = "header Authorization: wrong key";
  }
  SECTION("no anthropic-version header") {
    result.emplace(post_anthropic(fake, anthropic_body(), false));
    reason = "header anthropic-version: missing";
  }
  SECTION("an unknown top-level field") {
    json body = gemini_body();
    body["temperature"] = 0.2;  // belongs in generationConfig
    result.emplace(post_gemini(fake, body));
    reason = "unknown field \"temperature\"";
  }
  SECTION("a strict schema without additionalProperties false") {
    json body = openai_body();
    body["response_format"]["json_schema"]["schema"].erase("additionalProperties");
    result.emplace(post_openai(fake, body));
    reason = "additionalProperties";
  }
  SECTION("a key in the query string") {
    result.emplace(post_gemini(fake, gemini_body(), "?key=fake-gemini-key"));
    reason = "a key in the URL";
  }
  SECTION("a forced tool that is not declared") {
    json body = anthropic_body();
    body["tool_choice"]["name"] = "other_tool";
    result.emplace(post_anthropic(fake, body));
    reason = "names no declared tool";
  }
  SECTION("a skill the sim does not know") {
    result.emplace(post_openai(fake, openai_body("no-such-skill")));
    reason = "unknown skill";
  }
  REQUIRE(result);
  REQUIRE(*result);
  const httplib::Response& response = result->value();
  CHECK(response.status == 400);
  json error = json::parse(response.body);
  CHECK(error.contains("error"));
  json stats = fake.stats();
  CHECK(stats["invalid"] == 1);
  CHECK(stats["valid"] == 0);
  INFO(stats["invalid_reasons"].dump());
  CHECK(has_reason(stats, reason));
  // The key never appears in what the fake reports.
  CHECK(stats.dump().find("fake-gemini-key") == std::string::npos);
  CHECK(response.body.find("sk-wrong") == std::string::npos);
}

TEST_CASE("a 429 fault with retry_after_s is sent with Retry-After exactly times times", "[fake_provider]") {
  FakeProvider fake(config_for_tests());
  REQUIRE(fake.start().ok());
  REQUIRE(fake.set_faults(json::array({{{"fault", "429"}, {"times", 2}, {"retry_after_s", 7}, {"provider", "openai"}}}))
              .ok());

  // The Anthropic request does not match the rule's provider filter.
  auto other = post_anthropic(fake, anthropic_body());
  REQUIRE(other);
  CHECK(other->status == 200);
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto limited = post_openai(fake, openai_body());
    REQUIRE(limited);
    CHECK(limited->status == 429);
    CHECK(limited->get_header_value("Retry-After") == "7");
    CHECK(json::parse(limited->body)["error"]["code"] == "rate_limit_exceeded");
  }
  auto answered = post_openai(fake, openai_body());
  REQUIRE(answered);
  CHECK(answered->status == 200);

  json stats = fake.stats();
  CHECK(stats["requests"] == 4);
  CHECK(stats["valid"] == 4);
  CHECK(stats["faults_applied"] == 2);
  CHECK(stats["by_fault"]["429"] == 2);
  CHECK(stats["answered"] == 2);
  CHECK(stats["duplicates"] == 2);  // the same OpenAI body three times
  CHECK(stats["by_provider"]["openai"]["faults_applied"] == 2);
  CHECK(stats["faults"][0]["times"] == 0);
}

TEST_CASE("the fake provider's faults and caching take the shape of each provider", "[fake_provider]") {
  FakeProvider fake(config_for_tests());
  REQUIRE(fake.start().ok());

  SECTION("Anthropic's marked system block is written to the cache once, then read") {
    auto first = post_anthropic(fake, anthropic_body());
    auto second = post_anthropic(fake, anthropic_body());
    REQUIRE(first);
    REQUIRE(second);
    const int64_t system_tokens = static_cast<int64_t>((k_system.size() + 3) / 4);
    json first_usage = json::parse(first->body)["usage"];
    json second_usage = json::parse(second->body)["usage"];
    CHECK(first_usage["cache_creation_input_tokens"] == system_tokens);
    CHECK(first_usage["cache_read_input_tokens"] == 0);
    CHECK(second_usage["cache_creation_input_tokens"] == 0);
    CHECK(second_usage["cache_read_input_tokens"] == system_tokens);
    CHECK(second_usage["input_tokens"] == (anthropic_body().dump().size() + 3) / 4 - system_tokens);
  }
  SECTION("a Gemini 503 carries its retry delay in RetryInfo") {
    REQUIRE(fake.set_faults(json::array({{{"fault", "503"}, {"retry_after_s", 3}}})).ok());
    auto result = post_gemini(fake, gemini_body());
    REQUIRE(result);
    CHECK(result->status == 503);
    json error = json::parse(result->body)["error"];
    CHECK(error["status"] == "UNAVAILABLE");
    CHECK(error["details"][0]["retryDelay"] == "3s");
  }
  SECTION("an Anthropic 529 is an overloaded_error") {
    REQUIRE(fake.set_faults(json::array({{{"fault", "529"}}})).ok());
    auto result = post_anthropic(fake, anthropic_body());
    REQUIRE(result);
    CHECK(result->status == 529);
    CHECK(json::parse(result->body)["error"]["type"] == "overloaded_error");
  }
  SECTION("a reset connection gives the client no response at all") {
    REQUIRE(fake.set_faults(json::array({{{"fault", "reset"}}})).ok());
    auto result = post_openai(fake, openai_body());
    CHECK(!result);
    CHECK(fake.stats()["faults_applied"] == 1);
  }
  SECTION("a truncated body ends the transfer early") {
    REQUIRE(fake.set_faults(json::array({{{"fault", "truncated"}}})).ok());
    auto result = post_openai(fake, openai_body());
    CHECK(!result);
  }
  SECTION("a refusal is typed in each format") {
    REQUIRE(fake.set_faults(json::array({{{"fault", "refusal"}, {"times", -1}}})).ok());
    auto openai = post_openai(fake, openai_body());
    auto anthropic = post_anthropic(fake, anthropic_body());
    auto gemini = post_gemini(fake, gemini_body());
    REQUIRE(openai);
    REQUIRE(anthropic);
    REQUIRE(gemini);
    json message = json::parse(openai->body)["choices"][0]["message"];
    CHECK(message["content"].is_null());
    CHECK(message["refusal"].is_string());
    CHECK(json::parse(anthropic->body)["stop_reason"] == "refusal");
    json blocked = json::parse(gemini->body);
    CHECK(!blocked.contains("candidates"));
    CHECK(blocked["promptFeedback"]["blockReason"] == "SAFETY");
    CHECK(fake.stats()["answered"] == 0);
  }
  SECTION("skip lets requests through before the fault strikes") {
    REQUIRE(fake.set_faults(json::array({{{"fault", "500"}, {"skip", 1}}})).ok());
    auto through = post_openai(fake, openai_body());
    auto failed = post_openai(fake, openai_body());
    REQUIRE(through);
    REQUIRE(failed);
    CHECK(through->status == 200);
    CHECK(failed->status == 500);
    CHECK(json::parse(failed->body)["error"]["type"] == "server_error");
  }
  SECTION("an unknown fault is refused and the rules stay") {
    REQUIRE(fake.set_faults(json::array({{{"fault", "429"}}})).ok());
    CHECK(!fake.set_faults(json::array({{{"fault", "teapot"}}})).ok());
    CHECK(fake.stats()["faults"].size() == 1);
  }
}
