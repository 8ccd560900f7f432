#include "avps/engine/engine.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/store.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/gates/project_context.hpp"
#include "avps/governance/pricing.hpp"

namespace avps::engine {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The phases this version of the engine runs.
bool is_built(const skills::Phase& phase) {
  return phase.name == "narrative" || phase.name == "locks";
}

// What one run of a step is about: nothing (a once phase), or an entity (per_entity).
struct Context {
  std::string entity_id;  ///< e.g. ALEX
  std::string scope;      ///< the skill scope it suits: character, set, voice
  std::string target() const { return entity_id; }
  std::string label() const { return entity_id.empty() ? "" : " " + entity_id; }
};

bool row_mentions(const json& row, const std::string& id) {
  for (const auto& item : row.items()) {
    const json& cell = item.value();
    if ((cell.is_string() && cell == id) ||
        (cell.is_array() && std::find(cell.begin(), cell.end(), json(id)) != cell.end())) {
      return true;
    }
  }
  return false;
}

// Stores bytes as a content-addressed object (recorded requests and responses).
Result<std::string> store_object(const fs::path& project_dir, const std::string& bytes) {
  std::string sha = core::sha256_hex(bytes);
  fs::path path = artifacts::object_path(project_dir, sha);
  AVPS_TRY(core::create_directories_durable(path.parent_path()));
  Result<void> written = core::write_file_atomic(path, bytes, core::Overwrite::no, core::Durability::durable);
  if (!written && written.error().code != ErrorCode::already_exists) {
    return std::move(written).error();
  }
  return sha;
}

// What the record says about the ledger so far, rebuilt from the events (never kept elsewhere).
struct Record {
  std::map<std::string, json> responses;  // exchange key -> {response_sha256, usage, model}
  std::map<std::string, json> steps;      // step key -> the last step.finished body
  std::map<std::string, int> intents;       // exchange key -> intents recorded
  std::map<std::string, int> reservations;  // exchange key -> reservations made for it
  std::map<std::string, json> written_by;   // artifact name -> {step, attempt} that wrote it
};

Result<Record> read_record(const ledger::Ledger& ledger) {
  AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, ledger.events());
  Record record;
  for (const ledger::Event& e : events) {
    if (e.body.contains("reservation")) {
      std::string id = e.body["reservation"].value("id", "");
      ++record.reservations[id.substr(0, id.find('#'))];
    }
    if (e.kind == "artifact.recorded" && e.body.contains("artifact")) {
      const json details = e.body.value("details", json::object());
      record.written_by[e.body["artifact"].value("name", "")] = {{"step", details.value("step", "")},
                                                                  {"attempt", details.value("attempt", 0)}};
    }
    if (e.kind == "exchange.intent") {
      ++record.intents[e.body.value("key", "")];
    } else if (e.kind == "exchange.response") {
      record.responses[e.body.value("key", "")] = e.body;
    } else if (e.kind == "step.finished") {
      record.steps[e.body.value("step", "")] = e.body;
    }
  }
  return record;
}

}  // namespace

struct Engine::Impl {
  Engine& e;
  Record record;
  RunOutcome outcome;

  // The latest version of kind for a target, with its fingerprint.
  Result<std::optional<std::pair<json, json>>> latest_of(const std::string& kind, const std::string& target) {
    AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> latest, e.m_project.store().latest(kind, target));
    if (!latest) {
      return std::optional<std::pair<json, json>>{};
    }
    AVPS_TRY_ASSIGN(json content, e.m_project.store().load(*latest));
    json fingerprint = {{"kind", kind}, {"name", latest->name}, {"sha256", latest->json_sha256}};
    return std::optional<std::pair<json, json>>{std::make_pair(std::move(content), std::move(fingerprint))};
  }

  // The inputs a step takes now for `context`, by kind (each cut to its slice), and their
  // fingerprints (name + hash) for staleness.
  Result<std::pair<json, json>> gather_inputs(const skills::SkillDef& skill, const Context& context) {
    json inputs = json::object();
    json fingerprints = json::array();
    for (const skills::SkillInput& input : skill.inputs) {
      if (input.kind == "BRIEF") {
        Result<std::string> brief = core::read_file(e.m_project.config().brief);
        if (!brief) {
          if (input.required) {
            return make_error(ErrorCode::configuration, "the brief " + e.m_project.config().brief.string() +
                                                            " is missing: " + brief.error().message);
          }
          continue;
        }
        inputs["BRIEF"] = *brief;
        fingerprints.push_back({{"kind", "BRIEF"}, {"sha256", core::sha256_hex(*brief)}});
        continue;
      }
      const artifacts::KindInfo* info = artifacts::find_kind(input.kind);
      if (!info) {
        return make_error(ErrorCode::configuration, skill.name + " reads " + input.kind + ", which no artifact is");
      }
      std::optional<json> value;
      if (input.slice == "latest" || input.slice == "all_rows" || input.slice == "entity_rows" ||
          input.slice == "same_entity") {
        std::string target = info->target == artifacts::TargetKind::entity
                                 ? (input.kind == "STYLE_LOCK" ? "PROJECT" : context.entity_id)
                                 : "";
        AVPS_TRY_ASSIGN(auto found, latest_of(input.kind, target));
        if (found) {
          value = std::move(found->first);
          fingerprints.push_back(std::move(found->second));
          if (input.slice == "entity_rows" && value->contains("rows")) {
            json rows = json::array();
            for (const json& row : (*value)["rows"]) {
              if (row_mentions(row, context.entity_id)) {
                rows.push_back(row);
              }
            }
            (*value)["rows"] = rows;
          }
        }
      } else if (input.slice == "entity_scenes" || input.slice == "all_targets") {
        // Per-scene artifacts (PSYCH, CULTURE) do not exist before the per-scene phases run.
        AVPS_TRY_ASSIGN(std::vector<ledger::ArtifactRecord> records, e.m_project.ledger().artifacts());
        bool any = std::any_of(records.begin(), records.end(),
                               [&](const ledger::ArtifactRecord& r) { return r.kind == input.kind; });
        if (any) {
          return make_error(ErrorCode::unsupported, "the " + input.slice + " slice of " + input.kind +
                                                        " is not built yet in this engine");
        }
      } else {
        return make_error(ErrorCode::unsupported,
                          "the " + input.slice + " slice (" + skill.name + " reading " + input.kind +
                              ") is not built yet in this engine");
      }
      if (!value) {
        if (input.required) {
          return make_error(ErrorCode::not_found,
                            skill.name + context.label() + " needs " + input.kind + ", which does not exist yet");
        }
        continue;
      }
      inputs[input.kind] = std::move(*value);
    }
    return std::make_pair(inputs, fingerprints);
  }

  // The contexts a phase runs its steps for.
  Result<std::vector<Context>> contexts_of(const skills::Phase& phase) {
    if (phase.fan_out == "once") {
      return std::vector<Context>{Context{}};
    }
    if (phase.fan_out != "per_entity") {
      return make_error(ErrorCode::unsupported, "fan-out " + phase.fan_out + " is not built yet");
    }
    // One context per lock BREAKDOWN requires, in order of first appearance.
    AVPS_TRY_ASSIGN(auto breakdown, latest_of("BREAKDOWN", ""));
    if (!breakdown) {
      return make_error(ErrorCode::not_found, "the locks phase needs a BREAKDOWN");
    }
    static const std::map<std::string, std::string> k_scope_by_prefix = {
        {"CHAR_", "character"}, {"SET_", "set"}, {"VOICE_", "voice"}};
    std::vector<Context> out;
    std::set<std::string> seen;
    for (const json& row : breakdown->first.value("rows", json::array())) {
      for (const json& requirement : row.value("lock_requirements", json::array())) {
        std::string text = requirement.get<std::string>();
        for (const auto& [prefix, scope] : k_scope_by_prefix) {
          if (text.rfind(prefix, 0) == 0 && seen.insert(text).second) {
            out.push_back(Context{text.substr(prefix.size()), scope});
          }
        }
      }
    }
    return out;
  }

  Result<json> output_schema(const skills::SkillDef& skill) {
    json schemas = json::object();
    for (const skills::SkillOutput& output : skill.outputs) {
      AVPS_TRY_ASSIGN(std::string text, core::read_file(project::data_dir() / "schemas" / output.schema));
      AVPS_TRY_ASSIGN(json schema, core::parse_json(text, output.schema));
      schemas[output.kind] = schema;
    }
    return skill.outputs.size() == 1 ? schemas[skill.outputs.front().kind] : schemas;
  }

  // One call: replayed from the record when its response is there, else reserved, recorded,
  // sent, recorded, settled. Returns the response text.
  Result<std::string> call(const skills::SkillDef& skill, backends::ModelRequest& request, const std::string& tier,
                           std::string& model_used, int64_t& cost) {
    AVPS_TRY_ASSIGN(std::string request_bytes, core::canonical_json(request.to_json()));
    AVPS_TRY_ASSIGN(governance::Task task, governance::Task::for_skill(skill, static_cast<int64_t>(request_bytes.size() / 4 + 1)));
    task.tier = tier;
    AVPS_TRY_ASSIGN(governance::Route route, e.m_router.route(task));
    request.model = route.model;
    request.tier = tier;
    request.max_output_tokens = static_cast<int>(route.output_tokens);
    AVPS_TRY_ASSIGN(request_bytes, core::canonical_json(request.to_json()));
    const std::string key = core::sha256_hex(request_bytes);
    model_used = route.model;

    if (auto recorded = record.responses.find(key); recorded != record.responses.end()) {
      ++outcome.calls_replayed;
      cost = recorded->second.value("cost_micro_usd", int64_t{0});
      return core::read_file(artifacts::object_path(e.m_project.dir(), recorded->second.value("response_sha256", "")));
    }

    // An intent without a response is a call an interrupted run may or may not have sent: it is
    // sent again (the only way to get its answer) and flagged.
    const int earlier_intents = record.intents[key]++;
    ledger::Reservation reservation{key + "#" + std::to_string(++record.reservations[key]), "", "",
                                    route.worst_case_micro_usd, skill.name};
    AVPS_TRY(e.m_governor.reserve(reservation));
    AVPS_TRY_ASSIGN(std::string request_sha, store_object(e.m_project.dir(), request_bytes));
    json intent = {{"key", key}, {"skill", skill.name}, {"model", route.model}, {"request_sha256", request_sha}};
    if (earlier_intents > 0) {
      intent["possible_duplicate"] = true;
    }
    AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{.kind = "exchange.intent", .body = intent}));
    core::crash_point("engine.after_intent");

    backends::CallResult<backends::ModelResponse> answer = e.m_backend.complete(request);
    ++outcome.calls_made;
    if (!answer.ok()) {
      AVPS_TRY(e.m_governor.release(reservation, answer.failure->message));
      return make_error(answer.failure->code, skill.name + " call to " + route.model + " failed: " + answer.failure->message);
    }
    const governance::Model* model = e.m_router.models().find(route.model);
    AVPS_TRY_ASSIGN(governance::ActualCost actual,
                    governance::actual_call_cost(*model, answer.value->usage.input_tokens,
                                                 answer.value->usage.output_tokens,
                                                 answer.value->usage.provider_cost_micro_usd));
    AVPS_TRY_ASSIGN(std::string response_sha, store_object(e.m_project.dir(), answer.value->text));
    json response = {{"key", key},
                     {"response_sha256", response_sha},
                     {"model", route.model},
                     {"input_tokens", answer.value->usage.input_tokens},
                     {"output_tokens", answer.value->usage.output_tokens},
                     {"cost_micro_usd", actual.micro_usd}};
    // The response and the settlement of its reservation are one transaction.
    AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{
        .kind = "exchange.response",
        .body = response,
        .reservation_end = governance::BudgetGovernor::settlement(reservation, actual.micro_usd,
                                                                  actual.provider_micro_usd)}));
    core::crash_point("engine.after_response");
    record.responses[key] = response;
    cost = actual.micro_usd;
    return answer.value->text;
  }

  // Runs one step for one context until its gate passes or its loop policy gives up.
  Result<void> run_step(const skills::SkillDef& skill, const Context& context) {
    AVPS_TRY_ASSIGN(auto gathered, gather_inputs(skill, context));
    auto& [inputs, fingerprints] = gathered;
    AVPS_TRY_ASSIGN(std::string inputs_bytes, core::canonical_json(fingerprints));
    const std::string step_key =
        skill.name + (context.entity_id.empty() ? "" : "/" + context.entity_id) + "@" +
        core::sha256_hex(inputs_bytes).substr(0, 16);
    const std::string label = skill.name + context.label();

    // Where this step stands, from the record.
    int attempt = 1;
    int escalations = 0;
    std::string tier = skill.tier->default_tier;
    json findings = json::array();
    if (auto last = record.steps.find(step_key); last != record.steps.end()) {
      const json& body = last->second;
      std::string verdict = body.value("verdict", "");
      if (verdict == "PASS" || verdict == "WARN" || verdict == "FIX") {
        ++outcome.steps_skipped;
        return ok();
      }
      attempt = body.value("attempt", 1) + 1;
      escalations = body.value("escalations", 0);
      tier = body.value("tier", tier);
      findings = body.value("reasons", json::array());
    }
    const json on_fail = skill.loop_policy.value("on_fail", json::object());
    const int attempts_per_tier = on_fail.value("max_revisions", 0) + 1;
    AVPS_TRY_ASSIGN(json schema, output_schema(skill));
    std::map<std::string, artifacts::FaceCodec> codecs;
    for (const skills::SkillOutput& output : skill.outputs) {
      AVPS_TRY_ASSIGN(artifacts::FaceCodec codec, artifacts::FaceCodec::load(project::data_dir() / "schemas", output.kind));
      codecs.emplace(output.kind, std::move(codec));
    }

    for (;;) {
      if (e.m_observer.interrupted()) {
        outcome.exit = ExitCode::interrupted;
        outcome.message = "interrupted; `avps run` resumes where this stopped";
        return ok();
      }
      // Attempts so far at this tier decide: revise, escalate, or stop.
      int attempt_at_tier = attempt - escalations * attempts_per_tier;
      if (attempt_at_tier > attempts_per_tier) {
        Result<std::optional<std::string>> next =
            on_fail.value("then", "") == "escalate" ? governance::escalate(*skill.tier, tier, escalations)
                                                   : Result<std::optional<std::string>>(std::optional<std::string>{});
        if (!next || !*next) {
          return hard_stop(skill, findings,
                           label + " failed its gate " + std::to_string(attempt - 1) +
                               " times, at every tier its policy allows; a person must decide (revise the inputs, "
                               "or `avps override`)");
        }
        e.m_observer.progress(label + ": escalating " + tier + " -> " + **next + " after " +
                              std::to_string(attempts_per_tier) + " failed attempts");
        tier = **next;
        ++escalations;
      }
      backends::ModelRequest request;
      request.skill = skill.name;
      request.prompt = skill.prompt_text;
      request.scope = {{"attempt", attempt}};  // each revision is a call of its own
      if (!context.entity_id.empty()) {
        request.scope["entity_id"] = context.entity_id;
        request.scope["kind"] = skill.outputs.front().kind;
      }
      request.inputs = inputs;
      request.output_schema = schema;
      request.findings = findings;
      request.seed = e.m_project.config().seed;
      std::string model;
      int64_t cost = 0;
      e.m_observer.progress(label + ": attempt " + std::to_string(attempt) + " on " + tier);
      AVPS_TRY_ASSIGN(std::string text, call(skill, request, tier, model, cost));

      // Parse, validate, gate. A malformed or schema-breaking answer is a FAIL with findings.
      gates::GateResult gate;
      gates::Outputs outputs;
      Result<json> parsed = core::parse_json(text, skill.name + " output");
      if (!parsed) {
        gate.verdict = gates::Verdict::fail;
        gate.reasons = {"the output is not valid JSON: " + parsed.error().message};
      } else {
        for (const skills::SkillOutput& output : skill.outputs) {
          json content = skill.outputs.size() == 1 ? *parsed : parsed->value(output.kind, json());
          content["gate"] = gates::GateResult{}.to_json();  // replaced below: the model's verdict is not trusted
          for (const core::SchemaIssue& issue : codecs.at(output.kind).schema().validate(content)) {
            gate.verdict = gates::Verdict::fail;
            gate.reasons.push_back(output.kind + " " + issue.to_string());
          }
          outputs[output.kind] = content;
        }
        if (gate.reasons.empty()) {
          gates::ProjectGateContext gate_context(e.m_project);
          AVPS_TRY_ASSIGN(gate, gates::evaluate_gate_outputs(skill.raw, outputs, gate_context));
        }
      }

      // Record the outputs — a failing version too, when it is a valid artifact, so the revision
      // has something to follow — then the step's RUN_LOG row.
      bool recordable = !outputs.empty();
      for (const auto& [kind, content] : outputs) {
        json final_content = content;
        final_content["gate"] = gate.to_json();
        recordable = recordable && codecs.at(kind).schema().validate(final_content).empty();
      }
      std::string written;
      for (const auto& [kind, content] : outputs) {
        if (!recordable) {
          break;
        }
        AVPS_TRY_ASSIGN(std::string name, write_output(skill, codecs.at(kind), kind, context.target(), content, gate,
                                                       fingerprints, step_key, attempt));
        written += (written.empty() ? "" : " ") + name;
      }
      ledger::LogRow row;
      row.skill_name = skill.name;
      row.model_used = model;
      row.tier = tier;
      row.actual_cost = governance::usd_decimal(cost);
      row.outcome = std::string(gates::verdict_name(gate.verdict));
      row.regen_count = std::to_string(attempt - 1);
      row.artifact_output = written;
      row.notes = gate.reasons.empty() ? "" : gate.reasons.front();
      AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{
          .kind = "step.finished",
          .body = {{"step", step_key}, {"skill", skill.name}, {"attempt", attempt}, {"tier", tier},
                   {"escalations", escalations}, {"verdict", gates::verdict_name(gate.verdict)},
                   {"reasons", gate.reasons}, {"outputs", written}},
          .row = row}));
      e.m_observer.progress(label + ": " + std::string(gates::verdict_name(gate.verdict)) +
                            (written.empty() ? "" : " -> " + written));
      if (gate.verdict == gates::Verdict::stop) {
        // STOP is never revised away.
        return hard_stop(skill, json(gate.reasons),
                         label + " stopped: " + (gate.reasons.empty() ? "STOP verdict" : gate.reasons.front()));
      }
      if (gate.verdict != gates::Verdict::fail) {
        return ok();
      }
      findings = json(gate.reasons);
      ++attempt;
    }
  }

  // The next version of `kind`, unless this very attempt already wrote it (a resumed run).
  Result<std::string> write_output(const skills::SkillDef& skill, const artifacts::FaceCodec& codec,
                                   const std::string& kind, const std::string& target, json content,
                                   const gates::GateResult& gate, const json& fingerprints, const std::string& step_key,
                                   int attempt) {
    content["gate"] = gate.to_json();
    AVPS_TRY_ASSIGN(std::string canonical, core::canonical_json(content));
    AVPS_TRY_ASSIGN(std::optional<ledger::ArtifactRecord> latest, e.m_project.store().latest(kind, target));
    // A resumed run may have written this very output before it was killed.
    json writer = {{"step", step_key}, {"attempt", attempt}};
    if (latest && latest->json_sha256 == core::sha256_hex(canonical) && record.written_by[latest->name] == writer) {
      return latest->name;
    }
    AVPS_TRY_ASSIGN(std::string face, codec.render(content));
    AVPS_TRY_ASSIGN(artifacts::ArtifactName name, e.m_project.store().next_name(kind, target));
    artifacts::NewArtifact artifact{name, content, face, "avps", skill.name, std::nullopt,
                                    {{"inputs", fingerprints}, {"step", step_key}, {"attempt", attempt}}};
    AVPS_TRY(e.m_project.store().write(artifact));
    record.written_by[name.filename()] = writer;
    ++outcome.artifacts_written;
    return name.filename();
  }

  Result<void> hard_stop(const skills::SkillDef& skill, const json& findings, const std::string& reason) {
    ledger::LogRow row;
    row.skill_name = skill.name;
    row.outcome = "STOP";
    row.notes = reason;
    AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{
        .kind = "run.hard_stop", .body = {{"skill", skill.name}, {"reason", reason}, {"findings", findings}}, .row = row}));
    outcome.exit = ExitCode::hard_stop;
    outcome.message = reason;
    return ok();
  }
};

Engine::Engine(project::Project& project, const skills::Registry& registry, backends::Backend& backend,
               const governance::Router& router, governance::BudgetGovernor& governor, Observer& observer)
    : m_project(project), m_registry(registry), m_backend(backend), m_router(router), m_governor(governor),
      m_observer(observer) {}

Result<RunOutcome> Engine::run(const RunOptions& options) {
  const skills::StageGraph* graph = m_registry.stage_graph();
  if (!graph) {
    return make_error(ErrorCode::configuration, "the stage graph is not usable; run `avps skills validate`");
  }
  Impl impl{*this, {}, {}};
  // Calls an interrupted run left open count as spent (their responses, if recorded, are reused).
  AVPS_TRY_ASSIGN(int reconciled, m_governor.reconcile_open_reservations());
  if (reconciled > 0) {
    m_observer.progress("reconciled " + std::to_string(reconciled) + " reservation(s) left open by an interrupted run");
  }
  AVPS_TRY_ASSIGN(impl.record, read_record(m_project.ledger()));
  for (const skills::Phase& phase : graph->phases) {
    if (!is_built(phase)) {
      impl.outcome.exit = ExitCode::environment;
      impl.outcome.message = "phase \"" + phase.name + "\" and the ones after it are not built yet in avps " +
                             AVPS_VERSION_STRING + "; run with --until locks";
      return impl.outcome;
    }
    m_observer.progress("phase " + phase.name);
    AVPS_TRY_ASSIGN(std::vector<Context> contexts, impl.contexts_of(phase));
    for (const skills::GraphStep& step : phase.steps) {
      const skills::SkillDef* skill = m_registry.find(step.skill);
      if (!skill || !skill->tier) {
        return make_error(ErrorCode::configuration, "step " + step.id + " names no model skill");
      }
      for (const Context& context : contexts) {
        if (!context.scope.empty() && context.scope != skill->scope) {
          continue;  // a per-entity step runs for the entities of its class
        }
        AVPS_TRY(impl.run_step(*skill, context));
        if (impl.outcome.exit != ExitCode::ok) {
          return impl.outcome;
        }
      }
    }
    if (phase.name == options.until) {
      break;
    }
  }
  return impl.outcome;
}

}  // namespace avps::engine
