#include "avps/ledger/events.hpp"

#include "avps/core/canonical_json.hpp"

namespace avps::ledger {

namespace {
using core::json_text;
using nlohmann::json;

int json_attempt(const json& object) { return static_cast<int>(core::json_int(object, "attempt")); }

}  // namespace

std::optional<MediaRecorded> MediaRecorded::from_event(const Event& e) {
  if (e.kind != k_kind) {
    return std::nullopt;
  }
  const json& b = e.body;
  MediaRecorded m;
  m.key = json_text(b, "key");
  m.shot_id = json_text(b, "shot_id");
  m.scene_id = json_text(b, "scene_id");
  m.resolution = json_text(b, "resolution");
  m.attempt = json_attempt(b);
  m.path = json_text(b, "path");
  m.sha256 = json_text(b, "sha256");
  m.model = json_text(b, "model");
  m.tier = json_text(b, "tier");
  m.inputs = json_text(b, "inputs");
  m.input_hashes = b.value("input_hashes", json::object());
  return m;
}

EventDraft MediaRecorded::to_draft(std::optional<LogRow> row) const {
  return EventDraft{.kind = k_kind,
                    .body = {{"key", key},
                             {"shot_id", shot_id},
                             {"scene_id", scene_id},
                             {"resolution", resolution},
                             {"attempt", attempt},
                             {"path", path},
                             {"sha256", sha256},
                             {"model", model},
                             {"tier", tier},
                             {"inputs", inputs},
                             {"input_hashes", input_hashes}},
                    .row = std::move(row)};
}

std::optional<StepFinished> StepFinished::from_event(const Event& e) {
  if (e.kind != k_kind) {
    return std::nullopt;
  }
  const json& b = e.body;
  StepFinished s;
  s.step = json_text(b, "step");
  s.loop = json_text(b, "loop");
  s.skill = json_text(b, "skill");
  s.attempt = json_attempt(b);
  s.tier = json_text(b, "tier");
  s.verdict = json_text(b, "verdict");
  s.reasons = b.contains("reasons") && b["reasons"].is_array() ? b["reasons"] : json::array();
  s.outputs = json_text(b, "outputs");
  if (auto graded = b.find("shot_attempt"); graded != b.end() && graded->is_object()) {
    s.shot_attempt = ShotAttemptGrade{json_text(*graded, "shot_id"), json_text(*graded, "resolution"),
                                      json_attempt(*graded), json_text(*graded, "wave"), json_text(*graded, "inputs")};
  }
  s.body = b;
  return s;
}

}  // namespace avps::ledger
