#!/usr/bin/env bash
# ctest driver for unio-du: on a tree with nested directories, hard links (inside the tree and
# across two arguments), dangling and looping symlinks, fifos and an empty directory, unio-du
# must print exactly what `du -sb --apparent-size` prints, on every backend this machine has; a
# missing path is reported with its name and status 1; no argument is status 2.
# Usage: du_test.sh UNIO_DU
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t=$tmp/tree
mkdir -p "$t"/a/b/c "$t"/empty "$t"/wide
for i in $(seq 1 300); do head -c $((i * 37)) /dev/urandom >"$t/wide/f$i"; done
head -c 100000 /dev/urandom >"$t/a/big"
ln "$t/a/big" "$t/a/b/big-link"            # a hard link inside the tree: counted once
ln "$t/a/big" "$t/wide/another-link"
head -c 5000 /dev/urandom >"$t/a/b/c/deep"
ln -s /nonexistent/target "$t/a/dangling"  # a symlink counts its own size
ln -s ../a "$t/a/b/loop"                   # never followed
mkfifo "$t/a/fifo"
head -c 777 /dev/urandom >"$tmp/outside"
ln "$tmp/outside" "$t/linked-from-outside"

# A backend this machine cannot run makes the loop's creation fail: status 2 with the reason.
backends="sync threadpool io_uring linux_aio posix_aio"
ran=0
for b in auto $backends; do
  for order in "$t $tmp/outside" "$tmp/outside $t" "$t/a $t"; do
    # shellcheck disable=SC2086
    rc=0; out=$("$bin" --backend "$b" $order 2>"$tmp/err") || rc=$?
    if [ "$rc" -eq 2 ] && grep -q "unio-du:" "$tmp/err"; then echo "skip $b: $(cat "$tmp/err")"; continue 2; fi
    # shellcheck disable=SC2086
    want=$(du -sb --apparent-size $order)
    [ "$rc" -eq 0 ] && [ "$out" = "$want" ] || { echo "FAIL on $b (status $rc): got [$out], want [$want]; $(cat "$tmp/err")"; exit 1; }
  done
  ran=$((ran + 1))
done
[ "$ran" -ge 2 ] || { echo "FAIL: only $ran backends ran"; exit 1; }

rc=0; "$bin" "$tmp/missing" 2>"$tmp/err" >/dev/null || rc=$?
[ "$rc" -eq 1 ] && grep -q "unio-du: $tmp/missing: No such file or directory" "$tmp/err" ||
  { echo "FAIL: missing path: $rc $(cat "$tmp/err")"; exit 1; }
rc=0; "$bin" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: no argument gave status $rc, expected 2"; exit 1; }
echo "PASS ($ran backends)"
