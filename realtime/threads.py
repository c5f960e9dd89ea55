"""Real OS threads and locks, also under eventlet's monkey patching.

The inference worker must be a real thread (a green thread running YOLO would freeze the
event loop), and what it shares with the loop must use real locks held for O(1) work.
`LoopWaker` lets that thread wake the loop side: the loop waits on a pipe with select(),
which eventlet makes cooperative and the threading mode runs as is.
"""
from __future__ import annotations

import os
import select
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# below the camera lane and the event loop, yet not starved when they fill the CPU (bench/real_replay.py:
# at the lowest, 19, a camera lane that fills the CPU left the careful lane nearly nothing)
BACKGROUND_NICE = 10


def run_in_background() -> None:
    """Lower the calling OS thread's CPU priority to BACKGROUND_NICE (Linux keeps a nice value per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, real_threading().get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):
        pass


def eventlet_patched() -> bool:
    """Whether eventlet's monkey patching replaced the threads (python server.py in eventlet mode)."""
    try:
        import eventlet.patcher
    except ImportError:
        return False
    return eventlet.patcher.is_monkey_patched("thread")


def real_threading():
    """The unpatched `threading` module, whatever eventlet did to the patched one."""
    if eventlet_patched():
        import eventlet.patcher

        return eventlet.patcher.original("threading")
    import threading

    return threading


def real_logging_locks() -> None:
    """Logging's locks (its configuration's, each handler's) as real locks. eventlet turns them into green
    ones, which the real threads that log (the worker, the careful lane's) cannot share: a thread waiting for
    a handler another thread holds is never woken, and the server hangs (eventlet/eventlet#432). A real lock
    is held while one line is written. Call it after the handlers are set up."""
    import logging

    threading = real_threading()
    logging._lock = threading.RLock()  # the module's own; nothing public replaces it
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    for handler in {handler for logger in loggers for handler in logger.handlers}:
        handler.lock = threading.RLock()


class LoopWaker:
    """One thread calls notify(); the loop side's wait() returns soon after."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        self._lock = real_threading().Lock()
        self._pending = False  # at most one byte in the pipe: the writer can never block

    def notify(self) -> None:
        with self._lock:
            if self._pending:
                return
            self._pending = True
        os.write(self._write, b"x")

    def wait(self, timeout: float) -> None:
        ready, _, _ = select.select([self._read], [], [], timeout)
        if ready:
            with self._lock:
                self._pending = False
                try:
                    os.read(self._read, 64)
                except BlockingIOError:
                    pass


def off_the_loop(call: Callable[..., T], *args) -> T:
    """`call(*args)` in a real thread while the event loop serves the others, for blocking work such as a
    database query in an HTTP handler (sqlite3 and psycopg block in C: eventlet cannot switch away).
    Without eventlet's patching the handler already has a thread of its own: called as is."""
    if eventlet_patched():
        from eventlet import tpool

        return tpool.execute(call, *args)
    return call(*args)
