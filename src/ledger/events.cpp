#include "avps/ledger/events.hpp"

namespace avps::ledger {

namespace {
using nlohmann::json;

std::string text(const json& body, const char* field) {
  auto found = body.find(field);
  return found != body.end() && found->is_string() ? found->get<std::string>() : "";
}

int integer(const json& body, const char* field) {
  auto found = body.find(field);
  return found != body.end() && found->is_number_integer() ? found->get<int>() : 0;
}

}  // namespace

std::optional<MediaRecorded> MediaRecorded::from_event(const Event& e) {
  if (e.kind != k_kind) {
    return std::nullopt;
  }
  const json& b = e.body;
  MediaRecorded m;
  m.key = text(b, "key");
  m.shot_id = text(b, "shot_id");
  m.scene_id = text(b, "scene_id");
  m.resolution = text(b, "resolution");
  m.attempt = integer(b, "attempt");
  m.path = text(b, "path");
  m.sha256 = text(b, "sha256");
  m.model = text(b, "model");
  m.tier = text(b, "tier");
  m.inputs = text(b, "inputs");
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
  s.step = text(b, "step");
  s.loop = text(b, "loop");
  s.skill = text(b, "skill");
  s.attempt = integer(b, "attempt");
  s.tier = text(b, "tier");
  s.verdict = text(b, "verdict");
  s.reasons = b.contains("reasons") && b["reasons"].is_array() ? b["reasons"] : json::array();
  s.outputs = text(b, "outputs");
  if (auto graded = b.find("shot_attempt"); graded != b.end() && graded->is_object()) {
    s.shot_attempt = ShotAttemptGrade{text(*graded, "shot_id"), text(*graded, "resolution"),
                                      integer(*graded, "attempt"), text(*graded, "wave"), text(*graded, "inputs")};
  }
  s.body = b;
  return s;
}

}  // namespace avps::ledger
