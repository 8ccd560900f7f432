#pragma once
// A fresh folder per test, removed afterwards (ccache's TestContext).

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace avps::testing {

class TempDir {
 public:
  TempDir() : TempDir(std::filesystem::temp_directory_path()) {}
  /// A fresh folder under `root` (e.g. tmpfs, for tests of error paths that need no real disk).
  explicit TempDir(const std::filesystem::path& root) {
    std::string pattern = (root / "avps-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::abort();
    }
    m_path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

}  // namespace avps::testing
