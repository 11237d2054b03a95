"""The asyncio side: one unio loop per asyncio loop, driven through backend_fd/backend_timeout,
on the default loop and uvloop, in several threads, after fork; no busy loop, nothing missed."""

import asyncio
import gc
import os
import random
import resource
import threading
import time

import pytest

import unio
from unio import _driver
from conftest import run


@pytest.fixture
def data_file(tmp_path):
    data = random.Random(7).randbytes(1 << 20)
    p = tmp_path / "data.bin"
    p.write_bytes(data)
    return p, data


async def _random_preads(path, data, tasks, reads_each, seed):
    rng = random.Random(seed)
    async with unio.open(path, "rb") as f:
        async def worker():
            for _ in range(reads_each):
                off = rng.randrange(0, len(data) - 4096)
                got = await f.pread(4096, off)
                assert got == data[off:off + 4096]
        await asyncio.gather(*(worker() for _ in range(tasks)))
    return unio.backend()


def test_thousand_concurrent_tasks(backend, data_file):
    path, data = data_file
    used = run(_random_preads(path, data, tasks=1000, reads_each=3, seed=1))
    if backend != "auto":
        assert used == backend


def test_uvloop(backend, data_file):
    uvloop = pytest.importorskip("uvloop")
    path, data = data_file

    async def main():
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        return await _random_preads(path, data, tasks=64, reads_each=20, seed=2)

    used = run(main(), loop_factory=uvloop.new_event_loop)
    if backend != "auto":
        assert used == backend


class _Counter:
    def __init__(self, monkeypatch):
        self.turns = 0
        for name in ("_on_ready", "_on_soon", "_on_timer"):
            orig = getattr(_driver._Driver, name)

            def counted(d, _orig=orig):
                self.turns += 1
                return _orig(d)
            monkeypatch.setattr(_driver._Driver, name, counted)


def test_waiting_op_costs_no_turns_and_no_cpu(backend, monkeypatch):
    """A read that waits 300 ms for a pipe: asyncio sleeps in epoll on backend_fd the whole time
    (a handful of turns, almost no CPU), and wakes up when the data arrives from another thread."""
    counter = _Counter(monkeypatch)
    r, w = os.pipe()

    async def main():
        async with unio.open(r, "rb") as f:
            await unio.os.stat(".")  # the unio loop exists before the clock starts
            turns0 = counter.turns
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.monotonic()
            threading.Timer(0.3, os.write, (w, b"hello")).start()
            got = await f.read(5)
            elapsed = time.monotonic() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        return got, elapsed, cpu, counter.turns - turns0

    try:
        got, elapsed, cpu, turns = run(main())
    finally:
        os.close(w)
    assert got == b"hello"
    assert 0.25 < elapsed < 5
    assert turns <= 10, turns
    assert cpu < 0.15, cpu


def test_loops_in_two_threads_are_separate(backend, data_file):
    path, data = data_file
    loops, errors = [], []

    def thread_main(seed):
        async def main():
            loops.append(_driver.current())
            await _random_preads(path, data, tasks=16, reads_each=50, seed=seed)
        try:
            run(main())
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=thread_main, args=(s,)) for s in (10, 11)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(loops) == 2 and loops[0] is not loops[1]


def test_unio_loop_goes_with_its_asyncio_loop(backend, no_fd_leak):
    async def main():
        await unio.os.stat(".")
        return _driver.current()

    lp = run(main())
    gc.collect()
    assert lp not in [d.lp for d in _driver._drivers.values()]


def test_closed_asyncio_loop_cancels_nothing_left_behind(backend, no_fd_leak):
    """Ops left in flight when asyncio.run() ends are cancelled, and their fds closed."""
    r, w = os.pipe()

    async def main():
        f = await unio.open(r, "rb")
        asyncio.get_running_loop().create_task(f.read(10))  # never gets data
        await asyncio.sleep(0.05)
        return f

    try:
        f = run(main())
        gc.collect()
    finally:
        os.close(w)
    os.close(r) if not f.closed else None


def test_fork_child_gets_a_fresh_loop(backend, data_file):
    path, data = data_file

    async def parent_part():
        await _random_preads(path, data, tasks=8, reads_each=10, seed=3)
        before = _driver.current()
        pid = os.fork()
        if pid == 0:  # the child: a new asyncio loop, a new unio loop
            code = 1
            try:
                async def child():
                    try:
                        lp = _driver.current()
                    except unio.BackendUnavailable as e:
                        # glibc's POSIX AIO does not survive fork: refused, clearly.
                        return 0 if backend == "posix_aio" and "fork" in str(e) else 2
                    assert lp is not before
                    await _random_preads(path, data, tasks=8, reads_each=10, seed=4)
                    return 0
                code = asyncio.run(asyncio.wait_for(child(), 30))
            finally:
                os._exit(code)
        # The parent's loop still works, with the child running beside it.
        await _random_preads(path, data, tasks=8, reads_each=10, seed=5)
        assert _driver.current() is before
        _, status = os.waitpid(pid, 0)
        return status

    status = run(parent_part())
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


_GIL_PROGRAM = r"""
import asyncio, errno, os, sys, threading, time
import unio

fifo = sys.argv[1]
unio.configure(backend=sys.argv[2])

def writer():
    # A non-blocking open of a FIFO's write end fails with ENXIO until a reader is opening it:
    # this thread runs Python (needs the GIL) until unio's open of the read end is under way,
    # which on the sync backend blocks the loop's own thread in open(2).
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            time.sleep(0.001)
    os.write(fd, b"through the fifo")
    os.close(fd)

async def main():
    t = threading.Thread(target=writer)
    t.start()
    async with unio.open(fifo, "rb") as f:
        data = await f.read()
    t.join()
    print(data.decode(), unio.backend())

asyncio.run(main())
"""


def test_the_gil_is_free_while_unio_blocks(backend, tmp_path):
    """unio's open of a FIFO blocks (in the pool, or on the sync backend in the loop's own
    thread) until a Python thread opens the other end: with the GIL held across the wait, that
    thread could never run and the program would hang."""
    import subprocess
    import sys
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = subprocess.run([sys.executable, "-c", _GIL_PROGRAM, str(fifo), backend],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert " ".join(words[:3]) == "through the fifo"
    if backend != "auto":
        assert words[3] == backend
