// Objects are used only as their names vouch for them: read_object re-hashes what it returns,
// whether the ledger holds the object (schema 3) or it is a file (a large one, or one stored by
// an older avps).

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include "avps/artifacts/store.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<ledger::Ledger> new_ledger(const testing::TempDir& tmp, const core::Clock& clock) {
  fs::create_directories(tmp.path() / ".avps");
  auto created = ledger::Ledger::create(tmp.path(), clock);
  REQUIRE(created.ok());
  return std::move(created).value();
}

// What a person with the sqlite3 shell could do to the ledger's object table.
void edit_object(const fs::path& dir, const std::string& sha, const std::string& bytes) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(ledger::ledger_path(dir).c_str(), &db) == SQLITE_OK);
  const std::string sql = "DROP TRIGGER IF EXISTS objects_no_update; UPDATE objects SET bytes = CAST('" + bytes +
                          "' AS BLOB) WHERE sha256 = '" + sha + "'";
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

}  // namespace

TEST_CASE("an object the ledger holds is returned only while its bytes match its name", "[objects]") {
  testing::TempDir tmp;
  testing::FixedClock clock;
  auto ledger = new_ledger(tmp, clock);
  const std::string answer = R"({"title":"The Lighthouse Keeper's Daughter"})";
  const std::string sha = artifacts::store_object(*ledger, answer).value();
  CHECK(sha == core::sha256_hex(answer));
  CHECK_FALSE(fs::exists(artifacts::object_path(tmp.path(), sha)));  // in the ledger, no file
  CHECK(artifacts::read_object(*ledger, sha).value() == answer);
  // Stored again: once (same name, same bytes).
  CHECK(artifacts::store_object(*ledger, answer).value() == sha);
  CHECK(artifacts::object_subject(*ledger, sha) == "object " + sha + " (.avps/ledger.db)");

  // Edited behind the ledger's back: refused, naming the object, never returned.
  ledger.reset();
  edit_object(tmp.path(), sha, R"({"title":"edited"})");
  auto reader = ledger::Ledger::open(tmp.path(), ledger::OpenMode::read_only, clock).value();
  auto edited = artifacts::read_object(*reader, sha);
  REQUIRE_FALSE(edited.ok());
  CHECK(edited.error().code == ErrorCode::corruption);
  CHECK_THAT(edited.error().message, Catch::Contains(sha) && Catch::Contains("no longer matches its hash"));
  // ... and the dropped trigger is reported by the ledger's own check.
  bool trigger_reported = false;
  for (const core::Violation& v : reader->verify()) {
    trigger_reported = trigger_reported ||
                       (v.rule == "ledger.append_only" && v.message.find("objects_no_update") != std::string::npos);
  }
  CHECK(trigger_reported);

  // Unknown: not_found, naming it. A malformed name from a damaged record is not a path to read.
  const std::string unknown = core::sha256_hex("never stored");
  auto gone = artifacts::read_object(*reader, unknown);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().code == ErrorCode::not_found);
  CHECK_THAT(gone.error().message, Catch::Contains("is gone"));
  auto malformed = artifacts::read_object(*reader, "../../etc/passwd");
  REQUIRE_FALSE(malformed.ok());
  CHECK(malformed.error().code == ErrorCode::corruption);
}

TEST_CASE("a large object, or one an older avps stored, is a file, read and verified the same way", "[objects]") {
  testing::TempDir tmp;
  testing::FixedClock clock;
  auto ledger = new_ledger(tmp, clock);
  // Over the ledger's limit (a real render): a durable file under .avps/objects.
  const std::string render(artifacts::k_ledger_object_max_bytes + 1, 'v');
  const std::string big = artifacts::store_object(*ledger, render).value();
  const fs::path path = artifacts::object_path(tmp.path(), big);
  CHECK(core::read_file(path).value() == render);
  CHECK(artifacts::read_object(*ledger, big).value() == render);
  CHECK(ledger->object(big).value() == std::nullopt);

  // A schema-2 object: a file the ledger does not hold.
  const std::string old_answer = R"({"old":true})";
  const std::string old = core::sha256_hex(old_answer);
  const fs::path old_path = artifacts::object_path(tmp.path(), old);
  REQUIRE(core::create_directories_durable(old_path.parent_path()).ok());
  REQUIRE(core::write_file_atomic(old_path, old_answer, core::Overwrite::no, core::Durability::cached).ok());
  CHECK(artifacts::read_object(*ledger, old).value() == old_answer);
  CHECK(artifacts::object_subject(*ledger, old) == ".avps/objects/" + old.substr(0, 2) + "/" + old.substr(2) + ".json");

  // Edited on disk: refused, naming the file.
  fs::remove(old_path);
  REQUIRE(core::write_file_atomic(old_path, R"({"old":false})", core::Overwrite::no, core::Durability::cached).ok());
  auto edited = artifacts::read_object(*ledger, old);
  REQUIRE_FALSE(edited.ok());
  CHECK(edited.error().code == ErrorCode::corruption);
  CHECK_THAT(edited.error().message,
             Catch::Contains(".avps/objects/" + old.substr(0, 2) + "/" + old.substr(2) + ".json"));
}
