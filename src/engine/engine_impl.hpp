#pragma once
// Engine::Impl: the state of one `avps run` and the steps of its loop. Shared by engine.cpp
// (the walk, model steps, calls) and production.cpp (built-in steps, waves, QC, regen rounds).

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "avps/backends/backend.hpp"
#include "avps/core/hash.hpp"
#include "avps/engine/plan.hpp"
#include "avps/gates/integrity.hpp"
#include "avps/gates/project_context.hpp"
#include "avps/governance/budget_status.hpp"
#include "avps/governance/override.hpp"
#include "avps/governance/projection.hpp"
#include "avps/governance/quota.hpp"
#include "avps/governance/router.hpp"
#include "avps/governance/routing_table.hpp"
#include "engine_internal.hpp"
#include "exchange.hpp"

namespace avps::engine {

/// Parsed contents by a key that names them for good (an artifact's json_sha256: objects are
/// write-once; or the names of the immutable artifacts a value was made from), the most recently
/// used kept: at most `capacity` of them, and at most `byte_budget` bytes of them as
/// approx_json_bytes estimates (the most recent one is kept whatever its size). An entry never
/// goes stale, in a run or a read; the bounds keep memory to the work in hand (the locks and shot
/// lists every step of a scene reads again) instead of the project's history: a count alone did
/// not, since an entry can grow with the project (every scene's SHOTLIST as one all_targets input,
/// made again for each scene: 70 MB of a 150-scene run's peak heap). Not thread-safe: the engine's
/// walk is one thread.
class ContentCache {
 public:
  explicit ContentCache(size_t capacity, size_t byte_budget = SIZE_MAX)
      : m_capacity(capacity), m_byte_budget(byte_budget) {}
  using Content = std::shared_ptr<const nlohmann::json>;
  /// The content of `key`, or nullptr; a hit becomes the most recently used.
  Content find(const std::string& key);
  /// Keeps `content` as the most recently used, dropping the least recently used beyond the
  /// bounds (a content dropped lives on while a reader holds it).
  Content insert(const std::string& key, nlohmann::json content);
  size_t size() const { return m_items.size(); }
  /// The estimated bytes of the contents kept.
  size_t bytes() const { return m_bytes; }

 private:
  struct Item {
    std::string key;
    Content content;
    size_t bytes = 0;
  };
  size_t m_capacity;
  size_t m_byte_budget;
  size_t m_bytes = 0;
  std::list<Item> m_items;  // most recently used first
  std::unordered_map<std::string, std::list<Item>::iterator> m_by_key;
};

/// An estimate of the heap a parsed JSON value holds (its nodes, strings, map and vector
/// overheads as libstdc++ lays them out): what bounds ContentCache, not an exact figure.
size_t approx_json_bytes(const nlohmann::json& value);

/// A recorded artifact with its canonical JSON.
struct Loaded {
  ContentCache::Content data;  ///< never null; shared with the cache, never changed
  ledger::ArtifactRecord record;

  const nlohmann::json& content() const { return *data; }
};

/// A row of a rows artifact (SCENES, SHOTLIST, BREAKDOWN) in place, with the content that holds it
/// (shared with the cache): what reads one field of it copies nothing.
struct RowRef {
  ContentCache::Content owner;
  const nlohmann::json* row = nullptr;
  explicit operator bool() const { return row != nullptr; }
  const nlohmann::json& operator*() const { return *row; }
  const nlohmann::json* operator->() const { return row; }
};

/// The rows of one parsed rows artifact by the value of one field, in order (Impl::rows_with).
struct RowIndex {
  ContentCache::Content content;  ///< what is indexed, kept alive with the index
  std::unordered_map<std::string, std::vector<const nlohmann::json*>> rows;
};

/// A step's inputs in one context: by kind, cut to their slices; their fingerprints (kind,
/// names, hash of the content without gates) for staleness; the first required input missing.
struct Gathered {
  /// Every input by kind. The inputs made from named artifact versions (every whole-artifact and
  /// all_targets input) wait in `deferred` until first asked for here: a step found up to date
  /// never makes them (at 500 scenes copying and freeing them was a third of a resume with nothing
  /// to do). An error reading one of their artifacts is the answer. Not thread-safe: a job's
  /// inputs are read by the engine's thread only.
  [[nodiscard]] Result<const nlohmann::json*> inputs() const {
    for (auto& [kind, make] : deferred) {
      AVPS_TRY_ASSIGN(cut[kind], make());
    }
    deferred.clear();
    return &cut;
  }
  /// Whether the step has an input of `kind` (made or not).
  bool has(const std::string& kind) const { return cut.contains(kind) || deferred.count(kind); }
  /// The inputs made for this context (mutable: inputs() makes the deferred ones when first asked).
  mutable nlohmann::json cut = nlohmann::json::object();
  /// kind -> what makes an input from named versions, fingerprinted without it
  /// (Impl::named_contents): made only for a step that reads it (a model call's request), not for
  /// a built-in or a step found up to date. At 500 scenes, making the all_targets lists for every
  /// scene's cost loop grew each call's cost with the project.
  mutable std::map<std::string, std::function<Result<nlohmann::json>()>> deferred;
  nlohmann::json fingerprints = nlohmann::json::array();
  /// What each input is made from by name (artifact versions, the context's ids, the brief's hash):
  /// equal in two gathers, their fingerprints are equal too (Impl::inputs_by_name). The canonical
  /// JSON text of an array of [kind, slice, fields, required, feedback, made_from], written as the
  /// inputs are gathered: it is only ever hashed, inside inputs_by_name's basis.
  std::string by_name = "[]";
  std::string missing;
  std::optional<nlohmann::json> world_before;  ///< the WORLD_STATE before the scene, when read
  std::vector<Shown> shown;  ///< the media among the inputs (a render, a storyboard frame): what a vision call sees
};

enum class JobState { fresh, waiting, ready, done };

/// How Impl::gather reads a step's inputs: `contents` loads, cuts and fingerprints them (what a
/// step that runs needs); `names` only names what they are made from (Gathered::by_name), loading
/// no artifact: enough to know a step the record has finished (Impl::known_by_name); `identity`
/// is `contents` for what a render's identity is made of (Impl::render_identity): an optional
/// feedback input, which is not part of it, is left out, and the world state before the scene is
/// not copied out for a gate (Gathered::world_before stays empty).
enum class GatherMode { contents, names, identity };

/// How a piece of the walk ended, for its caller to decide what runs next: the engine's decisions
/// are return values handed up to the walk (Impl::end_pass), not flags checked along the way.
enum class Flow {
  go_on,        ///< nothing its caller must act on (what waits is in the jobs' states)
  restart,      ///< content an earlier phase derived from changed: the walk starts again at the top
  stop,         ///< a hard stop was raised or stands (in record.open_stops; the Plan says what it holds)
  interrupted,  ///< the user asked to stop; the next `avps run` resumes
};

/// One skill in one context until its gate passes or its loop policy gives up.
struct Job {
  Context ctx;
  JobState state = JobState::fresh;
  Gathered in;
  std::string step;  ///< step key: skill/context@digest of the inputs
  std::string loop;  ///< loop key: skill/context (counts attempts across input changes)
  std::string loop_suffix;  ///< "<judge loop" for an upstream revision
  nlohmann::json extra = nlohmann::json::object();  ///< more of the step key (resolution, caps, revision)
  bool forced = false;   ///< run even when up to date (a revision)
  bool collect = false;  ///< judge only: outputs kept in the job, not written (QC rows of a wave)
  /// An output equal (gate aside) to the latest version of its kind is not written again: the
  /// run names that version (a trigger's re-run that finds nothing to change).
  bool reuse_identical = false;
  int attempt = 1;
  int escalations = 0;
  std::string tier;
  std::string via_tier;  ///< the reviser's tier after escalations (cross-skill loops)
  int via_escalations = 0;
  int reroutes = 0;  ///< budget-gates: re-checks after a re-route in this loop (Impl::reroute_for_budget)
  bool resumed_failure = false;
  nlohmann::json findings = nlohmann::json::array();
  nlohmann::json revision_for;  ///< {loop, attempt, judge} when this job revises for another loop
  nlohmann::json log_extra = nlohmann::json::object();  ///< more of the step.finished body
  Call call;
  gates::Outputs outputs;
  gates::GateResult gate;
  std::string verdict;
  bool changed_upstream = false;
  // A paged attempt (run_pages): its assembled outputs, or why there are none; its calls.
  nlohmann::json paged_output;
  std::string page_failure;
  int pages = 0;
};

/// Paging limits: pages per attempt, and the carry one page passes to the next (it must stay
/// small, or the requests would grow page by page).
inline constexpr int k_max_pages = 1000;
inline constexpr size_t k_max_carry_bytes = 16 * 1024;
/// Contents kept parsed (ContentCache), of artifacts and of whole-artifact inputs: enough for
/// every lock, scene list and shot list a walk goes back to; bench/scale.sh measures the memory.
inline constexpr size_t k_content_cache_entries = 1024;
/// ... and the bytes each of the two caches may hold (approx_json_bytes): a scene's locks, shot
/// lists and a few lists of every scene's, whatever the number of scenes.
inline constexpr size_t k_content_cache_bytes = 16 * 1024 * 1024;

/// The latest recorded content of kind/target ("" target for singletons) as the engine's cache
/// holds it, shared and never changed; null when there is none.
using SharedLatest = std::function<Result<ContentCache::Content>(std::string_view kind, std::string_view target)>;
/// Impl::kind_index_seq of a kind, the index brought up to date first (Impl::kind_generation).
using KindGeneration = std::function<Result<std::optional<int64_t>>(std::string_view kind)>;

/// The gate's view of the record, with the world state as it stood before the step's scene (the
/// latest WORLD_STATE is a later scene's once scenes are re-derived out of order), and the
/// configuration with the budget caps in force (Impl::gate_config: raised by `avps override`).
class EngineGateContext : public gates::GateContext {
 public:
  /// `latest` reads through the engine's artifact index and parsed-contents cache
  /// (Impl::latest_shared): a gate's checks read the same SHOTLIST or lock at every shot, parsed
  /// once instead of each time, and `latest_shared` hands out the cache's own content, uncopied.
  EngineGateContext(project::Project& project, SharedLatest latest, KindGeneration generation, nlohmann::json config,
                    std::optional<nlohmann::json> world_before)
      : m_project(project),
        m_latest(std::move(latest)),
        m_generation(std::move(generation)),
        m_config(std::move(config)),
        m_world_before(world_before ? std::make_shared<const nlohmann::json>(std::move(*world_before)) : nullptr) {}
  const nlohmann::json& config() const override { return m_config; }
  Result<std::optional<nlohmann::json>> latest(std::string_view kind, std::string_view target) const override {
    AVPS_TRY_ASSIGN(ContentCache::Content content, latest_shared(kind, target));
    return content ? std::optional<nlohmann::json>{*content} : std::nullopt;
  }
  Result<ContentCache::Content> latest_shared(std::string_view kind, std::string_view target) const override {
    if (kind == "WORLD_STATE" && m_world_before) {
      return m_world_before;
    }
    return m_latest(kind, target);
  }
  /// The seq of the last event whose artifact of `kind` the walk's index took in. The WORLD_STATE
  /// before the scene is not the index's latest: none for it.
  Result<std::optional<int64_t>> kind_generation(std::string_view kind) const override {
    if (kind == "WORLD_STATE" && m_world_before) {
      return std::optional<int64_t>{};
    }
    return m_generation(kind);
  }
  Result<std::optional<Face>> latest_face(std::string_view kind, std::string_view target) const override {
    return m_project.latest_face(kind, target);
  }

 private:
  gates::ProjectGateContext m_project;
  SharedLatest m_latest;
  KindGeneration m_generation;
  nlohmann::json m_config;
  ContentCache::Content m_world_before;
};

/// Where a step stands in the walk (Impl::walk): its group (0 the project-wide phases, 1 the scene
/// phases, 2 production), its scene's place in story order (groups 1 and 2), its place in graph
/// order. Walks run in this order; a version written by a step later in it is not an input of a
/// step earlier in it (Impl::input_version).
struct WalkRank {
  int group = 0;
  int scene = 0;
  int position = 0;
  auto operator<=>(const WalkRank&) const = default;
};

/// What Impl::readable_version decides of one artifact version whatever step reads it, from the
/// record: the step that wrote it, where that step stood in the walk (writer_rank), whether the
/// attempt that wrote it is unfinished or was cut short, and whether it is the failed last step of
/// its loop, not yet acted on. What depends on the reader (its loop, its rank) is compared at each
/// read (hidden_from). Kept by artifact name in Impl::writer_facts (a memo of the record's state).
struct WriterFacts {
  bool by_step = false;  ///< written by a step of a run (not init or an import): the rules below apply
  std::string step;      ///< the writer's step key
  std::string loop;      ///< the finished step's loop
  std::optional<WalkRank> written_at;
  /// Its writer is a step of the stage graph's walk, which a later pass of the walk checks by its
  /// key; not an on-demand one (regen-analyzer), each run of which is a new attempt on the latest.
  bool walk_step = false;
  bool unfinished = false;
  bool cut_short = false;
  bool failed_unanswered = false;  ///< its loop's last step, a FAIL, and no stop open on that loop

  /// Whether a step of `reader_loop` at `reader` must not read this version (readable_version
  /// then walks back to the one before): one written later in the walk, or by its own loop at its
  /// own place when that loop is a walk step (a step reading its own kind, the router its last
  /// ROUTING_DECISION, found none there when it first ran: shown its own output when the walk came
  /// back to it, its key changed and it ran again after every whole production). An on-demand
  /// step (regen-analyzer, whose global REGEN_RULES each run carries forward) reads its own last.
  bool hidden_from(const std::string& reader_loop, const std::optional<WalkRank>& reader) const {
    if (!by_step) {
      return false;
    }
    const bool own_attempt = step.size() > reader_loop.size() && step.compare(0, reader_loop.size(), reader_loop) == 0 &&
                             step[reader_loop.size()] == '@';
    const bool hidden = unfinished ? own_attempt || cut_short : failed_unanswered && loop != reader_loop;
    return hidden ||
           (reader && written_at && (*written_at > *reader || (*written_at == *reader && own_attempt && walk_step)));
  }
  bool operator==(const WriterFacts&) const = default;
};

/// The WriterFacts of one artifact version with what they were made at (Impl::writer_facts). The
/// generations are read through pointers into Impl::step_generations and loop_generations, whose
/// entries stay where they are until the memos go with them (Impl::sync_writer_facts): checking
/// that a memo holds is two loads, not two lookups by a key. Not thread-safe (the engine's thread).
struct WriterFactsMemo {
  WriterFacts facts;
  uint64_t step_generation = 0;           ///< of its writer step when made
  uint64_t loop_generation = 0;           ///< of its writer's loop when made
  const uint64_t* step_now = nullptr;     ///< its writer step's generation as it is now
  const uint64_t* loop_now = nullptr;     ///< its writer's loop's generation as it is now
  bool written_since = false;             ///< recorded by this run after it was made (artifact_written)
  bool holds() const { return !written_since && step_generation == *step_now && loop_generation == *loop_now; }
};

/// The versions of every target of one kind, as of one state of the artifact index's versions of
/// that kind and of the record (Impl::latest_of_every_target; their writers' facts are
/// Impl::writer_facts'): what an all_targets input is named from, by every scene's cost loops (at
/// 500 scenes, 3,000 steps each reading 500 targets).
struct TargetVersions {
  struct Version {
    const ledger::ArtifactRecord* record;      ///< in Impl::versions_by_key
    mutable WriterFactsMemo* facts = nullptr;  ///< its memo in Impl::writer_facts, once asked for
  };
  struct Entry {
    std::vector<Version> versions;  ///< the target's versions, the latest first
  };
  /// What one reader (a loop, a place in the walk) reads of every target: each target's readable
  /// version (Impl::readable_of_every_target). Kept for the last reader while no writer fact has
  /// changed: a step is gathered by name, then whole, with nothing recorded between. Its names are
  /// kept while the versions read are the same, whatever the reader: every scene's cost loop reads
  /// the same versions of every scene's SHOTLIST, each step after some fact moved.
  struct Readable {
    std::string reader_loop;
    std::optional<WalkRank> reader;
    uint64_t facts_generation = 0;                   ///< Impl::generation when made
    std::vector<const ledger::ArtifactRecord*> records;  ///< in the index's order of kind/target
    std::string names_text;                          ///< their names as a canonical JSON array
    /// Their names, made when a gather loads them; shared with the gathers that hold them.
    std::shared_ptr<const std::vector<std::string>> names;
  };
  std::vector<Entry> entries;  ///< in the index's order of kind/target
  int64_t kind_seq = -1;       ///< Impl::kind_index_seq of this kind when made
  uint64_t record_generation = 0;  ///< Impl::record_generation when made
  std::optional<Readable> last_read;
};

/// Whether artifacts of the codec's kind carry a gate object (WORLD_STATE and STATE_DIFF do not).
bool carries_gate(const artifacts::FaceCodec& codec);

struct Impl {
  Impl(Engine& engine, RunOptions run_options) : e(engine), options(std::move(run_options)) {}

  Engine& e;
  RunOptions options;
  Record record;
  RunOutcome outcome;
  /// What the open stops hold (plan.hpp), from the record's open stops: made when the walk starts,
  /// told of every stop raised or resolved since (Impl::sync_plan).
  std::optional<Plan> plan;
  std::set<std::string> held_noted;  ///< scenes whose hold this run has reported
  bool pass_held = false;            ///< the last end_pass() handed a stop confined to a scene to the plan
  std::vector<std::string> scenes;  ///< scene ids of the latest SCENES, in story order
  EntityScenes entity_scenes;       ///< which scenes show each entity, by the latest BREAKDOWN
  std::map<std::string, artifacts::FaceCodec> codecs;
  std::map<std::string, std::vector<ledger::ArtifactRecord>> versions_by_key;  ///< "KIND/target", by version
  /// Where an artifact's record is in versions_by_key: its kind and target's list (a map's value:
  /// it stays where it is) and its version. Not a copy of the record: one per artifact of the
  /// history, the copies were 10 MB of a 500-scene resume.
  struct IndexedName {
    const std::vector<ledger::ArtifactRecord>* versions = nullptr;
    int version = 0;
  };
  std::map<std::string, IndexedName> index_by_name;
  /// The index's record of the artifact `name` (refresh_index first), or nullptr: valid until the
  /// index next moves.
  const ledger::ArtifactRecord* indexed(const std::string& name) const;
  int64_t index_seq = -1;
  std::map<std::string, int> step_index;      ///< skill -> its first step in graph order
  std::map<std::string, int> producer_index;  ///< kind -> the first step that writes it
  std::map<std::string, int> graph_step_index;  ///< graph step id -> its position in graph order
  /// "skill/resolution" -> its step in that resolution's phase; "/resolution" -> that phase's last step
  std::map<std::string, int> resolution_step_index;
  /// "<loop>|<cause id>" of trigger firings an interruption cut short that this run resumed: each
  /// at most once a run (fire_triggers).
  std::set<std::string> firings_resumed;
  /// The first per-shot step's position: where a scene's production starts in the walk.
  int production_start = -1;
  std::vector<int> group_at;  ///< graph position -> its walk group (StageGraph::walk_passes)
  std::map<std::string, int> scene_order;  ///< scene id -> its place in `scenes`
  /// Artifact contents read lately: the locks and shot lists every step of a scene reads are read
  /// from the store and parsed once, not once per step.
  ContentCache contents{k_content_cache_entries, k_content_cache_bytes};
  /// The fingerprints ({sha256}) of inputs made from named artifact versions, cut to a skill's
  /// fields, by kind, slice, fields and names (Impl::gather); their values are made again by a
  /// step that reads them (named_contents).
  ContentCache pure_inputs{k_content_cache_entries, k_content_cache_bytes};
  /// The ledger seq of the last SCENES, SHOTLIST or ROUTING_DECISION the index took in: all that
  /// governance::recorded_shots reads, so its memo stands until one of them is recorded (any
  /// artifact moved it before, and every scene's steps re-read every scene's shot list).
  int64_t plan_seq = -1;
  /// The shots the record plans (governance::recorded_shots), as of `plan_seq` ==
  /// `recorded_shots_seq`: every scene's cost step, budget gate and production read it.
  std::optional<governance::RecordedShots> recorded_shots_memo;
  int64_t recorded_shots_seq = -1;
  /// The whole project's cost projection of those shots (governance::project_recorded), as of
  /// `projection_seq`: every scene's budget gate reads it.
  std::optional<governance::CostProjection> projection_memo;
  int64_t projection_seq = -1;
  /// The tier allocation of those shots (governance::allocate), as of `allocation_seq`.
  std::optional<governance::RoutingTable> allocation_memo;
  int64_t allocation_seq = -1;

  // Reading the record (engine.cpp).
  /// The latest version's record of kind/target, from the artifact index (no content read).
  Result<std::optional<ledger::ArtifactRecord>> latest_record(const std::string& kind, const std::string& target);
  /// The same record in the index, not copied (valid until the index next moves), or nullptr.
  Result<const ledger::ArtifactRecord*> latest_indexed(std::string_view kind, std::string_view target);
  Result<std::optional<Loaded>> latest(const std::string& kind, const std::string& target);
  /// An artifact's content, verified by the store when it is first read (then from `contents`).
  Result<ContentCache::Content> load(const ledger::ArtifactRecord& artifact);
  /// governance::recorded_shots of the latest SCENES and SHOTLISTs, read again only once one of
  /// them (or the ROUTING_DECISION) has a new version.
  Result<const governance::RecordedShots*> recorded_shots();
  /// governance::allocate of those shots under the project's settings, likewise read again only
  /// once the artifact index has moved.
  Result<const governance::RoutingTable*> allocation();
  Result<std::optional<Loaded>> by_name(const std::string& name);
  /// What makes an input from the versions `names` (immutable) when a step reads it: each cut to
  /// `fields` and without its gate, as a list (`as_list`) or the one version named.
  std::function<Result<nlohmann::json>()> named_contents(std::shared_ptr<const std::vector<std::string>> names,
                                                         std::vector<std::string> fields, bool as_list);
  Result<std::optional<Loaded>> input_version(std::optional<Loaded> loaded, const std::string& reader_loop,
                                              const std::optional<WalkRank>& reader);
  /// WriterFacts by artifact name, each kept while what it was made from stands: the all_targets
  /// inputs of every scene's cost loop ask them of every scene's artifacts (at 500 scenes, millions
  /// of times a resume), and a step changes the facts of its own writes and its loop's only. A memo
  /// holds while the whole record has not changed and its writer step's and its loop's generations
  /// are those it was made at. Every change of what facts are made from says so: Record::steps
  /// (step_changed), Record::loops and open_stops (loop_changed), written_by (artifact_written);
  /// cut_short and the walk's ranks (scene_order) change only with the whole record
  /// (record_changed). Under RunOptions::verify_by_name each memo served is checked against facts
  /// made anew, so a change that said nothing is an error, not a stale read.
  /// The memos and generations are cleared together: a memo points into the generations.
  std::unordered_map<std::string, WriterFactsMemo> writer_facts;
  /// step key -> its last change since a memo read it (0: none since), for the steps memos read
  std::unordered_map<std::string, uint64_t> step_generations;
  std::unordered_map<std::string, uint64_t> loop_generations;  ///< loop key -> likewise
  /// The last generation handed out: moved by every change of a writer fact short of the whole
  /// record's (step_changed, loop_changed, artifact_written).
  uint64_t generation = 0;
  uint64_t record_generation = 0;          ///< moved by every change of the whole record
  uint64_t writer_facts_generation = 0;    ///< record_generation when the memos were made
  /// The record changed as a whole (replaced, or the walk's ranks moved): every memo goes.
  void record_changed() { ++record_generation; }
  /// Record::steps[step] changed, and with it Record::loops[loop] (a step.finished). Only a
  /// generation some memo reads is moved: a memo made later is made from the record as it is then,
  /// and its entry made at it (facts_of). Every step finished kept one before: at 500 scenes the
  /// two maps were 4.9 MB of the walk's peak heap, now 2.4 (the writers of what steps read).
  void step_changed(const std::string& step, const std::string& loop) {
    ++generation;
    move_generation(step_generations, step);
    move_generation(loop_generations, loop);
  }
  /// Record::loops[loop] or Record::open_stops[loop] changed.
  void loop_changed(const std::string& loop) {
    ++generation;
    move_generation(loop_generations, loop);
  }
  /// The entry of `key` set to `generation`, if a memo made one.
  void move_generation(std::unordered_map<std::string, uint64_t>& generations, const std::string& key) const {
    if (auto it = generations.find(key); it != generations.end()) {
      it->second = generation;
    }
  }
  /// Record::written_by[name] was set: a version recorded now, whose memo (if any) no longer holds.
  void artifact_written(const std::string& name) {
    if (auto memo = writer_facts.find(name); memo != writer_facts.end()) {
      memo->second.written_since = true;  // not erased: a TargetVersions::Version may point to it
    }
    ++generation;
  }
  /// Drops every memo (and the generations they were made at) when the whole record changed.
  void sync_writer_facts();
  /// The WriterFacts of `artifact`, from its memo while that holds. With RunOptions::verify_by_name
  /// a memo is made again from the record each time it is served, and one that differs is an error.
  /// `known`, when given, is where the caller keeps the memo's address from one call to the next:
  /// a memo it points to that holds is served without a lookup by name.
  Result<const WriterFacts*> facts_of(const ledger::ArtifactRecord& artifact, WriterFactsMemo** known = nullptr);
  /// WriterFacts made from the record as it is now.
  WriterFacts make_writer_facts(const std::string& name) const;
  /// The version of `artifact`'s kind and target just before it in the index (refresh_index first),
  /// or nullptr.
  const ledger::ArtifactRecord* version_before(const ledger::ArtifactRecord& artifact) const;
  /// input_version by the index alone: the version of `artifact`'s kind and target a reader may
  /// read, nothing loaded.
  Result<std::optional<ledger::ArtifactRecord>> readable_version(ledger::ArtifactRecord artifact,
                                                                 const std::string& reader_loop,
                                                                 const std::optional<WalkRank>& reader);
  /// readable_version in place: `artifact` itself or a version of the index (valid until the
  /// index next moves), nullptr when none is readable.
  Result<const ledger::ArtifactRecord*> readable_record(const ledger::ArtifactRecord& artifact,
                                                       const std::string& reader_loop,
                                                       const std::optional<WalkRank>& reader);
  /// kind -> the versions of each of its targets, made again when the index's versions of that
  /// kind or the whole record moved (their pointers are into both).
  std::map<std::string, TargetVersions> target_versions;
  /// kind -> the seq of the last event whose artifact of that kind the index took in: a kind's
  /// lists of versions in versions_by_key move (and with them pointers into them) only then.
  std::unordered_map<std::string, int64_t> kind_index_seq;
  Result<TargetVersions*> latest_of_every_target(const std::string& kind);
  /// Each target of `kind`'s version a step of `reader_loop` at `reader` reads (readable_record's
  /// walk back, over the versions kept), in the index's order: made again when a writer fact, the
  /// kind's versions or the reader changed. Valid until the next call or the index's next move.
  Result<TargetVersions::Readable*> readable_of_every_target(const std::string& kind,
                                                             const std::string& reader_loop,
                                                             const std::optional<WalkRank>& reader);
  /// The fingerprint of a list input (an all_targets one): the sha256 of the canonical JSON of the
  /// list of `records`' contents, each cut to `fields` and without its gate. The canonical JSON of
  /// a list is "[" + its elements' canonical JSON joined by "," + "]", so the digest is made by
  /// element: from the hash state after the longest prefix of elements it shares with the list
  /// last hashed under `list_key` (kind, slice, fields), the elements after it loaded and cut
  /// again. Each scene's cost loop adds or replaces one scene's version, the last of the list
  /// (targets in order, scenes made in order), so a step hashes what changed, not every scene's
  /// artifact again. The elements' texts are not kept: at 500 scenes they were 4 MB of the walk's
  /// peak heap, for the rare step that finds an earlier scene's version replaced.
  Result<std::string> list_fingerprint(const std::string& list_key,
                                       const std::vector<const ledger::ArtifactRecord*>& records,
                                       const std::vector<std::string>& fields);
  /// The last list hashed under a list key: its elements (json_sha256) and the hash state after
  /// each ("[" e0 "," ... ei).
  struct ListDigest {
    std::vector<std::string> elements;
    std::vector<core::Sha256> after;
  };
  std::map<std::string, ListDigest> list_digests;
  /// Where a run of `skill` in `context` stands in the walk.
  WalkRank rank_of(const std::string& skill, const Context& context) const;
  /// The skill that plays `part` in the stage graph's roles ("" without a usable graph).
  const std::string& role(const std::string& part) const;
  /// The skill the regen policy names at `key` (regen.analyzer, regen.simplify_via); "" without.
  std::string regen_skill(const char* key) const;
  /// A number of the regen policy: the project's setting its `config` pointer names, else its
  /// `default` (regen.analyzer_after_failed_attempts, regen.max_rounds, and
  /// regen.attempts_per_round.<hero tier> for `hero`).
  int regen_number(const std::string& setting, const std::string& hero = "") const;
  /// Whether the regen policy's `remedies` allow `remedy` ("simplify", "escalate"); both without
  /// a graph.
  bool regen_remedy(const char* remedy) const;
  /// Where the step that `step_key` names (a step.finished "step", an artifact's details.step)
  /// stood in the walk; nullopt for a writer outside the graph (init, an import).
  std::optional<WalkRank> writer_rank(const std::string& step_key) const;
  Result<void> refresh_index();
  Result<std::vector<Loaded>> all_versions(const std::string& kind, const std::string& target);
  /// The rows of `content` (a version of `kind`) whose `field` is `value` (row.value(field, "")), in
  /// order: indexed once per content, since every step of every scene looks its scene up in the
  /// scene list and the breakdown, and a scan each time grew with the project.
  const std::vector<const nlohmann::json*>& rows_with(const std::string& kind, const ContentCache::Content& content,
                                                      const char* field, const std::string& value);
  /// "KIND/field" -> the index of the last content of that kind asked of it (kept alive with it).
  std::map<std::string, RowIndex> row_indexes;
  /// scene_row and shot_row in place.
  Result<RowRef> scene_row_ref(const std::string& scene);
  Result<RowRef> shot_row_ref(const Context& context);
  Result<std::optional<nlohmann::json>> scene_row(const std::string& scene);
  Result<std::optional<nlohmann::json>> shot_row(const Context& context);
  Result<std::vector<std::string>> present_characters(const Context& context);
  Result<std::string> present_set(const Context& context);
  Result<std::optional<Loaded>> world_before(const std::string& scene);
  /// The version world_before() reads, nothing loaded.
  Result<std::optional<ledger::ArtifactRecord>> world_before_record(const std::string& scene);
  Result<bool> condition(const std::string& name, const Context& context);
  Result<Gathered> gather(const skills::SkillDef& skill, const Context& context,
                          GatherMode mode = GatherMode::contents);
  /// The digest of what `job`'s step key is made from, by name: its inputs' Gathered::by_name, its
  /// context, extra and loop suffix, the skill's project files, and the avps that cuts them. The
  /// artifact versions named are immutable, so two steps with one digest have one step key;
  /// recorded as step.finished's `inputs_by_name` (docs/formats/ledger.md).
  std::string inputs_by_name(const skills::SkillDef& skill, const Job& job, const Gathered& gathered) const;
  /// With RunOptions::verify_by_name: an error unless `digest` (inputs_by_name, which writes its
  /// basis's canonical JSON piece by piece) is the digest of the basis made as a JSON document.
  [[nodiscard]] Result<void> check_inputs_by_name(const skills::SkillDef& skill, const Job& job,
                                                  const Gathered& gathered, const std::string& digest) const;
  /// inputs_by_name digest -> the step key a whole gather made from those inputs: from the
  /// record's finished steps (read once) and every step gathered in this run.
  std::unordered_map<std::string, std::string> steps_by_inputs;
  bool steps_by_inputs_read = false;
  /// steps_by_inputs, with the record's finished steps read into it.
  std::unordered_map<std::string, std::string>& known_steps_by_inputs();
  /// Gathers `job`'s inputs whole and keys its step (job.in, job.step, its inputs_by_name).
  Result<void> key_job(const skills::SkillDef& skill, Job& job);
  /// Whether `job` is a step the record finished and settled with inputs of the same names: then
  /// its step is keyed without loading, cutting or fingerprinting an input (GatherMode::names), and
  /// true. With RunOptions::verify_by_name its inputs are also gathered whole and a different step
  /// key is an error.
  Result<bool> known_by_name(const skills::SkillDef& skill, Job& job);
  void index_graph(const skills::StageGraph& graph);
  bool circular(const skills::SkillDef& skill, const Context& context, const skills::SkillInput& input) const;
  std::string step_key(const skills::SkillDef& skill, const Context& context, const Gathered& gathered,
                       const nlohmann::json& extra);
  std::string loop_key(const skills::SkillDef& skill, const Context& context);
  /// The skill's output schema (skills::output_schema), kept by skill name for the run.
  Result<const nlohmann::json*> output_schema(const skills::SkillDef& skill);
  std::map<std::string, nlohmann::json> output_schemas;
  Result<const artifacts::FaceCodec*> codec(const std::string& kind);
  /// latest() as governance reads the record (canonical JSON only).
  governance::LatestArtifact latest_json();
  /// latest() as the gates read it: the parsed contents, shared with the cache (EngineGateContext).
  SharedLatest latest_shared();
  KindGeneration kind_generation();
  /// What built-ins aggregate from the whole record, kept in step by folding only the events
  /// recorded since, a page at a time (a built-in that re-read the ledger per scene would make a
  /// step's cost grow with the project; one that kept every event, its memory).
  Result<const RecordTally*> tally_so_far();
  /// The project configuration a gate reads in `context`: budget caps as in force there (the
  /// configured ones, raised where a person recorded `avps override --raise-cap`).
  nlohmann::json gate_config(const Context& context) const;

  // Calls: the exchange (exchange.hpp), made when the run starts.
  std::optional<Exchange> exchange;

  // Steps (engine.cpp).
  Result<std::string> write_output(const skills::SkillDef& skill, const std::string& kind, const std::string& target,
                                   nlohmann::json content, const gates::GateResult& gate, const nlohmann::json& details,
                                   bool& changed, std::optional<ledger::LogRow> row = std::nullopt);
  /// Records a hard stop (or restates the open one of `loop`); always Flow::stop.
  Result<Flow> hard_stop(const std::string& skill, const std::string& kind, const std::string& loop,
                         const Context& context, const nlohmann::json& findings, const std::string& reason,
                         nlohmann::json extra = nlohmann::json::object());
  /// The named checks evaluate_gate defers to the engine (gates::engine_check_names()), folded into
  /// `gate`: genpack_changed_on_regen, regen_limit_with_analyzer; run_log_complete is evaluated at
  /// every run's start (check_integrity).
  [[nodiscard]] Result<void> run_engine_checks(const Job& job, const gates::Outputs& outputs, gates::GateResult& gate);
  /// The project's files against the ledger (gates::check_integrity, transient findings aside):
  /// a finding is a project-wide hard stop of kind integrity (standing while it lasts); an open one
  /// whose files are in order again is resolved (`stop.resolved`). since_mark: from the mark the
  /// last clean check left (gates::IntegrityOptions::since), which a clean check replaces; whole:
  /// every event, file and object.
  enum class IntegrityScope { since_mark, whole };
  /// What a check of the files found (transient findings aside) and, when it found nothing, the
  /// mark it leaves (else the mark's ledger.seq is 0).
  struct IntegrityFindings {
    std::vector<core::Violation> found;
    gates::VerifiedMark clean;
  };
  /// The check itself, on `ledger`: reads only, writes nothing (not the mark), reports nothing, so
  /// it may run on another thread with a ledger of its own (Engine::run's start).
  static IntegrityFindings find_integrity_violations(const std::filesystem::path& dir, const ledger::Ledger& ledger,
                                                     IntegrityScope scope);
  /// `made`: the findings of a since_mark check already made on this record's ledger state (by
  /// the thread at the run's start); used unless an integrity stop is open, which needs the whole.
  [[nodiscard]] Result<Flow> check_integrity(IntegrityScope scope, std::optional<IntegrityFindings> made = std::nullopt);
  /// True once the user asked to stop (the walk then ends with Flow::interrupted).
  bool stop_requested() const;
  /// Hands `progress` to the observer with the scene and shot of `context` (where it has none of
  /// its own), the phase being walked (a phase event sets it) and where spend stands against the
  /// project cap (two aggregate reads of the ledger's reservations, as a cap check does).
  [[nodiscard]] Result<void> report(Progress progress, const Context& context = {});
  std::string walking_phase;  ///< the phase of the last phase event (report() keeps it)
  /// While the walk goes on beside the run's integrity check (Engine::run), what report() is
  /// given is held here, not shown: it is handed to the observer, in order, once the check is
  /// known to have found nothing (`integrity_known_clean`, asked at each report, which does not
  /// wait for it), and dropped if it found something (Engine::run settles it).
  std::optional<std::vector<Progress>> held_progress;
  std::function<bool()> integrity_known_clean;
  /// Ends the holding: shows what was held when `show`, else drops it.
  void release_progress(bool show);
  /// The hard stop of a call the budget governor refused (never retried, never a fallback).
  Result<Flow> budget_stop(const Call& call, const std::string& skill, const std::string& loop, const Context& context);
  Context context_for_scope(const std::string& scope, const Context& from);
  Result<void> start_job(const skills::SkillDef& skill, Job& job);
  /// The loop policy after a FAIL (or a FIX its on_fix acts on): job ready for its next attempt
  /// (Flow::go_on), or done with what ended the loop.
  Result<Flow> apply_policy(const skills::SkillDef& skill, Job& job);
  /// Why the t3 quota refuses `reviser` an escalation from `from` to t3 for up to `needed` calls
  /// (logged once per loop and attempt count), or "" when it admits it.
  Result<std::string> t3_refusal(const skills::SkillDef& judge, const Job& job, const std::string& reviser,
                                 const std::string& from, int needed);
  Result<nlohmann::json> escalation_delta(const skills::SkillDef& skill, const std::string& from, const std::string& to);
  /// Flow::restart when the revision changed what another skill wrote (its readers follow).
  Result<Flow> revise_upstream(const skills::SkillDef& judge, const skills::SkillDef& reviser, Job& failed);
  /// Runs the jobs to their ends; anything but Flow::go_on ends the round early (the jobs left
  /// are picked up again by the walk).
  Result<Flow> run_jobs(const skills::SkillDef& skill, std::vector<Job>& jobs);
  Result<void> build_call(const skills::SkillDef& skill, const Job& job, const nlohmann::json& schema, Call& c);
  /// A paged skill's attempt: its calls, page after page (Flow::interrupted when a stop was asked
  /// for between two).
  Result<Flow> run_pages(const skills::SkillDef& skill, Job& job, const nlohmann::json& schema);
  Result<Flow> finish_attempt(const skills::SkillDef& skill, Job& job);

  // The walk (engine.cpp).
  Result<Flow> run_skill(const skills::SkillDef& skill, const std::vector<Context>& contexts);
  Result<std::vector<Context>> entity_contexts();
  Result<void> refresh_scenes();
  /// How a pass of the walk (a phase, for its contexts) ended.
  enum class PassEnd {
    done,         ///< its work is done, or waits, or is held by a stop the plan now knows
    whole_stop,   ///< a stop that holds the whole project: the walk ends (exit 3)
    restart,      ///< an upstream artifact was revised: the walk starts again
    interrupted,  ///< the user asked to stop, or the run failed
  };
  /// The end of the pass just run, from how it ended. A stop confined to a scene is handed to the
  /// plan: the rest of the walk goes on (Engine::run ends the run with exit 3 while any stop is open).
  PassEnd end_pass(Flow flow);
  /// The open stops of the record as the Plan reads them.
  std::vector<PlanStop> open_plan_stops() const;
  /// The graph step a stop raised now by `skill` in `context` is raised at: the context's step,
  /// else the skill's step in the phase being walked, else that phase's last step (an on-demand
  /// skill inside its waves), else the skill's first step.
  std::string graph_step_of(const std::string& skill, const Context& context) const;
  /// The plan made again when the scenes or the open stops changed under it.
  void sync_plan();
  /// Whether the plan lets `step` run for `context`; when a stop holds it, says so once per scene.
  Result<bool> may_run(const std::string& step, const Context& context);
  Result<PassEnd> run_phase(const skills::Phase& phase, const std::vector<Context>& contexts);
  /// One walk of the graph: done when it reached its end or `--until`, else what ended it early.
  Result<PassEnd> walk(const skills::StageGraph& graph);

  // Built-in steps and production (production.cpp).
  Result<gates::Outputs> run_builtin(const skills::SkillDef& skill, Job& job);
  Result<Flow> produce(const skills::Phase& phase, const std::string& scene);
  /// The identity of a shot's render: the digest of its GenPack's inputs other than the packager's
  /// feedback inputs. `parts` gets them, kind -> the first 16 hex digits of the content hash; `gathered`
  /// what was gathered.
  Result<std::string> render_identity(const skills::SkillDef& packager, const Context& ctx, nlohmann::json* parts,
                                      Gathered* gathered);
  /// The graded attempts of `key` ("S01_SH02/proxy") made from the render identity `identity`.
  std::vector<nlohmann::json> attempts_from(const std::string& key, const std::string& identity);
  /// The last of them, or nullopt: what shot_done reads (decoded from the newest back to it).
  std::optional<nlohmann::json> last_attempt_from(const std::string& key, const std::string& identity) const;
  /// Whether `key` needs no more attempts from `identity`: its last attempt from it passed QC
  /// (`grader`'s), or a person accepted a render made from it (`avps override --accept`).
  bool shot_done(const skills::SkillDef& grader, const std::string& key, const std::string& identity);
  /// What escalating a shot's generation (SHOTLIST `row`) from tier `from` to `to` costs, and
  /// budget-gates' word on it (skills.md 2.22: premium only with documented cost): one attempt's
  /// worst case at each tier, the delta over the next round's `attempts`, and "refused" with why
  /// when that round at `to` would pass a cap in force (project, the scene's, the shot's) or no
  /// model of `to` can render it. The body of the budget.escalation event.
  Result<nlohmann::json> escalation_cost(const nlohmann::json& row, const std::string& resolution,
                                         const std::string& from, const std::string& to, int attempts,
                                         const std::string& scene, const std::string& shot);
  /// A budget-gates FAIL of a cap's projection in a cost loop (`judge`'s `failed` job): the router
  /// applies the one-tier-down suggestions of the scene's latest COST_REPORT (for the shots a shot
  /// cap names, else for every shot of the scene), logged as a `route.rerouted` event with a RUN_LOG
  /// row, writes the next ROUTING_DECISION and the optimizer re-projects the scene. true when the
  /// check is owed a re-check: re-routed now, or an interrupted run decided it for this very failed
  /// step. At most once per cost loop (loop and graph step) and run; false with nothing written
  /// when no suggestion applies, so the loop policy goes on (a simpler shot list).
  struct Reroute {
    bool rerouted = false;    ///< the check is owed a re-check
    Flow flow = Flow::go_on;  ///< how the router's and optimizer's steps ended
  };
  Result<Reroute> reroute_for_budget(const skills::SkillDef& judge, Job& failed);
  /// Cost loops re-routed in this run ("<loop>|<graph step>").
  std::set<std::string> rerouted_loops;
  /// Engine::stale_shots.
  Result<std::vector<StaleShot>> stale_shots();
  Result<Flow> render_storyboards(const skills::SkillDef& reviewer, const std::vector<Context>& shots,
                                  const std::string& pixels);
  /// Fires the stage graph's cross-loop triggers due in `scene` (triggers.hpp, due_triggers, from
  /// the scene's QC_BATCH versions and the trigger.fired events): each a trigger.fired event with
  /// its RUN_LOG row, then one forced run of the trigger's skill for the scene or entity.
  /// Flow::restart when that run changed an artifact (its readers, down to the renders, follow).
  Result<Flow> fire_triggers(const std::string& scene);
};

}  // namespace avps::engine
