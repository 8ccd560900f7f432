// The sim backend is the default backend and the user's dry run (DESIGN §4): these tests hold it to
// its contract on the shipped skill definitions, schemas and gates. Requests are built from the
// realistic fixtures of tests/fixtures/artifacts and the demo brief; outputs must validate, be
// byte-deterministic, fail the real gate exactly when told to, and tell a coherent story.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "avps/backends/sim_backend.hpp"
#include "avps/builtins/world_state.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/gates/gate.hpp"
#include "support/fake_gate_context.hpp"

using namespace avps;
using backends::ModelRequest;
using backends::SimBackend;
using backends::SimSettings;
using nlohmann::json;
using testing::artifact_fixture;
using testing::FakeGateContext;
using testing::source_dir;

namespace {

std::string sim_demo_brief() {
  auto text = core::read_file(source_dir() / "examples" / "demo_short_film" / "brief.md");
  REQUIRE(text.ok());
  return *text;
}

json read_json(const std::filesystem::path& path) {
  auto text = core::read_file(path);
  INFO(path.string());
  REQUIRE(text.ok());
  auto parsed = core::parse_json(*text, path.string());
  REQUIRE(parsed.ok());
  return *parsed;
}

// Every executor: model skill of skills/, by name.
const std::map<std::string, json>& model_skills() {
  static const std::map<std::string, json> k_skills = [] {
    std::map<std::string, json> skills;
    for (const auto& entry : std::filesystem::directory_iterator(source_dir() / "skills")) {
      std::filesystem::path file = entry.path() / "skill.json";
      if (std::filesystem::exists(file)) {
        json skill = read_json(file);
        if (skill.value("executor", "") == "model") {
          skills[skill["name"].get<std::string>()] = skill;
        }
      }
    }
    return skills;
  }();
  return k_skills;
}

// The outputs of a skill that a model writes: {kind: schema file}.
std::map<std::string, std::string> model_outputs(const json& skill) {
  std::map<std::string, std::string> out;
  for (const json& output : skill["outputs"]) {
    if (output.contains("schema") && !output.contains("written_by")) {
      out[output["kind"].get<std::string>()] = output["schema"].get<std::string>();
    }
  }
  return out;
}

json output_schema_of(const json& skill) {
  std::map<std::string, std::string> outputs = model_outputs(skill);
  if (outputs.size() == 1) {
    return read_json(source_dir() / "schemas" / outputs.begin()->second);
  }
  json map = json::object();
  for (const auto& [kind, file] : outputs) {
    map[kind] = read_json(source_dir() / "schemas" / file);
  }
  return map;
}

json lock_of(const std::string& fixture, const std::string& id) {
  json lock = artifact_fixture(fixture);
  lock["entity_id"] = id;
  return lock;
}

json row_with(const json& table, const char* member, const std::string& id) {
  for (const json& row : table["rows"]) {
    if (row[member] == id) {
      return row;
    }
  }
  FAIL("no row " << id);
  return json();
}

// The scene a scene-scoped test call is about: world-state-tracker works on S02, since the
// fixture WORLD_STATE is the state after S01.
std::string scene_for(const std::string& skill) { return skill == "world-state-tracker" ? "S02" : "S01"; }

// The slice of a fixture an input asks for (skill.schema.json definitions.slice).
json input_for(const std::string& skill, const json& input) {
  const std::string kind = input["kind"].get<std::string>();
  const std::string slice = input["slice"].get<std::string>();
  const std::string scene = scene_for(skill);
  if (kind == "BRIEF") {
    return sim_demo_brief();
  }
  if (kind == "MEDIA") {
    return json{{"file", "media/S01_SH03_a1_proxy.png"}, {"sha256", std::string(64, 'a')}};
  }
  if (kind == "CHAR_LOCK") {
    if (slice == "same_entity") {
      return lock_of("char_lock", "MARIA");
    }
    return json{{"ALEX", lock_of("char_lock", "ALEX")}, {"MARIA", lock_of("char_lock", "MARIA")}};
  }
  if (kind == "SET_LOCK") {
    return json{{"WAREHOUSE", artifact_fixture("set_lock")}};
  }
  if (kind == "VOICE_LOCK") {
    return json{{"MARIA", artifact_fixture("voice_lock")}};
  }
  std::string fixture = kind;
  std::transform(fixture.begin(), fixture.end(), fixture.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  json whole = artifact_fixture(fixture);
  if (slice == "scene_row") {
    return row_with(whole, "scene_id", scene);
  }
  if (slice == "shot_row") {
    return row_with(whole, "shot_id", "S01_SH03");
  }
  if (slice == "entity_rows" && kind == "SCENES") {
    return json::array({row_with(whole, "scene_id", "S01")});
  }
  return whole;
}

json scope_for(const std::string& skill, const std::string& scope) {
  if (scope == "scene") {
    return {{"scene_id", scene_for(skill)}};
  }
  if (scope == "shot") {
    return {{"shot_id", "S01_SH03"}, {"attempt", 1}};
  }
  if (scope == "character") {
    return {{"entity_id", "ALEX"}, {"kind", "CHAR_LOCK"}};
  }
  if (scope == "set") {
    return {{"entity_id", "WAREHOUSE"}, {"kind", "SET_LOCK"}};
  }
  if (scope == "voice") {
    return {{"entity_id", "MARIA"}, {"kind", "VOICE_LOCK"}};
  }
  return {{"target", "PROJECT"}};
}

ModelRequest sim_request_for(const std::string& name, uint64_t seed = 7) {
  const json& skill = model_skills().at(name);
  ModelRequest request;
  request.skill = name;
  request.model = "sim-" + skill["tier"]["default"].get<std::string>();
  request.tier = skill["tier"]["default"].get<std::string>();
  request.prompt = "prompt of " + name;
  request.scope = scope_for(name, skill["scope"].get<std::string>());
  request.inputs = json::object();
  for (const json& input : skill["inputs"]) {
    request.inputs[input["kind"].get<std::string>()] = input_for(name, input);
  }
  request.output_schema = output_schema_of(skill);
  request.findings = json::array();
  request.max_output_tokens = skill["max_output_tokens"].get<int>();
  request.seed = seed;
  return request;
}

SimSettings rates(double failure, std::initializer_list<std::string> skills = {}) {
  SimSettings settings;
  std::vector<std::string> names(skills);
  if (names.empty()) {
    for (const auto& [name, skill] : model_skills()) {
      names.push_back(name);
    }
  }
  for (const std::string& name : names) {
    settings.failure_rates[name] = failure;
  }
  return settings;
}

std::string complete_text(SimBackend& backend, const ModelRequest& request) {
  Result<backends::ModelResponse> result = backend.complete(request);
  if (!result.ok()) {
    FAIL(request.skill << ": " << result.error().message);
  }
  return result->text;
}

// The answer split by kind.
gates::Outputs parse_answer(const std::string& skill_name, const std::string& text) {
  auto parsed = core::parse_json(text, skill_name);
  if (!parsed.ok()) {
    FAIL(skill_name << ": " << parsed.error().message);
  }
  std::map<std::string, std::string> outputs = model_outputs(model_skills().at(skill_name));
  gates::Outputs out;
  if (outputs.size() == 1) {
    out.emplace(outputs.begin()->first, *parsed);
  } else {
    for (const auto& [kind, file] : outputs) {
      REQUIRE(parsed->contains(kind));
      out.emplace(kind, (*parsed)[kind]);
    }
  }
  return out;
}

void require_valid(const std::string& skill_name, const gates::Outputs& outputs) {
  std::map<std::string, std::string> files = model_outputs(model_skills().at(skill_name));
  for (const auto& [kind, artifact] : outputs) {
    auto schema = core::JsonSchema::load(source_dir() / "schemas" / files.at(kind));
    REQUIRE(schema.ok());
    std::vector<core::SchemaIssue> issues = schema->validate(artifact);
    INFO(skill_name << " " << kind << ": " << core::format_schema_issues(kind, issues) << "\n"
                    << artifact.dump(1));
    CHECK(issues.empty());
  }
}

// What a project holds when these skills run on the fixtures.
FakeGateContext sim_fixture_context() {
  FakeGateContext context;
  context.record("SCENES", "", artifact_fixture("scenes"));
  context.record("BREAKDOWN", "", artifact_fixture("breakdown"));
  context.record("WORLD_STATE", "", artifact_fixture("world_state"));
  context.record("SHOTLIST", "S01", artifact_fixture("shotlist"));
  for (const char* id : {"ALEX", "MARIA", "FOREMAN"}) {
    context.record("CHAR_LOCK", id, lock_of("char_lock", id));
  }
  context.record("SET_LOCK", "WAREHOUSE", artifact_fixture("set_lock"));
  json office = artifact_fixture("set_lock");
  office["entity_id"] = "DOCK_OFFICE";
  context.record("SET_LOCK", "DOCK_OFFICE", office);
  context.record("VOICE_LOCK", "MARIA", artifact_fixture("voice_lock"));
  context.record("STYLE_LOCK", "PROJECT", artifact_fixture("style_lock"));
  return context;
}

gates::GateResult gate_of(const std::string& skill_name, const gates::Outputs& outputs,
                          const gates::GateContext& context) {
  auto result = gates::evaluate_gate_outputs(model_skills().at(skill_name), outputs, context);
  if (!result.ok()) {
    FAIL(skill_name << ": " << result.error().message);
  }
  return *result;
}

std::string reasons_of(const gates::GateResult& result) {
  std::string out;
  for (const std::string& reason : result.reasons) {
    out += reason + "\n";
  }
  return out;
}

// Whether the skill's gate has anything the sim can trip: a rule, or a check avps runs itself.
bool has_gate(const json& skill) {
  if (!skill["gate"]["rules"].empty()) {
    return true;
  }
  const std::vector<std::string>& deferred = gates::engine_check_names();
  return std::any_of(skill["gate"]["checks"].begin(), skill["gate"]["checks"].end(), [&](const json& check) {
    return std::find(deferred.begin(), deferred.end(), check.get<std::string>()) == deferred.end();
  });
}

}  // namespace

TEST_CASE("the sim backend answers every model skill of skills/", "[sim]") {
  std::set<std::string> supported(SimBackend::supported_skills().begin(),
                                  SimBackend::supported_skills().end());
  for (const auto& [name, skill] : model_skills()) {
    INFO(name);
    CHECK(supported.count(name) == 1);
  }
  CHECK(model_skills().size() == supported.size());
}

TEST_CASE("every model skill's answer parses and validates against its output schemas", "[sim]") {
  for (uint64_t seed : {1u, 2u, 20261125u}) {
    SimBackend backend(SimSettings{}, seed);
    for (const auto& [name, skill] : model_skills()) {
      require_valid(name, parse_answer(name, complete_text(backend, sim_request_for(name, seed))));
    }
  }
}

TEST_CASE("failing outputs are still schema-valid", "[sim]") {
  SimBackend backend(rates(1.0), 3);
  for (const auto& [name, skill] : model_skills()) {
    require_valid(name, parse_answer(name, complete_text(backend, sim_request_for(name))));
  }
}

TEST_CASE("the same request gives the same bytes, and another seed gives other bytes", "[sim]") {
  SimBackend a(SimSettings{}, 11);
  SimBackend again(SimSettings{}, 11);
  for (const auto& [name, skill] : model_skills()) {
    INFO(name);
    ModelRequest request = sim_request_for(name);
    std::string first = complete_text(a, request);
    CHECK(complete_text(a, request) == first);
    CHECK(complete_text(again, request) == first);
    // A skill with few wordings may repeat itself under one other seed, not under four.
    bool differs = false;
    for (uint64_t seed = 12; seed < 16 && !differs; ++seed) {
      SimBackend other(SimSettings{}, seed);
      differs = complete_text(other, request) != first;
    }
    CHECK(differs);
  }
}

TEST_CASE("with failure rate 1 every gated skill's output fails its real gate, and with rate 0 it passes",
          "[sim]") {
  FakeGateContext context = sim_fixture_context();
  for (const auto& [name, skill] : model_skills()) {
    if (!has_gate(skill)) {
      continue;
    }
    INFO(name);
    for (uint64_t seed : {1u, 2u, 3u, 4u, 5u}) {
      SimBackend passing(rates(0.0), seed);
      gates::GateResult pass =
          gate_of(name, parse_answer(name, complete_text(passing, sim_request_for(name))), context);
      INFO("seed " << seed << " rate 0: " << reasons_of(pass));
      CHECK(pass.verdict == gates::Verdict::pass);

      SimBackend failing(rates(1.0, {name}), seed);
      gates::GateResult fail =
          gate_of(name, parse_answer(name, complete_text(failing, sim_request_for(name))), context);
      INFO("seed " << seed << " rate 1: " << reasons_of(fail));
      CHECK(fail.verdict == gates::Verdict::fail);
    }
  }
}

TEST_CASE("narrative-red-team, which has no gate rule, reports a critical failure when told to fail",
          "[sim]") {
  SimBackend failing(rates(1.0, {"narrative-red-team"}), 1);
  SimBackend passing(SimSettings{}, 1);
  gates::Outputs failed =
      parse_answer("narrative-red-team", complete_text(failing, sim_request_for("narrative-red-team")));
  gates::Outputs passed =
      parse_answer("narrative-red-team", complete_text(passing, sim_request_for("narrative-red-team")));
  CHECK_FALSE(failed.at("REDTEAM")["critical_failures"].empty());
  CHECK(failed.at("REDTEAM")["gate"]["verdict"] == "FAIL");
  CHECK(passed.at("REDTEAM")["critical_failures"].empty());
}

TEST_CASE("fix rates land qc-grader and storyboard-generator on their FIX outcome", "[sim]") {
  FakeGateContext context = sim_fixture_context();
  for (const char* name : {"qc-grader", "storyboard-generator"}) {
    INFO(name);
    SimSettings settings;
    settings.fix_rates[name] = 1.0;
    SimBackend backend(settings, 5);
    gates::GateResult result =
        gate_of(name, parse_answer(name, complete_text(backend, sim_request_for(name))), context);
    INFO(reasons_of(result));
    CHECK(result.verdict == gates::Verdict::fix);
  }
  // A skill without a FIX outcome ignores its fix rate.
  SimSettings settings;
  settings.fix_rates["plausibility-auditor"] = 1.0;
  SimBackend backend(settings, 5);
  gates::GateResult plaus = gate_of(
      "plausibility-auditor",
      parse_answer("plausibility-auditor", complete_text(backend, sim_request_for("plausibility-auditor"))),
      context);
  CHECK(plaus.verdict == gates::Verdict::pass);
}

TEST_CASE("media failure rates by generation tier decide qc-grader's failures", "[sim]") {
  FakeGateContext context = sim_fixture_context();  // the fixture GenPack of S01_SH03 is gen_premium
  SimSettings reliable_premium = rates(1.0, {"qc-grader"});
  reliable_premium.media_failure_rates["gen_premium"] = 0.0;
  SimSettings flaky_premium;
  flaky_premium.media_failure_rates["gen_premium"] = 1.0;
  SimBackend reliable(reliable_premium, 1);
  SimBackend flaky(flaky_premium, 1);
  CHECK(gate_of("qc-grader", parse_answer("qc-grader", complete_text(reliable, sim_request_for("qc-grader"))),
                context)
            .verdict == gates::Verdict::pass);
  CHECK(
      gate_of("qc-grader", parse_answer("qc-grader", complete_text(flaky, sim_request_for("qc-grader"))), context)
          .verdict == gates::Verdict::fail);
}

TEST_CASE("a failure rate for one shot applies to that shot's calls only, above the skill's and the tier's", "[sim]") {
  FakeGateContext context = sim_fixture_context();  // the fixture's qc-grader call is about S01_SH03
  SimSettings frozen_shot;
  frozen_shot.failure_rates["qc-grader"] = 0.0;
  frozen_shot.media_failure_rates["gen_premium"] = 0.0;
  frozen_shot.failure_rates["qc-grader@S01_SH03"] = 1.0;
  SimBackend backend(frozen_shot, 1);
  ModelRequest about_the_shot = sim_request_for("qc-grader");
  CHECK(gate_of("qc-grader", parse_answer("qc-grader", complete_text(backend, about_the_shot)), context).verdict ==
        gates::Verdict::fail);
  frozen_shot.failure_rates.erase("qc-grader@S01_SH03");
  frozen_shot.failure_rates["qc-grader@S01_SH04"] = 1.0;
  SimBackend other_shot(frozen_shot, 1);
  CHECK(gate_of("qc-grader", parse_answer("qc-grader", complete_text(other_shot, about_the_shot)), context).verdict ==
        gates::Verdict::pass);
}

TEST_CASE("a failing QC answer carries the violation the project chose for its shot or scene", "[sim]") {
  FakeGateContext context = sim_fixture_context();  // the fixture's qc-grader call is about S01_SH03
  auto violations_of = [&](const SimSettings& settings) {
    SimBackend backend(settings, 1);
    gates::Outputs out = parse_answer("qc-grader", complete_text(backend, sim_request_for("qc-grader")));
    CHECK(gate_of("qc-grader", out, context).verdict == gates::Verdict::fail);
    return out.at("QC_BATCH").value("violations", json::array());
  };
  SimSettings settings = rates(1.0, {"qc-grader"});
  settings.media_failure_rates["gen_premium"] = 1.0;
  const json drift = violations_of(settings);
  REQUIRE(drift.size() == 1);
  CHECK(drift[0]["rule"] != "world_state_contradiction");
  settings.qc_violations["S01"] = "world_state_contradiction";  // the scene's entry
  const json contradiction = violations_of(settings);
  REQUIRE(contradiction.size() == 1);
  CHECK(contradiction[0]["rule"] == "world_state_contradiction");
  CHECK_THAT(contradiction[0]["description"].get<std::string>(), Catch::Contains("the world state before S01"));
  settings.qc_violations["S01_SH03"] = "lock_violation";  // the shot's entry wins
  CHECK(violations_of(settings)[0]["rule"] == "lock_violation");
  CHECK(SimSettings::from_json(json{{"qc_violations", {{"S01_SH03", "world_state_contradiction"}}}})
            ->qc_violations.at("S01_SH03") == "world_state_contradiction");
  auto refused = SimSettings::from_json(json{{"qc_violations", {{"S01_SH03", "continuity"}}}});
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("qc_violations.S01_SH03: expected lock_violation"));
}

TEST_CASE("a revision, whose request carries the findings, draws its failure again", "[sim]") {
  SimBackend backend(rates(0.5, {"plausibility-auditor"}), 9);
  FakeGateContext context = sim_fixture_context();
  int failed = 0;
  const int revisions = 24;
  for (int k = 0; k < revisions; ++k) {
    ModelRequest request = sim_request_for("plausibility-auditor");
    request.findings = json::array({"total plausibility below the threshold: revision " + std::to_string(k)});
    gates::GateResult result =
        gate_of("plausibility-auditor", parse_answer("plausibility-auditor", complete_text(backend, request)),
                context);
    failed += result.verdict == gates::Verdict::fail ? 1 : 0;
  }
  CHECK(failed > 0);
  CHECK(failed < revisions);
}

// A revision must change something (issue 13): the sim's revision changes what its findings name,
// and its test setting answers a revision as if it carried none.
TEST_CASE("a revision changes what its findings name, and identical_revisions answers it as before", "[sim]") {
  SimBackend backend(rates(0.0), 7);
  ModelRequest first = sim_request_for("shot-planner");
  const json before = parse_answer("shot-planner", complete_text(backend, first)).at("SHOTLIST");
  REQUIRE(before["rows"].size() >= 3);
  const json named = before["rows"][0];
  const std::string shot = named["shot_id"].get<std::string>();

  ModelRequest revision = first;
  revision.scope["attempt"] = 2;
  revision.scope["revision_for"] = {{"loop", "qc-grader/" + shot + "/proxy"}, {"attempt", 2}, {"judge", "qc-grader"}};
  revision.findings = json::array({shot + " attempt 2: face_consistency 0; facial_identity_drift"});
  const gates::Outputs revised_outputs = parse_answer("shot-planner", complete_text(backend, revision));
  require_valid("shot-planner", revised_outputs);
  const json revised = revised_outputs.at("SHOTLIST");
  REQUIRE(revised["rows"].size() == before["rows"].size());
  // The named shot is simplified — lower complexity (or already low), a second shorter (not under
  // 2 s) — and nothing else: every other row is as it was.
  const json row = revised["rows"][0];
  CHECK(row["shot_id"] == shot);
  CHECK(row["complexity_level"] == (named["complexity_level"] == "high" ? "medium" : "low"));
  CHECK(row["duration_s"].get<double>() == std::max(2.0, named["duration_s"].get<double>() - 1));
  CHECK(row["blocking_summary"] == named["blocking_summary"]);
  for (size_t i = 1; i < before["rows"].size(); ++i) {
    CHECK(revised["rows"][i] == before["rows"][i]);
  }
  CHECK(complete_text(backend, revision) == complete_text(backend, revision));  // deterministic
  // A re-plan starts from the plan it revises (REVISING): a shot simplified before stays so, and a
  // second simplification of it goes a step further.
  const std::string other = before["rows"][1]["shot_id"].get<std::string>();
  ModelRequest next = revision;
  next.inputs["REVISING"] = {{"SHOTLIST", revised}};
  next.findings = json::array({other + " attempt 3: total 7 < 8 (hero C threshold)"});
  next.scope["revision_for"] = {{"loop", "qc-grader/" + other + "/proxy"}, {"attempt", 3}, {"judge", "qc-grader"}};
  const json replanned = parse_answer("shot-planner", complete_text(backend, next)).at("SHOTLIST");
  CHECK(replanned["rows"][0] == revised["rows"][0]);
  CHECK(replanned["rows"][1]["duration_s"].get<double>() ==
        std::max(2.0, before["rows"][1]["duration_s"].get<double>() - 1));
  ModelRequest again = revision;
  again.inputs["REVISING"] = {{"SHOTLIST", revised}};
  const json further = parse_answer("shot-planner", complete_text(backend, again)).at("SHOTLIST");
  CHECK(further["rows"][0]["duration_s"].get<double>() == std::max(2.0, row["duration_s"].get<double>() - 1));
  // Findings that name no shot (a budget check's): the revision marks its first prose instead, so
  // it is never the plan it replaces.
  ModelRequest unnamed = revision;
  unnamed.scope.erase("revision_for");
  unnamed.findings = json::array({"budget: the projection is over the scene cap"});
  const json marked = parse_answer("shot-planner", complete_text(backend, unnamed)).at("SHOTLIST");
  CHECK(marked["rows"].size() == before["rows"].size());
  CHECK(marked != before);
  CHECK(marked.dump().find("Revised after review, attempt 2.") != std::string::npos);

  // A revision whose findings name nothing of the artifact still changes its first prose.
  ModelRequest architect = sim_request_for("story-architect");
  const gates::Outputs plain = parse_answer("story-architect", complete_text(backend, architect));
  architect.findings = json::array({"critical failures found: critical_failures has 1 members, more than 0"});
  architect.scope["attempt"] = 2;
  const gates::Outputs changed = parse_answer("story-architect", complete_text(backend, architect));
  require_valid("story-architect", changed);
  CHECK(changed != plain);
  CHECK(changed.at("SCENES")["rows"].size() == plain.at("SCENES")["rows"].size());

  // identical_revisions: the revision is answered as if it carried no findings.
  SimSettings same = rates(0.0);
  same.identical_revisions = true;
  SimBackend stubborn(same, 7);
  CHECK(parse_answer("shot-planner", complete_text(stubborn, revision)).at("SHOTLIST") == before);
  CHECK(parse_answer("story-architect", complete_text(stubborn, architect)) == plain);
}

TEST_CASE("project thresholds raise the scores of passing outputs", "[sim]") {
  FakeGateContext context = sim_fixture_context();
  context.set_config("/thresholds/plaus_total", 10);
  context.set_config("/thresholds/qc/B", 12);
  SimSettings settings;
  settings.thresholds = context.config()["thresholds"];
  SimBackend backend(settings, 4);
  gates::GateResult plaus = gate_of(
      "plausibility-auditor",
      parse_answer("plausibility-auditor", complete_text(backend, sim_request_for("plausibility-auditor"))),
      context);
  CHECK(plaus.verdict == gates::Verdict::pass);
  ModelRequest qc = sim_request_for("qc-grader");
  qc.scope = {{"shot_id", "S01_SH02"}, {"attempt", 2}};  // hero B
  qc.inputs["SHOTLIST"] = row_with(artifact_fixture("shotlist"), "shot_id", "S01_SH02");
  gates::GateResult graded =
      gate_of("qc-grader", parse_answer("qc-grader", complete_text(backend, qc)), context);
  INFO(reasons_of(graded));
  CHECK(graded.verdict == gates::Verdict::pass);
}

TEST_CASE(
    "story-architect turns the demo brief into six scenes with its three characters and three locations",
    "[sim]") {
  SimBackend backend(SimSettings{}, 20261125);
  gates::Outputs story =
      parse_answer("story-architect", complete_text(backend, sim_request_for("story-architect")));
  const json& rows = story.at("SCENES")["rows"];
  REQUIRE(rows.size() == 6);
  std::set<std::string> characters;
  std::set<std::string> locations;
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO(rows[i].dump());
    CHECK(rows[i]["scene_id"] == "S0" + std::to_string(i + 1));
    for (const char* field : {"summary", "goal", "conflict", "outcome", "time_of_day"}) {
      CHECK_FALSE(rows[i][field].get<std::string>().empty());
    }
    CHECK_FALSE(rows[i]["characters_present"].empty());
    for (const json& c : rows[i]["characters_present"]) {
      characters.insert(c.get<std::string>());
    }
    locations.insert(rows[i]["location"].get<std::string>());
  }
  CHECK(characters == std::set<std::string>{"MARA_QUILL", "ELIAS_QUILL", "HARBOUR_MASTER_OYELARAN"});
  CHECK(locations == std::set<std::string>{"THE_LAMP_ROOM", "THE_KEEPER_S_COTTAGE", "THE_LANDING_STAGE"});
  // The beats follow the brief's suggested beats.
  CHECK(story.at("BEATS")["inciting_incident"].get<std::string>().find("ferry") != std::string::npos);
  CHECK(story.at("BEATS")["resolution"].get<std::string>().find("Dawn") != std::string::npos);
  CHECK(rows[5]["time_of_day"] == "Dawn");
}

TEST_CASE("a brief's \"Scenes: N\" line sets the number of scenes", "[sim]") {
  SimBackend backend(SimSettings{}, 1);
  ModelRequest request = sim_request_for("story-architect");
  request.inputs["BRIEF"] =
      "# Brief\n\n## Premise\nA courier must cross the city before curfew.\n\nScenes: 12\n\n"
      "## Characters\n- Ana Reyes \xE2\x80\x94 29, courier; quick, sometimes reckless.\n"
      "- Tomas \xE2\x80\x94 50, the dispatcher.\n\n## Locations\n- Depot \xE2\x80\x94 a garage.\n"
      "- Bridge \xE2\x80\x94 an old steel bridge.\n";
  gates::Outputs story = parse_answer("story-architect", complete_text(backend, request));
  require_valid("story-architect", story);
  const json& rows = story.at("SCENES")["rows"];
  REQUIRE(rows.size() == 12);
  CHECK(rows[11]["scene_id"] == "S12");
  std::set<std::string> locations;
  for (const json& row : rows) {
    locations.insert(row["location"].get<std::string>());
  }
  CHECK(locations == std::set<std::string>{"DEPOT", "BRIDGE"});
}

TEST_CASE("locks carry no hedge words even when the brief has them", "[sim]") {
  const std::string brief =
      "## Premise\nA courier must cross the city before curfew.\n\n## Characters\n"
      "- Ana Reyes \xE2\x80\x94 29, the courier; quick, sometimes reckless. Maybe tall, short dark hair, "
      "probably a red jacket; a scar that might fade.\n\n## Locations\n"
      "- Perhaps Bridge \xE2\x80\x94 an old steel bridge; usually foggy, kind of rusty rails.\n";
  FakeGateContext context;
  SimBackend backend(SimSettings{}, 3);
  for (const auto& [skill, scope] :
       std::vector<std::pair<std::string, json>>{{"character-lock", {{"entity_id", "ANA_REYES"}}},
                                                 {"set-lock", {{"entity_id", "PERHAPS_BRIDGE"}}},
                                                 {"voice-lock", {{"entity_id", "ANA_REYES"}}}}) {
    INFO(skill);
    ModelRequest request = sim_request_for(skill);
    request.scope = scope;
    request.inputs = {{"BRIEF", brief}};
    gates::Outputs outputs = parse_answer(skill, complete_text(backend, request));
    require_valid(skill, outputs);
    gates::GateResult result = gate_of(skill, outputs, context);
    INFO(reasons_of(result) << outputs.begin()->second.dump(1));
    CHECK(result.verdict == gates::Verdict::pass);
  }
}

TEST_CASE("the demo's breakdown, world-state diffs and shot plans stay coherent over all scenes", "[sim]") {
  SimBackend backend(SimSettings{}, 20261125);
  json scenes =
      parse_answer("story-architect", complete_text(backend, sim_request_for("story-architect"))).at("SCENES");

  ModelRequest breakdown_request = sim_request_for("script-breakdown");
  breakdown_request.inputs = {{"SCENES", scenes}, {"BRIEF", sim_demo_brief()}};
  json breakdown =
      parse_answer("script-breakdown", complete_text(backend, breakdown_request)).at("BREAKDOWN");
  require_valid("script-breakdown", {{"BREAKDOWN", breakdown}});
  FakeGateContext context;
  context.record("SCENES", "", scenes);
  gates::GateResult breakdown_gate = gate_of("script-breakdown", {{"BREAKDOWN", breakdown}}, context);
  INFO(reasons_of(breakdown_gate));
  CHECK(breakdown_gate.verdict == gates::Verdict::pass);

  // The STATE_DIFF chain from the empty initial state.
  json state = {{"format_version", 1},
                {"timeline", {{"current_scene", ""}, {"elapsed_time", ""}, {"global_notes", ""}}},
                {"characters", json::object()},
                {"props", json::object()},
                {"locations", json::object()},
                {"rules", {{"fictional_constraints", json::array()}, {"modified_rules", json::array()}}}};
  auto world_schema = core::JsonSchema::load(source_dir() / "schemas" / "world_state.schema.json");
  REQUIRE(world_schema.ok());
  int premium = 0;
  int shots = 0;
  for (const json& scene : scenes["rows"]) {
    const std::string id = scene["scene_id"].get<std::string>();
    json breakdown_row = row_with(breakdown, "scene_id", id);
    ModelRequest tracker = sim_request_for("world-state-tracker");
    tracker.scope = {{"scene_id", id}};
    tracker.inputs = {{"WORLD_STATE", state}, {"SCENES", scene}, {"BREAKDOWN", breakdown_row}};
    json diff = parse_answer("world-state-tracker", complete_text(backend, tracker)).at("STATE_DIFF");
    require_valid("world-state-tracker", {{"STATE_DIFF", diff}});
    std::vector<core::Violation> violations =
        builtins::check_world_state_continuity(state, diff, breakdown_row);
    for (const core::Violation& v : violations) {
      FAIL_CHECK(id << ": " << v.rule << " " << v.subject << ": " << v.message);
    }
    auto next = builtins::apply_state_diff(state, diff);
    REQUIRE(next.ok());
    state = *next;
    CHECK(world_schema->validate(state).empty());
    CHECK(state["timeline"]["current_scene"] == id);
    for (const json& c : scene["characters_present"]) {
      CHECK(state["characters"][c.get<std::string>()]["location"] == scene["location"]);
    }

    ModelRequest planner = sim_request_for("shot-planner");
    planner.scope = {{"scene_id", id}};
    planner.inputs = {{"SCENES", scene}, {"WORLD_STATE", state}};
    json shotlist = parse_answer("shot-planner", complete_text(backend, planner)).at("SHOTLIST");
    require_valid("shot-planner", {{"SHOTLIST", shotlist}});
    CHECK(shotlist["rows"].size() >= 2);
    CHECK(shotlist["rows"].size() <= 5);
    int heroes = 0;
    for (const json& shot : shotlist["rows"]) {
      CHECK(shot["set_id"] == scene["location"]);
      for (const json& c : shot["char_ids"]) {
        const json& present = scene["characters_present"];
        CHECK(std::find(present.begin(), present.end(), c) != present.end());
      }
      heroes += shot["hero_tier"] == "A" ? 1 : 0;
      CHECK_FALSE((shot["hero_tier"] == "A" && shot["camera_type"] == "wide"));
    }
    CHECK(heroes <= 1);
    premium += heroes;
    shots += static_cast<int>(shotlist["rows"].size());
  }
  // The brief's injuries persist to the end, and the whole cast is in the world.
  CHECK(state["characters"].size() == 3);
  CHECK_FALSE(state["characters"]["ELIAS_QUILL"]["injuries"].empty());
  CHECK(state["characters"]["HARBOUR_MASTER_OYELARAN"]["inventory"] == json::array({"CLIPBOARD"}));
  // "About twenty shots", and premium within the 25 % quota.
  CHECK(shots >= 14);
  CHECK(shots <= 30);
  CHECK(premium * 100 <= 25 * shots);
}

TEST_CASE("world-state-tracker writes explicit transfers and keeps injuries", "[sim]") {
  // S01 of the fixtures, from an empty world: MARIA owns the notebook and hands it over in S02.
  json state = artifact_fixture("world_state");
  state["characters"]["MARIA"]["inventory"] = json::array({"FLASHLIGHT"});
  state["characters"]["ALEX"]["inventory"] = json::array({"RED_NOTEBOOK"});
  state["props"]["FLASHLIGHT"] = {{"owner", "MARIA"}, {"location", "MARIA"}, {"status", "Working"}};
  json scene = row_with(artifact_fixture("scenes"), "scene_id", "S02");
  scene["characters_present"] = {"ALEX", "MARIA"};
  json breakdown_row = row_with(artifact_fixture("breakdown"), "scene_id", "S02");
  breakdown_row["characters_present"] = {"ALEX", "MARIA"};
  breakdown_row["state_changes"] = {"MARIA gives up FLASHLIGHT to ALEX", "ALEX feels cornered"};
  ModelRequest request = sim_request_for("world-state-tracker");
  request.inputs = {{"WORLD_STATE", state}, {"SCENES", scene}, {"BREAKDOWN", breakdown_row}};
  SimBackend backend(SimSettings{}, 2);
  json diff = parse_answer("world-state-tracker", complete_text(backend, request)).at("STATE_DIFF");
  CHECK(builtins::check_world_state_continuity(state, diff, breakdown_row).empty());
  CHECK(diff["prop_updates"]["FLASHLIGHT"]["owner"] == "ALEX");
  CHECK(diff["character_updates"]["MARIA"]["inventory"]["remove"] == json::array({"FLASHLIGHT"}));
  CHECK(diff["character_updates"]["ALEX"]["inventory"]["add"] == json::array({"FLASHLIGHT"}));
  CHECK(diff["character_updates"]["ALEX"]["emotional_state"] == "Cornered");
  auto next = builtins::apply_state_diff(state, diff);
  REQUIRE(next.ok());
  CHECK((*next)["characters"]["ALEX"]["injuries"] == state["characters"]["ALEX"]["injuries"]);
}

TEST_CASE("the sim answers whole artifacts as well as slices", "[sim]") {
  // The engine may pass a whole table where a row would do, or one lock where a map would.
  SimBackend backend(SimSettings{}, 8);
  for (const auto& [name, skill] : model_skills()) {
    INFO(name);
    ModelRequest request = sim_request_for(name);
    for (auto& [kind, value] : request.inputs.items()) {
      if (kind == "SCENES" || kind == "BREAKDOWN" || kind == "SHOTLIST") {
        std::string fixture = kind;
        std::transform(fixture.begin(), fixture.end(), fixture.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        value = artifact_fixture(fixture);
      } else if (kind == "CHAR_LOCK") {
        value = lock_of("char_lock", "ALEX");
      }
    }
    require_valid(name, parse_answer(name, complete_text(backend, request)));
    ModelRequest bare = sim_request_for(name);
    bare.inputs = json::object();  // nothing but the schema: still a valid answer
    bare.scope = json();
    require_valid(name, parse_answer(name, complete_text(backend, bare)));
  }
}

TEST_CASE("inputs of the wrong shape give a valid answer or a refused call, never a throw", "[sim]") {
  SimBackend backend(SimSettings{}, 8);
  const std::vector<json> odd = {42,
                                 "text",
                                 json::array({1, 2}),
                                 json{{"rows", 5}},
                                 json{{"characters", json::array({1})}, {"props", 3}},
                                 json{{"rows", json::array({json{{"scene_id", 7}, {"characters_present", "ALEX"}}})}}};
  for (const auto& [name, skill] : model_skills()) {
    for (const json& value : odd) {
      INFO(name << " with every input " << value.dump());
      ModelRequest request = sim_request_for(name);
      for (auto& [kind, input] : request.inputs.items()) {
        input = value;
      }
      std::optional<Result<backends::ModelResponse>> result;
      REQUIRE_NOTHROW(result.emplace(backend.complete(request)));
      if (result->ok()) {
        require_valid(name, parse_answer(name, (*result)->text));
      } else {
        CHECK(result->error().code == ErrorCode::invalid_argument);
        CHECK_FALSE(backends::retryable(result->error()));
      }
    }
  }
}

TEST_CASE("qc-grader answers one row when the schema asks for a row", "[sim]") {
  json row_schema =
      read_json(source_dir() / "schemas" / "qc_batch.schema.json")["properties"]["rows"]["items"];
  row_schema["$schema"] = "http://json-schema.org/draft-07/schema#";
  ModelRequest request = sim_request_for("qc-grader");
  request.output_schema = row_schema;
  SimBackend backend(SimSettings{}, 1);
  auto row = core::parse_json(complete_text(backend, request), "qc row");
  REQUIRE(row.ok());
  auto schema = core::JsonSchema::compile(row_schema, "qc row", source_dir() / "schemas");
  REQUIRE(schema.ok());
  CHECK(schema->validate(*row).empty());
  CHECK((*row)["shot_id"] == "S01_SH03");
}

TEST_CASE("usage counts a token per four bytes of the request and of the text", "[sim]") {
  SimBackend backend(SimSettings{}, 1);
  ModelRequest request = sim_request_for("plausibility-auditor");
  auto result = backend.complete(request);
  REQUIRE(result.ok());
  auto canonical = core::canonical_json(request.to_json());
  REQUIRE(canonical.ok());
  CHECK(result->usage.input_tokens == static_cast<int64_t>((canonical->size() + 3) / 4));
  CHECK(result->usage.output_tokens == static_cast<int64_t>((result->text.size() + 3) / 4));
  CHECK_FALSE(result->usage.provider_cost_micro_usd.has_value());
  CHECK(result->model == request.model);
}

TEST_CASE("max_output_tokens cuts the text as a real model's limit does", "[sim]") {
  SimBackend backend(SimSettings{}, 1);
  ModelRequest request = sim_request_for("story-architect");
  request.max_output_tokens = 50;
  auto result = backend.complete(request);
  REQUIRE(result.ok());
  CHECK(result->text.size() <= 200);
  CHECK(result->usage.output_tokens <= 50);
  CHECK_FALSE(core::parse_json(result->text, "cut").ok());
}

TEST_CASE(
    "a skill the sim has no generator for, asked without an output schema, is refused as unsupported, not "
    "retried",
    "[sim]") {
  SimBackend backend(SimSettings{}, 1);
  ModelRequest request = sim_request_for("plausibility-auditor");
  request.skill = "budget-gates";
  request.output_schema = json::object();  // with one it is answered from the schema (below)
  auto result = backend.complete(request);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == ErrorCode::unsupported);
  CHECK_FALSE(backends::retryable(result.error()));
}

TEST_CASE("calls from many threads give the bytes of sequential calls", "[sim]") {
  SimBackend backend(rates(0.3), 17);
  std::vector<std::string> names;
  for (const auto& [name, skill] : model_skills()) {
    names.push_back(name);
  }
  std::vector<ModelRequest> requests;
  for (const std::string& name : names) {
    requests.push_back(sim_request_for(name));
  }
  std::vector<std::string> sequential;
  for (const ModelRequest& request : requests) {
    sequential.push_back(complete_text(backend, request));
  }
  std::vector<std::string> parallel(requests.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < requests.size(); i += 4) {
        auto result = backend.complete(requests[i]);
        parallel[i] = result.ok() ? result->text : "";
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  CHECK(parallel == sequential);
}

namespace {

SimSettings image_media() {
  SimSettings settings;
  settings.media = "image";
  return settings;
}

}  // namespace

TEST_CASE("generate renders a deterministic PNG that fits in 64x64", "[sim]") {
  SimBackend backend(image_media(), 20261125);
  backends::GenerationRequest request;
  request.shot_id = "S01_SH03";
  request.attempt = 1;
  request.model = "sim-gen-premium";
  request.tier = "gen_premium";
  request.genpack_face = "[STYLE]\n...";
  request.resolution = "proxy";
  request.pixels = "640x272";
  request.duration_s = 3.5;
  request.seed = 20261125;

  auto first = backend.generate(request);
  REQUIRE(first.ok());
  auto again = backend.generate(request);
  REQUIRE(again.ok());
  CHECK(first->media_bytes == again->media_bytes);
  CHECK(first->extension == "png");
  CHECK(first->seconds_billed == 3.5);
  CHECK(first->model == "sim-gen-premium");

  const std::string& png = first->media_bytes;
  REQUIRE(png.size() > 33);
  CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(png.substr(12, 4) == "IHDR");
  auto u32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<uint8_t>(png[at])) << 24) |
           (static_cast<uint32_t>(static_cast<uint8_t>(png[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<uint8_t>(png[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<uint8_t>(png[at + 3]));
  };
  CHECK(u32(16) == 64);  // 640x272 scaled to fit 64x64
  CHECK(u32(20) == 27);
  // The IDAT chunk holds a stored zlib stream of every row (filter byte + RGB).
  REQUIRE(png.substr(37, 4) == "IDAT");
  CHECK(u32(33) == 2 + 5 + 27 * (1 + 64 * 3) + 4);
  CHECK(png.substr(png.size() - 8, 4) == "IEND");

  backends::GenerationRequest retry = request;
  retry.attempt = 2;
  CHECK(backend.generate(retry)->media_bytes != png);
  SimBackend other_seed(image_media(), 1);
  CHECK(other_seed.generate(request)->media_bytes != png);

  backends::GenerationRequest tall = request;
  tall.pixels = "1080x1920";
  auto portrait = backend.generate(tall);
  REQUIRE(portrait.ok());
  const std::string& p = portrait->media_bytes;
  CHECK(static_cast<uint8_t>(p[19]) == 36);  // width 1080 -> 36
  CHECK(static_cast<uint8_t>(p[23]) == 64);  // height 1920 -> 64

  backends::GenerationRequest broken = request;
  broken.pixels = "wide";
  auto refused = backend.generate(broken);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::invalid_argument);
}

TEST_CASE("renders are short MP4s where ffmpeg is installed, the same bytes each time, and storyboards stay PNG",
          "[sim]") {
  SimSettings video;
  video.media = "video";
  SimBackend backend(video, 20261125);
  backends::GenerationRequest request;
  request.shot_id = "S01_SH03";
  request.attempt = 1;
  request.model = "sim-gen-mid";
  request.tier = "gen_mid";
  request.genpack_face = "[STYLE]\n...";
  request.resolution = "final";
  request.pixels = "1920x816";  // 64x27 fitted, 64x28 for yuv420p
  request.duration_s = 4;
  request.seed = 20261125;
  auto first = backend.generate(request);
  if (std::system("ffmpeg -version > /dev/null 2>&1") != 0) {
    // Without ffmpeg, "video" cannot be honoured: the call fails, it never pretends.
    REQUIRE_FALSE(first.ok());
    CHECK(first.error().code == ErrorCode::io_error);
    return;
  }
  REQUIRE(first.ok());
  CHECK(first->extension == "mp4");
  const std::string& mp4 = first->media_bytes;
  CHECK(mp4.substr(4, 4) == "ftyp");
  CHECK(first->seconds_billed == 4);
  CHECK(backend.generate(request)->media_bytes == mp4);
  backends::GenerationRequest retry = request;
  retry.attempt = 2;
  CHECK(backend.generate(retry)->media_bytes != mp4);

  backends::GenerationRequest frame = request;
  frame.resolution = "storyboard";
  auto storyboard = backend.generate(frame);
  REQUIRE(storyboard.ok());
  CHECK(storyboard->extension == "png");
}

TEST_CASE("sim settings read the project's sim block and refuse what they cannot honour", "[sim]") {
  auto settings = SimSettings::from_json(json{{"latency_ms", 0},
                                              {"failure_rates", {{"qc-grader", 0.25}}},
                                              {"fix_rates", {{"storyboard-generator", 0.5}}},
                                              {"media_failure_rates", {{"gen_low", 0.4}}}});
  REQUIRE(settings.ok());
  CHECK(settings->failure_rates.at("qc-grader") == 0.25);
  CHECK(settings->fix_rates.at("storyboard-generator") == 0.5);
  CHECK(settings->media_failure_rates.at("gen_low") == 0.4);
  CHECK(SimSettings::from_json(json()).ok());

  CHECK_FALSE(SimSettings::from_json(json{{"failure_rates", {{"qc-grader", 1.5}}}}).ok());
  // A rate names a skill the sim answers, alone or for one shot, scene or entity; a typo is refused.
  CHECK(SimSettings::from_json(json{{"failure_rates", {{"qc-grader@S02_SH01", 1.0}}}}).ok());
  for (const char* bad : {"qc-grder", "qc-grader@", "generate@S01"}) {
    auto refused = SimSettings::from_json(json{{"fix_rates", {{bad, 0.5}}}});
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error().message, Catch::Contains(std::string("fix_rates.") + bad + ": expected a skill"));
  }
  CHECK(SimSettings::from_json(json{{"identical_revisions", true}})->identical_revisions);
  CHECK_FALSE(SimSettings::from_json(json{})->identical_revisions);
  CHECK_FALSE(SimSettings::from_json(json{{"identical_revisions", "yes"}}).ok());
  CHECK(SimSettings::from_json(json{{"media", "image"}})->media == "image");
  CHECK(SimSettings::from_json(json{})->media == "auto");
  CHECK_FALSE(SimSettings::from_json(json{{"media", "gif"}}).ok());
  CHECK_FALSE(SimSettings::from_json(json{{"failure_rates", {{"qc-grader", "high"}}}}).ok());
  CHECK_FALSE(SimSettings::from_json(json{{"latency_ms", -1}}).ok());
  CHECK_FALSE(SimSettings::from_json(json{{"media_failure_rates", {{"gen_ultra", 0.1}}}}).ok());
  auto unknown = SimSettings::from_json(json{{"failure_rate", 0.1}});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("failure_rate") != std::string::npos);

  FakeGateContext context;  // a merged project configuration
  json config = context.config();
  config["seed"] = 99;
  config["sim"] = {{"latency_ms", 0}, {"failure_rates", {{"plausibility-auditor", 1}}}};
  auto backend = SimBackend::from_config(config);
  REQUIRE(backend.ok());
  CHECK((*backend)->seed() == 99);
  CHECK((*backend)->settings().failure_rates.at("plausibility-auditor") == 1.0);
  CHECK((*backend)->settings().thresholds["plaus_total"] == 7);
}

TEST_CASE("the extended sim block validates against the project schema", "[sim]") {
  json schema = read_json(source_dir() / "schemas" / "project.schema.json");
  auto compiled = core::JsonSchema::compile(schema["properties"]["sim"], "sim", source_dir() / "schemas");
  REQUIRE(compiled.ok());
  CHECK(compiled
            ->validate(json{{"latency_ms", 0},
                            {"failure_rates", {{"qc-grader", 0.5}}},
                            {"fix_rates", {{"qc-grader", 0.5}}},
                            {"media_failure_rates", {{"gen_mid", 0.5}}},
                            {"identical_revisions", true}})
            .empty());
  CHECK_FALSE(compiled->validate(json{{"identical_revisions", 1}}).empty());
  CHECK_FALSE(compiled->validate(json{{"media_failure_rates", {{"gen_ultra", 0.5}}}}).empty());
  CHECK_FALSE(compiled->validate(json{{"fix_rates", {{"qc-grader", 2}}}}).empty());
}

namespace {

// The SCENES the sim's story-architect writes for the demo brief.
json demo_scenes(SimBackend& backend) {
  ModelRequest architect = sim_request_for("story-architect");
  architect.inputs["BRIEF"] = sim_demo_brief();
  return parse_answer("story-architect", complete_text(backend, architect)).at("SCENES");
}

}  // namespace

// Paged skills (skill.json "paging"): each page answers only its part and a small carry, and the
// pages together tell the same story as one whole call (the request stays flat, DESIGN §1.5).
TEST_CASE("story-architect written a page at a time gives every scene once, BEATS on page one", "[sim]") {
  SimBackend backend(SimSettings{}, 1);
  ModelRequest request = sim_request_for("story-architect");
  request.inputs["BRIEF"] =
      "# Brief\n\n## Premise\nA courier must cross the city before curfew.\n\nScenes: 23\n\n"
      "## Characters\n- Ana Reyes \xE2\x80\x94 29, courier.\n- Tomas \xE2\x80\x94 50, the dispatcher.\n\n"
      "## Locations\n- Depot \xE2\x80\x94 a garage.\n- Bridge \xE2\x80\x94 an old steel bridge.\n";
  const json whole = parse_answer("story-architect", complete_text(backend, request)).at("SCENES")["rows"];
  REQUIRE(whole.size() == 23);

  json rows = json::array();
  for (int index = 1; index <= 3; ++index) {
    request.scope["page"] = {{"index", index}, {"rows_per_page", 10}};
    auto answer = core::parse_json(complete_text(backend, request), "page");
    REQUIRE(answer.ok());
    INFO("page " << index);
    CHECK(answer->value("more", false) == (index < 3));
    CHECK(answer->contains("carry"));
    CHECK((*answer)["BEATS"].empty() == (index > 1));
    for (const json& row : (*answer)["SCENES"]["rows"]) {
      rows.push_back(row);
    }
  }
  REQUIRE(rows.size() == 23);
  for (size_t i = 0; i < rows.size(); ++i) {
    CHECK(rows[i]["scene_id"] == whole[i]["scene_id"]);
    CHECK(rows[i]["location"] == whole[i]["location"]);
    CHECK(rows[i]["characters_present"] == whole[i]["characters_present"]);
  }
}

TEST_CASE("script-breakdown by pages, carrying its ledger, introduces each entity exactly as one call does",
          "[sim]") {
  SimBackend backend(SimSettings{}, 1);
  const json scenes = demo_scenes(backend);
  const json all = scenes["rows"];
  REQUIRE(all.size() >= 4);

  ModelRequest request = sim_request_for("script-breakdown");
  request.inputs["BRIEF"] = sim_demo_brief();
  request.inputs["SCENES"] = scenes;
  const json whole = parse_answer("script-breakdown", complete_text(backend, request)).at("BREAKDOWN")["rows"];

  const size_t per_page = 2;
  const size_t pages = (all.size() + per_page - 1) / per_page;
  json rows = json::array();
  json carry;
  for (size_t index = 1; index <= pages; ++index) {
    const size_t offset = (index - 1) * per_page;
    json page_scenes = scenes;
    page_scenes["rows"] = json::array();
    for (size_t i = offset; i < std::min(all.size(), offset + per_page); ++i) {
      page_scenes["rows"].push_back(all[i]);
    }
    request.inputs["SCENES"] = page_scenes;
    request.inputs.erase("CARRY");
    if (!carry.is_null()) {
      request.inputs["CARRY"] = carry;
    }
    request.scope["page"] = {{"index", index},   {"rows_per_page", per_page}, {"of", pages},
                             {"offset", offset}, {"total_rows", all.size()}};
    auto answer = core::parse_json(complete_text(backend, request), "page");
    REQUIRE(answer.ok());
    REQUIRE(answer->contains("carry"));
    carry = (*answer)["carry"];
    for (const json& row : (*answer)["rows"]) {
      rows.push_back(row);
    }
  }
  REQUIRE(rows.size() == whole.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO(rows[i]["scene_id"]);
    for (const char* column : {"scene_id", "new_characters_introduced", "new_locations_introduced", "props_used",
                               "new_props_introduced", "state_changes", "lock_requirements"}) {
      CHECK(rows[i][column] == whole[i][column]);
    }
  }
}

TEST_CASE("narrative-red-team by pages answers only its notes until the last page writes the report", "[sim]") {
  SimBackend backend(SimSettings{}, 1);
  const json scenes = demo_scenes(backend);
  const json all = scenes["rows"];
  REQUIRE(all.size() >= 4);

  ModelRequest request = sim_request_for("narrative-red-team");
  json first_half = scenes;
  first_half["rows"] = json::array({all[0], all[1]});
  request.inputs["SCENES"] = first_half;
  request.scope["page"] = {{"index", 1}, {"rows_per_page", 2}, {"of", 2}, {"offset", 0}, {"total_rows", 4}};
  auto notes = core::parse_json(complete_text(backend, request), "page 1");
  REQUIRE(notes.ok());
  CHECK(notes->size() == 1);
  REQUIRE(notes->contains("carry"));

  json second_half = scenes;
  second_half["rows"] = json::array({all[2], all[3]});
  request.inputs["SCENES"] = second_half;
  request.inputs["CARRY"] = (*notes)["carry"];
  request.scope["page"] = {{"index", 2}, {"rows_per_page", 2}, {"of", 2}, {"offset", 2}, {"total_rows", 4}};
  auto report = core::parse_json(complete_text(backend, request), "page 2");
  REQUIRE(report.ok());
  report->erase("carry");
  require_valid("narrative-red-team", {{"REDTEAM", *report}});
  // The report reaches back to the first page through the carry.
  CHECK((*report)["hidden_weaknesses"][1].get<std::string>().find(all[0]["scene_id"].get<std::string>()) !=
        std::string::npos);
}

// ---- a skill the sim has no generator for (a project's own) -------------------------------------

namespace {

// A request of a project's skill "custom-skill" about scene S03 (shot S03_SH02 when `shot`), with
// the fixture SCENES and BREAKDOWN rows as inputs, answering `schema`.
ModelRequest custom_request(const json& schema, bool shot = false, uint64_t seed = 7) {
  ModelRequest request;
  request.skill = "custom-skill";
  request.model = "sim-t1";
  request.tier = "t1";
  request.prompt = "prompt of custom-skill";
  request.scope = shot ? json{{"shot_id", "S03_SH02"}} : json{{"scene_id", "S03"}};
  request.inputs = {
      {"SCENES", artifact_fixture("scenes")},
      {"BREAKDOWN", artifact_fixture("breakdown")},
      {"NOTES", {{"rows", {{{"char_id", "ELIAS_VANE"}, {"remark", "keeps the lamp lit all night long"}}}}}},
      {"BRIEF", sim_demo_brief()}};
  request.output_schema = schema;
  request.findings = json::array();
  request.max_output_tokens = 4000;
  request.seed = seed;
  return request;
}

// Every issue of `answer` against `schema` (references to shipped files resolve as they do for a
// project's schema: in the shipped schemas folder).
std::string schema_issues(const json& schema, const json& answer) {
  auto compiled = core::JsonSchema::compile(schema, "custom", source_dir() / "schemas");
  REQUIRE(compiled.ok());
  const std::vector<core::SchemaIssue> issues = compiled->validate(answer);
  return issues.empty() ? std::string() : core::format_schema_issues("answer", issues);
}

json answer_of(SimBackend& backend, const ModelRequest& request) {
  auto parsed = core::parse_json(complete_text(backend, request), "answer");
  REQUIRE(parsed.ok());
  return *parsed;
}

}  // namespace

TEST_CASE("a skill without a generator is answered from its output schema, valid for several shipped schemas",
          "[sim]") {
  for (const char* file : {"plaus.schema.json", "psych.schema.json", "culture.schema.json", "breakdown.schema.json",
                           "continuity_report.schema.json", "shotlist.schema.json", "storyboard_report.schema.json",
                           "state_diff.schema.json", "redteam.schema.json", "scenes.schema.json"}) {
    INFO(file);
    const json schema = read_json(source_dir() / "schemas" / file);
    for (uint64_t seed : {1u, 2u, 99u}) {
      SimBackend backend(SimSettings{}, seed);
      const json answer = answer_of(backend, custom_request(schema));
      INFO(answer.dump(2));
      CHECK(schema_issues(schema, answer) == "");
      if (schema["properties"].contains("scene_id")) {
        CHECK(answer["scene_id"] == "S03");  // the scope's scene, not a made-up one
      }
      if (answer.contains("gate")) {
        CHECK(answer["gate"]["verdict"] == "PASS");
      }
    }
  }
}

TEST_CASE(
    "the schema answer fills ids from the scope and inputs, picks enums, keeps numbers in range and is "
    "deterministic",
    "[sim]") {
  const json schema = json::parse(R"({
    "type": "object", "additionalProperties": false,
    "required": ["kind", "shot_id", "scene_id", "mood", "score", "ratio", "tags", "owner", "maybe", "flag", "props_used", "listed"],
    "properties": {
      "kind": {"type": "string", "const": "CUSTOM"},
      "shot_id": {"$ref": "common.schema.json#/definitions/shot_id"},
      "scene_id": {"$ref": "common.schema.json#/definitions/scene_id"},
      "mood": {"enum": ["calm", "tense", "grim"]},
      "score": {"type": "integer", "minimum": 3, "maximum": 9},
      "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
      "tags": {"type": "array", "minItems": 2, "maxItems": 4, "uniqueItems": true, "items": {"type": "string", "maxLength": 30}},
      "owner": {"allOf": [
        {"type": "object", "properties": {"char_id": {"$ref": "common.schema.json#/definitions/entity_id"}}, "required": ["char_id"]},
        {"properties": {"note": {"type": "string", "minLength": 40}}, "required": ["note"]}]},
      "maybe": {"anyOf": [{"type": "null"}, {"type": "string"}]},
      "flag": {"type": "boolean"},
      "props_used": {"$ref": "common.schema.json#/definitions/entity_list"},
      "listed": {"$ref": "#/definitions/short_list"}
    },
    "definitions": {"short_list": {"type": "array", "maxItems": 1, "items": {"type": "string", "minLength": 1}}}
  })");
  SimBackend backend(SimSettings{}, 5);
  const ModelRequest request = custom_request(schema, true);
  const json answer = answer_of(backend, request);
  INFO(answer.dump(2));
  CHECK(schema_issues(schema, answer) == "");
  CHECK(answer["shot_id"] == "S03_SH02");
  CHECK(answer["scene_id"] == "S03");                 // the shot's scene
  CHECK(answer["owner"]["char_id"] == "ELIAS_VANE");  // the only char_id of the inputs
  CHECK(answer["score"].get<int>() >= 6);             // the upper half of 3..9
  CHECK(answer["listed"].size() == 1);
  // Props come from the inputs' props_used (BREAKDOWN), never made up.
  std::set<std::string> known;
  const json breakdown = artifact_fixture("breakdown");
  for (const json& row : breakdown["rows"]) {
    for (const json& prop : row["props_used"]) {
      known.insert(prop.get<std::string>());
    }
  }
  for (const json& prop : answer["props_used"]) {
    CHECK(known.count(prop.get<std::string>()) == 1);
  }
  // Deterministic: the same request, the same bytes; readable text, not placeholders.
  CHECK(complete_text(backend, request) == complete_text(backend, request));
  CHECK(answer["owner"]["note"].get<std::string>().rfind("Note: ", 0) == 0);

  // Several outputs: one artifact per kind.
  const json map = {{"PLAUS", read_json(source_dir() / "schemas" / "plaus.schema.json")},
                    {"PSYCH", read_json(source_dir() / "schemas" / "psych.schema.json")}};
  const json both = answer_of(backend, custom_request(map));
  CHECK(schema_issues(map["PLAUS"], both["PLAUS"]) == "");
  CHECK(schema_issues(map["PSYCH"], both["PSYCH"]) == "");
}

TEST_CASE(
    "a field the schema answer cannot fill validly fails the call naming it, and a request without a schema "
    "is unsupported",
    "[sim]") {
  SimBackend backend(SimSettings{}, 5);
  const json schema = json::parse(
      R"({"type": "object", "required": ["code"], "properties": {"code": {"type": "string", "pattern": "^Q[0-9]{5}$"}}})");
  auto result = backend.complete(custom_request(schema));
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == ErrorCode::invalid_argument);
  CHECK(result.error().message.find("/code") != std::string::npos);
  CHECK(result.error().message.find("^Q[0-9]{5}$") != std::string::npos);

  auto none = backend.complete(custom_request(json::object()));
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::unsupported);
}
