// The sim backend's PRNG, input accessors and text helpers.

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include "avps/artifacts/names.hpp"
#include "sim_internal.hpp"

namespace avps::backends::sim {

// ---- Rng --------------------------------------------------------------------------------------

namespace {

uint64_t hex_word(std::string_view hex, size_t at) {
  uint64_t value = 0;
  for (size_t i = at; i < at + 16 && i < hex.size(); ++i) {
    char c = hex[i];
    uint64_t digit = c >= '0' && c <= '9'   ? static_cast<uint64_t>(c - '0')
                     : c >= 'a' && c <= 'f' ? static_cast<uint64_t>(c - 'a' + 10)
                                            : 0;
    value = (value << 4) | digit;
  }
  return value;
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(std::string_view sha256_hex) {
  for (size_t i = 0; i < 4; ++i) {
    m_s[i] = hex_word(sha256_hex, i * 16);
  }
  if ((m_s[0] | m_s[1] | m_s[2] | m_s[3]) == 0) {
    m_s[0] = 0x9e3779b97f4a7c15ULL;  // xoshiro must not start from all zeros
  }
}

uint64_t Rng::next() {
  const uint64_t result = rotl(m_s[1] * 5, 7) * 9;
  const uint64_t t = m_s[1] << 17;
  m_s[2] ^= m_s[0];
  m_s[3] ^= m_s[1];
  m_s[1] ^= m_s[2];
  m_s[0] ^= m_s[3];
  m_s[2] ^= t;
  m_s[3] = rotl(m_s[3], 45);
  return result;
}

double Rng::unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

int Rng::range(int lo, int hi) {
  if (hi <= lo) {
    return lo;
  }
  uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int>(next() % span);
}

bool Rng::chance(double p) {
  // Always draw, so the stream stays aligned whatever the probability.
  double u = unit();
  return u < p;
}

std::string Rng::pick(const std::vector<std::string>& items) {
  if (items.empty()) {
    return "";
  }
  return items[next() % items.size()];
}

// ---- inputs -----------------------------------------------------------------------------------

const json* input(const Call& call, std::string_view kind) {
  const json& inputs = call.request.inputs;
  if (!inputs.is_object()) {
    return nullptr;
  }
  auto it = inputs.find(std::string(kind));
  if (it == inputs.end() || it->is_null()) {
    return nullptr;
  }
  return &*it;
}

std::string brief_text(const Call& call) {
  const json* brief = input(call, "BRIEF");
  if (brief == nullptr) {
    return "";
  }
  if (brief->is_string()) {
    return brief->get<std::string>();
  }
  if (brief->is_object()) {
    for (const char* key : {"text", "markdown", "content"}) {
      if (brief->contains(key) && (*brief)[key].is_string()) {
        return (*brief)[key].get<std::string>();
      }
    }
  }
  return "";
}

std::vector<json> rows_of(const json* value) {
  std::vector<json> out;
  if (value == nullptr) {
    return out;
  }
  if (value->is_array()) {
    for (const json& item : *value) {
      std::vector<json> inner = rows_of(&item);
      out.insert(out.end(), inner.begin(), inner.end());
    }
  } else if (value->is_object()) {
    auto rows = value->find("rows");
    if (rows != value->end() && rows->is_array()) {
      for (const json& row : *rows) {
        if (row.is_object()) {
          out.push_back(row);
        }
      }
    } else {
      out.push_back(*value);
    }
  }
  return out;
}

std::vector<json> artifacts_of(const json* value) {
  std::vector<json> out;
  if (value == nullptr) {
    return out;
  }
  if (value->is_array()) {
    for (const json& item : *value) {
      if (item.is_object()) {
        out.push_back(item);
      }
    }
  } else if (value->is_object()) {
    // One artifact carries a "kind" or "format_version"; otherwise it is a map of them.
    if (value->contains("kind") || value->contains("format_version") || value->empty()) {
      out.push_back(*value);
    } else {
      for (const auto& [key, item] : value->items()) {
        if (item.is_object()) {
          out.push_back(item);
        }
      }
    }
  }
  return out;
}

std::map<std::string, json> locks_of(const Call& call, std::string_view kind) {
  std::map<std::string, json> out;
  const json* value = input(call, kind);
  if (value == nullptr) {
    return out;
  }
  auto add = [&](const std::string& key, const json& lock) {
    std::string id = str(lock, "entity_id", key);
    if (!id.empty() && artifacts::is_entity_id(id)) {
      out.emplace(id, lock);
    }
  };
  if (value->is_array()) {
    for (const json& lock : *value) {
      if (lock.is_object()) {
        add("", lock);
      }
    }
  } else if (value->is_object()) {
    if (value->contains("entity_id")) {
      add("", *value);
    } else {
      for (const auto& [key, lock] : value->items()) {
        if (lock.is_object()) {
          add(key, lock);
        }
      }
    }
  }
  return out;
}

json world_state_of(const Call& call) {
  const json* state = input(call, "WORLD_STATE");
  if (state != nullptr && state->is_object() && state->contains("characters")) {
    json out = *state;
    for (const char* section : {"characters", "props", "locations"}) {
      if (!out.contains(section) || !out[section].is_object()) {
        out[section] = json::object();
      }
    }
    return out;
  }
  return json{{"format_version", 1},
              {"timeline", {{"current_scene", ""}, {"elapsed_time", ""}, {"global_notes", ""}}},
              {"characters", json::object()},
              {"props", json::object()},
              {"locations", json::object()},
              {"rules", {{"fictional_constraints", json::array()}, {"modified_rules", json::array()}}}};
}

namespace {

std::string scope_text(const Call& call, std::initializer_list<const char*> keys) {
  const json& scope = call.request.scope;
  if (!scope.is_object()) {
    return "";
  }
  for (const char* key : keys) {
    if (scope.contains(key) && scope[key].is_string()) {
      return scope[key].get<std::string>();
    }
  }
  return "";
}

std::string scene_of_shot(const std::string& shot) {
  size_t at = shot.find("_SH");
  return at == std::string::npos ? "" : shot.substr(0, at);
}

}  // namespace

std::string scene_id(const Call& call) {
  std::string id = scope_text(call, {"scene_id", "scene"});
  if (artifacts::is_scene_id(id)) {
    return id;
  }
  std::string shot = scope_text(call, {"shot_id", "shot"});
  if (artifacts::is_shot_id(shot)) {
    return scene_of_shot(shot);
  }
  std::string target = scope_text(call, {"target"});
  if (artifacts::is_scene_id(target)) {
    return target;
  }
  std::vector<json> rows = rows_of(input(call, "SCENES"));
  if (rows.size() == 1 && artifacts::is_scene_id(str(rows[0], "scene_id"))) {
    return str(rows[0], "scene_id");
  }
  std::vector<json> shots = rows_of(input(call, "SHOTLIST"));
  if (shots.size() == 1 && artifacts::is_scene_id(str(shots[0], "scene_id"))) {
    return str(shots[0], "scene_id");
  }
  return "S01";
}

std::optional<json> row_of(const Call& call, std::string_view kind, const char* id_member,
                           const std::string& id) {
  std::vector<json> rows = rows_of(input(call, kind));
  for (const json& row : rows) {
    if (str(row, id_member) == id) {
      return row;
    }
  }
  if (rows.size() == 1) {
    return rows[0];
  }
  return std::nullopt;
}

std::optional<json> scene_row(const Call& call) { return row_of(call, "SCENES", "scene_id", scene_id(call)); }

std::string shot_id(const Call& call) {
  std::string id = scope_text(call, {"shot_id", "shot"});
  if (artifacts::is_shot_id(id)) {
    return id;
  }
  std::vector<json> shots = rows_of(input(call, "SHOTLIST"));
  if (shots.size() == 1 && artifacts::is_shot_id(str(shots[0], "shot_id"))) {
    return str(shots[0], "shot_id");
  }
  std::vector<json> packs = artifacts_of(input(call, "GENPACK"));
  if (!packs.empty() && artifacts::is_shot_id(str(packs.back(), "shot_id"))) {
    return str(packs.back(), "shot_id");
  }
  return scene_id(call) + "_SH01";
}

std::optional<Page> page_of(const Call& call) {
  const json& scope = call.request.scope;
  if (!scope.is_object() || !scope.contains("page") || !scope["page"].is_object()) {
    return std::nullopt;
  }
  const json& p = scope["page"];
  auto count = [&](const char* key, size_t fallback) {
    return p.contains(key) && p[key].is_number_integer() && p[key].get<int64_t>() >= 0 &&
                   p[key].get<int64_t>() < 1'000'000
               ? static_cast<size_t>(p[key].get<int64_t>())
               : fallback;
  };
  Page page;
  page.index = std::max<size_t>(1, count("index", 1));
  page.rows_per_page = std::max<size_t>(1, count("rows_per_page", 1));
  page.of = count("of", 0);
  page.offset = count("offset", 0);
  page.total_rows = count("total_rows", 0);
  return page;
}

int attempt(const Call& call) {
  const json& scope = call.request.scope;
  if (scope.is_object()) {
    for (const char* key : {"attempt", "attempt_number"}) {
      if (scope.contains(key) && scope[key].is_number_integer() && scope[key].get<int64_t>() >= 1 &&
          scope[key].get<int64_t>() < 1'000'000) {
        return scope[key].get<int>();
      }
    }
  }
  return 1;
}

std::string entity_id(const Call& call, const std::string& fallback) {
  std::string id = scope_text(call, {"entity_id", "entity", "character", "set", "voice"});
  if (artifacts::is_entity_id(id)) {
    return id;
  }
  return fallback;
}

std::string target_id(const Call& call) {
  std::string target = scope_text(call, {"target", "target_id"});
  if (artifacts::is_target_id(target)) {
    return target;
  }
  std::string scene = scope_text(call, {"scene_id", "scene"});
  if (artifacts::is_scene_id(scene)) {
    return scene;
  }
  return "PROJECT";
}

int threshold(const Call& call, const char* pointer, int fallback) {
  const json& thresholds = call.settings.thresholds;
  try {
    json::json_pointer p(pointer);
    if (thresholds.is_object() && thresholds.contains(p) && thresholds[p].is_number()) {
      return static_cast<int>(thresholds[p].get<double>());
    }
  } catch (const json::exception&) {
    // A malformed pointer is a bug in the caller; the default applies.
  }
  return fallback;
}

// ---- text helpers -----------------------------------------------------------------------------

std::string str(const json& obj, const char* key, const std::string& fallback) {
  if (obj.is_object()) {
    auto it = obj.find(key);
    if (it != obj.end() && it->is_string() && !it->get<std::string>().empty()) {
      return it->get<std::string>();
    }
  }
  return fallback;
}

std::vector<std::string> strs(const json& obj, const char* key) {
  std::vector<std::string> out;
  if (obj.is_object()) {
    auto it = obj.find(key);
    if (it != obj.end() && it->is_array()) {
      for (const json& item : *it) {
        if (item.is_string()) {
          out.push_back(item.get<std::string>());
        }
      }
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) {
      out += separator;
    }
    out += item;
  }
  return out;
}


std::string sentence(std::string_view text, const std::string& fallback) {
  std::string out = trim(text);
  if (out.empty()) {
    return fallback;
  }
  out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  char last = out.back();
  if (last != '.' && last != '!' && last != '?') {
    out += '.';
  }
  return out;
}

std::string clause(std::string_view text) {
  std::string out = trim(text);
  while (!out.empty() && (out.back() == '.' || out.back() == ';' || out.back() == ',')) {
    out.pop_back();
  }
  // "The ferry brings ..." -> "the ferry brings ..."; "Mara takes ..." keeps its capital, since a
  // first word that is not a common opener is most likely a name.
  static const std::set<std::string> k_openers = {"the",    "a",    "an",    "in",  "on",   "at",   "after",
                                                  "before", "when", "while", "as",  "with", "dawn", "night",
                                                  "his",    "her",  "their", "its", "one",  "two",  "then"};
  size_t end = 0;
  while (end < out.size() && std::isalpha(static_cast<unsigned char>(out[end])) != 0) {
    ++end;
  }
  if (end > 0 && k_openers.count(lower(out.substr(0, end)))) {
    out[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(out[0])));
  }
  return out;
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  auto flush = [&] {
    while (!word.empty() && word.back() == '\'') {
      word.pop_back();
    }
    if (word.size() > 2 && word.compare(word.size() - 2, 2, "'s") == 0) {
      word.resize(word.size() - 2);
    }
    if (!word.empty()) {
      out.push_back(word);
    }
    word.clear();
  };
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || (c == '\'' && !word.empty())) {
      word += static_cast<char>(std::tolower(u));
    } else {
      flush();
    }
  }
  flush();
  return out;
}

bool has_word(std::string_view text, std::string_view word) {
  std::vector<std::string> words = words_of(text);
  return std::find(words.begin(), words.end(), lower(std::string(word))) != words.end();
}

std::string dehedge(std::string_view text) {
  // The words the lock_hedge_words gate check refuses (src/gates/checks.cpp), whole words,
  // case-insensitive.
  static const std::array<const char*, 12> k_hedges = {"kind of", "sort of",  "sometimes", "maybe",
                                                       "perhaps", "possibly", "probably",  "somewhat",
                                                       "might",   "usually",  "tends to",  "or so"};
  std::string out(text);
  bool changed = true;
  while (changed) {
    changed = false;
    std::string low = lower(out);
    for (const char* hedge : k_hedges) {
      std::string h(hedge);
      for (size_t at = low.find(h); at != std::string::npos; at = low.find(h, at + 1)) {
        bool starts = at == 0 || std::isalnum(static_cast<unsigned char>(low[at - 1])) == 0;
        size_t end = at + h.size();
        bool ends = end >= low.size() || std::isalnum(static_cast<unsigned char>(low[end])) == 0;
        if (starts && ends) {
          while (end < out.size() && out[end] == ' ') {
            ++end;
          }
          out.erase(at, end - at);
          changed = true;
          break;
        }
      }
      if (changed) {
        break;
      }
    }
  }
  out = trim(out);
  return out.empty() ? std::string("As established") : out;
}

std::string entity_of(std::string_view name) {
  Result<std::string> id = artifacts::normalize_entity_id(name);
  return id.ok() ? *id : std::string();
}

std::string display(const Call& call, const std::string& id) {
  if (const BriefEntity* c = call.brief.character(id)) {
    return c->name;
  }
  if (const BriefEntity* l = call.brief.location(id)) {
    return l->name;
  }
  return id;
}

std::vector<std::string> mentioned_characters(const Brief& brief, std::string_view text) {
  static const std::set<std::string> k_generic = {"the", "and", "old",  "young", "mr",   "mrs", "ms",
                                                  "dr",  "sir", "miss", "lady",  "lord", "man", "woman"};
  // A name word counts only when no other character shares it ("Quill" names two people).
  std::map<std::string, int> owners;
  for (const BriefEntity& c : brief.characters) {
    std::set<std::string> unique;
    for (const std::string& w : words_of(c.name)) {
      unique.insert(w);
    }
    for (const std::string& w : unique) {
      ++owners[w];
    }
  }
  std::vector<std::string> text_words = words_of(text);
  std::vector<std::string> ids_in_text = upper_ids_in(text);
  std::vector<std::string> out;
  for (const BriefEntity& c : brief.characters) {
    bool found = std::find(ids_in_text.begin(), ids_in_text.end(), c.id) != ids_in_text.end();
    for (const std::string& w : words_of(c.name)) {
      if (found) {
        break;
      }
      if (w.size() >= 3 && !k_generic.count(w) && owners[w] == 1 &&
          std::find(text_words.begin(), text_words.end(), w) != text_words.end()) {
        found = true;
      }
    }
    if (found) {
      out.push_back(c.id);
    }
  }
  return out;
}

std::vector<std::string> upper_ids_in(std::string_view text) {
  std::vector<std::string> out;
  std::string token;
  auto flush = [&] {
    while (!token.empty() && token.back() == '_') {
      token.pop_back();
    }
    bool has_letter = std::any_of(token.begin(), token.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    if (token.size() >= 3 && has_letter && artifacts::is_entity_id(token) && !artifacts::is_scene_id(token) &&
        !artifacts::is_shot_id(token) && std::find(out.begin(), out.end(), token) == out.end()) {
      out.push_back(token);
    }
    token.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c == '_' && !token.empty())) {
      token += c;
    } else {
      // A capitalised word ("Alex") is not an id: drop a token that continues in lower case.
      if (c >= 'a' && c <= 'z') {
        token.clear();
        while (i + 1 < text.size() && std::isalnum(static_cast<unsigned char>(text[i + 1])) != 0) {
          ++i;
        }
        continue;
      }
      flush();
    }
  }
  flush();
  return out;
}

json gate_of(const std::string& verdict, json scores, const std::vector<std::string>& reasons) {
  return json{{"verdict", verdict},
              {"scores", scores.is_object() ? std::move(scores) : json::object()},
              {"reasons", reasons}};
}

}  // namespace avps::backends::sim
