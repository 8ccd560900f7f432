#pragma once
// The integrity gate: does the project folder hold exactly what the ledger says, untouched?
// (`avps gate`, DESIGN §5 "Tamper evidence"). Pipeline rules are separate gates.
//
// Rules, each reported as a core::Violation with its rule id:
//   config.valid        avps.json and its layers validate against project.schema.json
//   ledger.*            the ledger's own checks (Ledger::verify): triggers, hashes, chain, HEAD,
//                       artifact index, run-log CSV face
//   artifact.missing    a recorded artifact's face file is gone
//   artifact.hash       a face file's bytes differ from the recorded hash
//   artifact.object     the canonical JSON object is missing or differs from its hash
//   artifact.unrecorded a file named like an artifact that the ledger never recorded
//   artifact.name       a file whose name breaks the naming rules (banned suffix, bad version...)
//   artifact.gap        versions of one artifact that skip a number
//   artifact.interrupted an announced write that never completed (a writing command recovers it)
//   object.missing      an object an exchange names (request, answer, wire body, render bytes) is gone
//   object.hash         such an object's bytes no longer match its name
//   media.missing       a render a media.recorded event names is gone
//   media.hash          a render's bytes differ from the recorded hash
//   media.unrecorded    a file under media/ that no media.recorded event names

#include <filesystem>
#include <vector>

#include "avps/core/violation.hpp"
#include "avps/ledger/ledger.hpp"

namespace avps::gates {

/// Every integrity violation of the project at `dir`, in a stable order (ledger first, then
/// files by path). Empty means the folder is exactly what the ledger vouches for.
std::vector<core::Violation> check_integrity(const std::filesystem::path& dir, const ledger::Ledger& ledger);

}  // namespace avps::gates
