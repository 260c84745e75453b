"""Beyond the paper: the conferrable search behind ``--unique`` (Lukas, Zhang, Kerschbaum, ICLR 2021).

Candidates are moved so that the target *and* every owner-made positive of the panel (``panel``) say
label j by Eq. 5's margin k while every reference does not, in one batched Adam loop; the pool is then
screened by the panel's actual labels (``screen``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..errors import UsageError
from ..types import FloatArray, LabelArray
from .base import GradientSearch, LogitsFunction, ProgressCallback, SearchOptions, SearchOutcome, clip
from .panel import PanelMember
from .registry import register

if TYPE_CHECKING:
    import torch

REFERENCE_MARGIN = 2.0
"""References are pushed until label j trails their top label by this many times k (measured: 2 beat 1)."""
ITERATIONS = 300


def _margin_of(scores: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Z_j − max_{t≠j} Z_t: positive exactly when ``label`` is the top class."""
    z_label = scores.gather(1, label[:, None])[:, 0]
    return z_label - scores.scatter(1, label[:, None], float("-inf")).max(dim=1).values


@register
class ConferrableSearch(GradientSearch):
    """Move every start so the target and the positives say ``target`` by margin k and references do not.

    Loss per point: ReLU(k − m(x)) + mean over positives ReLU(k − m_p(x)) + mean over references
    ReLU(m_r(x) + 2k), with m the margin of label j (Eq. 5's margin, extended to the panel as in
    conferrable adversarial examples). Batched; clipped to the domain after every Adam step. A point
    "converges" where the surrogate labels it j.
    """

    name = "conferrable"
    paper_name = "IPGuard-unique"
    needs_panel = True

    def __init__(
        self, panel: Sequence[PanelMember], *, k: float = 1.0, iterations: int = ITERATIONS, learning_rate: float = 0.01
    ) -> None:
        self.panel = tuple(panel)
        self.k = k
        self.iterations = iterations
        self.learning_rate = learning_rate

    @classmethod
    def from_options(cls, options: SearchOptions) -> ConferrableSearch:
        raise UsageError("the conferrable search needs a panel of owner-made models: use fingerprint --unique")

    def __repr__(self) -> str:
        roles = [member.role for member in self.panel]
        return (
            f"ConferrableSearch(positives={roles.count('positive')}, references={roles.count('reference')}, "
            f"k={self.k!r}, iterations={self.iterations!r}, learning_rate={self.learning_rate!r})"
        )

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

        k = self.k
        positives = [m.module for m in self.panel if m.role == "positive" and m.module is not None]
        references = [m.module for m in self.panel if m.role == "reference" and m.module is not None]
        points = torch.from_numpy(np.array(start, dtype=np.float32)).requires_grad_(True)
        label = torch.from_numpy(np.asarray(target_labels, dtype=np.int64))
        lower, upper = torch.from_numpy(low), torch.from_numpy(high)
        optimizer = torch.optim.Adam([points], lr=self.learning_rate)
        for iteration in range(self.iterations):
            optimizer.zero_grad()
            loss = torch.relu(k - _margin_of(logits_fn(points), label))
            if positives:
                loss = loss + sum(torch.relu(k - _margin_of(p(points), label)) for p in positives) / len(positives)
            if references:
                pushed = REFERENCE_MARGIN * k
                loss = loss + sum(torch.relu(_margin_of(r(points), label) + pushed) for r in references) / len(
                    references
                )
            loss.sum().backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            with torch.no_grad():
                points.copy_(clip(points, lower, upper))
            if progress is not None:
                progress(iteration + 1, 0)
        with torch.no_grad():
            reached = (logits_fn(points).argmax(dim=1) == label).numpy()
        return SearchOutcome(
            points=points.detach().numpy().astype(np.float32),
            source_labels=np.asarray(source_labels, dtype=np.int64),
            target_labels=np.asarray(target_labels, dtype=np.int64),
            converged=reached,
            iterations=np.full(len(start), self.iterations, dtype=np.int64),
        )


def screen(
    points: FloatArray, labels: LabelArray, panel: Sequence[PanelMember], n: int
) -> tuple[npt.NDArray[np.int64], float, float]:
    """Indices of the ``n`` most conferrable candidates, and the chosen points' mean reference
    disagreement and positive agreement.

    Score = (share of positives that label the point like the target) × (share of references that do
    not), the conferrability score of Lukas et al.; ties keep pool order (which is random).
    """
    positives = [m for m in panel if m.role == "positive"]
    references = [m for m in panel if m.role == "reference"]
    agree = np.stack([m.predict(points) == labels for m in positives]) if positives else np.ones((1, len(points)), bool)
    disagree = (
        np.stack([m.predict(points) != labels for m in references]) if references else np.ones((1, len(points)), bool)
    )
    score = agree.mean(axis=0) * disagree.mean(axis=0)
    chosen = np.argsort(-score, kind="stable")[:n].astype(np.int64)
    return chosen, float(disagree[:, chosen].mean()) if references else 0.0, float(agree[:, chosen].mean())


def margin_scale(scores: FloatArray) -> float:
    """Median gap between the target's two highest scores on the owner's data (for k relative to it)."""
    top = np.sort(scores, axis=1)
    return float(np.median(top[:, -1] - top[:, -2]))
