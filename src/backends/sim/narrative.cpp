// Sim generators of the narrative loop: story-architect, script-breakdown, character-psychology,
// narrative-red-team, audience-simulator, dialogue-consistency-check.
//
// The story's structure (scene count, cast and set per scene, time of day) is derived from the
// brief alone, never from the PRNG, so a revision keeps every id stable; the PRNG only varies
// wording and scores.

#include <algorithm>
#include <map>
#include <set>

#include "avps/artifacts/names.hpp"
#include "sim_internal.hpp"

namespace avps::backends::sim {
namespace {

// ---- the story plan ---------------------------------------------------------------------------

enum class Stage { inciting, escalation, midpoint, crisis, climax, resolution };

Stage stage_of(size_t i, size_t n) {
  if (i == 0) {
    return Stage::inciting;
  }
  if (n >= 2 && i == n - 1) {
    return Stage::resolution;
  }
  if (n >= 3 && i == n - 2) {
    return Stage::climax;
  }
  if (n >= 4 && i == n / 2) {
    return Stage::midpoint;
  }
  return i < n / 2 ? Stage::escalation : Stage::crisis;
}

struct ScenePlan {
  std::string id;
  std::string beat;  // the brief's beat text, or ""
  std::vector<std::string> characters;
  std::string location;
  std::string time_of_day;
  bool location_matched = false;
};

const std::set<std::string>& stop_words() {
  static const std::set<std::string> k_stop = {
      "the",  "and",  "with",  "that",  "from",   "into",  "this",    "there", "where",
      "down", "over", "under", "their", "them",   "they",  "which",   "while", "when",
      "then", "have", "been",  "after", "before", "about", "through", "only",  "some",
      "each", "than", "very",  "also",  "room's", "below", "above",   "your",  "what"};
  return k_stop;
}

bool prefix_match(const std::string& a, const std::string& b) {
  if (a.size() < 4 || b.size() < 4) {
    return false;
  }
  return a.rfind(b, 0) == 0 || b.rfind(a, 0) == 0;
}

int number_word(const std::string& w) {
  static const std::map<std::string, int> k_numbers = {
      {"one", 1},      {"two", 2},     {"three", 3},   {"four", 4},   {"five", 5},    {"six", 6},
      {"seven", 7},    {"eight", 8},   {"nine", 9},    {"ten", 10},   {"eleven", 11}, {"twelve", 12},
      {"fifteen", 15}, {"twenty", 20}, {"thirty", 30}, {"forty", 40}, {"fifty", 50}};
  auto it = k_numbers.find(w);
  if (it != k_numbers.end()) {
    return it->second;
  }
  if (!w.empty() && w.size() <= 3 &&
      std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::stoi(w);
  }
  return 0;
}

size_t scene_count(const Brief& brief) {
  if (brief.scene_count) {
    return static_cast<size_t>(*brief.scene_count);
  }
  if (!brief.beats.empty()) {
    return std::min<size_t>(brief.beats.size(), 999);
  }
  std::vector<std::string> words = words_of(brief.length);
  for (size_t i = 1; i < words.size(); ++i) {
    if (words[i] == "scenes" || words[i] == "scene") {
      int n = number_word(words[i - 1]);
      if (n > 0) {
        return static_cast<size_t>(n);
      }
    }
  }
  return 6;
}

std::string time_keyword(const std::string& text) {
  static const std::vector<std::pair<std::string, std::string>> k_times = {
      {"dawn", "Dawn"},       {"sunrise", "Dawn"},        {"morning", "Morning"}, {"noon", "Midday"},
      {"midday", "Midday"},   {"afternoon", "Afternoon"}, {"dusk", "Dusk"},       {"sunset", "Dusk"},
      {"evening", "Evening"}, {"midnight", "Midnight"},   {"night", "Night"},     {"day", "Day"}};
  for (const auto& [word, time] : k_times) {
    if (has_word(text, word)) {
      return time;
    }
  }
  return "";
}

std::vector<ScenePlan> plan_scenes(const Brief& brief) {
  const size_t n = scene_count(brief);
  std::vector<BriefEntity> cast = brief.characters;
  if (cast.empty()) {
    cast.push_back(BriefEntity{"LEAD", "The lead", ""});
  }
  std::vector<BriefEntity> sets = brief.locations;
  if (sets.empty()) {
    sets.push_back(BriefEntity{"MAIN_SET", "The main set", ""});
  }

  // Location keywords: words of a set's name and description that no other set uses.
  std::vector<std::set<std::string>> keywords(sets.size());
  std::map<std::string, int> users;
  for (size_t l = 0; l < sets.size(); ++l) {
    for (const std::string& w : words_of(sets[l].name + " " + sets[l].description)) {
      if (w.size() >= 4 && !stop_words().count(w)) {
        keywords[l].insert(w);
      }
    }
    for (const std::string& w : keywords[l]) {
      ++users[w];
    }
  }
  for (auto& words : keywords) {
    for (auto it = words.begin(); it != words.end();) {
      it = users[*it] > 1 ? words.erase(it) : std::next(it);
    }
  }

  static const std::vector<std::string> k_progression = {"Late afternoon", "Dusk",       "Evening",
                                                         "Night",          "Late night", "Before dawn"};
  std::vector<ScenePlan> plan(n);
  std::vector<int> used(sets.size(), 0);
  for (size_t i = 0; i < n; ++i) {
    ScenePlan& scene = plan[i];
    scene.id = artifacts::format_scene_id(static_cast<int>(i) + 1).value();
    scene.beat = i < brief.beats.size() ? brief.beats[i] : "";

    // Cast: the protagonist, and whoever the beat names; without a beat, one more in rotation.
    std::vector<std::string> named = mentioned_characters(brief, scene.beat);
    for (const BriefEntity& c : cast) {
      bool protagonist = &c == &cast.front();
      if (protagonist || std::find(named.begin(), named.end(), c.id) != named.end()) {
        scene.characters.push_back(c.id);
      }
    }
    if (scene.beat.empty() && cast.size() > 1) {
      const std::string& other = cast[1 + i % (cast.size() - 1)].id;
      scene.characters.push_back(other);
    }

    // Set: the one whose keywords the beat shares most (brief order breaks ties).
    int best = 0;
    std::vector<std::string> beat_words = words_of(scene.beat);
    for (size_t l = 0; l < sets.size(); ++l) {
      int score = 0;
      for (const std::string& keyword : keywords[l]) {
        if (std::any_of(beat_words.begin(), beat_words.end(),
                        [&](const std::string& w) { return prefix_match(w, keyword); })) {
          ++score;
        }
      }
      if (score > best) {
        best = score;
        scene.location = sets[l].id;
      }
    }
    if (!scene.location.empty()) {
      scene.location_matched = true;
      for (size_t l = 0; l < sets.size(); ++l) {
        used[l] += sets[l].id == scene.location ? 1 : 0;
      }
    }

    std::string time = time_keyword(scene.beat);
    scene.time_of_day = !time.empty() ? time
                        : n <= 1      ? k_progression[0]
                                      : k_progression[std::min<size_t>(i * 6 / n, 5)];
  }
  // Scenes the beats do not place go to the least-used set, so every set is used.
  for (ScenePlan& scene : plan) {
    if (scene.location.empty()) {
      size_t least = 0;
      for (size_t l = 1; l < sets.size(); ++l) {
        least = used[l] < used[least] ? l : least;
      }
      scene.location = sets[least].id;
      ++used[least];
    }
  }
  for (size_t l = 0; l < sets.size() && n >= sets.size(); ++l) {
    if (used[l] > 0) {
      continue;
    }
    // Take a scene from a set used more than once, preferring one the beats did not place.
    for (bool matched : {false, true}) {
      for (size_t i = n; i-- > 0 && used[l] == 0;) {
        ScenePlan& scene = plan[i];
        auto from = std::find_if(sets.begin(), sets.end(),
                                 [&](const BriefEntity& s) { return s.id == scene.location; });
        size_t f = static_cast<size_t>(from - sets.begin());
        if (scene.location_matched == matched && used[f] > 1) {
          --used[f];
          scene.location = sets[l].id;
          ++used[l];
        }
      }
    }
  }
  return plan;
}

// "keep her ailing father's lighthouse lit through one night" from "... must keep ... while ...".
std::string objective_of(const Brief& brief) {
  std::string premise = brief.premise;
  size_t at = premise.find(" must ");
  if (at == std::string::npos) {
    return "finish what the story demands of them";
  }
  std::string rest = premise.substr(at + 6);
  size_t end = rest.size();
  for (const char* stop : {" while ", " before ", " and the ", ";", ".", ",", " \xE2\x80\x94"}) {
    end = std::min(end, rest.find(stop));
  }
  std::string objective = trim(rest.substr(0, end));
  return objective.empty() ? "finish what the story demands of them" : objective;
}

std::string emotion(Stage stage, bool protagonist) {
  switch (stage) {
    case Stage::inciting:
      return protagonist ? "Alert and uneasy" : "Watchful";
    case Stage::escalation:
      return protagonist ? "Strained but focused" : "Tense";
    case Stage::midpoint:
      return protagonist ? "Shaken, then resolved" : "Worried";
    case Stage::crisis:
      return protagonist ? "Afraid but steady" : "Committed";
    case Stage::climax:
      return protagonist ? "Exhausted and determined" : "Spent";
    case Stage::resolution:
      return protagonist ? "Relieved and changed" : "At peace";
  }
  return "Steady";
}

}  // namespace

// ---- story-architect --------------------------------------------------------------------------

Outputs story_architect(Call& call) {
  const Brief& brief = call.brief;
  std::vector<ScenePlan> plan = plan_scenes(brief);
  const size_t n = plan.size();
  const std::string objective = objective_of(brief);
  // Written a page at a time when the request asks for a page (skill.json paging.output).
  std::optional<Page> page = page_of(call);
  const size_t from = page ? std::min(n, static_cast<size_t>(page->index - 1) * page->rows_per_page) : 0;
  const size_t to = page ? std::min(n, from + page->rows_per_page) : n;

  auto others_of = [&](const ScenePlan& scene) {
    std::string other;
    for (size_t k = 1; k < scene.characters.size() && other.empty(); ++k) {
      other = display(call, scene.characters[k]);
    }
    return other;
  };
  auto summary_of = [&](size_t i) {
    const ScenePlan& scene = plan[i];
    std::string other = others_of(scene);
    return !scene.beat.empty()
               ? sentence(scene.beat)
               : sentence(display(call, scene.characters.front()) + (other.empty() ? "" : " and " + other) + " at " +
                          display(call, scene.location) + ": part " + std::to_string(i + 1) + " of " +
                          std::to_string(n) + " of the story");
  };

  json rows = json::array();
  for (size_t i = from; i < to; ++i) {
    const ScenePlan& scene = plan[i];
    const Stage stage = stage_of(i, n);
    std::string p = display(call, scene.characters.front());
    std::string other = others_of(scene);
    std::string summary = summary_of(i);
    std::string goal;
    std::string outcome;
    switch (stage) {
      case Stage::inciting:
        goal = p + " sets out to " + objective + ".";
        outcome = "The routine is broken and " + p + " is committed; there is no going back.";
        break;
      case Stage::escalation:
        goal = p + " tries to " + objective + " despite the first setbacks.";
        outcome = "The stakes rise: " + p + " has fewer options than at the start of the scene.";
        break;
      case Stage::midpoint:
        goal = p + " has to change tack to " + objective + ".";
        outcome = "The situation turns: " + p + " knows more, and the plan must change.";
        break;
      case Stage::crisis:
        goal = p + " tries to hold on long enough to " + objective + ".";
        outcome = p + " is cornered and has to act without a safe option.";
        break;
      case Stage::climax:
        goal = p + " risks everything to " + objective + ".";
        outcome = p + "'s choice answers the central question, at a cost.";
        break;
      case Stage::resolution:
        goal = p + " wants to see whether the effort to " + objective + " has held.";
        outcome = "A new balance holds; what " + p + " did cannot be undone.";
        break;
    }
    std::string pressure =
        other.empty()
            ? call.rng.pick({"Time and the elements work against " + p + ".",
                             p + " has no one to share the load with.",
                             "Every minute " + p + " spends here costs something elsewhere."})
            : call.rng.pick({other + " wants something different, and time is short.",
                             other + " pulls the other way, and neither can wait.",
                             other + "'s priorities clash with " + p + "'s, and the clock keeps running."});
    std::string conflict = (scene.beat.empty() ? "" : sentence(scene.beat) + " ") + pressure;
    rows.push_back(json{{"scene_id", scene.id},
                        {"summary", summary},
                        {"goal", goal},
                        {"conflict", conflict},
                        {"outcome", outcome},
                        {"location", scene.location},
                        {"time_of_day", scene.time_of_day},
                        {"characters_present", scene.characters}});
  }

  // The six beats: inciting = first beat, escalation = those up to the midpoint, climax = the
  // second-to-last, resolution = the last; missing ones are written from the scene plan.
  auto beat_text = [&](size_t i) { return sentence(!plan[i].beat.empty() ? plan[i].beat : summary_of(i)); };
  const std::string protagonist = display(call, plan.front().characters.front());
  const size_t mid = n / 2;
  // At most 8 escalation steps, spread over the first half: the beats stay one size.
  json escalation = json::array();
  std::vector<size_t> steps;
  for (size_t i = 1; i < mid && i + 2 < n; ++i) {
    steps.push_back(i);
  }
  for (size_t k = 0; k < std::min<size_t>(steps.size(), 8); ++k) {
    escalation.push_back(beat_text(steps.size() <= 8 ? steps[k] : steps[k * (steps.size() - 1) / 7]));
  }
  if (escalation.empty()) {
    escalation.push_back("Each attempt " + protagonist + " makes to " + objective +
                         " costs more than the last.");
  }
  json beats = {
      {"format_version", 1},
      {"kind", "BEATS"},
      {"gate", gate_of("PASS", json::object(), {})},
      {"inciting_incident", beat_text(0)},
      {"escalation_sequence", escalation},
      {"midpoint_shift", n >= 4
                             ? beat_text(mid)
                             : protagonist + " learns the plan cannot work as it stands and changes course."},
      {"crisis", protagonist + " runs out of safe options and has to commit to one desperate course before " +
                     plan[n >= 3 ? n - 2 : n - 1].id + "."},
      {"climax",
       n >= 3 ? beat_text(n - 2) : protagonist + " makes the choice the story has been building to."},
      {"resolution", n >= 2 ? beat_text(n - 1) : "The night ends and its cost is counted."},
  };

  json scenes = {{"format_version", 1}, {"kind", "SCENES"}, {"rows", rows}};
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail && to > from) {
    // A scene without a conflict (whitespace only) fails scene_fields_non_empty.
    size_t at = n >= 2 ? mid : 0;
    at = at >= from && at < to ? at - from : 0;
    scenes["rows"][at]["conflict"] = " ";
    reasons.push_back(str(scenes["rows"][at], "scene_id") + ": conflict is empty");
  }
  scenes["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL", json::object(), reasons);
  Outputs out{{"SCENES", scenes}};
  if (from == 0) {
    out["BEATS"] = beats;
  }
  if (page) {
    out["more"] = to < n;
    out["carry"] = {{"scenes_written", to}, {"scene_count", n}};
  }
  return out;
}

// ---- script-breakdown -------------------------------------------------------------------------

namespace {

std::vector<std::string> technical_words(const std::string& text) {
  static const std::set<std::string> k_technical = {
      "lens",       "clockwork", "radio",    "wireless", "engine",    "lighthouse", "surgery",   "fever",
      "doctor",     "medicine",  "court",    "police",   "law",       "pistol",     "gun",       "rifle",
      "navigation", "boat",      "ship",     "signal",   "morse",     "telegraph",  "procedure", "machine",
      "automated",  "buoy",      "hospital", "trial",    "warrant",   "poison",     "explosive", "pallets",
      "inventory",  "ferry",     "tide",     "tides",    "mechanism", "generator",  "circuit",   "evidence"};
  std::vector<std::string> out;
  for (const std::string& w : words_of(text)) {
    if (k_technical.count(w) && std::find(out.begin(), out.end(), w) == out.end()) {
      out.push_back(w);
    }
  }
  return out;
}

struct Ledger {
  std::map<std::string, std::string> owner_of;                  // carried prop -> character
  std::map<std::string, std::vector<std::string>> injuries_of;  // character -> injuries so far
  std::set<std::string> seen_characters;
  std::set<std::string> seen_locations;
  std::set<std::string> seen_props;

  // What one page passes to the next (its "carry"): bounded by the cast, sets and props.
  json to_json() const {
    return {{"owner_of", owner_of},
            {"injuries_of", injuries_of},
            {"seen_characters", seen_characters},
            {"seen_locations", seen_locations},
            {"seen_props", seen_props}};
  }
  static Ledger from_json(const json* carry) {
    Ledger l;
    if (carry != nullptr && carry->is_object()) {
      l.owner_of = carry->value("owner_of", l.owner_of);
      l.injuries_of = carry->value("injuries_of", l.injuries_of);
      l.seen_characters = carry->value("seen_characters", l.seen_characters);
      l.seen_locations = carry->value("seen_locations", l.seen_locations);
      l.seen_props = carry->value("seen_props", l.seen_props);
    }
    return l;
  }
};

}  // namespace

Outputs script_breakdown(Call& call) {
  std::vector<json> scene_rows = rows_of(input(call, "SCENES"));
  if (scene_rows.empty()) {
    // Nothing to break down but the brief: break down the story the brief implies.
    Outputs story = story_architect(call);
    scene_rows = rows_of(&story["SCENES"]);
  }
  const Brief& brief = call.brief;
  // A page of the story (skill.json paging.input): its rows sit at `offset` of `n`, and the
  // previous page's ledger comes as the carry.
  std::optional<Page> page = page_of(call);
  const size_t offset = page ? page->offset : 0;
  const size_t n = page ? std::max(page->total_rows, offset + scene_rows.size()) : scene_rows.size();
  Ledger ledger = Ledger::from_json(input(call, "CARRY"));
  json rows = json::array();
  for (size_t row_index = 0; row_index < scene_rows.size(); ++row_index) {
    const size_t i = offset + row_index;
    const json& scene = scene_rows[row_index];
    const std::string id =
        str(scene, "scene_id", artifacts::format_scene_id(static_cast<int>(i) + 1).value());
    const std::string summary = str(scene, "summary");
    const std::string location =
        artifacts::is_entity_id(str(scene, "location")) ? str(scene, "location") : "MAIN_SET";
    std::vector<std::string> present;
    for (const std::string& c : strs(scene, "characters_present")) {
      if (artifacts::is_entity_id(c) && std::find(present.begin(), present.end(), c) == present.end()) {
        present.push_back(c);
      }
    }
    const Stage stage = stage_of(i, n);
    std::vector<std::string> changes;
    std::vector<std::string> risks;
    std::vector<std::string> props;
    auto use_prop = [&](const std::string& prop) {
      if (std::find(props.begin(), props.end(), prop) == props.end()) {
        props.push_back(prop);
      }
    };

    // First appearances bring what the brief says a character carries and suffers.
    for (const std::string& c : present) {
      if (ledger.seen_characters.count(c)) {
        continue;
      }
      if (const BriefEntity* entity = brief.character(c)) {
        for (std::string prop : carried_props(*entity)) {
          if (ledger.owner_of.count(prop) && ledger.owner_of[prop] != c) {
            prop = entity_of(c + " " + prop);
          }
          if (!prop.empty() && !ledger.owner_of.count(prop)) {
            ledger.owner_of[prop] = c;
            changes.push_back(c + " carries " + prop);
          }
        }
        for (const std::string& injury : injury_clauses(entity->description)) {
          ledger.injuries_of[c].push_back(injury);
          changes.push_back(c + ": " + injury);
        }
      }
    }
    // Props the scene names in UPPER_SNAKE (RED_NOTEBOOK): carried by the first character
    // present unless someone already has them; "A gives P to B" moves them.
    std::vector<std::string> named = upper_ids_in(summary);
    for (const std::string& token : named) {
      bool is_character = std::find(present.begin(), present.end(), token) != present.end() ||
                          brief.character(token) != nullptr;
      if (is_character || token == location || brief.location(token) != nullptr || present.empty()) {
        continue;
      }
      if (!ledger.owner_of.count(token)) {
        ledger.owner_of[token] = present.front();
        changes.push_back(present.front() + " carries " + token);
      }
      use_prop(token);
    }
    for (const std::string& verb : {std::string("gives"), std::string("hands"), std::string("passes")}) {
      if (!has_word(summary, verb) || named.size() < 3) {
        continue;
      }
      for (size_t k = 0; k + 2 < named.size(); ++k) {
        const std::string& from = named[k];
        const std::string& prop = named[k + 1];
        const std::string& to = named[k + 2];
        bool ok = ledger.owner_of.count(prop) && ledger.owner_of[prop] == from &&
                  std::find(present.begin(), present.end(), to) != present.end();
        if (ok) {
          ledger.owner_of[prop] = to;
          changes.push_back(from + " gives " + prop + " to " + to);
        }
      }
    }
    for (const std::string& c : present) {
      for (const auto& [prop, owner] : ledger.owner_of) {
        if (owner == c) {
          use_prop(prop);
        }
      }
    }
    // Set props the scene's action touches.
    if (const BriefEntity* set = brief.location(location)) {
      std::vector<std::string> summary_words = words_of(summary);
      for (const auto& [prop, phrase] : set_items(*set)) {
        std::vector<std::string> phrase_words = words_of(phrase);
        std::string head = phrase_words.back();
        for (const std::string& w : phrase_words) {
          head = head.size() >= 4 ? head : (w.size() > head.size() ? w : head);
        }
        bool touched = head.size() >= 4 &&
                       std::find(summary_words.begin(), summary_words.end(), head) != summary_words.end();
        if (touched && !ledger.owner_of.count(prop)) {
          if (!ledger.seen_props.count(prop)) {
            changes.push_back(prop + " is in " + location);
          }
          use_prop(prop);
        }
      }
    }
    // Injuries the scene's action causes, on whoever the clause names (else the scene's lead).
    for (const std::string& injury : injury_clauses(summary)) {
      std::vector<std::string> who = mentioned_characters(brief, injury);
      std::vector<std::string> ids = upper_ids_in(injury);
      for (const std::string& token : ids) {
        if (std::find(present.begin(), present.end(), token) != present.end()) {
          who.push_back(token);
        }
      }
      who.erase(std::remove_if(who.begin(), who.end(),
                               [&](const std::string& c) {
                                 return std::find(present.begin(), present.end(), c) == present.end();
                               }),
                who.end());
      if (who.empty() && !present.empty()) {
        who.push_back(present.front());
      }
      if (!who.empty()) {
        std::string text = injury + " (" + id + ")";
        ledger.injuries_of[who.front()].push_back(text);
        changes.push_back(who.front() + ": " + text);
      }
    }
    // Knowledge and feeling for everyone present.
    std::string fact = "what happened in " + id + ": " +
                       clause(summary.empty() ? str(scene, "outcome", "the scene's events") : summary);
    for (size_t k = 0; k < present.size(); ++k) {
      changes.push_back(present[k] + " learns " + fact);
      changes.push_back(present[k] + " feels " + emotion(stage, k == 0));
    }

    // Risks: light, props, injuries, and the validation flags avps routes scenes by.
    std::string light_rule = call.rng.pick({": the lighting must follow the set lock in every shot",
                                            ": keep the light source and its direction fixed across shots",
                                            ": no shot may change the light temperature of the set lock"});
    risks.push_back(str(scene, "time_of_day", "Day") + " at " + location + light_rule);
    for (const std::string& prop : props) {
      auto owner = ledger.owner_of.find(prop);
      risks.push_back(owner != ledger.owner_of.end()
                          ? prop + " stays with " + owner->second + " in every shot"
                          : prop + " stays in place in " + location);
    }
    for (const std::string& c : present) {
      for (const std::string& injury : ledger.injuries_of[c]) {
        risks.push_back(c + "'s injury must stay visible: " + injury);
      }
    }
    std::vector<std::string> technical = technical_words(summary);
    if (technical.size() >= 2) {
      technical.resize(std::min<size_t>(technical.size(), 3));
      risks.push_back("research: the " + join(technical) + " details of the scene, as practised" +
                      (brief.period.empty() ? " today" : " in " + brief.period));
    }
    if (i == 0 && !brief.period.empty()) {
      risks.push_back("cultural: the speech, manners and dress of the community in " + brief.period);
    }

    // New entities: the cumulative set difference, in scene order.
    json row = {{"scene_id", id},
                {"characters_present", present},
                {"new_characters_introduced", json::array()},
                {"locations_used", {location}},
                {"new_locations_introduced", json::array()},
                {"props_used", props},
                {"new_props_introduced", json::array()},
                {"state_changes", changes},
                {"continuity_risks", risks},
                {"lock_requirements", json::array()}};
    for (const std::string& c : present) {
      if (ledger.seen_characters.insert(c).second) {
        row["new_characters_introduced"].push_back(c);
        row["lock_requirements"].push_back("CHAR_" + c);
        row["lock_requirements"].push_back("VOICE_" + c);
      }
    }
    if (ledger.seen_locations.insert(location).second) {
      row["new_locations_introduced"].push_back(location);
      row["lock_requirements"].push_back("SET_" + location);
    }
    for (const std::string& prop : props) {
      if (ledger.seen_props.insert(prop).second) {
        row["new_props_introduced"].push_back(prop);
      }
    }
    rows.push_back(std::move(row));
  }

  std::vector<std::string> reasons;
  if (call.mode == Mode::fail && !rows.empty() && offset == 0) {
    // The first scene always introduces its set; leaving it out fails breakdown_matches_scenes.
    json& first = rows[0];
    std::string set = first["locations_used"][0].get<std::string>();
    first["new_locations_introduced"] = json::array();
    reasons.push_back(str(first, "scene_id") + ": new_locations_introduced lacks " + set);
  }
  json breakdown = {{"format_version", 1},
                    {"kind", "BREAKDOWN"},
                    {"gate", gate_of(reasons.empty() ? "PASS" : "FAIL", json::object(), reasons)},
                    {"rows", rows}};
  Outputs out{{"BREAKDOWN", breakdown}};
  if (page) {
    out["carry"] = ledger.to_json();
  }
  return out;
}

// ---- character-psychology ---------------------------------------------------------------------

namespace {

// The characters a scene call is about: the scene row's, else the locks', else the brief's lead.
std::vector<std::string> scene_characters(const Call& call) {
  std::vector<std::string> out;
  if (std::optional<json> row = scene_row(call)) {
    for (const std::string& c : strs(*row, "characters_present")) {
      if (artifacts::is_entity_id(c)) {
        out.push_back(c);
      }
    }
  }
  if (out.empty()) {
    for (const auto& [id, lock] : locks_of(call, "CHAR_LOCK")) {
      out.push_back(id);
    }
  }
  if (out.empty()) {
    out.push_back(call.brief.characters.empty() ? "LEAD" : call.brief.characters.front().id);
  }
  return out;
}

std::string temperament_of(const Call& call, const std::string& character) {
  std::map<std::string, json> locks = locks_of(call, "CHAR_LOCK");
  auto it = locks.find(character);
  if (it != locks.end() && it->second.contains("behavioral_baseline")) {
    return lower(str(it->second["behavioral_baseline"], "temperament", "steady"));
  }
  return "steady";
}

}  // namespace

Outputs character_psychology(Call& call) {
  const std::string scene = scene_id(call);
  std::vector<std::string> cast = scene_characters(call);
  std::optional<json> row = scene_row(call);
  const std::string conflict =
      row ? clause(str(*row, "summary", "the scene's obstacle")) : "the scene's obstacle";
  const std::string lead = cast.front();

  json arcs = json::array();
  for (size_t k = 0; k < cast.size(); ++k) {
    bool lead_character = k == 0;
    std::string status = lead_character ? "growth" : call.rng.pick({"growth", "stagnation", "stagnation"});
    arcs.push_back({{"character", cast[k]},
                    {"arc_status", status},
                    {"catalyst", status == "stagnation" ? std::string()
                                                        : "In " + scene + ", " + conflict + ": " + cast[k] +
                                                              " chooses to act."}});
  }
  json psych = {
      {"format_version", 1},
      {"kind", "PSYCH"},
      {"scene_id", scene},
      {"motivation_alignment_analysis",
       lead + " acts on the goal the lock's baseline predicts (" + temperament_of(call, lead) + "); " +
           call.rng.pick({"every other character present pursues a motive established earlier.",
                          "the others act on motives the earlier scenes set up.",
                          "no one acts against a motive the story has shown."})},
      {"emotional_continuity_check",
       "Emotions carry over from the state before " + scene + "; " +
           call.rng.pick({"reactions rise in proportion to ", "each reaction stays in scale with ",
                          "no reaction outgrows "}) +
           "what happens in the scene."},
      {"trauma_history_influence",
       call.rng.pick(
           {"Past pressure shows in how " + lead + " hides fear behind action, as established.",
            "History shapes the caution of each character; nothing in " + scene + " contradicts it.",
            "Earlier losses explain why " + lead + " refuses to give ground."})},
      {"arc_progression_status", arcs},
      {"drift_warning", "NO"},
      {"recommended_correction", json::array()},
  };
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    psych["drift_warning"] = "YES";
    psych["emotional_continuity_check"] = lead + " swings from calm to rage in " + scene +
                                          " with no catalyst; the reaction is out of all proportion to " +
                                          "what happens in the scene.";
    psych["recommended_correction"] = {
        "Give " + lead +
        " a visible trigger before the outburst, or soften the reaction to match the lock's " +
        temperament_of(call, lead) + " baseline."};
    reasons.push_back("drift warning YES: " + lead + "'s reaction contradicts the character lock");
  }
  psych["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL",
                          json{{"drift_warning", call.mode == Mode::fail ? 1 : 0}}, reasons);
  return Outputs{{"PSYCH", psych}};
}

// ---- narrative-red-team -----------------------------------------------------------------------

// Red team and audience read the story a page at a time when it is paged (skill.json
// paging.input): each page adds its scenes to a small running summary (the carry), and the last
// page writes the report from it.
namespace {

json story_scan(const Call& call, const std::vector<json>& scenes) {
  const json* carried = input(call, "CARRY");
  json state = carried != nullptr && carried->is_object() ? *carried : json::object();
  std::optional<Page> page = page_of(call);
  const size_t offset = page ? page->offset : 0;
  const size_t n = page ? std::max(page->total_rows, offset + scenes.size()) : scenes.size();
  for (size_t k = 0; k < scenes.size(); ++k) {
    const json& s = scenes[k];
    json brief_row = {{"scene_id", str(s, "scene_id")}, {"summary", str(s, "summary")}};
    const size_t cast = strs(s, "characters_present").size();
    if (!state.contains("first")) {
      state["first"] = brief_row;
    }
    // The thinnest scene: the first with the fewest characters present.
    if (!state.contains("thin") || cast < state["thin"].value("cast", size_t{0})) {
      state["thin"] = {{"scene_id", str(s, "scene_id")}, {"cast", cast}};
    }
    if (offset + k == n / 2) {
      state["middle"] = brief_row;
    }
    std::string text = lower(str(s, "summary") + " " + str(s, "outcome"));
    for (const char* cue : {"suddenly", "happens to", "by chance", "coincidence", "luckily", "just in time"}) {
      if (text.find(cue) != std::string::npos) {
        if (state["coincidences"].size() < 8) {
          state["coincidences"].push_back(str(s, "scene_id") + " turns on chance (\"" + cue +
                                          "\"); tie it to an earlier choice.");
        }
        break;
      }
    }
    json& tail = state["tail"];
    tail.push_back(brief_row);
    if (tail.size() > 2) {
      tail.erase(tail.begin());
    }
  }
  if (!state.contains("coincidences")) {
    state["coincidences"] = json::array();
  }
  return state;
}

bool last_page(const Call& call) {
  std::optional<Page> page = page_of(call);
  return !page || page->of <= 0 || page->index >= page->of;
}

}  // namespace

Outputs narrative_red_team(Call& call) {
  std::vector<json> scenes = rows_of(input(call, "SCENES"));
  if (scenes.empty()) {
    Outputs story = story_architect(call);
    scenes = rows_of(&story["SCENES"]);
  }
  const json scan = story_scan(call, scenes);
  if (!last_page(call)) {
    return Outputs{{"carry", scan}};
  }
  const std::string target = target_id(call);
  const json& first = scan["first"];
  const json& last = scan["tail"].back();
  const json& climax = scan["tail"].front();
  const json thin = scan["thin"];
  std::vector<std::string> coincidences = scan["coincidences"].get<std::vector<std::string>>();
  if (coincidences.empty()) {
    coincidences.push_back("No scene turns on chance: each outcome follows from a choice made on screen.");
  }
  json redteam = {
      {"format_version", 1},
      {"kind", "REDTEAM"},
      {"target", target},
      {"critical_failures", json::array()},
      {"hidden_weaknesses",
       {str(thin, "scene_id") +
            " has the fewest characters present; its conflict must come from the situation, "
            "so show the obstacle on screen.",
        "The outcome of " + str(last, "scene_id") + " needs one line that pays off the setup of " +
            str(first, "scene_id") + "."}},
      {"coincidence_scan", coincidences},
      {"stakes_audit", "Stakes escalate from " + str(first, "scene_id") + " to " + str(climax, "scene_id") +
                           "; each outcome narrows the options of the one before."},
      {"tension_audit",
       call.rng.pick(
           {"Tension rises scene by scene; the deadline keeps the last act tight.",
            "Tension holds: every scene ends with a question the next one answers.",
            "Tension rises steadily; the midpoint turn resets it higher rather than releasing it."})},
      {"thematic_consistency_check", "Each turn tests the theme the brief names; the climax in " +
                                         str(climax, "scene_id") + " answers it."},
      {"two_fix_options",
       {{"conservative",
         "Add one line in " + str(thin, "scene_id", "S01") + " that names what is at stake for the lead."},
        {"structural", "Move the midpoint reveal one scene earlier so the crisis has room to breathe."}}},
  };
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    std::string failure =
        "The climax in " + str(climax, "scene_id") +
        " resolves by luck, not by the lead's choice: the central question goes unanswered.";
    redteam["critical_failures"] = {failure};
    reasons.push_back(failure);
  }
  redteam["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL",
                            json{{"critical_failures", redteam["critical_failures"].size()}}, reasons);
  return Outputs{{"REDTEAM", redteam}};
}

// ---- audience-simulator -----------------------------------------------------------------------

Outputs audience_simulator(Call& call) {
  std::vector<json> scenes = rows_of(input(call, "SCENES"));
  if (scenes.empty()) {
    Outputs story = story_architect(call);
    scenes = rows_of(&story["SCENES"]);
  }
  const json scan = story_scan(call, scenes);
  if (!last_page(call)) {
    return Outputs{{"carry", scan}};
  }
  const int clarity_min = threshold(call, "/audience_clarity", 3);
  const int engagement_min = threshold(call, "/audience_engagement", 3);
  int clarity = std::clamp(std::max(clarity_min, call.rng.range(4, 5)), 1, 5);
  int engagement = std::clamp(std::max(engagement_min, call.rng.range(4, 5)), 1, 5);
  int predictability = call.rng.range(2, 4);
  const json& middle = scan.contains("middle") ? scan["middle"] : scan["tail"].back();
  const json& climax = scan["tail"].front();
  const json& opening = scan["first"];
  json audience = {
      {"format_version", 1},
      {"kind", "AUDIENCE"},
      {"target", target_id(call)},
      {"mainstream_viewer_reaction",
       "Follows the lead's goal from the first scene; the stakes are physical and easy to read."},
      {"genre_fan_reaction",
       call.rng.pick({"Enjoys the pressure-cooker structure and the period texture.",
                      "Recognises the ticking-clock form and is glad it avoids a villain.",
                      "Likes that every scene tightens the deadline."})},
      {"critical_viewer_reaction",
       "Reads the story as a test of the theme; wants the ending to cost the lead something."},
      {"confusion_points",
       {"What " + str(middle, "scene_id") + " changes for the lead needs one clear beat on screen."}},
      {"engagement_dips",
       {str(opening, "scene_id") + " spends its first moments on setup before the pressure starts."}},
      {"emotional_peaks",
       {str(middle, "scene_id") + ": " + clause(str(middle, "summary", "the midpoint turn")),
        str(climax, "scene_id") + ": " + clause(str(climax, "summary", "the climax"))}},
      {"predictability_score", predictability},
      {"clarity_score", clarity},
      {"engagement_score", engagement},
      {"recommended_adjustments",
       {"Show the deadline on screen in " + str(opening, "scene_id") + "."}},
  };
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    int low = std::clamp(clarity_min - 1, 1, 2);
    audience["clarity_score"] = low;
    audience["confusion_points"].push_back("Viewers cannot tell what the lead wants after " +
                                           str(middle, "scene_id") + "; the midpoint muddles the goal.");
    reasons.push_back("clarity " + std::to_string(low) + " is below " + std::to_string(clarity_min));
  }
  audience["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL",
                             json{{"predictability", predictability},
                                  {"clarity", audience["clarity_score"]},
                                  {"engagement", engagement}},
                             reasons);
  return Outputs{{"AUDIENCE", audience}};
}

// ---- dialogue-consistency-check ---------------------------------------------------------------

Outputs dialogue_consistency_check(Call& call) {
  const std::string scene = scene_id(call);
  std::vector<std::string> cast = scene_characters(call);
  std::map<std::string, json> voices = locks_of(call, "VOICE_LOCK");
  const int minimum = std::clamp(threshold(call, "/dialogue_distinctiveness", 3), 1, 5);
  json assessments = json::array();
  json scores = json::array();
  json gate_scores = json::object();
  for (const std::string& c : cast) {
    auto voice = voices.find(c);
    std::string basis = voice != voices.end()
                            ? "matches the voice lock (" +
                                  lower(str(voice->second.value("cadence_rhythm", json::object()),
                                            "sentence_length", "as locked")) +
                                  ")"
                            : "keeps the register the character lock describes";
    assessments.push_back({{"character", c}, {"assessment", c + "'s lines in " + scene + " " + basis + "."}});
    int score = std::max(minimum, call.rng.range(4, 5));
    scores.push_back({{"character", c}, {"score", score}});
    gate_scores[c] = score;
  }
  json check = {
      {"format_version", 1},
      {"kind", "DIALOGUE_CHECK"},
      {"scene_id", scene},
      {"character_by_character_voice_assessment", assessments},
      {"vocabulary_consistency_review",
       "Vocabulary stays in each character's established register throughout " + scene + "."},
      {"tone_alignment_check", "The scene holds one tone; no line breaks it."},
      {"emotional_authenticity_check", "Each reaction is earned by what happens on screen."},
      {"distinctiveness_score", scores},
      {"drift_flags", json::array()},
      {"recommended_adjustments", json::array()},
  };
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    const std::string& c = cast.back();
    int low = std::max(1, minimum - 1);
    check["distinctiveness_score"].back()["score"] = low;
    gate_scores[c] = low;
    check["drift_flags"].push_back(c + " sounds like " + cast.front() + " in " + scene +
                                   ": same rhythm, same words.");
    check["recommended_adjustments"].push_back("Rewrite " + c + "'s lines to the cadence of the voice lock.");
    reasons.push_back(c + " distinctiveness " + std::to_string(low) + " is below " + std::to_string(minimum));
  }
  check["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL", gate_scores, reasons);
  return Outputs{{"DIALOGUE_CHECK", check}};
}

}  // namespace avps::backends::sim
