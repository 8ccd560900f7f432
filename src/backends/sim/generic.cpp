// The sim's answer for a model skill it has no generator of its own for (a skill a project adds):
// an artifact made from the request's output schema, filled from the request's scope and inputs.
//
// Rules, in the order they are tried for a value (all choices from the call's content stream, so
// the same request gives the same bytes):
//   - const, then enum (PASS where the enum has it: a dry run should pass what it can);
//   - a string whose member name the scope or the inputs use (scene_id, shot_id, char_id, ...):
//     one of those values that fits the schema (pattern, length, enum), the scope's first;
//   - a string with a pattern: any string of the inputs that matches it, else a few plain id
//     shapes (S01, S01_SH01, ITEM_1, ...); when none matches, the call fails naming the field
//     rather than answering something the schema refuses;
//   - other strings: "<Field name>: <a phrase of the inputs>", short and within the length limits;
//   - numbers in the upper half of [minimum, maximum] (a dry run's scores pass their gates);
//   - booleans false; arrays 1 to 3 items within minItems / maxItems; objects every declared
//     property; "gate" the PASS gate (avps recomputes it anyway).
// References resolve within the schema's own document ("#/definitions/x") and to the shipped
// schema files ("common.schema.json#/..."); a project's schema reaches the sim self-contained
// (skills::SchemaSet::request_schema).

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <regex>

#include "../shipped_schemas.hpp"
#include "sim_internal.hpp"

namespace avps::backends::sim {
namespace {

constexpr int k_max_depth = 24;
constexpr size_t k_max_phrase = 60;

struct Located {
  const json* node = nullptr;
  const json* document = nullptr;  // where its "#/..." references resolve
};

// Characters (code points) of UTF-8 text, as JSON Schema counts minLength / maxLength.
size_t utf8_length(const std::string& text) {
  size_t count = 0;
  for (unsigned char c : text) {
    count += (c & 0xC0U) != 0x80U ? 1 : 0;
  }
  return count;
}

class SchemaFiller {
 public:
  explicit SchemaFiller(Call& call) : m_call(call) { collect(); }

  json fill(const json& schema) { return make({&schema, &schema}, "", "", 0); }
  const std::string& problem() const { return m_problem; }

 private:
  Call& m_call;
  std::string m_problem;
  std::map<std::string, std::vector<std::string>> m_values;  // member name -> values, scope's first
  std::vector<std::string> m_all_strings;                    // every short string of the inputs
  std::vector<std::string> m_phrases;                        // readable text of the inputs

  static void add_unique(std::vector<std::string>& list, const std::string& value) {
    if (std::find(list.begin(), list.end(), value) == list.end()) {
      list.push_back(value);
    }
  }

  void collect_from(const json& value, const std::string& name) {
    if (value.is_object()) {
      for (const auto& [key, member] : value.items()) {
        collect_from(member, key);
      }
    } else if (value.is_array()) {
      for (const json& item : value) {
        collect_from(item, name);
      }
    } else if (value.is_string()) {
      const std::string text = value.get<std::string>();
      if (text.empty() || text.size() > 400) {
        return;
      }
      if (!name.empty()) {
        add_unique(m_values[name], text);
      }
      if (text.size() <= 64) {
        add_unique(m_all_strings, text);
      }
      if (std::count(text.begin(), text.end(), ' ') >= 2 && text.find('\n') == std::string::npos) {
        add_unique(m_phrases, text);
      }
    }
  }

  void collect() {
    const json& scope = m_call.request.scope;
    if (scope.is_object()) {
      for (const auto& [key, value] : scope.items()) {
        if (value.is_string() && !value.get<std::string>().empty()) {
          m_values[key].push_back(value.get<std::string>());
        }
      }
    }
    // The call's scene is known even when only its shot is in the scope.
    if (scope.is_object() && (scope.contains("scene_id") || scope.contains("shot_id"))) {
      auto& scenes = m_values["scene_id"];
      const std::string scene = scene_id(m_call);
      scenes.erase(std::remove(scenes.begin(), scenes.end(), scene), scenes.end());
      scenes.insert(scenes.begin(), scene);
    }
    if (m_call.request.inputs.is_object()) {
      for (const auto& [kind, value] : m_call.request.inputs.items()) {
        if (kind != "BRIEF") {
          collect_from(value, "");
        }
      }
    }
    if (!m_call.brief.premise.empty()) {
      add_unique(m_phrases, m_call.brief.premise);
    }
  }

  Located resolve(Located at) {
    for (int hops = 0; hops < k_max_depth && at.node && at.node->is_object() && at.node->contains("$ref"); ++hops) {
      const json& ref = (*at.node)["$ref"];
      if (!ref.is_string()) {
        return {};
      }
      const std::string text = ref.get<std::string>();
      const size_t hash = text.find('#');
      const json* document = at.document;
      if (hash != 0) {
        document = shipped_schema(text.substr(0, hash));
      }
      if (document == nullptr) {
        m_problem = "reference " + text + " names no schema the sim can read";
        return {};
      }
      try {
        at = {&document->at(json::json_pointer(hash == std::string::npos ? "" : text.substr(hash + 1))), document};
      } catch (const json::exception&) {
        m_problem = "reference " + text + " points at nothing";
        return {};
      }
    }
    return at;
  }

  static std::string type_of(const json& schema) {
    if (schema.contains("type")) {
      const json& type = schema["type"];
      if (type.is_string()) {
        return type.get<std::string>();
      }
      if (type.is_array()) {
        for (const json& t : type) {
          if (t.is_string() && t != "null") {
            return t.get<std::string>();
          }
        }
        return "null";
      }
    }
    if (schema.contains("properties") || schema.contains("required") || schema.contains("additionalProperties")) {
      return "object";
    }
    if (schema.contains("items")) {
      return "array";
    }
    return "string";
  }

  static bool matches(const json& schema, const std::string& text) {
    if (schema.contains("minLength") && schema["minLength"].is_number_integer() &&
        static_cast<int64_t>(utf8_length(text)) < schema["minLength"].get<int64_t>()) {
      return false;
    }
    if (schema.contains("maxLength") && schema["maxLength"].is_number_integer() &&
        static_cast<int64_t>(utf8_length(text)) > schema["maxLength"].get<int64_t>()) {
      return false;
    }
    if (schema.contains("pattern") && schema["pattern"].is_string()) {
      try {
        return std::regex_search(text, std::regex(schema["pattern"].get<std::string>(), std::regex::ECMAScript));
      } catch (const std::regex_error&) {
        return false;
      }
    }
    return true;
  }

  static std::string humanized(const std::string& name) {
    std::string out;
    for (char c : name) {
      out += c == '_' ? ' ' : c;
    }
    if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') {
      out[0] = static_cast<char>(out[0] - 'a' + 'A');
    }
    return out.empty() ? "Note" : out;
  }

  std::string phrase() {
    std::string text = m_phrases.empty() ? std::string("as the scene sets it") : m_call.rng.pick(m_phrases);
    if (text.size() > k_max_phrase) {
      size_t cut = text.rfind(' ', k_max_phrase);
      text = text.substr(0, cut == std::string::npos || cut < 10 ? k_max_phrase : cut);
      while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0U) == 0x80U) {
        text.pop_back();  // never end inside a UTF-8 character
      }
      if (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0U) == 0xC0U) {
        text.pop_back();
      }
    }
    return clause(text);
  }

  json make_string(const json& schema, const std::string& name, const std::string& path) {
    // Values the scope or the inputs give this member, the scope's first.
    if (auto found = m_values.find(name); found != m_values.end()) {
      std::vector<std::string> fitting;
      for (const std::string& value : found->second) {
        if (matches(schema, value)) {
          fitting.push_back(value);
        }
      }
      if (!fitting.empty()) {
        const json& scope = m_call.request.scope;
        const bool from_scope = scope.is_object() && scope.contains(name) && fitting.front() == scope.value(name, "");
        return name == "scene_id" || from_scope ? fitting.front() : m_call.rng.pick(fitting);
      }
    }
    if (schema.contains("pattern")) {
      std::vector<std::string> fitting;
      for (const std::string& value : m_all_strings) {
        if (matches(schema, value)) {
          fitting.push_back(value);
        }
      }
      if (fitting.empty()) {
        for (const char* shape : {"S01", "S01_SH01", "ITEM_1", "ITEM", "item-1", "item", "1", "PROJECT", "A"}) {
          if (matches(schema, shape)) {
            fitting.push_back(shape);
            break;
          }
        }
      }
      if (fitting.empty()) {
        m_problem = "no value of the inputs matches the pattern " + schema["pattern"].dump() + " of " +
                    (path.empty() ? std::string("the answer") : path);
        return "";
      }
      return m_call.rng.pick(fitting);
    }
    std::string text = humanized(name) + ": " + phrase();
    const int64_t min_length = schema.value("minLength", int64_t{0});
    const int64_t max_length = schema.value("maxLength", int64_t{-1});
    while (static_cast<int64_t>(utf8_length(text)) < min_length) {
      text += " More detail to follow.";
    }
    if (max_length >= 1 && static_cast<int64_t>(utf8_length(text)) > max_length) {
      std::string cut;
      int64_t length = 0;
      for (size_t i = 0; i < text.size();) {
        const size_t n = std::max<size_t>(1, core::utf8_sequence_length(text, i));
        if (length + 1 > max_length) {
          break;
        }
        cut += text.substr(i, n);
        i += n;
        ++length;
      }
      text = cut;
    }
    return text;
  }

  json make_number(const json& schema, bool integer) {
    auto number_at = [&](const char* key) -> std::optional<double> {
      return schema.contains(key) && schema[key].is_number() ? std::optional<double>(schema[key].get<double>())
                                                             : std::nullopt;
    };
    std::optional<double> lo = number_at("minimum");
    std::optional<double> hi = number_at("maximum");
    if (auto x = number_at("exclusiveMinimum")) {
      lo = *x + 1;
    }
    if (auto x = number_at("exclusiveMaximum")) {
      hi = *x - 1;
    }
    const int64_t low = lo ? static_cast<int64_t>(std::ceil(*lo)) : hi ? static_cast<int64_t>(*hi) - 4 : 1;
    const int64_t high = hi ? static_cast<int64_t>(std::floor(*hi)) : low + 4;
    if (high < low) {
      m_problem = "a number schema with no integer in range: " + schema.dump();
      return 0;
    }
    // The upper half: a dry run's scores pass the gates a skill puts on them.
    const int64_t from = low + (high - low + 1) / 2;
    int64_t value = from + static_cast<int64_t>(m_call.rng.unit() * static_cast<double>(high - from + 1));
    value = std::min(value, high);
    if (auto step = number_at("multipleOf"); step && *step >= 1) {
      const auto m = static_cast<int64_t>(*step);
      value = value / m * m;
      if (value < low) {
        value += m;
      }
    }
    return integer ? json(value) : json(static_cast<double>(value));
  }

  json make(Located at, const std::string& name, const std::string& path, int depth) {
    if (!m_problem.empty()) {
      return nullptr;
    }
    if (depth > k_max_depth) {
      m_problem = "the schema nests deeper than " + std::to_string(k_max_depth) + " at " + path;
      return nullptr;
    }
    at = resolve(at);
    if (at.node == nullptr) {
      if (m_problem.empty()) {
        m_problem = "no schema at " + path;
      }
      return nullptr;
    }
    const json& schema = *at.node;
    if (!schema.is_object()) {
      return schema.is_boolean() && !schema.get<bool>() ? json() : json("x");
    }
    if (schema.contains("const")) {
      return schema["const"];
    }
    if (schema.contains("enum") && schema["enum"].is_array() && !schema["enum"].empty()) {
      const json& values = schema["enum"];
      if (std::find(values.begin(), values.end(), json("PASS")) != values.end()) {
        return "PASS";
      }
      if (auto found = m_values.find(name); found != m_values.end()) {
        for (const std::string& value : found->second) {
          if (std::find(values.begin(), values.end(), json(value)) != values.end()) {
            return value;
          }
        }
      }
      return values[static_cast<size_t>(m_call.rng.range(0, static_cast<int>(values.size()) - 1))];
    }
    for (const char* choice : {"anyOf", "oneOf"}) {
      if (schema.contains(choice) && schema[choice].is_array() && !schema[choice].empty()) {
        return make({&schema[choice][0], at.document}, name, path, depth + 1);
      }
    }
    if (schema.contains("allOf") && schema["allOf"].is_array()) {
      // One object of every branch's properties and requirements.
      json merged = schema;
      merged.erase("allOf");
      for (const json& branch : schema["allOf"]) {
        Located b = resolve({&branch, at.document});
        if (b.node == nullptr || !b.node->is_object()) {
          continue;
        }
        for (const auto& [key, value] : b.node->items()) {
          if (key == "properties" && value.is_object()) {
            for (const auto& [property, sub] : value.items()) {
              merged["properties"][property] = sub;
            }
          } else if (key == "required" && value.is_array()) {
            for (const json& r : value) {
              merged["required"].push_back(r);
            }
          } else if (!merged.contains(key)) {
            merged[key] = value;
          }
        }
      }
      m_owned.push_back(std::make_unique<json>(std::move(merged)));
      return make({m_owned.back().get(), at.document}, name, path, depth + 1);
    }
    const std::string type = type_of(schema);
    if (type == "null") {
      return nullptr;
    }
    if (type == "boolean") {
      return false;
    }
    if (type == "integer" || type == "number") {
      return make_number(schema, type == "integer");
    }
    if (type == "string") {
      return make_string(schema, name, path);
    }
    if (type == "array") {
      const int64_t min_items = schema.value("minItems", int64_t{0});
      const int64_t max_items = schema.value("maxItems", int64_t{3});
      int64_t count = std::clamp<int64_t>(m_call.rng.range(1, 3), min_items, std::max(min_items, max_items));
      json out = json::array();
      if (schema.contains("items") && schema["items"].is_array()) {
        for (size_t i = 0; i < schema["items"].size(); ++i) {
          out.push_back(make({&schema["items"][i], at.document}, name, path + "/" + std::to_string(i), depth + 1));
        }
        return out;
      }
      const json any = json::object();
      const json* items = schema.contains("items") ? &schema["items"] : &any;
      const bool unique = schema.value("uniqueItems", false);
      for (int64_t i = 0, tries = 0; i < count && tries < count + 8; ++tries) {
        json item = make({items, at.document}, name, path + "/" + std::to_string(i), depth + 1);
        if (unique && std::find(out.begin(), out.end(), item) != out.end()) {
          continue;
        }
        out.push_back(std::move(item));
        ++i;
      }
      if (static_cast<int64_t>(out.size()) < min_items && m_problem.empty()) {
        m_problem = "cannot make " + std::to_string(min_items) + " distinct items at " + path;
      }
      return out;
    }
    // An object: every declared member; a "gate" is the PASS gate avps recomputes anyway.
    json out = json::object();
    const json properties = schema.value("properties", json::object());
    for (const auto& [key, sub] : properties.items()) {
      if (key == "gate") {
        Located gate = resolve({&sub, at.document});
        if (gate.node && gate.node->is_object() && gate.node->contains("properties") &&
            (*gate.node)["properties"].contains("verdict")) {
          out[key] = gate_of("PASS", json::object(), {});
          continue;
        }
      }
      out[key] = make({&sub, at.document}, key, path + "/" + key, depth + 1);
    }
    for (const json& required : schema.value("required", json::array())) {
      if (!required.is_string() || out.contains(required.get<std::string>())) {
        continue;
      }
      const std::string key = required.get<std::string>();
      const json any = json::object();
      const json* extra = schema.contains("additionalProperties") && schema["additionalProperties"].is_object()
                              ? &schema["additionalProperties"]
                              : &any;
      out[key] = make({extra, at.document}, key, path + "/" + key, depth + 1);
    }
    return out;
  }

  std::vector<std::unique_ptr<json>> m_owned;  // merged allOf schemas, alive while filling
};

}  // namespace

Result<json> schema_answer(Call& call) {
  const json& schema = call.request.output_schema;
  if (!schema.is_object() || schema.empty()) {
    return make_error(ErrorCode::unsupported, "sim: skill \"" + call.request.skill +
                                                  "\" has no simulated model and its request names no output schema");
  }
  json body;
  std::string problem;
  if (is_kind_map(schema)) {
    body = json::object();
    for (const auto& [kind, part] : schema.items()) {
      SchemaFiller filler(call);
      body[kind] = filler.fill(part);
      problem = problem.empty() ? filler.problem() : problem;
    }
  } else {
    SchemaFiller filler(call);
    body = filler.fill(schema);
    problem = filler.problem();
  }
  if (!problem.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "sim: cannot answer " + call.request.skill + " from its output schema: " + problem +
                          " (give the field an enum, or a pattern an input value matches)");
  }
  return body;
}

}  // namespace avps::backends::sim
