// `avps report DIR [-o FILE] [--no-frames]` and `avps report DIR --json`: the production report
// (report/report.hpp). By default it is recorded as the next REPORT artifact (a writing command);
// with -o it is a snapshot written to FILE, and --json prints the read model: both read-only, and
// both work while a run writes (they read one consistent snapshot and say so).
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "avps/core/clock.hpp"
#include "avps/core/fs.hpp"
#include "avps/ledger/ledger.hpp"
#include "avps/project/project.hpp"
#include "avps/report/html.hpp"
#include "avps/report/report.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {
namespace fs = std::filesystem;

struct ReportCommandOptions {
  std::string dir = ".";
  std::string output;
  bool no_frames = false;
};

// The project folder as a page written into `page_dir` links to it.
std::string href_from(const fs::path& page_dir, const fs::path& project_dir) {
  std::error_code ec;
  fs::path relative = fs::relative(fs::absolute(project_dir), fs::absolute(page_dir), ec);
  std::string href = ec || relative.empty() ? fs::absolute(project_dir).string() : relative.generic_string();
  return href == "." ? "" : href + "/";
}

Result<void> run_report(const ReportCommandOptions& o, Context& ctx) {
  core::SystemClock clock;
  const bool live = ledger::writer_active(o.dir);
  const bool snapshot = ctx.json || !o.output.empty();
  if (!snapshot && live) {
    return make_error(ErrorCode::configuration,
                      "a run is writing " + o.dir + ", so no REPORT can be recorded now; `avps report " + o.dir +
                          " -o FILE` writes a snapshot of it, `avps run --report` records one as the run goes");
  }
  AVPS_TRY_ASSIGN(
      std::unique_ptr<project::Project> project,
      project::Project::open(o.dir, snapshot ? ledger::OpenMode::read_only : ledger::OpenMode::read_write, {}, clock));
  report::ReportOptions options;
  options.frames = !o.no_frames && !ctx.json;
  options.frame_cache = report::frame_cache_dir();
  options.jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (!o.output.empty()) {
    options.project_href =
        href_from(fs::path(o.output).parent_path().empty() ? "." : fs::path(o.output).parent_path(), o.dir);
  }
  if (live) {
    // Said on the page, beside the event the snapshot ends at: the record goes on after it.
    options.live_note = "a snapshot, read while a run was writing";
  }
  AVPS_TRY_ASSIGN(report::ReportPage page, report::make_report(*project, options));
  const std::string as_of = "event " + page.model["as_of"]["seq"].dump();
  if (ctx.json) {
    ctx.emit_json(page.model);
    if (live) {
      std::cerr << "avps report: a snapshot up to " << as_of << ", read while a run was writing\n";
    }
    return ok();
  }
  if (!o.output.empty()) {
    AVPS_TRY(core::create_directories_durable(fs::absolute(o.output).parent_path()));
    AVPS_TRY(core::write_file_atomic(o.output, page.html, core::Overwrite::yes, core::Durability::durable));
    ctx.info("wrote " + o.output + " (" + std::to_string(page.html.size() / 1024) + " KB, " + as_of +
             (live ? "; a snapshot: a run is writing the project" : "") + ")");
    return ok();
  }
  AVPS_TRY_ASSIGN(ledger::ArtifactRecord record, report::record_report(*project, page));
  ctx.info("recorded " + record.path + " (" + std::to_string(page.html.size() / 1024) + " KB, " + as_of + ")");
  return ok();
}

}  // namespace

void setup_report(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<ReportCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report", "The production report: one HTML page with spend, cost, QC, loops and a contact sheet");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->add_option("-o,--output", options->output,
                  "Write the page to FILE instead of recording it (a snapshot; read-only, works during a run)");
  cmd->add_flag("--no-frames", options->no_frames, "Leave the contact sheet without frames (no ffmpeg)");
  cmd->footer(
      "Writes one self-contained HTML file (no network, no external script, style or font; opens from\n"
      "file://): the header (phase reached, spend against every cap, calls, tokens, seconds rendered,\n"
      "open hard stops and what to do about each), spend over the run, cost by scene and tier, by model\n"
      "and the most expensive shots, the QC grid of shots x attempts, the loops' timeline per scene, a\n"
      "contact sheet of the latest render of every shot, the scene table and the runs.\n"
      "By default it is recorded as the next REPORT artifact, reports/REPORT_v###.html, whose JSON is the\n"
      "read model (a writing command: refused while a run writes; use -o then). -o FILE writes the page\n"
      "there instead, --json prints the read model (docs/formats/report.md): both read-only, both work\n"
      "on a project a run is writing, from one consistent snapshot, and say so. Exit 0.");
  cmd->callback([options, &ctx]() {
    Result<void> done = run_report(*options, ctx);
    if (!done) {
      ctx.fail(done.error());
    }
  });
}

}  // namespace avps::cli
