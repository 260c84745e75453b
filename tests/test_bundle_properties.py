"""Property-based (hypothesis): whatever bytes or signed content a bundle holds, the loader either
returns a valid bundle or raises one of our errors — never another exception."""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipguard_onnx import IPGuardError, load_bundle

from .signing import GOOD_METADATA, good_tensors, write_signed


@cache
def _workspace() -> tuple[Path, Ed25519PrivateKey, bytes]:
    """A folder (removed at exit), a key, and the bytes of a good signed bundle; made on first use."""
    folder = Path(tempfile.mkdtemp(prefix="ipguard-properties-"))
    import atexit
    import shutil

    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    key = Ed25519PrivateKey.generate()
    good = write_signed(folder / "good.safetensors", good_tensors(), GOOD_METADATA, key)
    return folder, key, good.read_bytes()


def _load(data: bytes) -> None:
    path = _workspace()[0] / "input.safetensors"
    path.write_bytes(data)
    try:
        bundle = load_bundle(path)
    except IPGuardError:
        return
    # accepted: then it must be sound
    assert np.isfinite(bundle.points).all() and len(bundle.points) > 0
    assert ((bundle.labels >= 0) & (bundle.labels < bundle.num_classes)).all()
    assert 0.0 <= bundle.threshold <= 1.0 and 0.0 < bundle.null_agreement < 1.0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    _load(data)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8), st.integers(0, 1 << 20)
)
def test_mutated_real_bundles_are_refused(edits: list[tuple[int, int]], cut: int) -> None:
    folder, _, good = _workspace()
    data = bytearray(good)
    for position, value in edits:
        data[position % len(data)] = value
    mutated = bytes(data[: cut % (len(data) + 1)])
    path = folder / "mutated.safetensors"
    path.write_bytes(mutated)
    if mutated == good:
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
    drop=st.sets(st.sampled_from(sorted(GOOD_METADATA)), max_size=3),
    changes=st.dictionaries(
        st.sampled_from(
            [
                "input_shape",
                "input_layout",
                "num_classes",
                "threshold",
                "null_agreement",
                "class_names",
                "preprocessing",
                "kind",
                "n_points",
                "k",
                "licensee",
            ]
        ),
        st.one_of(st.text(max_size=12), st.sampled_from(["[4]", "[2,2]", "-1", "3", "nan", "1.5", "0", "[]", "{}"])),
        max_size=3,
    ),
)
def test_signed_but_hostile_content_is_refused_cleanly(
    points: list[list[float]], labels: list[int], label_dtype: str, drop: set[str], changes: dict[str, str]
) -> None:
    """A key holder who signs garbage (a buggy or malicious signer) still cannot crash the loader."""
    folder, key, _ = _workspace()
    width = max((len(row) for row in points), default=0)
    array = np.array([row + [0.0] * (width - len(row)) for row in points], dtype=np.float32).reshape(len(points), width)
    tensors = good_tensors() | {"points": array, "labels": np.array(labels).astype(label_dtype)}
    metadata = {k: v for k, v in GOOD_METADATA.items() if k not in drop} | changes
    path = write_signed(folder / "signed.safetensors", tensors, metadata, key)
    _load(path.read_bytes())


def test_good_bundle_round_trips() -> None:
    folder, _, _ = _workspace()
    bundle = load_bundle(folder / "good.safetensors")
    assert bundle.labels.tolist() == [0, 2] and json.loads(bundle.metadata["input_shape"]) == [4]
    assert bundle.record.input_shape == (4,) and bundle.record.search is None
