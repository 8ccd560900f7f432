// The shipped skill definitions (skills/*/skill.json) and the stage graph (policies/stage_graph.json)
// are data the engine trusts: these tests hold them to their schemas, to DESIGN §3, and to each
// other (every input produced before it is read, every loop revising through a skill that can).
// They read the data through the product's registry (avps/skills), as the engine does; the
// registry's own validate() repeats these checks for a project's overrides (test_registry.cpp).

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/json_schema.hpp"
#include "avps/skills/registry.hpp"

namespace {

namespace fs = std::filesystem;
using avps::core::JsonSchema;
using avps::skills::PlannedStep;
using avps::skills::Registry;
using nlohmann::json;

fs::path definitions_data_root() { return fs::path(AVPS_SOURCE_DATA_DIR); }

JsonSchema load_shipped_schema(const std::string& file) {
  auto schema = JsonSchema::load(definitions_data_root() / "schemas" / file);
  if (!schema.ok()) {
    FAIL(schema.error().message);
  }
  return std::move(schema).value();
}

// The shipped definitions through the product's registry, which reads them as the engine does.
const Registry& registry() {
  static const Registry k_registry = [] {
    auto loaded = Registry::load(definitions_data_root(), nullptr);
    if (!loaded.ok()) {
      FAIL(loaded.error().message);
    }
    return std::move(loaded).value();
  }();
  return k_registry;
}

// Folder name -> skill.json, for every shipped skill (a definition that failed to load is in
// registry().broken(), checked by the first test).
std::map<std::string, json> load_skills() {
  std::map<std::string, json> skills;
  for (const auto& [name, skill] : registry().skills()) {
    skills[name] = skill.raw;
  }
  return skills;
}

json load_stage_graph() {
  REQUIRE(registry().stage_graph() != nullptr);
  return registry().stage_graph()->raw;
}

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string issues_of(const JsonSchema& schema, const json& instance) {
  return avps::core::format_schema_issues(schema.name(), schema.validate(instance));
}

std::set<std::string> output_kinds(const json& skill) {
  std::set<std::string> kinds;
  for (const json& output : skill["outputs"]) {
    kinds.insert(output["kind"].get<std::string>());
  }
  return kinds;
}

// Every step of the stage graph in execution order, with its inputs and outputs.
std::vector<PlannedStep> flatten_shipped() {
  REQUIRE(registry().stage_graph() != nullptr);
  return avps::skills::flatten(*registry().stage_graph(), registry().skills());
}

// A minimal valid model skill to mutate in the schema's negative tests.
json minimal_model_skill() {
  return json::parse(R"({
    "format_version": 1, "name": "my-skill", "description": "d", "layer": "narrative",
    "loop": "narrative", "scope": "scene", "executor": "model",
    "tier": {"default": "t2", "escalation": ["t3"], "max_escalations": 1},
    "max_output_tokens": 1000,
    "inputs": [{"kind": "SCENES", "required": true, "slice": "scene_row"}],
    "outputs": [{"kind": "PLAUS", "schema": "plaus.schema.json"}],
    "gate": {"rules": [{"type": "min", "field": "/total_score", "value": 7,
                        "verdict_on_violation": "FAIL", "reason": "r"}], "checks": []},
    "loop_policy": {"on_fail": {"revise": "SCENES", "via": "story-architect", "max_revisions": 2,
                                "then": "escalate"}}
  })");
}

struct ExpectedSkill {
  const char* name;
  const char* layer;
  const char* loop;
  const char* executor;
  const char* tier;  // "" for built-ins
  std::vector<std::string> escalation;
};

// DESIGN §3 and spec/skills.md §0 (MP column; "escalate to Judgment" from t2 = t3).
const std::vector<ExpectedSkill>& expected_skills() {
  static const std::vector<ExpectedSkill> k_expected = {
      {"story-architect", "narrative", "narrative", "model", "t2", {"t3"}},
      {"script-breakdown", "narrative", "narrative", "model", "t1", {"t2"}},
      {"character-psychology", "narrative", "narrative", "model", "t2", {"t3"}},
      {"dialogue-consistency-check", "narrative", "validation", "model", "t2", {"t3"}},
      {"research-agent", "validation", "validation", "model", "research", {}},
      {"plausibility-auditor", "validation", "validation", "model", "t2", {"t3"}},
      {"cultural-check", "validation", "validation", "model", "t2", {"research"}},
      {"narrative-red-team", "validation", "narrative", "model", "t3", {}},
      {"audience-simulator", "validation", "narrative", "model", "t2", {"t3"}},
      {"character-lock", "continuity", "none", "model", "t2", {"t3"}},
      {"set-lock", "continuity", "none", "model", "t2", {"vision"}},
      {"voice-lock", "continuity", "none", "model", "t2", {"t3"}},
      {"world-state-tracker", "continuity", "continuity", "model", "t1", {"t2"}},
      {"continuity-supervisor", "continuity", "continuity", "model", "t2", {"t3"}},
      {"shot-planner", "production", "production", "model", "t2", {"t3"}},
      {"storyboard-generator", "production", "production", "model", "vision", {"t3"}},
      {"prompt-packager", "production", "production", "builtin", "", {}},
      {"qc-grader", "production", "production", "model", "t2", {"vision"}},
      {"regen-analyzer", "production", "production", "model", "t2", {"t3"}},
      {"cost-optimizer", "governance", "cost", "builtin", "", {}},
      {"model-router", "governance", "cost", "builtin", "", {}},
      {"budget-gates", "governance", "cost", "builtin", "", {}},
      {"run-logger", "observability", "observability", "builtin", "", {}},
  };
  return k_expected;
}

}  // namespace

TEST_CASE("every shipped skill definition matches skill.schema.json and is named after its folder",
          "[skills]") {
  JsonSchema schema = load_shipped_schema("skill.schema.json");
  // A definition the registry could not load (unreadable, not JSON, off-schema) is left out of
  // skills() and listed in broken(); its problems are in validate().
  std::string problems;
  for (const auto& v : registry().validate()) {
    problems += v.subject + ": " + v.message + "\n";
  }
  INFO(problems);
  CHECK(registry().broken().empty());
  auto skills = load_skills();
  REQUIRE_FALSE(skills.empty());
  for (const auto& [folder, skill] : skills) {
    INFO("skills/" << folder << "/skill.json");
    auto issues = schema.validate(skill);
    INFO(avps::core::format_schema_issues("skill.json", issues));
    CHECK(issues.empty());
    CHECK(skill.value("name", "") == folder);
  }
}

TEST_CASE("the 23 framework skills ship with the layer, loop, executor and tiers of DESIGN §3",
          "[skills]") {
  auto skills = load_skills();
  CHECK(skills.size() == expected_skills().size());
  for (const ExpectedSkill& expected : expected_skills()) {
    INFO(expected.name);
    REQUIRE(skills.count(expected.name) == 1);
    const json& skill = skills.at(expected.name);
    CHECK(skill["layer"] == expected.layer);
    CHECK(skill["loop"] == expected.loop);
    CHECK(skill["executor"] == expected.executor);
    if (std::string(expected.tier).empty()) {
      CHECK_FALSE(skill.contains("tier"));
    } else {
      REQUIRE(skill.contains("tier"));
      CHECK(skill["tier"]["default"] == expected.tier);
      CHECK(skill["tier"]["escalation"].get<std::vector<std::string>>() == expected.escalation);
    }
  }
}

TEST_CASE("tier escalation climbs one step at a time and allows no more steps than it lists",
          "[skills]") {
  const std::set<std::pair<std::string, std::string>> k_one_step = {
      {"t1", "t2"}, {"t2", "t3"}, {"t2", "vision"}, {"t2", "research"}, {"vision", "t3"},
      {"research", "t3"}};
  for (const auto& [name, skill] : load_skills()) {
    if (!skill.contains("tier")) {
      continue;
    }
    INFO(name);
    std::string previous = skill["tier"]["default"].get<std::string>();
    for (const json& tier : skill["tier"]["escalation"]) {
      CHECK(k_one_step.count({previous, tier.get<std::string>()}) == 1);
      previous = tier.get<std::string>();
    }
    CHECK(skill["tier"]["max_escalations"].get<size_t>() <= skill["tier"]["escalation"].size());
  }
}

TEST_CASE("every output names its schema by the <kind>.schema.json convention, media excepted",
          "[skills]") {
  for (const auto& [name, skill] : load_skills()) {
    for (const json& output : skill["outputs"]) {
      std::string kind = output["kind"].get<std::string>();
      INFO(name << " -> " << kind);
      if (kind == "STORYBOARD") {
        CHECK(output.value("media", "") == "image");
        CHECK_FALSE(output.contains("schema"));
        continue;
      }
      std::string expected = kind == "RUN_LOG" ? "run_log_row.schema.json" : lowercase(kind) + ".schema.json";
      CHECK(output.value("schema", "") == expected);
    }
  }
}

TEST_CASE("each artifact kind is written by exactly one skill", "[skills]") {
  std::map<std::string, std::vector<std::string>> writers;
  for (const auto& [name, skill] : load_skills()) {
    for (const std::string& kind : output_kinds(skill)) {
      writers[kind].push_back(name);
    }
  }
  for (const auto& [kind, names] : writers) {
    INFO(kind);
    CHECK(names.size() == 1);
  }
  // STYLE_LOCK is rendered at init from avps.json; every other kind has a writer.
  CHECK(writers.size() == 26);
  CHECK(writers.count("STYLE_LOCK") == 0);
}

TEST_CASE("loop policies revise an artifact through a skill that writes it", "[skills]") {
  auto skills = load_skills();
  for (const auto& [name, skill] : skills) {
    INFO(name);
    if (skill["executor"] == "model") {
      // A model's output can always fail its schema, so every model skill says what happens then.
      CHECK(skill.contains("loop_policy"));
      CHECK(skill.value("loop_policy", json::object()).contains("on_fail"));
    }
    for (const char* branch_name : {"on_fail", "on_fix"}) {
      if (!skill.contains("loop_policy") || !skill["loop_policy"].contains(branch_name)) {
        continue;
      }
      const json& branch = skill["loop_policy"][branch_name];
      if (!branch.contains("via")) {
        continue;
      }
      std::string via = branch["via"].get<std::string>();
      INFO(branch_name << " via " << via);
      REQUIRE(skills.count(via) == 1);
      CHECK(output_kinds(skills.at(via)).count(branch["revise"].get<std::string>()) == 1);
    }
  }
}

TEST_CASE("outputs written by a post step name a post step the skill declares", "[skills]") {
  int written_by_post_steps = 0;
  for (const auto& [name, skill] : load_skills()) {
    for (const json& output : skill["outputs"]) {
      if (!output.contains("written_by")) {
        continue;
      }
      INFO(name);
      ++written_by_post_steps;
      auto steps = skill.value("post_steps", json::array()).get<std::vector<std::string>>();
      CHECK(std::count(steps.begin(), steps.end(), output["written_by"].get<std::string>()) == 1);
    }
  }
  // world-state-tracker: the model drafts the STATE_DIFF, apply_state_diff writes WORLD_STATE.
  CHECK(written_by_post_steps == 1);
}

TEST_CASE("every configurable threshold refers to a setting of project.schema.json with a valid default",
          "[skills]") {
  const auto* project_schema_file = registry().schemas().find("project.schema.json");
  REQUIRE(project_schema_file != nullptr);
  const json& project_schema = project_schema_file->document;
  std::vector<json> refs;
  for (const auto& [name, skill] : load_skills()) {
    for (const json* ref : avps::skills::find_config_refs(skill)) {
      refs.push_back(*ref);
    }
  }
  json graph = load_stage_graph();
  for (const json* ref : avps::skills::find_config_refs(graph)) {
    refs.push_back(*ref);
  }
  REQUIRE_FALSE(refs.empty());
  for (const json& ref : refs) {
    std::string pointer = ref["config"].get<std::string>();
    INFO(pointer);
    // Walk the schema's nested "properties" along the pointer.
    const json* node = &project_schema;
    json::json_pointer ptr(pointer);
    std::vector<std::string> tokens;
    for (json::json_pointer p = ptr; !p.empty(); p = p.parent_pointer()) {
      tokens.insert(tokens.begin(), p.back());
    }
    for (const std::string& token : tokens) {
      REQUIRE(node->contains("properties"));
      REQUIRE((*node)["properties"].contains(token));
      node = &(*node)["properties"][token];
    }
    // The default must be a value the setting itself would accept.
    auto setting = JsonSchema::compile(*node, pointer, definitions_data_root() / "schemas");
    REQUIRE(setting.ok());
    CHECK(setting->validate(ref["default"]).empty());
  }
}

TEST_CASE("gate rules read fields that their output's schema defines, with values it allows",
          "[skills]") {
  const avps::skills::SchemaSet& schemas = registry().schemas();
  int rules_checked = 0;
  for (const auto& [name, skill] : load_skills()) {
    for (const json& rule : skill["gate"]["rules"]) {
      // The rule's output: the one it names, or the skill's first output with a schema.
      std::string schema_file;
      for (const json& output : skill["outputs"]) {
        bool named = rule.contains("output") && output["kind"] == rule["output"];
        if (output.contains("schema") && (named || (!rule.contains("output") && schema_file.empty()))) {
          schema_file = output["schema"].get<std::string>();
        }
      }
      INFO(name << ": " << rule.dump());
      REQUIRE_FALSE(schema_file.empty());
      std::vector<std::string> fields;
      if (rule.contains("field")) {
        fields.push_back(rule["field"].get<std::string>());
      } else {
        fields = rule["fields"].get<std::vector<std::string>>();
      }
      for (const std::string& field : fields) {
        INFO(schema_file << " " << field);
        const json* target = schemas.field(schema_file, field);
        REQUIRE(target != nullptr);
        ++rules_checked;
        // An enum_fail value the schema can never hold would make the rule dead.
        if (rule["type"] == "enum_fail") {
          REQUIRE(target->contains("enum"));
          for (const json& value : rule["values"]) {
            INFO(value.dump());
            CHECK(std::count((*target)["enum"].begin(), (*target)["enum"].end(), value) == 1);
          }
        }
        if (rule["type"] == "min" || rule["type"] == "max" || rule["type"] == "any_zero") {
          CHECK(target->value("type", "") == "integer");
        }
      }
    }
  }
  CHECK(rules_checked > 0);

  // The stage graph's field conditions read a row of their artifact.
  const json graph = load_stage_graph();  // (a temporary's items() would dangle)
  for (const auto& item : graph["conditions"].items()) {
    const json& evaluate = item.value()["evaluate"];
    if (evaluate["type"] != "artifact_field") {
      continue;
    }
    INFO(item.key());
    std::string kind = lowercase(evaluate["kind"].get<std::string>());
    std::string slice = evaluate["slice"].get<std::string>();
    std::string prefix = slice == "shot_row" || slice == "scene_row" ? "/rows/*" : "";
    const json* target = schemas.field(kind + ".schema.json", prefix + evaluate["field"].get<std::string>());
    REQUIRE(target != nullptr);
    REQUIRE(target->contains("enum"));
    for (const json& value : evaluate["in"]) {
      CHECK(std::count((*target)["enum"].begin(), (*target)["enum"].end(), value) == 1);
    }
  }
}

TEST_CASE("every schema a skill names is shipped in schemas/", "[skills]") {
  for (const auto& [name, skill] : load_skills()) {
    for (const json& output : skill["outputs"]) {
      if (output.contains("schema")) {
        INFO(name << " -> " << output["schema"]);
        CHECK(fs::exists(definitions_data_root() / "schemas" / output["schema"].get<std::string>()));
      }
    }
  }
}

TEST_CASE("skill.schema.json refuses definitions that break its rules", "[skills]") {
  JsonSchema schema = load_shipped_schema("skill.schema.json");
  REQUIRE(schema.validate(minimal_model_skill()).empty());

  auto refused = [&](const std::string& why, const std::function<void(json&)>& mutate) {
    json skill = minimal_model_skill();
    mutate(skill);
    INFO(why);
    CHECK_FALSE(schema.validate(skill).empty());
  };
  refused("a model skill without tiers", [](json& s) { s.erase("tier"); });
  refused("a model skill without max_output_tokens", [](json& s) { s.erase("max_output_tokens"); });
  refused("a model skill naming a built-in", [](json& s) { s["builtin"] = "project_cost"; });
  refused("a built-in skill without its built-in's name", [](json& s) {
    s["executor"] = "builtin";
    s.erase("tier");
    s.erase("max_output_tokens");
  });
  refused("a built-in skill with model tiers", [](json& s) {
    s["executor"] = "builtin";
    s["builtin"] = "project_cost";
    s.erase("max_output_tokens");
  });
  refused("a name that is not kebab-case", [](json& s) { s["name"] = "My_Skill"; });
  // A kind not UPPER_SNAKE; an unknown UPPER_SNAKE kind is the registry's skill.kind (a project's
  // schema may declare it).
  refused("an artifact kind that is not UPPER_SNAKE", [](json& s) { s["outputs"][0]["kind"] = "plot"; });
  refused("an input kind that is not UPPER_SNAKE", [](json& s) { s["inputs"][0]["kind"] = "Scenes"; });
  refused("an unknown slice", [](json& s) { s["inputs"][0]["slice"] = "everything"; });
  refused("an output with both a schema and media", [](json& s) { s["outputs"][0]["media"] = "image"; });
  refused("an output with neither schema nor media", [](json& s) { s["outputs"][0].erase("schema"); });
  refused("a min rule without a value", [](json& s) { s["gate"]["rules"][0].erase("value"); });
  refused("a rule with both field and fields", [](json& s) {
    s["gate"]["rules"][0]["fields"] = json::array({"/a"});
  });
  refused("a rule whose field is not a JSON pointer", [](json& s) {
    s["gate"]["rules"][0]["field"] = "total_score";
  });
  refused("an enum_fail rule without values", [](json& s) { s["gate"]["rules"][0]["type"] = "enum_fail"; });
  refused("a count rule without bounds", [](json& s) { s["gate"]["rules"][0]["type"] = "count"; });
  refused("a verdict of PASS on violation", [](json& s) {
    s["gate"]["rules"][0]["verdict_on_violation"] = "PASS";
  });
  refused("a config reference without a default", [](json& s) {
    s["gate"]["rules"][0]["value"] = json{{"config", "/thresholds/plaus_total"}};
  });
  refused("an unknown built-in check", [](json& s) { s["gate"]["checks"] = json::array({"vibes"}); });
  refused("a revision without the skill that writes it", [](json& s) {
    s["loop_policy"]["on_fail"].erase("via");
  });
  refused("a revision without a limit", [](json& s) { s["loop_policy"]["on_fail"].erase("max_revisions"); });
  refused("a regen-policy branch with its own limit", [](json& s) {
    s["loop_policy"]["on_fail"]["then"] = "regen_policy";
  });
  refused("an unknown condition", [](json& s) { s["runs_when"] = "sometimes"; });
  refused("a newer format version", [](json& s) { s["format_version"] = 2; });
}

TEST_CASE("stage_graph.json matches its schema and stages every shipped skill", "[skills]") {
  JsonSchema schema = load_shipped_schema("stage_graph.schema.json");
  json graph = load_stage_graph();
  INFO(issues_of(schema, graph));
  REQUIRE(schema.validate(graph).empty());

  auto skills = load_skills();
  std::set<std::string> staged;
  std::set<std::string> ids;
  for (const PlannedStep& step : flatten_shipped()) {
    INFO(step.id);
    CHECK(ids.insert(step.id).second);  // unique ids
    if (!step.skill.empty()) {
      staged.insert(step.skill);
    }
  }
  for (const json& entry : graph["on_demand"]) {
    std::string skill = entry["skill"].get<std::string>();
    INFO(skill);
    CHECK(skills.count(skill) == 1);
    CHECK(staged.count(skill) == 0);  // on demand or staged, not both
    staged.insert(skill);
  }
  for (const auto& [name, skill] : skills) {
    INFO(name);
    CHECK(staged.count(name) == 1);
  }
  CHECK(staged.size() == skills.size());  // and no staged name without a skill folder

  // Regen policy names real skills.
  CHECK(skills.count(graph["regen"]["analyzer"].get<std::string>()) == 1);
  CHECK(skills.count(graph["regen"]["simplify_via"].get<std::string>()) == 1);
}

TEST_CASE("each phase's fan-out matches the scope of the skills it runs", "[skills]") {
  const std::map<std::string, std::set<std::string>> k_scopes_by_fan_out = {
      {"once", {"project"}},
      {"per_scene", {"scene", "project"}},
      {"per_entity", {"character", "set", "voice"}},
      {"per_shot", {"shot"}},
  };
  auto skills = load_skills();
  for (const PlannedStep& step : flatten_shipped()) {
    if (step.skill.empty()) {
      continue;
    }
    INFO(step.id << " in " << step.phase);
    std::string scope = skills.at(step.skill)["scope"].get<std::string>();
    CHECK(k_scopes_by_fan_out.at(step.fan_out).count(scope) == 1);
  }
}

TEST_CASE("conditions named by skills and phases are defined in the stage graph, and all are used",
          "[skills]") {
  json graph = load_stage_graph();
  std::set<std::string> used;
  for (const auto& [name, skill] : load_skills()) {
    if (skill.contains("runs_when")) {
      used.insert(skill["runs_when"].get<std::string>());
    }
  }
  for (const json& phase : graph["phases"]) {
    if (phase.contains("when")) {
      used.insert(phase["when"].get<std::string>());
    }
  }
  std::set<std::string> defined;
  for (const auto& item : graph["conditions"].items()) {
    defined.insert(item.key());
  }
  CHECK(used == defined);
}

TEST_CASE("every required input is produced by an earlier step of the stage graph or at init",
          "[skills]") {
  json graph = load_stage_graph();
  auto skills = load_skills();
  std::vector<PlannedStep> steps = flatten_shipped();
  std::set<std::string> available = graph["init"]["produces"].get<std::set<std::string>>();
  // Only the empty world state and the style lock are artifacts written at init (DESIGN §3).
  CHECK(available == std::set<std::string>{"BRIEF", "WORLD_STATE", "STYLE_LOCK"});

  std::set<std::pair<std::string, std::string>> edges;  // (to, kind) pairs that have an edge
  for (const json& edge : graph["edges"]) {
    edges.insert({edge["to"].get<std::string>(), edge["kind"].get<std::string>()});
  }
  for (const PlannedStep& step : steps) {
    for (const auto& [kind, required] : step.inputs) {
      if (!required || step.rendered_first.count(kind)) {
        continue;  // a media output of the step, rendered before its call (a storyboard frame)
      }
      INFO(step.id << " needs " << kind);
      CHECK(available.count(kind) == 1);
      CHECK(edges.count({step.id, kind}) == 1);
    }
    available.insert(step.outputs.begin(), step.outputs.end());
  }
  // Skills triggered on demand run after the phases that feed them.
  for (const json& entry : graph["on_demand"]) {
    std::string name = entry["skill"].get<std::string>();
    for (const json& input : skills.at(name)["inputs"]) {
      if (input["required"].get<bool>()) {
        INFO(name << " needs " << input["kind"]);
        CHECK(available.count(input["kind"].get<std::string>()) == 1);
      }
    }
  }
}

TEST_CASE("stage graph edges run forward from a producer to a consumer of the same kind, without a cycle",
          "[skills]") {
  json graph = load_stage_graph();
  std::vector<PlannedStep> steps = flatten_shipped();
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < steps.size(); ++i) {
    position[steps[i].id] = i;
  }
  auto init = graph["init"]["produces"].get<std::set<std::string>>();

  std::vector<std::string> nodes = {"init"};
  for (const PlannedStep& step : steps) {
    nodes.push_back(step.id);
  }
  std::vector<std::pair<std::string, std::string>> same_context;
  for (const json& edge : graph["edges"]) {
    std::string from = edge["from"].get<std::string>();
    std::string to = edge["to"].get<std::string>();
    std::string kind = edge["kind"].get<std::string>();
    INFO(from << " -" << kind << "-> " << to);
    REQUIRE(position.count(to) == 1);
    const PlannedStep& consumer = steps[position[to]];
    CHECK(std::any_of(consumer.inputs.begin(), consumer.inputs.end(),
                      [&](const auto& input) { return input.kind == kind; }));
    if (from == "init") {
      CHECK(init.count(kind) == 1);
    } else {
      REQUIRE(position.count(from) == 1);
      CHECK(steps[position[from]].outputs.count(kind) == 1);
      if (!edge.contains("across")) {
        CHECK(position[from] < position[to]);
      }
    }
    if (!edge.contains("across")) {
      same_context.emplace_back(from, to);
    }
  }
  CHECK(avps::skills::find_cycle(nodes, same_context).empty());
}

TEST_CASE("the cycle check used on the stage graph finds a back edge", "[skills]") {
  std::vector<std::string> nodes = {"a", "b", "c"};
  CHECK(avps::skills::find_cycle(nodes, {{"a", "b"}, {"b", "c"}}).empty());
  CHECK_FALSE(avps::skills::find_cycle(nodes, {{"a", "b"}, {"b", "c"}, {"c", "a"}}).empty());
}
