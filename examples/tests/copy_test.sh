#!/usr/bin/env bash
# ctest driver for unio-copy: copies files of awkward sizes (empty, 1 byte, exactly one chunk,
# many chunks plus a tail) and compares them with cmp; checks that an existing destination is
# truncated and that errors name the file and give status 1; bad usage gives status 2.
# Usage: copy_test.sh UNIO_COPY
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for size in 0 1 262144 3000017; do
  head -c "$size" /dev/urandom >"$tmp/src"
  "$bin" "$tmp/src" "$tmp/dst"
  cmp "$tmp/src" "$tmp/dst" || { echo "FAIL: size $size"; exit 1; }
done

head -c 10 /dev/urandom >"$tmp/small"       # a shorter copy over a longer file truncates it
"$bin" "$tmp/small" "$tmp/dst"
cmp "$tmp/small" "$tmp/dst"

rc=0; "$bin" "$tmp/missing" "$tmp/x" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "cannot open $tmp/missing: No such file or directory" "$tmp/err" ||
  { echo "FAIL: missing source: $rc $(cat "$tmp/err")"; exit 1; }
rc=0; "$bin" "$tmp/small" "$tmp/no/such/dir/x" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "cannot create $tmp/no/such/dir/x" "$tmp/err" ||
  { echo "FAIL: bad destination: $rc $(cat "$tmp/err")"; exit 1; }
rc=0; "$bin" "$tmp" "$tmp/y" 2>"$tmp/err" || rc=$?   # a directory: read fails with EISDIR
[ "$rc" -eq 1 ] && grep -q "cannot read $tmp: Is a directory" "$tmp/err" ||
  { echo "FAIL: directory source: $rc $(cat "$tmp/err")"; exit 1; }
rc=0; "$bin" "$tmp/small" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: one argument gave status $rc, expected 2"; exit 1; }
echo "PASS"
