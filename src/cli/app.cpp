#include "avps/cli/app.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "avps/core/fs.hpp"
#include "avps/core/memory.hpp"
#include "commands.hpp"

namespace avps::cli {

std::atomic<bool> g_interrupted{false};

namespace {

void on_signal(int) {
  g_interrupted = true;
}

const char* k_description =
    "avps — a production operating system for AI-made films and series.\n"
    "It runs the narrative, validation, continuity, production and cost loops of the\n"
    "\"AI Video Production Skills\" framework as a gated state machine over a project folder,\n"
    "and keeps an append-only, tamper-evident record of everything it does.\n\n"
    "Exit codes: 0 ok, 1 a rule or gate violated, 2 usage error, 3 hard stop awaiting a human\n"
    "decision, 4 configuration or environment error, 130 interrupted. See docs/cli.md.";

// The stderr printer of core::diag lines: "avps: debug: attempt 1 of ...". The engine's worker
// threads call it (one line at a time, core::diag serialises them).
void print_diagnostic(core::diag::Level level, std::string_view message) {
  std::cerr << "avps: " + std::string(core::diag::level_name(level)) + ": " + std::string(message) + "\n";
}

// Diagnostics on stderr (core/diag.hpp): -v means debug; else AVPS_LOG names the level (debug,
// info, warn, off); by default none. `avps run` adds its file (cmd_run.cpp, DiagLog).
void configure_diagnostics(Context& ctx) {
  using core::diag::Level;
  Level level = Level::off;
  if (const char* env = std::getenv("AVPS_LOG"); env != nullptr && *env != '\0') {
    if (std::optional<Level> named = core::diag::parse_level(env)) {
      level = *named;
    } else {
      std::cerr << "avps: warning: AVPS_LOG=" << env << " is not one of debug, info, warn, off; ignored\n";
    }
  }
  if (ctx.verbose) {
    level = Level::debug;
  }
  ctx.diag.terminal_level = level;
  ctx.diag.terminal = print_diagnostic;  // set even when off: it reports a failing log file
  std::ignore = core::diag::configure(ctx.diag);  // no file, so it cannot fail
}

}  // namespace

bool Context::color() const {
  if (no_color || json) {
    return false;
  }
  const char* no_color_env = std::getenv("NO_COLOR");
  if (no_color_env && *no_color_env) {
    return false;
  }
  return ::isatty(STDOUT_FILENO) == 1;
}

std::string Context::paint(const std::string& text, const char* ansi) const {
  return color() ? std::string("\033[") + ansi + "m" + text + "\033[0m" : text;
}

void Context::info(const std::string& line) const {
  if (!json && !quiet) {
    std::cout << line << '\n';
  }
}

void Context::debug(const std::string& line) const {
  if (verbose) {
    std::cerr << "avps: " << line << '\n';
  }
}

void Context::emit_json(const nlohmann::json& document) const {
  std::cout << document.dump(json_lines ? -1 : 2) << '\n';
}

void Context::fail(ExitCode code, const std::string& message) {
  exit = code;
  if (json) {
    emit_json({{"ok", false}, {"exit_code", static_cast<int>(code)}, {"error", message}});
  } else {
    std::cerr << "avps: error: " << message << '\n';
  }
}

void Context::fail(const Error& error) {
  fail(exit_code_for(error.code), error.message);
}

int main(int argc, char** argv) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  Context ctx;
  CLI::App app{k_description, "avps"};
  app.set_version_flag("--version",
                       std::string("avps ") + AVPS_VERSION_STRING + "\nallocator: " + core::allocator_name());
  app.require_subcommand(1);
  app.fallthrough();
  app.add_flag("--json", ctx.json, "Machine-readable JSON output on stdout");
  app.add_flag("-q,--quiet", ctx.quiet, "Print only errors");
  app.add_flag("-v,--verbose", ctx.verbose,
               "Print diagnostic detail on stderr: each HTTP attempt, retry and fallback (as AVPS_LOG=debug)");
  app.add_flag("--no-color", ctx.no_color, "No ANSI colours (also: the NO_COLOR environment variable)");

  CLI::App* help = app.add_subcommand("help", "Show help for avps or for one command");
  std::string help_topic;
  help->add_option("command", help_topic, "The command to explain");
  help->callback([&]() {
    // App::help() would describe the selected subcommand (this one); ask the formatter.
    if (help_topic.empty()) {
      std::cout << app.get_formatter()->make_help(&app, "avps", CLI::AppFormatMode::Normal);
      return;
    }
    for (CLI::App* sub : app.get_subcommands({})) {
      if (sub->get_name() == help_topic) {
        std::cout << sub->get_formatter()->make_help(sub, "avps " + help_topic, CLI::AppFormatMode::Normal);
        return;
      }
    }
    ctx.fail(ExitCode::usage, "no command named \"" + help_topic + "\"; see `avps help`");
  });

  // After every option is parsed (-v may follow the subcommand), before any subcommand runs.
  app.parse_complete_callback([&ctx] { configure_diagnostics(ctx); });

  setup_init(app, ctx);
  setup_gate(app, ctx);
  setup_log(app, ctx);
  setup_artifact(app, ctx);
  setup_run(app, ctx);
  setup_status(app, ctx);
  setup_skills(app, ctx);
  setup_cost(app, ctx);
  setup_models(app, ctx);
  setup_override(app, ctx);
  setup_replay(app, ctx);
  setup_report(app, ctx);
  setup_cut(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "avps: error: " << e.what() << "\n(see `avps help`";
    if (argc > 1) {
      std::cerr << " or `avps " << argv[1] << " --help`";
    }
    std::cerr << ")\n";
    return static_cast<int>(ExitCode::usage);
  } catch (const Fatal& e) {
    ctx.fail(e.code(), e.what());
  } catch (const std::exception& e) {
    // A bug: say so plainly rather than dying with an uncaught exception.
    ctx.fail(ExitCode::environment, std::string("internal error: ") + e.what());
  }
  if (g_interrupted && ctx.exit == ExitCode::ok) {
    ctx.exit = ExitCode::interrupted;
  }
  if (core::fault_plan_active()) {
    // Test hook (AVPS_FAULT_AT, core/fs.hpp): what the plan counted, so a test can run a command
    // once with "count" to learn how many operations there are to fail.
    const core::FaultCounts counts = core::fault_counts();
    std::cerr << "avps: fault plan counted " << counts.write << " writes, " << counts.fsync << " fsyncs, "
              << counts.rename << " renames\n";
  }
  return static_cast<int>(ctx.exit);
}

}  // namespace avps::cli
