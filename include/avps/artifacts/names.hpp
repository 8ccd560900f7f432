#pragma once
// Artifact names, ids and the entity-id normalizer: the only code that turns text (a display
// name, a model's output, a file name found on disk) into something that becomes a path.
//
// Grammar (docs/formats/artifacts.md):
//   name     := stem "_v" version "." ext
//   stem     := PREFIX                      (BEATS, SCENES, WORLD_STATE, REGEN_RULES, ...)
//             | PREFIX "_" TARGET           (PSYCH_S01, GENPACK_S01_SH02, REDTEAM_PROJECT, ...)
//             | CLASS "_" ENTITY "_LOCK"    (CHAR_ALEX_LOCK, SET_WAREHOUSE_LOCK, STYLE_PROJECT_LOCK)
//   version  := 3 digits 001..999 | 4+ digits without a leading zero (1000, 1001, ...)
//   scene id := "S" 2+ digits ("S01" .. "S99", "S100")      shot id := scene id "_SH" 2+ digits
//   entity   := UPPER_SNAKE, [A-Z0-9] words joined by single "_", at most 64 characters
// Names carrying a banned suffix (_final, _new, _latest, _updated, any case) are refused.
//
// Guarantee: format(parse(s)) == s for every accepted s, and every accepted name is a single
// path component (no separators, no "..", no control characters).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"

namespace avps::artifacts {

/// What the part after the prefix identifies.
enum class TargetKind {
  none,      ///< project-wide singleton: BEATS_v001.md
  scene,     ///< a scene id: PSYCH_S01_v001.md
  shot,      ///< a shot id: GENPACK_S01_SH02_v001.txt
  target,    ///< a scene id, ACT_<n>, E<nn>, PROJECT or a run id: REDTEAM_PROJECT_v001.md
  entity,    ///< a lock's entity: CHAR_<ENTITY>_LOCK_v001.txt
};

/// One artifact kind of the framework. The table of kinds is fixed in code (kinds()).
struct KindInfo {
  std::string_view kind;       ///< canonical kind name, e.g. "CHAR_LOCK", "QC_BATCH"
  std::string_view prefix;     ///< the name's leading token(s), e.g. "CHAR", "QC_BATCH"
  TargetKind target;
  std::string_view extension;  ///< "md", "csv", "txt", "json", "png"
  std::string_view folder;     ///< layer folder in the project: "narrative", "continuity", ...
};

/// All artifact kinds, in a fixed order.
const std::vector<KindInfo>& kinds();
/// The kind named `kind` ("CHAR_LOCK"), or nullptr.
const KindInfo* find_kind(std::string_view kind);

struct ArtifactName {
  std::string kind;    ///< a KindInfo::kind
  std::string target;  ///< scene / shot / target / entity id; empty for TargetKind::none
  int version = 1;     ///< 1 .. ; formats as v001 .. v999, v1000 ..

  /// "CHAR_ALEX_LOCK_v001.txt"
  std::string filename() const;
  /// "CHAR_ALEX_LOCK": the name without version and extension; versions of one artifact share it.
  std::string stem() const;
  /// "continuity/CHAR_ALEX_LOCK_v001.txt", relative to the project folder.
  std::string relative_path() const;
  ArtifactName with_version(int v) const;

  bool operator==(const ArtifactName&) const = default;
};

/// Parses a file name (no folder). Errors say which rule the name breaks.
[[nodiscard]] Result<ArtifactName> parse_artifact_name(std::string_view filename);
/// Builds a name from parts, validating each (kind known, target well-formed, version >= 1).
[[nodiscard]] Result<ArtifactName> make_artifact_name(std::string_view kind, std::string_view target, int version);

/// True if `filename` looks like an attempt at an artifact name (an upper-case stem followed by
/// "_v" and digits, or a banned suffix), whether or not it is valid. Used by the integrity gate
/// to find hand-made files.
bool looks_like_artifact_name(std::string_view filename);

/// "v001", "v999", "v1000".
std::string format_version(int version);
/// Parses "v001"-style versions; refuses "v1", "v0000", "v01000".
[[nodiscard]] Result<int> parse_version(std::string_view text);

[[nodiscard]] Result<std::string> format_scene_id(int number);            ///< 1 -> "S01"
[[nodiscard]] Result<std::string> format_shot_id(std::string_view scene, int number);  ///< "S01_SH02"
bool is_scene_id(std::string_view s);
bool is_shot_id(std::string_view s);
/// ACT_1, E01, PROJECT, a scene id, or a run id RUN_<digits>.
bool is_target_id(std::string_view s);
bool is_entity_id(std::string_view s);

/// Turns a display name into an entity id: "Alex Ortega" -> "ALEX_ORTEGA",
/// "the old warehouse (north)" -> "THE_OLD_WAREHOUSE_NORTH". Letters and digits (ASCII) are
/// upper-cased; every other run of characters becomes one "_"; leading and trailing "_" are
/// dropped. Refused, with a message naming the reason: control characters, path separators
/// ('/' or '\\'), "..", an empty result, a result over 64 characters, a banned suffix.
[[nodiscard]] Result<std::string> normalize_entity_id(std::string_view display_name);

}  // namespace avps::artifacts
