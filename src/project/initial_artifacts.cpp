#include "initial_artifacts.hpp"

#include "avps/artifacts/face.hpp"
#include "avps/core/json_schema.hpp"

namespace avps::project {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The content, validated against its schema and rendered through the kind's face codec.
Result<artifacts::NewArtifact> make_artifact(const fs::path& data_dir, const std::string& kind,
                                             const std::string& target, json content) {
  AVPS_TRY_ASSIGN(artifacts::FaceCodec codec, artifacts::FaceCodec::load(data_dir / "schemas", kind));
  std::vector<core::SchemaIssue> issues = codec.schema().validate(content);
  if (!issues.empty()) {
    return make_error(ErrorCode::configuration, core::format_schema_issues(kind, issues));
  }
  AVPS_TRY_ASSIGN(std::string face, codec.render(content));
  AVPS_TRY_ASSIGN(artifacts::ArtifactName name, artifacts::make_artifact_name(kind, target, 1));
  ledger::LogRow row;
  row.skill_name = "init";
  row.outcome = "DONE";
  row.estimated_cost = "0.000000";
  row.actual_cost = "0.000000";
  row.regen_count = "0";
  row.artifact_output = name.filename();
  row.notes = "recorded at project init";
  return artifacts::NewArtifact{name, std::move(content), std::move(face), "avps", "init", row, json::object()};
}

}  // namespace

Result<std::vector<artifacts::NewArtifact>> build_initial_artifacts(const Config& config, const fs::path& data_dir) {
  // The project's style, as the lock every GenPack pastes into its [STYLE] section.
  const json& style = config.document["style"];
  json style_lock = {
      {"format_version", 1},
      {"kind", "STYLE_LOCK"},
      {"entity_id", "PROJECT"},
      {"visual_style", style["visual_style"]},
      {"palette", style["palette"]},
      {"lighting", style["lighting"]},
      {"camera_language", style["camera_language"]},
      {"aspect_ratio", style["aspect_ratio"]},
      {"frame_rate", style["frame_rate"]},
      {"forbidden_drift", style["forbidden_drift"]},
      {"gate", {{"verdict", "PASS"}, {"scores", json::object()}, {"reasons", json::array()}}},
  };
  // The empty world before scene one: the framework's five keys.
  json world_state = {
      {"format_version", 1},
      {"timeline", {{"current_scene", ""}, {"elapsed_time", ""}, {"global_notes", ""}}},
      {"characters", json::object()},
      {"props", json::object()},
      {"locations", json::object()},
      {"rules", {{"fictional_constraints", json::array()}, {"modified_rules", json::array()}}},
  };
  std::vector<artifacts::NewArtifact> out;
  AVPS_TRY_ASSIGN(artifacts::NewArtifact style_artifact, make_artifact(data_dir, "STYLE_LOCK", "PROJECT", style_lock));
  out.push_back(std::move(style_artifact));
  AVPS_TRY_ASSIGN(artifacts::NewArtifact world_artifact, make_artifact(data_dir, "WORLD_STATE", "", world_state));
  out.push_back(std::move(world_artifact));
  return out;
}

}  // namespace avps::project
