#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "avps/artifacts/store.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/gates/integrity.hpp"
#include "avps/project/project.hpp"
#include "support/crash.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<project::Project> open_project(const fs::path& dir) {
  static testing::FixedClock clock;
  auto opened = project::Project::open(dir, ledger::OpenMode::read_write, {}, clock);
  INFO((opened.ok() ? std::string() : opened.error().message));
  REQUIRE(opened.ok());
  return std::move(opened).value();
}

fs::path init_project(const testing::TempDir& tmp) {
  static testing::FixedClock clock;
  fs::path dir = tmp.path() / "film";
  auto created = project::Project::init(dir, "Crash test", {}, clock);
  INFO((created.ok() ? std::string() : created.error().message));
  REQUIRE(created.ok());
  return dir;
}

// Runs `write` on the project in `dir`, in a run of its own, in a child killed at crash `point`;
// whether the point was reached.
bool write_until_crash(const std::string& point, const fs::path& dir,
                       const std::function<void(artifacts::ArtifactStore&)>& write) {
  return testing::run_until_crash(point, [&] {
    testing::FixedClock clock;
    auto project = project::Project::open(dir, ledger::OpenMode::read_write, {}, clock);
    if (project.ok() && (*project)->ledger().begin_run("test", {}).ok()) {
      write((*project)->store());
    }
  });
}

artifacts::NewArtifact second_world_state() {
  nlohmann::json content = {{"format_version", 1},
                            {"timeline", {{"current_scene", "S01"}, {"elapsed_time", "1h"}, {"global_notes", ""}}},
                            {"characters", nlohmann::json::object()},
                            {"props", nlohmann::json::object()},
                            {"locations", nlohmann::json::object()},
                            {"rules", {{"fictional_constraints", nlohmann::json::array()},
                                       {"modified_rules", nlohmann::json::array()}}}};
  ledger::LogRow row;
  row.skill_name = "world-state-tracker";
  row.outcome = "PASS";
  row.artifact_output = "WORLD_STATE_v002.json";
  return artifacts::NewArtifact{artifacts::make_artifact_name("WORLD_STATE", "", 2).value(),
                                content,
                                content.dump(2) + "\n",
                                "avps",
                                "world-state-tracker",
                                row,
                                nlohmann::json::object()};
}

}  // namespace

TEST_CASE("a recorded artifact can be read back and verified", "[store]") {
  testing::TempDir tmp;
  fs::path dir = init_project(tmp);
  auto project = open_project(dir);
  REQUIRE(project->ledger().begin_run("test", {}).ok());
  auto record = project->store().write(second_world_state());
  REQUIRE(record.ok());
  CHECK(record->path == "continuity/WORLD_STATE_v002.json");
  CHECK(core::sha256_hex(core::read_file(dir / record->path).value()) == record->face_sha256);
  CHECK(project->store().load(*record).value()["timeline"]["current_scene"] == "S01");
  CHECK(project->store().next_name("WORLD_STATE", "").value().version == 3);
  CHECK(project->store().latest("WORLD_STATE", "").value()->name == "WORLD_STATE_v002.json");
  CHECK_FALSE(project->store().latest("WORLD_STATE", "S01").value().has_value());
  CHECK_FALSE(project->store().latest("BEATS", "").value().has_value());
  CHECK(gates::check_integrity(dir, project->ledger()).empty());
}

TEST_CASE("the store never overwrites an existing artifact", "[store]") {
  testing::TempDir tmp;
  fs::path dir = init_project(tmp);
  auto project = open_project(dir);
  REQUIRE(project->ledger().begin_run("test", {}).ok());
  std::string before = core::read_file(dir / "continuity/WORLD_STATE_v001.json").value();

  // Given a recorded name, when a producer writes it again with other bytes, then it is refused.
  artifacts::NewArtifact again = second_world_state();
  again.name = again.name.with_version(1);
  auto refused = project->store().write(again);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::already_exists);
  CHECK_THAT(refused.error().message, Catch::Contains("continuity/WORLD_STATE_v001.json"));
  CHECK(core::read_file(dir / "continuity/WORLD_STATE_v001.json").value() == before);

  // Given a stray file under the next name, the store refuses to adopt or replace it.
  REQUIRE(core::write_file_atomic(dir / "continuity/WORLD_STATE_v002.json", "stray", core::Overwrite::no,
                                  core::Durability::cached).ok());
  auto stray = project->store().write(second_world_state());
  REQUIRE_FALSE(stray.ok());
  CHECK(stray.error().code == ErrorCode::already_exists);
  CHECK(core::read_file(dir / "continuity/WORLD_STATE_v002.json").value() == "stray");
}

TEST_CASE("a write killed at any step leaves either no artifact or the complete one", "[store][crash]") {
  // Every durability boundary a write passes, each at every occurrence (a write makes several
  // commits and atomic files, so "label:n" is the n-th time the label is reached).
  const std::vector<std::string> labels = {
      "atomic.before_fsync", "atomic.before_publish", "atomic.after_link", "atomic.before_dir_sync",
      "store.after_intent",  "store.after_object",    "store.after_face",  "ledger.before_commit",
      "ledger.after_commit", "ledger.after_head",     "append.torn",       "ledger.after_object",
      "ledger.before_sync",  "ledger.after_sync"};
  const artifacts::NewArtifact expected = second_world_state();
  for (const std::string& label : labels) {
    for (int n = 1; n <= 8; ++n) {
      std::string point = label + ":" + std::to_string(n);
      DYNAMIC_SECTION(point) {
        testing::TempDir tmp;
        fs::path dir = init_project(tmp);
        bool crashed = write_until_crash(point, dir,
                                         [&](artifacts::ArtifactStore& store) { std::ignore = store.write(expected); });
        if (n == 1) {
          CHECK(crashed);  // every boundary is reached at least once by a write
        }
        // Reopening recovers; then the artifact is either fully there or not at all.
        auto project = open_project(dir);
        auto record = project->ledger().find_artifact("WORLD_STATE_v002.json").value();
        fs::path face = dir / "continuity/WORLD_STATE_v002.json";
        if (record) {
          CHECK(core::read_file(face).value() == expected.face);
        } else {
          CHECK_FALSE(fs::exists(face));
          // And writing it again now succeeds, giving the same bytes.
          REQUIRE(project->ledger().begin_run("retry", {}).ok());
          REQUIRE(project->store().write(expected).ok());
          CHECK(core::read_file(face).value() == expected.face);
        }
        CHECK(gates::check_integrity(dir, project->ledger()).empty());
        // No temp file survives recovery.
        for (const auto& entry : fs::recursive_directory_iterator(dir)) {
          CHECK(entry.path().extension() != ".tmp");
        }
      }
    }
  }
}

namespace {

// A group of three WORLD_STATE versions (v002..v004), as a wave of outputs finishing together.
std::vector<artifacts::NewArtifact> world_state_group() {
  std::vector<artifacts::NewArtifact> group;
  for (int version = 2; version <= 4; ++version) {
    artifacts::NewArtifact next = second_world_state();
    next.name = next.name.with_version(version);
    next.content["timeline"]["elapsed_time"] = std::to_string(version) + "h";
    next.face = next.content.dump(2) + "\n";
    next.row->artifact_output = next.name.filename();
    // A model call's row: what an interrupted write must not lose from the run log.
    next.row->model_used = "claude-haiku-4-5";
    next.row->tier = "t2";
    next.row->estimated_cost = "0.050000";
    next.row->actual_cost = "0.02000" + std::to_string(version);
    group.push_back(std::move(next));
  }
  return group;
}

}  // namespace

TEST_CASE("a group of artifacts costs one sync of its intents and one of its folder, besides each face",
          "[store][group]") {
  testing::TempDir tmp;
  fs::path dir = init_project(tmp);
  struct Reset {
    ~Reset() { core::set_fault_point(""); }
  } reset;
  core::set_fault_point("count");
  auto project = open_project(dir);
  REQUIRE(project->ledger().begin_run("test", {}).ok());
  REQUIRE(project->ledger().flush().ok());  // the mirrors exact: none is due during the writes
  const long before = core::fault_counts().fsync;
  const std::vector<artifacts::NewArtifact> group = world_state_group();
  auto records = project->store().write_all(group);
  REQUIRE(records.ok());
  // One fdatasync of the log (the three intents), one fsync per face, one of continuity/ for all.
  CHECK(core::fault_counts().fsync - before == 1 + 3 + 1);
  REQUIRE(records->size() == 3);
  for (size_t i = 0; i < group.size(); ++i) {
    CHECK((*records)[i].name == group[i].name.filename());
    CHECK(core::read_file(dir / (*records)[i].path).value() == group[i].face);
    CHECK(project->ledger().find_artifact((*records)[i].name).value()->event_seq == (*records)[i].event_seq);
  }
  CHECK(project->store().latest("WORLD_STATE", "").value()->name == "WORLD_STATE_v004.json");
  CHECK(gates::check_integrity(dir, project->ledger()).empty());

  // Refused whole when any name is taken: nothing of the group is written.
  std::vector<artifacts::NewArtifact> again = world_state_group();
  again[1].name = again[1].name.with_version(5);
  again[2].name = again[2].name.with_version(6);
  auto refused = project->store().write_all({again[1], again[2], again[0]});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::already_exists);
  CHECK_FALSE(fs::exists(dir / "continuity/WORLD_STATE_v005.json"));
  CHECK_FALSE(project->ledger().find_artifact("WORLD_STATE_v005.json").value().has_value());
}

TEST_CASE("a group write killed at any step leaves, of each artifact, none or the whole one", "[store][crash]") {
  // Every boundary of a group write (store.before_folder_sync: every face published, their
  // folder not yet synced, nothing recorded), each at every occurrence.
  const std::vector<std::string> labels = {
      "store.after_object",   "store.after_intent",     "atomic.before_fsync", "atomic.before_publish",
      "atomic.after_link",    "atomic.before_dir_sync", "store.after_face",    "store.before_folder_sync",
      "ledger.before_commit", "ledger.after_commit",    "ledger.before_sync",  "ledger.after_sync",
      "ledger.after_object"};
  const std::vector<artifacts::NewArtifact> group = world_state_group();
  for (const std::string& label : labels) {
    for (int n = 1; n <= 4; ++n) {
      std::string point = label + ":" + std::to_string(n);
      DYNAMIC_SECTION(point) {
        testing::TempDir tmp;
        fs::path dir = init_project(tmp);
        bool crashed = write_until_crash(
            point, dir, [&](artifacts::ArtifactStore& store) { std::ignore = store.write_all(group); });
        if (n == 1) {
          CHECK(crashed);  // every boundary is reached at least once by a group write
        }
        // Reopening recovers; then each artifact is either fully there or not at all, and the
        // ones that are not can be written again, as a group.
        auto project = open_project(dir);
        std::vector<artifacts::NewArtifact> missing;
        for (const artifacts::NewArtifact& artifact : group) {
          auto record = project->ledger().find_artifact(artifact.name.filename()).value();
          fs::path face = dir / artifact.name.relative_path();
          if (record) {
            CHECK(core::read_file(face).value() == artifact.face);
          } else {
            CHECK_FALSE(fs::exists(face));
            missing.push_back(artifact);
          }
        }
        if (!missing.empty()) {
          REQUIRE(project->ledger().begin_run("retry", {}).ok());
          REQUIRE(project->store().write_all(missing).ok());
        }
        for (const artifacts::NewArtifact& artifact : group) {
          CHECK(core::read_file(dir / artifact.name.relative_path()).value() == artifact.face);
        }
        // Each artifact's run-log row is the one its write carried, recovered or not: the model,
        // tier and cost of the call behind it are not lost (BUDGET_STATUS's tier usage reads them).
        ledger::Ledger::EventQuery recorded;
        recorded.kinds = {"artifact.recorded"};
        std::map<std::string, ledger::LogRow> rows;
        Result<std::vector<ledger::Event>> events = project->ledger().events(recorded);
        REQUIRE(events.ok());
        for (const ledger::Event& e : *events) {
          if (e.artifact() && e.row()) {
            rows[e.artifact()->name] = *e.row();
          }
        }
        ledger::Ledger::EventQuery announced;
        announced.kinds = {"artifact.intent"};
        Result<std::vector<ledger::Event>> intents = project->ledger().events(announced);
        REQUIRE(intents.ok());
        for (const ledger::Event& e : *intents) {
          CHECK_FALSE(e.row());  // the row an intent keeps for recovery is not a run-log row
        }
        for (const artifacts::NewArtifact& artifact : group) {
          INFO(artifact.name.filename());
          REQUIRE(rows.count(artifact.name.filename()) == 1);
          const ledger::LogRow& row = rows[artifact.name.filename()];
          CHECK(row.skill_name == artifact.row->skill_name);
          CHECK(row.model_used == artifact.row->model_used);
          CHECK(row.tier == artifact.row->tier);
          CHECK(row.actual_cost == artifact.row->actual_cost);
          CHECK(row.estimated_cost == artifact.row->estimated_cost);
          CHECK(row.outcome == artifact.row->outcome);
        }
        CHECK(gates::check_integrity(dir, project->ledger()).empty());
        for (const auto& entry : fs::recursive_directory_iterator(dir)) {
          CHECK(entry.path().extension() != ".tmp");
        }
      }
    }
  }
}

TEST_CASE("an artifact index row edited behind the ledger's back is reported", "[store][tamper]") {
  testing::TempDir tmp;
  fs::path dir = init_project(tmp);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(ledger::ledger_path(dir).c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "DROP TRIGGER artifacts_no_update; UPDATE artifacts SET author = 'human'", nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  sqlite3_close(db);
  testing::FixedClock clock;
  auto ledger = ledger::Ledger::open(dir, ledger::OpenMode::read_only, clock).value();
  auto violations = ledger->verify();
  CHECK(std::count_if(violations.begin(), violations.end(),
                      [](const core::Violation& v) { return v.rule == "ledger.index"; }) == 4);  // 2 rows, both ways
}

TEST_CASE("the gate checks each artifact's content against its schema and that a run-log row names it",
          "[store][gate]") {
  testing::TempDir tmp;
  fs::path dir = init_project(tmp);
  auto project = open_project(dir);
  REQUIRE(project->ledger().begin_run("test", {}).ok());
  // Recorded with its hashes in order, but its content is not a WORLD_STATE (a field missing),
  // and no run-log row names it: both are what a CI gate must refuse.
  artifacts::NewArtifact broken = second_world_state();
  broken.content.erase("timeline");
  broken.face = broken.content.dump(2) + "\n";
  broken.row.reset();
  REQUIRE(project->store().write(broken).ok());
  std::set<std::string> rules;
  for (const core::Violation& v : gates::check_integrity(dir, project->ledger())) {
    INFO(v.rule << " " << v.subject << ": " << v.message);
    CHECK(v.subject == "continuity/WORLD_STATE_v002.json");
    rules.insert(v.rule);
  }
  CHECK(rules == std::set<std::string>{"artifact.schema", "run_log.row"});
  for (const std::string& rule : rules) {
    CHECK(std::count(gates::integrity_rules().begin(), gates::integrity_rules().end(), rule) == 1);
  }
}

namespace {

void exec_sql(const fs::path& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(ledger::ledger_path(dir).c_str(), &db) == SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  INFO(sql << ": " << (message ? message : ""));
  sqlite3_free(message);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// The append-only trigger `name` put back after an edit, as someone with the sqlite3 shell can.
std::string put_back(const std::string& name, const std::string& on) {
  return "CREATE TRIGGER " + name + " BEFORE " + on + " BEGIN SELECT RAISE(ABORT, 'avps ledger is append-only'); END;";
}

// Each finding as one line: the whole check and a check from a mark must say the same.
std::vector<std::string> findings(const std::vector<core::Violation>& violations) {
  std::vector<std::string> lines;
  for (const core::Violation& v : violations) {
    lines.push_back(v.rule + " " + v.subject + ": " + v.message);
  }
  return lines;
}

// The whole check of `dir` and the check from `mark`, on a fresh read-only ledger each.
std::pair<std::vector<std::string>, std::vector<std::string>> whole_and_from(const fs::path& dir,
                                                                             const gates::VerifiedMark& mark) {
  testing::FixedClock clock;
  auto ledger = ledger::Ledger::open(dir, ledger::OpenMode::read_only, clock).value();
  const gates::ProjectFiles files = gates::list_project_files(dir);
  return {findings(gates::check_integrity(dir, *ledger, files)),
          findings(gates::check_integrity(dir, *ledger, files, {.since = &mark}))};
}

// A project with one artifact written after init, and the mark of a clean check of it.
fs::path project_with_mark(const testing::TempDir& tmp, gates::VerifiedMark& mark) {
  fs::path dir = init_project(tmp);
  auto project = open_project(dir);
  REQUIRE(project->ledger().begin_run("test", {}).ok());
  REQUIRE(project->store().write(second_world_state()).ok());
  REQUIRE(gates::check_integrity(dir, project->ledger(), gates::list_project_files(dir), {.clean = &mark}).empty());
  return dir;
}

}  // namespace

TEST_CASE("a check from the integrity mark finds what the whole check finds, and reads only what is new",
          "[store][integrity][mark]") {
  testing::TempDir tmp;
  gates::VerifiedMark mark;
  fs::path dir = project_with_mark(tmp, mark);
  // The mark: the ledger's head, every face with its hash; none with an identity, since each file
  // changed within the last 2 s (a later change in the same tick of the file system's clock would
  // not show in it).
  REQUIRE(mark.ledger.seq > 0);
  REQUIRE(mark.files.count("continuity/WORLD_STATE_v002.json"));
  for (const auto& [path, seen] : mark.files) {
    CHECK_FALSE(seen.identity.has_value());
  }
  // Written and read back whole; a torn or foreign file is no mark.
  REQUIRE(gates::write_verified_mark(dir, mark).ok());
  std::optional<gates::VerifiedMark> read = gates::read_verified_mark(dir);
  REQUIRE(read.has_value());
  CHECK(read->ledger.seq == mark.ledger.seq);
  CHECK(read->ledger.hash == mark.ledger.hash);
  CHECK(read->ledger.tables_sha256 == mark.ledger.tables_sha256);
  CHECK(read->files.size() == mark.files.size());
  const std::string text = core::read_file(dir / ".avps/verified").value();
  REQUIRE(core::write_file_atomic(dir / ".avps/verified", text.substr(0, text.size() - 3), core::Overwrite::yes,
                                  core::Durability::cached).ok());
  CHECK_FALSE(gates::read_verified_mark(dir).has_value());

  // More recorded after the mark: found clean from it, and a new mark is further on.
  {
    auto project = open_project(dir);
    REQUIRE(project->ledger().begin_run("test", {}).ok());
    std::vector<artifacts::NewArtifact> group = world_state_group();  // v002..v004
    group.erase(group.begin());
    REQUIRE(project->store().write_all(group).ok());
    gates::VerifiedMark next;
    CHECK(gates::check_integrity(dir, project->ledger(), gates::list_project_files(dir), {.since = &mark, .clean = &next})
              .empty());
    CHECK(next.ledger.seq > mark.ledger.seq);
    CHECK(next.files.count("continuity/WORLD_STATE_v004.json"));
  }
  auto [whole, from_mark] = whole_and_from(dir, mark);
  CHECK(whole.empty());
  CHECK(from_mark.empty());

  // Whatever is changed, before the mark's point or after it, the check from the mark reports it
  // as the whole check does.
  const fs::path before = dir / "continuity/WORLD_STATE_v002.json";
  const fs::path after = dir / "continuity/WORLD_STATE_v004.json";
  const std::string before_bytes = core::read_file(before).value();
  const std::string after_bytes = core::read_file(after).value();
  const std::map<std::string, std::function<void()>> edits = {
      {"a face recorded before the point",
       [&] { REQUIRE(core::write_file_atomic(before, before_bytes + " ", core::Overwrite::yes, core::Durability::cached).ok()); }},
      {"a face recorded after the point",
       [&] { REQUIRE(core::write_file_atomic(after, after_bytes + " ", core::Overwrite::yes, core::Durability::cached).ok()); }},
      {"a face removed", [&] { fs::remove(before); }},
      {"an index row before the point",
       [&] { exec_sql(dir, "DROP TRIGGER artifacts_no_update; UPDATE artifacts SET author = 'human' WHERE name = "
                           "'WORLD_STATE_v002.json'; " + put_back("artifacts_no_update", "UPDATE ON artifacts")); }},
      {"an event before the point",
       [&] { exec_sql(dir, "DROP TRIGGER events_no_update; UPDATE events SET body = body || ' ' "
                           "WHERE seq = (SELECT min(seq) FROM events WHERE kind = 'artifact.recorded'); " +
                           put_back("events_no_update", "UPDATE ON events")); }},
      {"an artifact named file added", [&] {
         REQUIRE(core::write_file_atomic(dir / "continuity/WORLD_STATE_v009.json", "{}", core::Overwrite::no,
                                         core::Durability::cached).ok());
       }},
  };
  for (const auto& [what, edit] : edits) {
    SECTION(what) {
      edit();
      auto [whole_now, from_mark_now] = whole_and_from(dir, mark);
      CHECK_FALSE(whole_now.empty());
      CHECK(from_mark_now == whole_now);
    }
  }
}

TEST_CASE("what a check from the integrity mark leaves to readers and to the gate", "[store][integrity][mark]") {
  testing::TempDir tmp;
  gates::VerifiedMark mark;
  fs::path dir = project_with_mark(tmp, mark);
  const ledger::ArtifactRecord record = [&] {
    testing::FixedClock clock;
    auto ledger = ledger::Ledger::open(dir, ledger::OpenMode::read_only, clock).value();
    return ledger->find_artifact("WORLD_STATE_v002.json").value().value();
  }();

  SECTION("an object recorded before the point, changed inside the ledger: re-hashed by its readers, not by the mark's check") {
    exec_sql(dir, "DROP TRIGGER objects_no_update; UPDATE objects SET bytes = CAST('{}' AS BLOB) WHERE sha256 = '" +
                      record.json_sha256 + "'; " + put_back("objects_no_update", "UPDATE ON objects"));
    auto [whole, from_mark] = whole_and_from(dir, mark);
    CHECK_FALSE(whole.empty());
    CHECK(from_mark == std::vector<std::string>{});
  }
  SECTION("a face listed with an identity is not read again: only a mark that lies about it hides an edit") {
    // What the mark keeps of a file that had settled: its identity. An edit changes the ctime,
    // which only the system clock sets; a mark rewritten to the edited file's identity is what it
    // takes to hide the edit from the check (never from `avps gate`, which reads no mark).
    const fs::path face = dir / record.path;
    REQUIRE(core::write_file_atomic(face, "edited", core::Overwrite::yes, core::Durability::cached).ok());
    struct stat st {};
    REQUIRE(::stat(face.c_str(), &st) == 0);
    gates::VerifiedMark lying = mark;
    lying.files[record.path].identity =
        gates::FileSeen::Identity{static_cast<int64_t>(st.st_size), int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
                                  int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec,
                                  static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_dev)};
    auto [whole, from_lying_mark] = whole_and_from(dir, lying);
    CHECK_FALSE(whole.empty());
    CHECK(from_lying_mark.empty());
    auto [again, from_true_mark] = whole_and_from(dir, mark);
    CHECK(from_true_mark == again);  // the true mark has no identity for it, or another one
  }
  SECTION("a mark whose point the ledger no longer has makes the check whole") {
    gates::VerifiedMark foreign = mark;
    foreign.ledger.hash = std::string(64, '0');
    exec_sql(dir, "DROP TRIGGER objects_no_update; UPDATE objects SET bytes = CAST('{}' AS BLOB) WHERE sha256 = '" +
                      record.json_sha256 + "'");
    auto [whole, from_foreign] = whole_and_from(dir, foreign);
    CHECK_FALSE(whole.empty());
    CHECK(from_foreign == whole);
  }
}

TEST_CASE("the integrity mark keeps the identity of a file that had settled before the check",
          "[store][integrity][mark]") {
  testing::TempDir tmp;
  fs::path dir = init_project(tmp);
  {
    auto project = open_project(dir);
    REQUIRE(project->ledger().begin_run("test", {}).ok());
    REQUIRE(project->store().write(second_world_state()).ok());
  }
  // The one wait of this kind in the suite: a file's ctime cannot be set back, so a file settles
  // only by time passing (VerifiedMark::k_settled_ns).
  std::this_thread::sleep_for(std::chrono::nanoseconds(gates::VerifiedMark::k_settled_ns + 100'000'000));
  gates::VerifiedMark mark;
  auto project = open_project(dir);
  REQUIRE(gates::check_integrity(dir, project->ledger(), gates::list_project_files(dir), {.clean = &mark}).empty());
  REQUIRE(mark.files.count("continuity/WORLD_STATE_v002.json"));
  CHECK(mark.files["continuity/WORLD_STATE_v002.json"].identity.has_value());
  project.reset();

  // Changed in place with its size, inode and mtime kept (the mtime put back): the ctime shows it.
  const fs::path face = dir / "continuity/WORLD_STATE_v002.json";
  const std::string bytes = core::read_file(face).value();
  struct stat before {};
  REQUIRE(::stat(face.c_str(), &before) == 0);
  auto write_in_place = [&](const std::string& text) {
    std::FILE* file = std::fopen(face.c_str(), "r+b");
    REQUIRE(file != nullptr);
    REQUIRE(std::fwrite(text.data(), 1, text.size(), file) == text.size());
    REQUIRE(std::fclose(file) == 0);
    const struct timespec times[2] = {before.st_atim, before.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, face.c_str(), times, 0) == 0);
  };
  std::string edited = bytes;
  edited[edited.find("1h")] = '7';
  write_in_place(edited);
  struct stat now {};
  REQUIRE(::stat(face.c_str(), &now) == 0);
  REQUIRE(now.st_size == before.st_size);
  REQUIRE(now.st_ino == before.st_ino);
  REQUIRE(now.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  auto [whole, from_mark] = whole_and_from(dir, mark);
  CHECK_FALSE(whole.empty());
  CHECK(from_mark == whole);

  // Put back as recorded: read again (its identity changed), found in order, and listed without
  // an identity until it settles again.
  write_in_place(bytes);
  auto [whole_again, from_mark_again] = whole_and_from(dir, mark);
  CHECK(whole_again.empty());
  CHECK(from_mark_again.empty());
  gates::VerifiedMark next;
  {
    testing::FixedClock clock;
    auto ledger = ledger::Ledger::open(dir, ledger::OpenMode::read_only, clock).value();
    CHECK(gates::check_integrity(dir, *ledger, gates::list_project_files(dir), {.since = &mark, .clean = &next}).empty());
  }
  CHECK_FALSE(next.files["continuity/WORLD_STATE_v002.json"].identity.has_value());
}
