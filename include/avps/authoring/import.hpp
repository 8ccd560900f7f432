#pragma once
// Human authorship: a person edits an artifact's face and avps records it as the next version
// (`avps artifact import|edit`). The face goes through the same discipline as model output:
// parse → schema → the producing skill's gate → recorded, marked human-authored, with the
// person's reason. Anything that fails is refused and nothing is recorded: the ledger and the
// project tree stay byte-identical.

#include <string>

#include "avps/artifacts/names.hpp"
#include "avps/gates/gate.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"

namespace avps::authoring {

/// A face that passed every check, ready to be recorded.
struct PreparedImport {
  artifacts::ArtifactName name;  ///< the next version of kind/target
  nlohmann::json content;        ///< canonical JSON, gate computed by avps
  std::string face;              ///< the canonical rendering of `content`
  gates::GateResult gate;        ///< PASS, WARN or FIX
  std::string previous;          ///< the version it follows ("" for a first version)
};

/// Checks `face` (text in the face format of `kind`) as the next version of kind/target, without
/// writing anything. Refused with schema_violation (exit 1): a face that does not parse (line and
/// field named), that breaks the kind's schema (pointer named), or whose gate verdict is FAIL or
/// STOP (reasons listed). `source` names the face in messages.
[[nodiscard]] Result<PreparedImport> prepare_import(project::Project& project, const skills::Registry& registry,
                                                    const std::string& kind, const std::string& target,
                                                    const std::string& face, const std::string& source);

/// Records a prepared face, marked human-authored with `reason` (which must not be empty).
/// `project` must be open read-write with a run begun.
[[nodiscard]] Result<ledger::ArtifactRecord> record_import(project::Project& project, const PreparedImport& prepared,
                                                           const std::string& reason, const std::string& source);

/// The skill whose outputs include `kind`, or nullptr.
const skills::SkillDef* producer_of(const skills::Registry& registry, std::string_view kind);

}  // namespace avps::authoring
