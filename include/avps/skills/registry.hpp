#pragma once
// The skill registry: every skill definition, its prompt, the stage graph and the schemas they
// name, loaded from the shipped data folder and, optionally, a project that overrides it.
//
// Layout (data_dir is avps::project::data_dir(); a project folder may hold the same folders):
//   schemas/skill.schema.json, schemas/stage_graph.schema.json   the rules for the two below
//   schemas/<kind>.schema.json                                  artifact schemas that outputs name
//   skills/<name>/skill.json + skills/<name>/prompt.md          one skill
//   policies/stage_graph.json                                   the pipeline
// A project's skills/<name>/skill.json or prompt.md replaces the shipped file of that skill (or
// adds a skill), its policies/stage_graph.json replaces the graph, and its schemas/<file> replaces
// the shipped schema of that name. skill.schema.json, stage_graph.schema.json and
// project.schema.json are always the shipped ones: they are what avps itself relies on.
//
// Guarantees: load() never fails because of a definition's content; a file that cannot be read or
// parsed, or breaks its schema, becomes a violation (and is left out of skills()), never a crash.
// Every SkillDef in skills() passed skill.schema.json; stage_graph() passed its schema.
// validate() returns every problem found, each naming its file and a stable rule id.

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "avps/artifacts/names.hpp"
#include "avps/core/result.hpp"
#include "avps/core/violation.hpp"
#include "avps/skills/schema_set.hpp"
#include "avps/skills/skill_def.hpp"
#include "avps/skills/stage_graph.hpp"

namespace avps::skills {

/// Rule ids of validate(), stable (scripts and --json output use them):
///   skill.load           skill.json unreadable or not JSON; a prompt.md without a skill.json
///   skill.schema         skill.json breaks skill.schema.json (one violation per problem)
///   skill.name           "name" differs from the folder name
///   skill.prompt         prompt.md missing or empty
///   skill.kind           an artifact kind neither avps ships nor a project schema declares
///   skill.into_genpack   into_genpack on an input of a skill that writes no GENPACK, or with feedback
///   schema.artifact      a project schema's x-avps-artifact block is broken, or its kind clashes
///                        with a shipped or another declared kind (names would be ambiguous)
///   skill.output_schema  an output's schema file is missing, unreadable or does not compile
///   skill.gate_output    a gate rule reads an output the skill does not write with a schema
///   skill.gate_field     a gate rule reads a field its output's schema does not define
///   skill.gate_value     a gate rule's values or type do not fit the field (enum, number, list)
///   skill.config_ref     a config reference names no setting of project.schema.json, or its
///                        default is not a value the setting accepts
///   skill.tier           escalation skips a step or allows more steps than it lists
///   skill.loop_policy    a model skill without on_fail; a revision via a skill that does not
///                        exist or does not write the revised kind
///   skill.post_step      an output written_by a post step the skill does not declare
///   skill.runs_when      a condition the stage graph does not define
///   skill.writer         an artifact kind written by more than one skill
///   graph.load           stage_graph.json unreadable or not JSON
///   graph.schema         stage_graph.json breaks stage_graph.schema.json
///   graph.unknown_skill  a step, on-demand entry, regen policy or trigger names no skill
///   graph.step_id        two steps share an id
///   graph.staging        a skill neither staged nor on demand, or both
///   graph.fan_out        a phase's fan-out does not fit the scope of a skill it runs
///   graph.condition      an unknown condition, or a field condition its artifact cannot hold
///   graph.dangling_input a required input that neither init nor an earlier step produces
///   graph.missing_edge   a required input with no edge saying where it comes from
///   graph.edge           an edge between unknown steps, backwards, or of a kind one end lacks
///   graph.cycle          edges within one context form a cycle
///   graph.trigger        a trigger declared twice, running a skill for a scope it cannot run
///                        for, or counting a violation rule the grader's QC_BATCH cannot hold
///   graph.config_ref     as skill.config_ref, in the regen policy
class Registry {
 public:
  /// Loads the shipped definitions from `data_dir` and, when `project_dir` is given, the project's
  /// overrides. Fails (not_found / configuration, exit 4) only when the shipped data itself is
  /// unusable (no skills/ folder, skill or stage-graph schema missing or broken) or the project
  /// folder does not exist.
  [[nodiscard]] static Result<Registry> load(const std::filesystem::path& data_dir,
                                             const std::filesystem::path* project_dir);

  /// The loaded skills by name (= folder name), each valid against skill.schema.json.
  const std::map<std::string, SkillDef>& skills() const { return m_skills; }
  /// The skill named `name`, or nullptr.
  const SkillDef* find(std::string_view name) const;
  /// Names of loaded skills close to `name` (small edit distance, or one contains the other), best
  /// first: the "did you mean" of an unknown name.
  std::vector<std::string> similar_names(std::string_view name) const;
  /// Folders holding a definition that could not be loaded (their problems are in validate()).
  const std::set<std::string>& broken() const { return m_broken; }

  /// The stage graph, or nullptr when it could not be loaded or breaks its schema.
  const StageGraph* stage_graph() const { return m_graph ? &*m_graph : nullptr; }
  /// Where the stage graph was read from (also when it failed to load).
  const SourceFile& stage_graph_source() const { return m_graph_source; }
  /// The schemas outputs may name: the project's over the shipped ones.
  const SchemaSet& schemas() const { return m_schemas; }
  /// The artifact kinds the project's schemas declare (their x-avps-artifact blocks), those that
  /// could be read; the broken ones are schema.artifact violations.
  const std::vector<artifacts::DeclaredKind>& declared_kinds() const { return m_declared; }
  /// Whether `kind` is an artifact kind: shipped, or declared by the project's schemas.
  bool knows_kind(std::string_view kind) const;

  /// Every problem of the loaded definitions, the graph and how they fit together, sorted by
  /// subject (the order of discovery within one file). Empty when all is well.
  std::vector<core::Violation> validate() const;

 private:
  void load_skills(const std::filesystem::path& data_dir, const std::filesystem::path* project_dir,
                   const core::JsonSchema& skill_schema);
  void load_graph(const std::filesystem::path& data_dir, const std::filesystem::path* project_dir,
                  const core::JsonSchema& graph_schema);
  void check_skill(const SkillDef& skill, std::vector<core::Violation>& out) const;
  void check_config_refs(const nlohmann::json& value, const std::string& subject, const std::string& rule,
                         std::vector<core::Violation>& out) const;
  void check_graph(const StageGraph& graph, std::vector<core::Violation>& out) const;
  void check_data_flow(const StageGraph& graph, std::vector<core::Violation>& out) const;

  std::filesystem::path m_data_dir;
  std::string m_project_label;  ///< the project folder as violations name it; empty without one
  std::map<std::string, SkillDef> m_skills;
  std::set<std::string> m_broken;
  std::optional<StageGraph> m_graph;
  SourceFile m_graph_source;
  SchemaSet m_schemas;
  nlohmann::json m_project_schema;  ///< shipped project.schema.json, for config references
  std::vector<core::Violation> m_load_violations;
  std::vector<artifacts::DeclaredKind> m_declared;
};

}  // namespace avps::skills
