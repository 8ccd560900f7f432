// The skill registry: the shipped definitions load and validate clean, a project's overrides are
// used and marked, and every kind of broken definition becomes a violation naming its file and
// the culprit (a schema, a field, a skill and kind), never a crash.

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/skills/registry.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using avps::core::Violation;
using avps::skills::Origin;
using avps::skills::Registry;
using nlohmann::json;

fs::path registry_data_root() {
  return fs::path(AVPS_SOURCE_DATA_DIR);
}

json shipped_json(const std::string& relative) {
  auto text = avps::core::read_file(registry_data_root() / relative);
  REQUIRE(text.ok());
  auto parsed = avps::core::parse_json(*text, relative);
  REQUIRE(parsed.ok());
  return std::move(parsed).value();
}

void write_registry_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  REQUIRE(
      avps::core::write_file_atomic(path, text, avps::core::Overwrite::yes, avps::core::Durability::cached)
          .ok());
}

// A project folder holding skills/<name>/skill.json: the shipped one, changed by `mutate`.
void override_skill(const fs::path& project, const std::string& name,
                    const std::function<void(json&)>& mutate) {
  json skill = shipped_json("skills/" + name + "/skill.json");
  mutate(skill);
  write_registry_file(project / "skills" / name / "skill.json", skill.dump(2));
}

void override_graph(const fs::path& project, const std::function<void(json&)>& mutate) {
  json graph = shipped_json("policies/stage_graph.json");
  mutate(graph);
  write_registry_file(project / "policies" / "stage_graph.json", graph.dump(2));
}

Registry load_with(const fs::path& project) {
  auto registry = Registry::load(registry_data_root(), &project);
  REQUIRE(registry.ok());
  return std::move(registry).value();
}

std::string describe_violations(const std::vector<Violation>& violations) {
  std::string out;
  for (const Violation& v : violations) {
    out += v.subject + ": " + v.message + "  [" + v.rule + "]\n";
  }
  return out;
}

// The violations of `rule`.
std::vector<Violation> with_rule(const std::vector<Violation>& violations, const std::string& rule) {
  std::vector<Violation> out;
  std::copy_if(violations.begin(), violations.end(), std::back_inserter(out),
               [&](const Violation& v) { return v.rule == rule; });
  return out;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("the shipped skills and stage graph load and validate without a violation", "[skills]") {
  auto registry = Registry::load(registry_data_root(), nullptr);
  REQUIRE(registry.ok());
  CHECK(registry->skills().size() == 23);
  CHECK(registry->broken().empty());
  REQUIRE(registry->stage_graph() != nullptr);
  CHECK(registry->stage_graph()->source.subject == "policies/stage_graph.json");

  const auto violations = registry->validate();
  INFO(describe_violations(violations));
  CHECK(violations.empty());

  const auto* plaus = registry->find("plausibility-auditor");
  REQUIRE(plaus != nullptr);
  CHECK(plaus->definition.origin == Origin::shipped);
  CHECK(plaus->definition.subject == "skills/plausibility-auditor/skill.json");
  CHECK(plaus->prompt.subject == "skills/plausibility-auditor/prompt.md");
  CHECK_FALSE(plaus->prompt_text.empty());
  CHECK(plaus->layer == "validation");
  REQUIRE(plaus->tier.has_value());
  CHECK(plaus->tier->default_tier == "t2");
  CHECK(plaus->tier->escalation == std::vector<std::string>{"t3"});
  CHECK(plaus->max_output_tokens == 4000);
  CHECK(plaus->gate_rules.size() == 2);
  CHECK(plaus->inputs.front().kind == "SCENES");
  CHECK(plaus->inputs.front().slice == "scene_row");

  const auto* packager = registry->find("prompt-packager");
  REQUIRE(packager != nullptr);
  CHECK(packager->executor == avps::skills::Executor::builtin);
  CHECK(packager->builtin == "assemble_genpack");
  CHECK_FALSE(packager->tier.has_value());
}

TEST_CASE("a project's override replaces the shipped skill and is marked as the project's", "[skills]") {
  avps::testing::TempDir project;
  override_skill(project.path(), "plausibility-auditor", [](json& s) { s["max_output_tokens"] = 5000; });
  write_registry_file(project.path() / "skills" / "plausibility-auditor" / "prompt.md", "# my plausibility prompt\n");
  write_registry_file(project.path() / "skills" / "story-architect" / "prompt.md", "# my story prompt\n");

  Registry registry = load_with(project.path());
  INFO(describe_violations(registry.validate()));
  CHECK(registry.validate().empty());
  CHECK(registry.skills().size() == 23);

  const auto* plaus = registry.find("plausibility-auditor");
  REQUIRE(plaus != nullptr);
  CHECK(plaus->max_output_tokens == 5000);
  CHECK(plaus->definition.origin == Origin::project);
  CHECK(plaus->definition.subject ==
        project.path().generic_string() + "/skills/plausibility-auditor/skill.json");
  CHECK(plaus->prompt.origin == Origin::project);
  CHECK(plaus->prompt_text == "# my plausibility prompt\n");
  CHECK(plaus->overridden());

  // Only the prompt: the shipped definition with the project's prompt.
  const auto* story = registry.find("story-architect");
  REQUIRE(story != nullptr);
  CHECK(story->definition.origin == Origin::shipped);
  CHECK(story->prompt.origin == Origin::project);
  CHECK(story->prompt_text == "# my story prompt\n");

  const auto* other = registry.find("qc-grader");
  REQUIRE(other != nullptr);
  CHECK_FALSE(other->overridden());
}

TEST_CASE("an output naming a schema that exists nowhere is a violation naming the schema", "[skills]") {
  avps::testing::TempDir project;
  override_skill(project.path(), "plausibility-auditor",
                 [](json& s) { s["outputs"][0]["schema"] = "plausibility.schema.json"; });

  const auto violations = with_rule(load_with(project.path()).validate(), "skill.output_schema");
  REQUIRE(violations.size() == 1);
  CHECK(violations[0].subject == project.path().generic_string() + "/skills/plausibility-auditor/skill.json");
  CHECK(contains(violations[0].message, "plausibility.schema.json"));

  SECTION("the project's own schemas/ supplies it") {
    write_registry_file(project.path() / "schemas" / "plausibility.schema.json",
          shipped_json("schemas/plaus.schema.json").dump(2));
    write_registry_file(project.path() / "schemas" / "common.schema.json",
          shipped_json("schemas/common.schema.json").dump(2));
    const auto all = load_with(project.path()).validate();
    INFO(describe_violations(all));
    CHECK(all.empty());
  }
  SECTION("a schema file that does not compile is named with its problem") {
    write_registry_file(project.path() / "schemas" / "plausibility.schema.json", "{\"type\": 12}");
    const auto broken = with_rule(load_with(project.path()).validate(), "skill.output_schema");
    REQUIRE(broken.size() == 1);
    CHECK(contains(broken[0].message, "schemas/plausibility.schema.json"));
    CHECK(contains(broken[0].message, "does not load"));
  }
}

TEST_CASE("a gate rule reading a field its output schema lacks is a violation naming field and schema",
          "[skills]") {
  avps::testing::TempDir project;
  override_skill(project.path(), "plausibility-auditor",
                 [](json& s) { s["gate"]["rules"][0]["field"] = "/total_scroe"; });

  const auto all = load_with(project.path()).validate();
  const auto violations = with_rule(all, "skill.gate_field");
  INFO(describe_violations(all));
  REQUIRE(violations.size() == 1);
  CHECK(contains(violations[0].message, "/total_scroe"));
  CHECK(contains(violations[0].message, "schemas/plaus.schema.json"));
  CHECK(all.size() == 1);  // nothing else is wrong with it
}

TEST_CASE("the fields an input reads must be fields of its kind's schema, on whole artifacts", "[skills]") {
  {
    avps::testing::TempDir project;
    override_skill(project.path(), "character-psychology", [](json& s) {
      for (json& input : s["inputs"]) {
        if (input["kind"] == "CHAR_LOCK") {
          input["fields"] = {"/behavioral_baseline", "/behavioural_baseline", "/canonical_appearance/age_range"};
        }
      }
    });
    const auto all = load_with(project.path()).validate();
    const auto violations = with_rule(all, "skill.fields");
    INFO(describe_violations(all));
    REQUIRE(violations.size() == 1);
    CHECK(contains(violations[0].message, "input CHAR_LOCK field /behavioural_baseline is not a field of char_lock.schema.json"));
    CHECK(all.size() == 1);
  }
  {
    avps::testing::TempDir project;
    override_skill(project.path(), "shot-planner", [](json& s) {
      for (json& input : s["inputs"]) {
        if (input["kind"] == "STYLE_LOCK") {
          input["fields"] = {"/palette", "/grading"};  // STYLE_LOCK is written by avps init: its own schema
        }
      }
    });
    const auto all = load_with(project.path()).validate();
    INFO(describe_violations(all));
    REQUIRE(with_rule(all, "skill.fields").size() == 1);
    CHECK(contains(with_rule(all, "skill.fields")[0].message, "/grading is not a field of style_lock.schema.json"));
  }
  {
    avps::testing::TempDir project;
    override_skill(project.path(), "character-psychology", [](json& s) {
      for (json& input : s["inputs"]) {
        if (input["kind"] == "SCENES") {
          input["fields"] = {"/rows"};
        }
      }
    });
    const auto all = load_with(project.path()).validate();
    INFO(describe_violations(all));
    REQUIRE(with_rule(all, "skill.fields").size() == 1);
    CHECK(contains(with_rule(all, "skill.fields")[0].message, "reads rows; fields apply to whole artifacts only"));
  }
}

TEST_CASE("a check the engine evaluates is refused where it would have nothing to evaluate", "[skills]") {
  avps::testing::TempDir project;
  override_skill(project.path(), "shot-planner",
                 [](json& s) { s["gate"]["checks"].push_back("genpack_changed_on_regen"); });
  const auto all = load_with(project.path()).validate();
  INFO(describe_violations(all));
  REQUIRE(with_rule(all, "skill.check").size() == 1);
  CHECK(contains(with_rule(all, "skill.check")[0].message, "this skill writes none: nothing would evaluate it"));
  CHECK(all.size() == 1);
}

TEST_CASE("feedback on an input of a skill that writes no GenPack is refused: nothing reads it there", "[skills]") {
  avps::testing::TempDir project;
  override_skill(project.path(), "shot-planner", [](json& s) { s["inputs"][0]["feedback"] = true; });
  const auto all = load_with(project.path()).validate();
  INFO(describe_violations(all));
  REQUIRE(with_rule(all, "skill.feedback").size() == 1);
  CHECK(contains(with_rule(all, "skill.feedback")[0].message, "is marked feedback"));
  CHECK(all.size() == 1);
}

TEST_CASE("gate rules whose values or types cannot fit their field are violations", "[skills]") {
  avps::testing::TempDir project;
  override_skill(project.path(), "storyboard-generator", [](json& s) {
    s["gate"]["rules"][0]["values"] = json::array({"Adjust", "Redo"});
  });
  override_skill(project.path(), "dialogue-consistency-check", [](json& s) {
    s["gate"]["rules"][0]["field"] = "/distinctiveness_score/*/character";  // a string, compared as a number
  });
  const auto violations = with_rule(load_with(project.path()).validate(), "skill.gate_value");
  INFO(describe_violations(violations));
  REQUIRE(violations.size() == 2);
  CHECK(contains(violations[0].message, "/distinctiveness_score/*/character"));
  CHECK(contains(violations[1].message, "\"Redo\""));
}

TEST_CASE("a required input that no earlier step produces is a dangling input naming skill, kind and phase",
          "[skills]") {
  avps::testing::TempDir project;

  SECTION("a project skill requires a kind only an on-demand skill writes") {
    override_skill(project.path(), "story-architect", [](json& s) {
      s["inputs"].push_back({{"kind", "REGEN_RULES"}, {"required", true}, {"slice", "latest"}});
    });
    const auto violations = with_rule(load_with(project.path()).validate(), "graph.dangling_input");
    REQUIRE(violations.size() == 1);
    CHECK(violations[0].subject == "policies/stage_graph.json");
    CHECK(contains(violations[0].message, "story-architect"));
    CHECK(contains(violations[0].message, "REGEN_RULES"));
    CHECK(contains(violations[0].message, "phase narrative"));
  }
  SECTION("a project stage graph drops the phase that writes SCENES") {
    override_graph(project.path(), [](json& g) { g["phases"].erase(0); });
    Registry registry = load_with(project.path());
    const auto violations = with_rule(registry.validate(), "graph.dangling_input");
    REQUIRE_FALSE(violations.empty());
    CHECK(violations[0].subject == project.path().generic_string() + "/policies/stage_graph.json");
    CHECK(std::any_of(violations.begin(), violations.end(), [](const Violation& v) {
      return contains(v.message, "character-lock") && contains(v.message, "SCENES") &&
             contains(v.message, "phase locks");
    }));
    // The skills it no longer stages would never run.
    CHECK(with_rule(registry.validate(), "graph.staging").size() == 2);
  }
}

TEST_CASE("edges that loop back within one context are a cycle, named step by step", "[skills]") {
  avps::testing::TempDir project;
  override_graph(project.path(), [](json& g) {
    g["edges"].push_back({{"from", "script-breakdown"}, {"kind", "BREAKDOWN"}, {"to", "story-architect"}});
  });
  const auto all = load_with(project.path()).validate();
  const auto cycles = with_rule(all, "graph.cycle");
  INFO(describe_violations(all));
  REQUIRE(cycles.size() == 1);
  CHECK(contains(cycles[0].message, "story-architect -> script-breakdown -> story-architect"));
  CHECK_FALSE(
      with_rule(all, "graph.edge").empty());  // it also runs backwards, into a skill not reading BREAKDOWN
}

TEST_CASE("find_cycle returns a cycle's path and nothing for an acyclic graph", "[skills]") {
  using avps::skills::find_cycle;
  CHECK(find_cycle({"a", "b", "c"}, {{"a", "b"}, {"b", "c"}}).empty());
  CHECK(find_cycle({"a", "b", "c"}, {{"a", "b"}, {"b", "c"}, {"c", "a"}}) ==
        std::vector<std::string>{"a", "b", "c", "a"});
  CHECK(find_cycle({"a"}, {{"a", "a"}}) == std::vector<std::string>{"a", "a"});
  CHECK(find_cycle({}, {{"x", "y"}, {"y", "x"}}) == std::vector<std::string>{"x", "y", "x"});
}

TEST_CASE("a skill.json that is not JSON is a violation and the other skills still load", "[skills]") {
  avps::testing::TempDir project;
  write_registry_file(project.path() / "skills" / "plausibility-auditor" / "skill.json",
        "{\"name\": \"plausibility-auditor\",");

  Registry registry = load_with(project.path());
  const auto all = registry.validate();
  const auto violations = with_rule(all, "skill.load");
  REQUIRE(violations.size() == 1);
  CHECK(violations[0].subject == project.path().generic_string() + "/skills/plausibility-auditor/skill.json");
  CHECK(contains(violations[0].message, "not JSON"));
  CHECK(registry.find("plausibility-auditor") == nullptr);
  CHECK(registry.broken().count("plausibility-auditor") == 1);
  CHECK(registry.skills().size() == 22);
  // What depends on the broken skill is not reported again as unknown.
  INFO(describe_violations(all));
  CHECK(with_rule(all, "graph.unknown_skill").empty());
}

TEST_CASE("a stage graph that is not JSON or breaks its schema is a violation, not a crash", "[skills]") {
  avps::testing::TempDir project;
  SECTION("not JSON") {
    write_registry_file(project.path() / "policies" / "stage_graph.json", "[");
    Registry registry = load_with(project.path());
    CHECK(registry.stage_graph() == nullptr);
    CHECK(with_rule(registry.validate(), "graph.load").size() == 1);
  }
  SECTION("schema") {
    override_graph(project.path(), [](json& g) { g["phases"][0]["fan_out"] = "per_galaxy"; });
    Registry registry = load_with(project.path());
    CHECK(registry.stage_graph() == nullptr);
    const auto violations = with_rule(registry.validate(), "graph.schema");
    REQUIRE_FALSE(violations.empty());
    CHECK(contains(violations[0].message, "/phases/0/fan_out"));
  }
}

// regen.remedies and regen.on_exhausted are carried out by production; what it cannot carry out is
// refused where the graph is read (no silent field).
TEST_CASE("the regen policy's remedies are a subset in the spec's order, and exhaustion is a hard stop", "[skills]") {
  for (const json& allowed : {json{"simplify", "escalate"}, json{"simplify"}, json{"escalate"}}) {
    avps::testing::TempDir project;
    override_graph(project.path(), [&allowed](json& g) { g["regen"]["remedies"] = allowed; });
    Registry registry = load_with(project.path());
    INFO(allowed.dump());
    CHECK(registry.stage_graph() != nullptr);
    CHECK(with_rule(registry.validate(), "graph.schema").empty());
  }
  for (const auto& [key, refused] :
       std::vector<std::pair<std::string, json>>{{"remedies", json{"escalate", "simplify"}},
                                                 {"remedies", json::array()},
                                                 {"remedies", json{"retry"}},
                                                 {"on_exhausted", "retry_forever"}}) {
    avps::testing::TempDir project;
    override_graph(project.path(), [&](json& g) { g["regen"][key] = refused; });
    Registry registry = load_with(project.path());
    INFO(key << " " << refused.dump());
    CHECK(registry.stage_graph() == nullptr);
    const auto violations = with_rule(registry.validate(), "graph.schema");
    REQUIRE_FALSE(violations.empty());
    CHECK(contains(describe_violations(violations), "/regen/" + key));
  }
}

TEST_CASE("the stage graph names the skills the engine works with, by role, and each must exist", "[skills]") {
  avps::testing::TempDir project;
  SECTION("a role naming no skill is a violation") {
    override_graph(project.path(), [](json& g) { g["roles"]["grader"] = "qc-judge"; });
    const auto violations = with_rule(load_with(project.path()).validate(), "graph.unknown_skill");
    REQUIRE(violations.size() == 1);
    CHECK(contains(violations[0].message, "roles.grader names skill qc-judge"));
  }
  SECTION("a per-shot phase must list the packager, a render and the grader") {
    override_graph(project.path(), [](json& g) {
      for (json& phase : g["phases"]) {
        if (phase["name"] == "shots_final") {
          json kept = json::array();
          for (const json& step : phase["steps"]) {
            if (step.value("skill", "") != "qc-grader") {
              kept.push_back(step);
            }
          }
          phase["steps"] = kept;
        }
      }
    });
    const auto violations = with_rule(load_with(project.path()).validate(), "graph.per_shot_steps");
    REQUIRE(violations.size() == 1);
    CHECK(contains(violations[0].message, "phase shots_final fans out per_shot"));
    CHECK(contains(violations[0].message, "the grader (roles.grader: qc-grader)"));
  }
  SECTION("a graph without roles (format 1) breaks the schema") {
    override_graph(project.path(), [](json& g) {
      g.erase("roles");
      g["format_version"] = 1;
    });
    Registry registry = load_with(project.path());
    CHECK(registry.stage_graph() == nullptr);
    const auto violations = with_rule(registry.validate(), "graph.schema");
    REQUIRE_FALSE(violations.empty());
    CHECK(contains(describe_violations(violations), "roles"));
  }
  SECTION("the shipped graph's roles and walk passes") {
    Registry registry = load_with(project.path());
    REQUIRE(registry.stage_graph() != nullptr);
    const avps::skills::StageGraph& graph = *registry.stage_graph();
    CHECK(graph.role("grader") == "qc-grader");
    CHECK(graph.role("no-such-part").empty());
    std::vector<std::string> passes;
    const std::vector<int> walk = graph.walk_passes();
    for (size_t i = 0; i < graph.phases.size(); ++i) {
      passes.push_back(graph.phases[i].name + ":" + std::to_string(walk[i]));
    }
    // psychology is per scene but runs in the project-wide pass; the cost loops in production.
    CHECK(passes == std::vector<std::string>{"narrative:0", "locks:0", "psychology:0", "narrative_review:0",
                                             "validation:1", "continuity:1", "planning:1", "cost_proxy:2",
                                             "shots_proxy:2", "cost_final:2", "shots_final:2"});
  }
  SECTION("a phase declared in an earlier pass than the one before it runs in that later pass") {
    override_graph(project.path(), [](json& g) { g["phases"][5]["walk"] = "project"; });
    Registry registry = load_with(project.path());
    REQUIRE(registry.stage_graph() != nullptr);
    CHECK(registry.stage_graph()->phases[5].name == "continuity");
    CHECK(registry.stage_graph()->walk_passes()[5] == 1);
  }
}

TEST_CASE("the stage graph's triggers are parsed, and one naming an unknown skill or rule is refused", "[skills]") {
  avps::testing::TempDir project;
  SECTION("the shipped triggers: QC continuity failures re-audit the scene, lock drift re-runs the lock") {
    Registry registry = load_with(project.path());
    REQUIRE(registry.stage_graph() != nullptr);
    const std::vector<avps::skills::Trigger>& triggers = registry.stage_graph()->triggers;
    REQUIRE(triggers.size() == 3);
    CHECK(triggers[0].id == "qc_continuity");
    CHECK(triggers[0].rules == std::vector<std::string>{"world_state_contradiction"});
    CHECK(triggers[0].skill == "continuity-supervisor");
    CHECK(triggers[0].scope == "scene");
    CHECK(triggers[0].after_failed_shots == 1);
    CHECK(triggers[1].skill == "character-lock");
    CHECK(triggers[1].scope == "entity");
    CHECK(triggers[1].after_failed_shots == 2);
    CHECK(with_rule(registry.validate(), "graph.trigger").empty());
  }
  SECTION("a graph without triggers has none") {
    override_graph(project.path(), [](json& g) { g.erase("triggers"); });
    Registry registry = load_with(project.path());
    REQUIRE(registry.stage_graph() != nullptr);
    CHECK(registry.stage_graph()->triggers.empty());
    CHECK(registry.validate().empty());
  }
  SECTION("a trigger running a skill that does not exist") {
    override_graph(project.path(), [](json& g) { g["triggers"][0]["skill"] = "continuity-auditor"; });
    const auto violations = with_rule(load_with(project.path()).validate(), "graph.unknown_skill");
    REQUIRE(violations.size() == 1);
    CHECK(contains(violations[0].message, "trigger qc_continuity runs skill continuity-auditor"));
  }
  SECTION("a trigger counting a rule the grader's QC_BATCH cannot hold") {
    override_graph(project.path(), [](json& g) { g["triggers"][0]["rules"] = {"world_state_drift"}; });
    const auto violations = with_rule(load_with(project.path()).validate(), "graph.trigger");
    REQUIRE(violations.size() == 1);
    CHECK(contains(violations[0].message, "rule world_state_drift, which the grader's QC_BATCH never holds"));
  }
  SECTION("a trigger whose skill cannot run for its scope, or an id used twice") {
    override_graph(project.path(), [](json& g) {
      g["triggers"][1]["scope"] = "scene";  // character-lock runs per character, not per scene
      g["triggers"][2]["id"] = g["triggers"][0]["id"];
    });
    const auto violations = with_rule(load_with(project.path()).validate(), "graph.trigger");
    REQUIRE(violations.size() == 2);
    CHECK(contains(describe_violations(violations), "runs character-lock (scope character) for a scene"));
    CHECK(contains(describe_violations(violations), "trigger qc_continuity is declared twice"));
  }
  SECTION("a trigger missing its threshold breaks the schema") {
    override_graph(project.path(), [](json& g) { g["triggers"][0].erase("after_failed_shots"); });
    Registry registry = load_with(project.path());
    CHECK(registry.stage_graph() == nullptr);
    CHECK(contains(describe_violations(with_rule(registry.validate(), "graph.schema")), "after_failed_shots"));
  }
}

TEST_CASE("a skill named differently from its folder is a violation", "[skills]") {
  avps::testing::TempDir project;
  override_skill(project.path(), "plausibility-auditor", [](json& s) { s["name"] = "plausibility-check"; });
  const auto violations = with_rule(load_with(project.path()).validate(), "skill.name");
  REQUIRE(violations.size() == 1);
  CHECK(contains(violations[0].message, "plausibility-check"));
  CHECK(contains(violations[0].message, "plausibility-auditor"));
}

TEST_CASE("a project skill breaking skill.schema.json is a violation per problem and is left out",
          "[skills]") {
  avps::testing::TempDir project;
  override_skill(project.path(), "qc-grader", [](json& s) {
    s["layer"] = "marketing";
    s.erase("tier");
  });
  Registry registry = load_with(project.path());
  const auto violations = with_rule(registry.validate(), "skill.schema");
  INFO(describe_violations(violations));
  CHECK(violations.size() >= 2);
  CHECK(std::any_of(violations.begin(), violations.end(),
                    [](const Violation& v) { return contains(v.message, "/layer"); }));
  CHECK(registry.find("qc-grader") == nullptr);
}

TEST_CASE("a new project skill needs a prompt and a place in the stage graph", "[skills]") {
  avps::testing::TempDir project;
  json skill = shipped_json("skills/plausibility-auditor/skill.json");
  skill["name"] = "tone-check";
  skill["outputs"] = json::array({{{"kind", "AUDIENCE"}, {"schema", "audience.schema.json"}}});
  skill["gate"]["rules"] = json::array();
  write_registry_file(project.path() / "skills" / "tone-check" / "skill.json", skill.dump(2));
  write_registry_file(project.path() / "skills" / "tone-check" / "prompt.md", "  \n");

  Registry registry = load_with(project.path());
  REQUIRE(registry.find("tone-check") != nullptr);
  const auto all = registry.validate();
  INFO(describe_violations(all));
  CHECK(with_rule(all, "skill.prompt").size() == 1);
  CHECK(with_rule(all, "graph.staging").size() == 1);
  const auto writers = with_rule(all, "skill.writer");  // audience-simulator writes AUDIENCE already
  REQUIRE(writers.size() == 1);
  CHECK(contains(writers[0].subject, "tone-check"));
}

TEST_CASE("config references must name a setting of project.schema.json with an acceptable default",
          "[skills]") {
  avps::testing::TempDir project;
  override_skill(project.path(), "plausibility-auditor", [](json& s) {
    s["gate"]["rules"][0]["value"] = {{"config", "/thresholds/plausibility"}, {"default", 7}};
    s["loop_policy"]["on_fail"]["max_revisions"] = {{"config", "/regen/max_rounds"}, {"default", 99}};
  });
  const auto violations = with_rule(load_with(project.path()).validate(), "skill.config_ref");
  INFO(describe_violations(violations));
  REQUIRE(violations.size() == 2);
  CHECK(contains(violations[0].message, "/thresholds/plausibility"));
  CHECK(contains(violations[1].message, "/regen/max_rounds"));
  CHECK(contains(violations[1].message, "99"));
}

TEST_CASE("loading fails only when the data folder or the project folder is unusable", "[skills]") {
  avps::testing::TempDir empty;
  auto no_data = Registry::load(empty.path(), nullptr);
  REQUIRE_FALSE(no_data.ok());
  CHECK(no_data.error().code == avps::ErrorCode::not_found);

  const fs::path missing = empty.path() / "no-such-project";
  auto no_project = Registry::load(registry_data_root(), &missing);
  REQUIRE_FALSE(no_project.ok());
  CHECK(contains(no_project.error().message, "no-such-project"));
}

TEST_CASE("similar_names suggests the skill a typo meant", "[skills]") {
  auto registry = Registry::load(registry_data_root(), nullptr);
  REQUIRE(registry.ok());
  auto names = registry->similar_names("plausability-auditor");
  REQUIRE_FALSE(names.empty());
  CHECK(names.front() == "plausibility-auditor");
  CHECK(registry->similar_names("lock").size() == 3);  // character-, set-, voice-lock
  CHECK(registry->similar_names("zzzzzzzz").empty());
}

TEST_CASE("paging must name an all_rows input or a table output of a project-scope model skill", "[skills]") {
  avps::testing::TempDir project;
  SECTION("an input that is not read whole") {
    override_skill(project.path(), "script-breakdown", [](json& s) { s["paging"]["input"] = "BEATS"; });
    const auto violations = with_rule(load_with(project.path()).validate(), "skill.paging");
    REQUIRE(violations.size() == 1);
    CHECK(contains(violations[0].message, "BEATS is not an input with slice all_rows"));
  }
  SECTION("an output without rows") {
    override_skill(project.path(), "story-architect", [](json& s) { s["paging"]["output"] = "BEATS"; });
    const auto violations = with_rule(load_with(project.path()).validate(), "skill.paging");
    REQUIRE(violations.size() == 1);
    CHECK(contains(violations[0].message, "BEATS has no rows"));
  }
  SECTION("a per-scene skill") {
    override_skill(project.path(), "plausibility-auditor", [](json& s) {
      s["paging"] = {{"input", "SCENES"}, {"rows_per_page", 5}};
    });
    const auto violations = with_rule(load_with(project.path()).validate(), "skill.paging");
    REQUIRE(!violations.empty());
    CHECK(contains(violations[0].message, "model skills of scope project"));
  }
}

namespace {

// examples/prop_master's files (a project's own skill, prompt and the schema of its new kind) in
// `project`, with the stage graph step and edges and the packager input that feed PROP_LIST into
// the GenPacks (docs/skills.md, "Adding a skill to a project").
void add_prop_master(const fs::path& project) {
  for (const char* file :
       {"skills/prop-master/skill.json", "skills/prop-master/prompt.md", "schemas/prop_list.schema.json"}) {
    auto text = avps::core::read_file(registry_data_root() / "examples" / "prop_master" / file);
    REQUIRE(text.ok());
    write_registry_file(project / file, *text);
  }
  override_graph(project, [](json& graph) {
    for (json& phase : graph["phases"]) {
      if (phase["name"] == "planning") {
        phase["steps"].push_back({{"id", "prop-master"}, {"skill", "prop-master"}});
      }
    }
    graph["edges"].push_back({{"from", "story-architect"}, {"kind", "SCENES"}, {"to", "prop-master"}});
    graph["edges"].push_back({{"from", "script-breakdown"}, {"kind", "BREAKDOWN"}, {"to", "prop-master"}});
    graph["edges"].push_back({{"from", "prop-master"}, {"kind", "PROP_LIST"}, {"to", "shots_proxy.prompt-packager"}});
    graph["edges"].push_back({{"from", "prop-master"}, {"kind", "PROP_LIST"}, {"to", "shots_final.prompt-packager"}});
  });
  override_skill(project, "prompt-packager", [](json& s) {
    s["inputs"].push_back({{"kind", "PROP_LIST"}, {"required", true}, {"slice", "latest"}, {"into_genpack", true}});
  });
}

}  // namespace

TEST_CASE("a project's new skill with the schema of a new kind validates, and its kind is known from the schema",
          "[skills]") {
  avps::testing::TempDir project;
  add_prop_master(project.path());
  Registry registry = load_with(project.path());
  INFO(describe_violations(registry.validate()));
  CHECK(registry.validate().empty());
  CHECK(registry.skills().size() == 24);
  REQUIRE(registry.declared_kinds().size() == 1);
  CHECK(registry.declared_kinds()[0].kind == "PROP_LIST");
  CHECK(registry.declared_kinds()[0].folder == "production");
  CHECK(registry.declared_kinds()[0].extension == "md");
  CHECK(registry.knows_kind("PROP_LIST"));
  CHECK_FALSE(registry.knows_kind("COSTUME_LIST"));
  const auto* skill = registry.find("prop-master");
  REQUIRE(skill != nullptr);
  CHECK(skill->definition.origin == Origin::project);
  CHECK(skill->project_files_sha256.size() == 64);
  CHECK(registry.find("prompt-packager")->inputs.back().into_genpack);
  CHECK(registry.find("qc-grader")->project_files_sha256.empty());  // shipped: versioned with avps

  // The prompt is part of the files' digest: an edit changes it (and so the steps' keys).
  const std::string before = skill->project_files_sha256;
  write_registry_file(project.path() / "skills" / "prop-master" / "prompt.md", "# prop-master\n\nAnother prompt.\n");
  CHECK(load_with(project.path()).find("prop-master")->project_files_sha256 != before);

  // The request schema of a project's kind is one document: the shipped references inlined.
  auto schema = avps::skills::output_schema(*load_with(project.path()).find("prop-master"), registry.schemas());
  REQUIRE(schema.ok());
  CHECK_FALSE(contains(schema->dump(), "$ref"));
  CHECK((*schema)["properties"]["scene_id"]["pattern"] == "^S(0[1-9]|[1-9][0-9]{1,8})$");
  // A shipped output schema is sent as written (recorded requests keep their hashes).
  auto shipped = avps::skills::output_schema(*registry.find("plausibility-auditor"), registry.schemas());
  REQUIRE(shipped.ok());
  CHECK(*shipped == shipped_json("schemas/plaus.schema.json"));
}

TEST_CASE(
    "a project's kind without its schema, or declared so that names would be ambiguous, is a violation "
    "saying the fix",
    "[skills]") {
  avps::testing::TempDir project;
  add_prop_master(project.path());
  SECTION("the schema missing") {
    fs::remove(project.path() / "schemas" / "prop_list.schema.json");
    const auto all = load_with(project.path()).validate();
    INFO(describe_violations(all));
    const auto kinds = with_rule(all, "skill.kind");
    REQUIRE(kinds.size() == 2);  // prop-master's output, the packager's input
    CHECK(contains(kinds[0].message, "schemas/prop_list.schema.json carrying an x-avps-artifact block"));
    CHECK(contains(kinds[1].message, "schemas/prop_list.schema.json carrying an x-avps-artifact block"));
    CHECK(with_rule(all, "skill.output_schema").size() == 1);
  }
  SECTION("a prefix that shipped names begin with") {
    json schema = shipped_json("examples/prop_master/schemas/prop_list.schema.json");
    schema["x-avps-artifact"]["kind"] = "SCENES_PROPS";
    schema["properties"]["kind"]["const"] = "SCENES_PROPS";
    fs::remove(project.path() / "schemas" / "prop_list.schema.json");
    write_registry_file(project.path() / "schemas" / "scenes_props.schema.json", schema.dump());
    const auto all = with_rule(load_with(project.path()).validate(), "schema.artifact");
    INFO(describe_violations(all));
    REQUIRE_FALSE(all.empty());
    CHECK(contains(all[0].message, "could be read as SCENES names"));
  }
  SECTION("a block without a folder, and a schema file named after another kind") {
    json schema = shipped_json("examples/prop_master/schemas/prop_list.schema.json");
    schema["x-avps-artifact"].erase("folder");
    write_registry_file(project.path() / "schemas" / "prop_list.schema.json", schema.dump());
    schema["x-avps-artifact"]["folder"] = "production";
    write_registry_file(project.path() / "schemas" / "props.schema.json", schema.dump());
    const auto all = with_rule(load_with(project.path()).validate(), "schema.artifact");
    INFO(describe_violations(all));
    REQUIRE(all.size() == 2);
    CHECK(contains(describe_violations(all), "kind, target and folder are all required"));
    CHECK(contains(describe_violations(all), "is looked for in prop_list.schema.json, so its schema must be named so"));
  }
  SECTION("into_genpack on a skill that writes no GenPack, or beside feedback") {
    override_skill(project.path(), "qc-grader", [](json& s) { s["inputs"][0]["into_genpack"] = true; });
    override_skill(project.path(), "prompt-packager", [](json& s) {
      s["inputs"].push_back(
          {{"kind", "PROP_LIST"}, {"required", true}, {"slice", "latest"}, {"into_genpack", true}, {"feedback", true}});
    });
    const auto all = with_rule(load_with(project.path()).validate(), "skill.into_genpack");
    INFO(describe_violations(all));
    REQUIRE(all.size() == 2);
    CHECK(contains(describe_violations(all), "only the skill writing GENPACK pastes"));
    CHECK(contains(describe_violations(all), "and feedback too"));
  }
}
