"""Beyond the paper: trajectory-style points after ADV-TRA (Xu et al., NeurIPS 2024), from labels alone.

ADV-TRA fingerprints a model with adversarial *trajectories* rather than single points: from a base
sample, a series of points that walk, with shrinking steps, up to and across the boundary to another
class, then on to a third ("surface trajectory"). A copy whose boundary moved a little still answers
most of a trajectory like the target; an independent model's boundary crosses it elsewhere.

This is a gradient-free version: from each start, bisect towards the nearest anchor of a class the
trajectory has not visited, record points on both sides of the boundary at geometrically shrinking
distances from it, and continue from just past the boundary to the next class. Every point carries the
label the model itself gives it, so the target matches itself; each bisection step is one batched call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..types import FloatArray, LabelArray
from .base import ProgressCallback, SearchOptions, SearchStrategy
from .gradient_free import LabelsFunction, QueryCost, squared_distances
from .registry import register


@dataclass(frozen=True)
class Trajectories:
    """Points of every trajectory, in order, with the labels the model gave them."""

    points: FloatArray
    labels: LabelArray
    trajectory: npt.NDArray[np.int64]
    """The trajectory (start) each point belongs to."""
    complete: int
    """Trajectories that crossed every boundary asked for."""


@register
class TrajectoryWalk(SearchStrategy):
    """Fixed-length trajectories across ``crossings`` boundaries, ``points_per_side`` points on each side.

    The distances from the boundary, as fractions of the segment being bisected, run geometrically from
    ``nearest`` to ``farthest`` (ADV-TRA's dynamically shrinking steps: fine near the boundary).
    """

    name = "trajectory"
    paper_name = "ADV-TRA-GF"

    def __init__(
        self,
        *,
        crossings: int = 2,
        points_per_side: int = 3,
        nearest: float = 0.01,
        farthest: float = 0.2,
        bisection_steps: int = 16,
        integer: bool = False,
    ) -> None:
        self.crossings = crossings
        self.points_per_side = points_per_side
        self.nearest = nearest
        self.farthest = farthest
        self.bisection_steps = bisection_steps
        self.integer = integer

    @classmethod
    def from_options(cls, options: SearchOptions) -> TrajectoryWalk:
        return cls()

    @property
    def length(self) -> int:
        """Points per complete trajectory."""
        return 2 * self.points_per_side * self.crossings

    def _along(self, origin: FloatArray, way: FloatArray, t: npt.NDArray[np.float64]) -> FloatArray:
        """origin + t · way per row (rounded to whole numbers for integer inputs)."""
        view = (len(origin),) + (1,) * (origin.ndim - 1)
        moved = (origin + t.reshape(view).astype(np.float32) * way).astype(np.float32)
        return np.rint(moved).astype(np.float32) if self.integer else moved

    def trace(
        self,
        labels_fn: LabelsFunction,
        start: FloatArray,
        anchors: FloatArray,
        anchor_labels: LabelArray,
        *,
        progress: ProgressCallback | None = None,
    ) -> tuple[Trajectories, QueryCost]:
        """One trajectory from every start, towards anchors (labelled ``anchor_labels`` by the model)."""
        count = len(start)
        current = start.astype(np.float32)
        visited = [labels_fn(current)]
        queries, calls = count, 1
        offsets = np.geomspace(self.farthest, self.nearest, self.points_per_side)  # approaching the boundary
        alive = np.ones(count, dtype=np.bool_)
        pieces: list[tuple[FloatArray, npt.NDArray[np.int64]]] = []
        for crossing in range(self.crossings):
            distances = squared_distances(current, anchors)
            for seen in visited:  # only classes this trajectory has not visited yet
                distances[anchor_labels[None, :] == seen[:, None]] = np.inf
            nearest = distances.argmin(axis=1)
            alive &= np.isfinite(distances[np.arange(count), nearest])
            target = anchor_labels[nearest]
            direction = (anchors[nearest] - current).astype(np.float32)
            low_t, high_t = np.zeros(count), np.ones(count)
            for step in range(self.bisection_steps):
                middle = (low_t + high_t) / 2
                is_target = labels_fn(self._along(current, direction, middle)) == target
                queries, calls = queries + count, calls + 1
                high_t = np.where(is_target, middle, high_t)
                low_t = np.where(is_target, low_t, middle)
                if progress is not None:
                    progress(crossing * self.bisection_steps + step, 0)
            rows = np.flatnonzero(alive)
            sides = [*(low_t - offsets[:, None]), *(high_t + offsets[::-1, None])]  # before, then past it
            pieces.extend((self._along(current, direction, np.clip(t, 0.0, 1.0))[rows], rows) for t in sides)
            current = self._along(current, direction, np.clip(high_t + offsets[0], 0.0, 1.0))  # into the new class
            visited.append(target)
        points = np.concatenate([piece for piece, _ in pieces])
        owner = np.concatenate([rows for _, rows in pieces])
        order = np.argsort(owner, kind="stable")  # trajectory by trajectory, each in walking order
        points, owner = points[order], owner[order]
        labels = labels_fn(points).astype(np.int64)
        queries, calls = queries + len(points), calls + 1
        if progress is not None:
            progress(self.crossings * self.bisection_steps, len(points))
        found = Trajectories(points, labels, owner.astype(np.int64), int(alive.sum()))
        return found, QueryCost(queries, calls)
