"""Zeroth-order Adam on Eq. 5: the option the boundary walk was measured against (issue 13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ipguard_onnx import OnnxClassifier, audit, fingerprint, load_bundle
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key
from ipguard_onnx.search import ZerothOrderAdam, eq5_loss, eq5_loss_numpy, search_scores

from ..conftest import Zoo
from .test_gradient_free import _eq5_holds


def test_the_numpy_loss_is_the_gradient_searchs_loss() -> None:
    import torch

    rng = np.random.default_rng(0)
    for classes in (2, 3, 10):
        scores = rng.normal(0, 3, (64, classes)).astype(np.float32)
        source = rng.integers(0, classes, 64)
        target = (source + rng.integers(1, classes, 64)) % classes
        expected = eq5_loss(torch.tensor(scores), torch.tensor(source), torch.tensor(target), 1.5).numpy()
        np.testing.assert_allclose(eq5_loss_numpy(scores, source, target, 1.5), expected, rtol=1e-6, atol=1e-6)


def test_zeroth_order_points_satisfy_eq5_on_onnxruntime(zoo: Zoo, tmp_path: Path) -> None:
    settings = FingerprintSettings(n=30, method="zo-adam", max_iterations=200)
    made = fingerprint(
        zoo.target, tmp_path / "fp.safetensors", signing_key=load_private_key(zoo.private_key), settings=settings
    )
    assert made.gradient_free_reason == "--method zo-adam" and made.points == 30 and made.queries > 0
    bundle = load_bundle(made.bundle_path)
    assert bundle.record.variant == "IPGuard-ZO-RL"
    assert _eq5_holds(zoo.target, bundle.points, bundle.labels, made.k).all()
    assert bundle.points.min() >= 0.0 and bundle.points.max() <= 1.0  # clipped to the domain
    assert audit(bundle, zoo.target).matching_rate == 1.0


def test_zeroth_order_asked_to_stop_asks_the_model_nothing_more(zoo: Zoo) -> None:
    """The fingerprint's time budget ends zeroth-order Adam mid-round, as it ends the walk: once the progress
    callback answers True no query follows, and only points that hold Eq. 5 count as converged."""
    model = OnnxClassifier(zoo.target)
    start = np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32)
    asked: list[int] = []

    def scores(batch: np.ndarray) -> np.ndarray:
        asked.append(len(batch))
        return search_scores(model.scores(batch), "logits")

    targets = scores(start).argmin(axis=1)
    asked.clear()
    calls: list[int] = []
    asked_at_stop: list[int] = []

    def progress(step: int, done: int) -> bool:
        calls.append(done)
        if len(calls) == 4:
            asked_at_stop.append(len(asked))
        return len(calls) >= 4

    search = ZerothOrderAdam(k=1.0, max_iterations=300)
    outcome, cost = search.run_queries(model.predict, scores, start, start, targets, progress=progress)
    assert len(calls) == 4 and asked_at_stop == [len(asked)] and cost.calls == len(asked)
    assert (outcome.iterations <= 3).all() and not outcome.converged.all()
    kept = outcome.converged
    assert _eq5_holds(zoo.target, outcome.points[kept], outcome.target_labels[kept], 1.0).all()
