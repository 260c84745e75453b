"""What a fingerprint is asked to be (``FingerprintSettings``, all of it signed into the bundle) and what it
became (``FingerprintResult``), with the defaults that were measured to win (BENCHMARKS.md).
``fingerprint`` runs the paper's steps on them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from . import requirements
from .deadlines import DEFAULT_TIME_BUDGET
from .errors import MissingDependencyError, UsageError
from .parts import (
    PART_KINDS,
)
from .preprocessing import Preprocessing
from .search import (
    METHODS,
    STRATEGIES,
    GradientSearch,
    StartKind,
    TargetLabelRule,
)
from .stats import DEFAULT_FALSE_ACCUSATION_RATE
from .surrogate import Conversion, ParityReport
from .types import MAX_DOMAIN

DEFAULT_K = 3.0
UNIQUE_DEFAULT_K = 1.0
"""--unique was measured with k = 1 (k = 0.3 and 3 were worse on the zoos; BENCHMARKS.md)."""
GRADIENT_FREE_DEFAULT_K = 1.0
"""The gradient-free search on a network (a graph with a gradient): k = 1 beat 3 on both zoos (BENCHMARKS.md)."""
NO_GRADIENT_DEFAULT_K = 0.3
"""On graphs with no gradient (tree ensembles, ...): k = 0.1–0.3 was best, 1 and 3 much worse (BENCHMARKS.md)."""
DEFAULT_THRESHOLD = 0.85
UNIQUE_AUTO_MAX_FEATURES = 4096
"""--unique is the default with --data up to this input size: where it was measured to win (BENCHMARKS.md)."""
PARITY_POINTS = 64
ANCHOR_POOL = 1024
"""Anchors the gradient-free search draws at least, per round (more: a nearer anchor of every class j)."""


CALIBRATION_REFERENCES = 8
"""Owner-made calibration references by default: q0's upper bound widens fast below this many (Student's t)."""
MAX_POINTS = 100_000
"""The most fingerprint points one bundle holds (the paper uses 100; a bundle is capped at 256 MiB)."""


@dataclass(frozen=True)
class FingerprintSettings:
    """Everything that shapes a fingerprint; all of it is signed into the bundle.

    ``init``/``label`` are the paper's suffixes (Section 5.1.4, Table 3): data + least-likely is
    -TL, random + least-likely is -RL, and so on.
    """

    n: int = 100
    k: float | None = None
    """Eq. 5's margin; None: ``DEFAULT_K`` for the paper's search, ``UNIQUE_DEFAULT_K`` with ``unique``."""
    init: StartKind = StartKind.random
    label: TargetLabelRule = TargetLabelRule.least_likely
    domain: tuple[float, float] | Literal["data"] | None = None
    """Input bounds (LOW, HIGH), "data" (per feature from the owner's data), or None: ``DEFAULT_DOMAIN``, and
    for integer inputs the ids their graph reads where it says (``models.integer_ranges``)."""
    seed: int = 0
    max_iterations: int = 1000
    learning_rate: float = 0.01
    threshold: float = DEFAULT_THRESHOLD
    max_rounds: int = 4
    providers: str = "auto"
    class_names: tuple[str, ...] = ()
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    method: str = "ipguard"
    epsilon: float = 0.1
    unique: bool | None = None
    """Conferrable search with owner-made positives and references (``search.panel``); None = auto:
    on for IPGuard with owner data and inputs of at most ``UNIQUE_AUTO_MAX_FEATURES`` values."""
    references: int = 16
    students: int = 0
    """With ``--unique``: owner-made extracted students among the positives (``search.panel``), so points
    also hold for models stolen through the API with synthetic queries (issue 14)."""
    pool_factor: int = 2
    mistakes: float | None = None
    """Share of the ``n`` points taken from the target's own mistakes on labelled ``--data`` (AKH-style, issue
    14: a student that learned the target's labels repeats them, an independent model mostly does not); the
    search makes the rest. 1.0: the mistakes alone; 0: none. None: the default composition (``compose``)."""
    parts: tuple[str, ...] | None = None
    """The evidence part kinds to build (``--parts``); None: composed from what the owner gives (``compose``)."""
    calibration_references: int = CALIBRATION_REFERENCES
    """Owner-made references that measure every part's q0 when ``--data`` is given (``parts.calibration``)."""
    false_accusation_rate: float = DEFAULT_FALSE_ACCUSATION_RATE
    """α of the default verdict, signed: a match when the combined p-value is at most this."""
    input_shape: tuple[int, ...] | None = None
    """Per-sample input shape for graphs with symbolic dimensions (``--input-shape``); signed, used by audits."""
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    """Per-sample shapes of named inputs (``--input-shape NAME=SHAPE``), for models of several inputs."""
    holds: tuple[tuple[str, float], ...] = ()
    """Inputs held at one value for every point (``--hold NAME=VALUE``): masks, lengths, sample rates, state."""
    batch_axis: int | None = None
    """The output's batch axis (``--batch-axis``); None: measured by running the model with two batch sizes."""
    class_axis: int | None = None
    """The output's class axis (``--class-axis``); None: the last."""
    position: str = ""
    """Which position of a per-position output labels a sample (``--position``): "" the middle, an index, "mean"."""
    time_budget: float = DEFAULT_TIME_BUDGET
    """Seconds every search together may take (``--time-budget``); past it they end with the points they have."""
    output_name: str | None = None
    """The class-score output to fingerprint (``--output-name``); None chooses (``models.choose_output``)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise UsageError(f"--time-budget must be a positive number of seconds, got {self.time_budget}")
        if not 1 <= self.n <= MAX_POINTS:
            raise UsageError(f"--n must lie in 1..{MAX_POINTS:,}, got {self.n}")
        if not 0 <= self.seed < 2**63:
            raise UsageError(f"--seed must be an integer in 0..2^63-1, got {self.seed}")
        if self.k is not None and not 0 <= self.k < math.inf:  # NaN fails too
            raise UsageError(f"--k must be a finite number ≥ 0 (a margin in logits), got {self.k}")
        if not 0.0 < self.threshold <= 1.0:  # at 0 a model that agrees on nothing would match
            raise UsageError(f"--threshold must lie in (0, 1], got {self.threshold}")
        if self.max_iterations < 1:
            raise UsageError(f"--max-iterations must be at least 1, got {self.max_iterations}")
        if self.method not in METHODS:
            raise UsageError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.unique is True and self.method != "ipguard":
            raise UsageError("--unique screens IPGuard points; use it with --method ipguard")
        if self.references < 0 or self.pool_factor < 1:
            raise UsageError("--references must be ≥ 0 and the pool factor ≥ 1")
        if self.students < 0:
            raise UsageError("--students must be ≥ 0")
        if self.students and self.unique is False:
            raise UsageError("--students adds positives to the --unique panel; use it with --unique")
        if self.mistakes is not None and not 0.0 <= self.mistakes <= 1.0:
            raise UsageError(f"--mistakes is a share of --n and must lie in [0, 1], got {self.mistakes}")
        unknown = [kind for kind in self.parts or () if kind not in PART_KINDS]
        if unknown or (self.parts is not None and (not self.parts or len(set(self.parts)) != len(self.parts))):
            raise UsageError(
                f"--parts takes distinct kinds among {', '.join(PART_KINDS)}, got {','.join(self.parts or ())!r}"
            )
        if not 0 <= self.calibration_references <= 1000:
            raise UsageError(f"--calibration-references must lie in 0..1000, got {self.calibration_references}")
        if not 0.0 < self.false_accusation_rate < 1.0:
            raise UsageError(f"--false-accusation-rate must lie in (0, 1), got {self.false_accusation_rate}")
        if not 0 < self.epsilon < math.inf:
            raise UsageError(f"--epsilon must be a positive, finite number, got {self.epsilon}")
        if not 0 < self.learning_rate < math.inf:
            raise UsageError(f"--learning-rate must be a positive, finite number, got {self.learning_rate}")
        if isinstance(self.domain, tuple) and not -MAX_DOMAIN <= self.domain[0] < self.domain[1] <= MAX_DOMAIN:
            raise UsageError(f"--domain needs LOW < HIGH within ±{MAX_DOMAIN:g}, got {self.domain[0]},{self.domain[1]}")

    def with_n(self, n: int) -> FingerprintSettings:
        """These settings asking for ``n`` points (a part's share)."""
        return replace(self, n=n)

    @property
    def suffix(self) -> str:
        return ("T" if self.init == "data" else "R") + ("L" if self.label == "least-likely" else "R")

    def require_installed(self) -> None:
        """Fail before any key or file is made when a package this run needs is missing (docs/reference/install.md):
        onnxruntime always; torch and the converter when the method follows a gradient."""
        requirements.onnxruntime()
        if issubclass(STRATEGIES[self.method], GradientSearch):
            try:
                requirements.surrogate_converter()
            except MissingDependencyError as error:
                raise MissingDependencyError(f"{error}; or --method gradient-free, which needs no torch") from None


@dataclass(frozen=True)
class FingerprintResult:
    """What one fingerprint run produced and cost."""

    bundle_path: Path
    target: str
    target_sha256: str
    points: int
    requested: int
    candidates_searched: int
    dropped_unconverged: int
    dropped_disagreement: int
    rounds: int
    mean_iterations: float
    search_seconds: float
    total_seconds: float
    parity: ParityReport | None
    """Surrogate vs onnxruntime; None where the gradient-free search ran (no surrogate)."""
    signer_key_id: str
    providers: tuple[str, ...]
    settings: FingerprintSettings
    unique_seconds: float = 0.0
    variant: str = ""
    """The paper's name for what ran (IPGuard-TL, …) or IPGuard-unique."""
    k: float = DEFAULT_K
    """The margin actually used (``settings.k``, or relative to the target's margins)."""
    unique: str = ""
    """With --unique: the signed JSON record of the panel and the search."""
    conversion: Conversion | None = None
    """Which converter and pre-pass made the surrogate (and the attempts passed over)."""
    input_shape: tuple[int, ...] = ()
    input_shape_source: str = ""
    output_name: str = ""
    output_chosen_because: str = ""
    gradient_free_reason: str = ""
    """Why the gradient-free search ran instead of the surrogate's gradient ("" where it did not)."""
    queries: int = 0
    """Points the gradient-free search sent to onnxruntime."""
    mistakes: int = 0
    """Points that are the target's own mistakes on labelled owner data (``--mistakes``)."""
    parts: tuple[BuiltPart, ...] = ()
    """The evidence parts built, in bundle order, with their q0 and why each was built."""
    parts_skipped: tuple[str, ...] = ()
    """Each part kind not built, with why (``kind: reason``)."""
    uncalibrated: str = ""
    """Why the parts' q0 were not self-calibrated ("" where they were)."""
    search_stopped: str = ""
    """Why a search ended before it had every point it wanted ("" where none did)."""
    shortfall: str = ""
    """Why the fingerprint has fewer points than requested, and the remedy ("" where it has them all)."""
    search_chosen_because: str = ""
    """Which search made the boundary points and why (``search_chosen_because``); signed in the bundle too."""


def search_chosen_because(
    settings: FingerprintSettings, unique: bool, parity: ParityReport | None, why_gradient_free: str
) -> str:
    """The search rule, as measured (BENCHMARKS.md, "Large trained models: each search side by side"):

    1. a method named with ``--method`` runs as named; ``--unique`` follows the surrogate's gradient;
    2. else, where a PyTorch surrogate reproduces onnxruntime, the gradient search (Eq. 5 by Adam) runs: the
       cheapest search that keeps the evidence where it can run. On small networks the walk is faster but keeps
       0.016–0.017 ARUC less, and both take seconds; on large models the walk cost about as much (100 points on
       a 224×224 ResNet-18: 203 s at k = 1 against 228 s at k = 3) and cannot start where every random input
       is one class (open_nsfw without owner data), where the gradient search found 100 points in 176 s;
       zeroth-order Adam asks 21 forward passes a step against about 3 for an Adam step;
    3. else the walk on onnxruntime (forward passes only), which also finishes a gradient search that stalls.
    """
    if unique:
        return "--unique: the conferrable search follows the surrogate's gradient"
    if settings.method != "ipguard":
        return f"--method {settings.method}: the search named"
    if parity is not None:
        return (
            f"a PyTorch surrogate reproduces onnxruntime (max difference {parity.max_abs_difference:.1e}), so the "
            "gradient search runs: the cheapest search that keeps the evidence where it can run (an Adam step costs "
            "about 3 forward passes, a zeroth-order step 21; the walk keeps less on small models and cost about "
            'as much on the large ones measured: BENCHMARKS.md, "Large trained models")'
        )
    return f"the walk on onnxruntime, forward passes only: {why_gradient_free}"


@dataclass(frozen=True)
class BuiltPart:
    """One evidence part as the fingerprint report shows it."""

    kind: str
    points: int
    null_agreement: float
    null_agreement_source: str
    how: str
    why: str


def uses_unique(settings: FingerprintSettings, has_data: bool, sample_shape: tuple[int, ...]) -> bool:
    """``--unique`` when asked; by default, for IPGuard with owner data and inputs of at most
    ``UNIQUE_AUTO_MAX_FEATURES`` values, where it was measured to win (BENCHMARKS.md)."""
    if settings.unique is not None:
        return settings.unique
    return settings.method == "ipguard" and has_data and int(np.prod(sample_shape)) <= UNIQUE_AUTO_MAX_FEATURES
