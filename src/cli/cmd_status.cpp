#include <iostream>
#include <map>
#include <memory>

#include "avps/core/clock.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/override.hpp"
#include "avps/project/project.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

struct StatusOptions {
  std::string dir = ".";
};

void run_status(const StatusOptions& o, Context& ctx) {
  core::SystemClock clock;
  auto project = project::Project::open(o.dir, ledger::OpenMode::read_only, {}, clock);
  if (!project) {
    ctx.fail(project.error());
    return;
  }
  const ledger::Ledger& ledger = (*project)->ledger();
  Result<std::vector<ledger::Event>> events = ledger.events();
  if (!events) {
    ctx.fail(events.error());
    return;
  }
  // The last attempt of every step (skill, entity); hard stops neither resolved nor overridden.
  std::map<std::string, nlohmann::json> steps;  // "skill ENTITY" -> last step.finished body
  for (const ledger::Event& e : *events) {
    if (e.kind == "step.finished") {
      std::string step = e.body.value("step", "");
      std::string who = step.substr(0, step.find('@'));
      std::replace(who.begin(), who.end(), '/', ' ');
      steps[who] = e.body;
    }
  }
  const std::vector<governance::HardStop> stops = governance::open_hard_stops(*events);
  const governance::Overrides overrides = governance::Overrides::from_events(*events);
  Result<ledger::Spend> spend = ledger.spend("", "");
  if (!spend) {
    ctx.fail(spend.error());
    return;
  }
  const int64_t configured_cap = (*project)->config().budget.project_cap_micro_usd;
  const int64_t cap = overrides.effective_budget((*project)->config().budget).project_cap_micro_usd;
  if (ctx.json) {
    nlohmann::json listed = nlohmann::json::array();
    for (const auto& [who, body] : steps) {
      listed.push_back({{"step", who}, {"verdict", body["verdict"]}, {"attempt", body["attempt"]},
                        {"tier", body["tier"]}, {"outputs", body["outputs"]}});
    }
    nlohmann::json open = nlohmann::json::array();
    for (const governance::HardStop& stop : stops) {
      nlohmann::json item = {{"id", stop.id()},
                             {"skill", stop.skill},
                             {"kind", governance::stop_kind_name(stop.kind)},
                             {"loop", stop.loop},
                             {"scope", stop.scope},
                             {"reason", stop.reason}};
      if (!stop.cap.empty()) {
        item["cap"] = stop.cap;
      }
      open.push_back(item);
    }
    nlohmann::json decided = nlohmann::json::array();
    for (const governance::OverrideRecord& r : overrides.records()) {
      decided.push_back({{"stop", r.stop_id()},
                         {"skill", r.skill},
                         {"loop", r.loop},
                         {"decision", r.decision},
                         {"value", r.value},
                         {"reason", r.reason},
                         {"cost_impact_micro_usd", r.cost_impact_micro_usd}});
    }
    ctx.emit_json({{"project", o.dir},
                   {"steps", listed},
                   {"hard_stops", open},
                   {"overrides", decided},
                   {"spend", {{"committed_micro_usd", spend->committed_micro_usd},
                              {"reserved_micro_usd", spend->outstanding_micro_usd},
                              {"project_cap_micro_usd", cap},
                              {"configured_project_cap_micro_usd", configured_cap}}}});
    ctx.exit = stops.empty() ? ExitCode::ok : ExitCode::hard_stop;
    return;
  }
  std::cout << (*project)->config().title << " (" << o.dir << ")\n";
  if (steps.empty()) {
    std::cout << "  nothing run yet: `avps run " << o.dir << " --until locks`\n";
  }
  for (const auto& [who, body] : steps) {
    std::string verdict = body.value("verdict", "");
    std::string painted = ctx.paint(verdict, verdict == "PASS" ? "32" : verdict == "FAIL" || verdict == "STOP" ? "31" : "33");
    std::cout << "  " << who << std::string(who.size() < 44 ? 44 - who.size() : 1, ' ') << painted << "  attempt "
              << body.value("attempt", 0) << " on " << body.value("tier", "") << "  " << body.value("outputs", "")
              << "\n";
  }
  for (const governance::HardStop& stop : stops) {
    std::cout << ctx.paint("  HARD STOP", "31") << " " << stop.id() << " (" << governance::stop_kind_name(stop.kind)
              << ", " << stop.loop << "): " << stop.reason << "\n";
  }
  for (const governance::OverrideRecord& r : overrides.records()) {
    std::cout << "  override " << r.stop_id() << ": " << r.describe() << " (" << r.reason << ")\n";
  }
  std::cout << "  spend: " << governance::usd_decimal(spend->committed_micro_usd) << " USD committed, "
            << governance::usd_decimal(spend->outstanding_micro_usd) << " reserved, of a "
            << governance::usd_decimal(cap) << " USD project cap ("
            << (cap > 0 ? spend->total() * 100 / cap : 0) << " %)"
            << (cap != configured_cap ? ", raised from " + governance::usd_decimal(configured_cap) + " by override" : "")
            << "\n";
  ctx.exit = stops.empty() ? ExitCode::ok : ExitCode::hard_stop;
}

}  // namespace

void setup_status(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand("status", "Where the production stands: steps, hard stops, spend against caps");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->footer(
      "Read-only. Lists the last attempt of every step (verdict, attempt, tier, outputs), the hard stops\n"
      "that wait for a person (STOP-<n>, for `avps override`), the overrides recorded, and spend against\n"
      "the project cap in force (raised by overrides). Exit 0, or 3 while a hard stop is open.");
  cmd->callback([options, &ctx]() { run_status(*options, ctx); });
}

}  // namespace avps::cli
