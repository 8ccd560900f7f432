// Sim generators of the validation loop: research-agent, plausibility-auditor, cultural-check.

#include <algorithm>

#include "sim_internal.hpp"

namespace avps::backends::sim {
namespace {

// What the scene's BREAKDOWN row flagged with `prefix` ("research: ..."), without the prefix.
std::string flagged(const Call& call, const std::string& scene, const std::string& prefix) {
  if (std::optional<json> row = row_of(call, "BREAKDOWN", "scene_id", scene)) {
    for (const std::string& risk : strs(*row, "continuity_risks")) {
      if (risk.rfind(prefix, 0) == 0) {
        return trim(risk.substr(prefix.size()));
      }
    }
  }
  return "";
}

std::string place_of(const Call& call, const std::optional<json>& row) {
  std::string location = row ? str(*row, "location") : "";
  return location.empty() ? std::string("the set") : display(call, location);
}

}  // namespace

// ---- research-agent ---------------------------------------------------------------------------

Outputs research_agent(Call& call) {
  const std::string scene = scene_id(call);
  std::optional<json> row = scene_row(call);
  const std::string summary = row ? clause(str(*row, "summary", "the scene's action")) : "the scene's action";
  std::string topic = flagged(call, scene, "research:");
  if (topic.empty()) {
    topic = "how the action of " + scene + " (" + summary + ") is done in practice";
  }
  const std::string place = place_of(call, row);
  const std::string period = call.brief.period;

  json truth = {
      {"format_version", 1},
      {"kind", "TRUTH"},
      {"scene_id", scene},
      {"claim_list",
       {{{"claim_id", "C1"}, {"claim", sentence("The scene depends on " + topic)}, {"dependency", "hard"}},
        {{"claim_id", "C2"},
         {"claim", sentence("The look and sound of " + place + (period.empty() ? "" : " in " + period) +
                            " match what the scene shows")},
         {"dependency", "soft"}}}},
      {"validation_status",
       {{{"claim_id", "C1"},
         {"status", "Verified"},
         {"note",
          call.rng.pick({"The steps shown are the standard practice; the timing is compressed but possible.",
                         "The procedure holds as written; one step is implied rather than shown.",
                         "Consistent with period practice; no step is impossible."})}},
        {{"claim_id", "C2"}, {"status", "Creative License"}, {"note", "Atmosphere, not plot-critical."}}}},
      {"citations_references",
       {{{"claim_id", "C1"},
         {"reference",
          "Simulated reference (avps sim backend, no real source consulted): a standard handbook on " +
              topic + "."}}}},
      {"terminology_corrections", json::array()},
      {"risk_assessment",
       {{{"claim_id", "C1"},
         {"risk", "medium"},
         {"mitigation", "Show the key step on screen so the audience can follow it."}},
        {{"claim_id", "C2"}, {"risk", "low"}, {"mitigation", ""}}}},
      {"creative_allowances",
       {"The time the action takes in " + scene + " is compressed for drama; it is not plot-critical."}},
  };
  if (has_word(summary, "radio") && !period.empty() && period < "1970") {
    truth["terminology_corrections"].push_back(
        {{"term", "radio"}, {"correction", "wireless (period usage)"}});
  }
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    // A disputed hard claim at high risk with no mitigation fails truth_high_risk_addressed.
    truth["validation_status"][0]["status"] = "Disputed";
    truth["validation_status"][0]["note"] = "Sources disagree on whether " + topic + " is possible as shown.";
    truth["risk_assessment"][0]["risk"] = "high";
    truth["risk_assessment"][0]["mitigation"] = "";
    reasons.push_back("C1 is high risk and unaddressed");
  }
  truth["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL",
                          json{{"high_risk_unaddressed", reasons.empty() ? 0 : 1}}, reasons);
  return Outputs{{"TRUTH", truth}};
}

// ---- plausibility-auditor ---------------------------------------------------------------------

Outputs plausibility_auditor(Call& call) {
  static const char* const k_fields[] = {"procedural_realism_score", "physical_realism_score",
                                         "emotional_realism_score", "logistical_realism_score",
                                         "internal_consistency_score"};
  static const char* const k_names[] = {"procedural", "physical", "emotional", "logistical",
                                        "internal_consistency"};
  const std::string scene = scene_id(call);
  std::optional<json> row = scene_row(call);
  const int minimum = std::clamp(threshold(call, "/plaus_total", 7), 0, 10);

  int scores[5] = {2, 2, 2, 2, 2};
  std::vector<std::string> weak;
  std::vector<std::string> adjustments;
  if (call.mode == Mode::fail) {
    // Any 0 fails; the total drops below the threshold as well where it can.
    scores[3] = 0;
    weak.push_back("Logistically impossible: the characters of " + scene + " cannot reach " +
                   place_of(call, row) + " in the time the scene allows.");
    adjustments.push_back("Add the journey, or move the scene later in the night.");
    for (int k : {1, 2}) {
      int total = scores[0] + scores[1] + scores[2] + scores[3] + scores[4];
      if (total >= minimum) {
        scores[k] = 1;
      }
    }
  } else {
    int target = std::max(minimum, call.rng.range(8, 10));
    for (int total = 10; total > target;) {
      int k = call.rng.range(0, 4);
      if (scores[k] == 2) {
        scores[k] = 1;
        --total;
      }
    }
    for (int k = 0; k < 5; ++k) {
      if (scores[k] == 1) {
        weak.push_back(
            sentence(std::string(k_names[k]) + " realism is questionable in one beat of " + scene));
        adjustments.push_back(sentence("Show the step that makes the " + std::string(k_names[k]) +
                                       " side of " + scene + " believable"));
      }
    }
  }
  int total = scores[0] + scores[1] + scores[2] + scores[3] + scores[4];
  json plaus = {{"format_version", 1},
                {"kind", "PLAUS"},
                {"scene_id", scene},
                {"total_score", total},
                {"identified_weak_points", weak},
                {"recommended_adjustments", adjustments}};
  json gate_scores = json::object();
  bool any_zero = false;
  for (int k = 0; k < 5; ++k) {
    plaus[k_fields[k]] = scores[k];
    gate_scores[k_names[k]] = scores[k];
    any_zero = any_zero || scores[k] == 0;
  }
  gate_scores["total"] = total;
  std::vector<std::string> reasons;
  if (total < minimum) {
    reasons.push_back("total " + std::to_string(total) + " < " + std::to_string(minimum));
  }
  if (any_zero) {
    reasons.push_back("a plausibility category scored 0");
  }
  plaus["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL", gate_scores, reasons);
  return Outputs{{"PLAUS", plaus}};
}

// ---- cultural-check ---------------------------------------------------------------------------

Outputs cultural_check(Call& call) {
  const std::string scene = scene_id(call);
  std::string subject = flagged(call, scene, "cultural:");
  if (subject.empty()) {
    subject = "the community the scene portrays";
  }
  const int minimum = std::clamp(threshold(call, "/culture_authenticity", 3), 0, 5);
  int score = std::min(5, std::max(minimum, call.rng.range(4, 5)));
  json culture = {
      {"format_version", 1},
      {"kind", "CULTURE"},
      {"scene_id", scene},
      {"cultural_accuracy_assessment",
       sentence("Roles and routines of " + subject + " are portrayed accurately in " + scene)},
      {"dialect_language_review",
       call.rng.pick({"Speech stays plain and regional; no anachronistic slang.",
                      "Idiom and forms of address fit the setting; no modern slang.",
                      "The dialogue keeps a light regional colour without caricature."})},
      {"historical_alignment_check", call.brief.period.empty()
                                         ? std::string("No period constraints apply beyond the present day.")
                                         : "Objects, manners and dress fit " + call.brief.period + "."},
      {"social_norm_consistency",
       call.rng.pick({"Duties and hierarchies follow the norms of the setting.",
                      "Who defers to whom matches the setting's norms.",
                      "Work, family and authority behave as the setting expects."})},
      {"stereotype_risk_analysis",
       {{"risk", "low"},
        {"analysis", "Each character has a specific motive; none is defined by a cultural shorthand."}}},
      {"authenticity_score", score},
      {"recommended_adjustments", json::array()},
  };
  std::vector<std::string> reasons;
  if (call.mode == Mode::fail) {
    score = std::max(0, std::min(2, minimum - 1));
    culture["authenticity_score"] = score;
    culture["dialect_language_review"] =
        "The dialogue in " + scene + " mixes modern slang into a period setting.";
    culture["stereotype_risk_analysis"] = {
        {"risk", "high"},
        {"analysis", "One character is reduced to a regional stereotype for comic relief."}};
    culture["recommended_adjustments"] = {
        "Rewrite the slang to period usage and give the character a specific motive."};
    reasons.push_back("authenticity " + std::to_string(score) + " is below " + std::to_string(minimum));
  }
  culture["gate"] = gate_of(reasons.empty() ? "PASS" : "FAIL", json{{"authenticity", score}}, reasons);
  return Outputs{{"CULTURE", culture}};
}

}  // namespace avps::backends::sim
