#include "avps/gates/checked_objects.hpp"

#include <utility>

#include "avps/artifacts/names.hpp"
#include "avps/project/project.hpp"

namespace avps::gates {

CheckedObjects::CheckedObjects(std::filesystem::path project_dir) : m_project_dir(std::move(project_dir)) {}

const Result<artifacts::FaceCodec>& CheckedObjects::codec(const std::string& kind) {
  std::lock_guard<std::mutex> lock(m_mutex);
  auto found = m_codecs.find(kind);
  if (found == m_codecs.end()) {
    found = m_codecs.emplace(kind, artifacts::FaceCodec::load(project::schema_dirs(m_project_dir), kind)).first;
  }
  return found->second;  // a std::map's element stays where it is while others are added
}

void CheckedObjects::note(const std::string& sha256, const std::string& kind, const nlohmann::json& content) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_noted[sha256].issues_by_kind.count(kind)) {  // (noted as read and intact from here on)
      return;
    }
  }
  // Images have no schema (the integrity check validates no image kind).
  const artifacts::KindInfo* info = artifacts::find_kind(kind);
  if (info != nullptr && info->extension == "png") {
    return;
  }
  const Result<artifacts::FaceCodec>& loaded = codec(kind);
  if (!loaded) {
    return;  // the integrity check reports the missing schema itself; it needs no content for it
  }
  // Validated outside the lock (the costly part; JsonSchema::validate is const and thread-safe).
  // Two threads that note the same object at once both validate it, to the same issues.
  std::vector<core::SchemaIssue> issues = loaded->schema().validate(content);
  std::lock_guard<std::mutex> lock(m_mutex);
  m_noted[sha256].issues_by_kind.emplace(kind, std::move(issues));
}

const CheckedObjects::Noted* CheckedObjects::find(const std::string& sha256) const {
  std::lock_guard<std::mutex> lock(m_mutex);
  auto found = m_noted.find(sha256);
  return found == m_noted.end() ? nullptr : &found->second;
}

}  // namespace avps::gates
