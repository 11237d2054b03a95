"""Shared fixtures: every test that takes `backend` runs once per backend unio was built with
(and "auto"); a backend unavailable on this machine is skipped with its reason."""

import asyncio
import os

import pytest

import unio

BACKENDS = ["auto"] + [b.name for b in unio.backends()]


@pytest.fixture(params=BACKENDS)
def backend(request):
    name = request.param
    if name != "auto":
        info = {b.name: b for b in unio.backends()}[name]
        if not info.available:
            pytest.skip(f"backend {name} unavailable here: {info.reason}")
    before = unio.configure()
    unio.configure(backend=name)
    yield name
    unio.configure(backend=before["backend"])


def run(coro, loop_factory=None):
    """Runs coro on a new asyncio loop (asyncio.run, or a loop from loop_factory)."""
    if loop_factory is None:
        return asyncio.run(coro)
    loop = loop_factory()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def open_fds():
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_fd_leak():
    """Fails the test when it leaves file descriptors open (unio's own loops are closed first)."""
    import gc
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    leaked = open_fds() - before
    # A listing of /proc/self/fd sees its own directory fd, which is closed again by then.
    leaked = {fd for fd in leaked if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not leaked, {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in leaked}
