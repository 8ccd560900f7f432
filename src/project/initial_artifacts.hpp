#pragma once
// Internal to the project module: the artifacts `avps init` records.

#include <filesystem>
#include <vector>

#include "avps/artifacts/store.hpp"
#include "avps/project/config.hpp"

namespace avps::project {

/// STYLE_PROJECT_LOCK_v001 (from the style block of the configuration) and the empty initial
/// WORLD_STATE_v001, each validated against its schema and rendered to its face.
Result<std::vector<artifacts::NewArtifact>> build_initial_artifacts(const Config& config,
                                                                    const std::filesystem::path& data_dir);

}  // namespace avps::project
