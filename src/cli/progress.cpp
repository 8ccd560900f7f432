#include "avps/cli/progress.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

namespace avps::cli {

using engine::Progress;

namespace {

bool is_continuation_byte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U;
}

size_t columns(const std::string& text) {
  size_t n = 0;
  for (char c : text) {
    n += is_continuation_byte(c) ? 0 : 1;
  }
  return n;
}

// The first `width` columns of `text`, never splitting a UTF-8 sequence.
std::string first_columns(const std::string& text, size_t width) {
  size_t seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!is_continuation_byte(text[i])) {
      if (seen == width) {
        return text.substr(0, i);
      }
      ++seen;
    }
  }
  return text;
}

// What is being done, for the middle of the status line.
std::string activity(const Progress& p) {
  const std::string attempt = p.attempt > 0 ? " attempt " + std::to_string(p.attempt) : "";
  switch (p.kind) {
    case Progress::Kind::attempt:
      return p.skill + attempt + (p.tier.empty() ? "" : " on " + p.tier);
    case Progress::Kind::verdict:
      return p.skill + attempt + ": " + p.verdict;
    case Progress::Kind::wave:
      return "QC wave " + std::to_string(p.wave) + ": " + p.verdict;
    case Progress::Kind::revise:
      return p.skill + ": FAIL, revising";
    case Progress::Kind::escalate:
      return p.skill + " escalated to " + p.tier;
    case Progress::Kind::wait:
      return (p.skill.empty() ? std::string("production") : p.skill) + " waiting";
    case Progress::Kind::stop:
      return "hard stop";
    case Progress::Kind::phase:
    case Progress::Kind::note:
      return "";
  }
  return "";
}

}  // namespace

bool stays_on_screen(const Progress& progress) {
  switch (progress.kind) {
    case Progress::Kind::attempt:
      return false;
    case Progress::Kind::verdict:
    case Progress::Kind::wave:
      return progress.verdict != "PASS" && progress.verdict != "WARN";
    case Progress::Kind::phase:
    case Progress::Kind::revise:
    case Progress::Kind::escalate:
    case Progress::Kind::wait:
    case Progress::Kind::stop:
    case Progress::Kind::note:
      return true;
  }
  return true;
}

std::string elapsed_text(std::chrono::milliseconds elapsed) {
  const long long s = std::max<long long>(0, elapsed.count() / 1000);
  char out[32];
  if (s < 60) {
    std::snprintf(out, sizeof out, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(out, sizeof out, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(out, sizeof out, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  }
  return out;
}

std::string usd_text(int64_t micro_usd) {
  const char* sign = micro_usd < 0 ? "-" : "";
  const long long m = micro_usd < 0 ? -static_cast<long long>(micro_usd) : static_cast<long long>(micro_usd);
  char out[48];
  if (m < 1'000'000) {
    // Four decimals: hundredths of a cent, rounded half up.
    const long long units = (m + 50) / 100;
    std::snprintf(out, sizeof out, "%s$%lld.%04lld", sign, units / 10'000, units % 10'000);
  } else {
    const long long cents = (m + 5'000) / 10'000;
    std::snprintf(out, sizeof out, "%s$%lld.%02lld", sign, cents / 100, cents % 100);
  }
  return out;
}

std::string status_line(const Progress& progress, std::chrono::milliseconds elapsed, int width, Stopping stopping) {
  std::vector<std::string> parts;
  if (stopping == Stopping::yes) {
    parts.push_back("stopping after the calls in flight (Ctrl-C)");
  }
  std::string where = progress.phase;
  for (const std::string* id : {&progress.scene_id, &progress.shot_id}) {
    if (!id->empty()) {
      where += (where.empty() ? "" : " ") + *id;
    }
  }
  if (!where.empty()) {
    parts.push_back(where);
  }
  if (std::string doing = activity(progress); !doing.empty()) {
    parts.push_back(doing);
  }
  std::string spend = usd_text(progress.spent_micro_usd);
  if (progress.cap_micro_usd > 0) {
    spend += " of " + usd_text(progress.cap_micro_usd) + " (" +
             std::to_string(progress.spent_micro_usd * 100 / progress.cap_micro_usd) + "%)";
  }
  parts.push_back(spend);
  parts.push_back(elapsed_text(elapsed));

  std::string line;
  for (const std::string& part : parts) {
    line += (line.empty() ? "" : " | ") + part;
  }
  const size_t limit = static_cast<size_t>(std::max(width, 0));
  if (columns(line) <= limit) {
    return line;
  }
  const std::string cut = "...";
  if (limit <= cut.size()) {
    return first_columns(line, limit);
  }
  return first_columns(line, limit - cut.size()) + cut;
}

nlohmann::json event_json(const Progress& progress, std::chrono::milliseconds elapsed) {
  nlohmann::json event = {{"v", k_run_events_version},
                          {"event", engine::progress_kind_name(progress.kind)},
                          {"elapsed_ms", elapsed.count()}};
  const std::pair<const char*, const std::string*> texts[] = {
      {"phase", &progress.phase}, {"scene_id", &progress.scene_id}, {"shot_id", &progress.shot_id},
      {"skill", &progress.skill}, {"tier", &progress.tier},         {"verdict", &progress.verdict}};
  for (const auto& [key, value] : texts) {
    if (!value->empty()) {
      event[key] = *value;
    }
  }
  if (progress.attempt > 0) {
    event["attempt"] = progress.attempt;
  }
  if (progress.wave > 0) {
    event["wave"] = progress.wave;
  }
  event["spent_micro_usd"] = progress.spent_micro_usd;
  event["cap_micro_usd"] = progress.cap_micro_usd;
  event["text"] = progress.text;
  return event;
}

}  // namespace avps::cli
