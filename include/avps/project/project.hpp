#pragma once
// A project folder (DESIGN §2) opened for work: its configuration, ledger and artifact store.
//
//   my-film/avps.json brief.md                      human input
//   narrative/ validation/ continuity/ production/ governance/ media/   artifacts by layer
//   logs/RUN_LOG_v001.csv                            CSV face of the ledger
//   .avps/ledger.db HEAD lock objects/               the record
//
// A folder is an avps project exactly when .avps/ledger.db exists.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "avps/artifacts/store.hpp"
#include "avps/core/clock.hpp"
#include "avps/core/result.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/config.hpp"

namespace avps::project {

/// Where the shipped schemas/, skills/ and policies/ are: $AVPS_HOME if set, else
/// <executable>/../share/avps if it exists (an installed avps), else the source tree avps was
/// built from.
std::filesystem::path data_dir();

/// The folders init creates, in order.
const std::vector<std::string>& project_folders();

/// Entries a folder may hold before `avps init` adopts it: the project's own inputs.
bool is_project_source_entry(const std::string& name);

enum class FolderState {
  missing,       ///< does not exist
  empty,         ///< exists, nothing in it
  sources_only,  ///< holds only project inputs (avps.json, brief.md, skills/, policies/, ...), and
                 ///< what an init killed before publishing its ledger left

  project,       ///< an initialised avps project
  foreign,       ///< holds something else
};

struct FolderInspection {
  FolderState state = FolderState::missing;
  std::vector<std::string> foreign_entries;  ///< for `foreign`: what is in the way (sorted)
};
FolderInspection inspect_folder(const std::filesystem::path& dir);

/// Removes temp files (".<name>.<random>.tmp") that a killed writer left behind. Never touches
/// anything else.
[[nodiscard]] Result<void> remove_stale_temp_files(const std::filesystem::path& dir);

/// The artifact kinds `dir`'s schemas/ declares (artifacts::read_kind_declaration over every
/// *.schema.json there, in file-name order); none when there is no schemas/ folder. Fails
/// (configuration, exit 4) naming every schema whose declaration is broken or unreadable.
[[nodiscard]] Result<std::vector<artifacts::DeclaredKind>> read_declared_kinds(const std::filesystem::path& dir);
/// read_declared_kinds(dir), then artifacts::declare_kinds: the project's own kinds become names
/// this process parses (and no other project's). Project::open does it; so must a command that
/// reads a project's names without opening it (the gate).
[[nodiscard]] Result<void> declare_project_kinds(const std::filesystem::path& dir);
/// The folders schemas are looked for in, first to last: `dir`/schemas (when it exists), then the
/// shipped data_dir()/schemas. A project's schema replaces the shipped one of that file name, and
/// its references to files it does not have ("common.schema.json#/...") resolve to the shipped ones.
std::vector<std::filesystem::path> schema_dirs(const std::filesystem::path& dir);

class Project {
 public:
  /// Opens an initialised project. read_write takes the writer lock, completes interrupted
  /// ledger mirrors and artifact writes, and removes stale temp files.
  static Result<std::unique_ptr<Project>> open(const std::filesystem::path& dir, ledger::OpenMode mode,
                                               const std::vector<Override>& overrides, const core::Clock& clock);

  /// `avps init`: scaffolds `dir` (missing, empty, or holding only project inputs) and records
  /// the first artifacts. `title` replaces the template's title when not empty.
  static Result<std::unique_ptr<Project>> init(const std::filesystem::path& dir, const std::string& title,
                                               const std::vector<Override>& overrides, const core::Clock& clock);

  const std::filesystem::path& dir() const { return m_dir; }
  const Config& config() const { return m_config; }
  ledger::Ledger& ledger() { return *m_ledger; }
  const ledger::Ledger& ledger() const { return *m_ledger; }
  artifacts::ArtifactStore& store() { return *m_store; }

 private:
  Project() = default;
  std::filesystem::path m_dir;
  Config m_config;
  std::unique_ptr<ledger::Ledger> m_ledger;
  std::unique_ptr<artifacts::ArtifactStore> m_store;
};

}  // namespace avps::project
