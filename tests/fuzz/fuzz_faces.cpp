// Fuzz target: the artifact face codecs (src/artifacts/face.cpp), which parse what a person edits
// (`avps artifact import|edit`). One target covers every codec:
//   byte 0          the kind: an index into face_kinds() (every kind whose codec loads)
//   up to "\n"      the target id the file name carries ("" for singletons, "S01", "S01_SH02", ...)
//   the rest        the face text
// Invariant (face.hpp): a face that parses into JSON the schema accepts (CSV faces: with a gate
// put in, as avps does) renders, and that face parses back to the same JSON and renders to the
// same bytes. A face the schema refuses is only rendered and parsed again: no crash, no exception.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "avps/artifacts/face.hpp"
#include "avps/artifacts/names.hpp"
#include "fuzz_tables.hpp"

using namespace avps;
using avps::fuzz::fuzz_fail;
using nlohmann::json;


extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::vector<avps::fuzz::KindCodec>& kinds = avps::fuzz::face_kinds();
  const avps::fuzz::KindCodec& c = kinds[data[0] % kinds.size()];
  const std::string_view rest = avps::fuzz::as_text(data + 1, size - 1);
  const std::size_t eol = rest.find('\n');
  if (eol == std::string_view::npos) {
    return 0;
  }
  Result<artifacts::ArtifactName> name = artifacts::make_artifact_name(c.kind, rest.substr(0, eol), 1);
  if (!name) {
    return 0;
  }
  const std::string_view face = rest.substr(eol + 1);

  Result<json> parsed = c.codec.parse(face, *name);
  if (!parsed) {
    return 0;
  }
  // What the schema says of it: a CSV face does not show the gate, which avps recomputes.
  json candidate = *parsed;
  const json& schema = c.codec.schema().document();
  if (c.codec.format() == "csv" && candidate.is_object() && !candidate.contains("gate") &&
      schema.contains("properties") && schema["properties"].contains("gate")) {
    candidate["gate"] = {{"verdict", "PASS"}, {"scores", json::object()}, {"reasons", json::array()}};
  }
  const bool valid = c.codec.schema().validate(candidate).empty();
  Result<std::string> rendered = c.codec.render(*parsed);
  if (!valid) {
    // Import refuses it at the schema; render and parse must still fail cleanly.
    if (rendered) {
      std::ignore = c.codec.parse(*rendered, *name);
    }
    return 0;
  }
  if (!rendered) {
    fuzz_fail(c.kind + ": a parsed face the schema accepts does not render: " + rendered.error().message);
  }
  Result<json> again = c.codec.parse(*rendered, *name);
  if (!again) {
    fuzz_fail(c.kind + ": a rendered face does not parse: " + again.error().message + "\n--- face\n" + *rendered);
  }
  if (*again != *parsed) {
    fuzz_fail(c.kind + ": face -> JSON -> face -> JSON changed the JSON\n--- first\n" + parsed->dump() +
              "\n--- second\n" + again->dump());
  }
  Result<std::string> rerendered = c.codec.render(*again);
  if (!rerendered || *rerendered != *rendered) {
    fuzz_fail(c.kind + ": render(parse(render(x))) != render(x)");
  }
  return 0;
}
