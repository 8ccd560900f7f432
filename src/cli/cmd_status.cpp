// `avps status DIR`: where the production stands, as the read model (report/read_model.hpp) has it,
// read-only. The default view is per scene: the project-wide steps (narrative,
// locks, review) summarised per skill, then one row per scene in story order — the phase it reached,
// the worst verdicts of its validation and continuity, its plan, its shots passed at proxy and
// final, its spend against the scene cap — then the open hard stops, the overrides and the project
// spend. `--steps` is the list of every step's last attempt; `--json` carries both.
#include <chrono>
#include <map>
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "avps/core/clock.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/pricing.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"
#include "avps/report/read_model.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {
using nlohmann::json;

struct StatusOptions {
  std::string dir = ".";
  bool steps = false;
};

// A project-wide skill summarised: its worst last verdict and how many of its instances passed.
struct SkillSummary {
  int worst = 0;
  int passed = 0;
  std::vector<std::pair<std::string, const json*>> not_passed;  // entity -> last body
};

SkillSummary summarise(const report::ProjectSkillView& skill) {
  SkillSummary s;
  for (size_t i = 0; i < skill.last.size(); ++i) {
    const auto& [entity, body] = skill.last[i];
    const std::string verdict = body.value("verdict", "");
    s.worst = std::max(s.worst, report::severity(verdict));
    if (skill.settled.at(i)) {
      ++s.passed;
    } else {
      s.not_passed.emplace_back(entity, &body);
    }
  }
  return s;
}

std::string pad(const std::string& text, size_t width) {
  return text.size() < width ? text + std::string(width - text.size(), ' ') : text;
}

std::string pad_left(const std::string& text, size_t width) {
  return text.size() < width ? std::string(width - text.size(), ' ') + text : text;
}

const char* verdict_colour(const std::string& verdict) {
  return verdict == "PASS" || verdict == "ACCEPTED" ? "32"
         : verdict == "FAIL" || verdict == "STOP"   ? "31"
                                                    : "33";
}

// One --steps line (its format is relied on: keep it).
void print_step(const Context& ctx, const std::string& who, const json& body) {
  std::string verdict = body.value("verdict", "");
  std::cout << "  " << who << std::string(who.size() < 44 ? 44 - who.size() : 1, ' ')
            << ctx.paint(verdict, verdict_colour(verdict)) << "  attempt " << body.value("attempt", 0)
            << " on " << body.value("tier", "") << "  " << body.value("outputs", "") << "\n";
}

void print_project_skill(const Context& ctx, const report::ProjectSkillView& skill) {
  if (skill.last.size() == 1 && skill.last.front().first.empty()) {
    print_step(ctx, skill.skill, skill.last.front().second);
    return;
  }
  const SkillSummary s = summarise(skill);
  const std::string worst = report::severity_name(s.worst);
  std::cout << "  " << pad(skill.skill, 44) << ctx.paint(worst.empty() ? "-" : worst, verdict_colour(worst))
            << "  " << s.passed << "/" << skill.last.size() << " passed";
  for (size_t i = 0; i < s.not_passed.size(); ++i) {
    const json& body = *s.not_passed[i].second;
    std::cout << (i == 0 ? "; not passed: " : ", ") << s.not_passed[i].first << " ("
              << body.value("verdict", "") << ", attempt " << body.value("attempt", 0) << ")";
  }
  std::cout << "\n";
}

std::string cell(int rank) { return rank == 0 ? "-" : report::severity_name(rank); }

std::string fraction(const report::Fraction& f) {
  return f.shots == 0 ? "-" : std::to_string(f.passed) + "/" + std::to_string(f.shots);
}

void print_scenes(const Context& ctx, const std::vector<report::SceneView>& rows) {
  size_t id_width = 5;
  for (const report::SceneView& r : rows) {
    id_width = std::max(id_width, r.scene_id.size());
  }
  std::cout << "  " << pad("scene", id_width) << "  " << pad("phase", 11) << "  " << pad("validation", 10)
            << "  " << pad("continuity", 10) << "  " << pad("plan", 4) << "  " << pad("proxy", 7) << "  "
            << pad("final", 7) << "  " << pad_left("spend", 12) << "  " << pad_left("scene cap", 12) << "\n";
  auto verdict_cell = [&](int rank, size_t width) {
    const std::string text = cell(rank);
    return rank == 0 ? pad(text, width) : ctx.paint(pad(text, width), verdict_colour(text));
  };
  std::vector<std::string> dropped;
  for (const report::SceneView& r : rows) {
    std::cout << "  " << pad(r.scene_id, id_width) << "  " << pad(r.phase.empty() ? "-" : r.phase, 11) << "  "
              << verdict_cell(r.validation, 10) << "  " << verdict_cell(r.continuity, 10) << "  "
              << verdict_cell(r.plan, 4) << "  " << pad(fraction(r.proxy), 7) << "  "
              << pad(fraction(r.final), 7) << "  " << pad_left(governance::format_usd(r.spend_micro_usd), 12)
              << "  " << pad_left(r.cap_micro_usd ? governance::format_usd(*r.cap_micro_usd) : "-", 12)
              << "\n";
    if (!r.in_latest_scenes) {
      dropped.push_back(r.scene_id);
    }
  }
  for (const std::string& scene : dropped) {
    std::cout << "  " << scene << " is not in the latest SCENES (a revised story dropped it)\n";
  }
}

// Provider jobs whose ticket is recorded and that have no response or failure yet: what an
// interrupted run left running (the next `avps run` polls them, never submits them again), as the
// read model folds them, with their age now.
json jobs_in_flight(const report::ProjectView& view) {
  json out = json::array();
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  for (json job : view.jobs_in_flight) {
    job["age_s"] = std::max<int64_t>(0, now_ms - job.value("submitted_unix_ms", now_ms)) / 1000;
    out.push_back(std::move(job));
  }
  return out;
}

Result<void> run_status(const StatusOptions& o, Context& ctx) {
  core::SystemClock clock;
  AVPS_TRY_ASSIGN(std::unique_ptr<project::Project> project,
                  project::Project::open(o.dir, ledger::OpenMode::read_only, {}, clock));
  AVPS_TRY_ASSIGN(report::ProjectView view, report::read_project(*project));
  ctx.exit = view.hard_stops.empty() ? ExitCode::ok : ExitCode::hard_stop;
  const json jobs = jobs_in_flight(view);

  if (ctx.json) {
    // The read model's own JSON (docs/formats/report.md), so status and report cannot disagree;
    // the report's charts and timelines are left to `avps report --json`.
    json model = report::to_json(view);
    json out = {{"project", o.dir}};
    for (const char* field : {"format_version", "as_of", "phase_reached", "steps", "project_steps", "scenes",
                              "hard_stops", "stale_shots", "overrides", "spend"}) {
      out[field] = model[field];
    }
    out["jobs_in_flight"] = jobs;
    ctx.emit_json(out);
    return ok();
  }

  std::cout << view.title << " (" << o.dir << ")\n";
  if (view.steps.empty()) {
    std::cout << "  nothing run yet: `avps run " << o.dir << " --until locks`\n";
  }
  if (o.steps) {
    for (const auto& [who, body] : view.steps) {
      print_step(ctx, who, body);
    }
  } else {
    for (const report::ProjectSkillView& skill : view.project_skills) {
      print_project_skill(ctx, skill);
    }
    if (!view.scenes.empty()) {
      print_scenes(ctx, view.scenes);
    }
  }
  for (const json& s : view.stale_shots) {
    std::string renders, changed;
    for (const json& r : s["resolutions"]) {
      renders += (renders.empty() ? "" : " and ") + r.get<std::string>();
    }
    for (const json& n : s["changed"]) {
      changed += (changed.empty() ? "" : ", ") + n.get<std::string>();
    }
    std::cout << ctx.paint("  STALE", "33") << " " << s["shot_id"].get<std::string>() << ": its " << renders
              << (s["resolutions"].size() > 1 ? " renders were" : " render was") << " made from other inputs"
              << (changed.empty() ? "" : ": " + changed + " changed") << "; the next run renders it again\n";
  }
  for (const json& stop : view.hard_stops) {
    const std::string id = stop["id"].get<std::string>();
    std::cout << ctx.paint("  HARD STOP", "31") << " " << id << " (" << stop["kind"].get<std::string>() << ", "
              << stop["loop"].get<std::string>() << "): " << stop["reason"].get<std::string>() << "\n";
    // What it holds, scene by scene (the plan's word): "S01 from continuity; S02, S03 from validation".
    std::vector<std::pair<std::string, std::string>> held;  // phase -> scenes, in story order
    for (const report::SceneView& scene : view.scenes) {
      if (scene.held_by == 0 || "STOP-" + std::to_string(scene.held_by) != id) {
        continue;
      }
      if (held.empty() || held.back().first != scene.held_from) {
        held.emplace_back(scene.held_from, "");
      }
      held.back().second += (held.back().second.empty() ? "" : ", ") + scene.scene_id;
    }
    for (size_t i = 0; i < held.size(); ++i) {
      std::cout << (i == 0 ? "    holds " : "; ") << held[i].second << " from " << held[i].first;
    }
    std::cout << (held.empty() ? "" : "\n");
  }
  for (const json& job : jobs) {
    std::cout << ctx.paint("  JOB", "36") << " in flight: " << job["purpose"].get<std::string>() << " on "
              << job["model"].get<std::string>() << ", job " << job["ticket"].get<std::string>() << ", "
              << job["provider_state"].get<std::string>() << ", age " << job["age_s"].get<int64_t>() << " s\n";
  }
  for (const json& r : view.overrides) {
    std::cout << "  override " << r["stop"].get<std::string>() << ": " << r["describe"].get<std::string>() << " ("
              << r["reason"].get<std::string>() << ")\n";
  }
  const json& spend = view.spend;
  const int64_t committed = spend["committed_micro_usd"], reserved = spend["reserved_micro_usd"];
  const int64_t cap = spend["project_cap_micro_usd"], configured_cap = spend["configured_project_cap_micro_usd"];
  std::cout << "  spend: " << governance::usd_decimal(committed) << " USD committed, "
            << governance::usd_decimal(reserved) << " reserved, of a " << governance::usd_decimal(cap)
            << " USD project cap (" << (cap > 0 ? (committed + reserved) * 100 / cap : 0) << " %)"
            << (cap != configured_cap
                    ? ", raised from " + governance::usd_decimal(configured_cap) + " by override"
                    : "")
            << "\n";
  return ok();
}

}  // namespace

void setup_status(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand(
      "status", "Where the production stands: phase and gates per scene, hard stops, spend against caps");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->add_flag("--steps", options->steps,
                "List the last attempt of every step instead of the per-scene view");
  cmd->footer(
      "Read-only. First the project-wide steps (narrative, locks, review), one line per skill: its\n"
      "verdict, or for a skill run per entity the worst verdict, how many passed and which did not.\n"
      "Then one row per scene in story order (the latest SCENES): the phase it reached (the last of the\n"
      "stage graph's per-scene and per-shot phases with a recorded step: psychology, validation,\n"
      "continuity, planning, cost_proxy, shots_proxy, cost_final, shots_final as shipped), the worst last\n"
      "verdict of its validation phase, of its continuity phase and of its planning phase\n"
      "(STOP > FAIL > FIX > WARN > PASS; '-' for none), its shots passed QC at proxy\n"
      "and final out of its latest SHOTLIST, and its spend (committed and reserved) against the scene cap.\n"
      "Then the hard stops that wait for a person (STOP-<n>, for `avps override`), the overrides recorded,\n"
      "and spend against the project cap in force (raised by overrides). --steps lists instead the last\n"
      "attempt of every step (verdict, attempt, tier, outputs). --json carries all of it (steps,\n"
      "project_steps, scenes, hard_stops, overrides, spend). Exit 0, or 3 while a hard stop is open.");
  cmd->callback([options, &ctx]() {
    Result<void> done = run_status(*options, ctx);
    if (!done) {
      ctx.fail(done.error());
    }
  });
}

}  // namespace avps::cli
