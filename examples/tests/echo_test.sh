#!/usr/bin/env bash
# ctest driver for unio-echo-server.
#  1. Bad usage is refused with status 2.
#  2. TCP with --max-clients 3: three clients (two at once, one with 3 MB, so sends are short and
#     both directions must flow); the server then exits by itself with status 0.
#  3. On every backend this machine has: TCP, a Unix stream socket and UDP on one loop, a client
#     checking each, then SIGINT: the server prints "stopped by signal 2", removes its socket
#     file and exits with status 0.
# Usage: echo_test.sh SERVER CLIENT
set -euo pipefail
server=$1 client=$2
tmp=$(mktemp -d)
pid=
trap 'rm -rf "$tmp"; [ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT

for args in "" "notaport" "70000" "0 --max-clients" "0 --max-clients x" "0 --unix" "0 --bogus"; do
  rc=0; "$server" $args >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || { echo "FAIL: '$args' gave status $rc, expected 2"; exit 1; }
done

# Starts the server with the given arguments; sets pid and port once it printed a line matching
# $1. Returns 1 when the server exited with status 2 (a backend this machine cannot run).
start() {
  local want=$1
  shift
  # --foreground: timeout then passes a signal to the server alone. Without it, it also sends the
  # signal and a SIGCONT to its whole process group, and that SIGCONT, coming while a sanitizer
  # build's leak check is attaching to the exiting server with ptrace, cancels the SIGSTOP the
  # attach waits for: the server then spins in LeakSanitizer's StopTheWorld for ever.
  timeout --foreground 60 "$server" 0 "$@" >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  for _ in $(seq 200); do
    grep -q "$want" "$tmp/out" && break
    if ! kill -0 "$pid" 2>/dev/null; then
      local rc=0; wait "$pid" || rc=$?
      pid=
      [ "$rc" -eq 2 ] && return 1
      echo "FAIL: the server exited with status $rc: $(cat "$tmp/err")"; exit 1
    fi
    sleep 0.05
  done
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/out")
  [ -n "$port" ] && grep -q "$want" "$tmp/out" || { echo "FAIL: the server did not say where it listens: $(cat "$tmp/out")"; exit 1; }
}

start '^listening on' --max-clients 3
timeout 20 "$client" "$port" 5 & c1=$!
timeout 20 "$client" "$port" 3000000 & c2=$!
wait "$c1" || { echo "FAIL: client 1"; exit 1; }
wait "$c2" || { echo "FAIL: client 2 (3 MB)"; exit 1; }
timeout 20 "$client" "$port" 0 || { echo "FAIL: client 3 (empty)"; exit 1; }
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || { echo "FAIL: the server exited with status $rc (124: it did not stop)"; exit 1; }
if timeout 5 "$client" "$port" 1 2>/dev/null; then echo "FAIL: the server still accepts"; exit 1; fi

ran=0
for b in auto sync threadpool io_uring linux_aio posix_aio; do
  sock=$tmp/echo-$b.sock
  start '^udp ' --backend "$b" --unix "$sock" --udp || { echo "skip $b: $(cat "$tmp/err")"; continue; }
  timeout 20 "$client" "$port" 200000 || { echo "FAIL on $b: TCP"; exit 1; }
  timeout 20 "$client" --unix "$sock" 200000 || { echo "FAIL on $b: Unix stream"; exit 1; }
  timeout 20 "$client" --udp "$port" 20000 || { echo "FAIL on $b: UDP"; exit 1; }
  # An open connection that is idle when the signal comes must not keep the server alive.
  exec 9<>/dev/tcp/127.0.0.1/"$port"
  sleep 0.1
  kill -INT "$pid"
  rc=0; wait "$pid" || rc=$?
  pid=
  exec 9>&-
  [ "$rc" -eq 0 ] || { echo "FAIL on $b: status $rc after SIGINT (124: it did not stop)"; exit 1; }
  grep -q '^stopped by signal 2$' "$tmp/out" || { echo "FAIL on $b: $(cat "$tmp/out")"; exit 1; }
  [ ! -e "$sock" ] || { echo "FAIL on $b: the socket file is left"; exit 1; }
  echo "ok $b"
  ran=$((ran + 1))
done
[ "$ran" -ge 2 ] || { echo "FAIL: only $ran backends ran"; exit 1; }
echo "PASS"
