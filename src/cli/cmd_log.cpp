#include <algorithm>
#include <iostream>
#include <memory>

#include "avps/core/clock.hpp"
#include "avps/ledger/ledger.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

// Events read at a time (see run_log).
constexpr size_t k_log_events_page = 4096;

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
  // The ledger is read a page at a time (one read-only snapshot): --json writes each row as it
  // comes, so memory stays that of a page whatever the length of the record; the table, which
  // sizes its columns to the rows, keeps the rows (not the events).
  ledger::Ledger::EventQuery page;
  page.limit = k_log_events_page;
  std::vector<ledger::LogRow> rows;
  size_t emitted = 0;
  for (;;) {
    Result<std::vector<ledger::Event>> events = (*opened)->events(page);
    if (!events) {
      if (ctx.json && emitted > 0) {
        std::cout << (ctx.json_lines ? "]" : "\n]") << '\n';  // the array closed; the error follows it
      }
      ctx.fail(events.error());
      return;
    }
    for (const ledger::Event& e : *events) {
      std::optional<ledger::LogRow> row = e.row();
      if (!row || (!options.run.empty() && row->run_id != options.run)) {
        continue;
      }
      if (!ctx.json) {
        rows.push_back(std::move(*row));
        continue;
      }
      // The same text ctx.emit_json gives the whole array: indented by two, or on one line.
      nlohmann::json j = row->to_json();
      j["entry_hash"] = e.hash;
      std::cout << (emitted == 0 ? "[" : ",");
      if (ctx.json_lines) {
        std::cout << j.dump(-1);
      } else {
        std::string text = j.dump(2);
        std::string indented = "\n  ";
        for (char c : text) {
          indented += c;
          if (c == '\n') {
            indented += "  ";
          }
        }
        std::cout << indented;
      }
      ++emitted;
    }
    if (events->size() < page.limit) {
      break;
    }
    page.after_seq = events->back().seq;
  }
  if (ctx.json) {
    std::cout << (emitted == 0 ? "[]" : ctx.json_lines ? "]" : "\n]") << '\n';
    return;
  }
  if (ctx.quiet) {
    return;
  }
  // A readable table of the columns people scan; `--json` has all of them.
  const std::vector<std::string> headers = {"run_id", "timestamp", "skill", "scene", "shot", "model", "tier",
                                            "est", "actual", "outcome", "artifact", "notes"};
  std::vector<std::vector<std::string>> table;
  for (const ledger::LogRow& r : rows) {
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
