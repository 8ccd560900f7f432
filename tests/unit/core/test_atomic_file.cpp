#include <catch2/catch.hpp>

#include <filesystem>

#include "avps/core/csv.hpp"
#include "avps/core/fs.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
namespace fs = std::filesystem;

TEST_CASE("an uncommitted AtomicFile leaves no file and no temp file behind", "[core][fs]") {
  testing::TempDir dir;
  {
    auto file = core::AtomicFile::create(dir.path() / "a.txt", core::Durability::durable);
    REQUIRE(file.ok());
    REQUIRE(file->write("half").ok());
  }
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("write-once publishing never replaces an existing file", "[core][fs]") {
  // Given a file, when another write-once write targets the same path, then it fails with
  // already_exists and the original bytes are intact.
  testing::TempDir dir;
  fs::path path = dir.path() / "a.txt";
  REQUIRE(core::write_file_atomic(path, "first", core::Overwrite::no, core::Durability::durable).ok());
  Result<void> second = core::write_file_atomic(path, "second", core::Overwrite::no, core::Durability::durable);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == ErrorCode::already_exists);
  CHECK(core::read_file(path).value() == "first");
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("Overwrite::yes replaces a file atomically", "[core][fs]") {
  testing::TempDir dir;
  fs::path path = dir.path() / "HEAD";
  REQUIRE(core::write_file_atomic(path, "one", core::Overwrite::yes, core::Durability::durable).ok());
  REQUIRE(core::write_file_atomic(path, "two", core::Overwrite::yes, core::Durability::durable).ok());
  CHECK(core::read_file(path).value() == "two");
}

TEST_CASE("read_file_tail reads the last bytes of a file, the whole of a shorter one, and names a missing one",
          "[core][fs]") {
  testing::TempDir dir;
  const fs::path path = dir.path() / "log.csv";
  REQUIRE(core::write_file_atomic(path, "header\nrow 1\nrow 2\n", core::Overwrite::no, core::Durability::cached).ok());
  CHECK(core::read_file_tail(path, 6).value() == "row 2\n");
  CHECK(core::read_file_tail(path, 1000).value() == "header\nrow 1\nrow 2\n");
  CHECK(core::read_file_tail(path, 0).value().empty());
  auto missing = core::read_file_tail(dir.path() / "none.csv", 6);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::not_found);
}

TEST_CASE("CSV records round-trip through quoting, commas, quotes and newlines", "[core][csv]") {
  core::CsvRecord record = {"plain", "a,b", "say \"hi\"", "two\nlines", ""};
  std::string text = core::csv_format_record(record) + core::csv_format_record({"x"});
  auto parsed = core::csv_parse(text);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->size() == 2);
  CHECK((*parsed)[0] == record);
  CHECK((*parsed)[1] == core::CsvRecord{"x"});
}

TEST_CASE("CSV parsing names the line of an unterminated quote", "[core][csv]") {
  auto parsed = core::csv_parse("a,b\nc,\"open\n");
  REQUIRE_FALSE(parsed.ok());
  CHECK_THAT(parsed.error().message, Catch::Contains("line 2"));
}

TEST_CASE("an AtomicFile's temp file is recognised as one, and artifact names are not", "[core][fs]") {
  testing::TempDir dir;
  auto file = core::AtomicFile::create(dir.path() / "BEATS_v001.md", core::Durability::cached);
  REQUIRE(file.ok());
  auto entry = fs::directory_iterator(dir.path());
  REQUIRE(entry != fs::directory_iterator());
  CHECK(core::is_atomic_temp_name(entry->path().filename().string()));
  CHECK_FALSE(core::is_atomic_temp_name("BEATS_v001.md"));
  CHECK_FALSE(core::is_atomic_temp_name(".tmp"));
}
