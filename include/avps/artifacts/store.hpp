#pragma once
// The artifact store: writes an artifact's canonical JSON and its face into the project,
// write-once, and has the ledger vouch for both.
//
// A write is three durable steps (docs/formats/artifacts.md):
//   1. the canonical JSON stored as an object in the ledger (content-addressed; store_object),
//      then ledger event artifact.intent {name, hashes}, synced: both durable by one sync
//   2. the face file, through AtomicFile with Overwrite::no (fsync, link, fsync folder)
//   3. ledger event artifact.recorded + artifact index row, with its RUN_LOG row: one
//      transaction, deferred (durable with the next synced commit: the face is durable already)
// write_all() does the same for a group of artifacts with one sync of all their intents, one
// folder sync per folder and one commit of all their records.
// Guarantees: an existing artifact is never overwritten (a hard error naming the file); a crash
// at any point leaves either no artifact or the complete one: recover() (run on every writing
// open) finishes a write whose files are complete and abandons one whose files are not.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/artifacts/names.hpp"
#include "avps/core/fs.hpp"
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

/// Path of the content-addressed object file for a hash (.avps/objects/<2 hex>/<62 hex>.json): where
/// objects larger than k_ledger_object_max_bytes live, and every object of a schema-2 ledger.
std::filesystem::path object_path(const std::filesystem::path& project_dir, const std::string& json_sha256);

/// Objects up to this size are kept in the ledger (Ledger::put_object: durable with the log's
/// sync, no file); larger ones (real renders) are files under .avps/objects, each written durably
/// (fsync, link, fsync folder) before the event that names it is committed.
inline constexpr size_t k_ledger_object_max_bytes = size_t{1} << 20;

/// Stores `bytes` as an object (an artifact's canonical JSON, a request, an answer, a render) and
/// returns their sha256: in the ledger, or as a file when larger than k_ledger_object_max_bytes.
/// Either way it is durable no later than any event committed after it. Writer only.
[[nodiscard]] Result<std::string> store_object(ledger::Ledger& ledger, std::string_view bytes);

/// The bytes of the object `sha256` names, from the ledger or else its file, re-hashed before they
/// are returned: not_found when it is gone, corruption when its bytes no longer match the name,
/// both naming the object (object_subject). A recorded answer is never used unverified (DESIGN §5
/// "Tamper evidence").
[[nodiscard]] Result<std::string> read_object(const ledger::Ledger& ledger, const std::string& sha256);

/// How messages name an object: "object <sha256> (.avps/ledger.db)" for one the ledger holds, its
/// file's project-relative path for a file, "object <sha256>" for one that is in neither place.
std::string object_subject(const ledger::Ledger& ledger, const std::string& sha256);

class ArtifactStore {
 public:
  ArtifactStore(std::filesystem::path project_dir, ledger::Ledger& ledger);

  /// Writes an artifact (the three steps above). Fails with already_exists, naming the file,
  /// if the ledger knows the name or a file of that name is already in the project.
  [[nodiscard]] Result<ledger::ArtifactRecord> write(const NewArtifact& artifact);
  /// Writes several artifacts as one group (group commit): the objects, then every intent in one
  /// synced transaction, then each face (its bytes synced), each folder synced once for the group,
  /// then every artifact.recorded in one deferred transaction. A crash at any point leaves, of
  /// each artifact, none or the whole one, as write() does (recover() resolves the announced
  /// ones). Refused whole, before anything is written, if any name is known, exists or is
  /// repeated. Records in the order given.
  [[nodiscard]] Result<std::vector<ledger::ArtifactRecord>> write_all(const std::vector<NewArtifact>& group);

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
  [[nodiscard]] Result<void> write_face(const NewArtifact& artifact, core::Durability durability) const;
  std::filesystem::path m_project_dir;
  ledger::Ledger& m_ledger;
};

}  // namespace avps::artifacts
