#include "initial_artifacts.hpp"

#include "avps/core/json_schema.hpp"

namespace avps::project {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// Validates content against schemas/<kind>.schema.json when the shipped set has that schema.
Result<void> validate_if_schema(const fs::path& data_dir, const std::string& schema_file, const json& content,
                                const std::string& what) {
  fs::path path = data_dir / "schemas" / schema_file;
  if (!fs::exists(path)) {
    return ok();
  }
  AVPS_TRY_ASSIGN(core::JsonSchema schema, core::JsonSchema::load(path));
  std::vector<core::SchemaIssue> issues = schema.validate(content);
  if (!issues.empty()) {
    return make_error(ErrorCode::schema_violation, core::format_schema_issues(what, issues));
  }
  return ok();
}

ledger::LogRow init_row(const std::string& artifact) {
  ledger::LogRow row;
  row.skill_name = "init";
  row.outcome = "DONE";
  row.estimated_cost = "0.000000";
  row.actual_cost = "0.000000";
  row.regen_count = "0";
  row.artifact_output = artifact;
  row.notes = "recorded at project init";
  return row;
}

Result<artifacts::NewArtifact> style_lock(const Config& config, const fs::path& data_dir) {
  const json& style = config.document["style"];
  json content = {
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
      {"gate", {{"verdict", "PASS"}, {"scores", json::object()}, {"reasons", {"rendered at init from avps.json style"}}}},
  };
  AVPS_TRY(validate_if_schema(data_dir, "style_lock.schema.json", content, "STYLE_PROJECT_LOCK"));

  // The face: bracketed sections, pasted verbatim into every GenPack's [STYLE].
  std::string face = "Style Lock: PROJECT\nGate: PASS\n";
  auto section = [&](const std::string& heading, const std::string& body) {
    face += "\n[" + heading + "]\n" + body + "\n";
  };
  section("Visual Style", content["visual_style"].get<std::string>());
  section("Palette", content["palette"].get<std::string>());
  section("Lighting", content["lighting"].get<std::string>());
  section("Camera Language", content["camera_language"].get<std::string>());
  section("Aspect Ratio", content["aspect_ratio"].get<std::string>());
  section("Frame Rate", std::to_string(content["frame_rate"].get<int>()));
  std::string drift;
  for (const json& item : content["forbidden_drift"]) {
    drift += (drift.empty() ? "" : "\n") + std::string("- ") + item.get<std::string>();
  }
  section("Forbidden Drift List", drift);

  AVPS_TRY_ASSIGN(artifacts::ArtifactName name, artifacts::make_artifact_name("STYLE_LOCK", "PROJECT", 1));
  return artifacts::NewArtifact{name, content, face, "avps", "init", init_row(name.filename()), json::object()};
}

Result<artifacts::NewArtifact> initial_world_state(const fs::path& data_dir) {
  // The framework's five top-level keys, in its order for the face.
  ordered_json state = {
      {"timeline", {{"current_scene", ""}, {"elapsed_time", ""}, {"global_notes", ""}}},
      {"characters", ordered_json::object()},
      {"props", ordered_json::object()},
      {"locations", ordered_json::object()},
      {"rules", {{"fictional_constraints", ordered_json::array()}, {"modified_rules", ordered_json::array()}}},
  };
  json content = json::parse(state.dump());
  content["format_version"] = 1;
  AVPS_TRY(validate_if_schema(data_dir, "world_state.schema.json", content, "WORLD_STATE"));
  AVPS_TRY_ASSIGN(artifacts::ArtifactName name, artifacts::make_artifact_name("WORLD_STATE", "", 1));
  return artifacts::NewArtifact{name, content, state.dump(2) + "\n", "avps", "init", init_row(name.filename()),
                                json::object()};
}

}  // namespace

Result<std::vector<artifacts::NewArtifact>> build_initial_artifacts(const Config& config, const fs::path& data_dir) {
  std::vector<artifacts::NewArtifact> out;
  AVPS_TRY_ASSIGN(artifacts::NewArtifact style, style_lock(config, data_dir));
  out.push_back(std::move(style));
  AVPS_TRY_ASSIGN(artifacts::NewArtifact world, initial_world_state(data_dir));
  out.push_back(std::move(world));
  return out;
}

}  // namespace avps::project
