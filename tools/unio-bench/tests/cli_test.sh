#!/bin/bash
# ctest cases for unio-bench's command line.  usage: cli_test.sh UNIO_BENCH CASE [ARGS...]
#   backends            every backend name is listed, with auto's choice and the op table
#   claims              no subcommand: backends output, then the "not implemented yet" note, exit 0
#   tiny_run            a 1 s run on every backend gives JSON with the DESIGN.md schema keys
#   bad ARGS...         `run ARGS` exits non-zero with a message and leaves no file behind
set -u
BENCH=$1; CASE=$2; shift 2
WORK=$(mktemp -d /tmp/unio-bench-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

die() { echo "FAIL: $*" >&2; exit 1; }

case_backends() {
  out=$("$BENCH" backends) || die "backends exited non-zero"
  for b in sync threadpool io_uring linux_aio posix_aio; do
    grep -q "^$b " <<<"$out" || die "backend $b not listed"
  done
  grep -q "^auto picks: " <<<"$out" || die "no auto line"
  grep -Eq "^read +(native|delegated)" <<<"$out" || die "no op table"
}

case_claims() {
  out=$("$BENCH") || die "default command exited non-zero"
  grep -q "claims report not implemented yet" <<<"$out" || die "no claims note"
  grep -q "^auto picks: " <<<"$out" || die "no backends output"
}

case_tiny_run() {
  "$BENCH" run --size 8m --runtime 1 --backend all --json - >out.json 2>err.txt || { cat err.txt; die "run failed"; }
  python3 - out.json <<'PY' || die "JSON check failed"
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("unio_version", "machine", "results", "peers"):
    assert k in j, k
assert j["results"], "no results"
keys = {"backend": None, "rw": None, "bs": None, "iodepth": None, "direct": None, "runtime_s": None,
        "ops": None, "iops": None, "bw_bytes_s": None,
        "lat_ns": ("mean", "p50", "p99", "p999", "max"), "cpu": ("user_s", "sys_s", "ns_per_op"),
        "ctx_switches": ("voluntary", "involuntary"), "loop_stall_ns": ("p99", "max")}
for r in j["results"]:
    for k, sub in keys.items():
        assert k in r, k
        for s in sub or ():
            assert s in r[k], k + "." + s
    assert r["ops"] > 0 and r["iops"] > 0, r["backend"]
print("ok:", [r["backend"] for r in j["results"]])
PY
  [ -z "$(ls -A | grep -v -e '^out.json$' -e '^err.txt$')" ] || die "files left behind: $(ls)"
}

case_bad() {
  local size=(--size 8m)
  [[ " $* " == *" --size "* ]] && size=()
  "$BENCH" run "${size[@]}" --runtime 1 "$@" >out.txt 2>err.txt && die "exit 0 for: $*"
  [ -s err.txt ] || die "no message on stderr for: $*"
  echo "message: $(head -1 err.txt)"
  left=$(ls -A | grep -v -e '^out.txt$' -e '^err.txt$')
  [ -z "$left" ] || die "files left behind for $*: $left"
  [ ! -e "$WORK/sub/new.bin" ] || die "--file left behind"
}

case "$CASE" in
  backends) case_backends ;;
  claims) case_claims ;;
  tiny_run) case_tiny_run ;;
  bad) case_bad "$@" ;;
  *) die "unknown case $CASE" ;;
esac
echo "PASS: $CASE $*"
