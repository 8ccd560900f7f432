// The three HTTP model adapters (http_model.hpp) against a fake HttpClient: what goes on the wire
// for each kind (as the official SDKs send it, backend-apis.md §1-3), how answers, refusals,
// cut-offs and blocks come back, how every error status is classified, and the schema
// transformations. No network.

#include <catch2/catch.hpp>
#include <cstdint>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "avps/backends/http_model.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "support/fake_gate_context.hpp"

using namespace avps;
using backends::CallTrace;
using backends::HttpModelBackend;
using backends::HttpModelConfig;
using backends::HttpOptions;
using backends::HttpRequest;
using backends::HttpResponse;
using backends::ModelRequest;
using backends::ModelResponse;
using backends::WireKind;
using nlohmann::json;
using testing::source_dir;

namespace {

const std::string k_key = "sk-test-SECRET-0123456789";

// Captures what it was asked to send and answers with a canned response (or a transport error).
class FakeHttpClient : public backends::HttpClient {
 public:
  Result<HttpResponse> send(const HttpRequest& request, const HttpOptions& options) override {
    requests.push_back(request);
    last_options = options;
    if (transport_error) {
      return *transport_error;
    }
    return response;
  }

  std::vector<HttpRequest> requests;
  HttpOptions last_options;
  HttpResponse response;
  std::optional<Error> transport_error;
};

json read_schema(const std::string& file) {
  auto text = core::read_file(source_dir() / "schemas" / file);
  REQUIRE(text.ok());
  auto parsed = core::parse_json(*text, file);
  REQUIRE(parsed.ok());
  return std::move(parsed).value();
}

// A small output schema with one optional member, so strict mode has something to transform.
json verdict_schema() {
  return json::parse(R"({
    "type": "object", "additionalProperties": false,
    "required": ["verdict", "items"],
    "properties": {
      "verdict": {"type": "string", "enum": ["PASS", "FAIL"]},
      "note": {"type": "string", "minLength": 1},
      "items": {"type": "array", "items": {
        "type": "object", "required": ["id"],
        "properties": {"id": {"type": "string"}, "score": {"type": "number", "minimum": 0, "maximum": 10}}}}
    }})");
}

ModelRequest sample_request() {
  ModelRequest request;
  request.skill = "plausibility-auditor";
  request.model = "m";
  request.tier = "t2";
  request.prompt = "You audit plausibility.";
  request.scope = {{"scene_id", "S03"}};
  request.inputs = {{"SCENES", {{"kind", "SCENES"}}}, {"BRIEF", "A heist."}};
  request.output_schema = verdict_schema();
  request.findings = json::array({"too many coincidences"});
  request.max_output_tokens = 2048;
  request.seed = 7;
  return request;
}

HttpModelConfig config_for(WireKind kind, json options = json::object()) {
  HttpModelConfig config;
  config.kind = kind;
  config.api_key = k_key;
  config.options = std::move(options);
  switch (kind) {
    case WireKind::openai_chat:
      config.model_id = "gpt-mini";
      config.endpoint = "https://api.openai.com/v1/";
      config.provider_model = "gpt-5-mini";
      break;
    case WireKind::anthropic_messages:
      config.model_id = "claude";
      config.endpoint = "https://api.anthropic.com";
      config.provider_model = "claude-sonnet-4-5";
      break;
    case WireKind::gemini_generate:
      config.model_id = "gemini";
      config.endpoint = "https://generativelanguage.googleapis.com";
      config.provider_model = "gemini-2.5-flash";
      break;
  }
  return config;
}

std::string header_of(const HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) {
      return value;
    }
  }
  return "";
}

HttpRequest built(const HttpModelConfig& config, const ModelRequest& request) {
  Result<HttpRequest> wire = backends::build_wire_request(config, request);
  REQUIRE(wire.ok());
  return std::move(wire).value();
}

json body_of(const HttpRequest& request) { return json::parse(request.body); }

HttpResponse reply(int status, const json& body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump();
  response.headers = std::move(headers);
  return response;
}

Result<ModelResponse> parse(const HttpModelConfig& config, const HttpResponse& response,
                            const ModelRequest& request = sample_request()) {
  return backends::parse_wire_response(config, request, response);
}

// Every object schema in `schema` (following properties, items, anyOf).
void each_object(const json& schema, const std::function<void(const json&)>& visit) {
  if (!schema.is_object()) {
    return;
  }
  if (schema.contains("properties")) {
    visit(schema);
    for (const auto& [name, sub] : schema["properties"].items()) {
      each_object(sub, visit);
    }
  }
  if (schema.contains("items")) {
    each_object(schema["items"], visit);
  }
  if (schema.contains("anyOf")) {
    for (const json& branch : schema["anyOf"]) {
      each_object(branch, visit);
    }
  }
}

}  // namespace

// ---- the request on the wire ------------------------------------------------------------------

TEST_CASE("openai_chat sends a strict json_schema chat completion", "[http]") {
  HttpModelConfig config = config_for(WireKind::openai_chat, {{"temperature", 0.2}});
  HttpRequest wire = built(config, sample_request());

  CHECK(wire.method == "POST");
  CHECK(wire.url == "https://api.openai.com/v1/chat/completions");
  CHECK(header_of(wire, "authorization") == "Bearer " + k_key);
  CHECK(header_of(wire, "content-type") == "application/json");

  json body = body_of(wire);
  CHECK(body["model"] == "gpt-5-mini");
  REQUIRE(body["messages"].size() == 2);
  CHECK(body["messages"][0] == json{{"role", "system"}, {"content", "You audit plausibility."}});
  CHECK(body["messages"][1]["role"] == "user");
  const json& parts = body["messages"][1]["content"];
  REQUIRE(parts.size() == 1);
  CHECK(parts[0]["type"] == "text");
  CHECK(parts[0]["text"] == *backends::request_document(sample_request()));
  CHECK(body["max_completion_tokens"] == 2048);
  CHECK_FALSE(body.contains("max_tokens"));
  CHECK(body["temperature"] == 0.2);
  CHECK_FALSE(body.contains("seed"));

  const json& format = body["response_format"];
  CHECK(format["type"] == "json_schema");
  CHECK(format["json_schema"]["name"] == "plausibility-auditor");
  CHECK(format["json_schema"]["strict"] == true);
  const json& schema = format["json_schema"]["schema"];
  CHECK(schema["required"] == json::array({"items", "note", "verdict"}));
  CHECK(schema["properties"]["note"]["type"] == json::array({"string", "null"}));
  CHECK_FALSE(schema["properties"]["note"].contains("minLength"));  // unsupported in strict mode
  CHECK(schema["properties"]["items"]["items"]["additionalProperties"] == false);
  CHECK(schema["properties"]["items"]["items"]["required"] == json::array({"id", "score"}));
}

TEST_CASE("openai_chat options change the token field, role, seed, modes and extras", "[http]") {
  ModelRequest request = sample_request();
  request.skill = "odd name/with:chars";
  HttpModelConfig config = config_for(WireKind::openai_chat, {{"token_param", "max_tokens"},
                                                              {"system_role", "developer"},
                                                              {"seed", true},
                                                              {"schema_mode", "json_schema"},
                                                              {"extra_headers", {{"OpenAI-Project", "proj_1"}}},
                                                              {"extra_body", {{"structured_outputs", {{"x", 1}}}}}});
  HttpRequest wire = built(config, request);
  json body = body_of(wire);
  CHECK(body["max_tokens"] == 2048);
  CHECK_FALSE(body.contains("max_completion_tokens"));
  CHECK(body["messages"][0]["role"] == "developer");
  CHECK(body["seed"] == 7);
  CHECK(body["response_format"]["json_schema"]["strict"] == false);
  CHECK(body["response_format"]["json_schema"]["name"] == "odd_name_with_chars");
  // Non-strict: the schema as the skill wrote it (refs inlined), optional members stay optional
  CHECK(body["response_format"]["json_schema"]["schema"]["required"] == json::array({"verdict", "items"}));
  CHECK(body["structured_outputs"] == json{{"x", 1}});
  CHECK(header_of(wire, "OpenAI-Project") == "proj_1");

  // json_object: the legacy JSON mode, with the schema in the prompt
  config.options = {{"schema_mode", "json_object"}};
  body = body_of(built(config, request));
  CHECK(body["response_format"] == json{{"type", "json_object"}});
  const json& parts = body["messages"][1]["content"];
  REQUIRE(parts.size() == 2);
  const std::string schema_text = parts[1]["text"].get<std::string>();
  CHECK(schema_text.rfind("Answer with one JSON object that validates against this JSON Schema:\n", 0) == 0);
  CHECK(json::parse(schema_text.substr(schema_text.find('\n') + 1)) == backends::wire_schema(request));

  // prompt_only: no response_format at all; no max tokens field when there is no cap
  config.options = {{"schema_mode", "prompt_only"}};
  request.max_output_tokens = 0;
  body = body_of(built(config, request));
  CHECK_FALSE(body.contains("response_format"));
  CHECK_FALSE(body.contains("max_completion_tokens"));
  CHECK(body["messages"][1]["content"].size() == 2);
}

TEST_CASE("a schema that cannot be strict is sent non-strict", "[http]") {
  ModelRequest request = sample_request();
  request.output_schema = {{"type", "object"},
                           {"properties", {{"scores", {{"type", "object"}, {"additionalProperties", {{"type", "number"}}}}}}},
                           {"required", {"scores"}}};
  json body = body_of(built(config_for(WireKind::openai_chat), request));
  CHECK(body["response_format"]["json_schema"]["strict"] == false);
  CHECK(body["response_format"]["json_schema"]["schema"] == backends::wire_schema(request));
}

TEST_CASE("images go after the document as a label and an image part", "[http]") {
  ModelRequest request = sample_request();
  request.images = {{"image/png", std::string("\x89PNG\r\n\x1a\n", 8), "S01_SH01 frame 1 of 2"},
                    {"image/jpeg", "abc", "S01_SH01 frame 2 of 2"}};
  const std::string png_b64 = "iVBORw0KGgo=";
  const std::string abc_b64 = "YWJj";

  json openai = body_of(built(config_for(WireKind::openai_chat, {{"image_detail", "low"}}), request));
  const json& o = openai["messages"][1]["content"];
  REQUIRE(o.size() == 5);
  CHECK(o[1] == json{{"type", "text"}, {"text", "S01_SH01 frame 1 of 2"}});
  CHECK(o[2] == json{{"type", "image_url"},
                     {"image_url", {{"url", "data:image/png;base64," + png_b64}, {"detail", "low"}}}});
  CHECK(o[4]["image_url"]["url"] == "data:image/jpeg;base64," + abc_b64);

  json anthropic = body_of(built(config_for(WireKind::anthropic_messages), request));
  const json& a = anthropic["messages"][0]["content"];
  REQUIRE(a.size() == 5);
  CHECK(a[1] == json{{"type", "text"}, {"text", "S01_SH01 frame 1 of 2"}});
  CHECK(a[2] == json{{"type", "image"},
                     {"source", {{"type", "base64"}, {"media_type", "image/png"}, {"data", png_b64}}}});

  json gemini = body_of(built(config_for(WireKind::gemini_generate), request));
  const json& g = gemini["contents"][0]["parts"];
  REQUIRE(g.size() == 5);
  CHECK(g[1] == json{{"text", "S01_SH01 frame 1 of 2"}});
  CHECK(g[4] == json{{"inlineData", {{"mimeType", "image/jpeg"}, {"data", abc_b64}}}});
}

TEST_CASE("anthropic_messages sends a forced tool with a cached system prompt", "[http]") {
  HttpModelConfig config = config_for(WireKind::anthropic_messages, {{"betas", {"a-2025", "b-2026"}}});
  HttpRequest wire = built(config, sample_request());

  CHECK(wire.url == "https://api.anthropic.com/v1/messages");
  CHECK(header_of(wire, "x-api-key") == k_key);
  CHECK(header_of(wire, "anthropic-version") == "2023-06-01");
  CHECK(header_of(wire, "anthropic-beta") == "a-2025,b-2026");
  CHECK(header_of(wire, "authorization").empty());

  json body = body_of(wire);
  CHECK(body["model"] == "claude-sonnet-4-5");
  CHECK(body["max_tokens"] == 2048);
  CHECK(body["system"] == json::array({json{{"type", "text"},
                                            {"text", "You audit plausibility."},
                                            {"cache_control", {{"type", "ephemeral"}}}}}));
  REQUIRE(body["messages"].size() == 1);
  CHECK(body["messages"][0]["role"] == "user");
  CHECK(body["messages"][0]["content"][0]["text"] == *backends::request_document(sample_request()));
  REQUIRE(body["tools"].size() == 1);
  CHECK(body["tools"][0]["name"] == "emit_result");
  CHECK(body["tools"][0]["description"] == "Return the result");
  CHECK(body["tools"][0]["input_schema"] == backends::wire_schema(sample_request()));
  CHECK(body["tool_choice"] ==
        json{{"type", "tool"}, {"name", "emit_result"}, {"disable_parallel_tool_use", true}});
  CHECK_FALSE(body.contains("temperature"));
  CHECK_FALSE(body.contains("output_config"));
}

TEST_CASE("anthropic_messages output_config mode strips what Anthropic refuses", "[http]") {
  ModelRequest request = sample_request();
  request.max_output_tokens = 0;
  HttpModelConfig config = config_for(WireKind::anthropic_messages, {{"json_mode", "output_config"},
                                                                    {"prompt_caching", false},
                                                                    {"api_version", "2026-10-21"},
                                                                    {"temperature", 1}});
  HttpRequest wire = built(config, request);
  CHECK(header_of(wire, "anthropic-version") == "2026-10-21");
  CHECK(header_of(wire, "anthropic-beta").empty());
  json body = body_of(wire);
  CHECK(body["max_tokens"] == 4096);
  CHECK(body["system"] == "You audit plausibility.");
  CHECK(body["temperature"] == 1);
  CHECK_FALSE(body.contains("tools"));
  const json& format = body["output_config"]["format"];
  CHECK(format["type"] == "json_schema");
  const json& schema = format["schema"];
  CHECK(schema["additionalProperties"] == false);
  CHECK_FALSE(schema["properties"]["note"].contains("minLength"));
  const json& item = schema["properties"]["items"]["items"];
  CHECK(item["additionalProperties"] == false);
  CHECK_FALSE(item["properties"]["score"].contains("minimum"));
  CHECK_FALSE(item["properties"]["score"].contains("maximum"));

  // prompt_only: the schema in the message, nothing structured on the wire
  config.options = {{"json_mode", "prompt_only"}};
  body = body_of(built(config, request));
  CHECK_FALSE(body.contains("tools"));
  CHECK_FALSE(body.contains("output_config"));
  CHECK(body["messages"][0]["content"].size() == 2);
}

TEST_CASE("anthropic_messages output_config mode sends a schema with a map as a forced tool", "[http]") {
  // A gate's "scores" is a map: output_config would have to close it, and Anthropic refuses it.
  ModelRequest request = sample_request();
  request.output_schema = {{"type", "object"},
                           {"required", {"scores"}},
                           {"properties", {{"scores", {{"type", "object"}, {"additionalProperties", {{"type", "integer"}}}}}}}};
  HttpModelConfig config = config_for(WireKind::anthropic_messages, {{"json_mode", "output_config"}});
  json body = body_of(built(config, request));
  CHECK_FALSE(body.contains("output_config"));
  REQUIRE(body.contains("tools"));
  CHECK(body["tool_choice"]["type"] == "tool");
  // and the answer comes back from the tool's input
  HttpResponse reply{200, {}, json{{"model", "claude-x"},
                                   {"stop_reason", "tool_use"},
                                   {"content", json::array({json{{"type", "tool_use"},
                                                                 {"name", body["tools"][0]["name"]},
                                                                 {"input", {{"scores", {{"face", 2}}}}}}})},
                                   {"usage", {{"input_tokens", 10}, {"output_tokens", 5}}}}
                                  .dump(),
                     0};
  auto answer = parse_wire_response(config, request, reply);
  REQUIRE(answer.ok());
  CHECK(json::parse(answer->text) == json{{"scores", {{"face", 2}}}});
}

TEST_CASE("gemini_generate sends responseJsonSchema in generationConfig", "[http]") {
  HttpModelConfig config = config_for(WireKind::gemini_generate, {{"thinking_level", "LOW"}, {"temperature", 0.5}});
  HttpRequest wire = built(config, sample_request());

  CHECK(wire.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
  CHECK(header_of(wire, "x-goog-api-key") == k_key);
  CHECK(header_of(wire, "authorization").empty());

  json body = body_of(wire);
  CHECK(body["systemInstruction"] == json{{"parts", json::array({json{{"text", "You audit plausibility."}}})}});
  REQUIRE(body["contents"].size() == 1);
  CHECK(body["contents"][0]["role"] == "user");
  CHECK(body["contents"][0]["parts"][0] == json{{"text", *backends::request_document(sample_request())}});
  const json& generation = body["generationConfig"];
  CHECK(generation["responseMimeType"] == "application/json");
  CHECK(generation["responseJsonSchema"] == backends::wire_schema(sample_request()));
  CHECK_FALSE(generation.contains("responseSchema"));
  CHECK(generation["maxOutputTokens"] == 2048);
  CHECK(generation["temperature"] == 0.5);
  CHECK(generation["thinkingConfig"] == json{{"thinkingLevel", "LOW"}});

  config.options = {{"json_mode", "prompt_only"}};
  body = body_of(built(config, sample_request()));
  CHECK_FALSE(body["generationConfig"].contains("responseJsonSchema"));
  CHECK(body["contents"][0]["parts"].size() == 2);
}

TEST_CASE("the key is only ever a header, and no key means no auth header", "[http]") {
  ModelRequest request = sample_request();
  request.images = {{"image/png", "xyz", "frame"}};
  for (WireKind kind : {WireKind::openai_chat, WireKind::anthropic_messages, WireKind::gemini_generate}) {
    INFO(backends::wire_kind_name(kind));
    HttpRequest wire = built(config_for(kind), request);
    CHECK(wire.body.find(k_key) == std::string::npos);
    CHECK(wire.url.find(k_key) == std::string::npos);
    CHECK(wire.url.find('?') == std::string::npos);

    HttpModelConfig keyless = config_for(kind);
    keyless.api_key.clear();
    HttpRequest local = built(keyless, request);
    for (const auto& [name, value] : local.headers) {
      CHECK(name != "authorization");
      CHECK(name != "x-api-key");
      CHECK(name != "x-goog-api-key");
    }
  }
}

// ---- answers ----------------------------------------------------------------------------------

TEST_CASE("openai_chat answers, usage with cached tokens, refusal, cut-off", "[http]") {
  HttpModelConfig config = config_for(WireKind::openai_chat, {{"schema_mode", "json_schema"}});
  auto answer = [](const json& message, const std::string& finish) {
    return reply(200, {{"id", "chatcmpl-1"},
                       {"model", "gpt-5-mini-2025-08-07"},
                       {"choices", json::array({json{{"index", 0}, {"finish_reason", finish}, {"message", message}}})},
                       {"usage",
                        {{"prompt_tokens", 812},
                         {"completion_tokens", 230},
                         {"prompt_tokens_details", {{"cached_tokens", 512}}}}}});
  };
  Result<ModelResponse> normal =
      parse(config, answer({{"role", "assistant"}, {"content", R"({"verdict":"PASS","items":[]})"}, {"refusal", nullptr}},
                           "stop"));
  REQUIRE(normal.ok());
  CHECK(normal->text == R"({"verdict":"PASS","items":[]})");
  CHECK(normal->stop_reason.empty());
  CHECK(normal->model == "gpt-5-mini-2025-08-07");
  CHECK(normal->usage.input_tokens == 812);
  CHECK(normal->usage.output_tokens == 230);
  CHECK(normal->usage.cached_input_tokens == 512);
  CHECK_FALSE(normal->usage.provider_cost_micro_usd.has_value());  // OpenAI reports no cost

  Result<ModelResponse> refused =
      parse(config, answer({{"role", "assistant"}, {"content", nullptr}, {"refusal", "I can't help with that."}}, "stop"));
  REQUIRE(refused.ok());
  CHECK(refused->stop_reason == "refusal: I can't help with that.");
  CHECK(refused->text.empty());

  Result<ModelResponse> cut = parse(config, answer({{"role", "assistant"}, {"content", R"({"verdict":"PA)"}}, "length"));
  REQUIRE(cut.ok());
  CHECK(cut->stop_reason.rfind("length: ", 0) == 0);
  CHECK(cut->text == R"({"verdict":"PA)");

  Result<ModelResponse> filtered = parse(config, answer({{"role", "assistant"}, {"content", ""}}, "content_filter"));
  REQUIRE(filtered.ok());
  CHECK(filtered->stop_reason == "blocked: content_filter");
}

TEST_CASE("a strict-mode answer gets its optional nulls removed", "[http]") {
  HttpModelConfig config = config_for(WireKind::openai_chat);  // json_schema_strict by default
  HttpResponse response =
      reply(200, {{"choices",
                   json::array({json{{"finish_reason", "stop"},
                                     {"message",
                                      {{"content", R"({"verdict":"FAIL","note":null,"items":[{"id":"a","score":null}]})"}}}}})}});
  Result<ModelResponse> answer = parse(config, response);
  REQUIRE(answer.ok());
  CHECK(json::parse(answer->text) == json::parse(R"({"verdict":"FAIL","items":[{"id":"a"}]})"));
}

TEST_CASE("anthropic_messages answers from the tool_use block, usage sums the cache", "[http]") {
  HttpModelConfig config = config_for(WireKind::anthropic_messages);
  HttpResponse response = reply(
      200, {{"type", "message"},
            {"model", "claude-sonnet-4-5-20250929"},
            {"content", json::array({json{{"type", "thinking"}, {"thinking", "hmm"}, {"signature", "x"}},
                                     json{{"type", "text"}, {"text", "Here you go."}},
                                     json{{"type", "tool_use"},
                                          {"id", "toolu_1"},
                                          {"name", "emit_result"},
                                          {"input", {{"verdict", "PASS"}, {"items", json::array()}}}}})},
            {"stop_reason", "tool_use"},
            {"usage",
             {{"input_tokens", 100},
              {"output_tokens", 300},
              {"cache_creation_input_tokens", 20},
              {"cache_read_input_tokens", 1000}}}});
  Result<ModelResponse> answer = parse(config, response);
  REQUIRE(answer.ok());
  CHECK(answer->text == R"({"items":[],"verdict":"PASS"})");
  CHECK(answer->stop_reason.empty());
  CHECK(answer->usage.input_tokens == 1120);
  CHECK(answer->usage.cached_input_tokens == 1000);
  CHECK(answer->usage.output_tokens == 300);

  // Text mode: the text blocks joined, thinking skipped
  config.options = {{"json_mode", "output_config"}};
  HttpResponse text_reply = reply(
      200, {{"content", json::array({json{{"type", "redacted_thinking"}, {"data", "..."}},
                                     json{{"type", "text"}, {"text", R"({"verdict":)"}},
                                     json{{"type", "text"}, {"text", R"("PASS","items":[]})"}}})},
            {"stop_reason", "end_turn"}});
  Result<ModelResponse> joined = parse(config, text_reply);
  REQUIRE(joined.ok());
  CHECK(joined->text == R"({"verdict":"PASS","items":[]})");

  HttpResponse refusal = reply(
      200, {{"content", json::array({json{{"type", "text"}, {"text", "I won't write that."}}})}, {"stop_reason", "refusal"}});
  Result<ModelResponse> refused = parse(config, refusal);
  REQUIRE(refused.ok());
  CHECK(refused->stop_reason == "refusal: I won't write that.");

  HttpResponse cut = reply(200, {{"content", json::array()}, {"stop_reason", "max_tokens"}});
  Result<ModelResponse> cut_off = parse(config, cut);
  REQUIRE(cut_off.ok());
  CHECK(cut_off->stop_reason.rfind("length: ", 0) == 0);
}

TEST_CASE("gemini_generate answers, skips thoughts, reports blocks and cut-offs", "[http]") {
  HttpModelConfig config = config_for(WireKind::gemini_generate);
  HttpResponse response = reply(
      200, {{"candidates",
             json::array({json{{"content",
                                {{"role", "model"},
                                 {"parts", json::array({json{{"text", "thinking..."}, {"thought", true}},
                                                        json{{"text", R"({"verdict":"PASS","items":[]})"}}})}}},
                               {"finishReason", "STOP"}}})},
            {"usageMetadata",
             {{"promptTokenCount", 900},
              {"candidatesTokenCount", 200},
              {"thoughtsTokenCount", 150},
              {"cachedContentTokenCount", 300}}},
            {"modelVersion", "gemini-2.5-flash-001"}});
  Result<ModelResponse> answer = parse(config, response);
  REQUIRE(answer.ok());
  CHECK(answer->text == R"({"verdict":"PASS","items":[]})");
  CHECK(answer->stop_reason.empty());
  CHECK(answer->usage.input_tokens == 900);
  CHECK(answer->usage.output_tokens == 350);
  CHECK(answer->usage.cached_input_tokens == 300);
  CHECK(answer->model == "gemini-2.5-flash-001");

  Result<ModelResponse> blocked =
      parse(config, reply(200, {{"promptFeedback", {{"blockReason", "SAFETY"}}},
                                {"usageMetadata", {{"promptTokenCount", 40}}}}));
  REQUIRE(blocked.ok());
  CHECK(blocked->stop_reason == "blocked: SAFETY");
  CHECK(blocked->text.empty());
  CHECK(blocked->usage.input_tokens == 40);

  auto finished = [&](const std::string& reason) {
    return parse(config, reply(200, {{"candidates", json::array({json{
                                                        {"content", {{"parts", json::array({json{{"text", "{"}}})}}},
                                                        {"finishReason", reason}}})}}));
  };
  Result<ModelResponse> cut = finished("MAX_TOKENS");
  REQUIRE(cut.ok());
  CHECK(cut->stop_reason.rfind("length: ", 0) == 0);
  Result<ModelResponse> unsafe = finished("SAFETY");
  REQUIRE(unsafe.ok());
  CHECK(unsafe->stop_reason == "blocked: SAFETY");
  Result<ModelResponse> other = finished("OTHER");
  REQUIRE(other.ok());
  CHECK_FALSE(other->stop_reason.empty());
}

// ---- errors -----------------------------------------------------------------------------------

TEST_CASE("error statuses are classified as the providers mean them", "[http]") {
  const HttpModelConfig openai = config_for(WireKind::openai_chat);
  const HttpModelConfig anthropic = config_for(WireKind::anthropic_messages);
  const HttpModelConfig gemini = config_for(WireKind::gemini_generate);
  auto openai_error = [](const std::string& type, const std::string& message, json code = nullptr) {
    return json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}};
  };
  auto anthropic_error = [](const std::string& type) {
    return json{{"type", "error"}, {"error", {{"type", type}, {"message", "provider says " + type}}}};
  };

  struct Row {
    const HttpModelConfig* config;
    HttpResponse response;
    ErrorCode code;
    std::optional<int64_t> retry_after;
  };
  const std::vector<Row> rows = {
      {&openai, reply(400, openai_error("invalid_request_error", "bad schema")), ErrorCode::rejected, std::nullopt},
      {&openai, reply(401, openai_error("invalid_request_error", "Incorrect API key")), ErrorCode::rejected,
       std::nullopt},
      {&openai, reply(404, openai_error("invalid_request_error", "model not found")), ErrorCode::rejected,
       std::nullopt},
      {&openai, reply(408, openai_error("timeout", "slow")), ErrorCode::timeout, std::nullopt},
      {&openai, reply(409, openai_error("conflict", "busy")), ErrorCode::backend_unavailable, std::nullopt},
      {&openai, reply(429, openai_error("requests", "Rate limit reached"), {{"retry-after", "7"}}),
       ErrorCode::rate_limited, 7000},
      {&openai, reply(429, openai_error("requests", "Rate limit reached"), {{"retry-after-ms", "250"}, {"retry-after", "7"}}),
       ErrorCode::rate_limited, 250},
      {&openai, reply(429, openai_error("insufficient_quota", "You exceeded your current quota", "insufficient_quota"),
                      {{"retry-after", "1"}}),
       ErrorCode::rejected, std::nullopt},
      {&openai, reply(500, openai_error("server_error", "oops")), ErrorCode::backend_unavailable, std::nullopt},
      {&openai, reply(502, json::object()), ErrorCode::backend_unavailable, std::nullopt},
      {&openai, reply(503, openai_error("server_error", "overloaded"), {{"retry-after", "2"}}),
       ErrorCode::backend_unavailable, 2000},
      {&openai, reply(504, json::object()), ErrorCode::timeout, std::nullopt},
      {&openai, reply(503, openai_error("server_error", "down"), {{"x-should-retry", "false"}}), ErrorCode::rejected,
       std::nullopt},
      {&openai, reply(400, openai_error("invalid_request_error", "flaky"), {{"x-should-retry", "true"}}),
       ErrorCode::backend_unavailable, std::nullopt},
      {&anthropic, reply(529, anthropic_error("overloaded_error")), ErrorCode::backend_unavailable, std::nullopt},
      {&anthropic, reply(429, anthropic_error("rate_limit_error"), {{"retry-after", "30"}}), ErrorCode::rate_limited,
       30000},
      {&anthropic,
       reply(429, {{"type", "error"},
                   {"error",
                    {{"type", "rate_limit_error"},
                     {"message", "spend limit"},
                     {"details", {{"error_code", "enforced_spend_limit_reached"}}}}}}),
       ErrorCode::rejected, std::nullopt},
      {&anthropic, reply(413, anthropic_error("invalid_request_error")), ErrorCode::rejected, std::nullopt},
      {&gemini,
       reply(429, {{"error",
                    {{"code", 429},
                     {"message", "Resource has been exhausted"},
                     {"status", "RESOURCE_EXHAUSTED"},
                     {"details", json::array({json{{"@type", "type.googleapis.com/google.rpc.QuotaFailure"}},
                                              json{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                                   {"retryDelay", "37s"}}})}}}}),
       ErrorCode::rate_limited, 37000},
      {&gemini,
       reply(503, {{"error",
                    {{"code", 503},
                     {"message", "The model is overloaded"},
                     {"status", "UNAVAILABLE"},
                     {"details", json::array({json{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                                   {"retryDelay", "1.5s"}}})}}}}),
       ErrorCode::backend_unavailable, 1500},
      {&gemini,
       reply(429, {{"error",
                    {{"code", 429},
                     {"message", "Quota exceeded for the day"},
                     {"status", "RESOURCE_EXHAUSTED"},
                     {"details", json::array({json{{"@type", "type.googleapis.com/google.rpc.QuotaFailure"}}})}}}}),
       ErrorCode::rejected, std::nullopt},
      {&gemini, reply(400, {{"error", {{"code", 400}, {"message", "bad"}, {"status", "INVALID_ARGUMENT"}}}}),
       ErrorCode::rejected, std::nullopt},
  };
  for (const Row& row : rows) {
    INFO(row.response.status << " " << row.response.body);
    Result<ModelResponse> parsed = parse(*row.config, row.response);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code == row.code);
    CHECK(parsed.error().retry_after_ms == row.retry_after);
    CHECK(parsed.error().message.find("HTTP " + std::to_string(row.response.status)) != std::string::npos);
    CHECK(parsed.error().message.find(k_key) == std::string::npos);
  }
}

TEST_CASE("Retry-After as an HTTP date is the time until then, or 0 when past", "[http]") {
  auto http_date = [](std::time_t at) {
    std::tm tm{};
    gmtime_r(&at, &tm);
    char text[64];
    std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(text);
  };
  const HttpModelConfig config = config_for(WireKind::openai_chat);
  Result<ModelResponse> future =
      parse(config, reply(429, json::object(), {{"retry-after", http_date(std::time(nullptr) + 30)}}));
  REQUIRE_FALSE(future.ok());
  CHECK(future.error().code == ErrorCode::rate_limited);
  REQUIRE(future.error().retry_after_ms.has_value());
  CHECK(*future.error().retry_after_ms > 27'000);
  CHECK(*future.error().retry_after_ms <= 30'000);

  Result<ModelResponse> past =
      parse(config, reply(429, json::object(), {{"retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"}}));
  REQUIRE_FALSE(past.ok());
  CHECK(past.error().retry_after_ms == std::optional<int64_t>(0));
}

TEST_CASE("error messages name model, host, status, type and the provider's words", "[http]") {
  const HttpModelConfig config = config_for(WireKind::anthropic_messages);
  Result<ModelResponse> parsed = parse(
      config, reply(429, {{"type", "error"}, {"error", {{"type", "rate_limit_error"}, {"message", "Slow down"}}}}));
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().message == "claude at api.anthropic.com: HTTP 429 rate_limit_error: Slow down");

  // vLLM's older flat error body
  const HttpModelConfig local = [] {
    HttpModelConfig c = config_for(WireKind::openai_chat);
    c.endpoint = "http://127.0.0.1:8000/v1";
    c.model_id = "qwen-local";
    return c;
  }();
  Result<ModelResponse> flat = parse(
      local, reply(400, {{"object", "error"}, {"message", "max_tokens is too large"}, {"type", "BadRequestError"}, {"code", 400}}));
  REQUIRE_FALSE(flat.ok());
  CHECK(flat.error().message == "qwen-local at 127.0.0.1:8000: HTTP 400 BadRequestError: max_tokens is too large");

  // A long provider message is capped; an echoed key is scrubbed
  Result<ModelResponse> noisy = parse(
      config, reply(401, {{"error", {{"type", "authentication_error"}, {"message", "bad key " + k_key + std::string(1000, 'x')}}}}));
  REQUIRE_FALSE(noisy.ok());
  CHECK(noisy.error().message.size() < 420);
  CHECK(noisy.error().message.find(k_key) == std::string::npos);

  // An HTML error page from a proxy
  HttpResponse page;
  page.status = 502;
  page.body = "<html><head><title>502 Bad Gateway</title></head></html>";
  Result<ModelResponse> proxy = parse(config, page);
  REQUIRE_FALSE(proxy.ok());
  CHECK(proxy.error().code == ErrorCode::backend_unavailable);
  CHECK(proxy.error().message.find("502 Bad Gateway") != std::string::npos);
}

TEST_CASE("a 2xx that is not JSON or not an answer is backend_unavailable", "[http]") {
  for (WireKind kind : {WireKind::openai_chat, WireKind::anthropic_messages, WireKind::gemini_generate}) {
    INFO(backends::wire_kind_name(kind));
    const HttpModelConfig config = config_for(kind);
    HttpResponse garbage;
    garbage.status = 200;
    garbage.body = "<html>captive portal</html>";
    Result<ModelResponse> not_json = parse(config, garbage);
    REQUIRE_FALSE(not_json.ok());
    CHECK(not_json.error().code == ErrorCode::backend_unavailable);

    HttpResponse truncated;
    truncated.status = 200;
    truncated.body = R"({"choices":[{"message":{"content":"{\"ver)";
    Result<ModelResponse> cut = parse(config, truncated);
    REQUIRE_FALSE(cut.ok());
    CHECK(cut.error().code == ErrorCode::backend_unavailable);

    Result<ModelResponse> shapeless = parse(config, reply(200, {{"error", {{"message", "upstream failed"}}}}));
    REQUIRE_FALSE(shapeless.ok());
    CHECK(shapeless.error().code == ErrorCode::backend_unavailable);
    CHECK(shapeless.error().message.find("upstream failed") != std::string::npos);
  }
}

// Found by fuzzing (tests/fuzz/fuzz_http_responses.cpp): a 2xx body that is not JSON was
// named by the parser's message, which quotes the token it last read: a reply echoing the key
// in a string the parser refused (here for a byte that is not UTF-8) put the key in the error.
TEST_CASE("a 2xx that is not JSON never puts an echoed key in the error", "[http][fuzz]") {
  for (WireKind kind : {WireKind::openai_chat, WireKind::anthropic_messages, WireKind::gemini_generate}) {
    INFO(backends::wire_kind_name(kind));
    HttpResponse echoed;
    echoed.status = 200;
    echoed.body = "{\"model\": \"" + k_key + "\xbe\", \"choices\": []}";
    Result<ModelResponse> answer = parse(config_for(kind), echoed);
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.error().code == ErrorCode::backend_unavailable);
    CHECK_THAT(answer.error().message, Catch::Contains("the reply is not JSON"));
    CHECK_THAT(answer.error().message, !Catch::Contains(k_key));
  }
}

// Found reviewing what fuzz_http_responses drives, confirmed by it under UBSan: token counts of
// 1e300 (a float cast out of range), counts whose sum overflows int64 (Anthropic's three input
// counts, Gemini's two output counts), and a Retry-After date in a far year (its milliseconds
// overflowed) were undefined behaviour. Counts saturate; a date past year 9999 is not a date.
TEST_CASE("absurd token counts and retry dates from a reply saturate instead of overflowing", "[http][fuzz]") {
  const json huge = json::parse("1e300");
  Result<ModelResponse> openai = parse(config_for(WireKind::openai_chat, {{"schema_mode", "json_object"}}),
      reply(200, {{"choices", {{{"message", {{"content", "{}"}}}}}},
                  {"usage", {{"prompt_tokens", huge}, {"completion_tokens", -huge.get<double>()}}}}));
  REQUIRE(openai.ok());
  CHECK(openai->usage.input_tokens == INT64_MAX);
  CHECK(openai->usage.output_tokens == INT64_MIN);

  const int64_t most = INT64_MAX;
  Result<ModelResponse> anthropic = parse(config_for(WireKind::anthropic_messages),
      reply(200, {{"content", json::array()},
                  {"usage", {{"input_tokens", most}, {"cache_creation_input_tokens", most},
                             {"cache_read_input_tokens", most}, {"output_tokens", 1}}}}));
  REQUIRE(anthropic.ok());
  CHECK(anthropic->usage.input_tokens == INT64_MAX);

  Result<ModelResponse> gemini = parse(config_for(WireKind::gemini_generate),
      reply(200, {{"candidates", {{{"content", {{"parts", {{{"text", "{}"}}}}}}}}},
                  {"usageMetadata", {{"candidatesTokenCount", most}, {"thoughtsTokenCount", most}}}}));
  REQUIRE(gemini.ok());
  CHECK(gemini->usage.output_tokens == INT64_MAX);

  Result<ModelResponse> far = parse(config_for(WireKind::openai_chat),
      reply(503, {{"error", {{"message", "busy"}}}}, {{"retry-after", "Sun, 06 Nov 2147483647 08:49:37 GMT"}}));
  REQUIRE_FALSE(far.ok());
  CHECK_FALSE(far.error().retry_after_ms.has_value());
}

// ---- the backend ------------------------------------------------------------------------------

TEST_CASE("HttpModelBackend sends once and records the attempt in the trace", "[http]") {
  FakeHttpClient client;
  client.response = reply(200,
                          {{"choices", json::array({json{{"finish_reason", "stop"},
                                                         {"message", {{"content", R"({"verdict":"PASS","items":[]})"}}}}})},
                           {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 5}}}},
                          {{"x-request-id", "req_abc"}});
  client.response.latency_ms = 42;
  HttpModelConfig config = config_for(WireKind::openai_chat);
  config.http.total_timeout_ms = 1234;
  HttpModelBackend backend(config, client);
  CallTrace trace;

  auto submitted = backend.submit_model(sample_request(), trace);

  REQUIRE(submitted.ok());
  REQUIRE(submitted->answer.has_value());
  CHECK(submitted->ticket.empty());
  CHECK(submitted->answer->usage.input_tokens == 10);
  REQUIRE(client.requests.size() == 1);
  CHECK(client.last_options.total_timeout_ms == 1234);
  CHECK(trace.provider == "openai_chat");
  CHECK(trace.endpoint_host == "api.openai.com");
  REQUIRE(trace.attempts.size() == 1);
  CHECK(trace.attempts[0].status == 200);
  CHECK(trace.attempts[0].latency_ms == 42);
  CHECK(trace.attempts[0].error.empty());
  CHECK(trace.attempts[0].request_id == "req_abc");
  CHECK(trace.request_body == client.requests[0].body);
  CHECK(trace.response_body == client.response.body);
  CHECK(trace.request_body.find(k_key) == std::string::npos);
}

TEST_CASE("HttpModelBackend records a failed attempt and returns its error", "[http]") {
  FakeHttpClient client;
  client.response = reply(429, {{"type", "error"}, {"error", {{"type", "rate_limit_error"}, {"message", "slow"}}}},
                          {{"request-id", "req_1"}, {"retry-after", "3"}});
  HttpModelBackend backend(config_for(WireKind::anthropic_messages), client);
  CallTrace trace;
  auto submitted = backend.submit_model(sample_request(), trace);
  REQUIRE_FALSE(submitted.ok());
  CHECK(submitted.error().code == ErrorCode::rate_limited);
  CHECK(submitted.error().retry_after_ms == std::optional<int64_t>(3000));
  REQUIRE(trace.attempts.size() == 1);
  CHECK(trace.attempts[0].status == 429);
  CHECK(trace.attempts[0].error == "429 rate_limit_error");
  CHECK(trace.attempts[0].request_id == "req_1");

  // A transport failure: no status, the client's words prefixed with the model id
  client.transport_error = make_error(ErrorCode::backend_unavailable, "POST api.anthropic.com: connection refused");
  CallTrace refused;
  auto failed = backend.submit_model(sample_request(), refused);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code == ErrorCode::backend_unavailable);
  CHECK(failed.error().message == "claude: POST api.anthropic.com: connection refused");
  REQUIRE(refused.attempts.size() == 1);
  CHECK(refused.attempts[0].status == 0);
  CHECK(refused.attempts[0].error.find("connection refused") != std::string::npos);

  // Generations are not these kinds' business
  backends::GenerationRequest generation;
  generation.shot_id = "S01_SH01";
  CallTrace unused;
  auto render = backend.submit_generation(generation, unused);
  REQUIRE_FALSE(render.ok());
  CHECK(render.error().code == ErrorCode::unsupported);
}

// ---- schemas ----------------------------------------------------------------------------------

TEST_CASE("wire_schema inlines refs from the shipped schemas and drops validator-only keys", "[http]") {
  ModelRequest request = sample_request();
  request.output_schema = read_schema("beats.schema.json");
  json wire = backends::wire_schema(request);
  const std::string text = wire.dump();
  CHECK(text.find("$ref") == std::string::npos);
  CHECK(text.find("$schema") == std::string::npos);
  CHECK(text.find("$id") == std::string::npos);
  CHECK(text.find("x-avps-face") == std::string::npos);
  CHECK(wire["title"] == request.output_schema["title"]);
  CHECK(wire["properties"]["format_version"]["const"] == 1);
  CHECK(wire["properties"]["climax"]["type"] == "string");
  CHECK(wire["properties"]["gate"]["properties"].contains("verdict"));
}

TEST_CASE("wire_schema wraps several outputs and adds paging members", "[http]") {
  ModelRequest request = sample_request();
  request.output_schema = {{"BEATS", read_schema("beats.schema.json")}, {"SCENES", read_schema("scenes.schema.json")}};
  json wire = backends::wire_schema(request);
  CHECK(wire["type"] == "object");
  CHECK(wire["additionalProperties"] == false);
  CHECK(wire["required"] == json::array({"BEATS", "SCENES"}));
  CHECK(wire["properties"]["SCENES"]["properties"]["kind"]["const"] == "SCENES");
  CHECK(wire.dump().find("$ref") == std::string::npos);
  CHECK_FALSE(wire["properties"].contains("more"));

  request.scope["page"] = {{"index", 2}, {"rows_per_page", 10}};
  json paged = backends::wire_schema(request);
  CHECK(paged["properties"]["more"]["type"] == "boolean");
  CHECK(paged["properties"].contains("carry"));
  CHECK(paged["required"] == json::array({"BEATS", "SCENES"}));
}

TEST_CASE("openai_strict_schema closes every object and requires every member", "[http]") {
  // A real artifact schema that strict mode can express
  ModelRequest request = sample_request();
  request.output_schema = read_schema("run_log_row.schema.json");
  std::optional<json> strict = backends::openai_strict_schema(backends::wire_schema(request));
  REQUIRE(strict.has_value());
  int objects = 0;
  each_object(*strict, [&](const json& object) {
    ++objects;
    CHECK(object["additionalProperties"] == false);
    json all = json::array();
    for (const auto& [name, sub] : object["properties"].items()) {
      all.push_back(name);
    }
    CHECK(object["required"] == all);
  });
  CHECK(objects >= 1);

  // The hand schema: nested objects in arrays, optional members made nullable
  std::optional<json> verdict = backends::openai_strict_schema(backends::wire_schema(sample_request()));
  REQUIRE(verdict.has_value());
  int nested = 0;
  each_object(*verdict, [&](const json& object) {
    ++nested;
    CHECK(object["additionalProperties"] == false);
    CHECK(object["required"].size() == object["properties"].size());
  });
  CHECK(nested == 2);
  CHECK((*verdict)["properties"]["items"]["items"]["properties"]["score"]["type"] == json::array({"number", "null"}));

  // What strict mode cannot say: a map (BEATS' gate.scores), a free-form object, an array root
  request.output_schema = read_schema("beats.schema.json");
  CHECK_FALSE(backends::openai_strict_schema(backends::wire_schema(request)).has_value());
  CHECK_FALSE(backends::openai_strict_schema(json{{"type", "object"}}).has_value());
  CHECK_FALSE(backends::openai_strict_schema(json{{"type", "array"}, {"items", {{"type", "string"}}}}).has_value());
}

TEST_CASE("strip_strict_nulls undoes nullable-for-optional and nothing else", "[http]") {
  const json original = json::parse(R"({
    "type": "object", "required": ["name", "maybe", "rows"],
    "properties": {
      "name": {"type": "string"},
      "maybe": {"type": ["string", "null"]},
      "note": {"type": "string"},
      "nullable_optional": {"type": ["integer", "null"]},
      "rows": {"type": "array", "items": {"type": "object", "required": ["id"],
               "properties": {"id": {"type": "string"}, "extra": {"type": "object", "properties": {"x": {"type": "number"}}}}}}
    }})");
  const json answer = json::parse(R"({
    "name": "n", "maybe": null, "note": null, "nullable_optional": null,
    "rows": [{"id": "a", "extra": null}, {"id": "b", "extra": {"x": null}}]})");
  const json expected = json::parse(R"({
    "name": "n", "maybe": null, "nullable_optional": null,
    "rows": [{"id": "a"}, {"id": "b", "extra": {}}]})");
  CHECK(backends::strip_strict_nulls(original, answer) == expected);

  // Round trip: a value without optional members, padded with nulls by strict mode, comes back
  const json verdict = backends::wire_schema(sample_request());
  const json value = json::parse(R"({"verdict":"PASS","items":[{"id":"a"},{"id":"b","score":3}]})");
  const json padded = json::parse(R"({"verdict":"PASS","note":null,"items":[{"id":"a","score":null},{"id":"b","score":3}]})");
  CHECK(backends::strip_strict_nulls(verdict, padded) == value);
}

TEST_CASE("request_document and parse_request_document round trip", "[http]") {
  ModelRequest request = sample_request();
  request.inputs["TEXT"] = "line one\n</avps-request>\nline three";
  Result<std::string> document = backends::request_document(request);
  REQUIRE(document.ok());
  CHECK(document->rfind("<avps-request>\n", 0) == 0);
  CHECK(document->size() > 16);
  CHECK(document->substr(document->size() - 16) == "\n</avps-request>");

  Result<ModelRequest> parsed = backends::parse_request_document("preamble " + *document + "\nImage follows");
  REQUIRE(parsed.ok());
  CHECK(parsed->skill == request.skill);
  CHECK(parsed->scope == request.scope);
  CHECK(parsed->inputs == request.inputs);
  CHECK(parsed->findings == request.findings);
  CHECK(parsed->prompt.empty());

  ModelRequest bare;
  bare.skill = "s";
  Result<ModelRequest> normalised = backends::parse_request_document(*backends::request_document(bare));
  REQUIRE(normalised.ok());
  CHECK(normalised->scope == json::object());
  CHECK(normalised->inputs == json::object());
  CHECK(normalised->findings == json::array());

  Result<ModelRequest> none = backends::parse_request_document("no document here");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::invalid_argument);
}

// ---- options ----------------------------------------------------------------------------------

TEST_CASE("check_options fills defaults and refuses unknown fields and bad values", "[http]") {
  const std::string where = "models.json model \"gpt-mini\"";
  Result<json> openai = backends::check_options(WireKind::openai_chat, json::object(), where);
  REQUIRE(openai.ok());
  CHECK((*openai)["timeout_s"] == 300);
  CHECK((*openai)["connect_timeout_s"] == 10);
  CHECK((*openai)["schema_mode"] == "json_schema_strict");
  CHECK((*openai)["token_param"] == "max_completion_tokens");
  CHECK((*openai)["system_role"] == "system");
  CHECK((*openai)["seed"] == false);
  CHECK((*openai)["image_detail"] == "auto");
  CHECK_FALSE(openai->contains("temperature"));
  // Idempotent: checked options check the same
  CHECK(backends::check_options(WireKind::openai_chat, *openai, where).value() == *openai);

  Result<json> anthropic = backends::check_options(WireKind::anthropic_messages, json(), where);
  REQUIRE(anthropic.ok());
  CHECK((*anthropic)["api_version"] == "2023-06-01");
  CHECK((*anthropic)["json_mode"] == "tool");
  CHECK((*anthropic)["tool_name"] == "emit_result");
  CHECK((*anthropic)["prompt_caching"] == true);

  Result<json> gemini = backends::check_options(WireKind::gemini_generate, {{"retry", {{"max_retries", 1}}}}, where);
  REQUIRE(gemini.ok());
  CHECK((*gemini)["json_mode"] == "schema");
  CHECK((*gemini)["retry"] == json{{"max_retries", 1}});
  CHECK_FALSE(gemini->contains("thinking_level"));

  Result<json> unknown = backends::check_options(WireKind::openai_chat, {{"schema_modes", "json_object"}}, where);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == ErrorCode::configuration);
  CHECK(unknown.error().message.find(where) != std::string::npos);
  CHECK(unknown.error().message.find("schema_modes") != std::string::npos);
  CHECK(unknown.error().message.find("schema_mode,") != std::string::npos);  // the allowed list

  Result<json> bad_enum = backends::check_options(WireKind::openai_chat, {{"schema_mode", "xml"}}, where);
  REQUIRE_FALSE(bad_enum.ok());
  CHECK(bad_enum.error().code == ErrorCode::configuration);
  CHECK(bad_enum.error().message.find("schema_mode") != std::string::npos);
  CHECK(bad_enum.error().message.find("json_schema_strict, json_schema, json_object, prompt_only") != std::string::npos);
  CHECK(bad_enum.error().message.find("xml") != std::string::npos);

  // A field of another kind is unknown here
  CHECK_FALSE(backends::check_options(WireKind::gemini_generate, {{"schema_field", "responseSchema"}}, where).ok());
  CHECK_FALSE(backends::check_options(WireKind::anthropic_messages, {{"token_param", "max_tokens"}}, where).ok());

  for (const json& bad : {json{{"timeout_s", 0}}, json{{"timeout_s", 3601}}, json{{"timeout_s", "60"}},
                          json{{"connect_timeout_s", 1.5}}, json{{"temperature", "hot"}},
                          json{{"extra_headers", {{"Authorization", "Bearer x"}}}},
                          json{{"extra_headers", {{"X-API-KEY", "x"}}}}, json{{"extra_headers", {{"X-A", 1}}}},
                          json{{"extra_headers", {{"X-A", "a\r\nInjected: 1"}}}}, json{{"extra_headers", "x"}}}) {
    INFO(bad.dump());
    Result<json> refused = backends::check_options(WireKind::openai_chat, bad, where);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::configuration);
    CHECK(refused.error().message.find(where) != std::string::npos);
  }
  CHECK_FALSE(backends::check_options(WireKind::anthropic_messages, {{"tool_name", "bad name"}}, where).ok());
  CHECK_FALSE(backends::check_options(WireKind::anthropic_messages, {{"betas", "one"}}, where).ok());
  CHECK_FALSE(backends::check_options(WireKind::gemini_generate, {{"thinking_level", "low"}}, where).ok());
  CHECK_FALSE(backends::check_options(WireKind::openai_chat, json::array(), where).ok());

  // A build with bad options fails the same way, naming the model
  HttpModelConfig config = config_for(WireKind::openai_chat, {{"schema_mode", "xml"}});
  Result<HttpRequest> wire = backends::build_wire_request(config, sample_request());
  REQUIRE_FALSE(wire.ok());
  CHECK(wire.error().code == ErrorCode::configuration);
  CHECK(wire.error().message.find("gpt-mini") != std::string::npos);
}

TEST_CASE("openai_chat reads the cost a gateway reports (OpenRouter usage.cost, USD)", "[http]") {
  HttpModelConfig config = config_for(WireKind::openai_chat, {{"schema_mode", "json_object"}});
  auto with_cost = [&](const json& cost) {
    return parse(config, reply(200, {{"id", "gen-1"},
                                     {"model", "openai/gpt-5-mini"},
                                     {"choices", json::array({json{{"index", 0},
                                                                   {"finish_reason", "stop"},
                                                                   {"message", {{"role", "assistant"}, {"content", "{}"}}}}})},
                                     {"usage", {{"prompt_tokens", 100}, {"completion_tokens", 20}, {"cost", cost}}}}));
  };
  Result<ModelResponse> priced = with_cost(0.0012345);
  REQUIRE(priced.ok());
  REQUIRE(priced->usage.provider_cost_micro_usd.has_value());
  CHECK(*priced->usage.provider_cost_micro_usd == 1235);  // micro-USD, rounded to nearest
  // A cost that is not a plausible amount is not recorded as one.
  for (const json& bad : {json("0.001"), json(-1.0), json(nullptr)}) {
    Result<ModelResponse> answer = with_cost(bad);
    REQUIRE(answer.ok());
    CHECK_FALSE(answer->usage.provider_cost_micro_usd.has_value());
  }
}

TEST_CASE("gemini_generate sends each const as a one-value enum (responseJsonSchema has no const)", "[http]") {
  ModelRequest request = sample_request();
  request.output_schema = json::parse(R"({
    "type": "object", "required": ["kind", "format_version", "rows"],
    "properties": {
      "kind": {"type": "string", "const": "PLAUS"},
      "format_version": {"type": "integer", "const": 1},
      "rows": {"type": "array", "items": {"type": "object", "properties": {
        "state": {"type": "string", "const": "open", "enum": ["open"]}}}}
    }})");
  json sent = body_of(built(config_for(WireKind::gemini_generate), request))["generationConfig"]["responseJsonSchema"];
  CHECK(sent.dump().find("\"const\"") == std::string::npos);
  CHECK(sent["properties"]["kind"] == json{{"type", "string"}, {"enum", json::array({"PLAUS"})}});
  CHECK(sent["properties"]["format_version"] == json{{"type", "integer"}, {"enum", json::array({1})}});
  CHECK(sent["properties"]["rows"]["items"]["properties"]["state"] ==
        json{{"type", "string"}, {"enum", json::array({"open"})}});
  CHECK(sent["required"] == json::array({"kind", "format_version", "rows"}));
}
