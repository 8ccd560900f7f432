// The Plan (plan.hpp): what each open stop holds, by the stage graph's edges, and where a unit of
// work stands.

#include "avps/engine/plan.hpp"

#include <algorithm>

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

PlanStop plan_stop(int64_t seq, const std::string& scene_in_scope, bool project_budget_cap,
                   const std::string& graph_step, const std::string& skill, const std::string& reason,
                   const skills::StageGraph& graph) {
  PlanStop stop;
  stop.seq = seq;
  stop.scene = project_budget_cap ? "" : scene_in_scope;
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

Plan::Plan(const skills::StageGraph& graph, std::vector<std::string> scenes, std::vector<PlanStop> stops)
    : m_scenes(std::move(scenes)) {
  std::map<std::string, int> by_skill;  // a skill's first step: edges may name a step by its skill
  for (size_t p = 0; p < graph.phases.size(); ++p) {
    const skills::Phase& phase = graph.phases[p];
    for (const skills::GraphStep& s : phase.steps) {
      const int at = static_cast<int>(m_steps.size());
      m_steps.push_back({s.id, phase.name, phase.fan_out == "per_scene" || phase.fan_out == "per_shot",
                         phase.order == "scene_order", static_cast<int>(p)});
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
  m_held.assign((m_scenes.size() + 1) * m_steps.size(), 0);
  m_origin.assign(m_held.size(), 0);
  for (size_t i = 0; i < m_stops.size(); ++i) {
    const PlanStop& stop = m_stops[i];
    const int mark = static_cast<int>(i) + 1;
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
  while (changed) {
    changed = false;
    for (const Edge& e : m_edges) {
      const bool from_scene = m_steps[static_cast<size_t>(e.from)].scene_unit;
      const bool to_scene = m_steps[static_cast<size_t>(e.to)].scene_unit;
      if (!from_scene && !to_scene) {
        if (int mark = holder(project, e.from)) {
          hold(project, e.to, mark);
        }
      } else if (!from_scene) {
        if (int mark = holder(project, e.from)) {
          for (int s = 0; s < project; ++s) {
            hold(s, e.to, mark);
          }
        }
      } else if (!to_scene) {
        for (int s = 0; s < project; ++s) {
          if (int mark = holder(s, e.from)) {
            hold(project, e.to, mark);
            break;
          }
        }
      } else {
        for (int s = 0; s < project; ++s) {
          const int source = e.across ? s - 1 : s;
          if (source >= 0) {
            if (int mark = holder(source, e.from)) {
              hold(s, e.to, mark);
            }
          }
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
  const bool scene_unit = m_steps[static_cast<size_t>(at)].scene_unit;
  return cell(scene_unit ? scene_slot(unit.scene) : static_cast<int>(m_scenes.size()), at);
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
