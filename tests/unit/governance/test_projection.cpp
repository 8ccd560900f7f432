// Cost projection (cost-optimizer) on the SHOTLIST fixture, checked against arithmetic done by hand,
// and its COST_REPORT.

#include <catch2/catch.hpp>

#include "avps/governance/projection.hpp"
#include "avps/skills/registry.hpp"
#include "unit/governance/governance_support.hpp"

namespace {

using namespace avps;
using namespace avps::governance;
using avps::testing::read_repo_json;
using nlohmann::json;

std::vector<ShotPlan> fixture_shots() {
  auto shots = shots_from_shotlist(read_repo_json("tests/fixtures/artifacts/shotlist.json"));
  REQUIRE(shots.ok());
  return std::move(shots).value();
}

const ProjectionSettings k_projection_settings{"1920x1080", 25};

}  // namespace

TEST_CASE("the regen multipliers are the exact fractions 1.1, 1.3 and 1.6", "[governance]") {
  CHECK(regen_multiplier("low")->numerator == 11);
  CHECK(regen_multiplier("medium")->numerator == 13);
  CHECK(regen_multiplier("high")->numerator == 16);
  CHECK(regen_multiplier("high")->denominator == 10);
  CHECK_FALSE(regen_multiplier("extreme").ok());
}

TEST_CASE("the projection of the SHOTLIST fixture matches the arithmetic done by hand", "[governance]") {
  // Fixture models (proxy 640x360 / final 1920x1080 per second): low 20,000 / 80,000,
  // mid 50,000 / 250,000, premium 100,000 / 500,000.
  //   SH01  C  4.0 s  low    x1.1: proxy 4 × 20,000 × 1.1 =  88,000   final 4 × 80,000 × 1.1 =   352,000
  //   SH02  B  5.0 s  medium x1.3: proxy 5 × 50,000 × 1.3 = 325,000   final 5 × 250,000 × 1.3 = 1,625,000
  //   SH03  A  3.5 s  high   x1.6: proxy 3.5 × 100,000 × 1.6 = 560,000 final 3.5 × 500,000 × 1.6 = 2,800,000
  Router router(avps::testing::fixture_models());
  auto projection = project_costs(fixture_shots(), {}, router, k_projection_settings);
  REQUIRE(projection.ok());
  const CostProjection& p = *projection;

  REQUIRE(p.shots.size() == 3);
  CHECK(p.shots[0].model == "sim-video-low");  // not the unpriced local-comfyui of the same tier
  CHECK(p.shots[0].proxy_micro_usd == 88'000);
  CHECK(p.shots[0].final_micro_usd == 352'000);
  CHECK(p.shots[1].proxy_micro_usd == 325'000);
  CHECK(p.shots[1].final_micro_usd == 1'625'000);
  CHECK(p.shots[2].tier == "gen_premium");
  CHECK(p.shots[2].proxy_micro_usd == 560'000);
  CHECK(p.shots[2].final_micro_usd == 2'800'000);
  CHECK(p.proxy_micro_usd == 973'000);
  CHECK(p.final_micro_usd == 4'777'000);
  CHECK(p.total_micro_usd == 5'750'000);
  CHECK(p.duration_ms == 12'500);
  // (4 × 1.1 + 5 × 1.3 + 3.5 × 1.6) / 12.5 = 16.5 / 12.5 = 1.32
  CHECK(p.weighted_multiplier_numerator * 100 == p.weighted_multiplier_denominator * 132);

  REQUIRE(p.tiers.size() == 6);
  CHECK(p.tiers[0].tier == "gen_premium");
  CHECK(p.tiers[0].resolution == Resolution::proxy);
  CHECK(p.tiers[1].tier == "gen_premium");
  CHECK(p.tiers[1].resolution == Resolution::final);
  CHECK(p.tiers[5].tier == "gen_low");
  CHECK(p.tiers[5].projected_micro_usd == 352'000);

  REQUIRE(p.scenes.size() == 1);
  CHECK(p.scenes[0].scene_id == "S01");
  CHECK(p.scenes[0].total_micro_usd == 5'750'000);

  REQUIRE(p.high_risk.size() == 1);
  CHECK(p.high_risk[0].shot_id == "S01_SH03");
  CHECK_THAT(p.high_risk[0].reason, Catch::Contains("high regen risk"));

  // 25 % of 3 shots allows no premium shot: SH03 would move to gen_mid, saving
  // (560,000 + 2,800,000) − (3.5 × 50,000 × 1.6 + 3.5 × 250,000 × 1.6) = 3,360,000 − 1,680,000.
  REQUIRE(p.reallocations.size() == 1);
  CHECK(p.reallocations[0].change.shot_id == "S01_SH03");
  CHECK(p.reallocations[0].saving_micro_usd == -1'680'000);
}

TEST_CASE("model skill estimates add calls times the routed model's price per call", "[governance]") {
  Router router(avps::testing::fixture_models());
  ModelCallEstimate estimate{
      "plausibility-auditor", "S01", 3,
      Task::model_call("plausibility-auditor", "t2", Output::structured, ImageInput::none, 10'000, 2'000)};
  ModelCallEstimate project_level{
      "story-architect", "", 1,
      Task::model_call("story-architect", "t2", Output::structured, ImageInput::none, 1'000, 1'000)};
  auto projection = project_costs(fixture_shots(), {estimate, project_level}, router, k_projection_settings);
  REQUIRE(projection.ok());
  // sim-judgment $3 / $15 per million: 10,000 × 3 + 2,000 × 15 = 60,000 micro-USD per call, × 3.
  REQUIRE(projection->calls.size() == 2);
  CHECK(projection->calls[0].model == "sim-judgment");
  CHECK(projection->calls[0].per_call_micro_usd == 60'000);
  CHECK(projection->calls[0].total_micro_usd == 180'000);
  CHECK(projection->calls[1].total_micro_usd == 18'000);  // 1,000 × 3 + 1,000 × 15
  CHECK(projection->model_calls_micro_usd == 198'000);
  CHECK(projection->total_micro_usd == 5'750'000 + 198'000);
  REQUIRE(projection->scenes.size() == 2);
  CHECK(projection->scenes[0].total_micro_usd == 5'750'000 + 180'000);
  CHECK(projection->scenes[1].scene_id.empty());  // project-level calls last
  CHECK(projection->scenes[1].total_micro_usd == 18'000);
  REQUIRE(projection->model_tiers.size() == 1);
  CHECK(projection->model_tiers[0].calls == 4);
}

TEST_CASE("the COST_REPORT is schema-valid and carries the projection, actuals and cap", "[governance]") {
  Router router(avps::testing::fixture_models());
  auto projection = project_costs(fixture_shots(), {}, router, k_projection_settings);
  REQUIRE(projection.ok());

  CostReportOptions options;
  options.target = "S01";
  options.cap_micro_usd = 100'000'000;  // $100
  auto report = cost_report_json(*projection, options);
  REQUIRE(report.ok());
  INFO(report->dump(2));
  CHECK(avps::testing::schema_problems("cost_report.schema.json", *report).empty());
  CHECK((*report)["total_projected_cost_micro_usd"] == 5'750'000);
  CHECK((*report)["estimated_total_duration_s"] == 12.5);
  CHECK((*report)["estimated_regen_multiplier"] == 1.32);
  CHECK((*report)["gate"]["verdict"] == "PASS");
  CHECK((*report)["gate"]["scores"]["projected_pct_of_cap"] == 5.75);
  // The proxy rows are exactly the COST_REPORT fixture's.
  json fixture = read_repo_json("tests/fixtures/artifacts/cost_report.json");
  for (const json& row : fixture["cost_per_tier_breakdown"]) {
    auto& rows = (*report)["cost_per_tier_breakdown"];
    CHECK(std::find(rows.begin(), rows.end(), row) != rows.end());
  }
  REQUIRE((*report)["tier_reallocation_suggestions"].size() == 1);
  CHECK((*report)["tier_reallocation_suggestions"][0]["saving_micro_usd"] == -1'680'000);

  // Near and over the cap.
  options.cap_micro_usd = 6'000'000;
  CHECK(cost_report_json(*projection, options).value()["gate"]["verdict"] == "WARN");
  options.cap_micro_usd = 5'000'000;
  auto over = cost_report_json(*projection, options).value();
  CHECK(over["gate"]["verdict"] == "FAIL");
  CHECK_THAT(over["gate"]["reasons"][0].get<std::string>(), Catch::Contains("$5.750000"));

  // Projected vs actual per scene.
  options.target = "PROJECT";
  options.cap_micro_usd.reset();
  options.actual_by_scene = {{"S01", 6'900'000}};
  auto with_actuals = cost_report_json(*projection, options).value();
  CHECK(avps::testing::schema_problems("cost_report.schema.json", with_actuals).empty());
  CHECK(with_actuals["scene_breakdown"][0]["projected_micro_usd"] == 5'750'000);
  CHECK(with_actuals["scene_breakdown"][0]["actual_micro_usd"] == 6'900'000);
  CHECK(with_actuals["projected_vs_actual"]["actual_micro_usd"] == 6'900'000);
  bool flagged = false;
  for (const json& line : with_actuals["cost_reduction_recommendations"]) {
    flagged = flagged || line.get<std::string>().find("S01: actual $6.900000") != std::string::npos;
  }
  CHECK(flagged);
}

TEST_CASE("a projection needing an unpriced model fails naming it instead of costing 0", "[governance]") {
  json mid = avps::testing::video_model("mid-unpriced", "gen_mid", {{"640x360", 1}});
  mid.erase("pricing");
  Router router(avps::testing::models_from({
      avps::testing::video_model("low", "gen_low", {{"640x360", 20'000}, {"1920x1080", 80'000}}),
      mid,
      avps::testing::video_model("premium", "gen_premium", {{"640x360", 100'000}, {"1920x1080", 500'000}}),
  }));
  auto projection = project_costs(fixture_shots(), {}, router, k_projection_settings);
  REQUIRE_FALSE(projection.ok());
  CHECK(projection.error().code == ErrorCode::configuration);
  CHECK_THAT(projection.error().message, Catch::Contains("mid-unpriced"));

  auto nothing = project_costs({}, {}, router, k_projection_settings);
  REQUIRE_FALSE(nothing.ok());
  CHECK(nothing.error().code == ErrorCode::invalid_argument);
}

TEST_CASE("a project is projected from its recorded SCENES and SHOTLISTs through a callback",
          "[governance]") {
  json scenes = read_repo_json("tests/fixtures/artifacts/scenes.json");      // S01, S02
  json shotlist = read_repo_json("tests/fixtures/artifacts/shotlist.json");  // S01 only
  std::vector<std::string> asked;
  LatestArtifact latest = [&](std::string_view kind, std::string_view target) -> Result<std::optional<json>> {
    asked.push_back(std::string(kind) + "/" + std::string(target));
    if (kind == "SCENES") {
      return std::optional<json>(scenes);
    }
    if (kind == "SHOTLIST" && target == "S01") {
      return std::optional<json>(shotlist);
    }
    return std::optional<json>();
  };

  auto recorded = recorded_shots(latest);
  REQUIRE(recorded.ok());
  CHECK(recorded->scene_ids == std::vector<std::string>{"S01", "S02"});
  CHECK(recorded->shots.size() == 3);
  CHECK(recorded->scenes_without_shotlist == std::vector<std::string>{"S02"});
  // The project's ROUTING_DECISION last: the budget's re-routes (shot_tiers) set shots' tiers.
  CHECK(asked == std::vector<std::string>{"SCENES/", "SHOTLIST/S01", "SHOTLIST/S02", "ROUTING_DECISION/PROJECT"});

  auto registry = skills::Registry::load(avps::testing::repo_root(), nullptr);
  REQUIRE(registry.ok());
  Router router(avps::testing::shipped_models());
  auto projection = project_recorded(latest, registry->skills(), router, k_projection_settings, 8'000);
  REQUIRE(projection.ok());
  CHECK(projection->shots.size() == 3);
  CHECK(projection->scenes_without_shotlist == std::vector<std::string>{"S02"});
  CHECK(projection->model_calls_micro_usd > 0);
  CHECK(projection->total_micro_usd ==
        projection->proxy_micro_usd + projection->final_micro_usd + projection->model_calls_micro_usd);
  int64_t scene_sum = 0;
  for (const SceneLine& line : projection->scenes) {
    scene_sum += line.total_micro_usd;
  }
  CHECK(scene_sum == projection->total_micro_usd);  // every micro-dollar is in exactly one scene line
  // Scene-scoped skills are estimated for S02 too, although its video is not planned yet.
  bool s02_calls = std::any_of(projection->calls.begin(), projection->calls.end(),
                               [](const CallCost& c) { return c.estimate.scene_id == "S02"; });
  CHECK(s02_calls);
  auto report = cost_report_json(*projection, CostReportOptions{});
  REQUIRE(report.ok());
  CHECK(avps::testing::schema_problems("cost_report.schema.json", *report).empty());

  LatestArtifact empty = [](std::string_view, std::string_view) -> Result<std::optional<json>> {
    return std::optional<json>();
  };
  auto none = recorded_shots(empty);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::not_found);
}
