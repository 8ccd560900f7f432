#include "avps/gates/checked_objects.hpp"

#include <utility>

#include "avps/artifacts/names.hpp"
#include "avps/project/project.hpp"

namespace avps::gates {

CheckedObjects::CheckedObjects(std::filesystem::path project_dir) : m_project_dir(std::move(project_dir)) {}

const Result<artifacts::FaceCodec>& CheckedObjects::codec(const std::string& kind) {
  auto found = m_codecs.find(kind);
  if (found == m_codecs.end()) {
    found = m_codecs.emplace(kind, artifacts::FaceCodec::load(project::schema_dirs(m_project_dir), kind)).first;
  }
  return found->second;
}

void CheckedObjects::note(const std::string& sha256, const std::string& kind, const nlohmann::json& content) {
  Noted& noted = m_noted[sha256];
  if (noted.issues_by_kind.count(kind)) {
    return;
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
  noted.issues_by_kind.emplace(kind, loaded->schema().validate(content));
}

const CheckedObjects::Noted* CheckedObjects::find(const std::string& sha256) const {
  auto found = m_noted.find(sha256);
  return found == m_noted.end() ? nullptr : &found->second;
}

}  // namespace avps::gates
