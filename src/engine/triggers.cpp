#include "triggers.hpp"

#include <algorithm>
#include <set>

namespace avps::engine {

using nlohmann::json;

namespace {

bool id_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

// Whether `text` names `id` as a whole word: MARA is not named by "MARA_QUILL's".
bool names(const std::string& text, const std::string& id) {
  for (size_t at = text.find(id); !id.empty() && at != std::string::npos; at = text.find(id, at + 1)) {
    const bool starts = at == 0 || !id_char(text[at - 1]);
    const bool ends = at + id.size() == text.size() || !id_char(text[at + id.size()]);
    if (starts && ends) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> concerned_entities(const QcFinding& finding, const std::string& entity_class,
                                            const ShownEntities& shown) {
  auto shot = shown.find(finding.shot_id);
  if (shot == shown.end()) {
    return {};
  }
  bool names_any = false;
  for (const auto& [cls, ids] : shot->second) {
    for (const std::string& id : ids) {
      names_any = names_any || names(finding.description, id);
    }
  }
  auto of_class = shot->second.find(entity_class);
  if (of_class == shot->second.end()) {
    return {};
  }
  std::vector<std::string> out;
  for (const std::string& id : of_class->second) {
    if (names(finding.description, id)) {
      out.push_back(id);
    }
  }
  if (!names_any && of_class->second.size() == 1) {
    out.push_back(of_class->second.front());
  }
  return out;
}

std::vector<TriggerFiring> due_triggers(const std::vector<skills::Trigger>& triggers,
                                        const std::map<std::string, std::string>& entity_class,
                                        const std::string& scene, const std::vector<QcFinding>& findings,
                                        const ShownEntities& shown, const std::vector<json>& fired,
                                        const std::string& run_id) {
  std::vector<TriggerFiring> due;
  for (const skills::Trigger& trigger : triggers) {
    std::string cls = "scene";
    if (trigger.scope == "entity") {
      auto known = entity_class.find(trigger.skill);
      if (known == entity_class.end()) {
        continue;
      }
      cls = known->second;
    }
    struct Count {
      std::set<std::string> shots;
      json findings = json::array();
      json cause;
    };
    auto firings_of = [&](const std::string& key) {
      std::vector<const json*> out;
      for (const json& body : fired) {
        if (body.value("trigger", "") == trigger.id && body.value("key", "") == key) {
          out.push_back(&body);
        }
      }
      return out;
    };
    std::map<std::string, Count> by_key;
    for (const QcFinding& f : findings) {
      if (std::find(trigger.rules.begin(), trigger.rules.end(), f.rule) == trigger.rules.end()) {
        continue;
      }
      const std::vector<std::string> keys =
          cls == "scene" ? std::vector<std::string>{scene} : concerned_entities(f, cls, shown);
      const std::string id = f.shot_id + "/" + f.resolution + "#" + std::to_string(f.attempt);
      for (const std::string& key : keys) {
        const std::vector<const json*> earlier = firings_of(key);
        const bool counted = std::any_of(earlier.begin(), earlier.end(), [&](const json* body) {
          const json shots = body->value("shots", json::array());
          return std::find(shots.begin(), shots.end(), json(f.shot_id)) != shots.end();
        });
        if (counted) {
          continue;
        }
        Count& c = by_key[key];
        c.shots.insert(f.shot_id);
        c.findings.push_back(f.shot_id + " " + f.resolution + " attempt " + std::to_string(f.attempt) + ", " + f.rule +
                             ": " + f.description);
        c.cause = {
            {"id", id},       {"shot_id", f.shot_id},         {"resolution", f.resolution}, {"attempt", f.attempt},
            {"rule", f.rule}, {"description", f.description}, {"qc_batch", f.batch}};
      }
    }
    for (auto& [key, c] : by_key) {
      if (static_cast<int>(c.shots.size()) < trigger.after_failed_shots) {
        continue;
      }
      const std::vector<const json*> earlier = firings_of(key);
      const bool this_run = std::any_of(earlier.begin(), earlier.end(),
                                        [&](const json* body) { return body->value("run_id", "") == run_id; });
      if (this_run) {
        continue;
      }
      TriggerFiring firing;
      firing.trigger = &trigger;
      firing.scope_class = cls;
      firing.key = key;
      firing.count = static_cast<int>(c.shots.size());
      firing.cause = std::move(c.cause);
      firing.findings = std::move(c.findings);
      firing.shots.assign(c.shots.begin(), c.shots.end());
      due.push_back(std::move(firing));
    }
  }
  return due;
}

}  // namespace avps::engine
