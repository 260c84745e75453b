"""IPGuard's boundary search: Eq. 5 minimised with Adam for all points at once (Section 4.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..surrogate import CHUNK_VALUES
from ..types import FloatArray, LabelArray
from .base import (
    GradientSearch,
    LogitsFunction,
    ProgressCallback,
    SearchOptions,
    SearchOutcome,
    chunked_step,
    clip,
)
from .registry import register

if TYPE_CHECKING:
    import torch


def eq5_loss(logits: torch.Tensor, source: torch.Tensor, target: torch.Tensor, k: float) -> torch.Tensor:
    """Per-point IPGuard objective (Cao et al. 2021, Eq. 5).

    ``ReLU(Z_i − Z_j + k) + ReLU(max_{t≠i,j} Z_t − Z_i)``: zero once label j beats i by k while i
    still beats every other class, i.e. the point sits just across the i/j boundary.
    """
    import torch

    # With two classes the masked maximum is -inf and the second term is 0, as it should be.
    z_i = logits.gather(1, source[:, None])[:, 0]
    z_j = logits.gather(1, target[:, None])[:, 0]
    others = logits.scatter(1, source[:, None], float("-inf")).scatter(1, target[:, None], float("-inf"))
    z_other = others.max(dim=1).values
    return torch.relu(z_i - z_j + k) + torch.relu(z_other - z_i)


@register
class IPGuardSearch(GradientSearch):
    """IPGuard's Extract step (Cao, Jia, Gong, AsiaCCS 2021, Section 4.2, Eq. 5).

    Every point starts at an input the model labels ``i`` and moves, by Adam on the input, until
    the model labels it ``j`` with margin ``k`` over ``i`` and ``i`` still tops the other classes.
    All points run in one batch; a point is frozen the moment its loss reaches 0 (its update is
    masked, since Adam's momentum would otherwise keep moving it, and it leaves the batch the model
    runs on, so a step costs what its active points cost), the model runs on chunks of at most
    ``chunk_values`` input values (memory stays bounded on large inputs), and every step is clipped to the
    input domain.
    """

    name = "ipguard"
    paper_name = "IPGuard"

    def __init__(
        self,
        *,
        k: float = 3.0,
        max_iterations: int = 1000,
        learning_rate: float = 0.01,
        chunk_values: int = CHUNK_VALUES,
    ) -> None:
        self.k = k
        self.max_iterations = max_iterations
        self.learning_rate = learning_rate
        self.chunk_values = chunk_values

    @classmethod
    def from_options(cls, options: SearchOptions) -> IPGuardSearch:
        return cls(k=options.k, max_iterations=options.max_iterations, learning_rate=options.learning_rate)

    def run(
        self,
        logits_fn: LogitsFunction,
        start: FloatArray,
        source_labels: LabelArray,
        target_labels: LabelArray,
        low: FloatArray,
        high: FloatArray,
        *,
        progress: ProgressCallback | None = None,
    ) -> SearchOutcome:
        import torch

        points = torch.tensor(start, dtype=torch.float32, requires_grad=True)
        source = torch.as_tensor(source_labels, dtype=torch.int64)
        target = torch.as_tensor(target_labels, dtype=torch.int64)
        lower = torch.as_tensor(low, dtype=torch.float32)
        upper = torch.as_tensor(high, dtype=torch.float32)
        optimizer = torch.optim.Adam([points], lr=self.learning_rate)
        count = len(start)
        active = torch.ones(count, dtype=torch.bool)
        iterations = torch.zeros(count, dtype=torch.int64)
        view = (count,) + (1,) * (points.dim() - 1)

        def loss_of(logits: torch.Tensor, chunk: torch.Tensor) -> torch.Tensor:
            return eq5_loss(logits, source[chunk], target[chunk], self.k)

        for iteration in range(self.max_iterations + 1):
            rows = active.nonzero()[:, 0]  # frozen points cost nothing: only the active ones run the model
            loss = chunked_step(logits_fn, points, rows, loss_of, self.chunk_values)  # sets points.grad
            active[rows] = loss > 0
            stop = progress(iteration, int(count - active.sum())) if progress is not None else None
            if stop or iteration == self.max_iterations or not bool(active.any()):
                break  # a callback that answers True stops the search (``parts.base.SearchGuard``)
            before = points.detach().clone()
            optimizer.step()
            with torch.no_grad():
                moved = clip(points, lower, upper)
                points.copy_(torch.where(active.view(view), moved, before))
            iterations += active
        return SearchOutcome(
            points=points.detach().numpy().astype(np.float32),
            source_labels=np.asarray(source_labels, dtype=np.int64),
            target_labels=np.asarray(target_labels, dtype=np.int64),
            converged=(~active).numpy(),
            iterations=iterations.numpy().astype(np.int64),
            # Eq. 5 at 0 with k > 0: Z_j ≥ Z_i + k > Z_i ≥ every other score, so the surrogate labels the point j
            surrogate_labels=np.where((~active).numpy(), target_labels, -1).astype(np.int64) if self.k > 0 else None,
        )
