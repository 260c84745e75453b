"""What each role needs installed, and the one-line error naming the extra when it is not.

Installs are by role (docs/reference/install.md): ``[cpu]`` or ``[gpu]`` bring the onnxruntime that every
command needs; ``[fingerprint]`` adds torch and the ONNX→PyTorch converter that the surrogate
(``fingerprint``, ``issue``) needs. The audit path asks only for onnxruntime.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

RUNTIME_HINT = 'pip install "ipguard-onnx[cpu]" (or "ipguard-onnx[gpu]" for CUDA; never both)'
SURROGATE_HINT = 'pip install "ipguard-onnx[fingerprint]"'
FLEET_HINT = 'pip install "ipguard-onnx[fleet]"'


def _require(module: str, what: str, hint: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = getattr(error, "name", None) or module
        raise MissingDependencyError(f"{what} needs {missing!r}, which is not installed: {hint}") from None


def onnxruntime() -> ModuleType:
    """``onnxruntime`` (from either the onnxruntime or the onnxruntime-gpu wheel), or the extras to install.

    Its own logger is silenced below fatal: its lines quote the model (attribute values, node names) raw,
    colour codes included; what went wrong reaches the user as one escaped error line instead."""
    module = _require("onnxruntime", "running an ONNX model", RUNTIME_HINT)
    module.set_default_logger_severity(4)
    return module


def torch() -> ModuleType:
    """``torch`` for the surrogate and the gradient searches, or the extra to install."""
    return _require("torch", "the PyTorch surrogate (fingerprint, issue, --unique)", SURROGATE_HINT)


def surrogate_converter() -> ModuleType:
    """``onnx2pytorch``, the ONNX→PyTorch converter behind the surrogate, or the extra to install."""
    torch()
    return _require("onnx2pytorch", "the PyTorch surrogate (fingerprint, issue, --unique)", SURROGATE_HINT)


def ray_data() -> ModuleType:
    """``ray.data`` for ``scan --ray``, or the extra to install."""
    return _require("ray.data", "scan --ray", FLEET_HINT)
