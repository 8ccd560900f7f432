#include <catch2/catch.hpp>
#include <algorithm>

#include <sqlite3.h>

#include <atomic>
#include <random>
#include <thread>

#include "avps/governance/budget.hpp"
#include "support/crash.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
namespace fs = std::filesystem;

namespace {

// A ledger in a fresh folder; on tmpfs when there is one, since the stress test commits a lot.
struct BudgetFixture {
  testing::FixedClock clock;
  fs::path dir;
  std::unique_ptr<ledger::Ledger> ledger;

  explicit BudgetFixture(const fs::path& root) : dir(root / "film") {
    fs::create_directories(dir / ".avps");
    ledger = ledger::Ledger::create(dir, clock).value();
    REQUIRE(ledger->begin_run("budget test", {}).ok());
  }
};

project::Budget caps(int64_t project, std::optional<int64_t> scene = std::nullopt,
                     std::optional<int64_t> shot = std::nullopt) {
  project::Budget b;
  b.project_cap_micro_usd = project;
  b.scene_cap_micro_usd = scene;
  b.shot_cap_micro_usd = shot;
  b.warn_pct = 90;
  return b;
}

ledger::Reservation call(const std::string& id, int64_t amount, const std::string& scene = "S01",
                         const std::string& shot = "") {
  return ledger::Reservation{id, scene, shot, amount, "test call " + id};
}

fs::path fast_temp_root() {
  return fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
}

}  // namespace

TEST_CASE("a reservation that would pass the project cap is refused before the call, and logged", "[governance][budget]") {
  testing::TempDir tmp;
  BudgetFixture f(tmp.path());
  governance::BudgetGovernor governor(*f.ledger, caps(1'000));
  REQUIRE(governor.reserve(call("a", 600)).ok());
  auto refused = governor.reserve(call("b", 401));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::budget_exceeded);
  CHECK_THAT(refused.error().message, Catch::Contains("project"));
  CHECK(f.ledger->open_reservations().value().size() == 1);
  // The refusal is a STOP row of the run log.
  auto events = f.ledger->events().value();
  CHECK(events.back().kind == "budget.refused");
  CHECK(events.back().row()->outcome == "STOP");
  // Exactly up to the cap is allowed.
  CHECK(governor.reserve(call("c", 400)).ok());
}

TEST_CASE("scene and shot caps apply to the calls of that scene or shot", "[governance][budget]") {
  testing::TempDir tmp;
  BudgetFixture f(tmp.path());
  governance::BudgetGovernor governor(*f.ledger, caps(10'000, 500, 200));
  REQUIRE(governor.reserve(call("s1", 300, "S01")).ok());
  CHECK_FALSE(governor.reserve(call("s2", 201, "S01")).ok());      // scene S01 would reach 501
  CHECK(governor.reserve(call("s3", 450, "S02")).ok());            // another scene
  CHECK_FALSE(governor.reserve(call("s4", 201, "S03", "S03_SH01")).ok());  // one shot over 200
  CHECK(governor.reserve(call("s5", 200, "S03", "S03_SH01")).ok());
}

TEST_CASE("settling returns the unspent part, and a reservation ends exactly once", "[governance][budget]") {
  testing::TempDir tmp;
  BudgetFixture f(tmp.path());
  governance::BudgetGovernor governor(*f.ledger, caps(1'000));
  ledger::Reservation r = governor.reserve(call("a", 800)).value();
  REQUIRE(governor.settle(r, 300, 306).ok());
  CHECK(f.ledger->spend("", "").value().committed_micro_usd == 300);
  CHECK(f.ledger->spend("", "").value().outstanding_micro_usd == 0);
  CHECK_FALSE(governor.settle(r, 300, std::nullopt).ok());
  CHECK_FALSE(governor.release(r, "again").ok());
  // The released 500 is available again.
  CHECK(governor.reserve(call("b", 700)).ok());
  auto totals = f.ledger->budget_totals().value();
  CHECK(totals.reserved == 1'500);
  CHECK(totals.settled + totals.released == 800);
  CHECK(f.ledger->verify().empty());
}

TEST_CASE("after a crash a reservation whose call may have left counts as spent, one never sent is released",
          "[governance][budget][crash]") {
  testing::TempDir tmp;
  fs::path dir = tmp.path() / "film";
  {
    BudgetFixture f(tmp.path());
  }
  bool crashed = testing::run_until_crash("ledger.after_commit:3", [&] {
    testing::FixedClock clock;
    auto ledger = ledger::Ledger::open(dir, ledger::OpenMode::read_write, clock).value();
    std::ignore = ledger->begin_run("crashing", {});
    governance::BudgetGovernor governor(*ledger, caps(1'000));
    std::ignore = governor.reserve(call("in-flight", 250));
    std::ignore = governor.reserve(call("queued", 100));  // killed right after it commits
  });
  REQUIRE(crashed);
  testing::FixedClock clock;
  auto ledger = ledger::Ledger::open(dir, ledger::OpenMode::read_write, clock).value();
  REQUIRE(ledger->begin_run("resume", {}).ok());
  governance::BudgetGovernor governor(*ledger, caps(1'000));
  auto reconciled = governor.reconcile_open_reservations(
      [](const ledger::Reservation& r) { return r.id == "in-flight"; });
  REQUIRE(reconciled.ok());
  CHECK(reconciled->counted_as_spent == 1);
  CHECK(reconciled->released == 1);
  CHECK(reconciled->spent_micro_usd == 250);
  CHECK(ledger->open_reservations().value().empty());
  CHECK(ledger->spend("", "").value().committed_micro_usd == 250);
  std::vector<ledger::Event> events = ledger->events().value();
  CHECK(std::any_of(events.begin(), events.end(), [](const ledger::Event& e) { return e.kind == "budget.reconciled"; }));
  CHECK(std::any_of(events.begin(), events.end(), [](const ledger::Event& e) {
    return e.kind == "budget.released" && e.body.value("why", "").find("not sent") == 0;
  }));
  auto again = governor.reconcile_open_reservations([](const ledger::Reservation&) { return true; });
  CHECK(again.value().counted_as_spent + again.value().released == 0);
}

TEST_CASE("an edited reservation is caught by the ledger's verify", "[governance][budget][tamper]") {
  testing::TempDir tmp;
  BudgetFixture f(tmp.path());
  governance::BudgetGovernor governor(*f.ledger, caps(1'000));
  REQUIRE(governor.reserve(call("a", 600)).ok());
  f.ledger.reset();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(ledger::ledger_path(f.dir).c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "UPDATE reservations SET amount_micro_usd = 1", nullptr, nullptr, nullptr) == SQLITE_CONSTRAINT);
  REQUIRE(sqlite3_exec(db, "DROP TRIGGER reservations_no_update; UPDATE reservations SET amount_micro_usd = 1", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto reopened = ledger::Ledger::open(f.dir, ledger::OpenMode::read_only, f.clock).value();
  auto violations = reopened->verify();
  CHECK(std::any_of(violations.begin(), violations.end(), [](const core::Violation& v) { return v.rule == "ledger.budget"; }));
}

TEST_CASE("64 concurrent callers never push committed spend past a cap, and every reservation balances",
          "[governance][budget][stress]") {
  // Randomized, seeded: 200 runs, each with 64 threads reserving worst cases against a project
  // cap and scene caps, then settling at an actual cost between zero and the reservation (or
  // releasing). Afterwards: nothing open, reserved == settled + released, spend within caps.
  std::mt19937_64 seeds(20261125);
  for (int run = 0; run < 200; ++run) {
    const uint64_t seed = seeds();
    testing::TempDir tmp;  // (on /dev/shm below when available)
    fs::path root = fast_temp_root() / ("avps-budget-" + std::to_string(::getpid()) + "-" + std::to_string(run));
    fs::create_directories(root);
    {
      BudgetFixture f(root);
      std::mt19937_64 setup(seed);
      const int64_t project_cap = 20'000 + static_cast<int64_t>(setup() % 40'000);
      const int64_t scene_cap = project_cap / 3;
      governance::BudgetGovernor governor(*f.ledger, caps(project_cap, scene_cap));
      std::atomic<int> granted{0};
      std::atomic<int> refused{0};
      std::atomic<bool> unexpected{false};
      std::vector<std::thread> threads;
      for (int t = 0; t < 64; ++t) {
        threads.emplace_back([&, t] {
          std::mt19937_64 random(seed ^ (static_cast<uint64_t>(t) * 0x9E3779B97F4A7C15ull));
          for (int i = 0; i < 2; ++i) {
            std::string id = "r" + std::to_string(t) + "_" + std::to_string(i);
            std::string scene = "S0" + std::to_string(1 + random() % 4);
            int64_t amount = 1 + static_cast<int64_t>(random() % 3'000);
            Result<ledger::Reservation> r = governor.reserve(call(id, amount, scene));
            if (!r) {
              unexpected = unexpected || r.error().code != ErrorCode::budget_exceeded;
              ++refused;
              continue;
            }
            ++granted;
            Result<void> ended = random() % 5 == 0 ? governor.release(*r, "cancelled")
                                                    : governor.settle(*r, static_cast<int64_t>(random() % (amount + 1)),
                                                                      std::nullopt);
            unexpected = unexpected || !ended.ok();
          }
        });
      }
      // While they run, committed + reserved never passes the cap, at any moment.
      std::atomic<bool> done{false};
      std::atomic<bool> over_cap{false};
      std::thread watcher([&] {
        while (!done) {
          Result<ledger::Spend> now = f.ledger->spend("", "");
          over_cap = over_cap || !now || now->total() > project_cap;
        }
      });
      for (std::thread& thread : threads) {
        thread.join();
      }
      done = true;
      watcher.join();
      CHECK_FALSE(over_cap);
      INFO("run " << run << " seed " << seed << " granted " << granted << " refused " << refused);
      REQUIRE_FALSE(unexpected);
      auto totals = f.ledger->budget_totals().value();
      CHECK(totals.reserved == totals.settled + totals.released);
      CHECK(totals.overrun == 0);
      CHECK(f.ledger->open_reservations().value().empty());
      CHECK(f.ledger->spend("", "").value().committed_micro_usd <= project_cap);
      {
        // The writer's running project totals equal a fresh sum over the whole record.
        testing::FixedClock clock;
        auto reader = ledger::Ledger::open(f.dir, ledger::OpenMode::read_only, clock).value();
        const ledger::Spend kept = f.ledger->spend("", "").value();
        const ledger::Spend summed = reader->spend("", "").value();
        CHECK(kept.committed_micro_usd == summed.committed_micro_usd);
        CHECK(kept.outstanding_micro_usd == summed.outstanding_micro_usd);
      }
      for (const char* scene : {"S01", "S02", "S03", "S04"}) {
        CHECK(f.ledger->spend(scene, "").value().committed_micro_usd <= scene_cap);
      }
      if (run % 50 == 0) {
        auto violations = f.ledger->verify();
        for (const auto& v : violations) {
          UNSCOPED_INFO(v.rule << " " << v.subject << ": " << v.message);
        }
        CHECK(violations.empty());  // the full record, now and then
      }
    }
    fs::remove_all(root);
  }
}
