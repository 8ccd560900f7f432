#pragma once
// The artifact objects one `avps gate` has read and found intact, so that its integrity check and
// its record check read, hash, parse and validate each object once between them.
//
// The record check reads nearly every artifact's canonical JSON (to recompute its gate) and the
// integrity check reads every one again (artifact.object: present and unchanged; artifact.schema:
// valid against its kind's schema as it is now). The gate runs its record check between the
// integrity check's pass over the events and its pass over the artifacts
// (IntegrityOptions::after_events); each object the record check read through this, hashed to
// its name and parsed, is noted with what its kind's schema says of it, and the integrity check
// takes that instead of reading, hashing, parsing and validating it again.
//
// What is noted is a fact about one ledger snapshot and the schema files as this process loaded
// them: it lives in the gate's memory only, never on disk (an edited file could turn a FAIL into a
// PASS). An object is noted only once its bytes matched its sha256; a read that failed is not
// noted, and the integrity check reads such an object itself and reports it as it always has.
//
// Threading: note(), codec() and find() may be called from several threads at once (the record
// check notes from each of its threads); a Noted that find() returned is read only once no thread
// notes any more (the integrity check reads them after the record check has ended).
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/artifacts/face.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/core/result.hpp"

namespace avps::gates {

class CheckedObjects {
 public:
  /// Schemas are loaded from project::schema_dirs(project_dir), as the integrity check loads them.
  explicit CheckedObjects(std::filesystem::path project_dir);

  /// The face codec (and so the schema) of `kind`, loaded once for the whole gate: both checks
  /// validate against the same compiled schema. The error when it does not load.
  const Result<artifacts::FaceCodec>& codec(const std::string& kind);

  /// Notes that object `sha256` was read from the gate's snapshot and matched its hash, and that
  /// `content` is its canonical JSON parsed; validates it against `kind`'s schema when that kind
  /// has one (not an image kind, and the schema loads) and notes the issues found.
  void note(const std::string& sha256, const std::string& kind, const nlohmann::json& content);

  /// What was noted of one object: read and intact, and per kind validated, the issues found.
  struct Noted {
    std::map<std::string, std::vector<core::SchemaIssue>> issues_by_kind;
  };
  /// Null when `sha256` was not noted (read it).
  const Noted* find(const std::string& sha256) const;

 private:
  std::filesystem::path m_project_dir;
  mutable std::mutex m_mutex;  // over the two maps (a codec, once loaded, is only read: not under it)
  std::map<std::string, Result<artifacts::FaceCodec>> m_codecs;  // by kind
  std::unordered_map<std::string, Noted> m_noted;                // by object sha256
};

}  // namespace avps::gates
