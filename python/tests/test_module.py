"""The package loads, lists its backends, and refuses a backend it cannot use, clearly."""

import os
import subprocess
import sys

import pytest

import unio
from conftest import run


def test_backends_are_listed_in_preference_order():
    names = [b.name for b in unio.backends()]
    assert "sync" in names and "threadpool" in names
    for b in unio.backends():
        assert isinstance(b.available, bool) and isinstance(b.reason, str)
        assert b.available or b.reason  # an unavailable backend says why


def test_backend_outside_a_loop_is_the_configured_one(backend):
    if backend == "auto":
        assert unio.backend() == [b.name for b in unio.backends() if b.available][0]
    else:
        assert unio.backend() == backend
    assert unio.backend_reason()


def test_the_loop_uses_the_configured_backend(backend):
    async def main():
        await unio.os.stat(".")
        return unio.backend(), unio.backend_reason()

    name, reason = run(main())
    assert reason
    if backend != "auto":
        assert name == backend


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(unio.BackendUnavailable, match="no backend named 'nope'"):
        unio.configure(backend="nope")
    assert issubclass(unio.BackendUnavailable, RuntimeError)


def test_unavailable_backend_raises_with_its_reason():
    off = [b for b in unio.backends() if not b.available]
    if not off:
        pytest.skip("every backend is available here")
    with pytest.raises(unio.BackendUnavailable, match=off[0].reason[:20]):
        unio.configure(backend=off[0].name)


def test_pool_size_is_checked():
    with pytest.raises(ValueError):
        unio.configure(pool_size=-1)


def _child(code, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=60)


def test_environment_variable_picks_the_backend():
    code = ("import asyncio, unio\n"
            "async def m():\n"
            "    await unio.os.stat('.')\n"
            "    print(unio.backend())\n"
            "asyncio.run(m())\n")
    r = _child(code, UNIO_BACKEND="sync")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "sync"


def test_environment_variable_with_an_unknown_backend_fails_clearly():
    code = ("import asyncio, unio\n"
            "async def m():\n"
            "    await unio.os.stat('.')\n"
            "asyncio.run(m())\n")
    r = _child(code, UNIO_BACKEND="nope")
    assert r.returncode != 0
    assert "BackendUnavailable" in r.stderr and "nope" in r.stderr, r.stderr


def test_outside_an_event_loop_is_a_runtime_error():
    with pytest.raises(RuntimeError):
        unio._driver.current()
