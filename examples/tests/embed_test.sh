#!/usr/bin/env bash
# ctest driver for unio-embed: on every backend this machine has, a poll(2) host loop reads the
# same bytes as lp.run(), the 50 ms timer fires, and no host wake-up finds nothing to do
# (unio-embed's exit status says so). Speed is not judged here: the example prints it.
# Usage: embed_test.sh UNIO_EMBED
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ran=0
for b in auto sync threadpool io_uring linux_aio posix_aio; do
  rc=0; out=$("$bin" --backend "$b" --size 8 --runs 2 "$tmp/data" 2>"$tmp/err") || rc=$?
  if [ "$rc" -eq 2 ]; then echo "skip $b: $(cat "$tmp/err")"; continue; fi
  [ "$rc" -eq 0 ] || { echo "FAIL on $b (status $rc): $out $(cat "$tmp/err")"; exit 1; }
  echo "$out"
  ran=$((ran + 1))
done
[ "$ran" -ge 2 ] || { echo "FAIL: only $ran backends ran"; exit 1; }
# Bad usage: status 2 and a message.
rc=0; "$bin" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "usage" "$tmp/err" || { echo "FAIL: no argument gave status $rc"; exit 1; }
rc=0; "$bin" --backend nosuch "$tmp/data" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "unio-embed:" "$tmp/err" || { echo "FAIL: unknown backend gave status $rc"; exit 1; }
echo "ok: $ran backends"
