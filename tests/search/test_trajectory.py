"""--method trajectory: ADV-TRA-style trajectories across boundaries, from the model's labels alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ipguard_onnx import audit, fingerprint, load_bundle
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key
from ipguard_onnx.search import TrajectoryWalk

from ..conftest import RunCli, Zoo


def _stripes(points: np.ndarray) -> np.ndarray:
    """Three classes as vertical stripes of the unit square: x < 0.3, 0.3 ≤ x < 0.7, x ≥ 0.7."""
    labels: np.ndarray = np.digitize(points[:, 0], [0.3, 0.7]).astype(np.int64)
    return labels


@pytest.mark.parametrize("crossings", [1, 2])
def test_every_trajectory_straddles_each_boundary_it_crosses(crossings: int) -> None:
    rng = np.random.default_rng(0)
    start = np.column_stack([rng.uniform(0.0, 0.25, 40), rng.random(40)]).astype(np.float32)
    anchors = rng.random((500, 2)).astype(np.float32)
    walk = TrajectoryWalk(crossings=crossings, points_per_side=3, nearest=0.01, farthest=0.2)
    found, cost = walk.trace(_stripes, start, anchors, _stripes(anchors))
    assert found.complete == 40 and len(found.points) == 40 * walk.length
    assert np.array_equal(found.labels, _stripes(found.points))
    assert cost.queries >= 40 * crossings * walk.bisection_steps
    for index in range(40):
        labels = found.labels[found.trajectory == index]
        xs = found.points[found.trajectory == index][:, 0]
        assert len(set(labels.tolist())) == crossings + 1  # it visits a new class at every crossing
        for crossing in range(crossings):
            side = labels[6 * crossing : 6 * crossing + 6]
            before, after = side[:3], side[3:]
            assert len(set(before.tolist())) == 1 and len(set(after.tolist())) == 1 and before[0] != after[0]
            nearest_before, nearest_after = xs[6 * crossing + 2], xs[6 * crossing + 3]
            boundary = 0.3 if {int(before[0]), int(after[0])} == {0, 1} else 0.7
            assert min(nearest_before, nearest_after) <= boundary <= max(nearest_before, nearest_after)
            assert abs(nearest_after - nearest_before) < 0.05  # the innermost pair hugs the boundary
            outer = abs(xs[6 * crossing + 5] - xs[6 * crossing])
            assert outer > abs(nearest_after - nearest_before)  # steps shrink towards the boundary


def test_a_network_fingerprinted_with_trajectories(zoo: Zoo, tmp_path: Path, run_cli: RunCli) -> None:
    bundle_path = tmp_path / "trajectory.safetensors"
    result = run_cli(
        "fingerprint", zoo.target, "--method", "trajectory", "--n", 48, "--key", zoo.private_key, "-o", bundle_path
    )
    assert result.code == 0, result.stderr
    bundle = load_bundle(bundle_path)
    assert bundle.record.variant == "ADV-TRA-GF-RL" and len(bundle.points) == 48
    assert len(set(bundle.labels.tolist())) >= 3  # trajectories span several classes
    assert audit(bundle, zoo.target).matching_rate == 1.0
    assert audit(bundle, zoo.pruned).matching_rate > audit(bundle, zoo.independent).matching_rate


def test_trajectories_are_reproducible(zoo: Zoo, tmp_path: Path) -> None:
    key = load_private_key(zoo.private_key)
    settings = FingerprintSettings(n=24, method="trajectory", seed=3)
    first = fingerprint(zoo.target, tmp_path / "a.safetensors", signing_key=key, settings=settings)
    second = fingerprint(zoo.target, tmp_path / "b.safetensors", signing_key=key, settings=settings)
    assert np.array_equal(load_bundle(first.bundle_path).points, load_bundle(second.bundle_path).points)
