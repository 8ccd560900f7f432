#include "avps/governance/override.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/governance/budget.hpp"
#include "avps/governance/budget_status.hpp"
#include "avps/ledger/events.hpp"

namespace avps::governance {
using nlohmann::json;

namespace {

constexpr int64_t k_max_cap_micro_usd = 100'000'000LL * 1'000'000LL;  // avps.json's own limit
constexpr int k_max_extra_attempts = 1000;

// Digits with at most 6 decimals as micro-USD; nullopt for anything else (the run log's costs).
std::optional<int64_t> micro_from_decimal(std::string_view text) {
  const std::size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  auto all_digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || whole.size() > 12 || !all_digits(whole) || fraction.size() > 6 ||
      !all_digits(fraction) || (dot != std::string_view::npos && fraction.empty())) {
    return std::nullopt;
  }
  int64_t micro = std::stoll(std::string(whole)) * 1'000'000;
  std::string padded(fraction);
  padded.append(6 - padded.size(), '0');
  return micro + std::stoll(padded);
}

std::optional<int64_t> integer_of(const json& object, const char* key) {
  if (object.is_object() && object.contains(key) && object[key].is_number_integer()) {
    return object[key].get<int64_t>();
  }
  return std::nullopt;
}

// "plausibility-auditor/S03" from the engine's step key "plausibility-auditor/S03@<inputs hash>".
// The loop a step.finished event belongs to: its "loop" member (the engine writes one), else the
// step key before its input digest (events written before loops were recorded).
std::string loop_of_step(const nlohmann::json& body) {
  if (body.contains("loop") && body["loop"].is_string()) {
    return body["loop"].get<std::string>();
  }
  const std::string step = body.value("step", "");
  return step.substr(0, step.find('@'));
}

StopKind stop_kind_of(const std::string& name) {
  if (name == "budget") {
    return StopKind::budget;
  }
  if (name == "frozen") {
    return StopKind::frozen;
  }
  if (name == "integrity") {
    return StopKind::integrity;
  }
  return StopKind::gate;  // the only kind before stops said which
}

Error refuse(const std::string& message) {
  return make_error(ErrorCode::invalid_argument, message);
}

// The ids an accepted artifact's target may be: the stop's scope, else the loop's context.
std::set<std::string> scope_targets(const HardStop& stop) {
  std::set<std::string> ids;
  for (const char* key : {"scene_id", "shot_id", "entity_id"}) {
    if (std::string id = core::json_text(stop.scope, key); !id.empty()) {
      ids.insert(id);
    }
  }
  if (ids.empty()) {
    if (std::size_t slash = stop.loop.find('/'); slash != std::string::npos) {
      ids.insert(stop.loop.substr(slash + 1));
    }
  }
  return ids;
}

std::string join(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    out += (out.empty() ? "" : ", ") + item;
  }
  return out;
}

// The render a person accepts for a frozen shot: `name` is one of the loop's graded renders
// ("S02_SH01_proxy_a04.mp4", with or without "media/"), or "best": the attempt QC ranked highest
// (FIX above FAIL), the latest among equals. Returns the render's path as media.recorded has it.
Result<json> accepted_render(const std::vector<ledger::Event>& events, const HardStop& stop, const std::string& name) {
  std::map<int, std::string> verdicts;  // attempt -> its last QC verdict in the stopped loop
  for (const ledger::Event& e : events) {
    std::optional<ledger::StepFinished> step = ledger::StepFinished::from_event(e);
    if (step && step->loop == stop.loop && step->shot_attempt) {
      verdicts[step->shot_attempt->attempt] = step->verdict;
    }
  }
  const std::string shot = core::json_text(stop.scope, "shot_id");
  const std::string resolution = stop.loop.substr(stop.loop.rfind('/') + 1);
  std::map<int, std::string> renders;  // graded attempt -> its render
  for (const ledger::Event& e : events) {
    std::optional<ledger::MediaRecorded> render = ledger::MediaRecorded::from_event(e);
    if (render && render->shot_id == shot && render->resolution == resolution && verdicts.count(render->attempt)) {
      renders[render->attempt] = render->path;
    }
  }
  if (renders.empty()) {
    return refuse(stop.id() + " froze " + shot + " (" + resolution + ") with no graded render to accept");
  }
  if (name == "best") {
    auto rank = [&](int attempt) { return verdicts[attempt] == "FIX" ? 1 : 0; };
    int best = renders.begin()->first;
    for (const auto& [attempt, path] : renders) {
      best = rank(attempt) >= rank(best) ? attempt : best;
    }
    return json(renders[best]);
  }
  for (const auto& [attempt, path] : renders) {
    if (path == name || path == "media/" + name) {
      return json(path);
    }
  }
  std::set<std::string> known;
  for (const auto& [attempt, path] : renders) {
    known.insert(path.substr(path.rfind('/') + 1));
  }
  return refuse(name + " is not a graded render of " + shot + " (" + resolution + "); give one of " + join(known) +
                ", or best");
}

OverrideRecord record_from_body(int64_t event_seq, const json& body) {
  OverrideRecord r;
  r.event_seq = event_seq;
  r.stop_seq = integer_of(body, "stop_seq").value_or(0);
  r.skill = core::json_text(body, "skill");
  r.loop = core::json_text(body, "loop");
  r.scope = body.value("scope", json::object());
  r.reason = core::json_text(body, "reason");
  const json decision = body.value("decision", json::object());
  r.decision = core::json_text(decision, "kind");
  r.value = decision.value("value", json());
  r.cap = core::json_text(decision, "cap");
  r.cost_impact_micro_usd = integer_of(body, "cost_impact_micro_usd").value_or(0);
  return r;
}

}  // namespace

std::string_view stop_kind_name(StopKind kind) {
  switch (kind) {
    case StopKind::gate:
      return "gate";
    case StopKind::budget:
      return "budget";
    case StopKind::frozen:
      return "frozen";
    case StopKind::integrity:
      return "integrity";
  }
  return "gate";
}

void HardStopFold::add(const ledger::Event& e) {
  if (e.kind == "step.finished") {
    const std::string loop = loop_of_step(e.body);
    m_last_loop_of_skill[core::json_text(e.body, "skill")] = loop;
    if (std::optional<ledger::LogRow> row = e.row()) {
      if (std::optional<int64_t> cost = micro_from_decimal(row->actual_cost)) {
        m_last_cost_of_loop[loop] = *cost;
      }
    }
    // An attempt of the loop that passed after its stop: the inputs were revised and it passed.
    const std::string verdict = core::json_text(e.body, "verdict");
    if (verdict != "FAIL" && verdict != "STOP") {
      m_open.erase(loop);
    }
  } else if (e.kind == "run.hard_stop") {
    HardStop stop;
    stop.seq = e.seq;
    stop.skill = core::json_text(e.body, "skill");
    stop.kind = stop_kind_of(core::json_text(e.body, "kind"));
    stop.loop = core::json_text(e.body, "loop");
    if (stop.loop.empty()) {
      auto last = m_last_loop_of_skill.find(stop.skill);
      stop.loop = last != m_last_loop_of_skill.end() ? last->second : stop.skill;
    }
    if (e.body.contains("scope") && e.body["scope"].is_object()) {
      stop.scope = e.body["scope"];
    }
    stop.reason = core::json_text(e.body, "reason");
    stop.graph_step = core::json_text(e.body, "graph_step");
    stop.findings = e.body.value("findings", json::array());
    stop.cap = core::json_text(e.body, "cap");
    if (stop.kind == StopKind::budget && stop.cap.empty()) {
      stop.cap = "project";
    }
    stop.needed_micro_usd = integer_of(e.body, "needed_micro_usd");
    if (auto cost = m_last_cost_of_loop.find(stop.loop); cost != m_last_cost_of_loop.end()) {
      stop.last_attempt_micro_usd = cost->second;
    }
    // Per loop, the latest stop is the open one.
    m_by_seq[stop.seq] = m_all.size();
    m_open[stop.loop] = m_all.size();
    m_all.push_back(std::move(stop));
  } else if (e.kind == "stop.resolved") {
    auto resolved = m_by_seq.find(integer_of(e.body, "stop_seq").value_or(0));
    if (resolved != m_by_seq.end()) {
      auto open = m_open.find(m_all[resolved->second].loop);
      if (open != m_open.end() && open->second == resolved->second) {
        m_open.erase(open);
      }
    }
  } else if (e.kind == "stop.override") {
    m_overridden.insert(integer_of(e.body, "stop_seq").value_or(0));
  }
}

std::vector<HardStop> HardStopFold::open() const {
  std::vector<HardStop> out;
  for (const auto& [loop, index] : m_open) {
    if (!m_overridden.count(m_all[index].seq)) {
      out.push_back(m_all[index]);
    }
  }
  std::sort(out.begin(), out.end(), [](const HardStop& a, const HardStop& b) { return a.seq < b.seq; });
  return out;
}

namespace {

json optional_json(const std::optional<int64_t>& value) { return value ? json(*value) : json(nullptr); }
std::optional<int64_t> optional_of(const json& value) {
  return value.is_null() ? std::nullopt : std::optional<int64_t>(value.get<int64_t>());
}

}  // namespace

json HardStopFold::save() const {
  json all = json::array();
  for (const HardStop& stop : m_all) {
    all.push_back({stop.seq, stop.skill, std::string(stop_kind_name(stop.kind)), stop.loop, stop.scope, stop.reason,
                   stop.graph_step, stop.findings, stop.cap, optional_json(stop.needed_micro_usd),
                   optional_json(stop.last_attempt_micro_usd)});
  }
  return {{"all", all},
          {"by_seq", m_by_seq},
          {"last_loop_of_skill", m_last_loop_of_skill},
          {"last_cost_of_loop", m_last_cost_of_loop},
          {"open", m_open},
          {"overridden", m_overridden}};
}

HardStopFold HardStopFold::restore(const json& saved) {
  HardStopFold fold;
  for (const json& item : saved.at("all")) {
    HardStop stop;
    stop.seq = item.at(0).get<int64_t>();
    stop.skill = item.at(1).get<std::string>();
    stop.kind = stop_kind_of(item.at(2).get<std::string>());
    stop.loop = item.at(3).get<std::string>();
    stop.scope = item.at(4);
    stop.reason = item.at(5).get<std::string>();
    stop.graph_step = item.at(6).get<std::string>();
    stop.findings = item.at(7);
    stop.cap = item.at(8).get<std::string>();
    stop.needed_micro_usd = optional_of(item.at(9));
    stop.last_attempt_micro_usd = optional_of(item.at(10));
    fold.m_all.push_back(std::move(stop));
  }
  saved.at("by_seq").get_to(fold.m_by_seq);
  saved.at("last_loop_of_skill").get_to(fold.m_last_loop_of_skill);
  saved.at("last_cost_of_loop").get_to(fold.m_last_cost_of_loop);
  saved.at("open").get_to(fold.m_open);
  saved.at("overridden").get_to(fold.m_overridden);
  for (const auto& [key, index] : fold.m_by_seq) {
    fold.m_all.at(index);  // an index out of range is a malformed save: at() throws
  }
  for (const auto& [key, index] : fold.m_open) {
    fold.m_all.at(index);
  }
  return fold;
}

std::vector<HardStop> hard_stops(const std::vector<ledger::Event>& events) {
  HardStopFold fold;
  for (const ledger::Event& e : events) {
    fold.add(e);
  }
  return fold.all();
}

std::vector<HardStop> open_hard_stops(const std::vector<ledger::Event>& events) {
  HardStopFold fold;
  for (const ledger::Event& e : events) {
    fold.add(e);
  }
  return fold.open();
}

Result<int64_t> parse_stop_id(std::string_view id) {
  constexpr std::string_view prefix = "STOP-";
  std::string_view digits =
      id.substr(0, prefix.size()) == prefix ? id.substr(prefix.size()) : std::string_view();
  if (digits.empty() || digits.size() > 18 || digits.front() == '0' ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return refuse("\"" + std::string(id.substr(0, 40)) +
                  "\" is not a hard stop id; ids look like STOP-42 (`avps status` lists the open ones)");
  }
  return std::stoll(std::string(digits));
}

Result<int64_t> parse_usd(std::string_view text) {
  std::optional<int64_t> micro = micro_from_decimal(text);
  if (!micro) {
    return refuse("\"" + std::string(text.substr(0, 40)) +
                  "\" is not an amount in USD: digits with at most six decimals, like 300 or 312.50");
  }
  if (*micro <= 0 || *micro > k_max_cap_micro_usd) {
    return refuse("a cap must be more than 0 and at most 100000000 USD; got " + std::string(text));
  }
  return *micro;
}

std::string OverrideRecord::describe() const {
  if (decision == "raise_cap" && value.is_number_integer()) {
    const int64_t to = value.get<int64_t>();
    return "raise the " + cap + " cap from " + usd_decimal(to - cost_impact_micro_usd) + " to " +
           usd_decimal(to) + " USD";
  }
  if (decision == "allow_attempts" && value.is_number_integer()) {
    const int64_t n = value.get<int64_t>();
    return "allow " + std::to_string(n) + " more attempt" + (n == 1 ? "" : "s") + " for " + loop;
  }
  if (decision == "accept" && value.is_string()) {
    return "accept " + value.get<std::string>() + " for " + loop;
  }
  return decision;
}

std::string budget_stop_cap(const json& budget_status, const json& gate_reasons) {
  auto label = [](const std::string& scope) -> std::string {
    if (artifacts::is_shot_id(scope)) {
      return "shot " + scope;
    }
    if (artifacts::is_scene_id(scope)) {
      return "scene " + scope;
    }
    return "project";
  };
  for (const json& action : budget_status.value("enforcement_actions", json::array())) {
    if (action.is_object() && action.value("action", "") == "hard_stop") {
      return label(action.value("scope", ""));
    }
  }
  for (const std::string& cap : caps_over_projection(gate_reasons)) {
    if (cap != "project") {
      return cap;
    }
  }
  return "project";
}

std::vector<std::string> caps_over_projection(const json& gate_reasons) {
  std::vector<std::string> out;
  for (const json& reason : gate_reasons.is_array() ? gate_reasons : json::array()) {
    const std::string text = reason.is_string() ? reason.get<std::string>() : "";
    // The FAIL of a projection, not its WARN ("... (warn at 90%)") nor a STOP of committed spend.
    if (text.find("simplify before producing") == std::string::npos) {
      continue;
    }
    const std::size_t colon = text.find(": projected spend ");
    const std::string id = colon == std::string::npos ? "" : text.substr(0, colon);
    if (text.find("scene cap") != std::string::npos && artifacts::is_scene_id(id)) {
      out.push_back("scene " + id);
    } else if (text.find("shot cap") != std::string::npos && artifacts::is_shot_id(id)) {
      out.push_back("shot " + id);
    } else {
      out.push_back("project");
    }
  }
  return out;
}

// ---- Overrides --------------------------------------------------------------------------------

Overrides Overrides::from_events(const std::vector<ledger::Event>& events) {
  Overrides out;
  for (const ledger::Event& e : events) {
    out.add(e);
  }
  return out;
}

void Overrides::add(const ledger::Event& e) {
  if (e.kind != "stop.override") {
    return;
  }
  OverrideRecord record = record_from_body(e.seq, e.body);
  if (record.decision == "raise_cap" && record.value.is_number_integer() && !record.cap.empty()) {
    m_raised_caps[record.cap] = record.value.get<int64_t>();
  }
  m_records.push_back(std::move(record));
}

json Overrides::save() const {
  json records = json::array();
  for (const OverrideRecord& r : m_records) {
    records.push_back({r.event_seq, r.stop_seq, r.skill, r.loop, r.scope, r.reason, r.decision, r.value, r.cap,
                       r.cost_impact_micro_usd});
  }
  return {{"records", records}, {"raised_caps", m_raised_caps}};
}

Overrides Overrides::restore(const json& saved) {
  Overrides out;
  for (const json& item : saved.at("records")) {
    OverrideRecord r;
    r.event_seq = item.at(0).get<int64_t>();
    r.stop_seq = item.at(1).get<int64_t>();
    r.skill = item.at(2).get<std::string>();
    r.loop = item.at(3).get<std::string>();
    r.scope = item.at(4);
    r.reason = item.at(5).get<std::string>();
    r.decision = item.at(6).get<std::string>();
    r.value = item.at(7);
    r.cap = item.at(8).get<std::string>();
    r.cost_impact_micro_usd = item.at(9).get<int64_t>();
    out.m_records.push_back(std::move(r));
  }
  saved.at("raised_caps").get_to(out.m_raised_caps);
  return out;
}

Result<Overrides> Overrides::read(const ledger::Ledger& ledger) {
  ledger::Ledger::EventQuery decisions;
  decisions.kinds = {"stop.override"};
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, ledger.events(decisions));
  return from_events(events);
}

project::Budget Overrides::effective_budget(const project::Budget& configured) const {
  project::Budget out = configured;
  if (auto raised = m_raised_caps.find("project"); raised != m_raised_caps.end()) {
    out.project_cap_micro_usd = raised->second;
  }
  return out;
}

std::optional<int64_t> Overrides::cap(const project::Budget& configured, const std::string& label) const {
  if (auto raised = m_raised_caps.find(label); raised != m_raised_caps.end()) {
    return raised->second;
  }
  if (label == "project") {
    return configured.project_cap_micro_usd;
  }
  if (label.rfind("scene ", 0) == 0) {
    return configured.scene_cap_micro_usd;
  }
  if (label.rfind("shot ", 0) == 0) {
    return configured.shot_cap_micro_usd;
  }
  return std::nullopt;
}

ledger::Caps Overrides::caps_for(const project::Budget& configured, const std::string& scene_id,
                                 const std::string& shot_id) const {
  ledger::Caps caps;
  caps.project_micro_usd = cap(configured, "project").value_or(configured.project_cap_micro_usd);
  if (!scene_id.empty()) {
    caps.scene_micro_usd = cap(configured, "scene " + scene_id);
  }
  if (!shot_id.empty()) {
    caps.shot_micro_usd = cap(configured, "shot " + shot_id);
  }
  return caps;
}

int Overrides::extra_attempts(const std::string& loop_key) const {
  int total = 0;
  for (const OverrideRecord& r : m_records) {
    if (r.decision == "allow_attempts" && r.loop == loop_key && r.value.is_number_integer()) {
      total += r.value.get<int>();
    }
  }
  return total;
}

int Overrides::cap_raises(const std::string& loop_key) const {
  int total = 0;
  for (const OverrideRecord& r : m_records) {
    total += r.decision == "raise_cap" && r.loop == loop_key ? 1 : 0;
  }
  return total;
}

std::optional<std::string> Overrides::accepted(const std::string& loop_key) const {
  std::optional<std::string> out;
  for (const OverrideRecord& r : m_records) {
    if (r.decision == "accept" && r.loop == loop_key && r.value.is_string()) {
      out = r.value.get<std::string>();
    }
  }
  return out;
}

bool Overrides::is_overridden(int64_t stop_seq) const {
  return std::any_of(m_records.begin(), m_records.end(),
                     [stop_seq](const OverrideRecord& r) { return r.stop_seq == stop_seq; });
}

// ---- record_override --------------------------------------------------------------------------

namespace {

// The BUDGET_STATUS under a raised cap: computed over `events`, which hold the decision, and
// checked against its schema before anything is written.
Result<json> status_after_raise(project::Project& project, const std::vector<ledger::Event>& events,
                                const std::string& stop_id) {
  AVPS_TRY_ASSIGN(std::optional<int64_t> projected, latest_projected_total(project));
  AVPS_TRY_ASSIGN(BudgetStatusInput input, budget_status_input(project.ledger(), events, project.config().budget,
                                                               Overrides::from_events(events), projected));
  json status = budget_status_json(input);
  AVPS_TRY_ASSIGN(artifacts::FaceCodec codec,
                  artifacts::FaceCodec::load(project::schema_dirs(project.dir()), "BUDGET_STATUS"));
  if (std::vector<core::SchemaIssue> issues = codec.schema().validate(status); !issues.empty()) {
    return make_error(ErrorCode::schema_violation,
                      core::format_schema_issues("internal error: the BUDGET_STATUS for " + stop_id, issues));
  }
  return status;
}

// A raise_cap is two writes: the decision, then the BUDGET_STATUS under the new cap. When a kill
// or a failed write came between them, the same request again (same cap, same reason) writes the
// missing BUDGET_STATUS, and only that: the decision is never recorded twice. nullopt when
// `request` is not that case (the caller refuses it as already overridden).
Result<std::optional<OverrideRecorded>> complete_raise(project::Project& project,
                                                       const std::vector<ledger::Event>& events,
                                                       const OverrideRecord& recorded, const OverrideRequest& request) {
  if (recorded.decision != "raise_cap" || !request.raise_cap_usd || request.reason != recorded.reason) {
    return std::optional<OverrideRecorded>();
  }
  Result<int64_t> cap = parse_usd(*request.raise_cap_usd);
  if (!cap || !recorded.value.is_number_integer() || recorded.value.get<int64_t>() != *cap) {
    return std::optional<OverrideRecorded>();
  }
  // Any BUDGET_STATUS recorded since the decision was computed under the new cap.
  for (const ledger::Event& e : events) {
    std::optional<ledger::ArtifactRecord> artifact = e.seq > recorded.event_seq ? e.artifact() : std::nullopt;
    if (artifact && artifact->kind == "BUDGET_STATUS") {
      return std::optional<OverrideRecorded>();
    }
  }
  AVPS_TRY_ASSIGN(json status, status_after_raise(project, events, recorded.stop_id()));
  ledger::Ledger& ledger = project.ledger();
  const bool own_run = ledger.run_id().empty();
  if (own_run) {
    AVPS_TRY(ledger.begin_run("override", {{"stop", recorded.stop_id()}, {"completes", recorded.event_seq}}));
  }
  Result<std::string> written = write_budget_status(
      project, status, "override", {{"override", recorded.stop_id()}, {"reason", recorded.reason}});
  if (own_run) {
    Result<void> ended = ledger.end_run(written ? "DONE" : "ERROR",
                                        written ? json::object() : json{{"error", written.error().message}});
    if (written && !ended) {
      return std::move(ended).error();
    }
  }
  if (!written) {
    return std::move(written).error();
  }
  return std::optional<OverrideRecorded>(OverrideRecorded{recorded, *written});
}

}  // namespace

Result<OverrideRecorded> record_override(project::Project& project, const OverrideRequest& request) {
  // Everything is checked before anything is written: a refusal leaves the project as it was.
  const bool blank_reason = std::all_of(request.reason.begin(), request.reason.end(),
                                        [](unsigned char c) { return std::isspace(c) != 0; });
  if (blank_reason) {
    return refuse("an override needs a --reason; it is recorded with the decision");
  }
  const int decisions =
      (request.raise_cap_usd ? 1 : 0) + (request.allow_attempts ? 1 : 0) + (request.accept ? 1 : 0);
  if (decisions != 1) {
    return refuse("give exactly one decision: --raise-cap USD, --allow-attempts N or --accept NAME");
  }
  AVPS_TRY_ASSIGN(int64_t stop_seq, parse_stop_id(request.stop));

  ledger::Ledger& ledger = project.ledger();
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, ledger.events());
  const std::vector<HardStop> stops = hard_stops(events);
  auto found = std::find_if(stops.begin(), stops.end(), [&](const HardStop& s) { return s.seq == stop_seq; });
  if (found == stops.end()) {
    return refuse("there is no hard stop " + request.stop +
                  " in this project; `avps status` lists the open ones");
  }
  const HardStop& stop = *found;
  const Overrides overrides = Overrides::from_events(events);
  for (const OverrideRecord& r : overrides.records()) {
    if (r.stop_seq == stop_seq) {
      AVPS_TRY_ASSIGN(std::optional<OverrideRecorded> completed, complete_raise(project, events, r, request));
      if (completed) {
        return *std::move(completed);
      }
      return refuse(stop.id() + " was already overridden (" + r.describe() + ": " + r.reason + ")");
    }
  }
  const std::vector<HardStop> open = open_hard_stops(events);
  if (std::none_of(open.begin(), open.end(), [&](const HardStop& s) { return s.seq == stop_seq; })) {
    auto later =
        std::find_if(open.begin(), open.end(), [&](const HardStop& s) { return s.loop == stop.loop; });
    return refuse(
        stop.id() + " is no longer open: " +
        (later != open.end()
             ? "the loop " + stop.loop + " stopped again since, as " + later->id() + "; decide on that one"
             : "a later attempt of " + stop.loop + " passed, or a later stop replaced it"));
  }

  const std::string kind_name(stop_kind_name(stop.kind));
  if (stop.kind == StopKind::integrity) {
    return refuse(stop.id() + " is an integrity stop: files no longer match the ledger (`avps gate` lists them). "
                  "No decision lifts it: restore them as the ledger recorded them, and record a change you meant "
                  "with `avps artifact import` or `edit`; the next run finds them in order and goes on");
  }
  OverrideRecord record;
  record.stop_seq = stop_seq;
  record.skill = stop.skill;
  record.loop = stop.loop;
  record.scope = stop.scope;
  record.reason = request.reason;
  const project::Budget& configured = project.config().budget;

  if (request.raise_cap_usd) {
    if (stop.kind != StopKind::budget) {
      return refuse("--raise-cap lifts budget stops; " + stop.id() + " is a " + kind_name +
                    " stop (use --allow-attempts N or --accept NAME)");
    }
    AVPS_TRY_ASSIGN(int64_t new_cap, parse_usd(*request.raise_cap_usd));
    std::optional<int64_t> current = overrides.cap(configured, stop.cap);
    if (!current) {
      return refuse(stop.id() + " names the " + stop.cap + " cap, which the configuration does not set");
    }
    if (new_cap <= *current) {
      return refuse("--raise-cap " + *request.raise_cap_usd + " is not above the current " + stop.cap +
                    " cap of " + usd_decimal(*current) + " USD");
    }
    record.decision = "raise_cap";
    record.value = new_cap;
    record.cap = stop.cap;
    record.cost_impact_micro_usd = new_cap - *current;
  } else if (request.allow_attempts) {
    if (stop.kind == StopKind::budget) {
      return refuse("--allow-attempts lifts gate and frozen stops; " + stop.id() +
                    " is a budget stop (use --raise-cap USD)");
    }
    const std::string& text = *request.allow_attempts;
    const bool digits = !text.empty() && text.size() <= 4 &&
                        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    const int n = digits ? std::stoi(text) : 0;
    if (n < 1 || n > k_max_extra_attempts) {
      return refuse("--allow-attempts takes a whole number from 1 to " +
                    std::to_string(k_max_extra_attempts) + "; got \"" + text.substr(0, 40) + "\"");
    }
    record.decision = "allow_attempts";
    record.value = n;
    const int64_t per_attempt = stop.needed_micro_usd.value_or(stop.last_attempt_micro_usd.value_or(0));
    record.cost_impact_micro_usd = n * per_attempt;
  } else if (stop.kind == StopKind::frozen) {
    AVPS_TRY_ASSIGN(record.value, accepted_render(events, stop, *request.accept));
    record.decision = "accept";
  } else {
    if (stop.kind != StopKind::gate) {
      return refuse("--accept lifts gate and frozen stops; " + stop.id() + " is a " + kind_name +
                    " stop (use --raise-cap USD)");
    }
    const std::string& name = *request.accept;
    AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> artifact, ledger.find_artifact(name));
    if (!artifact) {
      return refuse("no recorded artifact named " + name +
                    " (give a file name like PLAUS_S03_v003.md; `avps log` " + "lists what was recorded)");
    }
    if (artifact->producer != stop.skill) {
      return refuse(name + " was made by " + artifact->producer + ", not by " + stop.skill + ", whose loop " +
                    stop.id() + " stopped");
    }
    const std::set<std::string> targets = scope_targets(stop);
    if (!targets.empty() && targets.count(artifact->target) == 0) {
      return refuse(name + " is for " + (artifact->target.empty() ? "the project" : artifact->target) +
                    ", but " + stop.id() + " stopped the loop for " + join(targets));
    }
    record.decision = "accept";
    record.value = name;
  }

  json decision = {{"kind", record.decision}, {"value", record.value}};
  if (!record.cap.empty()) {
    decision["cap"] = record.cap;
  }
  const json body = {{"stop", stop.id()},
                     {"stop_seq", stop_seq},
                     {"stop_kind", kind_name},
                     {"skill", stop.skill},
                     {"loop", stop.loop},
                     {"scope", stop.scope},
                     {"reason", request.reason},
                     {"decision", decision},
                     {"cost_impact_micro_usd", record.cost_impact_micro_usd}};
  ledger::LogRow row;
  row.skill_name = stop.kind == StopKind::budget ? "budget-gates" : stop.skill;
  row.scene_id = core::json_text(stop.scope, "scene_id");
  row.shot_id = core::json_text(stop.scope, "shot_id");
  row.estimated_cost = usd_decimal(record.cost_impact_micro_usd);
  row.actual_cost = usd_decimal(0);
  row.outcome = "DONE";
  row.notes = "override " + stop.id() + ": " + record.describe() + ": " + request.reason;

  // A raised cap implies a new BUDGET_STATUS under it; computed (and checked) before writing.
  std::optional<json> status;
  if (record.decision == "raise_cap") {
    std::vector<ledger::Event> with_decision = events;
    ledger::Event decided;
    decided.seq = ledger.head().seq + 1;
    decided.kind = "stop.override";
    decided.body = body;
    with_decision.push_back(decided);
    AVPS_TRY_ASSIGN(status, status_after_raise(project, with_decision, stop.id()));
  }

  const bool own_run = ledger.run_id().empty();
  if (own_run) {
    AVPS_TRY(ledger.begin_run("override", {{"stop", stop.id()}, {"decision", record.decision}}));
  }
  Result<OverrideRecorded> recorded = [&]() -> Result<OverrideRecorded> {
    AVPS_TRY_ASSIGN(ledger::Event event,
                    ledger.append(ledger::EventDraft{.kind = "stop.override", .body = body, .row = row}));
    OverrideRecorded out{record, ""};
    out.record.event_seq = event.seq;
    if (status) {
      AVPS_TRY_ASSIGN(out.budget_status,
                      write_budget_status(project, *status, "override",
                                          {{"override", stop.id()}, {"reason", request.reason}}));
    }
    return out;
  }();
  if (own_run) {
    Result<void> ended = ledger.end_run(
        recorded ? "DONE" : "ERROR", recorded ? json::object() : json{{"error", recorded.error().message}});
    if (recorded && !ended) {
      return std::move(ended).error();
    }
  }
  return recorded;
}

}  // namespace avps::governance
