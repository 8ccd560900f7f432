// `avps skills list | show | validate`: the skill registry as people and CI scripts see it.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "avps/project/project.hpp"
#include "avps/skills/registry.hpp"
#include "commands.hpp"

namespace avps::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct SkillsOptions {
  std::string dir;  ///< a project whose overrides to include; empty = the shipped definitions only
  std::string name;
};

Result<skills::Registry> open_registry(const SkillsOptions& options) {
  const fs::path project = options.dir;
  return skills::Registry::load(project::data_dir(), options.dir.empty() ? nullptr : &project);
}

// "shipped", "project" (the project's skill.json) or "project prompt" (only its prompt.md).
std::string source_label(const skills::SkillDef& skill) {
  if (skill.definition.origin == skills::Origin::project) {
    return "project";
  }
  return skill.prompt.origin == skills::Origin::project ? "project prompt" : "shipped";
}

std::string tier_label(const skills::SkillDef& skill) {
  return skill.tier ? skill.tier->default_tier : "builtin";
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& item : items) {
    out += (out.empty() ? "" : separator) + item;
  }
  return out;
}

void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(headers.size());
  for (size_t c = 0; c < headers.size(); ++c) {
    widths[c] = headers[c].size();
    for (const auto& row : rows) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  auto print = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      out += cells[c];
      if (c + 1 < cells.size()) {
        out += std::string(widths[c] - cells[c].size() + 2, ' ');
      }
    }
    while (!out.empty() && out.back() == ' ') {
      out.pop_back();
    }
    std::cout << out << '\n';
  };
  print(headers);
  for (const auto& row : rows) {
    print(row);
  }
}

// Definitions that did not load are not listed; say so rather than let the list look complete.
void warn_broken(const skills::Registry& registry, const Context& ctx) {
  if (registry.broken().empty() || ctx.quiet) {
    return;
  }
  std::vector<std::string> names(registry.broken().begin(), registry.broken().end());
  std::cerr << "avps: warning: " << names.size() << " skill definition" << (names.size() == 1 ? "" : "s")
            << " could not be loaded (" << join(names, ", ") << "); see `avps skills validate`\n";
}

void run_list(const SkillsOptions& options, Context& ctx) {
  Result<skills::Registry> registry = open_registry(options);
  if (!registry) {
    ctx.fail(registry.error());
    return;
  }
  if (ctx.json) {
    json listed = json::array();
    for (const auto& [name, skill] : registry->skills()) {
      listed.push_back({{"name", name},
                        {"layer", skill.layer},
                        {"loop", skill.loop},
                        {"scope", skill.scope},
                        {"executor", skill.executor == skills::Executor::model ? "model" : "builtin"},
                        {"tier", skill.tier ? json(skill.tier->default_tier) : json(nullptr)},
                        {"escalation", skill.tier ? json(skill.tier->escalation) : json::array()},
                        {"builtin", skill.builtin.empty() ? json(nullptr) : json(skill.builtin)},
                        {"source", source_label(skill)},
                        {"definition", skill.definition.subject},
                        {"prompt", skill.prompt.subject}});
    }
    ctx.emit_json(listed);
  } else if (!ctx.quiet) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [name, skill] : registry->skills()) {
      rows.push_back({name, skill.layer, skill.loop, tier_label(skill),
                      skill.executor == skills::Executor::model ? "model" : "builtin", skill.scope,
                      source_label(skill)});
    }
    print_table({"name", "layer", "loop", "tier", "executor", "scope", "source"}, rows);
  }
  warn_broken(*registry, ctx);
}

// A rule's value: a literal, or "<pointer> (default D)" for a setting of avps.json.
std::string describe_value(const json& value) {
  if (value.is_object() && value.contains("config")) {
    return "config " + value["config"].get<std::string>() + " (default " +
           value.value("default", json()).dump() + ")";
  }
  return value.dump();
}

std::string describe_rule(const json& rule) {
  const std::string type = rule.value("type", "");
  std::string fields = rule.contains("field") ? rule["field"].get<std::string>()
                                              : join(rule.value("fields", std::vector<std::string>{}), ", ");
  std::string test;
  if (type == "min") {
    test = fields + " >= " + describe_value(rule["value"]);
  } else if (type == "max") {
    test = fields + " <= " + describe_value(rule["value"]);
  } else if (type == "any_zero") {
    test = "none of " + fields + " is 0";
  } else if (type == "enum_fail") {
    test = fields + " is not one of " + rule["values"].dump();
  } else if (type == "equals") {
    test = fields + " == " + describe_value(rule["value"]);
  } else if (type == "count") {
    test = "members of " + fields + " in [" + (rule.contains("min") ? describe_value(rule["min"]) : "0") +
           ", " + (rule.contains("max") ? describe_value(rule["max"]) : "any") + "]";
  }
  std::string out =
      test + ", else " + rule.value("verdict_on_violation", "") + ": " + rule.value("reason", "");
  if (rule.contains("output")) {
    out = rule["output"].get<std::string>() + ": " + out;
  }
  return out;
}

std::string describe_branch(const json& branch) {
  std::string out;
  if (branch.contains("revise")) {
    out = "revise " + branch["revise"].get<std::string>() + " via " + branch.value("via", "");
    if (branch.contains("max_revisions")) {
      out += ", at most " + describe_value(branch["max_revisions"]) + " revisions";
    }
    out += ", then ";
  }
  return out + branch.value("then", "");
}

void run_show(const SkillsOptions& options, Context& ctx) {
  Result<skills::Registry> registry = open_registry(options);
  if (!registry) {
    ctx.fail(registry.error());
    return;
  }
  const skills::SkillDef* skill = registry->find(options.name);
  if (skill == nullptr) {
    std::vector<std::string> close = registry->similar_names(options.name);
    std::string message = "no skill named \"" + options.name + "\"";
    message += close.empty() ? "; see `avps skills list`" : "; did you mean " + join(close, ", ") + "?";
    if (registry->broken().count(options.name) == 1) {
      message = "skill \"" + options.name + "\" could not be loaded; see `avps skills validate`";
    }
    ctx.fail(ExitCode::environment, message);
    return;
  }
  if (ctx.json) {
    json document = skill->raw;
    document["prompt"] = skill->prompt_text;
    ctx.emit_json(document);
    return;
  }
  if (ctx.quiet) {
    return;
  }
  std::cout << ctx.paint(skill->name, "1") << "  (" << source_label(*skill) << ": "
            << skill->definition.subject << ")\n"
            << skill->description << "\n\n";
  // Keys are field names and artifact kinds; the longest kinds (CONTINUITY_REPORT) have 17 letters.
  auto line = [](const std::string& key, const std::string& value) {
    std::cout << "  " << key << std::string(key.size() < 19 ? 19 - key.size() : 1, ' ') << value << '\n';
  };
  line("layer", skill->layer);
  line("loop", skill->loop);
  line("scope", skill->scope);
  if (skill->tier) {
    line("executor", "model");
    std::string tier = skill->tier->default_tier;
    if (!skill->tier->escalation.empty()) {
      tier += ", escalation " + join(skill->tier->escalation, " -> ") + " (at most " +
              std::to_string(skill->tier->max_escalations) + ")";
    }
    line("tier", tier);
    line("max output", std::to_string(skill->max_output_tokens) + " tokens");
  } else {
    line("executor", "builtin " + skill->builtin);
  }
  if (!skill->runs_when.empty()) {
    line("runs when", skill->runs_when);
  }
  if (!skill->post_steps.empty()) {
    line("post steps", join(skill->post_steps, ", "));
  }
  std::cout << "\ninputs\n";
  for (const skills::SkillInput& input : skill->inputs) {
    line(input.kind, std::string(input.required ? "required" : "optional") + "  slice " + input.slice);
  }
  std::cout << "outputs\n";
  for (const skills::SkillOutput& output : skill->outputs) {
    std::string what = output.schema.empty() ? "media " + output.media : output.schema;
    if (!output.written_by.empty()) {
      what += "  written by " + output.written_by;
    }
    if (!output.collect.empty()) {
      what += "  collect " + output.collect;
    }
    line(output.kind, what);
  }
  std::cout << "gate\n";
  for (const json& rule : skill->gate_rules) {
    std::cout << "  rule   " << describe_rule(rule) << '\n';
  }
  for (const std::string& check : skill->gate_checks) {
    std::cout << "  check  " << check << '\n';
  }
  if (!skill->gate_params.empty()) {
    std::cout << "  params " << skill->gate_params.dump() << '\n';
  }
  if (skill->gate_rules.empty() && skill->gate_checks.empty()) {
    std::cout << "  (schema validation only)\n";
  }
  std::cout << "loop policy\n";
  for (const char* branch : {"on_fail", "on_fix"}) {
    if (skill->loop_policy.contains(branch)) {
      line(branch, describe_branch(skill->loop_policy[branch]));
    }
  }
  if (skill->loop_policy.empty()) {
    std::cout << "  (none: FAIL is a hard stop)\n";
  }
  std::cout << "\nprompt  (" << skill->prompt.subject << ")\n\n" << skill->prompt_text;
  if (!skill->prompt_text.empty() && skill->prompt_text.back() != '\n') {
    std::cout << '\n';
  }
}

void run_validate(const SkillsOptions& options, Context& ctx) {
  Result<skills::Registry> registry = open_registry(options);
  if (!registry) {
    ctx.fail(registry.error());
    return;
  }
  const std::vector<core::Violation> violations = registry->validate();
  const bool pass = violations.empty();
  const size_t skill_count = registry->skills().size() + registry->broken().size();
  const skills::StageGraph* graph = registry->stage_graph();
  ctx.exit = pass ? ExitCode::ok : ExitCode::violation;

  if (ctx.json) {
    json listed = json::array();
    for (const core::Violation& v : violations) {
      listed.push_back({{"rule", v.rule}, {"subject", v.subject}, {"message", v.message}});
    }
    ctx.emit_json({{"verdict", pass ? "PASS" : "FAIL"},
                   {"project", options.dir.empty() ? json(nullptr) : json(options.dir)},
                   {"skills", skill_count},
                   {"phases", graph ? json(graph->phases.size()) : json(nullptr)},
                   {"violations", listed}});
    return;
  }
  if (pass) {
    ctx.info(std::to_string(skill_count) + " skills, stage graph of " + std::to_string(graph->phases.size()) +
             " phases: valid");
    return;
  }
  // Violations go to stdout: they are the command's result, not a failure to run it.
  std::cout << ctx.paint("FAIL", "31") << " " << violations.size() << " violation"
            << (violations.size() == 1 ? "" : "s") << " in " << skill_count
            << " skill definitions and the stage graph\n";
  for (const core::Violation& v : violations) {
    std::cout << "  " << v.subject << ": " << v.message << "  [" << v.rule << "]\n";
  }
}

}  // namespace

void setup_skills(CLI::App& app, Context& ctx) {
  CLI::App* skills_cmd = app.add_subcommand("skills", "List, show and validate skill definitions");
  skills_cmd->require_subcommand(1);
  skills_cmd->footer(
      "Definitions are skills/<name>/skill.json + prompt.md and policies/stage_graph.json, shipped with "
      "avps.\n"
      "With DIR, the project's own skills/<name>/skill.json or prompt.md, policies/stage_graph.json and\n"
      "schemas/<file> replace the shipped ones of the same name (or add skills).");

  auto list_options = std::make_shared<SkillsOptions>();
  CLI::App* list =
      skills_cmd->add_subcommand("list", "Name, layer, loop, tier, executor and scope of every skill");
  list->add_option("dir", list_options->dir, "Project folder whose overrides to include");
  list->callback([list_options, &ctx]() { run_list(*list_options, ctx); });

  auto show_options = std::make_shared<SkillsOptions>();
  CLI::App* show = skills_cmd->add_subcommand("show", "One skill's definition and prompt");
  show->add_option("name", show_options->name, "Skill name")->required();
  show->add_option("dir", show_options->dir, "Project folder whose overrides to include");
  show->footer("Exit codes: 0 shown, 4 no such skill (the message lists close names).");
  show->callback([show_options, &ctx]() { run_show(*show_options, ctx); });

  auto validate_options = std::make_shared<SkillsOptions>();
  CLI::App* validate =
      skills_cmd->add_subcommand("validate", "Check skill definitions, schemas, prompts and the stage graph");
  validate->add_option("dir", validate_options->dir, "Project folder whose overrides to validate");
  validate->footer(
      "Checks every skill.json against skill.schema.json, names, prompts, output schemas, gate-rule\n"
      "fields, config references, and the stage graph (schema, skills it names, every required input\n"
      "produced earlier, no cycle). Exit codes: 0 valid, 1 violations (listed with file and rule),\n"
      "4 data or project folder missing.");
  validate->callback([validate_options, &ctx]() { run_validate(*validate_options, ctx); });
}

}  // namespace avps::cli
