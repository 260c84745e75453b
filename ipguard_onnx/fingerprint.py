"""Fingerprint: the paper's steps in order (Section 4) — open the target, convert a surrogate and check
its parity, search candidates on it, keep those onnxruntime labels the same way, sign the bundle."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import requirements
from .bundle import FingerprintRecord, SearchRecord, reproducible, save_bundle
from .data import data_sample_shape, load_labels, load_points
from .errors import MissingDependencyError, SearchError, SurrogateError, UnsupportedModelError, UsageError
from .models import OnnxClassifier, as_classifier, label_indices, non_differentiable_ops
from .preprocessing import Preprocessing
from .search import (
    METHODS,
    STRATEGIES,
    BoundaryWalk,
    ConferrableSearch,
    GradientSearch,
    ProgressCallback,
    QuerySearch,
    SearchOptions,
    StartKind,
    TargetLabelRule,
    TrajectoryWalk,
    ZerothOrderAdam,
    anchor_targets,
    choose_labels,
    make_strategy,
    margin_scale,
    screen,
    search_scores,
    start_points,
)
from .search.conferrable import ITERATIONS as UNIQUE_ITERATIONS
from .search.conferrable import REFERENCE_MARGIN
from .stats import DEFAULT_NULL_AGREEMENT, UNIQUE_NULL_AGREEMENT
from .surrogate import Conversion, ParityReport, StatusCallback, Surrogate
from .types import MAX_DOMAIN, FloatArray, InputSpec, LabelArray

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
    domain: tuple[float, float] | Literal["data"] = (0.0, 1.0)
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
    """Conferrable search with owner-made positives and references (``screening``); None = auto:
    on for IPGuard with owner data and inputs of at most ``UNIQUE_AUTO_MAX_FEATURES`` values."""
    references: int = 16
    students: int = 0
    """With ``--unique``: owner-made extracted students among the positives (``search.panel``), so points
    also hold for models stolen through the API with synthetic queries (issue 14)."""
    pool_factor: int = 2
    mistakes: float = 0.0
    """Share of the ``n`` points taken from the target's own mistakes on labelled ``--data`` (AKH-style, issue
    14: a student that learned the target's labels repeats them, an independent model mostly does not); the
    search makes the rest. 1.0: the mistakes alone."""
    input_shape: tuple[int, ...] | None = None
    """Per-sample input shape for graphs with symbolic dimensions (``--input-shape``); signed, used by audits."""
    output_name: str | None = None
    """The class-score output to fingerprint (``--output-name``); None chooses (``models.choose_output``)."""

    def __post_init__(self) -> None:
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
        if not 0.0 <= self.mistakes <= 1.0:
            raise UsageError(f"--mistakes is a share of --n and must lie in [0, 1], got {self.mistakes}")
        if not 0 < self.epsilon < math.inf:
            raise UsageError(f"--epsilon must be a positive, finite number, got {self.epsilon}")
        if not 0 < self.learning_rate < math.inf:
            raise UsageError(f"--learning-rate must be a positive, finite number, got {self.learning_rate}")
        if isinstance(self.domain, tuple) and not -MAX_DOMAIN <= self.domain[0] < self.domain[1] <= MAX_DOMAIN:
            raise UsageError(f"--domain needs LOW < HIGH within ±{MAX_DOMAIN:g}, got {self.domain[0]},{self.domain[1]}")

    @property
    def suffix(self) -> str:
        return ("T" if self.init == "data" else "R") + ("L" if self.label == "least-likely" else "R")

    def require_installed(self) -> None:
        """Fail before any key or file is made when a package this run needs is missing (README "Install"):
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
    screening_seconds: float = 0.0
    variant: str = ""
    """The paper's name for what ran (IPGuard-TL, …) or IPGuard-unique."""
    k: float = DEFAULT_K
    """The margin actually used (``settings.k``, or relative to the target's margins)."""
    screening: str = ""
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


def uses_unique(settings: FingerprintSettings, has_data: bool, sample_shape: tuple[int, ...]) -> bool:
    """``--unique`` when asked; by default, for IPGuard with owner data and inputs of at most
    ``UNIQUE_AUTO_MAX_FEATURES`` values, where it was measured to win (BENCHMARKS.md)."""
    if settings.unique is not None:
        return settings.unique
    return settings.method == "ipguard" and has_data and int(np.prod(sample_shape)) <= UNIQUE_AUTO_MAX_FEATURES


def fingerprint(
    model_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    signing_key: Ed25519PrivateKey,
    settings: FingerprintSettings | None = None,
    data_path: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    reference_paths: Sequence[str | os.PathLike[str]] = (),
    status: StatusCallback | None = None,
) -> FingerprintResult:
    """Extract ``settings.n`` boundary points of the ONNX model and write a signed bundle (IPGuard, Section 4).

    ``progress`` gets (iteration, points converged) during the search; ``status`` a line per phase.
    """
    settings = settings or FingerprintSettings()
    started = time.perf_counter()
    say = status or (lambda _: None)
    target, data = _open_target(model_path, settings, data_path, say)
    settings = _map_class_names(settings, target)
    truth = _ground_truth(target, settings, data, data_path)
    if target.output_spec.kind == "labels" and settings.label == TargetLabelRule.least_likely:
        settings = replace(settings, label=TargetLabelRule.random)  # labels rank no classes: j is drawn (-R)
    spec = target.input_spec
    low, high = _bounds(settings, spec, data)
    rng = np.random.default_rng(settings.seed)
    parity_batch = start_points(PARITY_POINTS, rng, None, low, high)  # random inputs, and owner data if any
    if data is not None:
        parity_batch = np.concatenate([parity_batch, start_points(PARITY_POINTS, rng, data, low, high)])
    blocking = non_differentiable_ops(target.path) if target.path is not None else ()
    surrogate, why_gradient_free = _surrogate_or_reason(target, settings, parity_batch, blocking, say)
    unique = surrogate is not None and uses_unique(settings, data is not None, spec.sample_shape)
    k = settings.k if settings.k is not None else _default_k(unique, surrogate is None, bool(blocking))
    if target.output_spec.kind == "labels":
        k = 0.0  # decision-based: no margin to measure; the step past the boundary is a fixed share of the segment
    tally = SearchTally()
    screening: dict[str, Any] = {}
    balance = ""
    audit_labels = _audit_view(target, settings)
    mistake_points, mistake_labels = _mistake_points(target, audit_labels, settings, data, truth)
    to_search = 0 if settings.mistakes == 1.0 else settings.n - len(mistake_points)
    searched = replace(settings, n=to_search) if to_search else settings  # the search makes what mistakes do not
    if to_search == 0:
        points, labels = mistake_points[:0], mistake_labels[:0]
    elif surrogate is None:
        points, labels = _gradient_free_points(
            target, audit_labels, searched, k, data, rng, (low, high), tally, progress, say
        )
    elif unique:
        loop = CandidateLoop(surrogate, target, rng, low, high, settings.max_rounds, progress, say, tally)
        points, labels, screening = _unique_points(loop, searched, k, data, truth, reference_paths)
    else:
        loop = CandidateLoop(surrogate, target, rng, low, high, settings.max_rounds, progress, say, tally)
        options = SearchOptions(k, settings.epsilon, settings.max_iterations, settings.learning_rate)
        strategy = make_strategy(settings.method, options)
        assert isinstance(strategy, GradientSearch)  # a surrogate was built: the method follows a gradient
        points, labels, balance = _paper_points(loop, strategy, searched, data)
    points, labels = np.concatenate([points, mistake_points]), np.concatenate([labels, mistake_labels])
    own_labels = audit_labels if target.output_spec.kind == "labels" else target.predict
    if len(points) and not (own_labels(points) == labels).all():  # effectiveness (Section 3.3)
        raise SearchError(f"onnxruntime gives unstable labels on {target.name}; rerun with --providers cpu")
    agreed = audit_labels(points) == labels if len(points) else np.ones(0, np.bool_)  # the label output says j
    if not agreed.all():
        tally.disagreement += int((~agreed).sum())
        points, labels = points[agreed], labels[agreed]
    if len(points) == 0:
        budget = "on the way to anchors of other classes" if surrogate is None else f"within {settings.max_iterations}"
        raise SearchError(
            f"no point reached the boundary margin k={k} {budget} iterations; lower --k, raise --max-iterations, "
            "or widen --domain"
            if surrogate is not None
            else f"no point reached the boundary margin k={k} {budget}; lower --k, or pass owner data (--data)"
        )
    if target.num_classes is None:  # labels only: the classes named, else the largest label seen
        seen = [int(labels.max())] + ([int(audit_labels(data[:1024]).max())] if data is not None else [])
        target.declared_classes = len(settings.class_names) if settings.class_names else max(seen) + 1
    unique_seconds = float(screening.pop("seconds", 0.0))
    record = _record(settings, target, surrogate, tally, data_path, k, unique, len(points), screening, balance,
                     unique_seconds, why_gradient_free, len(mistake_points))  # fmt: skip
    tensors: dict[str, np.ndarray] = {"points": points, "labels": labels, "domain_low": low, "domain_high": high}
    signer = save_bundle(Path(output_path), tensors, record, signing_key)
    return FingerprintResult(
        bundle_path=Path(output_path), target=target.name, target_sha256=target.sha256 or "", points=len(points),
        requested=settings.n, candidates_searched=tally.searched, dropped_unconverged=tally.unconverged,
        dropped_disagreement=tally.disagreement, rounds=tally.rounds, mean_iterations=tally.mean_iterations,
        search_seconds=unique_seconds if unique else tally.seconds, total_seconds=time.perf_counter() - started,
        parity=surrogate.parity if surrogate else None, signer_key_id=signer, providers=target.providers,
        settings=settings, screening_seconds=unique_seconds, variant=record.variant, k=k,
        screening=record.search.screening if record.search else "",
        conversion=surrogate.conversion if surrogate else None, gradient_free_reason=why_gradient_free,
        queries=tally.queries, mistakes=len(mistake_points),
        input_shape=spec.sample_shape, input_shape_source=spec.shape_source,
        output_name=target.output_spec.name, output_chosen_because=target.output_spec.chosen_because,
    )  # fmt: skip


def _map_class_names(settings: FingerprintSettings, target: OnnxClassifier) -> FingerprintSettings:
    """Probability maps (ZipMap) keyed by classes other than 0..C−1 (e.g. 1..10, or names): their keys
    become the class names, so that an audit, which reads a suspect's key, finds the index the search used
    (the key's place in the sorted keys)."""
    keys = target.map_classes
    if settings.class_names or not keys or list(keys) == list(range(len(keys))):
        return settings
    return replace(settings, class_names=tuple(str(key) for key in keys))


def _open_target(
    model_path: str | os.PathLike[str], settings: FingerprintSettings, data_path: str | os.PathLike[str] | None,
    say: StatusCallback,
) -> tuple[OnnxClassifier, FloatArray | None]:  # fmt: skip
    """The target in onnxruntime with its input shape resolved (``--input-shape``, else ``--data``), and the data."""
    say("loading the model in onnxruntime")
    target = OnnxClassifier(
        model_path, providers=settings.providers, allow_spinning=False,
        input_shape=settings.input_shape, output_name=settings.output_name,
    )  # fmt: skip
    if not target.input_spec.resolved:
        if data_path is None:
            shown = ",".join("?" if d < 0 else str(d) for d in target.input_spec.sample_shape)
            raise UsageError(
                f"input {target.input_spec.name!r} of {target.name} has symbolic per-sample dimensions ({shown}); "
                "pass --input-shape with the size deployments feed it (e.g. 3,48,192), or --data"
            )
        target.resolve_input(data_sample_shape(Path(data_path)), "--data")
    classes = target.num_classes
    if settings.class_names and classes is not None and len(settings.class_names) != classes:
        raise UsageError(f"--class-names lists {len(settings.class_names)} names; {target.name} has {classes} classes")
    data = load_points(Path(data_path), target.input_spec) if data_path is not None else None
    if settings.init == "data" and data is None:
        raise UsageError("--init data needs --data FILE (.npy, .npz or a folder of images)")
    return target, data


def _ground_truth(
    target: OnnxClassifier, settings: FingerprintSettings, data: FloatArray | None,
    data_path: str | os.PathLike[str] | None,
) -> LabelArray | None:  # fmt: skip
    """Class indices stored beside the owner's inputs (a .npz with ``y``), checked against the target's classes."""
    truth = load_labels(Path(data_path), len(data)) if data is not None and data_path is not None else None
    if settings.mistakes and truth is None:
        raise UsageError(
            "--mistakes needs labelled owner data: --data FILE.npz with the inputs under 'x' and one integer "
            "class index per sample under 'y'"
        )
    classes = target.num_classes
    if truth is not None and classes is not None and (truth.min() < 0 or truth.max() >= classes):
        raise UsageError(
            f"--data's labels run from {truth.min()} to {truth.max()}; {target.name} has {classes} classes, "
            f"so labels must be class indices 0 to {classes - 1}"
        )
    return truth


def _mistake_points(
    target: OnnxClassifier, audit_labels: Callable[[FloatArray], LabelArray], settings: FingerprintSettings,
    data: FloatArray | None, truth: LabelArray | None,
) -> tuple[FloatArray, LabelArray]:  # fmt: skip
    """Up to ``mistakes · n`` samples of the owner's data the target labels wrong (AKH-style, as in QuRD's
    baseline), the wrong label being the point's label; only where the scores and the label output agree,
    so the target matches itself. Mistakes of middling confidence come first (the margin nearest the
    median of all the mistakes'): the most confident ones are mostly label noise every model repeats, the
    least confident flip under fine-tuning (measured per quartile on the Fashion-MNIST zoo, BENCHMARKS.md)."""
    wanted = round(settings.mistakes * settings.n)
    if not wanted or data is None or truth is None:
        return np.zeros((0, *target.input_spec.sample_shape), np.float32), np.zeros(0, np.int64)
    said = audit_labels(data)
    wrong = np.flatnonzero((said != truth) & (target.predict(data) == said))
    if target.output_spec.kind != "labels" and len(wrong):
        top = np.sort(search_scores(target.scores(data[wrong]), target.output_spec.kind), axis=1)
        margin = top[:, -1] - top[:, -2]
        wrong = wrong[np.argsort(np.abs(margin - np.median(margin)), kind="stable")]
    if not len(wrong) and settings.mistakes == 1.0:
        raise SearchError(
            f"{target.name} labels all {len(data)} samples of --data as their labels say: no mistakes to "
            "fingerprint with; lower --mistakes so the search makes the points"
        )
    chosen = wrong[:wanted]
    return data[chosen].astype(np.float32), said[chosen].astype(np.int64)


def _audit_view(target: OnnxClassifier, settings: FingerprintSettings) -> Callable[[FloatArray], LabelArray]:
    """The labels an audit of the target reads, as class indices. An audit reads a graph's label output
    where it has one; the search reads its scores. The two can differ (an SVM with probabilities labels
    by its decision function, not by the probabilities' argmax), so a point is kept only where both say j
    and the target matches itself at 100 %."""
    if target.output_spec.kind == "labels":
        view = target  # labels only: the search reads what an audit reads
    else:
        if not target.other_outputs:
            return target.predict
        view = OnnxClassifier(
            target.path if target.path is not None else target.session, role="suspect",
            providers=settings.providers, allow_spinning=False, input_shape=target.input_spec.sample_shape,
            num_classes=target.num_classes,
        )  # fmt: skip
        if view.output_spec.name == target.output_spec.name:
            return target.predict

    def labels(points: FloatArray) -> LabelArray:
        answers = view.answer(points)
        try:
            indices = label_indices(answers, settings.class_names)
        except UnsupportedModelError as exc:
            raise UsageError(
                f"{target.name} answers with {exc} on its label output; pass --class-names listing the classes in order"
            ) from None
        unknown = np.flatnonzero(answers.answered & (indices < 0))
        if len(unknown):
            raise UsageError(
                f"{target.name}'s label output {view.output_spec.name!r} answers {answers.labels[unknown[0]]!r}, "
                "which --class-names does not list; name the classes as that output does, in order"
            )
        return indices

    return labels


def _bounds(settings: FingerprintSettings, spec: InputSpec, data: FloatArray | None) -> tuple[FloatArray, FloatArray]:
    if settings.domain == "data":
        if data is None:
            raise UsageError("--domain data needs --data FILE to derive per-feature bounds from")
        low, high = data.min(axis=0), data.max(axis=0)
    else:
        low = np.full(spec.sample_shape, settings.domain[0], dtype=np.float32)
        high = np.full(spec.sample_shape, settings.domain[1], dtype=np.float32)
    return low.astype(np.float32), high.astype(np.float32)


@dataclass
class SearchTally:
    """What the candidate loop spent and dropped, over all its rounds."""

    searched: int = 0
    unconverged: int = 0
    disagreement: int = 0
    rounds: int = 0
    seconds: float = 0.0
    hit_rates: list[float] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    queries: int = 0

    @property
    def mean_iterations(self) -> float:
        return float(np.mean(self.iterations)) if self.iterations else 0.0

    def add_round(self, searched: int, unreached: int, seconds: float, *, hit_rate: float, queries: int = 0) -> None:
        """Count one search round: candidates searched, those that never reached a point, time and queries."""
        self.searched += searched
        self.unconverged += unreached
        self.seconds += seconds
        self.hit_rates.append(hit_rate)
        self.queries += queries


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
            outcome = strategy.run(
                self.surrogate.scores_tensor, start, source, target_labels, self.low, self.high, progress=self.progress
            )
            unreached = int((~outcome.converged).sum())
            self.tally.add_round(count, unreached, time.perf_counter() - tick, hit_rate=outcome.hit_rate)
            candidates = np.flatnonzero(outcome.converged)
            found = outcome.points[candidates]
            true_labels = self.target.predict(found) if len(found) else np.zeros(0, np.int64)
            agrees = true_labels == (self.surrogate.predict(found) if len(found) else true_labels)
            self.tally.disagreement += int((~agrees).sum())
            accepted = candidates[agrees][:need]
            kept_points.append(outcome.points[accepted])
            kept_labels.append(true_labels[agrees][:need])
            self.tally.iterations.extend(int(i) for i in outcome.iterations[accepted])
        shape = self.low.shape
        points = np.concatenate(kept_points) if kept_points else np.zeros((0, *shape), np.float32)
        return points, np.concatenate(kept_labels) if kept_labels else np.zeros(0, np.int64)


def _default_k(unique: bool, gradient_free: bool, graph_without_gradient: bool) -> float:
    """k where the user gave none: by the search that runs and the kind of graph (what measured best)."""
    if unique:
        return UNIQUE_DEFAULT_K
    if not gradient_free:
        return DEFAULT_K
    return NO_GRADIENT_DEFAULT_K if graph_without_gradient else GRADIENT_FREE_DEFAULT_K


def _without_gradient(target: OnnxClassifier, blocking: tuple[str, ...]) -> tuple[str, str] | None:
    """Why no gradient search can run on the target, as (what it lacks, for an error; why the
    gradient-free search runs, for the report), or None when a surrogate may be tried."""
    spec = target.input_spec
    if spec.integer:
        return (f"takes {spec.dtype} input (bytes or token ids: no gradient)",
                f"input {spec.name!r} is {spec.dtype}: no gradient, points are whole numbers")  # fmt: skip
    if target.output_spec.kind == "labels":
        return ("answers with labels only",
                f"{target.output_spec.name!r} gives labels only, no class scores: decision-based")  # fmt: skip
    if blocking:
        ops = ", ".join(blocking)
        return f"holds {ops} (no gradient)", f"the graph holds {ops}, which has no gradient"
    return None


def _surrogate_or_reason(
    target: OnnxClassifier,
    settings: FingerprintSettings,
    parity_batch: FloatArray,
    blocking: tuple[str, ...],
    say: StatusCallback,
) -> tuple[Surrogate | None, str]:
    """The parity-checked surrogate the gradient search runs on, or why the gradient-free search runs
    instead: asked for by name, operators without a gradient (``blocking``), or no converter reproducing
    onnxruntime."""
    strategy = STRATEGIES[settings.method]
    if not issubclass(strategy, GradientSearch):  # (--unique with another method is refused by the settings)
        return None, f"--method {settings.method}"
    why_not = _without_gradient(target, blocking)
    if why_not is not None:
        lacks, reason = why_not
        if settings.method != "ipguard" or settings.unique:
            what = "--unique" if settings.unique else f"--method {settings.method}"
            raise UsageError(f"{what} follows a gradient, and {target.name} {lacks}; use --method gradient-free")
        say(f"gradient-free search: {reason}")
        return None, reason
    requirements.surrogate_converter()  # missing torch names [fingerprint]; it is no reason to go gradient-free
    try:
        return Surrogate(target, parity_batch=parity_batch, status=say), ""
    except SurrogateError as exc:
        if settings.method != "ipguard" or settings.unique:
            raise
        reason = f"no PyTorch surrogate reproduces onnxruntime ({str(exc)[:300]})"
        say("gradient-free search: no surrogate reproduces onnxruntime")
        return None, reason


def _gradient_free_points(
    target: OnnxClassifier,
    audit_labels: Callable[[FloatArray], LabelArray],
    settings: FingerprintSettings,
    k: float,
    data: FloatArray | None,
    rng: np.random.Generator,
    bounds: tuple[FloatArray, FloatArray],
    tally: SearchTally,
    progress: ProgressCallback | None,
    say: StatusCallback,
) -> tuple[FloatArray, LabelArray]:
    """Rounds of the gradient-free search (``search.gradient_free``) on onnxruntime itself until ``n``
    points satisfy Eq. 5; anchors of each class j come from owner data when given, else the domain (the
    starts are anchors too)."""
    if settings.method == TrajectoryWalk.name:
        return _trajectory_points(target, audit_labels, settings, data, rng, bounds, tally, progress, say)
    low, high = bounds
    kind = target.output_spec.kind

    def scores(batch: FloatArray) -> FloatArray:
        if kind == "labels":  # labels only: one-hot "scores" to choose j and anchors; the walk is decision-based
            found = audit_labels(batch)
            return np.eye(max(int(found.max()) + 1, target.num_classes or 0, 2), dtype=np.float32)[found]
        return search_scores(target.scores(batch), kind)

    integer = target.input_spec.integer
    strategy: QuerySearch = BoundaryWalk(k=k, integer=integer)
    if settings.method == ZerothOrderAdam.name:  # measured against the walk (BENCHMARKS.md); by name only
        if integer or kind == "labels":
            raise UsageError(
                f"--method zo-adam needs class scores over float inputs; {target.name} "
                f"{'takes integer input' if integer else 'gives labels only'}: use --method gradient-free"
            )
        strategy = ZerothOrderAdam(
            k=k, max_iterations=settings.max_iterations, learning_rate=settings.learning_rate, seed=settings.seed
        )
    starts_from = data if settings.init == StartKind.data else None
    kept_points: list[FloatArray] = []
    kept_labels: list[LabelArray] = []
    for attempt in range(1, settings.max_rounds + 1):
        need = settings.n - sum(len(labels) for labels in kept_labels)
        if need <= 0:
            break
        count = need if attempt == 1 else 2 * need
        tally.rounds += 1
        say(f"gradient-free boundary search, round {attempt}: {count} points")
        tick = time.perf_counter()
        start = start_points(count, rng, starts_from, low, high)
        anchors = np.concatenate([start_points(max(8 * count, ANCHOR_POOL), rng, data, low, high), start])
        if integer:  # whole numbers, as the model reads them
            start, anchors = np.rint(start).astype(np.float32), np.rint(anchors).astype(np.float32)
        start_scores, anchor_scores = scores(start), scores(anchors)
        width = max(start_scores.shape[1], anchor_scores.shape[1])  # one-hot widths follow the labels seen
        start_scores, anchor_scores = _widen(start_scores, width), _widen(anchor_scores, width)
        _require_two_classes(np.concatenate([start_scores.argmax(axis=1), anchor_scores.argmax(axis=1)]), settings,
                             data)  # fmt: skip
        least_likely = settings.label == TargetLabelRule.least_likely and kind != "labels"
        found_points, found_labels, found_iterations, queries = [], [], [], len(start) + len(anchors)
        remaining = np.arange(count)
        for sure_by in (0.0, k):  # the nearest anchor of j; for starts left short, the nearest one sure by k
            if not len(remaining):
                break
            targets, which = anchor_targets(
                start[remaining], start_scores[remaining], anchors, anchor_scores, least_likely, rng, sure_by
            )
            usable = targets >= 0
            outcome, cost = strategy.run_queries(
                audit_labels if kind == "labels" else target.predict, None if kind == "labels" else scores,
                start[remaining[usable]], anchors[which[usable]], targets[usable], bounds=(low, high),
                progress=progress,
            )  # fmt: skip
            converged = outcome.converged.copy()
            if (
                audit_labels is not target.predict and kind != "labels" and converged.any()
            ):  # the label output must say j too
                converged[converged] = audit_labels(outcome.points[converged]) == outcome.target_labels[converged]
                queries += int(outcome.converged.sum())
                tally.disagreement += int((outcome.converged & ~converged).sum())
            queries += cost.queries
            found_points.append(outcome.points[converged])
            found_labels.append(outcome.target_labels[converged])
            found_iterations.append(outcome.iterations[converged])
            remaining = remaining[usable][~outcome.converged]
        tally.add_round(count, len(remaining), time.perf_counter() - tick, hit_rate=1.0 - len(remaining) / count,
                        queries=queries)  # fmt: skip
        kept_points.append(np.concatenate(found_points)[:need])
        kept_labels.append(np.concatenate(found_labels)[:need])
        tally.iterations.extend(np.concatenate(found_iterations)[:need].tolist())
    points = np.concatenate(kept_points) if kept_points else np.zeros((0, *low.shape), np.float32)
    return points, np.concatenate(kept_labels) if kept_labels else np.zeros(0, np.int64)


def _require_two_classes(labels: LabelArray, settings: FingerprintSettings, data: FloatArray | None) -> None:
    """A gradient-free search needs starts or anchors of two classes at least: say where all were one."""
    seen = np.unique(labels)
    if len(seen) < 2:
        low_high = settings.domain if isinstance(settings.domain, tuple) else (0.0, 1.0)
        source = "--data" if data is not None else f"--domain {low_high[0]:g},{low_high[1]:g}"
        raise SearchError(
            f"every input drawn from {source} is labelled class {int(seen[0])}, so there is no other class "
            "to cross to; widen --domain, or pass owner data that holds other classes (--data)"
        )


def _trajectory_points(
    target: OnnxClassifier,
    audit_labels: Callable[[FloatArray], LabelArray],
    settings: FingerprintSettings,
    data: FloatArray | None,
    rng: np.random.Generator,
    bounds: tuple[FloatArray, FloatArray],
    tally: SearchTally,
    progress: ProgressCallback | None,
    say: StatusCallback,
) -> tuple[FloatArray, LabelArray]:
    """``--method trajectory``: ADV-TRA-style trajectories (``search.trajectory``), each point labelled as the
    audit reads the target; rounds add trajectories until ``n`` points (the last one may be cut short)."""
    low, high = bounds
    walk = TrajectoryWalk(integer=target.input_spec.integer)
    kept_points: list[FloatArray] = []
    kept_labels: list[LabelArray] = []
    for attempt in range(1, settings.max_rounds + 1):
        need = settings.n - sum(len(labels) for labels in kept_labels)
        if need <= 0:
            break
        count = -(-need // walk.length) * (1 if attempt == 1 else 2)
        tally.rounds += 1
        say(f"trajectory search, round {attempt}: {count} trajectories of up to {walk.length} points")
        tick = time.perf_counter()
        start = start_points(count, rng, data if settings.init == StartKind.data else None, low, high)
        anchors = start_points(max(8 * count, ANCHOR_POOL), rng, data, low, high)
        if walk.integer:
            start, anchors = np.rint(start).astype(np.float32), np.rint(anchors).astype(np.float32)
        anchor_labels = audit_labels(anchors)
        _require_two_classes(np.concatenate([audit_labels(start), anchor_labels]), settings, data)
        found, cost = walk.trace(audit_labels, start, anchors, anchor_labels, progress=progress)
        keep, checked = np.ones(len(found.points), np.bool_), 0
        if target.output_spec.kind != "labels":  # the scores must say what the label output says
            keep, checked = target.predict(found.points) == found.labels, len(found.points)
            tally.disagreement += int((~keep).sum())
        kept_points.append(found.points[keep][:need])
        kept_labels.append(found.labels[keep][:need])
        tally.add_round(count, count - found.complete, time.perf_counter() - tick, hit_rate=found.complete / count,
                        queries=cost.queries + checked)  # fmt: skip
        tally.iterations.extend([walk.crossings * walk.bisection_steps] * int(keep.sum()))
    empty = np.zeros((0, *low.shape), np.float32)
    points = np.concatenate(kept_points) if kept_points else empty
    return points, np.concatenate(kept_labels) if kept_labels else np.zeros(0, np.int64)


def _widen(scores: FloatArray, width: int) -> FloatArray:
    """One-hot label scores padded with zero columns to ``width`` classes."""
    if scores.shape[1] >= width:
        return scores
    return np.pad(scores, ((0, 0), (0, width - scores.shape[1])))


def _paper_points(
    loop: CandidateLoop, strategy: GradientSearch, settings: FingerprintSettings, data: FloatArray | None
) -> tuple[FloatArray, LabelArray, str]:
    """The paper's search (or a baseline), and the binary balance: a binary model labels every random
    start alike, so every point would say one class and a constant model would match. Half the points
    are then searched back across the boundary from the others (j is then the other class)."""
    points, labels = loop.collect(strategy, settings.n, data if settings.init == "data" else None, settings.label)
    if loop.target.num_classes != 2 or len(points) < 2 or len(set(labels.tolist())) != 1:
        return points, labels, ""
    half = len(points) // 2
    back_points, back_labels = loop.collect(strategy, half, points[: len(points) - half], settings.label)
    if not len(back_points):
        return points, labels, ""
    points = np.concatenate([points[: len(points) - len(back_points)], back_points])
    labels = np.concatenate([labels[: len(labels) - len(back_labels)], back_labels])
    return points, labels, f"{len(back_points)} of {len(points)} points searched back across the boundary"


def _unique_points(
    loop: CandidateLoop,
    settings: FingerprintSettings,
    k: float,
    data: FloatArray | None,
    truth: LabelArray | None,
    reference_paths: Sequence[str | os.PathLike[str]],
) -> tuple[FloatArray, LabelArray, dict[str, Any]]:
    """``--unique``: the panel, a conferrable search over a ``pool_factor · n`` pool through the same
    candidate loop, then the ``n`` most conferrable points (``search.conferrable``)."""
    from .search.panel import build_panel

    started = time.perf_counter()
    supplied = [as_classifier(Path(path), providers=settings.providers) for path in reference_paths]
    if data is None and not supplied:
        raise UsageError(
            "--unique needs owner data (--data) to train references, or models to compare with (--reference)"
        )
    target, surrogate = loop.target, loop.surrogate
    loop.say("--unique: training the panel of owner-made copies and references")
    panel = build_panel(
        surrogate.score_module, data, target.predict(data) if data is not None else None,
        references=settings.references if data is not None else 0, seed=settings.seed, supplied=supplied,
        students=settings.students, label=target.predict, reference_labels=truth,
    )  # fmt: skip
    build_seconds = time.perf_counter() - started
    loop.say("--unique: conferrable search")
    scale = margin_scale(surrogate.scores(data if data is not None else start_points(256, loop.rng, None, loop.low,
                                                                                       loop.high)))  # fmt: skip
    search = ConferrableSearch(panel, k=k, iterations=UNIQUE_ITERATIONS, learning_rate=settings.learning_rate)
    pool, pool_labels = loop.collect(
        search, settings.pool_factor * settings.n, data, TargetLabelRule.random
    )  # random j: measured
    chosen, disagreement, agreement = screen(pool, pool_labels, panel, settings.n)
    record: dict[str, Any] = {
        "search": "conferrable (target and positives to j by margin k, references away from j)",
        "pool": len(pool),
        "searched": loop.tally.searched,
        "iterations": UNIQUE_ITERATIONS,
        "k": round(k, 6),
        "reference_margin": round(REFERENCE_MARGIN * k, 6),
        "median_margin": round(scale, 6),
        "starts": "data" if data is not None else "random",
        "reference_disagreement": round(disagreement, 4),
        "positive_agreement": round(agreement, 4),
        "panel_seconds": round(build_seconds, 2),
        "reference_labels": "ground truth from --data" if truth is not None else "the target's",
        "panel": [
            {"name": m.name, "role": m.role, "how": m.how, "digest": m.digest}
            | ({"agreement_with_target": round(m.agreement, 4)} if m.agreement is not None else {})
            for m in panel
        ],
    }
    return pool[chosen], pool_labels[chosen], record | {"seconds": time.perf_counter() - started}


def _record(
    settings: FingerprintSettings,
    target: OnnxClassifier,
    surrogate: Surrogate | None,
    tally: SearchTally,
    data_path: str | os.PathLike[str] | None,
    k: float,
    unique: bool,
    points: int,
    screening: dict[str, Any],
    balance: str,
    seconds: float,
    why_gradient_free: str,
    mistakes: int,
) -> FingerprintRecord:
    """The signed record: what the points were made from, how, and what an audit needs to ask for them."""
    spec, output = target.input_spec, target.output_spec
    conversion = surrogate.conversion if surrogate is not None else None
    parity = surrogate.parity if surrogate is not None else None
    source = "--unique" if unique else "the paper's search"
    return FingerprintRecord(
        target_file=target.name,
        target_sha256=target.sha256 or "",
        input_name=spec.name,
        input_shape=spec.sample_shape,
        input_layout=spec.layout,
        input_dtype=spec.dtype,
        input_shape_source=spec.shape_source,
        output_name=output.name,
        output_kind=output.kind,
        num_classes=target.num_classes or 0,
        class_names=settings.class_names,
        method=settings.method,
        variant="AKH-mistakes"
        if settings.mistakes == 1.0
        else _variant(settings, unique, gradient_free=surrogate is None) + ("+mistakes" if mistakes else ""),
        threshold=settings.threshold,
        domain="per-feature from data" if settings.domain == "data" else f"{settings.domain[0]},{settings.domain[1]}",
        null_agreement=UNIQUE_NULL_AGREEMENT if unique else DEFAULT_NULL_AGREEMENT,
        null_agreement_source=f"default for {source}: above every independent model measured on the benchmark "
        "zoos (see README); calibrate to measure yours",
        preprocessing=settings.preprocessing,
        search=SearchRecord(
            k=k,
            init=("data" if data_path is not None else "random") if unique else settings.init,
            label="random" if unique else settings.label,
            seed=settings.seed,
            max_iterations=settings.max_iterations,
            learning_rate=settings.learning_rate,
            epsilon=settings.epsilon,
            n_requested=settings.n,
            n_points=points,
            search_scores=_SEARCH_SCORES[output.kind],
            hit_rate=round(float(np.mean(tally.hit_rates)), 3) if tally.hit_rates else 0.0,
            candidates_searched=tally.searched,
            dropped_unconverged=tally.unconverged,
            dropped_disagreement=tally.disagreement,
            mean_iterations=round(tally.mean_iterations, 2),
            parity_max_abs_difference=float(f"{parity.max_abs_difference:.3e}") if parity is not None else 0.0,
            surrogate=conversion.summary
            if conversion is not None
            else f"none: gradient-free search ({why_gradient_free})",
            data_sha256=_file_digest(Path(data_path)) if data_path is not None else "",
            output_chosen_because=output.chosen_because,
            surrogate_converter=conversion.converter if conversion is not None else "",
            surrogate_prepass=conversion.prepass if conversion is not None else "",
            surrogate_attempts_passed_over=conversion.failed_attempts if conversion is not None else (),
            screening=json.dumps(screening, sort_keys=True) if screening else "",
            screening_seconds=round(seconds, 2),
            binary_balance=balance,
            gradient_free_reason=why_gradient_free,
            queries=tally.queries,
            mistakes=mistakes,
            seconds_per_100_points=0.0
            if surrogate is not None or reproducible()
            else round(100 * tally.seconds / max(points, 1), 3),
        ),
    )


def _variant(settings: FingerprintSettings, unique: bool, *, gradient_free: bool) -> str:
    """The paper's name for what ran: IPGuard-TL, FGSM-RL, ... (Table 3), IPGuard-unique, or IPGuard-GF-RL
    for the gradient-free search (by name, or chosen because the graph has no usable gradient)."""
    if unique:
        return ConferrableSearch.paper_name
    chosen = STRATEGIES[settings.method]
    name = BoundaryWalk.paper_name if gradient_free and issubclass(chosen, GradientSearch) else chosen.paper_name
    return f"{name}-{settings.suffix}"


_SEARCH_SCORES = {
    "logits": "logits",
    "probabilities": "log-probabilities",
    "probability-maps": "log-probabilities",
    "binary-logit": "(-z, z) of the single logit z",
    "binary-probability": "(-z, z), z = logit of the sigmoid output",
    "labels": "none",
}


def _file_digest(path: Path) -> str:
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(item.relative_to(path)).encode() + b"\0" + item.read_bytes())
        return digest.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()
