#!/usr/bin/env bash
# Installs the Debian 12 packages unio needs to build, test and benchmark, when any is missing.
# Idempotent: when everything is installed it prints nothing and changes nothing. Needs root (or
# sudo) only when something is missing. Works on a fresh Debian 12 image that has nothing but apt.
set -euo pipefail

pkgs=(
  # build: compilers (gcc 12; clang 14 for the CI's clang build and sanitizers), cmake, ninja
  build-essential g++ cmake ninja-build pkg-config git clang-14 libclang-rt-14-dev
  ccache  # the CI's Python install stage reuses the release stage's objects
  # backends
  liburing-dev libaio-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libseccomp-dev strace util-linux xfsprogs e2fsprogs nftables
  libfuse3-dev fuse3  # unio-faultfs, the FUSE file system of the fault tests (tests/fault/faultfs/)
  python3 curl  # unio-serve's end-to-end tests
  # the Python package (python/): build, pip install into a venv, tests, and the peers its benchmark runs
  python3-dev python3-venv python3-pip python3-setuptools python3-wheel pybind11-dev python3-pybind11
  python3-pytest python3-pytest-asyncio python3-uvloop python3-aiofiles python3-anyio
  # tools: unio-bench, unio-serve, peers measured side by side
  libfmt-dev libcli11-dev nlohmann-json3-dev libhttp-parser-dev libuv1-dev gnuplot-nox fio
)

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "unio: scripts/deps.sh needs Debian's apt-get; install these yourself: ${pkgs[*]}" >&2
  exit 1
fi

# One dpkg-query for all (it prints nothing for a package it has never heard of).
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null | awk '/ install ok installed$/ {print $1}' || true)
missing=()
for p in "${pkgs[@]}"; do
  grep -qx -- "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "unio: missing packages (${missing[*]}); run scripts/deps.sh as root" >&2
  exit 1
fi
echo "unio: installing ${missing[*]}" >&2

# DEBIAN_FRONTEND must survive sudo; the lock timeout waits for another apt (unattended-upgrades).
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    return 1
  fi
}
# A fresh image has no package lists, and old lists may name versions the mirror has dropped, so
# refresh them first (and once more if the install still fails).
run "${apt[@]}" update || { sleep 5; run "${apt[@]}" update; }
if ! run "${apt[@]}" install --no-install-recommends "${missing[@]}"; then
  echo "unio: apt-get install failed; refreshing the package lists and retrying" >&2
  sleep 5
  run "${apt[@]}" update
  run "${apt[@]}" install --no-install-recommends "${missing[@]}"
fi
