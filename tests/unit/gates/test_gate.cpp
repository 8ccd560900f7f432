// Gates are code (DESIGN §1.2): these tests hold the declarative rules of skill.json and the named
// built-in checks to the thresholds of spec §3 and DESIGN §3, on the shipped skill definitions and
// the realistic fixtures of tests/fixtures/artifacts. A model's own verdict never counts.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avps/core/json_schema.hpp"
#include "avps/gates/gate.hpp"
#include "avps/governance/override.hpp"
#include "support/fake_gate_context.hpp"

using namespace avps;
using gates::Verdict;
using nlohmann::json;
using testing::artifact_fixture;
using testing::FakeGateContext;
using testing::skill_definition;

namespace {

gates::GateResult evaluate(const json& skill, const json& output, const gates::GateContext& context) {
  auto result = gates::evaluate_gate(skill, output, context);
  if (!result.ok()) {
    FAIL(result.error().message);
  }
  return std::move(result).value();
}

std::string all_reasons(const gates::GateResult& result) {
  std::string out;
  for (const std::string& reason : result.reasons) {
    out += reason + "\n";
  }
  return out;
}

bool gate_has_reason(const gates::GateResult& result, const std::string& part) {
  return std::any_of(result.reasons.begin(), result.reasons.end(),
                     [&](const std::string& r) { return r.find(part) != std::string::npos; });
}

// A skill with the given gate whose one output is a PLAUS (any JSON object will do for rules).
json skill_with_gate(json rules, json checks = json::array(), json params = json::object()) {
  json skill = {{"format_version", 1},
                {"name", "test-skill"},
                {"outputs", {{{"kind", "PLAUS"}, {"schema", "plaus.schema.json"}}}},
                {"gate", {{"rules", std::move(rules)}, {"checks", std::move(checks)}}}};
  if (!params.empty()) {
    skill["gate"]["params"] = std::move(params);
  }
  return skill;
}

json rule(const std::string& type, const std::string& field, const std::string& verdict = "FAIL") {
  return {{"type", type}, {"field", field}, {"verdict_on_violation", verdict}, {"reason", "rule " + type}};
}

json char_lock_of(const std::string& entity) {
  json lock = artifact_fixture("char_lock");
  lock["entity_id"] = entity;
  return lock;
}

// A context holding the fixtures' story at the point S01 is shot: scenes, breakdown, every
// lock S01 and S02 need, the world state after S01, S01's shot list, routing and cost report.
FakeGateContext fixture_context() {
  FakeGateContext context;
  context.record("SCENES", "", artifact_fixture("scenes"));
  context.record("BREAKDOWN", "", artifact_fixture("breakdown"));
  context.record("CHAR_LOCK", "ALEX", artifact_fixture("char_lock"));
  context.record("CHAR_LOCK", "MARIA", char_lock_of("MARIA"));
  context.record("CHAR_LOCK", "FOREMAN", char_lock_of("FOREMAN"));
  context.record("SET_LOCK", "WAREHOUSE", artifact_fixture("set_lock"));
  json dock = artifact_fixture("set_lock");
  dock["entity_id"] = "DOCK_OFFICE";
  context.record("SET_LOCK", "DOCK_OFFICE", dock);
  json alex_voice = artifact_fixture("voice_lock");
  alex_voice["entity_id"] = "ALEX";
  context.record("VOICE_LOCK", "ALEX", alex_voice);
  context.record("VOICE_LOCK", "MARIA", artifact_fixture("voice_lock"));
  context.record("STYLE_LOCK", "PROJECT", artifact_fixture("style_lock"));
  context.record("WORLD_STATE", "", artifact_fixture("world_state"));
  context.record("SHOTLIST", "S01", artifact_fixture("shotlist"));
  context.record("ROUTING_DECISION", "PROJECT", artifact_fixture("routing_decision"));
  context.record("COST_REPORT", "S01", artifact_fixture("cost_report"));
  // The GenPack fixture pasted its locks in an older face layout than FaceCodec renders today;
  // the faces on record are what it pasted, as they would be in a project that made it.
  json genpack = artifact_fixture("genpack");
  context.set_face("STYLE_LOCK", "PROJECT", genpack["style"]["text"]);
  context.set_face("SET_LOCK", "WAREHOUSE", genpack["set"]["text"]);
  context.set_face("CHAR_LOCK", "ALEX", genpack["characters"][0]["text"]);
  return context;
}

// The world just before S01: MARIA holds the notebook, ALEX his flashlight, nobody is hurt.
json world_before_s01() {
  json world = artifact_fixture("world_state");
  world["timeline"] = {{"current_scene", ""}, {"elapsed_time", ""}, {"global_notes", ""}};
  world["characters"]["ALEX"] = {{"injuries", json::array()},
                                 {"knowledge", json::array()},
                                 {"inventory", {"FLASHLIGHT"}},
                                 {"emotional_state", "Tired calm"},
                                 {"location", "WAREHOUSE"}};
  world["characters"]["MARIA"] = {{"injuries", json::array()},
                                  {"knowledge", json::array()},
                                  {"inventory", {"RED_NOTEBOOK"}},
                                  {"emotional_state", "Guarded"},
                                  {"location", "WAREHOUSE"}};
  world["props"]["RED_NOTEBOOK"] = {{"owner", "MARIA"}, {"location", "MARIA"}, {"status", "Intact"}};
  world["locations"]["WAREHOUSE"] = {
      {"condition", "Orderly"}, {"lighting_state", "Night: sodium lamp only"}, {"notes", ""}};
  return world;
}

// One QC_BATCH row whose six categories sum to `total` (6..12): the first total-6 score 2, the
// rest 1. `audio` is a score or "NA".
json qc_row(const std::string& shot, int total, json audio = "NA", const std::string& claimed = "PASS") {
  static const char* k_categories[] = {"face_consistency", "wardrobe_consistency", "set_continuity",
                                       "prop_accuracy",    "lighting_consistency", "motion_integrity"};
  json row = {{"shot_id", shot},
              {"attempt_number", 1},
              {"audio_consistency", audio},
              {"verdict", claimed},
              {"notes", ""}};
  for (int i = 0; i < 6; ++i) {
    row[k_categories[i]] = i < total - 6 ? 2 : 1;
  }
  row["total_score"] = total + (audio.is_number() ? audio.get<int>() : 0);
  return row;
}

json qc_batch(std::vector<json> rows, json violations = json::array()) {
  json batch = artifact_fixture("qc_batch");
  batch["rows"] = std::move(rows);
  batch["violations"] = std::move(violations);
  batch["gate"] = {{"verdict", "PASS"}, {"scores", json::object()}, {"reasons", json::array()}};
  return batch;
}

Verdict qc_verdict(const FakeGateContext& context, const json& row) {
  return evaluate(skill_definition("qc-grader"), qc_batch({row}), context).verdict;
}

// `scenes` (a SCENES content) without the rows of `scene_id`.
json scenes_without(const json& scenes, const std::string& scene_id) {
  json without = scenes;
  without["rows"] = json::array();
  for (const json& row : scenes["rows"]) {
    if (row["scene_id"] != scene_id) {
      without["rows"].push_back(row);
    }
  }
  return without;
}

}  // namespace

// ---- verdicts ---------------------------------------------------------------------------------

TEST_CASE("verdicts order PASS < WARN < FIX < FAIL < STOP and round-trip through their names", "[gates]") {
  const std::vector<Verdict> order = {Verdict::pass, Verdict::warn, Verdict::fix, Verdict::fail,
                                      Verdict::stop};
  const std::vector<std::string> names = {"PASS", "WARN", "FIX", "FAIL", "STOP"};
  for (size_t i = 0; i < order.size(); ++i) {
    CHECK(gates::verdict_name(order[i]) == names[i]);
    CHECK(gates::parse_verdict(names[i]).value() == order[i]);
    for (size_t j = 0; j < order.size(); ++j) {
      CHECK(gates::worst(order[i], order[j]) == order[std::max(i, j)]);
    }
  }
  CHECK_FALSE(gates::parse_verdict("pass").ok());
  CHECK_FALSE(gates::parse_verdict("OK").ok());
}

TEST_CASE("a gate result serialises to the gate object every artifact carries", "[gates]") {
  gates::GateResult result;
  result.verdict = Verdict::fix;
  result.scores = {{"total_score", 6}};
  result.reasons = {"total plausibility below the threshold: total_score 6 < 7"};
  json gate = result.to_json();
  CHECK(gate == json{{"verdict", "FIX"},
                     {"scores", {{"total_score", 6}}},
                     {"reasons", {"total plausibility below the threshold: total_score 6 < 7"}}});

  json holder = {{"type", "object"},
                 {"required", {"gate"}},
                 {"properties", {{"gate", {{"$ref", "common.schema.json#/definitions/gate"}}}}}};
  auto schema = core::JsonSchema::compile(holder, "gate holder", testing::source_dir() / "schemas");
  if (!schema.ok()) {
    FAIL(schema.error().message);
  }
  CHECK(schema->validate({{"gate", gate}}).empty());
  CHECK(schema->validate({{"gate", gates::GateResult{}.to_json()}}).empty());
  CHECK_FALSE(
      schema
          ->validate({{"gate", {{"verdict", "OK"}, {"scores", json::object()}, {"reasons", json::array()}}}})
          .empty());
}

// ---- declarative rules ------------------------------------------------------------------------

TEST_CASE("min and max rules are violated strictly below and above their value", "[gates]") {
  FakeGateContext context;
  json min_rule = rule("min", "/n");
  min_rule["value"] = 3;
  json max_rule = rule("max", "/n", "FIX");
  max_rule["value"] = 5;
  json skill = skill_with_gate({min_rule, max_rule});

  CHECK(evaluate(skill, {{"n", 3}}, context).verdict == Verdict::pass);
  CHECK(evaluate(skill, {{"n", 5}}, context).verdict == Verdict::pass);
  auto low = evaluate(skill, {{"n", 2}}, context);
  CHECK(low.verdict == Verdict::fail);
  CHECK(low.reasons == std::vector<std::string>{"rule min: n 2 < 3"});
  CHECK(low.scores == json{{"n", 2}});
  auto high = evaluate(skill, {{"n", 6.5}}, context);
  CHECK(high.verdict == Verdict::fix);
  CHECK(high.reasons == std::vector<std::string>{"rule max: n 6.5 > 5"});
}

TEST_CASE("an any_zero rule fails on a zero in any of its fields but not on NA", "[gates]") {
  FakeGateContext context;
  json zero_rule = {{"type", "any_zero"},
                    {"fields", {"/a", "/b", "/c"}},
                    {"verdict_on_violation", "FAIL"},
                    {"reason", "a category scored 0"}};
  json skill = skill_with_gate({zero_rule});
  CHECK(evaluate(skill, {{"a", 1}, {"b", 2}, {"c", "NA"}}, context).verdict == Verdict::pass);
  auto result = evaluate(skill, {{"a", 1}, {"b", 0}, {"c", 2}}, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons == std::vector<std::string>{"a category scored 0: b is 0"});
  CHECK(result.scores == json{{"a", 1}, {"b", 0}, {"c", 2}});
}

TEST_CASE("enum_fail, equals and count rules", "[gates]") {
  FakeGateContext context;
  json enum_rule = rule("enum_fail", "/drift");
  enum_rule["values"] = {"YES", "MAYBE"};
  json equals_rule = rule("equals", "/format_version", "STOP");
  equals_rule["value"] = 1;
  json count_rule = rule("count", "/fixes", "FIX");
  count_rule["min"] = 2;
  count_rule["max"] = 2;
  json skill = skill_with_gate({enum_rule, equals_rule, count_rule});

  json good = {{"drift", "NO"}, {"format_version", 1}, {"fixes", {"a", "b"}}};
  CHECK(evaluate(skill, good, context).verdict == Verdict::pass);

  json drift = good;
  drift["drift"] = "YES";
  auto drifted = evaluate(skill, drift, context);
  CHECK(drifted.verdict == Verdict::fail);
  CHECK(drifted.reasons == std::vector<std::string>{"rule enum_fail: drift is YES"});

  json newer = good;
  newer["format_version"] = 2;
  auto stopped = evaluate(skill, newer, context);
  CHECK(stopped.verdict == Verdict::stop);
  CHECK(stopped.reasons == std::vector<std::string>{"rule equals: format_version is 2, expected 1"});

  json one_fix = good;
  one_fix["fixes"] = {"a"};
  CHECK(evaluate(skill, one_fix, context).reasons ==
        std::vector<std::string>{"rule count: fixes has 1 members, fewer than 2"});
  json three_fixes = good;
  three_fixes["fixes"] = {"a", "b", "c"};
  CHECK(evaluate(skill, three_fixes, context).reasons ==
        std::vector<std::string>{"rule count: fixes has 3 members, more than 2"});
}

TEST_CASE("a rule field the output does not have violates the rule", "[gates]") {
  FakeGateContext context;
  json min_rule = rule("min", "/total_score");
  min_rule["value"] = 7;
  auto result = evaluate(skill_with_gate({min_rule}), {{"other", 9}}, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons == std::vector<std::string>{"rule min: total_score is missing"});
}

TEST_CASE("a * in a rule pointer checks every member and names the entity of each", "[gates]") {
  FakeGateContext context;
  json min_rule = rule("min", "/scores/*/score");
  min_rule["value"] = 3;
  json skill = skill_with_gate({min_rule});

  json output = {{"scores", {{{"character", "ALEX"}, {"score", 4}}, {{"character", "MARIA"}, {"score", 2}}}}};
  auto result = evaluate(skill, output, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons == std::vector<std::string>{"rule min: scores/1/score (MARIA) 2 < 3"});
  CHECK(result.scores == json{{"scores.0.score", 4}, {"scores.1.score", 2}});

  SECTION("over an object's members") {
    json object_rule = rule("min", "/by_name/*");
    object_rule["value"] = 3;
    auto by_name = evaluate(skill_with_gate({object_rule}), {{"by_name", {{"A", 3}, {"B", 1}}}}, context);
    CHECK(by_name.reasons == std::vector<std::string>{"rule min: by_name/B 1 < 3"});
  }
  SECTION("an empty container yields nothing to check") {
    CHECK(evaluate(skill, {{"scores", json::array()}}, context).verdict == Verdict::pass);
  }
  SECTION("a missing container, or a member without the field, violates the rule") {
    CHECK(evaluate(skill, json::object(), context).reasons ==
          std::vector<std::string>{"rule min: scores/*/score is missing"});
    json no_score = {{"scores", {{{"character", "ALEX"}}}}};
    CHECK(evaluate(skill, no_score, context).reasons ==
          std::vector<std::string>{"rule min: scores/0/score (ALEX) is missing"});
  }
}

TEST_CASE("the gate verdict is the worst finding and reasons come worst first", "[gates]") {
  FakeGateContext context;
  json warn = rule("min", "/w", "WARN");
  json fix = rule("min", "/x", "FIX");
  json stop = rule("min", "/s", "STOP");
  json fail = rule("min", "/f", "FAIL");
  for (json* r : {&warn, &fix, &stop, &fail}) {
    (*r)["value"] = 1;
  }
  json skill = skill_with_gate({warn, fix, stop, fail});
  json output = {{"w", 0}, {"x", 0}, {"s", 1}, {"f", 0}};
  auto result = evaluate(skill, output, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons ==
        std::vector<std::string>{"rule min: f 0 < 1", "rule min: x 0 < 1", "rule min: w 0 < 1"});

  output["s"] = 0;
  result = evaluate(skill, output, context);
  CHECK(result.verdict == Verdict::stop);
  CHECK(result.reasons.front() == "rule min: s 0 < 1");
  CHECK(result.reasons.back() == "rule min: w 0 < 1");
}

// ---- configuration references -----------------------------------------------------------------

TEST_CASE("thresholds come from the project configuration, else from the reference's default", "[gates]") {
  FakeGateContext context;
  json skill = skill_definition("plausibility-auditor");
  json plaus = artifact_fixture("plaus");
  plaus["total_score"] = 8;

  auto shipped = evaluate(skill, plaus, context);
  CHECK(shipped.verdict == Verdict::pass);
  CHECK(shipped.scores["thresholds.plaus_total"] == 7);

  context.set_config("/thresholds/plaus_total", 9);
  auto stricter = evaluate(skill, plaus, context);
  CHECK(stricter.verdict == Verdict::fail);
  CHECK(stricter.reasons ==
        std::vector<std::string>{
            "total plausibility below the threshold: total_score 8 < 9 (thresholds.plaus_total)"});
  CHECK(stricter.scores["thresholds.plaus_total"] == 9);

  context.erase_config("/thresholds/plaus_total");
  plaus["total_score"] = 6;
  auto fallback = evaluate(skill, plaus, context);
  CHECK(fallback.verdict == Verdict::fail);
  CHECK(gate_has_reason(fallback, "total_score 6 < 7 (thresholds.plaus_total)"));
}

TEST_CASE("a config reference the configuration lacks and without a default is an error", "[gates]") {
  FakeGateContext context;
  json min_rule = rule("min", "/n");
  min_rule["value"] = {{"config", "/thresholds/nowhere"}};
  auto result = gates::evaluate_gate(skill_with_gate({min_rule}), {{"n", 1}}, context);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("test-skill") != std::string::npos);
  CHECK(result.error().message.find("/thresholds/nowhere") != std::string::npos);
}

TEST_CASE("broken gate definitions are errors, not verdicts", "[gates]") {
  FakeGateContext context;
  SECTION("an unknown check") {
    auto result =
        gates::evaluate_gate(skill_with_gate(json::array(), {"no_such_check"}), json::object(), context);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().message.find("no_such_check") != std::string::npos);
  }
  SECTION("a min rule on a text field") {
    json min_rule = rule("min", "/name");
    min_rule["value"] = 1;
    CHECK_FALSE(gates::evaluate_gate(skill_with_gate({min_rule}), {{"name", "ALEX"}}, context).ok());
  }
  SECTION("a rule reading an output the skill does not have") {
    json min_rule = rule("min", "/n");
    min_rule["value"] = 1;
    min_rule["output"] = "SCENES";
    CHECK_FALSE(gates::evaluate_gate(skill_with_gate({min_rule}), {{"n", 1}}, context).ok());
  }
  SECTION("a check whose parameter is missing") {
    json skill = skill_definition("shot-planner");
    skill["gate"].erase("params");
    auto result = gates::evaluate_gate(skill, artifact_fixture("shotlist"), fixture_context());
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().message.find("complex_shot_max_s") != std::string::npos);
  }
}

TEST_CASE("a context that cannot be read is an error", "[gates]") {
  FakeGateContext context = fixture_context();
  context.break_reads();
  auto result = gates::evaluate_gate(skill_definition("shot-planner"), artifact_fixture("shotlist"), context);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == ErrorCode::io_error);
}

// ---- the shipped skills' thresholds (spec §3) -------------------------------------------------

TEST_CASE("PLAUS fails below the total threshold and on any category 0", "[gates]") {
  FakeGateContext context;
  json skill = skill_definition("plausibility-auditor");
  json plaus = artifact_fixture("plaus");
  CHECK(evaluate(skill, plaus, context).verdict == Verdict::pass);

  json low = plaus;
  low["total_score"] = 5;
  auto result = evaluate(skill, low, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons ==
        std::vector<std::string>{
            "total plausibility below the threshold: total_score 5 < 7 (thresholds.plaus_total)"});
  CHECK(result.scores["total_score"] == 5);

  json zero = plaus;
  zero["physical_realism_score"] = 0;
  zero["total_score"] = 8;
  result = evaluate(skill, zero, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons == std::vector<std::string>{
                              "a plausibility category scored 0 (implausible): physical_realism_score is 0"});
}

TEST_CASE("a model that writes PASS next to a 0 score does not pass", "[gates]") {
  FakeGateContext context;
  json plaus = artifact_fixture("plaus");
  plaus["procedural_realism_score"] = 0;
  plaus["total_score"] = 7;
  plaus["gate"] = {{"verdict", "PASS"}, {"scores", {{"total", 10}}}, {"reasons", json::array()}};
  auto result = evaluate(skill_definition("plausibility-auditor"), plaus, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.scores["procedural_realism_score"] == 0);
}

TEST_CASE("CULTURE fails below authenticity 3", "[gates]") {
  FakeGateContext context;
  json skill = skill_definition("cultural-check");
  json culture = artifact_fixture("culture");
  culture["authenticity_score"] = 3;
  CHECK(evaluate(skill, culture, context).verdict == Verdict::pass);
  culture["authenticity_score"] = 2;
  auto result = evaluate(skill, culture, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "authenticity_score 2 < 3 (thresholds.culture_authenticity)"));
}

TEST_CASE("AUDIENCE fails on clarity or engagement below 3, whatever the predictability", "[gates]") {
  FakeGateContext context;
  json skill = skill_definition("audience-simulator");
  json audience = artifact_fixture("audience");
  audience["predictability_score"] = 1;
  CHECK(evaluate(skill, audience, context).verdict == Verdict::pass);

  json unclear = audience;
  unclear["clarity_score"] = 2;
  auto result = evaluate(skill, unclear, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons ==
        std::vector<std::string>{"the story is not clear enough for the audience: clarity_score 2 < 3 "
                                 "(thresholds.audience_clarity)"});

  json boring = audience;
  boring["engagement_score"] = 2;
  result = evaluate(skill, boring, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "engagement_score 2 < 3 (thresholds.audience_engagement)"));
}

TEST_CASE("DIALOGUE_CHECK fails when any speaker scores below 3 or is not scored", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("dialogue-consistency-check");
  json dialogue = artifact_fixture("dialogue_check");
  CHECK(evaluate(skill, dialogue, context).verdict == Verdict::pass);

  json weak = dialogue;
  weak["distinctiveness_score"][1]["score"] = 2;
  auto result = evaluate(skill, weak, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons ==
        std::vector<std::string>{"a character's voice is not distinct enough (score below the minimum): "
                                 "distinctiveness_score/1/score (MARIA) 2 < 3 "
                                 "(thresholds.dialogue_distinctiveness)"});

  json unscored = dialogue;
  unscored["distinctiveness_score"] = {{{"character", "ALEX"}, {"score", 4}}};
  result = evaluate(skill, unscored, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "MARIA"));
  CHECK(gate_has_reason(result, "no distinctiveness score"));
}

TEST_CASE("a scene's checks find its row in the scene list recorded at the check", "[gates]") {
  // Given a context that hands out one shared content per recording, as the engine's does (the
  // checks keep an index of each scene list's rows by that content), when the scene list changes
  // between two checks of one scene, then the next check reads the row recorded now.
  FakeGateContext context = fixture_context();
  const json skill = skill_definition("dialogue-consistency-check");
  const json dialogue = artifact_fixture("dialogue_check");
  const std::string scene = dialogue["scene_id"].get<std::string>();
  CHECK(evaluate(skill, dialogue, context).verdict == Verdict::pass);
  CHECK(evaluate(skill, dialogue, context).verdict == Verdict::pass);  // the same list: the same answer

  const json scenes = context.latest("SCENES", "").value().value();
  context.record("SCENES", "", scenes_without(scenes, scene));
  CHECK(gate_has_reason(evaluate(skill, dialogue, context),
                        scene + " is not in the latest SCENES: cannot tell who speaks in it"));
  context.record("SCENES", "", scenes);
  CHECK(evaluate(skill, dialogue, context).verdict == Verdict::pass);
}

TEST_CASE("PSYCH fails on a drift warning", "[gates]") {
  FakeGateContext context;
  json skill = skill_definition("character-psychology");
  json psych = artifact_fixture("psych");
  CHECK(evaluate(skill, psych, context).verdict == Verdict::pass);
  psych["drift_warning"] = "YES";
  auto result = evaluate(skill, psych, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "drift_warning is YES"));
}

TEST_CASE("CONTINUITY_REPORT fails on High severity and warns on Medium", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("continuity-supervisor");
  json report = artifact_fixture("continuity_report");
  CHECK(evaluate(skill, report, context).verdict == Verdict::pass);
  report["severity_level"] = "Medium";
  CHECK(evaluate(skill, report, context).verdict == Verdict::warn);
  report["severity_level"] = "High";
  CHECK(evaluate(skill, report, context).verdict == Verdict::fail);
}

TEST_CASE("a storyboard that asks to simplify fails and one that asks to adjust needs a fix", "[gates]") {
  FakeGateContext context;
  json skill = skill_definition("storyboard-generator");
  json report = artifact_fixture("storyboard_report");
  CHECK(evaluate(skill, report, context).verdict == Verdict::pass);
  report["recommendation"] = "Adjust";
  CHECK(evaluate(skill, report, context).verdict == Verdict::fix);
  report["recommendation"] = "Simplify";
  CHECK(evaluate(skill, report, context).verdict == Verdict::fail);
}

// ---- QC (DESIGN §3) ---------------------------------------------------------------------------

TEST_CASE("QC verdicts by hero tier at the threshold boundaries", "[gates]") {
  FakeGateContext context = fixture_context();
  // S01_SH03 is hero A (12), S01_SH02 hero B (10), S01_SH01 hero C (8).
  struct Case {
    std::string shot;
    int threshold;
  };
  for (const Case& c : {Case{"S01_SH03", 12}, Case{"S01_SH02", 10}, Case{"S01_SH01", 8}}) {
    INFO(c.shot);
    CHECK(qc_verdict(context, qc_row(c.shot, c.threshold)) == Verdict::pass);
    CHECK(qc_verdict(context, qc_row(c.shot, c.threshold - 1)) == Verdict::fix);
    CHECK(qc_verdict(context, qc_row(c.shot, c.threshold - 2)) == Verdict::fix);
    if (c.threshold - 3 >= 6) {  // six categories of at least 1 cannot sum below 6 without a 0
      CHECK(qc_verdict(context, qc_row(c.shot, c.threshold - 3)) == Verdict::fail);
    }
  }
  // Hero C at threshold - 3 needs a configured threshold of 9 to be reachable without a 0.
  context.set_config("/thresholds/qc/C", 9);
  CHECK(qc_verdict(context, qc_row("S01_SH01", 9)) == Verdict::pass);
  CHECK(qc_verdict(context, qc_row("S01_SH01", 8)) == Verdict::fix);
  CHECK(qc_verdict(context, qc_row("S01_SH01", 7)) == Verdict::fix);
  auto result = evaluate(skill_definition("qc-grader"), qc_batch({qc_row("S01_SH01", 6)}), context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons ==
        std::vector<std::string>{
            "S01_SH01 attempt 1: total 6 < 7 (hero C threshold 9 minus 2) (the model said PASS)"});
  CHECK(result.scores["thresholds.qc.C"] == 9);
}

TEST_CASE("QC counts audio only when the shot has it", "[gates]") {
  FakeGateContext context = fixture_context();
  CHECK(qc_verdict(context, qc_row("S01_SH02", 9, "NA")) == Verdict::fix);
  CHECK(qc_verdict(context, qc_row("S01_SH02", 9, 1)) == Verdict::pass);  // 9 + 1 reaches B's 10
  CHECK(qc_verdict(context, qc_row("S01_SH03", 12, "NA")) == Verdict::pass);
  auto silent_audio = evaluate(skill_definition("qc-grader"), qc_batch({qc_row("S01_SH03", 12, 0)}), context);
  CHECK(silent_audio.verdict == Verdict::fail);
  CHECK(gate_has_reason(silent_audio, "audio_consistency 0"));
}

TEST_CASE("QC fails a shot with a lock violation or a 0 category whatever its total", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("qc-grader");
  json violation = {{"shot_id", "S01_SH03"},
                    {"attempt_number", 1},
                    {"rule", "lock_violation"},
                    {"description", "ALEX wears a red jacket"}};
  auto flagged = evaluate(skill, qc_batch({qc_row("S01_SH03", 12)}, {violation}), context);
  CHECK(flagged.verdict == Verdict::fail);
  CHECK(flagged.reasons ==
        std::vector<std::string>{
            "S01_SH03 attempt 1: lock_violation: ALEX wears a red jacket (the model said PASS)"});

  // A flag on another attempt of the shot does not touch this one's verdict, but it is not dropped:
  // a finding the batch grades no attempt for fails on its own.
  violation["attempt_number"] = 2;
  json elsewhere = qc_batch({qc_row("S01_SH03", 12)}, {violation});
  auto stray = evaluate(skill, elsewhere, context);
  CHECK(stray.reasons == std::vector<std::string>{
                             "S01_SH03 attempt 2: a lock_violation for a shot attempt this batch does not grade: ALEX "
                             "wears a red jacket"});
  REQUIRE(gates::stamp_qc_verdicts(skill, elsewhere, context, gates::QcClaim::in_verdict).ok());
  CHECK(elsewhere["rows"][0]["verdict"] == "PASS");

  json zero = qc_row("S01_SH01", 11);  // hero C, threshold 8
  zero["motion_integrity"] = 0;
  zero["total_score"] = 10;
  auto zeroed = evaluate(skill, qc_batch({zero}), context);
  CHECK(zeroed.verdict == Verdict::fail);
  CHECK(gate_has_reason(zeroed, "S01_SH01 attempt 1: motion_integrity 0"));
}

TEST_CASE("QC ignores the model's verdict and gate: PASS next to a 0 score fails", "[gates]") {
  FakeGateContext context = fixture_context();
  json row = qc_row("S01_SH03", 12, "NA", "PASS");
  row["face_consistency"] = 0;
  row["total_score"] = 12;  // the model's arithmetic is not trusted either
  json batch = qc_batch({row});
  batch["gate"]["verdict"] = "PASS";
  auto result = evaluate(skill_definition("qc-grader"), batch, context);
  CHECK(result.verdict == Verdict::fail);
  REQUIRE(result.reasons.size() == 1);
  CHECK(result.reasons[0] ==
        "S01_SH03 attempt 1: face_consistency 0; total_score says 12, the scores sum to 10 (the model said "
        "PASS)");
}

TEST_CASE("QC of a shot that is not in the scene's shot list fails", "[gates]") {
  FakeGateContext context = fixture_context();
  auto result = evaluate(skill_definition("qc-grader"), qc_batch({qc_row("S01_SH09", 12)}), context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "S01_SH09 attempt 1: not in the latest SHOTLIST of S01"));
}

// ---- locks ------------------------------------------------------------------------------------

TEST_CASE("a lock with a hedge word fails and the reason names the field", "[gates]") {
  FakeGateContext context;
  json skill = skill_definition("character-lock");
  json lock = artifact_fixture("char_lock");
  CHECK(evaluate(skill, lock, context).verdict == Verdict::pass);

  lock["behavioral_baseline"]["temperament"] = "Patient, Sometimes sharp";
  auto result = evaluate(skill, lock, context);
  CHECK(result.verdict == Verdict::fail);
  REQUIRE(result.reasons.size() == 1);
  CHECK(result.reasons[0].find("\"sometimes\"") != std::string::npos);
  CHECK(result.reasons[0].find("behavioral_baseline/temperament") != std::string::npos);

  lock = artifact_fixture("char_lock");
  lock["forbidden_drift"][1] = "Eye colour, kind\tof";
  result = evaluate(skill, lock, context);
  CHECK(gate_has_reason(result, "forbidden_drift/1"));
  CHECK(gate_has_reason(result, "\"kind of\""));
}

TEST_CASE("every hedge word is caught as a whole word, in any case", "[gates]") {
  const gates::Check* check = gates::find_check("lock_hedge_words");
  REQUIRE(check != nullptr);
  FakeGateContext context;
  for (const char* hedge : {"kind of", "sort of", "sometimes", "maybe", "perhaps", "possibly", "probably",
                            "somewhat", "might", "usually", "tends to", "or so"}) {
    INFO(hedge);
    json lock = {{"voice", std::string("Speaks ") + hedge + " softly"}};
    auto found = (*check)(lock, json::object(), context);
    REQUIRE(found.ok());
    CHECK(found->size() == 1);
    std::string upper = hedge;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    CHECK((*check)(json{{"voice", upper + "."}}, json::object(), context)->size() == 1);
  }
  json clean = {{"build", "Mighty shoulders, a maybelline ad face"},
                {"list", {"Wears a kindof cap", "Sorted often", "for sole use", "usual"}}};
  auto found = (*check)(clean, json::object(), context);
  REQUIRE(found.ok());
  CHECK(found->empty());
}

TEST_CASE("set and voice lock fixtures carry no hedge words", "[gates]") {
  FakeGateContext context;
  CHECK(evaluate(skill_definition("set-lock"), artifact_fixture("set_lock"), context).verdict ==
        Verdict::pass);
  CHECK(evaluate(skill_definition("voice-lock"), artifact_fixture("voice_lock"), context).verdict ==
        Verdict::pass);
}

// ---- scenes and breakdown ---------------------------------------------------------------------

TEST_CASE("SCENES must have ids in order, once each, and a goal, conflict and outcome", "[gates]") {
  FakeGateContext context;
  json skill = skill_definition("story-architect");
  gates::Outputs outputs = {{"BEATS", artifact_fixture("beats")}, {"SCENES", artifact_fixture("scenes")}};
  auto result = gates::evaluate_gate_outputs(skill, outputs, context);
  REQUIRE(result.ok());
  CHECK(result->verdict == Verdict::pass);

  json& rows = outputs["SCENES"]["rows"];
  rows[1]["conflict"] = "   ";
  rows.push_back(rows[0]);  // S01 again, after S02
  result = gates::evaluate_gate_outputs(skill, outputs, context);
  REQUIRE(result.ok());
  CHECK(result->verdict == Verdict::fail);
  CHECK(gate_has_reason(*result, "S02: conflict is empty"));
  CHECK(gate_has_reason(*result, "S01 appears more than once"));

  rows.erase(rows.size() - 1);
  std::swap(rows[0], rows[1]);
  result = gates::evaluate_gate_outputs(skill, outputs, context);
  REQUIRE(result.ok());
  CHECK(gate_has_reason(*result, "S01 comes after S02"));
}

TEST_CASE("a skill with several outputs needs each output its checks read", "[gates]") {
  FakeGateContext context;
  // BEATS alone: the SCENES checks have nothing to read.
  auto result = gates::evaluate_gate(skill_definition("story-architect"), artifact_fixture("beats"), context);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().message.find("SCENES") != std::string::npos);
}

TEST_CASE("BREAKDOWN rows match the scenes and new_* columns are first appearances", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("script-breakdown");
  json breakdown = artifact_fixture("breakdown");
  CHECK(evaluate(skill, breakdown, context).verdict == Verdict::pass);

  json wrong = breakdown;
  wrong["rows"][1]["new_characters_introduced"] = {"ALEX"};  // FOREMAN is new, ALEX is not
  auto result = evaluate(skill, wrong, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "S02: new_characters_introduced lacks FOREMAN"));
  CHECK(gate_has_reason(result, "S02: new_characters_introduced lists ALEX"));

  json short_one = breakdown;
  short_one["rows"].erase(1);
  CHECK(gate_has_reason(evaluate(skill, short_one, context), "S02 has no BREAKDOWN row"));
}

// ---- research ---------------------------------------------------------------------------------

TEST_CASE("TRUTH: Verified claims need a citation and high risks must be addressed", "[gates]") {
  FakeGateContext context;
  json skill = skill_definition("research-agent");
  json truth = artifact_fixture("truth");
  CHECK(evaluate(skill, truth, context).verdict == Verdict::pass);

  json uncited = truth;
  uncited["citations_references"] = json::array();
  CHECK(evaluate(skill, uncited, context).reasons ==
        std::vector<std::string>{"C1 is Verified but has no citation"});

  json risky = truth;
  risky["risk_assessment"][0] = {{"claim_id", "C1"}, {"risk", "high"}, {"mitigation", ""}};
  auto result = evaluate(skill, risky, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "C1 is high risk and unaddressed"));

  // C2 is Creative License and the allowance is documented.
  json licensed = truth;
  licensed["risk_assessment"][1] = {{"claim_id", "C2"}, {"risk", "high"}, {"mitigation", ""}};
  CHECK(evaluate(skill, licensed, context).verdict == Verdict::pass);
  licensed["creative_allowances"] = json::array();
  CHECK(gate_has_reason(evaluate(skill, licensed, context), "C2 is high risk and unaddressed"));
}

// ---- continuity -------------------------------------------------------------------------------

TEST_CASE("a continuity report fails when the scene's set or characters do not resolve", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("continuity-supervisor");
  json report = artifact_fixture("continuity_report");

  FakeGateContext no_set = context;
  no_set.forget("SET_LOCK", "WAREHOUSE");
  auto result = evaluate(skill, report, no_set);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons == std::vector<std::string>{"S01: location WAREHOUSE has no SET lock"});

  FakeGateContext no_state = context;
  json world = artifact_fixture("world_state");
  world["characters"].erase("MARIA");
  no_state.record("WORLD_STATE", "", world);
  no_state.forget("CHAR_LOCK", "MARIA");
  result = evaluate(skill, report, no_state);
  CHECK(gate_has_reason(result, "S01: character MARIA has no CHAR lock"));
  CHECK(gate_has_reason(result, "S01: character MARIA has no entry in the WORLD_STATE"));
}

TEST_CASE("a state diff that applies cleanly after the state before its scene passes", "[gates]") {
  FakeGateContext context = fixture_context();
  context.record("WORLD_STATE", "", world_before_s01());
  json skill = skill_definition("world-state-tracker");
  gates::Outputs outputs = {{"STATE_DIFF", artifact_fixture("state_diff")},
                            {"WORLD_STATE", artifact_fixture("world_state")}};
  auto result = gates::evaluate_gate_outputs(skill, outputs, context);
  REQUIRE(result.ok());
  INFO(all_reasons(*result));
  CHECK(result->verdict == Verdict::pass);
}

TEST_CASE("a state diff out of order or that does not apply fails", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("world-state-tracker");
  json diff = artifact_fixture("state_diff");

  // The recorded state is already after S01: S01's diff comes too late.
  auto late = evaluate(skill, diff, context);
  CHECK(late.verdict == Verdict::fail);
  CHECK(gate_has_reason(late, "continuity.order"));

  context.record("WORLD_STATE", "", world_before_s01());
  json stolen = diff;
  stolen["character_updates"]["MARIA"]["inventory"]["remove"] = {"FLASHLIGHT"};  // she never had it
  auto result = evaluate(skill, stolen, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "FLASHLIGHT"));

  FakeGateContext empty = context;
  empty.forget("WORLD_STATE", "");
  CHECK(gate_has_reason(evaluate(skill, diff, empty), "no WORLD_STATE recorded before S01"));
}

// ---- shot planning ----------------------------------------------------------------------------

TEST_CASE("shot list ids that do not resolve fail and the reason names the id", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("shot-planner");
  json shotlist = artifact_fixture("shotlist");
  CHECK(evaluate(skill, shotlist, context).verdict == Verdict::pass);

  SECTION("a character without a CHAR lock") {
    FakeGateContext no_maria = context;
    no_maria.forget("CHAR_LOCK", "MARIA");
    auto result = evaluate(skill, shotlist, no_maria);
    CHECK(result.verdict == Verdict::fail);
    CHECK(result.reasons == std::vector<std::string>{"S01_SH02: char_id MARIA has no CHAR lock"});
  }
  SECTION("a set without a SET lock") {
    json moved = shotlist;
    moved["rows"][0]["set_id"] = "ROOFTOP";
    CHECK(evaluate(skill, moved, context).reasons ==
          std::vector<std::string>{"S01_SH01: set_id ROOFTOP has no SET lock"});
  }
  SECTION("a shot of another scene") {
    json foreign = shotlist;
    foreign["rows"][2]["shot_id"] = "S02_SH03";
    auto result = evaluate(skill, foreign, context);
    CHECK(result.verdict == Verdict::fail);
    CHECK(gate_has_reason(result, "S02_SH03 does not belong to scene S01"));
  }
  SECTION("a gap in the shot numbers") {
    json gap = shotlist;
    gap["rows"][2]["shot_id"] = "S01_SH04";
    CHECK(evaluate(skill, gap, context).reasons ==
          std::vector<std::string>{"S01_SH04 is out of sequence: shot 3 of S01 must be S01_SH03"});
  }
}

TEST_CASE("shot heuristics fail a hero A wide shot and warn on a long complex one", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("shot-planner");
  json shotlist = artifact_fixture("shotlist");

  json wide = shotlist;
  wide["rows"][2]["camera_type"] = "extreme_wide";
  auto result = evaluate(skill, wide, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "S01_SH03: hero A shot in a wide frame"));

  json longer = shotlist;
  longer["rows"][1]["complexity_level"] = "high";
  longer["rows"][1]["duration_s"] = 6;
  CHECK(evaluate(skill, longer, context).verdict == Verdict::pass);  // at the limit
  longer["rows"][1]["duration_s"] = 7.5;
  result = evaluate(skill, longer, context);
  CHECK(result.verdict == Verdict::warn);
  CHECK(result.reasons ==
        std::vector<std::string>{
            "S01_SH02: high-complexity shot of 7.5 s, longer than 6 s (complex_shot_max_s); shorten "
            "or split it"});
}

// ---- GenPacks ---------------------------------------------------------------------------------

TEST_CASE("a GenPack must carry its shot's locks verbatim", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("prompt-packager");
  json genpack = artifact_fixture("genpack");
  auto result = evaluate(skill, genpack, context);
  INFO(all_reasons(result));
  CHECK(result.verdict == Verdict::pass);
  CHECK(result.deferred_checks == std::vector<std::string>{"genpack_changed_on_regen"});

  json drifted = genpack;
  std::string text = drifted["characters"][0]["text"];
  text.replace(text.find("Dark brown"), 10, "Pale blue");
  drifted["characters"][0]["text"] = text;
  result = evaluate(skill, drifted, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "CHAR_ALEX_LOCK"));
  // Each GenPack is judged on its own face: the one rendered for the last is kept for its other
  // checks only, never handed to another content.
  CHECK(evaluate(skill, genpack, context).verdict == Verdict::pass);
  CHECK(evaluate(skill, drifted, context).verdict == Verdict::fail);

  FakeGateContext no_style = context;
  no_style.forget("STYLE_LOCK", "PROJECT");
  CHECK(gate_has_reason(evaluate(skill, genpack, no_style), "no STYLE_LOCK of PROJECT"));
}

TEST_CASE("what a GenPack carries into_genpack must be the latest version of its kind, verbatim", "[gates]") {
  FakeGateContext context = fixture_context();
  context.record("PLAUS", "S01", artifact_fixture("plaus"));
  context.set_face("PLAUS", "S01", "# Plausibility Audit: S01\n\nTotal Score: 9\n");
  json skill = skill_definition("prompt-packager");
  json genpack = artifact_fixture("genpack");
  genpack["carried"] =
      json::array({{{"artifact", "PLAUS_S01_v001.md"}, {"text", "# Plausibility Audit: S01\n\nTotal Score: 9\n"}}});
  auto result = evaluate(skill, genpack, context);
  INFO(all_reasons(result));
  CHECK(result.verdict == Verdict::pass);

  json altered = genpack;
  altered["carried"][0]["text"] = "# Plausibility Audit: S01\n\nTotal Score: 10\n";
  CHECK(gate_has_reason(evaluate(skill, altered, context), "the carried PLAUS_S01_v001.md is altered (not verbatim)"));
  json stale = genpack;
  stale["carried"][0]["artifact"] = "PLAUS_S01_v002.md";
  CHECK(gate_has_reason(evaluate(skill, stale, context), "not the latest PLAUS (PLAUS_S01_v001.md is)"));
  json unknown = genpack;
  unknown["carried"][0]["artifact"] = "PROPS_S01_v001.md";
  CHECK(gate_has_reason(evaluate(skill, unknown, context), "not an artifact name avps knows"));
}

// ---- budget -----------------------------------------------------------------------------------

TEST_CASE("budget caps: WARN from warn_pct, FAIL past the cap, STOP when spent past it", "[gates]") {
  FakeGateContext context = fixture_context();        // project cap $25
  context.record("SHOTLIST", "S01", json::object());  // no shots: keep the premium quota out of it
  const gates::Check* check = gates::find_check("budget_caps");
  REQUIRE(check != nullptr);
  json params = {{"warn_pct", 90}};
  auto verdicts = [&](int64_t committed, int64_t projected) {
    json status = artifact_fixture("budget_status");
    status["current_spend_micro_usd"] = committed;
    status["projected_spend_micro_usd"] = projected;
    auto found = (*check)(status, params, context);
    REQUIRE(found.ok());
    std::vector<Verdict> out;
    for (const gates::Finding& f : *found) {
      out.push_back(f.verdict);
    }
    return out;
  };
  CHECK(verdicts(1'000'000, 22'499'999).empty());
  CHECK(verdicts(1'000'000, 22'500'000) == std::vector<Verdict>{Verdict::warn});
  CHECK(verdicts(1'000'000, 25'000'000) == std::vector<Verdict>{Verdict::warn});
  CHECK(verdicts(1'000'000, 25'000'001) == std::vector<Verdict>{Verdict::fail});
  CHECK(verdicts(25'000'001, 30'000'000) == std::vector<Verdict>{Verdict::stop});
  params["warn_pct"] = 95;
  CHECK(verdicts(1'000'000, 23'000'000).empty());

  // Through the skill: warn_pct comes from the configuration.
  json status = artifact_fixture("budget_status");
  status["projected_spend_micro_usd"] = 23'000'000;
  json skill = skill_definition("budget-gates");
  auto result = evaluate(skill, status, context);
  CHECK(result.verdict == Verdict::warn);
  CHECK(result.reasons ==
        std::vector<std::string>{
            "projected spend $23.00 is 92.0% of the project cap $25.00 (warn at 90%): rerun "
            "cost-optimizer"});
  CHECK(result.deferred_checks == std::vector<std::string>{"regen_limit_with_analyzer"});
  context.set_config("/budget/warn_pct", 95);
  CHECK(evaluate(skill, status, context).verdict == Verdict::pass);
}

TEST_CASE("a scene whose projected cost passes the scene cap fails", "[gates]") {
  FakeGateContext context = fixture_context();
  context.record("SHOTLIST", "S01", json::object());
  context.set_config("/budget/scene_cap_usd", 0.9);  // S01's cost report projects $0.973
  auto result = evaluate(skill_definition("budget-gates"), artifact_fixture("budget_status"), context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons ==
        std::vector<std::string>{
            "S01: projected spend $0.97 is 108.1% of the scene cap $0.90: simplify before producing"});
  // Checked in another scene's cost loop, S01's projection is not that check's to fail; in its
  // own, it is.
  context.set_config("/budget/checked_scene", "S02");
  CHECK(evaluate(skill_definition("budget-gates"), artifact_fixture("budget_status"), context).verdict ==
        Verdict::pass);
  context.set_config("/budget/checked_scene", "S01");
  CHECK(evaluate(skill_definition("budget-gates"), artifact_fixture("budget_status"), context).reasons ==
        result.reasons);
}

TEST_CASE("a scene's cost loop checks its scene's cap by the scene list recorded at the check", "[gates]") {
  // Given a context that hands out one shared content per recording, as the engine's does (the
  // cap check keeps the scene ids it read of each scene list by that content), when the scene list
  // changes between two checks of one scene's caps, then the next check follows the list
  // recorded now: a scene it no longer lists is not checked, one it lists again is.
  FakeGateContext context = fixture_context();
  context.record("SHOTLIST", "S01", json::object());  // keep the premium quota out of it
  context.set_config("/budget/scene_cap_usd", 0.9);    // S01's cost report projects $0.973
  context.set_config("/budget/checked_scene", "S01");
  const json skill = skill_definition("budget-gates");
  const json status = artifact_fixture("budget_status");
  const std::string over = "S01: projected spend $0.97 is 108.1% of the scene cap $0.90: simplify before producing";
  CHECK(evaluate(skill, status, context).reasons == std::vector<std::string>{over});
  CHECK(evaluate(skill, status, context).reasons == std::vector<std::string>{over});  // the same list: the same answer

  const json scenes = context.latest("SCENES", "").value().value();
  context.record("SCENES", "", scenes_without(scenes, "S01"));
  CHECK(evaluate(skill, status, context).verdict == Verdict::pass);
  context.record("SCENES", "", scenes);
  CHECK(evaluate(skill, status, context).reasons == std::vector<std::string>{over});
}

TEST_CASE("a shot whose projection passes its shot cap fails, naming the shot and its projection", "[gates]") {
  FakeGateContext context = fixture_context();
  context.record("SHOTLIST", "S01", json::object());  // keep the premium quota out of it
  json report = artifact_fixture("cost_report");
  report["shot_breakdown"] = json::array({{{"shot_id", "S01_SH01"},
                                           {"hero_tier", "C"},
                                           {"tier", "gen_low"},
                                           {"duration_s", 3},
                                           {"projected_micro_usd", 100'000}},
                                          {{"shot_id", "S01_SH03"},
                                           {"hero_tier", "A"},
                                           {"tier", "gen_premium"},
                                           {"duration_s", 4},
                                           {"projected_micro_usd", 600'000}}});
  context.record("COST_REPORT", "S01", report);
  json skill = skill_definition("budget-gates");
  json status = artifact_fixture("budget_status");
  CHECK(evaluate(skill, status, context).verdict == Verdict::pass);  // no shot cap configured

  context.set_config("/budget/shot_cap_usd", 0.5);
  auto result = evaluate(skill, status, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons ==
        std::vector<std::string>{"S01_SH03: projected spend $0.60 is 120.0% of the shot cap $0.50: "
                                 "simplify before producing (hero A, gen_premium, 4 s, proxy + final)"});
  // The stop such a FAIL ends in names the shot's cap, as `avps override --raise-cap` raises it.
  CHECK(governance::budget_stop_cap(json::object(), json(result.reasons)) == "shot S01_SH03");

  // The cap a person raised for that shot (the engine passes raised caps as budget/shot_caps_usd).
  context.set_config("/budget/shot_caps_usd", json{{"S01_SH03", 0.65}});
  CHECK(evaluate(skill, status, context).verdict == Verdict::warn);  // 92.3%: under, past the warn line
  context.set_config("/budget/shot_caps_usd", json{{"S01_SH03", 1.0}});
  CHECK(evaluate(skill, status, context).verdict == Verdict::pass);
  // A shot whose raise is lower than the configured cap is held to its raise only.
  context.set_config("/budget/shot_caps_usd", json{{"S01_SH01", 0.09}});
  result = evaluate(skill, status, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "S01_SH01: projected spend $0.10 is 111.1% of the shot cap $0.09"));
  CHECK(gate_has_reason(result, "S01_SH03: projected spend $0.60 is 120.0% of the shot cap $0.50"));
  // Checked in another scene's cost loop, S01's shots are not that check's to fail.
  context.set_config("/budget/checked_scene", "S02");
  CHECK(evaluate(skill, status, context).verdict == Verdict::pass);
  context.set_config("/budget/checked_scene", "S01");
  CHECK(evaluate(skill, status, context).verdict == Verdict::fail);
}

TEST_CASE("tier quotas fail premium on more than 25% of shots and t3 on more than 15% of calls", "[gates]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("budget-gates");
  json status = artifact_fixture("budget_status");

  // S01 plans three shots, one hero A routed to gen_premium: 33%.
  auto result = evaluate(skill, status, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(result.reasons ==
        std::vector<std::string>{"1 of 3 planned shots (33.3%) are routed to gen_premium, over the "
                                 "quota of 25% (quotas/premium_shot_pct); re-allocate the "
                                 "lowest-priority shots"});
  context.set_config("/quotas/premium_shot_pct", 34);
  CHECK(evaluate(skill, status, context).verdict == Verdict::pass);
  context.set_config("/quotas/premium_shot_pct", 25);
  // A budget re-route moved the hero A shot to gen_mid: no premium shot is left.
  json routing = artifact_fixture("routing_decision");
  routing["shot_tiers"] = json::array({{{"shot_id", "S01_SH03"}, {"hero_tier", "A"}, {"tier", "gen_mid"}}});
  context.record("ROUTING_DECISION", "PROJECT", routing);
  CHECK(evaluate(skill, status, context).verdict == Verdict::pass);
  context.record("ROUTING_DECISION", "PROJECT", artifact_fixture("routing_decision"));

  // t1 4 + t2 11 + t3 3 = 18 narrative calls, 3 at t3: 16.7%.
  status["tier_usage_breakdown"].push_back({{"tier", "t3"}, {"calls", 3}, {"spend_micro_usd", 90000}});
  result = evaluate(skill, status, context);
  CHECK(result.verdict == Verdict::fail);
  CHECK(gate_has_reason(result, "t3 took 3 of 18 narrative calls (16.7%), over the quota of 15%"));
}

TEST_CASE("the premium quota counts each scene's plan as recorded at the check, not as first read", "[gates]") {
  // Given a context that hands out one shared content per recording, as the engine's does (the
  // quota check keeps what it counted of each plan by that content), when a scene's plan changes
  // between two budget checks, then the next check counts the plan recorded now.
  FakeGateContext context = fixture_context();
  json skill = skill_definition("budget-gates");
  json status = artifact_fixture("budget_status");
  const json plan = context.latest("SHOTLIST", "S01").value().value();
  const std::string over = "1 of 3 planned shots (33.3%) are routed to gen_premium";
  CHECK(gate_has_reason(evaluate(skill, status, context), over));
  CHECK(gate_has_reason(evaluate(skill, status, context), over));  // the same content: counted once, the same answer

  json no_hero_a = plan;
  for (json& row : no_hero_a["rows"]) {
    if (row["hero_tier"] == "A") {
      row["hero_tier"] = "B";
    }
  }
  context.record("SHOTLIST", "S01", no_hero_a);
  CHECK(evaluate(skill, status, context).verdict == Verdict::pass);
  context.record("SHOTLIST", "S01", plan);
  CHECK(gate_has_reason(evaluate(skill, status, context), over));
  // A second scene planned with two hero A shots of four: 3 of 7.
  json second = plan;
  second["rows"] = json::array();
  for (int i = 1; i <= 4; ++i) {
    json row = plan["rows"][0];
    row["shot_id"] = "S02_SH0" + std::to_string(i);
    row["scene_id"] = "S02";
    row["hero_tier"] = i <= 2 ? "A" : "C";
    second["rows"].push_back(row);
  }
  context.record("SHOTLIST", "S02", second);  // the fixture's SCENES plans S01 and S02
  CHECK(gate_has_reason(evaluate(skill, status, context), "3 of 7 planned shots (42.9%) are routed to gen_premium"));
  CHECK(gate_has_reason(evaluate(skill, status, context), "3 of 7 planned shots (42.9%) are routed to gen_premium"));

  // A budget re-route recorded in the routing decision (a hero A shot moved to gen_mid) is counted
  // at the next check, with no plan recorded again.
  json routing = context.latest("ROUTING_DECISION", "PROJECT").value().value_or(json::object());
  routing["shot_tiers"] = json::array({{{"shot_id", "S02_SH01"}, {"hero_tier", "A"}, {"tier", "gen_mid"}}});
  context.record("ROUTING_DECISION", "PROJECT", routing);
  CHECK(gate_has_reason(evaluate(skill, status, context), "2 of 7 planned shots (28.6%) are routed to gen_premium"));

  // A scene list without S02 (recorded again, no plan changed) counts S01's plan alone.
  json scenes = context.latest("SCENES", "").value().value();
  json kept_rows = json::array();
  for (const json& row : scenes["rows"]) {
    if (row["scene_id"] != "S02") {
      kept_rows.push_back(row);
    }
  }
  scenes["rows"] = kept_rows;
  context.record("SCENES", "", scenes);
  CHECK(gate_has_reason(evaluate(skill, status, context), over));

  // A copy of the context that records another plan does not take the count of the first.
  FakeGateContext copy = context;
  copy.record("SHOTLIST", "S01", no_hero_a);
  CHECK(evaluate(skill, status, copy).verdict == Verdict::pass);
  CHECK(gate_has_reason(evaluate(skill, status, context), over));
}

// ---- every shipped skill on its fixtures ------------------------------------------------------

TEST_CASE("every shipped skill's gate evaluates on its outputs' fixtures", "[gates]") {
  namespace fs = std::filesystem;
  FakeGateContext context = fixture_context();
  // The fixtures are one consistent story; these are the gates they legitimately do not pass.
  const std::map<std::string, std::pair<Verdict, std::string>> expected_findings = {
      {"qc-grader", {Verdict::fail, "S01_SH03 attempt 1: face_consistency 0"}},
      {"budget-gates", {Verdict::fail, "1 of 3 planned shots (33.3%) are routed to gen_premium"}},
  };
  // world-state-tracker is gated while the recorded state is the one before its scene.
  FakeGateContext before_s01 = context;
  before_s01.record("WORLD_STATE", "", world_before_s01());
  size_t skills = 0;
  for (const auto& entry : fs::directory_iterator(testing::source_dir() / "skills")) {
    if (!fs::exists(entry.path() / "skill.json")) {
      continue;
    }
    std::string name = entry.path().filename().string();
    json skill = skill_definition(name);
    gates::Outputs outputs;
    for (const json& output : skill["outputs"]) {
      if (output.contains("schema")) {
        std::string schema = output["schema"];
        outputs[output["kind"].get<std::string>()] = artifact_fixture(schema.substr(0, schema.find('.')));
      }
    }
    INFO(name);
    auto result =
        gates::evaluate_gate_outputs(skill, outputs, name == "world-state-tracker" ? before_s01 : context);
    if (!result.ok()) {
      FAIL(result.error().message);
    }
    INFO(all_reasons(*result));
    if (auto it = expected_findings.find(name); it != expected_findings.end()) {
      CHECK(result->verdict == it->second.first);
      CHECK(gate_has_reason(*result, it->second.second));
    } else {
      CHECK(result->verdict == Verdict::pass);
    }
    for (const std::string& deferred : result->deferred_checks) {
      const auto& engine = gates::engine_check_names();
      CHECK(std::find(engine.begin(), engine.end(), deferred) != engine.end());
    }
    ++skills;
  }
  CHECK(skills == 23);
}

TEST_CASE("every check name of the skill schema is known or left to the engine", "[gates]") {
  auto text = core::read_file(testing::source_dir() / "schemas" / "skill.schema.json");
  REQUIRE(text.ok());
  json schema = json::parse(*text);
  std::vector<std::string> names = gates::check_names();
  const std::vector<std::string>& engine = gates::engine_check_names();
  for (const json& name : schema["definitions"]["check_name"]["enum"]) {
    INFO(name.get<std::string>());
    bool built_in = gates::find_check(name.get<std::string>()) != nullptr;
    bool deferred = std::find(engine.begin(), engine.end(), name.get<std::string>()) != engine.end();
    CHECK(built_in != deferred);
    CHECK(built_in == (std::find(names.begin(), names.end(), name.get<std::string>()) != names.end()));
  }
  CHECK(names.size() + engine.size() == schema["definitions"]["check_name"]["enum"].size());
}

// ---- QC_BATCH as recorded: avps's verdict per row, the grader's claim beside it ------------------

TEST_CASE("a recorded QC batch carries avps's verdict per row and the grader's claim beside it", "[gates][faces]") {
  FakeGateContext context = fixture_context();
  json skill = skill_definition("qc-grader");
  json failing = qc_row("S01_SH03", 12, "NA", "PASS");  // hero A, a lock violation below
  json fixing = qc_row("S01_SH02", 9, "NA", "PASS");    // hero B, threshold 10
  json passing = qc_row("S01_SH01", 12, "NA", "FIX");   // hero C
  json violation = {{"shot_id", "S01_SH03"},
                    {"attempt_number", 1},
                    {"rule", "lock_violation"},
                    {"description", "ALEX wears a red jacket"}};
  json batch = qc_batch({passing, fixing, failing}, {violation});
  const auto before = evaluate(skill, batch, context);

  // The engine stamps a wave's grades: the answer's verdict is the claim.
  auto changed = gates::stamp_qc_verdicts(skill, batch, context, gates::QcClaim::in_verdict);
  REQUIRE(changed.ok());
  CHECK(changed->empty());  // nothing a face claimed was replaced: the claims are kept beside
  CHECK(batch["rows"][0]["verdict"] == "PASS");
  CHECK(batch["rows"][0]["model_verdict"] == "FIX");
  CHECK(batch["rows"][1]["verdict"] == "FIX");
  CHECK(batch["rows"][1]["model_verdict"] == "PASS");
  CHECK(batch["rows"][2]["verdict"] == "FAIL");
  CHECK(batch["rows"][2]["model_verdict"] == "PASS");
  // The gate reads the claim from model_verdict now: the same verdict and reasons as before.
  const auto after = evaluate(skill, batch, context);
  CHECK(after.verdict == before.verdict);
  CHECK(after.reasons == before.reasons);
  CHECK(gate_has_reason(after, "S01_SH03 attempt 1: lock_violation: ALEX wears a red jacket (the model said PASS)"));

  // An imported face keeps its claim column and has its verdict column recomputed, each change said.
  batch["rows"][2]["verdict"] = "PASS";  // a person "passes" the shot with the lock violation
  batch["rows"][0]["face_consistency"] = 0;
  auto recomputed = gates::stamp_qc_verdicts(skill, batch, context, gates::QcClaim::in_model_verdict);
  REQUIRE(recomputed.ok());
  CHECK(*recomputed == std::vector<std::string>{"S01_SH01 attempt 1: PASS -> FAIL", "S01_SH03 attempt 1: PASS -> FAIL"});
  CHECK(batch["rows"][2]["verdict"] == "FAIL");
  CHECK(batch["rows"][2]["model_verdict"] == "PASS");
  CHECK(batch["rows"][0]["model_verdict"] == "FIX");
}

TEST_CASE("stamping puts violations in the order of their rows", "[gates][faces]") {
  FakeGateContext context = fixture_context();
  json late = {{"shot_id", "S01_SH03"}, {"attempt_number", 1}, {"rule", "lock_violation"}, {"description", "late"}};
  json early = {{"shot_id", "S01_SH01"}, {"attempt_number", 1}, {"rule", "facial_identity_drift"}, {"description", "early"}};
  json batch = qc_batch({qc_row("S01_SH01", 12), qc_row("S01_SH03", 12)}, {late, early});
  REQUIRE(gates::stamp_qc_verdicts(skill_definition("qc-grader"), batch, context, gates::QcClaim::in_verdict).ok());
  CHECK(batch["violations"][0]["description"] == "early");
  CHECK(batch["violations"][1]["description"] == "late");
}
