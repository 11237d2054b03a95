"""unio.open in binary modes against the built-in file objects: random operation sequences,
the file object's interface, errors as open() raises them, cancellation."""

import asyncio
import io
import os
import pathlib
import random

import pytest

import unio
from unio import _driver
from conftest import run

SIZE = 50_000


def _ref_open(path, mode):
    return open(path, mode, buffering=0)  # FileIO: no buffer, so os.pread/pwrite stay coherent


async def _apply(f, op, args):
    return await getattr(f, op)(*args)


def _ref_apply(f, op, args):
    if op == "pread":
        return os.pread(f.fileno(), *args)
    if op == "pwrite":
        return os.pwrite(f.fileno(), *args)
    return getattr(f, op)(*args)


def _random_ops(rng, readable, writable, n):
    ops = []
    for _ in range(n):
        choices = ["seek", "tell"]
        if readable:
            choices += ["read", "read", "readline", "pread", "read_all"]
        if writable:
            choices += ["write", "write", "truncate", "pwrite"]
        op = rng.choice(choices)
        if op == "read":
            ops.append(("read", (rng.choice([0, 1, 7, 100, 4095, 4096, 5000, 20000]),)))
        elif op == "read_all":
            ops.append(("read", ()))
        elif op == "readline":
            ops.append(("readline", (rng.choice([-1, -1, 3, 50]),)))
        elif op == "pread":
            ops.append(("pread", (rng.randrange(1, 9000), rng.randrange(0, SIZE + 100))))
        elif op == "write":
            ops.append(("write", (rng.randbytes(rng.choice([1, 10, 300, 5000])),)))
        elif op == "pwrite":
            ops.append(("pwrite", (rng.randbytes(rng.randrange(1, 3000)), rng.randrange(0, SIZE + 100))))
        elif op == "truncate":
            ops.append(("truncate", (rng.randrange(0, SIZE + 100),)))
        elif op == "seek":
            whence = rng.choice([0, 0, 1, 2])
            off = rng.randrange(0, SIZE) if whence == 0 else rng.randrange(-200, 200)
            ops.append(("seek", (off, whence)))
        else:
            ops.append(("tell", ()))
    return ops


def _outcome(fn):
    try:
        return ("ok", fn())
    except OSError as e:
        return ("err", type(e), e.errno)


async def _aoutcome(coro):
    try:
        return ("ok", await coro)
    except OSError as e:
        return ("err", type(e), e.errno)


MODES = ["rb", "r+b", "wb", "w+b", "ab", "a+b"]


@pytest.mark.parametrize("mode", MODES)
def test_random_operations_match_builtin(backend, tmp_path, mode):
    rng = random.Random(hash(mode) & 0xffff)
    initial = bytes(rng.randrange(256) if i % 37 else 10 for i in range(SIZE))  # some newlines
    readable = "r" in mode or "+" in mode
    writable = mode != "rb"

    async def main():
        for seq in range(6):
            a, b = tmp_path / f"u{seq}", tmp_path / f"b{seq}"
            a.write_bytes(initial)
            b.write_bytes(initial)
            ops = _random_ops(rng, readable, writable, 40)
            ref = _ref_open(b, mode)
            async with unio.open(a, mode) as f:
                for i, (op, args) in enumerate(ops):
                    want = _outcome(lambda: _ref_apply(ref, op, args))
                    got = await _aoutcome(_apply(f, op, args))
                    assert got == want, (seq, i, op, args[:1] if op != "write" else len(args[0]))
                assert await f.tell() == ref.tell()
            ref.close()
            assert a.read_bytes() == b.read_bytes(), seq

    run(main())


def test_readline_iteration_and_readlines(backend, tmp_path):
    p = tmp_path / "lines"
    text = b"".join(b"line %d %s\n" % (i, b"x" * (i * 37 % 9000)) for i in range(300)) + b"no newline at end"
    p.write_bytes(text)

    async def main():
        async with unio.open(p, "rb") as f:
            lines = [line async for line in f]
        assert lines == open(p, "rb").readlines()
        async with unio.open(p, "rb") as f:
            assert await f.readlines() == open(p, "rb").readlines()
            await f.seek(0)
            assert await f.readlines(10000) == open(p, "rb").readlines(10000)

    run(main())


def test_interface(backend, tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"0123456789")

    async def main():
        f = await unio.open(str(p), "r+b")
        assert f.name == str(p) and f.mode == "rb+" and not f.closed
        assert isinstance(f.fileno(), int) and f.readable()
        assert await f.writable() and await f.seekable() and not await f.isatty()
        assert await f.read1(3) == b"012"
        b = bytearray(4)
        assert await f.readinto(b) == 4 and b == b"3456"
        assert await f.pread(3, 1) == b"123" and await f.tell() == 7
        assert await f.pwrite(b"AB", 8) == 2 and await f.tell() == 7
        assert await f.read() == b"7AB"
        await f.writelines([b"x", b"y"])
        await f.flush()
        await f.close()
        assert f.closed
        await f.close()  # twice is fine
        with pytest.raises(ValueError):
            await f.read()
        with pytest.raises(ValueError):
            f.fileno()
        assert p.read_bytes() == b"01234567ABxy"
        async with unio.open(p, "rb") as g:
            with pytest.raises(io.UnsupportedOperation):
                await g.write(b"x")
            with pytest.raises(io.UnsupportedOperation):
                await g.truncate()
            with pytest.raises(TypeError):
                await g.pread("x", 0)
        async with unio.open(p, "wb") as g:
            with pytest.raises(io.UnsupportedOperation):
                await g.read()
            with pytest.raises(TypeError, match="bytes-like"):
                await g.write("text")
            assert await g.write(memoryview(b"abc")) == 3
        async with unio.open(p, "ab") as g:
            assert await g.tell() == 3
            await g.write(b"de")
            assert await g.tell() == 5
        assert p.read_bytes() == b"abcde"

    run(main())


def test_big_reads_and_writes(backend, tmp_path):
    data = random.Random(5).randbytes(3 << 20)
    p = tmp_path / "big"

    async def main():
        async with unio.open(p, "wb") as f:
            assert await f.write(data) == len(data)
        async with unio.open(p, "rb") as f:
            assert await f.read() == data
        async with unio.open(p, "rb", buffering=0) as f:
            assert await f.read(1 << 20) == data[:1 << 20]
            assert await f.read(5 << 20) == data[1 << 20:]
            assert await f.read(10) == b""
        assert await unio.read_bytes(p) == data

    run(main())


def test_direct_io(backend, tmp_path):
    data = random.Random(6).randbytes(1 << 20)
    p = tmp_path / "direct"
    p.write_bytes(data)

    async def main():
        async with unio.open(p, "rb", direct=True) as f:
            assert await f.read(4096) == data[:4096]
            assert await f.pread(1000, 12345) == data[12345:13345]  # misaligned: bounced
            assert await f.read() == data[4096:]
        async with unio.open(p, "r+b", direct=True) as f:
            await f.pwrite(b"z" * 5000, 333)
        assert p.read_bytes() == data[:333] + b"z" * 5000 + data[5333:]

    run(main())


def test_pipes_are_read_and_written_at_their_position(backend):
    r, w = os.pipe()

    async def main():
        async with unio.open(r, "rb") as fr, unio.open(w, "wb") as fw:
            assert not await fr.seekable()
            with pytest.raises(OSError) as e:
                await fr.tell()
            assert e.value.errno == 29  # ESPIPE, as io
            await fw.write(b"one\ntwo\n")
            assert await fr.readline() == b"one\n"
            assert await fr.read(4) == b"two\n"

    run(main())


def _errors_of(fn):
    try:
        fn()
    except OSError as e:
        return type(e), e.errno, e.strerror, e.filename, str(e)
    return None


async def _aerrors_of(coro):
    try:
        f = await coro
        await f.close()
    except OSError as e:
        return type(e), e.errno, e.strerror, e.filename, str(e)
    return None


def test_errors_are_the_builtin_opens(backend, tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    cases = [
        (str(tmp_path / "missing"), "rb"),
        (tmp_path / "missing", "r"),
        (bytes(tmp_path / "missing"), "rb"),
        (str(tmp_path / "missing" / "x"), "wb"),
        (str(tmp_path), "rb"),
        (str(tmp_path), "wb"),
        (str(tmp_path / "file"), "xb"),
        (str(tmp_path / "file" / "sub"), "rb"),
        (str(tmp_path / "loop1"), "rb"),
        (str(tmp_path / ("n" * 300)), "wb"),
        ("/sys/kernel/notes", "wb"),
        ("", "rb"),
    ]

    async def main():
        for path, mode in cases:
            want = _errors_of(lambda: open(path, mode))
            got = await _aerrors_of(unio.open(path, mode))
            assert want is not None and got == want, (path, mode)

    run(main())


def test_bad_arguments_are_the_builtin_opens(backend, tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"")
    cases = [dict(mode="rw"), dict(mode="rbt"), dict(mode="z"), dict(mode=5), dict(mode="rb", encoding="utf-8"),
             dict(mode="r", buffering=0), dict(mode="r", newline="x"), dict(mode="rb", newline="\n")]

    async def main():
        for kw in cases:
            with pytest.raises(Exception) as want:
                open(p, **kw)
            with pytest.raises(type(want.value)) as got:
                await unio.open(p, **kw)
            assert str(got.value) == str(want.value), kw

    run(main())


def test_cancel_half_of_200_reads(backend, tmp_path, no_fd_leak):
    data = random.Random(8).randbytes(1 << 20)
    p = tmp_path / "d"
    p.write_bytes(data)

    async def main():
        async with unio.open(p, "rb") as f:
            offs = [random.Random(i).randrange(0, len(data) - 8192) for i in range(200)]
            tasks = [asyncio.ensure_future(f.pread(8192, o)) for o in offs]
            await asyncio.sleep(0)  # every read is submitted
            for t in tasks[::2]:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for i, (o, r) in enumerate(zip(offs, results)):
                if i % 2:
                    assert r == data[o:o + 8192]
                else:
                    assert isinstance(r, asyncio.CancelledError)
            # and the file still works
            assert await f.pread(10, 0) == data[:10]
            await asyncio.sleep(0.05)
            assert _driver.current().in_flight() == 0

    run(main())


def test_cancel_reads_that_wait(backend, no_fd_leak):
    """Reads of pipes that never get data are really cancelled in unio."""
    pipes = [os.pipe() for _ in range(20)]

    async def main():
        files = [await unio.open(r, "rb") for r, _ in pipes]
        tasks = [asyncio.ensure_future(f.read(10)) for f in files]
        await asyncio.sleep(0.05)
        lp = _driver.current()
        assert lp.in_flight() == 20
        for t in tasks:
            t.cancel()
        for t in tasks:
            with pytest.raises(asyncio.CancelledError):
                await t
        for _ in range(100):
            if lp.in_flight() == 0:
                break
            await asyncio.sleep(0.01)
        assert lp.in_flight() == 0
        for f in files:
            await f.close()

    try:
        run(main())
    finally:
        for _, w in pipes:
            os.close(w)


def test_cancelled_opens_leak_no_fd(backend, tmp_path, no_fd_leak):
    p = tmp_path / "f"
    p.write_bytes(b"hello")

    async def main():
        tasks = [asyncio.ensure_future(unio.open(p, "rb")) for _ in range(200)]
        await asyncio.sleep(0)
        for t in tasks[::2]:
            t.cancel()
        res = await asyncio.gather(*tasks, return_exceptions=True)
        for i, f in enumerate(res):
            if i % 2:
                assert await f.read() == b"hello"
                await f.close()
            else:
                assert isinstance(f, asyncio.CancelledError)
        await asyncio.sleep(0.05)  # opens that completed anyway are closed when their turn resolves them

    run(main())


def test_await_and_async_with_forms(backend, tmp_path):
    p = tmp_path / "f"

    async def main():
        f = await unio.open(p, "wb")
        await f.write(b"abc")
        await f.close()
        async with unio.open(pathlib.Path(p), "rb") as g:
            assert await g.read() == b"abc"
        assert g.closed

    run(main())
