#include "avps/core/opened_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

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
  size_t filled = 0;
  while (filled < length) {
    const ssize_t n = ::pread(m_fd, out.data() + filled, length - filled, static_cast<off_t>(offset + filled));
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
  out.resize(filled);
  return out;
}

}  // namespace avps::core
