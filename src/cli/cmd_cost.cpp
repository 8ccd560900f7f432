// `avps cost DIR`: the cost projection per scene and tier, without running anything and without
// writing to the project. Two bases:
//   - recorded: the record holds SCENES and at least one SHOTLIST; governance::project_recorded
//     prices the planned shots and the model skills' calls, and the ledger's committed spend per
//     scene is shown beside the projection.
//   - brief: nothing is planned yet (a folder holding only avps.json and brief.md, or a project
//     without a SHOTLIST); governance::estimate_from_brief projects a synthetic plan under
//     assumptions it lists.
// The arithmetic and the project verdict live in governance (cost_report_json); this file gathers
// the inputs, applies the same WARN / FAIL rule to the scene cap, and prints.
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

#include "avps/core/clock.hpp"
#include "avps/core/fs.hpp"
#include "avps/gates/project_context.hpp"
#include "avps/governance/brief_estimate.hpp"
#include "avps/governance/models.hpp"
#include "avps/governance/pricing.hpp"
#include "avps/governance/projection.hpp"
#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"
#include "commands.hpp"

namespace avps::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct CostOptions {
  std::string dir = ".";
};

// Everything `avps cost` prints, gathered before any of it is.
struct CostView {
  std::string title;
  bool from_brief = false;
  std::vector<std::string> assumptions;
  governance::CostProjection projection;
  json report;  ///< the COST_REPORT cost_report_json makes of it: verdict, %, actuals, variance
  int64_t project_cap_micro_usd = 0;
  std::optional<int64_t> scene_cap_micro_usd;
  int warn_pct = 90;
};

// The configuration of `dir` as Project::open would merge it, without needing (or creating) a
// ledger: `avps cost` works before `avps init`.
Result<project::Config> config_of(const fs::path& dir) {
  project::ConfigSources sources{dir, project::data_dir(), {}, project::process_environment()};
  return project::load_config(sources);
}

std::string model_calls_assumption() {
  return "model calls: one per model skill and scope instance (project, scene, shot, character, set, "
         "voice) at the skill's default tier, " +
         std::to_string(governance::k_projection_input_tokens_per_call) +
         " input tokens and the skill's max output tokens each (an upper bound; conditional skills "
         "count as if they always ran)";
}

// Committed spend per scene line (and "" for the rest of the project), only where there is some.
Result<std::map<std::string, int64_t>> actuals_of(const ledger::Ledger& ledger,
                                                  const governance::CostProjection& p) {
  std::map<std::string, int64_t> actuals;
  AVPS_TRY_ASSIGN(ledger::Spend total, ledger.spend("", ""));
  int64_t in_scenes = 0;
  for (const governance::SceneLine& line : p.scenes) {
    if (line.scene_id.empty()) {
      continue;
    }
    AVPS_TRY_ASSIGN(ledger::Spend spent, ledger.spend(line.scene_id, ""));
    if (spent.committed_micro_usd > 0) {
      actuals[line.scene_id] = spent.committed_micro_usd;
      in_scenes += spent.committed_micro_usd;
    }
  }
  if (total.committed_micro_usd > in_scenes) {
    actuals[""] = total.committed_micro_usd - in_scenes;
  }
  return actuals;
}

Result<CostView> gather(const CostOptions& o) {
  const fs::path dir = o.dir;
  if (!fs::is_directory(dir)) {
    return make_error(ErrorCode::not_found, o.dir + " is not a folder");
  }
  core::SystemClock clock;
  std::unique_ptr<project::Project> opened;
  project::Config config;
  if (project::inspect_folder(dir).state == project::FolderState::project) {
    AVPS_TRY_ASSIGN(opened, project::Project::open(dir, ledger::OpenMode::read_only, {}, clock));
    config = opened->config();
  } else if (fs::exists(dir / "avps.json")) {
    AVPS_TRY_ASSIGN(config, config_of(dir));
  } else {
    return make_error(ErrorCode::not_found, o.dir +
                                                " is not an avps project and holds no avps.json: there is "
                                                "nothing to estimate (`avps init` starts a project)");
  }

  AVPS_TRY_ASSIGN(skills::Registry registry, skills::Registry::load(project::data_dir(), &dir));
  AVPS_TRY_ASSIGN(governance::ModelsFile models,
                  governance::ModelsFile::load(project::data_dir(), dir, config));
  governance::Router router(std::move(models));
  const governance::ProjectionSettings settings = governance::ProjectionSettings::from_config(config);

  CostView view;
  view.title = config.title;
  view.project_cap_micro_usd = config.budget.project_cap_micro_usd;
  view.scene_cap_micro_usd = config.budget.scene_cap_micro_usd;
  view.warn_pct = config.budget.warn_pct;
  std::map<std::string, int64_t> actuals;

  // The record's plan, when there is one with at least one SHOTLIST.
  std::vector<std::string> recorded_scene_ids;
  if (opened) {
    gates::ProjectGateContext context(*opened);
    governance::LatestArtifact latest = [&context](std::string_view kind, std::string_view target) {
      return context.latest(kind, target);
    };
    Result<governance::RecordedShots> recorded = governance::recorded_shots(latest);
    if (!recorded && recorded.error().code != ErrorCode::not_found) {
      return recorded.error();
    }
    if (recorded && !recorded->shots.empty()) {
      AVPS_TRY_ASSIGN(view.projection,
                      governance::project_recorded(latest, registry.skills(), router, settings,
                                                   governance::k_projection_input_tokens_per_call));
      view.assumptions.push_back("every planned shot at its SHOTLIST duration, hero tier and regen risk");
    } else if (recorded) {
      recorded_scene_ids = recorded->scene_ids;
    }
  }
  if (view.projection.shots.empty()) {
    view.from_brief = true;
    AVPS_TRY_ASSIGN(std::string brief, core::read_text_file(config.brief));
    AVPS_TRY_ASSIGN(governance::BriefEstimate estimate,
                    governance::estimate_from_brief(brief, governance::BriefAssumptions{}, recorded_scene_ids,
                                                    registry.skills(), router, settings,
                                                    governance::k_projection_input_tokens_per_call));
    view.projection = std::move(estimate.projection);
    view.assumptions = std::move(estimate.plan.assumptions);
  }
  view.assumptions.push_back(model_calls_assumption());
  if (opened) {
    AVPS_TRY_ASSIGN(actuals, actuals_of(opened->ledger(), view.projection));
  }

  governance::CostReportOptions report_options;
  if (view.project_cap_micro_usd > 0) {
    report_options.cap_micro_usd = view.project_cap_micro_usd;
  }
  report_options.warn_pct = view.warn_pct;
  report_options.actual_by_scene = actuals;
  if (opened) {
    // What prompt caching saved on the calls recorded so far (exchange.response).
    ledger::Ledger::EventQuery responses;
    responses.kinds = {"exchange.response"};
    AVPS_TRY_ASSIGN(std::vector<ledger::Event> events, opened->ledger().events(responses));
    for (const ledger::Event& e : events) {
      report_options.count_caching(e.body);
    }
  }
  AVPS_TRY_ASSIGN(view.report, governance::cost_report_json(view.projection, report_options));
  return view;
}

std::string seconds_text(int64_t ms) {
  std::string text = std::to_string(ms / 1000);
  if (ms % 1000 != 0) {
    std::string fraction = std::to_string(1000 + ms % 1000).substr(1);
    while (fraction.back() == '0') {
      fraction.pop_back();
    }
    text += "." + fraction;
  }
  return text;
}

json seconds_json(int64_t ms) {
  if (ms % 1000 == 0) {
    return ms / 1000;
  }
  return static_cast<double>(ms) / 1000.0;
}

// A non-negative number with two decimals: "12.34".
std::string two_decimals(double value) {
  auto hundredths = static_cast<int64_t>(value * 100.0 + 0.5);
  std::string fraction = std::to_string(100 + hundredths % 100).substr(1);
  return std::to_string(hundredths / 100) + "." + fraction;
}

// A table: the first `text_columns` columns left-aligned (names), the rest right-aligned (numbers).
std::vector<std::string> table(const std::vector<std::vector<std::string>>& rows, size_t text_columns) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  std::vector<std::string> lines;
  for (const auto& row : rows) {
    std::string line = "  ";
    for (size_t c = 0; c < row.size(); ++c) {
      std::string pad(widths[c] - row[c].size(), ' ');
      std::string separator = c == 0 ? "" : "  ";
      line += c < text_columns ? separator + row[c] + pad : separator + pad + row[c];
    }
    lines.push_back(line);
  }
  return lines;
}

// The scene_breakdown row of `scene_id` ("" = the PROJECT row), for its actual and variance.
const json* breakdown_row(const json& report, const std::string& scene_id) {
  const std::string wanted = scene_id.empty() ? "PROJECT" : scene_id;
  if (!report.contains("scene_breakdown")) {
    return nullptr;
  }
  for (const json& row : report.at("scene_breakdown")) {
    if (row.value("scene_id", "") == wanted) {
      return &row;
    }
  }
  return nullptr;
}

// A scene whose projection reaches the scene cap's warn line (WARN) or exceeds the cap (FAIL): the
// rule cost_report_json applies to the project cap.
struct SceneCapFinding {
  std::string verdict;
  std::string scene_id;
  int64_t projected_micro_usd = 0;

  std::string text(const CostView& v) const {
    const std::string cap = governance::format_usd(*v.scene_cap_micro_usd);
    return verdict + ": " + scene_id + " projects " + governance::format_usd(projected_micro_usd) +
           (verdict == "FAIL" ? ", over the scene cap " + cap
                              : ", " + std::to_string(v.warn_pct) + " % or more of the scene cap " + cap);
  }
};

std::vector<SceneCapFinding> scene_cap_findings(const CostView& v) {
  std::vector<SceneCapFinding> out;
  if (!v.scene_cap_micro_usd) {
    return out;
  }
  const int64_t cap = *v.scene_cap_micro_usd;
  Result<int64_t> warn_line = governance::scale_up(cap, v.warn_pct, 100);
  for (const governance::SceneLine& line : v.projection.scenes) {
    if (line.scene_id.empty()) {
      continue;
    }
    if (line.total_micro_usd > cap) {
      out.push_back({"FAIL", line.scene_id, line.total_micro_usd});
    } else if (warn_line && line.total_micro_usd >= *warn_line) {
      out.push_back({"WARN", line.scene_id, line.total_micro_usd});
    }
  }
  return out;
}

json view_json(const CostView& v, const std::string& dir) {
  const governance::CostProjection& p = v.projection;
  json scenes = json::array();
  for (const governance::SceneLine& line : p.scenes) {
    json row = {{"scene_id", line.scene_id.empty() ? std::string("PROJECT") : line.scene_id},
                {"shots", line.shots},
                {"duration_s", seconds_json(line.duration_ms)},
                {"proxy_micro_usd", line.proxy_micro_usd},
                {"final_micro_usd", line.final_micro_usd},
                {"model_calls_micro_usd", line.model_calls_micro_usd},
                {"total_micro_usd", line.total_micro_usd}};
    if (const json* known = breakdown_row(v.report, line.scene_id);
        known && known->contains("actual_micro_usd")) {
      row["actual_micro_usd"] = (*known)["actual_micro_usd"];
      row["variance_micro_usd"] = (*known)["variance_micro_usd"];
    }
    scenes.push_back(row);
  }
  json tiers = json::array();
  for (const governance::TierLine& line : p.tiers) {
    tiers.push_back({{"tier", line.tier},
                     {"resolution", std::string(governance::resolution_name(line.resolution))},
                     {"shots", line.shots},
                     {"duration_s", seconds_json(line.duration_ms)},
                     {"per_second_micro_usd", line.per_second_micro_usd},
                     {"projected_micro_usd", line.projected_micro_usd}});
  }
  json model_tiers = json::array();
  for (const governance::ModelTierLine& line : p.model_tiers) {
    model_tiers.push_back(
        {{"tier", line.tier}, {"calls", line.calls}, {"projected_micro_usd", line.projected_micro_usd}});
  }
  const json& gate = v.report["gate"];
  json out = {{"project", dir},
              {"title", v.title},
              {"basis", v.from_brief ? "brief_estimate" : "recorded"},
              {"assumptions", v.assumptions},
              {"scenes", scenes},
              {"tiers", tiers},
              {"model_tiers", model_tiers},
              {"video_proxy_micro_usd", p.proxy_micro_usd},
              {"video_final_micro_usd", p.final_micro_usd},
              {"model_calls_micro_usd", p.model_calls_micro_usd},
              {"total_micro_usd", p.total_micro_usd},
              {"duration_s", seconds_json(p.duration_ms)},
              {"project_cap_micro_usd", v.project_cap_micro_usd},
              {"warn_pct", v.warn_pct},
              {"verdict", gate["verdict"]},
              {"reasons", gate["reasons"]},
              {"scenes_without_shotlist", p.scenes_without_shotlist},
              {"scene_cap_findings", json::array()}};
  for (const SceneCapFinding& finding : scene_cap_findings(v)) {
    out["scene_cap_findings"].push_back({{"verdict", finding.verdict},
                                         {"scene_id", finding.scene_id},
                                         {"projected_micro_usd", finding.projected_micro_usd}});
  }
  if (gate["scores"].contains("projected_pct_of_cap")) {
    out["pct_of_cap"] = gate["scores"]["projected_pct_of_cap"];
  }
  if (v.scene_cap_micro_usd) {
    out["scene_cap_micro_usd"] = *v.scene_cap_micro_usd;
  }
  if (v.report.contains("projected_vs_actual")) {
    out["projected_vs_actual"] = v.report["projected_vs_actual"];
  }
  if (v.report.contains("prompt_caching")) {
    out["prompt_caching"] = v.report["prompt_caching"];
  }
  return out;
}

void print_view(const CostView& v, const std::string& dir, const Context& ctx) {
  using governance::format_usd;
  const governance::CostProjection& p = v.projection;
  ctx.info("Cost projection: " + v.title + " (" + dir + ")");
  ctx.info(v.from_brief ? "Basis: estimate from the brief (no shot list yet)"
                        : "Basis: the recorded SCENES and SHOTLISTs (" + std::to_string(p.shots.size()) +
                              " planned shots)");
  ctx.info("Assumptions:");
  for (const std::string& line : v.assumptions) {
    ctx.info("  - " + line);
  }

  const bool with_actuals = v.report.contains("projected_vs_actual");
  std::vector<std::vector<std::string>> scenes = {
      {"scene", "shots", "duration", "proxy", "final", "model calls", "total"}};
  if (with_actuals) {
    scenes[0].insert(scenes[0].end(), {"actual", "variance"});
  }
  for (const governance::SceneLine& line : p.scenes) {
    bool project_level = line.scene_id.empty();
    std::vector<std::string> row = {project_level ? "project-level" : line.scene_id,
                                    project_level ? "-" : std::to_string(line.shots),
                                    project_level ? "-" : seconds_text(line.duration_ms) + " s",
                                    project_level ? "-" : format_usd(line.proxy_micro_usd),
                                    project_level ? "-" : format_usd(line.final_micro_usd),
                                    format_usd(line.model_calls_micro_usd),
                                    format_usd(line.total_micro_usd)};
    if (with_actuals) {
      const json* known = breakdown_row(v.report, line.scene_id);
      bool has = known != nullptr && known->contains("actual_micro_usd");
      int64_t variance = has ? (*known)["variance_micro_usd"].get<int64_t>() : 0;
      row.push_back(has ? format_usd((*known)["actual_micro_usd"].get<int64_t>()) : "-");
      row.push_back(!has ? "-" : variance < 0 ? "-" + format_usd(-variance) : "+" + format_usd(variance));
    }
    scenes.push_back(std::move(row));
  }
  ctx.info("");
  ctx.info("By scene:");
  for (const std::string& line : table(scenes, 1)) {
    ctx.info(line);
  }
  if (!p.scenes_without_shotlist.empty()) {
    std::string ids;
    for (const std::string& id : p.scenes_without_shotlist) {
      ids += (ids.empty() ? "" : ", ") + id;
    }
    ctx.info(
        ctx.paint("  not planned yet (no SHOTLIST): " + ids + "; their video is not in this total", "33"));
  }

  std::vector<std::vector<std::string>> tiers = {
      {"tier", "resolution", "shots", "seconds", "$/s", "projected"}};
  for (const governance::TierLine& line : p.tiers) {
    tiers.push_back({line.tier, std::string(governance::resolution_name(line.resolution)),
                     std::to_string(line.shots), seconds_text(line.duration_ms),
                     format_usd(line.per_second_micro_usd), format_usd(line.projected_micro_usd)});
  }
  ctx.info("");
  ctx.info("Video by tier (duration-weighted regen multiplier x" +
           two_decimals(v.report["estimated_regen_multiplier"].get<double>()) + "):");
  for (const std::string& line : table(tiers, 2)) {
    ctx.info(line);
  }
  if (!p.model_tiers.empty()) {
    std::vector<std::vector<std::string>> calls = {{"tier", "calls", "projected"}};
    for (const governance::ModelTierLine& line : p.model_tiers) {
      calls.push_back({line.tier, std::to_string(line.calls), format_usd(line.projected_micro_usd)});
    }
    ctx.info("");
    ctx.info("Model calls by tier:");
    for (const std::string& line : table(calls, 1)) {
      ctx.info(line);
    }
  }

  ctx.info("");
  ctx.info("Total projected: " + format_usd(p.total_micro_usd) + " (video proxy " +
           format_usd(p.proxy_micro_usd) + ", video final " + format_usd(p.final_micro_usd) +
           ", model calls " + format_usd(p.model_calls_micro_usd) + ")");
  const json& gate = v.report["gate"];
  if (gate["scores"].contains("projected_pct_of_cap")) {
    ctx.info("Project cap: " + format_usd(v.project_cap_micro_usd) + "; the projection is " +
             two_decimals(gate["scores"]["projected_pct_of_cap"].get<double>()) + " % of it (WARN at " +
             std::to_string(v.warn_pct) + " %)");
  }
  if (with_actuals) {
    const json& versus = v.report["projected_vs_actual"];
    std::string pct;
    if (versus.contains("variance_pct")) {
      double variance = versus["variance_pct"].get<double>();
      pct = std::string(" (") + (variance < 0 ? "-" : "+") + two_decimals(std::abs(variance)) + " %)";
    }
    ctx.info("Spent so far (committed): " + format_usd(versus["actual_micro_usd"].get<int64_t>()) +
             " against " + format_usd(versus["projected_micro_usd"].get<int64_t>()) +
             " projected for the scenes that have spend" + pct +
             "; a scene's variance means most once it is finished");
  }
  if (v.report.contains("prompt_caching")) {
    const json& caching = v.report["prompt_caching"];
    ctx.info("Prompt caching saved " + format_usd(caching["saved_micro_usd"].get<int64_t>()) + " so far (" +
             std::to_string(caching["cached_input_tokens"].get<int64_t>()) +
             " input tokens read from the providers' caches at their cached price)");
  }
  std::string verdict = gate["verdict"].get<std::string>();
  for (const json& reason : gate["reasons"]) {
    ctx.info(ctx.paint(verdict + ": " + reason.get<std::string>(), verdict == "FAIL" ? "31" : "33"));
  }
  for (const SceneCapFinding& finding : scene_cap_findings(v)) {
    ctx.info(ctx.paint(finding.text(v), finding.verdict == "FAIL" ? "31" : "33"));
  }
}

void run_cost(const CostOptions& o, Context& ctx) {
  Result<CostView> view = gather(o);
  if (!view) {
    ctx.fail(view.error());
    return;
  }
  if (ctx.json) {
    ctx.emit_json(view_json(*view, o.dir));
  } else {
    print_view(*view, o.dir, ctx);
  }
  ctx.exit = ExitCode::ok;
}

}  // namespace

void setup_cost(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<CostOptions>();
  CLI::App* cmd =
      app.add_subcommand("cost", "Print the cost projection per scene and tier without running anything");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->footer(
      "Read-only: runs nothing, calls no model, writes nothing. Works before `avps init` too (a folder\n"
      "holding avps.json and brief.md).\n\n"
      "Basis: the recorded SCENES and SHOTLISTs when shots are planned; before that, an estimate from\n"
      "the brief (its scene and shot counts, else defaults: 4 shots per scene, 5 s each, hero tiers\n"
      "A 20 % / B 50 % / C 30 %, regen risk medium), with every assumption listed.\n\n"
      "What the numbers mean (all money exact to the micro-dollar, rounded up per line):\n"
      "  proxy / final  every shot rendered once at proxy and once at final resolution by the\n"
      "                 cheapest capable model of its tier (A gen_premium, B gen_mid, C gen_low),\n"
      "                 times its regen multiplier (risk low x1.1, medium x1.3, high x1.6)\n"
      "  model calls    the model skills' worst-case calls (max output tokens) for that scene;\n"
      "                 project-level calls (story, breakdown, locks) have their own line\n"
      "  total          proxy + final + model calls; every total is the sum of its lines\n"
      "  cap            the project cap of avps.json and the share the total takes of it; WARN at\n"
      "                 budget/warn_pct (default 90 %), FAIL above the cap; scene caps likewise\n"
      "  actual         committed spend per scene from the record, once there is some\n"
      "Exit 0 (also when the projection is over a cap); 4 for a folder that is not a project and\n"
      "holds no avps.json, or a configuration error. --json prints the same numbers as one object.");
  cmd->callback([options, &ctx]() { run_cost(*options, ctx); });
}

}  // namespace avps::cli
