#include <catch2/catch.hpp>

#include "avps/core/fs.hpp"
#include "avps/project/config.hpp"
#include "support/temp_dir.hpp"

using namespace avps;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json minimal_project() {
  return json::parse(R"({
    "title": "T",
    "budget": {"project_cap_usd": 100},
    "style": {"visual_style": "v", "palette": "p", "lighting": "l", "camera_language": "c",
              "aspect_ratio": "16:9", "frame_rate": 24,
              "resolution": {"proxy": "640x360", "final": "1920x1080"},
              "forbidden_drift": ["x"]}
  })");
}

project::ConfigSources sources(const fs::path& dir) {
  return project::ConfigSources{dir, AVPS_SOURCE_DATA_DIR, {}, {}};
}

std::string error_of(const json& project_layer, project::ConfigSources s) {
  auto loaded = project::load_config_from(project_layer, s);
  REQUIRE_FALSE(loaded.ok());
  return loaded.error().message;
}

}  // namespace

TEST_CASE("a minimal avps.json is completed from the shipped defaults and policies", "[config]") {
  testing::TempDir dir;
  auto config = project::load_config_from(minimal_project(), sources(dir.path()));
  REQUIRE(config.ok());
  CHECK(config->budget.project_cap_micro_usd == 100'000'000);
  CHECK_FALSE(config->budget.scene_cap_micro_usd.has_value());
  CHECK(config->budget.warn_pct == 90);                                  // policies/project_defaults.json
  CHECK(config->document["thresholds"]["qc"]["A"] == 12);
  CHECK(config->document["regen"]["attempts"]["B"] == 2);
  CHECK(config->brief == dir.path() / "brief.md");                       // built-in default
}

TEST_CASE("later layers win: project < environment < --set", "[config]") {
  testing::TempDir dir;
  auto s = sources(dir.path());
  json project_layer = minimal_project();
  project_layer["seed"] = 7;
  project_layer["budget"]["scene_cap_usd"] = 10;
  s.environment["AVPS_PROJECT_CAP_USD"] = "250.5";
  s.environment["AVPS_SEED"] = "8";
  s.environment["UNRELATED"] = "1";
  s.overrides.push_back(project::parse_override("/seed=9").value());
  auto config = project::load_config_from(project_layer, s);
  REQUIRE(config.ok());
  CHECK(config->budget.project_cap_micro_usd == 250'500'000);  // env over the project
  CHECK(config->seed == 9);                                    // --set over env
  CHECK(config->budget.scene_cap_micro_usd == 10'000'000);     // untouched project value
}

TEST_CASE("a project's own policies file replaces the shipped one", "[config]") {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "policies");
  json policies = json::parse(core::read_file(fs::path(AVPS_SOURCE_DATA_DIR) / "policies/project_defaults.json").value());
  policies["thresholds"]["plaus_total"] = 8;
  REQUIRE(core::write_file_atomic(dir.path() / "policies/project_defaults.json", policies.dump(),
                                  core::Overwrite::no, core::Durability::cached).ok());
  auto config = project::load_config_from(minimal_project(), sources(dir.path()));
  REQUIRE(config.ok());
  CHECK(config->document["thresholds"]["plaus_total"] == 8);
}

TEST_CASE("config errors name the pointer, what was expected, what was found, and where it came from", "[config]") {
  testing::TempDir dir;
  json missing_cap = minimal_project();
  missing_cap["budget"].erase("project_cap_usd");
  std::string message = error_of(missing_cap, sources(dir.path()));
  CHECK_THAT(message, Catch::Contains("/budget/project_cap_usd: expected a value (required), found nothing"));

  json wrong_type = minimal_project();
  wrong_type["budget"]["project_cap_usd"] = "lots";
  message = error_of(wrong_type, sources(dir.path()));
  CHECK_THAT(message, Catch::Contains("/budget/project_cap_usd: expected number"));
  CHECK_THAT(message, Catch::Contains("found \"lots\""));
  CHECK_THAT(message, Catch::Contains("avps.json"));

  json typo = minimal_project();
  typo["budgte"] = 1;
  CHECK_THAT(error_of(typo, sources(dir.path())), Catch::Contains("/budgte: expected no such property"));

  auto s = sources(dir.path());
  s.environment["AVPS_SEED"] = "-3";
  message = error_of(minimal_project(), s);
  CHECK_THAT(message, Catch::Contains("/seed"));
  CHECK_THAT(message, Catch::Contains("environment variable AVPS_SEED"));
}

TEST_CASE("set overrides accept JSON values and plain strings, and refuses malformed pointers", "[config]") {
  CHECK(project::parse_override("/budget/project_cap_usd=500").value().value == 500);
  CHECK(project::parse_override("/title=A film").value().value == "A film");
  CHECK_FALSE(project::parse_override("title=x").ok());
  CHECK_FALSE(project::parse_override("/a=").value().value.is_null());
}

TEST_CASE("money converts to integer micro-USD without float drift", "[config]") {
  CHECK(project::usd_to_micro(0.1) == 100'000);
  CHECK(project::usd_to_micro(15000) == 15'000'000'000);
  CHECK(project::usd_to_micro(0.0000005) == 1);
}
