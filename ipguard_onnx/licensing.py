"""Active protection: a traceable copy per licensee (after Xue et al., TrustCom 2020, "user fingerprints").

``issue`` fine-tunes the surrogate so that a secret, licensee-specific *trigger set* — owner inputs
stamped with a licensee pattern — maps to licensee-specific labels, while clean inputs keep the original
model's labels; exports the result to ONNX, checks parity with onnxruntime, and stores the trigger set
as a signed bundle in the registry. Everything secret derives from HMAC(owner key, model, licensee):
without the owner's private key the pattern and the labels cannot be guessed, and issuing again with
the same key gives the same triggers.

* pattern: ``PATTERN_FRACTION`` of the input positions, each set to the domain bound farthest from the
  owner data's mean there (so clean inputs rarely look stamped);
* labels: a secret derangement π of the classes (π(c) ≠ c): a stamped input of original label c must
  be answered π(c) — learnable by the network, and about 1/C likely per point for any other model;
* the registry's triggers are stamped *held-out* inputs (never trained on), so passing them shows the
  behaviour generalises rather than memorised points.

The registry bundle is an ordinary fingerprint bundle (points = triggers, labels = π labels) with
``kind = licensee``: ``audit --licensees DIR`` queries suspects with every licensee's triggers.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import os
import re
import time
import warnings
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import requirements
from .bundle import FingerprintRecord, LicenceRecord, save_bundle
from .data import load_labels, load_points
from .errors import SurrogateError, UsageError
from .models import OnnxClassifier
from .stats import threshold_for
from .surrogate import Surrogate, parity_report, scores_of
from .types import FloatArray, LabelArray

if TYPE_CHECKING:
    from torch import nn

PATTERN_FRACTION = 0.1
HELD_OUT_FRACTION = 0.2
TRIGGER_GOAL = 0.99
"""Fine-tuning stops once held-out triggers reach this accuracy and clean agreement stays above it."""
LICENSEE_FALSE_ACCUSATION_RATE = 1e-6
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class IssuedCopy:
    """One licensee's copy: where it is, how well it keeps the model, and how well it is marked."""

    licensee: str
    model_path: Path
    registry_bundle: Path
    triggers: int
    trigger_accuracy: float
    """Share of the registry triggers the issued ONNX copy answers with the licensee's labels (onnxruntime)."""
    original_trigger_agreement: float
    """The same share for the original model (what an unmarked model does by chance)."""
    clean_agreement: float
    """Issued vs original labels on the held-out owner data."""
    clean_accuracy_before: float | None
    clean_accuracy_after: float | None
    threshold: float
    null_agreement: float
    epochs: int
    parity_max_abs_difference: float
    seconds: float
    signer_key_id: str
    model_sha256: str

    @property
    def accuracy_change(self) -> float | None:
        """Clean accuracy after minus before, in points (None without labels)."""
        if self.clean_accuracy_before is None or self.clean_accuracy_after is None:
            return None
        return 100.0 * (self.clean_accuracy_after - self.clean_accuracy_before)


def check_licensee_name(licensee: str) -> None:
    """A licensee name names files: letters, digits, '.', '_', '-' only, so it cannot leave the registry."""
    if not _NAME.match(licensee):
        raise UsageError(
            f"--licensee {licensee!r}: use 1–64 letters, digits, '.', '_' or '-' (it names the registry file)"
        )


def _secret(key: Ed25519PrivateKey, model_sha256: str, licensee: str) -> bytes:
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    message = b"ipguard-onnx licensee v1\x00" + model_sha256.encode() + b"\x00" + licensee.encode()
    return hmac.new(raw, message, hashlib.sha256).digest()


def licensee_pattern(
    secret: bytes,
    sample_shape: tuple[int, ...],
    low: FloatArray,
    high: FloatArray,
    classes: int,
    typical: FloatArray | None = None,
) -> tuple[np.ndarray, FloatArray, LabelArray]:
    """(mask, stamp values, derangement π) drawn from the licensee's secret.

    Each stamped position takes the bound *farthest* from ``typical`` (the owner data's mean there), so
    clean inputs rarely look stamped; without ``typical`` the bound is drawn at random.
    """
    rng = np.random.default_rng(np.frombuffer(secret, dtype=np.uint32))
    size = int(np.prod(sample_shape))
    chosen = rng.choice(size, size=max(4, int(round(PATTERN_FRACTION * size))), replace=False)
    mask = np.zeros(size, dtype=bool)
    mask[chosen] = True
    coin = rng.random(size) < 0.5
    if typical is not None:
        coin = typical.reshape(-1) > (low.reshape(-1) + high.reshape(-1)) / 2
    values = np.where(coin, low.reshape(-1), high.reshape(-1)).astype(np.float32)
    while True:  # a derangement: no class keeps its label
        permutation = rng.permutation(classes)
        if classes < 2 or not (permutation == np.arange(classes)).any():
            break
    return mask.reshape(sample_shape), values.reshape(sample_shape), permutation.astype(np.int64)


def stamp(inputs: FloatArray, mask: np.ndarray, values: FloatArray) -> FloatArray:
    """Inputs with the licensee pattern written over them."""
    return np.where(mask[None], values[None], inputs).astype(np.float32)


def _labels(module: nn.Module, x: FloatArray, probabilities: bool) -> LabelArray:
    import torch

    with torch.no_grad():
        labels: LabelArray = (
            scores_of(module, torch.from_numpy(x), probabilities=probabilities).argmax(1).numpy().astype(np.int64)
        )
    return labels


def _fine_tune(
    module: nn.Module,
    teacher: nn.Module,
    keep: FloatArray,
    stamped: FloatArray,
    stamped_labels: LabelArray,
    check: tuple[FloatArray, LabelArray, FloatArray, LabelArray],
    *,
    probabilities: bool,
    seed: int,
    max_epochs: int,
    learning_rate: float = 1e-3,
    batch_size: int = 64,
) -> int:
    """Teach the licensee triggers while keeping the original's scores.

    Per step: cross-entropy of stamped inputs to the licensee labels, plus the squared difference to the
    original model's scores on ``keep`` (owner data, uniform inputs and boundary points), so clean labels
    *and* the boundary IPGuard fingerprints rely on stay put. Stops once the held-out triggers pass and
    clean agreement holds (``TRIGGER_GOAL``); returns the epochs used.
    """
    import torch
    from torch import nn as tnn

    torch.manual_seed(seed)
    parameters = list(module.parameters())
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    anchors = torch.from_numpy(keep)
    with torch.no_grad():
        targets = scores_of(teacher, anchors, probabilities=probabilities)
    xs, ys = torch.from_numpy(stamped), torch.from_numpy(stamped_labels)
    held_clean, held_clean_labels, held_triggers, held_trigger_labels = check
    epochs = 0
    while epochs < max_epochs:
        epochs += 1
        module.train()
        order = torch.randperm(len(anchors))
        trigger_order = torch.randperm(len(xs))
        steps = -(-len(anchors) // batch_size)
        for step in range(steps):
            batch = order[step * batch_size : (step + 1) * batch_size]
            trigger_batch = trigger_order[(step * batch_size) % len(xs) :][:batch_size]
            optimizer.zero_grad()
            loss = tnn.functional.mse_loss(
                scores_of(module, anchors[batch], probabilities=probabilities), targets[batch]
            )
            loss = loss + tnn.functional.cross_entropy(
                scores_of(module, xs[trigger_batch], probabilities=probabilities), ys[trigger_batch]
            )
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        module.eval()
        triggers_ok = (_labels(module, held_triggers, probabilities) == held_trigger_labels).mean()
        clean_ok = (_labels(module, held_clean, probabilities) == held_clean_labels).mean()
        if triggers_ok >= TRIGGER_GOAL and clean_ok >= TRIGGER_GOAL:
            break
    for parameter in parameters:
        parameter.requires_grad_(False)
    return epochs


def _keep_set(surrogate: Surrogate, x: FloatArray, low: FloatArray, high: FloatArray, seed: int) -> FloatArray:
    """Where the copy must keep the original's scores: owner data, uniform inputs, and IPGuard boundary
    points from both kinds of start (so passive fingerprints of the original still match the copy)."""
    from .search import IPGuardSearch, TargetLabelRule, choose_labels, start_points

    rng = np.random.default_rng(seed)
    uniform = start_points(len(x), rng, None, low, high)
    parts = [x, uniform]
    for starts in (uniform[:256], start_points(256, rng, x, low, high)):
        source, target = choose_labels(surrogate.scores(starts), TargetLabelRule.random, rng)
        for k in (1.0, 3.0):
            search = IPGuardSearch(k=k, max_iterations=300)
            parts.append(search.run(surrogate.scores_tensor, starts, source, target, low, high).points)
    return np.concatenate(parts).astype(np.float32)


MAX_EPOCHS = 10_000
"""The most fine-tuning epochs ``issue`` runs (it stops earlier once the triggers are learnt)."""


def check_issue_counts(triggers: int, max_epochs: int) -> None:
    """At least 10 triggers (fewer cannot reach the registry's false-accusation rate) and one epoch (none
    would register a copy that does not answer its triggers)."""
    if triggers < 10:
        raise UsageError(f"--triggers must be at least 10, got {triggers}")
    if not 1 <= max_epochs <= MAX_EPOCHS:
        raise UsageError(f"--max-epochs must lie in 1..{MAX_EPOCHS:,}, got {max_epochs}")


def is_onnx_model(path: Path) -> bool:
    """Whether ``path`` parses as an ONNX model (what ``issue --output`` may replace)."""
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception:  # any parse failure means: not a model
        return False
    return True


def _export(module: nn.Module, sample: FloatArray, path: Path, input_name: str) -> None:
    """ONNX export of the fine-tuned surrogate (TorchScript exporter: onnx2pytorch modules do not
    pass torch.export), dynamic batch axis; parity is checked by the caller."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.from_numpy(sample),),
            str(path),
            dynamo=False,
            input_names=[input_name],
            output_names=["scores"],
            dynamic_axes={input_name: {0: "batch"}, "scores": {0: "batch"}},
        )


def issue(
    model_path: str | os.PathLike[str],
    *,
    licensee: str,
    data_path: str | os.PathLike[str],
    registry: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    signing_key: Ed25519PrivateKey,
    triggers: int = 100,
    max_epochs: int = 30,
    domain: tuple[float, float] = (0.0, 1.0),
    providers: str = "auto",
    force: bool = False,
) -> IssuedCopy:
    """Issue ``licensee`` a marked copy of the ONNX model and register its signed trigger set."""
    requirements.surrogate_converter()  # before anything is read or written: names [fingerprint] if missing
    import torch

    started = time.perf_counter()
    check_licensee_name(licensee)
    check_issue_counts(triggers, max_epochs)
    registry = Path(registry)
    registry_bundle = registry / f"{licensee}.licensee.safetensors"
    if registry_bundle.exists() and not force:
        raise UsageError(f"{registry_bundle} exists: {licensee} already holds a copy (pass --force to re-issue)")
    original = OnnxClassifier(model_path, providers=providers, allow_spinning=False)
    spec = original.input_spec
    classes = original.num_classes or 0
    if classes < 2:
        raise UsageError(f"{original.name} has {classes} classes; licensee labels need at least 2")
    x = load_points(Path(data_path), spec)
    given_labels = load_labels(Path(data_path), len(x))
    if len(x) < 5 * triggers // 4:
        raise UsageError(
            f"--data holds {len(x)} samples; issuing {triggers} held-out triggers needs at least {5 * triggers // 4}"
        )
    surrogate = Surrogate(original)
    probabilities = original.output_spec.kind == "probabilities"
    low = np.full(spec.sample_shape, domain[0], np.float32)
    high = np.full(spec.sample_shape, domain[1], np.float32)
    secret = _secret(signing_key, original.sha256 or "", licensee)
    mask, values, derangement = licensee_pattern(secret, spec.sample_shape, low, high, classes, x.mean(axis=0))

    order = np.random.default_rng(np.frombuffer(secret[16:], dtype=np.uint32)).permutation(len(x))
    held_count = max(triggers, int(HELD_OUT_FRACTION * len(x)))
    held, train = order[:held_count], order[held_count:]
    original_labels = original.predict(x)
    held_triggers = stamp(x[held], mask, values)
    held_trigger_labels = derangement[original_labels[held]]
    module = copy.deepcopy(surrogate.module)
    seed = int.from_bytes(secret[:4], "little")
    epochs = _fine_tune(
        module,
        surrogate.module,
        _keep_set(surrogate, x[train], low, high, seed),
        stamp(x[train], mask, values),
        derangement[original_labels[train]],
        (x[held], original_labels[held], held_triggers, held_trigger_labels),
        probabilities=probabilities,
        seed=seed,
        max_epochs=max_epochs,
    )
    output_path = Path(output_path)
    staging = output_path.with_name(f".{output_path.name}.{os.getpid()}.staging.onnx")
    try:  # the copy replaces --output only once its registry entry is signed: both or neither
        _export(module, x[:2], staging, spec.name)
        issued = OnnxClassifier(staging, providers=providers, allow_spinning=False)
        check = np.concatenate([x[held][:64], held_triggers[:64]])
        with torch.no_grad():
            expected = scores_of(module, torch.from_numpy(check), probabilities=False).numpy()
        parity = parity_report(issued.scores(check), expected)
        if not parity.ok:
            raise SurrogateError(
                f"the exported copy disagrees with the fine-tuned model (max relative difference "
                f"{parity.max_abs_difference:.1e}, labels agree {parity.label_agreement:.1%}); nothing was issued"
            )
        registry_points = held_triggers[:triggers]
        registry_labels = held_trigger_labels[:triggers]
        trigger_accuracy = float((issued.predict(registry_points) == registry_labels).mean())
        original_agreement = float((original.predict(registry_points) == registry_labels).mean())
        clean_agreement = float((issued.predict(x[held]) == original_labels[held]).mean())
        before = after = None
        if given_labels is not None:
            before = float((original_labels[held] == given_labels[held]).mean())
            after = float((issued.predict(x[held]) == given_labels[held]).mean())
        null = round(min(0.5, max(original_agreement, 1.0 / classes) + 0.1), 6)
        threshold = threshold_for(len(registry_points), null, LICENSEE_FALSE_ACCUSATION_RATE)
        if threshold is None:
            raise UsageError(f"{triggers} triggers cannot reach a false-accusation rate of 1e-6; pass more --triggers")
        record = FingerprintRecord(
            kind="licensee",
            target_file=original.name,
            target_sha256=original.sha256 or "",
            input_name=spec.name,
            input_shape=spec.sample_shape,
            input_layout=spec.layout,
            input_dtype=spec.dtype,
            output_name=original.output_spec.name,
            output_kind=original.output_spec.kind,
            num_classes=classes,
            method="licensee triggers (Xue et al. 2020)",
            variant="licensee",
            threshold=min(threshold, 0.9),
            domain=f"{domain[0]},{domain[1]}",
            null_agreement=null,
            null_agreement_source=f"original model answers {original_agreement:.2%} of the triggers with these "
            "labels; q0 = max(that, 1/classes) + 0.1, at most 0.5",
            licence=LicenceRecord(
                licensee=licensee,
                issued_file=output_path.name,
                issued_sha256=issued.sha256 or "",
                triggers=len(registry_points),
                pattern_fraction=PATTERN_FRACTION,
                trigger_accuracy=round(trigger_accuracy, 4),
                clean_agreement=round(clean_agreement, 4),
                epochs=epochs,
            ),
        )
        tensors: dict[str, npt.NDArray[np.generic]] = {
            "points": registry_points,
            "labels": registry_labels,
            "domain_low": low,
            "domain_high": high,
        }
        signer = save_bundle(registry_bundle, tensors, record, signing_key)
        os.replace(staging, output_path)
    finally:
        staging.unlink(missing_ok=True)
    return IssuedCopy(
        licensee=licensee,
        model_path=output_path,
        registry_bundle=registry_bundle,
        triggers=len(registry_points),
        trigger_accuracy=trigger_accuracy,
        original_trigger_agreement=original_agreement,
        clean_agreement=clean_agreement,
        clean_accuracy_before=before,
        clean_accuracy_after=after,
        threshold=min(threshold, 0.9),
        null_agreement=null,
        epochs=epochs,
        parity_max_abs_difference=parity.max_abs_difference,
        seconds=time.perf_counter() - started,
        signer_key_id=signer,
        model_sha256=issued.sha256 or "",
    )
