// The artifact schemas (schemas/<kind>.schema.json) against their fixtures
// (tests/fixtures/artifacts/<kind>.json): every schema compiles, every fixture is valid, and a
// broken fixture is refused with an issue that points at the broken field.

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "avps/artifacts/names.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/json_schema.hpp"

namespace {

namespace fs = std::filesystem;
using avps::core::JsonSchema;
using avps::core::SchemaIssue;
using nlohmann::json;

const fs::path k_schema_dir = fs::path(AVPS_SOURCE_DATA_DIR) / "schemas";
const fs::path k_fixture_dir = fs::path(AVPS_SOURCE_DATA_DIR) / "tests" / "fixtures" / "artifacts";

// The artifact schemas, by file stem; each has a fixture of the same stem.
const std::vector<std::string> k_artifact_schemas = {
    "beats",       "scenes",      "breakdown",         "psych",       "dialogue_check",
    "truth",       "plaus",       "culture",           "redteam",     "audience",
    "char_lock",   "set_lock",    "voice_lock",        "style_lock",  "world_state",
    "state_diff",  "shotlist",    "continuity_report", "genpack",     "storyboard_report",
    "qc_batch",    "regen_rules", "cost_report",       "budget_status", "routing_decision",
    "run_log_row"};

JsonSchema load_schema(const std::string& stem) {
  auto schema = JsonSchema::load(k_schema_dir / (stem + ".schema.json"));
  INFO(stem << ": " << (schema ? std::string() : schema.error().message));
  REQUIRE(schema.ok());
  return std::move(schema).value();
}

json load_json(const fs::path& path) {
  auto text = avps::core::read_file(path);
  INFO(path.string());
  REQUIRE(text.ok());
  auto parsed = avps::core::parse_json(*text, path.string());
  REQUIRE(parsed.ok());
  return std::move(parsed).value();
}

json load_fixture(const std::string& stem) { return load_json(k_fixture_dir / (stem + ".json")); }

std::string describe(const std::vector<SchemaIssue>& issues) {
  std::string out;
  for (const SchemaIssue& issue : issues) {
    out += "\n  " + issue.to_string();
  }
  return out.empty() ? std::string(" (no issues)") : out;
}

// A change to a valid fixture that its schema must refuse. `pointer` is the field changed, and
// every issue reported must point exactly there.
struct Mutation {
  std::string schema;
  std::string category;        // missing | range | enum | id | unknown | type
  std::string pointer;
  std::optional<json> value;   // nullopt removes the field
};

Mutation drop(std::string schema, std::string pointer) {
  return {std::move(schema), "missing", std::move(pointer), std::nullopt};
}
Mutation put(std::string schema, std::string category, std::string pointer, json value) {
  return {std::move(schema), std::move(category), std::move(pointer), std::move(value)};
}

void apply(json& doc, const Mutation& m) {
  const json::json_pointer ptr(m.pointer);
  if (m.value) {
    doc[ptr] = *m.value;
    return;
  }
  json& parent = doc.at(ptr.parent_pointer());
  if (parent.is_array()) {
    parent.erase(std::stoul(ptr.back()));
  } else {
    REQUIRE(parent.erase(ptr.back()) == 1);
  }
}

const std::vector<Mutation>& mutations() {
  static const std::vector<Mutation> k_mutations = {
      drop("beats", "/climax"),
      drop("beats", "/gate/reasons"),
      put("beats", "enum", "/gate/verdict", "MAYBE"),
      put("beats", "type", "/escalation_sequence", "ALEX confronts MARIA"),
      put("beats", "unknown", "/theme", "loyalty"),

      drop("scenes", "/rows/0/goal"),
      put("scenes", "enum", "/gate/verdict", "pass"),
      put("scenes", "id", "/rows/1/scene_id", "S2"),
      put("scenes", "id", "/rows/0/location", "the warehouse"),
      put("scenes", "id", "/rows/0/characters_present/1", "Maria"),
      put("scenes", "unknown", "/rows/0/mood", "tense"),
      put("scenes", "type", "/rows/0/characters_present", "ALEX, MARIA"),

      drop("breakdown", "/rows/0/lock_requirements"),
      put("breakdown", "enum", "/gate/verdict", "OK"),
      put("breakdown", "id", "/rows/0/new_props_introduced/0", "red notebook"),
      put("breakdown", "id", "/rows/0/lock_requirements/0", "LOCK_ALEX"),
      put("breakdown", "id", "/rows/1/scene_id", "S002"),

      drop("psych", "/drift_warning"),
      put("psych", "enum", "/drift_warning", "MAYBE"),
      put("psych", "enum", "/arc_progression_status/0/arc_status", "improvement"),
      put("psych", "id", "/scene_id", "S001"),
      put("psych", "id", "/arc_progression_status/0/character", "alex"),

      drop("dialogue_check", "/distinctiveness_score"),
      put("dialogue_check", "range", "/distinctiveness_score/0/score", 0),
      put("dialogue_check", "range", "/distinctiveness_score/1/score", 6),
      put("dialogue_check", "enum", "/gate/verdict", "GOOD"),
      put("dialogue_check", "id", "/scene_id", "S00"),

      drop("truth", "/claim_list"),
      put("truth", "enum", "/validation_status/0/status", "True"),
      put("truth", "enum", "/risk_assessment/0/risk", "HIGH"),
      put("truth", "enum", "/claim_list/0/dependency", "firm"),
      put("truth", "id", "/claim_list/0/claim_id", "1"),
      put("truth", "id", "/scene_id", "s01"),

      drop("plaus", "/total_score"),
      put("plaus", "range", "/physical_realism_score", 3),
      put("plaus", "range", "/procedural_realism_score", -1),
      put("plaus", "range", "/total_score", 11),
      put("plaus", "type", "/emotional_realism_score", 1.5),
      put("plaus", "enum", "/gate/verdict", "STOPPED"),
      put("plaus", "id", "/scene_id", "S1"),

      drop("culture", "/authenticity_score"),
      put("culture", "range", "/authenticity_score", 6),
      put("culture", "enum", "/stereotype_risk_analysis/risk", "none"),
      put("culture", "id", "/scene_id", "SCENE_01"),

      drop("redteam", "/two_fix_options/structural"),
      put("redteam", "unknown", "/two_fix_options/radical", "Cut MARIA."),
      put("redteam", "enum", "/gate/verdict", "REVISE"),
      put("redteam", "id", "/target", "ACT_0"),

      drop("audience", "/clarity_score"),
      put("audience", "range", "/clarity_score", 0),
      put("audience", "range", "/engagement_score", 6),
      put("audience", "type", "/predictability_score", 3.5),
      put("audience", "enum", "/gate/verdict", "LIKED"),
      put("audience", "id", "/target", "S01_SH01"),

      drop("char_lock", "/forbidden_drift"),
      put("char_lock", "range", "/forbidden_drift", json::array()),
      drop("char_lock", "/canonical_appearance/eyes"),
      put("char_lock", "enum", "/gate/verdict", "LOCKED"),
      put("char_lock", "id", "/entity_id", "Alex"),

      drop("set_lock", "/lighting_rules"),
      put("set_lock", "range", "/visual_anchors", json::array({"Racking", "Sodium lamp"})),
      put("set_lock", "range", "/visual_anchors", json::array({"a", "b", "c", "d", "e", "f"})),
      put("set_lock", "enum", "/gate/verdict", "FINE"),
      put("set_lock", "id", "/entity_id", "WARE HOUSE"),

      drop("voice_lock", "/accent_dialect"),
      put("voice_lock", "enum", "/vocal_tone_profile/pitch", "very low"),
      put("voice_lock", "enum", "/vocal_tone_profile/energy", "calm"),
      put("voice_lock", "enum", "/cadence_rhythm/speed", "quick"),
      put("voice_lock", "id", "/entity_id", "_MARIA"),

      drop("style_lock", "/palette"),
      put("style_lock", "range", "/frame_rate", 0),
      put("style_lock", "enum", "/gate/verdict", "STYLISH"),
      put("style_lock", "id", "/entity_id", "project"),
      put("style_lock", "type", "/aspect_ratio", "widescreen"),

      drop("world_state", "/rules"),
      drop("world_state", "/characters/ALEX/inventory"),
      put("world_state", "unknown", "/version", 2),
      put("world_state", "unknown", "/kind", "WORLD_STATE"),
      put("world_state", "unknown", "/characters/MARIA/mood", "angry"),
      put("world_state", "id", "/characters/alex", json::parse(R"({"injuries": [], "knowledge": [],
          "inventory": [], "emotional_state": "", "location": ""})")),
      put("world_state", "id", "/props/RED_NOTEBOOK/owner", "alex"),
      put("world_state", "id", "/characters/ALEX/inventory/0", "red notebook"),
      put("world_state", "id", "/timeline/current_scene", "S1"),
      put("world_state", "range", "/format_version", 2),

      drop("state_diff", "/timeline_update"),
      drop("state_diff", "/character_updates/ALEX/injuries/remove"),
      put("state_diff", "enum", "/kind", "WORLD_STATE"),
      put("state_diff", "id", "/scene_id", "S1"),
      put("state_diff", "id", "/prop_updates/red_notebook", nullptr),
      put("state_diff", "type", "/prop_updates/RED_NOTEBOOK", 5),
      put("state_diff", "type", "/character_updates/ALEX/knowledge", json::array({"MARIA lied"})),
      put("state_diff", "unknown", "/character_updates/ALEX/mood", "angry"),

      drop("continuity_report", "/recommended_corrections"),
      put("continuity_report", "enum", "/severity_level", "Critical"),
      put("continuity_report", "enum", "/contradictions_found/0/severity", "low"),
      put("continuity_report", "id", "/target", "ALL"),
      put("continuity_report", "id", "/contradictions_found/0/entities/0", "Warehouse"),

      drop("shotlist", "/rows/0/hero_tier"),
      put("shotlist", "enum", "/rows/0/hero_tier", "D"),
      put("shotlist", "enum", "/rows/1/complexity_level", "extreme"),
      put("shotlist", "enum", "/rows/2/regen_risk_estimate", "HIGH"),
      put("shotlist", "range", "/rows/0/duration_s", 0),
      put("shotlist", "range", "/rows/1/duration_s", -2.5),
      put("shotlist", "id", "/rows/0/shot_id", "S01_SH1"),
      put("shotlist", "id", "/rows/1/shot_id", "SH3"),
      put("shotlist", "id", "/rows/2/set_id", "warehouse"),
      put("shotlist", "id", "/rows/1/char_ids/0", "scene1_shot1"),
      put("shotlist", "unknown", "/rows/0/lens", "35mm"),

      drop("storyboard_report", "/recommendation"),
      put("storyboard_report", "enum", "/recommendation", "Approve"),
      put("storyboard_report", "enum", "/drift_risk_estimate/risk", "med"),
      put("storyboard_report", "id", "/shot_id", "S01SH02"),

      drop("genpack", "/settings/resolution"),
      drop("genpack", "/negatives_no_drift"),
      put("genpack", "range", "/negatives_no_drift", json::array()),
      put("genpack", "range", "/settings/duration_s", 0),
      put("genpack", "enum", "/settings/resolution", "4k"),
      put("genpack", "enum", "/settings/tier", "premium"),
      put("genpack", "id", "/shot_id", "S01_SH3"),
      put("genpack", "id", "/characters/0/lock", "CHAR_ALEX_LOCK_v1.txt"),
      put("genpack", "id", "/set/lock", "SET_WAREHOUSE_LOCK_final.txt"),
      put("genpack", "id", "/set/lock", "CHAR_ALEX_LOCK_v001.txt"),

      drop("qc_batch", "/rows/2/notes"),
      put("qc_batch", "range", "/rows/0/face_consistency", 3),
      put("qc_batch", "range", "/rows/1/motion_integrity", -1),
      put("qc_batch", "range", "/rows/0/audio_consistency", 3),
      put("qc_batch", "range", "/rows/0/attempt_number", 0),
      put("qc_batch", "range", "/rows/0/total_score", 15),
      put("qc_batch", "enum", "/rows/0/audio_consistency", "N/A"),
      put("qc_batch", "enum", "/rows/1/verdict", "WARN"),
      put("qc_batch", "enum", "/violations/0/rule", "bad_vibes"),
      put("qc_batch", "id", "/rows/0/shot_id", "S01-SH01"),
      put("qc_batch", "id", "/target", "S01_SH01"),

      drop("regen_rules", "/root_cause_hypothesis"),
      put("regen_rules", "enum", "/prompt_adjustment_rules/0/adjustment_type", "retry"),
      put("regen_rules", "enum", "/failure_pattern_summary/0/failure_class", "drift"),
      put("regen_rules", "range", "/failure_pattern_summary/0/failed_attempts", 0),
      put("regen_rules", "id", "/prompt_adjustment_rules/0/scope/0", "SH3"),

      drop("cost_report", "/total_projected_cost_micro_usd"),
      put("cost_report", "range", "/total_projected_cost_micro_usd", -1),
      put("cost_report", "range", "/estimated_regen_multiplier", 0.9),
      put("cost_report", "type", "/cost_per_tier_breakdown/0/cost_per_second_micro_usd", 0.02),
      put("cost_report", "enum", "/cost_per_tier_breakdown/0/tier", "premium"),
      put("cost_report", "id", "/high_risk_shots_identified/0/shot_id", "S01_SH03a"),
      put("cost_report", "id", "/target", "scene1"),
      drop("cost_report", "/scene_breakdown/0/projected_micro_usd"),
      drop("cost_report", "/projected_vs_actual/actual_micro_usd"),
      put("cost_report", "id", "/scene_breakdown/0/scene_id", "PROJECT_1"),
      put("cost_report", "range", "/scene_breakdown/0/actual_micro_usd", -1),
      put("cost_report", "type", "/scene_breakdown/0/variance_micro_usd", 0.5),
      put("cost_report", "type", "/projected_vs_actual/variance_pct", "7.91"),
      put("cost_report", "unknown", "/scene_breakdown/0/model", "sim-video-mid"),

      drop("routing_decision", "/escalation_conditions"),
      put("routing_decision", "enum", "/recommended_model_tier/0/tier", "T2"),
      put("routing_decision", "enum", "/recommended_model_tier/4/hero_tier", "AA"),
      put("routing_decision", "type", "/cost_impact_estimate_micro_usd", 1.5),
      put("routing_decision", "id", "/target", "PROJECT_1"),
      put("routing_decision", "id", "/recommended_model_tier/0/task", "Story Architect"),

      drop("budget_status", "/enforcement_actions"),
      put("budget_status", "enum", "/violations_detected", "yes"),
      put("budget_status", "enum", "/enforcement_actions/0/action", "panic"),
      put("budget_status", "range", "/percent_of_budget_used", -1),
      put("budget_status", "range", "/current_spend_micro_usd", -5),
      put("budget_status", "id", "/regen_count_by_shot/0/shot_id", "S01"),

      drop("run_log_row", "/entry_hash"),
      put("run_log_row", "enum", "/outcome", "OK"),
      put("run_log_row", "enum", "/tier", "gold"),
      put("run_log_row", "range", "/regen_count", -1),
      put("run_log_row", "type", "/estimated_cost", 0.5),
      put("run_log_row", "id", "/scene_id", "S1"),
      put("run_log_row", "id", "/shot_id", "S01_SH1"),
      put("run_log_row", "id", "/run_id", "42"),
      put("run_log_row", "type", "/timestamp", "2025-11-25 15:32:07"),
      put("run_log_row", "type", "/entry_hash", "not-a-hash"),
      put("run_log_row", "unknown", "/budget_status", "OK"),

      drop("models", "/models/0/tiers"),
      drop("models", "/models/0/price_as_of"),  // a priced model says when and where prices come from
      drop("models", "/models/7/price_source"),
      put("models", "enum", "/models/0/backend", "openai"),
      put("models", "enum", "/models/0/tiers/0", "premium"),
      put("models", "type", "/models/0/pricing/input_per_mtok_micro_usd", 0.15),
      put("models", "range", "/models/0/pricing/output_per_mtok_micro_usd", -1),
      put("models", "id", "/models/5/pricing/per_video_second_micro_usd/hd", 100),
      put("models", "type", "/models/0/price_as_of", "2025-13-01"),
      put("models", "id", "/models/8/api_key_env", "sk-live-0123456789"),
  };
  return k_mutations;
}

}  // namespace

TEST_CASE("every schema file compiles, including its cross-file references", "[schemas]") {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(k_schema_dir)) {
    const std::string name = entry.path().filename().string();
    if (!name.ends_with(".schema.json")) {
      continue;
    }
    auto schema = JsonSchema::load(entry.path());
    INFO(name << ": " << (schema ? std::string() : schema.error().message));
    CHECK(schema.ok());
    ++count;
  }
  CHECK(count >= static_cast<int>(k_artifact_schemas.size()) + 2);  // + common, models
}

TEST_CASE("every artifact kind that is JSON has a schema whose kind matches the kind's name", "[schemas]") {
  for (const avps::artifacts::KindInfo& info : avps::artifacts::kinds()) {
    if (info.extension == "png") {
      continue;  // STORYBOARD is an image; its report has the schema
    }
    std::string stem(info.kind);
    std::transform(stem.begin(), stem.end(), stem.begin(), [](unsigned char c) { return std::tolower(c); });
    if (info.kind == "RUN_LOG") {
      stem = "run_log_row";  // the log is rows; the schema is one row
    }
    INFO(info.kind);
    REQUIRE(fs::exists(k_schema_dir / (stem + ".schema.json")));
    const json doc = load_schema(stem).document();
    if (info.kind == "WORLD_STATE" || info.kind == "RUN_LOG") {
      CHECK_FALSE(doc["properties"].contains("kind"));  // frozen shapes without a kind field
    } else {
      CHECK(doc["properties"]["kind"]["const"] == std::string(info.kind));
    }
  }
}

TEST_CASE("every fixture is valid against its schema", "[schemas]") {
  std::vector<std::string> stems = k_artifact_schemas;
  stems.push_back("models");
  for (const std::string& stem : stems) {
    const JsonSchema schema = load_schema(stem);
    const std::vector<SchemaIssue> issues = schema.validate(load_fixture(stem));
    INFO(stem << describe(issues));
    CHECK(issues.empty());
  }
}

TEST_CASE("a broken fixture is refused with issues that point at the broken field", "[schemas]") {
  std::map<std::string, JsonSchema> schemas;
  std::map<std::string, json> fixtures;
  for (const Mutation& m : mutations()) {
    if (!schemas.contains(m.schema)) {
      schemas.emplace(m.schema, load_schema(m.schema));
      fixtures.emplace(m.schema, load_fixture(m.schema));
    }
    json doc = fixtures.at(m.schema);
    apply(doc, m);
    const std::vector<SchemaIssue> issues = schemas.at(m.schema).validate(doc);
    INFO(m.schema << " " << m.category << " at " << m.pointer << ":" << describe(issues));
    REQUIRE_FALSE(issues.empty());
    for (const SchemaIssue& issue : issues) {
      CHECK(issue.pointer == m.pointer);
    }
  }
}

TEST_CASE("the mutation table covers every kind with the breakages its fields allow", "[schemas]") {
  // Kinds with scores must refuse an out-of-range score, kinds with enums a bad value, kinds with
  // scene / shot / entity ids a malformed id; every kind a missing required field.
  const std::set<std::string> scored = {"dialogue_check", "plaus", "culture", "audience", "qc_batch"};
  const std::set<std::string> without_enum = {"world_state"};  // no gate, no enum field
  const std::set<std::string> without_id = {"beats"};            // names no scene, shot or entity
  std::map<std::string, std::set<std::string>> covered;
  for (const Mutation& m : mutations()) {
    covered[m.schema].insert(m.category);
  }
  std::vector<std::string> stems = k_artifact_schemas;
  stems.push_back("models");
  for (const std::string& stem : stems) {
    INFO(stem);
    CHECK(covered[stem].contains("missing"));
    if (!without_id.contains(stem)) {
      CHECK(covered[stem].contains("id"));
    }
    if (scored.contains(stem)) {
      CHECK(covered[stem].contains("range"));
    }
    if (!without_enum.contains(stem)) {
      CHECK(covered[stem].contains("enum"));
    }
  }
  CHECK(covered["world_state"].contains("unknown"));
}

TEST_CASE("a STATE_DIFF may delete an entry with null and leave fields out", "[schemas]") {
  const JsonSchema schema = load_schema("state_diff");
  json diff = load_fixture("state_diff");
  diff["prop_updates"]["RED_NOTEBOOK"] = nullptr;
  diff["character_updates"]["MARIA"] = json::object();
  diff["rule_updates"]["modified_rules"] = {{"add", {"The night shift has one clerk"}},
                                            {"remove", json::array()}};
  const std::vector<SchemaIssue> issues = schema.validate(diff);
  INFO(describe(issues));
  CHECK(issues.empty());
}

TEST_CASE("a model without pricing is valid in the models file (it is refused at call time)", "[schemas]") {
  const JsonSchema schema = load_schema("models");
  json models = load_fixture("models");
  bool has_unpriced = false;
  for (const json& model : models["models"]) {
    has_unpriced = has_unpriced || !model.contains("pricing");
  }
  CHECK(has_unpriced);
  models["models"][0].erase("pricing");
  models["models"][0].erase("price_as_of");
  CHECK(schema.validate(models).empty());
}

TEST_CASE("several broken fields are all reported, enum and pattern errors included", "[schemas]") {
  const JsonSchema schema = load_schema("shotlist");
  json shots = load_fixture("shotlist");
  shots["rows"][0]["hero_tier"] = "D";           // enum
  shots["rows"][1]["shot_id"] = "S01_SH2";       // pattern
  shots["rows"][2]["duration_s"] = 0;            // range
  shots["rows"][2].erase("notes");               // required
  std::set<std::string> pointers;
  for (const SchemaIssue& issue : schema.validate(shots)) {
    pointers.insert(issue.pointer);
  }
  const std::set<std::string> expected = {"/rows/0/hero_tier", "/rows/1/shot_id", "/rows/2/duration_s",
                                          "/rows/2/notes"};
  CHECK(pointers == expected);
}

TEST_CASE("a WORLD_STATE reports every broken entry and a malformed key at the key", "[schemas]") {
  // Entries are checked by additionalProperties (which checks them all) and keys by a negative
  // pattern; valijson would stop at the first broken entry of a patternProperties map.
  const JsonSchema schema = load_schema("world_state");
  json state = load_fixture("world_state");
  state["characters"]["ALEX"]["inventory"][0] = "red notebook";
  state["characters"]["MARIA"]["location"] = "the warehouse";
  state["props"]["flashlight"] = state["props"]["FLASHLIGHT"];
  std::vector<std::string> pointers;
  for (const SchemaIssue& issue : schema.validate(state)) {
    pointers.push_back(issue.pointer);
  }
  std::sort(pointers.begin(), pointers.end());
  CHECK(pointers == std::vector<std::string>{"/characters/ALEX/inventory/0", "/characters/MARIA/location",
                                             "/props/flashlight"});
}

TEST_CASE("issues through a cross-file reference say what the referenced definition expects", "[schemas]") {
  const JsonSchema schema = load_schema("psych");
  json psych = load_fixture("psych");
  psych["drift_warning"] = "MAYBE";
  const std::vector<SchemaIssue> issues = schema.validate(psych);
  REQUIRE(issues.size() == 1);
  CHECK(issues[0].expected.find(R"(one of ["YES","NO"])") != std::string::npos);
  CHECK(issues[0].found == R"("MAYBE")");
}

TEST_CASE("the validator ignores the x-avps-face keyword", "[schemas]") {
  json doc = load_schema("plaus").document();
  REQUIRE(doc.contains("x-avps-face"));
  json without = doc;
  without.erase("x-avps-face");
  json nonsense = doc;
  nonsense["x-avps-face"] = {{"format", 42}, {"sections", "not a list"}, {"minimum", 100}};

  auto with_face = JsonSchema::compile(doc, "plaus", k_schema_dir);
  auto no_face = JsonSchema::compile(without, "plaus without face", k_schema_dir);
  auto odd_face = JsonSchema::compile(nonsense, "plaus with an odd face", k_schema_dir);
  REQUIRE(with_face.ok());
  REQUIRE(no_face.ok());
  REQUIRE(odd_face.ok());

  const json valid = load_fixture("plaus");
  json invalid = valid;
  invalid["total_score"] = 12;
  for (const JsonSchema* schema : {&*with_face, &*no_face, &*odd_face}) {
    INFO(schema->name());
    CHECK(schema->validate(valid).empty());
    CHECK(schema->validate(invalid).size() == 1);
  }
}

TEST_CASE("a schema that redefines a shared definition is refused, not silently merged", "[schemas]") {
  // valijson caches subschemas by their path without the document, so a local
  // "#/definitions/gate" and common's would become one subschema.
  const json schema = json::parse(R"({
    "definitions": {"gate": {"type": "integer"}},
    "properties": {
      "count": {"$ref": "#/definitions/gate"},
      "gate": {"$ref": "common.schema.json#/definitions/gate"}
    }
  })");
  auto compiled = JsonSchema::compile(schema, "clash", k_schema_dir);
  REQUIRE_FALSE(compiled.ok());
  CHECK(compiled.error().message.find("\"gate\"") != std::string::npos);
  CHECK(compiled.error().message.find("common.schema.json") != std::string::npos);
}

TEST_CASE("every face lists only fields its schema has, and loses none", "[schemas]") {
  const std::set<std::string> formats = {"md", "csv", "txt", "json"};
  for (const std::string& stem : k_artifact_schemas) {
    INFO(stem);
    const json doc = load_schema(stem).document();
    REQUIRE(doc.contains("x-avps-face"));
    const json& face = doc["x-avps-face"];
    const json& properties = doc["properties"];
    REQUIRE(formats.contains(face.value("format", "")));
    CHECK_FALSE(face.value("title", "").empty());

    // Fields rendered outside the sections: the envelope and the identity the file name carries.
    std::set<std::string> rendered = {"format_version", "kind", "gate"};
    for (const json& field : face.at("identity")) {
      CHECK(properties.contains(field.get<std::string>()));
      rendered.insert(field.get<std::string>());
    }

    const std::string format = face["format"];
    if (format == "md" || format == "txt") {
      REQUIRE(face.contains("sections"));
      CHECK_FALSE(face.contains("columns"));
      std::set<std::string> headings;
      for (const json& section : face["sections"]) {
        const std::string field = section.at("field");
        const std::string heading = section.at("heading");
        INFO(field);
        CHECK(properties.contains(field));
        CHECK_FALSE(heading.empty());
        CHECK(headings.insert(heading).second);
        CHECK(rendered.insert(field).second);
        // An optional section is exactly a field the schema does not require.
        const bool required = std::find(doc["required"].begin(), doc["required"].end(), field) !=
                              doc["required"].end();
        CHECK(section.value("optional", false) == !required);
      }
      for (const auto& property : properties.items()) {
        INFO("property not on the face: " << property.key());
        CHECK(rendered.contains(property.key()));
      }
    } else if (format == "csv") {
      REQUIRE(face.contains("columns"));
      CHECK_FALSE(face.contains("sections"));
      // A CSV face is rows of exactly the framework's columns (run_log_row is one row).
      const json& row = properties.contains("rows") ? properties["rows"]["items"] : doc;
      std::set<std::string> columns;
      for (const json& column : face["columns"]) {
        CHECK(columns.insert(column.get<std::string>()).second);
      }
      // A column of row items (QC_BATCH's violations) shows a top-level list, not a row field.
      if (face.contains("row_items")) {
        const std::string field = face["row_items"].at("field");
        CHECK(properties.contains(field));
        CHECK(columns.erase(face["row_items"].at("column").get<std::string>()) == 1);
      }
      std::set<std::string> row_fields;
      for (const auto& property : row["properties"].items()) {
        row_fields.insert(property.key());
      }
      CHECK(columns == row_fields);
      CHECK(row["additionalProperties"] == false);
    }
  }
}

TEST_CASE("faces keep the framework's fixed column and section order", "[schemas]") {
  auto face_list = [](const std::string& stem, const char* key) {
    std::vector<std::string> out;
    const json doc = load_schema(stem).document();
    for (const json& item : doc["x-avps-face"][key]) {
      out.push_back(item.is_string() ? item.get<std::string>() : item.at("heading").get<std::string>());
    }
    return out;
  };
  using Names = std::vector<std::string>;
  CHECK(face_list("scenes", "columns") == Names{"scene_id", "summary", "goal", "conflict", "outcome",
                                                "location", "time_of_day", "characters_present"});
  CHECK(face_list("breakdown", "columns") ==
        Names{"scene_id", "characters_present", "new_characters_introduced", "locations_used",
              "new_locations_introduced", "props_used", "new_props_introduced", "state_changes",
              "continuity_risks", "lock_requirements"});
  CHECK(face_list("shotlist", "columns") ==
        Names{"shot_id", "scene_id", "duration_s", "camera_type", "blocking_summary", "set_id", "char_ids",
              "hero_tier", "complexity_level", "regen_risk_estimate", "notes"});
  // The framework's QC_BATCH columns, then what avps adds (layout 2): the grader's claim beside
  // avps's verdict, and the violations the verdict came from.
  CHECK(face_list("qc_batch", "columns") ==
        Names{"shot_id", "attempt_number", "face_consistency", "wardrobe_consistency", "set_continuity",
              "prop_accuracy", "lighting_consistency", "motion_integrity", "audio_consistency", "total_score",
              "verdict", "model_verdict", "notes", "violations"});
  CHECK(face_list("run_log_row", "columns") ==
        Names{"run_id", "parent_run_id", "timestamp", "skill_name", "scene_id", "shot_id", "model_used",
              "tier", "estimated_cost", "actual_cost", "duration_s", "outcome", "regen_count",
              "artifact_output", "notes", "budget_pct", "entry_hash"});
  // printed in []; CARRIED INPUTS (optional) holds what a project marks into_genpack
  CHECK(face_list("genpack", "sections") ==
        Names{"STYLE", "SET", "CHARACTERS", "ACTION", "CARRIED INPUTS", "NEGATIVES / NO-DRIFT", "SETTINGS"});
  CHECK(face_list("beats", "sections") ==
        Names{"Inciting incident", "Escalation sequence", "Midpoint shift", "Crisis", "Climax",
              "Resolution"});
}

// The key rules of WORLD_STATE and STATE_DIFF (a patternProperties negative look-ahead refusing
// every key that is not an entity id) are checked through a propertyNames pattern, which valijson
// compiles once (JsonSchema, key_rules_as_property_names). It must accept exactly the keys the
// rule as written accepts: each key below is judged against an independent full match of the
// entity-id pattern, and a refused key is still named at the key, with the rule's description.
TEST_CASE("entity-id keys of WORLD_STATE and STATE_DIFF are accepted and refused as their schemas write them",
          "[schemas]") {
  const std::regex entity_id("[A-Z0-9]+(_[A-Z0-9]+)*");
  const std::vector<std::string> keys = {"ALEX", "RED_NOTEBOOK", "A1_2B", "X", "007", "alex", "Alex", "ALEX_",
                                         "_ALEX", "A__B", "", "ALEX\n", "ALEX ", "ÄLEX", "RED-NOTEBOOK", "A_b"};
  struct Case {
    const char* schema;
    const char* fixture;
    const char* map;
    const char* entry;  // a valid entry of the map, copied under each key
  };
  for (const Case& c : {Case{"world_state", "world_state", "characters", "ALEX"},
                        Case{"world_state", "world_state", "props", "FLASHLIGHT"},
                        Case{"state_diff", "state_diff", "character_updates", ""},
                        Case{"state_diff", "state_diff", "prop_updates", ""},
                        Case{"state_diff", "state_diff", "location_updates", ""}}) {
    const JsonSchema schema = load_schema(c.schema);
    const json base = load_fixture(c.fixture);
    REQUIRE(schema.validate(base).empty());
    json entry = std::string(c.entry).empty() ? json(nullptr) : base[c.map][c.entry];
    for (const std::string& key : keys) {
      INFO(c.schema << " " << c.map << " key \"" << key << "\"");
      json doc = base;
      if (!doc.contains(c.map) || !doc[c.map].is_object()) {
        doc[c.map] = json::object();
      }
      doc[c.map][key] = entry;
      const std::vector<SchemaIssue> issues = schema.validate(doc);
      if (std::regex_match(key, entity_id)) {
        CHECK(issues.empty());
      } else {
        REQUIRE(issues.size() == 1);
        CHECK(issues[0].pointer == "/" + std::string(c.map) + "/" + key);
        CHECK(issues[0].expected.find("a key that is an entity id") != std::string::npos);
      }
    }
  }
}
