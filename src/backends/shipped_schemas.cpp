#include "shipped_schemas.hpp"

#include <map>
#include <mutex>
#include <optional>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/project/project.hpp"

namespace avps::backends {
using nlohmann::json;

// No error channel: a file that cannot be read leaves its "$ref" unresolved, and whoever needed it
// (the provider's 400, the local validation, the sim's answer) names it.
const json* shipped_schema(const std::string& file) {
  static std::mutex s_mutex;
  static std::map<std::string, std::optional<json>> s_cache;
  if (file.empty() || file.find('/') != std::string::npos || file.find("..") != std::string::npos) {
    return nullptr;  // only plain file names of the schemas folder
  }
  std::lock_guard<std::mutex> lock(s_mutex);
  auto it = s_cache.find(file);
  if (it == s_cache.end()) {
    std::optional<json> loaded;
    Result<std::string> text = core::read_file(project::data_dir() / "schemas" / file);
    if (text) {
      Result<json> parsed = core::parse_json(*text, file);
      if (parsed) {
        loaded = std::move(parsed).value();
      }
    }
    it = s_cache.emplace(file, std::move(loaded)).first;
  }
  // Entries are never erased, so the pointer outlives the lock.
  return it->second ? &*it->second : nullptr;
}

}  // namespace avps::backends
