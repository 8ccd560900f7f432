#pragma once
// Internal to the sim backend (src/backends/sim/): the per-call context every generator reads,
// the seeded PRNG, the brief parser, input accessors and small text helpers. Nothing here keeps
// state between calls, so generators are pure functions of (request, settings, seed).
//
// Inputs arrive keyed by artifact kind, in whatever slice the engine cut: a whole artifact
// ({"rows": [...]}), one row, an array of rows, a single lock, an object entity_id -> lock, or an
// array of artifacts. The accessors below accept all of these, and generators fall back to the
// brief (and then to neutral defaults) for anything missing, so every call yields valid output.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "avps/backends/backend.hpp"
#include "avps/backends/sim_backend.hpp"
#include "avps/core/text.hpp"

namespace avps::backends::sim {

using nlohmann::json;

// ---- PRNG -------------------------------------------------------------------------------------

/// xoshiro256** seeded from a SHA-256 hex digest (64 hex characters).
class Rng {
 public:
  explicit Rng(std::string_view sha256_hex);
  uint64_t next();
  double unit();              ///< [0, 1)
  int range(int lo, int hi);  ///< lo..hi inclusive
  bool chance(double p);      ///< true with probability p (p >= 1: always; p <= 0: never)
  std::string pick(const std::vector<std::string>& items);  ///< "" when empty

 private:
  uint64_t m_s[4];
};

// ---- the brief --------------------------------------------------------------------------------

struct BriefEntity {
  std::string id;           ///< normalize_entity_id(name)
  std::string name;         ///< display name, as written before " — "
  std::string description;  ///< the rest of the list item
};

/// What the sim reads from brief.md: "## Premise", "## Genre and tone", "## Length",
/// "## Characters" and "## Locations" lists ("- Name — description"), "## Story beats" (a
/// numbered or bulleted list), "## Themes", and an optional "Scenes: N" line anywhere.
struct Brief {
  std::string premise;
  std::string genre_tone;
  std::string length;
  std::string themes;
  std::vector<BriefEntity> characters;
  std::vector<BriefEntity> locations;
  std::vector<std::string> beats;
  std::optional<int> scene_count;  ///< an explicit "Scenes: N" line
  std::string period;              ///< a year the premise or genre names ("1962"), else ""

  const BriefEntity* character(std::string_view id) const;
  const BriefEntity* location(std::string_view id) const;
};

Brief parse_brief(std::string_view markdown);

/// Objects a character carries, as prop ids, from the description's wording ("walks with a
/// stick", "clipboard"): a small vocabulary of hand-held things.
std::vector<std::string> carried_props(const BriefEntity& character);
/// The short noun phrases of a location's description after its first clause ("brass, the great
/// lens, the amber lamp"), as {prop id, phrase}.
std::vector<std::pair<std::string, std::string>> set_items(const BriefEntity& location);
/// Clauses of `text` (split at , ; . and parentheses) that describe an injury or illness.
std::vector<std::string> injury_clauses(std::string_view text);
/// Whether a clause describes a heal (healed, treated, bandaged, recovers, ...), as whole words.
bool describes_heal(std::string_view text);

// ---- one call ---------------------------------------------------------------------------------

enum class Mode { pass, fix, fail };

struct Call {
  const ModelRequest& request;
  const SimSettings& settings;
  Rng& rng;
  Mode mode = Mode::pass;
  Brief brief;  ///< parsed from inputs.BRIEF; empty when there is none
};

/// Artifacts by kind ("BEATS", "SCENES").
using Outputs = std::map<std::string, json>;
using Generator = Outputs (*)(Call&);

/// The generator of a skill, or nullptr.
Generator find_generator(std::string_view skill);
/// The answer to a skill without a generator (a project's own skill), made from
/// call.request.output_schema and filled from the scope and inputs (generic.cpp): the artifact, or
/// for a kind map {"KIND": artifact, ...}. Fails (invalid_argument) naming a field it cannot fill
/// validly, (unsupported) when the request has no output schema.
Result<json> schema_answer(Call& call);
const std::vector<std::string>& generator_names();

// ---- input accessors (inputs.cpp) -------------------------------------------------------------

/// request.inputs[kind], or nullptr when absent or null.
const json* input(const Call& call, std::string_view kind);
/// The text of inputs.BRIEF (a string, or an object with "text" / "markdown" / "content").
std::string brief_text(const Call& call);
/// Table rows from an artifact ({"rows": [...]}), an array of rows or artifacts, or one row.
std::vector<json> rows_of(const json* value);
/// Artifacts from one artifact, an array of them, or an object id -> artifact.
std::vector<json> artifacts_of(const json* value);
/// Locks of `kind` (CHAR_LOCK, SET_LOCK, VOICE_LOCK) by entity id.
std::map<std::string, json> locks_of(const Call& call, std::string_view kind);
/// The WORLD_STATE input, or the empty initial state.
json world_state_of(const Call& call);

/// The scene the call is about: scope.scene_id (or the scene of scope.shot_id, or a scene-id
/// scope.target), else the only SCENES row's id, else "S01".
std::string scene_id(const Call& call);
/// The SCENES row of scene_id(call), or the only row; nullopt when there is none.
std::optional<json> scene_row(const Call& call);
/// The row of `kind` (BREAKDOWN, SHOTLIST) whose `id_member` is `id`, or the only row.
std::optional<json> row_of(const Call& call, std::string_view kind, const char* id_member,
                           const std::string& id);
std::string shot_id(const Call& call);
int attempt(const Call& call);
/// The page a paged call is about (scope.page; see skill.schema.json "paging").
struct Page {
  size_t index = 1;          ///< 1-based
  size_t rows_per_page = 1;
  size_t of = 0;             ///< pages in all (input paging); 0 when the model decides
  size_t offset = 0;         ///< rows before this page (input paging)
  size_t total_rows = 0;     ///< rows in all (input paging)
};
/// scope.page, or nullopt for a call that is not paged.
std::optional<Page> page_of(const Call& call);
/// scope.entity_id (also scope.entity / character / set / voice), else `fallback`.
std::string entity_id(const Call& call, const std::string& fallback);
/// scope.target when it is a target id, else "PROJECT".
std::string target_id(const Call& call);
/// The project threshold at `pointer` in SimSettings::thresholds ("/plaus_total", "/qc/A").
int threshold(const Call& call, const char* pointer, int fallback);

// ---- text helpers (inputs.cpp) ----------------------------------------------------------------

std::string str(const json& obj, const char* key, const std::string& fallback = "");
std::vector<std::string> strs(const json& obj, const char* key);
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");
using core::list_item;
using core::lower;
using core::trim;
/// Trimmed, first letter upper-cased, ending in . ! or ?; `fallback` when empty.
std::string sentence(std::string_view text, const std::string& fallback = "Nothing to report.");
/// Trimmed, final . removed, first letter lower-cased unless the first word looks like a name.
std::string clause(std::string_view text);
/// Lower-case ASCII words (runs of letters, digits and ').
std::vector<std::string> words_of(std::string_view text);
bool has_word(std::string_view text, std::string_view word);
/// `text` without the hedge words the lock gate refuses ("maybe", "sort of", ...).
std::string dehedge(std::string_view text);
/// normalize_entity_id, or "" when the name cannot be an id.
std::string entity_of(std::string_view name);
/// A display name for an entity id: the brief's name, else the id.
std::string display(const Call& call, const std::string& id);
/// The ids the text mentions: characters by a name word unique to them (or by id).
std::vector<std::string> mentioned_characters(const Brief& brief, std::string_view text);
/// Upper-snake words of `text` that look like entity ids (RED_NOTEBOOK), in order, unique.
std::vector<std::string> upper_ids_in(std::string_view text);

/// The gate object of an artifact.
json gate_of(const std::string& verdict, json scores, const std::vector<std::string>& reasons);

// ---- the state-change grammar shared by script-breakdown (writer) and world-state-tracker
// (reader). One statement per BREAKDOWN state_changes item, ids in UPPER_SNAKE:
//   "<CHAR> learns <fact>"           knowledge gained
//   "<CHAR> feels <state>"           emotional state
//   "<CHAR> carries <PROP>"          a prop enters the world with its owner
//   "<CHAR> gives [up] <PROP> to <CHAR>"   a transfer (also "hands", "passes")
//   "<PROP> is in <SET>"             a set prop enters the world in place
//   "<CHAR>: <injury or heal>"       an injury (or illness) gained, or a heal
// Anything else is prose the tracker ignores.

// ---- generators, by layer ---------------------------------------------------------------------

Outputs story_architect(Call& call);
Outputs script_breakdown(Call& call);
Outputs character_psychology(Call& call);
Outputs narrative_red_team(Call& call);
Outputs audience_simulator(Call& call);
Outputs dialogue_consistency_check(Call& call);
Outputs research_agent(Call& call);
Outputs plausibility_auditor(Call& call);
Outputs cultural_check(Call& call);
Outputs character_lock(Call& call);
Outputs set_lock(Call& call);
Outputs voice_lock(Call& call);
Outputs world_state_tracker(Call& call);
Outputs continuity_supervisor(Call& call);
Outputs shot_planner(Call& call);
Outputs storyboard_generator(Call& call);
Outputs qc_grader(Call& call);
Outputs regen_analyzer(Call& call);

}  // namespace avps::backends::sim
