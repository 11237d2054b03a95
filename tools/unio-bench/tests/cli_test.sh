#!/bin/bash
# ctest cases for unio-bench's command line.  usage: cli_test.sh UNIO_BENCH CASE [ARGS...]
#   backends            every backend name is listed, with auto's choice and the op table
#   claims_quick        `claims --quick --json - --plot`: every claim id with an allowed verdict in the text
#                       and in the JSON (which parses and has the claims array), an SVG with the experiments
#   run_plot            `run --plot x.svg` writes an SVG naming every backend of the run, its IOPS
#                       axis starting at zero
#   plot_without_gnuplot  --plot with no gnuplot on PATH: non-zero exit and a clear message
#   tiny_run            a 1 s run on every backend gives JSON with docs/unio-bench.md's schema keys
#   progress            on a terminal (a pty from script(1)) a run draws its progress line on stderr;
#                       with stderr redirected to a file it draws none
#   io_uring_flags      `run --fixed-buffers --sqpoll` on io_uring (when available) and threadpool: both
#                       run, the threadpool gets a "no effect" note, io_uring does not
#   misalign            --misalign with --verify (buffered, and O_DIRECT where the file system has it):
#                       every backend runs with no error and no data mismatch
#   vs_fio              `run --vs fio` on linux_aio and sync: a ratio line per backend against the fio engine
#                       documented names, the JSON peers array, and the note that buffered linux_aio goes to
#                       its pool (not with --aio-buffered); skipped (77) without fio
#   stall_log           `run --stall-log -` with two loops: a line per probe of each loop (as many as the
#                       JSON's loop_stall_ns.samples), dues on each loop's 1 ms grid and increasing, the
#                       table on stderr; an unwritable --stall-log path exits non-zero with a message
#   runq_wait           twice as many CPU-bound loops (sync, QD1, cached) as CPUs: the JSON's
#                       loop_runq_wait_ns is at least a fifth of the loops' time (each waits about half
#                       of it) and the text says how long the loops waited for a CPU
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

CLAIM_IDS="1 2 3 4 5 6 7 8a 8b 8c 9 10 11 12 13"

case_claims_quick() {
  timeout 85 "$BENCH" claims --quick --json - --plot claims.svg >out.json 2>err.txt || { cat err.txt; die "claims --quick failed"; }
  for id in $CLAIM_IDS; do
    grep -Eq "^  $id +(confirmed|refuted|partly|not measurable here) " err.txt || die "claim $id: no verdict line"
  done
  grep -q "^When to use what on this machine" err.txt || die "no recommendation section"
  python3 - out.json "$CLAIM_IDS" <<'PY' || die "JSON check failed"
import json, sys
j = json.load(open(sys.argv[1]))
ids = sys.argv[2].split()
assert isinstance(j["claims"], list), "no claims array"
got = {c["id"]: c for c in j["claims"]}
for i in ids:
    assert i in got, "claim " + i + " missing"
    c = got[i]
    assert c["verdict"] in ("confirmed", "refuted", "partly", "not measurable here"), c["verdict"]
    for k in ("claim", "experiment", "rule", "figures", "reason"):
        assert k in c, i + ": no " + k
    if c["verdict"] == "not measurable here":
        assert c["reason"], i + ": no reason"
assert j["results"] and j["recommendations"], "no results or recommendations"
assert j["wall_s"] <= 60, "quick took %.1f s" % j["wall_s"]
print("ok:", {i: got[i]["verdict"] for i in ids})
PY
  grep -q "<svg" claims.svg || die "claims.svg is not an SVG"
  grep -q "threadpool" claims.svg || die "claims.svg does not name threadpool"
  [ -z "$(ls -A | grep -v -e '^out.json$' -e '^err.txt$' -e '^claims.svg$')" ] || die "files left behind: $(ls)"
}

case_run_plot() {
  "$BENCH" run --size 8m --runtime 0.3 --backend all --plot x.svg >out.txt 2>err.txt || { cat err.txt; die "run --plot failed"; }
  grep -q "<svg" x.svg || die "x.svg is not an SVG"
  # The IOPS panel's axis starts at zero: its first tick label, after the title, is 0.
  first_tick=$(grep -o '<text>[^<]*<' x.svg | sed -n 2p)
  [ "$first_tick" = "<text> 0<" ] || die "the IOPS axis starts at $first_tick, not 0"
  for b in $("$BENCH" backends | awk '$2 == "yes" {print $1}'); do
    grep -q ">$b<\|$b" x.svg || die "x.svg does not name backend $b"
  done
}

case_plot_without_gnuplot() {
  PATH=/nonexistent "$BENCH" run --size 8m --runtime 0.3 --backend sync --plot x.svg >out.txt 2>err.txt && die "exit 0"
  grep -q "gnuplot" err.txt || die "no gnuplot message: $(cat err.txt)"
  [ ! -e x.svg ] || die "x.svg written"
  PATH=/nonexistent "$BENCH" claims --quick --plot y.svg >out.txt 2>err.txt && die "claims: exit 0"
  grep -q "gnuplot" err.txt || die "claims: no gnuplot message"
}

case_progress() {
  command -v script >/dev/null || { echo "SKIP: script(1) not installed"; exit 0; }
  # The line is drawn once when the run starts, so this does not depend on timing.
  script -qec "$BENCH run --size 8m --runtime 0.5 --backend threadpool >/dev/null" /dev/null >tty.txt 2>&1 \
    || { cat tty.txt; die "run under a pty failed"; }
  grep -q "threadpool: [0-9.]* s elapsed, [0-9.]* s left, [0-9]* IOPS" tty.txt || die "no progress line on a tty: $(cat -v tty.txt)"
  "$BENCH" run --size 8m --runtime 0.5 --backend threadpool >out.txt 2>err.txt || { cat err.txt; die "run failed"; }
  ! grep -q "elapsed" err.txt out.txt || die "progress line written to a non-terminal: $(cat -v err.txt)"
  grep -q "threadpool" out.txt || die "no report on stdout"
}

case_misalign() {
  "$BENCH" run --size 8m --runtime 0.3 --backend all --misalign 100 --verify --json - >out.json 2>err.txt \
    || { cat err.txt; die "buffered misaligned run failed"; }
  grep -q '"misalign": 100' out.json || die "JSON lacks misalign"
  if python3 -c 'import os,sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_CREAT | os.O_DIRECT))' probe.bin 2>/dev/null; then
    "$BENCH" run --size 8m --runtime 0.3 --backend all --direct --misalign 1 --verify --rw randrw >out.txt 2>err.txt \
      || { cat err.txt out.txt; die "O_DIRECT misaligned run failed"; }
  else
    echo "note: $(pwd) has no O_DIRECT; only the buffered case ran"
  fi
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

case_io_uring_flags() {
  list=threadpool
  "$BENCH" backends | grep -Eq "^io_uring +yes" && list=io_uring,threadpool
  "$BENCH" run --size 8m --runtime 0.3 --backend $list --fixed-buffers --sqpoll --json - >out.json 2>err.txt \
    || { cat err.txt; die "run failed"; }
  grep -q "no effect on threadpool" err.txt || die "no note for threadpool: $(cat err.txt)"
  ! grep -q "no effect on io_uring" err.txt || die "io_uring got the note"
  ! grep -q "running without" err.txt || die "registration refused: $(cat err.txt)"
  "$BENCH" run --size 8m --runtime 0.3 --backend $list --uring-inline-misses --cache cold >/dev/null 2>err2.txt \
    || { cat err2.txt; die "run --uring-inline-misses failed"; }
  grep -q "uring-inline-misses apply to io_uring only; no effect on threadpool" err2.txt \
    || die "no note for threadpool: $(cat err2.txt)"
  python3 - out.json "$list" <<'PY' || die "JSON check failed"
import json, sys
j = json.load(open(sys.argv[1]))
got = [r["backend"] for r in j["results"]]
assert got == sys.argv[2].split(","), got
for r in j["results"]:
    assert r["ops"] > 0, r["backend"]
print("ok:", got)
PY
}

case_vs_fio() {
  command -v fio >/dev/null || { echo "fio is not installed"; exit 77; }
  "$BENCH" run --size 8m --runtime 0.3 --backend linux_aio,sync --vs fio --json vs.json >out.txt 2>&1 \
    || { cat out.txt; die "run failed"; }
  grep -Eq "^  linux_aio vs fio libaio: [0-9.]+x ops/s" out.txt || die "no linux_aio ratio: $(cat out.txt)"
  grep -Eq "^  sync vs fio psync: [0-9.]+x ops/s" out.txt || die "no sync ratio: $(cat out.txt)"
  grep -q "linux_aio sends a buffered file's ops to its pool" out.txt || die "no pool note: $(cat out.txt)"
  python3 - vs.json <<'PY' || die "JSON check failed"
import json, sys
j = json.load(open(sys.argv[1]))
got = sorted((p["peer"], p["engine"]) for p in j["peers"])
assert got == [("fio", "libaio"), ("fio", "psync")], got
for p in j["peers"]:
    assert p["iops"] > 0, p
print("ok:", got)
PY
  "$BENCH" run --size 8m --runtime 0.3 --backend linux_aio --aio-buffered --vs fio >out2.txt 2>&1 \
    || { cat out2.txt; die "run --aio-buffered failed"; }
  grep -Eq "^  linux_aio vs fio libaio: " out2.txt || die "no ratio with --aio-buffered: $(cat out2.txt)"
  ! grep -q "to its pool" out2.txt || die "pool note with --aio-buffered"
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

case_stall_log() {
  "$BENCH" run --size 8m --runtime 0.5 --backend sync,threadpool --threads 2 --stall-log - --json out.json \
    >log.txt 2>err.txt || { cat err.txt; die "run failed"; }
  grep -q '^sync ' err.txt || die "the table is not on stderr"
  python3 - log.txt out.json <<'PY' || die "stall log check failed"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines[0].startswith("# backend loop due_ns late_ns"), lines[0]
per = {}
for l in lines[1:]:
    b, loop, due, late = l.split()
    per.setdefault((b, int(loop)), []).append((int(due), int(late)))
j = json.load(open(sys.argv[2]))
for r in j["results"]:
    loops = {k: v for k, v in per.items() if k[0] == r["backend"]}
    assert sorted(k[1] for k in loops) == [0, 1], (r["backend"], sorted(loops))
    n = sum(len(v) for v in loops.values())
    assert n == r["loop_stall_ns"]["samples"], (r["backend"], n, r["loop_stall_ns"]["samples"])
    for k, v in loops.items():
        dues = [d for d, _ in v]
        assert all(a < b and (b - a) % 1000000 == 0 for a, b in zip(dues, dues[1:])), k
        assert all(late >= 0 for _, late in v), k
        assert max(late for _, late in v) <= r["loop_stall_ns"]["max"], k
print("ok:", {f"{b}/{l}": len(v) for (b, l), v in per.items()})
PY
  if "$BENCH" run --size 8m --runtime 0.1 --backend sync --stall-log /nonexistent-unio-dir/s.txt >/dev/null 2>err.txt; then
    die "an unwritable --stall-log exited 0"
  fi
  grep -q "cannot write /nonexistent-unio-dir/s.txt" err.txt || { cat err.txt; die "no message for the unwritable log"; }
}

case_runq_wait() {
  local loops=$(( 2 * $(nproc) ))
  "$BENCH" run --size 8m --runtime 0.5 --backend sync --iodepth 1 --threads "$loops" --json out.json >out.txt 2>err.txt \
    || { cat err.txt; die "run failed"; }
  grep -q "sync: threads at the end: .*loops waited for a CPU [0-9.]* ms" out.txt || { cat out.txt; die "no run-queue note"; }
  python3 - out.json "$loops" <<'PY' || die "JSON check failed"
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
loops = int(sys.argv[2])
w = r["loop_runq_wait_ns"]
assert w is not None, "loop_runq_wait_ns is null (no /proc/thread-self/schedstat?)"
assert w >= 0.2 * r["runtime_s"] * loops * 1e9, (w, r["runtime_s"], loops)
assert w <= 1.05 * r["runtime_s"] * loops * 1e9, (w, r["runtime_s"], loops)
print("ok: loops waited", w / 1e9, "s of", r["runtime_s"] * loops)
PY
}

case "$CASE" in
  backends) case_backends ;;
  claims_quick) case_claims_quick ;;
  run_plot) case_run_plot ;;
  plot_without_gnuplot) case_plot_without_gnuplot ;;
  tiny_run) case_tiny_run ;;
  progress) case_progress ;;
  misalign) case_misalign ;;
  io_uring_flags) case_io_uring_flags ;;
  vs_fio) case_vs_fio ;;
  stall_log) case_stall_log ;;
  runq_wait) case_runq_wait ;;
  bad) case_bad "$@" ;;
  *) die "unknown case $CASE" ;;
esac
echo "PASS: $CASE $*"
