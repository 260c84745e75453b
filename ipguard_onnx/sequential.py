"""Sequential audits: ask the fingerprint points a few at a time and stop once the verdict is settled.

Two kinds of test martingale run on the same stream of agreements x_t ∈ {0, 1} (the suspect labels point
t like the target). Each is a product of bets 1 + λ_t·(x_t − m_t) with λ_t chosen from the past only, so
under its null hypothesis it is a nonnegative supermartingale starting at 1, and Ville's inequality bounds
the chance it *ever* reaches 1/δ by δ. That bound holds at every stopping time, however the stop was
chosen — which is what keeps a sequential audit valid when it stops early (optional stopping).

* **The verdict** (``ThresholdTest``). The fixed-n audit calls a match when the matching rate over all
  N points reaches the threshold τ. The points are asked in a random order fixed by the bundle, i.e.
  drawn without replacement from the N, so the rate over all N is a finite-population mean μ, and under
  each null the next point's conditional mean is known exactly from the past (Waudby-Smith & Ramdas 2020,
  "Confidence sequences for sampling without replacement"). One martingale tests μ < τ, the other μ ≥ τ;
  when one reaches 2/δ the fixed-n verdict is known except with probability δ over the order, and the
  audit stops. It never stops later than N, where the verdict *is* the fixed-n one.
* **The evidence** (``EvidenceTest``). Against the null behind the audit's p-value — an independent model
  agrees with each point with probability at most q0 — a betting martingale gives the anytime-valid
  p-value min(1, 1/max_t K_t), which stays valid at the data-dependent stop (a binomial p-value computed
  there would not).

The bets are predictable plug-ins (aGRAPA, Waudby-Smith & Ramdas 2023, "Estimating means of bounded random
variables by betting"), capped at ``BET_CAP`` of the largest bet that keeps the wealth nonnegative.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from .errors import UsageError

DEFAULT_VERDICT_ERROR = 0.01
"""δ: the chance, over the bundle's secret order, that stopping early gives another verdict than asking all N."""
DEFAULT_BATCH = 5
"""Points per round of questions: each round's answers are in before the tests decide whether to stop."""
BET_CAP = 0.9
SCREENED = "match ruled out"
"""``SequentialRecord.stopped_because`` of a screened group audit (``audit.audit_each``): no answers to the
points not asked could have made a match, so none was asked. Its verdict is the one asking every point gives:
no match; or inconclusive where even a perfect copy could not reach α (an uncalibrated bundle) or where more than
``audit.OUT_OF_RANGE_LIMIT`` of the points were answered with no class of the bundle (the wrong output). Its
``SequentialRecord.batch`` is the first round's size."""
SETTLED_VERDICTS: dict[str, Literal["match", "no match"]] = {
    "match settled": "match",
    "no match settled": "no match",
    SCREENED: "no match",  # unless inconclusive (above): too few answered, the wrong output, or no α reachable
}
"""``SequentialRecord.stopped_because`` → the verdict it settled (asking every point settles nothing early)."""


@dataclass(frozen=True)
class SequentialSettings:
    """``audit --sequential``: ``batch`` points per round, verdict error δ = ``verdict_error``."""

    batch: int = DEFAULT_BATCH
    verdict_error: float = DEFAULT_VERDICT_ERROR

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise UsageError(f"--sequential-batch must be at least 1, got {self.batch}")
        if not 0.0 < self.verdict_error < 1.0:
            raise UsageError(f"--verdict-error must lie in (0, 1), got {self.verdict_error}")


@dataclass(frozen=True)
class SequentialRecord:
    """How a sequential audit stopped: queries used of N, why, and the evidence when it stopped."""

    queries: int
    points: int
    stopped_because: str
    """``match settled``, ``no match settled`` (each at error ≤ δ), or ``all points asked``."""
    verdict_error: float
    match_wealth: float
    """The largest value the match-side verdict martingale reached (it settles at 2/δ)."""
    no_match_wealth: float
    evidence_wealth: float
    """The largest value of the evidence martingale against q0; the p-value is min(1, 1/this)."""
    batch: int
    path: tuple[tuple[int, float], ...] = ()
    """The test's path: after each batch, (points asked so far, anytime-valid p-value then)."""


def query_order(bundle_sha256: str, points: int) -> npt.NDArray[np.int64]:
    """The random order of a sequential audit, fixed by the bundle (its SHA-256 seeds the permutation)."""
    seed = int.from_bytes(hashlib.sha256(f"sequential-order:{bundle_sha256}".encode()).digest()[:8], "little")
    return np.random.default_rng(seed).permutation(points).astype(np.int64)


class _Bettor:
    """aGRAPA's plug-in bet towards ``x`` above (``side`` +1) or below (−1) the null mean m.

    The running mean starts from a prior worth one point at ``prior``: leaning towards the alternative
    the bettor is built for lets a clear case start winning from the first draw (measured: a copy agreeing
    everywhere settles after 30 draws instead of 35). Any prior keeps the bets predictable, so validity holds.
    """

    def __init__(self, prior: float = 0.5) -> None:
        self.count, self.total, self.squares = 0, prior, prior * (1.0 - prior)

    def bet(self, null_mean: float, side: int) -> float:
        mean = self.total / (self.count + 1)
        variance = self.squares / (self.count + 1)
        gap = side * (mean - null_mean)
        if gap <= 0:
            return 0.0
        largest = 1.0 / null_mean if side > 0 else 1.0 / (1.0 - null_mean)
        return min(gap / (variance + gap * gap), BET_CAP * largest)

    def observe(self, x: float) -> None:
        self.count += 1
        self.total += x
        self.squares += (x - self.total / (self.count + 1)) ** 2


class ThresholdTest:
    """Is the matching rate over all ``population`` points ≥ τ? Two martingales over draws without replacement.

    Match side: null "at most c − 1 matches in all", c = ⌈τN⌉; no-match side: null "at least c".
    Each settles at 2/δ (so the two together err with probability ≤ δ), or with certainty when the
    matches seen already exceed c − 1, or when c can no longer be reached.
    """

    def __init__(self, population: int, threshold: float, verdict_error: float) -> None:
        self.population = population
        self.needed = math.ceil(threshold * population - 1e-9)
        self.bar = 2.0 / verdict_error
        self.seen = self.matches = 0
        self.match_wealth = self.no_match_wealth = 1.0
        self.best_match = self.best_no_match = 1.0
        self._match_bettor, self._no_match_bettor = _Bettor(prior=0.9), _Bettor(prior=0.1)

    def observe(self, x: int) -> None:
        remaining = self.population - self.seen
        if remaining <= 0:
            return
        under_match_null = (self.needed - 1 - self.matches) / remaining
        if 0.0 < under_match_null < 1.0:
            bet = self._match_bettor.bet(under_match_null, +1)
            self.match_wealth *= 1.0 + bet * (x - under_match_null)
        under_no_match_null = (self.needed - self.matches) / remaining
        if 0.0 < under_no_match_null < 1.0:
            bet = self._no_match_bettor.bet(under_no_match_null, -1)
            self.no_match_wealth *= 1.0 + bet * (under_no_match_null - x)
        self._match_bettor.observe(x)
        self._no_match_bettor.observe(x)
        self.seen += 1
        self.matches += x
        self.best_match = max(self.best_match, self.match_wealth)
        self.best_no_match = max(self.best_no_match, self.no_match_wealth)

    @property
    def decision(self) -> str | None:
        """``match`` or ``no match`` once settled, else None."""
        if self.matches >= self.needed or self.match_wealth >= self.bar:
            return "match"
        if self.needed - self.matches > self.population - self.seen or self.no_match_wealth >= self.bar:
            return "no match"
        return None


class EvidenceTest:
    """Against "each point agrees with probability ≤ q0" (q0 per point: a bundle in parts has two)."""

    def __init__(self) -> None:
        self.wealth = self.best = 1.0
        self._bettor = _Bettor(prior=0.9)

    def observe(self, x: int, null_agreement: float) -> None:
        if 0.0 < null_agreement < 1.0:
            bet = self._bettor.bet(null_agreement, +1)
            self.wealth *= 1.0 + bet * (x - null_agreement)
            self.best = max(self.best, self.wealth)
        self._bettor.observe(x)

    @property
    def p_value(self) -> float:
        """Anytime-valid: P(sup K ≥ 1/p) ≤ p under the null (Ville's inequality)."""
        return min(1.0, 1.0 / self.best)
