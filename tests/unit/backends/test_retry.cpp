// The retry layer (retry.hpp) over a scripted backend and a recording sleeper: which failures it
// retries, how long it waits (the provider's hint, else jittered exponential backoff), where it
// stops, and what it writes into the CallTrace. No test sleeps.

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "avps/backends/retry.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/hash.hpp"
#include "support/recording_sleeper.hpp"

using namespace avps;
using backends::CallTrace;
using backends::GenerationRequest;
using backends::GenerationResult;
using backends::HttpAttempt;
using backends::ModelRequest;
using backends::ModelResponse;
using backends::RetryingBackend;
using backends::RetryPolicy;
using backends::Submitted;
using nlohmann::json;
using testing::RecordingSleeper;

namespace {

// One scripted failure: the error, and the HTTP status the attempt records (0 = no response).
struct Step {
  Error error;
  int status = 0;
};

// Fails with its script's steps in order, then answers; records an HttpAttempt per call as an
// HTTP adapter does (unless record_attempts is off, as for the sim).
class RetryScriptedBackend : public backends::Backend {
 public:
  explicit RetryScriptedBackend(std::vector<Step> script, bool record_attempts = true)
      : m_script(std::move(script)), m_record(record_attempts) {}

  Result<Submitted<ModelResponse>> submit_model(const ModelRequest& request, CallTrace& trace) override {
    if (std::optional<Error> failure = next(trace)) {
      return *failure;
    }
    ModelResponse response;
    response.text = R"({"ok":true})";
    response.model = request.model;
    return Submitted<ModelResponse>{response, {}};
  }

  Result<Submitted<GenerationResult>> submit_generation(const GenerationRequest& request, CallTrace& trace) override {
    if (std::optional<Error> failure = next(trace)) {
      return *failure;
    }
    return Submitted<GenerationResult>{std::nullopt, "job-" + request.shot_id};
  }

  Result<std::optional<GenerationResult>> poll_generation(const std::string&, CallTrace& trace) override {
    if (std::optional<Error> failure = next(trace)) {
      return *failure;
    }
    return std::optional<GenerationResult>{};
  }

  int calls() const { return m_calls; }

 private:
  std::optional<Error> next(CallTrace& trace) {
    const size_t at = static_cast<size_t>(m_calls++);
    HttpAttempt attempt;
    attempt.latency_ms = 5;
    if (at < m_script.size()) {
      attempt.status = m_script[at].status;
      attempt.error = m_script[at].error.message;
      if (m_record) {
        trace.attempts.push_back(attempt);
      }
      return m_script[at].error;
    }
    attempt.status = 200;
    if (m_record) {
      trace.attempts.push_back(attempt);
    }
    return std::nullopt;
  }

  std::vector<Step> m_script;
  bool m_record;
  int m_calls = 0;
};

Error failure(ErrorCode code, std::optional<int64_t> retry_after = std::nullopt) {
  Error error = make_error(code, std::string(error_code_name(code)) + " from the script");
  error.retry_after_ms = retry_after;
  return error;
}

ModelRequest request_for(const std::string& skill) {
  ModelRequest request;
  request.skill = skill;
  request.model = "test-model";
  request.tier = "t2";
  request.prompt = "Write beats.";
  request.inputs = {{"BRIEF", "A heist in Lisbon."}};
  request.seed = 42;
  return request;
}

// What one model call through the retry layer did.
struct Run {
  bool ok = false;
  Error error{ErrorCode::invalid_argument, {}};
  int calls = 0;
  std::vector<int64_t> waits;
  CallTrace trace;
};

Run run_model(std::vector<Step> script, RetryPolicy policy, uint64_t seed = 7,
              const ModelRequest& request = request_for("story-architect")) {
  auto inner = std::make_unique<RetryScriptedBackend>(std::move(script));
  RetryScriptedBackend* scripted = inner.get();
  RecordingSleeper sleeper;
  RetryingBackend backend(std::move(inner), policy, seed, sleeper);
  Run run;
  Result<Submitted<ModelResponse>> result = backend.submit_model(request, run.trace);
  run.ok = result.ok();
  if (!result.ok()) {
    run.error = result.error();
  }
  run.calls = scripted->calls();
  run.waits = sleeper.waits;
  return run;
}

std::string request_sha(const ModelRequest& request) {
  Result<std::string> canonical = core::canonical_json(request.to_json());
  REQUIRE(canonical.ok());
  return core::sha256_hex(*canonical);
}

}  // namespace

TEST_CASE("a Retry-After hint is waited exactly and recorded on the attempt", "[http]") {
  // Given a provider that says 429, come back in 1234 ms, then answers
  Run run = run_model({{failure(ErrorCode::rate_limited, 1234), 429}}, RetryPolicy{});

  // Then the layer waited exactly that, once, and the wait sits on the failed attempt
  CHECK(run.ok);
  CHECK(run.calls == 2);
  CHECK(run.waits == std::vector<int64_t>{1234});
  REQUIRE(run.trace.attempts.size() == 2);
  CHECK(run.trace.attempts[0].status == 429);
  CHECK(run.trace.attempts[0].wait_ms == 1234);
  CHECK(run.trace.attempts[1].status == 200);
  CHECK(run.trace.attempts[1].wait_ms == 0);
}

TEST_CASE("a hint longer than the backoff cap is still honoured", "[http]") {
  RetryPolicy policy;
  policy.max_backoff_ms = 1000;
  Run run = run_model({{failure(ErrorCode::backend_unavailable, 30'000), 503}}, policy);
  CHECK(run.ok);
  CHECK(run.waits == std::vector<int64_t>{30'000});
}

TEST_CASE("backoff doubles with jitter of at most a quarter", "[http]") {
  // Given three failures without a hint and room for three retries
  RetryPolicy policy;
  policy.max_retries = 3;
  policy.base_ms = 500;
  policy.max_backoff_ms = 8000;
  Run run = run_model({{failure(ErrorCode::backend_unavailable), 502},
                       {failure(ErrorCode::timeout), 0},
                       {failure(ErrorCode::backend_unavailable), 0}},
                      policy);

  // Then the waits are 500, 1000, 2000 less up to 25 %
  CHECK(run.ok);
  REQUIRE(run.waits.size() == 3);
  const int64_t full[] = {500, 1000, 2000};
  for (size_t i = 0; i < 3; ++i) {
    INFO("retry " << i + 1 << " waited " << run.waits[i]);
    CHECK(run.waits[i] <= full[i]);
    CHECK(run.waits[i] >= full[i] * 3 / 4);
    CHECK(run.trace.attempts[i].wait_ms == run.waits[i]);
  }
}

TEST_CASE("backoff is capped at max_backoff_ms", "[http]") {
  RetryPolicy policy;
  policy.base_ms = 1000;
  policy.max_backoff_ms = 1500;
  policy.jitter = 0;
  const Error busy = failure(ErrorCode::backend_unavailable);
  const std::string sha = std::string(64, 'a');
  CHECK(backends::retry_wait_ms(policy, 1, sha, 1, busy) == 1000);
  CHECK(backends::retry_wait_ms(policy, 1, sha, 2, busy) == 1500);
  CHECK(backends::retry_wait_ms(policy, 1, sha, 30, busy) == 1500);
}

TEST_CASE("the jitter is deterministic per seed and call and differs between calls", "[http]") {
  RetryPolicy policy;
  policy.max_retries = 4;
  policy.max_total_wait_ms = 1'000'000;
  std::vector<Step> script(4, Step{failure(ErrorCode::backend_unavailable), 503});

  Run first = run_model(script, policy, 7, request_for("story-architect"));
  Run again = run_model(script, policy, 7, request_for("story-architect"));
  Run other_call = run_model(script, policy, 7, request_for("scene-writer"));
  Run other_seed = run_model(script, policy, 8, request_for("story-architect"));

  CHECK(first.waits.size() == 4);
  CHECK(first.waits == again.waits);
  CHECK(first.waits != other_call.waits);
  CHECK(first.waits != other_seed.waits);

  // And it is the function of (seed, request sha, retry) the header promises
  const std::string sha = request_sha(request_for("story-architect"));
  for (int retry = 1; retry <= 4; ++retry) {
    CHECK(backends::retry_wait_ms(policy, 7, sha, retry, failure(ErrorCode::backend_unavailable)) ==
          first.waits[static_cast<size_t>(retry - 1)]);
  }
}

TEST_CASE("final failures are never retried", "[http]") {
  for (ErrorCode code : {ErrorCode::rejected, ErrorCode::invalid_argument, ErrorCode::configuration,
                         ErrorCode::budget_exceeded, ErrorCode::unsupported}) {
    INFO(error_code_name(code));
    // Even with a hint: a 400 that carries Retry-After is still a 400
    Run run = run_model({{failure(code, 100), 400}}, RetryPolicy{});
    CHECK_FALSE(run.ok);
    CHECK(run.error.code == code);
    CHECK(run.calls == 1);
    CHECK(run.waits.empty());
    REQUIRE(run.trace.attempts.size() == 1);
    CHECK(run.trace.attempts[0].wait_ms == 0);
  }
}

TEST_CASE("retries stop at max_retries and return the last failure", "[http]") {
  RetryPolicy policy;
  policy.max_retries = 2;
  std::vector<Step> script = {{failure(ErrorCode::rate_limited, 10), 429},
                              {failure(ErrorCode::rate_limited, 20), 429},
                              {failure(ErrorCode::timeout, 30), 0},
                              {failure(ErrorCode::rate_limited, 40), 429}};
  Run run = run_model(script, policy);
  CHECK_FALSE(run.ok);
  CHECK(run.error.code == ErrorCode::timeout);
  CHECK(run.calls == 3);
  CHECK(run.waits == std::vector<int64_t>{10, 20});
  REQUIRE(run.trace.attempts.size() == 3);
  CHECK(run.trace.attempts[2].wait_ms == 0);

  // max_retries 0: one attempt only
  policy.max_retries = 0;
  Run once = run_model(script, policy);
  CHECK(once.calls == 1);
  CHECK(once.waits.empty());
}

TEST_CASE("a wait that would cross the total-wait cap ends the retries", "[http]") {
  // Given hints of 600 ms and a budget of 1000 ms of waiting in all
  RetryPolicy policy;
  policy.max_retries = 5;
  policy.max_total_wait_ms = 1000;
  std::vector<Step> script(5, Step{failure(ErrorCode::rate_limited, 600), 429});

  Run run = run_model(script, policy);

  // Then the first wait fits, the second (1200 in all) is not taken, nor shortened to fit
  CHECK_FALSE(run.ok);
  CHECK(run.error.code == ErrorCode::rate_limited);
  CHECK(run.calls == 2);
  CHECK(run.waits == std::vector<int64_t>{600});
}

TEST_CASE("a generation is not resubmitted after a response-bearing 500", "[http]") {
  auto run_generation = [](std::vector<Step> script) {
    auto inner = std::make_unique<RetryScriptedBackend>(std::move(script));
    RetryScriptedBackend* scripted = inner.get();
    RecordingSleeper sleeper;
    RetryingBackend backend(std::move(inner), RetryPolicy{}, 7, sleeper);
    GenerationRequest request;
    request.shot_id = "S01_SH01";
    request.model = "video-model";
    CallTrace trace;
    Result<Submitted<GenerationResult>> result = backend.submit_generation(request, trace);
    return std::make_pair(result.ok(), scripted->calls());
  };
  // The server answered 500: a job may exist and be billed
  CHECK(run_generation({{failure(ErrorCode::backend_unavailable), 500}}) == std::make_pair(false, 1));
  // A timeout may have reached the server too
  CHECK(run_generation({{failure(ErrorCode::timeout), 0}}) == std::make_pair(false, 1));
  // A 429 refused the job before any work: retried
  CHECK(run_generation({{failure(ErrorCode::rate_limited, 5), 429}}) == std::make_pair(true, 2));
  // No response at all (connection refused): retried
  CHECK(run_generation({{failure(ErrorCode::backend_unavailable), 0}}) == std::make_pair(true, 2));
}

TEST_CASE("polls are retried like model calls", "[http]") {
  auto inner = std::make_unique<RetryScriptedBackend>(
      std::vector<Step>{{failure(ErrorCode::backend_unavailable), 500}, {failure(ErrorCode::timeout), 0}});
  RetryScriptedBackend* scripted = inner.get();
  RecordingSleeper sleeper;
  RetryingBackend backend(std::move(inner), RetryPolicy{}, 7, sleeper);
  CallTrace trace;
  Result<std::optional<GenerationResult>> polled = backend.poll_generation("job-1", trace);
  CHECK(polled.ok());
  CHECK(scripted->calls() == 3);
  CHECK(sleeper.waits.size() == 2);
}

TEST_CASE("an inner backend that records no attempts still gets its waits recorded", "[http]") {
  auto inner = std::make_unique<RetryScriptedBackend>(
      std::vector<Step>{{failure(ErrorCode::rate_limited, 250), 429}}, /*record_attempts=*/false);
  RecordingSleeper sleeper;
  RetryingBackend backend(std::move(inner), RetryPolicy{}, 7, sleeper);
  CallTrace trace;
  Result<Submitted<ModelResponse>> result = backend.submit_model(request_for("story-architect"), trace);
  CHECK(result.ok());
  REQUIRE(trace.attempts.size() == 1);
  CHECK(trace.attempts[0].status == 0);
  CHECK(trace.attempts[0].wait_ms == 250);
  CHECK(trace.attempts[0].error.find("rate_limited") != std::string::npos);
}

TEST_CASE("RetryPolicy from_json reads its four fields and refuses others", "[http]") {
  Result<RetryPolicy> defaults = RetryPolicy::from_json(json(), "models.json model \"m\"");
  REQUIRE(defaults.ok());
  CHECK(defaults->max_retries == 2);
  CHECK(defaults->base_ms == 500);
  CHECK(defaults->max_backoff_ms == 8000);

  Result<RetryPolicy> set = RetryPolicy::from_json(
      json{{"max_retries", 4}, {"base_ms", 250}, {"max_backoff_ms", 4000}, {"max_total_wait_ms", 9000}}, "m");
  REQUIRE(set.ok());
  CHECK(set->max_retries == 4);
  CHECK(set->base_ms == 250);
  CHECK(set->max_backoff_ms == 4000);
  CHECK(set->max_total_wait_ms == 9000);

  Result<RetryPolicy> unknown = RetryPolicy::from_json(json{{"retries", 3}}, "models.json model \"m\"");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == ErrorCode::configuration);
  CHECK(unknown.error().message.find("models.json model \"m\"") != std::string::npos);
  CHECK(unknown.error().message.find("retries") != std::string::npos);

  for (const json& bad : {json{{"max_retries", -1}}, json{{"max_retries", 2.5}}, json{{"base_ms", "500"}},
                          json{{"max_retries", 1000}}, json{{"base_ms", 2000}, {"max_backoff_ms", 1000}}}) {
    INFO(bad.dump());
    Result<RetryPolicy> refused = RetryPolicy::from_json(bad, "m");
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::configuration);
  }
  CHECK_FALSE(RetryPolicy::from_json(json::array(), "m").ok());
}
