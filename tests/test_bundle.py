"""The signed bundle treated as untrusted input: any change is refused before use."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from safetensors.numpy import load, save

from ipguard_onnx import BundleError, IPGuardError, SignatureError, load_bundle
from ipguard_onnx.bundle import FingerprintRecord, canonical_digest, save_bundle
from ipguard_onnx.fingerprint import FingerprintSettings, fingerprint
from ipguard_onnx.keys import load_private_key, load_public_key, write_keypair

from .conftest import Zoo


def _header(data: bytes) -> dict[str, object]:
    size = int.from_bytes(data[:8], "little")
    header: dict[str, object] = json.loads(data[8 : 8 + size])
    return header


def _rewrite(
    source: Path, target: Path, *, metadata: dict[str, str] | None = None, tensors: dict[str, np.ndarray] | None = None
) -> Path:
    """Write a copy with changed metadata or tensors but the original signature (a forgery attempt)."""
    data = source.read_bytes()
    original_metadata = _header(data)["__metadata__"]
    assert isinstance(original_metadata, dict)
    target.write_bytes(save(tensors or load(data), metadata={**original_metadata, **(metadata or {})}))
    return target


def test_a_flipped_bit_anywhere_is_refused(zoo: Zoo, tmp_path: Path) -> None:
    """Every bit of the header (metadata, offsets, base64 padding bits) and one bit of every data byte."""
    small = tmp_path / "small.safetensors"
    fingerprint(zoo.target, small, signing_key=load_private_key(zoo.private_key), settings=FingerprintSettings(n=8))
    data = small.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    copy = tmp_path / "flipped.safetensors"
    accepted = []
    for position in range(len(data)):
        bits = range(8) if position < header_end else [position % 8]
        for bit in bits:
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            copy.write_bytes(bytes(damaged))
            try:
                load_bundle(copy)
            except IPGuardError:
                continue
            accepted.append((position, bit))
    assert accepted == []
    assert load_bundle(small).points.shape[0] == 8


def test_the_untouched_bundle_loads_and_verifies(zoo: Zoo) -> None:
    bundle = load_bundle(zoo.bundle, trusted_key=load_public_key(zoo.public_key))
    assert bundle.signer_pinned
    assert len(bundle.points) == len(bundle.labels) == bundle.parts[-1].stop >= 100  # the parts tile the points


@pytest.mark.parametrize(
    "field,value",
    [("threshold", "0.01"), ("k", "100.0"), ("target_sha256", "0" * 64), ("input_layout", "NHWC"), ("domain", "0,255")],
)
def test_changed_metadata_breaks_the_signature(zoo: Zoo, tmp_path: Path, field: str, value: str) -> None:
    forged = _rewrite(zoo.bundle, tmp_path / "forged.safetensors", metadata={field: value})
    with pytest.raises(SignatureError, match="altered after signing"):
        load_bundle(forged)


def test_changed_labels_break_the_signature(zoo: Zoo, tmp_path: Path) -> None:
    tensors = load(zoo.bundle.read_bytes())
    tensors["labels"] = (tensors["labels"] + 1) % 10
    forged = _rewrite(zoo.bundle, tmp_path / "forged.safetensors", tensors=tensors)
    with pytest.raises(SignatureError, match="altered after signing"):
        load_bundle(forged)


def test_unsigned_bundle_is_refused(zoo: Zoo, tmp_path: Path) -> None:
    data = zoo.bundle.read_bytes()
    metadata = _header(data)["__metadata__"]
    assert isinstance(metadata, dict)
    del metadata["signature"]
    unsigned = tmp_path / "unsigned.safetensors"
    unsigned.write_bytes(save(load(data), metadata=metadata))
    with pytest.raises(SignatureError, match="unsigned"):
        load_bundle(unsigned)


def test_a_bundle_re_signed_by_someone_else_fails_the_pin(zoo: Zoo, tmp_path: Path) -> None:
    """A thief can re-sign with their own key; only --trusted-key tells the owner's bundle apart."""
    data = zoo.bundle.read_bytes()
    metadata = _header(data)["__metadata__"]
    assert isinstance(metadata, dict)
    thief = write_keypair(tmp_path / "thief.pem", tmp_path / "thief.pub.pem")
    resigned = tmp_path / "resigned.safetensors"
    save_bundle(resigned, load(data), FingerprintRecord.from_metadata(metadata), load_private_key(thief.private_path))
    assert load_bundle(resigned).signer_key_id == thief.key_id
    with pytest.raises(SignatureError, match="not by the trusted key"):
        load_bundle(resigned, trusted_key=load_public_key(zoo.public_key))


def test_swapped_public_key_is_refused(zoo: Zoo, tmp_path: Path) -> None:
    thief = write_keypair(tmp_path / "thief.pem", tmp_path / "thief.pub.pem")
    raw = load_public_key(thief.public_path).public_bytes_raw()
    forged = _rewrite(
        zoo.bundle, tmp_path / "forged.safetensors", metadata={"signer_public_key": base64.b64encode(raw).decode()}
    )
    with pytest.raises(SignatureError):
        load_bundle(forged)


@pytest.mark.parametrize("cut", [0, 5, 100, -1])
def test_truncated_bundles_are_refused(zoo: Zoo, tmp_path: Path, cut: int) -> None:
    data = zoo.bundle.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[:cut] if cut >= 0 else data[:-1])
    with pytest.raises(BundleError):
        load_bundle(truncated)


def test_not_a_bundle(zoo: Zoo, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not an ipguard-onnx fingerprint"):
        other = tmp_path / "other.safetensors"
        other.write_bytes(save({"w": np.zeros(3, np.float32)}))
        load_bundle(other)
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "missing.safetensors")
    with pytest.raises(BundleError):
        load_bundle(zoo.target)


def test_digest_ignores_tensor_order_but_not_content() -> None:
    a: dict[str, npt.NDArray[np.generic]] = {"points": np.ones((2, 3), np.float32), "labels": np.arange(2)}
    b = dict(reversed(list(a.items())))
    metadata = {"x": "1", "y": "2"}
    assert canonical_digest(a, metadata) == canonical_digest(b, dict(reversed(list(metadata.items()))))
    assert canonical_digest(a, metadata) != canonical_digest(a, {**metadata, "x": "2"})
    changed = {**a, "points": a["points"].reshape(3, 2)}
    assert canonical_digest(a, metadata) != canonical_digest(changed, metadata)


def test_private_key_is_written_0600(zoo: Zoo) -> None:
    assert zoo.private_key.stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_fuzz_target_runs_clean_for_a_bounded_time(tmp_path: Path) -> None:
    """The atheris target (tests/fuzz/fuzz_bundle.py, `make fuzz` for longer) for 15 s: no finding.
    In `make slow`: the hypothesis properties (test_bundle_properties.py) cover the loader in the default set."""
    import subprocess
    import sys

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    target = Path(__file__).resolve().parent / "fuzz" / "fuzz_bundle.py"
    done = subprocess.run(
        [sys.executable, str(target), "-max_total_time=15", str(corpus)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Done" in done.stderr and "runs in" in done.stderr
