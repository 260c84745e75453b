"""Any Python callable as a suspect: a function from a float batch to labels or class scores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import UnsupportedModelError
from ..types import Answers, FloatArray, InputSpec
from .base import Classifier, from_labels, from_scores, unanswered


class CallableClassifier(Classifier):
    """Any Python callable mapping a float batch to labels (shape N) or class scores (N×C).

    A call that raises leaves its rows unanswered, with the exception as the reason: they are
    reported as skipped, never counted as a match or a mismatch.
    """

    def __init__(
        self,
        function: Callable[[FloatArray], Any],
        *,
        name: str | None = None,
        input_spec: InputSpec | None = None,
        batch_size: int = 256,
    ) -> None:
        self.function = function
        self.name = name or getattr(function, "__qualname__", None) or type(function).__name__
        self.input_spec = input_spec
        self.batch_size = batch_size

    def answer_batch(self, batch: FloatArray) -> Answers:
        try:
            output = np.asarray(self.function(batch))
        except Exception as exc:  # the user's code: its failure is a reason, not a crash
            return unanswered(len(batch), f"{type(exc).__name__}: {str(exc)[:120]}")
        if output.ndim == 2 and output.shape == (len(batch), 1):
            output = output[:, 0]
        if output.ndim == 2 and output.shape[0] == len(batch) and output.shape[1] >= 2:
            try:
                return from_scores(output)  # a row with a NaN or infinite score is unanswered
            except (TypeError, ValueError):
                return unanswered(len(batch), "scores that are not numbers")
        if output.shape == (len(batch),):
            return from_labels(output)
        raise UnsupportedModelError(
            f"{self.name} returned shape {output.shape} for {len(batch)} points; "
            "return one label per point (N,) or one score row per point (N×C)"
        )
