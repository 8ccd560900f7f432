// The image operation of openai_chat and gemini_generate (http_images.hpp).

#include "avps/backends/http_images.hpp"

#include <chrono>
#include <set>

#include "avps/backends/async_job.hpp"
#include "avps/backends/image_output.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/hash.hpp"

namespace avps::backends {
using nlohmann::json;

namespace {

// The sizes each OpenAI image model family takes (openai-python image_generate_params.py, read
// 2026-12-05): GPT image models the three standard sizes, dall-e-3 and dall-e-2 their own.
std::vector<std::string> default_sizes(const std::string& model) {
  if (model.rfind("dall-e-2", 0) == 0) {
    return {"1024x1024", "512x512", "256x256"};
  }
  if (model.rfind("dall-e-3", 0) == 0) {
    return {"1024x1024", "1792x1024", "1024x1792"};
  }
  return {"1024x1024", "1536x1024", "1024x1536"};
}

// Gemini's imageConfig.aspectRatio values (python-genai types.ImageConfig).
const std::vector<std::string>& default_ratios() {
  static const std::vector<std::string> k_ratios = {"1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9"};
  return k_ratios;
}

// The prompt limits the providers document: dall-e-2 1,000 and dall-e-3 4,000 characters, GPT
// image models 32,000; Gemini counts tokens, so only a configured limit applies there.
int64_t prompt_limit(const HttpModelConfig& config, const json& options) {
  const int64_t configured = options.value("image_prompt_max_chars", int64_t{0});
  if (configured > 0 || config.kind != WireKind::openai_chat) {
    return configured;
  }
  const std::string& model = config.provider_model;
  if (model.rfind("dall-e-2", 0) == 0) {
    return 1000;
  }
  return model.rfind("dall-e-3", 0) == 0 ? 4000 : 32000;
}

std::vector<std::string> strings_of(const json& list) {
  std::vector<std::string> out;
  if (list.is_array()) {
    for (const json& item : list) {
      if (item.is_string()) {
        out.push_back(item.get<std::string>());
      }
    }
  }
  return out;
}

std::string trimmed(std::string endpoint) {
  while (!endpoint.empty() && endpoint.back() == '/') {
    endpoint.pop_back();
  }
  return endpoint;
}

std::string scrub(std::string text, const std::string& key) {
  if (key.size() < 4) {
    return text;
  }
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at)) {
    text.replace(at, key.size(), "***");
  }
  return text;
}

std::string capped(std::string text, size_t limit = 300) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20) {
      c = ' ';
    }
  }
  if (text.size() > limit) {
    text.resize(limit);
    text += "...";
  }
  return text;
}

const json* member(const json& object, const char* key) {
  if (!object.is_object()) {
    return nullptr;
  }
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string string_member(const json& object, const char* key) {
  const json* value = member(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

std::string placeholder(const std::string& b64) {
  const std::optional<std::string> bytes = core::base64_decode(b64);
  if (!bytes) {
    return "<not base64: " + std::to_string(b64.size()) + " characters>";
  }
  return "<image: " + std::to_string(bytes->size()) + " bytes, sha256 " + core::sha256_hex(*bytes) + ">";
}

// The image in base64 `data`, named for errors by `where`; rejected when it is not one.
Result<GenerationResult> decoded(const HttpModelConfig& config, const std::string& data, const std::string& where) {
  const std::string who = config.model_id + " at " + url_host(config.endpoint);
  std::optional<std::string> bytes = core::base64_decode(data);
  if (!bytes || bytes->empty()) {
    return make_error(ErrorCode::rejected, who + ": " + where + " is not base64 image data (the attempt fails)");
  }
  const std::string format = image_format(*bytes);
  if (format.empty()) {
    return make_error(ErrorCode::rejected,
                      who + ": " + where + " is not an image (no PNG, JPEG or WebP signature; the attempt fails)");
  }
  GenerationResult result;
  result.media_bytes = std::move(*bytes);
  result.extension = image_extension(format);
  result.model = config.model_id;
  return result;
}

Result<GenerationResult> parse_openai_image(const HttpModelConfig& config, const json& body) {
  const std::string who = config.model_id + " at " + url_host(config.endpoint);
  const json* data = member(body, "data");
  if (data == nullptr || !data->is_array() || data->empty() || !(*data)[0].is_object()) {
    return make_error(ErrorCode::rejected,
                      who + ": HTTP 200 but the reply has no data[0] (no image; the attempt fails)");
  }
  const json& first = (*data)[0];
  const std::string b64 = string_member(first, "b64_json");
  if (b64.empty()) {
    return make_error(ErrorCode::rejected,
                      who + ": the reply has no data[0].b64_json" +
                          (string_member(first, "url").empty() ? ""
                                                               : " (only a URL: a dall-e model asked without "
                                                                 "response_format b64_json?)"));
  }
  AVPS_TRY_ASSIGN(GenerationResult result, decoded(config, b64, "data[0].b64_json"));
  if (const std::string revised = string_member(first, "revised_prompt"); !revised.empty()) {
    result.details["revised_prompt"] = revised;
  }
  if (const json* usage = member(body, "usage"); usage && usage->is_object()) {
    result.details["usage"] = *usage;
  }
  return result;
}

Result<GenerationResult> parse_gemini_image(const HttpModelConfig& config, const json& body) {
  const std::string who = config.model_id + " at " + url_host(config.endpoint);
  const std::string policy = ": refused by the provider's content policy (the attempt fails; revise the GenPack)";
  const json* candidates = member(body, "candidates");
  if (candidates == nullptr || !candidates->is_array() || candidates->empty()) {
    const json* feedback = member(body, "promptFeedback");
    const std::string reason = feedback ? string_member(*feedback, "blockReason") : "";
    if (!reason.empty()) {
      return make_error(ErrorCode::rejected, who + ": blocked: " + reason + policy);
    }
    return make_error(ErrorCode::rejected, who + ": HTTP 200 but the reply has no candidates (no image)");
  }
  const json& candidate = (*candidates)[0];
  std::string said;
  if (const json* content = member(candidate, "content")) {
    if (const json* parts = member(*content, "parts"); parts && parts->is_array()) {
      for (const json& part : *parts) {
        const json* thought = member(part, "thought");
        if (thought && thought->is_boolean() && thought->get<bool>()) {
          continue;  // Gemini 3 image models draw thought images first: not the answer
        }
        said += string_member(part, "text");
        const json* inline_data = member(part, "inlineData");
        if (inline_data && string_member(*inline_data, "mimeType").rfind("image/", 0) == 0) {
          AVPS_TRY_ASSIGN(GenerationResult result,
                          decoded(config, string_member(*inline_data, "data"), "candidates[0] inlineData"));
          if (const json* usage = member(body, "usageMetadata"); usage && usage->is_object()) {
            result.details["usage"] = *usage;
          }
          if (!said.empty()) {
            result.details["text"] = capped(said, 1000);
          }
          return result;
        }
      }
    }
  }
  static const std::set<std::string, std::less<>> k_blocked = {"SAFETY",
                                                               "RECITATION",
                                                               "BLOCKLIST",
                                                               "PROHIBITED_CONTENT",
                                                               "SPII",
                                                               "IMAGE_SAFETY",
                                                               "IMAGE_PROHIBITED_CONTENT",
                                                               "IMAGE_RECITATION"};
  const std::string finish = string_member(candidate, "finishReason");
  if (k_blocked.count(finish)) {
    return make_error(ErrorCode::rejected, who + ": blocked: " + finish + policy);
  }
  return make_error(ErrorCode::rejected,
                    who + ": HTTP 200 but no image part" + (finish.empty() ? "" : " (finishReason " + finish + ")") +
                        (said.empty() ? "" : "; it said: " + capped(said, 200)) + " (the attempt fails)");
}

}  // namespace

Result<HttpRequest> build_image_request(const HttpModelConfig& config, const GenerationRequest& request,
                                        json* details) {
  const std::string who = "model \"" + config.model_id + "\"";
  if (config.kind == WireKind::anthropic_messages) {
    return make_error(ErrorCode::unsupported, who + ": anthropic_messages has no image output");
  }
  if (request.resolution != "storyboard") {
    return make_error(ErrorCode::unsupported, who + " (" + std::string(wire_kind_name(config.kind)) +
                                                  ") draws storyboard frames only; a " + request.resolution +
                                                  " render of " + request.shot_id +
                                                  " needs a video model (async_job, comfyui or sim)");
  }
  AVPS_TRY_ASSIGN(json options, check_options(config.kind, config.options, who));
  const int64_t limit = prompt_limit(config, options);
  const CondensedPrompt prompt = condense_prompt(request.genpack_face, limit);
  if (prompt.condensed && details) {
    (*details)["prompt_condensed"] = {{"from_units", prompt.original_units},
                                      {"to_units", prompt.units},
                                      {"dropped", prompt.dropped},
                                      {"limit", limit}};
  }
  const std::string model = config.provider_model.empty() ? config.model_id : config.provider_model;
  HttpRequest wire;
  wire.method = "POST";
  wire.headers.emplace_back("content-type", "application/json");
  json body;
  if (config.kind == WireKind::openai_chat) {
    std::vector<std::string> sizes = strings_of(options["image_sizes"]);
    if (sizes.empty()) {
      sizes = default_sizes(model);
    }
    const std::string size = nearest_aspect(sizes, request.pixels);
    wire.url = trimmed(config.endpoint) + "/images/generations";
    if (!config.api_key.empty()) {
      wire.headers.emplace_back("authorization", "Bearer " + config.api_key);
    }
    body = {{"model", model}, {"prompt", prompt.text}, {"n", 1}, {"size", size}};
    if (options.contains("image_quality")) {
      body["quality"] = options["image_quality"];
    }
    if (model.rfind("dall-e", 0) == 0) {
      body["response_format"] = "b64_json";
    }
    if (details) {
      (*details)["size"] = size;
    }
  } else {
    std::vector<std::string> ratios = strings_of(options["image_aspect_ratios"]);
    if (ratios.empty()) {
      ratios = default_ratios();
    }
    const std::string ratio = nearest_aspect(ratios, request.pixels);
    wire.url = trimmed(config.endpoint) + "/v1beta/models/" + model + ":generateContent";
    if (!config.api_key.empty()) {
      wire.headers.emplace_back("x-goog-api-key", config.api_key);
    }
    json image_config = {{"aspectRatio", ratio}};
    if (options.contains("image_size")) {
      image_config["imageSize"] = options["image_size"];
    }
    const json modalities = options.value("image_modalities", "text_and_image") == "image"
                                ? json::array({"IMAGE"})
                                : json::array({"TEXT", "IMAGE"});
    body = {{"contents", json::array({{{"role", "user"}, {"parts", json::array({{{"text", prompt.text}}})}}})},
            {"generationConfig", {{"responseModalities", modalities}, {"imageConfig", image_config}}}};
    if (details) {
      (*details)["aspect_ratio"] = ratio;
    }
  }
  for (const auto& [name, value] : options["extra_headers"].items()) {
    wire.headers.emplace_back(name, value.get<std::string>());
  }
  AVPS_TRY_ASSIGN(wire.body, core::canonical_json(body));
  return wire;
}

Result<GenerationResult> parse_image_response(const HttpModelConfig& config, const HttpResponse& response,
                                              std::string& attempt_error) {
  attempt_error.clear();
  if (response.status < 200 || response.status > 299) {
    Error error = http_status_error(config, response, attempt_error);
    const json body = json::parse(response.body, nullptr, false);
    const json* provider = member(body, "error");
    const std::string code = provider ? string_member(*provider, "code") : "";
    if (code == "moderation_blocked" || code == "content_policy_violation") {
      error.code = ErrorCode::rejected;
      error.retry_after_ms.reset();
      error.message +=
          " (" + code + ": refused by the provider's content policy: the attempt fails; revise the GenPack)";
    }
    return error;
  }
  const json body = json::parse(response.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    attempt_error = std::to_string(response.status) + " malformed reply";
    return make_error(ErrorCode::rejected, config.model_id + " at " + url_host(config.endpoint) + ": HTTP " +
                                               std::to_string(response.status) +
                                               " but the reply is not a JSON object (the attempt fails)");
  }
  Result<GenerationResult> result =
      config.kind == WireKind::openai_chat ? parse_openai_image(config, body) : parse_gemini_image(config, body);
  if (!result) {
    attempt_error = std::to_string(response.status) + " no image";
    Error error = std::move(result).error();
    error.message = scrub(std::move(error.message), config.api_key);
    return error;
  }
  return result;
}

std::string without_image_data(const std::string& body) {
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded()) {
    return body;
  }
  bool changed = false;
  if (json* data = parsed.is_object() && parsed.contains("data") ? &parsed["data"] : nullptr;
      data && data->is_array()) {
    for (json& item : *data) {
      if (item.is_object() && item.contains("b64_json") && item["b64_json"].is_string()) {
        item["b64_json"] = placeholder(item["b64_json"].get<std::string>());
        changed = true;
      }
    }
  }
  if (json* candidates = parsed.is_object() && parsed.contains("candidates") ? &parsed["candidates"] : nullptr;
      candidates && candidates->is_array()) {
    for (json& candidate : *candidates) {
      if (!candidate.is_object() || !candidate.contains("content") || !candidate["content"].is_object() ||
          !candidate["content"].contains("parts") || !candidate["content"]["parts"].is_array()) {
        continue;
      }
      for (json& part : candidate["content"]["parts"]) {
        if (part.is_object() && part.contains("inlineData") && part["inlineData"].is_object() &&
            part["inlineData"].contains("data") && part["inlineData"]["data"].is_string()) {
          part["inlineData"]["data"] = placeholder(part["inlineData"]["data"].get<std::string>());
          changed = true;
        }
      }
    }
  }
  return changed ? parsed.dump(-1, ' ', false, json::error_handler_t::replace) : body;
}

Result<GenerationResult> submit_image(const HttpModelConfig& config, HttpClient& client,
                                      const GenerationRequest& request, CallTrace& trace) {
  trace.provider = std::string(wire_kind_name(config.kind));
  trace.endpoint_host = url_host(config.endpoint);
  json details = json::object();
  AVPS_TRY_ASSIGN(HttpRequest wire, build_image_request(config, request, &details));
  trace.request_body = wire.body;  // the key is only ever in a header
  trace.response_body.clear();
  HttpAttempt attempt;
  const auto start = std::chrono::steady_clock::now();
  Result<HttpResponse> sent = client.send(wire, config.http);
  if (!sent) {
    attempt.latency_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    Error error = std::move(sent).error();
    error.message = scrub(config.model_id + ": " + error.message, config.api_key);
    attempt.error = error.message;
    trace.attempts.push_back(std::move(attempt));
    return error;
  }
  attempt.status = sent->status;
  attempt.latency_ms = sent->latency_ms;
  for (const char* header : {"x-request-id", "request-id", "x-goog-request-id"}) {
    if (attempt.request_id.empty()) {
      attempt.request_id = sent->header(header);
    }
  }
  trace.response_body = scrub(without_image_data(sent->body), config.api_key);
  Result<GenerationResult> frame = parse_image_response(config, *sent, attempt.error);
  trace.attempts.push_back(std::move(attempt));
  if (!frame) {
    return std::move(frame).error();
  }
  for (auto& [key, value] : details.items()) {
    frame->details[key] = value;
  }
  return frame;
}

}  // namespace avps::backends
