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

std::optional<ExchangeIntent> ExchangeIntent::from_event(const Event& e) {
  if (e.kind != k_kind) {
    return std::nullopt;
  }
  const json& b = e.body;
  ExchangeIntent i;
  i.key = json_text(b, "key");
  i.reservation_id = json_text(b, "reservation_id");
  i.skill = json_text(b, "skill");
  i.model = json_text(b, "model");
  i.tier = json_text(b, "tier");
  i.route = json_text(b, "route");
  i.request_sha256 = json_text(b, "request_sha256");
  i.request_bytes = core::json_int(b, "request_bytes");
  i.possible_duplicate = b.is_object() && b.value("possible_duplicate", false) == true;
  return i;
}

EventDraft ExchangeIntent::to_draft() const {
  json body = {{"key", key},
               {"reservation_id", reservation_id},
               {"skill", skill},
               {"model", model},
               {"tier", tier},
               {"route", route},
               {"request_sha256", request_sha256},
               {"request_bytes", request_bytes}};
  if (possible_duplicate) {
    body["possible_duplicate"] = true;
  }
  return EventDraft{.kind = k_kind, .body = std::move(body)};
}

std::optional<ExchangeResponse> ExchangeResponse::from_event(const Event& e) {
  if (e.kind != k_kind) {
    return std::nullopt;
  }
  const json& b = e.body;
  ExchangeResponse r;
  r.key = json_text(b, "key");
  r.model = json_text(b, "model");
  r.scene_id = json_text(b, "scene_id");
  r.cost_micro_usd = core::json_int(b, "cost_micro_usd");
  r.input_tokens = core::json_int(b, "input_tokens");
  r.output_tokens = core::json_int(b, "output_tokens");
  r.retries = core::json_int(b, "retries");
  if (auto seconds = b.find("seconds_billed"); b.is_object() && seconds != b.end() && seconds->is_number()) {
    r.seconds_billed = seconds->get<double>();
  }
  r.endpoint_host = json_text(b, "endpoint_host");
  r.body = b;
  return r;
}

EventDraft ExchangeResponse::to_draft(json body, ReservationEnd settlement) {
  return EventDraft{.kind = k_kind, .body = std::move(body), .reservation_end = std::move(settlement)};
}

std::vector<std::pair<std::string, std::string>> ExchangeResponse::objects() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* field : {"response_sha256", "media_sha256", "wire_request_sha256", "wire_response_sha256"}) {
    if (std::string sha = json_text(body, field); !sha.empty()) {
      out.emplace_back(field, std::move(sha));
    }
  }
  return out;
}

std::optional<Reservation> reservation_of(const Event& e) {
  auto found = e.body.is_object() ? e.body.find("reservation") : e.body.end();
  if (!e.body.is_object() || found == e.body.end() || !found->is_object()) {
    return std::nullopt;
  }
  Result<Reservation> r = Reservation::from_json(*found);
  return r ? std::optional<Reservation>(std::move(r).value()) : std::nullopt;
}

}  // namespace avps::ledger
