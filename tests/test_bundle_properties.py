"""Property-based (hypothesis): whatever bytes or signed content a bundle holds, the loader either
returns a valid bundle or raises one of our errors — never another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipguard_onnx import IPGuardError, load_bundle
from ipguard_onnx.bundle import save_bundle
from ipguard_onnx.keys import load_private_key, write_keypair

_FOLDER = Path(tempfile.mkdtemp(prefix="ipguard-properties-"))
_KEY = load_private_key(write_keypair(_FOLDER / "k.pem", _FOLDER / "k.pub.pem").private_path)
_GOOD_METADATA = {
    "format": "ipguard-onnx-fingerprint", "format_version": "1", "input_name": "x", "input_shape": "[4]",
    "input_layout": "ND", "input_dtype": "float32", "num_classes": "3", "threshold": "0.85",
}  # fmt: skip


def _good_tensors() -> dict[str, np.ndarray]:
    return {
        "points": np.zeros((2, 4), np.float32), "labels": np.array([0, 2], np.int64),
        "domain_low": np.zeros(4, np.float32), "domain_high": np.ones(4, np.float32),
    }  # fmt: skip


def _load(data: bytes) -> None:
    path = _FOLDER / "input.safetensors"
    path.write_bytes(data)
    try:
        bundle = load_bundle(path)
    except IPGuardError:
        return
    # accepted: then it must be sound
    assert np.isfinite(bundle.points).all() and len(bundle.points) > 0
    assert ((bundle.labels >= 0) & (bundle.labels < bundle.num_classes)).all()
    assert 0.0 <= bundle.threshold <= 1.0 and 0.0 < bundle.null_agreement < 1.0


_GOOD = _FOLDER / "good.safetensors"
save_bundle(_GOOD, _good_tensors(), _GOOD_METADATA, _KEY)
_GOOD_BYTES = _GOOD.read_bytes()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    _load(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_GOOD_BYTES) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(_GOOD_BYTES)))  # fmt: skip
def test_mutated_real_bundles_are_refused(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_GOOD_BYTES)
    for position, value in edits:
        data[position] = value
    mutated = bytes(data[:cut]) if cut < len(data) else bytes(data)
    path = _FOLDER / "mutated.safetensors"
    path.write_bytes(mutated)
    if mutated == _GOOD_BYTES:
        assert load_bundle(path).points.shape == (2, 4)
        return
    try:
        load_bundle(path)
    except IPGuardError:
        return
    raise AssertionError("a changed bundle was accepted")


_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    points=st.lists(st.lists(_FLOATS, min_size=0, max_size=5), min_size=0, max_size=4),
    labels=st.lists(st.integers(-3, 5), min_size=0, max_size=5),
    label_dtype=st.sampled_from(["int64", "int32", "float32"]),
    drop=st.sets(st.sampled_from(sorted(_GOOD_METADATA)), max_size=3),
    changes=st.dictionaries(
        st.sampled_from(["input_shape", "num_classes", "threshold", "null_agreement", "class_names", "preprocessing"]),
        st.one_of(st.text(max_size=12), st.sampled_from(["[4]", "[2,2]", "-1", "3", "nan", "1.5", "0", "[]", "{}"])),
        max_size=3,
    ),
)
def test_signed_but_hostile_content_is_refused_cleanly(
    points: list[list[float]], labels: list[int], label_dtype: str, drop: set[str], changes: dict[str, str]
) -> None:
    """A key holder who signs garbage (a buggy or malicious signer) still cannot crash the loader."""
    width = max((len(row) for row in points), default=0)
    array = np.array([row + [0.0] * (width - len(row)) for row in points], dtype=np.float32).reshape(len(points), width)
    tensors = _good_tensors() | {"points": array, "labels": np.array(labels).astype(label_dtype)}
    metadata = {k: v for k, v in _GOOD_METADATA.items() if k not in drop} | changes
    path = _FOLDER / "signed.safetensors"
    try:
        save_bundle(path, tensors, metadata, _KEY)
    except IPGuardError:
        return
    _load(path.read_bytes())


def test_good_bundle_round_trips() -> None:
    bundle = load_bundle(_GOOD)
    assert bundle.labels.tolist() == [0, 2] and json.loads(bundle.metadata["input_shape"]) == [4]
