#pragma once
// Cost before there is a shot list: what `avps cost` projects for a project that has not planned
// its shots yet (a fresh folder holding avps.json and brief.md, or a project whose record has no
// SHOTLIST). Users ask "what will this cost" before they start, so the brief's own words about its
// length become a synthetic shot plan under stated assumptions, and that plan goes through the
// same arithmetic as a real one (project_costs, estimate_skill_calls).
//
// What is read from the brief (Markdown, as docs/formats describes brief.md):
//   - scenes: a "Scenes: N" line anywhere; else "<number> scenes" in the "## Length" section
//     ("six scenes", "6 scenes"); else the number of "## Story beats" items; else the default.
//     Recorded SCENES, when a project has them, win over all of these.
//   - shots: "<number> shots" in "## Length" ("about twenty shots") is the total, spread evenly
//     over the scenes (earlier scenes take the remainder); "<number> shots per scene" (or "a scene",
//     "each scene") is per scene; else the default per scene. Every scene has at least one shot.
//   - characters and locations: the names of the "## Characters" and "## Locations" list items,
//     which decide how many character, voice and set locks are estimated.
// Numbers are digits or English number words up to ninety-nine ("twenty-four").
//
// Guarantees: a pure function of the text and the assumptions (same brief, same plan); every
// assumption used is listed in plain words for the user; nothing is invented silently.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/governance/projection.hpp"
#include "avps/governance/router.hpp"
#include "avps/skills/skill_def.hpp"

namespace avps::governance {

/// The defaults an estimate from the brief falls back on.
struct BriefAssumptions {
  int64_t default_scenes = 6;        ///< when the brief names no scene count
  int64_t shots_per_scene = 4;       ///< when the brief names no shot count
  int64_t shot_duration_ms = 5'000;  ///< every shot, on average
  int hero_a_pct = 20;               ///< hero tier mix; the three add up to 100
  int hero_b_pct = 50;
  int hero_c_pct = 30;
  std::string regen_risk = "medium";  ///< every shot (x1.3)
  std::string complexity = "medium";  ///< every shot
  int64_t default_characters = 2;     ///< when the brief lists none
  int64_t default_locations = 1;      ///< when the brief lists none
};

/// What a brief says that an estimate uses, with where it says it (for the assumption lines).
struct BriefFacts {
  std::optional<int64_t> scenes;
  std::string scenes_source;  ///< e.g. the brief's ## Length ("six scenes"), for the assumption line
  std::optional<int64_t> shots;
  bool shots_per_scene = false;  ///< `shots` counts per scene, not in all
  std::string shots_source;
  std::vector<std::string> characters;  ///< display names, in order, distinct
  std::vector<std::string> locations;
  int64_t story_beats = 0;
};
/// Reads `markdown` (a brief.md). Never fails: a brief that says nothing gives empty facts.
BriefFacts read_brief(std::string_view markdown);

/// Every name of the brief's character and location lists that cannot become an entity id
/// (artifacts::normalize_entity_id: no ASCII letter or digit, a path separator, an id too long or
/// with a banned suffix; or more than 80 bytes, a sentence rather than a name), and every two
/// names of one list that make the same id, one sentence
/// each with its line ("line 12: the character \"Ωμέγα\" cannot become an id: ..."). Empty when
/// every name can: a run refuses a brief whose cast it would otherwise lose without a word.
std::vector<std::string> brief_name_problems(std::string_view markdown);

/// A synthetic shot plan and the assumptions behind it.
struct BriefPlan {
  std::vector<std::string> scene_ids;    ///< S01, S02, ... or the recorded ones
  std::vector<ShotPlan> shots;           ///< screen order, shot ids S01_SH01 ...
  std::vector<std::string> assumptions;  ///< one plain sentence each, in the order applied
};
/// The plan of `facts` under `assumptions`. `recorded_scene_ids`, when not empty, are the scenes a
/// recorded SCENES already names: their number and ids win over the brief's. Hero tiers follow
/// the mix exactly in count (largest remainder) and are spread evenly in screen order; characters
/// and sets are spread over the shots so that every one appears. invalid_argument when the
/// assumptions are not usable (a mix not adding up to 100, a count or duration ≤ 0, an unknown
/// regen risk).
[[nodiscard]] Result<BriefPlan> plan_from_brief(const BriefFacts& facts, const BriefAssumptions& assumptions,
                                                const std::vector<std::string>& recorded_scene_ids = {});

/// A projection from the brief: the plan and its CostProjection.
struct BriefEstimate {
  BriefPlan plan;
  CostProjection projection;
};
/// read_brief + plan_from_brief, then estimate_skill_calls over the plan and project_costs:
/// exactly the arithmetic of a recorded projection, on the synthetic plan.
[[nodiscard]] Result<BriefEstimate> estimate_from_brief(
    std::string_view brief_markdown, const BriefAssumptions& assumptions,
    const std::vector<std::string>& recorded_scene_ids, const std::map<std::string, skills::SkillDef>& skills,
    const Router& router, const ProjectionSettings& settings, int64_t input_tokens_per_call);

}  // namespace avps::governance
