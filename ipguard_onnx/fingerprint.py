"""Fingerprint: surrogate → batched boundary search → labels from onnxruntime → signed bundle."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import __version__
from .bundle import FORMAT_NAME, FORMAT_VERSION, save_bundle
from .data import data_sample_shape, load_points
from .errors import SearchError, UsageError
from .models import FloatArray, InputSpec, LabelArray, OnnxClassifier
from .preprocessing import Preprocessing
from .search import METHODS, ProgressCallback, SearchStrategy, make_strategy
from .stats import DEFAULT_NULL_AGREEMENT, UNIQUE_NULL_AGREEMENT
from .surrogate import Conversion, ParityReport, StatusCallback, Surrogate

InitKind = Literal["data", "random"]
LabelKind = Literal["least-likely", "random"]
DEFAULT_K = 3.0
UNIQUE_DEFAULT_K = 1.0
"""--unique was measured with k = 1 (k = 0.3 and 3 were worse on the zoos; BENCHMARKS.md)."""
DEFAULT_THRESHOLD = 0.85
UNIQUE_AUTO_MAX_FEATURES = 4096
"""--unique is the default with --data up to this input size: where it was measured to win (BENCHMARKS.md)."""
_METHOD_NAMES = {"ipguard": "IPGuard", "random": "Random", "fgsm": "FGSM", "igsm": "IGSM", "cw-l2": "CW-L2"}
PARITY_POINTS = 64


@dataclass(frozen=True)
class FingerprintSettings:
    """Everything that shapes a fingerprint; all of it is signed into the bundle.

    ``init``/``label`` are the paper's suffixes (Section 5.1.4, Table 3): data + least-likely is
    -TL, random + least-likely is -RL, and so on.
    """

    n: int = 100
    k: float | None = None
    """Eq. 5's margin; None: ``DEFAULT_K`` for the paper's search, ``UNIQUE_DEFAULT_K`` with ``unique``."""
    init: InitKind = "random"
    label: LabelKind = "least-likely"
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
    pool_factor: int = 2
    input_shape: tuple[int, ...] | None = None
    """Per-sample input shape for graphs with symbolic dimensions (``--input-shape``); signed, used by audits."""
    output_name: str | None = None
    """The class-score output to fingerprint (``--output-name``); None chooses (``models.choose_output``)."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise UsageError(f"--n must be at least 1, got {self.n}")
        if self.k is not None and self.k < 0:
            raise UsageError(f"--k must be ≥ 0 (a margin in logits), got {self.k}")
        if not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"--threshold must lie in [0, 1], got {self.threshold}")
        if self.max_iterations < 1:
            raise UsageError(f"--max-iterations must be at least 1, got {self.max_iterations}")
        if self.method not in METHODS:
            raise UsageError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.unique is True and self.method != "ipguard":
            raise UsageError("--unique screens IPGuard points; use it with --method ipguard")
        if self.references < 0 or self.pool_factor < 1:
            raise UsageError("--references must be ≥ 0 and the pool factor ≥ 1")
        if self.epsilon <= 0:
            raise UsageError(f"--epsilon must be positive, got {self.epsilon}")
        if isinstance(self.domain, tuple) and not self.domain[0] < self.domain[1]:
            raise UsageError(f"--domain needs LOW < HIGH, got {self.domain[0]},{self.domain[1]}")

    @property
    def suffix(self) -> str:
        return ("T" if self.init == "data" else "R") + ("L" if self.label == "least-likely" else "R")


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
    parity: ParityReport
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


def _bounds(settings: FingerprintSettings, spec: InputSpec, data: FloatArray | None) -> tuple[FloatArray, FloatArray]:
    if settings.domain == "data":
        if data is None:
            raise UsageError("--domain data needs --data FILE to derive per-feature bounds from")
        low, high = data.min(axis=0), data.max(axis=0)
    else:
        low = np.full(spec.sample_shape, settings.domain[0], dtype=np.float32)
        high = np.full(spec.sample_shape, settings.domain[1], dtype=np.float32)
    return low.astype(np.float32), high.astype(np.float32)


def _start_points(
    count: int, rng: np.random.Generator, data: FloatArray | None, low: FloatArray, high: FloatArray
) -> FloatArray:
    """-T: random training examples; -R: uniform samples from the domain (Section 5.1.4)."""
    if data is not None:
        return data[rng.integers(0, len(data), size=count)].copy()
    uniform = rng.random((count, *low.shape), dtype=np.float32)
    return (low + uniform * (high - low)).astype(np.float32)


def _choose_labels(logits: FloatArray, kind: LabelKind, rng: np.random.Generator) -> tuple[LabelArray, LabelArray]:
    """i = the model's label at the start; j = its least-likely label, or a random other label."""
    source = logits.argmax(axis=1).astype(np.int64)
    if kind == "least-likely":
        target = logits.argmin(axis=1).astype(np.int64)
    else:
        classes = logits.shape[1]
        offset = rng.integers(1, classes, size=len(source))
        target = ((source + offset) % classes).astype(np.int64)
    return source, target


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
    import torch

    settings = settings or FingerprintSettings()
    started = time.perf_counter()
    say = status or (lambda _: None)
    say("loading the model in onnxruntime")
    target = OnnxClassifier(
        model_path, providers=settings.providers, allow_spinning=False,
        input_shape=settings.input_shape, output_name=settings.output_name,
    )  # fmt: skip
    target_sha256 = target.sha256 or ""
    if not target.input_spec.resolved:
        if data_path is None:
            shown = ",".join("?" if d < 0 else str(d) for d in target.input_spec.sample_shape)
            raise UsageError(
                f"input {target.input_spec.name!r} of {target.name} has symbolic per-sample dimensions ({shown}); "
                "pass --input-shape with the size deployments feed it (e.g. 3,48,192), or --data"
            )
        target.resolve_input(data_sample_shape(Path(data_path)), "--data")
    spec = target.input_spec
    num_classes = target.output_spec.num_classes
    if settings.class_names and len(settings.class_names) != num_classes:
        raise UsageError(
            f"--class-names lists {len(settings.class_names)} names; {target.name} has {num_classes} classes"
        )
    data = load_points(Path(data_path), spec) if data_path is not None else None
    if settings.init == "data" and data is None:
        raise UsageError("--init data needs --data FILE (.npy, .npz or a folder of images)")
    low, high = _bounds(settings, spec, data)
    init_data = data if settings.init == "data" else None

    unique = (
        settings.unique
        if settings.unique is not None
        else settings.method == "ipguard"
        and data is not None
        and int(np.prod(spec.sample_shape)) <= UNIQUE_AUTO_MAX_FEATURES
    )
    k = settings.k if settings.k is not None else (UNIQUE_DEFAULT_K if unique else DEFAULT_K)

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    parity_batch = _start_points(PARITY_POINTS, rng, None, low, high)
    if data is not None:
        parity_batch = np.concatenate([parity_batch, _start_points(PARITY_POINTS, rng, data, low, high)])
    surrogate = Surrogate(target, parity_batch=parity_batch, status=say)
    assert surrogate.parity is not None  # checked on parity_batch before it was kept
    parity = surrogate.parity

    search = make_strategy(
        settings.method,
        k=k,
        epsilon=settings.epsilon,
        max_iterations=settings.max_iterations,
        learning_rate=settings.learning_rate,
    )
    hits: list[float] = []
    iterations: list[int] = []
    searched = unconverged = disagreement = rounds = 0
    search_seconds = 0.0

    def collect(strategy: SearchStrategy, wanted: int, starts: FloatArray | None) -> tuple[FloatArray, LabelArray]:
        """Search until ``wanted`` points converge and onnxruntime labels them as the surrogate does."""
        nonlocal searched, unconverged, disagreement, rounds, search_seconds
        kept_points: list[FloatArray] = []
        kept_labels: list[LabelArray] = []
        attempt = 0
        while sum(len(p) for p in kept_labels) < wanted and attempt < settings.max_rounds:
            need = wanted - sum(len(p) for p in kept_labels)
            count = need if attempt == 0 else 2 * need
            attempt += 1
            rounds += 1
            start = _start_points(count, rng, starts, low, high)
            say(f"boundary search, round {attempt}: {count} points")
            start_logits = surrogate.scores(start)
            source, target_labels = _choose_labels(start_logits, settings.label, rng)
            tick = time.perf_counter()
            outcome = strategy.run(surrogate.logits, start, source, target_labels, low, high, progress=progress)
            search_seconds += time.perf_counter() - tick
            searched += count
            unconverged += int((~outcome.converged).sum())
            candidates = np.flatnonzero(outcome.converged)
            hits.append(outcome.hit_rate)
            true_labels = target.predict(outcome.points[candidates]) if len(candidates) else np.zeros(0, np.int64)
            proposed = surrogate.scores(outcome.points[candidates]).argmax(1)  # the surrogate's own labels
            agrees = true_labels == proposed
            disagreement += int((~agrees).sum())
            accepted = candidates[agrees][:need]
            kept_points.append(outcome.points[accepted])
            kept_labels.append(true_labels[agrees][:need])
            iterations.extend(int(i) for i in outcome.iterations[accepted])
        points = np.concatenate(kept_points) if kept_points else np.zeros((0, *spec.sample_shape), np.float32)
        return points, np.concatenate(kept_labels) if kept_labels else np.zeros(0, np.int64)

    screening_record = ""
    screening_seconds = 0.0
    balanced = ""
    if unique:
        points, labels, record, screening_seconds = _screened(
            settings, k, surrogate, target, data, reference_paths, low, high, rng, say
        )
        screening_record = json.dumps(record, sort_keys=True)
        search_seconds = screening_seconds
        searched = int(record["searched"])
        hits.append(record["pool"] / max(searched, 1))
        iterations.append(UNIQUE_ITERATIONS)
    else:
        points, labels = collect(search, settings.n, init_data)
        if num_classes == 2 and len(points) >= 2 and len(set(labels.tolist())) == 1:
            # A binary model labels every random start alike, so every point says the same class and any
            # model that answers that class everywhere would match. Keep half, and search the other half
            # back across the boundary from those points (j is then the other class).
            half = len(points) // 2
            back_points, back_labels = collect(search, half, points[: len(points) - half])
            if len(back_points):
                points = np.concatenate([points[: len(points) - len(back_points)], back_points])
                labels = np.concatenate([labels[: len(labels) - len(back_labels)], back_labels])
                balanced = f"{len(back_points)} of {len(points)} points searched back across the boundary"
    if len(points) == 0:
        raise SearchError(
            f"no point reached the boundary margin k={k} within {settings.max_iterations} "
            "iterations; lower --k, raise --max-iterations, or widen --domain"
        )
    if not (target.predict(points) == labels).all():  # effectiveness (Section 3.3): must match itself
        raise SearchError(f"onnxruntime gives unstable labels on {target.name}; rerun with --providers cpu")

    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "created_at": created_at(),
        "method": settings.method,
        "epsilon": repr(settings.epsilon),
        "hit_rate": f"{np.mean(hits):.3f}",
        "target_file": target.name,
        "target_sha256": target_sha256,
        "input_name": spec.name,
        "input_shape": json.dumps(list(spec.sample_shape)),
        "input_shape_source": spec.shape_source,
        "input_layout": spec.layout,
        "input_dtype": spec.dtype,
        "output_name": target.output_spec.name,
        "output_kind": target.output_spec.kind,
        "output_chosen_because": target.output_spec.chosen_because,
        "search_scores": _SEARCH_SCORES[target.output_spec.kind],
        "num_classes": str(num_classes),
        "class_names": json.dumps(list(settings.class_names)) if settings.class_names else "",
        "domain": "per-feature from data"
        if settings.domain == "data"
        else f"{settings.domain[0]},{settings.domain[1]}",
        "k": repr(k),
        "init": ("data" if data is not None else "random") if unique else settings.init,
        "label": "random" if unique else settings.label,
        "variant": "IPGuard-unique" if unique else f"{_METHOD_NAMES[settings.method]}-{settings.suffix}",
        "seed": str(settings.seed),
        "max_iterations": str(settings.max_iterations),
        "learning_rate": repr(settings.learning_rate),
        "n_requested": str(settings.n),
        "n_points": str(len(points)),
        "data_sha256": _file_digest(Path(data_path)) if data_path is not None else "",
        "threshold": repr(settings.threshold),
        "null_agreement": repr(UNIQUE_NULL_AGREEMENT if unique else DEFAULT_NULL_AGREEMENT),
        "null_agreement_source": "default for "
        + ("--unique" if unique else "the paper's search")
        + ": above every independent model measured on the benchmark zoos (see README); calibrate to measure yours",
        "preprocessing": settings.preprocessing.to_json(),
        "surrogate": surrogate.conversion.summary,
        "surrogate_converter": surrogate.conversion.converter,
        "surrogate_prepass": surrogate.conversion.prepass,
        "surrogate_attempts_passed_over": json.dumps(list(surrogate.conversion.failed_attempts)),
        "parity_max_abs_difference": f"{parity.max_abs_difference:.3e}",
        "candidates_searched": str(searched),
        "dropped_unconverged": str(unconverged),
        "dropped_disagreement": str(disagreement),
        "mean_iterations": f"{np.mean(iterations):.2f}",
        "screening": screening_record,
        "binary_balance": balanced,
        "screening_seconds": f"{screening_seconds:.2f}",
    }
    tensors: dict[str, np.ndarray] = {"points": points, "labels": labels, "domain_low": low, "domain_high": high}
    signer = save_bundle(Path(output_path), tensors, metadata, signing_key)
    return FingerprintResult(
        bundle_path=Path(output_path),
        target=target.name,
        target_sha256=target_sha256,
        points=len(points),
        requested=settings.n,
        candidates_searched=searched,
        dropped_unconverged=unconverged,
        dropped_disagreement=disagreement,
        rounds=rounds,
        mean_iterations=float(np.mean(iterations)),
        search_seconds=search_seconds,
        total_seconds=time.perf_counter() - started,
        parity=parity,
        signer_key_id=signer,
        providers=target.providers,
        settings=settings,
        screening_seconds=screening_seconds,
        variant=metadata["variant"],
        k=k,
        screening=screening_record,
        conversion=surrogate.conversion,
        input_shape=spec.sample_shape,
        input_shape_source=spec.shape_source,
        output_name=target.output_spec.name,
        output_chosen_because=target.output_spec.chosen_because,
    )


_SEARCH_SCORES = {
    "logits": "logits",
    "probabilities": "log-probabilities",
    "probability-maps": "log-probabilities",
    "binary-logit": "(-z, z) of the single logit z",
    "binary-probability": "(-z, z), z = logit of the sigmoid output",
    "labels": "none",
}


UNIQUE_ITERATIONS = 300


def _screened(
    settings: FingerprintSettings,
    k: float,
    surrogate: Surrogate,
    target: OnnxClassifier,
    data: FloatArray | None,
    reference_paths: Sequence[str | os.PathLike[str]],
    low: FloatArray,
    high: FloatArray,
    rng: np.random.Generator,
    say: StatusCallback,
) -> tuple[FloatArray, LabelArray, dict[str, Any], float]:
    """Conferrable search over a ``pool_factor · n`` pool, screened by the panel (``screening``).

    Returns points, labels, the record to sign, and the seconds spent.
    """

    from .audit import as_classifier
    from .screening import REFERENCE_MARGIN, build_panel, conferrable_search, margin_scale, screen

    started = time.perf_counter()
    supplied = [as_classifier(Path(path), providers=settings.providers) for path in reference_paths]
    if data is None and not supplied:
        raise UsageError(
            "--unique needs owner data (--data) to train references, or models to compare with (--reference)"
        )
    data_labels = target.predict(data) if data is not None else None
    say("--unique: training the panel of owner-made copies and references")
    panel = build_panel(
        surrogate.score_module, data, data_labels, references=settings.references if data is not None else 0,
        seed=settings.seed, supplied=supplied,
    )  # fmt: skip
    build_seconds = time.perf_counter() - started
    say("--unique: conferrable search")
    scale = margin_scale(surrogate.scores(data if data is not None else _start_points(256, rng, None, low, high)))
    pool_points: list[FloatArray] = []
    pool_labels: list[LabelArray] = []
    searched = 0
    for _ in range(settings.max_rounds):
        wanted = settings.pool_factor * settings.n - sum(len(p) for p in pool_labels)
        if wanted <= 0:
            break
        start = _start_points(wanted, rng, data, low, high)
        start_logits = surrogate.scores(start)
        _, j = _choose_labels(start_logits, "random", rng)  # measured: random j beats least-likely here
        found = conferrable_search(
            surrogate.logits, panel, start, j, low, high, k=k, iterations=UNIQUE_ITERATIONS,
            learning_rate=settings.learning_rate,
        )  # fmt: skip
        searched += wanted
        proposed = surrogate.scores(found).argmax(1)
        labels = target.predict(found)
        keep = (labels == j) & (proposed == labels)  # reached j, and onnxruntime agrees with the surrogate
        pool_points.append(found[keep])
        pool_labels.append(labels[keep])
    points, labels = np.concatenate(pool_points), np.concatenate(pool_labels)
    chosen, disagreement, agreement = screen(points, labels, panel, settings.n)
    record: dict[str, Any] = {
        "search": "conferrable (target and positives to j by margin k, references away from j)",
        "pool": len(points),
        "searched": searched,
        "iterations": UNIQUE_ITERATIONS,
        "k": round(k, 6),
        "reference_margin": round(REFERENCE_MARGIN * k, 6),
        "median_margin": round(scale, 6),
        "starts": "data" if data is not None else "random",
        "reference_disagreement": round(disagreement, 4),
        "positive_agreement": round(agreement, 4),
        "panel_seconds": round(build_seconds, 2),
        "panel": [
            {"name": m.name, "role": m.role, "how": m.how, "digest": m.digest}
            | ({"agreement_with_target": round(m.agreement, 4)} if m.agreement is not None else {})
            for m in panel
        ],
    }
    return points[chosen], labels[chosen], record, time.perf_counter() - started


def created_at() -> str:
    """UTC creation time; SOURCE_DATE_EPOCH pins it so a seeded run gives a byte-identical bundle."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_digest(path: Path) -> str:
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(item.relative_to(path)).encode() + b"\0" + item.read_bytes())
        return digest.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()
