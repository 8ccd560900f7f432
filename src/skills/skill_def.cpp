#include "avps/skills/skill_def.hpp"

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"

namespace avps::skills {

using nlohmann::json;

std::string_view origin_name(Origin origin) {
  switch (origin) {
    case Origin::shipped: return "shipped";
    case Origin::project: return "project";
  }
  return "shipped";
}

namespace {

std::string string_or_empty(const json& object, const char* key) {
  return object.contains(key) ? object.at(key).get<std::string>() : std::string();
}

void collect_config_refs(const json& value, std::vector<const json*>& out) {
  if (value.is_object()) {
    if (value.size() == 2 && value.contains("config") && value.contains("default") &&
        value["config"].is_string()) {
      out.push_back(&value);
      return;
    }
    for (const auto& item : value.items()) {
      collect_config_refs(item.value(), out);
    }
  } else if (value.is_array()) {
    for (const json& item : value) {
      collect_config_refs(item, out);
    }
  }
}

}  // namespace

Result<SkillDef> SkillDef::from_json(const json& document) {
  // The schema has already said yes; the try only turns a caller's mistake into an error.
  try {
    SkillDef def;
    def.name = document.at("name").get<std::string>();
    def.description = document.at("description").get<std::string>();
    def.layer = document.at("layer").get<std::string>();
    def.loop = document.at("loop").get<std::string>();
    def.scope = document.at("scope").get<std::string>();
    def.executor =
        document.at("executor").get<std::string>() == "builtin" ? Executor::builtin : Executor::model;
    def.builtin = string_or_empty(document, "builtin");
    if (document.contains("tier")) {
      const json& tier = document.at("tier");
      def.tier = TierPolicy{tier.at("default").get<std::string>(),
                            tier.at("escalation").get<std::vector<std::string>>(),
                            tier.at("max_escalations").get<int>()};
    }
    def.max_output_tokens = document.value("max_output_tokens", 0);
    def.runs_when = string_or_empty(document, "runs_when");
    if (document.contains("post_steps")) {
      def.post_steps = document.at("post_steps").get<std::vector<std::string>>();
    }
    if (document.contains("paging")) {
      const json& paging = document.at("paging");
      def.paging = Paging{string_or_empty(paging, "input"), string_or_empty(paging, "output"),
                          paging.at("rows_per_page").get<int>(),
                          paging.value("per_scene", std::vector<std::string>{})};
    }
    for (const json& input : document.at("inputs")) {
      def.inputs.push_back({input.at("kind").get<std::string>(), input.at("required").get<bool>(),
                            input.at("slice").get<std::string>(), input.value("fields", std::vector<std::string>{}),
                            input.value("feedback", false), input.value("into_genpack", false)});
    }
    for (const json& output : document.at("outputs")) {
      def.outputs.push_back({output.at("kind").get<std::string>(), string_or_empty(output, "schema"),
                             string_or_empty(output, "media"), string_or_empty(output, "written_by"),
                             string_or_empty(output, "collect")});
    }
    const json& gate = document.at("gate");
    def.gate_rules = gate.at("rules");
    def.gate_checks = gate.at("checks").get<std::vector<std::string>>();
    def.gate_params = gate.value("params", json::object());
    def.loop_policy = document.value("loop_policy", json::object());
    def.raw = document;
    return def;
  } catch (const json::exception& e) {
    return make_error(ErrorCode::invalid_argument, std::string("skill definition is not shaped as "
                                                               "skill.schema.json says: ") +
                                                       e.what());
  }
}

bool SkillDef::overridden() const {
  return definition.origin == Origin::project || prompt.origin == Origin::project;
}

const SkillOutput* SkillDef::rule_output(const json& rule) const {
  const bool named = rule.is_object() && rule.contains("output") && rule["output"].is_string();
  for (const SkillOutput& output : outputs) {
    if (output.schema.empty()) {
      continue;
    }
    if (!named || output.kind == rule["output"].get<std::string>()) {
      return &output;
    }
  }
  return nullptr;
}

std::vector<const SkillOutput*> SkillDef::model_outputs() const {
  std::vector<const SkillOutput*> out;
  for (const SkillOutput& output : outputs) {
    if (!output.schema.empty() && output.written_by.empty()) {
      out.push_back(&output);
    }
  }
  return out;
}

bool SkillDef::settles(const std::string& verdict) const {
  return verdict == "PASS" || verdict == "WARN" || verdict == "ACCEPTED" || (verdict == "FIX" && !fix_loops());
}

const SkillOutput* SkillDef::find_output(std::string_view kind) const {
  for (const SkillOutput& output : outputs) {
    if (output.kind == kind) {
      return &output;
    }
  }
  return nullptr;
}

std::vector<const json*> find_config_refs(const json& value) {
  std::vector<const json*> refs;
  collect_config_refs(value, refs);
  return refs;
}

Result<nlohmann::json> output_schema(const SkillDef& skill, const std::filesystem::path& data_dir) {
  nlohmann::json schemas = nlohmann::json::object();
  const std::vector<const SkillOutput*> outputs = skill.model_outputs();
  for (const SkillOutput* output : outputs) {
    AVPS_TRY_ASSIGN(std::string text, core::read_file(data_dir / "schemas" / output->schema));
    AVPS_TRY_ASSIGN(nlohmann::json schema, core::parse_json(text, output->schema));
    schemas[output->kind] = schema;
  }
  if (outputs.size() == 1) {
    return nlohmann::json(schemas.begin().value());
  }
  return schemas;
}

}  // namespace avps::skills
