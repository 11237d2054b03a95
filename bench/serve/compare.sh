#!/usr/bin/env bash
# unio-serve against nginx and a Node.js static server, on loopback, with wrk.
#
#   bench/serve/compare.sh [path/to/unio-serve]       (default: build/release/tools/unio-serve/unio-serve)
#
# Environment: DUR (seconds per wrk run, default 30), ROUNDS (default 3), CONNS (default 256),
# THREADS (wrk threads, default 4), BACKEND (unio-serve --backend, default auto), UNIO_ARGS
# (more unio-serve flags, e.g. "--sendfile-min 0" to send the 4 KiB file with sendfile too),
# KEEP=1 keeps the temporary directory (configs, logs, wrk outputs).
#
# Installs wrk, nginx-light and nodejs with apt-get when they are missing. Creates a root with a
# 4 KiB and a 1 MiB random file, starts unio-serve --threads 1, nginx (worker_processes 1,
# sendfile on, access_log off, its own config and port, daemon off) and bench/serve/node_static.js
# (one Node.js process), then for each file runs `wrk -t4 -c256 -dDURs --latency` against each
# server, ROUNDS rounds with the servers alternating. Prints requests/s and p99 of every run, the
# medians per server and file, and the ratios unio/nginx and unio/node. Everything stays on
# 127.0.0.1 and every run is bounded by DUR. Measure on a quiet machine: other load on the cores
# moves these numbers more than any server difference.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
unio_bin=${1:-$repo/build/release/tools/unio-serve/unio-serve}
DUR=${DUR:-30}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-256}
THREADS=${THREADS:-4}
BACKEND=${BACKEND:-auto}

die() { echo "compare.sh: $*" >&2; exit 1; }
[[ -x $unio_bin ]] || die "no unio-serve binary at $unio_bin (build it, or pass its path)"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
command -v node >/dev/null || need+=(nodejs)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d /tmp/unio-serve-compare-XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

root=$tmp/root
mkdir -p "$root" "$tmp/nginx" "$tmp/out"
head -c 4096 /dev/urandom >"$root/4k.bin"
head -c 1048576 /dev/urandom >"$root/1m.bin"
chmod -R a+rX "$root"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$1/4k.bin"; then return 0; fi
    sleep 0.1
  done
  die "$2 did not answer on port $1 (logs in $tmp; KEEP=1 keeps them)"
}

# ---- servers ----
unio_port=$(free_port)
# shellcheck disable=SC2086 # UNIO_ARGS is a list of flags
"$unio_bin" --root "$root" --port "$unio_port" --threads 1 --backend "$BACKEND" ${UNIO_ARGS:-} \
  >"$tmp/unio.out" 2>"$tmp/unio.err" &
pids+=($!)

nginx_port=$(free_port)
user_line=""
[[ $(id -u) == 0 ]] && user_line="user root;"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$nginx_port;
    root $root;
  }
}
EOF
"$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" >"$tmp/nginx.out" 2>&1 &
pids+=($!)

node_port=$(free_port)
node "$here/node_static.js" --root "$root" --port "$node_port" >"$tmp/node.out" 2>&1 &
pids+=($!)

wait_port "$unio_port" unio-serve
wait_port "$nginx_port" nginx
wait_port "$node_port" node
echo "$(head -1 "$tmp/unio.err" 2>/dev/null) ${UNIO_ARGS:-}"
echo "nginx: $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //'); node: $(node --version)"
echo "wrk -t$THREADS -c$CONNS -d${DUR}s --latency, $ROUNDS rounds, $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---- runs ----
declare -A port=([unio]=$unio_port [nginx]=$nginx_port [node]=$node_port)
results=$tmp/results.tsv
: >"$results"
for file in 4k.bin 1m.bin; do
  for round in $(seq "$ROUNDS"); do
    # Alternate the order each round so no server always runs first (warm caches, thermal).
    if ((round % 2)); then order=(unio nginx node); else order=(node nginx unio); fi
    for s in "${order[@]}"; do
      out=$tmp/out/$s-$file-$round.txt
      wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:${port[$s]}/$file" >"$out" 2>&1 || true
      python3 - "$out" "$s" "$file" "$round" >>"$results" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
errs = re.search(r"Socket errors:.*", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
note = "; ".join(x for x in [errs.group(0) if errs else "", ("non-2xx " + non2xx.group(1)) if non2xx else ""] if x)
print("\t".join([sys.argv[2], sys.argv[3], sys.argv[4], rps.group(1) if rps else "nan", "%.3f" % ms, note]))
PY
      tail -1 "$results" | awk -F'\t' '{printf "%-6s %-7s round %s: %10.1f req/s  p99 %9.2f ms  %s\n", $1, $2, $3, $4, $5, $6}'
    done
  done
done

# ---- summary ----
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def med(server, f, col):
    v = [float(r[col]) for r in rows if r[0] == server and r[1] == f]
    v = [x for x in v if x == x]
    return statistics.median(v) if v else float("nan")
print("medians of %s rounds" % max(int(r[2]) for r in rows))
print("%-8s %-8s %12s %12s" % ("file", "server", "req/s", "p99 ms"))
for f in ("4k.bin", "1m.bin"):
    for s in ("unio", "nginx", "node"):
        print("%-8s %-8s %12.1f %12.2f" % (f, s, med(s, f, 3), med(s, f, 4)))
print()
print("%-8s %-12s %14s %14s" % ("file", "ratio", "req/s", "p99"))
for f in ("4k.bin", "1m.bin"):
    for other in ("nginx", "node"):
        r = med("unio", f, 3) / med(other, f, 3) if med(other, f, 3) else float("nan")
        p = med("unio", f, 4) / med(other, f, 4) if med(other, f, 4) else float("nan")
        print("%-8s %-12s %13.2fx %13.2fx" % (f, "unio/" + other, r, p))
PY
