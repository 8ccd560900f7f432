// The estimate `avps cost` makes before there is a shot list: what it reads from a brief, the
// synthetic plan it builds, and the projection of that plan, checked by hand.

#include <catch2/catch.hpp>

#include "avps/core/fs.hpp"
#include "avps/governance/brief_estimate.hpp"
#include "avps/skills/registry.hpp"
#include "unit/governance/governance_support.hpp"

namespace {

using namespace avps;
using namespace avps::governance;
using Strings = std::vector<std::string>;

std::string demo_brief() {
  auto text = core::read_file(avps::testing::repo_root() / "examples/demo_short_film/brief.md");
  REQUIRE(text.ok());
  return std::move(text).value();
}

bool mentions(const Strings& lines, const std::string& text) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& line) { return line.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("the demo brief's length, cast and locations are read as the estimate uses them", "[cost]") {
  // "short — six scenes, about twenty shots, eight to ten minutes."
  BriefFacts facts = read_brief(demo_brief());
  CHECK(facts.scenes == 6);
  CHECK(facts.scenes_source == "the brief's ## Length (\"six scenes\")");
  CHECK(facts.shots == 20);
  CHECK_FALSE(facts.shots_per_scene);
  CHECK(facts.characters == Strings{"Mara Quill", "Elias Quill", "Harbour Master Oyelaran"});
  CHECK(facts.locations == Strings{"The lamp room", "The keeper's cottage", "The landing stage"});
  CHECK(facts.story_beats == 6);
}

TEST_CASE("a brief's scene count comes from a Scenes line, then Length, then its story beats", "[cost]") {
  BriefFacts line = read_brief("## Length\nfeature, 40 scenes\n\n- **Scenes:** 12\n");
  CHECK(line.scenes == 12);
  CHECK(line.scenes_source == "the brief's \"Scenes: 12\" line");

  BriefFacts beats =
      read_brief("## Length\nabout twenty-four shots a scene\n## Story beats\n1. a\n2. b\n3. c\n");
  CHECK(beats.scenes == 3);
  CHECK(beats.shots == 24);
  CHECK(beats.shots_per_scene);

  // Numbers outside the Length section are not lengths; a brief that says nothing gives nothing.
  BriefFacts elsewhere = read_brief("## Premise\nSix scenes of two shots.\n");
  CHECK_FALSE(elsewhere.scenes);
  CHECK_FALSE(elsewhere.shots);
  CHECK(read_brief("").characters.empty());
}

TEST_CASE("the demo brief becomes six scenes of twenty 5-second shots in the stated tier mix", "[cost]") {
  auto plan = plan_from_brief(read_brief(demo_brief()), BriefAssumptions{});
  REQUIRE(plan.ok());
  CHECK(plan->scene_ids == Strings{"S01", "S02", "S03", "S04", "S05", "S06"});
  REQUIRE(plan->shots.size() == 20);
  std::map<std::string, int> per_scene;
  std::map<std::string, int> per_tier;
  std::set<std::string> characters;
  std::set<std::string> sets;
  for (const ShotPlan& shot : plan->shots) {
    per_scene[shot.scene_id] += 1;
    per_tier[shot.hero_tier] += 1;
    characters.insert(shot.char_ids.begin(), shot.char_ids.end());
    sets.insert(shot.set_id);
    CHECK(shot.duration_ms == 5'000);
    CHECK(shot.regen_risk == "medium");
  }
  // 20 over 6 scenes: the first two take the remainder.
  CHECK(per_scene ==
        std::map<std::string, int>{{"S01", 4}, {"S02", 4}, {"S03", 3}, {"S04", 3}, {"S05", 3}, {"S06", 3}});
  CHECK(per_tier == std::map<std::string, int>{{"A", 4}, {"B", 10}, {"C", 6}});  // 20 / 50 / 30 %
  CHECK(plan->shots[0].shot_id == "S01_SH01");
  CHECK(plan->shots[19].shot_id == "S06_SH03");
  CHECK(characters.size() == 3);  // every character and location gets its locks
  CHECK(sets.size() == 3);
  // A shots are spread through the film, not bunched at one end.
  auto a_shots = [&](size_t from, size_t to) {
    return std::count_if(plan->shots.begin() + static_cast<std::ptrdiff_t>(from),
                         plan->shots.begin() + static_cast<std::ptrdiff_t>(to),
                         [](const ShotPlan& shot) { return shot.hero_tier == "A"; });
  };
  CHECK(a_shots(0, 10) == 2);
  CHECK(a_shots(10, 20) == 2);

  CHECK(mentions(plan->assumptions, "6 scenes, from the brief's ## Length (\"six scenes\")"));
  CHECK(mentions(plan->assumptions, "20 shots in all"));
  CHECK(mentions(plan->assumptions, "spread 4, 4, 3, 3, 3, 3"));
  CHECK(mentions(plan->assumptions, "5 s per shot"));
  CHECK(mentions(plan->assumptions, "4 A, 10 B, 6 C shots"));
  CHECK(mentions(plan->assumptions, "regen risk medium (x1.3)"));
}

TEST_CASE("without counts in the brief the estimate uses the defaults and says so", "[cost]") {
  auto plan = plan_from_brief(read_brief("# Brief\n## Premise\nA heist.\n"), BriefAssumptions{});
  REQUIRE(plan.ok());
  CHECK(plan->scene_ids.size() == 6);
  CHECK(plan->shots.size() == 24);  // 4 per scene
  CHECK(mentions(plan->assumptions, "6 scenes, from the default"));
  CHECK(mentions(plan->assumptions, "4 shots per scene, the default"));
  CHECK(mentions(plan->assumptions, "by default"));

  // Recorded SCENES win over the brief; a shot total below the scene count still gives each scene one.
  auto recorded =
      plan_from_brief(read_brief("## Length\ntwo shots\n"), BriefAssumptions{}, {"S01", "S02", "S03"});
  REQUIRE(recorded.ok());
  CHECK(recorded->scene_ids == Strings{"S01", "S02", "S03"});
  CHECK(recorded->shots.size() == 3);
  CHECK(mentions(recorded->assumptions, "as the recorded SCENES lists them"));
  CHECK(mentions(recorded->assumptions, "raised to one per scene"));

  BriefAssumptions bad;
  bad.hero_a_pct = 50;  // 50 + 50 + 30
  auto refused = plan_from_brief(BriefFacts{}, bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::invalid_argument);
  bad = BriefAssumptions{};
  bad.regen_risk = "extreme";
  CHECK_FALSE(plan_from_brief(BriefFacts{}, bad).ok());
}

TEST_CASE("the estimate from the demo brief is priced exactly like a planned shot list", "[cost]") {
  // Fixture models at 1920x1080, every shot 5 s × 1.3:
  //   A (gen_premium): proxy 5 × 100,000 × 1.3 = 650,000   final 5 × 500,000 × 1.3 = 3,250,000
  //   B (gen_mid):     proxy 5 ×  50,000 × 1.3 = 325,000   final 5 × 250,000 × 1.3 = 1,625,000
  //   C (gen_low):     proxy 5 ×  20,000 × 1.3 = 130,000   final 5 ×  80,000 × 1.3 =   520,000
  // 4 A + 10 B + 6 C = 15,600,000 + 19,500,000 + 3,900,000 = 39,000,000.
  Router router(avps::testing::fixture_models());
  const ProjectionSettings settings{"1920x1080", 25};
  auto estimate = estimate_from_brief(demo_brief(), BriefAssumptions{}, {}, {}, router, settings, 8'000);
  REQUIRE(estimate.ok());
  const CostProjection& p = estimate->projection;
  CHECK(p.total_micro_usd == 39'000'000);
  CHECK(p.proxy_micro_usd == 4 * 650'000 + 10 * 325'000 + 6 * 130'000);
  CHECK(p.duration_ms == 100'000);
  CHECK(p.reallocations.empty());  // 20 % premium is inside the 25 % quota
  REQUIRE(p.scenes.size() == 6);
  int64_t scene_sum = 0;
  for (const SceneLine& line : p.scenes) {
    scene_sum += line.total_micro_usd;
  }
  CHECK(scene_sum == p.total_micro_usd);

  // With the shipped skills, every model skill's calls are in: project-level, per scene, per
  // shot, and one lock per character and location.
  auto registry = skills::Registry::load(avps::testing::repo_root(), nullptr);
  REQUIRE(registry.ok());
  Router shipped(avps::testing::shipped_models());
  auto full =
      estimate_from_brief(demo_brief(), BriefAssumptions{}, {}, registry->skills(), shipped, settings, 8'000);
  REQUIRE(full.ok());
  CHECK(full->projection.model_calls_micro_usd > 0);
  CHECK(full->projection.scenes.back().scene_id.empty());  // project-level calls last
  auto calls_of = [&](const std::string& skill) {
    int64_t n = 0;
    for (const CallCost& call : full->projection.calls) {
      n += call.estimate.skill == skill ? call.estimate.calls : 0;
    }
    return n;
  };
  CHECK(calls_of("character-lock") == 3);
  CHECK(calls_of("set-lock") == 3);
  CHECK(calls_of("shot-planner") == 6);
  CHECK(calls_of("qc-grader") == 20);
}

TEST_CASE("a cast name that cannot become an entity id is named with its line, never dropped", "[cost][brief]") {
  CHECK(brief_name_problems(demo_brief()).empty());
  const std::string brief =
      "# A brief\n"
      "\n"
      "## Characters\n"
      "- Mara Quill — 17, the keeper's daughter\n"
      "- \xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1 — a ghost of the lighthouse\n"  // Ωμέγα: no Latin letter
      "- Mara-Quill: her double\n"
      "- MARA QUILL — the same name again, as the estimate counts it once\n"
      "## Locations\n"
      "- The Lamp Room / Gallery — up top\n"
      "- Mara Quill — a boat of that name, in its own list\n";
  const Strings problems = brief_name_problems(brief);
  REQUIRE(problems.size() == 3);
  CHECK_THAT(problems[0], Catch::StartsWith("line 5: the character display name \"\xCE\xA9\xCE\xBC\xCE\xAD\xCE\xB3\xCE\xB1\""));
  CHECK_THAT(problems[0], Catch::Contains("no ASCII letters or digits"));
  CHECK_THAT(problems[0], Catch::Contains("add a name in Latin letters"));
  CHECK(problems[1] ==
        "line 6: the character \"Mara-Quill\" makes the id MARA_QUILL, as \"Mara Quill\" on line 4 does: tell them "
        "apart by name");
  CHECK_THAT(problems[2], Catch::StartsWith("line 9: the location display name \"The Lamp Room / Gallery\""));
  CHECK_THAT(problems[2], Catch::Contains("path separator"));

  // A sentence where a name should be: no dash or colon ends the name.
  const Strings sentence = brief_name_problems(
      "## Cast\n- An old harbour master who has watched the lighthouse for forty years and trusts nobody\n");
  REQUIRE(sentence.size() == 1);
  CHECK_THAT(sentence[0], Catch::StartsWith("line 2: the character \"An old harbour master who has watched th...\" is 86 bytes"));
}
