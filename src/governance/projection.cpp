#include "avps/governance/projection.hpp"

#include <algorithm>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "avps/governance/pricing.hpp"

namespace avps::governance {

using nlohmann::json;

Result<Multiplier> regen_multiplier(std::string_view regen_risk) {
  if (regen_risk == "low") {
    return Multiplier{11, 10};
  }
  if (regen_risk == "medium") {
    return Multiplier{13, 10};
  }
  if (regen_risk == "high") {
    return Multiplier{16, 10};
  }
  return make_error(ErrorCode::invalid_argument,
                    "regen risk \"" + std::string(regen_risk) + "\" is not low, medium or high");
}

Result<std::vector<ShotPlan>> shots_from_shotlist(const json& shotlist) {
  if (!shotlist.is_object() || !shotlist.contains("rows") || !shotlist["rows"].is_array()) {
    return make_error(ErrorCode::invalid_argument, "a SHOTLIST must hold a rows array");
  }
  std::vector<ShotPlan> shots;
  const json& rows = shotlist["rows"];
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string where = "SHOTLIST /rows/" + std::to_string(i);
    try {
      const json& row = rows[i];
      ShotPlan shot;
      shot.shot_id = row.at("shot_id").get<std::string>();
      shot.scene_id = row.at("scene_id").get<std::string>();
      shot.set_id = row.at("set_id").get<std::string>();
      shot.hero_tier = row.at("hero_tier").get<std::string>();
      shot.complexity = row.at("complexity_level").get<std::string>();
      shot.regen_risk = row.at("regen_risk_estimate").get<std::string>();
      shot.char_ids = row.at("char_ids").get<std::vector<std::string>>();
      Result<int64_t> ms = duration_ms(row.at("duration_s").get<double>());
      if (!ms) {
        return make_error(ErrorCode::invalid_argument, where + "/duration_s: " + ms.error().message);
      }
      shot.duration_ms = *ms;
      shots.push_back(std::move(shot));
    } catch (const json::exception& e) {
      return make_error(ErrorCode::invalid_argument,
                        where + " is not shaped as shotlist.schema.json says: " + e.what());
    }
  }
  return shots;
}

Result<std::vector<ModelCallEstimate>> estimate_skill_calls(
    const std::map<std::string, skills::SkillDef>& skills, const std::vector<std::string>& scene_ids,
    const std::vector<ShotPlan>& shots, int64_t input_tokens_per_call) {
  std::vector<std::string> scenes = scene_ids;
  std::map<std::string, int64_t> shots_per_scene;
  std::set<std::string> characters;
  std::set<std::string> sets;
  for (const ShotPlan& shot : shots) {
    if (shots_per_scene[shot.scene_id]++ == 0 &&
        std::find(scenes.begin(), scenes.end(), shot.scene_id) == scenes.end()) {
      scenes.push_back(shot.scene_id);
    }
    characters.insert(shot.char_ids.begin(), shot.char_ids.end());
    sets.insert(shot.set_id);
  }

  std::vector<ModelCallEstimate> out;
  for (const auto& [name, skill] : skills) {
    if (skill.executor != skills::Executor::model) {
      continue;
    }
    AVPS_TRY_ASSIGN(Task task, Task::for_skill(skill, input_tokens_per_call));
    auto add = [&](const std::string& scene_id, int64_t calls) {
      if (calls > 0) {
        out.push_back({name, scene_id, calls, task});
      }
    };
    if (skill.scope == "project") {
      add("", 1);
    } else if (skill.scope == "scene") {
      for (const std::string& scene : scenes) {
        add(scene, 1);
      }
    } else if (skill.scope == "shot") {
      for (const std::string& scene : scenes) {
        add(scene, shots_per_scene[scene]);
      }
    } else if (skill.scope == "set") {
      add("", static_cast<int64_t>(sets.size()));
    } else {  // character, voice: one per character
      add("", static_cast<int64_t>(characters.size()));
    }
  }
  return out;
}

ProjectionSettings ProjectionSettings::from_config(const project::Config& config) {
  ProjectionSettings settings;
  const json& doc = config.document;
  json::json_pointer final_pixels("/style/resolution/final");
  if (doc.contains(final_pixels) && doc[final_pixels].is_string()) {
    settings.final_pixels = doc[final_pixels].get<std::string>();
  }
  json::json_pointer quota("/quotas/premium_shot_pct");
  if (doc.contains(quota) && doc[quota].is_number_integer()) {
    settings.premium_shot_pct = doc[quota].get<int>();
  }
  json::json_pointer t3_quota("/quotas/t3_narrative_pct");
  if (doc.contains(t3_quota) && doc[t3_quota].is_number_integer()) {
    settings.t3_narrative_pct = doc[t3_quota].get<int>();
  }
  return settings;
}

int64_t narrative_calls(const std::vector<ModelCallEstimate>& estimates) {
  int64_t calls = 0;
  for (const ModelCallEstimate& estimate : estimates) {
    calls += is_narrative_tier(estimate.task.tier) ? estimate.calls : 0;
  }
  return calls;
}

namespace {

int tier_order(const std::string& tier) {
  const auto& tiers = model_tiers();
  // Generation tiers premium first, as model_tiers() lists them.
  return static_cast<int>(std::find(tiers.begin(), tiers.end(), tier) - tiers.begin());
}

// ceil(duration_ms × price × multiplier / 1000): one rounding per shot and resolution.
Result<int64_t> shot_video_cost(int64_t duration_in_ms, int64_t per_second, const Multiplier& m) {
  AVPS_TRY_ASSIGN(int64_t price_times_num, scale_up(per_second, m.numerator, 1));
  AVPS_TRY_ASSIGN(int64_t denominator, scale_up(1000, m.denominator, 1));
  return scale_up(duration_in_ms, price_times_num, denominator);
}

// A shot's proxy and final cost in `tier`.
Result<ShotCost> cost_shot(const ShotPlan& shot, const std::string& tier, const Router& router,
                           const ProjectionSettings& settings) {
  ShotCost cost;
  cost.shot = shot;
  cost.tier = tier;
  AVPS_TRY_ASSIGN(cost.multiplier, regen_multiplier(shot.regen_risk));
  Task task = Task::generation(shot.hero_tier, Resolution::proxy, settings.final_pixels, shot.duration_ms);
  task.tier = tier;
  AVPS_TRY_ASSIGN(Route proxy, router.route(task));
  task.resolution = Resolution::final;
  AVPS_TRY_ASSIGN(Route final_route, router.route(task));
  cost.model = final_route.model;
  cost.proxy_resolution = proxy.resolution;
  cost.final_resolution = final_route.resolution;
  cost.proxy_per_second_micro_usd = proxy.per_second_micro_usd;
  cost.final_per_second_micro_usd = final_route.per_second_micro_usd;
  AVPS_TRY_ASSIGN(cost.proxy_micro_usd,
                  shot_video_cost(shot.duration_ms, cost.proxy_per_second_micro_usd, cost.multiplier));
  AVPS_TRY_ASSIGN(cost.final_micro_usd,
                  shot_video_cost(shot.duration_ms, cost.final_per_second_micro_usd, cost.multiplier));
  return cost;
}

std::string high_risk_reason(const ShotPlan& shot) {
  std::vector<std::string> reasons;
  if (shot.regen_risk == "high") {
    reasons.push_back("high regen risk (x1.6)");
  }
  if (shot.complexity == "high") {
    reasons.push_back("high complexity");
  }
  if (shot.char_ids.size() >= 3) {
    reasons.push_back(std::to_string(shot.char_ids.size()) + " characters in frame");
  }
  if (reasons.empty()) {
    return {};
  }
  std::string out = "hero " + shot.hero_tier + ": " + reasons[0];
  for (size_t i = 1; i < reasons.size(); ++i) {
    out += "; " + reasons[i];
  }
  return out;
}

SceneLine& scene_line(std::vector<SceneLine>& scenes, const std::string& scene_id) {
  for (SceneLine& line : scenes) {
    if (line.scene_id == scene_id) {
      return line;
    }
  }
  scenes.push_back(SceneLine{scene_id});
  return scenes.back();
}

}  // namespace

Result<CostProjection> project_costs(const std::vector<ShotPlan>& shots,
                                     const std::vector<ModelCallEstimate>& calls, const Router& router,
                                     const ProjectionSettings& settings) {
  if (shots.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "there are no planned shots to project (cost-optimizer runs after shot-planner)");
  }
  CostProjection p;

  // Video, shot by shot.
  std::map<std::tuple<int, int, int64_t>, TierLine> tier_lines;
  for (const ShotPlan& shot : shots) {
    std::string tier = shot.tier;
    if (tier.empty()) {
      AVPS_TRY_ASSIGN(tier, generation_tier_for(shot.hero_tier));
    }
    AVPS_TRY_ASSIGN(ShotCost cost, cost_shot(shot, tier, router, settings));
    for (Resolution r : {Resolution::proxy, Resolution::final}) {
      int64_t per_second =
          r == Resolution::proxy ? cost.proxy_per_second_micro_usd : cost.final_per_second_micro_usd;
      int64_t amount = r == Resolution::proxy ? cost.proxy_micro_usd : cost.final_micro_usd;
      TierLine& line = tier_lines[{tier_order(tier), static_cast<int>(r), per_second}];
      line.tier = tier;
      line.resolution = r;
      line.per_second_micro_usd = per_second;
      line.shots += 1;
      AVPS_TRY_ASSIGN(line.duration_ms, add_money(line.duration_ms, shot.duration_ms));
      AVPS_TRY_ASSIGN(line.projected_micro_usd, add_money(line.projected_micro_usd, amount));
    }
    SceneLine& scene = scene_line(p.scenes, shot.scene_id);
    scene.shots += 1;
    scene.duration_ms += shot.duration_ms;
    AVPS_TRY_ASSIGN(scene.proxy_micro_usd, add_money(scene.proxy_micro_usd, cost.proxy_micro_usd));
    AVPS_TRY_ASSIGN(scene.final_micro_usd, add_money(scene.final_micro_usd, cost.final_micro_usd));
    AVPS_TRY_ASSIGN(p.proxy_micro_usd, add_money(p.proxy_micro_usd, cost.proxy_micro_usd));
    AVPS_TRY_ASSIGN(p.final_micro_usd, add_money(p.final_micro_usd, cost.final_micro_usd));
    AVPS_TRY_ASSIGN(p.duration_ms, add_money(p.duration_ms, shot.duration_ms));
    AVPS_TRY_ASSIGN(int64_t weighted_num, scale_up(shot.duration_ms, cost.multiplier.numerator, 1));
    AVPS_TRY_ASSIGN(int64_t weighted_den, scale_up(shot.duration_ms, cost.multiplier.denominator, 1));
    AVPS_TRY_ASSIGN(p.weighted_multiplier_numerator,
                    add_money(p.weighted_multiplier_numerator, weighted_num));
    AVPS_TRY_ASSIGN(p.weighted_multiplier_denominator,
                    add_money(p.weighted_multiplier_denominator, weighted_den));
    p.shots_per_set[shot.set_id] += 1;
    if (std::string reason = high_risk_reason(shot); !reason.empty()) {
      p.high_risk.push_back({shot.shot_id, reason});
    }
    p.shots.push_back(std::move(cost));
  }
  for (auto& [key, line] : tier_lines) {
    p.tiers.push_back(line);
  }

  // Model skills.
  std::map<int, ModelTierLine> model_tier_lines;
  for (const ModelCallEstimate& estimate : calls) {
    AVPS_TRY_ASSIGN(Route route, router.route(estimate.task));
    CallCost cost{estimate, route.model, route.worst_case_micro_usd, 0};
    AVPS_TRY_ASSIGN(cost.total_micro_usd, scale_up(route.worst_case_micro_usd, estimate.calls, 1));
    ModelTierLine& line = model_tier_lines[tier_order(route.tier)];
    line.tier = route.tier;
    line.calls += estimate.calls;
    AVPS_TRY_ASSIGN(line.projected_micro_usd, add_money(line.projected_micro_usd, cost.total_micro_usd));
    AVPS_TRY_ASSIGN(p.model_calls_micro_usd, add_money(p.model_calls_micro_usd, cost.total_micro_usd));
    if (!estimate.scene_id.empty()) {
      SceneLine& scene = scene_line(p.scenes, estimate.scene_id);
      AVPS_TRY_ASSIGN(scene.model_calls_micro_usd,
                      add_money(scene.model_calls_micro_usd, cost.total_micro_usd));
    }
    p.calls.push_back(std::move(cost));
  }
  for (auto& [order, line] : model_tier_lines) {
    p.model_tiers.push_back(line);
  }
  // Project-level calls last, under the "" scene.
  int64_t project_level = 0;
  for (const CallCost& cost : p.calls) {
    if (cost.estimate.scene_id.empty()) {
      AVPS_TRY_ASSIGN(project_level, add_money(project_level, cost.total_micro_usd));
    }
  }
  if (project_level > 0) {
    scene_line(p.scenes, "").model_calls_micro_usd = project_level;
  }
  for (SceneLine& scene : p.scenes) {
    AVPS_TRY_ASSIGN(int64_t video, add_money(scene.proxy_micro_usd, scene.final_micro_usd));
    AVPS_TRY_ASSIGN(scene.total_micro_usd, add_money(video, scene.model_calls_micro_usd));
  }
  AVPS_TRY_ASSIGN(int64_t video_total, add_money(p.proxy_micro_usd, p.final_micro_usd));
  AVPS_TRY_ASSIGN(p.total_micro_usd, add_money(video_total, p.model_calls_micro_usd));

  // What the premium quota would re-allocate, and what that saves.
  std::vector<ShotAllocation> allocation;
  for (const ShotCost& cost : p.shots) {
    allocation.push_back(
        {cost.shot.shot_id, cost.shot.scene_id, cost.shot.hero_tier, cost.tier, cost.shot.duration_ms});
  }
  for (QuotaChange& change : apply_premium_quota(allocation, settings.premium_shot_pct)) {
    auto it = std::find_if(p.shots.begin(), p.shots.end(),
                           [&](const ShotCost& c) { return c.shot.shot_id == change.shot_id; });
    AVPS_TRY_ASSIGN(ShotCost moved, cost_shot(it->shot, change.to_tier, router, settings));
    AVPS_TRY_ASSIGN(int64_t after, add_money(moved.proxy_micro_usd, moved.final_micro_usd));
    AVPS_TRY_ASSIGN(int64_t before, add_money(it->proxy_micro_usd, it->final_micro_usd));
    p.reallocations.push_back({std::move(change), after - before});
  }
  return p;
}

Result<std::vector<Reallocation>> downgrade_suggestions(const CostProjection& p, const Router& router,
                                                        const ProjectionSettings& settings) {
  std::vector<Reallocation> out;
  for (const ShotCost& cost : p.shots) {
    const std::string lower =
        cost.tier == "gen_premium" ? "gen_mid" : cost.tier == "gen_mid" ? "gen_low" : "";
    const bool quota_moves =
        std::any_of(p.reallocations.begin(), p.reallocations.end(),
                    [&](const Reallocation& r) { return r.change.shot_id == cost.shot.shot_id; });
    if (lower.empty() || quota_moves) {
      continue;  // on the lowest tier, or its move is listed already as a premium-quota re-allocation
    }
    AVPS_TRY_ASSIGN(ShotCost moved, cost_shot(cost.shot, lower, router, settings));
    AVPS_TRY_ASSIGN(int64_t after, add_money(moved.proxy_micro_usd, moved.final_micro_usd));
    AVPS_TRY_ASSIGN(int64_t before, add_money(cost.proxy_micro_usd, cost.final_micro_usd));
    const std::string reason = "budget: hero " + cost.shot.hero_tier + " one generation tier down (" +
                               cost.tier + " -> " + lower + ") to lower the projection against the cap";
    out.push_back({QuotaChange{cost.shot.shot_id, cost.tier, lower, reason}, after - before});
  }
  return out;
}

namespace {

// Seconds as JSON: an integer when whole, so 4000 ms reads 4 as a SHOTLIST writes it.
json seconds_json(int64_t ms) {
  if (ms % 1000 == 0) {
    return ms / 1000;
  }
  return static_cast<double>(ms) / 1000.0;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    out += (i == 0 ? "" : separator) + items[i];
  }
  return out;
}

// Percent with two decimals, rounded up: 3.9 for 39000 of 1000000.
Result<double> percent_up(int64_t part, int64_t whole) {
  AVPS_TRY_ASSIGN(int64_t hundredths, scale_up(part, 10000, whole));
  return static_cast<double>(hundredths) / 100.0;
}

constexpr const char* k_project_row = "PROJECT";

// (actual − projected) × 100 / projected with two decimals, rounded away from zero.
Result<double> variance_pct(int64_t actual, int64_t projected) {
  int64_t difference = actual - projected;
  AVPS_TRY_ASSIGN(int64_t hundredths,
                  scale_up(difference < 0 ? -difference : difference, 10000, projected));
  return static_cast<double>(difference < 0 ? -hundredths : hundredths) / 100.0;
}

struct SceneBreakdown {
  json rows = json::array();
  bool compared = false;              ///< some row has an actual
  int64_t projected_with_actual = 0;  ///< Σ projected of the rows with an actual
  int64_t actual = 0;                 ///< Σ actual
};

// The scene_breakdown rows: the projection's scenes in order, then scenes that have spend but no
// projection (not planned yet), then the PROJECT row of project-level calls.
Result<SceneBreakdown> scene_breakdown(const CostProjection& p,
                                       const std::map<std::string, int64_t>& actuals) {
  SceneBreakdown out;
  auto add_row = [&](const std::string& scene_id, int64_t shots, int64_t duration,
                     int64_t projected) -> Result<void> {
    json row = {{"scene_id", scene_id.empty() ? std::string(k_project_row) : scene_id},
                {"shots", shots},
                {"duration_s", seconds_json(duration)},
                {"projected_micro_usd", projected}};
    if (auto it = actuals.find(scene_id); it != actuals.end()) {
      if (it->second < 0) {
        return make_error(ErrorCode::invalid_argument,
                          "the actual spend of " + row["scene_id"].get<std::string>() + " is negative");
      }
      row["actual_micro_usd"] = it->second;
      row["variance_micro_usd"] = it->second - projected;
      out.compared = true;
      AVPS_TRY_ASSIGN(out.projected_with_actual, add_money(out.projected_with_actual, projected));
      AVPS_TRY_ASSIGN(out.actual, add_money(out.actual, it->second));
    }
    out.rows.push_back(std::move(row));
    return ok();
  };
  const SceneLine* project_level = nullptr;
  std::set<std::string> projected;
  for (const SceneLine& line : p.scenes) {
    projected.insert(line.scene_id);
    if (line.scene_id.empty()) {
      project_level = &line;
      continue;
    }
    AVPS_TRY(add_row(line.scene_id, line.shots, line.duration_ms, line.total_micro_usd));
  }
  for (const auto& [scene_id, actual] : actuals) {
    if (!scene_id.empty() && !projected.contains(scene_id)) {
      AVPS_TRY(add_row(scene_id, 0, 0, 0));
    }
  }
  if (project_level != nullptr) {
    AVPS_TRY(add_row("", 0, 0, project_level->total_micro_usd));
  } else if (actuals.contains("")) {
    AVPS_TRY(add_row("", 0, 0, 0));
  }
  return out;
}

}  // namespace

Result<json> cost_report_json(const CostProjection& p, const CostReportOptions& options) {
  json report = json::object();
  report["format_version"] = 1;
  report["kind"] = "COST_REPORT";
  report["target"] = options.target;
  report["estimated_total_duration_s"] = seconds_json(p.duration_ms);

  json tiers = json::array();
  for (const TierLine& line : p.tiers) {
    tiers.push_back({{"tier", line.tier},
                     {"resolution", std::string(resolution_name(line.resolution))},
                     {"shots", line.shots},
                     {"duration_s", seconds_json(line.duration_ms)},
                     {"cost_per_second_micro_usd", line.per_second_micro_usd},
                     {"projected_cost_micro_usd", line.projected_micro_usd}});
  }
  report["cost_per_tier_breakdown"] = tiers;
  report["estimated_regen_multiplier"] = p.weighted_multiplier_denominator > 0
                                             ? static_cast<double>(p.weighted_multiplier_numerator) /
                                                   static_cast<double>(p.weighted_multiplier_denominator)
                                             : 1.0;
  report["total_projected_cost_micro_usd"] = p.total_micro_usd;

  json high_risk = json::array();
  for (const HighRiskShot& shot : p.high_risk) {
    high_risk.push_back({{"shot_id", shot.shot_id}, {"reason", shot.reason}});
  }
  report["high_risk_shots_identified"] = high_risk;

  std::vector<std::string> recommendations;
  recommendations.push_back("Render every shot at proxy and QC it before any final render: proxies project " +
                            format_usd(p.proxy_micro_usd) + ", finals " + format_usd(p.final_micro_usd) +
                            ".");
  if (!p.high_risk.empty()) {
    std::vector<std::string> ids;
    for (const HighRiskShot& shot : p.high_risk) {
      ids.push_back(shot.shot_id);
    }
    recommendations.push_back(
        "Simplify the high-risk shots before rendering (fewer characters or camera moves, "
        "shorter, static coverage): " +
        join(ids, ", ") + ".");
  }
  for (const auto& [set_id, count] : p.shots_per_set) {
    if (count >= 2) {
      recommendations.push_back("Batch the " + std::to_string(count) + " " + set_id +
                                " shots under one set and lighting setup.");
    }
  }
  if (!p.reallocations.empty()) {
    recommendations.push_back("Premium video is over its quota: move " +
                              std::to_string(p.reallocations.size()) +
                              " of the latest premium shots to gen_mid (see Tier Reallocation Suggestions).");
  }
  if (!options.downgrades.empty()) {
    int64_t saving = 0;
    for (const Reallocation& r : options.downgrades) {
      AVPS_TRY_ASSIGN(saving, add_money(saving, -r.saving_micro_usd));
    }
    recommendations.push_back("Downgrade: moving the " + std::to_string(options.downgrades.size()) +
                              " gen_premium and gen_mid shots one generation tier down would save " +
                              format_usd(saving) + " (see Tier Reallocation Suggestions).");
  }
  if (!p.scenes_without_shotlist.empty()) {
    recommendations.push_back("Scenes without a SHOTLIST yet are not in the video projection: " +
                              join(p.scenes_without_shotlist, ", ") + ".");
  }

  json scores = json::object();
  scores["video_proxy_micro_usd"] = p.proxy_micro_usd;
  scores["video_final_micro_usd"] = p.final_micro_usd;
  scores["model_calls_micro_usd"] = p.model_calls_micro_usd;
  std::string verdict = "PASS";
  json reasons = json::array();
  if (options.cap_micro_usd) {
    int64_t cap = *options.cap_micro_usd;
    if (cap <= 0) {
      return make_error(ErrorCode::invalid_argument, "a budget cap must be more than 0");
    }
    AVPS_TRY_ASSIGN(scores["projected_pct_of_cap"], percent_up(p.total_micro_usd, cap));
    AVPS_TRY_ASSIGN(int64_t warn_line, scale_up(cap, options.warn_pct, 100));
    if (p.total_micro_usd > cap) {
      verdict = "FAIL";
      reasons.push_back("projected " + format_usd(p.total_micro_usd) + " exceeds the cap " + format_usd(cap) +
                        ": simplify or re-allocate before producing");
    } else if (p.total_micro_usd >= warn_line) {
      verdict = "WARN";
      reasons.push_back("projected " + format_usd(p.total_micro_usd) + " reaches " +
                        std::to_string(options.warn_pct) + "% of the cap " + format_usd(cap));
    }
  }
  if (options.cached_input_tokens > 0) {
    report["prompt_caching"] = {{"cached_input_tokens", options.cached_input_tokens},
                                {"saved_micro_usd", options.caching_saved_micro_usd}};
  }
  AVPS_TRY_ASSIGN(SceneBreakdown breakdown, scene_breakdown(p, options.actual_by_scene));
  report["scene_breakdown"] = breakdown.rows;
  // Per shot, what the shot cap is checked against (budget-gates' budget_caps).
  json shots = json::array();
  for (const ShotCost& cost : p.shots) {
    AVPS_TRY_ASSIGN(int64_t projected, add_money(cost.proxy_micro_usd, cost.final_micro_usd));
    shots.push_back({{"shot_id", cost.shot.shot_id},
                     {"hero_tier", cost.shot.hero_tier},
                     {"tier", cost.tier},
                     {"duration_s", seconds_json(cost.shot.duration_ms)},
                     {"projected_micro_usd", projected}});
  }
  report["shot_breakdown"] = shots;
  if (breakdown.compared) {
    json versus = {{"projected_micro_usd", breakdown.projected_with_actual},
                   {"actual_micro_usd", breakdown.actual}};
    if (breakdown.projected_with_actual > 0) {
      AVPS_TRY_ASSIGN(versus["variance_pct"],
                      variance_pct(breakdown.actual, breakdown.projected_with_actual));
    }
    report["projected_vs_actual"] = versus;
  }
  for (const json& row : breakdown.rows) {
    if (!row.contains("actual_micro_usd")) {
      continue;
    }
    int64_t projected = row["projected_micro_usd"].get<int64_t>();
    int64_t actual = row["actual_micro_usd"].get<int64_t>();
    if (actual > projected) {
      std::string id = row["scene_id"].get<std::string>();
      std::string over =
          projected > 0 ? " (" + std::to_string((actual - projected) * 100 / projected) + "% over)" : "";
      recommendations.push_back((id == k_project_row ? std::string("Project-level calls") : id) +
                                ": actual " + format_usd(actual) + " exceeds the projection " +
                                format_usd(projected) + over +
                                "; re-project with the observed regen rate before the next batch.");
    }
  }
  report["gate"] = {{"verdict", verdict}, {"scores", scores}, {"reasons", reasons}};
  report["cost_reduction_recommendations"] = recommendations;

  json reallocations = json::array();
  for (const Reallocation& r : p.reallocations) {
    reallocations.push_back({{"shot_id", r.change.shot_id},
                             {"from_tier", r.change.from_tier},
                             {"to_tier", r.change.to_tier},
                             {"saving_micro_usd", r.saving_micro_usd},
                             {"justification", r.change.reason}});
  }
  for (const Reallocation& r : options.downgrades) {
    reallocations.push_back({{"shot_id", r.change.shot_id},
                             {"from_tier", r.change.from_tier},
                             {"to_tier", r.change.to_tier},
                             {"saving_micro_usd", r.saving_micro_usd},
                             {"justification", r.change.reason}});
  }
  report["tier_reallocation_suggestions"] = reallocations;
  return report;
}

Result<RecordedShots> recorded_shots(const LatestArtifact& latest) {
  AVPS_TRY_ASSIGN(std::optional<json> scenes, latest("SCENES", ""));
  if (!scenes) {
    return make_error(ErrorCode::not_found, "no SCENES is recorded yet: there is nothing to project");
  }
  RecordedShots out;
  if (!scenes->contains("rows") || !(*scenes)["rows"].is_array()) {
    return make_error(ErrorCode::invalid_argument, "the latest SCENES holds no rows array");
  }
  for (const json& row : (*scenes)["rows"]) {
    if (!row.contains("scene_id") || !row["scene_id"].is_string()) {
      return make_error(ErrorCode::invalid_argument, "a row of the latest SCENES has no scene_id");
    }
    std::string scene_id = row["scene_id"].get<std::string>();
    out.scene_ids.push_back(scene_id);
    AVPS_TRY_ASSIGN(std::optional<json> shotlist, latest("SHOTLIST", scene_id));
    if (!shotlist) {
      out.scenes_without_shotlist.push_back(scene_id);
      continue;
    }
    AVPS_TRY_ASSIGN(std::vector<ShotPlan> shots, shots_from_shotlist(*shotlist));
    out.shots.insert(out.shots.end(), shots.begin(), shots.end());
  }
  AVPS_TRY_ASSIGN(std::optional<json> routing, latest("ROUTING_DECISION", "PROJECT"));
  if (routing) {
    AVPS_TRY(apply_shot_tiers(out.shots, routing->value("shot_tiers", json::array())));
  }
  return out;
}

Result<void> apply_shot_tiers(std::vector<ShotPlan>& shots, const json& shot_tiers) {
  if (!shot_tiers.is_array()) {
    return make_error(ErrorCode::invalid_argument, "the ROUTING_DECISION's shot_tiers is not an array");
  }
  std::unordered_map<std::string_view, ShotPlan*> by_id;  // the first shot of each id (4,000 at 500 scenes)
  for (ShotPlan& shot : shots) {
    by_id.emplace(shot.shot_id, &shot);
  }
  for (const json& entry : shot_tiers) {
    const std::string shot_id = entry.is_object() ? entry.value("shot_id", "") : "";
    const std::string hero = entry.is_object() ? entry.value("hero_tier", "") : "";
    const std::string tier = entry.is_object() ? entry.value("tier", "") : "";
    auto found = by_id.find(shot_id);
    if (found == by_id.end() || found->second->hero_tier != hero) {
      continue;  // re-planned since: the routing of the new plan starts from its hero tier
    }
    ShotPlan* shot = found->second;
    AVPS_TRY_ASSIGN(std::string by_hero, generation_tier_for(hero));
    if (tier != "gen_low" && tier != "gen_mid" && tier != "gen_premium") {
      return make_error(ErrorCode::invalid_argument,
                        "the ROUTING_DECISION routes " + shot_id + " to \"" + tier + "\", which is no generation tier");
    }
    if (tier_order(tier) < tier_order(by_hero)) {
      // A budget re-route only moves down; up is an escalation, logged with budget-gates' approval.
      return make_error(ErrorCode::invalid_argument, "the ROUTING_DECISION routes " + shot_id + " (hero " + hero +
                                                         ") to " + tier + ", above its hero tier's " + by_hero);
    }
    shot->tier = tier;
  }
  return ok();
}

Result<CostProjection> project_recorded(const LatestArtifact& latest,
                                        const std::map<std::string, skills::SkillDef>& skills,
                                        const Router& router, const ProjectionSettings& settings,
                                        int64_t input_tokens_per_call) {
  AVPS_TRY_ASSIGN(RecordedShots recorded, recorded_shots(latest));
  AVPS_TRY_ASSIGN(std::vector<ModelCallEstimate> calls,
                  estimate_skill_calls(skills, recorded.scene_ids, recorded.shots, input_tokens_per_call));
  AVPS_TRY_ASSIGN(CostProjection projection, project_costs(recorded.shots, calls, router, settings));
  projection.scenes_without_shotlist = recorded.scenes_without_shotlist;
  return projection;
}

}  // namespace avps::governance
