#pragma once
// The tables whose indexes are a fuzz input's first byte, shared by the targets and the seed
// writer (make_seeds.cpp), so a seed's first byte picks what it was written for.

#include <string>
#include <vector>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "avps/skills/registry.hpp"
#include "fuzz_support.hpp"

namespace avps::fuzz {

struct KindCodec {
  std::string kind;
  artifacts::FaceCodec codec;
};

/// Every kind with a face codec (not the html and mp4 kinds), in the order of artifacts::kinds().
inline const std::vector<KindCodec>& face_kinds() {
  static const std::vector<KindCodec> k_codecs = [] {
    std::vector<KindCodec> out;
    for (const artifacts::KindInfo& info : artifacts::kinds()) {
      Result<artifacts::FaceCodec> codec = artifacts::FaceCodec::load(k_source_dir / "schemas", info.kind);
      if (codec && codec->format() != "html" && codec->format() != "mp4") {
        out.push_back({std::string(info.kind), std::move(codec).value()});
      }
    }
    if (out.empty()) {
      fuzz_fail("no face codec loads from " + (k_source_dir / "schemas").string());
    }
    return out;
  }();
  return k_codecs;
}

/// The shipped skills (never destroyed: the targets read them until exit).
inline const skills::Registry& shipped_skills() {
  static const skills::Registry* const k_registry = [] {
    Result<skills::Registry> registry = skills::Registry::load(k_source_dir, nullptr);
    if (!registry) {
      fuzz_fail("the shipped skills do not load: " + registry.error().message);
    }
    return new skills::Registry(std::move(registry).value());
  }();
  return *k_registry;
}

/// The shipped model skills, by name.
inline const std::vector<const skills::SkillDef*>& model_skills() {
  static const std::vector<const skills::SkillDef*> k_skills = [] {
    std::vector<const skills::SkillDef*> out;
    for (const auto& [name, skill] : shipped_skills().skills()) {
      if (skill.executor == skills::Executor::model) {
        out.push_back(&skill);
      }
    }
    return out;
  }();
  return k_skills;
}

}  // namespace avps::fuzz
