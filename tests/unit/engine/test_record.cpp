// The engine's view of the record (src/engine/record.cpp): what a skill reads of an input.

#include <catch2/catch.hpp>

#include "../src/engine/engine_impl.hpp"

using namespace avps;
using nlohmann::json;

TEST_CASE("an input cut to its fields keeps them and the artifact's identity, nothing else", "[engine]") {
  const json lock = {{"format_version", 1},
                     {"kind", "CHAR_LOCK"},
                     {"entity_id", "MARA"},
                     {"gate", {{"verdict", "PASS"}}},
                     {"canonical_appearance", {{"age_range", "16-18"}, {"distinguishing_marks", "a scar"}}},
                     {"behavioral_baseline", {{"temperament", "stubborn"}}},
                     {"voice_profile", {{"tone", "clear"}}}};
  const std::vector<std::string> fields = {"/behavioral_baseline", "/canonical_appearance/age_range", "/absent"};
  const json cut = engine::cut_to_fields(lock, fields);
  CHECK(cut == json{{"format_version", 1},
                    {"kind", "CHAR_LOCK"},
                    {"entity_id", "MARA"},
                    {"behavioral_baseline", {{"temperament", "stubborn"}}},
                    {"canonical_appearance", {{"age_range", "16-18"}}}});
  // A list of locks (present_characters) is cut lock by lock; no fields: the whole input.
  CHECK(engine::cut_to_fields(json::array({lock, lock}), fields) == json::array({cut, cut}));
  CHECK(engine::cut_to_fields(lock, {}) == lock);
  // An edit of a field the skill does not read leaves what it reads unchanged (the step stays
  // up to date); an edit of one it reads does not.
  json scarred = lock;
  scarred["canonical_appearance"]["distinguishing_marks"] = "a scar; a second scar";
  CHECK(engine::cut_to_fields(scarred, fields) == cut);
  json older = lock;
  older["canonical_appearance"]["age_range"] = "30-35";
  CHECK(engine::cut_to_fields(older, fields) != cut);
}

TEST_CASE("the content cache keeps the most recently used contents, and a content outlives its eviction", "[engine]") {
  engine::ContentCache cache(2);
  engine::ContentCache::Content a = cache.insert("a", json{{"n", 1}});
  cache.insert("b", json{{"n", 2}});
  REQUIRE(cache.find("a") != nullptr);  // a is now the most recently used: b goes first
  cache.insert("c", json{{"n", 3}});
  CHECK(cache.find("b") == nullptr);
  CHECK(cache.find("a") != nullptr);
  CHECK(cache.find("c") != nullptr);
  cache.insert("d", json{{"n", 4}});
  cache.insert("e", json{{"n", 5}});
  CHECK(cache.find("a") == nullptr);
  CHECK(*a == json{{"n", 1}});  // a reader holding it still has it
  // A second insert of a known hash keeps the first content (same hash, same bytes).
  CHECK(*cache.insert("e", json{{"n", 99}}) == json{{"n", 5}});
}

TEST_CASE("the rows of an artifact are read in place, and an artifact without rows has none", "[engine]") {
  const json shotlist = {{"kind", "SHOTLIST"},
                         {"rows", json::array({{{"shot_id", "S01_SH01"}}, {{"shot_id", "S01_SH02"}}})}};
  CHECK(&engine::rows_of(shotlist) == &shotlist["rows"]);
  CHECK(engine::rows_of(json{{"kind", "SCENES"}}).empty());
  CHECK(engine::rows_of(json{{"rows", "not a list"}}).empty());
}

TEST_CASE("a step's inputs are its cut inputs with its shared whole-artifact inputs folded in, the cache untouched",
          "[engine]") {
  engine::ContentCache pure(4);
  const engine::ContentCache::Content shotlists =
      pure.insert("SHOTLIST\n\nSHOTLIST_S01_v001.json\t", json{{"sha256", "abc"}, {"value", json::array({1, 2})}});
  engine::Gathered g;
  g.cut["SCENES"] = json{{"rows", json::array({"S01"})}};
  g.whole["SHOTLIST"] = shotlists;
  const json expected = {{"SCENES", {{"rows", json::array({"S01"})}}}, {"SHOTLIST", json::array({1, 2})}};
  CHECK(g.inputs() == expected);
  CHECK(g.inputs() == expected);  // asked again: the same
  CHECK(g.whole.empty());
  // The shared content is the cache's, unchanged by what the step holds.
  CHECK(*pure.find("SHOTLIST\n\nSHOTLIST_S01_v001.json\t") == json{{"sha256", "abc"}, {"value", json::array({1, 2})}});
  // A step that holds no shared input reads its cut inputs as they are.
  engine::Gathered only_cut;
  only_cut.cut["BRIEF"] = "a brief";
  CHECK(only_cut.inputs() == json{{"BRIEF", "a brief"}});
}
