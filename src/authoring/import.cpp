#include "avps/authoring/import.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "avps/artifacts/face.hpp"
#include "avps/builtins/world_state.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/hash.hpp"
#include "avps/gates/project_context.hpp"

namespace avps::authoring {
using nlohmann::json;

namespace {

// The project's record, except that the world before the imported diff's scene stands in for the
// latest WORLD_STATE: world_state_continuity applies the diff to "the latest" (gates/gate.hpp), and
// for an earlier scene that is not the world the diff follows.
class ImportGateContext : public gates::GateContext {
 public:
  ImportGateContext(project::Project& project, std::optional<json> world_before)
      : m_project(project), m_world_before(std::move(world_before)) {}
  const json& config() const override { return m_project.config(); }  // the merged avps.json
  Result<std::optional<json>> latest(std::string_view kind, std::string_view target) const override {
    if (kind == "WORLD_STATE" && m_world_before) {
      return std::optional<json>{*m_world_before};
    }
    return m_project.latest(kind, target);
  }
  Result<std::optional<Face>> latest_face(std::string_view kind, std::string_view target) const override {
    return m_project.latest_face(kind, target);
  }

 private:
  gates::ProjectGateContext m_project;
  std::optional<json> m_world_before;
};

// The recorded world a scene's STATE_DIFF applies to, as the engine takes it: the initial
// WORLD_STATE (v001) for the first scene of the latest SCENES, else the last WORLD_STATE written
// for the scene before it (details.scene of its artifact.recorded event).
struct WorldBefore {
  ledger::ArtifactRecord record;
  json content;
  std::optional<ledger::ArtifactRecord> current_after;  ///< the world recorded after the scene, if any
};

Result<std::map<std::string, ledger::ArtifactRecord>> worlds_after_scenes(project::Project& project) {
  ledger::Ledger::EventQuery query;
  query.kinds = {"artifact.recorded"};
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, project.ledger().events(query));
  std::map<std::string, ledger::ArtifactRecord> out;
  for (const ledger::Event& e : events) {
    std::optional<ledger::ArtifactRecord> record = e.artifact();
    const json details = e.body.is_object() ? e.body.value("details", json::object()) : json::object();
    if (record && record->kind == "WORLD_STATE" && details.contains("scene") && details["scene"].is_string()) {
      out[details["scene"].get<std::string>()] = *record;
    }
  }
  return out;
}

Result<WorldBefore> world_before(project::Project& project, const std::string& scene, const std::string& source) {
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> scenes_record, project.store().latest("SCENES", ""));
  if (!scenes_record) {
    return make_error(ErrorCode::schema_violation,
                      source + ": no SCENES is recorded, so the world before " + scene + " is unknown");
  }
  AVPS_TRY_ASSIGN(json scenes, project.store().load(*scenes_record));
  std::vector<std::string> order;
  for (const json& row : scenes.value("rows", json::array())) {
    order.push_back(row.value("scene_id", std::string()));
  }
  auto at = std::find(order.begin(), order.end(), scene);
  if (at == order.end()) {
    return make_error(ErrorCode::schema_violation, source + ": " + scene + " is not a scene of " + scenes_record->name +
                                                       ", so it has no world state");
  }
  AVPS_TRY_ASSIGN(auto after, worlds_after_scenes(project));
  WorldBefore out;
  if (auto current = after.find(scene); current != after.end()) {
    out.current_after = current->second;
  }
  if (at == order.begin()) {
    AVPS_TRY_ASSIGN(std::vector<ledger::ArtifactRecord> all, project.ledger().artifacts());
    auto initial = std::find_if(all.begin(), all.end(), [](const ledger::ArtifactRecord& r) {
      return r.kind == "WORLD_STATE" && r.version == 1;
    });
    if (initial == all.end()) {
      return make_error(ErrorCode::schema_violation,
                        source + ": no initial WORLD_STATE is recorded (avps init writes it)");
    }
    out.record = *initial;
  } else {
    auto previous = after.find(*(at - 1));
    if (previous == after.end()) {
      return make_error(ErrorCode::schema_violation,
                        source + ": the world after " + *(at - 1) + " is not recorded yet, so " + scene +
                            "'s STATE_DIFF has nothing to apply to; run the production through " + *(at - 1) +
                            "'s continuity first (avps run --scene " + *(at - 1) + ")");
    }
    out.record = previous->second;
  }
  AVPS_TRY_ASSIGN(out.content, project.store().load(out.record));
  return out;
}

bool carries_gate(const artifacts::FaceCodec& codec) {
  const json required = codec.schema().document().value("required", json::array());
  return std::find(required.begin(), required.end(), json("gate")) != required.end();
}

// Whether `content` equals the latest recorded version of its artifact, face and JSON.
Result<bool> equals_latest(project::Project& project, const std::string& previous, const std::string& face,
                           const json& content) {
  if (previous.empty()) {
    return false;
  }
  AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> latest, project.ledger().find_artifact(previous));
  AVPS_TRY_ASSIGN(std::string canonical, core::canonical_json(content));
  return latest && latest->face_sha256 == core::sha256_hex(face) && latest->json_sha256 == core::sha256_hex(canonical);
}

}  // namespace

bool PreparedImport::changes_anything() const {
  return std::any_of(artifacts.begin(), artifacts.end(), [](const PreparedArtifact& a) { return !a.unchanged; });
}

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
                                      const std::vector<FaceFile>& faces) {
  if (faces.empty()) {
    return make_error(ErrorCode::invalid_argument, "nothing to import");
  }
  // Which skill judges the faces: one skill, whose outputs they all are.
  const skills::SkillDef* judge = nullptr;
  std::set<std::string> seen;
  for (const FaceFile& f : faces) {
    if (!seen.insert(f.name.kind + "/" + f.name.target).second) {
      return make_error(ErrorCode::invalid_argument, f.source + ": " + f.name.stem() + " is given twice");
    }
    for (const auto& [name, skill] : registry.skills()) {
      for (const skills::SkillOutput& output : skill.outputs) {
        if (output.kind == f.name.kind && !output.written_by.empty()) {
          return make_error(
              ErrorCode::invalid_argument,
              f.source + ": " + f.name.kind + " is written by " + output.written_by + " (" + name +
                  "), never by hand; import what it is made from instead" +
                  (f.name.kind == "WORLD_STATE" ? " (the scene's STATE_DIFF: its WORLD_STATE follows)" : ""));
        }
      }
    }
    const skills::SkillDef* producer = producer_of(registry, f.name.kind);
    if (judge != nullptr && producer != judge) {
      return make_error(ErrorCode::invalid_argument,
                        f.source + ": faces imported together must be written by one skill in one step; " +
                            f.name.kind + " is not written by " + judge->name);
    }
    judge = producer;
  }
  if (faces.size() > 1 && judge == nullptr) {
    return make_error(ErrorCode::invalid_argument, "faces imported together must be written by one skill in one step");
  }

  PreparedImport prepared;
  prepared.judge = judge ? judge->name : "";
  gates::Outputs outputs;
  std::map<std::string, artifacts::FaceCodec> codecs;
  std::map<std::string, std::string> sources;                      // kind -> face file
  std::map<std::string, std::string> targets;                      // kind -> target
  std::vector<std::pair<std::string, std::string>> claimed_gates;  // stem, the verdict its Gate: line claims
  for (const FaceFile& f : faces) {
    AVPS_TRY_ASSIGN(artifacts::FaceCodec codec,
                    artifacts::FaceCodec::load(project::schema_dirs(project.dir()), f.name.kind));
    Result<json> parsed = codec.parse(f.text, f.name);
    if (!parsed) {
      return make_error(ErrorCode::schema_violation, f.source + ": " + parsed.error().message);
    }
    json content = std::move(parsed).value();
    // What an md/txt face says about its gate is replaced by avps's verdict below; said if it differs.
    if (content.contains("gate") && content["gate"].is_object()) {
      claimed_gates.emplace_back(f.name.stem(), content["gate"].value("verdict", ""));
    }
    if (carries_gate(codec)) {
      content["gate"] = gates::GateResult{}.to_json();  // the verdict is not yet known
    }
    outputs[f.name.kind] = std::move(content);
    codecs.emplace(f.name.kind, std::move(codec));
    sources[f.name.kind] = f.source;
    targets[f.name.kind] = f.name.target;
  }

  // A STATE_DIFF applies to the world before its scene; the WORLD_STATE it makes is judged with it.
  std::optional<WorldBefore> world;
  if (auto diff = outputs.find("STATE_DIFF"); diff != outputs.end()) {
    const std::string scene = diff->second.value("scene_id", std::string());
    // Checked before it is applied: the merge reads the diff's structure.
    if (std::vector<core::SchemaIssue> issues = codecs.at("STATE_DIFF").schema().validate(diff->second);
        !issues.empty()) {
      return make_error(ErrorCode::schema_violation, core::format_schema_issues(sources["STATE_DIFF"], issues));
    }
    AVPS_TRY_ASSIGN(world, world_before(project, scene, sources["STATE_DIFF"]));
    Result<json> applied = builtins::apply_state_diff(world->content, diff->second);
    if (!applied) {
      return make_error(ErrorCode::schema_violation, sources["STATE_DIFF"] + ": it does not apply to " +
                                                         world->record.name + " (the world before " + scene +
                                                         "): " + applied.error().message);
    }
    outputs["WORLD_STATE"] = *applied;
    AVPS_TRY_ASSIGN(artifacts::FaceCodec world_codec,
                    artifacts::FaceCodec::load(project::schema_dirs(project.dir()), "WORLD_STATE"));
    codecs.emplace("WORLD_STATE", std::move(world_codec));
  }
  ImportGateContext context(project, world ? std::optional<json>(world->content) : std::nullopt);

  // QC grades: each row's verdict is avps's (faces.md, QC_BATCH); a face's claim that differs is said.
  if (auto batch = outputs.find("QC_BATCH"); batch != outputs.end() && judge != nullptr) {
    const json checks = judge->raw.value("gate", json::object()).value("checks", json::array());
    if (std::find(checks.begin(), checks.end(), json("qc_verdict_from_scores")) != checks.end()) {
      for (const json& row : batch->second.value("rows", json::array())) {
        const std::string shot = row.value("shot_id", std::string());
        const std::string scene = shot.substr(0, shot.find('_'));
        AVPS_TRY_ASSIGN(std::optional<json> shotlist, context.latest("SHOTLIST", scene));
        const json rows = shotlist ? shotlist->value("rows", json::array()) : json::array();
        const bool planned =
            std::any_of(rows.begin(), rows.end(), [&shot](const json& r) { return r.value("shot_id", "") == shot; });
        if (!planned) {
          return make_error(ErrorCode::schema_violation, sources["QC_BATCH"] + ": " + shot +
                                                             " is not a shot of the latest SHOTLIST of " + scene +
                                                             ": a grade needs the shot's hero tier");
        }
      }
      AVPS_TRY_ASSIGN(std::vector<std::string> changed,
                      gates::stamp_qc_verdicts(judge->raw, batch->second, context, gates::QcClaim::in_model_verdict));
      for (const std::string& line : changed) {
        prepared.recomputed.push_back("QC verdict of " + line + " (avps's, from the scores and violations)");
      }
      prepared.notes.push_back(
          "the production's decisions on these attempts stay as recorded (`avps log`); this version records the "
          "grades and avps's verdicts on them");
    }
  }

  // The gate of the judging skill, over the faces and the WORLD_STATE they make; a kind it reads
  // that was not given is the latest recorded one, named in the record.
  if (judge != nullptr) {
    for (const skills::SkillOutput& output : judge->outputs) {
      if (outputs.count(output.kind) || output.schema.empty()) {
        continue;
      }
      AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> recorded,
                      project.store().latest(output.kind, faces.front().name.target));
      if (recorded) {
        AVPS_TRY_ASSIGN(json content, project.store().load(*recorded));
        outputs[output.kind] = std::move(content);
        prepared.judged_with.push_back(recorded->name);
      }
    }
    Result<gates::GateResult> gate = gates::evaluate_gate_outputs(judge->raw, outputs, context);
    if (!gate) {
      return make_error(ErrorCode::schema_violation, faces.front().source + ": the gate of " + judge->name +
                                                         " cannot judge it: " + gate.error().message +
                                                         " (import the faces its step writes together)");
    }
    prepared.gate = std::move(gate).value();
  }
  for (const auto& [stem, claimed] : claimed_gates) {
    if (claimed != gates::verdict_name(prepared.gate.verdict)) {
      prepared.recomputed.push_back(stem + ": its Gate: line said " + (claimed.empty() ? "nothing" : claimed) +
                                    "; avps's verdict is " + std::string(gates::verdict_name(prepared.gate.verdict)));
    }
  }

  // Grades of a kind collected per wave (QC_BATCH) are the shots' verdicts, recorded as the engine
  // records them; any other FAIL or STOP is refused.
  bool grades = false;
  if (judge != nullptr) {
    for (const skills::SkillOutput& output : judge->outputs) {
      grades = grades || (output.collect == "scene_wave" && outputs.count(output.kind) && faces.size() == 1 &&
                          faces.front().name.kind == output.kind);
    }
  }
  const bool refused =
      prepared.gate.verdict == gates::Verdict::stop || (prepared.gate.verdict == gates::Verdict::fail && !grades);

  // Schema, then the gate's verdict; then the artifacts in recording order.
  std::vector<std::string> order;
  for (const FaceFile& f : faces) {
    order.push_back(f.name.kind);
  }
  if (world) {
    order.push_back("WORLD_STATE");
  }
  for (const std::string& kind : order) {
    const artifacts::FaceCodec& codec = codecs.at(kind);
    json content = outputs.at(kind);
    if (carries_gate(codec)) {
      content["gate"] = prepared.gate.to_json();
    }
    std::vector<core::SchemaIssue> issues = codec.schema().validate(content);
    if (!issues.empty()) {
      return make_error(
          ErrorCode::schema_violation,
          core::format_schema_issues(kind == "WORLD_STATE" ? sources["STATE_DIFF"] : sources[kind], issues));
    }
    PreparedArtifact artifact;
    artifact.source = kind == "WORLD_STATE" ? "" : sources[kind];
    artifact.derived = kind == "WORLD_STATE";
    const std::string target = kind == "WORLD_STATE" ? "" : targets[kind];
    AVPS_TRY_ASSIGN(artifact.name, project.store().next_name(kind, target));
    AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> previous, project.store().latest(kind, target));
    artifact.previous = previous ? previous->name : "";
    artifact.previous_path = previous ? previous->path : "";
    AVPS_TRY_ASSIGN(artifact.face, codec.render(content));
    artifact.content = std::move(content);
    if (artifact.derived) {
      // The world after the scene: new unless the one recorded after it already holds exactly this.
      artifact.unchanged = false;
      if (world->current_after) {
        AVPS_TRY_ASSIGN(json current, project.store().load(*world->current_after));
        artifact.unchanged = current == artifact.content;
        if (artifact.unchanged) {
          artifact.previous = world->current_after->name;
          artifact.previous_path = world->current_after->path;
        }
      }
    } else {
      AVPS_TRY_ASSIGN(artifact.unchanged, equals_latest(project, artifact.previous, artifact.face, artifact.content));
    }
    prepared.artifacts.push_back(std::move(artifact));
  }
  if (refused) {
    std::string message = faces.front().source + ": the " + std::string(gates::verdict_name(prepared.gate.verdict)) +
                          " gate of " + (judge ? judge->name : faces.front().name.kind) + " refuses it:";
    for (const std::string& r : prepared.gate.reasons) {
      message += "\n  " + r;
    }
    return make_error(ErrorCode::schema_violation, message);
  }

  // The diff and the world it makes are one step: the world names the world it follows and the
  // diff it applies (details.inputs), which `avps gate` checks (world_state.chain).
  if (world) {
    PreparedArtifact& diff = prepared.artifacts.front();
    PreparedArtifact& next = prepared.artifacts.back();
    const std::string scene = diff.content.value("scene_id", std::string());
    const std::string diff_name = diff.unchanged ? diff.previous : diff.name.filename();
    AVPS_TRY_ASSIGN(std::string diff_canonical, core::canonical_json(diff.content));
    diff.details["scene"] = scene;
    next.details["scene"] = scene;
    next.details["inputs"] =
        json::array({{{"kind", "WORLD_STATE"}, {"names", {world->record.name}}, {"sha256", world->record.json_sha256}},
                     {{"kind", "STATE_DIFF"}, {"names", {diff_name}}, {"sha256", core::sha256_hex(diff_canonical)}}});
    next.details["derived_from"] = diff_name;
    if (!next.unchanged) {
      prepared.notes.push_back(next.name.filename() + " is " + world->record.name + " (the world before " + scene +
                               ") with " + diff_name + " applied");
    }
  }
  return prepared;
}

Result<std::vector<ledger::ArtifactRecord>> record_import(project::Project& project, const PreparedImport& prepared,
                                                          const std::string& reason) {
  if (reason.empty()) {
    return make_error(ErrorCode::invalid_argument, "a human edit needs a --reason; it is recorded with the version");
  }
  // What one import records is one step, so that `avps gate` judges it as it was judged here.
  std::string step;
  for (const PreparedArtifact& a : prepared.artifacts) {
    if (!a.unchanged && step.empty()) {
      step = "artifact-import/" + a.name.filename();
    }
  }
  json recomputed = json::array();
  for (const std::string& line : prepared.recomputed) {
    recomputed.push_back(line);
  }
  std::vector<ledger::ArtifactRecord> written;
  for (const PreparedArtifact& a : prepared.artifacts) {
    if (a.unchanged) {
      continue;
    }
    ledger::LogRow row;
    row.skill_name = "artifact-import";
    row.outcome = a.derived ? "DONE" : std::string(gates::verdict_name(prepared.gate.verdict));
    row.regen_count = "0";
    row.estimated_cost = "0.000000";
    row.actual_cost = "0.000000";
    row.artifact_output = a.name.filename();
    row.notes = a.derived ? "apply_state_diff: " + a.details.value("derived_from", "") +
                                " applied (human-authored: " + reason + ")"
                          : "human-authored: " + reason;
    if (a.details.contains("scene")) {
      row.scene_id = a.details.value("scene", "");
    } else if (artifacts::is_scene_id(a.name.target)) {
      row.scene_id = a.name.target;
    } else if (artifacts::is_shot_id(a.name.target)) {
      row.shot_id = a.name.target;
    }
    json details = a.details;
    details["reason"] = reason;
    details["follows"] = a.previous;
    details["step"] = step;
    details["attempt"] = 1;
    if (!a.source.empty()) {
      details["source"] = a.source;
    }
    if (!prepared.judged_with.empty() && !a.derived) {
      details["judged_with"] = prepared.judged_with;
    }
    if (!recomputed.empty() && !a.derived) {
      details["recomputed"] = recomputed;
    }
    artifacts::NewArtifact artifact{a.name, a.content, a.face, a.derived ? "avps" : "human", "artifact-import",
                                    row,    details};
    AVPS_TRY_ASSIGN(ledger::ArtifactRecord record, project.store().write(artifact));
    written.push_back(std::move(record));
  }
  return written;
}

}  // namespace avps::authoring
