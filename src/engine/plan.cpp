// The Plan (plan.hpp): what each open stop holds, by the stage graph's edges, and where a unit of
// work stands.

#include "avps/engine/plan.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "avps/skills/registry.hpp"

namespace avps::engine {

std::string_view to_string(UnitState state) {
  switch (state) {
    case UnitState::ready:
      return "ready";
    case UnitState::up_to_date:
      return "up to date";
    case UnitState::stale:
      return "stale";
    case UnitState::waiting:
      return "waiting";
    case UnitState::blocked:
      return "blocked";
  }
  return "ready";
}

PlanStop plan_stop(int64_t seq, const std::string& scene_in_scope, const std::string& entity_in_scope,
                   bool project_budget_cap, const std::string& graph_step, const std::string& skill,
                   const std::string& reason, const skills::StageGraph& graph) {
  PlanStop stop;
  stop.seq = seq;
  stop.scene = project_budget_cap ? "" : scene_in_scope;
  stop.entity = project_budget_cap || !stop.scene.empty() ? "" : entity_in_scope;
  stop.reason = reason;
  stop.step = graph_step;
  if (stop.step.empty()) {
    // Stops recorded before they named their step: the first step of their skill.
    for (const skills::Phase& phase : graph.phases) {
      for (const skills::GraphStep& step : phase.steps) {
        if (stop.step.empty() && !skill.empty() && step.skill == skill) {
          stop.step = step.id;
        }
      }
    }
  }
  return stop;
}

EntityScenes entity_scenes_of(const nlohmann::json& breakdown) {
  EntityScenes out;
  const nlohmann::json rows = breakdown.is_object() ? breakdown.value("rows", nlohmann::json::array()) : nlohmann::json();
  for (const nlohmann::json& row : rows.is_array() ? rows : nlohmann::json::array()) {
    const std::string scene = row.is_object() ? row.value("scene_id", "") : "";
    for (const nlohmann::json& requirement : row.is_object() ? row.value("lock_requirements", nlohmann::json::array())
                                                             : nlohmann::json::array()) {
      const std::string text = requirement.is_string() ? requirement.get<std::string>() : "";
      const size_t cut = text.find('_');
      if (scene.empty() || cut == std::string::npos || cut + 1 == text.size()) {
        continue;
      }
      std::vector<std::string>& scenes = out[text.substr(cut + 1)];
      if (std::find(scenes.begin(), scenes.end(), scene) == scenes.end()) {
        scenes.push_back(scene);
      }
    }
  }
  return out;
}

Plan::Plan(const skills::StageGraph& graph, std::vector<std::string> scenes, std::vector<PlanStop> stops,
           EntityScenes entity_scenes)
    : m_scenes(std::move(scenes)), m_entity_scenes(std::move(entity_scenes)) {
  std::map<std::string, int> by_skill;  // a skill's first step: edges may name a step by its skill
  for (size_t p = 0; p < graph.phases.size(); ++p) {
    const skills::Phase& phase = graph.phases[p];
    for (const skills::GraphStep& s : phase.steps) {
      const int at = static_cast<int>(m_steps.size());
      m_steps.push_back({s.id, phase.name, phase.fan_out == "per_scene" || phase.fan_out == "per_shot",
                         phase.fan_out == "per_entity", phase.order == "scene_order", static_cast<int>(p)});
      m_position.emplace(s.id, at);
      if (!s.skill.empty()) {
        by_skill.emplace(s.skill, at);
      }
    }
  }
  auto resolve = [&](const std::string& name) {
    if (auto at = m_position.find(name); at != m_position.end()) {
      return at->second;
    }
    auto at = by_skill.find(name);
    return at == by_skill.end() ? -1 : at->second;
  };
  for (const skills::GraphEdge& e : graph.edges) {
    const int from = resolve(e.from);
    const int to = resolve(e.to);
    if (from >= 0 && to >= 0) {  // "init" feeds every step and holds none
      m_edges.push_back({from, to, e.across == "previous_scene"});
    }
  }
  for (size_t i = 0; i < m_scenes.size(); ++i) {
    m_scene_slot.emplace(m_scenes[i], static_cast<int>(i));
  }
  for (const auto& [entity, shown_in] : m_entity_scenes) {
    m_entity_slot.emplace(entity, static_cast<int>(m_scenes.size() + 1 + m_entity_slot.size()));
  }
  set_stops(std::move(stops));
}

int Plan::position(const std::string& step) const {
  auto at = m_position.find(step);
  return at == m_position.end() ? -1 : at->second;
}

int Plan::scene_slot(const std::string& scene) const {
  auto at = m_scene_slot.find(scene);
  return at == m_scene_slot.end() ? static_cast<int>(m_scenes.size()) : at->second;
}

int Plan::slots() const { return static_cast<int>(m_scenes.size() + 1 + m_entity_slot.size()); }

int Plan::unit_slot(const PlanUnit& unit, int position) const {
  const Step& step = m_steps[static_cast<size_t>(position)];
  if (step.scene_unit) {
    return scene_slot(unit.scene);
  }
  if (step.entity_unit) {
    if (auto at = m_entity_slot.find(unit.entity); at != m_entity_slot.end()) {
      return at->second;
    }
  }
  return static_cast<int>(m_scenes.size());
}

size_t Plan::cell(int slot, int position) const {
  return static_cast<size_t>(slot) * m_steps.size() + static_cast<size_t>(position);
}

void Plan::add_stop(PlanStop stop) {
  std::vector<PlanStop> stops = m_stops;
  stops.push_back(std::move(stop));
  set_stops(std::move(stops));
}

void Plan::set_stops(std::vector<PlanStop> stops) {
  m_stops = std::move(stops);
  m_whole = 0;
  // An entity a stop names that the BREAKDOWN does not list: a slot of its own, showing in no scene.
  for (const PlanStop& stop : m_stops) {
    if (!stop.entity.empty() && !m_entity_slot.count(stop.entity)) {
      m_entity_slot.emplace(stop.entity, slots());
    }
  }
  m_held.assign(static_cast<size_t>(slots()) * m_steps.size(), 0);
  m_origin.assign(m_held.size(), 0);
  for (size_t i = 0; i < m_stops.size(); ++i) {
    const PlanStop& stop = m_stops[i];
    const int mark = static_cast<int>(i) + 1;
    if (!stop.entity.empty()) {
      // Raised at a per-entity step (a lock): that entity's unit of it. At an unknown step (or
      // another fan-out), the entity's first per-entity step.
      int at = position(stop.step);
      for (size_t p = 0; p < m_steps.size() && (at < 0 || !m_steps[static_cast<size_t>(at)].entity_unit); ++p) {
        at = m_steps[p].entity_unit ? static_cast<int>(p) : -1;
      }
      if (at >= 0 && m_origin[cell(m_entity_slot.at(stop.entity), at)] == 0) {
        m_origin[cell(m_entity_slot.at(stop.entity), at)] = mark;
      }
      continue;
    }
    if (stop.scene.empty()) {
      m_whole = m_whole == 0 ? mark : m_whole;
      continue;
    }
    auto slot = m_scene_slot.find(stop.scene);
    if (slot == m_scene_slot.end() || m_steps.empty()) {
      continue;  // a scene the latest SCENES dropped holds nothing that runs
    }
    int at = position(stop.step);
    if (at < 0) {  // an unknown step: the scene's first scene-level step
      for (size_t p = 0; p < m_steps.size() && at < 0; ++p) {
        at = m_steps[p].scene_unit ? static_cast<int>(p) : -1;
      }
    }
    if (at >= 0 && m_origin[cell(slot->second, at)] == 0) {
      m_origin[cell(slot->second, at)] = mark;
    }
  }
  if (m_whole == 0) {
    propagate();
  }
}

// Carries each origin's block along the edges until nothing changes. Scenes are visited in story
// order, so a block moving forward through `across` edges and scene_order phases travels the whole
// chain in one sweep; a block reaching a project-wide step and coming back needs another.
void Plan::propagate() {
  if (m_stops.empty()) {
    return;
  }
  const int project = static_cast<int>(m_scenes.size());
  auto holder = [&](int slot, int at) {
    const size_t c = cell(slot, at);
    return m_held[c] != 0 ? m_held[c] : m_origin[c];
  };
  bool changed = true;
  auto hold = [&](int slot, int at, int mark) {
    int& held = m_held[cell(slot, at)];
    if (held == 0) {
      held = mark;
      changed = true;
    }
  };
  // The slots a unit of a step of each kind may be held in: a scene step's are the scenes', a
  // project-wide step's the project's, a per-entity step's the project's (its unit for an entity
  // no BREAKDOWN names) and the entities' (which follow the project's).
  auto slot_range = [&](int at) {
    const Step& step = m_steps[static_cast<size_t>(at)];
    return step.scene_unit ? std::pair{0, project} : std::pair{project, step.entity_unit ? slots() : project + 1};
  };
  auto held_anywhere = [&](int at) {
    const auto [first, end] = slot_range(at);
    for (int s = first; s < end; ++s) {
      if (int mark = holder(s, at)) {
        return mark;
      }
    }
    return 0;
  };
  auto hold_everywhere = [&](int at, int mark) {
    const auto [first, end] = slot_range(at);
    for (int s = first; s < end; ++s) {
      hold(s, at, mark);
    }
  };
  while (changed) {
    changed = false;
    for (const Edge& e : m_edges) {
      const Step& from = m_steps[static_cast<size_t>(e.from)];
      const Step& to = m_steps[static_cast<size_t>(e.to)];
      if (from.scene_unit && to.scene_unit) {
        for (int s = 0; s < project; ++s) {
          const int source = e.across ? s - 1 : s;
          if (source >= 0) {
            if (int mark = holder(source, e.from)) {
              hold(s, e.to, mark);
            }
          }
        }
      } else if (from.entity_unit && (to.entity_unit || to.scene_unit)) {
        // An entity's block reaches the same entity's later steps (its voice from its character
        // lock) and the scenes that show it; a block of the step as a whole reaches them all.
        if (int mark = holder(project, e.from)) {
          hold_everywhere(e.to, mark);
        }
        for (const auto& [entity, slot] : m_entity_slot) {
          const int mark = holder(slot, e.from);
          if (mark == 0) {
            continue;
          }
          if (to.entity_unit) {
            hold(slot, e.to, mark);
          } else if (auto shown = m_entity_scenes.find(entity); shown != m_entity_scenes.end()) {
            for (const std::string& scene : shown->second) {
              if (auto in = m_scene_slot.find(scene); in != m_scene_slot.end()) {
                hold(in->second, e.to, mark);
              }
            }
          }
        }
      } else if (int mark = held_anywhere(e.from)) {
        // Across kinds otherwise (project to scenes or entities, scenes or entities to the
        // project, scenes to entities): what reads the held unit is held wherever it runs.
        if (to.scene_unit || to.entity_unit) {
          hold_everywhere(e.to, mark);
        } else {
          hold(project, e.to, mark);
        }
      }
    }
    // A scene_order phase's task for a scene waits for the previous scene's to pass.
    for (int s = 1; s < project; ++s) {
      for (size_t p = 0; p < m_steps.size(); ++p) {
        if (!m_steps[p].scene_order || !m_steps[p].scene_unit) {
          continue;
        }
        int mark = 0;
        for (size_t q = 0; q < m_steps.size() && mark == 0; ++q) {
          if (m_steps[q].phase_index == m_steps[p].phase_index) {
            mark = holder(s - 1, static_cast<int>(q));
          }
        }
        if (mark != 0) {
          hold(s, static_cast<int>(p), mark);
        }
      }
    }
  }
}

const PlanStop* Plan::whole_project() const {
  return m_whole == 0 ? nullptr : &m_stops[static_cast<size_t>(m_whole - 1)];
}

std::optional<size_t> Plan::cell_of(const PlanUnit& unit) const {
  const int at = position(unit.step);
  if (at < 0 || m_stops.empty()) {
    return std::nullopt;  // an unknown step, or nothing to hold it
  }
  return cell(unit_slot(unit, at), at);
}

const PlanStop* Plan::blocker(const PlanUnit& unit) const {
  if (const PlanStop* whole = whole_project()) {
    return whole;
  }
  const std::optional<size_t> c = cell_of(unit);
  const int mark = !c ? 0 : m_held[*c] != 0 ? m_held[*c] : m_origin[*c];
  return mark == 0 ? nullptr : &m_stops[static_cast<size_t>(mark - 1)];
}

bool Plan::may_run(const PlanUnit& unit) const {
  if (whole_project()) {
    return false;
  }
  const std::optional<size_t> c = cell_of(unit);
  return !c || m_held[*c] == 0;
}

UnitStatus Plan::state_of(const UnitFacts& facts) {
  UnitStatus status;
  if (!facts.missing.empty()) {
    status.state = UnitState::waiting;
    for (const std::string& kind : facts.missing) {
      status.why += (status.why.empty() ? "waiting for " : ", ") + kind;
    }
  } else if (facts.passed_with_inputs) {
    status.state = UnitState::up_to_date;
  } else if (facts.last_inputs && *facts.last_inputs != facts.inputs) {
    status.state = UnitState::stale;
    status.why = "its inputs changed since its last run";
  }
  return status;
}

UnitStatus Plan::status(const PlanUnit& unit, const UnitFacts& facts) const {
  if (const PlanStop* stop = blocker(unit)) {
    return {UnitState::blocked, "STOP-" + std::to_string(stop->seq) + ": " + stop->reason, stop->seq};
  }
  return state_of(facts);
}

std::optional<size_t> Plan::first_phase_held_by(int64_t seq) const {
  auto stop = std::find_if(m_stops.begin(), m_stops.end(), [&](const PlanStop& s) { return s.seq == seq; });
  if (stop == m_stops.end()) {
    return std::nullopt;
  }
  const int mark = static_cast<int>(stop - m_stops.begin()) + 1;
  if (m_whole == mark) {
    return m_steps.empty() ? std::nullopt : std::optional<size_t>(0);
  }
  // (Under a stop holding the whole project the others are not propagated: each gives its origin.)
  std::optional<size_t> first;
  for (size_t c = 0; c < m_held.size(); ++c) {
    if (m_held[c] == mark || m_origin[c] == mark) {
      const size_t phase = static_cast<size_t>(m_steps[c % m_steps.size()].phase_index);
      first = first ? std::min(*first, phase) : phase;
    }
  }
  return first;
}

std::string Plan::first_held_step(const std::string& scene) const {
  auto slot = m_scene_slot.find(scene);
  for (size_t p = 0; p < m_steps.size(); ++p) {
    if (!m_steps[p].scene_unit) {
      continue;
    }
    if (whole_project() || (slot != m_scene_slot.end() && (m_held[cell(slot->second, static_cast<int>(p))] != 0 ||
                                                           m_origin[cell(slot->second, static_cast<int>(p))] != 0))) {
      return m_steps[p].id;
    }
  }
  return "";
}

const std::string& Plan::phase_of(const std::string& step) const {
  static const std::string k_none;
  const int at = position(step);
  return at < 0 ? k_none : m_steps[static_cast<size_t>(at)].phase;
}

}  // namespace avps::engine
