"""Evaluate a fingerprint like the paper: robustness, uniqueness, ARUC (Eq. 6–7) and the gap (Section 5.1.5),
and like the newer literature: ROC AUC and TPR at 1 % and 5 % FPR over every copy, hard positives included.

Positives are post-processed copies of the target, negatives independent models; hard positives
(e.g. knowledge-distilled students) are reported beside them but kept out of ARUC and the gap.
Never imports torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .audit import AuditResult, audit, check_threshold
from .bundle import Bundle, load_bundle
from .errors import AuditError, UsageError

Group = Literal["positive", "negative", "hard-positive"]
GROUPS: tuple[Group, ...] = ("positive", "hard-positive", "negative")
_EPSILON = 1e-9  # matching rates are m/n: compare them to τ = t/r without float noise
MAX_STEPS = 100_000
"""The most threshold steps r in Eq. 7 (each step scans every rate: more is only slower)."""


def robustness(positive_rates: Sequence[float], threshold: float) -> float:
    """R(τ): the fraction of positives verified, i.e. with matching rate ≥ τ (Section 5.1.5)."""
    if not positive_rates:
        return float("nan")
    return float(np.mean([rate >= threshold - _EPSILON for rate in positive_rates]))


def uniqueness(negative_rates: Sequence[float], threshold: float) -> float:
    """U(τ): the fraction of negatives not verified, i.e. with matching rate < τ (Section 5.1.5)."""
    if not negative_rates:
        return float("nan")
    return float(np.mean([rate < threshold - _EPSILON for rate in negative_rates]))


def aruc(positive_rates: Sequence[float], negative_rates: Sequence[float], r: int = 100) -> float:
    """Area under the robustness–uniqueness curves, Eq. 7: (1/r) Σ_{t=1..r} min(R(t/r), U(t/r))."""
    if not positive_rates or not negative_rates:
        raise UsageError("ARUC needs at least one positive and one negative suspect")
    return float(
        np.mean([min(robustness(positive_rates, t / r), uniqueness(negative_rates, t / r)) for t in range(1, r + 1)])
    )


def roc_auc(positive_rates: Sequence[float], negative_rates: Sequence[float]) -> float:
    """ROC AUC of the matching rate as a copy score: the chance that a random copy matches more than a
    random independent model (ties count half; Mann–Whitney). NaN without both kinds."""
    if not positive_rates or not negative_rates:
        return float("nan")
    positives = np.asarray(positive_rates, dtype=np.float64)[:, None]
    negatives = np.asarray(negative_rates, dtype=np.float64)[None, :]
    wins = (positives > negatives + _EPSILON).mean()
    ties = (np.abs(positives - negatives) <= _EPSILON).mean()
    return float(wins + 0.5 * ties)


def tpr_at_fpr(positive_rates: Sequence[float], negative_rates: Sequence[float], fpr: float) -> float:
    """The largest share of copies verified by a threshold that verifies at most ``fpr`` of the independent
    models (no interpolation between thresholds: with 20 negatives, 1 % FPR means none may pass)."""
    if not positive_rates or not negative_rates:
        return float("nan")
    candidates = sorted({*positive_rates, *negative_rates, math.inf})  # inf: a threshold nothing passes
    best = 0.0
    for threshold in candidates:
        if 1.0 - uniqueness(negative_rates, threshold) <= fpr + _EPSILON:
            best = max(best, robustness(positive_rates, threshold))
    return best


def gap(positive_rates: Sequence[float], negative_rates: Sequence[float]) -> float:
    """Smallest positive minus largest negative matching rate (Section 5.2): > 0 means a clean separation."""
    return float(min(positive_rates) - max(negative_rates))


@dataclass(frozen=True)
class EvaluatedSuspect:
    suspect: str
    group: Group
    matching_rate: float
    verdict: str
    points_skipped: int
    score: float | None = None
    """What ROC AUC and TPR rank suspects by: the evidence −log10 p of the combined p-value (the parts have
    different null agreements, so no matching rate ranks them); None (rows built by hand): the matching rate."""
    p_value: float = 1.0
    """The combined p-value the default verdict (the evidence rule) decided on; ``verdict`` is that verdict."""
    answered: bool = True
    """Answered well enough for a matching rate (else shown, not scored)."""

    @property
    def copy_score(self) -> float:
        return self.matching_rate if self.score is None else self.score


@dataclass(frozen=True)
class Evaluation:
    """A fingerprint measured against labelled suspects, at its threshold and over all thresholds."""

    fingerprint: str
    threshold: float
    rows: tuple[EvaluatedSuspect, ...]
    robustness: float
    uniqueness: float
    hard_positive_robustness: float
    aruc: float
    gap: float
    r: int
    curve_thresholds: tuple[float, ...]
    robustness_curve: tuple[float, ...]
    uniqueness_curve: tuple[float, ...]
    roc_auc: float = float("nan")
    """ROC AUC with every copy (positives and hard positives, e.g. extracted students) against negatives."""
    tpr_at_1_percent_fpr: float = float("nan")
    tpr_at_5_percent_fpr: float = float("nan")
    verdict_tpr: float = float("nan")
    """Share of the copies (positives and hard positives) the default verdict judges a match."""
    false_accusations: int = 0
    """Independent models the default verdict judges a match: no threshold set afterwards, the verdict itself."""

    def rates(self, group: Group) -> list[float]:
        return [row.matching_rate for row in self.rows if row.group == group]


def evaluate(
    bundle: Bundle | str | os.PathLike[str],
    suspects: Sequence[tuple[object, Group]],
    *,
    threshold: float | None = None,
    r: int = 100,
    providers: str = "auto",
    output_name: str | None = None,
) -> Evaluation:
    """Audit every suspect and summarise robustness, uniqueness, ARUC and gap (Eq. 7 with ``r`` steps)."""
    if not 1 <= r <= MAX_STEPS:
        raise UsageError(f"--r must lie in 1..{MAX_STEPS:,}, got {r}")
    if threshold is not None:
        check_threshold(threshold)
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    threshold = bundle.threshold if threshold is None else threshold
    rows = []
    for suspect, group in suspects:
        if group not in GROUPS:
            raise UsageError(f"group must be one of {', '.join(GROUPS)}, got {group!r}")
        result: AuditResult = audit(bundle, suspect, providers=providers, output_name=output_name)  # evidence rule
        answered = result.answered_enough  # else no rate: shown, not scored
        evidence = -math.log10(max(result.p_value, 1e-300))
        rows.append(
            EvaluatedSuspect(
                result.suspect,
                group,
                result.matching_rate,
                result.verdict,
                result.points_skipped,
                evidence,
                result.p_value,
                answered,
            )
        )
    counted = [row for row in rows if row.answered]  # no answers are no rate: shown, not scored
    positives = [row.matching_rate for row in counted if row.group == "positive"]
    negatives = [row.matching_rate for row in counted if row.group == "negative"]
    hard = [row.matching_rate for row in counted if row.group == "hard-positive"]
    copies = [row.copy_score for row in counted if row.group != "negative"]
    independent = [row.copy_score for row in counted if row.group == "negative"]
    for group, rates in (("positive", positives), ("negative", negatives)):
        if not rates:
            raise AuditError(
                f"no {group} suspect was answered well enough for a matching rate (every audit was "
                "inconclusive); the measures would rest on nothing"
            )
    taus = tuple(t / r for t in range(0, r + 1))
    return Evaluation(
        fingerprint=bundle.name,
        threshold=threshold,
        rows=tuple(rows),
        robustness=robustness(positives, threshold),
        uniqueness=uniqueness(negatives, threshold),
        hard_positive_robustness=robustness(hard, threshold),
        aruc=aruc(positives, negatives, r),
        gap=gap(positives, negatives),
        r=r,
        curve_thresholds=taus,
        robustness_curve=tuple(robustness(positives, t) for t in taus),
        uniqueness_curve=tuple(uniqueness(negatives, t) for t in taus),
        roc_auc=roc_auc(copies, independent),
        tpr_at_1_percent_fpr=tpr_at_fpr(copies, independent, 0.01),
        tpr_at_5_percent_fpr=tpr_at_fpr(copies, independent, 0.05),
        verdict_tpr=sum(row.verdict == "match" for row in counted if row.group != "negative") / max(len(copies), 1),
        false_accusations=sum(row.verdict == "match" for row in counted if row.group == "negative"),
    )
