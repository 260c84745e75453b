"""What an audit returns (``AuditResult``, one ``PartResult`` per evidence part), how it is asked
(``AuditOptions``), and the limits a verdict keeps (IPGuard's Verify, Section 3.2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from ..errors import UsageError
from ..preprocessing import Preprocessing
from ..sequential import SequentialRecord
from ..stats import DEFAULT_FALSE_ACCUSATION_RATE, DEFAULT_NULL_AGREEMENT

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
