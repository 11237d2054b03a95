#!/usr/bin/env bash
# Installs what is missing, builds unio with a preset (release, debug, asan-ubsan, tsan; default
# release) and runs the whole test suite with ctest. Extra arguments go to ctest, for example
#   scripts/test.sh asan-ubsan -R conformance
# Works from any directory; the build goes to build/<preset> in the source tree.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
preset=${1:-release}
shift || true
scripts/deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j2
ctest --preset "$preset" "$@"
