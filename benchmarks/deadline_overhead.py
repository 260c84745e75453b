"""What a deadline costs (BENCHMARKS.md, "Deadlines"): one onnxruntime run as ipguard-onnx makes it (on a
worker thread, with a deadline and Ctrl-C) next to a bare ``session.run``, on the quickstart's target.

    python benchmarks/deadline_overhead.py [--runs 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ipguard_onnx import demo
from ipguard_onnx.models.bounded import run_bounded


def per_run(call: Callable[[], object], runs: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean seconds per call over ``runs`` calls."""
    call()
    means = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(runs):
            call()
        means.append((time.perf_counter() - started) / runs)
    return statistics.median(means)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        x, y = demo.digits()
        path = demo.export_onnx(demo.train(demo.digits_cnn(seed=0), x, y, seed=0), x, Path(folder) / "target.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        print("| points per run | bare session.run | with its deadline | added per run |")
        print("|---|---|---|---|")
        for points in (1, 100):
            feeds = {name: np.ascontiguousarray(x[:points], dtype=np.float32)}
            bare = per_run(lambda feeds=feeds: session.run(None, feeds), arguments.runs, arguments.rounds)
            bounded = per_run(
                lambda feeds=feeds: run_bounded(session, None, feeds, timeout=120, name="target"),
                arguments.runs,
                arguments.rounds,
            )
            print(f"| {points} | {bare * 1e6:.1f} µs | {bounded * 1e6:.1f} µs | {(bounded - bare) * 1e6:.1f} µs |")


if __name__ == "__main__":
    main()
