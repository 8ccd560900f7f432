#include <catch2/catch.hpp>
#include <functional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "avps/artifacts/names.hpp"

using namespace avps::artifacts;
using avps::ErrorCode;

namespace {

// The error message of a refused name; fails the test if the name was accepted or the error has
// another code.
std::string parse_error(std::string_view filename) {
  auto result = parse_artifact_name(filename);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == ErrorCode::invalid_argument);
  return result.error().message;
}

std::string normalize_error(std::string_view display_name) {
  auto result = normalize_entity_id(display_name);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == ErrorCode::invalid_argument);
  return result.error().message;
}

}  // namespace

TEST_CASE("the kinds table lists the 27 framework kinds and avps' REPORT and CUT with their prefix, extension and folder",
          "[names]") {
  REQUIRE(kinds().size() == 29);
  CHECK(kinds().front().kind == "BEATS");
  CHECK(kinds()[26].kind == "RUN_LOG");
  CHECK(find_kind("REPORT")->extension == "html");
  CHECK(find_kind("REPORT")->folder == "reports");
  CHECK(find_kind("CUT")->extension == "mp4");
  std::set<std::string_view> names;
  for (const KindInfo& info : kinds()) {
    names.insert(info.kind);
    CHECK(find_kind(info.kind) == &info);
  }
  CHECK(names.size() == kinds().size());

  const KindInfo* lock = find_kind("CHAR_LOCK");
  REQUIRE(lock != nullptr);
  CHECK(lock->prefix == "CHAR");
  CHECK(lock->target == TargetKind::entity);
  CHECK(lock->extension == "txt");
  CHECK(lock->folder == "continuity");
  CHECK(find_kind("STORYBOARD")->extension == "png");
  CHECK(find_kind("STORYBOARD_REPORT")->extension == "md");
  CHECK(find_kind("RUN_LOG")->folder == "logs");
  CHECK(find_kind("QC_BATCH")->target == TargetKind::target);
  CHECK(find_kind("CHAR") == nullptr);
  CHECK(find_kind("beats") == nullptr);
}

TEST_CASE("every kind's names parse back to the same name and format to the same file name", "[names]") {
  const std::vector<std::string> names = {
      "BEATS_v001.md",
      "SCENES_v002.csv",
      "BREAKDOWN_v001.csv",
      "PSYCH_S01_v001.md",
      "DIALOGUE_CHECK_S100_v003.md",
      "TRUTH_S07_v001.md",
      "PLAUS_S99_v001.md",
      "CULTURE_S12_v001.md",
      "REDTEAM_PROJECT_v001.md",
      "REDTEAM_ACT_1_v002.md",
      "AUDIENCE_E01_v001.md",
      "CHAR_ALEX_LOCK_v001.txt",
      "SET_ABANDONED_WAREHOUSE_LOCK_v002.txt",
      "VOICE_MARIA_LOCK_v002.txt",
      "STYLE_PROJECT_LOCK_v001.txt",
      "WORLD_STATE_v003.json",
      "STATE_DIFF_S01_v001.json",
      "CONTINUITY_REPORT_S01_v001.md",
      "SHOTLIST_S01_v001.csv",
      "STORYBOARD_S01_SH02_v001.png",
      "STORYBOARD_REPORT_S01_SH02_v001.md",
      "GENPACK_S01_SH02_v002.txt",
      "GENPACK_S100_SH100_v1000.txt",
      "QC_BATCH_S01_v001.csv",
      "QC_BATCH_RUN_42_v001.csv",
      "REGEN_RULES_v001.md",
      "COST_REPORT_PROJECT_v001.md",
      "ROUTING_DECISION_PROJECT_v999.md",
      "BUDGET_STATUS_v1000.md",
      "RUN_LOG_v001.csv",
      "REPORT_v001.html",
      "CUT_v002.mp4",
  };
  std::set<std::string> kinds_seen;
  for (const std::string& name : names) {
    INFO(name);
    auto parsed = parse_artifact_name(name);
    REQUIRE(parsed.ok());
    CHECK(parsed->filename() == name);
    kinds_seen.insert(parsed->kind);
    auto made = make_artifact_name(parsed->kind, parsed->target, parsed->version);
    REQUIRE(made.ok());
    CHECK(*made == *parsed);
  }
  CHECK(kinds_seen.size() == kinds().size());
}

TEST_CASE("parsed names expose kind, target, version, stem and project path", "[names]") {
  auto lock = parse_artifact_name("SET_ABANDONED_WAREHOUSE_LOCK_v002.txt");
  REQUIRE(lock.ok());
  CHECK(lock->kind == "SET_LOCK");
  CHECK(lock->target == "ABANDONED_WAREHOUSE");
  CHECK(lock->version == 2);
  CHECK(lock->stem() == "SET_ABANDONED_WAREHOUSE_LOCK");
  CHECK(lock->relative_path() == "continuity/SET_ABANDONED_WAREHOUSE_LOCK_v002.txt");
  CHECK(lock->with_version(3).filename() == "SET_ABANDONED_WAREHOUSE_LOCK_v003.txt");
  CHECK(lock->with_version(3).stem() == lock->stem());

  auto beats = parse_artifact_name("BEATS_v1000.md");
  REQUIRE(beats.ok());
  CHECK(beats->kind == "BEATS");
  CHECK(beats->target.empty());
  CHECK(beats->version == 1000);
  CHECK(beats->relative_path() == "narrative/BEATS_v1000.md");

  auto log = make_artifact_name("RUN_LOG", "", 1);
  REQUIRE(log.ok());
  CHECK(log->relative_path() == "logs/RUN_LOG_v001.csv");
}

TEST_CASE("the longest prefix wins, so kinds sharing a first word are told apart", "[names]") {
  auto report = parse_artifact_name("STORYBOARD_REPORT_S01_SH01_v001.md");
  REQUIRE(report.ok());
  CHECK(report->kind == "STORYBOARD_REPORT");
  CHECK(report->target == "S01_SH01");

  auto board = parse_artifact_name("STORYBOARD_S01_SH01_v001.png");
  REQUIRE(board.ok());
  CHECK(board->kind == "STORYBOARD");

  auto diff = parse_artifact_name("STATE_DIFF_S03_v001.json");
  REQUIRE(diff.ok());
  CHECK(diff->kind == "STATE_DIFF");
  CHECK(diff->target == "S03");

  CHECK_THAT(parse_error("STATE_S01_v001.json"), Catch::Contains("known artifact prefix"));
  CHECK_THAT(parse_error("CHARACTER_ALEX_LOCK_v001.txt"), Catch::Contains("known artifact prefix"));
  // A lock entity may begin like another kind's prefix; the lock prefix still decides.
  auto lock = parse_artifact_name("CHAR_REPORT_LOCK_v001.txt");
  REQUIRE(lock.ok());
  CHECK(lock->kind == "CHAR_LOCK");
  CHECK(lock->target == "REPORT");
}

TEST_CASE("versions have exactly three digits up to v999 and no padding from v1000 on", "[names]") {
  CHECK(format_version(1) == "v001");
  CHECK(format_version(42) == "v042");
  CHECK(format_version(999) == "v999");
  CHECK(format_version(1000) == "v1000");
  CHECK(format_version(12345) == "v12345");
  CHECK(format_version(k_max_version) == "v999999999");

  CHECK(parse_version("v001").value() == 1);
  CHECK(parse_version("v999").value() == 999);
  CHECK(parse_version("v1000").value() == 1000);
  CHECK(parse_version("v999999999").value() == k_max_version);
  for (std::string_view bad :
       {"v000", "v1", "v01", "v0001", "v01000", "V001", "001", "v", "v00a", "v-01", "v1000000000", ""}) {
    INFO(bad);
    auto result = parse_version(bad);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().code == ErrorCode::invalid_argument);
    CHECK_THAT(result.error().message, Catch::Contains("\"" + std::string(bad) + "\""));
  }
  for (int v = 1; v <= 1100; ++v) {
    REQUIRE(parse_version(format_version(v)).value() == v);
  }
}

TEST_CASE("formatting a version outside 1..k_max_version is a caller bug and throws", "[names]") {
  CHECK_THROWS_AS(format_version(0), std::logic_error);
  CHECK_THROWS_AS(format_version(-1), std::logic_error);
  CHECK_THROWS_AS(format_version(k_max_version + 1), std::logic_error);
  ArtifactName bad{"BEATS", "", 0};
  CHECK_THROWS_AS(bad.filename(), std::logic_error);
  ArtifactName unknown{"NOPE", "", 1};
  CHECK_THROWS_AS(unknown.filename(), std::logic_error);
  CHECK_THROWS_AS(unknown.relative_path(), std::logic_error);
}

TEST_CASE("names with a badly spelled version are refused and the message says why", "[names]") {
  CHECK_THAT(parse_error("BEATS_v1.md"), Catch::Contains("3 digits"));
  CHECK_THAT(parse_error("BEATS_v01.md"), Catch::Contains("3 digits"));
  CHECK_THAT(parse_error("BEATS_v000.md"), Catch::Contains("start at v001"));
  CHECK_THAT(parse_error("BEATS_v0001.md"), Catch::Contains("leading zeros"));
  CHECK_THAT(parse_error("BEATS_v01000.md"), Catch::Contains("leading zeros"));
  CHECK_THAT(parse_error("BEATS_V001.md"), Catch::Contains("lower-case \"v\""));
  CHECK_THAT(parse_error("BEATS.md"), Catch::Contains("has no version"));
  CHECK_THAT(parse_error("BEATS_001.md"), Catch::Contains("has no version"));
  CHECK_THAT(parse_error("BEATS_v001x.md"), Catch::Contains("has no version"));
  CHECK_THAT(parse_error("CHAR_X_LOCK_v2.txt"), Catch::Contains("3 digits"));
  CHECK_THAT(parse_error("BEATS_v1.md"), Catch::StartsWith("artifact name \"BEATS_v1.md\": "));
}

TEST_CASE("scene and shot ids are zero-padded to two digits and no further", "[names]") {
  CHECK(format_scene_id(1).value() == "S01");
  CHECK(format_scene_id(99).value() == "S99");
  CHECK(format_scene_id(100).value() == "S100");
  CHECK_FALSE(format_scene_id(0).ok());
  CHECK_FALSE(format_scene_id(-3).ok());
  CHECK(format_scene_id(0).error().code == ErrorCode::invalid_argument);
  CHECK(format_shot_id("S01", 2).value() == "S01_SH02");
  CHECK(format_shot_id("S100", 100).value() == "S100_SH100");
  CHECK_FALSE(format_shot_id("S01", 0).ok());
  CHECK_FALSE(format_shot_id("S001", 1).ok());
  CHECK_FALSE(format_shot_id("scene1", 1).ok());

  for (std::string_view good : {"S01", "S09", "S10", "S99", "S100", "S1234"}) {
    INFO(good);
    CHECK(is_scene_id(good));
  }
  for (std::string_view bad : {"S1", "S00", "S000", "S001", "S099", "s01", "S", "S0A", "SC01", "S01 ",
                               "scene1", "S1234567890"}) {
    INFO(bad);
    CHECK_FALSE(is_scene_id(bad));
  }
  for (std::string_view good : {"S01_SH01", "S01_SH99", "S100_SH100", "S07_SH10"}) {
    INFO(good);
    CHECK(is_shot_id(good));
  }
  for (std::string_view bad : {"SH3", "S01_SH3", "S01_SH00", "S01_SH001", "S001_SH01", "S01SH01",
                               "S01_sh01", "scene1_shot1", "S01_SH01_SH02", "S01_"}) {
    INFO(bad);
    CHECK_FALSE(is_shot_id(bad));
  }
  for (int n = 1; n <= 150; ++n) {
    REQUIRE(is_scene_id(format_scene_id(n).value()));
    REQUIRE(is_shot_id(format_shot_id("S01", n).value()));
  }
}

TEST_CASE("target ids are scene ids, acts, episodes, the project or run ids", "[names]") {
  for (std::string_view good : {"S01", "S100", "ACT_1", "ACT_12", "E01", "E99", "E100", "PROJECT",
                                "RUN_1", "RUN_000042", "RUN_12345678901234567890"}) {
    INFO(good);
    CHECK(is_target_id(good));
  }
  for (std::string_view bad :
       {"", "S001", "ACT_0", "ACT_01", "ACT_", "ACT1", "E1", "E00", "E001", "PROJECT_X", "project",
        "RUN_", "RUN_X", "RUN_123456789012345678901", "S01_SH01", "ALEX"}) {
    INFO(bad);
    CHECK_FALSE(is_target_id(bad));
  }
}

TEST_CASE("entity ids are UPPER_SNAKE of at most 64 characters without banned tokens", "[names]") {
  for (std::string_view good : {"ALEX", "ALEX_ORTEGA", "R2D2", "A_1_B", "NEWTON", "FINALE"}) {
    INFO(good);
    CHECK(is_entity_id(good));
  }
  CHECK(is_entity_id(std::string(64, 'A')));
  CHECK_FALSE(is_entity_id(std::string(65, 'A')));
  for (std::string_view bad : {"", "alex", "Alex", "ALEX__ORTEGA", "_ALEX", "ALEX_", "ALEX-ORTEGA",
                               "ALEX ORTEGA", "ALEX_NEW", "FINAL", "DRAFT_LATEST", "../X"}) {
    INFO(bad);
    CHECK_FALSE(is_entity_id(bad));
  }
}

TEST_CASE("a target that does not fit the kind is refused", "[names]") {
  CHECK_THAT(parse_error("PSYCH_v001.md"), Catch::Contains("needs a scene id"));
  CHECK_THAT(parse_error("PSYCH_S1_v001.md"), Catch::Contains("needs a scene id"));
  CHECK_THAT(parse_error("PSYCH_S001_v001.md"), Catch::Contains("needs a scene id"));
  CHECK_THAT(parse_error("PSYCH_S00_v001.md"), Catch::Contains("needs a scene id"));
  CHECK_THAT(parse_error("PSYCH_PROJECT_v001.md"), Catch::Contains("needs a scene id"));
  CHECK_THAT(parse_error("GENPACK_S01_v001.txt"), Catch::Contains("needs a shot id"));
  CHECK_THAT(parse_error("GENPACK_S01_SH1_v001.txt"), Catch::Contains("needs a shot id"));
  CHECK_THAT(parse_error("GENPACK_SH03_v001.txt"), Catch::Contains("needs a shot id"));
  CHECK_THAT(parse_error("REDTEAM_ALEX_v001.md"), Catch::Contains("needs a target"));
  CHECK_THAT(parse_error("REDTEAM_v001.md"), Catch::Contains("needs a target"));
  CHECK_THAT(parse_error("BEATS_S01_v001.md"), Catch::Contains("takes no target"));
  CHECK_THAT(parse_error("CHAR_LOCK_v001.txt"), Catch::Contains("names no entity"));
  CHECK_THAT(parse_error("CHAR_v001.txt"), Catch::Contains("names no entity"));
  CHECK_THAT(parse_error("CHAR_ALEX_v001.txt"), Catch::Contains("CHAR_<ENTITY>_LOCK"));
  CHECK_THAT(parse_error("CHAR_" + std::string(65, 'A') + "_LOCK_v001.txt"),
             Catch::Contains("longer than 64"));

  CHECK_THAT(make_artifact_name("PSYCH", "S1", 1).error().message, Catch::Contains("needs a scene id"));
  CHECK_THAT(make_artifact_name("BEATS", "S01", 1).error().message, Catch::Contains("takes no target"));
  CHECK_THAT(make_artifact_name("CHAR_LOCK", "alex", 1).error().message,
             Catch::Contains("not UPPER_SNAKE"));
  CHECK_THAT(make_artifact_name("CHAR_LOCK", "", 1).error().message, Catch::Contains("names no entity"));
  CHECK_THAT(make_artifact_name("CHAR_LOCK", "../ALEX", 1).error().message,
             Catch::Contains("not UPPER_SNAKE"));
  CHECK_THAT(make_artifact_name("CHAR", "ALEX", 1).error().message,
             Catch::Contains("unknown artifact kind"));
  CHECK_THAT(make_artifact_name("BEATS", "", 0).error().message, Catch::Contains("out of range"));
  CHECK_THAT(make_artifact_name("BEATS", "", -5).error().message, Catch::Contains("out of range"));
  CHECK(make_artifact_name("BEATS", "", 0).error().code == ErrorCode::invalid_argument);
}

TEST_CASE("a name whose extension is not its kind's is refused, naming the expected one", "[names]") {
  CHECK_THAT(parse_error("BEATS_v001.csv"), Catch::Contains("\".md\", not \".csv\""));
  CHECK_THAT(parse_error("BEATS_v001.MD"), Catch::Contains("\".md\", not \".MD\""));
  CHECK_THAT(parse_error("CHAR_ALEX_LOCK_v001.md"), Catch::Contains("\".txt\""));
  CHECK_THAT(parse_error("STORYBOARD_S01_SH01_v001.md"), Catch::Contains("\".png\""));
  CHECK_THAT(parse_error("BEATS_v001"), Catch::Contains("no extension"));
  CHECK_THAT(parse_error("BEATS_v001."), Catch::Contains("no extension"));
  CHECK_THAT(parse_error("BEATS_v001.md.bak"), Catch::Contains("more than one"));
}

TEST_CASE("names with a banned suffix are refused, naming the suffix", "[names]") {
  CHECK_THAT(parse_error("BEATS_final_v001.md"), Catch::Contains("banned suffix \"_final\""));
  CHECK_THAT(parse_error("BEATS_v001_final.md"), Catch::Contains("banned suffix \"_final\""));
  CHECK_THAT(parse_error("BEATS_FINAL_v001.md"), Catch::Contains("banned suffix \"_final\""));
  CHECK_THAT(parse_error("BEATS_final.md"), Catch::Contains("banned suffix \"_final\""));
  CHECK_THAT(parse_error("CHAR_ALEX_NEW_LOCK_v001.txt"), Catch::Contains("banned suffix \"_new\""));
  CHECK_THAT(parse_error("SCENES_Latest_v002.csv"), Catch::Contains("banned suffix \"_latest\""));
  CHECK_THAT(parse_error("WORLD_STATE_v003_updated.json"),
             Catch::Contains("banned suffix \"_updated\""));
  CHECK_THAT(parse_error("BEATS_v001.final.md"), Catch::Contains("banned suffix \"_final\""));
  // Only a whole word at the end of the name counts: these contain the letters, or the word
  // elsewhere, but carry no suffix.
  CHECK(parse_artifact_name("CHAR_NEWTON_LOCK_v001.txt").ok());
  CHECK(parse_artifact_name("SET_FINALE_STAGE_LOCK_v001.txt").ok());
  CHECK(parse_artifact_name("SET_NEW_YORK_LOCK_v001.txt").ok());
  CHECK(make_artifact_name("SET_LOCK", "NEW_YORK", 1).ok());
  CHECK_THAT(make_artifact_name("SET_LOCK", "YORK_NEW", 1).error().message,
             Catch::Contains("banned suffix \"_new\""));
}

TEST_CASE("names that could escape the folder or hide control characters are refused", "[names]") {
  CHECK_THAT(parse_error(""), Catch::Contains("empty"));
  CHECK_THAT(parse_error("narrative/BEATS_v001.md"), Catch::Contains("path separator"));
  CHECK_THAT(parse_error("..\\BEATS_v001.md"), Catch::Contains("path separator"));
  CHECK_THAT(parse_error("BEATS..v001.md"), Catch::Contains("\"..\""));
  CHECK_THAT(parse_error(".BEATS_v001.md"), Catch::Contains("starts with \".\""));
  // The control character shows up escaped in the message, never raw.
  const std::string with_newline = parse_error("BEATS_v001.md\nX");
  CHECK_THAT(with_newline, Catch::Contains("control character"));
  CHECK_THAT(with_newline, Catch::Contains("BEATS_v001.md\\nX"));
  CHECK(with_newline.find('\n') == std::string::npos);
  CHECK_THAT(parse_error(std::string("BEATS\0_v001.md", 14)), Catch::Contains("\\x00"));
  CHECK_THAT(parse_error("BEATS\x7f_v001.md"), Catch::Contains("\\x7f"));
}

TEST_CASE("names are refused unless upper case, plain characters and single underscores", "[names]") {
  CHECK_THAT(parse_error("beats_v001.md"), Catch::Contains("upper case"));
  CHECK_THAT(parse_error("Char_ALEX_LOCK_v001.txt"), Catch::Contains("upper case"));
  CHECK_THAT(parse_error("CHAR_ALEX-ORTEGA_LOCK_v001.txt"), Catch::Contains("\"-\""));
  CHECK_THAT(parse_error("CHAR_ALEX ORTEGA_LOCK_v001.txt"), Catch::Contains("\" \""));
  CHECK_THAT(parse_error("CHAR_JOS\xc3\x89_LOCK_v001.txt"), Catch::Contains("\\xc3"));
  CHECK_THAT(parse_error("CHAR__ALEX_LOCK_v001.txt"), Catch::Contains("empty part"));
  CHECK_THAT(parse_error("BEATS__v001.md"), Catch::Contains("empty part"));
  CHECK_THAT(parse_error("_BEATS_v001.md"), Catch::Contains("empty part"));
  CHECK_THAT(parse_error("_v001.md"), Catch::Contains("nothing before the version"));
}

TEST_CASE("long names are quoted cut short in messages", "[names]") {
  const std::string huge(10000, 'X');
  const std::string message = parse_error(huge + "_v001.md");
  CHECK(message.size() < 1000);
  CHECK_THAT(message, Catch::Contains("10008 bytes"));
}

TEST_CASE("hand-made files that look like artifact names are recognised", "[names]") {
  for (std::string_view yes :
       {"BEATS_v001.md", "CHAR_X_LOCK_v2.txt", "beats_v001.md", "BEATS_final.md", "BEATS_V001.md",
        "notes_new.txt", "BEATS_v001.md.bak", "GENPACK_S01_SH01_v0001.txt"}) {
    INFO(yes);
    CHECK(looks_like_artifact_name(yes));
  }
  for (std::string_view no :
       {"brief.md", "avps.json", "README.md", ".BEATS_v001.md.abc.tmp", "", "BEATS_v001", "BEATS_v.md",
        "BEATS_vx.md", "my notes_v1.md", "newton.md", "BEATS_v001."}) {
    INFO(no);
    CHECK_FALSE(looks_like_artifact_name(no));
  }
}

TEST_CASE("display names normalize to UPPER_SNAKE entity ids", "[names]") {
  CHECK(normalize_entity_id("Alex Ortega").value() == "ALEX_ORTEGA");
  CHECK(normalize_entity_id("the old warehouse (north)").value() == "THE_OLD_WAREHOUSE_NORTH");
  CHECK(normalize_entity_id("  Alex   ").value() == "ALEX");
  CHECK(normalize_entity_id("alex").value() == "ALEX");
  CHECK(normalize_entity_id("ALEX_ORTEGA").value() == "ALEX_ORTEGA");
  CHECK(normalize_entity_id("Agent 47").value() == "AGENT_47");
  CHECK(normalize_entity_id("R2-D2!!").value() == "R2_D2");
  CHECK(normalize_entity_id("__x__y__").value() == "X_Y");
  CHECK(normalize_entity_id("Dr. Maria-Jos\xc3\xa9 O'Neil").value() == "DR_MARIA_JOS_O_NEIL");
  CHECK(normalize_entity_id("Z\xc3\xbcrich Caf\xc3\xa9").value() == "Z_RICH_CAF");
  CHECK(normalize_entity_id("Newton").value() == "NEWTON");
  CHECK(normalize_entity_id(std::string(64, 'a')).value() == std::string(64, 'A'));
}

TEST_CASE("display names that are unsafe or empty are refused with a distinct message", "[names]") {
  const std::string traversal = normalize_error("../etc/passwd");
  CHECK_THAT(traversal, Catch::Contains("\"../etc/passwd\""));
  CHECK_THAT(normalize_error("a/b"), Catch::Contains("path separator"));
  CHECK_THAT(normalize_error("a\\b"), Catch::Contains("path separator"));
  CHECK_THAT(normalize_error("Wait..what"), Catch::Contains("\"..\""));
  CHECK_THAT(normalize_error(".."), Catch::Contains("\"..\""));

  const std::string newline = normalize_error("\n");
  CHECK_THAT(newline, Catch::Contains("control character"));
  CHECK_THAT(newline, Catch::Contains("\"\\n\""));
  CHECK(newline.find('\n') == std::string::npos);
  CHECK_THAT(normalize_error("Alex\tOrtega"), Catch::Contains("\"Alex\\tOrtega\""));
  CHECK_THAT(normalize_error("Alex\x1b[2J"), Catch::Contains("\\x1b"));
  CHECK_THAT(normalize_error("Alex\x7f"), Catch::Contains("control character"));

  CHECK_THAT(normalize_error("   "), Catch::Contains("no ASCII letters or digits"));
  CHECK_THAT(normalize_error(""), Catch::Contains("no ASCII letters or digits"));
  CHECK_THAT(normalize_error("\xc3\xa9\xc3\xa9"), Catch::Contains("no ASCII letters or digits"));
  CHECK_THAT(normalize_error("!?-"), Catch::Contains("no ASCII letters or digits"));

  const std::string long_input(65, 'a');
  const std::string too_long = normalize_error(long_input);
  CHECK_THAT(too_long, Catch::Contains("65 characters"));
  CHECK_THAT(too_long, Catch::Contains("\"" + long_input + "\""));

  CHECK_THAT(normalize_error("Alex New"), Catch::Contains("banned suffix \"_new\""));
  CHECK_THAT(normalize_error("the cut (final)"), Catch::Contains("banned suffix \"_final\""));
  CHECK(normalize_entity_id("New York").value() == "NEW_YORK");
  CHECK(normalize_entity_id("Final Girl").value() == "FINAL_GIRL");

  // Five reasons, five different messages.
  std::set<std::string> reasons;
  for (std::string_view input : {"a/b", "a..b", "a\nb", "   ", "b new"}) {
    std::string message = normalize_error(input);
    reasons.insert(message.substr(message.find("\": ") + 3));
  }
  CHECK(reasons.size() == 5);
}

TEST_CASE("non-UTF-8 bytes in a refused display name are shown escaped", "[names]") {
  const std::string message = normalize_error(std::string("\xff/x"));
  CHECK_THAT(message, Catch::Contains("\\xff"));
  // Valid UTF-8 is shown as is, so people can read their names.
  CHECK_THAT(normalize_error("Jos\xc3\xa9/x"), Catch::Contains("Jos\xc3\xa9/x"));
}

TEST_CASE("random names survive make, format and parse unchanged and stay one path component",
          "[names]") {
  std::mt19937 rng(20240611);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto entity = [&] {
    static constexpr char k_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    while (true) {
      std::string id;
      const int words = uniform(1, 4);
      for (int w = 0; w < words; ++w) {
        if (w > 0) {
          id += '_';
        }
        const int length = uniform(1, 12);
        for (int i = 0; i < length; ++i) {
          id += k_chars[uniform(0, 35)];
        }
      }
      if (is_entity_id(id)) {
        return id;
      }
    }
  };
  auto number = [&] { return uniform(0, 3) == 0 ? uniform(100, 2000) : uniform(1, 99); };
  auto target_for = [&](TargetKind kind) -> std::string {
    switch (kind) {
      case TargetKind::none:
        return "";
      case TargetKind::scene:
        return format_scene_id(number()).value();
      case TargetKind::shot:
        return format_shot_id(format_scene_id(number()).value(), number()).value();
      case TargetKind::entity:
        return entity();
      case TargetKind::target:
        switch (uniform(0, 4)) {
          case 0:
            return format_scene_id(number()).value();
          case 1:
            return "ACT_" + std::to_string(uniform(1, 12));
          case 2:
            return "E" + format_scene_id(number()).value().substr(1);
          case 3:
            return "PROJECT";
          default:
            return "RUN_" + std::to_string(uniform(0, 1000000));
        }
    }
    return "";
  };
  const int versions[] = {1, 2, 9, 10, 99, 100, 999, 1000, 1001, 9999, 10000, 123456, k_max_version};

  for (int i = 0; i < 2000; ++i) {
    const KindInfo& info =
        kinds()[static_cast<std::size_t>(uniform(0, static_cast<int>(kinds().size()) - 1))];
    const std::string target = target_for(info.target);
    const int version = uniform(0, 1) == 0 ? uniform(1, 1500) : versions[uniform(0, 12)];
    INFO(info.kind << " " << target << " " << version);
    auto made = make_artifact_name(info.kind, target, version);
    REQUIRE(made.ok());
    const std::string filename = made->filename();
    INFO(filename);
    REQUIRE(filename.find('/') == std::string::npos);
    REQUIRE(filename.find('\\') == std::string::npos);
    REQUIRE(filename.find("..") == std::string::npos);
    REQUIRE(filename.ends_with("." + std::string(info.extension)));
    REQUIRE(looks_like_artifact_name(filename));
    auto parsed = parse_artifact_name(filename);
    REQUIRE(parsed.ok());
    REQUIRE(*parsed == *made);
    REQUIRE(parsed->relative_path() == std::string(info.folder) + "/" + filename);
  }
}

TEST_CASE("whatever bytes a display name holds, the normalizer returns a valid entity id or an error",
          "[names]") {
  std::mt19937 rng(7);
  const std::string alphabet = std::string("abcXYZ019 _-.'/\\\n\t\x7f()") + "\xc3\xa9\xff\x80";
  for (int i = 0; i < 3000; ++i) {
    std::string input;
    const int length = std::uniform_int_distribution<int>(0, 80)(rng);
    for (int k = 0; k < length; ++k) {
      input += alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
    }
    auto id = normalize_entity_id(input);
    if (id.ok()) {
      INFO(input);
      REQUIRE(is_entity_id(*id));
      REQUIRE(make_artifact_name("CHAR_LOCK", *id, 1).ok());
      REQUIRE(normalize_entity_id(*id).value() == *id);  // idempotent
    } else {
      REQUIRE(id.error().code == ErrorCode::invalid_argument);
      REQUIRE(id.error().message.find('\n') == std::string::npos);
    }
  }
}

namespace {

// A project's kind as its schema declares it (examples/prop_master/schemas/prop_list.schema.json).
DeclaredKind declared(std::string kind, TargetKind target, std::string extension = "md",
                      std::string folder = "production") {
  DeclaredKind d;
  d.kind = kind;
  d.prefix = target == TargetKind::entity ? kind.substr(0, kind.size() - 5) : kind;
  d.target = target;
  d.extension = std::move(extension);
  d.folder = std::move(folder);
  d.source = "test.schema.json";
  return d;
}

// Declares `kinds` for one test and none again after it, so no other test sees them.
struct DeclaredForTest {
  explicit DeclaredForTest(const std::vector<DeclaredKind>& kinds) { REQUIRE(declare_kinds(kinds).ok()); }
  ~DeclaredForTest() { (void)declare_kinds({}); }
};

}  // namespace

TEST_CASE("a kind a project declares is named, versioned and parsed exactly like a shipped one", "[names]") {
  CHECK_FALSE(parse_artifact_name("PROP_LIST_S01_v001.md").ok());  // unknown until declared
  {
    DeclaredForTest scope(
        {declared("PROP_LIST", TargetKind::scene), declared("COSTUME_LOCK", TargetKind::entity, "txt", "continuity")});
    REQUIRE(find_kind("PROP_LIST") != nullptr);
    CHECK(find_kind("PROP_LIST")->folder == "production");
    auto name = make_artifact_name("PROP_LIST", "S01", 1);
    REQUIRE(name.ok());
    CHECK(name->relative_path() == "production/PROP_LIST_S01_v001.md");
    auto parsed = parse_artifact_name("PROP_LIST_S12_v1000.md");
    REQUIRE(parsed.ok());
    CHECK(parsed->kind == "PROP_LIST");
    CHECK(parsed->target == "S12");
    CHECK(parsed->version == 1000);
    auto lock = parse_artifact_name("COSTUME_MARA_QUILL_LOCK_v002.txt");
    REQUIRE(lock.ok());
    CHECK(lock->kind == "COSTUME_LOCK");
    CHECK(lock->target == "MARA_QUILL");
    // As strict as the shipped kinds: extension, target shape, version, banned suffixes.
    CHECK(parse_error("PROP_LIST_S01_v001.txt").find("PROP_LIST files end in \".md\"") != std::string::npos);
    CHECK(parse_error("PROP_LIST_S1_v001.md").find("needs a scene id") != std::string::npos);
    CHECK(parse_error("PROP_LIST_S01_v01.md").find("3 digits") != std::string::npos);
    CHECK(parse_error("PROP_LIST_S01_final_v001.md").find("banned suffix") != std::string::npos);
    CHECK(parse_error("PROP_LIST_v001.md").find("needs a scene id") != std::string::npos);
    CHECK(parse_error("BOGUS_S01_v001.md").find("PROP_LIST") != std::string::npos);  // listed among the known
    CHECK_FALSE(make_artifact_name("PROP_LIST", "S01_SH01", 1).ok());
    // Shipped names parse as before.
    CHECK(parse_artifact_name("SCENES_v001.csv").ok());
    CHECK(parse_artifact_name("CHAR_ALEX_LOCK_v001.txt").ok());
  }
  CHECK(find_kind("PROP_LIST") == nullptr);  // a later declaration replaces the earlier
  CHECK_FALSE(parse_artifact_name("PROP_LIST_S01_v001.md").ok());
}

TEST_CASE("a declaration that would make names ambiguous, or repeat a shipped kind, is refused and changes nothing",
          "[names]") {
  auto problems = [](std::vector<DeclaredKind> kinds) {
    std::string all;
    for (const std::string& p : kind_declaration_problems(kinds)) {
      all += p + "\n";
    }
    return all;
  };
  CHECK(problems({declared("PROP_LIST", TargetKind::scene)}).empty());
  CHECK(problems({declared("SCENES_EXTRA", TargetKind::none)}).find("could be read as SCENES names") !=
        std::string::npos);
  CHECK(problems({declared("QC", TargetKind::scene)}).find("could be read as QC_BATCH names") != std::string::npos);
  CHECK(problems({declared("CHAR_NOTES", TargetKind::scene)}).find("could be read as CHAR_LOCK names") !=
        std::string::npos);
  CHECK(problems({declared("PLAUS", TargetKind::scene)}).find("is a kind avps ships") != std::string::npos);
  CHECK(problems({declared("BRIEF", TargetKind::none)}).find("avps provides itself") != std::string::npos);
  CHECK(problems({declared("PROP_LIST", TargetKind::scene), declared("PROP", TargetKind::scene)})
            .find("could be read as PROP_LIST names") != std::string::npos);
  CHECK(problems({declared("PROP_LIST", TargetKind::scene), declared("PROP_LIST", TargetKind::shot)})
            .find("declared twice") != std::string::npos);
  CHECK(problems({declared("PROPS_NEW", TargetKind::scene)}).find("banned suffix") != std::string::npos);

  REQUIRE_FALSE(declare_kinds({declared("PROP_LIST", TargetKind::scene), declared("SCENES_X", TargetKind::none)}).ok());
  CHECK(find_kind("PROP_LIST") == nullptr);
  CHECK(declared_kinds().empty());
}

TEST_CASE("a schema's x-avps-artifact block is read strictly, each refusal saying how to write it", "[names]") {
  nlohmann::json schema = {{"x-avps-artifact", {{"kind", "PROP_LIST"}, {"target", "scene"}, {"folder", "production"}}},
                           {"x-avps-face", {{"format", "md"}}},
                           {"properties", {{"kind", {{"type", "string"}, {"const", "PROP_LIST"}}}}}};
  auto read = read_kind_declaration(schema, "prop_list.schema.json");
  REQUIRE(read.ok());
  REQUIRE(read->has_value());
  CHECK((*read)->target == TargetKind::scene);
  CHECK((*read)->extension == "md");
  CHECK((*read)->prefix == "PROP_LIST");
  auto refused = [&](const std::function<void(nlohmann::json&)>& change,
                     const std::string& file = "prop_list.schema.json") {
    nlohmann::json broken = schema;
    change(broken);
    auto result = read_kind_declaration(broken, file);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().message.find("docs/formats/artifacts.md") != std::string::npos);
    return result.error().message;
  };
  CHECK(refused([](nlohmann::json& s) {
          s["x-avps-artifact"]["target"] = "episode";
        }).find("not one of project, scene") != std::string::npos);
  CHECK(refused([](nlohmann::json& s) { s["x-avps-artifact"]["folder"] = "media"; }).find("not a layer folder") !=
        std::string::npos);
  CHECK(refused([](nlohmann::json& s) { s["x-avps-artifact"]["folder"] = "../etc"; }).find("not a layer folder") !=
        std::string::npos);
  CHECK(refused([](nlohmann::json& s) { s["x-avps-artifact"]["kind"] = "prop_list"; }).find("UPPER_SNAKE") !=
        std::string::npos);
  CHECK(refused([](nlohmann::json& s) { s["x-avps-face"]["format"] = "html"; }).find("x-avps-face") !=
        std::string::npos);
  CHECK(refused([](nlohmann::json& s) { s["properties"]["kind"]["const"] = "PROPS"; }).find("properties.kind") !=
        std::string::npos);
  CHECK(refused([](nlohmann::json& s) { s["x-avps-artifact"]["target"] = "entity"; }).find("ends in _LOCK") !=
        std::string::npos);
  CHECK(refused([](nlohmann::json&) {}, "props.schema.json").find("must be named so") != std::string::npos);
  auto none = read_kind_declaration(nlohmann::json{{"type", "object"}}, "common.schema.json");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
}
