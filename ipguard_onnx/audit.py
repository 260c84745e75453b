"""Audit: ask a suspect for labels of the fingerprint points and compare (IPGuard's Verify, Section 3.2).

A suspect is anything that labels a batch: an ONNX file (networks and skl2onnx exports), an
onnxruntime session, a Python callable, or a remote prediction API (``models``). Never imports torch.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt

from .bundle import Bundle, load_bundle, utc_timestamp
from .errors import AuditError, BundleError, IPGuardError, UnsupportedModelError, UsageError
from .models import Classifier, HttpClassifier, as_classifier, label_indices
from .models.adapt import fit_points, parse_layout
from .preprocessing import Preprocessing
from .sequential import (
    SCREENED,
    SETTLED_VERDICTS,
    EvidenceTest,
    SequentialRecord,
    SequentialSettings,
    ThresholdTest,
    query_order,
)
from .stats import (
    DEFAULT_FALSE_ACCUSATION_RATE,
    DEFAULT_NULL_AGREEMENT,
    best_p_value,
    binomial_tail,
    combined_p_value,
    plain_words,
    threshold_for,
)
from .types import Answers, FloatArray, Packing

Verdict = Literal["match", "no match", "inconclusive"]


class Expectation(StrEnum):
    """CI mode (``--expect``): what every audited suspect should be."""

    match = "match"
    no_match = "no-match"


OUT_OF_RANGE_LIMIT = 0.02
"""More answers than this outside the fingerprint's classes means the wrong output was read."""
DEFAULT_MIN_ANSWERED = 0.8
"""Below this fraction of answered points a verdict would rest on too little: inconclusive."""
MIN_ANSWERED_POINTS = 10
"""Fewer answered points than this (or than the bundle holds, if fewer) never give a verdict, whatever
``--min-answered`` says — unless a sequential test settled it with its own error bound."""


VerdictRule = Literal["evidence", "threshold"]
"""``evidence`` (the default): a match when the combined p-value over the parts is at most the bundle's
false-accusation rate α. ``threshold`` (``--threshold``, the paper's rule, Section 3.2): a match when the
matching rate over all points, or over one part, reaches the threshold."""


@dataclass(frozen=True)
class PartResult:
    """One evidence part of the bundle (``Bundle.parts``): its own matches, null agreement and p-value."""

    kind: str
    points: int
    answered: int
    matched: int
    matching_rate: float
    null_agreement: float
    p_value: float
    null_agreement_source: str = ""


@dataclass(frozen=True)
class AuditResult:
    """One suspect against one fingerprint: matching rate m/n over the answered points, and the verdict."""

    suspect: str
    suspect_sha256: str | None
    fingerprint: str
    fingerprint_sha256: str
    signer_key_id: str
    signer_pinned: bool
    matching_rate: float
    verdict: Verdict
    threshold: float
    points_queried: int
    points_matched: int
    points_skipped: int
    skipped_reasons: Mapping[str, int]
    providers: tuple[str, ...]
    suspect_details: Mapping[str, str]
    seconds: float
    input_adaptation: tuple[str, ...] = field(default=())
    p_value: float = 1.0
    """One-sided binomial p-value of the matches under the bundle's null agreement (``stats``)."""
    null_agreement: float = DEFAULT_NULL_AGREEMENT
    null_agreement_source: str = "default"
    evidence: str = ""
    """The p-value in plain words."""
    audited_at: str = ""
    parameters: Mapping[str, str] = field(default_factory=dict)
    """Every setting that shaped this result (threshold, min answered, preprocessing, providers)."""
    licensee: str = ""
    """For a licensee trigger set (``issue``): whose copy it marks."""
    sequential: SequentialRecord | None = None
    """For ``--sequential``: queries used, why it stopped, and the tests' evidence at the stop."""
    parts: tuple[PartResult, ...] = ()
    """Each evidence part on its own; ``p_value`` combines theirs (Bonferroni, ``stats.combined_p_value``)."""
    rule: VerdictRule = "evidence"
    false_accusation_rate: float = DEFAULT_FALSE_ACCUSATION_RATE
    """α of the evidence rule: a match when ``p_value`` ≤ α."""
    why: str = ""
    """The verdict in one sentence: which rule decided it and on what (or why there is none)."""
    answered_enough: bool = True
    """Enough points answered with a class of the fingerprint for a verdict (else inconclusive for that)."""
    answers: tuple[int, ...] = ()
    """The suspect's answer to each fingerprint point, in the bundle's order, as a class index of the
    fingerprint; -1 where it was not asked, not answered, or answered no class of the fingerprint."""

    @property
    def matched(self) -> bool:
        return self.verdict == "match"


def _inputs_text(packing: Packing | None) -> str:
    return "one input" if packing is None else f"{len(packing.inputs)} inputs ({packing.describe()})"


def map_labels(answers: Answers, bundle: Bundle, suspect_name: str) -> npt.NDArray[np.int64]:
    """Suspect labels as the fingerprint's class indices (``models.label_indices`` with the bundle's
    class names); -1 where unanswered or not a known class."""
    try:
        return label_indices(answers, bundle.class_names)
    except UnsupportedModelError as exc:
        raise AuditError(
            f"suspect {suspect_name} answers with {exc} but the fingerprint has no class names; "
            "re-create it with 'fingerprint --class-names' listing the classes in order"
        ) from None


@dataclass(frozen=True)
class AuditOptions:
    """How to audit, for one suspect or many (``audit``, ``audit_many``, ``scan``); every field is an
    ``audit`` option of the same name (docs/guides/remote-apis.md)."""

    threshold: float | None = None
    """Decide by the paper's rule (m/n ≥ threshold) instead of the evidence rule."""
    providers: str = "auto"
    preprocessing: Preprocessing | None = None
    """Overrides the bundle's signed preprocessing (``--input-scale``, ``--mean``, ``--std``)."""
    min_answered: float = DEFAULT_MIN_ANSWERED
    output_name: str | None = None
    suspect_layout: str | None = None
    bgr: bool = False
    model_timeout: float | None = None
    false_accusation_rate: float | None = None
    """Overrides the α signed into each bundle."""


def audit(
    bundle: Bundle | str | os.PathLike[str],
    suspect: object,
    *,
    threshold: float | None = None,
    providers: str = "auto",
    preprocessing: Preprocessing | None = None,
    min_answered: float = DEFAULT_MIN_ANSWERED,
    output_name: str | None = None,
    suspect_layout: str | None = None,
    bgr: bool = False,
    sequential: SequentialSettings | None = None,
    model_timeout: float | None = None,
    false_accusation_rate: float | None = None,
) -> AuditResult:
    """Query ``suspect`` with the fingerprint points and decide by the evidence: a match when the combined
    p-value over the bundle's parts is at most its false-accusation rate α (``false_accusation_rate``
    overrides the signed one). With ``threshold``, the paper's rule instead: m/n ≥ threshold (Section 3.2).

    ``suspect`` is an ONNX path, an onnxruntime session, a callable (batch → labels or scores) or a
    ``Classifier`` (e.g. ``models.HttpClassifier``). Unanswered points are skipped, not mismatches;
    with fewer than ``min_answered`` of the points answered, the verdict is "inconclusive".
    ``sequential`` asks the points a batch at a time in the bundle's order and stops once the verdict is
    settled (``sequential``); the p-value is then the anytime-valid one.
    """
    options = AuditOptions(
        threshold=threshold,
        providers=providers,
        preprocessing=preprocessing,
        min_answered=min_answered,
        output_name=output_name,
        suspect_layout=suspect_layout,
        bgr=bgr,
        model_timeout=model_timeout,
        false_accusation_rate=false_accusation_rate,
    )
    return audit_with(bundle, suspect, options, sequential=sequential)


def audit_with(
    bundle: Bundle | str | os.PathLike[str],
    suspect: object,
    options: AuditOptions,
    *,
    sequential: SequentialSettings | None = None,
) -> AuditResult:
    """``audit`` with its options in one ``AuditOptions``: pose the question (the points as the suspect
    takes them), ask it (all at once or sequentially), tally the answers, decide."""
    started = time.perf_counter()
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    output_name = bundle.record.suspect_output(options.output_name)
    classifier = as_classifier(
        suspect,
        providers=options.providers,
        output_name=output_name,
        num_classes=bundle.num_classes,
        model_timeout=options.model_timeout,
        packing=bundle.input_spec.packing,
        axes=bundle.record.output_axes,
    )
    if isinstance(classifier, HttpClassifier) and classifier.packing != bundle.input_spec.packing:
        raise AuditError(
            f"the fingerprint {bundle.name} feeds {_inputs_text(bundle.input_spec.packing)}, the endpoint "
            f"{classifier.name} was opened for {_inputs_text(classifier.packing)}: audit an API against "
            "fingerprints of one kind of input at a time"
        )
    question = _question(bundle, classifier, options)
    record: SequentialRecord | None = None
    if sequential is None:
        asked, answers, anytime_p = np.arange(len(question.points)), _ask(classifier, question.points), 1.0
    else:
        thresholds = _sequential_thresholds(bundle, question.rule, question.threshold, question.alpha)
        answers, asked, record, anytime_p = _ask_sequentially(
            classifier, question.points, bundle, thresholds, question.alpha, sequential
        )
    return _result(bundle, classifier, options, question, answers, asked, record, anytime_p, sequential, started)


def audit_group(
    bundles: Sequence[Bundle],
    classifier: Classifier,
    options: AuditOptions,
    *,
    sequential: SequentialSettings | None = None,
    screen: bool = False,
) -> list[AuditResult]:
    """Several bundles against one opened suspect (``audit_each``), raising the first bundle's error."""
    results = []
    for outcome in audit_each(bundles, classifier, options, sequential=sequential, screen=screen):
        if isinstance(outcome, IPGuardError):
            raise outcome
        results.append(outcome)
    return results


def audit_each(
    bundles: Sequence[Bundle],
    classifier: Classifier,
    options: AuditOptions,
    *,
    sequential: SequentialSettings | None = None,
    screen: bool = False,
) -> list[AuditResult | IPGuardError]:
    """Several bundles against one opened suspect (a ``SuspectGroup``'s): each bundle's result, or the error
    that stopped its own audit. Without a sequential test the bundles whose points take one shape once fitted
    to the suspect are asked in one batch of runs, so a scan pays for inference rather than for one call per
    bundle; where that cannot be (an API, an unanswered point whose reason must be told per bundle, a bundle
    the suspect cannot take, any failure) a bundle is audited alone, so a failing bundle fails alone.

    ``screen``: the points are asked in rounds (``SCREEN_ROUNDS``, in each bundle's secret order), and a bundle
    stops once no answers to its unasked points could make it a match (``_screened``): the same accusations as
    asking every point, for a fraction of the points where the suspect is no copy."""
    outcomes: list[AuditResult | IPGuardError | None] = [None] * len(bundles)
    if sequential is None and not isinstance(classifier, HttpClassifier):
        questions: dict[int, _Question] = {}
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, bundle in enumerate(bundles):
            try:
                questions[index] = _question(bundle, classifier, options)
            except IPGuardError:
                continue  # audited alone below, for its own error
            by_shape.setdefault(tuple(questions[index].points.shape[1:]), []).append(index)
        for members in by_shape.values():
            if len(members) < 2 and not screen:
                continue
            together = [bundles[index] for index in members]
            asked = [questions[index] for index in members]
            try:
                results = (
                    _screened(together, classifier, options, asked)
                    if screen
                    else _joined(together, classifier, options, asked)
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
                outcomes[index] = error
    return [outcome for outcome in outcomes if outcome is not None]


def _joined(
    bundles: Sequence[Bundle], classifier: Classifier, options: AuditOptions, questions: Sequence[_Question]
) -> list[AuditResult] | None:
    """``audit_each`` without the screen: every bundle's points in one batch of runs, each judged as alone.
    None where a point goes unanswered (each bundle must then be audited alone, to tell its own reasons)."""
    started = time.perf_counter()
    joined = _ask(classifier, np.concatenate([question.points for question in questions]))
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
            _result(bundle, classifier, options, question, answers, np.arange(count), None, 1.0, None, clock)
        )
    return results


SCREEN_ROUNDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)
"""A screened group audit (``audit_each``) asks each open bundle up to these shares of its points, one joined
run a round: a bundle that cannot accuse even a perfect copy closes after 5 %, a suspect that is no copy as soon
as its disagreements rule a match out (at a threshold of 85 %, 16 of 100 points), a copy is asked every point.
Measured against (0.2, 0.4, 1.0) on the Fashion zoo: 25 % of the points asked instead of 37.5 %, the same
verdicts (BENCHMARKS.md, "A bundle stops once a match is ruled out")."""


def _screened(
    bundles: Sequence[Bundle],
    classifier: Classifier,
    options: AuditOptions,
    questions: Sequence[_Question],
) -> list[AuditResult] | None:
    """``audit_each(screen=True)``: each bundle's points asked in rounds, in the bundle's secret order
    (``query_order``), all open bundles' in one run a round. After each round a bundle is closed once no
    answers to its unasked points can make it a match, so its verdict is the one asking every point gives:

    - its answers so far are classes of it, and the audit's own verdict with every unasked point answered *as a
      copy would* (the best case for a match: one more match never raises a p-value or lowers a rate) is still
      no match;
    - or more of its points than ``OUT_OF_RANGE_LIMIT`` of them all were answered with no class of it (a suspect
      of another task): whatever the rest answer, the audit reads the wrong output and is inconclusive.

    A closed bundle's result is over the points asked, with the best case's p-value (a lower bound of the
    p-value all points would give). Every other bundle is asked all its points and judged exactly as alone.
    None where a point goes unanswered (its bundle must then be audited alone)."""
    started = time.perf_counter()
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
        joined = _ask(classifier, np.concatenate([questions[i].points[c] for i, c in zip(open_, chunks, strict=True)]))
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
            best = _best_case(bundles[index], questions[index], options, seen[index], was_asked[index])
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
        results.append(_result(bundle, classifier, options, question, answers, order, record, p_value, None, clock))
    return results


def _best_case(
    bundle: Bundle,
    question: _Question,
    options: AuditOptions,
    seen: npt.NDArray[np.int64],
    was_asked: npt.NDArray[np.bool_],
) -> float | None:
    """The p-value of ``bundle`` were every point not yet asked answered with its own label, if no answers to
    them can make it a match (``_screened``'s two rules); None while one still can, or once every point is
    asked. ``seen``: each asked point's answer as a class index (−1 or beyond the classes where none)."""
    if was_asked.all():
        return None
    points = len(seen)
    indices = np.where(was_asked, seen, bundle.labels)
    valid = (indices >= 0) & (indices < bundle.num_classes)
    agrees = (indices == bundle.labels) & valid
    parts = _parts(bundle, agrees, valid)
    p_value = combined_p_value([part.p_value for part in parts])
    invalid = points - int(valid.sum())
    if invalid > OUT_OF_RANGE_LIMIT * points:  # the wrong output, whatever the rest answer
        return p_value
    if invalid:  # a few out of range: the verdict of every point depends on how many more; ask them
        return None
    best = _Tally(indices, valid, {}, False, points, points, int(agrees.sum()))
    verdict, _, _ = _decide(bundle, question, best, parts, p_value, None, options.min_answered)
    return None if verdict == "match" else p_value


def _result(
    bundle: Bundle,
    classifier: Classifier,
    options: AuditOptions,
    question: _Question,
    answers: Answers,
    asked: npt.NDArray[np.int64],
    record: SequentialRecord | None,
    anytime_p: float,
    sequential: SequentialSettings | None,
    started: float,
) -> AuditResult:
    """Tally the answers, decide, and assemble the result (``started``: when this audit's clock began)."""
    output_name = bundle.record.suspect_output(options.output_name)
    tally = _tally(bundle, classifier, answers, asked, len(question.points))
    parts = _parts(bundle, tally.indices == bundle.labels, tally.valid)
    # stopped on the data: only the anytime-valid p-value holds there
    p_value = anytime_p if record is not None else combined_p_value([part.p_value for part in parts])
    verdict, why, enough = _decide(bundle, question, tally, parts, p_value, record, options.min_answered)
    details = classifier.describe()
    return AuditResult(
        suspect=classifier.name,
        suspect_sha256=details.get("sha256"),
        fingerprint=bundle.name,
        fingerprint_sha256=bundle.sha256,
        signer_key_id=bundle.signer_key_id,
        signer_pinned=bundle.signer_pinned,
        matching_rate=tally.rate,
        verdict=verdict,
        threshold=question.threshold,
        points_queried=tally.queried,
        points_matched=tally.matched,
        points_skipped=tally.queried - tally.answered,
        skipped_reasons=tally.skipped_reasons,
        providers=tuple(p for p in details.get("providers", "").split(",") if p),
        suspect_details={k: v for k, v in details.items() if k not in ("sha256", "providers")},
        seconds=time.perf_counter() - started,
        input_adaptation=question.steps,
        p_value=p_value,
        null_agreement=bundle.null_agreement,
        null_agreement_source=bundle.null_agreement_source,
        evidence=plain_words(p_value),
        audited_at=utc_timestamp(),
        licensee=bundle.licensee,
        parts=parts,
        sequential=record,
        rule=question.rule,
        false_accusation_rate=question.alpha,
        why=why,
        answered_enough=enough,
        answers=tuple(np.where(tally.valid, tally.indices, -1).tolist()),
        parameters={
            "rule": question.rule,
            "threshold": repr(question.threshold),
            "false_accusation_rate": repr(question.alpha),
            "min_answered": repr(options.min_answered),
            "preprocessing": question.preprocessing.to_json(),
            "providers_requested": options.providers,
            "output_name": output_name or "",
            "suspect_layout": question.layout or "",
            "bgr": str(options.bgr).lower(),
            "sequential": (
                f"batch={sequential.batch},verdict_error={sequential.verdict_error!r}"
                if sequential is not None
                else f"screen rounds={','.join(map(repr, SCREEN_ROUNDS))}"
                if record is not None and record.stopped_because == SCREENED
                else ""
            ),
        },
    )


@dataclass(frozen=True)
class _Question:
    """What an audit asks one suspect: the points as it takes them, and the rule that will judge the answers."""

    points: FloatArray
    steps: tuple[str, ...]
    """How the points were fitted to the suspect (preprocessing, layout, size, whole numbers), in words."""
    preprocessing: Preprocessing
    layout: str | None
    rule: VerdictRule
    threshold: float
    alpha: float


def _question(bundle: Bundle, classifier: Classifier, options: AuditOptions) -> _Question:
    """The options checked, the bundle's points preprocessed and fitted to the suspect (``models.adapt``)."""
    layout = parse_layout(options.suspect_layout) if options.suspect_layout is not None else None
    threshold = bundle.threshold if options.threshold is None else options.threshold
    check_threshold(threshold)
    alpha = bundle.false_accusation_rate if options.false_accusation_rate is None else options.false_accusation_rate
    check_false_accusation_rate(alpha)
    check_min_answered(options.min_answered)
    prep = options.preprocessing if options.preprocessing is not None else bundle.preprocessing
    points = _preprocessed(bundle, prep, signed=options.preprocessing is None)
    points, steps = fit_points(points, bundle.input_spec, classifier, layout=layout, bgr=options.bgr)
    if not prep.is_identity:
        steps = (f"preprocessing {prep.to_json()}", *steps)
    rule: VerdictRule = "evidence" if options.threshold is None else "threshold"
    return _Question(points, steps, prep, layout, rule, threshold, alpha)


@dataclass(frozen=True)
class _Tally:
    """The answers counted: which points were answered with a class of the fingerprint, and which match."""

    indices: npt.NDArray[np.int64]
    """Each point's answer as a class index of the fingerprint; -1 where not asked or not a class."""
    valid: npt.NDArray[np.bool_]
    skipped_reasons: dict[str, int]
    wrong_output: bool
    """More than ``OUT_OF_RANGE_LIMIT`` of the answers are no class of the fingerprint: the wrong output."""
    queried: int
    answered: int
    matched: int

    @property
    def rate(self) -> float:
        return self.matched / self.answered if self.answered else 0.0


def _tally(
    bundle: Bundle, classifier: Classifier, answers: Answers, asked: npt.NDArray[np.int64], points: int
) -> _Tally:
    """Unanswered points are skipped with their reason, never counted as a match or a mismatch; a label that
    is no class of the target is no answer either (a lying or mismatched API)."""
    indices = np.full(points, -1, np.int64)
    indices[asked] = map_labels(answers, bundle, classifier.name)
    was_answered = np.zeros(points, np.bool_)
    was_answered[asked] = answers.answered
    valid = was_answered & (indices >= 0) & (indices < bundle.num_classes)
    skipped_reasons = dict(answers.skipped)
    invalid = int((was_answered & ~valid).sum())
    wrong_output = invalid > OUT_OF_RANGE_LIMIT * max(int(answers.answered.sum()), 1)
    if invalid:
        reason = f"label outside the fingerprint's {bundle.num_classes} classes"
        if wrong_output:
            read = classifier.describe().get("output", "")
            others = classifier.describe().get("other_outputs", "")
            reason += f" ({'read ' + read + '; ' if read else ''}probably the wrong output: pass --output-name" + (
                f", other outputs: {others})" if others else ")"
            )
        skipped_reasons[reason] = skipped_reasons.get(reason, 0) + invalid
    matched = int(((indices == bundle.labels) & valid).sum())
    return _Tally(indices, valid, skipped_reasons, wrong_output, len(asked), int(valid.sum()), matched)


def _decide(
    bundle: Bundle,
    question: _Question,
    tally: _Tally,
    parts: tuple[PartResult, ...],
    p_value: float,
    record: SequentialRecord | None,
    min_answered: float,
) -> tuple[Verdict, str, bool]:
    """The verdict, why, and whether enough points were answered for one. Nothing answered, too little, or
    more than 2 % out of range: no verdict on a guess, whatever the options say."""
    settled = SETTLED_VERDICTS.get(record.stopped_because) if record is not None else None
    too_few = tally.answered == 0 or (
        settled is None and tally.answered < min(MIN_ANSWERED_POINTS, len(question.points))
    )
    enough = not (too_few or tally.answered < min_answered * tally.queried or tally.wrong_output)
    if not enough:
        return (
            "inconclusive",
            f"{tally.answered} of {tally.queried} points answered with a class of the fingerprint",
            False,
        )
    if question.rule == "threshold":
        why = f"the paper's rule: matching rate {tally.rate:.1%} against the threshold {question.threshold:.0%}"
        if settled is not None:  # stopped early: the verdict the tests settled for all n points, not this subset's
            return settled, why, True
        reached = tally.rate >= question.threshold or any(part.matching_rate >= question.threshold for part in parts)
        return ("match" if reached else "no match"), why, True
    verdict, why = _evidence_verdict(bundle, parts, p_value, question.alpha, whole_bundle=record is not None)
    return verdict, why, True


def _preprocessed(bundle: Bundle, prep: Preprocessing, *, signed: bool) -> FloatArray:
    """The points as the suspect takes them; preprocessing that yields NaN or infinity is refused — as a
    usage error when it came from the options, as a malformed bundle when it was signed into it."""
    channel_axis = 3 if bundle.input_spec.layout == "NHWC" else 1
    try:
        points = prep.apply(bundle.points, channel_axis)
        if not np.isfinite(points).all():
            raise UsageError(
                f"the preprocessing {prep.to_json()} turns the fingerprint's points into NaN or infinity; "
                "fix --input-scale/--mean/--std"
            )
    except UsageError as error:
        if not signed:
            raise
        raise BundleError(f"{bundle.name}: its signed preprocessing does not fit its points ({error})") from None
    return points


def _evidence_verdict(
    bundle: Bundle, parts: tuple[PartResult, ...], p_value: float, alpha: float, *, whole_bundle: bool
) -> tuple[Verdict, str]:
    """The default rule: a match when the combined p-value is at most α; no match when it is not, though every
    answered point matching would have reached α; inconclusive when even that could not (q0 too high for the
    points: an uncalibrated fingerprint cannot accuse, and saying "no match" would clear a copy)."""
    if p_value <= alpha:
        return "match", f"p = {p_value:.1e} ≤ α = {alpha:g}: the evidence rule"
    sizes = [part.points if whole_bundle else part.answered for part in parts]  # sequential: what all n could show
    reachable = combined_p_value(
        [best_p_value(size, part.null_agreement) for size, part in zip(sizes, parts, strict=True)]
    )
    if reachable > alpha:
        calibrated = any(
            bundle_part.null_agreement_source.startswith(("self-calibrated", "calibrated"))
            for bundle_part in bundle.parts
        )
        advice = (
            "fingerprint more points (--n)"
            if calibrated
            else "calibrate it ('ipguard-onnx calibrate --negative ...') or fingerprint with owner data (--data), "
            "or audit with --threshold for the paper's rule"
        )
        return "inconclusive", (
            f"even every answered point matching gives p = {reachable:.1e} > α = {alpha:g} under this fingerprint's "
            f"null agreement: it cannot accuse; {advice}"
        )
    return "no match", f"p = {p_value:.1e} > α = {alpha:g}: the evidence rule"


def check_false_accusation_rate(value: float) -> None:
    """α lies in (0, 1)."""
    if not 0.0 < value < 1.0:  # NaN fails this too
        raise UsageError(f"--false-accusation-rate must lie in (0, 1), got {value}")


def check_threshold(value: float) -> None:
    """A matching-rate threshold is in (0, 1]: at 0 a model that agrees on nothing would match."""
    if not 0.0 < value <= 1.0:  # NaN fails this too
        raise UsageError(f"--threshold must lie in (0, 1], got {value}")


def check_min_answered(value: float) -> None:
    """``--min-answered`` is a fraction in (0, 1]: 0, a negative number or NaN would let an audit that got
    no answers give a verdict."""
    if not 0.0 < value <= 1.0:
        raise UsageError(f"--min-answered must be a fraction in (0, 1], got {value!r}")


def _ask(classifier: Classifier, points: FloatArray) -> Answers:
    try:
        answers = classifier.answer(points)
    except UnsupportedModelError as exc:
        raise AuditError(str(exc)) from None
    if len(answers.labels) != len(points):
        raise AuditError(f"suspect {classifier.name} answered {len(answers.labels)} of {len(points)} points")
    return answers


def _sequential_thresholds(bundle: Bundle, rule: VerdictRule, threshold: float, alpha: float) -> list[float]:
    """The matching rate each sequential verdict test settles against: under the evidence rule, per part the
    smallest rate whose p-value reaches α / parts (2: a part that cannot reach α settles as no match at once);
    under the paper's rule, the threshold over the whole bundle, then over each part."""
    parts = bundle.parts
    if rule == "threshold":
        return [threshold] * (1 + len(parts))
    share = alpha / len(parts)
    return [threshold_for(part.points, part.null_agreement, share) or 2.0 for part in parts]


def _ask_sequentially(
    classifier: Classifier,
    points: FloatArray,
    bundle: Bundle,
    thresholds: list[float],
    alpha: float,
    settings: SequentialSettings,
) -> tuple[Answers, npt.NDArray[np.int64], SequentialRecord, float]:
    """Ask ``settings.batch`` points at a time in the bundle's order until the verdict is settled (``sequential``).

    ``thresholds`` are the verdict tests' (``_sequential_thresholds``): with one more than there are parts, the
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
        answers = _ask(classifier, points[chunk])
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


def _parts(bundle: Bundle, agrees: npt.NDArray[np.bool_], valid: npt.NDArray[np.bool_]) -> tuple[PartResult, ...]:
    """Each evidence part of the bundle on its answered points: matches, rate and binomial p-value under its q0."""
    results = []
    for part in bundle.parts:
        answered = int(valid[part.start : part.stop].sum())
        matched = int((agrees & valid)[part.start : part.stop].sum())
        results.append(
            PartResult(
                kind=part.kind,
                points=part.points,
                answered=answered,
                matched=matched,
                matching_rate=matched / answered if answered else 0.0,
                null_agreement=part.null_agreement,
                p_value=binomial_tail(matched, answered, part.null_agreement) if answered else 1.0,
                null_agreement_source=part.null_agreement_source,
            )
        )
    return tuple(results)


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
