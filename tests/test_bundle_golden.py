"""Golden tests of the bundle format: the digest a signature covers, and the published demo bundle.

A signature binds the canonical digest, so the digest of given content may never change between
versions (every bundle already signed would stop verifying). These tests pin it, and recompute it
from the format's description (bundle.py's docstring) with nothing but hashlib.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ipguard_onnx import SignatureError, audit, load_bundle
from ipguard_onnx.bundle import FingerprintRecord, canonical_digest, save_bundle
from ipguard_onnx.keys import load_private_key, load_public_key

from .conftest import Zoo

ROOT = Path(__file__).resolve().parent.parent
DEMO_BUNDLE = ROOT / "fingerprints" / "demo-target.fingerprint.safetensors"
DEMO_KEY = ROOT / "fingerprints" / "demo-key.pub.pem"

TENSORS: dict[str, npt.NDArray[np.generic]] = {
    "points": (np.arange(6, dtype=np.float32).reshape(2, 3) / 4),
    "labels": np.array([2, 0], np.int64),
}
METADATA = {"threshold": "0.85", "input_shape": "[3]", "signature": "not part of the digest"}
GOLDEN_DIGEST = "6ca5df62072eec284b0ef4895812ccebd94ae707686b25276a827be654f86cdd"
"""canonical_digest(TENSORS, METADATA) as version 1 of the format defines it (fixed at format v1)."""


def _digest_from_the_description(tensors: dict[str, npt.NDArray[np.generic]], metadata: dict[str, str]) -> str:
    """sha256 of a domain tag, then length-prefixed (8-byte little-endian) chunks: per tensor in name
    order its name, dtype string, JSON shape and little-endian bytes; then the metadata without the
    signature as sorted-key compact ASCII JSON."""
    digest = hashlib.sha256(b"ipguard-onnx bundle digest v1\x00")
    chunks: list[bytes] = []
    for name in sorted(tensors):
        array = tensors[name]
        chunks += [name.encode(), array.dtype.str.encode(), json.dumps(list(array.shape)).encode(), array.tobytes()]
    unsigned = {key: value for key, value in metadata.items() if key != "signature"}
    chunks.append(json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode())
    for chunk in chunks:
        digest.update(len(chunk).to_bytes(8, "little") + chunk)
    return digest.hexdigest()


def test_the_canonical_digest_is_pinned() -> None:
    assert canonical_digest(TENSORS, METADATA).hex() == GOLDEN_DIGEST
    assert _digest_from_the_description(TENSORS, METADATA) == GOLDEN_DIGEST


def test_the_digest_binds_every_byte_and_every_field_but_the_signature() -> None:
    flipped = {**TENSORS, "labels": np.array([2, 1], np.int64)}
    assert canonical_digest(flipped, METADATA).hex() != GOLDEN_DIGEST
    assert canonical_digest(TENSORS, {**METADATA, "threshold": "0.84"}).hex() != GOLDEN_DIGEST
    assert canonical_digest(TENSORS, {**METADATA, "signature": "anything"}).hex() == GOLDEN_DIGEST


def test_the_published_demo_bundle_verifies_under_the_published_key() -> None:
    bundle = load_bundle(DEMO_BUNDLE, trusted_key=load_public_key(DEMO_KEY))
    assert bundle.signer_pinned and bundle.kind == "fingerprint" and bundle.licensee == ""
    assert bundle.record.variant == "IPGuard-RL" and bundle.record.input_shape == (1, 8, 8)
    assert len(bundle.points) == 100 and bundle.num_classes == 10
    assert bundle.record.search is not None and bundle.record.search.n_points == 100
    assert bundle.null_agreement_source.startswith("calibrated on 3")


def test_the_published_demo_bundle_refuses_any_change(tmp_path: Path) -> None:
    data = bytearray(DEMO_BUNDLE.read_bytes())
    value_end = data.index(b'"', data.index(b'"threshold":"') + len(b'"threshold":"'))
    data[value_end - 1] = ord("1") if data[value_end - 1] != ord("1") else ord("2")  # a lower threshold, same size
    changed = tmp_path / "changed.safetensors"
    changed.write_bytes(bytes(data))
    with pytest.raises(SignatureError, match="altered after signing"):
        load_bundle(changed)
    data = bytearray(DEMO_BUNDLE.read_bytes())
    data[-1] ^= 1
    changed.write_bytes(bytes(data))
    with pytest.raises(SignatureError, match="altered after signing"):
        load_bundle(changed)


def test_a_new_bundle_record_survives_its_metadata_exactly(zoo: Zoo, tmp_path: Path) -> None:
    """What ``fingerprint`` writes parses into the typed record and back without a byte changed, so
    ``calibrate`` re-signs exactly what it read plus its own changes."""
    bundle = load_bundle(zoo.bundle)
    record = FingerprintRecord.from_metadata(bundle.metadata)
    assert record.search is not None and record.extra == {}
    copy = tmp_path / "copy.safetensors"
    save_bundle(copy, bundle.tensors(), record, load_private_key(zoo.private_key))
    again = load_bundle(copy)
    assert again.metadata == bundle.metadata
    assert audit(again, zoo.pruned).matching_rate == audit(bundle, zoo.pruned).matching_rate
