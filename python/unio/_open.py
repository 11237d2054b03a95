"""unio.open(): the built-in open()'s arguments and errors, aiofiles' awaitable context manager."""

import asyncio
import errno
import os
import stat as _stat
import warnings

from . import _driver
from ._file import BinaryFile
from ._text import TextFile, check_newline

_CancelledError = asyncio.CancelledError


def _parse_mode(mode, buffering, encoding, errors, newline):
    """Checks the arguments as io.open() does; returns (flags, readable, writable, append,
    binary, the binary file's mode string)."""
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not {type(mode).__name__}")
    if not isinstance(buffering, int):
        raise TypeError(f"'{type(buffering).__name__}' object cannot be interpreted as an integer")
    modes = set(mode)
    if modes - set("axrwb+t") or len(mode) > len(modes):
        raise ValueError(f"invalid mode: {mode!r}")
    creating, reading, writing, appending = ("x" in modes, "r" in modes, "w" in modes, "a" in modes)
    updating, text, binary = "+" in modes, "t" in modes, "b" in modes
    if text and binary:
        raise ValueError("can't have text and binary mode at once")
    if creating + reading + writing + appending > 1:
        raise ValueError("must have exactly one of create/read/write/append mode")
    if not (creating or reading or writing or appending):
        raise ValueError("Must have exactly one of create/read/write/append mode and at most one plus")
    if binary and encoding is not None:
        raise ValueError("binary mode doesn't take an encoding argument")
    if binary and errors is not None:
        raise ValueError("binary mode doesn't take an errors argument")
    if binary and newline is not None:
        raise ValueError("binary mode doesn't take a newline argument")
    if binary and buffering == 1:
        warnings.warn("line buffering (buffering=1) isn't supported in binary mode, the default buffer "
                      "size will be used", RuntimeWarning, 3)
    if not binary:
        if buffering == 0:
            raise ValueError("can't have unbuffered text I/O")
        check_newline(newline)
    readable = reading or updating
    writable = not reading or updating
    flags = 0
    if creating:
        flags |= os.O_EXCL | os.O_CREAT
        raw_mode = "xb+" if updating else "xb"
    elif writing:
        flags |= os.O_CREAT | os.O_TRUNC
        raw_mode = "rb+" if updating else "wb"
    elif appending:
        flags |= os.O_APPEND | os.O_CREAT
        raw_mode = "ab+" if updating else "ab"
    else:
        raw_mode = "rb+" if updating else "rb"
    flags |= os.O_RDWR if readable and writable else (os.O_RDONLY if readable else os.O_WRONLY)
    return flags, readable, writable, appending, binary, raw_mode


async def _open_fd(lp, path, flags, name):
    fut = lp.open(os.fsencode(path), flags, 0o666, name)
    try:
        return await fut
    except _CancelledError:
        # The open may have completed before the cancel reached it: then close the fd.
        if not lp.cancel(fut) and fut.done() and not fut.cancelled() and fut.exception() is None:
            os.close(fut.result())
        raise


async def _open(file, mode, buffering, encoding, errors, newline, closefd, opener, direct):
    flags, readable, writable, append, binary, raw_mode = _parse_mode(mode, buffering, encoding, errors, newline)
    if direct:
        flags |= os.O_DIRECT
    if isinstance(file, int):
        if file < 0:
            raise ValueError("negative file descriptor")
        fd, name = file, file
    else:
        if not closefd:
            raise ValueError("Cannot use closefd=False with file name")
        name = os.fspath(file)
        if opener is not None:
            fd = opener(name, flags | os.O_CLOEXEC)
            if not isinstance(fd, int) or fd < 0:
                raise ValueError(f"opener returned {fd}")
        else:
            fd = await _open_fd(_driver.current(), name, flags, name)
    try:
        if _stat.S_ISDIR(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        raw = BinaryFile(fd, name, raw_mode, readable, writable, append, closefd,
                         buffering if buffering > 1 else None)
        if binary:
            return raw
        return TextFile(raw, encoding, errors, newline, buffering == 1, mode)
    except BaseException:
        if closefd:
            os.close(fd)
        raise


class _OpenContext:
    """What unio.open() returns: await it for the file, or use it with `async with` (the file is
    closed on the way out), as aiofiles' open()."""

    __slots__ = ("_coro", "_file")

    def __init__(self, coro):
        self._coro = coro
        self._file = None

    def __await__(self):
        return self._coro.__await__()

    def send(self, value):
        return self._coro.send(value)

    def throw(self, *args):
        return self._coro.throw(*args)

    def close(self):
        return self._coro.close()

    async def __aenter__(self):
        self._file = await self._coro
        return self._file

    async def __aexit__(self, exc_type, exc, tb):
        f, self._file = self._file, None
        await f.close()


def open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None,
         *, direct=False, loop=None, executor=None):
    """Opens a file on unio; the built-in open()'s arguments, aiofiles' use:

        async with unio.open("data.bin", "rb") as f:
            head = await f.read(4096)
        f = await unio.open("log.txt", "a")

    direct=True adds O_DIRECT (the file system's page cache is bypassed; misaligned requests are
    served through aligned bounce buffers, and a file system that refuses O_DIRECT gives a
    buffered file). loop and executor are accepted for aiofiles compatibility and ignored.
    Errors are the built-in open()'s: FileNotFoundError, PermissionError, IsADirectoryError, ...
    with errno and filename.
    """
    del loop, executor
    return _OpenContext(_open(file, mode, buffering, encoding, errors, newline, closefd, opener, direct))
