"""Input conventions of a suspect: scale and per-channel normalisation applied to the fingerprint points."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from .errors import UsageError
from .types import FloatArray


@dataclass(frozen=True)
class Preprocessing:
    """How a suspect wants its inputs: ``(x · scale − mean) / std`` per channel (or feature).

    E.g. ``scale=255`` for a model fed 0–255 pixels, or ImageNet ``mean``/``std`` for a model that
    normalises outside its graph. The owner can store it in the bundle; ``audit`` options override it.
    """

    scale: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        """Every value finite, the scale and every std non-zero: a NaN here would turn every point into NaN."""
        if not math.isfinite(self.scale) or self.scale == 0:
            raise UsageError(f"--input-scale must be a finite, non-zero number, got {self.scale!r}")
        for option, values in (("--mean", self.mean), ("--std", self.std)):
            if not all(math.isfinite(value) for value in values):
                raise UsageError(f"{option} values must be finite numbers, got {list(values)}")
        if any(value == 0 for value in self.std):
            raise UsageError("--std values must be non-zero")

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and not self.mean and not self.std

    def to_json(self) -> str:
        return json.dumps({"scale": self.scale, "mean": list(self.mean), "std": list(self.std)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Preprocessing:
        if text in ("", "none"):
            return cls()
        data = json.loads(text)
        return cls(float(data["scale"]), tuple(map(float, data["mean"])), tuple(map(float, data["std"])))

    def apply(self, points: FloatArray, channel_axis: int) -> FloatArray:
        """``(x · scale − mean) / std`` per channel; a value that overflows becomes infinity, which the
        audit refuses (it never reaches a suspect)."""
        if self.is_identity:
            return points
        shape = [1] * points.ndim
        with np.errstate(over="ignore", invalid="ignore"):
            result = points * np.float32(self.scale)
            for values, operation in ((self.mean, np.subtract), (self.std, np.divide)):
                if not values:
                    continue
                channels = points.shape[channel_axis]
                if len(values) not in (1, channels):
                    raise UsageError(f"--mean/--std need 1 or {channels} values (one per channel), got {len(values)}")
                shape[channel_axis] = len(values)
                result = operation(result, np.asarray(values, np.float32).reshape(shape))
        return np.asarray(result, dtype=np.float32)
