"""The signed fingerprint bundle: one safetensors file of tensors plus str→str metadata.

The signature is Ed25519 over a canonical digest computed here (not over file bytes): every
tensor's name, dtype, shape and bytes, in name order, then every metadata field but the
signature as sorted-key JSON. So it binds everything that shapes a verdict (points, labels,
threshold, k, domain, input layout, target hash) and nothing else can change unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import BundleError, SignatureError
from .keys import key_id, public_key_bytes, strict_b64decode
from .models import FloatArray, InputSpec, LabelArray, Layout
from .preprocessing import Preprocessing
from .stats import DEFAULT_NULL_AGREEMENT

FORMAT_NAME = "ipguard-onnx-fingerprint"
FORMAT_VERSION = "1"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
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


@dataclass(frozen=True)
class Bundle:
    """A verified fingerprint: points, their labels from the target, the domain, signed metadata."""

    points: FloatArray
    labels: LabelArray
    domain_low: FloatArray
    domain_high: FloatArray
    metadata: Mapping[str, str]
    signer_key_id: str
    signer_pinned: bool
    sha256: str
    path: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else "fingerprint"

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    @property
    def null_agreement(self) -> float:
        """q0: how often an independent model may agree per point (calibrated, else the default)."""
        text = self.metadata.get("null_agreement", "")
        return float(text) if text else DEFAULT_NULL_AGREEMENT

    @property
    def null_agreement_source(self) -> str:
        return self.metadata.get("null_agreement_source", "") or "default (uncalibrated; see README)"

    @property
    def num_classes(self) -> int:
        return int(self.metadata["num_classes"])

    @property
    def class_names(self) -> tuple[str, ...]:
        """The target's class names in index order, when the owner gave them (else empty)."""
        text = self.metadata.get("class_names", "")
        return tuple(json.loads(text)) if text else ()

    @property
    def preprocessing(self) -> Preprocessing:
        """How suspects of this model take their inputs, when the owner recorded it."""
        return Preprocessing.from_json(self.metadata.get("preprocessing", ""))

    @property
    def input_spec(self) -> InputSpec:
        layout: Layout = self.metadata["input_layout"]  # type: ignore[assignment]
        return InputSpec(
            name=self.metadata["input_name"],
            sample_shape=tuple(json.loads(self.metadata["input_shape"])),
            dtype=self.metadata["input_dtype"],
            layout=layout,
            fixed_batch=None,
        )


def save_bundle(
    path: Path,
    tensors: Mapping[str, npt.NDArray[np.generic]],
    metadata: Mapping[str, str],
    private_key: Ed25519PrivateKey,
) -> str:
    """Sign and write the bundle atomically (a failed write leaves any old file intact); return its key id."""
    from safetensors.numpy import save

    public = private_key.public_key()
    signed = dict(metadata)
    signed["signer_key_id"] = key_id(public)
    signed["signer_public_key"] = base64.b64encode(public_key_bytes(public)).decode()
    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    signed[SIGNATURE_FIELD] = base64.b64encode(private_key.sign(canonical_digest(arrays, signed))).decode()
    payload = save(arrays, metadata=signed)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
            handle.write(payload)
            temporary = Path(handle.name)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        raise BundleError(f"cannot write the bundle to {path}: {exc.strerror}; choose a writable path") from None
    return signed["signer_key_id"]


def _read_header(data: bytes, path: Path) -> dict[str, object]:
    if len(data) < 8:
        raise BundleError(
            f"{path} is too short to be a fingerprint bundle; pass a .safetensors file from 'ipguard-onnx fingerprint'"
        )
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8 or size > 16 * 1024 * 1024:
        raise BundleError(f"{path} has a header length ({size}) beyond the file; it is truncated or not a bundle")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError):
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
    try:
        public_raw = strict_b64decode(metadata["signer_public_key"])
        signature = strict_b64decode(metadata[SIGNATURE_FIELD])
        public = Ed25519PublicKey.from_public_bytes(public_raw)
        public.verify(signature, canonical_digest(tensors, metadata))
    except (InvalidSignature, ValueError, binascii.Error):
        raise SignatureError(
            f"{path} failed signature verification: it was altered after signing; do not trust it, "
            "get a fresh copy from its owner"
        ) from None
    signer = key_id(public)
    if metadata.get("signer_key_id") != signer:
        raise SignatureError(
            f"{path} names signer {metadata.get('signer_key_id')} but is signed by {signer}; do not trust it"
        )
    if trusted_key is not None and public_key_bytes(trusted_key) != public_raw:
        raise SignatureError(
            f"{path} is signed by key {signer}, not by the trusted key {key_id(trusted_key)}; "
            "it was not made by the owner you expect"
        )
    return _validated(tensors, metadata, path, signer, trusted_key is not None, hashlib.sha256(data).hexdigest())


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
        sample_shape = tuple(int(d) for d in json.loads(metadata["input_shape"]))
        num_classes = int(metadata["num_classes"])
        threshold = float(metadata["threshold"])
        null = float(metadata["null_agreement"]) if metadata.get("null_agreement") else DEFAULT_NULL_AGREEMENT
        if not 0.0 < null < 1.0:
            raise ValueError(f"null_agreement {null} outside (0, 1)")
        for required in ("input_name", "input_layout", "input_dtype"):
            metadata[required]
        Preprocessing.from_json(metadata.get("preprocessing", ""))
        names = json.loads(metadata["class_names"]) if metadata.get("class_names") else []
        if not isinstance(names, list) or (names and len(names) != num_classes):
            raise ValueError("class_names must list one name per class")
    except (KeyError, ValueError, TypeError) as exc:
        raise BundleError(
            f"{path} has missing or malformed metadata ({exc}); it was not written by ipguard-onnx"
        ) from None
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
    if not 0.0 <= threshold <= 1.0:
        raise BundleError(f"{path} has threshold {threshold} outside [0, 1]")
    return Bundle(
        points=np.asarray(points, dtype=np.float32),
        labels=np.asarray(labels, dtype=np.int64),
        domain_low=np.asarray(tensors["domain_low"], dtype=np.float32),
        domain_high=np.asarray(tensors["domain_high"], dtype=np.float32),
        metadata=dict(metadata),
        signer_key_id=signer,
        signer_pinned=pinned,
        sha256=sha256,
        path=path,
    )
