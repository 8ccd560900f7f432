#pragma once
// A file opened once and read in parts.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "avps/core/result.hpp"

namespace avps::core {

/// A file opened once, with its length at opening, read by offset (pread). Every part comes from
/// the file as it was opened, even if a writer renames a new file over its name meanwhile: what a
/// reader took a snapshot beside stays what it reads (the fold checkpoint's sections, the run log
/// read only when verified). Reads do not move a shared offset, so const reads may run on several
/// threads at once.
class OpenedFile {
 public:
  /// not_found when there is no file at `path`, io_error for any other failure.
  static Result<OpenedFile> open(const std::filesystem::path& path);
  OpenedFile(OpenedFile&& other) noexcept;
  OpenedFile& operator=(OpenedFile&&) = delete;
  OpenedFile(const OpenedFile&) = delete;
  OpenedFile& operator=(const OpenedFile&) = delete;
  ~OpenedFile();

  /// The file's length when it was opened.
  uint64_t size() const { return m_size; }

  /// Up to `length` bytes from `offset`: fewer when the file ends sooner (cut short since it was
  /// opened, or asked past its end).
  [[nodiscard]] Result<std::string> read(uint64_t offset, size_t length) const;

  /// Reads into `buffer` from `offset`, as read() does; returns how many bytes it filled.
  [[nodiscard]] Result<size_t> read_into(uint64_t offset, std::span<char> buffer) const;

  /// The sha256 (hex) of up to `length` bytes from `offset` and how many there were, read through
  /// a buffer of its own (1 MiB): a large range checked without being held.
  struct Digest {
    std::string sha256;
    size_t length = 0;
  };
  [[nodiscard]] Result<Digest> sha256(uint64_t offset, size_t length) const;

 private:
  OpenedFile() = default;
  std::filesystem::path m_path;
  int m_fd = -1;
  uint64_t m_size = 0;
};

}  // namespace avps::core
