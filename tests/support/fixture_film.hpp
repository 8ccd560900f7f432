#pragma once
// Test fixtures of the artifact kinds (tests/fixtures/artifacts/<name>.json) and a fresh project
// to record them in, as a skill's step would. Tests only; not thread-safe.

#include <filesystem>
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/store.hpp"
#include "avps/core/fs.hpp"
#include "avps/project/project.hpp"
#include "support/artifact_fixture.hpp"
#include "support/fixed_clock.hpp"
#include "support/temp_dir.hpp"

namespace avps::testing {

/// The source tree (fixtures, schemas).
inline const std::filesystem::path k_source_root = AVPS_SOURCE_DATA_DIR;

/// A project made by `avps init` in a fresh folder, open for writing, with a run begun.
struct FixtureFilm {
  TempDir tmp;
  std::filesystem::path dir = tmp.path() / "film";
  std::unique_ptr<project::Project> project;

  explicit FixtureFilm(const std::string& title) {
    static FixedClock clock;
    REQUIRE(project::Project::init(dir, title, {}, clock).ok());
    auto opened = project::Project::open(dir, ledger::OpenMode::read_write, {}, clock);
    REQUIRE(opened.ok());
    project = std::move(opened).value();
    REQUIRE(project->ledger().begin_run("test", {}).ok());
  }

  /// Records `content` as the next version of kind/target, written by `producer` with `details`
  /// (as a skill's step records its output); returns what the store recorded.
  ledger::ArtifactRecord record(const std::string& kind, const std::string& target, const nlohmann::json& content,
                                const std::string& producer, nlohmann::json details = nlohmann::json::object()) {
    auto codec = artifacts::FaceCodec::load(k_source_root / "schemas", kind).value();
    auto name = project->store().next_name(kind, target).value();
    auto written = project->store().write(artifacts::NewArtifact{name, content, codec.render(content).value(), "avps",
                                                                 producer, std::nullopt, std::move(details)});
    INFO((written.ok() ? "" : written.error().message));
    REQUIRE(written.ok());
    return *written;
  }
};

}  // namespace avps::testing
