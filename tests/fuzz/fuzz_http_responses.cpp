// Fuzz target: what the HTTP model adapters make of a provider's reply
// (src/backends/http_model.cpp, parse_wire_response): the body, status and headers of any
// response, for each wire kind and its answer modes.
//   byte 0          the wire kind and options: kind = b % 3; OpenAI's schema_mode or Anthropic's
//                   json_mode by b / 3 (strict mode makes the adapter strip nulls from the answer)
//   byte 1          the status: one of k_statuses
//   up to a NUL     header lines "name: value" (names lower-cased as the client gives them)
//   after the NUL   the body (no NUL: all of it is the body, no headers)
// Invariant: an answer or an Error, never an exception or a crash; an error has a message and
// never holds the key; a 2xx answer from the strict mode holds JSON text when it held JSON.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "avps/backends/http_model.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "fuzz_support.hpp"

using namespace avps;
using avps::fuzz::fuzz_fail;
using nlohmann::json;

namespace {

constexpr int k_statuses[] = {200, 200, 200, 201, 204, 299, 400, 401, 403, 404, 408, 409,
                              413, 429, 500, 502, 503, 504, 529, 301, 0, 199, 300, 600};
const std::string k_key = "sk-fuzz-secret-key-0123456789";

// The request the answer is for: plausibility-auditor's, with its output schema, so the strict
// mode's wire schema is a real one.
const backends::ModelRequest& request() {
  static const backends::ModelRequest k_request = [] {
    backends::ModelRequest r;
    r.skill = "plausibility-auditor";
    r.model = "fuzz-model";
    r.tier = "t2";
    r.prompt = "prompt";
    r.scope = {{"scene_id", "S01"}};
    r.inputs = json::object();
    r.findings = json::array();
    r.max_output_tokens = 1000;
    Result<std::string> text = core::read_file(avps::fuzz::k_source_dir / "schemas" / "plaus.schema.json");
    if (!text) {
      fuzz_fail("cannot read plaus.schema.json: " + text.error().message);
    }
    r.output_schema = json::parse(*text);
    return r;
  }();
  return k_request;
}

backends::HttpModelConfig config_for(std::uint8_t selector) {
  backends::HttpModelConfig config;
  config.model_id = "fuzz-model";
  config.endpoint = "http://127.0.0.1:9/v1";
  config.api_key = k_key;
  const int mode = selector / 3;
  switch (selector % 3) {
    case 0: {
      static const char* const k_modes[] = {"json_schema_strict", "json_schema", "json_object", "prompt_only"};
      config.kind = backends::WireKind::openai_chat;
      config.options = {{"schema_mode", k_modes[mode % 4]}};
      break;
    }
    case 1: {
      static const char* const k_modes[] = {"tool", "output_config", "prompt_only"};
      config.kind = backends::WireKind::anthropic_messages;
      config.options = {{"json_mode", k_modes[mode % 3]}};
      break;
    }
    default: {
      static const char* const k_modes[] = {"schema", "prompt_only"};
      config.kind = backends::WireKind::gemini_generate;
      config.options = {{"json_mode", k_modes[mode % 2]}};
      break;
    }
  }
  Result<json> options = backends::check_options(config.kind, config.options, "fuzz");
  if (!options) {
    fuzz_fail("fuzz options refused: " + options.error().message);
  }
  config.options = *options;
  config.provider_model = config.model_id;
  return config;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) {
    return 0;
  }
  const backends::HttpModelConfig config = config_for(data[0]);
  backends::HttpResponse response;
  response.status = k_statuses[data[1] % std::size(k_statuses)];
  const std::string_view rest = avps::fuzz::as_text(data + 2, size - 2);
  const std::size_t nul = rest.find('\0');
  if (nul == std::string_view::npos) {
    response.body = std::string(rest);
  } else {
    response.body = std::string(rest.substr(nul + 1));
    std::string_view headers = rest.substr(0, nul);
    while (!headers.empty()) {
      const std::size_t eol = std::min(headers.find('\n'), headers.size());
      const std::string_view line = headers.substr(0, eol);
      const std::size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') {
          value.remove_prefix(1);
        }
        response.headers.emplace_back(std::move(name), std::string(value));
      }
      headers.remove_prefix(std::min(eol + 1, headers.size()));
    }
  }

  Result<backends::ModelResponse> answer = backends::parse_wire_response(config, request(), response);
  if (!answer) {
    const Error& error = answer.error();
    if (error.message.empty()) {
      fuzz_fail("an error without a message");
    }
    if (error.message.find(k_key) != std::string::npos) {
      fuzz_fail("the key is in an error message: " + error.message);
    }
    if (error.retry_after_ms && *error.retry_after_ms < 0) {
      fuzz_fail("a negative retry_after_ms");
    }
    return 0;
  }
  if (response.status < 200 || response.status > 299) {
    fuzz_fail("an answer from HTTP " + std::to_string(response.status));
  }
  const backends::Usage& usage = answer->usage;
  if (usage.provider_cost_micro_usd && *usage.provider_cost_micro_usd < 0) {
    fuzz_fail("a negative provider cost");
  }
  (void)answer->to_json();
  return 0;
}
