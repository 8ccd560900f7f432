#pragma once
// The project allocation table (model-router's output, ROUTING_DECISION_PROJECT): every model skill
// to its default tier and the model the router picks there, every hero tier to its generation tier
// and model, and the shots the premium quota moved.
//
// Stability: routing_decision_json() is a pure function of the table, rows in a fixed order (model
// skills by name, then generate A, B, C), texts built only from the allocation. Equal allocations
// give byte-equal canonical JSON, so the engine writes a new ROUTING_DECISION version exactly when
// the allocation changed (DESIGN §3). cost_impact_estimate_micro_usd is the cost change of this
// allocation against the default policy (the quota re-allocations' savings; 0 when nothing moved),
// not the projection total, which moves with every SHOTLIST edit.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/governance/projection.hpp"
#include "avps/governance/router.hpp"
#include "avps/skills/skill_def.hpp"

namespace avps::governance {

struct RoutingRow {
  std::string task;       ///< skill name, or "generate"
  std::string hero_tier;  ///< generate rows only
  std::string tier;
  std::string model;
};

/// A shot routed below its hero tier's generation tier by the budget: model-router's answer to a
/// budget-gates FAIL, one of COST_REPORT's one-tier-down suggestions (DESIGN §3 cost loop). Kept in
/// every later ROUTING_DECISION_PROJECT while the shot is planned with the same hero tier.
struct ShotTier {
  std::string shot_id;
  std::string hero_tier;
  std::string tier;
};

struct RoutingTable {
  std::vector<RoutingRow> rows;
  std::vector<Reallocation> quota_changes;      ///< latest shot first
  std::vector<ShotTier> shot_tiers;             ///< budget re-routes, screen order
  std::vector<std::string> escalation_ladders;  ///< "story-architect: t2 -> t3 (at most 1 step)"
  std::vector<std::string> vision_skills;       ///< model skills that read MEDIA
  int premium_shot_pct = 25;
};

/// Allocates every model skill of `skills` (routed with `input_tokens_per_call` and the skill's
/// max_output_tokens) and every hero tier (by `settings.final_pixels`), then applies the premium
/// quota to `shots` (screen order; may be empty before shot planning). A shot with a tier of its
/// own (ShotPlan::tier, a budget re-route) keeps it and is listed in shot_tiers. Errors when a tier
/// has no capable priced model.
[[nodiscard]] Result<RoutingTable> allocate(const std::map<std::string, skills::SkillDef>& skills,
                                            const Router& router, const std::vector<ShotPlan>& shots,
                                            const ProjectionSettings& settings,
                                            int64_t input_tokens_per_call);

/// The ROUTING_DECISION canonical JSON (routing_decision.schema.json) of `table`.
[[nodiscard]] nlohmann::json routing_decision_json(const RoutingTable& table,
                                                   const std::string& target = "PROJECT");

}  // namespace avps::governance
