// The formatting behind `avps run`'s live status line and its --json event stream.
#include <catch2/catch.hpp>

#include "avps/cli/progress.hpp"

using avps::engine::Progress;
using namespace std::chrono_literals;

namespace {

Progress generating() {
  Progress p;
  p.kind = Progress::Kind::attempt;
  p.phase = "shots_proxy";
  p.scene_id = "S03";
  p.shot_id = "S03_SH02";
  p.skill = "generate";
  p.tier = "gen_mid";
  p.attempt = 2;
  p.spent_micro_usd = 4'250'000;
  p.cap_micro_usd = 25'000'000;
  p.text = "generate S03_SH02 proxy: attempt 2 on gen_mid";
  return p;
}

size_t columns(const std::string& text) {
  size_t n = 0;
  for (char c : text) {
    n += (static_cast<unsigned char>(c) & 0xC0U) == 0x80U ? 0 : 1;
  }
  return n;
}

}  // namespace

TEST_CASE("the status line shows phase, scene, shot, skill and attempt, spend against the cap and elapsed time",
          "[run-progress]") {
  const std::string line = avps::cli::status_line(generating(), 83s, 200);
  CHECK(line == "shots_proxy S03 S03_SH02 | generate attempt 2 on gen_mid | $4.25 of $25.00 (17%) | 1m23s");
}

TEST_CASE("the status line of a verdict names it, and a phase start shows where the run is", "[run-progress]") {
  Progress verdict = generating();
  verdict.kind = Progress::Kind::verdict;
  verdict.skill = "qc-grader";
  verdict.verdict = "FAIL";
  CHECK(avps::cli::status_line(verdict, 5s, 200).find("| qc-grader attempt 2: FAIL |") != std::string::npos);

  Progress phase;
  phase.kind = Progress::Kind::phase;
  phase.phase = "validation";
  phase.scene_id = "S01";
  CHECK(avps::cli::status_line(phase, 0ms, 200) == "validation S01 | $0.0000 | 0s");
}

TEST_CASE("the status line never runs past the terminal width", "[run-progress]") {
  const Progress p = generating();
  const std::string full = avps::cli::status_line(p, 83s, 200);
  for (int width : {0, 2, 3, 4, 20, 40, static_cast<int>(full.size()) - 1}) {
    const std::string cut = avps::cli::status_line(p, 83s, width);
    INFO("width " << width << ": " << cut);
    CHECK(columns(cut) == static_cast<size_t>(width));
    if (width > 3) {
      CHECK(cut.substr(cut.size() - 3) == "...");
      CHECK(full.rfind(cut.substr(0, cut.size() - 3), 0) == 0);
    }
  }
  CHECK(avps::cli::status_line(p, 83s, static_cast<int>(full.size())) == full);
}

TEST_CASE("a cut status line never splits a UTF-8 character", "[run-progress]") {
  Progress p;
  p.phase = "narrative";
  p.scene_id = "S\xC3\xA9\xC3\xA9\xC3\xA9";  // "Sééé": two bytes, one column per "é"
  const std::string cut = avps::cli::status_line(p, 0ms, 15);
  CHECK(cut == "narrative S\xC3\xA9...");
  CHECK(columns(cut) == 15);
}

TEST_CASE("after Ctrl-C the status line says the run is stopping, first", "[run-progress]") {
  const std::string line = avps::cli::status_line(generating(), 1s, 200, avps::cli::Stopping::yes);
  CHECK(line.rfind("stopping after the calls in flight (Ctrl-C) | shots_proxy S03 S03_SH02", 0) == 0);
}

TEST_CASE("amounts read as dollars, with four decimals under a dollar", "[run-progress]") {
  CHECK(avps::cli::usd_text(0) == "$0.0000");
  CHECK(avps::cli::usd_text(42'100) == "$0.0421");
  CHECK(avps::cli::usd_text(999'999) == "$1.0000");
  CHECK(avps::cli::usd_text(1'234'567) == "$1.23");
  CHECK(avps::cli::usd_text(25'000'000) == "$25.00");
  CHECK(avps::cli::usd_text(-1'500'000) == "-$1.50");
}

TEST_CASE("elapsed time reads as seconds, minutes or hours", "[run-progress]") {
  CHECK(avps::cli::elapsed_text(999ms) == "0s");
  CHECK(avps::cli::elapsed_text(42s) == "42s");
  CHECK(avps::cli::elapsed_text(187s) == "3m07s");
  CHECK(avps::cli::elapsed_text(3720s) == "1h02m");
}

TEST_CASE("attempts and passing verdicts only update the live line, and failures, revisions and phases stay",
          "[run-progress]") {
  Progress p = generating();
  CHECK_FALSE(avps::cli::stays_on_screen(p));
  p.kind = Progress::Kind::verdict;
  p.verdict = "PASS";
  CHECK_FALSE(avps::cli::stays_on_screen(p));
  p.verdict = "WARN";
  CHECK_FALSE(avps::cli::stays_on_screen(p));
  p.verdict = "FAIL";
  CHECK(avps::cli::stays_on_screen(p));
  p.kind = Progress::Kind::wave;
  p.verdict = "FIX";
  CHECK(avps::cli::stays_on_screen(p));
  for (Progress::Kind kind : {Progress::Kind::phase, Progress::Kind::revise, Progress::Kind::escalate,
                              Progress::Kind::wait, Progress::Kind::note}) {
    p.kind = kind;
    CHECK(avps::cli::stays_on_screen(p));
  }
}

TEST_CASE("a run event is one JSON line with a version, its kind, and only the fields that apply",
          "[run-progress]") {
  const nlohmann::json event = avps::cli::event_json(generating(), 1234ms);
  CHECK(event["v"] == 1);
  CHECK(event["event"] == "attempt");
  CHECK(event["elapsed_ms"] == 1234);
  CHECK(event["phase"] == "shots_proxy");
  CHECK(event["scene_id"] == "S03");
  CHECK(event["shot_id"] == "S03_SH02");
  CHECK(event["skill"] == "generate");
  CHECK(event["tier"] == "gen_mid");
  CHECK(event["attempt"] == 2);
  CHECK(event["spent_micro_usd"] == 4'250'000);
  CHECK(event["cap_micro_usd"] == 25'000'000);
  CHECK(event["text"] == "generate S03_SH02 proxy: attempt 2 on gen_mid");
  CHECK_FALSE(event.contains("verdict"));
  CHECK_FALSE(event.contains("wave"));
  CHECK(event.dump().find('\n') == std::string::npos);

  Progress note;
  note.text = "reconciled 1 reservation(s)\nleft open";
  const nlohmann::json plain = avps::cli::event_json(note, 0ms);
  CHECK(plain["event"] == "note");
  CHECK_FALSE(plain.contains("phase"));
  CHECK_FALSE(plain.contains("attempt"));
  CHECK(plain.dump().find('\n') == std::string::npos);  // escaped inside the string
}
