#!/usr/bin/env bash
# ctest driver for unio-cat: compares its output with cat(1) for the given files, a large
# file, an empty file and a pipe as stdout, and checks the error path (a clear message naming
# the file, status 1, the other files still printed) and bad usage (status 2).
# Usage: cat_test.sh UNIO_CAT FILE...
set -euo pipefail
bin=$1; shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

head -c 5000011 /dev/urandom >"$tmp/big"   # many 64 KiB chunks and a partial last one
: >"$tmp/empty"

"$bin" "$@" >"$tmp/got"                     # stdout is a regular file
cat "$@" | cmp - "$tmp/got"
"$bin" "$tmp/big" "$@" "$tmp/empty" | cmp <(cat "$tmp/big" "$@") -   # stdout is a pipe
"$bin" "$tmp/empty" | cmp /dev/null -

rc=0; "$bin" "$tmp/missing" "$1" >"$tmp/got2" 2>"$tmp/err" || rc=$?
[ "$rc" -eq 1 ] || { echo "FAIL: a missing file gave status $rc, expected 1"; exit 1; }
grep -q "$tmp/missing: No such file or directory" "$tmp/err" || { echo "FAIL: message: $(cat "$tmp/err")"; exit 1; }
cmp "$1" "$tmp/got2"                        # the file after it was still printed

rc=0; "$bin" "$tmp" >/dev/null 2>"$tmp/err" || rc=$?   # a directory: read fails with EISDIR
[ "$rc" -eq 1 ] && grep -q "Is a directory" "$tmp/err" || { echo "FAIL: directory: $rc $(cat "$tmp/err")"; exit 1; }

rc=0; "$bin" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: no arguments gave status $rc, expected 2"; exit 1; }
echo "PASS"
