#include "avps/backends/backend.hpp"

#include "avps/artifacts/names.hpp"
#include "avps/core/hash.hpp"

namespace avps::backends {
using nlohmann::json;

// The canonical forms below are what the engine hashes into idempotency keys and what the sim
// backend seeds from, so every member is present and absent JSON is normalised (null scope or
// inputs -> {}, null findings -> []): two requests that mean the same hash the same.

json ModelRequest::to_json() const {
  json out{
      {"skill", skill},
      {"model", model},
      {"tier", tier},
      {"prompt", prompt},
      {"scope", scope.is_null() ? json::object() : scope},
      {"inputs", inputs.is_null() ? json::object() : inputs},
      {"output_schema", output_schema.is_null() ? json::object() : output_schema},
      {"findings", findings.is_null() ? json::array() : findings},
      {"max_output_tokens", max_output_tokens},
      {"seed", seed},
  };
  // What the model is shown is part of the request (and of its key), by digest: the bytes are in
  // the media and artifacts they were taken from.
  if (!images.empty()) {
    json shown = json::array();
    for (const Image& image : images) {
      shown.push_back({{"label", image.label}, {"media_type", image.media_type}, {"sha256", core::sha256_hex(image.bytes)}});
    }
    out["images"] = std::move(shown);
  }
  return out;
}

bool is_kind_map(const json& output_schema) {
  if (!output_schema.is_object() || output_schema.empty()) {
    return false;
  }
  for (const auto& [key, value] : output_schema.items()) {
    if (artifacts::find_kind(key) == nullptr || !value.is_object()) {
      return false;
    }
  }
  return true;
}

json ModelResponse::to_json() const {
  json usage_json = {{"input_tokens", usage.input_tokens}, {"output_tokens", usage.output_tokens}};
  if (usage.provider_cost_micro_usd) {
    usage_json["provider_cost_micro_usd"] = *usage.provider_cost_micro_usd;
  }
  if (usage.cached_input_tokens > 0) {
    usage_json["cached_input_tokens"] = usage.cached_input_tokens;
  }
  json out = {{"text", text}, {"usage", std::move(usage_json)}, {"model", model}};
  if (!stop_reason.empty()) {
    out["stop_reason"] = stop_reason;
  }
  return out;
}

json GenerationRequest::to_json() const {
  json out{
      {"shot_id", shot_id}, {"attempt", attempt},           {"model", model},
      {"tier", tier},       {"genpack_face", genpack_face}, {"resolution", resolution},
      {"pixels", pixels},   {"duration_s", duration_s},     {"seed", seed},
  };
  // Only when present, so the keys of requests without one stay what they were.
  if (input_frame) {
    out["input_frame"] = {{"label", input_frame->label},
                          {"media_type", input_frame->media_type},
                          {"sha256", core::sha256_hex(input_frame->bytes)}};
  }
  return out;
}

}  // namespace avps::backends

namespace avps::backends {

ModelRequest ping_request(const std::string& model_id) {
  ModelRequest request;
  request.skill = k_ping_skill;
  request.model = model_id;
  request.prompt = "You check that a model answers. Reply with the JSON object {\"ok\": true} and nothing else.";
  request.scope = nlohmann::json::object();
  request.inputs = nlohmann::json::object();
  request.output_schema = {{"type", "object"},
                           {"properties", {{"ok", {{"type", "boolean"}}}}},
                           {"required", {"ok"}},
                           {"additionalProperties", false}};
  request.findings = nlohmann::json::array();
  // Reasoning models spend output tokens on thought before the answer: room for a little.
  request.max_output_tokens = 256;
  return request;
}

bool retryable(const Error& error) {
  return error.code == ErrorCode::backend_unavailable || error.code == ErrorCode::timeout ||
         error.code == ErrorCode::rate_limited;
}

Result<std::optional<GenerationResult>> Backend::poll_generation(const std::string& ticket, CallTrace& /*trace*/) {
  return make_error(ErrorCode::unsupported, "this backend gives no tickets; cannot poll " + ticket);
}

Result<void> Backend::cancel_generation(const std::string& ticket, CallTrace& /*trace*/) {
  return make_error(ErrorCode::unsupported, "this backend gives no tickets; cannot cancel " + ticket);
}

}  // namespace avps::backends
