#pragma once
// The artifact store: writes an artifact's canonical JSON and its face into the project,
// write-once, and has the ledger vouch for both.
//
// A write is three durable steps (docs/formats/artifacts.md):
//   1. ledger event artifact.intent {name, hashes}          — the write is announced
//   2. .avps/objects/<2 hex>/<62 hex>.json (canonical JSON, content-addressed)
//      and the face file, each through AtomicFile with Overwrite::no
//   3. ledger event artifact.recorded + artifact index row  — one transaction, together with
//      whatever else the caller commits with it (a RUN_LOG row, later cost settlements)
// Guarantees: an existing artifact is never overwritten (a hard error naming the file); a crash
// at any point leaves either no artifact or the complete one: recover() (run on every writing
// open) finishes a write whose files are complete and abandons one whose files are not.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/artifacts/names.hpp"
#include "avps/core/result.hpp"
#include "avps/ledger/ledger.hpp"

namespace avps::artifacts {

/// What a producer hands to the store.
struct NewArtifact {
  ArtifactName name;
  nlohmann::json content;          ///< canonical JSON (validated by the caller against its schema)
  std::string face;                ///< the rendered face's bytes
  std::string author = "avps";     ///< "avps" or "human"
  std::string producer;            ///< skill or command name
  std::optional<ledger::LogRow> row;  ///< the RUN_LOG row that reports this write, if any
  nlohmann::json details = nlohmann::json::object();  ///< extra facts for the recorded event (inputs, reason)
};

/// Path of the content-addressed object for a canonical-JSON hash.
std::filesystem::path object_path(const std::filesystem::path& project_dir, const std::string& json_sha256);

/// The bytes of the object `sha256` names (an artifact's canonical JSON, a request, an answer, a
/// render), re-hashed before they are returned: not_found when it is gone, corruption when its
/// bytes no longer match the name, both naming the object. A recorded answer is never used
/// unverified (DESIGN §5 "Tamper evidence").
[[nodiscard]] Result<std::string> read_object(const std::filesystem::path& project_dir, const std::string& sha256);

class ArtifactStore {
 public:
  ArtifactStore(std::filesystem::path project_dir, ledger::Ledger& ledger);

  /// Writes an artifact (the three steps above). Fails with already_exists, naming the file,
  /// if the ledger knows the name or a file of that name is already in the project.
  [[nodiscard]] Result<ledger::ArtifactRecord> write(const NewArtifact& artifact);

  /// The latest recorded version of kind/target, if any.
  [[nodiscard]] Result<std::optional<ledger::ArtifactRecord>> latest(std::string_view kind,
                                                                     std::string_view target) const;
  /// The name the next version of kind/target would get (v001 if none exists).
  [[nodiscard]] Result<ArtifactName> next_name(std::string_view kind, std::string_view target) const;

  /// The canonical JSON of a recorded artifact, read from the object store and verified
  /// against the ledger's hash (corruption if it differs).
  [[nodiscard]] Result<nlohmann::json> load(const ledger::ArtifactRecord& record) const;

  /// Resolves writes a crash interrupted (artifact.intent without artifact.recorded or
  /// artifact.abandoned): records those whose object and face are complete and match the
  /// announced hashes, abandons the others (removing a stray face only if its hash is not the
  /// announced one... which cannot happen through AtomicFile, so it is reported as corruption).
  [[nodiscard]] Result<void> recover();

 private:
  [[nodiscard]] Result<void> write_files(const NewArtifact& artifact, const std::string& canonical,
                                         const std::string& json_sha256) const;
  std::filesystem::path m_project_dir;
  ledger::Ledger& m_ledger;
};

}  // namespace avps::artifacts
