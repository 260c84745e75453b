"""Model runs that end: every onnxruntime run has a deadline and Ctrl-C stops it (``deadlines``).

A run past ``--model-timeout`` is stopped through ``RunOptions.terminate``, which onnxruntime checks
between nodes and inside ``Loop``/``Scan`` bodies (a ``Loop`` whose condition never turns false).
"""

from __future__ import annotations

import os
from typing import Any

from .. import requirements
from ..deadlines import DeadlinePassed, call_bounded, check_seconds
from ..errors import DeadlineError, UsageError

DEFAULT_MODEL_TIMEOUT = 120.0
"""Seconds one model run (one batch) may take by default; ``--model-timeout`` or
``IPGUARD_ONNX_MODEL_TIMEOUT`` change it."""
TIMEOUT_VARIABLE = "IPGUARD_ONNX_MODEL_TIMEOUT"


def model_timeout(value: float | None = None) -> float:
    """``value`` when given, else ``IPGUARD_ONNX_MODEL_TIMEOUT``, else ``DEFAULT_MODEL_TIMEOUT``; finite, > 0."""
    source = "--model-timeout"
    if value is None:
        text = os.environ.get(TIMEOUT_VARIABLE, "")
        if not text:
            return DEFAULT_MODEL_TIMEOUT
        source = TIMEOUT_VARIABLE
        try:
            value = float(text)
        except ValueError:
            raise UsageError(f"{TIMEOUT_VARIABLE} must be a number of seconds, got {text!r}") from None
    return check_seconds(value, source)


def run_bounded(session: Any, outputs: list[str] | None, feeds: dict[str, Any], *, timeout: float, name: str) -> Any:
    """``session.run(outputs, feeds)``, stopped with ``DeadlineError`` after ``timeout`` seconds."""
    options = requirements.onnxruntime().RunOptions()
    options.log_severity_level = 4  # a terminated run is reported by the DeadlineError, not by a log line

    def terminate() -> None:
        options.terminate = True

    try:
        return call_bounded(lambda: session.run(outputs, feeds, options), timeout=timeout, stop=terminate)
    except DeadlinePassed:
        raise DeadlineError(
            f"{name} ran past the {timeout:g} s deadline of one model run (--model-timeout) and was stopped"
        ) from None
