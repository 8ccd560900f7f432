#include "avps/authoring/import.hpp"

#include <algorithm>

#include "avps/artifacts/face.hpp"
#include "avps/gates/project_context.hpp"

namespace avps::authoring {
using nlohmann::json;

const skills::SkillDef* producer_of(const skills::Registry& registry, std::string_view kind) {
  for (const auto& [name, skill] : registry.skills()) {
    for (const skills::SkillOutput& output : skill.outputs) {
      if (output.kind == kind && output.written_by.empty()) {
        return &skill;
      }
    }
  }
  return nullptr;
}

Result<PreparedImport> prepare_import(project::Project& project, const skills::Registry& registry,
                                      const std::string& kind, const std::string& target, const std::string& face,
                                      const std::string& source) {
  AVPS_TRY_ASSIGN(artifacts::ArtifactName name, project.store().next_name(kind, target));
  AVPS_TRY_ASSIGN(artifacts::FaceCodec codec, artifacts::FaceCodec::load(project::data_dir() / "schemas", kind));

  Result<json> parsed = codec.parse(face, name);
  if (!parsed) {
    return make_error(ErrorCode::schema_violation, source + ": " + parsed.error().message);
  }
  json content = std::move(parsed).value();

  // The gate is avps's to compute: whatever the face claims is replaced. Kinds whose face
  // cannot show it (CSV) get it here too.
  const skills::SkillDef* producer = producer_of(registry, kind);
  gates::GateResult gate;
  if (producer) {
    gates::ProjectGateContext context(project);
    AVPS_TRY_ASSIGN(gate, gates::evaluate_gate(producer->raw, content, context));
  }
  const json required = codec.schema().document().value("required", json::array());
  if (std::find(required.begin(), required.end(), json("gate")) != required.end()) {
    content["gate"] = gate.to_json();
  }
  std::vector<core::SchemaIssue> issues = codec.schema().validate(content);
  if (!issues.empty()) {
    return make_error(ErrorCode::schema_violation, core::format_schema_issues(source, issues));
  }
  if (gate.verdict == gates::Verdict::fail || gate.verdict == gates::Verdict::stop) {
    std::string message = source + ": the " + std::string(gates::verdict_name(gate.verdict)) + " gate of " +
                          (producer ? producer->name : kind) + " refuses it:";
    for (const std::string& r : gate.reasons) {
      message += "\n  " + r;
    }
    return make_error(ErrorCode::schema_violation, message);
  }
  AVPS_TRY_ASSIGN(std::string rendered, codec.render(content));
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> previous, project.store().latest(kind, target));
  return PreparedImport{name, std::move(content), std::move(rendered), gate, previous ? previous->name : ""};
}

Result<ledger::ArtifactRecord> record_import(project::Project& project, const PreparedImport& prepared,
                                             const std::string& reason, const std::string& source) {
  if (reason.empty()) {
    return make_error(ErrorCode::invalid_argument, "a human edit needs a --reason; it is recorded with the version");
  }
  ledger::LogRow row;
  row.skill_name = "artifact-import";
  row.outcome = std::string(gates::verdict_name(prepared.gate.verdict));
  row.regen_count = "0";
  row.estimated_cost = "0.000000";
  row.actual_cost = "0.000000";
  row.artifact_output = prepared.name.filename();
  row.notes = "human-authored: " + reason;
  if (artifacts::is_scene_id(prepared.name.target)) {
    row.scene_id = prepared.name.target;
  } else if (artifacts::is_shot_id(prepared.name.target)) {
    row.shot_id = prepared.name.target;
  }
  json details = {{"reason", reason}, {"source", source}, {"follows", prepared.previous}};
  artifacts::NewArtifact artifact{prepared.name, prepared.content, prepared.face, "human", "artifact-import", row, details};
  return project.store().write(artifact);
}

}  // namespace avps::authoring
