// Catch2 v2 (Debian 12 ships 2.13) has no Catch2WithMain target: the runner lives here.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
