// Cross-loop triggers (src/engine/triggers.cpp): which are due in a scene, from the QC findings,
// what the shots show and the triggers already fired, without running anything.

#include <catch2/catch.hpp>

#include "../src/engine/triggers.hpp"

using namespace avps;
using nlohmann::json;

namespace {

skills::Trigger trigger(const std::string& id, std::vector<std::string> rules, const std::string& skill,
                        const std::string& scope, int after) {
  skills::Trigger t;
  t.id = id;
  t.description = id;
  t.rules = std::move(rules);
  t.skill = skill;
  t.scope = scope;
  t.after_failed_shots = after;
  return t;
}

engine::QcFinding finding(const std::string& shot, int attempt, const std::string& rule, const std::string& text,
                          const std::string& resolution = "proxy") {
  return {shot, resolution, attempt, rule, text, "QC_BATCH_S02_v00" + std::to_string(attempt) + ".csv"};
}

const std::vector<skills::Trigger> k_triggers = {
    trigger("qc_continuity", {"world_state_contradiction"}, "continuity-supervisor", "scene", 1),
    trigger("character_lock_drift", {"facial_identity_drift", "lock_violation"}, "character-lock", "entity", 2),
    trigger("set_lock_drift", {"lock_violation"}, "set-lock", "entity", 2)};
const std::map<std::string, std::string> k_classes = {{"character-lock", "character"}, {"set-lock", "set"}};

engine::ShownEntities shown() {
  engine::ShownEntities s;
  s["S02_SH01"] = {{"character", {"MARA", "MARA_QUILL"}}, {"set", {"LIGHTHOUSE"}}};
  s["S02_SH02"] = {{"character", {"MARA_QUILL"}}, {"set", {"LIGHTHOUSE"}}};
  s["S02_SH03"] = {{"character", {}}, {"set", {"HARBOUR"}}};
  return s;
}

std::vector<std::string> keys(const std::vector<engine::TriggerFiring>& due) {
  std::vector<std::string> out;
  for (const engine::TriggerFiring& f : due) {
    out.push_back(f.trigger->id + ":" + f.key);
  }
  return out;
}

}  // namespace

TEST_CASE("a violation concerns the entities its description names, else the shot's only one of that class",
          "[engine]") {
  // Whole-word ids: MARA_QUILL's drift does not name MARA.
  CHECK(engine::concerned_entities(finding("S02_SH01", 1, "facial_identity_drift", "MARA_QUILL's face drifts"),
                                   "character", shown()) == std::vector<std::string>{"MARA_QUILL"});
  // Naming no one the shot shows: the shot's only set; two characters are not guessed between.
  const engine::QcFinding unnamed = finding("S02_SH01", 1, "lock_violation", "An anchor of the set lock is missing.");
  CHECK(engine::concerned_entities(unnamed, "set", shown()) == std::vector<std::string>{"LIGHTHOUSE"});
  CHECK(engine::concerned_entities(unnamed, "character", shown()).empty());
  // Naming a character: not the set's violation.
  CHECK(engine::concerned_entities(finding("S02_SH02", 1, "lock_violation", "MARA_QUILL's coat is red"), "set", shown())
            .empty());
  // A shot the plan no longer has concerns no entity.
  CHECK(engine::concerned_entities(finding("S02_SH09", 1, "lock_violation", "LIGHTHOUSE"), "set", shown()).empty());
}

TEST_CASE("a QC continuity failure is due at once for its scene, with the finding as its cause", "[engine]") {
  const std::vector<engine::QcFinding> findings = {
      finding("S02_SH02", 1, "world_state_contradiction", "MARA_QUILL contradicts the world state before S02")};
  const auto due = engine::due_triggers(k_triggers, k_classes, "S02", findings, shown(), {}, "RUN_0002");
  REQUIRE(keys(due) == std::vector<std::string>{"qc_continuity:S02"});
  CHECK(due[0].scope_class == "scene");
  CHECK(due[0].count == 1);
  CHECK(due[0].cause.value("id", "") == "S02_SH02/proxy#1");
  CHECK(due[0].cause.value("qc_batch", "") == "QC_BATCH_S02_v001.csv");
  CHECK(due[0].findings.size() == 1);
}

TEST_CASE("lock drift is due once two shots of the scene drift on the same entity, not one shot failing again",
          "[engine]") {
  std::vector<engine::QcFinding> findings = {
      finding("S02_SH02", 1, "facial_identity_drift", "MARA_QUILL's identity drifts"),
      finding("S02_SH02", 2, "facial_identity_drift", "MARA_QUILL's identity drifts"),
      finding("S02_SH02", 1, "facial_identity_drift", "MARA_QUILL's identity drifts", "final")};
  // One shot failing again and again is the regen policy's to answer.
  CHECK(engine::due_triggers(k_triggers, k_classes, "S02", findings, shown(), {}, "RUN_0002").empty());
  findings.push_back(finding("S02_SH01", 3, "facial_identity_drift", "MARA_QUILL's identity drifts"));
  const auto due = engine::due_triggers(k_triggers, k_classes, "S02", findings, shown(), {}, "RUN_0002");
  REQUIRE(keys(due) == std::vector<std::string>{"character_lock_drift:MARA_QUILL"});
  CHECK(due[0].scope_class == "character");
  CHECK(due[0].count == 2);
  CHECK(due[0].cause.value("id", "") == "S02_SH01/proxy#3");  // the latest counted attempt
  CHECK(due[0].shots == std::vector<std::string>{"S02_SH01", "S02_SH02"});
  CHECK(due[0].findings.size() == 4);
  // Set violations in two shots of two different sets: no set drifted twice.
  const std::vector<engine::QcFinding> sets = {finding("S02_SH03", 1, "lock_violation", "An anchor is missing"),
                                               finding("S02_SH02", 1, "lock_violation", "An anchor is missing")};
  CHECK(engine::due_triggers(k_triggers, k_classes, "S02", sets, shown(), {}, "RUN_0002").empty());
}

TEST_CASE("a trigger fires at most once per scope in a run, and never again for the shots it counted",
          "[engine]") {
  std::vector<engine::QcFinding> findings = {
      finding("S02_SH02", 1, "world_state_contradiction", "MARA_QUILL contradicts the world state")};
  const json fired = {{"trigger", "qc_continuity"},
                      {"key", "S02"},
                      {"cause", {{"id", "S02_SH02/proxy#1"}}},
                      {"shots", {"S02_SH02"}},
                      {"run_id", "RUN_0002"}};
  // The same shot failing again: counted already, in this run or a later one (a run resumed after
  // a kill finds what the killed run answered, and does not answer it again).
  findings.push_back(finding("S02_SH02", 2, "world_state_contradiction", "MARA_QUILL contradicts the world state"));
  CHECK(engine::due_triggers(k_triggers, k_classes, "S02", findings, shown(), {fired}, "RUN_0002").empty());
  CHECK(engine::due_triggers(k_triggers, k_classes, "S02", findings, shown(), {fired}, "RUN_0003").empty());
  // Another shot: not again in the run that fired, but in a later one, with it as the cause.
  findings.push_back(finding("S02_SH01", 3, "world_state_contradiction", "MARA contradicts the world state"));
  CHECK(engine::due_triggers(k_triggers, k_classes, "S02", findings, shown(), {fired}, "RUN_0002").empty());
  const auto due = engine::due_triggers(k_triggers, k_classes, "S02", findings, shown(), {fired}, "RUN_0003");
  REQUIRE(keys(due) == std::vector<std::string>{"qc_continuity:S02"});
  CHECK(due[0].cause.value("id", "") == "S02_SH01/proxy#3");
  CHECK(due[0].shots == std::vector<std::string>{"S02_SH01"});
  CHECK(due[0].count == 1);
  // Another scene's firing answers nothing here.
  json elsewhere = fired;
  elsewhere["key"] = "S03";
  CHECK(keys(engine::due_triggers(k_triggers, k_classes, "S02", findings, shown(), {elsewhere}, "RUN_0002")) ==
        std::vector<std::string>{"qc_continuity:S02"});
}
