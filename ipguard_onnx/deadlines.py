"""Work that ends: a call with a deadline that Ctrl-C can also stop (SECURITY.md "Deadlines").

Some calls hold their thread where neither a signal handler nor a timer can reach it: onnxruntime's
``run`` in C++ (a ``Loop`` that never ends), a socket read that a server drips one byte at a time.
``call_bounded`` runs such a call on a worker thread while the caller waits on an event, which the
deadline or Ctrl-C interrupts; ``stop`` then asks the call to end (``RunOptions.terminate``, a socket
shutdown). A call that ignores even that is abandoned to its daemon thread, and the next call gets a
fresh worker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import UsageError

T = TypeVar("T")


class DeadlinePassed(Exception):
    """``call_bounded``'s call did not end in time and was told to stop (the caller says what it was)."""


MAX_SECONDS = 7 * 24 * 3600.0
"""The longest deadline anyone may set (a week): beyond it a wait overflows the platform's clock."""
STOP_GRACE_SECONDS = 5.0
"""How long a call that was told to stop may take to notice before it is abandoned."""


def check_seconds(value: float, option: str) -> float:
    """A deadline option: a number of seconds in (0, ``MAX_SECONDS``]; NaN and infinity are refused."""
    if not 0 < value <= MAX_SECONDS:
        raise UsageError(f"{option} must be a number of seconds in (0, {MAX_SECONDS:g}], got {value!r}")
    return value


class _Worker:
    """One daemon thread that runs the jobs it is handed, one at a time."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="ipguard-onnx-bounded", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            self.jobs.get()()


_workers: dict[int, _Worker] = {}
_lock = threading.Lock()


def _worker() -> _Worker:
    """The calling thread's worker (callers on several threads do not wait on each other)."""
    with _lock:
        worker = _workers.get(threading.get_ident())
        if worker is None:
            worker = _workers[threading.get_ident()] = _Worker()
        return worker


def _abandon() -> None:
    with _lock:
        _workers.pop(threading.get_ident(), None)


def call_bounded(call: Callable[[], T], *, timeout: float, stop: Callable[[], None]) -> T:
    """``call()``, or ``DeadlinePassed`` once ``timeout`` seconds have passed; ``KeyboardInterrupt`` (Ctrl-C)
    at once. Either way ``stop()`` is called first, so the work does not go on behind the caller."""
    finished = threading.Event()
    outcome: dict[str, Any] = {}

    def job() -> None:
        try:
            outcome["result"] = call()
        except BaseException as error:  # handed back to the caller's thread
            outcome["error"] = error
        finally:
            finished.set()

    _worker().jobs.put(job)
    try:
        if not finished.wait(max(timeout, 0.0)):
            _stop(stop, finished)
            raise DeadlinePassed(f"past the {timeout:g} s deadline")
    except KeyboardInterrupt:
        _stop(stop, finished)
        raise
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


def _stop(stop: Callable[[], None], finished: threading.Event) -> None:
    try:
        stop()
    except Exception:  # noqa: S110 - stopping is best effort; the caller has its answer already
        pass
    if not finished.wait(STOP_GRACE_SECONDS):
        _abandon()


DEFAULT_TIME_BUDGET = 840.0
"""Seconds the searches of one fingerprint may take together by default (14 minutes, so that with loading and
signing the command ends within 15): past it they end with the points they have, and the report says so."""
