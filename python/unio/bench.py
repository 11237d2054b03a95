"""python3 -m unio.bench: asyncio file I/O, unio against the ways Python does it today, in one run.

Peers (each in the same process, one after the other, on the same files):
  unio       unio.open(), one file object shared by all tasks, pread (no seek, no lock)
  aiofiles   aiofiles.open(), a handle per task, seek + read (two thread hops per read)
  anyio      anyio.open_file(), a handle per task, seek + read
  to_thread  asyncio.to_thread(os.pread, ...) on one fd
  blocking   os.pread on the loop's thread, yielding to the loop every 64 reads

Workloads:
  cached     4 KiB random reads of a file in the page cache (1, 32 and 128 tasks)
  cold       the same with the file dropped from the page cache first (fadvise DONTNEED), 32 tasks
  files      whole-file reads of many small files (5,000 files of 4-64 KiB), 32 tasks
each on the default asyncio loop and on uvloop (when installed).

For each run: ops/s, CPU per op (the process's user+system time, every thread included, over the
ops), and how late a 1 ms asyncio.sleep() wakes up on the loop meanwhile (p50, p99): what the
loop's other work would see.

The data files are kept in --dir (default: a unio-bench folder in the temporary directory) and
reused by later runs.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time

import unio

PEERS = ["aiofiles", "anyio", "to_thread", "blocking", "unio"]  # aiofiles first: the others are compared with it
WORKLOADS = ["cached", "cold", "files"]
READ = 4096
YIELD_EVERY = 64


# ---- data ----

def _make_file(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    rng = random.Random(1)
    with open(path + ".tmp", "wb") as f:
        left = size
        block = rng.randbytes(1 << 20)
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    os.replace(path + ".tmp", path)


def _make_files(folder, count):
    done = os.path.join(folder, ".complete")
    if os.path.exists(done) and open(done).read() == str(count):
        return [os.path.join(folder, f"f{i:05}") for i in range(count)]
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(2)
    paths = []
    for i in range(count):
        p = os.path.join(folder, f"f{i:05}")
        with open(p, "wb") as f:
            f.write(rng.randbytes(rng.randrange(4096, 65537)))
        paths.append(p)
    with open(done, "w") as f:
        f.write(str(count))
    return paths


def _warm(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass


def _drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _read_file(p):
    with open(p, "rb") as f:
        return f.read()


# ---- peers: each makes one worker coroutine per task; a worker runs ops until state.running
# is false and returns how many it did ----

class _State:
    def __init__(self, offsets, paths):
        self.running = True
        self.offsets = offsets
        self.paths = paths


async def _rand_unio(st, path, i):
    f = st.shared
    offs, n, k = st.offsets, len(st.offsets), i * 7919
    done = 0
    while st.running:
        await f.pread(READ, offs[k % n])
        k += 1
        done += 1
    return done


async def _rand_aiofiles(st, path, i):
    import aiofiles
    offs, n, k = st.offsets, len(st.offsets), i * 7919
    done = 0
    async with aiofiles.open(path, "rb") as f:
        while st.running:
            await f.seek(offs[k % n])
            await f.read(READ)
            k += 1
            done += 1
    return done


async def _rand_anyio(st, path, i):
    import anyio
    offs, n, k = st.offsets, len(st.offsets), i * 7919
    done = 0
    f = await anyio.open_file(path, "rb")
    try:
        while st.running:
            await f.seek(offs[k % n])
            await f.read(READ)
            k += 1
            done += 1
    finally:
        await f.aclose()
    return done


async def _rand_to_thread(st, path, i):
    fd, offs, n, k = st.shared, st.offsets, len(st.offsets), i * 7919
    done = 0
    while st.running:
        await asyncio.to_thread(os.pread, fd, READ, offs[k % n])
        k += 1
        done += 1
    return done


async def _rand_blocking(st, path, i):
    fd, offs, n, k = st.shared, st.offsets, len(st.offsets), i * 7919
    done = 0
    while st.running:
        os.pread(fd, READ, offs[k % n])
        k += 1
        done += 1
        if done % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return done


async def _files_unio(st, _, i):
    paths, n, k, done = st.paths, len(st.paths), i * 131, 0
    while st.running:
        await unio.read_bytes(paths[k % n])
        k += 1
        done += 1
    return done


async def _files_aiofiles(st, _, i):
    import aiofiles
    paths, n, k, done = st.paths, len(st.paths), i * 131, 0
    while st.running:
        async with aiofiles.open(paths[k % n], "rb") as f:
            await f.read()
        k += 1
        done += 1
    return done


async def _files_anyio(st, _, i):
    import anyio
    paths, n, k, done = st.paths, len(st.paths), i * 131, 0
    while st.running:
        await anyio.Path(paths[k % n]).read_bytes()
        k += 1
        done += 1
    return done


async def _files_to_thread(st, _, i):
    paths, n, k, done = st.paths, len(st.paths), i * 131, 0
    while st.running:
        await asyncio.to_thread(_read_file, paths[k % n])
        k += 1
        done += 1
    return done


async def _files_blocking(st, _, i):
    paths, n, k, done = st.paths, len(st.paths), i * 131, 0
    while st.running:
        _read_file(paths[k % n])
        k += 1
        done += 1
        if done % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return done


WORKERS = {
    "rand": {"unio": _rand_unio, "aiofiles": _rand_aiofiles, "anyio": _rand_anyio,
             "to_thread": _rand_to_thread, "blocking": _rand_blocking},
    "files": {"unio": _files_unio, "aiofiles": _files_aiofiles, "anyio": _files_anyio,
              "to_thread": _files_to_thread, "blocking": _files_blocking},
}


async def _setup(peer, st, path):
    if peer == "unio":
        st.shared = await unio.open(path, "rb") if path else None
    elif peer in ("to_thread", "blocking"):
        st.shared = os.open(path, os.O_RDONLY) if path else None
    else:
        st.shared = None


async def _teardown(peer, st):
    if peer == "unio" and st.shared is not None:
        await st.shared.close()
    elif peer in ("to_thread", "blocking") and st.shared is not None:
        os.close(st.shared)


# ---- one measured run ----

def _percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _measure(kind, peer, tasks, seconds, path, st):
    await _setup(peer, st, path)
    late = []
    ticking = True

    async def ticker():
        while ticking:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            late.append(time.perf_counter() - t0 - 0.001)

    worker = WORKERS[kind][peer]
    tick = asyncio.ensure_future(ticker())
    st.running = True
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    runs = [asyncio.ensure_future(worker(st, path, i)) for i in range(tasks)]
    await asyncio.sleep(seconds)
    st.running = False
    ops = sum(await asyncio.gather(*runs))
    elapsed = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    ticking = False
    await tick
    await _teardown(peer, st)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    return {
        "ops_per_s": ops / elapsed,
        "cpu_us_per_op": cpu / ops * 1e6 if ops else float("nan"),
        "timer_late_p50_ms": _percentile(late, 0.50) * 1e3,
        "timer_late_p99_ms": _percentile(late, 0.99) * 1e3,
        "ops": ops,
        "seconds": elapsed,
    }


def _run_on(loop_name, coro):
    if loop_name == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


# ---- the matrix ----

def _plan(args):
    plan = []
    for loop_name in args.loops:
        for w in args.workloads:
            if w == "cached":
                plan += [(loop_name, w, t) for t in args.tasks]
            else:
                plan.append((loop_name, w, args.other_tasks))
    return plan


def _available_peers(wanted):
    out, missing = [], {}
    for p in wanted:
        mod = {"aiofiles": "aiofiles", "anyio": "anyio"}.get(p)
        if mod:
            try:
                __import__(mod)
            except ImportError as e:
                missing[p] = str(e)
                continue
        out.append(p)
    return out, missing


def _print_header(meta, out):
    print(f"unio.bench: backend {meta['backend']} ({meta['backend_reason']}); Python {meta['python']}, "
          f"Linux {meta['kernel']}, {meta['cpus']} CPUs; {meta['seconds']:g} s per run", file=out)
    print(f"file {meta['file']} ({meta['file_size'] >> 20} MiB), {meta['files']} small files in "
          f"{meta['files_dir']}", file=out)
    print(f"{'workload':8} {'loop':7} {'tasks':>5} {'peer':10} {'ops/s':>10} {'CPU/op us':>10} "
          f"{'late p50 ms':>11} {'late p99 ms':>11} {'vs aiofiles':>11}", file=out)


def _print_row(r, base, out):
    ratio = f"{r['ops_per_s'] / base:10.1f}x" if base else f"{'':>11}"
    print(f"{r['workload']:8} {r['loop']:7} {r['tasks']:5} {r['peer']:10} {r['ops_per_s']:10.0f} "
          f"{r['cpu_us_per_op']:10.1f} {r['timer_late_p50_ms']:11.3f} {r['timer_late_p99_ms']:11.3f} {ratio}",
          file=out, flush=True)


def _parse(argv):
    ap = argparse.ArgumentParser(prog="python3 -m unio.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the results as JSON (and the table to stderr)")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each run (default 3)")
    ap.add_argument("--size", default="1G", help="size of the random-read file (default 1G; K, M, G suffixes)")
    ap.add_argument("--files", type=int, default=5000, help="how many small files (default 5000)")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "unio-bench"),
                    help="where the data files are kept between runs")
    ap.add_argument("--tasks", default="1,32,128", help="task counts of the cached workload (default 1,32,128)")
    ap.add_argument("--other-tasks", type=int, default=32, help="tasks of the cold and files workloads")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--loops", default="default,uvloop")
    ap.add_argument("--backend", default=None, help="unio's backend (default: UNIO_BACKEND or auto)")
    ap.add_argument("--quick", action="store_true", help="1 s runs, a 256 MiB file, 1000 small files")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.size, args.files = 1.0, "256M", 1000
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = args.size.strip().upper()
    args.size = int(float(s[:-1]) * units[s[-1]]) if s[-1] in units else int(s)
    args.tasks = [int(t) for t in args.tasks.split(",") if t]
    args.peers = [p for p in args.peers.split(",") if p]
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.loops = [x for x in args.loops.split(",") if x]
    for p in args.peers:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r} (known: {', '.join(PEERS)})")
    for w in args.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r} (known: {', '.join(WORKLOADS)})")
    return args


def main(argv=None):
    args = _parse(argv)
    if args.backend:
        unio.configure(backend=args.backend)
    loops = []
    for name in args.loops:
        if name == "uvloop":
            try:
                import uvloop  # noqa: F401
            except ImportError:
                print("unio.bench: uvloop is not installed; skipping it", file=sys.stderr)
                continue
        elif name != "default":
            sys.exit(f"unio.bench: unknown loop {name!r} (default, uvloop)")
        loops.append(name)
    args.loops = loops
    peers, missing = _available_peers(args.peers)
    for p, why in missing.items():
        print(f"unio.bench: peer {p} unavailable ({why}); skipping it", file=sys.stderr)

    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, f"data-{args.size}")
    _make_file(path, args.size)
    paths = _make_files(os.path.join(args.dir, f"files-{args.files}"), args.files) if "files" in args.workloads else []
    rng = random.Random(3)
    offsets = [rng.randrange(0, args.size // READ) * READ for _ in range(1 << 16)]

    meta = {"backend": unio.backend(), "backend_reason": unio.backend_reason(), "python": platform.python_version(),
            "kernel": platform.release(), "cpus": os.cpu_count(), "seconds": args.seconds, "file": path,
            "file_size": args.size, "files": len(paths), "files_dir": os.path.dirname(paths[0]) if paths else "",
            "unio_version": unio.__version__}
    out = sys.stderr if args.json else sys.stdout
    _print_header(meta, out)
    results = []
    for loop_name, workload, tasks in _plan(args):
        base = None
        for peer in peers:
            st = _State(offsets, paths)
            kind = "files" if workload == "files" else "rand"
            if workload == "cold":
                _drop_cache(path)
            elif workload == "cached":
                _warm(path)
            r = _run_on(loop_name, _measure(kind, peer, tasks, args.seconds, path if kind == "rand" else None, st))
            r.update(workload=workload, loop=loop_name, tasks=tasks, peer=peer)
            if peer == "aiofiles":
                base = r["ops_per_s"]
            results.append(r)
            _print_row(r, base if peer != "aiofiles" else None, out)
    if args.json:
        json.dump({"meta": meta, "results": results}, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
