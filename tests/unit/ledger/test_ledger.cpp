#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/ledger/ledger.hpp"
#include "support/crash.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
namespace fs = std::filesystem;

namespace {

struct LedgerFixture {
  testing::TempDir dir;
  testing::FixedClock clock;
  LedgerFixture() { fs::create_directories(dir.path() / ".avps"); }

  std::unique_ptr<ledger::Ledger> create() {
    auto created = ledger::Ledger::create(dir.path(), clock);
    REQUIRE(created.ok());
    return std::move(created).value();
  }
  std::unique_ptr<ledger::Ledger> open(ledger::OpenMode mode) {
    auto opened = ledger::Ledger::open(dir.path(), mode, clock);
    INFO((opened.ok() ? std::string() : opened.error().message));
    REQUIRE(opened.ok());
    return std::move(opened).value();
  }
};

ledger::EventDraft row_event(const std::string& skill) {
  ledger::LogRow row;
  row.skill_name = skill;
  row.outcome = "DONE";
  row.notes = "note, with \"quotes\"";
  return ledger::EventDraft{.kind = "step", .body = {{"skill", skill}}, .row = row};
}

// Runs SQL straight against the database file, as a person with the sqlite3 shell would.
int sql(const fs::path& db_path, const std::string& statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

const char* k_drop_triggers =
    "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; "
    "DROP TRIGGER artifacts_no_update; DROP TRIGGER artifacts_no_delete;";

// The same triggers put back as the ledger's schema makes them.
const char* k_restore_triggers =
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;"
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;"
    "CREATE TRIGGER artifacts_no_update BEFORE UPDATE ON artifacts BEGIN SELECT RAISE(ABORT, 'avps ledger is "
    "append-only'); END;"
    "CREATE TRIGGER artifacts_no_delete BEFORE DELETE ON artifacts BEGIN SELECT RAISE(ABORT, 'avps ledger is "
    "append-only'); END;";

bool has_rule(const std::vector<core::Violation>& violations, const std::string& rule, const std::string& text = "") {
  for (const core::Violation& v : violations) {
    if (v.rule == rule && (v.subject + " " + v.message).find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("a fresh ledger with events verifies clean and chains each hash to the previous", "[ledger]") {
  LedgerFixture f;
  auto ledger = f.create();
  REQUIRE(ledger->begin_run("test", {}).value() == "RUN_0001");
  REQUIRE(ledger->append(row_event("story-architect")).ok());
  REQUIRE(ledger->append(row_event("script-breakdown")).ok());
  REQUIRE(ledger->end_run("DONE", {}).ok());

  auto events = ledger->events().value();
  REQUIRE(events.size() == 4);
  CHECK(events[0].prev_hash == ledger::k_genesis_hash);
  for (size_t i = 1; i < events.size(); ++i) {
    CHECK(events[i].prev_hash == events[i - 1].hash);
  }
  CHECK(ledger->head().seq == 4);
  CHECK(ledger->verify().empty());
  // The CSV face holds the two rows, each ending in its event's hash.
  std::string csv = core::read_file(ledger::run_log_path(f.dir.path())).value();
  CHECK(csv == ledger::render_run_log(events));
  CHECK(csv.find(events[1].hash) != std::string::npos);
}

TEST_CASE("UPDATE and DELETE on ledger tables are refused by the triggers", "[ledger]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
  }
  fs::path db = ledger::ledger_path(f.dir.path());
  CHECK(sql(db, "UPDATE events SET kind = 'x'") == SQLITE_CONSTRAINT);
  CHECK(sql(db, "DELETE FROM events") == SQLITE_CONSTRAINT);
  CHECK(sql(db, "UPDATE meta SET value = 'x'") == SQLITE_OK);  // no rows: nothing to refuse
  CHECK(f.open(ledger::OpenMode::read_only)->verify().empty());
}

TEST_CASE("an edited event is caught by its hash, even with the triggers dropped", "[ledger][tamper]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(row_event("story-architect")).ok());
    REQUIRE(ledger->append(row_event("qc-grader")).ok());
  }
  fs::path db = ledger::ledger_path(f.dir.path());
  REQUIRE(sql(db, k_drop_triggers) == SQLITE_OK);
  REQUIRE(sql(db, "UPDATE events SET body = replace(body, 'qc-grader', 'qc-grader ') WHERE seq = 3") == SQLITE_OK);
  auto violations = f.open(ledger::OpenMode::read_only)->verify();
  CHECK(has_rule(violations, "ledger.append_only", "events_no_update"));
  CHECK(has_rule(violations, "ledger.hash", "ledger event 3"));
  // A writer refuses to build on a tampered record.
  CHECK_FALSE(ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_write, f.clock).ok());
}

TEST_CASE("a body rewritten in another form, or into what is not JSON, is caught as an edit of its event", "[ledger][tamper]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(row_event("story-architect")).ok());
    REQUIRE(ledger->append(row_event("qc-grader")).ok());
    REQUIRE(ledger->verify().empty());  // the stored bytes of every event hash to its recorded hash
  }
  fs::path db = ledger::ledger_path(f.dir.path());
  REQUIRE(sql(db, k_drop_triggers) == SQLITE_OK);
  // The same JSON value, spelled with a space: the event's bytes are no longer those hashed.
  REQUIRE(sql(db, "UPDATE events SET body = replace(body, '\"skill\":', '\"skill\": ') WHERE seq = 2") == SQLITE_OK);
  REQUIRE(sql(db, "UPDATE events SET body = '{not json' WHERE seq = 3") == SQLITE_OK);
  auto violations = f.open(ledger::OpenMode::read_only)->verify();
  CHECK(has_rule(violations, "ledger.hash", "ledger event 2"));
  CHECK(has_rule(violations, "ledger.hash", "ledger event 3"));
  CHECK_FALSE(has_rule(violations, "ledger.hash", "ledger event 1 "));
  CHECK_FALSE(has_rule(violations, "ledger.readable"));
}

TEST_CASE("removing the last event is caught by the HEAD mirror", "[ledger][tamper]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(row_event("story-architect")).ok());
  }
  fs::path db = ledger::ledger_path(f.dir.path());
  REQUIRE(sql(db, k_drop_triggers) == SQLITE_OK);
  REQUIRE(sql(db, "DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)") == SQLITE_OK);
  auto violations = f.open(ledger::OpenMode::read_only)->verify();
  CHECK(has_rule(violations, "ledger.head", "the tail of the ledger was removed"));
  CHECK(has_rule(violations, "run_log.face"));
  auto writer = ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_write, f.clock);
  REQUIRE_FALSE(writer.ok());
  CHECK(writer.error().code == ErrorCode::corruption);
}

TEST_CASE("a torn last line of the CSV face is completed from the ledger on the next open", "[ledger][crash]") {
  LedgerFixture f;
  { f.create(); }
  bool crashed = testing::run_until_crash("append.torn", [&] {
    auto ledger = ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_write, f.clock);
    if (ledger.ok() && (*ledger)->begin_run("test", {}).ok()) {
      std::ignore = (*ledger)->append(row_event("story-architect"));
    }
  });
  REQUIRE(crashed);
  std::string torn = core::read_file(ledger::run_log_path(f.dir.path())).value();
  REQUIRE(torn.back() != '\n');  // half a line
  CHECK(has_rule(f.open(ledger::OpenMode::read_only)->verify(), "run_log.face"));

  auto writer = f.open(ledger::OpenMode::read_write);
  CHECK(writer->verify().empty());
  std::string repaired = core::read_file(ledger::run_log_path(f.dir.path())).value();
  CHECK(repaired == ledger::render_run_log(writer->events().value()));
}

TEST_CASE("a crash between the SQLite commit and the HEAD write is completed, not lost", "[ledger][crash]") {
  LedgerFixture f;
  { f.create(); }
  bool crashed = testing::run_until_crash("ledger.after_commit", [&] {
    auto ledger = ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_write, f.clock);
    if (ledger.ok()) {
      std::ignore = (*ledger)->begin_run("test", {});
    }
  });
  REQUIRE(crashed);
  CHECK(has_rule(f.open(ledger::OpenMode::read_only)->verify(), "ledger.head", "lags"));
  auto writer = f.open(ledger::OpenMode::read_write);
  CHECK(writer->head().seq == 1);
  CHECK(writer->verify().empty());
}

TEST_CASE("a CSV face edited by hand is reported, never silently rewritten", "[ledger][tamper]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(row_event("story-architect")).ok());
  }
  fs::path csv = ledger::run_log_path(f.dir.path());
  std::string text = core::read_file(csv).value();
  text.replace(text.find("story-architect"), 5, "STORY");
  REQUIRE(core::write_file_atomic(csv, text, core::Overwrite::yes, core::Durability::cached).ok());
  CHECK(has_rule(f.open(ledger::OpenMode::read_only)->verify(), "run_log.face", "line 2"));
  CHECK_FALSE(ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_write, f.clock).ok());
  CHECK(core::read_file(csv).value() == text);
}

TEST_CASE("a writer's open reads only the CSV face's last line, and an edit before it is left for verify to report",
          "[ledger][tamper]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(row_event("story-architect")).ok());
    REQUIRE(ledger->append(row_event("scene-planner")).ok());
  }
  fs::path csv = ledger::run_log_path(f.dir.path());
  std::string text = core::read_file(csv).value();
  text.replace(text.find("story-architect"), 5, "STORY");
  REQUIRE(core::write_file_atomic(csv, text, core::Overwrite::yes, core::Durability::cached).ok());
  // HEAD is current and the face ends with the last row: the open does not read the rest, so it
  // neither refuses nor rewrites; the edit stays for verify (the gate, and every run's integrity
  // check before it reads anything) to report.
  auto writer = f.open(ledger::OpenMode::read_write);
  CHECK(core::read_file(csv).value() == text);
  CHECK(has_rule(writer->verify(), "run_log.face", "line 2"));
  writer.reset();
  // A face behind the ledger (its last row missing, as a crash between HEAD and the rows leaves
  // it) is compared whole before it is completed: the edit is refused, not overwritten.
  const std::string behind = text.substr(0, text.rfind('\n', text.size() - 2) + 1);
  REQUIRE(core::write_file_atomic(csv, behind, core::Overwrite::yes, core::Durability::cached).ok());
  CHECK_FALSE(ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_write, f.clock).ok());
  CHECK(core::read_file(csv).value() == behind);
}

TEST_CASE("only one writer may hold a project, and a second gets the holder's pid", "[ledger]") {
  LedgerFixture f;
  auto first = f.create();
  auto second = ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_write, f.clock);
  REQUIRE_FALSE(second.ok());
  CHECK_THAT(second.error().message, Catch::Contains(std::to_string(::getpid())));
  // Readers are never blocked.
  CHECK(ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_only, f.clock).ok());
}

TEST_CASE("a ledger from a newer avps is refused with a clear message", "[ledger]") {
  LedgerFixture f;
  { f.create(); }
  REQUIRE(sql(ledger::ledger_path(f.dir.path()), "PRAGMA user_version = 99") == SQLITE_OK);
  auto opened = ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_only, f.clock);
  REQUIRE_FALSE(opened.ok());
  CHECK_THAT(opened.error().message, Catch::Contains("newer than this avps"));
}

TEST_CASE("run ids count up across runs", "[ledger]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("a", {}).value() == "RUN_0001");
  }
  auto ledger = f.open(ledger::OpenMode::read_write);
  CHECK(ledger->begin_run("b", {}).value() == "RUN_0002");
}

TEST_CASE("a ledger of schema 1 is migrated to the current schema by the next writer", "[ledger]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
  }
  // Turn it back into a schema-1 ledger: no budget tables, no objects.
  REQUIRE(sql(ledger::ledger_path(f.dir.path()),
              "DROP INDEX events_by_kind; "
              "DROP TRIGGER objects_no_update; DROP TRIGGER objects_no_delete; DROP TABLE objects; "
              "DROP TRIGGER reservations_no_update; DROP TRIGGER reservations_no_delete; "
              "DROP TRIGGER reservation_ends_no_update; DROP TRIGGER reservation_ends_no_delete; "
              "DROP TABLE reservation_ends; DROP TABLE reservations; PRAGMA user_version = 1;") == SQLITE_OK);
  auto reader = ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_only, f.clock);
  REQUIRE_FALSE(reader.ok());
  CHECK_THAT(reader.error().message, Catch::Contains("older schema"));
  auto writer = f.open(ledger::OpenMode::read_write);
  CHECK(writer->verify().empty());
  CHECK(writer->spend("", "").value().total() == 0);
}

TEST_CASE("copy_prefix cuts a copy of the ledger after an event: same chain, budget and artifacts, then writable",
          "[ledger][replay]") {
  LedgerFixture f;
  int64_t cut = 0;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->reserve({"call-1", "S01", "", 500, "first"}, ledger::Caps{10000, std::nullopt, std::nullopt}, {.kind = "budget.reserved"}).ok());
    REQUIRE(ledger->append(row_event("first")).ok());
    cut = ledger->head().seq;
    REQUIRE(ledger->reserve({"call-2", "S02", "", 700, "second"}, ledger::Caps{10000, std::nullopt, std::nullopt}, {.kind = "budget.reserved"}).ok());
    REQUIRE(ledger->append({.kind = "budget.settled",
                            .reservation_end = ledger::ReservationEnd{"call-1", 300, 200, std::nullopt, "settled"}})
                .ok());
    REQUIRE(ledger->append(row_event("second")).ok());
  }
  auto source = f.open(ledger::OpenMode::read_only);
  const std::vector<ledger::Event> all = source->events().value();

  testing::TempDir copy_dir;
  fs::create_directories(copy_dir.path() / ".avps");
  REQUIRE(source->copy_prefix(copy_dir.path(), cut).ok());
  testing::FixedClock clock;
  auto copy = ledger::Ledger::open(copy_dir.path(), ledger::OpenMode::read_write, clock);
  REQUIRE(copy.ok());
  CHECK((*copy)->verify().empty());
  const std::vector<ledger::Event> kept = (*copy)->events().value();
  REQUIRE(kept.size() == static_cast<size_t>(cut));
  for (size_t i = 0; i < kept.size(); ++i) {
    CHECK(kept[i].hash == all[i].hash);
  }
  CHECK((*copy)->head().hash == all[static_cast<size_t>(cut) - 1].hash);
  // The budget as it stood: call-1 reserved and not yet settled; call-2 never reserved.
  CHECK((*copy)->spend("", "").value().outstanding_micro_usd == 500);
  CHECK((*copy)->spend("", "").value().committed_micro_usd == 0);
  CHECK((*copy)->open_reservations().value().size() == 1);
  // The copy goes on as a ledger of its own, still append-only.
  REQUIRE((*copy)->begin_run("replay", {}).ok());
  CHECK((*copy)->verify().empty());
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(ledger::ledger_path(copy_dir.path()).c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "DELETE FROM events WHERE seq = 1", nullptr, nullptr, nullptr) != SQLITE_OK);
  sqlite3_close(db);
  // The source is untouched.
  CHECK(source->events().value().size() == all.size());
  CHECK(source->verify().empty());
  CHECK_FALSE(source->copy_prefix(copy_dir.path(), cut).ok());  // never over an existing ledger
}

TEST_CASE("a reader sees one snapshot while a writer commits, and mirrors that lag it are transient",
          "[ledger][snapshot]") {
  LedgerFixture f;
  auto writer = f.create();
  REQUIRE(writer->begin_run("test", {}).ok());
  REQUIRE(writer->append(row_event("first")).ok());
  REQUIRE(writer->flush().ok());  // the mirrors follow the ledger in groups: here, up to "first"

  auto reader = f.open(ledger::OpenMode::read_only);
  const int64_t seen = reader->head().seq;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(writer->append(row_event("later")).ok());
  }
  // Every query of the reader agrees with what it saw first; its mirrors were read before.
  CHECK(reader->events().value().size() == static_cast<size_t>(seen));
  CHECK(reader->head().seq == seen);
  CHECK(reader->verify().empty());
  CHECK(writer->verify().empty());

  // A reader that opens after a commit whose mirrors are not yet written (HEAD one behind, the CSV
  // face one row short): the gap is reported, as transient.
  const ledger::Head head = writer->head();
  const std::vector<ledger::Event> all = writer->events().value();
  const ledger::Event& previous = all[all.size() - 2];
  REQUIRE(core::write_file_atomic(ledger::head_path(f.dir.path()),
                                  "avps-head 1\n" + std::to_string(previous.seq) + " " + previous.hash + "\n",
                                  core::Overwrite::yes, core::Durability::cached)
              .ok());
  std::vector<ledger::Event> short_of_one(all.begin(), all.end() - 1);
  REQUIRE(core::write_file_atomic(ledger::run_log_path(f.dir.path()), ledger::render_run_log(short_of_one),
                                  core::Overwrite::yes, core::Durability::cached)
              .ok());
  auto late = f.open(ledger::OpenMode::read_only);
  const std::vector<core::Violation> found = late->verify();
  REQUIRE(found.size() == 2);
  for (const core::Violation& v : found) {
    INFO(v.rule << ": " << v.message);
    CHECK(v.transient);
  }
  CHECK(late->head().seq == head.seq);
  // A face that differs other than by missing rows is not transient.
  REQUIRE(core::write_file_atomic(ledger::run_log_path(f.dir.path()), ledger::render_run_log(all) + "x,y\n",
                                  core::Overwrite::yes, core::Durability::cached)
              .ok());
  auto edited = f.open(ledger::OpenMode::read_only);
  bool face_reported = false;
  for (const core::Violation& v : edited->verify()) {
    if (v.rule == "run_log.face") {
      face_reported = true;
      CHECK_FALSE(v.transient);
    }
  }
  CHECK(face_reported);
}

TEST_CASE("another reader is given only when it reads what its reader reads", "[ledger][snapshot]") {
  LedgerFixture f;
  auto writer = f.create();
  REQUIRE(writer->begin_run("test", {}).ok());
  REQUIRE(writer->append(row_event("first")).ok());
  const std::string sha = writer->put_object("object bytes").value();
  REQUIRE(writer->flush().ok());

  // A writer's state moves on: its threads share it.
  CHECK(writer->another_reader().value() == nullptr);

  auto reader = f.open(ledger::OpenMode::read_only);
  auto other = reader->another_reader().value();
  REQUIRE(other != nullptr);
  CHECK(other->head().seq == reader->head().seq);
  CHECK(other->head().hash == reader->head().hash);
  CHECK(other->events().value().size() == reader->events().value().size());
  CHECK(other->object(sha).value() == std::optional<std::string>("object bytes"));
  // It is a snapshot of its own, taken when it was given: a commit after it does not show in it.
  REQUIRE(writer->append(row_event("later")).ok());
  CHECK(other->head().seq == reader->head().seq);
  CHECK(other->events().value().size() == reader->events().value().size());

  // Once the ledger has moved on since the reader's snapshot, none is given: a new connection
  // would read events the reader does not.
  CHECK(reader->another_reader().value() == nullptr);
  CHECK(f.open(ledger::OpenMode::read_only)->another_reader().value() != nullptr);
}

TEST_CASE("an empty or foreign file in the ledger's place is reported and never rewritten", "[ledger][tamper]") {
  LedgerFixture f;
  f.create().reset();
  const fs::path path = ledger::ledger_path(f.dir.path());
  for (const bool empty : {true, false}) {
    fs::remove(path);
    if (empty) {
      REQUIRE(core::write_file_atomic(path, "", core::Overwrite::yes, core::Durability::cached).ok());
    } else {
      sqlite3* db = nullptr;
      REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
      REQUIRE(sqlite3_exec(db, "CREATE TABLE notes(x); INSERT INTO notes VALUES ('mine');", nullptr, nullptr, nullptr) ==
              SQLITE_OK);
      sqlite3_close(db);
    }
    const std::string before = core::read_file(path).value();
    for (const ledger::OpenMode mode : {ledger::OpenMode::read_only, ledger::OpenMode::read_write}) {
      auto opened = ledger::Ledger::open(f.dir.path(), mode, f.clock);
      REQUIRE_FALSE(opened.ok());
      CHECK(opened.error().code == ErrorCode::corruption);
      CHECK_THAT(opened.error().message, Catch::Contains(empty ? "is empty (0 bytes)" : "is not an avps ledger"));
      CHECK_THAT(opened.error().message, Catch::Contains("nothing was changed"));
    }
    CHECK(core::read_file(path).value() == before);
    CHECK_FALSE(fs::exists(path.string() + "-wal"));
  }
}

TEST_CASE("events read page by page, or of some kinds, are the events read at once", "[ledger]") {
  LedgerFixture f;
  auto ledger = f.create();
  REQUIRE(ledger->begin_run("test", {}).ok());
  for (int i = 0; i < 25; ++i) {
    REQUIRE(ledger->append(row_event(i % 3 == 0 ? "noisy" : "story-architect")).ok());
    REQUIRE(ledger->append(ledger::EventDraft{.kind = "artifact.intent", .body = {{"n", i}}}).ok());
  }
  REQUIRE(ledger->end_run("DONE", {}).ok());
  const std::vector<ledger::Event> all = ledger->events().value();
  REQUIRE(all.size() == 52);

  std::vector<ledger::Event> paged;
  ledger::Ledger::EventQuery query;
  query.limit = 7;
  query.bodiless = {"artifact.intent"};
  for (;;) {
    std::vector<ledger::Event> page = ledger->events(query).value();
    REQUIRE(page.size() <= 7);
    paged.insert(paged.end(), page.begin(), page.end());
    if (page.size() < 7) {
      break;
    }
    query.after_seq = page.back().seq;
  }
  REQUIRE(paged.size() == all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    CHECK(paged[i].seq == all[i].seq);
    CHECK(paged[i].hash == all[i].hash);
    CHECK(paged[i].kind == all[i].kind);
    // The kinds asked bodiless come with an empty body; every other body is whole.
    CHECK(paged[i].body == (all[i].kind == "artifact.intent" ? nlohmann::json::object() : all[i].body));
  }
  // Only some kinds: those events, whole, in order.
  ledger::Ledger::EventQuery intents;
  intents.kinds = {"artifact.intent", "run.finished"};
  std::vector<ledger::Event> some = ledger->events(intents).value();
  REQUIRE(some.size() == 26);
  CHECK(some.front().body == nlohmann::json{{"n", 0}});
  CHECK(some[24].body == nlohmann::json{{"n", 24}});
  CHECK(some.back().kind == "run.finished");
}

TEST_CASE("events read with some members come with only those members of each body", "[ledger]") {
  LedgerFixture f;
  auto ledger = f.create();
  REQUIRE(ledger->begin_run("test", {}).ok());
  const nlohmann::json full = {{"name", "SCENES_v001.json"},
                               {"row", {{"skill", "story-architect"}, {"n", 2}}},
                               {"text", "a \"quoted\" line"},
                               {"gone", nullptr},
                               {"other", {1, 2, 3}}};
  REQUIRE(ledger->append(ledger::EventDraft{.kind = "artifact.recorded", .body = full}).ok());
  REQUIRE(ledger->append(ledger::EventDraft{.kind = "artifact.recorded", .body = {{"other", 1}}}).ok());
  ledger::Ledger::EventQuery query;
  query.kinds = {"artifact.recorded"};
  query.members = {"name", "row", "text", "gone", "missing"};
  const std::vector<ledger::Event> some = ledger->events(query).value();
  REQUIRE(some.size() == 2);
  // Each member as the whole body has it (objects and escaped strings too); null or absent ones
  // are left out, and so is every member not asked for.
  CHECK(some[0].body == nlohmann::json{{"name", full["name"]}, {"row", full["row"]}, {"text", full["text"]}});
  CHECK(some[1].body == nlohmann::json::object());
  // The hash chain is the events' own, not the cut bodies'.
  const std::vector<ledger::Event> all = ledger->events().value();
  CHECK(some[0].hash == all[1].hash);
  // One member alone (SQLite's json_extract answers one path with the bare value).
  query.members = {"row"};
  CHECK(ledger->events(query).value()[0].body == nlohmann::json{{"row", full["row"]}});
  // No body at all (`avps gate --expect-head` looks for a hash): every event empty, chain intact.
  ledger::Ledger::EventQuery bare;
  bare.bodies = false;
  const std::vector<ledger::Event> none = ledger->events(bare).value();
  REQUIRE(none.size() == all.size());
  for (size_t i = 0; i < none.size(); ++i) {
    CHECK(none[i].body == nlohmann::json::object());
    CHECK(none[i].hash == all[i].hash);
    CHECK(none[i].kind == all[i].kind);
  }
}

TEST_CASE("a lookup the ledger keeps prepared answers each use afresh, after hits and misses", "[ledger]") {
  LedgerFixture f;
  auto ledger = f.create();
  // Each lookup reuses the statement prepared by the first: the answers must not leak from one
  // use into the next (bindings reset), also after a miss and across many uses.
  REQUIRE(ledger->begin_run("test", {}).ok());
  for (int i = 1; i <= 3; ++i) {
    ledger::ArtifactRecord record{.name = "SCENES_v00" + std::to_string(i) + ".json", .kind = "SCENES",
                                  .target = "", .version = i, .path = "narrative/SCENES_v00" + std::to_string(i) + ".json",
                                  .face_sha256 = std::string(64, 'a'), .json_sha256 = std::string(64, 'b'),
                                  .author = "avps", .producer = "story-architect"};
    Result<ledger::Event> appended = ledger->append(ledger::EventDraft{.kind = "artifact.recorded", .artifact = record});
    INFO((appended.ok() ? std::string() : appended.error().message));
    REQUIRE(appended.ok());
  }
  for (int round = 0; round < 50; ++round) {
    CHECK(ledger->latest_artifact("SCENES", "").value()->version == 3);
    CHECK_FALSE(ledger->latest_artifact("SHOTLIST", "S01").value().has_value());
    CHECK(ledger->find_artifact("SCENES_v002.json").value()->version == 2);
  }
  CHECK(ledger->verify().empty());
}

TEST_CASE("deferred commits share one sync of the log, and the mirrors follow only durable events", "[ledger][sync]") {
  LedgerFixture f;
  { f.create(); }
  // Counting from the open: the connection goes through the counting VFS shim.
  core::set_fault_point("count");
  struct Reset {
    ~Reset() { core::set_fault_point(""); }
  } reset;
  auto ledger = f.open(ledger::OpenMode::read_write);
  REQUIRE(ledger->begin_run("test", {}).ok());
  REQUIRE(ledger->flush().ok());
  const ledger::Head flushed = ledger->head();
  core::set_fault_point("count");  // from here

  // 270 deferred commits (past k_mirror_lag_events): no sync at all, and HEAD on disk stays where
  // it was. (Few enough that SQLite's own checkpoint of its log, at 1,000 pages, does not come:
  // each commit writes about three pages, the event and its two index entries.)
  static_assert(270 > ledger::k_mirror_lag_events);
  for (int i = 0; i < 270; ++i) {
    REQUIRE(ledger->append(ledger::EventDraft{.kind = "step", .body = {{"i", i}}}, ledger::Sync::deferred).ok());
  }
  CHECK(core::fault_counts().fsync == 0);
  CHECK(core::read_file(ledger::head_path(f.dir.path())).value() ==
        "avps-head 1\n" + std::to_string(flushed.seq) + " " + flushed.hash + "\n");
  // A reader sees them all (committed), and reports the mirror's lag as transient, not damage.
  {
    auto reader = f.open(ledger::OpenMode::read_only);
    CHECK(reader->head().seq == flushed.seq + 270);
    for (const core::Violation& v : reader->verify()) {
      CHECK(v.transient);
    }
  }

  // One sync makes all 270 durable: one fdatasync of the log; they lag HEAD by more than
  // k_mirror_lag_events, so HEAD is rewritten too (its file, then its folder) — no CSV row to append.
  REQUIRE(ledger->sync().ok());
  CHECK(core::fault_counts().fsync == 3);
  CHECK(core::read_file(ledger::head_path(f.dir.path())).value() ==
        "avps-head 1\n" + std::to_string(ledger->head().seq) + " " + ledger->head().hash + "\n");
  // Nothing pending: a sync is free.
  REQUIRE(ledger->sync().ok());
  CHECK(core::fault_counts().fsync == 3);

  // A synced commit is one sync; its row waits for the group's mirror (or the run's end).
  REQUIRE(ledger->append(row_event("story-architect")).ok());
  const std::string face_before = core::read_file(ledger::run_log_path(f.dir.path())).value();
  REQUIRE(ledger->end_run("DONE", {}).ok());
  CHECK(core::read_file(ledger::run_log_path(f.dir.path())).value().size() > face_before.size());
  CHECK(ledger->verify().empty());
}

TEST_CASE("a kill after deferred commits, before their sync, loses none of them", "[ledger][crash][sync]") {
  // The run's start is synced (sync 1); the four deferred commits are 2 to 5; the flush is sync 2
  // and writes the mirrors.
  for (const char* point : {"ledger.after_commit:5", "ledger.before_sync:2", "ledger.after_sync:2", "ledger.after_head"}) {
    DYNAMIC_SECTION(point) {
      LedgerFixture f;
      { f.create(); }
      bool crashed = testing::run_until_crash(point, [&] {
        auto ledger = ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_write, f.clock);
        if (ledger.ok() && (*ledger)->begin_run("test", {}).ok()) {
          for (int i = 0; i < 4; ++i) {
            std::ignore = (*ledger)->append(row_event("step-" + std::to_string(i)), ledger::Sync::deferred);
          }
          std::ignore = (*ledger)->flush();
        }
      });
      REQUIRE(crashed);
      // Whatever was committed is there; the mirrors lag at most, and the next writer completes them.
      auto writer = f.open(ledger::OpenMode::read_write);
      if (std::string(point) == "ledger.after_head") {
        CHECK(writer->head().seq >= 1);  // 5, or 1 when a slow start made the first sync write the mirrors
      } else {
        CHECK(writer->head().seq == 5);
      }
      CHECK(writer->verify().empty());
      CHECK(core::read_file(ledger::run_log_path(f.dir.path())).value() ==
            ledger::render_run_log(writer->events().value()));
    }
  }
}

TEST_CASE("a ledger of schema 2 gains the object table on the next writer, its object files untouched",
          "[ledger][objects]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
  }
  REQUIRE(sql(ledger::ledger_path(f.dir.path()),
              "DROP INDEX events_by_kind; "
              "DROP TRIGGER objects_no_update; DROP TRIGGER objects_no_delete; DROP TABLE objects; "
              "PRAGMA user_version = 2;") == SQLITE_OK);
  auto reader = ledger::Ledger::open(f.dir.path(), ledger::OpenMode::read_only, f.clock);
  REQUIRE_FALSE(reader.ok());
  CHECK_THAT(reader.error().message, Catch::Contains("older schema"));
  auto writer = f.open(ledger::OpenMode::read_write);
  CHECK(writer->verify().empty());
  const std::string sha = writer->put_object("bytes").value();
  CHECK(writer->object(sha).value() == std::optional<std::string>("bytes"));
}

TEST_CASE("a ledger of schema 3 is read as it is, and the next writer indexes its events by kind",
          "[ledger]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(row_event("story-architect")).ok());
    REQUIRE(ledger->end_run("DONE", {}).ok());
  }
  const fs::path db_path = ledger::ledger_path(f.dir.path());
  auto has_index = [&] {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'events_by_kind'", -1,
                               &stmt, nullptr) == SQLITE_OK);
    const bool found = sqlite3_step(stmt) == SQLITE_ROW;
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return found;
  };
  REQUIRE(has_index());
  REQUIRE(sql(db_path, "DROP INDEX events_by_kind; PRAGMA user_version = 3;") == SQLITE_OK);

  // The index only speeds look-ups by kind: a reader of schema 3 gives the same answers, and
  // changes nothing.
  {
    auto reader = f.open(ledger::OpenMode::read_only);
    CHECK(reader->verify().empty());
    ledger::Ledger::EventQuery runs;
    runs.kinds = {"run.started"};
    CHECK(reader->events(runs).value().size() == 1);
  }
  CHECK_FALSE(has_index());

  auto writer = f.open(ledger::OpenMode::read_write);
  CHECK(has_index());
  CHECK(writer->verify().empty());
  REQUIRE(writer->begin_run("test", {}).ok());
  CHECK(writer->run_id() == "RUN_0002");  // the runs so far, counted by kind
  ledger::Ledger::EventQuery runs;
  runs.kinds = {"run.started"};
  CHECK(writer->events(runs).value().size() == 2);
}

TEST_CASE("objects are durable with the next sync of the log, cost no sync of their own, and survive a kill",
          "[ledger][objects][sync]") {
  LedgerFixture f;
  { f.create(); }
  core::set_fault_point("count");
  struct Reset {
    ~Reset() { core::set_fault_point(""); }
  } reset;
  auto ledger = f.open(ledger::OpenMode::read_write);
  REQUIRE(ledger->begin_run("test", {}).ok());
  REQUIRE(ledger->flush().ok());
  core::set_fault_point("count");
  // Three objects and the event naming them: no sync until the event's, which is one for all.
  std::vector<std::string> shas;
  for (const char* bytes : {"request", "answer", "canonical json"}) {
    shas.push_back(ledger->put_object(bytes).value());
  }
  CHECK(core::fault_counts().fsync == 0);
  REQUIRE(ledger->append({.kind = "step", .body = {{"objects", shas}}}).ok());
  CHECK(core::fault_counts().fsync == 1);
  CHECK(ledger->object(shas[1]).value() == std::optional<std::string>("answer"));
  CHECK(ledger->object(core::sha256_hex("never stored")).value() == std::nullopt);

  // A kill right after an object is stored keeps it (it is committed), and names nothing.
  LedgerFixture g;
  { g.create(); }
  REQUIRE(testing::run_until_crash("ledger.after_object", [&] {
    auto killed = ledger::Ledger::open(g.dir.path(), ledger::OpenMode::read_write, g.clock);
    if (killed.ok()) {
      std::ignore = (*killed)->put_object("kept");
    }
  }));
  auto reopened = g.open(ledger::OpenMode::read_write);
  CHECK(reopened->object(core::sha256_hex("kept")).value() == std::optional<std::string>("kept"));
  CHECK(reopened->verify().empty());
}

TEST_CASE("copy_prefix keeps the objects stored before the cut and none after", "[ledger][objects][replay]") {
  LedgerFixture f;
  int64_t cut = 0;
  std::string before;
  std::string after;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    before = ledger->put_object("named by the first event").value();
    REQUIRE(ledger->append({.kind = "step", .body = {{"object", before}}}).ok());
    cut = ledger->head().seq;
    after = ledger->put_object("named after the cut").value();
    REQUIRE(ledger->append({.kind = "step", .body = {{"object", after}}}).ok());
  }
  auto source = f.open(ledger::OpenMode::read_only);
  testing::TempDir copy_dir;
  fs::create_directories(copy_dir.path() / ".avps");
  REQUIRE(source->copy_prefix(copy_dir.path(), cut).ok());
  auto copy = ledger::Ledger::open(copy_dir.path(), ledger::OpenMode::read_only, f.clock).value();
  CHECK(copy->object(before).value() == std::optional<std::string>("named by the first event"));
  CHECK(copy->object(after).value() == std::nullopt);
  CHECK(copy->verify().empty());
}

TEST_CASE("a scene's and a shot's spend kept by the writer stay the sums a reader makes, caps included",
          "[ledger][budget]") {
  LedgerFixture f;
  auto ledger = f.create();
  REQUIRE(ledger->begin_run("test", {}).ok());
  const ledger::Caps caps{100000, 1000, 600};
  REQUIRE(ledger->reserve({"call-1", "S01", "S01_SH01", 400, "first"}, caps, {.kind = "budget.reserved"}).ok());
  // Read once, so that the writer keeps these totals from here on.
  CHECK(ledger->spend("S01", "").value().outstanding_micro_usd == 400);
  CHECK(ledger->spend("", "S01_SH01").value().outstanding_micro_usd == 400);
  REQUIRE(ledger->reserve({"call-2", "S01", "S01_SH02", 500, "second"}, caps, {.kind = "budget.reserved"}).ok());
  REQUIRE(ledger->reserve({"call-3", "S02", "S02_SH01", 300, "third"}, caps, {.kind = "budget.reserved"}).ok());
  REQUIRE(ledger->append({.kind = "budget.settled",
                          .reservation_end = ledger::ReservationEnd{"call-1", 150, 250, std::nullopt, "settled"}})
              .ok());
  // The scene's kept total moved by the settlement: 150 committed + 500 outstanding, so a
  // reservation of 400 more is over its cap of 1000, and one of 350 fits.
  CHECK_FALSE(ledger->reserve({"call-4", "S01", "S01_SH03", 400, "over"}, caps, {.kind = "budget.reserved"}).ok());
  REQUIRE(ledger->reserve({"call-5", "S01", "S01_SH01", 350, "fits"}, caps, {.kind = "budget.reserved"}).ok());
  // The shot's too: 150 + 350 of its cap of 600.
  CHECK_FALSE(ledger->reserve({"call-6", "S01", "S01_SH01", 101, "over"}, caps, {.kind = "budget.reserved"}).ok());
  auto reader = f.open(ledger::OpenMode::read_only);  // sums every reservation afresh
  for (const auto& [scene, shot] : std::vector<std::pair<std::string, std::string>>{
           {"S01", ""}, {"S02", ""}, {"", "S01_SH01"}, {"", "S01_SH02"}, {"", "S02_SH01"}, {"", ""}}) {
    INFO(scene << " " << shot);
    const ledger::Spend kept = ledger->spend(scene, shot).value();
    const ledger::Spend summed = reader->spend(scene, shot).value();
    CHECK(kept.committed_micro_usd == summed.committed_micro_usd);
    CHECK(kept.outstanding_micro_usd == summed.outstanding_micro_usd);
  }
  CHECK(ledger->spend("S01", "").value().total() == 150 + 500 + 350);
  CHECK(ledger->spend("", "S01_SH01").value().total() == 150 + 350);
  // Grouped in one pass (the gate's budget.cap): every scope some reservation names, each the
  // same sums, from the writer and from a reader.
  for (const ledger::Ledger* l : {ledger.get(), reader.get()}) {
    using Scope = ledger::Ledger::SpendScope;
    const std::map<std::string, ledger::Spend> scenes = l->spend_per(Scope::scene).value();
    const std::map<std::string, ledger::Spend> shots = l->spend_per(Scope::shot).value();
    CHECK(scenes.size() == 2);
    CHECK(shots.size() == 3);
    for (const auto& [scene, shot] : std::vector<std::pair<std::string, std::string>>{
             {"S01", ""}, {"S02", ""}, {"", "S01_SH01"}, {"", "S01_SH02"}, {"", "S02_SH01"}}) {
      INFO(scene << " " << shot);
      const auto& grouped = shot.empty() ? scenes : shots;
      REQUIRE(grouped.count(shot.empty() ? scene : shot));
      const ledger::Spend one = grouped.at(shot.empty() ? scene : shot);
      const ledger::Spend summed = reader->spend(scene, shot).value();
      CHECK(one.committed_micro_usd == summed.committed_micro_usd);
      CHECK(one.outstanding_micro_usd == summed.outstanding_micro_usd);
    }
  }
}

TEST_CASE("the artifact index read after each head, or after an earlier one, holds every artifact once", "[ledger]") {
  LedgerFixture f;
  auto ledger = f.create();
  REQUIRE(ledger->begin_run("test", {}).ok());
  auto record = [&](const std::string& name, int version) {
    ledger::ArtifactRecord a;
    a.name = name;
    a.kind = "SHOTLIST";
    a.target = "S01";
    a.version = version;
    a.path = "production/" + name;
    a.face_sha256 = std::string(64, 'a');
    a.json_sha256 = std::string(64, 'b');
    a.author = "avps";
    a.producer = "test";
    REQUIRE(ledger->append({.kind = "artifact.recorded", .artifact = a}).ok());
  };
  record("SHOTLIST_S01_v001.md", 1);
  const int64_t first = ledger->head().seq;
  CHECK(ledger->artifacts(0).value().size() == 1);
  CHECK(ledger->artifacts(first).value().empty());  // from the last read's rowid on
  REQUIRE(ledger->append(row_event("between")).ok());
  record("SHOTLIST_S01_v002.md", 2);
  record("SHOTLIST_S01_v003.md", 3);
  const std::vector<ledger::ArtifactRecord> since = ledger->artifacts(first).value();
  REQUIRE(since.size() == 2);
  CHECK(since[0].name == "SHOTLIST_S01_v002.md");
  CHECK(since[1].name == "SHOTLIST_S01_v003.md");
  // After a seq other than the last read's head: the whole table is read.
  const std::vector<ledger::ArtifactRecord> all = ledger->artifacts(0).value();
  REQUIRE(all.size() == 3);
  CHECK(all[0].name == "SHOTLIST_S01_v001.md");
  CHECK(ledger->artifacts(since[0].event_seq).value().size() == 1);
  CHECK(ledger->artifacts(ledger->head().seq).value().empty());
}

TEST_CASE("verify hands each event of its pass to a visitor with the members it names, as events() reads them",
          "[ledger]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(ledger::EventDraft{.kind = "artifact.recorded",
                                              .body = {{"name", "SCENES_v001.json"}, {"other", {1, 2}}}})
                .ok());
    REQUIRE(ledger->append(row_event("story-architect")).ok());
  }
  auto reader = f.open(ledger::OpenMode::read_only);
  ledger::Ledger::EventQuery query;
  query.members = {"name", "row"};
  const std::vector<ledger::Event> read = reader->events(query).value();
  std::vector<ledger::Event> visited;
  ledger::Ledger::EventVisitor visitor;
  visitor.members = query.members;
  visitor.each = [&](ledger::Event&& e) -> Result<void> {
    visited.push_back(std::move(e));
    return ok();
  };
  // Given: an intact ledger. Then: the same findings as without a visitor (none), and the visitor
  // got every event, each as events() gives it with those members.
  CHECK(reader->verify(&visitor).empty());
  CHECK_FALSE(visitor.failed);
  REQUIRE(visited.size() == read.size());
  for (size_t i = 0; i < read.size(); ++i) {
    CHECK(visited[i].seq == read[i].seq);
    CHECK(visited[i].hash == read[i].hash);
    CHECK(visited[i].kind == read[i].kind);
    CHECK(visited[i].body == read[i].body);
  }
}

TEST_CASE("a visitor's members of some kinds only come with events of those kinds, and every event is still hashed",
          "[ledger]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(ledger::EventDraft{.kind = "artifact.intent",
                                              .body = {{"name", "SCENES_v001.json"}, {"details", {{"step", "a"}}}}})
                .ok());
    REQUIRE(ledger->append(ledger::EventDraft{.kind = "artifact.recorded",
                                              .body = {{"name", "SCENES_v001.json"}, {"details", {{"step", "b"}}}}})
                .ok());
    REQUIRE(ledger->append(ledger::EventDraft{.kind = "step.finished",
                                              .body = {{"name", "x"}, {"details", {{"step", "c"}}}, {"skill", "s"}}})
                .ok());
  }
  auto visit = [&](ledger::Ledger& reader, ledger::Ledger::EventVisitor& visitor) {
    std::map<std::string, nlohmann::json> bodies;  // by kind
    visitor.each = [&](ledger::Event&& e) -> Result<void> {
      bodies[e.kind] = std::move(e.body);
      return ok();
    };
    const std::vector<core::Violation> found = reader.verify(&visitor);
    CHECK_FALSE(visitor.failed);
    return std::pair{bodies, found};
  };
  auto reader = f.open(ledger::OpenMode::read_only);
  ledger::Ledger::EventVisitor visitor;
  visitor.members = {"name"};
  visitor.kind_members = {"details"};
  visitor.member_kinds = {"artifact.recorded", "step.finished"};
  auto [bodies, found] = visit(*reader, visitor);
  CHECK(found.empty());
  CHECK(bodies["artifact.intent"] == nlohmann::json{{"name", "SCENES_v001.json"}});
  CHECK(bodies["artifact.recorded"] == nlohmann::json{{"name", "SCENES_v001.json"}, {"details", {{"step", "b"}}}});
  CHECK(bodies["step.finished"] == nlohmann::json{{"name", "x"}, {"details", {{"step", "c"}}}});
  // A member in both lists comes with every event.
  ledger::Ledger::EventVisitor both;
  both.members = {"name", "details"};
  both.kind_members = {"details"};
  both.member_kinds = {"artifact.recorded"};
  CHECK(visit(*reader, both).first["artifact.intent"] ==
        nlohmann::json{{"name", "SCENES_v001.json"}, {"details", {{"step", "a"}}}});

  // The intent's details, which the visitor is not given, are still hashed: an edit is caught.
  reader.reset();
  fs::path db = ledger::ledger_path(f.dir.path());
  REQUIRE(sql(db, k_drop_triggers) == SQLITE_OK);
  REQUIRE(sql(db, "UPDATE events SET body = replace(body, '\"a\"', '\"z\"') WHERE kind = 'artifact.intent'") ==
          SQLITE_OK);
  auto tampered = f.open(ledger::OpenMode::read_only);
  ledger::Ledger::EventVisitor again;
  again.members = visitor.members;
  again.kind_members = visitor.kind_members;
  again.member_kinds = visitor.member_kinds;
  auto [after, findings] = visit(*tampered, again);
  CHECK(after["artifact.intent"] == nlohmann::json{{"name", "SCENES_v001.json"}});
  CHECK(has_rule(findings, "ledger.hash", "ledger event 2"));
}

TEST_CASE("a body that is not JSON ends what a visitor of verify is given, and verify's own findings stay",
          "[ledger][tamper]") {
  LedgerFixture f;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(row_event("story-architect")).ok());
    REQUIRE(ledger->append(row_event("qc-grader")).ok());
    REQUIRE(ledger->append(row_event("qc-grader")).ok());
  }
  fs::path db = ledger::ledger_path(f.dir.path());
  REQUIRE(sql(db, k_drop_triggers) == SQLITE_OK);
  REQUIRE(sql(db, "UPDATE events SET body = '{not json' WHERE seq = 3") == SQLITE_OK);
  auto reader = f.open(ledger::OpenMode::read_only);
  const std::vector<core::Violation> alone = reader->verify();
  std::vector<int64_t> seqs;
  ledger::Ledger::EventVisitor visitor;
  visitor.members = {"row"};
  visitor.each = [&](ledger::Event&& e) -> Result<void> {
    seqs.push_back(e.seq);
    return ok();
  };
  const std::vector<core::Violation> visited = reader->verify(&visitor);
  // The visitor failed as events() fails on that body, and got nothing from it on.
  REQUIRE(visitor.failed);
  CHECK(visitor.failed->code == ErrorCode::corruption);
  ledger::Ledger::EventQuery rows;
  rows.members = {"row"};
  CHECK_FALSE(reader->events(rows).ok());
  CHECK(seqs == std::vector<int64_t>{1, 2});
  // verify's own pass went on to the end: the same findings, the edited event's among them.
  REQUIRE(visited.size() == alone.size());
  for (size_t i = 0; i < alone.size(); ++i) {
    CHECK(visited[i].rule == alone[i].rule);
    CHECK(visited[i].message == alone[i].message);
  }
  CHECK(has_rule(visited, "ledger.hash", "ledger event 3"));
}

TEST_CASE("an artifact index row edited, removed or added is caught as verify compares the index in its pass",
          "[ledger][tamper]") {
  for (const char* edit : {"UPDATE artifacts SET author = 'mallory' WHERE name = 'SCENES_v001.json'",
                           "DELETE FROM artifacts WHERE name = 'SCENES_v001.json'",
                           "INSERT INTO artifacts SELECT 'SCENES_v009.json', kind, target, 9, path, face_sha256, "
                           "json_sha256, author, producer, event_seq + 100 FROM artifacts"}) {
    LedgerFixture f;
    {
      auto ledger = f.create();
      REQUIRE(ledger->begin_run("test", {}).ok());
      ledger::ArtifactRecord scenes;
      scenes.name = "SCENES_v001.json";
      scenes.kind = "SCENES";
      scenes.version = 1;
      scenes.path = "story/SCENES_v001.json";
      scenes.face_sha256 = std::string(64, 'a');
      scenes.json_sha256 = std::string(64, 'b');
      scenes.author = "avps";
      scenes.producer = "story-architect";
      REQUIRE(ledger->append(ledger::EventDraft{.kind = "artifact.recorded", .artifact = scenes}).ok());
      REQUIRE(ledger->append(row_event("story-architect")).ok());
      REQUIRE(ledger->verify().empty());
    }
    fs::path db = ledger::ledger_path(f.dir.path());
    REQUIRE(sql(db, k_drop_triggers) == SQLITE_OK);
    INFO(edit);
    REQUIRE(sql(db, edit) == SQLITE_OK);
    CHECK(has_rule(f.open(ledger::OpenMode::read_only)->verify(), "ledger.index"));
  }
}

TEST_CASE("a verified point holds over tables whose rows lie out of event order, and fails when a row changes",
          "[ledger][tamper]") {
  LedgerFixture f;
  ledger::Ledger::VerifiedPoint point;
  {
    auto ledger = f.create();
    REQUIRE(ledger->begin_run("test", {}).ok());
    for (int version = 1; version <= 3; ++version) {
      ledger::ArtifactRecord scenes;
      scenes.name = "SCENES_v00" + std::to_string(version) + ".json";
      scenes.kind = "SCENES";
      scenes.version = version;
      scenes.path = "story/" + scenes.name;
      scenes.face_sha256 = std::string(64, 'a');
      scenes.json_sha256 = std::string(64, 'b');
      scenes.author = "avps";
      scenes.producer = "story-architect";
      REQUIRE(ledger->append(ledger::EventDraft{.kind = "artifact.recorded", .artifact = scenes}).ok());
    }
    REQUIRE(ledger->append(row_event("story-architect")).ok());
    REQUIRE(ledger->verify(nullptr, nullptr, &point).empty());
    REQUIRE(point.seq > 0);
  }
  // The point is taken up to here; events after it are what a later verify() reads again.
  {
    auto ledger = f.open(ledger::OpenMode::read_write);
    REQUIRE(ledger->begin_run("test", {}).ok());
    REQUIRE(ledger->append(row_event("shot-planner")).ok());
  }
  auto verified_after = [&]() {
    ledger::Ledger::EventVisitor visitor;
    visitor.each = [](ledger::Event&&) -> Result<void> { return ok(); };
    ledger::Ledger::VerifiedPoint reached;
    const std::vector<core::Violation> found = f.open(ledger::OpenMode::read_only)->verify(&visitor, &point, &reached);
    for (const core::Violation& v : found) {
      UNSCOPED_INFO(v.rule << " " << v.subject << ": " << v.message);
    }
    CHECK(found.empty());
    return visitor.after_seq;
  };
  REQUIRE(verified_after() == point.seq);
  // Given: the same rows stored in the reverse order (the ledger reads them as they lie when they
  // are in event order, sorted otherwise). Then: the point still holds.
  fs::path db = ledger::ledger_path(f.dir.path());
  REQUIRE(sql(db, std::string(k_drop_triggers) +
                      "CREATE TABLE kept AS SELECT * FROM artifacts; DELETE FROM artifacts; "
                      "INSERT INTO artifacts SELECT * FROM kept ORDER BY event_seq DESC; DROP TABLE kept;" +
                      k_restore_triggers) == SQLITE_OK);
  CHECK(verified_after() == point.seq);
  // Given: one of them changed besides. Then: the point no longer holds, and the whole record is
  // verified (which finds the changed row).
  REQUIRE(sql(db, std::string(k_drop_triggers) +
                      "UPDATE artifacts SET author = 'mallory' WHERE name = 'SCENES_v002.json';" +
                      k_restore_triggers) == SQLITE_OK);
  ledger::Ledger::EventVisitor visitor;
  visitor.each = [](ledger::Event&&) -> Result<void> { return ok(); };
  CHECK(has_rule(f.open(ledger::OpenMode::read_only)->verify(&visitor, &point, nullptr), "ledger.index"));
  CHECK(visitor.after_seq == 0);
}

TEST_CASE("held writes wait for their gate once, fail with its error and write nothing, until opened",
          "[ledger]") {
  LedgerFixture f;
  auto ledger = f.create();
  REQUIRE(ledger->begin_run("test", {}).ok());
  const int64_t before = ledger->head().seq;
  const ledger::Caps caps{10000, std::nullopt, std::nullopt};

  int asked = 0;
  ledger->hold_writes([&]() -> Result<void> {
    ++asked;
    return make_error(ErrorCode::corruption, "the check found a file changed");
  });
  Result<ledger::Event> appended = ledger->append(row_event("story-architect"));
  REQUIRE_FALSE(appended.ok());
  CHECK(appended.error().message == "the check found a file changed");
  // Every later write has the same answer, without asking again; reads go on.
  CHECK_FALSE(ledger->reserve({"call-1", "S01", "", 500, "first"}, caps, {.kind = "budget.reserved"}).ok());
  CHECK_FALSE(ledger->put_object("bytes").ok());
  CHECK_FALSE(ledger->end_run("DONE", {}).ok());
  CHECK(ledger->sync().ok());
  CHECK(asked == 1);
  CHECK(ledger->head().seq == before);
  CHECK(ledger->spend("", "").value().total() == 0);

  ledger->open_writes();
  CHECK(ledger->append(row_event("story-architect")).ok());
  CHECK(ledger->head().seq == before + 1);

  // A gate that passes is asked once, by the first write, from whichever thread it comes.
  asked = 0;
  ledger->hold_writes([&]() -> Result<void> {
    ++asked;
    return ok();
  });
  std::atomic<int> stored{0};  // Catch2's assertions are not for other threads
  std::vector<std::thread> writers;
  for (int i = 0; i < 4; ++i) {
    writers.emplace_back([&ledger, &stored, i] {
      if (ledger->put_object("object " + std::to_string(i)).ok()) {
        ++stored;
      }
    });
  }
  for (std::thread& writer : writers) {
    writer.join();
  }
  CHECK(stored == 4);
  CHECK(ledger->append(row_event("shot-planner")).ok());
  CHECK(asked == 1);
  CHECK(ledger->head().seq == before + 2);
}

TEST_CASE("a reader's events, objects and verify may be read from several threads at once, over its one snapshot",
          "[ledger][snapshot][threads]") {
  // As `avps gate` reads: its integrity check verifies the chain on one thread while its record
  // check reads events and objects on others. Given a reader opened before a writer goes on,
  // when three threads read through it at once, then each sees what one thread alone sees, the
  // snapshot's, never the writer's later commits.
  LedgerFixture f;
  auto writer = f.create();
  REQUIRE(writer->begin_run("test", {}).ok());
  std::vector<std::string> objects;
  for (int i = 0; i < 60; ++i) {
    objects.push_back(writer->put_object("object " + std::to_string(i)).value());
    REQUIRE(writer->append(row_event("step " + std::to_string(i))).ok());
  }
  REQUIRE(writer->flush().ok());
  auto reader = f.open(ledger::OpenMode::read_only);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(writer->put_object("later " + std::to_string(i)).ok());
    REQUIRE(writer->append(row_event("later")).ok());
  }
  const std::vector<ledger::Event> alone = reader->events().value();
  const std::vector<core::Violation> verified_alone = reader->verify();
  CHECK(verified_alone.empty());

  std::atomic<int> differences{0};
  auto read_events = [&]() {
    for (int round = 0; round < 20; ++round) {
      ledger::Ledger::EventQuery page;
      page.limit = 7;
      std::vector<ledger::Event> all;
      // (No Catch2 assertion off the test's thread: they are not thread-safe. Counted instead.)
      const Result<void> read = reader->each_event(page, [&](ledger::Event&& e) -> Result<void> {
        all.push_back(std::move(e));
        return ok();
      });
      if (!read || all.size() != alone.size() || !std::equal(all.begin(), all.end(), alone.begin(), [](const auto& a, const auto& b) {
            return a.seq == b.seq && a.hash == b.hash && a.body == b.body;
          })) {
        ++differences;
      }
    }
  };
  auto read_objects = [&]() {
    for (int round = 0; round < 20; ++round) {
      for (size_t i = 0; i < objects.size(); ++i) {
        Result<std::optional<std::string>> held = reader->object(objects[i]);
        if (!held || !*held || **held != "object " + std::to_string(i)) {
          ++differences;
        }
      }
    }
  };
  auto verify = [&]() {
    for (int round = 0; round < 5; ++round) {
      if (reader->verify().size() != verified_alone.size()) {
        ++differences;
      }
    }
  };
  std::thread events_thread(read_events);
  std::thread objects_thread(read_objects);
  verify();
  events_thread.join();
  objects_thread.join();
  CHECK(differences == 0);
  CHECK(reader->head().seq == alone.back().seq);
}
