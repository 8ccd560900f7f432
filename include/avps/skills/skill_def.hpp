#pragma once
// One skill as data: the typed view of skills/<name>/skill.json (schemas/skill.schema.json) that
// the plan, the router, the budget governor and the gates read, plus where its files came from.
//
// A SkillDef is only ever built from a document that passed skill.schema.json (the Registry
// guarantees this), so every enum-valued string below holds one of the schema's values. Fields the
// engine interprets later (gate rules, loop policy) stay JSON: their meaning belongs to the gates
// and the engine, not to the registry.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"

namespace avps::skills {

/// Where a definition file comes from: the shipped data folder, or a project that overrides it.
enum class Origin { shipped, project };

/// "shipped" or "project".
std::string_view origin_name(Origin origin);

/// A file of the registry: its path, its origin, and how violations name it (`subject`):
/// relative to its root for shipped files ("skills/x/skill.json"), behind the project folder for
/// a project's ("my-film/skills/x/skill.json").
struct SourceFile {
  std::filesystem::path path;
  Origin origin = Origin::shipped;
  std::string subject;
};

enum class Executor {
  model,    ///< a model call routed by tier, prompted by prompt.md
  builtin,  ///< deterministic C++ named by SkillDef::builtin, zero model cost
};

/// Model tiers of an executor = model skill: the default, then the escalation ladder.
struct TierPolicy {
  std::string default_tier;             ///< t1, t2, t3, vision or research
  std::vector<std::string> escalation;  ///< tried in order after a persisting gate failure
  int max_escalations = 0;              ///< at most escalation.size() steps per artifact
};

struct SkillInput {
  std::string kind;  ///< an artifact kind, or BRIEF / MEDIA
  bool required = true;
  std::string slice;  ///< how much of the kind one call takes (skill.schema.json definitions.slice)
  /// The parts of each artifact the skill reads (JSON pointers, "/behavioral_baseline"); empty:
  /// all of it. What is not read is neither sent nor part of the step's inputs, so an edit of
  /// it leaves the step up to date (an appearance edit does not re-run the psychology).
  std::vector<std::string> fields;
  /// Read to correct the next attempt (QC findings, regen rules, a storyboard's review, the
  /// routing), not part of what is being made: for the packager of a shot, a change of it does
  /// not make the shot's passed render stale (its other inputs are the render's identity).
  bool feedback = false;
  /// Pasted verbatim into the GenPack (its CARRIED INPUTS section) by the skill that writes GENPACK:
  /// how a kind a project adds reaches the shots' prompts. Part of the render's identity.
  bool into_genpack = false;
};

struct SkillOutput {
  std::string kind;        ///< an artifact kind
  std::string schema;      ///< "plaus.schema.json"; empty for a media output
  std::string media;       ///< "image", "video", "audio"; empty unless a media output
  std::string written_by;  ///< the post step that writes it instead of the model; usually empty
  std::string collect;     ///< "scene_wave", "append_rows"; empty = a whole version per run
};

/// Page-by-page work (skill.schema.json "paging"): exactly one of input / output is set.
struct Paging {
  std::string input;   ///< the all_rows input cut into pages
  std::string output;  ///< the output the model writes a page at a time
  int rows_per_page = 0;
  std::vector<std::string> per_scene;  ///< all_targets inputs cut to the page's scenes
};

struct SkillDef {
  std::string name;
  std::string description;
  std::string layer;  ///< narrative, validation, continuity, production, governance, observability
  std::string loop;   ///< narrative, validation, continuity, production, cost, observability, none
  std::string scope;  ///< project, scene, shot, character, set, voice
  Executor executor = Executor::model;
  std::string builtin;             ///< the C++ built-in; empty for a model skill
  std::optional<TierPolicy> tier;  ///< present exactly for model skills
  int max_output_tokens = 0;       ///< 0 for built-ins
  std::string runs_when;           ///< a condition of the stage graph; empty = always runs
  std::vector<std::string> post_steps;
  std::optional<Paging> paging;    ///< absent: one call per attempt
  std::vector<SkillInput> inputs;
  std::vector<SkillOutput> outputs;
  nlohmann::json gate_rules = nlohmann::json::array();    ///< gate.rules, as written
  std::vector<std::string> gate_checks;                   ///< gate.checks: built-in check names
  nlohmann::json gate_params = nlohmann::json::object();  ///< gate.params, as written
  nlohmann::json loop_policy = nlohmann::json::object();  ///< {on_fail?, on_fix?}, as written
  nlohmann::json raw;                                     ///< the whole skill.json

  SourceFile definition;  ///< skill.json
  SourceFile prompt;      ///< prompt.md (its path, even when it is missing)
  std::string prompt_text;
  /// sha256 of the skill's skill.json and prompt.md as read, when either is a project's file
  /// (overridden()); empty for a shipped skill, whose files are versioned with avps. Part of the
  /// skill's step keys, so an edit of a project's definition or prompt makes its steps stale.
  std::string project_files_sha256;

  /// Builds the typed view of a skill.json that passed skill.schema.json. Fails (invalid_argument)
  /// rather than throwing if the document is not shaped as the schema says.
  [[nodiscard]] static Result<SkillDef> from_json(const nlohmann::json& document);

  /// True when a project supplies this skill's skill.json or its prompt.md.
  bool overridden() const;
  /// The output a gate rule reads: the one its "output" names, else the first output with a
  /// schema. nullptr when there is none.
  const SkillOutput* rule_output(const nlohmann::json& rule) const;
  /// The output of this kind, or nullptr.
  const SkillOutput* find_output(std::string_view kind) const;
  /// The outputs the model writes (a schema, no post step), in order. With exactly one, the
  /// model's answer is that artifact; with more, an object keyed by kind.
  std::vector<const SkillOutput*> model_outputs() const;
  /// Whether a FIX verdict of this skill is acted on rather than passed: its loop_policy has an
  /// on_fix branch (a revision, then its `then`). Without one a FIX proceeds like WARN.
  bool fix_loops() const { return loop_policy.contains("on_fix"); }
  /// Whether `verdict` ends this skill's loop in a context: PASS, WARN, a person's ACCEPTED, and
  /// FIX unless fix_loops().
  bool settles(const std::string& verdict) const;
};

/// The JSON Schema a model call of `skill` must answer with: the schema of its one model output
/// (read from `data_dir`/schemas), or for several outputs {"KIND": schema, ...}.
[[nodiscard]] Result<nlohmann::json> output_schema(const SkillDef& skill, const std::filesystem::path& data_dir);

/// Every config reference ({"config": pointer, "default": value}, exactly those two members)
/// anywhere inside `value`, in document order: the values a project may configure.
std::vector<const nlohmann::json*> find_config_refs(const nlohmann::json& value);

}  // namespace avps::skills
