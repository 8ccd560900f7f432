#include "avps/governance/budget_status.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>

#include "avps/artifacts/face.hpp"
#include "avps/core/fs.hpp"
#include "avps/governance/budget.hpp"
#include "avps/project/project.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"
#include "unit/governance/governance_support.hpp"

using namespace avps;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int64_t k_usd = 1'000'000;

governance::BudgetStatusInput input_with(int64_t cap, int64_t committed, int64_t reserved = 0,
                                         std::optional<int64_t> projected = std::nullopt) {
  governance::BudgetStatusInput in;
  in.warn_pct = 90;
  in.project = governance::CapPosition{"project", cap, ledger::Spend{committed, reserved}};
  in.projected_total_micro_usd = projected;
  return in;
}

// The verdict of `status`, after checking it against the schema.
std::string verdict_of(const json& status) {
  INFO(status.dump(2));
  CHECK(testing::schema_problems("budget_status.schema.json", status).empty());
  return status["gate"]["verdict"].get<std::string>();
}

std::vector<std::string> actions_of(const json& status) {
  std::vector<std::string> out;
  for (const json& a : status["enforcement_actions"]) {
    out.push_back(a["action"].get<std::string>() + " " + a["scope"].get<std::string>());
  }
  return out;
}

}  // namespace

TEST_CASE("Spend well under the cap is a clean PASS with every section present", "[override]") {
  const json status = governance::budget_status_json(input_with(1000 * k_usd, 100 * k_usd, 25 * k_usd));
  CHECK(verdict_of(status) == "PASS");
  CHECK(status["kind"] == "BUDGET_STATUS");
  CHECK(status["current_spend_micro_usd"] == 125 * k_usd);
  CHECK(status["projected_spend_micro_usd"] == 125 * k_usd);  // no projection: what is spent
  CHECK(status["percent_of_budget_used"] == 12.5);
  CHECK(status["violations_detected"] == "NO");
  CHECK(status["enforcement_actions"].empty());
  CHECK(status["gate"]["reasons"].empty());
  CHECK(status["gate"]["scores"]["project_cap_micro_usd"] == 1000 * k_usd);
  CHECK(status["regen_count_by_shot"] == json::array());
  CHECK(status["tier_usage_breakdown"] == json::array());
}

TEST_CASE("A projection at warn_pct of the cap warns and asks for the cost-optimizer", "[override]") {
  const json at = governance::budget_status_json(input_with(1000 * k_usd, 10 * k_usd, 0, 900 * k_usd));
  CHECK(verdict_of(at) == "WARN");
  CHECK(at["percent_of_budget_used"] == 1.0);
  CHECK(at["gate"]["scores"]["projected_pct"] == 90.0);
  CHECK(at["violations_detected"] == "NO");
  CHECK(actions_of(at) == std::vector<std::string>{"warn PROJECT", "require_cost_optimizer PROJECT"});
  REQUIRE(at["gate"]["reasons"].size() == 1);
  CHECK_THAT(at["gate"]["reasons"][0].get<std::string>(),
             Catch::Contains("projected spend $900.000000 is 90.00% of the project cap $1000.000000"));

  const json below = governance::budget_status_json(input_with(1000 * k_usd, 10 * k_usd, 0, 900 * k_usd - 1));
  CHECK(verdict_of(below) == "PASS");
}

TEST_CASE("A projection over the cap fails with a violation and a hard stop, and at the cap it only warns",
          "[override]") {
  const json over = governance::budget_status_json(input_with(1000 * k_usd, 10 * k_usd, 0, 1000 * k_usd + 1));
  CHECK(verdict_of(over) == "FAIL");
  CHECK(over["violations_detected"] == "YES");
  CHECK(actions_of(over) == std::vector<std::string>{"hard_stop PROJECT"});

  const json at = governance::budget_status_json(input_with(1000 * k_usd, 10 * k_usd, 0, 1000 * k_usd));
  CHECK(verdict_of(at) == "WARN");
}

TEST_CASE("Projected spend is never below what is already spent", "[override]") {
  const json status = governance::budget_status_json(input_with(100 * k_usd, 95 * k_usd, 0, 50 * k_usd));
  CHECK(status["projected_spend_micro_usd"] == 95 * k_usd);
  CHECK(verdict_of(status) == "WARN");
}

TEST_CASE("Scene and shot caps are judged on their own spend", "[override]") {
  governance::BudgetStatusInput in = input_with(1000 * k_usd, 80 * k_usd);
  in.scopes.push_back(governance::CapPosition{"scene S03", 60 * k_usd, ledger::Spend{55 * k_usd, 0}});
  in.scopes.push_back(governance::CapPosition{"shot S03_SH02", 20 * k_usd, ledger::Spend{20 * k_usd, 1}});
  in.scopes.push_back(governance::CapPosition{"scene S04", 60 * k_usd, ledger::Spend{10 * k_usd, 0}});
  const json status = governance::budget_status_json(in);
  CHECK(verdict_of(status) == "FAIL");
  CHECK(actions_of(status) == std::vector<std::string>{"warn S03", "hard_stop S03_SH02"});
  CHECK(status["gate"]["reasons"].size() == 2);
}

TEST_CASE("A BUDGET_STATUS from the ledger counts spend per cap, calls per tier and regens per shot",
          "[override]") {
  testing::TempDir tmp;
  testing::FixedClock clock;
  auto created =
      project::Project::init(tmp.path() / "film", "Budget status", {{"/budget/scene_cap_usd", 60}}, clock);
  REQUIRE(created.ok());
  project::Project& project = **created;
  ledger::Ledger& ledger = project.ledger();
  const project::Budget& configured = project.config().budget;

  REQUIRE(ledger.begin_run("test", json::object()).ok());
  governance::BudgetGovernor governor(ledger, configured);
  ledger::Reservation call{"call-1", "S03", "", 56 * k_usd, "plausibility-auditor S03"};
  REQUIRE(governor.reserve(call).ok());
  REQUIRE(governor.settle(call, 54 * k_usd, std::nullopt).ok());
  ledger::Reservation open{"call-2", "S03", "S03_SH01", 2 * k_usd, "generate S03_SH01 proxy"};
  REQUIRE(governor.reserve(open).ok());
  for (const auto& [tier, cost, shot, regen] :
       std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"t2", "0.250000", "", "0"},
           {"t2", "0.500000", "", "1"},
           {"gen_mid", "1.000000", "S03_SH01", "2"},
           {"gen_mid", "1.000000", "S03_SH01", "1"},
           {"gen_mid", "1.000000", "S03_SH02", "0"}}) {
    ledger::LogRow row;
    row.skill_name = "x";
    row.model_used = "sim-model";
    row.tier = tier;
    row.actual_cost = cost;
    row.shot_id = shot;
    row.regen_count = regen;
    row.outcome = "PASS";
    REQUIRE(
        ledger.append(ledger::EventDraft{.kind = "step.finished", .body = json::object(), .row = row}).ok());
  }
  auto events = ledger.events();
  REQUIRE(events.ok());
  auto in = governance::budget_status_input(ledger, *events, configured,
                                            governance::Overrides::from_events(*events),
                                            std::optional<int64_t>(120 * k_usd));
  REQUIRE(in.ok());
  CHECK(in->project.cap_micro_usd == 1000 * k_usd);
  CHECK(in->project.spend.committed_micro_usd == 54 * k_usd);
  CHECK(in->project.spend.outstanding_micro_usd == 2 * k_usd);
  REQUIRE(in->scopes.size() == 1);  // S03 has a cap; no shot cap is configured
  CHECK(in->scopes[0].scope == "scene S03");
  CHECK(in->scopes[0].spend.total() == 56 * k_usd);

  const json status = governance::budget_status_json(*in);
  CHECK(verdict_of(status) == "WARN");  // S03 at 93 % of its 60 USD cap
  CHECK(status["current_spend_micro_usd"] == 56 * k_usd);
  CHECK(status["projected_spend_micro_usd"] == 120 * k_usd);
  CHECK(status["percent_of_budget_used"] == 5.6);
  // S03_SH02, never regenerated, is not listed.
  CHECK(status["regen_count_by_shot"] == json::array({{{"shot_id", "S03_SH01"}, {"regen_count", 2}}}));
  CHECK(status["tier_usage_breakdown"] ==
        json::array({{{"tier", "t2"}, {"calls", 2}, {"spend_micro_usd", 750'000}},
                     {{"tier", "gen_mid"}, {"calls", 3}, {"spend_micro_usd", 3 * k_usd}}}));
  CHECK(actions_of(status) == std::vector<std::string>{"warn S03"});

  // Written as the next version, with a face that parses back and a RUN_LOG row.
  auto first = governance::write_budget_status(project, status, "budget-gates");
  INFO((first.ok() ? std::string() : first.error().message));
  REQUIRE(first.ok());
  CHECK(*first == "BUDGET_STATUS_v001.md");
  auto second = governance::write_budget_status(project, status, "budget-gates");
  REQUIRE(second.ok());
  CHECK(*second == "BUDGET_STATUS_v002.md");
  auto face = core::read_file(project.dir() / "governance" / "BUDGET_STATUS_v002.md");
  REQUIRE(face.ok());
  CHECK_THAT(*face, Catch::Contains("Gate: WARN"));
  auto codec = artifacts::FaceCodec::load(testing::repo_root() / "schemas", "BUDGET_STATUS");
  REQUIRE(codec.ok());
  auto parsed = codec->parse(*face, artifacts::parse_artifact_name("BUDGET_STATUS_v002.md").value());
  REQUIRE(parsed.ok());
  CHECK(*parsed == status);
  auto after = ledger.events();
  REQUIRE(after.ok());
  auto row = after->back().row();
  REQUIRE(row);
  CHECK(row->skill_name == "budget-gates");
  CHECK(row->outcome == "WARN");
  CHECK(row->artifact_output == "BUDGET_STATUS_v002.md");
  CHECK(row->budget_pct == "5.60");

  // A BUDGET_STATUS that breaks its schema is refused and nothing is written.
  json broken = status;
  broken["violations_detected"] = "MAYBE";
  auto refused = governance::write_budget_status(project, broken, "budget-gates");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::schema_violation);
  CHECK_FALSE(fs::exists(project.dir() / "governance" / "BUDGET_STATUS_v003.md"));
  REQUIRE(ledger.end_run("DONE", json::object()).ok());
}
