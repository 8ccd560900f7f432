#pragma once
// The JSON Schema files one registry sees, by file name: a project's schemas/ over the shipped
// schemas/ (a project file of the same name replaces the shipped one).
//
// Each file is compiled as core::JsonSchema::load compiles it, so its "$ref"s to other files
// ("common.schema.json#/definitions/x") resolve in its own folder, and a project's, for a file its
// folder does not have, in the shipped folder (project::schema_dirs). field() follows the same rule,
// so what it says about a schema holds for the schema the validator uses.

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "avps/core/json_schema.hpp"
#include "avps/skills/skill_def.hpp"

namespace avps::skills {

class SchemaSet {
 public:
  struct Entry {
    SourceFile source;
    nlohmann::json document;                   ///< null when the file could not be read or parsed
    std::optional<core::JsonSchema> compiled;  ///< empty when it did not load or compile
    std::string error;                         ///< why, when `compiled` is empty
  };

  /// Reads and compiles every *.schema.json of `shipped_dir` and, if given, of `project_dir`
  /// (either may be missing). A broken file is kept with its error; it is a problem only for
  /// whoever names it.
  static SchemaSet load(const std::filesystem::path& shipped_dir, const std::filesystem::path* project_dir,
                        const std::string& project_label);

  /// The file a name resolves to: the project's if it has one, else the shipped one; nullptr if
  /// neither has it.
  const Entry* find(const std::string& file) const;

  /// The subschema that governs `pointer` (RFC 6901) in the instances `file` validates, or nullptr
  /// when the schema defines no such field. Follows "$ref"s, "properties" (also inside allOf / anyOf
  /// / oneOf branches), and for a token "*" (every member) "items", "additionalProperties" or a
  /// single "patternProperties". A named token is found only through "properties": a rule must
  /// name a field the schema spells out, not one that an open object would merely tolerate.
  const nlohmann::json* field(const std::string& file, const std::string& pointer) const;

  /// The schema `file` resolves to as one document: a shipped file as written; a project's with
  /// every reference to another file ("common.schema.json#/definitions/text") replaced by what it
  /// points to, so a model (and the sim) that sees it needs no other file. Fails (not_found /
  /// invalid_argument) when the file or a reference cannot be resolved, or references nest
  /// deeper than 32 (a cycle).
  [[nodiscard]] Result<nlohmann::json> request_schema(const std::string& file) const;

  /// The project's own files (not the shipped ones), by file name.
  const std::map<std::string, Entry>& project_entries() const { return m_project; }

 private:
  const Entry* find_in(const std::string& file, Origin origin) const;
  std::map<std::string, Entry> m_shipped;
  std::map<std::string, Entry> m_project;
};

/// The JSON Schema a model call of `skill` must answer with, read from `schemas` (the project's
/// over the shipped, SchemaSet::request_schema): the schema of its one model output, or for several
/// outputs {"KIND": schema, ...}. Shipped schemas give the same document as the data-folder form
/// (skill_def.hpp), so recorded requests keep their hashes.
[[nodiscard]] Result<nlohmann::json> output_schema(const SkillDef& skill, const SchemaSet& schemas);

}  // namespace avps::skills
