#include "avps/builtins/world_state.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace avps::builtins {
using nlohmann::json;

namespace {

Error diff_error(const std::string& pointer, const std::string& what) {
  return make_error(ErrorCode::schema_violation, "STATE_DIFF " + pointer + ": " + what);
}

// Fields of each WORLD_STATE entry kind: lists (changed by add/remove) and scalars (replaced).
struct EntryShape {
  std::vector<std::string> lists;
  std::vector<std::string> scalars;
};
const EntryShape k_character{{"injuries", "knowledge", "inventory"}, {"emotional_state", "location"}};
const EntryShape k_prop{{}, {"owner", "location", "status"}};
const EntryShape k_location{{}, {"condition", "lighting_state", "notes"}};

json empty_entry(const EntryShape& shape) {
  json entry = json::object();
  for (const std::string& list : shape.lists) {
    entry[list] = json::array();
  }
  for (const std::string& scalar : shape.scalars) {
    entry[scalar] = "";
  }
  return entry;
}

bool contains(const json& list, const json& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

Result<void> apply_list_change(json& list, const json& change, const std::string& pointer, const std::string& owner) {
  if (!change.is_object() || !change.contains("add") || !change.contains("remove")) {
    return diff_error(pointer, "a list changes only through {\"add\": [...], \"remove\": [...]}");
  }
  for (const json& item : change["remove"]) {
    auto it = std::find(list.begin(), list.end(), item);
    if (it == list.end()) {
      return diff_error(pointer + "/remove", item.dump() + " is not in " + owner);
    }
    list.erase(it);
  }
  for (const json& item : change["add"]) {
    if (contains(list, item)) {
      return diff_error(pointer + "/add", item.dump() + " is already in " + owner);
    }
    list.push_back(item);
  }
  return ok();
}

Result<void> apply_entries(json& section, const json& updates, const EntryShape& shape, const std::string& pointer) {
  if (!updates.is_object()) {
    return diff_error(pointer, "must be an object keyed by entity id");
  }
  for (const auto& [id, update] : updates.items()) {
    const std::string at = pointer + "/" + id;
    if (update.is_null()) {
      if (!section.contains(id)) {
        return diff_error(at, "deletes " + id + ", which is not in the world state");
      }
      section.erase(id);
      continue;
    }
    if (!update.is_object()) {
      return diff_error(at, "must be an object of changes, or null");
    }
    if (!section.contains(id)) {
      section[id] = empty_entry(shape);
    }
    json& entry = section[id];
    for (const auto& [field, change] : update.items()) {
      if (std::find(shape.lists.begin(), shape.lists.end(), field) != shape.lists.end()) {
        AVPS_TRY(apply_list_change(entry[field], change, at + "/" + field, id + "'s " + field));
      } else if (std::find(shape.scalars.begin(), shape.scalars.end(), field) != shape.scalars.end()) {
        if (!change.is_string()) {
          return diff_error(at + "/" + field, "must be a string");
        }
        entry[field] = change;
      } else {
        return diff_error(at + "/" + field, "unknown field");
      }
    }
  }
  return ok();
}

// S07 -> 7; -1 when not a scene id.
long scene_number(const std::string& id) {
  if (id.size() < 3 || id[0] != 'S' ||
      !std::all_of(id.begin() + 1, id.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return -1;
  }
  return std::stol(id.substr(1));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

json strings_of(const json& row, const char* field) {
  return row.is_object() && row.contains(field) && row[field].is_array() ? row[field] : json::array();
}

// True if one of the scene's recorded state changes names `who` and a heal, as whole words
// ("untreated" is not "treated").
bool heal_recorded(const json& breakdown_row, const std::string& who) {
  static const std::set<std::string> k_heal_words = {
      "heal",    "heals",   "healed",   "healing",  "treat",    "treats",    "treated", "bandage", "bandages",
      "bandaged", "stitch", "stitched", "stitches", "recovers", "recovered", "cured",   "mended",  "mends"};
  for (const json& change : strings_of(breakdown_row, "state_changes")) {
    if (!change.is_string()) {
      continue;
    }
    std::string text = lower(change.get<std::string>());
    if (text.find(lower(who)) == std::string::npos) {
      continue;
    }
    std::string word;
    for (size_t i = 0; i <= text.size(); ++i) {
      if (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) {
        word += text[i];
        continue;
      }
      if (k_heal_words.count(word)) {
        return true;
      }
      word.clear();
    }
  }
  return false;
}

const json& list_change(const json& update, const char* field) {
  static const json k_none = {{"add", json::array()}, {"remove", json::array()}};
  return update.is_object() && update.contains(field) && update[field].is_object() ? update[field] : k_none;
}

}  // namespace

Result<json> apply_state_diff(const json& world_state, const json& state_diff) {
  static const std::set<std::string> k_known = {"format_version", "kind",             "scene_id",        "character_updates",
                                                "prop_updates",   "location_updates", "timeline_update", "rule_updates"};
  if (!state_diff.is_object()) {
    return diff_error("", "must be a JSON object");
  }
  for (const auto& item : state_diff.items()) {
    if (!k_known.count(item.key())) {
      return diff_error("/" + item.key(), "unknown key (the world state's five sections are frozen)");
    }
  }
  json next = world_state;
  for (const char* section : {"characters", "props", "locations"}) {
    if (!next.contains(section) || !next[section].is_object()) {
      return make_error(ErrorCode::schema_violation, std::string("WORLD_STATE has no \"") + section + "\" object");
    }
  }
  AVPS_TRY(apply_entries(next["characters"], state_diff.value("character_updates", json::object()), k_character,
                         "/character_updates"));
  AVPS_TRY(apply_entries(next["props"], state_diff.value("prop_updates", json::object()), k_prop, "/prop_updates"));
  AVPS_TRY(apply_entries(next["locations"], state_diff.value("location_updates", json::object()), k_location,
                         "/location_updates"));
  const json timeline_update = state_diff.value("timeline_update", json::object());
  for (const auto& [field, value] : timeline_update.items()) {
    if (field != "current_scene" && field != "elapsed_time" && field != "global_notes") {
      return diff_error("/timeline_update/" + field, "unknown field");
    }
    next["timeline"][field] = value;
  }
  if (state_diff.contains("scene_id") && !timeline_update.contains("current_scene")) {
    next["timeline"]["current_scene"] = state_diff["scene_id"];  // the state is now "after this scene"
  }
  const json rule_updates = state_diff.value("rule_updates", json::object());
  for (const auto& [field, change] : rule_updates.items()) {
    if (field != "fictional_constraints" && field != "modified_rules") {
      return diff_error("/rule_updates/" + field, "unknown field");
    }
    AVPS_TRY(apply_list_change(next["rules"][field], change, "/rule_updates/" + field, "the rules' " + field));
  }
  return next;
}

std::vector<core::Violation> check_world_state_continuity(const json& world_state, const json& state_diff,
                                                          const json& breakdown_row) {
  std::vector<core::Violation> out;
  auto add = [&](const char* rule, const std::string& subject, const std::string& message) {
    out.push_back(core::Violation{rule, subject, message});
  };
  const std::string scene = state_diff.value("scene_id", std::string());
  const json characters = world_state.value("characters", json::object());
  const json props = world_state.value("props", json::object());
  const json character_updates = state_diff.value("character_updates", json::object());
  const json prop_updates = state_diff.value("prop_updates", json::object());
  const json present = strings_of(breakdown_row, "characters_present");

  // Diffs apply in scene order.
  std::string current = world_state.value("timeline", json::object()).value("current_scene", std::string());
  if (!current.empty() && scene_number(scene) <= scene_number(current)) {
    add("continuity.order", scene,
        "the diff of " + scene + " does not come after the world state's current scene " + current);
  }

  // The state after the diff, where it can be computed, for "where is the owner now".
  Result<json> after = apply_state_diff(world_state, state_diff);
  if (!after) {
    add("continuity.entity", scene, after.error().message);
  }

  for (const auto& [who, update] : character_updates.items()) {
    const bool known = characters.contains(who);
    const json before = known ? characters[who] : json::object();
    if (!known && !contains(present, json(who))) {
      add("continuity.entity", who, who + " is changed in " + scene + " but is neither in the world state nor in the scene");
    }
    // Injuries persist until healed.
    json vanished = update.is_null() ? before.value("injuries", json::array()) : list_change(update, "injuries")["remove"];
    for (const json& injury : vanished) {
      if (!heal_recorded(breakdown_row, who)) {
        add("continuity.injury", who,
            who + "'s injury " + injury.dump() + " disappears in " + scene + " without a heal in the scene's state changes");
      }
    }
    if (update.is_null()) {
      continue;
    }
    // Knowledge: only what the scene gives, and never "forgetting" what was never known.
    for (const json& fact : list_change(update, "knowledge")["remove"]) {
      if (!contains(before.value("knowledge", json::array()), fact)) {
        add("continuity.knowledge", who, who + " relies on knowledge that was never recorded: " + fact.dump());
      }
    }
    if (!list_change(update, "knowledge")["add"].empty() && !present.empty() && !contains(present, json(who))) {
      add("continuity.knowledge", who, who + " learns something in " + scene + " without being in the scene");
    }
    if (!list_change(update, "injuries")["add"].empty() && !present.empty() && !contains(present, json(who))) {
      add("continuity.injury", who, who + " is injured in " + scene + " without being in the scene");
    }
    // Inventory changes of props must match the props' owners.
    for (const json& item : list_change(update, "inventory")["add"]) {
      const std::string prop = item.get<std::string>();
      bool to_who = prop_updates.contains(prop) && prop_updates[prop].is_object() &&
                    prop_updates[prop].value("owner", std::string()) == who;
      bool already = props.contains(prop) && props[prop].value("owner", std::string()) == who;
      if ((props.contains(prop) || prop_updates.contains(prop)) && !to_who && !already) {
        add("continuity.prop", prop, prop + " enters " + who + "'s inventory in " + scene + " without a transfer to " + who);
      }
    }
    for (const json& item : list_change(update, "inventory")["remove"]) {
      const std::string prop = item.get<std::string>();
      if (!contains(before.value("inventory", json::array()), item)) {
        add("continuity.prop", prop, who + " gives up " + prop + " in " + scene + " but never had it");
        continue;
      }
      bool handed_on = prop_updates.contains(prop) &&
                       (prop_updates[prop].is_null() || prop_updates[prop].value("owner", who) != who);
      if (props.contains(prop) && !handed_on) {
        add("continuity.prop", prop, prop + " leaves " + who + "'s inventory in " + scene + " without a transfer");
      }
    }
  }

  for (const auto& [prop, update] : prop_updates.items()) {
    if (update.is_null() || !props.contains(prop)) {
      continue;  // a destroyed prop, or one introduced here
    }
    const json& before = props[prop];
    const std::string old_owner = before.value("owner", std::string());
    const std::string new_owner = update.value("owner", old_owner);
    if (new_owner != old_owner) {
      // A transfer: the old owner's inventory loses it and the new owner's gains it.
      if (characters.contains(old_owner) && !contains(list_change(character_updates.value(old_owner, json::object()),
                                                                  "inventory")["remove"], json(prop))) {
        add("continuity.prop", prop,
            prop + " changes owner from " + old_owner + " to " + new_owner + " in " + scene + " but " + old_owner +
                "'s inventory keeps it: no transfer");
      }
      if (characters.contains(new_owner) && !contains(list_change(character_updates.value(new_owner, json::object()),
                                                                  "inventory")["add"], json(prop))) {
        add("continuity.prop", prop,
            prop + " changes owner to " + new_owner + " in " + scene + " but " + new_owner +
                "'s inventory does not gain it: no transfer");
      }
      continue;
    }
    const std::string old_place = before.value("location", std::string());
    const std::string new_place = update.value("location", old_place);
    if (new_place == old_place || new_place.empty()) {
      continue;
    }
    // Same owner, new place: only where the owner is (or is), never on its own.
    if (!old_owner.empty() && after) {
      const json owner_state = (*after)["characters"].value(old_owner, json::object());
      if (new_place != old_owner && new_place != owner_state.value("location", std::string())) {
        add("continuity.prop", prop,
            prop + " moves from " + old_place + " to " + new_place + " in " + scene + " while its owner " + old_owner +
                " is elsewhere: the prop teleports");
      }
    } else if (old_owner.empty() && !contains(strings_of(breakdown_row, "props_used"), json(prop))) {
      add("continuity.prop", prop,
          prop + " moves from " + old_place + " to " + new_place + " in " + scene + ", which does not use it");
    }
  }
  return out;
}

}  // namespace avps::builtins
