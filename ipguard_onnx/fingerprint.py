"""Fingerprint: the paper's steps in order (Section 4) — open the target, convert a surrogate and check
its parity, search candidates on it, keep those onnxruntime labels the same way, sign the bundle."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import requirements
from .bundle import FingerprintRecord, SearchRecord, reproducible, save_bundle
from .data import data_sample_shape, load_labels, load_points, named_shapes
from .errors import SearchError, SurrogateError, UnsupportedModelError, UsageError
from .fingerprint_settings import (
    DEFAULT_K,
    GRADIENT_FREE_DEFAULT_K,
    NO_GRADIENT_DEFAULT_K,
    PARITY_POINTS,
    UNIQUE_DEFAULT_K,
    BuiltPart,
    FingerprintResult,
    FingerprintSettings,
    search_chosen_because,
    uses_unique,
)
from .models import OnnxClassifier, OnnxSuspect, integer_ranges, label_indices, non_differentiable_ops
from .parts import (
    MIN_PART_POINTS,
    PART_KINDS,
    MadePart,
    SearchTally,
    Workshop,
    calibrated,
    calibration_references,
    why_uncalibrated,
)
from .parts.compose import bundle_parts, checked, compose, without_weak_parts
from .search import (
    STRATEGIES,
    BoundaryWalk,
    ConferrableSearch,
    GradientSearch,
    ProgressCallback,
    TargetLabelRule,
    start_points,
)
from .stats import DEFAULT_NULL_AGREEMENT, UNIQUE_NULL_AGREEMENT
from .surrogate import StatusCallback, Surrogate
from .types import FloatArray, LabelArray

__all__ = ["FingerprintResult", "FingerprintSettings", "fingerprint", "uses_unique"]


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
    low, high, domain_text = _bounds(settings, target, data)
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
    audit_labels = _audit_view(target, settings)
    deadline = time.monotonic() + settings.time_budget
    shop = Workshop(
        target,
        settings,
        audit_labels,
        data,
        truth,
        rng,
        low,
        high,
        surrogate,
        why_gradient_free,
        k,
        unique,
        reference_paths,
        progress,
        say,
        deadline=deadline,
    )
    plan, skipped = compose(settings, shop)
    built: list[tuple[MadePart, str]] = []
    for kind, wanted, why in plan:
        part = checked(PART_KINDS[kind]().make(shop, wanted), shop)
        if spec.packing is not None:  # integer inputs are fed rounded: the evidence is what was fed
            part = replace(part, points=spec.packing.whole_numbers(part.points))
        asked = settings.parts is not None or kind == "boundary" or (kind == "mistakes" and settings.mistakes)
        if len(part.points) < (1 if asked else MIN_PART_POINTS):
            skipped.append(f"{kind}: only {len(part.points)} point(s) found (fewer than {MIN_PART_POINTS})")
            continue
        if len(part.points):
            built.append((part, why))
    if not built:
        if shop.tally.stopped:
            raise SearchError(f"no fingerprint point was found before the search ended: {shop.tally.stopped}")
        budget = "on the way to anchors of other classes" if surrogate is None else f"within {settings.max_iterations}"
        raise SearchError(
            f"no point reached the boundary margin k={k} {budget} iterations; lower --k, raise --max-iterations, "
            "or widen --domain"
            if surrogate is not None
            else f"no point reached the boundary margin k={k} {budget}; lower --k, or pass owner data (--data)"
        )
    uncalibrated = why_uncalibrated(shop)
    calibration = ""
    if uncalibrated is None:
        references = calibration_references(shop)
        built = [(calibrated(part, references), why) for part, why in built]
        calibration = json.dumps({"self_calibration": [{"name": r.name, "how": r.how} for r in references]})
    else:
        advice = f" ({uncalibrated}); calibrate with independent models or fingerprint with --data"
        built = [(replace(part, null_agreement_source=part.null_agreement_source + advice), why) for part, why in built]
    named = frozenset(settings.parts or ()) | ({"mistakes"} if settings.mistakes is not None else set())
    built, weak = without_weak_parts(built, settings.false_accusation_rate, named)
    skipped.extend(weak)
    points = np.concatenate([part.points for part, _ in built])
    labels = np.concatenate([part.labels for part, _ in built])
    parts = bundle_parts(built)
    if target.num_classes is None:  # labels only: the classes named, else the largest label seen
        seen = [int(labels.max())] + ([int(audit_labels(data[:1024]).max())] if data is not None else [])
        target = target.with_classes(len(settings.class_names) if settings.class_names else max(seen) + 1)
    tally = shop.tally
    chosen_because = search_chosen_because(settings, unique, surrogate.parity if surrogate else None, why_gradient_free)
    details = {key: value for part, _ in built for key, value in part.details.items()}
    unique_record: dict[str, Any] = details.get("unique", {})
    balance = str(details.get("balance", ""))
    mistakes_count = sum(part.points for part in parts if part.kind == "mistakes")
    unique_seconds = float(unique_record.pop("seconds", 0.0))
    record = replace(
        _record(
            settings,
            target,
            surrogate,
            tally,
            data_path,
            k,
            unique,
            len(points),
            unique_record,
            balance,
            unique_seconds,
            why_gradient_free,
            mistakes_count,
            domain_text,
            chosen_because,
        ),
        parts=parts,
        null_agreement=parts[0].null_agreement,
        null_agreement_source=parts[0].null_agreement_source,
        false_accusation_rate=settings.false_accusation_rate,
        calibration=calibration,
    )
    tensors: dict[str, np.ndarray] = {"points": points, "labels": labels, "domain_low": low, "domain_high": high}
    signer = save_bundle(Path(output_path), tensors, record, signing_key)
    return FingerprintResult(
        bundle_path=Path(output_path),
        target=target.name,
        target_sha256=target.sha256 or "",
        points=len(points),
        requested=settings.n,
        candidates_searched=tally.searched,
        dropped_unconverged=tally.unconverged,
        dropped_disagreement=tally.disagreement,
        rounds=tally.rounds,
        mean_iterations=tally.mean_iterations,
        search_seconds=unique_seconds if unique else tally.seconds,
        total_seconds=time.perf_counter() - started,
        parity=surrogate.parity if surrogate else None,
        signer_key_id=signer,
        providers=target.providers,
        settings=settings,
        unique_seconds=unique_seconds,
        variant=record.variant,
        k=k,
        unique=record.search.unique if record.search else "",
        conversion=surrogate.conversion if surrogate else None,
        gradient_free_reason=why_gradient_free,
        queries=tally.queries,
        mistakes=mistakes_count,
        parts=tuple(
            BuiltPart(part.kind, part.points, part.null_agreement, part.null_agreement_source, part.how, why)
            for part, (_, why) in zip(parts, built, strict=True)
        ),
        parts_skipped=tuple(skipped),
        uncalibrated=uncalibrated or "",
        search_stopped=tally.stopped,
        shortfall=tally.shortfall(len(points), settings.n, "--data" if data is not None else f"--domain {domain_text}"),
        input_shape=spec.sample_shape,
        input_shape_source=spec.shape_source,
        output_name=target.output_spec.name,
        output_chosen_because=target.output_spec.chosen_because,
        search_chosen_because=chosen_because,
    )


def _map_class_names(settings: FingerprintSettings, target: OnnxClassifier) -> FingerprintSettings:
    """Probability maps (ZipMap) keyed by classes other than 0..C−1 (e.g. 1..10, or names): their keys
    become the class names, so that an audit, which reads a suspect's key, finds the index the search used
    (the key's place in the sorted keys)."""
    keys = target.map_classes
    if settings.class_names or not keys or list(keys) == list(range(len(keys))):
        return settings
    return replace(settings, class_names=tuple(str(key) for key in keys))


def _open_target(
    model_path: str | os.PathLike[str],
    settings: FingerprintSettings,
    data_path: str | os.PathLike[str] | None,
    say: StatusCallback,
) -> tuple[OnnxClassifier, FloatArray | None]:
    """The target in onnxruntime with its input shape resolved (``--input-shape``, else ``--data``), and the data."""
    say("loading the model in onnxruntime")
    target = OnnxClassifier(
        model_path,
        providers=settings.providers,
        allow_spinning=False,
        input_shape=settings.input_shape,
        output_name=settings.output_name,
        input_shapes=dict(settings.input_shapes),
        holds=dict(settings.holds),
        batch_axis=settings.batch_axis,
        class_axis=settings.class_axis,
        position=settings.position,
        data_shapes=named_shapes(Path(data_path)) if data_path is not None else None,
    )
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
    target: OnnxClassifier,
    settings: FingerprintSettings,
    data: FloatArray | None,
    data_path: str | os.PathLike[str] | None,
) -> LabelArray | None:
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
        view = OnnxSuspect(
            target.path if target.path is not None else target.session,
            providers=settings.providers,
            allow_spinning=False,
            input_shape=target.input_spec.sample_shape,
            num_classes=target.num_classes,
            packing=target.input_spec.packing,
        )
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


DEFAULT_DOMAIN = (0.0, 1.0)
"""Bounds of the random starts and anchors where ``--domain`` is not given (integer inputs: see ``_bounds``)."""


def _bounds(
    settings: FingerprintSettings, target: OnnxClassifier, data: FloatArray | None
) -> tuple[FloatArray, FloatArray, str]:
    """The input domain as per-value bounds, and how to say it (signed in the record). Without ``--domain``,
    integer inputs (bytes, token ids) take the ids their graph reads — an embedding's rows, a one-hot's
    depth — where it says (``models.integer_ranges``): [0, 1] would feed ids 0 and 1 only."""
    spec = target.input_spec
    if settings.domain == "data":
        if data is None:
            raise UsageError("--domain data needs --data FILE to derive per-feature bounds from")
        return data.min(axis=0).astype(np.float32), data.max(axis=0).astype(np.float32), "per-feature from data"
    given = settings.domain if settings.domain is not None else DEFAULT_DOMAIN
    low = np.full(spec.sample_shape, given[0], dtype=np.float32)
    high = np.full(spec.sample_shape, given[1], dtype=np.float32)
    text = f"{given[0]:g},{given[1]:g}"
    if settings.domain is not None or target.path is None:
        return low, high, text
    inputs = spec.packing.data if spec.packing is not None else (None,)
    if not any(value.integer for value in inputs if value is not None) and not spec.integer:
        return low, high, text
    ranges = integer_ranges(target.path)
    said, flat_low, flat_high, start = [], low.reshape(-1), high.reshape(-1), 0
    for value in inputs:
        name, size = (spec.name, flat_low.size) if value is None else (value.name, value.size)
        if name in ranges and (value is None or value.integer):
            first, last, how = ranges[name]
            flat_low[start : start + size], flat_high[start : start + size] = first, last
            said.append(f"{name!r} {first}..{last} ({how})")
        start += size
    if said:
        text += "; integer ids as the graph reads them: " + ", ".join(said)
    return low, high, text


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
    if target.output_spec.heads:
        heads = ", ".join(repr(name) for name in target.output_spec.heads)
        return (
            f"reads several heads jointly ({heads})",
            f"{len(target.output_spec.heads)} heads read jointly ({heads}): a surrogate reads one",
        )
    if spec.packing is not None:
        names = ", ".join(f"{value.name!r} {value.role}" for value in spec.packing.inputs)
        return (
            f"takes several inputs ({names})",
            f"several inputs ({names}): the surrogate reads one; the search asks onnxruntime",
        )
    if spec.integer:
        return (
            f"takes {spec.dtype} input (bytes or token ids: no gradient)",
            f"input {spec.name!r} is {spec.dtype}: no gradient, points are whole numbers",
        )
    if target.output_spec.kind == "labels":
        return (
            "answers with labels only",
            f"{target.output_spec.name!r} gives labels only, no class scores: decision-based",
        )
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


def _record(
    settings: FingerprintSettings,
    target: OnnxClassifier,
    surrogate: Surrogate | None,
    tally: SearchTally,
    data_path: str | os.PathLike[str] | None,
    k: float,
    unique: bool,
    points: int,
    unique_record: dict[str, Any],
    balance: str,
    seconds: float,
    why_gradient_free: str,
    mistakes: int,
    domain_text: str,
    chosen_because: str,
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
        inputs=spec.packing.inputs if spec.packing is not None else (),
        output_name=",".join(output.heads) if output.heads else output.name,
        output_kind=output.kind,
        output_site=output.site,
        batch_axis=settings.batch_axis,
        class_axis=settings.class_axis,
        position=settings.position,
        num_classes=target.num_classes or 0,
        class_names=settings.class_names,
        method=settings.method,
        variant="AKH-mistakes"
        if settings.mistakes == 1.0
        else _variant(settings, unique, gradient_free=surrogate is None) + ("+mistakes" if mistakes else ""),
        threshold=settings.threshold,
        domain=domain_text,
        null_agreement=UNIQUE_NULL_AGREEMENT if unique else DEFAULT_NULL_AGREEMENT,
        null_agreement_source=f"default for {source}: above every independent model measured on the benchmark "
        "zoos (docs/guides/verdict.md); calibrate to measure yours",
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
            unique=json.dumps(unique_record, sort_keys=True) if unique_record else "",
            unique_seconds=round(seconds, 2),
            binary_balance=balance,
            gradient_free_reason=why_gradient_free,
            queries=tally.queries,
            mistakes=mistakes,
            seconds_per_100_points=0.0
            if surrogate is not None or reproducible()
            else round(100 * tally.seconds / max(points, 1), 3),
            search_chosen_because=chosen_because,
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
