#pragma once
// Internal to src/backends: the shipped schema files that "$ref"s point into
// ("common.schema.json#/definitions/text"), read once per process from project::data_dir(). The
// HTTP adapters inline them into the schema they send (wire_schema); the sim reads them to answer
// a skill it has no generator for (sim/generic.cpp).
//
// Thread-safe: the cache is guarded; entries are never erased, so a returned pointer stays valid
// for the life of the process. The shipped schemas do not change while a process runs.

#include <nlohmann/json.hpp>
#include <string>

namespace avps::backends {

/// The parsed shipped schema `file` (a plain file name of the schemas folder), or nullptr when it
/// is not one, cannot be read or is not JSON.
const nlohmann::json* shipped_schema(const std::string& file);

}  // namespace avps::backends
