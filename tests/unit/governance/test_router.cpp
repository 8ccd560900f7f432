// The tier router: the cheapest capable priced model of the task's tier, fallbacks that stay in the
// tier, escalation one step along the skill's ladder, quotas, and a stable ROUTING_DECISION.

#include <algorithm>
#include <catch2/catch.hpp>

#include "avps/core/canonical_json.hpp"
#include "avps/governance/quota.hpp"
#include "avps/governance/router.hpp"
#include "avps/governance/routing_table.hpp"
#include "avps/skills/registry.hpp"
#include "unit/governance/governance_support.hpp"

namespace {

using namespace avps;
using namespace avps::governance;
using avps::testing::text_model;
using avps::testing::video_model;
using nlohmann::json;

// t1: a cheap text-only model without json_schema, and a json one.
// t2: lite (cheapest, no vision), alt (vision), mid (vision, dearest, bigger context).
// t3: one premium model that a fallback must never reach.
Router test_router() {
  return Router(avps::testing::models_from({
      text_model("t1-plain", "t1", 50'000, 100'000, /*json_schema=*/false),
      text_model("t1-json", "t1", 100'000, 400'000),
      text_model("t2-lite", "t2", 1'000'000, 4'000'000, true, /*vision=*/false),
      text_model("t2-mid", "t2", 3'000'000, 15'000'000, true, true, 400'000),
      text_model("t2-alt", "t2", 2'000'000, 8'000'000, true, true),
      text_model("t3-premium", "t3", 15'000'000, 75'000'000, true, true, 400'000),
      video_model("gen-a", "gen_premium", {{"854x480", 150'000}, {"1920x1080", 500'000}}),
      video_model("gen-b", "gen_mid", {{"854x480", 50'000}, {"1920x1080", 150'000}}),
      video_model("gen-b-cheap-proxy", "gen_mid", {{"640x360", 10'000}, {"1920x1080", 200'000}}),
      video_model("gen-c", "gen_low", {{"640x360", 20'000}, {"1920x1080", 80'000}}),
  }));
}

Task json_call(const std::string& tier, ImageInput image = ImageInput::none, int64_t input = 10'000) {
  return Task::model_call("some-skill", tier, Output::structured, image, input, 2'000);
}

bool rejected_for(const Route& route, const std::string& model, const std::string& reason) {
  return std::any_of(route.rejected.begin(), route.rejected.end(), [&](const Rejection& r) {
    return r.model == model && r.reason.find(reason) != std::string::npos;
  });
}

skills::TierPolicy policy(std::string default_tier, std::vector<std::string> ladder, int max) {
  return skills::TierPolicy{std::move(default_tier), std::move(ladder), max};
}

std::vector<ShotAllocation> shots_with_premium_at(int total, const std::vector<int>& premium) {
  std::vector<ShotAllocation> shots;
  for (int i = 0; i < total; ++i) {
    bool is_premium = std::find(premium.begin(), premium.end(), i) != premium.end();
    std::string id = "S01_SH" + std::string(i < 9 ? "0" : "") + std::to_string(i + 1);
    shots.push_back({id, "S01", is_premium ? "A" : "B", is_premium ? "gen_premium" : "gen_mid", 4000});
  }
  return shots;
}

}  // namespace

TEST_CASE("the router chooses the cheapest model of the tier that can do the task", "[governance]") {
  Router router = test_router();
  auto route = router.route(json_call("t2"));
  REQUIRE(route.ok());
  CHECK(route->model == "t2-lite");
  CHECK(route->tier == "t2");
  // 10,000 × $1/M + 2,000 × $4/M = 10,000 + 8,000 micro-USD.
  CHECK(route->worst_case_micro_usd == 18'000);
  CHECK(route->output_tokens == 2'000);
  CHECK(rejected_for(*route, "t2-alt", "costs more"));
  CHECK(rejected_for(*route, "t2-mid", "costs more"));
  CHECK_THAT(route->reason, Catch::Contains("cheapest") && Catch::Contains("t2"));
}

TEST_CASE("a model without vision or json_schema is never chosen for a task that needs it", "[governance]") {
  Router router = test_router();
  auto vision = router.route(json_call("t2", ImageInput::required));
  REQUIRE(vision.ok());
  CHECK(vision->model == "t2-alt");  // t2-lite is cheaper but cannot see
  CHECK(rejected_for(*vision, "t2-lite", "no vision"));

  auto structured = router.route(json_call("t1"));
  REQUIRE(structured.ok());
  CHECK(structured->model == "t1-json");  // t1-plain is cheaper but has no json_schema
  CHECK(rejected_for(*structured, "t1-plain", "json_schema"));

  auto prose =
      router.route(Task::model_call("some-skill", "t1", Output::text, ImageInput::none, 10'000, 2'000));
  REQUIRE(prose.ok());
  CHECK(prose->model == "t1-plain");  // free text: the cheaper model is fine

  // A request larger than 128k tokens goes to the model whose context holds it.
  auto big = router.route(json_call("t2", ImageInput::none, 200'000));
  REQUIRE(big.ok());
  CHECK(big->model == "t2-mid");
  CHECK(rejected_for(*big, "t2-lite", "context 128000 < 202000"));

  // Nothing in t1 can see: an error naming each model and why, not a silent pick.
  auto blind = router.route(json_call("t1", ImageInput::required));
  REQUIRE_FALSE(blind.ok());
  CHECK(blind.error().code == ErrorCode::configuration);
  CHECK_THAT(blind.error().message, Catch::Contains("t1-plain") && Catch::Contains("t1-json: no vision"));
}

TEST_CASE("a fallback after a backend failure stays in the tier and never goes up", "[governance]") {
  Router router = test_router();
  Task task = json_call("t2", ImageInput::required);
  // 5xx on the first choice: the next vision model of t2.
  auto first = router.fallback(task, {"t2-alt"});
  REQUIRE(first.ok());
  CHECK(first->model == "t2-mid");
  CHECK(first->tier == "t2");
  CHECK(rejected_for(*first, "t2-alt", "failed"));
  CHECK_THAT(first->reason, Catch::Contains("fallback within the tier"));

  // The tier is exhausted: an error, although t3-premium could do the task.
  auto exhausted = router.fallback(task, {"t2-alt", "t2-mid"});
  REQUIRE_FALSE(exhausted.ok());
  CHECK(exhausted.error().code == ErrorCode::backend_unavailable);
  CHECK_THAT(exhausted.error().message, Catch::Contains("never falls back to another tier"));
  CHECK_THAT(exhausted.error().message, !Catch::Contains("t3-premium"));

  // Property: whatever fails, every answer is a model of the task's tier.
  std::vector<std::string> t2 = {"t2-lite", "t2-mid", "t2-alt"};
  for (int mask = 0; mask < 8; ++mask) {
    std::set<std::string> failed;
    for (int i = 0; i < 3; ++i) {
      if ((mask & (1 << i)) != 0) {
        failed.insert(t2[static_cast<size_t>(i)]);
      }
    }
    auto route = router.fallback(json_call("t2"), failed);
    if (route.ok()) {
      CHECK(route->tier == "t2");
      CHECK(std::find(t2.begin(), t2.end(), route->model) != t2.end());
      CHECK(failed.count(route->model) == 0);
    } else {
      CHECK(failed.size() == 3);
    }
  }
}

TEST_CASE("escalation is one step along the skill's ladder and stops at its end", "[governance]") {
  auto one_step = policy("t2", {"t3"}, 1);
  CHECK(escalate(one_step, "t2", 0).value() == std::optional<std::string>("t3"));
  CHECK_FALSE(escalate(one_step, "t3", 1).value().has_value());  // end of the ladder
  CHECK_FALSE(escalate(one_step, "t2", 1).value().has_value());  // steps used up

  auto two_steps = policy("t1", {"t2", "t3"}, 2);
  CHECK(escalate(two_steps, "t1", 0).value() == std::optional<std::string>("t2"));  // not straight to t3
  CHECK(escalate(two_steps, "t2", 1).value() == std::optional<std::string>("t3"));
  CHECK_FALSE(escalate(two_steps, "t3", 2).value().has_value());

  auto none = policy("t3", {}, 0);
  CHECK_FALSE(escalate(none, "t3", 0).value().has_value());

  auto off_ladder = escalate(one_step, "vision", 0);
  REQUIRE_FALSE(off_ladder.ok());
  CHECK(off_ladder.error().code == ErrorCode::invalid_argument);
}

TEST_CASE("an escalation plan routes both tiers and reports the cost delta", "[governance]") {
  auto registry = skills::Registry::load(avps::testing::repo_root(), nullptr);
  REQUIRE(registry.ok());
  const skills::SkillDef* architect = registry->find("story-architect");
  REQUIRE(architect != nullptr);
  Router router(avps::testing::shipped_models());
  auto task = Task::for_skill(*architect, 8'000);
  REQUIRE(task.ok());

  auto step = plan_escalation(router, *architect->tier, *task, 0);
  REQUIRE(step.ok());
  REQUIRE(step->has_value());
  CHECK((*step)->from_tier == architect->tier->default_tier);
  CHECK((*step)->to_tier == architect->tier->escalation.front());
  CHECK((*step)->to.tier == (*step)->to_tier);
  CHECK((*step)->cost_delta_micro_usd ==
        (*step)->to.worst_case_micro_usd - (*step)->from.worst_case_micro_usd);
  CHECK((*step)->cost_delta_micro_usd > 0);

  auto spent = plan_escalation(router, *architect->tier, *task, architect->tier->max_escalations);
  REQUIRE(spent.ok());
  CHECK_FALSE(spent->has_value());
}

TEST_CASE(
    "video routes by hero tier, chosen by the final price, with proxies at that model's lowest resolution",
    "[governance]") {
  Router router = test_router();
  CHECK(router.route(Task::generation("A", Resolution::final, "1920x1080", 4000))->model == "gen-a");
  CHECK(router.route(Task::generation("C", Resolution::final, "1920x1080", 4000))->model == "gen-c");

  // gen-b-cheap-proxy has the cheaper proxy but the dearer final: the shot's model is gen-b, for both.
  auto final_b = router.route(Task::generation("B", Resolution::final, "1920x1080", 4000));
  auto proxy_b = router.route(Task::generation("B", Resolution::proxy, "1920x1080", 4000));
  REQUIRE(final_b.ok());
  REQUIRE(proxy_b.ok());
  CHECK(final_b->model == "gen-b");
  CHECK(final_b->tier == "gen_mid");
  CHECK(final_b->worst_case_micro_usd == 600'000);  // 4 s × 150,000
  CHECK(proxy_b->model == "gen-b");
  CHECK(proxy_b->resolution == "854x480");
  CHECK(proxy_b->per_second_micro_usd == 50'000);
  CHECK(proxy_b->worst_case_micro_usd == 200'000);

  auto bad_hero = router.route(Task::generation("D", Resolution::final, "1920x1080", 4000));
  REQUIRE_FALSE(bad_hero.ok());
  CHECK(bad_hero.error().code == ErrorCode::invalid_argument);
}

TEST_CASE("an unpriced model is never routed to, and a tier with only unpriced models is an error",
          "[governance]") {
  // The fixture's gen_low has a priced sim model and the unpriced local-comfyui.
  Router router(avps::testing::fixture_models());
  auto low = router.route(Task::generation("C", Resolution::final, "1920x1080", 4000));
  REQUIRE(low.ok());
  CHECK(low->model == "sim-video-low");
  CHECK(rejected_for(*low, "local-comfyui", "no video price"));

  json unpriced = video_model("free-looking", "gen_low", {{"640x360", 1}});
  unpriced.erase("pricing");
  Router only_unpriced(avps::testing::models_from({unpriced}));
  auto none = only_unpriced.route(Task::generation("C", Resolution::proxy, "640x360", 4000));
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::configuration);
  CHECK_THAT(none.error().message, Catch::Contains("free-looking") && Catch::Contains("$0"));
}

TEST_CASE("the premium quota downgrades exactly the excess, latest shots first", "[governance]") {
  // 10 shots, 4 premium; 25 % allows floor(2.5) = 2.
  auto shots = shots_with_premium_at(10, {0, 3, 6, 9});
  auto changes = apply_premium_quota(shots, 25);
  REQUIRE(changes.size() == 2);
  CHECK(changes[0].shot_id == "S01_SH10");
  CHECK(changes[1].shot_id == "S01_SH07");
  for (const QuotaChange& c : changes) {
    CHECK(c.from_tier == "gen_premium");
    CHECK(c.to_tier == "gen_mid");
    CHECK_THAT(c.reason, Catch::Contains("25%"));
  }
  CHECK(shots[0].tier == "gen_premium");
  CHECK(shots[3].tier == "gen_premium");
  CHECK(shots[6].tier == "gen_mid");
  CHECK(shots[9].tier == "gen_mid");
  CHECK(std::count_if(shots.begin(), shots.end(), [](auto& s) { return s.tier == "gen_premium"; }) == 2);

  // Within quota: nothing changes. Zero quota: every premium shot moves.
  auto within = shots_with_premium_at(8, {1, 5});
  CHECK(apply_premium_quota(within, 25).empty());
  auto zero = shots_with_premium_at(4, {0, 2});
  CHECK(apply_premium_quota(zero, 0).size() == 2);
  CHECK(premium_allowance(12, 25) == 3);
  CHECK(premium_allowance(3, 25) == 0);
}

TEST_CASE("the t3 quota counts t3 against the narrative calls like the quota gate", "[governance]") {
  auto within = check_t3_quota({{"t1", 5}, {"t2", 12}, {"t3", 3}, {"vision", 40}}, 15);
  CHECK(within.total == 20);  // vision is not a narrative call
  CHECK(within.allowed == 3);
  CHECK(within.within());
  CHECK(within.excess() == 0);

  auto over = check_t3_quota({{"t1", 5}, {"t2", 12}, {"t3", 4}}, 15);
  CHECK_FALSE(over.within());  // 4 of 21 = 19 %
  CHECK(over.excess() == 1);
  CHECK_THAT(over.message(), Catch::Contains("4 of 21") && Catch::Contains("19%") && Catch::Contains("over"));
}

TEST_CASE("the routing table renders a schema-valid ROUTING_DECISION that changes only with the allocation",
          "[governance]") {
  auto registry = skills::Registry::load(avps::testing::repo_root(), nullptr);
  REQUIRE(registry.ok());
  Router router(avps::testing::shipped_models());
  ProjectionSettings settings{"1920x1080", 25};
  auto shot = [](std::string id, std::string hero, double seconds) {
    ShotPlan s;
    s.shot_id = id;
    s.scene_id = "S01";
    s.set_id = "WAREHOUSE";
    s.hero_tier = hero;
    s.complexity = "low";
    s.regen_risk = "medium";
    s.duration_ms = static_cast<int64_t>(seconds * 1000);
    return s;
  };
  std::vector<ShotPlan> shots = {shot("S01_SH01", "A", 4), shot("S01_SH02", "B", 5), shot("S01_SH03", "C", 3),
                                 shot("S01_SH04", "C", 6)};

  auto table = allocate(registry->skills(), router, shots, settings, 8'000);
  REQUIRE(table.ok());
  json decision = routing_decision_json(*table);
  INFO(decision.dump(2));
  CHECK(avps::testing::schema_problems("routing_decision.schema.json", decision).empty());
  CHECK(decision["cost_impact_estimate_micro_usd"] == 0);
  CHECK(table->quota_changes.empty());  // 1 premium of 4 = 25 %: within

  // Longer shots, same allocation: byte-identical.
  shots[1].duration_ms = 9000;
  auto same = allocate(registry->skills(), router, shots, settings, 8'000);
  REQUIRE(same.ok());
  CHECK(core::canonical_json(routing_decision_json(*same)).value() == core::canonical_json(decision).value());

  // A second hero A shot breaks the quota: the allocation and the decision change.
  shots[3].hero_tier = "A";
  auto moved = allocate(registry->skills(), router, shots, settings, 8'000);
  REQUIRE(moved.ok());
  REQUIRE(moved->quota_changes.size() == 1);
  CHECK(moved->quota_changes[0].change.shot_id == "S01_SH04");
  json changed = routing_decision_json(*moved);
  CHECK(avps::testing::schema_problems("routing_decision.schema.json", changed).empty());
  CHECK(changed != decision);
  CHECK(changed["cost_impact_estimate_micro_usd"].get<int64_t>() < 0);
  CHECK_THAT(changed["justification"].get<std::string>(), Catch::Contains("S01_SH04"));
}

TEST_CASE("a storyboard frame routes to an image_out model of its tier, priced per image", "[governance]") {
  Router router(avps::testing::shipped_models());
  Task frame;
  frame.skill = "storyboard-generator";
  frame.tier = "gen_premium";
  frame.output = Output::image;
  frame.images = 2;
  auto route = router.route(frame);
  REQUIRE(route.ok());
  CHECK(route->model == "sim-gen-premium");
  CHECK(route->worst_case_micro_usd == 160'000);  // 2 × 80,000
  CHECK(rejected_for(*route, "sim-gen-premium-alt", "no image_out"));
}
