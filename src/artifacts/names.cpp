#include "avps/artifacts/names.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <utility>

#include "avps/core/text.hpp"

namespace avps::artifacts {
namespace {

constexpr std::size_t k_max_number_digits = 9;  // every id number and version fits an int
constexpr std::size_t k_max_run_digits = 20;    // run ids are ledger numbers (uint64)
constexpr std::size_t k_max_quoted_bytes = 120;
constexpr std::string_view k_lock_suffix = "_LOCK";
constexpr std::array<std::string_view, 4> k_banned_suffixes = {"_final", "_new", "_latest", "_updated"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_alnum(char c) { return is_digit(c) || is_upper(c) || is_lower(c); }
char to_upper(char c) { return is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c; }
bool is_control(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte < 0x20 || byte == 0x7f;
}
bool all_digits(std::string_view s) { return std::all_of(s.begin(), s.end(), is_digit); }

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return to_upper(x) == to_upper(y); });
}

// A number spelled with at least `width` digits, zero-padded only up to `width`, not zero:
// width 2 accepts 01..99, 100 and refuses 00, 1, 001.
bool is_canonical_number(std::string_view digits, std::size_t width) {
  if (digits.size() < width || digits.size() > k_max_number_digits || !all_digits(digits)) {
    return false;
  }
  if (digits.size() > width && digits.front() == '0') {
    return false;
  }
  return digits.find_first_not_of('0') != std::string_view::npos;
}

int to_int(std::string_view digits) {
  int value = 0;
  for (char c : digits) {
    value = value * 10 + (c - '0');
  }
  return value;
}

std::string zero_padded(int number, std::size_t width) {
  std::string digits = std::to_string(number);
  if (digits.size() < width) {
    digits.insert(0, width - digits.size(), '0');
  }
  return digits;
}

void append_hex_escape(std::string& out, char c) {
  static constexpr char k_hex[] = "0123456789abcdef";
  const auto byte = static_cast<unsigned char>(c);
  out += "\\x";
  out.push_back(k_hex[byte >> 4]);
  out.push_back(k_hex[byte & 0xf]);
}

// The text in double quotes for an error message: control characters and broken UTF-8 escaped
// so they are visible (and cannot move a terminal's cursor), long text cut with its size noted.
std::string quote(std::string_view text) {
  std::string out = "\"";
  std::size_t i = 0;
  while (i < text.size() && i < k_max_quoted_bytes) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      const std::size_t length = core::utf8_sequence_length(text, i);
      if (length > 0) {
        out.append(text.substr(i, length));
        i += length;
      } else {
        append_hex_escape(out, c);
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (is_control(c)) {
          append_hex_escape(out, c);
        } else {
          out.push_back(c);
        }
    }
    ++i;
  }
  out += '"';
  if (i < text.size()) {
    out += " (cut, " + std::to_string(text.size()) + " bytes)";
  }
  return out;
}

// Alphanumeric tokens of `text`; "_", ".", "-" and anything else separate them.
std::vector<std::string_view> alnum_tokens(std::string_view text) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_alnum(text[i])) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && is_alnum(text[end])) {
      ++end;
    }
    tokens.push_back(text.substr(i, end - i));
    i = end;
  }
  return tokens;
}

std::optional<std::string_view> banned_word(std::string_view token) {
  for (std::string_view suffix : k_banned_suffixes) {
    if (equals_ignore_case(token, suffix.substr(1))) {
      return suffix;
    }
  }
  return std::nullopt;
}

// The banned suffix ("_final") that ends an id such as an entity or target: "ALEX_NEW" has one,
// "NEW_YORK" does not (the rule is about version words tacked onto a name, not about words).
std::optional<std::string_view> find_banned_suffix(std::string_view text) {
  std::vector<std::string_view> tokens = alnum_tokens(text);
  return tokens.empty() ? std::nullopt : banned_word(tokens.back());
}

bool is_version_token(std::string_view token) {
  return token.size() >= 2 && (token[0] == 'v' || token[0] == 'V') &&
         std::all_of(token.begin() + 1, token.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The banned suffix in a file name: the last word of its stem (before "_LOCK" for locks, before
// the version) or any word between the version and the extension.
std::optional<std::string_view> find_banned_suffix_in_filename(std::string_view filename) {
  std::vector<std::string_view> tokens = alnum_tokens(filename);
  if (filename.find('.') != std::string_view::npos && !tokens.empty()) {
    tokens.pop_back();  // the extension
  }
  std::size_t version = tokens.size();
  for (std::size_t i = tokens.size(); i-- > 0;) {
    if (is_version_token(tokens[i])) {
      version = i;
      break;
    }
  }
  for (std::size_t i = version + 1; i < tokens.size(); ++i) {
    if (auto suffix = banned_word(tokens[i])) {
      return suffix;
    }
  }
  std::size_t end = version;
  if (end > 0 && equals_ignore_case(tokens[end - 1], "LOCK")) {
    --end;
  }
  return end == 0 ? std::nullopt : banned_word(tokens[end - 1]);
}

std::string banned_rule(std::string_view suffix) {
  return "carries the banned suffix \"" + std::string(suffix) +
         "\" (_final, _new, _latest and _updated are never part of a name; the version says which "
         "is newest)";
}

// UPPER_SNAKE shape of an entity id, banned tokens aside.
bool has_entity_shape(std::string_view s) {
  if (s.empty() || s.size() > k_max_entity_id_length || s.front() == '_' || s.back() == '_' ||
      s.find("__") != std::string_view::npos) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) { return is_upper(c) || is_digit(c) || c == '_'; });
}

// The kinds a project declared (declare_kinds), beside the shipped table. Entries are never
// freed, so a KindInfo* handed out stays valid; `active` is replaced whole under the lock.
struct DeclaredTable {
  std::shared_mutex mutex;
  std::deque<DeclaredKind> storage;        // owns the strings the KindInfos view
  std::deque<KindInfo> infos;              // one per storage entry
  std::vector<const KindInfo*> active;     // the current declaration, in the order given
  std::vector<const KindInfo*> by_prefix;  // shipped and active, longest prefix first
};

DeclaredTable& declared_table() {
  static DeclaredTable table;
  return table;
}

std::vector<const KindInfo*> longest_prefix_first(const std::vector<const KindInfo*>& declared) {
  std::vector<const KindInfo*> out;
  for (const KindInfo& info : kinds()) {
    out.push_back(&info);
  }
  out.insert(out.end(), declared.begin(), declared.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const KindInfo* a, const KindInfo* b) { return a->prefix.size() > b->prefix.size(); });
  return out;
}

const KindInfo* match_prefix(std::string_view stem) {
  DeclaredTable& table = declared_table();
  std::shared_lock lock(table.mutex);
  static const std::vector<const KindInfo*> k_shipped = longest_prefix_first({});
  const std::vector<const KindInfo*>& candidates = table.active.empty() ? k_shipped : table.by_prefix;
  for (const KindInfo* info : candidates) {
    if (stem == info->prefix || (stem.size() > info->prefix.size() && stem.starts_with(info->prefix) &&
                                 stem[info->prefix.size()] == '_')) {
      return info;
    }
  }
  return nullptr;
}

std::string known_prefixes() {
  std::string out;
  std::vector<KindInfo> all(kinds().begin(), kinds().end());
  for (const KindInfo& info : declared_kinds()) {
    all.push_back(info);
  }
  for (const KindInfo& info : all) {
    if (info.target == TargetKind::entity) {
      // Lock prefixes read better with their shape.
      out += (out.empty() ? "" : ", ") + std::string(info.prefix) + "_<ENTITY>_LOCK";
    } else {
      out += (out.empty() ? "" : ", ") + std::string(info.prefix);
    }
  }
  return out;
}

// Which rule `target` breaks for a kind, or nullopt if it is well-formed. Shared by parse and make
// so both accept exactly the same names.
std::optional<std::string> target_problem(const KindInfo& info, std::string_view target) {
  const std::string kind(info.kind);
  switch (info.target) {
    case TargetKind::none:
      if (!target.empty()) {
        return kind + " is project-wide and takes no target, but got " + quote(target);
      }
      return std::nullopt;
    case TargetKind::scene:
      if (!is_scene_id(target)) {
        return kind + " needs a scene id (S01..S99, S100, ...), not " + quote(target);
      }
      return std::nullopt;
    case TargetKind::shot:
      if (!is_shot_id(target)) {
        return kind + " needs a shot id (S01_SH01, S100_SH100, ...), not " + quote(target);
      }
      return std::nullopt;
    case TargetKind::target:
      if (!is_target_id(target)) {
        return kind + " needs a target (a scene id, ACT_<n>, E<nn>, PROJECT or RUN_<digits>), not " +
               quote(target);
      }
      return std::nullopt;
    case TargetKind::entity:
      if (target.empty()) {
        return kind + " names no entity (expected " + std::string(info.prefix) + "_<ENTITY>_LOCK)";
      }
      if (auto suffix = find_banned_suffix(target)) {
        return "entity " + quote(target) + " " + banned_rule(*suffix);
      }
      if (target.size() > k_max_entity_id_length) {
        return "entity " + quote(target) + " is longer than " + std::to_string(k_max_entity_id_length) +
               " characters";
      }
      if (!has_entity_shape(target)) {
        return "entity " + quote(target) +
               " is not UPPER_SNAKE (A-Z and 0-9 words joined by single \"_\")";
      }
      return std::nullopt;
  }
  return "unknown target kind";
}

// Position of the "_" before a trailing "_v<digits>" (or "_V<digits>", found so that it can be
// refused by name), or npos.
std::size_t version_separator(std::string_view base) {
  const std::size_t pos = base.rfind('_');
  if (pos == std::string_view::npos || pos + 2 >= base.size()) {
    return std::string_view::npos;
  }
  const char v = base[pos + 1];
  return (v == 'v' || v == 'V') && all_digits(base.substr(pos + 2)) ? pos : std::string_view::npos;
}

Error name_error(std::string_view filename, const std::string& rule) {
  return make_error(ErrorCode::invalid_argument, "artifact name " + quote(filename) + ": " + rule);
}

const KindInfo& known_kind(std::string_view kind) {
  const KindInfo* info = find_kind(kind);
  if (info == nullptr) {
    throw std::logic_error("internal error: ArtifactName with unknown kind " + quote(kind));
  }
  return *info;
}

}  // namespace

const std::vector<KindInfo>& kinds() {
  using TK = TargetKind;
  static const std::vector<KindInfo> table = {
      {"BEATS", "BEATS", TK::none, "md", "narrative"},
      {"SCENES", "SCENES", TK::none, "csv", "narrative"},
      {"BREAKDOWN", "BREAKDOWN", TK::none, "csv", "narrative"},
      {"PSYCH", "PSYCH", TK::scene, "md", "narrative"},
      {"DIALOGUE_CHECK", "DIALOGUE_CHECK", TK::scene, "md", "narrative"},
      {"TRUTH", "TRUTH", TK::scene, "md", "validation"},
      {"PLAUS", "PLAUS", TK::scene, "md", "validation"},
      {"CULTURE", "CULTURE", TK::scene, "md", "validation"},
      {"REDTEAM", "REDTEAM", TK::target, "md", "validation"},
      {"AUDIENCE", "AUDIENCE", TK::target, "md", "validation"},
      {"CHAR_LOCK", "CHAR", TK::entity, "txt", "continuity"},
      {"SET_LOCK", "SET", TK::entity, "txt", "continuity"},
      {"VOICE_LOCK", "VOICE", TK::entity, "txt", "continuity"},
      {"STYLE_LOCK", "STYLE", TK::entity, "txt", "continuity"},
      {"WORLD_STATE", "WORLD_STATE", TK::none, "json", "continuity"},
      {"STATE_DIFF", "STATE_DIFF", TK::scene, "json", "continuity"},
      {"CONTINUITY_REPORT", "CONTINUITY_REPORT", TK::target, "md", "continuity"},
      {"SHOTLIST", "SHOTLIST", TK::scene, "csv", "production"},
      {"STORYBOARD", "STORYBOARD", TK::shot, "png", "production"},
      {"STORYBOARD_REPORT", "STORYBOARD_REPORT", TK::shot, "md", "production"},
      {"GENPACK", "GENPACK", TK::shot, "txt", "production"},
      {"QC_BATCH", "QC_BATCH", TK::target, "csv", "production"},
      {"REGEN_RULES", "REGEN_RULES", TK::none, "md", "production"},
      {"COST_REPORT", "COST_REPORT", TK::target, "md", "governance"},
      {"ROUTING_DECISION", "ROUTING_DECISION", TK::target, "md", "governance"},
      {"BUDGET_STATUS", "BUDGET_STATUS", TK::none, "md", "governance"},
      {"RUN_LOG", "RUN_LOG", TK::none, "csv", "logs"},
      {"REPORT", "REPORT", TK::none, "html", "reports"},
      {"CUT", "CUT", TK::none, "mp4", "cut"},
  };
  return table;
}

const KindInfo* find_kind(std::string_view kind) {
  for (const KindInfo& info : kinds()) {
    if (info.kind == kind) {
      return &info;
    }
  }
  DeclaredTable& table = declared_table();
  std::shared_lock lock(table.mutex);
  for (const KindInfo* info : table.active) {
    if (info->kind == kind) {
      return info;
    }
  }
  return nullptr;
}

namespace {

// The folders a declared kind may live in: the layer folders of DESIGN §2 (the integrity gate
// walks them; media, logs, reports and cut are avps's own).
constexpr std::array<std::string_view, 5> k_layer_folders = {"narrative", "validation", "continuity", "production",
                                                             "governance"};
constexpr std::array<std::string_view, 4> k_face_extensions = {"md", "txt", "csv", "json"};
constexpr std::size_t k_max_kind_length = 40;

// Pseudo kinds a skill reads that are not versioned artifacts (skill.schema.json, input_kind).
bool is_pseudo_kind(std::string_view kind) { return kind == "BRIEF" || kind == "MEDIA"; }

Result<TargetKind> target_named(std::string_view word) {
  if (word == "project") {
    return TargetKind::none;
  }
  if (word == "scene") {
    return TargetKind::scene;
  }
  if (word == "shot") {
    return TargetKind::shot;
  }
  if (word == "target") {
    return TargetKind::target;
  }
  if (word == "entity") {
    return TargetKind::entity;
  }
  return make_error(ErrorCode::invalid_argument,
                    "target " + quote(word) + " is not one of project, scene, shot, target, entity");
}

}  // namespace

Result<std::optional<DeclaredKind>> read_kind_declaration(const nlohmann::json& schema, std::string_view file) {
  if (!schema.is_object() || !schema.contains("x-avps-artifact")) {
    return std::optional<DeclaredKind>();
  }
  const std::string where = std::string(file) + " x-avps-artifact";
  auto refuse = [&](const std::string& what) {
    return make_error(ErrorCode::invalid_argument,
                      where + ": " + what +
                          " (write {\"kind\": \"PROP_LIST\", \"target\": \"scene\", \"folder\": \"production\"}; "
                          "docs/formats/artifacts.md)");
  };
  const nlohmann::json& block = schema["x-avps-artifact"];
  if (!block.is_object()) {
    return refuse("must be an object");
  }
  for (const auto& [key, value] : block.items()) {
    if (key != "kind" && key != "target" && key != "folder") {
      return refuse("unknown member " + quote(key));
    }
    if (!value.is_string()) {
      return refuse(key + " must be a string");
    }
  }
  if (!block.contains("kind") || !block.contains("target") || !block.contains("folder")) {
    return refuse("kind, target and folder are all required");
  }
  DeclaredKind out;
  out.source = std::string(file);
  out.kind = block["kind"].get<std::string>();
  if (out.kind.empty() || out.kind.size() > k_max_kind_length || !is_upper(out.kind.front()) ||
      !has_entity_shape(out.kind)) {
    return refuse("kind " + quote(out.kind) + " is not UPPER_SNAKE starting with a letter, at most " +
                  std::to_string(k_max_kind_length) + " characters");
  }
  std::string expected_file;
  for (char c : out.kind) {
    expected_file += is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c;
  }
  expected_file += ".schema.json";
  if (file != expected_file) {
    return refuse("kind " + out.kind + " is looked for in " + expected_file + ", so its schema must be named so");
  }
  Result<TargetKind> target = target_named(block["target"].get<std::string>());
  if (!target) {
    return refuse(target.error().message);
  }
  out.target = *target;
  out.prefix = out.kind;
  if (out.target == TargetKind::entity) {
    if (!out.kind.ends_with(k_lock_suffix) || out.kind.size() == k_lock_suffix.size()) {
      return refuse("an entity kind is a lock: its kind ends in _LOCK (COSTUME_LOCK names COSTUME_<ENTITY>_LOCK_v001)");
    }
    out.prefix = out.kind.substr(0, out.kind.size() - k_lock_suffix.size());
  }
  out.folder = block["folder"].get<std::string>();
  if (std::find(k_layer_folders.begin(), k_layer_folders.end(), out.folder) == k_layer_folders.end()) {
    return refuse("folder " + quote(out.folder) +
                  " is not a layer folder (narrative, validation, continuity, "
                  "production, governance)");
  }
  const nlohmann::json* face =
      schema.contains("x-avps-face") && schema["x-avps-face"].is_object() ? &schema["x-avps-face"] : nullptr;
  if (face == nullptr || !face->contains("format") || !(*face)["format"].is_string() ||
      std::find(k_face_extensions.begin(), k_face_extensions.end(), (*face)["format"].get<std::string>()) ==
          k_face_extensions.end()) {
    return refuse(
        "the schema needs an x-avps-face block whose format (md, txt, csv or json) is the file's "
        "extension (docs/formats/faces.md)");
  }
  out.extension = (*face)["format"].get<std::string>();
  const nlohmann::json* kind_property =
      schema.contains("properties") && schema["properties"].is_object() && schema["properties"].contains("kind")
          ? &schema["properties"]["kind"]
          : nullptr;
  if (kind_property == nullptr || !kind_property->is_object() ||
      kind_property->value("const", nlohmann::json()) != out.kind) {
    return refuse("the schema's properties.kind must be {\"type\": \"string\", \"const\": \"" + out.kind +
                  "\"}, so an artifact says what it is");
  }
  return std::optional<DeclaredKind>(std::move(out));
}

std::vector<std::string> kind_declaration_problems(const std::vector<DeclaredKind>& declared) {
  std::vector<std::string> out;
  auto overlaps = [](std::string_view a, std::string_view b) {
    // One prefix followed by "_" begins the other: a name could be read as either kind.
    return a == b || (a.size() > b.size() && a.starts_with(b) && a[b.size()] == '_') ||
           (b.size() > a.size() && b.starts_with(a) && b[a.size()] == '_');
  };
  for (std::size_t i = 0; i < declared.size(); ++i) {
    const DeclaredKind& d = declared[i];
    const std::string at = d.source + ": kind " + d.kind;
    if (is_pseudo_kind(d.kind)) {
      out.push_back(at + " is an input avps provides itself; choose another name");
      continue;
    }
    if (auto suffix = find_banned_suffix(d.target == TargetKind::entity ? d.prefix : d.kind)) {
      out.push_back(at + " " + banned_rule(*suffix) + "; choose another name");
    }
    for (const KindInfo& shipped : kinds()) {
      if (shipped.kind == d.kind) {
        out.push_back(at +
                      " is a kind avps ships; a project replaces its schema without declaring it (drop the "
                      "x-avps-artifact block)");
      } else if (overlaps(d.prefix, shipped.prefix)) {
        out.push_back(at + ": its names (" + d.prefix + "_...) could be read as " + std::string(shipped.kind) +
                      " names (" + std::string(shipped.prefix) + "_...); choose a kind that neither begins with " +
                      std::string(shipped.prefix) + "_ nor is the start of it");
      }
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (declared[j].kind == d.kind) {
        out.push_back(at + " is declared twice (also in " + declared[j].source + ")");
      } else if (overlaps(d.prefix, declared[j].prefix)) {
        out.push_back(at + ": its names could be read as " + declared[j].kind + " names (" + declared[j].source +
                      "); choose prefixes where neither begins with the other and \"_\"");
      }
    }
  }
  return out;
}

Result<void> declare_kinds(const std::vector<DeclaredKind>& declared) {
  if (std::vector<std::string> problems = kind_declaration_problems(declared); !problems.empty()) {
    std::string message = "the project's artifact kinds cannot be declared:";
    for (const std::string& problem : problems) {
      message += "\n  " + problem;
    }
    return make_error(ErrorCode::invalid_argument, message);
  }
  DeclaredTable& table = declared_table();
  std::unique_lock lock(table.mutex);
  std::vector<const KindInfo*> active;
  for (const DeclaredKind& d : declared) {
    // A kind declared before in the same shape is the same entry (a process that opens one
    // project again, a test that declares twice), so what is stored stays bounded.
    const KindInfo* same = nullptr;
    for (std::size_t i = 0; i < table.storage.size() && same == nullptr; ++i) {
      const DeclaredKind& s = table.storage[i];
      if (s.kind == d.kind && s.prefix == d.prefix && s.target == d.target && s.extension == d.extension &&
          s.folder == d.folder) {
        same = &table.infos[i];
      }
    }
    if (same == nullptr) {
      const DeclaredKind& stored = table.storage.emplace_back(d);
      same = &table.infos.emplace_back(
          KindInfo{stored.kind, stored.prefix, stored.target, stored.extension, stored.folder});
    }
    active.push_back(same);
  }
  table.by_prefix = longest_prefix_first(active);
  table.active = std::move(active);
  return ok();
}

std::vector<KindInfo> declared_kinds() {
  DeclaredTable& table = declared_table();
  std::shared_lock lock(table.mutex);
  std::vector<KindInfo> out;
  for (const KindInfo* info : table.active) {
    out.push_back(*info);
  }
  return out;
}

std::string ArtifactName::stem() const {
  const KindInfo& info = known_kind(kind);
  std::string out(info.prefix);
  if (info.target != TargetKind::none) {
    out += '_';
    out += target;
  }
  if (info.target == TargetKind::entity) {
    out += k_lock_suffix;
  }
  return out;
}

std::string ArtifactName::filename() const {
  const KindInfo& info = known_kind(kind);
  return stem() + "_" + format_version(version) + "." + std::string(info.extension);
}

std::string ArtifactName::relative_path() const {
  return std::string(known_kind(kind).folder) + "/" + filename();
}

ArtifactName ArtifactName::with_version(int v) const {
  ArtifactName out = *this;
  out.version = v;
  return out;
}

std::string format_version(int version) {
  if (version < 1 || version > k_max_version) {
    throw std::logic_error("internal error: version " + std::to_string(version) + " is out of range");
  }
  return "v" + zero_padded(version, 3);
}

Result<int> parse_version(std::string_view text) {
  auto refuse = [&](const std::string& rule) {
    return make_error(ErrorCode::invalid_argument, "version " + quote(text) + ": " + rule);
  };
  if (text.empty() || text.front() != 'v') {
    return refuse("must start with a lower-case \"v\" (v001)");
  }
  const std::string_view digits = text.substr(1);
  if (digits.empty() || !all_digits(digits)) {
    return refuse("must be \"v\" followed by digits (v001)");
  }
  if (digits.size() < 3) {
    return refuse("must have 3 digits (v001..v999, then v1000)");
  }
  if (digits.size() > 3 && digits.front() == '0') {
    return refuse("has too many leading zeros (3 digits up to v999, then v1000 without padding)");
  }
  if (digits.size() > k_max_number_digits) {
    return refuse("is too large (at most v" + std::to_string(k_max_version) + ")");
  }
  const int value = to_int(digits);
  if (value == 0) {
    return refuse("versions start at v001");
  }
  return value;
}

Result<std::string> format_scene_id(int number) {
  if (number < 1 || number > k_max_version) {
    return make_error(ErrorCode::invalid_argument, "scene number " + std::to_string(number) +
                                                       " is out of range (1.." +
                                                       std::to_string(k_max_version) + ")");
  }
  return "S" + zero_padded(number, 2);
}

Result<std::string> format_shot_id(std::string_view scene, int number) {
  if (!is_scene_id(scene)) {
    return make_error(ErrorCode::invalid_argument,
                      "shot id: " + quote(scene) + " is not a scene id (S01..S99, S100, ...)");
  }
  if (number < 1 || number > k_max_version) {
    return make_error(ErrorCode::invalid_argument, "shot number " + std::to_string(number) +
                                                       " is out of range (1.." +
                                                       std::to_string(k_max_version) + ")");
  }
  return std::string(scene) + "_SH" + zero_padded(number, 2);
}

bool is_scene_id(std::string_view s) {
  return s.size() >= 3 && s.front() == 'S' && is_canonical_number(s.substr(1), 2);
}

bool is_shot_id(std::string_view s) {
  const std::size_t pos = s.find("_SH");
  return pos != std::string_view::npos && is_scene_id(s.substr(0, pos)) &&
         is_canonical_number(s.substr(pos + 3), 2);
}

bool is_target_id(std::string_view s) {
  if (s == "PROJECT" || is_scene_id(s)) {
    return true;
  }
  if (s.starts_with("ACT_")) {
    return is_canonical_number(s.substr(4), 1);
  }
  if (s.starts_with("E")) {
    return is_canonical_number(s.substr(1), 2);
  }
  if (s.starts_with("RUN_")) {
    const std::string_view digits = s.substr(4);
    return !digits.empty() && digits.size() <= k_max_run_digits && all_digits(digits);
  }
  return false;
}

bool is_entity_id(std::string_view s) { return has_entity_shape(s) && !find_banned_suffix(s); }

Result<ArtifactName> make_artifact_name(std::string_view kind, std::string_view target, int version) {
  const KindInfo* info = find_kind(kind);
  if (info == nullptr) {
    return make_error(ErrorCode::invalid_argument, "unknown artifact kind " + quote(kind));
  }
  if (auto problem = target_problem(*info, target)) {
    return make_error(ErrorCode::invalid_argument,
                      "cannot name a " + std::string(info->kind) + " artifact: " + *problem);
  }
  if (version < 1 || version > k_max_version) {
    return make_error(ErrorCode::invalid_argument, "cannot name a " + std::string(info->kind) +
                                                       " artifact: version " + std::to_string(version) +
                                                       " is out of range (1.." +
                                                       std::to_string(k_max_version) + ")");
  }
  return ArtifactName{std::string(info->kind), std::string(target), version};
}

Result<ArtifactName> parse_artifact_name(std::string_view filename) {
  // Checked in this order so that the first message names the most basic rule broken: path
  // safety, then banned suffixes (they may sit anywhere, even after the version), then shape.
  if (filename.empty()) {
    return make_error(ErrorCode::invalid_argument, "artifact name is empty");
  }
  if (std::any_of(filename.begin(), filename.end(), is_control)) {
    return name_error(filename, "contains a control character");
  }
  if (filename.find_first_of("/\\") != std::string_view::npos) {
    return name_error(filename, "contains a path separator; an artifact name is a single file name");
  }
  if (filename.find("..") != std::string_view::npos) {
    return name_error(filename, "contains \"..\"");
  }
  if (filename.front() == '.') {
    return name_error(filename, "starts with \".\" (hidden or temporary file)");
  }
  if (auto suffix = find_banned_suffix_in_filename(filename)) {
    return name_error(filename, banned_rule(*suffix));
  }
  const std::size_t dot = filename.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == filename.size()) {
    return name_error(filename, "has no extension (expected <STEM>_v001.<ext>)");
  }
  const std::string_view base = filename.substr(0, dot);
  const std::string_view extension = filename.substr(dot + 1);
  if (base.find('.') != std::string_view::npos) {
    return name_error(filename, "has more than one \".\" (expected <STEM>_v001.<ext>)");
  }

  const std::size_t version_pos = version_separator(base);
  if (version_pos == std::string_view::npos) {
    return name_error(filename, "has no version; expected \"_v001\" right before the extension");
  }
  auto version = parse_version(base.substr(version_pos + 1));
  if (!version.ok()) {
    return name_error(filename, version.error().message);
  }

  const std::string_view stem = base.substr(0, version_pos);
  if (stem.empty()) {
    return name_error(filename, "has nothing before the version");
  }
  if (std::any_of(stem.begin(), stem.end(), is_lower)) {
    return name_error(filename, "must be upper case before the version");
  }
  for (char c : stem) {
    if (!is_upper(c) && !is_digit(c) && c != '_') {
      return name_error(filename, "contains " + quote(std::string_view(&c, 1)) +
                                      "; names use only A-Z, 0-9 and \"_\"");
    }
  }
  if (stem.front() == '_' || stem.back() == '_' || stem.find("__") != std::string_view::npos) {
    return name_error(filename,
                      "has an empty part (\"__\", or \"_\" at the start or before the version)");
  }

  const KindInfo* info = match_prefix(stem);
  if (info == nullptr) {
    return name_error(filename,
                      "does not start with a known artifact prefix (" + known_prefixes() + ")");
  }
  if (extension != info->extension) {
    return name_error(filename, std::string(info->kind) + " files end in \"." +
                                    std::string(info->extension) + "\", not " +
                                    quote("." + std::string(extension)));
  }
  std::string_view target =
      stem == info->prefix ? std::string_view() : stem.substr(info->prefix.size() + 1);
  if (info->target == TargetKind::entity) {
    if (target.empty() || target == k_lock_suffix.substr(1)) {
      target = {};  // "CHAR", "CHAR_LOCK": reported below as naming no entity
    } else if (!target.ends_with(k_lock_suffix)) {
      return name_error(filename, std::string(info->kind) + " names have the shape " +
                                      std::string(info->prefix) + "_<ENTITY>_LOCK");
    } else {
      target.remove_suffix(k_lock_suffix.size());
    }
  }
  if (auto problem = target_problem(*info, target)) {
    return name_error(filename, *problem);
  }
  return ArtifactName{std::string(info->kind), std::string(target), version.value()};
}

bool looks_like_artifact_name(std::string_view filename) {
  if (filename.empty() || filename.front() == '.') {
    return false;
  }
  const std::size_t dot = filename.find('.');
  if (dot == std::string_view::npos || dot + 1 == filename.size()) {
    return false;
  }
  const std::string_view base = filename.substr(0, dot);
  if (!std::all_of(base.begin(), base.end(), [](char c) { return is_alnum(c) || c == '_'; })) {
    return false;
  }
  if (find_banned_suffix_in_filename(filename)) {
    return true;
  }
  return version_separator(base) != std::string_view::npos;
}

Result<std::string> normalize_entity_id(std::string_view display_name) {
  auto refuse = [&](const std::string& rule) {
    return make_error(ErrorCode::invalid_argument, "display name " + quote(display_name) + ": " + rule);
  };
  if (std::any_of(display_name.begin(), display_name.end(), is_control)) {
    return refuse("contains a control character");
  }
  if (display_name.find_first_of("/\\") != std::string_view::npos) {
    return refuse("contains a path separator (\"/\" or \"\\\")");
  }
  if (display_name.find("..") != std::string_view::npos) {
    return refuse("contains \"..\"");
  }
  std::string id;
  bool pending_separator = false;
  for (char c : display_name) {
    if (!is_alnum(c)) {
      pending_separator = !id.empty();
      continue;
    }
    if (pending_separator) {
      id += '_';
      pending_separator = false;
    }
    id += to_upper(c);
  }
  if (id.empty()) {
    return refuse("has no ASCII letters or digits to make an id from");
  }
  if (id.size() > k_max_entity_id_length) {
    return refuse("makes an id of " + std::to_string(id.size()) + " characters, more than " +
                  std::to_string(k_max_entity_id_length));
  }
  if (auto suffix = find_banned_suffix(id)) {
    return refuse("makes the id " + quote(id) + ", which " + banned_rule(*suffix));
  }
  return id;
}

}  // namespace avps::artifacts
