"""Asking the points a batch at a time in the bundle's secret order until a sequential test settles the verdict
(``sequential``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..bundle import Bundle
from ..errors import AuditError, UnsupportedModelError
from ..models import Classifier
from ..sequential import (
    EvidenceTest,
    SequentialRecord,
    SequentialSettings,
    ThresholdTest,
    query_order,
)
from ..stats import threshold_for
from ..types import Answers, FloatArray
from .judge import ask_points, map_labels
from .result import VerdictRule


def sequential_thresholds(bundle: Bundle, rule: VerdictRule, threshold: float, alpha: float) -> list[float]:
    """The matching rate each sequential verdict test settles against: under the evidence rule, per part the
    smallest rate whose p-value reaches α / parts (2: a part that cannot reach α settles as no match at once);
    under the paper's rule, the threshold over the whole bundle, then over each part."""
    parts = bundle.parts
    if rule == "threshold":
        return [threshold] * (1 + len(parts))
    share = alpha / len(parts)
    return [threshold_for(part.points, part.null_agreement, share) or 2.0 for part in parts]


def ask_sequentially(
    classifier: Classifier,
    points: FloatArray,
    bundle: Bundle,
    thresholds: list[float],
    alpha: float,
    settings: SequentialSettings,
) -> tuple[Answers, npt.NDArray[np.int64], SequentialRecord, float]:
    """Ask ``settings.batch`` points at a time in the bundle's order until the verdict is settled (``sequential``).

    ``thresholds`` are the verdict tests' (``sequential_thresholds``): with one more than there are parts, the
    first covers the whole bundle (the paper's rule), else one per part; each runs at δ / (number of tests) and
    a match settles when any test settles as one. Under the evidence rule the audit also stops as a match once
    the anytime-valid p-value reaches α. Once a point goes unanswered nothing stops early: the population of
    answered points is no longer known, so every point is asked.
    """
    order = query_order(bundle.sha256, len(points))
    parts = bundle.parts
    whole = len(thresholds) > len(parts)
    error = settings.verdict_error / len(thresholds)
    tests = [ThresholdTest(len(points), thresholds[0], error)] if whole else []
    tests += [
        ThresholdTest(part.points, rate, error) for part, rate in zip(parts, thresholds[-len(parts) :], strict=True)
    ]
    part_of_point = np.zeros(len(points), np.int64)
    null_of_point = np.zeros(len(points))
    for index, part in enumerate(parts):
        part_of_point[part.start : part.stop] = index
        null_of_point[part.start : part.stop] = part.null_agreement
    evidence = EvidenceTest()
    batches: list[Answers] = []
    asked: list[int] = []
    path: list[tuple[int, float]] = []
    any_skipped = False
    stopped_because = "all points asked"
    for start in range(0, len(order), settings.batch):
        chunk = order[start : start + settings.batch]
        answers = ask_points(classifier, points[chunk])
        batches.append(answers)
        asked.extend(int(i) for i in chunk)
        indices = map_labels(answers, bundle, classifier.name)
        valid = answers.answered & (indices >= 0) & (indices < bundle.num_classes)  # as the fixed audit counts
        any_skipped = any_skipped or not bool(valid.all())
        for point, agree in zip(chunk, valid & (indices == bundle.labels[chunk]), strict=True):
            if whole:
                tests[0].observe(int(agree))
            tests[int(whole) + int(part_of_point[point])].observe(int(agree))
            evidence.observe(int(agree), float(null_of_point[point]))
        path.append((len(asked), evidence.p_value))
        if any_skipped:
            continue
        decisions = [test.decision for test in tests]
        if ("match" in decisions) if whole else evidence.p_value <= alpha:  # the rule's own match
            stopped_because = "match settled"
            break
        if all(decision == "no match" for decision in decisions):
            stopped_because = "no match settled"
            break
    record = SequentialRecord(
        queries=len(asked),
        points=len(points),
        stopped_because=stopped_because,
        verdict_error=settings.verdict_error,
        match_wealth=max(t.best_match for t in tests),
        no_match_wealth=min(t.best_no_match for t in tests),
        evidence_wealth=evidence.best,
        batch=settings.batch,
        path=tuple(path),
    )
    try:
        answers = classifier.join(batches)
    except UnsupportedModelError as exc:
        raise AuditError(str(exc)) from None
    return answers, np.asarray(asked), record, evidence.p_value
