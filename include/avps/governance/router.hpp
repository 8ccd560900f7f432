#pragma once
// The tier router (model-router's mechanics, DESIGN §3): which model serves a task.
//
// Rules:
//   - A task names its tier: a model skill's tier (t1 t2 t3 vision research), or for a generation
//     the hero tier's (A -> gen_premium, B -> gen_mid, C -> gen_low) unless the task overrides it.
//   - route() picks, within that tier only, the cheapest model that has every capability the task
//     needs: text, json_schema for structured output, vision for image input, image_out /
//     video_out for generation, and a context holding input + max output tokens. "Cheapest" is
//     the worst-case cost of this very task; ties go to the model listed first in the models
//     file, so routing is deterministic.
//   - A model without the price this task needs is never chosen (it cannot be reserved for); it
//     is listed among the rejected with the reason, like every other rejected model.
//   - A generation model is chosen by its final-resolution price, so one model renders a shot's
//     proxy and its final; a proxy is priced at that model's lowest listed resolution.
//   - fallback() after a failed backend goes to the next model of the SAME tier, never up. When
//     the tier is exhausted it is an error (backend_unavailable): escalation is a separate,
//     logged decision (escalate()), never a side effect of an outage.
//
// The router holds no state between calls and reads no clock: the same models file and task give
// the same route.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "avps/core/result.hpp"
#include "avps/governance/models.hpp"
#include "avps/governance/pricing.hpp"
#include "avps/skills/skill_def.hpp"

namespace avps::governance {

/// What the task must produce. (Not `json` for structured output: in a unity batch that name is
/// already nlohmann::json's, declared by the file before.)
enum class Output {
  text,        ///< free text
  structured,  ///< validated by a JSON Schema: needs json_schema
  image,       ///< an image (storyboard frame): needs image_out, priced per image
  video,       ///< a video render: needs video_out, priced per second at a resolution
};

/// Whether the task sends images or frames to the model.
enum class ImageInput { none, required };

/// Proxy or final render of a generation.
enum class Resolution { proxy, final };
std::string_view resolution_name(Resolution resolution);  ///< "proxy", "final"

/// One unit of work to route. Build it with model_call() or generation().
struct Task {
  std::string skill;  ///< a skill name, or "generate" for a render
  std::string tier;   ///< required tier; for a generation empty means "from hero_tier"
  Output output = Output::structured;
  ImageInput image_input = ImageInput::none;
  int64_t input_tokens = 0;       ///< model calls: the request's input tokens (estimate or count)
  int64_t max_output_tokens = 0;  ///< model calls: what the call may produce
  std::string hero_tier;          ///< generations: A, B or C
  Resolution resolution = Resolution::proxy;
  std::string final_pixels;  ///< generations: the final resolution ("1920x1080"); picks the model
  int64_t duration_ms = 0;   ///< video generations
  int64_t images = 1;        ///< image generations

  static Task model_call(std::string skill, std::string tier, Output output, ImageInput image_input,
                         int64_t input_tokens, int64_t max_output_tokens);
  static Task generation(std::string hero_tier, Resolution resolution, std::string final_pixels,
                         int64_t duration_ms);
  /// The call a model skill makes at its default tier: JSON when an output has a schema, vision
  /// when it reads MEDIA, max output = the skill's max_output_tokens. invalid_argument for a
  /// built-in skill.
  [[nodiscard]] static Result<Task> for_skill(const skills::SkillDef& skill, int64_t input_tokens);
};

/// A model that route() considered and did not take, and why.
struct Rejection {
  std::string model;
  std::string reason;  ///< "no vision", "context 128000 < 130000 tokens", "no price ...", "failed"
};

/// The router's answer: what to call and what it may cost at most.
struct Route {
  std::string model;
  std::string backend;
  std::string tier;
  std::string resolution;            ///< generations: the priced resolution key; empty for model calls
  int64_t per_second_micro_usd = 0;  ///< video generations: the price per second used
  int64_t output_tokens = 0;         ///< model calls: the clamped max output tokens to send
  int64_t worst_case_micro_usd = 0;  ///< what the budget governor reserves for this task
  std::string reason;                ///< one line: why this model (for the run log)
  std::vector<Rejection> rejected;   ///< models of the tier passed over, in file order
};

class Router {
 public:
  explicit Router(ModelsFile models);

  /// The cheapest capable, priced model of the task's tier. configuration error when the tier has
  /// none; the message lists each model of the tier with the reason it was passed over.
  [[nodiscard]] Result<Route> route(const Task& task) const;

  /// After the models in `excluded` failed (5xx, timeout, ...): the cheapest remaining model of the
  /// SAME tier. backend_unavailable when none is left; never another tier.
  [[nodiscard]] Result<Route> fallback(const Task& task, const std::set<std::string>& excluded) const;

  /// The tier a task routes in (hero tier mapping applied).
  [[nodiscard]] Result<std::string> tier_of(const Task& task) const;

  const ModelsFile& models() const { return m_models; }

 private:
  [[nodiscard]] Result<Route> select(const Task& task, const std::set<std::string>& excluded) const;
  ModelsFile m_models;
};

/// The next tier of a skill's escalation ladder (default, then escalation[0], ...), one step up
/// from `current_tier`, or nullopt when the ladder ends or `escalations_used` reached
/// max_escalations. invalid_argument when `current_tier` is not on the ladder. The caller logs the
/// reason and the cost delta, and budget-gates approves (DESIGN §3).
[[nodiscard]] Result<std::optional<std::string>> escalate(const skills::TierPolicy& policy,
                                                          std::string_view current_tier,
                                                          int escalations_used);

/// What one escalation step would change, for the log line and the budget approval.
struct EscalationStep {
  std::string from_tier;
  std::string to_tier;
  Route from;
  Route to;
  int64_t cost_delta_micro_usd = 0;  ///< to.worst_case − from.worst_case (may be negative)
};
/// escalate() applied to `task` (whose tier is the current one) and both tiers routed.
/// nullopt when there is no step left.
[[nodiscard]] Result<std::optional<EscalationStep>> plan_escalation(const Router& router,
                                                                    const skills::TierPolicy& policy,
                                                                    const Task& task, int escalations_used);

}  // namespace avps::governance
