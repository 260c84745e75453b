"""Boundary points (IPGuard, Section 4): points just past the target's classification boundary, by the paper's
search on the surrogate, the conferrable ``--unique`` search, or a gradient-free search on onnxruntime itself.
They catch copies that keep the target's boundary: fine-tuned, pruned, quantized, re-exported."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SearchError, UsageError
from ..models import OnnxClassifier, as_classifier
from ..search import (
    BoundaryWalk,
    ConferrableSearch,
    GradientSearch,
    ProgressCallback,
    QuerySearch,
    SearchOptions,
    StartKind,
    TargetLabelRule,
    TrajectoryWalk,
    ZerothOrderAdam,
    anchor_targets,
    make_strategy,
    margin_scale,
    screen,
    search_scores,
    spread_points,
    start_points,
)
from ..search.conferrable import ITERATIONS as UNIQUE_ITERATIONS
from ..search.conferrable import REFERENCE_MARGIN
from ..stats import DEFAULT_NULL_AGREEMENT, UNIQUE_NULL_AGREEMENT
from ..types import FloatArray, LabelArray
from .base import DOMINANT_SHARE, CandidateLoop, MadePart, PartKind, SearchGuard, SearchTally, Workshop, register

if TYPE_CHECKING:
    from ..fingerprint_settings import FingerprintSettings
    from ..surrogate import StatusCallback

ANCHOR_POOL = 1024
"""Anchors the gradient-free search draws at least, per round (more: a nearer anchor of every class j)."""


@register
class BoundaryPart(PartKind):
    """The paper's kind of point; every fingerprint has it unless ``--mistakes 1`` asks for mistakes alone."""

    name = "boundary"
    summary = "points just past the target's boundary: copies that keep the boundary (fine-tuned, pruned, quantized)"

    def why_not(self, shop: Workshop) -> str | None:
        return None

    def make(self, shop: Workshop, wanted: int) -> MadePart:
        settings = shop.settings.with_n(wanted)
        details: dict[str, Any] = {}
        if shop.surrogate is None:
            points, labels = _gradient_free_points(
                shop.target,
                shop.audit_labels,
                settings,
                shop.k,
                shop.data,
                shop.rng,
                (shop.low, shop.high),
                shop.tally,
                shop.progress,
                shop.say,
                shop.guard(settings.max_iterations, watch_stall=False),
            )
            how = f"gradient-free search on onnxruntime ({shop.why_gradient_free})"
        else:
            guard = shop.guard(settings.max_iterations, watch_stall=not shop.unique)
            loop = CandidateLoop(
                shop.surrogate,
                shop.target,
                shop.rng,
                shop.low,
                shop.high,
                settings.max_rounds,
                shop.progress,
                shop.say,
                shop.tally,
                guard,
            )
            if shop.unique:
                data, truth = shop.panel_data if shop.data is not None else (None, None)
                points, labels, unique_record = _unique_points(
                    loop, settings, shop.k, data, truth, shop.reference_paths
                )
                details["unique"] = unique_record
                how = "conferrable search (--unique): owner-made copies agree, owner-trained references do not"
            else:
                options = SearchOptions(shop.k, settings.epsilon, settings.max_iterations, settings.learning_rate)
                strategy = make_strategy(settings.method, options)
                assert isinstance(strategy, GradientSearch)  # a surrogate was built: the method follows a gradient
                points, labels, balance = _paper_points(loop, strategy, settings, shop.data)
                details["balance"] = balance
                how = f"the paper's search ({settings.method}, k = {shop.k:g}) on the surrogate"
                if len(points) < wanted and guard.stalled:  # the walk needs no gradient: it may still find them
                    shop.say(f"{guard.stopped}; falling back to the gradient-free search on onnxruntime")
                    more, more_labels = _gradient_free_points(
                        shop.target,
                        shop.audit_labels,
                        settings.with_n(wanted - len(points)),
                        shop.k,
                        shop.data,
                        shop.rng,
                        (shop.low, shop.high),
                        shop.tally,
                        shop.progress,
                        shop.say,
                        shop.guard(settings.max_iterations, watch_stall=False),
                    )
                    points, labels = np.concatenate([points, more]), np.concatenate([labels, more_labels])
                    shop.tally.stopped += f"; the gradient-free search on onnxruntime then found {len(more)} point(s)"
                    how += f", then the gradient-free search on onnxruntime for {len(more)} ({guard.stopped})"
        null = UNIQUE_NULL_AGREEMENT if shop.unique else DEFAULT_NULL_AGREEMENT
        source = (
            f"default for {'--unique' if shop.unique else 'the paper'}'s points, uncalibrated: above every "
            "independent model measured on the benchmark zoos"
        )
        return MadePart(self.name, points, labels, how, null, source, details)


def _gradient_free_points(
    target: OnnxClassifier,
    audit_labels: Callable[[FloatArray], LabelArray],
    settings: FingerprintSettings,
    k: float,
    data: FloatArray | None,
    rng: np.random.Generator,
    bounds: tuple[FloatArray, FloatArray],
    tally: SearchTally,
    progress: ProgressCallback | None,
    say: StatusCallback,
    guard: SearchGuard | None = None,
) -> tuple[FloatArray, LabelArray]:
    """Rounds of the gradient-free search (``search.gradient_free``) on onnxruntime itself until ``n``
    points satisfy Eq. 5; anchors of each class j come from owner data when given, else the domain (the
    starts are anchors too)."""
    if settings.method == TrajectoryWalk.name:
        return _trajectory_points(target, audit_labels, settings, data, rng, bounds, tally, progress, say)
    low, high = bounds
    kind = target.output_spec.kind

    def scores(batch: FloatArray) -> FloatArray:
        if kind == "labels":  # labels only: one-hot "scores" to choose j and anchors; the walk is decision-based
            found = audit_labels(batch)
            return np.eye(max(int(found.max()) + 1, target.num_classes or 0, 2), dtype=np.float32)[found]
        return search_scores(target.scores(batch), kind)

    integer = target.input_spec.integer
    strategy: QuerySearch = BoundaryWalk(k=k, integer=integer)
    if settings.method == ZerothOrderAdam.name:  # measured against the walk (BENCHMARKS.md); by name only
        if integer or kind == "labels":
            raise UsageError(
                f"--method zo-adam needs class scores over float inputs; {target.name} "
                f"{'takes integer input' if integer else 'gives labels only'}: use --method gradient-free"
            )
        strategy = ZerothOrderAdam(
            k=k, max_iterations=settings.max_iterations, learning_rate=settings.learning_rate, seed=settings.seed
        )
    starts_from = data if settings.init == StartKind.data else None
    kept_points: list[FloatArray] = []
    kept_labels: list[LabelArray] = []
    for attempt in range(1, settings.max_rounds + 1):
        need = settings.n - sum(len(labels) for labels in kept_labels)
        if need <= 0:
            break
        count = need if attempt == 1 else 2 * need
        if guard is not None and guard.expired():
            tally.stopped = guard.stopped
            say(f"gradient-free search stopped: {guard.stopped}")
            break
        tally.rounds += 1
        say(f"gradient-free boundary search, round {attempt}: {count} points")
        tick = time.perf_counter()
        start = start_points(count, rng, starts_from, low, high)
        anchors = np.concatenate([start_points(max(8 * count, ANCHOR_POOL), rng, data, low, high), start])
        if integer:  # whole numbers, as the model reads them
            start, anchors = np.rint(start).astype(np.float32), np.rint(anchors).astype(np.float32)
        start_scores, anchor_scores = scores(start), scores(anchors)
        if data is None and _one_class_fills(np.concatenate([start_scores, anchor_scores]).argmax(axis=1)):
            spread = spread_points(len(anchors), rng, low, high)  # other classes hide in parts of the domain
            spread = np.rint(spread).astype(np.float32) if integer else spread
            anchors, anchor_scores = np.concatenate([anchors, spread]), np.concatenate([anchor_scores, scores(spread)])
            tally.spread_anchors += len(spread)
        width = max(start_scores.shape[1], anchor_scores.shape[1])  # one-hot widths follow the labels seen
        start_scores, anchor_scores = _widen(start_scores, width), _widen(anchor_scores, width)
        drawn = np.concatenate([start_scores.argmax(axis=1), anchor_scores.argmax(axis=1)])
        tally.drawn_labels.extend(drawn.tolist())
        _require_two_classes(drawn, bounds, data)
        least_likely = settings.label == TargetLabelRule.least_likely and kind != "labels"
        found_points, found_labels, found_iterations, queries = [], [], [], len(start) + len(anchors)
        remaining = np.arange(count)
        for sure_by in (0.0, k):  # the nearest anchor of j; for starts left short, the nearest one sure by k
            if not len(remaining):
                break
            targets, which = anchor_targets(
                start[remaining], start_scores[remaining], anchors, anchor_scores, least_likely, rng, sure_by
            )
            usable = targets >= 0
            outcome, cost = strategy.run_queries(
                audit_labels if kind == "labels" else target.predict,
                None if kind == "labels" else scores,
                start[remaining[usable]],
                anchors[which[usable]],
                targets[usable],
                bounds=(low, high),
                progress=guard if guard is not None else progress,
            )
            converged = outcome.converged.copy()
            if (
                audit_labels != target.predict and kind != "labels" and converged.any()
            ):  # the label output must say j too
                converged[converged] = audit_labels(outcome.points[converged]) == outcome.target_labels[converged]
                queries += int(outcome.converged.sum())
                tally.disagreement += int((outcome.converged & ~converged).sum())
            queries += cost.queries
            found_points.append(outcome.points[converged])
            found_labels.append(outcome.target_labels[converged])
            found_iterations.append(outcome.iterations[converged])
            remaining = remaining[usable][~outcome.converged]
            if guard is not None and guard.stopped:
                break
        tally.add_round(
            count, len(remaining), time.perf_counter() - tick, hit_rate=1.0 - len(remaining) / count, queries=queries
        )
        kept_points.append(np.concatenate(found_points)[:need])
        kept_labels.append(np.concatenate(found_labels)[:need])
        tally.iterations.extend(np.concatenate(found_iterations)[:need].tolist())
    if guard is not None and guard.stopped:
        tally.stopped = guard.stopped
    points = np.concatenate(kept_points) if kept_points else np.zeros((0, *low.shape), np.float32)
    return points, np.concatenate(kept_labels) if kept_labels else np.zeros(0, np.int64)


def _one_class_fills(labels: LabelArray) -> bool:
    """One class labels at least ``DOMINANT_SHARE`` of the draws."""
    return bool(len(labels)) and float(np.bincount(labels).max()) >= DOMINANT_SHARE * len(labels)


def _require_two_classes(labels: LabelArray, bounds: tuple[FloatArray, FloatArray], data: FloatArray | None) -> None:
    """A gradient-free search needs starts or anchors of two classes at least: say where all were one."""
    seen = np.unique(labels)
    if len(seen) < 2:
        source = "--data" if data is not None else f"--domain {bounds[0].min():g},{bounds[1].max():g}"
        raise SearchError(
            f"every input drawn from {source} is labelled class {int(seen[0])}, so there is no other class "
            "to cross to; widen --domain, or pass owner data that holds other classes (--data)"
        )


def _trajectory_points(
    target: OnnxClassifier,
    audit_labels: Callable[[FloatArray], LabelArray],
    settings: FingerprintSettings,
    data: FloatArray | None,
    rng: np.random.Generator,
    bounds: tuple[FloatArray, FloatArray],
    tally: SearchTally,
    progress: ProgressCallback | None,
    say: StatusCallback,
) -> tuple[FloatArray, LabelArray]:
    """``--method trajectory``: ADV-TRA-style trajectories (``search.trajectory``), each point labelled as the
    audit reads the target; rounds add trajectories until ``n`` points (the last one may be cut short)."""
    low, high = bounds
    walk = TrajectoryWalk(integer=target.input_spec.integer)
    kept_points: list[FloatArray] = []
    kept_labels: list[LabelArray] = []
    for attempt in range(1, settings.max_rounds + 1):
        need = settings.n - sum(len(labels) for labels in kept_labels)
        if need <= 0:
            break
        count = -(-need // walk.length) * (1 if attempt == 1 else 2)
        tally.rounds += 1
        say(f"trajectory search, round {attempt}: {count} trajectories of up to {walk.length} points")
        tick = time.perf_counter()
        start = start_points(count, rng, data if settings.init == StartKind.data else None, low, high)
        anchors = start_points(max(8 * count, ANCHOR_POOL), rng, data, low, high)
        if walk.integer:
            start, anchors = np.rint(start).astype(np.float32), np.rint(anchors).astype(np.float32)
        anchor_labels = audit_labels(anchors)
        _require_two_classes(np.concatenate([audit_labels(start), anchor_labels]), bounds, data)
        found, cost = walk.trace(audit_labels, start, anchors, anchor_labels, progress=progress)
        keep, checked = np.ones(len(found.points), np.bool_), 0
        if target.output_spec.kind != "labels":  # the scores must say what the label output says
            keep, checked = target.predict(found.points) == found.labels, len(found.points)
            tally.disagreement += int((~keep).sum())
        kept_points.append(found.points[keep][:need])
        kept_labels.append(found.labels[keep][:need])
        tally.add_round(
            count,
            count - found.complete,
            time.perf_counter() - tick,
            hit_rate=found.complete / count,
            queries=cost.queries + checked,
        )
        tally.iterations.extend([walk.crossings * walk.bisection_steps] * int(keep.sum()))
    empty = np.zeros((0, *low.shape), np.float32)
    points = np.concatenate(kept_points) if kept_points else empty
    return points, np.concatenate(kept_labels) if kept_labels else np.zeros(0, np.int64)


def _widen(scores: FloatArray, width: int) -> FloatArray:
    """One-hot label scores padded with zero columns to ``width`` classes."""
    if scores.shape[1] >= width:
        return scores
    return np.pad(scores, ((0, 0), (0, width - scores.shape[1])))


def _paper_points(
    loop: CandidateLoop, strategy: GradientSearch, settings: FingerprintSettings, data: FloatArray | None
) -> tuple[FloatArray, LabelArray, str]:
    """The paper's search (or a baseline), and the binary balance: a binary model labels every random
    start alike, so every point would say one class and a constant model would match. Half the points
    are then searched back across the boundary from the others (j is then the other class)."""
    points, labels = loop.collect(strategy, settings.n, data if settings.init == "data" else None, settings.label)
    if loop.target.num_classes != 2 or len(points) < 2 or len(set(labels.tolist())) != 1:
        return points, labels, ""
    half = len(points) // 2
    back_points, back_labels = loop.collect(strategy, half, points[: len(points) - half], settings.label)
    if not len(back_points):
        return points, labels, ""
    points = np.concatenate([points[: len(points) - len(back_points)], back_points])
    labels = np.concatenate([labels[: len(labels) - len(back_labels)], back_labels])
    return points, labels, f"{len(back_points)} of {len(points)} points searched back across the boundary"


def _unique_points(
    loop: CandidateLoop,
    settings: FingerprintSettings,
    k: float,
    data: FloatArray | None,
    truth: LabelArray | None,
    reference_paths: Sequence[str | os.PathLike[str]],
) -> tuple[FloatArray, LabelArray, dict[str, Any]]:
    """``--unique``: the panel, a conferrable search over a ``pool_factor · n`` pool through the same
    candidate loop, then the ``n`` most conferrable points (``search.conferrable``)."""
    from ..search.panel import build_panel

    started = time.perf_counter()
    supplied = [as_classifier(Path(path), providers=settings.providers) for path in reference_paths]
    if data is None and not supplied:
        raise UsageError(
            "--unique needs owner data (--data) to train references, or models to compare with (--reference)"
        )
    target, surrogate = loop.target, loop.surrogate
    loop.say("--unique: training the panel of owner-made copies and references")
    panel = build_panel(
        surrogate.score_module,
        data,
        target.predict(data) if data is not None else None,
        references=settings.references if data is not None else 0,
        seed=settings.seed,
        supplied=supplied,
        students=settings.students,
        label=target.predict,
        reference_labels=truth,
    )
    build_seconds = time.perf_counter() - started
    loop.say("--unique: conferrable search")
    scale = margin_scale(
        surrogate.scores(data if data is not None else start_points(256, loop.rng, None, loop.low, loop.high))
    )
    search = ConferrableSearch(panel, k=k, iterations=UNIQUE_ITERATIONS, learning_rate=settings.learning_rate)
    pool, pool_labels = loop.collect(
        search, settings.pool_factor * settings.n, data, TargetLabelRule.random
    )  # random j: measured
    chosen, disagreement, agreement = screen(pool, pool_labels, panel, settings.n)
    record: dict[str, Any] = {
        "search": "conferrable (target and positives to j by margin k, references away from j)",
        "pool": len(pool),
        "searched": loop.tally.searched,
        "iterations": UNIQUE_ITERATIONS,
        "k": round(k, 6),
        "reference_margin": round(REFERENCE_MARGIN * k, 6),
        "median_margin": round(scale, 6),
        "starts": "data" if data is not None else "random",
        "reference_disagreement": round(disagreement, 4),
        "positive_agreement": round(agreement, 4),
        "panel_seconds": round(build_seconds, 2),
        "reference_labels": "ground truth from --data" if truth is not None else "the target's",
        "panel": [
            {"name": m.name, "role": m.role, "how": m.how, "digest": m.digest}
            | ({"agreement_with_target": round(m.agreement, 4)} if m.agreement is not None else {})
            for m in panel
        ],
    }
    return pool[chosen], pool_labels[chosen], record | {"seconds": time.perf_counter() - started}
