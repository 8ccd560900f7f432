#pragma once
// The Plan: from the stage graph and the record alone, where each unit of work stands — ready, up
// to date, stale, waiting for inputs, or blocked by an open hard stop — and what each stop holds.
// As ninja's Plan does for its Builder, it decides and runs nothing: the walk (Impl::walk) asks it
// before each step whether the step may run and tells it of every stop raised; a step's start
// asks it whether the step is up to date; `avps status` and the report read the same Plan, built
// from the same record, so they cannot disagree with the run.
//
// What a stop holds (DESIGN §3: "a hard stop blocks what it concerns and what depends on it; the
// other scenes go on"), from the graph's data only:
//   - A stop that holds the whole project (no scene in its scope, or the project's budget cap)
//     blocks every unit.
//   - A stop of scene S raised at step P (its origin) blocks what depends on P's unit in S,
//     following the graph's edges: an edge inside one context carries the block to the same
//     scene's step (or from a project-wide step to every scene, from any scene to a project-wide
//     step); an edge `across: previous_scene` carries it to the next scene in story order; a phase
//     whose `order` is scene_order carries a block of its task for one scene to its task for the
//     next scene. Steps of S that do not depend on P, and scenes whose inputs do not, go on.
//   - A stop of entity E (a lock's, raised at a per-entity step) blocks E's units of the steps that
//     depend on it (its voice lock after its character lock) and, through edges to scene steps,
//     only the scenes that show E (the latest BREAKDOWN's lock_requirements, entity_scenes_of);
//     from there the scene rules above apply. A project-wide step that reads it is held as a whole.
//   - A shot's unit is held when its scene's unit of that step is: a frozen shot stops its scene's
//     production, not the other scenes'.
// The origin itself is reported blocked, but the walk runs it again (Plan::may_run): that step
// restates its stop, or resolves it when its inputs changed (an edited lock, a resolved finding).
//
// Threading: a Plan is a value. Its const members may be called from any thread at once; the
// others need exclusive access.

#include <cstdint>
#include <map>

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace avps::skills {
struct StageGraph;
}

namespace avps::engine {

enum class UnitState {
  ready,       ///< may run: it never ran from these inputs, or its last run from them failed
  up_to_date,  ///< a run from exactly its current inputs passed (or a person accepted it)
  stale,       ///< it ran before, from other inputs: it runs again
  waiting,     ///< an input it needs is not written yet
  blocked,     ///< an open hard stop holds it
};
std::string_view to_string(UnitState state);

/// One unit of work: a step of the stage graph (its id) in one context of its phase's fan-out.
/// `scene` is empty for the project-wide fan-outs (once, per_entity); per_scene and per_shot
/// units name their scene.
struct PlanUnit {
  std::string step{};
  std::string scene{};
  std::string entity{};  ///< per_entity: the entity's id, "MARA" for CHAR_MARA (Context::entity_id)
  std::string shot{};    ///< per_shot: "S01_SH02" (held as its scene's unit of the step)
};

/// An open hard stop, as the Plan reads it (plan_stop() makes one of a recorded run.hard_stop).
struct PlanStop {
  int64_t seq = 0;
  std::string scene;   ///< the scene it holds; "" when it holds an entity or the whole project
  std::string entity;  ///< the entity it holds (its id), when its scope names one and no scene
  std::string step;    ///< the graph step it was raised at; "" (or unknown) = the scene's first
  std::string reason;  ///< "STOP-<seq>: <reason>" is how it is named to a person
};

/// The PlanStop of a recorded stop: its seq, the scene or else the entity it holds (neither for a
/// stop without one in its scope, and for one on the project's budget cap, which every other call
/// would meet too: those hold the whole project), the step it was raised at (`graph_step`; older
/// records: the first step of its skill) and reason.
PlanStop plan_stop(int64_t seq, const std::string& scene_in_scope, const std::string& entity_in_scope,
                   bool project_budget_cap, const std::string& graph_step, const std::string& skill,
                   const std::string& reason, const skills::StageGraph& graph);

/// Which scenes show each entity, by its id ("MARA" for CHAR_MARA and VOICE_MARA).
using EntityScenes = std::map<std::string, std::vector<std::string>>;
/// The scenes of each entity by a BREAKDOWN's rows: `scene_id` and `lock_requirements` ("CHAR_MARA",
/// "SET_DOCK": a class prefix, then the entity's id). Malformed rows are passed over.
EntityScenes entity_scenes_of(const nlohmann::json& breakdown);

/// What the record says of a unit's inputs and runs; the caller reads it, the Plan decides.
struct UnitFacts {
  std::vector<std::string> missing;        ///< required inputs not written yet
  std::string inputs;                      ///< the digest of its inputs as they stand
  bool passed_with_inputs = false;         ///< a run from exactly these inputs passed (or was accepted)
  std::optional<std::string> last_inputs;  ///< the inputs of its last run; none if it never ran
};

struct UnitStatus {
  UnitState state = UnitState::ready;
  std::string why;       ///< waiting: what for; blocked: "STOP-12: reason"; stale: what changed
  int64_t stop_seq = 0;  ///< blocked: the stop that holds it
};

class Plan {
 public:
  /// `scenes`: the latest SCENES' ids in story order; `stops`: the stops open in the record;
  /// `entity_scenes`: which scenes show each entity (a stop of an entity holds those).
  Plan(const skills::StageGraph& graph, std::vector<std::string> scenes, std::vector<PlanStop> stops,
       EntityScenes entity_scenes = {});

  /// The stop that holds `unit`, nullptr when none holds it. A unit that both is a stop's origin
  /// and depends on another stop's gives the other.
  const PlanStop* blocker(const PlanUnit& unit) const;
  /// Whether the walk runs `unit`: no stop holds it, or only the stop raised at it (which the step
  /// restates or resolves).
  bool may_run(const PlanUnit& unit) const;
  /// Where `unit` stands: blocked (blocker()), else state_of(facts).
  UnitStatus status(const PlanUnit& unit, const UnitFacts& facts) const;
  /// The rule for a unit no stop holds: waiting on missing inputs, up to date when a run from its
  /// current inputs passed, stale when it last ran from other inputs, else ready.
  static UnitStatus state_of(const UnitFacts& facts);

  /// A stop raised during the walk: what depends on it is held from now on.
  void add_stop(PlanStop stop);
  /// The open stops changed (a stop resolved by its step): hold again from these.
  void set_stops(std::vector<PlanStop> stops);
  const std::vector<PlanStop>& stops() const { return m_stops; }
  /// The stop holding the whole project, nullptr when none does.
  const PlanStop* whole_project() const;

  /// The first phase (its index in the stage graph) with a unit the stop `seq` holds or was raised
  /// at; none when it holds nothing that runs (an unknown stop, a scene the latest SCENES dropped).
  /// A stop holding the whole project holds from the first phase.
  std::optional<size_t> first_phase_held_by(int64_t seq) const;
  /// The first unit of `scene`, in graph order, that a stop holds (its step id), "" when none.
  std::string first_held_step(const std::string& scene) const;
  /// The phase of a graph step, "" for an unknown step.
  const std::string& phase_of(const std::string& step) const;

 private:
  struct Step {
    std::string id;
    std::string phase;
    bool scene_unit = false;   ///< per_scene or per_shot: one unit per scene
    bool entity_unit = false;  ///< per_entity: one unit per entity (and the project's, for others)
    bool scene_order = false;  ///< its phase's tasks wait for the previous scene's (order: scene_order)
    int phase_index = 0;
  };
  struct Edge {
    int from = 0;
    int to = 0;
    bool across = false;  ///< previous_scene
  };
  int position(const std::string& step) const;     ///< -1 for an unknown step
  int scene_slot(const std::string& scene) const;  ///< the project's slot for "" or an unknown scene
  int unit_slot(const PlanUnit& unit, int position) const;  ///< the slot of `unit` of the step at `position`
  int slots() const;
  size_t cell(int slot, int position) const;
  std::optional<size_t> cell_of(const PlanUnit& unit) const;  ///< none for an unknown step or no stops
  void propagate();

  std::vector<Step> m_steps;  ///< graph order
  std::map<std::string, int> m_position;
  std::vector<Edge> m_edges;
  std::vector<std::string> m_scenes;
  std::map<std::string, int> m_scene_slot;
  EntityScenes m_entity_scenes;
  std::map<std::string, int> m_entity_slot;  ///< after the scenes' and the project's, one after another
  std::vector<PlanStop> m_stops;
  /// Per (slot, position), the index in m_stops + 1 of the stop that holds the unit (0: none); the
  /// scenes' slots, then the project's (m_scenes.size()), then the entities'. `m_origin` marks
  /// where stops were raised.
  std::vector<int> m_held;
  std::vector<int> m_origin;
  int m_whole = 0;  ///< index + 1 of a stop holding the whole project
};

}  // namespace avps::engine
