#include "avps/governance/router.hpp"

#include <algorithm>

namespace avps::governance {

std::string_view resolution_name(Resolution resolution) {
  switch (resolution) {
    case Resolution::proxy: return "proxy";
    case Resolution::final: return "final";
  }
  return "proxy";
}

Task Task::model_call(std::string skill, std::string tier, Output output, ImageInput image_input,
                      int64_t input_tokens, int64_t max_output_tokens) {
  Task task;
  task.skill = std::move(skill);
  task.tier = std::move(tier);
  task.output = output;
  task.image_input = image_input;
  task.input_tokens = input_tokens;
  task.max_output_tokens = max_output_tokens;
  return task;
}

Task Task::generation(std::string hero_tier, Resolution resolution, std::string final_pixels,
                      int64_t duration_ms) {
  Task task;
  task.skill = "generate";
  task.output = Output::video;
  task.hero_tier = std::move(hero_tier);
  task.resolution = resolution;
  task.final_pixels = std::move(final_pixels);
  task.duration_ms = duration_ms;
  return task;
}

Result<Task> Task::for_skill(const skills::SkillDef& skill, int64_t input_tokens) {
  if (skill.executor != skills::Executor::model || !skill.tier) {
    return make_error(ErrorCode::invalid_argument,
                      "skill " + skill.name + " is built in: it makes no model call to route");
  }
  bool structured = std::any_of(skill.outputs.begin(), skill.outputs.end(),
                                [](const skills::SkillOutput& o) { return !o.schema.empty(); });
  bool reads_media = std::any_of(skill.inputs.begin(), skill.inputs.end(),
                                 [](const skills::SkillInput& i) { return i.kind == "MEDIA"; });
  return model_call(skill.name, skill.tier->default_tier, structured ? Output::structured : Output::text,
                    reads_media ? ImageInput::required : ImageInput::none, input_tokens,
                    skill.max_output_tokens);
}

namespace {

bool is_generation(const Task& task) { return task.output == Output::image || task.output == Output::video; }

// What the task needs that the model lacks; empty when it has everything.
std::string missing_capability(const Model& model, const Task& task) {
  const Capabilities& caps = model.capabilities;
  switch (task.output) {
    case Output::text:
      if (!caps.text) {
        return "no text output";
      }
      break;
    case Output::structured:
      if (!caps.text || !caps.json_schema) {
        return "no json_schema (structured output)";
      }
      break;
    case Output::image:
      if (!caps.image_out) {
        return "no image_out";
      }
      break;
    case Output::video:
      if (!caps.video_out) {
        return "no video_out";
      }
      break;
  }
  if (task.image_input == ImageInput::required && !caps.vision) {
    return "no vision (image input)";
  }
  if (!is_generation(task) && caps.context_tokens < task.input_tokens + task.max_output_tokens) {
    return "context " + std::to_string(caps.context_tokens) + " < " +
           std::to_string(task.input_tokens + task.max_output_tokens) + " tokens";
  }
  return {};
}

Result<void> check_task(const Task& task, const std::string& tier) {
  if (is_generation(task)) {
    if (!is_generation_tier(tier)) {
      return make_error(ErrorCode::invalid_argument,
                        "a generation routes in gen_premium, gen_mid or gen_low, not \"" + tier + "\"");
    }
    if (task.output == Output::video) {
      AVPS_TRY(pixel_count(task.final_pixels));
      if (task.duration_ms <= 0) {
        return make_error(ErrorCode::invalid_argument, "a video generation needs a duration > 0");
      }
    }
    if (task.output == Output::image && task.images <= 0) {
      return make_error(ErrorCode::invalid_argument, "an image generation needs at least one image");
    }
    return ok();
  }
  if (!is_text_tier(tier)) {
    return make_error(
        ErrorCode::invalid_argument,
        "model call of " + task.skill + " routes in t1, t2, t3, vision or research, not \"" + tier + "\"");
  }
  if (task.input_tokens < 0 || task.max_output_tokens <= 0) {
    return make_error(ErrorCode::invalid_argument,
                      "model call of " + task.skill + " needs input tokens >= 0 and max output tokens > 0");
  }
  return ok();
}

// One priced candidate: `rank` orders candidates (lower is better), `route` is the answer if chosen.
struct Candidate {
  int64_t rank = 0;
  int index = 0;
  Route route;
};

Result<Candidate> price_candidate(const Model& model, const Task& task, const std::string& tier) {
  Candidate c;
  c.index = model.index;
  c.route.model = model.id;
  c.route.backend = model.backend;
  c.route.tier = tier;
  switch (task.output) {
    case Output::text:
    case Output::structured: {
      AVPS_TRY_ASSIGN(c.route.output_tokens,
                      clamp_output_tokens(model, task.input_tokens, task.max_output_tokens));
      AVPS_TRY_ASSIGN(c.route.worst_case_micro_usd,
                      token_cost(model, task.input_tokens, c.route.output_tokens));
      c.rank = c.route.worst_case_micro_usd;
      break;
    }
    case Output::image: {
      AVPS_TRY_ASSIGN(c.route.worst_case_micro_usd, image_cost(model, task.images));
      c.rank = c.route.worst_case_micro_usd;
      break;
    }
    case Output::video: {
      // Chosen by the final price so proxy and final of a shot come from one model.
      AVPS_TRY_ASSIGN(VideoPrice final_price, final_video_price(model, task.final_pixels));
      VideoPrice price = final_price;
      if (task.resolution == Resolution::proxy) {
        AVPS_TRY_ASSIGN(price, proxy_video_price(model));
      }
      c.route.resolution = price.resolution;
      c.route.per_second_micro_usd = price.per_second_micro_usd;
      AVPS_TRY_ASSIGN(c.route.worst_case_micro_usd, video_cost(price, task.duration_ms));
      c.rank = final_price.per_second_micro_usd;
      break;
    }
  }
  return c;
}

std::string describe_needs(const Task& task) {
  std::string needs;
  switch (task.output) {
    case Output::text: needs = "text"; break;
    case Output::structured: needs = "json_schema"; break;
    case Output::image: needs = "image_out"; break;
    case Output::video: needs = "video_out at " + task.final_pixels + " final"; break;
  }
  if (task.image_input == ImageInput::required) {
    needs += ", vision";
  }
  if (!is_generation(task)) {
    needs += ", " + std::to_string(task.input_tokens + task.max_output_tokens) + " tokens";
  }
  return needs;
}

std::string list_rejections(const std::vector<Rejection>& rejected) {
  std::string out;
  for (const Rejection& r : rejected) {
    out += "\n  " + r.model + ": " + r.reason;
  }
  return out;
}

}  // namespace

Router::Router(ModelsFile models) : m_models(std::move(models)) {}

Result<std::string> Router::tier_of(const Task& task) const {
  if (!task.tier.empty()) {
    return task.tier;
  }
  if (is_generation(task)) {
    return generation_tier_for(task.hero_tier);
  }
  return make_error(ErrorCode::invalid_argument, "model call of " + task.skill + " names no tier");
}

Result<Route> Router::select(const Task& task, const std::set<std::string>& excluded) const {
  AVPS_TRY_ASSIGN(std::string tier, tier_of(task));
  AVPS_TRY(check_task(task, tier));

  std::optional<Candidate> best;
  std::vector<Rejection> rejected;
  int capable = 0;
  for (const Model* model : m_models.in_tier(tier)) {
    if (excluded.count(model->id) != 0) {
      rejected.push_back({model->id, "failed (excluded from this task)"});
      continue;
    }
    if (std::string missing = missing_capability(*model, task); !missing.empty()) {
      rejected.push_back({model->id, missing});
      continue;
    }
    Result<Candidate> candidate = price_candidate(*model, task, tier);
    if (!candidate) {
      // Unpriced for what this task needs: it cannot be reserved for, so it is never chosen.
      rejected.push_back({model->id, candidate.error().message});
      continue;
    }
    ++capable;
    if (!best || candidate->rank < best->rank ||
        (candidate->rank == best->rank && candidate->index < best->index)) {
      if (best) {
        rejected.push_back(
            {best->route.model, "costs more (" + format_usd(best->route.worst_case_micro_usd) + ")"});
      }
      best = std::move(candidate).value();
    } else {
      rejected.push_back(
          {model->id, "costs more (" + format_usd(candidate->route.worst_case_micro_usd) + ")"});
    }
  }

  std::string subject = "tier " + tier + " for " + task.skill + " (needs " + describe_needs(task) + ")";
  if (!best) {
    if (!excluded.empty()) {
      return make_error(
          ErrorCode::backend_unavailable,
          "no model of " + subject +
              " is left to fall back to; avps never falls back to another tier:" + list_rejections(rejected));
    }
    return make_error(
        ErrorCode::configuration,
        "no model of " + subject + " in the models file " + m_models.source() + ":" +
            (rejected.empty() ? std::string("\n  the tier has no models") : list_rejections(rejected)));
  }

  // Keep the rejections in file order, whatever order the comparison produced them in.
  std::sort(rejected.begin(), rejected.end(), [this](const Rejection& a, const Rejection& b) {
    return m_models.find(a.model)->index < m_models.find(b.model)->index;
  });
  Route route = std::move(best->route);
  route.rejected = std::move(rejected);
  route.reason = std::string(excluded.empty() ? "cheapest" : "fallback within the tier: cheapest remaining") +
                 " of " + std::to_string(capable) + " capable priced model" + (capable == 1 ? "" : "s") +
                 " in " + subject + "; worst case " + format_usd(route.worst_case_micro_usd);
  return route;
}

Result<Route> Router::route(const Task& task) const { return select(task, {}); }

Result<Route> Router::fallback(const Task& task, const std::set<std::string>& excluded) const {
  return select(task, excluded);
}

Result<std::optional<std::string>> escalate(const skills::TierPolicy& policy, std::string_view current_tier,
                                            int escalations_used) {
  std::vector<std::string> ladder = {policy.default_tier};
  ladder.insert(ladder.end(), policy.escalation.begin(), policy.escalation.end());
  auto at = std::find(ladder.begin(), ladder.end(), current_tier);
  if (at == ladder.end()) {
    return make_error(ErrorCode::invalid_argument,
                      "tier \"" + std::string(current_tier) + "\" is not on the skill's escalation ladder");
  }
  if (escalations_used >= policy.max_escalations || at + 1 == ladder.end()) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(*(at + 1));
}

Result<std::optional<EscalationStep>> plan_escalation(const Router& router, const skills::TierPolicy& policy,
                                                      const Task& task, int escalations_used) {
  AVPS_TRY_ASSIGN(std::string current, router.tier_of(task));
  AVPS_TRY_ASSIGN(std::optional<std::string> next, escalate(policy, current, escalations_used));
  if (!next) {
    return std::optional<EscalationStep>();
  }
  EscalationStep step;
  step.from_tier = current;
  step.to_tier = *next;
  AVPS_TRY_ASSIGN(step.from, router.route(task));
  Task up = task;
  up.tier = *next;
  AVPS_TRY_ASSIGN(step.to, router.route(up));
  step.cost_delta_micro_usd = step.to.worst_case_micro_usd - step.from.worst_case_micro_usd;
  return std::optional<EscalationStep>(std::move(step));
}

}  // namespace avps::governance
