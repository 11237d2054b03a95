"""The checks of issue 15's held-out program, under uvloop: byte-equal reads and writes (binary and
text), FileNotFoundError with errno and filename, unio.os against os, cancelling 100 of 200
reads (and half of 1000), 1000 concurrent tasks."""

import asyncio
import os
import random

import pytest

import unio
from conftest import run

uvloop = pytest.importorskip("uvloop")


async def _nothing():
    pass


# libuv keeps a pipe per process from its first loop on; take it before counting fds.
run(_nothing(), loop_factory=uvloop.new_event_loop)


def test_held_out_program_under_uvloop(backend, tmp_path, no_fd_leak):
    data = random.Random(9).randbytes(1 << 20)
    text = "".join(random.Random(9).choice(["é", "a", "\n", "xyz", "\r\n"]) for _ in range(20000))

    async def main():
        await unio.write_bytes(tmp_path / "b", data)
        assert (tmp_path / "b").read_bytes() == data
        assert await unio.read_bytes(tmp_path / "b") == data
        await unio.write_text(tmp_path / "t", text)
        with open(tmp_path / "t", encoding="utf-8") as f:
            assert await unio.read_text(tmp_path / "t") == f.read()
        with pytest.raises(FileNotFoundError) as e:
            await unio.open(tmp_path / "missing")
        assert e.value.errno == 2 and e.value.filename == str(tmp_path / "missing")
        st = await unio.os.stat(tmp_path / "b")
        assert tuple(st) == tuple(os.stat(tmp_path / "b"))
        async with unio.open(tmp_path / "b", "rb") as f:
            for n, cancel in ((200, 100), (1000, 500)):
                offs = [random.Random(i).randrange(0, len(data) - 4096) for i in range(n)]
                tasks = [asyncio.ensure_future(f.pread(4096, o)) for o in offs]
                await asyncio.sleep(0)
                for t in random.Random(n).sample(tasks, cancel):
                    t.cancel()
                res = await asyncio.gather(*tasks, return_exceptions=True)
                assert sum(isinstance(r, asyncio.CancelledError) for r in res) == cancel
                for o, r in zip(offs, res):
                    assert isinstance(r, asyncio.CancelledError) or r == data[o:o + 4096]

            async def reader(i):
                o = (i * 7919) % (len(data) - 4096)
                return await f.pread(4096, o) == data[o:o + 4096]
            assert all(await asyncio.gather(*(reader(i) for i in range(1000))))
        return unio.backend()

    used = run(main(), loop_factory=uvloop.new_event_loop)
    if backend != "auto":
        assert used == backend
