"""unio.os: aiofiles.os' awaitable file system calls, as unio ops.

The results and errors are the os module's: os.stat_result, OSError subclasses with errno,
filename (and filename2 for rename/replace).
"""

import asyncio
import os
import stat as _stat

from . import _driver

__all__ = ["stat", "lstat", "rename", "replace", "remove", "unlink", "mkdir", "makedirs", "rmdir", "listdir",
           "scandir", "sendfile", "path", "DirEntry"]

_CancelledError = asyncio.CancelledError
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_EMPTY_PATH = 0x1000
_DT_UNKNOWN, _DT_DIR, _DT_REG, _DT_LNK = 0, 4, 8, 10


async def _run(lp, fut):
    try:
        return await fut
    except _CancelledError:
        lp.cancel(fut)
        raise


def _dirfd(dir_fd):
    return _AT_FDCWD if dir_fd is None else dir_fd


async def stat(path, *, dir_fd=None, follow_symlinks=True):
    """os.stat: path (str, bytes, PathLike) or an open fd."""
    lp = _driver.current()
    if isinstance(path, int):
        return await _run(lp, lp.stat(b"", path, _AT_EMPTY_PATH, path))
    path = os.fspath(path)
    flags = 0 if follow_symlinks else _AT_SYMLINK_NOFOLLOW
    return await _run(lp, lp.stat(os.fsencode(path), _dirfd(dir_fd), flags, path))


async def lstat(path, *, dir_fd=None):
    return await stat(path, dir_fd=dir_fd, follow_symlinks=False)


async def rename(src, dst):
    lp = _driver.current()
    src, dst = os.fspath(src), os.fspath(dst)
    await _run(lp, lp.rename(os.fsencode(src), os.fsencode(dst), src, dst))


replace = rename  # rename(2) replaces on Linux, as os.replace does


async def remove(path):
    lp = _driver.current()
    path = os.fspath(path)
    await _run(lp, lp.unlink(os.fsencode(path), False, path))


unlink = remove


async def rmdir(path):
    lp = _driver.current()
    path = os.fspath(path)
    await _run(lp, lp.unlink(os.fsencode(path), True, path))


async def mkdir(path, mode=0o777):
    lp = _driver.current()
    path = os.fspath(path)
    await _run(lp, lp.mkdir(os.fsencode(path), mode, path))


async def makedirs(name, mode=0o777, exist_ok=False):
    """os.makedirs: creates the missing parents too (with mode 0o777, as os.makedirs)."""
    name = os.fspath(name)
    head, tail = os.path.split(name)
    if not tail:
        head, tail = os.path.split(head)
    if head and tail and not await path.exists(head):
        try:
            await makedirs(head, exist_ok=exist_ok)
        except FileExistsError:
            pass  # another task created it meanwhile
        cdir = os.curdir if isinstance(tail, str) else os.curdir.encode()
        if tail == cdir:
            return
    try:
        await mkdir(name, mode)
    except OSError:
        if not exist_ok or not await path.isdir(name):
            raise


async def listdir(path="."):
    """os.listdir: names in directory order, str for a str path, bytes for a bytes path."""
    lp = _driver.current()
    path = os.fspath(path)
    entries = await _run(lp, lp.scandir(os.fsencode(path), isinstance(path, str), path))
    return [e[0] for e in entries]


class DirEntry:
    """os.DirEntry's interface for an entry of unio.os.scandir(). is_dir(), is_file() and
    is_symlink() answer from the directory's entry type; stat() and the rare entries whose type
    the file system does not store call os.stat synchronously, as os.DirEntry does."""

    __slots__ = ("name", "path", "_type", "_ino", "_stat", "_lstat")

    def __init__(self, top, name, d_type, ino):
        self.name = name
        self.path = os.path.join(top, name)
        self._type = d_type
        self._ino = ino
        self._stat = None
        self._lstat = None

    def inode(self):
        return self._ino

    def is_symlink(self):
        if self._type != _DT_UNKNOWN:
            return self._type == _DT_LNK
        return _stat.S_ISLNK(self.stat(follow_symlinks=False).st_mode)

    def _is(self, dt, test, follow_symlinks):
        if self._type != _DT_UNKNOWN and not (follow_symlinks and self._type == _DT_LNK):
            return self._type == dt
        try:
            return test(self.stat(follow_symlinks=follow_symlinks).st_mode)
        except FileNotFoundError:
            return False

    def is_dir(self, *, follow_symlinks=True):
        return self._is(_DT_DIR, _stat.S_ISDIR, follow_symlinks)

    def is_file(self, *, follow_symlinks=True):
        return self._is(_DT_REG, _stat.S_ISREG, follow_symlinks)

    def stat(self, *, follow_symlinks=True):
        if follow_symlinks:
            if self._stat is None:
                self._stat = os.stat(self.path) if self.is_symlink() else self.stat(follow_symlinks=False)
            return self._stat
        if self._lstat is None:
            self._lstat = os.lstat(self.path)
        return self._lstat

    def __fspath__(self):
        return self.path

    def __repr__(self):
        return f"<DirEntry {self.name!r}>"


class _ScandirIterator:
    def __init__(self, entries):
        self._it = iter(entries)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def close(self):
        self._it = iter(())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


async def scandir(path="."):
    """os.scandir: an iterator of DirEntry (and a context manager), listed by one unio op."""
    lp = _driver.current()
    path = os.fspath(path)
    entries = await _run(lp, lp.scandir(os.fsencode(path), isinstance(path, str), path))
    return _ScandirIterator([DirEntry(path, name, t, ino) for name, t, ino in entries])


async def sendfile(out_fd, in_fd, offset, count):
    """os.sendfile: up to count bytes of in_fd from offset (None: from its position, which then
    advances) to out_fd at its position; returns the count sent. To a socket or a pipe, unio's
    sendfile (out_fd is made non-blocking); to a regular file, copy_file_range."""
    lp = _driver.current()
    pos = offset
    if offset is None:
        pos = os.lseek(in_fd, 0, os.SEEK_CUR)
    if _stat.S_ISREG(os.fstat(out_fd).st_mode):
        n = await _run(lp, lp.copy_file_range(in_fd, pos, out_fd, -1, count))
    else:
        n = await _run(lp, lp.sendfile(out_fd, in_fd, pos, count))
    if offset is None:
        os.lseek(in_fd, pos + n, os.SEEK_SET)
    return n


from . import ospath as path  # noqa: E402 (ospath uses this module)
