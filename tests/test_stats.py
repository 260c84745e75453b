"""The statistics behind every verdict (``stats``), checked against first principles and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ipguard_onnx.stats import (
    best_p_value,
    binomial_tail,
    binomial_upper_bound,
    combined_p_value,
    null_agreement_bound,
    plain_words,
    threshold_for,
)


@pytest.mark.parametrize(
    ("matched", "answered", "q"),
    [(0, 10, 0.5), (7, 10, 0.5), (100, 100, 0.99), (54, 100, 0.47), (1, 1, 0.3), (30, 200, 0.05), (950, 1000, 0.9)],
)
def test_the_binomial_tail_is_the_sum_of_the_binomial_probabilities(matched: int, answered: int, q: float) -> None:
    exact = sum(math.comb(answered, k) * q**k * (1 - q) ** (answered - k) for k in range(matched, answered + 1))
    assert binomial_tail(matched, answered, q) == pytest.approx(exact, rel=1e-9, abs=1e-300)
    by_scipy = scipy_stats.binom.sf(matched - 1, answered, q)
    assert binomial_tail(matched, answered, q) == pytest.approx(by_scipy, rel=1e-9)


def test_the_tail_falls_as_more_points_match_and_rises_with_q0() -> None:
    tails = [binomial_tail(m, 50, 0.4) for m in range(51)]
    assert all(a >= b for a, b in zip(tails, tails[1:], strict=False)) and tails[0] == 1.0
    assert binomial_tail(30, 50, 0.3) < binomial_tail(30, 50, 0.5) < binomial_tail(30, 50, 0.7)
    assert binomial_tail(5, 10, 0.0) == 0.0 and binomial_tail(5, 10, 1.0) == 1.0
    with pytest.raises(ValueError):
        binomial_tail(11, 10, 0.5)


def test_threshold_for_is_the_smallest_rate_that_reaches_the_false_accusation_rate() -> None:
    for points, q, alpha in [(100, 0.5, 1e-6), (100, 0.99, 1e-6), (50, 0.3, 0.01), (20, 0.8, 1e-3)]:
        rate = threshold_for(points, q, alpha)
        if rate is None:  # not even every point matching is evidence enough
            assert best_p_value(points, q) > alpha
            continue
        matched = round(rate * points)
        assert binomial_tail(matched, points, q) <= alpha < binomial_tail(matched - 1, points, q)


def test_a_copy_without_owner_data_cannot_be_accused_and_says_so() -> None:
    """q0 = 0.99 (the uncalibrated default): 100 agreeing points are p = 0.37, i.e. inconclusive."""
    assert best_p_value(100, 0.99) == pytest.approx(0.99**100)
    assert threshold_for(100, 0.99, 1e-6) is None
    assert "37%" in plain_words(best_p_value(100, 0.99)) and "weak evidence" in plain_words(0.37)
    assert "10^6" in plain_words(5e-7) and "never" in plain_words(0.0)


def test_the_combined_p_value_is_bonferroni_over_the_parts() -> None:
    assert combined_p_value([0.01, 0.2, 0.5]) == pytest.approx(0.03)
    assert combined_p_value([0.6, 0.9]) == 1.0 and combined_p_value([]) == 1.0
    rng = np.random.default_rng(0)
    # valid under any dependence: two copies of one uniform p-value reject at most α of the time
    uniform = rng.uniform(size=20_000)
    rejected = np.mean([combined_p_value([p, p]) <= 0.05 for p in uniform])
    assert rejected <= 0.05


def test_the_clopper_pearson_bound_matches_the_beta_quantile() -> None:
    for matched, points in [(0, 10), (3, 10), (40, 100), (99, 100)]:
        expected = scipy_stats.beta.ppf(0.95, matched + 1, points - matched)
        assert binomial_upper_bound(matched, points) == pytest.approx(expected, abs=1e-6)
    assert binomial_upper_bound(10, 10) == 1.0


def test_q0_bounds_the_next_independent_model_and_widens_with_fewer_references() -> None:
    rates = [0.30, 0.35, 0.40, 0.33, 0.37, 0.31, 0.36, 0.34]
    many = null_agreement_bound(rates, 100)
    few = null_agreement_bound(rates[:3], 100)
    assert max(rates) < many < few < 0.999
    assert null_agreement_bound([0.4], 100) == 0.999  # one reference shows no spread to bound
    # no spread, few points: the Clopper–Pearson bound of the highest rate (1 of 10) is q0
    assert null_agreement_bound([0.1, 0.1, 0.1], 10) == pytest.approx(binomial_upper_bound(1, 10), abs=1e-6)
    # coverage: the bound exceeds the rate of a further model from the same population ~95 % of the time
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(400):
        sample = list(rng.normal(0.4, 0.03, size=9).clip(0, 1))
        covered += null_agreement_bound(sample[:8], 1000) >= sample[8]
    assert covered / 400 >= 0.9
