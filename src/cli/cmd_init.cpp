#include <memory>

#include "avps/core/clock.hpp"
#include "avps/project/project.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

struct InitOptions {
  std::string dir;
  std::string title;
  std::vector<std::string> sets;
};

void run_init(const InitOptions& options, Context& ctx) {
  std::vector<project::Override> overrides;
  for (const std::string& text : options.sets) {
    Result<project::Override> o = project::parse_override(text);
    if (!o) {
      ctx.fail(ExitCode::usage, o.error().message);
      return;
    }
    overrides.push_back(*o);
  }
  core::SystemClock clock;
  ctx.debug("shipped data in " + project::data_dir().string());
  Result<std::unique_ptr<project::Project>> project = project::Project::init(options.dir, options.title, overrides, clock);
  if (!project) {
    ctx.fail(project.error());
    return;
  }
  Result<std::vector<ledger::ArtifactRecord>> artifacts = (*project)->ledger().artifacts();
  if (!artifacts) {
    ctx.fail(artifacts.error());
    return;
  }
  if (ctx.json) {
    nlohmann::json listed = nlohmann::json::array();
    for (const ledger::ArtifactRecord& a : *artifacts) {
      listed.push_back(a.path);
    }
    ctx.emit_json({{"ok", true},
                   {"project", options.dir},
                   {"title", (*project)->config().title},
                   {"artifacts", listed},
                   {"ledger_head", (*project)->ledger().head().seq}});
    return;
  }
  ctx.info("Initialised avps project \"" + (*project)->config().title + "\" in " + options.dir);
  for (const ledger::ArtifactRecord& a : *artifacts) {
    ctx.info("  recorded " + a.path);
  }
  ctx.info("Next: describe the film in " + options.dir + "/brief.md, set budget.project_cap_usd in avps.json,");
  ctx.info("then `avps gate " + options.dir + "` to check the folder.");
}

}  // namespace

void setup_init(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<InitOptions>();
  CLI::App* cmd = app.add_subcommand("init", "Create a project folder: avps.json, brief.md, layer folders, ledger");
  cmd->footer(
      "DIR may be new, empty, or hold only project inputs (avps.json, brief.md, models.json, skills/,\n"
      "policies/, README.md); an existing avps.json is validated and kept. init records the first\n"
      "artifacts: continuity/STYLE_PROJECT_LOCK_v001.txt (from avps.json's style block) and the empty\n"
      "continuity/WORLD_STATE_v001.json. It refuses any other non-empty folder and an existing project.");
  cmd->add_option("dir", options->dir, "Project folder")->required();
  cmd->add_option("--title", options->title, "Film or series title for a new avps.json");
  cmd->add_option("--set", options->sets, "Override a configuration value: POINTER=VALUE (repeatable)");
  cmd->callback([options, &ctx]() { run_init(*options, ctx); });
}

}  // namespace avps::cli
