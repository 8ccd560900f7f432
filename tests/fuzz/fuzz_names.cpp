// Fuzz target: artifact names (src/artifacts/names.cpp), the only code that turns text into
// something that becomes a path. The first byte picks the function; the rest is its text.
//   0 parse_artifact_name: an accepted name formats back to itself, is one path component,
//     looks like an artifact name, and make_artifact_name of its parts gives it back
//   1 normalize_entity_id: the result is an entity id and normalizes to itself
//   2 parse_version: an accepted version formats back to itself
//   3 the id predicates: a shot id's scene is a scene id; ids make valid names of their kinds
//   4 make_artifact_name (kind by the second byte, version by the next four): the name parses back

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "avps/artifacts/names.hpp"
#include "fuzz_support.hpp"

using namespace avps;
using avps::fuzz::fuzz_fail;

namespace {

void check_name(std::string_view text) {
  Result<artifacts::ArtifactName> name = artifacts::parse_artifact_name(text);
  if (!name) {
    return;
  }
  const std::string quoted = "\"" + std::string(text) + "\"";
  if (name->filename() != text) {
    fuzz_fail("parse_artifact_name(" + quoted + ").filename() is " + name->filename());
  }
  if (text.find('/') != std::string_view::npos || text.find('\\') != std::string_view::npos || text == "." ||
      text == ".." || text.find('\0') != std::string_view::npos) {
    fuzz_fail("accepted name " + quoted + " is not one path component");
  }
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      fuzz_fail("accepted name " + quoted + " holds a control character");
    }
  }
  if (!artifacts::looks_like_artifact_name(text)) {
    fuzz_fail("accepted name " + quoted + " does not look like an artifact name");
  }
  Result<artifacts::ArtifactName> made = artifacts::make_artifact_name(name->kind, name->target, name->version);
  if (!made || !(*made == *name)) {
    fuzz_fail("make_artifact_name of the parts of " + quoted + " differs");
  }
  if (name->relative_path().empty() || name->stem().empty()) {
    fuzz_fail("accepted name " + quoted + " has no path or stem");
  }
}

void check_entity(std::string_view text) {
  Result<std::string> id = artifacts::normalize_entity_id(text);
  if (!id) {
    return;
  }
  if (!artifacts::is_entity_id(*id)) {
    fuzz_fail("normalize_entity_id gave \"" + *id + "\", not an entity id");
  }
  Result<std::string> again = artifacts::normalize_entity_id(*id);
  if (!again || *again != *id) {
    fuzz_fail("normalize_entity_id(\"" + *id + "\") is not itself");
  }
  if (!artifacts::make_artifact_name("CHAR_LOCK", *id, 1)) {
    fuzz_fail("entity id \"" + *id + "\" makes no CHAR_LOCK name");
  }
}

void check_version(std::string_view text) {
  Result<int> version = artifacts::parse_version(text);
  if (version && artifacts::format_version(*version) != text) {
    fuzz_fail("parse_version(\"" + std::string(text) + "\") does not format back");
  }
}

void check_ids(std::string_view text) {
  const bool scene = artifacts::is_scene_id(text);
  const bool shot = artifacts::is_shot_id(text);
  const bool target = artifacts::is_target_id(text);
  const std::string quoted = "\"" + std::string(text) + "\"";
  if (scene && !target) {
    fuzz_fail("scene id " + quoted + " is no target id");
  }
  if (shot && !artifacts::is_scene_id(text.substr(0, text.find('_')))) {
    fuzz_fail("shot id " + quoted + " does not start with a scene id");
  }
  if (scene && !artifacts::make_artifact_name("PSYCH", text, 1)) {
    fuzz_fail("scene id " + quoted + " makes no PSYCH name");
  }
  if (shot && !artifacts::make_artifact_name("GENPACK", text, 1)) {
    fuzz_fail("shot id " + quoted + " makes no GENPACK name");
  }
  if (target && !artifacts::make_artifact_name("REDTEAM", text, 1)) {
    fuzz_fail("target id " + quoted + " makes no REDTEAM name");
  }
  (void)artifacts::is_entity_id(text);
}

void check_make(const std::uint8_t* data, std::size_t size) {
  if (size < 5) {
    return;
  }
  const std::vector<artifacts::KindInfo>& kinds = artifacts::kinds();
  const artifacts::KindInfo& kind = kinds[data[0] % kinds.size()];
  std::int32_t version = 0;
  std::memcpy(&version, data + 1, sizeof version);
  const std::string_view target = avps::fuzz::as_text(data + 5, size - 5);
  Result<artifacts::ArtifactName> made = artifacts::make_artifact_name(kind.kind, target, version);
  if (!made) {
    return;
  }
  const std::string file = made->filename();
  Result<artifacts::ArtifactName> parsed = artifacts::parse_artifact_name(file);
  if (!parsed || !(*parsed == *made)) {
    fuzz_fail("made name " + file + " does not parse back to its parts" +
              (parsed ? std::string() : ": " + parsed.error().message));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view text = avps::fuzz::as_text(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0: check_name(text); break;
    case 1: check_entity(text); break;
    case 2: check_version(text); break;
    case 3: check_ids(text); break;
    case 4: check_make(data + 1, size - 1); break;
  }
  return 0;
}
