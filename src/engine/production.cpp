// Built-in steps (prompt-packager, cost-optimizer, model-router, budget-gates) and production:
// per scene and resolution, waves of generation + QC, with the regen policy of DESIGN §3.
//
//   wave k renders the next attempt of every shot of the scene that has not passed QC, then grades
//   the wave (one QC_BATCH_<SCENE> version). Before an attempt: after `analyzer_after` failed
//   attempts in a round, regen-analyzer runs once; when a round's attempts (A 3, B 2, C 2) are
//   spent, the analyzer's remedy opens the next round (escalate the generation tier one step, or
//   simplify through a new shot-planner version); after max_rounds the shot is frozen: hard stop.
//   Every attempt gets a GenPack that differs from the last (the QC findings are applied), and
//   final renders start only when every shot of the scene passed at proxy.

#include <algorithm>
#include <set>
#include <string_view>

#include "avps/backends/image_output.hpp"
#include "avps/builtins/genpack.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/json_schema.hpp"
#include "avps/governance/budget_status.hpp"
#include "avps/governance/models.hpp"
#include "avps/governance/override.hpp"
#include "avps/governance/pricing.hpp"
#include "avps/governance/projection.hpp"
#include "avps/governance/routing_table.hpp"
#include "avps/ledger/events.hpp"
#include "engine_impl.hpp"
#include "triggers.hpp"

namespace avps::engine {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Per model call, for projections and allocation: the figure `avps cost` uses too.
constexpr int64_t k_input_tokens_estimate = governance::k_projection_input_tokens_per_call;

const std::vector<std::string>& generation_ladder() {
  static const std::vector<std::string> k_ladder = {"gen_low", "gen_mid", "gen_premium"};
  return k_ladder;
}

// Whether a graded attempt or a render (its step.finished shot_attempt or media.recorded body) was
// made from the render identity `identity` (Impl::render_identity). One recorded before renders
// carried their identity counts as made from any, so an older project is not rendered again.
bool made_from(const json& body, const std::string& identity) {
  const std::string inputs = body.value("inputs", "");
  return inputs.empty() || inputs == identity;
}

std::string config_text(const json& config, const char* pointer) {
  json::json_pointer p(pointer);
  return config.contains(p) && config[p].is_string() ? config[p].get<std::string>() : "";
}

// The generation tier `table` gives a shot of hero tier `hero`: a budget re-route, a premium-quota
// move, else its hero tier's row.
std::string routed_tier(const governance::RoutingTable& table, const std::string& shot, const std::string& hero) {
  for (const governance::ShotTier& s : table.shot_tiers) {
    if (s.shot_id == shot && s.hero_tier == hero) {
      return s.tier;
    }
  }
  for (const governance::Reallocation& r : table.quota_changes) {
    if (r.change.shot_id == shot) {
      return r.change.to_tier;
    }
  }
  for (const governance::RoutingRow& r : table.rows) {
    if (r.task == "generate" && r.hero_tier == hero) {
      return r.tier;
    }
  }
  return std::string("gen_low");
}

// Logs each premium-quota move of `table` the run log does not have yet: one `route.reallocated`
// event with a model-router RUN_LOG row per change (DESIGN §3: over quota the router re-allocates
// and logs it). The log is compared with the allocation, not with the previous ROUTING_DECISION,
// so a run resumed between the events and the ROUTING_DECISION write logs nothing twice.
Result<void> log_reallocations(ledger::Ledger& ledger, const std::vector<ledger::Event>& events,
                               const governance::RoutingTable& table, const std::vector<governance::ShotPlan>& shots,
                               const std::string& router_skill) {
  // Only the shots a move of `table` or a logged move names can give a row (unlogged_reallocations
  // reads no other): the plan of every shot of the project, copied at each scene's router step,
  // made the step's cost grow with the project.
  std::set<std::string_view> named;
  for (const governance::Reallocation& r : table.quota_changes) {
    named.insert(r.change.shot_id);
  }
  for (const ledger::Event& e : events) {
    if (e.kind == "route.reallocated" && e.body.is_object()) {
      if (auto shot = e.body.find("shot_id"); shot != e.body.end() && shot->is_string()) {
        named.insert(shot->get_ref<const std::string&>());
      }
    }
  }
  if (named.empty()) {
    return ok();
  }
  std::vector<governance::ShotAllocation> planned;
  for (const governance::ShotPlan& shot : shots) {
    if (!named.count(shot.shot_id)) {
      continue;
    }
    AVPS_TRY_ASSIGN(std::string tier, shot.tier.empty() ? governance::generation_tier_for(shot.hero_tier)
                                                        : Result<std::string>(shot.tier));
    planned.push_back({shot.shot_id, shot.scene_id, shot.hero_tier, tier, shot.duration_ms});
  }
  std::vector<governance::LoggedReallocation> moves;
  for (const governance::Reallocation& r : table.quota_changes) {
    auto shot = std::find_if(planned.begin(), planned.end(), [&](const governance::ShotAllocation& s) {
      return s.shot_id == r.change.shot_id;
    });
    moves.push_back({r.change.shot_id, shot == planned.end() ? "" : shot->scene_id, r.change.from_tier,
                     r.change.to_tier, r.change.reason, r.saving_micro_usd});
  }
  for (const governance::LoggedReallocation& change :
       governance::unlogged_reallocations(moves, planned, events)) {
    ledger::LogRow row;
    row.skill_name = router_skill;
    row.scene_id = change.scene_id;
    row.shot_id = change.shot_id;
    row.tier = change.to_tier;
    row.outcome = "DONE";
    row.notes = "re-allocate " + change.shot_id + " " + change.from_tier + " -> " + change.to_tier + ": " +
                change.reason + "; projected cost delta " +
                governance::usd_decimal(change.cost_delta_micro_usd) + " USD";
    json body = {{"shot_id", change.shot_id},
                 {"scene_id", change.scene_id},
                 {"from_tier", change.from_tier},
                 {"to_tier", change.to_tier},
                 {"reason", change.reason},
                 {"premium_shot_pct", table.premium_shot_pct},
                 {"cost", {{"delta_micro_usd", change.cost_delta_micro_usd}}}};
    AVPS_TRY(ledger.append(ledger::EventDraft{.kind = "route.reallocated", .body = body, .row = row}));
  }
  return ok();
}

// Projected spend at or past warn_pct of the project cap in force: the cost loop runs again over
// the whole project (DESIGN §3) and its simplify and downgrade suggestions are recorded as the
// next COST_REPORT_PROJECT, made by cost-optimizer with its own RUN_LOG row. Written only when it
// differs from the latest one, so one plan near its cap gives one report however many budget
// checks see it (and a resumed run none twice).
Result<void> review_costs(Impl& impl, project::Project& project, const governance::Router& router,
                          const governance::CostProjection& projection,
                          const governance::BudgetStatusInput& input,
                          const governance::ProjectionSettings& settings, const Job& job) {
  const int64_t cap = input.project.cap_micro_usd;
  const int64_t projected = std::max(input.project.spend.total(), projection.total_micro_usd);
  // The comparison budget_status_json makes for its WARN.
  const double warn_line = static_cast<double>(input.warn_pct) * static_cast<double>(cap);
  if (cap <= 0 || static_cast<double>(projected) * 100.0 < warn_line) {
    return ok();
  }
  governance::CostReportOptions options;
  options.target = "PROJECT";
  options.cap_micro_usd = cap;
  options.warn_pct = input.warn_pct;
  AVPS_TRY_ASSIGN(options.downgrades, governance::downgrade_suggestions(projection, router, settings));
  for (const auto& [key, facts] : impl.record.exchanges) {
    if (facts.response) {
      options.cached_input_tokens += facts.response->cached_input_tokens;
      options.caching_saved_micro_usd += facts.response->caching_saved_micro_usd;
    }
  }
  AVPS_TRY_ASSIGN(json report, governance::cost_report_json(projection, options));
  AVPS_TRY_ASSIGN(auto previous, impl.latest("COST_REPORT", "PROJECT"));
  if (previous && previous->content() == report) {
    return ok();
  }
  AVPS_TRY_ASSIGN(const artifacts::FaceCodec* codec, impl.codec("COST_REPORT"));
  if (std::vector<core::SchemaIssue> issues = codec->schema().validate(report); !issues.empty()) {
    return make_error(ErrorCode::schema_violation, core::format_schema_issues("COST_REPORT", issues));
  }
  AVPS_TRY_ASSIGN(std::string face, codec->render(report));
  AVPS_TRY_ASSIGN(artifacts::ArtifactName name, project.store().next_name("COST_REPORT", "PROJECT"));
  const json gate = report.value("gate", json::object());
  ledger::LogRow row;
  row.skill_name = impl.role("cost");  // a project-wide report: no scene
  row.actual_cost = governance::usd_decimal(0);
  row.outcome = gate.value("verdict", "WARN");
  row.regen_count = "0";
  row.artifact_output = name.filename();
  row.notes = "project cost review for " + impl.role("budget") + ": " +
              (gate.value("reasons", json::array()).empty() ? std::string("projected spend near the cap")
                                                            : gate["reasons"].front().get<std::string>()) +
              "; " + std::to_string(report.value("cost_reduction_recommendations", json::array()).size()) +
              " recommendations, " + std::to_string(options.downgrades.size()) + " downgrade suggestions";
  // Its verdict is the projection's against the cap then in force, not cost-optimizer's gate: the
  // details say so, for `avps gate`, which recomputes skill gates only (docs/formats/ledger.md).
  artifacts::NewArtifact artifact{name, report, face, "avps", impl.role("cost"), row,
                                  {{"step", impl.role("cost") + "/PROJECT<" + job.loop},
                                   {"attempt", job.attempt},
                                   {"verdict_by", "cost_projection"}}};
  AVPS_TRY(project.store().write(artifact));
  ++impl.outcome.artifacts_written;
  return ok();
}

}  // namespace

// ---- built-in steps -----------------------------------------------------------------------------

Result<gates::Outputs> Impl::run_builtin(const skills::SkillDef& skill, Job& job) {
  const json& config = e.m_project.config().document;
  const governance::ProjectionSettings settings = governance::ProjectionSettings::from_config(e.m_project.config());
  gates::Outputs out;

  if (skill.builtin == "assemble_genpack") {
    builtins::GenpackInputs in;
    AVPS_TRY_ASSIGN(auto row, shot_row(job.ctx));
    in.shot_row = row.value_or(json::object());
    // Locks (and inputs marked into_genpack) are pasted verbatim: their faces, as recorded.
    auto lock_face = [&](const std::string& name) -> Result<builtins::LockFace> {
      AVPS_TRY_ASSIGN(auto loaded, by_name(name));
      if (!loaded) {
        return make_error(ErrorCode::not_found, name + " is not recorded");
      }
      AVPS_TRY_ASSIGN(std::string face, core::read_file(e.m_project.dir() / loaded->record.path));
      return builtins::LockFace{name, face, loaded->content()};
    };
    // The inputs the packager's definition marks into_genpack (a kind a project added) are pasted
    // as they are, in the order of its inputs.
    std::set<std::string> pasted;
    for (const skills::SkillInput& input : skill.inputs) {
      if (input.into_genpack) {
        pasted.insert(input.kind);
      }
    }
    for (const json& f : job.in.fingerprints) {
      const std::string kind = f.value("kind", "");
      for (const json& name : f.value("names", json::array())) {
        if (pasted.count(kind) != 0) {
          AVPS_TRY_ASSIGN(builtins::LockFace face, lock_face(name));
          in.carried.push_back(std::move(face));
        } else if (kind == "STYLE_LOCK") {
          AVPS_TRY_ASSIGN(in.style, lock_face(name));
        } else if (kind == "SET_LOCK") {
          AVPS_TRY_ASSIGN(in.set, lock_face(name));
        } else if (kind == "CHAR_LOCK") {
          AVPS_TRY_ASSIGN(builtins::LockFace face, lock_face(name));
          in.characters.push_back(std::move(face));
        }
      }
    }
    in.world_state = job.in.world_before.value_or(json::object());
    if (job.in.has("REGEN_RULES")) {
      AVPS_TRY_ASSIGN(auto rules, latest("REGEN_RULES", ""));
      if (rules) {
        in.regen_rules = rules->content();
      }
    }
    in.resolution = job.ctx.resolution;
    in.tier = job.extra.value("tier", "");
    for (const json& finding : job.extra.value("qc_findings", json::array())) {
      in.qc_findings.push_back(finding.get<std::string>());
    }
    if (!job.revision_for.is_null()) {
      // A revision asked by a judge (a storyboard's Adjust): the GenPack it revises, with the
      // judge's findings applied, at the generation tier that one was packed for.
      AVPS_TRY_ASSIGN(auto revised, latest("GENPACK", target_for("GENPACK", job.ctx)));
      if (in.tier.empty() && revised) {
        in.tier = revised->content().value("settings", json::object()).value("tier", "");
      }
      const std::string asked_by =
          job.revision_for.value("judge", "") + " attempt " + std::to_string(job.revision_for.value("attempt", 0));
      for (const json& finding : job.findings) {
        if (finding.is_string()) {
          in.revision_findings.push_back("Revised for " + asked_by + ": " + finding.get<std::string>());
        }
      }
    }
    AVPS_TRY_ASSIGN(out["GENPACK"], builtins::assemble_genpack(in));
    return out;
  }

  if (skill.builtin == "project_cost") {
    AVPS_TRY_ASSIGN(const governance::RecordedShots* recorded, recorded_shots());
    std::vector<governance::ShotPlan> shots;
    for (const governance::ShotPlan& shot : recorded->shots) {
      if (shot.scene_id == job.ctx.scene_id) {
        shots.push_back(shot);
      }
    }
    AVPS_TRY_ASSIGN(std::vector<governance::ModelCallEstimate> calls,
                    governance::estimate_skill_calls(e.m_registry.skills(), {job.ctx.scene_id}, shots,
                                                     k_input_tokens_estimate));
    // The scene's own calls (its shots and its scene-scope skills); project-wide ones are in the
    // project projection budget-gates reads.
    calls.erase(std::remove_if(calls.begin(), calls.end(),
                               [&](const governance::ModelCallEstimate& c) { return c.scene_id != job.ctx.scene_id; }),
                calls.end());
    AVPS_TRY_ASSIGN(governance::CostProjection projection,
                    governance::project_costs(shots, calls, e.m_router, settings));
    governance::CostReportOptions report;
    report.target = job.ctx.scene_id;
    report.cap_micro_usd = e.m_governor.caps().scene_micro_usd;
    report.warn_pct = e.m_governor.warn_pct();
    // The one-tier-down suggestions a budget-gates FAIL re-routes by (Impl::reroute_for_budget).
    AVPS_TRY_ASSIGN(report.downgrades, governance::downgrade_suggestions(projection, e.m_router, settings));
    AVPS_TRY_ASSIGN(ledger::Spend spent, e.m_project.ledger().spend(job.ctx.scene_id, ""));
    if (spent.committed_micro_usd > 0) {
      report.actual_by_scene[job.ctx.scene_id] = spent.committed_micro_usd;
    }
    if (auto caching = record.caching_by_scene.find(job.ctx.scene_id); caching != record.caching_by_scene.end()) {
      report.cached_input_tokens = caching->second.cached_input_tokens;
      report.caching_saved_micro_usd = caching->second.saved_micro_usd;
    }
    AVPS_TRY_ASSIGN(out["COST_REPORT"], governance::cost_report_json(projection, report));
    return out;
  }

  if (skill.builtin == "route_tiers") {
    AVPS_TRY_ASSIGN(const governance::RecordedShots* recorded, recorded_shots());
    AVPS_TRY_ASSIGN(const governance::RoutingTable* table, allocation());
    AVPS_TRY_ASSIGN(const RecordTally* so_far, tally_so_far());
    // The recorded shots in place; copied only for a re-route that moves some (every scene's
    // router step copied every shot of the project).
    const std::vector<governance::ShotPlan>* planned = &recorded->shots;
    std::vector<governance::ShotPlan> moved;
    std::optional<governance::RoutingTable> rerouted;
    if (job.extra.contains("reroute")) {
      // A budget re-route (Impl::reroute_for_budget): the shots it moves take their new tier.
      moved = recorded->shots;
      planned = &moved;
      for (const json& change : job.extra["reroute"].value("changes", json::array())) {
        for (governance::ShotPlan& shot : moved) {
          if (shot.shot_id == change.value("shot_id", "") && shot.hero_tier == change.value("hero_tier", "")) {
            shot.tier = change.value("to_tier", "");
          }
        }
      }
      AVPS_TRY_ASSIGN(
          rerouted, governance::allocate(e.m_registry.skills(), e.m_router, moved, settings, k_input_tokens_estimate));
    }
    const governance::RoutingTable& allocated = rerouted ? *rerouted : *table;
    AVPS_TRY(log_reallocations(e.m_project.ledger(), so_far->routing, allocated, *planned, role("router")));
    out["ROUTING_DECISION"] = governance::routing_decision_json(allocated);
    return out;
  }

  if (skill.builtin == "enforce_budget") {
    // The whole project's projection against the project cap: every planned shot and every model
    // call the plan implies (an upper bound: max output tokens, conditional skills counted).
    // governance::project_recorded, on the shots the run keeps read (Impl::recorded_shots), made
    // again only when the plan has a new version.
    AVPS_TRY_ASSIGN(const governance::RecordedShots* recorded, recorded_shots());
    if (!projection_memo || projection_seq != plan_seq) {
      AVPS_TRY_ASSIGN(std::vector<governance::ModelCallEstimate> calls,
                      governance::estimate_skill_calls(e.m_registry.skills(), recorded->scene_ids, recorded->shots,
                                                       k_input_tokens_estimate));
      AVPS_TRY_ASSIGN(projection_memo, governance::project_costs(recorded->shots, calls, e.m_router, settings));
      projection_memo->scenes_without_shotlist = recorded->scenes_without_shotlist;
      projection_seq = plan_seq;
    }
    const governance::CostProjection& projection = *projection_memo;
    AVPS_TRY_ASSIGN(const RecordTally* so_far, tally_so_far());
    AVPS_TRY_ASSIGN(governance::BudgetStatusInput input,
                    governance::budget_status_input(e.m_project.ledger(), so_far->budget, e.m_project.config().budget,
                                                    record.overrides, projection.total_micro_usd));
    AVPS_TRY(review_costs(*this, e.m_project, e.m_router, projection, input, settings, job));
    out["BUDGET_STATUS"] = governance::budget_status_json(input);
    (void)config;
    return out;
  }
  return make_error(ErrorCode::configuration, "built-in \"" + skill.builtin + "\" of " + skill.name + " is not known");
}

// The STORYBOARD frame of each shot the storyboard review runs for, before that review, which is
// shown it: one image render of the shot's latest GenPack (a paid call like any other), recorded
// as the STORYBOARD artifact. A GenPack revised after an Adjust or a Simplify gets a frame of its
// own before it is reviewed again.
Result<Flow> Impl::render_storyboards(const skills::SkillDef& reviewer, const std::vector<Context>& shots,
                                      const std::string& pixels) {
  std::vector<Call> calls(shots.size());
  std::vector<Call*> sent;
  std::vector<size_t> wanted;
  for (size_t i = 0; i < shots.size(); ++i) {
    const Context& ctx = shots[i];
    AVPS_TRY_ASSIGN(bool reviewed, condition(reviewer.runs_when, ctx));
    AVPS_TRY_ASSIGN(auto pack, latest("GENPACK", ctx.shot_id));
    if (!reviewed || !pack) {
      continue;
    }
    AVPS_TRY_ASSIGN(auto frame, latest("STORYBOARD", ctx.shot_id));
    if (frame && frame->content().value("genpack", "") == pack->record.name) {
      continue;  // drawn for this GenPack already
    }
    AVPS_TRY_ASSIGN(std::string face, core::read_file(e.m_project.dir() / pack->record.path));
    Call& c = calls[i];
    c.kind = CallKind::generation;
    c.purpose = "storyboard " + ctx.shot_id;
    c.scene_id = ctx.scene_id;
    c.shot_id = ctx.shot_id;
    c.task.skill = reviewer.name;
    c.task.tier = "gen_low";
    c.task.output = governance::Output::image;
    c.task.images = 1;
    backends::GenerationRequest& r = c.generation_request;
    r.shot_id = ctx.shot_id;
    r.attempt = 1;
    r.genpack_face = face;
    r.resolution = "storyboard";
    r.pixels = pixels;
    r.seed = e.m_project.config().seed;
    AVPS_TRY(Impl::report({.kind = Progress::Kind::attempt,  // `report` is the STORYBOARD_REPORT here
                           .skill = reviewer.name,
                           .tier = c.task.tier,
                           .attempt = 1,
                           .text = "storyboard " + ctx.shot_id + ": attempt 1 on " + c.task.tier},
                          ctx));
    AVPS_TRY_ASSIGN(bool granted, exchange->prepare(c));
    if (!granted) {
      return budget_stop(c, role("budget"), "storyboard/" + ctx.shot_id, ctx);
    }
    sent.push_back(&c);
    wanted.push_back(i);
  }
  AVPS_TRY(exchange->send(sent, options.jobs));
  std::vector<artifacts::NewArtifact> frames;  // written as one group: one sync, one folder sync
  for (size_t i : wanted) {
    const Context& ctx = shots[i];
    const Call& c = calls[i];
    AVPS_TRY_ASSIGN(auto pack, latest("GENPACK", ctx.shot_id));
    AVPS_TRY_ASSIGN(std::string bytes,
                    artifacts::read_object(e.m_project.ledger(), c.response.value("media_sha256", "")));
    // A STORYBOARD is a PNG; an image model that answered JPEG or WebP has its frame converted
    // (the response keeps the bytes as they came).
    const std::string format = backends::image_format(bytes);
    const bool convert = format == "jpeg" || format == "webp";
    if (convert) {
      Result<std::string> png = backends::to_png(bytes);
      if (!png) {
        return make_error(png.error().code,
                          "storyboard " + ctx.shot_id + " from " + c.route.model + ": " + png.error().message);
      }
      bytes = std::move(*png);
    }
    json content = {{"format_version", 1},
                    {"kind", "STORYBOARD"},
                    {"shot_id", ctx.shot_id},
                    {"genpack", pack->record.name},
                    {"image_sha256", core::sha256_hex(bytes)},
                    {"pixels", pixels},
                    {"model", c.route.model}};
    if (convert) {
      content["converted_from"] = format;
    }
    AVPS_TRY_ASSIGN(artifacts::ArtifactName name, e.m_project.store().next_name("STORYBOARD", ctx.shot_id));
    ledger::LogRow row;
    row.skill_name = reviewer.name;
    row.scene_id = ctx.scene_id;
    row.shot_id = ctx.shot_id;
    row.model_used = c.route.model;
    row.tier = "gen_low";
    row.estimated_cost = governance::usd_decimal(c.route.worst_case_micro_usd);
    row.actual_cost = governance::usd_decimal(c.response.value("cost_micro_usd", int64_t{0}));
    row.duration_s = duration_s(c.response);
    row.outcome = "DONE";
    row.artifact_output = name.filename();
    row.notes = "storyboard frame of " + pack->record.name;
    frames.push_back(artifacts::NewArtifact{
        name, content, bytes, "avps", reviewer.name, row, {{"step", "storyboard/" + ctx.shot_id}, {"attempt", 1}}});
  }
  AVPS_TRY(e.m_project.store().write_all(frames));
  outcome.artifacts_written += static_cast<int>(frames.size());
  return Flow::go_on;
}

// ---- production -------------------------------------------------------------------------------

Result<Flow> Impl::fire_triggers(const std::string& scene) {
  const skills::StageGraph* graph = e.m_registry.stage_graph();
  if (!graph || graph->triggers.empty()) {
    return Flow::go_on;
  }
  // One forced run of a trigger's skill for its scope, the violations as its findings: a step of
  // its own (the trigger and its cause are part of its key and of its loop), a new version only if
  // the content changes; its own loop policy answers a FAIL. Flow::restart on a new version.
  auto run_triggered = [&](const std::string& trigger_id, const skills::SkillDef& skill, const std::string& scope_class,
                           const std::string& key, const json& cause, const json& findings) -> Result<Flow> {
    Job job;
    job.ctx.scope = skill.scope;
    (scope_class == "scene" ? job.ctx.scene_id : job.ctx.entity_id) = key;
    job.forced = true;
    job.reuse_identical = true;
    job.loop_suffix = "<trigger " + trigger_id;
    job.extra = {{"trigger", trigger_id}, {"cause", cause.value("id", "")}};
    job.log_extra = {{"trigger", {{"id", trigger_id}, {"cause", cause}}}};
    std::vector<Job> jobs{job};
    AVPS_TRY(start_job(skill, jobs.front()));
    Job& j = jobs.front();
    if (j.state == JobState::waiting) {
      AVPS_TRY(report(
          {.kind = Progress::Kind::wait,
           .skill = skill.name,
           .text = "trigger " + trigger_id + ": " + skill.name + j.ctx.label() + " waits for " + j.in.missing},
          j.ctx));
      return Flow::go_on;
    }
    if (!j.resumed_failure) {
      j.findings = findings;
    }
    AVPS_TRY_ASSIGN(Flow flow, run_jobs(skill, jobs));
    if (flow == Flow::go_on && jobs.front().changed_upstream) {
      return Flow::restart;  // a new version: the steps that read it, down to the renders, follow
    }
    return flow;
  };
  // A firing whose run an interruption cut short (recorded, its skill's loop not settled): it
  // runs now, so a resumed run finishes what the firing started instead of firing again.
  for (const json& fired : std::vector<json>(record.triggers_fired)) {
    const skills::SkillDef* skill = e.m_registry.find(fired.value("skill", ""));
    if (fired.value("scene_id", "") != scene || !skill) {
      continue;
    }
    const json scope = fired.value("scope", json::object());
    const std::string scope_class = scope.contains("scene_id") ? "scene" : skill->scope;
    Context ctx;
    (scope_class == "scene" ? ctx.scene_id : ctx.entity_id) = fired.value("key", "");
    const std::string loop = loop_key(*skill, ctx) + "<trigger " + fired.value("trigger", "");
    const json cause = fired.value("cause", json::object());
    // Done once a step of its own (for its cause) settled, or a stop was raised on its loop (the
    // stop stands on its own, and an override of it is a person's decision). Another firing of the
    // same loop, for another cause, neither finishes this one nor makes it due again. A firing is
    // resumed at most once a run: its run either settles it or ends in a stop.
    const std::string firing = loop + "|" + cause.value("id", "");
    auto verdict = record.firing_verdicts.find(firing);
    auto stopped_after = [this](const std::string& stopped_loop, int64_t seq) {
      auto stop = record.stopped_loops.find(stopped_loop);
      return stop != record.stopped_loops.end() && stop->second > seq;
    };
    const bool finished = (verdict != record.firing_verdicts.end() && skill->settles(verdict->second)) ||
                          stopped_after(loop, fired.value("seq", int64_t{0})) || !firings_resumed.insert(firing).second;
    if (!finished) {
      AVPS_TRY_ASSIGN(Flow flow, run_triggered(fired.value("trigger", ""), *skill, scope_class, fired.value("key", ""),
                                               cause, fired.value("findings", json::array())));
      if (flow != Flow::go_on) {
        return flow;
      }
    }
  }
  // What the scene's QC waves found: the violations of the attempts that did not pass.
  AVPS_TRY_ASSIGN(std::vector<Loaded> batches, all_versions("QC_BATCH", scene));
  std::vector<QcFinding> findings;
  std::set<std::string> shots;
  for (const Loaded& batch : batches) {
    const std::string wave = record.wave_of.count(batch.record.name) ? record.wave_of[batch.record.name] : "";
    const size_t slash = wave.find('/');
    const size_t hash = wave.find('#');
    if (slash == std::string::npos || hash == std::string::npos || hash < slash) {
      continue;  // not a wave's batch (an import): no attempt of a run to count
    }
    const std::string resolution = wave.substr(slash + 1, hash - slash - 1);
    std::map<std::pair<std::string, int>, std::string> verdicts;
    for (const json& row : rows_of(batch.content())) {
      verdicts[{row.value("shot_id", ""), row.value("attempt_number", 0)}] = row.value("verdict", "");
    }
    for (const json& v : batch.content().value("violations", json::array())) {
      QcFinding f{v.value("shot_id", ""), resolution, v.value("attempt_number", 0), v.value("rule", ""),
                  v.value("description", ""), batch.record.name};
      auto verdict = verdicts.find({f.shot_id, f.attempt});
      if (verdict != verdicts.end() && verdict->second == "PASS") {
        continue;
      }
      shots.insert(f.shot_id);
      findings.push_back(std::move(f));
    }
  }
  if (findings.empty()) {
    return Flow::go_on;
  }
  ShownEntities shown;
  for (const std::string& shot : shots) {
    Context ctx;
    ctx.scene_id = scene;
    ctx.shot_id = shot;
    AVPS_TRY_ASSIGN(auto row, shot_row(ctx));
    if (!row) {
      continue;  // a shot the plan no longer has: its findings concern the scene only
    }
    std::vector<std::string> characters;
    for (const json& id : row->value("char_ids", json::array())) {
      if (id.is_string()) {
        characters.push_back(id.get<std::string>());
      }
    }
    shown[shot]["character"] = characters;
    shown[shot]["voice"] = characters;
    if (const std::string set = row->value("set_id", ""); !set.empty()) {
      shown[shot]["set"] = {set};
    }
  }
  std::map<std::string, std::string> entity_class;
  for (const skills::Trigger& trigger : graph->triggers) {
    if (const skills::SkillDef* skill = e.m_registry.find(trigger.skill)) {
      entity_class[trigger.skill] = skill->scope;
    }
  }
  const std::vector<TriggerFiring> due = due_triggers(graph->triggers, entity_class, scene, findings, shown,
                                                      record.triggers_fired, e.m_project.ledger().run_id());
  for (const TriggerFiring& firing : due) {
    const skills::SkillDef* skill = e.m_registry.find(firing.trigger->skill);
    if (!skill) {
      return make_error(ErrorCode::configuration,
                        "trigger " + firing.trigger->id + " runs " + firing.trigger->skill + ", which is no skill");
    }
    const json& cause = firing.cause;
    json scope = firing.scope_class == "scene" ? json{{"scene_id", firing.key}} : json{{"entity_id", firing.key}};
    json body = {{"trigger", firing.trigger->id},
                 {"skill", skill->name},
                 {"scope", scope},
                 {"key", firing.key},
                 {"scene_id", scene},
                 {"count", firing.count},
                 {"cause", cause},
                 {"findings", firing.findings},
                 {"shots", firing.shots}};
    ledger::LogRow row;
    row.skill_name = skill->name;
    row.scene_id = scene;
    row.shot_id = cause.value("shot_id", "");
    row.outcome = "DONE";
    row.notes = "trigger " + firing.trigger->id + ": " + std::to_string(firing.count) + " shot(s) of " + scene +
                " failed QC concerning " + firing.key + " (last: " + cause.value("shot_id", "") + " " +
                cause.value("resolution", "") + " attempt " + std::to_string(cause.value("attempt", 0)) + ", " +
                cause.value("rule", "") + ": " + cause.value("description", "") + "); " + skill->name +
                " runs again for " + firing.key;
    AVPS_TRY_ASSIGN(ledger::Event event,
                    e.m_project.ledger().append(ledger::EventDraft{.kind = "trigger.fired", .body = body, .row = row}));
    body["run_id"] = event.run_id;
    body["seq"] = event.seq;
    record.triggers_fired.push_back(body);
    AVPS_TRY(report({.kind = Progress::Kind::note, .skill = skill->name, .text = row.notes}));
    core::crash_point("engine.after_trigger_fired");
    AVPS_TRY_ASSIGN(Flow flow,
                    run_triggered(firing.trigger->id, *skill, firing.scope_class, firing.key, cause, firing.findings));
    if (flow != Flow::go_on) {
      return flow;
    }
  }
  return Flow::go_on;
}

Result<std::string> Impl::render_identity(const skills::SkillDef& packager, const Context& ctx, json* parts,
                                          Gathered* gathered) {
  // GatherMode::identity: the packager's inputs as a step that runs reads them, but for the
  // feedback inputs no step key needs here (asked for every shot at every wave, and again at
  // every run: most of what production did for a scene with nothing to do).
  AVPS_TRY_ASSIGN(Gathered in, gather(packager, ctx, GatherMode::identity));
  std::set<std::string> feedback;
  for (const skills::SkillInput& input : packager.inputs) {
    if (input.feedback) {
      feedback.insert(input.kind);
    }
  }
  json identity = json::array();
  for (const json& input : in.fingerprints) {
    const std::string& kind = input.at("kind").get_ref<const std::string&>();
    if (!feedback.count(kind)) {
      const std::string& sha = input.at("sha256").get_ref<const std::string&>();
      identity.push_back({kind, sha});
      if (parts) {
        (*parts)[kind] = sha.substr(0, 16);
      }
    }
  }
  if (gathered) {
    *gathered = std::move(in);
  }
  return core::sha256_hex(identity.dump()).substr(0, 16);
}

std::vector<json> Impl::attempts_from(const std::string& key, const std::string& identity) {
  std::vector<json> out;
  for (const FlatJson& kept : record.shot_attempts[key]) {
    json attempt = *kept;
    if (made_from(attempt, identity)) {
      out.push_back(std::move(attempt));
    }
  }
  return out;
}

std::optional<json> Impl::last_attempt_from(const std::string& key, const std::string& identity) const {
  auto attempts = record.shot_attempts.find(key);
  if (attempts == record.shot_attempts.end()) {
    return std::nullopt;
  }
  for (auto kept = attempts->second.rbegin(); kept != attempts->second.rend(); ++kept) {
    json attempt = **kept;
    if (made_from(attempt, identity)) {
      return attempt;
    }
  }
  return std::nullopt;
}

bool Impl::shot_done(const skills::SkillDef& grader, const std::string& key, const std::string& identity) {
  const std::optional<json> last = last_attempt_from(key, identity);
  if (last && last->value("verdict", "") == "PASS") {
    return true;
  }
  const std::optional<std::string> accepted = record.overrides.accepted(grader.name + "/" + key);
  if (!accepted) {
    return false;
  }
  auto render = record.renders.find(*accepted);
  return render == record.renders.end() || made_from(*render->second, identity);
}

Result<std::vector<StaleShot>> Impl::stale_shots() {
  std::vector<StaleShot> out;
  const skills::SkillDef* packager = e.m_registry.find(role("packager"));
  const skills::SkillDef* grader = e.m_registry.find(role("grader"));
  if (!packager || !grader) {
    return out;
  }
  AVPS_TRY(refresh_scenes());
  AVPS_TRY(refresh_index());
  for (const std::string& scene : scenes) {
    AVPS_TRY_ASSIGN(auto shotlist, latest("SHOTLIST", scene));
    if (!shotlist) {
      continue;
    }
    for (const json& row : rows_of(shotlist->content())) {
      Context ctx;
      ctx.scene_id = scene;
      ctx.shot_id = row.value("shot_id", "");
      ctx.scope = "shot";
      ctx.resolution = "proxy";
      Gathered gathered;
      json parts = json::object();
      AVPS_TRY_ASSIGN(std::string identity, render_identity(*packager, ctx, &parts, &gathered));
      StaleShot stale{scene, ctx.shot_id, {}, {}};
      json rendered_parts = json::object();  // the parts of the latest stale render's identity
      int64_t rendered_at = 0;                // and its media.recorded
      for (const char* resolution : {"proxy", "final"}) {
        // Stale: not done from these inputs (the engine's rule), but passed, or accepted, from others.
        const std::string key = ctx.shot_id + "/" + resolution;
        if (shot_done(*grader, key, identity)) {
          continue;
        }
        std::string done_before;  // the latest render that passed or was accepted, from other inputs
        for (const FlatJson& kept : record.shot_attempts[key]) {
          const json attempt = *kept;
          if (attempt.value("verdict", "") == "PASS" && !made_from(attempt, identity)) {
            done_before = record.media_paths[key + "#" + std::to_string(attempt.value("attempt", 0))];
          }
        }
        if (std::optional<std::string> accepted = record.overrides.accepted(grader->name + "/" + key)) {
          done_before = *accepted;  // shot_done said it was not made from these inputs
        }
        if (!done_before.empty()) {
          stale.resolutions.push_back(resolution);
          auto render = record.renders.find(done_before);
          if (render != record.renders.end()) {
            const json summary = *render->second;
            rendered_parts = summary.value("input_hashes", json::object());
            rendered_at = std::max(rendered_at, summary.value("seq", int64_t{0}));
          }
        }
      }
      if (stale.resolutions.empty()) {
        continue;
      }
      // What changed: of the inputs whose content differs from the render's (every input when the
      // render predates recorded parts), the artifacts recorded since the render, else all of them.
      for (const json& input : gathered.fingerprints) {
        const std::string kind = input.value("kind", "");
        if (!parts.contains(kind) || (rendered_parts.contains(kind) && rendered_parts[kind] == parts[kind])) {
          continue;
        }
        std::vector<std::string> all, since;
        for (const json& name : input.value("names", json::array())) {
          const ledger::ArtifactRecord* known = indexed(name.get<std::string>());
          all.push_back(name.get<std::string>());
          if (known != nullptr && known->event_seq > rendered_at) {
            since.push_back(name.get<std::string>());
          }
        }
        for (const std::string& name : since.empty() ? all : since) {
          stale.changed.push_back(name);
        }
      }
      out.push_back(std::move(stale));
    }
  }
  return out;
}

// ---- the budget's re-route ----------------------------------------------------------------------

Result<Impl::Reroute> Impl::reroute_for_budget(const skills::SkillDef& judge, Job& failed) {
  const skills::SkillDef* router = e.m_registry.find(role("router"));
  const skills::SkillDef* optimizer = e.m_registry.find(role("cost"));
  const skills::StageGraph* graph = e.m_registry.stage_graph();
  if (!router || !optimizer || !graph || failed.ctx.scene_id.empty()) {
    return Reroute{};
  }
  // The cost loop the check stands in: the phase of its graph step (its first step when "").
  const skills::Phase* phase = nullptr;
  for (const skills::Phase& p : graph->phases) {
    for (const skills::GraphStep& step : p.steps) {
      const bool here = failed.ctx.graph_step.empty() ? step.skill == judge.name : step.id == failed.ctx.graph_step;
      if (here && !phase) {
        phase = &p;
      }
    }
  }
  if (!phase) {
    return Reroute{};
  }
  // The context of `skill`'s step in that phase, as the walk gives it (Impl::run_phase).
  auto step_context = [&](const skills::SkillDef& skill) {
    Context c = failed.ctx;
    c.scope = skill.scope;
    c.graph_step.clear();
    for (const skills::GraphStep& step : phase->steps) {
      auto first = step_index.find(skill.name);
      auto here = graph_step_index.find(step.id);
      if (step.skill == skill.name && first != step_index.end() && here != graph_step_index.end() &&
          here->second != first->second) {
        c.graph_step = step.id;
      }
    }
    return c;
  };

  AVPS_TRY_ASSIGN(const RecordTally* so_far, tally_so_far());
  json decided;  // the route.rerouted body of a re-route an interrupted run decided for this step
  for (const ledger::Event& ev : so_far->routing) {
    if (ev.kind == "route.rerouted" && ev.body.value("step", "") == failed.step) {
      decided = ev.body;
    }
  }
  const std::string once = failed.loop + "|" + failed.ctx.graph_step;
  if (decided.is_null()) {
    if (rerouted_loops.count(once)) {
      return Reroute{};  // re-routed once in this cost loop and run: the policy goes on
    }
    // Which shots: those a shot cap's FAIL names, else (a scene or project cap) every shot of the
    // scene. Only a cap's projection is re-routed; other FAILs (a quota) go to the policy.
    std::set<std::string> named;
    bool whole_scene = false;
    for (const std::string& cap : governance::caps_over_projection(failed.findings)) {
      if (cap.rfind("shot ", 0) == 0) {
        named.insert(cap.substr(5));
      } else {
        whole_scene = true;
      }
    }
    if (named.empty() && !whole_scene) {
      return Reroute{};
    }
    AVPS_TRY_ASSIGN(auto cost_report, latest("COST_REPORT", failed.ctx.scene_id));
    AVPS_TRY_ASSIGN(const governance::RecordedShots* recorded, recorded_shots());
    AVPS_TRY_ASSIGN(const governance::RoutingTable* table, allocation());
    json changes = json::array();
    int64_t saving = 0;
    std::string moves;
    for (const json& suggestion :
         cost_report ? cost_report->content().value("tier_reallocation_suggestions", json::array()) : json::array()) {
      const std::string shot_id = suggestion.value("shot_id", "");
      auto shot = std::find_if(recorded->shots.begin(), recorded->shots.end(), [&](const governance::ShotPlan& p) {
        return p.shot_id == shot_id && p.scene_id == failed.ctx.scene_id;
      });
      if (shot == recorded->shots.end() || (!whole_scene && !named.count(shot_id))) {
        continue;
      }
      const std::string from = suggestion.value("from_tier", "");
      const std::string to = suggestion.value("to_tier", "");
      const auto& ladder = generation_ladder();
      auto from_at = std::find(ladder.begin(), ladder.end(), from);
      auto to_at = std::find(ladder.begin(), ladder.end(), to);
      // One tier down from where the shot is routed now; a suggestion of an older allocation is
      // not applied.
      if (from != routed_tier(*table, shot_id, shot->hero_tier) || from_at == ladder.end() || to_at == ladder.end() ||
          to_at + 1 != from_at) {
        continue;
      }
      const int64_t delta = suggestion.value("saving_micro_usd", int64_t{0});
      saving -= delta;
      moves += (moves.empty() ? "" : ", ") + shot_id + " " + from + " -> " + to;
      changes.push_back({{"shot_id", shot_id},
                         {"hero_tier", shot->hero_tier},
                         {"from_tier", from},
                         {"to_tier", to},
                         {"saving_micro_usd", delta}});
    }
    if (changes.empty()) {
      return Reroute{};  // nothing left one tier down: only a simpler shot list can help
    }
    rerouted_loops.insert(once);
    ledger::LogRow row;
    row.skill_name = router->name;
    row.scene_id = failed.ctx.scene_id;
    row.outcome = "DONE";
    row.notes = "re-route for " + judge.name + failed.ctx.label() + " (FAIL of attempt " +
                std::to_string(failed.attempt) + "): " + moves + " as " +
                (cost_report ? cost_report->record.name : "") + " suggests; projected saving " +
                governance::usd_decimal(saving) + " USD; " + judge.name + " checks again before any simpler shot list";
    decided = {{"loop", failed.loop},
               {"graph_step", failed.ctx.graph_step},
               {"step", failed.step},
               {"attempt", failed.attempt},
               {"scene_id", failed.ctx.scene_id},
               {"cost_report", cost_report ? cost_report->record.name : ""},
               {"reasons", failed.findings},
               {"changes", changes},
               {"saving_micro_usd", saving}};
    AVPS_TRY(e.m_project.ledger().append(ledger::EventDraft{.kind = "route.rerouted", .body = decided, .row = row}));
    AVPS_TRY(Impl::report({.kind = Progress::Kind::revise,
                           .skill = judge.name,
                           .verdict = "FAIL",
                           .attempt = failed.attempt,
                           .text = judge.name + failed.ctx.label() + ": FAIL -> re-routing via " + router->name + ": " +
                                   moves + " (projected saving " + governance::usd_decimal(saving) + " USD)"},
                          failed.ctx));
  }
  rerouted_loops.insert(once);
  // The router writes the allocation with the moves, the optimizer re-projects the scene on it;
  // each a step of its own keyed by the re-route, so a resumed run does neither twice.
  const json extra = {{"reroute", {{"for", failed.step}, {"changes", decided.value("changes", json::array())}}}};
  for (const skills::SkillDef* skill : {router, optimizer}) {
    Job job;
    job.ctx = step_context(*skill);
    job.extra = extra;
    job.loop_suffix = "<" + failed.loop;
    if (!job.ctx.graph_step.empty()) {
      job.log_extra["graph_step"] = job.ctx.graph_step;
    }
    std::vector<Job> jobs{job};
    AVPS_TRY_ASSIGN(Flow flow, run_jobs(*skill, jobs));
    if (flow != Flow::go_on) {
      return Reroute{.rerouted = true, .flow = flow};
    }
    if (jobs.front().state == JobState::waiting) {
      return make_error(ErrorCode::not_found,
                        skill->name + " cannot re-route for " + judge.name + ": it needs " + jobs.front().in.missing);
    }
  }
  return Reroute{.rerouted = true};
}

Result<json> Impl::escalation_cost(const json& row, const std::string& resolution, const std::string& from,
                                   const std::string& to, int attempts, const std::string& scene,
                                   const std::string& shot) {
  AVPS_TRY_ASSIGN(int64_t ms, governance::duration_ms(row.value("duration_s", 0.0)));
  const std::string final_pixels = config_text(e.m_project.config().document, "/style/resolution/final");
  auto attempt_cost = [&](const std::string& tier) -> Result<int64_t> {
    governance::Task task = governance::Task::generation(
        row.value("hero_tier", "C"), resolution == "final" ? governance::Resolution::final : governance::Resolution::proxy,
        final_pixels, ms);
    task.tier = tier;
    AVPS_TRY_ASSIGN(governance::Route route, e.m_router.route(task));
    return route.worst_case_micro_usd;
  };
  AVPS_TRY_ASSIGN(int64_t before, attempt_cost(from));
  json priced = {{"from_tier", from}, {"to_tier", to}, {"attempts", attempts}, {"attempt_micro_usd_before", before}};
  Result<int64_t> after = attempt_cost(to);
  if (!after) {
    priced["refused"] = "no model of " + to + " can render it (" + after.error().message + ")";
    return priced;
  }
  const int64_t round = *after * attempts;
  priced["attempt_micro_usd_after"] = *after;
  priced["delta_micro_usd"] = (*after - before) * attempts;
  priced["round_micro_usd"] = round;
  priced["summary"] = "+" + governance::format_usd((*after - before) * attempts) + " for up to " +
                      std::to_string(attempts) + " attempt(s) (" + governance::format_usd(before) + " -> " +
                      governance::format_usd(*after) + " each)";
  AVPS_TRY_ASSIGN(std::vector<governance::CapPosition> caps, e.m_governor.positions(scene, shot));
  priced["caps"] = json::array();
  for (const governance::CapPosition& cap : caps) {
    priced["caps"].push_back(
        {{"scope", cap.scope}, {"cap_micro_usd", cap.cap_micro_usd}, {"spend_micro_usd", cap.spend.total()}});
  }
  for (const governance::CapPosition& cap : caps) {
    if (cap.cap_micro_usd > 0 && cap.spend.total() + round > cap.cap_micro_usd) {
      priced["refused"] = "the round at " + to + " (" + governance::format_usd(round) + ") would take the " +
                          cap.scope + " cap to " + governance::format_usd(cap.spend.total() + round) + " of " +
                          governance::format_usd(cap.cap_micro_usd);
      return priced;
    }
  }
  return priced;
}

Result<Flow> Impl::produce(const skills::Phase& phase, const std::string& scene) {
  const std::string resolution = phase.resolution;
  const json& config = e.m_project.config().document;
  AVPS_TRY_ASSIGN(auto shotlist, latest("SHOTLIST", scene));
  if (!shotlist) {
    AVPS_TRY(report({.kind = Progress::Kind::wait,
                     .scene_id = scene,
                     .text = "phase " + phase.name + " " + scene + ": waiting for its SHOTLIST"}));
    ++outcome.steps_waiting;
    return Flow::go_on;
  }
  // The phase's own step list says what a wave does: the packager, the render (generate_media)
  // and the grader (the registry refuses a per-shot phase without them: graph.per_shot_steps);
  // the storyboard review runs in the phases that list it.
  auto lists = [&](const std::string& skill) {
    return std::any_of(phase.steps.begin(), phase.steps.end(),
                       [&](const skills::GraphStep& step) { return !skill.empty() && step.skill == skill; });
  };
  const skills::SkillDef* packager = e.m_registry.find(role("packager"));
  const skills::SkillDef* storyboard = lists(role("storyboard")) ? e.m_registry.find(role("storyboard")) : nullptr;
  const skills::SkillDef* grader = e.m_registry.find(role("grader"));
  const skills::SkillDef* analyzer = e.m_registry.find(regen_skill("analyzer"));
  const skills::SkillDef* planner = e.m_registry.find(regen_skill("simplify_via"));
  if (!packager || !grader || !analyzer || !planner) {
    return make_error(ErrorCode::configuration,
                      "production needs the stage graph's roles.packager and roles.grader, and its regen.analyzer and "
                      "regen.simplify_via, each a skill (`avps skills validate` says which is missing)");
  }
  // Attempts made from other inputs than the shot has now (render_identity) are history: a
  // passed shot whose inputs changed (an edited lock) is made again, and one frozen on other
  // inputs is free again.
  auto frozen_loop = [&](const std::string& key) { return grader->name + "/" + key; };
  auto shot_done = [&](const std::string& key, const std::string& identity) {
    return Impl::shot_done(*grader, key, identity);
  };
  const int analyzer_after = regen_number("analyzer_after_failed_attempts");
  const int max_rounds = regen_number("max_rounds");
  const std::string proxy_pixels = config_text(config, "/style/resolution/proxy");
  const std::string final_pixels = config_text(config, "/style/resolution/final");

  // The generation tier of each shot: the allocation (hero tier, premium quota), then the rounds.
  AVPS_TRY_ASSIGN(const governance::RoutingTable* allocated, allocation());
  const governance::RoutingTable& table = *allocated;
  auto allocated_tier = [&](const json& row) {
    return routed_tier(table, row.value("shot_id", ""), row.value("hero_tier", ""));
  };

  for (int wave_guard = 0; wave_guard < 1000; ++wave_guard) {
    AVPS_TRY_ASSIGN(shotlist, latest("SHOTLIST", scene));
    // Cross-loop triggers on what the scene's QC waves found so far (before the next wave, and
    // once its waves are done): a skill of another loop re-runs; what it changes is re-derived.
    AVPS_TRY_ASSIGN(Flow triggered, fire_triggers(scene));
    if (triggered != Flow::go_on) {
      return triggered;
    }
    std::vector<json> rows;
    for (const json& row : rows_of(shotlist->content())) {
      rows.push_back(row);
    }
    std::map<std::string, std::string> identities;  // shot -> the identity of its render now
    std::map<std::string, json> identity_parts;     // shot -> its parts (Impl::render_identity)
    for (const json& row : rows) {
      Context ctx;
      ctx.scene_id = scene;
      ctx.shot_id = row.value("shot_id", "");
      ctx.scope = "shot";
      ctx.resolution = resolution;
      AVPS_TRY_ASSIGN(identities[ctx.shot_id], render_identity(*packager, ctx, &identity_parts[ctx.shot_id], nullptr));
    }
    // Final renders only after every shot of the scene passed QC at proxy (or a person accepted
    // one of its proxy renders), from the inputs it has now.
    if (resolution == "final") {
      for (const json& row : rows) {
        const std::string shot = row.value("shot_id", "");
        if (!shot_done(shot + "/proxy", identities[shot])) {
          AVPS_TRY(report({.kind = Progress::Kind::wait,
                           .scene_id = scene,
                           .text = "phase " + phase.name + " " + scene + ": waiting for every proxy to pass"}));
          ++outcome.steps_waiting;
          return Flow::go_on;
        }
      }
    }
    struct Active {
      json row;
      Context ctx;
      std::string identity;
      int attempt = 1;  ///< counted over every identity, so each render has a name of its own
      bool first = true;  ///< the first attempt from these inputs
      std::string tier;
      std::vector<std::string> findings;
    };
    std::vector<Active> active;
    bool replanned = false;  // a shot simplified this wave: its next attempt comes from its new row
    for (const json& row : rows) {
      Active a;
      a.row = row;
      a.ctx.scene_id = scene;
      a.ctx.shot_id = row.value("shot_id", "");
      a.ctx.scope = "shot";
      a.ctx.resolution = resolution;
      const std::string key = a.ctx.shot_id + "/" + resolution;
      a.identity = identities[a.ctx.shot_id];
      if (shot_done(key, a.identity)) {
        continue;
      }
      const std::vector<FlatJson>& every_attempt = record.shot_attempts[key];
      const std::vector<json> attempts = attempts_from(key, a.identity);
      const int earlier = static_cast<int>(every_attempt.size() - attempts.size());  // from other inputs
      if (auto open = record.open_stops.find(frozen_loop(key));
          open != record.open_stops.end() && !open->second.value("inputs", "").empty() &&
          open->second.value("inputs", "") != a.identity) {
        // Frozen on other inputs: the stop does not concern what is rendered now.
        AVPS_TRY(report({.kind = Progress::Kind::note,
                         .text = "STOP-" + std::to_string(open->second.value("seq", int64_t{0})) + " froze " +
                                 a.ctx.shot_id + " on other inputs; rendering it from its inputs now"},
                        a.ctx));
        loop_changed(open->first);
        record.open_stops.erase(open);
      }
      a.attempt = static_cast<int>(every_attempt.size()) + 1;
      a.first = attempts.empty();
      a.tier = allocated_tier(row);
      json round = record.rounds.count(key) ? record.rounds[key] : json::object();
      if (!round.value("inputs", "").empty() && round.value("inputs", "") != a.identity) {
        round = json::object();  // a round opened for other inputs
      }
      a.tier = round.value("tier", a.tier);
      if (!attempts.empty()) {
        for (const json& reason : attempts.back().value("reasons", json::array())) {
          a.findings.push_back(reason.get<std::string>());
        }
        // The regen policy before the next attempt.
        const int round_number = round.value("round", 1);
        const int round_start = round.value("after_attempt", earlier);
        const int failed_in_round = static_cast<int>(every_attempt.size()) - round_start;
        const std::string hero = row.value("hero_tier", "C");
        const int per_round = regen_number("attempts_per_round", hero);
        // `avps override --allow-attempts N` on a frozen shot extends its last round by N.
        const bool last_round = round_number >= max_rounds;
        const int allowed = per_round + (last_round ? record.overrides.extra_attempts(frozen_loop(key)) : 0);
        const std::string analyzed = key + "#" + std::to_string(every_attempt.size());
        const bool exhausted = failed_in_round >= allowed;
        if ((exhausted || failed_in_round >= analyzer_after) && !record.analyzer_runs.count(analyzed) &&
            failed_in_round >= std::min(analyzer_after, per_round)) {
          Job job;
          job.ctx = a.ctx;
          job.log_extra = {{"analyzer_for", analyzed}};
          job.extra = {{"after_attempt", every_attempt.size()}};
          std::vector<Job> jobs{job};
          AVPS_TRY_ASSIGN(Flow analyzed_flow, run_jobs(*analyzer, jobs));
          if (analyzed_flow != Flow::go_on) {
            return analyzed_flow;
          }
          record.analyzer_runs.insert(analyzed);
        }
        if (exhausted) {
          if (last_round) {
            return hard_stop(grader->name, "frozen", frozen_loop(key), a.ctx,
                             attempts.back().value("reasons", json::array()),
                             a.ctx.shot_id + " is frozen: " + std::to_string(attempts.size()) + " failed " + resolution +
                                 " attempts over " + std::to_string(max_rounds) +
                                 " regen rounds; a person must decide (`avps override --allow-attempts N` for more, "
                                 "`--accept best` to keep its best attempt, or re-plan the shot)",
                             {{"inputs", a.identity}});
          }
          // The analyzer's remedy opens the next round. Escalation comes only after simplification
          // (skills.md 2.19): simplify when the analyzer recommends a structural change for this
          // shot and this round was not opened by one; else escalate the generation tier one step
          // (the analyzer recommending it, or the simplification having been tried).
          AVPS_TRY_ASSIGN(auto rules, latest("REGEN_RULES", ""));
          auto covers = [&](const json& recommendation) {
            const json scope = recommendation.value("scope", json::array());
            return std::find(scope.begin(), scope.end(), json(a.ctx.shot_id)) != scope.end();
          };
          bool simplify = false;
          bool analyzer_escalates = false;
          if (rules) {
            for (const json& rec : rules->content().value("structural_simplification_recommendations", json::array())) {
              simplify = simplify || covers(rec);
            }
            const json escalation = rules->content().value("escalation_recommendation", json::object());
            analyzer_escalates = escalation.is_object() && covers(escalation);
          }
          if (round.value("remedy", "") == "simplify" || analyzer_escalates) {
            simplify = false;
          }
          // The remedies the regen policy allows (regen.remedies: simplify, escalate, or both in
          // that order; the graph's schema refuses escalation first, skills.md 2.19).
          if (!regen_remedy("escalate")) {
            simplify = true;
          } else if (!regen_remedy("simplify")) {
            simplify = false;
          }
          auto step = std::find(generation_ladder().begin(), generation_ladder().end(), a.tier);
          std::string remedy = "escalate";
          std::string next_tier = a.tier;
          std::string why_not_escalate;  // the budget-gates row of a refused escalation
          if (simplify) {
            remedy = "simplify";
          } else if (step == generation_ladder().end() || step + 1 == generation_ladder().end()) {
            remedy = "simplify";
            why_not_escalate = a.tier + " is the top generation tier";
          } else {
            next_tier = *(step + 1);
          }
          // Premium only for hero A (skills.md 2.22); and budget-gates approves the escalation's
          // cost: the next round's attempts at the new tier must fit under every cap in force.
          json approval = json::object();  // the budget.escalation body, once priced
          std::vector<ledger::EventDraft> round_opened;
          if (remedy == "escalate" && next_tier == generation_ladder().back() && hero != "A") {
            why_not_escalate = "premium escalation is for hero A shots only; " + a.ctx.shot_id + " is hero " + hero;
          } else if (remedy == "escalate") {
            AVPS_TRY_ASSIGN(json priced, escalation_cost(a.row, resolution, a.tier, next_tier, per_round,
                                                         a.ctx.scene_id, a.ctx.shot_id));
            approval = std::move(priced);
            why_not_escalate = approval.value("refused", "");
          }
          if (!why_not_escalate.empty()) {
            remedy = "simplify";
            next_tier = a.tier;
          }
          if (!approval.empty() || (!why_not_escalate.empty() && !simplify)) {
            ledger::LogRow gate_row;
            gate_row.skill_name = role("budget");
            gate_row.scene_id = scene;
            gate_row.shot_id = a.ctx.shot_id;
            gate_row.tier = why_not_escalate.empty() ? approval.value("to_tier", "") : a.tier;
            gate_row.outcome = why_not_escalate.empty() ? "PASS" : "FAIL";
            gate_row.regen_count = std::to_string(every_attempt.size());
            gate_row.estimated_cost = governance::usd_decimal(approval.value("round_micro_usd", int64_t{0}));
            gate_row.notes = why_not_escalate.empty()
                                 ? "approved escalation of " + a.ctx.shot_id + " " + approval.value("from_tier", "") +
                                       " -> " + approval.value("to_tier", "") + ": " + approval.value("summary", "")
                                 : "refused escalation of " + a.ctx.shot_id + ": " + why_not_escalate +
                                       (regen_remedy("simplify") ? "; simplifying via " + planner->name + " instead"
                                                                 : "; the regen policy allows no other remedy");
            json decision = approval;
            decision["shot_id"] = a.ctx.shot_id;
            decision["resolution"] = resolution;
            decision["approved"] = why_not_escalate.empty();
            if (!why_not_escalate.empty()) {
              decision["refused"] = why_not_escalate;
            }
            // Recorded with the round it opens (one transaction below): a resumed run decides again.
            round_opened.push_back(ledger::EventDraft{.kind = "budget.escalation", .body = decision, .row = gate_row});
          }
          std::string opened_for = a.identity;  // the render identity the new round is for
          bool restart_after_round = false;     // a final render's re-plan: its proxy comes first
          if (remedy == "simplify" && !regen_remedy("simplify")) {
            // Escalation refused, and the policy allows nothing else: the shot is frozen, the
            // refusal documented first.
            if (!round_opened.empty()) {
              AVPS_TRY(e.m_project.ledger().commit(std::move(round_opened)));
            }
            return hard_stop(grader->name, "frozen", frozen_loop(key), a.ctx,
                             attempts.back().value("reasons", json::array()),
                             a.ctx.shot_id +
                                 " is frozen: its round is spent, and escalation, the only remedy regen.remedies "
                                 "allows, is refused (" +
                                 why_not_escalate +
                                 "); a person must decide (`avps override --allow-attempts N`, `--accept best`, or "
                                 "re-plan the shot)",
                             {{"inputs", a.identity}});
          }
          if (remedy == "simplify") {
            Job judge;
            judge.ctx = a.ctx;
            judge.ctx.scope = "shot";
            judge.loop = frozen_loop(key);
            judge.attempt = static_cast<int>(every_attempt.size());
            judge.findings = attempts.back().value("reasons", json::array());
            AVPS_TRY_ASSIGN(Flow simplified, revise_upstream(*grader, *planner, judge));
            if (simplified == Flow::stop || simplified == Flow::interrupted) {
              return simplified;
            }
            // A new SHOTLIST of this scene is read by the next wave; at final resolution the
            // re-planned shot passes its proxy first, so the walk starts again once the round is
            // recorded (the steps whose inputs did not change are up to date).
            restart_after_round = simplified == Flow::restart && resolution == "final";
            // The round is opened for the simplified shot: its new row is part of the render's
            // identity, and the round (and the max_rounds that bound it) carries over to it
            // instead of starting the count again.
            AVPS_TRY_ASSIGN(opened_for, render_identity(*packager, a.ctx, nullptr, nullptr));
          }
          ledger::LogRow row_log;
          row_log.skill_name = remedy == "escalate" ? role("router") : analyzer->name;
          row_log.scene_id = scene;
          row_log.shot_id = a.ctx.shot_id;
          row_log.tier = next_tier;
          row_log.outcome = "DONE";
          row_log.regen_count = std::to_string(every_attempt.size());
          row_log.notes = "regen round " + std::to_string(round_number + 1) + " of " + a.ctx.shot_id + " (" + resolution +
                          "): " + remedy +
                          (remedy == "escalate" ? " " + a.tier + " -> " + next_tier + ", " + approval.value("summary", "")
                                                : " via " + planner->name);
          json body = {{"shot_id", a.ctx.shot_id},  {"resolution", resolution},
                       {"round", round_number + 1}, {"after_attempt", every_attempt.size()},
                       {"tier", next_tier},         {"remedy", remedy},
                       {"inputs", opened_for}};
          round_opened.push_back(ledger::EventDraft{.kind = "regen.round", .body = body, .row = row_log});
          AVPS_TRY(e.m_project.ledger().commit(std::move(round_opened)));
          record.rounds[key] = body;
          if (restart_after_round) {
            return Flow::restart;
          }
          a.tier = next_tier;
          if (opened_for != a.identity) {
            replanned = true;  // rendered from its new row in the next wave
            continue;
          }
        }
      }
      active.push_back(std::move(a));
    }
    if (active.empty() && !replanned) {
      return Flow::go_on;
    }
    if (active.empty()) {
      continue;
    }
    if (stop_requested()) {
      return Flow::interrupted;
    }
    // Waves are numbered per scene and resolution, after those whose QC_BATCH is recorded (a
    // wave an interruption cut short gets its number again): attempt numbers cannot serve, since
    // a shot made again from new inputs continues its own count.
    const std::string wave_prefix = scene + "/" + resolution + "#";
    int wave = 1;
    for (auto it = record.waves_written.lower_bound(wave_prefix);
         it != record.waves_written.end() && it->rfind(wave_prefix, 0) == 0; ++it) {
      ++wave;
    }

    // 1. A GenPack per shot for this attempt.
    std::vector<Job> packs;
    for (const Active& a : active) {
      Job job;
      job.ctx = a.ctx;
      json findings = json::array();
      for (const std::string& f : a.findings) {
        findings.push_back(f);
      }
      job.extra = {{"tier", a.tier}, {"resolution", resolution}, {"qc_findings", findings}};
      packs.push_back(std::move(job));
    }
    AVPS_TRY_ASSIGN(Flow packed, run_jobs(*packager, packs));
    if (packed != Flow::go_on) {
      return packed;
    }
    // 2. Storyboards, before the first proxy attempt of risky shots. A review whose loop policy
    // revised what it judged (on_fix: a new GenPack; on_fail: a new SHOTLIST) is not settled: a
    // revised GenPack gets a frame of its own and is reviewed again, as often as the policy allows,
    // before anything renders; a revised SHOTLIST is packed again first (the next wave pass).
    if (storyboard) {
      std::vector<Context> first;
      for (const Active& a : active) {
        if (a.first) {
          first.push_back(a.ctx);
        }
      }
      bool storyboard_replanned = false;
      for (int review = 0;; ++review) {
        if (review >= 1000) {
          return make_error(ErrorCode::unsupported, "the storyboard reviews of " + scene + " did not settle");
        }
        AVPS_TRY_ASSIGN(Flow drawn, render_storyboards(*storyboard, first, proxy_pixels));
        if (drawn != Flow::go_on) {
          return drawn;
        }
        AVPS_TRY_ASSIGN(Flow reviewed, run_skill(*storyboard, first));
        if (reviewed == Flow::stop || reviewed == Flow::interrupted) {
          return reviewed;
        }
        if (reviewed == Flow::go_on) {
          break;  // every review settled on what is packed now
        }
        // A revision (Flow::restart) is this scene's: its frames and reviews follow here.
        AVPS_TRY_ASSIGN(auto plan_now, latest("SHOTLIST", scene));
        if (plan_now && plan_now->record.name != shotlist->record.name) {
          storyboard_replanned = true;
          break;
        }
      }
      if (storyboard_replanned) {
        continue;
      }
    }
    // 3. Generation, every shot of the wave in flight together.
    std::vector<Call> calls(active.size());
    std::vector<Call*> sent;
    for (size_t i = 0; i < active.size(); ++i) {
      const Active& a = active[i];
      AVPS_TRY_ASSIGN(auto pack, latest("GENPACK", a.ctx.shot_id));
      if (!pack) {
        return make_error(ErrorCode::not_found, "no GENPACK for " + a.ctx.shot_id);
      }
      AVPS_TRY_ASSIGN(std::string face, core::read_file(e.m_project.dir() / pack->record.path));
      Call& c = calls[i];
      c.kind = CallKind::generation;
      c.purpose = "generate " + a.ctx.shot_id + " " + resolution;
      c.scene_id = scene;
      c.shot_id = a.ctx.shot_id;
      c.shot_attempt = {{"shot_id", a.ctx.shot_id}, {"resolution", resolution}, {"attempt", a.attempt},
                        {"inputs", a.identity}};
      // The render is as long as its GenPack says (a regen adjustment may have shortened the shot),
      // and its reservation is priced on that.
      const json pack_settings = pack->content().value("settings", json::object());
      const double seconds = pack_settings.contains("duration_s") && pack_settings["duration_s"].is_number()
                                 ? pack_settings["duration_s"].get<double>()
                                 : a.row.value("duration_s", 0.0);
      AVPS_TRY_ASSIGN(int64_t ms, governance::duration_ms(seconds));
      c.task = governance::Task::generation(a.row.value("hero_tier", "C"),
                                            resolution == "final" ? governance::Resolution::final
                                                                  : governance::Resolution::proxy,
                                            final_pixels, ms);
      c.task.tier = a.tier;
      backends::GenerationRequest& r = c.generation_request;
      r.shot_id = a.ctx.shot_id;
      r.attempt = a.attempt;
      r.genpack_face = face;
      r.resolution = resolution;
      r.pixels = resolution == "final" ? final_pixels : proxy_pixels;
      r.duration_s = seconds;
      r.seed = e.m_project.config().seed;
      AVPS_TRY(report({.kind = Progress::Kind::attempt,
                       .skill = "generate",
                       .tier = a.tier,
                       .attempt = a.attempt,
                       .text = "generate " + a.ctx.shot_id + " " + resolution + ": attempt " +
                               std::to_string(a.attempt) + " on " + a.tier},
                      a.ctx));
      AVPS_TRY_ASSIGN(bool granted, exchange->prepare(c));
      if (!granted) {
        return budget_stop(c, role("budget"), "generate/" + a.ctx.shot_id + "/" + resolution, a.ctx);
      }
      sent.push_back(&c);
    }
    AVPS_TRY(exchange->send(sent, options.jobs));
    // Group commit of the wave's renders: one sync makes every answer durable before any render
    // file is written from it (a power cut never leaves a file whose answer it lost); each file's
    // bytes are synced, their folders once for the wave; then one commit records them all
    // (deferred: the files are durable before it). docs/formats/ledger.md, "Durability and group
    // commit".
    AVPS_TRY(e.m_project.ledger().sync());
    core::crash_point("engine.renders_synced");
    std::vector<ledger::EventDraft> rendered;
    std::vector<std::pair<std::string, json>> rendered_bodies;  // key, the media.recorded body
    std::set<std::filesystem::path> render_folders;
    std::set<std::string> unrendered;  // shots whose job ended without a render: a failed attempt, no QC
    for (size_t i = 0; i < active.size(); ++i) {
      const Active& a = active[i];
      const Call& c = calls[i];
      if (c.state == CallState::released && c.failure) {  // recorded by the exchange, with the attempt
        const json failure = {{"message", c.failure->message}, {"shot_attempt", c.shot_attempt}};
        note_attempt(record, failed_render(failure));
        unrendered.insert(a.ctx.shot_id);
        AVPS_TRY(report({.kind = Progress::Kind::note,
                         .text = "generate " + a.ctx.shot_id + " " + resolution + ": attempt " +
                                 std::to_string(a.attempt) + " failed without a render: " +
                                 failure.value("message", std::string())},
                        a.ctx));
        continue;
      }
      const std::string key = a.ctx.shot_id + "/" + resolution;
      auto known = record.media.find(key);
      if (known != record.media.end() && (*known->second).value("key", "") == c.key) {
        continue;  // recorded before an interruption
      }
      char name[64];
      std::snprintf(name, sizeof name, "_%s_a%02d.", resolution.c_str(), a.attempt);
      const std::string relative = "media/" + a.ctx.shot_id + name + c.response.value("extension", "bin");
      AVPS_TRY_ASSIGN(std::string bytes,
                      artifacts::read_object(e.m_project.ledger(), c.response.value("media_sha256", "")));
      AVPS_TRY(core::create_directories_durable((e.m_project.dir() / relative).parent_path()));
      render_folders.insert((e.m_project.dir() / relative).parent_path());
      Result<void> written = core::write_file_atomic(e.m_project.dir() / relative, bytes, core::Overwrite::no,
                                                     core::Durability::durable_content);
      if (!written && written.error().code != ErrorCode::already_exists) {
        return std::move(written).error();
      }
      ledger::LogRow row;
      row.skill_name = "generate";
      row.scene_id = scene;
      row.shot_id = a.ctx.shot_id;
      row.model_used = c.route.model;
      row.tier = a.tier;
      row.estimated_cost = governance::usd_decimal(c.route.worst_case_micro_usd);
      row.actual_cost = governance::usd_decimal(c.response.value("cost_micro_usd", int64_t{0}));
      row.duration_s = duration_s(c.response);
      row.outcome = "DONE";
      row.regen_count = std::to_string(a.attempt - 1);
      row.artifact_output = relative;
      row.notes = resolution + " render, attempt " + std::to_string(a.attempt) + "; routed: " + c.route.reason;
      const ledger::EventDraft media = ledger::MediaRecorded{.key = c.key,
                                                             .shot_id = a.ctx.shot_id,
                                                             .scene_id = scene,
                                                             .resolution = resolution,
                                                             .attempt = a.attempt,
                                                             .path = relative,
                                                             .sha256 = c.response.value("media_sha256", ""),
                                                             .model = c.route.model,
                                                             .tier = a.tier,
                                                             .inputs = a.identity,
                                                             .input_hashes = identity_parts[a.ctx.shot_id]}
                                           .to_draft(row);
      rendered_bodies.emplace_back(key, media.body);
      rendered.push_back(media);
    }
    if (!rendered.empty()) {
      core::crash_point("engine.renders_written");  // the files published, their folder not yet synced
      for (const std::filesystem::path& folder : render_folders) {
        AVPS_TRY(core::sync_directory(folder));
      }
      AVPS_TRY(e.m_project.ledger().commit(std::move(rendered), ledger::Sync::deferred));
      for (const auto& [key, body] : rendered_bodies) {
        core::crash_point("engine.after_media");
        record.media[key] = FlatJson(media_summary(body));
        record.renders[body.value("path", "")] = FlatJson(render_summary(body));
      }
    }
    // 4. QC of the wave, one verdict per shot, then the wave's QC_BATCH.
    std::vector<Job> grades;
    for (const Active& a : active) {
      if (unrendered.count(a.ctx.shot_id)) {
        continue;
      }
      Job job;
      job.ctx = a.ctx;
      job.collect = true;
      job.attempt = a.attempt;
      job.extra = {{"attempt", a.attempt}};
      job.log_extra = {{"shot_attempt",
                        {{"shot_id", a.ctx.shot_id}, {"resolution", resolution}, {"attempt", a.attempt},
                         {"wave", scene + "/" + resolution + "#" + std::to_string(wave)}, {"inputs", a.identity}}}};
      grades.push_back(std::move(job));
    }
    AVPS_TRY_ASSIGN(Flow graded, run_jobs(*grader, grades));
    if (graded != Flow::go_on) {
      return graded;
    }
    json batch = {{"format_version", 1}, {"kind", "QC_BATCH"}, {"target", scene}, {"rows", json::array()},
                  {"violations", json::array()}};
    for (Job& job : grades) {
      const json& out = job.outputs.count("QC_BATCH") ? job.outputs["QC_BATCH"] : json::object();
      for (const json& row : rows_of(out)) {
        batch["rows"].push_back(row);
      }
      // A finding filed under an attempt the answer does not grade is this answer's (its gate failed
      // it for that): kept in the answer's row, saying where it was filed, so the face can show it.
      json answer = out;
      gates::file_violations_under_rows(answer);
      for (const json& v : answer.value("violations", json::array())) {
        batch["violations"].push_back(v);
      }
      note_attempt(record, {{"shot_id", job.ctx.shot_id}, {"resolution", resolution}, {"attempt", job.attempt},
                            {"verdict", job.verdict}, {"reasons", job.gate.reasons},
                            {"inputs", job.log_extra["shot_attempt"].value("inputs", "")}});
    }
    const std::string wave_key = scene + "/" + resolution + "#" + std::to_string(wave);
    if (!record.waves_written.count(wave_key)) {
      Context scene_context;
      scene_context.scene_id = scene;
      EngineGateContext gate_context(e.m_project, latest_shared(), kind_generation(), gate_config(scene_context),
                                     std::nullopt);
      // The batch shows avps's verdict per row, the grader's claim beside it (faces.md, QC_BATCH).
      AVPS_TRY(gates::stamp_qc_verdicts(grader->raw, batch, gate_context, gates::QcClaim::in_verdict));
      gates::Outputs merged{{"QC_BATCH", batch}};
      AVPS_TRY_ASSIGN(gates::GateResult gate, gates::evaluate_gate_outputs(grader->raw, merged, gate_context));
      bool changed = false;
      ledger::LogRow row;  // the wave's own row: its verdict and the QC_BATCH that holds it
      row.skill_name = grader->name;
      row.scene_id = scene;
      row.outcome = std::string(gates::verdict_name(gate.verdict));
      row.regen_count = std::to_string(wave - 1);
      row.notes = "QC " + resolution + " wave " + std::to_string(wave) + " of " + scene + ": " +
                  std::to_string(active.size()) + " shot(s)" + (gate.reasons.empty() ? "" : "; " + gate.reasons.front());
      AVPS_TRY_ASSIGN(std::string name,
                      write_output(*grader, "QC_BATCH", scene, batch, gate,
                                   {{"wave", wave_key}, {"step", grader->name + "/" + wave_key}, {"attempt", wave}}, changed,
                                   row));
      record.waves_written.insert(wave_key);
      record.wave_of[name] = wave_key;
      AVPS_TRY(report({.kind = Progress::Kind::wave,
                       .scene_id = scene,
                       .skill = grader->name,
                       .verdict = std::string(gates::verdict_name(gate.verdict)),
                       .wave = wave,
                       .text = "QC " + scene + " " + resolution + " wave " + std::to_string(wave) + ": " +
                               std::string(gates::verdict_name(gate.verdict)) + " -> " + name}));
    }
  }
  return make_error(ErrorCode::unsupported, "production of " + scene + " did not settle after 1000 waves");
}

}  // namespace avps::engine
