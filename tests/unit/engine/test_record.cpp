// The engine's view of the record (src/engine/record.cpp): what a skill reads of an input.

#include <catch2/catch.hpp>

#include "../src/engine/engine_impl.hpp"
#include "avps/core/byte_codec.hpp"

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
  // The cut of a value the caller keeps (an all_targets list is made element by element from the
  // contents the cache holds) is the same cut, of a lock, a list of them, and with no fields.
  CHECK(engine::cut_copy(lock, fields) == cut);
  CHECK(engine::cut_copy(json::array({lock, older}), fields) == engine::cut_to_fields(json::array({lock, older}), fields));
  CHECK(engine::cut_copy(lock, {}) == lock);
  CHECK(engine::cut_copy(json("not an artifact"), fields) == json("not an artifact"));
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

TEST_CASE("the content cache keeps no more bytes than its budget, and always the newest content", "[engine]") {
  const json small = {{"id", "S01"}};
  json large = json::array();
  for (int i = 0; i < 200; ++i) {
    large.push_back({{"shot_id", "S01_SH" + std::to_string(i)}, {"description", std::string(100, 'x')}});
  }
  const size_t small_bytes = engine::approx_json_bytes(small);
  const size_t large_bytes = engine::approx_json_bytes(large);
  // The estimate grows with the content: 200 rows of 100 characters are tens of kilobytes.
  CHECK(small_bytes < 256);
  CHECK(large_bytes > 200 * 100);
  CHECK(large_bytes < 200 * 1000);

  engine::ContentCache cache(100, 4 * small_bytes + 64);
  for (int i = 0; i < 10; ++i) {
    cache.insert("small" + std::to_string(i), small);
  }
  CHECK(cache.size() < 10);  // the byte budget, not the count of 100, dropped the oldest
  CHECK(cache.bytes() <= 4 * small_bytes + 64);
  CHECK(cache.find("small9") != nullptr);
  CHECK(cache.find("small0") == nullptr);
  // A content larger than the whole budget is still kept while it is the newest, alone.
  const engine::ContentCache::Content kept = cache.insert("large", large);
  CHECK(cache.size() == 1);
  CHECK(cache.find("large") == kept);
  cache.insert("small10", small);
  CHECK(cache.find("large") == nullptr);
  CHECK(*kept == large);  // a reader holding it still has it
}

TEST_CASE("the run keeps of a render what its readers read, not the RUN_LOG row the ledger keeps", "[engine]") {
  const json body = {{"attempt", 2},
                     {"input_hashes", {{"SHOTLIST", "8ed2149d012c264d"}}},
                     {"inputs", "0a6a23b618554ad7"},
                     {"key", "ea34"},
                     {"model", "sim-gen-low"},
                     {"path", "media/S01_SH01_proxy_a02.png"},
                     {"resolution", "proxy"},
                     {"row", {{"notes", "proxy render, attempt 2"}, {"timestamp", "2026-12-06T01:09:50.002Z"}}},
                     {"scene_id", "S01"},
                     {"sha256", "880d"},
                     {"shot_id", "S01_SH01"},
                     {"tier", "gen_low"}};
  json media = body;
  media.erase("row");
  media.erase("input_hashes");
  CHECK(engine::media_summary(body) == media);
  CHECK(engine::render_summary(body) ==
        json{{"inputs", "0a6a23b618554ad7"}, {"input_hashes", {{"SHOTLIST", "8ed2149d012c264d"}}}});
  // A render recorded before renders carried their identity keeps none (made from any inputs).
  CHECK(engine::render_summary(json{{"path", "media/a.png"}}) == json::object());
}

TEST_CASE("the rows of an artifact are read in place, and an artifact without rows has none", "[engine]") {
  const json shotlist = {{"kind", "SHOTLIST"},
                         {"rows", json::array({{{"shot_id", "S01_SH01"}}, {{"shot_id", "S01_SH02"}}})}};
  CHECK(&engine::rows_of(shotlist) == &shotlist["rows"]);
  CHECK(engine::rows_of(json{{"kind", "SCENES"}}).empty());
  CHECK(engine::rows_of(json{{"rows", "not a list"}}).empty());
}

TEST_CASE("a step's inputs are its cut inputs with its deferred inputs made once, when first asked for", "[engine]") {
  engine::Gathered g;
  g.cut["SCENES"] = json{{"rows", json::array({"S01"})}};
  int made = 0;
  g.deferred["SHOTLIST"] = [&made]() -> Result<json> {
    ++made;
    return json::array({1, 2});
  };
  CHECK(g.has("SHOTLIST"));
  CHECK(made == 0);  // not made by gathering: a step found up to date never reads it
  const json expected = {{"SCENES", {{"rows", json::array({"S01"})}}}, {"SHOTLIST", json::array({1, 2})}};
  CHECK(*g.inputs().value() == expected);
  CHECK(*g.inputs().value() == expected);  // asked again: the same, not made again
  CHECK(made == 1);
  CHECK(g.has("SHOTLIST"));
  // An input whose versions cannot be read makes the step's inputs that error.
  engine::Gathered broken;
  broken.deferred["SHOTLIST"] = []() -> Result<json> {
    return make_error(ErrorCode::not_found, "SHOTLIST_S01_v001.json is not recorded");
  };
  auto inputs = broken.inputs();
  REQUIRE_FALSE(inputs.ok());
  CHECK(inputs.error().message == "SHOTLIST_S01_v001.json is not recorded");
  // A step that holds no deferred input reads its cut inputs as they are.
  engine::Gathered only_cut;
  only_cut.cut["BRIEF"] = "a brief";
  CHECK(*only_cut.inputs().value() == json{{"BRIEF", "a brief"}});
}

// A revision must change something (issue 13): the write path's rule, apart from the engine.
TEST_CASE("a revision whose outputs all equal recorded versions is unchanged, naming them", "[engine]") {
  const json beats_v1 = {{"format_version", 1}, {"kind", "BEATS"}, {"gate", {{"verdict", "PASS"}}}, {"climax", "a"}};
  const json scenes_v1 = {{"format_version", 1}, {"kind", "SCENES"}, {"rows", json::array({{{"scene_id", "S01"}}})}};
  json beats_v2 = beats_v1;
  beats_v2["climax"] = "b";
  std::map<std::string, std::vector<engine::PriorVersion>> recorded = {
      {"BEATS", {{"BEATS_v001.md", beats_v1}, {"BEATS_v002.md", beats_v2}}},
      {"SCENES", {{"SCENES_v001.csv", scenes_v1}}}};
  auto versions = [&recorded](const std::string& kind) { return recorded[kind]; };

  // The same content under another verdict is the same content: the gate is set aside.
  json regated = beats_v1;
  regated["gate"] = {{"verdict", "FAIL"}, {"reasons", {"r"}}};
  engine::RevisionCheck same = engine::check_revision({{"BEATS", regated}, {"SCENES", scenes_v1}}, versions);
  CHECK(same.unchanged);
  CHECK(same.identical ==
        std::map<std::string, std::string>{{"BEATS", "BEATS_v001.md"}, {"SCENES", "SCENES_v001.csv"}});
  CHECK_THAT(same.reason, Catch::StartsWith("revision identical to BEATS_v001.md, SCENES_v001.csv: a revision must "
                                            "change something"));
  // Back to an earlier version is no change either.
  CHECK(engine::check_revision({{"BEATS", beats_v1}}, versions).unchanged);

  // One output changed: the revision stands; the other is not written again (its version stays).
  json beats_v3 = beats_v1;
  beats_v3["climax"] = "c";
  engine::RevisionCheck partly = engine::check_revision({{"BEATS", beats_v3}, {"SCENES", scenes_v1}}, versions);
  CHECK_FALSE(partly.unchanged);
  CHECK(partly.reason.empty());
  CHECK(partly.identical == std::map<std::string, std::string>{{"SCENES", "SCENES_v001.csv"}});
  CHECK(partly.as_latest == std::set<std::string>{"SCENES"});
  // An output equal to an earlier version than the latest goes back: it is written (the version it
  // replaces is the latest), unless the whole revision changed nothing.
  engine::RevisionCheck back = engine::check_revision({{"BEATS", beats_v1}, {"SCENES", beats_v3}}, versions);
  CHECK_FALSE(back.unchanged);
  CHECK(back.identical.at("BEATS") == "BEATS_v001.md");
  CHECK(back.as_latest.empty());
  // A first version is new.
  CHECK_FALSE(engine::check_revision({{"CHAR_LOCK", beats_v1}}, versions).unchanged);
  CHECK_FALSE(engine::check_revision({}, versions).unchanged);
}

TEST_CASE("an attempt is a revision when it carries findings, revises for a judge, or regenerates a GenPack",
          "[engine]") {
  const json none = json::array();
  CHECK_FALSE(engine::is_revision(none, json(), json::object()));
  CHECK_FALSE(engine::is_revision(none, json(), {{"tier", "gen_low"}, {"qc_findings", json::array()}}));
  CHECK(engine::is_revision(json::array({"total 6 < 7"}), json(), json::object()));
  CHECK(engine::is_revision(none, {{"loop", "narrative-red-team"}, {"attempt", 1}}, json::object()));
  CHECK(engine::is_revision(none, json(), {{"qc_findings", {"S01_SH01 attempt 1: total 7 < 8"}}}));
}

TEST_CASE("an attempt after enough failures from the same inputs needs an analyzer run since them", "[engine]") {
  auto attempt = [](int n, const std::string& inputs, const std::string& verdict) {
    return engine::FlatJson(json{{"attempt", n}, {"inputs", inputs}, {"verdict", verdict}});
  };
  engine::Record record;
  const std::string key = "S01_SH02/proxy";
  record.shot_attempts[key] = {attempt(1, "a", "FAIL"), attempt(2, "a", "FIX"), attempt(3, "a", "PASS")};
  // Two failures, then a third attempt from the same inputs: the analyzer was due before it.
  CHECK(engine::analyzer_runs_missing(record, "S01", 2) ==
        std::vector<std::string>{"S01_SH02/proxy attempt 3 followed 2 failed attempts from the same inputs"});
  CHECK(engine::analyzer_runs_missing(record, "S01", 3).empty());  // not due after two
  CHECK(engine::analyzer_runs_missing(record, "S02", 2).empty());  // another scene's check
  // Scenes whose ids share a prefix (S01, S010, S0) are told apart; no scene is every scene.
  record.shot_attempts["S010_SH01/proxy"] = record.shot_attempts[key];
  record.shot_attempts["S0_SH01/proxy"] = record.shot_attempts[key];
  CHECK(engine::analyzer_runs_missing(record, "S01", 2).size() == 1);
  CHECK(engine::analyzer_runs_missing(record, "S010", 2) ==
        std::vector<std::string>{"S010_SH01/proxy attempt 3 followed 2 failed attempts from the same inputs"});
  CHECK(engine::analyzer_runs_missing(record, "", 2).size() == 3);
  record.shot_attempts.erase("S010_SH01/proxy");
  record.shot_attempts.erase("S0_SH01/proxy");
  // A run before the failures made it due does not count; one after the second failure does.
  record.analyzer_runs = {key + "#1"};
  CHECK(engine::analyzer_runs_missing(record, "", 2).size() == 1);
  record.analyzer_runs = {key + "#2"};
  CHECK(engine::analyzer_runs_missing(record, "", 2).empty());
  // The inputs changed before the next attempt (an edited lock): its count starts again, so the
  // failures of the old inputs owe no analyzer run.
  record.analyzer_runs.clear();
  record.shot_attempts[key] = {attempt(1, "a", "FAIL"), attempt(2, "a", "FIX"), attempt(3, "b", "FAIL"),
                               attempt(4, "b", "PASS")};
  CHECK(engine::analyzer_runs_missing(record, "S01", 2).empty());
}

TEST_CASE("a version a reader may not read is hidden by its writer's facts and the reader's loop and rank",
          "[engine]") {
  // Given a version written by a finished step of a scene's cost loop, at rank (1, 3, 20)
  engine::WriterFacts facts;
  facts.by_step = true;
  facts.step = "budget-gates/S04@0123456789abcdef";
  facts.loop = "budget-gates/S04";
  facts.written_at = engine::WalkRank{1, 3, 20};
  facts.walk_step = true;
  const std::optional<engine::WalkRank> before{engine::WalkRank{1, 3, 19}};
  const std::optional<engine::WalkRank> after{engine::WalkRank{1, 4, 2}};
  // Then a step after it in the walk reads it, one before it does not, nor does a feedback read
  // (no rank) care where it was written.
  CHECK_FALSE(facts.hidden_from("shot-planner/S05", after));
  CHECK(facts.hidden_from("shot-planner/S05", before));
  CHECK_FALSE(facts.hidden_from("shot-planner/S05", std::nullopt));
  // A version written outside a run's steps (init, an import) is read by every step.
  CHECK_FALSE(engine::WriterFacts{}.hidden_from("shot-planner/S05", before));

  // When the attempt that wrote it is unfinished, its own loop does not read it (the attempt is
  // re-run), a loop whose name it merely starts with does, and nobody reads it once cut short.
  engine::WriterFacts unfinished = facts;
  unfinished.unfinished = true;
  unfinished.loop.clear();
  CHECK(unfinished.hidden_from("budget-gates/S04", after));
  CHECK_FALSE(unfinished.hidden_from("budget-gates/S0", after));
  CHECK_FALSE(unfinished.hidden_from("budget-gates/S04/proxy", after));
  unfinished.cut_short = true;
  CHECK(unfinished.hidden_from("shot-planner/S05", after));

  // Its own loop does not read it at the place in the walk that wrote it: a step that reads its
  // own kind (model-router, the previous ROUTING_DECISION) found none when it first ran, and a
  // resume that showed it its own output made its key differ, so it ran again after every whole
  // production. A later place of the same loop (the final cost loop's router) reads it.
  const engine::WalkRank own_place = *facts.written_at;
  CHECK(facts.hidden_from("budget-gates/S04", own_place));
  CHECK_FALSE(facts.hidden_from("budget-gates/S04", after));
  CHECK_FALSE(facts.hidden_from("budget-gates/S05", own_place));  // another scene's loop, the same place
  // Not so for an on-demand step (regen-analyzer): each run is a new attempt that carries forward
  // what its last one wrote (the global REGEN_RULES), never checked again by its key.
  engine::WriterFacts on_demand = facts;
  on_demand.walk_step = false;
  CHECK_FALSE(on_demand.hidden_from("budget-gates/S04", own_place));

  // When it is its loop's last step, a FAIL not yet acted on, only that loop reads it.
  engine::WriterFacts failed = facts;
  failed.failed_unanswered = true;
  CHECK(failed.hidden_from("shot-planner/S05", after));
  CHECK_FALSE(failed.hidden_from("budget-gates/S04", after));
}

TEST_CASE("the run's record takes nothing from an artifact's intent, so its body is never read", "[engine]") {
  // read_record asks the ledger for artifact.intent events without their bodies: a fold that
  // read them would differ between the two records below.
  ledger::Event intent;
  intent.seq = 2;
  intent.kind = "artifact.intent";
  intent.body = {{"intent", {{"name", "SHOTLIST_S01_v002.csv"}, {"kind", "SHOTLIST"}, {"target", "S01"}}},
                 {"details", {{"step", "shot-planner/S01@0123456789abcdef"}, {"attempt", 1}, {"scene", "S01"}}},
                 {"row_to_record", {{"skill_name", "shot-planner"}, {"outcome", "PASS"}}}};
  ledger::Event bodiless = intent;
  bodiless.body = json::object();
  ledger::Event started;
  started.seq = 1;
  started.kind = "run.started";
  started.body = {{"command", "run"}};
  engine::RecordFold with_body(engine::RecordParts::all);
  engine::RecordFold without_body(engine::RecordParts::all);
  for (auto* fold : {&with_body, &without_body}) {
    fold->add(started);
  }
  with_body.add(intent);
  without_body.add(bodiless);
  CHECK(with_body.save() == without_body.save());
}

TEST_CASE("the world after a scene is not one an interrupted attempt left, in a fold and in one restored", "[engine]") {
  int64_t seq = 0;
  auto event = [&seq](const std::string& kind, json body) {
    ledger::Event e;
    e.seq = ++seq;
    e.kind = kind;
    e.body = std::move(body);
    return e;
  };
  auto world = [&event](const std::string& name, const std::string& step) {
    return event("artifact.recorded", {{"artifact", {{"kind", "WORLD_STATE"}, {"name", name}}},
                                       {"details", {{"step", step}, {"attempt", 1}, {"scene", "S06"}}}});
  };
  auto finished = [&event](const std::string& step) {
    return event("step.finished", {{"step", step}, {"attempt", 1}, {"verdict", "PASS"}, {"loop", step}});
  };
  const std::string tracked = "world-state-tracker/S06@d727e637076c63d5";
  const std::string revision = "world-state-tracker/S06@258c7bfd0124790e<continuity-supervisor/S06";
  // The tracker's world, then a revision for the scene's judge cut short after its world state was
  // recorded (by recovery, its files whole) and before its step.finished.
  const std::vector<ledger::Event> events = {world("WORLD_STATE_v009.json", tracked), finished(tracked),
                                             world("WORLD_STATE_v010.json", revision)};
  engine::RecordFold fold(engine::RecordParts::all);
  for (const ledger::Event& e : events) {
    fold.add(e);
  }
  core::ByteWriter bytes;
  fold.save(bytes);
  std::optional<engine::RecordFold> restored = engine::RecordFold::restore_bytes(bytes.take());
  REQUIRE(restored);
  for (engine::RecordFold* each : {&fold, &*restored}) {
    engine::RecordFold copy = *each;
    const engine::Record record = std::move(copy).finish();
    CHECK(record.cut_short == std::set<std::string>{"WORLD_STATE_v010.json"});
    CHECK(record.world_after.at("S06") == "WORLD_STATE_v009.json");
    // Once the revision finishes (made again on resume), its world is the scene's.
    copy = *each;
    copy.add(finished(revision));
    CHECK(std::move(copy).finish().world_after.at("S06") == "WORLD_STATE_v010.json");
  }
  // A scene whose only world state was cut short has none after it yet.
  engine::RecordFold first(engine::RecordParts::all);
  first.add(world("WORLD_STATE_v001.json", tracked));
  CHECK(std::move(first).finish().world_after.count("S06") == 0);
}
