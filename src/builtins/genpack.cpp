#include "avps/builtins/genpack.hpp"

#include <algorithm>
#include <set>

#include "avps/artifacts/names.hpp"

namespace avps::builtins {
using nlohmann::json;

namespace {

const char* const k_sections[] = {"[STYLE]", "[SET]", "[CHARACTERS]", "[ACTION]", "[NEGATIVES / NO-DRIFT]", "[SETTINGS]"};

Error packaging_error(const std::string& shot, const std::string& what) {
  return make_error(ErrorCode::invalid_argument, "cannot package " + shot + ": " + what);
}

// The entity a lock file name is for, if it is a lock of `kind`.
std::string lock_entity(const std::string& name, const std::string& kind) {
  Result<artifacts::ArtifactName> parsed = artifacts::parse_artifact_name(name);
  return parsed && parsed->kind == kind ? parsed->target : std::string();
}

void add_unique(json& list, const std::string& item) {
  if (!item.empty() && std::find(list.begin(), list.end(), json(item)) == list.end()) {
    list.push_back(item);
  }
}

std::string joined(const json& list) {
  std::string out;
  for (const json& item : list) {
    out += (out.empty() ? "" : ", ") + item.get<std::string>();
  }
  return out;
}

// REGEN_RULES entries apply to a shot when their scope names the shot or its scene.
bool in_scope(const json& rule, const std::string& shot, const std::string& scene) {
  for (const json& id : rule.value("scope", json::array())) {
    if (id == shot || id == scene) {
      return true;
    }
  }
  return false;
}

}  // namespace

Result<json> assemble_genpack(const GenpackInputs& in) {
  const json& row = in.shot_row;
  const std::string shot = row.value("shot_id", std::string());
  const std::string scene = row.value("scene_id", std::string());
  if (shot.empty() || !row.contains("set_id") || !row.contains("char_ids") || !row.contains("hero_tier") ||
      !row.contains("duration_s")) {
    return packaging_error(shot.empty() ? "a shot" : shot, "the SHOTLIST row lacks shot_id, set_id, char_ids, hero_tier or duration_s");
  }
  if (lock_entity(in.style.name, "STYLE_LOCK") != "PROJECT") {
    return packaging_error(shot, "the style lock must be STYLE_PROJECT_LOCK, not " + in.style.name);
  }
  const std::string set_id = row["set_id"].get<std::string>();
  if (lock_entity(in.set.name, "SET_LOCK") != set_id) {
    return packaging_error(shot, "set " + set_id + " needs its SET lock, not " + in.set.name);
  }
  const json& char_ids = row["char_ids"];
  if (char_ids.size() != in.characters.size()) {
    return packaging_error(shot, std::to_string(char_ids.size()) + " characters in the shot but " +
                                     std::to_string(in.characters.size()) + " CHAR locks");
  }
  const bool hero_a = row["hero_tier"] == "A";

  json characters = json::array();
  for (size_t i = 0; i < in.characters.size(); ++i) {
    const LockFace& lock = in.characters[i];
    const std::string who = char_ids[i].get<std::string>();
    if (lock_entity(lock.name, "CHAR_LOCK") != who) {
      return packaging_error(shot, "character " + who + " needs its CHAR lock, not " + lock.name);
    }
    // Hero A: restate 2-3 facial markers, the face first, then the lock's signature identifiers.
    json anchors = json::array();
    if (hero_a) {
      const json appearance = lock.content.value("canonical_appearance", json::object());
      for (const char* field : {"distinguishing_marks", "eyes", "hair"}) {
        if (anchors.size() < 3 && appearance.contains(field) && appearance[field].is_string()) {
          add_unique(anchors, appearance[field].get<std::string>());
        }
      }
      for (const json& marker : lock.content.value("signature_identifiers", json::array())) {
        if (anchors.size() < 2 && marker.is_string()) {
          add_unique(anchors, marker.get<std::string>());
        }
      }
    }
    characters.push_back({{"lock", lock.name}, {"text", lock.face}, {"reinforced_anchors", anchors}});
  }

  // ACTION: the blocking, then what the world state says must be visible. Nothing is invented.
  std::string action = row.value("blocking_summary", std::string());
  const json world_characters = in.world_state.value("characters", json::object());
  for (const json& id : char_ids) {
    const std::string who = id.get<std::string>();
    if (!world_characters.contains(who)) {
      continue;
    }
    const json& state = world_characters[who];
    if (!state.value("inventory", json::array()).empty()) {
      action += "\nContinuity: " + who + " carries " + joined(state["inventory"]) + ".";
    }
    for (const json& injury : state.value("injuries", json::array())) {
      action += "\nContinuity: " + who + " still shows: " + injury.get<std::string>() + ".";
    }
  }
  const json place = in.world_state.value("locations", json::object()).value(set_id, json::object());
  for (const char* field : {"condition", "lighting_state"}) {
    std::string value = place.value(field, std::string());
    if (!value.empty()) {
      action += "\nContinuity: " + set_id + " " + (std::string(field) == "condition" ? "condition" : "lighting") + ": " +
                value + ".";
    }
  }

  // NEGATIVES: every lock's forbidden drift, then the regen rules that tighten constraints.
  json negatives = json::array();
  for (const json& item : in.style.content.value("forbidden_drift", json::array())) {
    add_unique(negatives, item.get<std::string>());
  }
  for (const json& item : in.set.content.value("forbidden_drift", json::array())) {
    add_unique(negatives, item.get<std::string>());
  }
  for (const LockFace& lock : in.characters) {
    for (const json& item : lock.content.value("forbidden_drift", json::array())) {
      add_unique(negatives, item.get<std::string>());
    }
  }
  if (in.regen_rules) {
    for (const json& rule : in.regen_rules->value("prompt_adjustment_rules", json::array())) {
      if (!in_scope(rule, shot, scene)) {
        continue;
      }
      std::string text = rule.value("rule", std::string());
      if (rule.value("adjustment_type", std::string()) == "constraint_tightening") {
        add_unique(negatives, text);
      } else {
        action += "\nAdjustment (" + rule.value("adjustment_type", std::string()) + "): " + text;
      }
    }
  }
  // The last QC verdict's findings on this shot, as the packager's own correction (spec §2.17:
  // "QC findings applied"); this is what makes the next attempt's GenPack differ.
  for (const std::string& finding : in.qc_findings) {
    add_unique(negatives, "Avoid what QC found: " + finding);
  }
  // A judge's revision request (a storyboard's Adjust): its findings, applied the same way.
  for (const std::string& finding : in.revision_findings) {
    add_unique(negatives, finding);
  }
  add_unique(negatives, "No added characters, props, wardrobe or environment changes");

  json settings = {{"resolution", in.resolution},
                   {"tier", in.tier},
                   {"hero_tier", row["hero_tier"]},
                   {"duration_s", row["duration_s"]}};
  if (in.seed) {
    settings["seed"] = *in.seed;
  }
  // The analyzer's adjustments that name a GenPack field (skills.md 2.19: duration reduction,
  // complexity reduction) are applied to it, in the rules' order; a shot is never lengthened.
  if (in.regen_rules) {
    for (const json& rule : in.regen_rules->value("prompt_adjustment_rules", json::array())) {
      const json adjusted = rule.value("settings", json::object());
      if (!in_scope(rule, shot, scene) || !adjusted.is_object()) {
        continue;
      }
      if (adjusted.contains("duration_s") && adjusted["duration_s"].is_number() &&
          adjusted["duration_s"].get<double>() < settings["duration_s"].get<double>()) {
        settings["duration_s"] = adjusted["duration_s"];
      }
      for (const char* field : {"complexity_level", "camera_type"}) {
        if (adjusted.contains(field) && adjusted[field].is_string()) {
          settings[field] = adjusted[field];
        }
      }
    }
  }
  json genpack = {{"format_version", 1},
                  {"kind", "GENPACK"},
                  {"shot_id", shot},
                  {"gate", {{"verdict", "PASS"}, {"scores", json::object()}, {"reasons", json::array()}}},
                  {"style", {{"lock", in.style.name}, {"text", in.style.face}}},
                  {"set", {{"lock", in.set.name}, {"text", in.set.face}}},
                  {"characters", characters},
                  {"action", action},
                  {"negatives_no_drift", negatives},
                  {"settings", settings}};
  if (!in.carried.empty()) {
    json carried = json::array();
    for (const LockFace& face : in.carried) {
      carried.push_back({{"artifact", face.name}, {"text", face.face}});
    }
    genpack["carried"] = std::move(carried);
  }
  return genpack;
}

std::vector<core::Violation> check_genpack(const json& genpack, const std::string& face,
                                           const std::vector<LockFace>& expected_locks) {
  std::vector<core::Violation> out;
  const std::string shot = genpack.value("shot_id", std::string("GENPACK"));

  // The six sections, once each, in the fixed order (headings stand on their own lines).
  size_t previous = 0;
  std::string previous_name;
  for (const char* heading : k_sections) {
    std::string line = std::string("\n") + heading + "\n";
    size_t at = face.find(line);
    if (at == std::string::npos) {
      out.push_back({"genpack.order", heading, shot + ": section " + heading + " is missing"});
      continue;
    }
    if (face.find(line, at + 1) != std::string::npos) {
      out.push_back({"genpack.order", heading, shot + ": section " + heading + " appears twice"});
    }
    if (at < previous) {
      out.push_back({"genpack.order", heading, shot + ": section " + heading + " comes before " + previous_name});
    }
    previous = std::max(previous, at);
    previous_name = heading;
  }

  // Every lock verbatim, and its forbidden drift reinforced.
  const json negatives = genpack.value("negatives_no_drift", json::array());
  for (const LockFace& lock : expected_locks) {
    if (face.find(lock.face) == std::string::npos) {
      out.push_back({"genpack.lock", lock.name, shot + ": the lock " + lock.name + " is missing or altered (not verbatim)"});
    }
    for (const json& item : lock.content.value("forbidden_drift", json::array())) {
      if (std::find(negatives.begin(), negatives.end(), item) == negatives.end()) {
        out.push_back({"genpack.negatives", lock.name,
                       shot + ": forbidden drift " + item.dump() + " of " + lock.name + " is not in NEGATIVES / NO-DRIFT"});
      }
    }
  }
  return out;
}

std::vector<std::string> check_regen_rules(const json& rules, const std::string& shot_id, const std::string& scene_id) {
  std::vector<std::string> out;
  auto covers = [&](const json& entry) { return in_scope(entry, shot_id, scene_id); };
  bool adjusted = false;
  bool simplified = false;
  for (const json& rule : rules.value("prompt_adjustment_rules", json::array())) {
    if (!covers(rule)) {
      continue;
    }
    adjusted = true;
    const std::string type = rule.value("adjustment_type", std::string());
    const json settings = rule.value("settings", json::object());
    simplified = simplified || type == "complexity_reduction" || type == "duration_reduction" ||
                 (settings.is_object() && (settings.contains("complexity_level") || settings.contains("duration_s")));
  }
  for (const json& recommendation : rules.value("structural_simplification_recommendations", json::array())) {
    simplified = simplified || covers(recommendation);
  }
  if (!adjusted) {
    out.push_back("regen_rules_adjust_the_shot: no prompt adjustment rule names " + shot_id + " or " + scene_id +
                  ": a regen with no adjustment (skills.md 2.19)");
  }
  static const std::set<std::string> k_drift = {"face_drift", "set_drift", "lighting_shift"};
  for (const json& pattern : rules.value("failure_pattern_summary", json::array())) {
    const std::string failure_class = pattern.value("failure_class", std::string());
    if (covers(pattern) && k_drift.count(failure_class) && pattern.value("failed_attempts", 0) >= 2 && !simplified) {
      out.push_back("regen_simplifies_repeated_drift: " + shot_id + " drifted (" + failure_class + ") in " +
                    std::to_string(pattern.value("failed_attempts", 0)) +
                    " attempts and no rule reduces its complexity or duration, nor recommends a structural "
                    "simplification: complexity unchanged despite repeated drift (skills.md 2.19)");
      break;
    }
  }
  return out;
}

}  // namespace avps::builtins
