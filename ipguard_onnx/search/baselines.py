"""The paper's baselines (Section 5.1.3): random points, FGSM, IGSM and Carlini–Wagner L2."""

from __future__ import annotations

from ..types import FloatArray, LabelArray
from .base import (
    GradientSearch,
    LogitsFunction,
    ProgressCallback,
    SearchOptions,
    SearchOutcome,
    clip,
    outcome_of,
    surrogate_hits,
)
from .registry import register


@register
class RandomPoints(GradientSearch):
    """The paper's Random baseline (Section 5.1.3): the start points themselves, no search."""

    name = "random"
    paper_name = "Random"

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
        return outcome_of(
            points, source_labels, target_labels, surrogate_hits(logits_fn, points, target), torch.zeros(len(start))
        )


@register
class FGSM(GradientSearch):
    """Targeted FGSM (Goodfellow et al. 2015): one step of size ε against the target label's loss.

    x' = clip(x − ε · sign(∇ₓ CE(Z(x), j))); every point is kept, labelled by the real model.
    """

    name = "fgsm"
    paper_name = "FGSM"

    def __init__(self, *, epsilon: float = 0.1) -> None:
        self.epsilon = epsilon

    @classmethod
    def from_options(cls, options: SearchOptions) -> FGSM:
        return cls(epsilon=options.epsilon)

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
            moved = clip(points - self.epsilon * gradient.sign(), lower, upper)
        if progress is not None:
            progress(1, len(start))
        return outcome_of(
            moved, source_labels, target_labels, surrogate_hits(logits_fn, moved, target), torch.ones(len(start))
        )


@register
class IGSM(GradientSearch):
    """Targeted iterative FGSM (Kurakin et al. 2017): steps of α inside an L∞ ball of radius ε.

    The paper's settings (Section 5.1.3): α = 1/255, at most 1,000 iterations; each point stops as
    soon as the model labels it j.
    """

    name = "igsm"
    paper_name = "IGSM"

    def __init__(self, *, epsilon: float = 0.1, step: float = 1 / 255, max_iterations: int = 1000) -> None:
        self.epsilon = epsilon
        self.step = step
        self.max_iterations = max_iterations

    @classmethod
    def from_options(cls, options: SearchOptions) -> IGSM:
        return cls(epsilon=options.epsilon, max_iterations=options.max_iterations)

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
            stop = progress(iteration, int((~active).sum())) if progress is not None else None
            if stop or iteration == self.max_iterations or not bool(active.any()):
                break  # a callback that answers True (the fingerprint's time budget) ends the search here
            loss = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
            (gradient,) = torch.autograd.grad(loss, points)
            with torch.no_grad():
                stepped = clip(points - self.step * gradient.sign(), lower, upper)
                points = torch.where(active.view(view), stepped, points).detach()
            iterations += active
        points = points.detach()
        return outcome_of(points, source_labels, target_labels, surrogate_hits(logits_fn, points, target), iterations)


@register
class CWL2(GradientSearch):
    """Targeted Carlini–Wagner L2 (2017): min ‖δ‖² + c · max(max_{t≠j} Z_t − Z_j, −k), Adam on tanh space.

    A binary search over c per point keeps the smallest successful perturbation. Inputs exactly at
    the domain bounds are moved 1e-6 inside before atanh; otherwise they could never move (the
    tanh change of variables has an infinite preimage there).
    """

    name = "cw-l2"
    paper_name = "CW-L2"

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

    @classmethod
    def from_options(cls, options: SearchOptions) -> CWL2:
        return cls(k=options.k, learning_rate=options.learning_rate, max_iterations=options.max_iterations)

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
            if progress is not None and progress(int(iterations.max()), done_total):
                break  # the time budget ends it between binary-search steps, with the best points so far
        hit = torch.isfinite(best_distance)
        return outcome_of(best, source_labels, target_labels, hit, iterations)
