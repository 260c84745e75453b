"""The name → strategy registry: ``--method`` choices, paper names and bundle records all come from it."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .base import SearchStrategy

Strategy = TypeVar("Strategy", bound="type[SearchStrategy]")
STRATEGIES: dict[str, type[SearchStrategy]] = {}
"""Every strategy by its ``name``, in registration order (IPGuard first)."""


def register(strategy: Strategy) -> Strategy:
    """Class decorator: add a strategy to ``STRATEGIES`` under its ``name`` (names are unique)."""
    if strategy.name in STRATEGIES:
        raise ValueError(f"two search strategies are named {strategy.name!r}")
    STRATEGIES[strategy.name] = strategy
    return strategy
