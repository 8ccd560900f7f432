#include "avps/governance/override.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>

#include "avps/artifacts/names.hpp"
#include "avps/core/fs.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/budget_status.hpp"
#include "avps/project/project.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"
#include "unit/governance/governance_support.hpp"

using namespace avps;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A fresh project (project cap 1000 USD, scene cap 60 USD, and whatever `more` sets), open
// read-write.
struct OverrideFilm {
  testing::TempDir tmp;
  testing::FixedClock clock;
  std::unique_ptr<project::Project> project;

  explicit OverrideFilm(std::vector<project::Override> more = {}) {
    more.insert(more.begin(), {"/budget/scene_cap_usd", 60});
    auto created = project::Project::init(tmp.path() / "film", "Override test", more, clock);
    INFO((created.ok() ? std::string() : created.error().message));
    REQUIRE(created.ok());
    project = std::move(created).value();
  }

  ledger::Ledger& ledger() { return project->ledger(); }

  // Appends events in a run of their own; returns the seq of the last.
  int64_t append(std::vector<ledger::EventDraft> drafts) {
    REQUIRE(ledger().begin_run("test", json::object()).ok());
    auto committed = ledger().commit(std::move(drafts));
    REQUIRE(committed.ok());
    REQUIRE(ledger().end_run("DONE", json::object()).ok());
    return committed->back().seq;
  }

  int64_t stop(json body) {
    ledger::LogRow row;
    row.skill_name = body.value("skill", "");
    row.outcome = "STOP";
    row.notes = body.value("reason", "");
    return append({ledger::EventDraft{.kind = "run.hard_stop", .body = std::move(body), .row = row}});
  }

  int64_t step(const std::string& step, const std::string& skill, const std::string& verdict,
               const std::string& actual_cost = "0.000000") {
    ledger::LogRow row;
    row.skill_name = skill;
    row.outcome = verdict;
    row.actual_cost = actual_cost;
    json body = {{"step", step},       {"skill", skill},           {"attempt", 1}, {"tier", "t2"},
                 {"verdict", verdict}, {"reasons", json::array()}, {"outputs", ""}};
    return append({ledger::EventDraft{.kind = "step.finished", .body = body, .row = row}});
  }

  // Records an artifact as if `producer` had written it.
  std::string artifact(const std::string& kind, const std::string& target, const std::string& producer) {
    auto name = project->store().next_name(kind, target);
    REQUIRE(name.ok());
    REQUIRE(ledger().begin_run("test", json::object()).ok());
    artifacts::NewArtifact a{*name,         {{"kind", kind}}, "face of " + name->filename() + "\n",
                             "avps",        producer,         std::nullopt,
                             json::object()};
    REQUIRE(project->store().write(a).ok());
    REQUIRE(ledger().end_run("DONE", json::object()).ok());
    return name->filename();
  }

  std::vector<ledger::Event> events() {
    auto all = ledger().events();
    REQUIRE(all.ok());
    return std::move(all).value();
  }

  governance::Overrides overrides() {
    auto read = governance::Overrides::read(ledger());
    REQUIRE(read.ok());
    return std::move(read).value();
  }
};

json budget_stop(const std::string& cap, int64_t needed) {
  return {{"skill", "plausibility-auditor"},
          {"kind", "budget"},
          {"loop", "plausibility-auditor/S03"},
          {"scope", {{"scene_id", "S03"}}},
          {"reason", "budget: the " + cap + " cap would be passed"},
          {"findings", json::array()},
          {"cap", cap},
          {"needed_micro_usd", needed}};
}

json gate_stop(const std::string& skill, const std::string& loop, const json& scope,
               const std::string& kind = "gate") {
  return {{"skill", skill},
          {"kind", kind},
          {"loop", loop},
          {"scope", scope},
          {"reason", skill + " failed its gate 3 times"},
          {"findings", {"plaus_total 5 < 7"}}};
}

governance::OverrideRequest raise(int64_t seq, const std::string& usd,
                                  const std::string& reason = "approved by the producer") {
  return {"STOP-" + std::to_string(seq), reason, usd, std::nullopt, std::nullopt};
}

governance::OverrideRequest allow(int64_t seq, const std::string& n) {
  return {"STOP-" + std::to_string(seq), "one more pass with the new research", std::nullopt, n,
          std::nullopt};
}

governance::OverrideRequest accept(int64_t seq, const std::string& name) {
  return {"STOP-" + std::to_string(seq), "the director accepts the invented harbour", std::nullopt,
          std::nullopt, name};
}

}  // namespace

TEST_CASE(
    "Raising the project cap records the decision, its cost impact and a BUDGET_STATUS under the new cap",
    "[override]") {
  OverrideFilm film;
  const int64_t seq = film.stop(budget_stop("project", 2'500'000));

  auto recorded = governance::record_override(*film.project, raise(seq, "1250.5"));
  INFO((recorded.ok() ? std::string() : recorded.error().message));
  REQUIRE(recorded.ok());
  CHECK(recorded->record.decision == "raise_cap");
  CHECK(recorded->record.cost_impact_micro_usd == 250'500'000);
  CHECK(recorded->budget_status == "BUDGET_STATUS_v001.md");

  // The event, its RUN_LOG row, and the BUDGET_STATUS after it.
  const std::vector<ledger::Event> events = film.events();
  auto decided = std::find_if(events.begin(), events.end(),
                              [](const ledger::Event& e) { return e.kind == "stop.override"; });
  REQUIRE(decided != events.end());
  CHECK(decided->body["stop"] == "STOP-" + std::to_string(seq));
  CHECK(decided->body["stop_seq"] == seq);
  CHECK(decided->body["skill"] == "plausibility-auditor");
  CHECK(decided->body["loop"] == "plausibility-auditor/S03");
  CHECK(decided->body["scope"] == json{{"scene_id", "S03"}});
  CHECK(decided->body["reason"] == "approved by the producer");
  CHECK(decided->body["decision"] ==
        json{{"kind", "raise_cap"}, {"value", 1'250'500'000}, {"cap", "project"}});
  CHECK(decided->body["cost_impact_micro_usd"] == 250'500'000);
  auto row = decided->row();
  REQUIRE(row);
  CHECK(row->skill_name == "budget-gates");
  CHECK(row->outcome == "DONE");
  CHECK(row->scene_id == "S03");
  CHECK(row->notes ==
        "override STOP-" + std::to_string(seq) +
            ": raise the project cap from 1000.000000 to 1250.500000 USD: approved by the producer");

  auto status_record = film.ledger().find_artifact("BUDGET_STATUS_v001.md");
  REQUIRE(status_record.ok());
  REQUIRE(*status_record);
  CHECK((*status_record)->producer == "override");
  CHECK(fs::exists(film.project->dir() / "governance" / "BUDGET_STATUS_v001.md"));
  auto status = film.project->store().load(**status_record);
  REQUIRE(status.ok());
  CHECK(testing::schema_problems("budget_status.schema.json", *status).empty());
  CHECK((*status)["gate"]["scores"]["project_cap_micro_usd"] == 1'250'500'000);
  CHECK((*status)["gate"]["reasons"].dump().find("raised from $1000.000000 by override STOP-") !=
        std::string::npos);

  // What the engine and status read back.
  const governance::Overrides overrides = film.overrides();
  CHECK(overrides.is_overridden(seq));
  CHECK_FALSE(overrides.is_overridden(seq - 1));
  CHECK(overrides.effective_budget(film.project->config().budget).project_cap_micro_usd == 1'250'500'000);
  CHECK(governance::open_hard_stops(events).empty());
}

TEST_CASE("Raising a scene cap raises that scene's cap only, and the latest raise wins", "[override]") {
  OverrideFilm film;
  const project::Budget& configured = film.project->config().budget;
  REQUIRE(configured.scene_cap_micro_usd == 60'000'000);
  const int64_t first = film.stop(budget_stop("scene S03", 1'000'000));
  REQUIRE(governance::record_override(*film.project, raise(first, "75")).ok());
  const int64_t second = film.stop(budget_stop("scene S03", 1'000'000));
  auto again = governance::record_override(*film.project, raise(second, "90"));
  REQUIRE(again.ok());
  CHECK(again->record.cost_impact_micro_usd == 15'000'000);  // from the raised 75, not the configured 60

  const governance::Overrides overrides = film.overrides();
  CHECK(overrides.caps_for(configured, "S03", "").scene_micro_usd == 90'000'000);
  CHECK(overrides.caps_for(configured, "S04", "").scene_micro_usd == 60'000'000);
  CHECK(overrides.caps_for(configured, "S03", "").project_micro_usd == 1'000'000'000);
  CHECK_FALSE(overrides.caps_for(configured, "", "").scene_micro_usd);
  CHECK(overrides.effective_budget(configured).scene_cap_micro_usd == 60'000'000);
  CHECK(overrides.effective_budget(configured).project_cap_micro_usd == 1'000'000'000);
  CHECK(overrides.cap(configured, "scene S03") == 90'000'000);
  CHECK_FALSE(overrides.cap(configured, "shot S03_SH01"));  // no shot cap configured
}

TEST_CASE("A shot cap a person raised is judged by BUDGET_STATUS once the configuration sets none", "[override]") {
  // Given spend on two shots of S03 and a shot cap raised for one of them and for a shot that has
  // spent nothing, when the configuration no longer sets a shot cap and the BUDGET_STATUS input
  // is gathered, then the raised shot with spend is judged against its cap, after its scene, and
  // no other shot is.
  OverrideFilm film({{"/budget/shot_cap_usd", 10}});
  project::Budget configured = film.project->config().budget;
  REQUIRE(configured.shot_cap_micro_usd == 10'000'000);
  REQUIRE(film.ledger().begin_run("test", json::object()).ok());
  governance::BudgetGovernor governor(film.ledger(), configured);
  for (const char* shot : {"S03_SH01", "S03_SH02"}) {
    ledger::Reservation call{std::string("render ") + shot, "S03", shot, 5'000'000, "generate proxy"};
    REQUIRE(governor.reserve(call).ok());
    REQUIRE(governor.settle(call, 4'600'000, std::nullopt).ok());
  }
  REQUIRE(film.ledger().end_run("DONE", json::object()).ok());
  for (const char* cap : {"shot S03_SH01", "shot S09_SH01"}) {
    const int64_t stop = film.stop(budget_stop(cap, 1'000'000));
    auto raised = governance::record_override(*film.project, raise(stop, "12"));
    INFO((raised.ok() ? std::string() : raised.error().message));
    REQUIRE(raised.ok());
  }
  configured.shot_cap_micro_usd.reset();
  const std::vector<ledger::Event> events = film.events();
  auto in = governance::budget_status_input(film.ledger(), events, configured, film.overrides(), std::nullopt);
  REQUIRE(in.ok());
  REQUIRE(in->scopes.size() == 2);
  CHECK(in->scopes[0].scope == "scene S03");
  CHECK(in->scopes[1].scope == "shot S03_SH01");
  CHECK(in->scopes[1].cap_micro_usd == 12'000'000);
  CHECK(in->scopes[1].spend.total() == 4'600'000);
}

TEST_CASE("Extra attempts add up per loop and are priced at the stopped loop's last attempt", "[override]") {
  OverrideFilm film;
  film.step("plausibility-auditor/S03@aaaa", "plausibility-auditor", "FAIL", "0.250000");
  const int64_t first =
      film.stop(gate_stop("plausibility-auditor", "plausibility-auditor/S03", {{"scene_id", "S03"}}));
  auto recorded = governance::record_override(*film.project, allow(first, "2"));
  INFO((recorded.ok() ? std::string() : recorded.error().message));
  REQUIRE(recorded.ok());
  CHECK(recorded->record.cost_impact_micro_usd == 500'000);
  CHECK(recorded->budget_status.empty());

  film.step("plausibility-auditor/S03@aaaa", "plausibility-auditor", "FAIL", "0.300000");
  const int64_t frozen = film.stop(
      gate_stop("plausibility-auditor", "plausibility-auditor/S03", {{"scene_id", "S03"}}, "frozen"));
  auto more = governance::record_override(*film.project, allow(frozen, "3"));
  REQUIRE(more.ok());
  CHECK(more->record.cost_impact_micro_usd == 900'000);

  const governance::Overrides overrides = film.overrides();
  CHECK(overrides.extra_attempts("plausibility-auditor/S03") == 5);
  CHECK(overrides.extra_attempts("plausibility-auditor/S04") == 0);
  CHECK_FALSE(overrides.accepted("plausibility-auditor/S03"));
  bool found = false;
  for (const ledger::Event& e : film.events()) {
    if (e.kind == "stop.override" && e.seq == more->record.event_seq) {
      found = true;
      CHECK(e.row()->skill_name == "plausibility-auditor");
      CHECK(e.row()->notes.find("allow 3 more attempts for plausibility-auditor/S03") != std::string::npos);
    }
  }
  CHECK(found);
}

TEST_CASE("An accepted artifact must be one the stopped loop wrote, for its scope", "[override]") {
  OverrideFilm film;
  const std::string s03 = film.artifact("PLAUS", "S03", "plausibility-auditor");
  const std::string s04 = film.artifact("PLAUS", "S04", "plausibility-auditor");
  const int64_t seq =
      film.stop(gate_stop("plausibility-auditor", "plausibility-auditor/S03", {{"scene_id", "S03"}}));
  const auto head = film.ledger().head();

  auto wrong_scope = governance::record_override(*film.project, accept(seq, s04));
  REQUIRE_FALSE(wrong_scope.ok());
  CHECK(wrong_scope.error().message.find("is for S04") != std::string::npos);
  auto wrong_skill = governance::record_override(*film.project, accept(seq, "WORLD_STATE_v001.json"));
  REQUIRE_FALSE(wrong_skill.ok());
  CHECK(wrong_skill.error().message.find("was made by init") != std::string::npos);
  auto unknown = governance::record_override(*film.project, accept(seq, "PLAUS_S03_v009.md"));
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("no recorded artifact named PLAUS_S03_v009.md") != std::string::npos);
  CHECK(film.ledger().head().seq == head.seq);

  auto accepted = governance::record_override(*film.project, accept(seq, s03));
  REQUIRE(accepted.ok());
  CHECK(accepted->record.cost_impact_micro_usd == 0);
  CHECK(film.overrides().accepted("plausibility-auditor/S03") == s03);
}

TEST_CASE("A refused override writes nothing and says why", "[override]") {
  OverrideFilm film;
  film.step("character-lock/ALEX@bbbb", "character-lock", "FAIL", "0.100000");
  const int64_t gate = film.stop(gate_stop("character-lock", "character-lock/ALEX", {{"entity_id", "ALEX"}}));
  const int64_t budget = film.stop(budget_stop("project", 1'000'000));
  const int64_t frozen =
      film.stop(gate_stop("qc-grader", "qc-grader/S01_SH02/proxy", {{"shot_id", "S01_SH02"}}, "frozen"));
  const std::string lock = film.artifact("CHAR_LOCK", "ALEX", "character-lock");
  const int64_t overridden = film.stop(gate_stop("set-lock", "set-lock/HARBOUR", {{"entity_id", "HARBOUR"}}));
  REQUIRE(governance::record_override(*film.project, allow(overridden, "1")).ok());
  const auto head = film.ledger().head();
  const std::string before = core::read_file(film.project->dir() / "logs/RUN_LOG_v001.csv").value();

  struct Case {
    const char* what;
    governance::OverrideRequest request;
    const char* says;
  };
  const std::string g = "STOP-" + std::to_string(gate);
  const std::vector<Case> cases = {
      {"unknown stop", allow(999, "1"), "there is no hard stop STOP-999"},
      {"malformed stop id", {"42", "r", std::nullopt, "1", std::nullopt}, "is not a hard stop id"},
      {"leading zero", {"STOP-042", "r", std::nullopt, "1", std::nullopt}, "is not a hard stop id"},
      {"already overridden", allow(overridden, "1"), "was already overridden (allow 1 more attempt"},
      {"empty reason", {g, "  ", std::nullopt, "1", std::nullopt}, "needs a --reason"},
      {"no decision", {g, "r", std::nullopt, std::nullopt, std::nullopt}, "exactly one decision"},
      {"two decisions", {g, "r", "10", "1", std::nullopt}, "exactly one decision"},
      {"raise on a gate stop", raise(gate, "2000"), "--raise-cap lifts budget stops"},
      {"attempts on a budget stop", allow(budget, "1"), "is a budget stop (use --raise-cap USD)"},
      {"accept on a budget stop", accept(budget, lock), "--accept lifts gate and frozen stops; STOP-"},
      {"accept on a frozen stop with no render", accept(frozen, lock), "with no graded render to accept"},
      {"cap not above", raise(budget, "1000"), "is not above the current project cap of 1000.000000 USD"},
      {"cap below", raise(budget, "999.99"), "is not above"},
      {"cap not a number", raise(budget, "lots"), "is not an amount in USD"},
      {"negative cap", raise(budget, "-5"), "is not an amount in USD"},
      {"exponent", raise(budget, "1e4"), "is not an amount in USD"},
      {"seven decimals", raise(budget, "1000.0000001"), "is not an amount in USD"},
      {"trailing dot", raise(budget, "1000."), "is not an amount in USD"},
      {"cap too large", raise(budget, "100000001"), "at most 100000000 USD"},
      {"zero attempts", allow(gate, "0"), "a whole number from 1 to 1000"},
      {"attempts not a number", allow(gate, "two"), "a whole number from 1 to 1000"},
      {"too many attempts", allow(gate, "1001"), "a whole number from 1 to 1000"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    auto refused = governance::record_override(*film.project, c.request);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::invalid_argument);
    CHECK_THAT(refused.error().message, Catch::Contains(c.says));
  }
  CHECK(film.ledger().head().seq == head.seq);
  CHECK(film.ledger().head().hash == head.hash);
  CHECK(core::read_file(film.project->dir() / "logs/RUN_LOG_v001.csv").value() == before);
  CHECK_FALSE(fs::exists(film.project->dir() / "governance" / "BUDGET_STATUS_v001.md"));
}

TEST_CASE("A stop that a later stop of its loop replaced, or a passing attempt resolved, is not open",
          "[override]") {
  OverrideFilm film;
  const int64_t first = film.stop(gate_stop("set-lock", "set-lock/HARBOUR", {{"entity_id", "HARBOUR"}}));
  const int64_t second = film.stop(gate_stop("set-lock", "set-lock/HARBOUR", {{"entity_id", "HARBOUR"}}));
  const int64_t other = film.stop(gate_stop("set-lock", "set-lock/LAMP_ROOM", {{"entity_id", "LAMP_ROOM"}}));

  std::vector<governance::HardStop> open = governance::open_hard_stops(film.events());
  REQUIRE(open.size() == 2);
  CHECK(open[0].seq == second);
  CHECK(open[1].seq == other);

  auto superseded = governance::record_override(*film.project, allow(first, "1"));
  REQUIRE_FALSE(superseded.ok());
  CHECK_THAT(superseded.error().message,
             Catch::Contains("stopped again since, as STOP-" + std::to_string(second)));

  // The lamp room passes after its inputs were revised: its stop is resolved, the harbour's stays.
  film.step("set-lock/LAMP_ROOM@cccc", "set-lock", "PASS");
  open = governance::open_hard_stops(film.events());
  REQUIRE(open.size() == 1);
  CHECK(open[0].seq == second);
  auto resolved = governance::record_override(*film.project, allow(other, "1"));
  REQUIRE_FALSE(resolved.ok());
  CHECK_THAT(resolved.error().message, Catch::Contains("is no longer open"));
}

TEST_CASE("A hard stop written before stops had a kind reads as a gate stop of the step before it",
          "[override]") {
  OverrideFilm film;
  film.step("character-lock/ALEX@dddd", "character-lock", "FAIL", "0.120000");
  const int64_t seq = film.stop({{"skill", "character-lock"},
                                 {"reason", "character-lock ALEX failed its gate 3 times"},
                                 {"findings", json::array()}});
  std::vector<governance::HardStop> stops = governance::hard_stops(film.events());
  REQUIRE(stops.size() == 1);
  CHECK(stops[0].id() == "STOP-" + std::to_string(seq));
  CHECK(stops[0].kind == governance::StopKind::gate);
  CHECK(stops[0].loop == "character-lock/ALEX");
  CHECK(stops[0].scope == json::object());
  CHECK(stops[0].last_attempt_micro_usd == 120'000);

  // Its loop's context stands in for the scope when an artifact is accepted.
  const std::string ben = film.artifact("CHAR_LOCK", "BEN", "character-lock");
  const std::string alex = film.artifact("CHAR_LOCK", "ALEX", "character-lock");
  auto refused = governance::record_override(*film.project, accept(seq, ben));
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("stopped the loop for ALEX"));
  auto accepted = governance::record_override(*film.project, accept(seq, alex));
  REQUIRE(accepted.ok());
  CHECK(film.overrides().accepted("character-lock/ALEX") == alex);
}

TEST_CASE("An override inside a run already begun joins that run", "[override]") {
  OverrideFilm film;
  const int64_t seq = film.stop(gate_stop("set-lock", "set-lock/HARBOUR", {{"entity_id", "HARBOUR"}}));
  auto run = film.ledger().begin_run("run", json::object());
  REQUIRE(run.ok());
  auto recorded = governance::record_override(*film.project, allow(seq, "1"));
  REQUIRE(recorded.ok());
  CHECK(film.ledger().run_id() == *run);  // still open: the caller ends it
  const std::vector<ledger::Event> events = film.events();
  CHECK(events.back().kind == "stop.override");
  CHECK(events.back().run_id == *run);
  REQUIRE(film.ledger().end_run("DONE", json::object()).ok());
}

TEST_CASE("Stop ids parse only as STOP-<n>", "[override]") {
  CHECK(governance::parse_stop_id("STOP-42").value() == 42);
  CHECK(governance::parse_stop_id("STOP-1").value() == 1);
  for (const char* bad : {"", "STOP-", "STOP-0", "STOP-x", "stop-42", "42", "STOP-42 ", "STOP--1"}) {
    INFO(bad);
    CHECK_FALSE(governance::parse_stop_id(bad).ok());
  }
  CHECK(governance::parse_usd("300").value() == 300'000'000);
  CHECK(governance::parse_usd("0.000001").value() == 1);
  CHECK(governance::parse_usd("312.50").value() == 312'500'000);
  CHECK(governance::parse_usd("100000000").value() == 100'000'000'000'000);
  for (const char* bad : {"", "0", "0.0", ".5", "+5", "5,00", "1e3", " 5", "100000000.000001"}) {
    INFO(bad);
    CHECK_FALSE(governance::parse_usd(bad).ok());
  }
}

TEST_CASE("A frozen shot's accepted render is one of its graded attempts, best by verdict then latest", "[override]") {
  OverrideFilm film;
  // Four graded proxy attempts of S01_SH02: FAIL, FIX, FAIL, and a render never graded.
  std::vector<ledger::EventDraft> drafts;
  const std::vector<std::string> verdicts = {"FAIL", "FIX", "FAIL", ""};
  for (int attempt = 1; attempt <= 4; ++attempt) {
    char path[64];
    std::snprintf(path, sizeof path, "media/S01_SH02_proxy_a%02d.mp4", attempt);
    drafts.push_back({.kind = "media.recorded",
                      .body = {{"shot_id", "S01_SH02"}, {"scene_id", "S01"}, {"resolution", "proxy"},
                               {"attempt", attempt}, {"path", path}}});
    if (!verdicts[attempt - 1].empty()) {
      drafts.push_back({.kind = "step.finished",
                        .body = {{"step", "qc-grader/S01_SH02/proxy@" + std::to_string(attempt)},
                                 {"loop", "qc-grader/S01_SH02/proxy"},
                                 {"skill", "qc-grader"},
                                 {"verdict", verdicts[attempt - 1]},
                                 {"shot_attempt", {{"shot_id", "S01_SH02"}, {"resolution", "proxy"}, {"attempt", attempt}}}}});
    }
  }
  film.append(std::move(drafts));
  const json scope = {{"scene_id", "S01"}, {"shot_id", "S01_SH02"}};
  const int64_t first = film.stop(gate_stop("qc-grader", "qc-grader/S01_SH02/proxy", scope, "frozen"));

  auto ungraded = governance::record_override(*film.project, accept(first, "S01_SH02_proxy_a04.mp4"));
  REQUIRE_FALSE(ungraded.ok());
  CHECK_THAT(ungraded.error().message, Catch::Contains("not a graded render of S01_SH02 (proxy); give one of "
                                                       "S01_SH02_proxy_a01.mp4, S01_SH02_proxy_a02.mp4, "
                                                       "S01_SH02_proxy_a03.mp4, or best"));
  auto best = governance::record_override(*film.project, accept(first, "best"));
  REQUIRE(best.ok());
  CHECK(best->record.value == "media/S01_SH02_proxy_a02.mp4");  // the FIX beats the later FAIL
  CHECK(film.overrides().accepted("qc-grader/S01_SH02/proxy") == "media/S01_SH02_proxy_a02.mp4");

  const int64_t second = film.stop(gate_stop("qc-grader", "qc-grader/S01_SH02/proxy", scope, "frozen"));
  auto named = governance::record_override(*film.project, accept(second, "media/S01_SH02_proxy_a03.mp4"));
  REQUIRE(named.ok());
  CHECK(film.overrides().accepted("qc-grader/S01_SH02/proxy") == "media/S01_SH02_proxy_a03.mp4");
}

TEST_CASE("An integrity stop takes no decision and is open until a run records it resolved", "[override]") {
  OverrideFilm film;
  json body = gate_stop("avps", "integrity", json::object(), "integrity");
  const int64_t seq = film.stop(body);
  auto open = governance::open_hard_stops(film.events());
  REQUIRE(open.size() == 1);
  CHECK(open[0].kind == governance::StopKind::integrity);
  auto refused = governance::record_override(*film.project, allow(seq, "1"));
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("is an integrity stop"));
  // A resolution of another stop changes nothing; its own lifts it.
  film.append({{.kind = "stop.resolved", .body = {{"stop_seq", seq + 100}, {"reason", "x"}}}});
  CHECK(governance::open_hard_stops(film.events()).size() == 1);
  film.append({{.kind = "stop.resolved", .body = {{"stop_seq", seq}, {"reason", "the files match again"}}}});
  CHECK(governance::open_hard_stops(film.events()).empty());
}
