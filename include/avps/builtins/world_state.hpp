#pragma once
// The world-state built-ins (spec §2.13, DESIGN §3): STATE_DIFF application and the continuity
// checks around it. Deterministic code, no model, no cost.
//
// Merge semantics of a STATE_DIFF (schemas/state_diff.schema.json): keys mirror the WORLD_STATE
// sections; a scalar replaces; a list changes only through {"add": [...], "remove": [...]}
// (remove first); null deletes an entry; an absent field is unchanged.

#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"
#include "avps/core/violation.hpp"

namespace avps::builtins {

/// The next WORLD_STATE: `state_diff` applied to `world_state` (both canonical JSON). Refused,
/// with the JSON pointer named: an unknown key, a list changed other than by add/remove, an
/// item removed that is not there, an item added that is already there.
[[nodiscard]] Result<nlohmann::json> apply_state_diff(const nlohmann::json& world_state,
                                                      const nlohmann::json& state_diff);

/// Continuity violations of `state_diff` against the state before it (rule ids
/// "continuity.injury", "continuity.prop", "continuity.knowledge", "continuity.order",
/// "continuity.entity"; subject = the entity id):
///   - an injury that disappears without a heal: removed from a character, or the character
///     deleted while injured, with no heal recorded in the scene's BREAKDOWN state_changes
///   - a prop that changes owner or place without a transfer: its owner changes without the old
///     owner's inventory losing it and the new owner's gaining it, or it moves to a place its
///     owner is not in, or it enters or leaves an inventory with no matching prop update
///   - knowledge used that was never recorded: a character loses or relies on knowledge it
///     never had
///   - a diff out of order (its scene is not after the state's current scene)
/// `breakdown_row` is the scene's BREAKDOWN row (may be null: no heal can then be justified).
std::vector<core::Violation> check_world_state_continuity(const nlohmann::json& world_state,
                                                          const nlohmann::json& state_diff,
                                                          const nlohmann::json& breakdown_row);

}  // namespace avps::builtins
