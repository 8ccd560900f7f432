#include "avps/artifacts/face.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "avps/core/canonical_json.hpp"
#include "avps/core/csv.hpp"
#include "avps/core/fs.hpp"

namespace avps::artifacts {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// --- schema navigation (ordered, so faces follow the schema's property order) ----------------

struct Node {
  const ordered_json* doc = nullptr;
  const ordered_json* schema = nullptr;
};

struct Types {
  bool string = false, integer = false, number = false, boolean = false, array = false, object = false;
  bool scalar_only() const { return !array && !object; }
};

class SchemaSet {
 public:
  ordered_json root;
  std::map<std::string, ordered_json> files;  // referenced documents by file name

  Node resolve(Node n) const {
    for (int depth = 0; depth < 16 && n.schema && n.schema->is_object() && n.schema->contains("$ref"); ++depth) {
      const std::string ref = (*n.schema)["$ref"].get<std::string>();
      const size_t hash = ref.find('#');
      const std::string file = ref.substr(0, hash);
      if (!file.empty()) {
        auto it = files.find(file);
        if (it == files.end()) {
          return {};
        }
        n.doc = &it->second;
      }
      try {
        n.schema = &n.doc->at(ordered_json::json_pointer(hash == std::string::npos ? "" : ref.substr(hash + 1)));
      } catch (const ordered_json::exception&) {
        return {};
      }
    }
    return n;
  }

  Types types(Node n) const {
    Types t;
    n = resolve(n);
    if (!n.schema || !n.schema->is_object()) {
      t.string = true;
      return t;
    }
    const ordered_json& s = *n.schema;
    auto add_type = [&t](const std::string& name) {
      t.string |= name == "string";
      t.integer |= name == "integer";
      t.number |= name == "number";
      t.boolean |= name == "boolean";
      t.array |= name == "array";
      t.object |= name == "object";
    };
    auto add_value = [&](const ordered_json& v) {
      if (v.is_string()) {
        t.string = true;
      } else if (v.is_number_integer()) {
        t.integer = true;
      } else if (v.is_number()) {
        t.number = true;
      } else if (v.is_boolean()) {
        t.boolean = true;
      }
    };
    if (s.contains("type")) {
      if (s["type"].is_string()) {
        add_type(s["type"].get<std::string>());
      } else {
        for (const auto& name : s["type"]) {
          add_type(name.get<std::string>());
        }
      }
    }
    if (s.contains("const")) {
      add_value(s["const"]);
    }
    if (s.contains("enum")) {
      for (const auto& v : s["enum"]) {
        add_value(v);
      }
    }
    for (const char* combinator : {"oneOf", "anyOf", "allOf"}) {
      if (s.contains(combinator)) {
        for (const auto& option : s[combinator]) {
          Types o = types({n.doc, &option});
          t.string |= o.string;
          t.integer |= o.integer;
          t.number |= o.number;
          t.boolean |= o.boolean;
          t.array |= o.array;
          t.object |= o.object;
        }
      }
    }
    if (s.contains("properties") || s.contains("additionalProperties")) {
      t.object |= !t.array && !t.string;
    }
    if (!t.string && !t.integer && !t.number && !t.boolean && !t.array && !t.object) {
      t.string = true;
    }
    return t;
  }

  // The subschema of property `key` of an object schema (properties, then additionalProperties).
  Node property(Node n, const std::string& key) const {
    n = resolve(n);
    if (!n.schema) {
      return {};
    }
    const ordered_json& s = *n.schema;
    if (s.contains("properties") && s["properties"].contains(key)) {
      return resolve({n.doc, &s["properties"][key]});
    }
    if (s.contains("additionalProperties") && s["additionalProperties"].is_object()) {
      return resolve({n.doc, &s["additionalProperties"]});
    }
    return {};
  }

  Node items(Node n) const {
    n = resolve(n);
    if (!n.schema || !n.schema->contains("items")) {
      return {};
    }
    return resolve({n.doc, &(*n.schema)["items"]});
  }

  // Keys of `value` in face order: the schema's properties first, in schema order, then the rest
  // sorted (maps).
  std::vector<std::string> ordered_keys(Node n, const json& value) const {
    std::vector<std::string> keys;
    std::set<std::string> seen;
    n = resolve(n);
    if (n.schema && n.schema->contains("properties")) {
      for (const auto& item : (*n.schema)["properties"].items()) {
        if (value.contains(item.key())) {
          keys.push_back(item.key());
          seen.insert(item.key());
        }
      }
    }
    for (const auto& item : value.items()) {  // json objects iterate sorted
      if (!seen.count(item.key())) {
        keys.push_back(item.key());
      }
    }
    return keys;
  }
};

Error face_error(const std::string& message) {
  return make_error(ErrorCode::invalid_argument, message);
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      lines.emplace_back(text.substr(start));
      break;
    }
    lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool looks_numeric(const std::string& s) {
  if (s.empty()) {
    return false;
  }
  try {
    json v = json::parse(s);
    return v.is_number() || v.is_boolean() || v.is_null();
  } catch (const json::exception&) {
    return false;
  }
}

std::string heredoc_marker(const std::vector<std::string>& lines) {
  std::set<std::string> taken(lines.begin(), lines.end());
  std::string marker = "END";
  for (int i = 1; taken.count(marker); ++i) {
    marker = "END" + std::to_string(i);
  }
  return marker;
}

bool is_simple_key(const std::string& key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

// --- rendering ------------------------------------------------------------------------------

class Renderer {
 public:
  explicit Renderer(const SchemaSet& schemas) : m_schemas(schemas) {}

  // One value in a "key: <here>" or "- <here>" position: the text after the prefix, plus any
  // raw lines that follow (heredoc for multi-line strings).
  Result<void> inline_value(Node n, const json& v, const std::string& prefix, std::vector<std::string>& out) {
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (s.find('\n') != std::string::npos) {
        std::vector<std::string> raw = split_lines(s);
        std::string marker = heredoc_marker(raw);
        out.push_back(prefix + " <<" + marker);
        out.insert(out.end(), raw.begin(), raw.end());
        out.push_back(marker);
        return ok();
      }
      if (s.empty()) {
        out.push_back(prefix);
        return ok();
      }
      Types t = m_schemas.types(n);
      bool ambiguous = s.front() == '\\' || s.rfind("<<", 0) == 0 || s == "[]" || s == "{}" ||
                       ((t.integer || t.number || t.boolean) && looks_numeric(s));
      out.push_back(prefix + " " + (ambiguous ? "\\" : "") + s);
      return ok();
    }
    if (v.is_number() || v.is_boolean()) {
      out.push_back(prefix + " " + v.dump());
      return ok();
    }
    if (v.is_array() && v.empty()) {
      out.push_back(prefix + " []");
      return ok();
    }
    if (v.is_object() && v.empty()) {
      out.push_back(prefix + " {}");
      return ok();
    }
    return face_error("cannot render " + std::string(v.type_name()) + " inline");
  }

  Result<void> block(Node n, const json& v, size_t indent, std::vector<std::string>& out) {
    const std::string pad(indent, ' ');
    if (v.is_object()) {
      for (const std::string& key : m_schemas.ordered_keys(n, v)) {
        if (!is_simple_key(key)) {
          return face_error("cannot render the key \"" + key + "\" in a face");
        }
        const json& child = v[key];
        Node sub = m_schemas.property(n, key);
        if ((child.is_object() || child.is_array()) && !child.empty()) {
          out.push_back(pad + key + ":");
          AVPS_TRY(block(sub, child, indent + 2, out));
        } else {
          AVPS_TRY(inline_value(sub, child, pad + key + ":", out));
        }
      }
      return ok();
    }
    if (v.is_array()) {
      Node item_schema = m_schemas.items(n);
      for (const json& item : v) {
        if (item.is_object() && !item.empty()) {
          std::vector<std::string> lines;
          AVPS_TRY(block(item_schema, item, indent + 2, lines));
          lines.front().replace(indent, 2, "- ");
          out.insert(out.end(), lines.begin(), lines.end());
        } else if (item.is_array() && !item.empty()) {
          return face_error("cannot render a list of lists in a face");
        } else {
          AVPS_TRY(inline_value(item_schema, item, pad + "-", out));
        }
      }
      return ok();
    }
    return inline_value(n, v, pad.empty() ? "" : pad, out);
  }

 private:
  const SchemaSet& m_schemas;
};

// --- parsing --------------------------------------------------------------------------------

class BlockParser {
 public:
  BlockParser(const SchemaSet& schemas, std::vector<std::string> lines, size_t first_line, std::string field)
      : m_schemas(schemas), m_lines(std::move(lines)), m_first_line(first_line), m_field(std::move(field)) {}

  bool done() const { return m_pos >= m_lines.size(); }

  Error error(const std::string& what) const {
    return face_error("line " + std::to_string(m_first_line + std::min(m_pos, m_lines.size())) + " (" + m_field +
                      "): " + what);
  }

  static size_t indent_of(const std::string& line) {
    size_t i = 0;
    while (i < line.size() && line[i] == ' ') {
      ++i;
    }
    return i;
  }

  Result<json> scalar(Node n, const std::string& text) {
    Types t = m_schemas.types(n);
    if (!text.empty() && text.front() == '\\') {
      return json(text.substr(1));
    }
    if (text == "[]") {
      return json::array();
    }
    if (text == "{}") {
      return json::object();
    }
    if (t.integer || t.number || t.boolean) {
      try {
        json v = json::parse(text);
        if ((v.is_number_integer() && (t.integer || t.number)) || (v.is_number() && t.number) ||
            (v.is_boolean() && t.boolean)) {
          return v;
        }
      } catch (const json::exception&) {
      }
      if (!t.string) {
        return error("expected a number, found \"" + text + "\"");
      }
    }
    if (!t.string) {
      return error(std::string("expected ") + (t.array ? "a list (\"- item\" lines below)" : "fields below") +
                   ", found \"" + text + "\"");
    }
    return json(text);
  }

  // The value after "key:" or "-": inline text, a heredoc, or a nested block below.
  Result<json> after_prefix(Node n, const std::string& rest, size_t indent) {
    if (rest.rfind(" <<", 0) == 0) {
      std::string marker = rest.substr(3);
      std::vector<std::string> raw;
      ++m_pos;
      while (m_pos < m_lines.size() && m_lines[m_pos] != marker) {
        raw.push_back(m_lines[m_pos++]);
      }
      if (m_pos >= m_lines.size()) {
        return error("text block never closed by a line \"" + marker + "\"");
      }
      ++m_pos;
      std::string joined;
      for (size_t i = 0; i < raw.size(); ++i) {
        joined += (i ? "\n" : "") + raw[i];
      }
      return json(joined);
    }
    if (!rest.empty()) {
      if (rest.front() != ' ') {
        return error("expected \": value\"");
      }
      Result<json> value = scalar(n, rest.substr(1));  // errors name this line
      ++m_pos;
      return value;
    }
    ++m_pos;
    if (m_pos < m_lines.size() && indent_of(m_lines[m_pos]) > indent && !m_lines[m_pos].empty()) {
      return block(n, indent + 2);
    }
    Types t = m_schemas.types(n);
    if (!t.string) {
      return error("a value is missing");
    }
    return json("");
  }

  Result<json> block(Node n, size_t indent) {
    Types t = m_schemas.types(n);
    if (t.array && m_pos < m_lines.size() && is_item(m_lines[m_pos], indent)) {
      return array(n, indent);
    }
    if (t.object) {
      return object(n, indent);
    }
    if (t.array) {
      return array(n, indent);
    }
    return error("expected a value here");
  }

  Result<json> parse_section(Node n) {
    Types t = m_schemas.types(n);
    if (t.scalar_only()) {
      if (t.string && !t.integer && !t.number && !t.boolean) {
        std::string joined;
        for (size_t i = 0; i < m_lines.size(); ++i) {
          joined += (i ? "\n" : "") + m_lines[i];
        }
        m_pos = m_lines.size();
        return json(joined);
      }
      if (m_lines.size() != 1) {
        return error("expected one line holding the value");
      }
      AVPS_TRY_ASSIGN(json v, scalar(n, m_lines[0]));
      m_pos = 1;
      return v;
    }
    if (m_lines.empty()) {
      return t.array ? json::array() : json::object();
    }
    if (m_lines.size() == 1 && (m_lines[0] == "[]" || m_lines[0] == "{}")) {
      m_pos = 1;
      return m_lines[0] == "[]" ? json::array() : json::object();
    }
    AVPS_TRY_ASSIGN(json v, block(n, 0));
    if (!done()) {
      return error("unexpected text: \"" + m_lines[m_pos] + "\"");
    }
    return v;
  }

 private:
  static bool is_item(const std::string& line, size_t indent) {
    return line.size() >= indent + 1 && indent_of(line) == indent && line[indent] == '-' &&
           (line.size() == indent + 1 || line[indent + 1] == ' ');
  }

  Result<json> object(Node n, size_t indent) {
    json out = json::object();
    while (m_pos < m_lines.size()) {
      const std::string& line = m_lines[m_pos];
      size_t at = indent_of(line);
      if (at < indent || is_item(line, indent)) {
        break;
      }
      if (at > indent) {
        return error("unexpected indentation");
      }
      size_t colon = line.find(':', indent);
      if (colon == std::string::npos) {
        return error("expected \"key: value\", found \"" + line + "\"");
      }
      std::string key = line.substr(indent, colon - indent);
      if (!is_simple_key(key)) {
        return error("malformed key \"" + key + "\"");
      }
      if (out.contains(key)) {
        return error("\"" + key + "\" appears twice");
      }
      AVPS_TRY_ASSIGN(json value, after_prefix(m_schemas.property(n, key), line.substr(colon + 1), indent));
      out[key] = std::move(value);
    }
    return out;
  }

  Result<json> array(Node n, size_t indent) {
    json out = json::array();
    Node item_schema = m_schemas.items(n);
    Types item_types = m_schemas.types(item_schema);
    while (m_pos < m_lines.size() && is_item(m_lines[m_pos], indent)) {
      std::string& line = m_lines[m_pos];
      if (item_types.object && line.compare(indent, 3, "- {") != 0 && line.find(':') != std::string::npos) {
        line.replace(indent, 2, "  ");
        AVPS_TRY_ASSIGN(json item, object(item_schema, indent + 2));
        out.push_back(std::move(item));
      } else {
        AVPS_TRY_ASSIGN(json item, after_prefix(item_schema, line.substr(indent + 1), indent));
        out.push_back(std::move(item));
      }
    }
    return out;
  }

  const SchemaSet& m_schemas;
  std::vector<std::string> m_lines;
  size_t m_first_line;
  std::string m_field;
  size_t m_pos = 0;
};

struct Section {
  std::string field;
  std::string heading;
  bool optional = false;
  bool key_line = false;  ///< a score, number or enum: written "Heading: value" on one line
  /// What a line opening the section starts with (key_line) or is: made once at load, as every
  /// line of every face rendered or parsed is compared with every section's.
  std::string opening;
};

}  // namespace

struct FaceCodec::Impl {
  std::string kind;
  std::string format;  // md, txt, csv, json
  std::string title;   // template with {field}
  std::vector<std::string> identity;
  std::vector<Section> sections;
  std::vector<std::string> columns;
  /// CSV: findings kept beside the rows in the JSON (QC_BATCH's violations), shown in a column of
  /// the row they concern as "label: text" list items, so that the face shows all it holds.
  struct RowItems {
    std::string column;              ///< the face column
    std::string field;               ///< the top-level array of the JSON
    std::vector<std::string> match;  ///< fields an item shares with its row
    std::string label;               ///< item field before ": "
    std::string text;                ///< item field after ": "
  };
  std::optional<RowItems> row_items;
  /// CSV: headers of earlier layouts, with why such a face cannot be read now.
  std::vector<std::pair<std::vector<std::string>, std::string>> older_layouts;
  SchemaSet schemas;
  core::JsonSchema validator;

  Node root() const { return Node{&schemas.root, &schemas.root}; }

  std::string heading_line(const std::string& heading) const {
    return format == "md" ? "## " + heading : "[" + heading + "]";
  }

  std::string title_for(const json& identity_values) const {
    std::string out = title;
    for (const std::string& field : identity) {
      std::string token = "{" + field + "}";
      size_t at = out.find(token);
      if (at != std::string::npos) {
        out.replace(at, token.size(), identity_values.value(field, std::string()));
      }
    }
    return out;
  }

  // True if `line` opens `section`: its heading line, or "Heading: value" for a key-line section.
  static bool opens(const Section& section, std::string_view line) {
    return section.key_line ? line.substr(0, section.opening.size()) == section.opening : line == section.opening;
  }

  bool is_heading(const std::string& line) const {
    for (const Section& s : sections) {
      if (opens(s, line)) {
        return true;
      }
    }
    return false;
  }

  // Lines of a section body that could be mistaken for structure get a leading backslash.
  std::string escape(const std::string& line) const {
    return (!line.empty() && line.front() == '\\') || is_heading(line) ? "\\" + line : line;
  }
  static std::string unescape(const std::string& line) {
    return !line.empty() && line.front() == '\\' ? line.substr(1) : line;
  }

  Result<std::string> render_gate(const json& content) const {
    if (!content.contains("gate")) {
      return std::string();
    }
    const json& gate = content["gate"];
    std::string out = "Gate: " + gate.value("verdict", std::string()) + "\n";
    std::string scores;
    const json scores_object = gate.value("scores", json::object());
    for (const auto& item : scores_object.items()) {
      if (!is_simple_key(item.key())) {
        return face_error("gate score name \"" + item.key() + "\" cannot be shown in a face");
      }
      scores += (scores.empty() ? "" : ", ") + item.key() + "=" + item.value().dump();
    }
    out += "Gate scores:" + (scores.empty() ? "" : " " + scores) + "\n";
    out += "Gate reasons:\n";
    const json reasons = gate.value("reasons", json::array());
    for (const json& reason : reasons) {
      std::string text = reason.get<std::string>();
      std::replace(text.begin(), text.end(), '\n', ' ');
      out += "- " + text + "\n";
    }
    return out;
  }

  Result<std::string> render_sections(const json& content) const {
    Renderer renderer(schemas);
    AVPS_TRY_ASSIGN(std::string gate, render_gate(content));
    std::string out = format == "md" ? "# " + title_for(content) + "\n\n" + gate : title_for(content) + "\n" + gate;
    bool previous_key_line = false;
    for (const Section& s : sections) {
      if (!content.contains(s.field)) {
        if (s.optional) {
          continue;
        }
        return face_error(kind + " face: the required section \"" + s.heading + "\" (" + s.field + ") is missing");
      }
      const json& value = content[s.field];
      Node n = schemas.property(root(), s.field);
      if (s.key_line && !value.is_object() && !value.is_array()) {
        // Scores and verdicts read as "Key: value" lines, consecutive ones without blank lines.
        out += (previous_key_line ? "" : "\n") + s.heading + ": " +
               (value.is_string() ? value.get<std::string>() : value.dump()) + "\n";
        previous_key_line = true;
        continue;
      }
      previous_key_line = false;
      std::vector<std::string> lines;
      if (value.is_string()) {
        lines = split_lines(value.get<std::string>());
      } else if ((value.is_array() || value.is_object()) && value.empty()) {
        lines = {value.is_array() ? "[]" : "{}"};
      } else if (value.is_array() || value.is_object()) {
        AVPS_TRY(renderer.block(n, value, 0, lines));
      } else {
        lines = {value.dump()};
      }
      out += "\n" + heading_line(s.heading) + "\n";
      for (const std::string& line : lines) {
        out += escape(line) + "\n";
      }
    }
    return out;
  }

  Result<json> parse_sections(std::string_view face, const json& identity_values) const {
    std::vector<std::string> lines = split_lines(face);
    if (!lines.empty() && lines.back().empty()) {
      lines.pop_back();
    }
    auto at_line = [](size_t index, const std::string& what) {
      return face_error("line " + std::to_string(index + 1) + ": " + what);
    };
    std::string want_title = format == "md" ? "# " + title_for(identity_values) : title_for(identity_values);
    if (lines.empty() || lines[0] != want_title) {
      return at_line(0, "expected the title \"" + want_title + "\"" +
                            (lines.empty() ? std::string() : ", found \"" + lines[0] + "\""));
    }
    json out = json::object();
    size_t i = 1;
    // Header: the gate lines, until the first section heading.
    json gate;
    while (i < lines.size() && !is_heading(lines[i])) {
      const std::string& line = lines[i];
      if (line.empty()) {
        ++i;
      } else if (line.rfind("Gate: ", 0) == 0) {
        gate["verdict"] = line.substr(6);
        ++i;
      } else if (line.rfind("Gate scores:", 0) == 0) {
        json scores = json::object();
        std::string rest = line.substr(12);
        size_t start = 0;
        while (start < rest.size()) {
          size_t comma = rest.find(',', start);
          std::string pair = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          start = comma == std::string::npos ? rest.size() : comma + 1;
          while (!pair.empty() && pair.front() == ' ') {
            pair.erase(0, 1);
          }
          size_t eq = pair.find('=');
          if (eq == std::string::npos) {
            return at_line(i, "gate scores are name=number pairs, found \"" + pair + "\"");
          }
          // Only what render_gate can show back: a simple name and a number.
          const std::string score_name = pair.substr(0, eq);
          if (!is_simple_key(score_name)) {
            return at_line(i, "gate score name \"" + score_name + "\" is not letters, digits, '_', '-' or '.'");
          }
          try {
            json score = json::parse(pair.substr(eq + 1));
            if (!score.is_number()) {
              return at_line(i, "gate score \"" + pair + "\" is not a number");
            }
            scores[score_name] = std::move(score);
          } catch (const json::exception&) {
            return at_line(i, "gate score \"" + pair + "\" is not a number");
          }
        }
        gate["scores"] = scores;
        ++i;
      } else if (line == "Gate reasons:") {
        json reasons = json::array();
        ++i;
        while (i < lines.size() && lines[i].rfind("- ", 0) == 0) {
          reasons.push_back(lines[i].substr(2));
          ++i;
        }
        gate["reasons"] = reasons;
      } else {
        return at_line(i, "unexpected line before the first section: \"" + line + "\"");
      }
    }
    if (!gate.is_null()) {
      out["gate"] = gate;
    }
    // Sections, in order; optional ones may be absent. Blank lines separate them.
    size_t next_section = 0;
    while (i < lines.size()) {
      if (lines[i].empty()) {
        ++i;
        continue;
      }
      size_t found = sections.size();
      for (size_t s = next_section; s < sections.size(); ++s) {
        if (opens(sections[s], lines[i])) {
          found = s;
          break;
        }
      }
      if (found == sections.size()) {
        return at_line(i, is_heading(lines[i]) ? "section \"" + lines[i] + "\" is out of order or repeated"
                                               : "expected a section, found \"" + lines[i] + "\"");
      }
      for (size_t s = next_section; s < found; ++s) {
        if (!sections[s].optional) {
          return at_line(i, "section \"" + sections[s].heading + "\" is missing before \"" + lines[i] + "\"");
        }
      }
      const Section& section = sections[found];
      Node node = schemas.property(root(), section.field);
      next_section = found + 1;
      if (section.key_line) {
        BlockParser parser(schemas, {}, i + 1, section.field);
        AVPS_TRY_ASSIGN(json value, parser.scalar(node, lines[i].substr(section.heading.size() + 2)));
        out[section.field] = std::move(value);
        ++i;
        continue;
      }
      size_t body_start = i + 1;
      size_t end = body_start;
      while (end < lines.size() && !is_heading(lines[end])) {
        ++end;
      }
      size_t body_end = end;
      if (end < lines.size() && body_end > body_start && lines[body_end - 1].empty()) {
        --body_end;  // the blank separator
      }
      std::vector<std::string> body;
      for (size_t k = body_start; k < body_end; ++k) {
        body.push_back(unescape(lines[k]));
      }
      BlockParser parser(schemas, std::move(body), body_start + 1, section.field);
      AVPS_TRY_ASSIGN(json value, parser.parse_section(node));
      out[section.field] = std::move(value);
      i = end;
    }
    for (size_t s = next_section; s < sections.size(); ++s) {
      if (!sections[s].optional) {
        return face_error("section \"" + heading_line(sections[s].heading) + "\" is missing");
      }
    }
    return out;
  }

  // CSV: a header row of the framework's columns, then one row per item of "rows".
  // Which row each item of row_items belongs to: the first row sharing its match fields. An item
  // no row shares is an error, never left off the face.
  Result<std::vector<std::vector<const json*>>> items_by_row(const json& content, const json& rows) const {
    std::vector<std::vector<const json*>> out(rows.size());
    if (!row_items) {
      return out;
    }
    static const json k_none = json::array();
    // A reference into `content`: the pointers returned point at its items.
    const json& items = content.contains(row_items->field) ? content[row_items->field] : k_none;
    for (const json& item : items) {
      bool placed = false;
      for (size_t r = 0; r < rows.size() && !placed; ++r) {
        placed = std::all_of(row_items->match.begin(), row_items->match.end(), [&](const std::string& f) {
          return item.contains(f) && rows[r].contains(f) && item[f] == rows[r][f];
        });
        if (placed) {
          out[r].push_back(&item);
        }
      }
      if (!placed) {
        std::string key;
        for (const std::string& f : row_items->match) {
          key += (key.empty() ? "" : ", ") + f + " " + item.value(f, json()).dump();
        }
        return face_error(kind + " face: an item of " + row_items->field + " (" + key +
                          ") matches no row, so the face cannot show it");
      }
    }
    return out;
  }

  static std::string list_cell(const std::vector<std::string>& items) {
    std::string joined;
    for (size_t k = 0; k < items.size(); ++k) {
      std::string escaped;
      for (char c : items[k]) {
        if (c == '\\' || c == ',') {
          escaped += '\\';
        }
        escaped += c;
      }
      joined += (k ? ", " : "") + escaped;
    }
    return joined;
  }

  static std::vector<std::string> list_items(const std::string& cell) {
    std::vector<std::string> items;
    std::string item;
    for (size_t k = 0; k < cell.size(); ++k) {
      if (cell[k] == '\\' && k + 1 < cell.size()) {
        item += cell[++k];
      } else if (cell[k] == ',') {
        items.push_back(item);
        item.clear();
        if (k + 1 < cell.size() && cell[k + 1] == ' ') {
          ++k;
        }
      } else {
        item += cell[k];
      }
    }
    if (!cell.empty()) {
      items.push_back(item);
    }
    return items;
  }

  Result<std::string> render_csv(const json& content) const {
    std::string out = core::csv_format_record(columns);
    Node row_schema = schemas.items(schemas.property(root(), "rows"));
    const json rows = content.value("rows", json::array());
    AVPS_TRY_ASSIGN(auto attached, items_by_row(content, rows));
    for (size_t r = 0; r < rows.size(); ++r) {
      const json& row = rows[r];
      core::CsvRecord record;
      for (const std::string& column : columns) {
        if (row_items && column == row_items->column) {
          std::vector<std::string> shown;
          for (const json* item : attached[r]) {
            const std::string label = item->value(row_items->label, std::string());
            if (label.find(": ") != std::string::npos) {
              return face_error(kind + " face: " + row_items->label + " \"" + label + "\" cannot be shown before \": \"");
            }
            shown.push_back(label + ": " + item->value(row_items->text, std::string()));
          }
          record.push_back(list_cell(shown));
          continue;
        }
        if (!row.contains(column)) {
          record.emplace_back();
          continue;
        }
        const json& cell = row[column];
        if (cell.is_array()) {
          std::vector<std::string> items;
          for (const json& item : cell) {
            items.push_back(item.is_string() ? item.get<std::string>() : item.dump());
          }
          record.push_back(list_cell(items));
        } else if (cell.is_string()) {
          std::string s = cell.get<std::string>();
          Types t = schemas.types(schemas.property(row_schema, column));
          bool ambiguous = !s.empty() && (s.front() == '\\' || ((t.integer || t.number) && looks_numeric(s)));
          record.push_back(ambiguous ? "\\" + s : s);
        } else {
          record.push_back(cell.dump());
        }
      }
      out += core::csv_format_record(record);
    }
    return out;
  }

  Result<json> parse_csv(std::string_view face) const {
    AVPS_TRY_ASSIGN(std::vector<core::CsvRecord> records, core::csv_parse(face));
    for (const auto& [older, why] : older_layouts) {
      if (!records.empty() && records[0] == older) {
        return face_error("line 1: this " + kind + " face has an earlier layout: " + why);
      }
    }
    if (records.empty() || records[0] != columns) {
      std::string want;
      for (const std::string& c : columns) {
        want += (want.empty() ? "" : ",") + c;
      }
      return face_error("line 1: the header must be exactly: " + want);
    }
    Node row_schema = schemas.items(schemas.property(root(), "rows"));
    json rows = json::array();
    json attached = json::array();
    for (size_t r = 1; r < records.size(); ++r) {
      const core::CsvRecord& record = records[r];
      if (record.size() != columns.size()) {
        return face_error("row " + std::to_string(r + 1) + ": " + std::to_string(record.size()) + " fields, the header has " +
                          std::to_string(columns.size()));
      }
      json row = json::object();
      std::vector<std::string> row_item_texts;
      for (size_t c = 0; c < columns.size(); ++c) {
        Node column_schema = schemas.property(row_schema, columns[c]);
        Types t = schemas.types(column_schema);
        const std::string& cell = record[c];
        if (row_items && columns[c] == row_items->column) {
          row_item_texts = list_items(cell);
          continue;
        }
        if (t.array) {
          json items = json::array();
          for (const std::string& item : list_items(cell)) {
            items.push_back(item);
          }
          row[columns[c]] = items;
          continue;
        }
        BlockParser parser(schemas, {cell}, r + 1, columns[c]);
        Result<json> value = parser.scalar(column_schema, cell);
        if (!value) {
          return face_error("row " + std::to_string(r + 1) + ", column " + columns[c] + ": " + value.error().message);
        }
        row[columns[c]] = *value;
      }
      for (const std::string& text : row_item_texts) {
        const size_t colon = text.find(": ");
        if (colon == std::string::npos || colon == 0) {
          return face_error("row " + std::to_string(r + 1) + ", column " + row_items->column + ": \"" + text +
                            "\" is not \"" + row_items->label + ": " + row_items->text + "\"");
        }
        json item = json::object();
        for (const std::string& f : row_items->match) {
          if (row.contains(f)) {
            item[f] = row[f];
          }
        }
        item[row_items->label] = text.substr(0, colon);
        item[row_items->text] = text.substr(colon + 2);
        attached.push_back(std::move(item));
      }
      rows.push_back(std::move(row));
    }
    json out = {{"rows", rows}};
    if (row_items) {
      out[row_items->field] = std::move(attached);
    }
    return out;
  }

  // JSON faces: the content without format_version and kind, in schema order, indented.
  ordered_json ordered(Node n, const json& v) const {
    if (v.is_object()) {
      ordered_json out = ordered_json::object();
      for (const std::string& key : schemas.ordered_keys(n, v)) {
        out[key] = ordered(schemas.property(n, key), v[key]);
      }
      return out;
    }
    if (v.is_array()) {
      ordered_json out = ordered_json::array();
      for (const json& item : v) {
        out.push_back(ordered(schemas.items(n), item));
      }
      return out;
    }
    return ordered_json::parse(v.dump());
  }
};

Result<FaceCodec> FaceCodec::load(const fs::path& schemas_dir, std::string_view kind) {
  return load(std::vector<fs::path>{schemas_dir}, kind);
}

Result<FaceCodec> FaceCodec::load(const std::vector<fs::path>& schema_dirs, std::string_view kind) {
  std::string file;
  for (char c : kind) {
    file += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  file += ".schema.json";
  if (schema_dirs.empty()) {
    return make_error(ErrorCode::not_found, "no schema folder to find " + file + " in");
  }
  // The first folder that has the kind's schema is its folder; files it refers to are looked for
  // there first, then in the folders after it (a project's schema and the shipped common.schema.json).
  size_t own = 0;
  for (size_t i = 0; i < schema_dirs.size(); ++i) {
    std::error_code ec;
    if (fs::is_regular_file(schema_dirs[i] / file, ec)) {
      own = i;
      break;
    }
  }
  const fs::path path = schema_dirs[own] / file;
  const std::vector<fs::path> later(schema_dirs.begin() + static_cast<std::ptrdiff_t>(own) + 1, schema_dirs.end());
  auto impl = std::make_shared<Impl>();
  impl->kind = std::string(kind);
  AVPS_TRY_ASSIGN(impl->validator, core::JsonSchema::load(path, later));
  AVPS_TRY_ASSIGN(std::string text, core::read_file(path));
  try {
    impl->schemas.root = ordered_json::parse(text);
    for (size_t i = own; i < schema_dirs.size(); ++i) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(schema_dirs[i], ec)) {
        std::string name = entry.path().filename().string();
        if (name != file && !impl->schemas.files.count(name) && text.find("\"" + name + "#") != std::string::npos) {
          AVPS_TRY_ASSIGN(std::string referenced, core::read_file(entry.path()));
          impl->schemas.files[name] = ordered_json::parse(referenced);
        }
      }
    }
    impl->schemas.files[file] = impl->schemas.root;
    const ordered_json& face = impl->schemas.root.at("x-avps-face");
    impl->format = face.at("format").get<std::string>();
    impl->title = face.value("title", std::string());
    for (const auto& f : face.value("identity", ordered_json::array())) {
      impl->identity.push_back(f.get<std::string>());
    }
    for (const auto& s : face.value("sections", ordered_json::array())) {
      Section section{s.at("field").get<std::string>(), s.at("heading").get<std::string>(), s.value("optional", false),
                      false, ""};
      // Scores and enums (verdict-like values) are one-line "Key: value" sections.
      Node node = impl->schemas.property(impl->root(), section.field);
      Types types = impl->schemas.types(node);
      bool enumerated = node.schema && (node.schema->contains("enum") || node.schema->contains("const"));
      section.key_line = types.scalar_only() && (types.integer || types.number || types.boolean || enumerated);
      section.opening = section.key_line ? section.heading + ": " : impl->heading_line(section.heading);
      impl->sections.push_back(std::move(section));
    }
    for (const auto& c : face.value("columns", ordered_json::array())) {
      impl->columns.push_back(c.get<std::string>());
    }
    if (face.contains("row_items")) {
      const ordered_json& items = face.at("row_items");
      Impl::RowItems row_items;
      row_items.column = items.at("column").get<std::string>();
      row_items.field = items.at("field").get<std::string>();
      row_items.match = items.at("match").get<std::vector<std::string>>();
      row_items.label = items.at("label").get<std::string>();
      row_items.text = items.at("text").get<std::string>();
      impl->row_items = std::move(row_items);
    }
    for (const auto& older : face.value("older_layouts", ordered_json::array())) {
      impl->older_layouts.emplace_back(older.at("columns").get<std::vector<std::string>>(),
                                       older.at("why").get<std::string>());
    }
  } catch (const ordered_json::exception& e) {
    return make_error(ErrorCode::schema_violation, path.string() + ": no usable x-avps-face block: " + e.what());
  }
  if (impl->format != "md" && impl->format != "txt" && impl->format != "csv" && impl->format != "json" &&
      impl->format != "html" && impl->format != "mp4") {
    return make_error(ErrorCode::schema_violation, path.string() + ": unknown face format \"" + impl->format + "\"");
  }
  FaceCodec codec;
  codec.m_impl = std::move(impl);
  return codec;
}

Result<std::string> FaceCodec::render(const json& content) const {
  const Impl& impl = *m_impl;
  if (impl.format == "html" || impl.format == "mp4") {
    return face_error(impl.kind + "'s face (" + impl.format + ") is made by the command that records it, not from its JSON");
  }
  if (!content.is_object()) {
    return face_error(impl.kind + " content must be a JSON object");
  }
  if (impl.format == "csv") {
    return impl.render_csv(content);
  }
  if (impl.format == "json") {
    json shown = content;
    shown.erase("format_version");
    shown.erase("kind");
    return impl.ordered(impl.root(), shown).dump(2) + "\n";
  }
  return impl.render_sections(content);
}

Result<json> FaceCodec::parse(std::string_view face, const ArtifactName& name) const {
  const Impl& impl = *m_impl;
  if (name.kind != impl.kind) {
    return face_error("a " + name.kind + " name cannot hold a " + impl.kind + " face");
  }
  if (impl.format == "html" || impl.format == "mp4") {
    return face_error(name.filename() + " is made by avps from the record (" + impl.format +
                      "); it cannot be imported or edited: make a new one with its command");
  }
  json identity = json::object();
  for (const std::string& field : impl.identity) {
    identity[field] = name.target;
  }
  json out;
  if (impl.format == "csv") {
    AVPS_TRY_ASSIGN(out, impl.parse_csv(face));
  } else if (impl.format == "json") {
    Result<json> parsed = core::parse_json(face, name.filename());
    if (!parsed) {
      return face_error(parsed.error().message);
    }
    out = std::move(parsed).value();
    if (!out.is_object()) {
      return face_error(name.filename() + ": the face must hold a JSON object");
    }
    for (const std::string& field : impl.identity) {
      if (out.contains(field) && out[field] != identity[field]) {
        return face_error(name.filename() + ": \"" + field + "\" is " + out[field].dump() + " but the file name says " +
                          identity[field].dump());
      }
    }
  } else {
    AVPS_TRY_ASSIGN(out, impl.parse_sections(face, identity));
  }
  for (const auto& item : identity.items()) {
    out[item.key()] = item.value();
  }
  out["format_version"] = 1;
  const ordered_json& kind_schema = impl.schemas.root.value("properties", ordered_json::object());
  if (kind_schema.contains("kind")) {
    out["kind"] = impl.kind;
  }
  return out;
}

const core::JsonSchema& FaceCodec::schema() const { return m_impl->validator; }
const std::string& FaceCodec::format() const { return m_impl->format; }

}  // namespace avps::artifacts
