#pragma once
// The GateContext of a real project: configuration from the merged avps.json, artifacts from the
// ledger's index and the object store (hash-verified on read).

#include "avps/gates/gate.hpp"
#include "avps/project/project.hpp"

namespace avps::gates {

class ProjectGateContext : public GateContext {
 public:
  explicit ProjectGateContext(project::Project& project) : m_project(project) {}

  const nlohmann::json& config() const override;
  Result<std::optional<nlohmann::json>> latest(std::string_view kind, std::string_view target) const override;
  Result<std::optional<Face>> latest_face(std::string_view kind, std::string_view target) const override;

 private:
  project::Project& m_project;
};

}  // namespace avps::gates
