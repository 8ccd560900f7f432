// Sim generators of the continuity layer: character-lock, set-lock, voice-lock,
// world-state-tracker, continuity-supervisor.
//
// Locks describe the brief's character and location lines and carry no hedge words (every string
// taken from the brief goes through dehedge()). The tracker turns the scene's BREAKDOWN state
// changes (the grammar in sim_internal.hpp) into a STATE_DIFF and proves it continuity-clean with
// builtins::check_world_state_continuity before returning it.

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include "avps/artifacts/names.hpp"
#include "avps/builtins/world_state.hpp"
#include "sim_internal.hpp"

namespace avps::backends::sim {
namespace {

bool has_any(std::string_view text, std::initializer_list<const char*> vocabulary) {
  for (const char* word : vocabulary) {
    if (has_word(text, word)) {
      return true;
    }
  }
  return false;
}

// Clauses of a description split at , ; . ( ) — like injury_clauses, without the filter.
std::vector<std::string> clauses(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  for (char c : text) {
    if (c == ',' || c == ';' || c == '.' || c == '(' || c == ')') {
      if (!trim(current).empty()) {
        out.push_back(trim(current));
      }
      current.clear();
    } else {
      current += c;
    }
  }
  if (!trim(current).empty()) {
    out.push_back(trim(current));
  }
  return out;
}

// A phrase with its first letter upper-cased and no final full stop ("grey wool jumper" -> "Grey wool
// jumper").
std::string phrase(std::string text) {
  text = dehedge(trim(text));
  while (!text.empty() && text.back() == '.') {
    text.pop_back();
  }
  if (!text.empty()) {
    text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  }
  return text.empty() ? std::string("As established") : text;
}

// What a character line of the brief says, sorted into the lock's fields.
struct Portrait {
  std::string age;
  std::string role;
  std::vector<std::string> hair;
  std::vector<std::string> eyes;
  std::vector<std::string> marks;
  std::vector<std::string> outfit;
  std::vector<std::string> accessories;
  std::vector<std::string> build;
  std::vector<std::string> traits;     // single adjectives: temperament
  std::vector<std::string> behaviour;  // longer clauses: stress behaviour
  std::vector<std::string> knowledge;
  std::vector<std::string> colours;
};

Portrait portrait_of(const BriefEntity* entity) {
  Portrait p;
  if (entity == nullptr) {
    return p;
  }
  std::vector<std::string> parts = clauses(entity->description);
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& c = parts[i];
    std::vector<std::string> words = words_of(c);
    if (words.empty()) {
      continue;
    }
    bool number = std::all_of(c.begin(), c.end(),
                              [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) != 0; });
    for (const std::string& w : words) {
      for (const char* colour : {"grey", "gray", "navy", "white", "black", "brown", "blue", "green", "red",
                                 "yellow", "amber", "cream", "khaki", "dark", "silver"}) {
        if (w == colour && std::find(p.colours.begin(), p.colours.end(), w) == p.colours.end()) {
          p.colours.push_back(w);
        }
      }
    }
    if (number && p.age.empty()) {
      p.age = c;
    } else if (has_any(c, {"hair", "braid", "beard", "bald", "moustache", "mustache", "ponytail", "curls",
                           "fringe"})) {
      p.hair.push_back(c);
    } else if (has_any(c, {"eyes", "eyed"})) {
      p.eyes.push_back(c);
    } else if (has_any(c, {"scar", "tattoo", "birthmark", "freckles", "mole", "mark"}) ||
               (!injury_clauses(c).empty() && !has_any(c, {"fever", "feverish"}))) {
      p.marks.push_back(c);  // visible marks and injuries; an illness is not a mark
    } else if (has_any(c, {"thinks", "believes", "knows", "knowledge", "expert", "trained", "wants"})) {
      p.knowledge.push_back(c);
    } else if (has_any(c, {"jumper",   "coat",      "oilskin", "cardigan", "greatcoat", "jacket",
                           "trousers", "shirt",     "dress",   "skirt",    "boots",     "hat",
                           "cap",      "scarf",     "uniform", "apron",    "overalls",  "hoodie",
                           "suit",     "waistcoat", "sweater", "gloves",   "jeans",     "blouse"})) {
      p.outfit.push_back(c);
    } else if (has_any(c, {"spectacles", "glasses", "watch", "ring", "badge", "necklace", "earrings",
                           "clipboard", "stick", "cane", "lanyard", "bag", "satchel"})) {
      p.accessories.push_back(c);
    } else if (has_any(c, {"tall", "short", "lean", "stocky", "broad", "slight", "thin", "heavy", "wiry",
                           "slim", "sturdy", "frail"}) &&
               words.size() <= 3) {
      p.build.push_back(c);
    } else if (i <= 1 && (words.front() == "the" || words.front() == "a" || words.front() == "an")) {
      p.role = c;
    } else if (words.size() == 1) {
      p.traits.push_back(c);
    } else if (words.size() == 3 && words[1] == "and") {
      p.traits.push_back(words[0]);  // "practical and fair"
      p.traits.push_back(words[2]);
    } else {
      p.behaviour.push_back(c);
    }
  }
  return p;
}

std::string first_or(const std::vector<std::string>& items, const std::string& fallback) {
  return items.empty() ? fallback : phrase(items.front());
}

std::vector<std::string> phrases(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const std::string& item : items) {
    out.push_back(phrase(item));
  }
  return out;
}

int age_number(const std::string& text) {
  int n = 0;
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) == 0) {
    ++i;
  }
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0 && n < 1000; ++i) {
    n = n * 10 + (text[i] - '0');
  }
  return n;
}

// Which scenes an entity appears in, from the SCENES input (whole table, entity rows or one row).
std::vector<json> scenes_with(const Call& call, const std::string& id, const char* member) {
  std::vector<json> out;
  for (const json& row : rows_of(input(call, "SCENES"))) {
    std::vector<std::string> ids = strs(row, member);
    if (str(row, member) == id || std::find(ids.begin(), ids.end(), id) != ids.end()) {
      out.push_back(row);
    }
  }
  return out;
}

std::string hedge_free_or(const std::string& text, const std::string& fallback) {
  std::string out = dehedge(text);
  return out.empty() ? fallback : out;
}

}  // namespace

// ---- character-lock ---------------------------------------------------------------------------

Outputs character_lock(Call& call) {
  std::string fallback = call.brief.characters.empty() ? "LEAD" : call.brief.characters.front().id;
  const std::string id = entity_id(call, fallback);
  const BriefEntity* entity = call.brief.character(id);
  Portrait p = portrait_of(entity);
  Rng& rng = call.rng;

  std::string age = p.age.empty() ? std::to_string(rng.range(25, 55)) : p.age;
  int years = age_number(age);
  std::string age_range =
      years > 0 ? std::to_string(std::max(1, years - 1)) + "-" + std::to_string(years + 1) : age;
  std::string hair =
      first_or(p.hair, rng.pick({"Short dark hair, kept neat", "Shoulder-length brown hair, tied back",
                                 "Close-cropped grey hair"}));
  std::string eyes = first_or(p.eyes, rng.pick({"Dark brown", "Grey-blue", "Hazel", "Green-grey"}));
  std::string build =
      first_or(p.build, years >= 55   ? "Spare and slightly bent, moves with care"
                        : years <= 20 ? "Slight and quick"
                                      : rng.pick({"Average height, solid build", "Tall and lean"}));
  std::string marks =
      p.marks.empty() ? std::string("No visible scars or tattoos") : join(phrases(p.marks), "; ");
  std::string outfit =
      p.outfit.empty() ? rng.pick({"Plain working clothes in muted tones", "Dark coat over plain clothes"})
                       : join(phrases(p.outfit), ", ");
  std::string palette = p.colours.empty() ? std::string("Muted tones of the setting; no saturated colours")
                                          : phrase(join(p.colours, ", ")) + "; no saturated colours";
  std::vector<std::string> accessories = phrases(p.accessories);
  std::string temperament =
      p.traits.empty() ? rng.pick({"Steady", "Guarded", "Warm but firm"}) : phrase(join(p.traits, ", "));
  std::string stress = rng.pick(
      {"Goes quiet and busies their hands", "Talks faster and plans aloud", "Turns formal and precise"});
  for (const std::string& b : p.behaviour) {
    if (has_any(b, {"fear", "hides", "anger", "temper", "panic", "silent", "quiet", "calm", "nervous",
                    "stress"})) {
      stress = phrase(b);
      break;
    }
  }
  std::vector<std::string> knowledge;
  if (!p.role.empty()) {
    knowledge.push_back("Knows their place in the story: " + dehedge(p.role));
  }
  for (const std::string& k : p.knowledge) {
    knowledge.push_back(phrase(k));
  }
  if (knowledge.empty()) {
    knowledge.push_back("Knows only what the first scene shows");
  }
  std::vector<std::string> signature;
  for (const std::string& m : p.marks) {
    signature.push_back(phrase(m));
  }
  signature.push_back(hair);
  if (!p.outfit.empty()) {
    signature.push_back(phrase(p.outfit.front()));
  }
  signature.resize(std::min<size_t>(signature.size(), 3));
  std::vector<std::string> forbidden = {"Hair colour, length or style", "Eye colour (" + eyes + ")",
                                        "Apparent age outside " + age_range};
  for (const std::string& m : p.marks) {
    forbidden.push_back(phrase(m) + ": must stay visible and unchanged");
  }
  forbidden.push_back("The baseline outfit without a scene's justification");

  json lock = {
      {"format_version", 1},
      {"kind", "CHAR_LOCK"},
      {"entity_id", id},
      {"canonical_appearance",
       {{"age_range", age_range},
        {"build", build},
        {"hair", hair},
        {"eyes", eyes},
        {"distinguishing_marks", marks}}},
      {"wardrobe_baseline",
       {{"default_outfit", outfit},
        {"color_palette", palette},
        {"accessories", accessories},
        {"environmental_variants", {"Outdoors in rain: the same outfit, wet and darker; nothing added"}}}},
      {"behavioral_baseline",
       {{"speech_patterns", rng.pick({"Short, direct sentences", "Measured and plain", "Dry understatement",
                                      "Questions first, answers later"})},
        {"temperament", temperament},
        {"decision_style", rng.pick({"Decides fast and holds to it", "Weighs the facts, then commits",
                                     "Holds back until cornered, then acts"})},
        {"stress_behavior", stress},
        {"default_emotional_tone", rng.pick({"Guarded calm", "Quiet focus", "Dry warmth"})}}},
      {"voice_profile",
       {{"tone", years >= 50                ? "Low and weathered"
                 : years > 0 && years <= 20 ? "Clear and quick"
                                            : "Even and warm"},
        {"cadence", rng.pick({"Even, with pauses before hard answers", "Brisk, clipped at the ends of lines",
                              "Slow and deliberate"})}}},
      {"knowledge_state_at_introduction", knowledge},
      {"signature_identifiers", signature},
      {"forbidden_drift", forbidden},
  };
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    lock["canonical_appearance"]["eyes"] = eyes + ", maybe lighter in daylight";
    reasons.push_back("hedge word \"maybe\" in canonical_appearance/eyes");
  }
  lock["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL", json::object(), reasons);
  return Outputs{{"CHAR_LOCK", lock}};
}

// ---- set-lock ---------------------------------------------------------------------------------

Outputs set_lock(Call& call) {
  std::string fallback = call.brief.locations.empty() ? "MAIN_SET" : call.brief.locations.front().id;
  const std::string id = entity_id(call, fallback);
  const BriefEntity* entity = call.brief.location(id);
  const std::string name = entity != nullptr ? entity->name : id;
  const std::string description = entity != nullptr ? entity->description : "";
  Rng& rng = call.rng;

  std::vector<std::string> parts = clauses(description);
  std::string geometry =
      parts.empty() ? "A single space, as the first wide shot establishes it" : phrase(parts.front());
  std::vector<std::string> anchors;
  for (size_t i = 1; i < parts.size() && anchors.size() < 5; ++i) {
    anchors.push_back(phrase(parts[i]));
  }
  for (const char* extra :
       {"The main entrance, framed the same way in every wide shot",
        "The dominant material of the walls and floor", "The main light source, always in the same place"}) {
    if (anchors.size() >= 3) {
      break;
    }
    anchors.push_back(extra);
  }
  std::vector<std::string> props;
  if (entity != nullptr) {
    for (const auto& [prop, text] : set_items(*entity)) {
      props.push_back(phrase(text));
    }
  }
  if (props.empty()) {
    props.push_back("The fixed furniture of the first wide shot, in the same places");
  }
  const std::string all = lower(name + " " + description);
  bool exterior =
      has_any(all, {"jetty", "cliff", "beach", "street", "yard", "field", "dock", "quay", "harbour",
                    "landing", "garden", "road", "exterior", "outside", "forest", "square", "shore", "deck"});
  bool lamp = has_any(all, {"lamp", "amber", "candle", "lantern", "fire", "stove", "range"});
  std::string temperature = exterior ? "Overcast daylight, about 6500 K; blue-grey"
                            : lamp   ? "Warm amber lamp light, about 2200 K"
                                     : "Warm tungsten practicals, about 3000 K";
  std::string source = exterior ? "The overcast sky; practical lamps only after dark"
                       : lamp   ? "The lamp named in the visual anchors"
                                : "The practical lamps of the room";
  std::string weather;
  for (const char* w : {"storm", "rain", "snow", "fog", "wind"}) {
    if (has_word(call.brief.premise + " " + description, w)) {
      weather = std::string("Storm weather: rain and wind throughout");
      break;
    }
  }
  std::vector<std::string> times;
  for (const json& row : scenes_with(call, id, "location")) {
    std::string t = str(row, "time_of_day");
    if (!t.empty() && std::find(times.begin(), times.end(), t) == times.end()) {
      times.push_back(t);
    }
  }
  std::vector<std::string> tone;
  if (!call.brief.genre_tone.empty()) {
    tone.push_back(phrase(clauses(call.brief.genre_tone).empty() ? call.brief.genre_tone
                                                                 : clauses(call.brief.genre_tone).front()));
  }
  tone.push_back(
      rng.pick({"Weathered and lived-in; nothing glossy", "Quiet and close; the space holds the tension"}));
  std::vector<std::string> forbidden = {"Layout changes", "Extra light sources",
                                        "Any visual anchor missing or moved"};
  if (!call.brief.period.empty()) {
    forbidden.push_back("Objects later than " + call.brief.period);
  }

  json environment = {
      {"time_of_day_constraints", times.empty()
                                      ? std::string("As each scene's time of day states")
                                      : dehedge("Only the times of day of its scenes: " + join(times))},
      {"cleanliness_decay_level", rng.pick({"Worn and lived-in; salt and damp on every surface",
                                            "Clean but old; scuffed floors and faded paint"})},
      {"ambient_noise_tone",
       exterior ? "Wind, sea and rain" : "Muffled weather outside; a clock or a fire inside"},
  };
  if (!weather.empty()) {
    environment["weather"] = weather;
  }
  json lock = {
      {"format_version", 1},
      {"kind", "SET_LOCK"},
      {"entity_id", id},
      {"core_physical_layout",
       {{"room_geometry", geometry},
        {"entry_exit_points", exterior ? "Open on the seaward side; a path or stair leads back inland"
                                       : "One door in, the same door out; the window wall opposite"},
        {"window_placement",
         exterior ? "None: an exterior set" : "Windows on one wall only, facing the weather"},
        {"structural_constraints", dehedge("Fixed as in the first wide shot of " + clause(name))},
        {"spatial_relationships", "The main anchor stays at the centre of the wide frame"}}},
      {"visual_anchors", anchors},
      {"lighting_rules",
       {{"light_temperature", temperature},
        {"primary_light_source", source},
        {"shadow_intensity", exterior ? "Soft, diffuse shadows" : "Deep shadows away from the source"},
        {"contrast_profile", exterior ? "Low contrast, muted" : "High contrast around the source"},
        {"allowed_variation_range", "Handheld lamps carried by characters only; no added fixtures"}}},
      {"environmental_conditions", environment},
      {"prop_anchors", props},
      {"tonal_atmosphere_rules", tone},
      {"forbidden_drift", forbidden},
  };
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    lock["lighting_rules"]["allowed_variation_range"] = "Perhaps a second lamp if the shot needs it";
    reasons.push_back("hedge word \"perhaps\" in lighting_rules/allowed_variation_range");
  }
  lock["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL", json::object(), reasons);
  return Outputs{{"SET_LOCK", lock}};
}

// ---- voice-lock -------------------------------------------------------------------------------

Outputs voice_lock(Call& call) {
  std::map<std::string, json> chars = locks_of(call, "CHAR_LOCK");
  std::string fallback = !chars.empty()                  ? chars.begin()->first
                         : call.brief.characters.empty() ? "LEAD"
                                                         : call.brief.characters.front().id;
  const std::string id = entity_id(call, fallback);
  json char_lock = chars.count(id) ? chars[id] : (chars.size() == 1 ? chars.begin()->second : json::object());
  Portrait p = portrait_of(call.brief.character(id));
  Rng& rng = call.rng;

  int years = age_number(str(char_lock.value("canonical_appearance", json::object()), "age_range", p.age));
  std::string temperament =
      lower(str(char_lock.value("behavioral_baseline", json::object()), "temperament", join(p.traits)));
  bool animated =
      has_any(temperament, {"stubborn", "quick", "animated", "fiery", "restless", "passionate", "angry"});
  std::string timbre = str(char_lock.value("voice_profile", json::object()), "tone",
                           rng.pick({"Warm", "Dry and clear", "Husky"}));
  const std::string setting = lower(call.brief.premise);
  std::string region = has_any(setting, {"island", "coast", "harbour", "sea"})
                           ? "Coastal regional English"
                           : "Regional English of the setting";
  if (!call.brief.period.empty()) {
    region += ", as spoken in " + call.brief.period;
  }
  json lock = {
      {"format_version", 1},
      {"kind", "VOICE_LOCK"},
      {"entity_id", id},
      {"vocal_tone_profile",
       {{"pitch", years >= 50                ? "low"
                  : years > 0 && years <= 20 ? "high"
                                             : "mid"},
        {"timbre", hedge_free_or(timbre, "Warm")},
        {"energy", animated ? "animated" : "restrained"}}},
      {"cadence_rhythm",
       {{"sentence_length", rng.pick({"Short, complete sentences", "Medium length; finishes every thought"})},
        {"pause_patterns", rng.pick({"Pauses before bad news, never before orders",
                                     "Pauses to think, then speaks in one breath"})},
        {"speed", years >= 50 ? "slow"
                  : animated  ? "fast"
                              : "moderate"},
        {"interruptions_hesitations",
         animated ? "Cuts in when others stall" : "Waits for others to finish"}}},
      {"accent_dialect",
       {{"region", region},
        {"strength", "Light"},
        {"vocabulary_tendencies", p.role.empty() ? std::string("Plain working vocabulary")
                                                 : "The working vocabulary of " + dehedge(p.role)},
        {"slang_level", "Low"}}},
      {"emotional_delivery_range",
       {{"default_emotional_state", dehedge(str(char_lock.value("behavioral_baseline", json::object()),
                                                "default_emotional_tone", "Guarded calm"))},
        {"upper_intensity_limit",
         animated ? "A raised, urgent voice; never a scream" : "A hard whisper; never a shout"},
        {"lower_emotional_baseline", "Flat and quiet"},
        {"stress_reaction_patterns", animated ? "Speaks faster and louder" : "Goes quieter and slower"}}},
      {"speech_pattern_constraints",
       {{"vocabulary_complexity", "Plain"},
        {"swearing_frequency", "Rare, only under pressure"},
        {"figurative_language", "Almost none"},
        {"directness", animated ? "Direct" : "Indirect until pressed"}}},
      {"forbidden_drift",
       {"Accent switching", "Modern slang", "Pitch changes between scenes", "Shouting outside the range"}},
  };
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    lock["cadence_rhythm"]["sentence_length"] = "Short, usually unfinished";
    reasons.push_back("hedge word \"usually\" in cadence_rhythm/sentence_length");
  }
  lock["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL", json::object(), reasons);
  return Outputs{{"VOICE_LOCK", lock}};
}

// ---- world-state-tracker ----------------------------------------------------------------------

namespace {

bool in_list(const json& list, const std::string& item) {
  return list.is_array() && std::find(list.begin(), list.end(), json(item)) != list.end();
}

// Builds one scene's STATE_DIFF against `state`, keeping every list change applicable (no
// duplicate add, no remove of an absent item).
constexpr size_t k_remembered_scenes = 8;

class DiffBuilder {
 public:
  DiffBuilder(const json& state, std::string scene) : m_state(state) {
    m_diff = {{"format_version", 1},
              {"kind", "STATE_DIFF"},
              {"scene_id", std::move(scene)},
              {"character_updates", json::object()},
              {"prop_updates", json::object()},
              {"location_updates", json::object()},
              {"timeline_update", json::object()},
              {"rule_updates", json::object()}};
  }

  bool known_character(const std::string& c) const { return m_state["characters"].contains(c); }
  bool known_prop(const std::string& p) const {
    return m_state["props"].contains(p) || m_diff["prop_updates"].contains(p);
  }

  json& character(const std::string& c) {
    json& updates = m_diff["character_updates"];
    if (!updates.contains(c)) {
      updates[c] = json::object();
    }
    return updates[c];
  }

  // The list as it will be after this diff.
  json current(const std::string& c, const char* field) const {
    json list = known_character(c) ? m_state["characters"][c].value(field, json::array()) : json::array();
    const json& updates = m_diff["character_updates"];
    if (updates.contains(c) && updates[c].contains(field)) {
      for (const json& item : updates[c][field]["remove"]) {
        list.erase(std::remove(list.begin(), list.end(), item), list.end());
      }
      for (const json& item : updates[c][field]["add"]) {
        list.push_back(item);
      }
    }
    return list;
  }

  void add(const std::string& c, const char* field, const std::string& item) {
    if (item.empty() || in_list(current(c, field), item)) {
      return;
    }
    change(c, field)["add"].push_back(item);
  }

  void remove(const std::string& c, const char* field, const std::string& item) {
    if (!in_list(current(c, field), item)) {
      return;
    }
    json& list = change(c, field);
    if (in_list(list["add"], item)) {
      list["add"].erase(std::remove(list["add"].begin(), list["add"].end(), json(item)), list["add"].end());
    } else {
      list["remove"].push_back(item);
    }
  }

  std::string owner_of(const std::string& prop) const {
    if (m_diff["prop_updates"].contains(prop) && m_diff["prop_updates"][prop].contains("owner")) {
      return m_diff["prop_updates"][prop]["owner"].get<std::string>();
    }
    return m_state["props"].contains(prop) ? m_state["props"][prop].value("owner", std::string())
                                           : std::string();
  }

  json& prop(const std::string& p) {
    json& updates = m_diff["prop_updates"];
    if (!updates.contains(p)) {
      updates[p] = json::object();
    }
    return updates[p];
  }

  json& diff() { return m_diff; }

 private:
  json& change(const std::string& c, const char* field) {
    json& entry = character(c);
    if (!entry.contains(field)) {
      entry[field] = {{"add", json::array()}, {"remove", json::array()}};
    }
    return entry[field];
  }

  const json& m_state;
  json m_diff;
};

// "ALEX gives up RED_NOTEBOOK to MARIA" -> {ALEX, RED_NOTEBOOK, MARIA}.
std::optional<std::array<std::string, 3>> transfer_of(const std::string& change) {
  std::vector<std::string> w;
  size_t begin = 0;
  while (begin < change.size()) {
    size_t end = change.find(' ', begin);
    end = end == std::string::npos ? change.size() : end;
    if (end > begin) {
      w.push_back(change.substr(begin, end - begin));
    }
    begin = end + 1;
  }
  if (w.size() < 4 || (w[1] != "gives" && w[1] != "hands" && w[1] != "passes")) {
    return std::nullopt;
  }
  size_t at = w[2] == "up" || w[2] == "over" ? 3 : 2;
  if (at + 2 >= w.size() || w[at + 1] != "to") {
    return std::nullopt;
  }
  std::string to = w[at + 2];
  while (!to.empty() && !std::isalnum(static_cast<unsigned char>(to.back()))) {
    to.pop_back();
  }
  if (!artifacts::is_entity_id(w[0]) || !artifacts::is_entity_id(w[at]) || !artifacts::is_entity_id(to)) {
    return std::nullopt;
  }
  return std::array<std::string, 3>{w[0], w[at], to};
}

// "<ID> <verb> <rest>" -> rest, when the change has that shape.
std::optional<std::string> after_verb(const std::string& change, const std::string& id, const char* verb) {
  std::string prefix = id + " " + verb + " ";
  if (change.rfind(prefix, 0) != 0) {
    return std::nullopt;
  }
  std::string rest = trim(change.substr(prefix.size()));
  while (!rest.empty() && rest.back() == '.') {
    rest.pop_back();
  }
  return rest.empty() ? std::nullopt : std::optional<std::string>(rest);
}

std::string first_token(const std::string& text) {
  size_t end = 0;
  while (end < text.size() &&
         (std::isalnum(static_cast<unsigned char>(text[end])) != 0 || text[end] == '_')) {
    ++end;
  }
  return text.substr(0, end);
}

std::string upper_first(std::string text) {
  if (!text.empty()) {
    text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  }
  return text;
}

std::string elapsed_after(const std::string& scene) {
  long number = scene.size() > 1 ? std::stol(scene.substr(1)) : 1;
  long minutes = number * 75;
  return "About " + std::to_string(minutes / 60) + " h " + std::to_string(minutes % 60) +
         " min into the story";
}

std::vector<std::string> present_of(const std::optional<json>& breakdown, const std::optional<json>& scene) {
  std::vector<std::string> out;
  for (const std::optional<json>* source : {&breakdown, &scene}) {
    if (*source && out.empty()) {
      for (const std::string& c : strs(**source, "characters_present")) {
        if (artifacts::is_entity_id(c)) {
          out.push_back(c);
        }
      }
    }
  }
  return out;
}

}  // namespace

Outputs world_state_tracker(Call& call) {
  const json state = world_state_of(call);
  const std::string scene = scene_id(call);
  std::optional<json> row = scene_row(call);
  std::optional<json> breakdown = row_of(call, "BREAKDOWN", "scene_id", scene);
  if (breakdown && str(*breakdown, "scene_id") != scene) {
    breakdown.reset();  // the only row given is another scene's
  }
  const std::vector<std::string> present = present_of(breakdown, row);
  std::string location = row ? str(*row, "location") : "";
  if (location.empty() && breakdown && !strs(*breakdown, "locations_used").empty()) {
    location = strs(*breakdown, "locations_used").front();
  }
  const std::string time = row ? str(*row, "time_of_day", "Day") : "Day";
  const std::vector<std::string> changes =
      breakdown ? strs(*breakdown, "state_changes") : std::vector<std::string>();
  auto is_present = [&](const std::string& c) {
    return present.empty() || std::find(present.begin(), present.end(), c) != present.end();
  };

  const std::string condition =
      call.rng.pick({"As the set lock describes", "Unchanged since it was last seen",
                     "In use; a few loose things out of place", "Quiet and in order"});
  // Everything the scene causes, from the BREAKDOWN grammar (sim_internal.hpp).
  auto build = [&](bool with_props_and_injuries) {
    DiffBuilder diff(state, scene);
    for (const std::string& c : present) {
      json& entry = diff.character(c);
      bool moved =
          !diff.known_character(c) || state["characters"][c].value("location", std::string()) != location;
      if (artifacts::is_entity_id(location) && moved) {
        entry["location"] = location;
      }
    }
    for (const std::string& change : changes) {
      const std::string subject = first_token(change);
      if (auto fact = after_verb(change, subject, "learns"); fact && is_present(subject)) {
        diff.add(subject, "knowledge", upper_first(*fact));
      } else if (auto feeling = after_verb(change, subject, "feels"); feeling && is_present(subject)) {
        diff.character(subject)["emotional_state"] = upper_first(*feeling);
      } else if (!with_props_and_injuries) {
        continue;
      } else if (auto carried = after_verb(change, subject, "carries"); carried && is_present(subject)) {
        std::string prop = first_token(*carried);
        if (artifacts::is_entity_id(prop) && !diff.known_prop(prop)) {
          diff.prop(prop) = {{"owner", subject}, {"location", subject}, {"status", "Carried by " + subject}};
          diff.add(subject, "inventory", prop);
        }
      } else if (auto transfer = transfer_of(change)) {
        const auto& [from, prop, to] = *transfer;
        if (diff.owner_of(prop) == from && is_present(to) && from != to) {
          diff.remove(from, "inventory", prop);
          diff.add(to, "inventory", prop);
          json& update = diff.prop(prop);
          update["owner"] = to;
          update["location"] = to;
        }
      } else if (auto place = after_verb(change, subject, "is in"); place) {
        std::string set = first_token(*place);
        if (artifacts::is_entity_id(subject) && artifacts::is_entity_id(set) && !diff.known_prop(subject)) {
          diff.prop(subject) = {{"owner", ""}, {"location", set}, {"status", "In place"}};
        }
      } else if (change.size() > subject.size() + 2 && change.compare(subject.size(), 2, ": ") == 0 &&
                 artifacts::is_entity_id(subject) && is_present(subject)) {
        std::string text = trim(change.substr(subject.size() + 2));
        json injuries = diff.current(subject, "injuries");
        if (describes_heal(text) && !injuries.empty()) {
          // Heal the injury that shares the most words with the statement.
          std::string best = injuries.front().get<std::string>();
          size_t best_score = 0;
          for (const json& injury : injuries) {
            size_t score = 0;
            for (const std::string& w : words_of(injury.get<std::string>())) {
              score += has_word(text, w) ? 1 : 0;
            }
            if (score > best_score) {
              best_score = score;
              best = injury.get<std::string>();
            }
          }
          diff.remove(subject, "injuries", best);
        } else if (!injury_clauses(text).empty()) {
          diff.add(subject, "injuries", upper_first(text));
        }
      }
    }
    // Memory of past scenes stays bounded: beyond the last k_remembered_scenes "What happened
    // in" facts, the oldest are retired, so the state (and every request that reads it) does not
    // grow with the length of the film (DESIGN §1.5).
    for (const std::string& c : present) {
      std::vector<std::string> remembered;
      for (const json& item : diff.current(c, "knowledge")) {
        if (item.is_string() && item.get<std::string>().rfind("What happened in ", 0) == 0) {
          remembered.push_back(item.get<std::string>());
        }
      }
      for (size_t k = 0; k + k_remembered_scenes < remembered.size(); ++k) {
        diff.remove(c, "knowledge", remembered[k]);
      }
    }
    // The scene's set and the clock.
    if (artifacts::is_entity_id(location)) {
      diff.diff()["location_updates"][location] = {
          {"condition", condition},
          {"lighting_state", time + ": as the set lock rules"},
          {"notes", "Last seen in " + scene},
      };
    }
    diff.diff()["timeline_update"] = {{"current_scene", scene}, {"elapsed_time", elapsed_after(scene)}};
    // Entries that change nothing are dropped (an empty update of a known character).
    json& updates = diff.diff()["character_updates"];
    for (auto it = updates.begin(); it != updates.end();) {
      it = it.value().empty() && diff.known_character(it.key()) ? updates.erase(it) : std::next(it);
    }
    return diff.diff();
  };

  json breakdown_row = breakdown ? *breakdown
                                 : json{{"scene_id", scene},
                                        {"characters_present", present},
                                        {"props_used", json::array()},
                                        {"state_changes", json::array()}};
  json diff = build(true);
  if (!builtins::check_world_state_continuity(state, diff, breakdown_row).empty()) {
    // Something in the inputs does not add up (a transfer of a prop the state never had):
    // keep only what cannot break continuity.
    diff = build(false);
  }

  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    // An injury that vanishes without a heal; without one, a character nobody recorded.
    std::string injured;
    for (const auto& [c, entry] : state["characters"].items()) {
      if (injured.empty() && entry.contains("injuries") && entry["injuries"].is_array() &&
          !entry["injuries"].empty() && !diff["character_updates"].contains(c)) {
        injured = c;
      }
    }
    for (const auto& [c, entry] : state["characters"].items()) {
      if (injured.empty() && entry.contains("injuries") && entry["injuries"].is_array() &&
          !entry["injuries"].empty()) {
        injured = c;
      }
    }
    if (!injured.empty()) {
      std::string injury = state["characters"][injured]["injuries"].front().get<std::string>();
      DiffBuilder builder(state, scene);
      builder.diff() = diff;
      builder.remove(injured, "injuries", injury);
      diff = builder.diff();
      reasons.push_back(injured + "'s injury disappears without a heal");
    } else {
      std::string ghost = "UNRECORDED_WITNESS";
      while (state["characters"].contains(ghost) ||
             std::find(present.begin(), present.end(), ghost) != present.end()) {
        ghost += "_X";
      }
      diff["character_updates"][ghost] = {
          {"knowledge", {{"add", {"Saw what happened in " + scene}}, {"remove", json::array()}}}};
      if (artifacts::is_entity_id(location)) {
        diff["character_updates"][ghost]["location"] = location;
      }
      reasons.push_back(ghost + " is neither in the world state nor in the scene");
    }
  }
  Outputs out{{"STATE_DIFF", diff}};
  if (Result<json> applied = builtins::apply_state_diff(state, diff); applied.ok()) {
    out["WORLD_STATE"] = *applied;  // what apply_state_diff will write, for a request that asks for it
  }
  (void)reasons;  // a STATE_DIFF has no gate object: the verdict is the world_state_continuity check's
  return out;
}

// ---- continuity-supervisor --------------------------------------------------------------------

Outputs continuity_supervisor(Call& call) {
  const std::string scene = scene_id(call);
  std::optional<json> row = scene_row(call);
  std::vector<std::string> cast = row ? strs(*row, "characters_present") : std::vector<std::string>();
  const std::string location = row ? str(*row, "location", "the set") : std::string("the set");
  const json state = world_state_of(call);
  std::map<std::string, json> char_locks = locks_of(call, "CHAR_LOCK");
  std::map<std::string, json> set_locks = locks_of(call, "SET_LOCK");
  const json* diff = input(call, "STATE_DIFF");

  std::vector<std::string> locked;
  for (const std::string& c : cast) {
    if (char_locks.count(c)) {
      locked.push_back(c);
    }
  }
  std::string injured;
  for (const std::string& c : cast) {
    if (injured.empty() && state["characters"].contains(c) &&
        !state["characters"][c].value("injuries", json::array()).empty()) {
      injured = c;
    }
  }
  json report = {
      {"format_version", 1},
      {"kind", "CONTINUITY_REPORT"},
      {"target", scene},
      {"character_consistency_check",
       cast.empty()
           ? std::string("No characters appear in " + scene + ".")
           : join(cast) + " match" + (cast.size() == 1 ? "es" : "") + " their locks in " + scene +
                 (locked.size() == cast.size() ? "." : "; locks were not all provided to this check.")},
      {"set_consistency_check",
       location + (set_locks.count(location) ? " matches its set lock: layout, anchors and light."
                                             : " follows the scene's description.")},
      {"prop_inventory_check",
       diff != nullptr && diff->contains("prop_updates") && !(*diff)["prop_updates"].empty()
           ? "Every prop change in the STATE_DIFF of " + scene + " is an explicit transfer or introduction."
           : "No prop changes hands in " + scene + "; inventories carry over unchanged."},
      {"injury_emotional_state_check",
       injured.empty() ? "No injuries to carry; emotional states follow from the scene's events."
                       : injured + "'s injuries from the world state persist through " + scene + "."},
      {"knowledge_state_check",
       call.rng.pick({"Each character's new knowledge comes from what happens on screen in " + scene + ".",
                      "Nobody in " + scene + " uses knowledge the world state does not record.",
                      "What each character learns in " + scene + " is shown or told on screen."})},
      {"timeline_alignment_check",
       "The world state's clock moves forward to " + scene + "; the time of day matches the scene row."},
      {"contradictions_found", json::array()},
      {"severity_level", "None"},
      {"recommended_corrections", json::array()},
  };
  int low = 0;
  int high = 0;
  if (call.mode == Mode::fail) {
    std::string who = !injured.empty() ? injured : !cast.empty() ? cast.front() : std::string();
    std::string description =
        !injured.empty()
            ? injured + "'s injury from the world state is missing from the scene's action in " + scene + "."
            : "The scene places " + (who.empty() ? std::string("its characters") : who) + " at " + location +
                  " while the world state after " + scene + " puts them elsewhere.";
    json entities = who.empty() ? json::array() : json::array({who});
    report["contradictions_found"].push_back(
        {{"description", description}, {"severity", "High"}, {"entities", entities}});
    report["severity_level"] = "High";
    report["recommended_corrections"].push_back("Regenerate the STATE_DIFF of " + scene +
                                                " so it matches the scene.");
    high = 1;
  } else if (call.rng.chance(0.3) && artifacts::is_entity_id(location)) {
    report["contradictions_found"].push_back(
        {{"description",
          "A background detail at " + location + " (a chair moved between shots) is not in the set lock."},
         {"severity", "Low"},
         {"entities", {location}}});
    report["severity_level"] = "Low";
    report["recommended_corrections"].push_back("Keep the furniture of " + location +
                                                " where the first wide shot puts it.");
    low = 1;
  }
  std::vector<std::string> reasons;
  if (high > 0) {
    reasons.push_back("high-severity continuity contradiction");
  }
  report["gate"] =
      gate_of(high > 0 ? "FAIL" : "PASS", json{{"high", high}, {"medium", 0}, {"low", low}}, reasons);
  return Outputs{{"CONTINUITY_REPORT", report}};
}

}  // namespace avps::backends::sim
