#pragma once
// The pipeline as data: policies/stage_graph.json (schemas/stage_graph.schema.json), typed.
//
// Phases run in order; each phase's steps run in order for each of the phase's contexts (fan_out).
// A step is a skill or an engine action. Edges say which step's output feeds which step's input;
// an edge marked `across` links two contexts (the previous scene's WORLD_STATE) and is therefore
// left out of the forward-order and cycle checks. Conditions and the regen policy stay JSON: the
// plan and the engine interpret them.

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"
#include "avps/skills/skill_def.hpp"

namespace avps::skills {

struct GraphStep {
  std::string id;
  std::string skill;                  ///< empty for an engine action
  std::string action;                 ///< "generate_media"; empty for a skill step
  std::vector<std::string> consumes;  ///< an action's inputs (all required)
  std::vector<std::string> produces;  ///< an action's outputs
};

struct Phase {
  std::string name;
  std::string description;
  std::string fan_out;     ///< once, per_scene, per_entity, per_shot
  std::string order;       ///< parallel, scene_order; empty = parallel
  std::string resolution;  ///< proxy, final; empty for phases that do not render
  std::string when;        ///< a condition; empty = always
  std::string walk;        ///< project, scene, production: the walk's pass (defaulted from fan_out)
  std::vector<GraphStep> steps;
};

struct GraphEdge {
  std::string from;  ///< a step id or "init"
  std::string kind;
  std::string to;      ///< a step id
  std::string across;  ///< "previous_scene", or empty for an edge inside one context
};

struct OnDemandSkill {
  std::string skill;
  std::string trigger;  ///< regen_policy, after_every_step
  std::string description;
};

/// A cross-loop trigger (stage_graph.schema.json, triggers): QC violations of `rules` about one
/// scope, in failed attempts of `after_failed_shots` shots of a scene, make `skill` run again for it.
struct Trigger {
  std::string id;
  std::string description;
  std::vector<std::string> rules;  ///< violation rules of the grader's QC_BATCH
  std::string skill;
  std::string scope;  ///< "scene", or "entity" (of the class of the skill's scope)
  int after_failed_shots = 1;
};

struct StageGraph {
  std::vector<std::string> init_produces;  ///< what `avps init` writes: BRIEF, WORLD_STATE, ...
  /// The skills the engine's own machinery works with, by part (stage_graph.schema.json, roles):
  /// packager, grader, storyboard, world_state, router, budget, cost (the regen analyzer and the
  /// re-planner are regen.analyzer and regen.simplify_via). Every
  /// part is present in a graph that passed its schema; the registry checks each names a skill.
  std::map<std::string, std::string> roles;
  std::vector<Phase> phases;
  std::vector<OnDemandSkill> on_demand;
  std::vector<GraphEdge> edges;
  std::vector<Trigger> triggers;                         ///< none when the file has no triggers section
  nlohmann::json conditions = nlohmann::json::object();  ///< name -> {scope, description, evaluate}
  nlohmann::json regen = nlohmann::json::object();       ///< the production regen policy
  nlohmann::json raw;                                    ///< the whole file
  SourceFile source;

  /// Builds the typed view of a document that passed stage_graph.schema.json; fails
  /// (invalid_argument) rather than throwing when it is not shaped that way.
  [[nodiscard]] static Result<StageGraph> from_json(const nlohmann::json& document);

  size_t step_count() const;
  /// The skill that plays `part` (a key of roles); empty when the graph names none.
  const std::string& role(const std::string& part) const;
  /// Each phase's pass of the walk, in phase order: 0 project, 1 scene, 2 production. A phase
  /// runs in no earlier pass than the one before it.
  std::vector<int> walk_passes() const;
};

/// What one step reads and writes: its skill's inputs and outputs, or its action's consumes
/// (required) and produces.
struct StepInput {
  std::string kind;
  bool required = true;
};
struct PlannedStep {
  std::string id;
  std::string phase;
  std::string fan_out;
  std::string skill;        ///< empty for an engine action
  bool skill_known = true;  ///< false when `skill` is not in the skills given to flatten()
  std::vector<StepInput> inputs;
  std::set<std::string> outputs;
  /// The step's media outputs (a storyboard frame): rendered by a generation call before the
  /// step's own model call, which reads them, so they are inputs the step itself provides.
  std::set<std::string> rendered_first;
};

/// Every step of the graph in execution order, its data flow resolved against `skills` (keyed by
/// name). A step whose skill is missing has skill_known = false and no inputs or outputs.
std::vector<PlannedStep> flatten(const StageGraph& graph, const std::map<std::string, SkillDef>& skills);

/// One cycle of the directed graph `edges` over `nodes`, as the path a -> b -> ... -> a (first node
/// repeated at the end), or empty when there is none. Deterministic: nodes are visited in the
/// order given. Edge ends that are not in `nodes` are added.
std::vector<std::string> find_cycle(const std::vector<std::string>& nodes,
                                    const std::vector<std::pair<std::string, std::string>>& edges);

}  // namespace avps::skills
