// `avps replay --timeline` (replay.hpp): the record's audit trail.

#include <map>

#include "avps/core/clock.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/replay/replay.hpp"
#include "record_reading.hpp"

namespace avps::replay {
namespace fs = std::filesystem;
using nlohmann::json;

json TimelineEntry::to_json() const {
  return {{"seq", seq},     {"run_id", run_id},   {"timestamp", timestamp}, {"scene_id", scene_id},
          {"shot_id", shot_id}, {"skill", skill}, {"model", model},         {"tier", tier},
          {"cost", cost},   {"outcome", outcome}, {"artifact", artifact},   {"detail", detail}};
}

Result<std::vector<TimelineEntry>> timeline(const fs::path& project_dir, const std::string& run) {
  core::SystemClock clock;
  AVPS_TRY_ASSIGN(std::unique_ptr<ledger::Ledger> ledger,
                  ledger::Ledger::open(project_dir, ledger::OpenMode::read_only, clock));
  AVPS_TRY_ASSIGN(std::optional<std::string> run_id, run_filter(run));
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, ledger->events());
  std::map<std::string, json> intents;  // call key -> its intent: whose call a retried response was
  std::vector<TimelineEntry> out;
  bool found_run = !run_id;
  for (const ledger::Event& e : events) {
    if (e.kind == "exchange.intent") {
      intents.emplace(e.body.value("key", ""), e.body);
    }
    if (run_id && e.run_id != *run_id) {
      continue;
    }
    found_run = true;
    if (std::optional<ledger::LogRow> row = e.row()) {
      out.push_back({e.seq, e.run_id, row->timestamp, row->scene_id, row->shot_id, row->skill_name, row->model_used,
                     row->tier, row->actual_cost.empty() ? row->estimated_cost : row->actual_cost, row->outcome,
                     row->artifact_output, row->notes});
    }
    // The retry layer's repeats are not rows of their own; an auditor asks for them.
    if ((e.kind == "exchange.response" || e.kind == "exchange.failed") && e.body.value("retries", 0) > 0) {
      const json& intent = intents[e.body.value("key", "")];
      std::string statuses;
      for (const json& attempt : e.body.value("attempts", json::array())) {
        statuses += (statuses.empty() ? "" : ", ") +
                    (attempt.contains("error") ? attempt.value("error", "") : std::to_string(attempt.value("status", 0)));
      }
      const std::string purpose = intent.value("skill", "");
      const size_t space = purpose.find(' ');
      std::string scene = e.body.value("scene_id", "");
      std::string shot;
      if (space != std::string::npos) {
        const std::string target = purpose.substr(space + 1, purpose.find(' ', space + 1) - space - 1);
        if (target.find("_SH") != std::string::npos) {
          shot = target;
        }
      }
      out.push_back({e.seq, e.run_id, e.timestamp, scene, shot, purpose.substr(0, space), e.body.value("model", ""),
                     intent.value("tier", ""), "", "RETRY", "",
                     std::to_string(e.body.value("retries", 0)) + " retries (" + statuses + ")" +
                         (e.kind == "exchange.failed" ? "; then the model gave up: " + e.body.value("message", "") : "")});
    }
  }
  if (!found_run) {
    return make_error(ErrorCode::not_found, "--run " + run + ": the ledger has no run " + *run_id);
  }
  return out;
}

}  // namespace avps::replay
