"""The evidence-part family (issue 24): a fingerprint is a list of typed parts, each made by one member.

A member names its kind, says why it cannot run on a target (``why_not``) and makes up to ``wanted`` points
with their labels (``make``) from the ``Workshop``: the target, the owner's data, the surrogate and the shared
search state. ``fingerprint`` composes the parts, checks every point, calibrates each part's null agreement q0
(``parts.calibration``) and signs the list into the bundle (``bundle.BundlePart``). A new kind of evidence is a
new file with a ``@register``ed ``PartKind``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from ..search import GradientSearch, ProgressCallback, TargetLabelRule, choose_labels, start_points
from ..types import FloatArray, LabelArray

if TYPE_CHECKING:
    import os

    from ..fingerprint_settings import FingerprintSettings
    from ..models import OnnxClassifier
    from ..surrogate import StatusCallback, Surrogate

MIN_SPLIT_ROWS = 40
"""With fewer owner rows than twice this, panel and calibration models share all of them."""
MIN_PART_POINTS = 10
"""A part the default composes is kept only with at least this many points: fewer carry too little evidence
to pay for the Bonferroni share they take from the other parts."""


@dataclass
class SearchTally:
    """What the searches spent and dropped, over all their rounds and parts."""

    searched: int = 0
    unconverged: int = 0
    disagreement: int = 0
    rounds: int = 0
    seconds: float = 0.0
    hit_rates: list[float] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    queries: int = 0
    stopped: str = ""
    """Why a search ended before it had every point it wanted ("" where none did): its time budget ran out,
    or it was not converging."""
    spread_anchors: int = 0
    """Anchors drawn from sub-intervals of the domain because one class filled its uniform noise."""
    drawn_labels: list[int] = field(default_factory=list)
    """The target's label of every random start and anchor the gradient-free search drew (what classes the
    domain or the owner's data reach: ``shortfall``)."""

    @property
    def mean_iterations(self) -> float:
        return float(np.mean(self.iterations)) if self.iterations else 0.0

    def shortfall(self, found: int, wanted: int, source: str) -> str:
        """Why fewer than ``wanted`` points were found ("" where none were missing), with the remedy; where one
        class labels almost every draw from ``source`` (a domain that misses the model's inputs), says so."""
        if found >= wanted:
            return ""
        text = f"{found} of {wanted} points found"
        if self.drawn_labels:
            counts = np.bincount(np.asarray(self.drawn_labels, dtype=np.int64))
            top = int(counts.argmax())
            share = counts[top] / counts.sum()
            if share >= DOMINANT_SHARE:
                return (
                    f"{text}: {share:.1%} of the inputs drawn from {source} are labelled class {top} "
                    f"({int((counts > 0).sum())} class(es) seen), so few starts have another class to cross to; "
                    "pass inputs the model sees (--data), or a --domain that reaches its other classes"
                )
        if self.stopped:
            return f"{text}: {self.stopped}"
        return f"{text}: the other candidates never reached the margin k beyond a boundary; lower --k, or pass --data"

    def add_round(self, searched: int, unreached: int, seconds: float, *, hit_rate: float, queries: int = 0) -> None:
        """Count one search round: candidates searched, those that never reached a point, time and queries."""
        self.searched += searched
        self.unconverged += unreached
        self.seconds += seconds
        self.hit_rates.append(hit_rate)
        self.queries += queries


DOMINANT_SHARE = 0.9
"""A shortfall whose random draws were labelled one class this often is blamed on the domain (``shortfall``)."""

STALL_SHARE = 0.25
"""A gradient search with no point converged after this share of ``--max-iterations`` (at least
``STALL_ITERATIONS``, at most ``STALL_CAP``) is not converging: it stops, and the boundary part falls back to the
gradient-free search."""
STALL_ITERATIONS = 50
STALL_CAP = 500


@dataclass
class SearchGuard:
    """Ends searches that would not end usefully: past the fingerprint's time budget (``--time-budget``), or a
    gradient search round with no point converged after ``STALL_SHARE`` of its iterations. Passed as the
    search's progress callback (answering True stops it); ``stopped`` says why it stopped."""

    deadline: float
    """``time.monotonic()`` after which every search stops with the points it has."""
    budget: float
    max_iterations: int
    progress: ProgressCallback | None = None
    watch_stall: bool = True
    """False for searches that report no convergence while they run (the conferrable ``--unique`` search runs
    its fixed iterations, then screens): only the time budget ends those."""
    stopped: str = ""
    stalled: bool = False
    """Stopped because no point converged (not for time): another search may do better."""

    def expired(self) -> bool:
        if time.monotonic() > self.deadline:
            self.stopped = f"the time budget of {self.budget:g} s ran out (--time-budget)"
        return bool(self.stopped)

    def __call__(self, iteration: int, done: int) -> bool:
        if self.progress is not None:
            self.progress(iteration, done)
        if self.expired():
            return True
        if (
            self.watch_stall
            and done == 0
            and iteration >= max(STALL_ITERATIONS, min(STALL_SHARE * self.max_iterations, STALL_CAP))
        ):
            self.stopped = f"no point converged in {iteration} iterations: the gradient search is not converging"
            self.stalled = True
            return True
        return False


@dataclass
class Workshop:
    """Everything a part kind may use to make points: the target (scores and the label output an audit reads),
    the owner's data and labels, the domain, the surrogate when one reproduces onnxruntime, and shared state."""

    target: OnnxClassifier
    settings: FingerprintSettings
    audit_labels: Callable[[FloatArray], LabelArray]
    data: FloatArray | None
    truth: LabelArray | None
    rng: np.random.Generator
    low: FloatArray
    high: FloatArray
    surrogate: Surrogate | None
    why_gradient_free: str
    k: float
    unique: bool
    reference_paths: Sequence[str | os.PathLike[str]]
    progress: ProgressCallback | None
    say: StatusCallback
    tally: SearchTally = field(default_factory=SearchTally)
    deadline: float = float("inf")
    """``time.monotonic()`` when every search must end (``--time-budget`` from the fingerprint's start)."""

    def guard(self, max_iterations: int, *, watch_stall: bool = True) -> SearchGuard:
        """A fresh guard for one search (the shared deadline, this search's iterations)."""
        return SearchGuard(self.deadline, self.settings.time_budget, max_iterations, self.progress, watch_stall)

    def _half(self, which: int) -> tuple[FloatArray, LabelArray | None]:
        assert self.data is not None
        if len(self.data) < 2 * MIN_SPLIT_ROWS:
            return self.data, self.truth
        order = np.random.default_rng([self.settings.seed, 24]).permutation(len(self.data))
        rows = np.sort(order[: len(order) // 2] if which == 0 else order[len(order) // 2 :])
        return self.data[rows], self.truth[rows] if self.truth is not None else None

    @property
    def panel_data(self) -> tuple[FloatArray, LabelArray | None]:
        """The half of the owner's rows the models that choose points train on (the ``--unique`` panel, the
        students part's students and references); the other half is the calibration references' alone."""
        return self._half(0)

    @property
    def calibration_data(self) -> tuple[FloatArray, LabelArray | None]:
        """The owner's rows no panel model saw: calibration references train there, as an independent
        party would train on data of its own (fewer than ``2 · MIN_SPLIT_ROWS`` rows: all of them, shared)."""
        return self._half(1)

    @property
    def features(self) -> int:
        return int(np.prod(self.target.input_spec.sample_shape))

    def empty(self) -> tuple[FloatArray, LabelArray]:
        return np.zeros((0, *self.low.shape), np.float32), np.zeros(0, np.int64)


@dataclass(frozen=True)
class MadePart:
    """Points of one kind, their labels (as an audit reads the target), and what made them."""

    kind: str
    points: FloatArray
    labels: LabelArray
    how: str
    null_agreement: float
    """q0 when no calibration reference measures it (the kind's conservative default)."""
    null_agreement_source: str
    details: dict[str, Any] = field(default_factory=dict)
    """Kind-specific signed record (the ``--unique`` panel, the binary balance, timings)."""


class PartKind(ABC):
    """One kind of evidence part."""

    name: ClassVar[str]
    summary: ClassVar[str]
    """One line for the report: what this kind of point catches."""

    @abstractmethod
    def why_not(self, shop: Workshop) -> str | None:
        """Why this kind cannot be made for this target and data (None: it can)."""

    @abstractmethod
    def make(self, shop: Workshop, wanted: int) -> MadePart:
        """Up to ``wanted`` points of this kind."""


Kind = TypeVar("Kind", bound="type[PartKind]")
PART_KINDS: dict[str, type[PartKind]] = {}
"""Every part kind by its ``name``, in registration order (the order parts take in a bundle)."""


def register(kind: Kind) -> Kind:
    """Class decorator: add a part kind to ``PART_KINDS`` under its ``name`` (names are unique)."""
    if kind.name in PART_KINDS:
        raise ValueError(f"two evidence part kinds are named {kind.name!r}")
    PART_KINDS[kind.name] = kind
    return kind


@dataclass
class CandidateLoop:
    """The one candidate loop of every strategy: search rounds until enough points converge and
    onnxruntime labels them as the surrogate does (the surrogate only proposes; Section 4.2)."""

    surrogate: Surrogate
    target: OnnxClassifier
    rng: np.random.Generator
    low: FloatArray
    high: FloatArray
    max_rounds: int
    progress: ProgressCallback | None
    say: StatusCallback
    tally: SearchTally
    guard: SearchGuard | None = None
    """Stops a round past the time budget or not converging (then no further round runs)."""

    def collect(
        self, strategy: GradientSearch, wanted: int, starts: FloatArray | None, rule: TargetLabelRule
    ) -> tuple[FloatArray, LabelArray]:
        """Up to ``wanted`` accepted points from starts drawn from ``starts`` (None: the domain)."""
        kept_points: list[FloatArray] = []
        kept_labels: list[LabelArray] = []
        for attempt in range(1, self.max_rounds + 1):
            need = wanted - sum(len(labels) for labels in kept_labels)
            if need <= 0:
                break
            count = need if attempt == 1 else 2 * need
            self.tally.rounds += 1
            self.say(f"boundary search, round {attempt}: {count} points")
            start = start_points(count, self.rng, starts, self.low, self.high)
            source, target_labels = choose_labels(self.surrogate.scores(start), rule, self.rng)
            tick = time.perf_counter()
            watch = self.guard if self.guard is not None else self.progress
            outcome = strategy.run(
                self.surrogate.scores_tensor, start, source, target_labels, self.low, self.high, progress=watch
            )
            unreached = int((~outcome.converged).sum())
            self.tally.add_round(count, unreached, time.perf_counter() - tick, hit_rate=outcome.hit_rate)
            candidates = np.flatnonzero(outcome.converged)
            found = outcome.points[candidates]
            true_labels = self.target.predict(found) if len(found) else np.zeros(0, np.int64)
            known = np.full(len(found), -1, np.int64)
            if outcome.surrogate_labels is not None:  # what the search already knows costs no forward pass
                known = outcome.surrogate_labels[candidates].copy()
            unknown = known < 0
            if unknown.any():
                known[unknown] = self.surrogate.predict(found[unknown])
            agrees = true_labels == known
            self.tally.disagreement += int((~agrees).sum())
            accepted = candidates[agrees][:need]
            kept_points.append(outcome.points[accepted])
            kept_labels.append(true_labels[agrees][:need])
            self.tally.iterations.extend(int(i) for i in outcome.iterations[accepted])
            if self.guard is not None and self.guard.stopped:
                self.tally.stopped = self.guard.stopped
                self.say(f"boundary search stopped: {self.guard.stopped}")
                break
        shape = self.low.shape
        points = np.concatenate(kept_points) if kept_points else np.zeros((0, *shape), np.float32)
        return points, np.concatenate(kept_labels) if kept_labels else np.zeros(0, np.int64)
