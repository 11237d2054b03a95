"""unio for asyncio: file I/O on io_uring (or the best Linux I/O model that works here), with
aiofiles' API.

    import unio

    async def main():
        async with unio.open("data.bin", "rb") as f:
            head = await f.read(4096)
        await unio.write_text("out.txt", "hello\\n")
        print(await unio.os.stat("out.txt"), unio.backend(), unio.backend_reason())

Every asyncio loop (the default one, uvloop, one per thread) gets its own unio loop, driven by
the asyncio loop itself: no thread hop per operation on io_uring. The backend is chosen on first
use: unio.configure(backend=...) or the environment variable UNIO_BACKEND, else the best one
available ("auto"); an unavailable backend raises unio.BackendUnavailable, never falls back.
"""

import collections as _collections

from . import _driver
from . import _unio
from ._file import BinaryFile
from ._open import open
from ._text import TextFile
from . import os  # noqa: A004 (unio.os, as aiofiles.os)

BackendUnavailable = _unio.BackendUnavailable
configure = _driver.configure
__version__ = _unio.version

Backend = _collections.namedtuple("Backend", "name available reason")

__all__ = [
    "open", "os", "read_bytes", "write_bytes", "read_text", "write_text", "backend", "backend_reason",
    "backends", "configure", "BackendUnavailable", "BinaryFile", "TextFile",
]


def backends():
    """Every backend unio was built with, in preference order: [Backend(name, available, reason)]."""
    return [Backend(*b) for b in _driver.backends()]


def _chosen():
    d = _driver.running_driver()
    if d is not None:
        return d.lp.backend, d.lp.backend_reason
    name = _driver.config()["backend"]
    if name == "auto":
        return _unio.auto_backend()
    for b in backends():
        if b.name == name:
            if not b.available:
                raise BackendUnavailable(f"unio: backend {name!r} is unavailable here: {b.reason}")
            return name, f"{name}: configured"
    raise BackendUnavailable(f"unio: no backend named {name!r}")


def backend():
    """The backend in use: the running asyncio loop's unio loop's, else the one a new loop would get."""
    return _chosen()[0]


def backend_reason():
    """Why that backend: for auto, why it was picked (and why better ones were not)."""
    return _chosen()[1]


async def read_bytes(path):
    """The whole file's bytes."""
    async with open(path, "rb") as f:
        return await f.read()


async def write_bytes(path, data):
    """Replaces the file's contents with data (creating it); returns len(data)."""
    async with open(path, "wb") as f:
        return await f.write(data)


async def read_text(path, encoding="utf-8", errors=None):
    async with open(path, "r", encoding=encoding, errors=errors) as f:
        return await f.read()


async def write_text(path, text, encoding="utf-8", errors=None, newline=None):
    async with open(path, "w", encoding=encoding, errors=errors, newline=newline) as f:
        return await f.write(text)
