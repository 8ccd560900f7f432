// The sim backend: dispatch, failure injection, usage, and the generated image. The generators
// themselves live in src/backends/sim/, one file per layer.
//
// Failure injection, per skill: with probability failure_rates[skill] the output stays
// schema-valid but trips the skill's real gate, as below; fix_rates[skill] gives the FIX outcome
// where one exists.
//
// clang-format off
//   skill                       injected failure                               trips (rule, or named check)
//   story-architect             the midpoint scene's conflict is blank (" ")   scene_fields_non_empty
//   script-breakdown            S01's new_locations_introduced lacks its set   breakdown_matches_scenes
//   character-psychology        drift_warning YES (a reaction, no catalyst)    rule /drift_warning
//   narrative-red-team          a critical failure (a climax won by luck)      nothing yet (see below)
//   audience-simulator          clarity_score below audience_clarity           rule /clarity_score
//   dialogue-consistency-check  one speaker's distinctiveness below minimum    rule /distinctiveness_score
//   research-agent              C1 Disputed, risk high, no mitigation          truth_high_risk_addressed
//   plausibility-auditor        logistical 0, total below plaus_total          rules /total_score, any_zero
//   cultural-check              authenticity 2 (period slang, a stereotype)    rule /authenticity_score
//   character-lock              "maybe" in canonical_appearance/eyes           lock_hedge_words
//   set-lock                    "Perhaps" in lighting_rules                    lock_hedge_words
//   voice-lock                  "usually" in cadence_rhythm                    lock_hedge_words
//   world-state-tracker         an injury removed without a heal, else an      world_state_continuity
//                               unrecorded character who learns something
//   continuity-supervisor       a High contradiction                           rule /severity_level
//   shot-planner                the last shot hero A in a wide frame           shotlist_heuristics
//   storyboard-generator        Simplify (fix: Adjust)                         rules /recommendation
//   qc-grader                   face 0 + facial_identity_drift (no one in      qc_verdict_from_scores
//                               frame: set 0 + lock_violation); fix: total =
//                               threshold - 1; media_failure_rates[the
//                               GenPack's tier] replaces the rate
//   regen-analyzer              none (its gate is the engine's checks for the   -
//                               shot, which the sim's rules always meet)
// clang-format on
//
// narrative-red-team's skill.json has no gate rule, so its injected critical failure shows only in
// the artifact (and in the model's own gate object, which avps recomputes) until a rule such as
// {"type": "count", "field": "/critical_failures", "max": 0} is added.

#include "avps/backends/sim_backend.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <thread>

#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/core/hash.hpp"
#include "avps/core/process.hpp"
#include "sim/sim_internal.hpp"

namespace avps::backends {
using nlohmann::json;

namespace sim {
namespace {

struct SkillEntry {
  const char* name;
  Generator generator;
  const char* primary;  // the output kind a single output_schema gets
  bool has_fix;         // whether the skill's gate has a FIX outcome the sim can land on
  bool several;         // whether the model returns several kinds (story-architect)
};

const std::array<SkillEntry, 18>& skill_table() {
  static const std::array<SkillEntry, 18> k_table = {{
      {"story-architect", story_architect, "SCENES", false, true},
      {"script-breakdown", script_breakdown, "BREAKDOWN", false, false},
      {"character-psychology", character_psychology, "PSYCH", false, false},
      {"narrative-red-team", narrative_red_team, "REDTEAM", false, false},
      {"audience-simulator", audience_simulator, "AUDIENCE", false, false},
      {"dialogue-consistency-check", dialogue_consistency_check, "DIALOGUE_CHECK", false, false},
      {"research-agent", research_agent, "TRUTH", false, false},
      {"plausibility-auditor", plausibility_auditor, "PLAUS", false, false},
      {"cultural-check", cultural_check, "CULTURE", false, false},
      {"character-lock", character_lock, "CHAR_LOCK", false, false},
      {"set-lock", set_lock, "SET_LOCK", false, false},
      {"voice-lock", voice_lock, "VOICE_LOCK", false, false},
      {"world-state-tracker", world_state_tracker, "STATE_DIFF", false, false},
      {"continuity-supervisor", continuity_supervisor, "CONTINUITY_REPORT", false, false},
      {"shot-planner", shot_planner, "SHOTLIST", false, false},
      {"storyboard-generator", storyboard_generator, "STORYBOARD_REPORT", true, false},
      {"qc-grader", qc_grader, "QC_BATCH", true, false},
      {"regen-analyzer", regen_analyzer, "REGEN_RULES", false, false},
  }};
  return k_table;
}

const SkillEntry* find_entry(std::string_view skill) {
  for (const SkillEntry& entry : skill_table()) {
    if (skill == entry.name) {
      return &entry;
    }
  }
  return nullptr;
}

}  // namespace

Generator find_generator(std::string_view skill) {
  const SkillEntry* entry = find_entry(skill);
  return entry == nullptr ? nullptr : entry->generator;
}

const std::vector<std::string>& generator_names() {
  static const std::vector<std::string> k_names = [] {
    std::vector<std::string> names;
    for (const SkillEntry& entry : skill_table()) {
      names.emplace_back(entry.name);
    }
    return names;
  }();
  return k_names;
}

}  // namespace sim

namespace {

// ---- settings ---------------------------------------------------------------------------------

Error settings_error(const std::string& message) {
  return make_error(ErrorCode::invalid_argument, "sim settings: " + message);
}

Result<std::map<std::string, double, std::less<>>> read_rates(const json& block, const char* key,
                                                              const std::vector<std::string>& allowed_keys) {
  std::map<std::string, double, std::less<>> out;
  auto it = block.find(key);
  if (it == block.end() || it->is_null()) {
    return out;
  }
  if (!it->is_object()) {
    return settings_error(std::string(key) + " must be an object of probabilities");
  }
  for (const auto& [name, rate] : it->items()) {
    if (!allowed_keys.empty() &&
        std::find(allowed_keys.begin(), allowed_keys.end(), name) == allowed_keys.end()) {
      return settings_error(std::string(key) + "." + name + " is not one of " + sim::join(allowed_keys));
    }
    if (!rate.is_number() || rate.get<double>() < 0 || rate.get<double>() > 1 ||
        std::isnan(rate.get<double>())) {
      return settings_error(std::string(key) + "." + name + " must be a number from 0 to 1");
    }
    out[name] = rate.get<double>();
  }
  return out;
}

double rate_of(const std::map<std::string, double, std::less<>>& rates, std::string_view key) {
  auto it = rates.find(key);
  return it == rates.end() ? 0.0 : it->second;
}

// The rate a key "skill@ID" gives the call about that shot, scene or entity (the most specific
// one the request's scope names), if any: a test freezes one shot with "qc-grader@S02_SH01".
std::optional<double> scoped_rate(const std::map<std::string, double, std::less<>>& rates, const ModelRequest& request) {
  for (const char* id_key : {"shot_id", "scene_id", "entity_id"}) {
    const std::string id = request.scope.is_object() ? request.scope.value(id_key, "") : "";
    if (auto it = rates.find(request.skill + "@" + id); !id.empty() && it != rates.end()) {
      return it->second;
    }
  }
  return std::nullopt;
}

// A rate's key names a skill the sim answers, alone or with "@ID" (a shot, scene or entity id).
Result<void> check_rate_keys(const std::map<std::string, double, std::less<>>& rates, const char* key) {
  const std::vector<std::string>& names = sim::generator_names();
  for (const auto& [name, rate] : rates) {
    const std::string skill = name.substr(0, name.find('@'));
    if (std::find(names.begin(), names.end(), skill) == names.end() || name.size() == skill.size() + 1) {
      return settings_error(std::string(key) + "." + name + ": expected a skill the sim answers, alone or as " +
                            "skill@ID for one shot, scene or entity (skills: " + sim::join(names) + ")");
    }
  }
  return ok();
}

// ---- the shape of the answer ------------------------------------------------------------------

// The artifact (or, for a row schema, the row) the request's output_schema asks for.
json shape_artifacts(const sim::Outputs& outputs, const json& schema, const sim::SkillEntry& entry);

// The answer as the output schema asks for it, plus a paged call's "more" and "carry".
json shape_answer(const sim::Outputs& outputs, const json& schema, const sim::SkillEntry& entry) {
  json body = shape_artifacts(outputs, schema, entry);
  for (const char* paging_key : {"more", "carry"}) {
    if (auto it = outputs.find(paging_key); it != outputs.end() && body.is_object()) {
      body[paging_key] = it->second;
    }
  }
  return body;
}

json shape_artifacts(const sim::Outputs& outputs, const json& schema, const sim::SkillEntry& entry) {
  auto pick = [&](const std::string& kind) -> json {
    auto it = outputs.find(kind);
    return it == outputs.end() ? json::object() : it->second;
  };
  if (is_kind_map(schema)) {
    json body = json::object();
    for (const auto& [kind, part] : schema.items()) {
      body[kind] = pick(kind);
    }
    return body;
  }
  if (!schema.is_object() || schema.empty()) {
    if (entry.several) {
      json body = json::object();
      for (const auto& [kind, artifact] : outputs) {
        body[kind] = artifact;
      }
      return body;
    }
    return pick(entry.primary);
  }
  std::string kind = entry.primary;
  const json properties = schema.value("properties", json::object());
  if (properties.is_object() && properties.contains("kind") && properties["kind"].is_object() &&
      properties["kind"].contains("const") && properties["kind"]["const"].is_string() &&
      outputs.count(properties["kind"]["const"].get<std::string>())) {
    kind = properties["kind"]["const"].get<std::string>();
  }
  json artifact = pick(kind);
  // A schema for one table row (no "kind", no "rows", but the row's id member): answer the row.
  bool row_schema = properties.is_object() && !properties.contains("kind") && !properties.contains("rows") &&
                    (properties.contains("shot_id") || properties.contains("scene_id"));
  if (row_schema && artifact.contains("rows") && artifact["rows"].is_array() &&
      artifact["rows"].size() == 1) {
    return artifact["rows"][0];
  }
  return artifact;
}

// ---- the video --------------------------------------------------------------------------------

// ffmpeg on PATH, looked up once per process.
bool ffmpeg_installed() {
  static const bool k_found = core::on_path("ffmpeg");
  return k_found;
}

// A short MP4 of the frame `rgb` (width and height even): 4 frames a second for `seconds` (at
// least one frame, at most 2 s), MPEG-4 part 2, written bit-exact and single-threaded so the same
// frame gives the same bytes.
Result<std::string> encode_mp4(int width, int height, const std::vector<uint8_t>& rgb, double seconds) {
  AVPS_TRY_ASSIGN(core::ScratchDir dir, core::ScratchDir::make("avps-sim"));
  const int frames = std::clamp(static_cast<int>(std::lround(seconds * 4)), 1, 8);
  std::string raw;
  for (int i = 0; i < frames; ++i) {
    raw.append(reinterpret_cast<const char*>(rgb.data()), rgb.size());
  }
  AVPS_TRY(core::write_file_atomic(dir.path() / "frames.rgb", raw, core::Overwrite::no, core::Durability::cached));
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  const std::string in = (dir.path() / "frames.rgb").string();
  const std::string out = (dir.path() / "render.mp4").string();
  AVPS_TRY(core::run_program({"ffmpeg",   "-nostdin",       "-hide_banner",  "-loglevel",     "error",
                              "-f",       "rawvideo",       "-pix_fmt",      "rgb24",         "-s",
                              size,       "-framerate",     "4",             "-i",            in,
                              "-c:v",     "mpeg4",          "-q:v",          "5",             "-pix_fmt",
                              "yuv420p",  "-threads",       "1",             "-fflags",       "+bitexact",
                              "-flags:v", "+bitexact",      "-map_metadata", "-1",            "-f",
                              "mp4",      out},
                             "sim: encoding the render"));
  return core::read_file(out);
}

// ---- the image --------------------------------------------------------------------------------

uint32_t crc32(std::string_view data) {
  static const std::array<uint32_t, 256> k_table = [] {
    std::array<uint32_t, 256> table{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) {
        c = (c & 1U) != 0 ? 0xedb88320U ^ (c >> 1) : c >> 1;
      }
      table[n] = c;
    }
    return table;
  }();
  uint32_t c = 0xffffffffU;
  for (char ch : data) {
    c = k_table[(c ^ static_cast<uint8_t>(ch)) & 0xffU] ^ (c >> 8);
  }
  return c ^ 0xffffffffU;
}

void put_u32(std::string& out, uint32_t v) {
  out += static_cast<char>((v >> 24) & 0xff);
  out += static_cast<char>((v >> 16) & 0xff);
  out += static_cast<char>((v >> 8) & 0xff);
  out += static_cast<char>(v & 0xff);
}

void put_chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  put_u32(out, crc32(body));
}

// An 8-bit RGB PNG; the zlib stream uses stored (uncompressed) deflate blocks, so no zlib is needed
// and the bytes depend on the pixels alone.
std::string encode_png(int width, int height, const std::vector<uint8_t>& rgb) {
  std::string raw;
  for (int y = 0; y < height; ++y) {
    raw += '\0';  // filter: none
    raw.append(
        reinterpret_cast<const char*>(rgb.data()) + static_cast<size_t>(y) * static_cast<size_t>(width) * 3,
        static_cast<size_t>(width) * 3);
  }
  std::string zlib = "\x78\x01";
  for (size_t at = 0; at < raw.size() || at == 0; at += 65535) {
    size_t len = std::min<size_t>(65535, raw.size() - at);
    bool last = at + len >= raw.size();
    zlib += static_cast<char>(last ? 1 : 0);
    zlib += static_cast<char>(len & 0xff);
    zlib += static_cast<char>((len >> 8) & 0xff);
    zlib += static_cast<char>(~len & 0xff);
    zlib += static_cast<char>((~len >> 8) & 0xff);
    zlib.append(raw, at, len);
    if (last) {
      break;
    }
  }
  uint32_t a = 1;
  uint32_t b = 0;
  for (char ch : raw) {
    a = (a + static_cast<uint8_t>(ch)) % 65521U;
    b = (b + a) % 65521U;
  }
  put_u32(zlib, (b << 16) | a);

  std::string png = "\x89PNG\r\n\x1a\n";
  std::string header;
  put_u32(header, static_cast<uint32_t>(width));
  put_u32(header, static_cast<uint32_t>(height));
  header += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB, deflate, no filter, no interlace
  put_chunk(png, "IHDR", header);
  put_chunk(png, "IDAT", zlib);
  put_chunk(png, "IEND", "");
  return png;
}

std::array<uint8_t, 3> colour_of(const std::string& hex) {
  auto byte = [&](size_t at) { return static_cast<uint8_t>(std::stoul(hex.substr(at, 2), nullptr, 16)); };
  return {byte(0), byte(2), byte(4)};
}

bool parse_pixels(const std::string& pixels, int& width, int& height) {
  size_t x = pixels.find('x');
  if (x == std::string::npos || x == 0 || x + 1 >= pixels.size() || x > 5 || pixels.size() - x - 1 > 5) {
    return false;
  }
  for (size_t i = 0; i < pixels.size(); ++i) {
    if (i != x && (pixels[i] < '0' || pixels[i] > '9')) {
      return false;
    }
  }
  width = std::stoi(pixels.substr(0, x));
  height = std::stoi(pixels.substr(x + 1));
  return width > 0 && height > 0;
}

Error call_failure(ErrorCode code, std::string message) { return make_error(code, std::move(message)); }

// ---- revisions --------------------------------------------------------------------------------

// A string member that is prose a revision may reword: three words or more (never an id, an enum,
// a camera type or a blank an injected failure left), outside the gate object.
bool revisable(const std::string& key, const json& value) {
  if (!value.is_string() || key == "gate") {
    return false;
  }
  const std::string& text = value.get_ref<const std::string&>();
  return std::count(text.begin(), text.end(), ' ') >= 2;
}

struct Revisable {
  json::json_pointer at;
  int score = 0;
};

// Every revisable member under `node`, scored by how much of it the findings name: its key (2),
// the id its object carries (shot_id, scene_id, entity_id: 1), the entity id its object is filed
// under (1). In document order (object keys sorted), so the pick is deterministic.
void collect_revisable(const json& node, const json::json_pointer& at, const std::string& findings,
                       const std::string& filed_under, std::vector<Revisable>& out) {
  auto named = [&findings](const std::string& word) {
    return !word.empty() && findings.find(word) != std::string::npos;
  };
  if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) {
      if (node[i].is_object() || node[i].is_array()) {
        collect_revisable(node[i], at / i, findings, "", out);
      }
    }
    return;
  }
  if (!node.is_object()) {
    return;
  }
  int object_score = named(filed_under) ? 1 : 0;
  for (const char* id : {"shot_id", "scene_id", "entity_id"}) {
    if (node.contains(id) && node[id].is_string() && named(node[id].get<std::string>())) {
      object_score = std::max(object_score, 1);
    }
  }
  for (const auto& [key, value] : node.items()) {
    if (key == "gate" || key == "carry") {
      continue;  // the verdict is avps's; a paged answer's carry is not the artifact
    }
    if (revisable(key, value)) {
      out.push_back({at / key, object_score + (named(key) ? 2 : 0)});
    } else if (value.is_object() || value.is_array()) {
      collect_revisable(value, at / key, findings, key, out);
    }
  }
}

constexpr std::string_view k_revision_mark = " Revised after review";

// `value` with every revision mark (k_revision_mark up to its sentence's full stop) cut out of its
// strings.
void strip_revision_marks(json& value) {
  if (value.is_string()) {
    std::string text = value.get<std::string>();
    for (size_t at = text.find(k_revision_mark); at != std::string::npos; at = text.find(k_revision_mark, at)) {
      const size_t stop = text.find('.', at);
      text.erase(at, stop == std::string::npos ? std::string::npos : stop + 1 - at);
    }
    value = text;
  } else if (value.is_structured()) {
    for (json& member : value) {
      strip_revision_marks(member);
    }
  }
}

// A revision that carries findings changes what they name (never the same content twice): each
// SHOTLIST row of a shot the findings name is simplified (complexity one step down, one second
// shorter, never under 2 s), and in every artifact of the answer the prose member the findings (or
// the loop revised for: its scene or shot) name most, else the first, says which revision it is.
// The label is the loop it revises for, the attempt and what it revises (REVISING's digest), so
// two revisions of one artifact never coincide, and no output of a revision is left as it was.
void revise_answer(json& answer, const ModelRequest& request) {
  const json scope = request.scope.is_object() ? request.scope : json::object();
  const json revision_for = scope.value("revision_for", json::object());
  const std::string loop = revision_for.is_object() ? revision_for.value("loop", "") : "";
  std::string findings = loop + "\n";
  for (const json& finding : request.findings) {
    findings += (finding.is_string() ? finding.get<std::string>() : finding.dump()) + "\n";
  }
  std::string label(k_revision_mark);
  if (!loop.empty()) {
    label += " for " + loop + " (its attempt " + std::to_string(revision_for.value("attempt", 0)) + ")";
  }
  label += ", attempt " + std::to_string(scope.value("attempt", 1));
  const json revising = request.inputs.is_object() ? request.inputs.value("REVISING", json::object()) : json();
  // Of what it revises (its content, or a paged request's names of it): the same findings on
  // another version are another revision, as a model's would be, not a return to an earlier one.
  if (const json of = revising.is_object() && !revising.empty() ? revising : scope.value("revising", json());
      of.is_object() && !of.empty()) {
    label += ", of " + core::sha256_hex(of.dump()).substr(0, 12);
  }
  label += ".";
  auto revise_artifact = [&](json& artifact) {
    if (artifact.value("kind", "") == "SHOTLIST" && artifact.contains("rows") && artifact["rows"].is_array()) {
      // A re-plan starts from the plan it revises (REVISING), so the shots simplified before stay so.
      const json previous = revising.is_object() ? revising.value("SHOTLIST", json::object()) : json::object();
      if (previous.is_object() && previous.contains("rows") && previous["rows"].is_array() &&
          !previous["rows"].empty()) {
        artifact["rows"] = previous["rows"];
      }
      bool simplified = false;
      for (json& row : artifact["rows"]) {
        const std::string shot = row.is_object() ? row.value("shot_id", "") : "";
        const bool named = !shot.empty() && findings.find(shot) != std::string::npos;
        if (!named) {
          continue;
        }
        const json before = row;
        row["complexity_level"] = row.value("complexity_level", "") == "high" ? "medium" : "low";
        if (row.contains("duration_s") && row["duration_s"].is_number() && row["duration_s"].get<double>() > 2.0) {
          row["duration_s"] = std::max(2.0, row["duration_s"].get<double>() - 1.0);
        }
        simplified = simplified || row != before;
      }
      if (simplified) {
        return;  // the change the findings asked for; no mark, so a later re-plan reproduces the row
      }
    }
    std::vector<Revisable> found;
    collect_revisable(artifact, json::json_pointer(), findings, "", found);
    if (found.empty()) {
      return;
    }
    const Revisable* best = &found.front();
    for (const Revisable& candidate : found) {
      if (candidate.score > best->score) {
        best = &candidate;
      }
    }
    artifact[best->at] = artifact[best->at].get<std::string>() + label;
  };
  if (!answer.is_object()) {
    return;
  }
  if (answer.contains("kind")) {
    revise_artifact(answer);
    return;
  }
  for (auto& member : answer.items()) {  // several kinds in one answer (story-architect)
    if (member.value().is_object() && member.value().contains("kind")) {
      revise_artifact(member.value());
    }
  }
}

}  // namespace

Result<SimSettings> SimSettings::from_json(const json& sim_block) {
  SimSettings settings;
  if (sim_block.is_null()) {
    return settings;
  }
  if (!sim_block.is_object()) {
    return settings_error("the sim block must be an object");
  }
  for (const auto& [key, value] : sim_block.items()) {
    if (key != "latency_ms" && key != "min_shots_per_scene" && key != "media" && key != "failure_rates" &&
        key != "fix_rates" && key != "media_failure_rates" && key != "qc_violations" && key != "identical_revisions") {
      return settings_error("unknown key \"" + key +
                            "\" (expected latency_ms, min_shots_per_scene, media, failure_rates, fix_rates, "
                            "media_failure_rates, qc_violations, identical_revisions)");
    }
  }
  if (auto same = sim_block.find("identical_revisions"); same != sim_block.end() && !same->is_null()) {
    if (!same->is_boolean()) {
      return settings_error("identical_revisions must be true or false");
    }
    settings.identical_revisions = same->get<bool>();
  }
  if (auto media = sim_block.find("media"); media != sim_block.end() && !media->is_null()) {
    if (!media->is_string() || (*media != "auto" && *media != "video" && *media != "image")) {
      return settings_error("media must be \"auto\", \"video\" or \"image\"");
    }
    settings.media = media->get<std::string>();
  }
  if (auto shots = sim_block.find("min_shots_per_scene"); shots != sim_block.end() && !shots->is_null()) {
    if (!shots->is_number_integer() || shots->get<int64_t>() < 0 || shots->get<int64_t>() > 12) {
      return settings_error("min_shots_per_scene must be an integer from 0 to 12");
    }
    settings.min_shots_per_scene = shots->get<int>();
  }
  if (auto latency = sim_block.find("latency_ms"); latency != sim_block.end() && !latency->is_null()) {
    if (!latency->is_number_integer() || latency->get<int64_t>() < 0 || latency->get<int64_t>() > 600000) {
      return settings_error("latency_ms must be an integer from 0 to 600000");
    }
    settings.latency_ms = latency->get<int64_t>();
  }
  AVPS_TRY_ASSIGN(settings.failure_rates, read_rates(sim_block, "failure_rates", {}));
  AVPS_TRY(check_rate_keys(settings.failure_rates, "failure_rates"));
  AVPS_TRY_ASSIGN(settings.fix_rates, read_rates(sim_block, "fix_rates", {}));
  AVPS_TRY(check_rate_keys(settings.fix_rates, "fix_rates"));
  AVPS_TRY_ASSIGN(settings.media_failure_rates,
                  read_rates(sim_block, "media_failure_rates", {"gen_premium", "gen_mid", "gen_low"}));
  if (auto rules = sim_block.find("qc_violations"); rules != sim_block.end() && !rules->is_null()) {
    if (!rules->is_object()) {
      return settings_error("qc_violations must be an object: shot or scene id -> violation rule");
    }
    for (const auto& [id, rule] : rules->items()) {
      const bool known = rule.is_string() && (rule == "lock_violation" || rule == "world_state_contradiction" ||
                                              rule == "facial_identity_drift");
      if (!known) {
        return settings_error("qc_violations." + id +
                              ": expected lock_violation, world_state_contradiction or facial_identity_drift");
      }
      settings.qc_violations[id] = rule.get<std::string>();
    }
  }
  return settings;
}

SimBackend::SimBackend(SimSettings settings, uint64_t seed) : m_settings(std::move(settings)), m_seed(seed) {}

Result<std::unique_ptr<SimBackend>> SimBackend::from_config(const json& config) {
  if (!config.is_object()) {
    return settings_error("the configuration is not an object");
  }
  uint64_t seed = 0;
  if (auto it = config.find("seed"); it != config.end() && !it->is_null()) {
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
      return settings_error("seed must be a non-negative integer");
    }
    seed = it->get<uint64_t>();
  }
  AVPS_TRY_ASSIGN(SimSettings settings, SimSettings::from_json(config.value("sim", json())));
  if (auto it = config.find("thresholds"); it != config.end() && it->is_object()) {
    settings.thresholds = *it;
  }
  return std::make_unique<SimBackend>(std::move(settings), seed);
}

const std::vector<std::string>& SimBackend::supported_skills() { return sim::generator_names(); }

Result<ModelResponse> SimBackend::complete(const ModelRequest& request) const {
  Result<std::string> canonical = core::canonical_json(request.to_json());
  if (!canonical.ok()) {
    return call_failure(ErrorCode::invalid_argument, "sim: " + canonical.error().message);
  }
  if (m_settings.latency_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(m_settings.latency_ms));
  }
  // A skill without a generator of its own (a project's) is answered from its output schema.
  const sim::SkillEntry* entry = sim::find_entry(request.skill);

  // Every choice below comes from two streams: same request and seed, same bytes. They read the
  // request with a render known by its shot and attempt only, so a verdict does not hinge on the
  // encoder that made the file (an MP4 here, a PNG where ffmpeg is missing, other bytes under
  // another ffmpeg build). The content stream sees only what the answer is about (skill, scope,
  // inputs, schema): a revision of unchanged inputs writes the same text, so downstream work is
  // not made stale by re-rolled wording. The outcome stream sees the whole request (attempt,
  // findings, tier): each revision re-rolls whether the injected failure strikes again. Neither
  // sees the marks revisions leave in prose (revise_answer) nor what a revision starts from
  // (REVISING): a judge re-judging a revised input rolls as it would for that attempt of the
  // input as it was, so the marks that make a revision differ do not reshuffle every outcome.
  json decided = request.to_json();
  if (decided["inputs"].is_object() && decided["inputs"].contains("MEDIA") && decided["inputs"]["MEDIA"].is_object()) {
    decided["inputs"]["MEDIA"].erase("sha256");
    decided["inputs"]["MEDIA"].erase("path");
  }
  strip_revision_marks(decided["inputs"]);
  if (decided["inputs"].is_object()) {
    decided["inputs"].erase("REVISING");
  }
  if (decided["scope"].is_object()) {
    decided["scope"].erase("revising");  // a paged revision's names of what it revises
  }
  Result<std::string> decided_text = core::canonical_json(decided);
  if (!decided_text.ok()) {
    return call_failure(ErrorCode::invalid_argument, "sim: " + decided_text.error().message);
  }
  json about = decided;
  for (const char* volatile_key : {"findings", "model", "tier", "max_output_tokens"}) {
    about.erase(volatile_key);
  }
  if (about["scope"].is_object()) {
    for (const char* volatile_key : {"attempt", "revision", "revision_for"}) {
      about["scope"].erase(volatile_key);
    }
  }
  Result<std::string> about_text = core::canonical_json(about);
  if (!about_text.ok()) {
    return call_failure(ErrorCode::invalid_argument, "sim: " + about_text.error().message);
  }
  sim::Rng rng(core::sha256_hex("avps-sim\n" + std::to_string(m_seed) + "\n" + *decided_text));
  sim::Rng content_rng(core::sha256_hex("avps-sim-content\n" + std::to_string(m_seed) + "\n" + *about_text));
  sim::Call call{request, m_settings, content_rng, sim::Mode::pass, {}};
  call.brief = sim::parse_brief(sim::brief_text(call));
  double failure_rate = rate_of(m_settings.failure_rates, request.skill);
  if (request.skill == "qc-grader") {
    std::vector<json> packs = sim::artifacts_of(sim::input(call, "GENPACK"));
    std::string tier = packs.empty() ? "" : sim::str(packs.back().value("settings", json::object()), "tier");
    if (m_settings.media_failure_rates.count(tier)) {
      failure_rate = rate_of(m_settings.media_failure_rates, tier);
    }
  }
  failure_rate = scoped_rate(m_settings.failure_rates, request).value_or(failure_rate);
  bool fail = rng.chance(failure_rate);
  bool fix = rng.chance(scoped_rate(m_settings.fix_rates, request)
                            .value_or(rate_of(m_settings.fix_rates, request.skill)));
  call.mode = fail ? sim::Mode::fail : fix && entry && entry->has_fix ? sim::Mode::fix : sim::Mode::pass;

  json answer;
  try {
    if (entry == nullptr) {
      Result<json> made = sim::schema_answer(call);
      if (!made) {
        return call_failure(made.error().code, made.error().message);
      }
      answer = std::move(made).value();
    } else {
      answer = shape_answer(entry->generator(call), request.output_schema, *entry);
    }
    // The content stream does not see the findings (a revision of unchanged inputs is worded as
    // before), so what a revision changes is made here, unless the test setting says not to.
    if (!m_settings.identical_revisions && request.findings.is_array() && !request.findings.empty()) {
      revise_answer(answer, request);
    }
  } catch (const std::exception& e) {
    // Inputs of a shape no artifact has (a list where an object belongs): a bad request, and
    // never a crash of the engine's worker.
    return call_failure(ErrorCode::invalid_argument,
                                       "sim: " + request.skill + " cannot read its inputs: " + e.what());
  }
  Result<std::string> text = core::canonical_json(answer);
  if (!text.ok()) {
    return call_failure(ErrorCode::invalid_argument, "sim: " + text.error().message);
  }
  ModelResponse response;
  response.text = std::move(*text);
  if (request.max_output_tokens > 0 &&
      response.text.size() > static_cast<size_t>(request.max_output_tokens) * 4) {
    // Cut as a real model stops at its token limit, on a UTF-8 character boundary.
    size_t cut = static_cast<size_t>(request.max_output_tokens) * 4;
    while (cut > 0 && (static_cast<uint8_t>(response.text[cut]) & 0xC0U) == 0x80U) {
      --cut;
    }
    response.text.resize(cut);
  }
  response.usage.input_tokens = static_cast<int64_t>((canonical->size() + 3) / 4);
  response.usage.output_tokens = static_cast<int64_t>((response.text.size() + 3) / 4);
  response.model = request.model;
  return response;
}

Result<GenerationResult> SimBackend::generate(const GenerationRequest& request) const {
  Result<std::string> canonical = core::canonical_json(request.to_json());
  if (!canonical.ok()) {
    return call_failure(ErrorCode::invalid_argument, "sim: " + canonical.error().message);
  }
  int width = 0;
  int height = 0;
  if (!parse_pixels(request.pixels, width, height)) {
    return call_failure(ErrorCode::invalid_argument,
                                          "sim: pixels \"" + request.pixels + "\" is not <width>x<height>");
  }
  if (m_settings.latency_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(m_settings.latency_ms));
  }
  // Fit into 64x64, keeping the aspect ratio.
  const int longest = std::max(width, height);
  if (longest > 64) {
    width = std::max(1, static_cast<int>(std::lround(static_cast<double>(width) * 64.0 / longest)));
    height = std::max(1, static_cast<int>(std::lround(static_cast<double>(height) * 64.0 / longest)));
  }
  // Proxy and final renders are videos where ffmpeg can make them; storyboard frames are images.
  const bool video = request.resolution != "storyboard" &&
                     (m_settings.media == "video" || (m_settings.media == "auto" && ffmpeg_installed()));
  if (video) {
    width += width % 2;  // yuv420p wants even sides
    height += height % 2;
  }
  // A gradient from the shot's colour to the attempt's, with a band placed by the whole request.
  const std::string seed = std::to_string(m_seed);
  const std::array<uint8_t, 3> top = colour_of(core::sha256_hex(seed + "/" + request.shot_id));
  const std::array<uint8_t, 3> bottom =
      colour_of(core::sha256_hex(seed + "/" + request.shot_id + "#" + std::to_string(request.attempt)));
  const std::string digest = core::sha256_hex("avps-sim-media\n" + seed + "\n" + *canonical);
  const int band =
      static_cast<int>(std::stoul(digest.substr(0, 4), nullptr, 16) % static_cast<unsigned>(height));
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      size_t at = (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3;
      bool border = x == 0 || y == 0 || x == width - 1 || y == height - 1;
      bool in_band = std::abs(y - band) <= std::max(1, height / 16);
      for (size_t c = 0; c < 3; ++c) {
        int mixed = (top[c] * (height - 1 - y) + bottom[c] * y) / std::max(1, height - 1);
        rgb[at + c] = static_cast<uint8_t>(border ? 16 : in_band ? 255 - mixed : mixed);
      }
    }
  }
  GenerationResult result;
  if (video) {
    Result<std::string> mp4 = encode_mp4(width, height, rgb, request.duration_s);
    if (!mp4) {
      return call_failure(mp4.error().code, mp4.error().message);
    }
    result.media_bytes = std::move(mp4).value();
    result.extension = "mp4";
  } else {
    result.media_bytes = encode_png(width, height, rgb);
    result.extension = "png";
  }
  result.seconds_billed = request.duration_s;
  result.model = request.model;
  return result;
}

Result<Submitted<ModelResponse>> SimBackend::submit_model(const ModelRequest& request, CallTrace& trace) {
  trace.provider = "sim";
  AVPS_TRY_ASSIGN(ModelResponse response, complete(request));
  return Submitted<ModelResponse>{std::move(response), {}};
}

Result<Submitted<GenerationResult>> SimBackend::submit_generation(const GenerationRequest& request,
                                                                   CallTrace& trace) {
  trace.provider = "sim";
  AVPS_TRY_ASSIGN(GenerationResult result, generate(request));
  return Submitted<GenerationResult>{std::move(result), {}};
}

}  // namespace avps::backends
