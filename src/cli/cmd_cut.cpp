// `avps cut DIR [-o FILE]`: the film so far as one MP4 (report/cut.hpp), recorded as the next CUT
// artifact, or written to FILE (read-only then).
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include "avps/core/clock.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/process.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"
#include "avps/report/cut.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {
namespace fs = std::filesystem;

struct CutOptions {
  std::string dir = ".";
  std::string output;
};

Result<void> run_cut(const CutOptions& o, Context& ctx) {
  core::SystemClock clock;
  const bool record = o.output.empty();
  if (record && ledger::writer_active(o.dir)) {
    return make_error(ErrorCode::configuration, "a run is writing " + o.dir +
                                                    ", so no CUT can be recorded now; `avps cut " + o.dir +
                                                    " -o FILE` assembles the film so far without recording it");
  }
  AVPS_TRY_ASSIGN(
      std::unique_ptr<project::Project> project,
      project::Project::open(o.dir, record ? ledger::OpenMode::read_write : ledger::OpenMode::read_only, {}, clock));
  AVPS_TRY_ASSIGN(report::ProjectView view, report::read_project(*project));
  AVPS_TRY_ASSIGN(report::CutPlan plan, report::plan_cut(*project, view));
  const int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  AVPS_TRY_ASSIGN(core::ScratchDir scratch, core::ScratchDir::make("avps-cut-out"));
  const fs::path assembled = record ? scratch.path() / "cut.mp4" : fs::path(o.output);
  if (!record) {
    AVPS_TRY(core::create_directories_durable(fs::absolute(assembled).parent_path()));
  }
  AVPS_TRY(report::assemble_cut(project->dir(), plan, assembled, jobs, [&](size_t done, size_t total) {
    if (done == total || done % 10 == 0) {
      ctx.info("cut: " + std::to_string(done) + "/" + std::to_string(total) + " shots encoded");
    }
  }));
  std::string where = o.output;
  if (record) {
    AVPS_TRY_ASSIGN(ledger::ArtifactRecord recorded, report::record_cut(*project, plan, assembled));
    where = recorded.path;
  }
  const nlohmann::json content = plan.to_json();
  if (ctx.json) {
    nlohmann::json out = content;
    out["file"] = where;
    out["recorded"] = record;
    ctx.emit_json(out);
    return ok();
  }
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.2f", plan.duration_s);
  std::cout << (record ? "recorded " : "wrote ") << where << ": " << plan.shots.size() << " shots, " << seconds
            << " s, " << plan.width << "x" << plan.height << " at " << plan.fps << " fps\n";
  for (const report::CutShot& shot : plan.shots) {
    std::cout << "  " << shot.shot_id << "  " << shot.planned_s << " s  "
              << (shot.source == "render"       ? shot.file
                  : shot.source == "storyboard" ? "storyboard frame (no passed final): " + shot.file
                                                : std::string("black slate (no passed final, no storyboard)"))
              << "\n";
  }
  return ok();
}

}  // namespace

void setup_cut(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<CutOptions>();
  CLI::App* cmd = app.add_subcommand("cut", "The film so far as one MP4: every shot in story order");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->add_option("-o,--output", options->output, "Write the video to FILE instead of recording it (read-only)");
  cmd->footer(
      "Assembles every shot of the latest SCENES and SHOTLISTs in scene and shot order, each for its\n"
      "planned duration: its passed final render (trimmed, or held on its last frame when shorter),\n"
      "else its storyboard frame, else a black slate; all normalised to the style lock's frame rate\n"
      "and aspect ratio at 1280 pixels wide. Picture only for now. Needs ffmpeg (apt-get install ffmpeg).\n"
      "Recorded as the next CUT artifact, cut/CUT_v###.mp4, whose JSON lists each shot, its source\n"
      "and the shots without a passed final (refused while a run writes: use -o then). -o FILE writes\n"
      "the video there and records nothing. Lists every shot and where its picture came from. Exit 0.");
  cmd->callback([options, &ctx]() {
    Result<void> done = run_cut(*options, ctx);
    if (!done) {
      ctx.fail(done.error());
    }
  });
}

}  // namespace avps::cli
