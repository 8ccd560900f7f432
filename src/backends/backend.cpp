#include "avps/backends/backend.hpp"

namespace avps::backends {
using nlohmann::json;

// The canonical forms below are what the engine hashes into idempotency keys and what the sim
// backend seeds from, so every member is present and absent JSON is normalised (null scope or
// inputs -> {}, null findings -> []): two requests that mean the same hash the same.

json ModelRequest::to_json() const {
  return json{
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
}

json ModelResponse::to_json() const {
  json usage_json = {{"input_tokens", usage.input_tokens}, {"output_tokens", usage.output_tokens}};
  if (usage.provider_cost_micro_usd) {
    usage_json["provider_cost_micro_usd"] = *usage.provider_cost_micro_usd;
  }
  return json{{"text", text}, {"usage", std::move(usage_json)}, {"model", model}};
}

json GenerationRequest::to_json() const {
  return json{
      {"shot_id", shot_id}, {"attempt", attempt},           {"model", model},
      {"tier", tier},       {"genpack_face", genpack_face}, {"resolution", resolution},
      {"pixels", pixels},   {"duration_s", duration_s},     {"seed", seed},
  };
}

}  // namespace avps::backends
