#include "avps/gates/project_context.hpp"

#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"

namespace avps::gates {

const nlohmann::json& ProjectGateContext::config() const {
  return m_project.config().document;
}

Result<std::optional<nlohmann::json>> ProjectGateContext::latest(std::string_view kind, std::string_view target) const {
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> record, m_project.store().latest(kind, target));
  if (!record) {
    return std::optional<nlohmann::json>{};
  }
  AVPS_TRY_ASSIGN(nlohmann::json content, m_project.store().load(*record));
  return std::optional<nlohmann::json>{std::move(content)};
}

Result<std::optional<GateContext::Face>> ProjectGateContext::latest_face(std::string_view kind,
                                                                         std::string_view target) const {
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> record, m_project.store().latest(kind, target));
  if (!record) {
    return std::optional<Face>{};
  }
  AVPS_TRY_ASSIGN(std::string text, core::read_file(m_project.dir() / record->path));
  if (core::sha256_hex(text) != record->face_sha256) {
    return make_error(ErrorCode::corruption, record->path + " changed since the ledger recorded it; run `avps gate`");
  }
  return std::optional<Face>{Face{record->name, std::move(text)}};
}

}  // namespace avps::gates
