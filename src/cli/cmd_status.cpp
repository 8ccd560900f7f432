// `avps status DIR`: where the production stands, read from the ledger in one pass over its events
// (no query per event), read-only. The default view is per scene: the project-wide steps (narrative,
// locks, review) summarised per skill, then one row per scene in story order — the phase it reached,
// the worst verdicts of its validation and continuity, its plan, its shots passed at proxy and
// final, its spend against the scene cap — then the open hard stops, the overrides and the project
// spend. `--steps` is the list of every step's last attempt; `--json` carries both.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "avps/artifacts/names.hpp"
#include "avps/core/clock.hpp"
#include "avps/engine/engine.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/override.hpp"
#include "avps/governance/pricing.hpp"
#include "avps/project/project.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {
using nlohmann::json;

struct StatusOptions {
  std::string dir = ".";
  bool steps = false;
};

// The phases a scene passes through, in the order of policies/stage_graph.json (the engine's walk
// has the same shape: psychology, then validation..planning scene by scene, then production).
const std::vector<std::string>& scene_phases() {
  static const std::vector<std::string> k_phases = {"psychology", "validation",  "continuity", "planning",
                                                    "cost_proxy", "shots_proxy", "cost_final", "shots_final"};
  return k_phases;
}

int phase_index(const std::string& name) {
  const auto& phases = scene_phases();
  return static_cast<int>(std::find(phases.begin(), phases.end(), name) - phases.begin());
}

// Where a per-scene skill's steps go: its phase and the column its verdict counts in ("" for none).
// The cost skills run in cost_proxy and again in cost_final; SceneBook::add_step tells them apart.
struct SkillPlace {
  std::string phase;
  std::string column;
};

const std::map<std::string, SkillPlace>& scene_skills() {
  static const std::map<std::string, SkillPlace> k_skills = {
      {"character-psychology", {"psychology", ""}},
      {"research-agent", {"validation", "validation"}},
      {"plausibility-auditor", {"validation", "validation"}},
      {"cultural-check", {"validation", "validation"}},
      {"dialogue-consistency-check", {"validation", "validation"}},
      {"world-state-tracker", {"continuity", "continuity"}},
      {"continuity-supervisor", {"continuity", "continuity"}},
      {"shot-planner", {"planning", "plan"}},
      {"cost-optimizer", {"cost_proxy", ""}},
      {"model-router", {"cost_proxy", ""}},
      {"budget-gates", {"cost_proxy", ""}},
  };
  return k_skills;
}

// Verdicts from best to worst; a person's ACCEPTED counts as PASS. 0: none (or not a verdict).
int severity(const std::string& verdict) {
  static const std::map<std::string, int> k_rank = {{"PASS", 1}, {"ACCEPTED", 1}, {"WARN", 2},
                                                    {"FIX", 3},  {"FAIL", 4},     {"STOP", 5}};
  auto found = k_rank.find(verdict);
  return found == k_rank.end() ? 0 : found->second;
}

std::string severity_name(int rank) {
  static const std::vector<std::string> k_names = {"", "PASS", "WARN", "FIX", "FAIL", "STOP"};
  return k_names.at(static_cast<size_t>(rank));
}

// The engine's rule for a step that needs no further attempt (engine.cpp passed()).
bool step_passed(const std::string& verdict) {
  return verdict == "PASS" || verdict == "WARN" || verdict == "FIX" || verdict == "ACCEPTED";
}

// "S03" for a scene key, "S03" for a shot key "S03_SH02", "" for any other (an entity, nothing).
std::string scene_of(const std::string& target) {
  if (artifacts::is_scene_id(target)) {
    return target;
  }
  if (artifacts::is_shot_id(target)) {
    return target.substr(0, target.rfind("_SH"));
  }
  return "";
}

// A step key "skill/target/resolution@hash<revised-loop", split.
struct StepKey {
  std::string who;  ///< "skill target resolution", the --steps label
  std::string skill;
  std::string target;
  std::string resolution;
};

StepKey parse_step(const std::string& step) {
  StepKey key;
  key.who = step.substr(0, step.find('@'));
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t slash = key.who.find('/'); slash != std::string::npos; slash = key.who.find('/', start)) {
    parts.push_back(key.who.substr(start, slash - start));
    start = slash + 1;
  }
  parts.push_back(key.who.substr(start));
  key.skill = parts[0];
  key.target = parts.size() > 1 ? parts[1] : "";
  key.resolution = parts.size() > 2 ? parts[2] : "";
  std::replace(key.who.begin(), key.who.end(), '/', ' ');
  return key;
}

// One project-wide skill: its last attempt per entity ("" for a skill that runs once).
struct ProjectSkill {
  std::string skill;
  std::map<std::string, json> last;  // entity -> last step.finished body
};

struct Fraction {
  int passed = 0;
  int shots = 0;
};

// One row of the scene table.
struct SceneRow {
  std::string scene_id;
  bool in_latest_scenes = true;
  int phase = -1;                                // index into scene_phases(), -1: nothing recorded
  int validation = 0, continuity = 0, plan = 0;  // severity ranks
  Fraction proxy, final;
  int64_t spend_micro_usd = 0;
  std::optional<int64_t> cap_micro_usd;
};

// What the events say, gathered in one pass.
class SceneBook {
 public:
  explicit SceneBook(project::Project& project) : m_project(project) {}

  Result<void> add(const ledger::Event& e) {
    if (e.kind == "step.finished") {
      return add_step(e.body);
    }
    if (e.kind == "artifact.recorded") {
      std::optional<ledger::ArtifactRecord> artifact = e.artifact();
      if (artifact && (artifact->kind == "SHOTLIST" || artifact->kind == "SCENES")) {
        auto [latest, fresh] = m_latest.try_emplace(artifact->kind + "/" + artifact->target, *artifact);
        if (!fresh && latest->second.version < artifact->version) {
          latest->second = *artifact;
        }
      }
      const json details = e.body.value("details", json::object());
      if (details.is_object() && details.contains("wave")) {
        m_waves_written.insert(details.value("wave", ""));
      }
    } else if (e.kind == "media.recorded") {
      reach(e.body.value("scene_id", ""),
            e.body.value("resolution", "") == "final" ? "shots_final" : "shots_proxy");
    } else if (e.kind == "stop.override" && e.body.value("stop_kind", "") == "frozen" &&
               e.body.value("decision", json::object()).value("kind", "") == "accept") {
      // A frozen shot a person accepted a render of counts as passed at that resolution.
      const std::string loop = e.body.value("loop", "");
      m_accepted.insert(e.body.value("scope", json::object()).value("shot_id", "") + loop.substr(loop.rfind('/')));
    }
    return ok();
  }

  // The last attempt of every step, by label: the --steps view.
  const std::map<std::string, json>& steps() const { return m_steps; }
  // Project-wide skills in the order they first ran.
  const std::vector<ProjectSkill>& project_skills() const { return m_project_skills; }

  // The scene rows: the latest SCENES' rows in story order, then scenes the record has steps for
  // that it no longer lists (a revised story dropped them; what they spent is still spent).
  // `stale`: "S01_SH02/proxy" keys the engine says were passed from other inputs than they have now.
  Result<std::vector<SceneRow>> rows(const project::Budget& budget, const governance::Overrides& overrides,
                                     const std::set<std::string>& stale) {
    m_stale = stale;
    std::vector<std::string> order;
    if (auto scenes = m_latest.find("SCENES/"); scenes != m_latest.end()) {
      AVPS_TRY_ASSIGN(json content, m_project.store().load(scenes->second));
      for (const json& row : content.value("rows", json::array())) {
        if (row.is_object() && row.contains("scene_id") && row["scene_id"].is_string()) {
          order.push_back(row["scene_id"].get<std::string>());
        }
      }
    }
    const size_t listed = order.size();
    std::vector<std::string> others;
    for (const auto& [scene, state] : m_scenes) {
      if (std::find(order.begin(), order.end(), scene) == order.end()) {
        others.push_back(scene);
      }
    }
    // S01..S99 before S100.
    std::sort(others.begin(), others.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    order.insert(order.end(), others.begin(), others.end());

    std::vector<SceneRow> out;
    for (size_t i = 0; i < order.size(); ++i) {
      SceneRow row;
      row.scene_id = order[i];
      row.in_latest_scenes = i < listed || listed == 0;
      if (auto found = m_scenes.find(row.scene_id); found != m_scenes.end()) {
        const SceneState& state = found->second;
        row.phase = state.phase;
        for (const auto& [skill, verdict] : state.verdicts) {
          const std::string& column = scene_skills().at(skill).column;
          int& worst = column == "validation"   ? row.validation
                       : column == "continuity" ? row.continuity
                                                : row.plan;
          if (!column.empty()) {
            worst = std::max(worst, severity(verdict));
          }
        }
      }
      AVPS_TRY_ASSIGN(std::vector<std::string> shots, shots_of(row.scene_id));
      row.proxy = {count_passed(shots, "proxy"), static_cast<int>(shots.size())};
      row.final = {count_passed(shots, "final"), static_cast<int>(shots.size())};
      AVPS_TRY_ASSIGN(ledger::Spend spend, m_project.ledger().spend(row.scene_id, ""));
      row.spend_micro_usd = spend.total();
      row.cap_micro_usd = overrides.cap(budget, "scene " + row.scene_id);
      out.push_back(row);
    }
    return out;
  }

 private:
  struct SceneState {
    int phase = -1;
    std::map<std::string, std::string> verdicts;  // skill -> verdict of its last attempt
  };

  Result<void> add_step(const json& body) {
    const StepKey key = parse_step(body.value("step", ""));
    m_steps[key.who] = body;
    const std::string verdict = body.value("verdict", "");
    const std::string scene = scene_of(key.target);
    if (scene.empty()) {
      auto known = std::find_if(m_project_skills.begin(), m_project_skills.end(),
                                [&](const ProjectSkill& s) { return s.skill == key.skill; });
      if (known == m_project_skills.end()) {
        m_project_skills.push_back(ProjectSkill{key.skill, {}});
        known = m_project_skills.end() - 1;
      }
      known->last[key.target] = body;
      return ok();
    }
    if (body.contains("shot_attempt") && body["shot_attempt"].is_object()) {
      note_attempt(body["shot_attempt"], verdict);
    }
    if (!key.resolution.empty()) {
      // prompt-packager, storyboard-generator, qc-grader, regen-analyzer of a shot.
      reach(scene, key.resolution == "final" ? "shots_final" : "shots_proxy");
      return ok();
    }
    auto place = scene_skills().find(key.skill);
    if (place == scene_skills().end()) {
      return ok();  // a skill this view does not place (a custom stage graph)
    }
    m_scenes[scene].verdicts[key.skill] = verdict;
    std::string phase = place->second.phase;
    if (phase == "cost_proxy") {
      // The cost loop runs again once every shot passed at proxy: that is cost_final.
      AVPS_TRY_ASSIGN(std::vector<std::string> shots, shots_of(scene));
      if (!shots.empty() && count_passed(shots, "proxy") == static_cast<int>(shots.size())) {
        phase = "cost_final";
      }
    }
    reach(scene, phase);
    return ok();
  }

  void reach(const std::string& scene, const std::string& phase) {
    if (scene.empty()) {
      return;
    }
    int& reached = m_scenes[scene].phase;
    reached = std::max(reached, phase_index(phase));
  }

  // As the engine keeps them (record.cpp note_attempt): the last word on each attempt number.
  void note_attempt(const json& attempt, const std::string& verdict) {
    std::vector<json>& list =
        m_attempts[attempt.value("shot_id", "") + "/" + attempt.value("resolution", "")];
    const int number = attempt.value("attempt", 0);
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const json& a) { return a.value("attempt", 0) == number; }),
               list.end());
    json noted = attempt;
    noted["verdict"] = verdict;
    list.push_back(noted);
  }

  // Shots passed at a resolution, by the engine's rule (production.cpp): the last graded attempt
  // is PASS, where an attempt counts once its wave's QC_BATCH is recorded (record.cpp), or a
  // person accepted one of its renders; and the render is not stale (engine::stale_shots).
  int count_passed(const std::vector<std::string>& shots, const std::string& resolution) const {
    int passed = 0;
    for (const std::string& shot : shots) {
      if (m_stale.count(shot + "/" + resolution)) {
        continue;
      }
      if (m_accepted.count(shot + "/" + resolution)) {
        ++passed;
        continue;
      }
      auto found = m_attempts.find(shot + "/" + resolution);
      if (found == m_attempts.end()) {
        continue;
      }
      const json* last = nullptr;
      for (const json& a : found->second) {
        if (!a.contains("wave") || m_waves_written.count(a.value("wave", ""))) {
          last = &a;
        }
      }
      passed += last && last->value("verdict", "") == "PASS" ? 1 : 0;
    }
    return passed;
  }

  // The shot ids of the scene's latest SHOTLIST so far (none before one is recorded).
  Result<std::vector<std::string>> shots_of(const std::string& scene) {
    auto latest = m_latest.find("SHOTLIST/" + scene);
    if (latest == m_latest.end()) {
      return std::vector<std::string>{};
    }
    auto cached = m_shotlists.find(latest->second.name);
    if (cached != m_shotlists.end()) {
      return cached->second;
    }
    AVPS_TRY_ASSIGN(json content, m_project.store().load(latest->second));
    std::vector<std::string> shots;
    for (const json& row : content.value("rows", json::array())) {
      if (row.is_object()) {
        shots.push_back(row.value("shot_id", ""));
      }
    }
    m_shotlists[latest->second.name] = shots;
    return shots;
  }

  project::Project& m_project;
  std::map<std::string, json> m_steps;
  std::vector<ProjectSkill> m_project_skills;
  std::map<std::string, SceneState> m_scenes;
  std::map<std::string, std::vector<json>> m_attempts;     // "<shot>/<resolution>" -> graded attempts
  std::set<std::string> m_waves_written;                   // "S01/proxy#2": waves whose QC_BATCH is recorded
  std::set<std::string> m_accepted;                        // "S02_SH02/proxy": a frozen shot's render accepted
  std::set<std::string> m_stale;                           // "S01_SH02/proxy": passed from other inputs
  std::map<std::string, ledger::ArtifactRecord> m_latest;  // "SCENES/", "SHOTLIST/S01" -> latest version
  std::map<std::string, std::vector<std::string>> m_shotlists;  // SHOTLIST file -> shot ids
};

// A project-wide skill summarised: its worst last verdict and how many of its instances passed.
struct SkillSummary {
  int worst = 0;
  int passed = 0;
  int attempts = 0;                                             // the most attempts any instance took
  std::vector<std::pair<std::string, const json*>> not_passed;  // entity -> last body
};

SkillSummary summarise(const ProjectSkill& skill) {
  SkillSummary s;
  for (const auto& [entity, body] : skill.last) {
    const std::string verdict = body.value("verdict", "");
    s.worst = std::max(s.worst, severity(verdict));
    s.attempts = std::max(s.attempts, body.value("attempt", 0));
    if (step_passed(verdict)) {
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

void print_project_skill(const Context& ctx, const ProjectSkill& skill) {
  if (skill.last.size() == 1 && skill.last.count("")) {
    print_step(ctx, skill.skill, skill.last.at(""));
    return;
  }
  const SkillSummary s = summarise(skill);
  const std::string worst = severity_name(s.worst);
  std::cout << "  " << pad(skill.skill, 44) << ctx.paint(worst.empty() ? "-" : worst, verdict_colour(worst))
            << "  " << s.passed << "/" << skill.last.size() << " passed";
  for (size_t i = 0; i < s.not_passed.size(); ++i) {
    const json& body = *s.not_passed[i].second;
    std::cout << (i == 0 ? "; not passed: " : ", ") << s.not_passed[i].first << " ("
              << body.value("verdict", "") << ", attempt " << body.value("attempt", 0) << ")";
  }
  std::cout << "\n";
}

std::string cell(int rank) { return rank == 0 ? "-" : severity_name(rank); }

std::string fraction(const Fraction& f) {
  return f.shots == 0 ? "-" : std::to_string(f.passed) + "/" + std::to_string(f.shots);
}

std::string phase_name(int phase) { return phase < 0 ? "-" : scene_phases().at(static_cast<size_t>(phase)); }

void print_scenes(const Context& ctx, const std::vector<SceneRow>& rows) {
  size_t id_width = 5;
  for (const SceneRow& r : rows) {
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
  for (const SceneRow& r : rows) {
    std::cout << "  " << pad(r.scene_id, id_width) << "  " << pad(phase_name(r.phase), 11) << "  "
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

json scenes_json(const std::vector<SceneRow>& rows) {
  auto verdict = [](int rank) { return rank == 0 ? json(nullptr) : json(severity_name(rank)); };
  json out = json::array();
  for (const SceneRow& r : rows) {
    json item = {{"scene_id", r.scene_id},
                 {"phase", r.phase < 0 ? json(nullptr) : json(phase_name(r.phase))},
                 {"validation", verdict(r.validation)},
                 {"continuity", verdict(r.continuity)},
                 {"plan", verdict(r.plan)},
                 {"proxy", {{"passed", r.proxy.passed}, {"shots", r.proxy.shots}}},
                 {"final", {{"passed", r.final.passed}, {"shots", r.final.shots}}},
                 {"spend_micro_usd", r.spend_micro_usd}};
    if (r.cap_micro_usd) {
      item["cap_micro_usd"] = *r.cap_micro_usd;
    }
    if (!r.in_latest_scenes) {
      item["in_latest_scenes"] = false;
    }
    out.push_back(item);
  }
  return out;
}

json project_steps_json(const std::vector<ProjectSkill>& skills) {
  json out = json::array();
  for (const ProjectSkill& skill : skills) {
    const SkillSummary s = summarise(skill);
    json not_passed = json::array();
    for (const auto& [entity, body] : s.not_passed) {
      not_passed.push_back({{"entity", entity},
                            {"verdict", body->value("verdict", "")},
                            {"attempt", body->value("attempt", 0)}});
    }
    json item = {{"skill", skill.skill},
                 {"verdict", s.worst == 0 ? json(nullptr) : json(severity_name(s.worst))},
                 {"instances", skill.last.size()},
                 {"passed", s.passed},
                 {"attempts", s.attempts},
                 {"not_passed", not_passed}};
    if (skill.last.size() == 1 && skill.last.count("")) {
      const json& body = skill.last.at("");
      item["tier"] = body.value("tier", "");
      item["outputs"] = body.value("outputs", "");
    }
    out.push_back(item);
  }
  return out;
}

Result<void> run_status(const StatusOptions& o, Context& ctx) {
  core::SystemClock clock;
  AVPS_TRY_ASSIGN(std::unique_ptr<project::Project> project,
                  project::Project::open(o.dir, ledger::OpenMode::read_only, {}, clock));
  const ledger::Ledger& ledger = project->ledger();
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, ledger.events());
  SceneBook book(*project);
  for (const ledger::Event& e : events) {
    AVPS_TRY(book.add(e));
  }
  const std::vector<governance::HardStop> stops = governance::open_hard_stops(events);
  const governance::Overrides overrides = governance::Overrides::from_events(events);
  AVPS_TRY_ASSIGN(ledger::Spend spend, ledger.spend("", ""));
  const project::Budget& configured = project->config().budget;
  // Shots the next run renders again, by the engine's own rule (a render's identity).
  AVPS_TRY_ASSIGN(std::vector<engine::StaleShot> stale, engine::stale_shots(*project));
  std::set<std::string> stale_keys;
  for (const engine::StaleShot& s : stale) {
    for (const std::string& resolution : s.resolutions) {
      stale_keys.insert(s.shot_id + "/" + resolution);
    }
  }
  AVPS_TRY_ASSIGN(std::vector<SceneRow> scenes, book.rows(configured, overrides, stale_keys));
  const int64_t configured_cap = configured.project_cap_micro_usd;
  const int64_t cap = overrides.effective_budget(configured).project_cap_micro_usd;
  ctx.exit = stops.empty() ? ExitCode::ok : ExitCode::hard_stop;

  if (ctx.json) {
    json stale_json = json::array();
    for (const engine::StaleShot& s : stale) {
      stale_json.push_back(
          {{"scene_id", s.scene_id}, {"shot_id", s.shot_id}, {"resolutions", s.resolutions}, {"changed", s.changed}});
    }
    json listed = json::array();
    for (const auto& [who, body] : book.steps()) {
      listed.push_back({{"step", who},
                        {"verdict", body["verdict"]},
                        {"attempt", body["attempt"]},
                        {"tier", body["tier"]},
                        {"outputs", body["outputs"]}});
    }
    json open = json::array();
    for (const governance::HardStop& stop : stops) {
      json item = {
          {"id", stop.id()},   {"skill", stop.skill}, {"kind", governance::stop_kind_name(stop.kind)},
          {"loop", stop.loop}, {"scope", stop.scope}, {"reason", stop.reason}};
      if (!stop.cap.empty()) {
        item["cap"] = stop.cap;
      }
      open.push_back(item);
    }
    json decided = json::array();
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
                   {"project_steps", project_steps_json(book.project_skills())},
                   {"scenes", scenes_json(scenes)},
                   {"hard_stops", open},
                   {"stale_shots", stale_json},
                   {"overrides", decided},
                   {"spend",
                    {{"committed_micro_usd", spend.committed_micro_usd},
                     {"reserved_micro_usd", spend.outstanding_micro_usd},
                     {"project_cap_micro_usd", cap},
                     {"configured_project_cap_micro_usd", configured_cap}}}});
    return ok();
  }

  std::cout << project->config().title << " (" << o.dir << ")\n";
  if (book.steps().empty()) {
    std::cout << "  nothing run yet: `avps run " << o.dir << " --until locks`\n";
  }
  if (o.steps) {
    for (const auto& [who, body] : book.steps()) {
      print_step(ctx, who, body);
    }
  } else {
    for (const ProjectSkill& skill : book.project_skills()) {
      print_project_skill(ctx, skill);
    }
    if (!scenes.empty()) {
      print_scenes(ctx, scenes);
    }
  }
  for (const engine::StaleShot& s : stale) {
    std::string renders, changed;
    for (const std::string& r : s.resolutions) {
      renders += (renders.empty() ? "" : " and ") + r;
    }
    for (const std::string& n : s.changed) {
      changed += (changed.empty() ? "" : ", ") + n;
    }
    std::cout << ctx.paint("  STALE", "33") << " " << s.shot_id << ": its " << renders
              << (s.resolutions.size() > 1 ? " renders were" : " render was") << " made from other inputs"
              << (changed.empty() ? "" : ": " + changed + " changed") << "; the next run renders it again\n";
  }
  for (const governance::HardStop& stop : stops) {
    std::cout << ctx.paint("  HARD STOP", "31") << " " << stop.id() << " ("
              << governance::stop_kind_name(stop.kind) << ", " << stop.loop << "): " << stop.reason << "\n";
  }
  for (const governance::OverrideRecord& r : overrides.records()) {
    std::cout << "  override " << r.stop_id() << ": " << r.describe() << " (" << r.reason << ")\n";
  }
  std::cout << "  spend: " << governance::usd_decimal(spend.committed_micro_usd) << " USD committed, "
            << governance::usd_decimal(spend.outstanding_micro_usd) << " reserved, of a "
            << governance::usd_decimal(cap) << " USD project cap ("
            << (cap > 0 ? spend.total() * 100 / cap : 0) << " %)"
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
      "Then one row per scene in story order (the latest SCENES): the phase it reached (the last of\n"
      "psychology, validation, continuity, planning, cost_proxy, shots_proxy, cost_final, shots_final\n"
      "with a recorded step), the worst last verdict of its validation skills, of its continuity skills,\n"
      "and of shot-planner (STOP > FAIL > FIX > WARN > PASS; '-' for none), its shots passed QC at proxy\n"
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
