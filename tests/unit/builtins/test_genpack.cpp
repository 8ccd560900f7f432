#include <catch2/catch.hpp>

#include "avps/artifacts/face.hpp"
#include "avps/builtins/genpack.hpp"
#include "avps/core/fs.hpp"
#include "support/fixture_film.hpp"

using namespace avps;
using nlohmann::json;
using testing::artifact_fixture;
using testing::k_source_root;
namespace fs = std::filesystem;

namespace {

builtins::LockFace lock(const std::string& kind, const std::string& fixture_name, const std::string& file) {
  json content = artifact_fixture(fixture_name);
  auto codec = artifacts::FaceCodec::load(k_source_root / "schemas", kind).value();
  return {file, codec.render(content).value(), content};
}

builtins::GenpackInputs inputs_for(const std::string& hero_tier) {
  builtins::GenpackInputs in;
  in.shot_row = artifact_fixture("shotlist")["rows"][0];  // S01_SH01: ALEX in the WAREHOUSE
  in.shot_row["hero_tier"] = hero_tier;
  in.style = lock("STYLE_LOCK", "style_lock", "STYLE_PROJECT_LOCK_v001.txt");
  in.set = lock("SET_LOCK", "set_lock", "SET_WAREHOUSE_LOCK_v001.txt");
  in.characters = {lock("CHAR_LOCK", "char_lock", "CHAR_ALEX_LOCK_v002.txt")};
  in.world_state = artifact_fixture("world_state");
  in.regen_rules = artifact_fixture("regen_rules");
  in.resolution = "proxy";
  in.tier = "gen_low";
  return in;
}

struct Packed {
  json content;
  std::string face;
  std::vector<builtins::LockFace> locks;
};

Packed pack(const std::string& hero_tier) {
  builtins::GenpackInputs in = inputs_for(hero_tier);
  auto content = builtins::assemble_genpack(in);
  INFO((content ? "" : content.error().message));
  REQUIRE(content.ok());
  auto codec = artifacts::FaceCodec::load(k_source_root / "schemas", "GENPACK").value();
  std::vector<builtins::LockFace> locks = {in.style, in.set};
  locks.insert(locks.end(), in.characters.begin(), in.characters.end());
  return {*content, codec.render(*content).value(), locks};
}

bool has(const std::vector<core::Violation>& violations, const std::string& rule) {
  return std::any_of(violations.begin(), violations.end(), [&](const core::Violation& v) { return v.rule == rule; });
}

}  // namespace

TEST_CASE("an assembled GenPack is schema-valid and carries every lock verbatim", "[builtins][genpack]") {
  Packed p = pack("C");
  auto codec = artifacts::FaceCodec::load(k_source_root / "schemas", "GENPACK").value();
  CHECK(codec.schema().validate(p.content).empty());
  CHECK(builtins::check_genpack(p.content, p.face, p.locks).empty());
  // Every forbidden-drift item of every lock is a negative.
  for (const builtins::LockFace& l : p.locks) {
    for (const json& item : l.content["forbidden_drift"]) {
      CHECK(std::find(p.content["negatives_no_drift"].begin(), p.content["negatives_no_drift"].end(), item) !=
            p.content["negatives_no_drift"].end());
    }
  }
  // The world state's continuity reaches the action; regen rules for other shots do not.
  CHECK_THAT(p.content["action"].get<std::string>(), Catch::Contains("ALEX carries RED_NOTEBOOK"));
  CHECK_THAT(p.content["action"].get<std::string>(), Catch::Contains("Cut on the left palm"));
  CHECK(p.content["characters"][0]["reinforced_anchors"].empty());  // not a hero-A shot
}

TEST_CASE("hero A shots restate two or three facial markers", "[builtins][genpack]") {
  Packed p = pack("A");
  size_t anchors = p.content["characters"][0]["reinforced_anchors"].size();
  CHECK(anchors >= 2);
  CHECK(anchors <= 3);
}

TEST_CASE("regen rules scoped to the shot's scene tighten the negatives", "[builtins][genpack]") {
  Packed p = pack("C");  // the fixture's REGEN_RULES has a constraint for every S01 shot
  const json& negatives = p.content["negatives_no_drift"];
  CHECK(std::any_of(negatives.begin(), negatives.end(),
                    [](const json& n) { return n.get<std::string>().find("jaw shape") != std::string::npos; }));
}

TEST_CASE("a GenPack whose lock paragraph is altered or missing fails", "[builtins][genpack]") {
  Packed p = pack("C");
  std::string altered = p.face;
  size_t at = altered.find("[Palette]\n");
  REQUIRE(at != std::string::npos);
  altered.insert(at + 10, "Brighter, ");
  auto violations = builtins::check_genpack(p.content, altered, p.locks);
  CHECK(has(violations, "genpack.lock"));

  std::string missing = p.face;
  const std::string& style_text = p.locks[0].face;
  missing.erase(missing.find(style_text), style_text.size());
  CHECK(has(builtins::check_genpack(p.content, missing, p.locks), "genpack.lock"));
}

TEST_CASE("a GenPack with its sections reordered fails", "[builtins][genpack]") {
  Packed p = pack("C");
  // Move [ACTION] (and its body) in front of [SET].
  size_t action = p.face.find("\n[ACTION]\n");
  size_t negatives = p.face.find("\n[NEGATIVES / NO-DRIFT]\n");
  size_t set = p.face.find("\n[SET]\n");
  std::string block = p.face.substr(action, negatives - action);
  std::string reordered = p.face;
  reordered.erase(action, block.size());
  reordered.insert(set, block);
  auto violations = builtins::check_genpack(p.content, reordered, p.locks);
  CHECK(has(violations, "genpack.order"));
}

TEST_CASE("a GenPack missing a forbidden-drift negative fails", "[builtins][genpack]") {
  Packed p = pack("C");
  p.content["negatives_no_drift"].erase(0);
  CHECK(has(builtins::check_genpack(p.content, p.face, p.locks), "genpack.negatives"));
}

TEST_CASE("the packager refuses a lock of the wrong entity", "[builtins][genpack]") {
  builtins::GenpackInputs in = inputs_for("B");
  in.characters[0].name = "CHAR_MARIA_LOCK_v001.txt";
  auto refused = builtins::assemble_genpack(in);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("ALEX"));
}

TEST_CASE("the GenPack fixture carries today's lock faces verbatim", "[builtins][genpack]") {
  // Keeps tests/fixtures/artifacts/genpack.json in step with the face codec and the lock fixtures.
  json content = artifact_fixture("genpack");
  auto codec = artifacts::FaceCodec::load(k_source_root / "schemas", "GENPACK").value();
  std::vector<builtins::LockFace> locks = {lock("STYLE_LOCK", "style_lock", "STYLE_PROJECT_LOCK_v001.txt"),
                                           lock("SET_LOCK", "set_lock", "SET_WAREHOUSE_LOCK_v001.txt"),
                                           lock("CHAR_LOCK", "char_lock", "CHAR_ALEX_LOCK_v001.txt")};
  CHECK(builtins::check_genpack(content, codec.render(content).value(), locks).empty());
}

TEST_CASE("inputs marked into_genpack are pasted verbatim, named, after ACTION, and the face round-trips",
          "[builtins][genpack]") {
  builtins::GenpackInputs in = inputs_for("B");
  const std::string face = "# Prop List: S01\n\nGate: PASS\n\n## Props Used\n- RED_NOTEBOOK\n\nReadiness Score: 2\n";
  in.carried = {{"PROP_LIST_S01_v003.md", face, json::object()}};
  auto content = builtins::assemble_genpack(in);
  REQUIRE(content.ok());
  REQUIRE((*content)["carried"].size() == 1);
  CHECK((*content)["carried"][0]["artifact"] == "PROP_LIST_S01_v003.md");
  CHECK((*content)["carried"][0]["text"] == face);
  auto codec = artifacts::FaceCodec::load(k_source_root / "schemas", "GENPACK").value();
  CHECK(codec.schema().validate(*content).empty());
  const std::string text = codec.render(*content).value();
  CHECK(text.find(face) != std::string::npos);  // verbatim, inside a block
  CHECK(text.find("[ACTION]") < text.find("[CARRIED INPUTS]"));
  CHECK(text.find("[CARRIED INPUTS]") < text.find("[NEGATIVES / NO-DRIFT]"));
  // The six sections still stand in order; the face parses back to the same GenPack.
  std::vector<builtins::LockFace> locks = {in.style, in.set};
  locks.insert(locks.end(), in.characters.begin(), in.characters.end());
  CHECK(builtins::check_genpack(*content, text, locks).empty());
  auto name = artifacts::parse_artifact_name("GENPACK_S01_SH01_v001.txt");
  REQUIRE(name.ok());
  auto parsed = codec.parse(text, *name);
  REQUIRE(parsed.ok());
  CHECK(codec.render(*parsed).value() == text);
  CHECK((*parsed)["carried"] == (*content)["carried"]);
  // Without carried inputs there is no such section: shipped GenPacks are as before.
  CHECK(codec.render(builtins::assemble_genpack(inputs_for("B")).value()).value().find("CARRIED") == std::string::npos);
}

// skills.md 2.19: the analyzer's adjustments reach the GenPack fields they name.
TEST_CASE("regen adjustments that name GenPack settings shorten the shot and set complexity and camera",
          "[builtins][genpack]") {
  builtins::GenpackInputs in = inputs_for("C");
  const double planned = in.shot_row["duration_s"].get<double>();
  REQUIRE(planned > 2);
  json rules = artifact_fixture("regen_rules");
  rules["prompt_adjustment_rules"].push_back({{"scope", {"S01_SH01"}},
                                              {"adjustment_type", "duration_reduction"},
                                              {"rule", "Cut the shot by a second."},
                                              {"settings", {{"duration_s", planned - 1}}}});
  rules["prompt_adjustment_rules"].push_back({{"scope", {"S01"}},
                                              {"adjustment_type", "complexity_reduction"},
                                              {"rule", "Lock off the camera."},
                                              {"settings", {{"complexity_level", "low"}, {"camera_type", "static"}}}});
  // Never lengthened, and a rule for another shot changes nothing here.
  rules["prompt_adjustment_rules"].push_back({{"scope", {"S01_SH01"}},
                                              {"adjustment_type", "duration_reduction"},
                                              {"rule", "Make it longer."},
                                              {"settings", {{"duration_s", planned + 5}}}});
  rules["prompt_adjustment_rules"].push_back({{"scope", {"S01_SH03"}},
                                              {"adjustment_type", "duration_reduction"},
                                              {"rule", "Cut S01_SH03."},
                                              {"settings", {{"duration_s", 1}}}});
  auto regen_schema = artifacts::FaceCodec::load(k_source_root / "schemas", "REGEN_RULES").value();
  CHECK(regen_schema.schema().validate(rules).empty());
  in.regen_rules = rules;
  auto content = builtins::assemble_genpack(in);
  REQUIRE(content.ok());
  CHECK(content->at("settings")["duration_s"] == planned - 1);
  CHECK(content->at("settings")["complexity_level"] == "low");
  CHECK(content->at("settings")["camera_type"] == "static");
  auto codec = artifacts::FaceCodec::load(k_source_root / "schemas", "GENPACK").value();
  CHECK(codec.schema().validate(*content).empty());
  // Without such a rule, the settings are the shot row's.
  in.regen_rules = artifact_fixture("regen_rules");
  auto plain = builtins::assemble_genpack(in);
  REQUIRE(plain.ok());
  CHECK(plain->at("settings")["duration_s"] == planned);
  CHECK_FALSE(plain->at("settings").contains("complexity_level"));
}

TEST_CASE("the analyzer's REGEN_RULES fail without an adjustment for the shot or a simplification of repeated drift",
          "[builtins][genpack]") {
  const json rules = artifact_fixture("regen_rules");  // S01_SH03: face drift over 2 attempts, an anchor rule, a split
  CHECK(builtins::check_regen_rules(rules, "S01_SH03", "S01").empty());
  // A scene-wide rule is an adjustment for each of its shots.
  CHECK(builtins::check_regen_rules(rules, "S01_SH02", "S01").empty());

  // No rule names the shot or its scene: a regen with no adjustment.
  const std::vector<std::string> none = builtins::check_regen_rules(rules, "S02_SH01", "S02");
  REQUIRE(none.size() == 1);
  CHECK_THAT(none[0], Catch::StartsWith("regen_rules_adjust_the_shot: no prompt adjustment rule names S02_SH01"));

  // Repeated drift with nothing that simplifies: complexity unchanged.
  json unchanged = rules;
  unchanged["structural_simplification_recommendations"] = json::array();
  const std::vector<std::string> drift = builtins::check_regen_rules(unchanged, "S01_SH03", "S01");
  REQUIRE(drift.size() == 1);
  CHECK_THAT(drift[0], Catch::StartsWith("regen_simplifies_repeated_drift: S01_SH03 drifted (face_drift) in 2"));
  // A duration or complexity adjustment answers it; one failed attempt is not yet repeated.
  json shorter = unchanged;
  shorter["prompt_adjustment_rules"].push_back({{"scope", {"S01_SH03"}},
                                                {"adjustment_type", "anchor_reinforcement"},
                                                {"rule", "Hold the face."},
                                                {"settings", {{"duration_s", 2}}}});
  CHECK(builtins::check_regen_rules(shorter, "S01_SH03", "S01").empty());
  json once = unchanged;
  once["failure_pattern_summary"][0]["failed_attempts"] = 1;
  CHECK(builtins::check_regen_rules(once, "S01_SH03", "S01").empty());
  // A motion artifact is not drift.
  json motion = unchanged;
  motion["failure_pattern_summary"][0]["failure_class"] = "motion_artifact";
  CHECK(builtins::check_regen_rules(motion, "S01_SH03", "S01").empty());
}
