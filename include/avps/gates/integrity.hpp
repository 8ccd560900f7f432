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
//   artifact.schema     the content breaks its kind's schema (images have none)
//   run_log.row         a step.finished with no run-log row, or an artifact version no row names
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
#include <string>
#include <vector>

#include "avps/core/violation.hpp"
#include "avps/ledger/ledger.hpp"

namespace avps::gates {

/// Every rule id check_integrity can report, in the order of the list above (ledger.* spelled out),
/// for reports that show the rules that held as well as those that did not (`avps gate --junit`).
const std::vector<std::string>& integrity_rules();

/// The files a check looks at beyond those the ledger names: every file under media/ and every
/// file named like an artifact (sorted). Listed before the ledger is opened, so that beside a
/// running writer every file listed was announced, or recorded, in the ledger's snapshot (a run
/// records an artifact's intent before its files, and a render's file before its event).
struct ProjectFiles {
  std::vector<std::string> media;
  std::vector<std::string> artifact_named;
};
ProjectFiles list_project_files(const std::filesystem::path& dir);

/// Every integrity violation of the project at `dir`, in a stable order (ledger first, then
/// files by path). Empty means the folder is exactly what the ledger vouches for. Violations a
/// writer leaves in passing (a mirror behind, a write announced, a render not yet recorded) are
/// `transient`: see core::Violation.
/// What a check may leave out. `schemas`: artifact.schema, each artifact's content validated
/// against its kind's schema as it is now (the costliest rule; a writer that only needs the bytes
/// as recorded, hash-verified, leaves it to `avps gate`).
/// `also`: a further reader of the events, given each event of the check's pass too (its body
/// with the check's own members and `also->members`), and told in `also->failed` when that pass did
/// not give every event (`avps gate`'s record check, RecordedArtifacts).
struct IntegrityOptions {
  bool schemas = true;
  ledger::Ledger::EventVisitor* also = nullptr;
};
std::vector<core::Violation> check_integrity(const std::filesystem::path& dir, const ledger::Ledger& ledger,
                                             const ProjectFiles& files, const IntegrityOptions& options = {});
/// The same, listing the files itself after the ledger was opened: for a project nothing writes.
std::vector<core::Violation> check_integrity(const std::filesystem::path& dir, const ledger::Ledger& ledger);

}  // namespace avps::gates
