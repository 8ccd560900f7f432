#pragma once
// The read model of a project: where the production stands, per scene and shot, read from the
// ledger alone (one snapshot: the events up to one sequence number). `avps status`, `avps report`
// and `avps report --json` all read this one model, so they cannot disagree; the engine's rules it
// needs (which shots passed, which renders are stale) are the engine's own (engine::stale_shots)
// or mirror production.cpp's, documented where they are applied.
//
// Its JSON is a versioned, documented format (docs/formats/report.md) and the canonical JSON of a
// REPORT artifact, whose face is the HTML page report::render_html makes of it.
//
// Threading: read_project reads the project's ledger and objects and nothing else; a ProjectView is
// a value. Callable from any thread that owns the Project.

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/engine/fold_checkpoint.hpp"

namespace avps::project {
class Project;
}
namespace avps::skills {
struct StageGraph;
}

namespace avps::report {

/// The read model's format version (docs/formats/report.md).
inline constexpr int k_format_version = 1;

/// Verdicts from best to worst; a person's ACCEPTED counts as PASS. 0: none (or not a verdict).
int severity(const std::string& verdict);
std::string severity_name(int rank);

struct Fraction {
  int passed = 0;
  int shots = 0;
};

/// One graded attempt or render of a shot at one resolution.
struct ShotAttempt {
  std::string resolution;  ///< "proxy" or "final"
  int attempt = 0;
  std::string verdict;  ///< the QC verdict; "" for a render not graded yet
  std::vector<std::string> reasons;
  nlohmann::json scores = nlohmann::json::object();  ///< the QC_BATCH row's scores, when recorded
  std::string render;                                ///< "media/S01_SH01_proxy_a01.mp4", "" when none was recorded
  std::string render_sha256;                         ///< its recorded content hash
  std::string model;
  std::string tier;
  std::string recorded_at;  ///< the render's timestamp
  std::string wave;         ///< the QC wave that graded it ("S01/proxy#2"), "" if none or an older record
  int64_t graded_seq = 0;   ///< the step.finished that graded it last (0: not graded)
  std::string scored_from;  ///< the QC_BATCH (its name) `scores` were taken from, "" for none yet
};

struct ShotView {
  std::string shot_id;
  double planned_s = 0;               ///< the SHOTLIST's duration
  std::vector<ShotAttempt> attempts;  ///< in recording order
  bool passed_proxy = false;
  bool passed_final = false;
  std::string latest_render;  ///< the last recorded render (final over proxy)
  std::string latest_render_sha256;
  std::string passed_final_render;  ///< the render that passed at final, "" if none
  std::string storyboard;           ///< the latest STORYBOARD face
  std::string storyboard_sha256;
  std::string genpack;  ///< the latest GENPACK face
  int64_t spend_micro_usd = 0;
};

/// One phase of the stage graph, in its order: what `avps gate --require` reads.
struct PhaseView {
  std::string name;
  std::string fan_out;     ///< once, per_entity, per_scene, per_shot
  std::string resolution;  ///< the resolution a per-shot phase renders at, "" for others
  std::vector<std::string> skills;
};

/// One row of the scene table.
struct SceneView {
  std::string scene_id;
  bool in_latest_scenes = true;
  std::string phase;                             ///< the last scene phase with a recorded step, "" for none
  int validation = 0, continuity = 0, plan = 0;  ///< severity ranks of the last verdicts
  Fraction proxy, final;
  int64_t spend_micro_usd = 0;  ///< committed and reserved
  std::optional<int64_t> cap_micro_usd;
  std::vector<ShotView> shots;  ///< the latest SHOTLIST's shots, in its order
  std::map<std::string, std::string> verdicts;  ///< per-scene skill -> the verdict of its last attempt
  /// The open stop that holds the scene's work (engine::Plan), 0 for none, and the phase of the
  /// first of its steps held ("validation": the scene waits from there on).
  int64_t held_by = 0;
  std::string held_from;
};

/// One project-wide skill (narrative, locks, review): its last attempt per entity.
struct ProjectSkillView {
  std::string skill;
  /// entity ("" for once) -> what the model shows of its last step.finished body: verdict,
  /// attempt, tier, outputs, reasons (those it has)
  std::vector<std::pair<std::string, nlohmann::json>> last;
  /// Per entry of `last`: whether its verdict settles the skill's loop, by the engine's pass rule
  /// for that skill (SkillDef::settles: a FIX is no pass for a skill with an on_fix policy).
  std::vector<bool> settled;
};

/// Everything the status and the report show.
struct ProjectView {
  std::string title;
  std::vector<std::string> scene_phases;  ///< the stage graph's phases run per scene or shot, in order
  std::vector<PhaseView> phases;          ///< every phase of the stage graph, in order
  int64_t as_of_seq = 0;                  ///< the last event read: the snapshot
  std::string as_of_hash;
  std::string as_of_ts;
  /// "skill target resolution" -> its last step.finished body as ProjectSkillView::last keeps it
  std::vector<std::pair<std::string, nlohmann::json>> steps;
  std::vector<ProjectSkillView> project_skills;               ///< in the order they first ran
  std::vector<SceneView> scenes;                              ///< the latest SCENES' order, then dropped ones
  nlohmann::json hard_stops = nlohmann::json::array();
  nlohmann::json stale_shots = nlohmann::json::array();
  nlohmann::json overrides = nlohmann::json::array();
  nlohmann::json spend = nlohmann::json::object();        ///< committed, reserved, caps in force, warn_pct
  std::optional<int64_t> projected_micro_usd;             ///< budget-gates' latest projection
  nlohmann::json usage = nlohmann::json::object();        ///< calls, failed, retries, tokens, seconds rendered
  nlohmann::json spend_series = nlohmann::json::array();  ///< cumulative committed/reserved over the events
  nlohmann::json cost = nlohmann::json::object();         ///< by scene and tier, by model, top shots
  nlohmann::json loops = nlohmann::json::array();  ///< revisions, escalations, fallbacks, retries, overrides, stops
  nlohmann::json runs = nlohmann::json::array();   ///< every run: id, command, started, finished, outcome
  /// Provider jobs whose exchange.ticket is recorded and that have no exchange.response or
  /// exchange.failed yet (what an interrupted run left running), by exchange key: purpose, model,
  /// ticket, submitted, submitted_unix_ms, provider_state. Not in to_json: `avps status` shows them.
  nlohmann::json jobs_in_flight = nlohmann::json::array();
};

/// The phases of a stage graph as the model lists them (none without a graph).
std::vector<PhaseView> phases_of(const skills::StageGraph* graph);

/// Where read_project takes the fold of the record from.
enum class Folds {
  /// The writer's fold checkpoint (docs/formats/checkpoint.md) when it still matches the record
  /// (its event's hash), this avps, the skills and the configuration, then the events after it;
  /// else every event. The model is the same either way.
  checkpoint,
  /// Every event, trusting no derived state: `avps gate`, whose job is to vouch for every byte.
  record,
};

/// Reads the project's record (one read transaction: see ledger.md) into the model. Never writes.
[[nodiscard]] Result<ProjectView> read_project(project::Project& project, Folds folds = Folds::checkpoint);

/// The fold checkpoint's format version (docs/formats/checkpoint.md; the file and its rules are
/// the engine's, include/avps/engine/fold_checkpoint.hpp). Raised whenever what a fold keeps, or
/// how it folds an event, changes: a checkpoint of another version is not used.
inline constexpr int k_checkpoint_format_version = engine::k_checkpoint_format_version;
// A new read model format (k_format_version) that changes what the Book keeps raises the
// checkpoint's version too: the checkpoint's dependencies no longer list the model's format.
static_assert(k_format_version == 1, "the read model's format changed: raise engine::k_checkpoint_format_version "
                                     "if the Book's fold changed with it, then this number");

/// .avps/fold_checkpoint of a project folder.
std::filesystem::path checkpoint_path(const std::filesystem::path& project_dir);

struct CheckpointWritten {
  int64_t seq = 0;           ///< the event the checkpoint is as of (0: nothing recorded, none written)
  size_t events_folded = 0;  ///< events folded to make it (after the previous checkpoint, when it was used)
  bool from_previous = false;
  size_t bytes = 0;  ///< 0 when nothing was written (the checkpoint was as of the last event already)
  /// Not 0: the checkpoint was kept as it is, followed by this many events of runs with nothing to
  /// do (run.started and run.finished), which readers fold onto it.
  size_t kept_with_tail = 0;
};

/// The writer's side (a command that wrote the ledger, holding it read-write): the read model's
/// folds as of the last event, and the stale shots then, saved as .avps/fold_checkpoint (temp file,
/// fsync, rename), folded from the previous checkpoint and the events since when it is usable.
/// A usable checkpoint followed only by a few runs with nothing to do is kept as it is
/// (CheckpointWritten::kept_with_tail). Derived state: losing it, or a damaged one, only costs
/// readers the time of a whole fold.
[[nodiscard]] Result<CheckpointWritten> write_checkpoint(project::Project& project);

/// The model as the documented JSON (docs/formats/report.md), `format_version` k_format_version.
nlohmann::json to_json(const ProjectView& view);

/// The least advanced phase of the scenes the latest SCENES lists ("" before any), which is where
/// the production as a whole stands.
std::string phase_reached(const ProjectView& view);

}  // namespace avps::report
