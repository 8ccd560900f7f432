#include "avps/cli/app.hpp"

namespace avps::cli {

int main(int, char**) {
  return 0;
}

}  // namespace avps::cli
