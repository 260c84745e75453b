"""One bundle against one suspect (``audit``)."""

from __future__ import annotations

import os
import time

import numpy as np

from ..bundle import Bundle, load_bundle
from ..errors import AuditError
from ..models import HttpClassifier, as_classifier
from ..preprocessing import Preprocessing
from ..sequential import SequentialRecord, SequentialSettings
from .judge import ask_points, inputs_text, pose_question, result_of
from .result import DEFAULT_MIN_ANSWERED, AuditOptions, AuditResult
from .sequential_asking import ask_sequentially, sequential_thresholds


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
            f"the fingerprint {bundle.name} feeds {inputs_text(bundle.input_spec.packing)}, the endpoint "
            f"{classifier.name} was opened for {inputs_text(classifier.packing)}: audit an API against "
            "fingerprints of one kind of input at a time"
        )
    question = pose_question(bundle, classifier, options)
    record: SequentialRecord | None = None
    if sequential is None:
        asked, answers, anytime_p = np.arange(len(question.points)), ask_points(classifier, question.points), 1.0
    else:
        thresholds = sequential_thresholds(bundle, question.rule, question.threshold, question.alpha)
        answers, asked, record, anytime_p = ask_sequentially(
            classifier, question.points, bundle, thresholds, question.alpha, sequential
        )
    how = f"batch={sequential.batch},verdict_error={sequential.verdict_error!r}" if sequential is not None else ""
    return result_of(bundle, classifier, options, question, answers, asked, record, anytime_p, how, started)
