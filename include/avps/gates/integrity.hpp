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
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/gates/checked_objects.hpp"
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
/// What a run's check found as recorded (docs/formats/verified.md, `.avps/verified`): the ledger's
/// VerifiedPoint, and each face and render with its bytes' hash and the file's identity when it
/// was hashed, so that the next run's check re-reads only what changed since. `avps gate` never
/// uses one. Not shared between threads.
struct FileSeen {
  bool render = false;  ///< under media/ (else an artifact's face)
  std::string sha256;   ///< the bytes, as recorded and as found
  /// The file's identity (stat) when it was hashed; nullopt: none kept, so it is hashed every time
  /// (it had changed less than k_settled_ns before the check: a change within the same tick of the
  /// file system's clock would not show).
  struct Identity {
    int64_t size = 0, mtime_ns = 0, ctime_ns = 0;
    uint64_t inode = 0, device = 0;
    bool operator==(const Identity&) const = default;
  };
  std::optional<Identity> identity;
};
struct VerifiedMark {
  static constexpr int64_t k_settled_ns = 2'000'000'000;
  ledger::Ledger::VerifiedPoint ledger;
  std::map<std::string, FileSeen> files;  ///< by project-relative path
};
/// The project's mark, or nullopt when it has none, or one this avps cannot read or trust (a
/// format of another version, a torn or edited file): the check is then made whole.
std::optional<VerifiedMark> read_verified_mark(const std::filesystem::path& dir);
/// Replaces the project's mark (written atomically, not synced: a mark lost or from before is
/// only a slower check).
[[nodiscard]] Result<void> write_verified_mark(const std::filesystem::path& dir, const VerifiedMark& mark);

/// `since`: a mark of an earlier check (a run's start) that is still good for what it names: the
/// ledger is checked from its point (Ledger::verify), faces and renders recorded up to the point
/// are hashed only when their identity changed, and objects recorded up to it are left to their
/// readers, who re-hash every object they read (DESIGN §5), and to `avps gate`. When such a check
/// finds anything, the whole check is made and its findings are returned, so a finding reads the
/// same either way. `clean`: filled with the mark of this check when it found nothing at all
/// (else its ledger.seq stays 0).
///
/// `after_events`: called once, when the events are read and before any artifact's object is
/// (not at all when the events cannot be read: then the check stops before the objects too).
/// `checked`: objects read and found intact in this process, from the same snapshot, with what
/// their kinds' schemas say of them: such an object is not read, hashed, parsed or validated
/// again, and its findings are the same. `avps gate` runs its record check in `after_events`,
/// filling `checked` as it reads (CheckedObjects).
struct IntegrityOptions {
  bool schemas = true;
  const VerifiedMark* since = nullptr;
  VerifiedMark* clean = nullptr;
  std::function<void()> after_events = nullptr;
  CheckedObjects* checked = nullptr;
  /// How many threads read and hash the objects the exchanges name, the faces and the renders
  /// (this one among them; the objects each through a connection of its own,
  /// Ledger::another_reader): `avps gate` gives it the machine's cores, while a run's check,
  /// beside the walk, keeps to its one.
  size_t threads = 1;
};
std::vector<core::Violation> check_integrity(const std::filesystem::path& dir, const ledger::Ledger& ledger,
                                             const ProjectFiles& files, const IntegrityOptions& options = {});
/// The same, listing the files itself after the ledger was opened: for a project nothing writes.
std::vector<core::Violation> check_integrity(const std::filesystem::path& dir, const ledger::Ledger& ledger);

}  // namespace avps::gates
