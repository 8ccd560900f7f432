#pragma once
// The source tree and its artifact fixtures (tests/fixtures/artifacts/<name>.json), for the gate
// contexts (fake_gate_context.hpp) and the fixture projects (fixture_film.hpp) alike: one
// definition, so that test files using either can share a unity batch.

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"

namespace avps::testing {

inline std::filesystem::path source_dir() { return std::filesystem::path(AVPS_SOURCE_DATA_DIR); }

/// The JSON of the file at `path`; a file that cannot be read or parsed fails the test case.
inline nlohmann::json json_file(const std::filesystem::path& path) {
  auto text = core::read_file(path);
  INFO(path.string());
  REQUIRE(text.ok());
  auto parsed = core::parse_json(*text, path.string());
  REQUIRE(parsed.ok());
  return std::move(parsed).value();
}

/// The canonical JSON of the artifact fixture `name` ("char_lock", "qc_batch", ...):
/// tests/fixtures/artifacts/<name>.json
inline nlohmann::json artifact_fixture(const std::string& name) {
  return json_file(source_dir() / "tests" / "fixtures" / "artifacts" / (name + ".json"));
}

}  // namespace avps::testing
