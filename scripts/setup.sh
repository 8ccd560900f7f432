#!/usr/bin/env bash
# Installs what avps needs to build and test on Debian 12, only where it is missing.
# Idempotent: a second run installs nothing and downloads nothing. `--tests` adds what only the
# test suite needs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(g++ cmake ninja-build pkg-config sqlite3 python3 ffmpeg
          libcli11-dev nlohmann-json3-dev libspdlog-dev libcurl4-openssl-dev
          libsqlite3-dev catch2 libssl-dev libcpp-httplib-dev python3-junitparser libjemalloc-dev)
# --tests: what only the test suite needs too (the report's page is checked in a real browser;
# the fuzz targets build with clang, whose libFuzzer and sanitizer runtimes are in
# libclang-rt-14-dev).
if [ "${1:-}" = --tests ]; then packages+=(chromium clang libclang-rt-14-dev); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

updated=no
apt_update() {
  if [ "$updated" = no ]; then apt-get update -qq; updated=yes; fi
}
if [ "$(id -u)" != 0 ] && [ ${#missing[@]} -gt 0 ]; then
  echo "setup: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 4
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# valijson is header-only, but Debian's libvalijson-dev depends on Qt, Poco, yaml-cpp and
# more. Unpack that one package into a project-local prefix instead of installing its deps.
valijson="$root/.deps/valijson"
if [ ! -f "$valijson/usr/include/valijson/validator.hpp" ] && [ ! -f /usr/include/valijson/validator.hpp ]; then
  echo "setup: unpacking libvalijson-dev into .deps/valijson"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -qq libvalijson-dev 2>/dev/null); then
    apt_update
    (cd "$tmp" && apt-get download -qq libvalijson-dev 2>/dev/null)
  fi
  mkdir -p "$valijson"
  dpkg-deb -x "$tmp"/libvalijson-dev_*.deb "$valijson"
  rm -rf "$tmp"
fi
