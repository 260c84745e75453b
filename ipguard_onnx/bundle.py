"""The signed fingerprint bundle: one safetensors file of tensors plus str→str metadata.

The signature is Ed25519 over a canonical digest computed here (not over file bytes): every
tensor's name, dtype, shape and bytes, in name order, then every metadata field but the
signature as sorted-key JSON. So it binds everything that shapes a verdict (points, labels,
threshold, k, domain, input layout, target hash) and nothing else can change unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._version import __version__
from .errors import BundleError, SignatureError, UsageError
from .files import check_replaceable, write_atomic
from .keys import key_id, public_key_bytes, verify_signature
from .preprocessing import Preprocessing
from .stats import DEFAULT_FALSE_ACCUSATION_RATE, DEFAULT_NULL_AGREEMENT, MISTAKES_NULL_AGREEMENT
from .text import shown
from .types import FloatArray, GraphInput, InputSpec, LabelArray, Layout, Packing

FORMAT_NAME = "ipguard-onnx-fingerprint"
FORMAT_VERSION = "1"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_CLASSES = 10_000_000
"""The most classes a bundle may declare (extreme classifiers have millions)."""
SIGNATURE_FIELD = "signature"
_DIGEST_DOMAIN = b"ipguard-onnx bundle digest v1\x00"
_TENSORS = {"points": np.float32, "labels": np.int64, "domain_low": np.float32, "domain_high": np.float32}


def canonical_digest(tensors: Mapping[str, npt.NDArray[np.generic]], metadata: Mapping[str, str]) -> bytes:
    """sha256 over sorted tensors (name, dtype, shape, little-endian bytes) and sorted metadata JSON."""
    digest = hashlib.sha256(_DIGEST_DOMAIN)

    def put(chunk: bytes) -> None:
        digest.update(len(chunk).to_bytes(8, "little"))
        digest.update(chunk)

    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        put(name.encode())
        put(little.dtype.str.encode())
        put(json.dumps(list(array.shape)).encode())
        put(little.tobytes())
    unsigned = {key: value for key, value in metadata.items() if key != SIGNATURE_FIELD}
    put(json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode())
    return digest.digest()


# ---------------------------------------------------------------- the typed metadata schema


@dataclass(frozen=True)
class SearchRecord:
    """How the boundary search made a fingerprint's points (``fingerprint``); signed, shown by ``inspect``."""

    k: float
    init: str
    label: str
    seed: int
    max_iterations: int
    learning_rate: float
    epsilon: float
    n_requested: int
    n_points: int
    search_scores: str
    hit_rate: float
    candidates_searched: int
    dropped_unconverged: int
    dropped_disagreement: int
    mean_iterations: float
    parity_max_abs_difference: float
    surrogate: str
    data_sha256: str = ""
    output_chosen_because: str = ""
    surrogate_converter: str = ""
    surrogate_prepass: str = ""
    surrogate_attempts_passed_over: tuple[str, ...] = ()
    unique: str = ""
    """With --unique: the JSON record of the conferrable search and its panel (written ``screening`` before)."""
    unique_seconds: float = 0.0
    binary_balance: str = ""
    gradient_free_reason: str = ""
    """Why the gradient-free search ran ("" where the surrogate's gradient search did)."""
    mistakes: int = 0
    """Points that are the target's own mistakes on labelled owner data (``--mistakes``; AKH-style, issue 14)."""
    queries: int = 0
    """Points the gradient-free search sent to onnxruntime (0 for the gradient search)."""
    seconds_per_100_points: float = 0.0
    """The gradient-free search's time per 100 points (0 for the gradient search, and under SOURCE_DATE_EPOCH)."""
    search_chosen_because: str = ""
    """Which search made the boundary points and why (``fingerprint_settings.search_chosen_because``)."""


@dataclass(frozen=True)
class LicenceRecord:
    """Whose copy a licensee trigger set marks, and how well (``issue``)."""

    licensee: str
    issued_file: str
    issued_sha256: str
    triggers: int
    pattern_fraction: float
    trigger_accuracy: float
    clean_agreement: float
    epochs: int


BundleKind = Literal["fingerprint", "licensee"]
FORMER_KEYS = {"screening": "unique", "screening_seconds": "unique_seconds"}
"""Metadata keys a field was written under before it took its one name: still read (the signature covers
the bytes as written, so an old bundle keeps its keys until it is re-signed)."""
_STAMPED = ("format", "format_version", "tool_version", "created_at")
_SIGNATURE_FIELDS = ("signer_key_id", "signer_public_key", SIGNATURE_FIELD)


@dataclass(frozen=True)
class BundlePart:
    """One evidence part: points ``start:stop`` of one kind, tested on their own against their own q0.

    ``kind`` names the family member that made them (``parts``: boundary, mistakes, students, …; a licensee
    bundle's triggers); ``null_agreement_source`` says where q0 came from; ``how`` what made the points."""

    kind: str
    start: int
    stop: int
    null_agreement: float
    null_agreement_source: str = ""
    how: str = ""

    @property
    def points(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class FingerprintRecord:
    """Everything a bundle says besides its tensors: the one schema of the signed metadata.

    Each field is one str→str metadata entry (ints and floats as text, tuples as JSON lists, empty as
    ""); ``search`` or ``licence`` add their fields flat beside these. ``save_bundle`` stamps the
    format, the tool version and the time; keys a newer writer added survive in ``extra``.

    Only what an audit needs is required (the input, the classes, the threshold): bundles written
    by earlier versions, which said less about how they were made, still load.
    """

    input_name: str
    input_shape: tuple[int, ...]
    input_layout: Layout
    input_dtype: str
    num_classes: int
    threshold: float
    target_file: str = ""
    target_sha256: str = ""
    output_name: str = ""
    output_kind: str = ""
    method: str = ""
    variant: str = ""
    domain: str = ""
    null_agreement: float | None = None
    """q0; None: ``stats.DEFAULT_NULL_AGREEMENT``."""
    null_agreement_source: str = ""
    mistakes_null_agreement: float | None = None
    """q0 of the target's-mistakes part (``--mistakes`` with a search); None: ``stats.MISTAKES_NULL_AGREEMENT``."""
    class_names: tuple[str, ...] = ()
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    input_shape_source: str = ""
    parts: tuple[BundlePart, ...] = ()
    """The evidence parts, in point order (empty in bundles before issue 24: ``Bundle.parts`` derives them)."""
    output_site: str = ""
    """How a sample's label is read from the output (batch axis, class axis, positions averaged)."""
    batch_axis: int | None = None
    """``--batch-axis`` as the owner gave it (suspects are read the same way); None: measured by running."""
    class_axis: int | None = None
    """``--class-axis`` as the owner gave it (suspects are read the same way); None: the last."""
    position: str = ""
    """``--position``: which position of a per-position output labels a sample ("" the middle one)."""
    inputs: tuple[GraphInput, ...] = ()
    """A model of several inputs (issue 25): how each point feeds them (``types.Packing``); empty: one input."""
    false_accusation_rate: float | None = None
    """α of the default verdict (match when the combined p-value ≤ α); None: ``stats.DEFAULT_FALSE_ACCUSATION_RATE``."""
    calibration: str = ""
    """Set by ``calibrate``: the JSON record of the independent models measured."""
    kind: BundleKind = "fingerprint"
    search: SearchRecord | None = None
    licence: LicenceRecord | None = None
    tool_version: str = ""
    created_at: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def suspect_output(self, asked: str | None) -> str | None:
        """The output a suspect is read through: ``asked`` (``--output-name``), else the heads the fingerprint
        read jointly (``a,b,c``), else None (chosen by the suspect's adapter)."""
        return asked if asked is not None or "," not in self.output_name else self.output_name

    @property
    def output_axes(self) -> tuple[int | None, int | None, str]:
        """The owner's ``--batch-axis``, ``--class-axis`` (None: measured, the last) and ``--position``."""
        return self.batch_axis, self.class_axis, self.position

    @property
    def input_spec(self) -> InputSpec:
        packing = Packing(self.inputs) if self.inputs else None
        return InputSpec(self.input_name, self.input_shape, self.input_dtype, self.input_layout, None, packing=packing)

    def to_metadata(self) -> dict[str, str]:
        """The str→str metadata this record is signed as (without the stamps and the signature)."""
        metadata = dict(self.extra)
        metadata.update(_encode(self, skip=("search", "licence", "extra", "tool_version", "created_at")))
        for part in (self.search, self.licence):
            if part is not None:
                metadata.update(_encode(part))
        if self.kind == "fingerprint":
            del metadata["kind"]  # fingerprint bundles never wrote it: their digests stay as they were
        return metadata

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> FingerprintRecord:
        """Parse signed metadata; raises ``KeyError``/``ValueError`` on a missing or malformed field."""
        kind = metadata.get("kind", "fingerprint")
        if kind not in ("fingerprint", "licensee"):
            raise ValueError(f"unknown bundle kind {kind!r}")
        metadata = {**metadata, **{new: metadata[old] for old, new in FORMER_KEYS.items() if old in metadata}}
        values = _decode(cls, metadata, skip=("search", "licence", "extra"))
        part_names: set[str] = set()
        if kind == "licensee":
            values["licence"] = LicenceRecord(**_decode(LicenceRecord, metadata))
            part_names = {f.name for f in fields(LicenceRecord)}
        else:
            try:  # how the points were searched: descriptive, so an older or partial record stays in extra
                values["search"] = SearchRecord(**_decode(SearchRecord, metadata))
                part_names = {f.name for f in fields(SearchRecord)}
            except (KeyError, ValueError):
                pass
        known = {f.name for f in fields(cls)} | part_names | set(_STAMPED) | set(_SIGNATURE_FIELDS) | set(FORMER_KEYS)
        values["extra"] = {key: value for key, value in metadata.items() if key not in known}
        return cls(**values)


def _encode(record: object, skip: tuple[str, ...] = ()) -> dict[str, str]:
    hints = typing.get_type_hints(type(record))
    return {
        item.name: _text(getattr(record, item.name), hints[item.name])
        for item in fields(record)  # type: ignore[arg-type]
        if item.name not in skip
    }


def _text(value: object, hint: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Preprocessing):
        return value.to_json()
    if isinstance(value, tuple):
        items = [
            item.to_json() if isinstance(item, GraphInput) else asdict(item) if isinstance(item, BundlePart) else item
            for item in value
        ]
        return json.dumps(items, sort_keys=True) if value else ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _decode(cls: type, metadata: Mapping[str, str], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in fields(cls):
        if item.name in skip:
            continue
        if item.name not in metadata:
            if item.default is MISSING and item.default_factory is MISSING:
                raise KeyError(item.name)
            continue
        values[item.name] = _parse(metadata[item.name], hints[item.name])
    return values


def _parse(text: str, hint: object) -> object:
    arguments = typing.get_args(hint)
    if hint is Preprocessing:
        return Preprocessing.from_json(text)
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    if hint == float | None:
        return float(text) if text else None
    if hint == int | None:
        return int(text) if text else None
    if typing.get_origin(hint) is tuple:
        items = json.loads(text) if text else []
        if not isinstance(items, list):
            raise ValueError(f"expected a JSON list, got {text[:40]!r}")
        convert = arguments[0]
        if convert is BundlePart:
            return tuple(_part(item) for item in items)
        if convert is GraphInput:
            return Packing.from_json(items).inputs if items else ()
        return tuple(convert(item) for item in items)
    if typing.get_origin(hint) is Literal and text not in arguments:
        raise ValueError(f"{text!r} is not one of {', '.join(map(str, arguments))}")
    return text


def _part(item: object) -> BundlePart:
    """One signed evidence part from its JSON object, every field of its own type."""
    if not isinstance(item, dict) or set(item) - {f.name for f in fields(BundlePart)}:
        raise ValueError("an evidence part must be an object with the fields of BundlePart")
    kind, start, stop, null = item.get("kind"), item.get("start"), item.get("stop"), item.get("null_agreement")
    source, how = item.get("null_agreement_source", ""), item.get("how", "")
    if not (isinstance(kind, str) and kind and isinstance(source, str) and isinstance(how, str)):
        raise ValueError("an evidence part needs a kind, and text for its source and how")
    if not (type(start) is int and type(stop) is int and isinstance(null, float)):
        raise ValueError("an evidence part's start and stop are integers and its null agreement a number")
    return BundlePart(kind, start, stop, null, source, how)


def reproducible() -> bool:
    """Whether ``SOURCE_DATE_EPOCH`` asks for reproducible output: the time is pinned and no timing is
    recorded, so the same seed signs the same content."""
    return bool(os.environ.get("SOURCE_DATE_EPOCH"))


def utc_timestamp() -> str:
    """UTC now, as 2026-01-31T12:00:00Z; ``SOURCE_DATE_EPOCH`` pins it (reproducible bundles and reports)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- the verified bundle


@dataclass(frozen=True)
class Bundle:
    """A verified fingerprint: points, their labels from the target, the domain, and its signed record."""

    points: FloatArray
    labels: LabelArray
    domain_low: FloatArray
    domain_high: FloatArray
    record: FingerprintRecord
    metadata: Mapping[str, str]
    """The signed metadata as stored (what ``inspect`` shows); read fields through ``record``."""
    signer_key_id: str
    signer_pinned: bool
    sha256: str
    path: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else "fingerprint"

    @property
    def kind(self) -> BundleKind:
        return self.record.kind

    @property
    def licensee(self) -> str:
        """Whose copy a licensee trigger set marks ("" for a fingerprint)."""
        return self.record.licence.licensee if self.record.licence is not None else ""

    @property
    def threshold(self) -> float:
        return self.record.threshold

    @property
    def null_agreement(self) -> float:
        """q0: how often an independent model may agree per point (calibrated, else the default)."""
        null = self.record.null_agreement
        return DEFAULT_NULL_AGREEMENT if null is None else null

    @property
    def parts(self) -> tuple[BundlePart, ...]:
        """The evidence parts, each with its own q0 (issue 24). Bundles written before the parts were signed
        get them derived: the searched points and the target's mistakes (``--mistakes`` with a search;
        issue 14), else one part of every point under the bundle's q0."""
        if self.record.parts:
            return self.record.parts
        search, total = self.record.search, len(self.points)
        mistakes = search.mistakes if search is not None else 0
        source = self.null_agreement_source
        if 0 < mistakes < total:
            other = self.record.mistakes_null_agreement
            return (
                BundlePart("boundary", 0, total - mistakes, self.null_agreement, source),
                BundlePart(
                    "mistakes", total - mistakes, total, MISTAKES_NULL_AGREEMENT if other is None else other, source
                ),
            )
        kind = "triggers" if self.kind == "licensee" else "mistakes" if mistakes == total else "boundary"
        return (BundlePart(kind, 0, total, self.null_agreement, source),)

    @property
    def false_accusation_rate(self) -> float:
        """α: the default verdict is a match when the combined p-value over the parts is at most this."""
        rate = self.record.false_accusation_rate
        return DEFAULT_FALSE_ACCUSATION_RATE if rate is None else rate

    @property
    def null_agreement_source(self) -> str:
        return self.record.null_agreement_source or "default (uncalibrated; see docs/guides/verdict.md)"

    @property
    def num_classes(self) -> int:
        return self.record.num_classes

    @property
    def class_names(self) -> tuple[str, ...]:
        """The target's class names in index order, when the owner gave them (else empty)."""
        return self.record.class_names

    @property
    def preprocessing(self) -> Preprocessing:
        """How suspects of this model take their inputs, when the owner recorded it."""
        return self.record.preprocessing

    @property
    def input_spec(self) -> InputSpec:
        return self.record.input_spec

    def tensors(self) -> dict[str, npt.NDArray[np.generic]]:
        """The four tensors as ``save_bundle`` takes them (to re-sign with a changed record)."""
        return {
            "points": self.points,
            "labels": self.labels,
            "domain_low": self.domain_low,
            "domain_high": self.domain_high,
        }


def is_bundle(path: Path) -> bool:
    """Whether ``path`` holds an ipguard-onnx bundle (its header names the format; nothing is verified)."""
    with path.open("rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size)) if 0 < size <= MAX_HEADER_BYTES else None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return isinstance(metadata, dict) and metadata.get("format") == FORMAT_NAME


def check_bundle_output(path: str | os.PathLike[str], option: str = "--output") -> None:
    """A bundle may replace only a bundle: refuse a folder, a path under a file, or an existing file that
    is not an ipguard-onnx bundle (a model, a report, a key) — before any work is done."""
    check_replaceable(path, option, "an ipguard-onnx bundle", is_bundle)


def save_bundle(
    path: Path,
    tensors: Mapping[str, npt.NDArray[np.generic]],
    record: FingerprintRecord,
    private_key: Ed25519PrivateKey,
) -> str:
    """Stamp (format, tool version, time), sign and write the bundle atomically (a failed write leaves
    any old file intact); return its key id. The record's ``created_at``, when set, is kept."""
    from safetensors.numpy import save

    public = private_key.public_key()
    signed = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "created_at": record.created_at or utc_timestamp(),
        **record.to_metadata(),
    }
    signed["signer_key_id"] = key_id(public)
    signed["signer_public_key"] = base64.b64encode(public_key_bytes(public)).decode()
    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    signed[SIGNATURE_FIELD] = base64.b64encode(private_key.sign(canonical_digest(arrays, signed))).decode()
    payload = save(arrays, metadata=signed)
    check_bundle_output(path)
    write_atomic(path, payload, option="the bundle")
    return signed["signer_key_id"]


def _read_header(data: bytes, path: Path) -> dict[str, object]:
    if len(data) < 8:
        raise BundleError(
            f"{path} is too short to be a fingerprint bundle; pass a .safetensors file from 'ipguard-onnx fingerprint'"
        )
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8 or size > MAX_HEADER_BYTES:
        raise BundleError(f"{path} has a header length ({size}) beyond the file; it is truncated or not a bundle")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, ValueError, RecursionError):  # nested for ever, or integers of 5,000 digits
        raise BundleError(f"{path} has an unreadable header; it is damaged or not a fingerprint bundle") from None
    if not isinstance(header, dict):
        raise BundleError(f"{path} has a malformed header; it is not a fingerprint bundle")
    return header


def load_bundle(path: str | os.PathLike[str], *, trusted_key: Ed25519PublicKey | None = None) -> Bundle:
    """Read a bundle as untrusted input: verify its signature (and signer, if pinned) before use."""
    from safetensors.numpy import load

    path = Path(path)
    if not path.is_file():
        raise BundleError(f"fingerprint not found: {path}; create one with 'ipguard-onnx fingerprint MODEL.onnx'")
    if path.stat().st_size > MAX_BUNDLE_BYTES:
        raise BundleError(f"{path} is larger than {MAX_BUNDLE_BYTES >> 20} MiB; it is not a fingerprint bundle")
    data = path.read_bytes()
    header = _read_header(data, path)
    raw_metadata = header.get("__metadata__")
    if not isinstance(raw_metadata, dict) or raw_metadata.get("format") != FORMAT_NAME:
        raise BundleError(f"{path} is not an ipguard-onnx fingerprint (no '{FORMAT_NAME}' metadata)")
    metadata = {str(key): str(value) for key, value in raw_metadata.items()}
    if metadata.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path} has bundle format version {metadata.get('format_version')!r}; this ipguard-onnx "
            f"reads version {FORMAT_VERSION}: upgrade ipguard-onnx"
        )
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise BundleError(f"{path} is damaged: {str(exc)[:160]}") from None

    if SIGNATURE_FIELD not in metadata or "signer_public_key" not in metadata:
        raise SignatureError(
            f"{path} is unsigned; only signed bundles are trusted (re-create it with 'ipguard-onnx fingerprint')"
        )
    signer = verify_signature(
        canonical_digest(tensors, metadata),
        public_key=metadata["signer_public_key"],
        signature=metadata[SIGNATURE_FIELD],
        claimed_key_id=metadata.get("signer_key_id"),
        trusted_key=trusted_key,
        subject=str(path),
    )
    return _validated(tensors, metadata, path, signer, trusted_key is not None, hashlib.sha256(data).hexdigest())


def _check_parts(parts: tuple[BundlePart, ...], points: int) -> None:
    """Signed parts must tile the points in order (each non-empty) and carry a q0 in (0, 1)."""
    position = 0
    for part in parts:
        if part.start != position or part.stop <= part.start:
            raise ValueError(
                f"evidence part {part.kind!r} covers {part.start}:{part.stop}, expected to start at {position}"
            )
        if not 0.0 < part.null_agreement < 1.0:
            raise ValueError(f"evidence part {part.kind!r} has null agreement {part.null_agreement} outside (0, 1)")
        position = part.stop
    if parts and position != points:
        raise ValueError(f"the evidence parts cover {position} of the {points} points")


def _validated(
    tensors: Mapping[str, npt.NDArray[np.generic]],
    metadata: Mapping[str, str],
    path: Path,
    signer: str,
    pinned: bool,
    sha256: str,
) -> Bundle:
    """Check a signature-verified bundle for shapes and values a buggy signer could still get wrong."""
    for name, dtype in _TENSORS.items():
        if name not in tensors:
            raise BundleError(f"{path} has no '{name}' tensor; it was not written by ipguard-onnx")
        if tensors[name].dtype != np.dtype(dtype):
            raise BundleError(f"{path}: tensor '{name}' is {tensors[name].dtype}, expected {np.dtype(dtype)}")
    try:
        record = FingerprintRecord.from_metadata(metadata)
        null = record.null_agreement
        for name, value in (("null_agreement", null), ("mistakes_null_agreement", record.mistakes_null_agreement)):
            if value is not None and not 0.0 < value < 1.0:
                raise ValueError(f"{name} {value} outside (0, 1)")
        rate = record.false_accusation_rate
        if rate is not None and not 0.0 < rate < 1.0:
            raise ValueError(f"false_accusation_rate {rate} outside (0, 1)")
        _check_parts(record.parts, len(tensors["points"]))
        if record.inputs and (Packing(record.inputs).size,) != record.input_shape:
            raise ValueError("the packed inputs do not add up to the points' size")
        if record.class_names and len(record.class_names) != record.num_classes:
            raise ValueError("class_names must list one name per class")
        if len(set(record.class_names)) != len(record.class_names) or not all(record.class_names):
            raise ValueError("class_names must be distinct and non-empty")
    except (KeyError, ValueError, TypeError, OverflowError, RecursionError, UsageError) as exc:
        raise BundleError(
            f"{path} has missing or malformed metadata ({shown(str(exc))[:200]}); it was not written by ipguard-onnx"
        ) from None
    sample_shape, num_classes, threshold = record.input_shape, record.num_classes, record.threshold
    points, labels = tensors["points"], tensors["labels"]
    if points.ndim < 2 or tuple(points.shape[1:]) != sample_shape or labels.shape != (len(points),):
        raise BundleError(
            f"{path}: points {points.shape} and labels {labels.shape} do not fit input shape {sample_shape}"
        )
    if len(points) == 0:
        raise BundleError(f"{path} holds no fingerprint points")
    if not np.isfinite(points).all():
        raise BundleError(f"{path} holds non-finite points; it is damaged")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise BundleError(f"{path} has labels outside 0..{num_classes - 1}; it is damaged")
    if not 0.0 < threshold <= 1.0:
        raise BundleError(f"{path} has threshold {threshold} outside (0, 1]")
    if not 2 <= num_classes <= MAX_CLASSES:  # with one class every answer would agree
        raise BundleError(f"{path} declares {num_classes} classes; a classifier has 2 to {MAX_CLASSES:,}")
    low, high = tensors["domain_low"], tensors["domain_high"]
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise BundleError(f"{path} has a non-finite input domain; it is damaged")
    return Bundle(
        points=np.asarray(points, dtype=np.float32),
        labels=np.asarray(labels, dtype=np.int64),
        domain_low=np.asarray(tensors["domain_low"], dtype=np.float32),
        domain_high=np.asarray(tensors["domain_high"], dtype=np.float32),
        record=record,
        metadata=dict(metadata),
        signer_key_id=signer,
        signer_pinned=pinned,
        sha256=sha256,
        path=path,
    )
