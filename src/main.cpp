// The avps command-line tool. Everything lives in avps_core; this file only hands over.
#include "avps/cli/app.hpp"

int main(int argc, char** argv) {
  return avps::cli::main(argc, argv);
}
