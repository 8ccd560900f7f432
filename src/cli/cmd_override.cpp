// `avps override DIR --stop STOP-42 --reason TEXT (--raise-cap USD | --allow-attempts N | --accept NAME)`:
// records a person's decision that lifts a hard stop. The checks and the writes are
// governance::record_override; this file parses the command line and prints the outcome.
#include <memory>
#include <optional>

#include "avps/core/clock.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/override.hpp"
#include "avps/project/project.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

struct OverrideOptions {
  std::string dir;
  std::string stop;
  std::string reason;
  std::string raise_cap;
  std::string allow_attempts;
  std::string accept;
  CLI::Option* raise_cap_option = nullptr;
  CLI::Option* allow_attempts_option = nullptr;
  CLI::Option* accept_option = nullptr;
};

std::optional<std::string> given(const CLI::Option* option, const std::string& value) {
  return option && option->count() > 0 ? std::optional<std::string>(value) : std::nullopt;
}

void run_override(const OverrideOptions& o, Context& ctx) {
  core::SystemClock clock;
  auto project = project::Project::open(o.dir, ledger::OpenMode::read_write, {}, clock);
  if (!project) {
    ctx.fail(project.error());
    return;
  }
  governance::OverrideRequest request{o.stop, o.reason, given(o.raise_cap_option, o.raise_cap),
                                      given(o.allow_attempts_option, o.allow_attempts),
                                      given(o.accept_option, o.accept)};
  Result<governance::OverrideRecorded> recorded = governance::record_override(**project, request);
  if (!recorded) {
    // A request that does not fit the record is a wrong command line; the rest keeps its kind.
    const Error& error = recorded.error();
    if (error.code == ErrorCode::invalid_argument) {
      ctx.fail(ExitCode::usage, error.message);
    } else {
      ctx.fail(error);
    }
    return;
  }
  const governance::OverrideRecord& r = recorded->record;
  if (ctx.json) {
    nlohmann::json out = {{"ok", true},
                          {"stop", r.stop_id()},
                          {"skill", r.skill},
                          {"loop", r.loop},
                          {"decision", {{"kind", r.decision}, {"value", r.value}}},
                          {"reason", r.reason},
                          {"cost_impact_micro_usd", r.cost_impact_micro_usd},
                          {"event_seq", r.event_seq}};
    if (!r.cap.empty()) {
      out["decision"]["cap"] = r.cap;
    }
    if (!recorded->budget_status.empty()) {
      out["budget_status"] = recorded->budget_status;
    }
    ctx.emit_json(out);
    return;
  }
  ctx.info("Recorded override of " + r.stop_id() + " (" + r.skill + ", loop " + r.loop +
           "): " + r.describe());
  ctx.info("  reason: " + r.reason);
  ctx.info("  cost impact: " + governance::usd_decimal(r.cost_impact_micro_usd) + " USD");
  if (!recorded->budget_status.empty()) {
    ctx.info("  wrote governance/" + recorded->budget_status + " under the new cap");
  }
  ctx.info("run `avps run " + o.dir + "` to continue");
}

}  // namespace

void setup_override(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<OverrideOptions>();
  CLI::App* cmd = app.add_subcommand("override", "Record a human decision that lifts a hard stop");
  cmd->add_option("dir", o->dir, "Project folder")->required();
  cmd->add_option("--stop", o->stop, "The hard stop's id, STOP-<n> (see `avps status`)")->required();
  cmd->add_option("--reason", o->reason, "Why (recorded with the decision)")->required();
  auto* decision = cmd->add_option_group("decision", "exactly one of");
  o->raise_cap_option = decision->add_option(
      "--raise-cap", o->raise_cap, "Budget stops: the new value, in USD, of the cap that stopped it");
  o->allow_attempts_option = decision->add_option(
      "--allow-attempts", o->allow_attempts, "Gate and frozen stops: N more attempts for the stopped loop");
  o->accept_option = decision->add_option(
      "--accept", o->accept,
      "Gate stops: accept this artifact (a file name the loop wrote) as it is; frozen shots: one of its renders "
      "(S02_SH01_proxy_a04.mp4), or best");
  decision->require_option(1);
  cmd->footer(
      "Appends a stop.override event and a RUN_LOG row with the reason and the cost impact; a raised cap\n"
      "also writes the next BUDGET_STATUS. Nothing is written when the decision is refused: an unknown,\n"
      "closed or already overridden stop, a decision that does not fit the stop's kind, a bad number.\n"
      "Exit 0 recorded, 2 refused, 4 not a project or another avps is writing it.");
  cmd->callback([o, &ctx]() { run_override(*o, ctx); });
}

}  // namespace avps::cli
