// The models file: the shipped one is complete and honest about its prices, a project's file
// replaces it, and a broken file is refused with every offending pointer named.

#include <catch2/catch.hpp>
#include <regex>

#include "avps/governance/models.hpp"
#include "avps/governance/router.hpp"
#include "avps/skills/registry.hpp"
#include "support/temp_dir.hpp"
#include "unit/governance/governance_support.hpp"

namespace {

namespace fs = std::filesystem;
using namespace avps;
using namespace avps::governance;
using avps::testing::read_repo_json;
using avps::testing::repo_root;
using nlohmann::json;

project::Config config_with(const json& document) {
  project::Config config;
  config.document = document;
  return config;
}

std::string load_error(const json& document) {
  auto file = ModelsFile::from_json(repo_root(), document, "my-models.json");
  REQUIRE_FALSE(file.ok());
  CHECK(file.error().code == ErrorCode::configuration);
  return file.error().message;
}

}  // namespace

TEST_CASE("the shipped models file validates and every tier has two models with dated, sourced prices",
          "[governance]") {
  auto file = ModelsFile::load(repo_root(), fs::path(), config_with(json::object()));
  REQUIRE(file.ok());
  CHECK(file->source() == (repo_root() / "policies" / "models.json").string());
  for (const std::string& tier : model_tiers()) {
    INFO(tier);
    CHECK(file->in_tier(tier).size() >= 2);
  }
  std::regex month_year("^illustrative list price, [A-Z][a-z]+ [0-9]{4}");
  for (const Model& model : file->models()) {
    INFO(model.id);
    CHECK(model.backend == "sim");  // the default runs offline
    REQUIRE(model.pricing.has_value());
    CHECK(std::regex_match(model.price_as_of, std::regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$")));
    CHECK(std::regex_search(model.price_source, month_year));
    bool text = std::any_of(model.tiers.begin(), model.tiers.end(), [](auto& t) { return is_text_tier(t); });
    if (text) {
      CHECK(model.pricing->input_per_mtok.value_or(0) > 0);
      CHECK(model.pricing->output_per_mtok.value_or(0) > 0);
    } else {
      CHECK(model.capabilities.video_out);
      CHECK_FALSE(model.pricing->per_video_second.empty());
      for (const auto& [resolution, price] : model.pricing->per_video_second) {
        CHECK(price > 0);
      }
    }
  }
}

TEST_CASE("every shipped model skill routes to a capable shipped model at its default tier", "[governance]") {
  auto registry = skills::Registry::load(repo_root(), nullptr);
  REQUIRE(registry.ok());
  Router router(avps::testing::shipped_models());
  int routed = 0;
  for (const auto& [name, skill] : registry->skills()) {
    if (skill.executor != skills::Executor::model) {
      continue;
    }
    INFO(name);
    auto task = Task::for_skill(skill, 8000);
    REQUIRE(task.ok());
    auto route = router.route(*task);
    INFO((route.ok() ? std::string() : route.error().message));
    REQUIRE(route.ok());
    CHECK(route->tier == skill.tier->default_tier);
    CHECK(route->worst_case_micro_usd > 0);
    ++routed;
  }
  CHECK(routed > 10);
}

TEST_CASE("a project's own models file replaces the shipped one", "[governance]") {
  avps::testing::TempDir dir;
  json own = {{"format_version", 1},
              {"models", json::array({avps::testing::text_model("house-t1", "t1", 1, 2)})}};
  REQUIRE(core::write_file_atomic(dir.path() / "my-models.json", own.dump(), core::Overwrite::no,
                                  core::Durability::cached)
              .ok());
  auto file = ModelsFile::load(repo_root(), dir.path(), config_with({{"models", "my-models.json"}}));
  REQUIRE(file.ok());
  CHECK(file->source() == (dir.path() / "my-models.json").string());
  CHECK(file->models().size() == 1);
  CHECK(file->find("house-t1") != nullptr);
  CHECK(file->find("sim-t1-small") == nullptr);  // no merge with the shipped file

  auto missing = ModelsFile::load(repo_root(), dir.path(), config_with({{"models", "nope.json"}}));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::configuration);
  CHECK_THAT(missing.error().message, Catch::Contains("nope.json"));
}

TEST_CASE("a models file that breaks the schema is refused naming every offending pointer", "[governance]") {
  json good = avps::testing::text_model("a", "t1", 1, 2);
  json negative = avps::testing::text_model("b", "t2", -5, 2);
  json undated = avps::testing::text_model("c", "t3", 1, 2);
  undated.erase("price_as_of");
  json bad_tier = avps::testing::text_model("d", "t9", 1, 2);
  std::string message = load_error({{"format_version", 1}, {"models", {good, negative, undated, bad_tier}}});
  CHECK_THAT(message, Catch::Contains("my-models.json"));
  CHECK_THAT(message, Catch::Contains("/models/1/pricing/input_per_mtok_micro_usd"));
  CHECK_THAT(message, Catch::Contains("/models/2"));
  CHECK_THAT(message, Catch::Contains("/models/3/tiers/0"));
  CHECK_THAT(message, !Catch::Contains("/models/0"));
}

TEST_CASE("model ids must be unique in a models file", "[governance]") {
  json a = avps::testing::text_model("same", "t1", 1, 2);
  json b = avps::testing::text_model("other", "t2", 1, 2);
  json c = avps::testing::text_model("same", "t3", 1, 2);
  std::string message = load_error({{"format_version", 1}, {"models", {a, b, c}}});
  CHECK_THAT(message, Catch::Contains("/models/2/id"));
  CHECK_THAT(message, Catch::Contains("/models/0"));
}

TEST_CASE("the fixture models file loads with its unpriced model kept unpriced, not free", "[governance]") {
  ModelsFile file = avps::testing::fixture_models();
  const Model* comfy = file.find("local-comfyui");
  REQUIRE(comfy != nullptr);
  CHECK_FALSE(comfy->pricing.has_value());
  const Model* mid = file.find("sim-video-mid");
  REQUIRE(mid != nullptr);
  CHECK_FALSE(mid->pricing->per_image.has_value());  // absent, not 0
  CHECK(mid->pricing->per_video_second.at("640x360") == 50000);
}
