#pragma once
// prompt-packager as code (spec §2.17, DESIGN §1.3): a GENPACK assembled from the locks
// verbatim, the SHOTLIST row, the world state and the applicable REGEN_RULES, and the checks
// that a GenPack (assembled or hand-edited) is faithful.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"
#include "avps/core/violation.hpp"

namespace avps::builtins {

/// An artifact as the packager pastes it (a lock, or an input marked into_genpack): file name,
/// face text (verbatim) and canonical JSON.
struct LockFace {
  std::string name;  ///< e.g. CHAR_ALEX_LOCK_v002.txt
  std::string face;
  nlohmann::json content;
};

struct GenpackInputs {
  nlohmann::json shot_row;             ///< the SHOTLIST row of the shot
  LockFace style;                      ///< STYLE_PROJECT_LOCK
  LockFace set;                        ///< the SET lock of shot_row.set_id
  std::vector<LockFace> characters;    ///< the CHAR locks of shot_row.char_ids, in that order
  nlohmann::json world_state;          ///< the WORLD_STATE the shot plays in
  std::optional<nlohmann::json> regen_rules;  ///< the current REGEN_RULES, if any
  std::vector<std::string> qc_findings;       ///< the reasons of the shot's last FIX / FAIL verdict
  /// A revision's corrections: the findings of the judge whose FIX or FAIL asked for this GenPack
  /// (a storyboard review's Adjust), each already saying which judge and attempt it answers.
  std::vector<std::string> revision_findings;
  /// The packager's inputs marked into_genpack (skill.json), each artifact as recorded: pasted in
  /// this order into the CARRIED INPUTS section. Empty: the GenPack has no such section.
  std::vector<LockFace> carried;
  std::string resolution;              ///< "proxy" or "final"
  std::string tier;                    ///< generation tier: gen_premium, gen_mid, gen_low
  std::optional<unsigned> seed;        ///< generation seed, when the backend takes one
};

/// The GENPACK canonical JSON (gate not yet evaluated: verdict PASS, no reasons). Locks are
/// pasted verbatim; ACTION comes from the blocking and what the world state says the characters
/// carry and suffer; NEGATIVES are every lock's forbidden-drift items plus the REGEN_RULES
/// constraints that name this shot or its scene; SETTINGS take the `settings` of the REGEN_RULES
/// adjustments that name the shot or its scene (duration_s only ever shorter, complexity_level,
/// camera_type); hero-A shots restate 2-3 facial markers per
/// character; the `carried` artifacts follow ACTION verbatim, each named by its file. Never adds a
/// prop, character, wardrobe or environment change. Errors name what is
/// missing (a lock of the wrong entity, a shot row without set_id...).
[[nodiscard]] Result<nlohmann::json> assemble_genpack(const GenpackInputs& inputs);

/// The regen-analyzer's gate on its REGEN_RULES for one shot (skills.md 2.19), as FAIL reasons
/// (empty: it passes): a regen with no prompt adjustment rule naming the shot (or its scene) is a
/// FAIL (check regen_rules_adjust_the_shot); so is repeated drift (a face_drift, set_drift or
/// lighting_shift pattern of 2+ failed attempts of the shot) with nothing that reduces the shot's
/// complexity — no complexity_reduction or duration_reduction rule, no rule setting complexity_level
/// or duration_s, no structural simplification recommended for it (regen_simplifies_repeated_drift).
std::vector<std::string> check_regen_rules(const nlohmann::json& rules, const std::string& shot_id,
                                           const std::string& scene_id);

/// Checks of a GenPack face against the locks it must carry (rule ids "genpack.order",
/// "genpack.lock", "genpack.negatives"; subject = the section or lock name): the six sections
/// once each in the fixed order; every expected lock's face verbatim; every forbidden-drift item
/// of those locks in NEGATIVES.
std::vector<core::Violation> check_genpack(const nlohmann::json& genpack, const std::string& genpack_face,
                                           const std::vector<LockFace>& expected_locks);

}  // namespace avps::builtins
