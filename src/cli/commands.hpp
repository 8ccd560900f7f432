#pragma once
// Internal to the cli module: the subcommands and what they share. Each subcommand is
// setup_x(CLI::App&, Context&): it declares its options and a callback that runs it and stores
// the exit code in the Context (CLI11's subcom_in_files pattern).

#include <atomic>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "avps/core/diag.hpp"
#include "avps/core/exit_code.hpp"
#include "avps/core/result.hpp"
#include "avps/core/violation.hpp"

namespace avps::cli {

/// Global options and the way results reach the terminal. The only place avps prints.
struct Context {
  bool json = false;
  bool quiet = false;
  bool verbose = false;
  bool no_color = false;
  /// --json output as JSON Lines: every document on one line (a command that streams events,
  /// `avps run`, sets it so that each line of stdout is valid JSON on its own).
  bool json_lines = false;
  ExitCode exit = ExitCode::ok;
  /// Where core::diag lines go: stderr at the level of -v or AVPS_LOG, set once the arguments
  /// are parsed. `avps run` adds its file to a copy of it.
  core::diag::Options diag;

  bool color() const;
  /// Informational line on stdout (not in --json or --quiet mode).
  void info(const std::string& line) const;
  /// A diagnostic line on stderr, only with --verbose.
  void debug(const std::string& line) const;
  /// A JSON document on stdout (--json mode): indented, or on one line with json_lines.
  void emit_json(const nlohmann::json& document) const;
  /// Reports an error (stderr text, or a JSON object on stdout with --json) and sets the exit
  /// code from its kind.
  void fail(const Error& error);
  void fail(ExitCode code, const std::string& message);
  std::string paint(const std::string& text, const char* ansi) const;
};

/// Set by the SIGINT/SIGTERM handler; long-running commands poll it.
extern std::atomic<bool> g_interrupted;

void setup_init(CLI::App& app, Context& ctx);
void setup_gate(CLI::App& app, Context& ctx);
void setup_log(CLI::App& app, Context& ctx);
void setup_artifact(CLI::App& app, Context& ctx);
void setup_run(CLI::App& app, Context& ctx);
void setup_status(CLI::App& app, Context& ctx);
void setup_skills(CLI::App& app, Context& ctx);
void setup_cost(CLI::App& app, Context& ctx);
void setup_models(CLI::App& app, Context& ctx);
void setup_override(CLI::App& app, Context& ctx);
void setup_report(CLI::App& app, Context& ctx);
void setup_cut(CLI::App& app, Context& ctx);
void setup_replay(CLI::App& app, Context& ctx);
/// run, status, replay, artifact, cost, override, report: declared with their options,
/// refusing to run until they are built.

}  // namespace avps::cli
