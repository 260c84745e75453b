"""Strength of evidence: how likely an independent model agrees with the fingerprint this often.

Under the null hypothesis "the suspect is independent of the target", each of the n answered points
is taken to agree with the target's label with probability at most q0 (the *null agreement*, measured
on independent models by ``calibrate``); the matches are then at most Binomial(n, q0), and the one-sided
p-value of m matches is P(X ≥ m). Pure Python: the audit path stays free of scipy and torch.
"""

from __future__ import annotations

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


def _log_pmf(n: int, m: int, q: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(m + 1) - math.lgamma(n - m + 1) + m * math.log(q) + (n - m) * math.log1p(-q)


def binomial_tail(matched: int, answered: int, null_agreement: float) -> float:
    """P(X ≥ matched) for X ~ Binomial(answered, null_agreement): the audit's one-sided p-value."""
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
    """One p-value for a bundle tested in parts (Bonferroni): min(1, parts × the smallest part's p-value).
    Valid whatever the dependence between the parts: under the null each part's p-value is valid."""
    return min(1.0, len(p_values) * min(p_values)) if p_values else 1.0
