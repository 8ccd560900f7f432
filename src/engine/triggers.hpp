#pragma once
// Cross-loop triggers (policies/stage_graph.json `triggers`, spec skills.md §1): which of them are
// due in a scene, decided from the record alone — the violations the scene's QC_BATCH versions
// hold, what each shot shows, and the trigger.fired events so far. Pure functions: no ledger, no
// engine; the engine's production waves (production.cpp) fire what due_triggers() returns.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avps/skills/stage_graph.hpp"

namespace avps::engine {

/// One violation of a graded attempt that did not pass, as a QC_BATCH of the scene recorded it.
struct QcFinding {
  std::string shot_id;
  std::string resolution;  ///< proxy, final
  int attempt = 0;
  std::string rule;
  std::string description;
  std::string batch;  ///< the QC_BATCH that holds it
};

/// What a shot shows, by entity class: shot id -> "character" | "set" | "voice" -> entity ids.
using ShownEntities = std::map<std::string, std::map<std::string, std::vector<std::string>>>;

/// A trigger due: run `trigger->skill` for `key` (the scene, or the entity of class `scope_class`).
struct TriggerFiring {
  const skills::Trigger* trigger = nullptr;
  std::string scope_class;  ///< "scene", or the entity class: character, set, voice
  std::string key;          ///< the scene id or the entity id
  int count = 0;            ///< shots counted for `key`
  /// The latest counted finding: {shot_id, resolution, attempt, rule, description, qc_batch, id}
  /// where id = "<shot>/<resolution>#<attempt>" names the cause.
  nlohmann::json cause;
  nlohmann::json findings = nlohmann::json::array();  ///< every counted description, oldest first
  std::vector<std::string> shots;                     ///< the shots counted, sorted
};

/// The entities of `entity_class` that `finding` concerns: those its shot shows that its
/// description names by id (whole-word); when the description names no entity the shot shows
/// (of any class), the shot's only entity of that class, if it has exactly one.
std::vector<std::string> concerned_entities(const QcFinding& finding, const std::string& entity_class,
                                            const ShownEntities& shown);

/// The triggers due in a scene, in the order of `triggers`, then by key. A trigger counts, per
/// key, the distinct shots with a failed attempt among `findings` with a violation of one of its
/// rules concerning that key, leaving out the shots an earlier firing of the same trigger and key
/// counted (its trigger.fired body's "shots"): one shot that keeps failing is the regen policy's
/// to answer, the same finding in new shots points at what they share. It is due for a key once
/// that count reaches after_failed_shots and no body in `fired` (each with its event's "run_id")
/// has the same trigger and key in run `run_id`: at most once per scope and run, never twice for
/// one cause, and a run resumed after a kill does not answer again what the killed one answered.
/// `entity_class` gives the entity class of each entity trigger's skill (its scope).
std::vector<TriggerFiring> due_triggers(const std::vector<skills::Trigger>& triggers,
                                        const std::map<std::string, std::string>& entity_class,
                                        const std::string& scene, const std::vector<QcFinding>& findings,
                                        const ShownEntities& shown, const std::vector<nlohmann::json>& fired,
                                        const std::string& run_id);

}  // namespace avps::engine
