#include <memory>

#include "avps/backends/sim_backend.hpp"
#include "avps/core/clock.hpp"
#include "avps/engine/engine.hpp"
#include "avps/governance/models.hpp"
#include "avps/governance/override.hpp"
#include "commands.hpp"

namespace avps::cli {
namespace fs = std::filesystem;

namespace {

struct RunOptionsCli {
  std::string dir = ".";
  std::string until;
  std::string scene;
  int jobs = 1;
};

class LineObserver : public engine::Observer {
 public:
  explicit LineObserver(const Context& ctx) : m_ctx(ctx) {}
  void progress(const std::string& line) override { m_ctx.info(line); }
  bool interrupted() const override { return g_interrupted; }

 private:
  const Context& m_ctx;
};

void run_run(const RunOptionsCli& o, Context& ctx) {
  core::SystemClock clock;
  auto project = project::Project::open(o.dir, ledger::OpenMode::read_write, {}, clock);
  if (!project) {
    ctx.fail(project.error());
    return;
  }
  fs::path project_dir = o.dir;
  auto registry = skills::Registry::load(project::data_dir(), &project_dir);
  if (!registry) {
    ctx.fail(registry.error());
    return;
  }
  auto models = governance::ModelsFile::load(project::data_dir(), project_dir, (*project)->config());
  if (!models) {
    ctx.fail(models.error());
    return;
  }
  auto backend = backends::SimBackend::from_config((*project)->config().document);
  if (!backend) {
    ctx.fail(backend.error());
    return;
  }
  governance::Router router(std::move(models).value());
  ledger::Ledger& ledger = (*project)->ledger();
  // Caps as configured, raised where a person recorded `avps override --raise-cap`.
  auto overrides = governance::Overrides::read(ledger);
  if (!overrides) {
    ctx.fail(overrides.error());
    return;
  }
  if (auto begun = ledger.begin_run("run", {{"until", o.until}, {"scene", o.scene}, {"jobs", o.jobs}}); !begun) {
    ctx.fail(begun.error());
    return;
  }
  const project::Budget configured = (*project)->config().budget;
  governance::BudgetGovernor governor(
      ledger, overrides->effective_budget(configured),
      [&overrides, configured](const std::string& scene, const std::string& shot) {
        return overrides->caps_for(configured, scene, shot);
      });
  LineObserver observer(ctx);
  engine::Engine engine(**project, *registry, **backend, router, governor, observer);
  Result<engine::RunOutcome> outcome = engine.run(engine::RunOptions{o.until, o.scene, o.jobs});
  std::string ended = !outcome                                   ? "ERROR"
                      : outcome->exit == ExitCode::hard_stop     ? "STOP"
                      : outcome->exit == ExitCode::interrupted   ? "INTERRUPTED"
                                                                 : "DONE";
  std::ignore = ledger.end_run(ended, outcome ? nlohmann::json{{"calls_made", outcome->calls_made},
                                                               {"calls_replayed", outcome->calls_replayed}}
                                              : nlohmann::json{{"error", outcome.error().message}});
  if (!outcome) {
    ctx.fail(outcome.error());
    return;
  }
  const engine::RunOutcome& r = *outcome;
  nlohmann::json summary = {{"calls_made", r.calls_made},
                            {"calls_replayed", r.calls_replayed},
                            {"steps_skipped", r.steps_skipped},
                            {"artifacts_written", r.artifacts_written}};
  if (r.exit != ExitCode::ok) {
    ctx.fail(r.exit, r.message);
    return;
  }
  if (ctx.json) {
    summary["ok"] = true;
    ctx.emit_json(summary);
  } else {
    ctx.info("done: " + std::to_string(r.artifacts_written) + " artifacts written, " + std::to_string(r.calls_made) +
             " calls made, " + std::to_string(r.calls_replayed) + " answered from the record, " +
             std::to_string(r.steps_skipped) + " steps up to date");
  }
}

}  // namespace

void setup_run(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<RunOptionsCli>();
  CLI::App* cmd = app.add_subcommand("run", "Produce or resume a production: run the gated loops");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->add_option("--until", options->until,
                  "Stop after this phase: narrative, locks, psychology, narrative_review, validation, continuity, "
                  "planning, cost_proxy, shots_proxy, cost_final, shots_final");
  cmd->add_option("--scene", options->scene,
                  "Produce only this scene (e.g. S03); the scenes before it still get their continuity");
  cmd->add_option("--jobs,-j", options->jobs, "Backend calls in flight at once (default 1); never changes the output")
      ->check(CLI::Range(1, 256));
  cmd->footer(
      "Runs the five loops of the stage graph (policies/stage_graph.json) on the project's backend (the\n"
      "offline sim by default): narrative, locks, psychology and the narrative review once; then scene by\n"
      "scene validation, continuity and planning; then per scene the cost loop, proxy waves with QC and\n"
      "regen rounds, the cost loop again, and final waves. Every call is routed, reserved against the\n"
      "budget, recorded before it is sent and after it answers; every output is schema-checked and gated.\n"
      "Running again resumes: recorded calls are not repeated; only stale steps re-run.\n"
      "Exit codes: 0 done, 3 hard stop (see `avps status`; `avps override` records a decision),\n"
      "4 configuration, 130 interrupted (Ctrl-C; run again to resume).");
  cmd->callback([options, &ctx]() { run_run(*options, ctx); });
}

}  // namespace avps::cli
