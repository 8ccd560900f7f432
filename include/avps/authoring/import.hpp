#pragma once
// Human authorship: a person edits an artifact's face and avps records it as the next version
// (`avps artifact import|edit`). The face goes through the same discipline as model output:
// parse → schema → the producing skill's gate → recorded, marked human-authored, with the
// person's reason. Anything that fails is refused and nothing is recorded: the ledger and the
// project tree stay byte-identical.
//
// What a face claims about a verdict is recomputed, and the import says where it differed (the
// `Gate:` line of an md/txt face, the verdict column of a QC_BATCH). Faces one skill writes in one
// step (story-architect's BEATS and SCENES) may be imported together and are judged together; one
// imported alone is judged with the recorded latest versions of the others its gate reads. A
// STATE_DIFF brings the next WORLD_STATE with it: the world before its scene with the diff applied
// (builtins::apply_state_diff), recorded beside it as one step, so that `avps gate`'s
// world_state.chain rule can check it. A kind written only by code (WORLD_STATE) is refused.

#include <string>
#include <vector>

#include "avps/artifacts/names.hpp"
#include "avps/gates/gate.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"

namespace avps::authoring {

/// A face a person hands in: the artifact its file name designates, its text, and where it came
/// from (for messages and the record).
struct FaceFile {
  artifacts::ArtifactName name;  ///< kind and target count; the version is ignored
  std::string text;
  std::string source;
};

/// One artifact an import would record.
struct PreparedArtifact {
  artifacts::ArtifactName name;  ///< the next version of kind/target
  nlohmann::json content;        ///< canonical JSON, gate computed by avps
  std::string face;              ///< the canonical rendering of `content`
  std::string previous;          ///< the version it follows ("" for a first version)
  std::string previous_path;     ///< its path in the project
  std::string source;            ///< the face file it came from ("" for what avps derived)
  /// Equal to the latest version (same canonical rendering and JSON): not a new version, not recorded.
  bool unchanged = false;
  /// Written by avps from the imported faces (the WORLD_STATE a STATE_DIFF brings), author "avps".
  bool derived = false;
  nlohmann::json details = nlohmann::json::object();  ///< facts recorded with it besides the reason
};

/// Faces that passed every check, ready to be recorded: one step of the judging skill.
struct PreparedImport {
  std::vector<PreparedArtifact> artifacts;  ///< in recording order
  gates::GateResult gate;                   ///< PASS, WARN or FIX (FAIL for grades of a collected kind)
  std::string judge;                        ///< the skill whose gate judged them
  std::vector<std::string> judged_with;     ///< recorded artifacts the gate read beside the faces
  std::vector<std::string> recomputed;      ///< each claim of a face that avps replaced, and by what
  std::vector<std::string> notes;           ///< what a person should know about what this changes

  /// Whether anything would be recorded.
  bool changes_anything() const;
};

/// Checks `faces` (texts in their kinds' face formats; several only when one skill writes them in
/// one step) as the next versions of their artifacts, without writing anything. Refused with
/// schema_violation (exit 1): a face that does not parse (line and field named), breaks its kind's
/// schema (pointer named) or whose gate verdict is FAIL or STOP (reasons listed; a FAIL of a kind
/// the skill collects per wave, QC_BATCH, is the shots' grade and is recorded); a STATE_DIFF that
/// does not apply to the world before its scene, or whose scene's world is not recorded yet; a
/// gate that reads a kind neither given nor recorded. Refused with invalid_argument (exit 2): faces
/// of different skills, the same artifact twice, a kind only code writes (WORLD_STATE).
[[nodiscard]] Result<PreparedImport> prepare_import(project::Project& project, const skills::Registry& registry,
                                                    const std::vector<FaceFile>& faces);

/// Records a prepared import, the human faces marked human-authored with `reason` (which must not
/// be empty), each with a RUN_LOG row. `project` must be open read-write with a run begun.
/// Returns the records written, in order.
[[nodiscard]] Result<std::vector<ledger::ArtifactRecord>> record_import(project::Project& project,
                                                                        const PreparedImport& prepared,
                                                                        const std::string& reason);

/// The skill whose outputs include `kind` as a model output (not a post step's), or nullptr.
const skills::SkillDef* producer_of(const skills::Registry& registry, std::string_view kind);

}  // namespace avps::authoring
