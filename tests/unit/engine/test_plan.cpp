// The Plan (plan.hpp), asked about the shipped stage graph without running anything: where a unit
// stands for each fan-out, and what each kind of stop holds.

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "avps/engine/plan.hpp"
#include "avps/skills/stage_graph.hpp"

namespace fs = std::filesystem;
using avps::engine::Plan;
using avps::engine::PlanStop;
using avps::engine::PlanUnit;
using avps::engine::UnitFacts;
using avps::engine::UnitState;

namespace {

const avps::skills::StageGraph& shipped_graph() {
  static const avps::skills::StageGraph graph = [] {
    std::ifstream in(fs::path(AVPS_SOURCE_DATA_DIR) / "policies" / "stage_graph.json");
    auto parsed = avps::skills::StageGraph::from_json(nlohmann::json::parse(in));
    REQUIRE(parsed.ok());
    return *parsed;
  }();
  return graph;
}

const std::vector<std::string> k_scenes = {"S01", "S02", "S03"};

PlanUnit unit(const std::string& step, const std::string& scene = "", const std::string& shot = "") {
  PlanUnit u;
  u.step = step;
  u.scene = scene;
  u.shot = shot;
  return u;
}

PlanStop stop(int64_t seq, const std::string& scene, const std::string& step) {
  PlanStop s;
  s.seq = seq;
  s.scene = scene;
  s.step = step;
  s.reason = "test stop " + std::to_string(seq);
  return s;
}

UnitFacts ran(const std::string& inputs, const std::string& last, bool passed) {
  UnitFacts f;
  f.inputs = inputs;
  f.last_inputs = last;
  f.passed_with_inputs = passed;
  return f;
}

}  // namespace

TEST_CASE("plan: ready, up to date, stale and waiting for every fan-out", "[plan]") {
  const Plan plan(shipped_graph(), k_scenes, {});
  PlanUnit project = unit("story-architect");
  PlanUnit entity = unit("character-lock");
  entity.entity = "CHAR_MARA";
  const PlanUnit scene = unit("plausibility-auditor", "S02");
  const PlanUnit shot = unit("shots_proxy.qc-grader", "S02", "S02_SH01");
  for (const PlanUnit& u : {project, entity, scene, shot}) {
    CAPTURE(u.step);
    UnitFacts never;
    never.inputs = "@a";
    CHECK(plan.status(u, never).state == UnitState::ready);
    CHECK(plan.status(u, ran("@a", "@a", true)).state == UnitState::up_to_date);
    CHECK(plan.status(u, ran("@a", "@a", false)).state == UnitState::ready);  // failed from these inputs: try again
    const auto stale = plan.status(u, ran("@b", "@a", false));
    CHECK(stale.state == UnitState::stale);
    CHECK(stale.why.find("inputs changed") != std::string::npos);
    UnitFacts waiting;
    waiting.missing = {"SHOTLIST", "WORLD_STATE"};
    const auto w = plan.status(u, waiting);
    CHECK(w.state == UnitState::waiting);
    CHECK(w.why == "waiting for SHOTLIST, WORLD_STATE");
    CHECK(plan.may_run(u));
    CHECK(plan.blocker(u) == nullptr);
  }
}

TEST_CASE("plan: a stop holding the whole project blocks every fan-out", "[plan]") {
  const Plan plan(shipped_graph(), k_scenes, {stop(7, "", "character-lock")});
  PlanUnit entity = unit("set-lock");
  entity.entity = "SET_DOCK";
  for (const PlanUnit& u : {unit("story-architect"), entity, unit("plausibility-auditor", "S01"),
                            unit("research-agent", "S03"), unit("shots_final.generate", "S01", "S01_SH01")}) {
    CAPTURE(u.step, u.scene);
    const auto s = plan.status(u, ran("@a", "@a", true));
    CHECK(s.state == UnitState::blocked);
    CHECK(s.stop_seq == 7);
    CHECK(s.why == "STOP-7: test stop 7");
    CHECK_FALSE(plan.may_run(u));
  }
  REQUIRE(plan.whole_project() != nullptr);
  CHECK(plan.first_held_step("S02") != "");
}

TEST_CASE("plan: a frozen shot holds its scene's production and nothing else", "[plan]") {
  // Raised at the proxy QC of S02 (the grader's step in shots_proxy).
  const Plan plan(shipped_graph(), k_scenes, {stop(12, "S02", "shots_proxy.qc-grader")});
  // The origin is blocked (status says so) but the walk runs it again: it restates or resolves.
  const PlanUnit origin = unit("shots_proxy.qc-grader", "S02", "S02_SH03");
  CHECK(plan.status(origin, {}).state == UnitState::blocked);
  CHECK(plan.may_run(origin));
  CHECK(plan.may_run(unit("shots_proxy.prompt-packager", "S02", "S02_SH01")));
  // What reads its QC_BATCH is held: the cost loop before finals and the final waves of S02.
  for (const char* step : {"cost_final.cost-optimizer", "cost_final.budget-gates", "shots_final.prompt-packager",
                           "shots_final.generate", "shots_final.qc-grader"}) {
    CAPTURE(step);
    const auto s = plan.status(unit(step, "S02", "S02_SH01"), ran("@a", "@a", true));
    CHECK(s.state == UnitState::blocked);
    CHECK(s.stop_seq == 12);
    CHECK_FALSE(plan.may_run(unit(step, "S02")));
  }
  // Every other scene, and the project-wide steps, go on.
  for (const std::string& scene : {std::string("S01"), std::string("S03")}) {
    for (const char* step : {"plausibility-auditor", "world-state-tracker", "shot-planner", "shots_proxy.qc-grader",
                             "cost_final.budget-gates", "shots_final.generate"}) {
      CAPTURE(scene, step);
      CHECK(plan.may_run(unit(step, scene)));
      CHECK(plan.status(unit(step, scene), ran("@a", "@a", true)).state == UnitState::up_to_date);
    }
  }
  CHECK(plan.may_run(unit("narrative-red-team")));
  CHECK(plan.first_held_step("S02") == "shots_proxy.qc-grader");
  CHECK(plan.first_held_step("S03").empty());
  CHECK(plan.phase_of(plan.first_held_step("S02")) == "shots_proxy");
}

TEST_CASE("plan: a stop before the world state holds the later scenes through the across edges", "[plan]") {
  // A plausibility stop in S01: S01's world state cannot be tracked, and each later scene's
  // world state starts from the one before.
  const Plan plan(shipped_graph(), k_scenes, {stop(5, "S01", "plausibility-auditor")});
  CHECK_FALSE(plan.may_run(unit("world-state-tracker", "S01")));
  CHECK_FALSE(plan.may_run(unit("shot-planner", "S01")));
  CHECK_FALSE(plan.may_run(unit("shots_final.generate", "S01")));
  // Steps of S01 that do not read what the stop holds go on.
  CHECK(plan.may_run(unit("research-agent", "S01")));
  CHECK(plan.may_run(unit("cultural-check", "S01")));
  for (const char* scene : {"S02", "S03"}) {
    CAPTURE(scene);
    CHECK(plan.may_run(unit("research-agent", scene)));              // reads no earlier scene
    CHECK_FALSE(plan.may_run(unit("plausibility-auditor", scene)));  // reads the previous WORLD_STATE
    CHECK_FALSE(plan.may_run(unit("world-state-tracker", scene)));
    CHECK_FALSE(plan.may_run(unit("shots_proxy.generate", scene)));
    const auto s = plan.status(unit("shot-planner", scene), {});
    CHECK(s.state == UnitState::blocked);
    CHECK(s.stop_seq == 5);
  }
  // Project-wide phases run before the scenes and read none of theirs past psychology.
  CHECK(plan.may_run(unit("character-psychology", "S02")));
  CHECK(plan.may_run(unit("narrative-red-team")));
  CHECK(plan.first_held_step("S02") == "plausibility-auditor");
}

TEST_CASE("plan: a stop after the world state holds only its own scene", "[plan]") {
  const Plan plan(shipped_graph(), k_scenes, {stop(9, "S01", "shot-planner")});
  CHECK_FALSE(plan.may_run(unit("cost_proxy.cost-optimizer", "S01")));
  CHECK_FALSE(plan.may_run(unit("shots_proxy.prompt-packager", "S01")));
  for (const char* step : {"plausibility-auditor", "world-state-tracker", "shot-planner", "shots_final.qc-grader"}) {
    CAPTURE(step);
    CHECK(plan.may_run(unit(step, "S02")));
  }
}

TEST_CASE("plan: a scene stop in a project-wide phase holds what reads it across the project", "[plan]") {
  // character-psychology runs per scene in the project pass; the narrative review reads every
  // scene's PSYCH.
  Plan plan(shipped_graph(), k_scenes, {});
  plan.add_stop(stop(3, "S02", "character-psychology"));
  CHECK_FALSE(plan.may_run(unit("narrative-red-team")));
  CHECK_FALSE(plan.may_run(unit("audience-simulator")));
  CHECK(plan.may_run(unit("character-psychology", "S01")));
  CHECK(plan.may_run(unit("story-architect")));
  // Resolving it releases everything.
  plan.set_stops({});
  CHECK(plan.may_run(unit("narrative-red-team")));
  CHECK(plan.blocker(unit("shots_final.generate", "S02")) == nullptr);
}

TEST_CASE("plan: a stop names its step, or the first step of its skill in older records", "[plan]") {
  const auto& graph = shipped_graph();
  CHECK(avps::engine::plan_stop(4, "S01", "", false, "", "continuity-supervisor", "why", graph).step ==
        "continuity-supervisor");
  CHECK(avps::engine::plan_stop(4, "S01", "", false, "cost_final.budget-gates", "budget-gates", "why", graph).step ==
        "cost_final.budget-gates");
  // A stop on the project's budget cap holds the whole project, whatever its scope says.
  const PlanStop cap = avps::engine::plan_stop(4, "S01", "", true, "", "budget-gates", "cap", graph);
  CHECK(cap.scene.empty());
  const Plan plan(graph, k_scenes, {cap});
  CHECK_FALSE(plan.may_run(unit("research-agent", "S03")));
  // A stop of a scene the latest SCENES no longer lists holds nothing.
  const Plan dropped(graph, k_scenes, {stop(8, "S09", "shot-planner")});
  CHECK(dropped.may_run(unit("shot-planner", "S01")));
  CHECK(dropped.whole_project() == nullptr);
}

TEST_CASE("plan: a scene_order phase holds the next scene's task, a parallel one does not", "[plan]") {
  // Without the across edges only the phase's `order` links the scenes: continuity is scene_order
  // in the shipped graph.
  auto graph_with = [](const std::string& order) {
    std::ifstream in(fs::path(AVPS_SOURCE_DATA_DIR) / "policies" / "stage_graph.json");
    nlohmann::json g = nlohmann::json::parse(in);
    nlohmann::json edges = nlohmann::json::array();
    for (const nlohmann::json& e : g["edges"]) {
      if (!e.contains("across")) {
        edges.push_back(e);
      }
    }
    g["edges"] = edges;
    for (nlohmann::json& phase : g["phases"]) {
      if (phase["name"] == "continuity") {
        phase["order"] = order;
      }
    }
    auto parsed = avps::skills::StageGraph::from_json(g);
    REQUIRE(parsed.ok());
    return *parsed;
  };
  const Plan ordered(graph_with("scene_order"), k_scenes, {stop(6, "S01", "world-state-tracker")});
  CHECK_FALSE(ordered.may_run(unit("world-state-tracker", "S02")));
  CHECK_FALSE(ordered.may_run(unit("continuity-supervisor", "S03")));
  CHECK(ordered.status(unit("world-state-tracker", "S03"), {}).stop_seq == 6);
  CHECK(ordered.may_run(unit("plausibility-auditor", "S02")));  // validation is parallel
  const Plan parallel(graph_with("parallel"), k_scenes, {stop(6, "S01", "world-state-tracker")});
  CHECK(parallel.may_run(unit("world-state-tracker", "S02")));
  CHECK(parallel.may_run(unit("continuity-supervisor", "S03")));
  CHECK_FALSE(parallel.may_run(unit("continuity-supervisor", "S01")));
}

TEST_CASE("plan: the first phase each stop holds, as avps gate --require reads it", "[plan]") {
  const auto& graph = shipped_graph();
  auto phase_index = [&](const std::string& name) {
    for (size_t i = 0; i < graph.phases.size(); ++i) {
      if (graph.phases[i].name == name) {
        return std::optional<size_t>(i);
      }
    }
    return std::optional<size_t>();
  };
  // A world-state stop in S02 is raised in continuity, but S03's validation reads S02's world state.
  const Plan scenes(graph, k_scenes,
                    {stop(4, "S02", "world-state-tracker"), stop(8, "S01", "shots_final.qc-grader"),
                     stop(9, "S77", "shot-planner")});
  CHECK(scenes.first_phase_held_by(4) == phase_index("validation"));
  // A frozen final render holds from the final renders: its scene's proxies are not held.
  CHECK(scenes.first_phase_held_by(8) == phase_index("shots_final"));
  // A scene the latest SCENES dropped holds nothing that runs; an unknown stop holds nothing.
  CHECK_FALSE(scenes.first_phase_held_by(9).has_value());
  CHECK_FALSE(scenes.first_phase_held_by(1234).has_value());
  // A stop holding the whole project holds from the first phase.
  const Plan whole(graph, k_scenes, {stop(3, "", "character-lock")});
  CHECK(whole.first_phase_held_by(3) == std::optional<size_t>(0));
}

TEST_CASE("plan: a lock's stop holds its entity and the scenes that show it", "[plan]") {
  const auto& graph = shipped_graph();
  const std::vector<std::string> scenes = {"S01", "S02", "S03", "S04"};
  // The BREAKDOWN's rows: MARA in S01 and S03, the DOCK set in S02, the COTTAGE set in S04.
  const nlohmann::json breakdown = {
      {"rows",
       {{{"scene_id", "S01"}, {"lock_requirements", {"CHAR_MARA", "VOICE_MARA"}}},
        {{"scene_id", "S02"}, {"lock_requirements", {"SET_DOCK"}}},
        {{"scene_id", "S03"}, {"lock_requirements", {"CHAR_MARA", "VOICE_MARA", "SET_DOCK"}}},
        {{"scene_id", "S04"}, {"lock_requirements", {"SET_THE_KEEPER_S_COTTAGE"}}},
        {{"scene_id", "S05"}, {"lock_requirements", {"not-a-lock", 7}}}}}};
  const avps::engine::EntityScenes shown = avps::engine::entity_scenes_of(breakdown);
  CHECK(shown.at("MARA") == std::vector<std::string>{"S01", "S03"});
  CHECK(shown.at("THE_KEEPER_S_COTTAGE") == std::vector<std::string>{"S04"});
  CHECK(shown.size() == 3);

  auto entity_unit = [](const std::string& step, const std::string& entity) {
    PlanUnit u = unit(step);
    u.entity = entity;
    return u;
  };
  // The COTTAGE set lock failed for good: S04 waits from the steps that read the set lock (its
  // continuity), and the continuity phase runs in scene order, so no later scene passes it.
  const PlanStop set_stop = avps::engine::plan_stop(21, "", "THE_KEEPER_S_COTTAGE", false, "set-lock", "set-lock",
                                                    "set-lock THE_KEEPER_S_COTTAGE failed its gate", graph);
  CHECK(set_stop.entity == "THE_KEEPER_S_COTTAGE");
  const Plan set_plan(graph, scenes, {set_stop}, shown);
  CHECK(set_plan.whole_project() == nullptr);
  CHECK(set_plan.may_run(entity_unit("set-lock", "THE_KEEPER_S_COTTAGE")));  // its origin: restated
  CHECK(set_plan.status(entity_unit("set-lock", "THE_KEEPER_S_COTTAGE"), {}).stop_seq == 21);
  CHECK(set_plan.may_run(entity_unit("set-lock", "DOCK")));
  CHECK(set_plan.may_run(entity_unit("character-lock", "MARA")));
  for (const char* scene : {"S01", "S02", "S03"}) {
    CAPTURE(scene);
    for (const char* step : {"plausibility-auditor", "continuity-supervisor", "shot-planner", "shots_final.generate"}) {
      CAPTURE(step);
      CHECK(set_plan.may_run(unit(step, scene)));
    }
  }
  CHECK(set_plan.may_run(unit("world-state-tracker", "S04")));  // reads no lock
  CHECK_FALSE(set_plan.may_run(unit("continuity-supervisor", "S04")));
  CHECK_FALSE(set_plan.may_run(unit("shots_proxy.prompt-packager", "S04", "S04_SH01")));
  CHECK(set_plan.first_held_step("S04") == "continuity-supervisor");
  CHECK(set_plan.first_phase_held_by(21) == std::optional<size_t>(1));  // its own lock phase

  // MARA's character lock: her voice lock, the scenes she is in, and the narrative review (it reads
  // every character lock) are held; the DOCK set's lock and S02's psychology are not.
  const Plan char_plan(graph, scenes, {avps::engine::plan_stop(22, "", "MARA", false, "character-lock",
                                                               "character-lock", "drifted", graph)},
                       shown);
  CHECK_FALSE(char_plan.may_run(entity_unit("voice-lock", "MARA")));
  CHECK(char_plan.may_run(entity_unit("set-lock", "DOCK")));
  CHECK(char_plan.may_run(entity_unit("character-lock", "ELIAS")));  // an entity the BREAKDOWN does not name
  CHECK_FALSE(char_plan.may_run(unit("character-psychology", "S01")));
  CHECK_FALSE(char_plan.may_run(unit("character-psychology", "S03")));
  CHECK(char_plan.may_run(unit("character-psychology", "S02")));
  CHECK_FALSE(char_plan.may_run(unit("narrative-red-team")));
  CHECK(char_plan.may_run(unit("research-agent", "S02")));

  // A stop of a whole per-entity step (no entity known) holds every entity's unit of what follows.
  const Plan older(graph, scenes, {stop(23, "", "character-lock")}, shown);
  CHECK(older.whole_project() != nullptr);
}
