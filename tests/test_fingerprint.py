"""The paper's properties on real digits models: effectiveness, robustness, uniqueness."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx import OnnxClassifier, audit, fingerprint, load_bundle
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key
from ipguard_onnx.search import StartKind, TargetLabelRule
from ipguard_onnx.surrogate import Surrogate

from .conftest import Zoo


def test_target_matches_its_own_fingerprint_at_100_percent(zoo: Zoo) -> None:
    result = audit(zoo.bundle, zoo.target)
    assert result.matching_rate == 1.0
    assert result.matched and result.p_value <= result.false_accusation_rate
    assert result.points_queried == len(load_bundle(zoo.bundle).points)


@pytest.mark.parametrize("copy", ["fine_tuned", "pruned"])
def test_pirated_copies_match_by_the_evidence(zoo: Zoo, copy: str) -> None:
    """The default verdict: the combined p-value at most the signed α, whatever the overall matching rate."""
    result = audit(zoo.bundle, getattr(zoo, copy))
    assert result.rule == "evidence" and result.p_value <= result.false_accusation_rate, result
    assert result.matched
    boundary = next(part for part in result.parts if part.kind == "boundary")
    assert boundary.matching_rate >= result.threshold  # the copies keep the boundary


@pytest.mark.parametrize("model", ["independent", "other_architecture"])
def test_independent_models_are_no_match_by_the_evidence(zoo: Zoo, model: str) -> None:
    result = audit(zoo.bundle, getattr(zoo, model))
    assert result.p_value > result.false_accusation_rate, result
    assert result.verdict == "no match"
    assert not audit(zoo.bundle, getattr(zoo, model), threshold=0.85).matched  # nor by the paper's rule


def test_labels_are_what_onnxruntime_predicts_on_the_target(zoo: Zoo) -> None:
    bundle = load_bundle(zoo.bundle)
    target = OnnxClassifier(zoo.target)
    assert np.array_equal(target.predict(bundle.points), bundle.labels)
    assert bundle.metadata["target_sha256"] == target.sha256


def test_points_sit_just_past_the_boundary_with_margin_k(zoo: Zoo, tmp_path: Path) -> None:
    """Eq. 5 at zero: Z_j ≥ Z_i + k and Z_i tops every other class, for every kept point of the paper's search."""
    made = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=30, seed=2),
    )
    bundle = load_bundle(made.bundle_path)
    k = float(bundle.metadata["k"])
    boundary = next(part for part in bundle.parts if part.kind == "boundary")
    points, labels = bundle.points[boundary.start : boundary.stop], bundle.labels[boundary.start : boundary.stop]
    scores = OnnxClassifier(zoo.target).scores(points)
    ordered = np.sort(scores, axis=1)
    assert (scores.argmax(1) == labels).all()
    assert (ordered[:, -1] - ordered[:, -2] >= k - 1e-3).all()
    assert (points >= bundle.domain_low).all() and (points <= bundle.domain_high).all()


def test_same_seed_gives_the_same_points(zoo: Zoo, tmp_path: Path) -> None:
    key = load_private_key(zoo.private_key)
    settings = FingerprintSettings(n=20, seed=3)
    first = fingerprint(zoo.target, tmp_path / "a.safetensors", signing_key=key, settings=settings)
    second = fingerprint(zoo.target, tmp_path / "b.safetensors", signing_key=key, settings=settings)
    a, b = load_bundle(first.bundle_path), load_bundle(second.bundle_path)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.labels, b.labels)
    other = fingerprint(
        zoo.target, tmp_path / "c.safetensors", signing_key=key, settings=FingerprintSettings(n=20, seed=4)
    )
    assert not np.array_equal(load_bundle(other.bundle_path).points, a.points)


@pytest.mark.parametrize("method", ["ipguard", "gradient-free"])
def test_source_date_epoch_reproduces_the_signed_content(
    zoo: Zoo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """Same seed and SOURCE_DATE_EPOCH: identical metadata, hence an identical canonical digest and signature."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    key = load_private_key(zoo.private_key)
    bundles = []
    settings = FingerprintSettings(n=10, method=method)
    for name in ("a", "b"):
        fingerprint(zoo.target, tmp_path / f"{name}.safetensors", signing_key=key, settings=settings)
        bundles.append(load_bundle(tmp_path / f"{name}.safetensors"))
    assert bundles[0].metadata == bundles[1].metadata
    pinned = datetime.fromtimestamp(1700000000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert bundles[0].metadata["created_at"] == pinned


@pytest.mark.parametrize("variant", ["target_batch1.onnx", "target_softmax.onnx", "target_external.onnx"])
def test_variants_of_the_target_fingerprint_and_match_themselves(zoo: Zoo, tmp_path: Path, variant: str) -> None:
    model = zoo.folder / variant
    result = fingerprint(
        model,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=30),
    )
    assert result.points == 30
    assert result.parity is not None and result.parity.ok and result.parity.label_agreement == 1.0
    assert audit(result.bundle_path, model).matching_rate == 1.0


def test_external_data_file_is_really_used(zoo: Zoo, tmp_path: Path) -> None:
    """The graph alone (without its .data file beside it) cannot be opened: the weights come from the file."""
    from ipguard_onnx import ModelLoadError

    alone = tmp_path / "target_external.onnx"
    shutil.copy(zoo.folder / "target_external.onnx", alone)
    with pytest.raises(ModelLoadError, match="external data file that is missing"):
        OnnxClassifier(alone)


def test_probability_output_is_searched_on_log_probabilities(zoo: Zoo) -> None:
    surrogate = Surrogate(OnnxClassifier(zoo.folder / "target_softmax.onnx"))
    assert surrogate.output_kind == "probabilities"
    import torch

    with torch.no_grad():
        log_p = surrogate.scores_tensor(torch.from_numpy(zoo.x[:8])).numpy()
    assert np.allclose(np.exp(log_p).sum(1), 1.0, atol=1e-4)
    assert (log_p <= 0).all()


def test_data_init_uses_training_examples_and_bounds_from_data(zoo: Zoo, tmp_path: Path) -> None:
    data = tmp_path / "train.npz"
    np.savez(data, x=zoo.x[:300].reshape(300, 64))  # flat rows are reshaped to the model's input
    result = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=25, init=StartKind.data, domain="data", unique=False),
        data_path=data,
    )
    bundle = load_bundle(result.bundle_path)
    assert bundle.metadata["variant"] == "IPGuard-TL"
    assert bundle.metadata["data_sha256"]
    assert np.array_equal(bundle.domain_low, zoo.x[:300].min(axis=0))
    assert (bundle.points <= bundle.domain_high).all() and (bundle.points >= bundle.domain_low).all()
    assert audit(bundle, zoo.target).matching_rate == 1.0


def test_random_target_label_strategy(zoo: Zoo, tmp_path: Path) -> None:
    result = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=20, label=TargetLabelRule.random),
    )
    assert load_bundle(result.bundle_path).metadata["variant"] == "IPGuard-RR"
    assert audit(result.bundle_path, zoo.target).matching_rate == 1.0


def test_data_from_a_folder_of_images(zoo: Zoo, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for index, image in enumerate(zoo.x[:40, 0]):
        Image.fromarray((image * 255).round().astype(np.uint8), mode="L").save(folder / f"{index:03d}.png")
    result = fingerprint(
        zoo.target,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=10, init=StartKind.data, unique=False),
        data_path=folder,
    )
    assert result.points == 10
    assert load_bundle(result.bundle_path).metadata["variant"] == "IPGuard-TL"


def test_channels_last_model_and_layout_adaptation_in_audit(zoo: Zoo, tmp_path: Path) -> None:
    """The same network exported N×H×W×C: it fingerprints itself, and the N×C×H×W bundle audits it."""
    import torch
    from torch import nn

    from ipguard_onnx import demo

    class ChannelsLast(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, batch: torch.Tensor) -> torch.Tensor:
            result: torch.Tensor = self.inner(batch.permute(0, 3, 1, 2))
            return result

    target = demo.train(demo.digits_cnn(seed=0), zoo.x, zoo.y, seed=0)
    nhwc = demo.export_onnx(ChannelsLast(target), zoo.x.transpose(0, 2, 3, 1).copy(), tmp_path / "nhwc.onnx")
    model = OnnxClassifier(nhwc)
    assert model.input_spec.layout == "NHWC" and model.input_spec.sample_shape == (8, 8, 1)
    result = fingerprint(
        nhwc,
        tmp_path / "fp.safetensors",
        signing_key=load_private_key(zoo.private_key),
        settings=FingerprintSettings(n=20),
    )
    assert audit(result.bundle_path, nhwc).matching_rate == 1.0
    # The conftest target was trained the same way: the channels-first bundle reads this model too.
    assert audit(zoo.bundle, nhwc).matching_rate >= load_bundle(zoo.bundle).threshold
