#!/usr/bin/env bash
# Installs what is missing, builds unio in release mode and runs unio-bench with the given
# arguments (none: the claims report).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2 --target unio-bench
exec build/release/tools/unio-bench/unio-bench "$@"
