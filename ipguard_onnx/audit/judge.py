"""One audit's steps: pose the question (the points as the suspect takes them), ask it, count the answers, decide
by the evidence rule or the paper's threshold (Section 3.2), and assemble the ``AuditResult``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..bundle import Bundle, utc_timestamp
from ..errors import AuditError, BundleError, UnsupportedModelError, UsageError
from ..models import Classifier, label_indices
from ..models.adapt import fit_points, parse_layout
from ..preprocessing import Preprocessing
from ..sequential import SETTLED_VERDICTS, SequentialRecord
from ..stats import (
    best_p_value,
    binomial_tail,
    combined_p_value,
    plain_words,
)
from ..types import Answers, FloatArray, Packing
from .result import (
    MIN_ANSWERED_POINTS,
    OUT_OF_RANGE_LIMIT,
    AuditOptions,
    AuditResult,
    PartResult,
    Verdict,
    VerdictRule,
    check_false_accusation_rate,
    check_min_answered,
    check_threshold,
)


def inputs_text(packing: Packing | None) -> str:
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
class Question:
    """What an audit asks one suspect: the points as it takes them, and the rule that will judge the answers."""

    points: FloatArray
    steps: tuple[str, ...]
    """How the points were fitted to the suspect (preprocessing, layout, size, whole numbers), in words."""
    preprocessing: Preprocessing
    layout: str | None
    rule: VerdictRule
    threshold: float
    alpha: float


def pose_question(bundle: Bundle, classifier: Classifier, options: AuditOptions) -> Question:
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
    return Question(points, steps, prep, layout, rule, threshold, alpha)


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


def ask_points(classifier: Classifier, points: FloatArray) -> Answers:
    try:
        answers = classifier.answer(points)
    except UnsupportedModelError as exc:
        raise AuditError(str(exc)) from None
    if len(answers.labels) != len(points):
        raise AuditError(f"suspect {classifier.name} answered {len(answers.labels)} of {len(points)} points")
    return answers


@dataclass(frozen=True)
class Tally:
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


def count_answers(
    bundle: Bundle, classifier: Classifier, answers: Answers, asked: npt.NDArray[np.int64], points: int
) -> Tally:
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
    return Tally(indices, valid, skipped_reasons, wrong_output, len(asked), int(valid.sum()), matched)


def part_results(bundle: Bundle, agrees: npt.NDArray[np.bool_], valid: npt.NDArray[np.bool_]) -> tuple[PartResult, ...]:
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


def decide(
    bundle: Bundle,
    question: Question,
    tally: Tally,
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


def result_of(
    bundle: Bundle,
    classifier: Classifier,
    options: AuditOptions,
    question: Question,
    answers: Answers,
    asked: npt.NDArray[np.int64],
    record: SequentialRecord | None,
    anytime_p: float,
    asked_how: str,
    started: float,
) -> AuditResult:
    """Tally the answers, decide, and assemble the result (``started``: when this audit's clock began)."""
    output_name = bundle.record.suspect_output(options.output_name)
    tally = count_answers(bundle, classifier, answers, asked, len(question.points))
    parts = part_results(bundle, tally.indices == bundle.labels, tally.valid)
    # stopped on the data: only the anytime-valid p-value holds there
    p_value = anytime_p if record is not None else combined_p_value([part.p_value for part in parts])
    verdict, why, enough = decide(bundle, question, tally, parts, p_value, record, options.min_answered)
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
            "sequential": asked_how,
        },
    )
