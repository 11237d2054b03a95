"""unio.os.path: aiofiles.ospath's awaitable path predicates, on unio's stat."""

import os as _os
import stat as _stat

from . import os as _uos

__all__ = ["exists", "isfile", "isdir", "islink", "getsize", "getmtime", "getatime", "getctime", "abspath"]


async def _stat_or_none(path, follow_symlinks=True):
    try:
        return await _uos.stat(path, follow_symlinks=follow_symlinks)
    except (OSError, ValueError):
        return None


async def exists(path):
    return await _stat_or_none(path) is not None


async def isfile(path):
    st = await _stat_or_none(path)
    return st is not None and _stat.S_ISREG(st.st_mode)


async def isdir(path):
    st = await _stat_or_none(path)
    return st is not None and _stat.S_ISDIR(st.st_mode)


async def islink(path):
    st = await _stat_or_none(path, follow_symlinks=False)
    return st is not None and _stat.S_ISLNK(st.st_mode)


async def getsize(path):
    return (await _uos.stat(path)).st_size


async def getmtime(path):
    return (await _uos.stat(path)).st_mtime


async def getatime(path):
    return (await _uos.stat(path)).st_atime


async def getctime(path):
    return (await _uos.stat(path)).st_ctime


async def abspath(path):
    return _os.path.abspath(path)
