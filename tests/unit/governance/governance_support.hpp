#pragma once
// Shared helpers of the governance tests: models files built in memory, fixtures read from the
// repository, schema validation of produced artifacts.

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/governance/models.hpp"

namespace avps::testing {

inline std::filesystem::path repo_root() { return std::filesystem::path(AVPS_SOURCE_DATA_DIR); }

inline nlohmann::json read_repo_json(const std::string& relative) {
  auto text = core::read_file(repo_root() / relative);
  REQUIRE(text.ok());
  auto parsed = core::parse_json(*text, relative);
  REQUIRE(parsed.ok());
  return std::move(parsed).value();
}

/// A text model entry of a models file.
inline nlohmann::json text_model(const std::string& id, const std::string& tier, int64_t in_price,
                                 int64_t out_price, bool json_schema = true, bool vision = false,
                                 int64_t context = 128000) {
  return {{"id", id},
          {"backend", "sim"},
          {"tiers", {tier}},
          {"capabilities",
           {{"text", true},
            {"json_schema", json_schema},
            {"vision", vision},
            {"image_out", false},
            {"video_out", false},
            {"context_tokens", context}}},
          {"pricing", {{"input_per_mtok_micro_usd", in_price}, {"output_per_mtok_micro_usd", out_price}}},
          {"price_as_of", "2026-11-01"},
          {"price_source", "test price"}};
}

/// A video model entry: per-second prices by resolution.
inline nlohmann::json video_model(const std::string& id, const std::string& tier,
                                  const nlohmann::json& per_second) {
  return {{"id", id},
          {"backend", "sim"},
          {"tiers", {tier}},
          {"capabilities",
           {{"text", false},
            {"json_schema", false},
            {"vision", false},
            {"image_out", false},
            {"video_out", true},
            {"context_tokens", 0}}},
          {"pricing", {{"per_video_second_micro_usd", per_second}}},
          {"price_as_of", "2026-11-01"},
          {"price_source", "test price"}};
}

/// A models file of these entries (a vector, so that one entry is not taken for the array).
inline governance::ModelsFile models_from(const std::vector<nlohmann::json>& models) {
  nlohmann::json document = {{"format_version", 1}, {"models", models}};
  auto file = governance::ModelsFile::from_json(repo_root(), document, "test");
  INFO((file.ok() ? std::string() : file.error().message));
  REQUIRE(file.ok());
  return std::move(file).value();
}

inline governance::ModelsFile fixture_models() {
  auto file =
      governance::ModelsFile::load_file(repo_root(), repo_root() / "tests/fixtures/artifacts/models.json");
  REQUIRE(file.ok());
  return std::move(file).value();
}

inline governance::ModelsFile shipped_models() {
  auto file = governance::ModelsFile::load_file(repo_root(), repo_root() / "policies/models.json");
  INFO((file.ok() ? std::string() : file.error().message));
  REQUIRE(file.ok());
  return std::move(file).value();
}

/// The schema problems of `instance` against schemas/<file>, one per line ("" when valid).
inline std::string schema_problems(const std::string& file, const nlohmann::json& instance) {
  auto schema = core::JsonSchema::load(repo_root() / "schemas" / file);
  REQUIRE(schema.ok());
  std::string out;
  for (const core::SchemaIssue& issue : schema->validate(instance)) {
    out += issue.to_string() + "\n";
  }
  return out;
}

}  // namespace avps::testing
