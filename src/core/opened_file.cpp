#include "avps/core/opened_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <utility>
#include <vector>

#include "avps/core/hash.hpp"

namespace avps::core {

Result<OpenedFile> OpenedFile::open(const std::filesystem::path& path) {
  OpenedFile file;
  file.m_path = path;
  file.m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.m_fd < 0) {
    const int err = errno;
    return make_error(err == ENOENT ? ErrorCode::not_found : ErrorCode::io_error,
                      "cannot open " + path.string() + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(file.m_fd, &st) != 0) {
    return make_error(ErrorCode::io_error, "cannot stat " + path.string() + ": " + std::strerror(errno));
  }
  file.m_size = static_cast<uint64_t>(st.st_size);
  return file;
}

OpenedFile::OpenedFile(OpenedFile&& other) noexcept
    : m_path(std::move(other.m_path)), m_fd(std::exchange(other.m_fd, -1)), m_size(other.m_size) {}

OpenedFile::~OpenedFile() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

Result<std::string> OpenedFile::read(uint64_t offset, size_t length) const {
  std::string out(length, '\0');
  AVPS_TRY_ASSIGN(size_t filled, read_into(offset, out));
  out.resize(filled);
  return out;
}

Result<size_t> OpenedFile::read_into(uint64_t offset, std::span<char> buffer) const {
  size_t filled = 0;
  while (filled < buffer.size()) {
    const ssize_t n =
        ::pread(m_fd, buffer.data() + filled, buffer.size() - filled, static_cast<off_t>(offset + filled));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return make_error(ErrorCode::io_error, "cannot read " + m_path.string() + ": " + std::strerror(errno));
    }
    if (n == 0) {
      break;
    }
    filled += static_cast<size_t>(n);
  }
  return filled;
}

Result<OpenedFile::Digest> OpenedFile::sha256(uint64_t offset, size_t length) const {
  // One buffer reused: reading a range whole into a new string costs a page fault per 4 KiB of
  // it, more than the hashing (47 MB at a 500-scene checkpoint).
  constexpr size_t k_chunk = size_t{1} << 20;
  std::vector<char> buffer(std::min(length, k_chunk));
  Sha256 digest;
  Digest out;
  while (out.length < length) {
    const size_t want = std::min(length - out.length, buffer.size());
    AVPS_TRY_ASSIGN(size_t got, read_into(offset + out.length, std::span<char>(buffer.data(), want)));
    digest.update(std::string_view(buffer.data(), got));
    out.length += got;
    if (got < want) {
      break;
    }
  }
  out.sha256 = digest.hex();
  return out;
}

}  // namespace avps::core
