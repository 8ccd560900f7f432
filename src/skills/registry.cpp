#include "avps/skills/registry.hpp"

#include <algorithm>
#include <cctype>
#include <system_error>
#include <utility>

#include "avps/artifacts/names.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"

namespace avps::skills {

namespace fs = std::filesystem;
using core::Violation;
using nlohmann::json;

namespace {

// Escalation climbs one step at a time (skill.schema.json, tier.escalation).
bool is_one_tier_step(const std::string& from, const std::string& to) {
  static const std::set<std::pair<std::string, std::string>> k_steps = {
      {"t1", "t2"}, {"t2", "t3"}, {"t2", "vision"}, {"t2", "research"}, {"vision", "t3"}, {"research", "t3"}};
  return k_steps.count({from, to}) == 1;
}

// The skill scopes a phase's fan-out can run (stage_graph.schema.json, phase.fan_out): a
// project-scope skill in a per_scene phase writes a new version of its project-wide artifact.
bool fan_out_runs_scope(const std::string& fan_out, const std::string& scope) {
  static const std::map<std::string, std::set<std::string>> k_scopes = {
      {"once", {"project"}},
      {"per_scene", {"scene", "project"}},
      {"per_entity", {"character", "set", "voice"}},
      {"per_shot", {"shot"}},
  };
  auto found = k_scopes.find(fan_out);
  return found != k_scopes.end() && found->second.count(scope) == 1;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool type_is_one_of(const json& schema, std::initializer_list<const char*> types) {
  if (!schema.is_object() || !schema.contains("type")) {
    return true;  // unconstrained: nothing to contradict
  }
  const json& type = schema["type"];
  for (const char* t : types) {
    if ((type.is_string() && type == t) ||
        (type.is_array() && std::find(type.begin(), type.end(), json(t)) != type.end())) {
      return true;
    }
  }
  return false;
}

std::string type_name(const json& schema) {
  return schema.contains("type")
             ? (schema["type"].is_string() ? schema["type"].get<std::string>() : schema["type"].dump())
             : "untyped";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string in_quotes(const std::string& s) {
  return "\"" + s + "\"";
}

bool file_exists(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool directory_exists(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

// The shipped schemas avps relies on itself; a problem with one is an installation problem.
Result<core::JsonSchema> load_shipped_schema(const fs::path& data_dir, const std::string& file) {
  Result<core::JsonSchema> schema = core::JsonSchema::load(data_dir / "schemas" / file);
  if (!schema) {
    return make_error(ErrorCode::configuration, "the shipped schemas/" + file + " is unusable (data folder " +
                                                    data_dir.string() + "): " + schema.error().message);
  }
  return schema;
}

}  // namespace

Result<Registry> Registry::load(const fs::path& data_dir, const fs::path* project_dir) {
  if (!directory_exists(data_dir / "skills")) {
    return make_error(ErrorCode::not_found,
                      "no skills/ folder in the data folder " + data_dir.string() +
                          " (set AVPS_HOME to where avps's schemas/, skills/ and policies/ are)");
  }
  if (project_dir != nullptr && !directory_exists(*project_dir)) {
    return make_error(ErrorCode::not_found, "project folder " + project_dir->string() + " does not exist");
  }
  AVPS_TRY_ASSIGN(core::JsonSchema skill_schema, load_shipped_schema(data_dir, "skill.schema.json"));
  AVPS_TRY_ASSIGN(core::JsonSchema graph_schema, load_shipped_schema(data_dir, "stage_graph.schema.json"));
  AVPS_TRY_ASSIGN(core::JsonSchema project_schema, load_shipped_schema(data_dir, "project.schema.json"));

  Registry registry;
  registry.m_data_dir = data_dir;
  registry.m_project_schema = project_schema.document();
  if (project_dir != nullptr) {
    std::string label = project_dir->generic_string();
    while (label.size() > 1 && label.back() == '/') {
      label.pop_back();
    }
    registry.m_project_label = label;
  }
  const fs::path project_schemas = project_dir != nullptr ? *project_dir / "schemas" : fs::path();
  registry.m_schemas = SchemaSet::load(
      data_dir / "schemas", project_dir != nullptr ? &project_schemas : nullptr, registry.m_project_label);
  // The artifact kinds the project's schemas declare: known here whether or not this process
  // declared them (artifacts::declare_kinds), so `avps skills validate DIR` checks them as a run sees them.
  for (const auto& [file, entry] : registry.m_schemas.project_entries()) {
    if (entry.document.is_null()) {
      continue;  // reported where an output names it
    }
    Result<std::optional<artifacts::DeclaredKind>> declared = artifacts::read_kind_declaration(entry.document, file);
    if (!declared) {
      registry.m_load_violations.push_back({"schema.artifact", entry.source.subject, declared.error().message});
    } else if (*declared) {
      registry.m_declared.push_back(std::move(**declared));
    }
  }
  for (const std::string& problem : artifacts::kind_declaration_problems(registry.m_declared)) {
    const std::string file = problem.substr(0, problem.find(':'));
    const SchemaSet::Entry* entry = registry.m_schemas.find(file);
    registry.m_load_violations.push_back({"schema.artifact", entry != nullptr ? entry->source.subject : file, problem});
  }
  registry.load_skills(data_dir, project_dir, skill_schema);
  registry.load_graph(data_dir, project_dir, graph_schema);
  return registry;
}

bool Registry::knows_kind(std::string_view kind) const {
  // The shipped table, then this project's declarations (not whatever the process declared last).
  const std::vector<artifacts::KindInfo>& shipped = artifacts::kinds();
  if (std::any_of(shipped.begin(), shipped.end(), [&](const artifacts::KindInfo& k) { return k.kind == kind; })) {
    return true;
  }
  return std::any_of(m_declared.begin(), m_declared.end(),
                     [&](const artifacts::DeclaredKind& d) { return d.kind == kind; });
}

void Registry::load_skills(const fs::path& data_dir, const fs::path* project_dir,
                           const core::JsonSchema& schema) {
  // Folder name -> its skill.json and prompt.md, the project's files replacing the shipped ones.
  struct Files {
    std::optional<SourceFile> definition;
    std::optional<SourceFile> prompt;
    SourceFile expected_prompt;
  };
  std::map<std::string, Files> found;
  auto scan = [&](const fs::path& root, Origin origin, const std::string& prefix) {
    std::error_code ec;
    if (!directory_exists(root / "skills")) {
      return;
    }
    for (const auto& entry : fs::directory_iterator(root / "skills", ec)) {
      const std::string folder = entry.path().filename().string();
      if (folder.empty() || folder[0] == '.' || !directory_exists(entry.path())) {
        continue;
      }
      const std::string relative = "skills/" + folder + "/";
      SourceFile definition{entry.path() / "skill.json", origin, prefix + relative + "skill.json"};
      SourceFile prompt{entry.path() / "prompt.md", origin, prefix + relative + "prompt.md"};
      const bool has_definition = file_exists(definition.path);
      const bool has_prompt = file_exists(prompt.path);
      if (!has_definition && !has_prompt) {
        continue;
      }
      Files& files = found[folder];
      if (has_definition) {
        files.definition = definition;
        files.expected_prompt = prompt;  // a prompt is looked for next to the definition first
      }
      if (has_prompt) {
        files.prompt = prompt;
      }
    }
  };
  scan(data_dir, Origin::shipped, "");
  if (project_dir != nullptr) {
    scan(*project_dir, Origin::project, m_project_label + "/");
  }

  for (auto& [folder, files] : found) {
    if (!files.definition) {
      m_load_violations.push_back(
          {"skill.load", files.prompt->subject,
           "a prompt.md without a skill.json: there is no skill " + in_quotes(folder) + " to apply it to"});
      m_broken.insert(folder);
      continue;
    }
    const SourceFile& source = *files.definition;
    Result<std::string> text = core::read_file(source.path);
    if (!text) {
      m_load_violations.push_back({"skill.load", source.subject, text.error().message});
      m_broken.insert(folder);
      continue;
    }
    Result<json> document = core::parse_json(*text, source.subject);
    if (!document) {
      m_load_violations.push_back({"skill.load", source.subject, "not JSON: " + document.error().message});
      m_broken.insert(folder);
      continue;
    }
    std::vector<core::SchemaIssue> issues = schema.validate(*document);
    for (const core::SchemaIssue& issue : issues) {
      m_load_violations.push_back({"skill.schema", source.subject, issue.to_string()});
    }
    if (!issues.empty()) {
      m_broken.insert(folder);
      continue;
    }
    Result<SkillDef> parsed = SkillDef::from_json(*document);
    if (!parsed) {
      m_load_violations.push_back({"skill.schema", source.subject, parsed.error().message});
      m_broken.insert(folder);
      continue;
    }
    SkillDef skill = std::move(parsed).value();
    if (skill.name != folder) {
      m_load_violations.push_back({"skill.name", source.subject,
                                   "name " + in_quotes(skill.name) + " differs from its folder " +
                                       in_quotes(folder) +
                                       "; the stage graph and loop policies find a skill by its folder"});
    }
    skill.definition = source;
    skill.prompt = files.prompt ? *files.prompt : files.expected_prompt;
    if (!files.prompt) {
      m_load_violations.push_back({"skill.prompt", skill.prompt.subject, "prompt.md is missing"});
    } else if (Result<std::string> prompt = core::read_text_file(skill.prompt.path); !prompt) {
      m_load_violations.push_back({"skill.prompt", skill.prompt.subject, prompt.error().message});
    } else {
      skill.prompt_text = std::move(prompt).value();
      if (std::all_of(skill.prompt_text.begin(), skill.prompt_text.end(),
                      [](unsigned char c) { return std::isspace(c) != 0; })) {
        m_load_violations.push_back({"skill.prompt", skill.prompt.subject, "prompt.md is empty"});
      }
    }
    if (skill.overridden()) {
      // Both files as read: a changed prompt or definition makes the skill's steps stale.
      skill.project_files_sha256 =
          core::sha256_hex(std::to_string(text->size()) + "\n" + *text + "\n" + skill.prompt_text);
    }
    m_skills.emplace(folder, std::move(skill));
  }
}

void Registry::load_graph(const fs::path& data_dir, const fs::path* project_dir,
                          const core::JsonSchema& schema) {
  const fs::path relative = fs::path("policies") / "stage_graph.json";
  if (project_dir != nullptr && file_exists(*project_dir / relative)) {
    m_graph_source = {*project_dir / relative, Origin::project,
                      m_project_label + "/" + relative.generic_string()};
  } else {
    m_graph_source = {data_dir / relative, Origin::shipped, relative.generic_string()};
  }
  Result<std::string> text = core::read_file(m_graph_source.path);
  if (!text) {
    m_load_violations.push_back({"graph.load", m_graph_source.subject, text.error().message});
    return;
  }
  Result<json> document = core::parse_json(*text, m_graph_source.subject);
  if (!document) {
    m_load_violations.push_back(
        {"graph.load", m_graph_source.subject, "not JSON: " + document.error().message});
    return;
  }
  std::vector<core::SchemaIssue> issues = schema.validate(*document);
  for (const core::SchemaIssue& issue : issues) {
    m_load_violations.push_back({"graph.schema", m_graph_source.subject, issue.to_string()});
  }
  if (!issues.empty()) {
    return;
  }
  Result<StageGraph> graph = StageGraph::from_json(*document);
  if (!graph) {
    m_load_violations.push_back({"graph.schema", m_graph_source.subject, graph.error().message});
    return;
  }
  m_graph = std::move(graph).value();
  m_graph->source = m_graph_source;
}

const SkillDef* Registry::find(std::string_view name) const {
  auto found = m_skills.find(std::string(name));
  return found == m_skills.end() ? nullptr : &found->second;
}

std::vector<std::string> Registry::similar_names(std::string_view name) const {
  std::vector<std::pair<size_t, std::string>> scored;
  const size_t limit = std::max<size_t>(2, name.size() / 3);
  for (const auto& [candidate, skill] : m_skills) {
    const size_t distance = edit_distance(name, candidate);
    const bool contains = !name.empty() && (candidate.find(name) != std::string::npos ||
                                            name.find(candidate) != std::string_view::npos);
    if (distance <= limit || contains) {
      scored.emplace_back(distance, candidate);
    }
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> names;
  for (const auto& [distance, candidate] : scored) {
    names.push_back(candidate);
  }
  return names;
}

std::vector<Violation> Registry::validate() const {
  std::vector<Violation> out = m_load_violations;
  for (const auto& [name, skill] : m_skills) {
    check_skill(skill, out);
  }

  // One writer per artifact kind: the engine revises and re-runs an artifact through its writer.
  // Shipped writers come first, so a project's second writer is the one reported.
  std::map<std::string, std::vector<const SkillDef*>> writers;
  for (const auto& [name, skill] : m_skills) {
    for (const SkillOutput& output : skill.outputs) {
      writers[output.kind].push_back(&skill);
    }
  }
  for (auto& [kind, list] : writers) {
    std::stable_sort(list.begin(), list.end(), [](const SkillDef* a, const SkillDef* b) {
      return a->definition.origin == Origin::shipped && b->definition.origin == Origin::project;
    });
    for (size_t i = 1; i < list.size(); ++i) {
      out.push_back({"skill.writer", list[i]->definition.subject,
                     "writes " + kind + ", which " + list[0]->name +
                         " also writes; each artifact kind has exactly one writing skill"});
    }
  }

  if (m_graph) {
    check_graph(*m_graph, out);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Violation& a, const Violation& b) { return a.subject < b.subject; });
  return out;
}

void Registry::check_skill(const SkillDef& skill, std::vector<Violation>& out) const {
  const std::string& subject = skill.definition.subject;
  auto report = [&](const char* rule, const std::string& message) {
    out.push_back({rule, subject, message});
  };

  for (const SkillInput& input : skill.inputs) {
    // BRIEF and MEDIA are inputs but not versioned artifacts (skill.schema.json, input_kind).
    if (input.kind != "BRIEF" && input.kind != "MEDIA" && !knows_kind(input.kind)) {
      report("skill.kind", "input kind " + input.kind + " is not an artifact kind avps knows; a project adds one " +
                               "with a schema schemas/" + lower(input.kind) +
                               ".schema.json carrying an x-avps-artifact block (docs/formats/artifacts.md)");
    }
    if (input.fields.empty()) {
      continue;
    }
    // A field list cuts whole artifacts; each pointer must name a field of the kind's schema
    // (that of a skill writing the kind), or the skill would silently read nothing there.
    if (input.slice == "scene_row" || input.slice == "shot_row" || input.slice == "entity_rows" ||
        input.slice == "all_rows") {
      report("skill.fields", "input " + input.kind + " (slice " + input.slice +
                                 ") reads rows; fields apply to whole artifacts only");
      continue;
    }
    std::string schema;
    for (const auto& [name, writer] : m_skills) {
      for (const SkillOutput& output : writer.outputs) {
        schema = schema.empty() && output.kind == input.kind ? output.schema : schema;
      }
    }
    if (schema.empty()) {  // written by avps itself (STYLE_LOCK at init): the schema named after the kind
      std::string named = input.kind + ".schema.json";
      std::transform(named.begin(), named.end(), named.begin(), [](unsigned char c) { return std::tolower(c); });
      schema = m_schemas.find(named) ? named : "";
    }
    if (schema.empty()) {
      report("skill.fields", "input " + input.kind + " names fields, but no schema of " + input.kind +
                                 " is known to check them against");
      continue;
    }
    for (const std::string& pointer : input.fields) {
      if (m_schemas.field(schema, pointer) == nullptr) {
        report("skill.fields", "input " + input.kind + " field " + pointer + " is not a field of " + schema);
      }
    }
  }
  // A check the engine evaluates must have something to evaluate: genpack_changed_on_regen
  // compares a skill's GENPACK with the failed attempt's, so a skill that writes none would
  // declare a check that never runs.
  const bool writes_genpack = std::any_of(skill.outputs.begin(), skill.outputs.end(),
                                          [](const SkillOutput& o) { return o.kind == "GENPACK"; });
  const json checks = skill.raw.contains("gate") ? skill.raw["gate"].value("checks", json::array()) : json::array();
  const bool writes_regen_rules = std::any_of(skill.outputs.begin(), skill.outputs.end(),
                                              [](const SkillOutput& o) { return o.kind == "REGEN_RULES"; });
  for (const json& check : checks) {
    if (check == "genpack_changed_on_regen" && !writes_genpack) {
      report("skill.check", "check genpack_changed_on_regen compares GENPACK versions, and this skill writes "
                            "none: nothing would evaluate it");
    }
    if ((check == "regen_rules_adjust_the_shot" || check == "regen_simplifies_repeated_drift") &&
        (!writes_regen_rules || skill.scope != "shot")) {
      report("skill.check", "check " + check.get<std::string>() +
                                " reads the REGEN_RULES a shot-scoped skill writes for its shot, and this skill " +
                                (writes_regen_rules ? "is not shot-scoped" : "writes none") +
                                ": nothing would evaluate it");
    }
  }
  // `feedback` sets a shot render's identity apart: only the GenPack's packager is read for it.
  for (const SkillInput& input : skill.inputs) {
    if (input.into_genpack && (!writes_genpack || input.feedback)) {
      report("skill.into_genpack",
             "input " + input.kind + " is marked into_genpack, " +
                 (writes_genpack ? std::string("and feedback too: a pasted input is part of what is made, so drop "
                                               "one of the two")
                                 : std::string("which only the skill writing GENPACK pastes; drop it here, or mark "
                                               "the input in that skill's skill.json (prompt-packager)")));
    }
    if (input.feedback && !writes_genpack) {
      report("skill.feedback", "input " + input.kind + " is marked feedback, which only the skill writing GENPACK "
                               "(whose other inputs are a shot render's identity) is read for; nothing would read it here");
    }
  }
  for (const SkillOutput& output : skill.outputs) {
    if (!knows_kind(output.kind)) {
      report("skill.kind", "output kind " + output.kind + " is not an artifact kind avps knows; a project adds one " +
                               "with a schema schemas/" + lower(output.kind) +
                               ".schema.json carrying an x-avps-artifact block (docs/formats/artifacts.md)");
    }
    const bool declared = std::any_of(m_declared.begin(), m_declared.end(),
                                      [&](const artifacts::DeclaredKind& d) { return d.kind == output.kind; });
    if (declared && !output.schema.empty() && output.schema != lower(output.kind) + ".schema.json") {
      report("skill.output_schema", "output " + output.kind + " names schema " + output.schema + ", but " +
                                        output.kind + " is declared by " + lower(output.kind) +
                                        ".schema.json, which its faces and checks use: name that one");
    }
    if (output.schema.empty()) {
      continue;
    }
    const SchemaSet::Entry* entry = m_schemas.find(output.schema);
    if (entry == nullptr) {
      report("skill.output_schema", "output " + output.kind + " names schema " + output.schema +
                                        ", which is in neither " +
                                        (m_project_label.empty() ? "" : m_project_label + "/schemas/ nor ") +
                                        "the shipped schemas/");
    } else if (!entry->compiled) {
      report("skill.output_schema", "output " + output.kind + " names schema " + entry->source.subject +
                                        ", which does not load: " + entry->error);
    }
    if (!output.written_by.empty() && std::find(skill.post_steps.begin(), skill.post_steps.end(),
                                                output.written_by) == skill.post_steps.end()) {
      report("skill.post_step", "output " + output.kind + " is written by post step " + output.written_by +
                                    ", which post_steps does not declare");
    }
  }

  if (skill.tier) {
    std::string previous = skill.tier->default_tier;
    for (const std::string& tier : skill.tier->escalation) {
      if (!is_one_tier_step(previous, tier)) {
        report("skill.tier", "escalation from " + previous + " to " + tier +
                                 " is not one step (allowed: t1->t2, t2->t3, t2->vision, t2->research, "
                                 "vision->t3, research->t3)");
      }
      previous = tier;
    }
    if (static_cast<size_t>(skill.tier->max_escalations) > skill.tier->escalation.size()) {
      report("skill.tier", "max_escalations is " + std::to_string(skill.tier->max_escalations) +
                               " but escalation lists " + std::to_string(skill.tier->escalation.size()) +
                               " tier(s)");
    }
  }

  for (size_t i = 0; i < skill.gate_rules.size(); ++i) {
    const json& rule = skill.gate_rules[i];
    const std::string type = rule.value("type", "");
    const std::string label = "gate rule " + std::to_string(i + 1) + " (" + type + ")";
    const SkillOutput* output = skill.rule_output(rule);
    if (output == nullptr) {
      report("skill.gate_output", rule.contains("output")
                                      ? label + " reads output " + rule["output"].get<std::string>() +
                                            ", which this skill does not write with a schema"
                                      : label + " has no output with a schema to read");
      continue;
    }
    const SchemaSet::Entry* entry = m_schemas.find(output->schema);
    if (entry == nullptr || !entry->compiled) {
      continue;  // reported above as skill.output_schema
    }
    std::vector<std::string> fields;
    if (rule.contains("field")) {
      fields.push_back(rule["field"].get<std::string>());
    } else {
      fields = rule["fields"].get<std::vector<std::string>>();
    }
    for (const std::string& field : fields) {
      const json* target = m_schemas.field(output->schema, field);
      if (target == nullptr) {
        report("skill.gate_field",
               label + " reads field " + field + ", which " + entry->source.subject + " does not define");
        continue;
      }
      if (type == "enum_fail" && target->contains("enum")) {
        const json& allowed = (*target)["enum"];
        for (const json& value : rule["values"]) {
          if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
            report("skill.gate_value", label + " fails on " + value.dump() + " at " + field + ", which " +
                                           entry->source.subject + " never allows there (one of " +
                                           allowed.dump() + ")");
          }
        }
      }
      if ((type == "min" || type == "max" || type == "any_zero") &&
          !type_is_one_of(*target, {"integer", "number"})) {
        report("skill.gate_value", label + " compares " + field + " as a number, but " +
                                       entry->source.subject + " makes it " + type_name(*target));
      }
      if (type == "count" && !type_is_one_of(*target, {"array", "object"})) {
        report("skill.gate_value", label + " counts the members of " + field + ", but " +
                                       entry->source.subject + " makes it " + type_name(*target));
      }
    }
  }

  check_config_refs(skill.raw, subject, "skill.config_ref", out);

  if (skill.executor == Executor::model && !skill.loop_policy.contains("on_fail")) {
    // A model's output can always fail its schema, so a model skill must say what happens then.
    report("skill.loop_policy",
           "a model skill needs loop_policy.on_fail: its output can always fail its schema");
  }
  for (const char* branch_name : {"on_fail", "on_fix"}) {
    if (!skill.loop_policy.contains(branch_name) || !skill.loop_policy[branch_name].contains("via")) {
      continue;
    }
    const json& branch = skill.loop_policy[branch_name];
    const std::string via = branch["via"].get<std::string>();
    const std::string revise = branch.value("revise", "");
    const SkillDef* reviser = find(via);
    const std::string where =
        std::string("loop_policy.") + branch_name + " revises " + revise + " via " + via;
    if (reviser == nullptr && m_broken.count(via) == 0) {
      report("skill.loop_policy", where + ", which is not a skill");
    } else if (reviser != nullptr && reviser->find_output(revise) == nullptr) {
      report("skill.loop_policy", where + ", which does not write " + revise);
    }
  }

  if (m_graph && !skill.runs_when.empty() && !m_graph->conditions.contains(skill.runs_when)) {
    report("skill.runs_when", "runs_when names condition " + skill.runs_when + ", which " +
                                  m_graph->source.subject + " does not define");
  }

  if (skill.paging) {
    const Paging& paging = *skill.paging;
    auto input_with = [&](const std::string& kind, const std::string& slice) {
      return std::any_of(skill.inputs.begin(), skill.inputs.end(),
                         [&](const SkillInput& i) { return i.kind == kind && i.slice == slice; });
    };
    if (skill.executor != Executor::model || skill.scope != "project") {
      report("skill.paging", "paging is for model skills of scope project");
    }
    if (!paging.input.empty() && !input_with(paging.input, "all_rows")) {
      report("skill.paging", "paging.input " + paging.input + " is not an input with slice all_rows");
    }
    if (!paging.output.empty()) {
      const SkillOutput* output = skill.find_output(paging.output);
      const artifacts::KindInfo* info = artifacts::find_kind(paging.output);
      if (output == nullptr || output->schema.empty()) {
        report("skill.paging", "paging.output " + paging.output + " is not an output the model writes");
      } else if (info != nullptr && info->extension != "csv") {
        report("skill.paging", "paging.output " + paging.output + " has no rows to write a page at a time");
      }
    }
    for (const std::string& kind : paging.per_scene) {
      if (paging.input.empty() || !input_with(kind, "all_targets")) {
        report("skill.paging", "paging.per_scene " + kind + " is not an all_targets input of an input-paged skill");
      }
    }
  }
}

void Registry::check_config_refs(const json& value, const std::string& subject, const std::string& rule,
                                 std::vector<Violation>& out) const {
  for (const json* ref : find_config_refs(value)) {
    const std::string pointer = (*ref)["config"].get<std::string>();
    // A setting is reached through nested "properties" of project.schema.json.
    const json* node = &m_project_schema;
    try {
      std::vector<std::string> tokens;
      for (json::json_pointer p(pointer); !p.empty(); p = p.parent_pointer()) {
        tokens.insert(tokens.begin(), p.back());
      }
      for (const std::string& token : tokens) {
        if (node == nullptr || !node->is_object() || !node->contains("properties") ||
            !(*node)["properties"].contains(token)) {
          node = nullptr;
          break;
        }
        node = &(*node)["properties"][token];
      }
    } catch (const json::exception&) {
      node = nullptr;
    }
    if (node == nullptr || node == &m_project_schema) {
      out.push_back(
          {rule, subject, "config reference " + pointer + " names no setting of project.schema.json"});
      continue;
    }
    Result<core::JsonSchema> setting = core::JsonSchema::compile(*node, pointer, m_data_dir / "schemas");
    if (!setting) {
      continue;  // the shipped project schema is checked where it is loaded; nothing to say here
    }
    std::vector<core::SchemaIssue> issues = setting->validate((*ref)["default"]);
    if (!issues.empty()) {
      out.push_back({rule, subject,
                     "config reference " + pointer + " has default " + (*ref)["default"].dump() +
                         ", which the setting refuses: " + issues.front().to_string()});
    }
  }
}

void Registry::check_graph(const StageGraph& graph, std::vector<Violation>& out) const {
  const std::string& subject = graph.source.subject;
  auto report = [&](const char* rule, const std::string& message) {
    out.push_back({rule, subject, message});
  };
  auto unknown = [&](const std::string& name) {
    return m_skills.count(name) == 0 && m_broken.count(name) == 0;
  };

  std::set<std::string> ids;
  std::set<std::string> staged;
  for (const Phase& phase : graph.phases) {
    if (phase.fan_out == "per_shot") {
      // A wave packs, renders and grades every shot of the scene (Impl::produce).
      auto lists = [&](const std::string& skill) {
        return std::any_of(phase.steps.begin(), phase.steps.end(),
                           [&](const GraphStep& step) { return !skill.empty() && step.skill == skill; });
      };
      const bool renders = std::any_of(phase.steps.begin(), phase.steps.end(),
                                       [](const GraphStep& step) { return step.action == "generate_media"; });
      if (!lists(graph.role("packager")) || !renders || !lists(graph.role("grader"))) {
        report("graph.per_shot_steps", "phase " + phase.name +
                                           " fans out per_shot, so it must list the packager (roles.packager: " +
                                           graph.role("packager") + "), a generate_media step and the grader "
                                           "(roles.grader: " + graph.role("grader") + ")");
      }
    }
    if (!phase.when.empty() && !graph.conditions.contains(phase.when)) {
      report("graph.condition",
             "phase " + phase.name + " runs when " + phase.when + ", which conditions does not define");
    }
    for (const GraphStep& step : phase.steps) {
      if (step.id == "init") {
        report("graph.step_id",
               "phase " + phase.name + " has a step with id \"init\", which edges use for init");
      } else if (!ids.insert(step.id).second) {
        report("graph.step_id", "step id " + in_quotes(step.id) + " is used twice");
      }
      if (step.skill.empty()) {
        continue;
      }
      staged.insert(step.skill);
      if (unknown(step.skill)) {
        report("graph.unknown_skill", "phase " + phase.name + " step " + step.id + " runs skill " +
                                          step.skill + ", which has no skills/" + step.skill + "/skill.json");
      } else if (const SkillDef* skill = find(step.skill);
                 skill && !fan_out_runs_scope(phase.fan_out, skill->scope)) {
        report("graph.fan_out", "phase " + phase.name + " fans out " + phase.fan_out + ", which cannot run " +
                                    step.skill + " (scope " + skill->scope + ")");
      }
    }
  }
  std::set<std::string> on_demand;
  for (const OnDemandSkill& entry : graph.on_demand) {
    if (unknown(entry.skill)) {
      report("graph.unknown_skill",
             "on_demand names skill " + entry.skill + ", which has no skills/" + entry.skill + "/skill.json");
    }
    if (staged.count(entry.skill) == 1) {
      report("graph.staging",
             "skill " + entry.skill + " is both a step and on demand; it must be one of them");
    }
    on_demand.insert(entry.skill);
  }
  for (const char* key : {"analyzer", "simplify_via"}) {
    const std::string name = graph.regen.value(key, "");
    if (!name.empty() && unknown(name)) {
      report("graph.unknown_skill", std::string("regen.") + key + " names skill " + name +
                                        ", which has no skills/" + name + "/skill.json");
    }
  }
  for (const auto& [part, name] : graph.roles) {
    if (unknown(name)) {
      report("graph.unknown_skill",
             "roles." + part + " names skill " + name + ", which has no skills/" + name + "/skill.json");
    }
  }
  for (const auto& [name, skill] : m_skills) {
    if (staged.count(name) == 0 && on_demand.count(name) == 0) {
      out.push_back(
          {"graph.staging", skill.definition.subject,
           "skill " + name + " is neither a step nor on demand in " + subject + ", so it never runs"});
    }
  }

  for (const auto& item : graph.conditions.items()) {
    const json& evaluate = item.value()["evaluate"];
    if (evaluate.value("type", "") != "artifact_field") {
      continue;
    }
    const std::string kind = evaluate["kind"].get<std::string>();
    const std::string slice = evaluate["slice"].get<std::string>();
    // Row slices read a row of a table artifact, whose canonical JSON holds the rows in "rows".
    const bool row = slice == "scene_row" || slice == "shot_row" || slice == "entity_rows";
    const std::string field = (row ? "/rows/*" : "") + evaluate["field"].get<std::string>();
    std::string schema_file = lower(kind) + ".schema.json";
    for (const auto& [name, skill] : m_skills) {
      if (const SkillOutput* output = skill.find_output(kind); output && !output->schema.empty()) {
        schema_file = output->schema;
      }
    }
    const json* target = m_schemas.field(schema_file, field);
    if (target == nullptr) {
      report("graph.condition", "condition " + item.key() + " reads " + field + " of " + kind + ", which " +
                                    schema_file + " does not define");
    } else if (target->contains("enum")) {
      for (const json& value : evaluate["in"]) {
        if (std::find((*target)["enum"].begin(), (*target)["enum"].end(), value) == (*target)["enum"].end()) {
          report("graph.condition", "condition " + item.key() + " tests " + field + " for " + value.dump() +
                                        ", which " + schema_file + " never allows there");
        }
      }
    }
  }

  // Triggers: a skill that exists and can run for the trigger's scope, and rules the grader's
  // QC_BATCH can hold (its schema's violations[].rule enum).
  const json* rule_enum = nullptr;
  if (const SkillDef* grader = find(graph.role("grader"))) {
    for (const SkillOutput& output : grader->outputs) {
      const json* rule = output.schema.empty() ? nullptr : m_schemas.field(output.schema, "/violations/*/rule");
      if (rule != nullptr && rule->contains("enum")) {
        rule_enum = &(*rule)["enum"];
      }
    }
  }
  std::set<std::string> trigger_ids;
  for (const Trigger& trigger : graph.triggers) {
    const std::string label = "trigger " + trigger.id;
    if (!trigger_ids.insert(trigger.id).second) {
      report("graph.trigger", label + " is declared twice");
    }
    if (unknown(trigger.skill)) {
      report("graph.unknown_skill",
             label + " runs skill " + trigger.skill + ", which has no skills/" + trigger.skill + "/skill.json");
    } else if (const SkillDef* skill = find(trigger.skill)) {
      const bool entity = skill->scope == "character" || skill->scope == "set" || skill->scope == "voice";
      if (trigger.scope == "scene" ? skill->scope != "scene" : !entity) {
        report("graph.trigger", label + " runs " + trigger.skill + " (scope " + skill->scope + ") for a" +
                                    (trigger.scope == "scene" ? " scene" : "n entity") + ", which it cannot run for");
      }
    }
    for (const std::string& rule : trigger.rules) {
      if (rule_enum == nullptr) {
        report("graph.trigger", label + " counts violations of rule " + rule + ", but roles.grader (" +
                                    graph.role("grader") + ") writes no violations[].rule");
      } else if (std::find(rule_enum->begin(), rule_enum->end(), json(rule)) == rule_enum->end()) {
        report("graph.trigger", label + " counts violations of rule " + rule + ", which the grader's QC_BATCH " +
                                    "never holds (rules: " + rule_enum->dump() + ")");
      }
    }
  }

  check_data_flow(graph, out);
  check_config_refs(graph.raw, subject, "graph.config_ref", out);
}

void Registry::check_data_flow(const StageGraph& graph, std::vector<Violation>& out) const {
  const std::string& subject = graph.source.subject;
  auto report = [&](const char* rule, const std::string& message) {
    out.push_back({rule, subject, message});
  };

  std::vector<PlannedStep> steps = flatten(graph, m_skills);
  // Without every skill's inputs and outputs the data flow cannot be judged; the missing skills
  // are reported already, and guessing here would only add noise.
  for (const PlannedStep& step : steps) {
    if (!step.skill_known) {
      return;
    }
  }
  for (const OnDemandSkill& entry : graph.on_demand) {
    if (find(entry.skill) == nullptr) {
      return;
    }
  }

  std::set<std::pair<std::string, std::string>> edges_into;  // (to, kind)
  for (const GraphEdge& edge : graph.edges) {
    edges_into.insert({edge.to, edge.kind});
  }
  std::set<std::string> available(graph.init_produces.begin(), graph.init_produces.end());
  std::map<std::string, size_t> position;
  for (size_t i = 0; i < steps.size(); ++i) {
    const PlannedStep& step = steps[i];
    position.emplace(step.id, i);
    const std::string who =
        step.skill.empty() ? "action step " + step.id : "skill " + step.skill + " (step " + step.id + ")";
    for (const StepInput& input : step.inputs) {
      if (!input.required || step.rendered_first.count(input.kind)) {
        continue;
      }
      if (available.count(input.kind) == 0) {
        report("graph.dangling_input", who + " in phase " + step.phase + " requires " + input.kind +
                                           ", which neither init nor an earlier step produces");
      } else if (edges_into.count({step.id, input.kind}) == 0) {
        report("graph.missing_edge", who + " in phase " + step.phase + " requires " + input.kind +
                                         ", but no edge says which step it comes from");
      }
    }
    available.insert(step.outputs.begin(), step.outputs.end());
  }
  // Skills triggered on demand run after the phases that feed them.
  for (const OnDemandSkill& entry : graph.on_demand) {
    for (const SkillInput& input : find(entry.skill)->inputs) {
      if (input.required && available.count(input.kind) == 0) {
        report("graph.dangling_input",
               "on-demand skill " + entry.skill + " requires " + input.kind + ", which no phase produces");
      }
    }
  }

  std::set<std::string> init(graph.init_produces.begin(), graph.init_produces.end());
  std::vector<std::pair<std::string, std::string>> same_context;
  for (const GraphEdge& edge : graph.edges) {
    const std::string label = "edge " + edge.from + " -" + edge.kind + "-> " + edge.to;
    auto to = position.find(edge.to);
    auto from = position.find(edge.from);
    std::vector<std::string> missing;
    if (edge.from != "init" && from == position.end()) {
      missing.push_back(edge.from);
    }
    if (to == position.end()) {
      missing.push_back(edge.to);
    }
    const bool ends_known = missing.empty();
    if (!ends_known) {
      const std::string names = missing.size() == 1 ? missing[0] : missing[0] + " nor " + missing[1];
      report("graph.edge", label + ": there is no step " + names);
    }
    if (to != position.end() &&
        std::none_of(steps[to->second].inputs.begin(), steps[to->second].inputs.end(),
                     [&](const StepInput& input) { return input.kind == edge.kind; })) {
      report("graph.edge", label + ": " + edge.to + " does not read " + edge.kind);
    }
    if (edge.from == "init") {
      if (init.count(edge.kind) == 0) {
        report("graph.edge", label + ": init does not produce " + edge.kind);
      }
    } else if (from != position.end()) {
      if (steps[from->second].outputs.count(edge.kind) == 0) {
        report("graph.edge", label + ": " + edge.from + " does not write " + edge.kind);
      }
      if (edge.across.empty() && to != position.end() && from->second >= to->second) {
        report("graph.edge", label + " goes backwards: " + edge.from + " does not run before " + edge.to);
      }
    }
    if (edge.across.empty() && ends_known) {
      same_context.emplace_back(edge.from, edge.to);
    }
  }
  std::vector<std::string> nodes = {"init"};
  for (const PlannedStep& step : steps) {
    nodes.push_back(step.id);
  }
  std::vector<std::string> cycle = find_cycle(nodes, same_context);
  if (!cycle.empty()) {
    std::string path;
    for (const std::string& node : cycle) {
      path += (path.empty() ? "" : " -> ") + node;
    }
    report("graph.cycle", "edges within one context form a cycle: " + path);
  }
}

}  // namespace avps::skills
