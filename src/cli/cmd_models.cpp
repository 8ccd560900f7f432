// `avps models check [DIR] [--ping]`: each model of the project's models file with its backend,
// endpoint host, key and what is missing — the registry's own check, so what it calls ready is
// what `avps run` opens. --ping makes one tiny structured call per text model (through the same
// adapters and retry layer as a run) and reports status and latency; it writes nothing to the
// project and spends a few tokens per model outside the project's budget.
#include <chrono>
#include <filesystem>

#include "avps/backends/registry.hpp"
#include "avps/engine/engine.hpp"
#include "avps/governance/models.hpp"
#include "avps/project/project.hpp"
#include "commands.hpp"

namespace avps::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct ModelsOptions {
  std::string dir = ".";
  bool ping = false;
};

struct Ping {
  bool ok = false;
  std::string status;  ///< "ok" or the error, one line
  int64_t latency_ms = 0;
};

Ping ping(const backends::BackendRegistry& registry, const std::string& model_id) {
  Ping result;
  backends::Backend* backend = registry.for_model(model_id);
  backends::CallTrace trace;
  const auto started = std::chrono::steady_clock::now();
  Result<backends::Submitted<backends::ModelResponse>> answer =
      backend->submit_model(backends::ping_request(model_id), trace);
  result.latency_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  if (!answer) {
    result.status = answer.error().message;
  } else if (!answer->answer) {
    result.status = "answered with a job ticket";
  } else if (!answer->answer->stop_reason.empty()) {
    result.status = "answered, but not whole: " + answer->answer->stop_reason;
  } else {
    result.ok = true;
    result.status = "ok";
  }
  return result;
}

void run_check(Context& ctx, const ModelsOptions& o) {
  const fs::path dir = o.dir;
  project::ConfigSources sources{dir, project::data_dir(), {}, project::process_environment()};
  Result<project::Config> config = project::load_config(sources);
  if (!config) {
    ctx.fail(config.error());
    return;
  }
  Result<governance::ModelsFile> models = governance::ModelsFile::load(project::data_dir(), dir, *config);
  if (!models) {
    ctx.fail(models.error());
    return;
  }
  const std::vector<backends::BackendSpec> specs = engine::backend_specs(*models, dir);
  const std::vector<backends::ModelCheck> checks = backends::check_models(specs, backends::process_env());
  size_t ready = 0;
  for (const backends::ModelCheck& c : checks) {
    ready += c.problems.empty() ? 1 : 0;
  }

  // Pinged: the text models that are ready; the registry opens only those.
  std::map<std::string, Ping> pings;
  if (o.ping) {
    std::vector<backends::BackendSpec> pingable;
    for (size_t i = 0; i < specs.size(); ++i) {
      const governance::Model* model = models->find(specs[i].model_id);
      if (checks[i].problems.empty() && model && model->capabilities.text) {
        pingable.push_back(specs[i]);
      }
    }
    Result<std::unique_ptr<backends::BackendRegistry>> registry =
        backends::BackendRegistry::open(pingable, config->document, backends::process_env());
    if (!registry) {
      ctx.fail(registry.error());
      return;
    }
    for (const backends::BackendSpec& spec : pingable) {
      if (spec.backend == "sim") {
        continue;  // in-process: nothing to reach
      }
      ctx.debug("ping " + spec.model_id + " ...");
      pings[spec.model_id] = ping(**registry, spec.model_id);
    }
  }
  size_t pings_failed = 0;
  for (const auto& [id, p] : pings) {
    pings_failed += p.ok ? 0 : 1;
  }

  if (ctx.json) {
    json list = json::array();
    for (const backends::ModelCheck& c : checks) {
      json one = {{"id", c.model_id},
                  {"backend", c.backend},
                  {"endpoint_host", c.endpoint_host},
                  {"key", c.key},
                  {"problems", c.problems},
                  {"ready", c.problems.empty()}};
      if (auto p = pings.find(c.model_id); p != pings.end()) {
        one["ping"] = {{"ok", p->second.ok}, {"status", p->second.status}, {"latency_ms", p->second.latency_ms}};
      }
      list.push_back(std::move(one));
    }
    ctx.emit_json({{"models", list}, {"ready", ready}, {"refused", checks.size() - ready},
                   {"pings_failed", pings_failed}});
  } else {
    for (const backends::ModelCheck& c : checks) {
      std::string line = (c.problems.empty() ? ctx.paint("ready  ", "\033[32m") : ctx.paint("REFUSED", "\033[31m")) +
                         "  " + c.model_id + "  " + c.backend;
      if (!c.endpoint_host.empty()) {
        line += "  " + c.endpoint_host;
      }
      line += "  key: " + c.key;
      if (auto p = pings.find(c.model_id); p != pings.end()) {
        line += p->second.ok ? "  ping: ok (" + std::to_string(p->second.latency_ms) + " ms)"
                             : "  ping: FAILED: " + p->second.status;
      }
      ctx.info(line);
      for (const std::string& problem : c.problems) {
        ctx.info("         - " + problem);
      }
    }
    ctx.info(std::to_string(ready) + " of " + std::to_string(checks.size()) + " models ready" +
             (o.ping ? ", " + std::to_string(pings.size() - pings_failed) + " of " + std::to_string(pings.size()) +
                           " pinged answered"
                     : ""));
  }
  if (ready < checks.size()) {
    ctx.exit = ExitCode::environment;  // `avps run` would refuse this models file
  } else if (pings_failed > 0) {
    ctx.exit = ExitCode::environment;
  }
}

}  // namespace

void setup_models(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ModelsOptions>();
  CLI::App* models = app.add_subcommand("models", "Check the project's models file");
  models->require_subcommand(1);
  CLI::App* check = models->add_subcommand(
      "check",
      "List each model with its backend, endpoint host and key, and what is missing; exit 4 if `avps run` "
      "would refuse any");
  check->add_option("dir", o->dir, "Project folder (default: .)");
  check->add_flag("--ping", o->ping,
                  "Also make one tiny structured call per ready text model (a few tokens each, outside the "
                  "project's budget; nothing is written to the project)");
  check->footer(
      "Keys are read from the environment variables the models file names (api_key_env); their values are "
      "never printed.\nExit codes: 0 every model ready (and every ping answered), 4 otherwise.");
  check->callback([&ctx, o]() { run_check(ctx, *o); });
}

}  // namespace avps::cli
