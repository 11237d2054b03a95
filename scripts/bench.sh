#!/usr/bin/env bash
# Installs what is missing, builds unio in release mode and runs unio-bench with the given
# arguments (none: the claims report). Works from any directory.
#
# Until tools/unio-bench exists, it prints the backend report instead (what `unio-bench
# backends` will print): each backend, whether it works here and why not, and what auto picks.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/deps.sh
cmake --preset release >/dev/null
if [ -f tools/unio-bench/main.cpp ]; then
  cmake --build --preset release -j2 --target unio-bench
  exec build/release/tools/unio-bench/unio-bench "$@"
fi

echo "unio-bench is not built yet (tools/unio-bench/main.cpp is missing); backend report:" >&2
cmake --build --preset release -j2 --target unio
# Built the way a user would: against an installed unio, with the flags of its unio.pc (which
# carries the libraries a static libunio needs).
stage=build/release/report-stage
cmake --install build/release --prefix "$stage" >/dev/null
pc=$(dirname "$(find "$stage" -name unio.pc | head -n 1)")
report=build/release/unio-backend-report
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' build/release/CMakeCache.txt)
# shellcheck disable=SC2046 # the pkg-config flags are meant to split
"${cxx:-c++}" -O1 -o "$report" -x c++ - $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs unio) <<'CPP'
#include <cstdio>
#include <string>
#include "unio/unio.hpp"
int main() {
  std::printf("unio %s, kernel %s\n", unio::version_string, unio::kernel_release().c_str());
  for (const auto& b : unio::probe_backends()) {
    std::string native, delegated;
    for (std::size_t i = 0; i < unio::op_code_count; ++i) {
      std::string& s = b.native[i] ? native : delegated;
      s += std::string(s.empty() ? "" : " ") + unio::to_string(static_cast<unio::op_code>(i));
    }
    std::printf("%-11s %s%s\n", b.name.c_str(), b.available ? "available" : "unavailable: ",
                b.available ? "" : b.reason.c_str());
    if (b.available) std::printf("            native: %s\n            delegated to the pool: %s\n",
                                 native.c_str(), delegated.empty() ? "none" : delegated.c_str());
  }
  std::string why;
  std::string pick = unio::auto_backend(&why);
  std::printf("auto        -> %s (%s)\n", pick.c_str(), why.c_str());
}
CPP
exec "$report"
