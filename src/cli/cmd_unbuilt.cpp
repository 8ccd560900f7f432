// Commands whose options are settled but whose engine is not in this build. They parse their
// options (so --help is real and scripts can be written against them) and then refuse, saying so,
// with exit code 4: avps never pretends to have done something it did not do.
#include <memory>

#include "commands.hpp"

namespace avps::cli {

namespace {

struct UnbuiltOptions {
  std::string dir = ".";
  std::string reason;
  std::string stop;
  double raise_cap = 0;
  int allow_attempts = 0;
  std::string accept;
};

void refuse(Context& ctx, const std::string& command) {
  ctx.fail(ExitCode::environment, "`avps " + command + "` is not built yet in avps " + AVPS_VERSION_STRING +
                                      "; nothing was done");
}

// The callback owns `options`: CLI11 writes parsed values into it after setup returns.
CLI::App* unbuilt(CLI::App& parent, Context& ctx, const std::shared_ptr<UnbuiltOptions>& options,
                  const std::string& name, const std::string& description, const std::string& full_name) {
  CLI::App* cmd = parent.add_subcommand(name, description + " [not built yet]");
  cmd->callback([&ctx, options, full_name]() { refuse(ctx, full_name); });
  return cmd;
}

}  // namespace

void setup_unbuilt(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<UnbuiltOptions>();


  CLI::App* report = unbuilt(app, ctx, o, "report", "Summarise a production: cost, tiers, regen, QC, failures", "report");
  report->add_option("dir", o->dir, "Project folder (default: .)");
}

}  // namespace avps::cli
