// The backend registry: what it opens, and what it refuses before a run — every refused model
// named with its field and fix, and never a key or a secret-bearing endpoint in the message.

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "avps/backends/registry.hpp"
#include "avps/core/exit_code.hpp"

using namespace avps;
using backends::BackendSpec;

namespace {

backends::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

BackendSpec openai(const std::string& id) {
  return BackendSpec{.model_id = id,
                     .backend = "openai_chat",
                     .endpoint = "https://api.openai.com/v1",
                     .api_key_env = "AVPS_TEST_OPENAI_KEY",
                     .provider_model = "", .preset = "",
                     .options = nlohmann::json::object(),
                     .generates = false, .project_dir = {}};
}

std::string refusal(const std::vector<BackendSpec>& specs, const backends::EnvLookup& env) {
  auto opened = backends::BackendRegistry::open(specs, nlohmann::json::object(), env);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().code == ErrorCode::configuration);
  CHECK(exit_code_for(opened.error().code) == ExitCode::environment);
  return opened.error().message;
}

}  // namespace

TEST_CASE("the registry opens sim and HTTP models and answers for each by id", "[registry]") {
  BackendSpec sim{.model_id = "sim-a", .backend = "sim", .endpoint = "", .api_key_env = "", .provider_model = "", .preset = "",
                  .options = nlohmann::json::object(), .generates = true, .project_dir = {}};
  auto opened = backends::BackendRegistry::open({sim, openai("gpt-x")}, nlohmann::json::object(),
                                                env_of({{"AVPS_TEST_OPENAI_KEY", "sk-test-123"}}));
  REQUIRE(opened.ok());
  CHECK((*opened)->for_model("sim-a") != nullptr);
  CHECK((*opened)->for_model("gpt-x") != nullptr);
  CHECK((*opened)->for_model("unknown") == nullptr);
  CHECK((*opened)->kind_of("gpt-x") == "openai_chat");
  CHECK((*opened)->kind_of("sim-a") == "sim");
}

TEST_CASE("every refused model is named with its field and the fix, in one error", "[registry]") {
  BackendSpec unbuilt = openai("torch-local");
  unbuilt.backend = "torchserve";
  BackendSpec comfy = openai("comfy-text");  // a text model moved to comfyui, options left as they were
  comfy.backend = "comfyui";
  comfy.api_key_env = "";
  BackendSpec unset_key = openai("gpt-unset");
  BackendSpec malformed = openai("gpt-malformed");
  malformed.endpoint = "api.openai.com/v1";
  BackendSpec renders = openai("gpt-renders");
  renders.generates = true;
  renders.video_out = true;
  const std::string message = refusal({unbuilt, comfy, unset_key, malformed, renders}, env_of({}));
  CHECK(message.find("model \"torch-local\" (torchserve)") != std::string::npos);
  CHECK(message.find("is not built") != std::string::npos);
  CHECK(message.find("model \"comfy-text\" (comfyui): comfyui renders: set capabilities.video_out") !=
        std::string::npos);
  CHECK(message.find("model \"comfy-text\" (comfyui): options.workflow is missing") != std::string::npos);
  CHECK(message.find("model \"gpt-unset\"") != std::string::npos);
  CHECK(message.find("export AVPS_TEST_OPENAI_KEY=") != std::string::npos);
  CHECK(message.find("model \"gpt-malformed\"") != std::string::npos);
  CHECK(message.find("must start with http:// or https://") != std::string::npos);
  CHECK(message.find("model \"gpt-renders\"") != std::string::npos);
  CHECK(message.find("capabilities.video_out is true, but openai_chat renders no video") != std::string::npos);
}

TEST_CASE("an endpoint that carries a secret is refused without repeating it", "[registry]") {
  BackendSpec in_query = openai("gpt-query");
  in_query.endpoint = "https://api.example.com/v1?key=SECRET-IN-QUERY";
  BackendSpec in_userinfo = openai("gpt-userinfo");
  in_userinfo.endpoint = "https://user:SECRET-IN-USERINFO@api.example.com/v1";
  const std::string message =
      refusal({in_query, in_userinfo}, env_of({{"AVPS_TEST_OPENAI_KEY", "sk-test-123"}}));
  CHECK(message.find("SECRET") == std::string::npos);
  CHECK(message.find("host api.example.com") != std::string::npos);
  CHECK(message.find("query") != std::string::npos);
  CHECK(message.find("user info") != std::string::npos);
}

TEST_CASE("a key is never sent over plain http to another machine", "[registry]") {
  const auto env = env_of({{"AVPS_TEST_OPENAI_KEY", "sk-test-123"}});
  BackendSpec remote = openai("gpt-remote");
  remote.endpoint = "http://gpu-box.lan:8000/v1";
  CHECK(refusal({remote}, env).find("unencrypted") != std::string::npos);
  // Loopback with a key, or a LAN server without one, is fine.
  BackendSpec loopback = openai("gpt-loopback");
  loopback.endpoint = "http://127.0.0.1:8000/v1";
  BackendSpec keyless = openai("llama-lan");
  keyless.endpoint = "http://gpu-box.lan:8000/v1";
  keyless.api_key_env = "";
  CHECK(backends::BackendRegistry::open({loopback, keyless}, nlohmann::json::object(), env).ok());
}

TEST_CASE("a provider model name that would change Gemini's URL is refused", "[registry]") {
  BackendSpec gemini{.model_id = "gemini-x",
                     .backend = "gemini_generate",
                     .endpoint = "https://generativelanguage.googleapis.com",
                     .api_key_env = "",
                     .provider_model = "gemini-2.5-flash?alt=sse", .preset = "",
                     .options = nlohmann::json::object(),
                     .generates = false, .project_dir = {}};
  CHECK(refusal({gemini}, env_of({})).find("provider_model") != std::string::npos);
  gemini.provider_model = "gemini-2.5-flash";
  CHECK(backends::BackendRegistry::open({gemini}, nlohmann::json::object(), env_of({})).ok());
  // OpenAI-compatible servers use names such as "qwen3:14b" and "meta-llama/Llama-3.1-8B".
  BackendSpec local = openai("qwen");
  local.endpoint = "http://127.0.0.1:11434/v1";
  local.api_key_env = "";
  local.provider_model = "meta-llama/Llama-3.1-8B:q4";
  CHECK(backends::BackendRegistry::open({local}, nlohmann::json::object(), env_of({})).ok());
}

TEST_CASE("check_models says per model what is missing, and never reads more than set or unset", "[registry]") {
  BackendSpec unset_key = openai("gpt-unset");
  BackendSpec ready = openai("gpt-ready");
  ready.api_key_env = "AVPS_TEST_SET_KEY";
  auto checks = backends::check_models({unset_key, ready}, env_of({{"AVPS_TEST_SET_KEY", "sk-distinctive-999"}}));
  REQUIRE(checks.size() == 2);
  CHECK(checks[0].endpoint_host == "api.openai.com");
  CHECK(checks[0].key.find("UNSET") == 0);
  REQUIRE(checks[0].problems.size() == 1);
  CHECK(checks[0].problems[0].find("api_key_env") != std::string::npos);
  CHECK(checks[1].problems.empty());
  CHECK(checks[1].key.find("set") == 0);
  CHECK(checks[1].key.find("sk-distinctive") == std::string::npos);
}
