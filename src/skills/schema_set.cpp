#include "avps/skills/schema_set.hpp"

#include <functional>
#include <system_error>
#include <vector>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"

namespace avps::skills {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// `fallback` is where references to files the folder does not have resolve (the shipped folder,
// for a project's schemas).
void load_folder(const fs::path& dir, Origin origin, const std::string& subject_prefix,
                 const std::vector<fs::path>& fallback, std::map<std::string, SchemaSet::Entry>& into) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return;
  }
  for (const auto& item : fs::directory_iterator(dir, ec)) {
    const std::string file = item.path().filename().string();
    if (!ends_with(file, ".schema.json") || !item.is_regular_file(ec)) {
      continue;
    }
    SchemaSet::Entry entry;
    entry.source = {item.path(), origin, subject_prefix + file};
    Result<std::string> text = core::read_file(item.path());
    Result<json> parsed = text ? core::parse_json(*text, entry.source.subject) : Result<json>(text.error());
    if (!parsed) {
      entry.error = parsed.error().message;
    } else {
      entry.document = std::move(parsed).value();
      Result<core::JsonSchema> compiled = core::JsonSchema::load(item.path(), fallback);
      if (compiled) {
        entry.compiled = std::move(compiled).value();
      } else {
        entry.error = compiled.error().message;
      }
    }
    into.emplace(file, std::move(entry));
  }
}

// A node and the file it lives in ("#/..." references are relative to that file).
struct Located {
  std::string file;
  const json* node = nullptr;
};

}  // namespace

SchemaSet SchemaSet::load(const fs::path& shipped_dir, const fs::path* project_dir,
                          const std::string& project_label) {
  SchemaSet set;
  load_folder(shipped_dir, Origin::shipped, "schemas/", {}, set.m_shipped);
  if (project_dir != nullptr) {
    load_folder(*project_dir, Origin::project, project_label + "/schemas/", {shipped_dir}, set.m_project);
  }
  return set;
}

const SchemaSet::Entry* SchemaSet::find_in(const std::string& file, Origin origin) const {
  const auto& map = origin == Origin::project ? m_project : m_shipped;
  auto found = map.find(file);
  return found == map.end() ? nullptr : &found->second;
}

const SchemaSet::Entry* SchemaSet::find(const std::string& file) const {
  const Entry* entry = find_in(file, Origin::project);
  return entry != nullptr ? entry : find_in(file, Origin::shipped);
}

const json* SchemaSet::field(const std::string& file, const std::string& pointer) const {
  const Entry* root = find(file);
  if (root == nullptr || !root->document.is_object()) {
    return nullptr;
  }
  // References resolve among the files of the root's own folder, then (for a project's) the
  // shipped folder, as the validator resolves them.
  const Origin origin = root->source.origin;
  auto resolve = [&](Located at) -> Located {
    for (int depth = 0; depth < 16 && at.node != nullptr && at.node->is_object() && at.node->contains("$ref");
         ++depth) {
      const json& ref = (*at.node)["$ref"];
      if (!ref.is_string()) {
        return {};
      }
      const std::string text = ref.get<std::string>();
      const size_t hash = text.find('#');
      if (hash != 0) {
        at.file = text.substr(0, hash);
      }
      const Entry* entry = find_in(at.file, origin);
      if (entry == nullptr && origin == Origin::project) {
        entry = find_in(at.file, Origin::shipped);
      }
      if (entry == nullptr || entry->document.is_null()) {
        return {};
      }
      try {
        at.node =
            &entry->document.at(json::json_pointer(hash == std::string::npos ? "" : text.substr(hash + 1)));
      } catch (const json::exception&) {
        return {};
      }
    }
    return at;
  };

  std::vector<std::string> tokens;
  try {
    for (json::json_pointer p(pointer); !p.empty(); p = p.parent_pointer()) {
      tokens.insert(tokens.begin(), p.back());
    }
  } catch (const json::exception&) {
    return nullptr;
  }
  Located at = resolve({file, &root->document});
  for (const std::string& token : tokens) {
    if (at.node == nullptr || !at.node->is_object()) {
      return nullptr;
    }
    const json& node = *at.node;
    Located next{at.file, nullptr};
    if (token == "*") {
      if (node.contains("items") && node["items"].is_object()) {
        next.node = &node["items"];
      } else if (node.contains("additionalProperties") && node["additionalProperties"].is_object()) {
        next.node = &node["additionalProperties"];
      } else if (node.contains("patternProperties") && node["patternProperties"].is_object() &&
                 node["patternProperties"].size() == 1) {
        next.node = &node["patternProperties"].begin().value();
      }
    } else if (node.contains("properties") && node["properties"].is_object() &&
               node["properties"].contains(token)) {
      next.node = &node["properties"][token];
    } else {
      for (const char* combinator : {"allOf", "anyOf", "oneOf"}) {
        if (!node.contains(combinator) || !node[combinator].is_array() || next.node != nullptr) {
          continue;
        }
        for (const json& branch : node[combinator]) {
          Located b = resolve({at.file, &branch});
          if (b.node != nullptr && b.node->is_object() && b.node->contains("properties") &&
              (*b.node)["properties"].is_object() && (*b.node)["properties"].contains(token)) {
            next = {b.file, &(*b.node)["properties"][token]};
            break;
          }
        }
      }
    }
    at = resolve(next);
  }
  return at.node;
}

Result<json> SchemaSet::request_schema(const std::string& file) const {
  const Entry* root = find(file);
  if (root == nullptr || root->document.is_null()) {
    return make_error(ErrorCode::not_found,
                      "schema " + file + " is not known" + (root != nullptr ? ": " + root->error : std::string()));
  }
  if (root->source.origin == Origin::shipped) {
    return root->document;
  }
  // Inlines references to other files; inside what was copied from another file, its "#/..."
  // references are that file's, so they are inlined too. The root's own "#/..." stay.
  std::string problem;
  std::function<json(const json&, const std::string&, int)> inline_refs =
      [&](const json& node, const std::string& in_file, int depth) -> json {
    if (depth > 32) {
      problem = "references nest deeper than 32 (a cycle?) in " + in_file;
      return node;
    }
    if (node.is_array()) {
      json out = json::array();
      for (const json& item : node) {
        out.push_back(inline_refs(item, in_file, depth));
      }
      return out;
    }
    if (!node.is_object()) {
      return node;
    }
    if (node.contains("$ref") && node["$ref"].is_string()) {
      const std::string ref = node["$ref"].get<std::string>();
      const size_t hash = ref.find('#');
      const std::string target_file = hash == 0 ? in_file : ref.substr(0, hash);
      if (target_file != file || in_file != file) {
        const Entry* entry = root->source.origin == Origin::project ? find(target_file) : nullptr;
        if (entry == nullptr || entry->document.is_null()) {
          problem = "reference " + ref + " in " + in_file + " names no schema file";
          return node;
        }
        try {
          const json& target =
              entry->document.at(json::json_pointer(hash == std::string::npos ? "" : ref.substr(hash + 1)));
          return inline_refs(target, target_file, depth + 1);
        } catch (const json::exception&) {
          problem = "reference " + ref + " in " + in_file + " points at nothing";
          return node;
        }
      }
    }
    json out = json::object();
    for (const auto& [key, value] : node.items()) {
      out[key] = inline_refs(value, in_file, depth);
    }
    return out;
  };
  json bundled = inline_refs(root->document, file, 0);
  if (!problem.empty()) {
    return make_error(ErrorCode::invalid_argument, root->source.subject + ": " + problem);
  }
  return bundled;
}

Result<json> output_schema(const SkillDef& skill, const SchemaSet& schemas) {
  json out = json::object();
  const std::vector<const SkillOutput*> outputs = skill.model_outputs();
  for (const SkillOutput* output : outputs) {
    AVPS_TRY_ASSIGN(out[output->kind], schemas.request_schema(output->schema));
  }
  if (outputs.size() == 1) {
    return json(out.begin().value());
  }
  return out;
}

}  // namespace avps::skills
