#pragma once
// The fold checkpoint's file (docs/formats/checkpoint.md): its format line, its sections, and the
// rules that make one usable. The writer and the read model's readers are report's
// (report::write_checkpoint, report::read_project); the engine's run reads its own section
// (engine::read_record). Both decide whether a checkpoint may be used here, by one set of rules.
//
// Derived state: a checkpoint that is not usable only costs its reader a fold of every event.

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "avps/core/byte_codec.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/opened_file.hpp"
#include "avps/core/result.hpp"

namespace avps::ledger {
class Ledger;
}
namespace avps::project {
class Project;
}

namespace avps::engine {

/// The checkpoint's format version. Raised whenever what a fold keeps, or how it folds an event,
/// changes (the read model's Book, the stale-shot record, the engine's Record): a checkpoint of
/// another version is not used.
inline constexpr int k_checkpoint_format_version = 9;

/// The sections of a checkpoint, in the order the file holds them.
enum class CheckpointSection : size_t {
  fold = 0,          ///< the head (versions, dependencies, event), the stale shots, the read model's Book
  stale_record = 1,  ///< the stale-shot rule's record (RecordParts::renders), flat-encoded
  run_record = 2,    ///< the engine's own record (RecordParts::all), flat-encoded: what a run starts from
};
inline constexpr size_t k_checkpoint_sections = 3;

/// .avps/fold_checkpoint of a project folder.
std::filesystem::path checkpoint_path(const std::filesystem::path& project_dir);

/// The digest of what the folds depend on besides the record: this avps and the checkpoint's
/// format, the merged configuration, and every file under skills/, policies/ and schemas/
/// (shipped and the project's). A checkpoint made under another is not used.
[[nodiscard]] Result<std::string> fold_dependencies(project::Project& project);

/// The head of the fold section, what every reader checks before it takes anything.
struct CheckpointHead {
  std::string avps_version;
  std::string dependencies;
  int64_t seq = 0;  ///< the last event folded
  std::string hash;
  std::string ts;
};

/// A checkpoint whose format line, length, fold section (against its sha256) and head hold for
/// this project as it is now: this avps, these dependencies, and the ledger's event `seq` still
/// having `hash`. The other sections are read (and checked against their sha256) when asked for,
/// from the file as it was opened.
class UsableCheckpoint {
 public:
  /// What open() keeps of the fold section: its bytes, to restore the folds from; or none (the
  /// section checked against its sha256 through a small buffer, its head read): for a caller that
  /// only asks whether the checkpoint can stay as it is.
  enum class FoldBytes { kept, none };
  /// The project's checkpoint if it can be used, else why not (a missing one: "none"). Reads the
  /// fold section and the ledger's event at the head's seq and the one after it.
  [[nodiscard]] static Result<std::variant<UsableCheckpoint, std::string>> open(
      project::Project& project, const std::string& dependencies, FoldBytes fold_bytes = FoldBytes::kept);

  const CheckpointHead& head() const { return m_head; }
  /// Whether the ledger holds events after the head's seq (when it was opened).
  bool events_follow() const { return m_events_follow; }
  /// The fold section's bytes (empty when opened with FoldBytes::none), and where the head ends in
  /// them. take_fold() hands them over.
  const std::string& fold() const { return m_fold; }
  size_t after_head() const { return m_after_head; }
  std::string take_fold() { return std::move(m_fold); }

  /// Another section's bytes when they match their sha256, else an error saying why it is not
  /// usable (corruption: "... does not match its sha256: damaged"; or the read's own error).
  [[nodiscard]] Result<std::string> section(CheckpointSection which) const;
  /// Whether another section matches its sha256, as section() says, read through a small buffer
  /// and not held.
  [[nodiscard]] Result<void> check(CheckpointSection which) const;

 private:
  UsableCheckpoint() = default;
  std::optional<core::OpenedFile> m_file;
  std::vector<uint64_t> m_offsets;  // of each section in the file
  std::vector<size_t> m_sizes;
  std::vector<std::string> m_sha256;
  CheckpointHead m_head;
  std::string m_fold;
  size_t m_after_head = 0;
  bool m_events_follow = false;
};

/// A section's bytes made in parts, for a writer that lets go of what it saves as it goes: values
/// are written to out(), and cut() marks where a part may end (after a member); a part ends there
/// once it holds k_part_bytes. Without a sink each part is kept at its size and take() hands them
/// over; with one (CheckpointWriter::sink) each part is handed to it as it ends and only the
/// buffer is kept, reused by the next part, so that the parts made so far are not held either.
/// One writer of a whole section doubles its buffer as it grows (at 500 scenes 18 MB and 36 MB
/// at once, beside the fold they came from).
class SectionParts {
 public:
  using Sink = std::function<void(std::string_view part)>;
  static constexpr size_t k_part_bytes = size_t{1} << 20;
  SectionParts() = default;
  explicit SectionParts(Sink sink) : m_sink(std::move(sink)) {}
  core::ByteWriter& out() { return m_out; }
  void cut();
  /// The parts, in order (their concatenation is what was written), the last one ended here;
  /// with a sink, the last part is handed to it and none are returned.
  std::vector<std::string> take();

 private:
  void end_part();
  Sink m_sink;
  core::ByteWriter m_out;
  std::vector<std::string> m_parts;
};

/// A checkpoint written as its sections are made (the format line, then the sections in
/// CheckpointSection order): each part written is appended to a spill file beside the checkpoint
/// (an AtomicFile never committed nor synced, deleted with the writer; a killed run's is a stale
/// temp file, removed when the project is next opened) and can be let go of at once. commit()
/// then writes the format line (each section's size and sha256) and the sections, read back from
/// the spill, through a temp file fsynced and renamed over the old checkpoint: the same bytes as
/// one written from memory. So the end of a run holds one fold at a time and none of the sections
/// already made (at 500 scenes 22 MB while the run's record is folded, 47 MB at the end).
/// Not thread-safe: one writer on one thread.
class CheckpointWriter {
 public:
  [[nodiscard]] static Result<CheckpointWriter> create(const std::filesystem::path& project_dir);

  /// Appends `part` to section `which`, after the parts written to it so far. Parts come in
  /// section order: `which` may not be before a section already written to. A failed write is
  /// kept, not returned: commit() returns it, and nothing is written after it.
  void write(CheckpointSection which, std::string_view part);
  /// A sink for SectionParts that writes each part to section `which`.
  SectionParts::Sink sink(CheckpointSection which);
  /// What section `which` starts with, before its written parts: the fold section's head and
  /// stale shots, known only once its Book has been written and let go of.
  void set_head(CheckpointSection which, std::string head);

  /// The first failed write, else the checkpoint published; returns the bytes of the checkpoint.
  [[nodiscard]] Result<size_t> commit();

 private:
  CheckpointWriter(std::filesystem::path project_dir, core::AtomicFile spill);
  std::filesystem::path m_project_dir;
  std::optional<core::AtomicFile> m_spill;
  std::array<std::string, k_checkpoint_sections> m_heads;
  std::array<uint64_t, k_checkpoint_sections> m_spilled{};  // bytes of each section in the spill
  size_t m_section = 0;                                     // the section being written
  std::optional<Error> m_failed;
};

/// Writes the head as the fold section starts with it (flat encoding).
void write_checkpoint_head(core::ByteWriter& out, const CheckpointHead& head);

/// Writes the run-record section of a checkpoint as of event `seq` (the last event of the ledger,
/// which the caller holds read-write) to `out`: the engine's own fold (RecordParts::all) in the
/// flat encoding (RecordFold::save(ByteWriter&)). From `previous` (the checkpoint being replaced,
/// when usable) and the events after it, else from every event.
/// When every event after `previous` is one the fold ignores (a run with nothing to do: its
/// run.started and run.finished), the previous section, checked against its sha256, is the new
/// one, byte for byte. Holds one fold at a time, and lets go of each of its members as it is
/// written: the section comes in parts (of about 1 MB), each written as it is made.
[[nodiscard]] Result<void> write_run_record_section(const ledger::Ledger& ledger, const UsableCheckpoint* previous,
                                                    int64_t seq, CheckpointWriter& out);

}  // namespace avps::engine
