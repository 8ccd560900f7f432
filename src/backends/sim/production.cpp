// Sim generators of the production loop: shot-planner, storyboard-generator, qc-grader,
// regen-analyzer.

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include "avps/artifacts/names.hpp"
#include "sim_internal.hpp"

namespace avps::backends::sim {
namespace {

std::string scene_of_shot(const std::string& shot) {
  size_t at = shot.find("_SH");
  return at == std::string::npos ? "" : shot.substr(0, at);
}

// Signature identifiers of a character's lock, for hero notes and QC notes.
std::vector<std::string> signature_of(const Call& call, const std::string& character) {
  std::map<std::string, json> locks = locks_of(call, "CHAR_LOCK");
  auto it = locks.find(character);
  return it == locks.end() ? std::vector<std::string>() : strs(it->second, "signature_identifiers");
}

// The shot's SHOTLIST row, from the input (one row, the table, or several tables).
json shot_row_of(const Call& call, const std::string& shot) {
  std::optional<json> row = row_of(call, "SHOTLIST", "shot_id", shot);
  if (row && str(*row, "shot_id") == shot) {
    return *row;
  }
  return json{{"shot_id", shot},
              {"scene_id", scene_of_shot(shot)},
              {"hero_tier", "B"},
              {"char_ids", json::array()},
              {"set_id", ""},
              {"duration_s", 4},
              {"camera_type", "medium"},
              {"regen_risk_estimate", "medium"}};
}

bool emotional(const std::string& text) {
  static const std::array<const char*, 20> k_cues = {
      "collapses", "fear",  "decides",  "chooses",  "confronts",  "dies", "reveals",
      "breaks",    "tears", "realises", "realizes", "refuses",    "begs", "admits",
      "cries",     "grief", "loses",    "risks",    "recommends", "fails"};
  for (const char* cue : k_cues) {
    if (has_word(text, cue)) {
      return true;
    }
  }
  return false;
}

}  // namespace

// ---- shot-planner -----------------------------------------------------------------------------

Outputs shot_planner(Call& call) {
  const std::string scene = scene_id(call);
  std::optional<json> row = scene_row(call);
  std::vector<std::string> cast;
  for (const std::string& c : row ? strs(*row, "characters_present") : std::vector<std::string>()) {
    if (artifacts::is_entity_id(c)) {
      cast.push_back(c);
    }
  }
  std::map<std::string, json> set_locks = locks_of(call, "SET_LOCK");
  std::string set = row ? str(*row, "location") : "";
  if (!artifacts::is_entity_id(set)) {
    set = set_locks.empty() ? std::string("MAIN_SET") : set_locks.begin()->first;
  }
  const std::string summary = row ? str(*row, "summary") + " " + str(*row, "outcome") : "";
  const std::string lead = cast.empty() ? "" : cast.front();
  const std::string other = cast.size() >= 2 ? cast[1] : "";
  // The set's most specific anchor (the first of two words or more), and the prop the action
  // turns on: one in the set, or carried by someone present.
  std::string anchor = "the set's main anchor";
  if (set_locks.count(set)) {
    std::vector<std::string> anchors = strs(set_locks[set], "visual_anchors");
    for (auto it = anchors.rbegin(); it != anchors.rend(); ++it) {
      if (words_of(*it).size() >= 2 || anchors.size() == 1) {
        anchor = lower(*it);
      }
    }
  }
  std::string detail = anchor;
  const json state = world_state_of(call);
  for (bool carried : {false, true}) {
    for (const auto& [prop, entry] : state["props"].items()) {
      std::string place = entry.value("location", std::string());
      std::string owner = entry.value("owner", std::string());
      bool here = carried ? std::find(cast.begin(), cast.end(), owner) != cast.end() : place == set;
      if (here && detail == anchor) {
        detail = prop;
      }
    }
  }

  // 2-4 shots, 4 when the scene has an emotional anchor (a hero A close-up). At most one A per
  // scene, and only in a scene of 4+ shots, keeps premium shots within the 25 % quota.
  bool anchored = !lead.empty() && (emotional(summary) || cast.size() >= 3);
  int count = std::clamp(2 + (cast.size() >= 2 ? 1 : 0) + call.rng.range(0, 1), 2, 4);
  if (anchored) {
    count = std::max(count, 4);
  }
  if (cast.size() >= 3 && call.rng.chance(0.5)) {
    count = 5;
  }

  struct Shot {
    std::string camera;
    std::string blocking;
    std::vector<std::string> chars;
    std::string tier;
    std::string complexity;
    std::string risk;
    double duration;
    std::string notes;
  };
  std::vector<Shot> shots;
  std::vector<std::string> wide_cast(
      cast.begin(), cast.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(cast.size(), 3)));
  shots.push_back(
      {"wide",
       cast.empty()
           ? "The empty " + display(call, set) + ", establishing " + anchor + "."
           : join(wide_cast) + " in " + display(call, set) + "; the frame establishes " + anchor + ".",
       wide_cast, "C", cast.size() >= 3 ? "medium" : "low", "low", 5.0, "Establishing; static camera."});
  if (!other.empty()) {
    shots.push_back(
        {call.rng.pick({"over_shoulder", "medium"}),
         lead + " and " + other + " face each other; " +
             clause(row ? str(*row, "summary", "the conflict plays out") : "the conflict plays out") + ".",
         {lead, other},
         "B",
         "medium",
         "medium",
         5.0,
         ""});
  } else if (!lead.empty()) {
    shots.push_back(
        {"medium",
         lead + " works alone; " + clause(row ? str(*row, "summary", "the action") : "the action") + ".",
         {lead},
         "B",
         "medium",
         "medium",
         5.0,
         ""});
  }
  if (count >= 4) {
    shots.push_back({"insert",
                     "Insert on the detail the action turns on: " + detail + ".",
                     {},
                     "C",
                     "low",
                     "low",
                     3.0,
                     "Coverage; no faces."});
  }
  if (!lead.empty()) {
    std::vector<std::string> signature = signature_of(call, lead);
    std::string restate =
        signature.empty()
            ? std::string()
            : " Restate: " +
                  join(std::vector<std::string>(
                           signature.begin(), signature.begin() + static_cast<std::ptrdiff_t>(
                                                                      std::min<size_t>(signature.size(), 3))),
                       "; ") +
                  ".";
    bool hero = anchored && count >= 4;
    shots.push_back(
        {"close_up",
         lead + "'s face as " + clause(row ? str(*row, "outcome", "the scene turns") : "the scene turns") +
             ".",
         {lead},
         hero ? "A" : "B",
         "medium",
         hero ? "high" : "medium",
         hero ? 3.5 : 4.0,
         hero ? "Face-critical emotional anchor; static camera." + restate : "Steady face shot."});
  }
  if (count >= 5 && !other.empty()) {
    shots.push_back(
        {"medium", other + " reacts, holding still.", {other}, "B", "low", "medium", 4.0, "Reaction."});
  }
  while (static_cast<int>(shots.size()) < 2) {
    shots.push_back({"insert", "Detail of " + anchor + ".", {}, "C", "low", "low", 3.0, "Coverage."});
  }
  // Extra coverage up to the configured floor: each present character from another angle, then
  // details of the set (no faces).
  for (size_t extra = 0; static_cast<int>(shots.size()) < call.settings.min_shots_per_scene; ++extra) {
    if (extra < cast.size()) {
      const std::string& who = cast[extra];
      shots.push_back({"medium", who + " from another angle, holding the moment.", {who}, "B", "low", "medium", 3.0,
                       "Coverage angle."});
    } else {
      shots.push_back({"insert", "Detail of " + anchor + ", another angle.", {}, "C", "low", "low", 2.0,
                       "Coverage; no faces."});
    }
  }

  json rows = json::array();
  for (size_t i = 0; i < shots.size(); ++i) {
    const Shot& s = shots[i];
    rows.push_back({{"shot_id", artifacts::format_shot_id(scene, static_cast<int>(i) + 1).value()},
                    {"scene_id", scene},
                    {"duration_s", s.duration},
                    {"camera_type", s.camera},
                    {"blocking_summary", s.blocking},
                    {"set_id", set},
                    {"char_ids", s.chars},
                    {"hero_tier", s.tier},
                    {"complexity_level", s.complexity},
                    {"regen_risk_estimate", s.risk},
                    {"notes", s.notes}});
  }
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    // A face-critical moment in a wide frame fails shotlist_heuristics.
    json& last = rows.back();
    last["hero_tier"] = "A";
    last["camera_type"] = "wide";
    last["notes"] = "Face-critical; played wide to show the whole set.";
    reasons.push_back(str(last, "shot_id") + ": hero A shot in a wide frame");
  }
  json shotlist = {{"format_version", 1}, {"kind", "SHOTLIST"}, {"scene_id", scene}, {"rows", rows}};
  shotlist["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL", json::object(), reasons);
  return Outputs{{"SHOTLIST", shotlist}};
}

// ---- storyboard-generator ---------------------------------------------------------------------

Outputs storyboard_generator(Call& call) {
  const std::string shot = shot_id(call);
  json row = shot_row_of(call, shot);
  std::vector<std::string> chars = strs(row, "char_ids");
  std::string set = str(row, "set_id", "the set");
  std::string risk = str(row, "regen_risk_estimate", "medium");
  json report = {
      {"format_version", 1},
      {"kind", "STORYBOARD_REPORT"},
      {"shot_id", shot},
      {"composition_validation",
       "A " + str(row, "camera_type", "medium") + " frame as planned; " +
           call.rng.pick({"the eye lands on ", "the frame leads to ", "the composition centres "}) +
           (chars.empty() ? std::string("the set's anchor") : chars.front()) + "."},
      {"character_placement_check", chars.empty() ? std::string("No characters in frame, as planned.")
                                                  : join(chars) + " placed as the blocking says; no extras."},
      {"set_anchor_presence_check",
       "The visual anchors of " + set + " are visible where the set lock puts them."},
      {"lighting_compliance_check", "One motivated source, as the set lock rules; no added fill."},
      {"drift_risk_estimate",
       {{"risk", risk},
        {"rationale", chars.size() >= 2 ? "Two faces in one frame may drift between attempts."
                                        : "A single subject with fixed anchors holds well."}}},
      {"recommendation", "Proceed"},
  };
  std::vector<std::string> reasons;
  std::string verdict = "PASS";
  if (call.mode == Mode::fail) {
    report["recommendation"] = "Simplify";
    report["drift_risk_estimate"] = {
        {"risk", "high"},
        {"rationale", "Too much moves at once; faces and props will not hold across attempts."}};
    reasons.push_back("the shot is too complex to render reliably: simplify it");
    verdict = "FAIL";
  } else if (call.mode == Mode::fix) {
    report["recommendation"] = "Adjust";
    report["lighting_compliance_check"] =
        "A second light appears behind the subject; the GenPack must pin the source.";
    reasons.push_back("the storyboard shows fixable drift: adjust the GenPack");
    verdict = "FIX";
  }
  report["gate"] = gate_of(verdict, json::object(), reasons);
  return Outputs{{"STORYBOARD_REPORT", report}};
}

// ---- qc-grader --------------------------------------------------------------------------------

namespace {

constexpr std::array<const char*, 6> k_categories = {"face_consistency",     "wardrobe_consistency",
                                                     "set_continuity",       "prop_accuracy",
                                                     "lighting_consistency", "motion_integrity"};

}  // namespace

Outputs qc_grader(Call& call) {
  const std::string shot = shot_id(call);
  const int attempt_number = attempt(call);
  json row = shot_row_of(call, shot);
  std::string tier = str(row, "hero_tier", "B");
  const int threshold_value = tier == "A"   ? threshold(call, "/qc/A", 12)
                              : tier == "C" ? threshold(call, "/qc/C", 8)
                                            : threshold(call, "/qc/B", 10);
  std::vector<std::string> chars = strs(row, "char_ids");
  const std::string subject = chars.empty() ? std::string() : chars.front();

  std::array<int, 6> scores = {2, 2, 2, 2, 2, 2};
  auto lower_some = [&](int target_total, bool spare_face) {
    int total = 12;
    for (int guard = 0; total > target_total && guard < 1000; ++guard) {
      int k = call.rng.range(spare_face ? 1 : 0, 5);
      if (scores[static_cast<size_t>(k)] == 2) {
        scores[static_cast<size_t>(k)] = 1;
        --total;
      }
    }
  };
  json violations = json::array();
  std::vector<std::string> notes;
  // The violation a failing answer carries: the project's qc_violations for the shot or its scene,
  // else face drift, or set drift when no one is in frame.
  std::string rule = subject.empty() ? "lock_violation" : "facial_identity_drift";
  for (const std::string& id : {shot, scene_of_shot(shot)}) {
    if (auto chosen = call.settings.qc_violations.find(id); chosen != call.settings.qc_violations.end()) {
      rule = chosen->second;
      break;
    }
  }
  if (call.mode == Mode::fail && rule == "world_state_contradiction") {
    const std::string who = subject.empty() ? str(row, "set_id", "the set") : subject;
    scores[3] = 0;  // a prop or an injury the world state says is there is not, or the reverse
    scores[5] = 1;
    notes.push_back("prop_accuracy 0: " + who + " is shown against the world state before " + scene_of_shot(shot) +
                    ".");
    violations.push_back({{"shot_id", shot},
                          {"attempt_number", attempt_number},
                          {"rule", "world_state_contradiction"},
                          {"description", who + " contradicts the world state before " + scene_of_shot(shot) +
                                              ": what it carries and shows does not match the state."}});
  } else if (call.mode == Mode::fail) {
    size_t zero = rule == "facial_identity_drift" && !subject.empty() ? 0 : 2;  // face drift, or set drift
    scores[zero] = 0;
    scores[5] = 1;
    if (zero == 0) {
      std::vector<std::string> signature = signature_of(call, subject);
      std::string marker = signature.empty() ? std::string("the face") : lower(signature.front());
      notes.push_back("face_consistency 0: " + subject + " reads as a different person; " + marker +
                      " is gone.");
      violations.push_back(
          {{"shot_id", shot},
           {"attempt_number", attempt_number},
           {"rule", "facial_identity_drift"},
           {"description", subject + "'s identity drifts from the lock: " + marker + " is missing."}});
    } else {
      notes.push_back("set_continuity 0: the layout of " + str(row, "set_id", "the set") +
                      " does not match its lock.");
      violations.push_back(
          {{"shot_id", shot},
           {"attempt_number", attempt_number},
           {"rule", "lock_violation"},
           {"description", "A visual anchor of " + str(row, "set_id", "the set") + "'s set lock is missing."}});
    }
    notes.push_back("motion_integrity 1: a flicker in the last second.");
  } else if (call.mode == Mode::fix) {
    lower_some(std::max(6, std::min(11, threshold_value - 1)), tier == "A");
  } else {
    int target = tier == "A" ? 12 : std::max(threshold_value, call.rng.range(tier == "C" ? 9 : 10, 12));
    lower_some(std::min(12, target), true);
  }
  int total = 0;
  bool any_zero = false;
  for (size_t k = 0; k < k_categories.size(); ++k) {
    total += scores[k];
    any_zero = any_zero || scores[k] == 0;
    if (scores[k] == 1 && call.mode != Mode::fail) {
      notes.push_back(std::string(k_categories[k]) + " 1: minor drift, salvageable with a tighter GenPack.");
    }
  }
  std::string verdict = any_zero || !violations.empty() || total < threshold_value - 2 ? "FAIL"
                        : total >= threshold_value                                     ? "PASS"
                                                                                       : "FIX";
  if (notes.empty()) {
    notes.push_back(
        call.rng.pick({"Clean attempt: identity, wardrobe and set hold.",
                       "Every lock holds; the light matches the set lock.", "No drift found in any frame.",
                       "Holds the locks from first to last frame."}));
  }
  json qc_row = {{"shot_id", shot},           {"attempt_number", attempt_number},
                 {"audio_consistency", "NA"}, {"total_score", total},
                 {"verdict", verdict},        {"notes", join(notes, " ")}};
  for (size_t k = 0; k < k_categories.size(); ++k) {
    qc_row[k_categories[k]] = scores[k];
  }
  std::vector<std::string> reasons;
  if (verdict != "PASS") {
    reasons.push_back(shot + " attempt " + std::to_string(attempt_number) + ": total " +
                      std::to_string(total) + (any_zero ? ", a category at 0" : "") + " against hero " +
                      tier + " threshold " + std::to_string(threshold_value));
  }
  json batch = {{"format_version", 1},
                {"kind", "QC_BATCH"},
                {"target", scene_of_shot(shot).empty() ? std::string("S01") : scene_of_shot(shot)},
                {"rows", {qc_row}},
                {"violations", violations}};
  batch["gate"] = gate_of(verdict,
                          json{{"pass", verdict == "PASS" ? 1 : 0},
                               {"fix", verdict == "FIX" ? 1 : 0},
                               {"fail", verdict == "FAIL" ? 1 : 0},
                               {"total", total}},
                          reasons);
  return Outputs{{"QC_BATCH", batch}};
}

// ---- regen-analyzer ---------------------------------------------------------------------------

Outputs regen_analyzer(Call& call) {
  const std::string shot = shot_id(call);
  json row = shot_row_of(call, shot);
  std::vector<std::string> chars = strs(row, "char_ids");

  // The shot's failed attempts and the category that failed most.
  std::map<std::string, int> deficit;
  int failed = 0;
  for (const json& batch : artifacts_of(input(call, "QC_BATCH"))) {
    for (const json& qc : rows_of(&batch)) {
      if (str(qc, "shot_id") != shot || str(qc, "verdict") == "PASS") {
        continue;
      }
      ++failed;
      for (const char* category : k_categories) {
        if (qc.contains(category) && qc[category].is_number_integer()) {
          deficit[category] += 2 - qc[category].get<int>();
        }
      }
    }
  }
  std::string worst = "motion_integrity";
  int worst_deficit = 0;
  for (const char* category : k_categories) {
    if (deficit[category] > worst_deficit) {
      worst_deficit = deficit[category];
      worst = category;
    }
  }
  static const std::map<std::string, std::string> k_class = {{"face_consistency", "face_drift"},
                                                             {"wardrobe_consistency", "face_drift"},
                                                             {"set_continuity", "set_drift"},
                                                             {"prop_accuracy", "prop_inconsistency"},
                                                             {"lighting_consistency", "lighting_shift"},
                                                             {"motion_integrity", "motion_artifact"}};
  const std::string failure_class = k_class.at(worst);
  const std::string subject = chars.empty() ? std::string("the subject") : chars.front();
  std::vector<std::string> signature =
      chars.empty() ? std::vector<std::string>() : signature_of(call, chars.front());

  json adjustments = json::array();
  if (failure_class == "face_drift") {
    adjustments.push_back(
        {{"scope", {shot}},
         {"adjustment_type", "anchor_reinforcement"},
         {"rule", "Open [ACTION] with " + subject + "'s face" +
                      (signature.empty() ? std::string(".") : ": " + join(signature, "; ") + ".")}});
  } else if (failure_class == "set_drift" || failure_class == "lighting_shift") {
    adjustments.push_back(
        {{"scope", {shot}},
         {"adjustment_type", "constraint_tightening"},
         {"rule",
          "Restate the set lock's visual anchors and its single light source in [ACTION]; add "
          "\"no extra light sources\" to [NEGATIVES / NO-DRIFT]."}});
  } else if (failure_class == "prop_inconsistency") {
    adjustments.push_back({{"scope", {shot}},
                           {"adjustment_type", "anchor_reinforcement"},
                           {"rule", "Name every prop in frame and who holds it in [ACTION]."}});
  } else {
    adjustments.push_back({{"scope", {shot}},
                           {"adjustment_type", "complexity_reduction"},
                           {"rule", "Lock off the camera and limit the action to one movement."},
                           {"settings", {{"complexity_level", "low"}, {"camera_type", "static"}}}});
  }
  double duration =
      row.contains("duration_s") && row["duration_s"].is_number() ? row["duration_s"].get<double>() : 4;
  if (failed >= 2 && duration > 2.5) {
    adjustments.push_back({{"scope", {shot}},
                           {"adjustment_type", "duration_reduction"},
                           {"rule", "Cut the shot to " + std::to_string(static_cast<int>(duration) - 1) + " s."},
                           {"settings", {{"duration_s", static_cast<int>(duration) - 1}}}});
  }

  // Rules still in force for other shots carry over; a second analysis of this shot escalates.
  json carried_summary = json::array();
  json carried_rules = json::array();
  json carried_simplifications = json::array();
  bool analysed_before = false;
  for (const json& previous : artifacts_of(input(call, "REGEN_RULES"))) {
    auto covers = [&](const json& entry) {
      std::vector<std::string> scope = strs(entry, "scope");
      return std::find(scope.begin(), scope.end(), shot) != scope.end();
    };
    for (const char* section : {"failure_pattern_summary", "prompt_adjustment_rules",
                                "structural_simplification_recommendations"}) {
      for (const json& entry : previous.value(section, json::array())) {
        if (covers(entry)) {
          analysed_before = true;
          continue;
        }
        json& into = std::string(section) == "failure_pattern_summary"   ? carried_summary
                     : std::string(section) == "prompt_adjustment_rules" ? carried_rules
                                                                         : carried_simplifications;
        into.push_back(entry);
      }
    }
  }
  json summary = carried_summary;
  summary.push_back(
      {{"scope", {shot}},
       {"failure_class", failure_class},
       {"failed_attempts", std::max(1, failed)},
       {"summary", sentence(std::to_string(std::max(1, failed)) + " failed attempt" +
                            (failed == 1 ? "" : "s") + " of " + shot + ", worst on " + worst)}});
  json rules = carried_rules;
  for (const json& rule : adjustments) {
    rules.push_back(rule);
  }
  json simplifications = carried_simplifications;
  simplifications.push_back(
      {{"scope", {shot}},
       {"recommendation", chars.size() >= 2
                              ? "Split the shot into two singles of " + join(chars, " and ") + "."
                              : call.rng.pick({"Drop any camera move; hold a locked-off frame.",
                                               "Hold a static frame and cut the action to one gesture.",
                                               "Keep the subject still and let the frame do the work."})}});
  json regen = {
      {"format_version", 1},
      {"kind", "REGEN_RULES"},
      {"gate", gate_of("PASS", json::object(), {})},
      {"failure_pattern_summary", summary},
      {"root_cause_hypothesis",
       call.rng.pick({"The action text leads with movement, so the model spends its detail there and loses "
                      "the locked anchors.",
                      "The prompt leaves the anchor it keeps losing implicit; the model fills the gap from "
                      "its defaults.",
                      "Too many elements compete in one frame for the model to hold every lock.",
                      "The anchor that drifts is named late in the GenPack, after the action has used the "
                      "detail budget.",
                      "The shot asks for movement and identity at once; the model trades identity away."})},
      {"prompt_adjustment_rules", rules},
      {"structural_simplification_recommendations", simplifications},
  };
  std::string tier = str(row, "hero_tier", "B");
  if (analysed_before && tier != "A") {
    regen["escalation_recommendation"] = {
        {"scope", {shot}},
        {"to_tier", tier == "C" ? "gen_mid" : "gen_premium"},
        {"justification",
         "Simplification was tried in the last round and " + shot + " still fails on " + worst + "."}};
  }
  return Outputs{{"REGEN_RULES", regen}};
}

}  // namespace avps::backends::sim
