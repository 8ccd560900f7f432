#include <iostream>
#include <memory>

#include "avps/core/clock.hpp"
#include "avps/gates/integrity.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

struct GateOptions {
  std::string dir = ".";
};

void run_gate(const GateOptions& options, Context& ctx) {
  core::SystemClock clock;
  // Read-only: a gate never changes what it checks, not even to finish an interrupted commit.
  Result<std::unique_ptr<ledger::Ledger>> opened = ledger::Ledger::open(options.dir, ledger::OpenMode::read_only, clock);
  if (!opened) {
    ctx.fail(opened.error());
    return;
  }
  const ledger::Ledger& ledger = **opened;
  ctx.debug("checking " + options.dir + " against ledger head " + std::to_string(ledger.head().seq) + " (" +
            ledger.head().hash.substr(0, 12) + "...), shipped data in " + project::data_dir().string());
  std::vector<core::Violation> violations = gates::check_integrity(options.dir, ledger);
  Result<std::vector<ledger::ArtifactRecord>> artifacts = ledger.artifacts();
  size_t artifact_count = artifacts ? artifacts->size() : 0;
  int64_t event_count = ledger.head().seq;
  bool pass = violations.empty();
  ctx.exit = pass ? ExitCode::ok : ExitCode::violation;

  if (ctx.json) {
    nlohmann::json listed = nlohmann::json::array();
    for (const core::Violation& v : violations) {
      listed.push_back({{"rule", v.rule}, {"subject", v.subject}, {"message", v.message}});
    }
    ctx.emit_json({{"project", options.dir},
                   {"verdict", pass ? "PASS" : "FAIL"},
                   {"checked", {{"artifacts", artifact_count}, {"ledger_events", event_count}}},
                   {"violations", listed}});
    return;
  }
  if (pass) {
    ctx.info(ctx.paint("PASS", "32") + " " + options.dir + ": integrity verified (" + std::to_string(artifact_count) +
             " artifacts, " + std::to_string(event_count) + " ledger events)");
    return;
  }
  // Violations go to stdout too: they are the command's result, not a failure to run it.
  std::cout << ctx.paint("FAIL", "31") << " " << options.dir << ": " << violations.size() << " violation"
            << (violations.size() == 1 ? "" : "s") << "\n";
  for (const core::Violation& v : violations) {
    std::cout << "  " << v.subject << ": " << v.message << "  [" << v.rule << "]\n";
  }
}

}  // namespace

void setup_gate(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<GateOptions>();
  CLI::App* cmd = app.add_subcommand("gate", "Check a project folder; exit 0 only if every rule holds (for CI)");
  cmd->footer(
      "Integrity rules: the ledger's hash chain and its HEAD mirror verify; every artifact file's hash\n"
      "matches the ledger; every render under media/ and every recorded request and answer object\n"
      "matches its recorded hash; no artifact-named file or render the ledger does not know; no\n"
      "version gaps; naming rules; the run-log CSV equals the ledger; avps.json validates. Read-only.\n"
      "Exit codes: 0 all rules hold, 1 violations (listed with the file or row), 4 not a project.");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->callback([options, &ctx]() { run_gate(*options, ctx); });
}

}  // namespace avps::cli
