#pragma once
// The record agrees with itself: the rules of the full `avps gate` beyond integrity (which says the
// files are what the ledger recorded). Integrity catches bytes changed behind avps's back; these
// catch a record that avps itself could not have written, or that a person made inconsistent
// through legitimate commands, and a rule that was later changed under a recorded verdict.
//
// Rules, each reported as a core::Violation with its rule id:
//   gate.verdict       an artifact's recorded gate (verdict, reasons, scores) is not what the gate of
//                      its producing skill gives on its recorded content, with the thresholds its
//                      scores recorded and the artifacts recorded before it
//   world_state.chain  a WORLD_STATE a world-state-tracker step wrote is not its input WORLD_STATE
//                      with the step's STATE_DIFF applied
//   genpack.locks      a GENPACK recorded as passing does not hold, verbatim, the locks recorded
//                      before it for its shot (style, set, characters)
//
// Threading: check_record checks the steps on up to RecordCheckOptions::threads threads of its own
// (each with its own caches) and returns once they have ended; its findings come out in the same
// order whatever the number. It only reads the ledger, so it may run beside the integrity check
// of the same read-only ledger (`avps gate` does: Ledger's threading), once the project's kinds are
// declared (project::declare_project_kinds), and its CheckedObjects may be read once it returned.

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "avps/core/violation.hpp"
#include "avps/gates/checked_objects.hpp"
#include "avps/ledger/ledger.hpp"

namespace avps::gates {

/// Every rule id check_record can report, in the order of the list above.
const std::vector<std::string>& record_rules();

/// Every violation of the rules above in the project at `dir`, read through `ledger` (one
/// snapshot). The skills (the project's own where it has them) and the merged configuration are
/// loaded from the project; if they cannot be, that is the one violation reported.
///
/// A recomputed verdict re-runs the skill's declarative rules and those of its named checks whose
/// findings depend only on the output, its parameters and earlier artifacts
/// (check_recomputable); the engine's own checks and the checks that read the budget as it was
/// are taken as recorded: a recorded verdict may be worse than the recomputed one only when the
/// record carries the reasons that explain it, and never better.
struct RecordCheckOptions {
  /// How many parsed artifact contents are kept at once: bounded, so that a season's gate does
  /// not hold every artifact; the findings do not depend on it.
  size_t contents_cached = 4096;
  /// And at most this many bytes of canonical JSON (a parsed tree holds several times its text):
  /// one artifact can be large (a BUDGET_STATUS of 4,000 shots was 160 KB, and a 500-scene record
  /// held a thousand of them).
  size_t contents_bytes_cached = size_t{4} << 20;
  /// Where each object the check reads, intact, is noted with what its kind's schema says of it,
  /// for the integrity check of the same gate (CheckedObjects), or null.
  CheckedObjects* checked = nullptr;
  /// How many threads check the steps (0: std::thread::hardware_concurrency()). Each holds its own
  /// cached contents, up to the bounds above; the findings do not depend on it.
  size_t threads = 0;
};
std::vector<core::Violation> check_record(const std::filesystem::path& dir, const ledger::Ledger& ledger,
                                          const RecordCheckOptions& options = {});

}  // namespace avps::gates
