#include <algorithm>
#include <iostream>
#include <memory>

#include "avps/core/clock.hpp"
#include "avps/ledger/ledger.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

struct LogOptions {
  std::string dir = ".";
  std::string run;
};

void run_log(const LogOptions& options, Context& ctx) {
  core::SystemClock clock;
  Result<std::unique_ptr<ledger::Ledger>> opened = ledger::Ledger::open(options.dir, ledger::OpenMode::read_only, clock);
  if (!opened) {
    ctx.fail(opened.error());
    return;
  }
  Result<std::vector<ledger::Event>> events = (*opened)->events();
  if (!events) {
    ctx.fail(events.error());
    return;
  }
  std::vector<std::pair<ledger::LogRow, std::string>> rows;
  for (const ledger::Event& e : *events) {
    if (std::optional<ledger::LogRow> row = e.row(); row && (options.run.empty() || row->run_id == options.run)) {
      rows.emplace_back(*row, e.hash);
    }
  }
  if (ctx.json) {
    nlohmann::json listed = nlohmann::json::array();
    for (const auto& [row, hash] : rows) {
      nlohmann::json j = row.to_json();
      j["entry_hash"] = hash;
      listed.push_back(j);
    }
    ctx.emit_json(listed);
    return;
  }
  if (ctx.quiet) {
    return;
  }
  // A readable table of the columns people scan; `--json` has all of them.
  const std::vector<std::string> headers = {"run_id", "timestamp", "skill", "scene", "shot", "model", "tier",
                                            "est", "actual", "outcome", "artifact", "notes"};
  std::vector<std::vector<std::string>> table;
  for (const auto& [r, hash] : rows) {
    table.push_back({r.run_id, r.timestamp, r.skill_name, r.scene_id, r.shot_id, r.model_used, r.tier,
                     r.estimated_cost, r.actual_cost, r.outcome, r.artifact_output, r.notes});
  }
  std::vector<size_t> widths(headers.size());
  for (size_t c = 0; c < headers.size(); ++c) {
    widths[c] = headers[c].size();
    for (const auto& line : table) {
      widths[c] = std::max(widths[c], std::min<size_t>(line[c].size(), 48));
    }
  }
  auto print = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      std::string cell = cells[c].size() > 48 ? cells[c].substr(0, 45) + "..." : cells[c];
      out += cell;
      if (c + 1 < cells.size()) {
        out += std::string(widths[c] - cell.size() + 2, ' ');
      }
    }
    while (!out.empty() && out.back() == ' ') {
      out.pop_back();
    }
    std::cout << out << '\n';
  };
  print(headers);
  for (const auto& line : table) {
    print(line);
  }
  std::cout << rows.size() << " row" << (rows.size() == 1 ? "" : "s") << '\n';
}

}  // namespace

void setup_log(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<LogOptions>();
  CLI::App* cmd = app.add_subcommand("log", "Print the run log (every skill execution, attempt, verdict, check)");
  cmd->footer(
      "Reads the ledger (the source of truth), not the CSV face logs/RUN_LOG_v001.csv; `avps gate`\n"
      "checks that the two agree. --json prints every column, entry_hash included.");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->add_option("--run", options->run, "Only the rows of this run (e.g. RUN_0002)");
  cmd->callback([options, &ctx]() { run_log(*options, ctx); });
}

}  // namespace avps::cli
