// The engine's view of the record: contexts, targets, and what the ledger's events say so far.

#include <algorithm>
#include <cassert>
#include <limits>
#include <variant>

#include "avps/core/byte_codec.hpp"
#include "avps/core/diag.hpp"
#include "avps/engine/fold_checkpoint.hpp"
#include "avps/governance/override.hpp"
#include "avps/ledger/events.hpp"
#include "avps/project/project.hpp"
#include "engine_internal.hpp"

namespace avps::engine {
using nlohmann::json;

std::string Context::key() const {
  if (!shot_id.empty()) {
    return shot_id;
  }
  if (!scene_id.empty()) {
    return scene_id;
  }
  return entity_id;
}

std::string Context::label() const {
  std::string k = key();
  if (k.empty()) {
    return "";
  }
  return " " + k + (resolution.empty() ? "" : " (" + resolution + ")");
}

std::string target_for(const std::string& kind, const Context& context) {
  const artifacts::KindInfo* info = artifacts::find_kind(kind);
  if (!info) {
    return "";
  }
  switch (info->target) {
    case artifacts::TargetKind::none:
      return "";
    case artifacts::TargetKind::scene:
      return context.scene_id;
    case artifacts::TargetKind::shot:
      return context.shot_id;
    case artifacts::TargetKind::entity:
      return kind == "STYLE_LOCK" ? "PROJECT" : context.entity_id;
    case artifacts::TargetKind::target:
      // One allocation table for the project (DESIGN §3 Global singletons).
      if (kind == "ROUTING_DECISION") {
        return "PROJECT";
      }
      return context.scene_id.empty() ? "PROJECT" : context.scene_id;
  }
  return "";
}

json StepSummary::operator*() const {
  core::ByteReader in(bytes());
  return in.json();
}

StepSummary make_summary(const json& summary) {
  core::ByteWriter out;
  out.json(summary);
  return StepSummary(out.take());
}

void note_loop_verdict(Record& record, const std::string& loop, const std::string& verdict) {
  if (verdict != "PASS" && verdict != "WARN" && verdict != "ACCEPTED") {
    return;
  }
  const std::string prefix = loop + "#";
  for (auto it = record.revisions_done.lower_bound(prefix);
       it != record.revisions_done.end() && it->rfind(prefix, 0) == 0;) {
    it = record.revisions_done.erase(it);
  }
}

std::vector<std::string> analyzer_runs_missing(const Record& record, const std::string& scene, int analyzer_after) {
  std::vector<std::string> missing;
  // A scene's shots are one run of the map's keys ("S01_SH02/proxy"): from the first, not every
  // shot of the project at each of a scene's checks.
  const std::string prefix = scene.empty() ? "" : scene + "_";
  for (auto shot = record.shot_attempts.lower_bound(prefix);
       shot != record.shot_attempts.end() && shot->first.compare(0, prefix.size(), prefix) == 0; ++shot) {
    const auto& [key, attempts] = *shot;
    std::map<std::string, int> failed_by_identity;
    std::map<std::string, int> due_since;  // identity -> the attempt whose failure made the analyzer due
    for (const FlatJson& kept : attempts) {
      const json a = *kept;
      const std::string identity = a.value("inputs", "");
      const int attempt = a.value("attempt", 0);
      if (failed_by_identity[identity] >= analyzer_after) {
        bool ran = false;  // analyzer_runs holds "<key>#<attempts made before it ran>"
        for (auto run = record.analyzer_runs.lower_bound(key + "#");
             run != record.analyzer_runs.end() && run->rfind(key + "#", 0) == 0; ++run) {
          const int before = std::atoi(run->c_str() + key.size() + 1);
          ran = ran || (before >= due_since[identity] && before < attempt);
        }
        if (!ran) {
          missing.push_back(key + " attempt " + std::to_string(attempt) + " followed " +
                            std::to_string(failed_by_identity[identity]) + " failed attempts from the same inputs");
          break;
        }
      }
      if (a.value("verdict", "") != "PASS" && ++failed_by_identity[identity] == analyzer_after) {
        due_since[identity] = attempt;
      }
    }
  }
  return missing;
}

void note_stop(Record& record, const std::string& loop, int64_t seq) {
  if (loop.find("<trigger ") != std::string::npos) {
    record.stopped_loops[loop] = seq;
  }
}

void note_firing(Record& record, const json& body) {
  const auto trigger = body.find("trigger");
  if (trigger == body.end() || !trigger->is_object()) {
    return;
  }
  const std::string cause = trigger->value("cause", json::object()).value("id", "");
  record.firing_verdicts[body.value("loop", "") + "|" + cause] = body.value("verdict", "");
}

bool is_revision(const json& findings, const json& revision_for, const json& extra) {
  const bool carries_findings = findings.is_array() && !findings.empty();
  const bool regen_genpack = extra.is_object() && extra.contains("qc_findings") && extra["qc_findings"].is_array() &&
                             !extra["qc_findings"].empty();
  return carries_findings || !revision_for.is_null() || regen_genpack;
}

RevisionCheck check_revision(const gates::Outputs& outputs,
                             const std::function<std::vector<PriorVersion>(const std::string& kind)>& versions) {
  RevisionCheck check;
  for (const auto& [kind, content] : outputs) {
    const json compared = without_gate(content);
    const std::vector<PriorVersion> priors = versions(kind);
    for (size_t i = 0; i < priors.size(); ++i) {
      if (without_gate(priors[i].content) == compared) {
        check.identical[kind] = priors[i].name;
        if (i + 1 == priors.size()) {
          check.as_latest.insert(kind);
        }
        break;
      }
    }
  }
  check.unchanged = !outputs.empty() && check.identical.size() == outputs.size();
  if (check.unchanged) {
    std::string names;
    for (const auto& [kind, name] : check.identical) {
      names += (names.empty() ? "" : ", ") + name;
    }
    check.reason = "revision identical to " + names +
                   ": a revision must change something (what the findings name), so this attempt is a FAIL and no "
                   "new version is written";
  }
  return check;
}

json without_gate(json value) {
  if (value.is_object()) {
    value.erase("gate");
  } else if (value.is_array()) {
    for (json& item : value) {
      if (item.is_object()) {
        item.erase("gate");
      }
    }
  }
  return value;
}

json cut_to_fields(json value, const std::vector<std::string>& fields) {
  if (fields.empty()) {
    return value;
  }
  if (value.is_object()) {
    return cut_copy(value, fields);  // what the cut keeps, copied
  }
  if (value.is_array()) {
    for (json& item : value) {
      item = cut_to_fields(std::move(item), fields);
    }
  }
  return value;
}

json cut_copy(const json& value, const std::vector<std::string>& fields) {
  if (fields.empty()) {
    return value;
  }
  if (value.is_array()) {
    json cut = json::array();
    for (const json& item : value) {
      cut.push_back(cut_copy(item, fields));
    }
    return cut;
  }
  if (!value.is_object()) {
    return value;
  }
  json cut = json::object();
  for (const char* identity : {"format_version", "kind", "entity_id", "target", "shot_id", "scene_id"}) {
    if (auto it = value.find(identity); it != value.end()) {
      cut[identity] = *it;
    }
  }
  for (const std::string& field : fields) {
    const json::json_pointer pointer(field);
    if (value.contains(pointer)) {
      cut[pointer] = value.at(pointer);
    }
  }
  return cut;
}

json failed_render(const json& failure) {
  json attempt = failure.value("shot_attempt", json::object());
  attempt["verdict"] = "FAIL";
  attempt["reasons"] = json::array({"the render failed: " + failure.value("message", std::string("no render"))});
  attempt["render_failed"] = true;
  return attempt;
}

void note_attempt(Record& record, const json& attempt) {
  std::vector<FlatJson>& list =
      record.shot_attempts[attempt.value("shot_id", "") + "/" + attempt.value("resolution", "")];
  // A resumed wave records the same attempt again; keep the last word on it.
  const int number = attempt.value("attempt", 0);
  std::erase_if(list, [number](const FlatJson& a) { return (*a).value("attempt", 0) == number; });
  list.emplace_back(attempt);
}

const json& rows_of(const json& artifact) {
  static const json k_none = json::array();
  auto rows = artifact.find("rows");
  return rows != artifact.end() && rows->is_array() ? *rows : k_none;
}

int config_int(const json& config, const char* pointer, int fallback) {
  json::json_pointer p(pointer);
  return config.contains(p) && config[p].is_number_integer() ? config[p].get<int>() : fallback;
}

std::string held_scene(const nlohmann::json& stop) {
  if (stop.value("kind", "") == "budget" && stop.value("cap", "project") == "project") {
    return "";
  }
  return stop.value("scope", nlohmann::json::object()).value("scene_id", "");
}

std::string held_entity(const nlohmann::json& stop) {
  if (!held_scene(stop).empty() || (stop.value("kind", "") == "budget" && stop.value("cap", "project") == "project")) {
    return "";
  }
  return stop.value("scope", nlohmann::json::object()).value("entity_id", "");
}

bool stale_shots_read(std::string_view kind) {
  return kind.rfind("exchange.", 0) != 0 && kind.rfind("budget.", 0) != 0;
}

const std::set<std::string, std::less<>>& RecordTally::routing_kinds() {
  static const std::set<std::string, std::less<>> k_kinds{"route.escalated", "route.reallocated", "route.rerouted",
                                                          "route.escalation_refused"};
  return k_kinds;
}

void RecordTally::note_routing(ledger::Event e) {
  if (e.kind != "route.escalated") {
    routing.push_back(std::move(e));
  } else if (e.body.contains("after_attempts")) {
    escalations.insert(e.body.value("loop", "") + "#" + std::to_string(e.body.value("after_attempts", 0)));
  }
}

void RecordTally::add(const ledger::Event& e) {
  if (record_fold_ignores(e)) {
    // Counts nothing, and leaves `seq` as it was: a fold of a run that had nothing to do saves
    // the same bytes as the fold before it (write_run_record_section keeps them).
    return;
  }
  budget.add(e);
  narrative.add(e);
  if (is_routing(e.kind)) {
    note_routing(e);
  }
  seq = e.seq;
}

json RecordTally::save() const {
  json events = json::array();
  for (const ledger::Event& e : routing) {
    events.push_back({e.seq, e.run_id, e.timestamp, e.kind, e.body, e.prev_hash, e.hash});
  }
  return {{"seq", seq},
          {"routing", std::move(events)},
          {"escalations", escalations},
          {"budget", budget.save()},
          {"narrative", narrative.save()}};
}

RecordTally RecordTally::restore(const json& saved) {
  RecordTally tally;
  tally.seq = saved.at("seq").get<int64_t>();
  for (const json& item : saved.at("routing")) {
    tally.routing.push_back(ledger::Event{.seq = item.at(0).get<int64_t>(),
                                          .run_id = item.at(1).get<std::string>(),
                                          .timestamp = item.at(2).get<std::string>(),
                                          .kind = item.at(3).get<std::string>(),
                                          .body = item.at(4),
                                          .prev_hash = item.at(5).get<std::string>(),
                                          .hash = item.at(6).get<std::string>()});
  }
  saved.at("escalations").get_to(tally.escalations);
  tally.budget = governance::BudgetTally::restore(saved.at("budget"));
  tally.narrative = governance::NarrativeCallTally::restore(saved.at("narrative"));
  return tally;
}

void RecordFold::add(const ledger::Event& e) {
  m_stops.add(e);
  m_overrides.add(e);
  if (m_all) {
    m_record.tally.add(e);
  }
  if (e.kind == "run.hard_stop") {
    m_stop_inputs[e.seq] = e.body.value("inputs", "");
    note_stop(m_record, e.body.value("loop", ""), e.seq);
  }
  if (!m_all && !stale_shots_read(e.kind)) {
    return;
  }
  Record& record = m_record;
  if (std::optional<ledger::Reservation> reserved = ledger::reservation_of(e)) {
    ++record.exchanges[reserved->id.substr(0, reserved->id.find('#'))].reservations;
  }
  if (e.kind == "artifact.recorded" && e.body.contains("artifact")) {
    const json details = e.body.value("details", json::object());
    const std::string name = e.body["artifact"].value("name", "");
    record.written_by[name] = WrittenBy{details.value("step", ""), details.value("attempt", 0)};
    // An attempt's write (a step key, "skill/context@digest"; not a person's import, nor a QC
    // wave's batch, which its shots' steps do not close), open until its step.finished.
    if (const std::string step = details.value("step", "");
        step.find('@') != std::string::npos && !details.contains("reason")) {
      m_unfinished_writes[step].emplace_back(details.value("attempt", 0), name);
    }
    if (e.body["artifact"].value("kind", "") == "WORLD_STATE" && details.contains("scene")) {
      std::string& after = record.world_after[details.value("scene", "")];
      m_world_replaced[name] = after;
      after = name;
    }
    if (details.contains("wave")) {
      record.waves_written.insert(details.value("wave", ""));
      record.wave_of[name] = details.value("wave", "");
    }
  }
  if (std::optional<ledger::ExchangeIntent> intent = ledger::ExchangeIntent::from_event(e)) {
    ++record.exchanges[intent->key].intents;
    // Intents before format 2 named no reservation: any reservation of their key may have left.
    record.intent_reservations.insert(intent->reservation_id.empty() ? intent->key + "#*" : intent->reservation_id);
  } else if (std::optional<ledger::ExchangeResponse> response = ledger::ExchangeResponse::from_event(e)) {
    record.tickets.erase(response->key);
    note_response(record, response->key, e.seq, response->body);
  } else if (e.kind == "exchange.ticket") {
    record.tickets[e.body.value("key", "")] = e.body;  // a job in flight until answered or failed
  } else if (e.kind == "exchange.failed") {
    record.tickets.erase(e.body.value("key", ""));
    if (e.body.contains("shot_attempt")) {
      note_attempt(record, failed_render(e.body));
    }
  } else if (e.kind == "exchange.fallback") {
    record.fallbacks[e.body.value("key", "")] = e.body.value("to_model", "");
  } else if (e.kind == "step.finished") {
    const std::string loop = e.body.value("loop", "");
    const std::string verdict = e.body.value("verdict", "");
    const json& body = e.body;
    note_loop_verdict(record, loop, verdict);
    if (body.contains("revision_for") && verdict != "FAIL" && verdict != "STOP") {
      const json& of = body["revision_for"];
      record.revisions_done.insert(of.value("loop", "") + "#" + std::to_string(of.value("attempt", 0)));
    }
    if (body.contains("shot_attempt")) {
      json attempt = body["shot_attempt"];
      attempt["verdict"] = verdict;
      attempt["reasons"] = body.value("reasons", json::array());
      note_attempt(record, attempt);
    }
    if (body.contains("analyzer_for")) {
      record.analyzer_runs.insert(body.value("analyzer_for", ""));
    }
    note_firing(record, body);
    if (auto writes = m_unfinished_writes.find(body.value("step", "")); writes != m_unfinished_writes.end()) {
      const int attempt = body.value("attempt", 0);
      std::erase_if(writes->second, [attempt](const auto& write) { return write.first <= attempt; });
      if (writes->second.empty()) {
        m_unfinished_writes.erase(writes);
      }
    }
    // A reader's fold (the stale-shot rule) keeps of each step only what Impl::readable_version
    // asks of it: there is one per step of the history, and a run's summary is several times that.
    StepSummary kept = make_summary(m_all ? step_summary(body) : readable_summary(body));
    if (!loop.empty()) {
      record.loops[loop] = kept;  // the same summary as the step's, not a copy
    }
    const std::string step = body.value("step", "");
    record.steps[step] = std::move(kept);
  } else if (std::optional<ledger::MediaRecorded> render = ledger::MediaRecorded::from_event(e)) {
    const std::string key = render->shot_id + "/" + render->resolution;
    if (m_all) {
      // What a grader's MEDIA input reads: a run's, not the stale-shot rule's (no packager reads it).
      record.media[key] = FlatJson(media_summary(e.body));
    }
    json kept = render_summary(e.body);
    kept["seq"] = e.seq;
    record.renders[render->path] = FlatJson(kept);
    record.media_paths[key + "#" + std::to_string(render->attempt)] = render->path;
  } else if (e.kind == "trigger.fired") {
    json fired = e.body;
    fired["run_id"] = e.run_id;
    fired["seq"] = e.seq;
    record.triggers_fired.push_back(std::move(fired));
  } else if (e.kind == "regen.round") {
    record.rounds[e.body.value("shot_id", "") + "/" + e.body.value("resolution", "")] = e.body;
  }
}

Record RecordFold::finish() && {
  Record& record = m_record;
  for (const auto& [step, writes] : m_unfinished_writes) {
    for (const auto& [attempt, name] : writes) {
      record.cut_short.insert(name);
    }
  }
  // The world after a scene is the one its tracker last wrote in an attempt that finished: a world
  // state an interrupted attempt left (recorded, its files whole, by recovery) is read by no other
  // step, the scene's next ones included, until that attempt is made again.
  for (auto it = record.world_after.begin(); it != record.world_after.end();) {
    std::string& name = it->second;
    for (size_t back = 0; record.cut_short.count(name) > 0; ++back) {
      auto replaced = m_world_replaced.find(name);
      // (A record whose replacements loop, which no writer makes, is cut there.)
      name = replaced != m_world_replaced.end() && back < m_world_replaced.size() ? replaced->second : std::string();
    }
    it = name.empty() ? record.world_after.erase(it) : std::next(it);
  }
  // A graded attempt counts once its wave's QC_BATCH is recorded (DESIGN §1.1): grades of a wave
  // an interruption cut short are graded again, from the record, and the batch written then.
  for (auto& [key, attempts] : record.shot_attempts) {
    std::erase_if(attempts, [&](const FlatJson& kept) {
      const json a = *kept;
      return a.contains("wave") && !record.waves_written.count(a.value("wave", ""));
    });
  }
  for (const governance::HardStop& stop : m_stops.open()) {
    auto inputs = m_stop_inputs.find(stop.seq);
    record.open_stops[stop.loop] = {{"seq", stop.seq},
                                    {"skill", stop.skill},
                                    {"kind", governance::stop_kind_name(stop.kind)},
                                    {"scope", stop.scope},
                                    {"cap", stop.cap},
                                    {"reason", stop.reason},
                                    {"inputs", inputs != m_stop_inputs.end() ? inputs->second : ""}};
  }
  record.overrides = std::move(m_overrides);
  return std::move(m_record);
}

namespace {
// The JSON of what the record holds in its own types: as the JSON members held them before
// (save() is compared member by member; the flat encoding writes these values too, put()).
json written_by_json(const WrittenBy& writer) { return {{"step", writer.step}, {"attempt", writer.attempt}}; }
// A written_by member as written_by_json made it; nullopt for anything else.
std::optional<WrittenBy> written_by_of(const json& saved) {
  if (!saved.is_object() || saved.size() != 2) {
    return std::nullopt;
  }
  auto step = saved.find("step");
  auto attempt = saved.find("attempt");
  if (step == saved.end() || !step->is_string() || attempt == saved.end() || !attempt->is_number_integer() ||
      attempt->get<int64_t>() < std::numeric_limits<int>::min() ||
      attempt->get<int64_t>() > std::numeric_limits<int>::max()) {
    return std::nullopt;
  }
  return WrittenBy{step->get<std::string>(), attempt->get<int>()};
}
// A loop's summary restored: the step's own summary when equal to it (as the fold made them:
// shared), else its own.
StepSummary loop_summary(const std::map<std::string, StepSummary>& steps, StepSummary summary) {
  const json decoded = *summary;
  if (auto step = decoded.find("step"); step != decoded.end() && step->is_string()) {
    if (auto same = steps.find(step->get_ref<const std::string&>()); same != steps.end() && same->second == summary) {
      return same->second;
    }
  }
  return summary;
}
}  // namespace

namespace {

// save(): the fold's members gathered into one document, each whole or, a map, entry by entry
// (what first_difference compares; a checkpoint keeps the flat encoding below, put_members).
class DocumentSink {
 public:
  /// A member whose value is given whole.
  void whole(std::string_view key, json value) { m_out[std::string(key)] = std::move(value); }
  /// A member that is an object, its entries given next by entry().
  void object(std::string_view key) { m_object = &(m_out[std::string(key)] = json::object()); }
  void entry(const std::string& key, json value) { (*m_object)[key] = std::move(value); }
  json take() { return std::move(m_out); }

 private:
  json m_out = json::object();
  json* m_object = nullptr;
};

// The members save() has, in key order.
void save_members(const Record& r, bool all, const governance::HardStopFold& stops,
                  const governance::Overrides& overrides, const std::map<int64_t, std::string>& stop_inputs,
                  const std::map<std::string, std::vector<std::pair<int, std::string>>>& unfinished_writes,
                  const std::map<std::string, std::string>& world_replaced, DocumentSink& sink) {
  // A std::map with string keys, as an object entry by entry; `value` makes an entry's JSON.
  auto object = [&sink](std::string_view key, const auto& map, auto value) {
    sink.object(key);
    for (const auto& [k, v] : map) {
      sink.entry(k, value(v));
    }
  };
  auto as_json = [](const auto& v) { return json(v); };
  auto summary = [](const StepSummary& s) { return *s; };
  auto flat = [](const FlatJson& kept) { return *kept; };
  // The exchange facts a member keeps: responses, intents or reservations, each of the keys that have one.
  auto exchanges = [&](std::string_view key, auto has, auto value) {
    sink.object(key);
    for (const auto& [k, facts] : r.exchanges) {
      if (has(facts)) {
        sink.entry(k, value(facts));
      }
    }
  };
  sink.whole("all", all);
  sink.whole("analyzer_runs", r.analyzer_runs);
  sink.whole("cut_short", r.cut_short);
  object("fallbacks", r.fallbacks, as_json);
  object("firing_verdicts", r.firing_verdicts, as_json);
  sink.whole("intent_reservations", r.intent_reservations);
  exchanges(
      "intents", [](const ExchangeFacts& f) { return f.intents != 0; },
      [](const ExchangeFacts& f) { return json(f.intents); });
  object("loops", r.loops, summary);
  object("media", r.media, flat);
  object("media_paths", r.media_paths, as_json);
  object("open_stops", r.open_stops, as_json);
  sink.whole("overrides", overrides.save());
  object("renders", r.renders, flat);
  exchanges(
      "reservations", [](const ExchangeFacts& f) { return f.reservations != 0; },
      [](const ExchangeFacts& f) { return json(f.reservations); });
  exchanges(
      "responses", [](const ExchangeFacts& f) { return f.response.has_value(); },
      [](const ExchangeFacts& f) {
        const RecordedResponse& kept = *f.response;
        return json{kept.seq, kept.scene_id, kept.cached_input_tokens, kept.caching_saved_micro_usd};
      });
  sink.whole("revisions_done", r.revisions_done);
  object("rounds", r.rounds, as_json);
  object("shot_attempts", r.shot_attempts, [](const std::vector<FlatJson>& attempts) {
    json list = json::array();
    for (const FlatJson& attempt : attempts) {
      list.push_back(*attempt);
    }
    return list;
  });
  object("steps", r.steps, summary);
  sink.whole("stop_inputs", stop_inputs);  // integer keys: an array of pairs, as nlohmann makes it
  object("stopped_loops", r.stopped_loops, as_json);
  sink.whole("stops", stops.save());
  sink.whole("tally", r.tally.save());
  object("tickets", r.tickets, as_json);
  sink.whole("triggers_fired", r.triggers_fired);
  object("unfinished_writes", unfinished_writes, [](const std::vector<std::pair<int, std::string>>& writes) {
    json list = json::array();
    for (const auto& [attempt, name] : writes) {
      list.push_back({attempt, name});
    }
    return list;
  });
  object("wave_of", r.wave_of, as_json);
  sink.whole("waves_written", r.waves_written);
  object("world_after", r.world_after, as_json);
  object("world_replaced", world_replaced, as_json);
  object("written_by", r.written_by, written_by_json);
}

}  // namespace

json RecordFold::save() const {
  DocumentSink document;
  save_members(m_record, m_all, m_stops, m_overrides, m_stop_inputs, m_unfinished_writes, m_world_replaced, document);
  return document.take();
}

namespace {
// `response` counted in (sign 1) or out of (sign -1) its scene's caching sums.
void count_caching(Record& record, const RecordedResponse& response, int64_t sign) {
  SceneCaching& sums = record.caching_by_scene[response.scene_id];
  sums.cached_input_tokens += sign * response.cached_input_tokens;
  sums.saved_micro_usd += sign * response.caching_saved_micro_usd;
}

// Record::caching_by_scene counted from the responses of a restored fold.
void count_caching(Record& record) {
  record.caching_by_scene.clear();
  for (const auto& [key, facts] : record.exchanges) {
    if (facts.response) {
      count_caching(record, *facts.response, 1);
    }
  }
}
}  // namespace

namespace {

// The flat encoding of the fold's members (RecordFold::save(ByteWriter&)): one overload a type,
// declared before any is defined so that the containers' overloads find each other.
void put(core::ByteWriter& out, const std::string& value);
void put(core::ByteWriter& out, const json& value);
void put(core::ByteWriter& out, int value);
void put(core::ByteWriter& out, int64_t value);
void put(core::ByteWriter& out, const RecordedResponse& value);
void put(core::ByteWriter& out, const StepSummary& value);
void put(core::ByteWriter& out, const FlatJson& value);
void put(core::ByteWriter& out, const WrittenBy& value);
template <typename A, typename B>
void put(core::ByteWriter& out, const std::pair<A, B>& value);
template <typename T>
void put(core::ByteWriter& out, const std::vector<T>& values);
template <typename T>
void put(core::ByteWriter& out, const std::set<T>& values);
template <typename K, typename V>
void put(core::ByteWriter& out, const std::map<K, V>& values);

void take(core::ByteReader& in, std::string& value);
void take(core::ByteReader& in, json& value);
void take(core::ByteReader& in, int& value);
void take(core::ByteReader& in, int64_t& value);
void take(core::ByteReader& in, RecordedResponse& value);
void take(core::ByteReader& in, WrittenBy& value);
void take(core::ByteReader& in, FlatJson& value);
template <typename A, typename B>
void take(core::ByteReader& in, std::pair<A, B>& value);
template <typename T>
void take(core::ByteReader& in, std::vector<T>& values);
template <typename T>
void take(core::ByteReader& in, std::set<T>& values);
template <typename K, typename V>
void take(core::ByteReader& in, std::map<K, V>& values);

void put(core::ByteWriter& out, const std::string& value) { out.text(value); }
void put(core::ByteWriter& out, const json& value) { out.json(value); }
void put(core::ByteWriter& out, int value) { out.i64(value); }
void put(core::ByteWriter& out, int64_t value) { out.i64(value); }
void put(core::ByteWriter& out, const RecordedResponse& value) {
  out.i64(value.seq);
  out.text(value.scene_id);
  out.i64(value.cached_input_tokens);
  out.i64(value.caching_saved_micro_usd);
}
// Both as the JSON members they were before (the same bytes: the format did not change), copied
// as they are kept: what out.json(*value) would write, without decoding 24,000 summaries into
// documents at 500 scenes.
void put(core::ByteWriter& out, const StepSummary& value) { out.json_bytes(value.bytes()); }
void put(core::ByteWriter& out, const FlatJson& value) { out.json_bytes(value.bytes()); }
void put(core::ByteWriter& out, const WrittenBy& value) { out.json(written_by_json(value)); }
template <typename A, typename B>
void put(core::ByteWriter& out, const std::pair<A, B>& value) {
  put(out, value.first);
  put(out, value.second);
}
template <typename T>
void put(core::ByteWriter& out, const std::vector<T>& values) {
  out.u64(values.size());
  for (const T& value : values) {
    put(out, value);
  }
}
template <typename T>
void put(core::ByteWriter& out, const std::set<T>& values) {
  out.u64(values.size());
  for (const T& value : values) {
    put(out, value);
  }
}
template <typename K, typename V>
void put(core::ByteWriter& out, const std::map<K, V>& values) {
  out.u64(values.size());
  for (const auto& [key, value] : values) {
    put(out, key);
    put(out, value);
  }
}

void take(core::ByteReader& in, std::string& value) { value = in.text(); }
void take(core::ByteReader& in, json& value) { value = in.json(); }
void take(core::ByteReader& in, int& value) {
  const int64_t read = in.i64();
  if (read < std::numeric_limits<int>::min() || read > std::numeric_limits<int>::max()) {
    in.fail();
  }
  value = static_cast<int>(read);
}
void take(core::ByteReader& in, int64_t& value) { value = in.i64(); }
void take(core::ByteReader& in, RecordedResponse& value) {
  value.seq = in.i64();
  value.scene_id = in.text();
  value.cached_input_tokens = in.i64();
  value.caching_saved_micro_usd = in.i64();
}
// A summary at `in`'s place, kept as its bytes (not decoded and encoded again).
StepSummary take_summary(core::ByteReader& in) {
  const std::string_view kept = in.json_bytes();
  return in.ok() ? StepSummary(std::string(kept)) : StepSummary();
}
void take(core::ByteReader& in, FlatJson& value) { value = FlatJson::of_bytes(std::string(in.json_bytes())); }
void take(core::ByteReader& in, WrittenBy& value) {
  std::optional<WrittenBy> read = written_by_of(in.json());
  if (!read) {
    in.fail();
    return;
  }
  value = std::move(*read);
}
template <typename A, typename B>
void take(core::ByteReader& in, std::pair<A, B>& value) {
  take(in, value.first);
  take(in, value.second);
}
template <typename T>
void take(core::ByteReader& in, std::vector<T>& values) {
  for (size_t n = in.count(); n > 0 && in.ok(); --n) {
    T value{};
    take(in, value);
    values.push_back(std::move(value));
  }
}
template <typename T>
void take(core::ByteReader& in, std::set<T>& values) {
  for (size_t n = in.count(); n > 0 && in.ok(); --n) {
    T value{};
    take(in, value);
    values.emplace_hint(values.end(), std::move(value));
  }
}
template <typename K, typename V>
void take(core::ByteReader& in, std::map<K, V>& values) {
  for (size_t n = in.count(); n > 0 && in.ok(); --n) {
    K key{};
    take(in, key);
    V value{};
    take(in, value);
    values.emplace_hint(values.end(), std::move(key), std::move(value));
  }
}

// One of the maps Record::exchanges stands for (responses, intents, reservations), as a map of its
// own: the keys whose facts `has` says hold one, each with what `value` writes.
template <typename Has, typename Value>
void put_exchanges(core::ByteWriter& out, const std::map<std::string, ExchangeFacts>& exchanges, Has has, Value value) {
  out.u64(static_cast<uint64_t>(std::count_if(exchanges.begin(), exchanges.end(), [&](const auto& e) { return has(e.second); })));
  for (const auto& [key, facts] : exchanges) {
    if (has(facts)) {
      out.text(key);
      value(out, facts);
    }
  }
}
// put_exchanges read back into `exchanges` (a key read twice in one map is refused).
template <typename Value>
void take_exchanges(core::ByteReader& in, std::map<std::string, ExchangeFacts>& exchanges, Value value) {
  std::string previous;
  for (size_t n = in.count(), i = 0; i < n && in.ok(); ++i) {
    std::string key = in.text();
    if (i > 0 && key <= previous) {
      in.fail();  // put_exchanges writes keys once each, in ascending order
      return;
    }
    value(in, exchanges[key]);
    previous = std::move(key);
  }
}
// A count of intents or reservations: never 0 in a map the fold saved.
void take_count(core::ByteReader& in, int& count) {
  take(in, count);
  if (count == 0) {
    in.fail();
  }
}

// The members of the flat encoding, in their order (the format): each written to `out`, then
// handed to `after`: after.written() when a member is still to be read by a later one (the
// exchanges, three maps in one), after.release(member) when it is done with. The members are
// const or not as the caller's are: save() passes its own, save_parts() && lets go of each.
template <typename RecordT, typename StopInputs, typename Unfinished, typename WorldReplaced, typename After>
void put_members(core::ByteWriter& out, bool all, RecordT& r, const governance::HardStopFold& stops,
                 const governance::Overrides& overrides, StopInputs& stop_inputs, Unfinished& unfinished_writes,
                 WorldReplaced& world_replaced, After&& after) {
  out.u64(all ? 1 : 0);
  // The exchanges as the three maps they were (responses, intents, reservations): the same bytes.
  put_exchanges(out, r.exchanges, [](const ExchangeFacts& f) { return f.response.has_value(); },
                [](core::ByteWriter& o, const ExchangeFacts& f) { put(o, *f.response); });
  after.written();
  put(out, r.steps);
  after.release(r.steps);
  put(out, r.loops);
  after.release(r.loops);
  put_exchanges(out, r.exchanges, [](const ExchangeFacts& f) { return f.intents != 0; },
                [](core::ByteWriter& o, const ExchangeFacts& f) { put(o, f.intents); });
  after.written();
  put(out, r.intent_reservations);
  after.release(r.intent_reservations);
  put(out, r.fallbacks);
  after.release(r.fallbacks);
  put(out, r.tickets);
  after.release(r.tickets);
  put_exchanges(out, r.exchanges, [](const ExchangeFacts& f) { return f.reservations != 0; },
                [](core::ByteWriter& o, const ExchangeFacts& f) { put(o, f.reservations); });
  after.release(r.exchanges);
  put(out, r.written_by);
  after.release(r.written_by);
  put(out, r.cut_short);
  after.release(r.cut_short);
  put(out, r.world_after);
  after.release(r.world_after);
  put(out, r.revisions_done);
  after.release(r.revisions_done);
  put(out, r.media);
  after.release(r.media);
  put(out, r.renders);
  after.release(r.renders);
  put(out, r.media_paths);
  after.release(r.media_paths);
  put(out, r.shot_attempts);
  after.release(r.shot_attempts);
  put(out, r.analyzer_runs);
  after.release(r.analyzer_runs);
  put(out, r.rounds);
  after.release(r.rounds);
  put(out, r.waves_written);
  after.release(r.waves_written);
  put(out, r.wave_of);
  after.release(r.wave_of);
  put(out, r.triggers_fired);
  after.release(r.triggers_fired);
  put(out, r.firing_verdicts);
  after.release(r.firing_verdicts);
  put(out, r.stopped_loops);
  after.release(r.stopped_loops);
  put(out, r.open_stops);
  after.release(r.open_stops);
  out.json(stops.save());
  out.json(overrides.save());
  after.written();
  put(out, stop_inputs);
  after.release(stop_inputs);
  put(out, unfinished_writes);
  after.release(unfinished_writes);
  put(out, world_replaced);
  after.release(world_replaced);
  out.json(r.tally.save());  // (since format 9)
  after.written();
}

// save(): every member kept, one writer.
struct KeepMembers {
  void written() {}
  template <typename Member>
  void release(const Member&) {}
};

// save_parts(): each member let go of once written, the bytes cut into parts as they grow.
class ReleaseMembers {
 public:
  explicit ReleaseMembers(SectionParts& parts) : m_parts(parts) {}
  void written() { m_parts.cut(); }
  template <typename Member>
  void release(Member& member) {
    Member().swap(member);  // (clear() would keep a vector's buffer)
    m_parts.cut();
  }

 private:
  SectionParts& m_parts;
};

}  // namespace

void RecordFold::save(core::ByteWriter& out) const {
  put_members(out, m_all, m_record, m_stops, m_overrides, m_stop_inputs, m_unfinished_writes, m_world_replaced,
              KeepMembers{});
}

std::vector<std::string> RecordFold::save_parts(SectionParts::Sink sink) && {
  SectionParts parts(std::move(sink));
  put_members(parts.out(), m_all, m_record, m_stops, m_overrides, m_stop_inputs, m_unfinished_writes,
              m_world_replaced, ReleaseMembers(parts));
  return parts.take();
}

std::optional<RecordFold> RecordFold::restore_bytes(std::string_view bytes) {
  core::ByteReader in(bytes);
  const uint64_t all = in.u64();
  if (all > 1) {
    return std::nullopt;
  }
  RecordFold fold(all == 1 ? RecordParts::all : RecordParts::renders);
  Record& r = fold.m_record;
  take_exchanges(in, r.exchanges, [](core::ByteReader& i, ExchangeFacts& f) {
    RecordedResponse response;
    take(i, response);
    f.response = std::move(response);
  });
  for (size_t n = in.count(); n > 0 && in.ok(); --n) {
    std::string step = in.text();
    StepSummary summary = take_summary(in);
    r.steps.emplace_hint(r.steps.end(), std::move(step), std::move(summary));
  }
  // Each loop's summary shares its step's when they are equal, as the fold that saved them did.
  for (size_t n = in.count(); n > 0 && in.ok(); --n) {
    std::string loop = in.text();
    StepSummary summary = loop_summary(r.steps, take_summary(in));
    r.loops.emplace_hint(r.loops.end(), std::move(loop), std::move(summary));
  }
  take_exchanges(in, r.exchanges, [](core::ByteReader& i, ExchangeFacts& f) { take_count(i, f.intents); });
  take(in, r.intent_reservations);
  take(in, r.fallbacks);
  take(in, r.tickets);
  take_exchanges(in, r.exchanges, [](core::ByteReader& i, ExchangeFacts& f) { take_count(i, f.reservations); });
  take(in, r.written_by);
  count_caching(r);
  take(in, r.cut_short);
  take(in, r.world_after);
  take(in, r.revisions_done);
  take(in, r.media);
  take(in, r.renders);
  take(in, r.media_paths);
  take(in, r.shot_attempts);
  take(in, r.analyzer_runs);
  take(in, r.rounds);
  take(in, r.waves_written);
  take(in, r.wave_of);
  take(in, r.triggers_fired);
  take(in, r.firing_verdicts);
  take(in, r.stopped_loops);
  take(in, r.open_stops);
  const json stops = in.json();
  const json overrides = in.json();
  take(in, fold.m_stop_inputs);
  take(in, fold.m_unfinished_writes);
  take(in, fold.m_world_replaced);
  const json tally = in.json();
  if (!in.done()) {
    return std::nullopt;
  }
  try {
    fold.m_stops = governance::HardStopFold::restore(stops);
    fold.m_overrides = governance::Overrides::restore(overrides);
    r.tally = RecordTally::restore(tally);
  } catch (const json::exception&) {
    return std::nullopt;
  }
  return fold;
}

json step_summary(const json& body) {
  json kept = json::object();
  if (!body.is_object()) {
    return kept;
  }
  for (const char* field : {"attempt", "verdict", "loop", "step", "graph_step", "escalations", "tier", "via_tier",
                            "via_escalations", "reroutes", "trigger", "inputs_by_name"}) {
    if (auto it = body.find(field); it != body.end()) {
      kept[field] = *it;
    }
  }
  const std::string verdict = body.value("verdict", "");
  if (auto reasons = body.find("reasons"); reasons != body.end() && (verdict == "FAIL" || verdict == "FIX")) {
    kept["reasons"] = *reasons;
  }
  return kept;
}

json readable_summary(const json& body) {
  json kept = json::object();
  if (!body.is_object()) {
    return kept;
  }
  for (const char* field : {"attempt", "verdict", "loop", "step", "graph_step"}) {
    if (auto it = body.find(field); it != body.end()) {
      kept[field] = *it;
    }
  }
  return kept;
}

namespace {
json kept_members(const json& body, std::initializer_list<const char*> members) {
  json kept = json::object();
  if (!body.is_object()) {
    return kept;
  }
  for (const char* member : members) {
    if (auto it = body.find(member); it != body.end()) {
      kept[member] = *it;
    }
  }
  return kept;
}
}  // namespace

json media_summary(const json& body) {
  return kept_members(
      body, {"shot_id", "scene_id", "resolution", "attempt", "path", "sha256", "model", "tier", "key", "inputs"});
}

json render_summary(const json& body) { return kept_members(body, {"inputs", "input_hashes"}); }


void note_response(Record& record, const std::string& key, int64_t seq, const json& body) {
  std::optional<RecordedResponse>& response = record.exchanges[key].response;
  if (response) {
    count_caching(record, *response, -1);  // a key's last response replaces the one before
  }
  RecordedResponse& kept = response.emplace();
  kept.seq = seq;
  kept.scene_id = body.value("scene_id", "");
  kept.cached_input_tokens = body.value("cached_input_tokens", int64_t{0});
  kept.caching_saved_micro_usd = body.value("caching_saved_micro_usd", int64_t{0});
  count_caching(record, kept, 1);
}

Result<json> response_body(const ledger::Ledger& ledger, const RecordedResponse& response) {
  ledger::Ledger::EventQuery one;
  one.after_seq = response.seq - 1;
  one.limit = 1;
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> read, ledger.events(one));
  if (read.empty() || read.front().seq != response.seq || read.front().kind != ledger::ExchangeResponse::k_kind) {
    return make_error(ErrorCode::corruption,
                      "ledger event " + std::to_string(response.seq) + " is no longer the exchange.response it was");
  }
  return std::move(read.front().body);
}

namespace {

// What every reader of the whole record asks of the ledger. No fold reads an artifact's intent (its
// members: intent, details, row_to_record; the write's artifact.recorded carries what the run
// needs): its body, a sixth of the record's bytes at 500 scenes, is not parsed. The read model
// skips it alike (report::Book::read).
ledger::Ledger::EventQuery record_query(int64_t after_seq) {
  ledger::Ledger::EventQuery query;
  query.after_seq = after_seq;
  query.bodiless = {"artifact.intent"};
  return query;
}

// The fold of every event up to `until_seq` (0: every event) added to `fold`.
Result<void> fold_events(const ledger::Ledger& ledger, RecordFold& fold, int64_t after_seq, int64_t until_seq = 0) {
  return ledger.each_event(record_query(after_seq), [&](ledger::Event&& e) -> Result<void> {
    if (until_seq == 0 || e.seq <= until_seq) {
      fold.add(e);
    }
    return ok();
  });
}

// The run's fold restored from the project's checkpoint, or why it was not.
Result<std::variant<RecordFold, std::string>> restored_run_fold(project::Project& project, int64_t& seq) {
  using Restored = std::variant<RecordFold, std::string>;
  AVPS_TRY_ASSIGN(const std::string dependencies, fold_dependencies(project));
  AVPS_TRY_ASSIGN(auto opened, UsableCheckpoint::open(project, dependencies));
  if (std::string* why = std::get_if<std::string>(&opened)) {
    return Restored(std::move(*why));
  }
  UsableCheckpoint& checkpoint = std::get<UsableCheckpoint>(opened);
  std::ignore = checkpoint.take_fold();  // the read model's: the run reads only the head of it
  Result<std::string> section = checkpoint.section(CheckpointSection::run_record);
  if (!section) {
    return Restored(section.error().message);
  }
  std::optional<RecordFold> fold = RecordFold::restore_bytes(*section);
  if (!fold || !fold->all()) {
    return Restored(std::string("malformed: its run's record is not one this avps saved"));
  }
  seq = checkpoint.head().seq;
  return Restored(std::move(*fold));
}

}  // namespace

bool record_fold_ignores(const ledger::Event& e) {
  // RecordFold::add: the hard-stop and override folds read neither kind, no branch of its own
  // reads them, and only a body with a "reservation" could count one (ledger::reservation_of).
  return (e.kind == "run.started" || e.kind == "run.finished") && e.body.is_object() &&
         !e.body.contains("reservation");
}

std::string first_difference(const json& saved, const json& other) {
  if (!saved.is_object() || !other.is_object()) {
    return saved == other ? "" : "the whole fold";
  }
  for (const auto& [member, value] : saved.items()) {
    auto it = other.find(member);
    if (it == other.end() || *it != value) {
      return member;
    }
  }
  for (const auto& [member, value] : other.items()) {
    if (!saved.contains(member)) {
      return member;
    }
  }
  return "";
}

Result<Record> read_record(const ledger::Ledger& ledger) {
  RecordFold fold(RecordParts::all);
  AVPS_TRY(fold_events(ledger, fold, 0));
  return std::move(fold).finish();
}

Result<Record> read_record(project::Project& project, RestoredRecordCheck check) {
  const ledger::Ledger& ledger = project.ledger();
  int64_t seq = 0;
  AVPS_TRY_ASSIGN(auto restored, restored_run_fold(project, seq));
  if (std::string* why = std::get_if<std::string>(&restored)) {
    core::diag::debug("fold checkpoint " + checkpoint_path(project.dir()).string() + " not used by the run (" + *why +
                      "): every event is folded");
    return read_record(ledger);
  }
  RecordFold& fold = std::get<RecordFold>(restored);
  size_t tail = 0;
  int64_t last = seq;
  AVPS_TRY(ledger.each_event(record_query(seq), [&](ledger::Event&& e) -> Result<void> {
    fold.add(e);
    ++tail;
    last = e.seq;
    return ok();
  }));
  core::diag::debug("fold checkpoint as of event " + std::to_string(seq) + " used by the run: " +
                    std::to_string(tail) + " events folded after it");
  if (check == RestoredRecordCheck::against_whole_fold) {
    // The same events folded from the first (up to the last one the restored fold took: the run
    // is the ledger's only writer, so nothing follows it): a restore that goes on differently
    // from a fold of every event is an error, never a run on a wrong record.
    RecordFold whole(RecordParts::all);
    AVPS_TRY(fold_events(ledger, whole, 0, last));
    if (const std::string member = first_difference(fold.save(), whole.save()); !member.empty()) {
      return make_error(ErrorCode::corruption,
                        "the run's record restored from the fold checkpoint (as of event " + std::to_string(seq) +
                            ") differs from the fold of every event in `" + member +
                            "`: delete .avps/fold_checkpoint and report this as a bug");
    }
  }
  return std::move(fold).finish();
}

// At most this many events after the previous checkpoint are looked at for a carry: a run with
// nothing to do records two.
constexpr size_t k_run_record_carry_max = 16;

Result<void> write_run_record_section(const ledger::Ledger& ledger, const UsableCheckpoint* previous, int64_t seq,
                                      CheckpointWriter& out) {
  std::optional<RecordFold> fold;
  int64_t after = 0;
  if (previous != nullptr) {
    Result<std::string> bytes = previous->section(CheckpointSection::run_record);
    if (!bytes) {
      core::diag::debug("the run's record of the previous fold checkpoint not used (" + bytes.error().message +
                        "): every event is folded");
    } else {
      ledger::Ledger::EventQuery tail;
      tail.after_seq = previous->head().seq;
      tail.limit = k_run_record_carry_max + 1;
      AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, ledger.events(tail));
      std::erase_if(events, [seq](const ledger::Event& e) { return e.seq > seq; });
      if (events.size() <= k_run_record_carry_max && std::all_of(events.begin(), events.end(), record_fold_ignores)) {
        // What a fold of these events onto it would save again, byte for byte.
        out.write(CheckpointSection::run_record, *bytes);
        return ok();
      }
      fold = RecordFold::restore_bytes(*bytes);
      std::string().swap(*bytes);  // restored: the fold is all that is kept of it
      if (fold && !fold->all()) {
        fold.reset();
      }
      if (fold) {
        after = previous->head().seq;
      } else {
        core::diag::debug(
            "the run's record of the previous fold checkpoint not used (malformed): every event is folded");
      }
    }
  }
  if (!fold) {
    fold.emplace(RecordParts::all);
    after = 0;
  }
  AVPS_TRY(fold_events(ledger, *fold, after, seq));
  std::ignore = std::move(*fold).save_parts(out.sink(CheckpointSection::run_record));  // none: all went to out
  fold.reset();  // saved
  return ok();
}

Record read_record(const std::vector<ledger::Event>& events, RecordParts parts) {
  RecordFold fold(parts);
  for (const ledger::Event& e : events) {
    fold.add(e);
  }
  return std::move(fold).finish();
}

}  // namespace avps::engine
