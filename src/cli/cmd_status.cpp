#include <iostream>
#include <map>
#include <memory>

#include "avps/core/clock.hpp"
#include "avps/governance/budget.hpp"
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
  // The last attempt of every step (skill, entity), and hard stops not since resolved.
  std::map<std::string, nlohmann::json> steps;  // "skill ENTITY" -> last step.finished body
  std::map<std::string, nlohmann::json> stops;  // skill -> open hard stop
  for (const ledger::Event& e : *events) {
    if (e.kind == "step.finished") {
      std::string step = e.body.value("step", "");
      std::string who = step.substr(0, step.find('@'));
      std::replace(who.begin(), who.end(), '/', ' ');
      steps[who] = e.body;
      std::string verdict = e.body.value("verdict", "");
      if (verdict != "FAIL" && verdict != "STOP") {
        stops.erase(e.body.value("skill", ""));
      }
    } else if (e.kind == "run.hard_stop") {
      nlohmann::json stop = e.body;
      stop["seq"] = e.seq;
      stops[e.body.value("skill", "")] = stop;
    }
  }
  Result<ledger::Spend> spend = ledger.spend("", "");
  if (!spend) {
    ctx.fail(spend.error());
    return;
  }
  const int64_t cap = (*project)->config().budget.project_cap_micro_usd;
  if (ctx.json) {
    nlohmann::json listed = nlohmann::json::array();
    for (const auto& [who, body] : steps) {
      listed.push_back({{"step", who}, {"verdict", body["verdict"]}, {"attempt", body["attempt"]},
                        {"tier", body["tier"]}, {"outputs", body["outputs"]}});
    }
    nlohmann::json open = nlohmann::json::array();
    for (const auto& [skill, stop] : stops) {
      open.push_back({{"id", "STOP-" + std::to_string(stop["seq"].get<int64_t>())}, {"skill", skill},
                      {"reason", stop["reason"]}});
    }
    ctx.emit_json({{"project", o.dir},
                   {"steps", listed},
                   {"hard_stops", open},
                   {"spend", {{"committed_micro_usd", spend->committed_micro_usd},
                              {"reserved_micro_usd", spend->outstanding_micro_usd},
                              {"project_cap_micro_usd", cap}}}});
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
  for (const auto& [skill, stop] : stops) {
    std::cout << ctx.paint("  HARD STOP", "31") << " STOP-" << stop["seq"].get<int64_t>() << ": "
              << stop.value("reason", "") << "\n";
  }
  std::cout << "  spend: " << governance::usd_decimal(spend->committed_micro_usd) << " USD committed, "
            << governance::usd_decimal(spend->outstanding_micro_usd) << " reserved, of a "
            << governance::usd_decimal(cap) << " USD project cap ("
            << (cap > 0 ? spend->total() * 100 / cap : 0) << " %)\n";
  ctx.exit = stops.empty() ? ExitCode::ok : ExitCode::hard_stop;
}

}  // namespace

void setup_status(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand("status", "Where the production stands: steps, hard stops, spend against caps");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->footer(
      "Read-only. Lists the last attempt of every step (verdict, attempt, tier, outputs), the hard stops\n"
      "that wait for a person, and spend against the project cap. Exit 0, or 3 while a hard stop is open.");
  cmd->callback([options, &ctx]() { run_status(*options, ctx); });
}

}  // namespace avps::cli
