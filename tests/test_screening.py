"""The experimental --unique mode: a screened candidate pool, recorded in the signed bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx import UsageError, audit, fingerprint, load_bundle
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key
from ipguard_onnx.screening import PanelMember, screen

from .conftest import Zoo


def test_screen_prefers_points_copies_share_and_references_do_not() -> None:
    points = np.arange(6, dtype=np.float32).reshape(6, 1)
    labels = np.zeros(6, dtype=np.int64)
    # point i: positives agree on 0..3; references disagree on 2..5 -> only 2 and 3 are conferrable
    positive = PanelMember("p", "positive", "", "", lambda b: np.where(b[:, 0] < 4, 0, 1).astype(np.int64))
    reference = PanelMember("r", "reference", "", "", lambda b: np.where(b[:, 0] >= 2, 1, 0).astype(np.int64))
    chosen, disagreement, agreement = screen(points, labels, [positive, reference], 2)
    assert sorted(chosen.tolist()) == [2, 3]
    assert disagreement == 1.0 and agreement == 1.0


def test_unique_mode_with_owner_data(zoo: Zoo, tmp_path: Path) -> None:
    data = tmp_path / "owner.npy"
    np.save(data, zoo.x[:600])
    settings = FingerprintSettings(n=20, unique=True, references=2, init="data")
    made = fingerprint(zoo.target, tmp_path / "fp.safetensors", signing_key=load_private_key(zoo.private_key),
                       settings=settings, data_path=data)  # fmt: skip
    bundle = load_bundle(made.bundle_path)
    record = json.loads(bundle.metadata["screening"])
    roles = [member["role"] for member in record["panel"]]
    assert roles.count("reference") == 2 and roles.count("positive") >= 5
    assert record["pool"] >= 5 * 20 and record["margins"] == [0.3, 1.0, 3.0]
    assert all(member["digest"] for member in record["panel"])
    assert made.points == 20 and made.screening_seconds > 0
    assert audit(bundle, zoo.target).matching_rate == 1.0


def test_unique_mode_with_supplied_references_only(zoo: Zoo, tmp_path: Path) -> None:
    settings = FingerprintSettings(n=10, unique=True)
    made = fingerprint(zoo.target, tmp_path / "fp.safetensors", signing_key=load_private_key(zoo.private_key),
                       settings=settings, reference_paths=[zoo.independent])  # fmt: skip
    record = json.loads(load_bundle(made.bundle_path).metadata["screening"])
    supplied = [m for m in record["panel"] if m["how"] == "supplied with --reference"]
    assert [m["name"] for m in supplied] == ["independent.onnx"]
    assert record["starts"] == ["random"]


def test_unique_mode_needs_data_or_references(zoo: Zoo, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs owner data"):
        fingerprint(zoo.target, tmp_path / "fp.safetensors", signing_key=load_private_key(zoo.private_key),
                    settings=FingerprintSettings(n=5, unique=True))  # fmt: skip
    with pytest.raises(UsageError, match="use it with --method ipguard"):
        FingerprintSettings(unique=True, method="fgsm")
    assert not (tmp_path / "fp.safetensors").exists()
