"""Native code that user input reaches runs in child processes, so it cannot crash the server.

The integrator (ASSIST and REBOUND, in C) is the one place where numbers a user typed reach
native code. Orbits are held to physical ranges first (``orbits.check_physical``, and the
state checks in ``integrator``), but no check can prove that a C integrator survives every
orbit that passes it: one that divides by zero or runs off the end of an array ends in a
segmentation fault, and in the server process that would cut every request its threads serve.

So ``run_guarded`` runs a function in a small pool of child processes (pebble's
``ProcessPool``, one per server process, started on first use): a child that dies takes only
its own task with it, which comes back as ``GuardedProcessDied``; one that runs past the time
limit is killed and comes back as ``GuardedTimeout``; the pool replaces either. Exceptions
the function raises come back as themselves. Children are forked from a fork server started
from a clean interpreter (never from the multithreaded server process), which has imported
the integrator already, so a new child is ready in milliseconds.

Inside a child, ``run_guarded`` calls the function directly: a guarded batch may call
guarded functions without a second trip across processes.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from .errors import SsoError

T = TypeVar("T")
log = logging.getLogger(__name__)

GUARD_TIMEOUT_S = 600.0
"""Longest a guarded call may run: an ephemeris over all of DE440's 1,100 years at a one-minute
step stays well inside it; past it the child is killed and the request gets an error."""
POOL_SIZE = max(1, min(2, os.cpu_count() or 1))
"""Children per server process: integrations are CPU-bound, and each server process already
shares the machine's cores with the others."""
ISOLATION_VARIABLE = "SKYVAULT_SSO_ISOLATION"
"""``off`` runs guarded calls in the calling process: for benchmarks that measure the guard's
cost, never for a server."""


class GuardedCallFailed(SsoError, RuntimeError):
    """The child process running a guarded call did not give an answer."""


class GuardedProcessDied(GuardedCallFailed):
    """The child died (a signal such as SIGSEGV, or an exit) while computing."""


class GuardedTimeout(GuardedCallFailed):
    """The call ran longer than ``GUARD_TIMEOUT_S`` and its child was killed."""


_in_child = False
_child_start: list[Callable[[], None]] = []
_pool: ProcessPool | None = None
_pool_pid: int | None = None
_lock = threading.Lock()


def on_child_start(function: Callable[[], None]) -> None:
    """Have every child started from now on run ``function`` (module-level, so picklable)
    once, before its first task: the integrator registers the loading of ASSIST's ephemeris
    files, so no guarded call waits for it. Registering here rather than importing the
    integrator keeps this module below the code it guards."""
    if function not in _child_start:
        _child_start.append(function)


def _start_child(start: tuple[Callable[[], None], ...]) -> None:
    """Each child, once: mark it as one, and run what was registered before any task waits."""
    global _in_child
    _in_child = True
    for function in start:
        function()


def _nothing() -> None:
    return None


def isolation_enabled() -> bool:
    return not _in_child and os.environ.get(ISOLATION_VARIABLE, "").strip().lower() != "off"


def _get_pool() -> ProcessPool:
    """This process's pool; a forked process (a gunicorn worker) makes its own."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid() or not _pool.active:
            context = multiprocessing.get_context("forkserver")
            # The fork server imports the registered functions' modules once, not each child.
            context.set_forkserver_preload(sorted({f.__module__ for f in _child_start}))
            _pool = ProcessPool(max_workers=POOL_SIZE, initializer=_start_child,
                                initargs=(tuple(_child_start),), context=context)
            _pool_pid = os.getpid()
        return _pool


def warm_up() -> None:
    """Start this process's children now (a server process at start-up, in a thread), so the
    first request does not wait for them."""
    if isolation_enabled():
        run_guarded(_nothing)


def shutdown() -> None:
    """Stop this process's children (at exit, and for tests)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None and _pool_pid == os.getpid():
        pool.stop()
        pool.join(timeout=10)


atexit.register(shutdown)


def run_guarded(function: Callable[..., T], *args: Any,
                timeout: float = GUARD_TIMEOUT_S) -> T:
    """``function(*args)`` computed in a child process; its death or overrun is an error.

    ``function`` and the arguments must be picklable (a module-level function).
    """
    if not isolation_enabled():
        return function(*args)
    future = _get_pool().schedule(function, args=args, timeout=timeout)
    try:
        return future.result()
    except ProcessExpired as died:
        log.error("guarded %s died: %s (exit code %s)", getattr(function, "__name__", function),
                  died, died.exitcode)
        raise GuardedProcessDied(
            f"the computation crashed (its process ended with code {died.exitcode}); "
            "the orbit is likely outside what the integrator can follow") from None
    except FutureTimeout:
        raise GuardedTimeout(
            f"the computation took longer than {timeout:g} s and was stopped") from None
