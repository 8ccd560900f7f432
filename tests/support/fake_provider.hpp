#pragma once
// FakeProvider: a loopback HTTP server that speaks the three chat wire formats of avps's HTTP
// adapters, and (tests/support/fake_jobs.hpp) the async job APIs of the async_job presets (OpenAI chat completions,
// Anthropic messages, Gemini generateContent; the formats are shared/reference/backend-apis.md §0-3), so the adapters,
// the retry layer and whole runs can be tested without anything leaving the machine. It listens on 127.0.0.1 only.
//
// What it guarantees:
//   - Strict. Every request is checked against the provider's documented format: method, path,
//     content type, auth header (a key in the URL is refused), the provider's top-level fields
//     only, message roles, content parts, the structured-output request (OpenAI strict schema
//     rules, a forced Anthropic tool that exists, Gemini's one schema field), and the
//     <avps-request> document in the user message (http_model.hpp). A request that breaks any rule
//     is answered 400 in that provider's error format and counted in stats()["invalid"] with every
//     reason found, so a test can assert both the status and the reason.
//   - Answers come from the sim. A valid request becomes a ModelRequest again (skill, scope,
//     inputs, findings from the document; prompt = the system text; model and output-token limit
//     from the wire; the output schema from the skill definition, not from the wire) and
//     SimBackend answers it, so a run through the fake gets the same kind of answers as a sim run.
//     The answer is wrapped in the provider's response format with usage (input = ceil(body
//     bytes / 4), output = ceil(text bytes / 4)) and simulated prompt caching: Anthropic's
//     explicit cache_control on the system block (first request writes, later ones read), and the
//     implicit caches of OpenAI and Gemini (a system text seen before, of 1024 tokens or more).
//     An OpenAI strict json_schema answer gets null for every property the sim left out, as a
//     strict model would.
//   - Faults on demand (FaultRule below), from the constructor or POST /control: error statuses
//     with their provider's body and Retry-After, a hang, a reset connection, a trickled or
//     truncated body, malformed JSON, a schema-invalid answer, a refusal, a length cut-off.
//   - Counted. stats() (and GET /stats) reports every request; see stats() for the fields.
//
// Routes: the image APIs of fake_images.hpp (stats under "images"; POST /control also takes
// "image_faults"; a generateContent that asks for IMAGE output goes there), the job APIs and the
// ComfyUI server of fake_jobs.hpp (stats under "jobs"; POST /control also takes
// "job_faults", "min_poll_interval_ms", "polls_to_finish"), POST /v1/chat/completions (OpenAI; the adapter's endpoint
// is base_url() + "/v1"), POST /v1/messages (Anthropic; endpoint base_url()), POST
// /v1beta/models/{model}:generateContent (Gemini; endpoint base_url()), GET /stats, POST /control ({"faults": [rule,
// ...]} replaces the rules; {"reset_stats": true} zeroes the counters), POST /shutdown (only with
// FakeProviderConfig::shutdown_route). Any other path or method is an invalid request (404).
// cpp-httplib answers 400 to a POST without a body length, so send one: `curl -d '' .../shutdown`.
//
// Threading: requests are served on cpp-httplib's thread pool; every method of FakeProvider may be
// called from any thread while it runs.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"

namespace avps::testing {

/// The key each provider expects; empty = the request must carry no auth header at all (a local
/// server without a key).
struct FakeProviderKeys {
  std::string openai;
  std::string anthropic;
  std::string gemini;
  std::string jobs;  ///< every async job API (fake_jobs.hpp)
};

struct FakeProviderConfig {
  /// Where skills/ and schemas/ live (the repository root; tests use AVPS_SOURCE_DATA_DIR).
  std::filesystem::path data_dir;
  /// The project's avps.json: its "seed", "sim" and "thresholds" configure the sim. May be {}.
  nlohmann::json project = nlohmann::json::object();
  FakeProviderKeys keys;
  /// Fault rules in force from the start (a JSON array of FaultRule objects, see set_faults()).
  nlohmann::json faults = nlohmann::json::array();
  /// When set, one JSON line per request: provider, path, status, valid, reasons, fault, skill.
  /// Never a header value (so never a key).
  std::filesystem::path log_file;
  /// 0 = any free port.
  int port = 0;
  /// Serve POST /shutdown (the executable does; in-process tests stop() instead).
  bool shutdown_route = false;
  /// The async job APIs' fault rules (fake_jobs.hpp) and the poll interval they check.
  nlohmann::json job_faults = nlohmann::json::array();
  int64_t min_poll_interval_ms = 0;
  /// Where the job APIs keep their renders across fakes (FakeJobsConfig::render_cache; "" = none).
  std::string render_cache;
  /// The image APIs' fault rules (fake_images.hpp).
  nlohmann::json image_faults = nlohmann::json::array();
};

class FakeProvider {
 public:
  explicit FakeProvider(FakeProviderConfig config);
  /// Stops the server if it still runs.
  ~FakeProvider();
  FakeProvider(const FakeProvider&) = delete;
  FakeProvider& operator=(const FakeProvider&) = delete;

  /// Loads the skill registry and the sim, binds 127.0.0.1 and starts serving on a thread of its
  /// own. Fails on a bad configuration (faults, the project's sim block), unusable skill data, a
  /// log file that cannot be opened or a port that cannot be bound.
  [[nodiscard]] Result<void> start();
  /// Stops serving and joins the server thread; requests that sleep (hang, trickle) are cut short.
  /// Idempotent.
  void stop();
  /// The bound port (0 before start()).
  int port() const;
  /// "http://127.0.0.1:PORT".
  std::string base_url() const;

  /// Replaces the fault rules. Each rule is an object:
  ///   "fault": "429" | "500" | "502" | "503" | "529" | "hang" | "reset" | "trickle" |
  ///            "malformed_json" | "truncated" | "schema_invalid" | "refusal" | "length" (required)
  ///   "times": how many matching requests get it (default 1; -1 = every one)
  ///   "skip": how many matching requests pass untouched first (default 0)
  ///   "provider": "openai" | "anthropic" | "gemini"; "skill": a skill name (filters; default any)
  ///   "retry_after_s": seconds the error asks the client to wait (Retry-After header for OpenAI
  ///       and Anthropic; a RetryInfo retryDelay for Gemini, which sends no such header)
  ///   "retry_after_date": true = Retry-After as an HTTP date instead of seconds
  ///   "hang_ms": how long hang sleeps before answering (default 5000) and over how long trickle
  ///       spreads the answer (default 1000)
  ///   "insufficient_quota": true = a 429 that spends no retry: OpenAI error.code
  ///       insufficient_quota, Anthropic enforced_spend_limit_reached, Gemini QuotaFailure
  ///       without RetryInfo
  /// Only valid requests meet faults; the first rule (in order) that matches and has times left
  /// applies. Unknown fields or values are refused (invalid_argument) and the rules stay as they
  /// were.
  [[nodiscard]] Result<void> set_faults(const nlohmann::json& rules);

  /// Counters since start (or the last reset_stats()):
  ///   {"requests": n, "valid": n, "invalid": n, "invalid_reasons": [first 50 reasons],
  ///    "answered": n (valid requests answered 200 with an answer: no error, refusal, reset,
  ///        truncated or malformed body), "faults_applied": n, "duplicates": n (valid requests
  ///        whose provider and body bytes were seen before),
  ///    "by_provider": {"openai": {"requests", "valid", "invalid", "answered", "faults_applied"}, ...},
  ///    "by_skill": {"<skill>": {"requests", "answered"}, ...} (valid requests),
  ///    "by_fault": {"429": n, ...}, "documents": {"<sha256 of the request document>": n, ...},
  ///    "faults": [the rules, with "times" and "skip" as they are now]}
  nlohmann::json stats() const;
  void reset_stats();
  /// How many valid requests carried this request document (the text between and including the
  /// <avps-request> markers, or any text that contains it).
  int64_t document_count(const std::string& document_text) const;

  /// Wakes wait_for_shutdown() (POST /shutdown does the same).
  void request_shutdown();
  /// Blocks until request_shutdown() or POST /shutdown.
  void wait_for_shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> m_impl;
};

}  // namespace avps::testing
