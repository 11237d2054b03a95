#!/usr/bin/env bash
# Installs the Debian 12 packages unio needs to build, test and benchmark, when any is missing.
# Runs as root (apt-get); prints nothing when everything is already there.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config git
  g++ clang-14 libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  liburing-dev libaio-dev libseccomp-dev
  libfmt-dev libcli11-dev nlohmann-json3-dev libhttp-parser-dev libuv1-dev
  gnuplot-nox fio strace util-linux xfsprogs
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "unio: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
