"""The strategy base: settings in ``__init__``, the work in ``run``, and what every strategy shares.

A strategy moves a batch of start points (labelled i by the model) towards target labels j, all at
once, on the surrogate's differentiable scores; the caller labels the results with onnxruntime.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt

from ..surrogate import CHUNK_VALUES
from ..types import FloatArray, LabelArray

if TYPE_CHECKING:
    import torch

ProgressCallback = Callable[[int, int], bool | None]
"""Called as ``callback(iteration, points_done)`` after every step."""
LogitsFunction = Callable[["torch.Tensor"], "torch.Tensor"]


class StartKind(StrEnum):
    """Where searches start (the paper's -T/-R): owner data, or uniform samples of the domain."""

    data = "data"
    random = "random"


class TargetLabelRule(StrEnum):
    """The target label j (the paper's -L/-R suffix): the least-likely class, or a random other one."""

    least_likely = "least-likely"
    random = "random"


@dataclass(frozen=True)
class SearchOptions:
    """The knobs a user can set for any strategy; each strategy takes the ones it uses."""

    k: float = 3.0
    epsilon: float = 0.1
    max_iterations: int = 1000
    learning_rate: float = 0.01


@dataclass(frozen=True)
class SearchOutcome:
    """Points after the search, with the labels (i, j) that shaped them and how each one ended."""

    points: FloatArray
    source_labels: LabelArray
    target_labels: LabelArray
    converged: npt.NDArray[np.bool_]
    iterations: npt.NDArray[np.int64]
    hit: npt.NDArray[np.bool_] | None = None
    """Where the surrogate labels the final point with the target label j (the attack's success)."""
    surrogate_labels: LabelArray | None = None
    """The surrogate's label of each final point where the search knows it without another pass, −1 where it
    does not (None: nowhere); a large model's candidates then skip a forward pass (``parts.base.CandidateLoop``)."""

    @property
    def hit_rate(self) -> float:
        hits = self.hit if self.hit is not None else self.converged
        return float(hits.mean()) if len(hits) else 0.0


class SearchStrategy(ABC):  # noqa: B024 - the family's base: members add the abstract search they run
    """A fingerprinting method (foolbox-style): ``name`` is its registry key, ``paper_name`` how the
    paper and reports call it; ``__repr__`` shows every setting. Gradient searches on the surrogate
    subclass ``GradientSearch``; the gradient-free search queries the model itself."""

    name: ClassVar[str]
    paper_name: ClassVar[str]
    needs_panel: ClassVar[bool] = False
    """True for strategies built from the owner's panel (``--unique``), not chosen by ``--method``."""

    @classmethod
    def from_options(cls, options: SearchOptions) -> SearchStrategy:
        """This strategy with the user's options (each member takes the knobs it has)."""
        return cls()

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in vars(self).items() if not key.startswith("_"))
        return f"{type(self).__name__}({settings})"


class GradientSearch(SearchStrategy):
    """A strategy that moves points along the surrogate's differentiable scores."""

    @abstractmethod
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
        """Search from ``start`` (n × sample shape) toward ``target_labels``; bounds broadcast per sample."""


def clip(points: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Points clipped to the input domain (after every step of every strategy)."""
    import torch

    return torch.maximum(torch.minimum(points, upper), lower)


def chunked_step(
    logits_fn: LogitsFunction,
    points: torch.Tensor,
    rows: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    chunk_values: int = CHUNK_VALUES,
) -> torch.Tensor:
    """Per-point losses of ``points[rows]``, with the gradient of their sum (over the points whose loss is
    still above 0) written into ``points.grad``; the model runs in chunks of at most ``chunk_values`` input
    values. Exact: each point's loss depends on that point alone (the surrogate runs in eval mode).
    ``loss_fn(logits, rows_of_the_chunk)`` gives a chunk's per-point losses."""
    import torch

    per_point = max(1, points[0].numel()) if len(points) else 1
    size = max(1, chunk_values // per_point)
    gradient = torch.zeros_like(points)
    losses = []
    for chunk in rows.split(size):  # type: ignore[no-untyped-call]
        part = points.detach()[chunk].requires_grad_(True)
        loss = loss_fn(logits_fn(part), chunk)
        (loss * (loss.detach() > 0)).sum().backward()  # type: ignore[no-untyped-call]
        if part.grad is not None:
            gradient[chunk] = part.grad
        losses.append(loss.detach())
    points.grad = gradient
    return torch.cat(losses) if losses else torch.zeros(0)


def surrogate_hits(logits_fn: LogitsFunction, points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Where the surrogate labels ``points`` with ``target``."""
    import torch

    with torch.no_grad():
        return logits_fn(points).argmax(dim=1) == target


def outcome_of(
    points: torch.Tensor, source: LabelArray, target: LabelArray, hit: torch.Tensor, iterations: torch.Tensor
) -> SearchOutcome:
    """The outcome of a strategy that keeps every point (its success is ``hit``)."""
    return SearchOutcome(
        points=points.detach().numpy().astype(np.float32),
        source_labels=np.asarray(source, dtype=np.int64),
        target_labels=np.asarray(target, dtype=np.int64),
        converged=np.ones(len(points), dtype=np.bool_),
        iterations=iterations.numpy().astype(np.int64),
        hit=hit.numpy(),
    )


def start_points(
    count: int, rng: np.random.Generator, data: FloatArray | None, low: FloatArray, high: FloatArray
) -> FloatArray:
    """-T: random training examples; -R: uniform samples from the domain (Section 5.1.4)."""
    if data is not None:
        return data[rng.integers(0, len(data), size=count)].copy()
    uniform = rng.random((count, *low.shape), dtype=np.float32)
    return (low + uniform * (high - low)).astype(np.float32)


def spread_points(count: int, rng: np.random.Generator, low: FloatArray, high: FloatArray) -> FloatArray:
    """Uniform noise within a random sub-interval of the domain for each point: near-constant, dark, bright
    and mid-range inputs as well as full noise. Anchors for a domain whose uniform noise one class labels
    (random bytes are all "unknown binary" to a file-type model), so the walk has other classes to cross to."""
    ends = np.sort(rng.random((count, 2)), axis=1).astype(np.float32)
    view = (count,) + (1,) * low.ndim
    first, last = ends[:, 0].reshape(view), ends[:, 1].reshape(view)
    fraction = first + rng.random((count, *low.shape), dtype=np.float32) * (last - first)
    return (low + fraction * (high - low)).astype(np.float32)


def choose_labels(scores: FloatArray, rule: TargetLabelRule, rng: np.random.Generator) -> tuple[LabelArray, LabelArray]:
    """i = the model's label at the start; j = its least-likely label, or a random other label."""
    source = scores.argmax(axis=1).astype(np.int64)
    if rule == TargetLabelRule.least_likely:
        target = scores.argmin(axis=1).astype(np.int64)
    else:
        classes = scores.shape[1]
        offset = rng.integers(1, classes, size=len(source))
        target = ((source + offset) % classes).astype(np.int64)
    return source, target
