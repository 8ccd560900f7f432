// The quota and budget decisions the engine takes from the record: t3 admission for escalations,
// the premium re-allocations the run log still lacks, the downgrade suggestions of a budget
// review, the cap a budget-gates stop names, and the re-checks a raised cap buys.

#include "avps/governance/quota.hpp"

#include <catch2/catch.hpp>

#include "avps/governance/brief_estimate.hpp"
#include "avps/governance/override.hpp"
#include "avps/governance/projection.hpp"
#include "avps/governance/routing_table.hpp"
#include "avps/skills/registry.hpp"
#include "unit/governance/governance_support.hpp"

namespace {

using namespace avps;
using namespace avps::governance;
using avps::testing::read_repo_json;
using nlohmann::json;

ledger::Event event(int64_t seq, const std::string& kind, json body) {
  ledger::Event e;
  e.seq = seq;
  e.kind = kind;
  e.body = std::move(body);
  return e;
}

ledger::Event intent(int64_t seq, const std::string& key, const std::string& tier) {
  return event(seq, "exchange.intent", {{"key", key}, {"tier", tier}, {"skill", "x"}});
}

ledger::Event reallocated(int64_t seq, const std::string& shot, const std::string& to, int64_t delta) {
  return event(seq, "route.reallocated",
               {{"shot_id", shot}, {"to_tier", to}, {"cost", {{"delta_micro_usd", delta}}}});
}

// The events a caller appends for `changes`, as the engine does.
void append(std::vector<ledger::Event>& events, const std::vector<LoggedReallocation>& changes) {
  for (const LoggedReallocation& c : changes) {
    events.push_back(reallocated(static_cast<int64_t>(events.size()) + 1, c.shot_id, c.to_tier,
                                 c.cost_delta_micro_usd));
  }
}

std::vector<ShotAllocation> planned_shots() {
  // Screen order; A routes to gen_premium, B to gen_mid.
  return {{"S01_SH01", "S01", "A", "gen_premium", 4000},
          {"S01_SH02", "S01", "B", "gen_mid", 4000},
          {"S02_SH01", "S02", "A", "gen_premium", 4000},
          {"S02_SH02", "S02", "A", "gen_premium", 4000}};
}

LoggedReallocation move(const std::string& shot, const std::string& scene) {
  return {shot, scene, "gen_premium", "gen_mid", "premium quota", -1'000'000};
}

}  // namespace

TEST_CASE(
    "an escalation to t3 is admitted only while its t3 calls fit the quota of the project's narrative calls",
    "[governance][quota]") {
  // 15 % of 100 projected narrative calls allows 15 t3 calls.
  T3Admission fits =
      admit_t3_escalation(/*t3_used=*/12, /*needed=*/3, /*projected=*/100, /*recorded=*/40, /*pct=*/15);
  CHECK(fits.allowed == 15);
  CHECK(fits.basis() == 100);
  CHECK(fits.admitted());
  CHECK(fits.message().find("projected for the project") != std::string::npos);
  CHECK(fits.message().find("admitted") != std::string::npos);

  // One t3 call more and the escalation's 3 attempts would pass it.
  T3Admission over = admit_t3_escalation(13, 3, 100, 40, 15);
  CHECK_FALSE(over.admitted());
  CHECK(over.message().find("refused") != std::string::npos);

  // Early in a run the few recorded calls are not the basis: the first t3 call is admitted.
  CHECK(admit_t3_escalation(0, 3, 100, 4, 15).admitted());
  // The record is the basis once it holds more calls than the plan projected.
  T3Admission recorded = admit_t3_escalation(5, 1, 10, 40, 15);
  CHECK(recorded.basis() == 40);
  CHECK(recorded.allowed == 6);
  CHECK(recorded.admitted());
  CHECK(recorded.message().find("recorded so far") != std::string::npos);

  // floor(): 15 % of 19 calls is 2.85, so 2 t3 calls; a quota of 0 admits none.
  CHECK(admit_t3_escalation(0, 2, 19, 0, 15).admitted());
  CHECK_FALSE(admit_t3_escalation(0, 3, 19, 0, 15).admitted());
  CHECK_FALSE(admit_t3_escalation(0, 1, 1000, 0, 0).admitted());
  // An escalation always needs at least one call.
  CHECK_FALSE(admit_t3_escalation(2, 0, 19, 0, 15).admitted());
}

TEST_CASE("the record's narrative calls count each call once and leave vision and generation out",
          "[governance][quota]") {
  std::vector<ledger::Event> events = {intent(1, "a", "t1"),     intent(2, "b", "t2"),
                                       intent(3, "b", "t2"),     // re-sent after a crash: one call
                                       intent(4, "c", "t3"),     intent(5, "d", "research"),
                                       intent(6, "e", "vision"), intent(7, "f", "gen_premium"),
                                       event(8, "step.finished", {{"tier", "t3"}})};
  NarrativeCalls calls = recorded_narrative_calls(events);
  CHECK(calls.total == 4);
  CHECK(calls.t3 == 1);
  CHECK(is_narrative_tier("research"));
  CHECK_FALSE(is_narrative_tier("vision"));
  CHECK_FALSE(is_narrative_tier("gen_low"));
}

TEST_CASE("the t3 quota's basis is the whole project's narrative calls, from the shot list or else the brief",
          "[governance][quota]") {
  auto registry = skills::Registry::load(avps::testing::repo_root(), nullptr);
  REQUIRE(registry.ok());
  json scenes = read_repo_json("tests/fixtures/artifacts/scenes.json");      // S01, S02
  json shotlist = read_repo_json("tests/fixtures/artifacts/shotlist.json");  // S01 only
  bool with_shotlist = true;
  LatestArtifact latest = [&](std::string_view kind, std::string_view target) -> Result<std::optional<json>> {
    if (kind == "SCENES") {
      return std::optional<json>(scenes);
    }
    if (kind == "SHOTLIST" && target == "S01" && with_shotlist) {
      return std::optional<json>(shotlist);
    }
    return std::optional<json>();
  };
  auto recorded = recorded_shots(latest);
  REQUIRE(recorded.ok());
  auto estimates = estimate_skill_calls(registry->skills(), recorded->scene_ids, recorded->shots, 0);
  REQUIRE(estimates.ok());
  auto from_record = projected_narrative_calls(latest, "", registry->skills());
  REQUIRE(from_record.ok());
  CHECK(*from_record == narrative_calls(*estimates));
  CHECK(*from_record > 0);

  // No SHOTLIST yet: the brief's plan, with the recorded scenes.
  with_shotlist = false;
  const std::string brief = "# Brief\n\n## Length\n\nabout twenty shots\n";
  auto plan = plan_from_brief(read_brief(brief), BriefAssumptions{}, {"S01", "S02"});
  REQUIRE(plan.ok());
  auto brief_estimates = estimate_skill_calls(registry->skills(), plan->scene_ids, plan->shots, 0);
  REQUIRE(brief_estimates.ok());
  auto from_brief = projected_narrative_calls(latest, brief, registry->skills());
  REQUIRE(from_brief.ok());
  CHECK(*from_brief == narrative_calls(*brief_estimates));

  // Only narrative tiers count: a vision call is left out.
  auto estimate = [](const std::string& skill, const std::string& tier, int64_t calls) {
    return ModelCallEstimate{skill, "S01", calls,
                             Task::model_call(skill, tier, Output::structured, ImageInput::none, 0, 100)};
  };
  CHECK(narrative_calls({estimate("qc-grader", "vision", 7), estimate("plausibility-auditor", "t2", 2),
                         estimate("research-agent", "research", 1)}) == 3);
}

TEST_CASE("premium re-allocations are logged once each, and a move the allocation drops is logged back",
          "[governance][quota]") {
  const std::vector<ShotAllocation> planned = planned_shots();
  std::vector<ledger::Event> events;

  // The quota moves the two latest premium shots: both are new to the log.
  const std::vector<LoggedReallocation> moves = {move("S02_SH02", "S02"), move("S02_SH01", "S02")};
  std::vector<LoggedReallocation> first = unlogged_reallocations(moves, planned, events);
  REQUIRE(first.size() == 2);
  CHECK(first[0].shot_id == "S02_SH02");
  CHECK(first[1].shot_id == "S02_SH01");
  CHECK(first[0].to_tier == "gen_mid");
  append(events, first);

  // The same allocation again (a second cost loop, or a resumed run): nothing to log.
  CHECK(unlogged_reallocations(moves, planned, events).empty());

  // More shots planned: the quota now moves only S02_SH02, so S02_SH01 goes back to gen_premium
  // with the opposite cost delta.
  std::vector<ShotAllocation> more = planned;
  more.push_back({"S03_SH01", "S03", "C", "gen_low", 4000});
  std::vector<LoggedReallocation> back = unlogged_reallocations({move("S02_SH02", "S02")}, more, events);
  REQUIRE(back.size() == 1);
  CHECK(back[0].shot_id == "S02_SH01");
  CHECK(back[0].scene_id == "S02");
  CHECK(back[0].from_tier == "gen_mid");
  CHECK(back[0].to_tier == "gen_premium");
  CHECK(back[0].cost_delta_micro_usd == 1'000'000);
  CHECK(back[0].reason.find("no longer") != std::string::npos);
  append(events, back);
  CHECK(unlogged_reallocations({move("S02_SH02", "S02")}, more, events).empty());

  // A shot re-planned away is left as the log has it.
  std::vector<ShotAllocation> fewer = {planned[0], planned[1]};
  CHECK(unlogged_reallocations({}, fewer, events).empty());
}

TEST_CASE("a budget review suggests each shot one generation tier down, with what it saves",
          "[governance][quota]") {
  // The SHOTLIST fixture: SH01 C (gen_low), SH02 B medium 5 s, SH03 A high 3.5 s; fixture prices per
  // second (proxy / final): low 20,000 / 80,000, mid 50,000 / 250,000, premium 100,000 / 500,000.
  auto shots = shots_from_shotlist(read_repo_json("tests/fixtures/artifacts/shotlist.json"));
  REQUIRE(shots.ok());
  Router router(avps::testing::fixture_models());
  const ProjectionSettings settings{"1920x1080", 100, 15};  // no premium-quota move
  auto projection = project_costs(*shots, {}, router, settings);
  REQUIRE(projection.ok());
  auto downgrades = downgrade_suggestions(*projection, router, settings);
  REQUIRE(downgrades.ok());
  REQUIRE(downgrades->size() == 2);  // SH01 is on gen_low already
  const Reallocation& b = (*downgrades)[0];
  CHECK(b.change.from_tier == "gen_mid");
  CHECK(b.change.to_tier == "gen_low");
  // 5 s × 1.3 at low (20,000 + 80,000) = 650,000 against 1,950,000 at mid.
  CHECK(b.saving_micro_usd == 650'000 - 1'950'000);
  const Reallocation& a = (*downgrades)[1];
  CHECK(a.change.from_tier == "gen_premium");
  CHECK(a.change.to_tier == "gen_mid");
  // 3.5 s × 1.6 at mid (50,000 + 250,000) = 1,680,000 against 3,360,000 at premium.
  CHECK(a.saving_micro_usd == 1'680'000 - 3'360'000);

  // A shot the premium quota moves (25 % of 3 shots allows none) is listed once, as the quota's
  // re-allocation.
  auto quota_zero = project_costs(*shots, {}, router, ProjectionSettings{"1920x1080", 25, 15});
  REQUIRE(quota_zero.ok());
  REQUIRE(quota_zero->reallocations.size() == 1);
  auto without_premium = downgrade_suggestions(*quota_zero, router, settings);
  REQUIRE(without_premium.ok());
  CHECK(without_premium->size() == 1);

  // The report lists them after the quota's re-allocations and sums their saving.
  CostReportOptions options;
  options.cap_micro_usd = 6'000'000;
  options.downgrades = *downgrades;
  auto report = cost_report_json(*projection, options);
  REQUIRE(report.ok());
  CHECK(avps::testing::schema_problems("cost_report.schema.json", *report).empty());
  CHECK((*report)["gate"]["verdict"] == "WARN");  // 5,750,000 of 6,000,000
  REQUIRE((*report)["tier_reallocation_suggestions"].size() == 2);
  CHECK((*report)["tier_reallocation_suggestions"][1]["saving_micro_usd"] == -1'680'000);
  bool summed = false;
  for (const json& line : (*report)["cost_reduction_recommendations"]) {
    summed = summed || line.get<std::string>().find("would save $2.980000") != std::string::npos;
  }
  CHECK(summed);
  // Without downgrades a report is as before.
  auto plain = cost_report_json(*projection, CostReportOptions{});
  REQUIRE(plain.ok());
  CHECK((*plain)["tier_reallocation_suggestions"].empty());
}

TEST_CASE("a budget re-route is kept in the ROUTING_DECISION and read back as the shot's tier, never upward",
          "[governance][quota]") {
  json scenes = read_repo_json("tests/fixtures/artifacts/scenes.json");
  json shotlist = read_repo_json("tests/fixtures/artifacts/shotlist.json");  // SH01 C, SH02 B, SH03 A 3.5 s high
  auto shots = shots_from_shotlist(shotlist);
  REQUIRE(shots.ok());
  Router router(avps::testing::fixture_models());
  const ProjectionSettings settings{"1920x1080", 100, 15};  // no premium-quota move
  std::vector<ShotPlan> moved = *shots;
  moved[2].tier = "gen_mid";  // the re-route of the hero A shot
  auto table = allocate({}, router, moved, settings, 4000);
  REQUIRE(table.ok());
  REQUIRE(table->shot_tiers.size() == 1);
  json decision = routing_decision_json(*table);
  CHECK(avps::testing::schema_problems("routing_decision.schema.json", decision).empty());
  CHECK(decision["shot_tiers"] == json::array({{{"shot_id", "S01_SH03"}, {"hero_tier", "A"}, {"tier", "gen_mid"}}}));
  CHECK(decision["justification"].get<std::string>().find("Budget re-routes") != std::string::npos);
  // Without a re-route the decision is as before: no shot_tiers.
  auto plain = allocate({}, router, *shots, settings, 4000);
  REQUIRE(plain.ok());
  CHECK_FALSE(routing_decision_json(*plain).contains("shot_tiers"));

  json routing = decision;
  LatestArtifact latest = [&](std::string_view kind, std::string_view target) -> Result<std::optional<json>> {
    if (kind == "SCENES") {
      return std::optional<json>(scenes);
    }
    if (kind == "SHOTLIST" && target == "S01") {
      return std::optional<json>(shotlist);
    }
    if (kind == "ROUTING_DECISION" && target == "PROJECT") {
      return std::optional<json>(routing);
    }
    return std::optional<json>();
  };
  auto recorded = recorded_shots(latest);
  REQUIRE(recorded.ok());
  REQUIRE(recorded->shots.size() == 3);
  CHECK(recorded->shots[0].tier.empty());
  CHECK(recorded->shots[2].tier == "gen_mid");
  // Projected at gen_mid: 3.5 s × 1.6 × (50,000 + 250,000), what the downgrade suggestion priced.
  auto projection = project_costs(recorded->shots, {}, router, settings);
  REQUIRE(projection.ok());
  auto report = cost_report_json(*projection, CostReportOptions{});
  REQUIRE(report.ok());
  CHECK(avps::testing::schema_problems("cost_report.schema.json", *report).empty());
  REQUIRE((*report)["shot_breakdown"].size() == 3);
  CHECK((*report)["shot_breakdown"][2] == json{{"shot_id", "S01_SH03"},
                                               {"hero_tier", "A"},
                                               {"tier", "gen_mid"},
                                               {"duration_s", 3.5},
                                               {"projected_micro_usd", 1'680'000}});
  // The next allocation keeps it.
  auto again = allocate({}, router, recorded->shots, settings, 4000);
  REQUIRE(again.ok());
  CHECK(routing_decision_json(*again) == decision);

  // A shot re-planned with another hero tier starts from its hero tier again.
  routing["shot_tiers"][0]["hero_tier"] = "B";
  recorded = recorded_shots(latest);
  REQUIRE(recorded.ok());
  CHECK(recorded->shots[2].tier.empty());
  // Premium only for hero A: a hero B shot routed to gen_premium is refused, not rendered.
  routing["shot_tiers"][0] = {{"shot_id", "S01_SH02"}, {"hero_tier", "B"}, {"tier", "gen_premium"}};
  recorded = recorded_shots(latest);
  REQUIRE_FALSE(recorded.ok());
  CHECK(recorded.error().code == ErrorCode::invalid_argument);
  CHECK(recorded.error().message.find("S01_SH02 (hero B) to gen_premium, above its hero tier's gen_mid") !=
        std::string::npos);
}

TEST_CASE("a budget-gates stop names the cap that failed", "[governance][quota]") {
  auto action = [](const std::string& kind, const std::string& scope) {
    return json{{"action", kind}, {"scope", scope}, {"reason", "r"}};
  };
  json project_over = {{"enforcement_actions", {action("warn", "S02"), action("hard_stop", "PROJECT")}}};
  CHECK(budget_stop_cap(project_over, json::array()) == "project");
  json scene_over = {{"enforcement_actions", {action("hard_stop", "S03")}}};
  CHECK(budget_stop_cap(scene_over, json::array()) == "scene S03");
  json shot_over = {{"enforcement_actions", {action("hard_stop", "S03_SH02")}}};
  CHECK(budget_stop_cap(shot_over, json::array()) == "shot S03_SH02");
  // No action, but the gate's scene-cap check failed on a scene's projection.
  json reasons = {
      "S01: projected spend $5.00 is 91.0% of the scene cap $5.50 (warn at 90%): rerun cost-optimizer",
      "S04: projected spend $9.00 is 150.0% of the scene cap $6.00: simplify before producing"};
  CHECK(budget_stop_cap(json::object(), reasons) == "scene S04");
  // A shot's projection over its shot cap: the shot's cap (its WARN names none).
  json shot_reasons = {
      "S04_SH01: projected spend $9.50 is 95.0% of the shot cap $10.00 (warn at 90%): rerun cost-optimizer (hero A, "
      "gen_premium, 4 s, proxy + final)",
      "S04_SH02: projected spend $12.00 is 120.0% of the shot cap $10.00: simplify before producing (hero A, "
      "gen_premium, 5 s, proxy + final)"};
  CHECK(budget_stop_cap(json::object(), shot_reasons) == "shot S04_SH02");
  CHECK(budget_stop_cap(json::object(), json::array({"a budget violation was detected"})) == "project");
  // Every cap over its projection, in order, as the cost loop's re-route reads them: the WARN and
  // a STOP of committed spend are not projections over a cap; the project cap's names no id.
  json mixed = shot_reasons;
  mixed.push_back("projected spend $300.00 is 120.0% of the project cap $250.00: simplify before producing");
  mixed.push_back("committed spend $61.00 is past the scene cap $60.00: no simplification can undo it");
  mixed.push_back(reasons[1]);
  CHECK(caps_over_projection(mixed) == std::vector<std::string>{"shot S04_SH02", "project", "scene S04"});
  CHECK(budget_stop_cap(json::object(), mixed) == "shot S04_SH02");
  CHECK(caps_over_projection(json::object()).empty());
}

TEST_CASE("each raised cap buys the stopped budget check one re-check, and only for its loop",
          "[governance][quota]") {
  auto raise = [](int64_t seq, const std::string& loop, int64_t cap) {
    return event(seq, "stop.override",
                 {{"stop_seq", seq - 1},
                  {"skill", "budget-gates"},
                  {"loop", loop},
                  {"reason", "approved"},
                  {"decision", {{"kind", "raise_cap"}, {"value", cap}, {"cap", "project"}}},
                  {"cost_impact_micro_usd", 1}});
  };
  std::vector<ledger::Event> events = {
      raise(2, "budget-gates/S01", 30'000'000), raise(4, "budget-gates/S01", 40'000'000),
      raise(6, "generate/S02_SH01/proxy", 50'000'000),
      event(8, "stop.override",
            {{"stop_seq", 7},
             {"loop", "budget-gates/S01"},
             {"decision", {{"kind", "allow_attempts"}, {"value", 1}}}})};
  Overrides overrides = Overrides::from_events(events);
  CHECK(overrides.cap_raises("budget-gates/S01") == 2);
  CHECK(overrides.cap_raises("budget-gates/S02") == 0);
  CHECK(overrides.cap_raises("generate/S02_SH01/proxy") == 1);
  CHECK(overrides.extra_attempts("budget-gates/S01") == 1);
}
