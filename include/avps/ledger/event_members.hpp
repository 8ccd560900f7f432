#pragma once
// A pass over the record that reads a few fields of each event: the events as Ledger::events
// gives them, each body holding only some of its top-level members. With the SQLite ledger the
// members are taken out by SQLite's JSON functions, so the rest of a body is never parsed (most
// of such a pass's cost); with another Ledger the bodies are read whole and cut.
//
// Threading: as Ledger::events.

#include <string>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/ledger/ledger.hpp"

namespace avps::ledger {

/// The events `query` selects, each body holding only the `members` it has that are not null.
/// A body that is not valid JSON is parsed whole, and so fails as Ledger::events fails on it.
[[nodiscard]] Result<std::vector<Event>> events_with_members(const Ledger& ledger, const Ledger::EventQuery& query,
                                                             const std::vector<std::string>& members);

}  // namespace avps::ledger
