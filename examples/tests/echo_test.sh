#!/usr/bin/env bash
# ctest driver for unio-echo-server: starts it on a free port with --max-clients 3, talks to
# it with three clients (two at once, one with 3 MB, so sends are short and both directions
# must flow), and checks that the server then exits by itself with status 0.
# Usage: echo_test.sh SERVER CLIENT
set -euo pipefail
server=$1 client=$2
out=$(mktemp)
pid=
trap 'rm -f "$out"; [ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT

# Bad usage is refused with status 2.
for args in "" "notaport" "70000" "0 --max-clients" "0 --max-clients x"; do
  rc=0; "$server" $args >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || { echo "FAIL: '$args' gave status $rc, expected 2"; exit 1; }
done

timeout 30 "$server" 0 --max-clients 3 >"$out" &
pid=$!
for _ in $(seq 200); do grep -q '^listening on' "$out" && break; sleep 0.05; done
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$out")
[ -n "$port" ] || { echo "FAIL: the server did not print its port: $(cat "$out")"; exit 1; }

timeout 20 "$client" "$port" 5 & c1=$!
timeout 20 "$client" "$port" 3000000 & c2=$!
wait "$c1" || { echo "FAIL: client 1"; exit 1; }
wait "$c2" || { echo "FAIL: client 2 (3 MB)"; exit 1; }
timeout 20 "$client" "$port" 0 || { echo "FAIL: client 3 (empty)"; exit 1; }

# After its third client the server stops accepting and exits.
rc=0; wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || { echo "FAIL: the server exited with status $rc (124: it did not stop)"; exit 1; }

# The port is free again, so a fourth client is refused.
if timeout 5 "$client" "$port" 1 2>/dev/null; then echo "FAIL: the server still accepts"; exit 1; fi
echo "PASS"
