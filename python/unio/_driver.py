"""One unio loop per asyncio loop, and how the asyncio loop drives it.

The unio loop of an asyncio loop is created on first use (``current()``) and lives as long as the
asyncio loop: it is kept in a weak map keyed by the asyncio loop and closed when that loop is
garbage or found closed. A forked child never touches its parent's unio loops (their io_uring
ring is shared with the parent, their pool threads do not exist in the child): it gets fresh
ones.

Driving (the contract with python/src/py_loop.hpp):

- ``aloop.add_reader(lp.backend_fd(), on_ready)``: the fd is readable whenever unio has
  completions to dispatch; ``on_ready`` calls ``lp.turn(True)`` (poll, then backend_timeout).
- Every submission and every cancel schedules one kick (``aloop.call_soon``, at most one pending
  at a time; the C++ side schedules it): ``lp.turn(False)`` runs ``backend_timeout()``, which
  hands everything submitted since the last turn to the kernel at once (one io_uring_enter for a
  batch), and then polls when that made work ready (cached reads complete inside the submission).
- ``turn()`` returns backend_timeout(): None, wait for the fd only; 0, turn again after the
  callbacks that are ready now (``call_soon``); t > 0, turn again at now + t (``call_at``: a unio
  timer, or a short step while a notification cannot be armed).

So nothing is missed (every submission is followed by a backend_timeout() before asyncio sleeps,
and the fd covers everything else) and nothing spins (asyncio sleeps in epoll on the fd when
backend_timeout() says so). Futures are resolved inside ``turn()``, on the asyncio loop's thread.
"""

import asyncio
import os
import threading
import weakref

from . import _unio

__all__ = ["current", "configure", "config"]

_config = {"backend": None, "pool_size": 0}
_lock = threading.Lock()
_drivers = weakref.WeakKeyDictionary()  # asyncio loop -> _Driver
_abandoned = []  # a forked child's inherited drivers: kept, never used, never destroyed
_used = set()  # the backends this process has created loops with
# glibc's POSIX AIO keeps process-wide state (its helper threads, how many are idle) that fork()
# copies without the threads: a child of a process that used it queues requests for idle threads
# that do not exist, and they never complete (seen with glibc 2.36 while the parent's helpers
# were idle). Such a child is refused posix_aio instead.
_POSIX_AIO_AFTER_FORK = ("posix_aio is unavailable in a process forked from one that used it: glibc's "
                         "POSIX AIO state (its helper threads) does not survive fork(), and requests would "
                         "never complete; use another backend here")
_posix_aio_inherited = False
_get_running_loop = _unio.running_loop  # asyncio.get_running_loop without a getpid() per call


class _Driver:
    __slots__ = ("lp", "fd", "_aref", "_timer", "_soon", "__weakref__")

    def __init__(self, aloop, lp):
        self.lp = lp
        self.fd = lp.backend_fd()
        self._aref = weakref.ref(aloop)
        self._timer = None
        self._soon = False
        me = weakref.ref(self)  # the C++ side holds the kick; it must not keep the driver alive

        def kick():
            d = me()
            if d is not None and d.lp.kick_pending:
                d._arm(d.lp.turn(False))

        lp.set_kick(kick)
        aloop.add_reader(self.fd, self._on_ready)

    def _on_ready(self):
        self._arm(self.lp.turn(True))

    def _on_soon(self):
        self._soon = False
        self._arm(self.lp.turn(True))

    def _on_timer(self):
        self._timer = None
        self._arm(self.lp.turn(True))

    def _arm(self, t):
        if t is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        aloop = self._aref()
        if aloop is None:
            return
        if t == 0.0:
            if not self._soon:
                self._soon = True
                aloop.call_soon(self._on_soon)
            return
        when = aloop.time() + t
        timer = self._timer
        if timer is not None:
            if timer.when() <= when + 1e-4:
                return  # fires in time (an early turn only arms again)
            timer.cancel()
        self._timer = aloop.call_at(when, self._on_timer)

    def close(self):
        """Closes the unio loop: ops in flight are cancelled."""
        aloop = self._aref()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if aloop is not None and not aloop.is_closed():
            aloop.remove_reader(self.fd)
        self.lp.close()


def _backend_name():
    return _config["backend"] or os.environ.get("UNIO_BACKEND") or "auto"


def _new_driver(aloop):
    with _lock:
        d = _drivers.get(aloop)
        if d is not None:
            return d
        for other, od in list(_drivers.items()):
            if other.is_closed():
                del _drivers[other]
                od.close()
        name = _backend_name()
        if name == "posix_aio" and _posix_aio_inherited:
            raise _unio.BackendUnavailable("unio: " + _POSIX_AIO_AFTER_FORK)
        lp = _unio.Loop(name, _config["pool_size"], aloop)
        if lp.backend == "posix_aio" and _posix_aio_inherited:
            lp.close()
            raise _unio.BackendUnavailable("unio: " + _POSIX_AIO_AFTER_FORK)
        _used.add(lp.backend)
        d = _Driver(aloop, lp)
        _drivers[aloop] = d
        return d


def current():
    """The unio loop (``_unio.Loop``) of the running asyncio loop; created on first use.

    Raises RuntimeError outside a running asyncio loop, and unio.BackendUnavailable when the
    configured backend cannot run here.
    """
    aloop = _get_running_loop()
    d = _drivers.get(aloop)
    if d is None:
        d = _new_driver(aloop)
    return d.lp


def lp_of(aloop):
    d = _drivers.get(aloop)
    if d is None:
        d = _new_driver(aloop)
    return d.lp


def configure(backend=None, pool_size=None):
    """Sets the backend and pool size of the unio loops created from now on (the loop of an
    asyncio loop that has one already keeps it). backend: "auto" or a name from backends();
    one that is unknown or unavailable here raises unio.BackendUnavailable with the reason.
    Without arguments it changes nothing. Returns the configuration now in force."""
    if backend is not None:
        if not isinstance(backend, str):
            raise TypeError("backend must be a str")
        if backend != "auto":
            known = {name: (ok, why) for name, ok, why in backends()}
            if backend not in known:
                raise _unio.BackendUnavailable(
                    f"unio: no backend named {backend!r} (built in: {', '.join(known)})")
            ok, why = known[backend]
            if not ok:
                raise _unio.BackendUnavailable(f"unio: backend {backend!r} is unavailable here: {why}")
        _config["backend"] = backend
    if pool_size is not None:
        if not isinstance(pool_size, int) or pool_size < 0:
            raise ValueError("pool_size must be an int >= 0 (0: the number of CPUs, at least 2)")
        _config["pool_size"] = pool_size
    return config()


def backends():
    """[(name, available, reason)] of the backends built in, in preference order."""
    out = []
    for name, ok, why in _unio.backends():
        if name == "posix_aio" and _posix_aio_inherited:
            ok, why = False, _POSIX_AIO_AFTER_FORK
        out.append((name, ok, why))
    return out


def config():
    return {"backend": _backend_name(), "pool_size": _config["pool_size"]}


def running_driver():
    """The driver of the running asyncio loop, or None when it has none yet."""
    try:
        aloop = _get_running_loop()
    except RuntimeError:
        return None
    return _drivers.get(aloop)


def _after_fork_in_child():
    global _drivers, _lock, _posix_aio_inherited
    _lock = threading.Lock()
    _posix_aio_inherited = _posix_aio_inherited or "posix_aio" in _used
    for d in list(_drivers.values()):
        d.lp.abandon()
        _abandoned.append(d)
    _drivers = weakref.WeakKeyDictionary()


os.register_at_fork(after_in_child=_after_fork_in_child)
