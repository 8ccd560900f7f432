#include "avps/skills/stage_graph.hpp"

#include <algorithm>
#include <functional>

namespace avps::skills {

using nlohmann::json;

namespace {

std::string string_or_empty(const json& object, const char* key) {
  return object.contains(key) ? object.at(key).get<std::string>() : std::string();
}

std::vector<std::string> strings_or_empty(const json& object, const char* key) {
  return object.contains(key) ? object.at(key).get<std::vector<std::string>>() : std::vector<std::string>();
}

}  // namespace

Result<StageGraph> StageGraph::from_json(const json& document) {
  try {
    StageGraph graph;
    graph.init_produces = document.at("init").at("produces").get<std::vector<std::string>>();
    graph.roles = document.at("roles").get<std::map<std::string, std::string>>();
    for (const json& p : document.at("phases")) {
      Phase phase;
      phase.name = p.at("name").get<std::string>();
      phase.description = p.at("description").get<std::string>();
      phase.fan_out = p.at("fan_out").get<std::string>();
      phase.order = string_or_empty(p, "order");
      phase.resolution = string_or_empty(p, "resolution");
      phase.when = string_or_empty(p, "when");
      phase.walk = string_or_empty(p, "walk");
      if (phase.walk.empty()) {
        phase.walk = phase.fan_out == "per_scene" ? "scene" : phase.fan_out == "per_shot" ? "production" : "project";
      }
      for (const json& s : p.at("steps")) {
        phase.steps.push_back({s.at("id").get<std::string>(), string_or_empty(s, "skill"),
                               string_or_empty(s, "action"), strings_or_empty(s, "consumes"),
                               strings_or_empty(s, "produces")});
      }
      graph.phases.push_back(std::move(phase));
    }
    for (const json& entry : document.at("on_demand")) {
      graph.on_demand.push_back({entry.at("skill").get<std::string>(), entry.at("trigger").get<std::string>(),
                                 entry.at("description").get<std::string>()});
    }
    for (const json& edge : document.at("edges")) {
      graph.edges.push_back({edge.at("from").get<std::string>(), edge.at("kind").get<std::string>(),
                             edge.at("to").get<std::string>(), string_or_empty(edge, "across")});
    }
    for (const json& t : document.value("triggers", json::array())) {
      Trigger trigger;
      trigger.id = t.at("id").get<std::string>();
      trigger.description = t.at("description").get<std::string>();
      trigger.rules = t.at("rules").get<std::vector<std::string>>();
      trigger.skill = t.at("skill").get<std::string>();
      trigger.scope = t.at("scope").get<std::string>();
      trigger.after_failed_shots = t.at("after_failed_shots").get<int>();
      graph.triggers.push_back(std::move(trigger));
    }
    graph.conditions = document.at("conditions");
    graph.regen = document.at("regen");
    graph.raw = document;
    return graph;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::invalid_argument,
                      std::string("stage graph is not shaped as stage_graph.schema.json says: ") + e.what());
  }
}

const std::string& StageGraph::role(const std::string& part) const {
  static const std::string k_none;
  auto found = roles.find(part);
  return found == roles.end() ? k_none : found->second;
}

std::vector<int> StageGraph::walk_passes() const {
  std::vector<int> passes;
  int pass = 0;
  for (const Phase& phase : phases) {
    pass = std::max(pass, phase.walk == "production" ? 2 : phase.walk == "scene" ? 1 : 0);
    passes.push_back(pass);
  }
  return passes;
}

size_t StageGraph::step_count() const {
  size_t count = 0;
  for (const Phase& phase : phases) {
    count += phase.steps.size();
  }
  return count;
}

std::vector<PlannedStep> flatten(const StageGraph& graph, const std::map<std::string, SkillDef>& skills) {
  std::vector<PlannedStep> steps;
  for (const Phase& phase : graph.phases) {
    for (const GraphStep& s : phase.steps) {
      PlannedStep step;
      step.id = s.id;
      step.phase = phase.name;
      step.fan_out = phase.fan_out;
      step.skill = s.skill;
      if (!s.skill.empty()) {
        auto found = skills.find(s.skill);
        step.skill_known = found != skills.end();
        if (step.skill_known) {
          for (const SkillInput& input : found->second.inputs) {
            step.inputs.push_back({input.kind, input.required});
          }
          for (const SkillOutput& output : found->second.outputs) {
            step.outputs.insert(output.kind);
            if (!output.media.empty()) {
              step.rendered_first.insert(output.kind);
            }
          }
        }
      } else {
        for (const std::string& kind : s.consumes) {
          step.inputs.push_back({kind, true});
        }
        step.outputs.insert(s.produces.begin(), s.produces.end());
      }
      steps.push_back(std::move(step));
    }
  }
  return steps;
}

std::vector<std::string> find_cycle(const std::vector<std::string>& nodes,
                                    const std::vector<std::pair<std::string, std::string>>& edges) {
  std::vector<std::string> order = nodes;
  std::map<std::string, std::vector<std::string>> next;
  std::set<std::string> known(nodes.begin(), nodes.end());
  for (const auto& [from, to] : edges) {
    next[from].push_back(to);
    for (const std::string& end : {from, to}) {
      if (known.insert(end).second) {
        order.push_back(end);
      }
    }
  }
  // Depth-first search; a "grey" node reached again closes a cycle along the current path.
  enum class Mark { white, grey, black };
  std::map<std::string, Mark> mark;
  std::vector<std::string> path;
  std::vector<std::string> cycle;
  std::function<bool(const std::string&)> visit = [&](const std::string& node) {
    mark[node] = Mark::grey;
    path.push_back(node);
    for (const std::string& to : next[node]) {
      if (mark[to] == Mark::grey) {
        auto start = std::find(path.begin(), path.end(), to);
        cycle.assign(start, path.end());
        cycle.push_back(to);
        return true;
      }
      if (mark[to] == Mark::white && visit(to)) {
        return true;
      }
    }
    path.pop_back();
    mark[node] = Mark::black;
    return false;
  };
  for (const std::string& node : order) {
    if (mark[node] == Mark::white && visit(node)) {
      return cycle;
    }
  }
  return {};
}

}  // namespace avps::skills
