"""Boundary search: IPGuard's Eq. 5 minimised with Adam for all points at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from .models import FloatArray, LabelArray

if TYPE_CHECKING:
    import torch

ProgressCallback = Callable[[int, int], None]
"""Called as ``callback(iteration, points_done)`` after every Adam step."""
LogitsFunction = Callable[["torch.Tensor"], "torch.Tensor"]


class SearchStrategy(Protocol):
    """What every fingerprinting method offers: settings in ``__init__``, the work in ``run``."""

    name: str

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
    ) -> SearchOutcome: ...


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

    @property
    def hit_rate(self) -> float:
        hits = self.hit if self.hit is not None else self.converged
        return float(hits.mean()) if len(hits) else 0.0


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


class IPGuardSearch:
    """IPGuard's Extract step (Cao, Jia, Gong, AsiaCCS 2021, Section 4.2, Eq. 5).

    Every point starts at an input the model labels ``i`` and moves, by Adam on the input, until
    the model labels it ``j`` with margin ``k`` over ``i`` and ``i`` still tops the other classes.
    All points run in one batch; a point is frozen the moment its loss reaches 0 (its update is
    masked, since Adam's momentum would otherwise keep moving it), and every step is clipped to
    the input domain.
    """

    name = "ipguard"

    def __init__(self, *, k: float = 3.0, max_iterations: int = 1000, learning_rate: float = 0.01) -> None:
        self.k = k
        self.max_iterations = max_iterations
        self.learning_rate = learning_rate

    def __repr__(self) -> str:
        return f"IPGuardSearch(k={self.k}, max_iterations={self.max_iterations}, learning_rate={self.learning_rate})"

    def run(
        self,
        logits_fn: Callable[[torch.Tensor], torch.Tensor],
        start: FloatArray,
        source_labels: LabelArray,
        target_labels: LabelArray,
        low: FloatArray,
        high: FloatArray,
        *,
        progress: ProgressCallback | None = None,
    ) -> SearchOutcome:
        """Search from ``start`` (n × sample shape) toward ``target_labels``; bounds broadcast per sample."""
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
        for iteration in range(self.max_iterations + 1):
            loss = eq5_loss(logits_fn(points), source, target, self.k)
            active &= loss.detach() > 0
            if progress is not None:
                progress(iteration, int(count - active.sum()))
            if iteration == self.max_iterations or not bool(active.any()):
                break
            optimizer.zero_grad(set_to_none=False)
            (loss * active).sum().backward()  # type: ignore[no-untyped-call]
            before = points.detach().clone()
            optimizer.step()
            with torch.no_grad():
                moved = torch.maximum(torch.minimum(points, upper), lower)
                points.copy_(torch.where(active.view(view), moved, before))
            iterations += active
        return SearchOutcome(
            points=points.detach().numpy().astype(np.float32),
            source_labels=np.asarray(source_labels, dtype=np.int64),
            target_labels=np.asarray(target_labels, dtype=np.int64),
            converged=(~active).numpy(),
            iterations=iterations.numpy().astype(np.int64),
        )


def _hits(logits_fn: LogitsFunction, points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    import torch

    with torch.no_grad():
        return logits_fn(points).argmax(dim=1) == target


def _outcome(
    points: torch.Tensor, source: LabelArray, target: LabelArray, hit: torch.Tensor, iterations: torch.Tensor
) -> SearchOutcome:
    return SearchOutcome(
        points=points.detach().numpy().astype(np.float32),
        source_labels=np.asarray(source, dtype=np.int64),
        target_labels=np.asarray(target, dtype=np.int64),
        converged=np.ones(len(points), dtype=np.bool_),
        iterations=iterations.numpy().astype(np.int64),
        hit=hit.numpy(),
    )


class RandomPoints:
    """The paper's Random baseline (Section 5.1.3): the start points themselves, no search."""

    name = "random"

    def __repr__(self) -> str:
        return "RandomPoints()"

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

        points = torch.as_tensor(start, dtype=torch.float32)
        target = torch.as_tensor(target_labels, dtype=torch.int64)
        if progress is not None:
            progress(0, len(start))
        return _outcome(points, source_labels, target_labels, _hits(logits_fn, points, target), torch.zeros(len(start)))


class FGSM:
    """Targeted FGSM (Goodfellow et al. 2015): one step of size ε against the target label's loss.

    x' = clip(x − ε · sign(∇ₓ CE(Z(x), j))); every point is kept, labelled by the real model.
    """

    name = "fgsm"

    def __init__(self, *, epsilon: float = 0.1) -> None:
        self.epsilon = epsilon

    def __repr__(self) -> str:
        return f"FGSM(epsilon={self.epsilon})"

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
        target = torch.as_tensor(target_labels, dtype=torch.int64)
        loss = torch.nn.functional.cross_entropy(logits_fn(points), target, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, points)
        lower, upper = torch.as_tensor(low), torch.as_tensor(high)
        with torch.no_grad():
            moved = torch.maximum(torch.minimum(points - self.epsilon * gradient.sign(), upper), lower)
        if progress is not None:
            progress(1, len(start))
        return _outcome(moved, source_labels, target_labels, _hits(logits_fn, moved, target), torch.ones(len(start)))


class IGSM:
    """Targeted iterative FGSM (Kurakin et al. 2017): steps of α inside an L∞ ball of radius ε.

    The paper's settings (Section 5.1.3): α = 1/255, at most 1,000 iterations; each point stops as
    soon as the model labels it j.
    """

    name = "igsm"

    def __init__(self, *, epsilon: float = 0.1, step: float = 1 / 255, max_iterations: int = 1000) -> None:
        self.epsilon = epsilon
        self.step = step
        self.max_iterations = max_iterations

    def __repr__(self) -> str:
        return f"IGSM(epsilon={self.epsilon}, step={self.step:.4g}, max_iterations={self.max_iterations})"

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

        origin = torch.as_tensor(start, dtype=torch.float32)
        target = torch.as_tensor(target_labels, dtype=torch.int64)
        lower = torch.maximum(origin - self.epsilon, torch.as_tensor(low))
        upper = torch.minimum(origin + self.epsilon, torch.as_tensor(high))
        points = origin.clone()
        iterations = torch.zeros(len(start), dtype=torch.int64)
        view = (len(start),) + (1,) * (points.dim() - 1)
        for iteration in range(self.max_iterations + 1):
            points.requires_grad_(True)
            logits = logits_fn(points)
            active = logits.argmax(dim=1) != target
            if progress is not None:
                progress(iteration, int((~active).sum()))
            if iteration == self.max_iterations or not bool(active.any()):
                break
            loss = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
            (gradient,) = torch.autograd.grad(loss, points)
            with torch.no_grad():
                stepped = torch.maximum(torch.minimum(points - self.step * gradient.sign(), upper), lower)
                points = torch.where(active.view(view), stepped, points).detach()
            iterations += active
        points = points.detach()
        return _outcome(points, source_labels, target_labels, _hits(logits_fn, points, target), iterations)


class CWL2:
    """Targeted Carlini–Wagner L2 (2017): min ‖δ‖² + c · max(max_{t≠j} Z_t − Z_j, −k), Adam on tanh space.

    A binary search over c per point keeps the smallest successful perturbation. Inputs exactly at
    the domain bounds are moved 1e-6 inside before atanh; otherwise they could never move (the
    tanh change of variables has an infinite preimage there).
    """

    name = "cw-l2"

    def __init__(
        self,
        *,
        k: float = 0.0,
        learning_rate: float = 0.01,
        max_iterations: int = 1000,
        binary_search_steps: int = 5,
        initial_c: float = 1.0,
    ) -> None:
        self.k = k
        self.learning_rate = learning_rate
        self.max_iterations = max_iterations
        self.binary_search_steps = binary_search_steps
        self.initial_c = initial_c

    def __repr__(self) -> str:
        return (
            f"CWL2(k={self.k}, learning_rate={self.learning_rate}, max_iterations={self.max_iterations}, "
            f"binary_search_steps={self.binary_search_steps})"
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

        count = len(start)
        origin = torch.as_tensor(start, dtype=torch.float32)
        target = torch.as_tensor(target_labels, dtype=torch.int64)
        lower, upper = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        scale = (upper - lower).clamp_min(1e-12)
        unit = ((origin - lower) / scale * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6)
        w_origin = torch.atanh(unit)
        view = (count,) + (1,) * (origin.dim() - 1)
        c = torch.full((count,), self.initial_c)
        c_low, c_high = torch.zeros(count), torch.full((count,), float("inf"))
        best = origin.clone()
        best_distance = torch.full((count,), float("inf"))
        iterations = torch.zeros(count, dtype=torch.int64)
        steps_per_search = max(1, self.max_iterations // self.binary_search_steps)
        done_total = 0
        for _ in range(self.binary_search_steps):
            w = w_origin.clone().requires_grad_(True)
            optimizer = torch.optim.Adam([w], lr=self.learning_rate)
            succeeded = torch.zeros(count, dtype=torch.bool)
            for _ in range(steps_per_search):
                points = lower + (torch.tanh(w) + 1) / 2 * scale
                logits = logits_fn(points)
                z_j = logits.gather(1, target[:, None])[:, 0]
                z_other = logits.scatter(1, target[:, None], float("-inf")).max(dim=1).values
                distance = ((points - origin) ** 2).flatten(1).sum(dim=1)
                loss = distance + c * torch.clamp(z_other - z_j, min=-self.k)
                with torch.no_grad():
                    success = z_j - z_other >= self.k
                    improved = success & (distance < best_distance)
                    best = torch.where(improved.view(view), points.detach(), best)
                    best_distance = torch.where(improved, distance.detach(), best_distance)
                    succeeded |= success
                optimizer.zero_grad()
                loss.sum().backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                iterations += 1
            with torch.no_grad():
                c_high = torch.where(succeeded, torch.minimum(c_high, c), c_high)
                c_low = torch.where(succeeded, c_low, torch.maximum(c_low, c))
                c = torch.where(torch.isinf(c_high), c * 10, (c_low + c_high) / 2)
            done_total = int(torch.isfinite(best_distance).sum())
            if progress is not None:
                progress(int(iterations.max()), done_total)
        hit = torch.isfinite(best_distance)
        return _outcome(best, source_labels, target_labels, hit, iterations)


def make_strategy(
    method: str, *, k: float, epsilon: float, max_iterations: int, learning_rate: float
) -> SearchStrategy:
    """The fingerprinting method by name: IPGuard or one of the paper's baselines (Section 5.1.3)."""
    strategies: dict[str, Callable[[], SearchStrategy]] = {
        "ipguard": lambda: IPGuardSearch(k=k, max_iterations=max_iterations, learning_rate=learning_rate),
        "random": RandomPoints,
        "fgsm": lambda: FGSM(epsilon=epsilon),
        "igsm": lambda: IGSM(epsilon=epsilon, max_iterations=max_iterations),
        "cw-l2": lambda: CWL2(k=k, learning_rate=learning_rate, max_iterations=max_iterations),
    }
    return strategies[method]()


METHODS = ("ipguard", "random", "fgsm", "igsm", "cw-l2")
