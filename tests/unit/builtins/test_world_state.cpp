#include <catch2/catch.hpp>

#include "avps/builtins/world_state.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/json_schema.hpp"

using namespace avps;
using nlohmann::json;

namespace {

// The world just before S02: ALEX hurt and holding the notebook, MARIA without it.
json state_before_s02() {
  return json::parse(R"({
    "format_version": 1,
    "timeline": {"current_scene": "S01", "elapsed_time": "20 minutes", "global_notes": ""},
    "characters": {
      "ALEX": {"injuries": ["Cut on the left palm"], "knowledge": ["MARIA hid the RED_NOTEBOOK"],
               "inventory": ["RED_NOTEBOOK", "FLASHLIGHT"], "emotional_state": "Shaken", "location": "WAREHOUSE"},
      "MARIA": {"injuries": [], "knowledge": [], "inventory": [], "emotional_state": "Angry", "location": "WAREHOUSE"}
    },
    "props": {
      "RED_NOTEBOOK": {"owner": "ALEX", "location": "ALEX", "status": "Intact"},
      "FLASHLIGHT": {"owner": "ALEX", "location": "ALEX", "status": "Working"}
    },
    "locations": {"WAREHOUSE": {"condition": "", "lighting_state": "Night", "notes": ""},
                  "HARBOUR": {"condition": "", "lighting_state": "", "notes": ""}},
    "rules": {"fictional_constraints": [], "modified_rules": []}
  })");
}

json breakdown_s02(json state_changes = json::array()) {
  return {{"scene_id", "S02"},
          {"characters_present", {"ALEX", "MARIA"}},
          {"props_used", {"RED_NOTEBOOK"}},
          {"state_changes", state_changes}};
}

json diff_s02(json changes) {
  json diff = {{"format_version", 1}, {"kind", "STATE_DIFF"}, {"scene_id", "S02"}, {"character_updates", json::object()},
               {"prop_updates", json::object()}, {"location_updates", json::object()}, {"timeline_update", json::object()},
               {"rule_updates", json::object()}};
  diff.merge_patch(changes);
  return diff;
}

bool names(const std::vector<core::Violation>& violations, const std::string& rule, const std::string& entity) {
  for (const core::Violation& v : violations) {
    if (v.rule == rule && v.subject == entity && v.message.find(entity) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("a clean diff with an explicit transfer gives the next world state", "[builtins][world_state]") {
  // Given ALEX hands the notebook to MARIA in S02, recorded on both inventories and the prop.
  json diff = diff_s02(json::parse(R"({
    "character_updates": {
      "ALEX": {"inventory": {"add": [], "remove": ["RED_NOTEBOOK"]}, "emotional_state": "Relieved"},
      "MARIA": {"inventory": {"add": ["RED_NOTEBOOK"], "remove": []},
                "knowledge": {"add": ["The notebook lists missing pallets"], "remove": []}}
    },
    "prop_updates": {"RED_NOTEBOOK": {"owner": "MARIA", "location": "MARIA"}},
    "timeline_update": {"elapsed_time": "1 hour"}
  })"));
  json before = state_before_s02();
  CHECK(builtins::check_world_state_continuity(before, diff, breakdown_s02()).empty());

  auto next = builtins::apply_state_diff(before, diff);
  REQUIRE(next.ok());
  CHECK((*next)["characters"]["MARIA"]["inventory"] == json{"RED_NOTEBOOK"});
  CHECK((*next)["characters"]["ALEX"]["inventory"] == json{"FLASHLIGHT"});
  CHECK((*next)["characters"]["ALEX"]["injuries"] == json{"Cut on the left palm"});  // persists
  CHECK((*next)["props"]["RED_NOTEBOOK"]["owner"] == "MARIA");
  CHECK((*next)["timeline"]["current_scene"] == "S02");
  CHECK((*next)["timeline"]["elapsed_time"] == "1 hour");
  auto schema = core::JsonSchema::load(std::string(AVPS_SOURCE_DATA_DIR) + "/schemas/world_state.schema.json").value();
  CHECK(schema.validate(*next).empty());
}

TEST_CASE("a prop that teleports away from its owner fails, naming the prop", "[builtins][world_state]") {
  json diff = diff_s02({{"prop_updates", {{"FLASHLIGHT", {{"location", "HARBOUR"}}}}}});
  auto violations = builtins::check_world_state_continuity(state_before_s02(), diff, breakdown_s02());
  CHECK(names(violations, "continuity.prop", "FLASHLIGHT"));
}

TEST_CASE("a prop that changes owner without a transfer fails, naming the prop", "[builtins][world_state]") {
  json diff = diff_s02({{"prop_updates", {{"RED_NOTEBOOK", {{"owner", "MARIA"}, {"location", "MARIA"}}}}}});
  auto violations = builtins::check_world_state_continuity(state_before_s02(), diff, breakdown_s02());
  CHECK(names(violations, "continuity.prop", "RED_NOTEBOOK"));
}

TEST_CASE("an injury that vanishes without a heal fails, naming the character", "[builtins][world_state]") {
  json diff = diff_s02({{"character_updates", {{"ALEX", {{"injuries", {{"add", json::array()},
                                                                        {"remove", {"Cut on the left palm"}}}}}}}}});
  auto violations = builtins::check_world_state_continuity(state_before_s02(), diff, breakdown_s02());
  CHECK(names(violations, "continuity.injury", "ALEX"));

  // Deleting an injured character is a vanished injury too.
  json gone = diff_s02(json::object());
  gone["character_updates"]["ALEX"] = nullptr;  // (a merge patch would drop the null)
  CHECK(names(builtins::check_world_state_continuity(state_before_s02(), gone, breakdown_s02()), "continuity.injury", "ALEX"));

  // "untreated" is not a heal.
  CHECK(names(builtins::check_world_state_continuity(state_before_s02(), diff,
                                                     breakdown_s02({"ALEX: cut on left palm, untreated"})),
              "continuity.injury", "ALEX"));

  // The same removal with a heal recorded in the scene's state changes is fine.
  auto healed = builtins::check_world_state_continuity(
      state_before_s02(), diff, breakdown_s02({"MARIA cleans and bandages ALEX's palm; the cut is treated"}));
  CHECK(healed.empty());
}

TEST_CASE("knowledge never recorded, or learned off-screen, fails naming the character", "[builtins][world_state]") {
  json forgets = diff_s02({{"character_updates",
                            {{"MARIA", {{"knowledge", {{"add", json::array()}, {"remove", {"The harbour code"}}}}}}}}});
  CHECK(names(builtins::check_world_state_continuity(state_before_s02(), forgets, breakdown_s02()), "continuity.knowledge",
              "MARIA"));
  CHECK_FALSE(builtins::apply_state_diff(state_before_s02(), forgets).ok());

  json offscreen = diff_s02({{"character_updates",
                              {{"MARIA", {{"knowledge", {{"add", {"ALEX is hurt"}}, {"remove", json::array()}}}}}}}});
  json alex_only = breakdown_s02();
  alex_only["characters_present"] = {"ALEX"};
  CHECK(names(builtins::check_world_state_continuity(state_before_s02(), offscreen, alex_only), "continuity.knowledge",
              "MARIA"));
}

TEST_CASE("diffs must come in scene order", "[builtins][world_state]") {
  json diff = diff_s02(json::object());
  diff["scene_id"] = "S01";
  auto violations = builtins::check_world_state_continuity(state_before_s02(), diff, breakdown_s02());
  REQUIRE_FALSE(violations.empty());
  CHECK(violations[0].rule == "continuity.order");
}

TEST_CASE("apply_state_diff refuses unknown keys and list changes that are not add/remove", "[builtins][world_state]") {
  json unknown = diff_s02(json::object());
  unknown["weather"] = "rain";
  auto refused = builtins::apply_state_diff(state_before_s02(), unknown);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("/weather"));

  json replace = diff_s02({{"character_updates", {{"ALEX", {{"inventory", {"FLASHLIGHT"}}}}}}});
  auto bad = builtins::apply_state_diff(state_before_s02(), replace);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("/character_updates/ALEX/inventory"));

  json twice = diff_s02({{"character_updates", {{"ALEX", {{"inventory", {{"add", {"FLASHLIGHT"}}, {"remove", json::array()}}}}}}}});
  CHECK_FALSE(builtins::apply_state_diff(state_before_s02(), twice).ok());
}
