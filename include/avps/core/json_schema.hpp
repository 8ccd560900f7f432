#pragma once
// The one wrapper around the JSON Schema validator (valijson, draft 7).
//
// A schema file may $ref other files in its own folder ("common.schema.json#/definitions/x").
// Validation reports every problem as a JSON pointer into the instance, what the schema
// expected there and what was found.
//
// A key rule (a patternProperties entry "^(?!P)" whose subschema is {"not": {}}: every key must
// match P) is answered valid-or-not through an equivalent propertyNames pattern, which valijson
// compiles once rather than at every object; the issues of an invalid instance always come from
// the schema as written (json_schema.cpp, key_rules_as_property_names).
//
// Threading: a JsonSchema is immutable once made, and several threads may validate with it, or
// with others, at once, provided prepare_concurrent_validation() was called before they started.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "avps/core/result.hpp"

namespace avps::core {

struct SchemaIssue {
  std::string pointer;   ///< JSON pointer into the instance ("" is the root)
  std::string expected;  ///< what the schema wants there
  std::string found;     ///< what the instance has there (shortened), or "nothing"
  std::string to_string() const;
};

class JsonSchema {
 public:
  /// Loads and compiles a schema file. Errors name the file and the problem. `$ref`s to files
  /// resolve in the file's own folder, then in each of `fallback_dirs` in order (a project's
  /// schema referring to the shipped common.schema.json).
  static Result<JsonSchema> load(const std::filesystem::path& path,
                                 const std::vector<std::filesystem::path>& fallback_dirs = {});
  /// Compiles an in-memory schema; `$ref`s to files resolve against `base_dir`.
  static Result<JsonSchema> compile(const nlohmann::json& schema, const std::string& name,
                                    const std::filesystem::path& base_dir);
  /// As above; `$ref`s to files resolve in the first of `base_dirs` that has the file.
  static Result<JsonSchema> compile(const nlohmann::json& schema, const std::string& name,
                                    const std::vector<std::filesystem::path>& base_dirs);

  /// Every violation, deduplicated, in instance order; empty when `instance` is valid.
  std::vector<SchemaIssue> validate(const nlohmann::json& instance) const;

  const std::string& name() const { return m_name; }
  const nlohmann::json& document() const { return *m_document; }

 private:
  struct Compiled;
  std::string m_name;
  std::shared_ptr<const nlohmann::json> m_document;
  std::shared_ptr<const Compiled> m_compiled;
};

/// To be called before threads that validate (or compile a std::regex) start: valijson compiles
/// a std::regex for each pattern it checks, and libstdc++ fills std::ctype<char>::narrow's cache
/// on the first use of each character without a guard (GCC bug 77704), which ThreadSanitizer
/// reports as a race. Filled here once, the threads only read it. Idempotent; thread-safe.
void prepare_concurrent_validation();

/// "a.b: expected X, found Y; ..." — the issues on one line each, for error messages.
std::string format_schema_issues(const std::string& what, const std::vector<SchemaIssue>& issues);

}  // namespace avps::core
