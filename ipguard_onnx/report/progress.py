"""Progress of long work on stderr: a rich bar on a terminal, otherwise a line every few seconds.

``IPGUARD_ONNX_PROGRESS_SECONDS`` sets the interval of those lines (default 10 s).
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

from ..errors import UsageError
from ..text import shown
from .console import outside_text

__all__ = ["PROGRESS_SECONDS_VARIABLE", "count_progress", "progress_interval", "search_progress"]

PROGRESS_SECONDS_VARIABLE = "IPGUARD_ONNX_PROGRESS_SECONDS"


def progress_interval() -> float:
    """Seconds between progress lines off a terminal: ``IPGUARD_ONNX_PROGRESS_SECONDS``, else 10."""
    text = os.environ.get(PROGRESS_SECONDS_VARIABLE, "") or "10"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.001 <= value <= 86400:
        raise UsageError(
            f"{PROGRESS_SECONDS_VARIABLE} must be a number of seconds in [0.001, 86400], got {shown(text)!r}"
        )
    return value


@contextmanager
def search_progress(
    console: Console, n: int, max_iterations: int
) -> Iterator[tuple[Callable[[int, int], None], Callable[[str], None]]]:
    """Progress of a fingerprint's search: ``(update(iteration, done), phase(text))``. A rich bar when
    ``console`` is a terminal; otherwise a line every ``progress_interval()`` seconds with what is running
    and how far it is (a command that fails fast prints none)."""
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("points · iteration {task.fields[iteration]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("loading torch", total=n, iteration=0)

            def update(iteration: int, done: int) -> None:
                if iteration == 0:
                    bar.reset(task, total=n, iteration=0, description="boundary search")
                bar.update(task, completed=min(done, n), iteration=iteration)

            def phase(text: str) -> None:  # may quote the model (operator names): escaped
                bar.update(task, description=outside_text(text[:60]))

            yield update, phase
        return
    interval = progress_interval()
    phase_now = ["loading torch"]
    state = {"iteration": -1, "done": 0}
    started = time.monotonic()
    stop = threading.Event()

    def line() -> None:
        detail = (
            f": {state['done']}/{n} points converged, iteration {state['iteration']}/{max_iterations}"
            if state["iteration"] >= 0
            else ""
        )
        sys.stderr.write(f"ipguard-onnx [{time.monotonic() - started:6.0f} s] {phase_now[0]}{detail}\n")
        sys.stderr.flush()

    def beat() -> None:
        while not stop.wait(interval):
            line()

    def record(iteration: int, done: int) -> None:
        state["iteration"], state["done"] = iteration, done

    def announce(text: str) -> None:  # shown by the next beat
        phase_now[0], state["iteration"] = shown(text), -1

    ticker = threading.Thread(target=beat, name="ipguard-progress", daemon=True)
    ticker.start()
    try:
        yield record, announce
    finally:
        stop.set()
        ticker.join()


@contextmanager
def count_progress(console: Console, what: str) -> Iterator[Callable[[int, int], None]]:
    """Progress of a count (``update(done, total)``): a rich bar on a terminal, else a line every
    ``progress_interval()`` seconds and at the end."""
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(what, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update
        return
    interval = progress_interval()
    started = time.monotonic()
    last = [started]

    def line(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= interval or done == total:
            last[0] = now
            sys.stderr.write(f"ipguard-onnx [{now - started:6.0f} s] {done}/{total} {what} scanned\n")
            sys.stderr.flush()

    yield line
