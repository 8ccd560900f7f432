#pragma once
// A GateContext over artifacts held in memory, for gate tests. Its configuration is what a real
// project gets from a minimal avps.json (title, a $25 project cap, a style) over the shipped
// defaults and policies/project_defaults.json, merged and validated by the real loader; set_config
// then overrides single values as a project's avps.json would. Faces are rendered from the
// recorded JSON by the real FaceCodec unless a test sets one by hand.

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/core/canonical_json.hpp"
#include "avps/core/fs.hpp"
#include "avps/gates/gate.hpp"
#include "avps/project/config.hpp"
#include "support/artifact_fixture.hpp"

namespace avps::testing {

/// skills/<name>/skill.json
inline nlohmann::json skill_definition(const std::string& name) {
  return json_file(source_dir() / "skills" / name / "skill.json");
}

class FakeGateContext : public gates::GateContext {
 public:
  FakeGateContext() {
    nlohmann::json project_layer = {
        {"title", "Gate tests"},
        {"budget", {{"project_cap_usd", 25}}},
        {"style",
         {{"visual_style", "v"},
          {"palette", "p"},
          {"lighting", "l"},
          {"camera_language", "c"},
          {"aspect_ratio", "2.39:1"},
          {"frame_rate", 24},
          {"resolution", {{"proxy", "640x360"}, {"final", "1920x1080"}}},
          {"forbidden_drift", {"x"}}}},
    };
    // A project folder without policies/ of its own: the shipped policies apply.
    project::ConfigSources sources{source_dir() / "tests" / "fixtures", source_dir(), {}, {}};
    auto config = project::load_config_from(project_layer, sources);
    if (!config.ok()) {
      FAIL(config.error().message);
    }
    m_config = config->document;
  }

  /// Overrides one configuration value, e.g. set_config("/thresholds/plaus_total", 9).
  void set_config(const std::string& pointer, nlohmann::json value) {
    m_config[nlohmann::json::json_pointer(pointer)] = std::move(value);
  }
  void erase_config(const std::string& pointer) {
    nlohmann::json::json_pointer p(pointer);
    m_config[p.parent_pointer()].erase(p.back());
  }

  /// Records `content` as the latest kind/target ("" for singletons).
  void record(const std::string& kind, const std::string& target, nlohmann::json content) {
    m_artifacts[{kind, target}] = std::make_shared<const nlohmann::json>(std::move(content));
    m_faces.erase({kind, target});
    m_generations[kind] = next_recording();
  }
  void forget(const std::string& kind, const std::string& target) {
    m_artifacts.erase({kind, target});
    m_faces.erase({kind, target});
    m_generations[kind] = next_recording();
  }
  /// Replaces the face of a recorded artifact (a hand edit the JSON does not show).
  void set_face(const std::string& kind, const std::string& target, std::string text) {
    m_faces[{kind, target}] = std::move(text);
  }
  /// Every later read fails, as a broken ledger would.
  void break_reads() { m_broken = true; }

  const nlohmann::json& config() const override { return m_config; }

  Result<std::optional<nlohmann::json>> latest(std::string_view kind,
                                               std::string_view target) const override {
    if (m_broken) {
      return make_error(ErrorCode::io_error, "ledger unreadable (test)");
    }
    auto it = m_artifacts.find({std::string(kind), std::string(target)});
    if (it == m_artifacts.end()) {
      return std::optional<nlohmann::json>();
    }
    return std::optional<nlohmann::json>(*it->second);
  }
  /// As the engine's context: the same shared content for a recording until it is recorded again.
  Result<std::shared_ptr<const nlohmann::json>> latest_shared(std::string_view kind,
                                                              std::string_view target) const override {
    if (m_broken) {
      return make_error(ErrorCode::io_error, "ledger unreadable (test)");
    }
    auto it = m_artifacts.find({std::string(kind), std::string(target)});
    return it == m_artifacts.end() ? nullptr : it->second;
  }

  /// As the engine's context: moved by every recording of the kind.
  Result<std::optional<int64_t>> kind_generation(std::string_view kind) const override {
    if (m_broken) {
      return make_error(ErrorCode::io_error, "ledger unreadable (test)");
    }
    auto it = m_generations.find(std::string(kind));
    return std::optional<int64_t>{it == m_generations.end() ? 0 : it->second};
  }

  Result<std::optional<Face>> latest_face(std::string_view kind, std::string_view target) const override {
    AVPS_TRY_ASSIGN(std::optional<nlohmann::json> content, latest(kind, target));
    if (!content) {
      return std::optional<Face>();
    }
    AVPS_TRY_ASSIGN(artifacts::ArtifactName name, artifacts::make_artifact_name(kind, target, 1));
    auto hand_made = m_faces.find({std::string(kind), std::string(target)});
    if (hand_made != m_faces.end()) {
      return std::optional<Face>(Face{name.filename(), hand_made->second});
    }
    AVPS_TRY_ASSIGN(artifacts::FaceCodec codec, artifacts::FaceCodec::load(source_dir() / "schemas", kind));
    AVPS_TRY_ASSIGN(std::string text, codec.render(*content));
    return std::optional<Face>(Face{name.filename(), std::move(text)});
  }

 private:
  using Key = std::pair<std::string, std::string>;
  nlohmann::json m_config;
  // kind -> the recording that last changed it. Numbered across every context of the process: a
  // copy of a context shares its contents, and must not come to the same number for another state.
  std::map<std::string, int64_t> m_generations;
  static int64_t next_recording() {
    static std::atomic<int64_t> recordings{0};
    return ++recordings;
  }
  std::map<Key, std::shared_ptr<const nlohmann::json>> m_artifacts;
  std::map<Key, std::string> m_faces;
  bool m_broken = false;
};

}  // namespace avps::testing
