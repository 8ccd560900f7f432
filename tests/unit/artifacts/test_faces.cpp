#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <random>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"

using namespace avps;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path k_root = AVPS_SOURCE_DATA_DIR;

std::string lower(std::string_view s) {
  std::string out;
  for (char c : s) {
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Kinds whose face a FaceCodec handles (RUN_LOG is the ledger's; STORYBOARD is an image, REPORT a
// page and CUT a video, each made by its producer).
std::vector<std::string> face_kinds() {
  std::vector<std::string> out;
  for (const artifacts::KindInfo& k : artifacts::kinds()) {
    if (k.kind != "RUN_LOG" && k.kind != "STORYBOARD" && k.kind != "REPORT" && k.kind != "CUT") {
      out.emplace_back(k.kind);
    }
  }
  return out;
}

json fixture(const std::string& kind) {
  return json::parse(core::read_file(k_root / "tests/fixtures/artifacts" / (lower(kind) + ".json")).value());
}

artifacts::ArtifactName name_for(const std::string& kind, const json& content) {
  std::string target;
  for (const char* field : {"scene_id", "shot_id", "entity_id", "target"}) {
    if (content.contains(field) && content[field].is_string()) {
      target = content[field].get<std::string>();
    }
  }
  const artifacts::KindInfo* info = artifacts::find_kind(kind);
  if (info->target == artifacts::TargetKind::none) {
    target.clear();
  }
  return artifacts::make_artifact_name(kind, target, 3).value();
}

// What the face of `kind` shows of `content`: everything, except the CSV kinds' envelope.
json visible(const artifacts::FaceCodec& codec, const std::string& kind, json content) {
  if (codec.format() == "csv") {
    json kept = {{"rows", content["rows"]}, {"format_version", 1}, {"kind", kind}};
    // A column of row items (QC_BATCH's violations) shows that list too.
    const json face = codec.schema().document().at("x-avps-face");
    if (face.contains("row_items")) {
      const std::string field = face["row_items"].at("field");
      kept[field] = content.value(field, json::array());
    }
    for (const char* field : {"scene_id", "target"}) {
      if (content.contains(field)) {
        kept[field] = content[field];
      }
    }
    return kept;
  }
  return content;
}

void check_round_trip(const artifacts::FaceCodec& codec, const std::string& kind, const json& content) {
  artifacts::ArtifactName name = name_for(kind, content);
  Result<std::string> face = codec.render(content);
  INFO(kind << (face ? "" : ": " + face.error().message));
  REQUIRE(face.ok());
  Result<json> parsed = codec.parse(*face, name);
  INFO("face:\n" << *face << (parsed ? "" : "\nparse error: " + parsed.error().message));
  REQUIRE(parsed.ok());
  // The property of DESIGN §2, and no field the face shows is lost or changed.
  CHECK(codec.render(*parsed).value() == *face);
  CHECK(*parsed == visible(codec, kind, content));
  if (codec.format() != "csv") {
    CHECK(codec.schema().validate(*parsed).empty());
  }
}

}  // namespace

TEST_CASE("every kind's fixture renders to a face that parses back to the same artifact", "[faces]") {
  for (const std::string& kind : face_kinds()) {
    DYNAMIC_SECTION(kind) {
      auto codec = artifacts::FaceCodec::load(k_root / "schemas", kind);
      INFO((codec ? "" : codec.error().message));
      REQUIRE(codec.ok());
      check_round_trip(*codec, kind, fixture(kind));
    }
  }
}

TEST_CASE("generated artifacts with hostile text round-trip through their faces", "[faces]") {
  // Strings that collide with the face syntax: headings, list markers, key separators, heredoc
  // markers, CSV quoting, numbers where text is expected, newlines and non-ASCII.
  const std::vector<std::string> nasty = {
      "plain words",    "a, b, c",        "say \"hi\"",          "- not a list",  "key: not a key",
      "## Claim List",  "[STYLE]",        "\\backslash",         "<<END",         "END",
      "42",             "[]",             "{}",                  "two\nlines",    "ends with newline\n",
      "  leading",      "trailing  ",     "Mara's café — é ü",   "\n\nblank start", "line\n## Crisis\nmore",
      "NA",             "true",           "a\\,b",               "x:y",           "-",
  };
  std::mt19937 random(20261125);
  int generated = 0;
  for (const std::string& kind : face_kinds()) {
    auto codec = artifacts::FaceCodec::load(k_root / "schemas", kind).value();
    const json base = fixture(kind);
    for (int round = 0; round < 80; ++round) {
      json content = base;
      // Replace string leaves at random (ids and enums are rejected by the schema below).
      std::function<void(json&)> mutate = [&](json& v) {
        if (v.is_string() && random() % 3 == 0) {
          v = nasty[random() % nasty.size()];
        } else if (v.is_array()) {
          for (json& item : v) {
            mutate(item);
          }
          if (!v.empty() && v[0].is_string() && random() % 3 == 0) {
            v.push_back(nasty[random() % nasty.size()]);
          }
        } else if (v.is_object()) {
          for (auto& item : v.items()) {
            if (item.key() != "kind" && item.key() != "format_version" && item.key() != "gate") {
              mutate(item.value());
            }
          }
        }
      };
      mutate(content);
      if (!codec.schema().validate(content).empty()) {
        continue;  // the mutation broke a pattern or enum: not a valid instance
      }
      ++generated;
      INFO(kind << " round " << round);
      check_round_trip(codec, kind, content);
    }
  }
  CHECK(generated > 500);  // enough valid instances to mean something
}

TEST_CASE("a face with a broken line is refused with the line and field named", "[faces]") {
  auto codec = artifacts::FaceCodec::load(k_root / "schemas", "PLAUS").value();
  json content = fixture("PLAUS");
  artifacts::ArtifactName name = name_for("PLAUS", content);
  std::string face = codec.render(content).value();

  // Scores are "Key: value" lines.
  size_t at = face.find("\nTotal Score: ");
  REQUIRE(at != std::string::npos);
  std::string bad_score = face;
  size_t value = at + std::string("\nTotal Score: ").size();
  bad_score.replace(value, bad_score.find('\n', value) - value, "lots");
  auto parsed = codec.parse(bad_score, name);
  REQUIRE_FALSE(parsed.ok());
  CHECK_THAT(parsed.error().message, Catch::Contains("total_score"));
  CHECK_THAT(parsed.error().message, Catch::Contains("line "));

  std::string missing = face;
  missing.erase(at + 1, face.find('\n', at + 1) - at);
  auto dropped = codec.parse(missing, name);
  REQUIRE_FALSE(dropped.ok());
  CHECK_THAT(dropped.error().message, Catch::Contains("Total Score"));

  std::string wrong_title = face;
  wrong_title.replace(0, wrong_title.find('\n'), "# Something else");
  auto titled = codec.parse(wrong_title, name);
  REQUIRE_FALSE(titled.ok());
  CHECK_THAT(titled.error().message, Catch::Contains("line 1"));
}

TEST_CASE("CSV faces keep the framework's header and quote list cells", "[faces]") {
  auto codec = artifacts::FaceCodec::load(k_root / "schemas", "SCENES").value();
  std::string face = codec.render(fixture("SCENES")).value();
  CHECK(face.rfind("scene_id,summary,goal,conflict,outcome,location,time_of_day,characters_present\n", 0) == 0);
  auto bad = codec.parse("scene_id,summary\nS01,x\n", artifacts::make_artifact_name("SCENES", "", 1).value());
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("header"));
}

TEST_CASE("a GenPack face holds each lock's face verbatim, in the six sections' order", "[faces]") {
  auto codec = artifacts::FaceCodec::load(k_root / "schemas", "GENPACK").value();
  json content = fixture("GENPACK");
  std::string face = codec.render(content).value();
  CHECK(face.find(content["style"]["text"].get<std::string>()) != std::string::npos);
  CHECK(face.find(content["set"]["text"].get<std::string>()) != std::string::npos);
  for (const json& character : content["characters"]) {
    CHECK(face.find(character["text"].get<std::string>()) != std::string::npos);
  }
  size_t last = 0;
  for (const char* heading : {"[STYLE]", "[SET]", "[CHARACTERS]", "[ACTION]", "[NEGATIVES / NO-DRIFT]", "[SETTINGS]"}) {
    size_t at = face.find(std::string("\n") + heading + "\n");
    REQUIRE(at != std::string::npos);
    CHECK(at >= last);
    last = at;
  }
}

// Found by fuzzing (tests/fuzz/fuzz_faces.cpp): parse took any text before "=" as a gate score's
// name and any JSON after it as its value, so a face could parse into JSON the schema accepts
// but render refuses ("gate score name ... cannot be shown in a face"): `avps artifact import`
// of such a face failed at the write, far from the line at fault.
TEST_CASE("a gate score that render could not show back is refused at its line", "[faces][fuzz]") {
  auto codec = artifacts::FaceCodec::load(k_root / "schemas", "PLAUS").value();
  json content = fixture("PLAUS");
  artifacts::ArtifactName name = name_for("PLAUS", content);
  const std::string face = codec.render(content).value();
  const size_t at = face.find("\nGate scores:");
  REQUIRE(at != std::string::npos);
  const size_t end = face.find('\n', at + 1);
  const int line = static_cast<int>(std::count(face.begin(), face.begin() + static_cast<std::ptrdiff_t>(at), '\n')) + 2;

  for (const std::string scores : {"Gate scores: plaus total=8", "Gate scores: total=\"8\"", "Gate scores: x=[1]"}) {
    INFO(scores);
    std::string bad = face;
    bad.replace(at + 1, end - at - 1, scores);
    auto parsed = codec.parse(bad, name);
    REQUIRE_FALSE(parsed.ok());
    CHECK_THAT(parsed.error().message, Catch::Contains("line " + std::to_string(line)));
  }
  std::string good = face;
  good.replace(at + 1, end - at - 1, "Gate scores: plaus_total=8, clarity-2=0.5");
  auto parsed = codec.parse(good, name);
  REQUIRE(parsed.ok());
  CHECK(codec.render(*parsed).ok());
}

TEST_CASE("a QC_BATCH face shows avps's verdict, the grader's claim beside it and each row's violations",
          "[faces]") {
  auto codec = artifacts::FaceCodec::load(k_root / "schemas", "QC_BATCH").value();
  json content = fixture("QC_BATCH");
  content["violations"].push_back({{"shot_id", "S01_SH03"},
                                   {"attempt_number", 1},
                                   {"rule", "lock_violation"},
                                   {"description", "The jacket is red, not grey, in frames 10\\20, and 30"}});
  const std::string face = codec.render(content).value();
  const std::vector<std::string> lines = [&face] {
    std::vector<std::string> out;
    std::string line;
    for (char c : face) {
      if (c == '\n') {
        out.push_back(line);
        line.clear();
      } else {
        line += c;
      }
    }
    return out;
  }();
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] ==
        "shot_id,attempt_number,face_consistency,wardrobe_consistency,set_continuity,prop_accuracy,"
        "lighting_consistency,motion_integrity,audio_consistency,total_score,verdict,model_verdict,notes,violations");
  // SH02: avps says FIX where the grader claimed PASS; no violation.
  CHECK(lines[2].find(",9,FIX,PASS,") != std::string::npos);
  CHECK(lines[2].back() == ',');
  // SH03: both violations in its row, "rule: description", a comma or backslash in the text escaped.
  CHECK(lines[3].find(",9,FAIL,FAIL,") != std::string::npos);
  CHECK(lines[3].find("facial_identity_drift: Eyebrow scar missing; jawline changed., lock_violation: The jacket is "
                      "red\\, not grey\\, in frames 10\\\\20\\, and 30") != std::string::npos);
  // And back: every row, claim and violation, in the order of the rows.
  const auto name = artifacts::make_artifact_name("QC_BATCH", "S01", 2).value();
  json parsed = codec.parse(face, name).value();
  CHECK(parsed["violations"] == content["violations"]);
  CHECK(parsed["rows"] == content["rows"]);
}

TEST_CASE("a QC_BATCH face of the earlier layout is refused, saying why", "[faces]") {
  auto codec = artifacts::FaceCodec::load(k_root / "schemas", "QC_BATCH").value();
  const std::string old_face =
      "shot_id,attempt_number,face_consistency,wardrobe_consistency,set_continuity,prop_accuracy,"
      "lighting_consistency,motion_integrity,audio_consistency,total_score,verdict,notes\n"
      "S01_SH01,1,2,2,2,2,2,2,NA,12,PASS,\n";
  auto parsed = codec.parse(old_face, artifacts::make_artifact_name("QC_BATCH", "S01", 1).value());
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().message.find("line 1: this QC_BATCH face has an earlier layout: layout 1") == 0);
  CHECK(parsed.error().message.find("grader's own verdict") != std::string::npos);
}

TEST_CASE("a QC violation that belongs to no row cannot be rendered, and a malformed one is refused at its row",
          "[faces]") {
  auto codec = artifacts::FaceCodec::load(k_root / "schemas", "QC_BATCH").value();
  json content = fixture("QC_BATCH");
  content["violations"][0]["attempt_number"] = 7;
  auto face = codec.render(content);
  REQUIRE_FALSE(face.ok());
  CHECK(face.error().message.find("matches no row, so the face cannot show it") != std::string::npos);

  content = fixture("QC_BATCH");
  std::string text = codec.render(content).value();
  const std::string item = "facial_identity_drift: Eyebrow scar missing; jawline changed.";
  text.replace(text.find(item), item.size(), "scar missing");
  auto parsed = codec.parse(text, artifacts::make_artifact_name("QC_BATCH", "S01", 2).value());
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().message == "row 4, column violations: \"scar missing\" is not \"rule: description\"");
}
