#!/usr/bin/env bash
# Installs what is missing, builds unio (preset given as $1, default "release") and runs the
# whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
scripts/deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j2
ctest --preset "$preset"
