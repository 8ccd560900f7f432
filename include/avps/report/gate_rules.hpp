#pragma once
// The rules of `avps gate` that read where the production stands (the read model): the money
// within its caps, and `--require PHASE`. Integrity and the record's own consistency are
// gates::check_integrity and gates::check_record.
//
// Rules, each reported as a core::Violation with its rule id:
//   budget.cap     committed and reserved spend above a cap in force (the project's, a scene's, a
//                  shot's; a cap a person raised with `avps override` is the one in force)
//   require.phase  the production has not reached the phase `--require` names, or a hard stop is
//                  open in its scope
//
// Threading: reads the project's ledger; call from the thread that owns the Project.

#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/core/violation.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/config.hpp"
#include "avps/report/read_model.hpp"

namespace avps::report {

/// budget.cap: the project, every scene and every shot that spent anything, against the caps in
/// force (`configured`, as raised by overrides recorded in `ledger`). Reads the ledger's budget
/// tables and override events only (no fold of the record), so from the caller's snapshot.
[[nodiscard]] Result<std::vector<core::Violation>> check_spend(const project::Budget& configured,
                                                               const ledger::Ledger& ledger);

/// The index in `phases` (ProjectView::phases, phases_of) of the phase `name` names: a phase's
/// name, or the resolution of the phase that renders at it ("proxy", "final"). invalid_argument,
/// listing the names, otherwise.
[[nodiscard]] Result<size_t> find_phase(const std::vector<PhaseView>& phases, std::string_view name);

/// require.phase: the project has reached phase `at` (an index of find_phase) when
///  - every skill of a phase up to it that runs once has run, and every entity of one that runs
///    per entity has, and the last verdict of each passes (PASS, WARN, or accepted by a person);
///  - where the phase runs per scene or shot: the latest SCENES lists scenes, and each of them has
///    a recorded step of this phase or a later one, no failing last verdict of a per-scene skill
///    of a phase up to it, and every shot of its latest SHOTLIST passed at the resolution of every
///    per-shot phase up to it;
///  - no open hard stop holds a unit of a phase up to it, as the engine's Plan says
///    (`holds_from_phase` of the view's hard_stops).
std::vector<core::Violation> check_reached(const ProjectView& view, size_t at);

}  // namespace avps::report
