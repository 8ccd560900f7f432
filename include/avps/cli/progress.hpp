#pragma once
// How `avps run` shows the engine's progress: pure formatting, no I/O (the renderers in
// src/cli/cmd_run.cpp decide where and when to write). Three renderers use it: a live status line
// on a terminal, plain lines elsewhere, and the JSON event stream of --json
// (docs/formats/run-events.md).

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "avps/engine/engine.hpp"

namespace avps::cli {

/// The "v" of every run event; bumped only when a field changes meaning or goes away.
constexpr int k_run_events_version = 1;

/// Whether an event's plain line stays on screen above the live status line — phase starts,
/// verdicts other than PASS and WARN, revisions, escalations, waits, notes — rather than only
/// updating the status line (attempts and passing verdicts).
bool stays_on_screen(const engine::Progress& progress);

enum class Stopping { no, yes };

/// The live status line: phase, scene and shot, skill and attempt (or verdict), spend against the
/// project cap in USD, elapsed time; "stopping" first once Ctrl-C was pressed. Never longer than
/// `width` columns (counted in UTF-8 code points); a cut line ends in "...". No control
/// characters, so the caller owns "\r" and clearing.
std::string status_line(const engine::Progress& progress, std::chrono::milliseconds elapsed, int width,
                        Stopping stopping = Stopping::no);

/// Elapsed time as "42s", "3m07s" or "1h02m".
std::string elapsed_text(std::chrono::milliseconds elapsed);

/// Micro-USD as dollars for people: "$12.34"; amounts under a dollar keep four decimals
/// ("$0.0421") so the sim's small calls still move the number.
std::string usd_text(int64_t micro_usd);

/// One line of the --json event stream: "v", "event" (the kind), "elapsed_ms", "spent_micro_usd",
/// "cap_micro_usd", "text" always; "phase", "scene_id", "shot_id", "skill", "tier", "verdict",
/// "attempt", "wave" when set.
nlohmann::json event_json(const engine::Progress& progress, std::chrono::milliseconds elapsed);

}  // namespace avps::cli
