"""Input conventions of a suspect: scale and per-channel normalisation applied to the fingerprint points."""

from __future__ import annotations

import json
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
        """Every value a finite float32, the scale and every std non-zero there too (1e-300 is 0 in float32):
        a NaN or a zero here would turn every point into NaN, infinity or one value."""
        values = {"--input-scale": (self.scale,), "--mean": self.mean, "--std": self.std}
        for option, numbers in values.items():
            if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
                raise UsageError(f"{option} values must be numbers, got {list(numbers)}")
            as_float32 = np.asarray(numbers, dtype=np.float64).astype(np.float32)
            if not np.isfinite(as_float32).all():
                raise UsageError(f"{option} values must be finite (in float32), got {list(numbers)}")
            if option != "--mean" and (as_float32 == 0).any():
                raise UsageError(f"{option} values must be non-zero (in float32), got {list(numbers)}")

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
        return cls(data["scale"], tuple(data["mean"]), tuple(data["std"]))  # types checked by __post_init__

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
