"""Strength of evidence: how likely an independent model agrees with the fingerprint this often.

Under the null hypothesis "the suspect is independent of the target", each of the n answered points
is taken to agree with the target's label with probability at most q0 (the *null agreement*, measured
on independent models by ``calibrate``); the matches are then at most Binomial(n, q0), and the one-sided
p-value of m matches is P(X ≥ m). Pure Python: the audit path stays free of scipy and torch.
"""

from __future__ import annotations

import functools
import math

DEFAULT_NULL_AGREEMENT = 0.99
"""q0 of uncalibrated paper-style bundles: on the benchmark zoos an independent model matched a default
(k = 3) IPGuard fingerprint at up to 0.99 (BENCHMARKS.md, "Strength of evidence"); small models are
where the paper's points are least unique, so the default assumes the worst and asks you to calibrate."""
UNIQUE_NULL_AGREEMENT = 0.8
"""q0 of uncalibrated ``--unique`` bundles: highest independent match on the zoos 0.71, + 0.05, rounded up."""
MISTAKES_NULL_AGREEMENT = 0.9
"""q0 of an uncalibrated bundle's target's-mistakes part (``--mistakes``): on the digits zoos an independent
model agreed with the target's mistakes on up to 0.83 of them (BENCHMARKS.md, issue 14), + 0.05, rounded up."""
CALIBRATION_MARGIN = 0.05
"""calibrate sets q0 = (highest matching rate among the owner's independent models) + this margin."""
DEFAULT_FALSE_ACCUSATION_RATE = 1e-6
"""α of the default verdict: "match" only when the combined p-value is at most this (signed into every bundle).
One in a million audits of an independent model, with q0 an upper bound rather than a mean, so fewer in
practice: a hub scan of 10⁴ suspects × 10² fingerprints still expects at most one false accusation."""
NULL_CONFIDENCE = 0.95
"""Confidence of the upper bound on q0 that self-calibration computes from the calibration references."""
_T_95 = (
    6.314,
    2.920,
    2.353,
    2.132,
    2.015,
    1.943,
    1.895,
    1.860,
    1.833,
    1.812,
    1.796,
    1.782,
    1.771,
    1.761,
    1.753,
    1.746,
    1.740,
    1.734,
    1.729,
    1.725,
    1.721,
    1.717,
    1.714,
    1.711,
    1.708,
    1.706,
    1.703,
    1.701,
    1.699,
    1.697,
)
"""One-sided 95 % quantiles of Student's t with 1..30 degrees of freedom."""


def _log_pmf(n: int, m: int, q: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(m + 1) - math.lgamma(n - m + 1) + m * math.log(q) + (n - m) * math.log1p(-q)


@functools.lru_cache(maxsize=1 << 16)
def binomial_tail(matched: int, answered: int, null_agreement: float) -> float:
    """P(X ≥ matched) for X ~ Binomial(answered, null_agreement): the audit's one-sided p-value (cached: a
    scan asks it for the same few parts and counts thousands of times)."""
    if not 0 <= matched <= answered:
        raise ValueError(f"matched must lie in 0..{answered}, got {matched}")
    if matched == 0:
        return 1.0
    q = null_agreement
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    terms = [_log_pmf(answered, k, q) for k in range(matched, answered + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def threshold_for(points: int, null_agreement: float, false_accusation_rate: float) -> float | None:
    """Smallest matching rate m/n whose p-value is ≤ ``false_accusation_rate``; None if none is."""
    for matched in range(points + 1):
        if binomial_tail(matched, points, null_agreement) <= false_accusation_rate:
            return matched / points
    return None


def plain_words(p_value: float) -> str:
    """ "an independent model would agree this often less than once in 10^k tries", or the odds."""
    if p_value <= 0.0:
        return "an independent model would essentially never agree this often (p below floating-point range)"
    if p_value >= 0.05:
        return f"an independent model would agree this often with probability {p_value:.0%}: weak evidence"
    exponent = math.floor(-math.log10(p_value))
    return f"an independent model would agree this often less than once in 10^{exponent} tries"


def combined_p_value(p_values: list[float]) -> float:
    """One p-value for a bundle of evidence parts (Bonferroni): min(1, parts × the smallest part's p-value).

    Valid for parts of any sizes and whatever the dependence between them — and they are dependent: one
    suspect answers every part. Fisher's or Stouffer's combinations assume independent parts and would
    overstate the evidence; Bonferroni only assumes each part's own p-value is valid under its own q0."""
    return min(1.0, len(p_values) * min(p_values)) if p_values else 1.0


def binomial_upper_bound(matched: int, points: int, confidence: float = NULL_CONFIDENCE) -> float:
    """One-sided Clopper–Pearson upper bound on a rate seen as ``matched`` of ``points`` (bisection)."""
    if not 0 <= matched <= points or points == 0:
        raise ValueError(f"matched must lie in 0..{points} with points ≥ 1")
    if matched == points:
        return 1.0
    low, high = matched / points, 1.0
    for _ in range(60):  # P(X ≤ matched) under rate q falls as q grows: find where it reaches 1 − confidence
        middle = (low + high) / 2
        at_most = 1.0 - binomial_tail(matched + 1, points, middle)
        low, high = (middle, high) if at_most > 1.0 - confidence else (low, middle)
    return high


def null_agreement_bound(rates: list[float], points: int) -> float:
    """q0 from R calibration references' matching rates on a part of ``points`` points: an upper bound for the
    *next* independent model, not the references' mean. The larger of (a) the one-sided 95 % normal prediction
    bound mean + t(R−1)·s·√(1 + 1/R), which widens as R shrinks, and (b) the Clopper–Pearson 95 % upper bound
    of the highest reference's rate over the part's points (few points are weak evidence of a low rate).
    Fewer than two references give no spread to bound: q0 is then 0.999. Capped at 0.999."""
    if len(rates) < 2 or points < 1:
        return 0.999
    count = len(rates)
    mean = sum(rates) / count
    spread = math.sqrt(sum((rate - mean) ** 2 for rate in rates) / (count - 1))
    t = _T_95[min(count - 1, len(_T_95)) - 1] if count - 1 <= len(_T_95) else 1.645
    predicted = mean + t * spread * math.sqrt(1.0 + 1.0 / count)
    highest = binomial_upper_bound(round(max(rates) * points), points)
    return round(min(0.999, max(predicted, highest)), 6)


def best_p_value(points: int, null_agreement: float) -> float:
    """The smallest p-value ``points`` points can give under q0 (every one matched): the most a part can show."""
    return binomial_tail(points, points, null_agreement) if points else 1.0
