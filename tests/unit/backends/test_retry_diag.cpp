// What the retry layer writes to the diagnostic log (core/diag.hpp, docs/formats/diag-log.md):
// one line per HTTP attempt with its status and the wait that followed, the reason it gave up,
// the exchange's fallback line; and never the key, a header or a body. An HttpModelBackend over a
// scripted HttpClient, a recording sleeper: nothing sleeps, and no assertion reads a clock.

#include <catch2/catch.hpp>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "avps/backends/http_model.hpp"
#include "avps/backends/retry.hpp"
#include "avps/core/diag.hpp"
#include "avps/core/fs.hpp"
#include "support/temp_dir.hpp"
#include "support/recording_sleeper.hpp"

using namespace avps;
using backends::CallTrace;
using backends::HttpOptions;
using backends::HttpRequest;
using backends::HttpResponse;
using nlohmann::json;
using testing::RecordingSleeper;

namespace {

// How every attempt line of these tests begins after "attempt N of ".
const std::string k_subject = "gpt-mini for avps-ping (openai_chat, api.openai.com): ";
const std::string k_diag_key = "sk-diag-NEVER-IN-A-LOG-4242";

// Answers each send() with the next scripted response or transport error.
class ScriptedHttpClient : public backends::HttpClient {
 public:
  explicit ScriptedHttpClient(std::deque<Result<HttpResponse>> script) : m_script(std::move(script)) {}
  Result<HttpResponse> send(const HttpRequest& request, const HttpOptions&) override {
    requests.push_back(request);
    Result<HttpResponse> next = m_script.front();
    m_script.pop_front();
    return next;
  }
  std::vector<HttpRequest> requests;

 private:
  std::deque<Result<HttpResponse>> m_script;
};

HttpResponse reply(int status, int64_t latency_ms, const json& body,
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse response;
  response.status = status;
  response.latency_ms = latency_ms;
  response.body = body.dump();
  response.headers = std::move(headers);
  return response;
}

backends::HttpModelConfig openai_config() {
  backends::HttpModelConfig config;
  config.model_id = "gpt-mini";
  config.kind = backends::WireKind::openai_chat;
  config.endpoint = "https://api.openai.com/v1";
  config.provider_model = "gpt-5-mini";
  config.api_key = k_diag_key;
  return config;
}

// Sends diagnostics to `file` (debug and up) for the life of the test, then nowhere again, even
// when a REQUIRE ends the test early.
class DiagToFile {
 public:
  explicit DiagToFile(const std::filesystem::path& file) {
    core::diag::Options options;
    options.log_file = file;
    REQUIRE(core::diag::configure(options).ok());
  }
  ~DiagToFile() { std::ignore = core::diag::configure({}); }
  DiagToFile(const DiagToFile&) = delete;
  DiagToFile& operator=(const DiagToFile&) = delete;
};

std::vector<std::string> diag_lines_of(const std::filesystem::path& file) {
  std::ignore = core::diag::configure({});  // closes the file
  Result<std::string> text = core::read_file(file);
  REQUIRE(text.ok());
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end = text->find('\n'); end != std::string::npos; end = text->find('\n', start)) {
    lines.push_back(text->substr(start, end - start));
    start = end + 1;
  }
  CHECK(start == text->size());  // every line ends
  return lines;
}

bool has(const std::string& line, const std::string& part) { return line.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("each HTTP attempt is one diagnostic line with its status and wait, never a key or a body", "[diag][http]") {
  // Given a provider that says 429 (retry after 2 s, its body quoting the key), then drops the
  // connection, then answers
  testing::TempDir dir;
  const std::filesystem::path file = dir.path() / "diag.log";
  DiagToFile diag(file);
  const json rate_limited = {{"error",
                              {{"message", "Rate limit reached (BODY-MARKER) for key " + k_diag_key},
                               {"type", "rate_limit_error"}}}};
  const json message = {{"role", "assistant"}, {"content", R"({"ok":true,"x":"ANSWER-MARKER"})"}};
  const json answer = {{"id", "chatcmpl-1"},
                       {"model", "gpt-5-mini"},
                       {"choices", json::array({json{{"index", 0}, {"finish_reason", "stop"}, {"message", message}}})},
                       {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 3}}}};
  ScriptedHttpClient client({reply(429, 12, rate_limited, {{"retry-after", "2"}, {"x-request-id", "req_1"}}),
                             make_error(ErrorCode::backend_unavailable, "POST api.openai.com: connection refused"),
                             reply(200, 40, answer)});
  RecordingSleeper sleeper;
  backends::RetryingBackend backend(std::make_unique<backends::HttpModelBackend>(openai_config(), client),
                                    backends::RetryPolicy{}, 7, sleeper);
  backends::ModelRequest request = backends::ping_request("gpt-mini");
  request.prompt += " PROMPT-MARKER";

  // When the call goes through the retry layer
  CallTrace trace;
  REQUIRE(backend.submit_model(request, trace).ok());
  REQUIRE(sleeper.waits.size() == 2);
  REQUIRE(client.requests.size() == 3);

  // Then the log has one line per attempt: host, status, latency, and the wait with its reason
  const std::vector<std::string> lines = diag_lines_of(file);
  REQUIRE(lines.size() == 3);
  CHECK(has(lines[0], " info "));
  CHECK(has(lines[0], "attempt 1 of " + k_subject + "429 in 12 ms (429 rate_limit_error)"));
  CHECK(has(lines[0], "; retry in 2000 ms (the provider's Retry-After hint)"));
  CHECK(has(lines[1], "attempt 2 of " + k_subject + "no response in "));
  CHECK(has(lines[1], "connection refused"));
  CHECK(has(lines[1], "; retry in " + std::to_string(sleeper.waits[1]) + " ms (backoff)"));
  CHECK(has(lines[2], " debug "));
  CHECK(has(lines[2], "attempt 3 of " + k_subject + "200 in 40 ms"));
  CHECK_FALSE(has(lines[2], "retry"));

  // And nothing of the key, the headers or the bodies, though the request and a reply carried them
  for (const std::string& line : lines) {
    INFO(line);
    CHECK_FALSE(has(line, k_diag_key));
    CHECK_FALSE(has(line, "Bearer"));
    CHECK_FALSE(has(line, "req_1"));
    CHECK_FALSE(has(line, "BODY-MARKER"));
    CHECK_FALSE(has(line, "ANSWER-MARKER"));
    CHECK_FALSE(has(line, "PROMPT-MARKER"));
  }
  CHECK(has(client.requests[0].body, "PROMPT-MARKER"));  // the marker did go out
}

TEST_CASE("the attempt the retry layer gives up on says why, at warn", "[diag][http]") {
  testing::TempDir dir;
  const std::filesystem::path file = dir.path() / "diag.log";
  DiagToFile diag(file);
  const json overloaded = {{"error", {{"message", "overloaded"}, {"type", "server_error"}}}};
  ScriptedHttpClient client({reply(503, 5, overloaded), reply(503, 6, overloaded),
                             reply(400, 7, {{"error", {{"message", "bad"}, {"type", "invalid_request_error"}}}})});
  RecordingSleeper sleeper;
  backends::RetryPolicy policy;
  policy.max_retries = 1;
  backends::RetryingBackend backend(std::make_unique<backends::HttpModelBackend>(openai_config(), client), policy, 7,
                                    sleeper);

  // Two 503s with one retry allowed: the second is the last
  CallTrace spent;
  CHECK_FALSE(backend.submit_model(backends::ping_request("gpt-mini"), spent).ok());
  // A 400 is final at once
  CallTrace refused;
  CHECK_FALSE(backend.submit_model(backends::ping_request("gpt-mini"), refused).ok());

  const std::vector<std::string> lines = diag_lines_of(file);
  REQUIRE(lines.size() == 3);
  CHECK(has(lines[0], "attempt 1 of " + k_subject + "503 in 5 ms (503 server_error); retry in "));
  CHECK(has(lines[1], " warning "));
  CHECK(has(lines[1], "attempt 2 of " + k_subject + "503 in 6 ms (503 server_error)"
                      "; not retried: all 1 retries spent"));
  CHECK(has(lines[2], "attempt 1 of " + k_subject + "400 in 7 ms (400 invalid_request_error)"
                      "; not retried: a final error (rejected)"));
}

TEST_CASE("log_fallback writes the exchange's fallback as one line", "[diag][http]") {
  testing::TempDir dir;
  const std::filesystem::path file = dir.path() / "diag.log";
  DiagToFile diag(file);
  const Error busy = make_error(ErrorCode::rate_limited, "gpt-mini at api.openai.com: HTTP 429 rate_limit_error:\n" +
                                                             std::string(500, 'x'));
  backends::log_fallback("beats for S03", "gpt-mini", "claude", busy);
  backends::log_fallback("beats for S03", "claude", "", busy);

  const std::vector<std::string> lines = diag_lines_of(file);
  REQUIRE(lines.size() == 2);
  CHECK(has(lines[0], "fallback for beats for S03: gpt-mini -> claude (same tier) because rate_limited: "
                      "gpt-mini at api.openai.com: HTTP 429 rate_limit_error: xxx"));
  CHECK(has(lines[0], "x..."));             // the provider's text is cut short
  CHECK(lines[0].size() < 400);
  CHECK(has(lines[1], "no fallback for beats for S03: claude failed and no model of its tier is left"));
}
