#pragma once
// Model backends: where a skill's model call or a shot's generation goes. The engine sees only
// this interface (DESIGN §4); HTTP adapters and the in-process sim backend implement it.
//
// A request carries everything the call needs and nothing more (DESIGN §1.5, bounded context):
// the skill's prompt, the input slices it needs, the output's JSON Schema, and the findings of a
// failed gate when revising. Requests are canonical JSON; their hash is the idempotency key under
// which the engine records intent and response, so a resumed run never repeats a completed call.

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"

namespace avps::backends {

/// One model call of a skill.
struct ModelRequest {
  std::string skill;              ///< skill name, e.g. "plausibility-auditor"
  std::string model;              ///< model id from the models file
  std::string tier;               ///< t1, t2, t3, vision, research
  std::string prompt;             ///< the skill's prompt.md
  nlohmann::json scope;           ///< ids this call is about: {"scene_id": "S03"}, {"entity_id": "ALEX", "kind": "CHAR_LOCK"}, {"shot_id": ..., "attempt": 2}
  nlohmann::json inputs;          ///< by artifact kind (or BRIEF): the slices the skill takes, as canonical JSON / text
  nlohmann::json output_schema;   ///< what the output must validate against; for several outputs {"KIND": schema, ...}
  nlohmann::json findings;        ///< reasons of the gate that failed, when revising; else empty array
  int max_output_tokens = 0;      ///< clamped by the budget governor before the call
  uint64_t seed = 0;              ///< the project's seed

  nlohmann::json to_json() const;
};

struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  std::optional<int64_t> provider_cost_micro_usd;  ///< when the provider reports a cost
};

struct ModelResponse {
  std::string text;          ///< the raw body text the model returned (recorded verbatim)
  Usage usage;
  std::string model;         ///< the model that answered
  nlohmann::json to_json() const;
};

/// One generation attempt of a shot (proxy or final).
struct GenerationRequest {
  std::string shot_id;
  int attempt = 1;
  std::string model;
  std::string tier;          ///< gen_premium, gen_mid, gen_low
  std::string genpack_face;  ///< the GENPACK text, verbatim
  std::string resolution;    ///< "proxy" or "final" (the pixel size comes from the style)
  std::string pixels;        ///< e.g. "640x272"
  double duration_s = 0;
  uint64_t seed = 0;

  nlohmann::json to_json() const;
};

struct GenerationResult {
  std::string media_bytes;   ///< the rendered file's bytes (the engine stores it under media/)
  std::string extension;     ///< "mp4", "png", "ppm"
  double seconds_billed = 0;
  std::optional<int64_t> provider_cost_micro_usd;
  std::string model;
};

/// Why a call failed, for the single retry layer: retryable failures may be retried (honouring
/// retry_after_ms) or sent to another model of the same tier; others are final.
struct CallFailure {
  ErrorCode code = ErrorCode::backend_unavailable;
  std::string message;
  bool retryable = false;
  std::optional<int64_t> retry_after_ms;
};

template <class T>
struct CallResult {
  std::optional<T> value;
  std::optional<CallFailure> failure;
  bool ok() const { return value.has_value(); }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual CallResult<ModelResponse> complete(const ModelRequest& request) = 0;
  virtual CallResult<GenerationResult> generate(const GenerationRequest& request) = 0;
};

}  // namespace avps::backends
