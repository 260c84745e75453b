"""The screen of a group audit (``scan``'s default): points asked in rounds, a bundle closed once no answers to the
rest could make it a match."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..bundle import Bundle
from ..errors import AuditError, UnsupportedModelError
from ..models import Classifier
from ..sequential import SCREENED, SequentialRecord, query_order
from ..stats import best_p_value, combined_p_value
from ..types import Answers
from .judge import Question, Tally, ask_points, decide, map_labels, part_results, result_of
from .result import OUT_OF_RANGE_LIMIT, AuditOptions, AuditResult

SCREEN_ROUNDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)
"""A screened group audit (``audit_each``) asks each open bundle up to these shares of its points, one joined
run a round: a bundle that cannot accuse even a perfect copy closes after 5 %, a suspect that is no copy as soon
as its disagreements rule a match out (at a threshold of 85 %, 16 of 100 points), a copy is asked every point.
Measured against (0.2, 0.4, 1.0) on the Fashion zoo: 25 % of the points asked instead of 37.5 %, the same
verdicts (BENCHMARKS.md, "A bundle stops once a match is ruled out")."""


def screen_group(
    bundles: Sequence[Bundle],
    classifier: Classifier,
    options: AuditOptions,
    questions: Sequence[Question],
    started: float,
) -> list[AuditResult] | None:
    """``audit_each(screen=True)``: each bundle's points asked in rounds, in the bundle's secret order
    (``query_order``), all open bundles' in one run a round. After each round a bundle is closed once no
    answers to its unasked points can make it a match, so its verdict is the one asking every point gives:

    - its answers so far are classes of it, and the audit's own verdict with every unasked point answered *as a
      copy would* (the best case for a match: one more match never raises a p-value or lowers a rate) is still
      no match;
    - or more of its points than ``OUT_OF_RANGE_LIMIT`` of them all were answered with no class of it (a suspect
      of another task): whatever the rest answer, the audit reads the wrong output and is inconclusive;
    - or, under the evidence rule, some were and even every point matching could not reach α: inconclusive too.

    A closed bundle's result is over the points asked, with the best case's p-value (a lower bound of the
    p-value all points would give). Every other bundle is asked all its points and judged exactly as alone.
    None where a point goes unanswered (its bundle must then be audited alone). ``started``: when the group's
    clock began."""
    orders = [
        query_order(bundle.sha256, len(question.points)) for bundle, question in zip(bundles, questions, strict=True)
    ]
    asked: list[list[npt.NDArray[np.int64]]] = [[] for _ in bundles]
    replies: list[list[Answers]] = [[] for _ in bundles]
    seen = [np.full(len(question.points), -1, np.int64) for question in questions]
    """Each asked point's answer as a class index of its bundle (-1 where none is)."""
    was_asked = [np.zeros(len(question.points), np.bool_) for question in questions]
    closed: dict[int, float] = {}
    """Bundles closed early, with their best-case p-value."""
    open_ = list(range(len(bundles)))
    for share in SCREEN_ROUNDS:
        chunks = []
        for index in open_:
            done = sum(len(chunk) for chunk in asked[index])
            chunks.append(orders[index][done : max(done, math.ceil(share * len(orders[index])))])
        joined = ask_points(
            classifier, np.concatenate([questions[i].points[c] for i, c in zip(open_, chunks, strict=True)])
        )
        if joined.skipped or not bool(joined.answered.all()):
            return None
        offset, still_open = 0, []
        for index, chunk in zip(open_, chunks, strict=True):
            asked[index].append(chunk)
            reply = Answers(
                joined.labels[offset : offset + len(chunk)], joined.kind, joined.answered[offset : offset + len(chunk)]
            )
            replies[index].append(reply)
            offset += len(chunk)
            seen[index][chunk] = map_labels(reply, bundles[index], classifier.name)
            was_asked[index][chunk] = True
            best = best_case_p_value(bundles[index], questions[index], options, seen[index], was_asked[index])
            if best is None:
                still_open.append(index)
            else:
                closed[index] = best
        open_ = still_open
        if not open_:
            break
    asked_seconds = (time.perf_counter() - started) / len(bundles)
    results = []
    for index, (bundle, question) in enumerate(zip(bundles, questions, strict=True)):
        try:
            answers = classifier.join(replies[index])
        except UnsupportedModelError as exc:
            raise AuditError(str(exc)) from None
        order = np.concatenate(asked[index])
        record, p_value = None, closed.get(index, 1.0)
        if index in closed:
            record = SequentialRecord(
                queries=len(order),
                points=len(question.points),
                stopped_because=SCREENED,
                verdict_error=0.0,
                match_wealth=1.0,
                no_match_wealth=1.0,
                evidence_wealth=1.0,
                batch=len(asked[index][0]),
            )
        clock = time.perf_counter() - asked_seconds
        how = f"screen rounds={','.join(map(repr, SCREEN_ROUNDS))}" if record is not None else ""
        results.append(result_of(bundle, classifier, options, question, answers, order, record, p_value, how, clock))
    return results


def best_case_p_value(
    bundle: Bundle,
    question: Question,
    options: AuditOptions,
    seen: npt.NDArray[np.int64],
    was_asked: npt.NDArray[np.bool_],
) -> float | None:
    """The p-value of ``bundle`` were every point not yet asked answered with its own label, if no answers to
    them can make it a match (``screen_group``'s rules); None while one still can, or once every point is
    asked. ``seen``: each asked point's answer as a class index (−1 or beyond the classes where none)."""
    if was_asked.all():
        return None
    points = len(seen)
    indices = np.where(was_asked, seen, bundle.labels)
    valid = (indices >= 0) & (indices < bundle.num_classes)
    agrees = (indices == bundle.labels) & valid
    parts = part_results(bundle, agrees, valid)
    p_value = combined_p_value([part.p_value for part in parts])
    invalid = points - int(valid.sum())
    if invalid > OUT_OF_RANGE_LIMIT * points:  # the wrong output, whatever the rest answer
        return p_value
    if invalid:  # a few out of range: every point's verdict depends on how many more, unless none can accuse
        reachable = combined_p_value([best_p_value(part.points, part.null_agreement) for part in bundle.parts])
        return p_value if question.rule == "evidence" and reachable > question.alpha else None
    best = Tally(indices, valid, {}, False, points, points, int(agrees.sum()))
    verdict, _, _ = decide(bundle, question, best, parts, p_value, None, options.min_answered)
    return None if verdict == "match" else p_value
