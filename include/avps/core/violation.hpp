#pragma once
// A broken rule found by a check (integrity, naming, gates): which rule, which file or ledger row,
// and what is wrong. Checks collect these instead of stopping at the first.

#include <string>

namespace avps::core {

struct Violation {
  std::string rule;     ///< stable rule id, e.g. "ledger.chain", "artifact.hash"
  std::string subject;  ///< the file (project-relative) or ledger row ("ledger event 12")
  std::string message;  ///< what is wrong, for a person
  /// Also exactly what an avps process leaves while it writes: a mirror behind the ledger, a write
  /// announced and not yet recorded, a render or a run-log row not yet recorded. A violation only
  /// when no avps process holds the project's writer lock (a crash left it); else work in progress.
  bool transient = false;
};

}  // namespace avps::core
