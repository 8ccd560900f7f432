#include "avps/gates/gate.hpp"

#include "avps/core/canonical_json.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <utility>

#include "checks_internal.hpp"

namespace avps::gates {
using nlohmann::json;

std::string_view verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::pass:
      return "PASS";
    case Verdict::warn:
      return "WARN";
    case Verdict::fix:
      return "FIX";
    case Verdict::fail:
      return "FAIL";
    case Verdict::stop:
      return "STOP";
  }
  return "FAIL";
}

Result<Verdict> parse_verdict(std::string_view text) {
  for (Verdict v : {Verdict::pass, Verdict::warn, Verdict::fix, Verdict::fail, Verdict::stop}) {
    if (verdict_name(v) == text) {
      return v;
    }
  }
  return make_error(ErrorCode::invalid_argument,
                    "unknown verdict \"" + std::string(text) + "\" (expected PASS, WARN, FIX, FAIL or STOP)");
}

Result<std::optional<int64_t>> GateContext::kind_generation(std::string_view) const {
  return std::optional<int64_t>{};
}

Result<std::shared_ptr<const json>> GateContext::latest_shared(std::string_view kind, std::string_view target) const {
  AVPS_TRY_ASSIGN(std::optional<json> copy, latest(kind, target));
  return copy ? std::make_shared<const json>(std::move(*copy)) : nullptr;
}

Verdict worst(Verdict a, Verdict b) { return static_cast<int>(a) >= static_cast<int>(b) ? a : b; }

json GateResult::to_json() const {
  json out = json::object();
  out["verdict"] = std::string(verdict_name(verdict));
  out["scores"] = scores.is_object() ? scores : json::object();
  out["reasons"] = reasons;
  return out;
}

namespace {

Error definition_error(const std::string& where, const std::string& message) {
  return make_error(ErrorCode::invalid_argument, where + ": " + message);
}

// obj[key] when it is a string, else "" (json::value would throw on another type).
std::string text_member(const json& obj, const char* key) {
  if (!obj.is_object()) {
    return "";
  }
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

// An RFC 6901 pointer split into unescaped tokens ("/a~1b/c" -> {"a/b", "c"}).
Result<std::vector<std::string>> split_pointer(std::string_view pointer) {
  if (pointer.empty() || pointer.front() != '/') {
    return make_error(ErrorCode::invalid_argument,
                      "\"" + std::string(pointer) + "\" is not a JSON pointer (it must start with /)");
  }
  std::vector<std::string> tokens;
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (pointer[i] != '~') {
      token += pointer[i];
      continue;
    }
    char next = i + 1 < pointer.size() ? pointer[i + 1] : '\0';
    if (next != '0' && next != '1') {
      return make_error(ErrorCode::invalid_argument,
                        "JSON pointer \"" + std::string(pointer) + "\" has a ~ not followed by 0 or 1");
    }
    token += next == '0' ? '~' : '/';
    ++i;
  }
  return tokens;
}

bool is_array_index(const std::string& token) {
  if (token.empty() || token.size() > 9 || (token.size() > 1 && token[0] == '0')) {
    return false;
  }
  return std::all_of(token.begin(), token.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

const json* child(const json& node, const std::string& token) {
  if (node.is_object()) {
    auto it = node.find(token);
    return it == node.end() ? nullptr : &*it;
  }
  if (node.is_array() && is_array_index(token)) {
    size_t index = std::stoul(token);
    return index < node.size() ? &node[index] : nullptr;
  }
  return nullptr;
}

const json* resolve_pointer(const json& root, const std::vector<std::string>& tokens) {
  const json* node = &root;
  for (const std::string& token : tokens) {
    node = child(*node, token);
    if (node == nullptr) {
      return nullptr;
    }
  }
  return node;
}

// One value a rule looks at.
struct Target {
  std::string field;  // the concrete pointer without its leading "/": "distinctiveness_score/1/score"
  std::string label;  // what the '*' array member is about ("MARIA"), for reasons; may be empty
  const json* value = nullptr;  // nullptr: the pointer resolves to nothing
};

// Members that say which entity an array row is about; the first one present labels the row.
constexpr std::array<const char*, 6> k_row_id_members = {"character", "shot_id",   "scene_id",
                                                         "claim_id",  "entity_id", "task"};

std::string row_label(const json& row) {
  if (!row.is_object()) {
    return "";
  }
  for (const char* member : k_row_id_members) {
    auto it = row.find(member);
    if (it != row.end() && it->is_string()) {
      return it->get<std::string>();
    }
  }
  return "";
}

std::string join_field(const std::string& field, const std::string& token) {
  return field.empty() ? token : field + "/" + token;
}

// Expands tokens[i..] below `node`; '*' stands for every member of an array or object.
void expand(const json* node, const std::vector<std::string>& tokens, size_t i, const std::string& field,
            const std::string& label, std::vector<Target>& out) {
  if (node == nullptr) {
    std::string whole = field;
    for (size_t k = i; k < tokens.size(); ++k) {
      whole = join_field(whole, core::escape_pointer_token(tokens[k]));
    }
    out.push_back(Target{whole, label, nullptr});
    return;
  }
  if (i == tokens.size()) {
    out.push_back(Target{field, label, node});
    return;
  }
  const std::string& token = tokens[i];
  if (token != "*") {
    expand(child(*node, token), tokens, i + 1, join_field(field, core::escape_pointer_token(token)), label, out);
    return;
  }
  if (node->is_object()) {
    for (auto it = node->begin(); it != node->end(); ++it) {
      expand(&*it, tokens, i + 1, join_field(field, core::escape_pointer_token(it.key())), label, out);
    }
  } else if (node->is_array()) {
    for (size_t k = 0; k < node->size(); ++k) {
      std::string member_label = row_label((*node)[k]);
      expand(&(*node)[k], tokens, i + 1, join_field(field, std::to_string(k)),
             member_label.empty() ? label : member_label, out);
    }
  } else {
    expand(nullptr, tokens, i, field, label, out);  // '*' over a scalar: nothing there to check
  }
}

std::string describe(const Target& target) {
  return target.label.empty() ? target.field : target.field + " (" + target.label + ")";
}

std::string show(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

// A rule's threshold or a check parameter after config references are resolved.
struct Resolved {
  json value;
  std::string source;  // "thresholds/plaus_total" for a config reference; empty for a literal

  std::string shown() const { return source.empty() ? show(value) : show(value) + " (" + source + ")"; }
};

// Resolves a literal or {"config": pointer, "default": value}; a resolved number is recorded in
// `scores` under its config pointer so the verdict can be explained and replayed.
// A score's name as faces show it: the field path with "." for "/" ("distinctiveness_score.0.score").
std::string score_name(std::string path) {
  std::replace(path.begin(), path.end(), '/', '.');
  return path;
}

Result<Resolved> resolve_value(const json& value, const json& config, json& scores,
                               const std::string& where) {
  if (value.is_number() || value.is_string() || value.is_boolean()) {
    return Resolved{value, ""};
  }
  if (!value.is_object()) {
    return definition_error(where,
                            "a value must be a number, a string, a boolean or {\"config\", \"default\"}");
  }
  auto pointer = value.find("config");
  if (pointer == value.end() || !pointer->is_string()) {
    return definition_error(where, "a config reference needs a \"config\" JSON pointer");
  }
  Result<std::vector<std::string>> tokens = split_pointer(pointer->get<std::string>());
  if (!tokens) {
    return definition_error(where, tokens.error().message);
  }
  // "thresholds.plaus_total": a score name a face can show (no "/").
  std::string source = score_name(pointer->get<std::string>().substr(1));
  json resolved;
  if (const json* configured = resolve_pointer(config, *tokens)) {
    resolved = *configured;
  } else if (auto fallback = value.find("default"); fallback != value.end()) {
    resolved = *fallback;
  } else {
    return definition_error(where, "the configuration has no value at " + pointer->get<std::string>() +
                                       " and the reference gives no default");
  }
  if (!resolved.is_number() && !resolved.is_string() && !resolved.is_boolean()) {
    return definition_error(where, "the configuration value at " + pointer->get<std::string>() +
                                       " is not a number, a string or a boolean");
  }
  if (resolved.is_number()) {
    scores[source] = resolved;
  }
  return Resolved{resolved, source};
}

Result<double> number_of(const Resolved& resolved, const std::string& where, const char* what) {
  if (!resolved.value.is_number()) {
    return definition_error(where, std::string(what) + " must be a number, not " + show(resolved.value));
  }
  return resolved.value.get<double>();
}

// Evaluates one declarative rule on `output`, adding a finding per violated target.
Result<void> evaluate_rule(const json& rule, const std::string& where, const json& output, const json& config,
                           json& scores, std::vector<Finding>& findings) {
  if (!rule.is_object()) {
    return definition_error(where, "a rule must be an object");
  }
  std::string type = text_member(rule, "type");
  Result<Verdict> verdict = parse_verdict(text_member(rule, "verdict_on_violation"));
  if (!verdict || *verdict == Verdict::pass) {
    return definition_error(where, "verdict_on_violation must be FAIL, FIX, WARN or STOP");
  }
  std::string reason = text_member(rule, "reason");
  if (reason.empty()) {
    return definition_error(where, "a rule needs a reason");
  }

  std::vector<std::string> pointers;
  if (auto field = rule.find("field"); field != rule.end() && field->is_string()) {
    pointers.push_back(field->get<std::string>());
  } else if (auto fields = rule.find("fields");
             fields != rule.end() && fields->is_array() && !fields->empty()) {
    for (const json& f : *fields) {
      if (!f.is_string()) {
        return definition_error(where, "fields must be JSON pointers");
      }
      pointers.push_back(f.get<std::string>());
    }
  } else {
    return definition_error(where, "a rule needs a field or fields");
  }

  // The rule's comparison value(s), resolved once.
  Resolved value;
  std::optional<Resolved> count_min;
  std::optional<Resolved> count_max;
  json values = json::array();
  if (type == "min" || type == "max" || type == "equals") {
    if (!rule.contains("value")) {
      return definition_error(where, "a " + type + " rule needs a value");
    }
    AVPS_TRY_ASSIGN(value, resolve_value(rule["value"], config, scores, where));
    if (type != "equals") {
      AVPS_TRY(number_of(value, where, "the value"));
    }
  } else if (type == "enum_fail") {
    if (!rule.contains("values") || !rule["values"].is_array() || rule["values"].empty()) {
      return definition_error(where, "an enum_fail rule needs values");
    }
    values = rule["values"];
  } else if (type == "count") {
    if (rule.contains("min")) {
      AVPS_TRY_ASSIGN(count_min, resolve_value(rule["min"], config, scores, where));
      AVPS_TRY(number_of(*count_min, where, "min"));
    }
    if (rule.contains("max")) {
      AVPS_TRY_ASSIGN(count_max, resolve_value(rule["max"], config, scores, where));
      AVPS_TRY(number_of(*count_max, where, "max"));
    }
    if (!count_min && !count_max) {
      return definition_error(where, "a count rule needs min or max");
    }
  } else if (type != "any_zero") {
    return definition_error(where, "unknown rule type \"" + type + "\"");
  }

  auto violated = [&](const std::string& what) {
    findings.push_back(Finding{*verdict, reason + ": " + what});
  };

  for (const std::string& pointer : pointers) {
    Result<std::vector<std::string>> tokens = split_pointer(pointer);
    if (!tokens) {
      return definition_error(where, tokens.error().message);
    }
    std::vector<Target> targets;
    expand(&output, *tokens, 0, "", "", targets);
    for (const Target& target : targets) {
      if (target.value == nullptr) {
        violated(describe(target) + " is missing");
        continue;
      }
      const json& actual = *target.value;
      if (type == "count") {
        if (!actual.is_array() && !actual.is_object()) {
          return definition_error(
              where, target.field + " is not a list or an object, so it has no members to count");
        }
        double n = static_cast<double>(actual.size());
        scores[score_name(target.field) + "_count"] = actual.size();
        if (count_min && n < count_min->value.get<double>()) {
          violated(describe(target) + " has " + std::to_string(actual.size()) + " members, fewer than " +
                   count_min->shown());
        } else if (count_max && n > count_max->value.get<double>()) {
          violated(describe(target) + " has " + std::to_string(actual.size()) + " members, more than " +
                   count_max->shown());
        }
        continue;
      }
      if (actual.is_number()) {
        scores[score_name(target.field)] = actual;
      }
      if (type == "min" || type == "max") {
        if (!actual.is_number()) {
          return definition_error(where, target.field + " is " + show(actual) + ", not a number");
        }
        double threshold = value.value.get<double>();
        if (type == "min" && actual.get<double>() < threshold) {
          violated(describe(target) + " " + show(actual) + " < " + value.shown());
        } else if (type == "max" && actual.get<double>() > threshold) {
          violated(describe(target) + " " + show(actual) + " > " + value.shown());
        }
      } else if (type == "any_zero") {
        if (actual.is_number() && actual.get<double>() == 0) {
          violated(describe(target) + " is 0");
        }
      } else if (type == "enum_fail") {
        if (std::find(values.begin(), values.end(), actual) != values.end()) {
          violated(describe(target) + " is " + show(actual));
        }
      } else if (type == "equals") {
        if (actual != value.value) {
          violated(describe(target) + " is " + show(actual) + ", expected " + value.shown());
        }
      }
    }
  }
  return ok();
}

std::string skill_name_of(const json& skill) {
  std::string name = text_member(skill, "name");
  return name.empty() ? "(unnamed)" : name;
}

// The skill's output kinds in order, and the first one with a schema (what rules read by default).
struct SkillOutputs {
  std::vector<std::string> kinds;
  std::string primary;
};

Result<SkillOutputs> skill_outputs(const json& skill, const std::string& where) {
  SkillOutputs out;
  auto outputs = skill.find("outputs");
  if (outputs == skill.end() || !outputs->is_array()) {
    return definition_error(where, "the skill has no outputs");
  }
  for (const json& output : *outputs) {
    if (!output.is_object() || !output.contains("kind") || !output["kind"].is_string()) {
      return definition_error(where, "an output without a kind");
    }
    out.kinds.push_back(output["kind"].get<std::string>());
    if (out.primary.empty() && output.contains("schema")) {
      out.primary = out.kinds.back();
    }
  }
  if (out.primary.empty()) {
    return definition_error(where, "the skill has no output with a schema, so nothing to gate");
  }
  return out;
}

}  // namespace

Result<GateResult> evaluate_gate_outputs(const json& skill, const Outputs& outputs,
                                         const GateContext& context) {
  const std::string where = "skill " + skill_name_of(skill);
  if (!skill.is_object()) {
    return definition_error(where, "the definition is not an object");
  }
  AVPS_TRY_ASSIGN(SkillOutputs kinds, skill_outputs(skill, where));
  auto gate = skill.find("gate");
  if (gate == skill.end() || !gate->is_object() || !gate->contains("rules") || !(*gate)["rules"].is_array() ||
      !gate->contains("checks") || !(*gate)["checks"].is_array()) {
    return definition_error(where, "gate must be an object with rules and checks");
  }
  const json& config = context.config();
  GateResult result;
  std::vector<Finding> findings;

  const json& rules = (*gate)["rules"];
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string rule_where = where + ": gate rule " + std::to_string(i + 1);
    std::string kind = kinds.primary;
    if (rules[i].is_object() && rules[i].contains("output")) {
      if (!rules[i]["output"].is_string()) {
        return definition_error(rule_where, "output must be a kind name");
      }
      kind = rules[i]["output"].get<std::string>();
    }
    if (std::find(kinds.kinds.begin(), kinds.kinds.end(), kind) == kinds.kinds.end()) {
      return definition_error(rule_where, "reads " + kind + ", which is not an output of the skill");
    }
    auto output = outputs.find(kind);
    if (output == outputs.end()) {
      return definition_error(rule_where, "reads " + kind + ", which was not given");
    }
    AVPS_TRY(evaluate_rule(rules[i], rule_where, output->second, config, result.scores, findings));
  }

  json params = json::object();
  if (auto declared = gate->find("params"); declared != gate->end()) {
    if (!declared->is_object()) {
      return definition_error(where, "gate.params must be an object");
    }
    for (auto it = declared->begin(); it != declared->end(); ++it) {
      AVPS_TRY_ASSIGN(Resolved resolved,
                      resolve_value(it.value(), config, result.scores, where + ": gate.params." + it.key()));
      params[it.key()] = resolved.value;
    }
  }

  for (const json& entry : (*gate)["checks"]) {
    if (!entry.is_string()) {
      return definition_error(where, "gate.checks must be check names");
    }
    const std::string name = entry.get<std::string>();
    if (detail::is_engine_check(name)) {
      result.deferred_checks.push_back(name);
      continue;
    }
    const detail::CheckInfo* info = detail::find_check_info(name);
    if (info == nullptr) {
      return definition_error(where, "unknown gate check \"" + name + "\"");
    }
    std::string kind = info->reads.empty() ? kinds.primary : std::string(info->reads);
    auto output = outputs.find(kind);
    if (output == outputs.end()) {
      return definition_error(where, "check " + name + " reads " + kind + ", which was not given");
    }
    Result<std::vector<Finding>> found = info->check(output->second, params, context);
    if (!found) {
      return make_error(found.error().code, where + ": check " + name + ": " + found.error().message);
    }
    findings.insert(findings.end(), found->begin(), found->end());
  }

  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    return static_cast<int>(a.verdict) > static_cast<int>(b.verdict);
  });
  for (const Finding& finding : findings) {
    result.verdict = worst(result.verdict, finding.verdict);
    result.reasons.push_back(finding.reason);
  }
  return result;
}

Result<GateResult> evaluate_gate(const json& skill, const json& output, const GateContext& context) {
  const std::string where = "skill " + skill_name_of(skill);
  AVPS_TRY_ASSIGN(SkillOutputs kinds, skill_outputs(skill, where));
  std::string kind = kinds.primary;
  if (output.is_object()) {
    auto named = output.find("kind");
    if (named != output.end() && named->is_string() &&
        std::find(kinds.kinds.begin(), kinds.kinds.end(), named->get<std::string>()) != kinds.kinds.end()) {
      kind = named->get<std::string>();
    }
  }
  Outputs outputs;
  outputs.emplace(kind, output);
  return evaluate_gate_outputs(skill, outputs, context);
}

void file_violations_under_rows(json& answer) {
  if (!answer.is_object() || !answer.contains("rows") || !answer["rows"].is_array() || answer["rows"].empty() ||
      !answer.contains("violations") || !answer["violations"].is_array()) {
    return;
  }
  const json& rows = answer["rows"];
  auto graded = [&rows](const json& v) {
    return std::any_of(rows.begin(), rows.end(), [&v](const json& row) {
      return row.is_object() && v.value("shot_id", json()) == row.value("shot_id", json()) &&
             v.value("attempt_number", json()) == row.value("attempt_number", json());
    });
  };
  for (json& v : answer["violations"]) {
    if (!v.is_object() || graded(v) || !rows[0].is_object()) {
      continue;
    }
    auto text = [&v](const char* key) {
      const json value = v.value(key, json("?"));
      return value.is_string() ? value.get<std::string>() : value.dump();
    };
    v["description"] = "(filed under " + text("shot_id") + " attempt " + text("attempt_number") + ") " +
                       text_member(v, "description");
    v["shot_id"] = rows[0].value("shot_id", json());
    v["attempt_number"] = rows[0].value("attempt_number", json());
  }
}

Result<std::vector<std::string>> stamp_qc_verdicts(const json& skill, json& batch, const GateContext& context,
                                                   QcClaim claim) {
  const std::string where = "skill " + skill_name_of(skill);
  const json gate = skill.is_object() ? skill.value("gate", json::object()) : json::object();
  json params = json::object();
  json scores = json::object();
  const json declared = gate.value("params", json::object());
  for (const auto& [key, value] : declared.items()) {
    AVPS_TRY_ASSIGN(Resolved resolved, resolve_value(value, context.config(), scores, where + ": gate.params." + key));
    params[key] = resolved.value;
  }
  if (!batch.is_object() || !batch.contains("rows") || !batch["rows"].is_array()) {
    return make_error(ErrorCode::invalid_argument, "a QC_BATCH without rows");
  }
  AVPS_TRY_ASSIGN(std::vector<Verdict> verdicts, detail::qc_row_verdicts(batch, params, context));
  std::vector<std::string> changed;
  json& rows = batch["rows"];
  for (size_t i = 0; i < rows.size() && i < verdicts.size(); ++i) {
    json& row = rows[i];
    const std::string given = text_member(row, "verdict");
    const std::string computed(verdict_name(verdicts[i]));
    if (claim == QcClaim::in_verdict) {
      row["model_verdict"] = given;
    } else if (!row.contains("model_verdict")) {
      row["model_verdict"] = "";
    }
    if (claim == QcClaim::in_model_verdict && given != computed) {
      changed.push_back(text_member(row, "shot_id") + " attempt " +
                        (row.contains("attempt_number") ? row["attempt_number"].dump() : std::string("?")) + ": " +
                        (given.empty() ? std::string("no verdict") : given) + " -> " + computed);
    }
    row["verdict"] = computed;
  }
  // Violations in the order of their rows (then as given); those of no row last.
  if (batch.contains("violations") && batch["violations"].is_array()) {
    auto row_of = [&rows](const json& v) {
      for (size_t i = 0; i < rows.size(); ++i) {
        if (v.value("shot_id", json()) == rows[i].value("shot_id", json()) &&
            v.value("attempt_number", json()) == rows[i].value("attempt_number", json())) {
          return i;
        }
      }
      return rows.size();
    };
    std::vector<json> items(batch["violations"].begin(), batch["violations"].end());
    std::stable_sort(items.begin(), items.end(),
                     [&row_of](const json& a, const json& b) { return row_of(a) < row_of(b); });
    batch["violations"] = items;
  }
  return changed;
}

}  // namespace avps::gates
