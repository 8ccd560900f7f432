#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <future>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/store.hpp"
#include "avps/builtins/genpack.hpp"
#include "avps/builtins/world_state.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/clock.hpp"
#include "avps/core/fs.hpp"
#include "avps/gates/checked_objects.hpp"
#include "avps/gates/gate.hpp"
#include "avps/gates/integrity.hpp"
#include "avps/gates/project_context.hpp"
#include "avps/gates/record.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"
#include "support/fixture_film.hpp"

using namespace avps;
using nlohmann::json;
using testing::artifact_fixture;
using testing::k_source_root;
namespace fs = std::filesystem;

namespace {

struct GateRecordFilm : testing::FixtureFilm {
  GateRecordFilm() : FixtureFilm("Record test") {}

  // Records `content` as the next version of kind/target, written by `step` of `producer`.
  std::string write(const std::string& kind, const std::string& target, const json& content,
                    const std::string& producer, const std::string& step, json inputs = json::array()) {
    return record(kind, target, content, producer, {{"step", step}, {"attempt", 1}, {"inputs", inputs}}).path;
  }

  std::vector<core::Violation> check(gates::RecordCheckOptions options = {}) const {
    std::vector<core::Violation> found = gates::check_record(dir, project->ledger(), options);
    for (const core::Violation& v : found) {
      UNSCOPED_INFO(v.rule + " " + v.subject + ": " + v.message);
    }
    return found;
  }

  json gate_of(const std::string& skill, const json& content) {
    auto registry = skills::Registry::load(project::data_dir(), &dir).value();
    gates::ProjectGateContext context(*project);
    auto gate = gates::evaluate_gate(registry.find(skill)->raw, content, context);
    REQUIRE(gate.ok());
    return gate->to_json();
  }

  // Records a PLAUS of `target` whose content fails its gate (total_score 5) but whose recorded
  // gate says PASS: what gate.verdict must find.
  std::string write_forged_plaus(const std::string& target) {
    json forged = artifact_fixture("plaus");
    forged["total_score"] = 5;
    forged["gate"] = gate_of("plausibility-auditor", forged);
    forged["gate"]["verdict"] = "PASS";
    forged["gate"]["reasons"] = json::array();
    return write("PLAUS", target, forged, "plausibility-auditor", "plausibility-auditor/" + target + "@a");
  }
};

std::vector<std::string> rules_about(const std::vector<core::Violation>& violations, const std::string& subject) {
  std::vector<std::string> out;
  for (const core::Violation& v : violations) {
    if (v.subject == subject) {
      out.push_back(v.rule + ": " + v.message);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a recorded verdict is recomputed from its content and the thresholds its scores recorded", "[gate-record]") {
  GateRecordFilm film;
  json plaus = artifact_fixture("plaus");
  plaus["total_score"] = 5;  // below the default threshold of 7
  plaus["gate"] = film.gate_of("plausibility-auditor", plaus);
  REQUIRE(plaus["gate"]["verdict"] == "FAIL");
  const std::string honest = film.write("PLAUS", "S01", plaus, "plausibility-auditor", "plausibility-auditor/S01@a");
  CHECK(film.check().empty());

  // The same content recorded as passing: the gate names the artifact and the finding.
  json forged = plaus;
  forged["gate"]["verdict"] = "PASS";
  forged["gate"]["reasons"] = json::array();
  const std::string path = film.write("PLAUS", "S01", forged, "plausibility-auditor", "plausibility-auditor/S01@b");
  std::vector<std::string> found = rules_about(film.check(), path);
  REQUIRE(found.size() == 1);
  CHECK_THAT(found[0], Catch::StartsWith("gate.verdict: recorded PASS, but its recorded content gives FAIL"));
  CHECK_THAT(found[0], Catch::Contains("total_score 5 < 7"));
  CHECK(rules_about(film.check(), honest).empty());

  // A FAIL no rule explains is not what a gate writes either.
  json unexplained = artifact_fixture("plaus");
  unexplained["gate"] = film.gate_of("plausibility-auditor", unexplained);
  unexplained["gate"]["verdict"] = "FAIL";
  const std::string harsh =
      film.write("PLAUS", "S02", unexplained, "plausibility-auditor", "plausibility-auditor/S02@a");
  found = rules_about(film.check(), harsh);
  REQUIRE(found.size() == 1);
  CHECK_THAT(found[0], Catch::StartsWith("gate.verdict: recorded FAIL, but its recorded content gives PASS"));

  // Scores that are not the ones the gate computes.
  json rescored = artifact_fixture("plaus");
  rescored["gate"] = film.gate_of("plausibility-auditor", rescored);
  rescored["gate"]["scores"]["thresholds.plaus_total"] = 3;
  const std::string lowered =
      film.write("PLAUS", "S03", rescored, "plausibility-auditor", "plausibility-auditor/S03@a");
  CHECK(rules_about(film.check(), lowered).empty());  // a threshold recorded as it was in force is honoured
  rescored["total_score"] = 2;
  rescored["gate"]["reasons"] = json::array();
  const std::string cheated =
      film.write("PLAUS", "S03", rescored, "plausibility-auditor", "plausibility-auditor/S03@b");
  found = rules_about(film.check(), cheated);
  REQUIRE(found.size() == 1);
  CHECK_THAT(found[0], Catch::Contains("total_score 2 < 3"));
}

TEST_CASE("a recorded threshold stands even after the configuration changed", "[gate-record]") {
  GateRecordFilm film;
  json plaus = artifact_fixture("plaus");
  plaus["gate"] = film.gate_of("plausibility-auditor", plaus);
  REQUIRE(plaus["gate"]["verdict"] == "PASS");
  film.write("PLAUS", "S01", plaus, "plausibility-auditor", "plausibility-auditor/S01@a");
  json config = json::parse(core::read_file(film.dir / "avps.json").value());
  config["thresholds"]["plaus_total"] = 10;
  REQUIRE(
      core::write_file_atomic(film.dir / "avps.json", config.dump(2), core::Overwrite::yes, core::Durability::durable)
          .ok());
  CHECK(film.check().empty());
}

TEST_CASE("a WORLD_STATE a step wrote must be its input world with the step's diff applied", "[gate-record]") {
  GateRecordFilm film;
  json before = artifact_fixture("world_state");
  const std::string first = film.write("WORLD_STATE", "", before, "world-state-tracker", "");
  const std::string first_name = fs::path(first).filename().string();
  json diff = artifact_fixture("state_diff");
  diff["character_updates"] = json::object();  // what the fixture's diff does to ALEX the fixture world already holds
  diff["prop_updates"] = json::object();
  json inputs = json::array({{{"kind", "WORLD_STATE"}, {"names", {first_name}}, {"sha256", ""}}});
  auto applied = builtins::apply_state_diff(before, diff);
  INFO((applied.ok() ? "" : applied.error().message));
  REQUIRE(applied.ok());
  film.write("STATE_DIFF", diff["scene_id"], diff, "world-state-tracker", "world-state-tracker/S02@a");
  film.write("WORLD_STATE", "", *applied, "world-state-tracker", "world-state-tracker/S02@a", inputs);
  CHECK(film.check().empty());
  CHECK(film.check({.contents_cached = 1}).empty());  // each of the three contents read outlives the cache
  CHECK(film.check({.contents_bytes_cached = 1}).empty());  // and the cache bounded by bytes

  // The next step records a world that is not what its diff gives.
  json wrong = *applied;
  wrong["timeline"]["elapsed_time"] = "a week";
  film.write("STATE_DIFF", diff["scene_id"], diff, "world-state-tracker", "world-state-tracker/S02@b");
  const std::string path =
      film.write("WORLD_STATE", "", wrong, "world-state-tracker", "world-state-tracker/S02@b", inputs);
  std::vector<std::string> found = rules_about(film.check(), path);
  CHECK(rules_about(film.check({.contents_cached = 1}), path) == found);
  CHECK(rules_about(film.check({.contents_bytes_cached = 1}), path) == found);
  REQUIRE(found.size() == 1);
  CHECK_THAT(found[0], Catch::StartsWith("world_state.chain: is not " + first_name));
  CHECK_THAT(found[0], Catch::Contains("/timeline/elapsed_time"));
}

TEST_CASE("a passing GENPACK holds the locks recorded before it verbatim", "[gate-record]") {
  GateRecordFilm film;
  auto face_of = [](const std::string& kind, const json& content) {
    return artifacts::FaceCodec::load(k_source_root / "schemas", kind).value().render(content).value();
  };
  json style = artifact_fixture("style_lock");
  json set = artifact_fixture("set_lock");
  json character = artifact_fixture("char_lock");
  const std::string style_path = film.write("STYLE_LOCK", "PROJECT", style, "init", "");
  const std::string set_path = film.write("SET_LOCK", "WAREHOUSE", set, "set-lock", "set-lock/WAREHOUSE@a");
  const std::string char_path = film.write("CHAR_LOCK", "ALEX", character, "character-lock", "character-lock/ALEX@a");
  json shotlist = artifact_fixture("shotlist");
  shotlist["gate"] = film.gate_of("shot-planner", shotlist);  // MARIA has no lock here: a FAIL, honestly recorded
  film.write("SHOTLIST", "S01", shotlist, "shot-planner", "shot-planner/S01@a");

  builtins::GenpackInputs in;
  in.shot_row = shotlist["rows"][0];
  in.style = {fs::path(style_path).filename().string(), face_of("STYLE_LOCK", style), style};
  in.set = {fs::path(set_path).filename().string(), face_of("SET_LOCK", set), set};
  in.characters = {{fs::path(char_path).filename().string(), face_of("CHAR_LOCK", character), character}};
  in.world_state = artifact_fixture("world_state");
  in.regen_rules = artifact_fixture("regen_rules");
  in.resolution = "proxy";
  in.tier = "gen_low";
  auto pack = builtins::assemble_genpack(in);
  REQUIRE(pack.ok());
  json genpack = *pack;
  genpack["gate"] = gates::GateResult{}.to_json();
  genpack["gate"] = film.gate_of("prompt-packager", genpack);
  REQUIRE(genpack["gate"]["verdict"] == "PASS");
  const std::string shot = shotlist["rows"][0]["shot_id"];
  film.write("GENPACK", shot, genpack, "prompt-packager", "prompt-packager/" + shot + "@a");
  CHECK(film.check().empty());
  // The same with a cache of one parsed content: the GenPack being checked outlives the clearing
  // its locks' reads cause (at 500 scenes the gate's cache filled mid-check and the finding read
  // freed memory).
  CHECK(film.check({.contents_cached = 1}).empty());

  // One lock paragraph changed in a GenPack still recorded as passing.
  json altered = genpack;
  std::string text = altered["set"]["text"];
  text.insert(text.find("\n\n") + 2, "Brighter, ");
  altered["set"]["text"] = text;
  const std::string path = film.write("GENPACK", shot, altered, "prompt-packager", "prompt-packager/" + shot + "@b");
  std::vector<std::string> found = rules_about(film.check(), path);
  CHECK(rules_about(film.check({.contents_cached = 1}), path) == found);
  CHECK(std::count_if(found.begin(), found.end(),
                      [](const std::string& f) { return f.rfind("genpack.locks: recorded PASS but", 0) == 0; }) >= 1);
  CHECK(std::count_if(found.begin(), found.end(),
                      [](const std::string& f) { return f.rfind("gate.verdict: recorded PASS", 0) == 0; }) == 1);
}

namespace {

std::vector<std::string> violation_lines(const std::vector<core::Violation>& violations) {
  std::vector<std::string> out;
  for (const core::Violation& v : violations) {
    out.push_back(v.rule + " " + v.subject + ": " + v.message);
  }
  return out;
}

}  // namespace

TEST_CASE("the record check beside the integrity check gives the findings each gives alone", "[gate-record]") {
  // As `avps gate` runs them: the record check on a thread of its own, noting what it read
  // (CheckedObjects), and the integrity check waiting for it after its events (after_events), then
  // taking those notes instead of reading the objects again.
  GateRecordFilm film;
  json plaus = artifact_fixture("plaus");
  plaus["gate"] = film.gate_of("plausibility-auditor", plaus);
  const std::string honest = film.write("PLAUS", "S01", plaus, "plausibility-auditor", "plausibility-auditor/S01@a");
  const std::string cheated = film.write_forged_plaus("S02");
  // A schema of the project's own that every PLAUS recorded breaks (artifact.schema, from what
  // the record check noted), and a face edited by hand (artifact.hash).
  json schema =
      core::parse_json(core::read_file(k_source_root / "schemas" / "plaus.schema.json").value(), "plaus schema").value();
  schema["required"].push_back("zz_required");
  fs::create_directories(film.dir / "schemas");
  REQUIRE(core::write_file_atomic(film.dir / "schemas" / "plaus.schema.json", schema.dump(1), core::Overwrite::yes,
                                  core::Durability::cached)
              .ok());
  REQUIRE(core::write_file_atomic(film.dir / honest, "edited by hand\n", core::Overwrite::yes, core::Durability::cached)
              .ok());

  const ledger::Ledger& ledger = film.project->ledger();
  const gates::ProjectFiles files = gates::list_project_files(film.dir);
  const std::vector<std::string> integrity_alone = violation_lines(gates::check_integrity(film.dir, ledger, files));
  const std::vector<std::string> record_alone = violation_lines(gates::check_record(film.dir, ledger));

  gates::CheckedObjects checked(film.dir);
  std::future<std::vector<core::Violation>> record_beside =
      std::async(std::launch::async, [&]() { return gates::check_record(film.dir, ledger, {.checked = &checked}); });
  std::vector<std::string> record_shared;
  gates::IntegrityOptions options{.checked = &checked};
  options.after_events = [&]() { record_shared = violation_lines(record_beside.get()); };
  const std::vector<std::string> integrity_shared =
      violation_lines(gates::check_integrity(film.dir, ledger, files, options));

  // The shared path was taken: the record check noted both objects, validated as PLAUS.
  const std::vector<ledger::ArtifactRecord> records = ledger.artifacts().value();
  for (const ledger::ArtifactRecord& r : records) {
    if (r.kind == "PLAUS") {
      const gates::CheckedObjects::Noted* noted = checked.find(r.json_sha256);
      REQUIRE(noted != nullptr);
      CHECK(noted->issues_by_kind.count("PLAUS") == 1);
    }
  }
  CHECK(integrity_shared == integrity_alone);
  CHECK(record_shared == record_alone);
  CHECK(std::count_if(integrity_alone.begin(), integrity_alone.end(),
                      [](const std::string& f) { return f.rfind("artifact.schema ", 0) == 0; }) == 2);
  CHECK(std::count_if(integrity_alone.begin(), integrity_alone.end(),
                      [&](const std::string& f) { return f.rfind("artifact.hash " + honest, 0) == 0; }) == 1);
  CHECK(std::count_if(record_alone.begin(), record_alone.end(),
                      [&](const std::string& f) { return f.rfind("gate.verdict " + cheated, 0) == 0; }) == 1);
}

TEST_CASE("the record check gives the same findings in the same order on one thread and on several",
          "[gate-record][threads]") {
  // Given many steps, every third one's verdict forged, when the steps are checked on one thread
  // and on four (each taking a few steps at a time, with caches of its own), then the findings are
  // the same, in the order of the steps and the record.
  GateRecordFilm film;
  std::vector<std::string> forged_paths;
  for (int scene = 1; scene <= 40; ++scene) {
    const std::string target = "S" + std::string(scene < 10 ? "0" : "") + std::to_string(scene);
    json plaus = artifact_fixture("plaus");
    if (scene % 3 == 0) {
      plaus["total_score"] = 5;
      plaus["gate"] = film.gate_of("plausibility-auditor", plaus);
      plaus["gate"]["verdict"] = "PASS";
      plaus["gate"]["reasons"] = json::array();
    } else {
      plaus["gate"] = film.gate_of("plausibility-auditor", plaus);
    }
    const std::string path =
        film.write("PLAUS", target, plaus, "plausibility-auditor", "plausibility-auditor/" + target + "@a");
    if (scene % 3 == 0) {
      forged_paths.push_back(path);
    }
  }
  const std::vector<std::string> one = violation_lines(film.check({.threads = 1}));
  const std::vector<std::string> four = violation_lines(film.check({.threads = 4}));
  const std::vector<std::string> four_small_caches = violation_lines(film.check({.contents_cached = 1, .threads = 4}));
  CHECK(four == one);
  CHECK(four_small_caches == one);
  REQUIRE(one.size() == forged_paths.size());
  for (size_t i = 0; i < one.size(); ++i) {
    CHECK(one[i].rfind("gate.verdict " + forged_paths[i], 0) == 0);
  }
}

TEST_CASE("the record check on its own thread beside the integrity check of a reader gives the findings each gives alone",
          "[gate-record][threads]") {
  // As `avps gate` runs them since they share the machine's cores: over one read-only ledger, the
  // record check on a thread of its own (and its helpers), the integrity check waiting for it
  // (after_events) before it looks at the objects the record check noted.
  GateRecordFilm film;
  const std::string cheated = film.write_forged_plaus("S02");
  for (int scene = 3; scene <= 30; ++scene) {
    json plaus = artifact_fixture("plaus");
    plaus["gate"] = film.gate_of("plausibility-auditor", plaus);
    const std::string target = "S" + std::string(scene < 10 ? "0" : "") + std::to_string(scene);
    film.write("PLAUS", target, plaus, "plausibility-auditor", "plausibility-auditor/" + target + "@a");
  }
  REQUIRE(film.project->ledger().flush().ok());
  const std::string honest =
      film.write("PLAUS", "S01", artifact_fixture("plaus"), "plausibility-auditor", "plausibility-auditor/S01@a");
  REQUIRE(core::write_file_atomic(film.dir / honest, "edited by hand\n", core::Overwrite::yes, core::Durability::cached)
              .ok());
  REQUIRE(film.project->ledger().flush().ok());

  core::SystemClock clock;
  std::unique_ptr<ledger::Ledger> reader = ledger::Ledger::open(film.dir, ledger::OpenMode::read_only, clock).value();
  const gates::ProjectFiles files = gates::list_project_files(film.dir);
  const std::vector<std::string> integrity_alone = violation_lines(gates::check_integrity(film.dir, *reader, files));
  const std::vector<std::string> record_alone = violation_lines(gates::check_record(film.dir, *reader, {.threads = 1}));

  gates::CheckedObjects checked(film.dir);
  gates::RecordCheckOptions record_options{.checked = &checked, .threads = 2};
  std::future<std::vector<core::Violation>> record_check = std::async(
      std::launch::async, [&]() { return gates::check_record(film.dir, *reader, record_options); });
  std::vector<std::string> record_beside;
  gates::IntegrityOptions options{.checked = &checked};
  options.threads = 3;  // its objects, faces and renders on three threads, as on a machine of three cores
  options.after_events = [&]() { record_beside = violation_lines(record_check.get()); };
  const std::vector<std::string> integrity_beside =
      violation_lines(gates::check_integrity(film.dir, *reader, files, options));

  CHECK(integrity_beside == integrity_alone);
  CHECK(record_beside == record_alone);
  CHECK(std::count_if(integrity_alone.begin(), integrity_alone.end(),
                      [&](const std::string& f) { return f.rfind("artifact.hash " + honest, 0) == 0; }) == 1);
  CHECK(std::count_if(record_alone.begin(), record_alone.end(),
                      [&](const std::string& f) { return f.rfind("gate.verdict " + cheated, 0) == 0; }) == 1);
}
