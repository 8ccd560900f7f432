#include "avps/report/gate_rules.hpp"

#include <algorithm>
#include <set>

#include "avps/core/canonical_json.hpp"
#include "avps/governance/override.hpp"
#include "avps/governance/pricing.hpp"
#include "avps/project/project.hpp"

namespace avps::report {
using nlohmann::json;

namespace {

core::Violation over_cap(const std::string& subject, const std::string& cap, int64_t committed, int64_t reserved,
                         int64_t limit) {
  using governance::format_usd;
  return {"budget.cap", subject,
          format_usd(committed + reserved) + " spent (" + format_usd(committed) + " committed, " +
              format_usd(reserved) + " reserved) is over the " + cap + " of " + format_usd(limit) + " in force"};
}

bool passes(const std::string& verdict) {
  const int rank = severity(verdict);
  return rank > 0 && rank <= severity("WARN");
}

}  // namespace

Result<std::vector<core::Violation>> check_spend(const project::Budget& configured, const ledger::Ledger& ledger) {
  std::vector<core::Violation> out;
  AVPS_TRY_ASSIGN(governance::Overrides overrides, governance::Overrides::read(ledger));
  AVPS_TRY_ASSIGN(ledger::Spend total, ledger.spend("", ""));
  const int64_t project_cap = overrides.cap(configured, "project").value_or(configured.project_cap_micro_usd);
  if (total.total() > project_cap) {
    out.push_back(
        over_cap("project", "project cap", total.committed_micro_usd, total.outstanding_micro_usd, project_cap));
  }
  // Every scene and shot that spent anything, each from one grouped sum: one that spent nothing
  // is under any cap, whatever the plan lists.
  for (auto [scope, label] : {std::pair{ledger::Ledger::SpendScope::scene, "scene"},
                              std::pair{ledger::Ledger::SpendScope::shot, "shot"}}) {
    AVPS_TRY_ASSIGN(auto spends, ledger.spend_per(scope));
    for (const auto& [id, spent] : spends) {
      std::optional<int64_t> cap = overrides.cap(configured, std::string(label) + " " + id);
      if (cap && spent.total() > *cap) {
        out.push_back(over_cap(id, std::string(label) + " cap", spent.committed_micro_usd,
                               spent.outstanding_micro_usd, *cap));
      }
    }
  }
  return out;
}

Result<size_t> find_phase(const std::vector<PhaseView>& phases, std::string_view name) {
  std::string known;
  for (size_t i = 0; i < phases.size(); ++i) {
    if (phases[i].name == name || (!phases[i].resolution.empty() && phases[i].resolution == name)) {
      return i;
    }
    known += (known.empty() ? "" : ", ") + phases[i].name +
             (phases[i].resolution.empty() ? "" : " (or " + phases[i].resolution + ")");
  }
  return make_error(ErrorCode::invalid_argument,
                    "--require: no phase \"" + std::string(name) + "\" in the stage graph; its phases: " + known);
}

std::vector<core::Violation> check_reached(const ProjectView& view, size_t at) {
  std::vector<core::Violation> out;
  const PhaseView& required = view.phases.at(at);
  auto fail = [&](const std::string& subject, const std::string& message) {
    out.push_back({"require.phase", subject, message + " (--require " + required.name + ")"});
  };

  // The skills of the phases up to the required one: each project-wide skill's last verdicts, each
  // per-scene skill's phases, each resolution to have passed.
  std::set<std::string> scene_skills;
  std::vector<std::string> resolutions;
  bool per_scene = false;
  for (size_t i = 0; i <= at; ++i) {
    const PhaseView& phase = view.phases[i];
    if (phase.fan_out == "per_scene" || phase.fan_out == "per_shot") {
      per_scene = true;
      if (phase.fan_out == "per_scene") {
        scene_skills.insert(phase.skills.begin(), phase.skills.end());
      }
      if (!phase.resolution.empty()) {
        resolutions.push_back(phase.resolution);
      }
      continue;
    }
    for (const std::string& skill : phase.skills) {
      auto ran = std::find_if(view.project_skills.begin(), view.project_skills.end(),
                              [&](const ProjectSkillView& s) { return s.skill == skill; });
      if (ran == view.project_skills.end() || ran->last.empty()) {
        if (phase.fan_out == "once") {
          fail(skill, "has not run (" + phase.name + ")");
        }
        continue;
      }
      for (const auto& [entity, body] : ran->last) {
        const std::string verdict = core::json_text(body, "verdict");
        if (!passes(verdict)) {
          fail(
              skill + (entity.empty() ? "" : " " + entity),
              "last ended " + (verdict.empty() ? std::string("without a verdict") : verdict) + " (" + phase.name + ")");
        }
      }
    }
  }

  if (per_scene) {
    const auto phase_index = [&](const std::string& name) {
      auto found = std::find(view.scene_phases.begin(), view.scene_phases.end(), name);
      return found == view.scene_phases.end() ? -1 : static_cast<int>(found - view.scene_phases.begin());
    };
    const int wanted = phase_index(required.name);
    bool any = false;
    for (const SceneView& scene : view.scenes) {
      if (!scene.in_latest_scenes) {
        continue;
      }
      any = true;
      if (wanted >= 0 && phase_index(scene.phase) < wanted) {
        fail(scene.scene_id, (scene.phase.empty() ? std::string("not started") : "at " + scene.phase) +
                                 ", not yet at " + required.name);
        continue;  // what it has not reached yet is not also listed shot by shot
      }
      for (const auto& [skill, verdict] : scene.verdicts) {
        if (scene_skills.count(skill) && !passes(verdict)) {
          fail(scene.scene_id, skill + " last ended " + verdict);
        }
      }
      for (const std::string& resolution : resolutions) {
        for (const ShotView& shot : scene.shots) {
          const bool passed = resolution == "final"   ? shot.passed_final
                              : resolution == "proxy" ? shot.passed_proxy
                                                      : false;
          if (!passed) {
            fail(shot.shot_id, "has not passed at " + resolution);
          }
        }
        if (scene.shots.empty()) {
          fail(scene.scene_id, "has no shots planned to pass at " + resolution);
        }
      }
    }
    if (!any) {
      fail("SCENES", "no scene is recorded yet");
    }
  }

  // An open stop holds the phase when the engine's Plan says it holds a unit of it or of a phase
  // before it (read_project: `holds_from_phase`); one that holds nothing that runs holds no phase.
  for (const json& stop : view.hard_stops) {
    const std::string from = core::json_text(stop, "holds_from_phase");
    auto held_from = std::find_if(view.phases.begin(), view.phases.end(),
                                  [&](const PhaseView& p) { return !from.empty() && p.name == from; });
    if (held_from != view.phases.end() && static_cast<size_t>(held_from - view.phases.begin()) <= at) {
      const std::string skill = core::json_text(stop, "skill");
      fail(core::json_text(stop, "id"), "open (" + (skill.empty() ? "" : skill + ", ") +
                                            core::json_text(stop, "kind") + " stop, holds from " + from +
                                            "): " + core::json_text(stop, "reason"));
    }
  }
  return out;
}

}  // namespace avps::report
