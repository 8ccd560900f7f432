#pragma once
// The HTTP model adapters: openai_chat, anthropic_messages and gemini_generate (wire formats in
// docs/providers.md and shared/reference/backend-apis.md §1-3). Each is a pair of pure functions
// (a ModelRequest to an HttpRequest; an HttpResponse of any status to an answer or an error) and
// one HttpModelBackend that sends through an HttpClient. Retries are not here: RetryingBackend
// (retry.hpp) wraps the backend.
//
// How a request is put on the wire (the same for the three kinds, so a project can move between
// providers without its answers changing meaning):
//   - The skill's prompt is the system text (OpenAI system/developer message, Anthropic `system`,
//     Gemini `systemInstruction`). It is the same for every call of a skill, so it comes first and
//     is what providers cache; Anthropic gets an explicit cache_control mark on it.
//   - The user message's first text part is request_document(): the request's skill, scope, inputs
//     and findings as canonical JSON between "<avps-request>" and "</avps-request>" lines.
//   - The output schema goes where the provider enforces it (response_format json_schema, a forced
//     tool's input_schema or output_config, generationConfig.responseJsonSchema), transformed to
//     what that mode accepts (wire_schema, openai_strict_schema). In the prompt-only and
//     json_object modes it is appended to the user message as text instead. OpenAI's default
//     json_schema_strict mode falls back to "strict": false with the untransformed wire schema
//     when openai_strict_schema() gives nullopt (maps such as a gate's "scores" make every
//     shipped artifact schema but the run-log row fall back), and the answer is validated
//     locally either way.
//   - Images (vision calls) follow as image parts, each after a text part with its label.
//   - The key is only ever a header value; it is never in a URL, a body, a trace or an error.
//
// What comes back:
//   - 2xx with an answer: ModelResponse with the JSON text (for a forced Anthropic tool, the
//     tool's input serialised), usage (cached input tokens counted apart), and stop_reason set for
//     a refusal, a length cut-off, a blocked prompt or a safety stop: that is a FAIL for the gate,
//     never an error and never a crash.
//   - Anything else: an Error. 408, 409, 429, 500, 502, 503, 504, 529 are transient (429 is
//     rate_limited, the rest backend_unavailable; timeout for 408 and 504), with retry_after_ms from
//     retry-after-ms, Retry-After (seconds or an HTTP date) or Gemini's RetryInfo.retryDelay; a
//     spent quota (OpenAI insufficient_quota, Anthropic enforced_spend_limit_reached, Gemini
//     QuotaFailure without RetryInfo) and every other 4xx are rejected; x-should-retry overrides the
//     status. Malformed JSON or a 2xx of an unexpected shape is backend_unavailable (a proxy's
//     error page, a truncated body). The message names the model, the host and the provider's own
//     error message, never a key.
//
// Threading: pure functions; HttpModelBackend is as thread-safe as its HttpClient.

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "avps/backends/backend.hpp"
#include "avps/backends/http_client.hpp"
#include "avps/core/result.hpp"

namespace avps::backends {

enum class WireKind { openai_chat, anthropic_messages, gemini_generate };

/// "openai_chat", ... (the models file's `backend` value).
std::string_view wire_kind_name(WireKind kind);

/// One HTTP model as its adapter needs it. Built by the backend registry from a models-file entry
/// and the environment.
struct HttpModelConfig {
  std::string model_id;        ///< the avps model id (what the run log names)
  WireKind kind = WireKind::openai_chat;
  std::string endpoint;        ///< base URL: "https://api.openai.com/v1", "http://127.0.0.1:11434/v1"
  std::string provider_model;  ///< the name sent on the wire (default: model_id)
  std::string api_key;         ///< from the environment; empty = send no auth header (local servers)
  /// The entry's "options", checked by check_options(): per-kind fields of docs/providers.md.
  nlohmann::json options = nlohmann::json::object();
  HttpOptions http;            ///< from options timeout_s / connect_timeout_s
  /// capabilities.image_out: submit_generation() draws storyboard frames (http_images.hpp).
  bool image_out = false;
  /// capabilities.text: false for an image-only model, whose submit_model() refuses every call.
  bool text = true;
};

/// Checks a models-file entry's "options" for `kind` and fills in the defaults. configuration
/// error naming `where` (e.g. "models.json model \"gpt-mini\"") and the offending field, with the
/// values it may take.
[[nodiscard]] Result<nlohmann::json> check_options(WireKind kind, const nlohmann::json& options,
                                                   const std::string& where);

/// The first user text part: the request's skill, scope, inputs and findings, canonical JSON
/// between marker lines.
[[nodiscard]] Result<std::string> request_document(const ModelRequest& request);
/// The inverse, for a provider simulator: skill, scope, inputs and findings of the document found
/// in `text` (other fields stay empty). invalid_argument when there is none.
[[nodiscard]] Result<ModelRequest> parse_request_document(const std::string& text);

/// The output schema as one JSON Schema with an object root: a several-output map
/// {"KIND": schema, ...} becomes an object with one required property per kind; a paged call
/// (scope has "page") also allows "more" (boolean) and "carry" (any JSON). Self-contained:
/// every "$ref" ("common.schema.json#/definitions/x", "#/definitions/x") is inlined from the
/// shipped schemas (project::data_dir()/schemas, read once per process), and what only the local
/// validator needs is dropped ("$schema", "$id", "definitions", avps's "x-" annotations such as
/// x-avps-face). A ref that cannot be resolved (or is recursive) is left as it is.
nlohmann::json wire_schema(const ModelRequest& request);

/// The schema OpenAI's strict mode accepts: every object gets additionalProperties false and
/// lists all its properties in required, optional ones made nullable; unsupported keywords are
/// dropped. nullopt when the schema cannot be made strict (a free-form object: no properties, or
/// additionalProperties / patternProperties schemas); the caller then sends it non-strict.
std::optional<nlohmann::json> openai_strict_schema(const nlohmann::json& schema);

/// Undoes the nullable-for-optional of openai_strict_schema on an answer: removes null members
/// that the original schema does not require and whose type does not allow null.
nlohmann::json strip_strict_nulls(const nlohmann::json& original_schema, nlohmann::json value);

/// The Error a non-2xx `response` means (see the top of this file), and in `attempt_error` the
/// short form an HttpAttempt records ("429 rate_limit_error"). For the image operation too.
Error http_status_error(const HttpModelConfig& config, const HttpResponse& response, std::string& attempt_error);

/// The HTTP request for `request` (see the top of this file).
[[nodiscard]] Result<HttpRequest> build_wire_request(const HttpModelConfig& config, const ModelRequest& request);
/// The answer in `response`, or the error it means (see the top of this file).
[[nodiscard]] Result<ModelResponse> parse_wire_response(const HttpModelConfig& config, const ModelRequest& request,
                                                        const HttpResponse& response);

class HttpModelBackend : public Backend {
 public:
  /// `client` must outlive the backend.
  HttpModelBackend(HttpModelConfig config, HttpClient& client);

  /// One HTTP attempt: build, send, parse; the attempt and the bodies go into `trace`.
  [[nodiscard]] Result<Submitted<ModelResponse>> submit_model(const ModelRequest& request, CallTrace& trace) override;
  /// A storyboard frame on an image model of openai_chat or gemini_generate (http_images.hpp);
  /// unsupported for a model without image_out and for videos (a model with video_out on these
  /// kinds is refused earlier).
  [[nodiscard]] Result<Submitted<GenerationResult>> submit_generation(const GenerationRequest& request,
                                                                      CallTrace& trace) override;

  const HttpModelConfig& config() const { return m_config; }

 private:
  HttpModelConfig m_config;
  HttpClient& m_client;
};

}  // namespace avps::backends
