#include "avps/backends/registry.hpp"

#include <algorithm>
#include <cctype>

#include <cstdlib>

#include "avps/backends/async_job.hpp"
#include "avps/backends/comfyui.hpp"
#include "avps/backends/http_model.hpp"
#include "avps/backends/sim_backend.hpp"

namespace avps::backends {
using nlohmann::json;

namespace {

std::optional<WireKind> http_kind(std::string_view backend) {
  if (backend == "openai_chat") {
    return WireKind::openai_chat;
  }
  if (backend == "anthropic_messages") {
    return WireKind::anthropic_messages;
  }
  if (backend == "gemini_generate") {
    return WireKind::gemini_generate;
  }
  return std::nullopt;
}

bool is_loopback_host(const std::string& host_port) {
  std::string host = host_port;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// The name sent on the wire: in Gemini's URL path it must not change the path or add a query.
bool valid_provider_model(WireKind kind, const std::string& name) {
  if (name.empty() || name.size() > 256) {
    return false;
  }
  const std::string_view extra = kind == WireKind::gemini_generate ? "._-" : "._-:/@+";
  return std::all_of(name.begin(), name.end(), [&](unsigned char c) {
    return std::isalnum(c) || extra.find(static_cast<char>(c)) != std::string_view::npos;
  });
}

std::string where(const BackendSpec& spec) { return "model \"" + spec.model_id + "\""; }

// What a chat kind cannot render: video always, images on anthropic_messages (openai_chat and
// gemini_generate draw storyboard frames by their image operation, http_images.hpp).
std::vector<std::string> chat_render_problems(WireKind kind, const BackendSpec& spec) {
  std::vector<std::string> problems;
  const bool video = spec.video_out || (spec.generates && !spec.image_out);
  if (video) {
    problems.push_back("capabilities.video_out is true, but " + spec.backend +
                       " renders no video: set it to false (videos need async_job, comfyui or sim)");
  }
  if (spec.image_out && kind == WireKind::anthropic_messages) {
    problems.push_back(
        "capabilities.image_out is true, but anthropic_messages has no image output: set it to "
        "false (storyboard frames: openai_chat or gemini_generate with an image model, async_job, "
        "or sim)");
  }
  return problems;
}

// The problems of one spec, each naming the field and the fix; empty when it can be opened.
// `options` receives the checked options with their defaults.
std::vector<std::string> problems_of(const BackendSpec& spec, const EnvLookup& env, json* options) {
  std::vector<std::string> problems;
  if (spec.backend == "sim") {
    return problems;
  }
  const bool comfy = spec.backend == "comfyui";
  const bool job = spec.backend == "async_job";
  std::optional<WireKind> kind = http_kind(spec.backend);
  if (!kind && !job && !comfy) {
    problems.push_back("backend \"" + spec.backend +
                       "\" is not built in this avps (built: sim, openai_chat, anthropic_messages, gemini_generate, "
                       "async_job, comfyui); give the model one of those, or remove it from the models file");
    return problems;
  }
  if ((job || comfy) && !spec.generates) {
    problems.push_back(spec.backend + " renders: set capabilities.video_out (or image_out) to true, and give the model "
                       "only generation tiers (gen_premium, gen_mid, gen_low)");
  }
  if (!job && !spec.preset.empty()) {
    problems.push_back("preset \"" + spec.preset + "\" is an async_job field: remove it, or set backend to async_job");
  }
  if (kind) {
    for (std::string& problem : chat_render_problems(*kind, spec)) {
      problems.push_back(std::move(problem));
    }
  }
  std::string why;
  if (spec.endpoint.empty()) {
    problems.push_back("endpoint is missing: set it to the provider's base URL (docs/providers.md), e.g. "
                       "\"https://api.openai.com/v1\" or \"http://127.0.0.1:11434/v1\"");
  } else if (!valid_endpoint(spec.endpoint, why)) {
    // The value itself is not repeated: a malformed endpoint may carry a key in its query or
    // user info.
    const std::string host = url_host(spec.endpoint);
    problems.push_back("endpoint" + (host.empty() ? std::string() : " (host " + host + ")") + " " + why);
  } else if (!spec.api_key_env.empty() && spec.endpoint.rfind("http://", 0) == 0 &&
             !is_loopback_host(url_host(spec.endpoint))) {
    problems.push_back("endpoint is http:// to " + url_host(spec.endpoint) +
                       ", which would send the key unencrypted: use https://, or drop api_key_env for a "
                       "server that needs no key");
  }
  const WireKind name_rule = kind.value_or(WireKind::openai_chat);  // async_job: ids with / and : (fal, Replicate)
  if (!valid_provider_model(name_rule, spec.provider_model.empty() ? spec.model_id : spec.provider_model)) {
    problems.push_back(std::string("provider_model (default: the id) may hold only letters, digits and ") +
                       (name_rule == WireKind::gemini_generate ? ". _ -" : ". _ - : / @ +") +
                       " for this backend: set provider_model to the provider's model name");
  }
  if (!spec.api_key_env.empty()) {
    const char* value = env(spec.api_key_env.c_str());
    if (value == nullptr || *value == '\0') {
      problems.push_back("api_key_env names " + spec.api_key_env + ", which is unset or empty: export " +
                         spec.api_key_env + "=<your key> before the run (or drop api_key_env for a server "
                         "that needs no key)");
    }
  }
  // Their messages start with where(spec), which the caller's prefix already says.
  auto without_where = [&](const std::string& message) {
    const std::string prefix = where(spec) + ": ";
    return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
  };
  Result<json> checked = job     ? async_job_options(spec.preset, spec.options, where(spec))
                         : comfy ? comfyui_options(spec.options, where(spec))
                                 : check_options(*kind, spec.options, where(spec));
  if (!checked) {
    problems.push_back(without_where(checked.error().message));
  } else {
    if (comfy) {
      // The workflow file and its bindings, without a server (the server's check is open()'s).
      if (Result<ComfyWorkflow> workflow = load_comfyui_workflow(spec.project_dir, *checked, where(spec)); !workflow) {
        problems.push_back(without_where(workflow.error().message));
      }
    }
    if (options) {
      *options = *checked;
    }
  }
  Result<RetryPolicy> retry = RetryPolicy::from_json(spec.options.value("retry", json::object()), where(spec));
  if (!retry) {
    problems.push_back(without_where(retry.error().message));
  }
  return problems;
}

}  // namespace

EnvLookup process_env() {
  return [](const char* name) -> const char* { return std::getenv(name); };
}

std::vector<ModelCheck> check_models(const std::vector<BackendSpec>& specs, const EnvLookup& env) {
  std::vector<ModelCheck> out;
  for (const BackendSpec& spec : specs) {
    ModelCheck check;
    check.model_id = spec.model_id;
    check.backend = spec.backend;
    check.endpoint_host = spec.backend == "sim" ? "" : url_host(spec.endpoint);
    if (spec.backend == "sim" || spec.api_key_env.empty()) {
      check.key = "not needed";
    } else {
      const char* value = env(spec.api_key_env.c_str());
      check.key = (value && *value) ? "set (" + spec.api_key_env + ")" : "UNSET (" + spec.api_key_env + ")";
    }
    check.problems = problems_of(spec, env, nullptr);
    out.push_back(std::move(check));
  }
  return out;
}

Result<std::unique_ptr<BackendRegistry>> BackendRegistry::open(const std::vector<BackendSpec>& specs,
                                                               const json& project_config, const EnvLookup& env,
                                                               Transport transport) {
  auto registry = std::make_unique<BackendRegistry>();
  std::string refused;
  std::shared_ptr<SimBackend> sim;
  const uint64_t seed = project_config.value("seed", uint64_t{0});
  std::string comfy_client_id;
  for (const BackendSpec& spec : specs) {
    json options;
    std::vector<std::string> problems = problems_of(spec, env, &options);
    if (!problems.empty()) {
      for (const std::string& problem : problems) {
        refused += "\n  " + where(spec) + " (" + spec.backend + "): " + problem;
      }
      continue;
    }
    registry->m_kind[spec.model_id] = spec.backend;
    if (spec.backend == "sim") {
      if (!sim) {
        AVPS_TRY_ASSIGN(std::unique_ptr<SimBackend> made, SimBackend::from_config(project_config));
        sim = std::move(made);
      }
      registry->m_by_model[spec.model_id] = sim;
      continue;
    }
    if (transport.client == nullptr) {
      registry->m_own_client = std::make_unique<CurlHttpClient>();
      transport.client = registry->m_own_client.get();
    }
    if (transport.sleeper == nullptr) {
      registry->m_own_sleeper = std::make_unique<RealSleeper>();
      transport.sleeper = registry->m_own_sleeper.get();
    }
    AVPS_TRY_ASSIGN(RetryPolicy retry_policy,
                    RetryPolicy::from_json(spec.options.value("retry", json::object()), where(spec)));
    if (spec.backend == "comfyui") {
      ComfyUiConfig comfy;
      comfy.model_id = spec.model_id;
      comfy.endpoint = spec.endpoint;
      if (!spec.api_key_env.empty()) {
        comfy.api_key = env(spec.api_key_env.c_str());
      }
      if (comfy_client_id.empty()) {
        comfy_client_id = comfyui_client_id();  // one per run, shared by its comfyui models
      }
      comfy.client_id = comfy_client_id;
      comfy.options = options;
      AVPS_TRY_ASSIGN(comfy.workflow, load_comfyui_workflow(spec.project_dir, options, where(spec)));
      comfy.http.total_timeout_ms = options["timeout_s"].get<int64_t>() * 1000;
      comfy.http.connect_timeout_ms = options["connect_timeout_s"].get<int64_t>() * 1000;
      auto backend = std::make_unique<ComfyUiBackend>(std::move(comfy), *transport.client);
      // The server is asked once, now: a workflow it cannot run is refused before anything is
      // recorded, with the other models' problems.
      CallTrace trace;
      if (std::vector<std::string> server = backend->check_server(trace); !server.empty()) {
        for (const std::string& problem : server) {
          refused += "\n  " + where(spec) + " (" + spec.backend + "): " + problem;
        }
        continue;
      }
      registry->m_by_model[spec.model_id] =
          std::make_shared<RetryingBackend>(std::move(backend), retry_policy, seed, *transport.sleeper);
      continue;
    }
    if (spec.backend == "async_job") {
      AsyncJobConfig job;
      job.model_id = spec.model_id;
      job.preset = spec.preset;
      job.endpoint = spec.endpoint;
      job.provider_model = spec.provider_model.empty() ? spec.model_id : spec.provider_model;
      if (!spec.api_key_env.empty()) {
        job.api_key = env(spec.api_key_env.c_str());
      }
      job.options = options;
      job.http.total_timeout_ms = options.value("timeout_s", int64_t{120}) * 1000;
      job.http.connect_timeout_ms = options.value("connect_timeout_s", int64_t{10}) * 1000;
      job.image_out = spec.image_out;
      job.video_out = spec.video_out || (spec.generates && !spec.image_out);
      registry->m_by_model[spec.model_id] = std::make_shared<RetryingBackend>(
          std::make_unique<AsyncJobBackend>(std::move(job), *transport.client), retry_policy, seed, *transport.sleeper);
      continue;
    }
    HttpModelConfig config;
    config.model_id = spec.model_id;
    config.kind = *http_kind(spec.backend);
    config.endpoint = spec.endpoint;
    config.provider_model = spec.provider_model.empty() ? spec.model_id : spec.provider_model;
    if (!spec.api_key_env.empty()) {
      config.api_key = env(spec.api_key_env.c_str());
    }
    config.options = options;
    config.http.total_timeout_ms = options.value("timeout_s", int64_t{300}) * 1000;
    config.http.connect_timeout_ms = options.value("connect_timeout_s", int64_t{10}) * 1000;
    config.image_out = spec.image_out;
    config.text = spec.text;
    registry->m_by_model[spec.model_id] = std::make_shared<RetryingBackend>(
        std::make_unique<HttpModelBackend>(std::move(config), *transport.client), retry_policy, seed,
        *transport.sleeper);
  }
  if (!refused.empty()) {
    return make_error(ErrorCode::configuration,
                      "the models file declares models avps cannot call; nothing was run:" + refused);
  }
  return registry;
}

std::unique_ptr<BackendRegistry> BackendRegistry::of(std::map<std::string, std::shared_ptr<Backend>, std::less<>> by_model,
                                                     const std::map<std::string, std::string, std::less<>>& kinds) {
  auto registry = std::make_unique<BackendRegistry>();
  for (const auto& [id, backend] : by_model) {
    auto kind = kinds.find(id);
    registry->m_kind[id] = kind == kinds.end() ? "scripted" : kind->second;
  }
  registry->m_by_model = std::move(by_model);
  return registry;
}

Backend* BackendRegistry::for_model(std::string_view model_id) const {
  auto it = m_by_model.find(model_id);
  return it == m_by_model.end() ? nullptr : it->second.get();
}

std::string BackendRegistry::kind_of(std::string_view model_id) const {
  auto it = m_kind.find(model_id);
  return it == m_kind.end() ? "" : it->second;
}

}  // namespace avps::backends
