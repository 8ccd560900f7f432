// Fault injection (core::set_fault_point): every write, fsync and rename a commit makes — avps's
// own and SQLite's inside the ledger — is made to fail in turn, one per scenario. Each time the
// call must return an error (never a crash, never a success that lost data), the next writing
// open must recover to a state that verifies, with the write either absent or whole, and the
// same write retried must then give what an uninterrupted write gives.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "avps/artifacts/store.hpp"
#include "avps/core/fs.hpp"
#include "avps/gates/integrity.hpp"
#include "avps/governance/override.hpp"
#include "avps/project/project.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Where the scenarios run: tmpfs where there is one. What is under test is each error path and
// what it leaves, not the disk, and a real disk's fsyncs would make the hundreds of scenarios slow.
std::filesystem::path scratch_root() {
  std::error_code error;
  if (fs::is_directory("/dev/shm", error) && ::access("/dev/shm", W_OK) == 0) {
    return "/dev/shm";
  }
  return fs::temp_directory_path();
}

// Removes the fault plan when a test ends, however it ends.
struct FaultPlanGuard {
  ~FaultPlanGuard() { core::set_fault_point(""); }
};

fs::path init_fault_project(const testing::TempDir& tmp) {
  static testing::FixedClock clock;
  fs::path dir = tmp.path() / "film";
  auto created = project::Project::init(dir, "Fault test", {}, clock);
  INFO((created.ok() ? std::string() : created.error().message));
  REQUIRE(created.ok());
  return dir;
}

// A copy of the closed project `from` in a fresh folder: cheaper than an init per fault.
fs::path copy_of(const fs::path& from, const testing::TempDir& tmp) {
  fs::path dir = tmp.path() / "film";
  fs::copy(from, dir, fs::copy_options::recursive);
  return dir;
}

// Opens the project read-write with the plan "count" set, so that its ledger connection opens
// through the fault VFS; the caller then sets the plan it means (which resets the counts).
std::unique_ptr<project::Project> open_counting(const fs::path& dir) {
  static testing::FixedClock clock;
  core::set_fault_point("count");
  auto opened = project::Project::open(dir, ledger::OpenMode::read_write, {}, clock);
  INFO((opened.ok() ? std::string() : opened.error().message));
  REQUIRE(opened.ok());
  return std::move(opened).value();
}

// Opens without a plan: the writing path's recovery (mirrors completed, interrupted writes
// resolved) runs on real I/O.
std::unique_ptr<project::Project> reopen(const fs::path& dir) {
  static testing::FixedClock clock;
  core::set_fault_point("");
  auto opened = project::Project::open(dir, ledger::OpenMode::read_write, {}, clock);
  INFO((opened.ok() ? std::string() : opened.error().message));
  REQUIRE(opened.ok());
  return std::move(opened).value();
}

// The plans of a scenario: every k of every operation kind it performs when nothing fails.
std::vector<std::string> every_fault(const core::FaultCounts& counts) {
  std::vector<std::string> plans;
  for (long k = 1; k <= counts.write; ++k) {
    plans.push_back("write:" + std::to_string(k));
  }
  for (long k = 1; k <= counts.fsync; ++k) {
    plans.push_back("fsync:" + std::to_string(k));
  }
  for (long k = 1; k <= counts.rename; ++k) {
    plans.push_back("rename:" + std::to_string(k));
  }
  return plans;
}

// What every scenario checks after reopening: the ledger and the files agree, and no temp file
// is left.
void check_recovered(const fs::path& dir, project::Project& project) {
  for (const core::Violation& v : gates::check_integrity(dir, project.ledger())) {
    FAIL_CHECK(v.rule << " " << v.subject << ": " << v.message);
  }
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    CHECK_FALSE(core::is_atomic_temp_name(entry.path().filename().string()));
  }
}

void check_failure(const Error& error) {
  INFO(error.message);
  CHECK(error.code == ErrorCode::io_error);
  CHECK(error.message.find("internal error") == std::string::npos);
  const bool names_the_fault = error.message.find("Input/output error") != std::string::npos ||
                              error.message.find("disk I/O error") != std::string::npos;
  CHECK(names_the_fault);
}

artifacts::NewArtifact fault_second_world_state() {
  json content = {{"format_version", 1},
                  {"timeline", {{"current_scene", "S01"}, {"elapsed_time", "1h"}, {"global_notes", ""}}},
                  {"characters", json::object()},
                  {"props", json::object()},
                  {"locations", json::object()},
                  {"rules", {{"fictional_constraints", json::array()}, {"modified_rules", json::array()}}}};
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
                                json::object()};
}

}  // namespace

TEST_CASE("the fault plan counts and fails exactly the operation it names", "[fault]") {
  FaultPlanGuard guard;
  testing::TempDir tmp(scratch_root());
  core::set_fault_point("count");
  REQUIRE(core::write_file_atomic(tmp.path() / "a", "x", core::Overwrite::no, core::Durability::durable).ok());
  CHECK(core::fault_counts().write == 1);
  CHECK(core::fault_counts().fsync == 2);  // the file, then its folder
  CHECK(core::fault_counts().rename == 1);

  core::set_fault_point("fsync:2");
  Result<void> second = core::write_file_atomic(tmp.path() / "b", "x", core::Overwrite::no, core::Durability::durable);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == ErrorCode::io_error);
  CHECK(second.error().message == "cannot fsync " + tmp.path().string() + ": Input/output error");
  CHECK(fs::exists(tmp.path() / "b"));  // published: only the folder's sync failed
  // Only the K-th fails.
  CHECK(core::write_file_atomic(tmp.path() / "c", "x", core::Overwrite::no, core::Durability::durable).ok());

  core::set_fault_point("rename:1");
  Result<void> renamed = core::write_file_atomic(tmp.path() / "d", "x", core::Overwrite::yes, core::Durability::durable);
  REQUIRE_FALSE(renamed.ok());
  CHECK_FALSE(fs::exists(tmp.path() / "d"));
  for (const auto& entry : fs::directory_iterator(tmp.path())) {
    CHECK_FALSE(core::is_atomic_temp_name(entry.path().filename().string()));
  }

  core::set_fault_point("");
  CHECK_FALSE(core::fault_plan_active());
  CHECK(core::write_file_atomic(tmp.path() / "e", "x", core::Overwrite::no, core::Durability::durable).ok());
  CHECK(core::fault_counts().write == 0);  // nothing counted without a plan
}

TEST_CASE("an artifact write failing at any write, fsync or rename leaves no artifact or the whole one",
          "[store][fault]") {
  FaultPlanGuard guard;
  const artifacts::NewArtifact expected = fault_second_world_state();
  // Once without a fault: how many of each operation the write makes.
  testing::TempDir initialized(scratch_root());
  const fs::path fresh = init_fault_project(initialized);
  core::FaultCounts counts;
  {
    testing::TempDir tmp(scratch_root());
    fs::path dir = copy_of(fresh, tmp);
    auto project = open_counting(dir);
    REQUIRE(project->ledger().begin_run("test", {}).ok());
    core::set_fault_point("count");
    REQUIRE(project->store().write(expected).ok());
    REQUIRE(project->ledger().flush().ok());
    counts = core::fault_counts();
  }
  // The object (a ledger commit, no sync of its own), an intent (synced: the object with it), the
  // face, the recorded event (deferred), then the flush that makes the group durable and writes
  // HEAD and the CSV face: each a SQLite commit, a sync of its log or an AtomicFile.
  CHECK(counts.write >= 6);
  CHECK(counts.fsync >= 7);   // the intent's log sync, face and folder, the flush's, HEAD and folder, CSV
  CHECK(counts.rename == 2);  // face, HEAD (once, for the group); the object is no file
  for (const std::string& plan : every_fault(counts)) {
    DYNAMIC_SECTION(plan) {
      testing::TempDir tmp(scratch_root());
      fs::path dir = copy_of(fresh, tmp);
      {
        auto project = open_counting(dir);
        REQUIRE(project->ledger().begin_run("test", {}).ok());
        core::set_fault_point(plan);
        Result<ledger::ArtifactRecord> written = project->store().write(expected);
        Result<void> flushed = written ? project->ledger().flush() : Result<void>(written.error());
        core::set_fault_point("");
        REQUIRE_FALSE(flushed.ok());
        check_failure(flushed.error());
      }
      auto project = reopen(dir);
      auto record = project->ledger().find_artifact("WORLD_STATE_v002.json").value();
      fs::path face = dir / "continuity/WORLD_STATE_v002.json";
      if (record) {
        CHECK(core::read_file(face).value() == expected.face);
        CHECK(project->store().load(*record).value() == expected.content);
      } else {
        CHECK_FALSE(fs::exists(face));
        REQUIRE(project->ledger().begin_run("retry", {}).ok());
        Result<ledger::ArtifactRecord> retried = project->store().write(expected);
        INFO((retried.ok() ? std::string() : retried.error().message));
        REQUIRE(retried.ok());
        CHECK(core::read_file(face).value() == expected.face);
      }
      check_recovered(dir, *project);
    }
  }
}

TEST_CASE("a ledger append failing at any write, fsync or rename is recorded whole or not at all",
          "[ledger][fault]") {
  FaultPlanGuard guard;
  ledger::LogRow row;
  row.skill_name = "budget-gates";
  row.outcome = "DONE";
  row.notes = "a row, so the CSV face is appended too";
  const ledger::EventDraft draft{.kind = "step.finished", .body = {{"step", "fault"}}, .row = row};
  auto count_step = [](project::Project& project) {
    ledger::Ledger::EventQuery query;
    query.kinds = {"step.finished"};
    return project.ledger().events(query).value().size();
  };
  testing::TempDir initialized(scratch_root());
  const fs::path fresh = init_fault_project(initialized);
  core::FaultCounts counts;
  {
    testing::TempDir tmp(scratch_root());
    fs::path dir = copy_of(fresh, tmp);
    auto project = open_counting(dir);
    REQUIRE(project->ledger().begin_run("test", {}).ok());
    core::set_fault_point("count");
    REQUIRE(project->ledger().append(draft).ok());
    REQUIRE(project->ledger().flush().ok());
    counts = core::fault_counts();
  }
  CHECK(counts.fsync >= 4);   // the log; HEAD and its folder, the CSV face (the group's mirrors)
  CHECK(counts.rename == 1);  // HEAD
  for (const std::string& plan : every_fault(counts)) {
    DYNAMIC_SECTION(plan) {
      testing::TempDir tmp(scratch_root());
      fs::path dir = copy_of(fresh, tmp);
      {
        auto project = open_counting(dir);
        REQUIRE(project->ledger().begin_run("test", {}).ok());
        const ledger::Head before = project->ledger().head();
        core::set_fault_point(plan);
        Result<ledger::Event> appended = project->ledger().append(draft);
        Result<void> flushed = appended ? project->ledger().flush() : Result<void>(appended.error());
        core::set_fault_point("");
        REQUIRE_FALSE(flushed.ok());
        check_failure(flushed.error());
        // The process goes on after the failure: the ledger it holds still takes commits (a
        // failed COMMIT leaves no transaction open) and they chain on what is durable.
        Result<ledger::Event> next = project->ledger().append(ledger::EventDraft{.kind = "run.finished",
                                                                                  .body = {{"outcome", "ERROR"}}});
        INFO((next.ok() ? std::string() : next.error().message));
        CHECK(next.ok());
        CHECK(project->ledger().head().seq > before.seq);
      }
      auto project = reopen(dir);
      size_t found = count_step(*project);
      CHECK(found <= 1);
      if (found == 0) {
        REQUIRE(project->ledger().begin_run("retry", {}).ok());
        REQUIRE(project->ledger().append(draft).ok());
      }
      CHECK(count_step(*project) == 1);
      CHECK(project->ledger().verify().empty());
      check_recovered(dir, *project);
    }
  }
}

TEST_CASE("an override failing at any write, fsync or rename is recorded whole or not at all",
          "[override][fault]") {
  FaultPlanGuard guard;
  // A project stopped by its budget; the override raises the project cap and writes a
  // BUDGET_STATUS under the new cap.
  testing::TempDir initialized(scratch_root());
  auto stopped_project = [](const testing::TempDir& tmp) {
    fs::path dir = init_fault_project(tmp);
    auto project = reopen(dir);
    ledger::LogRow row;
    row.skill_name = "plausibility-auditor";
    row.outcome = "STOP";
    json body = {{"skill", "plausibility-auditor"},
                 {"kind", "budget"},
                 {"loop", "plausibility-auditor/S03"},
                 {"scope", {{"scene_id", "S03"}}},
                 {"reason", "budget: the project cap would be passed"},
                 {"findings", json::array()},
                 {"cap", "project"},
                 {"needed_micro_usd", 2'500'000}};
    REQUIRE(project->ledger().begin_run("test", json::object()).ok());
    auto stop = project->ledger().append(ledger::EventDraft{.kind = "run.hard_stop", .body = body, .row = row});
    REQUIRE(stop.ok());
    REQUIRE(project->ledger().end_run("STOP", json::object()).ok());
    return std::make_pair(dir, stop->seq);
  };
  auto request = [](int64_t seq) {
    return governance::OverrideRequest{"STOP-" + std::to_string(seq), "approved by the producer", "1250",
                                       std::nullopt, std::nullopt};
  };
  auto overrides_of = [](project::Project& project) {
    ledger::Ledger::EventQuery query;
    query.kinds = {"stop.override"};
    return project.ledger().events(query).value().size();
  };
  auto budget_status_of = [](project::Project& project) {
    return project.ledger().find_artifact("BUDGET_STATUS_v001.md").value();
  };
  const auto [stopped, seq] = stopped_project(initialized);
  core::FaultCounts counts;
  {
    testing::TempDir tmp(scratch_root());
    fs::path dir = copy_of(stopped, tmp);
    auto project = open_counting(dir);
    core::set_fault_point("count");
    auto recorded = governance::record_override(*project, request(seq));
    INFO((recorded.ok() ? std::string() : recorded.error().message));
    REQUIRE(recorded.ok());
    REQUIRE(recorded->budget_status == "BUDGET_STATUS_v001.md");
    counts = core::fault_counts();
  }
  for (const std::string& plan : every_fault(counts)) {
    DYNAMIC_SECTION(plan) {
      testing::TempDir tmp(scratch_root());
      fs::path dir = copy_of(stopped, tmp);
      {
        auto project = open_counting(dir);
        core::set_fault_point(plan);
        auto recorded = governance::record_override(*project, request(seq));
        core::set_fault_point("");
        REQUIRE_FALSE(recorded.ok());
        check_failure(recorded.error());
      }
      auto project = reopen(dir);
      check_recovered(dir, *project);
      // The same command again: it records the decision if it was lost, and the BUDGET_STATUS
      // under the new cap if only that was; never a second decision.
      auto again = governance::record_override(*project, request(seq));
      if (overrides_of(*project) == 1 && !again.ok()) {
        CHECK_THAT(again.error().message, Catch::Contains("already overridden"));
      }
      CHECK(overrides_of(*project) == 1);
      CHECK(budget_status_of(*project).has_value());
      check_recovered(dir, *project);
    }
  }
}
