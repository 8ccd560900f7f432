#include "avps/backends/retry.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "avps/core/canonical_json.hpp"
#include "avps/core/diag.hpp"
#include "avps/core/hash.hpp"

namespace avps::backends {

using nlohmann::json;

namespace {

struct Bound {
  const char* key;
  int64_t low;
  int64_t high;
};

// The keys of a "retry" object and what each may be. The highs are sanity limits: a typo of an
// extra zero should be refused, not waited for.
constexpr Bound k_bounds[] = {
    {"max_retries", 0, 10},
    {"base_ms", 1, 60'000},
    {"max_backoff_ms", 1, 600'000},
    {"max_total_wait_ms", 0, 3'600'000},
};

// The key of a request for the jitter draw: the same bytes the engine hashes into its idempotency
// key. canonical_json only fails on invalid UTF-8, which the adapter will refuse to send anyway;
// the draw then falls back to a lossy dump so the retry layer still has a stable key.
std::string request_sha256(const json& canonical_form) {
  Result<std::string> canonical = core::canonical_json(canonical_form);
  if (canonical) {
    return core::sha256_hex(*canonical);
  }
  return core::sha256_hex(canonical_form.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace

Result<RetryPolicy> RetryPolicy::from_json(const json& retry, const std::string& where) {
  RetryPolicy policy;
  if (retry.is_null()) {
    return policy;
  }
  if (!retry.is_object()) {
    return make_error(ErrorCode::configuration, where + ": \"retry\" must be an object");
  }
  for (const auto& [key, value] : retry.items()) {
    const Bound* bound = nullptr;
    for (const Bound& candidate : k_bounds) {
      if (key == candidate.key) {
        bound = &candidate;
      }
    }
    if (bound == nullptr) {
      return make_error(ErrorCode::configuration,
                        where + ": unknown field retry." + key +
                            " (allowed: max_retries, base_ms, max_backoff_ms, max_total_wait_ms)");
    }
    const bool integral = value.is_number_integer() || value.is_number_unsigned();
    if (!integral || (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(bound->high)) ||
        value.get<int64_t>() < bound->low || value.get<int64_t>() > bound->high) {
      return make_error(ErrorCode::configuration, where + ": retry." + key + " must be an integer from " +
                                                      std::to_string(bound->low) + " to " +
                                                      std::to_string(bound->high) + ", not " + value.dump());
    }
    const int64_t number = value.get<int64_t>();
    if (key == "max_retries") {
      policy.max_retries = static_cast<int>(number);
    } else if (key == "base_ms") {
      policy.base_ms = number;
    } else if (key == "max_backoff_ms") {
      policy.max_backoff_ms = number;
    } else {
      policy.max_total_wait_ms = number;
    }
  }
  if (policy.max_backoff_ms < policy.base_ms) {
    return make_error(ErrorCode::configuration,
                      where + ": retry.max_backoff_ms (" + std::to_string(policy.max_backoff_ms) +
                          ") is less than retry.base_ms (" + std::to_string(policy.base_ms) + ")");
  }
  return policy;
}

void RealSleeper::sleep_ms(int64_t ms) {
  if (ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
}

int64_t retry_wait_ms(const RetryPolicy& policy, uint64_t seed, const std::string& request_sha256, int retry,
                      const Error& failure) {
  if (failure.retry_after_ms) {
    // The provider knows its own load: its hint is taken as given, never jittered.
    return std::max<int64_t>(0, *failure.retry_after_ms);
  }
  // base × 2^(retry-1), capped; doubling stops once past the cap so it cannot overflow.
  int64_t backoff = std::max<int64_t>(0, policy.base_ms);
  for (int n = 1; n < retry && backoff < policy.max_backoff_ms; ++n) {
    backoff *= 2;
  }
  backoff = std::min(backoff, policy.max_backoff_ms);
  // 64 bits of sha256(seed ‖ request ‖ n) as a fraction in [0, 1): the same call of the same
  // project waits the same on every run; two calls failing together spread apart.
  const std::string digest =
      core::sha256_hex(std::to_string(seed) + "\n" + request_sha256 + "\n" + std::to_string(retry));
  const uint64_t draw = std::stoull(digest.substr(0, 16), nullptr, 16);
  const double unit = static_cast<double>(draw >> 11) / static_cast<double>(uint64_t{1} << 53);
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const auto taken_off = static_cast<int64_t>(static_cast<double>(backoff) * jitter * unit);
  return backoff - taken_off;
}

// ---- the decorator ----------------------------------------------------------------------------

namespace {

// ---- diagnostics (docs/formats/diag-log.md) ---------------------------------------------------
//
// One line per attempt, from what the trace recorded of it (the data the ledger keeps: never a
// key, a header, a query or a body), with what follows it: nothing (it answered), the retry and
// its wait, or why the layer gives up. Answers are debug, retries info, giving up warn.

constexpr size_t k_max_error_chars = 200;

// A provider's error text, cut to a line's worth without splitting a UTF-8 sequence.
std::string short_error(const std::string& text) {
  if (text.size() <= k_max_error_chars) {
    return text;
  }
  size_t end = k_max_error_chars;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0U) == 0x80U) {
    --end;
  }
  return text.substr(0, end) + "...";
}

// The attempt's part of its line, e.g.
//   attempt 2 of gpt-mini for story-architect (openai_chat, api.openai.com): 429 in 312 ms (429 rate_limit_error)
// `failure` is null for an answer; `recorded` says whether the inner backend recorded the attempt.
std::string attempt_line(const std::string& subject, const CallTrace& trace, int number, const Error* failure,
                         bool recorded) {
  std::string line = "attempt " + std::to_string(number) + " of " + subject;
  if (!trace.provider.empty() || !trace.endpoint_host.empty()) {
    line += " (" + trace.provider + (trace.provider.empty() || trace.endpoint_host.empty() ? "" : ", ") +
            trace.endpoint_host + ")";
  }
  line += ": ";
  if (recorded) {
    const HttpAttempt& attempt = trace.attempts.back();
    line += (attempt.status == 0 ? std::string("no response") : std::to_string(attempt.status)) + " in " +
            std::to_string(attempt.latency_ms) + " ms";
    if (!attempt.error.empty()) {
      line += " (" + short_error(attempt.error) + ")";
    }
  } else {
    line += failure == nullptr ? "answered" : "failed (" + short_error(failure->message) + ")";
  }
  return line;
}

// The loop every operation shares, structured like this: call the inner backend; on success or a
// failure `may_retry` refuses, return it; else work out the wait, stop if the retries or the
// total-wait budget are spent, record the wait on the attempt just made, sleep, go again. Each
// attempt's diagnostic line is written once its outcome is known.
//
// An inner backend that records no HttpAttempt of its own (the sim) gets one pushed for each
// failed try, so every wait still sits on the attempt it followed.
template <class T, class Call, class MayRetry>
Result<T> with_retries(const RetryPolicy& policy, uint64_t seed, const std::string& request_sha, Sleeper& sleeper,
                       const std::string& subject, CallTrace& trace, Call&& call, MayRetry&& may_retry) {
  using core::diag::Level;
  int64_t waited = 0;
  for (int retry = 1;; ++retry) {
    const size_t attempts_before = trace.attempts.size();
    Result<T> result = call();
    const bool recorded = trace.attempts.size() > attempts_before;
    if (result.ok()) {
      // An in-process answer (the sim) recorded no attempt: nothing went over the wire.
      if (recorded && core::diag::enabled(Level::debug)) {
        core::diag::debug(attempt_line(subject, trace, retry, nullptr, recorded));
      }
      return result;
    }
    const Error& failure = result.error();
    const bool responded = recorded && trace.attempts.back().status != 0;
    auto giving_up = [&](const std::string& why) {
      if (core::diag::enabled(Level::warn)) {
        core::diag::warn(attempt_line(subject, trace, retry, &failure, recorded) + "; not retried: " + why);
      }
    };
    if (!retryable(failure)) {
      giving_up("a final error (" + std::string(error_code_name(failure.code)) + ")");
      return result;
    }
    if (!may_retry(failure, responded)) {
      giving_up("the submit may have reached the provider, a retry could bill a second job");
      return result;
    }
    if (retry > policy.max_retries) {
      giving_up("all " + std::to_string(policy.max_retries) + " retries spent");
      return result;
    }
    const int64_t wait = retry_wait_ms(policy, seed, request_sha, retry, failure);
    if (waited + wait > policy.max_total_wait_ms) {
      // the hint is not shortened to fit: the caller's fallback takes over
      giving_up("waiting " + std::to_string(wait) + " ms more would pass retry.max_total_wait_ms (" +
                std::to_string(policy.max_total_wait_ms) + ")");
      return result;
    }
    if (core::diag::enabled(Level::info)) {
      core::diag::info(attempt_line(subject, trace, retry, &failure, recorded) + "; retry in " +
                       std::to_string(wait) + " ms (" +
                       (failure.retry_after_ms ? "the provider's Retry-After hint" : "backoff") + ")");
    }
    if (!recorded) {
      HttpAttempt attempt;
      attempt.error = failure.message;
      trace.attempts.push_back(std::move(attempt));
    }
    trace.attempts.back().wait_ms = wait;
    sleeper.sleep_ms(wait);
    waited += wait;
  }
}

}  // namespace

void log_fallback(std::string_view purpose, std::string_view from_model, std::string_view to_model,
                  const Error& reason) {
  if (!core::diag::enabled(core::diag::Level::warn)) {
    return;
  }
  const std::string why = std::string(error_code_name(reason.code)) + ": " + short_error(reason.message);
  if (to_model.empty()) {
    core::diag::warn("no fallback for " + std::string(purpose) + ": " + std::string(from_model) +
                     " failed and no model of its tier is left (" + why + ")");
    return;
  }
  core::diag::warn("fallback for " + std::string(purpose) + ": " + std::string(from_model) + " -> " +
                   std::string(to_model) + " (same tier) because " + why);
}

RetryingBackend::RetryingBackend(std::unique_ptr<Backend> inner, RetryPolicy policy, uint64_t seed, Sleeper& sleeper)
    : m_inner(std::move(inner)), m_policy(policy), m_seed(seed), m_sleeper(sleeper) {}

Result<Submitted<ModelResponse>> RetryingBackend::submit_model(const ModelRequest& request, CallTrace& trace) {
  return with_retries<Submitted<ModelResponse>>(
      m_policy, m_seed, request_sha256(request.to_json()), m_sleeper,
      request.skill.empty() ? request.model : request.model + " for " + request.skill, trace,
      [&] { return m_inner->submit_model(request, trace); }, [](const Error&, bool) { return true; });
}

Result<Submitted<GenerationResult>> RetryingBackend::submit_generation(const GenerationRequest& request,
                                                                       CallTrace& trace) {
  // A submit that reached the provider may have created (and billed) a job even if the reply was
  // lost, so only a 429 (refused before any work) or a failure with no response at all is tried
  // again. A timeout may have reached the provider, so it is not. "No response" is an attempt
  // with status 0, or no attempt recorded at all (an in-process backend such as the sim).
  return with_retries<Submitted<GenerationResult>>(
      m_policy, m_seed, request_sha256(request.to_json()), m_sleeper, request.model + " render of " + request.shot_id,
      trace, [&] { return m_inner->submit_generation(request, trace); },
      [](const Error& failure, bool responded) {
        return failure.code == ErrorCode::rate_limited ||
               (failure.code == ErrorCode::backend_unavailable && !responded);
      });
}

Result<std::optional<GenerationResult>> RetryingBackend::poll_generation(const std::string& ticket,
                                                                         CallTrace& trace) {
  // A poll only reads, so it is retried like a model call.
  return with_retries<std::optional<GenerationResult>>(
      m_policy, m_seed, core::sha256_hex("poll\n" + ticket), m_sleeper, "a render poll", trace,
      [&] { return m_inner->poll_generation(ticket, trace); }, [](const Error&, bool) { return true; });
}

Result<void> RetryingBackend::cancel_generation(const std::string& ticket, CallTrace& trace) {
  Result<bool> canceled = with_retries<bool>(
      m_policy, m_seed, core::sha256_hex("cancel\n" + ticket), m_sleeper, "a render cancel", trace,
      [&]() -> Result<bool> {
        AVPS_TRY(m_inner->cancel_generation(ticket, trace));
        return true;
      },
      [](const Error&, bool) { return true; });
  if (!canceled) {
    return std::move(canceled).error();
  }
  return ok();
}

}  // namespace avps::backends
