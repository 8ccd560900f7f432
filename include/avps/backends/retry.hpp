#pragma once
// The one retry layer (DESIGN §5): a decorator around any Backend. Nothing else in avps retries a
// call; the exchange's same-tier fallback takes over when this layer gives up.
//
// Rules (docs/providers.md "What is retried"):
//   - Only retryable() failures are retried: connection errors, timeouts, and what the adapters
//     map to them (408, 409, 429, 500, 502, 503, 504, 529). Other 4xx, spent quotas, refusals
//     and budget refusals never are.
//   - The wait before retry n (n = 1, 2, ...) is the failure's retry_after_ms when the provider
//     gave one (Retry-After seconds or HTTP date, retry-after-ms, Gemini's retryDelay), else
//     exponential backoff base_ms × 2^(n-1) capped at max_backoff_ms, less up to `jitter` of it.
//     The jitter is drawn from sha256(seed ‖ request ‖ n): deterministic per project and call,
//     different between calls, so a burst of 429s does not retry in lockstep.
//   - At most max_retries retries, and never past max_total_wait_ms of waiting in all: a wait that
//     would cross it ends the retries (the provider's hint is not shortened to fit).
//   - Every attempt is in the CallTrace with the wait that followed it.
//
// Diagnostics (core/diag.hpp, docs/formats/diag-log.md): one line per attempt, from its
// HttpAttempt: the model, provider and host, the status (or "no response" and the transport
// error), the latency, and what follows: nothing at debug (it answered), the retry's wait and
// whether it is the provider's Retry-After or backoff at info, why no retry follows at warn.
//
// Threading: as safe as the inner backend; the decorator itself holds only constants.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "avps/backends/backend.hpp"

namespace avps::backends {

struct RetryPolicy {
  int max_retries = 2;                 ///< retries after the first attempt
  int64_t base_ms = 500;
  int64_t max_backoff_ms = 8'000;
  double jitter = 0.25;                ///< at most this fraction of a backoff is taken off
  int64_t max_total_wait_ms = 60'000;  ///< waiting in all, per call

  /// From a model entry's "retry" object ({"max_retries", "base_ms", "max_backoff_ms",
  /// "max_total_wait_ms"}, each optional). configuration error naming the bad key.
  [[nodiscard]] static Result<RetryPolicy> from_json(const nlohmann::json& retry, const std::string& where);
};

/// How the retry layer waits: the real one sleeps, a test's records.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual void sleep_ms(int64_t ms) = 0;
};

class RealSleeper : public Sleeper {
 public:
  void sleep_ms(int64_t ms) override;
};

/// The wait before retry `retry` (1-based) of a call whose canonical request hashes to
/// `request_sha256`, given the failure: the rule above, before the total-wait cap.
int64_t retry_wait_ms(const RetryPolicy& policy, uint64_t seed, const std::string& request_sha256, int retry,
                      const Error& failure);

/// The diagnostic line (warn) of a same-tier fallback, for the exchange to write once this layer
/// gave up on `from_model`: the call moves to `to_model`, or, when it is empty, no model of the
/// tier is left. `purpose` names the call as the exchange's errors do; `reason` is the failure
/// that ended `from_model` (its code and message, cut short; never a body).
void log_fallback(std::string_view purpose, std::string_view from_model, std::string_view to_model,
                  const Error& reason);

class RetryingBackend : public Backend {
 public:
  /// `sleeper` must outlive the backend.
  RetryingBackend(std::unique_ptr<Backend> inner, RetryPolicy policy, uint64_t seed, Sleeper& sleeper);

  [[nodiscard]] Result<Submitted<ModelResponse>> submit_model(const ModelRequest& request, CallTrace& trace) override;
  /// Generation submits are retried only for failures where no job can have been created
  /// (rate_limited, and backend_unavailable without any response): a retried POST must not bill
  /// a second render.
  [[nodiscard]] Result<Submitted<GenerationResult>> submit_generation(const GenerationRequest& request,
                                                                      CallTrace& trace) override;
  [[nodiscard]] Result<std::optional<GenerationResult>> poll_generation(const std::string& ticket,
                                                                        CallTrace& trace) override;
  /// A cancel is retried like a poll: asking twice cancels once.
  [[nodiscard]] Result<void> cancel_generation(const std::string& ticket, CallTrace& trace) override;
  JobTiming job_timing() const override { return m_inner->job_timing(); }

 private:
  std::unique_ptr<Backend> m_inner;
  RetryPolicy m_policy;
  uint64_t m_seed;
  Sleeper& m_sleeper;
};

}  // namespace avps::backends
