#include "avps/backends/http_model.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "avps/artifacts/names.hpp"
#include "avps/backends/http_images.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/project/project.hpp"
#include "shipped_schemas.hpp"

namespace avps::backends {

using nlohmann::json;

namespace {

// ---- small JSON readers that never throw ------------------------------------------------------
// A provider's reply is untrusted: every access checks the type first (nlohmann throws on a
// type mismatch, and exceptions must not cross the module line).

const json* member(const json& object, std::string_view key) {
  if (!object.is_object()) {
    return nullptr;
  }
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string string_member(const json& object, std::string_view key) {
  const json* value = member(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

int64_t int_member(const json& object, std::string_view key) {
  const json* value = member(object, key);
  if (value == nullptr || !value->is_number()) {
    return 0;
  }
  if (value->is_number_float()) {
    const double number = value->get<double>();
    if (!std::isfinite(number)) {
      return 0;
    }
    // Out of range, the cast is undefined behaviour (a reply saying 1e300 tokens): saturate.
    if (number >= 0x1p63) {
      return INT64_MAX;
    }
    return number < -0x1p63 ? INT64_MIN : static_cast<int64_t>(number);
  }
  if (value->is_number_unsigned()) {
    return static_cast<int64_t>(std::min<uint64_t>(value->get<uint64_t>(), INT64_MAX));
  }
  return value->get<int64_t>();
}

// a + b + ..., saturating instead of overflowing: token counts come from the reply.
int64_t saturated_sum(std::initializer_list<int64_t> values) {
  int64_t total = 0;
  for (const int64_t value : values) {
    if (__builtin_add_overflow(total, value, &total)) {
      total = value > 0 ? INT64_MAX : INT64_MIN;
    }
  }
  return total;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); });
  return out;
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

// At most `limit` bytes of `text`, not cutting a UTF-8 sequence, control characters as spaces:
// a provider message or an error page goes into one line of an error.
std::string capped(std::string_view text, size_t limit) {
  std::string out;
  for (unsigned char c : text) {
    out.push_back(c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c));
  }
  if (out.size() > limit) {
    size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    out.resize(cut);
    out += "...";
  }
  return out;
}

// Providers sometimes echo what they were sent; a key must not reach an error or a trace.
std::string scrub(std::string text, const std::string& key) {
  if (key.size() < 4) {
    return text;  // too short to tell from ordinary text; such a key is no secret anyway
  }
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at)) {
    text.replace(at, key.size(), "***");
  }
  return text;
}

// ---- options ----------------------------------------------------------------------------------

std::string joined(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& value : values) {
    out += (out.empty() ? "" : ", ") + value;
  }
  return out;
}

// Checks one entry's options field by field, copying each into the result with its default.
class OptionChecker {
 public:
  OptionChecker(const json& options, const std::string& where) : m_in(options), m_where(where) {}

  Result<void> integer(const char* name, int64_t low, int64_t high, int64_t fallback) {
    const json* value = member(m_in, name);
    if (value == nullptr) {
      m_out[name] = fallback;
      return ok();
    }
    if (!value->is_number_integer() || (value->is_number_unsigned() && value->get<uint64_t>() > uint64_t(high)) ||
        value->get<int64_t>() < low || value->get<int64_t>() > high) {
      return fail(name, "must be an integer from " + std::to_string(low) + " to " + std::to_string(high), *value);
    }
    m_out[name] = *value;
    return ok();
  }

  Result<void> number(const char* name, double low, double high) {
    const json* value = member(m_in, name);
    if (value == nullptr) {
      return ok();  // optional, no default: sent only when set
    }
    if (!value->is_number() || value->get<double>() < low || value->get<double>() > high) {
      return fail(name, "must be a number from " + json(low).dump() + " to " + json(high).dump(), *value);
    }
    m_out[name] = *value;
    return ok();
  }

  Result<void> boolean(const char* name, bool fallback) {
    const json* value = member(m_in, name);
    if (value == nullptr) {
      m_out[name] = fallback;
      return ok();
    }
    if (!value->is_boolean()) {
      return fail(name, "must be true or false", *value);
    }
    m_out[name] = *value;
    return ok();
  }

  /// `fallback` empty = optional without a default.
  Result<void> choice(const char* name, const std::vector<std::string>& values, const std::string& fallback) {
    const json* value = member(m_in, name);
    if (value == nullptr) {
      if (!fallback.empty()) {
        m_out[name] = fallback;
      }
      return ok();
    }
    if (!value->is_string() || std::find(values.begin(), values.end(), value->get<std::string>()) == values.end()) {
      return fail(name, "must be one of " + joined(values), *value);
    }
    m_out[name] = *value;
    return ok();
  }

  Result<void> text(const char* name, const std::string& fallback) {
    const json* value = member(m_in, name);
    if (value == nullptr) {
      m_out[name] = fallback;
      return ok();
    }
    if (!value->is_string() || value->get<std::string>().empty() || !header_safe(value->get<std::string>())) {
      return fail(name, "must be a non-empty string without control characters", *value);
    }
    m_out[name] = *value;
    return ok();
  }

  Result<void> pattern_name(const char* name, const std::string& fallback) {
    const json* value = member(m_in, name);
    if (value == nullptr) {
      m_out[name] = fallback;
      return ok();
    }
    bool good = value->is_string() && !value->get<std::string>().empty() && value->get<std::string>().size() <= 64;
    if (good) {
      for (unsigned char c : value->get<std::string>()) {
        good = good && (std::isalnum(c) || c == '_' || c == '-');
      }
    }
    if (!good) {
      return fail(name, "must match ^[a-zA-Z0-9_-]{1,64}$", *value);
    }
    m_out[name] = *value;
    return ok();
  }

  Result<void> string_list(const char* name) {
    const json* value = member(m_in, name);
    if (value == nullptr) {
      m_out[name] = json::array();
      return ok();
    }
    bool good = value->is_array();
    if (good) {
      for (const json& item : *value) {
        good = good && item.is_string() && !item.get<std::string>().empty() && header_safe(item.get<std::string>()) &&
               item.get<std::string>().find(',') == std::string::npos;
      }
    }
    if (!good) {
      return fail(name, "must be an array of non-empty strings without commas", *value);
    }
    m_out[name] = *value;
    return ok();
  }

  Result<void> object(const char* name) {
    const json* value = member(m_in, name);
    if (value == nullptr) {
      m_out[name] = json::object();
      return ok();
    }
    if (!value->is_object()) {
      return fail(name, "must be an object", *value);
    }
    m_out[name] = *value;
    return ok();
  }

  /// Passed on unchecked: its own reader (RetryPolicy::from_json) checks it.
  void pass(const char* name) {
    if (const json* value = member(m_in, name)) {
      m_out[name] = *value;
    }
  }

  Result<void> headers(const char* name) {
    const json* value = member(m_in, name);
    if (value == nullptr) {
      m_out[name] = json::object();
      return ok();
    }
    if (!value->is_object()) {
      return fail(name, "must be an object of header name to string value", *value);
    }
    for (const auto& [header, header_value] : value->items()) {
      const std::string folded = lower(header);
      // A header that carries a secret belongs in the environment, not in a models file that is
      // recorded and shared: refused by name, broadly.
      bool secret = folded == "cookie";
      for (const char* word : {"auth", "key", "token", "secret", "password", "session"}) {
        secret = secret || folded.find(word) != std::string::npos;
      }
      if (secret) {
        return make_error(ErrorCode::configuration,
                          m_where + ": option \"" + name + "\" must not set " + header +
                              ": the key comes from the environment (api_key_env), never from a file");
      }
      bool token = !header.empty();
      for (unsigned char c : header) {
        token = token && (std::isalnum(c) || std::string_view("!#$%&'*+.^_`|~-").find(static_cast<char>(c)) !=
                                                 std::string_view::npos);
      }
      if (!token) {
        return make_error(ErrorCode::configuration,
                          m_where + ": option \"" + name + "\" has an invalid header name \"" + capped(header, 64) + "\"");
      }
      if (!header_value.is_string() || !header_safe(header_value.get<std::string>())) {
        return make_error(ErrorCode::configuration, m_where + ": option \"" + name + "\" header " + header +
                                                        " must be a string without control characters");
      }
    }
    m_out[name] = *value;
    return ok();
  }

  json take() { return std::move(m_out); }

 private:
  static bool header_safe(const std::string& text) {
    return std::none_of(text.begin(), text.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
  }

  Error fail(const char* name, const std::string& rule, const json& value) const {
    return make_error(ErrorCode::configuration, m_where + ": option \"" + name + "\" " + rule + ", not " +
                                                    capped(value.dump(-1, ' ', false, json::error_handler_t::replace), 80));
  }

  const json& m_in;
  std::string m_where;
  json m_out = json::object();
};

const std::vector<std::string>& allowed_options(WireKind kind) {
  static const std::vector<std::string> k_openai = {
      "timeout_s",     "connect_timeout_s",     "retry", "temperature",  "extra_headers", "schema_mode",
      "token_param",   "system_role",           "seed",  "image_detail", "extra_body",    "image_sizes",
      "image_quality", "image_prompt_max_chars"};
  static const std::vector<std::string> k_anthropic = {
      "timeout_s", "connect_timeout_s", "retry", "temperature",   "extra_headers",
      "api_version", "json_mode",       "tool_name", "betas",     "prompt_caching"};
  static const std::vector<std::string> k_gemini = {
      "timeout_s",      "connect_timeout_s",   "retry",      "temperature",      "extra_headers",         "json_mode",
      "thinking_level", "image_aspect_ratios", "image_size", "image_modalities", "image_prompt_max_chars"};
  switch (kind) {
    case WireKind::openai_chat: return k_openai;
    case WireKind::anthropic_messages: return k_anthropic;
    case WireKind::gemini_generate: return k_gemini;
  }
  return k_openai;
}

// The options of `config` with defaults: check_options is idempotent, so options that the
// registry already checked pass through unchanged, and a config built by hand still works.
Result<json> effective_options(const HttpModelConfig& config) {
  return check_options(config.kind, config.options, "model \"" + config.model_id + "\"");
}

// ---- schemas ----------------------------------------------------------------------------------

// RFC 6901 pointer ("/definitions/text") into `document`, or nullptr.
const json* resolve_pointer(const json& document, std::string_view pointer) {
  const json* at = &document;
  if (pointer.empty()) {
    return at;
  }
  if (pointer.front() != '/') {
    return nullptr;
  }
  pointer.remove_prefix(1);
  while (true) {
    const size_t slash = pointer.find('/');
    std::string token;
    const std::string_view raw = pointer.substr(0, slash);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token.push_back(raw[i + 1] == '0' ? '~' : '/');
        ++i;
      } else {
        token.push_back(raw[i]);
      }
    }
    if (at->is_object()) {
      at = member(*at, token);
    } else if (at->is_array() && !token.empty() &&
               std::all_of(token.begin(), token.end(), [](unsigned char c) { return std::isdigit(c); }) &&
               token.size() < 9 && std::stoul(token) < at->size()) {
      at = &(*at)[std::stoul(token)];
    } else {
      return nullptr;
    }
    if (at == nullptr || slash == std::string_view::npos) {
      return at;
    }
    pointer.remove_prefix(slash + 1);
  }
}

bool is_map_keyword(std::string_view key) {
  return key == "properties" || key == "patternProperties" || key == "definitions" || key == "$defs" ||
         key == "dependencies";
}
bool is_schema_keyword(std::string_view key) {
  return key == "items" || key == "additionalItems" || key == "additionalProperties" || key == "contains" ||
         key == "propertyNames" || key == "not" || key == "if" || key == "then" || key == "else";
}
bool is_list_keyword(std::string_view key) { return key == "allOf" || key == "anyOf" || key == "oneOf"; }

// Applies `fn` to each direct sub-schema of `schema` in place (`schema` must be an object).
template <class Fn>
void for_each_subschema(json& schema, Fn&& fn) {
  for (auto& [key, value] : schema.items()) {
    if (is_map_keyword(key) && value.is_object()) {
      for (auto& [name, sub] : value.items()) {
        if (sub.is_object() || sub.is_boolean()) {  // dependencies may hold arrays of names
          fn(sub);
        }
      }
    } else if (is_schema_keyword(key) && value.is_object()) {
      fn(value);
    } else if ((is_list_keyword(key) || key == "items") && value.is_array()) {
      for (json& sub : value) {
        fn(sub);
      }
    }
  }
}

// Inlines every "$ref" of `schema` (which lives in `document`, the file `file`), drops what only
// the local validator needs ($schema, $id, definitions, avps's own x- annotations).
struct RefInliner {
  std::vector<std::string> stack;  // refs being expanded, for cycles

  json inline_refs(const json& schema, const json& document, const std::string& file) {
    if (!schema.is_object()) {
      return schema;
    }
    if (const json* ref = member(schema, "$ref"); ref != nullptr && ref->is_string()) {
      const std::string text = ref->get<std::string>();
      const size_t hash = text.find('#');
      const std::string target_file = hash == 0 ? file : text.substr(0, hash);
      const std::string fragment = hash == std::string::npos ? "" : text.substr(hash + 1);
      const json* target_document = target_file == file ? &document : shipped_schema(target_file);
      const json* target = target_document ? resolve_pointer(*target_document, fragment) : nullptr;
      const std::string key = target_file + "#" + fragment;
      if (target == nullptr || stack.size() > 64 || std::find(stack.begin(), stack.end(), key) != stack.end()) {
        return schema;  // unresolvable or recursive: left for the provider to name
      }
      stack.push_back(key);
      json inlined = inline_refs(*target, *target_document, target_file);
      stack.pop_back();
      // Draft-07 ignores a $ref's siblings; a description next to it is still worth keeping.
      if (const json* description = member(schema, "description"); description && inlined.is_object()) {
        inlined["description"] = *description;
      }
      return inlined;
    }
    json out = json::object();
    for (const auto& [key, value] : schema.items()) {
      if (key == "$schema" || key == "$id" || key == "definitions" || key == "$defs" || starts_with(key, "x-")) {
        continue;
      }
      out[key] = value;
    }
    for_each_subschema(out, [&](json& sub) { sub = inline_refs(sub, document, file); });
    return out;
  }
};


bool has_type(const json& schema, std::string_view type) {
  const json* t = member(schema, "type");
  if (t == nullptr) {
    return false;
  }
  if (t->is_string()) {
    return t->get<std::string>() == type;
  }
  if (t->is_array()) {
    return std::any_of(t->begin(), t->end(), [&](const json& item) { return item.is_string() && item == type; });
  }
  return false;
}

bool allows_null(const json& schema) {
  if (!schema.is_object()) {
    return !schema.is_boolean() || schema.get<bool>();
  }
  if (has_type(schema, "null")) {
    return true;
  }
  if (const json* values = member(schema, "enum"); values && values->is_array()) {
    return std::any_of(values->begin(), values->end(), [](const json& v) { return v.is_null(); });
  }
  if (const json* value = member(schema, "const")) {
    return value->is_null();
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (const json* branches = member(schema, key); branches && branches->is_array()) {
      return std::any_of(branches->begin(), branches->end(), [](const json& b) { return allows_null(b); });
    }
  }
  return member(schema, "type") == nullptr;  // no type at all: anything goes, null included
}

// ---- OpenAI strict mode -----------------------------------------------------------------------

const std::set<std::string, std::less<>>& strict_keywords() {
  static const std::set<std::string, std::less<>> k_keywords = {
      "type",    "description", "properties", "required",         "additionalProperties", "items",
      "enum",    "const",       "anyOf",      "pattern",          "format",               "multipleOf",
      "maximum", "minimum",     "exclusiveMaximum", "exclusiveMinimum", "minItems",     "maxItems"};
  return k_keywords;
}

bool strict_format(const std::string& format) {
  static const std::set<std::string, std::less<>> k_formats = {"date-time", "time",  "date", "duration", "email",
                                                               "hostname",  "ipv4",  "ipv6", "uuid"};
  return k_formats.count(format) > 0;
}

std::string json_type_of(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number";
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    case json::value_t::binary:
    case json::value_t::discarded: return "";
  }
  return "";
}

json make_nullable(json schema) {
  if (allows_null(schema) && member(schema, "type") != nullptr) {
    return schema;
  }
  if (member(schema, "const") == nullptr) {
    if (json* type = schema.is_object() && schema.contains("type") ? &schema["type"] : nullptr) {
      if (type->is_string()) {
        *type = json::array({*type, "null"});
      } else if (type->is_array()) {
        type->push_back("null");
      }
      if (schema.contains("enum") && schema["enum"].is_array()) {
        schema["enum"].push_back(nullptr);
      }
      return schema;
    }
    if (schema.contains("anyOf") && schema["anyOf"].is_array()) {
      schema["anyOf"].push_back(json{{"type", "null"}});
      return schema;
    }
  }
  return json{{"anyOf", json::array({std::move(schema), json{{"type", "null"}}})}};
}

// The strict form of one sub-schema, or nullopt when it cannot be strict.
std::optional<json> to_strict(const json& schema) {
  if (!schema.is_object()) {
    return std::nullopt;  // `true` / `false` schemas have no strict form
  }
  json out = json::object();
  for (const auto& [key, value] : schema.items()) {
    if (key == "oneOf") {
      out["anyOf"] = value;  // looser, and the answer is validated locally anyway
    } else if (key == "format") {
      if (value.is_string() && strict_format(value.get<std::string>())) {
        out[key] = value;
      }
    } else if (key == "items" && value.is_array()) {
      return std::nullopt;  // tuples
    } else if (key == "patternProperties") {
      return std::nullopt;
    } else if (strict_keywords().count(key)) {
      out[key] = value;
    }
  }
  // A strict schema names its type; infer it from const / enum when they pin it down.
  if (!out.contains("type") && !out.contains("anyOf")) {
    std::set<std::string> types;
    if (out.contains("const")) {
      types.insert(json_type_of(out["const"]));
    } else if (out.contains("enum") && out["enum"].is_array()) {
      for (const json& value : out["enum"]) {
        types.insert(json_type_of(value));
      }
    } else if (out.contains("properties")) {
      types.insert("object");
    }
    if (types.empty() || types.count("")) {
      return std::nullopt;  // {}: any JSON, which strict mode cannot say
    }
    out["type"] = types.size() == 1 ? json(*types.begin()) : json(std::vector<std::string>(types.begin(), types.end()));
  }
  if (out.contains("anyOf")) {
    if (!out["anyOf"].is_array()) {
      return std::nullopt;
    }
    for (json& branch : out["anyOf"]) {
      std::optional<json> strict = to_strict(branch);
      if (!strict) {
        return std::nullopt;
      }
      branch = std::move(*strict);
    }
  }
  if (has_type(out, "array")) {
    if (!out.contains("items")) {
      return std::nullopt;  // an array of anything
    }
    std::optional<json> items = to_strict(out["items"]);
    if (!items) {
      return std::nullopt;
    }
    out["items"] = std::move(*items);
  }
  if (has_type(out, "object")) {
    const json* properties = member(out, "properties");
    const json* additional = member(out, "additionalProperties");
    if (properties == nullptr || !properties->is_object() || properties->empty() ||
        (additional != nullptr && !(additional->is_boolean() && !additional->get<bool>()))) {
      return std::nullopt;  // a free-form object or a map
    }
    std::set<std::string> required;
    if (const json* listed = member(out, "required"); listed && listed->is_array()) {
      for (const json& name : *listed) {
        if (name.is_string()) {
          required.insert(name.get<std::string>());
        }
      }
    }
    json strict_properties = json::object();
    json all = json::array();
    for (const auto& [name, sub] : properties->items()) {
      std::optional<json> strict = to_strict(sub);
      if (!strict) {
        return std::nullopt;
      }
      strict_properties[name] = required.count(name) ? std::move(*strict) : make_nullable(std::move(*strict));
      all.push_back(name);
    }
    out["properties"] = std::move(strict_properties);
    out["required"] = std::move(all);
    out["additionalProperties"] = false;
  }
  return out;
}

// ---- Anthropic output_config ------------------------------------------------------------------

// What Anthropic's native structured output accepts (backend-apis.md §2): no numeric bounds, no
// string lengths, minItems only 0 or 1, a short list of formats, objects closed.
json anthropic_output_schema(const json& schema) {
  static const std::set<std::string, std::less<>> k_keywords = {
      "type",  "description", "title",    "properties", "required", "additionalProperties", "items",
      "enum",  "const",       "anyOf",    "allOf",      "pattern",  "format",               "minItems",
      "default"};
  static const std::set<std::string, std::less<>> k_formats = {"date-time", "time", "date", "duration", "email",
                                                               "hostname",  "uri",  "ipv4", "ipv6",     "uuid"};
  if (!schema.is_object()) {
    return schema;
  }
  json out = json::object();
  for (const auto& [key, value] : schema.items()) {
    if (key == "oneOf") {
      out["anyOf"] = value;
    } else if (key == "format") {
      if (value.is_string() && k_formats.count(value.get<std::string>())) {
        out[key] = value;
      }
    } else if (key == "minItems") {
      if (value.is_number_integer() && value.get<int64_t>() <= 1) {
        out[key] = value;
      }
    } else if (k_keywords.count(key)) {
      out[key] = value;
    }
  }
  if (has_type(out, "object") && !out.contains("additionalProperties")) {
    out["additionalProperties"] = false;
  }
  for_each_subschema(out, [](json& sub) { sub = anthropic_output_schema(sub); });
  return out;
}

// Whether every object of `schema` can be closed as output_config requires: a map (an
// additionalProperties schema, patternProperties, or an object with no properties at all, such
// as a gate's "scores") cannot, and such a call is sent with the forced tool instead.
bool anthropic_closable(const json& schema) {
  if (!schema.is_object()) {
    return true;
  }
  if (has_type(schema, "object")) {
    const json* extra = member(schema, "additionalProperties");
    const bool map = (extra != nullptr && !(extra->is_boolean() && !extra->get<bool>())) ||
                     member(schema, "patternProperties") != nullptr || member(schema, "properties") == nullptr;
    if (map) {
      return false;
    }
  }
  bool closable = true;
  json copy = schema;
  for_each_subschema(copy, [&](json& sub) { closable = closable && anthropic_closable(sub); });
  return closable;
}

// ---- the request ------------------------------------------------------------------------------

std::string schema_name(const std::string& skill) {
  std::string name;
  for (unsigned char c : skill) {
    name.push_back(std::isalnum(c) || c == '_' || c == '-' ? static_cast<char>(c) : '_');
  }
  if (name.size() > 64) {
    name.resize(64);
  }
  return name.empty() ? "output" : name;
}

std::string trimmed_endpoint(const std::string& endpoint) {
  if (!endpoint.empty() && endpoint.back() == '/') {
    return endpoint.substr(0, endpoint.size() - 1);
  }
  return endpoint;
}

std::string provider_model(const HttpModelConfig& config) {
  return config.provider_model.empty() ? config.model_id : config.provider_model;
}

const char* k_schema_instruction = "Answer with one JSON object that validates against this JSON Schema:\n";
const char* k_length_cut = "length: cut off at the output token limit";

// Whether this request goes out in OpenAI strict mode, and with which schema.
struct OpenAiSchema {
  json schema;
  bool strict = false;
};

OpenAiSchema openai_schema_for(const json& options, const json& wire) {
  const std::string mode = options.value("schema_mode", "json_schema_strict");
  if (mode == "json_schema_strict") {
    if (std::optional<json> strict = openai_strict_schema(wire)) {
      return {std::move(*strict), true};
    }
  }
  return {wire, false};
}

Result<json> user_parts(WireKind kind, const ModelRequest& request, const json& options, bool schema_in_prompt,
                        const json& wire) {
  json parts = json::array();
  auto text_part = [&](const std::string& text) {
    if (kind == WireKind::gemini_generate) {
      parts.push_back(json{{"text", text}});
    } else {
      parts.push_back(json{{"type", "text"}, {"text", text}});
    }
  };
  AVPS_TRY_ASSIGN(std::string document, request_document(request));
  text_part(document);
  if (schema_in_prompt) {
    AVPS_TRY_ASSIGN(std::string schema_text, core::canonical_json(wire));
    text_part(k_schema_instruction + schema_text);
  }
  for (const Image& image : request.images) {
    if (!image.label.empty()) {
      text_part(image.label);  // providers refuse empty text parts
    }
    const std::string data = core::base64(image.bytes);
    switch (kind) {
      case WireKind::openai_chat:
        parts.push_back(json{{"type", "image_url"},
                             {"image_url",
                              {{"url", "data:" + image.media_type + ";base64," + data},
                               {"detail", options.value("image_detail", "auto")}}}});
        break;
      case WireKind::anthropic_messages:
        parts.push_back(json{{"type", "image"},
                             {"source", {{"type", "base64"}, {"media_type", image.media_type}, {"data", data}}}});
        break;
      case WireKind::gemini_generate:
        parts.push_back(json{{"inlineData", {{"mimeType", image.media_type}, {"data", data}}}});
        break;
    }
  }
  return parts;
}

Result<json> openai_body(const HttpModelConfig& config, const ModelRequest& request, const json& options) {
  const json wire = wire_schema(request);
  const std::string mode = options["schema_mode"].get<std::string>();
  const bool schema_in_prompt = mode == "json_object" || mode == "prompt_only";
  json messages = json::array();
  if (!request.prompt.empty()) {
    messages.push_back(json{{"role", options["system_role"]}, {"content", request.prompt}});
  }
  AVPS_TRY_ASSIGN(json parts, user_parts(config.kind, request, options, schema_in_prompt, wire));
  messages.push_back(json{{"role", "user"}, {"content", std::move(parts)}});
  json body = {{"model", provider_model(config)}, {"messages", std::move(messages)}};
  if (mode == "json_schema_strict" || mode == "json_schema") {
    OpenAiSchema chosen = openai_schema_for(options, wire);
    body["response_format"] = {{"type", "json_schema"},
                               {"json_schema",
                                {{"name", schema_name(request.skill)},
                                 {"strict", chosen.strict},
                                 {"schema", std::move(chosen.schema)}}}};
  } else if (mode == "json_object") {
    body["response_format"] = {{"type", "json_object"}};
  }
  if (request.max_output_tokens > 0) {
    body[options["token_param"].get<std::string>()] = request.max_output_tokens;
  }
  if (options.contains("temperature")) {
    body["temperature"] = options["temperature"];
  }
  if (options["seed"].get<bool>()) {
    body["seed"] = request.seed;
  }
  for (const auto& [key, value] : options["extra_body"].items()) {
    body[key] = value;  // verbatim, over ours: the entry's author knows the server
  }
  return body;
}

Result<json> anthropic_body(const HttpModelConfig& config, const ModelRequest& request, const json& options) {
  const json wire = wire_schema(request);
  std::string mode = options["json_mode"].get<std::string>();
  if (mode == "output_config" && !anthropic_closable(wire)) {
    mode = "tool";  // a free-form map: output_config would refuse it (the answer is validated locally)
  }
  AVPS_TRY_ASSIGN(json parts, user_parts(config.kind, request, options, mode == "prompt_only", wire));
  json body = {{"model", provider_model(config)},
               // Required by the API; 4096 when the budget governor set no cap.
               {"max_tokens", request.max_output_tokens > 0 ? request.max_output_tokens : 4096},
               {"messages", json::array({json{{"role", "user"}, {"content", std::move(parts)}}})}};
  if (!request.prompt.empty()) {
    if (options["prompt_caching"].get<bool>()) {
      body["system"] = json::array(
          {json{{"type", "text"}, {"text", request.prompt}, {"cache_control", {{"type", "ephemeral"}}}}});
    } else {
      body["system"] = request.prompt;
    }
  }
  if (mode == "tool") {
    const std::string tool = options["tool_name"].get<std::string>();
    body["tools"] =
        json::array({json{{"name", tool}, {"description", "Return the result"}, {"input_schema", wire}}});
    body["tool_choice"] = {{"type", "tool"}, {"name", tool}, {"disable_parallel_tool_use", true}};
  } else if (mode == "output_config") {
    body["output_config"] = {{"format", {{"type", "json_schema"}, {"schema", anthropic_output_schema(wire)}}}};
  }
  if (options.contains("temperature")) {
    body["temperature"] = options["temperature"];
  }
  return body;
}

// Gemini's responseJsonSchema has no `const` (the keywords it honours are listed in python-genai's
// types.py; an unknown keyword is dropped without a word): a one-value enum says the same.
json gemini_output_schema(json schema) {
  if (!schema.is_object()) {
    return schema;
  }
  if (schema.contains("const")) {
    if (!schema.contains("enum")) {
      schema["enum"] = json::array({schema["const"]});
    }
    schema.erase("const");
  }
  for_each_subschema(schema, [](json& sub) { sub = gemini_output_schema(std::move(sub)); });
  return schema;
}

Result<json> gemini_body(const HttpModelConfig& config, const ModelRequest& request, const json& options) {
  const json wire = wire_schema(request);
  const bool schema_mode = options["json_mode"].get<std::string>() == "schema";
  AVPS_TRY_ASSIGN(json parts, user_parts(config.kind, request, options, !schema_mode, wire));
  json body = {{"contents", json::array({json{{"role", "user"}, {"parts", std::move(parts)}}})}};
  if (!request.prompt.empty()) {
    body["systemInstruction"] = {{"parts", json::array({json{{"text", request.prompt}}})}};
  }
  json generation = json::object();
  if (schema_mode) {
    generation["responseMimeType"] = "application/json";
    generation["responseJsonSchema"] = gemini_output_schema(wire);
  }
  if (request.max_output_tokens > 0) {
    generation["maxOutputTokens"] = request.max_output_tokens;
  }
  if (options.contains("temperature")) {
    generation["temperature"] = options["temperature"];
  }
  if (options.contains("thinking_level")) {
    generation["thinkingConfig"] = {{"thinkingLevel", options["thinking_level"]}};
  }
  if (!generation.empty()) {
    body["generationConfig"] = std::move(generation);
  }
  return body;
}

// ---- errors -----------------------------------------------------------------------------------

// What a provider's error body says, whichever provider (backend-apis.md §1-3, vLLM's flat form).
struct ProviderError {
  std::string type;     ///< "rate_limit_error", "RESOURCE_EXHAUSTED", "insufficient_quota", ...
  std::string code;     ///< OpenAI's error.code, when a string
  std::string message;
  std::string detail_code;  ///< Anthropic's error.details.error_code
  bool quota_failure = false;  ///< Gemini details hold a QuotaFailure
  std::optional<int64_t> retry_delay_ms;  ///< Gemini RetryInfo.retryDelay
};

// "37s", "1.5s" (protobuf Duration in JSON) to milliseconds.
std::optional<int64_t> duration_ms(const std::string& text) {
  if (text.size() < 2 || text.back() != 's') {
    return std::nullopt;
  }
  const std::string number = text.substr(0, text.size() - 1);
  char* end = nullptr;
  const double seconds = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !std::isfinite(seconds) || seconds < 0 || seconds > 1e7) {
    return std::nullopt;
  }
  return static_cast<int64_t>(std::llround(seconds * 1000.0));
}

ProviderError read_provider_error(const json& body) {
  ProviderError out;
  const json* error = member(body, "error");
  if (error != nullptr && error->is_object()) {
    out.type = string_member(*error, "type");
    if (out.type.empty()) {
      out.type = string_member(*error, "status");  // Gemini: RESOURCE_EXHAUSTED
    }
    out.code = string_member(*error, "code");
    out.message = string_member(*error, "message");
    if (const json* details = member(*error, "details")) {
      if (details->is_object()) {
        out.detail_code = string_member(*details, "error_code");
      } else if (details->is_array()) {
        for (const json& detail : *details) {
          const std::string type = string_member(detail, "@type");
          if (type.find("google.rpc.QuotaFailure") != std::string::npos) {
            out.quota_failure = true;
          } else if (type.find("google.rpc.RetryInfo") != std::string::npos) {
            out.retry_delay_ms = duration_ms(string_member(detail, "retryDelay"));
          }
        }
      }
    }
  } else if (error != nullptr && error->is_string()) {
    out.message = error->get<std::string>();
  } else {
    // vLLM's older flat form {"object":"error","message","type","code"}, or {"detail": ...}.
    out.message = string_member(body, "message");
    out.type = string_member(body, "type");
    out.code = string_member(body, "code");
    if (out.message.empty()) {
      out.message = string_member(body, "detail");
    }
  }
  return out;
}

// An HTTP date (RFC 7231 IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT") as Unix seconds.
std::optional<int64_t> http_date_seconds(const std::string& text) {
  static const char* const k_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char weekday[4] = {};
  char month[4] = {};
  char zone[4] = {};
  int day = 0;
  int year = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (std::sscanf(text.c_str(), "%3s, %d %3s %d %d:%d:%d %3s", weekday, &day, month, &year, &hour, &minute, &second,
                  zone) != 8 ||
      std::string_view(zone) != "GMT") {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_mon = -1;
  for (int i = 0; i < 12; ++i) {
    if (std::string_view(month) == k_months[i]) {
      tm.tm_mon = i;
    }
  }
  // Four-digit years only: a larger one overflowed the milliseconds computed from it.
  if (tm.tm_mon < 0 || day < 1 || day > 31 || year < 1970 || year > 9999 || hour < 0 || hour > 23 || minute < 0 ||
      minute > 59 || second < 0 || second > 60) {
    return std::nullopt;
  }
  tm.tm_mday = day;
  tm.tm_year = year - 1900;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

// The provider's word on when to retry (backend-apis.md §0: retry-after-ms, then Retry-After in
// seconds or as an HTTP date, then Gemini's RetryInfo).
std::optional<int64_t> retry_after_ms(const HttpResponse& response, const ProviderError& error) {
  if (const std::string ms = response.header("retry-after-ms"); !ms.empty()) {
    char* end = nullptr;
    const double value = std::strtod(ms.c_str(), &end);
    if (end == ms.c_str() + ms.size() && std::isfinite(value) && value >= 0 && value < 1e10) {
      return static_cast<int64_t>(std::llround(value));
    }
  }
  if (const std::string after = response.header("retry-after"); !after.empty()) {
    char* end = nullptr;
    const double seconds = std::strtod(after.c_str(), &end);
    if (end == after.c_str() + after.size() && std::isfinite(seconds) && seconds >= 0 && seconds < 1e7) {
      return static_cast<int64_t>(std::llround(seconds * 1000.0));
    }
    if (std::optional<int64_t> at = http_date_seconds(after)) {
      const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      return std::max<int64_t>(0, *at * 1000 - now_ms);  // a date in the past: now
    }
  }
  return error.retry_delay_ms;
}

// The Error a non-2xx response means, and the short form the HttpAttempt records.
Error classify_error(const HttpModelConfig& config, const HttpResponse& response, std::string& attempt_error) {
  Result<json> parsed = core::parse_json(response.body, "error body");
  const ProviderError provider = parsed ? read_provider_error(*parsed) : ProviderError{};
  // Scrubbed before capping, so a cut cannot leave part of a key behind.
  const std::string said = capped(scrub(provider.message.empty() && !parsed ? response.body : provider.message,
                                        config.api_key),
                                  300);
  const int status = response.status;

  ErrorCode code = ErrorCode::rejected;
  if (status == 408 || status == 504) {
    code = ErrorCode::timeout;
  } else if (status == 429) {
    code = ErrorCode::rate_limited;
  } else if (status == 409 || status == 500 || status == 502 || status == 503 || status == 529) {
    code = ErrorCode::backend_unavailable;
  }
  // A spent quota or spend limit is a 429 that no wait will fix.
  const bool spent = provider.code == "insufficient_quota" || provider.type == "insufficient_quota" ||
                     provider.detail_code == "enforced_spend_limit_reached" ||
                     (provider.quota_failure && !provider.retry_delay_ms);
  if (status == 429 && spent) {
    code = ErrorCode::rejected;
  }
  // The server's own word overrides the status (the SDKs' rule), except over a spent quota.
  const std::string should_retry = lower(response.header("x-should-retry"));
  if (should_retry == "false") {
    code = ErrorCode::rejected;
  } else if (should_retry == "true" && code == ErrorCode::rejected && !spent) {
    code = ErrorCode::backend_unavailable;
  }

  const std::string type = !provider.type.empty() ? provider.type : provider.code;
  attempt_error = std::to_string(status) + (type.empty() ? "" : " " + type);
  std::string message = config.model_id + " at " + url_host(config.endpoint) + ": HTTP " + attempt_error;
  if (!said.empty()) {
    message += ": " + said;
  }
  if (spent && status == 429) {
    message += " (a spent quota or spend limit: not retried)";
  }
  Error error = make_error(code, scrub(std::move(message), config.api_key));
  if (retryable(error)) {
    error.retry_after_ms = retry_after_ms(response, provider);
  }
  return error;
}

Error malformed(const HttpModelConfig& config, const HttpResponse& response, const std::string& what,
                std::string& attempt_error) {
  attempt_error = std::to_string(response.status) + " malformed reply";
  return make_error(ErrorCode::backend_unavailable,
                    config.model_id + " at " + url_host(config.endpoint) + ": HTTP " + std::to_string(response.status) +
                        " but " + what + " (a proxy's page or a cut-off body?)");
}

// ---- the answer -------------------------------------------------------------------------------

struct Parsed {
  std::optional<ModelResponse> answer;
  std::string malformed;  ///< what is wrong with a 2xx when answer is empty
};

std::string model_of(const json& body, const HttpModelConfig& config, const char* field) {
  const std::string reported = string_member(body, field);
  return reported.empty() ? provider_model(config) : reported;
}

Parsed parse_openai(const HttpModelConfig& config, const ModelRequest& request, const json& options, const json& body) {
  const json* choices = member(body, "choices");
  if (choices == nullptr || !choices->is_array() || choices->empty() || !member((*choices)[0], "message") ||
      !(*choices)[0]["message"].is_object()) {
    return {std::nullopt, "the reply has no choices[0].message"};
  }
  const json& choice = (*choices)[0];
  const json& message = choice["message"];
  ModelResponse answer;
  answer.model = model_of(body, config, "model");
  if (const json* content = member(message, "content"); content && content->is_string()) {
    answer.text = content->get<std::string>();
  } else if (content && content->is_array()) {  // some compatible servers send parts
    for (const json& part : *content) {
      answer.text += string_member(part, "text");
    }
  }
  const std::string finish = string_member(choice, "finish_reason");
  if (const json* refusal = member(message, "refusal"); refusal && refusal->is_string()) {
    answer.stop_reason = "refusal: " + refusal->get<std::string>();
  } else if (finish == "length") {
    answer.stop_reason = k_length_cut;
  } else if (finish == "content_filter") {
    answer.stop_reason = "blocked: content_filter";
  }
  if (const json* usage = member(body, "usage")) {
    answer.usage.input_tokens = int_member(*usage, "prompt_tokens");
    answer.usage.output_tokens = int_member(*usage, "completion_tokens");
    if (const json* details = member(*usage, "prompt_tokens_details")) {
      answer.usage.cached_input_tokens = int_member(*details, "cached_tokens");
    }
    // OpenRouter (and LiteLLM-style gateways) report what the call cost, in USD: charged, with
    // avps's own price recorded beside it and the two flagged when more than 2 % apart.
    if (const json* cost = member(*usage, "cost"); cost && cost->is_number() && std::isfinite(cost->get<double>()) &&
                                                    cost->get<double>() >= 0 && cost->get<double>() < 1e6) {
      answer.usage.provider_cost_micro_usd = std::llround(cost->get<double>() * 1e6);
    }
  }
  // Strict mode made optional members nullable; give back what the real schema describes.
  if (options["schema_mode"] == "json_schema_strict" && answer.stop_reason.empty() && !answer.text.empty()) {
    const json wire = wire_schema(request);
    if (openai_schema_for(options, wire).strict) {
      Result<json> value = core::parse_json(answer.text, "answer");
      if (value) {
        Result<std::string> text = core::canonical_json(strip_strict_nulls(wire, std::move(value).value()));
        if (text) {
          answer.text = std::move(text).value();
        }
      }
    }
  }
  return {std::move(answer), {}};
}

Parsed parse_anthropic(const HttpModelConfig& config, const json& options, const json& body) {
  const json* content = member(body, "content");
  if (content == nullptr || !content->is_array()) {
    return {std::nullopt, "the reply has no content array"};
  }
  ModelResponse answer;
  answer.model = model_of(body, config, "model");
  std::string text;
  std::optional<std::string> tool_input;
  // output_config mode sends the tool too when the schema holds a map (anthropic_body).
  const bool tool_mode = options["json_mode"] != "prompt_only";
  const std::string tool = options["tool_name"].get<std::string>();
  for (const json& block : *content) {
    const std::string type = string_member(block, "type");
    if (type == "text") {
      text += string_member(block, "text");
    } else if (type == "tool_use" && tool_mode && !tool_input && string_member(block, "name") == tool) {
      const json* input = member(block, "input");
      Result<std::string> serialised = core::canonical_json(input ? *input : json::object());
      if (!serialised) {
        return {std::nullopt, "the tool input is not valid UTF-8"};
      }
      tool_input = std::move(serialised).value();
    }
    // thinking / redacted_thinking and anything newer: not part of the answer
  }
  answer.text = tool_input ? *tool_input : text;
  const std::string stop = string_member(body, "stop_reason");
  if (stop == "refusal") {
    answer.stop_reason = "refusal: " + (text.empty() ? std::string("the model declined") : text);
  } else if (stop == "max_tokens") {
    answer.stop_reason = k_length_cut;
  } else if (stop == "model_context_window_exceeded") {
    answer.stop_reason = "length: the model's context window is full";
  }
  if (const json* usage = member(body, "usage")) {
    const int64_t cache_read = int_member(*usage, "cache_read_input_tokens");
    answer.usage.input_tokens = saturated_sum(
        {int_member(*usage, "input_tokens"), int_member(*usage, "cache_creation_input_tokens"), cache_read});
    answer.usage.output_tokens = int_member(*usage, "output_tokens");
    answer.usage.cached_input_tokens = cache_read;
  }
  return {std::move(answer), {}};
}

Parsed parse_gemini(const HttpModelConfig& config, const json& body) {
  ModelResponse answer;
  answer.model = model_of(body, config, "modelVersion");
  if (const json* usage = member(body, "usageMetadata")) {
    answer.usage.input_tokens = int_member(*usage, "promptTokenCount");
    answer.usage.output_tokens =
        saturated_sum({int_member(*usage, "candidatesTokenCount"), int_member(*usage, "thoughtsTokenCount")});
    answer.usage.cached_input_tokens = int_member(*usage, "cachedContentTokenCount");
  }
  const json* candidates = member(body, "candidates");
  if (candidates == nullptr || !candidates->is_array() || candidates->empty()) {
    const json* feedback = member(body, "promptFeedback");
    const std::string reason = feedback ? string_member(*feedback, "blockReason") : "";
    if (reason.empty()) {
      return {std::nullopt, "the reply has no candidates and no promptFeedback.blockReason"};
    }
    answer.stop_reason = "blocked: " + reason;
    return {std::move(answer), {}};
  }
  const json& candidate = (*candidates)[0];
  if (const json* content = member(candidate, "content")) {
    if (const json* parts = member(*content, "parts"); parts && parts->is_array()) {
      for (const json& part : *parts) {
        const json* thought = member(part, "thought");
        if (!(thought && thought->is_boolean() && thought->get<bool>())) {
          answer.text += string_member(part, "text");
        }
      }
    }
  }
  const std::string finish = string_member(candidate, "finishReason");
  static const std::set<std::string, std::less<>> k_blocked = {
      "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
      "IMAGE_RECITATION"};
  if (finish == "MAX_TOKENS") {
    answer.stop_reason = k_length_cut;
  } else if (k_blocked.count(finish)) {
    answer.stop_reason = "blocked: " + finish;
  } else if (!finish.empty() && finish != "STOP" && finish != "FINISH_REASON_UNSPECIFIED") {
    answer.stop_reason = "stopped: " + finish;
  }
  return {std::move(answer), {}};
}

Result<ModelResponse> parse_response(const HttpModelConfig& config, const ModelRequest& request,
                                     const HttpResponse& response, std::string& attempt_error) {
  attempt_error.clear();
  if (response.status < 200 || response.status > 299) {
    return classify_error(config, response, attempt_error);
  }
  AVPS_TRY_ASSIGN(json options, effective_options(config));
  Result<json> body = core::parse_json(response.body, "reply");
  if (!body) {
    // The parser quotes what it last read, which may be an echoed key: scrubbed before capping.
    return malformed(config, response,
                     "the reply is not JSON: " + capped(scrub(body.error().message, config.api_key), 200),
                     attempt_error);
  }
  Parsed parsed;
  switch (config.kind) {
    case WireKind::openai_chat: parsed = parse_openai(config, request, options, *body); break;
    case WireKind::anthropic_messages: parsed = parse_anthropic(config, options, *body); break;
    case WireKind::gemini_generate: parsed = parse_gemini(config, *body); break;
  }
  if (!parsed.answer) {
    // A 2xx carrying an error (some gateways do that) is named by its own message.
    const ProviderError provider = read_provider_error(*body);
    std::string what = parsed.malformed;
    if (!provider.message.empty()) {
      what += " (it says: " + capped(scrub(provider.message, config.api_key), 300) + ")";
    }
    return malformed(config, response, what, attempt_error);
  }
  return std::move(*parsed.answer);
}

}  // namespace

// ---- public -----------------------------------------------------------------------------------

std::string_view wire_kind_name(WireKind kind) {
  switch (kind) {
    case WireKind::openai_chat: return "openai_chat";
    case WireKind::anthropic_messages: return "anthropic_messages";
    case WireKind::gemini_generate: return "gemini_generate";
  }
  return "openai_chat";
}

Result<json> check_options(WireKind kind, const json& options, const std::string& where) {
  if (!options.is_null() && !options.is_object()) {
    return make_error(ErrorCode::configuration, where + ": \"options\" must be an object");
  }
  const json in = options.is_null() ? json::object() : options;
  const std::vector<std::string>& allowed = allowed_options(kind);
  for (const auto& [key, value] : in.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return make_error(ErrorCode::configuration, where + ": unknown option \"" + capped(key, 64) + "\" for " +
                                                      std::string(wire_kind_name(kind)) + " (allowed: " +
                                                      joined(allowed) + ")");
    }
  }
  OptionChecker check(in, where);
  AVPS_TRY(check.integer("timeout_s", 1, 3600, 300));
  AVPS_TRY(check.integer("connect_timeout_s", 1, 600, 10));
  check.pass("retry");
  AVPS_TRY(check.number("temperature", 0.0, 2.0));
  AVPS_TRY(check.headers("extra_headers"));
  switch (kind) {
    case WireKind::openai_chat:
      AVPS_TRY(check.choice("schema_mode", {"json_schema_strict", "json_schema", "json_object", "prompt_only"},
                            "json_schema_strict"));
      AVPS_TRY(check.choice("token_param", {"max_completion_tokens", "max_tokens"}, "max_completion_tokens"));
      AVPS_TRY(check.choice("system_role", {"system", "developer"}, "system"));
      AVPS_TRY(check.boolean("seed", false));
      AVPS_TRY(check.choice("image_detail", {"auto", "low", "high"}, "auto"));
      AVPS_TRY(check.object("extra_body"));
      AVPS_TRY(check.string_list("image_sizes"));
      AVPS_TRY(check.choice("image_quality", {"auto", "low", "medium", "high", "standard", "hd"}, ""));
      break;
    case WireKind::anthropic_messages:
      AVPS_TRY(check.text("api_version", "2023-06-01"));
      AVPS_TRY(check.choice("json_mode", {"tool", "output_config", "prompt_only"}, "tool"));
      AVPS_TRY(check.pattern_name("tool_name", "emit_result"));
      AVPS_TRY(check.string_list("betas"));
      AVPS_TRY(check.boolean("prompt_caching", true));
      break;
    case WireKind::gemini_generate:
      AVPS_TRY(check.choice("json_mode", {"schema", "prompt_only"}, "schema"));
      AVPS_TRY(check.choice("thinking_level", {"MINIMAL", "LOW", "MEDIUM", "HIGH"}, ""));
      AVPS_TRY(check.string_list("image_aspect_ratios"));
      AVPS_TRY(check.choice("image_size", {"1K", "2K", "4K"}, ""));
      AVPS_TRY(check.choice("image_modalities", {"text_and_image", "image"}, "text_and_image"));
      break;
  }
  if (kind != WireKind::anthropic_messages) {
    // The image operation's (http_images.hpp); 0 = the model's own limit.
    AVPS_TRY(check.integer("image_prompt_max_chars", 0, 1000000, 0));
    for (const char* list : {"image_sizes", "image_aspect_ratios"}) {
      const json* given = member(in, list);
      if (given == nullptr) {
        continue;
      }
      for (const json& entry : *given) {
        const std::string text = entry.get<std::string>();
        const bool sizes = std::string_view(list) == "image_sizes";
        const size_t sep = text.find(sizes ? 'x' : ':');
        const bool good = sep != std::string::npos && sep > 0 && sep + 1 < text.size() &&
                          std::all_of(text.begin(), text.end(),
                                      [&](unsigned char c) {
                                        return std::isdigit(c) || c == static_cast<unsigned char>(sizes ? 'x' : ':');
                                      }) &&
                          std::count(text.begin(), text.end(), sizes ? 'x' : ':') == 1;
        if (!good || text.front() == '0' || text[sep + 1] == '0') {
          return make_error(ErrorCode::configuration,
                            where + ": option \"" + list + "\" holds \"" + capped(text, 40) +
                                "\"; each entry must be " +
                                (sizes ? "a size such as \"1536x1024\"" : "a ratio such as \"16:9\""));
        }
      }
    }
  }
  return check.take();
}

Result<std::string> request_document(const ModelRequest& request) {
  const json form = request.to_json();  // null scope / inputs / findings normalised there
  const json document = {
      {"skill", form["skill"]}, {"scope", form["scope"]}, {"inputs", form["inputs"]}, {"findings", form["findings"]}};
  AVPS_TRY_ASSIGN(std::string text, core::canonical_json(document));
  return "<avps-request>\n" + text + "\n</avps-request>";
}

Result<ModelRequest> parse_request_document(const std::string& text) {
  static const std::string k_open = "<avps-request>\n";
  static const std::string k_close = "\n</avps-request>";
  const size_t open = text.find(k_open);
  // Canonical JSON has no raw newline, so the first closing marker after the opening one ends it.
  const size_t close = open == std::string::npos ? std::string::npos : text.find(k_close, open + k_open.size());
  if (close == std::string::npos) {
    return make_error(ErrorCode::invalid_argument, "no <avps-request> document in the message");
  }
  const std::string_view body = std::string_view(text).substr(open + k_open.size(), close - open - k_open.size());
  AVPS_TRY_ASSIGN(json document, core::parse_json(body, "<avps-request> document"));
  if (!document.is_object()) {
    return make_error(ErrorCode::invalid_argument, "the <avps-request> document is not a JSON object");
  }
  ModelRequest request;
  request.skill = string_member(document, "skill");
  auto take = [&](const char* key, json fallback) {
    const json* value = member(document, key);
    return value == nullptr || value->is_null() ? fallback : *value;
  };
  request.scope = take("scope", json::object());
  request.inputs = take("inputs", json::object());
  request.findings = take("findings", json::array());
  return request;
}

json wire_schema(const ModelRequest& request) {
  const json& given = request.output_schema;
  json schema;
  if (is_kind_map(given)) {
    json properties = json::object();
    json required = json::array();
    for (const auto& [kind, part] : given.items()) {
      RefInliner inliner;
      properties[kind] = inliner.inline_refs(part, part, "");
      required.push_back(kind);
    }
    schema = {{"type", "object"},
              {"properties", std::move(properties)},
              {"required", std::move(required)},
              {"additionalProperties", false}};
  } else if (given.is_object() && !given.empty()) {
    RefInliner inliner;
    schema = inliner.inline_refs(given, given, "");
  } else {
    schema = {{"type", "object"}};
  }
  const json* page = member(request.scope, "page");
  if (page != nullptr && !page->is_null() && schema.is_object()) {
    // A paged call (engine run_pages) answers its page plus whether more follows and what the
    // next page must know.
    if (!schema.contains("properties") || !schema["properties"].is_object()) {
      schema["properties"] = json::object();
    }
    schema["properties"]["more"] = {{"type", "boolean"},
                                    {"description", "true when the output continues on another page"}};
    schema["properties"]["carry"] = {
        {"description", "anything the next page's call needs to know; it gets it as inputs.CARRY"}};
  }
  return schema;
}

std::optional<json> openai_strict_schema(const json& schema) {
  const bool object_root = has_type(schema, "object") || (!schema.contains("type") && schema.contains("properties"));
  if (!schema.is_object() || !object_root || schema.contains("anyOf") || schema.contains("oneOf")) {
    return std::nullopt;  // the root must be a plain object
  }
  return to_strict(schema);
}

json strip_strict_nulls(const json& original_schema, json value) {
  if (!original_schema.is_object()) {
    return value;
  }
  if (value.is_object()) {
    const json* properties = member(original_schema, "properties");
    if (properties != nullptr && properties->is_object()) {
      std::set<std::string> required;
      if (const json* listed = member(original_schema, "required"); listed && listed->is_array()) {
        for (const json& name : *listed) {
          if (name.is_string()) {
            required.insert(name.get<std::string>());
          }
        }
      }
      for (auto it = value.begin(); it != value.end();) {
        const json* sub = member(*properties, it.key());
        if (sub == nullptr) {
          ++it;
          continue;
        }
        if (it->is_null() && !required.count(it.key()) && !allows_null(*sub)) {
          it = value.erase(it);
          continue;
        }
        *it = strip_strict_nulls(*sub, std::move(*it));
        ++it;
      }
      return value;
    }
  }
  if (value.is_array()) {
    const json* items = member(original_schema, "items");
    if (items != nullptr && items->is_object()) {
      for (json& item : value) {
        item = strip_strict_nulls(*items, std::move(item));
      }
    }
    return value;
  }
  // anyOf / oneOf: the first branch that describes this kind of value decides.
  for (const char* key : {"anyOf", "oneOf"}) {
    if (const json* branches = member(original_schema, key); branches && branches->is_array()) {
      const std::string type = json_type_of(value);
      for (const json& branch : *branches) {
        if (has_type(branch, type) || (type == "integer" && has_type(branch, "number")) ||
            (type == "object" && member(branch, "properties") != nullptr)) {
          return strip_strict_nulls(branch, std::move(value));
        }
      }
    }
  }
  return value;
}

Result<HttpRequest> build_wire_request(const HttpModelConfig& config, const ModelRequest& request) {
  AVPS_TRY_ASSIGN(json options, effective_options(config));
  const std::string base = trimmed_endpoint(config.endpoint);
  HttpRequest wire;
  wire.method = "POST";
  wire.headers.emplace_back("content-type", "application/json");
  json body;
  switch (config.kind) {
    case WireKind::openai_chat: {
      wire.url = base + "/chat/completions";
      if (!config.api_key.empty()) {
        wire.headers.emplace_back("authorization", "Bearer " + config.api_key);
      }
      AVPS_TRY_ASSIGN(body, openai_body(config, request, options));
      break;
    }
    case WireKind::anthropic_messages: {
      wire.url = base + "/v1/messages";
      if (!config.api_key.empty()) {
        wire.headers.emplace_back("x-api-key", config.api_key);
      }
      wire.headers.emplace_back("anthropic-version", options["api_version"].get<std::string>());
      std::vector<std::string> betas;
      for (const json& beta : options["betas"]) {
        betas.push_back(beta.get<std::string>());
      }
      if (!betas.empty()) {
        std::string joined_betas;
        for (const std::string& beta : betas) {
          joined_betas += (joined_betas.empty() ? "" : ",") + beta;
        }
        wire.headers.emplace_back("anthropic-beta", joined_betas);
      }
      AVPS_TRY_ASSIGN(body, anthropic_body(config, request, options));
      break;
    }
    case WireKind::gemini_generate: {
      wire.url = base + "/v1beta/models/" + provider_model(config) + ":generateContent";
      if (!config.api_key.empty()) {
        wire.headers.emplace_back("x-goog-api-key", config.api_key);
      }
      AVPS_TRY_ASSIGN(body, gemini_body(config, request, options));
      break;
    }
  }
  for (const auto& [name, value] : options["extra_headers"].items()) {
    wire.headers.emplace_back(name, value.get<std::string>());
  }
  AVPS_TRY_ASSIGN(wire.body, core::canonical_json(body));
  return wire;
}

Error http_status_error(const HttpModelConfig& config, const HttpResponse& response, std::string& attempt_error) {
  return classify_error(config, response, attempt_error);
}

Result<ModelResponse> parse_wire_response(const HttpModelConfig& config, const ModelRequest& request,
                                          const HttpResponse& response) {
  std::string attempt_error;
  return parse_response(config, request, response, attempt_error);
}

HttpModelBackend::HttpModelBackend(HttpModelConfig config, HttpClient& client)
    : m_config(std::move(config)), m_client(client) {}

Result<Submitted<ModelResponse>> HttpModelBackend::submit_model(const ModelRequest& request, CallTrace& trace) {
  trace.provider = std::string(wire_kind_name(m_config.kind));
  trace.endpoint_host = url_host(m_config.endpoint);
  if (!m_config.text) {
    // The router sends no text call to a model without capabilities.text; a caller that does
    // (a ping, a hand-built request) is told why.
    return make_error(ErrorCode::unsupported, "model \"" + m_config.model_id +
                                                  "\" is an image model (capabilities.text is false): it answers no "
                                                  "text call of " +
                                                  request.skill +
                                                  "; give it only generation tiers (gen_low for storyboard frames)");
  }
  AVPS_TRY_ASSIGN(HttpRequest wire, build_wire_request(m_config, request));
  trace.request_body = wire.body;  // the key is only ever in a header
  trace.response_body.clear();

  HttpAttempt attempt;
  const auto start = std::chrono::steady_clock::now();
  Result<HttpResponse> sent = m_client.send(wire, m_config.http);
  if (!sent) {
    attempt.latency_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    Error error = std::move(sent).error();
    error.message = scrub(m_config.model_id + ": " + error.message, m_config.api_key);
    attempt.error = error.message;
    trace.attempts.push_back(std::move(attempt));
    return error;
  }
  const HttpResponse& response = *sent;
  attempt.status = response.status;
  attempt.latency_ms = response.latency_ms;
  for (const char* header : {"x-request-id", "request-id", "x-goog-request-id"}) {
    if (attempt.request_id.empty()) {
      attempt.request_id = response.header(header);
    }
  }
  trace.response_body = scrub(response.body, m_config.api_key);
  Result<ModelResponse> answer = parse_response(m_config, request, response, attempt.error);
  trace.attempts.push_back(std::move(attempt));
  if (!answer) {
    return std::move(answer).error();
  }
  return Submitted<ModelResponse>{std::move(answer).value(), {}};
}

Result<Submitted<GenerationResult>> HttpModelBackend::submit_generation(const GenerationRequest& request,
                                                                        CallTrace& trace) {
  trace.provider = std::string(wire_kind_name(m_config.kind));
  trace.endpoint_host = url_host(m_config.endpoint);
  if (!m_config.image_out) {
    return make_error(ErrorCode::unsupported, "model \"" + m_config.model_id + "\" (" +
                                                  std::string(wire_kind_name(m_config.kind)) +
                                                  ") answers chat calls only; it cannot render shot " +
                                                  request.shot_id + " (set capabilities.image_out for an image model)");
  }
  AVPS_TRY_ASSIGN(GenerationResult frame, submit_image(m_config, m_client, request, trace));
  return Submitted<GenerationResult>{std::move(frame), {}};
}

}  // namespace avps::backends
