"""Several bundles against one opened suspect (``audit_each``, ``scan``), and every suspect against every bundle
(``audit_many``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..bundle import Bundle
from ..errors import IPGuardError
from ..models import Classifier, HttpClassifier, as_classifier
from ..sequential import SequentialSettings
from ..types import Answers, Packing
from .judge import Question, ask_points, pose_question, result_of
from .result import AuditOptions, AuditResult
from .screen import screen_group
from .single import audit_with


def audit_each(
    bundles: Sequence[Bundle],
    classifier: Classifier,
    options: AuditOptions,
    *,
    sequential: SequentialSettings | None = None,
    screen: bool = False,
    stop_at_error: bool = False,
) -> list[AuditResult | IPGuardError]:
    """Several bundles against one opened suspect (a ``SuspectGroup``'s): each bundle's result, or the error
    that stopped its own audit. Without a sequential test the bundles whose points take one shape once fitted
    to the suspect are asked in one batch of runs, so a scan pays for inference rather than for one call per
    bundle; where that cannot be (an API, an unanswered point whose reason must be told per bundle, a bundle
    the suspect cannot take, any failure) a bundle is audited alone, so a failing bundle fails alone.

    ``screen``: the points are asked in rounds (``SCREEN_ROUNDS``, in each bundle's secret order), and a bundle
    stops once no answers to its unasked points could make it a match (``screen_group``): the same accusations as
    asking every point, for a fraction of the points where the suspect is no copy. ``stop_at_error``: the first
    bundle that fails raises its error, and no bundle after it is asked.

    A result's ``seconds`` share its group's time evenly, posing its questions included."""
    outcomes: list[AuditResult | IPGuardError | None] = [None] * len(bundles)
    if sequential is None and not isinstance(classifier, HttpClassifier):
        questions: dict[int, Question] = {}
        by_shape: dict[tuple[int, ...], list[int]] = {}
        posing: dict[int, float] = {}
        for index, bundle in enumerate(bundles):
            posed = time.perf_counter()
            try:
                questions[index] = pose_question(bundle, classifier, options)
            except IPGuardError:
                continue  # audited alone below, for its own error
            posing[index] = time.perf_counter() - posed
            by_shape.setdefault(tuple(questions[index].points.shape[1:]), []).append(index)
        for shape, members in by_shape.items():
            if len(members) < 2 and not screen:
                continue
            together = [bundles[index] for index in members]
            asked = [questions[index] for index in members]
            started = time.perf_counter() - sum(posing[index] for index in members)
            try:  # a first round that would decide how the output is read for all: every point at once
                results = (
                    screen_group(together, classifier, options, asked, started)
                    if screen and not classifier.reads_output_by_values(shape)
                    else _joined(together, classifier, options, asked, started)
                )
            except IPGuardError:
                results = None
            if results is not None:
                for index, result in zip(members, results, strict=True):
                    outcomes[index] = result
    for index, bundle in enumerate(bundles):
        if outcomes[index] is None:
            try:
                outcomes[index] = audit_with(bundle, classifier, options, sequential=sequential)
            except IPGuardError as error:
                if stop_at_error:
                    raise
                outcomes[index] = error
    assert all(outcome is not None for outcome in outcomes)  # every bundle audited, alone where not together
    return [outcome for outcome in outcomes if outcome is not None]


def audit_group(
    bundles: Sequence[Bundle],
    classifier: Classifier,
    options: AuditOptions,
    *,
    sequential: SequentialSettings | None = None,
    screen: bool = False,
) -> list[AuditResult]:
    """Several bundles against one opened suspect (``audit_each``), stopping at the first bundle that fails (with
    its error): a remote API is asked nothing more once one bundle cannot be audited."""
    results = []
    for outcome in audit_each(bundles, classifier, options, sequential=sequential, screen=screen, stop_at_error=True):
        if isinstance(outcome, IPGuardError):
            raise outcome
        results.append(outcome)
    return results


def _joined(
    bundles: Sequence[Bundle],
    classifier: Classifier,
    options: AuditOptions,
    questions: Sequence[Question],
    started: float,
) -> list[AuditResult] | None:
    """``audit_each`` without the screen: every bundle's points in one batch of runs, each judged as alone.
    None where a point goes unanswered (each bundle must then be audited alone, to tell its own reasons)."""
    joined = ask_points(classifier, np.concatenate([question.points for question in questions]))
    if joined.skipped or not bool(joined.answered.all()):
        return None
    results, offset = [], 0
    asked_seconds = (time.perf_counter() - started) / len(bundles)
    for bundle, question in zip(bundles, questions, strict=True):
        count = len(question.points)
        answers = Answers(joined.labels[offset : offset + count], joined.kind, joined.answered[offset : offset + count])
        offset += count
        clock = time.perf_counter() - asked_seconds
        results.append(
            result_of(bundle, classifier, options, question, answers, np.arange(count), None, 1.0, "", clock)
        )
    return results


def audit_many(
    bundles: Sequence[Bundle],
    suspects: Sequence[object],
    options: AuditOptions | None = None,
    *,
    sequential: bool | None = None,
    sequential_settings: SequentialSettings | None = None,
) -> list[AuditResult]:
    """Every suspect against every bundle, each suspect opened once per ``SuspectGroup``; ranked by
    matching rate.

    ``sequential``: True for every suspect, False for none, None (the default) for remote prediction
    APIs only — where every query is paid for.
    """
    options = options or AuditOptions()
    results: list[AuditResult] = []
    for suspect in suspects:
        for group in suspect_groups(bundles):
            classifier = as_classifier(
                suspect,
                providers=options.providers,
                output_name=options.output_name or group.output_name,
                num_classes=group.num_classes,
                model_timeout=options.model_timeout,
                packing=group.packing,
                axes=group.axes,
            )
            settings = sequential_settings_for(classifier, sequential, sequential_settings)
            results.extend(audit_group(group.bundles, classifier, options, sequential=settings))
    return sorted(results, key=lambda r: (r.verdict != "match", -r.matching_rate, r.suspect, r.fingerprint))


@dataclass(frozen=True)
class SuspectGroup:
    """Bundles that read a suspect alike: the same packing of inputs, output and output axes, so one
    adapter of the suspect serves them all (``num_classes``: the count they share, else None)."""

    bundles: tuple[Bundle, ...]
    packing: Packing | None
    output_name: str | None
    axes: tuple[int | None, int | None, str]
    num_classes: int | None


def suspect_groups(bundles: Sequence[Bundle]) -> list[SuspectGroup]:
    """``bundles`` grouped by how they read a suspect, in first-seen order: a scan or ``audit_many`` opens
    one adapter per group, so fingerprints of several inputs or another classification site sit beside
    ordinary ones."""
    grouped: dict[tuple[Packing | None, str | None, tuple[int | None, int | None, str]], list[Bundle]] = {}
    for bundle in bundles:
        key = (bundle.input_spec.packing, bundle.record.suspect_output(None), bundle.record.output_axes)
        grouped.setdefault(key, []).append(bundle)
    return [SuspectGroup(tuple(group), key[0], key[1], key[2], shared_classes(group)) for key, group in grouped.items()]


def shared_classes(bundles: Sequence[Bundle]) -> int | None:
    """The class count every bundle shares (it guides which output of a suspect to read), else None."""
    counts = {bundle.num_classes for bundle in bundles}
    return next(iter(counts)) if len(counts) == 1 else None


def sequential_settings_for(
    classifier: Classifier, sequential: bool | None, settings: SequentialSettings | None
) -> SequentialSettings | None:
    """Whether ``classifier`` is audited sequentially: as asked, or by default when it is a remote API."""
    asks = sequential if sequential is not None else isinstance(classifier, HttpClassifier)
    return (settings or SequentialSettings()) if asks else None
