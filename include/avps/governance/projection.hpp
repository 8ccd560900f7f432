#pragma once
// Cost projection (cost-optimizer, spec §2.20 and §3): what a batch of shots and model calls will
// cost, before any of it runs, and its COST_REPORT.
//
// Arithmetic, per shot and per resolution (proxy and final):
//   cost = ceil(duration_ms × price_per_second × multiplier_num / (1000 × multiplier_den))
// where the price is that of the model the router picks for the shot's tier (hero tier A ->
// gen_premium, B -> gen_mid, C -> gen_low, unless the shot's tier is set), proxy at that model's
// lowest resolution and final at the project's final resolution, and the regen multiplier is the
// exact rational of the shot's regen_risk_estimate: low 11/10, medium 13/10, high 16/10.
// Model skills add calls × ceil((input × in price + output × out price) / 1e6) at the model routed
// for their tier. Totals are sums of the rounded per-shot and per-call figures, so every total
// equals the sum of its lines. All money is int64 micro-USD; an unpriced model is an error.

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/governance/quota.hpp"
#include "avps/governance/router.hpp"
#include "avps/project/config.hpp"
#include "avps/skills/skill_def.hpp"

namespace avps::governance {

/// The regen multiplier of a risk level, as an exact fraction.
struct Multiplier {
  int64_t numerator = 10;
  int64_t denominator = 10;
};
/// low 11/10, medium 13/10, high 16/10; invalid_argument for anything else.
[[nodiscard]] Result<Multiplier> regen_multiplier(std::string_view regen_risk);

/// One SHOTLIST row, as the projection reads it.
struct ShotPlan {
  std::string shot_id;
  std::string scene_id;
  std::string set_id;
  int64_t duration_ms = 0;
  std::string hero_tier;              ///< A, B, C
  std::string complexity;             ///< low, medium, high
  std::string regen_risk;             ///< low, medium, high
  std::vector<std::string> char_ids;  ///< characters in frame
  std::string tier;                   ///< generation tier; empty = by hero tier
};
/// The rows of a SHOTLIST's canonical JSON, in screen order. invalid_argument (naming the row's
/// pointer) when the document is not shaped as shotlist.schema.json says.
[[nodiscard]] Result<std::vector<ShotPlan>> shots_from_shotlist(const nlohmann::json& shotlist);

/// Expected model calls of one skill in one scope.
struct ModelCallEstimate {
  std::string skill;
  std::string scene_id;  ///< "" for project-level calls
  int64_t calls = 0;
  Task task;  ///< tier, capabilities; input_tokens and max_output_tokens per call
};
/// One estimate per model skill and scope instance, at the skill's default tier:
/// project scope 1 call, scene scope 1 per scene, shot scope 1 per shot (attributed to its scene),
/// character / set / voice scope 1 per distinct character / set / character among `shots`.
/// Output tokens are the skill's max_output_tokens (an upper bound); input tokens are
/// `input_tokens_per_call`. runs_when conditions are ignored, which over-counts conditional skills.
[[nodiscard]] Result<std::vector<ModelCallEstimate>> estimate_skill_calls(
    const std::map<std::string, skills::SkillDef>& skills, const std::vector<std::string>& scene_ids,
    const std::vector<ShotPlan>& shots, int64_t input_tokens_per_call);

/// The calls of `estimates` at a narrative tier (t1, t2, t3, research): what the t3 quota counts.
int64_t narrative_calls(const std::vector<ModelCallEstimate>& estimates);

struct ProjectionSettings {
  std::string final_pixels;   ///< style/resolution/final
  int premium_shot_pct = 25;  ///< quotas/premium_shot_pct, for the re-allocation suggestions
  int t3_narrative_pct = 15;  ///< quotas/t3_narrative_pct, for the t3 admission rule
  /// From the configuration (style/resolution/final, quotas/premium_shot_pct, quotas/t3_narrative_pct).
  static ProjectionSettings from_config(const project::Config& config);
};

struct ShotCost {
  ShotPlan shot;
  std::string tier;
  std::string model;
  Multiplier multiplier;
  int64_t proxy_per_second_micro_usd = 0;
  int64_t final_per_second_micro_usd = 0;
  std::string proxy_resolution;
  std::string final_resolution;
  int64_t proxy_micro_usd = 0;
  int64_t final_micro_usd = 0;
};

struct TierLine {
  std::string tier;
  Resolution resolution = Resolution::proxy;
  int64_t per_second_micro_usd = 0;
  int64_t shots = 0;
  int64_t duration_ms = 0;
  int64_t projected_micro_usd = 0;
};

struct CallCost {
  ModelCallEstimate estimate;
  std::string model;
  int64_t per_call_micro_usd = 0;
  int64_t total_micro_usd = 0;
};

struct SceneLine {
  std::string scene_id;  ///< "" collects project-level model calls
  int64_t shots = 0;
  int64_t duration_ms = 0;
  int64_t proxy_micro_usd = 0;
  int64_t final_micro_usd = 0;
  int64_t model_calls_micro_usd = 0;
  int64_t total_micro_usd = 0;
};

struct ModelTierLine {
  std::string tier;
  int64_t calls = 0;
  int64_t projected_micro_usd = 0;
};

struct HighRiskShot {
  std::string shot_id;
  std::string reason;
};

/// A re-allocation the premium quota would force, with what it saves.
struct Reallocation {
  QuotaChange change;
  int64_t saving_micro_usd = 0;  ///< new cost − old cost (≤ 0)
};

struct CostProjection {
  std::vector<ShotCost> shots;              ///< screen order
  std::vector<TierLine> tiers;              ///< by tier (premium first), then proxy before final
  std::vector<CallCost> calls;              ///< as given
  std::vector<ModelTierLine> model_tiers;   ///< by tier, model_tiers() order
  std::vector<SceneLine> scenes;            ///< first appearance; project-level calls last
  std::vector<HighRiskShot> high_risk;      ///< screen order
  std::vector<Reallocation> reallocations;  ///< premium quota, latest shot first
  std::map<std::string, int64_t> shots_per_set;
  std::vector<std::string> scenes_without_shotlist;  ///< project_recorded: video not projected yet
  int64_t duration_ms = 0;
  int64_t weighted_multiplier_numerator = 0;    ///< Σ duration_ms × numerator
  int64_t weighted_multiplier_denominator = 0;  ///< Σ duration_ms × denominator
  int64_t proxy_micro_usd = 0;
  int64_t final_micro_usd = 0;
  int64_t model_calls_micro_usd = 0;
  int64_t total_micro_usd = 0;  ///< proxy + final + model calls
};

/// Projects `shots` (screen order) and `calls`. invalid_argument when there are no shots (a
/// projection comes after shot-planner); configuration when a needed model is unpriced or a
/// tier has no capable model.
[[nodiscard]] Result<CostProjection> project_costs(const std::vector<ShotPlan>& shots,
                                                   const std::vector<ModelCallEstimate>& calls,
                                                   const Router& router, const ProjectionSettings& settings);

/// What moving each shot of `p` one generation tier down (gen_premium -> gen_mid -> gen_low) would
/// save at the same regen risk, in screen order. Shots on gen_low are left out, and so are the
/// shots the premium quota moves (p.reallocations lists them). The suggestions budget-gates
/// records when the projection nears or passes the project cap.
[[nodiscard]] Result<std::vector<Reallocation>> downgrade_suggestions(const CostProjection& p,
                                                                      const Router& router,
                                                                      const ProjectionSettings& settings);

/// What the COST_REPORT says besides the projection.
struct CostReportOptions {
  std::string target = "PROJECT";        ///< PROJECT or the scene id the projection covers
  std::optional<int64_t> cap_micro_usd;  ///< the cap of that target, for the verdict and the % score
  int warn_pct = 90;
  /// Committed spend per scene id ("" = project-level calls), when known; never negative.
  std::map<std::string, int64_t> actual_by_scene;
  /// Downgrade suggestions (downgrade_suggestions()) to list after the quota re-allocations in
  /// tier_reallocation_suggestions, with one recommendation line summing their saving.
  std::vector<Reallocation> downgrades;
  /// Prompt caching on the recorded calls of the target so far: reported when tokens > 0.
  int64_t cached_input_tokens = 0;
  int64_t caching_saved_micro_usd = 0;

  /// Counts the caching of one recorded call (an exchange.response body) in the two above.
  void count_caching(const nlohmann::json& exchange_response) {
    cached_input_tokens += exchange_response.value("cached_input_tokens", int64_t{0});
    caching_saved_micro_usd += exchange_response.value("caching_saved_micro_usd", int64_t{0});
  }
};

/// The COST_REPORT canonical JSON (cost_report.schema.json). Verdict: PASS; WARN when the
/// projection reaches warn_pct of the cap; FAIL when it exceeds the cap.
///   - scene_breakdown, always: one row per projected scene in screen order (shots, duration_s,
///     projected_micro_usd = video + that scene's model calls), then scenes that have an actual but
///     no projection (projected 0), then a "PROJECT" row for project-level calls. A row whose scene
///     has an entry in actual_by_scene carries actual_micro_usd and variance_micro_usd
///     (actual − projected).
///   - projected_vs_actual, when any actual is given: Σ projected and Σ actual over the rows with
///     an actual, and variance_pct (two decimals, rounded away from zero; absent when that
///     projection is 0). A row whose actual exceeds its projection also gets a recommendation.
///   - shot_breakdown, always: per shot in screen order its hero tier, generation tier, duration and
///     proxy + final projection (what budget-gates checks against the shot cap).
///   - gate.scores holds only what the verdict reads and the video / model-call split:
///     video_proxy_micro_usd, video_final_micro_usd, model_calls_micro_usd and, with a cap,
///     projected_pct_of_cap. (The engine's gate evaluation may replace the scores; the numbers a
///     reader needs are in the fields above.)
/// invalid_argument for a cap ≤ 0 or a negative actual.
[[nodiscard]] Result<nlohmann::json> cost_report_json(const CostProjection& projection,
                                                      const CostReportOptions& options);

/// Input tokens per model call that a projection assumes (a request carries a skill's prompt and
/// the slices of the artifacts it reads; the output side is the skill's max_output_tokens). The
/// engine's cost loop and `avps cost` must use the same figure, or their totals disagree.
inline constexpr int64_t k_projection_input_tokens_per_call = 4'000;

/// The latest recorded canonical JSON of kind/target ("" target for SCENES), or nullopt: the
/// shape of gates::GateContext::latest, so the engine and `avps cost` pass their record through.
using LatestArtifact =
    std::function<Result<std::optional<nlohmann::json>>(std::string_view kind, std::string_view target)>;

/// A project's planned shots as its record holds them.
struct RecordedShots {
  std::vector<std::string> scene_ids;                ///< the latest SCENES' rows, in order
  std::vector<ShotPlan> shots;                       ///< the latest SHOTLIST of each, screen order
  std::vector<std::string> scenes_without_shotlist;  ///< not planned yet (left out of `shots`)
};
/// Reads the latest SCENES and each scene's latest SHOTLIST through `latest`, with the generation
/// tiers the latest ROUTING_DECISION_PROJECT's shot_tiers give (apply_shot_tiers). not_found when
/// no SCENES is recorded.
[[nodiscard]] Result<RecordedShots> recorded_shots(const LatestArtifact& latest);

/// Sets ShotPlan::tier of each shot a ROUTING_DECISION shot_tiers entry ({shot_id, hero_tier,
/// tier}) names: the budget's re-routes below a shot's hero tier. An entry whose shot is no longer
/// planned, or is planned with another hero tier, is left out (the re-plan starts from its hero
/// tier). invalid_argument for a tier that is no generation tier or is above the hero tier's (a
/// re-route only moves down: gen_premium stays for hero A).
[[nodiscard]] Result<void> apply_shot_tiers(std::vector<ShotPlan>& shots, const nlohmann::json& shot_tiers);

/// project_costs over recorded_shots(), with estimate_skill_calls() for the model skills: what
/// `avps cost DIR` prints.
[[nodiscard]] Result<CostProjection> project_recorded(const LatestArtifact& latest,
                                                      const std::map<std::string, skills::SkillDef>& skills,
                                                      const Router& router,
                                                      const ProjectionSettings& settings,
                                                      int64_t input_tokens_per_call);

/// The narrative model calls (t1, t2, t3, research; narrative_calls()) the project's plan implies
/// for the whole project, the basis of the t3 quota: estimate_skill_calls over the recorded shots
/// when a SHOTLIST is recorded, else over the brief's plan (brief_estimate.hpp: plan_from_brief of
/// read_brief(brief) with the default assumptions and the recorded SCENES' ids, if any). Like
/// every estimate it counts one call per skill and scope instance (no revisions), and conditional
/// skills as if they always ran.
[[nodiscard]] Result<int64_t> projected_narrative_calls(
    const LatestArtifact& latest, std::string_view brief_markdown,
    const std::map<std::string, skills::SkillDef>& skills);

}  // namespace avps::governance
