// The read model (read_model.hpp): one pass over the ledger's events, then the artifacts it needs
// (the latest SCENES and SHOTLISTs, the QC_BATCHes for their scores). No query per event.
#include "avps/report/read_model.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>

#include "avps/artifacts/names.hpp"
#include "avps/core/byte_codec.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/diag.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/memory.hpp"
#include "avps/engine/engine.hpp"
#include "avps/engine/fold_checkpoint.hpp"
#include "avps/engine/plan.hpp"
#include "avps/governance/override.hpp"
#include "avps/ledger/events.hpp"
#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"

namespace avps::report {

namespace {
using nlohmann::json;

// The most points the spend chart is given: enough for a smooth line at 500 scenes, small enough
// for the page to stay light. Points are taken evenly, the last always kept.
constexpr size_t k_max_series_points = 400;
// How many of the most expensive shots the report lists.
constexpr size_t k_top_shots = 15;

// The scene phases of the stage graph (policies/stage_graph.json, the project's own if it has one)
// and where each skill's steps go, so that the view follows the graph the engine walks instead of
// a copy of it. A scene phase runs per scene or per shot; a phase that renders names its resolution.
class PhaseTable {
 public:
  explicit PhaseTable(const skills::StageGraph* graph) {
    if (graph == nullptr) {
      return;
    }
    for (const skills::Phase& phase : graph->phases) {
      if (phase.fan_out != "per_scene" && phase.fan_out != "per_shot") {
        continue;
      }
      const int index = static_cast<int>(m_phases.size());
      m_phases.push_back(phase.name);
      if (!phase.resolution.empty()) {
        m_renders.emplace(phase.resolution, index);
      }
      for (const skills::GraphStep& step : phase.steps) {
        if (!step.skill.empty()) {
          std::vector<int>& at = m_skill_phases[step.skill];
          if (at.empty() || at.back() != index) {
            at.push_back(index);
          }
        }
      }
    }
  }

  const std::vector<std::string>& phases() const { return m_phases; }

  int index(const std::string& phase) const {
    auto found = std::find(m_phases.begin(), m_phases.end(), phase);
    return found == m_phases.end() ? -1 : static_cast<int>(found - m_phases.begin());
  }

  /// The phase that renders at `resolution`, -1 if none.
  int render_phase(const std::string& resolution) const {
    auto found = m_renders.find(resolution);
    return found == m_renders.end() ? -1 : found->second;
  }

  /// The scene phases a skill runs in, in order (the cost loop runs before proxies and finals).
  const std::vector<int>* skill_phases(const std::string& skill) const {
    auto found = m_skill_phases.find(skill);
    return found == m_skill_phases.end() ? nullptr : &found->second;
  }

  /// The resolution a phase renders at, "" for none.
  std::string resolution_of(int phase) const {
    for (const auto& [resolution, index] : m_renders) {
      if (index == phase) {
        return resolution;
      }
    }
    return "";
  }

 private:
  std::vector<std::string> m_phases;
  std::map<std::string, int> m_renders;                    // resolution -> its render phase
  std::map<std::string, std::vector<int>> m_skill_phases;  // skill -> the scene phases it runs in
};

// The verdict columns of the scene table: the phases whose gates a producer reads per scene.
std::string column_of(const std::string& phase) {
  if (phase == "validation" || phase == "continuity") {
    return phase;
  }
  return phase == "planning" ? "plan" : "";
}

// "S03" for a scene key, "S03" for a shot key "S03_SH02", "" for any other (an entity, nothing).
std::string scene_of(const std::string& target) {
  if (artifacts::is_scene_id(target)) {
    return target;
  }
  if (artifacts::is_shot_id(target)) {
    return target.substr(0, target.rfind("_SH"));
  }
  return "";
}

// A step key "skill/target/resolution@hash<revised-loop", split.
struct StepKey {
  std::string who;  ///< "skill target resolution", the --steps label
  std::string skill;
  std::string target;
  std::string resolution;
};

StepKey parse_step(const std::string& step) {
  StepKey key;
  key.who = step.substr(0, step.find('@'));
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t slash = key.who.find('/'); slash != std::string::npos; slash = key.who.find('/', start)) {
    parts.push_back(key.who.substr(start, slash - start));
    start = slash + 1;
  }
  parts.push_back(key.who.substr(start));
  key.skill = parts[0];
  key.target = parts.size() > 1 ? parts[1] : "";
  key.resolution = parts.size() > 2 ? parts[2] : "";
  std::replace(key.who.begin(), key.who.end(), '/', ' ');
  return key;
}

// The shot and scene an event is about, from the fields the event kinds use for them.
std::pair<std::string, std::string> scope_of(const json& body) {
  std::string shot = core::json_text(body, "shot_id");
  std::string scene = core::json_text(body, "scene_id");
  if (auto scope = body.find("scope"); scope != body.end() && scope->is_object()) {
    shot = shot.empty() ? core::json_text(*scope, "shot_id") : shot;
    scene = scene.empty() ? core::json_text(*scope, "scene_id") : scene;
  }
  if (scene.empty() && !shot.empty()) {
    scene = scene_of(shot);
  }
  if (scene.empty()) {
    // A loop "skill/S03" or "skill/S03_SH02/proxy".
    const std::string loop = core::json_text(body, "loop");
    if (size_t slash = loop.find('/'); slash != std::string::npos) {
      std::string target = loop.substr(slash + 1);
      target = target.substr(0, target.find('/'));
      scene = scene_of(target);
      if (artifacts::is_shot_id(target)) {
        shot = target;
      }
    }
  }
  return {scene, shot};
}

std::string joined(const json& reasons) {
  std::string out;
  if (!reasons.is_array()) {
    return out;
  }
  for (const json& r : reasons) {
    if (r.is_string()) {
      out += (out.empty() ? "" : "; ") + r.get<std::string>();
    }
  }
  return out;
}

// A reservation as the events tell it: its place, and once its call is sent, its model and tier.
struct HeldMoney {
  std::string scene_id, shot_id;
  int64_t amount = 0;
  std::string model, tier;
};

// A point of the spend chart: the money committed and held after an event.
struct SpendPoint {
  int64_t seq = 0;
  std::string ts;
  int64_t committed = 0, reserved = 0;
  json to_json() const {
    return {{"seq", seq}, {"ts", ts}, {"committed_micro_usd", committed}, {"reserved_micro_usd", reserved}};
  }
};

// An artifact record as a fold checkpoint keeps it (every field, the event that vouches for it too).
void save_artifacts(core::ByteWriter& out, const std::map<std::string, ledger::ArtifactRecord>& records) {
  out.u64(records.size());
  for (const auto& [key, r] : records) {
    out.text(key);
    for (const std::string* text : {&r.name, &r.kind, &r.target}) {
      out.text(*text);
    }
    out.i64(r.version);
    for (const std::string* text : {&r.path, &r.face_sha256, &r.json_sha256, &r.author, &r.producer}) {
      out.text(*text);
    }
    out.i64(r.event_seq);
  }
}
void restore_artifacts(core::ByteReader& in, std::map<std::string, ledger::ArtifactRecord>& records) {
  for (size_t n = in.count(); n > 0 && in.ok(); --n) {
    std::string key = in.text();
    ledger::ArtifactRecord& r = records.emplace_hint(records.end(), std::move(key), ledger::ArtifactRecord{})->second;
    for (std::string* text : {&r.name, &r.kind, &r.target}) {
      *text = in.text();
    }
    r.version = static_cast<int>(in.i64());
    for (std::string* text : {&r.path, &r.face_sha256, &r.json_sha256, &r.author, &r.producer}) {
      *text = in.text();
    }
    r.event_seq = in.i64();
  }
}
void save_texts(core::ByteWriter& out, const std::map<std::string, std::string>& texts) {
  out.u64(texts.size());
  for (const auto& [key, value] : texts) {
    out.text(key);
    out.text(value);
  }
}
void restore_texts(core::ByteReader& in, std::map<std::string, std::string>& texts) {
  for (size_t n = in.count(); n > 0 && in.ok(); --n) {
    std::string key = in.text();
    texts.emplace_hint(texts.end(), std::move(key), in.text());
  }
}
void save_amounts(core::ByteWriter& out, const std::map<std::string, int64_t>& amounts) {
  out.u64(amounts.size());
  for (const auto& [key, amount] : amounts) {
    out.text(key);
    out.i64(amount);
  }
}
void restore_amounts(core::ByteReader& in, std::map<std::string, int64_t>& amounts) {
  for (size_t n = in.count(); n > 0 && in.ok(); --n) {
    std::string key = in.text();
    amounts.emplace_hint(amounts.end(), std::move(key), in.i64());
  }
}

// What the events say, gathered in one pass.
class Book {
 public:
  Book(project::Project& project, const skills::StageGraph* graph) : m_project(project), m_table(graph) {}

  const PhaseTable& table() const { return m_table; }

  // Reads the record: every event, in one read transaction of the ledger, folded page by page.
  // No event is kept: what the rules of other modules read (the decisions, the hard stops, the
  // engine's stale-shot rule: the kinds engine::stale_shots_read names) is folded into their own
  // summaries as the events pass, and the calls and the money (most of the record) are summed
  // here. No reader looks into an artifact's intent.
  Result<void> read() {
    constexpr size_t k_page = 4096;
    ledger::Ledger::EventQuery query;
    query.after_seq = m_last.seq;  // after a restored checkpoint, only the events since
    query.limit = k_page;
    query.bodiless = {"artifact.intent"};
    for (;;) {
      AVPS_TRY_ASSIGN(std::vector<ledger::Event> page, m_project.ledger().events(query));
      for (ledger::Event& e : page) {
        AVPS_TRY(add(e));
        m_last = {e.seq, e.hash, e.timestamp};
        if (engine::stale_shots_read(e.kind) && e.kind != "artifact.intent") {
          m_overrides.add(e);
          m_stops.add(e);
          m_stale_record.add(e);
        }
      }
      m_events_folded += page.size();
      if (page.size() < k_page) {
        return ok();
      }
      query.after_seq = m_last.seq;
    }
  }

  /// Takes each graded attempt's scores from its wave's QC_BATCH where not taken yet: a checkpoint
  /// is saved with them, so that a reader loads only the batches recorded after it.
  Result<void> score_attempts() { return attach_scores(); }

  /// Events read() folded (after the restored checkpoint, when there is one).
  size_t events_folded() const { return m_events_folded; }

  // The fold's whole state (a fold checkpoint's book, docs/formats/checkpoint.md), in the flat
  // binary encoding of core::ByteWriter: restore() on a Book of the same stage graph goes on as
  // this one would, and builds its members straight from the bytes (no document tree between).
  // No reader-side state (m_stale, set by finish) is kept. The order of the members is the
  // format: restore() reads them in the same order. The Book is spent: each member is let go of
  // once written, and the bytes come in parts (engine::SectionParts), so that the end of a run
  // never holds the Book and its bytes whole at once; with a sink, not even the parts made so far.
  std::vector<std::string> save_parts(engine::SectionParts::Sink sink = {}) && {
    engine::SectionParts parts(std::move(sink));
    core::ByteWriter& out = parts.out();
    auto done = [&parts](auto& member) {
      std::remove_reference_t<decltype(member)>().swap(member);
      parts.cut();
    };
    out.json(m_overrides.save());
    out.json(m_stops.save());
    out.i64(m_last.seq);
    out.text(m_last.hash);
    out.text(m_last.ts);
    out.u64(m_steps.size());
    for (const auto& [who, body] : m_steps) {
      out.text(who);
      out.json_bytes(body.bytes());
    }
    done(m_steps);
    out.u64(m_project_skills.size());
    for (const ProjectSkillView& skill : m_project_skills) {
      out.text(skill.skill);
      out.u64(skill.last.size());
      for (const auto& [entity, body] : skill.last) {
        out.text(entity);
        out.json(body);
      }
    }
    done(m_project_skills);
    out.u64(m_scenes.size());
    for (const auto& [scene, state] : m_scenes) {
      out.text(scene);
      out.i64(state.phase);
      save_texts(out, state.verdicts);
    }
    done(m_scenes);
    out.u64(m_attempts.size());
    for (const auto& [shot, list] : m_attempts) {
      out.text(shot);
      out.u64(list.size());
      for (const ShotAttempt& a : list) {
        out.text(a.resolution);
        out.i64(a.attempt);
        out.text(a.verdict);
        out.u64(a.reasons.size());
        for (const std::string& reason : a.reasons) {
          out.text(reason);
        }
        out.json(a.scores);
        out.text(a.render);
        out.text(a.render_sha256);
        out.text(a.model);
        out.text(a.tier);
        out.text(a.recorded_at);
        out.text(a.wave);
        out.i64(a.graded_seq);
        out.text(a.scored_from);
      }
    }
    done(m_attempts);
    out.u64(m_waves_written.size());
    for (const std::string& wave : m_waves_written) {
      out.text(wave);
    }
    done(m_waves_written);
    save_artifacts(out, m_qc_batches);
    done(m_qc_batches);
    save_texts(out, m_accepted);
    done(m_accepted);
    save_artifacts(out, m_latest);
    done(m_latest);
    out.u64(m_shotlists.size());
    for (const auto& [file, rows] : m_shotlists) {
      out.text(file);
      out.u64(rows.size());
      for (const ShotRow& row : rows) {
        out.text(row.shot_id);
        out.f64(row.planned_s);
      }
    }
    done(m_shotlists);
    // Only reservations still held: an ended one leaves the fold (add_end).
    out.u64(m_held.size());
    for (const auto& [id, money] : m_held) {
      out.text(id);
      out.text(money.scene_id);
      out.text(money.shot_id);
      out.i64(money.amount);
      out.text(money.model);
      out.text(money.tier);
    }
    done(m_held);
    out.u64(m_by_scene_tier.size());
    for (const auto& [scene, tiers] : m_by_scene_tier) {
      out.text(scene);
      save_amounts(out, tiers);
    }
    done(m_by_scene_tier);
    out.u64(m_models.size());
    for (const auto& [model, use] : m_models) {
      out.text(model);
      out.text(use.tier);
      out.i64(use.calls);
      out.i64(use.input_tokens);
      out.i64(use.output_tokens);
      out.i64(use.micro_usd);
    }
    done(m_models);
    save_amounts(out, m_shot_spend);
    done(m_shot_spend);
    out.i64(m_committed);
    out.i64(m_reserved);
    out.u64(m_series.size());
    for (const SpendPoint& point : m_series) {
      out.i64(point.seq);
      out.text(point.ts);
      out.i64(point.committed);
      out.i64(point.reserved);
    }
    done(m_series);
    out.json(m_cap_raises);
    out.json(m_loops);
    out.json(m_runs);
    out.u64(m_jobs.size());
    for (const auto& [key, job] : m_jobs) {
      out.text(key);
      out.json(job);
    }
    done(m_jobs);
    for (int64_t n : {m_usage.calls, m_usage.failed, m_usage.retries, m_usage.input_tokens, m_usage.output_tokens,
                      m_usage.renders}) {
      out.i64(n);
    }
    out.f64(m_usage.seconds_rendered);
    return parts.take();
  }

  // Takes over a saved fold (save() of a Book of the same stage graph). False, the Book then to be
  // thrown away, on bytes save() did not make (cut short, or a value out of range); the folds of
  // other modules throw nlohmann::json::exception on theirs.
  bool restore(core::ByteReader& in) {
    m_overrides = governance::Overrides::restore(in.json());
    m_stops = governance::HardStopFold::restore(in.json());
    m_last.seq = in.i64();
    m_last.hash = in.text();
    m_last.ts = in.text();
    for (size_t n = in.count(); n > 0 && in.ok(); --n) {
      std::string who = in.text();
      m_steps.emplace_hint(m_steps.end(), std::move(who), core::FlatJson::of_bytes(std::string(in.json_bytes())));
    }
    m_project_skills.resize(in.count());
    for (ProjectSkillView& skill : m_project_skills) {
      skill.skill = in.text();
      skill.last.resize(in.count());
      for (auto& [entity, body] : skill.last) {
        entity = in.text();
        body = in.json();
      }
    }
    const int phases = static_cast<int>(m_table.phases().size());
    for (size_t n = in.count(); n > 0 && in.ok(); --n) {
      std::string scene = in.text();
      SceneState& state = m_scenes.emplace_hint(m_scenes.end(), std::move(scene), SceneState{})->second;
      state.phase = static_cast<int>(in.i64());
      if (state.phase < -1 || state.phase >= phases) {
        in.fail();  // a scene phase beyond the stage graph's
      }
      restore_texts(in, state.verdicts);
    }
    for (size_t n = in.count(); n > 0 && in.ok(); --n) {
      std::string shot = in.text();
      std::vector<ShotAttempt>& list =
          m_attempts.emplace_hint(m_attempts.end(), std::move(shot), std::vector<ShotAttempt>())->second;
      list.resize(in.count());
      for (ShotAttempt& a : list) {
        a.resolution = in.text();
        a.attempt = static_cast<int>(in.i64());
        a.verdict = in.text();
        a.reasons.resize(in.count());
        for (std::string& reason : a.reasons) {
          reason = in.text();
        }
        a.scores = in.json();
        a.render = in.text();
        a.render_sha256 = in.text();
        a.model = in.text();
        a.tier = in.text();
        a.recorded_at = in.text();
        a.wave = in.text();
        a.graded_seq = in.i64();
        a.scored_from = in.text();
      }
    }
    for (size_t n = in.count(); n > 0 && in.ok(); --n) {
      m_waves_written.emplace_hint(m_waves_written.end(), in.text());
    }
    restore_artifacts(in, m_qc_batches);
    restore_texts(in, m_accepted);
    restore_artifacts(in, m_latest);
    for (size_t n = in.count(); n > 0 && in.ok(); --n) {
      std::string file = in.text();
      std::vector<ShotRow>& rows =
          m_shotlists.emplace_hint(m_shotlists.end(), std::move(file), std::vector<ShotRow>())->second;
      rows.resize(in.count());
      for (ShotRow& row : rows) {
        row.shot_id = in.text();
        row.planned_s = in.f64();
      }
    }
    for (size_t n = in.count(); n > 0 && in.ok(); --n) {
      std::string id = in.text();
      HeldMoney& money = m_held.emplace_hint(m_held.end(), std::move(id), HeldMoney{})->second;
      money.scene_id = in.text();
      money.shot_id = in.text();
      money.amount = in.i64();
      money.model = in.text();
      money.tier = in.text();
    }
    for (size_t n = in.count(); n > 0 && in.ok(); --n) {
      std::string scene = in.text();
      restore_amounts(in, m_by_scene_tier[std::move(scene)]);
    }
    for (size_t n = in.count(); n > 0 && in.ok(); --n) {
      std::string model = in.text();
      ModelUse& use = m_models.emplace_hint(m_models.end(), std::move(model), ModelUse{})->second;
      use.tier = in.text();
      use.calls = in.i64();
      use.input_tokens = in.i64();
      use.output_tokens = in.i64();
      use.micro_usd = in.i64();
    }
    restore_amounts(in, m_shot_spend);
    m_committed = in.i64();
    m_reserved = in.i64();
    m_series.resize(in.count());
    for (SpendPoint& point : m_series) {
      point.seq = in.i64();
      point.ts = in.text();
      point.committed = in.i64();
      point.reserved = in.i64();
    }
    m_cap_raises = in.json();
    m_loops = in.json();
    m_runs = in.json();
    for (size_t n = in.count(); n > 0 && in.ok(); --n) {
      std::string key = in.text();
      m_jobs.emplace_hint(m_jobs.end(), std::move(key), in.json());
    }
    for (int64_t* n : {&m_usage.calls, &m_usage.failed, &m_usage.retries, &m_usage.input_tokens,
                       &m_usage.output_tokens, &m_usage.renders}) {
      *n = in.i64();
    }
    m_usage.seconds_rendered = in.f64();
    if (!m_cap_raises.is_array() || !m_loops.is_array() || !m_runs.is_array()) {
      in.fail();
    }
    return in.ok();
  }
  struct Last {
    int64_t seq = 0;
    std::string hash, ts;
  };
  const Last& last() const { return m_last; }
  /// The project's spend as folded: the settled amounts of ended reservations, and the amounts of
  /// those still held. The ledger's own sums over its reservation tables (Ledger::spend), whose
  /// rows are those of the same events, without a scan of them.
  ledger::Spend spend() const {
    ledger::Spend out;
    out.committed_micro_usd = m_committed;
    out.outstanding_micro_usd = m_reserved;
    return out;
  }
  /// What the events the rules of other modules read say, folded as they passed (see read): the
  /// decisions people recorded, the hard stops, and what the engine's stale-shot rule reads.
  const governance::Overrides& overrides() const { return m_overrides; }
  const governance::HardStopFold& stops() const { return m_stops; }
  /// The stale-shot rule's record, handed over once (the book keeps no copy).
  engine::StaleShotsRecord take_stale_shots_record() { return std::move(m_stale_record); }
  /// The same record restored (a checkpoint keeps it apart from the rest of the fold, as
  /// StaleShotsRecord::save_bytes makes it: a reader needs it only when events follow the checkpoint).
  void restore_stale_shots_record(engine::StaleShotsRecord restored) { m_stale_record = std::move(restored); }

 private:
  Result<void> add(const ledger::Event& e) {
    const json& body = e.body;
    if (e.kind == "exchange.response" || e.kind == "exchange.failed") {
      m_jobs.erase(core::json_text(body, "key"));  // the job, if it was one, answered or gave up
    }
    if (e.kind == "step.finished") {
      AVPS_TRY(add_step(e));
    } else if (e.kind == "artifact.recorded") {
      add_artifact(e);
    } else if (e.kind == "media.recorded") {
      add_render(e);
    } else if (e.kind == "stop.override") {
      add_override(e);
    } else if (e.kind == "run.started") {
      m_runs.push_back({{"run_id", e.run_id},
                        {"command", core::json_text(body, "command")},
                        {"started", e.timestamp},
                        {"finished", nullptr},
                        {"outcome", nullptr}});
    } else if (e.kind == "run.finished") {
      for (json& run : m_runs) {
        if (run["run_id"] == e.run_id) {
          run["finished"] = e.timestamp;
          run["outcome"] = core::json_text(body, "outcome");
        }
      }
    } else if (e.kind == "budget.reserved") {
      add_reservation(e);
    } else if (e.kind == "exchange.ticket") {
      m_jobs[core::json_text(body, "key")] = {{"purpose", core::json_text(body, "purpose")},
                                              {"model", core::json_text(body, "model")},
                                              {"ticket", core::json_text(body, "ticket")},
                                              {"submitted", e.timestamp},
                                              {"submitted_unix_ms", body.value("submitted_unix_ms", int64_t{0})},
                                              {"provider_state", "submitted (polled again by the next run)"}};
    } else if (e.kind == "exchange.polled") {
      if (auto job = m_jobs.find(core::json_text(body, "key")); job != m_jobs.end()) {
        job->second["provider_state"] = core::json_text(body, "provider_state") + " at " + e.timestamp;
      }
    } else if (std::optional<ledger::ExchangeIntent> intent = ledger::ExchangeIntent::from_event(e)) {
      add_intent(*intent);
    } else if (std::optional<ledger::ExchangeResponse> response = ledger::ExchangeResponse::from_event(e)) {
      add_response(e, *response);
    } else if (e.kind == "exchange.failed") {
      ++m_usage.failed;
      loop_event(
          e, "failed_call",
          core::json_text(body, "skill").empty() ? core::json_text(body, "model") : core::json_text(body, "skill"),
          "model " + core::json_text(body, "model") + " gave up", core::json_text(body, "message"));
    } else if (e.kind == "exchange.fallback") {
      loop_event(e, "fallback", core::json_text(body, "from_model"),
                 core::json_text(body, "from_model") + " -> " + core::json_text(body, "to_model"),
                 core::json_text(body, "reason"));
    } else if (e.kind == "route.escalated") {
      const json cost = body.value("cost", json::object());
      json& item = loop_event(e, "escalation", core::json_text(body, "skill"),
                              core::json_text(body, "from") + " -> " + core::json_text(body, "to"),
                              core::json_text(body, "reason"));
      item["cost_delta_micro_usd"] = core::json_int(cost, "delta_micro_usd");
    } else if (e.kind == "route.escalation_refused") {
      loop_event(e, "escalation_refused", core::json_text(body, "skill"),
                 core::json_text(body, "from") + " -> " + core::json_text(body, "to") + " refused",
                 core::json_text(body, "reason"));
    } else if (e.kind == "route.reallocated") {
      json& item = loop_event(e, "reallocation", "model-router",
                              core::json_text(body, "from_tier") + " -> " + core::json_text(body, "to_tier"),
                              core::json_text(body, "reason"));
      item["cost_delta_micro_usd"] = core::json_int(body.value("cost", json::object()), "delta_micro_usd");
    } else if (e.kind == "route.rerouted") {
      std::string moves;
      for (const json& change : body.value("changes", json::array())) {
        moves += (moves.empty() ? "" : ", ") + core::json_text(change, "shot_id") + " " +
                 core::json_text(change, "from_tier") + " -> " + core::json_text(change, "to_tier");
      }
      json& item = loop_event(e, "reroute", core::json_text(body.value("row", json::object()), "skill_name"), moves,
                              "budget re-route for " + core::json_text(body, "loop"));
      item["cost_delta_micro_usd"] = -core::json_int(body, "saving_micro_usd");
    } else if (e.kind == "regen.round") {
      loop_event(e, "regen_round", core::json_text(body, "resolution"),
                 "round " + std::to_string(core::json_int(body, "round")) + ": " + core::json_text(body, "remedy") +
                     " on " + core::json_text(body, "tier"),
                 "after attempt " + std::to_string(core::json_int(body, "after_attempt")));
    } else if (e.kind == "trigger.fired") {
      const json cause = body.value("cause", json::object());
      loop_event(e, "trigger", core::json_text(body, "skill"),
                 core::json_text(body, "trigger") + ": " + core::json_text(body, "skill") + " for " +
                     core::json_text(body, "key"),
                 core::json_text(cause, "shot_id") + " " + core::json_text(cause, "resolution") + " attempt " +
                     std::to_string(core::json_int(cause, "attempt")) + ", " + core::json_text(cause, "rule") + ": " +
                     core::json_text(cause, "description"));
    } else if (e.kind == "run.hard_stop") {
      loop_event(e, "hard_stop", core::json_text(body, "skill"),
                 "STOP-" + std::to_string(e.seq) + " (" + core::json_text(body, "kind") + ")",
                 core::json_text(body, "reason"));
    } else if (e.kind == "stop.resolved") {
      loop_event(e, "stop_resolved", "avps", "STOP-" + std::to_string(core::json_int(body, "stop_seq")) + " resolved",
                 core::json_text(body, "reason"));
    }
    if (auto end = body.find("reservation_end"); end != body.end() && end->is_object()) {
      add_end(e, *end);
    }
    return ok();
  }

 public:
  // The view of what was folded. The Book's attempts, loops, runs and jobs are moved into it, not
  // copied (at 500 scenes a copy is a good part of a status), and its steps decoded into it from
  // their bytes, the Book's let go of: called once, after the last read(), and nothing but
  // overrides(), stops() and spend() may be asked of the Book after.
  Result<void> finish(ProjectView& view, const std::set<std::string>& stale, const governance::Overrides& overrides) {
    AVPS_TRY_ASSIGN(view.projected_micro_usd, projection());
    m_stale = stale;
    view.steps.reserve(m_steps.size());
    for (const auto& [who, body] : m_steps) {
      view.steps.emplace_back(who, *body);
    }
    std::map<std::string, core::FlatJson>().swap(m_steps);
    view.project_skills = std::move(m_project_skills);
    AVPS_TRY(scene_rows(view, overrides));
    view.usage = {{"calls", m_usage.calls},
                  {"failed_calls", m_usage.failed},
                  {"retries", m_usage.retries},
                  {"input_tokens", m_usage.input_tokens},
                  {"output_tokens", m_usage.output_tokens},
                  {"renders", m_usage.renders},
                  {"seconds_rendered", m_usage.seconds_rendered}};
    view.spend_series = sampled_series();
    view.cost = cost_json();
    view.loops = std::move(m_loops);
    view.runs = std::move(m_runs);
    for (auto& [key, job] : m_jobs) {
      view.jobs_in_flight.push_back(std::move(job));
    }
    return ok();
  }

 private:
  struct SceneState {
    int phase = -1;
    std::map<std::string, std::string> verdicts;  // skill -> verdict of its last attempt
  };

  Result<void> add_step(const ledger::Event& e) {
    const ledger::StepFinished finished = *ledger::StepFinished::from_event(e);
    const json& body = e.body;
    const StepKey key = parse_step(finished.step);
    const std::string& verdict = finished.verdict;
    if (finished.attempt > 1) {
      // Another attempt: of a shot's step at a resolution, a new render's (a regen); of any other
      // step, a revision. What it answered is this attempt's verdict; why it ran, the last one's reasons.
      auto found = m_steps.find(key.who);
      const bool known = found != m_steps.end();
      const json before = known ? *found->second : json();
      loop_event(e, key.resolution.empty() ? "revision" : "regen", key.skill,
                 key.who + ": attempt " + std::to_string(finished.attempt) + " on " + finished.tier +
                     (known ? " after " + core::json_text(before, "verdict") : std::string()) + ": " + verdict,
                 known ? joined(before.value("reasons", json::array())) : "");
    }
    // What the model shows of a step (ProjectView::steps, ProjectSkillView::last), not its run-log
    // row, inputs or findings: the fold, and a checkpoint of it, keep no more.
    json shown = json::object();
    for (const char* field : {"verdict", "attempt", "tier", "outputs", "reasons"}) {
      if (auto it = body.find(field); it != body.end()) {
        shown[field] = *it;
      }
    }
    m_steps[key.who] = core::FlatJson(shown);
    const std::string scene = scene_of(key.target);
    if (scene.empty()) {
      auto known = std::find_if(m_project_skills.begin(), m_project_skills.end(),
                                [&](const ProjectSkillView& s) { return s.skill == key.skill; });
      if (known == m_project_skills.end()) {
        m_project_skills.push_back(ProjectSkillView{key.skill, {}, {}});
        known = m_project_skills.end() - 1;
      }
      auto entity = std::find_if(known->last.begin(), known->last.end(),
                                 [&](const auto& item) { return item.first == key.target; });
      if (entity == known->last.end()) {
        known->last.emplace_back(key.target, std::move(shown));
      } else {
        entity->second = std::move(shown);
      }
      return ok();
    }
    if (finished.shot_attempt) {
      note_grade(e.seq, *finished.shot_attempt, verdict, finished.reasons);
    }
    if (!key.resolution.empty()) {
      // A step of a shot at a resolution (packaging, storyboard, QC, regen analysis): its render phase.
      reach(scene, m_table.render_phase(key.resolution));
      return ok();
    }
    const std::vector<int>* phases = m_table.skill_phases(key.skill);
    if (phases == nullptr) {
      return ok();  // a skill of no scene phase
    }
    m_scenes[scene].verdicts[key.skill] = verdict;
    // A skill that runs in several scene phases (the cost loop before proxies and before finals)
    // is in the latest of them whose render phases before it every shot of the scene passed.
    int phase = phases->front();
    for (size_t i = 1; i < phases->size(); ++i) {
      bool renders_done = true;
      for (int between = phases->at(i - 1) + 1; between < phases->at(i) && renders_done; ++between) {
        const std::string resolution = m_table.resolution_of(between);
        if (resolution.empty()) {
          continue;
        }
        AVPS_TRY_ASSIGN(std::vector<ShotRow> shots, shots_of(scene));
        renders_done = !shots.empty();
        for (const ShotRow& shot : shots) {
          renders_done = renders_done && passed(shot.shot_id, resolution);
        }
      }
      if (!renders_done) {
        break;
      }
      phase = phases->at(i);
    }
    reach(scene, phase);
    return ok();
  }

  void add_artifact(const ledger::Event& e) {
    std::optional<ledger::ArtifactRecord> artifact = e.artifact();
    if (!artifact) {
      return;
    }
    static const std::set<std::string> k_latest = {"SCENES", "SHOTLIST", "STORYBOARD", "GENPACK", "BUDGET_STATUS"};
    if (k_latest.count(artifact->kind)) {
      auto [latest, fresh] = m_latest.try_emplace(artifact->kind + "/" + artifact->target, *artifact);
      if (!fresh && latest->second.version < artifact->version) {
        latest->second = *artifact;
      }
    }
    const json details = e.body.value("details", json::object());
    if (details.is_object() && details.contains("wave")) {
      const std::string wave = core::json_text(details, "wave");
      m_waves_written.insert(wave);
      if (artifact->kind == "QC_BATCH") {
        m_qc_batches[wave] = *artifact;
      }
    }
  }

  void add_render(const ledger::Event& e) {
    const ledger::MediaRecorded render = *ledger::MediaRecorded::from_event(e);
    reach(render.scene_id, m_table.render_phase(render.resolution));
    ShotAttempt& attempt = attempt_of(render.shot_id, render.resolution, render.attempt);
    attempt.render = render.path;
    attempt.render_sha256 = render.sha256;
    attempt.model = render.model;
    attempt.tier = render.tier;
    attempt.recorded_at = e.timestamp;
    ++m_usage.renders;
  }

  void add_override(const ledger::Event& e) {
    const json& body = e.body;
    const json decision = body.value("decision", json::object());
    if (core::json_text(body, "stop_kind") == "frozen" && core::json_text(decision, "kind") == "accept") {
      // A frozen shot a person accepted a render of counts as passed at that resolution.
      const std::string loop = core::json_text(body, "loop");
      // The decision's value is the render as recorded ("media/S02_SH02_final_a04.mp4").
      m_accepted[core::json_text(body.value("scope", json::object()), "shot_id") + loop.substr(loop.rfind('/'))] =
          core::json_text(decision, "value");
    }
    json& item = loop_event(e, "override", core::json_text(body, "skill"),
                            core::json_text(body, "stop") + ": " + core::json_text(decision, "kind"),
                            core::json_text(body, "reason"));
    item["cost_delta_micro_usd"] = core::json_int(body, "cost_impact_micro_usd");
    if (core::json_text(decision, "kind") == "raise_cap") {
      m_cap_raises.push_back(
          {{"seq", e.seq},
           {"ts", e.timestamp},
           {"cap", core::json_text(decision, "cap").empty() ? "project" : core::json_text(decision, "cap")},
           {"cap_micro_usd", decision.value("value", json(nullptr))}});
    }
  }

  void add_reservation(const ledger::Event& e) {
    std::optional<ledger::Reservation> reserved = ledger::reservation_of(e);
    if (!reserved) {
      return;
    }
    HeldMoney& held = m_held[reserved->id];
    held.scene_id = reserved->scene_id;
    held.shot_id = reserved->shot_id;
    held.amount = reserved->amount_micro_usd;
    m_reserved += held.amount;
    point(e);
  }

  void add_intent(const ledger::ExchangeIntent& intent) {
    if (auto held = m_held.find(intent.reservation_id); held != m_held.end()) {
      held->second.model = intent.model;
      held->second.tier = intent.tier;
    }
  }

  void add_response(const ledger::Event& e, const ledger::ExchangeResponse& r) {
    ++m_usage.calls;
    m_usage.retries += r.retries;
    m_usage.input_tokens += r.input_tokens;
    m_usage.output_tokens += r.output_tokens;
    m_usage.seconds_rendered += r.seconds_billed.value_or(0.0);
    if (r.retries > 0) {
      loop_event(e, "retry", r.model, std::to_string(r.retries) + " retries on " + r.model, r.endpoint_host);
    }
    ModelUse& use = m_models[r.model];
    ++use.calls;
    use.input_tokens += r.input_tokens;
    use.output_tokens += r.output_tokens;
  }

  // Any event that ends a reservation: what it committed goes to the reservation's scene, shot,
  // tier and model (the ledger's own rule: committed = the settled amounts of ended reservations).
  // The reservation then leaves the fold: the ledger ends each at most once and never reuses an
  // id (both are primary keys of its reservation tables), so no later event names it to any effect.
  void add_end(const ledger::Event& e, const json& end) {
    auto held = m_held.find(core::json_text(end, "id"));
    if (held == m_held.end()) {
      return;
    }
    const HeldMoney money = std::move(held->second);
    m_held.erase(held);
    const int64_t settled = core::json_int(end, "settled_micro_usd");
    m_reserved -= money.amount;
    m_committed += settled;
    const std::string scene = money.scene_id.empty() ? "(project)" : money.scene_id;
    const std::string tier = money.tier.empty() ? "(unsent)" : money.tier;
    m_by_scene_tier[scene][tier] += settled;
    if (!money.model.empty()) {
      m_models[money.model].micro_usd += settled;
      m_models[money.model].tier = money.tier;
    }
    if (!money.shot_id.empty()) {
      m_shot_spend[money.shot_id] += settled;
    }
    point(e);
  }

  void point(const ledger::Event& e) { m_series.push_back(SpendPoint{e.seq, e.timestamp, m_committed, m_reserved}); }

  json& loop_event(const ledger::Event& e, const std::string& kind, const std::string& who, const std::string& what,
                   const std::string& reason) {
    const auto [scene, shot] = scope_of(e.body);
    m_loops.push_back({{"seq", e.seq},
                       {"ts", e.timestamp},
                       {"run_id", e.run_id},
                       {"kind", kind},
                       {"scene_id", scene},
                       {"shot_id", shot},
                       {"who", who},
                       {"what", what},
                       {"reason", reason}});
    return m_loops.back();
  }

  void reach(const std::string& scene, int phase) {
    if (scene.empty() || phase < 0) {
      return;
    }
    int& reached = m_scenes[scene].phase;
    reached = std::max(reached, phase);
  }

  ShotAttempt& attempt_of(const std::string& shot, const std::string& resolution, int number) {
    std::vector<ShotAttempt>& list = m_attempts[shot];
    for (ShotAttempt& a : list) {
      if (a.resolution == resolution && a.attempt == number) {
        return a;
      }
    }
    ShotAttempt fresh;
    fresh.resolution = resolution;
    fresh.attempt = number;
    list.push_back(std::move(fresh));
    return list.back();
  }

  // As the engine keeps them (record.cpp note_attempt): the last word on each attempt number, and
  // the attempt graded last is the shot's standing grade.
  void note_grade(int64_t seq, const ledger::ShotAttemptGrade& graded, const std::string& verdict,
                  const json& reasons) {
    ShotAttempt& attempt = attempt_of(graded.shot_id, graded.resolution, graded.attempt);
    attempt.verdict = verdict;
    attempt.graded_seq = seq;
    attempt.reasons.clear();
    for (const json& r : reasons) {
      if (r.is_string()) {
        attempt.reasons.push_back(r.get<std::string>());
      }
    }
    attempt.wave = graded.wave;
  }

  // Shots passed at a resolution, by the engine's rule (production.cpp): the last graded attempt
  // is PASS, where an attempt counts once its wave's QC_BATCH is recorded (record.cpp), or a
  // person accepted one of its renders; and the render is not stale (engine::stale_shots).
  const ShotAttempt* passing(const std::string& shot, const std::string& resolution) const {
    auto found = m_attempts.find(shot);
    if (found == m_attempts.end()) {
      return nullptr;
    }
    const ShotAttempt* last = nullptr;
    for (const ShotAttempt& a : found->second) {
      if (a.resolution != resolution || a.verdict.empty()) {
        continue;
      }
      const bool counts = a.wave.empty() || m_waves_written.count(a.wave);
      if (counts && (last == nullptr || a.graded_seq > last->graded_seq)) {
        last = &a;
      }
    }
    return last && last->verdict == "PASS" ? last : nullptr;
  }

  bool passed(const std::string& shot, const std::string& resolution) const {
    const std::string key = shot + "/" + resolution;
    return !m_stale.count(key) && (m_accepted.count(key) || passing(shot, resolution) != nullptr);
  }

  struct ShotRow {
    std::string shot_id;
    double planned_s = 0;
  };

  // The shots of the scene's latest SHOTLIST so far (none before one is recorded).
  Result<std::vector<ShotRow>> shots_of(const std::string& scene) {
    auto latest = m_latest.find("SHOTLIST/" + scene);
    if (latest == m_latest.end()) {
      return std::vector<ShotRow>{};
    }
    auto cached = m_shotlists.find(latest->second.name);
    if (cached != m_shotlists.end()) {
      return cached->second;
    }
    AVPS_TRY_ASSIGN(json content, m_project.store().load(latest->second));
    std::vector<ShotRow> shots;
    for (const json& row : content.value("rows", json::array())) {
      if (row.is_object()) {
        const json duration = row.value("duration_s", json(0));
        shots.push_back(ShotRow{core::json_text(row, "shot_id"), duration.is_number() ? duration.get<double>() : 0});
      }
    }
    m_shotlists[latest->second.name] = shots;
    return shots;
  }

  // budget-gates' latest projection of the project's spend, if it ran.
  Result<std::optional<int64_t>> projection() const {
    auto latest = m_latest.find("BUDGET_STATUS/");
    if (latest == m_latest.end()) {
      return std::optional<int64_t>{};
    }
    AVPS_TRY_ASSIGN(json content, m_project.store().load(latest->second));
    if (!content.contains("projected_spend_micro_usd") || !content["projected_spend_micro_usd"].is_number_integer()) {
      return std::optional<int64_t>{};
    }
    return std::optional<int64_t>(content["projected_spend_micro_usd"].get<int64_t>());
  }

  std::string latest_face(const std::string& kind, const std::string& target) const {
    auto found = m_latest.find(kind + "/" + target);
    return found == m_latest.end() ? "" : found->second.path;
  }

  // The QC_BATCH row of each graded attempt: its scores. An attempt keeps the batch they came from
  // (saved in a checkpoint, which is written with them attached), so only the attempts whose wave
  // has another batch since (a new grade, a new QC_BATCH) are scored again, from a fresh start:
  // the result is that of scoring every attempt from the batches as they stand.
  Result<void> attach_scores() {
    std::map<std::string, json> loaded;  // wave -> QC_BATCH content
    for (auto& [shot, attempts] : m_attempts) {
      for (ShotAttempt& a : attempts) {
        auto batch = m_qc_batches.find(a.wave);
        const std::string from = a.wave.empty() || batch == m_qc_batches.end() ? "" : batch->second.name;
        if (from == a.scored_from) {
          continue;
        }
        a.scores = ShotAttempt().scores;
        a.scored_from = from;
        if (from.empty()) {
          continue;
        }
        auto [content, fresh] = loaded.try_emplace(a.wave);
        if (fresh) {
          AVPS_TRY_ASSIGN(content->second, m_project.store().load(batch->second));
        }
        for (const json& row : content->second.value("rows", json::array())) {
          if (core::json_text(row, "shot_id") == shot && row.value("attempt_number", json(0)) == a.attempt) {
            static const std::vector<std::string> k_scores = {
                "face_consistency",     "wardrobe_consistency", "set_continuity",    "prop_accuracy",
                "lighting_consistency", "motion_integrity",     "audio_consistency", "total_score"};
            for (const std::string& name : k_scores) {
              if (row.contains(name)) {
                a.scores[name] = row[name];
              }
            }
          }
        }
      }
    }
    return ok();
  }

  Result<void> scene_rows(ProjectView& view, const governance::Overrides& overrides) {
    AVPS_TRY(attach_scores());
    std::vector<std::string> order;
    if (auto scenes = m_latest.find("SCENES/"); scenes != m_latest.end()) {
      AVPS_TRY_ASSIGN(json content, m_project.store().load(scenes->second));
      for (const json& row : content.value("rows", json::array())) {
        if (row.is_object() && row.contains("scene_id") && row["scene_id"].is_string()) {
          order.push_back(row["scene_id"].get<std::string>());
        }
      }
    }
    const size_t listed = order.size();
    std::vector<std::string> others;
    for (const auto& [scene, state] : m_scenes) {
      if (std::find(order.begin(), order.end(), scene) == order.end()) {
        others.push_back(scene);
      }
    }
    // S01..S99 before S100.
    std::sort(others.begin(), others.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    order.insert(order.end(), others.begin(), others.end());

    // Each scene's spend (committed and still held), as the ledger sums it over its reservation
    // tables, from the same reservations and ends folded: no query per scene.
    std::map<std::string, int64_t> scene_spend;
    for (const auto& [scene, tiers] : m_by_scene_tier) {
      for (const auto& [tier, amount] : tiers) {
        scene_spend[scene] += amount;
      }
    }
    for (const auto& [id, money] : m_held) {
      scene_spend[money.scene_id] += money.amount;
    }
    const project::Budget& configured = m_project.config().budget;
    for (size_t i = 0; i < order.size(); ++i) {
      SceneView row;
      row.scene_id = order[i];
      row.in_latest_scenes = i < listed || listed == 0;
      if (auto found = m_scenes.find(row.scene_id); found != m_scenes.end()) {
        const SceneState& state = found->second;
        row.phase = state.phase < 0 ? "" : m_table.phases().at(static_cast<size_t>(state.phase));
        row.verdicts = state.verdicts;
        for (const auto& [skill, verdict] : state.verdicts) {
          const std::string column =
              column_of(m_table.phases().at(static_cast<size_t>(m_table.skill_phases(skill)->front())));
          int& worst = column == "validation" ? row.validation : column == "continuity" ? row.continuity : row.plan;
          if (!column.empty()) {
            worst = std::max(worst, severity(verdict));
          }
        }
      }
      AVPS_TRY_ASSIGN(std::vector<ShotRow> shots, shots_of(row.scene_id));
      for (const ShotRow& s : shots) {
        ShotView shot;
        shot.shot_id = s.shot_id;
        shot.planned_s = s.planned_s;
        shot.passed_proxy = passed(s.shot_id, "proxy");
        shot.passed_final = passed(s.shot_id, "final");
        if (shot.passed_final) {
          shot.passed_final_render = passed_render(s.shot_id);
        }
        row.shots.push_back(std::move(shot));
      }
      row.proxy.shots = row.final.shots = static_cast<int>(shots.size());
      auto spent = scene_spend.find(row.scene_id);
      row.spend_micro_usd = spent == scene_spend.end() ? 0 : spent->second;
      row.cap_micro_usd = overrides.cap(configured, "scene " + row.scene_id);
      view.scenes.push_back(std::move(row));
    }
    // Every grade is read (passed() above): now each shot's attempts go to its row, moved to the
    // last row that lists the shot and copied to any before it (a shot in two SHOTLISTs).
    std::map<std::string, size_t> rows_left;  // shot -> the rows still to take its attempts
    for (const SceneView& row : view.scenes) {
      for (const ShotView& shot : row.shots) {
        ++rows_left[shot.shot_id];
      }
    }
    for (SceneView& row : view.scenes) {
      for (ShotView& shot : row.shots) {
        if (auto found = m_attempts.find(shot.shot_id); found != m_attempts.end()) {
          if (--rows_left[shot.shot_id] == 0) {
            shot.attempts = std::move(found->second);
          } else {
            shot.attempts = found->second;
          }
        }
        complete_shot(shot);
        row.proxy.passed += shot.passed_proxy ? 1 : 0;
        row.final.passed += shot.passed_final ? 1 : 0;
      }
    }
    return ok();
  }

  // A shot's row beyond its grades: its latest render, storyboard, GENPACK and spend.
  void complete_shot(ShotView& shot) const {
    for (const ShotAttempt& a : shot.attempts) {
      if (!a.render.empty() && (shot.latest_render.empty() || a.resolution == "final" ||
                                shot.latest_render.find("_final_") == std::string::npos)) {
        shot.latest_render = a.render;
        shot.latest_render_sha256 = a.render_sha256;
      }
    }
    if (auto board = m_latest.find("STORYBOARD/" + shot.shot_id); board != m_latest.end()) {
      shot.storyboard = board->second.path;
      shot.storyboard_sha256 = board->second.face_sha256;
    }
    shot.genpack = latest_face("GENPACK", shot.shot_id);
    auto spent = m_shot_spend.find(shot.shot_id);
    shot.spend_micro_usd = spent == m_shot_spend.end() ? 0 : spent->second;
  }

  // The render a passed final stands on: the one a person accepted, else the passing attempt's.
  std::string passed_render(const std::string& shot) const {
    if (auto accepted = m_accepted.find(shot + "/final"); accepted != m_accepted.end()) {
      return accepted->second;
    }
    const ShotAttempt* a = passing(shot, "final");
    return a ? a->render : "";
  }

  json sampled_series() const {
    json out = json::array();
    const size_t n = m_series.size();
    const size_t stride = n <= k_max_series_points ? 1 : (n + k_max_series_points - 1) / k_max_series_points;
    for (size_t i = 0; i < n; i += stride) {
      out.push_back(m_series[i].to_json());
    }
    if (n > 0 && (n - 1) % stride != 0) {
      out.push_back(m_series.back().to_json());
    }
    return out;
  }

  json cost_json() const {
    json by_scene = json::array();
    for (const auto& [scene, tiers] : m_by_scene_tier) {
      int64_t total = 0;
      for (const auto& [tier, amount] : tiers) {
        total += amount;
      }
      by_scene.push_back({{"scene_id", scene}, {"by_tier", tiers}, {"committed_micro_usd", total}});
    }
    json by_model = json::array();
    for (const auto& [model, use] : m_models) {
      by_model.push_back({{"model", model},
                          {"tier", use.tier},
                          {"calls", use.calls},
                          {"input_tokens", use.input_tokens},
                          {"output_tokens", use.output_tokens},
                          {"committed_micro_usd", use.micro_usd}});
    }
    std::vector<std::pair<std::string, int64_t>> shots(m_shot_spend.begin(), m_shot_spend.end());
    std::sort(shots.begin(), shots.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    json top = json::array();
    for (size_t i = 0; i < shots.size() && i < k_top_shots; ++i) {
      top.push_back({{"shot_id", shots[i].first}, {"committed_micro_usd", shots[i].second}});
    }
    return {{"by_scene", by_scene}, {"by_model", by_model}, {"top_shots", top}, {"cap_raises", m_cap_raises}};
  }

  struct ModelUse {
    std::string tier;
    int64_t calls = 0, input_tokens = 0, output_tokens = 0, micro_usd = 0;
  };
  struct Usage {
    int64_t calls = 0, failed = 0, retries = 0, input_tokens = 0, output_tokens = 0, renders = 0;
    double seconds_rendered = 0;
  };

  project::Project& m_project;
  const PhaseTable m_table;
  governance::Overrides m_overrides;
  governance::HardStopFold m_stops;
  engine::StaleShotsRecord m_stale_record;
  Last m_last;                          // the snapshot's last event
  // who -> what the model shows of its last step, as flat bytes (decoded by finish() and the next
  // attempt's loop event): as JSON objects, 15 MB of the Book at 500 scenes.
  std::map<std::string, core::FlatJson> m_steps;
  std::vector<ProjectSkillView> m_project_skills;
  std::map<std::string, SceneState> m_scenes;
  std::map<std::string, std::vector<ShotAttempt>> m_attempts;  // shot -> attempts at both resolutions
  std::set<std::string> m_waves_written;                       // "S01/proxy#2": waves whose QC_BATCH is recorded
  std::map<std::string, ledger::ArtifactRecord> m_qc_batches;  // wave -> its QC_BATCH
  std::map<std::string, std::string> m_accepted;               // "S02_SH02/proxy" -> the render a person accepted
  std::set<std::string> m_stale;                               // "S01_SH02/proxy": passed from other inputs
  std::map<std::string, ledger::ArtifactRecord> m_latest;      // "SCENES/", "SHOTLIST/S01" -> latest version
  std::map<std::string, std::vector<ShotRow>> m_shotlists;     // SHOTLIST file -> its shots
  std::map<std::string, HeldMoney> m_held;                     // reservation id -> where its money goes
  std::map<std::string, std::map<std::string, int64_t>> m_by_scene_tier;
  std::map<std::string, ModelUse> m_models;
  std::map<std::string, int64_t> m_shot_spend;
  int64_t m_committed = 0, m_reserved = 0;
  std::vector<SpendPoint> m_series;
  size_t m_events_folded = 0;
  json m_cap_raises = json::array();
  json m_loops = json::array();
  json m_runs = json::array();
  std::map<std::string, json> m_jobs;  // exchange key -> a provider job with a ticket and no answer yet
  Usage m_usage;
};

}  // namespace

int severity(const std::string& verdict) {
  static const std::map<std::string, int> k_rank = {{"PASS", 1}, {"ACCEPTED", 1}, {"WARN", 2},
                                                    {"FIX", 3},  {"FAIL", 4},     {"STOP", 5}};
  auto found = k_rank.find(verdict);
  return found == k_rank.end() ? 0 : found->second;
}

std::string severity_name(int rank) {
  static const std::vector<std::string> k_names = {"", "PASS", "WARN", "FIX", "FAIL", "STOP"};
  return k_names.at(static_cast<size_t>(rank));
}

std::vector<PhaseView> phases_of(const skills::StageGraph* graph) {
  std::vector<PhaseView> out;
  for (const skills::Phase& phase : graph ? graph->phases : std::vector<skills::Phase>{}) {
    PhaseView item{phase.name, phase.fan_out, phase.resolution, {}};
    for (const skills::GraphStep& step : phase.steps) {
      if (!step.skill.empty()) {
        item.skills.push_back(step.skill);
      }
    }
    out.push_back(std::move(item));
  }
  return out;
}

namespace {

namespace fs = std::filesystem;

// A checkpoint that still matches the record and what the folds depend on (engine::UsableCheckpoint:
// its format line, its fold section against its sha256, this avps, the dependencies, the ledger's
// event): its fold section, whose head and stale shots are read, and the Book after them not yet
// (fold_record restores it straight from these bytes).
struct Checkpoint {
  int64_t seq = 0;
  std::string fold;                  // the fold section's bytes
  size_t book_offset = 0;            // where Book::save's bytes start in `fold`
  json stale_shots;                  // the view's stale_shots as of seq
  std::optional<engine::StaleShotsRecord> stale_record;  // the stale-shot rule's record: only when events follow seq
  /// The record's section as it is in the file, checked against its sha256 and not decoded: when
  /// the writer may carry it (StaleCarry::when_unchanged) and what follows seq cannot change it
  /// nor the stale shots (tail_keeps_stale_shots). stale_shots then stand for the last event too.
  std::optional<std::string> carried_record;
  /// A reader's (StaleCarry::shots_when_unchanged): what follows seq cannot change the stale shots,
  /// so stale_shots stand for the last event too, and the record's section is not read at all.
  bool stale_shots_stand = false;
  /// The file as it was opened: the writer reads the run's record section from it once the
  /// Book's sections are made and the Book let go.
  std::unique_ptr<engine::UsableCheckpoint> file;
};

// Whether the checkpoint's stale shots may be taken over the events after it, instead of working
// them out again from its stale-shot record: the writer's way carries the record's section too
// (when_unchanged), a reader's needs only the stale shots (shots_when_unchanged).
enum class StaleCarry { never, when_unchanged, shots_when_unchanged };

// The events a run with nothing to do records: the stale-shot rule's record takes nothing from
// them (engine::RecordFold: no branch reads these kinds, and their bodies, written by the ledger's
// begin_run and end_run, carry no reservation), and they record no artifact (the rule's other
// input, with the configuration and skills the checkpoint's dependencies cover).
bool leaves_stale_shots(std::string_view kind) { return kind == "run.started" || kind == "run.finished"; }

// At most this many events after a checkpoint are looked at for a carry: a run with nothing to do
// records two, and the checkpoint it leaves is as of its last.
constexpr size_t k_carry_tail_max = 16;

// How many events follow `seq` when there are a few at most and every one leaves the stale shots
// as they were, else nullopt.
Result<std::optional<size_t>> tail_leaving_stale_shots(project::Project& project, int64_t seq) {
  ledger::Ledger::EventQuery tail;
  tail.after_seq = seq;
  tail.limit = k_carry_tail_max + 1;
  tail.bodies = false;
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, project.ledger().events(tail));
  if (events.size() > k_carry_tail_max ||
      !std::all_of(events.begin(), events.end(), [](const ledger::Event& e) { return leaves_stale_shots(e.kind); })) {
    return std::optional<size_t>();
  }
  return std::optional<size_t>(events.size());
}

// Whether every event after `seq` (a few at most) leaves the stale shots as they were.
Result<bool> tail_keeps_stale_shots(project::Project& project, int64_t seq) {
  AVPS_TRY_ASSIGN(std::optional<size_t> tail, tail_leaving_stale_shots(project, seq));
  return tail.has_value();
}

// Whether the stale shots may be carried over a tail of run.started and run.finished: they are
// worked out from the record, the artifacts and, when the packager reads it, the brief, which no
// event records, so only when the packager does not read the brief.
bool stale_shots_carry(const skills::Registry& registry) {
  if (const skills::StageGraph* graph = registry.stage_graph()) {
    if (const skills::SkillDef* packager = registry.find(graph->role("packager"))) {
      return std::none_of(packager->inputs.begin(), packager->inputs.end(),
                          [](const skills::SkillInput& input) { return input.kind == "BRIEF"; });
    }
  }
  return true;
}

// The project's checkpoint if it can be used, else nullopt and why (a debug line: a missing,
// stale or damaged checkpoint only costs the time of a whole fold, and nothing is wrong).
Result<std::optional<Checkpoint>> usable_checkpoint(project::Project& project, const std::string& dependencies,
                                                    StaleCarry carry) {
  const fs::path path = checkpoint_path(project.dir());
  auto unused = [&](const std::string& why) {
    core::diag::debug("fold checkpoint " + path.string() + " not used (" + why + "): every event is folded");
    return std::optional<Checkpoint>{};
  };
  AVPS_TRY_ASSIGN(auto opened, engine::UsableCheckpoint::open(project, dependencies));
  if (const std::string* why = std::get_if<std::string>(&opened)) {
    return unused(*why);
  }
  engine::UsableCheckpoint& file = std::get<engine::UsableCheckpoint>(opened);
  Checkpoint checkpoint;
  checkpoint.seq = file.head().seq;
  const size_t after_head = file.after_head();
  checkpoint.fold = file.take_fold();
  core::ByteReader head(std::string_view(checkpoint.fold).substr(after_head));
  checkpoint.stale_shots = head.json();
  if (!head.ok() || !checkpoint.stale_shots.is_array()) {
    return unused("malformed: its stale shots are not a list");
  }
  checkpoint.book_offset = after_head + head.consumed();
  if (file.events_follow()) {
    bool carried = false;
    if (carry != StaleCarry::never) {
      AVPS_TRY_ASSIGN(carried, tail_keeps_stale_shots(project, checkpoint.seq));
    }
    if (carried && carry == StaleCarry::shots_when_unchanged) {
      checkpoint.stale_shots_stand = true;  // a reader: the record's section is not needed
    } else {
      Result<std::string> record = file.section(engine::CheckpointSection::stale_record);
      if (!record) {
        return unused(record.error().message);
      }
      if (carried) {
        checkpoint.carried_record = std::move(record).value();
      } else {
        checkpoint.stale_record = engine::StaleShotsRecord::restore_bytes(*record);
        if (!checkpoint.stale_record) {
          return unused("malformed: its stale-shot record is not one this avps saved");
        }
      }
    }
  }
  checkpoint.file = std::make_unique<engine::UsableCheckpoint>(std::move(file));
  return std::optional<Checkpoint>(std::move(checkpoint));
}

// The record folded into a Book: from the checkpoint and the events after it when `folds` allows
// and one is usable, else from every event. `saved_stale` is the checkpoint's stale_shots when no
// event followed it (they are those of the record as read), else null.
struct Folded {
  std::unique_ptr<Book> book;
  json saved_stale;
  bool from_checkpoint = false;
  /// With StaleCarry::when_unchanged: the checkpoint's stale-shot record section, carried as it
  /// is (the Book's own stale-shot record is then not restored), and saved_stale its stale shots.
  std::optional<std::string> carried_record;
  /// The checkpoint the Book was restored from (its file as opened), when it was.
  std::unique_ptr<engine::UsableCheckpoint> previous;
};

Result<Folded> fold_record(project::Project& project, const skills::StageGraph* graph, Folds folds,
                           const std::string& dependencies, StaleCarry carry = StaleCarry::never) {
  Folded folded;
  folded.book = std::make_unique<Book>(project, graph);
  if (folds == Folds::checkpoint) {
    AVPS_TRY_ASSIGN(std::optional<Checkpoint> checkpoint, usable_checkpoint(project, dependencies, carry));
    if (checkpoint) {
      std::string malformed;
      try {
        core::ByteReader book(std::string_view(checkpoint->fold).substr(checkpoint->book_offset));
        if (!folded.book->restore(book) || !book.done()) {
          malformed = "its fold is not one this avps saved";
        } else if (checkpoint->stale_record) {
          folded.book->restore_stale_shots_record(std::move(*checkpoint->stale_record));
        }
      } catch (const std::exception& e) {
        malformed = e.what();
      }
      checkpoint->fold.clear();
      checkpoint->fold.shrink_to_fit();
      checkpoint->stale_record.reset();
      if (malformed.empty()) {
        folded.from_checkpoint = true;
        folded.previous = std::move(checkpoint->file);
      } else {
        core::diag::debug("fold checkpoint not used (malformed: " + malformed + "): every event is folded");
        folded.book = std::make_unique<Book>(project, graph);
      }
    }
    AVPS_TRY(folded.book->read());
    if (folded.from_checkpoint) {
      core::diag::debug("fold checkpoint as of event " + std::to_string(checkpoint->seq) +
                        " used: " + std::to_string(folded.book->events_folded()) + " events folded after it");
      if (folded.book->events_folded() == 0 || checkpoint->carried_record || checkpoint->stale_shots_stand) {
        folded.saved_stale = std::move(checkpoint->stale_shots);
        folded.carried_record = std::move(checkpoint->carried_record);
      }
    }
    return folded;
  }
  AVPS_TRY(folded.book->read());
  return folded;
}

json stale_json(const std::vector<engine::StaleShot>& stale) {
  json out = json::array();
  for (const engine::StaleShot& s : stale) {
    out.push_back(
        {{"scene_id", s.scene_id}, {"shot_id", s.shot_id}, {"resolutions", s.resolutions}, {"changed", s.changed}});
  }
  return out;
}

}  // namespace

std::filesystem::path checkpoint_path(const std::filesystem::path& project_dir) {
  return engine::checkpoint_path(project_dir);
}

Result<CheckpointWritten> write_checkpoint(project::Project& project) {
  AVPS_TRY_ASSIGN(skills::Registry registry, skills::Registry::load(project::data_dir(), &project.dir()));
  AVPS_TRY_ASSIGN(std::string dependencies, engine::fold_dependencies(project));
  const StaleCarry carry = stale_shots_carry(registry) ? StaleCarry::when_unchanged : StaleCarry::never;
  // A checkpoint followed only by what runs with nothing to do record is kept as it is: a reader
  // folds those few events onto it and takes its stale shots (StaleCarry), and the next run's
  // record is restored from it the same way, so writing it again (at 500 scenes 47 MB, synced: a
  // tenth of such a run) would change no answer. The tail stays bounded (k_carry_tail_max): a run
  // that finds a longer one writes the checkpoint anew.
  if (carry == StaleCarry::when_unchanged) {
    AVPS_TRY_ASSIGN(auto opened,
                    engine::UsableCheckpoint::open(project, dependencies, engine::UsableCheckpoint::FoldBytes::none));
    if (engine::UsableCheckpoint* previous = std::get_if<engine::UsableCheckpoint>(&opened)) {
      AVPS_TRY_ASSIGN(std::optional<size_t> tail, tail_leaving_stale_shots(project, previous->head().seq));
      // Kept only whole: a section that no longer matches its sha256 (which opening it does not
      // check) would leave every reader to fold every event until a longer tail replaced it.
      if (tail && *tail > 0 && previous->check(engine::CheckpointSection::stale_record) &&
          previous->check(engine::CheckpointSection::run_record)) {
        CheckpointWritten kept;
        kept.seq = previous->head().seq;
        kept.kept_with_tail = *tail;
        return kept;
      }
    }
  }
  AVPS_TRY_ASSIGN(Folded folded, fold_record(project, registry.stage_graph(), Folds::checkpoint, dependencies, carry));
  CheckpointWritten written;
  written.seq = folded.book->last().seq;
  written.events_folded = folded.book->events_folded();
  written.from_previous = folded.from_checkpoint;
  if (written.seq == 0 || (folded.from_checkpoint && written.events_folded == 0)) {
    return written;  // nothing recorded, or the checkpoint is as of the last event already
  }
  AVPS_TRY(folded.book->score_attempts());
  // The end of a run is its peak of memory when every event is folded (a fresh production), so
  // the sections are made one after another, each written as it is made (CheckpointWriter: to a
  // spill file, the checkpoint published at the end), and what made each is let go of as it is
  // written: the Book's bytes (the Book let go of member by member), the stale-shot record's flat
  // bytes (never a document), the stale shots from that record (then the record goes), the
  // engine's own record (let go of member by member). At 500 scenes the Book,
  // the record's document and its CBOR held at once were 150 MB; the sections made so far, held
  // while the next was folded, 22 to 47 MB.
  // Over a tail that leaves the stale shots as the checkpoint had them (tail_keeps_stale_shots: a
  // checkpoint not kept above only because its run's record no longer matched its sha256), its
  // record section and stale shots are written again as they were, not worked out again.
  std::optional<engine::StaleShotsRecord> stale_record;
  if (!folded.carried_record) {
    stale_record = folded.book->take_stale_shots_record();
  }
  const Book::Last last = folded.book->last();
  AVPS_TRY_ASSIGN(engine::CheckpointWriter checkpoint, engine::CheckpointWriter::create(project.dir()));
  // The fold section: its head (what a reader checks before it takes anything), the stale shots,
  // then the Book. The Book's bytes are written first, the head set before them once the stale
  // shots are worked out, so that the Book is gone by then.
  std::ignore = std::move(*folded.book).save_parts(checkpoint.sink(engine::CheckpointSection::fold));  // all written
  folded.book.reset();
  // The Book's memory back to the system before the next fold: the tens of thousands of small
  // nodes of a fold scatter what glibc's malloc cannot return from the top of its heap, and each
  // fold stacked its peak on the last one's leftovers (at 500 scenes, a checkpoint written from
  // every event: 161 MB of RSS while the stale shots were worked out, 140 with the Book's given
  // back; bench/README.md).
  core::give_back_free_memory();
  json stale_shots;
  if (stale_record) {
    checkpoint.write(engine::CheckpointSection::stale_record, stale_record->save_bytes());
    AVPS_TRY_ASSIGN(std::vector<engine::StaleShot> stale,
                    engine::stale_shots(project, std::move(*stale_record), &registry));
    stale_record.reset();
    stale_shots = stale_json(stale);
    core::give_back_free_memory();
  } else {
    stale_shots = std::move(folded.saved_stale);
    checkpoint.write(engine::CheckpointSection::stale_record, *folded.carried_record);
    folded.carried_record.reset();
  }
  core::ByteWriter head;
  engine::write_checkpoint_head(head, {AVPS_VERSION_STRING, dependencies, last.seq, last.hash, last.ts});
  head.json(stale_shots);
  stale_shots = json();
  checkpoint.set_head(engine::CheckpointSection::fold, head.take());
  // The engine's own record, brought up to the same event from the previous checkpoint's section
  // when it is usable (or carried over a run that did nothing), else from every event.
  AVPS_TRY(engine::write_run_record_section(project.ledger(), folded.previous.get(), written.seq, checkpoint));
  folded.previous.reset();
  AVPS_TRY_ASSIGN(written.bytes, checkpoint.commit());
  return written;
}


Result<ProjectView> read_project(project::Project& project, Folds folds) {
  ProjectView view;
  view.title = project.config().title;
  // The skills and the stage graph (the project's own where it has them): the scene phases, and
  // the engine's rule for stale shots, come from them.
  AVPS_TRY_ASSIGN(skills::Registry registry, skills::Registry::load(project::data_dir(), &project.dir()));
  std::string dependencies;
  if (folds == Folds::checkpoint) {
    AVPS_TRY_ASSIGN(dependencies, engine::fold_dependencies(project));
  }
  // Over a tail of runs with nothing to do the checkpoint's stale shots stand, as the writer
  // carries them (write_checkpoint keeps such a checkpoint as it is).
  AVPS_TRY_ASSIGN(Folded folded,
                  fold_record(project, registry.stage_graph(), folds, dependencies,
                              stale_shots_carry(registry) ? StaleCarry::shots_when_unchanged : StaleCarry::never));
  Book& book = *folded.book;
  view.scene_phases = book.table().phases();
  view.phases = phases_of(registry.stage_graph());
  if (book.last().seq > 0) {
    view.as_of_seq = book.last().seq;
    view.as_of_hash = book.last().hash;
    view.as_of_ts = book.last().ts;
  }

  const governance::Overrides& overrides = book.overrides();
  const std::vector<governance::HardStop> open_stops = book.stops().open();
  for (const governance::OverrideRecord& r : overrides.records()) {
    view.overrides.push_back({{"stop", r.stop_id()},
                              {"skill", r.skill},
                              {"loop", r.loop},
                              {"decision", r.decision},
                              {"value", r.value},
                              {"describe", r.describe()},
                              {"reason", r.reason},
                              {"cost_impact_micro_usd", r.cost_impact_micro_usd}});
  }
  std::vector<int64_t> stop_seqs;  // of view.hard_stops, in their order
  for (const governance::HardStop& stop : open_stops) {
    json item = {{"id", stop.id()},   {"skill", stop.skill}, {"kind", governance::stop_kind_name(stop.kind)},
                 {"loop", stop.loop}, {"scope", stop.scope}, {"reason", stop.reason}};
    stop_seqs.push_back(stop.seq);
    if (!stop.cap.empty()) {
      item["cap"] = stop.cap;
    }
    view.hard_stops.push_back(item);
  }

  // Shots the next run renders again, by the engine's own rule (a render's identity): as the
  // checkpoint found them when no event followed it, else worked out now.
  if (!folded.saved_stale.is_null()) {
    view.stale_shots = std::move(folded.saved_stale);
  } else {
    AVPS_TRY_ASSIGN(std::vector<engine::StaleShot> stale,
                    engine::stale_shots(project, book.take_stale_shots_record(), &registry));
    view.stale_shots = stale_json(stale);
  }
  std::set<std::string> stale_keys;
  for (const json& s : view.stale_shots) {
    for (const json& resolution : s.at("resolutions")) {
      stale_keys.insert(s.at("shot_id").get<std::string>() + "/" + resolution.get<std::string>());
    }
  }
  AVPS_TRY(book.finish(view, stale_keys, overrides));
  for (ProjectSkillView& skill : view.project_skills) {
    const skills::SkillDef* def = registry.find(skill.skill);
    for (const auto& [entity, body] : skill.last) {
      const std::string verdict = core::json_text(body, "verdict");
      skill.settled.push_back(def ? def->settles(verdict) : engine::passed(verdict));
    }
  }

  // What each open stop holds, by the engine's own Plan over the same record.
  if (const skills::StageGraph* graph = registry.stage_graph()) {
    std::vector<std::string> scene_ids;
    for (const SceneView& scene : view.scenes) {
      if (scene.in_latest_scenes) {
        scene_ids.push_back(scene.scene_id);
      }
    }
    std::vector<engine::PlanStop> stops;
    for (const governance::HardStop& stop : open_stops) {
      stops.push_back(engine::plan_stop(stop.seq, core::json_text(stop.scope, "scene_id"),
                                        core::json_text(stop.scope, "entity_id"),
                                        stop.kind == governance::StopKind::budget && stop.cap == "project",
                                        stop.graph_step, stop.skill, stop.reason, *graph));
    }
    // Which scenes show each entity: a lock's stop holds those (the latest BREAKDOWN's rows).
    engine::EntityScenes entity_scenes;
    AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> breakdown,
                    project.ledger().latest_artifact("BREAKDOWN", ""));
    if (breakdown && !stops.empty()) {
      AVPS_TRY_ASSIGN(json content, project.store().load(*breakdown));
      entity_scenes = engine::entity_scenes_of(content);
    }
    const engine::Plan plan(*graph, scene_ids, std::move(stops), std::move(entity_scenes));
    for (size_t i = 0; i < view.hard_stops.size(); ++i) {
      if (std::optional<size_t> phase = plan.first_phase_held_by(stop_seqs[i]);
          phase && *phase < graph->phases.size()) {
        view.hard_stops[i]["holds_from_phase"] = graph->phases[*phase].name;
      }
    }
    for (SceneView& scene : view.scenes) {
      const std::string step = scene.in_latest_scenes ? plan.first_held_step(scene.scene_id) : "";
      if (!step.empty()) {
        engine::PlanUnit unit;
        unit.step = step;
        unit.scene = scene.scene_id;
        scene.held_by = plan.blocker(unit)->seq;
        scene.held_from = plan.phase_of(step);
      }
    }
  }

  const project::Budget& configured = project.config().budget;
  const ledger::Spend spend = book.spend();
  const project::Budget effective = overrides.effective_budget(configured);
  view.spend = {
      {"committed_micro_usd", spend.committed_micro_usd},
      {"reserved_micro_usd", spend.outstanding_micro_usd},
      {"project_cap_micro_usd", effective.project_cap_micro_usd},
      {"configured_project_cap_micro_usd", configured.project_cap_micro_usd},
      {"scene_cap_micro_usd", configured.scene_cap_micro_usd ? json(*configured.scene_cap_micro_usd) : json(nullptr)},
      {"shot_cap_micro_usd", configured.shot_cap_micro_usd ? json(*configured.shot_cap_micro_usd) : json(nullptr)},
      {"warn_pct", configured.warn_pct},
      {"projected_micro_usd", view.projected_micro_usd ? json(*view.projected_micro_usd) : json(nullptr)}};
  return view;
}

std::string phase_reached(const ProjectView& view) {
  const std::vector<std::string>& phases = view.scene_phases;
  bool any = false;
  int least = static_cast<int>(phases.size());
  for (const SceneView& s : view.scenes) {
    if (s.in_latest_scenes) {
      any = true;
      const auto at = std::find(phases.begin(), phases.end(), s.phase);
      least = std::min(least, at == phases.end() ? -1 : static_cast<int>(at - phases.begin()));
    }
  }
  if (!any) {
    return view.steps.empty() ? "" : "narrative";
  }
  return least < 0 ? "narrative" : phases.at(static_cast<size_t>(least));
}

namespace {

json verdict_json(int rank) { return rank == 0 ? json(nullptr) : json(severity_name(rank)); }

json attempt_json(const ShotAttempt& a) {
  json out = {{"resolution", a.resolution},
              {"attempt", a.attempt},
              {"verdict", a.verdict.empty() ? json(nullptr) : json(a.verdict)},
              {"reasons", a.reasons},
              {"scores", a.scores},
              {"render", a.render.empty() ? json(nullptr) : json(a.render)},
              {"render_sha256", a.render_sha256.empty() ? json(nullptr) : json(a.render_sha256)},
              {"model", a.model},
              {"tier", a.tier},
              {"recorded_at", a.recorded_at}};
  return out;
}

json project_skill_json(const ProjectSkillView& skill) {
  int worst = 0, passed = 0, attempts = 0;
  json not_passed = json::array();
  for (size_t i = 0; i < skill.last.size(); ++i) {
    const auto& [entity, body] = skill.last[i];
    const std::string verdict = body.value("verdict", "");
    worst = std::max(worst, severity(verdict));
    attempts = std::max(attempts, body.value("attempt", 0));
    if (skill.settled.at(i)) {
      ++passed;
    } else {
      not_passed.push_back({{"entity", entity}, {"verdict", verdict}, {"attempt", body.value("attempt", 0)}});
    }
  }
  json item = {{"skill", skill.skill}, {"verdict", verdict_json(worst)}, {"instances", skill.last.size()},
               {"passed", passed},     {"attempts", attempts},           {"not_passed", not_passed}};
  if (skill.last.size() == 1 && skill.last.front().first.empty()) {
    const json& body = skill.last.front().second;
    item["tier"] = body.value("tier", "");
    item["outputs"] = body.value("outputs", "");
  }
  return item;
}

}  // namespace

json to_json(const ProjectView& view) {
  json steps = json::array();
  for (const auto& [who, body] : view.steps) {
    steps.push_back({{"step", who},
                     {"verdict", body.value("verdict", json(nullptr))},
                     {"attempt", body.value("attempt", json(nullptr))},
                     {"tier", body.value("tier", json(nullptr))},
                     {"outputs", body.value("outputs", json(nullptr))}});
  }
  json project_steps = json::array();
  for (const ProjectSkillView& skill : view.project_skills) {
    project_steps.push_back(project_skill_json(skill));
  }
  json scenes = json::array();
  for (const SceneView& r : view.scenes) {
    json shots = json::array();
    for (const ShotView& s : r.shots) {
      json attempts = json::array();
      for (const ShotAttempt& a : s.attempts) {
        attempts.push_back(attempt_json(a));
      }
      auto or_null = [](const std::string& text) { return text.empty() ? json(nullptr) : json(text); };
      shots.push_back({{"shot_id", s.shot_id},
                       {"planned_s", s.planned_s},
                       {"passed_proxy", s.passed_proxy},
                       {"passed_final", s.passed_final},
                       {"latest_render", or_null(s.latest_render)},
                       {"latest_render_sha256", or_null(s.latest_render_sha256)},
                       {"passed_final_render", or_null(s.passed_final_render)},
                       {"storyboard", or_null(s.storyboard)},
                       {"storyboard_sha256", or_null(s.storyboard_sha256)},
                       {"genpack", or_null(s.genpack)},
                       {"committed_micro_usd", s.spend_micro_usd},
                       {"attempts", attempts}});
    }
    json item = {{"scene_id", r.scene_id},
                 {"phase", r.phase.empty() ? json(nullptr) : json(r.phase)},
                 {"validation", verdict_json(r.validation)},
                 {"continuity", verdict_json(r.continuity)},
                 {"plan", verdict_json(r.plan)},
                 {"proxy", {{"passed", r.proxy.passed}, {"shots", r.proxy.shots}}},
                 {"final", {{"passed", r.final.passed}, {"shots", r.final.shots}}},
                 {"spend_micro_usd", r.spend_micro_usd},
                 {"cap_micro_usd", r.cap_micro_usd ? json(*r.cap_micro_usd) : json(nullptr)},
                 {"in_latest_scenes", r.in_latest_scenes},
                 {"held_by", r.held_by == 0 ? json(nullptr)
                                            : json{{"stop", "STOP-" + std::to_string(r.held_by)},
                                                   {"from_phase", r.held_from}}},
                 {"shots", shots}};
    scenes.push_back(item);
  }
  const std::string phase = phase_reached(view);
  return {{"format_version", k_format_version},
          {"kind", "REPORT"},
          {"title", view.title},
          {"as_of", {{"seq", view.as_of_seq}, {"hash", view.as_of_hash}, {"ts", view.as_of_ts}}},
          {"phase_reached", phase.empty() ? json(nullptr) : json(phase)},
          {"steps", steps},
          {"project_steps", project_steps},
          {"scenes", scenes},
          {"hard_stops", view.hard_stops},
          {"stale_shots", view.stale_shots},
          {"overrides", view.overrides},
          {"spend", view.spend},
          {"usage", view.usage},
          {"spend_series", view.spend_series},
          {"cost", view.cost},
          {"loops", view.loops},
          {"runs", view.runs}};
}

}  // namespace avps::report
