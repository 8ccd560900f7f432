#include "avps/core/json_schema.hpp"

#include <algorithm>
#include <locale>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/text.hpp"

namespace avps::core {
namespace fs = std::filesystem;
using nlohmann::json;

struct JsonSchema::Compiled {
  valijson::Schema schema;
  /// The same schema with each key rule written as a "propertyNames" pattern
  /// (key_rules_as_property_names), when the schema has one: it accepts exactly the same
  /// instances, and answers valid-or-not without compiling a regex at every object it checks.
  /// Issues are always described by `schema`.
  std::optional<valijson::Schema> fast;
  /// The files the schema $refs, by the name used in the reference ("common.schema.json"), kept
  /// so that issue descriptions can look through cross-file references.
  std::map<std::string, std::shared_ptr<const json>> referenced;
};

namespace {

// valijson's context is {"<root>", "[key]", "[0]", ...}.
std::string context_to_pointer(const std::vector<std::string>& context) {
  std::string pointer;
  for (const std::string& part : context) {
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') {
      pointer += "/" + escape_pointer_token(part.substr(1, part.size() - 2));
    }
  }
  return pointer;
}

std::string shorten(std::string s, size_t limit = 60) {
  if (s.size() > limit) {
    s = s.substr(0, limit - 3) + "...";
  }
  return s;
}

// True when every string and object key of `value` is well-formed UTF-8 (nearly always: the
// gate validates every artifact, so this walk builds no pointers).
bool all_utf8(const json& value) {
  if (value.is_string()) {
    return !first_invalid_utf8(value.get_ref<const std::string&>());
  }
  if (value.is_array()) {
    return std::all_of(value.begin(), value.end(), [](const json& item) { return all_utf8(item); });
  }
  if (value.is_object()) {
    for (const auto& [key, member] : value.items()) {
      if (first_invalid_utf8(key) || !all_utf8(member)) {
        return false;
      }
    }
  }
  return true;
}

// An issue for each string (or object key) of `value` that is not well-formed UTF-8.
void find_invalid_utf8(const json& value, const std::string& pointer, std::vector<SchemaIssue>& out) {
  auto check = [&](const std::string& text, const std::string& where) {
    if (std::optional<size_t> at = first_invalid_utf8(text)) {
      out.push_back({where, "UTF-8 text", "a byte that is not UTF-8 at offset " + std::to_string(*at)});
    }
  };
  if (value.is_string()) {
    check(value.get_ref<const std::string&>(), pointer);
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      find_invalid_utf8(value[i], pointer + "/" + std::to_string(i), out);
    }
  } else if (value.is_object()) {
    for (const auto& [key, member] : value.items()) {
      check(key, pointer);
      find_invalid_utf8(member, pointer + "/" + escape_pointer_token(key), out);
    }
  }
}

using ReferencedFiles = std::map<std::string, std::shared_ptr<const json>>;

// A schema node and the document it lives in: "#/..." inside a referenced file is relative to
// that file, not to the schema being validated.
struct SchemaNode {
  const json* document = nullptr;
  const json* node = nullptr;
};

// Follows "#/definitions/x" and "file.schema.json#/definitions/x" references; nullptr node when a
// reference cannot be followed.
SchemaNode resolve_ref(const ReferencedFiles& files, SchemaNode at) {
  for (int depth = 0; depth < 8 && at.node && at.node->is_object() && at.node->contains("$ref"); ++depth) {
    const json& ref = (*at.node)["$ref"];
    if (!ref.is_string()) {
      return at;
    }
    const std::string& text = ref.get_ref<const std::string&>();
    const size_t hash = text.find('#');
    const std::string file = text.substr(0, hash);
    if (!file.empty()) {
      auto it = files.find(file);
      if (it == files.end()) {
        return {};
      }
      at.document = it->second.get();
    }
    try {
      at.node = &at.document->at(json::json_pointer(hash == std::string::npos ? "" : text.substr(hash + 1)));
    } catch (const json::exception&) {
      return {};
    }
  }
  return at;
}

// The subschema that governs `pointer` in simple schemas (properties / items /
// additionalProperties / $ref); nullptr where combinators make it ambiguous.
const json* subschema_for(const json& root, const ReferencedFiles& files, const std::string& pointer) {
  SchemaNode at = resolve_ref(files, {&root, &root});
  json::json_pointer ptr(pointer);
  std::vector<std::string> tokens;
  for (json::json_pointer p = ptr; !p.empty(); p = p.parent_pointer()) {
    tokens.insert(tokens.begin(), p.back());
  }
  for (const std::string& token : tokens) {
    const json* node = at.node;
    if (!node || !node->is_object()) {
      return nullptr;
    }
    const json* next = nullptr;
    if (node->contains("properties") && (*node)["properties"].contains(token)) {
      next = &(*node)["properties"][token];
    } else if (node->contains("patternProperties") || node->contains("additionalProperties")) {
      // As the validator does: a matching pattern first, additionalProperties for the rest.
      if (node->contains("patternProperties") && (*node)["patternProperties"].is_object()) {
        for (const auto& item : (*node)["patternProperties"].items()) {
          try {
            if (std::regex_search(token, std::regex(item.key()))) {
              next = &item.value();
              break;
            }
          } catch (const std::regex_error&) {
            return nullptr;
          }
        }
      }
      if (!next && node->contains("additionalProperties") && (*node)["additionalProperties"].is_object()) {
        next = &(*node)["additionalProperties"];
      }
    } else if (node->contains("items") && (*node)["items"].is_object()) {
      next = &(*node)["items"];
    }
    at = resolve_ref(files, {at.document, next});
  }
  return at.node;
}

// valijson caches subschemas by their path inside a document without naming the document, so
// "#/definitions/x" defined both in a schema and in a file it references would silently become one
// merged subschema. Such schemas are refused rather than validated against the wrong rules.
Result<void> check_definitions_distinct(const json& root, const ReferencedFiles& files,
                                       const std::string& name) {
  std::map<std::string, std::string> owner;  // definition name -> the document defining it
  auto add = [&](const json& document, const std::string& document_name) -> Result<void> {
    if (!document.is_object() || !document.contains("definitions") || !document["definitions"].is_object()) {
      return ok();
    }
    for (const auto& item : document["definitions"].items()) {
      auto [it, inserted] = owner.emplace(item.key(), document_name);
      if (!inserted) {
        return make_error(ErrorCode::schema_violation,
                          "invalid JSON Schema " + name + ": definition \"" + item.key() +
                              "\" exists in both " + it->second + " and " + document_name +
                              "; the validator cannot tell them apart, rename one");
      }
    }
    return ok();
  };
  AVPS_TRY(add(root, name));
  for (const auto& [file, document] : files) {
    AVPS_TRY(add(*document, file));
  }
  return ok();
}

std::string describe_constraints(const json& schema) {
  std::vector<std::string> parts;
  if (schema.contains("const")) {
    parts.push_back("exactly " + schema["const"].dump());
  }
  if (schema.contains("enum")) {
    parts.push_back("one of " + shorten(schema["enum"].dump(), 120));
  }
  if (schema.contains("type")) {
    const json& t = schema["type"];
    parts.push_back(t.is_string() ? t.get<std::string>() : t.dump());
  }
  if (schema.contains("pattern")) {
    parts.push_back("matching " + schema["pattern"].get<std::string>());
  }
  if (schema.contains("minimum") || schema.contains("maximum")) {
    std::string range = "in [";
    range += schema.contains("minimum") ? schema["minimum"].dump() : "-inf";
    range += ", ";
    range += schema.contains("maximum") ? schema["maximum"].dump() : "inf";
    parts.push_back(range + "]");
  }
  if (schema.contains("exclusiveMinimum")) {
    parts.push_back("> " + schema["exclusiveMinimum"].dump());
  }
  if (schema.contains("minLength")) {
    parts.push_back("at least " + schema["minLength"].dump() + " characters");
  }
  if (schema.contains("maxLength")) {
    parts.push_back("at most " + schema["maxLength"].dump() + " characters");
  }
  if (schema.contains("minItems")) {
    parts.push_back("at least " + schema["minItems"].dump() + " items");
  }
  if (schema.contains("maxItems")) {
    parts.push_back("at most " + schema["maxItems"].dump() + " items");
  }
  std::string out;
  for (const std::string& p : parts) {
    out += (out.empty() ? "" : ", ") + p;
  }
  if (out.empty() && schema.contains("description") && schema["description"].is_string()) {
    out = schema["description"].get<std::string>();  // e.g. a schema that only says "not"
  }
  return out;
}

// The schemas refuse a key that is not an entity id as a patternProperties entry whose pattern
// is a negative look-ahead and whose subschema is {"not": {}}: "^(?!P)" matches every key that
// does not match "^(?:P)" from its start, and "not": {} refuses its value, so a key is refused
// exactly when it fails that pattern, and described by the entry's "description" when it is
// ("a key that is an entity id"). valijson compiles a patternProperties pattern into a std::regex
// at every object it validates against it (its "pattern" keyword keeps its compiled regexes): in
// a WORLD_STATE that is every character, prop and location map of every version. Here such an
// entry, when it is the node's only one and the node has no propertyNames of its own, becomes a
// "propertyNames" rule {"pattern": "^(?:P)"}, which refuses the same keys and nothing else: the
// keys it refuses were refused whatever their values, and every other key went to the node's
// other keywords, as it still does. Both use valijson's one regex engine (std::regex, ECMAScript,
// regex_search). The rule is a definition of the document, named by its pattern's hash, that
// propertyNames $refs: valijson 1.0 caches an inline propertyNames subschema under its parent's
// own path, which a $ref to the parent has cached already. Only the keywords whose values are
// schemas are walked (a "const" or "enum" value, or a property named "patternProperties", is
// data). `rules` gets each rule by its name; returns whether anything changed.
bool rewrite_key_rules(json& node, json& rules) {
  if (!node.is_object()) {
    return false;
  }
  bool changed = false;
  for (const char* keyword : {"items", "additionalItems", "additionalProperties", "contains", "propertyNames", "not",
                              "if", "then", "else", "allOf", "anyOf", "oneOf"}) {
    if (auto found = node.find(keyword); found != node.end()) {
      if (found->is_array()) {
        for (json& item : *found) {
          changed = rewrite_key_rules(item, rules) || changed;
        }
      } else {
        changed = rewrite_key_rules(*found, rules) || changed;
      }
    }
  }
  for (const char* keyword : {"properties", "patternProperties", "definitions", "dependencies"}) {
    if (auto found = node.find(keyword); found != node.end() && found->is_object()) {
      for (auto& [name, subschema] : found->items()) {
        changed = rewrite_key_rules(subschema, rules) || changed;
      }
    }
  }
  auto patterns = node.find("patternProperties");
  if (patterns == node.end() || !patterns->is_object() || patterns->size() != 1 || node.contains("propertyNames")) {
    return changed;
  }
  const std::string& pattern = patterns->begin().key();
  const json& refusal = patterns->begin().value();
  const std::string_view lead = "^(?!";
  const bool negative =
      pattern.size() > lead.size() + 1 && pattern.compare(0, lead.size(), lead) == 0 && pattern.back() == ')';
  const bool refuses_all = refusal.is_object() && refusal.contains("not") && refusal["not"] == json::object() &&
                           std::all_of(refusal.items().begin(), refusal.items().end(), [](const auto& item) {
                             return item.key() == "not" || item.key() == "description" || item.key() == "title" ||
                                    item.key() == "$comment";
                           });
  if (!negative || !refuses_all) {
    return changed;
  }
  const std::string inner = pattern.substr(lead.size(), pattern.size() - lead.size() - 1);
  // The look-ahead must close at the last ")" ("^(?!A)|(B)" is not one look-ahead): then, and only
  // then, its inner text compiles alone (an early close leaves a ")" it cannot match).
  try {
    std::regex compiles(inner);
  } catch (const std::regex_error&) {
    return changed;
  }
  const std::string rule = "^(?:" + inner + ")";
  const std::string name = "avps-key-rule-" + sha256_hex(rule).substr(0, 16);
  rules[name] = json{{"pattern", rule}};
  node["propertyNames"] = json{{"$ref", "#/definitions/" + name}};
  node.erase("patternProperties");
  return true;
}

// `document` with its key rules rewritten (rewrite_key_rules) and their definitions added, or
// false when it has none (or its definitions are not an object: left as they are).
bool key_rules_as_property_names(json& document) {
  if (!document.is_object() || (document.contains("definitions") && !document["definitions"].is_object())) {
    return false;
  }
  json rules = json::object();
  if (!rewrite_key_rules(document, rules)) {
    return false;
  }
  for (auto& [name, rule] : rules.items()) {
    document["definitions"][name] = rule;
  }
  return true;
}

bool is_wrapper_error(const std::string& description) {
  // valijson reports each failing parent ("Failed to validate against schema associated with
  // property name 'x'") as well as the leaf; only the leaf says something useful.
  // ("Failed to match ..." is not one of them: it is the enum / const / pattern leaf.)
  return description.rfind("Failed to validate", 0) == 0 ||
         description.find("at least one") != std::string::npos;
}

}  // namespace

std::string SchemaIssue::to_string() const {
  return (pointer.empty() ? std::string("(root)") : pointer) + ": expected " + expected + ", found " + found;
}

Result<JsonSchema> JsonSchema::load(const fs::path& path, const std::vector<fs::path>& fallback_dirs) {
  AVPS_TRY_ASSIGN(std::string text, read_file(path));
  AVPS_TRY_ASSIGN(json document, parse_json(text, path.string()));
  std::vector<fs::path> dirs = {path.parent_path()};
  dirs.insert(dirs.end(), fallback_dirs.begin(), fallback_dirs.end());
  return compile(document, path.string(), dirs);
}

Result<JsonSchema> JsonSchema::compile(const json& schema, const std::string& name, const fs::path& base_dir) {
  return compile(schema, name, std::vector<fs::path>{base_dir});
}

Result<JsonSchema> JsonSchema::compile(const json& schema, const std::string& name,
                                       const std::vector<fs::path>& base_dirs) {
  auto compiled = std::make_shared<Compiled>();
  auto document = std::make_shared<const json>(schema);
  // Referenced files are read on demand and kept with the compiled schema (see Compiled).
  std::string fetch_error;
  auto fetch = [&](const std::string& uri) -> const json* {
    if (uri.find("..") != std::string::npos || uri.find('/') != std::string::npos) {
      fetch_error = "reference to " + uri + " leaves the schema folder";
      return nullptr;
    }
    fs::path file = base_dirs.empty() ? fs::path(uri) : base_dirs.front() / uri;
    for (const fs::path& dir : base_dirs) {
      std::error_code ec;
      if (fs::is_regular_file(dir / uri, ec)) {
        file = dir / uri;
        break;
      }
    }
    Result<std::string> text = read_file(file);
    if (!text) {
      fetch_error = text.error().message;
      return nullptr;
    }
    Result<json> parsed = parse_json(*text, file.string());
    if (!parsed) {
      fetch_error = parsed.error().message;
      return nullptr;
    }
    auto owned = std::make_shared<const json>(std::move(parsed).value());
    compiled->referenced[uri] = owned;
    return owned.get();
  };
  auto release = [](const json*) {};
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(*document);
    parser.populateSchema(adapter, compiled->schema, fetch, release);
  } catch (const std::exception& e) {
    std::string detail = fetch_error.empty() ? e.what() : fetch_error;
    return make_error(ErrorCode::schema_violation, "invalid JSON Schema " + name + ": " + detail);
  }
  AVPS_TRY(check_definitions_distinct(*document, compiled->referenced, name));
  // The fast form, for a schema that has a key rule of its own (key_rules_as_property_names): its
  // referenced files rewritten too, from the copies the compilation above read. Compiled only
  // then: compiling costs more than validating many instances.
  json fast_document = *document;
  if (key_rules_as_property_names(fast_document)) {
    std::vector<std::shared_ptr<const json>> fast_referenced;
    auto fetch_fast = [&](const std::string& uri) -> const json* {
      auto it = compiled->referenced.find(uri);
      if (it == compiled->referenced.end()) {
        return nullptr;
      }
      json rewritten = *it->second;
      key_rules_as_property_names(rewritten);
      fast_referenced.push_back(std::make_shared<const json>(std::move(rewritten)));
      return fast_referenced.back().get();
    };
    try {
      valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
      valijson::adapters::NlohmannJsonAdapter adapter(fast_document);
      compiled->fast.emplace();
      parser.populateSchema(adapter, *compiled->fast, fetch_fast, release);
    } catch (const std::exception&) {
      compiled->fast.reset();  // validated by the schema as written, as without
    }
  }
  JsonSchema out;
  out.m_name = name;
  out.m_document = std::move(document);
  out.m_compiled = std::move(compiled);
  return out;
}

std::vector<SchemaIssue> JsonSchema::validate(const json& instance) const {
  // valijson counts a string's characters for minLength/maxLength by reading it as UTF-8 and
  // reads past its own table on a run of more than five continuation bytes (undefined
  // behaviour, found by fuzzing a face). Text that is not UTF-8 is an issue of its own, and
  // valijson never sees it.
  if (!all_utf8(instance)) {
    std::vector<SchemaIssue> not_utf8;
    find_invalid_utf8(instance, "", not_utf8);
    return not_utf8;
  }
  // A validator compiles each "pattern" into a std::regex and keeps it by pattern text: one per
  // thread keeps them across validations (compiling them again was most of the gate's time).
  thread_local valijson::Validator validator;
  valijson::adapters::NlohmannJsonAdapter adapter(instance);
  // Without a results sink valijson stops at the first failure; collecting every issue walks
  // every branch, which is only worth it for an instance that fails (the gate checks every
  // artifact of a project, nearly all of them valid).
  // Valid or not by the fast form when there is one (the same instances valid); an invalid
  // instance's issues by the schema as written, so that they read as they always have.
  if (validator.validate(m_compiled->fast ? *m_compiled->fast : m_compiled->schema, adapter, nullptr)) {
    return {};
  }
  valijson::ValidationResults results;
  validator.validate(m_compiled->schema, adapter, &results);

  std::vector<SchemaIssue> issues;
  std::set<std::string> seen;
  valijson::ValidationResults::Error error;
  std::vector<valijson::ValidationResults::Error> all;
  while (results.popError(error)) {
    all.push_back(error);
  }
  bool has_leaf = false;
  for (const auto& e : all) {
    has_leaf = has_leaf || !is_wrapper_error(e.description);
  }
  for (const auto& e : all) {
    if (has_leaf && is_wrapper_error(e.description)) {
      continue;
    }
    SchemaIssue issue;
    issue.pointer = context_to_pointer(e.context);
    const std::string missing_prefix = "Missing required property '";
    const std::string dependency_prefix = "Missing dependency '";  // "dependencies": {"a": ["b"]}
    const std::string unknown_prefix =
        "Object contains a property that could not be validated using 'properties' or "
        "'additionalProperties' constraints: '";
    const bool missing_required = e.description.rfind(missing_prefix, 0) == 0;
    if (missing_required || e.description.rfind(dependency_prefix, 0) == 0) {
      std::string property =
          e.description.substr(missing_required ? missing_prefix.size() : dependency_prefix.size());
      property = property.substr(0, property.find('\''));
      issue.pointer += "/" + escape_pointer_token(property);
      issue.expected = "a value (required)";
      issue.found = "nothing";
    } else if (e.description.rfind(unknown_prefix, 0) == 0 &&
               e.description.size() >= unknown_prefix.size() + 2) {
      // valijson reports an unknown property at its parent object; point at the property itself.
      const std::string property =
          e.description.substr(unknown_prefix.size(), e.description.size() - unknown_prefix.size() - 2);
      issue.pointer += "/" + escape_pointer_token(property);
      issue.expected = "no such property (not allowed here)";
      try {
        issue.found = shorten(instance.at(json::json_pointer(issue.pointer)).dump());
      } catch (const json::exception&) {
        issue.found = "nothing";
      }
    } else {
      const json* sub = subschema_for(*m_document, m_compiled->referenced, issue.pointer);
      std::string constraints = sub ? describe_constraints(*sub) : "";
      issue.expected = constraints.empty() ? e.description : constraints + " (" + e.description + ")";
      try {
        issue.found = shorten(instance.at(json::json_pointer(issue.pointer)).dump());
      } catch (const json::exception&) {
        issue.found = "nothing";
      }
    }
    std::string key = issue.pointer + "\n" + issue.expected;
    if (seen.insert(key).second) {
      issues.push_back(std::move(issue));
    }
  }
  return issues;
}

void prepare_concurrent_validation() {
  static std::once_flag once;
  std::call_once(once, [] {
    // std::regex takes a copy of the global locale, which shares this facet; the scanner narrows
    // with '\0' as the default, as here, so every entry it would write is written now.
    const auto& ctype = std::use_facet<std::ctype<char>>(std::locale());
    for (int c = 0; c < 256; ++c) {
      (void)ctype.narrow(static_cast<char>(c), '\0');
    }
  });
}

std::string format_schema_issues(const std::string& what, const std::vector<SchemaIssue>& issues) {
  std::string out = what + " does not match its schema:";
  for (const SchemaIssue& issue : issues) {
    out += "\n  " + issue.to_string();
  }
  return out;
}

}  // namespace avps::core
