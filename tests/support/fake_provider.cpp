// The fake provider (fake_provider.hpp): request checks per provider, the sim's answer in each
// provider's response format, faults, counters. The rules checked are those of
// shared/reference/backend-apis.md §0-3; each reason names the field (a JSON-pointer-like path) and
// what is wrong with it, so a failing adapter test says what to fix.

#include "support/fake_provider.hpp"

#include "support/fake_images.hpp"
#include "support/fake_jobs.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "avps/backends/backend.hpp"
#include "avps/backends/http_model.hpp"
#include "avps/backends/sim_backend.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/hash.hpp"
#include "avps/skills/registry.hpp"
#include "avps/skills/skill_def.hpp"

namespace avps::testing {

namespace {

using nlohmann::json;
using Reasons = std::vector<std::string>;

enum class Provider { openai, anthropic, gemini };

std::string provider_name(Provider provider) {
  switch (provider) {
    case Provider::openai:
      return "openai";
    case Provider::anthropic:
      return "anthropic";
    case Provider::gemini:
      return "gemini";
  }
  return "openai";
}

constexpr int64_t k_implicit_cache_min_tokens = 1024;  // OpenAI's and Gemini's implicit cache floor
constexpr size_t k_kept_reasons = 50;
constexpr int64_t k_default_hang_ms = 5000;
constexpr int64_t k_default_trickle_ms = 1000;
constexpr size_t k_trickle_chunk_bytes = 64;
constexpr size_t k_trickle_max_chunks = 100;  // keeps the per-chunk sleep above timer noise
const std::regex k_openai_schema_name("^[a-zA-Z0-9_-]{1,64}$");
const std::regex k_tool_name("^[a-zA-Z0-9_-]{1,64}$");
const std::regex k_gemini_model("^[A-Za-z0-9._-]+$");

int64_t tokens_of(size_t bytes) { return static_cast<int64_t>((bytes + 3) / 4); }

// ---------------------------------------------------------------------------------------------
// Small checks. Each appends "<where>: <what>" to the reasons and says whether the value passed.

std::string type_name(const json& value) { return value.type_name(); }

bool expect_object(const json& value, const std::string& where, Reasons& reasons) {
  if (!value.is_object()) {
    reasons.push_back(where + ": must be an object, not " + type_name(value));
    return false;
  }
  return true;
}

bool expect_string(const json& value, const std::string& where, Reasons& reasons) {
  if (!value.is_string()) {
    reasons.push_back(where + ": must be a string, not " + type_name(value));
    return false;
  }
  return true;
}

bool expect_nonempty_string(const json& value, const std::string& where, Reasons& reasons) {
  if (!expect_string(value, where, reasons)) {
    return false;
  }
  if (value.get_ref<const std::string&>().empty()) {
    reasons.push_back(where + ": must not be empty");
    return false;
  }
  return true;
}

bool expect_bool(const json& value, const std::string& where, Reasons& reasons) {
  if (!value.is_boolean()) {
    reasons.push_back(where + ": must be a boolean, not " + type_name(value));
    return false;
  }
  return true;
}

bool expect_array(const json& value, const std::string& where, Reasons& reasons) {
  if (!value.is_array()) {
    reasons.push_back(where + ": must be an array, not " + type_name(value));
    return false;
  }
  return true;
}

bool expect_integer(const json& value, const std::string& where, Reasons& reasons, int64_t min) {
  if (!value.is_number_integer()) {
    reasons.push_back(where + ": must be an integer, not " + type_name(value));
    return false;
  }
  if (value.is_number_unsigned() ? false : value.get<int64_t>() < min) {
    reasons.push_back(where + ": must be at least " + std::to_string(min));
    return false;
  }
  return true;
}

bool expect_number(const json& value, const std::string& where, Reasons& reasons, double min, double max) {
  if (!value.is_number()) {
    reasons.push_back(where + ": must be a number, not " + type_name(value));
    return false;
  }
  double v = value.get<double>();
  if (v < min || v > max) {
    reasons.push_back(where + ": must be between " + json(min).dump() + " and " + json(max).dump());
    return false;
  }
  return true;
}

bool expect_one_of(const json& value, const std::string& where, Reasons& reasons,
                   std::initializer_list<std::string_view> allowed) {
  if (!expect_string(value, where, reasons)) {
    return false;
  }
  const std::string& text = value.get_ref<const std::string&>();
  for (std::string_view candidate : allowed) {
    if (text == candidate) {
      return true;
    }
  }
  std::string list;
  for (std::string_view candidate : allowed) {
    list += (list.empty() ? "" : "|") + std::string(candidate);
  }
  reasons.push_back(where + ": \"" + text + "\" is not one of " + list);
  return false;
}

// Unknown members of `object` (the API refuses them: "Unrecognized request argument").
void only_keys(const json& object, const std::string& where, Reasons& reasons,
               const std::set<std::string, std::less<>>& allowed) {
  for (const auto& [key, value] : object.items()) {
    if (!allowed.count(key)) {
      reasons.push_back(where + ": unknown field \"" + key + "\"");
    }
  }
}

void require_key(const json& object, const std::string& key, const std::string& where, Reasons& reasons) {
  if (!object.contains(key)) {
    reasons.push_back(where + ": missing required field \"" + key + "\"");
  }
}

bool is_base64(std::string_view data) {
  if (data.empty() || data.size() % 4 != 0) {
    return false;
  }
  size_t padding = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(data[i]);
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding > 0 || !(std::isalnum(c) || c == '+' || c == '/')) {
      return false;
    }
  }
  return padding <= 2;
}

bool is_image_media_type(std::string_view type) {
  return type == "image/png" || type == "image/jpeg" || type == "image/gif" || type == "image/webp";
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// ---------------------------------------------------------------------------------------------
// JSON Schema walks: every subschema of a schema, with its path.

using SchemaVisitor = std::function<void(const json& schema, const std::string& where)>;

void walk_schema(const json& schema, const std::string& where, const SchemaVisitor& visit, int depth = 0) {
  if (!schema.is_object() || depth > 64) {
    return;
  }
  visit(schema, where);
  for (const char* map_key : {"properties", "$defs", "definitions", "patternProperties"}) {
    if (auto it = schema.find(map_key); it != schema.end() && it->is_object()) {
      for (const auto& [name, sub] : it->items()) {
        walk_schema(sub, where + "/" + map_key + "/" + name, visit, depth + 1);
      }
    }
  }
  for (const char* list_key : {"anyOf", "oneOf", "allOf", "prefixItems"}) {
    if (auto it = schema.find(list_key); it != schema.end() && it->is_array()) {
      for (size_t i = 0; i < it->size(); ++i) {
        walk_schema((*it)[i], where + "/" + list_key + "/" + std::to_string(i), visit, depth + 1);
      }
    }
  }
  for (const char* single_key : {"items", "additionalProperties", "not", "if", "then", "else"}) {
    if (auto it = schema.find(single_key); it != schema.end()) {
      if (it->is_object()) {
        walk_schema(*it, where + "/" + single_key, visit, depth + 1);
      } else if (it->is_array()) {
        for (size_t i = 0; i < it->size(); ++i) {
          walk_schema((*it)[i], where + "/" + single_key + "/" + std::to_string(i), visit, depth + 1);
        }
      }
    }
  }
}

bool schema_has_type(const json& schema, std::string_view type) {
  auto it = schema.find("type");
  if (it == schema.end()) {
    return false;
  }
  if (it->is_string()) {
    return *it == type;
  }
  if (it->is_array()) {
    return std::any_of(it->begin(), it->end(), [&](const json& t) { return t.is_string() && t == type; });
  }
  return false;
}

bool is_object_schema(const json& schema) { return schema_has_type(schema, "object") || schema.contains("properties"); }

// OpenAI structured outputs, strict mode: root an object (not anyOf); every object closed with
// additionalProperties false and listing all its properties in required; no allOf, not,
// if/then/else or patternProperties.
void check_openai_strict_schema(const json& schema, const std::string& where, Reasons& reasons) {
  if (schema.contains("anyOf")) {
    reasons.push_back(where + ": the root of a strict schema must not be anyOf");
  }
  if (!schema_has_type(schema, "object")) {
    reasons.push_back(where + ": the root of the schema must be of type object");
  }
  walk_schema(schema, where, [&](const json& sub, const std::string& path) {
    for (const char* unsupported : {"allOf", "not", "if", "then", "else", "patternProperties"}) {
      if (sub.contains(unsupported)) {
        reasons.push_back(path + ": strict mode does not support \"" + std::string(unsupported) + "\"");
      }
    }
    if (!is_object_schema(sub)) {
      return;
    }
    auto additional = sub.find("additionalProperties");
    if (additional == sub.end() || *additional != false) {
      reasons.push_back(path + ": strict mode needs \"additionalProperties\": false on every object");
    }
    std::set<std::string> required;
    if (auto it = sub.find("required"); it != sub.end() && it->is_array()) {
      for (const json& name : *it) {
        if (name.is_string()) {
          required.insert(name.get<std::string>());
        }
      }
    }
    std::set<std::string> properties;
    if (auto it = sub.find("properties"); it != sub.end() && it->is_object()) {
      for (const auto& [name, property] : it->items()) {
        properties.insert(name);
        if (!required.count(name)) {
          reasons.push_back(path + ": strict mode needs every property in \"required\"; \"" + name + "\" is not");
        }
      }
    }
    for (const std::string& name : required) {
      if (!properties.count(name)) {
        reasons.push_back(path + ": \"required\" names \"" + name + "\", which is not a property");
      }
    }
  });
}

// Anthropic's structured-output schema limits (output_config.format, strict tools): closed
// objects, no numeric bounds, no string lengths, no maxItems, minItems 0 or 1, no recursion.
void check_anthropic_schema_limits(const json& schema, const std::string& where, Reasons& reasons) {
  walk_schema(schema, where, [&](const json& sub, const std::string& path) {
    for (const char* unsupported :
         {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
          "maxItems"}) {
      if (sub.contains(unsupported)) {
        reasons.push_back(path + ": structured outputs do not support \"" + std::string(unsupported) + "\"");
      }
    }
    if (auto it = sub.find("minItems"); it != sub.end() && it->is_number() && it->get<double>() > 1) {
      reasons.push_back(path + ": structured outputs support minItems 0 or 1 only");
    }
    if (auto it = sub.find("$ref"); it != sub.end() && it->is_string()) {
      const std::string& ref = it->get_ref<const std::string&>();
      // A reference to the root, or to a definition this subschema sits inside of.
      const std::string target = ref.size() > 1 ? ref.substr(1) : std::string();
      const size_t inside = target.empty() ? std::string::npos : path.find(target);
      const size_t after = inside + target.size();
      if (ref == "#" || (inside != std::string::npos && (after == path.size() || path[after] == '/'))) {
        reasons.push_back(path + ": structured outputs do not support recursive schemas");
      }
    }
    if (is_object_schema(sub)) {
      auto additional = sub.find("additionalProperties");
      if (additional == sub.end() || *additional != false) {
        reasons.push_back(path + ": structured outputs need \"additionalProperties\": false on every object");
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The request document (http_model.hpp request_document()).

// The canonical JSON of the document's four members: the key of stats()["documents"].
std::optional<std::string> document_key(const std::string& text) {
  Result<backends::ModelRequest> parsed = backends::parse_request_document(text);
  if (!parsed.ok()) {
    return std::nullopt;
  }
  json members = {{"skill", parsed->skill},
                  {"scope", parsed->scope},
                  {"inputs", parsed->inputs},
                  {"findings", parsed->findings}};
  Result<std::string> canonical = core::canonical_json(members);
  if (!canonical.ok()) {
    return std::nullopt;
  }
  return core::sha256_hex(*canonical);
}

// ---------------------------------------------------------------------------------------------
// What a valid request asks for, as the checks below find it.

struct WireCall {
  Provider provider = Provider::openai;
  std::string model;
  std::string system_text;
  bool cache_marked = false;         ///< Anthropic: a cache_control mark on the system block
  std::string document_text;         ///< the user message's first text part
  int64_t max_output_tokens = 0;
  std::optional<json> strict_schema;  ///< OpenAI strict json_schema: answers are null-filled
  std::string forced_tool;           ///< Anthropic: answer with a tool_use block of this tool
  int64_t choices = 1;               ///< OpenAI n
};

// --- OpenAI ---------------------------------------------------------------------------------

const std::set<std::string, std::less<>> k_openai_fields = {
    "model", "messages", "max_completion_tokens", "max_tokens", "temperature", "seed", "n",
    "stop", "response_format", "stream", "stream_options", "top_p", "reasoning_effort"};

// Text of a system/developer/assistant content: a string or text parts.
std::string check_openai_text_content(const json& content, const std::string& where, Reasons& reasons) {
  if (content.is_string()) {
    return content.get<std::string>();
  }
  if (!expect_array(content, where, reasons)) {
    return {};
  }
  if (content.empty()) {
    reasons.push_back(where + ": must not be empty");
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string at = where + "/" + std::to_string(i);
    const json& part = content[i];
    if (!expect_object(part, at, reasons)) {
      continue;
    }
    if (part.value("type", "") != "text") {
      reasons.push_back(at + ": this role takes text parts only");
      continue;
    }
    only_keys(part, at, reasons, {"type", "text"});
    require_key(part, "text", at, reasons);
    if (part.contains("text") && expect_string(part["text"], at + "/text", reasons)) {
      text += (text.empty() ? "" : "\n") + part["text"].get<std::string>();
    }
  }
  return text;
}

// A user content: a string or parts (text, image_url, input_audio, file). Returns the first
// text part.
std::optional<std::string> check_openai_user_content(const json& content, const std::string& where,
                                                     Reasons& reasons) {
  if (content.is_string()) {
    return content.get<std::string>();
  }
  if (!expect_array(content, where, reasons)) {
    return std::nullopt;
  }
  if (content.empty()) {
    reasons.push_back(where + ": must not be empty");
  }
  std::optional<std::string> first_text;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string at = where + "/" + std::to_string(i);
    const json& part = content[i];
    if (!expect_object(part, at, reasons) || !part.contains("type") ||
        !expect_one_of(part["type"], at + "/type", reasons, {"text", "image_url", "input_audio", "file"})) {
      if (part.is_object() && !part.contains("type")) {
        reasons.push_back(at + ": missing required field \"type\"");
      }
      continue;
    }
    const std::string type = part["type"].get<std::string>();
    only_keys(part, at, reasons, {"type", type});
    require_key(part, type, at, reasons);
    if (!part.contains(type)) {
      continue;
    }
    const json& body = part[type];
    if (type == "text") {
      if (expect_string(body, at + "/text", reasons) && !first_text) {
        first_text = body.get<std::string>();
      }
    } else if (type == "image_url") {
      if (!expect_object(body, at + "/image_url", reasons)) {
        continue;
      }
      only_keys(body, at + "/image_url", reasons, {"url", "detail"});
      require_key(body, "url", at + "/image_url", reasons);
      if (body.contains("detail")) {
        expect_one_of(body["detail"], at + "/image_url/detail", reasons, {"auto", "low", "high"});
      }
      if (body.contains("url") && expect_string(body["url"], at + "/image_url/url", reasons)) {
        const std::string& url = body["url"].get_ref<const std::string&>();
        static const std::regex k_data_url("^data:(image/[a-z]+);base64,(.*)$");
        std::smatch match;
        if (std::regex_match(url, match, k_data_url)) {
          if (!is_image_media_type(match[1].str())) {
            reasons.push_back(at + "/image_url/url: unsupported image type " + match[1].str());
          }
          if (!is_base64(match[2].str())) {
            reasons.push_back(at + "/image_url/url: the data URL's payload is not base64");
          }
        } else if (url.rfind("https://", 0) != 0) {
          reasons.push_back(at + "/image_url/url: must be a data:image/...;base64, URL or an https URL");
        }
      }
    } else {
      expect_object(body, at + "/" + type, reasons);
    }
  }
  return first_text;
}

void check_openai(const json& body, WireCall& call, Reasons& reasons) {
  only_keys(body, "/", reasons, k_openai_fields);
  require_key(body, "model", "/", reasons);
  require_key(body, "messages", "/", reasons);
  if (body.contains("model") && expect_nonempty_string(body["model"], "/model", reasons)) {
    call.model = body["model"].get<std::string>();
  }
  bool says_json = false;
  if (body.contains("messages") && expect_array(body["messages"], "/messages", reasons)) {
    const json& messages = body["messages"];
    if (messages.empty()) {
      reasons.push_back("/messages: must not be empty");
    }
    bool seen_user = false;
    for (size_t i = 0; i < messages.size(); ++i) {
      const std::string at = "/messages/" + std::to_string(i);
      const json& message = messages[i];
      if (!expect_object(message, at, reasons)) {
        continue;
      }
      only_keys(message, at, reasons, {"role", "content", "name"});
      require_key(message, "role", at, reasons);
      require_key(message, "content", at, reasons);
      if (!message.contains("role") ||
          !expect_one_of(message["role"], at + "/role", reasons, {"system", "developer", "user", "assistant"}) ||
          !message.contains("content")) {
        continue;
      }
      if (message.contains("name")) {
        expect_string(message["name"], at + "/name", reasons);
      }
      says_json = says_json || lower(message["content"].dump()).find("json") != std::string::npos;
      const std::string role = message["role"].get<std::string>();
      if (role == "user") {
        std::optional<std::string> first_text = check_openai_user_content(message["content"], at + "/content", reasons);
        if (!seen_user) {
          seen_user = true;
          if (!first_text) {
            reasons.push_back(at + "/content: the user message has no text part");
          } else {
            call.document_text = *first_text;
          }
        }
      } else if (role == "assistant" && message["content"].is_null()) {
        continue;
      } else {
        std::string text = check_openai_text_content(message["content"], at + "/content", reasons);
        if (role != "assistant") {
          call.system_text += (call.system_text.empty() ? "" : "\n") + text;
        }
      }
    }
    if (!seen_user) {
      reasons.push_back("/messages: no user message");
    }
  }
  if (body.contains("max_tokens") && body.contains("max_completion_tokens")) {
    reasons.push_back("/: max_tokens and max_completion_tokens must not both be set");
  }
  for (const char* limit : {"max_completion_tokens", "max_tokens"}) {
    if (body.contains(limit) && expect_integer(body[limit], std::string("/") + limit, reasons, 1)) {
      call.max_output_tokens = body[limit].get<int64_t>();
    }
  }
  if (body.contains("temperature")) {
    expect_number(body["temperature"], "/temperature", reasons, 0, 2);
  }
  if (body.contains("top_p")) {
    expect_number(body["top_p"], "/top_p", reasons, 0, 1);
  }
  if (body.contains("seed")) {
    expect_integer(body["seed"], "/seed", reasons, std::numeric_limits<int64_t>::min());
  }
  if (body.contains("n") && expect_integer(body["n"], "/n", reasons, 1)) {
    call.choices = body["n"].get<int64_t>();
    if (call.choices > 128) {
      reasons.push_back("/n: must be at most 128");
    }
  }
  if (body.contains("stop") && !body["stop"].is_null() && !body["stop"].is_string()) {
    if (expect_array(body["stop"], "/stop", reasons)) {
      if (body["stop"].size() > 4) {
        reasons.push_back("/stop: at most 4 sequences");
      }
      for (size_t i = 0; i < body["stop"].size(); ++i) {
        expect_string(body["stop"][i], "/stop/" + std::to_string(i), reasons);
      }
    }
  }
  bool streaming = false;
  if (body.contains("stream") && expect_bool(body["stream"], "/stream", reasons)) {
    streaming = body["stream"].get<bool>();
    if (streaming) {
      // avps asks for whole JSON answers; the fake speaks no SSE.
      reasons.push_back("/stream: true is not supported (avps never streams)");
    }
  }
  if (body.contains("stream_options")) {
    if (!streaming) {
      reasons.push_back("/stream_options: only allowed when stream is true");
    }
    if (expect_object(body["stream_options"], "/stream_options", reasons)) {
      only_keys(body["stream_options"], "/stream_options", reasons, {"include_usage", "include_obfuscation"});
    }
  }
  if (body.contains("reasoning_effort")) {
    expect_one_of(body["reasoning_effort"], "/reasoning_effort", reasons,
                  {"none", "minimal", "low", "medium", "high", "xhigh"});
  }
  if (body.contains("response_format") && expect_object(body["response_format"], "/response_format", reasons)) {
    const json& format = body["response_format"];
    require_key(format, "type", "/response_format", reasons);
    if (format.contains("type") &&
        expect_one_of(format["type"], "/response_format/type", reasons, {"text", "json_object", "json_schema"})) {
      const std::string type = format["type"].get<std::string>();
      if (type == "json_schema") {
        only_keys(format, "/response_format", reasons, {"type", "json_schema"});
        require_key(format, "json_schema", "/response_format", reasons);
        if (format.contains("json_schema") &&
            expect_object(format["json_schema"], "/response_format/json_schema", reasons)) {
          const json& spec = format["json_schema"];
          const std::string at = "/response_format/json_schema";
          only_keys(spec, at, reasons, {"name", "description", "schema", "strict"});
          require_key(spec, "name", at, reasons);
          require_key(spec, "schema", at, reasons);
          if (spec.contains("name") && expect_string(spec["name"], at + "/name", reasons) &&
              !std::regex_match(spec["name"].get<std::string>(), k_openai_schema_name)) {
            reasons.push_back(at + "/name: must match ^[a-zA-Z0-9_-]{1,64}$");
          }
          if (spec.contains("description")) {
            expect_string(spec["description"], at + "/description", reasons);
          }
          bool strict = false;
          if (spec.contains("strict") && !spec["strict"].is_null() &&
              expect_bool(spec["strict"], at + "/strict", reasons)) {
            strict = spec["strict"].get<bool>();
          }
          if (spec.contains("schema") && expect_object(spec["schema"], at + "/schema", reasons)) {
            if (strict) {
              check_openai_strict_schema(spec["schema"], at + "/schema", reasons);
              call.strict_schema = spec["schema"];
            } else if (!schema_has_type(spec["schema"], "object")) {
              reasons.push_back(at + "/schema: the root of the schema must be of type object");
            }
          }
        }
      } else {
        only_keys(format, "/response_format", reasons, {"type"});
        if (type == "json_object" && !says_json) {
          reasons.push_back("/response_format: json_object mode needs the word JSON in the messages");
        }
      }
    }
  }
}

// --- Anthropic ------------------------------------------------------------------------------

const std::set<std::string, std::less<>> k_anthropic_fields = {
    "model", "max_tokens", "system", "messages", "tools", "tool_choice", "output_config",
    "stop_sequences", "metadata", "thinking", "temperature", "top_p", "top_k"};
constexpr std::string_view k_anthropic_version_2023 = "2023-06-01";
constexpr std::string_view k_anthropic_version_2026 = "2026-10-21";
constexpr std::string_view k_anthropic_beta_structured_outputs = "structured-outputs-2025-11-13";

void check_cache_control(const json& value, const std::string& where, Reasons& reasons) {
  if (!expect_object(value, where, reasons)) {
    return;
  }
  only_keys(value, where, reasons, {"type", "ttl"});
  require_key(value, "type", where, reasons);
  if (value.contains("type")) {
    expect_one_of(value["type"], where + "/type", reasons, {"ephemeral"});
  }
  if (value.contains("ttl")) {
    expect_one_of(value["ttl"], where + "/ttl", reasons, {"5m", "1h"});
  }
}

// A text block; returns its text.
std::string check_anthropic_text_block(const json& block, const std::string& where, Reasons& reasons,
                                       bool& cache_marked) {
  only_keys(block, where, reasons, {"type", "text", "cache_control", "citations"});
  require_key(block, "text", where, reasons);
  if (block.contains("cache_control")) {
    check_cache_control(block["cache_control"], where + "/cache_control", reasons);
    cache_marked = true;
  }
  if (block.contains("text") && expect_nonempty_string(block["text"], where + "/text", reasons)) {
    return block["text"].get<std::string>();
  }
  return {};
}

// The system text: a string or text blocks.
std::string check_anthropic_system(const json& system, const std::string& where, Reasons& reasons,
                                   bool& cache_marked) {
  if (system.is_string()) {
    return system.get<std::string>();
  }
  if (!expect_array(system, where, reasons)) {
    return {};
  }
  std::string text;
  for (size_t i = 0; i < system.size(); ++i) {
    const std::string at = where + "/" + std::to_string(i);
    if (!expect_object(system[i], at, reasons)) {
      continue;
    }
    if (system[i].value("type", "") != "text") {
      reasons.push_back(at + ": system blocks must be of type text");
      continue;
    }
    text += (text.empty() ? "" : "\n") + check_anthropic_text_block(system[i], at, reasons, cache_marked);
  }
  return text;
}

void check_anthropic_image(const json& block, const std::string& where, Reasons& reasons, bool version_2026) {
  if (version_2026) {
    only_keys(block, where, reasons, {"type", "source", "cache_control", "transformations"});
  } else {
    only_keys(block, where, reasons, {"type", "source", "cache_control"});
  }
  require_key(block, "source", where, reasons);
  if (!block.contains("source") || !expect_object(block["source"], where + "/source", reasons)) {
    return;
  }
  const json& source = block["source"];
  const std::string at = where + "/source";
  require_key(source, "type", at, reasons);
  if (!source.contains("type") || !expect_one_of(source["type"], at + "/type", reasons, {"base64", "url", "file"})) {
    return;
  }
  const std::string type = source["type"].get<std::string>();
  if (type == "base64") {
    only_keys(source, at, reasons, {"type", "media_type", "data"});
    require_key(source, "media_type", at, reasons);
    require_key(source, "data", at, reasons);
    if (source.contains("media_type")) {
      expect_one_of(source["media_type"], at + "/media_type", reasons,
                    {"image/jpeg", "image/png", "image/gif", "image/webp"});
    }
    if (source.contains("data") && expect_string(source["data"], at + "/data", reasons) &&
        !is_base64(source["data"].get<std::string>())) {
      reasons.push_back(at + "/data: not base64");
    }
  } else if (type == "url") {
    only_keys(source, at, reasons, {"type", "url"});
    require_key(source, "url", at, reasons);
    if (source.contains("url") && expect_string(source["url"], at + "/url", reasons) &&
        source["url"].get<std::string>().rfind("https://", 0) != 0) {
      reasons.push_back(at + "/url: must be an https URL");
    }
  } else {
    only_keys(source, at, reasons, {"type", "file_id"});
    require_key(source, "file_id", at, reasons);
  }
}

void check_anthropic_structured_format(const json& format, const std::string& where, Reasons& reasons) {
  if (!expect_object(format, where, reasons)) {
    return;
  }
  only_keys(format, where, reasons, {"type", "schema"});
  require_key(format, "type", where, reasons);
  require_key(format, "schema", where, reasons);
  if (format.contains("type")) {
    expect_one_of(format["type"], where + "/type", reasons, {"json_schema"});
  }
  if (format.contains("schema") && expect_object(format["schema"], where + "/schema", reasons)) {
    check_anthropic_schema_limits(format["schema"], where + "/schema", reasons);
  }
}

void check_anthropic(const json& body, const std::string& version, const std::set<std::string>& betas,
                     WireCall& call, Reasons& reasons) {
  const bool version_2026 = version == k_anthropic_version_2026;
  std::set<std::string, std::less<>> allowed = k_anthropic_fields;
  if (version_2026) {
    // The 2026-10-21 request type has no sampling parameters.
    for (const char* dropped : {"temperature", "top_p", "top_k"}) {
      allowed.erase(dropped);
    }
  }
  if (betas.count(std::string(k_anthropic_beta_structured_outputs))) {
    allowed.insert("output_format");
  }
  only_keys(body, "/", reasons, allowed);
  require_key(body, "model", "/", reasons);
  require_key(body, "max_tokens", "/", reasons);
  require_key(body, "messages", "/", reasons);
  if (body.contains("model") && expect_nonempty_string(body["model"], "/model", reasons)) {
    call.model = body["model"].get<std::string>();
  }
  if (body.contains("max_tokens") && expect_integer(body["max_tokens"], "/max_tokens", reasons, 1)) {
    call.max_output_tokens = body["max_tokens"].get<int64_t>();
  }
  if (body.contains("system")) {
    call.system_text = check_anthropic_system(body["system"], "/system", reasons, call.cache_marked);
  }
  if (body.contains("messages") && expect_array(body["messages"], "/messages", reasons)) {
    const json& messages = body["messages"];
    if (messages.empty()) {
      reasons.push_back("/messages: must not be empty");
    }
    bool seen_user = false;
    for (size_t i = 0; i < messages.size(); ++i) {
      const std::string at = "/messages/" + std::to_string(i);
      const json& message = messages[i];
      if (!expect_object(message, at, reasons)) {
        continue;
      }
      only_keys(message, at, reasons, {"role", "content"});
      require_key(message, "role", at, reasons);
      require_key(message, "content", at, reasons);
      bool role_ok = message.contains("role") &&
                     (version_2026 ? expect_one_of(message["role"], at + "/role", reasons, {"user", "assistant", "system"})
                                   : expect_one_of(message["role"], at + "/role", reasons, {"user", "assistant"}));
      if (!role_ok || !message.contains("content")) {
        continue;
      }
      const std::string role = message["role"].get<std::string>();
      const json& content = message["content"];
      if (role == "system") {
        std::string text = check_anthropic_system(content, at + "/content", reasons, call.cache_marked);
        call.system_text += (call.system_text.empty() ? "" : "\n") + text;
        continue;
      }
      std::optional<std::string> first_text;
      if (content.is_string()) {
        if (content.get_ref<const std::string&>().empty()) {
          reasons.push_back(at + "/content: must not be empty");
        }
        first_text = content.get<std::string>();
      } else if (expect_array(content, at + "/content", reasons)) {
        if (content.empty()) {
          reasons.push_back(at + "/content: must not be empty");
        }
        for (size_t j = 0; j < content.size(); ++j) {
          const std::string block_at = at + "/content/" + std::to_string(j);
          const json& block = content[j];
          if (!expect_object(block, block_at, reasons)) {
            continue;
          }
          require_key(block, "type", block_at, reasons);
          if (!block.contains("type") || !expect_one_of(block["type"], block_at + "/type", reasons, {"text", "image"})) {
            continue;
          }
          if (block["type"] == "text") {
            bool ignored_mark = false;
            std::string text = check_anthropic_text_block(block, block_at, reasons, ignored_mark);
            if (!first_text) {
              first_text = text;
            }
          } else {
            if (role != "user") {
              reasons.push_back(block_at + ": only user messages carry images");
            }
            check_anthropic_image(block, block_at, reasons, version_2026);
          }
        }
      }
      if (role == "user" && !seen_user) {
        seen_user = true;
        if (!first_text) {
          reasons.push_back(at + "/content: the user message has no text block");
        } else {
          call.document_text = *first_text;
        }
      }
    }
    if (!seen_user) {
      reasons.push_back("/messages: no user message");
    }
    if (!messages.empty() && messages.back().is_object() && messages.back().value("role", "") == "assistant") {
      reasons.push_back("/messages: a trailing assistant turn (prefill) is rejected by current models");
    }
  }
  std::set<std::string> tool_names;
  if (body.contains("tools") && expect_array(body["tools"], "/tools", reasons)) {
    for (size_t i = 0; i < body["tools"].size(); ++i) {
      const std::string at = "/tools/" + std::to_string(i);
      const json& tool = body["tools"][i];
      if (!expect_object(tool, at, reasons)) {
        continue;
      }
      only_keys(tool, at, reasons, {"name", "description", "input_schema", "strict", "cache_control", "type"});
      require_key(tool, "name", at, reasons);
      require_key(tool, "input_schema", at, reasons);
      if (tool.contains("type")) {
        expect_one_of(tool["type"], at + "/type", reasons, {"custom"});
      }
      if (tool.contains("name") && expect_string(tool["name"], at + "/name", reasons)) {
        const std::string name = tool["name"].get<std::string>();
        if (!std::regex_match(name, k_tool_name)) {
          reasons.push_back(at + "/name: must match ^[a-zA-Z0-9_-]{1,64}$");
        }
        if (!tool_names.insert(name).second) {
          reasons.push_back(at + "/name: \"" + name + "\" is declared twice");
        }
      }
      if (tool.contains("description")) {
        expect_string(tool["description"], at + "/description", reasons);
      }
      if (tool.contains("cache_control")) {
        check_cache_control(tool["cache_control"], at + "/cache_control", reasons);
      }
      bool strict = false;
      if (tool.contains("strict") && expect_bool(tool["strict"], at + "/strict", reasons)) {
        strict = tool["strict"].get<bool>();
      }
      if (tool.contains("input_schema") && expect_object(tool["input_schema"], at + "/input_schema", reasons)) {
        if (tool["input_schema"].value("type", json()) != "object") {
          reasons.push_back(at + "/input_schema: \"type\" must be \"object\"");
        }
        if (strict) {
          check_anthropic_schema_limits(tool["input_schema"], at + "/input_schema", reasons);
        }
      }
    }
  }
  bool forced_tool = false;
  if (body.contains("tool_choice") && expect_object(body["tool_choice"], "/tool_choice", reasons)) {
    const json& choice = body["tool_choice"];
    only_keys(choice, "/tool_choice", reasons, {"type", "name", "disable_parallel_tool_use"});
    require_key(choice, "type", "/tool_choice", reasons);
    if (!body.contains("tools")) {
      reasons.push_back("/tool_choice: set without tools");
    }
    if (choice.contains("disable_parallel_tool_use")) {
      expect_bool(choice["disable_parallel_tool_use"], "/tool_choice/disable_parallel_tool_use", reasons);
    }
    if (choice.contains("type") &&
        expect_one_of(choice["type"], "/tool_choice/type", reasons, {"auto", "any", "tool", "none"})) {
      const std::string type = choice["type"].get<std::string>();
      if (type == "tool") {
        forced_tool = true;
        require_key(choice, "name", "/tool_choice", reasons);
        if (choice.contains("name") && expect_string(choice["name"], "/tool_choice/name", reasons)) {
          call.forced_tool = choice["name"].get<std::string>();
          if (!tool_names.count(call.forced_tool)) {
            reasons.push_back("/tool_choice/name: \"" + call.forced_tool + "\" names no declared tool");
          }
        }
      } else {
        if (choice.contains("name")) {
          reasons.push_back("/tool_choice/name: only for type tool");
        }
        if (type == "any") {
          forced_tool = true;
          if (tool_names.size() == 1) {
            call.forced_tool = *tool_names.begin();
          }
        }
      }
    }
  }
  if (body.contains("thinking") && expect_object(body["thinking"], "/thinking", reasons)) {
    const json& thinking = body["thinking"];
    require_key(thinking, "type", "/thinking", reasons);
    if (thinking.contains("type") &&
        expect_one_of(thinking["type"], "/thinking/type", reasons, {"enabled", "disabled", "adaptive"})) {
      const std::string type = thinking["type"].get<std::string>();
      if (type == "enabled") {
        only_keys(thinking, "/thinking", reasons, {"type", "budget_tokens", "display"});
        require_key(thinking, "budget_tokens", "/thinking", reasons);
        if (thinking.contains("budget_tokens") &&
            expect_integer(thinking["budget_tokens"], "/thinking/budget_tokens", reasons, 1024) &&
            call.max_output_tokens > 0 && thinking["budget_tokens"].get<int64_t>() >= call.max_output_tokens) {
          reasons.push_back("/thinking/budget_tokens: must be less than max_tokens");
        }
      } else {
        only_keys(thinking, "/thinking", reasons, {"type", "display"});
      }
      if (type != "disabled" && forced_tool) {
        reasons.push_back("/thinking: a forced tool_choice cannot be combined with thinking");
      }
    }
  }
  if (body.contains("output_config") && expect_object(body["output_config"], "/output_config", reasons)) {
    const json& config = body["output_config"];
    only_keys(config, "/output_config", reasons, {"format", "effort"});
    if (config.contains("format")) {
      check_anthropic_structured_format(config["format"], "/output_config/format", reasons);
    }
    if (config.contains("effort")) {
      expect_one_of(config["effort"], "/output_config/effort", reasons, {"low", "medium", "high", "xhigh", "max"});
    }
  }
  if (body.contains("output_format")) {
    check_anthropic_structured_format(body["output_format"], "/output_format", reasons);
    if (body.contains("output_config") && body["output_config"].is_object() &&
        body["output_config"].contains("format")) {
      reasons.push_back("/output_format: not together with output_config.format");
    }
  }
  if (body.contains("stop_sequences") && expect_array(body["stop_sequences"], "/stop_sequences", reasons)) {
    for (size_t i = 0; i < body["stop_sequences"].size(); ++i) {
      expect_string(body["stop_sequences"][i], "/stop_sequences/" + std::to_string(i), reasons);
    }
  }
  if (body.contains("metadata") && expect_object(body["metadata"], "/metadata", reasons)) {
    only_keys(body["metadata"], "/metadata", reasons, {"user_id"});
    if (body["metadata"].contains("user_id") && !body["metadata"]["user_id"].is_null()) {
      expect_string(body["metadata"]["user_id"], "/metadata/user_id", reasons);
    }
  }
  if (body.contains("temperature")) {
    expect_number(body["temperature"], "/temperature", reasons, 0, 1);
  }
  if (body.contains("top_p")) {
    expect_number(body["top_p"], "/top_p", reasons, 0, 1);
  }
  if (body.contains("top_k")) {
    expect_integer(body["top_k"], "/top_k", reasons, 0);
  }
}

// --- Gemini ---------------------------------------------------------------------------------

const std::set<std::string, std::less<>> k_gemini_fields = {"contents", "systemInstruction", "generationConfig",
                                                           "safetySettings", "tools", "toolConfig"};
const std::set<std::string, std::less<>> k_gemini_generation_fields = {
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
    "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
    "frequencyPenalty", "responseLogprobs", "logprobs", "thinkingConfig", "imageConfig", "mediaResolution"};

// A part of a content or of systemInstruction: text, inlineData or fileData. Returns its text.
std::optional<std::string> check_gemini_part(const json& part, const std::string& where, Reasons& reasons,
                                             bool text_only) {
  if (!expect_object(part, where, reasons)) {
    return std::nullopt;
  }
  only_keys(part, where, reasons, text_only ? std::set<std::string, std::less<>>{"text"}
                                             : std::set<std::string, std::less<>>{"text", "inlineData", "fileData"});
  size_t kinds = part.count("text") + part.count("inlineData") + part.count("fileData");
  if (kinds != 1) {
    reasons.push_back(where + ": a part holds exactly one of text, inlineData, fileData");
  }
  if (part.contains("inlineData") && expect_object(part["inlineData"], where + "/inlineData", reasons)) {
    const json& data = part["inlineData"];
    only_keys(data, where + "/inlineData", reasons, {"mimeType", "data"});
    require_key(data, "mimeType", where + "/inlineData", reasons);
    require_key(data, "data", where + "/inlineData", reasons);
    if (data.contains("mimeType")) {
      expect_nonempty_string(data["mimeType"], where + "/inlineData/mimeType", reasons);
    }
    if (data.contains("data") && expect_string(data["data"], where + "/inlineData/data", reasons) &&
        !is_base64(data["data"].get<std::string>())) {
      reasons.push_back(where + "/inlineData/data: not base64");
    }
  }
  if (part.contains("fileData") && expect_object(part["fileData"], where + "/fileData", reasons)) {
    only_keys(part["fileData"], where + "/fileData", reasons, {"mimeType", "fileUri"});
    require_key(part["fileData"], "fileUri", where + "/fileData", reasons);
  }
  if (part.contains("text") && expect_string(part["text"], where + "/text", reasons)) {
    return part["text"].get<std::string>();
  }
  return std::nullopt;
}

void check_gemini(const json& body, WireCall& call, Reasons& reasons) {
  only_keys(body, "/", reasons, k_gemini_fields);
  require_key(body, "contents", "/", reasons);
  if (body.contains("systemInstruction") && expect_object(body["systemInstruction"], "/systemInstruction", reasons)) {
    const json& system = body["systemInstruction"];
    only_keys(system, "/systemInstruction", reasons, {"parts", "role"});
    require_key(system, "parts", "/systemInstruction", reasons);
    if (system.contains("parts") && expect_array(system["parts"], "/systemInstruction/parts", reasons)) {
      for (size_t i = 0; i < system["parts"].size(); ++i) {
        std::optional<std::string> text =
            check_gemini_part(system["parts"][i], "/systemInstruction/parts/" + std::to_string(i), reasons, true);
        if (text) {
          call.system_text += (call.system_text.empty() ? "" : "\n") + *text;
        }
      }
    }
  }
  if (body.contains("contents") && expect_array(body["contents"], "/contents", reasons)) {
    const json& contents = body["contents"];
    if (contents.empty()) {
      reasons.push_back("/contents: must not be empty");
    }
    bool seen_user = false;
    std::string last_role;
    for (size_t i = 0; i < contents.size(); ++i) {
      const std::string at = "/contents/" + std::to_string(i);
      const json& content = contents[i];
      if (!expect_object(content, at, reasons)) {
        continue;
      }
      only_keys(content, at, reasons, {"role", "parts"});
      require_key(content, "parts", at, reasons);
      std::string role = "user";  // the API takes a missing role as the user's
      if (content.contains("role") && expect_one_of(content["role"], at + "/role", reasons, {"user", "model"})) {
        role = content["role"].get<std::string>();
      }
      last_role = role;
      std::optional<std::string> first_text;
      if (content.contains("parts") && expect_array(content["parts"], at + "/parts", reasons)) {
        if (content["parts"].empty()) {
          reasons.push_back(at + "/parts: must not be empty");
        }
        for (size_t j = 0; j < content["parts"].size(); ++j) {
          std::optional<std::string> text =
              check_gemini_part(content["parts"][j], at + "/parts/" + std::to_string(j), reasons, false);
          if (text && !first_text) {
            first_text = text;
          }
        }
      }
      if (role == "user" && !seen_user) {
        seen_user = true;
        if (!first_text) {
          reasons.push_back(at + "/parts: the user content has no text part");
        } else {
          call.document_text = *first_text;
        }
      }
    }
    if (!seen_user) {
      reasons.push_back("/contents: no user content");
    }
    if (!contents.empty() && last_role != "user") {
      reasons.push_back("/contents: the last content must be the user's");
    }
  }
  if (body.contains("generationConfig") && expect_object(body["generationConfig"], "/generationConfig", reasons)) {
    const json& config = body["generationConfig"];
    const std::string at = "/generationConfig";
    only_keys(config, at, reasons, k_gemini_generation_fields);
    std::string mime;
    if (config.contains("responseMimeType") &&
        expect_one_of(config["responseMimeType"], at + "/responseMimeType", reasons,
                      {"text/plain", "application/json", "text/x.enum"})) {
      mime = config["responseMimeType"].get<std::string>();
    }
    if (config.contains("responseSchema") && config.contains("responseJsonSchema")) {
      reasons.push_back(at + ": responseSchema and responseJsonSchema must not both be set");
    }
    for (const char* schema_field : {"responseSchema", "responseJsonSchema"}) {
      if (!config.contains(schema_field)) {
        continue;
      }
      if (mime != "application/json") {
        reasons.push_back(at + "/" + schema_field + ": needs responseMimeType application/json");
      }
      expect_object(config[schema_field], at + "/" + schema_field, reasons);
    }
    if (config.contains("responseJsonSchema") && config["responseJsonSchema"].is_object()) {
      // Gemini drops keywords it does not support without a word; `const` is the one avps's
      // schemas use (python-genai types.py lists what is honoured): it must arrive as an enum.
      walk_schema(config["responseJsonSchema"], at + "/responseJsonSchema", [&](const json& sub, const std::string& path) {
        if (sub.contains("const")) {
          reasons.push_back(path + "/const: not honoured by responseJsonSchema; send a one-value enum");
        }
      });
    }
    if (config.contains("responseSchema") && config["responseSchema"].is_object()) {
      // The OpenAPI subset names its types in capitals (lower case is accepted too).
      walk_schema(config["responseSchema"], at + "/responseSchema", [&](const json& sub, const std::string& path) {
        if (auto it = sub.find("type"); it != sub.end()) {
          static const std::set<std::string> k_types = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"};
          if (!it->is_string()) {
            reasons.push_back(path + "/type: responseSchema takes one type name (nullable for null)");
          } else {
            std::string upper = it->get<std::string>();
            std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
            if (!k_types.count(upper)) {
              reasons.push_back(path + "/type: \"" + it->get<std::string>() + "\" is not an OpenAPI type");
            }
          }
        }
      });
    }
    if (config.contains("maxOutputTokens") &&
        expect_integer(config["maxOutputTokens"], at + "/maxOutputTokens", reasons, 1)) {
      call.max_output_tokens = config["maxOutputTokens"].get<int64_t>();
    }
    if (config.contains("temperature")) {
      expect_number(config["temperature"], at + "/temperature", reasons, 0, 2);
    }
    if (config.contains("topP")) {
      expect_number(config["topP"], at + "/topP", reasons, 0, 1);
    }
    if (config.contains("topK")) {
      expect_integer(config["topK"], at + "/topK", reasons, 1);
    }
    if (config.contains("candidateCount")) {
      expect_integer(config["candidateCount"], at + "/candidateCount", reasons, 1);
    }
    if (config.contains("seed")) {
      expect_integer(config["seed"], at + "/seed", reasons, std::numeric_limits<int64_t>::min());
    }
    if (config.contains("stopSequences") && expect_array(config["stopSequences"], at + "/stopSequences", reasons)) {
      for (size_t i = 0; i < config["stopSequences"].size(); ++i) {
        expect_string(config["stopSequences"][i], at + "/stopSequences/" + std::to_string(i), reasons);
      }
    }
    if (config.contains("responseModalities") &&
        expect_array(config["responseModalities"], at + "/responseModalities", reasons)) {
      for (size_t i = 0; i < config["responseModalities"].size(); ++i) {
        expect_one_of(config["responseModalities"][i], at + "/responseModalities/" + std::to_string(i), reasons,
                      {"TEXT", "IMAGE", "AUDIO"});
      }
    }
    if (config.contains("thinkingConfig") && expect_object(config["thinkingConfig"], at + "/thinkingConfig", reasons)) {
      const json& thinking = config["thinkingConfig"];
      only_keys(thinking, at + "/thinkingConfig", reasons, {"thinkingLevel", "thinkingBudget", "includeThoughts"});
      if (thinking.contains("thinkingLevel") && thinking.contains("thinkingBudget")) {
        reasons.push_back(at + "/thinkingConfig: thinkingLevel and thinkingBudget must not both be set");
      }
      if (thinking.contains("thinkingLevel")) {
        expect_one_of(thinking["thinkingLevel"], at + "/thinkingConfig/thinkingLevel", reasons,
                      {"MINIMAL", "LOW", "MEDIUM", "HIGH"});
      }
      if (thinking.contains("thinkingBudget")) {
        expect_integer(thinking["thinkingBudget"], at + "/thinkingConfig/thinkingBudget", reasons, -1);
      }
      if (thinking.contains("includeThoughts")) {
        expect_bool(thinking["includeThoughts"], at + "/thinkingConfig/includeThoughts", reasons);
      }
    }
  }
  if (body.contains("safetySettings") && expect_array(body["safetySettings"], "/safetySettings", reasons)) {
    for (size_t i = 0; i < body["safetySettings"].size(); ++i) {
      const std::string at = "/safetySettings/" + std::to_string(i);
      const json& setting = body["safetySettings"][i];
      if (!expect_object(setting, at, reasons)) {
        continue;
      }
      only_keys(setting, at, reasons, {"category", "threshold", "method"});
      require_key(setting, "category", at, reasons);
      require_key(setting, "threshold", at, reasons);
      if (setting.contains("category") && expect_string(setting["category"], at + "/category", reasons) &&
          setting["category"].get<std::string>().rfind("HARM_CATEGORY_", 0) != 0) {
        reasons.push_back(at + "/category: not a HARM_CATEGORY_ value");
      }
      if (setting.contains("threshold")) {
        expect_one_of(setting["threshold"], at + "/threshold", reasons,
                      {"HARM_BLOCK_THRESHOLD_UNSPECIFIED", "BLOCK_LOW_AND_ABOVE", "BLOCK_MEDIUM_AND_ABOVE",
                       "BLOCK_ONLY_HIGH", "BLOCK_NONE", "OFF"});
      }
    }
  }
  if (body.contains("tools")) {
    expect_array(body["tools"], "/tools", reasons);
  }
  if (body.contains("toolConfig")) {
    expect_object(body["toolConfig"], "/toolConfig", reasons);
  }
}

// ---------------------------------------------------------------------------------------------
// Transport checks: query, content type, auth headers.

// The query string's parameter names (httplib would also fold a form body into params).
std::vector<std::string> query_names(const std::string& target) {
  std::vector<std::string> names;
  size_t question = target.find('?');
  if (question == std::string::npos) {
    return names;
  }
  std::string query = target.substr(question + 1);
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) {
      end = query.size();
    }
    std::string pair = query.substr(start, end - start);
    if (!pair.empty()) {
      names.push_back(pair.substr(0, pair.find('=')));
    }
    start = end + 1;
  }
  return names;
}

void check_transport(Provider provider, const httplib::Request& req, const FakeProviderKeys& keys,
                     std::string& anthropic_version, std::set<std::string>& betas, Reasons& reasons) {
  for (const std::string& name : query_names(req.target)) {
    std::string lowered = lower(name);
    if (lowered == "key" || lowered == "api_key" || lowered == "apikey" || lowered == "api-key") {
      reasons.push_back("query: a key in the URL (\"" + name + "=\"); keys go in a header only");
    } else {
      reasons.push_back("query: unexpected parameter \"" + name + "\"");
    }
  }
  std::string content_type = lower(req.get_header_value("Content-Type"));
  content_type = content_type.substr(0, content_type.find(';'));
  content_type.erase(std::remove(content_type.begin(), content_type.end(), ' '), content_type.end());
  if (content_type != "application/json") {
    reasons.push_back("header Content-Type: must be application/json, not \"" + req.get_header_value("Content-Type") +
                      "\"");
  }
  // Never put a header value in a reason: it may be a key.
  auto check_key_header = [&](const std::string& header, const std::string& prefix, const std::string& expected) {
    if (expected.empty()) {
      if (req.has_header(header.c_str())) {
        reasons.push_back("header " + header + ": sent although no key is configured");
      }
      return;
    }
    if (!req.has_header(header.c_str())) {
      reasons.push_back("header " + header + ": missing");
    } else if (req.get_header_value_count(header.c_str()) != 1) {
      reasons.push_back("header " + header + ": sent more than once");
    } else if (req.get_header_value(header.c_str()) != prefix + expected) {
      reasons.push_back("header " + header + ": wrong key" + (prefix.empty() ? "" : " (expected \"" + prefix + "<key>\")"));
    }
  };
  auto refuse_header = [&](const std::string& header) {
    if (req.has_header(header.c_str())) {
      reasons.push_back("header " + header + ": not an auth header of " + provider_name(provider));
    }
  };
  switch (provider) {
    case Provider::openai:
      check_key_header("Authorization", "Bearer ", keys.openai);
      refuse_header("x-api-key");
      refuse_header("x-goog-api-key");
      break;
    case Provider::anthropic:
      // x-api-key, or an OAuth-style Bearer token instead; never both.
      if (!keys.anthropic.empty() && req.has_header("Authorization") && !req.has_header("x-api-key")) {
        check_key_header("Authorization", "Bearer ", keys.anthropic);
      } else {
        check_key_header("x-api-key", "", keys.anthropic);
        if (req.has_header("Authorization")) {
          reasons.push_back("header Authorization: not together with x-api-key");
        }
      }
      refuse_header("x-goog-api-key");
      if (!req.has_header("anthropic-version")) {
        reasons.push_back("header anthropic-version: missing (required)");
      } else {
        anthropic_version = req.get_header_value("anthropic-version");
        if (anthropic_version != k_anthropic_version_2023 && anthropic_version != k_anthropic_version_2026) {
          reasons.push_back("header anthropic-version: \"" + anthropic_version + "\" is not " +
                            std::string(k_anthropic_version_2023) + " or " + std::string(k_anthropic_version_2026));
        }
      }
      if (req.has_header("anthropic-beta")) {
        std::string list = req.get_header_value("anthropic-beta");
        size_t start = 0;
        while (start <= list.size()) {
          size_t end = std::min(list.find(',', start), list.size());
          std::string flag = list.substr(start, end - start);
          flag.erase(std::remove(flag.begin(), flag.end(), ' '), flag.end());
          if (flag.empty()) {
            reasons.push_back("header anthropic-beta: an empty flag");
          } else {
            betas.insert(flag);
          }
          start = end + 1;
        }
      }
      break;
    case Provider::gemini:
      check_key_header("x-goog-api-key", "", keys.gemini);
      refuse_header("x-api-key");
      refuse_header("Authorization");
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Answers.

// `text` cut to at most `bytes`, on a UTF-8 character boundary.
std::string cut_utf8(const std::string& text, size_t bytes) {
  if (bytes >= text.size()) {
    return text;
  }
  while (bytes > 0 && (static_cast<unsigned char>(text[bytes]) & 0xC0U) == 0x80U) {
    --bytes;
  }
  return text.substr(0, bytes);
}

const json& resolve_ref(const json& root, const json& schema) {
  const json* current = &schema;
  for (int hops = 0; hops < 16 && current->is_object() && current->contains("$ref"); ++hops) {
    const json& ref = (*current)["$ref"];
    if (!ref.is_string() || ref.get_ref<const std::string&>().rfind('#', 0) != 0) {
      break;
    }
    try {
      current = &root.at(json::json_pointer(ref.get<std::string>().substr(1)));
    } catch (const json::exception&) {
      break;
    }
  }
  return *current;
}

// What a strict model does: every property of the schema is present, null when it has no value.
void fill_strict_nulls(const json& root, const json& schema_in, json& value, int depth) {
  if (depth > 64) {
    return;
  }
  const json& schema = resolve_ref(root, schema_in);
  if (!schema.is_object()) {
    return;
  }
  if (value.is_object()) {
    const json* chosen = &schema;
    if (!schema.contains("properties") && schema.contains("anyOf") && schema["anyOf"].is_array()) {
      // The branch that describes this object: one that has every member as a property.
      chosen = nullptr;
      for (const json& branch_in : schema["anyOf"]) {
        const json& branch = resolve_ref(root, branch_in);
        if (!branch.is_object() || !branch.contains("properties")) {
          continue;
        }
        bool fits = std::all_of(value.items().begin(), value.items().end(),
                                [&](const auto& member) { return branch["properties"].contains(member.key()); });
        if (fits) {
          chosen = &branch;
          break;
        }
      }
    }
    if (chosen == nullptr || !chosen->contains("properties") || !(*chosen)["properties"].is_object()) {
      return;
    }
    for (const auto& [name, property] : (*chosen)["properties"].items()) {
      if (!value.contains(name)) {
        value[name] = nullptr;
      } else {
        fill_strict_nulls(root, property, value[name], depth + 1);
      }
    }
  } else if (value.is_array()) {
    const json* items = nullptr;
    if (schema.contains("items") && schema["items"].is_object()) {
      items = &schema["items"];
    } else if (schema.contains("anyOf") && schema["anyOf"].is_array()) {
      for (const json& branch_in : schema["anyOf"]) {
        const json& branch = resolve_ref(root, branch_in);
        if (branch.is_object() && branch.contains("items") && branch["items"].is_object()) {
          items = &branch["items"];
          break;
        }
      }
    }
    if (items != nullptr) {
      for (json& element : value) {
        fill_strict_nulls(root, *items, element, depth + 1);
      }
    }
  }
}

enum class AnswerShape { normal, length, refusal };

struct AnswerUsage {
  int64_t input_tokens = 0;  ///< every input token of the request
  int64_t cache_write = 0;   ///< Anthropic cache_creation_input_tokens
  int64_t cache_read = 0;    ///< cached input tokens (Anthropic cache_read_input_tokens)
};

constexpr std::string_view k_refusal_words = "I can't help with that request.";

json openai_answer(const WireCall& call, const std::string& text, AnswerShape shape, const AnswerUsage& usage,
                   int64_t id) {
  int64_t output_tokens = shape == AnswerShape::refusal ? tokens_of(k_refusal_words.size()) : tokens_of(text.size());
  json message = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}, {"annotations", json::array()}};
  if (shape == AnswerShape::refusal) {
    message["content"] = nullptr;
    message["refusal"] = k_refusal_words;
  }
  json choices = json::array();
  for (int64_t i = 0; i < call.choices; ++i) {
    choices.push_back({{"index", i},
                       {"finish_reason", shape == AnswerShape::length ? "length" : "stop"},
                       {"message", message},
                       {"logprobs", nullptr}});
  }
  return {{"id", "chatcmpl-fake-" + std::to_string(id)},
          {"object", "chat.completion"},
          {"created", 1764000000 + id},
          {"model", call.model},
          {"system_fingerprint", "fp_avps_fake"},
          {"service_tier", "default"},
          {"choices", std::move(choices)},
          {"usage",
           {{"prompt_tokens", usage.input_tokens},
            {"completion_tokens", output_tokens},
            {"total_tokens", usage.input_tokens + output_tokens},
            {"prompt_tokens_details", {{"cached_tokens", usage.cache_read}, {"audio_tokens", 0}}},
            {"completion_tokens_details",
             {{"reasoning_tokens", 0},
              {"audio_tokens", 0},
              {"accepted_prediction_tokens", 0},
              {"rejected_prediction_tokens", 0}}}}}};
}

json anthropic_answer(const WireCall& call, const std::string& text, AnswerShape shape, const AnswerUsage& usage,
                      int64_t id) {
  json content = json::array();
  std::string stop_reason = "end_turn";
  int64_t output_tokens = tokens_of(text.size());
  if (shape == AnswerShape::refusal) {
    content.push_back({{"type", "text"}, {"text", k_refusal_words}, {"citations", nullptr}});
    stop_reason = "refusal";
    output_tokens = tokens_of(k_refusal_words.size());
  } else if (!call.forced_tool.empty()) {
    json input = json::object();
    if (shape == AnswerShape::normal) {
      input = json::parse(text, nullptr, false);
      if (input.is_discarded()) {
        input = json::object();
      }
    }
    content.push_back({{"type", "tool_use"},
                       {"id", "toolu_fake_" + std::to_string(id)},
                       {"name", call.forced_tool},
                       {"input", std::move(input)}});
    stop_reason = shape == AnswerShape::length ? "max_tokens" : "tool_use";
  } else {
    content.push_back({{"type", "text"}, {"text", text}, {"citations", nullptr}});
    stop_reason = shape == AnswerShape::length ? "max_tokens" : "end_turn";
  }
  return {{"id", "msg_fake_" + std::to_string(id)},
          {"type", "message"},
          {"role", "assistant"},
          {"model", call.model},
          {"content", std::move(content)},
          {"stop_reason", stop_reason},
          {"stop_sequence", nullptr},
          {"usage",
           {{"input_tokens", std::max<int64_t>(0, usage.input_tokens - usage.cache_write - usage.cache_read)},
            {"output_tokens", output_tokens},
            {"cache_creation_input_tokens", usage.cache_write},
            {"cache_read_input_tokens", usage.cache_read},
            {"service_tier", "standard"}}}};
}

json gemini_answer(const WireCall& call, const std::string& text, AnswerShape shape, const AnswerUsage& usage,
                   int64_t id) {
  json usage_metadata = {{"promptTokenCount", usage.input_tokens}};
  if (usage.cache_read > 0) {
    usage_metadata["cachedContentTokenCount"] = usage.cache_read;
  }
  json out = {{"modelVersion", call.model}, {"responseId", "fake-" + std::to_string(id)}};
  if (shape == AnswerShape::refusal) {
    usage_metadata["totalTokenCount"] = usage.input_tokens;
    out["promptFeedback"] = {{"blockReason", "SAFETY"}};
  } else {
    int64_t output_tokens = tokens_of(text.size());
    usage_metadata["candidatesTokenCount"] = output_tokens;
    usage_metadata["totalTokenCount"] = usage.input_tokens + output_tokens;
    out["candidates"] = json::array({{{"content", {{"role", "model"}, {"parts", json::array({{{"text", text}}})}}},
                                      {"finishReason", shape == AnswerShape::length ? "MAX_TOKENS" : "STOP"},
                                      {"index", 0}}});
  }
  out["usageMetadata"] = std::move(usage_metadata);
  return out;
}

// The error body of `status` in the provider's format.
json error_body(Provider provider, int status, const std::string& message, const std::string& openai_type,
                const std::string& openai_code, const std::string& anthropic_type, const std::string& gemini_status,
                int64_t id) {
  switch (provider) {
    case Provider::openai:
      return {{"error",
               {{"message", message},
                {"type", openai_type},
                {"param", nullptr},
                {"code", openai_code.empty() ? json(nullptr) : json(openai_code)}}}};
    case Provider::anthropic:
      return {{"type", "error"},
              {"error", {{"type", anthropic_type}, {"message", message}}},
              {"request_id", "req_fake_" + std::to_string(id)}};
    case Provider::gemini:
      return {{"error", {{"code", status}, {"message", message}, {"status", gemini_status}}}};
  }
  return json::object();
}

std::string http_date(int64_t seconds_from_now) {
  std::time_t when = std::time(nullptr) + static_cast<std::time_t>(seconds_from_now);
  std::tm parts{};
  ::gmtime_r(&when, &parts);
  char buffer[64];
  std::strftime(buffer, sizeof(buffer), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  return buffer;
}

// ---------------------------------------------------------------------------------------------
// Faults.

const std::set<std::string, std::less<>> k_fault_names = {"429",   "500",     "502",   "503",
                                                         "529",   "hang",    "reset", "trickle",
                                                         "malformed_json", "truncated", "schema_invalid",
                                                         "refusal", "length"};

struct FaultRule {
  std::string fault;
  int64_t times = 1;  ///< -1 = forever
  int64_t skip = 0;
  std::string provider;
  std::string skill;
  std::optional<int64_t> retry_after_s;
  bool retry_after_date = false;
  std::optional<int64_t> hang_ms;
  bool insufficient_quota = false;

  json to_json() const {
    json out = {{"fault", fault}, {"times", times}, {"skip", skip}};
    if (!provider.empty()) {
      out["provider"] = provider;
    }
    if (!skill.empty()) {
      out["skill"] = skill;
    }
    if (retry_after_s) {
      out["retry_after_s"] = *retry_after_s;
    }
    if (retry_after_date) {
      out["retry_after_date"] = true;
    }
    if (hang_ms) {
      out["hang_ms"] = *hang_ms;
    }
    if (insufficient_quota) {
      out["insufficient_quota"] = true;
    }
    return out;
  }
};

Result<std::vector<FaultRule>> parse_faults(const json& rules) {
  if (!rules.is_array()) {
    return make_error(ErrorCode::invalid_argument, "faults: must be an array of rules");
  }
  std::vector<FaultRule> out;
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string at = "faults[" + std::to_string(i) + "]";
    const json& rule = rules[i];
    Reasons reasons;
    if (!expect_object(rule, at, reasons)) {
      return make_error(ErrorCode::invalid_argument, reasons.front());
    }
    only_keys(rule, at, reasons,
              {"fault", "times", "skip", "provider", "skill", "retry_after_s", "retry_after_date", "hang_ms",
               "insufficient_quota"});
    require_key(rule, "fault", at, reasons);
    FaultRule parsed;
    if (rule.contains("fault") && expect_string(rule["fault"], at + "/fault", reasons)) {
      parsed.fault = rule["fault"].get<std::string>();
      if (!k_fault_names.count(parsed.fault)) {
        reasons.push_back(at + "/fault: unknown fault \"" + parsed.fault + "\"");
      }
    }
    if (rule.contains("times") && expect_integer(rule["times"], at + "/times", reasons, -1)) {
      parsed.times = rule["times"].get<int64_t>();
    }
    if (rule.contains("skip") && expect_integer(rule["skip"], at + "/skip", reasons, 0)) {
      parsed.skip = rule["skip"].get<int64_t>();
    }
    if (rule.contains("provider") &&
        expect_one_of(rule["provider"], at + "/provider", reasons, {"openai", "anthropic", "gemini"})) {
      parsed.provider = rule["provider"].get<std::string>();
    }
    if (rule.contains("skill") && expect_nonempty_string(rule["skill"], at + "/skill", reasons)) {
      parsed.skill = rule["skill"].get<std::string>();
    }
    if (rule.contains("retry_after_s") && expect_integer(rule["retry_after_s"], at + "/retry_after_s", reasons, 0)) {
      parsed.retry_after_s = rule["retry_after_s"].get<int64_t>();
    }
    if (rule.contains("retry_after_date") && expect_bool(rule["retry_after_date"], at + "/retry_after_date", reasons)) {
      parsed.retry_after_date = rule["retry_after_date"].get<bool>();
    }
    if (rule.contains("hang_ms") && expect_integer(rule["hang_ms"], at + "/hang_ms", reasons, 0)) {
      parsed.hang_ms = rule["hang_ms"].get<int64_t>();
    }
    if (rule.contains("insufficient_quota") &&
        expect_bool(rule["insufficient_quota"], at + "/insufficient_quota", reasons)) {
      parsed.insufficient_quota = rule["insufficient_quota"].get<bool>();
    }
    if (!reasons.empty()) {
      std::string message;
      for (const std::string& reason : reasons) {
        message += (message.empty() ? "" : "; ") + reason;
      }
      return make_error(ErrorCode::invalid_argument, message);
    }
    out.push_back(std::move(parsed));
  }
  return out;
}

// Closes the connection of `req` before anything is written, as a peer that resets would. httplib
// has no call for it, so the socket is found by its two ends among the process's descriptors and
// shut down; httplib's later write fails and it closes the socket itself.
bool reset_connection(const httplib::Request& req) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return false;
  }
  bool done = false;
  while (dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') {
      continue;
    }
    sockaddr_in local{};
    sockaddr_in peer{};
    socklen_t local_size = sizeof(local);
    socklen_t peer_size = sizeof(peer);
    const int sock = static_cast<int>(fd);
    if (::getsockname(sock, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 || local.sin_family != AF_INET ||
        ::getpeername(sock, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) {
      continue;
    }
    if (ntohs(local.sin_port) == req.local_port && ntohs(peer.sin_port) == req.remote_port) {
      // Linger 0: the close httplib does later sends RST rather than a graceful FIN.
      linger abort_on_close{1, 0};
      ::setsockopt(sock, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
      ::shutdown(sock, SHUT_RDWR);
      done = true;
      break;
    }
  }
  ::closedir(dir);
  return done;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct FakeProvider::Impl {
  struct Counters {
    int64_t requests = 0;
    int64_t valid = 0;
    int64_t invalid = 0;
    int64_t answered = 0;
    int64_t faults_applied = 0;
  };

  /// What one request came to, for the counters and the log.
  struct Outcome {
    Provider provider = Provider::openai;
    std::string path;
    int status = 0;
    bool valid = false;
    Reasons reasons;
    std::string fault;
    std::string skill;
    bool answered = false;
    std::string body_key;      ///< provider + sha256(body), valid requests only
    std::string document_key;  ///< sha256 of the document, valid requests only
  };

  explicit Impl(FakeProviderConfig config_in) : config(std::move(config_in)) {}

  FakeProviderConfig config;
  httplib::Server server;
  std::unique_ptr<FakeJobs> jobs;  ///< the async job APIs (fake_jobs.hpp)
  std::unique_ptr<FakeImages> images;  ///< the image APIs (fake_images.hpp)
  std::thread thread;
  std::atomic<int> port{0};
  std::optional<skills::Registry> registry;
  std::unique_ptr<backends::SimBackend> sim;
  uint64_t seed = 0;

  // Guarded by mutex.
  mutable std::mutex mutex;
  std::vector<FaultRule> faults;
  Counters totals;
  std::map<std::string, Counters> by_provider;
  std::map<std::string, Counters> by_skill;
  std::map<std::string, int64_t> by_fault;
  Reasons kept_reasons;
  int64_t duplicates = 0;
  std::map<std::string, int64_t> bodies;
  std::map<std::string, int64_t> documents;
  std::set<std::string> seen_system_texts;  ///< provider + sha256(system text)
  std::map<std::string, json> schemas;      ///< output schema by skill
  int64_t next_id = 0;
  std::ofstream log;

  // Stop and shutdown coordination.
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopping = false;
  bool shutdown_requested = false;

  /// Sleeps `ms`, or less when the server stops. False when cut short.
  bool sleep_ms(int64_t ms) {
    std::unique_lock<std::mutex> lock(stop_mutex);
    return !stop_cv.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping; });
  }

  int64_t take_id() {
    std::lock_guard<std::mutex> lock(mutex);
    return ++next_id;
  }

  void record(const Outcome& outcome) {
    std::lock_guard<std::mutex> lock(mutex);
    const std::string provider = provider_name(outcome.provider);
    for (Counters* counters : {&totals, &by_provider[provider]}) {
      ++counters->requests;
      ++(outcome.valid ? counters->valid : counters->invalid);
      counters->answered += outcome.answered ? 1 : 0;
      counters->faults_applied += outcome.fault.empty() ? 0 : 1;
    }
    if (outcome.valid) {
      Counters& skill = by_skill[outcome.skill];
      ++skill.requests;
      skill.answered += outcome.answered ? 1 : 0;
      if (bodies[outcome.body_key]++ > 0) {
        ++duplicates;
      }
      ++documents[outcome.document_key];
    }
    if (!outcome.fault.empty()) {
      ++by_fault[outcome.fault];
    }
    for (const std::string& reason : outcome.reasons) {
      if (kept_reasons.size() < k_kept_reasons) {
        kept_reasons.push_back(provider + " " + outcome.path + ": " + reason);
      }
    }
    if (log.is_open()) {
      json line = {{"provider", provider},
                   {"path", outcome.path},
                   {"status", outcome.status},
                   {"valid", outcome.valid},
                   {"reasons", outcome.reasons},
                   {"fault", outcome.fault.empty() ? json(nullptr) : json(outcome.fault)},
                   {"skill", outcome.skill.empty() ? json(nullptr) : json(outcome.skill)}};
      log << line.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
      log.flush();
    }
  }

  /// The first rule that matches and has times left, counted as used; nullopt for none.
  std::optional<FaultRule> take_fault(Provider provider, const std::string& skill) {
    std::lock_guard<std::mutex> lock(mutex);
    for (FaultRule& rule : faults) {
      if ((!rule.provider.empty() && rule.provider != provider_name(provider)) ||
          (!rule.skill.empty() && rule.skill != skill) || rule.times == 0) {
        continue;
      }
      if (rule.skip > 0) {
        --rule.skip;
        continue;
      }
      if (rule.times > 0) {
        --rule.times;
      }
      return rule;
    }
    return std::nullopt;
  }

  /// The output schema of `skill` from its definition, or the reason there is none.
  Result<json> output_schema_of(const std::string& skill) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (auto it = schemas.find(skill); it != schemas.end()) {
        return it->second;
      }
    }
    const skills::SkillDef* definition = registry->find(skill);
    if (definition == nullptr) {
      return make_error(ErrorCode::not_found, "unknown skill \"" + skill + "\"");
    }
    AVPS_TRY_ASSIGN(json schema, skills::output_schema(*definition, config.data_dir));
    std::lock_guard<std::mutex> lock(mutex);
    schemas[skill] = schema;
    return schema;
  }

  /// Usage of an answer, with the prompt-cache state updated for this request.
  AnswerUsage usage_of(const WireCall& call, size_t body_bytes) {
    AnswerUsage usage;
    usage.input_tokens = tokens_of(body_bytes);
    if (call.system_text.empty()) {
      return usage;
    }
    const int64_t system_tokens = std::min(usage.input_tokens, tokens_of(call.system_text.size()));
    const std::string key = provider_name(call.provider) + "\n" + core::sha256_hex(call.system_text);
    std::lock_guard<std::mutex> lock(mutex);
    const bool seen = !seen_system_texts.insert(key).second;
    if (call.provider == Provider::anthropic) {
      // Explicit caching only: the marked system block is written once, then read.
      if (call.cache_marked) {
        (seen ? usage.cache_read : usage.cache_write) = system_tokens;
      }
    } else if (seen && system_tokens >= k_implicit_cache_min_tokens) {
      usage.cache_read = system_tokens;
    }
    return usage;
  }

  void respond_json(httplib::Response& res, int status, const json& body, Provider provider, int64_t id) {
    res.status = status;
    switch (provider) {
      case Provider::openai:
        res.set_header("x-request-id", "req_fake_" + std::to_string(id));
        for (const char* what : {"requests", "tokens"}) {
          res.set_header(std::string("x-ratelimit-limit-") + what, "1000000");
          res.set_header(std::string("x-ratelimit-remaining-") + what, "999999");
          res.set_header(std::string("x-ratelimit-reset-") + what, "6ms");
        }
        break;
      case Provider::anthropic:
        res.set_header("request-id", "req_fake_" + std::to_string(id));
        break;
      case Provider::gemini:
        break;
    }
    res.set_content(body.dump(), "application/json");
  }

  void respond_invalid(httplib::Response& res, Provider provider, const Reasons& reasons, int status, int64_t id) {
    std::string message;
    for (const std::string& reason : reasons) {
      message += (message.empty() ? "" : "; ") + reason;
    }
    json body = error_body(provider, status, message, "invalid_request_error", "", 
                           status == 404 ? "not_found_error" : "invalid_request_error",
                           status == 404 ? "NOT_FOUND" : "INVALID_ARGUMENT", id);
    respond_json(res, status, body, provider, id);
  }

  // An error status fault: the provider's body, Retry-After (Gemini: RetryInfo instead).
  void respond_fault_status(httplib::Response& res, Provider provider, const FaultRule& rule, int64_t id) {
    const int status = std::stoi(rule.fault);
    std::string message = "fake provider: injected " + rule.fault;
    std::string openai_type = "server_error";
    std::string openai_code;
    std::string anthropic_type = "api_error";
    std::string gemini_status = "UNAVAILABLE";
    if (status == 429) {
      openai_type = rule.insufficient_quota ? "insufficient_quota" : "requests";
      openai_code = rule.insufficient_quota ? "insufficient_quota" : "rate_limit_exceeded";
      anthropic_type = "rate_limit_error";
      gemini_status = "RESOURCE_EXHAUSTED";
      message = rule.insufficient_quota ? "You exceeded your current quota (fake provider)."
                                        : "Rate limit reached (fake provider).";
    } else if (status == 500) {
      gemini_status = "INTERNAL";
    } else if (status == 503 || status == 529) {
      anthropic_type = "overloaded_error";
      message = "Overloaded (fake provider).";
    }
    json body = error_body(provider, status, message, openai_type, openai_code, anthropic_type, gemini_status, id);
    if (provider == Provider::anthropic && rule.insufficient_quota) {
      body["error"]["details"] = {{"error_code", "enforced_spend_limit_reached"}};
    }
    if (provider == Provider::gemini) {
      json details = json::array();
      if (status == 429) {
        details.push_back({{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
                           {"violations",
                            json::array({{{"quotaMetric", "generativelanguage.googleapis.com/generate_content_requests"},
                                          {"quotaId", rule.insufficient_quota ? "GenerateRequestsPerDayPerProject"
                                                                              : "GenerateRequestsPerMinutePerProject"}}})}});
      }
      if (rule.retry_after_s && !rule.insufficient_quota) {
        details.push_back({{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                           {"retryDelay", std::to_string(*rule.retry_after_s) + "s"}});
      }
      if (!details.empty()) {
        body["error"]["details"] = std::move(details);
      }
    } else if (rule.retry_after_s) {
      res.set_header("Retry-After",
                     rule.retry_after_date ? http_date(*rule.retry_after_s) : std::to_string(*rule.retry_after_s));
    }
    respond_json(res, status, body, provider, id);
  }

  void handle_provider(Provider provider, const httplib::Request& req, httplib::Response& res) {
    const int64_t id = take_id();
    Outcome outcome;
    outcome.provider = provider;
    outcome.path = req.path;
    WireCall call;
    call.provider = provider;
    std::string anthropic_version;
    std::set<std::string> betas;
    check_transport(provider, req, config.keys, anthropic_version, betas, outcome.reasons);
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
      outcome.reasons.push_back("body: not JSON");
    } else if (expect_object(body, "body", outcome.reasons)) {
      switch (provider) {
        case Provider::openai:
          check_openai(body, call, outcome.reasons);
          break;
        case Provider::anthropic:
          check_anthropic(body, anthropic_version, betas, call, outcome.reasons);
          break;
        case Provider::gemini:
          call.model = req.matches.size() > 1 ? req.matches[1].str() : std::string();
          if (!std::regex_match(call.model, k_gemini_model)) {
            outcome.reasons.push_back("path: \"" + call.model + "\" is not a model name");
          }
          check_gemini(body, call, outcome.reasons);
          break;
      }
    }

    // The document and the sim's answer; a request the sim cannot answer is a bad request too.
    backends::ModelResponse sim_answer;
    if (outcome.reasons.empty()) {
      Result<backends::ModelRequest> document = backends::parse_request_document(call.document_text);
      if (!document.ok()) {
        outcome.reasons.push_back("user message: the first text part holds no <avps-request> document (" +
                                  document.error().message + ")");
      } else {
        backends::ModelRequest request = std::move(document).value();
        outcome.skill = request.skill;
        request.model = call.model;
        request.prompt = call.system_text;
        request.max_output_tokens =
            static_cast<int>(std::min<int64_t>(call.max_output_tokens, std::numeric_limits<int>::max()));
        request.seed = seed;
        Result<json> schema = output_schema_of(request.skill);
        if (request.skill == backends::k_ping_skill) {
          sim_answer.text = R"({"ok":true})";  // `avps models check --ping`
        } else if (!schema.ok()) {
          outcome.reasons.push_back("document: " + schema.error().message);
        } else {
          request.output_schema = std::move(schema).value();
          Result<backends::ModelResponse> answer = sim->complete(request);
          if (!answer.ok()) {
            outcome.reasons.push_back("document: " + answer.error().message);
          } else {
            sim_answer = std::move(answer).value();
          }
        }
      }
    }
    if (!outcome.reasons.empty()) {
      outcome.status = 400;
      respond_invalid(res, provider, outcome.reasons, 400, id);
      record(outcome);
      return;
    }
    outcome.valid = true;
    outcome.body_key = provider_name(provider) + "\n" + core::sha256_hex(req.body);
    outcome.document_key = document_key(call.document_text).value_or("");

    std::optional<FaultRule> fault = take_fault(provider, outcome.skill);
    const std::string fault_name = fault ? fault->fault : "";
    outcome.fault = fault_name;

    if (fault_name == "429" || fault_name == "500" || fault_name == "502" || fault_name == "503" ||
        fault_name == "529") {
      respond_fault_status(res, provider, *fault, id);
      outcome.status = res.status;
      record(outcome);
      return;
    }
    if (fault_name == "reset") {
      // Counted first: the client may ask for the stats as soon as its connection drops.
      outcome.status = 0;
      record(outcome);
      if (!reset_connection(req)) {
        // Nothing to reset (the socket could not be found): the closest is no body at all.
        res.status = 500;
      }
      return;
    }

    // The answer text and how it ends.
    std::string text = sim_answer.text;
    AnswerShape shape = AnswerShape::normal;
    json parsed = json::parse(text, nullptr, false);
    if (!sim_answer.stop_reason.empty() || parsed.is_discarded()) {
      // The sim stopped at the output-token limit: what a provider reports as a length stop.
      shape = AnswerShape::length;
    } else if (call.strict_schema) {
      fill_strict_nulls(*call.strict_schema, *call.strict_schema, parsed, 0);
      text = parsed.dump();
    }
    if (fault_name == "schema_invalid") {
      text = R"({"unexpected":true})";
      shape = AnswerShape::normal;
    } else if (fault_name == "length") {
      text = cut_utf8(text, text.size() / 2);
      shape = AnswerShape::length;
    } else if (fault_name == "refusal") {
      shape = AnswerShape::refusal;
    }
    AnswerUsage usage = usage_of(call, req.body.size());
    json answer;
    switch (provider) {
      case Provider::openai:
        answer = openai_answer(call, text, shape, usage, id);
        break;
      case Provider::anthropic:
        answer = anthropic_answer(call, text, shape, usage, id);
        break;
      case Provider::gemini:
        answer = gemini_answer(call, text, shape, usage, id);
        break;
    }
    respond_json(res, 200, answer, provider, id);
    outcome.status = 200;
    outcome.answered = fault_name.empty() || fault_name == "hang" || fault_name == "trickle" ||
                       fault_name == "schema_invalid" || fault_name == "length";
    if (fault_name == "hang") {
      sleep_ms(fault->hang_ms.value_or(k_default_hang_ms));
    } else if (fault_name == "malformed_json") {
      // A complete HTTP message whose JSON stops in the middle (a proxy's cut-off page).
      res.set_content(res.body.substr(0, res.body.size() / 2), "application/json");
    } else if (fault_name == "truncated") {
      // Content-Length promises the whole body; half arrives, then the connection closes.
      auto full = std::make_shared<std::string>(std::move(res.body));
      res.body.clear();
      res.headers.erase("Content-Type");  // set_content_provider sets it again
      res.set_content_provider(full->size(), "application/json",
                               [full](size_t offset, size_t, httplib::DataSink& sink) {
                                 if (offset == 0) {
                                   sink.write(full->data(), full->size() / 2);
                                 }
                                 return false;
                               });
    } else if (fault_name == "trickle") {
      auto full = std::make_shared<std::string>(std::move(res.body));
      res.body.clear();
      res.headers.erase("Content-Type");  // set_content_provider sets it again
      size_t chunk = std::max(k_trickle_chunk_bytes, (full->size() + k_trickle_max_chunks - 1) / k_trickle_max_chunks);
      size_t chunks = std::max<size_t>(1, (full->size() + chunk - 1) / chunk);
      int64_t pause_ms = fault->hang_ms.value_or(k_default_trickle_ms) / static_cast<int64_t>(chunks);
      res.set_content_provider(full->size(), "application/json",
                               [this, full, chunk, pause_ms](size_t offset, size_t, httplib::DataSink& sink) {
                                 if (!sleep_ms(pause_ms)) {
                                   return false;
                                 }
                                 size_t size = std::min(chunk, full->size() - offset);
                                 return sink.write(full->data() + offset, size);
                               });
    }
    record(outcome);
  }

  // A path or method no provider has.
  void handle_unknown(const httplib::Request& req, httplib::Response& res) {
    const int64_t id = take_id();
    Provider provider = Provider::openai;
    if (req.path.rfind("/v1beta", 0) == 0) {
      provider = Provider::gemini;
    } else if (req.path.rfind("/v1/messages", 0) == 0) {
      provider = Provider::anthropic;
    }
    Outcome outcome;
    outcome.provider = provider;
    outcome.path = req.path;
    outcome.status = 404;
    outcome.reasons.push_back("route: no " + req.method + " " + req.path + " on this provider");
    respond_invalid(res, provider, outcome.reasons, 404, id);
    record(outcome);
  }

  json stats_json() const {
    std::lock_guard<std::mutex> lock(mutex);
    auto counters_json = [](const Counters& c) {
      return json{{"requests", c.requests},
                  {"valid", c.valid},
                  {"invalid", c.invalid},
                  {"answered", c.answered},
                  {"faults_applied", c.faults_applied}};
    };
    json providers = json::object();
    for (const auto& [name, counters] : by_provider) {
      providers[name] = counters_json(counters);
    }
    json skills_json = json::object();
    for (const auto& [name, counters] : by_skill) {
      skills_json[name] = {{"requests", counters.requests}, {"answered", counters.answered}};
    }
    json rules = json::array();
    for (const FaultRule& rule : faults) {
      rules.push_back(rule.to_json());
    }
    return {{"requests", totals.requests},
            {"valid", totals.valid},
            {"invalid", totals.invalid},
            {"invalid_reasons", kept_reasons},
            {"answered", totals.answered},
            {"faults_applied", totals.faults_applied},
            {"duplicates", duplicates},
            {"by_provider", std::move(providers)},
            {"by_skill", std::move(skills_json)},
            {"by_fault", by_fault},
            {"documents", documents},
            {"faults", std::move(rules)},
            {"jobs", jobs ? jobs->stats() : json::object()},
            {"images", images ? images->stats() : json::object()}};
  }

  void reset_counters() {
    std::lock_guard<std::mutex> lock(mutex);
    totals = Counters{};
    by_provider.clear();
    by_skill.clear();
    by_fault.clear();
    kept_reasons.clear();
    duplicates = 0;
    bodies.clear();
    documents.clear();
    if (jobs) {
      jobs->reset_stats();
    }
    if (images) {
      images->reset_stats();
    }
  }

  void routes() {
    server.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle_provider(Provider::openai, req, res);
    });
    server.Post("/v1/messages", [this](const httplib::Request& req, httplib::Response& res) {
      handle_provider(Provider::anthropic, req, res);
    });
    server.Post(R"(/v1beta/models/([^/:]+):generateContent)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  if (images && FakeImages::wants_image(req)) {
                    images->gemini(req.matches[1], req, res);
                    return;
                  }
                  handle_provider(Provider::gemini, req, res);
                });
    server.Get("/stats", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(stats_json().dump(2), "application/json");
    });
    server.Post("/control", [this](const httplib::Request& req, httplib::Response& res) {
      json body = json::parse(req.body, nullptr, false);
      std::string problem;
      if (!body.is_object()) {
        problem = "the body must be a JSON object";
      } else {
        for (const auto& [key, value] : body.items()) {
          if (key != "faults" && key != "reset_stats" && key != "job_faults" && key != "min_poll_interval_ms" &&
              key != "polls_to_finish" && key != "image_faults") {
            problem = "unknown field \"" + key + "\"";
          }
        }
      }
      if (problem.empty() && body.contains("faults")) {
        Result<std::vector<FaultRule>> parsed = parse_faults(body["faults"]);
        if (!parsed.ok()) {
          problem = parsed.error().message;
        } else {
          std::lock_guard<std::mutex> lock(mutex);
          faults = std::move(parsed).value();
        }
      }
      if (problem.empty() && jobs) {
        if (Result<void> applied = jobs->control(body); !applied.ok()) {
          problem = applied.error().message;
        }
      }
      if (problem.empty() && images && body.contains("image_faults")) {
        if (Result<void> applied = images->set_faults(body["image_faults"]); !applied.ok()) {
          problem = applied.error().message;
        }
      }
      if (problem.empty() && body.value("reset_stats", false)) {
        reset_counters();
      }
      res.status = problem.empty() ? 200 : 400;
      res.set_content(problem.empty() ? json{{"ok", true}}.dump() : json{{"error", problem}}.dump(),
                      "application/json");
    });
    if (config.shutdown_route) {
      server.Post("/shutdown", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(json{{"ok", true}}.dump(), "application/json");
        std::lock_guard<std::mutex> lock(stop_mutex);
        shutdown_requested = true;
        stop_cv.notify_all();
      });
    }
    jobs->routes(server);
    images->routes(server);
    auto unknown = [this](const httplib::Request& req, httplib::Response& res) { handle_unknown(req, res); };
    server.Get(".*", unknown);
    server.Post(".*", unknown);
    server.Put(".*", unknown);
    server.Patch(".*", unknown);
    server.Delete(".*", unknown);
  }
};

FakeProvider::FakeProvider(FakeProviderConfig config) : m_impl(std::make_unique<Impl>(std::move(config))) {}

FakeProvider::~FakeProvider() { stop(); }

Result<void> FakeProvider::start() {
  Impl& impl = *m_impl;
  if (impl.thread.joinable()) {
    return make_error(ErrorCode::invalid_argument, "fake provider: already started");
  }
  AVPS_TRY(set_faults(impl.config.faults));
  const json project = impl.config.project.is_null() ? json::object() : impl.config.project;
  AVPS_TRY_ASSIGN(impl.sim, backends::SimBackend::from_config(project));
  impl.seed = impl.sim->seed();
  AVPS_TRY_ASSIGN(skills::Registry registry, skills::Registry::load(impl.config.data_dir, nullptr));
  impl.registry.emplace(std::move(registry));
  if (!impl.config.log_file.empty()) {
    impl.log.open(impl.config.log_file, std::ios::app);
    if (!impl.log) {
      return make_error(ErrorCode::io_error, "fake provider: cannot open log " + impl.config.log_file.string());
    }
  }
  FakeJobsConfig jobs_config;
  jobs_config.key = impl.config.keys.jobs;
  jobs_config.seed = impl.seed;
  jobs_config.min_poll_interval_ms = impl.config.min_poll_interval_ms;
  jobs_config.render_cache = impl.config.render_cache;
  impl.jobs = std::make_unique<FakeJobs>(jobs_config);
  AVPS_TRY(impl.jobs->set_faults(impl.config.job_faults));
  FakeImagesConfig images_config;
  images_config.openai_key = impl.config.keys.openai;
  images_config.gemini_key = impl.config.keys.gemini;
  images_config.seed = impl.seed;
  impl.images = std::make_unique<FakeImages>(images_config);
  AVPS_TRY(impl.images->set_faults(impl.config.image_faults));
  impl.routes();
  // Keep-alive connections end soon after stop(), and a hung client does not hold a worker long.
  impl.server.set_keep_alive_timeout(2);
  impl.server.set_read_timeout(10);
  impl.server.set_write_timeout(10);
  int port = impl.config.port;
  if (port == 0) {
    port = impl.server.bind_to_any_port("127.0.0.1");
  } else if (!impl.server.bind_to_port("127.0.0.1", port)) {
    port = -1;
  }
  if (port <= 0) {
    return make_error(ErrorCode::io_error,
                      "fake provider: cannot bind 127.0.0.1:" + std::to_string(impl.config.port));
  }
  impl.port = port;
  impl.thread = std::thread([&impl] {
    // A client that hangs up mid-answer must not kill the process with SIGPIPE: the workers
    // httplib starts inherit this thread's mask, so their failed writes just return EPIPE.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    impl.server.listen_after_bind();
  });
  // httplib's stop() does nothing before the listen loop has begun, so a stop() right after
  // start() would leave the thread in accept() for good: wait until the loop runs.
  for (int waited_ms = 0; !impl.server.is_running(); ++waited_ms) {
    if (waited_ms > 10000) {
      return make_error(ErrorCode::io_error, "fake provider: the server did not start listening");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return ok();
}

void FakeProvider::stop() {
  Impl& impl = *m_impl;
  {
    std::lock_guard<std::mutex> lock(impl.stop_mutex);
    impl.stopping = true;
    impl.stop_cv.notify_all();
  }
  if (impl.thread.joinable()) {
    impl.server.stop();
    impl.thread.join();
  }
}

int FakeProvider::port() const { return m_impl->port; }

std::string FakeProvider::base_url() const { return "http://127.0.0.1:" + std::to_string(port()); }

Result<void> FakeProvider::set_faults(const nlohmann::json& rules) {
  AVPS_TRY_ASSIGN(std::vector<FaultRule> parsed, parse_faults(rules.is_null() ? json::array() : rules));
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  m_impl->faults = std::move(parsed);
  return ok();
}

nlohmann::json FakeProvider::stats() const { return m_impl->stats_json(); }

void FakeProvider::reset_stats() { m_impl->reset_counters(); }

int64_t FakeProvider::document_count(const std::string& document_text) const {
  std::optional<std::string> key = document_key(document_text);
  if (!key) {
    return 0;
  }
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  auto it = m_impl->documents.find(*key);
  return it == m_impl->documents.end() ? 0 : it->second;
}

void FakeProvider::request_shutdown() {
  std::lock_guard<std::mutex> lock(m_impl->stop_mutex);
  m_impl->shutdown_requested = true;
  m_impl->stop_cv.notify_all();
}

void FakeProvider::wait_for_shutdown() {
  std::unique_lock<std::mutex> lock(m_impl->stop_mutex);
  m_impl->stop_cv.wait(lock, [this] { return m_impl->shutdown_requested; });
}

}  // namespace avps::testing
