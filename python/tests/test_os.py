"""unio.os and unio.os.path against the os module: results, and errors with errno and
filenames."""

import os
import socket

import pytest

import unio
from conftest import run

FIELDS = ["st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime", "st_mtime",
          "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_blksize", "st_blocks", "st_rdev"]


def _fields(st):
    return tuple(st) + tuple(getattr(st, f) for f in FIELDS)


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "file").write_bytes(b"x" * 5000)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "inner").write_bytes(b"")
    os.symlink("file", tmp_path / "link")
    os.symlink("missing", tmp_path / "dangling")
    os.symlink("dir", tmp_path / "dirlink")
    return tmp_path


async def _err(coro):
    try:
        await coro
    except OSError as e:
        return type(e), e.errno, e.strerror, e.filename, e.filename2
    return None


def _ref_err(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except OSError as e:
        return type(e), e.errno, e.strerror, e.filename, e.filename2
    return None


def test_stat_matches_os(backend, tree):
    paths = [tree / "file", str(tree / "dir"), bytes(tree / "link"), tree / "dirlink", "/dev/null", "/"]

    async def main():
        for p in paths:
            assert _fields(await unio.os.stat(p)) == _fields(os.stat(p)), p
            assert _fields(await unio.os.lstat(p)) == _fields(os.lstat(p)), p
            assert _fields(await unio.os.stat(p, follow_symlinks=False)) == _fields(os.lstat(p)), p
        fd = os.open(tree / "file", os.O_RDONLY)
        try:
            assert _fields(await unio.os.stat(fd)) == _fields(os.stat(fd))
        finally:
            os.close(fd)
        dfd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert _fields(await unio.os.stat("file", dir_fd=dfd)) == _fields(os.stat("file", dir_fd=dfd))
        finally:
            os.close(dfd)

    run(main())


def test_errors_match_os(backend, tree):
    t = tree
    cases = [
        ("stat", (t / "missing",)), ("stat", (t / "dangling",)), ("stat", (str(t / "file" / "x"),)),
        ("stat", (b"/nonexistent/x",)), ("stat", (999999,)), ("lstat", (t / "missing",)),
        ("remove", (t / "missing",)), ("remove", (t / "dir",)), ("unlink", (str(t / "missing"),)),
        ("rmdir", (t / "file",)), ("rmdir", (t / "missing",)), ("rmdir", (t,)),
        ("mkdir", (t / "dir",)), ("mkdir", (t / "missing" / "x",)),
        ("rename", (t / "missing", t / "other")), ("rename", (t / "dir", t / "file")),
        ("replace", (t / "file", t / "dir")), ("listdir", (t / "missing",)), ("listdir", (t / "file",)),
        ("scandir", (str(t / "missing"),)),
    ]

    async def main():
        for name, args in cases:
            want = _ref_err(getattr(os, name), *args)
            got = await _err(getattr(unio.os, name)(*args))
            assert want is not None and got == want, (name, args)

    run(main())


def test_file_system_changes_match_os(backend, tmp_path):
    async def main():
        await unio.os.mkdir(tmp_path / "a")
        await unio.os.mkdir(str(tmp_path / "b"), 0o700)
        assert os.stat(tmp_path / "b").st_mode & 0o777 == 0o700 & ~_umask()
        await unio.os.makedirs(tmp_path / "c" / "d" / "e")
        await unio.os.makedirs(tmp_path / "c" / "d" / "e", exist_ok=True)
        with pytest.raises(FileExistsError):
            await unio.os.makedirs(tmp_path / "c" / "d" / "e")
        assert os.path.isdir(tmp_path / "c" / "d" / "e")
        await unio.write_bytes(tmp_path / "a" / "f", b"data")
        await unio.os.rename(tmp_path / "a" / "f", tmp_path / "a" / "g")
        await unio.write_bytes(tmp_path / "a" / "h", b"other")
        await unio.os.replace(tmp_path / "a" / "g", tmp_path / "a" / "h")
        assert os.listdir(tmp_path / "a") == ["h"] and (tmp_path / "a" / "h").read_bytes() == b"data"
        await unio.os.remove(tmp_path / "a" / "h")
        await unio.os.rmdir(tmp_path / "a")
        assert sorted(os.listdir(tmp_path)) == ["b", "c"]
        await unio.os.unlink(str(tmp_path / "b")) if False else await unio.os.rmdir(tmp_path / "b")

    run(main())


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_listdir_and_scandir_match_os(backend, tree):
    for i in range(300):
        (tree / "dir" / f"f{i:03}é").write_bytes(b"")

    async def main():
        for p in (tree, str(tree / "dir"), bytes(tree / "dir")):
            assert sorted(await unio.os.listdir(p)) == sorted(os.listdir(p)), p
        cwd = os.getcwd()
        os.chdir(tree)
        try:
            assert sorted(await unio.os.listdir()) == sorted(os.listdir())
        finally:
            os.chdir(cwd)
        with await unio.os.scandir(tree) as it:
            mine = {e.name: e for e in it}
        ref = {e.name: e for e in os.scandir(tree)}
        assert mine.keys() == ref.keys()
        for name, e in mine.items():
            r = ref[name]
            assert (e.path, e.inode(), e.is_symlink(), os.fspath(e)) == (r.path, r.inode(), r.is_symlink(), os.fspath(r))
            for follow in (True, False):
                assert e.is_dir(follow_symlinks=follow) == r.is_dir(follow_symlinks=follow), name
                assert e.is_file(follow_symlinks=follow) == r.is_file(follow_symlinks=follow), name
            assert _fields(e.stat(follow_symlinks=False)) == _fields(r.stat(follow_symlinks=False))
            if name != "dangling":
                assert _fields(e.stat()) == _fields(r.stat())
        bnames = [e.name for e in await unio.os.scandir(bytes(tree))]
        assert sorted(bnames) == sorted(os.listdir(bytes(tree)))

    run(main())


def test_path_predicates_match_os_path(backend, tree):
    paths = [tree / "file", tree / "dir", tree / "link", tree / "dangling", tree / "dirlink", tree / "missing",
             str(tree / "file" / "x"), b"/"]

    async def main():
        for p in paths:
            for name in ("exists", "isfile", "isdir", "islink"):
                assert await getattr(unio.os.path, name)(p) == getattr(os.path, name)(p), (name, p)
        assert await unio.os.path.getsize(tree / "file") == 5000
        assert await unio.os.path.getmtime(tree / "file") == os.path.getmtime(tree / "file")
        with pytest.raises(FileNotFoundError):
            await unio.os.path.getsize(tree / "missing")

    run(main())


def test_sendfile_to_a_socket_a_pipe_and_a_file(backend, tree):
    data = os.urandom(200_000)
    (tree / "src").write_bytes(data)

    async def main():
        fd = os.open(tree / "src", os.O_RDONLY)
        try:
            a, b = socket.socketpair()
            with a, b:
                a.setblocking(False)
                n = await unio.os.sendfile(a.fileno(), fd, 1000, 50_000)
                got = b""
                while len(got) < n:
                    got += b.recv(1 << 20)
                assert n > 0 and got == data[1000:1000 + n]
            r, w = os.pipe()
            try:
                n = await unio.os.sendfile(w, fd, 0, 1000)
                assert n == 1000 and os.read(r, 5000) == data[:1000]
            finally:
                os.close(r)
                os.close(w)
            out = os.open(tree / "dst", os.O_WRONLY | os.O_CREAT)
            try:
                os.lseek(fd, 10, os.SEEK_SET)
                total = 0
                while total < len(data) - 10:
                    n = await unio.os.sendfile(out, fd, None, 100_000)  # from fd's position
                    assert n > 0
                    total += n
                assert os.lseek(fd, 0, os.SEEK_CUR) == len(data)
                assert await unio.os.sendfile(out, fd, None, 10) == 0
            finally:
                os.close(out)
            assert (tree / "dst").read_bytes() == data[10:]
            with pytest.raises(OSError) as e:
                await unio.os.sendfile(out, fd, 0, 10)
            assert e.value.errno == 9  # EBADF, as os.sendfile
        finally:
            os.close(fd)

    run(main())
