#pragma once
// File-system primitives with the durability avps promises (DESIGN §5).
//
// Every write of evidence goes through AtomicFile: unique temp file in the destination folder →
// write → fsync(file) → publish → fsync(folder). "Publish" is rename() when overwriting is
// allowed, and link() + unlink(temp) when it is not, so a write-once file can never replace an
// existing one, even when two writers race. A reader therefore sees either no file or the whole
// file, never a prefix.

#include <filesystem>
#include <string>
#include <string_view>

#include "avps/core/result.hpp"

namespace avps::core {

enum class Overwrite { no, yes };
/// cached: neither the bytes nor the publish synced. durable: the bytes fsynced before the file is
/// published, its folder fsynced after (the file survives a power cut once commit() returns).
/// durable_content: the bytes fsynced before the publish, the folder left to the caller, who
/// syncs it once (sync_directory) for several files of one folder before anything vouches for
/// them (a group of renders).
enum class Durability { cached, durable, durable_content };

/// A file being written. Nothing is visible under `path` until commit() succeeds; an
/// uncommitted AtomicFile deletes its temp file when destroyed.
class AtomicFile {
 public:
  static Result<AtomicFile> create(const std::filesystem::path& path, Durability durability);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  [[nodiscard]] Result<void> write(std::string_view data);
  /// Publishes the file. With Overwrite::no, an existing file at `path` is an already_exists
  /// error and is left untouched.
  [[nodiscard]] Result<void> commit(Overwrite overwrite);
  /// Where the bytes are until commit(): a writer may read back what it wrote (a spill file that
  /// is never committed, and goes with its AtomicFile).
  const std::filesystem::path& temp_path() const { return m_temp; }

 private:
  AtomicFile(std::filesystem::path path, std::filesystem::path temp, int fd, Durability d);
  std::filesystem::path m_path;
  std::filesystem::path m_temp;
  int m_fd = -1;
  Durability m_durability;
  bool m_committed = false;
};

/// True for the name of an AtomicFile's temp file (".<name>.<pid><random>.tmp"), which a killed
/// writer may leave behind; such a file is never an artifact.
bool is_atomic_temp_name(std::string_view filename);

/// Writes `data` to `path` through an AtomicFile.
[[nodiscard]] Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data,
                                             Overwrite overwrite, Durability durability);

/// Reads a whole file.
[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& path);
/// The last max_bytes of a file (the whole file when it is smaller), read without the rest.
[[nodiscard]] Result<std::string> read_file_tail(const std::filesystem::path& path, size_t max_bytes);
/// read_file for what a person wrote (a brief, a face, a prompt): the bytes must be UTF-8, else
/// invalid_argument naming the file, the byte offset and line of the first bad byte, and the fix.
[[nodiscard]] Result<std::string> read_text_file(const std::filesystem::path& path);

/// Appends `data` to `path` (creating it) and fsyncs it. Used only for the CSV face of the
/// run log, which is rebuilt from the ledger if an append is torn.
[[nodiscard]] Result<void> append_file_durable(const std::filesystem::path& path, std::string_view data);

/// fsync of a folder, so that a rename or link inside it survives a power loss.
[[nodiscard]] Result<void> sync_directory(const std::filesystem::path& dir);

/// Creates a folder and its parents, syncing each new folder's parent.
[[nodiscard]] Result<void> create_directories_durable(const std::filesystem::path& dir);

/// Crash injection for tests: when the process was told to crash at `label` (see
/// set_crash_point / the AVPS_CRASH_AT variable, "label" or "label:N" for the N-th time it is
/// reached), the process dies here with SIGKILL, exactly like a power cut without the lost
/// page cache. A no-op otherwise.
void crash_point(std::string_view label);
void set_crash_point(std::string_view label_and_count);

/// Fault injection for tests, beside the crash points: the operations a commit is made of, each
/// counted per process, and one of them made to fail with EIO so that the caller's real error
/// path runs. Counted operations:
/// - write: every write_all of this file (AtomicFile::write, append_file_durable's halves) and,
///   in the ledger's SQLite connections, every xWrite and xTruncate (ledger.cpp's shim VFS);
/// - fsync: every fsync of a file or folder here (so sync_directory too) and every SQLite xSync;
/// - rename: every publish of AtomicFile::commit (rename, or link for Overwrite::no) and the
///   rename that publishes a new ledger.
/// The plan (set_fault_point, or the AVPS_FAULT_AT variable, read once, as AVPS_CRASH_AT is) is
/// "write:K", "fsync:K" or "rename:K": the K-th operation of that kind since the plan was set
/// fails (returned as an io_error naming the file, or SQLITE_IOERR inside SQLite), every other
/// one runs; "count" only counts. Setting a plan resets the counts; "" removes it. Without a
/// plan nothing is counted and the ledger opens SQLite's own VFS: the hooks cost one load.
enum class FaultOp { write, fsync, rename };
struct FaultCounts {
  long write = 0;
  long fsync = 0;
  long rename = 0;
};
void set_fault_point(std::string_view spec);
/// Whether a plan (a fault or "count") is set.
bool fault_plan_active();
/// Counts one operation of kind `op` and says whether it is the one to fail. A no-op returning
/// false without a plan.
bool inject_fault(FaultOp op);
/// The operations counted since the plan was set.
FaultCounts fault_counts();

}  // namespace avps::core
