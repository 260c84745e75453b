"""The one source of the version: the installed distribution's metadata (pyproject.toml's ``version``)."""

from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("ipguard-onnx")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
