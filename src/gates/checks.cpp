// The named built-in gate checks of schemas/skill.schema.json (definitions.check_name). Each reads
// one output kind, the skill's resolved gate.params and what the GateContext has recorded, and
// returns a Finding per problem; the reason names the scene, shot, claim or field concerned.
// An artifact a check needs that is not recorded is a finding (the output cannot be verified, so
// it cannot pass); errors are for broken definitions (a missing parameter) and context failures.

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <bit>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/builtins/genpack.hpp"
#include "avps/builtins/world_state.hpp"
#include "avps/project/config.hpp"
#include "avps/project/project.hpp"
#include "checks_internal.hpp"

namespace avps::gates {
namespace {

using nlohmann::json;
using Findings = std::vector<Finding>;

// ---- small helpers ---------------------------------------------------------------------------

const json& empty_array() {
  static const json k_empty = json::array();
  return k_empty;
}

const json& array_member(const json& obj, const char* key) {
  if (!obj.is_object()) {
    return empty_array();
  }
  auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : empty_array();
}

std::string text_member(const json& obj, const char* key) {
  if (!obj.is_object()) {
    return "";
  }
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string trim(const std::string& s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin])) != 0) {
    ++begin;
  }
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1])) != 0) {
    --end;
  }
  return s.substr(begin, end - begin);
}

std::string join(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string out;
  for (const std::string& item : items) {
    out += out.empty() ? item : separator + item;
  }
  return out;
}

std::vector<std::string> strings_of(const json& list) {
  std::vector<std::string> out;
  for (const json& item : list) {
    if (item.is_string()) {
      out.push_back(item.get<std::string>());
    }
  }
  return out;
}

void add(Findings& findings, Verdict verdict, std::string reason) {
  findings.push_back(Finding{verdict, std::move(reason)});
}

// "S01_SH02" -> "S01"; "" when the id has no shot part.
std::string scene_of_shot(const std::string& shot_id) {
  size_t at = shot_id.find("_SH");
  return at == std::string::npos ? "" : shot_id.substr(0, at);
}

Result<double> number_param(const json& params, const char* name) {
  if (params.is_object()) {
    auto it = params.find(name);
    if (it != params.end() && it->is_number()) {
      return it->get<double>();
    }
  }
  return make_error(ErrorCode::invalid_argument, std::string("needs the number gate.params.") + name);
}

std::string format_number(double value) {
  char buffer[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%g", value);
  }
  return buffer;
}

std::string format_percent(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", value);
  return buffer;
}

std::string format_usd(int64_t micro_usd) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "$%.2f", static_cast<double>(micro_usd) / 1e6);
  return buffer;
}

// The row of `rows` whose `id_member` is `id`, or nullptr.
const json* find_row(const json& rows, const char* id_member, const std::string& id) {
  for (const json& row : rows) {
    if (text_member(row, id_member) == id) {
      return &row;
    }
  }
  return nullptr;
}

// What `read` makes of a parsed content, kept by the content it was read from. The engine's
// context hands out one shared content per version while its cache holds it, so a check that
// reads the same list at every scene's step (a plan, the scene list) reads it once, and its cost
// does not grow with the project. An entry is used only while the content it was read from lives
// and is the one handed in (its weak_ptr still locks to that very object): a content the cache let
// go of, or another made at its address, is read anew. Entries of contents gone are dropped each
// time the store has doubled since the last sweep: a context that hands out a fresh copy at every
// call (GateContext's default) leaves one per call, and an index of a 500-scene list is tens of KB.
// Called from every thread that checks (the record check's threads too): under a mutex, one store
// per call site (`Read` is its lambda).
template <typename Kept, typename Read>
std::shared_ptr<const Kept> kept_of(const std::shared_ptr<const json>& content, Read read) {
  struct Entry {
    std::weak_ptr<const json> content;
    std::shared_ptr<const Kept> kept;
  };
  static std::mutex mutex;
  static std::map<const json*, Entry> entries;
  constexpr size_t k_first_sweep = 64;
  constexpr size_t k_max_entries = 4096;  // contents of many more scenes than one run's cache holds
  static size_t sweep_at = k_first_sweep;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = entries.find(content.get()); it != entries.end() && it->second.content.lock() == content) {
      return it->second.kept;
    }
  }
  std::shared_ptr<const Kept> kept = std::make_shared<const Kept>(read(*content));
  std::lock_guard<std::mutex> lock(mutex);
  if (entries.size() >= sweep_at) {
    std::erase_if(entries, [](const auto& entry) { return entry.second.content.expired(); });
    if (entries.size() >= k_max_entries) {
      entries.clear();
    }
    sweep_at = std::max(k_first_sweep, 2 * entries.size());
  }
  entries[content.get()] = Entry{content, kept};
  return kept;
}

// The row of `scene_id` in a parsed SCENES or BREAKDOWN, the first as find_row finds it, through
// an index of its rows kept by the content (kept_of): each scene's checks look up their own scene,
// and reading every row made each of them cost as much as the project has scenes. The row is the
// content's own: valid while the caller holds `list`.
const json* scene_row(const std::shared_ptr<const json>& list, const std::string& scene_id) {
  using Index = std::map<std::string, const json*, std::less<>>;
  const std::shared_ptr<const Index> index = kept_of<Index>(list, [](const json& content) {
    Index rows;
    for (const json& row : array_member(content, "rows")) {
      rows.emplace(text_member(row, "scene_id"), &row);  // the first row of an id, as find_row
    }
    return rows;
  });
  auto found = index->find(scene_id);
  return found == index->end() ? nullptr : found->second;
}

// Whether an entity's lock is recorded, remembering answers: checks ask about the same
// characters and sets row after row.
class LockLookup {
 public:
  explicit LockLookup(const GateContext& context) : m_context(context) {}

  Result<bool> has(const std::string& kind, const std::string& entity) {
    auto key = std::make_pair(kind, entity);
    if (auto it = m_known.find(key); it != m_known.end()) {
      return it->second;
    }
    AVPS_TRY_ASSIGN(std::shared_ptr<const json> lock, m_context.latest_shared(kind, entity));
    m_known[key] = lock != nullptr;
    return lock != nullptr;
  }

 private:
  const GateContext& m_context;
  std::map<std::pair<std::string, std::string>, bool> m_known;
};

// ---- story-architect: SCENES ------------------------------------------------------------------

Result<Findings> scene_fields_non_empty(const json& output, const json&, const GateContext&) {
  Findings findings;
  const json& rows = array_member(output, "rows");
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string id = text_member(rows[i], "scene_id");
    std::string name = id.empty() ? "row " + std::to_string(i + 1) : id;
    for (const char* field : {"goal", "conflict", "outcome"}) {
      if (trim(text_member(rows[i], field)).empty()) {
        add(findings, Verdict::fail,
            name + ": " + field + " is empty (every scene needs a goal, a conflict and an outcome)");
      }
    }
  }
  return findings;
}

Result<Findings> scene_ids_unique(const json& output, const json&, const GateContext&) {
  Findings findings;
  std::set<std::string> seen;
  long long previous = 0;
  std::string previous_id;
  const json& rows = array_member(output, "rows");
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string id = text_member(rows[i], "scene_id");
    if (!artifacts::is_scene_id(id)) {
      add(findings, Verdict::fail,
          "row " + std::to_string(i + 1) + ": scene id \"" + id + "\" is not of the form S01, S02, ...");
      continue;
    }
    if (!seen.insert(id).second) {
      add(findings, Verdict::fail, id + " appears more than once");
      continue;
    }
    long long number = std::stoll(id.substr(1));
    if (number <= previous) {
      add(findings, Verdict::fail, id + " comes after " + previous_id + ": scene ids must be in order");
    } else {
      previous = number;
      previous_id = id;
    }
  }
  return findings;
}

// ---- script-breakdown: BREAKDOWN --------------------------------------------------------------

Result<Findings> breakdown_matches_scenes(const json& output, const json&, const GateContext& context) {
  Findings findings;
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> scenes, context.latest_shared("SCENES", ""));
  if (!scenes) {
    add(findings, Verdict::fail, "no SCENES recorded: the breakdown cannot be checked against the scenes");
    return findings;
  }
  const json& scene_rows = array_member(*scenes, "rows");
  std::map<std::string, const json*> by_scene;
  for (const json& row : array_member(output, "rows")) {
    std::string id = text_member(row, "scene_id");
    if (!by_scene.emplace(id, &row).second) {
      add(findings, Verdict::fail, id + " has more than one BREAKDOWN row");
    }
    if (scene_row(scenes, id) == nullptr) {
      add(findings, Verdict::fail, id + " has a BREAKDOWN row but is not a scene of the latest SCENES");
    }
  }

  // new_* must be exactly what a scene uses that no earlier scene did.
  struct Column {
    const char* used;
    const char* introduced;
    std::set<std::string> seen;
  };
  std::array<Column, 3> columns = {Column{"characters_present", "new_characters_introduced", {}},
                                   Column{"locations_used", "new_locations_introduced", {}},
                                   Column{"props_used", "new_props_introduced", {}}};
  for (const json& scene : scene_rows) {
    std::string id = text_member(scene, "scene_id");
    auto row = by_scene.find(id);
    if (row == by_scene.end()) {
      add(findings, Verdict::fail, id + " has no BREAKDOWN row");
      continue;
    }
    for (Column& column : columns) {
      std::vector<std::string> used = strings_of(array_member(*row->second, column.used));
      std::vector<std::string> listed = strings_of(array_member(*row->second, column.introduced));
      std::set<std::string> expected;
      for (const std::string& entity : used) {
        if (!column.seen.count(entity)) {
          expected.insert(entity);
        }
      }
      std::set<std::string> given(listed.begin(), listed.end());
      std::vector<std::string> missing;
      std::vector<std::string> extra;
      std::set_difference(expected.begin(), expected.end(), given.begin(), given.end(),
                          std::back_inserter(missing));
      std::set_difference(given.begin(), given.end(), expected.begin(), expected.end(),
                          std::back_inserter(extra));
      if (!missing.empty()) {
        add(findings, Verdict::fail,
            id + ": " + column.introduced + " lacks " + join(missing) + " (first used in this scene)");
      }
      if (!extra.empty()) {
        add(findings, Verdict::fail,
            id + ": " + column.introduced + " lists " + join(extra) + ", which " +
                (extra.size() == 1 ? "is" : "are") + " not new in this scene (used earlier, or not in " +
                column.used + ")");
      }
      column.seen.insert(used.begin(), used.end());
    }
  }
  return findings;
}

// ---- locks: hedge words -----------------------------------------------------------------------

// Words that leave a lock open to interpretation (spec §2.10: no "kind of", "sometimes").
constexpr std::array<const char*, 12> k_hedge_words = {"kind of", "sort of",  "sometimes", "maybe",
                                                       "perhaps", "possibly", "probably",  "somewhat",
                                                       "might",   "usually",  "tends to",  "or so"};

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Whether `phrase` (lower case, words separated by one space) starts at text[at], case-insensitive,
// as whole words; any run of white space separates its words.
bool phrase_at(const std::string& text, size_t at, const std::string& phrase) {
  size_t t = at;
  for (char p : phrase) {
    if (p == ' ') {
      if (t >= text.size() || std::isspace(static_cast<unsigned char>(text[t])) == 0) {
        return false;
      }
      while (t < text.size() && std::isspace(static_cast<unsigned char>(text[t])) != 0) {
        ++t;
      }
      continue;
    }
    if (t >= text.size() || std::tolower(static_cast<unsigned char>(text[t])) != p) {
      return false;
    }
    ++t;
  }
  return t == text.size() || !is_alnum(text[t]);
}

std::vector<std::string> hedge_words_in(const std::string& text) {
  std::vector<std::string> found;
  for (const char* word : k_hedge_words) {
    for (size_t at = 0; at < text.size(); ++at) {
      if ((at == 0 || !is_alnum(text[at - 1])) && phrase_at(text, at, word)) {
        found.push_back("\"" + std::string(word) + "\"");
        break;
      }
    }
  }
  return found;
}

void find_hedges(const json& node, const std::string& field, Findings& findings) {
  if (node.is_string()) {
    std::vector<std::string> words = hedge_words_in(node.get<std::string>());
    if (!words.empty()) {
      std::string text = node.get<std::string>();
      if (text.size() > 80) {
        text = text.substr(0, 77) + "...";
      }
      add(findings, Verdict::fail,
          "hedge word" + std::string(words.size() > 1 ? "s " : " ") + join(words) + " in " + field + " (\"" +
              text + "\"): a lock must be exact");
    }
  } else if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      // The lock's identity and the gate are not lock text.
      if (field.empty() && (it.key() == "gate" || it.key() == "kind" || it.key() == "entity_id")) {
        continue;
      }
      find_hedges(it.value(), field.empty() ? it.key() : field + "/" + it.key(), findings);
    }
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) {
      find_hedges(node[i], field + "/" + std::to_string(i), findings);
    }
  }
}

Result<Findings> lock_hedge_words(const json& output, const json&, const GateContext&) {
  Findings findings;
  find_hedges(output, "", findings);
  return findings;
}

// ---- research-agent: TRUTH --------------------------------------------------------------------

Result<Findings> truth_verified_claims_cited(const json& output, const json&, const GateContext&) {
  Findings findings;
  std::set<std::string> cited;
  for (const json& citation : array_member(output, "citations_references")) {
    if (!trim(text_member(citation, "reference")).empty()) {
      cited.insert(text_member(citation, "claim_id"));
    }
  }
  for (const json& status : array_member(output, "validation_status")) {
    std::string id = text_member(status, "claim_id");
    if (text_member(status, "status") == "Verified" && !cited.count(id)) {
      add(findings, Verdict::fail, id + " is Verified but has no citation");
    }
  }
  return findings;
}

Result<Findings> truth_high_risk_addressed(const json& output, const json&, const GateContext&) {
  Findings findings;
  std::map<std::string, std::string> status_of;
  for (const json& status : array_member(output, "validation_status")) {
    status_of[text_member(status, "claim_id")] = text_member(status, "status");
  }
  bool allowances_documented = false;
  for (const json& allowance : array_member(output, "creative_allowances")) {
    allowances_documented =
        allowances_documented || (allowance.is_string() && !trim(allowance.get<std::string>()).empty());
  }
  for (const json& risk : array_member(output, "risk_assessment")) {
    if (text_member(risk, "risk") != "high" || !trim(text_member(risk, "mitigation")).empty()) {
      continue;
    }
    std::string id = text_member(risk, "claim_id");
    if (status_of[id] == "Creative License" && allowances_documented) {
      continue;
    }
    add(findings, Verdict::fail,
        id + " is high risk and unaddressed: no mitigation, and not a documented creative allowance");
  }
  return findings;
}

// ---- dialogue-consistency-check: DIALOGUE_CHECK ------------------------------------------------

Result<Findings> dialogue_every_speaker_scored(const json& output, const json&, const GateContext& context) {
  Findings findings;
  std::string scene = text_member(output, "scene_id");
  std::map<std::string, int> scored;
  for (const json& score : array_member(output, "distinctiveness_score")) {
    if (++scored[text_member(score, "character")] == 2) {
      add(findings, Verdict::fail,
          text_member(score, "character") + " has more than one distinctiveness score");
    }
  }
  // Speakers: the characters the check assesses, and every character present in the scene that
  // has a VOICE lock (speaking characters get voice locks; silent ones do not).
  std::vector<std::pair<std::string, std::string>> speakers;  // id, why we think they speak
  for (const json& assessment : array_member(output, "character_by_character_voice_assessment")) {
    speakers.emplace_back(text_member(assessment, "character"), "is assessed");
  }
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> scenes, context.latest_shared("SCENES", ""));
  const json* row = scenes ? scene_row(scenes, scene) : nullptr;
  if (row == nullptr) {
    add(findings, Verdict::fail, scene + " is not in the latest SCENES: cannot tell who speaks in it");
  } else {
    for (const std::string& character : strings_of(array_member(*row, "characters_present"))) {
      AVPS_TRY_ASSIGN(std::shared_ptr<const json> voice, context.latest_shared("VOICE_LOCK", character));
      if (voice) {
        speakers.emplace_back(character, "speaks in " + scene + " (has a VOICE lock)");
      }
    }
  }
  std::set<std::string> reported;
  for (const auto& [character, why] : speakers) {
    if (!scored.count(character) && reported.insert(character).second) {
      add(findings, Verdict::fail, character + " " + why + " but has no distinctiveness score");
    }
  }
  return findings;
}

// ---- world-state-tracker: STATE_DIFF ----------------------------------------------------------

Result<Findings> world_state_continuity(const json& output, const json&, const GateContext& context) {
  Findings findings;
  std::string scene = text_member(output, "scene_id");
  // The gate runs before the applied state is recorded, so the latest WORLD_STATE is the one
  // the diff applies to.
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> before, context.latest_shared("WORLD_STATE", ""));
  if (!before) {
    add(findings, Verdict::fail,
        "no WORLD_STATE recorded before " + scene + ": the diff has nothing to apply to");
    return findings;
  }
  static const json k_no_row = nullptr;
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> breakdown, context.latest_shared("BREAKDOWN", ""));
  const json* found = breakdown ? scene_row(breakdown, scene) : nullptr;
  const json& breakdown_row = found != nullptr ? *found : k_no_row;
  if (Result<json> applied = builtins::apply_state_diff(*before, output); !applied) {
    add(findings, Verdict::fail,
        "the STATE_DIFF of " + scene + " does not apply: " + applied.error().message);
  }
  for (const core::Violation& v : builtins::check_world_state_continuity(*before, output, breakdown_row)) {
    add(findings, Verdict::fail,
        (v.subject.empty() ? "" : v.subject + ": ") + v.message + " (" + v.rule + ")");
  }
  return findings;
}

// ---- continuity-supervisor: CONTINUITY_REPORT -------------------------------------------------

Result<Findings> scene_entities_resolve(const json& output, const json&, const GateContext& context) {
  Findings findings;
  std::string target = text_member(output, "target");
  if (target.empty()) {
    target = text_member(output, "scene_id");
  }
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> scenes, context.latest_shared("SCENES", ""));
  if (!scenes) {
    add(findings, Verdict::fail, "no SCENES recorded: the entities of " + target + " cannot be resolved");
    return findings;
  }
  // A scene report checks its scene; an act or project report checks every scene.
  std::vector<const json*> rows;
  if (artifacts::is_scene_id(target)) {
    if (const json* row = scene_row(scenes, target)) {
      rows.push_back(row);
    } else {
      add(findings, Verdict::fail, target + " is not in the latest SCENES");
    }
  } else {
    for (const json& row : array_member(*scenes, "rows")) {
      rows.push_back(&row);
    }
  }
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> world, context.latest_shared("WORLD_STATE", ""));
  const json no_characters = json::object();
  const json& characters = world && world->contains("characters") && (*world)["characters"].is_object()
                               ? (*world)["characters"]
                               : no_characters;
  LockLookup locks(context);
  for (const json* row : rows) {
    std::string id = text_member(*row, "scene_id");
    std::string location = text_member(*row, "location");
    AVPS_TRY_ASSIGN(bool has_set, locks.has("SET_LOCK", location));
    if (!has_set) {
      add(findings, Verdict::fail, id + ": location " + location + " has no SET lock");
    }
    for (const std::string& character : strings_of(array_member(*row, "characters_present"))) {
      AVPS_TRY_ASSIGN(bool has_char, locks.has("CHAR_LOCK", character));
      if (!has_char) {
        add(findings, Verdict::fail, id + ": character " + character + " has no CHAR lock");
      }
      if (!characters.contains(character)) {
        add(findings, Verdict::fail, id + ": character " + character + " has no entry in the WORLD_STATE");
      }
    }
  }
  return findings;
}

// ---- shot-planner: SHOTLIST -------------------------------------------------------------------

Result<Findings> shotlist_ids_resolve(const json& output, const json&, const GateContext& context) {
  Findings findings;
  std::string scene = text_member(output, "scene_id");
  LockLookup locks(context);
  const json& rows = array_member(output, "rows");
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& row = rows[i];
    std::string id = text_member(row, "shot_id");
    Result<std::string> expected = artifacts::format_shot_id(scene, static_cast<int>(i) + 1);
    if (scene_of_shot(id) != scene) {
      add(findings, Verdict::fail, id + " does not belong to scene " + scene);
    } else if (expected && id != *expected) {
      add(findings, Verdict::fail,
          id + " is out of sequence: shot " + std::to_string(i + 1) + " of " + scene + " must be " +
              *expected);
    }
    if (std::string row_scene = text_member(row, "scene_id"); row_scene != scene) {
      add(findings, Verdict::fail, id + ": scene_id " + row_scene + " is not the shot list's scene " + scene);
    }
    std::string set = text_member(row, "set_id");
    AVPS_TRY_ASSIGN(bool has_set, locks.has("SET_LOCK", set));
    if (!has_set) {
      add(findings, Verdict::fail, id + ": set_id " + set + " has no SET lock");
    }
    for (const std::string& character : strings_of(array_member(row, "char_ids"))) {
      AVPS_TRY_ASSIGN(bool has_char, locks.has("CHAR_LOCK", character));
      if (!has_char) {
        add(findings, Verdict::fail, id + ": char_id " + character + " has no CHAR lock");
      }
    }
  }
  return findings;
}

bool is_wide(const std::string& camera_type) {
  size_t begin = 0;
  while (begin <= camera_type.size()) {
    size_t end = camera_type.find('_', begin);
    if (end == std::string::npos) {
      end = camera_type.size();
    }
    if (camera_type.compare(begin, end - begin, "wide") == 0) {
      return true;
    }
    begin = end + 1;
  }
  return false;
}

Result<Findings> shotlist_heuristics(const json& output, const json& params, const GateContext&) {
  AVPS_TRY_ASSIGN(double max_s, number_param(params, "complex_shot_max_s"));
  Findings findings;
  for (const json& row : array_member(output, "rows")) {
    std::string id = text_member(row, "shot_id");
    std::string camera = text_member(row, "camera_type");
    if (text_member(row, "hero_tier") == "A" && is_wide(camera)) {
      add(findings, Verdict::fail,
          id + ": hero A shot in a wide frame (camera_type " + camera +
              "); a face-critical moment needs a closer shot");
    }
    double duration =
        row.contains("duration_s") && row["duration_s"].is_number() ? row["duration_s"].get<double>() : 0;
    if (text_member(row, "complexity_level") == "high" && duration > max_s) {
      add(findings, Verdict::warn,
          id + ": high-complexity shot of " + format_number(duration) + " s, longer than " +
              format_number(max_s) + " s (complex_shot_max_s); shorten or split it");
    }
  }
  return findings;
}

// ---- prompt-packager: GENPACK -----------------------------------------------------------------

// Whether two JSON values are the same in every type and bit: json's own == takes 1 for 1.0 and
// 0.0 for -0.0, which a face renders differently.
bool identical_json(const json& a, const json& b) {
  if (a.type() != b.type()) {
    return false;
  }
  switch (a.type()) {
    case json::value_t::object: {
      const auto& x = a.get_ref<const json::object_t&>();
      const auto& y = b.get_ref<const json::object_t&>();
      return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), [](const auto& l, const auto& r) {
               return l.first == r.first && identical_json(l.second, r.second);
             });
    }
    case json::value_t::array: {
      const auto& x = a.get_ref<const json::array_t&>();
      const auto& y = b.get_ref<const json::array_t&>();
      return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), identical_json);
    }
    case json::value_t::number_float:
      return std::bit_cast<std::uint64_t>(a.get<double>()) == std::bit_cast<std::uint64_t>(b.get<double>());
    default:
      return a == b;  // null, boolean, string, integers, binary, discarded: == is exact
  }
}

Result<std::string> genpack_face(const json& genpack) {
  // Loaded once: compiling the schema cost more than every check of a GenPack together. The shipped
  // schemas do not change while a process runs; render is const, so threads share it.
  static const Result<artifacts::FaceCodec> k_codec =
      artifacts::FaceCodec::load(project::data_dir() / "schemas", "GENPACK");
  if (!k_codec) {
    return k_codec.error();
  }
  // One GenPack's face is asked for by each of its checks (section order, locks verbatim) in
  // turn, on the same content: rendered once. The last rendering is kept per thread (checks run
  // on the engine's workers too), and reused only for content identical in every type and bit,
  // so the face is the one its own rendering would give.
  struct LastFace {
    json content;
    std::string face;
  };
  thread_local std::optional<LastFace> t_last;
  if (t_last && identical_json(t_last->content, genpack)) {
    return t_last->face;
  }
  AVPS_TRY_ASSIGN(std::string face, k_codec->render(genpack));
  t_last = LastFace{genpack, face};
  return face;
}

// The lock of kind/entity as the packager pastes it, or nullopt when none is recorded.
Result<std::optional<builtins::LockFace>> lock_face(const GateContext& context, const std::string& kind,
                                                    const std::string& entity) {
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> content, context.latest_shared(kind, entity));
  AVPS_TRY_ASSIGN(std::optional<GateContext::Face> face, context.latest_face(kind, entity));
  if (!content || !face) {
    return std::optional<builtins::LockFace>();
  }
  return std::optional<builtins::LockFace>(builtins::LockFace{face->name, face->text, *content});
}

void add_violations(Findings& findings, const std::vector<core::Violation>& violations, bool order) {
  for (const core::Violation& v : violations) {
    if ((v.rule == "genpack.order") == order) {
      add(findings, Verdict::fail,
          (v.subject.empty() ? "" : v.subject + ": ") + v.message + " (" + v.rule + ")");
    }
  }
}

Result<Findings> genpack_section_order(const json& output, const json&, const GateContext&) {
  Findings findings;
  AVPS_TRY_ASSIGN(std::string face, genpack_face(output));
  add_violations(findings, builtins::check_genpack(output, face, {}), true);
  return findings;
}

Result<Findings> genpack_locks_verbatim(const json& output, const json&, const GateContext& context) {
  Findings findings;
  std::string shot = text_member(output, "shot_id");
  std::string scene = scene_of_shot(shot);
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> shotlist, context.latest_shared("SHOTLIST", scene));
  const json* row = shotlist ? find_row(array_member(*shotlist, "rows"), "shot_id", shot) : nullptr;
  if (row == nullptr) {
    add(findings, Verdict::fail,
        shot + " is not in the latest SHOTLIST of " + scene + ": its locks are unknown");
    return findings;
  }
  // The locks the shot must carry: the project style, its set, its characters in char_ids order.
  std::vector<std::pair<std::string, std::string>> wanted = {{"STYLE_LOCK", "PROJECT"},
                                                             {"SET_LOCK", text_member(*row, "set_id")}};
  for (const std::string& character : strings_of(array_member(*row, "char_ids"))) {
    wanted.emplace_back("CHAR_LOCK", character);
  }
  std::vector<builtins::LockFace> expected;
  for (const auto& [kind, entity] : wanted) {
    AVPS_TRY_ASSIGN(std::optional<builtins::LockFace> lock, lock_face(context, kind, entity));
    if (!lock) {
      add(findings, Verdict::fail,
          shot + ": no " + kind + " of " + entity + " is recorded to check the GenPack against");
      continue;
    }
    expected.push_back(std::move(*lock));
  }
  AVPS_TRY_ASSIGN(std::string face, genpack_face(output));
  add_violations(findings, builtins::check_genpack(output, face, expected), false);
  // What the packager pasted because its skill.json marks it into_genpack: each the latest version
  // of its kind for its target, verbatim, as the locks are.
  for (const json& item : array_member(output, "carried")) {
    const std::string name = text_member(item, "artifact");
    Result<artifacts::ArtifactName> parsed = artifacts::parse_artifact_name(name);
    if (!parsed) {
      add(findings, Verdict::fail, shot + ": carries " + name + ", which is not an artifact name avps knows");
      continue;
    }
    AVPS_TRY_ASSIGN(std::optional<GateContext::Face> carried, context.latest_face(parsed->kind, parsed->target));
    if (!carried || carried->name != name) {
      add(findings, Verdict::fail,
          shot + ": carries " + name + ", which is not the latest " + parsed->kind +
              (carried ? " (" + carried->name + " is)" : std::string(" recorded")));
    } else if (carried->text != text_member(item, "text")) {
      add(findings, Verdict::fail, shot + ": the carried " + name + " is altered (not verbatim)");
    }
  }
  return findings;
}

// ---- qc-grader: QC_BATCH ----------------------------------------------------------------------

constexpr std::array<const char*, 6> k_qc_categories = {"face_consistency",     "wardrobe_consistency",
                                                        "set_continuity",       "prop_accuracy",
                                                        "lighting_consistency", "motion_integrity"};

// The verdict of each row of a QC_BATCH, from its scores and violations (spec §2.18): any category
// 0 or a hard-fail violation fails, a total below the hero tier's threshold minus the margin
// fails, below the threshold fixes, else passes. `claim` is the grader's own verdict, named in
// the reason when it differs; `tier_known` false when the shot is not in the latest SHOTLIST.
struct QcRowGrade {
  std::string name;  // "S01_SH02 attempt 1"
  bool tier_known = true;
  Verdict verdict = Verdict::pass;
  std::string reason;  // "" for a PASS
};

Result<std::vector<QcRowGrade>> qc_row_grades(const json& output, const json& params, const GateContext& context) {
  AVPS_TRY_ASSIGN(double threshold_a, number_param(params, "qc_threshold_a"));
  AVPS_TRY_ASSIGN(double threshold_b, number_param(params, "qc_threshold_b"));
  AVPS_TRY_ASSIGN(double threshold_c, number_param(params, "qc_threshold_c"));
  AVPS_TRY_ASSIGN(double margin, number_param(params, "qc_fail_margin"));
  const std::map<std::string, double> thresholds = {{"A", threshold_a}, {"B", threshold_b}, {"C", threshold_c}};

  // Hard-fail flags (lock violation, world-state contradiction, facial drift) by shot attempt.
  std::map<std::pair<std::string, int>, std::vector<std::string>> flags;
  for (const json& v : array_member(output, "violations")) {
    int attempt =
        v.contains("attempt_number") && v["attempt_number"].is_number_integer() ? v["attempt_number"].get<int>() : 0;
    flags[{text_member(v, "shot_id"), attempt}].push_back(text_member(v, "rule") + ": " +
                                                          text_member(v, "description"));
  }

  std::vector<QcRowGrade> grades;
  std::map<std::string, std::shared_ptr<const json>> shotlists;  // by scene
  for (const json& row : array_member(output, "rows")) {
    QcRowGrade grade;
    std::string shot = text_member(row, "shot_id");
    int attempt = row.contains("attempt_number") && row["attempt_number"].is_number_integer()
                      ? row["attempt_number"].get<int>()
                      : 0;
    grade.name = shot + " attempt " + std::to_string(attempt);
    std::string scene = scene_of_shot(shot);
    if (!shotlists.count(scene)) {
      AVPS_TRY_ASSIGN(shotlists[scene], context.latest_shared("SHOTLIST", scene));
    }
    const std::shared_ptr<const json>& shotlist = shotlists[scene];
    const json* shot_row = shotlist ? find_row(array_member(*shotlist, "rows"), "shot_id", shot) : nullptr;
    std::string tier = shot_row ? text_member(*shot_row, "hero_tier") : "";
    if (!thresholds.count(tier)) {
      grade.tier_known = false;
      grade.verdict = Verdict::fail;
      grade.reason =
          grade.name + ": not in the latest SHOTLIST of " + scene + ", so its hero tier and threshold are unknown";
      grades.push_back(std::move(grade));
      continue;
    }

    // The total is recomputed from the categories; audio "NA" is not scored.
    int total = 0;
    std::vector<std::string> zeros;
    for (const char* category : k_qc_categories) {
      int score = row.contains(category) && row[category].is_number_integer() ? row[category].get<int>() : 0;
      total += score;
      if (score == 0) {
        zeros.push_back(std::string(category) + " 0");
      }
    }
    if (row.contains("audio_consistency") && row["audio_consistency"].is_number_integer()) {
      int audio = row["audio_consistency"].get<int>();
      total += audio;
      if (audio == 0) {
        zeros.push_back("audio_consistency 0");
      }
    }
    double threshold = thresholds.at(tier);
    std::vector<std::string> why = zeros;
    const auto& row_flags = flags[{shot, attempt}];
    why.insert(why.end(), row_flags.begin(), row_flags.end());
    Verdict verdict = Verdict::pass;
    if (!why.empty() || total < threshold - margin) {
      verdict = Verdict::fail;
      if (total < threshold - margin) {
        why.push_back("total " + std::to_string(total) + " < " + format_number(threshold - margin) + " (hero " + tier +
                      " threshold " + format_number(threshold) + " minus " + format_number(margin) + ")");
      }
    } else if (total < threshold) {
      verdict = Verdict::fix;
      why.push_back("total " + std::to_string(total) + " < " + format_number(threshold) + " (hero " + tier +
                    " threshold)");
    }
    grade.verdict = verdict;
    if (verdict != Verdict::pass) {
      std::string reason = grade.name + ": " + join(why, "; ");
      if (row.contains("total_score") && row["total_score"].is_number_integer() &&
          row["total_score"].get<int>() != total) {
        reason += "; total_score says " + std::to_string(row["total_score"].get<int>()) + ", the scores sum to " +
                  std::to_string(total);
      }
      // The grader's claim: model_verdict once avps has recorded the row (face layout 2), else the
      // verdict of the grader's own answer.
      const std::string claimed =
          row.contains("model_verdict") ? text_member(row, "model_verdict") : text_member(row, "verdict");
      if (!claimed.empty() && claimed != verdict_name(verdict)) {
        reason += " (the model said " + claimed + ")";
      }
      grade.reason = std::move(reason);
    }
    grades.push_back(std::move(grade));
  }
  return grades;
}

Result<Findings> qc_verdict_from_scores(const json& output, const json& params, const GateContext& context) {
  AVPS_TRY_ASSIGN(std::vector<QcRowGrade> grades, qc_row_grades(output, params, context));
  Findings findings;
  for (const QcRowGrade& grade : grades) {
    if (grade.verdict != Verdict::pass) {
      add(findings, grade.verdict, grade.reason);
    }
  }
  // A violation that names no row of the batch would otherwise count for nothing.
  std::set<std::pair<std::string, int>> rows;
  for (const json& row : array_member(output, "rows")) {
    rows.insert(
        {text_member(row, "shot_id"), row.contains("attempt_number") && row["attempt_number"].is_number_integer()
                                          ? row["attempt_number"].get<int>()
                                          : 0});
  }
  for (const json& v : array_member(output, "violations")) {
    const int attempt =
        v.contains("attempt_number") && v["attempt_number"].is_number_integer() ? v["attempt_number"].get<int>() : 0;
    if (!rows.count({text_member(v, "shot_id"), attempt})) {
      add(findings, Verdict::fail,
          text_member(v, "shot_id") + " attempt " + std::to_string(attempt) + ": a " + text_member(v, "rule") +
              " for a shot attempt this batch does not grade: " + text_member(v, "description"));
    }
  }
  return findings;
}

// ---- budget-gates: BUDGET_STATUS --------------------------------------------------------------

int64_t integer_member(const json& obj, const char* key) {
  return obj.contains(key) && obj[key].is_number_integer() ? obj[key].get<int64_t>() : 0;
}

// WARN / FAIL / STOP of spend against one cap. `committed` < 0: unknown.
void check_cap(Findings& findings, const std::string& what, int64_t cap, int64_t committed, int64_t projected,
               double warn_pct) {
  double pct = 100.0 * static_cast<double>(projected) / static_cast<double>(cap);
  if (committed >= 0 && committed > cap) {
    add(findings, Verdict::stop,
        "committed spend " + format_usd(committed) + " is past the " + what + " " + format_usd(cap) +
            ": no simplification can undo it");
  } else if (projected > cap) {
    add(findings, Verdict::fail,
        "projected spend " + format_usd(projected) + " is " + format_percent(pct) + " of the " + what + " " +
            format_usd(cap) + ": simplify before producing");
  } else if (static_cast<double>(projected) * 100.0 >= warn_pct * static_cast<double>(cap)) {
    add(findings, Verdict::warn,
        "projected spend " + format_usd(projected) + " is " + format_percent(pct) + " of the " + what + " " +
            format_usd(cap) + " (warn at " + format_number(warn_pct) + "%): rerun cost-optimizer");
  }
}

std::optional<int64_t> cap_of(const json& config, const char* name) {
  if (config.contains("budget") && config["budget"].is_object() && config["budget"].contains(name) &&
      config["budget"][name].is_number()) {
    return project::usd_to_micro(config["budget"][name].get<double>());
  }
  return std::nullopt;
}

// The scene ids of a parsed SCENES, kept by its content (kept_of): every scene's budget step checks
// its own scene's caps, and finding its row by reading every row made each check cost as much as
// the project has scenes.
struct SceneRows {
  std::vector<std::string> ids;               ///< each row's scene_id in order ("" for a row without one)
  std::map<std::string, size_t> rows_naming;  ///< how many rows name each id
};
std::shared_ptr<const SceneRows> scene_rows_of(const std::shared_ptr<const json>& scenes) {
  return kept_of<SceneRows>(scenes, [](const json& list) {
    SceneRows rows;
    for (const json& scene : array_member(list, "rows")) {
      rows.ids.push_back(text_member(scene, "scene_id"));
      ++rows.rows_naming[rows.ids.back()];
    }
    return rows;
  });
}

Result<Findings> budget_caps(const json& output, const json& params, const GateContext& context) {
  AVPS_TRY_ASSIGN(double warn_pct, number_param(params, "warn_pct"));
  const json& config = context.config();
  std::optional<int64_t> project_cap = cap_of(config, "project_cap_usd");
  if (!project_cap || *project_cap <= 0) {
    return make_error(ErrorCode::configuration, "the configuration has no budget/project_cap_usd");
  }
  Findings findings;
  check_cap(findings, "project cap", *project_cap, integer_member(output, "current_spend_micro_usd"),
            integer_member(output, "projected_spend_micro_usd"), warn_pct);
  // In a scene's cost loop (budget/checked_scene, written in by the engine) the scene and shot caps
  // of that scene only; otherwise every scene's.
  const std::string checked_scene =
      config.contains("budget") && config["budget"].is_object() ? config["budget"].value("checked_scene", "") : "";
  // The ids of the scenes whose caps are checked, in SCENES order, one per row that names one
  // (SceneRows): in a scene's cost loop that scene's alone, found without reading every row.
  auto checked_ids = [&](const std::shared_ptr<const json>& scenes) -> std::vector<std::string> {
    if (!scenes) {
      return {};
    }
    const std::shared_ptr<const SceneRows> rows = scene_rows_of(scenes);
    if (checked_scene.empty()) {
      return rows->ids;
    }
    auto named = rows->rows_naming.find(checked_scene);
    return std::vector<std::string>(named == rows->rows_naming.end() ? 0 : named->second, checked_scene);
  };

  // Scene caps: each scene's latest COST_REPORT projection (committed spend per scene is not in
  // the BUDGET_STATUS; the budget governor holds it call by call).
  if (std::optional<int64_t> scene_cap = cap_of(config, "scene_cap_usd"); scene_cap && *scene_cap > 0) {
    AVPS_TRY_ASSIGN(std::shared_ptr<const json> scenes, context.latest_shared("SCENES", ""));
    for (const std::string& id : checked_ids(scenes)) {
      AVPS_TRY_ASSIGN(std::shared_ptr<const json> report, context.latest_shared("COST_REPORT", id));
      if (report) {
        Findings scene_findings;
        check_cap(scene_findings, "scene cap", *scene_cap, -1,
                  integer_member(*report, "total_projected_cost_micro_usd"), warn_pct);
        for (Finding& f : scene_findings) {
          add(findings, f.verdict, id + ": " + f.reason);
        }
      }
    }
  }

  // Shot caps: each shot's projection (proxy + final at its routed tier and regen multiplier) in
  // its scene's latest COST_REPORT, against the shot cap in force for it: budget/shot_caps_usd
  // (caps a person raised for one shot, written in by the engine) or budget/shot_cap_usd.
  std::optional<int64_t> shot_cap = cap_of(config, "shot_cap_usd");
  const json raised = config.contains("budget") && config["budget"].is_object()
                          ? config["budget"].value("shot_caps_usd", json::object())
                          : json::object();
  if ((shot_cap && *shot_cap > 0) || (raised.is_object() && !raised.empty())) {
    AVPS_TRY_ASSIGN(std::shared_ptr<const json> scenes, context.latest_shared("SCENES", ""));
    for (const std::string& scene_id : checked_ids(scenes)) {
      AVPS_TRY_ASSIGN(std::shared_ptr<const json> report, context.latest_shared("COST_REPORT", scene_id));
      for (const json& row : report ? array_member(*report, "shot_breakdown") : empty_array()) {
        const std::string id = text_member(row, "shot_id");
        std::optional<int64_t> cap = shot_cap;
        if (raised.is_object() && raised.contains(id) && raised[id].is_number()) {
          cap = project::usd_to_micro(raised[id].get<double>());
        }
        if (!cap || *cap <= 0) {
          continue;
        }
        Findings shot_findings;
        check_cap(shot_findings, "shot cap", *cap, -1, integer_member(row, "projected_micro_usd"), warn_pct);
        const std::string basis =
            " (hero " + text_member(row, "hero_tier") + ", " + text_member(row, "tier") + ", " +
            format_number(row.contains("duration_s") && row["duration_s"].is_number() ? row["duration_s"].get<double>()
                                                                                      : 0.0) +
            " s, proxy + final)";
        for (Finding& f : shot_findings) {
          add(findings, f.verdict, id + ": " + f.reason + basis);
        }
      }
    }
  }
  return findings;
}

// What tier_quotas reads of one SHOTLIST: each shot's id and hero tier, in row order, and the
// number of shots of each hero tier.
struct PlannedTiers {
  std::vector<std::pair<std::string, std::string>> shots;
  std::map<std::string, int64_t> by_hero;
};

// The planned tiers of a parsed SHOTLIST, kept by its content (kept_of). Every scene's budget step
// counts the premium share over every scene's plan; with this memo a step reads the rows of the
// plans it has not seen, not every row of the project (which made the cost of a budget step grow
// with the project).
std::shared_ptr<const PlannedTiers> planned_tiers_of(const std::shared_ptr<const json>& shotlist) {
  return kept_of<PlannedTiers>(shotlist, [](const json& plan) {
    PlannedTiers tiers;
    for (const json& shot : array_member(plan, "rows")) {
      tiers.shots.emplace_back(text_member(shot, "shot_id"), text_member(shot, "hero_tier"));
      ++tiers.by_hero[tiers.shots.back().second];
    }
    return tiers;
  });
}

// The premium share of every scene's plan, counted under one SCENES and ROUTING_DECISION content
// and one generation of the SHOTLISTs (GateContext::kind_generation): every scene's budget step
// counts it, and while no plan, no scene list and no routing changed the count is the same. An
// entry is used only while the contents it was counted from live and are the ones handed in
// (their weak_ptrs lock to those very objects), as planned_tiers_of's. Under a mutex.
struct PremiumCount {
  int64_t shots = 0;
  int64_t premium = 0;
};
struct KeptPremiumCount {
  std::weak_ptr<const json> scenes;
  std::weak_ptr<const json> routing;
  bool routed = false;  // counted with a routing content (routing may be null)
  int64_t plans_generation = 0;
  PremiumCount count;
};
struct KeptPremium {
  std::mutex mutex;
  std::optional<KeptPremiumCount> last;
};
KeptPremium& kept_premium() {
  static KeptPremium kept;
  return kept;
}

std::optional<PremiumCount> kept_premium_count(const std::shared_ptr<const json>& scenes,
                                               const std::shared_ptr<const json>& routing, int64_t plans_generation) {
  std::lock_guard<std::mutex> lock(kept_premium().mutex);
  const std::optional<KeptPremiumCount>& kept = kept_premium().last;
  if (!kept || !scenes || kept->scenes.lock() != scenes || kept->plans_generation != plans_generation ||
      kept->routed != (routing != nullptr) || (routing && kept->routing.lock() != routing)) {
    return std::nullopt;
  }
  return kept->count;
}

void keep_premium_count(const std::shared_ptr<const json>& scenes, const std::shared_ptr<const json>& routing,
                        int64_t plans_generation, const PremiumCount& count) {
  if (!scenes) {
    return;
  }
  std::lock_guard<std::mutex> lock(kept_premium().mutex);
  kept_premium().last = KeptPremiumCount{scenes, routing, routing != nullptr, plans_generation, count};
}

Result<Findings> tier_quotas(const json& output, const json& params, const GateContext& context) {
  AVPS_TRY_ASSIGN(double premium_pct, number_param(params, "premium_shot_pct"));
  AVPS_TRY_ASSIGN(double t3_pct, number_param(params, "t3_narrative_pct"));
  Findings findings;

  // t3 share of the text-model calls (t1, t2, t3, research) the ledger counted.
  std::map<std::string, int64_t> calls;
  for (const json& usage : array_member(output, "tier_usage_breakdown")) {
    calls[text_member(usage, "tier")] += integer_member(usage, "calls");
  }
  int64_t text_calls = calls["t1"] + calls["t2"] + calls["t3"] + calls["research"];
  if (text_calls > 0 && static_cast<double>(calls["t3"]) * 100.0 > t3_pct * static_cast<double>(text_calls)) {
    add(findings, Verdict::fail,
        "t3 took " + std::to_string(calls["t3"]) + " of " + std::to_string(text_calls) +
            " narrative calls (" +
            format_percent(100.0 * static_cast<double>(calls["t3"]) / static_cast<double>(text_calls)) +
            "), over the quota of " + format_number(t3_pct) + "% (quotas/t3_narrative_pct)");
  }

  // Premium share of the planned shots: each shot's generation tier from the project routing
  // table by hero tier (DESIGN §3 defaults where the table has no row).
  std::map<std::string, std::string> tier_of = {{"A", "gen_premium"}, {"B", "gen_mid"}, {"C", "gen_low"}};
  std::map<std::string, std::string> rerouted;  // shot -> tier: the budget's re-routes (shot_tiers)
  // Shared, not copied: this reads every scene's SHOTLIST at each scene's budget step.
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> routing, context.latest_shared("ROUTING_DECISION", "PROJECT"));
  if (routing) {
    for (const json& row : array_member(*routing, "recommended_model_tier")) {
      if (text_member(row, "task") == "generate" && !text_member(row, "hero_tier").empty()) {
        tier_of[text_member(row, "hero_tier")] = text_member(row, "tier");
      }
    }
    for (const json& row : array_member(*routing, "shot_tiers")) {
      rerouted[text_member(row, "shot_id") + "/" + text_member(row, "hero_tier")] = text_member(row, "tier");
    }
  }
  auto premium_tier = [&](const std::string& hero) {
    auto tier = tier_of.find(hero);
    return tier != tier_of.end() && tier->second == "gen_premium";
  };
  AVPS_TRY_ASSIGN(std::shared_ptr<const json> scenes, context.latest_shared("SCENES", ""));
  AVPS_TRY_ASSIGN(std::optional<int64_t> plans_generation, context.kind_generation("SHOTLIST"));
  std::optional<PremiumCount> kept;
  if (plans_generation) {
    kept = kept_premium_count(scenes, routing, *plans_generation);
  }
  if (!kept) {
    PremiumCount count;
    for (const json& scene : scenes ? array_member(*scenes, "rows") : empty_array()) {
      AVPS_TRY_ASSIGN(std::shared_ptr<const json> shotlist,
                      context.latest_shared("SHOTLIST", text_member(scene, "scene_id")));
      if (!shotlist) {
        continue;
      }
      const std::shared_ptr<const PlannedTiers> planned = planned_tiers_of(shotlist);
      count.shots += static_cast<int64_t>(planned->shots.size());
      if (rerouted.empty()) {
        for (const auto& [hero, n] : planned->by_hero) {
          count.premium += premium_tier(hero) ? n : 0;
        }
        continue;
      }
      for (const auto& [shot_id, hero] : planned->shots) {
        auto own = rerouted.find(shot_id + "/" + hero);
        count.premium += (own != rerouted.end() ? own->second == "gen_premium" : premium_tier(hero)) ? 1 : 0;
      }
    }
    if (plans_generation) {
      keep_premium_count(scenes, routing, *plans_generation, count);
    }
    kept = count;
  }
  const int64_t shots = kept->shots;
  const int64_t premium = kept->premium;
  if (shots > 0 && static_cast<double>(premium) * 100.0 > premium_pct * static_cast<double>(shots)) {
    add(findings, Verdict::fail,
        std::to_string(premium) + " of " + std::to_string(shots) + " planned shots (" +
            format_percent(100.0 * static_cast<double>(premium) / static_cast<double>(shots)) +
            ") are routed to gen_premium, over the quota of " + format_number(premium_pct) +
            "% (quotas/premium_shot_pct); re-allocate the lowest-priority shots");
  }
  return findings;
}

// ---- the registry -----------------------------------------------------------------------------

const std::vector<detail::CheckInfo>& registry() {
  static const std::vector<detail::CheckInfo> k_checks = {
      {"scene_fields_non_empty", "SCENES", scene_fields_non_empty},
      {"scene_ids_unique", "SCENES", scene_ids_unique},
      {"breakdown_matches_scenes", "BREAKDOWN", breakdown_matches_scenes},
      {"lock_hedge_words", "", lock_hedge_words},
      {"truth_verified_claims_cited", "TRUTH", truth_verified_claims_cited},
      {"truth_high_risk_addressed", "TRUTH", truth_high_risk_addressed},
      {"dialogue_every_speaker_scored", "DIALOGUE_CHECK", dialogue_every_speaker_scored},
      {"world_state_continuity", "STATE_DIFF", world_state_continuity},
      {"scene_entities_resolve", "CONTINUITY_REPORT", scene_entities_resolve},
      {"shotlist_ids_resolve", "SHOTLIST", shotlist_ids_resolve},
      {"shotlist_heuristics", "SHOTLIST", shotlist_heuristics},
      {"genpack_section_order", "GENPACK", genpack_section_order},
      {"genpack_locks_verbatim", "GENPACK", genpack_locks_verbatim},
      {"qc_verdict_from_scores", "QC_BATCH", qc_verdict_from_scores},
      {"budget_caps", "BUDGET_STATUS", budget_caps, true},
      {"tier_quotas", "BUDGET_STATUS", tier_quotas, true},
  };
  return k_checks;
}

}  // namespace

namespace detail {

const CheckInfo* find_check_info(std::string_view name) {
  for (const CheckInfo& info : registry()) {
    if (info.name == name) {
      return &info;
    }
  }
  return nullptr;
}

Result<std::vector<Verdict>> qc_row_verdicts(const json& output, const json& params, const GateContext& context) {
  AVPS_TRY_ASSIGN(std::vector<QcRowGrade> grades, qc_row_grades(output, params, context));
  std::vector<Verdict> verdicts;
  for (const QcRowGrade& grade : grades) {
    verdicts.push_back(grade.verdict);
  }
  return verdicts;
}

bool is_engine_check(std::string_view name) {
  const std::vector<std::string>& names = engine_check_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace detail

const Check* find_check(std::string_view name) {
  const detail::CheckInfo* info = detail::find_check_info(name);
  return info == nullptr ? nullptr : &info->check;
}

bool check_recomputable(std::string_view name) {
  const detail::CheckInfo* info = detail::find_check_info(name);
  return info != nullptr && !info->reads_live_state;
}

std::vector<std::string> check_names() {
  std::vector<std::string> names;
  for (const detail::CheckInfo& info : registry()) {
    names.emplace_back(info.name);
  }
  return names;
}

const std::vector<std::string>& engine_check_names() {
  static const std::vector<std::string> k_names = {"genpack_changed_on_regen", "regen_limit_with_analyzer",
                                                   "run_log_complete", "regen_rules_adjust_the_shot",
                                                   "regen_simplifies_repeated_drift"};
  return k_names;
}

}  // namespace avps::gates
