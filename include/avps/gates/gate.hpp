#pragma once
// Gates are code (DESIGN §1.2): a model supplies scores and findings; avps computes the verdict
// from the skill definition's declarative rules and its named built-in checks. A model's own
// "verdict" field is never trusted.
//
// Verdicts order by severity: PASS < WARN < FIX < FAIL < STOP; a gate's verdict is the worst of
// its findings (PASS when there are none).

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"

namespace avps::gates {

enum class Verdict { pass, warn, fix, fail, stop };

std::string_view verdict_name(Verdict verdict);  ///< "PASS", "WARN", "FIX", "FAIL", "STOP"
[[nodiscard]] Result<Verdict> parse_verdict(std::string_view text);
Verdict worst(Verdict a, Verdict b);

/// One rule or check that did not hold.
struct Finding {
  Verdict verdict = Verdict::fail;
  std::string reason;  ///< names the entity, field or row concerned
};

/// What checks may read besides the output under test: the merged project configuration and
/// recorded artifacts. The engine implements it over the ledger and store; tests use fakes.
/// Checks take it as the record *before* the output under test is committed: in particular
/// world_state_continuity applies the STATE_DIFF to the latest WORLD_STATE, so the applied state
/// a run writes must not be visible here yet.
class GateContext {
 public:
  virtual ~GateContext() = default;
  /// The merged, validated project configuration (thresholds, regen limits, quotas).
  virtual const nlohmann::json& config() const = 0;
  /// Canonical JSON of the latest recorded artifact of kind/target ("" target for singletons);
  /// nullopt when there is none.
  virtual Result<std::optional<nlohmann::json>> latest(std::string_view kind, std::string_view target) const = 0;
  /// latest(), shared instead of copied; null when there is none. For a check that reads many
  /// artifacts at every step (every scene's SHOTLIST for the premium quota): a copy of each would
  /// grow the cost of a step with the project. The default copies latest()'s answer once; a
  /// context that keeps parsed contents (the engine's) hands out its own, which nobody changes.
  virtual Result<std::shared_ptr<const nlohmann::json>> latest_shared(std::string_view kind,
                                                                     std::string_view target) const;
  /// A number that moves whenever the latest version of any target of `kind` changes, as this
  /// context reads the record, and means the same for every context that hands out the same
  /// contents (latest_shared): a check that reads every target of a kind at every step (the
  /// premium quota: every scene's SHOTLIST) may keep what it made of them under it, with those
  /// contents. nullopt (the default): nothing may be kept.
  virtual Result<std::optional<int64_t>> kind_generation(std::string_view kind) const;
  /// The face (file text) and file name of that latest artifact, for verbatim checks.
  struct Face {
    std::string name;
    std::string text;
  };
  virtual Result<std::optional<Face>> latest_face(std::string_view kind, std::string_view target) const = 0;
};

/// The gate object every artifact's JSON carries: {verdict, scores, reasons}.
struct GateResult {
  Verdict verdict = Verdict::pass;
  nlohmann::json scores = nlohmann::json::object();  ///< the numbers the verdict came from
  std::vector<std::string> reasons;                  ///< one per finding, worst first
  /// Named checks of the skill that evaluate_gate did not run because they need the engine's
  /// records (see engine_check_names()); the engine runs them and folds their findings in.
  /// Not part of to_json().
  std::vector<std::string> deferred_checks;
  nlohmann::json to_json() const;
};

/// A named built-in check, as listed in schemas/skill.schema.json. `params` is the skill's
/// gate.params (thresholds already resolved against the configuration).
using Check = std::function<Result<std::vector<Finding>>(const nlohmann::json& output, const nlohmann::json& params,
                                                         const GateContext& context)>;
/// The built-in check of that name, or nullptr.
const Check* find_check(std::string_view name);
/// Whether a built-in check's findings depend only on the output, its params and the artifacts
/// recorded before it, so that `avps gate` can recompute them from the record. False for the
/// checks that read the budget as it stood (caps, overrides, the routing table), for the engine's
/// checks and for unknown names.
bool check_recomputable(std::string_view name);
/// Every name find_check knows.
std::vector<std::string> check_names();
/// Check names of schemas/skill.schema.json that need the engine's records (attempt history,
/// analyzer runs, the run log), which a GateContext does not give: genpack_changed_on_regen,
/// regen_limit_with_analyzer, run_log_complete. find_check returns nullptr for them and
/// evaluate_gate defers them (GateResult::deferred_checks).
const std::vector<std::string>& engine_check_names();

/// Every output of one run, by kind ("BEATS", "SCENES"). Skills with several outputs
/// (story-architect, world-state-tracker) are gated on all of them at once.
using Outputs = std::map<std::string, nlohmann::json, std::less<>>;

/// Evaluates a skill's gate (its declarative rules, then its named checks) on an output that
/// already validated against its schema. Errors are for broken definitions (unknown check, a
/// min/max rule on a field that is not a number, a config reference that resolves to nothing, a
/// missing check parameter, an output kind the rules or checks read that was not given) and
/// context failures, never for a failing output.
///
/// Rules read the output kind they name (default: the skill's first output with a schema); each
/// check reads the kind it is written for (lock_hedge_words: the skill's first output). Thresholds
/// written as {"config": pointer, "default": value} are resolved against context.config(); the
/// numbers a rule compared, and every resolved config reference, are recorded in `scores` under
/// their pointer without the leading "/" and with "." for "/" ("total_score", "thresholds.plaus_total"). A rule pointer
/// that resolves to nothing violates the rule (a score the model did not give cannot pass).
/// `output` is taken as the output of the kind its "kind" member names when that is one of the
/// skill's outputs, else as the skill's first output with a schema.
[[nodiscard]] Result<GateResult> evaluate_gate(const nlohmann::json& skill_definition, const nlohmann::json& output,
                                               const GateContext& context);
/// The same over several outputs of one run. A rule or check that reads a kind missing from
/// `outputs` is an error.
[[nodiscard]] Result<GateResult> evaluate_gate_outputs(const nlohmann::json& skill_definition,
                                                       const Outputs& outputs, const GateContext& context);

/// Where a QC_BATCH row holds the grader's own verdict.
enum class QcClaim {
  in_verdict,        ///< a grader's answer: its `verdict` is the claim (the engine, recording a wave)
  in_model_verdict,  ///< a face of layout 2 (an import): `model_verdict` is the claim, `verdict` is avps's
};

/// A grader's QC_BATCH answer as the wave's batch can show it: a violation filed under a shot and
/// attempt that none of the answer's rows grades is this answer's (its gate fails it for that), so
/// it is moved to the answer's first row, its description saying where it was filed ("(filed under
/// S01_SH03 attempt 2) ..."). An answer without rows keeps its violations as they are. Every other
/// violation is left alone. The face of a batch can then render every violation (faces.md).
void file_violations_under_rows(nlohmann::json& answer);

/// Makes a QC_BATCH say what avps decided (docs/formats/faces.md, QC_BATCH layout 2): each row's
/// `verdict` becomes the verdict qc_verdict_from_scores gives it (the skill's thresholds resolved
/// against context.config()), and `model_verdict` the grader's claim (taken from `verdict` for
/// QcClaim::in_verdict; kept as given, "" when absent, for in_model_verdict). Violations are put in
/// the order of the rows they concern, as the face lists them. Returns one line per row whose
/// `verdict` it changed ("S01_SH02 attempt 1: PASS -> FAIL"), so that a face's claim that avps
/// does not honour is said, not silently replaced. Errors as evaluate_gate's.
[[nodiscard]] Result<std::vector<std::string>> stamp_qc_verdicts(const nlohmann::json& skill_definition,
                                                                 nlohmann::json& batch, const GateContext& context,
                                                                 QcClaim claim);

}  // namespace avps::gates
