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
// Names carrying a banned suffix (_final, _new, _latest, _updated, any case) are refused: the
// version says which is newest. A suffix is the last word of a stem (before "_LOCK" for locks, and
// before the version) or any word after the version; words are runs of ASCII letters and digits.
// So BEATS_final_v001.md, BEATS_v001_final.md and CHAR_ALEX_NEW_LOCK_v001.txt are refused, while
// CHAR_NEWTON_LOCK and SET_NEW_YORK_LOCK are fine (a word is not a suffix).
// Numbers in ids and versions have at most 9 digits (they always fit an int); RUN_ ids up to 20.
//
// Guarantee: format(parse(s)) == s for every accepted s, and every accepted name is a single
// path component (no separators, no "..", no control characters).

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"

namespace avps::artifacts {

/// Longest entity id (the ENTITY of CHAR_<ENTITY>_LOCK) and highest version number.
inline constexpr std::size_t k_max_entity_id_length = 64;
inline constexpr int k_max_version = 999'999'999;

/// What the part after the prefix identifies.
enum class TargetKind {
  none,      ///< project-wide singleton: BEATS_v001.md
  scene,     ///< a scene id: PSYCH_S01_v001.md
  shot,      ///< a shot id: GENPACK_S01_SH02_v001.txt
  target,    ///< a scene id, ACT_<n>, E<nn>, PROJECT or a run id: REDTEAM_PROJECT_v001.md
  entity,    ///< a lock's entity: CHAR_<ENTITY>_LOCK_v001.txt
};

/// One artifact kind: a row of the shipped table (kinds()) or a kind a project declares in its
/// schema (declare_kinds()).
struct KindInfo {
  std::string_view kind;       ///< canonical kind name, e.g. "CHAR_LOCK", "QC_BATCH"
  std::string_view prefix;     ///< the name's leading token(s), e.g. "CHAR", "QC_BATCH"
  TargetKind target;
  std::string_view extension;  ///< "md", "csv", "txt", "json"; "png", "html", "mp4" (made by the producer)
  std::string_view folder;     ///< layer folder in the project: "narrative", "continuity", ...
};

/// The kinds avps ships, in a fixed order.
const std::vector<KindInfo>& kinds();
/// The kind named `kind` ("CHAR_LOCK"): a shipped one, else one declared by declare_kinds(); or
/// nullptr. The pointer stays valid for the life of the process.
const KindInfo* find_kind(std::string_view kind);

/// A kind a project declares in the schema of its artifact (schemas/<kind lower case>.schema.json,
/// block "x-avps-artifact"; docs/formats/artifacts.md "Kinds a project declares"):
///   "x-avps-artifact": {"kind": "PROP_LIST", "target": "scene", "folder": "production"}
/// The extension is the schema's face format (x-avps-face.format: md, txt, csv or json); the
/// prefix is the kind, or for target "entity" the kind without its "_LOCK" (COSTUME_LOCK ->
/// COSTUME_<ENTITY>_LOCK_v001.txt).
struct DeclaredKind {
  std::string kind;
  std::string prefix;
  TargetKind target = TargetKind::none;
  std::string extension;
  std::string folder;
  std::string source;  ///< the schema file that declares it, for messages
};

/// The declaration in a schema document, nullopt when it has none (the schema is not an artifact
/// kind of its own, or is a shipped kind's). `file` is the schema's file name (prop_list.schema.json),
/// which must be the kind's lower case name. Errors (invalid_argument) say what is wrong and how
/// to write it instead.
[[nodiscard]] Result<std::optional<DeclaredKind>> read_kind_declaration(const nlohmann::json& schema,
                                                                        std::string_view file);
/// Every problem of `declared` as one set (each message names its source and the fix): a kind
/// or prefix the shipped table has, a prefix that begins with another's prefix and "_" (or that
/// another begins with) so names would be ambiguous, a kind declared twice, a banned last word.
/// Empty when the set can be declared.
std::vector<std::string> kind_declaration_problems(const std::vector<DeclaredKind>& declared);
/// Makes `declared` the kinds known beside the shipped ones for the rest of the process (or until
/// the next call), so that names of those kinds parse and format exactly as shipped ones do.
/// Refuses (invalid_argument, every problem listed) a set kind_declaration_problems() refuses,
/// and then changes nothing. Thread-safe; meant to be called when a project is opened, before its
/// names are read.
[[nodiscard]] Result<void> declare_kinds(const std::vector<DeclaredKind>& declared);
/// The kinds declare_kinds() made known, in the order given.
std::vector<KindInfo> declared_kinds();

struct ArtifactName {
  std::string kind;    ///< a KindInfo::kind
  std::string target;  ///< scene / shot / target / entity id; empty for TargetKind::none
  int version = 1;     ///< 1 .. ; formats as v001 .. v999, v1000 ..

  /// "CHAR_ALEX_LOCK_v001.txt". `kind` must be a known kind and `version` in 1..k_max_version
  /// (make_artifact_name and parse_artifact_name guarantee both); otherwise this is a bug in the
  /// caller and filename(), stem() and relative_path() throw std::logic_error.
  std::string filename() const;
  /// "CHAR_ALEX_LOCK": the name without version and extension; versions of one artifact share it.
  std::string stem() const;
  /// "continuity/CHAR_ALEX_LOCK_v001.txt", relative to the project folder.
  std::string relative_path() const;
  ArtifactName with_version(int v) const;

  bool operator==(const ArtifactName&) const = default;
};

/// Parses a file name (no folder). Accepts only the canonical spelling (upper-case stem, lower-case
/// "v", the kind's extension), so format(parse(s)) == s. Errors are invalid_argument, quote the
/// name (control characters escaped, long input cut) and say which rule the name breaks.
[[nodiscard]] Result<ArtifactName> parse_artifact_name(std::string_view filename);
/// Builds a name from parts, validating each (kind known, target well-formed, version >= 1).
[[nodiscard]] Result<ArtifactName> make_artifact_name(std::string_view kind, std::string_view target, int version);

/// True if `filename` looks like an attempt at an artifact name, whether or not it is valid. Used
/// by the integrity gate to find hand-made files. Precisely: it does not start with "." (our temp
/// files do), it has a "." followed by something, and the part before the first "." is made of
/// ASCII letters, digits and "_" and either ends in "_v" + digits (v or V) or carries a banned
/// suffix. True: BEATS_v001.md, beats_v001.md, CHAR_X_LOCK_v2.txt, BEATS_final.md,
/// BEATS_v001.md.bak. False: brief.md, avps.json, README.md, .BEATS_v001.md.abc.tmp.
bool looks_like_artifact_name(std::string_view filename);

/// "v001", "v999", "v1000". Throws std::logic_error (a caller bug) outside 1..k_max_version.
std::string format_version(int version);
/// Parses "v001"-style versions; refuses "v1", "v01", "v000", "v0001", "v01000", "V001".
[[nodiscard]] Result<int> parse_version(std::string_view text);

[[nodiscard]] Result<std::string> format_scene_id(int number);            ///< 1 -> "S01"
[[nodiscard]] Result<std::string> format_shot_id(std::string_view scene, int number);  ///< "S01_SH02"
/// S01..S99, S100, ...: two digits at least, no padding beyond two (S001 and S00 are refused).
bool is_scene_id(std::string_view s);
/// <scene id>_SH<n>, n spelled by the scene-id rule: S01_SH01, S01_SH100; not S01_SH1, S01_SH001.
bool is_shot_id(std::string_view s);
/// A scene id, ACT_<n> (n >= 1, no leading zero), E<n> (by the scene-id rule: E01, E100), PROJECT,
/// or a run id RUN_<1..20 digits>.
bool is_target_id(std::string_view s);
/// UPPER_SNAKE ([A-Z0-9]+ joined by single "_"), at most k_max_entity_id_length characters, and
/// not ending in a banned word: exactly the ids normalize_entity_id can return.
bool is_entity_id(std::string_view s);

/// Turns a display name into an entity id: "Alex Ortega" -> "ALEX_ORTEGA",
/// "the old warehouse (north)" -> "THE_OLD_WAREHOUSE_NORTH". Letters and digits (ASCII) are
/// upper-cased; every other run of characters becomes one "_"; leading and trailing "_" are
/// dropped; bytes outside ASCII (accents, any UTF-8) count as separators, so "Maria-José" ->
/// "MARIA_JOS". Refused, with a message naming the reason and quoting the input: control
/// characters (< 0x20, 0x7f), path separators ('/' or '\\'), "..", an empty result, a result
/// over k_max_entity_id_length characters, a result ending in a banned word ("Alex New" is
/// refused, "New York" is fine; see the banned-suffix rule above). Success implies is_entity_id(result).
[[nodiscard]] Result<std::string> normalize_entity_id(std::string_view display_name);

}  // namespace avps::artifacts
