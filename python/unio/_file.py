"""Binary file objects: aiofiles' method names, every I/O method awaitable, on unio.

A BinaryFile keeps its own position (reads and writes are pread/pwrite at it, so a cancelled
read moves nothing) and a read-ahead buffer for small reads and readline, like
io.BufferedReader; writes go straight to the file (no write buffer: flush() has nothing to do).
Files that cannot seek (pipes, FIFOs, terminals) are read and written at the fd's own position.
In append mode writes go to the end whatever the position (O_APPEND), which is then read back
from the fd when needed.

Methods that move the position (read*, write*, seek, truncate) run one at a time per file, in
call order; pread and pwrite run at once, as many as are awaited.
"""

import asyncio
import collections
import io
import os
import stat as _stat
import warnings

from . import _driver

_CancelledError = asyncio.CancelledError
_get_running_loop = _driver._get_running_loop
_SEEK_WHENCES = (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END) + tuple(
    w for w in (getattr(os, "SEEK_DATA", None), getattr(os, "SEEK_HOLE", None)) if w is not None)
_MAX_CHUNK = 1 << 30  # one read of a whole file asks for at most this much at a time


async def _await_op(lp, fut):
    """Awaits an op's future; a cancelled await cancels the op in unio."""
    try:
        return await fut
    except _CancelledError:
        lp.cancel(fut)
        raise


class AsyncFileProtocol:
    """`async with` closes the file; `async for` gives its lines (readline() until it gives
    nothing), as aiofiles' file objects do."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def __aiter__(self):
        return self

    async def __anext__(self):
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class _Turns:
    """A FIFO lock with a fast path: enter() returns None when the lock was free (and is now
    held), else a coroutine to await for it."""

    __slots__ = ("_busy", "_waiters")

    def __init__(self):
        self._busy = False
        self._waiters = None

    def enter(self):
        if not self._busy and not self._waiters:
            self._busy = True
            return None
        return self._wait()

    async def _wait(self):
        if self._waiters is None:
            self._waiters = collections.deque()
        fut = _get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except _CancelledError:
            if fut.done() and not fut.cancelled():
                self.leave()  # the lock was handed to us: pass it on
            raise

    def leave(self):
        w = self._waiters
        while w:
            fut = w.popleft()
            if not fut.done():
                fut.set_result(None)  # handed over: stays busy
                return
        self._busy = False


class BinaryFile(AsyncFileProtocol):
    """A file opened by unio.open() in a binary mode (aiofiles' AsyncBufferedReader/IOBase)."""

    def __init__(self, fd, name, mode, readable, writable, append, closefd=True, buffer_size=None):
        self._fd = fd
        self._name = name
        self._mode = mode
        self._readable = readable
        self._writable = writable
        self._append = append
        self._closefd = closefd
        self._closed = False
        self._turns = _Turns()
        st = os.fstat(fd)
        self._regular = _stat.S_ISREG(st.st_mode)
        try:
            pos = os.lseek(fd, 0, os.SEEK_END if append else os.SEEK_CUR)
            self._seekable = True
        except OSError:
            pos = None
            self._seekable = False
        self._pos = pos  # where the next read or write is; None: ask the fd (append mode)
        if buffer_size is None or buffer_size <= 1:
            buffer_size = st.st_blksize if st.st_blksize > 1 else io.DEFAULT_BUFFER_SIZE
        self._bufsize = max(buffer_size, 1)
        self._buf = b""  # read ahead; unread bytes from self._bufpos
        self._bufpos = 0
        self._aloop = None
        self._lp = None

    # ---- properties and synchronous methods (as aiofiles proxies them) ----
    @property
    def name(self):
        return self._name

    @property
    def mode(self):
        return self._mode

    @property
    def closed(self):
        return self._closed

    def fileno(self):
        self._check_open("I/O operation on closed file")
        return self._fd

    def readable(self):
        self._check_open("I/O operation on closed file")
        return self._readable

    def __repr__(self):
        return f"<unio.BinaryFile name={self._name!r} mode={self._mode!r}{' closed' if self._closed else ''}>"

    def __del__(self):
        if not getattr(self, "_closed", True) and self._closefd:
            warnings.warn(f"unclosed file {self!r}", ResourceWarning, source=self)
            self._closed = True
            try:
                os.close(self._fd)
            except OSError:
                pass

    # ---- helpers ----
    def _loop(self):
        aloop = _get_running_loop()
        if aloop is not self._aloop:
            self._lp = _driver.lp_of(aloop)
            self._aloop = aloop
        return self._lp

    def _check_open(self, msg="I/O operation on closed file."):
        if self._closed:
            raise ValueError(msg)

    def _check_readable(self):
        self._check_open("read of closed file")
        if not self._readable:
            raise io.UnsupportedOperation("read")

    def _check_writable(self):
        self._check_open("write to closed file")
        if not self._writable:
            raise io.UnsupportedOperation("write")

    def _buffered(self):
        return len(self._buf) - self._bufpos

    def _drop_buffer(self):
        """Forgets the read-ahead; the position becomes the logical one."""
        n = len(self._buf) - self._bufpos
        if n and self._pos is not None:
            self._pos -= n
        self._buf = b""
        self._bufpos = 0

    def _take(self, n):
        b, p = self._buf, self._bufpos
        out = b[p:p + n] if (p or n < len(b)) else b
        self._bufpos = p + len(out)
        if self._bufpos >= len(b):
            self._buf = b""
            self._bufpos = 0
        return out

    def _raw_pos(self):
        if not self._seekable:
            return -1
        if self._pos is None:
            self._pos = os.lseek(self._fd, 0, os.SEEK_CUR)
        return self._pos

    async def _raw_read(self, lp, n):
        fut = lp.read(self._fd, n, self._raw_pos())
        try:
            data = await fut
        except _CancelledError:
            lp.cancel(fut)
            raise
        if self._seekable:
            self._pos += len(data)
        return data

    async def _fill(self, lp):
        """Reads one buffer's worth after what is buffered; False at end of file."""
        data = await self._raw_read(lp, self._bufsize)
        if not data:
            return False
        rest = self._buf[self._bufpos:]
        self._buf = rest + data if rest else data
        self._bufpos = 0
        return True

    async def _read_all(self, lp):
        chunks = [self._take(self._buffered())] if self._buffered() else []
        want = self._bufsize
        if self._regular:
            size = os.fstat(self._fd).st_size
            want = max(size - self._raw_pos(), 0) + 1
        while True:
            data = await self._raw_read(lp, min(want, _MAX_CHUNK))
            if not data:
                break
            chunks.append(data)
            if self._regular and len(data) < min(want, _MAX_CHUNK):
                break  # a short read of a regular file is its end
            want = max(want, 65536) * 2
        return b"".join(chunks)

    async def _read_n(self, lp, n):
        have = self._buffered()
        if n <= have:
            return self._take(n)
        chunks = [self._take(have)] if have else []
        need = n - have
        if need < self._bufsize:
            while self._buffered() < need:
                if not await self._fill(lp) or self._regular:
                    break  # end of file (a short read of a regular file is its end)
            chunks.append(self._take(need))
            return b"".join(chunks)
        while need > 0:
            data = await self._raw_read(lp, need)
            if not data:
                break
            chunks.append(data)
            need -= len(data)
            if self._regular:
                break  # a short read of a regular file is its end
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # ---- reading ----
    async def read(self, size=-1):
        self._check_readable()
        size = -1 if size is None else size.__index__()
        lp = self._loop()
        w = self._turns.enter()
        if w is not None:
            await w
        try:
            if size < 0:
                return await self._read_all(lp)
            return await self._read_n(lp, size)
        finally:
            self._turns.leave()

    async def read1(self, size=-1):
        self._check_readable()
        size = -1 if size is None else size.__index__()
        lp = self._loop()
        w = self._turns.enter()
        if w is not None:
            await w
        try:
            if size < 0:
                size = self._bufsize
            if self._buffered():
                return self._take(size)
            if size == 0:
                return b""
            return await self._raw_read(lp, size)
        finally:
            self._turns.leave()

    async def readinto(self, b):
        m = memoryview(b).cast("B")
        data = await self.read(len(m))
        m[:len(data)] = data
        return len(data)

    async def readline(self, size=-1):
        self._check_readable()
        size = -1 if size is None else size.__index__()
        lp = self._loop()
        w = self._turns.enter()
        if w is not None:
            await w
        try:
            return await self._readline(lp, size)
        finally:
            self._turns.leave()

    async def _readline(self, lp, size):
        scanned = 0  # bytes of the buffer known to hold no newline
        while True:
            buf, start = self._buf, self._bufpos
            end = len(buf) if size < 0 else min(len(buf), start + size)
            i = buf.find(b"\n", start + scanned, end)
            if i >= 0:
                return self._take(i + 1 - start)
            if size >= 0 and end - start >= size:
                return self._take(size)
            scanned = end - start
            if not await self._fill(lp):
                return self._take(self._buffered())

    async def readlines(self, hint=-1):
        hint = -1 if hint is None else hint.__index__()
        lines, total = [], 0
        while True:
            line = await self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    async def pread(self, size, offset):
        """os.pread on this file: up to size bytes at offset; the position does not move."""
        self._check_readable()
        if offset < 0:
            raise OSError(22, os.strerror(22))
        lp = self._loop()
        fut = lp.read(self._fd, size, offset)
        try:
            return await fut
        except _CancelledError:
            lp.cancel(fut)
            raise

    # ---- writing ----
    async def write(self, b):
        self._check_writable()
        lp = self._loop()
        w = self._turns.enter()
        if w is not None:
            await w
        try:
            self._drop_buffer()
            if self._append:
                n = await _await_op(lp, lp.write(self._fd, b, -1))
                self._pos = None
            else:
                n = await _await_op(lp, lp.write(self._fd, b, self._raw_pos()))
                if self._seekable:
                    self._pos += n
            return n
        finally:
            self._turns.leave()

    async def writelines(self, lines):
        self._check_writable()
        await self.write(b"".join(lines))

    async def pwrite(self, b, offset):
        """os.pwrite on this file, all of b: the position does not move. Returns len(b)."""
        self._check_writable()
        if offset < 0:
            raise OSError(22, os.strerror(22))
        lp = self._loop()
        if self._buffered() and not self._turns._busy:
            self._drop_buffer()  # it may hold what this write replaces
        return await _await_op(lp, lp.write(self._fd, b, offset))

    async def flush(self):
        self._check_open("flush of closed file")

    async def truncate(self, size=None):
        self._check_open("truncate of closed file")
        if not self._writable:
            raise io.UnsupportedOperation("truncate")
        lp = self._loop()
        w = self._turns.enter()
        if w is not None:
            await w
        try:
            self._drop_buffer()
            if size is None:
                size = self._raw_pos()
            size = size.__index__()
            if size < 0:
                raise OSError(22, os.strerror(22))
            await _await_op(lp, lp.ftruncate(self._fd, size))
            return size
        finally:
            self._turns.leave()

    # ---- position ----
    async def seek(self, offset, whence=os.SEEK_SET):
        self._check_open("seek of closed file")
        offset = offset.__index__()
        if whence not in _SEEK_WHENCES:
            raise ValueError(f"whence value {whence} unsupported")
        w = self._turns.enter()
        if w is not None:
            await w
        try:
            if whence == os.SEEK_CUR:
                offset += self._logical_pos()
                whence = os.SEEK_SET
            pos = os.lseek(self._fd, offset, whence)
            self._buf = b""
            self._bufpos = 0
            self._pos = pos
            return pos
        finally:
            self._turns.leave()

    def _logical_pos(self):
        if not self._seekable:
            return os.lseek(self._fd, 0, os.SEEK_CUR)  # raises ESPIPE, as io does
        return self._raw_pos() - self._buffered()

    async def tell(self):
        self._check_open("I/O operation on closed file")
        return self._logical_pos()

    async def seekable(self):
        self._check_open("I/O operation on closed file")
        return self._seekable

    async def writable(self):
        self._check_open("I/O operation on closed file")
        return self._writable

    async def isatty(self):
        self._check_open("I/O operation on closed file")
        return os.isatty(self._fd)

    async def close(self):
        if self._closed:
            return
        self._closed = True
        self._buf = b""
        if self._closefd:
            lp = self._loop()
            await lp.close_fd(self._fd)
