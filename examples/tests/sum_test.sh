#!/usr/bin/env bash
# ctest driver for unio-sum: over 2000 files of awkward sizes (empty, 1 byte, one chunk, chunks
# plus a tail), unio-sum must print exactly what cksum(1) prints, on every backend this machine
# has; an unreadable file is reported with its name, the others are still summed, and the status
# is 1; no argument is status 2.
# Usage: sum_test.sh UNIO_SUM
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/f"
# One process writes them all (perl is in every Debian): a process per file took over a minute
# on a loaded 2-CPU machine.
perl -e '
  my ($dir) = @ARGV;
  my @sizes = (0, 1, 262143, 262144, 262145, 600000);
  open(my $rnd, "<:raw", "/dev/urandom") or die "/dev/urandom: $!";
  for my $i (0 .. 1999) {
    my $n = $i < @sizes ? $sizes[$i] : ($i * 7919) % 40000;
    my $data = "";
    read($rnd, $data, $n) == $n or die "short read from /dev/urandom" if $n;
    open(my $f, ">:raw", "$dir/$i") or die "$dir/$i: $!";
    print $f $data;
    close($f) or die "$dir/$i: $!";
  }' "$tmp/f"
files=("$tmp"/f/*)
want=$(cksum "${files[@]}")

# A backend this machine cannot run makes the loop's creation fail: status 2 with the reason.
backends="sync threadpool io_uring linux_aio posix_aio"
ran=0
for b in auto $backends; do
  rc=0; out=$("$bin" --backend "$b" "${files[@]}" 2>"$tmp/err") || rc=$?
  if [ "$rc" -eq 2 ] && grep -q "unio-sum:" "$tmp/err"; then echo "skip $b: $(cat "$tmp/err")"; continue; fi
  [ "$rc" -eq 0 ] && [ "$out" = "$want" ] || { echo "FAIL on $b (status $rc): $(diff <(echo "$out") <(echo "$want") | head -5); $(cat "$tmp/err")"; exit 1; }
  ran=$((ran + 1))
done
[ "$ran" -ge 2 ] || { echo "FAIL: only $ran backends ran"; exit 1; }

rc=0; out=$("$bin" "${files[0]}" "$tmp/missing" "${files[1]}" 2>"$tmp/err") || rc=$?
[ "$rc" -eq 1 ] && grep -q "unio-sum: $tmp/missing: No such file or directory" "$tmp/err" &&
  [ "$out" = "$(cksum "${files[0]}" "${files[1]}")" ] || { echo "FAIL: missing file: $rc $(cat "$tmp/err")"; exit 1; }
rc=0; "$bin" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: no argument gave status $rc, expected 2"; exit 1; }
echo "PASS ($ran backends)"
