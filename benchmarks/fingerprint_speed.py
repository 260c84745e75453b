"""Fingerprint speed and quickstart matching rates on the demo model (BENCHMARKS.md, "Core").

    python benchmarks/fingerprint_speed.py [--repeats 5]

Trains the quickstart's three models (same seeds), then fingerprints the target with n = 100 for
several seeds, timing the whole call (load, conversion, parity, search, labelling, signing) and the
search alone, and audits the pirated and innocent copies with each bundle.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ipguard_onnx import audit, demo, fingerprint
from ipguard_onnx.fingerprint import FingerprintSettings
from ipguard_onnx.keys import load_private_key, write_keypair


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ipguard-bench-"))
    x, y = demo.digits()
    target = demo.train(demo.digits_cnn(seed=0), x, y, seed=0)
    pirated = demo.pruned(demo.fine_tuned(target, x, y, seed=1), 0.2)
    innocent = demo.train(demo.digits_cnn(seed=2024), x, y, seed=2024)
    for name, model in [("target", target), ("pirated", pirated), ("innocent", innocent)]:
        demo.export_onnx(model, x, folder / f"{name}.onnx")
    key = load_private_key(write_keypair(folder / "k.pem", folder / "k.pub.pem").private_path)

    rows = []
    for seed in range(args.repeats):
        started = time.perf_counter()
        result = fingerprint(
            folder / "target.onnx",
            folder / f"fp{seed}.safetensors",
            signing_key=key,
            settings=FingerprintSettings(n=100, seed=seed),
        )
        wall = time.perf_counter() - started
        rates = {
            name: audit(result.bundle_path, folder / f"{name}.onnx").matching_rate
            for name in ("target", "pirated", "innocent")
        }
        rows.append((seed, wall, result.search_seconds, result.mean_iterations, result.points, rates))
        print(
            f"seed {seed}: {wall:.2f} s in all, search {result.search_seconds:.2f} s, "
            f"{result.mean_iterations:.1f} iterations/point, {result.points} points, "
            + ", ".join(f"{k} {v:.2f}" for k, v in rates.items())
        )
    threads = torch.get_num_threads()
    print(
        f"\nmachine: {platform.machine()}, {threads} torch threads, python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )
    print(
        f"median fingerprint time (n=100): {statistics.median(r[1] for r in rows):.2f} s "
        f"(search alone {statistics.median(r[2] for r in rows):.2f} s)"
    )
    print(f"mean Adam iterations per point: {statistics.mean(r[3] for r in rows):.1f}")
    for name in ("target", "pirated", "innocent"):
        values = [r[5][name] for r in rows]
        print(
            f"matching rate {name}: min {min(values):.2f}, "
            f"median {statistics.median(values):.2f}, max {max(values):.2f}"
        )


if __name__ == "__main__":
    main()
