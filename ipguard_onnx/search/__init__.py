"""Search strategies: a small base, one file per member, and a registry that names them.

* ``base``        the ``SearchStrategy`` ABC, ``SearchOutcome``, start points and target labels
* ``ipguard``     IPGuard's Eq. 5 search (Section 4.2)
* ``baselines``   Random, FGSM, IGSM, CW-L2 (Section 5.1.3)
* ``conferrable`` the ``--unique`` search over a panel, and its selection (``screen``)
* ``gradient_free`` Eq. 5 points from the model's own answers (bisection and a walk past the boundary)
* ``trajectory``  ADV-TRA-style trajectories across several boundaries, from labels alone
* ``panel``       the owner-made positives and references of ``--unique``

A new strategy is a new file with a ``@register``-ed ``SearchStrategy`` subclass (``GradientSearch`` when
it follows the surrogate's gradient), imported below;
``--method``, the paper names in bundles and reports, and the docs all read ``STRATEGIES``.
"""

from __future__ import annotations

from .base import (
    GradientSearch,
    LogitsFunction,
    ProgressCallback,
    SearchOptions,
    SearchOutcome,
    SearchStrategy,
    StartKind,
    TargetLabelRule,
    choose_labels,
    spread_points,
    start_points,
)
from .baselines import CWL2, FGSM, IGSM, RandomPoints
from .conferrable import ConferrableSearch, margin_scale, screen
from .gradient_free import BoundaryWalk, QueryCost, QuerySearch, anchor_targets, search_scores
from .ipguard import IPGuardSearch, eq5_loss
from .registry import STRATEGIES, register
from .trajectory import Trajectories, TrajectoryWalk
from .zeroth_order import ZerothOrderAdam, eq5_loss_numpy

__all__ = [
    "QuerySearch",
    "Trajectories",
    "TrajectoryWalk",
    "ZerothOrderAdam",
    "eq5_loss_numpy",
    "CWL2",
    "BoundaryWalk",
    "QueryCost",
    "anchor_targets",
    "search_scores",
    "FGSM",
    "IGSM",
    "METHODS",
    "STRATEGIES",
    "ConferrableSearch",
    "IPGuardSearch",
    "LogitsFunction",
    "ProgressCallback",
    "RandomPoints",
    "SearchOptions",
    "SearchOutcome",
    "GradientSearch",
    "SearchStrategy",
    "StartKind",
    "TargetLabelRule",
    "choose_labels",
    "eq5_loss",
    "make_strategy",
    "margin_scale",
    "register",
    "screen",
    "spread_points",
    "start_points",
]

METHODS: tuple[str, ...] = tuple(
    sorted((name for name, strategy in STRATEGIES.items() if not strategy.needs_panel), key=lambda n: n != "ipguard")
)
"""What ``--method`` accepts, the paper's search first: every strategy that needs no ``--unique`` panel."""


def make_strategy(method: str, options: SearchOptions) -> SearchStrategy:
    """The fingerprinting method by name: IPGuard or one of the paper's baselines (Section 5.1.3)."""
    return STRATEGIES[method].from_options(options)
