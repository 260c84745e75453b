"""Eq. 5 by zeroth-order Adam: the paper's objective, its gradient estimated from the model's answers.

The alternative to ``BoundaryWalk`` that issue 13 asked to measure: each step estimates the gradient
of the IPGuard loss (Cao et al. 2021, Eq. 5) by antithetic Gaussian differences, ĝ = Σ_q (L(x + σu_q) −
L(x − σu_q)) u_q / (2σq), and takes an Adam step, all points in one onnxruntime batch; a point is frozen
once its loss is 0. Measured against the walk in BENCHMARKS.md ("Gradient-free search"): on small
network inputs a little more ARUC (+0.01 to +0.04, within the spread over seeds) for about 13× the
queries, and its estimate degrades with the input's dimension while the walk's cost does not; on trees
its finite differences are mostly zero. So the walk is the default and this runs by name.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from ..types import FloatArray, LabelArray
from .base import ProgressCallback, SearchOptions, SearchOutcome
from .gradient_free import LabelsFunction, QueryCost, QuerySearch, ScoresFunction
from .registry import register


def eq5_loss_numpy(scores: FloatArray, source: LabelArray, target: LabelArray, k: float) -> FloatArray:
    """``ReLU(Z_i − Z_j + k) + ReLU(max_{t≠i,j} Z_t − Z_i)`` per row (``search.ipguard.eq5_loss`` in numpy)."""
    rows = np.arange(len(scores))
    z_i, z_j = scores[rows, source], scores[rows, target]
    others = scores.astype(np.float64).copy()
    others[rows, source] = -np.inf
    others[rows, target] = -np.inf
    z_other = others.max(axis=1) if scores.shape[1] > 2 else np.full(len(scores), -np.inf)
    loss: FloatArray = (np.maximum(z_i - z_j + k, 0.0) + np.maximum(z_other - z_i, 0.0)).astype(np.float32)
    return loss


@register
class ZerothOrderAdam(QuerySearch):
    """Adam on Eq. 5 with the gradient estimated from ``directions`` antithetic Gaussian pairs of scale
    ``sigma`` (in input units), clipped to the domain; needs class scores, not labels alone."""

    name = "zo-adam"
    paper_name = "IPGuard-ZO"

    def __init__(
        self,
        *,
        k: float = 1.0,
        max_iterations: int = 300,
        learning_rate: float = 0.01,
        directions: int = 10,
        sigma: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.k = k
        self.max_iterations = max_iterations
        self.learning_rate = learning_rate
        self.directions = directions
        self.sigma = sigma
        self.seed = seed

    @classmethod
    def from_options(cls, options: SearchOptions) -> ZerothOrderAdam:
        return cls(k=options.k, max_iterations=options.max_iterations, learning_rate=options.learning_rate)

    def run_queries(
        self,
        labels_fn: LabelsFunction,
        scores_fn: ScoresFunction | None,
        start: FloatArray,
        anchors: FloatArray,
        target_labels: LabelArray,
        *,
        bounds: tuple[FloatArray, FloatArray] | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[SearchOutcome, QueryCost]:
        """Move every ``start`` (labelled i) until Eq. 5 holds for ``target_labels`` (j); ``anchors`` unused.
        ``progress`` answering True stops it after that step's answers (the points that hold Eq. 5 are kept)."""
        if scores_fn is None:
            raise UsageError(
                "--method zo-adam estimates a gradient of class scores, and this model gives labels only; "
                "use --method gradient-free"
            )
        rng = np.random.default_rng(self.seed)
        count = len(start)
        points = start.astype(np.float32).copy()
        unbounded = np.full(start.shape[1:], np.inf, dtype=np.float32)
        low, high = bounds if bounds is not None else (-unbounded, unbounded)
        scores = scores_fn(points)
        source = scores.argmax(axis=1).astype(np.int64)
        target = np.asarray(target_labels, dtype=np.int64)
        first, second = np.zeros_like(points), np.zeros_like(points)
        active = np.ones(count, dtype=np.bool_)
        iterations = np.zeros(count, dtype=np.int64)
        queries, calls = count, 1
        beta1, beta2 = 0.9, 0.999
        for iteration in range(self.max_iterations + 1):
            loss = eq5_loss_numpy(scores, source, target, self.k)
            active &= loss > 0
            stop = progress(iteration, int(count - active.sum())) if progress is not None else None
            if stop or iteration == self.max_iterations or not active.any():
                break  # a callback that answers True (the fingerprint's time budget) ends the search here
            rows = np.flatnonzero(active)
            here = points[rows]
            noise = rng.standard_normal((self.directions, *here.shape)).astype(np.float32)
            plus = (here[None] + self.sigma * noise).reshape(-1, *here.shape[1:])
            minus = (here[None] - self.sigma * noise).reshape(-1, *here.shape[1:])
            tiled_source, tiled_target = np.tile(source[rows], self.directions), np.tile(target[rows], self.directions)
            both = scores_fn(np.concatenate([plus, minus]))
            queries, calls = queries + len(both), calls + 1
            half = len(plus)
            difference = eq5_loss_numpy(both[:half], tiled_source, tiled_target, self.k) - eq5_loss_numpy(
                both[half:], tiled_source, tiled_target, self.k
            )
            view = (self.directions, len(rows)) + (1,) * (here.ndim - 1)
            gradient = (difference.reshape(view) * noise).mean(axis=0) / (2 * self.sigma)
            step = iteration + 1
            first[rows] = beta1 * first[rows] + (1 - beta1) * gradient
            second[rows] = beta2 * second[rows] + (1 - beta2) * gradient**2
            update = (first[rows] / (1 - beta1**step)) / (np.sqrt(second[rows] / (1 - beta2**step)) + 1e-8)
            points[rows] = np.clip(here - self.learning_rate * update, low, high).astype(np.float32)
            iterations[rows] += 1
            scores[rows] = scores_fn(points[rows])
            queries, calls = queries + len(rows), calls + 1
        outcome = SearchOutcome(
            points=points, source_labels=source, target_labels=target, converged=~active, iterations=iterations
        )
        return outcome, QueryCost(queries, calls)
