// `avps replay DIR [--run N]`: re-execute recorded runs offline and prove they reproduce
// (replay.hpp). Exit 0 when every run replayed reproduces its record, 1 at a divergence.
#include <memory>

#include "avps/replay/replay.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

struct ReplayOptions {
  std::string dir = ".";
  std::string run;
  bool keep_scratch = false;
};

std::string verified_line(const replay::RunReplay& r) {
  return std::to_string(r.steps) + " steps, " + std::to_string(r.calls) + " answers, " +
         std::to_string(r.artifacts) + " artifacts, " + std::to_string(r.renders) + " renders (" +
         std::to_string(r.events) + " events)";
}

void run_replay(const ReplayOptions& o, Context& ctx) {
  Result<std::vector<replay::RunReplay>> replayed = replay::replay_runs(
      o.dir, replay::Options{o.run, o.keep_scratch}, [&ctx](const std::string& line) {
        if (!ctx.json) {
          ctx.info(line);
        }
      });
  if (!replayed) {
    ctx.fail(replayed.error());
    return;
  }
  bool reproduced = true;
  nlohmann::json runs = nlohmann::json::array();
  for (const replay::RunReplay& r : *replayed) {
    reproduced = reproduced && !r.divergence;
    runs.push_back(r.to_json());
    if (ctx.json) {
      continue;
    }
    const std::string kept = r.scratch.empty() ? "" : "; scratch project kept at " + r.scratch;
    if (r.divergence) {
      ctx.info(ctx.paint("DIVERGES", "31") + " " + r.run_id + ": " + r.divergence->message);
      ctx.info("  reproduced before it: " + verified_line(r) + kept);
    } else {
      const bool partial = r.outcome == "UNFINISHED" || r.outcome == "INTERRUPTED";
      ctx.info(ctx.paint("REPRODUCED", "32") + " " + r.run_id + " (" + r.outcome + "): verified " + verified_line(r) +
               (partial ? "; the run did not finish, so it is verified as far as it went" : "") + kept);
    }
  }
  ctx.exit = reproduced ? ExitCode::ok : ExitCode::violation;
  if (ctx.json) {
    ctx.emit_json({{"project", o.dir}, {"reproduced", reproduced}, {"runs", runs}});
  }
}

}  // namespace

void setup_replay(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<ReplayOptions>();
  CLI::App* cmd = app.add_subcommand("replay", "Re-execute recorded runs offline and prove they reproduce");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->add_option("--run", options->run, "Replay only this run: its number (2) or id (RUN_0002); default every run");
  cmd->add_flag("--keep-scratch", options->keep_scratch, "Keep each run's scratch project and print where it is");
  cmd->footer(
      "Each run of `avps run` is re-executed on a scratch copy of the project as it stood when the run\n"
      "began (under $TMPDIR), through the same engine, with the run's options and the project's\n"
      "skills, policies and configuration as they are now. Every model call is answered from the\n"
      "record by the hash of its request (each answer re-hashed before use); no backend is opened,\n"
      "no key is read, nothing leaves the machine. Every recorded event must be reproduced: routes,\n"
      "reservations, answers, verdicts, revisions, escalations, artifacts and renders by hash, stops.\n"
      "The first one that is not is reported with the step, what the record holds and what the replay\n"
      "made, and the first JSON pointer where they differ (into the request when a request differs).\n"
      "The project itself is only read; a read-only project can be replayed.\n"
      "Exit codes: 0 every run reproduced, 1 a divergence, 4 not a project or no such run.");
  cmd->callback([options, &ctx]() { run_replay(*options, ctx); });
}

}  // namespace avps::cli
