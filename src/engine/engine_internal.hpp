#pragma once
// Internals of the engine shared by its source files (engine.cpp: the loop and the model steps;
// production.cpp: waves, generation, QC and regen rounds). Not part of the public interface.

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/core/byte_codec.hpp"
#include "avps/engine/engine.hpp"
#include "avps/engine/fold_checkpoint.hpp"
#include "avps/gates/gate.hpp"
#include "avps/governance/budget_status.hpp"
#include "avps/governance/override.hpp"
#include "avps/governance/quota.hpp"
#include "avps/ledger/ledger.hpp"

namespace avps::core {
class ByteWriter;
}
namespace avps::project {
class Project;
}

namespace avps::engine {

/// What one run of a step is about: the project, a scene, a shot, or an entity.
struct Context {
  std::string scene_id;
  std::string shot_id;
  std::string entity_id;
  std::string scope = "project";  ///< the skill scope it suits: project, scene, shot, character, set, voice
  std::string resolution;         ///< shots: proxy or final
  /// The stage graph's step this run is of, when its skill has an earlier step in the graph
  /// (cost_final.cost-optimizer after cost_proxy.cost-optimizer): a step of its own, reading what
  /// the steps before it wrote. "" for a skill's first (or only) step.
  std::string graph_step;

  /// The id the context is about ("" for the project).
  std::string key() const;
  /// " S03", " S03_SH02 (proxy)", " MARA_QUILL", or "".
  std::string label() const;
};

/// The target an artifact of `kind` takes in `context` (naming: "" for singletons).
std::string target_for(const std::string& kind, const Context& context);

/// `value` without the "gate" members of artifacts: what a model reads and what staleness
/// compares (a re-gated artifact with the same content is the same input).
nlohmann::json without_gate(nlohmann::json value);

/// Whether an attempt is a revision: it carries a failed gate's findings (its own loop's, or those
/// of the judge it revises for, `revision_for`), or it is a GenPack for a next render attempt (QC
/// findings in `extra.qc_findings`). A judge judging a revised input afresh carries none.
bool is_revision(const nlohmann::json& findings, const nlohmann::json& revision_for, const nlohmann::json& extra);

/// A recorded version of an artifact's target: its name and content.
struct PriorVersion {
  std::string name;
  nlohmann::json content;
};

/// What "a revision must change something" (issue 13) makes of a revision's outputs: by kind, the
/// recorded version of the same target whose content, gate aside, each output equals (none: the
/// output is new). `unchanged` when every output equals a recorded version (the one it replaces,
/// or an earlier one: going back is no change either): the attempt is a FAIL with `reason`, and
/// nothing of it is written. Otherwise the outputs in `as_latest` (equal to their target's latest
/// version) are not written again, that version standing; every other output is a new version.
struct RevisionCheck {
  std::map<std::string, std::string> identical;  ///< kind -> name of the version it equals
  std::set<std::string> as_latest;               ///< kinds whose equal version is their target's latest
  bool unchanged = false;
  std::string reason;  ///< "revision identical to BEATS_v001.md, SCENES_v001.csv: ..." when unchanged
};
/// `versions` gives the recorded versions of an output kind's target, oldest first.
RevisionCheck check_revision(const gates::Outputs& outputs,
                             const std::function<std::vector<PriorVersion>(const std::string& kind)>& versions);

/// An input as a skill reads it (skills::SkillInput::fields): of each artifact (the value, or each
/// member of a list of them), only the fields the pointers name and its identity (format_version,
/// kind, entity_id, target, shot_id, scene_id); the whole value when `fields` is empty.
nlohmann::json cut_to_fields(nlohmann::json value, const std::vector<std::string>& fields);
/// cut_to_fields of a value the caller keeps: only what the cut holds is copied (an all_targets
/// list is made from every scene's content, of which a skill reads a few fields).
nlohmann::json cut_copy(const nlohmann::json& value, const std::vector<std::string>& fields);

/// A recorded exchange.response as the run keeps it: where its body is (read again from the
/// ledger when a resumed call replays it) and what the cost reports count of it.
struct RecordedResponse {
  int64_t seq = 0;  ///< its event
  std::string scene_id;
  int64_t cached_input_tokens = 0;
  int64_t caching_saved_micro_usd = 0;
};

/// What the record keeps of a step.finished body (step_summary or readable_summary), never
/// changed once made. Kept in the flat encoding (core::ByteWriter::json, which gives back the same
/// value, types and all), decoded where it is read: as a JSON object each member is a map node,
/// and a summary took about 1,000 bytes of heap, its bytes about 150. One summary is shared by
/// Record::steps and Record::loops, since a loop's last step is one of the steps. At 500 scenes
/// the two maps of JSON objects were 60 MB of a resume's 152 MB of heap.
class StepSummary {
 public:
  StepSummary() = default;
  /// `bytes`: the summary as core::ByteWriter::json wrote it.
  explicit StepSummary(std::string bytes) : m_bytes(std::make_shared<const std::string>(std::move(bytes))) {}
  /// The summary, decoded (an object): each `*` decodes anew, so a reader of several members
  /// decodes once and reads its copy.
  nlohmann::json operator*() const;
  const std::string& bytes() const { return m_bytes ? *m_bytes : k_empty; }
  /// Equal summaries have equal bytes (one encoding per value).
  bool operator==(const StepSummary& other) const { return bytes() == other.bytes(); }

 private:
  static inline const std::string k_empty;
  std::shared_ptr<const std::string> m_bytes;
};
/// `summary` kept (encoded).
StepSummary make_summary(const nlohmann::json& summary);

/// The record's values of one render or graded shot attempt (Record::media, renders,
/// shot_attempts) are kept as core::FlatJson, decoded where a rule reads them: as JSON objects of
/// up to ten members (a map node each) they were about 20 MB of the run's record at 500 scenes, as
/// bytes 6.
using core::FlatJson;

/// Who wrote an artifact (Record::written_by): the step key and attempt from its
/// artifact.recorded details. A struct, not a JSON object: one per artifact of the history.
struct WrittenBy {
  std::string step;
  int attempt = 0;
  bool operator==(const WrittenBy&) const = default;
};

/// What the record says of one exchange key: its last exchange.response, how many intents were
/// recorded for it and how many reservations made. One entry a key: the key (a digest) was held
/// once in each of three maps before, 7 MB of a 500-scene resume's heap.
struct ExchangeFacts {
  std::optional<RecordedResponse> response;
  int intents = 0;       ///< exchange.intent events of the key (0: none; never kept at 0 otherwise)
  int reservations = 0;  ///< reservations made for it (its ids are "<key>#<n>", n from 1)
};

/// What a scene's recorded responses saved by prompt caching (the last response of each key).
struct SceneCaching {
  int64_t cached_input_tokens = 0;
  int64_t saved_micro_usd = 0;
  bool operator==(const SceneCaching&) const = default;
};

/// What the built-ins aggregate from the whole record (Impl::tally_so_far), as of event `seq`: the
/// spend and calls by tier, the shots regenerated, the narrative calls, the routing decisions.
/// Folded with the run's Record (RecordFold, RecordParts::all) and kept in the fold checkpoint with
/// it, so that a run adds only the events after it: folding every event's members anew in each
/// process was about 2 s of a run's first built-in at 500 scenes.
struct RecordTally {
  /// The last event added; add() leaves it at the one before an event the record's fold ignores
  /// (record_fold_ignores), so tally_so_far may read that one again, to no effect.
  int64_t seq = 0;
  /// The route.reallocated, route.rerouted and route.escalation_refused events: the log's view of
  /// the routing, which the router's built-ins compare with what they decide now (a few per scene).
  std::vector<ledger::Event> routing;
  /// "<loop>#<after_attempts>" of each escalation recorded (route.escalated): a decision a resumed
  /// run finds made, and does not make again against counts that include the calls it led to.
  std::set<std::string> escalations;
  governance::BudgetTally budget;
  governance::NarrativeCallTally narrative;

  /// The event kinds note_routing() keeps or notes.
  static const std::set<std::string, std::less<>>& routing_kinds();
  static bool is_routing(std::string_view kind) { return routing_kinds().count(kind) > 0; }
  /// `e`, a routing event (is_routing), noted: an escalation's loop and count, any other kept whole.
  void note_routing(ledger::Event e);
  /// `e` (whole) added: what tally_so_far adds from the members it reads and the routing events.
  void add(const ledger::Event& e);
  /// As JSON (the fold checkpoint's run-record section), and back; restore() throws
  /// nlohmann::json::exception on what save() did not make.
  nlohmann::json save() const;
  static RecordTally restore(const nlohmann::json& saved);
};

/// What the record says so far, rebuilt from the ledger's events (never kept elsewhere). It holds
/// no event and no response body: a run's memory grows with the steps and renders it knows of, not
/// with the calls recorded.
struct Record {
  std::map<std::string, ExchangeFacts> exchanges;     ///< exchange key -> what the record says of it
  /// scene -> the sums of its responses in `exchanges` (note_response keeps them; a restored fold
  /// counts them once): a scene's COST_REPORT reads its own, where summing every exchange of the
  /// project at each cost step grew with the project.
  std::map<std::string, SceneCaching> caching_by_scene;
  /// The last exchange.response of `key`, or nullptr.
  const RecordedResponse* response(const std::string& key) const {
    auto it = exchanges.find(key);
    return it == exchanges.end() || !it->second.response ? nullptr : &*it->second.response;
  }
  std::map<std::string, StepSummary> steps;           ///< step key -> step_summary of its last step.finished
  /// loop key -> step_summary of that loop's last step.finished: the very summary `steps` holds
  /// for that step while it is the step's last (shared, not copied), a copy only once they differ.
  std::map<std::string, StepSummary> loops;
  std::set<std::string> intent_reservations;        ///< reservation ids an intent names (maybe sent)
  std::map<std::string, std::string> fallbacks;     ///< exchange key that failed -> model it fell back to
  std::map<std::string, nlohmann::json> tickets;    ///< exchange key -> exchange.ticket body of a job still in flight
  std::map<std::string, WrittenBy> written_by;      ///< artifact name -> the step and attempt that wrote it
  /// Artifacts an attempt wrote before an interruption cut it short (no step.finished of that
  /// attempt follows them): no other step reads them until that attempt finishes.
  std::set<std::string> cut_short;
  std::map<std::string, std::string> world_after;   ///< scene -> WORLD_STATE name its tracker wrote last
  std::set<std::string> revisions_done;             ///< "<loop>#<attempt>" revisions that passed
  std::map<std::string, FlatJson> media;            ///< "<shot>/<resolution>" -> media_summary of its last
  std::map<std::string, FlatJson> renders;          ///< render path -> its render_summary (+ "seq" when read)
  std::map<std::string, std::string> media_paths;   ///< "<shot>/<resolution>#<attempt>" -> its render's path
  std::map<std::string, std::vector<FlatJson>> shot_attempts;  ///< "<shot>/<resolution>" -> qc verdicts, as noted
  std::set<std::string> analyzer_runs;              ///< "<shot>/<resolution>#<attempt>" analyzer ran after
  std::map<std::string, nlohmann::json> rounds;     ///< "<shot>/<resolution>" -> last regen.round body
  std::set<std::string> waves_written;              ///< "<scene>/<resolution>#<wave>"
  std::map<std::string, std::string> wave_of;  ///< a wave's QC_BATCH name -> "<scene>/<resolution>#<wave>"
  std::vector<nlohmann::json> triggers_fired;        ///< trigger.fired bodies, each with its event's "run_id"
  /// "<loop>|<cause id>" -> the verdict of the last step a trigger firing ran for that cause: whether
  /// the firing's run finished, judged by its own steps (another firing of the same loop, for
  /// another cause, does not make this one unfinished).
  std::map<std::string, std::string> firing_verdicts;
  std::map<std::string, int64_t> stopped_loops;  ///< trigger firing's loop -> seq of the last hard stop raised on it
  std::map<std::string, nlohmann::json> open_stops;  ///< loop key -> {seq, skill, kind, scope, cap, reason} of a stop still open
  /// The decisions people recorded (`avps override`): what governance::Overrides::read gives of the
  /// same events, without another reading of the record.
  governance::Overrides overrides;
  /// The built-ins' tally (a run's record only, RecordParts::all): as of the last event folded,
  /// then kept up to date by Impl::tally_so_far.
  RecordTally tally;
};

/// A step of `loop` ended with `verdict`: when it passed (PASS, WARN, ACCEPTED), the revisions done
/// for the loop's attempts ("loop#N") are forgotten, since its attempts count again from 1 on new
/// inputs and attempt N's revision is due again.
void note_loop_verdict(Record& record, const std::string& loop, const std::string& verdict);

/// A hard stop raised on `loop` at `seq`: noted in `record.stopped_loops` when it is a trigger
/// firing's loop (fire_triggers).
void note_stop(Record& record, const std::string& loop, int64_t seq);

/// The check regen_limit_with_analyzer: each shot (of `scene`; of the project when empty) with an
/// attempt made after `analyzer_after` failed attempts from the same inputs and no analyzer run
/// since the last of those failures ("S01_SH02/proxy attempt 3 followed 2 failed attempts from the
/// same inputs"). Failures count per render identity, as production counts them: a shot made again
/// from new inputs (an edited lock) starts its count again, so failures whose inputs changed before
/// the next attempt owe no analyzer run.
std::vector<std::string> analyzer_runs_missing(const Record& record, const std::string& scene, int analyzer_after);

/// Notes the verdict of a step.finished `body` run for a trigger firing (its "trigger" carries the
/// cause) in `record.firing_verdicts`; other steps are left alone.
void note_firing(Record& record, const nlohmann::json& body);

/// The "rows" array of an artifact's content, by reference (an empty array when it has none):
/// the shot and scene lists are read on every step, and a copy of them each time would make a
/// step's cost grow with the project.
const nlohmann::json& rows_of(const nlohmann::json& artifact);

/// The integer at `pointer` of the project configuration, else `fallback`.
int config_int(const nlohmann::json& config, const char* pointer, int fallback);

/// The scene a hard stop holds ({kind, scope, cap} as recorded), or "": a stop with no scene in its
/// scope (an entity's, held_entity, or the whole project's), or one on the project's budget cap
/// (every other call would meet that cap too). A scene's stop holds that scene and what depends on it.
std::string held_scene(const nlohmann::json& stop);
/// The entity a recorded run.hard_stop holds when it holds no scene: its scope's entity_id (a
/// lock's stop), "" otherwise.
std::string held_entity(const nlohmann::json& stop);

/// What of the record a reader needs: all of it (a run), or what decides whether a shot's renders
/// are up to date (Engine::stale_shots): everything but the exchanges and reservations, which a
/// run replays and resumes from and which are most of the record; of each step only what
/// readable_summary keeps, and no media summaries (Record::media: a grader's input, never a
/// packager's).
enum class RecordParts { all, renders };

/// Folds the events of a record, in order, into a Record: what read_record does, one event at a
/// time, so that a reader can page through the ledger instead of holding every event. Not
/// thread-safe.
class RecordFold {
 public:
  explicit RecordFold(RecordParts parts) : m_all(parts == RecordParts::all) {}
  void add(const ledger::Event& e);
  /// The Record of the events added (once: the fold is spent).
  Record finish() &&;
  /// Whether it folds what a run needs (RecordParts::all), not only the stale-shot rule's part.
  bool all() const { return m_all; }
  /// The fold's whole state as one JSON document, member by member: what first_difference
  /// compares (RestoredRecordCheck::against_whole_fold), never stored.
  nlohmann::json save() const;
  /// The same state in the flat encoding (include/avps/core/byte_codec.hpp: members one after
  /// another, no keys), what a checkpoint's record sections hold (the run's and the stale-shot
  /// rule's): restored straight into the members, with no document tree between (the CBOR
  /// document the stale-shot section was until format 8 took 119 MB to decode at 500 scenes,
  /// nine times its bytes, and the run's record likewise cost more than half the fold it spared).
  void save(core::ByteWriter& out) const;
  /// The same bytes in parts (their concatenation is what save(ByteWriter&) writes), each member
  /// let go of as soon as it is written: what a checkpoint's writer holds at once is the fold or
  /// its bytes, not both whole, and no buffer of the whole section is made. With a sink the parts
  /// are handed to it as they are made, and none are returned (SectionParts).
  std::vector<std::string> save_parts(SectionParts::Sink sink = {}) &&;
  /// restore_bytes: nullopt when `bytes` are not what save(ByteWriter&) made (cut short, bytes after it).
  static std::optional<RecordFold> restore_bytes(std::string_view bytes);

 private:
  bool m_all;
  Record m_record;
  governance::HardStopFold m_stops;
  governance::Overrides m_overrides;
  std::map<int64_t, std::string> m_stop_inputs;  // run.hard_stop seq -> its "inputs"
  /// step -> (attempt, artifact) written by an attempt of it no step.finished has closed yet
  std::map<std::string, std::vector<std::pair<int, std::string>>> m_unfinished_writes;
  /// A WORLD_STATE written for a scene -> the scene's Record::world_after it replaced ("" for none):
  /// finish() puts the earlier one back when the attempt that wrote it was cut short.
  std::map<std::string, std::string> m_world_replaced;
};

/// What the run keeps of a step.finished body (Record::steps, Record::loops): the members its
/// rules read (attempt, verdict, loop, step, graph_step, escalations, tier, via_tier,
/// via_escalations, reroutes, trigger; reasons of a FAIL or FIX, the next attempt's findings), not
/// the run-log row, outputs or model, which the ledger keeps.
nlohmann::json step_summary(const nlohmann::json& body);

/// What a reader's fold (RecordParts::renders: the stale-shot rule) keeps of a step.finished body:
/// the members Impl::readable_version and writer_rank read (attempt, verdict, loop, step,
/// graph_step). At 500 scenes the run's whole step_summary of every step was most of the fold a
/// checkpoint saves and restores.
nlohmann::json readable_summary(const nlohmann::json& body);

/// What the run keeps of a media.recorded body, whose RUN_LOG row is most of it (the ledger keeps
/// that): in Record::media, what a grader's MEDIA input and a resumed wave read (shot_id,
/// resolution, attempt, path, sha256, model, key, and scene_id, tier, inputs); in Record::renders,
/// what tells a stale shot from the render it had (inputs, input_hashes). At 500 scenes the whole
/// bodies, kept twice, were about 80 MB of a run's memory.
nlohmann::json media_summary(const nlohmann::json& body);
nlohmann::json render_summary(const nlohmann::json& body);

/// Reads the whole record a page at a time (Ledger::each_event).
[[nodiscard]] Result<Record> read_record(const ledger::Ledger& ledger);

/// Whether read_record(project, ...) checks a Record restored from the fold checkpoint against a
/// fold of every event (RunOptions::verify_by_name: every e2e run does).
enum class RestoredRecordCheck { none, against_whole_fold };
/// The run's Record: restored from the fold checkpoint's run-record section
/// (docs/formats/checkpoint.md) when the checkpoint is usable by the readers' own rules
/// (UsableCheckpoint::open), and the events after it folded onto it, in the same read; else every
/// event, as read_record(ledger). One debug line says which, and why a checkpoint was not used.
/// With against_whole_fold, a restored fold is also compared with the fold of every event: one
/// that differs is an error naming the first member that does (first_difference).
[[nodiscard]] Result<Record> read_record(project::Project& project, RestoredRecordCheck check);
/// The first top-level member of a saved fold (RecordFold::save) that `other` lacks or holds
/// differently, or one `other` has and it lacks; "" when they are equal.
std::string first_difference(const nlohmann::json& saved, const nlohmann::json& other);
/// Whether RecordFold::add leaves any fold as it was for `e` (a run.started or run.finished that
/// carries no reservation): what lets a checkpoint's writer carry the run's record over a tail of
/// such events byte for byte instead of folding it again.
bool record_fold_ignores(const ledger::Event& e);
/// Keeps what the run needs of an exchange.response (event `seq`, body `body`) under `key`.
void note_response(Record& record, const std::string& key, int64_t seq, const nlohmann::json& body);
/// The body of a kept response, read again from its event (a resumed call replaying its answer).
[[nodiscard]] Result<nlohmann::json> response_body(const ledger::Ledger& ledger, const RecordedResponse& response);
/// The same, of events already read (one snapshot of the ledger, in order).
Record read_record(const std::vector<ledger::Event>& events, RecordParts parts = RecordParts::all);

/// Records a graded shot attempt ({shot_id, resolution, attempt, verdict, reasons}) in
/// record.shot_attempts, replacing an earlier word on the same attempt.
void note_attempt(Record& record, const nlohmann::json& attempt);
/// The attempt an exchange.failed body with a `shot_attempt` ended: a FAIL whose reason is the
/// job's failure, marked render_failed (no render, no QC grade).
nlohmann::json failed_render(const nlohmann::json& failure);

}  // namespace avps::engine
