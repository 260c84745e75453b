"""Which anchor should the gradient-free search walk towards? (issue 13)

    python benchmarks/anchors.py [--world digits] [--seeds 0 1 2] [--k 1] [--out benchmarks/out]

On a zoo built by benchmarks/zoo.py (seed 0, cached in OUT), starts drawn uniformly from the domain walk
(``BoundaryWalk``) towards an anchor of their least-likely class j chosen three ways — the nearest (L2),
the one the model is surest of (largest top-1/top-2 gap), a random one — with the walk's own rng seeds;
100 points each, evaluated on the zoo's suspects (ARUC, Eq. 7).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zoo as zoo_module  # noqa: E402

from ipguard_onnx import OnnxClassifier  # noqa: E402
from ipguard_onnx.bundle import FingerprintRecord, save_bundle  # noqa: E402
from ipguard_onnx.evaluate import evaluate  # noqa: E402
from ipguard_onnx.keys import load_private_key, write_keypair  # noqa: E402
from ipguard_onnx.search import BoundaryWalk, search_scores, start_points  # noqa: E402

MODES = ("nearest", "surest", "random")


def _anchor(
    mode: str, start: np.ndarray, members: np.ndarray, pool: np.ndarray, gaps: np.ndarray, rng: np.random.Generator
) -> int:
    if mode == "nearest":
        return int(members[np.linalg.norm((pool[members] - start).reshape(len(members), -1), axis=1).argmin()])
    if mode == "surest":
        return int(members[gaps[members].argmax()])
    return int(rng.choice(members))


def points_for(mode: str, target: OnnxClassifier, k: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    spec = target.input_spec
    low, high = np.zeros(spec.sample_shape, np.float32), np.ones(spec.sample_shape, np.float32)
    rng = np.random.default_rng(seed)

    def scores(batch: np.ndarray) -> np.ndarray:
        return search_scores(target.scores(batch), target.output_spec.kind)

    points: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    while sum(map(len, labels)) < 100:
        start, pool = start_points(200, rng, None, low, high), start_points(1000, rng, None, low, high)
        start_scores, pool_scores = scores(start), scores(pool)
        start_labels, pool_labels = start_scores.argmax(1), pool_scores.argmax(1)
        ordered = np.sort(pool_scores, 1)
        gaps = ordered[:, -1] - ordered[:, -2]
        targets = np.full(len(start), -1)
        which = np.zeros(len(start), int)
        for row in range(len(start)):
            options = [c for c in np.unique(pool_labels) if c != start_labels[row]]
            if options:
                targets[row] = min(options, key=lambda c: start_scores[row, c])
                members = np.flatnonzero(pool_labels == targets[row])
                which[row] = _anchor(mode, start[row], members, pool, gaps, rng)
        usable = targets >= 0
        outcome, _ = BoundaryWalk(k=k).run_queries(
            target.predict, scores, start[usable], pool[which[usable]], targets[usable]
        )
        points.append(outcome.points[outcome.converged])
        labels.append(outcome.target_labels[outcome.converged])
    return np.concatenate(points)[:100], np.concatenate(labels)[:100]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", default="digits")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--k", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")
    zoo = zoo_module.build(arguments.world, 0, arguments.out)
    target = OnnxClassifier(zoo.target)
    suspects = [(path, group) for path, group, _ in zoo.suspects]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        key = load_private_key(write_keypair(work / "k.pem", work / "k.pub.pem").private_path)
        spec = target.input_spec
        record = FingerprintRecord(
            spec.name, spec.sample_shape, spec.layout, spec.dtype, target.output_spec.num_classes or 0, 0.85
        )
        for mode in MODES:
            arucs = []
            for seed in arguments.seeds:
                points, labels = points_for(mode, target, arguments.k, seed)
                low = np.zeros(spec.sample_shape, np.float32)
                tensors = {"points": points, "labels": labels, "domain_low": low, "domain_high": low + 1}
                save_bundle(work / "fp.safetensors", tensors, record, key)
                arucs.append(evaluate(work / "fp.safetensors", suspects).aruc)
            print(
                f"{mode:8s} k={arguments.k:g}: ARUC "
                + ", ".join(f"{a:.3f}" for a in arucs)
                + f" (mean {np.mean(arucs):.3f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
