// Reading brief.md for the sim backend: sections, the character and location lists, story beats,
// and the few things later skills derive from a description (carried props, set items, injuries).

#include <algorithm>
#include <cctype>
#include <set>

#include "sim_internal.hpp"

namespace avps::backends::sim {

const BriefEntity* Brief::character(std::string_view id) const {
  for (const BriefEntity& c : characters) {
    if (c.id == id) {
      return &c;
    }
  }
  return nullptr;
}

const BriefEntity* Brief::location(std::string_view id) const {
  for (const BriefEntity& l : locations) {
    if (l.id == id) {
      return &l;
    }
  }
  return nullptr;
}

namespace {

enum class Section { none, premise, genre, length, characters, locations, beats, themes };

Section classify(const std::string& heading) {
  std::string h = lower(heading);
  auto has = [&](const char* word) { return h.find(word) != std::string::npos; };
  if (has("character") || has("cast")) {
    return Section::characters;
  }
  if (has("location") || has("setting") || has("sets")) {
    return Section::locations;
  }
  if (has("beat") || has("outline") || has("scene")) {
    return Section::beats;
  }
  if (has("premise") || has("logline") || has("synopsis")) {
    return Section::premise;
  }
  if (has("genre") || has("tone")) {
    return Section::genre;
  }
  if (has("length") || has("runtime")) {
    return Section::length;
  }
  if (has("theme")) {
    return Section::themes;
  }
  return Section::none;
}

std::optional<int> scene_count_line(const std::string& line) {
  std::string t = lower(trim(line));
  if (auto item = list_item(t)) {
    t = *item;
  }
  if (t.rfind("scenes:", 0) != 0) {
    return std::nullopt;
  }
  std::string rest = trim(t.substr(7));
  int n = 0;
  size_t i = 0;
  while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i])) != 0 && n < 100000) {
    n = n * 10 + (rest[i] - '0');
    ++i;
  }
  if (i == 0 || n < 1) {
    return std::nullopt;
  }
  return std::min(n, 999);
}

std::string strip_markup(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), '*'), text.end());
  text.erase(std::remove(text.begin(), text.end(), '`'), text.end());
  return trim(text);
}

// "Mara Quill — 17, ..." -> {name, description}; the dash may be an em dash, an en dash, " - "
// or a colon.
std::optional<BriefEntity> entity_item(const std::string& item) {
  static const std::vector<std::string> k_separators = {" \xE2\x80\x94 ", "\xE2\x80\x94", " \xE2\x80\x93 ",
                                                        " - ", ": "};
  std::string name = item;
  std::string description;
  for (const std::string& sep : k_separators) {
    size_t at = item.find(sep);
    if (at != std::string::npos) {
      name = item.substr(0, at);
      description = item.substr(at + sep.size());
      break;
    }
  }
  name = strip_markup(name);
  std::string id = entity_of(name);
  if (id.empty() || name.size() > 80) {
    return std::nullopt;
  }
  return BriefEntity{id, name, trim(description)};
}

std::string find_year(const std::string& text) {
  for (size_t i = 0; i + 4 <= text.size(); ++i) {
    bool digits = std::all_of(text.begin() + static_cast<std::ptrdiff_t>(i),
                              text.begin() + static_cast<std::ptrdiff_t>(i + 4),
                              [](char c) { return c >= '0' && c <= '9'; });
    bool bounded = (i == 0 || std::isdigit(static_cast<unsigned char>(text[i - 1])) == 0) &&
                   (i + 4 == text.size() || std::isdigit(static_cast<unsigned char>(text[i + 4])) == 0);
    if (digits && bounded && (text[i] == '1' || (text[i] == '2' && text[i + 1] == '0'))) {
      return text.substr(i, 4);
    }
  }
  return "";
}

}  // namespace

Brief parse_brief(std::string_view markdown) {
  Brief brief;
  Section section = Section::none;
  std::vector<std::string> items;  // of the current list section
  std::string* continuing = nullptr;
  std::vector<std::pair<Section, std::vector<std::string>>> lists;

  auto flush_list = [&] {
    if (!items.empty()) {
      lists.emplace_back(section, items);
      items.clear();
    }
    continuing = nullptr;
  };
  auto append_text = [&](const std::string& text) {
    std::string* target = section == Section::premise  ? &brief.premise
                          : section == Section::genre  ? &brief.genre_tone
                          : section == Section::length ? &brief.length
                          : section == Section::themes ? &brief.themes
                                                       : nullptr;
    if (target != nullptr) {
      *target += target->empty() ? text : " " + text;
    }
  };

  size_t begin = 0;
  while (begin <= markdown.size()) {
    size_t end = markdown.find('\n', begin);
    if (end == std::string_view::npos) {
      end = markdown.size();
    }
    std::string raw(markdown.substr(begin, end - begin));
    begin = end + 1;
    if (!raw.empty() && raw.back() == '\r') {
      raw.pop_back();
    }
    std::string line = trim(raw);
    if (auto count = scene_count_line(line)) {
      brief.scene_count = count;
      continue;
    }
    if (!line.empty() && line[0] == '#') {
      flush_list();
      size_t hashes = line.find_first_not_of('#');
      section = classify(hashes == std::string::npos ? "" : line.substr(hashes));
      continue;
    }
    if (line.empty()) {
      continuing = nullptr;
      continue;
    }
    if (auto item = list_item(line)) {
      items.push_back(*item);
      continuing = &items.back();
      continue;
    }
    bool indented = !raw.empty() && std::isspace(static_cast<unsigned char>(raw[0])) != 0;
    if (continuing != nullptr && indented) {
      *continuing += " " + line;
      continue;
    }
    append_text(line);
  }
  flush_list();

  for (const auto& [list_section, list] : lists) {
    for (const std::string& item : list) {
      if (list_section == Section::characters || list_section == Section::locations) {
        std::optional<BriefEntity> entity = entity_item(item);
        if (!entity) {
          continue;
        }
        std::vector<BriefEntity>& into =
            list_section == Section::characters ? brief.characters : brief.locations;
        bool taken = std::any_of(brief.characters.begin(), brief.characters.end(),
                                 [&](const BriefEntity& e) { return e.id == entity->id; }) ||
                     std::any_of(brief.locations.begin(), brief.locations.end(),
                                 [&](const BriefEntity& e) { return e.id == entity->id; });
        if (!taken) {
          into.push_back(*entity);
        }
      } else if (list_section == Section::beats) {
        brief.beats.push_back(strip_markup(item));
      } else if (list_section == Section::premise) {
        brief.premise += brief.premise.empty() ? item : " " + item;
      } else if (list_section == Section::themes) {
        brief.themes += brief.themes.empty() ? item : "; " + item;
      }
    }
  }
  brief.period = find_year(brief.premise);
  if (brief.period.empty()) {
    brief.period = find_year(brief.genre_tone);
  }
  return brief;
}

// ---- what descriptions imply ------------------------------------------------------------------

namespace {

// Clauses split at , ; . ( ) and dashes.
std::vector<std::string> clauses_of(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  auto flush = [&] {
    std::string t = trim(current);
    if (!t.empty()) {
      out.push_back(t);
    }
    current.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ',' || c == ';' || c == '.' || c == '(' || c == ')') {
      flush();
    } else if (text.compare(i, 3, "\xE2\x80\x94") == 0 || text.compare(i, 3, "\xE2\x80\x93") == 0) {
      flush();
      i += 2;
    } else {
      current += c;
    }
  }
  flush();
  return out;
}

bool any_word(std::string_view text, const std::set<std::string>& vocabulary) {
  for (const std::string& w : words_of(text)) {
    if (vocabulary.count(w)) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> carried_props(const BriefEntity& character) {
  static const std::vector<std::string> k_vocabulary = {
      "stick",    "cane",  "crutch",  "clipboard", "lantern", "torch",     "flashlight", "notebook",
      "ledger",   "diary", "journal", "radio",     "keys",    "key",       "knife",      "pistol",
      "revolver", "rifle", "map",     "letter",    "satchel", "briefcase", "suitcase",   "umbrella",
      "camera",   "phone", "sword",   "wallet",    "pipe",    "compass",   "binoculars", "telescope"};
  std::vector<std::string> out;
  for (const std::string& item : k_vocabulary) {
    if (has_word(character.description, item)) {
      std::string id = entity_of(item);
      if (!id.empty() && std::find(out.begin(), out.end(), id) == out.end()) {
        out.push_back(id);
      }
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> set_items(const BriefEntity& location) {
  std::string text = location.description;
  size_t semicolon = text.find(';');
  std::vector<std::string> parts;
  if (semicolon != std::string::npos) {
    for (const std::string& c : clauses_of(text.substr(semicolon + 1))) {
      parts.push_back(c);
    }
  } else {
    std::vector<std::string> all = clauses_of(text);
    parts.assign(all.size() > 1 ? all.begin() + 1 : all.end(), all.end());
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string phrase : parts) {
    for (const char* article : {"the ", "a ", "an ", "The ", "A ", "An "}) {
      if (phrase.rfind(article, 0) == 0) {
        phrase = phrase.substr(std::string(article).size());
        break;
      }
    }
    if (words_of(phrase).empty() || words_of(phrase).size() > 3) {
      continue;
    }
    std::string id = entity_of(phrase);
    if (!id.empty() && std::none_of(out.begin(), out.end(), [&](const auto& p) { return p.first == id; })) {
      out.emplace_back(id, lower(phrase));
    }
  }
  return out;
}

std::vector<std::string> injury_clauses(std::string_view text) {
  static const std::set<std::string> k_injury = {
      "injured",  "injury",     "injuries", "wound",   "wounded",  "cut",       "cuts",
      "bleeding", "bleeds",     "bruise",   "bruised", "broken",   "fracture",  "fractured",
      "sprain",   "sprained",   "strapped", "limp",    "limps",    "limping",   "fever",
      "feverish", "concussion", "burned",   "stabbed", "poisoned", "frostbite", "hypothermia"};
  std::vector<std::string> out;
  for (const std::string& c : clauses_of(text)) {
    if (any_word(c, k_injury) && !has_word(c, "scar") && !has_word(c, "scarred")) {
      out.push_back(c);
    }
  }
  return out;
}

bool describes_heal(std::string_view text) {
  static const std::set<std::string> k_heal = {"heal",     "heals",    "healed",    "treated", "bandaged",
                                               "stitched", "recovers", "recovered", "cured",   "mended"};
  return any_word(text, k_heal);
}

}  // namespace avps::backends::sim
