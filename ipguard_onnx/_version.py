"""The one source of the version: pyproject.toml reads it from here (``[tool.setuptools.dynamic]``).

A literal, not ``importlib.metadata``: reading the installed metadata costs an audit ~15 ms at start-up.
"""

from __future__ import annotations

__version__ = "0.1.0"
