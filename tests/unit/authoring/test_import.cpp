// A person's face goes through the discipline model output goes through (docs/cli.md `avps artifact
// import`), and `avps gate` judges the record it leaves the same way: QC_BATCH verdicts recomputed
// and said, BEATS judged with its SCENES, a STATE_DIFF bringing the next WORLD_STATE as one step.

#include <catch2/catch.hpp>
#include <filesystem>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/store.hpp"
#include "avps/authoring/import.hpp"
#include "avps/core/fs.hpp"
#include "avps/gates/record.hpp"
#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"
#include "support/fixture_film.hpp"

using namespace avps;
using nlohmann::json;
using testing::artifact_fixture;
using testing::k_source_root;
namespace fs = std::filesystem;

namespace {

struct ImportFilm : testing::FixtureFilm {
  skills::Registry registry;

  ImportFilm() : FixtureFilm("Import test") { registry = skills::Registry::load(project::data_dir(), &dir).value(); }

  // Records `content` as a model step's output would be (gate included when its kind has one).
  std::string record(const std::string& kind, const std::string& target, const json& content,
                     json details = json::object()) {
    return FixtureFilm::record(kind, target, content, "test", std::move(details)).name;
  }

  std::string face_of(const std::string& kind, const json& content) {
    return artifacts::FaceCodec::load(k_source_root / "schemas", kind).value().render(content).value();
  }

  authoring::FaceFile face(const std::string& kind, const std::string& target, const std::string& text) {
    return authoring::FaceFile{artifacts::make_artifact_name(kind, target, 1).value(), text, kind + " face"};
  }

  std::vector<std::string> gate_findings() const {
    std::vector<std::string> out;
    for (const core::Violation& v : gates::check_record(dir, project->ledger())) {
      if (v.rule == "gate.verdict" || v.rule == "world_state.chain") {
        out.push_back(v.rule + " " + v.subject + ": " + v.message);
      }
    }
    return out;
  }
};

}  // namespace

TEST_CASE("an imported QC_BATCH has its verdicts recomputed, each change said, and passes the gate", "[import]") {
  ImportFilm film;
  film.record("SHOTLIST", "S01", artifact_fixture("shotlist"));
  json batch = artifact_fixture("qc_batch");
  batch["rows"][0]["face_consistency"] = 0;  // SH01 still says PASS
  auto prepared = authoring::prepare_import(*film.project, film.registry,
                                            {film.face("QC_BATCH", "S01", film.face_of("QC_BATCH", batch))});
  INFO((prepared.ok() ? "" : prepared.error().message));
  REQUIRE(prepared.ok());
  // The grades of a wave with failed attempts are recorded, as the engine records them.
  CHECK(prepared->gate.verdict == gates::Verdict::fail);
  REQUIRE(prepared->artifacts.size() == 1);
  const json& rows = prepared->artifacts[0].content["rows"];
  CHECK(rows[0]["verdict"] == "FAIL");
  CHECK(rows[0]["model_verdict"] == "PASS");
  CHECK(prepared->recomputed ==
        std::vector<std::string>{
            "QC verdict of S01_SH01 attempt 1: PASS -> FAIL (avps's, from the scores and violations)"});
  CHECK(prepared->artifacts[0].content["violations"] == batch["violations"]);
  auto written = authoring::record_import(*film.project, *prepared, "regraded by the supervisor");
  REQUIRE(written.ok());
  CHECK(written->front().author == "human");
  CHECK(film.gate_findings().empty());

  // A row of a shot no SHOTLIST has cannot be graded: refused.
  batch["rows"][1]["shot_id"] = "S01_SH77";
  auto unknown = authoring::prepare_import(*film.project, film.registry,
                                           {film.face("QC_BATCH", "S01", film.face_of("QC_BATCH", batch))});
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(unknown.error().message, Catch::Contains("S01_SH77 is not a shot of the latest SHOTLIST of S01"));
}

TEST_CASE("a BEATS face is judged with the recorded SCENES, or with the SCENES given beside it", "[import]") {
  ImportFilm film;
  json beats = artifact_fixture("beats");
  auto alone =
      authoring::prepare_import(*film.project, film.registry, {film.face("BEATS", "", film.face_of("BEATS", beats))});
  REQUIRE_FALSE(alone.ok());  // no SCENES recorded: the gate has nothing to read
  CHECK_THAT(alone.error().message, Catch::Contains("import the faces its step writes together"));

  const std::string scenes = film.record("SCENES", "", artifact_fixture("scenes"));
  alone =
      authoring::prepare_import(*film.project, film.registry, {film.face("BEATS", "", film.face_of("BEATS", beats))});
  REQUIRE(alone.ok());
  CHECK(alone->judge == "story-architect");
  CHECK(alone->judged_with == std::vector<std::string>{scenes});
  REQUIRE(authoring::record_import(*film.project, *alone, "tighter midpoint").ok());
  CHECK(film.gate_findings().empty());

  // Together: one step; a SCENES that fails the gate refuses both.
  json twice = artifact_fixture("scenes");
  twice["rows"][1]["scene_id"] = twice["rows"][0]["scene_id"];
  beats["midpoint_shift"] = "The notebook is gone.";
  auto refused = authoring::prepare_import(
      *film.project, film.registry,
      {film.face("BEATS", "", film.face_of("BEATS", beats)), film.face("SCENES", "", film.face_of("SCENES", twice))});
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("the FAIL gate of story-architect refuses it"));
  json summary = artifact_fixture("scenes");
  summary["rows"][0]["summary"] = "Night. The warehouse is dark.";
  auto together = authoring::prepare_import(
      *film.project, film.registry,
      {film.face("BEATS", "", film.face_of("BEATS", beats)), film.face("SCENES", "", film.face_of("SCENES", summary))});
  REQUIRE(together.ok());
  CHECK(together->judged_with.empty());
  auto written = authoring::record_import(*film.project, *together, "night");
  REQUIRE(written.ok());
  CHECK(written->size() == 2);
  CHECK(film.gate_findings().empty());

  // Faces of two skills are not one step.
  auto mixed =
      authoring::prepare_import(*film.project, film.registry,
                                {film.face("BEATS", "", film.face_of("BEATS", beats)),
                                 film.face("CHAR_LOCK", "ALEX",
                                           film.face_of("CHAR_LOCK", artifact_fixture("char_lock")))});
  REQUIRE_FALSE(mixed.ok());
  CHECK(mixed.error().code == ErrorCode::invalid_argument);
}

TEST_CASE("an imported STATE_DIFF records the world before its scene with the diff applied", "[import]") {
  ImportFilm film;
  film.record("SCENES", "", artifact_fixture("scenes"));
  film.record("BREAKDOWN", "", artifact_fixture("breakdown"));  // who is in each scene
  json diff = artifact_fixture("state_diff");                   // S01, the first scene: it applies to the initial world
  diff["character_updates"]["ALEX"].erase("injuries");
  diff["character_updates"].erase("MARIA");
  diff["character_updates"]["ALEX"].erase("inventory");
  diff["prop_updates"] = json::object();
  auto prepared = authoring::prepare_import(*film.project, film.registry,
                                            {film.face("STATE_DIFF", "S01", film.face_of("STATE_DIFF", diff))});
  INFO((prepared.ok() ? "" : prepared.error().message));
  REQUIRE(prepared.ok());
  REQUIRE(prepared->artifacts.size() == 2);
  const authoring::PreparedArtifact& world = prepared->artifacts[1];
  CHECK(world.derived);
  CHECK(world.name.filename() == "WORLD_STATE_v002.json");
  CHECK(world.content["characters"]["ALEX"]["location"] == "WAREHOUSE");
  CHECK(world.details["inputs"][0]["names"][0] == "WORLD_STATE_v001.json");
  REQUIRE(authoring::record_import(*film.project, *prepared, "the cut comes later").ok());
  CHECK(film.gate_findings().empty());

  // Again: nothing to record. A WORLD_STATE by hand is refused; so is a diff of a scene whose
  // previous scene's world is not recorded.
  auto again = authoring::prepare_import(*film.project, film.registry,
                                         {film.face("STATE_DIFF", "S01", film.face_of("STATE_DIFF", diff))});
  REQUIRE(again.ok());
  CHECK_FALSE(again->changes_anything());
  auto by_hand = authoring::prepare_import(*film.project, film.registry,
                                           {film.face("WORLD_STATE", "", film.face_of("WORLD_STATE", world.content))});
  REQUIRE_FALSE(by_hand.ok());
  CHECK(by_hand.error().code == ErrorCode::invalid_argument);
  json second = diff;
  second["scene_id"] = "S02";
  second["timeline_update"]["current_scene"] = "S02";
  second["character_updates"]["ALEX"]["knowledge"]["add"] = json::array({"The ledger is forged"});
  auto next = authoring::prepare_import(*film.project, film.registry,
                                        {film.face("STATE_DIFF", "S02", film.face_of("STATE_DIFF", second))});
  INFO((next.ok() ? "" : next.error().message));
  REQUIRE(next.ok());  // S01's world is the imported one
  CHECK(next->artifacts[1].details["inputs"][0]["names"][0] == "WORLD_STATE_v002.json");
}

TEST_CASE("a WORLD_STATE an import re-derived names the recorded diff it applies, and the gate checks it",
          "[import][gate-record]") {
  ImportFilm film;
  film.record("SCENES", "", artifact_fixture("scenes"));
  film.record("BREAKDOWN", "", artifact_fixture("breakdown"));  // who is in each scene
  json diff = artifact_fixture("state_diff");
  diff["character_updates"] = json::object();
  diff["prop_updates"] = json::object();
  auto prepared = authoring::prepare_import(*film.project, film.registry,
                                            {film.face("STATE_DIFF", "S01", film.face_of("STATE_DIFF", diff))});
  REQUIRE(prepared.ok());
  auto written = authoring::record_import(*film.project, *prepared, "first");
  REQUIRE(written.ok());
  const std::string diff_name = (*written)[0].name;
  // A world recorded alone (as after an import interrupted between its two writes) naming that diff.
  json world = prepared->artifacts[1].content;
  json inputs = json::array({{{"kind", "WORLD_STATE"}, {"names", {"WORLD_STATE_v001.json"}}, {"sha256", ""}},
                             {{"kind", "STATE_DIFF"}, {"names", {diff_name}}, {"sha256", ""}}});
  film.record("WORLD_STATE", "", world,
              {{"step", "artifact-import/x"}, {"attempt", 1}, {"inputs", inputs}, {"scene", "S01"}});
  CHECK(film.gate_findings().empty());
  world["timeline"]["elapsed_time"] = "a week";
  const std::string wrong = film.record(
      "WORLD_STATE", "", world, {{"step", "artifact-import/y"}, {"attempt", 1}, {"inputs", inputs}, {"scene", "S01"}});
  auto found = film.gate_findings();
  REQUIRE(found.size() == 1);
  CHECK_THAT(found[0], Catch::Contains("world_state.chain continuity/" + wrong +
                                       ": is not WORLD_STATE_v001.json with " + diff_name + " applied"));
}
