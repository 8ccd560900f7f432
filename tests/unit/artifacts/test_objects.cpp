// Objects are used only as their names vouch for them: read_object re-hashes what it returns.

#include <catch2/catch.hpp>

#include "avps/artifacts/store.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "support/temp_dir.hpp"

using namespace avps;

TEST_CASE("an object is returned only while its bytes match its name", "[objects]") {
  testing::TempDir tmp;
  const std::string answer = R"({"title":"The Lighthouse Keeper's Daughter"})";
  const std::string sha = core::sha256_hex(answer);
  const auto path = artifacts::object_path(tmp.path(), sha);
  REQUIRE(core::create_directories_durable(path.parent_path()).ok());
  REQUIRE(core::write_file_atomic(path, answer, core::Overwrite::no, core::Durability::cached).ok());

  auto read = artifacts::read_object(tmp.path(), sha);
  REQUIRE(read.ok());
  CHECK(*read == answer);

  // Edited by hand: refused, naming the object, never returned.
  std::filesystem::remove(path);
  REQUIRE(core::write_file_atomic(path, R"({"title":"edited"})", core::Overwrite::no, core::Durability::cached).ok());
  auto edited = artifacts::read_object(tmp.path(), sha);
  REQUIRE_FALSE(edited.ok());
  CHECK(edited.error().code == ErrorCode::corruption);
  CHECK(edited.error().message.find(".avps/objects/" + sha.substr(0, 2) + "/" + sha.substr(2) + ".json") !=
        std::string::npos);

  // Gone: not_found, naming it.
  std::filesystem::remove(path);
  auto gone = artifacts::read_object(tmp.path(), sha);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().code == ErrorCode::not_found);
  CHECK(gone.error().message.find("is gone") != std::string::npos);

  // A malformed name from a damaged record is not a path to read.
  auto malformed = artifacts::read_object(tmp.path(), "../../etc/passwd");
  REQUIRE_FALSE(malformed.ok());
  CHECK(malformed.error().code == ErrorCode::corruption);
}
