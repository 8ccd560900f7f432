#pragma once
// The sim backend: avps's embedded default (DESIGN §4). It answers every model skill in-process,
// without keys or network, with schema-valid, coherent JSON derived from the brief and the
// request's inputs: a shipped skill by its own generator, any other (a project's) from the
// request's output schema, filled from its scope and inputs (src/backends/sim/generic.cpp); it
// renders a small real image per generation; it reports token usage so costs flow; and it can be
// told to fail skills at configured rates so every loop and hard stop can be exercised. It is also
// the user's dry run.
//
// Guarantees:
//   - Deterministic. Every choice comes from a PRNG seeded by
//     sha256("avps-sim" ‖ seed ‖ canonical request JSON): no clock, no global state. The same
//     request gives the same bytes, in any process, on any thread; a different seed, or a
//     different request (a revision carries the failed gate's findings), draws again. A revision
//     changes what its findings name (SimSettings::identical_revisions).
//   - Thread-safe: complete() and generate() only read the settings given at construction.
//   - Valid. complete()'s text validates against request.output_schema: the artifact JSON of the
//     skill's output kind, or, when output_schema maps several kinds to schemas
//     ({"BEATS": {...}, "SCENES": {...}}), an object with one artifact per kind. A qc-grader
//     request whose schema is a single QC row (no "rows" property) gets that row.
//   - Coherent. Ids come from the brief and the inputs (scenes S01.., shots S01_SH01..,
//     entities via artifacts::normalize_entity_id of the brief's display names); locks carry no
//     hedge words; a STATE_DIFF is continuity-clean against the WORLD_STATE it receives (checked
//     with builtins::check_world_state_continuity); gate objects carry the verdict the scores
//     imply (avps recomputes it anyway).
//   - A skill without a generator fails the call (invalid_argument) when its schema has a field no
//     value can validly fill (a pattern nothing of the inputs matches), naming the field; and
//     (unsupported) when the request has no output schema. Never an answer its schema refuses.
//   - Failure injection trips the real gate, never the schema (shipped skills only): with probability
//     failure_rates[skill] the output is valid but fails that skill's gate rules or checks (the
//     per-skill table is in src/backends/sim_backend.cpp). Rate 1.0 fails every time; the
//     default is 0 for every skill.
//   - Usage: input_tokens = ceil(bytes of the canonical request / 4), output_tokens =
//     ceil(bytes of the text / 4). When request.max_output_tokens > 0 the text is cut at
//     4 × max_output_tokens bytes, as a real model truncates, so usage never exceeds what the
//     budget governor reserved.

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "avps/backends/backend.hpp"
#include "avps/core/result.hpp"

namespace avps::backends {

/// The project's `sim` configuration block (schemas/project.schema.json), plus the project
/// thresholds the sim aims its scores at (so a passing output passes the project's own gates).
struct SimSettings {
  int64_t latency_ms = 0;  ///< slept once per complete() / generate() call
  int min_shots_per_scene = 0;  ///< shot-planner's floor (extra coverage); 0 = its own 2 to 5
  /// What a proxy or final render is: "auto" (a short MP4 made with ffmpeg where it is installed,
  /// else a PNG frame), "video" (MP4; fails the call without ffmpeg), "image" (PNG). Storyboard
  /// frames are always PNG.
  std::string media = "auto";
  /// By skill name: probability 0..1 that the output fails the skill's gate.
  std::map<std::string, double, std::less<>> failure_rates;
  /// By skill name: probability 0..1 that an output that did not fail lands on the skill's FIX
  /// outcome instead of PASS (qc-grader: a total just below the tier threshold; storyboard-generator:
  /// Adjust). Ignored for skills without a FIX outcome.
  std::map<std::string, double, std::less<>> fix_rates;
  /// By generation tier (gen_premium, gen_mid, gen_low): probability that an attempt rendered at
  /// that tier fails QC. Overrides failure_rates["qc-grader"] for qc-grader calls whose GENPACK
  /// names the tier in settings.tier, so an escalated render can be made more reliable.
  std::map<std::string, double, std::less<>> media_failure_rates;
  /// By shot id or scene id (the shot's entry first): the rule of the violation a failing
  /// qc-grader answer about that shot carries (lock_violation, world_state_contradiction,
  /// facial_identity_drift). Without one: facial_identity_drift of the first character in frame,
  /// else lock_violation of the set. Each names the entity it concerns by id in its description.
  std::map<std::string, std::string, std::less<>> qc_violations;
  /// Off (the default): a revision (a request carrying a failed gate's findings) changes what the
  /// findings name: a SHOTLIST row of a shot they name is simplified (complexity one step down,
  /// one second shorter, never under 2 s), and the prose member they name most (else the first)
  /// says which revision it is, so no two revisions of an artifact are the same. On: a revision
  /// is answered as if it carried no findings — the same content as before, unless the injected
  /// failure strikes differently (what a model that ignores its feedback does) — to test that avps
  /// refuses a revision that changes nothing.
  bool identical_revisions = false;
  /// The project's `thresholds` object (plaus_total, culture_authenticity, audience_clarity,
  /// audience_engagement, dialogue_distinctiveness, qc.A/B/C); the shipped defaults where absent.
  nlohmann::json thresholds = nlohmann::json::object();

  /// Reads a `sim` block: {"latency_ms": int >= 0, "min_shots_per_scene": 0..12, "media": "auto" |
  /// "video" | "image", "failure_rates": {skill: 0..1},
  /// "fix_rates": {skill: 0..1}, "media_failure_rates": {gen tier: 0..1},
  /// "qc_violations": {shot or scene id: rule}, "identical_revisions": bool}; every key optional,
  /// null = {}. Unknown keys and out-of-range values are refused (invalid_argument) naming the key.
  [[nodiscard]] static Result<SimSettings> from_json(const nlohmann::json& sim_block);
};

class SimBackend : public Backend {
 public:
  /// `seed` is the project's seed (avps.json "seed").
  SimBackend(SimSettings settings, uint64_t seed);

  /// From a merged, validated project configuration: its "sim" block, "seed" and "thresholds".
  [[nodiscard]] static Result<std::unique_ptr<SimBackend>> from_config(const nlohmann::json& config);

  /// Failures (none retryable): unsupported for a skill the sim does not know (a builtin, or a
  /// project's own skill); invalid_argument for a request that has no canonical form, or whose
  /// inputs have a shape no artifact has (a list where a table belongs). Never throws.
  [[nodiscard]] Result<ModelResponse> complete(const ModelRequest& request) const;
  /// A PNG of request.pixels scaled down to fit 64×64 (aspect kept), coloured from the shot id
  /// and attempt; seconds_billed = duration_s. invalid_argument when pixels is not "<w>x<h>".
  [[nodiscard]] Result<GenerationResult> generate(const GenerationRequest& request) const;

  /// complete() / generate(), answered at once (the sim gives no tickets).
  [[nodiscard]] Result<Submitted<ModelResponse>> submit_model(const ModelRequest& request, CallTrace& trace) override;
  [[nodiscard]] Result<Submitted<GenerationResult>> submit_generation(const GenerationRequest& request,
                                                                      CallTrace& trace) override;

  const SimSettings& settings() const { return m_settings; }
  uint64_t seed() const { return m_seed; }

  /// The skills complete() answers: every `executor: model` skill shipped in skills/.
  static const std::vector<std::string>& supported_skills();

 private:
  SimSettings m_settings;
  uint64_t m_seed;
};

}  // namespace avps::backends
