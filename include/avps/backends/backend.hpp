#pragma once
// Model backends: where a skill's model call or a shot's generation goes. The engine sees only
// this interface (DESIGN §4); the in-process sim backend and the HTTP adapters implement it, the
// retry layer decorates it, and the engine's exchange (src/engine/exchange.hpp) drives it.
//
// A request carries everything the call needs and nothing more (DESIGN §1.5, bounded context):
// the skill's prompt, the input slices it needs, the output's JSON Schema, and the findings of a
// failed gate when revising. Requests are canonical JSON; their hash is the idempotency key under
// which the engine records intent and response, so a resumed run never repeats a completed call.
//
// The seam is submit / poll. submit() either answers at once (chat APIs, the sim) or hands back a
// ticket (a provider's job id) that the engine records in the ledger before anything waits on it,
// so a resumed run polls the ticket and never submits again. poll() asks after a ticket.
//
// Errors are Results: ErrorCode::backend_unavailable (connection refused or reset, 5xx),
// timeout, and rate_limited are transient (retryable(), with Error::retry_after_ms when the
// provider said when); rejected and invalid_argument are final. A model that answers junk, refuses
// or is cut off is NOT an error: the answer comes back with its stop_reason, and the gate fails it.
//
// Threading: every Backend is safe to call from several threads at once, one call per thread
// (the engine sends --jobs calls in flight together). A CallTrace belongs to one call.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"

namespace avps::backends {

/// An image a vision call shows the model: a storyboard frame, or a frame sampled from a render.
/// In the request's canonical form (and so its key) by label, type and sha256; the bytes stay in
/// the media or artifact they were taken from.
struct Image {
  std::string media_type;  ///< "image/png", "image/jpeg"
  std::string bytes;       ///< raw bytes (adapters base64 them)
  std::string label;       ///< "S01_SH02 proxy attempt 1, frame 2 of 4"
};

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
  std::vector<Image> images;      ///< vision calls: what the model looks at (see Image)

  nlohmann::json to_json() const;
};

/// Whether an output_schema is the several-output form {"BEATS": {...}, "SCENES": {...}}: every
/// key an artifact kind, every value a schema.
bool is_kind_map(const nlohmann::json& output_schema);

struct Usage {
  int64_t input_tokens = 0;         ///< every input token billed, cached ones included
  int64_t output_tokens = 0;        ///< output tokens, reasoning / thinking included
  int64_t cached_input_tokens = 0;  ///< of input_tokens, those read from the provider's prompt cache
  std::optional<int64_t> provider_cost_micro_usd;  ///< when the provider reports a cost
};

struct ModelResponse {
  std::string text;          ///< the JSON text the model returned (recorded verbatim); may be empty
  Usage usage;
  std::string model;         ///< the model that answered
  /// Empty for a normal end. Otherwise why the answer is not whole, for the gate's FAIL reason:
  /// "refusal: <the model's words>", "length: cut off at the output token limit",
  /// "blocked: SAFETY", ... The text is then partial or empty, never trusted.
  std::string stop_reason;
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
  /// A still the render starts from (image-to-video), when the request carries one; in the
  /// canonical form (and so the key) by label, type and sha256, as Image. The engine's requests
  /// carry none in this version; a backend that cannot use one refuses it, never drops it.
  std::optional<Image> input_frame;

  nlohmann::json to_json() const;
};

struct GenerationResult {
  std::string media_bytes;   ///< the rendered file's bytes (the engine stores it under media/)
  std::string extension;     ///< "mp4", "png", "ppm"
  double seconds_billed = 0;
  std::optional<int64_t> provider_cost_micro_usd;
  std::string model;
  /// What a job backend learnt on the way, recorded with the response (never a key, never a URL
  /// with a signature): {"job_id", "provider_status", "probe": {"duration_s", "width", "height",
  /// "codec"}, "provider_cost_raw", ...}. Empty for backends that answer at once.
  nlohmann::json details = nlohmann::json::object();
};

/// What submit() gives back: the answer, or a ticket to poll (exactly one of the two).
template <class T>
struct Submitted {
  std::optional<T> answer;
  /// The provider's job handle (for async_job a canonical JSON object: id, the URLs the provider
  /// named, the seconds asked for; never a key); non-empty exactly when answer is empty.
  std::string ticket;
  /// What the submit decided, recorded with the ticket: {"prompt_condensed": {...}, "duration_s",
  /// "ratio"} when a provider's limits changed what was asked for. May be empty.
  nlohmann::json details = nlohmann::json::object();
};

/// How the exchange waits on a backend's tickets: the provider's own poll interval (its minimum;
/// the exchange adds up to a fifth on top as seeded jitter, never less) and how long a job may
/// run before it is canceled and its attempt fails.
struct JobTiming {
  int64_t poll_interval_ms = 5000;
  int64_t max_wait_ms = 30 * 60 * 1000;
};

/// One HTTP attempt of a call, as the ledger records it (never a key, never a body).
struct HttpAttempt {
  int status = 0;             ///< HTTP status; 0 when no response came (see error)
  int64_t latency_ms = 0;     ///< send to last byte
  std::string error;          ///< "" for a 2xx; else what went wrong, e.g. "429 rate_limit_error", "connection refused"
  int64_t wait_ms = 0;        ///< how long the retry layer waited after this attempt before the next
  std::string request_id;     ///< the provider's request id header, when it sent one
};

/// What one call did on the wire, filled in by the backend (and the retry layer) whatever the
/// outcome; the engine records it. Bodies are the last attempt's, with keys and auth removed (an
/// adapter never puts a key in a body; headers are not kept at all).
struct CallTrace {
  std::string provider;        ///< the backend kind: "sim", "openai_chat", ...
  std::string endpoint_host;   ///< "api.openai.com", "127.0.0.1:8080"; never a path with a key
  std::vector<HttpAttempt> attempts;
  std::string request_body;    ///< the last attempt's body as sent
  std::string response_body;   ///< the last attempt's body as received (capped by the client)
  /// A poll of a job that is still queued or running: the state in avps's words with the
  /// provider's own beside it when they differ ("queued (THROTTLED)", "running (processing)").
  /// Empty when the backend gives none (the exchange then says "running").
  std::string job_state;
};

/// The skill name of ping_request(): `avps models check --ping`'s one tiny call per text model.
inline constexpr const char* k_ping_skill = "avps-ping";
/// A structured-output call that asks for {"ok": true} in a few tokens: it proves the endpoint,
/// the key, the model name and the structured-output mode together. Never part of a run.
ModelRequest ping_request(const std::string& model_id);

/// Transient failures, which the retry layer retries and the exchange may send to another model
/// of the same tier: backend_unavailable, timeout, rate_limited.
bool retryable(const Error& error);

class Backend {
 public:
  virtual ~Backend() = default;
  /// A model call: answered now (every chat backend), or a ticket.
  [[nodiscard]] virtual Result<Submitted<ModelResponse>> submit_model(const ModelRequest& request,
                                                                      CallTrace& trace) = 0;
  /// A generation (render or storyboard frame): answered now, or a ticket.
  [[nodiscard]] virtual Result<Submitted<GenerationResult>> submit_generation(const GenerationRequest& request,
                                                                              CallTrace& trace) = 0;
  /// The answer of a ticket submit_generation() gave, or nullopt while the job still runs. The
  /// default (backends that never give tickets) is an unsupported error.
  [[nodiscard]] virtual Result<std::optional<GenerationResult>> poll_generation(const std::string& ticket,
                                                                                CallTrace& trace);
  /// Asks the provider to cancel a ticket's job (Ctrl-C with --cancel-on-interrupt, a job past
  /// its maximum wait). The default (no tickets) is an unsupported error.
  [[nodiscard]] virtual Result<void> cancel_generation(const std::string& ticket, CallTrace& trace);
  /// The poll interval and maximum wait of this backend's tickets.
  virtual JobTiming job_timing() const { return {}; }
  /// Whether an error from poll_generation() ends its job whatever its code. False for providers:
  /// a transient error (retryable()) leaves the job running, polled again. True for answers read
  /// from a record, where a recorded failure is how the job ended (`timeout` for one past its
  /// maximum wait).
  virtual bool poll_errors_end_jobs() const { return false; }
};

}  // namespace avps::backends
