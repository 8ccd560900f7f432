#include "avps/gates/record.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "avps/artifacts/store.hpp"
#include "avps/builtins/world_state.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/core/parallel.hpp"
#include "avps/gates/gate.hpp"
#include "avps/project/config.hpp"
#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"
#include "checks_internal.hpp"

namespace avps::gates {
namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string>& record_rules() {
  static const std::vector<std::string> k_rules = {"gate.verdict", "world_state.chain", "genpack.locks"};
  return k_rules;
}

namespace {

// An artifact as its artifact.recorded event tells it: the index row, and which step wrote it.
struct Recorded {
  ledger::ArtifactRecord record;
  std::string step;  // "" for what no step wrote (init, import, edit)
  int attempt = 0;
  json inputs = json::array();  // details.inputs: [{kind, names, sha256}], of a WORLD_STATE only (the one reader)
  std::string verdict_by;       // details.verdict_by: what judged it when not its skill's gate
};

// An artifact.recorded event as the record check keeps it (its body read for "artifact" and
// "details"), or nullopt for an event without its artifact (the ledger.* rules report it).
std::optional<Recorded> recorded_of(ledger::Event& e) {
  std::optional<ledger::ArtifactRecord> record = e.artifact();
  if (!record) {
    return std::nullopt;
  }
  json details = e.body.is_object() && e.body.contains("details") ? std::move(e.body["details"]) : json::object();
  Recorded r;
  r.record = std::move(*record);
  r.record.event_seq = e.seq;
  r.step = core::json_text(details, "step");
  r.attempt = static_cast<int>(core::json_int(details, "attempt"));
  if (r.record.kind == "WORLD_STATE" && details.contains("inputs")) {
    r.inputs = std::move(details["inputs"]);
  }
  r.verdict_by = core::json_text(details, "verdict_by");
  return r;
}

// Canonical JSON of recorded artifacts, read once each. The gate reads every artifact; the ones
// read again (locks, shot lists, earlier world states) are few, so the cache stays small.
class Contents {
 public:
  Contents(const ledger::Ledger& ledger, size_t capacity, size_t byte_budget, CheckedObjects* checked)
      : m_ledger(ledger), m_capacity(capacity), m_byte_budget(byte_budget), m_checked(checked) {}

  /// Shared, so a content a check holds outlives the cache's clearing while it reads others.
  using Content = std::shared_ptr<const json>;

  Result<Content> of(const ledger::ArtifactRecord& r) {
    if (auto found = m_cache.find(r.json_sha256); found != m_cache.end()) {
      return found->second;
    }
    AVPS_TRY_ASSIGN(std::string canonical, artifacts::read_object(m_ledger, r.json_sha256));
    if (m_cache.size() >= m_capacity || m_bytes + canonical.size() > m_byte_budget) {
      m_cache.clear();  // bounded: a season's gate must not hold every artifact at once
      m_bytes = 0;
    }
    m_bytes += canonical.size();
    AVPS_TRY_ASSIGN(json content, core::parse_json(canonical, r.name));
    if (m_checked != nullptr) {
      m_checked->note(r.json_sha256, r.kind, content);  // read, intact and parsed: not again by integrity
    }
    auto shared = std::make_shared<const json>(std::move(content));
    m_cache.emplace(r.json_sha256, shared);
    return Content(std::move(shared));
  }

 private:
  const ledger::Ledger& m_ledger;
  const size_t m_capacity;
  const size_t m_byte_budget;
  CheckedObjects* m_checked;  // null: nothing noted
  size_t m_bytes = 0;  // canonical bytes of what m_cache holds
  std::unordered_map<std::string, Content> m_cache;
};

// Face files of recorded artifacts, read and checked against their recorded hash once each: every
// GenPack's check reads the locks of its shot (the style lock, its set's, its characters'), the
// same few faces again and again. Bounded as Contents is.
class Faces {
 public:
  explicit Faces(size_t capacity) : m_capacity(capacity) {}

  Result<std::string> of(const fs::path& dir, const ledger::ArtifactRecord& r) {
    if (auto found = m_cache.find(r.path); found != m_cache.end() && found->second.first == r.face_sha256) {
      return found->second.second;
    }
    AVPS_TRY_ASSIGN(std::string text, core::read_file(dir / r.path));
    if (core::sha256_hex(text) != r.face_sha256) {
      return make_error(ErrorCode::corruption, r.path + " changed since the ledger recorded it");
    }
    if (m_cache.size() >= m_capacity) {
      m_cache.clear();
    }
    m_cache[r.path] = {r.face_sha256, text};
    return text;
  }

 private:
  const size_t m_capacity;
  std::unordered_map<std::string, std::pair<std::string, std::string>> m_cache;  // path -> (sha256, text)
};

// The record as a gate saw it: the artifacts recorded before event `before_seq`, and the
// configuration with the thresholds the recorded scores say were in force.
class AsOfContext : public GateContext {
 public:
  /// `config` is the caller's, and outlives the context (one configuration serves many steps).
  AsOfContext(const fs::path& dir, const std::map<std::string, std::vector<const Recorded*>>& versions,
              Contents& contents, Faces& faces, const json& config, int64_t before_seq)
      : m_dir(dir),
        m_versions(versions),
        m_contents(contents),
        m_faces(faces),
        m_config(config),
        m_before(before_seq) {}

  const json& config() const override { return m_config; }

  Result<std::optional<json>> latest(std::string_view kind, std::string_view target) const override {
    const Recorded* r = find(kind, target);
    if (r == nullptr) {
      return std::optional<json>{};
    }
    AVPS_TRY_ASSIGN(Contents::Content content, m_contents.of(r->record));
    return std::optional<json>{*content};
  }

  /// The cache's own parsed content, uncopied: SCENES, WORLD_STATE and the shot lists are read by
  /// the gate of every scene, and a copy of each grows with the project.
  Result<std::shared_ptr<const json>> latest_shared(std::string_view kind, std::string_view target) const override {
    const Recorded* r = find(kind, target);
    if (r == nullptr) {
      return std::shared_ptr<const json>();
    }
    return m_contents.of(r->record);
  }

  Result<std::optional<Face>> latest_face(std::string_view kind, std::string_view target) const override {
    const Recorded* r = find(kind, target);
    if (r == nullptr) {
      return std::optional<Face>{};
    }
    AVPS_TRY_ASSIGN(std::string text, m_faces.of(m_dir, r->record));
    return std::optional<Face>{Face{r->record.name, std::move(text)}};
  }

 private:
  const Recorded* find(std::string_view kind, std::string_view target) const {
    auto found = m_versions.find(std::string(kind) + "/" + std::string(target));
    if (found == m_versions.end()) {
      return nullptr;
    }
    const Recorded* latest = nullptr;
    for (const Recorded* r : found->second) {
      if (r->record.event_seq < m_before && (latest == nullptr || r->record.version > latest->record.version)) {
        latest = r;
      }
    }
    return latest;
  }

  const fs::path& m_dir;
  const std::map<std::string, std::vector<const Recorded*>>& m_versions;
  Contents& m_contents;
  Faces& m_faces;
  const json& m_config;
  int64_t m_before;
};

// Every {"config": pointer} reference of a skill's gate definition.
void config_references(const json& node, std::set<std::string>& out) {
  if (node.is_object()) {
    if (auto ref = node.find("config"); ref != node.end() && ref->is_string()) {
      out.insert(ref->get<std::string>());
    }
    for (const auto& [key, value] : node.items()) {
      config_references(value, out);
    }
  } else if (node.is_array()) {
    for (const json& item : node) {
      config_references(item, out);
    }
  }
}

// A config reference of a skill's gate, and the name evaluate_gate records its resolved number
// under in the scores: its pointer without the leading "/" and with "." for "/"
// ("thresholds.plaus_total").
struct ConfigReference {
  std::string pointer;
  std::string score_name;
};
std::vector<ConfigReference> config_references_of(const json& gate_definition) {
  std::set<std::string> pointers;
  config_references(gate_definition, pointers);
  std::vector<ConfigReference> out;
  for (const std::string& pointer : pointers) {
    if (pointer.size() < 2) {
      continue;
    }
    std::string name = pointer.substr(1);
    std::replace(name.begin(), name.end(), '/', '.');
    out.push_back({pointer, std::move(name)});
  }
  return out;
}

// The value `recorded_scores` holds for each reference, in order (null where none): what
// config_as_recorded takes from the scores, so two steps with equal values are judged under the
// same configuration.
std::vector<const json*> recorded_values(const std::vector<ConfigReference>& references, const json& recorded_scores) {
  std::vector<const json*> out;
  for (const ConfigReference& reference : references) {
    const json* value = nullptr;
    if (recorded_scores.is_object()) {
      if (auto found = recorded_scores.find(reference.score_name); found != recorded_scores.end()) {
        value = &*found;
      }
    }
    out.push_back(value);
  }
  return out;
}

// The configuration a recorded gate was evaluated under, as far as its scores say: every config
// reference of the skill's gate that the scores recorded (evaluate_gate records each number it
// resolved, under its score name) takes the recorded value.
json config_as_recorded(const json& config, const std::vector<ConfigReference>& references,
                        const std::vector<const json*>& values) {
  json out = config;
  for (size_t i = 0; i < references.size(); ++i) {
    if (values[i] == nullptr) {
      continue;
    }
    try {
      out[json::json_pointer(references[i].pointer)] = *values[i];
    } catch (const json::exception&) {
      // A pointer through a non-object in the configuration: evaluate_gate reports it as it did.
    }
  }
  return out;
}

// The outputs of its own step a skill's gate reads besides the first: the kinds its rules name and
// the kinds its checks read, where the skill writes them.
std::set<std::string> kinds_read(const skills::SkillDef& skill) {
  std::set<std::string> read;
  for (const json& rule : skill.gate_rules) {
    if (rule.is_object() && rule.contains("output") && rule["output"].is_string()) {
      read.insert(rule["output"].get<std::string>());
    }
  }
  for (const std::string& check : skill.gate_checks) {
    if (const detail::CheckInfo* info = detail::find_check_info(check); info != nullptr && !info->reads.empty()) {
      read.emplace(info->reads);
    }
  }
  std::set<std::string> out;
  for (const skills::SkillOutput& output : skill.outputs) {
    if (read.count(output.kind)) {
      out.insert(output.kind);
    }
  }
  return out;
}

// The skill definition with only the checks `avps gate` can recompute; the others in `skipped`.
json recomputable_definition(const json& definition, std::vector<std::string>& skipped) {
  json out = definition;
  json* checks = out.contains("gate") && out["gate"].is_object() && out["gate"].contains("checks") &&
                         out["gate"]["checks"].is_array()
                     ? &out["gate"]["checks"]
                     : nullptr;
  if (checks == nullptr) {
    return out;
  }
  json kept = json::array();
  for (const json& name : *checks) {
    if (name.is_string() && !check_recomputable(name.get<std::string>())) {
      skipped.push_back(name.get<std::string>());
    } else {
      kept.push_back(name);
    }
  }
  *checks = std::move(kept);
  return out;
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    out += (out.empty() ? "\"" : "; \"") + item + "\"";
  }
  return out;
}

std::vector<std::string> reasons_of(const json& gate) {
  std::vector<std::string> out;
  for (const json& r : gate.value("reasons", json::array())) {
    if (r.is_string()) {
      out.push_back(r.get<std::string>());
    }
  }
  return out;
}

// The first key where two score objects differ, with both values, for a message.
std::string first_score_difference(const json& recorded, const json& recomputed) {
  std::set<std::string> keys;
  for (const json* scores : {&recorded, &recomputed}) {
    if (scores->is_object()) {
      for (const auto& [key, value] : scores->items()) {
        keys.insert(key);
      }
    }
  }
  for (const std::string& key : keys) {
    const json a = recorded.is_object() && recorded.contains(key) ? recorded[key] : json();
    const json b = recomputed.is_object() && recomputed.contains(key) ? recomputed[key] : json();
    if (a != b) {
      return key + ": recorded " + (a.is_null() ? "nothing" : a.dump()) + ", recomputed " +
             (b.is_null() ? "nothing" : b.dump());
    }
  }
  return "";
}

// What every checker of one record check reads: the configuration, the skills and the record,
// filled by the first checker before any other starts, and changed by none after.
struct SharedRecord {
  json config;
  const skills::Registry* registry = nullptr;
  std::vector<Recorded> recorded;                                // recording order; never resized after read
  std::map<std::string, std::vector<const Recorded*>> versions;  // "KIND/target" -> versions
  std::map<std::string, std::vector<const Recorded*>> steps;     // "step#attempt" -> its outputs
};

// The record check is structured like this: run() loads the configuration and the skills, reads
// the artifact.recorded events (read_record), then checks every step (its gate, its world state,
// its GenPacks' locks), then every artifact no step wrote, on up to `threads` threads. Each thread
// has a checker of its own (this one, and others made for the check): its caches of contents,
// faces, skill gates and configurations are its own, and it writes its findings per step or
// artifact, so they are put together in the order of the steps and the record whatever thread
// found them.
class RecordCheck {
 public:
  RecordCheck(const fs::path& dir, const ledger::Ledger& ledger, const RecordCheckOptions& options,
              SharedRecord& shared)
      : m_dir(dir),
        m_ledger(ledger),
        m_options(options),
        m_shared(shared),
        m_contents(ledger, options.contents_cached, options.contents_bytes_cached, options.checked),
        m_faces(options.contents_cached) {}

  std::vector<core::Violation> run() {
    project::ConfigSources sources{m_dir, project::data_dir(), {}, {}};
    Result<project::Config> config = project::load_config(sources);
    if (!config) {
      add("gate.verdict", "avps.json", "not checked: the project configuration does not load (see config.valid)");
      return std::move(m_out);
    }
    m_config = config->document;
    Result<skills::Registry> registry = skills::Registry::load(project::data_dir(), &m_dir);
    if (!registry) {
      add("gate.verdict", "skills/", "the gates cannot be recomputed: " + registry.error().message);
      return std::move(m_out);
    }
    m_registry = &*registry;
    if (Result<void> read = read_record(); !read) {
      add("gate.verdict", ".avps/ledger.db", read.error().message);
      return std::move(m_out);
    }
    // genpack.locks of a GenPack a step wrote is checked right after its step's gate, which read
    // the same content: it is still in its checker's contents then, and would be read and parsed
    // again after every other step's. Its findings are reported where the loop over the record
    // reports them.
    std::vector<std::vector<core::Violation>> held_genpack_findings(m_recorded.size());
    std::vector<const std::vector<const Recorded*>*> steps;
    for (const auto& [step, outputs] : m_steps) {
      steps.push_back(&outputs);
    }
    std::vector<std::vector<core::Violation>> found_by_step(steps.size());
    for_each_in_parallel(steps.size(), [&](RecordCheck& checker, size_t k) {
      const std::vector<const Recorded*>& outputs = *steps[k];
      checker.check_step_gate(outputs);
      checker.check_world_state(outputs);
      for (const Recorded* r : outputs) {
        if (r->record.kind == "GENPACK") {
          held_genpack_findings[static_cast<size_t>(r - m_recorded.data())] = checker.check_genpack_locks(*r);
        }
      }
      found_by_step[k] = std::exchange(checker.m_out, {});
    });
    std::vector<std::vector<core::Violation>> found_by_artifact(m_recorded.size());
    for_each_in_parallel(m_recorded.size(), [&](RecordCheck& checker, size_t i) {
      const Recorded& r = m_recorded[i];
      if (r.step.empty()) {
        checker.check_step_gate({&r});
      }
      if (r.record.kind == "GENPACK") {
        std::vector<core::Violation> found =
            r.step.empty() ? checker.check_genpack_locks(r) : std::move(held_genpack_findings[i]);
        checker.m_out.insert(checker.m_out.end(), std::make_move_iterator(found.begin()),
                             std::make_move_iterator(found.end()));
      }
      found_by_artifact[i] = std::exchange(checker.m_out, {});
    });
    for (const auto* found_by : {&found_by_step, &found_by_artifact}) {
      for (const std::vector<core::Violation>& found : *found_by) {
        m_out.insert(m_out.end(), found.begin(), found.end());
      }
    }
    return std::move(m_out);
  }

 private:
  void add(std::string rule, std::string subject, std::string message) {
    m_out.push_back(core::Violation{std::move(rule), std::move(subject), std::move(message)});
  }

  // Calls work(checker, i) for every i < count, on up to m_options.threads threads (0: one per
  // core; core::for_each_index), each with its own checker: this one is the first thread's, the
  // others' are made once and kept for the check.
  void for_each_in_parallel(size_t count, const std::function<void(RecordCheck&, size_t)>& work) {
    static constexpr size_t k_items_taken = 8;  // a step's gate, world state and locks each
    const size_t wanted = m_options.threads > 0 ? m_options.threads : std::thread::hardware_concurrency();
    const size_t threads = core::threads_used(count, wanted, k_items_taken);
    while (m_helpers.size() + 1 < threads) {
      m_helpers.push_back(std::make_unique<RecordCheck>(m_dir, reader_for_helper(), m_options, m_shared));
    }
    if (threads > 1) {
      core::prepare_concurrent_validation();
    }
    core::for_each_index(count, threads, k_items_taken, [&](size_t thread, size_t i) {
      work(thread == 0 ? *this : *m_helpers[thread - 1], i);
    });
  }

  // A helper's own connection to the ledger when one reads what this checker's reads, so that
  // the threads do not take turns at one connection's lock; else this checker's, shared. (An
  // error opening another only costs that speed: the shared one reads the same.)
  const ledger::Ledger& reader_for_helper() {
    Result<std::unique_ptr<ledger::Ledger>> own = m_ledger.another_reader();
    if (!own || !*own) {
      return m_ledger;
    }
    m_helper_ledgers.push_back(std::move(own).value());
    return *m_helper_ledgers.back();
  }

  // The artifact.recorded events, and the record's versions and steps made from them.
  Result<void> read_record() {
    ledger::Ledger::EventQuery query;
    query.kinds = {"artifact.recorded"};
    query.members = {"artifact", "details"};  // all this check reads of them: the bodies are not parsed whole
    // A page at a time: only what is kept of the events is held.
    AVPS_TRY(m_ledger.each_event(query, [&](ledger::Event&& e) -> Result<void> {
      if (std::optional<Recorded> r = recorded_of(e)) {
        m_recorded.push_back(std::move(*r));
      }
      return ok();
    }));
    for (const Recorded& r : m_recorded) {
      m_versions[r.record.kind + "/" + r.record.target].push_back(&r);
      if (!r.step.empty()) {
        m_steps[r.step + "#" + std::to_string(r.attempt)].push_back(&r);
      }
    }
    return ok();
  }

  // gate.verdict: the outputs one step wrote carry one gate, evaluated on all of them together
  // before any was recorded.
  void check_step_gate(const std::vector<const Recorded*>& outputs) {
    const Recorded* first = outputs.front();
    if (std::any_of(outputs.begin(), outputs.end(), [](const Recorded* r) { return !r->verdict_by.empty(); })) {
      return;  // judged by avps's own arithmetic as it stood (details.verdict_by), not by a skill's gate
    }
    // A person's import is judged by the skill that produces its kind (docs/cli.md, artifact import).
    const bool imported = first->record.producer == "artifact-import";
    const skills::SkillDef* skill =
        imported ? producer_of(first->record.kind) : m_registry->find(first->record.producer);
    gates::Outputs contents;
    std::vector<std::pair<const Recorded*, json>> gated;  // output, its recorded gate
    for (const Recorded* r : outputs) {
      Result<Contents::Content> content = m_contents.of(r->record);
      if (!content) {
        return;  // artifact.object reports it
      }
      json output = **content;
      if (output.is_object() && output.contains("gate") && output["gate"].is_object()) {
        gated.emplace_back(r, output["gate"]);
        output["gate"] = GateResult{}.to_json();  // as the engine evaluated it: the verdict not yet known
      }
      contents[r->record.kind] = std::move(output);
    }
    if (gated.empty()) {
      return;
    }
    const Recorded& subject = *gated.front().first;
    if (skill == nullptr) {
      // Written by a command, not a skill (`avps init`'s style lock): nothing judged it, so its gate
      // can only be the plain PASS such a command records.
      const json& gate = gated.front().second;
      if (gate != GateResult{}.to_json()) {
        add("gate.verdict", subject.record.path,
            "recorded " + core::json_text(gate, "verdict") + " with reasons or scores, but \"" +
                first->record.producer + "\", which wrote it, is no skill of this project and judges nothing");
      }
      return;
    }
    const json& recorded = gated.front().second;
    const SkillGate& gate_of_skill = skill_gate(*skill);
    const json& definition = gate_of_skill.definition;
    const std::vector<std::string>& skipped = gate_of_skill.skipped;
    const json& config = config_for(*skill, gate_of_skill, recorded.value("scores", json::object()));
    AsOfContext context(m_dir, m_versions, m_contents, m_faces, config, first->record.event_seq);
    // A gate read all the outputs of its step; beside a running writer the later ones may not be
    // recorded yet (a writer records them one after another). An import of some of them was judged
    // with the others as recorded before it (details.judged_with).
    for (const std::string& kind : kinds_read(*skill)) {
      if (!contents.count(kind) && imported) {
        Result<std::optional<json>> latest = context.latest(kind, first->record.target);
        if (latest && *latest) {
          contents[kind] = **latest;
          continue;
        }
      }
      if (!contents.count(kind)) {
        core::Violation pending{"gate.verdict", subject.record.path,
                                "its gate reads the " + kind + " its step " + first->step +
                                    " wrote beside it, which is not recorded: the step's write was interrupted"};
        pending.transient = true;
        m_out.push_back(std::move(pending));
        return;
      }
    }
    Result<GateResult> recomputed = evaluate_gate_outputs(definition, contents, context);
    for (const auto& [r, gate] : gated) {
      compare(*r, gate, recomputed, skipped);
    }
  }

  void compare(const Recorded& r, const json& gate, const Result<GateResult>& recomputed,
               const std::vector<std::string>& skipped) {
    const std::string recorded_verdict = core::json_text(gate, "verdict");
    const std::vector<std::string> recorded_reasons = reasons_of(gate);
    const std::string where =
        " (" + r.record.producer + "'s gate as it is now, with the thresholds its scores recorded)";
    if (!recomputed) {
      // A gate that could not be evaluated was recorded as a FAIL saying so; anything else is not
      // what the engine writes.
      const bool said = std::any_of(recorded_reasons.begin(), recorded_reasons.end(), [](const std::string& reason) {
        return reason.rfind("the gate could not be evaluated", 0) == 0;
      });
      if (!said) {
        add("gate.verdict", r.record.path,
            "recorded " + recorded_verdict + ", but its gate cannot be recomputed: " + recomputed.error().message);
      }
      return;
    }
    Result<Verdict> parsed = parse_verdict(recorded_verdict);
    if (!parsed) {
      add("gate.verdict", r.record.path, "its recorded verdict is not a verdict: " + parsed.error().message);
      return;
    }
    const std::string computed_name(verdict_name(recomputed->verdict));
    std::vector<std::string> unrecorded;
    for (const std::string& reason : recomputed->reasons) {
      if (std::find(recorded_reasons.begin(), recorded_reasons.end(), reason) == recorded_reasons.end()) {
        unrecorded.push_back(reason);
      }
    }
    if (static_cast<int>(*parsed) < static_cast<int>(recomputed->verdict)) {
      add("gate.verdict", r.record.path,
          "recorded " + recorded_verdict + ", but its recorded content gives " + computed_name + where + ": " +
              quoted_list(recomputed->reasons));
      return;
    }
    if (!unrecorded.empty()) {
      add("gate.verdict", r.record.path,
          "its gate misses a finding its recorded content gives" + where + ": " + quoted_list(unrecorded));
      return;
    }
    const bool explained_worse = (!skipped.empty() || !recomputed->deferred_checks.empty()) &&
                                 recorded_reasons.size() > recomputed->reasons.size();
    if (*parsed != recomputed->verdict && !explained_worse) {
      add("gate.verdict", r.record.path,
          "recorded " + recorded_verdict + ", but its recorded content gives " + computed_name + where +
              (recorded_reasons.empty() ? "" : "; recorded reasons: " + quoted_list(recorded_reasons)));
      return;
    }
    if (const json scores = gate.value("scores", json::object()); scores != recomputed->scores) {
      add("gate.verdict", r.record.path,
          "its recorded scores differ from the recomputed ones" + where + " at " +
              first_score_difference(scores, recomputed->scores));
    }
  }

  // world_state.chain: what a world-state-tracker step wrote is its input world with its diff applied.
  void check_world_state(const std::vector<const Recorded*>& outputs) {
    const Recorded* world = nullptr;
    const Recorded* diff = nullptr;
    for (const Recorded* r : outputs) {
      if (r->record.kind == "WORLD_STATE") {
        world = r;
      } else if (r->record.kind == "STATE_DIFF") {
        diff = r;
      }
    }
    if (world == nullptr) {
      return;
    }
    const std::string& subject = world->record.path;
    std::string before_name;
    std::string diff_name;  // a recorded STATE_DIFF the world names as its input (an import's re-derived world)
    for (const json& input : world->inputs) {
      const json names = input.is_object() ? input.value("names", json::array()) : json::array();
      if (names.is_array() && names.size() == 1 && names[0].is_string()) {
        if (core::json_text(input, "kind") == "WORLD_STATE") {
          before_name = names[0].get<std::string>();
        } else if (core::json_text(input, "kind") == "STATE_DIFF") {
          diff_name = names[0].get<std::string>();
        }
      }
    }
    if (diff == nullptr && !diff_name.empty()) {
      for (const Recorded& r : m_recorded) {
        if (r.record.name == diff_name && r.record.event_seq < world->record.event_seq) {
          diff = &r;
        }
      }
    }
    if (diff == nullptr) {
      add("world_state.chain", subject, "written by " + world->step + " with no STATE_DIFF beside it");
      return;
    }
    const Recorded* before = nullptr;
    if (auto versions = m_versions.find("WORLD_STATE/"); versions != m_versions.end()) {
      for (const Recorded* r : versions->second) {
        if (r->record.name == before_name) {
          before = r;
        }
      }
    }
    if (before == nullptr || before->record.event_seq >= world->record.event_seq) {
      add("world_state.chain", subject,
          "names " + (before_name.empty() ? std::string("no WORLD_STATE") : before_name) +
              " as the world it follows, which was not recorded before it");
      return;
    }
    Result<Contents::Content> before_content = m_contents.of(before->record);
    Result<Contents::Content> diff_content = m_contents.of(diff->record);
    Result<Contents::Content> world_content = m_contents.of(world->record);
    if (!before_content || !diff_content || !world_content) {
      return;  // artifact.object reports it
    }
    Result<json> applied = builtins::apply_state_diff(**before_content, **diff_content);
    if (!applied) {
      add("world_state.chain", subject,
          diff->record.name + " does not apply to " + before->record.name + ": " + applied.error().message);
      return;
    }
    if (*applied != **world_content) {
      const json patch = json::diff(*applied, **world_content);
      const std::string at = patch.empty() ? "" : patch[0].value("path", "");
      add("world_state.chain", subject,
          "is not " + before->record.name + " with " + diff->record.name + " applied (first difference at " +
              (at.empty() ? "/" : at) + ")");
    }
  }

  // genpack.locks: a GenPack the record passed holds its locks as they were recorded before it.
  std::vector<core::Violation> check_genpack_locks(const Recorded& r) {
    std::vector<core::Violation> out;
    Result<Contents::Content> content = m_contents.of(r.record);
    if (!content || !(*content)->contains("gate")) {
      return out;
    }
    const std::string verdict = core::json_text((**content)["gate"], "verdict");
    if (verdict != "PASS" && verdict != "WARN") {
      return out;  // a failed GenPack is not rendered; gate.verdict checks that it says why
    }
    const Check* check = find_check("genpack_locks_verbatim");
    AsOfContext context(m_dir, m_versions, m_contents, m_faces, m_config, first_of_step(r));
    Result<std::vector<Finding>> findings = (*check)(**content, json::object(), context);
    if (!findings) {
      out.push_back({"genpack.locks", r.record.path, "its locks cannot be checked: " + findings.error().message});
      return out;
    }
    for (const Finding& f : *findings) {
      out.push_back({"genpack.locks", r.record.path, "recorded " + verdict + " but " + f.reason});
    }
    return out;
  }

  // A skill's gate as the record check recomputes it, made once per skill (a season has thousands
  // of steps of a dozen skills): its definition with only the recomputable checks, the checks left
  // out, and its gate's config references.
  struct SkillGate {
    json definition;
    std::vector<std::string> skipped;
    std::vector<ConfigReference> references;
  };
  const SkillGate& skill_gate(const skills::SkillDef& skill) {
    auto found = m_skill_gates.find(&skill);
    if (found == m_skill_gates.end()) {
      SkillGate made;
      made.definition = recomputable_definition(skill.raw, made.skipped);
      made.references = config_references_of(made.definition.value("gate", json::object()));
      found = m_skill_gates.emplace(&skill, std::move(made)).first;
    }
    return found->second;
  }

  // The configuration a step of `skill` was judged under (config_as_recorded), made once for each
  // set of recorded values: steps whose scores recorded the same thresholds share it. Kept for the
  // whole check (a handful: one per skill and change of thresholds), but bounded all the same.
  const json& config_for(const skills::SkillDef& skill, const SkillGate& gate, const json& recorded_scores) {
    const std::vector<const json*> values = recorded_values(gate.references, recorded_scores);
    std::string key = skill.name;
    for (const json* value : values) {
      key += '\n';
      key += value == nullptr ? std::string("-") : "=" + value->dump();  // equal dumps, equal values
    }
    auto found = m_configs.find(key);
    if (found == m_configs.end()) {
      if (m_configs.size() >= k_configs_kept) {
        m_configs.clear();  // no context holds one across this call
      }
      found = m_configs.emplace(std::move(key), config_as_recorded(m_config, gate.references, values)).first;
    }
    return found->second;
  }

  // The skill whose model writes `kind` (not a post step), as authoring::producer_of.
  const skills::SkillDef* producer_of(const std::string& kind) const {
    for (const auto& [name, skill] : m_registry->skills()) {
      for (const skills::SkillOutput& output : skill.outputs) {
        if (output.kind == kind && output.written_by.empty()) {
          return &skill;
        }
      }
    }
    return nullptr;
  }

  int64_t first_of_step(const Recorded& r) const {
    if (r.step.empty()) {
      return r.record.event_seq;
    }
    const auto& outputs = m_steps.at(r.step + "#" + std::to_string(r.attempt));
    return outputs.front()->record.event_seq;
  }

  const fs::path& m_dir;
  const ledger::Ledger& m_ledger;
  const RecordCheckOptions& m_options;
  SharedRecord& m_shared;
  // The shared record under the names the checks use (written by the first checker only, before
  // any other is made).
  json& m_config = m_shared.config;
  const skills::Registry*& m_registry = m_shared.registry;
  std::vector<Recorded>& m_recorded = m_shared.recorded;
  std::map<std::string, std::vector<const Recorded*>>& m_versions = m_shared.versions;
  std::map<std::string, std::vector<const Recorded*>>& m_steps = m_shared.steps;
  // This checker's own.
  Contents m_contents;
  Faces m_faces;
  std::map<const skills::SkillDef*, SkillGate> m_skill_gates;
  static constexpr size_t k_configs_kept = 256;
  std::map<std::string, json> m_configs;  // config_for's, by skill and recorded values
  std::vector<core::Violation> m_out;
  std::vector<std::unique_ptr<ledger::Ledger>> m_helper_ledgers;  // their own connections (outlive them)
  std::vector<std::unique_ptr<RecordCheck>> m_helpers;  // the other threads' checkers (for_each_in_parallel)
};

}  // namespace

std::vector<core::Violation> check_record(const fs::path& dir, const ledger::Ledger& ledger,
                                          const RecordCheckOptions& options) {
  // A connection of its own when it reads the same snapshot: the caller's threads (the gate's
  // integrity check) read that ledger at the same time.
  Result<std::unique_ptr<ledger::Ledger>> own = ledger.another_reader();
  const ledger::Ledger& reader = own && *own ? **own : ledger;
  SharedRecord shared;
  return RecordCheck(dir, reader, options, shared).run();
}

}  // namespace avps::gates
