#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include "avps/backends/registry.hpp"
#include "avps/cli/progress.hpp"
#include "avps/core/clock.hpp"
#include "avps/core/diag.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/memory.hpp"
#include "avps/engine/engine.hpp"
#include "avps/governance/models.hpp"
#include "avps/governance/override.hpp"
#include "avps/project/project.hpp"
#include "avps/report/html.hpp"
#include "avps/report/read_model.hpp"
#include "avps/report/report.hpp"
#include "commands.hpp"

namespace avps::cli {
namespace fs = std::filesystem;

namespace {

struct RunOptionsCli {
  std::string dir = ".";
  std::string until;
  std::string scene;
  int jobs = 1;
  bool report = false;
  bool cancel_on_interrupt = false;
  bool keep_on_interrupt = false;
};

using SteadyClock = std::chrono::steady_clock;

/// What the three renderers of a run's progress share: the time since the run started, Ctrl-C,
/// and a finish() that leaves the terminal ready for the summary or an error.
class RunObserver : public engine::Observer {
 public:
  bool interrupted() const override { return g_interrupted; }
  /// --cancel-on-interrupt / --keep-on-interrupt, else a question on a terminal (no terminal:
  /// keep, the choice that loses nothing).
  bool cancel_jobs_on_interrupt() override {
    if (m_on_interrupt != 0) {
      return m_on_interrupt > 0;
    }
    if (::isatty(STDIN_FILENO) != 1 || ::isatty(STDERR_FILENO) != 1) {
      return false;
    }
    std::cerr << "\nInterrupted with provider jobs in flight. Cancel them at the provider (their reservations "
                 "are released)? [y/N] "
              << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    return !answer.empty() && (answer[0] == 'y' || answer[0] == 'Y');
  }
  /// +1 cancel, -1 keep, 0 ask.
  void set_on_interrupt(int choice) { m_on_interrupt = choice; }
  virtual void finish() {}

 protected:
  std::chrono::milliseconds elapsed() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - m_start);
  }

 private:
  const SteadyClock::time_point m_start = SteadyClock::now();
  int m_on_interrupt = 0;
};

/// Not a terminal: every event's plain line on stdout, as a log reads. A hard stop has no line of
/// its own; the error the run ends with says it.
class PlainObserver : public RunObserver {
 public:
  explicit PlainObserver(const Context& ctx) : m_ctx(ctx) {}
  void progress(const engine::Progress& progress) override {
    if (progress.kind != engine::Progress::Kind::stop) {
      m_ctx.info(progress.text);
    }
  }

 private:
  const Context& m_ctx;
};

/// --json: one event object per line on stdout (docs/formats/run-events.md), flushed as it
/// happens; --quiet keeps only the result object.
class JsonObserver : public RunObserver {
 public:
  explicit JsonObserver(const Context& ctx) : m_ctx(ctx) {}
  void progress(const engine::Progress& progress) override {
    if (!m_ctx.quiet) {
      m_ctx.emit_json(event_json(progress, elapsed()));
      std::cout.flush();
    }
  }

 private:
  const Context& m_ctx;
};

/// Which plain lines the live renderer prints above its status line.
enum class Echo {
  milestones,  ///< stdout is the same terminal: phase starts, failures, revisions, escalations
  every_line,  ///< stdout goes elsewhere (a file, a pipe): the whole plain log, as without a terminal
};

/// stderr is a terminal: one status line redrawn in place on stderr, at most ten times a second
/// (a ticker thread redraws it, so the elapsed time moves while a call is in flight), with the
/// lines that matter printed on stdout above it.
class LiveObserver : public RunObserver {
 public:
  LiveObserver(const Context& ctx, Echo echo) : m_ctx(ctx), m_echo(echo) {
    m_ticker = std::thread([this] { tick(); });
  }
  ~LiveObserver() override { finish(); }
  LiveObserver(const LiveObserver&) = delete;
  LiveObserver& operator=(const LiveObserver&) = delete;

  void progress(const engine::Progress& progress) override {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (progress.kind != engine::Progress::Kind::stop && (m_echo == Echo::every_line || stays_on_screen(progress))) {
      clear_locked();
      std::cout << painted(progress) << '\n' << std::flush;
    }
    m_last = progress;
    m_has_event = true;
    m_dirty = true;
  }

  void finish() override {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_done = true;
    }
    m_wake.notify_all();
    if (m_ticker.joinable()) {
      m_ticker.join();
    }
    std::lock_guard<std::mutex> lock(m_mutex);
    clear_locked();
  }

 private:
  static constexpr std::chrono::milliseconds k_redraw_every{100};

  void tick() {
    std::unique_lock<std::mutex> lock(m_mutex);
    while (!m_done) {
      m_wake.wait_for(lock, k_redraw_every);
      if (m_done || !m_has_event) {
        continue;
      }
      const long long second = elapsed().count() / 1000;
      const bool stopping = g_interrupted;
      if (m_dirty || second != m_drawn_second || stopping != m_drawn_stopping) {
        // One column short of the width: writing the last column makes some terminals wrap.
        const std::string line =
            status_line(m_last, elapsed(), terminal_width() - 1, stopping ? Stopping::yes : Stopping::no);
        std::cerr << "\r\033[K" << line << std::flush;
        m_shown = true;
        m_dirty = false;
        m_drawn_second = second;
        m_drawn_stopping = stopping;
      }
    }
  }

  void clear_locked() {
    if (m_shown) {
      std::cerr << "\r\033[K" << std::flush;
      m_shown = false;
      m_dirty = true;
    }
  }

  std::string painted(const engine::Progress& progress) const {
    using Kind = engine::Progress::Kind;
    switch (progress.kind) {
      case Kind::phase:
        return m_ctx.paint(progress.text, "1");
      case Kind::verdict:
      case Kind::wave:
        return stays_on_screen(progress) ? m_ctx.paint(progress.text, "31") : progress.text;
      case Kind::revise:
      case Kind::escalate:
        return m_ctx.paint(progress.text, "33");
      case Kind::attempt:
      case Kind::wait:
      case Kind::stop:
      case Kind::note:
        return progress.text;
    }
    return progress.text;
  }

  static int terminal_width() {
    winsize size{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
      return size.ws_col;
    }
    if (const char* columns = std::getenv("COLUMNS"); columns && std::atoi(columns) > 0) {
      return std::atoi(columns);
    }
    return 100;
  }

  const Context& m_ctx;
  const Echo m_echo;
  std::mutex m_mutex;
  std::condition_variable m_wake;
  engine::Progress m_last;
  bool m_has_event = false;
  bool m_dirty = false;
  bool m_shown = false;
  bool m_done = false;
  long long m_drawn_second = -1;
  bool m_drawn_stopping = false;
  std::thread m_ticker;  // last: started once everything it reads is initialised
};

/// The renderer for where the output goes: --json events, a live line on a terminal, or plain lines.
/// Diagnostics on stderr (-v, AVPS_LOG) rule out the live line: it would be redrawn over them.
std::unique_ptr<RunObserver> make_observer(const Context& ctx) {
  if (ctx.json) {
    return std::make_unique<JsonObserver>(ctx);
  }
  const bool diagnostics_on_stderr = ctx.diag.terminal_level != core::diag::Level::off;
  if (!ctx.quiet && !diagnostics_on_stderr && ::isatty(STDERR_FILENO) == 1) {
    return std::make_unique<LiveObserver>(ctx, ::isatty(STDOUT_FILENO) == 1 ? Echo::milestones : Echo::every_line);
  }
  return std::make_unique<PlainObserver>(ctx);
}

/// `--report`: the production report kept current while the run goes — reports/live.html rewritten
/// when a phase starts (so the one before it is done), at most every k_refresh, from a read-only
/// snapshot of the record — and recorded as the next REPORT artifact when the run ends, which
/// removes live.html. A refresh that fails never stops the run: one warning, and the run goes on.
/// Phase events come from the engine's walk thread alone, between phases, so refreshes never overlap.
class LiveReportObserver : public RunObserver {
 public:
  static constexpr std::chrono::seconds k_refresh{10};

  LiveReportObserver(std::unique_ptr<RunObserver> inner, fs::path project_dir)
      : m_inner(std::move(inner)), m_dir(std::move(project_dir)) {}

  bool interrupted() const override { return m_inner->interrupted(); }
  bool cancel_jobs_on_interrupt() override { return m_inner->cancel_jobs_on_interrupt(); }
  void finish() override { m_inner->finish(); }

  void progress(const engine::Progress& progress) override {
    m_inner->progress(progress);
    if (progress.kind != engine::Progress::Kind::phase || m_failed) {
      return;
    }
    const auto now = SteadyClock::now();
    if (m_refreshed && now - *m_refreshed < k_refresh) {
      return;
    }
    m_refreshed = now;
    if (Result<void> done = refresh(progress.text); !done) {
      m_failed = true;
      std::cerr << "avps: warning: --report: reports/live.html not refreshed: " << done.error().message
                << "; the run goes on, and its REPORT is recorded at the end\n";
    }
  }

  /// Records the run's REPORT (the project as the run leaves it) and removes live.html.
  Result<ledger::ArtifactRecord> record(project::Project& project) {
    report::ReportOptions options;
    options.frame_cache = report::frame_cache_dir();
    AVPS_TRY_ASSIGN(report::ReportPage page, report::make_report(project, options));
    AVPS_TRY_ASSIGN(ledger::ArtifactRecord recorded, report::record_report(project, page));
    std::error_code ignored;
    fs::remove(live_path(), ignored);
    return recorded;
  }

 private:
  fs::path live_path() const { return m_dir / "reports" / "live.html"; }

  Result<void> refresh(const std::string& phase) {
    core::SystemClock clock;
    AVPS_TRY_ASSIGN(std::unique_ptr<project::Project> snapshot,
                    project::Project::open(m_dir, ledger::OpenMode::read_only, {}, clock));
    report::ReportOptions options;
    options.frame_cache = report::frame_cache_dir();
    options.live_note = "written during the run, as " + phase + " started";
    AVPS_TRY_ASSIGN(report::ReportPage page, report::make_report(*snapshot, options));
    AVPS_TRY(core::create_directories_durable(m_dir / "reports"));
    return core::write_file_atomic(live_path(), page.html, core::Overwrite::yes, core::Durability::cached);
  }

  std::unique_ptr<RunObserver> m_inner;
  const fs::path m_dir;
  std::optional<SteadyClock::time_point> m_refreshed;
  bool m_failed = false;
};

/// The run's diagnostic log, .avps/diag.log (docs/formats/diag-log.md), for as long as it lives;
/// then diagnostics go back to stderr only. A log that cannot be opened (a read-only project)
/// never stops the run: one warning, and it goes on without.
class DiagLog {
 public:
  DiagLog(const Context& ctx, const fs::path& project_dir) : m_ctx(ctx) {
    core::diag::Options options = ctx.diag;
    options.log_file = project_dir / ".avps" / "diag.log";
    if (Result<void> opened = core::diag::configure(options); !opened) {
      std::cerr << "avps: warning: " << opened.error().message << "; running without it\n";
    }
  }
  ~DiagLog() { std::ignore = core::diag::configure(m_ctx.diag); }  // without a file: cannot fail
  DiagLog(const DiagLog&) = delete;
  DiagLog& operator=(const DiagLog&) = delete;

 private:
  const Context& m_ctx;
};

// AVPS_VERIFY_BY_NAME=1: every step found up to date by the names of its inputs is gathered whole
// as well, and must have the same step key (RunOptions::verify_by_name; the e2e tests set it).
bool verify_by_name_requested() {
  const char* env = std::getenv("AVPS_VERIFY_BY_NAME");
  return env != nullptr && std::string_view(env) == "1";
}

/// The writer keeps the read model's folds (report::write_checkpoint) as the run leaves the record,
/// whatever its outcome, so that `avps status` and `avps report` fold only what is recorded after
/// it. Derived state: a checkpoint not written costs readers time, not correctness, so a failure
/// is one warning and the run's outcome stands.
void save_fold_checkpoint(project::Project& project) {
  // The walk's memory is free by now (the engine is gone) but the allocator keeps it, much of it
  // in the arenas of the --jobs threads, which the checkpoint, made on this thread, cannot reuse:
  // given back first, the end of a run adds its own peak to the walk's instead of stacking on it
  // (at 500 scenes, a fold of every event: 218 MB of peak RSS before, see bench/README.md).
  core::give_back_free_memory();
  Result<report::CheckpointWritten> written = report::write_checkpoint(project);
  if (!written) {
    std::cerr << "avps: warning: the fold checkpoint (" << report::checkpoint_path(project.dir()).string()
              << ") was not written: " << written.error().message
              << "; `avps status` and `avps report` fold the whole record instead\n";
    return;
  }
  if (written->kept_with_tail > 0) {
    core::diag::debug("fold checkpoint as of event " + std::to_string(written->seq) + " kept as it is: the " +
                      std::to_string(written->kept_with_tail) + " events after it are runs with nothing to do");
    return;
  }
  core::diag::debug(
      "fold checkpoint as of event " + std::to_string(written->seq) + ": " + std::to_string(written->events_folded) +
      " events folded" + (written->from_previous ? " after the previous checkpoint" : "") + ", " +
      (written->bytes == 0 ? std::string("nothing to write") : std::to_string(written->bytes) + " bytes"));
}

void run_run(const RunOptionsCli& o, Context& ctx) {
  // Events stream one per line before the result, so every document goes on one line.
  ctx.json_lines = true;
  core::SystemClock clock;
  auto project = project::Project::open(o.dir, ledger::OpenMode::read_write, {}, clock);
  if (!project) {
    ctx.fail(project.error());
    return;
  }
  fs::path project_dir = o.dir;
  DiagLog diag_log(ctx, project_dir);
  core::diag::debug("avps " AVPS_VERSION_STRING " run in " + project_dir.string() + " (pid " +
                    std::to_string(::getpid()) + ", --jobs " + std::to_string(o.jobs) +
                    (o.until.empty() ? "" : ", --until " + o.until) + (o.scene.empty() ? "" : ", --scene " + o.scene) +
                    ")");
  std::unique_ptr<RunObserver> observer = make_observer(ctx);
  observer->set_on_interrupt(o.cancel_on_interrupt ? 1 : o.keep_on_interrupt ? -1 : 0);
  LiveReportObserver* live_report = nullptr;
  if (o.report) {
    auto wrapped = std::make_unique<LiveReportObserver>(std::move(observer), project_dir);
    live_report = wrapped.get();
    observer = std::move(wrapped);
  }
  // Every declared model gets its backend, or the run does not start (exit 4, naming each).
  auto open_backends = [project_dir](const governance::ModelsFile& models, const project::Config& config) {
    return backends::BackendRegistry::open(engine::backend_specs(models, project_dir), config.document,
                                           backends::process_env());
  };
  Result<engine::RunOutcome> outcome = engine::run_production(
      **project, engine::RunOptions{o.until, o.scene, o.jobs, verify_by_name_requested()}, open_backends, *observer);
  observer->finish();  // the live line goes before the summary or the error
  if (!outcome) {
    ctx.fail(outcome.error());
    return;
  }
  const engine::RunOutcome& r = *outcome;
  if (live_report) {
    // Whatever the run's outcome, the report of where it left the production.
    Result<ledger::ArtifactRecord> recorded = live_report->record(**project);
    if (!recorded) {
      ctx.fail(recorded.error());
      return;
    }
    if (!ctx.json) {
      ctx.info("recorded " + recorded->path);
    }
  }
  save_fold_checkpoint(**project);
  nlohmann::json summary = {{"calls_made", r.calls_made},
                            {"calls_replayed", r.calls_replayed},
                            {"steps_skipped", r.steps_skipped},
                            {"steps_known_by_name", r.steps_known_by_name},
                            {"artifacts_written", r.artifacts_written}};
  if (r.exit != ExitCode::ok) {
    ctx.fail(r.exit, r.message);
    return;
  }
  if (ctx.json) {
    summary["ok"] = true;
    ctx.emit_json(summary);
  } else {
    ctx.info("done: " + std::to_string(r.artifacts_written) + " artifacts written, " + std::to_string(r.calls_made) +
             " calls made, " + std::to_string(r.calls_replayed) + " answered from the record, " +
             std::to_string(r.steps_skipped) + " steps up to date");
  }
}

}  // namespace

void setup_run(CLI::App& app, Context& ctx) {
  auto options = std::make_shared<RunOptionsCli>();
  CLI::App* cmd = app.add_subcommand("run", "Produce or resume a production: run the gated loops");
  cmd->add_option("dir", options->dir, "Project folder (default: .)");
  cmd->add_option("--until", options->until,
                  "Stop after this phase: narrative, locks, psychology, narrative_review, validation, continuity, "
                  "planning, cost_proxy, shots_proxy, cost_final, shots_final");
  cmd->add_option("--scene", options->scene,
                  "Produce only this scene (e.g. S03); the scenes before it still get their continuity");
  cmd->add_option("--jobs,-j", options->jobs, "Backend calls in flight at once (default 1); never changes the output")
      ->check(CLI::Range(1, 256));
  auto* cancel_flag = cmd->add_flag("--cancel-on-interrupt", options->cancel_on_interrupt,
                                    "On Ctrl-C, cancel provider jobs in flight and release their reservations");
  cmd->add_flag("--keep-on-interrupt", options->keep_on_interrupt,
                "On Ctrl-C, leave provider jobs running; the next `avps run` collects them")
      ->excludes(cancel_flag);
  cmd->add_flag("--report", options->report,
                "Keep reports/live.html current as the run goes; record the run's REPORT at the end");
  cmd->footer(
      "Runs the five loops of the stage graph (policies/stage_graph.json) on the project's backend (the\n"
      "offline sim by default): narrative, locks, psychology and the narrative review once; then scene by\n"
      "scene validation, continuity and planning; then per scene the cost loop, proxy waves with QC and\n"
      "regen rounds, the cost loop again, and final waves. Every call is routed, reserved against the\n"
      "budget, recorded before it is sent and after it answers; every output is schema-checked and gated.\n"
      "Running again resumes: recorded calls are not repeated; only stale steps re-run.\n"
      "On a terminal a live status line shows phase, scene, shot, skill and attempt, spend against the\n"
      "cap and elapsed time, with phase starts, failures, revisions and escalations printed above it;\n"
      "otherwise one plain line per event. With --json, stdout is one JSON event per line, then the\n"
      "result object (docs/formats/run-events.md).\n"
      "--report rewrites reports/live.html (the page of `avps report`) as each phase starts, at most every\n"
      "10 s, and records the run's REPORT_v###.html when it ends (live.html is then removed).\n"
      "Exit codes: 0 done, 3 hard stop (see `avps status`; `avps override` records a decision),\n"
      "4 configuration, 130 interrupted (Ctrl-C; run again to resume).\n"
      "Ctrl-C while provider jobs (async_job) are in flight asks whether to cancel them (on a terminal;\n"
      "otherwise they are kept): --cancel-on-interrupt cancels them at the provider and releases their\n"
      "reservations, --keep-on-interrupt leaves them running and the next run polls and collects them.");
  cmd->callback([options, &ctx]() { run_run(*options, ctx); });
}

}  // namespace avps::cli
