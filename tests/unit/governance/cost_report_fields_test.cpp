// COST_REPORT's scene_breakdown and projected_vs_actual: what cost_report_json writes there, and
// that the fields survive the artifact's face.

#include <catch2/catch.hpp>
#include <numeric>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/governance/projection.hpp"
#include "unit/governance/governance_support.hpp"

namespace {

using namespace avps;
using namespace avps::governance;
using avps::testing::read_repo_json;
using nlohmann::json;

const ProjectionSettings k_settings{"1920x1080", 25};

// The SHOTLIST fixture (S01: 3 shots, 5.75 $ of video) plus 0.18 $ of S01 calls and 0.018 $ of
// project-level calls, priced on the fixture models.
CostProjection fixture_projection() {
  auto shots = shots_from_shotlist(read_repo_json("tests/fixtures/artifacts/shotlist.json"));
  REQUIRE(shots.ok());
  ModelCallEstimate scene_calls{
      "plausibility-auditor", "S01", 3,
      Task::model_call("plausibility-auditor", "t2", Output::structured, ImageInput::none, 10'000, 2'000)};
  ModelCallEstimate project_calls{
      "story-architect", "", 1,
      Task::model_call("story-architect", "t2", Output::structured, ImageInput::none, 1'000, 1'000)};
  Router router(avps::testing::fixture_models());
  auto projection = project_costs(*shots, {scene_calls, project_calls}, router, k_settings);
  REQUIRE(projection.ok());
  return std::move(projection).value();
}

}  // namespace

TEST_CASE("every COST_REPORT breaks its projection down by scene, project-level calls last", "[cost]") {
  auto report = cost_report_json(fixture_projection(), CostReportOptions{});
  REQUIRE(report.ok());
  INFO(report->dump(2));
  CHECK(avps::testing::schema_problems("cost_report.schema.json", *report).empty());

  const json& rows = (*report)["scene_breakdown"];
  REQUIRE(rows.size() == 2);
  CHECK(rows[0] == json{{"scene_id", "S01"},
                        {"shots", 3},
                        {"duration_s", 12.5},
                        {"projected_micro_usd", 5'750'000 + 180'000}});
  CHECK(rows[1] ==
        json{{"scene_id", "PROJECT"}, {"shots", 0}, {"duration_s", 0}, {"projected_micro_usd", 18'000}});
  int64_t sum = 0;
  for (const json& row : rows) {
    sum += row["projected_micro_usd"].get<int64_t>();
  }
  CHECK(sum == (*report)["total_projected_cost_micro_usd"].get<int64_t>());

  // Without actuals there is nothing to compare, and the scores hold no per-scene numbers.
  CHECK_FALSE(report->contains("projected_vs_actual"));
  CHECK_FALSE(rows[0].contains("actual_micro_usd"));
  for (const auto& score : (*report)["gate"]["scores"].items()) {
    CHECK(score.key().find("S01") == std::string::npos);
    CHECK(score.key() != "actual_micro_usd");
  }
}

TEST_CASE("actual spend per scene is set against the projection of the same scenes", "[cost]") {
  CostReportOptions options;
  options.actual_by_scene = {{"S01", 6'000'000}, {"S02", 250'000}, {"", 15'000}};
  options.cap_micro_usd = 100'000'000;
  auto report = cost_report_json(fixture_projection(), options);
  REQUIRE(report.ok());
  INFO(report->dump(2));
  CHECK(avps::testing::schema_problems("cost_report.schema.json", *report).empty());
  CHECK((*report)["gate"]["verdict"] == "PASS");  // the verdict still reads the projection and the cap

  // S02 has spend but no projection (not planned yet): a row of 0 before the PROJECT row.
  const json& rows = (*report)["scene_breakdown"];
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["scene_id"] == "S01");
  CHECK(rows[0]["actual_micro_usd"] == 6'000'000);
  CHECK(rows[0]["variance_micro_usd"] == 6'000'000 - 5'930'000);
  CHECK(rows[1] == json{{"scene_id", "S02"},
                        {"shots", 0},
                        {"duration_s", 0},
                        {"projected_micro_usd", 0},
                        {"actual_micro_usd", 250'000},
                        {"variance_micro_usd", 250'000}});
  CHECK(rows[2]["scene_id"] == "PROJECT");
  CHECK(rows[2]["variance_micro_usd"] == 15'000 - 18'000);  // under the projection: negative

  // (6,265,000 − 5,948,000) × 100 / 5,948,000 = 5.3295... → 5.33
  const json& versus = (*report)["projected_vs_actual"];
  CHECK(versus["projected_micro_usd"] == 5'930'000 + 0 + 18'000);
  CHECK(versus["actual_micro_usd"] == 6'265'000);
  CHECK(versus["variance_pct"] == 5.33);

  // Overspent rows get a recommendation; an underspent one does not.
  std::string recommendations = (*report)["cost_reduction_recommendations"].dump();
  CHECK_THAT(recommendations,
             Catch::Contains("S01: actual $6.000000 exceeds the projection $5.930000 (1% over)"));
  CHECK_THAT(recommendations, Catch::Contains("S02: actual $0.250000 exceeds the projection $0.000000;"));
  CHECK_THAT(recommendations, !Catch::Contains("Project-level calls"));
}

TEST_CASE("a spend under the projection gives a negative variance, rounded away from zero", "[cost]") {
  CostReportOptions options;
  options.actual_by_scene = {{"S01", 1'000'000}};  // of 5,930,000: −83.136...% → −83.14
  auto report = cost_report_json(fixture_projection(), options);
  REQUIRE(report.ok());
  CHECK((*report)["projected_vs_actual"]["variance_pct"] == -83.14);

  // Spend only where nothing was projected: no percentage to give.
  options.actual_by_scene = {{"S07", 5}};
  auto unprojected = cost_report_json(fixture_projection(), options);
  REQUIRE(unprojected.ok());
  CHECK((*unprojected)["projected_vs_actual"] == json{{"projected_micro_usd", 0}, {"actual_micro_usd", 5}});
  CHECK(avps::testing::schema_problems("cost_report.schema.json", *unprojected).empty());

  options.actual_by_scene = {{"S01", -1}};
  auto negative = cost_report_json(fixture_projection(), options);
  REQUIRE_FALSE(negative.ok());
  CHECK(negative.error().code == ErrorCode::invalid_argument);
}

TEST_CASE("the scene breakdown and projected-vs-actual sections round-trip through the COST_REPORT face",
          "[cost]") {
  CostReportOptions options;
  options.actual_by_scene = {{"S01", 6'000'000}, {"", 15'000}};
  auto report = cost_report_json(fixture_projection(), options);
  REQUIRE(report.ok());
  auto codec = artifacts::FaceCodec::load(avps::testing::repo_root() / "schemas", "COST_REPORT");
  REQUIRE(codec.ok());
  auto face = codec->render(*report);
  REQUIRE(face.ok());
  INFO(*face);
  CHECK_THAT(*face, Catch::Contains("## Scene Breakdown\n- scene_id: S01\n  shots: 3\n"));
  CHECK_THAT(*face, Catch::Contains("  variance_micro_usd: -3000\n"));
  CHECK_THAT(*face, Catch::Contains("## Projected vs Actual\nprojected_micro_usd: 5948000\n"));
  auto parsed = codec->parse(*face, artifacts::make_artifact_name("COST_REPORT", "PROJECT", 1).value());
  REQUIRE(parsed.ok());
  CHECK((*parsed)["scene_breakdown"] == (*report)["scene_breakdown"]);
  CHECK((*parsed)["projected_vs_actual"] == (*report)["projected_vs_actual"]);
  CHECK(codec->render(*parsed).value() == *face);

  // A report without actuals has no Projected vs Actual section at all.
  auto plain = codec->render(cost_report_json(fixture_projection(), CostReportOptions{}).value());
  REQUIRE(plain.ok());
  CHECK_THAT(*plain, !Catch::Contains("Projected vs Actual"));
}
