// The engine over a scripted backend ("given these answers, these events"): retries, same-tier
// fallback, junk and refusals as FAILs that loop, a hard stop, resume from the record, and the
// error after the last fallback — the narrative phase of the demo, without HTTP.

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "../src/engine/engine_impl.hpp"
#include "../src/engine/engine_internal.hpp"
#include "avps/backends/retry.hpp"
#include "avps/core/byte_codec.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/engine/engine.hpp"
#include "avps/gates/integrity.hpp"
#include "avps/governance/budget_status.hpp"
#include "avps/governance/override.hpp"
#include "avps/governance/quota.hpp"
#include "avps/project/project.hpp"
#include "support/fixed_clock.hpp"
#include "support/recording_sleeper.hpp"
#include "support/scripted_backend.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
using nlohmann::json;
using testing::RecordingSleeper;
namespace fs = std::filesystem;

namespace {

class Quiet : public engine::Observer {
 public:
  void progress(const engine::Progress& /*progress*/) override {}
};

// Hands calls to a shared scripted backend (RetryingBackend owns its inner one).
class Forward : public backends::Backend {
 public:
  explicit Forward(std::shared_ptr<backends::Backend> to) : m_to(std::move(to)) {}
  Result<backends::Submitted<backends::ModelResponse>> submit_model(const backends::ModelRequest& r,
                                                                    backends::CallTrace& t) override {
    return m_to->submit_model(r, t);
  }
  Result<backends::Submitted<backends::GenerationResult>> submit_generation(const backends::GenerationRequest& r,
                                                                            backends::CallTrace& t) override {
    return m_to->submit_generation(r, t);
  }

 private:
  std::shared_ptr<backends::Backend> m_to;
};

// The demo's project with no injected failures: every gate passes unless a test scripts otherwise.
struct ExchangeFilm {
  testing::TempDir tmp;
  testing::FixedClock clock;
  fs::path dir = tmp.path() / "film";
  std::shared_ptr<backends::SimBackend> sim;
  std::shared_ptr<testing::ScriptedBackend> scripted;
  RecordingSleeper sleeper;
  bool with_retries = false;

  ExchangeFilm() {
    fs::copy(fs::path(AVPS_SOURCE_DATA_DIR) / "examples" / "demo_short_film", dir, fs::copy_options::recursive);
    auto config = core::parse_json(*core::read_file(dir / "avps.json"), "avps.json");
    REQUIRE(config.ok());
    // PNG frames for renders (sim.media "image"): no case here looks at a clip, and an ffmpeg start
    // per render made the one case that renders (to shots_proxy, twice) 11 CPU s of the suite's 83.
    (*config)["sim"] = {{"latency_ms", 0}, {"media", "image"}};
    std::ofstream(dir / "avps.json") << config->dump(2);
    auto created = project::Project::init(dir, "", {}, clock);
    INFO((created.ok() ? std::string() : created.error().message));
    REQUIRE(created.ok());
    auto made = backends::SimBackend::from_config((*created)->config().document);
    REQUIRE(made.ok());
    sim = std::move(made).value();
    scripted = std::make_shared<testing::ScriptedBackend>(sim);
  }

  Result<engine::RunOutcome> run(const std::string& until = "narrative", int jobs = 1) {
    AVPS_TRY_ASSIGN(auto project, project::Project::open(dir, ledger::OpenMode::read_write, {}, clock));
    AVPS_TRY_ASSIGN(auto registry, skills::Registry::load(project::data_dir(), &dir));
    AVPS_TRY_ASSIGN(auto models, governance::ModelsFile::load(project::data_dir(), dir, project->config()));
    std::map<std::string, std::shared_ptr<backends::Backend>, std::less<>> by_model;
    for (const governance::Model& m : models.models()) {
      if (with_retries) {
        by_model[m.id] = std::make_shared<backends::RetryingBackend>(std::make_unique<Forward>(scripted),
                                                                     backends::RetryPolicy{}, 7, sleeper);
      } else {
        by_model[m.id] = scripted;
      }
    }
    auto backends = backends::BackendRegistry::of(std::move(by_model));
    governance::Router router(std::move(models));
    AVPS_TRY_ASSIGN(auto overrides, governance::Overrides::read(project->ledger()));
    AVPS_TRY(project->ledger().begin_run("run", json::object()));
    const project::Budget configured = project->config().budget;
    governance::BudgetGovernor governor(project->ledger(), overrides.effective_budget(configured),
                                        [&overrides, configured](const std::string& scene, const std::string& shot) {
                                          return overrides.caps_for(configured, scene, shot);
                                        });
    Quiet observer;
    engine::Engine engine(*project, registry, *backends, router, governor, observer);
    Result<engine::RunOutcome> outcome = engine.run(engine::RunOptions{until, "", jobs});
    std::ignore = project->ledger().end_run(outcome ? "DONE" : "ERROR", json::object());
    return outcome;
  }

  std::vector<ledger::Event> events(const std::string& kind) {
    auto project = project::Project::open(dir, ledger::OpenMode::read_only, {}, clock);
    REQUIRE(project.ok());
    auto all = (*project)->ledger().events();
    REQUIRE(all.ok());
    std::vector<ledger::Event> out;
    for (ledger::Event& e : *all) {
      if (e.kind == kind) {
        out.push_back(std::move(e));
      }
    }
    return out;
  }

  size_t open_reservations() {
    auto project = project::Project::open(dir, ledger::OpenMode::read_only, {}, clock);
    REQUIRE(project.ok());
    auto open = (*project)->ledger().open_reservations();
    REQUIRE(open.ok());
    return open->size();
  }

  std::vector<json> step_verdicts(const std::string& skill) {
    std::vector<json> out;
    for (const ledger::Event& e : events("step.finished")) {
      if (e.body.value("skill", "") == skill) {
        out.push_back(e.body);
      }
    }
    return out;
  }
};

// The demo's record up to planning, every event read back through the project opened read-only
// (held, for its ledger): what the record and checkpoint cases fold.
struct PlanningRecord {
  ExchangeFilm film;
  std::unique_ptr<project::Project> project;
  std::vector<ledger::Event> events;
  PlanningRecord() {
    REQUIRE(film.run("planning").ok());
    auto opened = project::Project::open(film.dir, ledger::OpenMode::read_only, {}, film.clock);
    REQUIRE(opened.ok());
    project = std::move(opened).value();
    auto read = project->ledger().events();
    REQUIRE(read.ok());
    events = std::move(read).value();
  }
};

Error unavailable(const std::string& why) { return make_error(ErrorCode::backend_unavailable, why); }

}  // namespace

// An engine's walk state (no run) over the demo's project as init leaves it.
struct InitWalk {
  ExchangeFilm film;
  std::unique_ptr<project::Project> project;
  std::optional<skills::Registry> registry;
  std::unique_ptr<backends::BackendRegistry> backends = backends::BackendRegistry::of({});
  std::optional<governance::Router> router;
  std::optional<governance::BudgetGovernor> governor;
  Quiet observer;
  std::optional<engine::Engine> engine;
  std::optional<engine::Impl> impl;

  explicit InitWalk(const engine::RunOptions& options) {
    auto opened = project::Project::open(film.dir, ledger::OpenMode::read_write, {}, film.clock);
    REQUIRE(opened.ok());
    project = std::move(opened).value();
    auto loaded = skills::Registry::load(project::data_dir(), &film.dir);
    REQUIRE(loaded.ok());
    registry.emplace(std::move(loaded).value());
    auto models = governance::ModelsFile::load(project::data_dir(), film.dir, project->config());
    REQUIRE(models.ok());
    router.emplace(std::move(models).value());
    governor.emplace(project->ledger(), project->config().budget);
    engine.emplace(*project, *registry, *backends, *router, *governor, observer);
    impl.emplace(*engine, options);
  }

  /// The STYLE_LOCK init recorded (the project's one lock before any run).
  ledger::ArtifactRecord style_lock() const {
    auto artifacts = project->ledger().artifacts();
    REQUIRE(artifacts.ok());
    auto style = std::find_if(artifacts->begin(), artifacts->end(),
                              [](const ledger::ArtifactRecord& a) { return a.kind == "STYLE_LOCK"; });
    REQUIRE(style != artifacts->end());
    return *style;
  }
};

TEST_CASE("a transient failure is retried after the provider's wait and the call is paid once", "[engine][exchange]") {
  // Given story-architect's first two calls get 503 (the second with Retry-After 3 s)
  ExchangeFilm film;
  film.with_retries = true;
  film.scripted->script("", "story-architect", testing::Scripted::fails(unavailable("HTTP 503")));
  Error with_hint = unavailable("HTTP 503");
  with_hint.retry_after_ms = 3000;
  film.scripted->script("", "story-architect", testing::Scripted::fails(with_hint));
  // When the narrative phase runs
  auto outcome = film.run();
  REQUIRE(outcome.ok());
  CHECK(outcome->exit == ExitCode::ok);
  // Then the first wait is a jittered backoff, the second the provider's, and one answer settles
  REQUIRE(film.sleeper.waits.size() == 2);
  CHECK(film.sleeper.waits[0] >= 375);
  CHECK(film.sleeper.waits[0] <= 500);
  CHECK(film.sleeper.waits[1] == 3000);
  CHECK(film.events("exchange.failed").empty());
  CHECK(film.open_reservations() == 0);
}

TEST_CASE("a model that keeps failing is replaced by the next model of its tier, and a resume follows it",
          "[engine][exchange]") {
  // Given the cheapest t2 model is down
  ExchangeFilm film;
  film.scripted->fail_model("sim-t2-lite", unavailable("connection refused (127.0.0.1:9)"));
  auto outcome = film.run();
  REQUIRE(outcome.ok());
  CHECK(outcome->exit == ExitCode::ok);
  // Then each call of it failed, was released, and fell back within t2 with a logged reason
  std::vector<ledger::Event> failed = film.events("exchange.failed");
  std::vector<ledger::Event> fallbacks = film.events("exchange.fallback");
  REQUIRE_FALSE(failed.empty());
  REQUIRE(fallbacks.size() == failed.size());
  for (const ledger::Event& f : fallbacks) {
    CHECK(f.body.value("from_model", "") == "sim-t2-lite");
    CHECK(f.body.value("to_model", "") == "sim-t2-alt");
    CHECK(f.body.value("reason", "").find("connection refused") != std::string::npos);
  }
  for (const ledger::Event& f : failed) {
    CHECK(f.body.value("model", "") == "sim-t2-lite");
  }
  CHECK(film.open_reservations() == 0);
  // When the run is resumed with the model still down, nothing is sent again
  const int calls = film.scripted->calls();
  auto again = film.run();
  REQUIRE(again.ok());
  CHECK(again->calls_made == 0);
  CHECK(film.scripted->calls() == calls);
  CHECK(film.scripted->max_answers_per_request() == 1);
}

TEST_CASE("when every model of the tier fails the run ends with an error naming them and nothing spent",
          "[engine][exchange]") {
  ExchangeFilm film;
  for (const char* model : {"sim-t2-lite", "sim-t2-alt", "sim-t2-mid"}) {
    film.scripted->fail_model(model, unavailable(std::string("connection refused (") + model + ".example:443)"));
  }
  auto outcome = film.run();
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error().code == ErrorCode::backend_unavailable);
  CHECK(outcome.error().message.find("every model of tier t2 failed") != std::string::npos);
  CHECK(outcome.error().message.find("sim-t2-mid.example:443") != std::string::npos);
  CHECK(film.open_reservations() == 0);
  // Nothing answered, so nothing settled: every reservation was released.
  CHECK(film.events("exchange.response").empty());
  CHECK(film.events("exchange.failed").size() == 3);
}

TEST_CASE("junk, a refusal and a cut-off are FAILs that revise, never errors", "[engine][exchange]") {
  ExchangeFilm film;
  film.scripted->script("", "story-architect", testing::Scripted::answers("I cannot do that {"));
  film.scripted->script("", "story-architect", testing::Scripted::answers("", "refusal: not comfortable"));
  film.scripted->script("", "story-architect", testing::Scripted::answers("{\"beats\": [", "length: cut off"));
  auto outcome = film.run();
  REQUIRE(outcome.ok());
  std::vector<json> steps = film.step_verdicts("story-architect");
  REQUIRE(steps.size() >= 4);
  CHECK(steps[0].value("verdict", "") == "FAIL");
  INFO(steps[0].dump());
  CHECK(steps[0].dump().find("invalid JSON") != std::string::npos);
  CHECK(steps[1].value("verdict", "") == "FAIL");
  CHECK(steps[1].dump().find("refusal: not comfortable") != std::string::npos);
  CHECK(steps[2].value("verdict", "") == "FAIL");
  CHECK(steps[2].dump().find("length: cut off") != std::string::npos);
  CHECK(outcome->exit == ExitCode::ok);
}

TEST_CASE("a model that answers junk forever escalates, then hard-stops with exit 3", "[engine][exchange]") {
  ExchangeFilm film;
  film.scripted->script("", "story-architect", testing::Scripted::answers("junk"), 100);
  auto outcome = film.run();
  REQUIRE(outcome.ok());
  CHECK(outcome->exit == ExitCode::hard_stop);
  CHECK_FALSE(film.events("run.hard_stop").empty());
  bool escalated = false;
  for (const json& step : film.step_verdicts("story-architect")) {
    escalated = escalated || step.dump().find("t3") != std::string::npos;
  }
  CHECK(escalated);
  CHECK(film.open_reservations() == 0);
}

TEST_CASE("after a run that failed, a resume sends no answered request again", "[engine][exchange]") {
  // Given the locks phase fans out over many entities, 4 in flight, and set-lock calls fail on
  // every model of their tier
  ExchangeFilm film;
  auto narrative = film.run("narrative", 4);
  REQUIRE(narrative.ok());
  for (const char* model : {"sim-t2-lite", "sim-t2-alt", "sim-t2-mid"}) {
    film.scripted->script(model, "set-lock", testing::Scripted::fails(unavailable("HTTP 502")), 100);
  }
  auto failed = film.run("locks", 4);
  REQUIRE_FALSE(failed.ok());
  const size_t answered = film.events("exchange.response").size();
  // When the providers recover and the run resumes
  film.scripted->clear();
  auto resumed = film.run("locks", 4);
  REQUIRE(resumed.ok());
  // Then no request that was answered is sent a second time
  CHECK(film.scripted->max_answers_per_request() == 1);
  CHECK(film.events("exchange.response").size() > answered);
  CHECK(film.open_reservations() == 0);
}

TEST_CASE("a cost the provider reports is what is charged, with avps's own price beside it", "[engine][exchange]") {
  // Given story-architect's first call is billed 7.5 USD by its provider (a gateway's usage.cost)
  ExchangeFilm film;
  film.scripted->script("", "story-architect", testing::Scripted::bills(7'500'000));
  // When the narrative phase runs
  auto outcome = film.run();
  REQUIRE(outcome.ok());
  CHECK(outcome->exit == ExitCode::ok);
  // Then that exchange is settled at the bill, flagged as far from avps's price, and counted as spent
  int billed = 0;
  int64_t local = 0;
  for (const ledger::Event& e : film.events("exchange.response")) {
    if (e.body.contains("provider_cost_micro_usd")) {
      ++billed;
      CHECK(e.body["provider_cost_micro_usd"] == 7'500'000);
      CHECK(e.body["cost_micro_usd"] == 7'500'000);
      local = e.body.value("local_cost_micro_usd", int64_t{0});
      CHECK(local > 0);
      CHECK(local < 7'500'000);
      CHECK(e.body.value("provider_cost_differs", false));
    }
  }
  CHECK(billed == 1);
  auto project = project::Project::open(film.dir, ledger::OpenMode::read_only, {}, film.clock);
  REQUIRE(project.ok());
  auto spent = (*project)->ledger().spend("", "");
  REQUIRE(spent.ok());
  CHECK(spent->committed_micro_usd >= 7'500'000);
}

TEST_CASE("a lock edited by hand while a run is in flight is an integrity stop naming it, not an error",
          "[engine][exchange]") {
  // Given a person appends to a character lock's face while the shot planner's call is in flight,
  // after the lock was recorded and before a GenPack's gate reads it
  ExchangeFilm film;
  const fs::path lock = film.dir / "continuity" / "CHAR_MARA_QUILL_LOCK_v001.txt";
  film.scripted->before_call("shot-planner", [&lock] { std::ofstream(lock, std::ios::app) << "\nA new scar.\n"; });
  // When the run meets it
  auto outcome = film.run("shots_proxy");
  // Then it stops with exit 3 and the gate's finding, instead of an error
  REQUIRE(outcome.ok());
  CHECK(outcome->exit == ExitCode::hard_stop);
  CHECK_THAT(outcome->message, Catch::Contains("CHAR_MARA_QUILL_LOCK_v001.txt"));
  const std::vector<ledger::Event> stops = film.events("run.hard_stop");
  REQUIRE(stops.size() == 1);
  CHECK(stops.front().body.value("kind", "") == "integrity");
  CHECK(stops.front().body.dump().find("CHAR_MARA_QUILL_LOCK_v001.txt") != std::string::npos);
  CHECK(film.open_reservations() == 0);
  // And once the face is as recorded again, the next run resolves the stop and goes on
  std::string text = *core::read_file(lock);
  text.erase(text.rfind("\nA new scar.\n"));
  std::ofstream(lock, std::ios::trunc) << text;
  auto resumed = film.run("shots_proxy");
  REQUIRE(resumed.ok());
  CHECK(resumed->exit == ExitCode::ok);
  CHECK(film.events("stop.resolved").size() == 1);
}

TEST_CASE("a record fold restored from its saved state and given the events after it equals the fold of every event",
          "[engine][checkpoint]") {
  const PlanningRecord planning;
  const std::vector<ledger::Event>& events = planning.events;
  REQUIRE(events.size() > 100);
  for (engine::RecordParts parts : {engine::RecordParts::all, engine::RecordParts::renders}) {
    engine::RecordFold whole(parts);
    for (const ledger::Event& e : events) {
      whole.add(e);
    }
    const json whole_state = whole.save();
    CHECK(whole_state.at("steps").size() > 10);
    for (size_t cut : {size_t{1}, events.size() / 3, events.size() / 2, events.size() - 1, events.size()}) {
      INFO("parts " << (parts == engine::RecordParts::all ? "all" : "renders") << ", saved after event " << cut);
      engine::RecordFold head(parts);
      for (size_t i = 0; i < cut; ++i) {
        head.add(events[i]);
      }
      // As a checkpoint's record sections keep it (the run's, or the stale-shot rule's): the flat
      // encoding, read back.
      core::ByteWriter flat;
      head.save(flat);
      std::optional<engine::RecordFold> from_flat = engine::RecordFold::restore_bytes(flat.bytes());
      REQUIRE(from_flat);
      // A stale-shot record section is the stale-shot rule's part only: a run's whole record is refused.
      CHECK(engine::StaleShotsRecord::restore_bytes(flat.bytes()).has_value() == (parts == engine::RecordParts::renders));
      CHECK(from_flat->save() == head.save());
      // The same bytes in parts, the fold let go of as they are made (a checkpoint writer's way).
      engine::RecordFold spent = head;
      std::string joined;
      for (const std::string& part : std::move(spent).save_parts()) {
        CHECK_FALSE(part.empty());
        joined += part;
      }
      CHECK(joined == flat.bytes());
      for (size_t i = cut; i < events.size(); ++i) {
        from_flat->add(events[i]);
      }
      CHECK(from_flat->save() == whole_state);
      const engine::Record from_whole = engine::RecordFold(whole).finish();
      const engine::Record from_restored = std::move(*from_flat).finish();
      CHECK(from_restored.steps == from_whole.steps);
      CHECK(from_restored.shot_attempts == from_whole.shot_attempts);
      CHECK(from_restored.written_by == from_whole.written_by);
      CHECK(from_restored.cut_short == from_whole.cut_short);
      CHECK(from_restored.open_stops == from_whole.open_stops);
      REQUIRE(from_restored.exchanges.size() == from_whole.exchanges.size());
      for (auto x = from_restored.exchanges.begin(), y = from_whole.exchanges.begin(); x != from_restored.exchanges.end();
           ++x, ++y) {
        CHECK(x->first == y->first);
        CHECK(x->second.intents == y->second.intents);
        CHECK(x->second.reservations == y->second.reservations);
        CHECK(x->second.response.has_value() == y->second.response.has_value());
      }
    }
  }
  // What save() did not make is refused, not taken for an empty fold.
  core::ByteWriter flat;
  engine::RecordFold(engine::RecordParts::all).save(flat);
  CHECK(engine::RecordFold::restore_bytes(flat.bytes()));
  CHECK_FALSE(engine::RecordFold::restore_bytes(flat.bytes().substr(0, flat.bytes().size() - 1)));
  CHECK_FALSE(engine::RecordFold::restore_bytes(flat.bytes() + std::string(1, '\0')));
  CHECK_FALSE(engine::RecordFold::restore_bytes(std::string_view()));
}

TEST_CASE("a run's record carries the built-ins' tally, restored as it was saved and added to from where it stopped",
          "[engine][checkpoint]") {
  // Given the record of the demo's narrative and planning
  const PlanningRecord planning;
  const ledger::Ledger& ledger = planning.project->ledger();
  const std::vector<ledger::Event>& events = planning.events;
  engine::RecordFold whole(engine::RecordParts::all);
  for (const ledger::Event& e : events) {
    whole.add(e);
  }
  const engine::RecordTally folded = std::move(whole).finish().tally;

  // Then the fold's tally (from whole events) is the one Impl::tally_so_far makes from the few
  // members SQLite extracts of every event, as of the same last event
  ledger::Ledger::EventQuery members;
  members.members = governance::BudgetTally::members();
  for (const std::string& m : governance::NarrativeCallTally::members()) {
    members.members.push_back(m);
  }
  engine::RecordTally extracted;
  REQUIRE(ledger.each_event(members, [&](ledger::Event&& e) -> Result<void> {
    extracted.budget.add(e);
    extracted.narrative.add(e);
    return ok();
  }).ok());
  CHECK(folded.budget == extracted.budget);
  CHECK(folded.narrative.calls().total == extracted.narrative.calls().total);
  CHECK(folded.narrative.calls().t3 == extracted.narrative.calls().t3);
  CHECK(folded.narrative.calls().total > 0);
  REQUIRE_FALSE(folded.budget.tiers.empty());
  CHECK(folded.budget.tiers.begin()->second.calls > 0);
  // and it stands as of the last event that could count (run.finished counts nothing)
  int64_t last_counted = 0;
  for (const ledger::Event& e : events) {
    if (!engine::record_fold_ignores(e)) {
      last_counted = e.seq;
    }
  }
  CHECK(folded.seq == last_counted);

  // When the record of the first half is saved, restored, and the second half added to it
  const size_t half = events.size() / 2;
  engine::RecordFold first(engine::RecordParts::all);
  for (size_t i = 0; i < half; ++i) {
    first.add(events[i]);
  }
  core::ByteWriter flat;
  first.save(flat);
  std::optional<engine::RecordFold> restored = engine::RecordFold::restore_bytes(flat.bytes());
  REQUIRE(restored);
  for (size_t i = half; i < events.size(); ++i) {
    restored->add(events[i]);
  }
  const engine::RecordTally resumed = std::move(*restored).finish().tally;

  // Then its tally is the whole fold's, member by member
  CHECK(resumed.save() == folded.save());
}

TEST_CASE("a restored record holds a loop's last step once and each exchange key once, and refuses keys out of order",
          "[engine][checkpoint]") {
  // Given the record of the demo's narrative and planning, saved as a checkpoint's run section
  const PlanningRecord planning;
  engine::RecordFold fold(engine::RecordParts::all);
  for (const ledger::Event& e : planning.events) {
    fold.add(e);
  }
  core::ByteWriter flat;
  fold.save(flat);
  const engine::Record folded = std::move(fold).finish();

  // When it is restored
  std::optional<engine::RecordFold> restored = engine::RecordFold::restore_bytes(flat.bytes());
  REQUIRE(restored);
  const engine::Record record = std::move(*restored).finish();

  // Then every loop whose last step's summary is its step's holds that very summary, not a copy,
  // as the fold that saved it did
  size_t shared = 0;
  for (const auto& [loop, summary] : record.loops) {
    const std::string step = (*summary).value("step", "");
    auto same = record.steps.find(step);
    REQUIRE(same != record.steps.end());
    if (same->second == summary) {
      CHECK(&same->second.bytes() == &summary.bytes());
      CHECK(&folded.steps.at(step).bytes() == &folded.loops.at(loop).bytes());
      ++shared;
    }
  }
  CHECK(shared > 10);
  CHECK(record.steps == folded.steps);
  CHECK(record.loops == folded.loops);
  // and each exchange key is one entry, with its intents, reservations and response
  REQUIRE_FALSE(record.exchanges.empty());
  for (const auto& [key, facts] : record.exchanges) {
    INFO(key);
    CHECK(facts.intents > 0);
    CHECK(facts.reservations > 0);
    CHECK(facts.response.has_value() == (folded.response(key) != nullptr));
  }

  // And a section whose responses name a key twice (which save never writes) is refused whole
  core::ByteWriter twice;
  twice.u64(1);  // all parts
  twice.u64(2);  // responses: the same key twice
  for (int i = 0; i < 2; ++i) {
    twice.text("k");
    twice.i64(1);
    twice.text("S01");
    twice.i64(0);
    twice.i64(0);
  }
  std::string rest = flat.bytes();
  core::ByteReader skip(rest);
  std::ignore = skip.u64();
  std::ignore = skip.count();  // the saved fold's responses, skipped
  for (const auto& [key, facts] : folded.exchanges) {
    if (facts.response) {
      std::ignore = skip.text();
      std::ignore = skip.i64();
      std::ignore = skip.text();
      std::ignore = skip.i64();
      std::ignore = skip.i64();
    }
  }
  REQUIRE(skip.ok());
  const std::string damaged = twice.bytes() + rest.substr(skip.consumed());
  CHECK_FALSE(engine::RecordFold::restore_bytes(damaged));
  core::ByteWriter once;
  once.u64(1);
  once.u64(1);
  once.text("k");
  once.i64(1);
  once.text("S01");
  once.i64(0);
  once.i64(0);
  CHECK(engine::RecordFold::restore_bytes(once.bytes() + rest.substr(skip.consumed())));
}

TEST_CASE("the walk's memo of who wrote a version follows each change of the record it is told of, and a change "
          "it is not told of is an error under verify_by_name",
          "[engine]") {
  // Given the demo's project as init leaves it, and an engine's walk state over it that verifies
  // every memo it serves (as the e2e tests' runs do)
  engine::RunOptions verifying;
  verifying.verify_by_name = true;
  InitWalk walk(verifying);
  engine::Impl& impl = *walk.impl;
  const ledger::ArtifactRecord style = walk.style_lock();
  REQUIRE(style.version == 1);
  const std::optional<engine::WalkRank> rank{engine::WalkRank{2, 0, 50}};
  auto read = [&] { return impl.readable_version(style, "prompt-packager/S01_SH01/proxy", rank); };

  // When no step of a run wrote it (init did), a step reads it.
  auto first = read();
  REQUIRE(first.ok());
  REQUIRE(first->has_value());
  CHECK((*first)->name == style.name);

  // When the record comes to say an attempt an interruption cut short wrote it, and the walk is
  // not told, the memo made above is stale: served under verify_by_name, it is an error.
  const std::string step = "style-writer@0123456789abcdef";
  impl.record.written_by[style.name] = engine::WrittenBy{step, 1};
  impl.record.cut_short.insert(style.name);
  auto untold = read();
  REQUIRE_FALSE(untold.ok());
  CHECK(untold.error().message.find("no longer matches the record") != std::string::npos);

  // Told, the memo is made again: no step reads it, and there is no version before it.
  impl.record_changed();
  auto hidden = read();
  REQUIRE(hidden.ok());
  CHECK_FALSE(hidden->has_value());

  // Once its step finished (PASS), it is read again.
  impl.record.steps[step] =
      engine::make_summary({{"attempt", 1}, {"verdict", "PASS"}, {"loop", "style-writer"}, {"step", step}});
  impl.record_changed();
  auto finished = read();
  REQUIRE(finished.ok());
  REQUIRE(finished->has_value());
  CHECK((*finished)->name == style.name);

  // A FAIL that is its loop's last step, not acted on and with no stop open, hides it from other
  // loops; a stop opened on that loop lets them read it.
  impl.record.steps[step] =
      engine::make_summary({{"attempt", 1}, {"verdict", "FAIL"}, {"loop", "style-writer"}, {"step", step}});
  impl.record.loops["style-writer"] = impl.record.steps[step];
  impl.record_changed();
  auto failed = read();
  REQUIRE(failed.ok());
  CHECK_FALSE(failed->has_value());
  impl.record.open_stops["style-writer"] = {{"seq", 1}};
  impl.record_changed();
  auto stopped = read();
  REQUIRE(stopped.ok());
  CHECK(stopped->has_value());
}

TEST_CASE("what a reader reads of every target follows each change of a writer fact it is told of, and is made "
          "once for a reader while none changes",
          "[engine]") {
  // Given the demo's project as init leaves it (one STYLE_LOCK) and an engine's walk state over it
  InitWalk walk(engine::RunOptions{});
  engine::Impl& impl = *walk.impl;
  const ledger::ArtifactRecord style = walk.style_lock();
  const std::string own = "style-writer";
  const std::string other = "budget-gates/S01";
  auto read = [&](const std::string& loop) -> std::vector<std::string> {
    auto readable = impl.readable_of_every_target("STYLE_LOCK", loop, std::nullopt);
    REQUIRE(readable.ok());
    CHECK((*readable)->names_text.front() == '[');
    std::vector<std::string> names;
    for (const ledger::ArtifactRecord* r : (*readable)->records) {
      names.push_back(r->name);
    }
    return names;
  };
  const std::vector<std::string> style_only{style.name};
  const std::vector<std::string> none;

  // When no step of a run wrote it, every reader reads it, and one reader twice reads the same list
  // (made once: the same object, with the same text).
  CHECK(read(other) == style_only);
  auto once = impl.readable_of_every_target("STYLE_LOCK", other, std::nullopt);
  auto twice = impl.readable_of_every_target("STYLE_LOCK", other, std::nullopt);
  REQUIRE(once.ok());
  REQUIRE(twice.ok());
  CHECK(*once == *twice);
  CHECK((*twice)->names_text == "[\"" + style.name + "\"]");

  // When the record comes to say an unfinished attempt of its own loop wrote it (told:
  // artifact_written), that loop re-runs the attempt and does not read it; another loop does.
  const std::string step = own + "@0123456789abcdef";
  impl.record.written_by[style.name] = engine::WrittenBy{step, 1};
  impl.artifact_written(style.name);
  CHECK(read(own) == none);
  CHECK(read(other) == style_only);

  // Its step finished with a FAIL that is its loop's last, not acted on (told: step_changed): other
  // loops wait for the loop's answer, the loop itself reads it.
  impl.record.steps[step] =
      engine::make_summary({{"attempt", 1}, {"verdict", "FAIL"}, {"loop", own}, {"step", step}});
  impl.record.loops[own] = impl.record.steps[step];
  impl.step_changed(step, own);
  CHECK(read(other) == none);
  CHECK(read(own) == style_only);

  // A stop opened on that loop (told: loop_changed) lets other loops read it again.
  impl.record.open_stops[own] = {{"seq", 1}};
  impl.loop_changed(own);
  CHECK(read(other) == style_only);
}

TEST_CASE("a change of a writer fact the walk is not told of is an error under verify_by_name when every target's "
          "version is read",
          "[engine]") {
  engine::RunOptions verifying;
  verifying.verify_by_name = true;
  InitWalk walk(verifying);
  engine::Impl& impl = *walk.impl;
  const ledger::ArtifactRecord style = walk.style_lock();
  auto first = impl.readable_of_every_target("STYLE_LOCK", "budget-gates/S01", std::nullopt);
  REQUIRE(first.ok());
  REQUIRE((*first)->records.size() == 1);

  // When an attempt an interruption cut short comes to have written it, untold
  const std::string step = "style-writer@0123456789abcdef";
  impl.record.written_by[style.name] = engine::WrittenBy{step, 1};
  impl.record.cut_short.insert(style.name);
  auto untold = impl.readable_of_every_target("STYLE_LOCK", "budget-gates/S01", std::nullopt);
  REQUIRE_FALSE(untold.ok());
  CHECK(untold.error().message.find("no longer matches the record") != std::string::npos);

  // Told, no reader reads it
  impl.record_changed();
  auto told = impl.readable_of_every_target("STYLE_LOCK", "budget-gates/S01", std::nullopt);
  REQUIRE(told.ok());
  CHECK((*told)->records.empty());
  CHECK((*told)->names_text == "[]");
}

TEST_CASE("an all_targets list's fingerprint made by element from the last list's hash states is the digest of the "
          "list made whole, whatever changed between two lists",
          "[engine]") {
  // Given the demo's project as init leaves it (a STYLE_LOCK and a WORLD_STATE) and an engine's
  // walk state over it
  InitWalk walk(engine::RunOptions{});
  engine::Impl& impl = *walk.impl;
  auto artifacts = walk.project->ledger().artifacts();
  REQUIRE(artifacts.ok());
  REQUIRE(artifacts->size() >= 2);
  const ledger::ArtifactRecord* a = &(*artifacts)[0];
  const ledger::ArtifactRecord* b = &(*artifacts)[1];
  REQUIRE(a->json_sha256 != b->json_sha256);

  // The digest the gather made before: the list of contents, cut, without gates, canonical, hashed.
  auto whole = [&](const std::vector<const ledger::ArtifactRecord*>& records, const std::vector<std::string>& fields) {
    json list = json::array();
    for (const ledger::ArtifactRecord* r : records) {
      auto content = walk.project->store().load(*r);
      REQUIRE(content.ok());
      list.push_back(*content);
    }
    auto canonical = core::canonical_json(engine::without_gate(engine::cut_to_fields(std::move(list), fields)));
    REQUIRE(canonical.ok());
    return core::sha256_hex(*canonical);
  };

  // When lists follow one another under one key (the same prefix, a shorter one, none, an element
  // twice, one appended, one replaced), and under a second key with fields that cut the elements
  const std::vector<std::vector<const ledger::ArtifactRecord*>> lists = {
      {a}, {a, b}, {a, b}, {b, a}, {b}, {b, a, a}, {b, a, a, b}, {b, b, a, b}, {a}, {}, {b, a}};
  for (const std::vector<std::string>& fields :
       {std::vector<std::string>{}, std::vector<std::string>{"/format_version", "/no_such_member"}}) {
    const std::string key = "KIND\nall_targets\n" + std::to_string(fields.size());
    for (size_t i = 0; i < lists.size(); ++i) {
      // Then each fingerprint is the whole list's digest
      auto made = impl.list_fingerprint(key, lists[i], fields);
      REQUIRE(made.ok());
      INFO("list " << i << ", " << fields.size() << " fields");
      CHECK(*made == whole(lists[i], fields));
    }
  }
  // And a list of two elements cut to different fields has another fingerprint than the whole one.
  CHECK(whole({a, b}, {}) != whole({a, b}, {"/format_version"}));
}

TEST_CASE("the integrity check finds the same broken objects in the same order on one thread and on several",
          "[exchange][integrity][threads]") {
  // Given the record of the demo up to planning, every stored object but one edited and that one
  // deleted behind the ledger's back (its append-only triggers dropped, as a person with the
  // sqlite3 shell could), when a reader checks it on one thread and on three (each reading objects
  // through a connection of its own), then the findings are the same, in the same order.
  ExchangeFilm film;
  REQUIRE(film.run("planning").ok());
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((film.dir / ".avps" / "ledger.db").c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db,
                     "DROP TRIGGER objects_no_update; DROP TRIGGER objects_no_delete; "
                     "UPDATE objects SET bytes = 'edited' WHERE rowid != 5; "
                     "DELETE FROM objects WHERE rowid = 5;",
                     nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  auto reader = ledger::Ledger::open(film.dir, ledger::OpenMode::read_only, film.clock).value();
  REQUIRE(reader->another_reader().value() != nullptr);  // the threads each read through their own
  const gates::ProjectFiles files = gates::list_project_files(film.dir);
  auto lines = [&](size_t threads) {
    gates::IntegrityOptions options;
    options.threads = threads;
    std::vector<std::string> out;
    for (const core::Violation& v : gates::check_integrity(film.dir, *reader, files, options)) {
      out.push_back(v.rule + " " + v.subject + ": " + v.message);
    }
    return out;
  };
  const std::vector<std::string> one = lines(1);
  CHECK(lines(3) == one);
  // More findings than three threads' batches of objects, so each of the three takes some.
  CHECK(std::count_if(one.begin(), one.end(), [](const std::string& f) { return f.rfind("object.", 0) == 0; }) >
        3 * 16);
}
