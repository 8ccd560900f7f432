#include "avps/governance/brief_estimate.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <map>
#include <set>

#include "avps/artifacts/names.hpp"
#include "avps/core/text.hpp"

namespace avps::governance {

namespace {

using core::list_item;
using core::lower;
using core::trim;

// 1..9999 from digits or English words up to ninety-nine ("twenty-four"); nullopt otherwise.
std::optional<int64_t> number_of(const std::string& token) {
  if (!token.empty() && token.size() <= 4 &&
      std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t n = std::stoll(token);
    return n > 0 ? std::optional<int64_t>(n) : std::nullopt;
  }
  static const std::array<const char*, 20> k_units = {
      "zero",     "one",     "two",     "three",     "four",     "five",    "six",
      "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",  "thirteen",
      "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
  static const std::array<const char*, 8> k_tens = {"twenty", "thirty",  "forty",  "fifty",
                                                    "sixty",  "seventy", "eighty", "ninety"};
  auto unit = [](const std::string& w) -> int64_t {
    for (size_t i = 1; i < k_units.size(); ++i) {
      if (w == k_units[i]) {
        return static_cast<int64_t>(i);
      }
    }
    return 0;
  };
  auto ten = [](const std::string& w) -> int64_t {
    for (size_t i = 0; i < k_tens.size(); ++i) {
      if (w == k_tens[i]) {
        return static_cast<int64_t>(20 + 10 * i);
      }
    }
    return 0;
  };
  if (int64_t n = unit(token); n > 0) {
    return n;
  }
  if (int64_t n = ten(token); n > 0) {
    return n;
  }
  size_t dash = token.find('-');
  if (dash != std::string::npos) {
    int64_t tens = ten(token.substr(0, dash));
    int64_t units = unit(token.substr(dash + 1));
    if (tens > 0 && units > 0 && units < 10) {
      return tens + units;
    }
  }
  return std::nullopt;
}

// Lower-case words: letters, digits and inner hyphens.
std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : lower(text)) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0 || (c == '-' && !word.empty())) {
      word += c;
    } else if (!word.empty()) {
      words.push_back(word);
      word.clear();
    }
  }
  if (!word.empty()) {
    words.push_back(word);
  }
  for (std::string& w : words) {
    while (!w.empty() && w.back() == '-') {
      w.pop_back();
    }
  }
  return words;
}

// "Scenes: 6" (also as a list item or in bold): the explicit count the sim backend reads too.
std::optional<int64_t> scenes_line(const std::string& line) {
  std::string t = lower(line);
  t.erase(std::remove(t.begin(), t.end(), '*'), t.end());
  t = trim(t);
  if (auto item = list_item(t)) {
    t = *item;
  }
  if (t.rfind("scenes:", 0) != 0) {
    return std::nullopt;
  }
  std::vector<std::string> words = words_of(t.substr(7));
  return words.empty() ? std::nullopt : number_of(words[0]);
}

// "Mara Quill — 17, ..." -> "Mara Quill": the name before the first dash or colon.
std::string entity_name(const std::string& item) {
  static const std::array<const char*, 5> k_separators = {" \xE2\x80\x94", "\xE2\x80\x94", " \xE2\x80\x93 ",
                                                          " - ", ": "};
  std::string name = item;
  for (const char* separator : k_separators) {
    size_t at = item.find(separator);
    if (at != std::string::npos) {
      name = item.substr(0, at);
      break;
    }
  }
  name.erase(std::remove(name.begin(), name.end(), '*'), name.end());
  return trim(name);
}

enum class Section { other, length, characters, locations, beats };

Section classify(const std::string& heading) {
  std::string h = lower(trim(heading));
  if (h.rfind("length", 0) == 0) {
    return Section::length;
  }
  if (h.rfind("characters", 0) == 0 || h.rfind("cast", 0) == 0) {
    return Section::characters;
  }
  if (h.rfind("locations", 0) == 0 || h.rfind("sets", 0) == 0) {
    return Section::locations;
  }
  if (h.rfind("story beats", 0) == 0 || h.rfind("beats", 0) == 0) {
    return Section::beats;
  }
  return Section::other;
}

// Calls `on_line(line, number, section)` for each line of a brief that is not a heading, trimmed,
// with its 1-based line number and the section the last heading opened.
void walk_brief(std::string_view markdown,
                const std::function<void(const std::string&, size_t, Section)>& on_line) {
  Section section = Section::other;
  size_t number = 0;
  size_t begin = 0;
  while (begin <= markdown.size()) {
    size_t end = markdown.find('\n', begin);
    if (end == std::string_view::npos) {
      end = markdown.size();
    }
    std::string line = trim(markdown.substr(begin, end - begin));
    begin = end + 1;
    ++number;
    if (!line.empty() && line[0] == '#') {
      size_t hashes = line.find_first_not_of('#');
      section = classify(hashes == std::string::npos ? "" : line.substr(hashes));
      continue;
    }
    on_line(line, number, section);
  }
}

std::string padded(const std::string& prefix, int64_t number) {
  return prefix + (number < 10 ? "0" : "") + std::to_string(number);
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    out += (i == 0 ? "" : separator) + items[i];
  }
  return out;
}

// Hero tier per shot: the mix's counts by largest remainder, spread evenly in screen order (each
// shot takes the tier furthest behind its share so far; ties go A, B, C).
std::vector<std::string> hero_tiers(int64_t shots, const std::array<int, 3>& pct) {
  static const std::array<const char*, 3> k_tiers = {"A", "B", "C"};
  std::array<int64_t, 3> count{};
  std::array<int64_t, 3> remainder{};
  int64_t given = 0;
  for (size_t t = 0; t < 3; ++t) {
    count[t] = shots * pct[t] / 100;
    remainder[t] = shots * pct[t] % 100;
    given += count[t];
  }
  std::array<size_t, 3> order = {0, 1, 2};
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainder[a] > remainder[b]; });
  for (size_t k = 0; given < shots; k = (k + 1) % 3) {
    ++count[order[k]];
    ++given;
  }
  std::vector<std::string> out;
  std::array<int64_t, 3> assigned{};
  for (int64_t i = 0; i < shots; ++i) {
    size_t best = 3;
    int64_t best_deficit = 0;
    for (size_t t = 0; t < 3; ++t) {
      if (assigned[t] >= count[t]) {
        continue;
      }
      int64_t deficit = count[t] * (i + 1) - assigned[t] * shots;
      if (best == 3 || deficit > best_deficit) {
        best = t;
        best_deficit = deficit;
      }
    }
    ++assigned[best];
    out.emplace_back(k_tiers[best]);
  }
  return out;
}

}  // namespace

// Longer than this, a list item's "name" is a sentence: the sim (sim/brief.cpp) reads no entity from it.
constexpr size_t k_max_name_bytes = 80;

std::vector<std::string> brief_name_problems(std::string_view markdown) {
  std::vector<std::string> out;
  std::map<std::string, std::pair<std::string, size_t>> ids[2];  // per list: id -> first name, line
  walk_brief(markdown, [&](const std::string& line, size_t number, Section section) {
    std::optional<std::string> item = list_item(line);
    if (!item || (section != Section::characters && section != Section::locations)) {
      return;
    }
    const std::string name = entity_name(*item);
    if (name.empty()) {
      return;
    }
    const bool character = section == Section::characters;
    const std::string what = character ? "the character" : "the location";
    const std::string at = "line " + std::to_string(number) + ": ";
    if (name.size() > k_max_name_bytes) {
      size_t cut = 0;  // about 40 bytes, never inside a UTF-8 sequence
      while (cut < 40) {
        const size_t length = core::utf8_sequence_length(name, cut);
        cut += length == 0 ? 1 : length;
      }
      out.push_back(at + what + " \"" + name.substr(0, cut) + "...\" is " + std::to_string(name.size()) +
                    " bytes long, more than a name's " + std::to_string(k_max_name_bytes) +
                    ": end the name with a dash or a colon and describe after it");
      return;
    }
    Result<std::string> id = artifacts::normalize_entity_id(name);
    if (!id) {
      const bool no_latin = id.error().message.find("no ASCII") != std::string::npos;
      out.push_back(at + what + " " + id.error().message + "; " +
                    (no_latin ? "add a name in Latin letters, e.g. \"<Latin name> (" + name + ")\""
                              : std::string("rename it")));
      return;
    }
    auto [first, fresh] = ids[character ? 0 : 1].try_emplace(*id, name, number);
    if (!fresh && lower(first->second.first) != lower(name)) {
      out.push_back(at + what + " \"" + name + "\" makes the id " + *id + ", as \"" + first->second.first +
                    "\" on line " + std::to_string(first->second.second) + " does: tell them apart by name");
    }
  });
  return out;
}

BriefFacts read_brief(std::string_view markdown) {
  BriefFacts facts;
  std::string length;
  std::set<std::string> seen_characters;
  std::set<std::string> seen_locations;
  walk_brief(markdown, [&](const std::string& line, size_t, Section section) {
    if (auto scenes = scenes_line(line)) {
      facts.scenes = scenes;
      facts.scenes_source = "the brief's \"Scenes: " + std::to_string(*scenes) + "\" line";
      return;
    }
    std::optional<std::string> item = list_item(line);
    switch (section) {
      case Section::length:
        length += " " + line;
        break;
      case Section::characters:
        if (item) {
          std::string name = entity_name(*item);
          if (!name.empty() && seen_characters.insert(lower(name)).second) {
            facts.characters.push_back(name);
          }
        }
        break;
      case Section::locations:
        if (item) {
          std::string name = entity_name(*item);
          if (!name.empty() && seen_locations.insert(lower(name)).second) {
            facts.locations.push_back(name);
          }
        }
        break;
      case Section::beats:
        facts.story_beats += item ? 1 : 0;
        break;
      case Section::other:
        break;
    }
  });

  std::vector<std::string> words = words_of(length);
  for (size_t i = 1; i < words.size(); ++i) {
    std::optional<int64_t> n = number_of(words[i - 1]);
    if (!n) {
      continue;
    }
    std::string quoted = "\"" + words[i - 1] + " " + words[i] + "\"";
    if ((words[i] == "scenes" || words[i] == "scene") && !facts.scenes) {
      facts.scenes = n;
      facts.scenes_source = "the brief's ## Length (" + quoted + ")";
    } else if ((words[i] == "shots" || words[i] == "shot") && !facts.shots) {
      facts.shots = n;
      bool per = i + 2 < words.size() &&
                 (words[i + 1] == "per" || words[i + 1] == "a" || words[i + 1] == "each") &&
                 words[i + 2] == "scene";
      facts.shots_per_scene = per || (i + 1 < words.size() && words[i + 1] == "per-scene");
      facts.shots_source =
          "the brief's ## Length (" + quoted + (facts.shots_per_scene ? " per scene" : "") + ")";
    }
  }
  if (!facts.scenes && facts.story_beats > 0) {
    facts.scenes = facts.story_beats;
    facts.scenes_source = "the brief's " + std::to_string(facts.story_beats) + " story beats, one scene each";
  }
  return facts;
}

Result<BriefPlan> plan_from_brief(const BriefFacts& facts, const BriefAssumptions& a,
                                  const std::vector<std::string>& recorded_scene_ids) {
  if (a.hero_a_pct < 0 || a.hero_b_pct < 0 || a.hero_c_pct < 0 ||
      a.hero_a_pct + a.hero_b_pct + a.hero_c_pct != 100) {
    return make_error(ErrorCode::invalid_argument, "the hero tier mix must add up to 100 %");
  }
  if (a.default_scenes <= 0 || a.shots_per_scene <= 0 || a.shot_duration_ms <= 0 ||
      a.default_characters < 0 || a.default_locations <= 0) {
    return make_error(ErrorCode::invalid_argument,
                      "brief estimate assumptions need a positive scene count, shots per scene, shot "
                      "duration and location count");
  }
  AVPS_TRY_ASSIGN(Multiplier multiplier, regen_multiplier(a.regen_risk));

  BriefPlan plan;
  // Scenes.
  if (!recorded_scene_ids.empty()) {
    plan.scene_ids = recorded_scene_ids;
    plan.assumptions.push_back(std::to_string(plan.scene_ids.size()) +
                               " scenes, as the recorded SCENES lists them");
  } else {
    int64_t scenes = facts.scenes.value_or(a.default_scenes);
    for (int64_t n = 1; n <= scenes; ++n) {
      plan.scene_ids.push_back(padded("S", n));
    }
    plan.assumptions.push_back(
        std::to_string(scenes) + " scenes, from " +
        (facts.scenes ? facts.scenes_source : "the default (the brief names no scene count)"));
  }
  const auto scene_count = static_cast<int64_t>(plan.scene_ids.size());

  // Shots per scene: a total is spread evenly, earlier scenes taking the remainder.
  std::vector<int64_t> per_scene(static_cast<size_t>(scene_count), a.shots_per_scene);
  if (facts.shots && facts.shots_per_scene) {
    std::fill(per_scene.begin(), per_scene.end(), *facts.shots);
    plan.assumptions.push_back(std::to_string(*facts.shots) + " shots per scene, from " + facts.shots_source);
  } else if (facts.shots) {
    int64_t total = std::max(*facts.shots, scene_count);
    for (int64_t s = 0; s < scene_count; ++s) {
      per_scene[static_cast<size_t>(s)] = total / scene_count + (s < total % scene_count ? 1 : 0);
    }
    std::vector<std::string> spread;
    for (int64_t n : per_scene) {
      spread.push_back(std::to_string(n));
    }
    plan.assumptions.push_back(std::to_string(total) + " shots in all, from " + facts.shots_source +
                               (total > *facts.shots ? ", raised to one per scene" : "") + ", spread " +
                               join(spread, ", ") + " over the scenes");
  } else {
    plan.assumptions.push_back(std::to_string(a.shots_per_scene) +
                               " shots per scene, the default (the brief names no shot count)");
  }
  int64_t shot_total = 0;
  for (int64_t n : per_scene) {
    shot_total += n;
  }
  plan.assumptions.push_back(
      std::to_string(a.shot_duration_ms / 1000) +
      (a.shot_duration_ms % 1000 == 0 ? "" : "." + std::to_string(a.shot_duration_ms % 1000)) +
      " s per shot on average");

  // Hero tiers, regen risk, complexity.
  std::vector<std::string> tiers = hero_tiers(shot_total, {a.hero_a_pct, a.hero_b_pct, a.hero_c_pct});
  std::array<int64_t, 3> counted{};
  for (const std::string& tier : tiers) {
    ++counted[static_cast<size_t>(tier[0] - 'A')];
  }
  plan.assumptions.push_back("hero tier mix A " + std::to_string(a.hero_a_pct) + " % / B " +
                             std::to_string(a.hero_b_pct) + " % / C " + std::to_string(a.hero_c_pct) +
                             " %: " + std::to_string(counted[0]) + " A, " + std::to_string(counted[1]) +
                             " B, " + std::to_string(counted[2]) +
                             " C shots (A on gen_premium, B gen_mid, C gen_low)");
  plan.assumptions.push_back(
      "regen risk " + a.regen_risk + " (x" + std::to_string(multiplier.numerator / 10) + "." +
      std::to_string(multiplier.numerator % 10) + ") and complexity " + a.complexity + " for every shot");

  // Characters and sets: every one appears, so each gets its locks.
  std::vector<std::string> characters = facts.characters;
  std::vector<std::string> locations = facts.locations;
  std::string cast_source = "from the brief's lists";
  if (characters.empty()) {
    for (int64_t n = 1; n <= a.default_characters; ++n) {
      characters.push_back("CHARACTER_" + std::to_string(n));
    }
    cast_source = "characters by default (the brief lists none)";
  }
  if (locations.empty()) {
    for (int64_t n = 1; n <= a.default_locations; ++n) {
      locations.push_back("LOCATION_" + std::to_string(n));
    }
    cast_source +=
        facts.characters.empty() ? ", locations by default too" : ", locations by default (none listed)";
  }
  plan.assumptions.push_back(std::to_string(characters.size()) + " characters and " +
                             std::to_string(locations.size()) + " locations, " + cast_source +
                             ": one character, voice and set lock each");

  size_t shot_index = 0;
  for (size_t s = 0; s < plan.scene_ids.size(); ++s) {
    for (int64_t n = 1; n <= per_scene[s]; ++n, ++shot_index) {
      ShotPlan shot;
      shot.scene_id = plan.scene_ids[s];
      shot.shot_id = padded(shot.scene_id + "_SH", n);
      shot.set_id = locations[s % locations.size()];
      shot.duration_ms = a.shot_duration_ms;
      shot.hero_tier = tiers[shot_index];
      shot.complexity = a.complexity;
      shot.regen_risk = a.regen_risk;
      if (!characters.empty()) {
        shot.char_ids = {characters[shot_index % characters.size()]};
      }
      plan.shots.push_back(std::move(shot));
    }
  }
  return plan;
}

Result<BriefEstimate> estimate_from_brief(std::string_view brief_markdown,
                                          const BriefAssumptions& assumptions,
                                          const std::vector<std::string>& recorded_scene_ids,
                                          const std::map<std::string, skills::SkillDef>& skills,
                                          const Router& router, const ProjectionSettings& settings,
                                          int64_t input_tokens_per_call) {
  BriefEstimate estimate;
  AVPS_TRY_ASSIGN(estimate.plan,
                  plan_from_brief(read_brief(brief_markdown), assumptions, recorded_scene_ids));
  AVPS_TRY_ASSIGN(
      std::vector<ModelCallEstimate> calls,
      estimate_skill_calls(skills, estimate.plan.scene_ids, estimate.plan.shots, input_tokens_per_call));
  AVPS_TRY_ASSIGN(estimate.projection, project_costs(estimate.plan.shots, calls, router, settings));
  return estimate;
}

Result<int64_t> projected_narrative_calls(const LatestArtifact& latest, std::string_view brief_markdown,
                                          const std::map<std::string, skills::SkillDef>& skills) {
  std::vector<std::string> scene_ids;
  std::vector<ShotPlan> shots;
  Result<RecordedShots> recorded = recorded_shots(latest);
  if (!recorded && recorded.error().code != ErrorCode::not_found) {
    return recorded.error();
  }
  if (recorded && !recorded->shots.empty()) {
    scene_ids = recorded->scene_ids;
    shots = recorded->shots;
  } else {
    const std::vector<std::string> scenes = recorded ? recorded->scene_ids : std::vector<std::string>{};
    AVPS_TRY_ASSIGN(BriefPlan plan, plan_from_brief(read_brief(brief_markdown), BriefAssumptions{}, scenes));
    scene_ids = plan.scene_ids;
    shots = plan.shots;
  }
  // Input tokens do not change the count of calls.
  AVPS_TRY_ASSIGN(std::vector<ModelCallEstimate> calls, estimate_skill_calls(skills, scene_ids, shots, 0));
  return narrative_calls(calls);
}

}  // namespace avps::governance
