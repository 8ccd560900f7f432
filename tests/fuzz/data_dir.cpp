// The fuzz build links without the ledger and the artifact store, so it does not take
// src/project/project.cpp (whose Project opens both) for the one function the targets reach
// through it: project::data_dir(), which the HTTP adapters read shipped schemas from. Here it is
// the source tree, as the real one returns for a build run from its source tree without
// $AVPS_HOME.

#include "avps/project/project.hpp"

namespace avps::project {

std::filesystem::path data_dir() { return AVPS_SOURCE_DATA_DIR; }

}  // namespace avps::project
