"""Beyond the paper: IPGuard's Eq. 5 points found with the model's own answers, no gradient and no surrogate.

For any classifier onnxruntime runs (tree ensembles, SVMs, linear models behind a ZipMap, int8 graphs,
graphs no converter reads): from each start x0 towards an anchor xa the model labels j, bisect the
segment to the first point labelled j, then walk on past it until Eq. 5 holds exactly — label j, a
margin of at least k over the runner-up i, and i the label just before the boundary. Batched over all
points: every bisection step and every walk is one onnxruntime call. Decision-based where the model
gives only labels: past the boundary by a fixed fraction of the segment, and still labelled j. On
integer inputs (bytes, token ids) every point tried is rounded to whole numbers.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..types import FloatArray, LabelArray, OutputKind
from .base import ProgressCallback, SearchOptions, SearchOutcome, SearchStrategy
from .registry import register

ScoresFunction = Callable[[FloatArray], FloatArray]
"""The model's search scores (N × C, see ``search_scores``) for a numpy batch, through onnxruntime."""
LabelsFunction = Callable[[FloatArray], LabelArray]


def search_scores(scores: FloatArray, kind: OutputKind) -> FloatArray:
    """Eq. 5's Z from what onnxruntime returns (``OnnxClassifier.scores``): logits as they are,
    log-probabilities for probabilities and ZipMap maps, (−z, z) for a single unit (z its logit) —
    the same scores the surrogate's gradient search uses, so k means the same in both."""
    scores = np.asarray(scores, dtype=np.float64)
    if kind in ("probabilities", "probability-maps"):
        return np.log(np.clip(scores, 1e-12, None)).astype(np.float32)
    if kind == "binary-probability":  # (1 − p, p)
        p = np.clip(scores[:, 1], 1e-7, 1 - 1e-7)
        z = np.log(p) - np.log1p(-p)
        return np.stack([-z, z], axis=1).astype(np.float32)
    return scores.astype(np.float32)


@dataclass(frozen=True)
class QueryCost:
    """What a gradient-free search asked of the model."""

    queries: int
    calls: int


class QuerySearch(SearchStrategy):
    """A strategy that asks the model itself (onnxruntime), no surrogate: the walk and zeroth-order Adam."""

    @abstractmethod
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
        """Points from every ``start`` (labelled i by ``labels_fn``) that satisfy Eq. 5 for ``target_labels``
        (j), with an anchor the model labels j for each; ``bounds`` is the input domain."""


@register
class BoundaryWalk(QuerySearch):
    """Bisection to the i/j boundary along x0 → xa, then the first point past it that satisfies Eq. 5.

    Score-based: the walk past the boundary tries ``walk_steps`` points, geometrically spaced from the
    boundary to the anchor, and keeps the nearest one with label j, Z_j − Z_i ≥ k and i = the label just
    before the boundary (the runner-up). Decision-based (``scores_fn`` None): the point ``decision_step``
    of the segment past the boundary, kept if still labelled j. Needs no gradient or surrogate: it is
    not a ``GradientSearch``, and ``run_queries`` asks the model itself.
    """

    name = "gradient-free"
    paper_name = "IPGuard-GF"

    def __init__(
        self,
        *,
        k: float = 3.0,
        bisection_steps: int = 20,
        walk_steps: int = 32,
        decision_step: float = 0.02,
        integer: bool = False,
    ) -> None:
        self.k = k
        self.bisection_steps = bisection_steps
        self.walk_steps = walk_steps
        self.decision_step = decision_step
        self.integer = integer
        """Round every point tried to whole numbers (integer inputs: bytes, token ids)."""

    def _snap(self, points: FloatArray) -> FloatArray:
        return np.rint(points).astype(np.float32) if self.integer else points

    @classmethod
    def from_options(cls, options: SearchOptions) -> BoundaryWalk:
        return cls(k=options.k)

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
        """Search from every ``start`` towards its ``anchor`` (labelled ``target_labels`` by the model).
        Every point tried lies on the segment, so inside the domain (``bounds``, unused) when the start
        and anchor are."""
        count = len(start)
        origin = start.astype(np.float32)
        direction = (anchors - origin).astype(np.float32)
        view = (count,) + (1,) * (origin.ndim - 1)
        queries, calls = 0, 0

        def along(t: npt.NDArray[np.float64]) -> FloatArray:
            return self._snap((origin + t.reshape(view).astype(np.float32) * direction).astype(np.float32))

        low_t, high_t = np.zeros(count), np.ones(count)
        for step in range(self.bisection_steps):
            middle = (low_t + high_t) / 2
            is_target = labels_fn(along(middle)) == target_labels
            queries, calls = queries + count, calls + 1
            high_t = np.where(is_target, middle, high_t)
            low_t = np.where(is_target, low_t, middle)
            if progress is not None and progress(step, 0):  # asked to stop (a time budget): no point is placed yet
                nothing = np.zeros(count, dtype=np.bool_)
                outcome = SearchOutcome(
                    origin,
                    np.full(count, -1, np.int64),
                    np.asarray(target_labels, np.int64),
                    nothing,
                    np.full(count, step + 1, dtype=np.int64),
                )
                return outcome, QueryCost(queries, calls)
        before = labels_fn(along(low_t))  # i: the label just before the boundary
        queries, calls = queries + count, calls + 1
        if scores_fn is None:
            final_t = np.minimum(high_t + self.decision_step, 1.0)
            points = along(final_t)
            converged = labels_fn(points) == target_labels
            queries, calls = queries + count, calls + 1
        else:
            points, converged, walked = self._walk(
                scores_fn, origin, direction, high_t, before, target_labels, progress
            )
            queries, calls = queries + walked.queries, calls + walked.calls
        if progress is not None:
            progress(self.bisection_steps, int(converged.sum()))
        outcome = SearchOutcome(
            points=points,
            source_labels=before.astype(np.int64),
            target_labels=np.asarray(target_labels, dtype=np.int64),
            converged=converged,
            iterations=np.full(count, self.bisection_steps + 1, dtype=np.int64),
        )
        return outcome, QueryCost(queries, calls)

    def _walk(
        self,
        scores_fn: ScoresFunction,
        origin: FloatArray,
        direction: FloatArray,
        boundary_t: npt.NDArray[np.float64],
        source: LabelArray,
        target: LabelArray,
        progress: ProgressCallback | None = None,
    ) -> tuple[FloatArray, npt.NDArray[np.bool_], QueryCost]:
        """The nearest of ``walk_steps`` points from the boundary to the anchor that satisfies Eq. 5, and
        what that cost (each step asks only for the points not placed yet); ``progress`` answering True stops
        the walk with the points placed so far."""
        chosen = origin.copy()
        found = np.zeros(len(origin), dtype=np.bool_)
        queries = calls = 0
        for fraction in np.geomspace(1e-4, 1.0, self.walk_steps):
            pending = np.flatnonzero(~found)
            if not len(pending):
                break
            t = boundary_t[pending] + (1.0 - boundary_t[pending]) * fraction
            view = (len(pending),) + (1,) * (origin.ndim - 1)
            candidate = self._snap(
                (origin[pending] + t.reshape(view).astype(np.float32) * direction[pending]).astype(np.float32)
            )
            scores = scores_fn(candidate)
            queries, calls = queries + len(pending), calls + 1
            rows = np.arange(len(pending))
            j, i = target[pending], source[pending]
            others = scores.copy()
            others[rows, j] = -np.inf
            ok = (
                (scores.argmax(axis=1) == j)
                & (others.argmax(axis=1) == i)
                & (scores[rows, j] - scores[rows, i] >= self.k)
            )
            chosen[pending[ok]] = candidate[ok]
            found[pending[ok]] = True
            if progress is not None and progress(self.bisection_steps, int(found.sum())):
                break
        return chosen, found, QueryCost(queries, calls)


def squared_distances(points: FloatArray, anchors: FloatArray) -> npt.NDArray[np.float64]:
    """Squared L2 distance of every point (row) to every anchor (column), samples of any shape flattened."""
    flat_points = points.reshape(len(points), -1).astype(np.float64)
    flat_anchors = anchors.reshape(len(anchors), -1).astype(np.float64)
    squares = (flat_points**2).sum(axis=1)[:, None] + (flat_anchors**2).sum(axis=1)[None, :]
    distances: npt.NDArray[np.float64] = squares - 2 * flat_points @ flat_anchors.T
    return distances


def anchor_targets(
    starts: FloatArray,
    start_scores: FloatArray,
    anchors: FloatArray,
    anchor_scores: FloatArray,
    least_likely: bool,
    rng: np.random.Generator,
    k: float = 0.0,
) -> tuple[LabelArray, npt.NDArray[np.int64]]:
    """j for every start, among the classes some anchor is labelled (≠ the start's label), and the
    anchor of j nearest to the start (L2) among those the model labels j by margin ≥ ``k`` (so the walk
    can reach Eq. 5 before the anchor; all anchors of j when none does): the boundary it crosses is the
    one closest to the start, as the gradient search's is. Measured on the digits zoo (BENCHMARKS.md):
    nearest beat the surest and a random anchor of j.

    ``least_likely``: the start's least-likely such class by its scores (the paper's -L); else a random
    one (-R). Returns (targets, anchor index), target −1 where no other class has an anchor.
    """
    start_labels = start_scores.argmax(axis=1)
    anchor_labels = anchor_scores.argmax(axis=1)
    ordered = np.sort(anchor_scores, axis=1)
    sure = ordered[:, -1] - ordered[:, -2] >= k if anchor_scores.shape[1] > 1 else np.ones(len(anchors), np.bool_)
    classes = np.unique(anchor_labels)
    distances = squared_distances(starts, anchors)
    targets = np.full(len(starts), -1, dtype=np.int64)
    chosen = np.zeros(len(starts), dtype=np.int64)
    for row, label in enumerate(start_labels):
        options = [int(c) for c in classes if c != label]
        if not options:
            continue
        if least_likely:
            target = min(options, key=lambda c: float(start_scores[row, c]))
        else:
            target = int(rng.choice(options))
        members = np.flatnonzero((anchor_labels == target) & sure)
        if not len(members):
            members = np.flatnonzero(anchor_labels == target)
        targets[row] = target
        chosen[row] = members[distances[row, members].argmin()]
    return targets, chosen
