#include "avps/governance/routing_table.hpp"

#include <algorithm>

namespace avps::governance {

using nlohmann::json;

Result<RoutingTable> allocate(const std::map<std::string, skills::SkillDef>& skills, const Router& router,
                              const std::vector<ShotPlan>& shots, const ProjectionSettings& settings,
                              int64_t input_tokens_per_call) {
  RoutingTable table;
  table.premium_shot_pct = settings.premium_shot_pct;
  // std::map iterates by name: the rows' order does not depend on how the skills were loaded.
  for (const auto& [name, skill] : skills) {
    if (skill.executor != skills::Executor::model || !skill.tier) {
      continue;
    }
    AVPS_TRY_ASSIGN(Task task, Task::for_skill(skill, input_tokens_per_call));
    AVPS_TRY_ASSIGN(Route route, router.route(task));
    table.rows.push_back({name, "", route.tier, route.model});
    if (task.image_input == ImageInput::required) {
      table.vision_skills.push_back(name);
    }
    if (!skill.tier->escalation.empty() && skill.tier->max_escalations > 0) {
      std::string ladder = name + ": " + skill.tier->default_tier;
      for (const std::string& step : skill.tier->escalation) {
        ladder += " -> " + step;
      }
      int steps = skill.tier->max_escalations;
      table.escalation_ladders.push_back(ladder + " (at most " + std::to_string(steps) + " step" +
                                         (steps == 1 ? "" : "s") + ")");
    }
  }
  for (const char* hero : {"A", "B", "C"}) {
    // Chosen by the final price; the duration does not change which model is cheapest.
    AVPS_TRY_ASSIGN(Route route,
                    router.route(Task::generation(hero, Resolution::final, settings.final_pixels, 1000)));
    table.rows.push_back({"generate", hero, route.tier, route.model});
  }
  for (const ShotPlan& shot : shots) {
    if (!shot.tier.empty()) {
      table.shot_tiers.push_back({shot.shot_id, shot.hero_tier, shot.tier});
    }
  }
  if (!shots.empty()) {
    AVPS_TRY_ASSIGN(CostProjection projection, project_costs(shots, {}, router, settings));
    table.quota_changes = projection.reallocations;
    bool moved_a = false;
    for (const Reallocation& r : table.quota_changes) {
      auto shot = std::find_if(shots.begin(), shots.end(),
                               [&](const ShotPlan& s) { return s.shot_id == r.change.shot_id; });
      moved_a = moved_a || (shot != shots.end() && shot->hero_tier == "A");
    }
    if (moved_a) {
      // Some hero A shots render at gen_mid: the table says so with a second A row.
      AVPS_TRY_ASSIGN(Route route, router.route([&] {
        Task task = Task::generation("A", Resolution::final, settings.final_pixels, 1000);
        task.tier = "gen_mid";
        return task;
      }()));
      // Right after the gen_premium A row, so the table still reads A, B, C.
      auto premium_a = std::find_if(table.rows.begin(), table.rows.end(),
                                    [](const RoutingRow& row) { return row.task == "generate"; });
      table.rows.insert(premium_a + 1, {"generate", "A", route.tier, route.model});
    }
  }
  return table;
}

json routing_decision_json(const RoutingTable& table, const std::string& target) {
  json rows = json::array();
  for (const RoutingRow& row : table.rows) {
    json entry = {{"task", row.task}, {"tier", row.tier}, {"model", row.model}};
    if (!row.hero_tier.empty()) {
      entry["hero_tier"] = row.hero_tier;
    }
    rows.push_back(entry);
  }

  // "t1: a, b; t2: c; ...; generate A: gen_premium, ..." in model_tiers() order.
  std::string capability;
  for (const std::string& tier : model_tiers()) {
    std::string users;
    for (const RoutingRow& row : table.rows) {
      if (row.tier == tier) {
        users += (users.empty() ? "" : ", ") + (row.task == "generate" ? "hero " + row.hero_tier : row.task);
      }
    }
    if (!users.empty()) {
      capability += (capability.empty() ? "" : "; ") + tier + ": " + users;
    }
  }
  capability += ". json_schema for every skill that writes a schema-validated artifact";
  if (!table.vision_skills.empty()) {
    std::string skills;
    for (const std::string& s : table.vision_skills) {
      skills += (skills.empty() ? "" : ", ") + s;
    }
    capability += "; vision for " + skills + " (media input)";
  }
  capability += ".";

  std::string justification =
      "The cheapest priced model of each skill's default tier that has the capabilities the skill needs; "
      "video "
      "by hero tier (A gen_premium, B gen_mid, C gen_low), each chosen by its final-resolution price, with "
      "proxies at the same model's lowest resolution.";
  int64_t impact = 0;
  if (!table.quota_changes.empty()) {
    std::string moved;
    for (const Reallocation& r : table.quota_changes) {
      moved += (moved.empty() ? "" : ", ") + r.change.shot_id;
      impact += r.saving_micro_usd;
    }
    justification += " Premium quota (" + std::to_string(table.premium_shot_pct) +
                     "% of shots): the latest premium shots in screen order render at gen_mid: " + moved +
                     ".";
  }

  json shot_tiers = json::array();
  if (!table.shot_tiers.empty()) {
    std::string moved;
    for (const ShotTier& shot : table.shot_tiers) {
      moved += (moved.empty() ? "" : ", ") + shot.shot_id + " (hero " + shot.hero_tier + ") " + shot.tier;
      shot_tiers.push_back({{"shot_id", shot.shot_id}, {"hero_tier", shot.hero_tier}, {"tier", shot.tier}});
    }
    justification +=
        " Budget re-routes (a budget-gates FAIL, one generation tier down as COST_REPORT suggested): " + moved + ".";
  }

  json conditions = json::array();
  conditions.push_back(
      "A gate FAIL that persists through the skill's revisions, or a regen round exhausted with "
      "regen-analyzer "
      "choosing Tier Escalation: one step up the skill's ladder, logged with its cost delta and approved by "
      "budget-gates");
  conditions.push_back(
      "Never for an ambiguous prompt, an incomplete lock or an over-complex shot, nor before regen-analyzer "
      "and "
      "cost-optimizer ran");
  conditions.push_back(
      "A failed backend falls back to the next model of the same tier, never to a higher tier");
  conditions.push_back("gen_premium only for hero A shots and within quotas/premium_shot_pct (" +
                       std::to_string(table.premium_shot_pct) + "%)");
  for (const std::string& ladder : table.escalation_ladders) {
    conditions.push_back(ladder);
  }

  json out = {{"format_version", 1},
              {"kind", "ROUTING_DECISION"},
              {"target", target},
              {"gate", {{"verdict", "PASS"}, {"scores", json::object()}, {"reasons", json::array()}}},
              {"task_type",
               "Project allocation: every model skill to a tier and a model, every hero tier to a "
               "generation tier and a model."},
              {"required_capability_level", capability},
              {"recommended_model_tier", rows},
              {"justification", justification},
              {"cost_impact_estimate_micro_usd", impact},
              {"escalation_conditions", conditions}};
  if (!shot_tiers.empty()) {
    out["shot_tiers"] = shot_tiers;
  }
  return out;
}

}  // namespace avps::governance
