#pragma once
// Running helper programs (ffmpeg, ffprobe), many at once, and a scratch folder for their files.
// Programs are found on PATH and started with posix_spawnp, never through a shell, so no argument
// is ever interpreted; their stderr goes to /dev/null.
//
// Threading: every function may be called from any thread.

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "avps/core/result.hpp"

namespace avps::core {

/// Whether `program` is an executable file in a folder of PATH (looked up on every call).
bool on_path(const std::string& program);

/// Runs args[0] with args and waits. io_error naming `what` when it cannot start or does not exit
/// with status 0. With `capture`, its stdout is returned (else discarded).
[[nodiscard]] Result<std::string> run_program(const std::vector<std::string>& args, const std::string& what,
                                              bool capture = false);

/// Calls work(0) ... work(count - 1), each once, on up to `threads` threads (at least one), and
/// returns when every call has returned. Calls run in any order, several at once: `work` must be
/// safe for that. For many helper programs at once (frames, segments), not for avps' own calls.
/// (core::for_each_index, one item at a time.)
void run_parallel(size_t count, int threads, const std::function<void(size_t)>& work);

/// A fresh folder under the system's temp folder, removed with everything in it on destruction.
class ScratchDir {
 public:
  [[nodiscard]] static Result<ScratchDir> make(const std::string& prefix);
  ScratchDir(ScratchDir&& other) noexcept : m_path(std::move(other.m_path)) { other.m_path.clear(); }
  ScratchDir& operator=(ScratchDir&&) = delete;
  ScratchDir(const ScratchDir&) = delete;
  ~ScratchDir();
  const std::filesystem::path& path() const { return m_path; }

 private:
  explicit ScratchDir(std::filesystem::path path) : m_path(std::move(path)) {}
  std::filesystem::path m_path;
};

}  // namespace avps::core
