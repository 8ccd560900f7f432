// `avps replay DIR [--run N]`: re-execute recorded runs offline and prove they reproduce
// (replay.hpp). Exit 0 when every run replayed reproduces its record, 1 at a divergence.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <tuple>

#include "avps/governance/pricing.hpp"
#include "avps/replay/replay.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

struct ReplayOptions {
  std::string dir = ".";
  std::string run;
  bool keep_scratch = false;
  std::string reprice;
  bool timeline = false;
};

std::string verified_line(const replay::RunReplay& r) {
  return std::to_string(r.steps) + " steps, " + std::to_string(r.calls) + " answers, " +
         std::to_string(r.artifacts) + " artifacts, " + std::to_string(r.renders) + " renders (" +
         std::to_string(r.events) + " events)";
}

std::string padded(std::string text, size_t width) {
  if (text.size() < width) {
    text.append(width - text.size(), ' ');
  }
  return text;
}

std::string change_of(const replay::CostLine& line) {
  const int64_t delta = line.repriced_pico_usd - line.current_pico_usd;
  std::string text = (delta < 0 ? "-" : "+") + replay::format_pico_usd(delta < 0 ? -delta : delta);
  if (line.current_pico_usd > 0) {
    char pct[32];
    std::snprintf(pct, sizeof pct, " (%+.1f%%)", 100.0 * static_cast<double>(delta) / static_cast<double>(line.current_pico_usd));
    text += pct;
  }
  return text;
}

// --reprice: what the record would have cost under another price table; nothing is re-executed.
void run_reprice(const ReplayOptions& o, Context& ctx) {
  Result<replay::Repricing> priced = replay::reprice(o.dir, o.run, o.reprice);
  if (!priced) {
    ctx.fail(priced.error());
    return;
  }
  if (ctx.json) {
    nlohmann::json doc = priced->to_json();
    doc["project"] = o.dir;
    doc["price_table"] = o.reprice;
    ctx.emit_json(doc);
    return;
  }
  const replay::Repricing& r = *priced;
  ctx.info("The record" + (o.run.empty() ? std::string() : " of run " + o.run) + " repriced under " + o.reprice +
           ": " + std::to_string(r.total.calls) +
           " answered calls, from their recorded tokens, seconds and images (nothing re-executed)");
  auto table = [&](const std::string& heading, const std::vector<replay::CostLine>& lines) {
    ctx.info("");
    ctx.info(padded(heading, 22) + padded("calls", 7) + padded("charged", 14) + padded("models file", 14) +
             padded("repriced", 14) + "change");
    for (const replay::CostLine& line : lines) {
      ctx.info(padded(line.name, 22) + padded(std::to_string(line.calls), 7) +
               padded(governance::format_usd(line.charged_micro_usd), 14) +
               padded(replay::format_pico_usd(line.current_pico_usd), 14) +
               padded(replay::format_pico_usd(line.repriced_pico_usd), 14) + change_of(line));
    }
  };
  table("scene", r.by_scene);
  table("tier", r.by_tier);
  table("model", r.by_model);
  table("", {r.total});
  if (r.unanswered > 0) {
    ctx.info("");
    ctx.info(std::to_string(r.unanswered) + " interrupted calls were charged in full (" +
             governance::format_usd(r.unanswered_micro_usd) + ") with no usage to reprice");
  }
}

// --timeline: the record's audit trail per scene and shot; nothing is re-executed.
void run_timeline(const ReplayOptions& o, Context& ctx) {
  Result<std::vector<replay::TimelineEntry>> entries = replay::timeline(o.dir, o.run);
  if (!entries) {
    ctx.fail(entries.error());
    return;
  }
  // The project's own steps first, then scene by scene, each scene's own steps before its shots;
  // in the record's order within each.
  std::stable_sort(entries->begin(), entries->end(), [](const replay::TimelineEntry& a, const replay::TimelineEntry& b) {
    return std::tie(a.scene_id, a.shot_id) < std::tie(b.scene_id, b.shot_id);
  });
  if (ctx.json) {
    nlohmann::json listed = nlohmann::json::array();
    for (const replay::TimelineEntry& e : *entries) {
      listed.push_back(e.to_json());
    }
    ctx.emit_json({{"project", o.dir}, {"timeline", listed}});
    return;
  }
  std::string scene = "\x01";
  std::string shot = "\x01";
  for (const replay::TimelineEntry& e : *entries) {
    if (e.scene_id != scene) {
      scene = e.scene_id;
      shot = "\x01";
      ctx.info(ctx.paint(scene.empty() ? "Project" : "Scene " + scene, "1"));
    }
    if (e.shot_id != shot) {
      shot = e.shot_id;
      if (!shot.empty()) {
        ctx.info("  " + ctx.paint("Shot " + shot, "1"));
      }
    }
    const std::string indent = shot.empty() ? "  " : "    ";
    const std::string routed = e.tier.empty() && e.model.empty() ? "" : e.tier + (e.model.empty() ? "" : " " + e.model);
    ctx.info(indent + e.timestamp + "  " + e.run_id + "  " + padded(e.skill, 28) + padded(routed, 24) +
             padded(e.cost.empty() ? "" : "$" + e.cost, 12) + padded(e.outcome, 6) +
             (e.artifact.empty() ? "" : e.artifact + "  ") + e.detail);
  }
}

void run_replay(const ReplayOptions& o, Context& ctx) {
  if (!o.reprice.empty()) {
    run_reprice(o, ctx);
    return;
  }
  if (o.timeline) {
    run_timeline(o, ctx);
    return;
  }
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
    if (!r.not_replayed.empty()) {
      ctx.info("NOT REPLAYED " + r.run_id + " (" + r.outcome + "): " + r.not_replayed);
    } else if (r.divergence) {
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
  cmd->add_option("--reprice", options->reprice,
                  "Instead of replaying: what the record (or --run) would have cost under this price table (a "
                  "models file), per scene, tier and model, from the recorded tokens, seconds and images")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--timeline", options->timeline,
                "Instead of replaying: the audit trail per scene and shot (what ran, when, on which model and "
                "tier, at what cost, with which verdict; every retry, fallback, escalation and override with its reason)")
      ->excludes("--reprice");
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
      "--reprice FILE changes and re-executes nothing: each answered call is priced from its recorded\n"
      "usage under the project's models file and under FILE (same format), exactly (no rounding per\n"
      "call), beside what the record charged.\n"
      "Exit codes: 0 every run reproduced, 1 a divergence, 4 not a project or no such run.");
  cmd->callback([options, &ctx]() { run_replay(*options, ctx); });
}

}  // namespace avps::cli
