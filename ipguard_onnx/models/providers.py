"""Which onnxruntime execution providers and how many threads a model runs with (``--providers``)."""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from enum import StrEnum

from .. import requirements


class Providers(StrEnum):
    """Which onnxruntime execution providers to ask for (``--providers``)."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


MAX_THREADS = 8
"""onnxruntime intra-op threads at most (models are untrusted input)."""


def intra_op_threads() -> int:
    """The cores, at most ``MAX_THREADS``, and at most ``OMP_NUM_THREADS`` when set — as Ray sets it to an
    actor's CPUs, so a pool of scan actors does not oversubscribe the machine."""
    limit = os.environ.get("OMP_NUM_THREADS", "")
    cores = min(os.cpu_count() or 1, MAX_THREADS)
    return max(1, min(cores, int(limit))) if limit.isdigit() and int(limit) > 0 else cores


def installed_onnxruntime_wheels() -> list[str]:
    """Which onnxruntime distributions are installed (two at once break each other)."""
    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(dist)
    return found


def choose_providers(requested: str = "auto") -> list[str]:
    """CUDA when present (or asked for), else CPU; a request that cannot be met falls back to CPU loudly."""
    ort = requirements.onnxruntime()

    available = ort.get_available_providers()
    if requested == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if requested == "cuda":
        wheels = installed_onnxruntime_wheels()
        hint = (
            "both onnxruntime and onnxruntime-gpu are installed; uninstall both and reinstall onnxruntime-gpu"
            if len(wheels) > 1
            else "install the 'gpu' extra (docs/reference/install.md)"
        )
        warnings.warn(
            f"CUDA was requested but onnxruntime offers only {available}; using the CPU ({hint})",
            stacklevel=2,
        )
    return ["CPUExecutionProvider"]
