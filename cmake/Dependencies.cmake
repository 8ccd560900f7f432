# Every dependency comes from a Debian 12 package; minimum versions are Debian 12's.
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(CLI11 2.1 REQUIRED)
find_package(spdlog 1.10 REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(CURL 7.88 REQUIRED)

# valijson (header-only) is unpacked by scripts/setup.sh into .deps/ so that Debian's
# package dependencies (Qt, Poco) are not installed; a system copy works too.
find_path(VALIJSON_INCLUDE_DIR valijson/validator.hpp
  HINTS "${CMAKE_SOURCE_DIR}/.deps/valijson/usr/include"
  REQUIRED)
